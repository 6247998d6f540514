"""Speed and pre-movement draws of :mod:`agents.demographics`."""

from __future__ import annotations

import numpy as np
import pytest

from agents.demographics import (
    RIMEA_AGE_SPEEDS,
    age_speed_bounds,
    premovement_sample,
    speed_sample,
)
from twin.errors import ValidationError


def test_weidmann_adult_speeds_match_weidmann_mean_and_spread():
    # Weidmann 1993: 1.34 +- 0.26 m/s. Truncation at +-3 sd moves the sd by
    # < 1 %; with 20,000 draws the standard error of the mean is 0.002 m/s,
    # of the sd about 0.0013 m/s, so 0.01 m/s is > 4 standard errors.
    v = speed_sample(np.random.default_rng(1), 20_000)
    assert abs(v.mean() - 1.34) < 0.01
    assert abs(v.std() - 0.26) < 0.01
    assert v.min() >= 1.34 - 3 * 0.26 and v.max() <= 1.34 + 3 * 0.26


def test_rimea_age_speeds_lie_within_the_age_bounds():
    rng = np.random.default_rng(2)
    ages = rng.uniform(10, 80, 5000)
    v = speed_sample(rng, 5000, "rimea_age", ages=ages)
    lo, hi = age_speed_bounds(ages)
    assert np.all(v >= lo) and np.all(v <= hi)
    # the table's own rows come back at the tabulated ages
    table = np.asarray(RIMEA_AGE_SPEEDS)
    lo, hi = age_speed_bounds(table[:, 0])
    np.testing.assert_array_equal(lo, table[:, 1])
    np.testing.assert_array_equal(hi, table[:, 2])


def test_same_seed_gives_the_same_draws():
    a = speed_sample(np.random.default_rng(5), 100, "rimea_age")
    b = speed_sample(np.random.default_rng(5), 100, "rimea_age")
    np.testing.assert_array_equal(a, b)


def test_lognormal_premovement_median_and_shift():
    t = premovement_sample(np.random.default_rng(3), 40_000, median_s=30.0, sigma=0.4, shift_s=10.0)
    # median of shift + median * exp(sigma Z) is shift + median; the sample
    # median's standard error is about 1.2533 * sd / sqrt(n) ~ 0.08 s here.
    assert abs(np.median(t) - 40.0) < 0.5
    assert t.min() > 10.0


@pytest.mark.parametrize(
    "call, field",
    [
        pytest.param(lambda r: speed_sample(r, 3, "brisk"), "profile", id="unknown-profile"),
        pytest.param(lambda r: speed_sample(r, 2, "rimea_age", ages=[30, 95]), "ages", id="old-age"),
        pytest.param(lambda r: premovement_sample(r, 3, "gamma"), "dist", id="unknown-dist"),
        pytest.param(lambda r: premovement_sample(r, 3, median_s=-1), "median_s", id="negative"),
        pytest.param(lambda r: premovement_sample(r, 3, mean_s=5), "mean_s", id="unknown-param"),
        pytest.param(lambda r: speed_sample(r, -1), "n", id="negative-n"),
    ],
)
def test_bad_input_names_the_field(call, field):
    with pytest.raises(ValidationError, match=field):
        call(np.random.default_rng(0))
