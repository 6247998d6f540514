"""Scenario schema and loader: durations, every problem listed with its path, TOML = YAML, hash, JSON Schema."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml

from scenarios.files import (
    ScenarioError,
    check_scenario,
    json_ready,
    load_scenario,
    scenario_hash,
    to_toml,
)
from scenarios.schema import (
    INCIDENT_KINDS,
    UNIT_TYPES,
    Scenario,
    format_duration,
    parse_duration,
    scenario_json_schema,
)
from twin.errors import ValidationError

GOOD = """
title = "a small test"
seed = 3
[time]
start = 2023-09-07T17:00:00+08:00
duration = "3 h"
[area]
districts = ["Futian"]
[hazards.rain]
storm = "2023-09-07"
[hazards.sea]
tide_m = 1.0
surge_m = 0.5
[models.flood_forecast]
resolution = 90.0
[models.evacuate_district]
hazard_class = 3
[[injects]]
after = "30 min"
kind = "sensor_value"
payload = { station = "RG-1", sensor = "rain_gauge", value = 20.0, unit = "mm" }
[[injects]]
at = 2023-09-07T18:00:00+08:00
kind = "incident"
payload = { lon = 114.06, lat = 22.53, incident = "flood_rescue" }
[[assumptions]]
about = "hazards.sea.surge_m"
text = "assumed"
"""

BAD = """
title = "bad"
seed = "seven"
[time]
start = 2023-09-07T17:00:00+08:00
duration = "6 h"
[area]
districts = ["Futian", "Atlantis"]
[hazards.slope]
fills = "nope.geojson"
[models.flood_forecast]
peak_fraction = 1.5
[models.fire_sim]
x = 1
[[injects]]
after = "30 min"
kind = "road_lost"
payload = { lon = 114.0, lat = 22.5, colour = 1 }
[[injects]]
at = 2023-09-09T17:00:00+08:00
kind = "station_lost"
payload = { station = "F1" }
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


@pytest.mark.parametrize(("text", "seconds"), [("6 h", 21600.0), ("30 min", 1800.0), ("+45 min", 2700.0),
                                               ("90 s", 90.0), ("2 d", 172800.0), ("PT1H30M", 5400.0),
                                               ("1.5 hours", 5400.0)])
def test_durations_parse_with_their_unit(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", [6, 6.0, "6", "6 parsecs", "PT", "", None])
def test_durations_without_a_unit_are_refused(bad):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


def test_durations_print_in_their_largest_whole_unit():
    assert [format_duration(s) for s in (21600.0, 5400.0, 60.0, 90.0, 0.5)] == ["6 h", "90 min", "1 min",
                                                                               "90 s", "0.5 s"]


def test_a_good_file_loads_with_each_model_request_and_its_shared_values(tmp_path):
    loaded = load_scenario(_write(tmp_path, "good.toml", GOOD))
    sc = loaded.scenario
    assert sc.name == "good" and sc.time.duration == 3 * 3600.0
    flood = loaded.requests["flood_forecast"]
    assert flood.hours == 3.0 and flood.districts == ["Futian"] and flood.storm == "2023-09-07"
    assert flood.tide_m == 1.0 and flood.surge_m == 0.5 and flood.resolution == 90.0
    evac = loaded.requests["evacuate_district"]
    assert evac.flood == "run:flood_forecast" and evac.seed == 3 and evac.hazard_class == 3
    assert loaded.links["evacuate_district"] == {"flood": "flood_forecast"}
    assert [i.kind for i in sc.injects] == ["sensor_value", "incident"]


def test_a_bad_file_lists_every_problem_with_path_and_value(tmp_path):
    with pytest.raises(ScenarioError) as info:
        load_scenario(_write(tmp_path, "bad.toml", BAD))
    err = info.value
    assert isinstance(err, ValidationError)
    by_path = {p.path: p for p in err.problems}
    assert by_path["seed"].value == "seven" and "integer" in by_path["seed"].message
    assert "flood_forecast" in by_path["models.fire_sim"].message  # lists the registered kinds
    assert by_path["models.flood_forecast.peak_fraction"].value == 1.5
    assert "less than or equal to 1" in by_path["models.flood_forecast.peak_fraction"].message
    assert by_path["hazards.slope.fills"].value == "nope.geojson"
    assert "no such file" in by_path["hazards.slope.fills"].message
    assert by_path["area.districts.1"].value == "Atlantis" and "Futian" in by_path["area.districts.1"].message
    assert by_path["injects.0.payload.colour"].value == 1
    assert "osm_way" in by_path["injects.0.payload.colour"].message  # the keys allowed there
    assert "outside the scenario's window" in by_path["injects.1.at"].message
    assert len(err.problems) == 7  # each listed once (the district is not repeated for the flood model)
    text = str(err)
    assert "7 problem(s)" in text and "models.flood_forecast.peak_fraction = 1.5" in text


def test_an_unknown_key_and_a_missing_key_are_named(tmp_path):
    text = GOOD.replace('title = "a small test"', 'colour = "red"')
    with pytest.raises(ScenarioError) as info:
        load_scenario(_write(tmp_path, "s.toml", text))
    paths = {p.path: p for p in info.value.problems}
    assert "colour" in paths and "unknown key" in paths["colour"].message
    assert "title" in paths and repr(paths["title"].value) == "(missing)"


def test_a_wrong_type_inside_a_union_is_named_once_at_its_key(tmp_path):
    text = GOOD.replace('districts = ["Futian"]', "districts = [5]")
    with pytest.raises(ScenarioError) as info:
        load_scenario(_write(tmp_path, "s.toml", text))
    assert [(p.path, p.value) for p in info.value.problems] == [("area.districts.0", 5)]


def test_times_need_a_zone_and_durations_a_unit(tmp_path):
    text = GOOD.replace("start = 2023-09-07T17:00:00+08:00", "start = 2023-09-07T17:00:00").replace(
        'duration = "3 h"', "duration = 3")
    with pytest.raises(ScenarioError) as info:
        load_scenario(_write(tmp_path, "s.toml", text))
    paths = {p.path: p.message for p in info.value.problems}
    assert "timezone" in paths["time.start"] and "unit" in paths["time.duration"]


def test_injects_are_checked_per_kind_and_in_the_window(tmp_path):
    text = GOOD.replace('value = 20.0, unit = "mm"', 'value = 20.0, unit = "degC"').replace(
        "at = 2023-09-07T18:00:00+08:00", "at = 2023-09-09T18:00:00+08:00")
    with pytest.raises(ScenarioError) as info:
        load_scenario(_write(tmp_path, "s.toml", text))
    paths = {p.path: p for p in info.value.problems}
    assert "mm/h" in paths["injects.0.payload"].message  # the units a rain gauge accepts
    ok = GOOD.replace("at = 2023-09-07T18:00:00+08:00", "at = 2023-09-09T18:00:00+08:00")
    with pytest.raises(ScenarioError) as info:
        load_scenario(_write(tmp_path, "t.toml", ok))
    assert [p.path for p in info.value.problems] == ["injects.1.at"]
    assert "outside the scenario's window" in info.value.problems[0].message


def test_a_shared_value_a_model_refuses_is_blamed_on_the_scenario_key(tmp_path, twin_data):
    text = GOOD.replace('duration = "3 h"', 'duration = "2 d"')  # the design storm's records end at 24 h
    load_scenario(_write(tmp_path, "s.toml", text))  # the schema alone accepts it
    with pytest.raises(ScenarioError) as info:
        load_scenario(_write(tmp_path, "s.toml", text), precheck=True)
    assert any(p.path.startswith("time.duration (passed to models.flood_forecast.hours)")
               for p in info.value.problems)


def test_a_rain_file_the_flood_model_cannot_take_is_a_problem(tmp_path):
    (tmp_path / "rain.csv").write_text("time_h,mm_h\n0,10\n", encoding="utf-8")
    text = GOOD.replace('storm = "2023-09-07"', 'file = "rain.csv"')
    with pytest.raises(ScenarioError) as info:
        load_scenario(_write(tmp_path, "s.toml", text))
    assert [p.path for p in info.value.problems] == ["hazards.rain.file"]


def test_a_bbox_or_polygon_area_passes_the_districts_it_overlaps(tmp_path, twin_data):
    text = GOOD.replace('districts = ["Futian"]', "bbox = [114.03, 22.52, 114.07, 22.56]")  # inside Futian
    loaded = load_scenario(_write(tmp_path, "b.toml", text))
    assert loaded.requests["flood_forecast"].districts == ["Futian"]
    poly = {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, "geometry": {
        "type": "Polygon", "coordinates": [[[113.90, 22.50], [114.10, 22.50], [114.10, 22.56], [113.90, 22.56],
                                            [113.90, 22.50]]]}}]}
    (tmp_path / "aoi.geojson").write_text(json.dumps(poly), encoding="utf-8")
    text = GOOD.replace('districts = ["Futian"]', 'polygon = "aoi.geojson"')
    names = load_scenario(_write(tmp_path, "p.toml", text)).requests["flood_forecast"].districts
    assert {"Futian", "Nanshan"} <= set(names)
    text = GOOD.replace('districts = ["Futian"]', "bbox = [120.0, 30.0, 120.1, 30.1]")  # far from Shenzhen
    with pytest.raises(ScenarioError) as info:
        load_scenario(_write(tmp_path, "far.toml", text))
    assert [p.path for p in info.value.problems] == ["area.bbox"]
    assert "overlaps no district" in info.value.problems[0].message


def test_yaml_and_toml_give_the_same_scenario(tmp_path):
    data = tomllib.loads(GOOD)
    a = load_scenario(_write(tmp_path, "same.toml", GOOD))
    b = load_scenario(_write(tmp_path / "", "same.yaml", yaml.safe_dump(json_ready(data), allow_unicode=True)))
    assert a.scenario == b.scenario
    assert a.hash == b.hash
    assert {k: r.model_dump() for k, r in a.requests.items()} == {k: r.model_dump() for k, r in b.requests.items()}


def test_unquoted_yaml_times_and_storm_names_read_as_meant(tmp_path):
    text = ("title: t\ntime: {start: 2023-09-07T17:00:00+08:00, duration: 3 h}\narea: {districts: [Futian]}\n"
            "hazards: {rain: {storm: 2023-09-07}}\nmodels: {flood_forecast: {resolution: 90.0}}\n")
    loaded = load_scenario(_write(tmp_path, "u.yaml", text))
    assert loaded.requests["flood_forecast"].storm == "2023-09-07"
    assert loaded.scenario.time.start.utcoffset().total_seconds() == 8 * 3600


def test_hash_is_stable_across_key_order_and_units(tmp_path):
    data = tomllib.loads(GOOD)
    a = check_scenario({"name": "x", **data}).scenario
    reordered = {"name": "x", **dict(reversed(list(data.items())))}
    reordered["time"] = {"duration": "180 min", "start": data["time"]["start"]}
    b = check_scenario(reordered).scenario
    assert scenario_hash(a) == scenario_hash(b)
    assert re.fullmatch(r"[0-9a-f]{64}", scenario_hash(a))
    c = check_scenario({"name": "x", **data, "seed": 4}).scenario
    assert scenario_hash(c) != scenario_hash(a)


def test_shown_toml_reads_back_to_the_same_scenario(tmp_path):
    a = load_scenario(_write(tmp_path, "r.toml", GOOD))
    text = to_toml(a.scenario.model_dump(mode="json", exclude_none=True))
    b = check_scenario(tomllib.loads(text), base_dir=tmp_path)
    assert b.hash == a.hash


def test_kinds_restated_here_match_the_dispatch_model():
    from agents.dispatch import INCIDENT_TYPES
    from agents.dispatch import UNIT_TYPES as MODEL_UNITS

    assert set(INCIDENT_KINDS) == set(INCIDENT_TYPES) and set(UNIT_TYPES) == set(MODEL_UNITS)


# ----------------------------------------------------------------------------- JSON Schema
def _validate(instance, schema, root=None, path="$"):
    """A small JSON Schema validator for what pydantic emits (returns the list of errors)."""
    root = schema if root is None else root
    errs = []
    if "$ref" in schema:
        node = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        errs += _validate(instance, node, root, path)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            ok = [not _validate(instance, s, root, path) for s in schema[key]]
            if (key == "anyOf" and not any(ok)) or (key == "oneOf" and sum(ok) != 1):
                errs.append(f"{path}: {key} not satisfied")
    for s in schema.get("allOf", []):
        errs += _validate(instance, s, root, path)
    types = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}
    t = schema.get("type")
    if t == "integer":
        if not isinstance(instance, int) or isinstance(instance, bool):
            return [*errs, f"{path}: not an integer"]
    elif t == "number":
        if not isinstance(instance, int | float) or isinstance(instance, bool):
            return [*errs, f"{path}: not a number"]
    elif t is not None and not isinstance(instance, types[t]):
        return [*errs, f"{path}: not {t}"]
    if "const" in schema and instance != schema["const"]:
        errs.append(f"{path}: not {schema['const']!r}")
    if "enum" in schema and instance not in schema["enum"]:
        errs.append(f"{path}: not in enum")
    if isinstance(instance, int | float) and not isinstance(instance, bool):
        for k, bad in (("minimum", lambda v, b: v < b), ("maximum", lambda v, b: v > b),
                       ("exclusiveMinimum", lambda v, b: v <= b), ("exclusiveMaximum", lambda v, b: v >= b)):
            if k in schema and bad(instance, schema[k]):
                errs.append(f"{path}: {k} {schema[k]}")
    if isinstance(instance, str):
        if "pattern" in schema and not re.search(schema["pattern"], instance):
            errs.append(f"{path}: does not match {schema['pattern']}")
        if len(instance) < schema.get("minLength", 0) or len(instance) > schema.get("maxLength", 10**9):
            errs.append(f"{path}: length")
    if isinstance(instance, list):
        if len(instance) < schema.get("minItems", 0) or len(instance) > schema.get("maxItems", 10**9):
            errs.append(f"{path}: items count")
        prefix = schema.get("prefixItems", [])
        for i, v in enumerate(instance):
            sub = prefix[i] if i < len(prefix) else schema.get("items")
            if isinstance(sub, dict):
                errs += _validate(v, sub, root, f"{path}[{i}]")
    if isinstance(instance, dict):
        props = schema.get("properties", {})
        for r in schema.get("required", []):
            if r not in instance:
                errs.append(f"{path}: {r} required")
        if len(instance) < schema.get("minProperties", 0):
            errs.append(f"{path}: too few properties")
        for k, v in instance.items():
            if k in props:
                errs += _validate(v, props[k], root, f"{path}.{k}")
            elif schema.get("additionalProperties") is False:
                errs.append(f"{path}.{k}: not allowed")
            elif isinstance(schema.get("additionalProperties"), dict):
                errs += _validate(v, schema["additionalProperties"], root, f"{path}.{k}")
    return errs


def test_json_schema_is_json_and_lists_the_registered_models():
    from twin.runkinds import kinds

    schema = json.loads(json.dumps(scenario_json_schema()))
    assert schema["$schema"].endswith("2020-12/schema")
    models = schema["properties"]["models"]
    assert set(models["properties"]) == {k.name for k in kinds()} and models["additionalProperties"] is False
    # what the scenario passes down or another model supplies is not required in a model table
    assert "flood" not in models["properties"]["evacuate_district"].get("required", [])


def test_json_schema_accepts_the_good_file_and_refuses_the_bad_one():
    schema = scenario_json_schema()
    good = json_ready(tomllib.loads(GOOD))
    assert _validate(good, schema) == []
    bad = json_ready(tomllib.loads(BAD))
    errors = _validate(bad, schema)
    assert any(e.startswith("$.seed") for e in errors) and any("fire_sim" in e for e in errors)
    import jsonschema  # a dev dependency (pyproject [dev])
    jsonschema.Draft202012Validator.check_schema(schema)
    assert jsonschema.Draft202012Validator(schema).is_valid(good)
    assert not jsonschema.Draft202012Validator(schema).is_valid(bad)


def test_scenario_model_refuses_two_areas():
    with pytest.raises(Exception, match="exactly one of districts, bbox, polygon"):
        Scenario.model_validate({"name": "x", "title": "t", "models": {"flood_forecast": {}},
                                 "time": {"start": "2023-09-07T17:00+08:00", "duration": "1 h"},
                                 "area": {"districts": "all", "bbox": [113.9, 22.5, 114.0, 22.6]}})


# ----------------------------------------------------------------------------- [roads]
@pytest.mark.parametrize(("table", "path", "words"), [
    ('file = "r.geojson"\nlattice = true', "roads", "not both"),
    ("spacing_m = 150.0", "roads", "set lattice = true"),
    ("lattice = true\ncircuity = 0.8", "roads.circuity", "greater than or equal to 1"),
    ("lattice = true\nspacing_m = -5.0", "roads.spacing_m", "greater than 0"),
    ("lattic = true", "roads.lattic", ""),
])
def test_a_roads_table_takes_a_file_or_the_lattice_and_names_what_is_wrong(tmp_path, table, path, words):
    (tmp_path / "r.geojson").write_text('{"type": "FeatureCollection", "features": []}', encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load_scenario(_write(tmp_path, "s.toml", GOOD + f"[roads]\n{table}\n"))
    by_path = {p.path: p for p in info.value.problems}
    assert path in by_path, by_path
    assert words in by_path[path].message


def test_a_lattice_roads_table_loads_and_the_json_schema_has_it():
    import jsonschema

    text = GOOD + "[roads]\nlattice = true\nspacing_m = 300.0\ncircuity = 1.2\n"
    sc = Scenario.model_validate({"name": "x", **tomllib.loads(text)})
    assert sc.roads.lattice and sc.roads.spacing_m == 300.0 and sc.roads.circuity == 1.2 and sc.roads.file is None
    schema = scenario_json_schema()
    assert set(schema["$defs"]["Roads"]["properties"]) == {"file", "lattice", "spacing_m", "circuity"}
    validator = jsonschema.Draft202012Validator(schema)
    assert validator.is_valid(json_ready(tomllib.loads(text)))
    assert not validator.is_valid(json_ready(tomllib.loads(GOOD + "[roads]\nlattice = \"yes\"\n")))
    assert Scenario.model_validate({"name": "x", **tomllib.loads(GOOD)}).roads is None  # default: the city's layer


def test_a_missing_road_file_is_listed_by_the_check_with_where_it_was_looked_for(tmp_path):
    with pytest.raises(ScenarioError) as info:
        load_scenario(_write(tmp_path, "s.toml", GOOD + '[roads]\nfile = "no_such_roads.geojson"\n'))
    by_path = {p.path: p for p in info.value.problems}
    assert "no such file" in by_path["roads.file"].message
    assert str(tmp_path / "no_such_roads.geojson") in by_path["roads.file"].message
