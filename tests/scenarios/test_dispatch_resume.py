"""A coupled run with dispatch, checkpointed, crashed and resumed, ends as the run that did not stop.

Futian at 250 m for 1 h under the 2023-09-07 storm (rain, flood, roads with
closures), calls injected before the first checkpoint so units are on the
road at it, random calls and flood rescues: the run without checkpoints and
the run checkpointed every 20 min, crashed after the first checkpoint and
resumed (:func:`scenarios.runner.resume_coupled`), write the same
``events.jsonl`` and the same dispatch tables and summary.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from scenarios.coupling import get_coupling
from scenarios.runner import resume_coupled, run_coupled

# street nodes of Futian: the demo station H1's door and a western street whose way in floods by 30 min
H1 = [114.0470, 22.5580]
WEST = [114.0320576, 22.5705033]
EAST = [114.0700, 22.5400]


def incident(after_s, lon, lat, kind="medical"):
    return {"t_s": float(after_s), "kind": "incident", "note": "",
            "payload": {"lon": lon, "lat": lat, "incident": kind}}


CONFIG = {"districts": ["Futian"], "resolution_m": 250.0, "duration_s": 3600.0, "output_every_s": 600.0,
          "seed": 5, "couplings": {
              "rain": {"storm": "2023-09-07", "storm_hours": 0.5}, "flood": {}, "roads": {},
              "injects": {"injects": [incident(1020.0, *WEST, kind="fire"), incident(1080.0, *EAST),
                                      incident(1140.0, *H1, kind="collapse"), incident(1500.0, *WEST),
                                      incident(2100.0, *EAST, kind="fire")]},
              "dispatch": {"calls_per_hour": 20.0, "flood_rescues": 3, "hazard_class": 3}}}
CHECKPOINT_S = 1200.0


class Crash(Exception):
    pass


@pytest.fixture(scope="module")
def runs(twin_data, tmp_path_factory):
    d = tmp_path_factory.mktemp("dispatch_resume")
    whole = run_coupled(CONFIG, d / "whole")

    def crash_after_first_checkpoint(p):
        if p.get("phase") == "running" and p["sim_s"] >= CHECKPOINT_S + 600.0:
            raise Crash

    with pytest.raises(Crash):
        run_coupled(CONFIG, d / "crashed", checkpoint_every_s=CHECKPOINT_S, progress=crash_after_first_checkpoint)
    assert not (d / "crashed" / "events.jsonl").exists()
    resumed = resume_coupled(d / "crashed")
    return whole, resumed, d / "crashed"


def test_the_checkpoint_holds_units_on_the_road(runs):
    _, resumed, out = runs
    assert resumed.resumed_from_s == CHECKPOINT_S
    [meta] = [json.loads(p.read_text()) for p in (out / "checkpoints").glob("*.json")
              if json.loads(p.read_text())["sim_s"] == CHECKPOINT_S]
    pending = meta["couplings"]["dispatch"]["values"]["model/pending"]
    on_road = [e for e in pending if e[0] == "unit" and e[6][0] in ("leg", "edge")]
    assert on_road, "units must be driving at the checkpoint for the test to mean anything"
    assert any(e[1] > CHECKPOINT_S for e in on_road)  # with time left on their trip


def test_a_resumed_run_writes_the_events_of_the_run_that_did_not_stop(runs):
    whole, resumed, _ = runs
    a, b = whole.paths["events"].read_bytes(), resumed.paths["events"].read_bytes()
    assert a == b
    kinds = {json.loads(line)["kind"] for line in a.splitlines()}
    assert {"unit_dispatched", "unit_arrived", "incident_closed", "road_closed"} <= kinds


def test_a_resumed_run_has_the_dispatch_tables_and_summary_of_the_run_that_did_not_stop(runs):
    whole, resumed, _ = runs
    c = get_coupling("dispatch")
    ta, tb = c.tables(whole.contexts["dispatch"]), c.tables(resumed.contexts["dispatch"])
    for name in ("incidents", "units"):
        assert ta[name].equals(tb[name]), name
    sa, sb = (r.summary["couplings"]["dispatch"] for r in (whole, resumed))
    assert sa == sb
    assert sa["reached"] >= 5 and sa["road_state_changes"] > 0
    ma, mb = whole.contexts["dispatch"].own["model"], resumed.contexts["dispatch"].own["model"]
    assert ma.records == mb.records
    times = np.asarray(whole.frame_times, float)
    for x, y in zip(ma.positions(times), mb.positions(times), strict=True):
        assert np.array_equal(x, y)
