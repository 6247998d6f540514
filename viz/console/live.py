"""What the console shows of the live twin: sensors with their status, and alerts with their acks.

:class:`LiveState` reads the store through a read-only :class:`~twin.store.Store`
(:meth:`~twin.store.Store.open_readonly`; the console never writes observations,
acknowledgements go through :meth:`twin.store.Store.put_event`). It loads the
latest observation of every datastream and the live event log once, then follows
the store incrementally: :meth:`LiveState.refresh` reads only rows with a larger
id than it has seen (:meth:`~twin.store.Store.data_version` tells cheaply whether
another connection committed anything) and returns the changes as messages for
the live feed.

Sensor status (one per datastream) is :func:`twin.sensor_status.sensor_status`,
the rule the ``sensors`` map layer uses too: offline > stale > alarm > warning >
ok (that module says why), with the active alerts and offline devices folded
from the event log by :class:`twin.sensor_status.AlertFlags`.

Every sensor row says what operators read (:mod:`hardware_bridge.display`; the SI ``value`` and
``unit`` the bridge stores stay as they are, for scripts):

``shown``
    ``{"value": "8 ppm", "unit": "ppm", "decimals": 0, "number": 8.0}``: the latest value as
    text in the kind's display unit, that unit, the decimals it is shown with and the number
    rounded to them (``"–"`` and ``number`` None without a value; kinds outside the table,
    such as event kinds, are shown in their stored unit with ``decimals`` None).
``thresholds``
    The alert rules that apply to the sensor
    (:meth:`hardware_bridge.fusion.alerts.AlertEngine.rules_for` of its kind and station):
    ``[{"severity", "label", "op", "threshold", "unit", "window_h", "metric"}]``, ``threshold``
    in ``unit`` (:data:`~hardware_bridge.fusion.alerts.METRIC_UNITS`; the same unit as
    ``shown`` whenever the metric is an amount of the reading, which the tests check), ``op``
    one of ``>=``, ``>``, ``<=``, ``<``, ``window_h`` the trailing window of windowed metrics
    (a rain depth over 3 h) or None. Rules come from the packaged ``alerts.toml`` unless the
    console is given the bridge's ``alert_config``.
``placed``
    False when the sensor has no position (not registered, or registered without one): the
    map cannot draw it, the list still shows it.

Alerts are the live events of severity ``advisory`` or above (newest first);
events of a model run (stored with its ``run_id``: a simulated person stranded, a
simulated road closed) are not alerts — the console shows them with their run
(``GET /api/runs/{id}/events``), so no simulation is mistaken for the city and a
large run cannot push real alerts out of the list;
an ``alert_ack`` event (severity info, ``data.alert_id``) acknowledges one. An alert
is ``cleared`` (the wall time) once its cause went away: ``alert_cleared`` of the same
source below its level for ``threshold_crossed``, ``sensor_online`` for ``sensor_offline``
(only alerts still in memory are marked; clearing does not acknowledge).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from twin.errors import TwinError
from twin.events import Severity
from twin.sensor_status import (
    STALE_AFTER_S,
    STATUSES,
    AlertFlags,
    check_limits,
    is_device_status,
    sensor_status,
)
from twin.sensors import SensorRegistry
from twin.store import EventRow, ObservationRow, Store

log = logging.getLogger(__name__)

ACK_KIND = "alert_ack"
ALERT_MIN = Severity.ADVISORY
MAX_ALERTS = 2000
SKEW_FLAG = "clock_skew"  # the bridge's flag of a reading stamped ahead of its arrival

_RANKS = {s.value: s.rank for s in Severity}


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


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
        The store directory or its ``twin.sqlite``.
    stale_after_s : float
        A datastream silent for longer is ``stale``.
    offline_after_s : float or None
        A datastream silent for longer is ``offline`` (None: only when its device says so).
    now : callable returning a POSIX time
        The clock for staleness (tests may pin it).
    max_alerts : int
        Alerts kept in memory (the newest).
    alert_config : dict, path or None
        The alert rules whose thresholds the rows carry (as
        :class:`~hardware_bridge.fusion.alerts.AlertEngine` takes them; None: the packaged
        ``alerts.toml``). Give the bridge's ``--alert-config`` when it has one.
    """

    def __init__(self, db_path: str | Path, *, stale_after_s: float = STALE_AFTER_S,
                 offline_after_s: float | None = None, now: Callable[[], float] = time.time,
                 max_alerts: int = MAX_ALERTS, alert_config: Any = None) -> None:
        from hardware_bridge.fusion.alerts import AlertEngine

        check_limits(stale_after_s, offline_after_s)
        self._rules = AlertEngine(alert_config)
        self._thresholds: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.store = Store.open_readonly(db_path)
        self.db_path = self.store.db_path
        self.stale_after_s = float(stale_after_s)
        self.offline_after_s = None if offline_after_s is None else float(offline_after_s)
        self._now = now
        self.max_alerts = int(max_alerts)
        self._lock = threading.RLock()
        self._data_version: int | None = None
        self._obs_id = 0
        self._event_id = 0
        self._sensors: dict[str, dict[str, Any]] = {}
        self._sensors_sig: tuple[int, int, int] = (-1, -1, -1)
        self._latest: dict[str, dict[str, Any]] = {}
        self._alerts: OrderedDict[int, dict[str, Any]] = OrderedDict()
        self._acks: dict[int, dict[str, Any]] = {}
        self._flags = AlertFlags()
        self._shown: dict[str, str] = {}
        self.store.wait_for_change(0.0)  # start watching before the first load: no commit falls between
        self.refresh()

    def close(self) -> None:
        with self._lock:
            self.store.close()

    # ------------------------------------------------------------------ reads
    def wait(self, timeout: float) -> bool:
        """Block until another connection commits (at most ``timeout`` s); True if one did.

        :meth:`twin.store.Store.wait_for_change`: LISTEN/NOTIFY on PostgreSQL (wakes on the commit), 50 ms
        ``data_version`` polls on SQLite. Not under the state lock: reads go on meanwhile. A follower calls
        ``wait`` then :meth:`refresh` instead of sleeping a fixed interval; :meth:`refresh` itself still checks
        :meth:`~twin.store.Store.data_version`, so a refresh right after this process's own write is never stale.
        """
        return self.store.wait_for_change(timeout)

    def changed(self) -> bool:
        """True when another connection committed since the last :meth:`refresh` (cheap)."""
        with self._lock:
            return self.store.data_version() != self._data_version

    def refresh(self) -> list[dict[str, Any]]:
        """Read what was committed since the last call; returns change messages.

        Messages: ``{"type": "sensor", "sensor": <entry>}`` per datastream whose
        latest value or status changed, ``{"type": "alert", "alert": <entry>}`` per
        new or acknowledged alert, ``{"type": "sensors"}`` when the registry changed.
        """
        with self._lock:
            version = self.store.data_version()
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
        sig = self.store.sensors_signature()
        if sig == self._sensors_sig:
            return False
        self._sensors_sig = sig
        self._sensors = self.store.sensor_records()
        self._use_registry_thresholds()
        return True

    def _use_registry_thresholds(self) -> None:
        """The registry's sensor thresholds as the stations' rules, as the bridge applies them
        (:meth:`hardware_bridge.fusion.alerts.AlertEngine.use_sensors`): a drill's river gauge shows
        the levels it alerts on."""
        try:
            registry = SensorRegistry.from_records(self._sensors.values())
        except TwinError as exc:  # a registry the bridge could not read either: keep the config's rules
            log.warning("sensor registry: %s", exc)
            return
        for line in self._rules.use_sensors(registry):
            log.warning("sensor registry: %s", line)
        self._thresholds.clear()

    def _load_observations(self) -> set[str]:
        if self._obs_id == 0:
            # first load: every stream's newest value, unit and time as columns from the ``latest`` table (no raw
            # messages: a fraction of the rows' cost at city scale), then follow by id from the last id read
            # *before* them (a row committed in between is read twice; the time check below keeps the newest)
            top = self.store.last_observation_id()
            lv = self.store.latest_values()
            rows = [ObservationRow(0, ds, t, None if v != v else float(v), u, None)
                    for ds, t, v, u in zip(lv.datastream_ids, lv.phenomenon_times, lv.values.tolist(), lv.units,
                                           strict=True)]
            self._obs_id = top
        else:
            rows = self.store.observations_after(self._obs_id)
            if rows:
                self._obs_id = rows[-1].id
        touched: set[str] = set()
        for o in rows:
            if _skewed(o.raw):
                continue  # stamped ahead of its arrival: not the stream's latest (as the store's ``latest`` table)
            cur = self._latest.get(o.datastream_id)
            if cur is not None and cur["time"] > o.phenomenon_time:
                continue  # a late observation does not replace a newer one
            # "ts" (POSIX s) is parsed once here: sensors() ages every datastream on each call
            self._latest[o.datastream_id] = {"time": o.phenomenon_time, "value": o.value,
                                             "unit": o.unit, "raw": o.raw,
                                             "ts": _parse_time(o.phenomenon_time).timestamp()}
            touched.add(o.datastream_id)
        return touched

    def _load_events(self) -> tuple[list[int], set[str]]:
        changed: list[int] = []
        status_keys: set[str] = set()
        for ev in self.store.event_rows_after(self._event_id):
            self._event_id = ev.id
            if ev.run_id is not None:
                continue  # a model run's event (simulated): shown with its run, never a live alert
            if ev.kind == ACK_KIND:
                aid = ev.data.get("alert_id")
                if isinstance(aid, int) and aid not in self._acks:
                    self._acks[aid] = _ack_entry(ev)
                    changed.append(aid)
                continue
            if self._flags.apply(ev.kind, ev.source, ev.severity, ev.data):
                status_keys.add(ev.source)
            if ev.kind == "alert_cleared":
                to = self._flags.alert_of(ev.source)
                changed += self._clear(ev.source, "threshold_crossed",
                                       -1 if to is None else _RANKS[to], ev.wall_time)
            elif ev.kind == "sensor_online":
                changed += self._clear(ev.source, "sensor_offline", -1, ev.wall_time)
            if Severity(ev.severity).rank >= ALERT_MIN.rank:
                self._alerts[ev.id] = _alert_record(ev)
                changed.append(ev.id)
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
        age = None if latest is None else self._now() - latest["ts"]
        return sensor_status(
            age_s=age, value=None if latest is None else latest["value"],
            thresholds=(sensor or {}).get("thresholds"), active_alert=self._flags.alert_of(ds),
            device_offline=self._flags.offline_of(ds), stale_after_s=self.stale_after_s,
            offline_after_s=self.offline_after_s)

    def _entry(self, ds: str) -> dict[str, Any] | None:
        if is_device_status(ds):
            return None  # device status streams feed the status, they are not shown
        station, kind, _ = split_datastream(ds)
        latest = self._latest.get(ds)
        sensor = self._sensors.get(station)
        kind = kind or (sensor or {}).get("kind") or ""
        lon = None if sensor is None else sensor.get("lon")
        lat = None if sensor is None else sensor.get("lat")
        value = None if latest is None else latest["value"]
        unit = (latest or {}).get("unit") or (sensor or {}).get("unit") or ""
        return {
            "id": ds, "sensor": station, "kind": kind,
            "name": (sensor or {}).get("name") or station,
            "lon": lon, "lat": lat,
            "value": value, "unit": unit,
            "shown": shown_value(kind, value, unit),
            "thresholds": self.thresholds(kind, station),
            "placed": lon is not None and lat is not None,
            "time": None if latest is None else latest["time"],
            "status": self._status(ds, latest, sensor),
            "active_alert": self._flags.alert_of(ds),
            "registered": sensor is not None,
        }

    def thresholds(self, kind: str, station: str) -> list[dict[str, Any]]:
        """The alert thresholds of a sensor of ``kind`` at ``station`` (module docstring)."""
        key = (kind, station)
        if key not in self._thresholds:
            self._thresholds[key] = threshold_rows(self._rules, kind, station)
        return [dict(t) for t in self._thresholds[key]]

    def sensors(self) -> list[dict[str, Any]]:
        """One entry per datastream (and per registered sensor that never reported), by id.

        Keys: id, sensor, kind, name, lon, lat (None if unregistered), value, unit (SI, as
        stored), shown, thresholds, placed (module docstring), time (ISO UTC), status (one of
        :data:`twin.sensor_status.STATUSES`), active_alert, registered.
        """
        with self._lock:
            ids = set(self._latest)
            # a device status stream is not a reading: a sensor with only that is listed as registered
            reported = {split_datastream(ds)[0] for ds in ids if not is_device_status(ds)}
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
        ev = self.store.event_row(int(alert_id))
        if ev is None or ev.kind == ACK_KIND or ev.run_id is not None \
                or Severity(ev.severity).rank < ALERT_MIN.rank:
            return None
        ack = self.ack_of(ev.id)
        return {**_alert_record(ev), "status": "acknowledged" if ack else "open", "ack": ack}

    def ack_of(self, alert_id: int) -> dict[str, Any] | None:
        """The stored acknowledgement of an alert (read from the database, not the cache)."""
        with self._lock:
            ev = self.store.first_event_about(ACK_KIND, "alert_id", int(alert_id))
        return None if ev is None else _ack_entry(ev)

    def counts(self) -> dict[str, Any]:
        with self._lock:
            s = self.sensors()
            by = {k: 0 for k in STATUSES}
            for e in s:
                by[e["status"]] += 1
            open_ = sum(1 for a in self._alerts if a not in self._acks)
            unplaced = len({e["sensor"] for e in s if not e["placed"]})
            return {"sensors": len(s), "status": by, "alerts_open": open_, "unplaced": unplaced}


def shown_value(kind: str, value: float | None, si_unit: str | None) -> dict[str, Any]:
    """A stored reading as the console shows it: ``{"value", "unit", "decimals", "number"}``.

    ``shown_value("gas_co", 8e-6, "1")`` is ``{"value": "8 ppm", "unit": "ppm", "decimals": 0,
    "number": 8.0}`` (:func:`hardware_bridge.display.format_reading`, the one table).
    """
    from hardware_bridge.display import display_unit, format_reading

    d = display_unit(kind, si_unit or None) if kind else None
    number = None
    if value is not None and math.isfinite(value):
        number = value if d is None else round(d.value(value), d.decimals) + 0.0  # + 0.0: no -0.0
    return {"value": format_reading(kind, value, si_unit or None),
            "unit": d.unit if d is not None else (si_unit or ""),
            "decimals": None if d is None else d.decimals, "number": number}


def threshold_rows(engine: Any, kind: str, station: str) -> list[dict[str, Any]]:
    """The rules of ``engine`` for a sensor as console rows (module docstring, ``thresholds``)."""
    from hardware_bridge.fusion.alerts import METRIC_UNITS

    return [{"severity": ru.severity.value, "label": ru.label, "op": ru.op, "threshold": ru.threshold,
             "unit": METRIC_UNITS.get(ru.metric, ""), "window_h": ru.window_h, "metric": ru.metric}
            for ru in engine.rules_for(kind, station)]


def _skewed(raw: dict[str, Any] | None) -> bool:
    """True for a reading the bridge flagged ``clock_skew`` (``raw["flags"]``, hardware_bridge.ingest)."""
    flags = raw.get("flags") if isinstance(raw, dict) else None
    return isinstance(flags, list) and SKEW_FLAG in flags


def _alert_record(ev: EventRow) -> dict[str, Any]:
    return {"id": ev.id, "time_s": ev.time_s, "wall_time": ev.wall_time, "kind": ev.kind,
            "source": ev.source, "severity": ev.severity, "message": ev.message, "data": ev.data,
            "cleared": None}


def _ack_entry(ev: EventRow) -> dict[str, Any]:
    return {"by": ev.data.get("by"), "at": ev.wall_time, "note": ev.data.get("note"),
            "event_id": ev.id}


__all__ = ["ACK_KIND", "LiveState", "shown_value", "split_datastream", "threshold_rows"]
