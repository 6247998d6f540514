"""``twin fire``: --help of every command, a run on the 30-storey example writing every file, refusals, check, examples."""

from __future__ import annotations

import json

import pytest
import xarray as xr
from click.testing import CliRunner

from twin.cli import main


def _invoke(*args):
    return CliRunner().invoke(main, ["fire", *args], catch_exceptions=False, terminal_width=200, prog_name="twin")


def test_twin_help_lists_fire():
    res = CliRunner().invoke(main, ["--help"])
    assert res.exit_code == 0
    assert any(line.split()[:1] == ["fire"] for line in res.output.splitlines())


@pytest.mark.parametrize("command", [[], ["run"], ["check"], ["examples"]])
def test_help_of_every_command(command):
    res = _invoke(*command, "--help")
    assert res.exit_code == 0 and "Usage: twin fire" in res.output


def test_the_live_commands_join_the_group_when_their_module_imports():
    res = _invoke("--help")
    for name in ("watch", "drill"):
        assert name in res.output
        assert _invoke(name, "--help").exit_code == 0


def test_run_help_names_every_request_field():
    from physics.fire_run import FireRequest

    text = _invoke("run", "--help").output
    flags = {"building": "BUILDING", "duration_s": "--duration", "dt_s": "--dt", "record_every_s": "--record-every",
             "t_outside_c": "--t-outside"}
    for name in FireRequest.model_fields:
        flag = flags.get(name, "--" + name.replace("_", "-"))
        assert flag in text, f"{name}: no {flag} in twin fire run --help"
    for opt in ("--out", "--store", "--report", "--map", "--json", "--seed", "--door-hold"):
        assert opt in text


def test_run_writes_every_file(tmp_path):
    from physics.fire_run import map_available

    out = tmp_path / "t30"
    res = _invoke("run", "tower_30_residential", "--floor", "12", "--growth", "fast", "--sprinklers", "off",
                  "--duration", "120", "--dt", "1", "--json", "--out", str(out))
    assert res.exit_code == 0, res.output
    s = json.loads(res.output[res.output.index("{"):])
    assert s["origin"]["storey"] == 12 and s["sprinklers"] == "off" and s["duration_s"] == 120.0
    names = {p.name for p in out.iterdir()}
    assert {"fire.nc", "events.jsonl", "aset.csv", "summary.json", "report.html", "layers.png", "tenability.png",
            "hrr.png"} <= names
    assert ("map.html" in names) == map_available()
    with xr.open_dataset(out / "fire.nc") as ds:
        assert ds["floor_status"].attrs["units"] and ds.sizes["time"] == 13


@pytest.mark.parametrize(("args", "option", "words"), [
    (["--floor", "30"], "--floor", "storeys 0-29"),
    (["--floor", "3", "--compartment", "flat Z"], "--compartment", "flat D"),
    (["--floor", "3", "--growth", "blazing"], "growth", "slow"),
    (["--floor", "3", "--sprinklers", "maybe"], "--sprinklers", "maybe"),
])
def test_bad_requests_are_refused_naming_the_field_and_nothing_is_written(tmp_path, args, option, words):
    out = tmp_path / "never"
    res = _invoke("run", "tower_30_residential", *args, "--out", str(out))
    assert res.exit_code in (1, 2) and option in res.output and words in res.output, res.output
    assert not out.exists()


def test_unknown_building_names_the_examples(tmp_path):
    res = _invoke("run", "no_such_tower", "--floor", "1", "--out", str(tmp_path / "x"))
    assert res.exit_code == 2 and "BUILDING" in res.output and "ping_an_finance_centre" in res.output


def test_check_prints_the_building(tmp_path):
    res = _invoke("check", "ping_an_finance_centre")
    assert res.exit_code == 0
    assert "115 storeys" in res.output and "L10, L17, L33, L49, L65, L81, L97, L113" in res.output
    assert "1956" in res.output and "stair A (stair, L1-L115)" in res.output
    s = json.loads(_invoke("check", "tower_30_residential", "--json").output)
    assert s["storeys"] == 30 and s["compartments"] == 270 and s["refuge_floors"] == []
    assert s["rooms_on_a_typical_floor"] == ["flat A", "flat B", "flat C", "flat D"]


def test_check_lists_every_problem_of_a_bad_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[storeys]\ncount = 0\nheight_m = 3.0\n[occupancy]\nfloor_area_m2 = -5\n'
                   '[[stairs]]\nwidth_m = 1.2\n[fire]\noccupancy = "castle"\n[[fire.rooms]]\nname = "a"\nshare = 1.0\n')
    res = _invoke("check", str(bad))
    assert res.exit_code == 1
    for where in ("storeys.count", "occupancy.floor_area_m2", "fire.occupancy"):
        assert where in res.output, res.output


def test_examples_lists_both():
    res = _invoke("examples")
    assert res.exit_code == 0
    assert "tower_30_residential" in res.output and "ping_an_finance_centre" in res.output


def test_evacuate_runs_the_fire_evacuation_kind(tmp_path):
    from twin.runkinds import get_kind

    assert get_kind("fire_evacuation").name == "fire_evacuation"
    out = tmp_path / "ev"
    res = _invoke("run", "tower_30_residential", "--floor", "10", "--growth", "ultrafast", "--duration", "30",
                  "--evacuate", "--seed", "3", "--door-hold", "closed", "--no-map", "--no-report", "--json",
                  "--out", str(out))
    assert res.exit_code == 0, res.output
    s = json.loads(res.output[res.output.index("{"):])
    assert s["kind"] == "fire_evacuation" and s["request"]["seed"] == 3 and s["request"]["door_hold"] == "closed"
    assert s["fire"]["origin"]["storey"] == 10
    assert {"fire.nc", "aset.csv", "events.jsonl", "margin.csv"} <= {p.name for p in out.iterdir()}
