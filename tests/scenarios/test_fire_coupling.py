"""The fire coupling on the scenario clock: a real zone-model fire in the 30-storey example tower.

The fire (:class:`physics.fire_sim.FireSimulation`) ignites at the scenario time ``start_s``, is stepped
with the clock, emits its events into the run's log at their own times, keeps per-storey frames and
tables, and a checkpointed run that crashed resumes (re-running the fire to the checkpoint) to the
events of the run that did not stop.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scenarios.coupling import get_coupling
from scenarios.runner import resume_coupled, run_coupled
from twin.errors import ValidationError

#: The block around the Ping An Finance Centre: a small grid (no grid model runs).
BBOX = [114.046, 22.532, 114.055, 22.541]
START_S = 10.0
DURATION_S = 150.0  # 140 s of an ultrafast fire: a detector at about 1 min, the origin storey untenable at 2 min
FIRE = {"building": "tower_30_residential", "floor": 5, "growth": "ultrafast", "sprinklers": "off",
        "start_s": START_S}


def config(**fire) -> dict:
    return {"couplings": {"fire": FIRE | fire}, "duration_s": DURATION_S, "area": {"bbox": BBOX},
            "resolution_m": 250.0, "buffer_m": 0.0, "output_every_s": 60.0, "seed": 3}


class Crash(Exception):
    pass


@pytest.fixture(scope="module")
def whole(twin_data, tmp_path_factory):
    return run_coupled(config(), tmp_path_factory.mktemp("fire_whole"))


def crashed_and_resumed(cfg: dict, d: Path, before_resume=lambda: None):
    """The run of ``cfg`` in ``d`` checkpointed every 2 min, crashed at its last output time, resumed (after
    calling ``before_resume``)."""
    def crash_at_the_end(p):
        if p.get("phase") == "running" and p["sim_s"] >= cfg["duration_s"]:
            raise Crash

    with pytest.raises(Crash):
        run_coupled(cfg, d, checkpoint_every_s=120.0, progress=crash_at_the_end)
    before_resume()
    return resume_coupled(d)


@pytest.fixture(scope="module")
def runs(whole, tmp_path_factory):
    """The run that did not stop and the same run crashed and resumed."""
    return whole, crashed_and_resumed(config(), tmp_path_factory.mktemp("fire_crashed"))


@pytest.fixture(scope="module")
def evacuated(twin_data, tmp_path_factory):
    return run_coupled(config(evacuate=True), tmp_path_factory.mktemp("fire_evacuated"))


@pytest.fixture(scope="module")
def evacuated_resumed(evacuated, tmp_path_factory):
    """The run with the evacuation crashed and resumed."""
    return crashed_and_resumed(config(evacuate=True), tmp_path_factory.mktemp("fire_evacuated_crashed"))


def fire_events(run):
    return [e for e in run.state.events if e.source == "fire"]


def test_the_coupling_stands_for_the_fire_run_kinds_and_can_be_checkpointed():
    c = get_coupling("fire")
    assert {"fire", "fire_evacuation"} <= set(c.kinds)
    assert c.resumable and c.phase == "physics"
    assert "event:fire_floor_untenable" in c.writes and not c.reads


def test_the_fire_ignites_at_its_start_and_its_events_keep_their_own_times(whole):
    ev = fire_events(whole)
    assert ev[0].kind == "fire_ignition" and ev[0].time_s == pytest.approx(START_S)
    assert all(e.time_s >= START_S - 1e-9 for e in ev)
    times = [e.time_s for e in ev]
    assert times == sorted(times)  # one fire: found step by step, in time order
    for e in ev:  # the simulated instant, and the time since ignition, in the data
        assert (e.wall_time - whole.state.clock.start).total_seconds() == pytest.approx(e.time_s)
        assert e.data["fire_time_s"] == pytest.approx(e.time_s - START_S)
        assert e.data["lon"] and e.data["lat"]
    kinds = {e.kind for e in ev}
    assert {"fire_detector", "fire_floor_untenable"} <= kinds, kinds
    assert whole.summary["events"]["fire_ignition"] == 1


def test_with_evacuate_the_occupants_leave_from_the_first_alarm(evacuated, tmp_path):
    """The co-simulation (scenarios.fire_evacuation.FireEvacuation) on the clock: the building's alarm at the
    first detector, people leaving the storeys, the margin per storey, the KPIs and the fire's own files."""
    run = evacuated
    ev = fire_events(run)
    detector = min(e.time_s for e in ev if e.kind == "fire_detector")
    alarm = [e for e in ev if e.kind == "building_alarm"]
    # the co-simulation moves in 5 s blocks: the alarm sounds at the end of the block that saw the detector
    assert len(alarm) == 1 and detector <= alarm[0].time_s < detector + 5.0
    s = run.summary["couplings"]["fire"]
    assert s["evacuate"] and s["building_alarm_s"] == pytest.approx(alarm[0].time_s - START_S)
    assert s["evacuation"]["people"] > 0 and s["people_caught"] is not None
    c = get_coupling("fire")
    tables = c.tables(run.contexts["fire"])
    frames = tables["fire_floor_frames"]
    people = frames.groupby("time_s")["people"].sum()
    assert people.iloc[0] == s["evacuation"]["people"] and people.iloc[-1] < people.iloc[0]  # they are leaving
    margin = tables["fire_margin"]
    assert len(margin) == 30 and {"storey", "aset_s", "rset_s", "margin_s", "people_caught"} <= set(margin)
    ds = run.contexts["fire"].own["dataset"]
    assert "margin_s" in ds and "rset_s" in ds
    files = c.files(run.contexts["fire"], tmp_path)
    assert {"fire", "aset", "margin"} <= set(files) and all(p.parent == tmp_path / "fire" for p in files.values())


def test_the_events_are_the_fire_models_own(whole):
    """The coupling re-times the model's events by the ignition time and adds nothing."""
    res = whole.contexts["fire"].own["result"]
    model = [(e["kind"], round(e["time_s"] + START_S, 6), e["storey"]) for e in res.events]
    coupled = [(e.data["fire_kind"], round(e.time_s, 6), e.data["storey"]) for e in fire_events(whole)]
    assert coupled == model


def test_the_event_kinds_are_those_of_twin_fire_run():
    from physics.fire_io import EVENT_KINDS as RUN_KINDS
    from physics.fire_sim import FIRE_EVENT_KINDS
    from scenarios.couplings.fire import EVENT_KINDS

    assert set(EVENT_KINDS) == set(FIRE_EVENT_KINDS)
    assert EVENT_KINDS == {k: v[0] for k, v in RUN_KINDS.items()}


def test_kpis_follow_the_events_and_the_storeys_aset(whole):
    s = whole.summary["couplings"]["fire"]
    first = min(e.data["fire_time_s"] for e in fire_events(whole) if e.kind == "fire_detector")
    assert s["first_alarm_s"] == pytest.approx(first)
    flashover = [e.data["fire_time_s"] for e in fire_events(whole) if e.kind == "fire_flashover"]
    assert s["flashover_s"] == (pytest.approx(min(flashover)) if flashover else None)
    assert s["first_alarm_s"] < s["first_untenable_s"]
    ds = whole.contexts["fire"].own["dataset"]
    aset = ds["aset_s"].values
    assert s["floors_untenable"] == int(np.isfinite(aset).sum()) >= 1
    assert s["first_untenable_s"] == pytest.approx(np.nanmin(aset))
    assert s["floors_untenable_by_15min"] is None  # the fire ran 140 s: not known
    assert s["people_caught"] is None and s["smallest_margin_s"] is None  # no evacuation in this run
    assert s["ignition_at_s"] == START_S and s["fire_time_simulated_s"] == DURATION_S - START_S


def test_the_map_gets_the_fires_dataset_on_the_scenario_clock(whole):
    from scenarios.couplings.fire import scenario_dataset

    fire = whole.contexts["fire"].own["dataset"]  # since ignition, as fire.nc
    assert fire["time"].values[0] == 0.0 and fire["time"].values[-1] == pytest.approx(DURATION_S - START_S)
    ds = scenario_dataset(fire, START_S)
    assert ds["time"].values[0] == 0.0 and (ds["floor_status"].values[0] == 0).all()  # clear before ignition
    assert np.allclose(ds["time"].values[1:], fire["time"].values + START_S)
    for v in ("aset_s", "ignition_s"):  # the layer compares them with the slider's time
        np.testing.assert_allclose(ds[v].values, fire[v].values + START_S)
    assert [e["time_s"] for e in json.loads(ds.attrs["events"])] == pytest.approx(
        [e["time_s"] + START_S for e in json.loads(fire.attrs["events"])])
    assert ds.attrs["ignition_at_s"] == START_S and ds.sizes["storey"] == 30
    layers = get_coupling("fire").layers(whole.contexts["fire"], [0.0, 60.0, 120.0, 150.0])
    assert layers and layers[0].times_s[:2] == pytest.approx([0.0, START_S])


def test_per_storey_frames_and_tables(whole):
    c = get_coupling("fire")
    tables = c.tables(whole.contexts["fire"])
    frames = tables["fire_floor_frames"]
    steps = np.arange(START_S + 10.0, DURATION_S + 1e-9, 10.0)  # the coupling's 10 s steps after ignition
    assert len(frames) == len(steps) * 30
    assert np.allclose(np.unique(frames["time_s"]), steps)
    assert {"visibility_m", "untenable", "t_upper_k"} <= set(frames.columns)
    last = frames[frames["time_s"] == DURATION_S].set_index("storey")
    assert last.loc[5, "t_upper_k"] > last.loc[25, "t_upper_k"] + 50.0  # the origin storey is hot, the top not
    assert bool(last.loc[5, "untenable"]) and not bool(last.loc[25, "untenable"])
    storeys = tables["fire_storeys"]
    assert list(storeys["level"][:2]) == ["L1", "L2"] and len(storeys) == 30
    # no grid field: a building is no raster
    assert not list(whole.state.dynamic.data_vars)


def test_a_crashed_run_resumes_to_the_events_of_the_run_that_did_not_stop(runs):
    """The zone model is re-run to the checkpoint (deterministic), then goes on."""
    whole, resumed = runs
    assert resumed.resumed_from_s == 120.0
    a = [json.loads(x) for x in whole.paths["events"].read_text().splitlines()]
    b = [json.loads(x) for x in resumed.paths["events"].read_text().splitlines()]
    assert a == b
    fa, fb = (get_coupling("fire").tables(r.contexts["fire"])["fire_floor_frames"] for r in (whole, resumed))
    pd.testing.assert_frame_equal(fa, fb)
    ka, kb = (r.summary["couplings"]["fire"] for r in (whole, resumed))
    assert ka == kb


def test_a_crashed_run_with_the_evacuation_resumes_to_the_same_events_and_margins(evacuated, evacuated_resumed):
    """Fire and evacuation re-run to the checkpoint (same seed, same blocks), then on: the run that did not stop."""
    a, b = evacuated, evacuated_resumed
    assert b.resumed_from_s == 120.0
    assert a.paths["events"].read_text() == b.paths["events"].read_text()
    assert a.summary["couplings"]["fire"] == b.summary["couplings"]["fire"]
    ta, tb = (get_coupling("fire").tables(r.contexts["fire"]) for r in (a, b))
    pd.testing.assert_frame_equal(ta["fire_margin"], tb["fire_margin"])
    pd.testing.assert_frame_equal(ta["fire_floor_frames"], tb["fire_floor_frames"])


@pytest.mark.parametrize(("change", "named"), [
    ({"floor": -1}, "couplings.fire.*floor = -1"),
    ({"floor": None}, "couplings.fire.*floor: Field required"),
    ({"floor": 30}, "couplings.fire.*floor"),  # the tower has storeys 0-29
    ({"compartment": "ballroom"}, "couplings.fire.*compartment"),
    ({"start_s": 500.0}, "couplings.fire.start_s=500"),
    ({"sprinklers": "maybe"}, "couplings.fire.*sprinklers = 'maybe'"),
    ({"t_outside_c": 27.0, "season": "winter"}, "couplings.fire.*season.*t_outside_c"),
    ({"colour": "red"}, "couplings.fire: unknown parameter.*colour"),
])
def test_bad_parameters_are_refused_naming_the_field(twin_data, tmp_path, change, named):
    fire = {k: v for k, v in (FIRE | change).items() if v is not None}
    cfg = config() | {"couplings": {"fire": fire}}
    with pytest.raises(ValidationError, match=named):
        run_coupled(cfg, tmp_path / "bad")
    assert not (tmp_path / "bad" / "events.jsonl").exists()


# ----------------------------------------------------------------------------- the built-in, end to end
PING_AN_S = 70  # the built-in's first 70 s: 1 min before ignition, 10 s of fire (the 1956-compartment tower is slow)


@pytest.fixture(scope="module")
def ping_an(twin_data, tmp_path_factory):
    from click.testing import CliRunner

    from twin.cli import main

    out = tmp_path_factory.mktemp("ping_an_fire") / "run"
    res = CliRunner().invoke(main, ["scenario", "run", "ping_an_fire", "--duration", f"{PING_AN_S}s",
                                    "--out", str(out)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return out, res.output


def test_the_builtin_is_listed_and_checks(twin_data):
    from click.testing import CliRunner

    from twin.cli import main

    listed = CliRunner().invoke(main, ["scenario", "list", "--json"], catch_exceptions=False)
    row = next(r for r in json.loads(listed.output) if r["name"] == "ping_an_fire")
    assert row["models"] == ["fire"] and row["duration_h"] == 1.0
    checked = CliRunner().invoke(main, ["scenario", "check", "ping_an_fire"], catch_exceptions=False)
    assert checked.exit_code == 0 and "OK" in checked.output


def test_the_builtin_says_its_floor_and_why_sprinklers_fail():
    from scenarios.files import BUILTIN_DIR, load_scenario

    loaded = load_scenario("ping_an_fire")
    req = loaded.requests["fire"]
    assert req.building == "ping_an_finance_centre" and req.floor == 44 and req.growth == "fast"
    assert req.sprinklers == "off" and req.evacuate and req.t_outside_c == 27.0
    assert loaded.scenario.time.duration == 3600.0 and loaded.scenario.hazards.fires[0].floor == 44
    text = (BUILTIN_DIR / "ping_an_fire.toml").read_text(encoding="utf-8")
    assert "storey index 44 = L45" in text
    notes = {n.about: n.text for n in loaded.scenario.assumptions}
    assert "ASSUMED failure case" in notes["models.fire.sprinklers"]


def test_the_builtin_runs_end_to_end_shortened(ping_an):
    out, output = ping_an
    summary = json.loads((out / "summary.json").read_text())
    fire = summary["couplings"]["fire"]
    assert fire["origin_level"] == "L45" and fire["ignition_at_s"] == 60.0 and fire["evacuate"]
    assert fire["fire_time_simulated_s"] == PING_AN_S - 60.0
    assert set(("first_alarm_s", "flashover_s", "floors_untenable_by_15min", "people_caught",
                "smallest_margin_s")) <= set(fire)
    events = [json.loads(x) for x in (out / "events.jsonl").read_text().splitlines()]
    ignition = [e for e in events if e["kind"] == "fire_ignition"]
    assert len(ignition) == 1 and ignition[0]["time_s"] == 60.0 and ignition[0]["data"]["floor_label"] == "L45"
    frames = pd.read_parquet(out / "fire_floor_frames.parquet")
    assert frames["storey"].max() == 114 and frames["time_s"].min() > 60.0
    storeys = pd.read_parquet(out / "fire_storeys.parquet")
    assert len(storeys) == 115
    assert (out / "fire_margin.parquet").is_file()
    assert {"fire.nc", "aset.csv", "margin.csv"} <= {p.name for p in (out / "fire").iterdir()}
    assert summary["files"]["fire:fire"] == "fire.nc"
    page = (out / "map.html").read_text(encoding="utf-8")
    assert "fire_floors" in page
    # the map opens pitched on the tower (Coupling.map_view), not straight down on the grid
    assert re.search(r'"pitch":\s*50', page) and re.search(r'"bearing":\s*-20', page)
    report = (out / "report.html").read_text(encoding="utf-8")
    assert "High-rise fire" in report and "L45" in report
    assert summary["output_problems"] == []


def test_the_builtins_packaged_building_is_a_hashed_input(ping_an):
    """ping_an_fire names the building by its example name: the manifest hashes the packaged file."""
    from physics.fire_building import EXAMPLES

    out, _ = ping_an
    inputs = json.loads((out / "manifest.json").read_text())["inputs"]
    packaged = EXAMPLES["ping_an_finance_centre"]
    assert Path(inputs["fire_building"]["path"]) == packaged.resolve()
    assert inputs["fire_building"]["sha256"] == hashlib.sha256(packaged.read_bytes()).hexdigest()
    assert "fire_building_tables" not in inputs  # the Ping An file holds its storeys and stairs itself


# ----------------------------------------------------------------------------- the building files hashed
def test_an_example_building_and_the_evacuation_file_it_names_are_inputs(whole):
    from physics.fire_building import EXAMPLES

    example = EXAMPLES["tower_30_residential"].resolve()
    assert whole.inputs["fire_building"] == example
    # the example's fire file names the evacuation's file for its storeys, floors and stairs
    assert whole.inputs["fire_building_tables"] == (example.parent / "../../../agents/data/"
                                                    "tower_30_residential.toml").resolve()


def _building_copy(folder: Path) -> Path:
    """The example tower's two files copied into ``folder`` (the fire file naming its copied neighbour)."""
    from physics.fire_building import EXAMPLES

    fire = EXAMPLES["tower_30_residential"]
    tables = (fire.parent / "../../../agents/data/tower_30_residential.toml").resolve()
    folder.mkdir()
    (folder / "tables.toml").write_text(tables.read_text(encoding="utf-8"), encoding="utf-8")
    text = fire.read_text(encoding="utf-8").replace('building = "../../../agents/data/tower_30_residential.toml"',
                                                    'building = "tables.toml"')
    assert 'building = "tables.toml"' in text
    (folder / "fire.toml").write_text(text, encoding="utf-8")
    return folder / "fire.toml"


def _input_hashes(building: Path, out: Path) -> dict[str, str]:
    """sha256 by role of the fire's building files in the manifest of a 10 s run of ``building``."""
    cfg = config(building=str(building), start_s=0.0) | {"duration_s": 10.0, "output_every_s": 10.0}
    run_coupled(cfg, out)
    inputs = json.loads((out / "manifest.json").read_text())["inputs"]
    return {k: v["sha256"] for k, v in inputs.items() if k.startswith("fire_building")}


def test_editing_either_building_file_changes_the_runs_input_hash(twin_data, tmp_path):
    fire = _building_copy(tmp_path / "tower")
    tables = fire.with_name("tables.toml")
    before = _input_hashes(fire, tmp_path / "before")
    assert set(before) == {"fire_building", "fire_building_tables"}
    text = fire.read_text(encoding="utf-8")
    fire.write_text(text.replace("ceiling_height_m = 2.8", "ceiling_height_m = 2.7"), encoding="utf-8")
    assert "ceiling_height_m = 2.7" in fire.read_text(encoding="utf-8")
    fire_edited = _input_hashes(fire, tmp_path / "fire_edited")
    assert fire_edited["fire_building"] != before["fire_building"]
    assert fire_edited["fire_building_tables"] == before["fire_building_tables"]
    tables.write_text(tables.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    tables_edited = _input_hashes(fire, tmp_path / "tables_edited")
    assert tables_edited["fire_building"] == fire_edited["fire_building"]
    assert tables_edited["fire_building_tables"] != fire_edited["fire_building_tables"]


def test_a_crashed_run_whose_building_changed_is_not_resumed(twin_data, tmp_path):
    """A resume re-runs the fire from ignition: with an edited building it would mix two buildings."""
    from twin.errors import SnapshotError

    fire = _building_copy(tmp_path / "tower")
    tables = fire.with_name("tables.toml")

    def edit_the_tables():
        tables.write_text(tables.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")

    with pytest.raises(SnapshotError, match=r"couplings.fire: the building changed since the checkpoint: "
                                             r"fire_building_tables .*tables.toml"):
        crashed_and_resumed(config(building=str(fire)), tmp_path / "crashed", before_resume=edit_the_tables)


def _scenario(models: dict, fires: list | None = None) -> dict:
    return {"name": "fire_case", "title": "a fire", "time": {"start": "2026-07-15T02:00:00+08:00", "duration": "1 h"},
            "area": {"bbox": BBOX}, "models": models, "hazards": {"fires": fires or []}}


def test_a_fire_evacuation_section_runs_the_fire_coupling_with_the_evacuation(twin_data):
    from scenarios.files import check_scenario
    from scenarios.translate import translate

    loaded = check_scenario(_scenario({"fire_evacuation": {"building": "tower_30_residential", "floor": 5,
                                                           "door_hold": "closed"}},
                                      [{"lon": 114.05, "lat": 22.536, "after": "5 min", "floor": 5}]))
    tr = translate(loaded)
    assert tr.reasons == {"fire": "models.fire_evacuation"}
    params = tr.config.couplings["fire"]
    assert params["evacuate"] is True and params["door_hold"] == "closed" and params["start_s"] == 300.0
    assert params["building"] == "tower_30_residential" and "seed" not in params


def test_a_fire_origin_on_another_floor_than_the_models_is_refused(twin_data):
    from scenarios.files import check_scenario
    from scenarios.translate import translate

    loaded = check_scenario(_scenario({"fire": {"building": "tower_30_residential", "floor": 5}},
                                      [{"lon": 114.05, "lat": 22.536, "after": "5 min", "floor": 7}]))
    with pytest.raises(ValidationError, match=r"hazards.fires.0.floor=7 but models.fire.floor=5"):
        translate(loaded)


def test_the_smallest_margin_bounds_a_storey_still_occupied_when_it_became_untenable():
    """margin = ASET − RSET (the issue's definition); a storey untenable with people left at the end has
    RSET > the end, so its margin is at most ASET − end."""
    from scenarios.fire_evacuation import smallest_margin

    m = pd.DataFrame({"floor": [3, 4, 5], "level": ["L4", "L5", "L6"], "people": [10, 10, 10],
                      "aset_s": [np.nan, 400.0, 200.0], "rset_s": [300.0, 350.0, np.nan]})
    assert smallest_margin(m, 540.0) == {"smallest_margin_s": -340.0, "smallest_margin_level": "L6",
                                         "smallest_margin_is_bound": True}
    assert smallest_margin(m.iloc[:2], 540.0) == {"smallest_margin_s": 50.0, "smallest_margin_level": "L5",
                                                  "smallest_margin_is_bound": False}
    assert smallest_margin(m.iloc[:1], 540.0)["smallest_margin_s"] is None
