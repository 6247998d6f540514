"""scenarios.outputs on a short run of toy couplings over Futian (250 m, 30 min).

The toy couplings write known fields (a pond deepening in the grid's middle,
a factor of safety dropping, a debris patch) and events with and without a
place, and offer tables and layers, some of them broken on purpose: what
each output holds is checked against what the toys wrote.
"""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from scenarios.coupling import Coupling
from scenarios.outputs import events_table, scenario_outputs
from scenarios.runner import run_coupled
from scenarios.schema import Scenario
from scenarios.translate import Translation

DURATION = 1800.0
EVERY = 600.0


def _pond(ctx):
    ny, nx = ctx.domain.shape
    y, x = np.mgrid[0:ny, 0:nx]
    return ((x - nx / 2) / (nx / 4)) ** 2 + ((y - ny / 2) / (ny / 4)) ** 2


def setup_paint(ctx):
    ctx.own["r2"] = _pond(ctx)
    step_paint(ctx, 0.0, 0.0)


def step_paint(ctx, t, dt):
    r2, k = ctx.own["r2"], t / DURATION
    depth = np.where(r2 < 1, (1 - r2) * 1.0 * k, 0.0)
    st = ctx.state
    st.set_field("water_depth", depth, "m", "water depth")
    prev = st.field("max_water_depth").values if st.has_field("max_water_depth") else depth
    st.set_field("max_water_depth", np.maximum(prev, depth), "m", "max depth")
    st.set_field("factor_of_safety", np.where(r2 < 0.25, 1.6 - k, 2.0), "1", "FS")
    st.set_field("debris_depth", np.where(r2 < 0.1, 2.0 * k, 0.0), "m", "debris")
    if t > 0:
        ctx.emit("incident", "a call", data={"lon": 114.05, "lat": 22.54, "incident": "medical"})
        ctx.emit("note", "no place", data={"n": int(t)})
    ctx.summary["people_stranded"] = 7


def paint_tables(ctx):
    pts = gpd.GeoDataFrame({"name": ["a", "b"]}, geometry=gpd.points_from_xy([114.05, 114.06], [22.54, 22.55]),
                           crs="EPSG:4326")
    return {"points": pts, "plain": pd.DataFrame({"t_s": [0.0, 600.0], "n": [1, 2]})}


def paint_layers(ctx, times_s):
    from viz.scene import LayerSet

    timeless = LayerSet(layers=[{"@@type": "ScatterplotLayer", "id": "timeless", "data": []}],
                        label="No times", frames={"timeless": [{}, {}]})
    fine = LayerSet(layers=[{"@@type": "ScatterplotLayer", "id": "fine", "data": []}], label="Static points")
    return [timeless, fine]


def broken_layers(ctx, times_s):
    from viz.scene import LayerSet

    return [LayerSet(layers=[{"@@type": "ScatterplotLayer", "id": "other", "data": []}], label="Other frames",
                     times_s=[0.0, 700.0], frames={"other": [{}, {"data": [{"p": 1}]}]})]


def paint_report(ctx):
    return ["<section><h2>Paint section</h2></section>"]


def broken_tables(ctx):
    raise RuntimeError("table exploded")


def paint_files(ctx, out_dir):
    path = out_dir / "paint_notes.txt"
    path.write_text(f"people_stranded={ctx.summary['people_stranded']}\n", encoding="utf-8")
    return {"notes": path}


def broken_files(ctx, out_dir):
    raise OSError("disk full")


def paint_view(ctx, view):
    return {**view, "pitch": 30.0}


def broken_view(ctx, view):
    raise KeyError("tower")


def broken_report(ctx):
    return ["<section><h2>Broken says hello</h2></section>"]


def _noop(*_a):
    return None


PAINT = Coupling(name="paint", phase="physics", period_s=300.0, reads=(),
                 writes=("water_depth", "max_water_depth", "factor_of_safety", "debris_depth",
                         "event:incident", "event:note"),
                 setup=setup_paint, step=step_paint, tables=paint_tables, layers=paint_layers,
                 report=paint_report, files=paint_files, map_view=paint_view)
BROKEN = Coupling(name="broken", phase="response", period_s=600.0, reads=("water_depth",), writes=(),
                  setup=_noop, step=_noop, tables=broken_tables, report=broken_report, layers=broken_layers,
                  files=broken_files, map_view=broken_view)


@pytest.fixture(scope="module")
def run(twin_data, tmp_path_factory):
    sc = Scenario.model_validate({
        "name": "toy", "title": "Toy paint run", "description": "Paint a pond.\n\nThen look.",
        "time": {"start": "2023-09-07T22:00:00+08:00", "duration": "3 h"}, "models": {"x": {}},
        "sources": [{"about": "time.start", "text": "a source text 123"}],
        "assumptions": [{"about": "title", "text": "an assumption text 456"}]})
    cfg = {"couplings": {"paint": {}, "broken": {}}, "duration_s": DURATION, "districts": ["Futian"],
           "resolution_m": 250.0, "output_every_s": EVERY, "start": "2023-09-07T22:00:00+08:00"}
    tr = Translation(config=None, reasons={"paint": "models.x", "broken": "test"}, scenario=sc,
                     base_dir=tmp_path_factory.getbasetemp())
    out = tmp_path_factory.mktemp("outputs") / "run"
    res = run_coupled(cfg, out, couplings={"paint": PAINT, "broken": BROKEN}, outputs=scenario_outputs(tr))
    res.out = out
    return res


def test_tables_are_written_and_a_failing_one_is_listed_not_fatal(run):
    pts = gpd.read_parquet(run.out / "points.parquet")
    assert list(pts["name"]) == ["a", "b"] and pts.crs == "EPSG:4326"
    assert pts.geometry.x.tolist() == [114.05, 114.06]
    plain = pd.read_parquet(run.out / "plain.parquet")
    assert plain["n"].tolist() == [1, 2]
    problems = run.summary["output_problems"]
    assert any(p.startswith("broken.tables: RuntimeError: table exploded") for p in problems)
    assert json.loads((run.out / "summary.json").read_text())["files"]["table:points"] == "points.parquet"


def test_a_couplings_own_files_are_written_after_finish_and_a_failing_one_is_listed(run):
    assert (run.out / "paint_notes.txt").read_text(encoding="utf-8") == "people_stranded=7\n"
    assert json.loads((run.out / "summary.json").read_text())["files"]["paint:notes"] == "paint_notes.txt"
    assert any(p == "broken.files: OSError: disk full" for p in run.summary["output_problems"])


def test_events_parquet_has_a_point_per_placed_event_and_none_otherwise(run):
    ev = gpd.read_parquet(run.out / "events.parquet")
    assert len(ev) == len(run.state.events)
    placed = ev[ev["kind"] == "incident"]
    assert len(placed) == DURATION / 300.0  # one call per paint step after t = 0
    assert placed.geometry.notna().all() and np.allclose(placed.geometry.x, 114.05)
    assert ev[ev["kind"] == "note"].geometry.isna().all()
    assert [json.loads(d)["n"] for d in ev[ev["kind"] == "note"]["data"]] == \
        [int(t) for t in np.arange(300.0, DURATION + 1, 300.0)]


def test_events_table_refuses_nothing_and_skips_non_numeric_places():
    from twin.events import Event

    e = Event.parse({"time_s": 0.0, "wall_time": "2023-09-07T22:00:00+08:00", "kind": "x", "source": "t",
                     "data": {"lon": "114", "lat": None}})
    t = events_table([e])
    assert len(t) == 1 and t.geometry.isna().all()


def test_kpis_come_from_summaries_else_from_the_fields_and_events(run):
    k = run.summary["kpis"]
    assert k["people_stranded"] == {"value": 7.0, "from": "paint"}
    with xr.open_dataset(run.out / "fields.nc") as ds:
        last = ds["max_water_depth"].isel(time=-1).values
        fs = ds["factor_of_safety"].values
    assert k["flooded_area_m2"]["value"] == np.count_nonzero(last >= 0.15) * 250.0 ** 2 > 0
    assert k["cells_fs_below_1"]["value"] == np.count_nonzero((fs < 1).any(axis=0)) > 0
    assert k["incidents"] == {"value": DURATION / 300.0, "from": "events"}


def test_the_map_has_one_slider_the_field_layers_and_accepted_coupling_layers(run):
    m = run.summary["map"]
    assert m["frames"] == DURATION / EVERY + 1
    # the painter draws its own layers, but none on the slider: its fields get the generic ones
    for label in ("Water depth", "Factor of safety", "Debris depth", "Static points"):
        assert label in m["layers"]
    assert "No times" not in m["layers"]
    assert any("paint.layers: No times has frames but no times_s" in p for p in run.summary["output_problems"])
    assert m["resampled"] == ["broken: Other frames (2 frames)"]
    text = (run.out / "map.html").read_text()
    scene = json.loads(text.split('<script id="twin-scene" type="application/json">', 1)[1]
                       .split("</script>", 1)[0])["scene"]
    assert len(scene["timeline"]["times_s"]) == m["frames"]
    assert set(scene["timeline"]["frames"]) == {"field_water_depth", "field_factor_of_safety",
                                                "field_debris_depth", "other"}
    # resampled: each run frame (0, 600, 1200, 1800 s) shows the set's last frame at or before it (0, 700 s)
    assert scene["timeline"]["frames"]["other"] == [{}, {}, {"data": [{"p": 1}]}, {"data": [{"p": 1}]}]
    # a coupling's map_view turns the grid's view; a failing one is listed and leaves the view as it was
    assert scene["view"]["pitch"] == 30.0 and "longitude" in scene["view"]
    assert "broken.map_view: KeyError: 'tower'" in run.summary["output_problems"]


def test_the_report_holds_the_scenario_schedule_sections_and_notes(run):
    html = (run.out / "report.html").read_text()
    assert "Toy paint run" in html and "<p>Paint a pond.</p><p>Then look.</p>" in html
    assert html.index("<td>paint</td>") < html.index("<td>broken</td>")  # schedule order
    assert "models.x" in html and "Paint section" in html and "Broken says hello" in html
    assert "a source text 123" in html and "an assumption text 456" in html
    assert "table exploded" in html and "No times has frames" in html  # tables and map problems listed
    assert "People stranded" in html


def test_formats_without_geoparquet_write_no_tables_and_zarr_is_written(run, tmp_path):
    import shutil

    from scenarios.outputs import write_outputs

    shutil.copy(run.out / "fields.nc", tmp_path / "fields.nc")
    sc = Scenario.model_validate({"name": "toy", "title": "Toy", "models": {"x": {}},
                                  "time": {"start": "2023-09-07T22:00:00+08:00", "duration": "3 h"},
                                  "outputs": {"formats": ["netcdf", "zarr"]}})
    tr = Translation(config=None, reasons={}, scenario=sc, base_dir=tmp_path)
    saved = dict(run.summary)  # the module's run: leave its summary as the other tests read it
    try:
        paths = write_outputs(run, tmp_path, tr, map=False, report=False)
        # a coupling's own files are written whatever the formats (as fields.nc is)
        assert paths == {"fields_zarr": tmp_path / "fields.zarr", "paint:notes": tmp_path / "paint_notes.txt"}
        assert not list(tmp_path.glob("*.parquet"))
        # every format of the schema is written: the one problem is the broken coupling's files
        assert run.summary["output_problems"] == ["broken.files: OSError: disk full"]
    finally:
        run.summary = saved
