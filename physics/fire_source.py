"""The heat release of a burning compartment over time: the design fire the zone model burns.

A :class:`FireSource` is one compartment's fire (EN 1991-1-2 Annex E.4's
design fire, with the hand-calculation pieces of :mod:`physics.fire_correlations`):

- **growth**: t², Q = α·(t − t0)² (NFPA 72 / SFPE classes or α in kW/s²;
  :func:`~physics.fire_correlations.t_squared_hrr`);
- **caps before flashover**: ``peak_kw`` (the fuel package; by default the
  floor burning at the occupancy's RHR_f, Annex E Table E.5) and the
  ventilation limit of the compartment's open vents
  (:func:`~physics.fire_correlations.ventilation_limit_kw`, 1500·A0·√H0 kW);
- **flashover**: when Q reaches ``flashover_kw`` (e.g. Thomas' or MQH's
  :func:`~physics.fire_correlations.flashover_hrr_kw`) or at a time the zone
  model reports (:func:`flashover_time_s`: upper-layer ΔT ≥ 500 K, the
  criterion behind MQH's flashover HRR, NUREG-1805 ch. 13). After it the whole
  floor is involved and burns at min(RHR_f·A_floor, ventilation limit) (EN
  1991-1-2 Annex E.4: fuel or ventilation control);
- **sprinklers** (only when they operate before flashover; a sprinkler system
  is not designed to hold a post-flashover fire):
  ``"control"`` holds Q at its value at activation (the NFPA 13 / PD 7974-1
  "controlled fire" convention); ``"suppression"`` decays it as
  Q = Q_act·exp(−(t − t_act)/τ), τ = 3.0·w''^(−1.85) s with the spray density
  w'' in mm/s (Evans 1993, NISTIR 5254, fitted on wood cribs: τ = 410 s at
  0.07 mm/s; CFAST uses the same law);
- **burn-out**: the fuel is q_f,d·A_floor (MJ); once 70 % of it is consumed
  the heat release falls linearly to zero, releasing the last 30 % (EN
  1991-1-2 Annex E.4 and Figure E.1).

Heat release in kW (as the correlations are published), times in s.
:meth:`FireSource.hrr` evaluates the curve on a time array given the
activation and flashover times another model found; the energy consumed is
integrated on an internal step of ``FireSource.dt_s``.

:class:`FireState` steps a source with a running model that reports the
sprinkler and flashover times as they happen; :func:`vent_limit_from_network`
gives a compartment's ventilation limit from its openings in the network.

This is the design-fire source (growth, caps and events); the heat-release
*tables* the zone model and CFAST share are ``physics.fire_cases.TabulatedFire``
(:meth:`FireSource.table` gives the points for one).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from physics.fire_correlations import growth_alpha, ventilation_limit_kw
from twin.errors import ValidationError

#: Sprinkler assumptions: none, heat release held at activation, or Evans' exponential decay.
SPRINKLER_MODES = ("none", "control", "suppression")
#: EN 1991-1-2 Annex E.4 (Figure E.1): the decay phase starts when this share of the fire load is consumed.
DECAY_FRACTION = 0.7
#: Evans (1993), NISTIR 5254: suppression time constant τ = 3.0·w''^(−1.85) s, w'' in mm/s.
EVANS_COEFFICIENT_S = 3.0
EVANS_EXPONENT = -1.85
#: Upper-layer temperature rise taken as flashover (K): 500 K, the MQH flashover criterion (NUREG-1805 ch. 13);
#: the literature spans 500-600 K.
FLASHOVER_DT_K = 500.0

#: EN 1991-1-2 Table E.4 (80 % fractile fire load density q_f,k, MJ/m²) and Table E.5 (growth class, RHR_f kW/m²).
OCCUPANCY = {
    "dwelling": (948.0, "medium", 250.0),
    "hospital": (280.0, "medium", 250.0),
    "hotel": (377.0, "medium", 250.0),
    "library": (1824.0, "fast", 500.0),
    "office": (511.0, "medium", 250.0),
    "school": (347.0, "medium", 250.0),
    "shopping": (730.0, "fast", 250.0),
    "theatre": (365.0, "fast", 500.0),
    "transport": (122.0, "slow", 250.0),
}


def evans_time_constant_s(spray_density_mm_s: float) -> float:
    """Evans' (1993) suppression time constant τ = 3.0·w''^(−1.85) s for a spray density w'' (mm/s)."""
    w = float(spray_density_mm_s)
    if not (np.isfinite(w) and w > 0):
        raise ValidationError(f"spray_density_mm_s={spray_density_mm_s!r}: must be a number > 0 mm/s "
                              "(NFPA 13 light hazard 0.07 mm/s = 4.1 mm/min)")
    return EVANS_COEFFICIENT_S * w ** EVANS_EXPONENT


def flashover_time_s(t_s, t_upper_k, *, t_ambient_k: float = 293.15, dt_k: float = FLASHOVER_DT_K) -> float:
    """First time (s) the upper layer is ``dt_k`` above ambient (linear between samples); inf if never."""
    t = np.asarray(t_s, float)
    rise = np.asarray(t_upper_k, float) - t_ambient_k - dt_k
    hit = np.flatnonzero(rise >= 0)
    if not len(hit):
        return float("inf")
    i = int(hit[0])
    if i == 0:
        return float(t[0])
    f = -rise[i - 1] / (rise[i] - rise[i - 1])
    return float(t[i - 1] + f * (t[i] - t[i - 1]))


def _positive(name: str, value: float, *, allow_inf: bool = False) -> float:
    v = float(value)
    if not (v > 0 and (np.isfinite(v) or (allow_inf and v == np.inf))):
        raise ValidationError(f"{name}={value!r}: must be a {'number' if allow_inf else 'finite number'} > 0")
    return v


@dataclass(frozen=True)
class FireSource:
    """One compartment's design fire (see the module docstring for each phase and its source).

    ``compartment`` the compartment's name or index in the network; ``t0_s``
    ignition; ``growth`` a class name or α (kW/s²); ``floor_area_m2`` and
    ``fuel_load_mj_m2`` (the design fire load density q_f,d per floor area)
    give the total energy; ``rhr_f_kw_m2`` the heat release per burning area
    (EN 1991-1-2 Table E.5); ``peak_kw`` the cap before flashover (default
    RHR_f·A_floor); ``vent_limit_kw`` the ventilation limit of the open vents
    (inf for none); ``flashover_kw`` the heat release taken as flashover (inf:
    only the time the zone model gives); ``sprinkler`` one of
    :data:`SPRINKLER_MODES`, with ``spray_density_mm_s`` for suppression.
    """

    compartment: str | int
    floor_area_m2: float
    fuel_load_mj_m2: float
    t0_s: float = 0.0
    growth: str | float = "medium"
    rhr_f_kw_m2: float = 250.0
    peak_kw: float | None = None
    vent_limit_kw: float = np.inf
    flashover_kw: float = np.inf
    sprinkler: str = "none"
    spray_density_mm_s: float = 0.07
    dt_s: float = 0.5

    def __post_init__(self):
        growth_alpha(self.growth)  # names a bad class or α
        _positive("floor_area_m2", self.floor_area_m2)
        _positive("fuel_load_mj_m2", self.fuel_load_mj_m2)
        _positive("rhr_f_kw_m2", self.rhr_f_kw_m2)
        _positive("vent_limit_kw", self.vent_limit_kw, allow_inf=True)
        _positive("flashover_kw", self.flashover_kw, allow_inf=True)
        _positive("dt_s", self.dt_s)
        if self.peak_kw is not None:
            _positive("peak_kw", self.peak_kw)
        if not (np.isfinite(self.t0_s) and self.t0_s >= 0):
            raise ValidationError(f"t0_s={self.t0_s!r}: ignition must be a finite time >= 0 s")
        if self.sprinkler not in SPRINKLER_MODES:
            raise ValidationError(f"sprinkler={self.sprinkler!r}: give one of {list(SPRINKLER_MODES)}")
        if self.sprinkler == "suppression":
            evans_time_constant_s(self.spray_density_mm_s)

    @classmethod
    def from_occupancy(cls, compartment: str | int, occupancy: str, *, floor_area_m2: float,
                       combustion_factor: float = 0.8, **kw) -> FireSource:
        """A fire with EN 1991-1-2 Annex E's occupancy values (Tables E.4 and E.5).

        q_f,d = m·q_f,k with the 80 % fractile q_f,k and the combustion factor
        m = 0.8 (E.3 (1), mainly cellulosic fuel); the δ factors for the
        compartment size and active measures are taken as 1 (the sprinklers are
        modelled, not credited as a fire-load factor).
        """
        if occupancy not in OCCUPANCY:
            raise ValidationError(f"occupancy={occupancy!r}: give one of {sorted(OCCUPANCY)} "
                                  "(EN 1991-1-2 Tables E.4/E.5)")
        q_fk, growth, rhr = OCCUPANCY[occupancy]
        kw.setdefault("growth", growth)
        return cls(compartment, floor_area_m2=floor_area_m2, fuel_load_mj_m2=combustion_factor * q_fk,
                   rhr_f_kw_m2=rhr, **kw)

    # ------------------------------------------------------------------ derived numbers
    # (cached: the source is frozen; a run reads these at every step)
    @cached_property
    def alpha(self) -> float:
        return growth_alpha(self.growth)

    @cached_property
    def energy_kj(self) -> float:
        """Total heat the fuel releases (kJ): q_f,d·A_floor."""
        return self.fuel_load_mj_m2 * self.floor_area_m2 * 1000.0

    @cached_property
    def pre_flashover_cap_kw(self) -> float:
        peak = self.rhr_f_kw_m2 * self.floor_area_m2 if self.peak_kw is None else self.peak_kw
        return min(peak, self.vent_limit_kw)

    @cached_property
    def post_flashover_kw(self) -> float:
        """min(RHR_f·A_floor, ventilation limit): the fully developed fire (EN 1991-1-2 E.4)."""
        return min(self.rhr_f_kw_m2 * self.floor_area_m2, self.vent_limit_kw)

    def flashover_by_hrr_s(self) -> float:
        """When the growing fire reaches ``flashover_kw`` (inf if its cap is lower)."""
        if self.flashover_kw > self.pre_flashover_cap_kw:
            return float("inf")
        return self.t0_s + float(np.sqrt(self.flashover_kw / self.alpha))

    # ------------------------------------------------------------------ the curve
    def _undecayed(self, t: np.ndarray, t_sprinkler: float, t_flashover: float) -> np.ndarray:
        """Growth, caps, flashover and sprinkler effect, before burn-out."""
        alpha, cap = self.alpha, self.pre_flashover_cap_kw
        grow = np.minimum(alpha * np.maximum(t - self.t0_s, 0.0) ** 2, cap)
        q = np.where(t >= t_flashover, self.post_flashover_kw, grow)
        if self.sprinkler != "none" and t_sprinkler < t_flashover:
            q_act = float(min(alpha * max(t_sprinkler - self.t0_s, 0.0) ** 2, cap))
            after = t >= t_sprinkler
            if self.sprinkler == "control":
                held = q_act
            else:
                tau = evans_time_constant_s(self.spray_density_mm_s)
                held = q_act * np.exp(-np.maximum(t - t_sprinkler, 0.0) / tau)
            q = np.where(after, held, q)
        return q

    def _undecayed_at(self, t: float, t_sprinkler: float, t_flashover: float) -> float:
        """:meth:`_undecayed` at one time, in floats (the same arithmetic, to the bit; a step's call, without numpy's
        per-call cost)."""
        if t >= t_flashover:
            q = self.post_flashover_kw
        else:
            d = max(t - self.t0_s, 0.0)
            q = min(self.alpha * (d * d), self.pre_flashover_cap_kw)
        if self.sprinkler != "none" and t_sprinkler < t_flashover and t >= t_sprinkler:
            q_act = float(min(self.alpha * max(t_sprinkler - self.t0_s, 0.0) ** 2, self.pre_flashover_cap_kw))
            if self.sprinkler == "control":
                return q_act
            tau = evans_time_constant_s(self.spray_density_mm_s)
            return float(q_act * np.exp(np.array([-max(t - t_sprinkler, 0.0) / tau]))[0])
        return float(q)

    def events(self, *, t_sprinkler_s: float = np.inf, t_flashover_s: float = np.inf,
               t_end_s: float | None = None) -> dict:
        """Flashover time (the earlier of the given one and the HRR criterion), sprinkler time if it
        acts, the start of the burn-out decay and the time the fuel is spent (inf where they do not
        happen before ``t_end_s``; the default end is far enough for the fuel to burn out)."""
        t_fo = min(float(t_flashover_s), self.flashover_by_hrr_s())
        t_sp = float(t_sprinkler_s) if (self.sprinkler != "none" and t_sprinkler_s < t_fo) else float("inf")
        if np.isfinite(t_sp):  # sprinklers that operate in time keep the fire from flashing over
            t_fo = float("inf")
        if t_end_s is None:
            slowest = min(self.pre_flashover_cap_kw, self.post_flashover_kw)
            t_end_s = self.t0_s + np.sqrt(slowest / self.alpha) + 2.5 * self.energy_kj / slowest
        n = int(np.ceil((t_end_s - self.t0_s) / self.dt_s)) + 1
        grid = self.t0_s + self.dt_s * np.arange(max(n, 2))
        q = self._undecayed(grid, t_sp, t_fo)
        e = np.concatenate([[0.0], np.cumsum(0.5 * (q[1:] + q[:-1]) * self.dt_s)])
        target = DECAY_FRACTION * self.energy_kj
        t_decay = q_decay = float("inf")
        if e[-1] >= target:
            i = int(np.searchsorted(e, target))
            f = (target - e[i - 1]) / (e[i] - e[i - 1])
            t_decay = float(grid[i - 1] + f * self.dt_s)
            q_decay = float(q[i - 1] + f * (q[i] - q[i - 1]))
        # the last 30 % under a linear fall from q_decay: ½·q_decay·duration = 0.3·E
        t_out = t_decay + 2.0 * (1.0 - DECAY_FRACTION) * self.energy_kj / q_decay if q_decay > 0 else np.inf
        return {"t_flashover_s": t_fo, "t_sprinkler_s": t_sp, "t_decay_s": t_decay, "q_decay_kw": q_decay,
                "t_burnout_s": float(t_out)}

    def hrr(self, t_s, *, t_sprinkler_s: float = np.inf, t_flashover_s: float = np.inf) -> np.ndarray:
        """Heat release (kW) at times ``t_s`` given the sprinkler activation and flashover times found
        elsewhere (inf: none; the HRR flashover criterion still applies)."""
        t = np.asarray(t_s, float)
        if not np.all(np.isfinite(t)):
            raise ValidationError("t_s: times must be finite numbers of seconds")
        t_end = float(np.max(t)) if t.size else self.t0_s
        ev = self.events(t_sprinkler_s=t_sprinkler_s, t_flashover_s=t_flashover_s, t_end_s=t_end + self.dt_s)
        q = self._undecayed(t, ev["t_sprinkler_s"], ev["t_flashover_s"])
        if np.isfinite(ev["t_decay_s"]):
            fall = ev["q_decay_kw"] * (1.0 - (t - ev["t_decay_s"]) / (ev["t_burnout_s"] - ev["t_decay_s"]))
            q = np.where(t >= ev["t_decay_s"], np.minimum(q, np.maximum(fall, 0.0)), q)
        return q

    def table(self, t_end_s: float, *, step_s: float = 10.0, **events) -> tuple[np.ndarray, np.ndarray]:
        """(time_s, hrr_kw) points from 0 to ``t_end_s`` every ``step_s`` (for a heat-release table)."""
        t = np.arange(0.0, float(t_end_s) + 0.5 * step_s, step_s)
        return t, self.hrr(t, **events)


def hrr_by_compartment(t_s, sources, n_compartments: int, *, index=None, t_sprinkler_s=None,
                       t_flashover_s=None) -> np.ndarray:
    """Heat release (kW) per compartment over time (T, N): the sum of the sources in each.

    ``index`` maps a source's compartment name to its index (e.g.
    ``FireNetwork.index``); ``t_sprinkler_s`` / ``t_flashover_s`` (N,) the
    per-compartment times (inf where none).
    """
    t = np.asarray(t_s, float)
    out = np.zeros((t.size, int(n_compartments)))
    for s in sources:
        c = s.compartment
        if not isinstance(c, int | np.integer):
            if index is None:
                raise ValidationError(f"source compartment {c!r}: give index= (e.g. FireNetwork.index) "
                                      "or the compartment's integer index")
            c = index(c)
        if not 0 <= int(c) < n_compartments:
            raise ValidationError(f"source compartment={c!r}: not in 0..{n_compartments - 1}")
        sp = np.inf if t_sprinkler_s is None else float(np.asarray(t_sprinkler_s)[c])
        fo = np.inf if t_flashover_s is None else float(np.asarray(t_flashover_s)[c])
        out[:, c] += s.hrr(t, t_sprinkler_s=sp, t_flashover_s=fo)
    return out


class FireState:
    """A :class:`FireSource` stepped with the run: the heat release at each new time, events given as they happen.

    For a model that finds sprinkler activation and flashover while it runs
    (the zone model's loop): ``advance(t)`` integrates the energy consumed
    incrementally (trapezoid over the caller's steps) instead of from ignition
    at every call, and starts the burn-out decay when 70 % is spent, as
    :meth:`FireSource.hrr` does on a whole time array.
    """

    def __init__(self, source: FireSource):
        self.source = source
        self.t_sprinkler_s = float("inf")
        self.t_flashover_s = source.flashover_by_hrr_s()
        self.energy_kj = 0.0
        self.t_decay_s = float("inf")
        self.q_decay_kw = float("inf")
        self._t = None
        self._q_pre = 0.0

    def sprinkler_operated(self, t_s: float) -> None:
        """Record the first sprinkler activation (ignored after flashover or without sprinklers)."""
        if self.source.sprinkler != "none" and t_s < self.t_flashover_s and not np.isfinite(self.t_sprinkler_s):
            self.t_sprinkler_s = float(t_s)
            self.t_flashover_s = float("inf")  # a sprinkler that operates in time holds the fire

    def flashed_over(self, t_s: float) -> None:
        """Record flashover found by the zone model (ignored once sprinklers hold the fire)."""
        if not np.isfinite(self.t_sprinkler_s):
            self.t_flashover_s = min(self.t_flashover_s, float(t_s))

    def advance(self, t_s: float) -> float:
        """Heat release (kW) at ``t_s`` (times must not go back)."""
        t = float(t_s)
        if self._t is not None and t < self._t:
            raise ValidationError(f"t_s={t!r}: before the last time {self._t!r}; a fire state only moves forward")
        src = self.source
        q_pre = src._undecayed_at(t, self.t_sprinkler_s, self.t_flashover_s)
        if self._t is not None:
            e_new = self.energy_kj + 0.5 * (self._q_pre + q_pre) * (t - self._t)
            target = DECAY_FRACTION * src.energy_kj
            if not math.isfinite(self.t_decay_s) and e_new >= target > self.energy_kj:
                f = (target - self.energy_kj) / (e_new - self.energy_kj)
                self.t_decay_s = self._t + f * (t - self._t)
                self.q_decay_kw = self._q_pre + f * (q_pre - self._q_pre)
            self.energy_kj = e_new
        self._t, self._q_pre = t, q_pre
        if math.isfinite(self.t_decay_s):
            span = 2.0 * (1.0 - DECAY_FRACTION) * src.energy_kj / self.q_decay_kw
            return min(q_pre, max(self.q_decay_kw * (1.0 - (t - self.t_decay_s) / span), 0.0))
        return q_pre


def vent_opening(network, compartment: int, *, glazing_broken: bool = True) -> tuple[float, float]:
    """(A0 m², H0 m) of a compartment's open wall vents: the summed open area and the area-weighted height.

    An opening's area is its width × height × open fraction; glazing
    (``vent_break_c`` set) counts fully open with ``glazing_broken`` (after
    flashover it has fallen out). The weighted height Σ A_i·h_i / Σ A_i is the
    h_eq of EN 1991-1-2 Annex A. (0, 0) for a compartment with none open.
    """
    c = int(compartment)
    if not 0 <= c < network.n_compartments:
        raise ValidationError(f"compartment={compartment!r}: not in 0..{network.n_compartments - 1}")
    mine = (np.asarray(network.vent_a) == c) | (np.asarray(network.vent_b) == c)
    h = np.asarray(network.vent_top_m, float) - np.asarray(network.vent_bottom_m, float)
    frac = np.asarray(network.vent_open, float)
    if glazing_broken:
        frac = np.where(np.isfinite(np.asarray(network.vent_break_c, float)), 1.0, frac)
    a = np.where(mine, np.asarray(network.vent_width_m, float) * h * frac, 0.0)
    a0 = float(a.sum())
    return (a0, float((a * h).sum() / a0)) if a0 > 0 else (0.0, 0.0)


def vent_limit_from_network(network, compartment: int, *, glazing_broken: bool = True) -> float:
    """The ventilation limit (kW) of a compartment's open vents (doors, windows and leaks to anywhere):
    1500·A0·√H0 (fire_correlations); 0 for a compartment with no opening, whose fire has no air."""
    a0, h0 = vent_opening(network, compartment, glazing_broken=glazing_broken)
    return float(ventilation_limit_kw(a0, h0))
