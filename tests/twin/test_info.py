"""``twin info``: which layers are found, which commands need them, and never "optional" for those."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from twin.cli import main
from twin.cli.info import layer_state
from twin.manifest import load_manifest


@pytest.fixture
def empty_data(tmp_path, monkeypatch):
    monkeypatch.setenv("TWIN_DATA", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "250")
    return tmp_path


def info_json() -> dict:
    res = CliRunner().invoke(main, ["info", "--json"])
    assert res.exit_code == 0, res.output
    return {r["layer"]: r for r in json.loads(res.output)["layers"]}


def test_the_flood_run_needs_the_events_layer_and_it_is_not_optional(empty_data):
    rows = info_json()
    assert "flood run" in rows["events"]["needed_by"]
    assert rows["events"]["optional"] is False
    for name in ("elevation", "land", "city", "districts", "coast"):
        assert "flood run" in rows[name]["needed_by"], name
    assert rows["waterlogging"]["needed_by"] == []  # reporting only: the run goes on without it


def test_table_has_needed_by_and_a_needed_layer_is_missing_not_optional(empty_data):
    res = CliRunner().invoke(main, ["info"])
    assert res.exit_code == 0, res.output
    lines = {ln.split("│")[1].strip(): ln for ln in res.output.splitlines() if ln.count("│") > 5}
    assert "needed by" in res.output
    assert "flood run" in lines["events"] and "MISSING" in lines["events"]
    assert "optional" not in lines["events"]
    assert "missing (optional)" in lines["waterlogging"]
    for name, layer in load_manifest("shenzhen").layers.items():
        assert ("optional" in lines[name]) == (not layer.needed_by), name
    assert "twin data fetch shenzhen" in res.output and "`twin flood run`" in res.output


def test_found_layers_and_the_alternative_in_use(empty_data, twin_data):
    dem = empty_data / "shenzhen/terrain/copernicus_glo30_shenzhen.tif"
    dem.parent.mkdir(parents=True)
    shutil.copy(twin_data / "shenzhen/terrain/srtm1_shenzhen.tif", dem)
    (empty_data / "shenzhen/events").mkdir()
    shutil.copy(twin_data / "shenzhen/events/hazard_events.json", empty_data / "shenzhen/events")
    rows = info_json()
    assert rows["events"]["present"] and layer_state(rows["events"]) == "found"
    assert rows["elevation"]["present"] and rows["elevation"]["found"] == 0
    assert layer_state(rows["elevation"]) == f"found ({dem.relative_to(empty_data).as_posix()})"


def test_missing_layer_error_names_the_commands_and_what_to_run(empty_data):
    from twin.city import City
    from twin.errors import DataMissingError

    with pytest.raises(DataMissingError) as err:
        City("shenzhen").events()
    msg = " ".join(str(err.value).split())
    assert "layer 'events' not found" in msg and "needed by: twin flood run" in msg
    assert "Run `twin data fetch shenzhen` (it builds this layer from its public upstream" in msg
    assert "TWIN_DATA" in msg

    with pytest.raises(DataMissingError) as err:
        City("shenzhen").vector("metro_stations")
    msg = " ".join(str(err.value).split())
    assert "needed by" not in msg  # no command needs the metro
    assert "no public upstream" in msg and "public repository with no licence" in msg
    assert "twin data fetch shenzhen --mirror URL" in msg
