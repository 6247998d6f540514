"""Rain gauges → gridded rain (hardware_bridge.fusion.rain_grid)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from affine import Affine

from gis.raster import make_grid
from hardware_bridge.fusion import Reading, as_readings, from_normalized
from hardware_bridge.fusion.rain_grid import (
    gauge_block_depths,
    grid_rain,
    idw_points,
    idw_weights,
    to_gridded_rain,
)
from physics.flood import simulate
from physics.forcing import GriddedRain
from twin.errors import GridError, ValidationError

X0, Y0, D = 500_000.0, 2_500_000.0, 100.0


def grid(ny=6, nx=8, d=D):
    return make_grid(np.zeros((ny, nx)), Affine(d, 0, X0, 0, -d, Y0 + ny * d), "EPSG:4547")


def centre(like, j, i):
    return float(like["x"].values[i]), float(like["y"].values[j])


def gauge(sid, x, y, depths_m, every_s=600.0, start=0.0):
    return [Reading(sid, "rain_gauge", start + (k + 1) * every_s, float(d), x=x, y=y)
            for k, d in enumerate(depths_m)]


def idw_reference(px, py, gx, gy, v, power, radius, min_gauges, fallback=True):
    """Pure-numpy IDW (the kernel's specification)."""
    out = np.empty(px.size)
    ok = np.isfinite(v)
    for p in range(px.size):
        d = np.hypot(px[p] - gx, py[p] - gy)
        d = np.where(ok, d, np.inf)
        hit = np.flatnonzero(d <= 1e-3)
        if hit.size:
            out[p] = v[hit[0]]
            continue
        use = (d <= radius) & ok
        if use.sum() < min_gauges or use.sum() == 0:
            if not fallback or ok.sum() == 0:
                out[p] = np.nan
                continue
            use = np.zeros_like(use)
            use[np.argsort(d)[: min(min_gauges, ok.sum())]] = True
        w = d[use] ** -power
        out[p] = np.sum(w * v[use]) / np.sum(w)
    return out


def test_single_gauge_gives_uniform_field():
    like = grid()
    x, y = centre(like, 2, 3)
    rs = gauge("g1", x + 17.0, y - 40.0, [0.002, 0.003, 0.0, 0.001, 0.004, 0.002])  # 12 mm in 1 h
    da = grid_rain(rs, like, start=0.0, end=3600.0)
    assert da.dims == ("time", "y", "x") and da.shape == (1, 6, 8)
    np.testing.assert_allclose(da.values, 12.0, rtol=0, atol=1e-12)
    assert da.attrs["units"] == "mm/h" and da.attrs["crs"] == "EPSG:4547"
    assert int(da["n_gauges"][0]) == 1


def test_two_gauges_exact_at_gauges_and_mean_at_midpoint():
    like = grid()
    xa, ya = centre(like, 1, 1)
    xb, yb = centre(like, 1, 5)
    rs = gauge("a", xa, ya, [0.010], every_s=3600.0) + gauge("b", xb, yb, [0.030], every_s=3600.0)
    da = grid_rain(rs, like, start=0.0, end=3600.0, min_gauges=1)
    assert da.values[0, 1, 1] == 10.0 and da.values[0, 1, 5] == 30.0
    mid = centre(like, 1, 3)
    assert mid[0] == pytest.approx((xa + xb) / 2)
    assert da.values[0, 1, 3] == pytest.approx(20.0, abs=1e-12)
    # the same at arbitrary points
    v = idw_points([xa, xb, (xa + xb) / 2], [ya, yb, ya], [xa, xb], [ya, yb], [10.0, 30.0], min_gauges=1)
    np.testing.assert_allclose(v, [10.0, 30.0, 20.0], atol=1e-12)


def test_constant_field_reproduced_exactly_and_bounds():
    like = grid(10, 12)
    rng = np.random.default_rng(4)
    gx = X0 + rng.uniform(-300, 1500, 7)
    gy = Y0 + rng.uniform(-300, 1300, 7)
    rs = []
    for k in range(7):
        rs += gauge(f"g{k}", gx[k], gy[k], [0.0125] * 2, every_s=900.0)  # 25 mm in 30 min = 50 mm/h
    da = grid_rain(rs, like, start=0.0, end=1800.0, block_s=1800.0, search_radius_m=600.0)
    np.testing.assert_allclose(da.values, 50.0, rtol=1e-14)
    vals = rng.uniform(0, 80, 7)
    field = idw_points(*np.meshgrid(like["x"].values, like["y"].values), gx, gy, vals, search_radius_m=600.0)
    assert field.min() >= vals.min() - 1e-12 and field.max() <= vals.max() + 1e-12


def test_kernel_matches_numpy_reference():
    rng = np.random.default_rng(11)
    px, py = rng.uniform(0, 5000, 400), rng.uniform(0, 5000, 400)
    gx, gy = rng.uniform(0, 5000, 15), rng.uniform(0, 5000, 15)
    v = rng.uniform(0, 60, 15)
    v[[2, 9]] = np.nan  # missing gauges
    px[:3], py[:3] = gx[:3], gy[:3]  # points on gauges (one of them missing)
    undefined = 0
    for power, radius, mg, beyond in ((2.0, 1500.0, 3, "nearest"), (1.5, 800.0, 2, "nan"),
                                      (3.0, np.inf, 1, "nearest")):
        got = idw_points(px, py, gx, gy, v, power=power, search_radius_m=radius, min_gauges=mg,
                         beyond_radius=beyond)
        want = idw_reference(px, py, gx, gy, v, power, radius, mg, fallback=beyond == "nearest")
        np.testing.assert_allclose(got, want, rtol=1e-12, equal_nan=True)
        assert got[0] == v[0] and got[1] == v[1]  # exact pass-through at reporting gauges
        assert not np.isnan(got[2]) or beyond == "nan"  # a missing gauge is not passed through
        undefined += int(np.isnan(got).sum())
    assert undefined > 0  # the 'nan' case really left cells undefined


def test_domain_mean_equals_weight_means():
    """Volume check: the field is Σ v_g W_g, so its domain mean is Σ v_g mean(W_g)."""
    like = grid(12, 15)
    rng = np.random.default_rng(2)
    gx = X0 + rng.uniform(0, 1500, 5)
    gy = Y0 + rng.uniform(0, 1200, 5)
    depth_m = rng.uniform(0.001, 0.02, 5)
    rs = []
    for k in range(5):
        rs += gauge(f"g{k}", gx[k], gy[k], [depth_m[k]], every_s=3600.0)
    kw = dict(search_radius_m=700.0, min_gauges=2)
    da = grid_rain(rs, like, start=0.0, end=3600.0, **kw)
    W = idw_weights(like, gx, gy, **kw)
    np.testing.assert_allclose(W.sum(axis=0), 1.0, rtol=1e-12)
    rate = depth_m * 1000.0  # mm/h over a 1 h block
    assert float(da.values.mean()) == pytest.approx(float(np.sum(rate * W.mean(axis=(1, 2)))), rel=1e-12)
    np.testing.assert_allclose(da.values[0], np.tensordot(rate, W, axes=1), rtol=1e-12)


def test_flood_model_consumes_the_field_and_balance_closes():
    like = grid(6, 8, d=10.0)
    like = like.copy(data=np.add.outer(np.linspace(1.0, 0.0, 6), np.linspace(0.5, 0.0, 8)))
    xa, ya = centre(like, 0, 0)
    xb, yb = centre(like, 5, 7)
    rs = (gauge("a", xa, ya, [0.004, 0.006], every_s=900.0)          # 40 mm/h in block 0
          + gauge("b", xb, yb, [0.001, 0.001, 0.002, 0.010], every_s=600.0))  # 8 mm/h, then 20 mm/h
    da = grid_rain(rs, like, start=0.0, end=3600.0, block_s=1800.0, min_gauges=1)
    np.testing.assert_array_equal(da["n_gauges"].values, [2, 1])
    rain = to_gridded_rain(da, like)
    assert isinstance(rain, GriddedRain)
    np.testing.assert_allclose(rain.times, [0.0, 1800.0, 3600.0])
    want_mm = float(da.values.mean(axis=(1, 2)).sum()) * 0.5  # mean rate × 0.5 h per block
    assert rain.depth_mm(0, 3600) == pytest.approx(want_mm, rel=1e-12)
    ds = simulate(like, 3600.0, rain=rain, manning=0.03, dt_max=5.0)
    area = 10.0 * 10.0
    rain_volume = float(np.sum(da.values) * 0.5 / 1000.0 * area)  # Σ cells, blocks of rate × 0.5 h
    assert float(ds["volume_rain"][-1]) == pytest.approx(rain_volume, rel=1e-9)
    assert float(ds["volume_storage"][-1]) == pytest.approx(rain_volume, rel=1e-9)  # closed box
    assert float(ds["volume_relative_error"][-1]) < 1e-10


def test_datetimes_origin_missing_and_intensity():
    t0 = datetime(2023, 9, 7, 12, tzinfo=UTC)
    rs = [Reading("a", "rain_gauge", t0 + timedelta(minutes=30), 0.005, x=X0, y=Y0),
          Reading("a", "rain_gauge", t0 + timedelta(minutes=60), 0.005, x=X0, y=Y0),  # block 0 (end inclusive)
          Reading("b", "rain_gauge", t0 + timedelta(minutes=90), 0.002, x=X0 + 50, y=Y0),
          # intensity gauge: 10 mm/h from 00:00 to 01:00 then 20 mm/h to 02:00
          Reading("c", "rain_gauge", t0, 0.0, x=X0 + 90, y=Y0, unit="m/s"),
          Reading("c", "rain_gauge", t0 + timedelta(hours=1), 10 / 3.6e6, x=X0 + 90, y=Y0, unit="m/s"),
          Reading("c", "rain_gauge", t0 + timedelta(hours=2), 20 / 3.6e6, x=X0 + 90, y=Y0, unit="m/s"),
          Reading("w", "water_level", t0, 1.0, x=X0, y=Y0)]  # ignored
    ids, gx, gy, depth = gauge_block_depths(rs, start=t0, end=t0 + timedelta(hours=2))
    assert ids == ["a", "b", "c"]
    np.testing.assert_allclose(depth[0], [0.010, np.nan, 0.010], equal_nan=True)
    np.testing.assert_allclose(depth[1], [np.nan, 0.002, 0.020], equal_nan=True)
    _, _, _, dz = gauge_block_depths(rs, start=t0, end=t0 + timedelta(hours=2), missing="zero")
    assert dz[0, 1] == 0.0
    like = grid()
    da = grid_rain(rs, like, start=t0, end=t0 + timedelta(hours=2), origin=t0 - timedelta(hours=1))
    np.testing.assert_allclose(da["time"].values, [3600.0, 7200.0])
    assert da.attrs["time_origin"].startswith("2023-09-07T11:00")


def test_lonlat_positions_are_projected():
    rs = [Reading("g", "rain_gauge", 3600.0, 0.001, lon=114.05, lat=22.55)]
    ids, gx, gy, _ = gauge_block_depths(rs, start=0.0, end=3600.0)
    # EPSG:4547 (CM 114E, false easting 500 km): 0.05° east of the CM at 22.55°N ≈ 5.14 km
    assert gx[0] == pytest.approx(505_140, abs=50) and 2_490_000 < gy[0] < 2_500_000


def test_errors_name_the_problem():
    like = grid()
    with pytest.raises(ValidationError, match="no rain_gauge"):
        grid_rain([Reading("w", "water_level", 1.0, 1.0, x=X0, y=Y0)], like, start=0.0, end=10.0)
    with pytest.raises(ValidationError, match="unit='mm'"):
        gauge_block_depths([Reading("a", "rain_gauge", 1.0, 3.0, x=X0, y=Y0, unit="mm")], start=0.0, end=10.0)
    with pytest.raises(ValidationError, match="different positions"):
        gauge_block_depths([Reading("a", "rain_gauge", 1.0, 0.0, x=X0, y=Y0),
                            Reading("a", "rain_gauge", 2.0, 0.0, x=X0 + 5, y=Y0)], start=0.0, end=10.0)
    with pytest.raises(ValidationError, match="power"):
        idw_points([0.0], [0.0], [1.0], [1.0], [1.0], power=0)
    with pytest.raises(ValidationError, match="naive"):
        Reading("a", "rain_gauge", datetime(2024, 1, 1), 0.0)
    da = grid_rain(gauge("a", X0, Y0, [0.001], every_s=3600.0), like, start=0.0, end=7200.0)
    assert np.isnan(da.values[1]).all()  # no gauge reported in block 1
    with pytest.raises(ValidationError, match="NaN cells in block"):
        to_gridded_rain(da)
    with pytest.raises(GridError, match="dims"):
        to_gridded_rain(da.isel(time=0))


def test_warped_onto_another_grid():
    like = grid()
    rs = gauge("a", *centre(like, 0, 0), [0.002], every_s=3600.0)
    da = grid_rain(rs, like, start=0.0, end=3600.0)
    coarse = make_grid(np.zeros((3, 4)), Affine(2 * D, 0, X0, 0, -2 * D, Y0 + 6 * D), "EPSG:4547")
    rain = to_gridded_rain(da, coarse)
    assert rain.rates.shape == (1, 3, 4)
    np.testing.assert_allclose(rain.rates * 3.6e6, 2.0, rtol=1e-9)


def test_readings_from_normalised_observations_and_frames():
    from types import SimpleNamespace

    import pandas as pd

    from twin.sensors import Sensor, SensorRegistry

    t = datetime(2024, 6, 1, tzinfo=UTC)
    obs = SimpleNamespace(datastream_id="RG-1/rain_gauge", kind="rain_gauge", station="RG-1",
                          phenomenon_time=t, value=0.002, unit="m", event=None)
    reg = SensorRegistry([Sensor(id="RG-1", kind="rain_gauge", lon=114.05, lat=22.55)])
    r = from_normalized(obs, reg)
    assert (r.lon, r.lat, r.station, r.unit, r.time) == (114.05, 22.55, "RG-1", "m", t)
    assert from_normalized(obs, {"RG-1": (114.1, 22.6)}).lon == 114.1
    assert from_normalized(obs).lon is None
    df = pd.DataFrame({"datastream_id": ["a", "b"], "kind": ["rain_gauge"] * 2, "phenomenon_time": [t, t],
                       "value": [0.001, float("nan")], "x": [X0, X0], "y": [Y0, Y0]})
    rs = as_readings(df)
    assert rs[0].time == t and rs[0].value == 0.001 and rs[1].value is None and rs[0].lon is None
