"""Readings flagged ``clock_skew`` stay out of a stream's latest, the queries `twin bridge inspect` asks, and
dead letters identified by the caller's digest (issue 16; both backends through ``store_at``)."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from twin.errors import ValidationError
from twin.events import Event
from twin.store import (
    _SCHEMA_V1,
    _SCHEMA_V1_ADDITIONS,
    SCHEMA_VERSION,
    Observation,
    Store,
    _split_sql,
    dead_letter_digest,
)

T0 = datetime(2026, 3, 1, tzinfo=UTC)
SKEWED = {"flags": ["clock_skew"], "value": 9.0}  # as hardware_bridge.ingest stores a reading ahead of its arrival


def _ts(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _readings() -> list[Observation]:
    return [
        Observation("A/level", T0, 1.0, "m", raw={"value": 1.0}),
        Observation("A/level", T0 + timedelta(minutes=10), 2.0, "m", raw={"value": 2.0, "flags": ["late"]}),
        Observation("A/level", datetime(3000, 1, 1, tzinfo=UTC), 9.0, "m", raw=SKEWED),  # the year-3000 reading
        Observation("B/rain", T0 + timedelta(days=1), 5.0, "mm", raw=SKEWED),  # every reading flagged
        # the word in the device's own fields is not the bridge's flag
        Observation("C/gas", T0 + timedelta(minutes=3), 0.1, "1", raw={"note": "clock_skew", "flags": []}),
    ]


def test_clock_skew_readings_are_not_a_streams_latest(tmp_path, store_at):
    with Store.open(store_at(tmp_path / "s")) as store:
        store.put_observations(_readings())
        latest = {o.datastream_id: (o.phenomenon_time, o.value) for o in store.latest_observations()}
        assert latest == {"A/level": (_ts(T0 + timedelta(minutes=10)), 2.0),
                          "C/gas": (_ts(T0 + timedelta(minutes=3)), 0.1)}
        assert store.latest_times() == {"A/level": T0 + timedelta(minutes=10), "C/gas": T0 + timedelta(minutes=3)}
        assert store.latest_times(not_after=datetime(3001, 1, 1, tzinfo=UTC)) == store.latest_times()
        got = store.latest_values()
        assert (got.datastream_ids, got.values.tolist(), got.units) == (["A/level", "C/gas"], [2.0, 0.1], ["m", "1"])
        assert store.count_observations() == 5  # stored all the same (audit), only not "latest"


def test_stream_stats_count_every_reading_and_time_the_unflagged(tmp_path, store_at):
    with Store.open(store_at(tmp_path / "s")) as store:
        store.put_observations(_readings())
        got = {s.datastream_id: s for s in store.stream_stats()}
    assert list(got) == ["A/level", "B/rain", "C/gas"]
    a = got["A/level"]
    assert (a.count, a.first, a.last, a.clock_skew) == (3, _ts(T0), _ts(T0 + timedelta(minutes=10)), 1)
    assert a.last_result_time is not None
    b = got["B/rain"]
    assert (b.count, b.last, b.last_result_time, b.clock_skew) == (1, None, None, 1)
    assert got["C/gas"].clock_skew == 0


def test_live_event_counts_and_the_newest_alerts(tmp_path, store_at):
    with Store.open(store_at(tmp_path / "s")) as store:
        assert store.event_severity_counts() == {"info": 0, "advisory": 0, "warning": 0, "alarm": 0}
        for i, sev in enumerate(["info", "warning", "alarm", "advisory", "warning"]):
            store.put_event(Event(time_s=float(i), kind="threshold_crossed", source="A/level", severity=sev,
                                  message=f"m{i}"))
        assert store.event_severity_counts() == {"info": 1, "advisory": 1, "warning": 2, "alarm": 1}
        assert [e.message for e in store.recent_events("warning", 2)] == ["m4", "m2"]
        assert [e.message for e in store.recent_events("advisory", 10)] == ["m4", "m3", "m2", "m1"]
        assert store.recent_events("info", 0) == []


def test_an_oversized_dead_letter_is_identified_by_the_whole_payloads_digest(tmp_path, store_at):
    head = b"x" * 1024  # what the bridge keeps of an oversized message: its first KiB
    one, two = head + b"1" * 5000, head + b"2" * 5000
    with Store.open(store_at(tmp_path / "s")) as store:
        assert store.put_dead_letter("t/x", head, "too large", T0, digest=dead_letter_digest("t/x", one)) is True
        assert store.put_dead_letter("t/x", head, "too large", T0, digest=dead_letter_digest("t/x", two)) is True
        store.put_ingested([], [("t/x", head, "too large", T0, "mqtt", dead_letter_digest("t/x", one))])
        assert [d.hits for d in store.dead_letters()] == [2, 1]
        assert store.dead_letters()[0].digest == dead_letter_digest("t/x", one)
        assert store.put_dead_letter("t/x", head, "bad", T0) is True  # default: the kept bytes' digest
        with pytest.raises(ValidationError, match="digest='nope' must be 64 lower-case hex"):
            store.put_dead_letter("t/x", head, "bad", T0, digest="nope")


def _v1_with_a_skewed_reading(target: str | Path) -> None:
    """A store as schema version 1 wrote it, holding an in-time and a year-3000 reading of one stream."""
    rows = [("A/level", _ts(T0), 1.0, json.dumps({"value": 1.0})),
            ("A/level", "3000-01-01T00:00:00.000000Z", 9.0, json.dumps(SKEWED, sort_keys=True))]
    insert = ("INSERT INTO observations (datastream_id, phenomenon_time, result_time, seq, value, unit, raw) "
              "VALUES ({p}, {p}, {p}, 0, {p}, 'm', {p})")
    if isinstance(target, Path):
        target.mkdir(parents=True)
        con = sqlite3.connect(target / "twin.sqlite")
        for stmt in _split_sql(_SCHEMA_V1 + _SCHEMA_V1_ADDITIONS):
            con.execute(stmt)
        con.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        con.execute("INSERT INTO schema_version VALUES (1)")
        for ds, t, v, raw in rows:
            con.execute(insert.format(p="?"), (ds, t, t, v, raw))
        con.commit()
        con.close()
        return
    import psycopg

    from twin.store_pg import PG_MIGRATIONS, split_url

    with psycopg.connect(split_url(target)[0], autocommit=True) as con:
        con.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        con.execute("INSERT INTO schema_version VALUES (1)")
        for stmt in PG_MIGRATIONS[0]:
            con.execute(stmt)
        for ds, t, v, raw in rows:
            con.execute(insert.format(p="%s"), (ds, t, t, v, raw))


def test_an_old_store_migrates_to_version_4_and_drops_a_skewed_latest(tmp_path, store_at):
    target = store_at(tmp_path / "s")
    _v1_with_a_skewed_reading(target)
    with Store.open(target) as store:
        assert store.schema_version == SCHEMA_VERSION == 4
        assert store.latest_times() == {"A/level": T0}
        store.put_observation("A/level", T0 + timedelta(minutes=1), 2.0, "m")  # the new trigger keeps latest
        store.put_observation("A/level", T0 + timedelta(days=2), 8.0, "m", raw=SKEWED)
        assert store.latest_values().values.tolist() == [2.0] and store.latest_values().units == ["m"]
    with Store.open_readonly(target) as ro:
        assert ro.schema_version == 4 and ro.count_observations() == 4


def test_latest_up_to_an_id_looks_back_past_clock_skew_readings(tmp_path, store_at):
    with Store.open(store_at(tmp_path / "s")) as store:
        store.put_observation("A/level", T0, 1.0, "m")
        store.put_observation("A/level", T0 + timedelta(days=1), 9.0, "m", raw=SKEWED)
        top = store.last_observation_id()
        store.put_observation("A/level", T0 + timedelta(minutes=5), 2.0, "m")  # written after top
        (row,) = store.latest_observations(up_to_id=top)
        assert (row.phenomenon_time, row.value) == (_ts(T0), 1.0)
