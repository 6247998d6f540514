"""Tests for the store's read-only side: Store.open_readonly and the queries live readers use."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from twin.errors import StoreError
from twin.events import Event
from twin.sensors import Sensor
from twin.store import Store

T0 = datetime(2024, 6, 1, tzinfo=UTC)


@pytest.fixture
def store_dir(tmp_path, store_at):
    path = store_at(tmp_path / "store")
    with Store.open(path) as s:
        s.put_sensors([Sensor(id="A", kind="water_level", lon=114.0, lat=22.5, unit="m")])
        s.put_observation("A/water_level", T0 + timedelta(minutes=2), 2.0, "m")
        s.put_observation("A/water_level", T0, 1.0, "m")  # late: stored after, older
        s.put_observation("B/rain_gauge", T0, 0.5, "mm", raw={"q": 1})
        s.put_event(Event(time_s=1.0, kind="threshold_crossed", source="A/water_level",
                          severity="warning", message="high"))
        s.put_event(Event(time_s=2.0, kind="alert_ack", source="console", severity="info",
                          message="ack", data={"alert_id": 1, "by": "duty"}))
    return path


def test_readonly_store_refuses_writes(store_dir):
    with Store.open_readonly(store_dir) as ro:
        with pytest.raises(StoreError, match="read-only"):
            ro.put_event(Event(time_s=0.0, kind="x", source="y", message="z"))
        assert ro.count_observations() == 3


@pytest.mark.parametrize("store_at", ["sqlite"], indirect=True)  # SQLite's database file
def test_readonly_open_accepts_the_database_file_and_creates_nothing(tmp_path, store_dir):
    with Store.open_readonly(store_dir / "twin.sqlite") as ro:
        assert ro.root == store_dir.resolve()
    with pytest.raises(StoreError, match="create the store first"):
        Store.open_readonly(tmp_path / "nowhere")
    assert not (tmp_path / "nowhere").exists()


def test_latest_observation_per_datastream_is_by_time_not_by_id(store_dir):
    with Store.open_readonly(store_dir) as ro:
        latest = {o.datastream_id: o for o in ro.latest_observations()}
        assert latest["A/water_level"].value == 2.0
        assert latest["B/rain_gauge"].raw == {"q": 1}
        assert latest["A/water_level"].phenomenon_time == "2024-06-01T00:02:00.000000Z"
        assert [o.value for o in ro.latest_observations(up_to_id=1)] == [2.0]


def test_rows_after_an_id_and_the_change_signals(store_dir):
    with Store.open_readonly(store_dir) as ro:
        version, sig = ro.data_version(), ro.sensors_signature()
        assert [o.value for o in ro.observations_after(1)] == [1.0, 0.5]
        assert [e.kind for e in ro.event_rows_after(0, kinds=["threshold_crossed"])] == ["threshold_crossed"]
        with Store.open(store_dir) as rw:
            rw.put_sensors([Sensor(id="B", kind="rain_gauge", lon=114.1, lat=22.5, unit="mm")])
        assert ro.data_version() != version and ro.sensors_signature() != sig
        assert list(ro.sensor_records()) == ["A", "B"]


def test_one_event_by_id_and_by_a_data_field(store_dir):
    with Store.open_readonly(store_dir) as ro:
        assert ro.event_row(1).severity == "warning" and ro.event_row(99) is None
        ack = ro.first_event_about("alert_ack", "alert_id", 1)
        assert ack.id == 2 and ack.data["by"] == "duty"
        assert ro.first_event_about("alert_ack", "alert_id", 7) is None
