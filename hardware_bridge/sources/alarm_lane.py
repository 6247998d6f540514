"""The alarm lane: alarms get their own MQTT subscription so a backlog cannot delay them.

An MQTT subscriber receives its messages in broker order. With a backlog (a
bridge restart after an outage, a burst of rain-gauge batches) an alarm
published now waits behind every normal reading queued before it: with 20,000
queued readings and a bridge storing ~2,500 msg/s that is 8 s before a gas
alarm in an occupied confined space is even stored.

The lane is a second :class:`~hardware_bridge.sources.mqtt.MqttSource` in the
same bridge process:

* subscribed only to the alarm kinds' observation topics
  (``sz/v1/{kind}/+/obs`` for every kind in :data:`~hardware_bridge.schema.ALARM_KINDS`),
  with its own client id (``{client_id}-alarm``: its own persistent session and
  broker queue) and, when the bridge shares a subscription, its own shared group
  (``$share/{group}-alarm/...``);
* a small *Receive Maximum* and batch (:data:`LANE_RECEIVE_MAXIMUM`,
  :data:`LANE_BATCH_MAX`) and no batch wait, so an alarm is stored as soon as
  it arrives;
* storing through the same ingestor (the same idempotent store and the same
  ``on_stored`` / ``on_alert`` hooks), via :class:`PrioritySink`: the two lanes
  take turns on one store, and a waiting alarm batch goes before any waiting
  normal batch, so an alarm waits at most for the one normal batch being
  committed.

**The normal subscription keeps every kind** (``sz/v1/+/+/obs``), alarms
included, so each alarm arrives twice: first through the lane (stored), later
through the normal subscription (a duplicate: the store's idempotency key makes
it a no-op, the ingestor counts it under ``duplicates``, and ``on_stored`` does
not see it, so no alert is raised twice). The alternative — subscribing the
normal client to the non-alarm kinds by name — was rejected: a message on a
topic with an unknown or misspelt kind (``sz/v1/gas_h2S/CS-1/obs``) would then
match no subscription, the broker would discard it and it would never reach
the dead-letter store; and an alarm lane that is down (or refused by the broker)
would silently lose the alarms instead of merely delaying them. The price is
one extra, cheap, duplicate per alarm message.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from hardware_bridge.schema import ALARM_KINDS, TOPIC_ROOT
from hardware_bridge.sources import Message, Sink, as_sink
from hardware_bridge.sources.mqtt import MqttConfig, MqttSource
from hardware_bridge.validate import is_alarm_topic

ALARM_TOPICS: tuple[str, ...] = tuple(f"{TOPIC_ROOT}/{k}/+/obs" for k in sorted(ALARM_KINDS))
LANE_SUFFIX = "-alarm"
LANE_RECEIVE_MAXIMUM = 50
LANE_BATCH_MAX = 50

__all__ = [
    "ALARM_TOPICS",
    "LANE_BATCH_MAX",
    "LANE_RECEIVE_MAXIMUM",
    "LANE_SUFFIX",
    "PrioritySink",
    "alarm_lane_config",
    "start_alarm_lane",
]


def alarm_lane_config(
    base: MqttConfig,
    *,
    receive_maximum: int = LANE_RECEIVE_MAXIMUM,
    batch_max: int = LANE_BATCH_MAX,
    batch_wait_s: float = 0.0,
) -> MqttConfig:
    """The lane's settings from the normal source's: same broker and session expiry,
    client id ``{client_id}-alarm``, alarm topics only, group ``{group}-alarm`` when shared."""
    cfg = replace(
        base,
        client_id=f"{base.client_id}{LANE_SUFFIX}",
        topics=ALARM_TOPICS,
        shared_group=f"{base.shared_group}{LANE_SUFFIX}" if base.shared_group else None,
        receive_maximum=receive_maximum,
        batch_max=batch_max,
        batch_wait_s=batch_wait_s,
    )
    cfg.check()
    return cfg


class PrioritySink:
    """One sink shared by two lanes; a waiting alarm batch goes first.

    :meth:`handle_many` treats a batch holding any alarm-kind topic as an alarm
    batch (for sources that mix kinds, e.g. HTTP); :attr:`alarm` and
    :attr:`normal` are sinks that force the lane. One batch is in the wrapped
    sink at a time; when it returns, a waiting alarm batch is admitted before
    any waiting normal batch.
    """

    def __init__(self, sink: Any) -> None:
        self.sink: Sink = as_sink(sink)
        self._cv = threading.Condition()
        self._busy = False
        self._waiting = {True: 0, False: 0}
        self.batches = {"alarm": 0, "normal": 0}
        self.alarm: Sink = _Lane(self, True)
        self.normal: Sink = _Lane(self, False)

    def waiting(self) -> dict[str, int]:
        """Batches waiting for the sink, per lane."""
        with self._cv:
            return {"alarm": self._waiting[True], "normal": self._waiting[False]}

    def handle_many(self, messages: Sequence[Message]) -> Sequence[Any]:
        return self._handle(messages, any(is_alarm_topic(m.topic) for m in messages))

    def _handle(self, messages: Sequence[Message], alarm: bool) -> Sequence[Any]:
        with self._cv:
            self._waiting[alarm] += 1
            try:
                while self._busy or (not alarm and self._waiting[True]):
                    self._cv.wait()
            finally:
                self._waiting[alarm] -= 1
            self._busy = True
        try:
            return self.sink.handle_many(messages)
        finally:
            with self._cv:
                self._busy = False
                self.batches["alarm" if alarm else "normal"] += 1
                self._cv.notify_all()


class _Lane:
    def __init__(self, owner: PrioritySink, alarm: bool) -> None:
        self._owner = owner
        self._alarm = alarm

    def handle_many(self, messages: Sequence[Message]) -> Sequence[Any]:
        return self._owner._handle(messages, self._alarm)


def start_alarm_lane(base: MqttConfig, sink: PrioritySink, **lane: Any) -> MqttSource:
    """Start the lane's :class:`MqttSource` (``lane`` overrides :func:`alarm_lane_config`'s defaults)."""
    return MqttSource(alarm_lane_config(base, **lane), sink.alarm).start()
