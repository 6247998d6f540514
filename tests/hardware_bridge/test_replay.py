"""Replay of recorded feeds (JSON lines, CSV): order, count, dead letters, pacing schedule."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import pytest

from hardware_bridge.ingest import Ingestor
from hardware_bridge.sources.replay import read_csv, read_jsonl, read_records, replay
from twin.errors import DataMissingError, ValidationError
from twin.store import Store

T0 = datetime(2024, 6, 1, 8, tzinfo=UTC)


def _obs(i: int, station: str = "RG-1", dt_s: float = 60.0) -> dict:
    return {"datastream": f"{station}/rain_gauge",
            "phenomenonTime": (T0 + timedelta(seconds=dt_s * i)).isoformat(),
            "result": 0.5 * i, "unit": "mm", "seq": i}


class FakeClock:
    """Deterministic clock: ``sleep`` advances it; records every sleep."""

    def __init__(self) -> None:
        self.t = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.t += s


def _write_jsonl(path, lines) -> None:
    path.write_bytes(b"\n".join(x if isinstance(x, bytes) else json.dumps(x).encode()
                                for x in lines) + b"\n")


def test_jsonl_replay_into_the_ingestor_keeps_order_count_and_dead_letters(tmp_path):
    f = tmp_path / "feed.jsonl"
    lines = [_obs(i) for i in range(20)]
    lines.insert(5, b"{this is not json")
    lines.insert(9, {"topic": "sz/v1/rain_gauge/RG-1/obs", "payload": _obs(3)})  # re-send
    lines.insert(12, {**_obs(99), "phenomenonTime": "2024-06-01T08:00:00"})  # naive time
    lines.insert(14, b"")  # blank: skipped
    _write_jsonl(f, lines)
    recs = list(read_jsonl(f))
    assert len(recs) == 23
    with Store.open(tmp_path / "s") as store:
        ing = Ingestor(store, source="replay")
        stats = replay(recs, ing, speed=math.inf, batch_max=7, keep_results=True)
        assert stats.records == 23 and stats.batches == 4  # 7 + 7 + 7 + 2
        assert [r.status for r in stats.results].count("stored") == 20
        assert [r.status for r in stats.results].count("duplicate") == 1
        assert [r.status for r in stats.results].count("rejected") == 2
        rows = store.observations("RG-1/rain_gauge")
        assert [o.seq for o in rows] == list(range(20))
        assert rows[4].value == pytest.approx(0.002)  # 2 mm in SI metres
        dead = store.dead_letters()
        assert {d.payload for d in dead} == {
            b"{this is not json", json.dumps({**_obs(99), "phenomenonTime": "2024-06-01T08:00:00"}).encode()}
        assert all(d.reason for d in dead)
        assert any("timezone" in d.reason for d in dead)


def test_replay_delivers_in_file_order_even_out_of_order_times(tmp_path):
    f = tmp_path / "feed.jsonl"
    order = [0, 1, 3, 2, 4, 6, 5, 7]
    _write_jsonl(f, [_obs(i) for i in order])
    got = []
    clock = FakeClock()
    replay(read_jsonl(f), lambda batch: got.extend(batch), speed=60.0, clock=clock,
           sleep=clock.sleep)
    assert [json.loads(r.payload)["seq"] for r in got] == order


def test_pacing_schedule_follows_the_speed_factor(tmp_path):
    """Record k is released at (t_k - t_0) / speed of (fake) wall time."""
    f = tmp_path / "feed.jsonl"
    _write_jsonl(f, [_obs(i, dt_s=120.0) for i in range(10)])
    clock = FakeClock()
    released = []
    stats = replay(read_jsonl(f), lambda b: released.extend((clock.t - 100.0, r) for r in b),
                   speed=60.0, clock=clock, sleep=clock.sleep)
    assert [t for t, _ in released] == pytest.approx([2.0 * k for k in range(10)])
    assert stats.span_s == 1080.0 and stats.achieved_speed == pytest.approx(60.0)
    # as fast as possible: no sleeping at all, one batch
    clock2 = FakeClock()
    s2 = replay(read_jsonl(f), lambda b: None, speed=0, clock=clock2, sleep=clock2.sleep)
    assert clock2.sleeps == [] and s2.batches == 1


def test_real_clock_replay_is_roughly_paced(tmp_path):
    """Loose check only (no timing assert on the speed): 10 records 0.5 s apart at speed 10."""
    f = tmp_path / "feed.jsonl"
    _write_jsonl(f, [_obs(i, dt_s=0.5) for i in range(10)])
    got = []
    stats = replay(read_jsonl(f), lambda b: got.extend(b), speed=10.0)
    assert len(got) == 10 and stats.span_s == pytest.approx(4.5)
    assert stats.wall_s >= 0.45 * 0.9  # it did wait; an upper bound would be a timed test


def test_envelope_received_at_is_kept_and_drives_the_clock(tmp_path):
    f = tmp_path / "feed.jsonl"
    rec = {"topic": "sz/v1/rain_gauge/RG-1/obs", "payload": json.dumps(_obs(0)),
           "received_at": "2024-06-01T16:00:05+08:00"}
    _write_jsonl(f, [rec])
    (r,) = read_jsonl(f)
    assert r.received_at == datetime(2024, 6, 1, 8, 0, 5, tzinfo=UTC) == r.time
    assert json.loads(r.payload) == _obs(0)
    with Store.open(tmp_path / "s") as store:
        (res,) = replay([r], Ingestor(store), speed=math.inf, keep_results=True).results
        assert res.status == "stored"


def test_csv_replay(tmp_path):
    f = tmp_path / "feed.csv"
    f.write_text(
        "datastream,phenomenonTime,result,unit,seq\n"
        "WL-9/water_level,2024-06-01T08:00:00+08:00,123,cm,0\n"
        "WL-9/water_level,2024-06-01T08:05:00+08:00,1.25,m,1\n"
        "WL-9/water_level,2024-06-01T08:10:00+08:00,n/a,m,2\n"
        "WL-9/water_level,2024-06-01T08:15:00+08:00,NaN,m,3\n"
    )
    recs = list(read_records(f))
    assert [r.topic for r in recs] == ["sz/v1/water_level/WL-9/obs"] * 4
    with Store.open(tmp_path / "s") as store:
        stats = replay(recs, Ingestor(store), speed=math.inf, keep_results=True)
        assert [r.status for r in stats.results] == ["stored", "stored", "rejected", "rejected"]
        vals = [o.value for o in store.observations("WL-9/water_level")]
        assert vals == pytest.approx([1.23, 1.25])
        assert store.count_dead_letters() == 2


def test_bad_files_are_named(tmp_path):
    f = tmp_path / "x.csv"
    f.write_text("datastream,when,result\n")
    with pytest.raises(ValidationError, match="lacks.*phenomenonTime.*unknown columns.*when"):
        list(read_csv(f))
    with pytest.raises(DataMissingError):
        read_records(tmp_path / "missing.jsonl")
    (tmp_path / "x.parquet").write_text("")
    with pytest.raises(ValidationError, match="format"):
        read_records(tmp_path / "x.parquet")
    with pytest.raises(ValidationError, match="speed"):
        replay([], lambda b: None, speed=-1)
