"""The sensor bridge's write path (hardware_bridge.ingest.Ingestor) on both store backends: exactly once, dead letters.

The bridge is not this slice's: these tests only check that the store it writes through keeps its promises on
PostgreSQL as on SQLite (group commit, duplicates flagged, malformed messages kept with their bytes).
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

from hardware_bridge.ingest import Ingestor, handle_all
from twin.store import Store, dead_letter_digest

T0 = datetime(2026, 6, 1, tzinfo=UTC)


def _msg(station: str, k: int, value: float) -> tuple[str, bytes, datetime]:
    when = T0 + timedelta(seconds=10 * k)
    doc = {"datastream": f"{station}/rain_gauge", "phenomenonTime": when.isoformat(), "result": value,
           "unit": "mm", "seq": 0}
    return f"sz/v1/rain_gauge/{station}/obs", json.dumps(doc).encode(), when


def test_a_shuffled_redelivered_mix_is_stored_exactly_once(tmp_path, store_at):
    rng = random.Random(16)
    good = [_msg(f"S{s}", k, float(k % 7)) for s in range(20) for k in range(100)]
    bad = [("sz/v1/rain_gauge/S0/obs", b"{not json", T0), ("sz/v1/rain_gauge/S1/obs", b"\xff\xfe", T0)]
    mix = good + rng.sample(good, 500) + bad * 3  # at-least-once: 500 repeats, each bad message thrice
    rng.shuffle(mix)
    with Store.open(store_at(tmp_path / "s")) as store:
        ing = Ingestor(store, watermark_s=3600, stale_after_s=3600, skew_tolerance_s=5)
        results = handle_all(ing, mix, batch=250)
        assert sum(r.stored for r in results) == len(good) == store.count_observations()
        assert all(r.ack for r in results)
        assert store.count_dead_letters() == 2 and store.count_dead_letters(hits=True) == 6
        assert store.dead_letters(topic="sz/v1/rain_gauge/S1/obs")[0].payload == b"\xff\xfe"
        latest = store.latest_values()
        assert len(latest.datastream_ids) == 20 and set(latest.phenomenon_times) == {
            (T0 + timedelta(seconds=990)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")}


def test_oversized_messages_alike_in_their_first_kib_stay_two_dead_letters(tmp_path, store_at):
    """The bridge keeps an oversized message's first KiB and names it by the whole payload's digest (issue 16):
    two large messages that start alike are two dead letters, and a redelivery of one is a hit, not a third."""
    topic = "sz/v1/rain_gauge/S0/obs"
    head = b'{"datastream": "S0/rain_gauge", "pad": "' + b"x" * 2000
    one, two = head + b'1"}', head + b'2"}'
    with Store.open(store_at(tmp_path / "s")) as store:
        ing = Ingestor(store, max_payload_bytes=1500)
        handle_all(ing, [(topic, one, T0), (topic, two, T0), (topic, one, T0)], batch=10)
        got = store.dead_letters()
        assert [(len(d.payload), d.hits) for d in got] == [(1024, 2), (1024, 1)]
        assert {d.digest for d in got} == {dead_letter_digest(topic, one), dead_letter_digest(topic, two)}
        assert "exceeds the limit of 1500 bytes" in got[0].reason
