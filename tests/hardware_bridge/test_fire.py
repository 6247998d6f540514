"""Fire origin and spread from smoke/heat detectors (hardware_bridge.fusion.fire)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from hardware_bridge.fusion import Reading
from hardware_bridge.fusion.fire import FireOrigins, alarm_thresholds
from hardware_bridge.ingest import Ingestor
from hardware_bridge.twin_link import TwinLink
from twin.errors import ConfigError
from twin.events import Severity
from twin.sensors import Sensor, SensorRegistry
from twin.store import Store

T0 = datetime(2024, 6, 1, 2, 0, tzinfo=UTC)
K0 = 273.15


def t(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def tower(building="T1", floors=30, lon=114.05, lat=22.54, zone="core"):
    """One heat detector (HD-<b>-<floor>) per floor of a tower."""
    return [Sensor(id=f"HD-{building}-{f}", kind="heat", lon=lon, lat=lat, unit="K",
                   properties={"building": building, "floor": f, "zone": zone})
            for f in range(1, floors + 1)]


def heat(det, secs, deg_c, seq=0):
    return Reading(datastream_id=f"{det}/heat", kind="heat", time=t(secs), value=deg_c + K0,
                   station=det, unit="K")


def test_thresholds_come_from_the_alert_config():
    th = alarm_thresholds()
    # alerts.toml: heat alarm 54 degC (EN 54-5 A1 static response), smoke alarm 8 %/m
    assert th["heat"] == pytest.approx(54 + K0)
    assert th["smoke"] == pytest.approx(0.08)
    fo = FireOrigins(SensorRegistry(tower()))
    assert fo.thresholds == pytest.approx(th)
    with pytest.raises(ConfigError, match="heat"):
        alarm_thresholds({"heat": {"rules": []}, "smoke": {"rules": []}})


def test_tower_stack_effect_origin_and_spread_up_and_down():
    fo = FireOrigins(SensorRegistry(tower()))
    # background on every floor, then floor 12 first, 13 and 14 (stack effect), then 11
    ev = fo.update([heat(f"HD-T1-{f}", 0, 26.0) for f in range(1, 31)])
    assert ev == []
    ev = fo.update([heat("HD-T1-12", 60, 70.0), heat("HD-T1-13", 150, 62.0)])
    ev += fo.update([heat("HD-T1-14", 240, 58.0)])
    ev += fo.update([heat("HD-T1-11", 400, 56.0), heat("HD-T1-12", 420, 90.0)])  # repeat of 12: nothing
    kinds = [e.kind for e in ev]
    assert kinds == ["fire_origin", "fire_spread", "fire_spread", "fire_spread"]
    origin = ev[0]
    assert origin.severity is Severity.ALARM
    assert origin.data["building"] == "T1" and origin.data["floor"] == 12
    assert origin.data["detector"] == "HD-T1-12" and origin.data["zone"] == "core"
    assert origin.data["corrected"] is False
    assert origin.data["lon"] == pytest.approx(114.05) and origin.data["time"] == t(60).isoformat()
    spread = ev[1:]
    assert all(e.severity is Severity.WARNING for e in spread)
    assert [(e.data["floor"], e.data["direction"]) for e in spread] == [(13, "up"), (14, "up"), (11, "down")]
    assert spread[-1].data["floors_affected"] == [11, 12, 13, 14]
    assert spread[0].data["floors_affected"] == [12, 13]
    inc = fo.incidents()["T1"]
    assert inc["origin"]["floor"] == 12 and inc["floors_affected"] == [11, 12, 13, 14]
    assert [s["direction"] for s in inc["spread"]] == ["up", "up", "down"]


def test_out_of_order_alarm_moves_the_origin():
    fo = FireOrigins(SensorRegistry(tower()))
    ev = fo.update([heat("HD-T1-13", 150, 62.0)])
    assert ev[0].kind == "fire_origin" and ev[0].data["floor"] == 13
    # floor 12's alarm (60 s) arrives late
    ev = fo.update([heat("HD-T1-12", 60, 70.0)])
    assert [e.kind for e in ev] == ["fire_origin", "fire_spread"]
    assert ev[0].data["corrected"] is True and ev[0].data["floor"] == 12
    assert ev[0].data["previous_origin"]["detector"] == "HD-T1-13"
    assert ev[1].data["detector"] == "HD-T1-13" and ev[1].data["direction"] == "up"
    inc = fo.incidents()["T1"]
    assert inc["origin"]["detector"] == "HD-T1-12" and inc["corrections"] == 1
    assert [s["detector"] for s in inc["spread"]] == ["HD-T1-13"]
    # an alarm more than window_s before the origin is not this incident
    assert fo.update([heat("HD-T1-20", 60 - 901, 70.0)]) == []
    assert fo.stats["outside_window"] == 1


def test_two_buildings_are_independent_and_incidents_close_after_the_window():
    reg = SensorRegistry(tower("A", 10) + tower("B", 10, lon=114.06))
    fo = FireOrigins(reg, window_s=900)
    ev = fo.update([heat("HD-A-3", 0, 60.0), heat("HD-B-7", 30, 60.0), heat("HD-A-4", 60, 60.0)])
    assert [(e.kind, e.data["building"], e.data["floor"]) for e in ev] == [
        ("fire_origin", "A", 3), ("fire_origin", "B", 7), ("fire_spread", "A", 4)]
    # B's later, earlier-floored alarm is B's spread, not A's
    ev = fo.update([heat("HD-B-2", 100, 60.0)])
    assert ev[0].kind == "fire_spread" and ev[0].data["direction"] == "down"
    assert fo.incidents()["A"]["floors_affected"] == [3, 4]
    assert fo.incidents()["B"]["floors_affected"] == [2, 7]
    # more than window_s after A's last alarm: a new incident in A
    ev = fo.update([heat("HD-A-9", 60 + 901, 60.0)])
    assert ev[0].kind == "fire_origin" and ev[0].data["floor"] == 9


def test_below_threshold_smoke_and_unplaced_detectors_raise_nothing():
    reg = SensorRegistry([
        *tower(floors=3),
        Sensor(id="SD-1", kind="smoke", lon=114.05, lat=22.54, properties={"building": "T1", "floor": 2}),
        Sensor(id="HD-X", kind="heat", lon=114.05, lat=22.54, properties={"floor": 1}),
    ])
    fo = FireOrigins(reg)
    assert fo.update([heat("HD-T1-1", 0, 53.9), heat("HD-T1-2", 0, 40.0)]) == []
    smoke = lambda v, s: Reading(datastream_id="SD-1/smoke", kind="smoke", time=t(s), value=v,  # noqa: E731
                                 station="SD-1")
    assert fo.update([smoke(0.079, 10)]) == []
    assert fo.stats["below_threshold"] == 3
    assert fo.update([heat("HD-X", 20, 80.0), heat("HD-NOBODY", 20, 80.0)]) == []
    assert fo.stats["no_building"] == 1 and fo.stats["unknown_detector"] == 1
    ev = fo.update([smoke(0.10, 30)])
    assert ev[0].kind == "fire_origin" and ev[0].data["kind"] == "smoke" and ev[0].data["zone"] is None
    assert fo.incidents()["T1"]["origin"]["detector"] == "SD-1"


def test_twin_link_stores_fire_origin_through_a_real_ingestor(tmp_path):
    store = Store.open(tmp_path / "store")
    try:
        store.put_sensors(tower(floors=20))
        link = TwinLink(store)
        ing = Ingestor(store, on_alert=store.put_event, on_stored=link.on_stored)

        def msg(det, secs, deg_c, seq):
            body = {"datastream": f"{det}/heat", "phenomenonTime": t(secs).isoformat(),
                    "result": deg_c, "unit": "degC", "seq": seq}
            return f"sz/v1/heat/{det}/obs", json.dumps(body).encode(), t(secs + 1)

        ing.handle_many([msg("HD-T1-12", 0, 25.0, 0), msg("HD-T1-13", 0, 25.0, 0)])
        ing.handle_many([msg("HD-T1-12", 60, 70.0, 1)])
        ing.handle_many([msg("HD-T1-13", 120, 60.0, 1)])
        ing.handle_many([msg("HD-T1-12", 60, 70.0, 1)])  # redelivery: duplicate, nothing new
        origins = store.events(kind="fire_origin")
        assert len(origins) == 1
        assert origins[0].data["floor"] == 12 and origins[0].data["building"] == "T1"
        assert origins[0].severity is Severity.ALARM
        spread = store.events(kind="fire_spread")
        assert [(e.data["floor"], e.data["direction"]) for e in spread] == [(13, "up")]
        assert link.stats["to_fire"] == 4
        assert link.fire.incidents()["T1"]["floors_affected"] == [12, 13]
        # the threshold alert engine still raised its own heat alarm
        assert any(e.source == "HD-T1-12/heat" for e in store.events())
    finally:
        store.close()
