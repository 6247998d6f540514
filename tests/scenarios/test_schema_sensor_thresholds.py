"""Scenario ``[[sensors]]`` thresholds: severity levels in the kind's SI unit, checked before anything runs."""

from __future__ import annotations

import tomllib

import pytest

from scenarios.files import ScenarioError, check_scenario
from scenarios.schema import Sensor, SensorThresholds, scenario_json_schema
from twin.events import Severity

HEAD = """
name = "gauges"
title = "gauges"
[time]
start = 2024-06-01T20:00:00+08:00
duration = "1 h"
[area]
districts = ["Futian"]
[hazards.rain]
rate_mm_h = 30.0
[models.flood_forecast]
resolution = 250.0
"""


def sensor(kind: str, thresholds: str, station: str = "S1") -> str:
    return (f'[[sensors]]\nstation = "{station}"\nkind = "{kind}"\nlon = 114.05\nlat = 22.53\n'
            f"thresholds = {thresholds}\n")


def problems(text: str) -> dict[str, str]:
    with pytest.raises(ScenarioError) as exc:
        check_scenario(tomllib.loads(HEAD + text))
    return {p.path: str(p) for p in exc.value.problems}


def test_the_levels_are_the_alert_engines_severities():
    assert list(SensorThresholds.model_fields) == [s.value for s in Severity]


def test_good_thresholds_are_kept_least_severe_first_whole_numbers_too():
    sc = check_scenario(tomllib.loads(HEAD + sensor("water_level", "{ alarm = 5, advisory = 3.5, warning = 4 }")
                                      + sensor("heat", "{ alarm = 330.15 }", "HT1")
                                      + '[[sensors]]\nstation = "S2"\nkind = "water_level"\nlon = 114.0\nlat = 22.5\n'
                                      )).scenario
    wl, heat, bare = sc.sensors
    assert wl.thresholds.levels() == {"advisory": 3.5, "warning": 4.0, "alarm": 5.0}
    assert list(wl.thresholds.levels()) == ["advisory", "warning", "alarm"]
    assert heat.thresholds.levels() == {"alarm": 330.15} and bare.thresholds is None


def test_every_bad_level_is_named_with_its_path_and_value():
    got = problems(sensor("rain_gauge", "{ warning = 0.05 }", "RG1")
                   + sensor("water_level", "{ advisory = 0.5, warning = 0.3, emergency = 0.9, alarm = inf }")
                   + sensor("inclinometer", "{ warning = 0.0 }", "IN1")
                   + sensor("water_level", "{ warning = 2000.0 }", "S3"))
    assert "takes no sensor thresholds" in got["sensors.0.thresholds"]
    assert got["sensors.1.thresholds.warning"].startswith("sensors.1.thresholds.warning = 0.3: must be above "
                                                          "advisory = 0.5")
    assert got["sensors.1.thresholds.alarm"].startswith("sensors.1.thresholds.alarm = inf:")
    assert "unknown key; allowed keys here: info, advisory, warning, alarm" in got["sensors.1.thresholds.emergency"]
    assert "warning = 0.0: must be more than 0" in got["sensors.2.thresholds"]
    assert "warning = 2000.0" in got["sensors.3.thresholds"] and "plausible range" in got["sensors.3.thresholds"]
    assert len(got) == 6


def test_a_level_equal_to_a_less_severe_one_is_refused():
    with pytest.raises(ValueError, match=r"thresholds.alarm\n.*must be above warning = 1.0"):
        Sensor.model_validate({"station": "S1", "kind": "water_level", "lon": 114.0, "lat": 22.5,
                               "thresholds": {"warning": 1.0, "alarm": 1.0}})


def test_the_json_schema_offers_the_levels():
    schema = scenario_json_schema()
    defs = schema.get("$defs", {})
    (thr,) = [d for d in defs.values() if set(d.get("properties", {})) == {s.value for s in Severity}]
    assert thr.get("additionalProperties") is False
