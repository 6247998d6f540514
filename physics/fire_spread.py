"""External vertical fire spread: flames out of a window ignite the storey above ("leap-frog").

Once a compartment is past flashover and its fuel burns faster than its
openings let air in (ventilation controlled: the fuel's heat release above the
ventilation limit), the excess burns outside and a flame stands out of the
window. Its height above the window's soffit is EN 1991-1-2:2002 Annex B.4.1
(no forced draught, wall above the window):

    L_L = max(0, h_eq·(2.37·(Q/(A_v·ρ_g·√(g·h_eq)))^(2/3) − 1))

with Q the compartment's rate of burning in MW (Annex B sizes the flame with
the whole burning rate, not only its excess), A_v the window area, h_eq its
height and ρ_g = 0.45 kg/m³ the flame gas density of the Annex. It is Law's
(1978) correlation z + h = 12.8·(R/w)^(2/3) in heat release units (wood at
17.5 MJ/kg: within 1 %, :func:`law_flame_height_m`).

The storey above ignites when the flame tip reaches the sill of its window
(directly above) — its glazing then breaks and falls out and the contents
catch — after ``delay_s``. No general published value exists for that delay;
the default 600 s (300 s for the glazing to fall out, 300 s for the contents to
ignite and the new fire to establish) is our assumption, of the order of the
floor-by-floor times reported for unsprinklered high-rise fires: give the
building's own where known. :func:`storey_ignition_times` chains this up the
façade, each newly ignited storey burning as its own
:class:`~physics.fire_source.FireSource`.

Units: m, s, kW (MW only inside the Annex B formula).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from physics.fire_source import FireSource
from twin.errors import ValidationError

#: EN 1991-1-2 Annex B: flame gas density (kg/m³) and g (m/s²).
RHO_G = 0.45
G = 9.81
#: Law (1978): z + h = 12.8·(R/w)^(2/3) (R kg/s of fuel, w window width m).
LAW_COEFFICIENT = 12.8
#: EN 1991-1-2 Annex E: net calorific value of wood (MJ/kg) relating Law's burning rate to a heat release.
H_WOOD_MJ_KG = 17.5
#: Glazing fall-out + ignition of the storey above (s): our assumption (see the module docstring).
DEFAULT_DELAY_S = 600.0


def window_flame_height_m(q_kw, a_v_m2: float, h_eq_m: float, *, rho_g: float = RHO_G, g: float = G):
    """Flame height L_L (m) above the window soffit for a compartment burning at ``q_kw`` (EN 1991-1-2 B.4.1)."""
    _check_window(a_v_m2, h_eq_m)
    q_mw = np.maximum(np.asarray(q_kw, float), 0.0) / 1000.0
    x = q_mw / (a_v_m2 * rho_g * np.sqrt(g * h_eq_m))
    return np.maximum(0.0, h_eq_m * (2.37 * x ** (2.0 / 3.0) - 1.0))


def flame_reach_kw(height_m: float, a_v_m2: float, h_eq_m: float, *, rho_g: float = RHO_G, g: float = G) -> float:
    """The rate of burning (kW) whose Annex B flame reaches ``height_m`` above the soffit (the inverse)."""
    _check_window(a_v_m2, h_eq_m)
    return 1000.0 * a_v_m2 * rho_g * np.sqrt(g * h_eq_m) * ((height_m / h_eq_m + 1.0) / 2.37) ** 1.5


def law_flame_height_m(burning_rate_kg_s, width_m: float, h_m: float):
    """Law (1978): flame tip above the soffit z = 12.8·(R/w)^(2/3) − h (m), R the fuel burning rate kg/s."""
    _check_window(width_m * h_m, h_m)
    return np.maximum(LAW_COEFFICIENT * (np.maximum(np.asarray(burning_rate_kg_s, float), 0.0) / width_m)
                      ** (2.0 / 3.0) - h_m, 0.0)


def _check_window(a_v_m2: float, h_eq_m: float) -> None:
    for name, v in (("window area a_v_m2", a_v_m2), ("window height h_eq_m", h_eq_m)):
        if not (np.isfinite(v) and v > 0):
            raise ValidationError(f"{name}={v!r}: must be a finite number > 0 m")


@dataclass(frozen=True)
class Facade:
    """The windows of the fire compartments' façade, one above the other: per storey (or one for all).

    ``storey_base_m`` (S,) floor elevations; ``sill_m`` window sill above the
    floor, ``window_height_m`` (h_eq) and ``window_width_m`` (w_t, so
    A_v = w_t·h_eq): numbers or (S,) arrays.
    """

    storey_base_m: tuple[float, ...]
    sill_m: float | tuple[float, ...] = 0.9
    window_height_m: float | tuple[float, ...] = 1.8
    window_width_m: float | tuple[float, ...] = 3.0

    def __post_init__(self):
        base = np.asarray(self.storey_base_m, float)
        if base.ndim != 1 or base.size < 1 or not np.all(np.diff(base) > 0):
            raise ValidationError(f"storey_base_m={list(base)}: give increasing floor elevations (m)")
        for name in ("sill_m", "window_height_m", "window_width_m"):
            a = np.broadcast_to(np.asarray(getattr(self, name), float), base.shape) \
                if np.ndim(getattr(self, name)) == 0 or np.size(getattr(self, name)) == base.size else None
            if a is None:
                raise ValidationError(f"{name}: give one number or one per storey ({base.size})")
            lo = 0.0 if name == "sill_m" else 1e-9
            if not np.all(np.isfinite(a) & (a >= lo)):
                raise ValidationError(f"{name}={a.tolist()}: must be finite numbers >= {lo:g} m")

    def _arr(self, name: str) -> np.ndarray:
        return np.broadcast_to(np.asarray(getattr(self, name), float), (self.n_storeys,))

    @property
    def n_storeys(self) -> int:
        return len(self.storey_base_m)

    def soffit_m(self, storey: int) -> float:
        return float(self.storey_base_m[storey] + self._arr("sill_m")[storey] + self._arr("window_height_m")[storey])

    def sill_m_abs(self, storey: int) -> float:
        return float(self.storey_base_m[storey] + self._arr("sill_m")[storey])

    def window(self, storey: int) -> tuple[float, float]:
        """(A_v m², h_eq m) of the storey's window."""
        h = float(self._arr("window_height_m")[storey])
        return h * float(self._arr("window_width_m")[storey]), h

    def spandrel_m(self, storey: int) -> float:
        """Vertical distance from this storey's window soffit to the sill of the one above."""
        return self.sill_m_abs(storey + 1) - self.soffit_m(storey)


def external_flame(t_s, q_fuel_kw, vent_limit_kw: float, t_flashover_s: float, a_v_m2: float,
                   h_eq_m: float) -> np.ndarray:
    """Flame height (m) above the soffit over time: Annex B while post-flashover and ventilation controlled, else 0."""
    t = np.asarray(t_s, float)
    q = np.asarray(q_fuel_kw, float)
    outside = (t >= t_flashover_s) & (q > vent_limit_kw)
    return np.where(outside, window_flame_height_m(q, a_v_m2, h_eq_m), 0.0)


def reach_time_s(t_s, flame_m, gap_m: float) -> float:
    """First time the flame height reaches ``gap_m`` (linear between samples; inf if never)."""
    t = np.asarray(t_s, float)
    f = np.asarray(flame_m, float)
    hit = np.flatnonzero(f >= gap_m)
    if not len(hit):
        return float("inf")
    k = int(hit[0])
    if k == 0 or f[k - 1] <= 0.0:  # the flame appears at this sample (ventilation control just began)
        return float(t[k])
    return float(t[k - 1] + (gap_m - f[k - 1]) / (f[k] - f[k - 1]) * (t[k] - t[k - 1]))


def storey_ignition_times(origin_storey: int, t_origin_s: float, facade: Facade,
                          fire_for_storey: Callable[[int, float], FireSource], *, t_end_s: float,
                          dt_s: float = 1.0, delay_s: float = DEFAULT_DELAY_S) -> dict:
    """Ignition time of each storey (inf where the fire does not reach it by ``t_end_s``), spreading upward.

    ``fire_for_storey(storey, t0_s)`` gives the fire that starts on a storey at
    ``t0_s`` (its vent limit, flashover HRR and fuel). The fuel's heat release
    is the fire without its ventilation cap (the fuel burns inside and out);
    the external flame stands while it is past flashover and above the limit.
    Returns ``ignition_s`` (S,), ``reach_s`` (S,: when the storey's flame
    reached the sill above) and ``flame_m`` {storey: (T,) flame height}.
    """
    s_n = facade.n_storeys
    if not 0 <= origin_storey < s_n:
        raise ValidationError(f"origin_storey={origin_storey!r}: the façade has storeys 0..{s_n - 1}")
    if not (np.isfinite(delay_s) and delay_s >= 0):
        raise ValidationError(f"delay_s={delay_s!r}: glazing fall-out + ignition delay must be a time >= 0 s")
    if not (np.isfinite(t_end_s) and t_end_s > t_origin_s and dt_s > 0):
        raise ValidationError(f"t_end_s={t_end_s!r} must be after t_origin_s={t_origin_s!r}, dt_s > 0")
    t = np.arange(0.0, t_end_s + 0.5 * dt_s, dt_s)
    ignition, reach = np.full(s_n, np.inf), np.full(s_n, np.inf)
    ignition[origin_storey] = t_origin_s
    flames: dict[int, np.ndarray] = {}
    for s in range(origin_storey, s_n):
        if not np.isfinite(ignition[s]) or ignition[s] > t_end_s:
            break
        src = fire_for_storey(s, float(ignition[s]))
        fuel = dataclasses.replace(src, vent_limit_kw=np.inf)
        t_fo = src.events(t_end_s=t_end_s)["t_flashover_s"]
        a_v, h_eq = facade.window(s)
        flames[s] = external_flame(t, fuel.hrr(t, t_flashover_s=t_fo), src.vent_limit_kw, t_fo, a_v, h_eq)
        if s + 1 < s_n:
            reach[s] = reach_time_s(t, flames[s], facade.spandrel_m(s))
            ignition[s + 1] = reach[s] + delay_s
    ignition[ignition > t_end_s] = np.inf
    return {"ignition_s": ignition, "reach_s": reach, "flame_m": flames, "time_s": t}
