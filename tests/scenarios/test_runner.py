"""The coupled runner on real data: rain -> flood -> roads -> routes on one clock (Futian, 250 m, 1 h).

The order test is the issue's own: a road that floods at t is closed before
any route is computed at t. It is checked against the events (the closures
in force after each instant) and shown to hinge on the schedule: with the
dependency declared the other way round, routes run before the closures of
their instant and one uses a road closed at that instant.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import xarray as xr

from scenarios.coupling import get_coupling
from scenarios.runner import config_sha256, resume_coupled, run_coupled
from twin.errors import SnapshotError, ValidationError
from twin.pipeline import read_run_events

# A street in northern Futian whose edge closes at t = 2100 s under the 2023-09-07 storm at 250 m.
ORIGIN = [114.0523316, 22.5795776]
DESTINATION = [114.0529566, 22.578301]


def config(**more):
    return {"districts": ["Futian"], "resolution_m": 250.0, "duration_s": 3600.0,
            "output_every_s": 600.0, "seed": 7,
            "couplings": {"rain": {"storm": "2023-09-07"}, "flood": {}, "roads": {},
                          "routes": {"origin": ORIGIN, "destination": DESTINATION}}} | more


@pytest.fixture(scope="module")
def run(twin_data, tmp_path_factory):
    seen = []
    res = run_coupled(config(), tmp_path_factory.mktemp("coupled") / "a", progress=seen.append)
    res.progress = seen
    return res


def closed_after(events, t_s: float) -> set[str]:
    """Edges closed once every event at or before ``t_s`` has happened (in log order)."""
    closed: set[str] = set()
    for e in events:
        if e.time_s > t_s:
            break
        if e.kind == "road_closed":
            closed |= set(e.data["edges"])
        elif e.kind == "road_reopened":
            closed -= set(e.data["edges"])
    return closed


def routes_on_closed_roads(res) -> list[tuple[float, set[str]]]:
    roads = [e for e in res.state.events if e.kind in ("road_closed", "road_reopened")]
    out = []
    for rec in res.summary["couplings"]["routes"]["routes"]:
        bad = closed_after(roads, rec["t_s"]) & set(rec["edges"])
        if bad:
            out.append((rec["t_s"], bad))
    return out


def test_a_road_that_floods_at_t_is_closed_before_any_route_is_computed_at_t(run):
    assert [c.name for c in run.order] == ["rain", "flood", "roads", "routes"]
    routes = run.summary["couplings"]["routes"]["routes"]
    assert [r["t_s"] for r in routes] == [300.0 * k for k in range(1, 13)]
    assert all(r["road_state_t_s"] == r["t_s"] for r in routes)  # routed on the road state of t
    closures = [e for e in run.state.events if e.kind == "road_closed"]
    assert closures and min(e.time_s for e in closures) > 0  # the flood closes roads during the run
    assert routes_on_closed_roads(run) == []
    # the route's one edge closes at 2100 s: from then on there is no open route
    edge = routes[5]["edges"]
    assert len(edge) == 1 and routes[5]["cost_s"] > 0
    assert any(e.time_s == 2100.0 and edge[0] in e.data["edges"] for e in closures)
    assert routes[6]["cost_s"] is None and routes[6]["edges"] == []
    cut = [e.time_s for e in run.state.events if e.kind == "route_cut_off"]
    assert cut[0] == 2100.0


def test_the_declared_order_is_what_makes_it_pass(twin_data, tmp_path):
    roads, routes = get_coupling("roads"), get_coupling("routes")
    # the dependency declared the other way round: routes "writes" what roads reads
    reversed_deps = {
        "roads": dataclasses.replace(roads, reads=roads.reads + ("route_plan",)),
        "routes": dataclasses.replace(routes, phase="consequences", reads=(),
                                      writes=routes.writes + ("route_plan",)),
    }
    res = run_coupled(config(), tmp_path / "reversed", couplings=reversed_deps)
    assert [c.name for c in res.order] == ["rain", "flood", "routes", "roads"]
    bad = routes_on_closed_roads(res)
    assert bad and bad[0][0] == 2100.0
    recs = res.summary["couplings"]["routes"]["routes"]
    assert all(r["road_state_t_s"] == r["t_s"] - 300.0 for r in recs)  # one step stale


def test_same_config_and_seed_give_identical_outputs(run, tmp_path):
    again = run_coupled(config(), tmp_path / "b")
    with xr.open_dataset(run.paths["fields"]) as a, xr.open_dataset(again.paths["fields"]) as b:
        assert sorted(a.data_vars) == sorted(b.data_vars)
        for name in a.data_vars:
            np.testing.assert_array_equal(a[name].values, b[name].values)
        np.testing.assert_array_equal(a["time"].values, b["time"].values)
    ev_a = [e.to_record() for e in read_run_events(run.paths["fields"].parent)]
    ev_b = [e.to_record() for e in read_run_events(again.paths["fields"].parent)]
    assert ev_a == ev_b and len(ev_a) == len(run.state.events)
    assert again.summary["config_sha256"] == run.summary["config_sha256"]


def test_run_directory(run):
    out = run.paths["fields"].parent
    for name in ("manifest.json", "fields.nc", "events.jsonl", "summary.json"):
        assert (out / name).is_file(), name
    man = json.loads((out / "manifest.json").read_text())
    assert man["config_sha256"] == config_sha256(man["config"]) == run.config.sha256()
    assert man["seed"] == 7
    assert set(man["versions"]) == {"numpy", "numba", "xarray", "simpy", "shenzhen-twin"}
    assert all(man["versions"][k] for k in ("numpy", "numba", "xarray", "simpy"))
    assert {"elevation", "land", "drive_roads"} <= set(man["inputs"])
    assert all(len(v["sha256"]) == 64 and v["bytes"] > 0 for v in man["inputs"].values())
    assert [s["name"] for s in man["schedule"]] == ["rain", "flood", "roads", "routes"]
    with xr.open_dataset(out / "fields.nc") as ds:
        assert ds["time"].values.tolist() == [600.0 * k for k in range(7)]
        assert ds["water_depth"].dims == ("time", "y", "x")
        depth = ds["water_depth"].values
        assert np.nanmax(depth[0]) == 0.0 and np.nanmax(depth[-1]) > 0.3
        assert np.isnan(depth[-1][ds["land"].values == 0]).all()  # sea and blocked: NaN
    summ = json.loads((out / "summary.json").read_text())
    assert summ["events"]["road_closed"] >= 1 and summ["frames"] == 7
    assert summ["couplings"]["roads"]["closed_end"] > 0
    phases = [p["phase"] for p in run.progress]
    assert phases[0] == "setting up" and phases[-1] == "done" and phases.count("running") == 6


def test_a_read_nobody_writes_is_refused_before_the_run(twin_data, tmp_path):
    cfg = config(couplings={"roads": {}})
    with pytest.raises(ValidationError, match=r"'roads' reads 'water_depth'.*enable flood"):
        run_coupled(cfg, tmp_path / "refused")
    assert not (tmp_path / "refused").exists()


def test_unknown_parameters_name_the_coupling(twin_data, tmp_path):
    cfg = config(couplings={"rain": {"storm": "2023-09-07"}, "flood": {"rainfal": 3}})
    with pytest.raises(ValidationError, match=r"couplings.flood: unknown parameter\(s\) \['rainfal'\]"):
        run_coupled(cfg, tmp_path / "bad")


class Crash(Exception):
    pass


def test_a_crashed_run_resumes_from_its_last_snapshot_to_the_same_outputs(run, tmp_path):
    def crash_at_2400(p):
        if p["phase"] == "running" and p["sim_s"] >= 2400.0:
            raise Crash

    out = tmp_path / "crashed"
    with pytest.raises(Crash):
        run_coupled(config(), out, progress=crash_at_2400, checkpoint_every_s=1800.0)
    assert not (out / "fields.nc").exists()
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["1.json", "1.npz"]
    done = resume_coupled(out)
    assert done.resumed_from_s == 1800.0
    with xr.open_dataset(run.paths["fields"]) as a, xr.open_dataset(done.paths["fields"]) as b:
        for name in a.data_vars:
            np.testing.assert_array_equal(a[name].values, b[name].values)
    ev_a = [e.to_record() for e in read_run_events(run.paths["fields"].parent)]
    ev_b = [e.to_record() for e in read_run_events(out)]
    assert ev_a == ev_b
    assert done.summary["couplings"]["routes"] == run.summary["couplings"]["routes"]
    assert done.summary["couplings"]["roads"]["closed_slowed_by_step"] == \
        run.summary["couplings"]["roads"]["closed_slowed_by_step"]


def test_resume_without_a_checkpoint_is_refused(run, tmp_path):
    with pytest.raises(SnapshotError, match="no manifest.json"):
        resume_coupled(tmp_path)
