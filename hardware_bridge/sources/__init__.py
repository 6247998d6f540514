"""Where sensor messages come from: MQTT, HTTP, recorded files and simulated devices.

Every source turns what arrives into :class:`Message` objects (topic, raw
payload bytes, time of receipt) and hands them, in batches, to a *sink*: any
object with ``handle_many(messages) -> results`` — usually the bridge's
:class:`~hardware_bridge.ingest.Ingestor` wrapped by :func:`as_sink`. A source
acknowledges a message to its sender only after the sink has returned, i.e.
after the message is durably stored or dead-lettered.

The topic layout and payloads are documented in :mod:`hardware_bridge.schema`::

    sz/v1/{kind}/{station}/obs      observations (SensorThings Observation or dataArray batch)
    sz/v1/{kind}/{station}/status   retained device status; the last will marks it offline
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from hardware_bridge.schema import OBS_SUBSCRIPTION, STATUS_SUBSCRIPTION, TOPIC_ROOT

OBS_FILTER = OBS_SUBSCRIPTION
STATUS_FILTER = STATUS_SUBSCRIPTION
UNROUTABLE_TOPIC = f"{TOPIC_ROOT}/unknown/unknown/obs"


def raw_obs_topic(kind: str, station: str) -> str:
    """``sz/v1/{kind}/{station}/obs`` without checking the parts (the validator does)."""
    return f"{TOPIC_ROOT}/{kind}/{station}/obs"


def topic_for_datastream(datastream: Any) -> str:
    """The observation topic of a datastream id ``"{station}/{kind}[/{name}]"``.

    Anything else gives :data:`UNROUTABLE_TOPIC`, which the validator rejects
    (so the message ends in the dead-letter store with its reason).
    """
    if isinstance(datastream, str):
        parts = datastream.split("/")
        if len(parts) in (2, 3) and all(parts[:2]):
            return raw_obs_topic(parts[1], parts[0])
    return UNROUTABLE_TOPIC


@dataclass(frozen=True, slots=True)
class Message:
    """One message as received: topic, the exact payload bytes, when it arrived (UTC)."""

    topic: str
    payload: bytes
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))


class Sink(Protocol):
    """What sources deliver to. ``handle_many`` returns after the batch is durable."""

    def handle_many(self, messages: Sequence[Message]) -> Sequence[Any]: ...


class CallableSink:
    """A :class:`Sink` from a function of a list of messages."""

    def __init__(self, fn: Callable[[Sequence[Message]], Sequence[Any]]) -> None:
        self._fn = fn

    def handle_many(self, messages: Sequence[Message]) -> Sequence[Any]:
        return self._fn(messages)


class IngestorSink:
    """Adapter from an :class:`~hardware_bridge.ingest.Ingestor` to a :class:`Sink`.

    Uses the ingestor's ``handle_many`` of ``(topic, payload, received_at)``
    tuples when it has one (one transaction per batch), else ``handle`` per
    message. Calls are serialised with a lock, so several sources (MQTT and
    HTTP) may share one ingestor.
    """

    def __init__(self, ingestor: Any) -> None:
        self.ingestor = ingestor
        self._many = getattr(ingestor, "handle_many", None)
        self._lock = threading.Lock()

    def handle_many(self, messages: Sequence[Message]) -> Sequence[Any]:
        if not messages:
            return []
        with self._lock:
            if self._many is not None:
                return list(self._many([(m.topic, m.payload, m.received_at) for m in messages]))
            return [self.ingestor.handle(m.topic, m.payload, m.received_at) for m in messages]


def as_sink(target: Any) -> Sink:
    """A :class:`Sink` from a sink, an ingestor (has ``handle``) or a callable of messages."""
    if isinstance(target, IngestorSink | CallableSink):
        return target
    if hasattr(target, "handle"):
        return IngestorSink(target)
    if hasattr(target, "handle_many"):
        return target
    if callable(target):
        return CallableSink(target)
    raise TypeError(f"sink {target!r} has neither handle_many nor handle and is not callable")


__all__ = [
    "CallableSink",
    "IngestorSink",
    "Message",
    "OBS_FILTER",
    "STATUS_FILTER",
    "Sink",
    "TOPIC_ROOT",
    "UNROUTABLE_TOPIC",
    "as_sink",
    "raw_obs_topic",
    "topic_for_datastream",
]
