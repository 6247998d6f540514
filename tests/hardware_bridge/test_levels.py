"""Water-level gauges → boundary series and nudging of the flood state (hardware_bridge.fusion.levels)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from hardware_bridge.fusion import Reading
from hardware_bridge.fusion.levels import (
    Nudger,
    gauge_positions,
    water_level_boundary,
    water_level_series,
)
from physics.flood import FloodModel, simulate
from twin.errors import GridError, ValidationError

D = 10.0  # cell size (m); plain-array DEMs put cell (j, i) centre at ((i+.5)D, (ny-j-.5)D)


def tiny_model(ny=5, nx=5, h0=0.5, z=0.0, **kw):
    return FloodModel(np.full((ny, nx), z), dx=D, h0=h0, **kw)


def xy(model, j, i):
    ny = model.h.shape[0]
    return (i + 0.5) * D, (ny - j - 0.5) * D


def test_series_and_boundary_from_a_tide_gauge():
    t0 = datetime(2023, 9, 7, tzinfo=UTC)
    rs = [Reading("tide/chiwan", "water_level", t0 + timedelta(hours=h), v, station="chiwan")
          for h, v in ((2, 1.4), (0, 0.8), (1, 1.1))]  # out of order on purpose
    rs.append(Reading("tide/chiwan", "water_level", t0 + timedelta(hours=1), 1.2, station="chiwan"))  # later copy wins
    rs.append(Reading("rain/x", "rain_gauge", t0, 0.001))  # ignored
    t, lv = water_level_series(rs, origin=t0, datum_offset_m=-0.1)
    np.testing.assert_allclose(t, [0.0, 3600.0, 7200.0])
    np.testing.assert_allclose(lv, [0.7, 1.1, 1.3])
    mask = np.zeros((4, 6), np.uint8)
    mask[:, 0] = 1
    wl = water_level_boundary(rs, mask, origin=t0 - timedelta(hours=1), station="chiwan")
    assert wl.name == "chiwan"
    assert wl.at(3600.0) == pytest.approx(0.8) and wl.at(3600.0 + 1800.0) == pytest.approx(1.0)
    assert wl.at(1e6) == pytest.approx(1.4)  # held beyond the last sample
    # the flood model takes it: the masked column sits at the imposed level
    ds = simulate(np.zeros((4, 6)), 1800.0, dx=D, water_level=wl, boundaries="closed")
    np.testing.assert_allclose(ds["depth"].values[-1][:, 0], wl.at(1800.0), rtol=1e-6)
    assert float(ds["volume_relative_error"][-1]) < 1e-10


def test_series_errors():
    with pytest.raises(ValidationError, match="no water_level readings"):
        water_level_series([Reading("r", "rain_gauge", 0.0, 0.0)], origin=0.0)
    two = [Reading("a", "water_level", 0.0, 1.0), Reading("b", "water_level", 0.0, 1.0)]
    with pytest.raises(ValidationError, match="2 datastreams"):
        water_level_series(two, origin=0.0)
    assert water_level_series(two, origin=0.0, station="b")[1][0] == 1.0
    with pytest.raises(ValidationError, match="datetime"):
        water_level_series([Reading("a", "water_level", datetime(2024, 1, 1, tzinfo=UTC), 1.0)], origin=0.0)
    with pytest.raises(GridError, match="mask"):
        water_level_boundary(two, np.zeros((3, 3)), origin=0.0, station="a")


def test_nudging_raises_cells_within_radius_and_reports_the_volume():
    m = tiny_model()
    n = Nudger(m, {"g": xy(m, 2, 2)}, radius_m=1.5 * D, gain=0.5)  # the 3x3 block around the centre
    before = m.h.copy()
    s0 = m.storage()
    res = n.nudge({"g": 0.7})  # misfit +0.2 m -> +0.1 m
    changed = m.h != before
    assert changed.sum() == 9 and changed[1:4, 1:4].all()
    np.testing.assert_allclose(m.h[1:4, 1:4], 0.6)
    assert res.cells == 9 and res.clamped == 0
    assert res.volume_m3 == pytest.approx(9 * 0.1 * D * D) == pytest.approx(m.storage() - s0)
    assert res.added_m3 == pytest.approx(res.volume_m3) and res.removed_m3 == 0.0
    assert n.total_volume_m3 == pytest.approx(res.volume_m3)
    # the nudged volume is booked as the model's correction term, so its balance closes
    b = m.balance()
    assert b["correction"] == pytest.approx(res.volume_m3)
    assert abs(b["error"]) < 1e-9


def test_nudging_keeps_depth_non_negative():
    m = tiny_model(h0=0.2, z=1.0)
    n = Nudger(m, {"g": xy(m, 0, 0)}, radius_m=0.6 * D, gain=1.0)  # one cell
    res = n.nudge({"g": 0.5})  # observed surface below the ground: dry the cell, no further
    assert m.h[0, 0] == 0.0 and res.clamped == 1
    assert res.volume_m3 == pytest.approx(-0.2 * D * D) and res.removed_m3 == pytest.approx(0.2 * D * D)
    assert float(m.h.min()) >= 0.0


def test_overlapping_gauges_split_cells_by_nearest_and_blocked_cells_are_skipped():
    z = np.zeros((3, 6))
    z[1, 2] = np.nan  # a building
    m = FloodModel(z, dx=D, h0=0.0)
    n = Nudger(m, {"w": xy(m, 1, 1), "e": xy(m, 1, 4)}, radius_m=2.5 * D, gain=1.0)
    cw, ce = n.cells["w"], n.cells["e"]
    assert not set(zip(*cw, strict=True)) & set(zip(*ce, strict=True))
    assert (1, 2) not in set(zip(*cw, strict=True)) | set(zip(*ce, strict=True))
    res = n.nudge({"w": 0.3, "e": 0.1})
    assert m.h[1, 0] == pytest.approx(0.3) and m.h[1, 5] == pytest.approx(0.1)
    assert m.h[1, 3] == pytest.approx(0.1)  # column 3 is nearer e (x = 35 m vs 45 m / 15 m)
    assert res.per_station["w"] == pytest.approx(0.3 * D * D * len(cw[0]))
    with pytest.raises(ValidationError, match="not one of the nudging gauges"):
        n.nudge({"zz": 1.0})
    with pytest.raises(ValidationError, match="no open cell"):
        Nudger(m, {"far": (1e6, 1e6)}, radius_m=D)
    with pytest.raises(ValidationError, match="gain"):
        Nudger(m, {"w": xy(m, 1, 1)}, radius_m=D, gain=0.0)


def test_nudged_model_keeps_running_and_balance_closes_with_the_correction():
    m = tiny_model(ny=8, nx=8, h0=0.1, rain=None, boundaries="closed")
    readings = [Reading("wl/1", "water_level", 0.0, 0.30, station="s1", x=xy(m, 4, 4)[0], y=xy(m, 4, 4)[1]),
                Reading("wl/1", "water_level", 60.0, 0.35, station="s1", x=xy(m, 4, 4)[0], y=xy(m, 4, 4)[1])]
    pos = gauge_positions(readings, crs="EPSG:4547")
    assert pos == {"s1": xy(m, 4, 4)}
    n = Nudger(m, pos, radius_m=2 * D, gain=0.3)
    total = 0.0
    for _ in range(5):
        total += n.nudge_readings(readings).volume_m3  # the latest (0.35 m) is used
        m.step(60.0)
    assert total > 0 and n.total_volume_m3 == pytest.approx(total)
    b = m.balance()
    assert b["correction"] == pytest.approx(n.total_volume_m3)
    assert b["relative_error"] < 1e-9
    # without the correction term the books would not close
    assert abs(b["error"] + b["correction"]) / b["storage_initial"] > 1e-3
    assert np.all(np.isfinite(m.h)) and float(m.h.min()) >= 0.0


def test_model_with_a_correction_hook_receives_the_volume():
    class Hooked(FloodModel):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            self.corrections = []

        def add_correction(self, v):
            self.corrections.append(v)

    m = Hooked(np.zeros((3, 3)), dx=D, h0=0.0)
    n = Nudger(m, {"g": xy(m, 1, 1)}, radius_m=0.5 * D, gain=1.0)
    res = n.nudge({"g": 0.4})
    assert m.corrections == [pytest.approx(0.4 * D * D)] == [res.volume_m3]
