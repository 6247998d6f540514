"""Replay recorded feeds (JSON lines or CSV) at a speed factor.

File formats
------------
**JSON lines** (``.jsonl``, ``.ndjson``, ``.json``): one JSON object per line,
either an envelope::

    {"topic": "sz/v1/rain_gauge/RG-0001/obs", "payload": {...} | "<text>",
     "received_at": "2024-06-01T08:05:02+08:00"}          # received_at optional

or a bare payload (a SensorThings Observation or dataArray batch) whose topic
follows from its datastream id ``"{station}/{kind}[/{name}]"``. A line that is
not a JSON object is replayed as it is (raw bytes, topic
:data:`~hardware_bridge.sources.UNROUTABLE_TOPIC`) so that it ends in the
dead-letter store with its reason instead of being skipped. Blank lines are skipped.

**CSV** with a header; columns ``datastream``, ``phenomenonTime``, ``result``
(required), ``resultTime``, ``unit``, ``seq``, ``topic`` (optional). Each row
becomes an Observation payload (numbers parsed; a cell that is not a number is
passed on as text, which the validator rejects into the dead-letter store).

Timing
------
The replay clock is the record's ``received_at`` if given, else its
``phenomenonTime`` (the first row of a batch). A record is released when::

    wall_elapsed >= (t_record - t_first) / speed

``speed = inf`` (or 0) replays as fast as possible. Records earlier than the
latest one released (out-of-order feeds) are released at once — the file order
is kept; the replay never reorders. Records already due are delivered in
batches of up to ``batch_max``.
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hardware_bridge.sources import UNROUTABLE_TOPIC, Message, as_sink, topic_for_datastream
from twin.errors import DataMissingError, ValidationError

CSV_COLUMNS = ("topic", "datastream", "phenomenonTime", "resultTime", "result", "unit", "seq")
CSV_REQUIRED = ("datastream", "phenomenonTime", "result")


@dataclass(frozen=True, slots=True)
class ReplayRecord:
    """One recorded message: topic, raw payload, replay-clock time (or None), source line."""

    topic: str
    payload: bytes
    time: datetime | None
    line: int
    received_at: datetime | None = None


def _aware(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    if dt.tzinfo is None or dt.utcoffset() is None:
        return None
    return dt.astimezone(UTC)


def _payload_time(doc: Any) -> datetime | None:
    if not isinstance(doc, dict):
        return None
    if "phenomenonTime" in doc:
        return _aware(doc.get("phenomenonTime"))
    comps, rows = doc.get("components"), doc.get("dataArray")
    if isinstance(comps, list) and "phenomenonTime" in comps and isinstance(rows, list) and rows:
        row = rows[0]
        i = comps.index("phenomenonTime")
        if isinstance(row, list) and len(row) > i:
            return _aware(row[i])
    return None


def read_jsonl(path: str | Path) -> Iterator[ReplayRecord]:
    """Records of a JSON-lines file (see the module docstring)."""
    path = Path(path)
    with open(path, "rb") as fh:
        for n, raw in enumerate(fh, start=1):
            line = raw.rstrip(b"\r\n")
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
            except ValueError:
                yield ReplayRecord(UNROUTABLE_TOPIC, line, None, n)
                continue
            if isinstance(doc, dict) and "topic" in doc and "payload" in doc:
                topic = doc["topic"] if isinstance(doc["topic"], str) else UNROUTABLE_TOPIC
                p = doc["payload"]
                payload = p.encode() if isinstance(p, str) else json.dumps(p).encode()
                inner = p if isinstance(p, dict) else None
                if inner is None and isinstance(p, str):
                    try:
                        inner = json.loads(p)
                    except ValueError:
                        inner = None
                received = _aware(doc.get("received_at"))
                yield ReplayRecord(topic, payload, received or _payload_time(inner), n, received)
            elif isinstance(doc, dict):
                yield ReplayRecord(topic_for_datastream(doc.get("datastream")), line,
                                   _payload_time(doc), n)
            else:
                yield ReplayRecord(UNROUTABLE_TOPIC, line, None, n)


def _cell(v: str) -> Any:
    try:
        x = int(v)
    except ValueError:
        pass
    else:
        return x
    try:
        x = float(v)
    except ValueError:
        return v
    return x  # NaN/inf pass through; the validator rejects them by name


def read_csv(path: str | Path) -> Iterator[ReplayRecord]:
    """Records of a CSV file with a header (see the module docstring).

    Raises
    ------
    ValidationError
        If the header lacks a required column or has an unknown one.
    """
    path = Path(path)
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        cols = reader.fieldnames or []
        missing = [c for c in CSV_REQUIRED if c not in cols]
        unknown = [c for c in cols if c not in CSV_COLUMNS]
        if missing or unknown:
            raise ValidationError(
                f"replay CSV {path}: header {cols} "
                + (f"lacks {missing} " if missing else "")
                + (f"has unknown columns {unknown} " if unknown else "")
                + f"; columns are {list(CSV_COLUMNS)} with {list(CSV_REQUIRED)} required"
            )
        for row in reader:
            n = reader.line_num
            doc: dict[str, Any] = {
                "datastream": row["datastream"],
                "phenomenonTime": row["phenomenonTime"],
            }
            if row.get("resultTime"):
                doc["resultTime"] = row["resultTime"]
            doc["result"] = _cell(row["result"]) if row["result"] is not None else None
            if row.get("unit"):
                doc["unit"] = row["unit"]
            if row.get("seq"):
                doc["seq"] = _cell(row["seq"])
            topic = row.get("topic") or topic_for_datastream(row["datastream"])
            payload = json.dumps(doc, allow_nan=True).encode()
            yield ReplayRecord(topic, payload, _aware(row["phenomenonTime"]), n)


def read_records(path: str | Path, fmt: str | None = None) -> Iterator[ReplayRecord]:
    """Records of a replay file; format from ``fmt`` (``"csv"``/``"jsonl"``) or the suffix."""
    path = Path(path)
    if not path.is_file():
        raise DataMissingError(f"replay file {path} does not exist")
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    if fmt == "csv":
        return read_csv(path)
    if fmt in ("jsonl", "ndjson", "json", "jsonlines"):
        return read_jsonl(path)
    raise ValidationError(
        f"replay file {path}: format {fmt!r} unknown; use .csv or .jsonl (or --format csv|jsonl)"
    )


@dataclass
class ReplayStats:
    """What a replay did: records sent, batches, wall seconds, record-clock span."""

    records: int = 0
    batches: int = 0
    wall_s: float = 0.0
    span_s: float = 0.0
    results: list[Any] = field(default_factory=list, repr=False)

    @property
    def achieved_speed(self) -> float:
        """Record-clock span over wall time (``inf`` if no time passed)."""
        return self.span_s / self.wall_s if self.wall_s > 0 else math.inf


def replay(
    records: Iterable[ReplayRecord],
    deliver: Callable[[Sequence[ReplayRecord]], Any] | Any,
    *,
    speed: float = 1.0,
    batch_max: int = 500,
    keep_results: bool = False,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> ReplayStats:
    """Release ``records`` at ``speed`` times the recorded pace to ``deliver``.

    ``deliver`` is a function of a list of records, or a sink / ingestor
    (messages get ``received_at`` = the record's own if it has one, else now).
    The file order is kept. Returns :class:`ReplayStats`.
    """
    if not (speed >= 0) or (speed != speed):
        raise ValidationError(f"replay speed={speed!r} must be > 0 (inf or 0: as fast as possible)")
    fast = speed == 0 or math.isinf(speed)
    if batch_max < 1:
        raise ValidationError(f"batch_max={batch_max} must be >= 1")
    if callable(deliver) and not hasattr(deliver, "handle") and not hasattr(deliver, "handle_many"):
        send = deliver
    else:
        sink = as_sink(deliver)

        def send(batch: Sequence[ReplayRecord]) -> Any:
            now = datetime.now(UTC)
            return sink.handle_many(
                [Message(r.topic, r.payload, r.received_at or now) for r in batch]
            )

    stats = ReplayStats()
    t_first: datetime | None = None
    t_max: datetime | None = None
    wall0 = clock()
    batch: list[ReplayRecord] = []

    def flush() -> None:
        if batch:
            out = send(list(batch))
            stats.batches += 1
            if keep_results and out is not None:
                stats.results.extend(out)
            batch.clear()

    for rec in records:
        if rec.time is not None:
            if t_first is None:
                t_first = rec.time
            if t_max is None or rec.time > t_max:
                t_max = rec.time
                if not fast:
                    due = (rec.time - t_first).total_seconds() / speed
                    wait = due - (clock() - wall0)
                    if wait > 0:
                        flush()
                        wait = due - (clock() - wall0)
                        if wait > 0:
                            sleep(wait)
        batch.append(rec)
        stats.records += 1
        if len(batch) >= batch_max:
            flush()
    flush()
    stats.wall_s = clock() - wall0
    if t_first is not None and t_max is not None:
        stats.span_s = (t_max - t_first).total_seconds()
    return stats


__all__ = ["ReplayRecord", "ReplayStats", "read_csv", "read_jsonl", "read_records", "replay"]
