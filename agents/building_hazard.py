"""A hazard in a building evacuation, the agents' side: smoke speed factors and closed stair doors as arrays.

:func:`agents.building_evac.simulate` takes ``hazard``, a callable
``hazard(t_s, state) -> BuildingHazard`` called at the start and then
between record blocks. ``state`` (:class:`EvacState`) says what the people
did in the block that just ended, among it how many passed each floor's
stair door (``door_passed``: the fire side holds those doors open); the
returned :class:`BuildingHazard` holds from that time to the next call
(and ``stair_out``: how many left each stair at the ground):

* ``floor_speed`` (F,): factor (0, 1] of the horizontal walking speed on
  each floor (smoke on the escape route);
* ``flight_speed`` (F, S): factor (0, 1] of the speed, and so of the SFPE
  flow S·D, on the flight from floor f down to f-1 of stair s (row 0 unused);
* ``door_closed`` (F, S): the stair door of floor f into stair s is closed
  to the people still on the floor (an untenable lobby or stair).

The rules this module applies between blocks (:class:`HazardRun`):

* **Walking in smoke.** A person still walking to their door keeps the
  distance left and walks it at the new speed: when a floor's factor
  changes at time T, ``remaining = remaining - v_old (T - start)`` and
  ``t_arrive = max(premovement, T) + remaining / v_new``. Floors whose factor
  did not change are not touched, so a hazard of factor 1 that closes
  nothing gives the run without a hazard to the bit.
* **Closed doors stay closed** (latched): a door once untenable is not
  reopened in the run, so each person enters each door queue at most once.
* **Re-choice.** The people still on a floor whose stair door closes (queued
  at it, or walking to it) choose again among the floor's open stairs, one
  by one (those queued first, in queue order, then those walking, by
  arrival time): each takes the open stair with the fewest people queued at
  or walking to its door on that floor, ties to the lower stair index. The
  ones who were queued cross the floor again: they walk the floor's
  ``travel_m`` (its farthest travel to a stair door; the door-to-door
  distance is not in the building file) at their speed in smoke; the ones
  still walking keep their remaining distance.
* **Caught.** When every stair door of a floor is closed, its people still
  on the floor stay there (they never arrive at a door; counted as caught
  in ``people_cut_off``). They are not sent up to a refuge floor: the
  model moves people down the stairs only. People already in a stair go
  on (slowed by ``flight_speed``); people of a refuge floor are safe there
  from the start (``refuge_mode = "stop"``), and the people from above who
  reach a refuge floor still leave the stair into it.
* The ground floor's people walk to the exits (``floor_speed[0]``); stair
  doors of floor 0 are not used.

:class:`ScheduledHazard` is a hazard from a list of closures and constant
factors (what-if runs, tests). The fire-driven hazard is in
:mod:`scenarios.fire_evacuation` (agents does not import physics).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from twin.errors import ValidationError


@dataclass(frozen=True)
class EvacState:
    """What a hazard receives between blocks (arrays are copies).

    Attributes
    ----------
    t_s : float
        Time of the call (s since the alarm): the end of the block just run.
    door_passed : ndarray (F, S) int
        People who passed each floor's door into each stair in the block just ended (row 0: zero).
    people_on_floor : ndarray (F,) int
        People still on each floor (walking to or queued at a door).
    people_on_flight : ndarray (F, S) int
        People on the flight from floor f down to f-1 of stair s.
    door_queue : ndarray (F, S) int
        People queued at each floor's stair door.
    people_out : int
        People out of the building.
    people_cut_off : ndarray (F,) int
        People on floors whose every stair door is closed.
    stair_out : ndarray (S,) int
        People who left each stair at the ground (through its ground-floor door) in the block.
    """

    t_s: float
    door_passed: np.ndarray
    people_on_floor: np.ndarray
    people_on_flight: np.ndarray
    door_queue: np.ndarray
    people_out: int
    people_cut_off: np.ndarray
    stair_out: np.ndarray


@dataclass
class BuildingHazard:
    """Speed factors and closed stair doors from now to the next call (see the module docstring)."""

    floor_speed: np.ndarray
    flight_speed: np.ndarray
    door_closed: np.ndarray

    @classmethod
    def clear(cls, n_floors: int, n_stairs: int) -> BuildingHazard:
        """Clear air: every factor 1, every door open."""
        return cls(np.ones(n_floors), np.ones((n_floors, n_stairs)), np.zeros((n_floors, n_stairs), bool))


HazardFn = Callable[[float, EvacState], "BuildingHazard | None"]


def check_hazard(h: BuildingHazard | None, n_floors: int, n_stairs: int) -> BuildingHazard:
    """``h`` with float/bool arrays of the tower's shapes and factors in (0, 1]; None is clear air."""
    if h is None:
        return BuildingHazard.clear(n_floors, n_stairs)
    if not isinstance(h, BuildingHazard):
        raise ValidationError(f"hazard returned {type(h).__name__}: return an agents.building_hazard."
                              "BuildingHazard (or None for clear air)")
    out = BuildingHazard(np.asarray(h.floor_speed, float), np.asarray(h.flight_speed, float),
                         np.asarray(h.door_closed, bool))
    shapes = {"floor_speed": (n_floors,), "flight_speed": (n_floors, n_stairs),
              "door_closed": (n_floors, n_stairs)}
    for name, shape in shapes.items():
        got = getattr(out, name).shape
        if got != shape:
            raise ValidationError(f"hazard.{name} has shape {got}: give {shape} (floors, stairs of the tower)")
    for name in ("floor_speed", "flight_speed"):
        v = getattr(out, name)
        bad = ~((v > 0) & (v <= 1))
        if bad.any():
            where = tuple(int(i[0]) for i in np.nonzero(bad))
            raise ValidationError(f"hazard.{name}{list(where)} = {v[where]!r}: a speed factor lies in (0, 1]")
    return out


@dataclass
class ScheduledHazard:
    """A hazard from constant speed factors and stair doors closed at given times.

    Parameters
    ----------
    n_floors, n_stairs : int
        The tower's shape.
    closures : sequence of (t_s, floor, stair)
        Stair ``stair`` closed on floor ``floor`` from ``t_s`` on.
    floor_speed, flight_speed : float or array, optional
        Constant factors (broadcast to (F,) and (F, S)).
    """

    n_floors: int
    n_stairs: int
    closures: Sequence[tuple[float, int, int]] = ()
    floor_speed: float | np.ndarray = 1.0
    flight_speed: float | np.ndarray = 1.0
    calls: list[EvacState] = field(default_factory=list)

    def __call__(self, t_s: float, state: EvacState) -> BuildingHazard:
        self.calls.append(state)
        F, S = self.n_floors, self.n_stairs
        closed = np.zeros((F, S), bool)
        for t, f, s in self.closures:
            if t_s >= t - 1e-9:
                closed[f, s] = True
        return BuildingHazard(np.broadcast_to(np.asarray(self.floor_speed, float), (F,)).copy(),
                              np.broadcast_to(np.asarray(self.flight_speed, float), (F, S)).copy(), closed)


class HazardRun:
    """Applies a hazard to a running evacuation between blocks (the rules of the module docstring).

    Parameters
    ----------
    travel_m : ndarray (F,)
        Each floor's travel (the walk of a person who must cross to another door).
    v_floor : float
        Unimpeded horizontal speed of the mean walker (m/s); a person walks ``v_floor fac factor``.
    dist : ndarray (n,)
        Each person's walk to their first door (m).
    premovement : ndarray (n,)
        Each person's pre-movement time (s).
    """

    def __init__(self, travel_m: np.ndarray, v_floor: float, dist: np.ndarray, premovement: np.ndarray):
        F = len(travel_m)
        self.travel_m = np.asarray(travel_m, float)
        self.v_floor = float(v_floor)
        self.pre = np.asarray(premovement, float)
        self.rem = np.asarray(dist, float).copy()       # distance left at time t0 (from max(pre, t0))
        self.t0 = np.zeros(self.rem.size)
        self.floor_speed = np.ones(F)
        self.closed: np.ndarray | None = None
        self.closed_t = np.full(F, np.nan)              # time every stair door of the floor was closed
        self.door_closed_t: np.ndarray | None = None    # (F, S) first time each door closed
        self.rerouted = np.zeros(self.rem.size, np.int64)
        self.caught = np.zeros(self.rem.size, bool)

    def apply(self, h: BuildingHazard, t: float, net, ag, st) -> None:
        """Set the flights' factors, re-time walkers on floors whose factor changed, re-route at new closures."""
        F, S = net.n_floors, net.n_stairs
        if self.closed is None:
            self.closed = np.zeros((F, S), bool)
            self.door_closed_t = np.full((F, S), np.nan)
        st.flight_fac[:] = h.flight_speed.reshape(-1)
        changed = False
        new_factor = h.floor_speed != self.floor_speed
        if new_factor.any():
            changed |= self._retime(np.nonzero(new_factor)[0], h.floor_speed, t, ag)
        new_closed = h.door_closed & ~self.closed
        new_closed[0, :] = False  # the ground floor walks to the exits
        if new_closed.any():
            self.door_closed_t[new_closed] = t
            self.closed |= new_closed
            for f in np.unique(np.nonzero(new_closed)[0]):
                changed |= self._reroute(int(f), t, net, ag, st)
        if changed:
            self._reorder(ag, st)

    def _walking(self, ag, floors: np.ndarray) -> np.ndarray:
        from agents._kernels.building import WAITING

        return np.nonzero((ag.where == WAITING) & np.isin(ag.floor, floors) & np.isfinite(ag.t_arrive))[0]

    def _speed(self, ag, ids: np.ndarray) -> np.ndarray:
        return self.v_floor * ag.fac[ids] * self.floor_speed[ag.floor[ids]]

    def _retime(self, floors: np.ndarray, factor: np.ndarray, t: float, ag) -> bool:
        ids = self._walking(ag, floors)
        if ids.size:
            start = np.maximum(self.pre[ids], self.t0[ids])
            walked = np.clip(self._speed(ag, ids) * (t - start), 0.0, self.rem[ids])
            self.rem[ids] -= walked
            self.t0[ids] = np.maximum(self.t0[ids], t)
        self.floor_speed[floors] = factor[floors]
        if ids.size:
            ag.t_arrive[ids] = np.maximum(self.pre[ids], self.t0[ids]) + self.rem[ids] / self._speed(ag, ids)
        return bool(ids.size)

    def _reroute(self, f: int, t: float, net, ag, st) -> bool:
        from agents._kernels.building import QUEUED, WAITING

        S = net.n_stairs
        closed_now = np.nonzero(self.closed[f])[0]
        queued: list[int] = []
        for s in closed_now:
            q = f * S + int(s)
            queued.extend(int(a) for a in st.qbuf[st.qoff[q] + st.qhead[q]: st.qoff[q] + st.qtail[q]])
            st.qhead[q] = st.qtail[q]
        walking = self._walking(ag, np.array([f]))
        walking = walking[np.isin(ag.stair[walking], closed_now)]
        walking = walking[np.argsort(ag.t_arrive[walking], kind="stable")]
        movers = np.array(queued + walking.tolist(), dtype=np.int64)
        if movers.size == 0:
            if self.closed[f].all():
                self.closed_t[f] = t
            return False
        open_ = np.nonzero(~self.closed[f])[0]
        was_queued = ag.where[movers] == QUEUED
        ag.where[movers] = WAITING
        if open_.size == 0:  # every stair of the floor closed: they stay
            self.closed_t[f] = t
            self.caught[movers] = True
            ag.t_arrive[movers] = math.inf
            return True
        on_floor = np.nonzero((ag.floor == f) & ((ag.where == WAITING) | (ag.where == QUEUED)))[0]
        heading = np.setdiff1d(on_floor, movers)
        load = np.array([np.count_nonzero(ag.stair[heading] == s) for s in open_])
        for a, q in zip(movers, was_queued, strict=True):
            j = int(np.argmin(load))  # fewest queued at / walking to the door; ties: the lower index
            ag.stair[a] = open_[j]
            load[j] += 1
            self.rerouted[a] += 1
            if q:  # at the closed door: cross the floor to the other one
                self.rem[a] = self.travel_m[f]
                self.t0[a] = t
        ids = movers
        ag.t_arrive[ids] = np.maximum(self.pre[ids], self.t0[ids]) + self.rem[ids] / self._speed(ag, ids)
        return True

    @staticmethod
    def _reorder(ag, st) -> None:
        """Arrival order again: the people done first, then every walker by arrival time (stable)."""
        from agents._kernels.building import WAITING

        walking = ag.where[ag.order] == WAITING
        done = ag.order[~walking]
        waiting = np.nonzero(ag.where == WAITING)[0]
        waiting = waiting[np.argsort(ag.t_arrive[waiting], kind="stable")]
        ag.order[:] = np.concatenate([done, waiting])
        st.ptr[0] = done.size

    def n_caught(self, ag) -> np.ndarray:
        """(F,) people still on floors whose every stair door is closed."""
        from agents._kernels.building import QUEUED, WAITING

        on = (ag.where == WAITING) | (ag.where == QUEUED)
        return np.bincount(ag.floor[on & self.caught], minlength=len(self.travel_m))


__all__ = ["BuildingHazard", "EvacState", "HazardFn", "HazardRun", "ScheduledHazard", "check_hazard"]
