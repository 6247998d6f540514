"""Issue 16: the bridge stays bounded under abuse (weak spots 1, 3 and 4; 2 is test_bounds_backlog.py).

1. Future skew: a reading stamped in the year 3000 is dead-lettered (reason names the time and the
   limit), not stored; ``twin bridge inspect`` leaves readings flagged ``clock_skew`` out of a stream's
   latest time and age, so a silent stream is reported stale.
3. Payload size: an oversized payload is dead-lettered before parsing, keeping its size, SHA-256 and
   first 1 KiB; 148 messages of 2 MB (the issue's case, which made a 290 MB store) leave a store of
   well under 1 MB. The broker started from the shipped configuration (``hardware_bridge.broker.CONFIG``)
   refuses an over-limit publish.
4. Lateness: one reading 3 h ahead of its stream (sent twice) does not mark the next 3 h of in-order
   readings late; a genuinely late reading still is.
"""

from __future__ import annotations

import hashlib
import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from hardware_bridge.ingest import Ingestor
from hardware_bridge.sources.mqtt import MqttPublisher
from hardware_bridge.validate import KEEP_BYTES, MAX_PAYLOAD_BYTES
from twin.cli import main
from twin.errors import ValidationError
from twin.store import Store

T0 = datetime(2026, 12, 4, 12, tzinfo=UTC)


def obs(t: datetime, seq: int = 0, station: str = "WL-1", value: float = 1.0) -> tuple[str, bytes]:
    return (f"sz/v1/water_level/{station}/obs",
            json.dumps({"datastream": f"{station}/water_level", "phenomenonTime": t.isoformat(),
                        "result": value, "unit": "m", "seq": seq}).encode())


@pytest.fixture
def store(tmp_path):
    with Store.open(tmp_path / "store") as s:
        yield s


def store_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in Path(root).iterdir() if p.is_file())


# ------------------------------------------------------------------ 1. future skew
def test_year_3000_reading_is_dead_lettered_naming_the_time_and_the_limit(store):
    ing = Ingestor(store, seed_from_store=False)
    r = ing.handle(*obs(datetime(3000, 1, 1, tzinfo=UTC)), T0)
    assert r.status == "rejected" and r.ack
    assert "3000-01-01T00:00:00+00:00" in r.reason and "maximum future skew of 86400 s" in r.reason
    assert store.count_observations() == 0
    (dl,) = store.dead_letters()
    assert dl.payload == obs(datetime(3000, 1, 1, tzinfo=UTC))[1]  # small: kept whole
    # within the maximum skew: stored, flagged clock_skew as before
    r = ing.handle(*obs(T0 + timedelta(hours=2)), T0)
    assert (r.status, r.skewed) == ("stored", 1)
    assert store.observations("WL-1/water_level")[0].raw["flags"] == ["clock_skew"]


def test_max_future_skew_is_configurable_and_checked(store):
    ing = Ingestor(store, max_future_skew_s=3600, seed_from_store=False)
    assert ing.handle(*obs(T0 + timedelta(minutes=59)), T0).status == "stored"
    r = ing.handle(*obs(T0 + timedelta(minutes=61), seq=1), T0)
    assert r.status == "rejected" and "3600 s" in r.reason
    with pytest.raises(ValidationError, match="max_future_skew_s"):
        Ingestor(store, max_future_skew_s=1, skew_tolerance_s=5)
    # a batch: the row that is too far ahead is named
    doc = {"datastream": "WL-2/water_level", "unit": "m", "components": ["phenomenonTime", "result"],
           "dataArray": [[T0.isoformat(), 1.0], [(T0 + timedelta(days=2)).isoformat(), 1.0]]}
    r = ing.handle("sz/v1/water_level/WL-2/obs", json.dumps(doc).encode(), T0)
    assert r.status == "rejected" and "dataArray[1].phenomenonTime" in r.reason
    help_text = CliRunner().invoke(main, ["bridge", "run", "--help"]).output
    assert "--max-future-skew-s" in help_text and "--max-payload-bytes" in help_text
    assert "--max-unacked" in help_text


def test_inspect_ignores_future_flagged_readings_for_latest_time_and_stale(tmp_path):
    root = tmp_path / "store"
    with Store.open(root) as st:
        ing = Ingestor(st, seed_from_store=False)
        for k in range(5):  # on time, the last at T0
            t = T0 - timedelta(minutes=10 * (4 - k))
            ing.handle(*obs(t, seq=k), t)
        ing.handle(*obs(datetime(3000, 1, 1, tzinfo=UTC), seq=9), T0)  # the reading
        ing.handle(*obs(T0 + timedelta(hours=12), seq=10, value=7.0), T0)  # within the skew: stored, flagged
    now = (T0 + timedelta(hours=1)).isoformat()
    r = CliRunner().invoke(main, ["bridge", "inspect", "--store", str(root), "--json", "--now", now])
    assert r.exit_code == 0, r.output
    rep = json.loads(r.output)
    (s,) = rep["streams"]
    assert s["count"] == 6 and s["clock_skew"] == 1
    assert s["last"].startswith(T0.isoformat()[:19])  # not year 3000, not +12 h
    assert s["age_s"] == pytest.approx(3600.0)
    assert s["stale"] and rep["stale"] == ["WL-1/water_level"]  # silent 1 h > 900 s
    assert s["latest_si"] == pytest.approx(1.0)  # the on-time value, not the future one (7.0)
    assert rep["dead_letters"]["count"] == 1
    table = CliRunner().invoke(main, ["bridge", "inspect", "--store", str(root), "--now", now])
    assert table.exit_code == 0 and "STALE" in table.output


# ------------------------------------------------------------------ 3. payload size
def test_148_messages_of_2_mb_leave_a_small_store(store):
    """Issue 16: 148 messages of 2 MB made a 290 MB store. Now each keeps its size, digest and 1 KiB."""
    ing = Ingestor(store, seed_from_store=False)
    size = 2_000_000
    digests = []
    for b in range(0, 148, 8):
        msgs = []
        for i in range(b, min(b + 8, 148)):
            head = b'{"datastream": "WL-%03d/water_level", "pad": "' % i
            payload = head + b"x" * (size - len(head) - 2) + b'"}'
            digests.append(hashlib.sha256(payload).hexdigest())
            msgs.append((f"sz/v1/water_level/WL-{i:03d}/obs", payload, T0))
        res = ing.handle_many(msgs)
        assert all(r.status == "rejected" for r in res)
    dls = store.dead_letters()
    assert len(dls) == 148
    for dl, digest in zip(dls, digests, strict=True):
        assert len(dl.payload) == KEEP_BYTES and dl.payload.startswith(b'{"datastream": "WL-')
        assert f"payload of {size} bytes exceeds the limit of {MAX_PAYLOAD_BYTES} bytes" in dl.reason
        assert f"sha256 {digest}" in dl.reason
    nbytes = store_bytes(store.root)
    print(f"store after 148 x 2 MB oversized messages: {nbytes / 1e6:.2f} MB")
    assert nbytes < 2_000_000, f"store is {nbytes / 1e6:.1f} MB"


def test_payload_limit_is_configurable_and_applies_before_parsing(store):
    ing = Ingestor(store, max_payload_bytes=100, seed_from_store=False)
    topic, payload = obs(T0)
    assert len(payload) > 100
    r = ing.handle(topic, payload, T0)
    assert r.status == "rejected" and "exceeds the limit of 100 bytes" in r.reason
    # not even decoded: invalid UTF-8 past the limit is reported as oversized, not as bad UTF-8
    r = ing.handle(topic, b"\xff" * 5000, T0)
    assert "exceeds the limit of 100 bytes" in r.reason
    assert Ingestor(store, seed_from_store=False).handle(topic, payload, T0).status == "stored"


def test_shipped_broker_config_refuses_an_over_limit_publish(mosquitto):
    """The broker of the shipped configuration (``LocalBroker`` writes ``broker.CONFIG``) never forwards
    a 2 MB publish: it tells MQTT 5 clients its 1 MiB limit and disconnects a client that sends more."""
    import paho.mqtt.client as mqtt

    conf = mosquitto.conf.read_text()
    for key in ("max_packet_size 1048576", "max_queued_messages 500000", "max_inflight_messages 1000",
                "max_queued_bytes 268435456"):
        assert key in conf

    def client(**cb):  # noqa: ANN202
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        for k, f in cb.items():
            setattr(c, k, f)
        c.connect(mosquitto.host, mosquitto.port)
        c.loop_start()
        return c

    got: list[int] = []
    sub_ok, arrived, dropped, acked = (threading.Event() for _ in range(4))
    limits: list[int] = []
    reasons: list[str] = []
    sub = client(on_subscribe=lambda *a: sub_ok.set(),
                 on_message=lambda c, u, m: (got.append(len(m.payload)), arrived.set()))
    bad = client(on_connect=lambda c, u, f, rc, p: limits.append(getattr(p, "MaximumPacketSize", None)),
                 on_disconnect=lambda c, u, f, rc, p: (reasons.append(str(rc)), dropped.set()))
    good = client(on_publish=lambda *a: acked.set())
    try:
        sub.subscribe("sz/v1/#", qos=1)
        assert sub_ok.wait(10)
        bad.publish("sz/v1/water_level/WL-1/obs", b"x" * 2_000_000, qos=1)
        assert dropped.wait(10)
        bad.loop_stop()  # paho would reconnect and resend it for ever
        good.publish("sz/v1/water_level/WL-1/obs", b"y" * 1000, qos=1)
        assert acked.wait(10) and arrived.wait(10)
    finally:
        for c in (bad, good, sub):
            c.loop_stop()
            c.disconnect()
    assert limits[0] == 1_048_576  # told in the CONNACK
    assert reasons  # disconnected ("Packet too large"; "Unspecified error" when the socket closes first)
    assert got == [1000]  # the 2 MB message was never forwarded
    # the project's publisher reads the limit from the CONNACK and refuses instead of looping on reconnects
    with MqttPublisher(mosquitto.host, mosquitto.port) as pub:
        assert pub.max_packet_size == 1_048_576
        with pytest.raises(ValidationError, match="maximum packet size of 1048576"):
            pub.publish("sz/v1/water_level/WL-1/obs", b"x" * 2_000_000)
        pub.publish("sz/v1/water_level/WL-1/obs", b"y" * 1000)


# ------------------------------------------------------------------ 4. lateness
def test_one_reading_3h_ahead_does_not_make_the_next_3h_late(store):
    ing = Ingestor(store, watermark_s=300, seed_from_store=False)
    arrival = T0 + timedelta(hours=8)  # a backlog draining: arrivals after every event time (no clock skew)
    step = timedelta(minutes=1)
    t = T0
    for k in range(30):  # an established stream
        assert ing.handle(*obs(t, seq=k), arrival).late == 0
        t += step
    early = t + timedelta(hours=3)
    for _ in range(2):  # the early reading, and its redelivery (a duplicate)
        ing.handle(*obs(early, seq=999), arrival)
    late = [ing.handle(*obs(t + k * step, seq=100 + k), arrival).late for k in range(180)]
    assert sum(late) == 0, f"{sum(late)} of 180 in-order readings flagged late"
    newest = t + 179 * step
    # a genuinely late reading (20 min behind, watermark 5 min) is still flagged
    r = ing.handle(*obs(newest - timedelta(minutes=20), seq=5000), arrival)
    assert (r.status, r.late) == ("stored", 1)
    # within the watermark: out of order, not late
    assert ing.handle(*obs(newest - timedelta(minutes=4), seq=5001), arrival).late == 0
    flagged = [o for o in store.observations("WL-1/water_level") if "late" in (o.raw or {}).get("flags", [])]
    assert [o.seq for o in flagged] == [5000]


def test_readings_that_agree_move_the_watermark(store):
    """Three distinct readings 3 h ahead (watermark_k = 3) are a genuine jump: older ones become late."""
    ing = Ingestor(store, watermark_s=300, seed_from_store=False)
    arrival = T0 + timedelta(hours=8)
    for k in range(10):
        ing.handle(*obs(T0 + timedelta(minutes=k), seq=k), arrival)
    jump = T0 + timedelta(hours=3)
    for k in range(3):
        ing.handle(*obs(jump + timedelta(minutes=k), seq=100 + k), arrival)
    assert ing.handle(*obs(T0 + timedelta(minutes=10), seq=10), arrival).late == 1
