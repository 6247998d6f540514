"""People hazard from flood depth and velocity (agents.people_hazard).

Expected classes are the limits of Australian Rainfall and Runoff 2019, Book 6
ch. 7, combined hazard curves (H1: D·V <= 0.3, D <= 0.3, V <= 2.0; H2: 0.6,
0.5, 2.0; H3: 0.6, 1.2, 2.0; H4: 1.0, 2.0, 2.0; H5: 4.0, 4.0, 4.0; H6
beyond), limits inclusive; people stability after Cox, Shand & Blacka 2010.
"""

from __future__ import annotations

import numpy as np
import pytest

from agents.people_hazard import hazard_class, people_stability, walking_speed_factor

EPS = 1e-6


@pytest.mark.parametrize(("depth", "velocity", "expected"), [
    pytest.param(0.0, 0.0, 1, id="dry-is-H1"),
    pytest.param(0.3, 1.0, 1, id="H1-depth-and-DV-limits-inclusive"),
    pytest.param(0.1, 2.0, 1, id="H1-velocity-limit-inclusive"),
    pytest.param(0.3 + EPS, 0.0, 2, id="just-deeper-than-H1"),
    pytest.param(0.2, 1.5 + EPS, 2, id="DV-just-over-0.3"),
    pytest.param(0.5, 1.2, 2, id="H2-limits-inclusive"),
    pytest.param(0.5 + EPS, 0.0, 3, id="just-deeper-than-H2"),
    pytest.param(1.2, 0.5, 3, id="H3-limits-inclusive"),
    pytest.param(1.0, 0.6 + EPS, 4, id="DV-just-over-0.6"),
    pytest.param(2.0, 0.5, 4, id="H4-limits-inclusive"),
    pytest.param(0.1, 2.0 + EPS, 5, id="velocity-just-over-2"),
    pytest.param(2.0 + EPS, 0.0, 5, id="just-deeper-than-H4"),
    pytest.param(4.0, 1.0, 5, id="H5-limits-inclusive"),
    pytest.param(1.0, 4.0 + EPS, 6, id="velocity-over-4"),
    pytest.param(4.0 + EPS, 0.0, 6, id="deeper-than-4"),
    pytest.param(1.5, 2.7, 6, id="DV-over-4"),
])
def test_arr_hazard_class_at_each_boundary(depth, velocity, expected):
    assert int(hazard_class(depth, velocity)) == expected


def test_hazard_class_is_vectorised_and_treats_nan_as_dry():
    d = np.array([[np.nan, 0.4], [1.0, -0.2]])
    v = np.array([[1.0, np.nan], [0.5, 3.0]])
    assert hazard_class(d, v).tolist() == [[1, 2], [3, 5]]  # dry-ish with V = 3 m/s: H5 (V > 2)


@pytest.mark.parametrize(("depth", "velocity", "group", "expected"), [
    pytest.param(0.0, 0.0, "adult", "safe", id="dry"),
    pytest.param(0.5, 1.2, "adult", "low", id="adult-DV-0.6-low"),
    pytest.param(0.5, 1.6, "adult", "moderate", id="adult-DV-0.8-moderate"),
    pytest.param(0.6, 2.0, "adult", "significant", id="adult-DV-1.2-significant"),
    pytest.param(0.6, 2.1, "adult", "extreme", id="adult-DV-over-1.2"),
    pytest.param(1.3, 0.0, "adult", "extreme", id="adult-deeper-than-1.2"),
    pytest.param(0.4, 1.0, "child", "low", id="child-DV-0.4-low"),
    pytest.param(0.4, 1.25, "child", "significant", id="child-DV-0.5-significant"),
    pytest.param(0.55, 0.1, "child", "extreme", id="child-deeper-than-0.5"),
    pytest.param(0.1, 3.1, "adult", "extreme", id="velocity-over-3"),
])
def test_cox_2010_people_stability(depth, velocity, group, expected):
    from agents.people_hazard import STABILITY

    assert STABILITY[int(people_stability(depth, velocity, group))] == expected


def test_walking_speed_factor_follows_li_2026():
    """Li et al. 2026: mean speed -38.6 % (men) and -44.8 % (women) from dry ground to 0.35 m."""
    f = walking_speed_factor([0.0, 0.175, 0.35, 0.5])
    assert f[0] == 1.0
    assert f[2] == pytest.approx(1 - (0.386 + 0.448) / 2, abs=1e-12)
    assert f[1] == pytest.approx((1 + f[2]) / 2, abs=1e-12)  # linear in depth up to 0.35 m
    assert f[3] == f[2]  # held deeper (the module says why)
