"""Fire origin and spread from smoke and heat detectors in buildings.

Detectors are twin sensors (:class:`twin.sensors.Sensor`, sensor id = the
reading's station) whose ``properties`` give ``building`` (str), ``floor``
(int) and optionally ``zone`` (str). :class:`FireOrigins` watches their
readings (SI units, as the bridge stores them: heat in K, smoke obscuration in
1/m) and, per building:

* the first detector whose reading reaches its alarm threshold marks the
  **origin** of an incident → one ``fire_origin`` event (severity alarm) with
  building, floor, zone, detector id, phenomenon time and lon/lat;
* every other detector of that building reaching its threshold while the
  incident is open is **spread** → one ``fire_spread`` event (severity warning)
  with its floor, zone, time, the floors affected so far and the vertical
  direction relative to the origin floor (``up``, ``down`` or ``same``);
* an alarm whose phenomenon time is *earlier* than the current origin (late
  delivery, out of order) moves the origin to that detector → a new
  ``fire_origin`` event with ``corrected: true`` and ``previous_origin`` (the
  old origin is then listed as spread, with a ``fire_spread`` event).

An incident stays open while alarms keep coming: an alarm at time ``t``
belongs to it when ``origin_time - window_s <= t <= last_alarm_time +
window_s``; a later alarm opens a new incident (new origin), an alarm more
than ``window_s`` before the origin is counted (``stats["outside_window"]``)
and ignored. Each detector counts once per incident (its earliest alarm).

Thresholds default to the ``alarm``-severity rules of kinds ``heat``
(``temperature_c``, EN 54-5 class A1 static response 54 °C → 327.15 K) and
``smoke`` (``obscuration_pct_per_m``, 8 %/m → 0.08 1/m) of the alert
configuration (``fusion/alerts.toml`` via :func:`~hardware_bridge.fusion.alerts.load_config`).

Readings of unknown detectors or of detectors without a ``building`` (or with
a non-integer ``floor``) are ignored and counted in :attr:`FireOrigins.stats`.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from hardware_bridge.fusion import Reading
from hardware_bridge.fusion.alerts import load_config
from twin.errors import ConfigError, ValidationError
from twin.events import Event, Severity
from twin.sensors import Sensor

__all__ = ["FIRE_KINDS", "FireOrigins", "Incident", "alarm_thresholds"]

#: Reading kinds the tracker looks at.
FIRE_KINDS = ("heat", "smoke")


def _alarm_threshold(cfg: Mapping[str, Any], kind: str, metric: str) -> float:
    sec = cfg.get(kind)
    rules = sec.get("rules", []) if isinstance(sec, Mapping) else []
    vals = [r.get("threshold") for r in rules
            if isinstance(r, Mapping) and r.get("severity") == "alarm" and r.get("metric") == metric]
    vals = [float(v) for v in vals if isinstance(v, int | float) and not isinstance(v, bool)]
    if not vals:
        raise ConfigError(
            f"alert config has no [[{kind}.rules]] with severity = \"alarm\" and metric = \"{metric}\"; "
            f"add one or give FireOrigins the {kind} alarm threshold explicitly"
        )
    return min(vals)


def alarm_thresholds(config: Mapping[str, Any] | str | os.PathLike | None = None) -> dict[str, float]:
    """Alarm thresholds in SI from an alert config: ``{"heat": K, "smoke": 1/m}``.

    heat: ``temperature_c`` + 273.15; smoke: ``obscuration_pct_per_m`` / 100.
    """
    if config is None or isinstance(config, str | os.PathLike):
        config = load_config(config)
    return {"heat": _alarm_threshold(config, "heat", "temperature_c") + 273.15,
            "smoke": _alarm_threshold(config, "smoke", "obscuration_pct_per_m") / 100.0}


@dataclass
class _Alarm:
    detector: str
    kind: str
    t: float
    time: datetime | float
    floor: int
    zone: str | None
    lon: float
    lat: float
    value: float


@dataclass
class Incident:
    """State of one building's fire incident (see :meth:`FireOrigins.incidents`)."""

    building: str
    origin: _Alarm
    alarms: dict[str, _Alarm] = field(default_factory=dict)  # detector -> its earliest alarm
    last_t: float = 0.0
    corrections: int = 0

    def floors(self) -> list[int]:
        return sorted({a.floor for a in self.alarms.values()})

    def direction(self, a: _Alarm) -> str:
        d = a.floor - self.origin.floor
        return "up" if d > 0 else "down" if d < 0 else "same"

    def as_dict(self) -> dict[str, Any]:
        o = self.origin
        spread = sorted((a for a in self.alarms.values() if a.detector != o.detector), key=lambda a: a.t)
        return {
            "building": self.building, "origin": _fields(o), "corrections": self.corrections,
            "floors_affected": self.floors(),
            "spread": [{**_fields(a), "direction": self.direction(a)} for a in spread],
            "last_alarm_time": _iso(self.last_t),
        }


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()


def _fields(a: _Alarm) -> dict[str, Any]:
    return {"detector": a.detector, "kind": a.kind, "floor": a.floor, "zone": a.zone,
            "time": a.time.isoformat() if isinstance(a.time, datetime) else float(a.time),
            "lon": a.lon, "lat": a.lat, "value": a.value}


def _sensors_by_id(sensors: Any) -> dict[str, Sensor]:
    if sensors is None:
        return {}
    if isinstance(sensors, Mapping):
        return {str(k): v for k, v in sensors.items() if isinstance(v, Sensor)}
    return {s.id: s for s in sensors if isinstance(s, Sensor)}


class FireOrigins:
    """Per-building fire origin and spread from detector readings (module docstring).

    Parameters
    ----------
    sensors : SensorRegistry, iterable of Sensor, or mapping id -> Sensor
        The detectors (``properties``: ``building``, ``floor``, optional ``zone``).
    heat_alarm_K : float, optional
        Heat alarm threshold (K); default from the alert config's heat alarm rule.
    smoke_alarm : float, optional
        Smoke obscuration alarm threshold (1/m); default from the smoke alarm rule.
    window_s : float
        Incident window (s), see the module docstring.
    config : alert config (path, parsed dict or None for the packaged one)
        Where the default thresholds come from.
    clock : twin.clock.SimClock, optional
        Gives the events' ``time_s`` (``clock.seconds_at``); POSIX seconds otherwise.
    """

    def __init__(
        self,
        sensors: Any,
        *,
        heat_alarm_K: float | None = None,
        smoke_alarm: float | None = None,
        window_s: float = 900.0,
        config: Mapping[str, Any] | str | os.PathLike | None = None,
        clock: Any = None,
    ) -> None:
        if not (window_s > 0):
            raise ValidationError(f"FireOrigins window_s={window_s!r} must be > 0 seconds")
        defaults = alarm_thresholds(config) if heat_alarm_K is None or smoke_alarm is None else {}
        self.thresholds = {"heat": float(heat_alarm_K if heat_alarm_K is not None else defaults["heat"]),
                           "smoke": float(smoke_alarm if smoke_alarm is not None else defaults["smoke"])}
        for k, v in self.thresholds.items():
            if not (v > 0):
                raise ValidationError(f"FireOrigins {k} alarm threshold {v!r} must be > 0 (SI units)")
        self.window_s = float(window_s)
        self.clock = clock
        self.stats: Counter[str] = Counter()
        self._incidents: dict[str, Incident] = {}
        self.set_sensors(sensors)

    def set_sensors(self, sensors: Any) -> None:
        """Replace the detector registry (incidents are kept)."""
        self.sensors = _sensors_by_id(sensors)

    # ------------------------------------------------------------------ update
    def update(self, readings: Reading | Iterable[Reading]) -> list[Event]:
        """Process readings (any kinds; only heat and smoke count), in phenomenon-time order."""
        if isinstance(readings, Reading):
            readings = [readings]
        events: list[Event] = []
        for r in sorted(readings, key=lambda r: r.t):
            events.extend(self._one(r))
        return events

    def _one(self, r: Reading) -> list[Event]:
        if r.kind not in FIRE_KINDS or r.value is None:
            self.stats["not_detector_kind"] += 1
            return []
        if r.value < self.thresholds[r.kind]:
            self.stats["below_threshold"] += 1
            return []
        det = r.station or r.datastream_id.split("/")[0]
        s = self.sensors.get(det)
        if s is None:
            self.stats["unknown_detector"] += 1
            return []
        props = s.properties or {}
        building, floor = props.get("building"), props.get("floor")
        if not isinstance(building, str) or not building:
            self.stats["no_building"] += 1
            return []
        if isinstance(floor, bool) or not isinstance(floor, int):
            self.stats["no_floor"] += 1
            return []
        zone = props.get("zone")
        a = _Alarm(det, r.kind, r.t, r.time, floor, None if zone is None else str(zone),
                   float(s.lon), float(s.lat), float(r.value))
        self.stats["alarms"] += 1
        inc = self._incidents.get(building)
        if inc is None or a.t > inc.last_t + self.window_s:
            inc = Incident(building, a, {det: a}, a.t)
            self._incidents[building] = inc
            return [self._origin_event(inc)]
        if a.t < inc.origin.t - self.window_s:
            self.stats["outside_window"] += 1
            return []
        prev = inc.alarms.get(det)
        if prev is not None and prev.t <= a.t:
            self.stats["repeat"] += 1  # this detector already counted in this incident
            return []
        inc.alarms[det] = a
        inc.last_t = max(inc.last_t, a.t)
        if a.t < inc.origin.t:  # earlier than the origin: the origin moves here
            old = inc.origin
            inc.origin = a
            inc.corrections += 1
            self.stats["corrections"] += 1
            events = [self._origin_event(inc, previous=old)]
            if old.detector != det:
                events.append(self._spread_event(inc, old))
            return events
        if prev is not None:  # an earlier alarm of a known spread detector: time updated silently
            return []
        return [self._spread_event(inc, a)]

    # ------------------------------------------------------------------ events
    def _time_s(self, a: _Alarm) -> float:
        if isinstance(a.time, datetime) and self.clock is not None:
            return float(self.clock.seconds_at(a.time))
        return a.t

    def _origin_event(self, inc: Incident, previous: _Alarm | None = None) -> Event:
        o = inc.origin
        data = {"building": inc.building, **_fields(o), "corrected": previous is not None}
        msg = f"fire origin in {inc.building}: floor {o.floor}" + (f" zone {o.zone}" if o.zone else "") \
            + f", detector {o.detector} ({o.kind})"
        if previous is not None:
            data["previous_origin"] = {"detector": previous.detector, "floor": previous.floor,
                                       "zone": previous.zone}
            msg += f" (corrected: earlier than {previous.detector} on floor {previous.floor})"
        return Event(time_s=self._time_s(o), kind="fire_origin", source=o.detector,
                     severity=Severity.ALARM, message=msg, data=data)

    def _spread_event(self, inc: Incident, a: _Alarm) -> Event:
        d = inc.direction(a)
        data = {"building": inc.building, **_fields(a), "direction": d,
                "origin_detector": inc.origin.detector, "origin_floor": inc.origin.floor,
                "floors_affected": inc.floors()}
        msg = (f"fire spread in {inc.building}: floor {a.floor} ({d} from origin floor "
               f"{inc.origin.floor}), detector {a.detector} ({a.kind})")
        return Event(time_s=self._time_s(a), kind="fire_spread", source=a.detector,
                     severity=Severity.WARNING, message=msg, data=data)

    # ------------------------------------------------------------------- state
    def incidents(self) -> dict[str, dict[str, Any]]:
        """Current incident per building: origin, spread (with directions), floors affected."""
        return {b: inc.as_dict() for b, inc in self._incidents.items()}
