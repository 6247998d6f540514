"""A storey window for fire-ensemble members: simulate only the storeys around the origin, guarded.

Within an ensemble member's 600 s only the origin storey (rarely the one above) becomes untenable, yet a
whole-building run steps every storey. A **window** runs storeys ``origin − below … origin + above`` only:

* **The network** (:func:`window_network`) is the building's :class:`~physics.fire_network.FireNetwork` cut to
  those storeys (:func:`physics.fire_network.subnetwork`, names unchanged, storeys renumbered from the lowest
  kept one, elevations absolute so the stack effect is the building's).
* **The boundary** where a shaft (stair, lift, smoke shaft) leaves the window: the shaft's compartment just
  beyond the edge is kept as a **reservoir**, joined to the window by the shaft's own ceiling vent and by
  nothing else, its volume ``RESERVOIR_VOLUME_FACTOR`` times the compartment's, and before each step its state
  (pressure, temperature, composition) is set to that compartment's state at the step's end in a run of the
  **whole building without a fire** (:func:`prefire_history`, once per building, season and step per worker
  thread). So the window's shafts see, at their cut ends, the pressures the whole building's stack effect gives
  there, including the first ~2 min in which the tall shafts settle from the common initial state (the
  115-storey bench tower's pressures move by ~20 Pa between 2 s and 60 s). What the window cannot see is the
  fire's own effect beyond its edges; hence the guard.
* **The guard** (:func:`edge_reached`, checked at every record by :func:`run_guarded`, which stops the run at the
  first record that fails): if smoke reached an edge storey's floor (either
  layer of one of its rooms, corridor, lobby or refuge with a light-extinction coefficient above
  :data:`EDGE_EXTINCTION_PER_M`, 1/100 of the visibility limit, at any record), or an edge storey ignited or became
  untenable, the member is rerun on a wider window (:func:`wider_window`: in summer 28 below and 3 above, then 40
  below and 3 above; WIDEN x the first in winter; :func:`default_window` gives the first by the stack effect), and
  if the last one's edges are reached too, on the whole building (counted as fallbacks). An edge that is the building's
  ground or top storey has no boundary and is not guarded. The shafts' segments on the edge storeys are not
  guarded: they carry smoke across the edges in most members (with sprinklers off, in summer, down to the
  ground within 600 s), and the window's storeys still agreed with the whole building's in every studied member
  (the reservoirs hold the pressures, and smoke leaving through a cut does not come back within the run). A
  storey beyond an edge gets smoke only through the shafts (façade spread ignites the edge storey first): from
  the same shaft gas, no denser than where it left the window, that left the edge storey's floor below 1/100 of
  the limit. This is the guard's assumption (a storey beyond an edge under a more favourable pressure difference
  than the edge storey's takes in more); the bench compares every storey's ASET, those beyond the windows
  included, with whole-building runs.

The window's results are mapped back to the building's storeys: storeys outside the window are tenable and
unburnt (NaN), which the guard makes true of the window's edges. Validation: ``tests/physics/test_fire_window.py``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from physics.fire_network import COMPARTMENT_KINDS, FireNetwork, subnetwork
from twin.errors import ValidationError

#: Volume of a reservoir over that of the shaft compartment it stands for: stiff enough that the flow into it within
#: a step does not move its pressure (its state is reset to the fire-free run's before each step). Without a fire the
#: Ping An example's window at storey 80 follows the whole building's pressures to 4.6 / 2.4 / 0.42 / 0.047 Pa at
#: 1e3 / 1e4 / 1e5 / 1e6 (the smoke shaft, open at the roof, carries the largest flow); Newton takes 6.6 iterations
#: a step instead of 5.
RESERVOIR_VOLUME_FACTOR = 1e6
#: Smoke on a window's edge storey (1/m of light extinction in either layer of any of its rooms, corridors, lobbies or
#: refuges): 1/100 of the 0.3 1/m at which an escape route fails on visibility (10 m to a light-reflecting sign,
#: K = 3: the tenability module's most lenient limit), i.e. ~1 % of a smoke-logged route's soot.
EDGE_EXTINCTION_PER_M = 3e-3
#: Default storeys kept below and above the origin under a **reverse** stack effect (outside warmer than the 20 °C
#: inside: Shenzhen's summer, the ensembles' default season; the shafts draw down and smoke goes to the storeys below)
#: (``bench/bench_fire_ensemble.py --parts window --window B,A`` on the bench tower, 32 members, one run each: CPU
#: per member with fallbacks 0.13 s at 2,3, 0.18 s at 3,5, 0.19 s at 5,8 against 0.80 s for the whole building).
#: On the 475 of the 1000 ``--window-thousand`` summer members with an origin on storey 60 or above, every window
#: left was left at its lower edge (2,3: 199; 2,1: 212; 1,1: 220; 2,8: 185): a window cut closer above drives
#: more smoke down its shafts (its reservoirs above hold cold fire-free columns), so "above" is not cut below 3.
DEFAULT_BELOW, DEFAULT_ABOVE = 2, 3
#: Default (below, above) under a **normal** stack effect (outside colder than inside: winter; the shafts draw up).
#: On 500 of those members run in winter on a 10,10 window no storey but the origin's met the guard's edge
#: condition within 600 s (none ignited, became untenable or had smoke above 1/100 of the visibility limit).
DEFAULT_NORMAL_STACK = (1, 1)
#: A member whose window's edges were reached tries a window this many times wider (each way) before the whole
#: building. 1000 bench-tower members (bench --window-thousand, 92-96 % contention): at 5,8 with 3x, 172 left the
#: window, 88 of them stayed in the 15,24 one, 0.262 CPU s per member; at 2,3 with 3x, 199 left, only 39 stayed in
#: the 6,9 one, 0.283 s; at 2,3 with 8x (16,24), 199 left, 121 stayed in the wider one, 0.202 s. Widening only the
#: side whose edge was reached (then the other) gave 0.201 s with 112 members ending on the whole building instead
#: of 80: no gain, so both sides widen at once.
WIDEN = 8
#: Under a reverse stack effect (summer) the windows after the first, tried in turn (below, above; the first's sides
#: where wider) before the whole building, instead of WIDEN times the first: every edge left there was a lower one,
#: and smoke that leaves 2 storeys down mostly goes far down. The 199 of the 1000 summer ``--window-thousand``
#: members that left their 2,3 window (origins on storeys 74-111, growths medium or faster) all had their smoke
#: stop above storey 73 (1/100 of the visibility limit, on a 40,8 window run to 600 s): 0-36 storeys below the
#: origin, none above it. One window each (CPU s for the 199, 2 processes, one session): 16,8: 96 left it; 40,8:
#: none left, 0.265 s each; 40,3: none left, 0.245 s each, every storey's ASET within 1.1e-4 s and ignition equal
#: to the 40,8 window's and to whole-building runs (0.60 s each). Two in turn: 20,3 then 40,3: 88 left the first,
#: 47.3 s in all; 24,3 then 40,3: 56, 44.1 s; 28,3 then 40,3: 21 left, none the second, 43.3 s (48.7 s for 40,3
#: alone). Three storeys above suffice on the wide windows (a close cut above drives smoke down the shafts of a
#: narrow window, not of these).
REVERSE_STACK_WIDER = ((28, 3), (40, 3))
#: ``window="auto"`` windows a building of at least this many storeys and runs shorter ones whole: on the
#: 30-storey example a window cost about as much as the whole building (members of 0.15-0.2 CPU s; 12 of 32 left
#: their 5,8 window), on the 115-storey bench tower and the Ping An example it was 3.5-6x cheaper.
AUTO_MIN_STOREYS = 60
SHAFT_KINDS = ("stair", "lift", "smoke_shaft")


@dataclass(frozen=True)
class Window:
    """A window's network and its mapping to the building.

    ``network``: the window's network; ``lo``, ``hi``: the building storeys simulated (inclusive);
    ``storey0``: the building storey of the window network's storey 0 (``lo`` − 1 where a reservoir lies below);
    ``compartments``: (n,) building index of each window compartment; ``reservoirs``: window indices of the
    reservoirs; ``reservoir_of``: their building indices; ``edges``: the guarded storeys (building indices);
    ``plan``: the zone model's LDLᵀ plan of the window network.
    """

    network: FireNetwork
    lo: int
    hi: int
    storey0: int
    compartments: np.ndarray
    reservoirs: np.ndarray
    reservoir_of: np.ndarray
    edges: tuple[int, ...]
    plan: Any

    @property
    def n_building_storeys(self) -> int:
        return int(self.network.attrs["window"]["building_storeys"])

    @cached_property
    def edge_rooms(self) -> tuple[np.ndarray, ...]:
        """Per entry of ``edges``: the window's non-shaft compartments on that storey (made once, read at every
        record by the guard)."""
        net = self.network
        shaft = np.isin(np.asarray(COMPARTMENT_KINDS)[net.kind], SHAFT_KINDS)
        return tuple(np.flatnonzero((net.storey == s - self.storey0) & ~shaft) for s in self.edges)

    @cached_property
    def edge_locals(self) -> np.ndarray:
        """The window network's storey index of each entry of ``edges``."""
        return np.asarray(self.edges, np.int64) - self.storey0

    @cached_property
    def edge_rooms_all(self) -> np.ndarray:
        """Every edge storey's non-shaft compartments in one array (the guard's quick check)."""
        return np.concatenate([np.zeros(0, np.int64), *self.edge_rooms])

    def to_building(self, per_storey: np.ndarray, fill: float = np.nan) -> np.ndarray:
        """(S_building,) array of a window's (S_window,) per-storey values (``fill`` outside lo..hi)."""
        out = np.full(self.n_building_storeys, fill, float)
        local = np.arange(self.lo, self.hi + 1) - self.storey0
        out[self.lo:self.hi + 1] = np.asarray(per_storey, float)[local]
        return out


def window_storeys(n_storeys: int, origin: int, below: int, above: int) -> tuple[int, int]:
    """(lo, hi): the building storeys of a window, clipped to the building."""
    for name, v in (("below", below), ("above", above)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
            raise ValidationError(f"window {name}={v!r}: give a whole number of storeys >= 1 (the origin must not be "
                                  "a guarded edge)")
    return max(0, origin - int(below)), min(n_storeys - 1, origin + int(above))


def window_network(net: FireNetwork, lo: int, hi: int,
                   volume_factor: float = RESERVOIR_VOLUME_FACTOR) -> tuple[FireNetwork, np.ndarray, np.ndarray]:
    """The window's network for building storeys ``lo..hi``: (network, building index of each compartment,
    window indices of the reservoirs). See the module docstring."""
    inside = (net.storey >= lo) & (net.storey <= hi)
    res = set()
    for a, b in ((net.vvent_lower, net.vvent_upper), (net.vent_a, net.vent_b)):
        a, b = np.asarray(a), np.asarray(b)
        both = b >= 0
        cross = both & (inside[a] != inside[np.maximum(b, 0)])
        res.update(int(x) for x in np.where(inside[a[cross]], b[cross], a[cross]))
    bad = [net.names[c] for c in res if COMPARTMENT_KINDS[net.kind[c]] not in SHAFT_KINDS]
    if bad:
        raise ValidationError(f"storey window {lo}..{hi}: {bad[0]!r} joins the window across its edge but is not a "
                              "shaft (stair, lift, smoke shaft); widen the window or run the whole building")
    keep = np.flatnonzero(inside | np.isin(np.arange(net.n_compartments), sorted(res)))
    reservoir = np.isin(keep, sorted(res))
    sub = subnetwork(net, keep, boundary=reservoir, volume_factor=volume_factor,
                     name=f"{net.name} storeys {lo}..{hi}")
    return sub, keep, np.flatnonzero(reservoir)


def make_window(net: FireNetwork, origin: int, below: int = DEFAULT_BELOW, above: int = DEFAULT_ABOVE) -> Window:
    """The :class:`Window` of ``below``/``above`` storeys around building storey ``origin`` of ``net``."""
    from physics._kernels import fire_zone as K

    lo, hi = window_storeys(net.n_storeys, origin, below, above)
    sub, keep, res = window_network(net, lo, hi)
    sub.attrs["window"] = {"lo": lo, "hi": hi, "building_storeys": net.n_storeys}
    vidx = np.stack([sub.vent_a, sub.vent_b], axis=1).astype(np.int64).reshape(-1, 2)
    vvidx = np.stack([sub.vvent_lower, sub.vvent_upper], axis=1).astype(np.int64).reshape(-1, 2)
    top = net.n_storeys - 1
    edges = tuple(s for s in sorted({lo, hi}) if (s == lo and lo > 0) or (s == hi and hi < top))
    return Window(network=sub, lo=lo, hi=hi, storey0=int(net.storey[keep].min()), compartments=keep,
                  reservoirs=res, reservoir_of=keep[res], edges=edges,
                  plan=K.step_plan(sub.n_compartments, vidx, vvidx))


def reverse_stack(t_outside_k: float) -> bool:
    """Whether the outside air (``t_outside_k``, K) is as warm as the inside's
    :data:`~physics.fire_correlations.AMBIENT_K` or warmer: a reverse stack effect, the shafts drawing down."""
    from physics.fire_correlations import AMBIENT_K

    return float(t_outside_k) >= AMBIENT_K


def default_window(t_outside_k: float) -> tuple[int, int]:
    """(below, above) storeys of a member's first window at outside temperature ``t_outside_k`` (K): by the
    direction the stack effect drives the shafts (:data:`DEFAULT_BELOW`, :data:`DEFAULT_ABOVE` when the outside is
    as warm as the inside's :data:`~physics.fire_correlations.AMBIENT_K` or warmer, :data:`DEFAULT_NORMAL_STACK`
    when colder)."""
    return (DEFAULT_BELOW, DEFAULT_ABOVE) if reverse_stack(t_outside_k) else DEFAULT_NORMAL_STACK


# ----------------------------------------------------------------------------- the fire-free run
@dataclass(frozen=True)
class PrefireHistory:
    """The whole building without a fire, on the members' step grid: ``t`` (T,) and ``state`` (T, N, NSTATE)
    of the compartments ``compartments`` (building indices) at those times."""

    t: np.ndarray
    state: np.ndarray
    compartments: np.ndarray

    def at(self, t_s: float, which: np.ndarray) -> np.ndarray:
        """States (len(which), NSTATE) of building compartments ``which`` at ``t_s`` (linear between steps)."""
        cols = np.searchsorted(self.compartments, which)
        k = int(np.searchsorted(self.t, t_s - 1e-9))
        if k >= len(self.t):
            return self.state[-1, cols]
        if abs(self.t[k] - t_s) < 1e-9 or k == 0:
            return self.state[k, cols]
        w = (t_s - self.t[k - 1]) / (self.t[k] - self.t[k - 1])
        return (1.0 - w) * self.state[k - 1, cols] + w * self.state[k, cols]


def step_times(duration_s: float, dt_s: float, record_every_s: float) -> np.ndarray:
    """The end times of a :class:`~physics.fire_sim.FireSimulation`'s steps (``advance_to(duration_s)``)."""
    out, t, nxt = [], 0.0, record_every_s
    while t < duration_s - 1e-9:
        h = min(dt_s, duration_s - t, nxt - t if nxt > t else np.inf)
        t1 = t + h
        if abs(t1 - nxt) < 1e-6 * dt_s:
            t1 = nxt
        if abs(t1 - nxt) < 1e-9:
            nxt = min(t1 + record_every_s, duration_s)
        t = t1
        out.append(t)
    return np.asarray(out)


def prefire_history(prepared: tuple, t_outside_k: float, dt_s: float, duration_s: float, record_every_s: float,
                    compartments: np.ndarray) -> PrefireHistory:
    """Run the whole building (``prepared``: :func:`physics.fire_sim.prepare_building`) without a fire at
    ``t_outside_k`` on the members' steps and keep the states of ``compartments`` (sorted building indices)."""
    from physics.fire_correlations import AMBIENT_K
    from physics.fire_zone import FireZoneModel

    _spec, net, plan = prepared
    zone = FireZoneModel(net, t_inside_k=AMBIENT_K, t_outside_k=t_outside_k, dt_max=dt_s, plan=plan)
    comps = np.asarray(compartments, np.int64)
    ends = step_times(duration_s, dt_s, record_every_s)
    states = np.empty((len(ends) + 1, len(comps), zone.state.shape[1]))
    states[0] = zone.state[comps]
    for k, t1 in enumerate(ends):
        zone.step(t1 - zone.t)
        states[k + 1] = zone.state[comps]
    return PrefireHistory(t=np.concatenate([[0.0], ends]), state=states, compartments=comps)


class _Cache(threading.local):
    """This thread's windows and fire-free runs, for one building object at a time."""

    spec: Any = None
    windows: dict
    histories: dict


_CACHE = _Cache()


def _cache_for(spec: Any) -> _Cache:
    if _CACHE.spec is not spec:
        _CACHE.spec, _CACHE.windows, _CACHE.histories = spec, {}, {}
    return _CACHE


def cached_window(spec: Any, prepared: tuple, origin: int, below: int, above: int) -> Window:
    """:func:`make_window` of ``spec``'s storey ``origin``, made once per (origin, below, above) per thread."""
    c = _cache_for(spec)
    key = (origin, below, above)
    if key not in c.windows:
        c.windows[key] = make_window(prepared[1], origin, below, above)
    return c.windows[key]


def cached_history(spec: Any, prepared: tuple, t_outside_k: float, dt_s: float, duration_s: float,
                   record_every_s: float) -> PrefireHistory:
    """:func:`prefire_history` of every shaft compartment of ``spec`` (any window's reservoirs), once per
    (season, dt, duration, record interval) per thread."""
    c = _cache_for(spec)
    key = (float(t_outside_k), float(dt_s), float(duration_s), float(record_every_s))
    if key not in c.histories:
        net = prepared[1]
        shafts = np.flatnonzero(np.isin(np.asarray(COMPARTMENT_KINDS)[net.kind], SHAFT_KINDS))
        c.histories[key] = prefire_history(prepared, t_outside_k, dt_s, duration_s, record_every_s, shafts)
    return c.histories[key]


# ----------------------------------------------------------------------------- a windowed run
def window_simulation(spec: Any, window: Window, history: PrefireHistory, *, floor: int, **kwargs: Any):
    """A :class:`~physics.fire_sim.FireSimulation` on ``window`` whose reservoirs follow ``history`` (not stepped
    yet); ``floor`` is the building storey of the origin, ``compartment`` (in ``kwargs``) a name on it or None."""
    from physics.fire_sim import FireSimulation

    # the reservoirs' states on the history's grid, scaled once per member (the same product, so the same bits)
    scaled = RESERVOIR_VOLUME_FACTOR * history.state[:, np.searchsorted(history.compartments, window.reservoir_of)]
    grid = history.t.tolist()  # Python floats: the same values, compared without NumPy scalars at every step

    class _WindowSimulation(FireSimulation):
        _grid_k = 0  # the history's grid index of the last step's end

        def _zone_step(self, h: float) -> None:
            z = self.zone
            t1 = z.t + h
            k = self._grid_k + 1  # steps end on the history's grid one after another: try the next point first
            if not (k < len(grid) and abs(grid[k] - t1) < 1e-9):
                k = int(np.searchsorted(history.t, t1 - 1e-9))  # the point it is, or the end
            if k < len(grid) and abs(grid[k] - t1) < 1e-9:
                z.state[window.reservoirs] = scaled[k]
                self._grid_k = k
            else:
                z.state[window.reservoirs] = RESERVOIR_VOLUME_FACTOR * history.at(t1, window.reservoir_of)
            super()._zone_step(h)

    comp = kwargs.pop("compartment", None)
    if comp is not None and "/" not in comp:
        comp = f"{floor}/{comp}"
    if comp is not None and not comp.startswith(f"{floor}/"):
        raise ValidationError(f"compartment={comp!r} is not on storey {floor}")
    return _WindowSimulation(spec, floor=floor - window.storey0, compartment=comp,
                             prepared=(spec, window.network, window.plan), **kwargs)


def edge_reached(sim: Any, window: Window, *, last_record_only: bool = False) -> str:
    """Why the window's edges did not stay quiet in ``sim`` (a run on ``window``), or "" when they did: an edge
    storey ignited or became untenable, or smoke above :data:`EDGE_EXTINCTION_PER_M` in either layer of one of its
    non-shaft compartments at any record (module docstring); ``last_record_only``: at the last record only."""
    return _edge_finding(sim, window, last_record_only)[0]


def _edge_finding(sim: Any, window: Window, last_record_only: bool) -> tuple[str, int]:
    """(:func:`edge_reached`'s finding, the building storey of the edge reached or -1)."""
    rec = sim.recorder
    for s, comps in zip(window.edges, window.edge_rooms, strict=True):
        local = s - window.storey0
        if np.isfinite(sim.ignition_s[local]):
            return f"storey {s} (window edge) ignited at {sim.ignition_s[local]:.0f} s", s
        if np.isfinite(sim.tenability.aset_s[local]):
            return f"storey {s} (window edge) untenable at {sim.tenability.aset_s[local]:.0f} s", s
        if not comps.size:
            continue
        for key in ("upper_layer__extinction", "lower_layer__extinction"):
            records = rec.fields[key][-1:] if last_record_only else rec.fields[key]
            worst = max(float(np.max(x[comps])) for x in records)
            if worst > EDGE_EXTINCTION_PER_M:
                return f"storey {s} (window edge): {key.split('__')[0]} extinction {worst:.3g} 1/m", s
    return "", -1


def _last_record_quiet(sim: Any, window: Window) -> bool:
    """True when, at the last record, no edge storey has ignited or become untenable and every edge room's smoke
    in both layers is at most :data:`EDGE_EXTINCTION_PER_M`: then :func:`_edge_finding` of the last record finds
    nothing. False (a NaN included) sends the guard to :func:`_edge_finding` for the finding itself."""
    loc = window.edge_locals
    if np.isfinite(sim.ignition_s[loc]).any() or np.isfinite(sim.tenability.aset_s[loc]).any():
        return False
    rooms = window.edge_rooms_all
    if not rooms.size:
        return True
    fields = sim.recorder.fields
    worst = max(fields["upper_layer__extinction"][-1][rooms].max(), fields["lower_layer__extinction"][-1][rooms].max())
    return bool(worst <= EDGE_EXTINCTION_PER_M)


def run_guarded(sim: Any, window: Window) -> tuple[str, int]:
    """Advance ``sim`` (a run on ``window``, on its record grid) to its end one record interval at a time, checking
    :func:`edge_reached` at each record; stop at the first record where the edges are reached. Returns (why, the
    building storey of the edge reached), ("", -1) when the run ended quiet. The steps are those of one
    ``advance_to(duration_s)``: the chunks end on record times."""
    found = _edge_finding(sim, window, False)
    while not found[0] and sim.t < sim.duration_s - 1e-9:
        sim.advance_to(min(sim.t + sim.record_every_s, sim.duration_s))
        found = ("", -1) if _last_record_quiet(sim, window) else _edge_finding(sim, window, True)
    return found


def wider_window(tried: tuple[int, int], first: tuple[int, int], n_storeys: int, origin: int,
                 reverse: bool = False) -> tuple[int, int] | None:
    """The window to try after ``tried`` left its edges, or None when the whole building runs next.

    Normal stack effect: ``first``'s :data:`WIDEN` times wider each way, once. Under a ``reverse`` stack effect
    (:func:`reverse_stack`): the next of :data:`REVERSE_STACK_WIDER` (each with ``first``'s sides where wider) that
    is wider than ``tried`` and keeps other storeys than it (near the ground two of them can be the same cut).
    None too when the next would span the building."""
    if reverse:
        steps = [(max(b, first[0]), max(a, first[1])) for b, a in REVERSE_STACK_WIDER]
    else:
        steps = [(WIDEN * first[0], WIDEN * first[1])]
    cut = window_storeys(n_storeys, origin, *tried)
    for wide in steps:
        if tried[0] >= wide[0] and tried[1] >= wide[1]:
            continue
        lo, hi = window_storeys(n_storeys, origin, *wide)
        if (lo, hi) == cut:
            continue
        return None if (lo == 0 and hi == n_storeys - 1) else wide
    return None


__all__ = ["AUTO_MIN_STOREYS", "DEFAULT_ABOVE", "DEFAULT_BELOW", "DEFAULT_NORMAL_STACK", "EDGE_EXTINCTION_PER_M",
           "PrefireHistory", "REVERSE_STACK_WIDER", "default_window", "reverse_stack",
           "RESERVOIR_VOLUME_FACTOR", "WIDEN", "Window", "cached_history", "cached_window", "edge_reached",
           "make_window", "prefire_history", "run_guarded", "step_times", "wider_window", "window_network", "window_simulation", "window_storeys"]
