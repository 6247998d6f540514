"""The durable, exactly-once ingestor: validated messages -> the twin's store.

Guarantees
----------
* **Durable before ack.** :meth:`Ingestor.handle` / :meth:`Ingestor.handle_many`
  return only after the SQLite transaction holding the observations (and dead
  letters) has committed (WAL, ``synchronous=FULL``); a source acknowledges a
  message (MQTT PUBACK) only after that, so a crash loses nothing acknowledged.
* **Exactly-once stored.** The store's ``UNIQUE(datastream_id, phenomenon_time, seq)``
  makes re-delivered observations no-ops; they are reported as ``duplicate``.
* **Nothing bad is silently lost.** Every rejected message goes to the store's
  dead-letter table with its exact bytes (an oversized one: its first 1 KiB,
  size and SHA-256), topic, arrival time and reason.
* **Event-time watermark that one outlier cannot poison.** Per datastream the
  ingestor keeps the last ``watermark_window`` (16) distinct event times of its
  readings (a redelivered reading counts once); the stream's reference time
  ``high`` is the k-th largest of these n times, ``k = min(watermark_k, ceil(n/2))``
  (``watermark_k`` = 3: the 3rd largest once 5 times are known; the largest while
  only 1 or 2 are). An observation with
  ``t >= high - watermark_s`` is stored normally even if out of order; an older
  one is stored but flagged ``late`` (in the stored ``raw["flags"]`` and in the
  result). So the reference advances only when ``watermark_k`` recent readings
  agree: up to ``watermark_k - 1`` readings stamped ahead of the rest (an early
  duplicate, a device that jumped forward once) cannot mark the in-order readings
  after them late, and they leave the window after ``watermark_window`` more
  readings. (With the former rule, the running maximum, one reading 3 h ahead
  marked the next 3 h of in-order readings late.) A genuinely late reading, older
  than the ``watermark_k``-th newest by more than ``watermark_s``, is still flagged.
* **Clock skew.** ``t > received_at + skew_tolerance_s`` is flagged ``clock_skew``;
  such observations are stored but do not enter the watermark window (a device
  with a clock in the future must not make everyone else late).
  ``t > received_at + max_future_skew_s`` (default 1 day) is not stored: the
  whole message is dead-lettered with a reason naming the time and the limit
  (issue 16: a reading stamped in the year 3000 made ``twin bridge inspect``
  report the stream's latest time as year 3000).
* **Payload size.** A payload over ``max_payload_bytes`` (default 256 KiB) is
  dead-lettered before it is decoded, keeping its size, SHA-256 and first
  1 KiB only (:func:`hardware_bridge.validate.oversized`).
* **Stale streams.** :meth:`Ingestor.stale_streams` lists datastreams silent for
  more than ``stale_after_s``; :meth:`Ingestor.check_stale` also raises alerts.
* **Backpressure that never drops alarms.** :meth:`Ingestor.submit` puts messages
  on a bounded queue; when it is full a normal message is refused with a
  ``"queue full, retry"`` result (or waits up to ``timeout``), while alarm-kind
  messages (``schema.ALARM_KINDS``) always go on a separate priority queue that
  the worker drains first. Queued messages are committed in batches (one
  transaction per batch: group commit), which is what makes the bridge fast.

Stored rows: ``value``/``unit`` in SI; ``raw`` = ``{"kind", "original": {"value",
"unit"}, "event" | "status", "parameters", "flags"}``. Device statuses are
stored on datastream ``{station}/{kind}/status`` (value = battery fraction).

Alerts (``on_alert``, :class:`twin.events.Event`; ``time_s`` is the clock's
simulation time if a clock is given, else POSIX seconds): ``sensor_stale``
(warning), ``sensor_recovered`` (info), ``sensor_clock_skew`` (advisory, once
per skew episode), ``sensor_offline`` (warning), ``sensor_online`` (info).
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from hardware_bridge import units
from hardware_bridge.schema import ALARM_KINDS
from hardware_bridge.validate import (
    MAX_PAYLOAD_BYTES,
    Accepted,
    NormalizedObservation,
    Rejected,
    _as_bytes,
    _received,
    is_alarm_topic,
    parse_message,
)
from twin.errors import StoreError, ValidationError
from twin.events import Event, Severity
from twin.store import Observation as StoredObservation
from twin.store import dead_letter_digest

if TYPE_CHECKING:  # pragma: no cover
    from twin.clock import SimClock
    from twin.store import Store

log = logging.getLogger(__name__)

QUEUE_FULL = "queue full, retry"
Message = tuple[str, bytes, datetime | None]


@dataclass(frozen=True, slots=True)
class IngestResult:
    """Outcome of one message.

    ``status``: ``"stored"`` (at least one new observation committed),
    ``"duplicate"`` (every observation was already stored), ``"rejected"``
    (dead-lettered; ``reason`` says why) or ``"retry"`` (not processed: queue
    full or store failure — do not acknowledge). ``ack`` is True for the first three.
    """

    status: str
    topic: str
    stored: int = 0
    duplicates: int = 0
    late: int = 0
    skewed: int = 0
    reason: str | None = None
    datastream_id: str | None = None
    alarm: bool = False

    @property
    def ack(self) -> bool:
        return self.status != "retry"


@dataclass(frozen=True, slots=True)
class Submitted:
    """Whether :meth:`Ingestor.submit` queued the message (if not: retry later)."""

    accepted: bool
    alarm: bool
    reason: str | None = None


@dataclass
class StreamStats:
    """Per-datastream counters since the ingestor started (``high``/``last_received_at``
    may be seeded from the store)."""

    datastream_id: str
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    late: int = 0
    out_of_order: int = 0
    skewed: int = 0
    high: datetime | None = None  # watermark reference: k-th largest recent unskewed time
    recent: deque[datetime] = field(default_factory=lambda: deque(maxlen=16))  # last unskewed times
    last_received_at: datetime | None = None
    last_value: float | None = None
    last_unit: str = ""
    stale: bool = False
    skewing: bool = False


@dataclass(frozen=True, slots=True)
class StaleStream:
    datastream_id: str
    last_received_at: datetime
    silent_s: float


@dataclass(slots=True)
class _Pending:
    topic: str
    payload: bytes
    received_at: datetime
    token: Any
    enqueued: float = field(default_factory=time.perf_counter)


class Ingestor:
    """Validate, store exactly once, dead-letter, watch streams.

    Parameters
    ----------
    store : twin.store.Store
    watermark_s : float
        Allowed lateness (s) of event time behind the stream's highest time.
    stale_after_s : float
        A datastream silent (by arrival time) for longer is stale.
    skew_tolerance_s : float
        How far (s) a phenomenon time may lie after its arrival time before it is
        flagged ``clock_skew``.
    max_future_skew_s : float
        How far (s) a phenomenon time may lie after its arrival time at all; a
        message with a time beyond is dead-lettered (default 86,400 s = 1 day).
    max_payload_bytes : int
        Larger payloads are dead-lettered before parsing (size, SHA-256 and first
        1 KiB kept).
    watermark_k, watermark_window : int
        The watermark reference is the ``watermark_k``-th largest event time of the
        stream's last ``watermark_window`` stored readings (module docstring).
    on_alert : callable(Event), optional
    on_stored : callable(list[NormalizedObservation]), optional
        Called after each commit with the newly stored observations (fusion hooks).
    clock : SimClock, optional
        Gives alert events their simulation time.
    queue_size : int
        Bound of the normal-message queue (alarms are not bounded).
    batch_size : int
        Most messages committed in one transaction by :meth:`process_pending`.
    source : str
        Written to the dead letters' ``source`` column (e.g. ``"mqtt"``).
    seed_from_store : bool
        Seed each stream's watermark and last-seen time from the store, so
        stale detection and lateness survive a restart.
    """

    def __init__(
        self,
        store: Store,
        *,
        watermark_s: float = 300.0,
        stale_after_s: float = 900.0,
        skew_tolerance_s: float = 5.0,
        max_future_skew_s: float = 86_400.0,
        max_payload_bytes: int = MAX_PAYLOAD_BYTES,
        watermark_k: int = 3,
        watermark_window: int = 16,
        on_alert: Callable[[Event], None] | None = None,
        on_stored: Callable[[list[NormalizedObservation]], None] | None = None,
        clock: SimClock | None = None,
        queue_size: int = 10_000,
        batch_size: int = 1_000,
        source: str = "",
        seed_from_store: bool = True,
    ) -> None:
        for name, v in (
            ("watermark_s", watermark_s),
            ("stale_after_s", stale_after_s),
            ("skew_tolerance_s", skew_tolerance_s),
            ("max_future_skew_s", max_future_skew_s),
        ):
            if not (isinstance(v, int | float) and v >= 0):
                raise ValidationError(f"Ingestor {name}={v!r} must be a number >= 0 (seconds)")
        if max_future_skew_s < skew_tolerance_s:
            raise ValidationError(
                f"Ingestor max_future_skew_s={max_future_skew_s!r} is below skew_tolerance_s="
                f"{skew_tolerance_s!r}; give a maximum future skew >= the tolerance"
            )
        if not (isinstance(max_payload_bytes, int) and max_payload_bytes >= 1):
            raise ValidationError(f"Ingestor max_payload_bytes={max_payload_bytes!r} must be an integer >= 1")
        if not (isinstance(watermark_window, int) and isinstance(watermark_k, int)
                and 1 <= watermark_k <= watermark_window):
            raise ValidationError(
                f"Ingestor watermark_k={watermark_k!r}, watermark_window={watermark_window!r}: give integers "
                "with 1 <= watermark_k <= watermark_window"
            )
        if not (isinstance(queue_size, int) and queue_size >= 1):
            raise ValidationError(f"Ingestor queue_size={queue_size!r} must be an integer >= 1")
        if not (isinstance(batch_size, int) and batch_size >= 1):
            raise ValidationError(f"Ingestor batch_size={batch_size!r} must be an integer >= 1")
        self.store = store
        self.watermark = timedelta(seconds=float(watermark_s))
        self.stale_after_s = float(stale_after_s)
        self.skew_tolerance = timedelta(seconds=float(skew_tolerance_s))
        self.max_future_skew = timedelta(seconds=float(max_future_skew_s))
        self.max_payload_bytes = max_payload_bytes
        self.watermark_k = watermark_k
        self.watermark_window = watermark_window
        self.on_alert = on_alert
        self.on_stored = on_stored
        self.clock = clock
        self.queue_size = queue_size
        self.batch_size = batch_size
        self.source = source
        self._state = threading.RLock()
        self._streams: dict[str, StreamStats] = {}
        self._rejected: dict[str, int] = {}  # "station/kind" (or topic) -> count
        self._status: dict[str, dict[str, Any]] = {}  # "station/kind" -> last status
        self.totals = {"messages": 0, "stored": 0, "duplicates": 0, "rejected": 0, "late": 0,
                       "skewed": 0, "refused": 0}
        self._cv = threading.Condition()
        self._normal: deque[_Pending] = deque()
        self._alarms: deque[_Pending] = deque()
        self._worker: threading.Thread | None = None
        self._stop = threading.Event()
        units.warm_up()
        if seed_from_store:
            self._seed()

    # ------------------------------------------------------------ seeding
    def _seed(self) -> None:
        latest = self.store.latest_times(not_after=datetime.now(UTC) + self.skew_tolerance)
        for ds, when in latest.items():
            if not ds.endswith("/status"):
                st = self._stream(ds)
                st.recent.append(when)
                st.high, st.last_received_at = when, when

    # ----------------------------------------------------------- handling
    def handle(
        self, topic: str, payload: bytes, received_at: datetime | None = None
    ) -> IngestResult:
        """Validate and durably store (or dead-letter) one message; commit before returning."""
        return self.handle_many([(topic, payload, received_at)])[0]

    def handle_many(self, messages: Iterable[Message]) -> list[IngestResult]:
        """Validate and store several messages in ONE transaction (group commit).

        Returns one :class:`IngestResult` per message, in order. If the store
        fails, :class:`~twin.errors.StoreError` propagates and nothing of the
        batch is stored (no message may be acknowledged).
        """
        msgs = [(t, p, _received(r)) for t, p, r in messages]
        limit = self.max_payload_bytes
        parsed = [self._too_far_ahead(parse_message(t, p, r, max_payload_bytes=limit), p, r) for t, p, r in msgs]
        with self._state:
            results, stored, alerts = self._commit(msgs, parsed)
        self._notify(stored, alerts)  # hooks run outside the state lock
        return results

    def _stream(self, ds: str) -> StreamStats:
        st = self._streams.get(ds)
        if st is None:
            st = self._streams[ds] = StreamStats(ds, recent=deque(maxlen=self.watermark_window))
        return st

    def _too_far_ahead(self, res: Accepted | Rejected, payload: bytes, received: datetime) -> Accepted | Rejected:
        """``res``, or its rejection when an observation's time lies beyond the maximum future skew."""
        if not res.ok:
            return res
        latest = received + self.max_future_skew
        obs = res.observations
        for j, o in enumerate(obs):
            if o.phenomenon_time > latest:
                where = "time" if o.is_status else (
                    f"dataArray[{j}].phenomenonTime" if len(obs) > 1 else "phenomenonTime")
                ahead = (o.phenomenon_time - received).total_seconds()
                return Rejected(
                    res.topic,
                    f"field {where!r} = {o.phenomenon_time.isoformat()} is {ahead:.0f} s ahead of its "
                    f"arrival {received.isoformat()}, beyond the maximum future skew of "
                    f"{self.max_future_skew.total_seconds():g} s; fix the device clock, or raise "
                    "--max-future-skew-s",
                    payload if isinstance(payload, bytes) else _as_bytes(payload), received, res.kind, res.station,
                )
        return res
        received = res_received = None
        obs = res.observations
        for j, o in enumerate(obs):
            if res_received is None:
                res_received = received = getattr(res, "received_at", None)
            limit_t = (received or datetime.now(UTC)) + self.max_future_skew
            if o.phenomenon_time > limit_t:
                where = "time" if o.is_status else (
                    f"dataArray[{j}].phenomenonTime" if len(obs) > 1 else "phenomenonTime")
                ahead = (o.phenomenon_time - (received or datetime.now(UTC))).total_seconds()
                return Rejected(
                    res.topic,
                    f"field {where!r} = {o.phenomenon_time.isoformat()} is {ahead:.0f} s ahead of its arrival, "
                    f"beyond the maximum future skew of {self.max_future_skew.total_seconds():g} s "
                    f"(latest accepted {limit_t.isoformat()}); fix the device clock, or raise "
                    "--max-future-skew-s",
                    bytes(payload), received or datetime.now(UTC), res.kind, res.station,
                )
        return res

    def _commit(
        self, msgs: list[tuple[str, bytes, datetime]], parsed: list[Accepted | Rejected]
    ) -> tuple[list[IngestResult], list[NormalizedObservation], list[Event]]:
        rows: list[StoredObservation] = []
        owners: list[tuple[int, NormalizedObservation, tuple[str, ...], bool]] = []
        dead: list[tuple[Any, ...]] = []
        windows: dict[str, deque[datetime]] = {}  # provisional watermark windows of this batch
        for i, res in enumerate(parsed):
            if not res.ok:
                # an oversized message keeps its first KiB: its identity is the whole payload's digest
                whole = msgs[i][1]
                dead.append((res.topic, res.payload, res.reason, res.received_at, self.source,
                             None if len(whole) == len(res.payload) else dead_letter_digest(res.topic, whole)))
                continue
            received = msgs[i][2]
            for o in res.observations:
                flags: list[str] = []
                ooo = False
                if not o.is_status:
                    ds = o.datastream_id
                    win = windows.get(ds)
                    if win is None:
                        st = self._streams.get(ds)
                        win = windows[ds] = deque(st.recent if st is not None else (), self.watermark_window)
                    t = o.phenomenon_time
                    if t - received > self.skew_tolerance:
                        flags.append("clock_skew")
                    else:
                        high = self._reference(win)
                        if high is not None and t < high:
                            ooo = True
                            if t < high - self.watermark:
                                flags.append("late")
                        if t not in win:  # distinct times: a redelivered outlier counts once
                            win.append(t)
                ft = tuple(flags)
                rows.append(
                    StoredObservation(
                        o.datastream_id, o.phenomenon_time, o.value, o.unit, o.result_time,
                        o.seq, o.raw(ft),
                    )
                )
                owners.append((i, o, ft, ooo))
        new = self.store.put_ingested(rows, dead)  # durable: committed here (or raises)
        return self._account(msgs, parsed, owners, new, windows)

    def _reference(self, window: deque[datetime]) -> datetime | None:
        """The watermark reference of a window of ``n`` distinct times: its k-th largest,
        ``k = min(watermark_k, ceil(n / 2))``."""
        if not window:
            return None
        k = min(self.watermark_k, (len(window) + 1) // 2)
        return max(window) if k == 1 else heapq.nlargest(k, window)[-1]

    def _account(self, msgs, parsed, owners, new, windows):  # noqa: ANN001, ANN202
        per: list[list[int]] = [[0, 0, 0, 0] for _ in parsed]  # stored, dups, late, skewed
        stored_obs: list[NormalizedObservation] = []
        alerts: list[Event] = []
        for (i, o, flags, ooo), is_new in zip(owners, new, strict=True):
            c = per[i]
            received = msgs[i][2]
            if is_new:
                c[0] += 1
                stored_obs.append(o)
            else:
                c[1] += 1
            if o.is_status:
                self._on_status(o, received, alerts)
                continue
            st = self._stream(o.datastream_id)
            st.received += 1
            st.stored += is_new
            st.duplicates += not is_new
            if is_new:
                late, skew = "late" in flags, "clock_skew" in flags
                c[2] += late
                c[3] += skew
                st.late += late
                st.skewed += skew
                st.out_of_order += ooo
                if skew and not st.skewing:
                    alerts.append(self._event(
                        "sensor_clock_skew", o.datastream_id, Severity.ADVISORY, received,
                        f"{o.datastream_id}: phenomenonTime {o.phenomenon_time.isoformat()} is "
                        f"ahead of arrival {received.isoformat()} by more than "
                        f"{self.skew_tolerance.total_seconds():g} s; check the device clock",
                        {"phenomenon_time": o.phenomenon_time.isoformat(),
                         "received_at": received.isoformat()},
                    ))
                st.skewing = skew
                if o.value is not None and not skew and (st.high is None or o.phenomenon_time >= st.high):
                    st.last_value, st.last_unit = o.value, o.unit
            if st.last_received_at is None or received > st.last_received_at:
                st.last_received_at = received
            if st.stale:
                st.stale = False
                alerts.append(self._event(
                    "sensor_recovered", o.datastream_id, Severity.INFO, received,
                    f"{o.datastream_id} reports again", {},
                ))
        for ds, win in windows.items():
            st = self._stream(ds)
            st.recent = win
            st.high = self._reference(win)
        results: list[IngestResult] = []
        for i, res in enumerate(parsed):
            self.totals["messages"] += 1
            if not res.ok:
                key = f"{res.station}/{res.kind}" if res.station and res.kind else res.topic[:200]
                self._rejected[key] = self._rejected.get(key, 0) + 1
                self.totals["rejected"] += 1
                results.append(IngestResult(
                    "rejected", res.topic, reason=res.reason, alarm=res.kind in ALARM_KINDS
                ))
                continue
            s, d, late, skew = per[i]
            self.totals["stored"] += s
            self.totals["duplicates"] += d
            self.totals["late"] += late
            self.totals["skewed"] += skew
            results.append(IngestResult(
                "stored" if s else "duplicate", res.topic, s, d, late, skew,
                datastream_id=res.observations[0].datastream_id, alarm=res.alarm,
            ))
        return results, stored_obs, alerts

    def _on_status(self, o: NormalizedObservation, received: datetime, alerts: list[Event]) -> None:
        key = f"{o.station}/{o.kind}"
        prev = self._status.get(key)
        state = (o.event or {}).get("state")
        self._status[key] = {**(o.event or {}), "received_at": received.isoformat()}
        if state == "offline" and (prev is None or prev.get("state") != "offline"):
            alerts.append(self._event(
                "sensor_offline", key, Severity.WARNING, received,
                f"device {key} is offline (status / last will)", dict(o.event or {}),
            ))
        elif state == "online" and prev is not None and prev.get("state") == "offline":
            alerts.append(self._event(
                "sensor_online", key, Severity.INFO, received, f"device {key} is back online",
                dict(o.event or {}),
            ))

    def _event(
        self, kind: str, source: str, sev: Severity, when: datetime, msg: str, data: dict
    ) -> Event:
        t = self.clock.seconds_at(when) if self.clock is not None else when.timestamp()
        return Event(time_s=float(t), wall_time=datetime.now(UTC), kind=kind, source=source,
                     severity=sev, message=msg, data=data)

    def _notify(self, stored: list[NormalizedObservation], alerts: list[Event]) -> None:
        if self.on_alert is not None:
            for ev in alerts:
                try:
                    self.on_alert(ev)
                except Exception:  # already committed: a hook must not break ingestion
                    log.exception("on_alert hook failed for %s", ev.kind)
        if self.on_stored is not None and stored:
            try:
                self.on_stored(stored)
            except Exception:
                log.exception("on_stored hook failed")

    # ------------------------------------------------------------ watching
    def stale_streams(self, now: datetime | None = None) -> list[StaleStream]:
        """Datastreams whose last arrival is more than ``stale_after_s`` before ``now``."""
        now = _received(now)
        out = []
        with self._state:
            for ds, st in self._streams.items():
                if st.last_received_at is None:
                    continue
                silent = (now - st.last_received_at).total_seconds()
                if silent > self.stale_after_s:
                    out.append(StaleStream(ds, st.last_received_at, silent))
        return sorted(out, key=lambda s: s.datastream_id)

    def check_stale(self, now: datetime | None = None) -> list[StaleStream]:
        """:meth:`stale_streams`, raising one ``sensor_stale`` alert per newly stale stream."""
        now = _received(now)
        stale = self.stale_streams(now)
        alerts = []
        with self._state:
            for s in stale:
                st = self._streams[s.datastream_id]
                if not st.stale:
                    st.stale = True
                    alerts.append(self._event(
                        "sensor_stale", s.datastream_id, Severity.WARNING, now,
                        f"{s.datastream_id} silent for {s.silent_s:.0f} s "
                        f"(> {self.stale_after_s:g} s); check the device and its link",
                        {"last_received_at": s.last_received_at.isoformat(),
                         "silent_s": s.silent_s},
                    ))
        self._notify([], alerts)
        return stale

    def stats(self) -> dict[str, StreamStats]:
        """Copies of the per-datastream counters."""
        with self._state:
            return {k: replace(v) for k, v in sorted(self._streams.items())}

    def rejected_by_source(self) -> dict[str, int]:
        """Rejections per ``station/kind`` (or per topic when the topic itself was bad)."""
        with self._state:
            return dict(self._rejected)

    def device_status(self) -> dict[str, dict[str, Any]]:
        """Last status per ``station/kind`` (state, battery, firmware, received_at...)."""
        with self._state:
            return {k: dict(v) for k, v in self._status.items()}

    # --------------------------------------------------- queue/backpressure
    def pending(self) -> int:
        with self._cv:
            return len(self._normal) + len(self._alarms)

    def submit(
        self,
        topic: str,
        payload: bytes,
        received_at: datetime | None = None,
        *,
        token: Any = None,
        timeout: float = 0.0,
    ) -> Submitted:
        """Queue a message for :meth:`process_pending` / the worker.

        Alarm-kind messages are always queued (never refused). A normal message
        waits up to ``timeout`` s for room, then is refused with reason
        ``"queue full, retry"``: the source must not acknowledge it (MQTT will
        redeliver) or must tell the sender to retry (HTTP 503).
        """
        received = _received(received_at)
        alarm = is_alarm_topic(topic)
        item = _Pending(topic, payload, received, token)
        with self._cv:
            if alarm:
                self._alarms.append(item)
            else:
                deadline = time.monotonic() + max(0.0, timeout)
                while len(self._normal) >= self.queue_size:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        self.totals["refused"] += 1
                        return Submitted(
                            False, False,
                            f"{QUEUE_FULL} ({len(self._normal)} of {self.queue_size} queued)",
                        )
                    self._cv.wait(remaining)
                self._normal.append(item)
            self._cv.notify_all()
        return Submitted(True, alarm)

    def _take(self, max_n: int) -> list[_Pending]:
        batch: list[_Pending] = []
        while self._alarms and len(batch) < max_n:
            batch.append(self._alarms.popleft())
        while self._normal and len(batch) < max_n:
            batch.append(self._normal.popleft())
        if batch:
            self._cv.notify_all()
        return batch

    def process_pending(self, max_batch: int | None = None) -> list[tuple[Any, IngestResult]]:
        """Commit up to ``max_batch`` queued messages (alarms first) in one transaction.

        Returns ``(token, result)`` pairs. On a store failure the messages are
        returned with status ``"retry"`` (not stored; do not acknowledge).
        """
        with self._cv:
            batch = self._take(max_batch or self.batch_size)
        if not batch:
            return []
        try:
            results = self.handle_many((p.topic, p.payload, p.received_at) for p in batch)
        except StoreError as exc:
            log.error("store failed for a batch of %d messages: %s", len(batch), exc)
            results = [IngestResult("retry", p.topic, reason=f"store failure: {exc}") for p in batch]
        return [(p.token, r) for p, r in zip(batch, results, strict=True)]

    def start(self, on_result: Callable[[Any, IngestResult], None] | None = None) -> None:
        """Start a worker thread committing queued messages; ``on_result(token, result)``
        is called after each commit (acknowledge there when ``result.ack``)."""
        if self._worker is not None:
            raise ValidationError("Ingestor worker already started; call stop() first")
        self._stop.clear()

        def run() -> None:
            while True:
                with self._cv:
                    while not self._alarms and not self._normal and not self._stop.is_set():
                        self._cv.wait(0.5)
                    if self._stop.is_set() and not self._alarms and not self._normal:
                        return
                for token, res in self.process_pending():
                    if on_result is not None:
                        try:
                            on_result(token, res)
                        except Exception:
                            log.exception("on_result callback failed")

        self._worker = threading.Thread(target=run, name="twin-ingestor", daemon=True)
        self._worker.start()

    def stop(self, timeout: float | None = 30.0) -> None:
        """Drain the queue and stop the worker thread."""
        if self._worker is None:
            return
        self._stop.set()
        with self._cv:
            self._cv.notify_all()
        self._worker.join(timeout)
        self._worker = None


def handle_all(ingestor: Ingestor, messages: Sequence[Message], batch: int = 1000) -> list[IngestResult]:
    """Feed messages straight to ``ingestor.handle_many`` in chunks of ``batch`` (replay, tests)."""
    out: list[IngestResult] = []
    for k in range(0, len(messages), batch):
        out.extend(ingestor.handle_many(messages[k : k + batch]))
    return out
