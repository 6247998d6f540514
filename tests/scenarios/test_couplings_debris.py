"""The debris coupling: slope failures run out, close roads, call a collapse, move people (Guangming, 90 m).

The data set has no drivable road in Guangming, so the test makes its own
(the README's rule): a grid of two-way streets every ~50 m over the valley
below the assumed 2015 dump, in the GeoJSON edge format of the Futian file.
The dump's spoil is made wetter (d0, ks at the soil table's upper range,
phi 34 deg) so that a cell fails under the storm at 2 h, besides those that
fail before the rain. The route's origin is the street node at the centre of
a 90 m cell that the debris of the 2 h failure buries and that of t = 0 does
not: its streets close at 2 h. The order test is the issue's: the debris of a
failure at t closes its roads before any route is computed at t.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from scenarios.coupling import get_coupling
from scenarios.runner import resume_coupled, run_coupled
from twin.errors import ValidationError
from twin.pipeline import read_run_events

DUMP = Path(__file__).resolve().parents[2] / "physics" / "data" / "guangming_2015_dump_assumed.geojson"
ORIGIN = (113.92724, 22.71461)  # a street node buried by the debris of the failure at 2 h
STEP_LON, STEP_LAT = 0.0005, 0.00045  # ~51 m and ~50 m
DESTINATION = (ORIGIN[0], ORIGIN[1] - 6 * STEP_LAT)


def street_grid(path: Path, half: int = 8) -> Path:
    """Two-way streets between the nodes of a (2 half + 1)² grid centred on ORIGIN (GeoJSON edges)."""
    feats = []

    def node(i, j):
        return f"n{i}_{j}", [round(ORIGIN[0] + i * STEP_LON, 7), round(ORIGIN[1] + j * STEP_LAT, 7)]

    for i in range(-half, half + 1):
        for j in range(-half, half + 1):
            for di, dj in ((1, 0), (0, 1)):
                if abs(i + di) > half or abs(j + dj) > half:
                    continue
                (a, pa), (b, pb) = node(i, j), node(i + di, j + dj)
                for u, v, pu, pv in ((a, b, pa, pb), (b, a, pb, pa)):
                    feats.append({"type": "Feature", "geometry": {"type": "LineString", "coordinates": [pu, pv]},
                                  "properties": {"id": f"{u}-{v}", "u": u, "v": v, "type": "highway.residential",
                                                 "speed_mps": 8.33, "length_m": 51.0, "name": None}})
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}), encoding="utf-8")
    return path


def config(tmp: Path, **more):
    fill = json.loads(DUMP.read_text())
    fill["features"][0]["properties"].update(phi_deg=34.0, d0_m2_s=1e-2, ks_m_s=1e-4)
    (tmp / "wet_dump.geojson").write_text(json.dumps(fill))
    roads = street_grid(tmp / "streets_edges.geojson")
    return {"districts": ["Guangming"], "resolution_m": 90.0, "buffer_m": 500.0, "seed": 5,
            "duration_s": 7200.0, "output_every_s": 1800.0,
            "couplings": {"rain": {"storm": "2023-09-07"}, "flood": {"period_s": 600.0},
                          # flood closures off (depth limit 50 m): the streets close for debris only
                          "roads": {"roads": str(roads), "closed_m": 50.0, "dv_limit": None},
                          "slope": {"fills": str(tmp / "wet_dump.geojson")}, "debris": {},
                          "routes": {"origin": list(ORIGIN), "destination": list(DESTINATION)}}} | more


@pytest.fixture(scope="module")
def inputs(twin_data, tmp_path_factory):
    return tmp_path_factory.mktemp("debris_inputs")


@pytest.fixture(scope="module")
def run(inputs):
    return run_coupled(config(inputs), inputs / "run")


def closed_after(events, t_s: float) -> set[str]:
    closed: set[str] = set()
    for e in events:
        if e.time_s > t_s:
            break
        if e.kind == "road_closed":
            closed |= set(e.data["edges"])
        elif e.kind == "road_reopened":
            closed -= set(e.data["edges"])
    return closed


def test_debris_of_a_failure_at_t_closes_roads_before_any_route_at_t(run):
    assert [c.name for c in run.order] == ["rain", "flood", "slope", "roads", "debris", "routes"]
    events = list(run.state.events)
    failures = [e.time_s for e in events if e.kind == "slope_failure"]
    assert 7200.0 in failures  # the wet dump fails under the storm at 2 h
    debris_closed = [e for e in events if e.kind == "road_closed" and e.data.get("reason") == "debris"]
    at_2h = [e for e in debris_closed if e.time_s == 7200.0]
    assert at_2h and at_2h[0].data["n"] == len(at_2h[0].data["edges"]) >= 1
    assert not [e for e in events if e.kind == "road_closed" and e.data.get("reason") != "debris"]
    # the log order at 2 h: the failure, then its closures, then the route
    kinds = [e.kind for e in events if e.time_s == 7200.0]
    assert kinds.index("slope_failure") < kinds.index("road_closed") < kinds.index("route_cut_off")
    routes = run.summary["couplings"]["routes"]["routes"]
    for rec in routes:
        assert not closed_after(events, rec["t_s"]) & set(rec["edges"])  # no route on a closed street
    before, after = routes[-2], routes[-1]
    assert before["t_s"] == 6900.0 and before["cost_s"] > 0
    assert set(before["edges"]) & set(at_2h[0].data["edges"])  # it went through what closes at 2 h
    assert after["t_s"] == 7200.0 and after["cost_s"] is None  # the origin's streets are buried


def test_the_declared_phase_is_what_makes_it_pass(inputs, tmp_path):
    """Debris moved after the routes (response phase, reading what routes write): the route of
    2 h is computed before the closures of 2 h and runs on buried streets."""
    import dataclasses

    debris = get_coupling("debris")
    late = dataclasses.replace(debris, phase="response", reads=debris.reads + ("event:route_computed",))
    res = run_coupled(config(inputs), tmp_path / "late", couplings={"debris": late})
    assert [c.name for c in res.order][-2:] == ["routes", "debris"]
    events = list(res.state.events)
    last = res.summary["couplings"]["routes"]["routes"][-1]
    assert last["t_s"] == 7200.0 and last["cost_s"] > 0
    assert closed_after(events, 7200.0) & set(last["edges"])


def test_collapse_incidents_and_people_to_move_per_cluster(run):
    events = list(run.state.events)
    clusters = run.summary["couplings"]["debris"]["clusters"]
    incidents = [e for e in events if e.kind == "incident"]
    moves = [e for e in events if e.kind == "people_to_move"]
    assert len(moves) == sum(c["people"] > 0 for c in clusters) >= 1
    assert all(e.data["reason"] == "debris" and e.data["people"] > 0 for e in moves)
    assert incidents and all(e.data["incident"] == "collapse" and e.data["roads"] >= 1 for e in incidents)
    assert len({e.data["id"] for e in incidents}) == len(incidents) <= len(clusters)
    for e in incidents + moves:  # below the dump, in the valley the streets cover
        assert abs(e.data["lon"] - ORIGIN[0]) < 0.006 and abs(e.data["lat"] - ORIGIN[1]) < 0.006
    # people: the census density (people per land cell of Guangming) times the cells of each zone
    dens = run.contexts["debris"].own["people"]
    assert all(c["people"] <= dens.max() * (c["cells"] + 400) for c in clusters)


def test_deposit_conserves_the_released_volume(run):
    with xr.open_dataset(run.paths["fields"]) as ds:
        debris = ds["debris_depth"].values
    assert np.all(np.diff(debris, axis=0) >= -1e-6)  # cumulative
    released = sum(c["volume_m3"] for c in run.summary["couplings"]["debris"]["clusters"])
    deposited = float(run.contexts["debris"].own["debris"].sum()) * 90.0 ** 2
    assert 0 < deposited <= released * (1 + 1e-9)  # what leaves the grid is lost, nothing is made


def test_assets_table_layers_and_report(run):
    ctx = run.contexts["debris"]
    c = get_coupling("debris")
    table = c.tables(ctx)["assets_hit"]
    assert table.crs.to_epsg() == 4326 and len(table) == run.summary["couplings"]["debris"]["assets_hit"]
    roads = set(table.loc[table["kind"] == "road", "id"])
    closed = {e for ev in run.state.events if ev.kind == "road_closed" for e in ev.data["edges"]}
    assert roads == closed and all(table["deposit_depth_m"] >= 0.1)
    names = [s.label for s in c.layers(ctx, [0.0, 7200.0])]
    assert "Landslide debris" in names
    assert "Landslide debris" in "".join(c.report(ctx))


class Crash(Exception):
    pass


def test_a_crashed_run_with_slope_and_debris_resumes_bit_identical(run, inputs):
    def crash(p):
        if p["phase"] == "running" and p["sim_s"] >= 5400.0:
            raise Crash

    out = inputs / "crashed"
    with pytest.raises(Crash):
        run_coupled(config(inputs), out, progress=crash, checkpoint_every_s=3600.0)
    done = resume_coupled(out)
    assert done.resumed_from_s == 3600.0
    with xr.open_dataset(run.paths["fields"]) as a, xr.open_dataset(done.paths["fields"]) as b:
        assert sorted(a.data_vars) == sorted(b.data_vars)
        for name in a.data_vars:
            np.testing.assert_array_equal(a[name].values, b[name].values)
    ev_a = [e.to_record() for e in read_run_events(run.paths["fields"].parent)]
    ev_b = [e.to_record() for e in read_run_events(out)]
    assert ev_a == ev_b
    assert done.summary["couplings"]["debris"]["clusters"] == run.summary["couplings"]["debris"]["clusters"]
    assert done.summary["couplings"]["routes"] == run.summary["couplings"]["routes"]


def test_debris_needs_the_road_graph_and_checks_its_parameters(inputs, tmp_path):
    cfg = config(inputs)
    del cfg["couplings"]["roads"], cfg["couplings"]["routes"]
    with pytest.raises(ValidationError, match=r"'debris' reads 'road_graph'.*enable roads"):
        run_coupled(cfg, tmp_path / "noroads")
    cfg = config(inputs)
    cfg["couplings"]["debris"] = {"buffer_m": -5, "travel": 3}
    with pytest.raises(ValidationError, match=r"couplings.debris: unknown parameter\(s\) \['travel'\].*buffer_m=-5"):
        run_coupled(cfg, tmp_path / "bad")
