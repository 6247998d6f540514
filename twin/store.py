"""The twin's one database: runs, observations, events, sensors and snapshots.

Layout of a store directory::

    <dir>/twin.sqlite        SQLite database (WAL journal, synchronous=FULL)
    <dir>/snapshots/*.nc     one NetCDF4 (HDF5) file per snapshot

Why SQLite: it is in the standard library, several processes may write to
one database safely (writers take turns on a lock; the busy timeout makes
them wait rather than fail), ``synchronous=FULL`` makes a committed row
durable before the call returns (the sensor bridge acknowledges only then),
and UNIQUE constraints make storing observations idempotent: re-storing an
observation with the same ``(datastream_id, phenomenon_time, seq)`` is a
no-op that returns ``False``, and the first stored value wins.

Rejected sensor messages go to the ``dead_letters`` table with their exact
bytes, topic, reason and arrival time (one row per distinct topic+payload;
repeats increment ``hits``); :meth:`Store.put_ingested` writes a batch of
observations and dead letters in one transaction for the sensor bridge.

Times in the database are ISO-8601 UTC strings of fixed width
(``YYYY-MM-DDTHH:MM:SS.ffffffZ``), so text order is time order and one
instant has one spelling. Time ranges are half-open: ``t0 <= t < t1``.

A snapshot is a NetCDF4 file of the state's Datasets (written, read and
checked by :mod:`twin.snapshots`) plus rows of this database tied to it: the
clock (start, now_s), the sensors and the events. The file's SHA-256 and size
are recorded; :meth:`Store.restore` verifies them first.

Two backends, one API: a directory is this SQLite store (the default); a ``postgresql://`` URL (also from
``TWIN_STORE``) is :class:`twin.store_pg.PgStore`, same tables, semantics and methods. :func:`open_store`
chooses; :meth:`Store.open` and :meth:`Store.open_readonly` accept either. The schema is versioned
(``schema_version``): numbered steps (:data:`_MIGRATIONS` here, ``PG_MIGRATIONS`` there) are applied in order
at open. Version 2 added the ``latest`` table (each datastream's newest time and value, kept by a trigger on
insert: the live map reads one row per stream) and the sensors' lon/lat columns; version 3 the ``hourly``
roll-up (count, sum, max, min per datastream and UTC hour, kept by a trigger) that :meth:`Store.aggregate`
reads whole hours from. :meth:`Store.wait_for_change` lets a follower sleep until another connection commits.

The console and other readers that must never write open the store with
:meth:`Store.open_readonly` and ask it through its read-only queries
(:meth:`Store.data_version`, :meth:`Store.latest_observations`,
:meth:`Store.observations_after`, :meth:`Store.event_rows_after`, ...) rather
than reading the tables themselves: the schema is this module's to change.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import quote

import numpy as np

from twin.clock import SimClock, as_utc
from twin.errors import ClockError, DataIntegrityError, SnapshotError, StoreError, ValidationError
from twin.events import Event, EventLog, Severity
from twin.sensors import Sensor, SensorRegistry
from twin.snapshots import read_state, snapshot_filename, verify_file, write_state

if TYPE_CHECKING:  # pragma: no cover
    from twin.state import TwinState

SCHEMA_VERSION = 4
DB_NAME = "twin.sqlite"
SNAPSHOT_DIR = "snapshots"
BUSY_TIMEOUT_S = 60.0
RUN_STATUSES = ("running", "done", "failed", "cancelled")

_SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    started TEXT NOT NULL,
    ended TEXT,
    params TEXT NOT NULL,
    status TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS snapshots (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER REFERENCES runs(id),
    label TEXT,
    sim_time_s REAL NOT NULL,
    clock_start TEXT NOT NULL,
    created TEXT NOT NULL,
    path TEXT NOT NULL UNIQUE,
    sha256 TEXT NOT NULL,
    nbytes INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS observations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    datastream_id TEXT NOT NULL,
    phenomenon_time TEXT NOT NULL,
    result_time TEXT NOT NULL,
    seq INTEGER NOT NULL DEFAULT 0,
    value REAL,
    unit TEXT NOT NULL DEFAULT '',
    raw TEXT,
    UNIQUE (datastream_id, phenomenon_time, seq)
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER REFERENCES runs(id),
    snapshot_id INTEGER REFERENCES snapshots(id) ON DELETE CASCADE,
    pos INTEGER NOT NULL DEFAULT 0,
    time_s REAL NOT NULL,
    wall_time TEXT NOT NULL,
    kind TEXT NOT NULL,
    source TEXT NOT NULL,
    severity TEXT NOT NULL CHECK (severity IN ('info', 'advisory', 'warning', 'alarm')),
    message TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_time ON events (snapshot_id, time_s);
CREATE TABLE IF NOT EXISTS sensors (
    pk INTEGER PRIMARY KEY AUTOINCREMENT,
    snapshot_id INTEGER REFERENCES snapshots(id) ON DELETE CASCADE,
    pos INTEGER NOT NULL DEFAULT 0,
    id TEXT NOT NULL,
    kind TEXT NOT NULL,
    record TEXT NOT NULL,
    UNIQUE (snapshot_id, id)
);
CREATE UNIQUE INDEX IF NOT EXISTS sensors_live_id ON sensors (id) WHERE snapshot_id IS NULL;
"""

# Tables added within schema version 1: created on every open (IF NOT EXISTS), so
# stores made before they existed gain them without a version bump.
_SCHEMA_V1_ADDITIONS = """
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    digest TEXT NOT NULL UNIQUE,
    received_at TEXT NOT NULL,
    last_received_at TEXT NOT NULL,
    hits INTEGER NOT NULL DEFAULT 1,
    topic TEXT NOT NULL,
    reason TEXT NOT NULL,
    source TEXT NOT NULL DEFAULT '',
    payload BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_letters_time ON dead_letters (received_at);
CREATE UNIQUE INDEX IF NOT EXISTS events_run_line ON events (run_id, pos)
    WHERE snapshot_id IS NULL AND run_id IS NOT NULL AND pos > 0;
"""

# Schema upgrades: version -> statements taking the store from that version to version + 1, applied in
# order at open in the transaction that reads the version (several openers: the first migrates, the rest see
# the new version). Version 2: the ``latest`` table (the newest observation of each datastream, kept by a
# trigger on insert: the live map's query reads one row per stream instead of scanning every observation)
# and the sensors' lon/lat columns (bounding-box queries without parsing records). Version 3: the ``hourly``
# roll-up (count, sum, max, min of each datastream's values per UTC hour, kept by a trigger on insert), from
# which :meth:`Store.aggregate` reads whole hours (a year of one-minute readings: 8,760 rows, not 525,600).
_LATEST_TRIGGER_SQLITE = """
CREATE TRIGGER IF NOT EXISTS observations_latest AFTER INSERT ON observations BEGIN
    INSERT INTO latest (datastream_id, obs_id, phenomenon_time, seq, value)
    VALUES (NEW.datastream_id, NEW.id, NEW.phenomenon_time, NEW.seq, NEW.value)
    ON CONFLICT (datastream_id) DO UPDATE SET obs_id = excluded.obs_id,
        phenomenon_time = excluded.phenomenon_time, seq = excluded.seq, value = excluded.value
    WHERE excluded.phenomenon_time > latest.phenomenon_time
       OR (excluded.phenomenon_time = latest.phenomenon_time AND excluded.seq > latest.seq);
END
"""
# the newest row of each datastream (by time, then seq): the same statement on both backends
LATEST_BACKFILL = (
    "INSERT INTO latest (datastream_id, obs_id, phenomenon_time, seq, value) "
    "SELECT datastream_id, id, phenomenon_time, seq, value FROM (SELECT datastream_id, id, phenomenon_time, seq, value, "
    "ROW_NUMBER() OVER (PARTITION BY datastream_id ORDER BY phenomenon_time DESC, seq DESC) AS k "
    "FROM observations) AS ranked WHERE k = 1"
)
_HOURLY_TRIGGER_SQLITE = """
CREATE TRIGGER IF NOT EXISTS observations_hourly AFTER INSERT ON observations WHEN NEW.value IS NOT NULL BEGIN
    INSERT INTO hourly (datastream_id, hour, n, vsum, vmax, vmin)
    VALUES (NEW.datastream_id, substr(NEW.phenomenon_time, 1, 13), 1, NEW.value, NEW.value, NEW.value)
    ON CONFLICT (datastream_id, hour) DO UPDATE SET
        n = n + 1, vsum = vsum + excluded.vsum, vmax = MAX(vmax, excluded.vmax), vmin = MIN(vmin, excluded.vmin);
END
"""
HOURLY_BACKFILL = (
    "INSERT INTO hourly (datastream_id, hour, n, vsum, vmax, vmin) "
    "SELECT datastream_id, substr(phenomenon_time, 1, 13), COUNT(value), SUM(value), MAX(value), MIN(value) "
    "FROM observations WHERE value IS NOT NULL GROUP BY datastream_id, substr(phenomenon_time, 1, 13)"
)
# Version 4: a reading the bridge flagged ``clock_skew`` (stamped ahead of its arrival, ``raw["flags"]``) no
# longer becomes its stream's ``latest`` row, so a device clock running ahead cannot make a silent stream look
# fresh on the live map, in ``latest_times`` or in ``twin bridge inspect``; and ``latest`` keeps the unit, so the
# console starts from :meth:`Store.latest_values` (one table, no raw messages). ``{raw}`` is the raw column; the
# substring test comes first (a CASE: the JSON is parsed only for the rare rows that mention the flag, and only
# when it is valid JSON, so a row with unparseable raw text is never refused).
SKEWED_SQLITE = ("(CASE WHEN instr({raw}, 'clock_skew') > 0 THEN (CASE WHEN json_valid({raw}) THEN EXISTS "
                 "(SELECT 1 FROM json_each({raw}, '$.flags') WHERE value = 'clock_skew') ELSE 0 END) ELSE 0 END)")
_LATEST_TRIGGER_SQLITE_V4 = f"""
CREATE TRIGGER observations_latest AFTER INSERT ON observations WHEN NOT {SKEWED_SQLITE.format(raw="NEW.raw")} BEGIN
    INSERT INTO latest (datastream_id, obs_id, phenomenon_time, seq, value, unit)
    VALUES (NEW.datastream_id, NEW.id, NEW.phenomenon_time, NEW.seq, NEW.value, NEW.unit)
    ON CONFLICT (datastream_id) DO UPDATE SET obs_id = excluded.obs_id,
        phenomenon_time = excluded.phenomenon_time, seq = excluded.seq, value = excluded.value, unit = excluded.unit
    WHERE excluded.phenomenon_time > latest.phenomenon_time
       OR (excluded.phenomenon_time = latest.phenomenon_time AND excluded.seq > latest.seq);
END
""".strip()


def latest_rebuild(skewed: str) -> str:
    """The version-4 ``latest`` backfill (with the unit), leaving out rows for which ``skewed`` (SQL over
    ``{raw}``) is true; the same statement on both backends."""
    return (
        "INSERT INTO latest (datastream_id, obs_id, phenomenon_time, seq, value, unit) "
        "SELECT datastream_id, id, phenomenon_time, seq, value, unit FROM (SELECT datastream_id, id, phenomenon_time, "
        "seq, value, unit, ROW_NUMBER() OVER (PARTITION BY datastream_id ORDER BY phenomenon_time DESC, seq DESC) "
        f"AS k FROM observations WHERE NOT {skewed.format(raw='raw')}) AS ranked WHERE k = 1"
    )


_MIGRATIONS: dict[int, list[str]] = {
    1: [
        "CREATE TABLE latest (datastream_id TEXT PRIMARY KEY, obs_id INTEGER NOT NULL, "
        "phenomenon_time TEXT NOT NULL, seq INTEGER NOT NULL, value REAL) WITHOUT ROWID",
        LATEST_BACKFILL,
        _LATEST_TRIGGER_SQLITE.strip(),
        "ALTER TABLE sensors ADD COLUMN lon REAL",
        "ALTER TABLE sensors ADD COLUMN lat REAL",
        "UPDATE sensors SET lon = json_extract(record, '$.lon'), lat = json_extract(record, '$.lat')",
        "CREATE INDEX sensors_lonlat ON sensors (lon, lat) WHERE snapshot_id IS NULL",
    ],
    2: [
        "CREATE TABLE hourly (datastream_id TEXT NOT NULL, hour TEXT NOT NULL, n INTEGER NOT NULL, "
        "vsum REAL NOT NULL, vmax REAL NOT NULL, vmin REAL NOT NULL, PRIMARY KEY (datastream_id, hour)) WITHOUT ROWID",
        HOURLY_BACKFILL,
        _HOURLY_TRIGGER_SQLITE.strip(),
    ],
    3: [
        "DROP TRIGGER observations_latest",
        "ALTER TABLE latest ADD COLUMN unit TEXT NOT NULL DEFAULT ''",
        _LATEST_TRIGGER_SQLITE_V4,
        "DELETE FROM latest",
        latest_rebuild(SKEWED_SQLITE),
    ],
}


# ====================================================================== times
def utc_text(when: datetime | str, what: str = "time") -> str:
    """Canonical fixed-width ISO-8601 UTC text of a timezone-aware instant.

    Raises
    ------
    ValidationError
        For naive datetimes or unparseable strings.
    """
    try:
        utc = as_utc(when, what)
    except ClockError as err:
        raise ValidationError(str(err)) from None
    return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_utc(text: str) -> datetime:
    """Inverse of :func:`utc_text`."""
    return datetime.fromisoformat(text).astimezone(UTC)


def _now_text() -> str:
    return utc_text(datetime.now(UTC))


# =============================================================== observations
@dataclass(frozen=True)
class Observation:
    """One observation of a datastream (SensorThings-like).

    Attributes
    ----------
    datastream_id : str
        E.g. ``"<sensor id>/<observed property>"``.
    phenomenon_time : datetime
        When the value was true (UTC).
    value : float or None
        Numeric result (None for a non-numeric result kept in ``raw``).
    unit : str
    result_time : datetime or None
        When the result was produced; default: when stored.
    seq : int
        Tie-breaker for several results at the same phenomenon time.
    raw : dict or None
        The original message, JSON-compatible.
    """

    datastream_id: str
    phenomenon_time: datetime
    value: float | None
    unit: str = ""
    result_time: datetime | None = None
    seq: int = 0
    raw: dict[str, Any] | None = field(default=None, compare=True)


def _obs_row(o: Observation | dict[str, Any]) -> tuple[Any, ...]:
    if isinstance(o, dict):
        try:
            o = Observation(**o)
        except TypeError as exc:
            raise ValidationError(f"observation record {o!r} is invalid: {exc}") from exc
    if not isinstance(o.datastream_id, str) or not o.datastream_id:
        raise ValidationError(f"observation datastream_id={o.datastream_id!r} must be non-empty")
    value = o.value
    if value is not None:
        if isinstance(value, bool) or not isinstance(value, int | float | np.number):
            raise ValidationError(
                f"observation {o.datastream_id!r} value={value!r} is not a number; "
                "put non-numeric results in raw and value=None"
            )
        value = float(value)
        if math.isnan(value):
            value = None
    if isinstance(o.seq, bool) or not isinstance(o.seq, int | np.integer):
        raise ValidationError(f"observation {o.datastream_id!r} seq={o.seq!r} must be an integer")
    pt = utc_text(o.phenomenon_time, "phenomenon_time")
    rt = _now_text() if o.result_time is None else utc_text(o.result_time, "result_time")
    raw = None if o.raw is None else json.dumps(o.raw, ensure_ascii=False, sort_keys=True)
    return (o.datastream_id, pt, rt, int(o.seq), value, o.unit or "", raw)


_RAW_JSON = json.JSONEncoder(ensure_ascii=False, sort_keys=True).encode


def _fast_utc_text(when: Any) -> str | None:
    """:func:`utc_text` of an aware UTC datetime with a 4-digit year, else None."""
    if type(when) is datetime and when.tzinfo is UTC and when.year >= 1000:
        return when.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
    return None


def _ingest_row(o: Observation | dict[str, Any]) -> tuple[Any, ...]:
    """:func:`_obs_row` with a fast path for the bridge's already-validated observations
    (UTC datetimes, float or None value, int seq); same row as :func:`_obs_row`."""
    if type(o) is Observation and type(o.seq) is int and type(o.datastream_id) is str:
        value = o.value
        if (value is None or (type(value) is float and value == value)) and o.datastream_id:
            pt = _fast_utc_text(o.phenomenon_time)
            rt = pt if o.result_time is o.phenomenon_time else _fast_utc_text(o.result_time)
            if pt is not None and rt is not None:
                raw = None if o.raw is None else _RAW_JSON(o.raw)
                return (o.datastream_id, pt, rt, o.seq, value, o.unit or "", raw)
    return _obs_row(o)


_OBS_INSERT = (
    "INSERT INTO observations "
    "(datastream_id, phenomenon_time, result_time, seq, value, unit, raw) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (datastream_id, phenomenon_time, seq) DO NOTHING"
)


class ObservationRow(NamedTuple):
    """An observation as the live readers take it: with its row id, time as stored text.

    ``phenomenon_time`` is the store's fixed-width UTC text (text order is time
    order), so followers compare and forward it without parsing.
    """

    id: int
    datastream_id: str
    phenomenon_time: str
    value: float | None
    unit: str
    raw: dict[str, Any] | None


class StreamStats(NamedTuple):
    """One datastream's readings at a glance (:meth:`Store.stream_stats`); times are the store's UTC text."""

    datastream_id: str
    count: int
    first: str
    last: str | None
    last_result_time: str | None
    clock_skew: int


class LatestValues(NamedTuple):
    """Every datastream's newest observation as columns (:meth:`Store.latest_values`)."""

    datastream_ids: list[str]
    phenomenon_times: list[str]
    values: np.ndarray
    units: list[str]


class EventRow(NamedTuple):
    """An event of the live log with its row id (the order live readers follow).

    ``run_id`` is the model run the event belongs to (None for an event of the
    live twin: a sensor's, an operator's); ``run_kind`` is that run's kind.
    """

    id: int
    time_s: float
    wall_time: str
    kind: str
    source: str
    severity: str
    message: str
    data: dict[str, Any]
    run_id: int | None = None
    run_kind: str | None = None


def _obs_from_row(r: tuple[Any, ...]) -> ObservationRow:
    return ObservationRow(int(r[0]), r[1], r[2], r[3], r[4], None if r[5] is None else json.loads(r[5]))


def _event_from_row(r: tuple[Any, ...]) -> EventRow:
    try:
        data = json.loads(r[7])
    except ValueError:  # written by another tool: the row still counts, without details
        data = {}
    return EventRow(int(r[0]), r[1], r[2], r[3], r[4], r[5], r[6], data, r[8], r[9])


# the run's kind comes from the runs table (a correlated lookup: NULL for live events)
_EVENT_COLS = ("id, time_s, wall_time, kind, source, severity, message, data, run_id, "
               "(SELECT r.kind FROM runs r WHERE r.id = events.run_id)")


@dataclass(frozen=True)
class PreparedBatch:
    """Rows of a bridge batch, validated and ready to write (:meth:`Store.prepare_ingested`)."""

    rows: list[tuple[Any, ...]]
    dead_letter_rows: list[tuple[Any, ...]]


# =============================================================== dead letters
@dataclass(frozen=True)
class DeadLetter:
    """A rejected message kept for audit: the exact bytes, the topic and why.

    Identical messages (same topic and payload bytes) share one row: ``hits``
    counts how often it arrived (at-least-once redelivery, retries), from
    ``received_at`` (first) to ``last_received_at``.
    """

    id: int
    topic: str
    reason: str
    payload: bytes
    received_at: datetime
    last_received_at: datetime
    hits: int
    source: str
    digest: str


def dead_letter_digest(topic: str, payload: bytes) -> str:
    """SHA-256 hex of ``topic`` (UTF-8), a NUL byte and ``payload``: a dead letter's identity."""
    h = hashlib.sha256(topic.encode("utf-8", "surrogatepass"))
    h.update(b"\0")
    h.update(payload)
    return h.hexdigest()


def _dl_row(
    topic: str, payload: bytes, reason: str, received_at: datetime | str | None, source: str = "",
    digest: str | None = None,
) -> tuple[Any, ...]:
    if not isinstance(topic, str):
        raise ValidationError(f"dead letter topic={topic!r} must be a string")
    if isinstance(payload, bytearray | memoryview):
        payload = bytes(payload)
    if not isinstance(payload, bytes):
        raise ValidationError(
            f"dead letter payload of type {type(payload).__name__} must be bytes (the raw message)"
        )
    if not isinstance(reason, str) or not reason:
        raise ValidationError(f"dead letter reason={reason!r} must be a non-empty string")
    if digest is None:
        digest = dead_letter_digest(topic, payload)
    elif not (isinstance(digest, str) and len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)):
        raise ValidationError(f"dead letter digest={digest!r} must be 64 lower-case hex digits (a SHA-256, e.g. "
                              "dead_letter_digest(topic, whole_payload)), or None for the kept bytes' digest")
    t = _now_text() if received_at is None else utc_text(received_at, "received_at")
    return (digest, t, t, topic, reason, str(source), payload)


_DL_UPSERT_SQLITE = (
    "INSERT INTO dead_letters "
    "(digest, received_at, last_received_at, hits, topic, reason, source, payload) "
    "VALUES (?, ?, ?, 1, ?, ?, ?, ?) "
    "ON CONFLICT (digest) DO UPDATE SET hits = hits + 1, "
    "last_received_at = MAX(last_received_at, excluded.last_received_at) "
    "RETURNING hits"
)


# ================================================================ aggregates
BUCKET_WIDTH = {"hour": 13, "day": 10}  # characters of the time text naming the bucket
_BUCKET_PAD = {"hour": ":00:00.000000Z", "day": "T00:00:00.000000Z"}
_HOUR_TAIL = ":00:00.000000Z"


def _next_hour(text: str) -> str:
    """The hour (``YYYY-MM-DDTHH``) of the first whole hour starting at or after time text ``text``."""
    if text[13:] == _HOUR_TAIL:
        return text[:13]
    start = parse_utc(text).replace(minute=0, second=0, microsecond=0)
    return utc_text(start + timedelta(hours=1))[:13]


def _merge(buckets: dict[str, list[float]], rows: Iterable[tuple[Any, ...]]) -> None:
    """Add (key, count, sum, max, min) rows into ``buckets``."""
    for key, n, total, vmax, vmin in rows:
        if not n:
            continue
        b = buckets.get(key)
        if b is None:
            buckets[key] = [int(n), float(total), float(vmax), float(vmin)]
        else:
            b[0] += int(n)
            b[1] += float(total)
            b[2] = max(b[2], float(vmax))
            b[3] = min(b[3], float(vmin))
WAIT_POLL_S = 0.05


class Aggregate(NamedTuple):
    """Values of one datastream in one UTC interval (:meth:`Store.aggregate`); ``start`` is the store's time text."""

    start: str
    count: int
    mean: float
    max: float
    min: float
    sum: float


def _check_bbox(west: float, south: float, east: float, north: float) -> tuple[float, float, float, float]:
    box = tuple(float(v) for v in (west, south, east, north))
    if not all(math.isfinite(v) for v in box) or box[0] > box[2] or box[1] > box[3]:
        raise ValidationError(f"bbox (west, south, east, north)={box!r} must be finite with west <= east "
                              "and south <= north (degrees)")
    return box  # type: ignore[return-value]


# ============================================================== store URLs
STORE_ENV = "TWIN_STORE"
FILES_ENV = "TWIN_STORE_FILES"
_URL_SCHEMES = ("postgresql://", "postgres://")


def is_store_url(target: Any) -> bool:
    """True for a ``postgresql://`` (or ``postgres://``) URL, False for a directory."""
    return isinstance(target, str) and target.lower().startswith(_URL_SCHEMES)


def open_store(target: str | os.PathLike | None = None, *, readonly: bool = False) -> Store:
    """Open the store at ``target``: a directory (SQLite, the default) or a ``postgresql://`` URL.

    ``target`` defaults to the ``TWIN_STORE`` environment variable. A PostgreSQL URL may carry
    ``?files=DIR`` (or ``TWIN_STORE_FILES``), the directory of snapshot files; see :mod:`twin.store_pg`.
    ``readonly`` opens an existing store for reading only (:meth:`Store.open_readonly`).

    Raises
    ------
    ValidationError
        If no target is given and ``TWIN_STORE`` is not set.
    StoreError
        If the store cannot be opened.
    """
    if target is None or (isinstance(target, str) and not target.strip()):
        target = os.environ.get(STORE_ENV, "").strip() or None
        if target is None:
            raise ValidationError(f"store=None and {STORE_ENV} is not set: give a store directory or a "
                                  "postgresql://user@host/db URL (or set TWIN_STORE)")
    if is_store_url(target):
        try:
            from twin.store_pg import PgStore
        except ImportError as exc:
            raise StoreError(f"the store is a PostgreSQL URL but psycopg is not installed ({exc}); "
                             "pip install 'shenzhen-twin[pg]' (or 'psycopg[binary]')") from exc
        return PgStore.open_readonly(str(target)) if readonly else PgStore.open(str(target))
    return Store.open_readonly(target) if readonly else Store.open(target)


# ================================================================== snapshots
@dataclass(frozen=True)
class SnapshotInfo:
    """A row of the snapshots table (``path`` made absolute)."""

    id: int
    run_id: int | None
    label: str | None
    sim_time_s: float
    clock_start: datetime
    created: datetime
    path: Path
    sha256: str
    nbytes: int


@dataclass(frozen=True)
class RunInfo:
    """A row of the runs table."""

    id: int
    kind: str
    started: datetime
    ended: datetime | None
    params: dict[str, Any]
    status: str



# ====================================================================== store
class Store:
    """An open store directory; use :meth:`open` (also a context manager).

    One :class:`Store` may be shared by threads (calls are serialised); other
    processes open their own :class:`Store` on the same directory.
    """

    _dl_upsert = _DL_UPSERT_SQLITE
    _skewed_sql = SKEWED_SQLITE
    backend = "sqlite"

    def __init__(self, root: Path, conn: sqlite3.Connection, *, readonly: bool = False) -> None:
        self.root = root
        self._conn = conn
        self._lock = threading.RLock()
        self.readonly = readonly
        self._seen_version: int | None = None

    # ------------------------------------------------------------- lifecycle
    @classmethod
    def open(cls, path: str | os.PathLike) -> Store:
        """Open (creating if needed) the store in directory ``path``.

        A ``postgresql://`` URL opens the PostgreSQL store instead (see :func:`open_store`).

        Raises
        ------
        StoreError
            If the directory or database cannot be created/opened, or the
            database has a newer schema than this engine understands.
        """
        if is_store_url(path):
            return open_store(str(path))
        root = Path(path).expanduser().resolve()
        try:
            (root / SNAPSHOT_DIR).mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                root / DB_NAME,
                timeout=BUSY_TIMEOUT_S,
                isolation_level=None,
                check_same_thread=False,
            )
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the store at {root}: {exc}") from exc
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise StoreError(
                    f"the store at {root} could not switch to WAL journaling (got {mode!r}); "
                    "keep stores on a local file system"
                )
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            store = cls(root, conn)
            store._init_schema()
        except sqlite3.Error as exc:
            conn.close()
            raise StoreError(
                f"cannot initialise the store database {root / DB_NAME}: {exc}"
            ) from exc
        except BaseException:
            conn.close()
            raise
        return store

    @classmethod
    def open_readonly(cls, path: str | os.PathLike) -> Store:
        """Open an existing store for reading only (``PRAGMA query_only``); nothing is created.

        For readers that must never write, such as the console's live view: a
        write through it raises :class:`StoreError`. ``path`` is the store
        directory (its ``twin.sqlite`` file is accepted too).

        Raises
        ------
        StoreError
            If there is no store database at ``path``.
        """
        if is_store_url(path):
            return open_store(str(path), readonly=True)
        p = Path(path).expanduser().resolve()
        root = p.parent if p.name == DB_NAME else p
        db = root / DB_NAME
        try:
            if not db.is_file():
                raise sqlite3.OperationalError("no such file")
            conn = sqlite3.connect(f"file:{quote(str(db))}?mode=ro", uri=True,
                                   timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                   check_same_thread=False)
            conn.execute("PRAGMA query_only = ON")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the store database {db} for reading: {exc}; "
                             "create the store first (twin bridge run --store DIR)") from exc
        return cls(root, conn, readonly=True)

    def _init_schema(self) -> None:
        with self._tx() as cur:
            cur.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = cur.execute("SELECT MAX(version) FROM schema_version").fetchone()
            version = row[0]
            if version is None:  # a new store: version 1, then every migration
                for stmt in _split_sql(_SCHEMA_V1 + _SCHEMA_V1_ADDITIONS):
                    cur.execute(stmt)
                cur.execute("INSERT INTO schema_version (version) VALUES (1)")
                version = 1
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"the store at {self.root} has schema version {version}, newer than this "
                    f"engine's {SCHEMA_VERSION}; upgrade shenzhen-twin (pip install -U "
                    "shenzhen-twin) or open a copy made by this version"
                )
            while version < SCHEMA_VERSION:
                script = _MIGRATIONS.get(version)
                if script is None:
                    raise StoreError(
                        f"the store at {self.root} has schema version {version} and no "
                        f"migration to {version + 1} exists; rebuild the store"
                    )
                for stmt in script:
                    cur.execute(stmt)
                version += 1
                cur.execute("UPDATE schema_version SET version = ?", (version,))
            for stmt in _split_sql(_SCHEMA_V1_ADDITIONS):
                cur.execute(stmt)

    @property
    def schema_version(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0])

    def close(self) -> None:
        """Close the database connection (idempotent)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None  # type: ignore[assignment]

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    @property
    def db_path(self) -> Path:
        return self.root / DB_NAME

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Cursor]:
        """One write transaction (``BEGIN IMMEDIATE``: takes the write lock up front)."""
        with self._lock:
            if self._conn is None:
                raise StoreError(f"the store at {self.root} is closed; open it again")
            if self.readonly:
                raise StoreError(f"the store at {self.root} was opened read-only; "
                                 "open it with Store.open to write")
            cur = self._conn.cursor()
            try:
                cur.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot start a transaction on {self.db_path}: {exc}") from exc
            try:
                yield cur
            except BaseException:
                self._conn.rollback()
                raise
            else:
                try:
                    self._conn.commit()
                except sqlite3.Error as exc:
                    self._conn.rollback()
                    raise StoreError(f"cannot commit to {self.db_path}: {exc}") from exc
            finally:
                cur.close()

    @staticmethod
    def _insert_id(cur: Any, sql: str, args: tuple[Any, ...]) -> int:
        """Run one INSERT into a table with an ``id`` key; the new row's id."""
        cur.execute(sql, args)
        return int(cur.lastrowid)

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            if self._conn is None:
                raise StoreError(f"the store at {self.root} is closed; open it again")
            try:
                return self._conn.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"query on {self.db_path} failed: {exc}") from exc

    # ------------------------------------------------------------------ runs
    def start_run(self, kind: str, params: dict[str, Any] | None = None) -> int:
        """Record the start of a run (a scenario, a replay, a live session); returns its id."""
        if not isinstance(kind, str) or not kind:
            raise ValidationError(f"run kind={kind!r} must be a non-empty string")
        try:
            params_json = json.dumps(params or {}, ensure_ascii=False, sort_keys=True)
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"run params {params!r} are not JSON-compatible: {exc}") from exc
        with self._tx() as cur:
            return self._insert_id(
                cur, "INSERT INTO runs (kind, started, params, status) VALUES (?, ?, ?, 'running')",
                (kind, _now_text(), params_json))

    def end_run(self, run_id: int, status: str = "done") -> None:
        """Mark a running run as ended with ``status`` in done/failed/cancelled."""
        if status not in RUN_STATUSES[1:]:
            raise ValidationError(f"run status={status!r} must be one of {RUN_STATUSES[1:]}")
        with self._tx() as cur:
            row = cur.execute("SELECT status FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise ValidationError(f"run_id={run_id!r} does not exist in {self.db_path}")
            if row[0] != "running":
                raise ValidationError(f"run {run_id} has already ended with status {row[0]!r}")
            cur.execute(
                "UPDATE runs SET ended = ?, status = ? WHERE id = ?", (_now_text(), status, run_id)
            )

    def runs(self) -> list[RunInfo]:
        """All runs, oldest first."""
        rows = self._query("SELECT id, kind, started, ended, params, status FROM runs ORDER BY id")
        return [
            RunInfo(
                id=r[0],
                kind=r[1],
                started=parse_utc(r[2]),
                ended=None if r[3] is None else parse_utc(r[3]),
                params=json.loads(r[4]),
                status=r[5],
            )
            for r in rows
        ]

    def run(self, run_id: int) -> RunInfo:
        for r in self.runs():
            if r.id == run_id:
                return r
        raise ValidationError(f"run_id={run_id!r} does not exist in {self.db_path}")

    # ---------------------------------------------------------- observations
    def put_observation(
        self,
        datastream_id: str,
        phenomenon_time: datetime | str,
        value: float | None,
        unit: str = "",
        *,
        result_time: datetime | str | None = None,
        seq: int = 0,
        raw: dict[str, Any] | None = None,
    ) -> bool:
        """Store one observation durably; ``True`` if stored, ``False`` if it was a duplicate.

        A duplicate has the same ``(datastream_id, phenomenon_time, seq)`` as a
        stored observation; it is ignored (the first stored value wins).
        """
        obs = Observation(datastream_id, phenomenon_time, value, unit, result_time, seq, raw)  # type: ignore[arg-type]
        row = _obs_row(obs)
        with self._tx() as cur:
            cur.execute(_OBS_INSERT, row)
            return cur.rowcount == 1

    def put_observations(self, batch: Iterable[Observation | dict[str, Any]]) -> int:
        """Store a batch of observations in one transaction; returns how many were new.

        Every record is validated before anything is written, so an invalid
        record stores nothing.
        """
        rows = [_obs_row(o) for o in batch]
        stored = 0
        with self._tx() as cur:
            for row in rows:
                cur.execute(_OBS_INSERT, row)
                stored += cur.rowcount
        return stored

    def observations(
        self,
        datastream_id: str,
        t0: datetime | str | None = None,
        t1: datetime | str | None = None,
        *,
        limit: int | None = None,
    ) -> list[Observation]:
        """Observations of a datastream with ``t0 <= phenomenon_time < t1``, in time then seq order."""
        sql = (
            "SELECT datastream_id, phenomenon_time, value, unit, result_time, seq, raw "
            "FROM observations WHERE datastream_id = ?"
        )
        args: list[Any] = [datastream_id]
        if t0 is not None:
            sql += " AND phenomenon_time >= ?"
            args.append(utc_text(t0, "t0"))
        if t1 is not None:
            sql += " AND phenomenon_time < ?"
            args.append(utc_text(t1, "t1"))
        sql += " ORDER BY phenomenon_time, seq"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        return [
            Observation(
                datastream_id=r[0],
                phenomenon_time=parse_utc(r[1]),
                value=r[2],
                unit=r[3],
                result_time=parse_utc(r[4]),
                seq=r[5],
                raw=None if r[6] is None else json.loads(r[6]),
            )
            for r in self._query(sql, tuple(args))
        ]

    def count_observations(self, datastream_id: str | None = None) -> int:
        """Number of stored observations (of one datastream, or all)."""
        if datastream_id is None:
            return int(self._query("SELECT COUNT(*) FROM observations")[0][0])
        return int(
            self._query(
                "SELECT COUNT(*) FROM observations WHERE datastream_id = ?", (datastream_id,)
            )[0][0]
        )

    def datastreams(self) -> list[str]:
        """Ids of the datastreams that have observations."""
        return [
            r[0] for r in self._query("SELECT DISTINCT datastream_id FROM observations ORDER BY 1")
        ]

    def put_ingested(
        self,
        observations: Iterable[Observation | dict[str, Any]],
        dead_letters: Iterable[tuple[Any, ...] | dict[str, Any]] = (),
    ) -> list[bool]:
        """Store observations and dead letters in one durable transaction.

        Used by the sensor bridge to commit a batch of messages before
        acknowledging them. ``dead_letters`` items are ``(topic, payload, reason,
        received_at[, source[, digest]])`` tuples or dicts with those keys (``digest``:
        see :meth:`put_dead_letter`). Returns, per
        observation, ``True`` if it was new and ``False`` if it was a duplicate.
        Every record is validated before anything is written.

        It is :meth:`prepare_ingested` (validation and row building, no
        database access) followed by :meth:`write_prepared` (the transaction);
        processes that share a store and take turns on writes run only the
        second under their lock.
        """
        return self.write_prepared(self.prepare_ingested(observations, dead_letters))

    @staticmethod
    def prepare_ingested(
        observations: Iterable[Observation | dict[str, Any]],
        dead_letters: Iterable[tuple[Any, ...] | dict[str, Any]] = (),
    ) -> PreparedBatch:
        """Validate a batch and build its rows (see :meth:`put_ingested`); writes nothing."""
        rows = [_ingest_row(o) for o in observations]
        dl_rows = [
            _dl_row(**d) if isinstance(d, dict) else _dl_row(*d) for d in dead_letters
        ]
        return PreparedBatch(rows, dl_rows)

    def write_prepared(self, batch: PreparedBatch) -> list[bool]:
        """Write a :meth:`prepare_ingested` batch in one durable transaction; new-row flags.

        The observations go in with one ``executemany``; only when some of them
        were already stored (fewer rows changed than given) are the new ones
        told apart, by their keys among the rows this transaction added (the
        first of several equal keys in one batch is the new one).
        """
        rows = batch.rows
        with self._tx() as cur:
            first_id = cur.execute("SELECT COALESCE(MAX(id), 0) FROM observations").fetchone()[0]
            added = 0
            if rows:  # rowcount: the rows this statement inserted (not those of the ``latest`` trigger)
                cur.executemany(_OBS_INSERT, rows)
                added = cur.rowcount
            if added == len(rows):
                new = [True] * len(rows)
            else:
                fresh = set(cur.execute(
                    "SELECT datastream_id, phenomenon_time, seq FROM observations WHERE id > ?",
                    (first_id,)).fetchall())
                new = []
                for r in rows:
                    key = (r[0], r[1], r[3])
                    new.append(key in fresh)
                    fresh.discard(key)
            for row in batch.dead_letter_rows:
                cur.execute(self._dl_upsert, row).fetchall()
        return new

    def latest_times(self, not_after: datetime | str | None = None) -> dict[str, datetime]:
        """Latest phenomenon time per datastream (only times ``<= not_after`` if given).

        Readings flagged ``clock_skew`` (``raw["flags"]``: stamped ahead of their arrival) are left out, as in
        the ``latest`` table: a stream whose readings are all flagged has no entry. The sensor bridge seeds its
        watermarks and stale-stream detection from it on restart.
        """
        if not_after is None:
            return {r[0]: parse_utc(r[1]) for r in self._query("SELECT datastream_id, phenomenon_time FROM latest")}
        sql = (f"SELECT datastream_id, MAX(phenomenon_time) FROM observations WHERE phenomenon_time <= ? "
               f"AND NOT {self._skewed_sql.format(raw='raw')} GROUP BY datastream_id")
        return {r[0]: parse_utc(r[1]) for r in self._query(sql, (utc_text(not_after, "not_after"),))}

    def stream_stats(self) -> list[StreamStats]:
        """Per datastream (in id order): readings, first time, and the last time and result time of the readings
        not flagged ``clock_skew`` (None if all are), with how many are flagged. One scan of the observations
        (what ``twin bridge inspect`` reports)."""
        skewed = self._skewed_sql.format(raw="raw")
        rows = self._query(
            f"SELECT datastream_id, COUNT(*), MIN(phenomenon_time), "
            f"MAX(CASE WHEN {skewed} THEN NULL ELSE phenomenon_time END), "
            f"MAX(CASE WHEN {skewed} THEN NULL ELSE result_time END), "
            f"SUM(CASE WHEN {skewed} THEN 1 ELSE 0 END) "
            "FROM observations GROUP BY datastream_id ORDER BY datastream_id")
        return [StreamStats(r[0], int(r[1]), r[2], r[3], r[4], int(r[5] or 0)) for r in rows]

    # ---------------------------------------------------------- dead letters
    def put_dead_letter(
        self,
        topic: str,
        payload: bytes,
        reason: str,
        received_at: datetime | str | None = None,
        *,
        source: str = "",
        digest: str | None = None,
    ) -> bool:
        """Keep a rejected message durably; ``True`` if new, ``False`` if the same
        topic+payload was already kept (its ``hits`` is incremented).

        ``digest`` is the message's identity when ``payload`` is not the whole message (the bridge keeps the
        first KiB of an oversized one and passes :func:`dead_letter_digest` of the whole payload, so two large
        messages that start alike stay two dead letters); default: the digest of topic and ``payload``.
        """
        row = _dl_row(topic, payload, reason, received_at, source, digest)
        with self._tx() as cur:
            hits = cur.execute(self._dl_upsert, row).fetchone()[0]
        return int(hits) == 1

    def put_dead_letters(self, batch: Iterable[tuple[Any, ...] | dict[str, Any]]) -> int:
        """Keep several rejected messages in one transaction; returns how many were new.

        Items are ``(topic, payload, reason, received_at[, source[, digest]])`` or dicts
        (see :meth:`put_dead_letter` for ``digest``).
        """
        rows = [_dl_row(**d) if isinstance(d, dict) else _dl_row(*d) for d in batch]
        n = 0
        with self._tx() as cur:
            for row in rows:
                n += int(cur.execute(self._dl_upsert, row).fetchone()[0]) == 1
        return n

    def dead_letters(
        self,
        t0: datetime | str | None = None,
        t1: datetime | str | None = None,
        *,
        topic: str | None = None,
        limit: int | None = None,
    ) -> list[DeadLetter]:
        """Dead letters first received in ``t0 <= received_at < t1`` (of one topic), oldest first."""
        sql = (
            "SELECT id, topic, reason, payload, received_at, last_received_at, hits, source, "
            "digest FROM dead_letters WHERE 1 = 1"
        )
        args: list[Any] = []
        if t0 is not None:
            sql += " AND received_at >= ?"
            args.append(utc_text(t0, "t0"))
        if t1 is not None:
            sql += " AND received_at < ?"
            args.append(utc_text(t1, "t1"))
        if topic is not None:
            sql += " AND topic = ?"
            args.append(topic)
        sql += " ORDER BY id"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        return [
            DeadLetter(
                id=r[0],
                topic=r[1],
                reason=r[2],
                payload=bytes(r[3]),
                received_at=parse_utc(r[4]),
                last_received_at=parse_utc(r[5]),
                hits=r[6],
                source=r[7],
                digest=r[8],
            )
            for r in self._query(sql, tuple(args))
        ]

    def event_severity_counts(self) -> dict[str, int]:
        """Events of the live log per severity (every severity, 0 when none), least severe first."""
        counts = dict(self._query("SELECT severity, COUNT(*) FROM events WHERE snapshot_id IS NULL GROUP BY severity"))
        return {s.value: int(counts.get(s.value, 0)) for s in sorted(Severity, key=lambda s: s.rank)}

    def recent_events(self, min_severity: Severity | str = "info", limit: int = 10) -> list[EventRow]:
        """The newest ``limit`` live-log events of ``min_severity`` or above, newest first."""
        rank = Severity.coerce(min_severity).rank
        levels = [s.value for s in Severity if s.rank >= rank]
        if int(limit) <= 0:
            return []
        rows = self._query(
            f"SELECT {_EVENT_COLS} FROM events WHERE snapshot_id IS NULL AND severity IN "
            f"({','.join('?' * len(levels))}) ORDER BY id DESC LIMIT ?", (*levels, int(limit)))
        return [_event_from_row(r) for r in rows]

    def count_dead_letters(self, *, hits: bool = False) -> int:
        """Number of distinct dead letters (or, with ``hits=True``, of rejected deliveries)."""
        col = "COALESCE(SUM(hits), 0)" if hits else "COUNT(*)"
        return int(self._query(f"SELECT {col} FROM dead_letters")[0][0])

    # ---------------------------------------------------------------- events
    @staticmethod
    def _event_row(e: Event) -> tuple[Any, ...]:
        return (
            float(e.time_s),
            utc_text(e.wall_time, "wall_time"),
            e.kind,
            e.source,
            e.severity.value,
            e.message,
            json.dumps(e.data, ensure_ascii=False),
        )

    def put_event(self, event: Event | dict[str, Any], run_id: int | None = None) -> int:
        """Store an event in the live log (not tied to a snapshot); returns its row id."""
        if not isinstance(event, Event):
            event = Event.parse(event)
        with self._tx() as cur:
            return self._insert_id(
                cur, "INSERT INTO events (run_id, snapshot_id, time_s, wall_time, kind, source, "
                "severity, message, data) VALUES (?, NULL, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, *self._event_row(event)))

    def put_run_events(self, run_id: int, events: Iterable[Event | dict[str, Any]]) -> int:
        """Store the events of model run ``run_id`` in the live log, idempotently; returns how many were new.

        The events are tied to the run (``run_id``) and keep their order
        (``pos`` = 1, 2, ... in the order given). Storing the same run's events
        again adds only those beyond the ones already stored (a re-import of
        the same ``events.jsonl`` adds nothing): a unique index on
        ``(run_id, pos)`` makes the insert a no-op for a stored position,
        even when two processes import at once.

        Raises
        ------
        ValidationError
            For a run id not in the store, or a record :class:`~twin.events.Event` refuses
            (nothing is stored then).
        """
        rows = []
        for i, e in enumerate(events, start=1):
            ev = e if isinstance(e, Event) else Event.parse(e)
            rows.append((int(run_id), i, *self._event_row(ev)))
        with self._tx() as cur:
            if cur.execute("SELECT 1 FROM runs WHERE id = ?", (int(run_id),)).fetchone() is None:
                raise ValidationError(f"run_id={run_id!r} does not exist in {self.db_path}")
            cur.executemany(
                "INSERT INTO events (run_id, snapshot_id, pos, time_s, wall_time, kind, "
                "source, severity, message, data) VALUES (?, NULL, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT DO NOTHING", rows)
            return max(int(cur.rowcount), 0)

    def run_event_rows(self, run_id: int, kind: str | None = None, *, limit: int | None = None
                       ) -> list[EventRow]:
        """The live-log events of model run ``run_id`` (of ``kind``), in the run's order (at most ``limit``)."""
        sql = f"SELECT {_EVENT_COLS} FROM events WHERE snapshot_id IS NULL AND run_id = ?"
        args: list[Any] = [int(run_id)]
        if kind is not None:
            sql += " AND kind = ?"
            args.append(kind)
        sql += " ORDER BY pos, id"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        return [_event_from_row(r) for r in self._query(sql, tuple(args))]

    def run_event_counts(self, run_id: int) -> dict[str, int]:
        """Number of live-log events of model run ``run_id`` per event kind (kinds sorted)."""
        rows = self._query("SELECT kind, COUNT(*) FROM events WHERE snapshot_id IS NULL AND run_id = ? "
                           "GROUP BY kind ORDER BY kind", (int(run_id),))
        return {r[0]: int(r[1]) for r in rows}

    def events(
        self,
        kind: str | None = None,
        t0: float | None = None,
        t1: float | None = None,
        *,
        severity: Severity | str | None = None,
        min_severity: Severity | str | None = None,
        run_id: int | None = None,
        snapshot_id: int | None = None,
    ) -> list[Event]:
        """Events of the live log (or of one snapshot) matching every given filter.

        ``t0 <= time_s < t1`` in simulation seconds; ordered as stored.
        """
        if snapshot_id is None:
            sql = "SELECT time_s, wall_time, kind, source, severity, message, data FROM events WHERE snapshot_id IS NULL"
            args: list[Any] = []
        else:
            sql = "SELECT time_s, wall_time, kind, source, severity, message, data FROM events WHERE snapshot_id = ?"
            args = [snapshot_id]
        if kind is not None:
            sql += " AND kind = ?"
            args.append(kind)
        if t0 is not None:
            sql += " AND time_s >= ?"
            args.append(float(t0))
        if t1 is not None:
            sql += " AND time_s < ?"
            args.append(float(t1))
        if severity is not None:
            sql += " AND severity = ?"
            args.append(Severity.coerce(severity).value)
        if min_severity is not None:
            rank = Severity.coerce(min_severity).rank
            levels = [s.value for s in Severity if s.rank >= rank]
            sql += f" AND severity IN ({','.join('?' * len(levels))})"
            args.extend(levels)
        if run_id is not None:
            sql += " AND run_id = ?"
            args.append(run_id)
        sql += " ORDER BY pos, id"
        return [
            Event(
                time_s=r[0],
                wall_time=parse_utc(r[1]),
                kind=r[2],
                source=r[3],
                severity=Severity(r[4]),
                message=r[5],
                data=json.loads(r[6]),
            )
            for r in self._query(sql, tuple(args))
        ]

    # ------------------------------------------------------------ live reads
    # What a follower of the live store (the console) asks: cheap change checks and
    # the rows after an id it has seen. They read, never write, so they work on a
    # store from :meth:`open_readonly`.
    def data_version(self) -> int:
        """A number that changes when another connection commits (``PRAGMA data_version``)."""
        return int(self._query("PRAGMA data_version")[0][0])

    def sensors_signature(self) -> tuple[int, int, int]:
        """Changes when the live sensor registry does: (count, last row key, bytes of records)."""
        row = self._query(
            "SELECT COUNT(*), COALESCE(MAX(pk), 0), COALESCE(SUM(LENGTH(record)), 0) "
            "FROM sensors WHERE snapshot_id IS NULL"
        )[0]
        return int(row[0]), int(row[1]), int(row[2])

    def sensor_records(self) -> dict[str, dict[str, Any]]:
        """The live registry as plain records by sensor id, in registry order (not validated)."""
        rows = self._query("SELECT id, record FROM sensors WHERE snapshot_id IS NULL ORDER BY pos, pk")
        return {r[0]: json.loads(r[1]) for r in rows}

    def last_observation_id(self) -> int:
        """Row id of the newest stored observation (0 when none)."""
        return int(self._query("SELECT COALESCE(MAX(id), 0) FROM observations")[0][0])

    def latest_observations(self, up_to_id: int | None = None) -> list[ObservationRow]:
        """The latest observation (by phenomenon time) of every datastream.

        Only rows with ``id <= up_to_id`` are considered when given, so a follower
        can take this as its starting point and then read :meth:`observations_after`.
        """
        # the ``latest`` table (kept by a trigger on insert) names each stream's newest row; a stream whose
        # newest row came after ``up_to_id`` is looked up among its older rows (few: those written meanwhile)
        sql = ("SELECT o.id, o.datastream_id, o.phenomenon_time, o.value, o.unit, o.raw "
               "FROM latest l JOIN observations o ON o.id = l.obs_id")
        if up_to_id is None:
            return [_obs_from_row(r) for r in self._query(sql + " ORDER BY l.datastream_id")]
        up = int(up_to_id)
        rows = [_obs_from_row(r) for r in self._query(sql + " WHERE l.obs_id <= ?", (up,))]
        for (stream,) in self._query("SELECT datastream_id FROM latest WHERE obs_id > ?", (up,)):
            older = self._query(
                "SELECT id, datastream_id, phenomenon_time, value, unit, raw FROM observations "
                f"WHERE datastream_id = ? AND id <= ? AND NOT {self._skewed_sql.format(raw='raw')} "
                "ORDER BY phenomenon_time DESC, seq DESC LIMIT 1", (stream, up))
            rows.extend(_obs_from_row(r) for r in older)
        return sorted(rows, key=lambda r: r.datastream_id)

    def latest_values(self) -> LatestValues:
        """The newest value of every datastream as columns (the live map's query at city scale).

        Read from the ``latest`` table alone (the write path keeps each stream's newest time and value there),
        in datastream id order; ``values`` is float64 with NaN for a non-numeric result. For the row with its
        unit and raw message use :meth:`latest_observations`.
        """
        rows = self._query("SELECT datastream_id, phenomenon_time, value, unit FROM latest ORDER BY datastream_id")
        if not rows:
            return LatestValues([], [], np.zeros(0), [])
        # comprehensions, not zip(*rows): a quarter of the time at 100 k rows
        return LatestValues([r[0] for r in rows], [r[1] for r in rows], np.array([r[2] for r in rows], dtype=float),
                            [r[3] for r in rows])

    def observations_after(self, after_id: int) -> list[ObservationRow]:
        """Observations stored after row ``after_id``, in storage order."""
        rows = self._query(
            "SELECT id, datastream_id, phenomenon_time, value, unit, raw FROM observations "
            "WHERE id > ? ORDER BY id", (int(after_id),))
        return [_obs_from_row(r) for r in rows]

    def event_rows_after(self, after_id: int = 0, kinds: Iterable[str] | None = None
                         ) -> list[EventRow]:
        """Live-log events stored after row ``after_id`` (of the given kinds), in id order."""
        sql = f"SELECT {_EVENT_COLS} FROM events WHERE snapshot_id IS NULL AND id > ?"
        args: list[Any] = [int(after_id)]
        if kinds is not None:
            kinds = list(kinds)
            sql += f" AND kind IN ({','.join('?' * len(kinds))})"
            args.extend(kinds)
        return [_event_from_row(r) for r in self._query(sql + " ORDER BY id", tuple(args))]

    def event_row(self, event_id: int) -> EventRow | None:
        """One event of the live log by row id (None if there is none)."""
        rows = self._query(f"SELECT {_EVENT_COLS} FROM events WHERE snapshot_id IS NULL AND id = ?",
                           (int(event_id),))
        return _event_from_row(rows[0]) if rows else None

    def first_event_about(self, kind: str, key: str, value: Any) -> EventRow | None:
        """The first live event of ``kind`` whose ``data[key]`` equals ``value`` (e.g. an ack)."""
        if not key.isidentifier():
            raise ValidationError(f"key={key!r} must be a plain field name of the event data")
        rows = self._query(
            f"SELECT {_EVENT_COLS} FROM events WHERE snapshot_id IS NULL AND kind = ? "
            f"AND {self._json_field_equals} ORDER BY id LIMIT 1", (kind, *self._json_field_args(key, value)))
        return _event_from_row(rows[0]) if rows else None

    _json_field_equals = "json_extract(data, ?) = ?"

    @staticmethod
    def _json_field_args(key: str, value: Any) -> tuple[Any, ...]:
        return (f"$.{key}", value)

    def wait_for_change(self, timeout: float) -> bool:
        """Wait until another connection commits, at most ``timeout`` seconds; True if one did.

        For followers (the console) instead of a fixed polling interval. SQLite has no notifications: this
        polls :meth:`data_version` every 50 ms. The first call starts watching (a commit before it is not
        seen); later calls see every commit since the previous call returned.
        """
        deadline = time.monotonic() + max(float(timeout), 0.0)
        if self._seen_version is None:
            self._seen_version = self.data_version()
        while True:
            version = self.data_version()
            if version != self._seen_version:
                self._seen_version = version
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(WAIT_POLL_S, left))

    # ------------------------------------------------------------ aggregates
    def aggregate(
        self,
        datastream_id: str,
        t0: datetime | str,
        t1: datetime | str,
        every: str = "hour",
    ) -> list[Aggregate]:
        """Count, mean, max, min and sum of one datastream's values per UTC hour or day in ``t0 <= t < t1``.

        Buckets are UTC (``every`` = ``"hour"`` or ``"day"``; a bucket with no numeric value is absent). Whole
        hours come from the ``hourly`` roll-up the write path keeps; the parts of the first and last hour cut
        by ``t0``/``t1`` from the observations (a range scan of their index). Same queries on both backends.

        Raises
        ------
        ValidationError
            For another ``every`` or an unparseable time.
        """
        if every not in BUCKET_WIDTH:
            raise ValidationError(f"every={every!r} must be one of {sorted(BUCKET_WIDTH)}")
        width = BUCKET_WIDTH[every]
        a, b = utc_text(t0, "t0"), utc_text(t1, "t1")
        buckets: dict[str, list[float]] = {}
        first_hour, last_hour = _next_hour(a), b[:13]  # whole hours: first_hour <= h < last_hour
        if first_hour < last_hour:
            rows = self._query(
                f"SELECT substr(hour, 1, {width}) AS k, SUM(n), SUM(vsum), MAX(vmax), MIN(vmin) FROM hourly "
                "WHERE datastream_id = ? AND hour >= ? AND hour < ? GROUP BY k", (datastream_id, first_hour, last_hour))
            _merge(buckets, rows)
            raw = [(a, first_hour + _HOUR_TAIL), (last_hour + _HOUR_TAIL, b)]
        else:
            raw = [(a, b)]
        for lo, hi in raw:
            if lo < hi:
                _merge(buckets, self._query(
                    f"SELECT substr(phenomenon_time, 1, {width}) AS k, COUNT(value), SUM(value), MAX(value), "
                    "MIN(value) FROM observations WHERE datastream_id = ? AND phenomenon_time >= ? "
                    "AND phenomenon_time < ? AND value IS NOT NULL GROUP BY k", (datastream_id, lo, hi)))
        pad = _BUCKET_PAD[every]
        return [Aggregate(k + pad, int(n), total / n, vmax, vmin, total)
                for k, (n, total, vmax, vmin) in sorted(buckets.items()) if n > 0]

    # ------------------------------------------------------------ geometry
    def sensors_in_bbox(self, west: float, south: float, east: float, north: float) -> list[str]:
        """Ids of live sensors with ``west <= lon <= east`` and ``south <= lat <= north`` (degrees), in order."""
        box = _check_bbox(west, south, east, north)
        rows = self._query(
            "SELECT id FROM sensors WHERE snapshot_id IS NULL AND lon BETWEEN ? AND ? AND lat BETWEEN ? AND ? "
            "ORDER BY pos, pk", (box[0], box[2], box[1], box[3]))
        return [r[0] for r in rows]

    # --------------------------------------------------------------- sensors
    def put_sensors(self, sensors: Iterable[Sensor]) -> int:
        """Insert or replace sensors of the live registry; returns how many were written."""
        n = 0
        with self._tx() as cur:
            for s in sensors:
                record = json.dumps(s.to_record(), ensure_ascii=False)
                cur.execute(
                    "UPDATE sensors SET kind = ?, record = ?, lon = ?, lat = ? WHERE snapshot_id IS NULL AND id = ?",
                    (s.kind, record, s.lon, s.lat, s.id),
                )
                if cur.rowcount == 0:
                    cur.execute(
                        "INSERT INTO sensors (snapshot_id, pos, id, kind, record, lon, lat) VALUES (NULL, "
                        "(SELECT COALESCE(MAX(pos), -1) + 1 FROM sensors WHERE snapshot_id IS NULL), "
                        "?, ?, ?, ?, ?)",
                        (s.id, s.kind, record, s.lon, s.lat),
                    )
                n += 1
        return n

    def sensors(self, snapshot_id: int | None = None) -> SensorRegistry:
        """The live sensor registry, or the one kept in a snapshot."""
        if snapshot_id is None:
            rows = self._query(
                "SELECT record FROM sensors WHERE snapshot_id IS NULL ORDER BY pos, pk"
            )
        else:
            rows = self._query(
                "SELECT record FROM sensors WHERE snapshot_id = ? ORDER BY pos, pk", (snapshot_id,)
            )
        return SensorRegistry.from_records(json.loads(r[0]) for r in rows)

    # ------------------------------------------------------------- snapshots
    def snapshot(
        self, state: TwinState, run_id: int | None = None, label: str | None = None
    ) -> int:
        """Save a :class:`~twin.state.TwinState`; returns the snapshot id.

        The datasets go to ``snapshots/<utc time>-<uuid>.nc`` (atomic write,
        SHA-256 recorded); clock, sensors and events go to the database in
        one transaction. A failure leaves no row and no file behind.
        """
        created = datetime.now(UTC)
        rel = f"{SNAPSHOT_DIR}/{snapshot_filename(created)}"
        path = self.root / rel
        clock = state.clock.to_dict()
        digest, nbytes = write_state(path, state)
        try:
            with self._tx() as cur:
                sid = self._insert_id(
                    cur,
                    "INSERT INTO snapshots (run_id, label, sim_time_s, clock_start, created, path, "
                    "sha256, nbytes) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        run_id,
                        label,
                        float(clock["now_s"]),
                        utc_text(state.clock.start, "clock start"),
                        utc_text(created),
                        rel,
                        digest,
                        nbytes,
                    ),
                )
                cur.executemany(
                    "INSERT INTO sensors (snapshot_id, pos, id, kind, record, lon, lat) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        (sid, i, s.id, s.kind, json.dumps(s.to_record(), ensure_ascii=False), s.lon, s.lat)
                        for i, s in enumerate(state.sensors)
                    ],
                )
                cur.executemany(
                    "INSERT INTO events (run_id, snapshot_id, pos, time_s, wall_time, kind, "
                    "source, severity, message, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(run_id, sid, i, *self._event_row(e)) for i, e in enumerate(state.events)],
                )
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return sid

    def snapshots(self, run_id: int | None = None) -> list[SnapshotInfo]:
        """Snapshots (of one run, or all), oldest first."""
        sql = (
            "SELECT id, run_id, label, sim_time_s, clock_start, created, path, sha256, nbytes "
            "FROM snapshots"
        )
        args: tuple[Any, ...] = ()
        if run_id is not None:
            sql += " WHERE run_id = ?"
            args = (run_id,)
        sql += " ORDER BY id"
        return [
            SnapshotInfo(
                id=r[0],
                run_id=r[1],
                label=r[2],
                sim_time_s=r[3],
                clock_start=parse_utc(r[4]),
                created=parse_utc(r[5]),
                path=self.root / r[6],
                sha256=r[7],
                nbytes=r[8],
            )
            for r in self._query(sql, args)
        ]

    def snapshot_info(self, snapshot_id: int) -> SnapshotInfo:
        """The row of one snapshot (raises :class:`SnapshotError` if unknown)."""
        for info in self.snapshots():
            if info.id == snapshot_id:
                return info
        raise SnapshotError(
            f"snapshot id {snapshot_id!r} does not exist in {self.db_path}; "
            "list them with Store.snapshots()"
        )

    def verify(self, snapshot_id: int) -> SnapshotInfo:
        """Check that a snapshot's file exists and matches its recorded SHA-256 and size."""
        info = self.snapshot_info(snapshot_id)
        verify_file(info.path, info.sha256, info.nbytes, snapshot_id)
        return info

    def restore(self, snapshot_id: int) -> TwinState:
        """Rebuild the :class:`~twin.state.TwinState` saved as ``snapshot_id``.

        The file's checksum is verified first; the clock is at the saved time
        (periodic callbacks and processes are code, not state: re-register them).

        Raises
        ------
        SnapshotError
            If the snapshot is unknown, its file missing, corrupt or unreadable.
        """
        from twin.state import TwinState

        info = self.verify(snapshot_id)
        data = read_state(info.path)
        clock = SimClock(start=info.clock_start, now_s=info.sim_time_s)
        sensors = self.sensors(snapshot_id=snapshot_id)
        events = EventLog(self.events(snapshot_id=snapshot_id))
        try:
            return TwinState(
                data["static"], clock=clock, sensors=sensors, events=events, dynamic=data["dynamic"]
            )
        except (ValidationError, DataIntegrityError, ValueError) as exc:
            raise SnapshotError(
                f"snapshot {snapshot_id} file {info.path} does not hold a valid twin state: {exc}"
            ) from exc


def _split_sql(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]
