"""The built-in Shenzhen scenarios load, validate against the registered kinds and cite their numbers."""

from __future__ import annotations

import json
import tomllib

import pytest

from scenarios.files import BUILTIN_DIR, builtin_names, json_ready, load_scenario, read_file
from scenarios.schema import scenario_json_schema

BUILTINS = ("shenzhen_2023_09_07_city", "futian_typhoon_night", "guangming_slope")


def test_the_three_builtins_are_listed():
    assert set(BUILTINS) <= set(builtin_names())


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_loads_and_each_model_request_validates(name):
    from twin.runkinds import get_kind

    loaded = load_scenario(name)
    sc = loaded.scenario
    assert sc.name == name and sc.description.strip() and sc.title
    assert set(loaded.requests) == set(sc.models)
    for kind, req in loaded.requests.items():
        assert isinstance(req, get_kind(kind).request)
        for field, value in req.model_dump().items():  # files resolved and present, or another model's output
            if isinstance(value, str) and value.startswith("/"):
                assert (BUILTIN_DIR / value).exists(), (kind, field, value)


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_passes_the_models_own_prechecks(name, twin_data):
    loaded = load_scenario(name, precheck=True)
    assert loaded.requests


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_cites_sources_and_labels_assumptions(name):
    sc = load_scenario(name).scenario
    assert sc.sources and sc.assumptions
    assert any("hazard_events.json" in s.text for s in sc.sources)
    assert all("ASSUMED" in a.text or "default" in a.text or "Who leaves" in a.text for a in sc.assumptions)


def _schema_errors(instance):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("scenario_schema_tests", Path(__file__).with_name("test_schema.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod._validate(instance, json.loads(json.dumps(scenario_json_schema())))


def test_city_storm_facts():
    loaded = load_scenario("shenzhen_2023_09_07_city")
    sc = loaded.scenario
    assert sc.area.whole_city and sc.time.start.isoformat() == "2023-09-07T17:00:00+08:00"
    flood = loaded.requests["flood_forecast"]
    assert flood.storm == "2023-09-07" and flood.hours == 6.0 and flood.districts is None
    assert loaded.links["dispatch"] == {"flood": "flood_forecast"}
    assert loaded.requests["dispatch"].stations.endswith("futian_stations_demo.csv")


def test_futian_night_couples_sea_evacuation_and_dispatch():
    loaded = load_scenario("futian_typhoon_night")
    flood = loaded.requests["flood_forecast"]
    assert flood.districts == ["Futian"] and flood.tide_m == 1.2 and flood.surge_m == 1.5
    assert loaded.requests["evacuate_district"].flood == "run:flood_forecast"
    assert loaded.requests["evacuate_district"].shelters.endswith("futian_shelters_demo.csv")
    assert [i.kind for i in loaded.scenario.injects] == ["sensor_value", "sensor_value", "incident", "road_lost",
                                                        "station_lost"]


def test_guangming_takes_the_assumed_dump():
    loaded = load_scenario("guangming_slope")
    slope = loaded.requests["slope_forecast"]
    assert slope.fills.endswith("physics/data/guangming_2015_dump_assumed.geojson")
    assert slope.districts == ["Guangming"] and slope.mode == "probabilistic" and slope.seed == 2015
    assert loaded.links["evacuate_district"] == {"zone": "slope_forecast", "flood": "flood_forecast"}


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_raw_file_validates_against_the_json_schema(name):
    raw = json_ready(read_file(BUILTIN_DIR / f"{name}.toml"))
    assert _schema_errors(raw) == []
    assert tomllib.loads((BUILTIN_DIR / f"{name}.toml").read_text(encoding="utf-8"))
    try:
        import jsonschema
    except ImportError:  # the small validator above has checked it
        return
    jsonschema.Draft202012Validator(scenario_json_schema()).validate(raw)
