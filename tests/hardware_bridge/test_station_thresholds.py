"""A station's own alert levels (AlertEngine.set_thresholds / use_sensors, and the twin link following the
store's sensor registry): a water-level gauge with thresholds raises alerts though the kind has no default rules."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from hardware_bridge.display import display_unit
from hardware_bridge.fusion import Reading
from hardware_bridge.fusion.alerts import (
    METRIC_UNITS,
    METRICS,
    THRESHOLD_LEVELS,
    THRESHOLD_METRICS,
    AlertEngine,
    threshold_problems,
)
from hardware_bridge.ingest import Ingestor
from hardware_bridge.twin_link import TwinLink
from twin.errors import ValidationError
from twin.events import Severity
from twin.sensors import Sensor
from twin.store import Store

T0 = datetime(2024, 6, 1, tzinfo=UTC)
LEVELS = {"advisory": 0.15, "warning": 0.3, "alarm": 0.5}


def level(station, minutes, metres, unit="m"):
    return Reading(f"{station}/water_level", "water_level", T0 + timedelta(minutes=minutes), metres,
                   station=station, unit=unit)


def crossings(events):
    return [(e.kind, e.severity.value, e.data.get("threshold")) for e in events]


def test_the_levels_are_the_severities_and_each_kinds_metric_is_in_its_display_unit():
    assert THRESHOLD_LEVELS == tuple(s.value for s in Severity)
    for kind, metric in THRESHOLD_METRICS.items():
        assert metric in METRICS[kind]
        assert METRIC_UNITS[metric] == display_unit(kind).unit, kind  # so a threshold converts exactly


def test_a_water_level_station_with_thresholds_raises_each_level_once_and_clears_below_the_deadband():
    eng = AlertEngine()  # the packaged alerts.toml: water_level has no default rules
    assert eng.evaluate(level("WL1", 0, 0.9)) == []
    eng.set_thresholds("water_level", "WL1", LEVELS)
    got = [crossings(eng.evaluate(level("WL1", i, v))) for i, v in enumerate((0.1, 0.2, 0.35, 0.36, 0.6), 1)]
    assert got == [[], [("threshold_crossed", "advisory", 0.15)], [("threshold_crossed", "warning", 0.3)],
                   [], [("threshold_crossed", "alarm", 0.5)]]
    # down to 0.46 m: still within the 0.05 m deadband of the alarm level; 0.44 m is not
    assert eng.evaluate(level("WL1", 6, 0.46)) == []
    (cleared,) = eng.evaluate(level("WL1", 7, 0.44))
    assert cleared.kind == "alert_cleared" and cleared.data["from"] == "alarm" and cleared.data["to"] == "warning"
    # another station of the kind has none
    assert eng.evaluate(level("WL2", 1, 3.0)) == []


def test_the_alert_names_the_station_level_and_the_threshold_in_metres():
    eng = AlertEngine()
    eng.set_thresholds("water_level", "FT-WL01", {"warning": 4.0}, source="scenario x [[sensors]]")
    (ev,) = eng.evaluate(level("FT-WL01", 1, 4.2))
    assert ev.message == "water_level FT-WL01: 4.20 m ≥ 4 m (warning level of FT-WL01)"
    assert ev.data["rule_source"] == "scenario x [[sensors]]" and ev.data["verified"] is False
    assert ev.data["station"] == "FT-WL01" and ev.data["metric"] == "level_m"


def test_thresholds_in_another_unit_are_converted_to_the_metric_unit():
    eng = AlertEngine()
    (ru,) = eng.set_thresholds("water_level", "WL1", {"warning": 250.0}, "cm")
    assert ru.threshold == pytest.approx(2.5)
    heat = eng.set_thresholds("heat", "HT1", {"advisory": 318.15, "alarm": 330.15})  # K (SI)
    assert [r.threshold for r in heat if r.metric == "temperature_c"] == pytest.approx([45.0, 57.0])
    co = eng.set_thresholds("gas_co", "CO1", {"warning": 1.0e-5, "alarm": 2.0e-5})  # mol/mol
    assert [r.threshold for r in co] == pytest.approx([10.0, 20.0])  # ppm


def test_a_stations_thresholds_replace_only_the_rising_rules_of_their_metric():
    eng = AlertEngine()
    default = eng.rules_for("gnss_displacement", "SL1")
    own = eng.set_thresholds("gnss_displacement", "SL1", {"warning": 0.02, "alarm": 0.05})  # m
    cum = [(r.threshold, r.severity.value) for r in own if r.metric == "cumulative_mm"]
    assert cum == [(20.0, "warning"), (50.0, "alarm")]
    assert [r for r in own if r.metric != "cumulative_mm"] == [r for r in default if r.metric != "cumulative_mm"]
    assert eng.rules_for("gnss_displacement", "SL2") == default
    eng.set_thresholds("gnss_displacement", "SL1", None)
    assert eng.rules_for("gnss_displacement", "SL1") == default


def test_thresholds_override_the_configs_station_rules_and_removing_them_restores_those():
    cfg = {"water_level": {"deadband": 0.05, "rules": [], "stations": {"WL1": {"rules": [
        {"metric": "level_m", "threshold": 2.5, "severity": "warning", "source": "site", "verified": True}]}}}}
    eng = AlertEngine(cfg)
    (site,) = eng.rules_for("water_level", "WL1")
    eng.set_thresholds("water_level", "WL1", {"warning": 3.0})
    assert [r.threshold for r in eng.rules_for("water_level", "WL1")] == [3.0]
    assert eng.evaluate(level("WL1", 1, 2.8)) == []
    eng.set_thresholds("water_level", "WL1", {})
    assert eng.rules_for("water_level", "WL1") == (site,)


def test_a_kind_the_config_does_not_name_gets_the_stations_rules_one_it_switches_off_stays_off():
    eng = AlertEngine({"heat": {"enabled": False, "rules": []}})
    eng.set_thresholds("water_level", "WL1", {"alarm": 1.0})
    assert crossings(eng.evaluate(level("WL1", 1, 1.2))) == [("threshold_crossed", "alarm", 1.0)]
    assert eng.set_thresholds("heat", "HT1", {"alarm": 330.0}) == ()
    assert eng.evaluate(Reading("HT1/heat", "heat", 0.0, 400.0, station="HT1", unit="K")) == []


def test_bad_thresholds_are_refused_naming_every_level_and_value():
    with pytest.raises(ValidationError) as exc:
        AlertEngine().set_thresholds("water_level", "WL1", {"emergency": 0.9, "advisory": float("nan"),
                                                            "warning": 0.5, "alarm": 0.4})
    msg = str(exc.value)
    for part in ("WL1", "thresholds.emergency = 0.9: unknown level", "thresholds.advisory = nan: must be a finite",
                 "thresholds.alarm = 0.4: must be above warning = 0.5"):
        assert part in msg, msg
    assert threshold_problems("water_level", {"warning": 2000.0})[0][2].count("plausible range") == 1
    assert "takes no sensor thresholds" in threshold_problems("rain_gauge", {"warning": 0.05})[0][2]
    assert "more than 0" in threshold_problems("inclinometer", {"warning": 0.0})[0][2]
    assert threshold_problems("water_level", {"warning": True})[0][:2] == ("warning", True)


def test_use_sensors_sets_reports_and_reverts():
    eng = AlertEngine()
    reg = [Sensor(id="WL1", kind="water_level", lon=114.0, lat=22.5, unit="m", thresholds=LEVELS),
           Sensor(id="RG1", kind="rain_gauge", lon=114.0, lat=22.5, unit="m", thresholds={"warning": 0.05}),
           Sensor(id="WL2", kind="water_level", lon=114.0, lat=22.5, unit="m", thresholds={"critical": 1.0}),
           Sensor(id="WL3", kind="water_level", lon=114.0, lat=22.5, unit="m")]
    problems = eng.use_sensors(reg)
    assert len(problems) == 2 and "RG1" in problems[0] and "'critical'" not in problems[0]
    assert "WL2" in problems[1] and "thresholds.critical = 1.0: unknown level" in problems[1]
    assert [r.threshold for r in eng.rules_for("water_level", "WL1")] == [0.15, 0.3, 0.5]
    assert eng.rules_for("water_level", "WL2") == () and eng.rules_for("water_level", "WL3") == ()
    before = eng.rules_for("water_level", "WL1")
    assert eng.use_sensors(reg) and eng.rules_for("water_level", "WL1") is before  # unchanged: same rules
    eng.use_sensors(reg[1:])  # WL1 left the registry
    assert eng.rules_for("water_level", "WL1") == ()


def obs_msg(station, t, metres, seq):
    body = {"datastream": f"{station}/water_level", "phenomenonTime": t.isoformat(), "result": metres,
            "unit": "m", "seq": seq}
    return f"sz/v1/water_level/{station}/obs", json.dumps(body).encode(), t + timedelta(seconds=1)


def test_the_twin_link_follows_sensors_registered_while_it_runs(tmp_path):
    """The bridge's link reads the store's registry again when it changes: a gauge registered after the
    link was made raises on its next reading; thresholds taken away stop it."""
    with Store.open(tmp_path / "store") as store:
        link = TwinLink(store)
        ing = Ingestor(store, on_alert=store.put_event, on_stored=link.on_stored)
        ing.handle_many([obs_msg("WL1", T0, 0.9, 0)])
        assert [e for e in store.events() if e.kind == "threshold_crossed"] == []
        store.put_sensors([Sensor(id="WL1", kind="water_level", lon=114.05, lat=22.53, unit="m",
                                  thresholds=LEVELS)])
        ing.handle_many([obs_msg("WL1", T0 + timedelta(minutes=1), 0.35, 1)])
        crossed = [e for e in store.events() if e.kind == "threshold_crossed"]
        assert [(e.severity, e.data["station"], e.data["threshold"]) for e in crossed] == [
            ("warning", "WL1", 0.3)]
        assert link.stats["sensor_refreshes"] == 1
        store.put_sensors([Sensor(id="WL1", kind="water_level", lon=114.05, lat=22.53, unit="m",
                                  thresholds={"alarm": 2.0})])
        ing.handle_many([obs_msg("WL1", T0 + timedelta(minutes=2), 0.8, 2)])
        assert [e.kind for e in store.events() if e.kind in ("threshold_crossed", "alert_cleared")] == [
            "threshold_crossed", "alert_cleared"]
