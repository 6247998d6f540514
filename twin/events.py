"""The twin's event log: what happened, when, where it came from and how serious it is.

An :class:`Event` carries two times: ``time_s``, the simulation time in
seconds on the twin's :class:`~twin.clock.SimClock` (the instant it stands
for is ``clock.at(time_s)``), and ``wall_time``, the real UTC time at which
the event was recorded (for audit of live runs). Time-range queries use the
half-open interval ``t0 <= time_s < t1``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator

from twin.errors import ValidationError

if TYPE_CHECKING:  # pragma: no cover
    from twin.clock import SimClock


class Severity(StrEnum):
    """How serious an event is, in increasing order: info < advisory < warning < alarm.

    The levels follow the escalation used by Chinese early-warning practice
    (blue/yellow/orange/red map onto advisory..alarm by the caller's rules).
    """

    INFO = "info"
    ADVISORY = "advisory"
    WARNING = "warning"
    ALARM = "alarm"

    @property
    def rank(self) -> int:
        """0 for info ... 3 for alarm."""
        return _RANK[self]

    @classmethod
    def coerce(cls, value: Severity | str) -> Severity:
        """Severity from an enum member or its name (case-insensitive)."""
        if isinstance(value, Severity):
            return value
        try:
            return cls(str(value).lower())
        except ValueError:
            raise ValidationError(
                f"severity={value!r} is not one of {[s.value for s in cls]}"
            ) from None


_RANK = {s: i for i, s in enumerate(Severity)}


class Event(BaseModel):
    """One event (pydantic v2, strict, immutable).

    Attributes
    ----------
    time_s : float
        Simulation time (s) the event refers to.
    wall_time : datetime
        Real UTC time it was recorded (timezone-aware; converted to UTC). Default: now.
    kind : str
        What happened, e.g. ``"threshold_crossed"``, ``"road_closed"``.
    source : str
        Who says so: a sensor id, a model name, an operator.
    severity : Severity
        info, advisory, warning or alarm (strings accepted).
    message : str
        Human-readable text.
    data : dict
        JSON-compatible details.
    """

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")

    time_s: float = Field(allow_inf_nan=False)
    wall_time: datetime = Field(default_factory=lambda: datetime.now(UTC), strict=False)
    kind: str = Field(min_length=1)
    source: str = ""
    severity: Severity = Field(default=Severity.INFO, strict=False)
    message: str = ""
    data: dict[str, Any] = Field(default_factory=dict)

    @field_validator("wall_time")
    @classmethod
    def _aware_utc(cls, v: datetime) -> datetime:
        if v.tzinfo is None or v.tzinfo.utcoffset(v) is None:
            raise ValueError("wall_time must be timezone-aware (e.g. tzinfo=datetime.UTC)")
        return v.astimezone(UTC)

    @classmethod
    def parse(cls, record: dict[str, Any]) -> Event:
        """Validate a record (e.g. from JSON), raising :class:`twin.errors.ValidationError`."""
        try:
            return cls.model_validate(record)
        except pydantic.ValidationError as exc:
            parts = [
                f"{'.'.join(str(p) for p in e['loc']) or 'record'}={e.get('input')!r}: {e['msg']}"
                for e in exc.errors()
            ]
            raise ValidationError(f"event record is invalid: {'; '.join(parts)}") from exc

    def to_record(self) -> dict[str, Any]:
        """JSON-compatible dict that :meth:`parse` accepts."""
        return self.model_dump(mode="json")


class EventLog:
    """Append-only log of :class:`Event` records, in the order they were appended."""

    def __init__(self, events: Iterable[Event] = ()) -> None:
        self._events: list[Event] = []
        for e in events:
            self.append(e)

    def append(self, event: Event | dict[str, Any]) -> int:
        """Append an event (or a record dict); returns its index in the log."""
        if not isinstance(event, Event):
            event = Event.parse(event)
        self._events.append(event)
        return len(self._events) - 1

    def record(
        self,
        clock: SimClock,
        kind: str,
        message: str = "",
        *,
        source: str = "",
        severity: Severity | str = Severity.INFO,
        data: dict[str, Any] | None = None,
    ) -> Event:
        """Create an event at the clock's current time, append it and return it."""
        event = Event.parse(
            {
                "time_s": clock.now_s,
                "kind": kind,
                "source": source,
                "severity": Severity.coerce(severity),
                "message": message,
                "data": data or {},
            }
        )
        self._events.append(event)
        return event

    def query(
        self,
        kind: str | None = None,
        t0: float | None = None,
        t1: float | None = None,
        severity: Severity | str | None = None,
        min_severity: Severity | str | None = None,
        source: str | None = None,
    ) -> list[Event]:
        """Events matching every given filter, in log order.

        ``t0 <= time_s < t1``; ``severity`` matches exactly, ``min_severity``
        keeps that level and the more serious ones.
        """
        sev = None if severity is None else Severity.coerce(severity)
        rank = None if min_severity is None else Severity.coerce(min_severity).rank
        out = []
        for e in self._events:
            if kind is not None and e.kind != kind:
                continue
            if source is not None and e.source != source:
                continue
            if t0 is not None and e.time_s < t0:
                continue
            if t1 is not None and e.time_s >= t1:
                continue
            if sev is not None and e.severity is not sev:
                continue
            if rank is not None and e.severity.rank < rank:
                continue
            out.append(e)
        return out

    def counts(self) -> dict[str, int]:
        """Number of events per severity (every level present, zero included)."""
        out = {s.value: 0 for s in Severity}
        for e in self._events:
            out[e.severity.value] += 1
        return out

    def __iter__(self) -> Iterator[Event]:
        return iter(list(self._events))

    def __len__(self) -> int:
        return len(self._events)

    def __getitem__(self, index: int) -> Event:
        return self._events[index]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EventLog):
            return NotImplemented
        return self._events == other._events

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"EventLog({len(self)} events, {self.counts()})"

    def to_records(self) -> list[dict[str, Any]]:
        """JSON-compatible list of dicts, log order."""
        return [e.to_record() for e in self._events]

    @classmethod
    def from_records(cls, records: Iterable[dict[str, Any]]) -> EventLog:
        """Rebuild a log from :meth:`to_records` output (validating every record)."""
        return cls(Event.parse(r) for r in records)
