"""A drill's sensor thresholds: checked with the drill file, registered with the sensors, and used by the live
bridge (a real mosquitto, ``run_bridge`` on it): a water-level inject past ``warning`` raises the alert."""

from __future__ import annotations

import threading
import time
import tomllib
from pathlib import Path

import pytest

from scenarios.drill import DrillPlayer, load_drill
from scenarios.files import BUILTIN_DIR, ScenarioError
from twin.store import Store

EXAMPLE = BUILTIN_DIR / "drills" / "futian_typhoon_drill.toml"
LEVELS = {"advisory": 3.5, "warning": 4.0, "alarm": 4.5}
DRILL = """
title = "river gauge drill"
scenario = "futian_typhoon_night"
scenario_injects = false
speed = 600

[[sensors]]
station = "FT-WL01"
kind = "water_level"
thresholds = { advisory = 3.5, warning = 4.0, alarm = 4.5 }

[[injects]]
after = "1 min"
kind = "sensor_value"
note = "below every level"
payload = { station = "FT-WL01", sensor = "water_level", value = 3.0, unit = "m" }

[[injects]]
after = "2 min"
kind = "sensor_value"
note = "past the warning level"
payload = { station = "FT-WL01", sensor = "water_level", value = 420.0, unit = "cm" }

[[targets]]
name = "ack_river"
inject = 2
action = "acknowledge"
within = "5 min"
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "drill.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_the_builtin_drill_gives_the_river_gauge_levels_and_a_target_to_acknowledge_its_warning(twin_data):
    d = load_drill(EXAMPLE.stem)
    by_station = {s.station: s for s in d.sensors}
    assert by_station["FT-WL01"].thresholds.levels() == LEVELS
    assert by_station["FT-RG01"].thresholds is None
    [level] = [p for p in d.timeline if p.kind == "sensor_value" and p.inject.payload.sensor.value == "water_level"]
    value = level.inject.payload.value  # the scenario's "near bank-full" reading, in m
    assert LEVELS["warning"] <= value < LEVELS["alarm"]
    acks = [t for t in d.drill.targets if t.inject == level.position and t.action == "acknowledge"]
    assert len(acks) == 1
    raw = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    assert raw["sensors"] == [{"station": "FT-WL01", "kind": "water_level", "thresholds": LEVELS}]


def test_bad_drill_sensors_are_listed_with_their_paths(tmp_path, twin_data):
    bad = DRILL.replace('thresholds = { advisory = 3.5, warning = 4.0, alarm = 4.5 }', """thresholds = { warning = 4.0 }

[[sensors]]
station = "FT-RG01"
kind = "rain_gauge"
thresholds = { warning = 0.05 }

[[sensors]]
station = "FT-WL01"
kind = "water_level"
thresholds = { alarm = 5.0 }

[[sensors]]
station = "NOPE"
kind = "water_level"
thresholds = { warning = 1.0, alarm = 0.5 }""").replace("inject = 2", "inject = 7")
    with pytest.raises(ScenarioError) as err:
        load_drill(write(tmp_path, bad))
    got = {p.path: str(p) for p in err.value.problems}
    assert "takes no sensor thresholds" in got["sensors.1.thresholds"]
    assert "given twice" in got["sensors.2"]
    assert got["sensors.3.thresholds.alarm"].startswith("sensors.3.thresholds.alarm = 0.5: must be above warning")
    assert "targets.0.inject" in got  # the other problems of the file are listed too
    assert "sensors.3.station" not in got  # the entry failed on its own; its station is not looked up
    good_levels_bad_station = DRILL.replace('station = "FT-WL01"\nkind', 'station = "FT-WL09"\nkind', 1)
    with pytest.raises(ScenarioError) as err:
        load_drill(write(tmp_path, good_levels_bad_station))
    assert [p.path for p in err.value.problems] == ["sensors.0.station"]
    assert "FT-WL01" in err.value.problems[0].message  # what the scenario declares


@pytest.fixture
def bridge(mosquitto, tmp_path):
    """``run_bridge`` (what ``twin bridge run`` runs) in a thread on the broker and a fresh store."""
    from hardware_bridge.runner import BridgeOptions, run_bridge

    store_dir = tmp_path / "store"
    stop, ready = threading.Event(), threading.Event()
    opts = BridgeOptions(broker=mosquitto.address, store=store_dir, client_id="drill-thresholds")
    th = threading.Thread(target=run_bridge, args=(opts, stop),
                          kwargs={"emit": lambda rec: rec.get("event") == "ready" and ready.set()}, daemon=True)
    th.start()
    assert ready.wait(30), "bridge not ready"
    yield store_dir
    stop.set()
    th.join(30)


def test_the_live_bridge_raises_the_water_level_warning_with_the_drills_levels(mosquitto, bridge, tmp_path,
                                                                               twin_data):
    summary = DrillPlayer(load_drill(write(tmp_path, DRILL)), bridge, broker=mosquitto.address,
                          progress=lambda line: None).play()
    assert summary["played"] == 2
    deadline = time.monotonic() + 20
    with Store.open_readonly(bridge) as store:
        assert store.sensors().get("FT-WL01").thresholds == LEVELS
        crossed: list = []
        while time.monotonic() < deadline:
            levels = [o for o in store.observations("FT-WL01/water_level")]
            crossed = [e for e in store.events(kind="threshold_crossed") if e.source == "FT-WL01/water_level"]
            if crossed and len(levels) == 2:
                break
            time.sleep(0.1)
        assert [o.value for o in levels] == pytest.approx([3.0, 4.2])
        assert [(e.severity, e.data["threshold"], e.data["value"]) for e in crossed] == [
            ("warning", 4.0, pytest.approx(4.2))]
        assert "warning level of FT-WL01" in crossed[0].message
