"""FibreLayout: channel <-> chainage mapping and validation (issue 15's DAS array convention)."""

from __future__ import annotations

import numpy as np
import pytest

from physics.das_layout import FibreLayout
from twin.errors import ValidationError


def test_defaults_follow_the_contract() -> None:
    lay = FibreLayout(n_channel=10)
    assert (lay.dx_m, lay.fs_hz, lay.direction, lay.chainage0_m) == (1.0, 1000.0, 1, 0.0)
    assert lay.length_m == 10.0


def test_chainage_forward_and_back() -> None:
    lay = FibreLayout(n_channel=100, dx_m=2.0, line="1号线", chainage0_m=500.0, direction=1)
    np.testing.assert_allclose(lay.chainage_m(np.array([0, 10, 99])), [500.0, 520.0, 698.0])
    np.testing.assert_array_equal(lay.channel(np.array([500.0, 520.9, 521.1, 698.0])), [0, 10, 11, 99])


def test_reverse_direction_round_trip() -> None:
    lay = FibreLayout(n_channel=50, dx_m=1.0, chainage0_m=1000.0, direction=-1)
    ch = np.arange(50)
    np.testing.assert_allclose(lay.chainage_m(ch), 1000.0 - ch)
    np.testing.assert_array_equal(lay.channel(lay.chainage_m(ch)), ch)


def test_off_fibre_chainage_is_minus_one() -> None:
    lay = FibreLayout(n_channel=10, chainage0_m=100.0)
    np.testing.assert_array_equal(lay.channel([99.0, 99.6, 109.4, 110.0, np.nan]), [-1, 0, 9, -1, -1])


def test_scalar_in_scalar_array_out() -> None:
    lay = FibreLayout(n_channel=10)
    assert lay.channel(3.2).shape == ()
    assert int(lay.channel(3.2)) == 3


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"n_channel": 0}, "n_channel"),
        ({"n_channel": 2.5}, "n_channel"),
        ({"n_channel": 5, "dx_m": 0.0}, "dx_m"),
        ({"n_channel": 5, "fs_hz": float("nan")}, "fs_hz"),
        ({"n_channel": 5, "direction": 0}, "direction"),
        ({"n_channel": 5, "chainage0_m": float("inf")}, "chainage0_m"),
    ],
)
def test_bad_values_name_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        FibreLayout(**kwargs)


def test_frozen() -> None:
    lay = FibreLayout(n_channel=3)
    with pytest.raises(AttributeError):
        lay.n_channel = 4  # type: ignore[misc]
