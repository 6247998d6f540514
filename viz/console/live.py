"""What the console shows of the live twin: sensors with their status, and alerts with their acks.

:class:`LiveState` reads the store's database through its own read-only SQLite
connection (the console never writes observations; acknowledgements go through
:meth:`twin.store.Store.put_event`). It loads the latest observation of every
datastream and the live event log once, then follows the store incrementally:
:meth:`LiveState.refresh` reads only rows with a larger id than it has seen
(``PRAGMA data_version`` tells cheaply whether another connection committed
anything) and returns the changes as messages for the live feed.

Sensor status (one per datastream)
----------------------------------
``alarm``
    the datastream has an active alert of severity ``warning`` or ``alarm``
    (a ``threshold_crossed`` event not yet lowered by ``alert_cleared``), or its
    last value reaches the sensor's ``thresholds["warning"]``/``["alarm"]``;
``offline``
    the device sent ``state: offline`` (event ``sensor_offline`` not followed by
    ``sensor_online``), or the sensor has never reported;
``stale``
    the last observation is more than ``stale_after_s`` older than now
    (default 900 s, the bridge's own stale limit);
``ok``
    otherwise.

Alerts are the live events of severity ``advisory`` or above (newest first);
an ``alert_ack`` event (severity info, ``data.alert_id``) acknowledges one. An alert
is ``cleared`` (the wall time) once its cause went away: ``alert_cleared`` of the same
source below its level for ``threshold_crossed``, ``sensor_online`` for ``sensor_offline``
(only alerts still in memory are marked; clearing does not acknowledge).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from twin.errors import StoreError
from twin.events import Severity

ACK_KIND = "alert_ack"
ALERT_MIN = Severity.ADVISORY
STATUSES = ("ok", "stale", "offline", "alarm")
STALE_AFTER_S = 900.0
MAX_ALERTS = 2000

_ALARMING = (Severity.WARNING.value, Severity.ALARM.value)
_RANKS = {s.value: s.rank for s in Severity}


def _parse_time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text).astimezone(UTC)


def split_datastream(ds: str) -> tuple[str, str, str | None]:
    """``"S1/rain_gauge[/name]"`` -> ``("S1", "rain_gauge", "name" or None)``."""
    parts = ds.split("/", 2)
    station = parts[0]
    kind = parts[1] if len(parts) > 1 else ""
    name = parts[2] if len(parts) > 2 else None
    return station, kind, name


class LiveState:
    """Latest observations, sensor registry, alerts and acks of a store (module docstring).

    Parameters
    ----------
    db_path : path
        The store's ``twin.sqlite``.
    stale_after_s : float
        A datastream silent for longer is ``stale``.
    now : callable returning a POSIX time
        The clock for staleness (tests may pin it).
    max_alerts : int
        Alerts kept in memory (the newest).
    """

    def __init__(self, db_path: str | Path, *, stale_after_s: float = STALE_AFTER_S,
                 now: Callable[[], float] = time.time, max_alerts: int = MAX_ALERTS) -> None:
        self.db_path = Path(db_path)
        self.stale_after_s = float(stale_after_s)
        self._now = now
        self.max_alerts = int(max_alerts)
        try:
            self._conn = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True,
                                         check_same_thread=False, timeout=30.0)
            self._conn.execute("PRAGMA query_only = ON")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the store database {self.db_path} for reading: {exc}; "
                             "create the store first (twin bridge run --store DIR)") from exc
        self._lock = threading.RLock()
        self._data_version: int | None = None
        self._obs_id = 0
        self._event_id = 0
        self._sensors: dict[str, dict[str, Any]] = {}
        self._sensors_sig: tuple[Any, ...] = ()
        self._latest: dict[str, dict[str, Any]] = {}
        self._alerts: OrderedDict[int, dict[str, Any]] = OrderedDict()
        self._acks: dict[int, dict[str, Any]] = {}
        self._active: dict[str, str | None] = {}
        self._offline: dict[str, bool] = {}
        self._shown: dict[str, str] = {}
        self.refresh()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # ------------------------------------------------------------------ reads
    def _q(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._conn.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"query on {self.db_path} failed: {exc}") from exc

    def changed(self) -> bool:
        """True when another connection committed since the last :meth:`refresh` (cheap)."""
        with self._lock:
            return self._q("PRAGMA data_version")[0][0] != self._data_version

    def refresh(self) -> list[dict[str, Any]]:
        """Read what was committed since the last call; returns change messages.

        Messages: ``{"type": "sensor", "sensor": <entry>}`` per datastream whose
        latest value or status changed, ``{"type": "alert", "alert": <entry>}`` per
        new or acknowledged alert, ``{"type": "sensors"}`` when the registry changed.
        """
        with self._lock:
            version = self._q("PRAGMA data_version")[0][0]
            if version == self._data_version:
                return []
            self._data_version = version
            out: list[dict[str, Any]] = []
            touched: set[str] = set()
            if self._load_sensors():
                out.append({"type": "sensors"})
                touched.update(self._latest)
            touched.update(self._load_observations())
            alerts_changed, status_keys = self._load_events()
            for key in status_keys:
                touched.update(ds for ds in self._latest if ds == key or ds.startswith(key + "/"))
            for ds in sorted(touched):
                entry = self._entry(ds)
                if entry is not None:
                    self._shown[ds] = entry["status"]
                    out.append({"type": "sensor", "sensor": entry})
            for aid in alerts_changed:
                if aid in self._alerts:
                    out.append({"type": "alert", "alert": self._alert_entry(aid)})
            return out

    def recheck(self) -> list[dict[str, Any]]:
        """Messages for datastreams whose status changed with time alone (ok -> stale)."""
        with self._lock:
            out = []
            for e in self.sensors():
                if self._shown.get(e["id"]) != e["status"]:
                    self._shown[e["id"]] = e["status"]
                    out.append({"type": "sensor", "sensor": e})
            return out

    def _load_sensors(self) -> bool:
        sig = tuple(self._q("SELECT COUNT(*), COALESCE(MAX(pk), 0), COALESCE(SUM(LENGTH(record)), 0) "
                            "FROM sensors WHERE snapshot_id IS NULL")[0])
        if sig == self._sensors_sig:
            return False
        self._sensors_sig = sig
        rows = self._q("SELECT id, record FROM sensors WHERE snapshot_id IS NULL ORDER BY pos, pk")
        self._sensors = {r[0]: json.loads(r[1]) for r in rows}
        return True

    def _load_observations(self) -> set[str]:
        if self._obs_id == 0:
            # first load: the latest row per datastream up to the current last id (SQLite takes
            # the bare columns from the row holding the MAX), then follow by id
            top = int(self._q("SELECT COALESCE(MAX(id), 0) FROM observations")[0][0])
            rows = self._q(
                "SELECT datastream_id, MAX(phenomenon_time), value, unit, raw, id FROM observations "
                "WHERE id <= ? GROUP BY datastream_id", (top,))
            self._obs_id = top
        else:
            rows = self._q(
                "SELECT datastream_id, phenomenon_time, value, unit, raw, id FROM observations "
                "WHERE id > ? ORDER BY id", (self._obs_id,))
            if rows:
                self._obs_id = int(rows[-1][5])
        touched: set[str] = set()
        for ds, t, value, unit, raw, _id in rows:
            cur = self._latest.get(ds)
            if cur is not None and cur["time"] > t:
                continue  # a late observation does not replace a newer one
            self._latest[ds] = {"time": t, "value": value, "unit": unit,
                                "raw": None if raw is None else json.loads(raw)}
            touched.add(ds)
        return touched

    def _load_events(self) -> tuple[list[int], set[str]]:
        rows = self._q(
            "SELECT id, time_s, wall_time, kind, source, severity, message, data FROM events "
            "WHERE snapshot_id IS NULL AND id > ? ORDER BY id", (self._event_id,))
        changed: list[int] = []
        status_keys: set[str] = set()
        rank = ALERT_MIN.rank
        for eid, time_s, wall, kind, source, sev, message, data in rows:
            self._event_id = int(eid)
            try:
                d = json.loads(data)
            except ValueError:
                d = {}
            if kind == ACK_KIND:
                aid = d.get("alert_id")
                if isinstance(aid, int) and aid not in self._acks:
                    self._acks[aid] = {"by": d.get("by"), "at": wall, "note": d.get("note"),
                                       "event_id": int(eid)}
                    changed.append(aid)
                continue
            if kind == "threshold_crossed":
                self._active[source] = sev
                status_keys.add(source)
            elif kind == "alert_cleared":
                to = d.get("to") if d.get("to") in _RANKS else None
                self._active[source] = to
                status_keys.add(source)
                changed += self._clear(source, "threshold_crossed", -1 if to is None else _RANKS[to], wall)
            elif kind == "sensor_offline":
                self._offline[source] = True
                status_keys.add(source)
            elif kind == "sensor_online":
                self._offline[source] = False
                status_keys.add(source)
                changed += self._clear(source, "sensor_offline", -1, wall)
            if Severity(sev).rank >= rank:
                self._alerts[int(eid)] = {
                    "id": int(eid), "time_s": time_s, "wall_time": wall, "kind": kind,
                    "source": source, "severity": sev, "message": message, "data": d, "cleared": None,
                }
                changed.append(int(eid))
                while len(self._alerts) > self.max_alerts:
                    self._alerts.popitem(last=False)
        return changed, status_keys

    def _clear(self, source: str, kind: str, below_rank: int, when: str) -> list[int]:
        """Mark the uncleared alerts of ``kind`` from ``source`` above ``below_rank`` as cleared."""
        out = []
        for aid, a in self._alerts.items():
            if a["source"] == source and a["kind"] == kind and a.get("cleared") is None \
                    and _RANKS[a["severity"]] > below_rank:
                a["cleared"] = when
                out.append(aid)
        return out

    # ---------------------------------------------------------------- entries
    def _status(self, ds: str, latest: dict[str, Any] | None, sensor: dict[str, Any] | None) -> str:
        station, kind, _ = split_datastream(ds)
        if self._active.get(ds) in _ALARMING:
            return "alarm"
        if latest is not None and latest["value"] is not None and sensor is not None:
            for level in _ALARMING:
                th = (sensor.get("thresholds") or {}).get(level)
                if th is not None and latest["value"] >= th:
                    return "alarm"
        if latest is None or self._offline.get(f"{station}/{kind}"):
            return "offline"
        t = _parse_time(latest["time"])
        if t is not None and self._now() - t.timestamp() > self.stale_after_s:
            return "stale"
        return "ok"

    def _entry(self, ds: str) -> dict[str, Any] | None:
        station, kind, name = split_datastream(ds)
        if name == "status":
            return None  # device status streams feed the status, they are not shown
        latest = self._latest.get(ds)
        sensor = self._sensors.get(station)
        return {
            "id": ds, "sensor": station, "kind": kind or (sensor or {}).get("kind"),
            "name": (sensor or {}).get("name") or station,
            "lon": None if sensor is None else sensor.get("lon"),
            "lat": None if sensor is None else sensor.get("lat"),
            "value": None if latest is None else latest["value"],
            "unit": (latest or {}).get("unit") or (sensor or {}).get("unit") or "",
            "time": None if latest is None else latest["time"],
            "status": self._status(ds, latest, sensor),
            "active_alert": self._active.get(ds),
            "registered": sensor is not None,
        }

    def sensors(self) -> list[dict[str, Any]]:
        """One entry per datastream (and per registered sensor that never reported), by id.

        Keys: id, sensor, kind, name, lon, lat (None if unregistered), value, unit,
        time (ISO UTC), status (ok/stale/offline/alarm), active_alert, registered.
        """
        with self._lock:
            ids = set(self._latest)
            reported = {split_datastream(ds)[0] for ds in ids}
            for sid, rec in self._sensors.items():
                if sid not in reported:
                    ids.add(f"{sid}/{rec.get('kind', '')}")
            out = [self._entry(ds) for ds in sorted(ids)]
            return [e for e in out if e is not None]

    def _alert_entry(self, aid: int) -> dict[str, Any]:
        a = dict(self._alerts[aid])
        ack = self._acks.get(aid)
        a["status"] = "acknowledged" if ack else "open"
        a["ack"] = ack
        return a

    def alerts(self, limit: int = 200) -> list[dict[str, Any]]:
        """Alerts (severity >= advisory), newest first, with ``status`` open/acknowledged and ``ack``."""
        with self._lock:
            ids = list(reversed(self._alerts))[: max(0, int(limit))]
            return [self._alert_entry(i) for i in ids]

    def alert(self, alert_id: int) -> dict[str, Any] | None:
        """One alert by event id (None if it is not an alert of the live log)."""
        with self._lock:
            if alert_id in self._alerts:
                return self._alert_entry(alert_id)
        # older than the in-memory window: look it up
        rows = self._q(
            "SELECT id, time_s, wall_time, kind, source, severity, message, data FROM events "
            "WHERE snapshot_id IS NULL AND id = ?", (int(alert_id),))
        if not rows:
            return None
        eid, time_s, wall, kind, source, sev, message, data = rows[0]
        if kind == ACK_KIND or Severity(sev).rank < ALERT_MIN.rank:
            return None
        ack = self.ack_of(int(eid))
        return {"id": int(eid), "time_s": time_s, "wall_time": wall, "kind": kind, "source": source,
                "severity": sev, "message": message, "data": json.loads(data), "cleared": None,
                "status": "acknowledged" if ack else "open", "ack": ack}

    def ack_of(self, alert_id: int) -> dict[str, Any] | None:
        """The stored acknowledgement of an alert (read from the database, not the cache)."""
        with self._lock:
            rows = self._q(
                "SELECT id, wall_time, data FROM events WHERE snapshot_id IS NULL AND kind = ? "
                "AND json_extract(data, '$.alert_id') = ? ORDER BY id LIMIT 1",
                (ACK_KIND, int(alert_id)))
        if not rows:
            return None
        d = json.loads(rows[0][2])
        return {"by": d.get("by"), "at": rows[0][1], "note": d.get("note"), "event_id": int(rows[0][0])}

    def counts(self) -> dict[str, Any]:
        with self._lock:
            s = self.sensors()
            by = {k: 0 for k in STATUSES}
            for e in s:
                by[e["status"]] += 1
            open_ = sum(1 for a in self._alerts if a not in self._acks)
            return {"sensors": len(s), "status": by, "alerts_open": open_}


__all__ = ["ACK_KIND", "LiveState", "STATUSES", "split_datastream"]
