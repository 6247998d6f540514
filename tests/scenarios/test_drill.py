"""Drill files (every problem listed), the player (a real mosquitto, a real store) and the debrief."""

from __future__ import annotations

import json
import threading
import time
import tomllib
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from scenarios.debrief import collect, write_debrief
from scenarios.drill import (
    DRILL_INJECT,
    DRILL_STARTED,
    TARGET_ACTIONS,
    DrillPlayer,
    builtin_drills,
    load_drill,
)
from scenarios.files import BUILTIN_DIR, ScenarioError
from twin.errors import ConfigError
from twin.events import Event
from twin.store import Store

EXAMPLE = BUILTIN_DIR / "drills" / "futian_typhoon_drill.toml"

DRILL = """
title = "test drill"
scenario = "futian_typhoon_night"
scenario_injects = false
speed = 600

[[injects]]
after = "1 min"
kind = "sensor_value"
payload = {{ station = "FT-RG01", sensor = "rain_gauge", value = 120.0, unit = "mm" }}

[[injects]]
after = "2 min"
kind = "incident"
note = "people trapped"
payload = {{ lon = 114.0600, lat = 22.5330, incident = "flood_rescue" }}

[[injects]]
after = "3 min"
kind = "station_lost"
payload = {{ station = "F4", reason = "yard flooded" }}
{targets}
"""


def write(tmp_path: Path, text: str, name: str = "drill.toml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


# ------------------------------------------------------------------ files
def test_example_drill_loads_with_the_scenarios_injects_first(twin_data):
    assert builtin_drills() == [EXAMPLE.stem]
    d = load_drill(EXAMPLE.stem)
    assert d.path == EXAMPLE
    raw = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    n_scenario = len(d.scenario.scenario.injects)
    assert n_scenario > 0
    assert sorted(p.position for p in d.timeline) == list(range(1, n_scenario + len(raw["injects"]) + 1))
    offsets = [p.offset_s for p in d.timeline]
    assert offsets == sorted(offsets)
    assert len(d.drill.targets) == len(raw["targets"])
    for t in d.drill.targets:
        assert d.target_inject(t).kind in TARGET_ACTIONS[t.action]


def test_bad_drill_lists_every_problem_and_nothing_plays(tmp_path, twin_data):
    bad = DRILL.format(targets="""
[[targets]]
name = "a"
inject = 9
action = "acknowledge"
within = "2 min"

[[targets]]
name = "b"
inject = 2
action = "acknowledge"
within = "2 min"

[[targets]]
name = "b"
inject = 2
action = "dispatch"
within = "2"
""").replace("speed = 600", "speed = -1").replace('after = "3 min"', 'after = "9 h"').replace(
        'station = "FT-RG01"', 'station = "XX-9"')
    store = tmp_path / "store"
    with pytest.raises(ScenarioError) as err:
        load_drill(write(tmp_path, bad))
    paths = {p.path for p in err.value.problems}
    assert {"speed", "injects.0.payload.station", "injects.2.after", "targets.0.inject", "targets.1.action",
            "targets.2.within"} <= paths
    assert not store.exists()


def test_a_drill_on_a_bad_scenario_names_the_scenario(tmp_path, twin_data):
    with pytest.raises(ScenarioError) as err:
        load_drill(write(tmp_path, DRILL.format(targets="").replace("futian_typhoon_night", "no_such_scenario")))
    assert [p.path for p in err.value.problems] == ["scenario"]
    assert "built-ins are" in err.value.problems[0].message


# ------------------------------------------------------------------ player
def subscribe(broker, topic: str, got: list, ready: threading.Event):
    import paho.mqtt.client as mqtt

    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="drill-test-sub")
    c.on_connect = lambda cl, *a: (cl.subscribe(topic, qos=1), None)
    c.on_subscribe = lambda *a: ready.set()
    c.on_message = lambda cl, ud, m: got.append((m.topic, json.loads(m.payload)))
    c.connect(broker.host, broker.port)
    c.loop_start()
    return c


def test_player_publishes_sensor_values_and_logs_every_inject(mosquitto, tmp_path, twin_data):
    d = load_drill(write(tmp_path, DRILL.format(targets="")))
    got: list = []
    ready = threading.Event()
    sub = subscribe(mosquitto, "sz/v1/#", got, ready)
    assert ready.wait(10)
    lines: list[str] = []
    store_dir = tmp_path / "store"
    t0 = time.monotonic()
    summary = DrillPlayer(d, store_dir, broker=mosquitto.address, progress=lines.append).play()
    took = time.monotonic() - t0
    deadline = time.monotonic() + 10
    while not got and time.monotonic() < deadline:
        time.sleep(0.05)
    sub.loop_stop()
    sub.disconnect()
    # 3 min of drill at 600x: 0.3 s of waiting at least
    assert took >= 180 / 600
    assert summary["played"] == 3 and summary["status"] == "done"
    (topic, body), = got
    assert topic == "sz/v1/rain_gauge/FT-RG01/obs"
    assert body["datastream"] == "FT-RG01/rain_gauge" and body["result"] == 120.0 and body["unit"] == "mm"
    with Store.open(store_dir) as s:
        (start,) = s.events(kind=DRILL_STARTED)
        logs = s.events(kind=DRILL_INJECT)
        (incident,) = s.events(kind="incident")
        (lost,) = s.events(kind="station_lost")
        sensors = {x.id: x for x in s.sensors()}
    assert start.data["speed"] == 600 and len(start.data["injects"]) == 3
    assert [e.data["position"] for e in logs] == [1, 2, 3]
    for e in logs:
        planned, actual = (datetime.fromisoformat(e.data[k].replace("Z", "+00:00")) for k in ("planned_at", "actual_at"))
        assert actual >= planned - timedelta(milliseconds=5)
        assert e.data["drill"] == summary["drill"]
    assert incident.source == "drill" and incident.data["incident"] == "flood_rescue"
    assert (incident.data["lon"], incident.data["lat"]) == (114.06, 22.533)
    assert lost.severity.value == "warning" and lost.data["station"] == "F4"
    # the scenario's sensors are registered where the console places them
    assert sensors["FT-RG01"].lon == d.scenario.scenario.sensors[0].lon
    assert len(lines) == 3 + 2


def test_an_unreachable_broker_stops_the_drill_before_the_store(tmp_path, twin_data):
    from hardware_bridge.broker import free_port
    from twin.errors import FetchError

    d = load_drill(write(tmp_path, DRILL.format(targets="")))
    player = DrillPlayer(d, tmp_path / "store", broker=f"127.0.0.1:{free_port()}", progress=lambda _: None,
                         connect_timeout_s=1.0)
    with pytest.raises(FetchError, match="cannot connect"):
        player.play()
    assert not (tmp_path / "store").exists()


def test_start_at_skips_earlier_injects_and_needs_no_broker_after_the_sensor(tmp_path, twin_data):
    d = load_drill(write(tmp_path, DRILL.format(targets="")))
    with pytest.raises(ConfigError, match="--broker"):
        DrillPlayer(d, tmp_path / "store", broker=None)
    DrillPlayer(d, tmp_path / "store", broker=None, start_at=150.0, progress=lambda _: None).play()
    with Store.open(tmp_path / "store") as s:
        status = [(e.data["position"], e.data["status"]) for e in s.events(kind=DRILL_INJECT)]
        assert [e.kind for e in s.events(kind="incident")] == []
    assert status == [(1, "skipped"), (2, "skipped"), (3, "played")]


# ------------------------------------------------------------------ debrief
TARGETS = """
[[targets]]
name = "ack_station"
inject = 3
action = "acknowledge"
within = "30 min"

[[targets]]
name = "dispatch_fast"
inject = 2
action = "dispatch"
within = "1 min"

[[targets]]
name = "dispatch_wall"
inject = 2
action = "dispatch"
within = "5 s"
clock = "wall"

[[targets]]
name = "evacuate_never"
inject = 2
action = "evacuate"
within = "1 h"

[[targets]]
name = "forecast"
inject = 2
action = "forecast"
within = "10 min"
"""


def test_debrief_reaction_times_and_verdicts(tmp_path, twin_data):
    from viz.offline import assert_offline

    d = load_drill(write(tmp_path, DRILL.format(targets=TARGETS)))
    store_dir = tmp_path / "store"
    DrillPlayer(d, store_dir, broker=None, start_at=90.0, progress=lambda _: None).play()
    with Store.open(store_dir) as s:
        logs = {e.data["position"]: e.data for e in s.events(kind=DRILL_INJECT)}
        at = {p: datetime.fromisoformat(v["actual_at"].replace("Z", "+00:00")) for p, v in logs.items()
              if v["status"] == "played"}
        # the trainee: dispatch 1.5 s after the incident, acknowledge the lost station 2 s after it
        s.put_event(Event(time_s=0.0, wall_time=at[2] + timedelta(seconds=1.5), kind="trainee_action",
                          source="console", data={"action": "dispatch", "by": "trainee A", "unit_type": "rescue",
                                                  "units": 1, "incident_id": logs[2]["event_id"]}))
        s.put_event(Event(time_s=0.0, wall_time=at[3] + timedelta(seconds=2), kind="alert_ack", source="console",
                          data={"alert_id": logs[3]["event_id"], "by": "trainee B"}))
        # a forecast started before the incident does not answer it; the one 0.5 s after does
        s.put_event(Event(time_s=0.0, wall_time=at[2] - timedelta(seconds=0.2), kind="trainee_action",
                          source="console", data={"action": "forecast", "by": "early", "run_id": 1}))
        s.put_event(Event(time_s=0.0, wall_time=at[2] + timedelta(seconds=0.5), kind="trainee_action",
                          source="console", data={"action": "forecast", "by": "trainee C", "run_id": 2}))
        debrief = collect(s)
        paths = write_debrief(debrief, tmp_path / "out")
    by_pos = {i["position"]: i for i in debrief.injects}
    assert by_pos[1]["status"] == "skipped"
    disp = by_pos[2]["reactions"]["dispatch"]
    ack = by_pos[3]["reactions"]["acknowledge"]
    assert disp["by"] == "trainee A" and disp["wall_s"] == pytest.approx(1.5, abs=0.01)
    assert disp["drill_s"] == pytest.approx(1.5 * 600, abs=6)
    assert ack["by"] == "trainee B" and ack["wall_s"] == pytest.approx(2.0, abs=0.01)
    assert by_pos[3]["alert"]["event_id"] == logs[3]["event_id"]
    assert by_pos[2]["reactions"]["forecast"]["by"] == "trainee C"
    verdicts = {t["name"]: t["verdict"] for t in debrief.targets}
    # 2 s x 600 = 20 min <= 30 min; 1.5 s x 600 = 15 min > 1 min; 1.5 s wall <= 5 s; no evacuation;
    # 0.5 s x 600 = 5 min <= 10 min
    assert verdicts == {"ack_station": "met", "dispatch_fast": "missed", "dispatch_wall": "met",
                        "evacuate_never": "missed", "forecast": "met"}
    assert debrief.kpis["targets_met"] == 3 and debrief.kpis["targets_missed"] == 2
    times = [r["wall_s"] for r in debrief.timeline]
    assert times == sorted(times)
    # an inject sits at its offset in the scenario's time (start_at + wall x speed; lag of the wait aside)
    played = [r for r in debrief.timeline if r["type"] == "inject"]
    assert [r["scenario_s"] for r in played] == pytest.approx([120.0, 180.0], abs=30.0)
    assert [r["type"] for r in debrief.timeline].count("action") == 4
    page = paths["html"].read_text(encoding="utf-8")
    assert_offline(page)
    assert "trainee A" in page and "trainee B" in page and page.count('class="missed"') == 2
    assert len(paths["csv"].read_text(encoding="utf-8").strip().splitlines()) == 1 + len(debrief.timeline)
    assert json.loads(paths["json"].read_text(encoding="utf-8"))["drill"]["drill"] == debrief.drill["drill"]


def test_debrief_of_an_unknown_drill_names_the_ones_there(tmp_path, twin_data):
    from twin.errors import ValidationError

    d = load_drill(write(tmp_path, DRILL.format(targets="")))
    DrillPlayer(d, tmp_path / "store", broker=None, start_at=150.0, progress=lambda _: None).play()
    with Store.open(tmp_path / "store") as s, pytest.raises(ValidationError, match="test_drill|drill-"):
        collect(s, "nope")


# ------------------------------------------------------------------ command line
def test_twin_drill_check_and_list(tmp_path, twin_data):
    from click.testing import CliRunner

    from twin.cli import main

    ok = CliRunner().invoke(main, ["drill", "check", EXAMPLE.stem])
    assert ok.exit_code == 0, ok.output
    d = load_drill(EXAMPLE)
    rows = [line for line in ok.output.splitlines() if line.strip().startswith("#")]
    assert [int(r.split()[0][1:]) for r in rows] == [p.position for p in d.timeline]
    bad = write(tmp_path, DRILL.format(targets="").replace('after = "3 min"', 'after = "9 h"'))
    res = CliRunner().invoke(main, ["drill", "check", str(bad)])
    assert res.exit_code == 1 and "injects.2.after" in res.output
    listed = CliRunner().invoke(main, ["drill", "list"])
    assert listed.exit_code == 0 and listed.output.startswith(f"{EXAMPLE.stem}:")
    played = CliRunner().invoke(main, ["drill", "run", str(bad), "--store", str(tmp_path / "store")])
    assert played.exit_code == 1 and not (tmp_path / "store").exists()
