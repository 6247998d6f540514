"""scenarios.compare and `twin compare`: two real small runs of each kind compared.

The runs are made here with the run pipeline on the real Shenzhen data:
floods on Futian at 500 m for 0.5 h under 60 and 150 mm/h (and one at 400 m,
another grid), slopes on Futian at 250 m under 0 and 2 mm/h, and two
generated towers of 6 and 12 storeys (a run kind without a model grid).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

from scenarios.compare import COMPARE_CSV, COMPARE_JSON, COMPARE_NC, compare_runs, open_run
from twin import pipeline
from twin.errors import ValidationError
from viz.browser import TWINMAP_READY_JS, BrowserSession
from viz.offline import assert_offline

pytestmark = pytest.mark.data

FLOOD = {"districts": ["Futian"], "hours": 0.5, "resolution": 500.0}
SLOPE = {"districts": ["Futian"], "resolution": 250.0, "hours": 12.0, "runout": False}
TOWER = {"floor_area_m2": 600.0}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, city):
    d = tmp_path_factory.mktemp("compare_runs")
    specs = {
        "flood_a": ("flood_forecast", {**FLOOD, "rain_mm_h": 60.0}),
        "flood_b": ("flood_forecast", {**FLOOD, "rain_mm_h": 150.0}),
        "flood_c": ("flood_forecast", {**FLOOD, "rain_mm_h": 150.0, "resolution": 400.0}),
        "slope_a": ("slope_forecast", {**SLOPE, "rain_mm_h": 0.0}),
        "slope_b": ("slope_forecast", {**SLOPE, "rain_mm_h": 2.0}),
        "tower_a": ("evacuate_building", {**TOWER, "levels": 6}),
        "tower_b": ("evacuate_building", {**TOWER, "levels": 12}),
    }
    for name, (kind, params) in specs.items():
        pipeline.run(kind, params, d / name, city=city, report=False, map=False)
    return d


def _summary(folder):
    return json.loads((folder / "summary.json").read_text(encoding="utf-8"))


def _main(folder, name):
    with xr.open_dataset(folder) as ds:
        return np.asarray(ds[name].values, dtype=np.float32)


def test_flood_difference_is_the_direct_subtraction_and_kpis_are_the_summaries(runs, tmp_path):
    a, b = runs / "flood_a", runs / "flood_b"
    cmp = compare_runs(a, b, tmp_path, map=False, report=False)
    direct = _main(b / "flood.nc", "max_depth") - _main(a / "flood.nc", "max_depth")
    assert np.nanmax(direct) > 0.05  # the heavier rain floods more: something to compare
    with xr.open_dataset(tmp_path / COMPARE_NC) as nc:
        d = nc["max_depth_b_minus_a"]
        np.testing.assert_array_equal(d.values, direct)
        assert nc.attrs["crs"] == "EPSG:4547" and "spatial_ref" in nc and d.attrs["grid_mapping"] == "spatial_ref"
        assert {"arrival_time_b_minus_a", "time_of_max_depth_b_minus_a"} <= set(nc.data_vars)
        assert "elevation_b_minus_a" not in nc  # an input held fixed, not a result
    out = json.loads((tmp_path / COMPARE_JSON).read_text(encoding="utf-8"))
    st = out["variables"]["max_depth"]
    assert out["main_variable"] == "max_depth" and out["grid"]["same_grid"] and out["grid"]["resampled"] is None
    assert st["max"] == pytest.approx(float(np.nanmax(direct))) and st["min"] == pytest.approx(float(np.nanmin(direct)))
    assert st["cells_b_above"] == int((direct > 0.05).sum()) > 0 and st["cells_b_below"] == int((direct < -0.05).sum())
    assert st["area_b_above_km2"] == pytest.approx(st["cells_b_above"] * 0.25)  # 500 m cells
    assert out["request_differences"] == [{"field": "rain_mm_h", "a": 60.0, "b": 150.0}]
    # KPI rows: the values of both summaries, B − A and (B − A) / |A|
    sa, sb = _summary(a), _summary(b)
    rows = {r["key"]: r for r in out["kpis"]}
    assert [r["key"] for r in cmp.kpis][:2] == ["max_depth_m", "flooded_area_max_km2.>=0.15m"]
    for key, va, vb in [("max_depth_m", sa["max_depth_m"], sb["max_depth_m"]), ("steps", sa["steps"], sb["steps"])] + [
            (f"flooded_area_max_km2.{k}", sa["flooded_area_max_km2"][k], sb["flooded_area_max_km2"][k])
            for k in sa["flooded_area_max_km2"]]:
        r = rows[key]
        assert (r["a"], r["b"]) == (va, vb), key
        assert r["b_minus_a"] == pytest.approx(vb - va)
        assert r["relative_change"] == (None if va == 0 else pytest.approx((vb - va) / abs(va)))
    with open(tmp_path / COMPARE_CSV, encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    assert lines[0] == "key,label,group,a,b,b_minus_a,relative_change" and len(lines) == len(out["kpis"]) + 1
    assert lines[1].startswith(f"max_depth_m,maximum depth (m),flood_forecast summary,{sa['max_depth_m']},{sb['max_depth_m']},")


def test_different_grids_put_b_on_a_grid_by_the_nearest_cell_and_say_so(runs, tmp_path):
    a, c = runs / "flood_a", runs / "flood_c"
    cmp = compare_runs(a, c, tmp_path, map=False, report=False, thresholds={"max_depth": 0.1})
    assert "resampled onto A's grid (nearest cell" in cmp.grid["resampled"] and cmp.grid["same_grid"] is False
    with xr.open_dataset(a / "flood.nc") as da, xr.open_dataset(c / "flood.nc") as dc:
        ta, tc = da.attrs["transform"], dc.attrs["transform"]
        av, cv = da["max_depth"].values.astype(np.float32), dc["max_depth"].values.astype(np.float32)
        xa, ya = np.meshgrid(da["x"].values, da["y"].values)
    assert tc[0] == 400.0 and ta[0] == 500.0
    col, row = (xa - tc[2]) / tc[0], (ya - tc[5]) / tc[4]  # B's fractional cell of each A cell centre
    inside = (col >= 0) & (row >= 0) & (col < cv.shape[1]) & (row < cv.shape[0])
    clear = inside & (np.abs(col - np.round(col)) > 1e-6) & (np.abs(row - np.round(row)) > 1e-6)
    expect = cv[np.floor(row[clear]).astype(int), np.floor(col[clear]).astype(int)] - av[clear]
    d = cmp.differences["max_depth"].values
    assert d.shape == av.shape and clear.sum() > 0.5 * d.size
    np.testing.assert_array_equal(d[clear], expect)
    assert cmp.stats["max_depth"]["threshold"] == 0.1
    assert cmp.stats["max_depth"]["cells_b_above"] == int((d[np.isfinite(d)] > 0.1).sum())


def test_slope_difference_and_kpis(runs, tmp_path):
    a, b = runs / "slope_a", runs / "slope_b"
    cmp = compare_runs(a, b, tmp_path, map=False, report=False)
    assert list(cmp.differences)[0] == "fs_min"  # the kind's compare variable first
    assert not {"elevation", "slope", "soil_depth", "zone", "district"} & set(cmp.differences)
    direct = _main(b / "slope.nc", "fs_min") - _main(a / "slope.nc", "fs_min")
    assert np.nanmin(direct) < 0  # rain lowers the factor of safety somewhere
    with xr.open_dataset(tmp_path / COMPARE_NC) as nc:
        np.testing.assert_array_equal(nc["fs_min_b_minus_a"].values, direct)  # NaN where not modelled, in both
    sa, sb = _summary(a), _summary(b)
    rows = {r["key"]: r for r in cmp.kpis}
    for key in ("cells_failing", "area_failing_km2", "run_time_s"):
        assert (rows[key]["a"], rows[key]["b"]) == (sa[key], sb[key])
    assert rows["cells_failing"]["group"] == "slope_forecast summary"


def test_runs_of_different_kinds_are_refused_naming_both(runs, tmp_path):
    with pytest.raises(ValidationError) as e:
        compare_runs(runs / "flood_a", runs / "slope_b", tmp_path)
    msg = str(e.value)
    assert "flood_a" in msg and "slope_b" in msg and "'flood_forecast'" in msg and "'slope_forecast'" in msg
    assert not (tmp_path / COMPARE_JSON).exists()
    from twin.cli import main

    r = CliRunner().invoke(main, ["compare", str(runs / "tower_a"), str(runs / "flood_b"), "--out", str(tmp_path)])
    assert r.exit_code == 1 and "'evacuate_building'" in r.output and "'flood_forecast'" in r.output


def _grid_ds(**fields) -> xr.Dataset:
    data = {k: (("y", "x"), np.asarray(v)) for k, v in fields.items()}
    return xr.Dataset(data, coords={"y": [2_500_250.0, 2_499_750.0], "x": [500_250.0, 500_750.0]},
                      attrs={"crs": "EPSG:4547", "transform": (500.0, 0.0, 500_000.0, 0.0, -500.0, 2_500_500.0)})


def test_without_a_compare_variable_the_first_result_grid_is_compared_not_the_terrain():
    from types import SimpleNamespace

    from scenarios.compare import grid_variables

    kind = SimpleNamespace(name="k", compare=None)
    z, r = np.ones((2, 2), np.float32), np.zeros((2, 2), np.float32)
    code = np.zeros((2, 2), np.int16)
    a = _grid_ds(elevation=z, zone=code, risk=r, other=r)
    assert grid_variables(kind, a, _grid_ds(elevation=z, zone=code, risk=r)) == ["risk"]
    assert grid_variables(kind, a, _grid_ds(elevation=z, zone=code)) == []  # only inputs: nothing to difference
    assert grid_variables(SimpleNamespace(name="k", compare="other"), a, a) == ["other", "risk"]
    with pytest.raises(ValidationError, match="variables='zonex': not a \\(y, x\\) variable of both runs"):
        grid_variables(kind, a, a, ["zonex"])


def test_a_folder_that_is_no_run_is_refused(tmp_path):
    from twin.errors import DataMissingError

    with pytest.raises(DataMissingError, match="no summary.json naming its kind"):
        open_run(tmp_path)


def test_building_runs_without_grid_get_kpis_and_both_maps(runs, tmp_path):
    a, b = runs / "tower_a", runs / "tower_b"
    cmp = compare_runs(a, b, tmp_path, report=True)
    assert cmp.differences == {} and not (tmp_path / COMPARE_NC).exists()
    sa, sb = _summary(a), _summary(b)
    rows = {r["key"]: r for r in cmp.kpis}
    assert [r["key"] for r in cmp.kpis][:4] == ["rset_s", "people", "people_not_safe", "rset_floor_max_s"]
    for key in ("rset_s", "people", "rset_floor_max_s"):
        assert (rows[key]["a"], rows[key]["b"]) == (sa[key], sb[key])
    assert rows["people"]["b_minus_a"] == sb["people"] - sa["people"] > 0
    page = (tmp_path / "compare.html").read_text(encoding="utf-8")
    assert_offline(page)
    assert "no result grid to difference" in page and "RSET" in page


def test_cli_json_and_help(runs, tmp_path):
    from twin.cli import main

    r = CliRunner().invoke(main, ["compare", "--help"])
    assert r.exit_code == 0 and "RUN_A RUN_B" in r.output and "--threshold" in r.output
    r = CliRunner().invoke(main, ["compare", str(runs / "flood_a" / "flood.nc"), str(runs / "flood_b"),
                                  "--out", str(tmp_path), "--no-map", "--no-report", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["kind"] == "flood_forecast" and out["files"] == {"netcdf": COMPARE_NC, "csv": COMPARE_CSV,
                                                                  "json": COMPARE_JSON}
    assert out == json.loads((tmp_path / COMPARE_JSON).read_text(encoding="utf-8"))
    bad = CliRunner().invoke(main, ["compare", str(runs / "flood_a"), str(runs / "flood_b"), "--out",
                                    str(tmp_path), "--threshold", "max_depth"])
    assert bad.exit_code == 2 and "VAR=VALUE" in bad.output
    bad = CliRunner().invoke(main, ["compare", str(runs / "flood_a"), str(runs / "flood_b"), "--out",
                                    str(tmp_path), "--threshold", "rain=1", "--no-map"])
    assert bad.exit_code == 1 and "'rain'" in bad.output and "max_depth" in bad.output


@pytest.mark.browser
def test_map_pages_split_a_b_with_the_difference_offline(runs, tmp_path, chromium):
    flood = compare_runs(runs / "flood_a", runs / "flood_b", tmp_path / "flood")
    tower = compare_runs(runs / "tower_a", runs / "tower_b", tmp_path / "tower", report=False)
    report = (tmp_path / "flood" / "compare.html").read_text(encoding="utf-8")
    assert_offline(report)
    assert report.count("data:image/png;base64,") == 3  # one difference map per compared variable
    with BrowserSession(width=1000, height=700) as br:
        br.goto(flood.paths["map"], ready_js=TWINMAP_READY_JS, timeout=90)
        assert br.evaluate("[compare.a.ready, compare.b.ready, compare.diffShown]") == [True, True, False]
        assert br.evaluate("compare.a.scene.title") == "A: flood_a"
        assert br.evaluate("compare.b.scene.title") == "B: flood_b"
        assert br.evaluate("compare.a.frameCount") == br.evaluate("compare.b.frameCount") == 4
        b_ids = br.evaluate("compare.b.deck.props.layers.map(l => l.id)")
        br.evaluate("document.querySelector('.tm-cmpbar input').click()")
        br.wait_for("compare.diffShown === true && compare.b.scene.title.indexOf('B − A') === 0", timeout=30)
        br.evaluate("compare.b._drawn()")
        diff_ids = br.evaluate("compare.b.deck.props.layers.map(l => l.id)")
        errors, network = list(br.console_errors), list(br.network_requests)
        br.goto(tower.paths["map"], ready_js=TWINMAP_READY_JS, timeout=90)
        tower_state = br.evaluate("[compare.a.ready, compare.b.ready, compare.diffScene === null, "
                                  "compare.a.deck.props.layers.length > 0, compare.b.deck.props.layers.length > 0, "
                                  "!!document.querySelector('.tm-cmpbar')]")
        errors += br.console_errors
        network += br.network_requests
    assert network == [] and errors == [], (network, errors)
    assert "diff" not in b_ids and "diff" in diff_ids  # the difference replaces B in the right half
    assert tower_state == [True, True, True, True, True, False]  # both towers, no difference toggle
