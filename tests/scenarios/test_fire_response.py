"""``fire_origin`` events of the bridge start fire runs (scenarios.fire_response, ``twin fire watch``).

The origins are raised by the bridge's real tracker (hardware_bridge.fusion.fire.FireOrigins) from detector
readings of the tower's own registry (scenarios.fire_drill), stored in a real store; the runs are real fire
runs of the 30-storey example tower, kept short (30 s of a slow fire).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from hardware_bridge.fusion import Reading
from hardware_bridge.fusion.fire import FireOrigins
from physics.fire_building import load_example
from scenarios.fire_drill import detector_registry
from scenarios.fire_response import (
    ORIGIN_KIND,
    RESPONSE_KIND,
    FireResponder,
    ResponseSettings,
    buildings_from,
    place_fire,
)
from twin.errors import ValidationError
from twin.sensors import SensorRegistry
from twin.store import Store

TOWER = "tower_30_residential"
T0 = datetime(2026, 7, 15, 13, 0, tzinfo=UTC)


def registry(building_id: str = TOWER) -> SensorRegistry:
    return detector_registry(TOWER, building_id)


def smoke(sensor: str, seconds: float, value: float = 0.2393) -> Reading:
    return Reading(datastream_id=f"{sensor}/smoke", kind="smoke", time=T0 + timedelta(seconds=seconds), value=value,
                   station=sensor, unit="1/m")


def store_origins(store_dir, readings, building_id: str = TOWER) -> list:
    """The tracker's events of the readings, stored as the bridge's twin link stores them."""
    fo = FireOrigins(registry(building_id))
    events = fo.update(readings)
    with Store.open(store_dir) as st:
        for e in events:
            st.put_event(e)
    return events


def settings(tmp_path, **kw) -> ResponseSettings:
    base = {"store": tmp_path / "store", "buildings": {TOWER: TOWER}, "growth": "slow", "duration_s": 30.0,
            "record_every_s": 10.0, "report": False, "map": False}
    return ResponseSettings(**(base | kw))


def test_the_fire_is_placed_in_the_detectors_room_or_the_floors_first():
    spec = load_example(TOWER)
    assert place_fire(spec, 12, "flat B")[:2] == (12, "flat B")
    # the lobby is where the tower's detectors hang: the fire model's default room of the storey
    floor, comp, why = place_fire(spec, 12, "lobby")
    assert (floor, comp) == (12, None) and "lobby" in why
    assert place_fire(spec, 3, "no such room")[1] is None
    assert place_fire(spec, 3, None)[1] is None
    for bad in (30, -1, "12", True):
        with pytest.raises(ValidationError, match="floor"):
            place_fire(spec, bad, "lobby")


def test_buildings_from_pairs_ids_and_refuses_unknown_files(tmp_path):
    assert buildings_from([TOWER]) == {TOWER: TOWER}
    assert buildings_from([TOWER], ["T1"]) == {"T1": TOWER}
    with pytest.raises(ValidationError, match="--building-id"):
        buildings_from([TOWER], ["a", "b"])
    with pytest.raises(ValidationError, match="no such file"):
        buildings_from([str(tmp_path / "missing.toml")])
    with pytest.raises(ValidationError, match="unique"):
        buildings_from([TOWER, TOWER])


def test_an_unknown_building_is_reported_once_and_the_watcher_goes_on(tmp_path):
    s = settings(tmp_path)
    ev = store_origins(s.store, [smoke("T9.smoke-4-lobby", 30.0)], building_id="T9")
    assert [e.kind for e in ev] == [ORIGIN_KIND]
    out = FireResponder(s).process()
    assert [r.status for r in out] == ["skipped"] and "T9" in out[0].reason and "--building-id T9" in out[0].reason
    # a watcher started again does not repeat the report; the origin event stays in the log
    again = FireResponder(s).process()
    assert [r.status for r in again] == ["skipped"] and again[0].reported_before
    with Store.open(s.store) as st:
        responses = st.events(kind=RESPONSE_KIND)
        assert len(st.events(kind=ORIGIN_KIND)) == 1
        assert st.runs() == []
    assert len(responses) == 1 and responses[0].severity.value == "warning"
    assert responses[0].data["status"] == "skipped" and responses[0].data["building"] == "T9"


def test_watch_once_on_the_command_line_prints_one_line_per_origin(tmp_path):
    from twin.cli.fire_live import watch

    s = settings(tmp_path)
    store_origins(s.store, [smoke("T9.smoke-4-lobby", 30.0)], building_id="T9")
    res = CliRunner().invoke(watch, ["--store", str(s.store), "--building", TOWER, "--once", "--duration", "60s",
                                     "--no-report"])
    assert res.exit_code == 0, res.output
    lines = [json.loads(x) for x in res.stdout.splitlines() if x.startswith("{")]
    assert [(x["event"], x["status"], x["building"]) for x in lines] == [("fire_response", "skipped", "T9")]
    bad = CliRunner().invoke(watch, ["--store", str(s.store), "--building", str(tmp_path / "nope.toml"), "--once"])
    assert bad.exit_code == 1 and "no such file" in bad.output


def test_one_run_per_origin_and_a_corrected_origin_runs_at_its_floor(tmp_path):
    s = settings(tmp_path)
    # storey 12's lobby alarms first; storey 10's alarm (earlier) arrives late: the origin moves to 10
    store_origins(s.store, [smoke("tower_30_residential.smoke-12-lobby", 100.0)])
    first = FireResponder(s)
    (r12,) = first.process()
    assert (r12.status, r12.floor, r12.compartment, r12.corrected) == ("done", 12, None, False), r12.reason
    assert "lobby" in r12.compartment_source
    # the same origin again (a second watcher, or the same one from the start): no second run
    assert [r.status for r in FireResponder(s).process()] == ["duplicate"]
    assert first.process() == []
    fo = FireOrigins(registry())
    fo.update([smoke("tower_30_residential.smoke-12-lobby", 100.0)])
    late = fo.update([smoke("tower_30_residential.smoke-10-lobby", 60.0)])  # a later batch
    corrected = [e for e in late if e.kind == ORIGIN_KIND and e.data["corrected"]]
    with Store.open(s.store) as st:
        st.put_event(corrected[0])
    (r10,) = first.process()
    assert (r10.status, r10.floor, r10.corrected, r10.supersedes_run) == ("done", 10, True, r12.run_id)
    with Store.open(s.store) as st:
        runs = st.runs()
        answers = st.events(kind=RESPONSE_KIND)
    assert [(r.kind, r.status, r.params["floor"]) for r in runs] == [("fire", "done", 12), ("fire", "done", 10)]
    assert runs[1].params["fire_response"]["supersedes_run"] == runs[0].id
    assert [(a.data["status"], a.data["run"]) for a in answers] == [("done", runs[0].id), ("done", runs[1].id)]
    assert all((s.runs / f"run-{r.id:05d}" / "fire.nc").is_file() for r in runs)


def test_a_floor_outside_the_building_is_refused_and_reported(tmp_path):
    s = settings(tmp_path, buildings={"short": TOWER})
    # a registry that says storey 40 in a 30-storey tower (a wrong registry, not the tower's own)
    from twin.sensors import Sensor

    reg = SensorRegistry([Sensor(id="S40", kind="smoke", lon=114.05, lat=22.53, unit="1/m",
                                 properties={"building": "short", "floor": 40, "zone": "lobby"})])
    ev = FireOrigins(reg).update([smoke("S40", 5.0)])
    with Store.open(s.store) as st:
        st.put_event(ev[0])
    (r,) = FireResponder(s).process()
    assert r.status == "skipped" and "floor=40" in r.reason and "0 = ground .. 29" in r.reason
    with Store.open(s.store) as st:
        assert st.runs() == [] and st.events(kind=RESPONSE_KIND)[0].data["reason"] == r.reason


def test_the_watcher_loop_picks_up_origins_stored_while_it_waits(tmp_path):
    s = settings(tmp_path)
    store_origins(s.store, [smoke("T8.smoke-4-lobby", 30.0)], building_id="T8")
    seen, naps = [], []

    def nap(seconds: float) -> None:  # while the watcher sleeps, the bridge stores another origin
        naps.append(seconds)
        if len(naps) == 1:
            store_origins(s.store, [smoke("T9.smoke-7-lobby", 40.0)], building_id="T9")

    FireResponder(s).watch(poll_s=0.5, stop=lambda: len(naps) >= 2, on_response=seen.append, sleep=nap)
    assert [(r.building, r.floor, r.status) for r in seen] == [("T8", 4, "skipped"), ("T9", 7, "skipped")]
    assert naps == [0.5, 0.5]
    with pytest.raises(ValidationError, match="poll_s"):
        FireResponder(s).watch(poll_s=0)


def test_watch_and_drill_are_commands_of_twin_fire():
    from twin.cli import main

    for cmd in ("watch", "drill"):
        res = CliRunner().invoke(main, ["fire", cmd, "--help"])
        assert res.exit_code == 0 and "--store" in res.output, res.output


def test_a_store_not_there_yet_has_no_origin(tmp_path):
    assert FireResponder(settings(tmp_path)).process() == []
    assert not (tmp_path / "store").exists()  # the watcher only reads until there is an origin


def test_a_run_the_watcher_is_stopped_in_runs_again_next_time(tmp_path):
    from twin.errors import RunCancelled

    s = settings(tmp_path)
    store_origins(s.store, [smoke("tower_30_residential.smoke-12-lobby", 100.0)])

    def ctrl_c(_p: dict) -> None:
        raise KeyboardInterrupt

    def cancel(_p: dict) -> None:
        raise RunCancelled("stopped")

    with pytest.raises(KeyboardInterrupt):
        FireResponder(s, progress=ctrl_c).process()
    with pytest.raises(RunCancelled):  # the next watcher does not take the stopped run for an answer
        FireResponder(s, progress=cancel).process()
    with Store.open(s.store) as st:
        assert [(r.status, r.params["floor"]) for r in st.runs()] == [("cancelled", 12), ("cancelled", 12)]
        assert st.events(kind=RESPONSE_KIND) == []


def test_twin_fire_watch_runs_until_stopped(tmp_path):
    """The real command as a process: it answers the origin there, keeps looking, and stops on SIGTERM."""
    import signal
    import subprocess
    import sys
    import time

    s = settings(tmp_path)
    store_origins(s.store, [smoke("T9.smoke-4-lobby", 30.0)], building_id="T9")
    proc = subprocess.Popen([sys.executable, "-c", "from twin.cli import main; main()", "fire", "watch", "--store",
                             str(s.store), "--building", TOWER, "--poll", "0.2s"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = json.loads(proc.stdout.readline())
        assert (line["building"], line["status"]) == ("T9", "skipped")
        time.sleep(0.5)
        assert proc.poll() is None  # still watching
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "stopped" in err
