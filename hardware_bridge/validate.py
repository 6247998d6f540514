"""Validate one raw message (topic + payload bytes) into SI observations, or reject it.

:func:`parse_message` never raises on bad input: every byte string gives either
:class:`Accepted` (normalised observations, or a device status) or
:class:`Rejected` (a reason naming the field and the value, plus the raw bytes
for the dead-letter store). Topic layout and payload shapes are documented in
:mod:`hardware_bridge.schema`.

Checks, in order: topic (``sz/v1/{kind}/{station}/obs|status``, known kind);
payload size (<= ``max_payload_bytes``, default :data:`MAX_PAYLOAD_BYTES` = 256 KiB,
checked before anything is decoded: an oversized payload is rejected keeping only
its size, SHA-256 digest and first :data:`KEEP_BYTES` bytes, see :func:`oversized`), UTF-8, strict JSON (no NaN /
Infinity / overflowing numbers), a JSON object; the pydantic model (required
fields, types, timezone-aware timestamps, seq >= 0, no unknown fields); the
datastream belongs to the topic's station and kind; the result is a finite
number for quantity kinds (an object of the kind's event model for event kinds);
the unit is accepted for the kind and the SI value lies in its plausible range
(:mod:`hardware_bridge.units`). A batch (dataArray) is accepted only if every row is.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pydantic

from hardware_bridge import units
from hardware_bridge.schema import (
    ALARM_KINDS,
    KINDS,
    MAX_SEQ,
    STATION_RE,
    TOPIC_ROOT,
    Kind,
    Observation,
    ObservationBatch,
    Status,
)
from twin.errors import ValidationError

#: Largest payload parsed (bytes); a dataArray of 1,000 rows is ~60 KiB. Larger ones are dead-lettered.
MAX_PAYLOAD_BYTES = 256 * 1024
#: Bytes of an oversized payload kept in its dead letter (with its size and SHA-256 in the reason).
KEEP_BYTES = 1024
STATUS_STREAM = "status"  # reserved datastream name: "{station}/{kind}/status"
_KIND_VALUES = {k.value: k for k in Kind}


@dataclass(frozen=True, slots=True)
class NormalizedObservation:
    """One validated observation in SI units.

    Attributes
    ----------
    datastream_id, kind, station : str
    phenomenon_time, result_time : datetime
        UTC; ``result_time`` defaults to ``phenomenon_time``.
    seq : int
    value : float or None
        SI value (None for event kinds and statuses without battery).
    unit : str
        SI unit (``""`` for events).
    original_value, original_unit
        As sent by the device.
    event : dict or None
        Validated event result (event kinds) or the status object (status messages).
    parameters : dict or None
    is_status : bool
    """

    datastream_id: str
    kind: str
    station: str
    phenomenon_time: datetime
    result_time: datetime
    seq: int
    value: float | None
    unit: str
    original_value: float | None
    original_unit: str | None
    event: dict[str, Any] | None = None
    parameters: dict[str, Any] | None = None
    is_status: bool = False

    def raw(self, flags: tuple[str, ...] | list[str] = ()) -> dict[str, Any]:
        """JSON record kept in the store's ``raw`` column (original value/unit, flags, ...)."""
        out: dict[str, Any] = {"kind": self.kind}
        if self.original_unit is not None or self.original_value is not None:
            out["original"] = {"value": self.original_value, "unit": self.original_unit}
        if self.event is not None:
            out["status" if self.is_status else "event"] = self.event
        if self.parameters:
            out["parameters"] = self.parameters
        if flags:
            out["flags"] = list(flags)
        return out


@dataclass(frozen=True, slots=True)
class Accepted:
    """A valid message: its observations (a status message gives one, on ``{station}/{kind}/status``)."""

    topic: str
    kind: str
    station: str
    observations: tuple[NormalizedObservation, ...]
    status: Status | None = None
    ok: bool = True

    @property
    def alarm(self) -> bool:
        return self.kind in ALARM_KINDS


@dataclass(frozen=True, slots=True)
class Rejected:
    """An invalid message: why, and the exact bytes received."""

    topic: str
    reason: str
    payload: bytes
    received_at: datetime
    kind: str | None = None
    station: str | None = None
    ok: bool = False


@dataclass(frozen=True, slots=True)
class TopicInfo:
    kind: str
    station: str
    channel: str  # "obs" or "status"


# ------------------------------------------------------------------ topics
def parse_topic(topic: str) -> TopicInfo:
    """Split ``sz/v1/{kind}/{station}/{obs|status}``.

    Raises
    ------
    ValidationError
        Wrong layout, unknown kind or invalid station id.
    """
    if not isinstance(topic, str):
        raise ValidationError(f"topic {topic!r} is not a string")
    parts = topic.split("/")
    if len(parts) != 5 or f"{parts[0]}/{parts[1]}" != TOPIC_ROOT or parts[4] not in ("obs", "status"):
        raise ValidationError(
            f"topic {topic[:120]!r} does not follow {TOPIC_ROOT}/{{kind}}/{{station}}/obs|status"
        )
    kind, station = parts[2], parts[3]
    if kind not in _KIND_VALUES:
        raise ValidationError(
            f"topic {topic[:120]!r} names unknown kind {kind[:40]!r}; known kinds: "
            f"{', '.join(_KIND_VALUES)}"
        )
    if STATION_RE.fullmatch(station) is None:
        raise ValidationError(
            f"topic {topic[:120]!r} has invalid station {station[:70]!r}; "
            "use letters, digits, '_', '.', '-' (max 64)"
        )
    return TopicInfo(kind, station, parts[4])


def oversized(
    topic: str, payload: bytes, received_at: datetime, limit: int = MAX_PAYLOAD_BYTES
) -> Rejected | None:
    """The rejection of a payload longer than ``limit`` bytes, or None if it fits.

    The rejection keeps only the first :data:`KEEP_BYTES` bytes; the reason gives the
    size and the SHA-256 digest of the whole payload, so a dead letter is never larger
    than a few KiB however large the message (issue 16: 148 messages of 2 MB made a
    290 MB store). Nothing of the payload is decoded.
    """
    n = len(payload)
    if n <= limit:
        return None
    parts = topic.split("/", 4) if isinstance(topic, str) else []
    kind = parts[2] if len(parts) == 5 and parts[2] in _KIND_VALUES else None
    station = parts[3] if kind and STATION_RE.fullmatch(parts[3]) else None
    digest = hashlib.sha256(payload).hexdigest()
    return Rejected(
        _topic_text(topic),
        f"payload of {n} bytes exceeds the limit of {limit} bytes (sha256 {digest}); only its first "
        f"{min(n, KEEP_BYTES)} bytes are kept; split the batch, or raise --max-payload-bytes",
        bytes(payload[:KEEP_BYTES]),
        received_at,
        kind,
        station,
    )


def is_alarm_topic(topic: str) -> bool:
    """True if the topic's kind is an alarm kind (cheap; no validation)."""
    parts = topic.split("/", 4) if isinstance(topic, str) else ()
    return len(parts) >= 3 and parts[2] in ALARM_KINDS


# ------------------------------------------------------------------ helpers
def _short(value: Any, n: int = 60) -> str:
    try:
        text = repr(value)
    except Exception:  # pragma: no cover - exotic objects
        text = f"<{type(value).__name__}>"
    return text if len(text) <= n else text[: n - 3] + "..."


def _reject_constant(name: str) -> float:
    raise ValueError(f"JSON constant {name} is not allowed (results must be finite numbers)")


def _finite_float(text: str) -> float:
    v = float(text)
    if not math.isfinite(v):
        raise ValueError(f"number {text[:40]} overflows a 64-bit float")
    return v


def _pydantic_reason(exc: pydantic.ValidationError, what: str) -> str:
    parts: list[str] = []
    seen: set[str] = set()
    for e in exc.errors(include_url=False):
        loc = e.get("loc", ())
        head = [str(x) for x in loc]
        # union members (result: float | dict) and nested paths: keep the field name
        if head and head[0] == "result":
            head = head[:1]
        field = ".".join(head) or what
        if field in seen:
            continue
        seen.add(field)
        if e.get("type") == "missing":
            parts.append(f"field {field!r} is missing")
        elif e.get("type") == "extra_forbidden":
            parts.append(f"field {field!r} is not allowed")
        elif field == "result":
            parts.append(
                f"field 'result' = {_short(e.get('input'))} must be a finite number "
                "(or an object for event kinds)"
            )
        else:
            msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
            parts.append(f"field {field!r} = {_short(e.get('input'))}: {msg}")
        if len(parts) >= 4:
            break
    return f"{what}: " + "; ".join(parts)


def _utc(dt: datetime, field: str) -> datetime:
    try:
        return dt.astimezone(UTC)
    except (OverflowError, ValueError):
        raise ValidationError(f"field {field!r} = {dt.isoformat()!r} is out of range") from None


def _time(value: Any, field: str) -> datetime:
    if not isinstance(value, str):
        raise ValidationError(
            f"field {field!r} = {_short(value)} must be an ISO-8601 string with a timezone"
        )
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError(
            f"field {field!r} = {_short(value)} is not an ISO-8601 timestamp; "
            "give e.g. '2024-06-01T08:00:00+08:00'"
        ) from None
    if dt.tzinfo is None or dt.tzinfo.utcoffset(dt) is None:
        raise ValidationError(
            f"field {field!r} = {_short(value)} has no timezone (naive); add an offset "
            "such as +08:00 or Z"
        )
    return _utc(dt, field)


def _check_datastream(ds: str, kind: str, station: str) -> None:
    base = f"{station}/{kind}"
    if ds != base and not ds.startswith(base + "/"):
        raise ValidationError(
            f"field 'datastream' = {ds!r} does not belong to the topic's station {station!r} "
            f"and kind {kind!r}; expected {base!r} or '{base}/<name>'"
        )
    if ds == f"{base}/{STATUS_STREAM}":
        raise ValidationError(
            f"field 'datastream' = {ds!r} uses the reserved name {STATUS_STREAM!r}; "
            "publish statuses to the status topic"
        )


def _build(
    kind: str,
    station: str,
    ds: str,
    pt: datetime,
    rt: datetime | None,
    result: Any,
    unit: str | None,
    seq: Any,
    params: Any,
    where: str,
) -> NormalizedObservation:
    """Check one observation's result/unit/seq and normalise it (raises ValidationError)."""
    spec = KINDS[_KIND_VALUES[kind]]
    if isinstance(seq, bool) or not isinstance(seq, int) or not (0 <= seq <= MAX_SEQ):
        raise ValidationError(f"field '{where}seq' = {_short(seq)} must be an integer >= 0")
    if params is not None and not isinstance(params, dict):
        raise ValidationError(f"field '{where}parameters' = {_short(params)} must be an object")
    if spec.event_model is not None:
        if not isinstance(result, dict):
            raise ValidationError(
                f"field '{where}result' = {_short(result)} must be an object for event kind {kind!r}"
            )
        if unit not in (None, ""):
            raise ValidationError(
                f"field 'unit' = {_short(unit)} is not allowed for event kind {kind!r}"
            )
        try:
            ev = spec.event_model.model_validate(result)
        except pydantic.ValidationError as exc:
            raise ValidationError(_pydantic_reason(exc, f"{where}result of {kind}")) from None
        event = ev.model_dump(by_alias=True, exclude_none=True)
        return NormalizedObservation(
            ds, kind, station, pt, rt or pt, seq, None, "", None, None, event, params
        )
    if isinstance(result, bool) or not isinstance(result, int | float):
        raise ValidationError(
            f"field '{where}result' = {_short(result)} must be a finite number for kind {kind!r}"
        )
    try:
        value = float(result)
    except OverflowError:
        raise ValidationError(f"field '{where}result' = {_short(result)} overflows a float") from None
    if not math.isfinite(value):
        raise ValidationError(f"field '{where}result' = {_short(result)} is not finite")
    si, si_unit = units.to_si(kind, value, unit, field=f"{where}result")  # type: ignore[arg-type]
    return NormalizedObservation(ds, kind, station, pt, rt or pt, seq, si, si_unit, value, unit, None, params)


# ------------------------------------------------------------------ parsing
def _parse_obs(doc: dict[str, Any], kind: str, station: str) -> tuple[NormalizedObservation, ...]:
    if "dataArray" in doc:
        return _parse_batch(doc, kind, station)
    try:
        m = Observation.model_validate(doc)
    except pydantic.ValidationError as exc:
        raise ValidationError(_pydantic_reason(exc, "observation")) from None
    _check_datastream(m.datastream, kind, station)
    pt = _utc(m.phenomenonTime, "phenomenonTime")
    rt = None if m.resultTime is None else _utc(m.resultTime, "resultTime")
    return (_build(kind, station, m.datastream, pt, rt, m.result, m.unit, m.seq, m.parameters, ""),)


def _parse_batch(doc: dict[str, Any], kind: str, station: str) -> tuple[NormalizedObservation, ...]:
    try:
        m = ObservationBatch.model_validate(doc)
    except pydantic.ValidationError as exc:
        raise ValidationError(_pydantic_reason(exc, "observation batch")) from None
    _check_datastream(m.datastream, kind, station)
    comps = list(m.components)
    if len(set(comps)) != len(comps):
        raise ValidationError(f"field 'components' = {comps!r} repeats a component")
    for need in ("phenomenonTime", "result"):
        if need not in comps:
            raise ValidationError(f"field 'components' = {comps!r} lacks {need!r}")
    n = len(comps)
    ip, ir = comps.index("phenomenonTime"), comps.index("result")
    irt = comps.index("resultTime") if "resultTime" in comps else None
    iseq = comps.index("seq") if "seq" in comps else None
    ipar = comps.index("parameters") if "parameters" in comps else None
    ds = m.datastream
    if KINDS[_KIND_VALUES[kind]].event_model is None:
        conv = units.conversion(kind, m.unit)  # one clear message for a bad unit, not one per row
        fast = _fast_rows(m.dataArray, n, ip, ir, irt, iseq, ipar, conv, kind, station, ds, m.unit)
        if fast is not None:
            return fast
    out = []
    for r, row in enumerate(m.dataArray):
        where = f"dataArray[{r}]."
        if len(row) != n:
            raise ValidationError(
                f"field 'dataArray[{r}]' has {len(row)} values but 'components' has {n}"
            )
        pt = _time(row[ip], where + "phenomenonTime")
        rt = None if irt is None else _time(row[irt], where + "resultTime")
        seq = 0 if iseq is None else row[iseq]
        params = None if ipar is None else row[ipar]
        out.append(_build(kind, station, ds, pt, rt, row[ir], m.unit, seq, params, where))
    return tuple(out)


def _fast_rows(
    rows: list[list[Any]],
    n: int,
    ip: int,
    ir: int,
    irt: int | None,
    iseq: int | None,
    ipar: int | None,
    conv: units.Conversion,
    kind: str,
    station: str,
    ds: str,
    unit: str | None,
) -> tuple[NormalizedObservation, ...] | None:
    """Fast path of a numeric batch; None as soon as a row needs the careful path
    (which then produces the exact rejection reason)."""
    q = conv.quantity
    lo, hi, scale, offset, si_unit = q.lo, q.hi, conv.scale, conv.offset, q.si_unit
    fromiso = datetime.fromisoformat
    out = []
    append = out.append
    for row in rows:
        if len(row) != n:
            return None
        t = row[ip]
        v = row[ir]
        if type(t) is not str or (type(v) is not float and type(v) is not int):
            return None
        try:
            pt = fromiso(t)
        except ValueError:
            return None
        off = pt.utcoffset()
        if off is None:
            return None
        if irt is None:
            rt = None
        else:
            trt = row[irt]
            if type(trt) is not str:
                return None
            try:
                rt = fromiso(trt)
            except ValueError:
                return None
            if rt.utcoffset() is None:
                return None
        seq = 0 if iseq is None else row[iseq]
        if type(seq) is not int or not (0 <= seq <= MAX_SEQ):
            return None
        params = None if ipar is None else row[ipar]
        if params is not None and type(params) is not dict:
            return None
        try:
            value = float(v)
            pt = pt.astimezone(UTC)
            rt = pt if rt is None else rt.astimezone(UTC)
        except (OverflowError, ValueError):
            return None
        si = scale * value + offset
        if not (lo <= si <= hi):
            return None
        append(NormalizedObservation(ds, kind, station, pt, rt, seq, si, si_unit, value, unit, None, params))
    return tuple(out)


def _parse_status(
    doc: dict[str, Any], kind: str, station: str, received_at: datetime
) -> tuple[Status, NormalizedObservation]:
    try:
        st = Status.model_validate(doc)
    except pydantic.ValidationError as exc:
        raise ValidationError(_pydantic_reason(exc, "status")) from None
    t = received_at if st.time is None else _utc(st.time, "time")
    obs = NormalizedObservation(
        datastream_id=f"{station}/{kind}/{STATUS_STREAM}",
        kind=kind,
        station=station,
        phenomenon_time=t,
        result_time=t,
        seq=0,
        value=st.battery,
        unit="1" if st.battery is not None else "",
        original_value=None,
        original_unit=None,
        event=st.model_dump(mode="json", exclude_none=True),
        is_status=True,
    )
    return st, obs


def _received(received_at: datetime | None) -> datetime:
    if received_at is None:
        return datetime.now(UTC)
    if not isinstance(received_at, datetime) or received_at.utcoffset() is None:
        raise ValidationError(
            f"received_at={received_at!r} must be a timezone-aware datetime (caller error)"
        )
    return received_at.astimezone(UTC)


def parse_message(
    topic: str, payload: bytes, received_at: datetime | None = None, *,
    max_payload_bytes: int = MAX_PAYLOAD_BYTES,
) -> Accepted | Rejected:
    """Validate one message; never raises on bad topic or payload.

    Parameters
    ----------
    topic : str
        ``sz/v1/{kind}/{station}/obs`` or ``.../status``.
    payload : bytes
        The message body, exactly as received.
    received_at : datetime, optional
        Timezone-aware arrival time (default: now); used as the time of a
        status without ``time``.
    max_payload_bytes : int
        Larger payloads are rejected before any decoding (:func:`oversized`).

    Returns
    -------
    Accepted or Rejected
        ``Rejected.reason`` names the field and the value; ``Rejected.payload``
        is ``payload`` unchanged (its first :data:`KEEP_BYTES` if oversized).

    Raises
    ------
    ValidationError
        Only if ``received_at`` is naive (a caller error, not bad input).
    """
    received = _received(received_at)
    kind = station = None
    raw = payload if isinstance(payload, bytes) else _as_bytes(payload)
    big = oversized(topic, raw, received, max_payload_bytes)
    if big is not None:
        return big
    try:
        info = parse_topic(topic)
        kind, station = info.kind, info.station
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValidationError(f"payload is not UTF-8 ({exc.reason} at byte {exc.start})") from None
        try:
            doc = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
        except RecursionError:
            raise ValidationError("payload JSON is nested too deeply") from None
        except ValueError as exc:
            raise ValidationError(f"payload is not valid JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise ValidationError(f"payload is JSON {type(doc).__name__}, not an object")
        if info.channel == "status":
            st, obs = _parse_status(doc, kind, station, received)
            return Accepted(topic, kind, station, (obs,), status=st)
        return Accepted(topic, kind, station, _parse_obs(doc, kind, station))
    except ValidationError as exc:
        return Rejected(_topic_text(topic), str(exc), raw, received, kind, station)
    except Exception as exc:  # never raise on input: an unforeseen failure is a rejection too
        return Rejected(
            _topic_text(topic),
            f"payload could not be validated ({type(exc).__name__}: {_short(str(exc), 200)})",
            raw,
            received,
            kind,
            station,
        )


def _as_bytes(payload: Any) -> bytes:
    if isinstance(payload, bytearray | memoryview):
        return bytes(payload)
    if isinstance(payload, str):
        return payload.encode("utf-8", "surrogatepass")
    return repr(payload).encode("utf-8", "backslashreplace")


def _topic_text(topic: Any) -> str:
    return topic if isinstance(topic, str) else repr(topic)
