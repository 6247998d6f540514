"""The store's two backends: URL factory, schema migrations, change waits, aggregates, boxes (SQLite and PostgreSQL).

``store_at`` (tests/twin/conftest.py) runs each test on a SQLite directory and on a fresh PostgreSQL database.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from twin.errors import StoreError, ValidationError
from twin.events import Event
from twin.sensors import Sensor
from twin.store import (
    _SCHEMA_V1,
    _SCHEMA_V1_ADDITIONS,
    SCHEMA_VERSION,
    Observation,
    Store,
    _split_sql,
    open_store,
)

T0 = datetime(2026, 3, 1, tzinfo=UTC)
V1_OBS = [  # (datastream, minutes after T0, value): B's second row arrives late (older time, larger id)
    ("A/level", 0, 1.0), ("A/level", 10, 2.0), ("B/rain", 5, 0.5), ("B/rain", 1, 0.2)]
SENSOR = Sensor(id="A", kind="water_level", lon=114.05, lat=22.54, unit="m")


def _ts(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _make_v1_sqlite(root: Path) -> None:
    """A store as schema version 1 wrote it (before ``latest`` and the sensors' lon/lat)."""
    root.mkdir(parents=True)
    con = sqlite3.connect(root / "twin.sqlite")
    for stmt in _split_sql(_SCHEMA_V1 + _SCHEMA_V1_ADDITIONS):
        con.execute(stmt)
    con.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    con.execute("INSERT INTO schema_version VALUES (1)")
    _fill_v1(con.execute, "?")
    con.commit()
    con.close()


def _make_v1_pg(url: str) -> None:
    import psycopg

    from twin.store_pg import PG_MIGRATIONS, split_url

    with psycopg.connect(split_url(url)[0], autocommit=True) as con:
        con.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        con.execute("INSERT INTO schema_version VALUES (1)")
        for stmt in PG_MIGRATIONS[0]:
            con.execute(stmt)
        _fill_v1(con.execute, "%s")


def _fill_v1(execute, p: str) -> None:
    for stream, minutes, value in V1_OBS:
        execute(f"INSERT INTO observations (datastream_id, phenomenon_time, result_time, seq, value, unit) "
                f"VALUES ({p}, {p}, {p}, 0, {p}, '')", (stream, _ts(minutes), _ts(minutes), value))
    execute(f"INSERT INTO sensors (snapshot_id, pos, id, kind, record) VALUES (NULL, 0, {p}, {p}, {p})",
            (SENSOR.id, SENSOR.kind, json.dumps(SENSOR.to_record())))
    execute(f"INSERT INTO events (run_id, snapshot_id, pos, time_s, wall_time, kind, source, severity, message, "
            f"data) VALUES (NULL, NULL, 0, 1.0, {p}, 'threshold_crossed', 'A/level', 'warning', 'high', '{{}}')",
            (_ts(0),))


def test_a_version_1_store_is_migrated_at_open_with_its_data_intact(tmp_path, store_at):
    target = store_at(tmp_path / "store")
    if isinstance(target, Path):
        _make_v1_sqlite(target)
    else:
        _make_v1_pg(target)
    with Store.open(target) as store:
        assert store.schema_version == SCHEMA_VERSION == 4
        assert [(a.count, a.sum) for a in store.aggregate("B/rain", T0, T0 + timedelta(hours=2))] == [(2, 0.7)]
        assert store.count_observations() == 4 and [o.value for o in store.observations("B/rain")] == [0.2, 0.5]
        latest = {o.datastream_id: (o.phenomenon_time, o.value) for o in store.latest_observations()}
        assert latest == {"A/level": (_ts(10), 2.0), "B/rain": (_ts(5), 0.5)}  # by time, not by id
        assert store.sensors_in_bbox(114.0, 22.5, 114.1, 22.6) == ["A"]  # lon/lat filled from the records
        assert store.sensors().get("A") == SENSOR and [e.kind for e in store.events()] == ["threshold_crossed"]
        store.put_observation("A/level", T0 + timedelta(minutes=20), 3.0)  # the write path keeps latest
        assert store.latest_times()["A/level"] == T0 + timedelta(minutes=20)
    with Store.open(target) as again:  # opening a migrated store changes nothing
        assert again.schema_version == 4 and again.count_observations() == 5


@pytest.mark.parametrize("store_at", ["postgresql"], indirect=True)
def test_a_newer_postgresql_schema_is_refused(tmp_path, store_at):
    target = store_at(tmp_path)
    import psycopg

    from twin.store_pg import split_url

    Store.open(target).close()
    with psycopg.connect(split_url(target)[0], autocommit=True) as con:
        con.execute("UPDATE schema_version SET version = %s", (SCHEMA_VERSION + 1,))
    with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 1}, newer.*upgrade shenzhen-twin"):
        Store.open(target)


def test_open_store_takes_a_directory_or_a_url_or_twin_store(tmp_path, store_at, monkeypatch):
    target = store_at(tmp_path / "s")
    with open_store(target) as store:
        store.put_observation("A/level", T0, 1.0)
        assert store.backend == ("sqlite" if isinstance(target, Path) else "postgresql")
    monkeypatch.setenv("TWIN_STORE", str(target))
    with open_store() as store, open_store(readonly=True) as ro:
        assert store.count_observations() == ro.count_observations() == 1
        with pytest.raises(StoreError, match="read-only"):
            ro.put_observation("A/level", T0 + timedelta(seconds=1), 1.0)
    monkeypatch.delenv("TWIN_STORE")
    with pytest.raises(ValidationError, match="TWIN_STORE is not set"):
        open_store()


def test_postgresql_without_a_reachable_server_names_the_url_without_password(pg_server):
    with pytest.raises(StoreError, match=r"postgresql://twin:\*\*\*@127.0.0.1:1/x"):
        open_store("postgresql://twin:secret@127.0.0.1:1/x?connect_timeout=2")


def test_wait_for_change_wakes_on_another_connections_commit(tmp_path, store_at):
    target = store_at(tmp_path / "s")
    with Store.open(target) as rw, Store.open_readonly(target) as ro:
        assert ro.wait_for_change(0.05) is False  # starts watching; nothing committed since
        rw.put_observation("A/level", T0, 1.0)
        assert ro.wait_for_change(10.0) is True
        assert ro.wait_for_change(0.1) is False  # that commit was seen once
        rw.put_event(Event(time_s=1.0, kind="threshold_crossed", source="A/level", severity="warning"))
        assert ro.wait_for_change(10.0) is True


def test_aggregates_per_utc_hour_and_day_over_a_half_open_range(tmp_path, store_at):
    with Store.open(store_at(tmp_path / "s")) as store:
        # every 10 min for 2 days: value = minutes since T0 / 10 (0, 1, 2, ...); one reading without a value
        store.put_observations(Observation("A/level", T0 + timedelta(minutes=10 * k), float(k)) for k in range(288))
        store.put_observation("A/level", T0 + timedelta(minutes=5), None)
        hours = store.aggregate("A/level", T0 + timedelta(hours=1), T0 + timedelta(hours=3))
        assert [h.start for h in hours] == ["2026-03-01T01:00:00.000000Z", "2026-03-01T02:00:00.000000Z"]
        assert [(h.count, h.mean, h.max, h.min, h.sum) for h in hours] == [
            (6, 8.5, 11.0, 6.0, 51.0), (6, 14.5, 17.0, 12.0, 87.0)]  # 6..11 and 12..17: arithmetic series
        days = store.aggregate("A/level", T0, T0 + timedelta(days=2), every="day")
        assert [(d.start[:10], d.count, d.max, d.sum) for d in days] == [
            ("2026-03-01", 144, 143.0, 143 * 144 / 2), ("2026-03-02", 144, 287.0, (144 + 287) * 144 / 2)]
        first = store.aggregate("A/level", T0, T0 + timedelta(minutes=10))  # t1 excluded, None ignored
        assert [(a.count, a.sum) for a in first] == [(1, 0.0)]
        with pytest.raises(ValidationError, match="every='week'"):
            store.aggregate("A/level", T0, T0 + timedelta(days=7), every="week")


def test_latest_up_to_an_id_looks_back_for_streams_written_since(tmp_path, store_at):
    with Store.open(store_at(tmp_path / "s")) as store:
        store.put_observation("A/level", T0 + timedelta(minutes=1), 1.0)
        store.put_observation("B/rain", T0, 0.1)
        upto = store.last_observation_id()
        store.put_observation("A/level", T0 + timedelta(minutes=5), 5.0)  # newer, after upto
        store.put_observation("B/rain", T0 - timedelta(minutes=5), 9.9)  # late: older time
        assert [(o.datastream_id, o.value) for o in store.latest_observations(up_to_id=upto)] == [
            ("A/level", 1.0), ("B/rain", 0.1)]
        assert [(o.datastream_id, o.value) for o in store.latest_observations()] == [("A/level", 5.0), ("B/rain", 0.1)]


def test_sensors_in_a_box_edges_included_and_moved_sensors_follow(tmp_path, store_at):
    with Store.open(store_at(tmp_path / "s")) as store:
        store.put_sensors([Sensor(id=f"s{i}", kind="k", lon=114.0 + i / 10, lat=22.5) for i in range(5)])
        assert store.sensors_in_bbox(114.1, 22.5, 114.3, 22.5) == ["s1", "s2", "s3"]
        store.put_sensors([Sensor(id="s2", kind="k", lon=113.0, lat=22.5)])
        assert store.sensors_in_bbox(114.1, 22.0, 114.3, 23.0) == ["s1", "s3"]
        with pytest.raises(ValidationError, match="west <= east"):
            store.sensors_in_bbox(115.0, 22.0, 114.0, 23.0)
        if store.backend == "postgresql":
            assert store.postgis is True  # the test server has PostGIS: the geometry column and its index


def test_postgresql_without_postgis_rights_keeps_lon_lat_columns(pg_server, tmp_path):
    """A database owner who may not CREATE EXTENSION postgis (it is not a trusted extension) still gets a store."""
    import psycopg

    with psycopg.connect(pg_server.url(), autocommit=True) as con:
        con.execute("CREATE ROLE plain LOGIN") if con.execute(
            "SELECT 1 FROM pg_roles WHERE rolname = 'plain'").fetchone() is None else None
        name = "plain_" + tmp_path.name[-8:].replace("-", "_").lower()
        con.execute(f"CREATE DATABASE {name} OWNER plain TEMPLATE template0")
    url = pg_server.url(name).replace("//postgres@", "//plain@") + f"?files={tmp_path}"
    with open_store(url) as store:
        assert store.postgis is False
        store.put_sensors([SENSOR])
        assert store.sensors_in_bbox(114.0, 22.5, 114.1, 22.6) == ["A"]


def test_aggregates_cut_mid_hour_match_the_readings_and_ignore_duplicates(tmp_path, store_at):
    """Whole hours come from the roll-up, cut hours from the readings: the sum equals a direct computation."""
    with Store.open(store_at(tmp_path / "s")) as store:
        batch = [Observation("A/level", T0 + timedelta(minutes=7 * k), float(k % 13)) for k in range(100)]
        store.put_observations(batch)
        store.put_ingested(batch[:50])  # redelivered: stored once, counted once
        t0, t1 = T0 + timedelta(hours=1, minutes=25), T0 + timedelta(hours=9, minutes=35)
        for every, width in (("hour", 13), ("day", 10)):
            want: dict[str, list[float]] = {}
            for o in store.observations("A/level", t0, t1):
                want.setdefault(o.phenomenon_time.strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:width], []).append(o.value)
            got = store.aggregate("A/level", t0, t1, every)
            assert [a.start[:width] for a in got] == sorted(want)
            for a in got:
                v = want[a.start[:width]]
                assert (a.count, a.max, a.min) == (len(v), max(v), min(v))
                assert a.sum == pytest.approx(sum(v), rel=1e-12) and a.mean == pytest.approx(sum(v) / len(v))


def test_latest_values_as_columns_follow_time_not_arrival(tmp_path, store_at):
    with Store.open(store_at(tmp_path / "s")) as store:
        assert store.latest_values().datastream_ids == []
        store.put_observations([Observation("B/rain", T0, None), Observation("A/level", T0 + timedelta(minutes=5), 2.5),
                                Observation("A/level", T0, 9.0)])  # late arrival: not the latest
        got = store.latest_values()
        assert got.datastream_ids == ["A/level", "B/rain"] and got.phenomenon_times == [_ts(5), _ts(0)]
        assert got.values[0] == 2.5 and got.values.dtype == float and str(got.values[1]) == "nan"


@pytest.mark.parametrize("store_at", ["postgresql"], indirect=True)
def test_postgresql_notifies_new_rows_with_their_largest_id(tmp_path, store_at):
    target = store_at(tmp_path / "s")
    import psycopg

    from twin.store_pg import CHANNELS, split_url

    with Store.open(target) as store, psycopg.connect(split_url(target)[0], autocommit=True) as listener:
        for channel in CHANNELS:
            listener.execute(f"LISTEN {channel}")
        store.put_observations([Observation("A/level", T0 + timedelta(minutes=k), 1.0) for k in range(3)])
        store.put_observation("A/level", T0, 5.0)  # a duplicate: nothing inserted, nothing notified
        event_id = store.put_event(Event(time_s=1.0, kind="threshold_crossed", source="A/level"))
        store.put_sensors([SENSOR])
        got = [(n.channel, n.payload) for n in listener.notifies(timeout=2.0, stop_after=3)]
    assert got == [("twin_observations", "3"),
                   ("twin_events", str(event_id)), ("twin_sensors", "")]


@pytest.mark.parametrize("store_at", ["postgresql"], indirect=True)
def test_postgresql_store_reconnects_after_the_server_drops_its_connection(tmp_path, store_at):
    """A dropped connection (server restart, failover) fails the call in flight, and the next call reconnects."""
    target = store_at(tmp_path / "s")
    import psycopg

    from twin.store_pg import split_url

    def drop_all_but(admin) -> None:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE datname = current_database() AND pid <> pg_backend_pid()")

    with Store.open(target) as store, Store.open_readonly(target) as ro, \
            psycopg.connect(split_url(target)[0], autocommit=True) as admin:
        store.put_observation("A/level", T0, 1.0)
        assert ro.wait_for_change(0.01) is False
        drop_all_but(admin)
        with pytest.raises(StoreError, match="retry"):
            store.put_observation("A/level", T0 + timedelta(minutes=1), 2.0)
        assert store.put_observation("A/level", T0 + timedelta(minutes=1), 2.0) is True  # reconnected
        drop_all_but(admin)
        with pytest.raises(StoreError):
            ro.count_observations()
        assert ro.count_observations() == 2
        with pytest.raises(StoreError, match="call again"):
            ro.wait_for_change(0.5)
        assert ro.wait_for_change(0.01) is True  # notifications may have been missed while it was down
