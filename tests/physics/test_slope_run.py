"""The ``slope_forecast`` run kind end to end through twin.pipeline.run (Guangming at 90 m, real data)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr

from physics._kernels import slope as K
from twin import pipeline
from twin.errors import RequestError, ValidationError

SITE = (113.93194, 22.71806)  # the 2015 Guangming landslide (a public fact)
FILL = {"type": "FeatureCollection", "features": [{
    "type": "Feature", "properties": {"name": "dump", "thickness_m": 60.0, "taper_m": 150.0},
    "geometry": {"type": "Polygon", "coordinates": [[[113.9285, 22.7155], [113.9355, 22.7155], [113.9355, 22.7215],
                                                      [113.9285, 22.7215], [113.9285, 22.7155]]]}}]}


def test_a_request_with_several_bad_fields_lists_them_all(tmp_path):
    out = tmp_path / "never"
    with pytest.raises(ValidationError) as e:
        pipeline.run("slope_forecast", {"hours": 100.0, "members": 0, "mode": "sometimes", "n_depths": 0}, out)
    msg = str(e.value)
    for field in ("hours=100.0", "members=0", "mode='sometimes'", "n_depths=0"):
        assert field in msg
    assert not out.exists()


def test_a_request_the_model_refuses_lists_every_problem_and_runs_nothing(tmp_path, city):
    out = tmp_path / "never"
    params = {"districts": ["Atlantis"], "fills": str(tmp_path / "no.geojson"), "soils": str(tmp_path / "no.toml"),
              "rain_file": str(tmp_path / "no.csv"), "hours": 6.0}
    with pytest.raises(RequestError) as e:
        pipeline.run("slope_forecast", params, out, city=city)
    msg = str(e.value)
    assert "4 problem(s)" in msg and e.value.field == "districts" and e.value.value == ["Atlantis"]
    for field in ("districts=['Atlantis']", "fills=", "soils=", "rain_file="):
        assert field in msg
    assert not out.exists()
    with pytest.raises(ValidationError, match="give one rain source, not storm and rain_mm_h"):
        pipeline.check("slope_forecast", {"storm": "2023-09-07", "rain_mm_h": 10.0})
    with pytest.raises(RequestError, match="exceeds the longest duration"):
        pipeline.check("slope_forecast", {"hours": 48.0, "storm_hours": 48.0}, city=city)
    nc = tmp_path / "not_rain.nc"
    xr.Dataset({"r": (("y", "x"), np.zeros((2, 2)))}).to_netcdf(nc)
    with pytest.raises(RequestError, match=r"rain_file=.*needs a variable 'rain' with dims \(time, y, x\)"):
        pipeline.check("slope_forecast", {"rain_file": str(nc)}, city=city)


@pytest.fixture(scope="module")
def gm_run(city, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("slope")
    fills = tmp / "fill.geojson"
    fills.write_text(json.dumps(FILL), encoding="utf-8")
    params = {"districts": ["Guangming"], "resolution": 90.0, "hours": 12.0, "fills": str(fills)}
    res = pipeline.run("slope_forecast", params, tmp / "out", city=city, report=True, map=True)
    return res, tmp / "out", params


def test_every_file_is_written_and_opens(gm_run):
    res, out, _ = gm_run
    names = {p.name for p in out.iterdir()}
    assert {"slope.nc", "fs_min.tif", "time_of_failure.tif", "runout_depth.tif", "assets_hit.geojson",
            "summary.json", "report.html", "map.html"} <= names
    with xr.open_dataset(out / "slope.nc") as ds:
        for v in ("fs_min", "depth_of_minimum", "time_of_failure", "slope", "soil_depth", "elevation",
                  "runout_depth", "runout_source"):
            assert ds[v].dtype == np.float32 and ds[v].dims == ("y", "x")
        assert ds["zone"].dtype == np.int16
        assert ds.attrs["crs"] == "EPSG:4547" and len(ds.attrs["transform"]) == 6
        assert ds.attrs["resolution_m"] == 90.0 and ds.attrs["duration_h"] == 12.0
        assert ds.attrs["mode"] == "deterministic" and ds.attrs["region"] == "Guangming"
        assert json.loads(ds.attrs["storm"])["duration_h"] == 12.0
        fs_nc = ds["fs_min"].values
        tf_nc = ds["time_of_failure"].values
    for name, nc in (("fs_min", fs_nc), ("time_of_failure", tf_nc)):
        with rasterio.open(out / f"{name}.tif") as src:
            assert src.crs.to_epsg() == 4547 and src.transform.a == 90.0
            np.testing.assert_array_equal(src.read(1), nc)
    import geopandas as gpd

    hit = gpd.read_file(out / "assets_hit.geojson")
    assert len(hit) == sum(res.summary["assets_hit"].values())
    if len(hit):
        assert hit.crs.to_epsg() == 4326 and set(hit["kind"]) <= {"building", "road", "metro_line", "metro_station"}


def test_values_match_a_direct_kernel_call(gm_run, city):
    from physics.slope_city import eval_times, rain_series, slope_setup
    from twin.domain import Domain

    res, out, params = gm_run
    domain = Domain.from_city(city, resolution=90.0, districts="Guangming", buffer_m=0.0)
    setup = slope_setup(domain, fills=params["fills"])
    rain, edges, _ = rain_series({"storm": "2023-09-07", "storm_hours": 12.0}, setup)
    t_eval = eval_times(12.0)
    with xr.open_dataset(out / "slope.nc") as ds:
        fs = ds["fs_min"].values.ravel()
        z = ds["depth_of_minimum"].values.ravel()
        tf = ds["time_of_failure"].values.ravel()
    np.testing.assert_array_equal(np.flatnonzero(np.isfinite(fs)), setup["cells"])
    rng = np.random.default_rng(0)
    pick = np.concatenate([rng.choice(setup["cells"].size, 5, replace=False),
                           [int(np.nanargmin(fs[setup["cells"]]))]])
    n = pick.size
    f, d, t = np.empty(n), np.empty(n), np.empty(n)
    K.factor_of_safety(np.ascontiguousarray(setup["params"][:, pick]), rain, edges, t_eval, 10, K.GAMMA_W,
                       f, d, t, np.empty((0, n)))
    cells = setup["cells"][pick]
    np.testing.assert_allclose(fs[cells], f, rtol=1e-6)  # float32 storage
    np.testing.assert_allclose(z[cells], d, rtol=1e-6)
    np.testing.assert_array_equal(tf[cells], t.astype(np.float32))


def test_summary_agrees_with_the_grids(gm_run):
    res, out, _ = gm_run
    s = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    with xr.open_dataset(out / "slope.nc") as ds:
        fs = ds["fs_min"].values.astype(float)
        tf = ds["time_of_failure"].values.astype(float)
        z = ds["depth_of_minimum"].values.astype(float)
        src = ds["runout_source"].values.astype(float)
        dep = ds["runout_depth"].values.astype(float)
    failing = np.nan_to_num(fs, nan=9.0) < 1.0
    assert s["cells_modelled"] == int(np.isfinite(fs).sum())
    assert s["cells_failing"] == int(failing.sum()) > 0  # the 60 m fill fails under this storm
    assert s["area_failing_km2"] == pytest.approx(failing.sum() * 0.0081)
    assert s["earliest_failure_s"] == np.nanmin(tf)
    worst = s["worst_cells"]
    assert len(worst) == 20 and worst[0]["fs_min"] == pytest.approx(np.nanmin(fs))
    assert all(a["fs_min"] <= b["fs_min"] for a, b in zip(worst, worst[1:], strict=False))
    assert worst[0]["zone"] == "fill_spoil"
    assert abs(worst[0]["lon"] - SITE[0]) < 0.01 and abs(worst[0]["lat"] - SITE[1]) < 0.01
    assert sum(d["cells_failing"] for d in s["by_district"].values()) == s["cells_failing"]
    # runout sources: the failing cells, released down to the depth of the minimum FS (the slip surface)
    np.testing.assert_allclose(src[failing], z[failing], rtol=1e-6)
    assert np.nansum(src[~failing]) == 0
    assert s["runout_volume_m3"] == pytest.approx(np.nansum(dep) * 8100.0, rel=1e-5)
    assert s["runout_volume_m3"] <= s["runout_source_volume_m3"] * (1 + 1e-9)
    assert s["kind"] == "slope_forecast" and s["files"]["netcdf"] == "slope.nc"


def test_probabilistic_run(city, tmp_path):
    from physics.slope_city import eval_times, rain_series, slope_setup
    from physics.slope_montecarlo import monte_carlo
    from twin.domain import Domain

    fills = tmp_path / "fill.geojson"
    fills.write_text(json.dumps(FILL), encoding="utf-8")
    params = {"districts": ["Guangming"], "resolution": 90.0, "hours": 6.0, "fills": str(fills),
              "mode": "probabilistic", "members": 64, "seed": 7}
    res = pipeline.run("slope_forecast", params, tmp_path / "out", city=city, report=False, map=False)
    out = tmp_path / "out"
    with xr.open_dataset(out / "slope.nc") as ds:
        p = ds["probability_of_failure"].values.astype(float)
        se = ds["probability_se"].values.astype(float)
        src = ds["runout_source"].values.astype(float)
        fs = ds["fs_min"].values
        assert ds.attrs["mode"] == "probabilistic" and ds.attrs["members"] == 64 and ds.attrs["seed"] == 7
    with rasterio.open(out / "probability_of_failure.tif") as tif:
        np.testing.assert_array_equal(tif.read(1), p.astype(np.float32))
    ok = np.isfinite(fs)
    np.testing.assert_array_equal(np.isfinite(p), ok)
    assert ((p[ok] >= 0) & (p[ok] <= 1)).all() and p[ok].max() > 0.5  # the fill fails in most members
    np.testing.assert_allclose(se[ok], np.sqrt(p[ok] * (1 - p[ok]) / 64), rtol=1e-6, atol=1e-7)
    # sources of the runout: cells with p >= fail_probability (0.5)
    np.testing.assert_array_equal(np.nan_to_num(src) > 0, np.nan_to_num(p) >= 0.5)
    s = res.summary
    assert s["members"] == s["n_members"] == 64 and s["seed"] == 7
    assert s["cells_probable"] == int((np.nan_to_num(p) >= 0.5).sum())
    # the run handed monte_carlo the set-up's parameters, zones, rain and times, depths kept fixed
    domain = Domain.from_city(city, resolution=90.0, districts="Guangming", buffer_m=0.0)
    setup = slope_setup(domain, fills=str(fills))
    rain, edges, _ = rain_series({"storm": "2023-09-07", "storm_hours": 6.0}, setup)
    mc = monte_carlo(setup["params"], setup["zones"], 64, 7, rain=rain, t_edges=edges, t_eval=eval_times(6.0),
                     n_depths=10, table=setup["table"], fixed=("depth_m",))
    np.testing.assert_allclose(p.ravel()[setup["cells"]], mc["p"], rtol=1e-6)


def test_a_flood_run_gives_its_rain_and_area(city, tmp_path):
    flood = tmp_path / "flood"
    pipeline.run("flood_forecast", {"districts": ["Guangming"], "hours": 1.0, "resolution": 500.0}, flood,
                 report=False, map=False)
    res = pipeline.run("slope_forecast", {"flood": str(flood), "resolution": 250.0, "hours": 3.0, "runout": False},
                       tmp_path / "slope", report=False, map=False)
    with xr.open_dataset(flood / "flood.nc") as f, xr.open_dataset(tmp_path / "slope" / "slope.nc") as s:
        assert s.attrs["region"] == f.attrs["region"] == "Guangming"
        fs, ss = json.loads(f.attrs["storm"]), json.loads(s.attrs["storm"])
    assert ss["total_mm"] == pytest.approx(fs["total_mm"]) and ss["duration_h"] == 1.0
    assert ss["source"].startswith("flood run") and res.summary["duration_h"] == 3.0
    # the map plays the flood's water and the slope failures on one slider
    from physics.slope_run import slope_layers

    with xr.open_dataset(tmp_path / "slope" / "slope.nc") as s:
        assert Path(s.attrs["flood_run"]) == (flood / "flood.nc").resolve()
        sets = slope_layers(s.load())
    ids = [i for st in sets for i in st.layer_ids()]
    assert any(i.startswith("flood_depth") for i in ids) and any(i.startswith("slope_fs") for i in ids)
    timed = [st.times_s for st in sets if st.times_s]
    assert len(timed) == 2 and timed[0] == timed[1]  # failure frames on the flood's frame times
