"""Threshold alerts (hardware_bridge.fusion.alerts) against the packaged alerts.toml.

Expected levels follow the numbers in alerts.toml, whose sources are: CMA Order
No. 16 (2007) rainstorm signals, the improved tangential-angle criterion (Xu et
al. 2009), EN 54-5 class A1, GBZ 2.1-2019 / GB/T 50493-2019, GB 8958-2006 and
OSHA 29 CFR 1910.146; the placeholders are marked there.
"""

from __future__ import annotations

import copy
import math
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from hardware_bridge.fusion import Reading
from hardware_bridge.fusion.alerts import CONFIG_PATH, AlertEngine, load_config
from twin.clock import SimClock
from twin.errors import ConfigError
from twin.events import Event, Severity

H = 3600.0
DAY = 86400.0


def sev(events):
    return [(e.kind, e.severity.value) for e in events]


def test_packaged_config_cites_every_number():
    cfg = load_config()
    engine = AlertEngine(cfg)
    n = 0
    for kind, kc in engine.kinds.items():
        for r in kc.rules:
            n += 1
            assert r.source, (kind, r)
            assert r.verified or r.assumption, (kind, r)
    assert n >= 25
    assert CONFIG_PATH.name == "alerts.toml"
    red = [r for r in engine.rules_for("rain_gauge") if r.severity is Severity.ALARM]
    assert [(r.window_h, r.threshold) for r in red] == [(3.0, 100.0)]  # CMA red: 100 mm in 3 h


@pytest.mark.parametrize("patch, match", [
    (lambda c: c["rain_gauge"]["rules"][0].update(metric="depth_cm"), "metric='depth_cm'"),
    (lambda c: c["rain_gauge"]["rules"][0].pop("source"), "has no source"),
    (lambda c: c["rain_gauge"]["rules"][0].update(verified=False), "gives no assumption"),
    (lambda c: c["rain_gauge"]["rules"][0].pop("window_h"), "needs window_h"),
    (lambda c: c["heat"]["rules"][0].update(severity="red"), "severity='red'"),
    (lambda c: c["heat"]["rules"][0].update(threshold=float("nan")), "threshold=nan"),
    (lambda c: c.update(tornado={}), "unknown kind"),
    (lambda c: c["das_event"]["classes"].update(intrusion="loud"), "not a severity"),
])
def test_bad_config_is_refused_with_the_field(patch, match):
    cfg = copy.deepcopy(load_config())
    patch(cfg)
    with pytest.raises(ConfigError, match=match):
        AlertEngine(cfg)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config("/nonexistent/alerts.toml")


def test_rain_levels_escalate_once_per_level_and_clear():
    eng = AlertEngine()
    rain = [Reading("RG1/rain", "rain_gauge", 600.0 * k, 0.006, station="RG1") for k in range(1, 18)]  # 36 mm/h
    dry = [Reading("RG1/rain", "rain_gauge", 600.0 * k, 0.0, station="RG1") for k in range(18, 60)]
    ev = eng.evaluate(rain)
    # 24 mm in 1 h at 40 min -> info; 54 mm in 3 h at 90 min -> orange (warning; the
    # 6 h / 12 h criteria hold too); 102 mm in 3 h at 170 min -> red (alarm)
    assert sev(ev) == [("threshold_crossed", "info"), ("threshold_crossed", "warning"),
                       ("threshold_crossed", "alarm")]
    assert [e.time_s for e in ev] == [2400.0, 5400.0, 10200.0]
    assert ev[1].data["metric"] == "depth_mm" and ev[1].data["window_h"] == 3.0
    assert ev[1].data["value"] == pytest.approx(54.0) and "CMA" in ev[1].data["rule_source"]
    assert eng.active() == {"RG1/rain": Severity.ALARM}
    assert eng.evaluate(Reading("RG1/rain", "rain_gauge", 9000.0, 0.0)) == []  # late: history only
    ev2 = eng.evaluate(dry)
    # 190 min: 3 h depth 96 mm -> red released, orange holds; 270 min: 3 h depth 48 -> yellow
    # (6 h); 450 min: 6 h depth 48 -> blue (12 h: 102 mm), which stays to the end
    assert [e.kind for e in ev2] == ["alert_cleared"] * 3
    assert [(e.data["from"], e.data["to"]) for e in ev2] == [
        ("alarm", "warning"), ("warning", "advisory"), ("advisory", "info")]
    assert [e.time_s for e in ev2] == [11400.0, 16200.0, 27000.0]
    assert eng.active() == {"RG1/rain": Severity.INFO}
    # rain again: the 3 h criterion is crossed again -> a new orange alert
    again = [Reading("RG1/rain", "rain_gauge", 600.0 * k, 0.01) for k in range(60, 66)]
    assert ("threshold_crossed", "warning") in sev(eng.evaluate(again))


def test_rain_intensity_readings_accumulate_over_the_interval():
    eng = AlertEngine()
    rs = [Reading("RG2", "rain_gauge", 600.0 * k, 120.0 / 3.6e6, unit="m/s") for k in range(0, 4)]
    ev = eng.evaluate(rs)  # 120 mm/h: 20 mm after 10 min (1 h >= 20), 60 mm after 30 min (3 h >= 50)
    assert sev(ev) == [("threshold_crossed", "info"), ("threshold_crossed", "warning")]
    assert ev[1].data["value"] == pytest.approx(60.0)


def _with_station(kind, station, table):
    cfg = copy.deepcopy(load_config())
    cfg[kind].setdefault("stations", {})[station] = table
    return cfg


def test_water_level_per_station_with_deadband():
    cfg = _with_station("water_level", "SZR-01", {"rules": [
        {"metric": "level_m", "threshold": 2.5, "severity": "warning", "label": "警戒水位",
         "source": "test station", "verified": True},
        {"metric": "level_m", "threshold": 3.0, "severity": "alarm", "label": "保证水位",
         "source": "test station", "verified": True}]})
    eng = AlertEngine(cfg)
    levels = [2.0, 2.6, 2.7, 3.1, 2.98, 2.9, 2.46, 2.4, 2.6]
    out = []
    for k, v in enumerate(levels):
        out.append(sev(eng.evaluate(Reading("SZR-01/wl", "water_level", 60.0 * k, v, station="SZR-01"))))
    assert out == [[], [("threshold_crossed", "warning")], [], [("threshold_crossed", "alarm")],
                   [],  # 2.98 >= 3.0 - 0.05: still alarm
                   [("alert_cleared", "info")],  # 2.9: back to warning
                   [],  # 2.46 >= 2.45 holds warning
                   [("alert_cleared", "info")],
                   [("threshold_crossed", "warning")]]
    # a station without levels raises nothing
    assert eng.evaluate(Reading("X/wl", "water_level", 0.0, 99.0, station="X")) == []


def test_gnss_rate_and_cumulative_defaults():
    eng = AlertEngine()
    # 6 mm/d steady creep, hourly readings: rate is undefined until 12 h of history,
    # then 6 mm/d -> warning (placeholder 5 mm/d); cumulative passes 50 mm on day 8.3 -> warning (no
    # new event: already warning); 100 mm on day 16.7 -> alarm
    rs = [Reading("SL1/gnss/e", "gnss_displacement", k * H, 0.006 * k * H / DAY, station="SL1")
          for k in range(0, 24 * 18)]
    ev = eng.evaluate(rs)
    assert sev(ev) == [("threshold_crossed", "warning"), ("threshold_crossed", "alarm")]
    assert ev[0].time_s == 12 * H and ev[0].data["metric"] == "rate_mm_per_day"
    assert ev[0].data["value"] == pytest.approx(6.0)
    assert ev[1].data["metric"] == "cumulative_mm"
    assert ev[1].time_s == pytest.approx(math.ceil(100 / 6 * 24) * H)


def test_gnss_tangential_angle_levels():
    cfg = _with_station("gnss_displacement", "SL2", {"v_mm_per_day": 2.0, "baseline_m": 0.0, "rules": [
        r for r in load_config()["gnss_displacement"]["rules"] if r["metric"] == "tangent_angle_deg"]})
    eng = AlertEngine(cfg)
    # daily readings; rate r gives alpha = atan(r / 2 mm/d): 2 -> 45 (no alert, needs > 45),
    # 4 -> 63.4 (advisory), 12 -> 80.5 (warning), 30 -> 86.2 (alarm)
    s, t, out = 0.0, 0.0, []
    for rate in (2, 2, 2, 4, 4, 12, 12, 30):
        s += rate / 1000.0
        t += DAY
        out += eng.evaluate(Reading("SL2/gnss/n", "gnss_displacement", t, s, station="SL2"))
    assert [(e.severity.value, round(e.data["value"], 1)) for e in out] == [
        ("advisory", 63.4), ("warning", 80.5), ("alarm", 86.2)]
    assert "Xu Qiang" in out[0].data["rule_source"]


def test_inclinometer_change_from_baseline():
    cfg = _with_station("inclinometer", "TL1", {"baseline_rad": 0.010})
    eng = AlertEngine(cfg)
    ev = []
    for k, mrad in enumerate((10.5, 12.5, 14.0, 16.0, 21.0)):
        ev += eng.evaluate(Reading("TL1/tilt", "inclinometer", k * 60.0, mrad / 1000.0, station="TL1"))
    assert [(e.severity.value, round(e.data["value"], 3)) for e in ev] == [
        ("advisory", 2.5), ("warning", 6.0), ("alarm", 11.0)]


def test_smoke_and_heat():
    eng = AlertEngine()
    sm = [eng.evaluate(Reading("T1/F12/smoke", "smoke", float(k), v)) for k, v in
          enumerate((0.02, 0.035, 0.09, 0.078, 0.07))]
    assert [sev(e) for e in sm] == [[], [("threshold_crossed", "advisory")], [("threshold_crossed", "alarm")],
                                    [], [("alert_cleared", "info")]]
    assert sm[4][0].data == {**sm[4][0].data, "from": "alarm", "to": "advisory"}
    heat = [eng.evaluate(Reading("T1/F12/heat", "heat", float(k), v)) for k, v in
            enumerate((298.15, 324.15, 330.15))]  # 25, 51, 57 °C
    assert [sev(e) for e in heat] == [[], [("threshold_crossed", "advisory")], [("threshold_crossed", "alarm")]]
    assert heat[2][0].data["value"] == pytest.approx(57.0) and "EN 54-5" in heat[2][0].data["rule_source"]


def test_fixed_gas_detectors():
    eng = AlertEngine()
    assert sev(eng.evaluate(Reading("PS1/h2s", "gas_h2s", 0.0, 7.1e-6))) == [("threshold_crossed", "warning")]
    assert sev(eng.evaluate(Reading("PS1/h2s", "gas_h2s", 1.0, 15e-6))) == [("threshold_crossed", "alarm")]
    assert sev(eng.evaluate(Reading("PS1/co", "gas_co", 0.0, 10e-6))) == []
    assert sev(eng.evaluate(Reading("PS1/lel", "gas_lel", 0.0, 0.30))) == [("threshold_crossed", "warning")]
    low = eng.evaluate(Reading("PS1/o2", "gas_o2", 0.0, 0.18))
    assert sev(low) == [("threshold_crossed", "alarm")] and low[0].data["op"] == "<"
    assert sev(eng.evaluate(Reading("PS2/o2", "gas_o2", 0.0, 0.24))) == [("threshold_crossed", "alarm")]
    assert sev(eng.evaluate(Reading("PS3/o2", "gas_o2", 0.0, 0.209))) == []


def _das(t, cls, pos, conf=0.9, sid="M1/das"):
    return Reading(sid, "das_event", t, None, result={"class": cls, "position_m": pos, "energy": 3.0,
                                                      "confidence": conf})


def test_das_events_by_class_with_dedup():
    eng = AlertEngine()
    ev = eng.evaluate([
        _das(0.0, "excavation", 1210.0),
        _das(60.0, "excavation", 1230.0),   # same 50 m bucket within 300 s: deduplicated
        _das(90.0, "excavation", 2400.0),   # elsewhere: new event
        _das(120.0, "vehicle", 500.0),      # normal traffic: nothing
        _das(150.0, "intrusion", 800.0, conf=0.3),  # below min_confidence
        _das(400.0, "excavation", 1220.0),  # after dedup_s: again
        _das(410.0, "fire", 3000.0),
    ])
    assert [(e.kind, e.severity.value, e.data["position_m"]) for e in ev] == [
        ("das_event", "warning", 1210.0), ("das_event", "warning", 2400.0),
        ("das_event", "warning", 1220.0), ("das_event", "alarm", 3000.0)]
    assert "1210 m along the fibre" in ev[0].message


def test_das_event_place_and_protection_zone():
    """A sender that knows the fibre's route gives the place: the alert carries it (the console's alert layer
    draws events at data lon/lat), and an event outside the protection zone is lowered to ``outside_zone``
    (info in the shipped alerts.toml), not raised to the duty officer."""
    eng = AlertEngine()

    def das(t, pos, inside, lon):
        return Reading("M1/das", "das_event", t, None, result={
            "class": "drilling", "position_m": pos, "energy": 3.0, "confidence": 0.9, "line": "1号线",
            "chainage_m": 5000.0 + pos, "lon": lon, "lat": 22.54, "inside_zone": inside})

    ev = eng.evaluate([das(0.0, 100.0, True, 114.05), das(10.0, 900.0, False, 114.06)])
    assert [(e.severity.value, e.data["lon"], e.data["inside_zone"]) for e in ev] == [
        ("warning", 114.05, True), ("info", 114.06, False)]
    assert "(1号线 chainage 5100 m), inside the protection zone" in ev[0].message
    assert "outside the protection zone" in ev[1].message


def test_petrol_video_violations():
    eng = AlertEngine()

    def v(t, what, conf):
        return Reading("PS7/cam2", "petrol_video_event", t, None, station="PS7",
                       result={"station": "PS7", "violation": what, "confidence": conf})

    ev = eng.evaluate([v(0.0, "smoking", 0.8), v(30.0, "smoking", 0.9), v(40.0, "phone", 0.5),
                       v(50.0, "phone", 0.7), v(60.0, "open_flame", 0.95)])
    assert [(e.kind, e.severity.value, e.data["class"]) for e in ev] == [
        ("video_violation", "warning", "smoking"), ("video_violation", "warning", "phone"),
        ("video_violation", "alarm", "open_flame")]
    assert "PS7" in ev[0].message


def test_clock_times_dataframe_input_and_event_records():
    start = datetime(2023, 9, 7, 10, tzinfo=UTC)
    eng = AlertEngine(clock=SimClock(start))
    df = pd.DataFrame({"datastream_id": ["H1"] * 2, "kind": ["heat"] * 2,
                       "time": [start + timedelta(minutes=5), start + timedelta(minutes=6)],
                       "value": [300.0, 340.0], "station": ["T9"] * 2})
    ev = eng.evaluate(df)
    assert len(ev) == 1 and ev[0].time_s == 360.0 and ev[0].severity is Severity.ALARM
    assert ev[0].data["phenomenon_time"].startswith("2023-09-07T10:06")
    assert Event.parse(ev[0].to_record()) == ev[0]  # storable (JSON-compatible data)
    assert AlertEngine().evaluate(Reading("u", "unknown_kind", 0.0, 1.0)) == []
