"""MQTT source against a real mosquitto: stored after commit, acked after commit, windowed."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from hardware_bridge.ingest import Ingestor
from hardware_bridge.sources.mqtt import MqttConfig, MqttPublisher, MqttSource, parse_broker
from twin.errors import ConfigError, FetchError, StoreError
from twin.store import Store

T0 = datetime(2024, 6, 1, tzinfo=UTC)
TOPIC = "sz/v1/water_level/WL-1/obs"


def obs(i: int, station: str = "WL-1") -> bytes:
    t = (T0 + timedelta(seconds=60 * i)).isoformat()
    return json.dumps({"datastream": f"{station}/water_level", "phenomenonTime": t,
                       "result": 1.0 + i * 1e-3, "unit": "m", "seq": i}).encode()


def wait_for(cond, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_parse_broker():
    assert parse_broker("127.0.0.1:1884") == ("127.0.0.1", 1884)
    assert parse_broker("mqtt://broker.local:1883") == ("broker.local", 1883)
    assert parse_broker("broker") == ("broker", 1883)
    for bad in ("host:x", "host:0", "ws://h:1", ":1883"):
        with pytest.raises(ConfigError):
            parse_broker(bad)


def test_config_checks():
    with pytest.raises(ConfigError, match="shared_group"):
        MqttConfig(shared_group="a/b").check()
    with pytest.raises(ConfigError, match="receive_maximum"):
        MqttConfig(receive_maximum=0).check()
    assert MqttConfig(topics=("a/#",), shared_group="twin").filters() == ["$share/twin/a/#"]


def test_messages_are_stored_once_and_acked_after_commit(mosquitto, tmp_path):
    store = Store.open(tmp_path / "s")
    ing = Ingestor(store)
    src = MqttSource(MqttConfig(port=mosquitto.port, client_id="t-store"), ing).start()
    try:
        src.wait_subscribed()
        with MqttPublisher(mosquitto.host, mosquitto.port) as pub:
            for i in range(300):
                pub.publish(TOPIC, obs(i))
            for i in range(50):  # re-sends: at-least-once in
                pub.publish(TOPIC, obs(i))
            pub.publish(TOPIC, b"{not json")
        wait_for(lambda: src.stats.acked == 351, what="351 acks")
    finally:
        src.stop()
    assert store.count_observations("WL-1/water_level") == 300
    assert src.stats.results == {"stored": 300, "duplicate": 50, "rejected": 1}
    dl = store.dead_letters()
    assert [d.payload for d in dl] == [b"{not json"] and dl[0].topic == TOPIC
    assert src.stats.received == 351 and src.stats.not_acked_stale == 0
    store.close()


class FailingSink:
    """Raises StoreError for the first ``fail`` calls (a store that is locked / full)."""

    def __init__(self, ingestor, fail: int) -> None:
        self.ingestor, self.fail, self.calls = ingestor, fail, 0

    def handle_many(self, messages):
        self.calls += 1
        if self.calls <= self.fail:
            raise StoreError("disk full (simulated)")
        return self.ingestor.handle_many([(m.topic, m.payload, m.received_at) for m in messages])


def test_store_failure_retries_and_never_acks_before_commit(mosquitto, tmp_path):
    store = Store.open(tmp_path / "s")
    sink = FailingSink(Ingestor(store), fail=3)
    src = MqttSource(MqttConfig(port=mosquitto.port, client_id="t-fail"), sink).start()
    try:
        src.wait_subscribed()
        with MqttPublisher(mosquitto.host, mosquitto.port) as pub:
            for i in range(100):
                pub.publish(TOPIC, obs(i))
        wait_for(lambda: src.stats.acked == 100, what="100 acks")
    finally:
        src.stop()
    assert src.stats.sink_errors == 3
    assert store.count_observations() == 100
    store.close()


def test_unacked_messages_are_redelivered_to_the_next_session(mosquitto, tmp_path):
    """A bridge whose store never commits acks nothing; the broker keeps the messages
    (persistent session) and gives them to the next bridge with the same client id."""
    store = Store.open(tmp_path / "s")
    broken = FailingSink(Ingestor(store), fail=10**9)
    src = MqttSource(MqttConfig(port=mosquitto.port, client_id="t-redeliver",
                                receive_maximum=100), broken).start()
    src.wait_subscribed()
    with MqttPublisher(mosquitto.host, mosquitto.port) as pub:
        for i in range(250):
            pub.publish(TOPIC, obs(i))
    wait_for(lambda: src.stats.received >= 100, what="first window")
    src.stop(drain_s=0.0)
    assert src.stats.acked == 0 and store.count_observations() == 0
    src2 = MqttSource(MqttConfig(port=mosquitto.port, client_id="t-redeliver"),
                      Ingestor(store)).start()
    try:
        wait_for(lambda: store.count_observations() == 250, what="all 250 stored")
    finally:
        src2.stop()
    assert store.count_observations() == 250
    store.close()


def test_receive_maximum_bounds_what_is_in_flight(mosquitto, tmp_path):
    gate = threading.Event()
    seen = []

    def slow(messages):
        gate.wait(30)
        seen.extend(messages)
        return [None] * len(messages)

    src = MqttSource(MqttConfig(port=mosquitto.port, client_id="t-window", receive_maximum=20,
                                batch_max=5), slow).start()
    try:
        src.wait_subscribed()
        with MqttPublisher(mosquitto.host, mosquitto.port) as pub:
            for i in range(200):
                pub.publish(TOPIC, obs(i))
        time.sleep(0.5)  # give the broker time to overrun the window if it would
        assert src.stats.received <= 20
        gate.set()
        wait_for(lambda: len(seen) == 200, what="200 delivered")
    finally:
        gate.set()
        src.stop()
    assert [json.loads(m.payload)["seq"] for m in seen] == list(range(200))  # broker order kept


def test_shared_subscription_splits_the_stream(mosquitto, tmp_path):
    store = Store.open(tmp_path / "s")
    ing = Ingestor(store)
    lock = threading.Lock()

    def sink(messages):
        with lock:
            return ing.handle_many([(m.topic, m.payload, m.received_at) for m in messages])

    a = MqttSource(MqttConfig(port=mosquitto.port, client_id="t-a", shared_group="twin"), sink)
    b = MqttSource(MqttConfig(port=mosquitto.port, client_id="t-b", shared_group="twin"), sink)
    a.start(), b.start()
    try:
        a.wait_subscribed(), b.wait_subscribed()
        with MqttPublisher(mosquitto.host, mosquitto.port) as pub:
            for i in range(2000):
                pub.publish(f"sz/v1/water_level/WL-{i % 7}/obs", obs(i, f"WL-{i % 7}"))
        wait_for(lambda: a.stats.acked + b.stats.acked == 2000, what="2000 acks")
    finally:
        a.stop(), b.stop()
    assert a.stats.received > 0 and b.stats.received > 0
    assert a.stats.received + b.stats.received == 2000
    assert store.count_observations() == 2000
    store.close()


def test_last_will_marks_the_device_offline(mosquitto, tmp_path):
    store = Store.open(tmp_path / "s")
    ing = Ingestor(store)
    src = MqttSource(MqttConfig(port=mosquitto.port, client_id="t-will",
                                topics=("sz/v1/+/+/status",)), ing).start()
    status = "sz/v1/gas_h2s/CS-1/status"
    try:
        src.wait_subscribed()
        dev = MqttPublisher(mosquitto.host, mosquitto.port,
                            will=(status, b'{"state": "offline"}', True))
        dev.publish(status, json.dumps({"state": "online", "battery": 0.9}).encode(), retain=True)
        dev.flush()
        wait_for(lambda: ing.device_status().get("CS-1/gas_h2s", {}).get("state") == "online",
                 what="online status")
        dev.client.socket().close()  # the link drops without DISCONNECT: the broker sends the will
        wait_for(lambda: ing.device_status()["CS-1/gas_h2s"]["state"] == "offline",
                 what="last will")
        dev.client.loop_stop()
    finally:
        src.stop()
    store.close()


def test_publisher_reports_an_unreachable_broker():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(FetchError, match="cannot connect"):
        MqttPublisher("127.0.0.1", port, connect_timeout_s=1.0)
