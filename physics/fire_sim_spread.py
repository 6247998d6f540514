"""Façade spread during a fire run: a window flame from a flashed-over compartment ignites the one above.

A burning compartment past flashover whose glazing has fallen out (the zone
model's ``broken`` flags) and whose fuel burns faster than its openings admit
air (the fuel's rate above the ventilation limit,
:func:`physics.fire_spread.external_flame`'s condition) throws a flame out of
its windows, of height :func:`physics.fire_spread.window_flame_height_m`
(EN 1991-1-2 Annex B.4.1) above their soffit. When it reaches the sill of the
same-position compartment's windows on the storey above (same name, e.g.
``12/flat B`` above ``11/flat B``), that compartment ignites
:data:`physics.fire_spread.DEFAULT_DELAY_S` later (600 s: glazing fall-out and
ignition, an assumption, see :mod:`physics.fire_spread`), as its own design
fire. The fuel's rate is the design fire's heat release scaled back from the
ventilation limit: RHR_f·A_floor after flashover (Annex E.4's fuel-controlled
rate), the same share of it during the decay. A compartment without windows,
or a storey above without the same compartment or without fuel (a refuge
floor), stops the spread there.
"""

from __future__ import annotations

import numpy as np

from physics.fire_network import VENT_KINDS, FireNetwork
from physics.fire_sim_cache import per_network
from physics.fire_spread import DEFAULT_DELAY_S, window_flame_height_m


def windows_of(network: FireNetwork, c: int) -> np.ndarray:
    """Indices of the glazed windows of compartment ``c`` (wall vents of kind window)."""
    win = VENT_KINDS.index("window")
    return np.flatnonzero(((np.asarray(network.vent_a) == c) | (np.asarray(network.vent_b) == c))
                          & (np.asarray(network.vent_kind) == win))


_EMPTY = np.zeros(0, np.int64)


def windows_by_compartment(network: FireNetwork) -> dict[int, np.ndarray]:
    """{compartment: its glazed windows' vent indices, ascending}: :func:`windows_of` of every compartment in one
    pass over the vents (compartments without windows left out)."""
    win = np.flatnonzero(np.asarray(network.vent_kind) == VENT_KINDS.index("window"))
    a, b = np.asarray(network.vent_a)[win], np.asarray(network.vent_b)[win]
    out: dict[int, list[int]] = {}
    for v, x, y in zip(win.tolist(), a.tolist(), b.tolist(), strict=True):
        out.setdefault(x, []).append(v)
        if y >= 0 and y != x:
            out.setdefault(y, []).append(v)
    return {c: np.asarray(sorted(vs), np.int64) for c, vs in out.items()}


class FacadeSpread:
    """Pending façade ignitions of a run: ``update`` returns the compartments that ignite in a step."""

    def __init__(self, network: FireNetwork, *, delay_s: float = DEFAULT_DELAY_S):
        self.network = network
        self.delay_s = float(delay_s)
        self.reach_s: dict[int, float] = {}     # compartment above -> when the flame reached its sill
        self.ignite_at: dict[int, float] = {}   # compartment above -> ignition time
        self.flame_m = np.zeros(network.n_compartments)
        # the windows and the compartments above, once per network object (fire_sim_cache; windows_of scans every
        # vent: ~2,500 calls at set-up)
        self._win, self._above = per_network(network, "facade", self._facade)
        self._window: dict[int, tuple[float, float, float, float]] = {}  # :meth:`window`, once per compartment
        self._out_yes: set[int] = set()      # :meth:`_window_out`: compartments with a pane out,
        self._out_no: dict[int, int] = {}    # and those without, at the zone's pane count then

    def _facade(self) -> tuple[dict, dict[int, int]]:
        self._win = windows_by_compartment(self.network)
        return self._win, self._compartments_above()

    def _compartments_above(self) -> dict[int, int]:
        net = self.network
        index = {n: i for i, n in enumerate(net.names)}
        fuel = np.asarray(net.attrs.get("fuel_load_mj_m2", np.ones(net.n_compartments)), float)
        out = {}
        for c, name in enumerate(net.names):
            storey, _, local = name.partition("/")
            if not local:
                continue
            up = index.get(f"{int(storey) + 1}/{local}")
            if up is not None and fuel[up] > 0 and len(self._win.get(c, _EMPTY)) and len(self._win.get(up, _EMPTY)):
                out[c] = up
        return out

    def window(self, c: int) -> tuple[float, float, float, float]:
        """(A_v m², h_eq m, sill m, soffit m) of compartment ``c``'s windows (absolute elevations; the network's
        geometry, so worked out once per compartment)."""
        got = self._window.get(c)
        if got is None:
            net = self.network
            w = self._win.get(c, _EMPTY)
            h = net.vent_top_m[w] - net.vent_bottom_m[w]
            a = net.vent_width_m[w] * h
            got = self._window[c] = (float(a.sum()), float((a * h).sum() / a.sum()), float(net.vent_bottom_m[w].min()),
                                     float(net.vent_top_m[w].max()))
        return got

    def _window_out(self, zone, c: int) -> bool:
        """Whether a pane of compartment ``c``'s windows has fallen out. The zone's ``broken`` flags only ever turn
        on, each with its count ``panes_broken``: an answer yes stands, and no is looked at again only once the count
        has moved (the look, a fancy index and ``np.any``, cost the tower ~3 µs a burning compartment a step)."""
        if c in self._out_yes:
            return True
        if self._out_no.get(c) == zone.panes_broken:
            return False
        if np.any(zone.broken[self._win.get(c, _EMPTY)]):
            self._out_yes.add(c)
            return True
        self._out_no[c] = zone.panes_broken
        return False

    def update(self, sim, t0: float, t1: float) -> list[tuple[int, float]]:
        """Check the flames of ``sim``'s burning compartments at ``t1``; the (compartment, ignition time)
        pairs due by ``t1``."""
        zone = sim.zone
        for c, fire in sim.fires.items():
            up = self._above.get(c)
            if up is None or up in self.reach_s or up in sim.fires or not sim.flashed[c]:
                continue
            if not self._window_out(zone, c):
                continue
            src = fire.source
            q = float(sim.q_design[c])
            q_fuel = q * (src.rhr_f_kw_m2 * src.floor_area_m2) / src.post_flashover_kw
            if q_fuel <= src.vent_limit_kw:
                self.flame_m[c] = 0.0
                continue
            a_v, h_eq, _, soffit = self.window(c)
            self.flame_m[c] = float(window_flame_height_m(q_fuel, a_v, h_eq))
            gap = self.window(up)[2] - soffit
            if self.flame_m[c] >= gap:
                self.reach_s[up] = t1
                self.ignite_at[up] = t1 + self.delay_s
        due = [(c, t) for c, t in self.ignite_at.items() if t <= t1 + 1e-9 and c not in sim.fires]
        for c, _ in due:
            del self.ignite_at[c]
        return due
