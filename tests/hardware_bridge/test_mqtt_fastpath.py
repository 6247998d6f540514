"""paho's private-API fast paths (hardware_bridge.sources.mqtt): the same rows with and without them.

The fast paths (shared-table ``Properties`` decoder, empty-matcher skip,
batched PUBACKs) must change speed only: the same messages through a real
mosquitto are stored as the same rows and dead letters, acknowledged alike,
with them installed and with them turned off. A skipped patch (paho's layout
differs) logs a warning; that guard is tested with stand-in objects.
"""

from __future__ import annotations

import json
import logging
import time
import types
import uuid
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt import _packet
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from hardware_bridge.ingest import Ingestor
from hardware_bridge.sources import mqtt as bridge_mqtt
from hardware_bridge.sources.mqtt import (
    FAST_PATHS_ENV,
    MqttConfig,
    MqttPublisher,
    MqttSource,
    fast_paths_default,
    install_fast_properties,
    remove_fast_properties,
)
from twin.store import Store

T0 = datetime(2024, 6, 1, tzinfo=UTC)
STREAMS = ("WL-1/water_level", "WL-2/water_level")


def obs(i: int, station: str) -> bytes:
    t = (T0 + timedelta(seconds=60 * i)).isoformat()
    return json.dumps({"datastream": f"{station}/water_level", "phenomenonTime": t,
                       "result": 1.0 + i * 1e-3, "unit": "m", "seq": i}).encode()


def publish_with_properties(host: str, port: int, messages: list[tuple[str, bytes]]) -> None:
    """QoS 1 with MQTT 5 properties, so the decoder's non-empty branch runs too."""
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"props-{uuid.uuid4().hex[:6]}",
                    protocol=mqtt.MQTTv5)
    c.connect(host, port)
    c.loop_start()
    try:
        for k, (topic, payload) in enumerate(messages):
            props = Properties(PacketTypes.PUBLISH)
            props.ContentType = "application/json"
            props.UserProperty = [("gateway", f"gw-{k}")]
            c.publish(topic, payload, qos=1, properties=props).wait_for_publish(10.0)
    finally:
        c.disconnect()
        c.loop_stop()


def the_feed() -> tuple[list[tuple[str, bytes]], list[tuple[str, bytes]]]:
    """(plain messages, messages with properties): 2 stations, re-sends, one bad payload."""
    plain = [(f"sz/v1/water_level/{s}/obs", obs(i, s)) for i in range(150) for s in ("WL-1", "WL-2")]
    plain += plain[:40]  # at-least-once: re-sends are duplicates
    plain.append(("sz/v1/water_level/WL-1/obs", b"{not json"))
    with_props = [(f"sz/v1/water_level/{s}/obs", obs(i, s)) for i in range(150, 160)
                  for s in ("WL-1", "WL-2")]
    return plain, with_props


def run_bridge(mosquitto, tmp_path, fast: bool) -> dict:
    """Feed the same messages through a bridge with or without the fast paths; what it stored."""
    store = Store.open(tmp_path / f"store-{fast}")
    src = MqttSource(MqttConfig(port=mosquitto.port, client_id=f"fp-{fast}-{uuid.uuid4().hex[:6]}",
                                fast_paths=fast), Ingestor(store)).start()
    installed = {
        "decoder": getattr(_packet.Properties, "_twin_fast", False),
        "matcher": type(src.client._on_message_filtered).__name__ == "EmptyFastMatcher",
        "batched_acks": src._batch_acks,
    }
    plain, with_props = the_feed()
    try:
        src.wait_subscribed()
        with MqttPublisher(mosquitto.host, mosquitto.port) as pub:
            for topic, payload in plain:
                pub.publish(topic, payload)
        publish_with_properties(mosquitto.host, mosquitto.port, with_props)
        n = len(plain) + len(with_props)
        deadline = time.monotonic() + 30.0
        while src.stats.acked < n and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        src.stop()
    rows = {ds: [(o.phenomenon_time, o.value, o.unit, o.seq, o.raw) for o in store.observations(ds)]
            for ds in STREAMS}
    dead = [(d.topic, d.payload) for d in store.dead_letters()]
    out = {"installed": installed, "rows": rows, "dead": dead, "results": dict(src.stats.results),
           "acked": src.stats.acked, "received": src.stats.received}
    store.close()
    return out


@pytest.fixture
def stock_decoder_after():
    """Leave paho's decoder as the test found it."""
    before = _packet.Properties
    yield
    _packet.Properties = before


def test_fast_and_stock_paths_store_the_same_rows(mosquitto, tmp_path, stock_decoder_after):
    fast = run_bridge(mosquitto, tmp_path, fast=True)
    stock = run_bridge(mosquitto, tmp_path, fast=False)
    assert fast["installed"] == {"decoder": True, "matcher": True, "batched_acks": True}
    assert stock["installed"] == {"decoder": False, "matcher": False, "batched_acks": False}
    n = 341 + 20
    for run in (fast, stock):
        assert run["received"] == n and run["acked"] == n
        assert run["results"] == {"stored": 320, "duplicate": 40, "rejected": 1}
    assert all(len(fast["rows"][ds]) == 160 for ds in STREAMS)
    assert fast["rows"] == stock["rows"]
    assert fast["dead"] == stock["dead"] == [("sz/v1/water_level/WL-1/obs", b"{not json")]


def test_decoders_read_the_same_properties(stock_decoder_after):
    props = Properties(PacketTypes.PUBLISH)
    props.ContentType = "application/json"
    props.UserProperty = [("gateway", "gw-1")]
    packed = props.pack()
    remove_fast_properties()
    stock, n_stock = _packet.Properties(PacketTypes.PUBLISH).unpack(packed)
    empty_stock = _packet.Properties(PacketTypes.PUBLISH).unpack(b"\x00")
    assert install_fast_properties() is True
    assert _packet.Properties is not Properties  # the fast decoder is in place
    fast, n_fast = _packet.Properties(PacketTypes.PUBLISH).unpack(packed)
    empty_fast = _packet.Properties(PacketTypes.PUBLISH).unpack(b"\x00")
    assert (fast.json(), n_fast) == (stock.json(), n_stock)
    assert (empty_fast[0].json(), empty_fast[1]) == (empty_stock[0].json(), empty_stock[1]) == ({}, 1)


def test_skipped_decoder_patch_logs_a_warning(caplog):
    stand_in = types.SimpleNamespace(__name__="paho.mqtt._packet", Properties=object)
    with caplog.at_level(logging.WARNING, logger=bridge_mqtt.__name__):
        assert install_fast_properties(stand_in) is False
    assert stand_in.Properties is object  # left as found
    (rec,) = caplog.records
    assert rec.levelno == logging.WARNING
    assert "shared-table Properties decoder not installed" in rec.getMessage()
    assert "paho.mqtt._packet.Properties is <class 'object'>" in rec.getMessage()


@pytest.mark.parametrize(
    ("patch", "call", "match"),
    [
        pytest.param("matcher", bridge_mqtt._skip_empty_topic_matcher,
                     "empty-matcher skip not installed: client._on_message_filtered is NoneType",
                     id="matcher"),
        pytest.param("pubacks", bridge_mqtt._can_batch_pubacks,
                     "batched PUBACKs not installed: SimpleNamespace has no _packet_queue",
                     id="pubacks"),
    ],
)
def test_skipped_client_patches_log_a_warning(caplog, patch, call, match):
    stand_in = types.SimpleNamespace(_on_message_filtered=None)
    with caplog.at_level(logging.WARNING, logger=bridge_mqtt.__name__):
        assert call(stand_in) is False
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert match in caplog.records[0].getMessage()


@pytest.mark.parametrize(("value", "expected"), [
    pytest.param(None, True, id="unset"), pytest.param("0", False, id="zero"),
    pytest.param("off", False, id="off"), pytest.param("1", True, id="one")])
def test_environment_switch(monkeypatch, value, expected):
    if value is None:
        monkeypatch.delenv(FAST_PATHS_ENV, raising=False)
    else:
        monkeypatch.setenv(FAST_PATHS_ENV, value)
    assert fast_paths_default() is expected
    assert MqttConfig().fast_paths is expected
