"""rain_scale: a factor on every rain rate (physics.forcing.scale_rain), in the flood and slope requests.

Expected numbers: a factor on a piecewise-constant rate multiplies every block's
depth by that factor (linearity of the depth integral), so totals agree to
round-off (rel 1e-12).
"""

from __future__ import annotations

import numpy as np
import pytest

from physics.flood_city import make_storm, storm_info
from physics.forcing import GriddedRain, NoRain, UniformRain, scale_rain
from twin.errors import ValidationError


def test_scale_rain_multiplies_every_block_and_keeps_the_blocks():
    r = UniformRain([0.0, 600.0, 1800.0], [10.0, 40.0])
    s = scale_rain(r, 1.5)
    np.testing.assert_array_equal(s.times, r.times)
    assert s.total_mm == pytest.approx(1.5 * r.total_mm, rel=1e-12)
    assert r.total_mm == pytest.approx(10 / 6 + 40 * 20 / 60, rel=1e-12)  # the original is untouched
    g = GriddedRain([0.0, 3600.0], np.full((1, 2, 3), 20.0))
    assert scale_rain(g, 0.5).depth_mm(0, 3600) == pytest.approx(10.0, rel=1e-12)
    assert scale_rain(r, 1.0) is r and isinstance(scale_rain(NoRain(), 3.0), NoRain)
    for bad in (-0.1, float("nan"), float("inf")):
        with pytest.raises(ValidationError, match="rain_scale"):
            scale_rain(r, bad)


def test_a_named_design_storm_is_scaled_and_says_so(twin_data):
    one = make_storm("2023-09-07", hours=6.0)
    two = make_storm("2023-09-07", hours=6.0, rain_scale=1.2)
    assert two.total_mm == pytest.approx(1.2 * one.total_mm, rel=1e-12)
    assert two.max_running_mm(1.0) == pytest.approx(1.2 * one.max_running_mm(1.0), rel=1e-12)
    info = storm_info(two, 6.0)
    assert info["rain_scale"] == pytest.approx(1.2) and "rain_scale" not in storm_info(one, 6.0)
    assert info["method"] == one.method and info["ddf_mm"] == storm_info(one, 6.0)["ddf_mm"]


def test_flood_request_rain_scale_reaches_the_model(twin_data):
    from physics.flood_run import FloodRequest, setup_for

    base = {"districts": ["Futian"], "resolution": 1000.0, "hours": 1.0}
    a = setup_for(FloodRequest(**base))
    b = setup_for(FloodRequest(**base, rain_scale=0.5))
    assert b["rain"].total_mm == pytest.approx(0.5 * a["rain"].total_mm, rel=1e-12)
    assert b["context"]["storm"]["rain_scale"] == 0.5


def test_slope_rain_series_is_scaled_for_every_source(tmp_path):
    from physics.slope_city import rain_series

    csv = tmp_path / "rain.csv"
    csv.write_text("time_h,mm_h\n0,10\n1,30\n2,0\n", encoding="utf-8")
    for src in ({"rain_mm_h": 12.0, "storm_hours": 2.0}, {"rain_file": str(csv), "storm_hours": 2.0}):
        r1, t1, i1 = rain_series(src)
        r2, t2, i2 = rain_series({**src, "rain_scale": 2.5})
        np.testing.assert_array_equal(t1, t2)
        np.testing.assert_allclose(r2, 2.5 * r1, rtol=1e-15)
        assert i2["total_mm"] == pytest.approx(2.5 * i1["total_mm"], rel=1e-12) and i2["rain_scale"] == 2.5
