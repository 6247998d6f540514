"""The Ingestor: exactly-once storage, dead letters, watermark, skew, staleness, backpressure.

Ends with a broker-less mini reliability run (20,000 messages fed straight to the
Ingestor); its throughput is printed, not asserted.
"""

from __future__ import annotations

import json
import random
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from hardware_bridge.ingest import QUEUE_FULL, Ingestor, handle_all
from twin.errors import StoreError
from twin.store import Store

T0 = datetime(2024, 6, 1, tzinfo=UTC)


def obs_msg(kind="rain_gauge", station="S1", t_s=0.0, value=1.0, unit="mm", seq=0, recv_s=None, **kw):
    doc = {"datastream": f"{station}/{kind}", "phenomenonTime": (T0 + timedelta(seconds=t_s)).isoformat(),
           "result": value, "unit": unit, "seq": seq}
    doc.update(kw)
    recv = T0 + timedelta(seconds=t_s if recv_s is None else recv_s)
    return f"sz/v1/{kind}/{station}/obs", json.dumps(doc).encode(), recv


@pytest.fixture
def store(tmp_path):
    with Store.open(tmp_path / "store") as s:
        yield s


@pytest.fixture
def alerts():
    return []


@pytest.fixture
def ing(store, alerts):
    return Ingestor(store, watermark_s=60, stale_after_s=120, skew_tolerance_s=5,
                    on_alert=alerts.append)


def test_valid_message_stored_durably_in_si_with_original(ing, store):
    r = ing.handle(*obs_msg(value=2.5, unit="mm", seq=3))
    assert (r.status, r.stored, r.ack, r.datastream_id) == ("stored", 1, True, "S1/rain_gauge")
    (o,) = store.observations("S1/rain_gauge")
    assert o.value == pytest.approx(0.0025) and o.unit == "m" and o.seq == 3
    assert o.raw["original"] == {"value": 2.5, "unit": "mm"}
    assert "flags" not in o.raw
    # durable: visible to another connection as soon as handle() returned
    with Store.open(store.root) as other:
        assert other.count_observations("S1/rain_gauge") == 1


def test_duplicates_stored_once_and_reported(ing, store):
    msg = obs_msg(t_s=10, value=1.0, seq=1)
    assert ing.handle(*msg).status == "stored"
    again = ing.handle(*msg)
    assert (again.status, again.stored, again.duplicates, again.ack) == ("duplicate", 0, 1, True)
    # same idempotency key, other value: still a duplicate, first value wins
    other = obs_msg(t_s=10, value=9.0, seq=1)
    assert ing.handle(*other).status == "duplicate"
    assert [o.value for o in store.observations("S1/rain_gauge")] == [pytest.approx(0.001)]
    # other seq at the same time is a new observation
    assert ing.handle(*obs_msg(t_s=10, value=2.0, seq=2)).status == "stored"
    s = ing.stats()["S1/rain_gauge"]
    assert (s.received, s.stored, s.duplicates) == (4, 2, 2)


def test_out_of_order_within_watermark_and_late_beyond(ing, store):
    assert ing.handle(*obs_msg(t_s=1000, seq=0)).late == 0
    r = ing.handle(*obs_msg(t_s=950, seq=0, recv_s=1001))  # 50 s behind, watermark 60 s
    assert (r.status, r.late) == ("stored", 0)
    r = ing.handle(*obs_msg(t_s=900, seq=0, recv_s=1002))  # 100 s behind: late, still stored
    assert (r.status, r.late) == ("stored", 1)
    rows = {o.phenomenon_time: o for o in store.observations("S1/rain_gauge")}
    assert len(rows) == 3
    assert rows[T0 + timedelta(seconds=900)].raw["flags"] == ["late"]
    assert "flags" not in rows[T0 + timedelta(seconds=950)].raw
    s = ing.stats()["S1/rain_gauge"]
    # the reference is the 2nd largest of 3 distinct times (k = min(3, ceil(3/2))): hardware_bridge.ingest
    assert (s.late, s.out_of_order, s.high) == (1, 2, T0 + timedelta(seconds=950))


def test_clock_skew_flagged_and_does_not_move_the_watermark(ing, store, alerts):
    ing.handle(*obs_msg(t_s=100))
    r = ing.handle(*obs_msg(t_s=3700, recv_s=101))  # an hour ahead of arrival
    assert (r.status, r.skewed) == ("stored", 1)
    ing.handle(*obs_msg(t_s=3800, recv_s=102))
    skew_alerts = [e for e in alerts if e.kind == "sensor_clock_skew"]
    assert len(skew_alerts) == 1 and skew_alerts[0].source == "S1/rain_gauge"
    # the skewed readings did not make an on-time reading late
    r = ing.handle(*obs_msg(t_s=103))
    assert (r.late, r.skewed) == (0, 0)
    flagged = [o for o in store.observations("S1/rain_gauge") if "flags" in o.raw]
    assert [o.raw["flags"] for o in flagged] == [["clock_skew"], ["clock_skew"]]
    # within the tolerance: not skewed
    assert ing.handle(*obs_msg(t_s=207, recv_s=203)).skewed == 0


def test_stale_streams_detected_with_alerts(ing, alerts):
    ing.handle(*obs_msg(station="A", t_s=0))
    ing.handle(*obs_msg(station="B", t_s=100))
    now = T0 + timedelta(seconds=150)
    assert [s.datastream_id for s in ing.stale_streams(now)] == ["A/rain_gauge"]
    stale = ing.check_stale(now)
    assert stale[0].silent_s == pytest.approx(150)
    ing.check_stale(now + timedelta(seconds=1))  # still stale: no second alert
    assert [e.kind for e in alerts] == ["sensor_stale"]
    ing.handle(*obs_msg(station="A", t_s=200))
    assert [e.kind for e in alerts] == ["sensor_stale", "sensor_recovered"]
    assert ing.stale_streams(T0 + timedelta(seconds=201)) == []


def test_dead_letter_keeps_raw_bytes_exactly(ing, store):
    raw = b'\x00\xff{"datastream": NaN}\r\n\xe4\xb8\xad'
    recv = T0 + timedelta(seconds=5)
    r = ing.handle("sz/v1/gas_h2s/MH1/obs", raw, recv)
    assert (r.status, r.ack, r.alarm) == ("rejected", True, True)
    assert "UTF-8" in r.reason
    (dl,) = store.dead_letters()
    assert dl.payload == raw and dl.topic == "sz/v1/gas_h2s/MH1/obs"
    assert dl.reason == r.reason and dl.received_at == recv and dl.hits == 1
    ing.handle("sz/v1/gas_h2s/MH1/obs", raw, recv + timedelta(seconds=1))  # redelivery
    (dl,) = store.dead_letters()
    assert dl.hits == 2 and dl.last_received_at == recv + timedelta(seconds=1)
    assert store.count_dead_letters() == 1 and store.count_dead_letters(hits=True) == 2
    assert ing.rejected_by_source() == {"MH1/gas_h2s": 2}


def test_batch_message_stores_every_row(ing, store):
    rows = [[(T0 + timedelta(seconds=10 * i)).isoformat(), 0.2, i] for i in range(500)]
    doc = {"datastream": "RG9/rain_gauge", "unit": "mm", "components": ["phenomenonTime", "result", "seq"],
           "dataArray": rows}
    msg = ("sz/v1/rain_gauge/RG9/obs", json.dumps(doc).encode(), T0 + timedelta(seconds=5000))
    r = ing.handle(*msg)
    assert (r.status, r.stored) == ("stored", 500)
    assert store.count_observations("RG9/rain_gauge") == 500
    r = ing.handle(*msg)
    assert (r.status, r.duplicates) == ("duplicate", 500)
    assert store.count_observations() == 500


def test_handle_many_returns_per_message_results(ing, store):
    msgs = [obs_msg(t_s=1), obs_msg(t_s=1), ("sz/v1/rain_gauge/S1/obs", b"{", T0),
            obs_msg(kind="heat", station="T1", value=30.0, unit="°C")]
    res = ing.handle_many(msgs)
    assert [r.status for r in res] == ["stored", "duplicate", "rejected", "stored"]
    assert store.count_observations() == 2 and store.count_dead_letters() == 1
    assert store.observations("T1/heat")[0].value == pytest.approx(303.15)


def test_status_messages_and_offline_alert(ing, store, alerts):
    topic = "sz/v1/gas_o2/MH2/status"
    ing.handle(topic, b'{"state": "online", "battery": 0.9, "time": "2024-06-01T00:00:00Z"}', T0)
    ing.handle(topic, b'{"state": "offline"}', T0 + timedelta(seconds=60))  # last will
    ing.handle(topic, b'{"state": "online", "time": "2024-06-01T00:02:00Z"}', T0 + timedelta(seconds=120))
    assert [e.kind for e in alerts] == ["sensor_offline", "sensor_online"]
    assert alerts[0].source == "MH2/gas_o2"
    assert ing.device_status()["MH2/gas_o2"]["state"] == "online"
    assert store.count_observations("MH2/gas_o2/status") == 3
    assert "MH2/gas_o2/status" not in ing.stats()  # statuses are not data streams


def test_backpressure_refuses_normal_but_never_an_alarm(store):
    ing = Ingestor(store, queue_size=3, batch_size=100)
    for i in range(3):
        assert ing.submit(*obs_msg(t_s=i), token=f"n{i}").accepted
    refused = ing.submit(*obs_msg(t_s=3), token="n3")
    assert not refused.accepted and refused.reason.startswith(QUEUE_FULL)
    for i in range(50):  # a full queue still takes every alarm
        sub = ing.submit(*obs_msg(kind="gas_h2s", station="MH1", t_s=i, value=12.0, unit="ppm"),
                         token=f"a{i}")
        assert sub.accepted and sub.alarm
    assert ing.pending() == 53
    done = ing.process_pending(max_batch=10)
    assert [tok for tok, _ in done] == [f"a{i}" for i in range(10)]  # alarms first
    while ing.process_pending():
        pass
    assert store.count_observations("MH1/gas_h2s") == 50
    assert store.count_observations("S1/rain_gauge") == 3
    assert ing.totals["refused"] == 1


def test_blocking_submit_waits_for_room(store):
    ing = Ingestor(store, queue_size=1)
    assert ing.submit(*obs_msg(t_s=0)).accepted
    out = {}
    th = threading.Thread(target=lambda: out.update(r=ing.submit(*obs_msg(t_s=1), timeout=30)))
    th.start()
    while ing.process_pending() or th.is_alive():
        th.join(0.01)
    ing.process_pending()
    assert out["r"].accepted
    assert store.count_observations() == 2


def test_worker_thread_commits_and_reports(store):
    ing = Ingestor(store, queue_size=50, batch_size=20)
    results = []
    ing.start(lambda tok, r: results.append((tok, r.status)))
    for i in range(200):
        while not ing.submit(*obs_msg(t_s=i), token=i, timeout=5).accepted:
            pass
    ing.stop()
    assert sorted(tok for tok, _ in results) == list(range(200))
    assert {s for _, s in results} == {"stored"}
    assert store.count_observations() == 200


def test_store_failure_means_retry_not_ack(tmp_path):
    st = Store.open(tmp_path / "s")
    ing = Ingestor(st)
    st.close()
    with pytest.raises(StoreError):
        ing.handle(*obs_msg())
    ing.submit(*obs_msg(), token="x")
    [(tok, r)] = ing.process_pending()
    assert tok == "x" and r.status == "retry" and not r.ack


def test_restart_seeds_watermark_and_staleness_from_store(store):
    Ingestor(store, watermark_s=60).handle(*obs_msg(t_s=1000))
    again = Ingestor(store, watermark_s=60, stale_after_s=120)
    assert again.handle(*obs_msg(t_s=900, recv_s=1010)).late == 1
    assert [s.datastream_id for s in again.stale_streams(T0 + timedelta(seconds=1200))] == [
        "S1/rain_gauge"
    ]


def test_on_stored_hook_gets_new_observations_only(store):
    seen = []
    ing = Ingestor(store, on_stored=seen.extend)
    ing.handle_many([obs_msg(t_s=1), obs_msg(t_s=1), obs_msg(t_s=2)])
    assert [o.phenomenon_time for o in seen] == [T0 + timedelta(seconds=1), T0 + timedelta(seconds=2)]


# --------------------------------------------------------- mini reliability
_KINDS = [("rain_gauge", "mm", 0.5), ("water_level", "cm", 150.0), ("gas_h2s", "ppm", 3.0),
          ("heat", "°C", 25.0), ("gas_o2", "%", 20.9)]


def _malformed(i: int, rng: random.Random) -> tuple[str, bytes, str]:
    """(topic, payload, expected reason fragment) of the i-th malformed message (all distinct)."""
    kind, unit, v = _KINDS[i % len(_KINDS)]
    st = f"X{i}"
    t = (T0 + timedelta(seconds=i)).isoformat()
    good = {"datastream": f"{st}/{kind}", "phenomenonTime": t, "result": v, "unit": unit, "seq": i}
    topic = f"sz/v1/{kind}/{st}/obs"
    case = i % 8
    if case == 0:
        return topic, json.dumps(good).encode()[: -1 - rng.randrange(5)], "not valid JSON"
    if case == 1:
        doc = dict(good)
        del doc[rng.choice(["datastream", "phenomenonTime", "result"])]
        return topic, json.dumps(doc).encode(), "is missing"
    if case == 2:
        return topic, json.dumps({**good, "result": "__NAN__"}).encode().replace(b'"__NAN__"', b"NaN"), "NaN"
    if case == 3:
        return topic, json.dumps({**good, "unit": "furlong" if kind == "heat" else "°F"}).encode(), "'unit'"
    if case == 4:
        return topic, json.dumps({**good, "phenomenonTime": t[:-6]}).encode(), "naive"
    if case == 5:
        return topic, json.dumps({**good, "result": -1e6}).encode(), "plausible range"
    if case == 6:
        return f"sz/v1/seismometer/{st}/obs", json.dumps(good).encode(), "unknown kind"
    return f"sz/v1/{kind}/Y{i}/obs", json.dumps(good).encode(), "does not belong"


def test_mini_reliability_20000_messages(store):
    rng = random.Random(20240601)
    n = 20_000
    n_bad, n_dup, n_ooo = n // 10, n // 20, n // 20
    n_good = n - n_bad - n_dup
    now = T0 + timedelta(days=1)
    good = []
    for i in range(n_good):
        kind, unit, v = _KINDS[i % len(_KINDS)]
        st = f"S{i % 40}"
        doc = {"datastream": f"{st}/{kind}", "phenomenonTime": (T0 + timedelta(seconds=i)).isoformat(),
               "result": v + rng.random(), "unit": unit, "seq": i}
        good.append((f"sz/v1/{kind}/{st}/obs", json.dumps(doc).encode(), now))
    # 5 % out of order: swap a message with one up to 300 positions earlier
    for _ in range(n_ooo // 2):
        a = rng.randrange(300, n_good)
        b = a - rng.randrange(1, 300)
        good[a], good[b] = good[b], good[a]
    msgs = list(good)
    # 5 % duplicates: redeliver an earlier message later
    for _ in range(n_dup):
        k = rng.randrange(len(good))
        msgs.insert(rng.randrange(k + 1, len(msgs) + 1), good[k])
    bad = [_malformed(i, rng) for i in range(n_bad)]
    for topic, raw, _ in bad:
        msgs.insert(rng.randrange(len(msgs) + 1), (topic, raw, now))
    assert len(msgs) == n

    ing = Ingestor(store, watermark_s=3600, seed_from_store=False)
    t = time.perf_counter()
    res = handle_all(ing, msgs, batch=250)
    dt = time.perf_counter() - t
    print(f"\nmini reliability: {n} messages in {dt:.2f} s = {n / dt:,.0f} msg/s "
          f"(group commit of 250, validation + durable storage)")

    statuses = [r.status for r in res]
    assert statuses.count("stored") == n_good
    assert statuses.count("duplicate") == n_dup
    assert statuses.count("rejected") == n_bad
    assert store.count_observations() == n_good  # exactly the valid unique ones
    dls = store.dead_letters()
    assert len(dls) == n_bad  # every bad one dead-lettered, once
    by_payload = {(d.topic, d.payload): d.reason for d in dls}
    for topic, raw, fragment in bad:
        assert fragment in by_payload[(topic, raw)], (fragment, by_payload[(topic, raw)])
    assert sum(r.late for r in res) == 0  # all swaps within the watermark

    # single-observation throughput of the per-message commit path, for reference
    few = [obs_msg(station="Z", t_s=i) for i in range(100)]
    t = time.perf_counter()
    for m in few:
        ing.handle(*m)
    dt1 = time.perf_counter() - t
    print(f"per-message commit (one fsync each): {100 / dt1:,.0f} msg/s")


def test_fuzz_every_input_stored_or_dead_lettered(tmp_path_factory):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    store = Store.open(tmp_path_factory.mktemp("fuzz") / "s")
    ing = Ingestor(store, seed_from_store=False)
    valid = [obs_msg(t_s=i)[1] for i in range(5)]

    @settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        topic=st.sampled_from(["sz/v1/rain_gauge/S1/obs", "sz/v1/heat/S1/status", "bad/topic"]),
        raw=st.one_of(st.binary(max_size=200), st.sampled_from(valid)),
    )
    def run(topic, raw):
        n_obs, n_dl = store.count_observations(), store.count_dead_letters(hits=True)
        r = ing.handle(topic, raw, T0)
        assert r.status in ("stored", "duplicate", "rejected")
        if r.status == "rejected":
            assert r.reason
            assert store.count_dead_letters(hits=True) == n_dl + 1
            assert any(d.payload == raw and d.topic == topic for d in store.dead_letters())
        else:
            assert store.count_observations() == n_obs + r.stored

    try:
        run()
    finally:
        store.close()
