"""``twin scenario schema|list|show|check``."""

from __future__ import annotations

import json
import tomllib

from click.testing import CliRunner

from twin.cli import main

BAD = """
title = "bad"
seed = -1
[time]
start = 2023-09-07T17:00:00+08:00
duration = "6 h"
[area]
districts = ["Atlantis"]
[models.flood_forecast]
peak_fraction = 1.5
[models.tunnel_fire]
x = 1
"""


def _run(*args):
    return CliRunner().invoke(main, ["scenario", *args], catch_exceptions=False)


def test_every_command_has_help():
    for cmd in ((), ("schema",), ("list",), ("show",), ("check",)):
        res = _run(*cmd, "--help")
        assert res.exit_code == 0 and "Usage: " in res.output


def test_list_names_the_builtins_with_models_and_area():
    rows = json.loads(_run("list", "--json").output)
    by_name = {r["name"]: r for r in rows}
    assert by_name["futian_typhoon_night"]["area"] == "Futian"
    assert by_name["shenzhen_2023_09_07_city"]["area"] == "whole city"
    assert by_name["guangming_slope"]["models"] == ["slope_forecast", "flood_forecast", "evacuate_district"]
    text = _run("list").output
    assert "futian_typhoon_night" in text and "evacuate_district" in text


def test_show_prints_toml_that_reads_back_and_json_with_the_hash():
    res = _run("show", "futian_typhoon_night")
    assert res.exit_code == 0
    data = tomllib.loads(res.output)
    assert data["name"] == "futian_typhoon_night" and data["time"]["duration"] == "3 h"
    assert data["hazards"]["sea"] == {"tide_m": 1.2, "surge_m": 1.5}
    js = json.loads(_run("show", "futian_typhoon_night", "--json").output)
    assert len(js["hash"]) == 64 and js["hash"] in res.output
    assert js["scenario"]["models"]["dispatch"]["flood"] == "run:flood_forecast"


def test_show_of_an_unknown_name_lists_the_builtins():
    res = _run("show", "atlantis_flood")
    assert res.exit_code == 1 and "guangming_slope" in res.output


def test_check_exits_0_on_a_good_file_and_1_listing_every_problem(tmp_path):
    res = _run("check", "guangming_slope", "--no-precheck")
    assert res.exit_code == 0 and "OK" in res.output
    bad = tmp_path / "bad.toml"
    bad.write_text(BAD, encoding="utf-8")
    res = CliRunner().invoke(main, ["scenario", "check", str(bad), "--no-precheck"])
    assert res.exit_code == 1
    out = res.output
    assert "4 problem(s)" in out
    for line in ("seed = -1", "area.districts.0 = 'Atlantis'", "models.flood_forecast.peak_fraction = 1.5",
                 "models.tunnel_fire = {...}: unknown model"):
        assert line in out


def test_schema_writes_a_json_schema(tmp_path):
    out = tmp_path / "scenario.schema.json"
    assert _run("schema", "--out", str(out)).exit_code == 0
    schema = json.loads(out.read_text(encoding="utf-8"))
    assert schema["title"] == "Shenzhen Twin scenario" and "flood_forecast" in schema["properties"]["models"][
        "properties"]
    assert json.loads(_run("schema").output) == schema
