"""The console and the ``sensors`` map layer give every sensor the same status and colour.

Both call :func:`twin.sensor_status.sensor_status`; this checks it end to end, from
the same store contents at the same instant, including the cases where the two
views disagreed before they shared the rule (a stale sensor with an active alarm,
a value between the warning and alarm thresholds, an active warning alert, a
device that said it is offline while its last reading is fresh).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from twin.events import Event
from twin.sensor_status import STATUS_COLOURS, palette_json
from twin.sensors import Sensor
from twin.store import Store
from viz.console.live import LiveState
from viz.console.scenes import sensors_layer
from viz.layers import build
from viz.layers.sensors import latest_from_store

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
THRESHOLDS = {"warning": 2.5, "alarm": 3.0}

# id, age of the latest reading (s; None: never reported), its value, events (kind, severity, data)
# in order, and the status both views must show
CASES = [
    pytest.param("FRESH", 60.0, 1.0, [], "ok", id="fresh-below-thresholds"),
    pytest.param("NEVER", None, None, [], "offline", id="never-reported"),
    pytest.param("OLD", 1800.0, 1.0, [], "stale", id="silent-longer-than-stale-limit"),
    pytest.param("OLDALARM", 7200.0, 3.1, [("threshold_crossed", "alarm", {})], "stale",
                 id="stale-with-active-alarm"),
    pytest.param("WARNVAL", 60.0, 2.6, [], "warning", id="value-above-warning-threshold"),
    pytest.param("ALARMVAL", 60.0, 3.2, [], "alarm", id="value-above-alarm-threshold"),
    pytest.param("WARNALERT", 60.0, 1.0, [("threshold_crossed", "warning", {})], "warning",
                 id="active-warning-alert"),
    pytest.param("ALARMALERT", 60.0, 1.0, [("threshold_crossed", "alarm", {})], "alarm",
                 id="active-alarm-alert"),
    pytest.param("LOWERED", 60.0, 1.0, [("threshold_crossed", "alarm", {}),
                                        ("alert_cleared", "info", {"from": "alarm", "to": "warning"})],
                 "warning", id="alarm-lowered-to-warning"),
    pytest.param("CLEARED", 60.0, 1.0, [("threshold_crossed", "alarm", {}),
                                        ("alert_cleared", "info", {"from": "alarm", "to": None})],
                 "ok", id="alert-cleared"),
    pytest.param("ADVISORY", 60.0, 1.0, [("threshold_crossed", "advisory", {})], "ok",
                 id="advisory-alert-leaves-status"),
    pytest.param("DOWN", 60.0, 3.2, [("sensor_offline", "warning", {"state": "offline"})],
                 "offline", id="device-said-offline-with-fresh-alarming-value"),
    pytest.param("BACK", 60.0, 1.0, [("sensor_offline", "warning", {"state": "offline"}),
                                     ("sensor_online", "info", {"state": "online"})],
                 "ok", id="device-back-online"),
]


def _args(case) -> tuple:
    return case.values


@pytest.fixture(scope="module")
def views(tmp_path_factory):
    """(console entries by sensor id, map points by sensor id) of one store at NOW."""
    store_dir = tmp_path_factory.mktemp("status") / "store"
    with Store.open(store_dir) as store:
        store.put_sensors([Sensor(id=sid, kind="water_level", lon=114.0 + i / 100, lat=22.5,
                                  unit="m", thresholds=THRESHOLDS)
                           for i, (sid, *_rest) in enumerate(map(_args, CASES))])
        for sid, age, value, events, _want in map(_args, CASES):
            ds = f"{sid}/water_level"
            if age is not None:
                store.put_observation(ds, NOW - timedelta(seconds=age), value, "m")
            for kind, severity, data in events:
                store.put_event(Event(time_s=0.0, kind=kind, source=ds, severity=severity,
                                      message=kind, data=data))
        registry = store.sensors()
        latest = latest_from_store(store)
    live = LiveState(store_dir, now=NOW.timestamp)
    try:
        entries = live.sensors()
    finally:
        live.close()
    console = {e["sensor"]: e for e in entries}
    console_points = {p["id"].split("/")[0]: p for p in sensors_layer(entries)["data"]}
    layer = build("sensors", registry, latest, now=NOW)
    return console, console_points, {p["id"]: p for p in layer.layers[0]["data"]}


@pytest.mark.parametrize(("sid", "age", "value", "events", "want"), CASES)
def test_console_and_map_agree(views, sid, age, value, events, want):
    console, console_points, map_points = views
    assert (console[sid]["status"], map_points[sid]["status"]) == (want, want)
    assert console_points[sid]["c"] == map_points[sid]["c"] == list(STATUS_COLOURS[want])


def test_the_page_is_served_the_same_palette():
    served = palette_json()
    assert served["colors"] == {k: list(v) for k, v in STATUS_COLOURS.items()}
    assert set(served["order"]) == set(served["attention"]) == set(served["labels"]) == set(STATUS_COLOURS)
