"""A fire run's predicted detector activations replayed as a drill (scenarios.fire_drill, ``twin fire drill``),
and the closed loop: fire run -> drill -> a real mosquitto and ``twin bridge run`` -> the bridge's FireOrigins ->
``fire_origin`` -> scenarios.fire_response starts a fire run at that floor.

The fire runs are real runs (run kind ``fire``, physics.fire_sim) of the 30-storey example tower, short.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from hardware_bridge.fusion.fire import alarm_thresholds
from hardware_bridge.schema import STATION_RE
from scenarios.drill import load_drill
from scenarios.fire_drill import (
    SENSORS_NAME,
    building_devices,
    building_spec,
    drill_from_run,
    play_drill,
    run_dataset,
    run_events,
    sensor_id,
)
from scenarios.fire_response import FireResponder, ResponseSettings
from twin.errors import ValidationError
from twin.store import Store

TOWER = "tower_30_residential"
FLOOR = 10
#: The run: medium t² growth for 420 s (measured with ceiling-vent flows landing by buoyancy: flat A's detector at
#: 69 s, the lobby's at 136 s, the other flats' at 243 s, then the lobbies of storeys 12, 11, 8, 9, 13 at 310, 325,
#: 344, 365, 369 s and of 6, 7 at 411, 418 s; about 10 s). Smoke reaches other storeys later than before that
#: change (11-13 at 249-295 s), so 300 s no longer showed a spread.
GROWTH = "medium"
DURATION_S = 420.0


@pytest.fixture(scope="module")
def open_tower(tmp_path_factory) -> Path:
    """The example tower with flat A's front door left open and smoke detectors in the flats too (ASSUMED for the
    test: the example's detectors are in the lobbies only and its doors shut, so within minutes one detector
    operates; an open door brings smoke to the lobby and up the stairs, the flats' detectors operate early)."""
    from physics.fire_building import EXAMPLES

    src = Path(EXAMPLES[TOWER])
    text = src.read_text(encoding="utf-8")
    agents = (src.parent / "../../../agents/data/tower_30_residential.toml").resolve()
    text = text.replace('building = "../../../agents/data/tower_30_residential.toml"', f'building = "{agents}"')
    text = text.replace('name = "flat A"\nshare = 0.25                         # ASSUMED\ndoor_open = 0.0',
                        'name = "flat A"\nshare = 0.25\ndoor_open = 1.0')
    text = text.replace('locations = ["lobby"]', 'locations = ["room", "lobby"]')
    assert "door_open = 1.0" in text and '"room", "lobby"' in text
    path = tmp_path_factory.mktemp("building") / "tower_30_open.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def fire_run(tmp_path_factory, open_tower):
    """A real fire run of that tower (run kind ``fire`` through the run pipeline): its folder."""
    from twin import pipeline

    out = tmp_path_factory.mktemp("fire_run")
    pipeline.run("fire", {"building": str(open_tower), "floor": FLOOR, "growth": GROWTH, "sprinklers": "off",
                          "duration_s": DURATION_S, "dt_s": 1.0, "record_every_s": 10.0}, out, report=False, map=False)
    return out


def activations(run_dir: Path) -> list[dict]:
    return [e for e in run_events(run_dataset(run_dir)) if e["kind"] in ("detector", "sprinkler")]


def test_station_ids_of_device_names():
    assert sensor_id("smoke 10/lobby", TOWER) == "tower_30_residential.smoke-10-lobby"
    assert sensor_id("sprinkler 44/office 1", "PA") == "PA.sprinkler-44-office-1"
    assert STATION_RE.fullmatch(sensor_id("烟感 3/大堂", "T1"))  # non-ASCII made bridge-safe
    with pytest.raises(ValidationError, match="64"):
        sensor_id("smoke 1/lobby", "x" * 70)


def test_registry_holds_every_detector_with_building_floor_and_zone(fire_run):
    from scenarios.fire_drill import detector_registry

    # the example tower has one smoke detector per storey, in the lobby (physics/data/fire_buildings/)
    reg = detector_registry(TOWER)
    assert len(reg) == 30 and reg.kinds() == {"smoke": 30}
    s = reg.get("tower_30_residential.smoke-10-lobby")
    assert s.properties == {"building": TOWER, "floor": 10, "zone": "lobby", "device": "smoke 10/lobby",
                            "device_kind": "smoke"}
    assert (s.lon, s.lat, s.unit) == (pytest.approx(114.0505), pytest.approx(22.5367), "1/m")
    # the run's tower has them in its four flats too; the building id is the file's stem
    run_reg = drill_from_run(fire_run).registry()
    assert len(run_reg) == 150 and run_reg.kinds() == {"smoke": 150}
    flat = run_reg.get("tower_30_open.smoke-10-flat-A")
    assert flat.properties["building"] == "tower_30_open" and flat.properties["zone"] == "flat A"
    assert all(STATION_RE.fullmatch(i) for i in [*reg.ids(), *run_reg.ids()])


def test_a_bare_fire_nc_names_its_building(fire_run, open_tower, tmp_path):
    import shutil

    bare = tmp_path / "fire.nc"  # no summary.json beside it
    shutil.copy(fire_run / "fire.nc", bare)
    d = drill_from_run(bare)  # fire.nc's building_source: the variant's file, not the example of the same name
    assert (d.building, d.building_id, len(d.devices)) == (str(open_tower), "tower_30_open", 150)


def test_the_registry_has_the_devices_a_run_equips(tmp_path):
    """The same devices as the fire model's (FireSimulation builds them; its builder is private, read here so the
    two cannot drift), for the example and for a variant with heat detectors and sprinklers."""
    from physics.fire_building import EXAMPLES
    from physics.fire_sim import FireSimulation

    src = Path(EXAMPLES[TOWER])
    agents = (src.parent / "../../../agents/data/tower_30_residential.toml").resolve()
    text = src.read_text(encoding="utf-8").replace('building = "../../../agents/data/tower_30_residential.toml"',
                                                   f'building = "{agents}"')
    text = text.replace("installed = false ", "installed = true ").replace('kind = "smoke"', 'kind = "heat"')
    variant = tmp_path / "tower_heat.toml"
    variant.write_text(text, encoding="utf-8")
    for building in (TOWER, str(variant)):
        sim = FireSimulation(building, floor=3, duration_s=10.0, record_every_s=10.0)
        ours = {d.device: d for d in building_devices(building_spec(building), "X")}
        assert set(ours) == set(sim._devices().names)
    kinds = {d.device_kind for d in ours.values()}
    assert kinds == {"heat", "sprinkler"} and ours["heat 3/lobby"].alarm_value == pytest.approx(57.0 + 273.15)


def test_sprinklers_and_heat_detectors_are_heat_sensors_past_the_heat_alarm():
    from physics.fire_building import load_example

    thr = alarm_thresholds()
    devs = building_devices(load_example("ping_an_finance_centre"), "PA")
    spr = next(d for d in devs if d.device_kind == "sprinkler")
    smk = next(d for d in devs if d.device_kind == "smoke")
    # a 68 degC sprinkler link (NFPA 13 ordinary rating, physics.fire_detection) above EN 54-5 A1's 54 degC alarm
    assert (spr.kind, spr.unit) == ("heat", "K") and spr.alarm_value == pytest.approx(68.0 + 273.15)
    assert spr.alarm_value > thr["heat"] > spr.quiet_value
    # CFAST's default smoke detector, 23.93 %/m, above the bridge's 8 %/m alarm
    assert smk.alarm_value == pytest.approx(0.2393) and smk.alarm_value > thr["smoke"] > smk.quiet_value


def test_drill_readings_cross_the_alarm_thresholds_at_the_predicted_times(fire_run, tmp_path, twin_data):
    acts = activations(fire_run)
    assert acts, "the run must see detectors operate"
    paths = drill_from_run(fire_run).write(tmp_path / "drill", speed=5.0)
    assert {p.name for p in (tmp_path / "drill").iterdir()} == {SENSORS_NAME, paths["drill"].name,
                                                                paths["scenario"].name}
    loaded = load_drill(paths["drill"])  # the drill player's own checks pass
    thr = alarm_thresholds()
    alarms = [p for p in loaded.timeline if p.inject.payload.value >= thr["smoke"]]
    quiet = [p for p in loaded.timeline if p.inject.payload.value < thr["smoke"]]
    assert len(alarms) == len(quiet) == len({a["device"] for a in acts})
    assert all(q.offset_s == 0.0 for q in quiet)
    first = {}
    for a in acts:
        first.setdefault(a["device"], a["time_s"])
    # each alarm reading at its device's predicted activation (the file keeps ms)
    for p in alarms:
        dev = p.inject.note.split(" operates")[0]
        assert p.offset_s == pytest.approx(first[dev], abs=1e-3)
    assert [p.offset_s for p in alarms] == sorted(p.offset_s for p in alarms)
    (target,) = loaded.drill.targets
    assert loaded.target_inject(target).offset_s == pytest.approx(min(first.values()), abs=1e-3)
    assert loaded.drill.speed == 5.0


def test_a_run_without_activations_has_nothing_to_replay(tmp_path):
    from twin import pipeline

    out = tmp_path / "short"
    pipeline.run("fire", {"building": TOWER, "floor": FLOOR, "duration_s": 10.0, "record_every_s": 10.0}, out,
                 report=False, map=False)  # 10 s of fire: no detector yet
    d = drill_from_run(out)
    assert d.activations == ()
    with pytest.raises(ValidationError, match="nothing to replay"):
        d.write(tmp_path / "drill")
    with pytest.raises(ValidationError, match="no fire.nc"):
        drill_from_run(tmp_path)


def test_twin_fire_drill_writes_and_registers(fire_run, tmp_path):
    from twin.cli.fire_live import drill

    store = tmp_path / "store"
    res = CliRunner().invoke(drill, [str(fire_run), "--out", str(tmp_path / "d"), "--store", str(store), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["registered"] == 150 and out["first"]["storey"] == FLOOR
    with Store.open(store) as st:
        assert st.sensors().get("tower_30_open.smoke-10-lobby").properties["floor"] == 10
    usage = CliRunner().invoke(drill, [str(fire_run), "--out", str(tmp_path / "e"), "--broker", "127.0.0.1:1"])
    assert usage.exit_code == 2 and "--store" in usage.output


# ----------------------------------------------------------------------------- the closed loop (fixture bridge:
# tests/scenarios/conftest.py)
def wait_for(store_dir: Path, kinds: tuple[str, ...], n: int, timeout: float = 15.0) -> list:
    deadline = time.monotonic() + timeout
    while True:
        with Store.open(store_dir) as st:
            rows = [e for e in st.event_rows_after(0, kinds=list(kinds))]
        if len(rows) >= n or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


def test_closed_loop_run_drill_bridge_origin_run(fire_run, open_tower, mosquitto, bridge, tmp_path, twin_data):
    """twin fire drill (write, register, play) beside twin bridge run, then twin fire watch --once."""
    from twin.cli.fire_live import drill, watch

    store_dir = bridge
    ds = run_dataset(fire_run)
    d = drill_from_run(fire_run)
    speed = max(1.0, d.activations[-1].time_s / 3.0)  # the whole timeline in about 3 s of wall time
    res = CliRunner().invoke(drill, [str(fire_run), "--out", str(tmp_path / "drill"), "--store", str(store_dir),
                                     "--broker", mosquitto.address, "--speed", f"{speed:.3f}", "--json"])
    assert res.exit_code == 0, res.output
    played = json.loads(res.stdout)["played"]
    assert played["status"] == "done" and played["injects"] == 2 * len(d.activations)
    rows = wait_for(store_dir, ("fire_origin", "fire_spread"), len(d.activations))
    origins = [r for r in rows if r.kind == "fire_origin"]
    spreads = [r for r in rows if r.kind == "fire_spread"]
    # FireOrigins puts the origin at the run's origin storey, at the predicted first activation
    assert len(origins) == 1, [r.message for r in rows]
    o = origins[0].data
    assert o["building"] == "tower_30_open" and o["floor"] == int(ds.attrs["origin_storey"]) == FLOOR
    assert o["detector"] == d.first.device.sensor_id and o["corrected"] is False
    with Store.open(store_dir) as st:  # the drill log: each inject's planned offset and actual time
        log = [e.data for e in st.events(kind="drill_inject") if e.data.get("drill") == played["drill"]]
    (first,) = [p for p in log if p["datastream"] == f"{d.first.device.sensor_id}/smoke" and p["offset_s"] > 0]
    assert first["offset_s"] == pytest.approx(d.first.time_s, abs=1e-3)
    assert o["time"].replace("+00:00", "Z") == first["actual_at"]  # the alarm reading's own time
    # every other device that operates is spread, on its own storey, other storeys among them
    assert sorted(r.data["floor"] for r in spreads) == sorted(a.device.storey for a in d.activations[1:])
    assert "same" in {r.data["direction"] for r in spreads} and {r.data["floor"] for r in spreads} - {FLOOR}, \
        [r.message for r in spreads]
    # the watcher answers the origin with a fire run at that storey, stored like every run (the same fire as the
    # source run, long enough for its first detector: the ignition estimate below)
    args = ["--store", str(store_dir), "--building", str(open_tower), "--once", "--growth", GROWTH,
            "--sprinklers", "off", "--duration", str(int(d.first.time_s) + 10), "--no-report"]
    res = CliRunner().invoke(watch, args)
    assert res.exit_code == 0, res.output
    (resp,) = [json.loads(x) for x in res.stdout.splitlines()]
    assert resp["status"] == "done", resp["reason"]
    # the detector hangs in flat A, a room of the storey: the fire starts there
    assert (resp["floor"], resp["compartment"]) == (FLOOR, "flat A")
    with Store.open(store_dir) as st:
        (run,) = st.runs()
        answer = st.events(kind="fire_response")
    assert run.kind == "fire" and run.status == "done" and run.params["floor"] == FLOOR and run.id == resp["run_id"]
    assert run.params["compartment"] == "flat A" and run.params["fire_response"]["origin_event"] == origins[0].id
    out_dir = Path(resp["out_dir"])
    assert out_dir == store_dir / "runs" / f"run-{run.id:05d}" and run_dataset(out_dir).attrs["origin_storey"] == FLOOR
    assert [a.data["run"] for a in answer] == [run.id]
    from viz.console.runs import RunManager

    with Store.open(store_dir) as st:  # the console lists it, with its outputs
        (listed,) = RunManager(st, store_dir / "runs", None).runs()
    assert (listed["id"], listed["kind"], listed["has_outputs"], listed["params"]["floor"]) == (run.id, "fire", True,
                                                                                               FLOOR)
    # the estimated ignition: the alarm time less the new run's own first detector time (the same fire)
    assert resp["first_detector_s"] == pytest.approx(d.first.time_s, rel=1e-6)
    # once: a second watcher finds the run and does nothing
    s = ResponseSettings(store=store_dir, buildings={"tower_30_open": str(open_tower)})
    assert [r.status for r in FireResponder(s).process()] == ["duplicate"]
    with Store.open(store_dir) as st:
        assert len(st.runs()) == 1


def test_a_sprinkler_alarm_reaches_the_bridge_as_heat(mosquitto, bridge, tmp_path, twin_data):
    """A sprinkler's drill readings (K) through MQTT and the bridge's unit checks to FireOrigins: the sprinkler
    operating first on Ping An's storey 44 is the origin (kind heat), the smoke detector above it spread (the
    activation times are given here: Ping An's full runs are too long for a test)."""
    from physics.fire_building import load_example
    from scenarios.fire_drill import Activation, FireDrill

    spec = load_example("ping_an_finance_centre")
    devs = {d.device: d for d in building_devices(spec, "PA")}
    acts = (Activation(52.0, devs["sprinkler 44/office 1"]), Activation(80.5, devs["smoke 45/office 1"]))
    d = FireDrill("PA", "ping_an_finance_centre", 44, 600.0, 114.0505, 22.5367, spec.n_storeys,
                  spec.plate_area_m2(0), tuple(devs.values()), acts)
    summary = play_drill(d.write(tmp_path / "pa")["drill"], bridge, mosquitto.address, speed=40.0)
    assert summary["played"] == 4
    rows = wait_for(bridge, ("fire_origin", "fire_spread"), 2)
    assert [(r.kind, r.data["floor"], r.data["kind"], r.data["zone"]) for r in rows] == [
        ("fire_origin", 44, "heat", "office 1"), ("fire_spread", 45, "smoke", "office 1")]
    # the 68 degC link as the bridge stored it (K), past EN 54-5 A1's 54 degC alarm
    assert rows[0].data["value"] == pytest.approx(68.0 + 273.15) and rows[0].data["detector"] == "PA.sprinkler-44-office-1"
