"""Feeds into the twin: stored observations → alerts, confined-space permits, gridded rain, levels.

:class:`TwinLink` is the :class:`~hardware_bridge.ingest.Ingestor`'s ``on_stored``
hook. After every commit it receives the newly stored observations (duplicates
and rejected messages never reach it, so a redelivered alarm raises nothing
twice) and:

1. turns each into a fusion :class:`~hardware_bridge.fusion.Reading`
   (:func:`~hardware_bridge.fusion.from_normalized`, with the station's
   position from the twin's sensor registry: sensor id = station);
2. **routes** it: gas readings (``gas_o2``, ``gas_h2s``, ``gas_co``,
   ``gas_lel``) of a *registered confined space* go to the
   :class:`~hardware_bridge.fusion.confined.PermitBook` only (permit-to-work
   decides, and it alarms while someone is inside); every other reading goes
   to the :class:`~hardware_bridge.fusion.alerts.AlertEngine` (rain, water
   level, slope GNSS and inclinometers, smoke, heat, fixed gas detectors of
   petrol stations and plant rooms, DAS events, petrol-station video events).
   Feeds whose model has not landed in the twin (slope, fire, tunnel) are
   stored by the ingestor all the same and raise their alerts here.
   Smoke and heat readings *also* go to a
   :class:`~hardware_bridge.fusion.fire.FireOrigins` tracker (detectors with
   ``building``/``floor``/``zone`` properties in the sensor registry), whose
   ``fire_origin`` / ``fire_spread`` events are stored like the others;
3. stores every resulting :class:`~twin.events.Event` in the store's live event
   log (``store.put_event``) and hands it to ``on_event``;
4. keeps the rain-gauge readings of the last ``keep_s`` seconds, so
   :meth:`TwinLink.rain_field` grids them by IDW on the twin grid
   (:func:`~hardware_bridge.fusion.rain_grid.grid_rain`) and
   :meth:`TwinLink.gridded_rain` gives the :class:`physics.forcing.GriddedRain`
   the flood model reads;
5. keeps the latest water level per station for a
   :class:`~hardware_bridge.fusion.levels.Nudger` (:meth:`TwinLink.latest_levels`).

Stations' own alert levels: the ``thresholds`` of the registry's sensors (a drill
registers its scenario's) become per-station rules of the AlertEngine
(:meth:`~hardware_bridge.fusion.alerts.AlertEngine.use_sensors`), so a water-level
gauge with thresholds raises alerts though the kind has no default rules. The link
reads the registry when it is created and again before a batch whenever the
store's registry changed (:meth:`~twin.store.Store.sensors_signature`, one small
query per batch), so sensors registered while the bridge runs count from their
next reading. Thresholds that cannot be used are logged and counted
(``stats["sensor_threshold_problems"]``); that station keeps the config's rules.

A station is a confined space when it is named in ``confined_spaces`` (the
bridge runner takes them from the alert configuration's ``[confined] spaces =
[...]``, see :func:`confined_spaces_from_config`) or registered in the sensor
registry with ``properties["confined_space"] = true``. Without a PermitBook,
gas readings of every station go to the AlertEngine.

Restarts: the engines keep their windows in memory. :meth:`TwinLink.warm_up`
replays the stored observations of a recent period through them without
emitting events, so a restarted bridge continues the 3-/6-/12-hour rain sums
and the GNSS rate windows and does not re-raise levels already raised.
Confined-space permits and occupancy come back from the event log: a link
with a PermitBook and a store calls :meth:`TwinLink.restore_permits` when it is
created (permits with their stored expiry, who is inside, active alarms; see
:meth:`PermitBook.restore <hardware_bridge.fusion.confined.PermitBook.restore>`),
and :meth:`TwinLink.warm_up` then replays the latest gas reading of every
confined space. The confined-space events that replay raises *are* emitted:
one can only arise when somebody is inside and the log lacks it (the bridge
died between storing a bad reading and storing its alarm), so a worker left
inside while the gas is bad is alarmed again rather than forgotten.

Thread safety: one lock around the engines; the ingestor calls the hook after
its commit, outside its own state lock.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from hardware_bridge.fusion import Reading, from_normalized, seconds_of
from hardware_bridge.fusion.alerts import AlertEngine, load_config
from hardware_bridge.fusion.confined import GASES, STATE_KINDS, PermitBook
from hardware_bridge.fusion.fire import FIRE_KINDS, FireOrigins
from hardware_bridge.validate import STATUS_STREAM, NormalizedObservation
from twin.errors import ConfigError, ValidationError
from twin.events import Event

log = logging.getLogger(__name__)

_DEFAULT: Any = object()
#: Kinds whose recent history the alert engine windows over (replayed by :meth:`TwinLink.warm_up`).
WARM_KINDS = ("rain_gauge", "gnss_displacement", "inclinometer")
#: Kinds of which only the latest observation matters after a restart (levels, gas for permits).
LATEST_KINDS = ("water_level", "heat", "smoke", *GASES)

__all__ = ["TwinLink", "confined_spaces_from_config", "positions_of"]


def confined_spaces_from_config(config: Mapping[str, Any] | str | os.PathLike | None = None) -> frozenset[str]:
    """Station ids listed as ``[confined] spaces = ["CS-1", ...]`` in an alert config (TOML path,
    parsed dict, or None for the packaged ``alerts.toml``); empty if the key is absent."""
    if config is None or isinstance(config, str | os.PathLike):
        config = load_config(config)
    sec = config.get("confined", {})
    spaces = sec.get("spaces", []) if isinstance(sec, Mapping) else []
    if not isinstance(spaces, list) or not all(isinstance(s, str) and s for s in spaces):
        raise ConfigError(f"[confined] spaces={spaces!r} must be a list of station ids (strings)")
    return frozenset(spaces)


def positions_of(sensors: Any) -> dict[str, tuple[float, float]]:
    """Station → (lon, lat) from a :class:`~twin.sensors.SensorRegistry` or a mapping."""
    if sensors is None:
        return {}
    if isinstance(sensors, Mapping):
        out = {}
        for k, v in sensors.items():
            lon, lat = (float(c) for c in v)
            out[str(k)] = (lon, lat)
        return out
    return {s.id: (float(s.lon), float(s.lat)) for s in sensors}


def _kinds_with_rules(engine: AlertEngine | None) -> frozenset[str]:
    """Kinds the engine has any rule (or event class) for; other readings need not reach it."""
    if engine is None:
        return frozenset()
    return frozenset(k for k, kc in engine.kinds.items() if kc.rules or kc.station_rules or kc.classes)


def _flagged_spaces(sensors: Any) -> set[str]:
    if sensors is None or isinstance(sensors, Mapping):
        return set()
    return {s.id for s in sensors if (s.properties or {}).get("confined_space")}


class TwinLink:
    """The ingestor's ``on_stored`` hook feeding the twin (module docstring).

    Parameters
    ----------
    store : twin.store.Store
        Events go to its live event log; positions come from its sensor registry
        when ``sensors`` is None.
    sensors : SensorRegistry or mapping station -> (lon, lat), optional
        Positions (WGS84) of the stations.
    alerts : AlertEngine or None
        Default: an engine with the packaged ``alerts.toml``; None: no threshold alerts.
    permits : PermitBook, optional
        Confined-space permits; gas readings of confined spaces go here only.
    confined_spaces : iterable of str, optional
        Stations that are confined spaces (besides the sensors flagged
        ``properties["confined_space"]``).
    rain_like : DataArray (y, x), optional
        Twin grid for :meth:`rain_field` (may also be given per call).
    block_s : float
        Block length (s) of the gridded rain.
    keep_s : float
        Rain readings older than the newest minus ``keep_s`` are dropped.
    on_event : callable(Event), optional
        Called with every event after it is stored.
    clock : twin.clock.SimClock, optional
        Given to the default engines for the events' simulation times.
    fire : FireOrigins or None
        Default: a tracker over the sensor registry (``sensors``, or the store's);
        None: no fire origin tracking.
    restore : bool
        Rebuild ``permits`` from the store's event log now (:meth:`restore_permits`).
    """

    def __init__(
        self,
        store: Any,
        *,
        sensors: Any = None,
        alerts: AlertEngine | None = _DEFAULT,
        permits: PermitBook | None = None,
        confined_spaces: Iterable[str] | None = None,
        rain_like: Any = None,
        block_s: float = 600.0,
        keep_s: float = 86_400.0,
        on_event: Callable[[Event], None] | None = None,
        clock: Any = None,
        fire: FireOrigins | None = _DEFAULT,
        restore: bool = True,
    ) -> None:
        if not (block_s > 0):
            raise ValidationError(f"TwinLink block_s={block_s!r} must be > 0 seconds")
        if not (keep_s > 0):
            raise ValidationError(f"TwinLink keep_s={keep_s!r} must be > 0 seconds")
        self.store = store
        self.alerts = AlertEngine(clock=clock) if alerts is _DEFAULT else alerts
        self.permits = permits
        self.rain_like = rain_like
        self.block_s = float(block_s)
        self.keep_s = float(keep_s)
        self.on_event = on_event
        self._lock = threading.RLock()
        # kept as the validator's observations; turned into Readings (with the positions
        # known then) only when gridded / asked for
        self._rain: list[tuple[float, NormalizedObservation]] = []
        self._rain_newest = -float("inf")
        self._levels: dict[str, tuple[float, NormalizedObservation]] = {}
        self._alert_kinds = _kinds_with_rules(self.alerts)
        self._recent: deque[Event] = deque(maxlen=200)
        self.stats: Counter[str] = Counter()
        self._extra_spaces = frozenset(confined_spaces or ())
        self.fire = FireOrigins(None, clock=clock) if fire is _DEFAULT else fire
        self._fire_default = fire is _DEFAULT
        # follow the store's registry (thresholds, positions) unless the sensors are given
        self._follow = sensors is None and store is not None and hasattr(store, "sensors_signature")
        self._sensors_sig: Any = None
        self.refresh_sensors(sensors)
        if restore:
            self.restore_permits()

    # ---------------------------------------------------------- configuration
    def refresh_sensors(self, sensors: Any = None) -> None:
        """Re-read station positions, flagged confined spaces and the sensors' alert thresholds
        (from the store if None)."""
        if sensors is None and self.store is not None:
            if self._follow:
                self._sensors_sig = self.store.sensors_signature()
            sensors = self.store.sensors()
        with self._lock:
            self.positions = positions_of(sensors)
            self.confined_spaces = frozenset(set(self._extra_spaces) | _flagged_spaces(sensors))
            if self.fire is not None and self._fire_default:
                self.fire.set_sensors(sensors)
            self._use_thresholds(sensors)

    def _use_thresholds(self, sensors: Any) -> None:
        """The registry's sensor thresholds as per-station alert rules (module docstring)."""
        if self.alerts is None or sensors is None or isinstance(sensors, Mapping):
            return
        problems = self.alerts.use_sensors(sensors)
        for line in problems:
            log.warning("sensor registry: %s", line)
        self.stats["sensor_threshold_problems"] = len(problems)
        self._alert_kinds = _kinds_with_rules(self.alerts)

    def _follow_registry(self) -> None:
        """Re-read the sensors when the store's registry changed since the last read."""
        if not self._follow:
            return
        try:
            changed = self.store.sensors_signature() != self._sensors_sig
            if changed:
                self.refresh_sensors()
                self.stats["sensor_refreshes"] += 1
        except Exception:  # the observations are committed; keep the rules we have, say so
            self.stats["sensor_refresh_errors"] += 1
            log.exception("could not re-read the sensor registry of %s", self.store)

    # ------------------------------------------------------------------ hook
    def on_stored(self, observations: Iterable[NormalizedObservation]) -> list[Event]:
        """Process newly stored observations; returns the events raised (already stored)."""
        return self._process(observations, emit=True)

    __call__ = on_stored

    def _process(self, observations: Iterable[Any], *, emit: bool) -> list[Event]:
        """Route observations to the engines; emit the events (``emit=False``: only the
        confined-space ones, see the module docstring on restarts)."""
        events: list[Event] = []
        from_permits: list[Event] = []
        self._follow_registry()
        with self._lock:
            to_alerts: list[Reading] = []
            to_permits: list[Reading] = []
            to_fire: list[Reading] = []
            n = 0
            for o in observations:
                if o.is_status:
                    continue
                n += 1
                kind = o.kind
                if kind == "rain_gauge":
                    self._keep_rain(o)
                elif kind == "water_level" and o.value is not None:
                    key = o.station or o.datastream_id
                    t = o.phenomenon_time.timestamp()
                    prev = self._levels.get(key)
                    if prev is None or t >= prev[0]:
                        self._levels[key] = (t, o)
                confined = (self.permits is not None and kind in GASES
                            and o.station in self.confined_spaces)
                fire = self.fire is not None and kind in FIRE_KINDS
                if not confined and kind not in self._alert_kinds and not fire:
                    continue  # nothing to evaluate (e.g. water levels without station rules)
                try:
                    r = from_normalized(o, self.positions)
                except ValidationError as exc:  # cannot happen for validated data; keep going
                    self.stats["unconvertible"] += 1
                    log.warning("observation %s skipped by the twin link: %s", o.datastream_id, exc)
                    continue
                if fire:
                    to_fire.append(r)
                if confined or kind in self._alert_kinds:
                    (to_permits if confined else to_alerts).append(r)
            self.stats["readings"] += n
            if to_permits:
                self.stats["to_permits"] += len(to_permits)
                from_permits = self.permits.update(to_permits)
                events.extend(from_permits)
                # stored under the lock, so the log keeps them in order with the permit
                # actions (PermitBook.restore replays that order after a restart)
                for ev in from_permits:
                    self._emit(ev)
            if to_alerts and self.alerts is not None:
                self.stats["to_alerts"] += len(to_alerts)
                events.extend(self.alerts.evaluate(to_alerts))
            if to_fire:
                self.stats["to_fire"] += len(to_fire)
                events.extend(self.fire.update(to_fire))
            self._prune_rain()
        rest = events[len(from_permits):]
        if emit:
            for ev in rest:
                self._emit(ev)
        else:
            self.stats["suppressed"] += len(rest)
            self.stats["confined_on_replay"] += len(from_permits)
        return events

    @property
    def lock(self) -> threading.RLock:
        """Held while the link changes its state; outside callers (e.g. HTTP permit actions) take it too."""
        return self._lock

    def emit(self, ev: Event, *, required: bool = False) -> None:
        """Store an event, count it, keep it among the recent ones and pass it to ``on_event``.

        ``required=True`` re-raises a failure to store it (nothing else is done
        then): permit actions must be in the log to survive a restart.
        """
        self._emit(ev, required=required)

    def _emit(self, ev: Event, required: bool = False) -> None:
        try:
            self.store.put_event(ev)
            self.stats["events"] += 1
            self.stats[f"events.{ev.severity.value}"] += 1
        except Exception:  # the observations are committed; keep going, say so
            self.stats["event_store_errors"] += 1
            log.exception("could not store event %s from %s", ev.kind, ev.source)
            if required:
                raise
        with self._lock:
            self._recent.append(ev)
        if self.on_event is not None:
            try:
                self.on_event(ev)
            except Exception:
                log.exception("on_event callback failed for %s", ev.kind)

    def check(self, now: datetime | float) -> list[Event]:
        """Stale gas readings of occupied confined spaces (PermitBook.check); events are emitted."""
        if self.permits is None:
            return []
        with self._lock:
            events = self.permits.check(now)
        for ev in events:
            self._emit(ev)
        return events

    def recent_events(self, n: int = 20) -> list[Event]:
        """The last ``n`` events this link raised (newest last)."""
        with self._lock:
            return list(self._recent)[-n:]

    # ------------------------------------------------------------------ rain
    def _keep_rain(self, o: NormalizedObservation) -> None:
        t = o.phenomenon_time.timestamp()
        self._rain.append((t, o))
        if t > self._rain_newest:
            self._rain_newest = t

    def _prune_rain(self) -> None:
        cut = self._rain_newest - self.keep_s
        if (self._rain and self._rain[0][0] < cut) or len(self._rain) > 1_000_000:
            self._rain = [p for p in self._rain if p[0] >= cut][-1_000_000:]

    def _rain_split(self) -> tuple[list[Reading], list[str]]:
        with self._lock:
            rs = [from_normalized(o, self.positions) for _, o in self._rain]
        placed = [r for r in rs if r.lon is not None or r.x is not None]
        unplaced = sorted({r.station or r.datastream_id for r in rs if r.lon is None and r.x is None})
        return placed, unplaced

    def rain_readings(self) -> list[Reading]:
        """Kept rain-gauge readings of gauges with a known position, in arrival order."""
        return self._rain_split()[0]

    def rain_field(
        self,
        start: datetime | float,
        end: datetime | float,
        *,
        like: Any = None,
        origin: datetime | float | None = None,
        **idw: Any,
    ):
        """IDW-gridded rain rate (mm/h) on ``like`` (default ``rain_like``), blocks of ``block_s``.

        See :func:`hardware_bridge.fusion.rain_grid.grid_rain` (``idw`` passes
        ``power``, ``search_radius_m``, ``min_gauges``, ``beyond_radius``, ``missing``).
        Gauges without a known position are left out (counted in
        ``stats["unplaced_rain"]``).
        """
        from hardware_bridge.fusion.rain_grid import grid_rain

        grid = like if like is not None else self.rain_like
        if grid is None:
            raise ValidationError("no grid to put the rain on: give like=... or TwinLink(rain_like=...)")
        placed, unplaced = self._rain_split()
        self.stats["unplaced_rain"] = len(unplaced)
        if not placed:
            extra = f" ({len(unplaced)} gauges have no position: {unplaced[:5]})" if unplaced else ""
            raise ValidationError(
                "no rain-gauge readings with a position to grid" + extra + "; register the gauges "
                "in the store's sensor registry (store.put_sensors) or give sensors=..."
            )
        return grid_rain(placed, grid, start=start, end=end, block_s=self.block_s, origin=origin, **idw)

    def gridded_rain(
        self,
        start: datetime | float,
        end: datetime | float,
        *,
        like: Any = None,
        origin: datetime | float | None = None,
        **idw: Any,
    ):
        """:class:`physics.forcing.GriddedRain` of :meth:`rain_field` (time 0 = ``origin`` or ``start``)."""
        from hardware_bridge.fusion.rain_grid import to_gridded_rain

        grid = like if like is not None else self.rain_like
        return to_gridded_rain(self.rain_field(start, end, like=grid, origin=origin, **idw), grid)

    # ---------------------------------------------------------------- levels
    def latest_levels(self) -> dict[str, float]:
        """Latest water level (m) per station (by phenomenon time): ``Nudger.nudge`` input."""
        with self._lock:
            return {k: float(o.value) for k, (_, o) in self._levels.items()}

    def level_readings(self) -> list[Reading]:
        """The latest water-level Reading per station (for ``levels.gauge_positions``)."""
        with self._lock:
            return [from_normalized(o, self.positions) for _, o in self._levels.values()]

    # -------------------------------------------------------------- restarts
    def restore_permits(self) -> int:
        """Rebuild the PermitBook from the store's event log; returns the events applied.

        Called on creation (``restore=True``); call it before :meth:`warm_up`,
        which then feeds the latest gas readings. No-op without a PermitBook or store.
        """
        if self.permits is None or self.store is None:
            return 0
        events = [e for e in self.store.events() if e.kind in STATE_KINDS]
        with self._lock:
            n = self.permits.restore(events)
        self.stats["permit_events_restored"] += n
        if n:
            log.info("restored %d confined-space permit events from %s", n, self.store)
        return n

    def _window_h(self, kind: str) -> float:
        if self.alerts is None or kind not in self.alerts.kinds:
            return 24.0
        kc = self.alerts.kinds[kind]
        rules = [*kc.rules, *(r for rs in kc.station_rules.values() for r in rs)]
        return max((r.window_h or 0.0 for r in rules), default=0.0) or 24.0

    def warm_up(
        self, since: datetime | None = None, kinds: Iterable[str] = WARM_KINDS,
        latest_kinds: Iterable[str] = LATEST_KINDS, *, now: datetime | None = None,
    ) -> int:
        """Replay stored observations through the engines without emitting events.

        Every observation with phenomenon time >= ``since`` of a datastream of
        ``kinds`` (windowed alert metrics), and only the latest one (if >= ``since``)
        of ``latest_kinds`` (levels, gas readings for permits, detector levels).
        With ``since=None`` each kind goes back by its longest rule window
        (``window_h``; 24 h for ``latest_kinds``) from the newest stored
        observation not after ``now`` (default: the current time).
        Returns the number of observations replayed.
        """
        kinds, latest_kinds = set(kinds), set(latest_kinds)
        latest = self.store.latest_times(not_after=now or datetime.now(UTC))
        if not latest:
            return 0
        top = max(latest.values())
        obs: list[NormalizedObservation] = []
        for ds, newest in latest.items():
            parts = ds.split("/")
            if len(parts) < 2 or parts[-1] == STATUS_STREAM:
                continue
            start = since if since is not None else top - timedelta(hours=self._window_h(parts[1]))
            if newest < start:
                continue
            if parts[1] in kinds:
                t0 = start
            elif parts[1] in latest_kinds:
                t0 = newest
            else:
                continue
            for o in self.store.observations(ds, t0=t0):
                raw = o.raw or {}
                obs.append(NormalizedObservation(
                    datastream_id=ds, kind=raw.get("kind", parts[1]), station=parts[0],
                    phenomenon_time=o.phenomenon_time, result_time=o.result_time, seq=o.seq,
                    value=o.value, unit=o.unit or "", original_value=None, original_unit=None,
                    event=raw.get("event"), parameters=raw.get("parameters"),
                ))
        obs.sort(key=lambda o: seconds_of(o.phenomenon_time))
        self._process(obs, emit=False)
        self.stats["warm_up"] += len(obs)
        return len(obs)
