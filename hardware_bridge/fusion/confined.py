"""Confined spaces (有限空间): online gas limits and permit-to-work.

Gas limits are configuration (the ``[confined]`` table of ``alerts.toml``,
each with its source); the packaged values:

==========  =====================  ==========================================================
gas         limit                  source
==========  =====================  ==========================================================
O2          19.5-23.5 % vol        GB 8958-2006 (缺氧 = O2 < 19.5 %); OSHA 29 CFR 1910.146(b)
H2S         <= 10 mg/m³ (7.06 ppm) GBZ 2.1-2019 MAC
CO          <= 20 mg/m³ (17.2 ppm) GBZ 2.1-2019 PC-TWA (used as an instantaneous limit)
LEL         <= 10 % LEL            OSHA 29 CFR 1910.146(b) (hazardous above 10 % LFL)
==========  =====================  ==========================================================

mg/m³ limits are converted to mole fractions at 20 °C and 101.325 kPa:
x = c · V_m / M with V_m = R·T/p = 24.06 L/mol. Readings arrive in SI (the
bridge's units): O2 and LEL as fractions, H2S and CO as mol/mol.

:class:`PermitBook` keeps the latest reading of every gas per space
(``Reading.station`` is the space id):

* :meth:`~PermitBook.request` grants a permit only if, for every configured
  gas, the space's latest reading exists, is no older than ``max_age_s``
  (and not from the future beyond ``future_tolerance_s``), and lies within
  its limits; otherwise it refuses with one reason per failing gas;
* :meth:`~PermitBook.enter` needs a valid (granted, unexpired) permit and a
  space that still passes the same check; :meth:`~PermitBook.exit` ends it;
* :meth:`~PermitBook.update` records a reading; while someone is inside, a
  reading outside its limits raises one alarm :class:`~twin.events.Event`
  (kind ``confined_space_alarm``) naming the space, gas, value, limit and
  the people inside, until a reading is back within limits (then an info
  ``confined_space_cleared``);
* :meth:`~PermitBook.check` raises a warning (``confined_space_stale``) for
  every gas of an occupied space whose latest reading is too old.

Restarts: the book lives in memory, but every permit action is stored as an
event (the bridge's HTTP routes: ``permit_granted``, ``space_entered``,
``space_exited``; the book's own ``confined_space_alarm`` /
``confined_space_cleared``). :meth:`~PermitBook.restore` replays those events
in the order they were stored and rebuilds the granted permits (with their
stored expiry, so an expired permit stays expired), who is inside, the active
alarms and the next permit id. The gas readings themselves come back from the
store's observations (:meth:`hardware_bridge.twin_link.TwinLink.warm_up`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hardware_bridge.display import display_unit, format_reading
from hardware_bridge.fusion import Reading, as_readings, seconds_of
from hardware_bridge.fusion.alerts import load_config
from twin.errors import ConfigError, ValidationError
from twin.events import Event, Severity

MOLAR_VOLUME_L = 8.314462618 * 293.15 / 101.325  # L/mol at 20 °C, 101.325 kPa (ideal gas) = 24.06
GASES = ("gas_o2", "gas_h2s", "gas_co", "gas_lel")
_UNIT_TO_SI = {"%vol": 0.01, "%LEL": 0.01, "ppm": 1e-6, "1": 1.0}

#: Event kinds whose stored sequence :meth:`PermitBook.restore` replays.
STATE_KINDS = frozenset({"permit_granted", "space_entered", "space_exited",
                         "confined_space_alarm", "confined_space_cleared"})

__all__ = ["GasLimit", "Permit", "PermitBook", "STATE_KINDS", "confined_config"]


@dataclass(frozen=True)
class GasLimit:
    """Limits of one gas in SI (fraction or mol/mol); ``None`` = no bound on that side."""

    gas: str
    lo: float | None
    hi: float | None
    source: str
    text: str  # the limit as configured, e.g. "<= 10 mg/m3"

    def within(self, v: float) -> bool:
        return (self.lo is None or v >= self.lo) and (self.hi is None or v <= self.hi)

    def describe(self, v: float) -> str:
        """A reading (SI) as operators read it (:mod:`hardware_bridge.display`: "8.0 ppm")."""
        return format_reading(self.gas, v, "1")

    def violated(self, v: float) -> str:
        """Which limit ``v`` breaks, in display units ("" when within); the limit keeps four
        significant digits (7.058 ppm is the MAC, not 7.1)."""
        d = display_unit(self.gas, "1")
        unit, f = (d.unit, d.scale) if d is not None else ("", 1.0)
        if self.lo is not None and v < self.lo:
            return f"below {self.lo * f:.4g} {unit} ({self.text})"
        if self.hi is not None and v > self.hi:
            return f"above {self.hi * f:.4g} {unit} ({self.text})"
        return ""


def _to_si(gas: str, value: float, spec: Mapping[str, Any]) -> float:
    unit = spec.get("unit")
    if unit == "mg/m3":
        m = spec.get("molar_mass_g_mol")
        if isinstance(m, bool) or not isinstance(m, int | float) or not m > 0:
            raise ConfigError(f"confined limit {gas}: unit mg/m3 needs molar_mass_g_mol > 0, got {m!r}")
        return value * MOLAR_VOLUME_L / m * 1e-6
    if unit not in _UNIT_TO_SI:
        raise ConfigError(f"confined limit {gas}: unit={unit!r} is not one of {[*_UNIT_TO_SI, 'mg/m3']}")
    return value * _UNIT_TO_SI[unit]


def confined_config(config: Mapping[str, Any] | str | os.PathLike | None = None) -> dict[str, Any]:
    """Parsed ``[confined]`` settings: limits (gas -> :class:`GasLimit`), max_age_s, permit_valid_s, ..."""
    if config is None or isinstance(config, str | os.PathLike):
        config = load_config(config)
    sec = config.get("confined", config)
    lim = sec.get("limits")
    if not isinstance(lim, Mapping) or not lim:
        raise ConfigError("confined config has no [confined.limits.<gas>] tables")
    limits: dict[str, GasLimit] = {}
    for gas, spec in lim.items():
        if gas not in GASES:
            raise ConfigError(f"confined limit for unknown gas {gas!r}; use one of {GASES}")
        src = str(spec.get("source", "")).strip()
        if not src:
            raise ConfigError(f"confined limit {gas} has no source: say where the number comes from")
        if not spec.get("verified", False) and not str(spec.get("assumption", "")).strip():
            raise ConfigError(f"confined limit {gas} is not verified and gives no assumption")
        bounds = []
        for key in ("min", "max"):
            v = spec.get(key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v)):
                raise ConfigError(f"confined limit {gas}.{key}={v!r} must be a finite number")
            bounds.append(None if v is None else _to_si(gas, float(v), spec))
        if bounds == [None, None]:
            raise ConfigError(f"confined limit {gas} gives neither min nor max")
        if None not in bounds and bounds[0] > bounds[1]:
            raise ConfigError(f"confined limit {gas}: min {spec['min']} > max {spec['max']}")
        text = " and ".join(
            f"{op} {spec[k]} {spec['unit']}" for k, op in (("min", ">="), ("max", "<=")) if spec.get(k) is not None
        )
        limits[gas] = GasLimit(gas, bounds[0], bounds[1], src, text)
    out = {"limits": limits}
    for key, default in (("max_age_s", 120.0), ("permit_valid_s", 28800.0), ("future_tolerance_s", 5.0)):
        v = sec.get(key, default)
        if isinstance(v, bool) or not isinstance(v, int | float) or not (v >= 0 and math.isfinite(v)):
            raise ConfigError(f"confined {key}={v!r} must be a finite number of seconds >= 0")
        out[key] = float(v)
    return out


@dataclass
class Permit:
    """Outcome of a permit request; ``reasons`` lists every failed check when refused."""

    space: str
    worker: str
    granted: bool
    requested_at: float
    expires_at: float | None = None
    permit_id: int | None = None
    reasons: list[str] = field(default_factory=list)
    readings: dict[str, float] = field(default_factory=dict)  # gas -> SI value used


class PermitBook:
    """Entry permits and in-space gas alarms for confined spaces (module docstring).

    Parameters
    ----------
    config : dict, path or None
        The alert config holding ``[confined]`` (packaged ``alerts.toml`` by default),
        or the ``confined`` table itself.
    clock : twin.clock.SimClock, optional
        For :attr:`Event.time_s` of datetime readings (POSIX seconds otherwise).
    """

    def __init__(self, config=None, *, clock=None) -> None:
        cfg = confined_config(config)
        self.limits: dict[str, GasLimit] = cfg["limits"]
        self.max_age_s: float = cfg["max_age_s"]
        self.permit_valid_s: float = cfg["permit_valid_s"]
        self.future_tolerance_s: float = cfg["future_tolerance_s"]
        self.clock = clock
        self._latest: dict[tuple[str, str], Reading] = {}
        self._permits: dict[tuple[str, str], Permit] = {}
        self._inside: dict[str, set[str]] = {}
        self._alarmed: set[tuple[str, str]] = set()
        self._stale: set[tuple[str, str]] = set()
        self._next_id = 1

    # ------------------------------------------------------------- readings
    def update(self, readings) -> list[Event]:
        """Record gas readings (one, a list or a DataFrame); alarms for occupied spaces."""
        out: list[Event] = []
        for r in sorted(as_readings(readings), key=lambda r: r.t):
            if r.kind not in self.limits or r.value is None:
                continue
            if not r.station:
                raise ValidationError(
                    f"gas reading {r.datastream_id!r} has no station: set station to the confined space id"
                )
            key = (r.station, r.kind)
            prev = self._latest.get(key)
            if prev is not None and r.t < prev.t:
                continue  # an older reading does not replace the latest
            self._latest[key] = r
            self._stale.discard(key)
            out.extend(self._judge(r))
        return out

    def _judge(self, r: Reading) -> list[Event]:
        key = (r.station, r.kind)
        lim = self.limits[r.kind]
        v = float(r.value)
        people = sorted(self._inside.get(r.station, ()))
        if not lim.within(v):
            if people and key not in self._alarmed:
                self._alarmed.add(key)
                broken = lim.violated(v)
                msg = (f"confined space {r.station}: {r.kind[4:].upper()} {lim.describe(v)} is {broken}; "
                       f"{len(people)} inside ({', '.join(people)}): evacuate")
                return [self._event(r.time, "confined_space_alarm", Severity.ALARM, msg, {
                    "space": r.station, "gas": r.kind, "value": v, "value_display": lim.describe(v),
                    "limit": broken, "limit_lo": lim.lo, "limit_hi": lim.hi, "limit_source": lim.source,
                    "inside": people, "datastream": r.datastream_id})]
            return []
        if key in self._alarmed:
            self._alarmed.discard(key)
            return [self._event(r.time, "confined_space_cleared", Severity.INFO,
                                f"confined space {r.station}: {r.kind[4:].upper()} back within limits "
                                f"({lim.describe(v)})", {"space": r.station, "gas": r.kind, "value": v})]
        return []

    def _event(self, time, kind, sev, msg, data) -> Event:
        if isinstance(time, datetime) and self.clock is not None:
            t = float(self.clock.seconds_at(time))
        else:
            t = seconds_of(time)
        return Event(time_s=t, kind=kind, source=f"confined/{data['space']}", severity=sev, message=msg, data=data)

    # -------------------------------------------------------------- permits
    def assess(self, space: str, now: datetime | float) -> tuple[list[str], dict[str, float]]:
        """Reasons the space is unsafe to enter at ``now`` (empty = safe) and the values used."""
        tnow = seconds_of(now)
        reasons: list[str] = []
        used: dict[str, float] = {}
        for gas, lim in self.limits.items():
            r = self._latest.get((space, gas))
            name = gas[4:].upper()
            if r is None:
                reasons.append(f"{name}: no reading for space {space!r}")
                continue
            age = tnow - r.t
            if age > self.max_age_s:
                reasons.append(f"{name}: latest reading is {age:.0f} s old (max {self.max_age_s:.0f} s)")
                continue
            if age < -self.future_tolerance_s:
                reasons.append(f"{name}: latest reading is {-age:.0f} s in the future (clock skew?)")
                continue
            v = float(r.value)
            used[gas] = v
            broken = lim.violated(v)
            if broken:
                reasons.append(f"{name}: {lim.describe(v)} is {broken}")
        return reasons, used

    def request(self, space: str, worker: str, now: datetime | float) -> Permit:
        """Ask for an entry permit; granted only if :meth:`assess` finds nothing wrong."""
        if not space or not worker:
            raise ValidationError(f"space={space!r} and worker={worker!r} must be non-empty")
        reasons, used = self.assess(space, now)
        t = seconds_of(now)
        if reasons:
            return Permit(space, worker, False, t, reasons=reasons, readings=used)
        p = Permit(space, worker, True, t, t + self.permit_valid_s, self._next_id, readings=used)
        self._next_id += 1
        self._permits[(space, worker)] = p
        return p

    def permit(self, permit_id: int) -> Permit | None:
        """The granted permit with this id, or None."""
        for p in self._permits.values():
            if p.permit_id == permit_id:
                return p
        return None

    def enter(self, space: str, worker: str, now: datetime | float) -> Permit:
        """Record an entry; needs a granted, unexpired permit and a space that is still safe."""
        p = self._permits.get((space, worker))
        t = seconds_of(now)
        if p is None:
            raise ValidationError(f"worker {worker!r} has no permit for space {space!r}: request one first")
        if t > p.expires_at:
            raise ValidationError(
                f"permit {p.permit_id} of {worker!r} for {space!r} expired {t - p.expires_at:.0f} s ago: "
                "request a new one"
            )
        reasons, _ = self.assess(space, now)
        if reasons:
            raise ValidationError(f"entry to {space!r} refused for {worker!r}: {'; '.join(reasons)}")
        self._inside.setdefault(space, set()).add(worker)
        return p

    def exit(self, space: str, worker: str, now: datetime | float) -> None:
        """Record an exit (the permit stays valid for re-entry until it expires)."""
        if worker not in self._inside.get(space, ()):
            raise ValidationError(f"worker {worker!r} is not inside space {space!r}")
        self._set_inside(space, set(self._inside[space]) - {worker})

    def _set_inside(self, space: str, people: set[str]) -> None:
        if people:
            self._inside[space] = people
            return
        self._inside.pop(space, None)  # nobody left: the space's alarms and stale flags end
        self._alarmed = {k for k in self._alarmed if k[0] != space}
        self._stale = {k for k in self._stale if k[0] != space}

    def inside(self, space: str) -> list[str]:
        """Workers inside ``space`` now."""
        return sorted(self._inside.get(space, ()))

    # ------------------------------------------------------------- restarts
    def restore(self, events: Iterable[Event]) -> int:
        """Rebuild permits, occupancy and active alarms from stored events (module docstring).

        Parameters
        ----------
        events : iterable of Event
            The event log in the order it was stored; events of other kinds
            (:data:`STATE_KINDS`) or sources (``confined/<space>``) are skipped.
            Data read: ``permit_granted`` -> ``space``, ``worker``, ``permit_id``,
            ``requested_at`` / ``expires_at`` (seconds of the book's time base;
            when absent: the event's wall time and wall time + ``permit_valid_s``),
            ``readings``; ``space_entered`` / ``space_exited`` -> ``space``,
            ``worker`` and ``inside`` (everyone inside after the action; the
            single worker is added or removed when absent);
            ``confined_space_alarm`` / ``_cleared`` -> ``space``, ``gas``.

        Returns
        -------
        int
            Number of events applied. Permit ids continue after the largest restored one.
        """
        n = 0
        for ev in events:
            if ev.kind not in STATE_KINDS or not ev.source.startswith("confined/"):
                continue
            d = ev.data
            space, worker = d.get("space"), d.get("worker")
            if not isinstance(space, str) or not space:
                continue
            if ev.kind == "permit_granted":
                pid = d.get("permit_id")
                if isinstance(pid, bool) or not isinstance(pid, int) or not worker:
                    continue
                t = d.get("requested_at")
                t = float(t) if isinstance(t, int | float) else ev.wall_time.timestamp()
                exp = d.get("expires_at")
                exp = float(exp) if isinstance(exp, int | float) else t + self.permit_valid_s
                readings = d.get("readings") if isinstance(d.get("readings"), dict) else {}
                self._permits[(space, worker)] = Permit(space, str(worker), True, t, exp, pid,
                                                        readings=dict(readings))
                self._next_id = max(self._next_id, pid + 1)
            elif ev.kind in ("space_entered", "space_exited"):
                people = d.get("inside")
                if isinstance(people, list) and all(isinstance(w, str) for w in people):
                    now_in = set(people)
                else:
                    if not worker:
                        continue
                    now_in = set(self._inside.get(space, ()))
                    (now_in.add if ev.kind == "space_entered" else now_in.discard)(worker)
                self._set_inside(space, now_in)
            else:
                gas = d.get("gas")
                if gas not in self.limits:
                    continue
                if ev.kind == "confined_space_alarm":
                    if space in self._inside:  # stored after the last one left: it has ended
                        self._alarmed.add((space, gas))
                else:
                    self._alarmed.discard((space, gas))
            n += 1
        return n

    def snapshot(self) -> tuple:
        """Opaque copy of the permit state (for :meth:`rollback` when an action could not be stored)."""
        return (dict(self._permits), {k: set(v) for k, v in self._inside.items()},
                set(self._alarmed), set(self._stale), self._next_id)

    def rollback(self, snap: tuple) -> None:
        """Return to a :meth:`snapshot` (readings received since then are kept)."""
        permits, inside, alarmed, stale, next_id = snap
        self._permits, self._inside = dict(permits), {k: set(v) for k, v in inside.items()}
        self._alarmed, self._stale, self._next_id = set(alarmed), set(stale), next_id

    def check(self, now: datetime | float) -> list[Event]:
        """Warnings for occupied spaces whose gas readings went stale (one per gas until fresh)."""
        out = []
        t = seconds_of(now)
        for space, people in self._inside.items():
            for gas in self.limits:
                key = (space, gas)
                r = self._latest.get(key)
                age = math.inf if r is None else t - r.t
                if age > self.max_age_s and key not in self._stale:
                    self._stale.add(key)
                    out.append(self._event(now, "confined_space_stale", Severity.WARNING,
                                           f"confined space {space}: no fresh {gas[4:].upper()} reading "
                                           f"({'none yet' if r is None else f'{age:.0f} s old'}) while "
                                           f"{len(people)} inside",
                                           {"space": space, "gas": gas, "age_s": None if r is None else age,
                                            "inside": sorted(people)}))
        return out
