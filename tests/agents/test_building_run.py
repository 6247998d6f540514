"""``twin evacuate building``: the run kind, its files, the command line, the map layer and page."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from agents.building import parse_building, resolve
from agents.building_evac import simulate
from twin.events import Event

EXAMPLE = Path(__file__).resolve().parents[2] / "agents" / "data" / "tower_30_residential.toml"


@pytest.fixture(scope="module")
def small_run():
    """An 8-storey tower, 2 stairs, ASET on the top floor: a small real run."""
    spec = parse_building({
        "name": "8-storey test tower", "storeys": {"count": 8, "height_m": 3.0},
        "occupancy": {"floor_area_m2": 500.0, "load_factor_m2_per_person": 18.6, "travel_m": 15.0},
        "floors": [{"index": 7, "aset_s": 60.0}],
        "stairs": [{"width_m": 1.1}, {"width_m": 1.1}], "exits": [{"width_m": 1.1}, {"width_m": 1.1}],
        "movement": {"premovement": {"dist": "lognormal", "median_s": 30.0, "sigma": 0.4}},
    })
    return simulate(resolve(spec), seed=3)


def test_layer_has_one_frame_per_time_and_floors_change_colour(small_run):
    from viz.layers import build

    ls = build("building_evac", small_run)
    assert ls.times_s is not None and len(ls.times_s) == min(small_run.sizes["time"], 60)
    for lid in ("building_evac", "building_evac_strip", "building_evac_flights"):
        assert len(ls.frames[lid]) == len(ls.times_s)
    slabs = next(lyr for lyr in ls.layers if lyr["id"] == "building_evac")
    first = [r["c"] for r in slabs["data"]]
    last = [r["c"] for r in ls.frames["building_evac"][-1]["data"]]
    assert first[1:] != last[1:]
    assert all(c == [190, 190, 190, 235] for c in last)  # every floor clear at the end
    assert "floor cleared (RSET)" in ls.frames["building_evac"][-1]["data"][7]["tooltip"]
    assert "(unsafe)" in ls.frames["building_evac"][-1]["data"][7]["tooltip"]  # ASET 60 s on floor 7
    flights = [f["data"] for f in ls.frames["building_evac_flights"][1:]]
    assert len(flights[0]) == 7 * 2  # storeys 1-7 down, two stairs
    busiest = max(max(r["c"][0] for r in rows) for rows in flights)
    assert busiest > 235  # some flight got dense (orange-red) on the way
    from viz.scene import Scene

    js = Scene(sets=[ls]).to_json()
    assert js["timeline"]["frames"]["building_evac"][0] == {}


def test_pipeline_writes_every_output(tmp_path):
    from twin import pipeline

    res = pipeline.run("evacuate_building", {"levels": 10, "floor_area_m2": 400.0, "seed": 2}, tmp_path,
                       report=True, map=False)
    for name in ("evacuation.nc", "floors.csv", "occupants.csv", "events.jsonl", "evacuation_curve.png",
                 "people_per_floor.png", "summary.json", "report.html"):
        assert (tmp_path / name).is_file(), name
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["people"] == 9 * int(400.0 // 18.6) and s["people_not_safe"] == 0
    assert s["rset_s"] >= s["rset_floor_max_s"] > 0
    events = [Event.parse(json.loads(line)) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert {e.kind for e in events} >= {"floor_cleared", "building_evacuated"}
    floors = (tmp_path / "floors.csv").read_text().splitlines()
    assert floors[0].startswith("floor,elevation_m,people,refuge,rset_s") and len(floors) == 11
    assert res.summary["events"]["floor_cleared"] == 9


def test_command_runs_the_example_building(tmp_path):
    from twin.cli.evacuate_building import building

    out = tmp_path / "run"
    r = CliRunner().invoke(building, [str(EXAMPLE), "--out", str(out), "--no-map", "--no-report", "--json",
                                      "--seed", "4"])
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert s["people"] == 29 * 32 and s["people_not_safe"] == 0 and s["seed"] == 4
    assert (out / "evacuation.nc").is_file()


def test_command_records_the_run_and_its_events_in_a_store(tmp_path):
    from twin.cli.evacuate_building import building
    from twin.store import Store

    out, store_dir = tmp_path / "run", tmp_path / "store"
    r = CliRunner().invoke(building, [str(EXAMPLE), "--out", str(out), "--no-map", "--no-report", "--json",
                                      "--store", str(store_dir)])
    assert r.exit_code == 0, r.output
    written = [json.loads(line)["kind"] for line in (out / "events.jsonl").read_text().splitlines()]
    with Store.open(store_dir) as store:
        (run,) = store.runs()
        assert run.kind == "evacuate_building" and run.status == "done"
        counts = store.run_event_counts(run.id)
    assert counts == {k: written.count(k) for k in set(written)}  # every event of the run, once
    assert counts["floor_cleared"] == 29  # each occupied storey (the example has 32 people on floors 1-29)


@pytest.mark.parametrize("content, expected", [
    pytest.param("name = \n", "not valid TOML", id="broken-toml"),
    pytest.param(EXAMPLE.read_text().replace("count = 30", "count = 0"), "storeys.count = 0", id="schema"),
])
def test_command_refuses_a_bad_file_in_one_line_before_running(tmp_path, content, expected):
    from twin.cli.evacuate_building import building

    bad = tmp_path / "bad.toml"
    bad.write_text(content, encoding="utf-8")
    out = tmp_path / "never"
    r = CliRunner().invoke(building, [str(bad), "--out", str(out)])
    assert r.exit_code == 1
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and expected in lines[0] and "FILE" in lines[0]
    assert not out.exists()


def test_command_refuses_a_missing_file_and_no_source(tmp_path):
    from twin.cli.evacuate_building import building

    r = CliRunner().invoke(building, [str(tmp_path / "none.toml"), "--out", str(tmp_path / "o")])
    assert r.exit_code == 1 and "does not exist" in r.output and len(r.output.strip().splitlines()) == 1
    r = CliRunner().invoke(building, ["--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "exactly one of FILE, --osm or --levels" in r.output


def test_twin_evacuate_building_help_through_the_main_group():
    from twin.cli import main

    r = CliRunner().invoke(main, ["evacuate", "building", "--help"])
    assert r.exit_code == 0 and "--osm-id" in r.output and "RSET" in r.output


@pytest.mark.browser
def test_map_page_draws_the_floors_and_they_clear_on_the_slider(small_run, chromium, tmp_path):
    from agents.building_run import EVACUATE_BUILDING
    from viz.browser import TWINMAP_READY_JS, BrowserSession
    from viz.run_map import write_run_map

    page = write_run_map(EVACUATE_BUILDING, small_run, tmp_path / "map.html")["path"]
    colours = ("map.deck.props.layers.find(l => l.id === 'building_evac').props.data.map(r => r.c)")
    with BrowserSession(width=900, height=650) as b:
        b.goto(page, ready_js=TWINMAP_READY_JS, timeout=90)
        n = b.evaluate("map.frameCount")
        assert n == min(small_run.sizes["time"], 60)
        c0 = b.evaluate(colours)
        assert len(c0) == 8 and c0[1] != [190, 190, 190, 235]
        b.evaluate(f"map.setFrame({n - 1})")
        c_end = b.evaluate(colours)
        assert all(c == [190, 190, 190, 235] for c in c_end)
        assert b.evaluate("map.viewState.pitch") == 50  # a 3-D view of the slabs
        shot = tmp_path / "end.png"
        b.screenshot(shot)
        assert not b.console_errors
    from PIL import Image

    img = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    grey = (np.abs(img - [190, 190, 190]).sum(axis=2) < 40)
    assert grey.sum() > 100  # the cleared floors are drawn


def test_repeated_runs_give_the_rset_distribution(tmp_path):
    """--runs N: seeds SEED..SEED+N-1; the first is the run written; percentiles in the summary."""
    from twin import pipeline

    res = pipeline.run("evacuate_building", {"levels": 8, "floor_area_m2": 400.0, "seed": 5, "runs": 4}, tmp_path,
                       report=False, map=False)
    ds = res.dataset
    assert list(ds["run_seed"].values) == [5, 6, 7, 8]
    assert ds["rset_run"].values[0] == ds.attrs["rset_s"]
    assert len(set(ds["rset_run"].values)) > 1  # other draws, other times
    r = res.summary["rset_runs"]
    assert r["runs"] == 4 and r["min_s"] <= r["p50_s"] <= r["p95_s"] <= r["max_s"]
