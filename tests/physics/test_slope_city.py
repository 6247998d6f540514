"""physics.slope_city on the real city grid (Guangming at 90 m): modelled cells, parameters, fills, rain sources."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from physics._kernels import slope as K
from physics.slope_city import (
    MIN_SLOPE_DEG,
    eval_times,
    flood_run_info,
    rain_series,
    read_fills,
    read_rain_csv,
    slope_setup,
)
from physics.slope_params import depth_from_slope, load_table
from twin.errors import ValidationError

SITE = (113.93194, 22.71806)  # the 2015 Guangming landslide (hazard_events.json; a public fact)


def _box(lon, lat, half_deg=0.003, **props):
    x0, x1, y0, y1 = lon - half_deg, lon + half_deg, lat - half_deg, lat + half_deg
    return {"type": "Feature", "properties": props,
            "geometry": {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}}


def _fc(*features):
    return {"type": "FeatureCollection", "features": list(features)}


@pytest.fixture(scope="module")
def domain(city):
    from twin.domain import Domain

    return Domain.from_city(city, resolution=90.0, districts="Guangming", buffer_m=0.0)


@pytest.fixture(scope="module")
def plain(domain):
    return slope_setup(domain)


def _cell(domain, lon, lat):
    from pyproj import Transformer

    x, y = Transformer.from_crs("EPSG:4326", domain.crs, always_xy=True).transform(lon, lat)
    r, c = domain.cell_of(x, y)
    return int(r), int(c)


def test_modelled_cells_are_land_at_least_the_minimum_slope(domain, plain):
    active = plain["active"]
    slope = np.asarray(domain.slope)
    assert active.sum() == plain["cells"].size == plain["params"].shape[1] > 1000
    assert not (active & ~domain.land).any()
    with np.errstate(invalid="ignore"):
        flat = domain.land & (slope < MIN_SLOPE_DEG)
    assert flat.sum() > 100  # Guangming's plains: there are flat cells to leave out
    assert not (active & flat).any()
    assert np.isnan(plain["soil_depth"][flat]).all() and (plain["zone"][flat] == -1).all()
    assert plain["params"][K.P_SLOPE].min() >= np.radians(MIN_SLOPE_DEG)
    np.testing.assert_allclose(plain["params"][K.P_SLOPE], np.radians(slope.ravel()[plain["cells"]]))


def test_parameters_from_the_default_zone_and_the_depth_rule(plain):
    t = load_table()
    z = t.zone(t.default_zone)
    p = plain["params"]
    assert (plain["zones"] == z.code).all()
    np.testing.assert_allclose(p[K.P_COHESION], z.c_kpa.default * 1e3)
    np.testing.assert_allclose(p[K.P_PHI], np.radians(z.phi_deg.default))
    np.testing.assert_allclose(p[K.P_GAMMA_S], z.gamma_kn_m3.default * 1e3)
    r = z.depth_rule
    depth = depth_from_slope(np.degrees(p[K.P_SLOPE]), r.h_min_m, r.h_max_m, r.slope_min_deg, r.slope_max_deg)
    np.testing.assert_allclose(p[K.P_SOIL_DEPTH], depth)
    np.testing.assert_allclose(p[K.P_WATER_TABLE], np.minimum(z.water_table_m.default, depth))
    np.testing.assert_allclose(p[K.P_DHAT], K.iverson_dhat(z.d0_m2_s.default, p[K.P_SLOPE]))
    assert (p[K.P_I_LT] == 0).all()


def test_fill_raises_the_surface_and_sets_zone_depth_slope(domain, plain):
    fills = _fc(_box(*SITE, thickness_m=40.0, name="dump", c_kpa=1.0))
    s = slope_setup(domain, fills=fills)
    t = load_table()
    fill = s["fill_thickness"] > 0
    assert 20 < fill.sum() < 60  # about 0.6 x 0.67 km at 90 m
    r, c = _cell(domain, *SITE)
    assert fill[r, c]
    raised = s["elevation"] - plain["elevation"]
    np.testing.assert_allclose(raised[fill], 40.0)
    assert np.nanmax(np.abs(raised[~fill])) == 0.0
    assert (s["zone"][fill & s["active"]] == t.zone("fill_spoil").code).all()
    np.testing.assert_allclose(s["soil_depth"][fill & s["active"]], 40.0)
    # the flat-topped fill's walls rise 40 m over one 90 m cell: the rim steepens on the whole
    # (a hillside fill may flatten its uphill side)
    from scipy import ndimage

    rim = ndimage.binary_dilation(fill) & ~ndimage.binary_erosion(fill)
    assert np.nanmean(s["slope_deg"][rim]) > np.nanmean(np.asarray(domain.slope)[rim]) + 5
    # Horn's window spans two cells: a 40 m step over 180 m reads atan(40 / 180) = 12.5 deg at least
    assert np.nanmax(s["slope_deg"][rim]) > 12
    far = ~ndimage.binary_dilation(fill, iterations=2)
    np.testing.assert_array_equal(s["slope_deg"][far], np.asarray(domain.slope)[far])
    # per-polygon override (c_kpa = 1) and the fill zone's other defaults
    k = np.searchsorted(s["cells"], r * domain.shape[1] + c)
    if s["cells"][k] == r * domain.shape[1] + c:
        assert s["params"][K.P_COHESION, k] == 1e3
        assert s["params"][K.P_PHI, k] == pytest.approx(np.radians(t.zone("fill_spoil").phi_deg.default))
    assert s["fills"][0]["cells"] == int(fill.sum())
    assert s["fills"][0]["volume_m3"] == pytest.approx(40.0 * fill.sum() * 90.0**2)


def test_tapered_fill_thins_to_its_edge(domain):
    s = slope_setup(domain, fills=_fc(_box(*SITE, half_deg=0.004, thickness_m=30.0, taper_m=180.0)))
    th = s["fill_thickness"]
    inside = th > 0
    from scipy import ndimage

    edge = inside & ~ndimage.binary_erosion(inside)
    np.testing.assert_allclose(th[edge], 30.0 * 90.0 / 180.0)  # one cell from the outside: d = 90 m
    assert th.max() == 30.0


def test_bad_fills_list_every_problem():
    bad = _fc(_box(*SITE, thickness_m=-5.0, name="a"), _box(*SITE, thickness_m=10.0, zone="marble", name="b"),
              _box(*SITE, thickness_m=10.0, phi_deg=75.0))
    with pytest.raises(ValidationError) as e:
        read_fills(bad)
    msg = str(e.value)
    assert "3 problem(s)" in msg
    assert "feature 0 ('a'): thickness_m=-5.0" in msg
    assert "feature 1 ('b'): zone='marble'" in msg
    assert "feature 2: phi_deg=75.0" in msg


def test_rain_from_a_design_storm_and_a_uniform_rate(plain):
    rain, edges, info = rain_series({"storm": "2023-09-07", "storm_hours": 24.0}, plain)
    assert rain.shape == (144, 1) and edges[0] == 0 and edges[-1] == 24 * 3600  # 10-min blocks
    total_mm = float((rain[:, 0] * np.diff(edges)).sum() * 1e3)
    assert total_mm == pytest.approx(info["total_mm"], rel=1e-12)
    assert info["duration_h"] == 24.0 and info["method"] == "alternating_block"
    rain, edges, info = rain_series({"rain_mm_h": 20.0, "storm_hours": 3.0}, plain)
    np.testing.assert_array_equal(edges, [0.0, 10800.0])
    assert rain[0, 0] == pytest.approx(20.0 / 3.6e6, rel=1e-15)
    assert info["total_mm"] == pytest.approx(60.0)


def test_rain_csv(tmp_path, plain):
    p = tmp_path / "rain.csv"
    p.write_text("# gauge X\ntime_h, mm_h\n0, 10\n1, 30\n3, 0\n", encoding="utf-8")
    edges, rates = read_rain_csv(p)
    np.testing.assert_array_equal(edges, [0.0, 3600.0, 10800.0, 18000.0])  # last row lasts as the one before
    np.testing.assert_array_equal(rates, [10.0, 30.0, 0.0])
    rain, e2, info = rain_series({"rain_file": str(p)}, plain)
    assert info["total_mm"] == pytest.approx(70.0) and rain.shape == (3, 1)
    p.write_text("time_h,mm_h\n0,10\n1,-3\n", encoding="utf-8")
    with pytest.raises(ValidationError, match="line 3"):
        read_rain_csv(p)


def test_rain_netcdf_is_regridded_per_cell(tmp_path, domain, plain):
    from pyproj import Transformer

    # a lon/lat rain grid over Guangming: 10 mm/h west of 113.93 E, 40 mm/h east of it, two hourly blocks
    lon = np.arange(113.70, 114.15, 0.01)
    lat = np.arange(22.95, 22.55, -0.01)
    east = (lon >= 113.93)[None, :].repeat(lat.size, 0)
    frame = np.where(east, 40.0, 10.0)
    da = xr.DataArray(np.stack([frame, frame / 2]), dims=("time", "y", "x"),
                      coords={"time": [0.0, 3600.0], "y": lat, "x": lon}, attrs={"crs": "EPSG:4326"})
    p = tmp_path / "rain.nc"
    xr.Dataset({"rain": da}).to_netcdf(p)
    rain, edges, info = rain_series({"rain_file": str(p)}, plain)
    assert rain.shape == (2, plain["cells"].size)
    np.testing.assert_array_equal(edges, [0.0, 3600.0, 7200.0])
    mm_h = rain * 3.6e6
    x, y = domain.cell_centres()
    row, col = np.unravel_index(plain["cells"], domain.shape)
    clon, _ = Transformer.from_crs(domain.crs, "EPSG:4326", always_xy=True).transform(x[col], y[row])
    far_w, far_e = clon < 113.915, clon > 113.945  # more than one rain cell from the step
    np.testing.assert_allclose(mm_h[0, far_w], 10.0, rtol=1e-6)
    np.testing.assert_allclose(mm_h[0, far_e], 40.0, rtol=1e-6)
    np.testing.assert_allclose(mm_h[1], mm_h[0] / 2, rtol=1e-6)


@pytest.fixture(scope="module")
def flood_run(city, tmp_path_factory):
    from twin import pipeline

    out = tmp_path_factory.mktemp("flood")
    pipeline.run("flood_forecast", {"districts": ["Guangming"], "hours": 2.0, "resolution": 500.0,
                                    "peak_fraction": 0.25}, out, report=False, map=False)
    return out


def test_flood_run_gives_the_same_storm_and_area(flood_run, plain):
    info = flood_run_info(flood_run)
    assert info["districts"] == ["Guangming"]
    rain, edges, storm = rain_series({"flood": str(flood_run)}, plain)
    same, e2, s2 = rain_series({"storm": "2023-09-07", "storm_hours": 2.0, "peak_fraction": 0.25}, plain)
    np.testing.assert_array_equal(edges, e2)
    np.testing.assert_allclose(rain, same, rtol=1e-12)
    assert storm["total_mm"] == pytest.approx(s2["total_mm"]) and storm["peak_fraction"] == 0.25
    assert rain_series({"flood": str(flood_run / "flood.nc")}, plain)[0].shape == rain.shape


def test_eval_times():
    np.testing.assert_array_equal(eval_times(3.0), [0.0, 3600.0, 7200.0, 10800.0])
    np.testing.assert_array_equal(eval_times(1.5), [0.0, 3600.0, 5400.0])
    np.testing.assert_array_equal(eval_times(1.0, 1800.0), [0.0, 1800.0, 3600.0])


def test_rain_from_the_gauges_of_a_store(tmp_path, plain):
    from datetime import UTC, datetime, timedelta

    from twin.sensors import Sensor
    from twin.store import Store

    t0 = datetime(2023, 9, 7, 1, 0, tzinfo=UTC)
    gauges = {"G1": (113.90, 22.75), "G2": (113.95, 22.78), "G3": (113.93, 22.72)}
    with Store.open(tmp_path / "store") as store:
        store.put_sensors([Sensor(id=k, kind="rain_gauge", lon=lon, lat=lat, unit="m")
                           for k, (lon, lat) in gauges.items()])
        for k in gauges:
            for i in range(1, 13):  # 2 h of 10-min readings: 2 mm each in the first hour, 1 mm in the second
                store.put_observation(f"{k}/rain_gauge/tb", t0 + timedelta(minutes=10 * i),
                                      0.002 if i <= 6 else 0.001, "m")
    rain, edges, info = rain_series({"gauges": str(tmp_path / "store"), "rain_start": "2023-09-07T09:00+08:00",
                                     "storm_hours": 2.0}, plain)
    np.testing.assert_allclose(edges, [0.0, 3600.0, 7200.0])  # hourly blocks
    assert rain.shape == (2, plain["cells"].size)
    # every gauge reports the same: inverse-distance weighting reproduces a constant field exactly
    np.testing.assert_allclose(rain[0] * 3.6e6, 12.0, rtol=1e-12)
    np.testing.assert_allclose(rain[1] * 3.6e6, 6.0, rtol=1e-12)
    assert info["gauges"] == 3 and info["total_mm"] == pytest.approx(18.0)
    with pytest.raises(ValidationError, match="no rain_gauge reading"):
        rain_series({"gauges": str(tmp_path / "store"), "rain_start": "2024-01-01T00:00Z", "storm_hours": 1.0},
                    plain)


def test_zone_polygons_set_the_zone_parameters(domain, plain):
    t = load_table()
    sed = t.zone("weathered_sedimentary")
    s = slope_setup(domain, zones=_fc(_box(*SITE, half_deg=0.02, zone="weathered_sedimentary")))
    inside = s["zones"] == sed.code
    assert 100 < inside.sum() < s["cells"].size
    np.testing.assert_allclose(s["params"][K.P_COHESION, inside], sed.c_kpa.default * 1e3)
    np.testing.assert_allclose(s["params"][K.P_COHESION, ~inside], t.zone(t.default_zone).c_kpa.default * 1e3)
    r = sed.depth_rule
    np.testing.assert_allclose(s["params"][K.P_SOIL_DEPTH, inside],
                               depth_from_slope(np.degrees(s["params"][K.P_SLOPE, inside]), r.h_min_m, r.h_max_m,
                                                r.slope_min_deg, r.slope_max_deg))
    np.testing.assert_array_equal(s["cells"], plain["cells"])  # zones change parameters, not the cells


def test_flood_run_by_id_in_a_store(flood_run, tmp_path):
    import shutil

    from physics.slope_city import resolve_flood_run
    from twin.store import Store

    with Store.open(tmp_path / "store") as store:
        other = store.start_run("slope_forecast", {})
        store.end_run(other, "done")
        rid = store.start_run("flood_forecast", {"hours": 2.0})
        store.end_run(rid, "done")
    shutil.copytree(flood_run, tmp_path / "store" / "runs" / f"run-{rid:05d}")
    path = resolve_flood_run(str(rid), tmp_path / "store")
    assert path == tmp_path / "store" / "runs" / f"run-{rid:05d}" / "flood.nc"
    assert resolve_flood_run(str(flood_run)) == flood_run / "flood.nc"
    with pytest.raises(ValidationError, match="slope_forecast run"):
        resolve_flood_run(str(other), tmp_path / "store")
    with pytest.raises(ValidationError, match="--store"):
        resolve_flood_run(str(rid))
