"""``twin scenario run`` end to end on the real data: built-ins, refusals, same seed same outputs, resume.

Every run is short (30 min of simulated time) on 250 m cells. Every built-in
runs from the command line (Guangming, where the shared data hold no street,
on the ASSUMED lattice walk network its ``[roads] lattice = true`` asks for);
a scenario whose area has no road and no ``[roads]`` is refused before
anything is written, naming the keys to set.
"""

from __future__ import annotations

import hashlib
import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import xarray as xr
from click.testing import CliRunner

from scenarios.coupling import couplings
from scenarios.files import builtin_names, load_scenario
from scenarios.translate import FRAME_EVERY_S, translate
from twin.cli import main
from twin.errors import ValidationError
from twin.pipeline import read_run_events

#: The grid built-ins, each run for 30 min below. ping_an_fire (a building, no grid) runs end to end in
#: tests/scenarios/test_fire_coupling.py, shortened: 30 min of its 115-storey fire with 16,430 evacuees
#: would cost minutes of CI for what that test already checks.
BUILTINS = [n for n in builtin_names() if n != "ping_an_fire"]
#: A scenario on Guangming (no street in the shared data: drive_roads covers central Futian and
#: Nanshan) whose evacuation reads the road graph, with no [roads] table: it must be refused.
NO_ROADS = """
title = "Guangming flood evacuation without roads"
seed = 1
[time]
start = 2023-09-07T22:00:00+08:00
duration = "1 h"
[area]
districts = ["Guangming"]
[hazards.rain]
storm = "2023-09-07"
[models.flood_forecast]
resolution = 250.0
[models.evacuate_district]
hazard_class = 3
"""


SMALL = """
title = "Futian flood, a lost road and a call"
description = "A short test scenario: the 2023-09-07 storm on Futian, a road lost, a flood rescue."
seed = 4
[time]
start = 2023-09-07T22:00:00+08:00
duration = "3 h"
[area]
districts = ["Futian"]
[hazards.rain]
storm = "2023-09-07"
[models.flood_forecast]
resolution = 250.0
[[injects]]
after = "10 min"
kind = "road_lost"
payload = { lon = 114.0480, lat = 22.5390, reason = "tree down" }
[[injects]]
after = "20 min"
kind = "incident"
payload = { lon = 114.0600, lat = 22.5330, incident = "flood_rescue" }
[outputs]
frame_every = "10 min"
"""


def cli(*args):
    return CliRunner().invoke(main, ["scenario", "run", *map(str, args)], catch_exceptions=False)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    d = tmp_path_factory.mktemp("small")
    path = d / "futian_small.toml"
    path.write_text(SMALL, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def builtin_run(twin_data, tmp_path_factory, request):
    name = request.param
    out = tmp_path_factory.mktemp(name) / "run"
    res = cli(name, "--duration", "30min", "--resolution", "250", "--out", out)
    return name, out, res


@pytest.mark.parametrize("builtin_run", BUILTINS, indirect=True)
def test_each_builtin_runs_from_the_cli_and_writes_its_outputs(builtin_run):
    name, out, res = builtin_run
    assert res.exit_code == 0, res.output
    assert str(out) in res.output
    loaded = load_scenario(name)
    man = json.loads((out / "manifest.json").read_text())
    summ = json.loads((out / "summary.json").read_text())
    assert man["scenario_hash"] == loaded.hash
    digest = hashlib.sha256(loaded.path.read_bytes()).hexdigest()
    assert man["inputs"]["scenario"]["sha256"] == digest
    for role, path in translate(loaded).inputs.items():  # every file the scenario names, hashed
        assert man["inputs"][role]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    # every coupling of the translation ran, in the manifest's schedule
    assert sorted(s["name"] for s in man["schedule"]) == sorted(man["scenario"]["enabled"])
    with xr.open_dataset(out / "fields.nc") as ds:
        n = ds.sizes["time"]
        every = float(loaded.scenario.outputs.frame_every or FRAME_EVERY_S)  # the scenario's frames (s)
        assert n == int(1800.0 // every) + 1 and float(ds["time"][-1]) == 1800.0
    for p in out.glob("*.parquet"):  # every table reads back; GeoParquet ones with their geometry
        if b"geo" in (pq.read_schema(p).metadata or {}):
            assert gpd.read_parquet(p).crs == "EPSG:4326"
        else:
            pd.read_parquet(p)
    ev = gpd.read_parquet(out / "events.parquet")
    assert len(ev) == len(read_run_events(out)) == sum(summ["events"].values())
    located = ev[ev.geometry.notna()]
    for _, row in located.iterrows():
        data = json.loads(row["data"])
        assert (row.geometry.x, row.geometry.y) == pytest.approx((data["lon"], data["lat"]))
    html = (out / "report.html").read_text()
    assert loaded.scenario.title.split(":")[0] in html
    positions = [html.index(f"<td>{s['name']}</td>") for s in man["schedule"]]
    assert positions == sorted(positions)  # the schedule table lists the couplings in their order
    assert summ["map"]["frames"] == n and (out / "map.html").stat().st_size > 4_000_000


def test_a_bad_file_is_refused_with_every_problem_and_nothing_runs(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('title = "bad"\nseed = -1\n[time]\nstart = 2023-09-07T22:00:00+08:00\n'
                   'duration = "3"\n[area]\ndistricts = ["Atlantis"]\n[models.flood_forecast]\n'
                   'resolution = -5.0\n', encoding="utf-8")
    out = tmp_path / "out"
    res = cli(bad, "--out", out)
    assert res.exit_code == 2
    for path in ("seed", "time.duration", "area.districts.0", "models.flood_forecast.resolution"):
        assert path in res.output
    assert not out.exists()


def test_a_model_without_a_coupling_is_refused_before_running(twin_data, tmp_path):
    assert not any("evacuate_building" in c.kinds for c in couplings().values()), \
        "the building evacuation has a coupling now: pick another model without one for this test"
    text = SMALL.replace("[models.flood_forecast]\nresolution = 250.0",
                         "[models.flood_forecast]\nresolution = 250.0\n"
                         "[models.evacuate_building]\nlevels = 10\nfloor_area_m2 = 800.0")
    path = tmp_path / "orphan.toml"
    path.write_text(text, encoding="utf-8")
    load_scenario(path)  # a valid file: only the coupling is missing
    out = tmp_path / "out"
    res = cli(path, "--out", out)
    assert res.exit_code == 2 and "models.evacuate_building" in res.output
    assert "flood_forecast" in res.output  # the kinds couplings stand for are listed
    assert not out.exists()


@pytest.fixture(scope="module")
def twice(twin_data, small, tmp_path_factory):
    d = tmp_path_factory.mktemp("twice")
    for k, more in (("a", []), ("b", ["--no-map"])):
        res = cli(small, "--duration", "30min", "--out", d / k, *more)
        assert res.exit_code == 0, res.output
    return d


def _same_outputs(a, b):
    with xr.open_dataset(a / "fields.nc") as x, xr.open_dataset(b / "fields.nc") as y:
        assert sorted(x.data_vars) == sorted(y.data_vars)
        for name in x.data_vars:
            np.testing.assert_array_equal(x[name].values, y[name].values)
    assert (a / "events.jsonl").read_bytes() == (b / "events.jsonl").read_bytes()


def test_same_scenario_and_seed_give_identical_fields_and_events(twice):
    _same_outputs(twice / "a", twice / "b")
    kinds = {e.kind for e in read_run_events(twice / "a")}
    assert "road_lost" in kinds or "road_closed" in kinds  # the inject played
    assert (twice / "a" / "map.html").exists() and not (twice / "b" / "map.html").exists()
    assert (twice / "b" / "report.html").exists()


class Crash(Exception):
    pass


def test_resume_after_a_crash_finishes_identically(twice, small, tmp_path):
    from scenarios.run_scenario import run_scenario

    known = couplings()
    enabled = json.loads((twice / "a" / "manifest.json").read_text())["scenario"]["enabled"]
    assert [n for n in enabled if not known[n].resumable] == [], "the small scenario must be resumable"

    def crash_at_20min(p):
        if p.get("phase") == "running" and p["sim_s"] >= 1200.0:
            raise Crash

    out = tmp_path / "crashed"
    with pytest.raises(Crash):
        run_scenario(small, out, duration_s=1800.0, checkpoint_every_s=600.0, map=False,
                     progress=crash_at_20min)
    assert not (out / "fields.nc").exists()
    res = CliRunner().invoke(main, ["scenario", "run", "--resume", str(out)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    _same_outputs(twice / "a", out)
    assert (out / "report.html").exists() and not (out / "map.html").exists()
    assert json.loads((out / "summary.json").read_text())["resumed_from_s"] == 1200.0


@pytest.mark.browser
def test_the_map_draws_offline_with_one_slider_over_the_run_frames(twice, chromium):
    from viz.browser import TWINMAP_READY_JS, BrowserSession

    out = twice / "a"
    with xr.open_dataset(out / "fields.nc") as ds:
        n = ds.sizes["time"]
    with BrowserSession(width=1000, height=700) as b:
        b.goto(out / "map.html", ready_js=TWINMAP_READY_JS, timeout=90)
        assert b.evaluate("map.frameCount") == n
        assert b.evaluate("document.querySelectorAll('.tm-slider').length") == 1
        b.evaluate("document.querySelector('.tm-slider').focus()")
        b.press("End", key_code=35)
        b.wait_for(f"map.frame === {n - 1}", timeout=30)
        assert b.evaluate("document.querySelector('.tm-slider').value") == str(n - 1)


def test_checkpoints_asked_of_a_coupling_without_save_restore_are_refused_before_running(twin_data,
                                                                                         tmp_path):
    from dataclasses import replace

    from scenarios.coupling import get_coupling, register_coupling

    # every built-in's couplings can be checkpointed: dispatch stands here for one that cannot
    resumable = get_coupling("dispatch")
    register_coupling(replace(resumable, save=None, restore=None), replace=True)
    out = tmp_path / "out"
    try:
        res = cli("futian_typhoon_night", "--checkpoint-every", "10min", "--duration", "30min", "--out", out)
    finally:
        register_coupling(resumable, replace=True)
    assert get_coupling("dispatch").resumable
    assert res.exit_code == 2 and "['dispatch']" in res.output and "save/restore" in res.output
    assert not out.exists()


@pytest.mark.parametrize("builtin_run", ["guangming_slope"], indirect=True)
def test_the_guangming_builtin_runs_on_the_assumed_lattice_and_says_so(builtin_run):
    from gis.lattice_roads import lattice_step

    _, out, res = builtin_run  # the run of the test above (module scope: run once)
    assert res.exit_code == 0, res.output
    man = json.loads((out / "manifest.json").read_text())
    roads = json.loads((out / "summary.json").read_text())["couplings"]["roads"]
    assert man["config"]["couplings"]["roads"]["lattice"] is True
    assert "ASSUMED lattice" in man["scenario"]["enabled"]["roads"]
    assert roads["assumed"] is True and roads["network"].startswith("ASSUMED lattice walk network")
    assert f"every {lattice_step(200.0, 250.0) * 250:g} m" in roads["network"]  # 200 m: one 250 m cell
    assert "ASSUMED lattice walk network" in (out / "report.html").read_text()
    page = (out / "map.html").read_text()
    assert "ASSUMED lattice streets slowed or closed by the flood" in page
    assert "Streets slowed / closed to evacuees" not in page  # the evacuation's street layer says ASSUMED too
    shelters = pd.read_parquet(out / "shelters.parquet")
    assert len(shelters) == 6 and "Hongqiao Park" in set(shelters["name"])  # the Guangming list, not Futian's


def test_an_area_without_roads_and_no_roads_table_is_refused_naming_the_keys(twin_data, tmp_path):
    path = tmp_path / "no_roads.toml"
    path.write_text(NO_ROADS, encoding="utf-8")
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["scenario", "run", str(path), "--duration", "30min", "--out", str(out)])
    assert res.exit_code != 0
    text = " ".join(res.output.split())
    assert "no road" in text and "Guangming" in text
    assert '[roads] file = "<road file>"' in text and "[roads] lattice = true" in text
    assert "clip=False" not in text and "path=" not in text  # the scenario's keys, not the API's arguments
    assert not out.exists()


def test_a_roads_file_goes_to_the_roads_coupling_resolved_and_hashed_and_a_missing_one_is_refused(
        twin_data, tmp_path):
    (tmp_path / "net").mkdir()
    road = tmp_path / "net" / "my_roads.geojson"
    road.write_text('{"type": "FeatureCollection", "features": []}', encoding="utf-8")
    path = tmp_path / "with_file.toml"
    path.write_text(NO_ROADS + '[roads]\nfile = "net/my_roads.geojson"\n', encoding="utf-8")
    tr = translate(load_scenario(path))
    assert tr.config.couplings["roads"]["roads"] == str(road)
    assert tr.inputs["scenario:roads.file"] == road
    assert "roads.file" in tr.reasons["roads"]
    road.unlink()
    with pytest.raises(ValidationError, match=r"roads\.file = 'net/my_roads\.geojson': no such file"):
        translate(load_scenario(path))
