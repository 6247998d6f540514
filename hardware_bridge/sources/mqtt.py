"""MQTT source and publisher (paho-mqtt 2, MQTT 5, QoS 1).

Subscriber (:class:`MqttSource`)
--------------------------------
* **At-least-once in, acknowledged after storage.** The client runs with
  ``manual_ack=True``: a PUBACK is sent only after the sink's ``handle_many``
  has returned, i.e. after the batch is committed (SQLite WAL, synchronous=FULL)
  or dead-lettered. A crash between storing and acking makes the broker
  redeliver; the store's idempotency key turns the redelivery into a no-op.
* **Persistent session.** ``clean_start=False`` with a session expiry
  (default 1 day): while the bridge is down the broker keeps its subscription,
  queues new messages for it and redelivers the unacknowledged ones.
  (The broker must keep enough queued messages: mosquitto's
  ``max_queued_messages`` — a message beyond that limit is dropped by the broker
  even though the publisher got its PUBACK.)
* **Bounded in-flight window.** The CONNECT property *Receive Maximum* tells the
  broker to have at most ``receive_maximum`` unacknowledged messages in flight to
  us, so the internal queue (same size) never overflows and nothing is dropped;
  further messages wait at the broker (backpressure).
* **Its own bound on unacknowledged messages.** The broker need not honour
  Receive Maximum: Debian's mosquitto 2.0.11, flushing a queued backlog to a
  reconnecting session, sent 17,000 of a 20,000-message backlog unacknowledged
  where 1,000 were asked for (``tests/hardware_bridge/test_bounds_backlog.py``).
  So the source counts the messages it has received and not yet acknowledged;
  when ``max_unacked`` (default 1,000) are held, paho's network thread waits
  inside the message callback, i.e. stops reading the socket (TCP flow control
  then holds the broker back), until the worker has stored and acknowledged
  enough to bring the count down to half the bound. Memory held is thus at most
  ``max_unacked`` messages whatever the broker does. While paused no PINGREQ is
  sent: a pause longer than 1.5 x ``keepalive_s`` (a store down for that long)
  makes the broker drop the connection, and it redelivers on reconnect.
* **Batches, cheap per message.** paho's network thread appends each message
  to a list under one lock (no queue, no per-message Event); a worker thread
  swaps the list out — up to ``batch_max`` messages, waiting at most
  ``batch_wait_s`` (default 5 ms) for a batch to fill, less when ``batch_max``
  (or nearly the whole in-flight window) is reached — and stores them in one
  transaction: one fsync per batch. The batch's PUBACKs are then queued to
  paho as one write. Under saturation batches fill while the previous one
  commits; below it the wait bounds the latency (p99 ~20 ms at 2,400 msg/s).
  paho's decoding of MQTT 5 PUBLISH properties is made cheap once per process
  (:func:`install_fast_properties`).
* **Fast paths through paho's private API**, checked against paho-mqtt 2.2
  (pyproject pins ``>=2.0,<2.3``): the shared-table ``Properties`` decoder, the
  empty-matcher skip and the batched PUBACKs. Each is installed only when
  paho's layout is the one it was written for, and logs a warning naming what
  differs when it is skipped (paho's own path is then used: correct, slower).
  ``MqttConfig(fast_paths=False)`` or ``TWIN_MQTT_FAST_PATHS=0`` turns them all
  off; ``tests/hardware_bridge/test_mqtt_fastpath.py`` checks that both ways
  store the same rows.
* **Stale acks are never sent.** Packet ids are per connection: every connect and
  disconnect starts a new *generation*, and a message is acknowledged only on the
  connection that delivered it (otherwise the broker redelivers it).
* **Reconnect with backoff** (paho's loop: ``reconnect_min_s`` doubling up to
  ``reconnect_max_s``); the subscription is renewed on every connect, so a
  restarted broker (which lost the session) gets it again.
* **Shared subscriptions.** With ``shared_group="twin"`` the filters become
  ``$share/twin/<filter>``: several bridge processes split one stream.

Publisher (:class:`MqttPublisher`)
----------------------------------
QoS 1 with at most ``window`` messages waiting for their PUBACK (a 100,000
message burst queued at once in one paho client is very slow: paho scans its
whole outgoing queue per acknowledgement).
"""

from __future__ import annotations

import logging
import os
import struct
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from hardware_bridge.sources import OBS_FILTER, Message, Sink, as_sink
from twin.errors import ConfigError, FetchError, ValidationError

log = logging.getLogger(__name__)


def parse_broker(text: str, default_port: int = 1883) -> tuple[str, int]:
    """``"host:port"`` / ``"host"`` / ``"mqtt://host:port"`` -> ``(host, port)``."""
    t = text.strip()
    if "://" in t:
        scheme, _, t = t.partition("://")
        if scheme not in ("mqtt", "tcp"):
            raise ConfigError(f"broker={text!r}: only mqtt:// (plain TCP) is supported")
    host, sep, port_s = t.rpartition(":")
    if not sep:
        host, port_s = t, str(default_port)
    try:
        port = int(port_s)
    except ValueError:
        raise ConfigError(f"broker={text!r}: port {port_s!r} is not a number; use HOST:PORT") from None
    if not host or not 0 < port < 65536:
        raise ConfigError(f"broker={text!r}: use HOST:PORT with a port in 1..65535")
    return host, port


@dataclass
class MqttConfig:
    """Settings of an :class:`MqttSource`.

    Attributes
    ----------
    host, port : broker address.
    client_id : MQTT client id; keep it stable across restarts so the
        persistent session (and its queued messages) is found again.
    topics : topic filters to subscribe (QoS 1).
    shared_group : MQTT 5 shared-subscription group (``$share/<group>/...``) or None.
    session_expiry_s : how long the broker keeps the session while we are away.
    receive_maximum : in-flight (unacknowledged) messages the broker may send us.
    max_unacked : messages received and not yet acknowledged that the source
        holds at most (its own bound, whatever the broker sends): when reached it
        stops reading the socket until half of them are stored and acknowledged.
    batch_max, batch_wait_s : largest batch stored in one transaction, and the
        longest wait for a batch to fill (s).
    keepalive_s : MQTT keepalive (s).
    reconnect_min_s, reconnect_max_s : reconnect backoff bounds (s).
    fast_paths : use the fast paths through paho's private API (module
        docstring); default from ``TWIN_MQTT_FAST_PATHS`` (``0`` turns them off),
        else on. The decoder patch is process-wide: a source made with
        ``fast_paths=False`` restores paho's decoder for the whole process.
    """

    host: str = "127.0.0.1"
    port: int = 1883
    client_id: str = field(default_factory=lambda: f"twin-bridge-{uuid.uuid4().hex[:8]}")
    topics: Sequence[str] = (OBS_FILTER,)
    shared_group: str | None = None
    session_expiry_s: int = 86_400
    receive_maximum: int = 1000
    max_unacked: int = 1000
    batch_max: int = 500
    batch_wait_s: float = 0.005
    keepalive_s: int = 30
    reconnect_min_s: int = 1
    reconnect_max_s: int = 30
    username: str | None = None
    password: str | None = None
    fast_paths: bool = field(default_factory=lambda: fast_paths_default())

    def filters(self) -> list[str]:
        """Topic filters as subscribed (with the ``$share/<group>/`` prefix if shared)."""
        if self.shared_group:
            return [f"$share/{self.shared_group}/{t}" for t in self.topics]
        return list(self.topics)

    def check(self) -> None:
        if not self.topics:
            raise ConfigError("MQTT topics=[] : give at least one topic filter, e.g. sz/v1/+/+/obs")
        if not 1 <= self.receive_maximum <= 65535:
            raise ConfigError(f"receive_maximum={self.receive_maximum} must be in 1..65535")
        if not isinstance(self.max_unacked, int) or self.max_unacked < 1:
            raise ConfigError(
                f"max_unacked={self.max_unacked!r} must be an integer >= 1 (messages held unacknowledged)"
            )
        if self.batch_max < 1:
            raise ConfigError(f"batch_max={self.batch_max} must be >= 1")
        if self.shared_group is not None and (
            not self.shared_group or any(c in self.shared_group for c in "/+#")
        ):
            raise ConfigError(
                f"shared_group={self.shared_group!r} must be a non-empty name without / + #"
            )


@dataclass
class SourceStats:
    """Counters of an :class:`MqttSource` (read them any time)."""

    received: int = 0
    acked: int = 0
    not_acked_stale: int = 0
    batches: int = 0
    sink_errors: int = 0
    connects: int = 0
    disconnects: int = 0
    unacked: int = 0
    unacked_peak: int = 0
    pauses: int = 0
    paused_s: float = 0.0
    results: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "acked": self.acked,
            "not_acked_stale": self.not_acked_stale,
            "batches": self.batches,
            "sink_errors": self.sink_errors,
            "connects": self.connects,
            "disconnects": self.disconnects,
            "unacked": self.unacked,
            "unacked_peak": self.unacked_peak,
            "pauses": self.pauses,
            "paused_s": round(self.paused_s, 3),
            "results": dict(self.results),
        }


def stop_loop(client: Any) -> None:
    """``client.loop_stop()``, safe when the network thread ends by itself meanwhile.

    paho's thread exits on its own when a first connection is refused, clearing
    ``client._thread`` as it goes; ``loop_stop`` checks that attribute and then
    joins it, so the two race (seen in CI: ``'NoneType' object has no attribute
    'join'``). A thread that is already gone needs no stopping.
    """
    try:
        client.loop_stop()
    except AttributeError:
        if getattr(client, "_thread", None) is not None:
            raise


def _result_label(r: Any) -> str:
    """A short label of one sink result for the counters (``stored``, ``duplicate``, ``rejected``...)."""
    for attr in ("status", "outcome", "kind"):
        v = getattr(r, attr, None)
        if isinstance(v, str):
            return v
        if v is not None and hasattr(v, "value"):
            return str(v.value)
    return type(r).__name__.lower()


class MqttSource:
    """Subscribe to the broker and feed a sink; acknowledge after the sink returns.

    Use :meth:`start` / :meth:`stop` (or as a context manager). Thread-safe
    counters in :attr:`stats`; :attr:`connected` and :attr:`subscribed` are
    :class:`threading.Event` objects.
    """

    def __init__(self, config: MqttConfig, sink: Any) -> None:
        import paho.mqtt.client as mqtt

        config.check()
        if config.fast_paths:
            install_fast_properties()
        else:
            remove_fast_properties()
        self.config = config
        self.sink: Sink = as_sink(sink)
        self.stats = SourceStats()
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        # Received, not yet taken by the worker: appended by paho's thread, swapped
        # out by the worker under one lock; _wake is set when the buffer becomes
        # non-empty and when it reaches _wake_at (a full batch).
        self._buf: list[tuple[int, Any, datetime]] = []
        self._buf_lock = threading.Lock()
        self._wake = threading.Event()
        window = min(config.receive_maximum, config.max_unacked)
        self._wake_at = max(1, min(config.batch_max, window - max(1, window // 10)))
        # Received and not yet acknowledged (buffer + the worker's batch), under _buf_lock;
        # the network thread waits on _room while it is at max_unacked (module docstring).
        self._held = 0
        self._room = threading.Condition(self._buf_lock)
        self._resume_at = config.max_unacked // 2
        self._gen = 0
        self._gen_lock = threading.Lock()
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self._sub_mids: set[int] = set()
        self._fatal: BaseException | None = None

        c = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=config.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        if config.username is not None:
            c.username_pw_set(config.username, config.password)
        c.reconnect_delay_set(config.reconnect_min_s, config.reconnect_max_s)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_subscribe = self._on_subscribe
        c.on_message = self._on_message
        if config.fast_paths:
            _skip_empty_topic_matcher(c)
        self._batch_acks = config.fast_paths and _can_batch_pubacks(c)
        self.client = c

    # ------------------------------------------------------------ lifecycle
    def start(self) -> MqttSource:
        """Connect (asynchronously; retried with backoff) and start the worker."""
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = int(self.config.session_expiry_s)
        props.ReceiveMaximum = int(self.config.receive_maximum)
        self.client.connect_async(
            self.config.host,
            self.config.port,
            keepalive=self.config.keepalive_s,
            clean_start=False,
            properties=props,
        )
        self._worker = threading.Thread(target=self._work, name="mqtt-source-worker", daemon=True)
        self._worker.start()
        self.client.loop_start()
        return self

    def wait_subscribed(self, timeout: float = 10.0) -> None:
        """Block until the subscription is granted; raise :class:`FetchError` on timeout."""
        if not self.subscribed.wait(timeout):
            raise FetchError(
                f"no subscription on MQTT broker {self.config.host}:{self.config.port} after "
                f"{timeout:g} s; is the broker running (mosquitto) and reachable?"
            )

    def stop(self, drain_s: float = 5.0) -> None:
        """Store and acknowledge what is queued (up to ``drain_s``), then disconnect.

        The session stays on the broker (it expires after ``session_expiry_s``).
        """
        deadline = time.monotonic() + drain_s
        while self._pending() and time.monotonic() < deadline and self._worker_alive():
            time.sleep(0.01)
        self._stop.set()
        if self._worker is not None:
            self._worker.join(timeout=max(1.0, drain_s))
        try:
            self.client.disconnect()
        finally:
            stop_loop(self.client)

    def _worker_alive(self) -> bool:
        return self._worker is not None and self._worker.is_alive()

    def __enter__(self) -> MqttSource:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ------------------------------------------------------------ callbacks
    def _bump(self) -> None:
        with self._gen_lock:
            self._gen += 1

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("MQTT connect to %s:%s refused: %s", self.config.host, self.config.port,
                        reason_code)
            return
        self._bump()
        self.stats.connects += 1
        self.connected.set()
        log.info("connected to %s:%s (session present: %s)", self.config.host, self.config.port,
                 flags.session_present)
        from paho.mqtt.subscribeoptions import SubscribeOptions

        opts = SubscribeOptions(qos=1)
        rc, mid = client.subscribe([(f, opts) for f in self.config.filters()])
        if mid is not None:
            self._sub_mids.add(mid)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        bad = [rc for rc in reason_codes if rc.is_failure]
        if bad:
            log.error("subscription %s refused by the broker: %s", self.config.filters(), bad)
            return
        self.subscribed.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self._bump()
        self.stats.disconnects += 1
        self.connected.clear()
        self.subscribed.clear()
        if not self._stop.is_set():
            log.warning("disconnected from %s:%s (%s); reconnecting", self.config.host,
                        self.config.port, reason_code)

    def _on_message(self, client, userdata, msg) -> None:
        # Runs in paho's network thread, once per message: keep it tiny. The
        # generation is read without the lock: it only changes in this same thread
        # (on_connect / on_disconnect). Receive Maximum bounds what the broker sends
        # unacknowledged, so the buffer stays below receive_maximum entries.
        item = (self._gen, msg, datetime.now(UTC))
        stats = self.stats
        with self._buf_lock:
            buf = self._buf
            buf.append(item)
            n = len(buf)
            if n == 1 or n == self._wake_at:
                self._wake.set()
            self._held = held = self._held + 1
            stats.received += 1
            stats.unacked = held
            if held > stats.unacked_peak:
                stats.unacked_peak = held
            if held >= self.config.max_unacked:
                self._pause()

    def _pause(self) -> None:
        """Hold paho's network thread (stop reading the socket) until the held messages are
        down to ``_resume_at`` or the source stops. Called with ``_buf_lock`` held."""
        self._wake.set()
        self.stats.pauses += 1
        t0 = time.monotonic()
        while self._held > self._resume_at and not self._stop.is_set():
            self._room.wait(0.1)
        self.stats.paused_s += time.monotonic() - t0

    def _release(self, n: int) -> None:
        """``n`` held messages are acknowledged (or given up): make room, wake a paused reader."""
        with self._buf_lock:
            self._held -= n
            self.stats.unacked = self._held
            if self._held <= self._resume_at:
                self._room.notify_all()

    # --------------------------------------------------------------- worker
    def _take_batch(self) -> list[tuple[int, Any, datetime]]:
        """Up to ``batch_max`` received messages (one lock swap, no per-message hand-off).

        Waits up to 0.1 s for a first message, then at most ``batch_wait_s`` for
        the batch to fill; a full batch (``batch_max`` or, with a small window,
        ``receive_maximum`` minus a margin: the broker sends no more until we ack)
        is taken at once.
        """
        cfg = self.config
        lock = self._buf_lock
        with lock:
            if not self._buf:
                self._wake.clear()
        if not self._buf and not self._wake.wait(0.1):
            return []
        if cfg.batch_wait_s > 0:
            with lock:
                if len(self._buf) < self._wake_at:
                    self._wake.clear()
                    wait = True
                else:
                    wait = False
            if wait:
                self._wake.wait(cfg.batch_wait_s)
        with lock:
            buf = self._buf
            if len(buf) <= cfg.batch_max:
                self._buf = []
                return buf
            self._buf = buf[cfg.batch_max:]
            return buf[:cfg.batch_max]

    def _pending(self) -> int:
        with self._buf_lock:
            return len(self._buf)

    def _work(self) -> None:
        backoff = 0.05
        pending: list[tuple[int, Any, datetime]] = []
        results_count = self.stats.results
        while not self._stop.is_set() or pending:
            if not pending:
                if self._stop.is_set():
                    break
                pending = self._take_batch()
                if not pending:
                    continue
            messages = [
                Message(_topic_of(m), m.payload, received) for _, m, received in pending
            ]
            try:
                results = self.sink.handle_many(messages)
            except Exception as exc:  # store unavailable: keep the batch, retry, never ack
                self.stats.sink_errors += 1
                log.error("storing a batch of %d messages failed (%s); retrying in %.2f s",
                          len(pending), exc, backoff)
                if self._stop.wait(backoff):
                    break  # not acknowledged: the broker redelivers them next time
                backoff = min(backoff * 2, 5.0)
                continue
            backoff = 0.05
            self._ack(pending)
            self._release(len(pending))
            self.stats.batches += 1
            pending = []
            for r in results or ():
                label = getattr(r, "status", None)
                if type(label) is not str:
                    label = _result_label(r)
                results_count[label] = results_count.get(label, 0) + 1

    def _ack(self, batch: list[tuple[int, Any, datetime]]) -> None:
        """PUBACK the batch's QoS-1 messages of the current connection, in one write.

        Messages of an earlier connection are not acknowledged (their packet ids
        belong to that connection; the broker redelivers them on this one).
        """
        with self._gen_lock:
            gen_now = self._gen
            mids = []
            for gen, m, _ in batch:
                q = m.qos
                if q == 0:
                    continue
                if gen != gen_now:
                    self.stats.not_acked_stale += 1  # redelivered on the new connection
                    continue
                if q == 1:
                    mids.append(m.mid)
                else:
                    self.client.ack(m.mid, q)
                    self.stats.acked += 1
            if mids:
                if self._batch_acks:
                    _send_pubacks(self.client, mids)
                else:
                    for mid in mids:
                        self.client.ack(mid, 1)
                self.stats.acked += len(mids)


_PUBACK = 0x40
_PUBACK_STRUCT = struct.Struct("!BBH")


FAST_PATHS_ENV = "TWIN_MQTT_FAST_PATHS"


def fast_paths_default() -> bool:
    """Whether the private-API fast paths are on by default: ``TWIN_MQTT_FAST_PATHS`` != 0."""
    return os.environ.get(FAST_PATHS_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def _paho_version() -> str:
    try:
        import paho.mqtt

        return str(getattr(paho.mqtt, "__version__", "?"))
    except ImportError:  # pragma: no cover - paho is a dependency
        return "?"


def _skipped(patch: str, why: str) -> None:
    """Log (warning) that a fast path is not installed because paho's layout differs."""
    log.warning(
        "paho-mqtt %s: %s not installed: %s; paho's own path is used (correct, slower). "
        "This module's fast paths were written for paho-mqtt 2.2 (pyproject pins >=2.0,<2.3).",
        _paho_version(), patch, why,
    )


def install_fast_properties(packet: Any = None) -> bool:
    """Make paho's packet decoder build its MQTT 5 ``Properties`` cheaply; True when in place.

    paho 2 decodes every received PUBLISH with ``Properties(PacketTypes.PUBLISH)``,
    whose ``__init__`` rebuilds two tables of ~30 entries (names and types of every
    MQTT 5 property): ~25 % of the bridge's CPU per message under load. The
    replacement is a subclass that shares one copy of those (never modified)
    tables and returns at once when a packet has no properties (property length
    byte 0), the usual case. Decoding is otherwise paho's own. Installed once per
    process into ``packet`` (default ``paho.mqtt._packet``), only if it still uses
    the stock class; otherwise a warning says what differs (:func:`_skipped`).
    :func:`remove_fast_properties` undoes it.
    """
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    if packet is None:
        try:
            from paho.mqtt import _packet as packet
        except ImportError:
            _skipped("the shared-table Properties decoder", "paho.mqtt._packet does not exist")
            return False
    where = f"{getattr(packet, '__name__', type(packet).__name__)}.Properties"
    current = getattr(packet, "Properties", None)
    if getattr(current, "_twin_fast", False):
        return True
    if current is not Properties:
        _skipped("the shared-table Properties decoder",
                 f"{where} is {current!r}, not paho.mqtt.properties.Properties")
        return False
    template = Properties(PacketTypes.PUBLISH)
    missing = [a for a in ("types", "names", "properties") if not hasattr(template, a)]
    if missing:
        _skipped("the shared-table Properties decoder", f"Properties lacks {missing}")
        return False

    class SharedTableProperties(Properties):
        _twin_fast = True
        _twin_stock = Properties

        def __init__(self, packetType: int) -> None:
            d = self.__dict__
            d["packetType"] = packetType
            d["types"] = template.types
            d["names"] = template.names
            d["properties"] = template.properties

        def unpack(self, buffer):  # noqa: ANN001, ANN201 - paho's signature
            if buffer[:1] == b"\x00":  # property length 0: nothing to decode
                return self, 1
            return super().unpack(buffer)

    SharedTableProperties.__name__ = SharedTableProperties.__qualname__ = "Properties"
    packet.Properties = SharedTableProperties
    return True


def remove_fast_properties(packet: Any = None) -> None:
    """Give ``packet`` (default ``paho.mqtt._packet``) paho's own ``Properties`` back."""
    if packet is None:
        try:
            from paho.mqtt import _packet as packet
        except ImportError:
            return
    current = getattr(packet, "Properties", None)
    if getattr(current, "_twin_fast", False):
        packet.Properties = current._twin_stock


def _skip_empty_topic_matcher(client: Any) -> bool:
    """Let ``client`` skip the per-message walk of its (empty) per-topic callback tree.

    paho matches every received topic against the filters of
    ``message_callback_add`` even when there are none (~5 % of the bridge's CPU
    per message). The replacement matcher answers "no callbacks" at once while
    the tree is empty and is paho's own otherwise. True when installed; a
    warning when paho's layout differs.
    """
    try:
        from paho.mqtt.matcher import MQTTMatcher
    except ImportError:
        _skipped("the empty-matcher skip", "paho.mqtt.matcher.MQTTMatcher does not exist")
        return False
    current = getattr(client, "_on_message_filtered", None)
    if type(current) is not MQTTMatcher or not hasattr(current, "_root"):
        _skipped("the empty-matcher skip",
                 f"client._on_message_filtered is {type(current).__name__}, not an MQTTMatcher "
                 "with a _root")
        return False
    if current._root._children or current._root._content is not None:
        return False  # callbacks already registered: keep paho's matcher (not a layout change)

    class EmptyFastMatcher(MQTTMatcher):
        def iter_match(self, topic):  # noqa: ANN001, ANN201 - paho's signature
            root = self._root
            if not root._children and root._content is None:
                return ()
            return super().iter_match(topic)

    client._on_message_filtered = EmptyFastMatcher()
    return True


def _can_batch_pubacks(client: Any) -> bool:
    """Whether ``client`` has paho's ``_packet_queue`` (for :func:`_send_pubacks`); warns if not."""
    if callable(getattr(client, "_packet_queue", None)):
        return True
    _skipped("batched PUBACKs", f"{type(client).__name__} has no _packet_queue method")
    return False


def _send_pubacks(client: Any, mids: list[int]) -> None:
    """Queue the PUBACKs of ``mids`` (MQTT 5 short form: no reason code, no properties).

    One packet per mid, written together: one queue entry and one wake-up of paho's
    network thread instead of one per message. Needs paho's ``_packet_queue``
    (checked once per client by :func:`_can_batch_pubacks`).
    """
    if len(mids) == 1:
        client.ack(mids[0], 1)
        return
    pack = _PUBACK_STRUCT.pack
    data = b"".join([pack(_PUBACK, 2, mid) for mid in mids])
    client._packet_queue(_PUBACK, data, 0, 0)


def _topic_of(msg: Any) -> str:
    try:
        return msg.topic
    except UnicodeDecodeError:  # invalid UTF-8 topic: keep it visible for the dead letter
        return msg._topic.decode("utf-8", "backslashreplace")


class MqttPublisher:
    """QoS-1 publisher with a bounded window of messages awaiting their PUBACK.

    :meth:`publish` blocks while ``window`` messages are unacknowledged, so
    memory and paho's queue stay small. Use as a context manager; :meth:`flush`
    waits for every PUBACK.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        client_id: str | None = None,
        qos: int = 1,
        window: int = 200,
        clean_start: bool = True,
        session_expiry_s: int = 0,
        will: tuple[str, bytes, bool] | None = None,
        connect_timeout_s: float = 10.0,
    ) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        if qos not in (0, 1, 2):
            raise ConfigError(f"qos={qos!r} must be 0, 1 or 2")
        if window < 1:
            raise ConfigError(f"window={window!r} must be >= 1")
        self.qos = qos
        self.window = window
        self.published = 0
        self._slots = threading.BoundedSemaphore(window)
        self._connected = threading.Event()
        c = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id or f"twin-pub-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        c.max_inflight_messages_set(window)
        c.max_queued_messages_set(0)
        c.reconnect_delay_set(1, 10)
        if will is not None:
            c.will_set(will[0], will[1], qos=1, retain=will[2])
        self.max_packet_size: int | None = None  # the broker's, from its CONNACK (MQTT 5)
        c.on_connect = self._on_connect
        c.on_disconnect = lambda *a: self._connected.clear()
        c.on_publish = self._on_publish
        self.client = c
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = int(session_expiry_s)
        c.connect_async(host, port, keepalive=30, clean_start=clean_start, properties=props)
        c.loop_start()
        if not self._connected.wait(connect_timeout_s):
            stop_loop(c)
            raise FetchError(
                f"cannot connect to MQTT broker {host}:{port} within {connect_timeout_s:g} s; "
                "is mosquitto running there?"
            )

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        self.max_packet_size = getattr(properties, "MaximumPacketSize", None)
        self._connected.set()

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        if self.qos > 0:
            self._slots.release()

    def publish(self, topic: str, payload: bytes | str, *, retain: bool = False,
                qos: int | None = None) -> None:
        """Publish one message, waiting first while the window is full.

        A message the broker announced it would refuse (larger than its Maximum Packet
        Size) raises :class:`~twin.errors.ValidationError` instead: sent, it would make
        the broker drop the connection, and paho would resend it on every reconnect.
        """
        q = self.qos if qos is None else qos
        limit = self.max_packet_size
        if limit is not None:
            n = len(payload.encode() if isinstance(payload, str) else payload)
            if n + len(topic.encode()) + 16 > limit:  # fixed header, topic length, packet id, properties
                raise ValidationError(
                    f"payload of {n} bytes to {topic[:120]!r} exceeds the broker's maximum packet size of "
                    f"{limit} bytes; split it (e.g. fewer dataArray rows per message)"
                )
        if q > 0:
            self._slots.acquire()
        info = self.client.publish(topic, payload, qos=q, retain=retain)
        if info.rc != 0:
            if q > 0:
                self._slots.release()
            raise FetchError(f"publish to {topic!r} failed: paho error {info.rc}")
        self.published += 1

    def flush(self, timeout: float = 60.0) -> None:
        """Wait until every published QoS>0 message has its PUBACK."""
        if self.qos == 0:
            return
        deadline = time.monotonic() + timeout
        got = 0
        try:
            for _ in range(self.window):
                left = deadline - time.monotonic()
                if left <= 0 or not self._slots.acquire(timeout=left):
                    raise FetchError(
                        f"{self.window - got} of the last published messages were not "
                        f"acknowledged by the broker within {timeout:g} s"
                    )
                got += 1
        finally:
            for _ in range(got):
                self._slots.release()

    def close(self, timeout: float = 60.0) -> None:
        """Flush, disconnect and stop the network thread."""
        try:
            self.flush(timeout)
        finally:
            self.client.disconnect()
            stop_loop(self.client)

    def __enter__(self) -> MqttPublisher:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


__all__ = [
    "FAST_PATHS_ENV",
    "MqttConfig",
    "MqttPublisher",
    "MqttSource",
    "SourceStats",
    "fast_paths_default",
    "install_fast_properties",
    "parse_broker",
    "remove_fast_properties",
]
