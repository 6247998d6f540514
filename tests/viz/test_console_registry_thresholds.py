"""The console shows a sensor's own alert levels from the registry, the levels the bridge alerts on."""

from __future__ import annotations

from twin.sensors import Sensor
from twin.store import Store
from viz.console.live import LiveState


def _levels(rows, sid):
    row = next(r for r in rows if r["id"] == sid)
    return [(t["severity"], t["threshold"]) for t in row["thresholds"]]


def test_a_registered_gauges_levels_are_its_console_thresholds_and_follow_the_registry(tmp_path):
    store = Store.open(tmp_path / "store")
    try:
        gauge = Sensor(id="FT-WL01", kind="water_level", lon=114.045, lat=22.523, unit="m",
                       thresholds={"advisory": 3.5, "warning": 4.0, "alarm": 4.5})
        store.put_sensors([gauge])
        live = LiveState(store.db_path)
        live.refresh()
        assert _levels(live.sensors(), "FT-WL01/water_level") == [("advisory", 3.5), ("warning", 4.0),
                                                                  ("alarm", 4.5)]
        # the registry changes (a drill re-registers the gauge without levels): the rows follow it
        store.put_sensors([gauge.model_copy(update={"thresholds": {}})])
        live.refresh()
        assert _levels(live.sensors(), "FT-WL01/water_level") == []
    finally:
        store.close()
