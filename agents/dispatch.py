"""Emergency dispatch on a road network that floods: a simpy model on the twin's clock.

Stations hold units (fire engines, ambulances, rescue teams). An incident
needs some units of some types (:data:`INCIDENT_TYPES`); each needed unit is
one *request*, served on its own:

1. **Assignment**: the nearest *available* unit of the type by travel time
   on the road graph under the closures in force (:class:`agents.routing.Router`,
   one cached Dijkstra tree per station and road state, so a choice costs
   O(stations)). Units are available at their station (a returning unit
   is not re-tasked on its way) or standing by where a flood cut them off
   (one cached tree from where each stands). No free unit that can reach the
   incident: the request waits in a first-in-first-out queue (wait recorded);
   no unit of the type can reach it at all: ``incident_unreachable`` is
   logged and the request waits for the roads to change. A flood rescue
   whose own node is cut off is worked from the nearest node within
   ``stage_m`` (500 m, :data:`RESCUE_STAGE_M`) that the unit can reach: its
   "on scene" is that staging node (``staged_m`` in the request table).
2. **Turnout** (default 60 s): 建标152-2017《城市消防站建设标准》's 5-minute
   rule is explained as 1 min to turn out plus 4 min on the road; NFPA 1710
   (2020) §4.1.2.1 asks 60 s turnout for EMS and 80 s for fire.
3. **Travel** edge by edge along the shortest path. When the road state
   changes (a flood frame) and an edge still ahead on a unit's path changes
   cost (closed, slowed, reopened), the unit is interrupted (simpy
   ``Interrupt``), drives to the end of the edge it is on (a vehicle on a
   street segment finishes it), and re-routes from that node under the new
   state. A unit left with no open route to the incident stands by where it
   is and the request goes back to the head of the queue.
4. **On scene** for a sampled time, then **return** to its station (also
   re-routed on closures); the unit is free on arrival. A unit cut off from
   its station stands by where it is, available (it is then dispatched from
   there, without a new turnout), and heads home when a flood frame opens
   its way.

Engine: simpy on the twin's clock. The calls are one chain of events; a
mission that no flood frame can reach before its unit is back (every mission
when the roads do not change) runs on a *fast path* of two events (on scene;
back or standing by) computed from cached trees' costs, without reading its
path; any other mission is a simpy process, interrupted by road changes.
Both give the same times, tables and records (``DispatchModel(fast=False)``
runs every mission as a process; a test compares the two).

Driven from outside (the coupled runner, :mod:`scenarios.couplings.dispatch`):
:meth:`DispatchModel.start` schedules the calls on a clock someone else
drives; :meth:`~DispatchModel.add_incident` places a call at the clock's
time, :meth:`~DispatchModel.take_station_out` puts a station out of service
and :meth:`~DispatchModel.sync_roads` takes the road graph's closures of
every reason as a flood frame would (units re-route). With none of them
called, :meth:`~DispatchModel.run` is what it was.

Checkpoints: :meth:`DispatchModel.checkpoint` writes the whole state at an
instant (numpy arrays and JSON values, as a coupling's ``save``) and
:meth:`DispatchModel.restore` puts it into a model built afresh on a clock
at that instant. simpy processes cannot be written out, so each unit under
way is saved as what its process waits for (``Unit.wait``: the leg it drives
and when it set off, the edge it finishes before re-routing, its turnout or
time on scene) and gets a new process that waits for the rest and goes on as
the old one would have; every pending event goes back at its exact instant in
its saved order, and the router's cache of trees is rebuilt key for key
(which trees are cached decides which of two equal paths is read). A
restored run ends with the tables, records and positions of the run that did
not stop (tested).

KPIs: response time = dispatch → first unit on scene (the 5-minute rule of
建标152-2017 counts from the dispatch order), call → arrival, queue waits,
unit utilisation (busy from dispatch to back at station or standing by,
over the call period), reroutes,
unreachable incidents. Events (``unit_dispatched``, ``unit_arrived``,
``unit_rerouted``, ``incident_queued``, ``incident_unreachable``,
``road_closed``, ``road_reopened``...) are kept as plain records while the
model runs (building pydantic events per lifecycle would cost more than the
simulation) and turned into a :class:`twin.events.EventLog` by
:meth:`DispatchModel.event_log`.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import simpy
from simpy.events import NORMAL, URGENT

from twin.errors import ValidationError

if TYPE_CHECKING:  # pragma: no cover
    from agents.road_hazard import RoadHazard
    from agents.routing import Leg, Router
    from twin.clock import SimClock
    from twin.events import Event, EventLog

UNIT_TYPES = ("engine", "ambulance", "rescue")

#: Turnout time, s (建标152-2017 commentary: 1 min of the 5; NFPA 1710: 60 s EMS).
TURNOUT_S = 60.0
#: China's urban fire-station rule (建标152-2017): on scene within 5 min of the dispatch order.
RESPONSE_TARGET_S = 300.0


@dataclass(frozen=True)
class IncidentType:
    """What an incident kind needs: unit counts by type and the mean on-scene time (s)."""

    needs: Mapping[str, int]
    on_scene_s: float
    stage_m: float = 0.0


#: Distance (m) a flood rescue may be worked from the nearest reachable road node when its own
#: node is cut off (ASSUMED: boats and waders carried ~500 m from the water's edge).
RESCUE_STAGE_M = 500.0

#: ASSUMED demo defaults (not an official table): units sent, mean on-scene time, staging reach.
INCIDENT_TYPES: dict[str, IncidentType] = {
    "fire": IncidentType({"engine": 2}, 45 * 60.0),
    "medical": IncidentType({"ambulance": 1}, 25 * 60.0),
    "flood_rescue": IncidentType({"rescue": 1, "ambulance": 1}, 40 * 60.0, RESCUE_STAGE_M),
    "collapse": IncidentType({"rescue": 1, "engine": 1}, 90 * 60.0),
}

#: Event kinds of the bridge and other models that become incidents, and the incident kind.
EVENT_INCIDENTS: dict[str, str] = {
    "fire_origin": "fire",
    "fire_alarm": "fire",
    "threshold_crossed": "flood_rescue",
    "slope_failure": "collapse",
    "medical_call": "medical",
}

ON_SCENE_DISTRIBUTIONS = ("lognormal", "exponential", "fixed")


@dataclass
class Station:
    """A station: id, position (lon/lat), units by type."""

    id: str
    lon: float
    lat: float
    units: dict[str, int]
    name: str = ""
    kind: str = ""
    node: int = -1


@dataclass
class Incident:
    """A call: time (s), position (lon/lat), kind and the units it needs."""

    id: str
    time_s: float
    lon: float
    lat: float
    kind: str
    needs: dict[str, int]
    on_scene_s: float
    node: int = -1
    snap_m: float = 0.0
    stage_m: float = 0.0
    candidates: np.ndarray | None = None


@dataclass(eq=False, slots=True)
class Unit:
    """One vehicle/team; ``track`` holds the legs it drove (:class:`agents.routing.Leg` with ``t0`` the
    departure time and ``upto`` the edges driven, None: all)."""

    id: str
    type: str
    station: int
    home: int
    index: int = -1
    node: int = -1
    free: bool = True
    busy_s: float = 0.0
    missions: int = 0
    since: float = 0.0
    leg: tuple | None = None
    process: Any = None
    req: Any = None  # the request its process serves (None: driving home after standing by)
    stage: int = 0  # its process's part: 1 on the way to the incident, 2 on the way home
    wait: tuple | None = None  # what its process waits for: ("stop", node), ("leg",), ("edge", k, end_s)
    track: list = field(default_factory=list)
    phase_t: list = field(default_factory=lambda: [0.0])  # phase changes: times (s) and codes of
    phase_c: list = field(default_factory=lambda: [0])  # PHASES (numbers only: nothing for the GC to scan)

    @property
    def phases(self) -> list[tuple[float, int]]:
        """(time_s, phase code) of each phase change, in order."""
        return list(zip(self.phase_t, self.phase_c, strict=True))

    def phase(self, t: float, code: int) -> None:
        self.phase_t.append(t)
        self.phase_c.append(code)


@dataclass(eq=False, slots=True)
class Request:
    """One unit asked for by one incident."""

    incident: int
    type: str
    call_s: float
    on_scene_s: float
    dispatch_s: float = math.nan
    arrive_s: float = math.nan
    clear_s: float = math.nan
    back_s: float = math.nan
    unit: int = -1
    planned_s: float = math.nan
    target: int = -1
    staged_m: float = 0.0
    aborts: int = 0
    reroutes: int = 0
    unreachable_at_call: bool = False
    queued: bool = False


#: Incidents whose station order (:meth:`DispatchModel._station_order`) is computed at once, and
#: how many such blocks are kept per road state.
_ORDER_BLOCK = 1024
_ORDER_BLOCKS_KEPT = 16


class _Wake(simpy.Event):
    """A simpy event that fires after ``delay`` s with one callback (a ``Timeout`` without its
    checks); the fast path's missions hang their unit, request and leg on it."""

    def __init__(self, env: simpy.Environment, delay: float, callback, priority: int = NORMAL,
                 args: tuple = (), at: float | None = None):
        self.env = env
        self.callbacks = [callback] if callback is not None else []
        self._ok = True
        self._value = None
        self.args = args
        if at is None:
            env.schedule(self, priority, delay)
        else:
            _schedule_at(env, self, at, priority)


def _schedule_at(env: simpy.Environment, event: simpy.Event, at: float, priority: int) -> None:
    """Schedule ``event`` at exactly the instant ``at`` (what ``env.schedule`` does with a delay).

    A restored event must fall at its saved instant to the bit, and
    ``now + (at - now)`` need not be ``at`` (nor need any delay give it), so
    the entry goes on simpy's queue as ``Environment.schedule`` puts it there
    (time, priority, the next event id, event).
    """
    if at < env.now:
        raise ValidationError(f"restore: an event saved for t={at!r} s lies before the clock's t={env.now!r} s")
    heapq.heappush(env._queue, (at, priority, next(env._eid), event))


#: Request and unit attributes written by :meth:`DispatchModel.checkpoint` as arrays (name, dtype).
_REQUEST_FIELDS = (("incident", np.int64), ("call_s", float), ("on_scene_s", float), ("dispatch_s", float),
                   ("arrive_s", float), ("clear_s", float), ("back_s", float), ("unit", np.int64),
                   ("planned_s", float), ("target", np.int64), ("staged_m", float), ("aborts", np.int64),
                   ("reroutes", np.int64), ("unreachable_at_call", bool), ("queued", bool))
_UNIT_FIELDS = (("free", bool), ("node", np.int64), ("busy_s", float), ("missions", np.int64), ("since", float))


class _SavedLeg:
    """A leg put back from a checkpoint: the path and edge costs it was planned with, read as an
    :class:`agents.routing.Leg` is (``nodes``, ``edges``, ``edge_costs``, ``cum``, ``t0``, ``upto``)."""

    __slots__ = ("orig", "dest", "cost", "nodes", "edges", "edge_costs", "cum", "t0", "upto")

    def __init__(self, nodes: np.ndarray, edges: np.ndarray, edge_costs: np.ndarray, cost: float,
                 t0: float, upto: int | None):
        self.nodes, self.edges, self.edge_costs = nodes, edges, edge_costs
        self.orig, self.dest = int(nodes[0]), int(nodes[-1])
        self.cost, self.t0, self.upto = cost, t0, upto
        self.cum = np.cumsum(edge_costs)

    @property
    def reachable(self) -> bool:
        return bool(np.isfinite(self.cost))


class _LegTable:
    """Legs written out by a checkpoint as flat arrays: owner unit, role (0: driven, in its track's
    order; 1: under way; 2: held by a pending fast-path event), departure, edges driven, cost, path."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, int, float, int, float]] = []
        self.nodes: list[np.ndarray] = []
        self.edges: list[np.ndarray] = []
        self.costs: list[np.ndarray] = []

    def add(self, leg, owner: int, role: int) -> int:
        """Add a leg; returns its index in the table."""
        self.rows.append((owner, role, float(leg.t0), -1 if leg.upto is None else int(leg.upto), float(leg.cost)))
        self.nodes.append(np.asarray(leg.nodes, np.int64))
        self.edges.append(np.asarray(leg.edges, np.int64))
        self.costs.append(np.asarray(leg.edge_costs, float))
        return len(self.rows) - 1

    def arrays(self) -> dict[str, np.ndarray]:
        def cat(xs: list[np.ndarray], dt) -> np.ndarray:
            return np.concatenate(xs).astype(dt) if xs else np.empty(0, dt)

        cols = list(zip(*self.rows, strict=True)) if self.rows else [()] * 5
        return {"leg_owner": np.array(cols[0], np.int64), "leg_role": np.array(cols[1], np.int64),
                "leg_t0": np.array(cols[2], float), "leg_upto": np.array(cols[3], np.int64),
                "leg_cost": np.array(cols[4], float),
                "leg_n_nodes": np.array([a.size for a in self.nodes], np.int64),
                "leg_n_edges": np.array([a.size for a in self.edges], np.int64),
                "leg_nodes": cat(self.nodes, np.int64), "leg_edges": cat(self.edges, np.int64),
                "leg_costs": cat(self.costs, float)}

    @staticmethod
    def read(saved: Mapping[str, Any]):
        """(owner, role, :class:`_SavedLeg`) for each leg of :meth:`arrays`, in order."""
        nn, ne = np.asarray(saved["leg_n_nodes"]), np.asarray(saved["leg_n_edges"])
        on = np.concatenate([[0], np.cumsum(nn)]).astype(np.int64)
        oe = np.concatenate([[0], np.cumsum(ne)]).astype(np.int64)
        nodes, edges = np.asarray(saved["leg_nodes"], np.int64), np.asarray(saved["leg_edges"], np.int64)
        costs = np.asarray(saved["leg_costs"], float)
        t0, upto = np.asarray(saved["leg_t0"]).tolist(), np.asarray(saved["leg_upto"]).tolist()
        cost = np.asarray(saved["leg_cost"]).tolist()
        for i, (owner, role) in enumerate(zip(np.asarray(saved["leg_owner"]).tolist(),
                                              np.asarray(saved["leg_role"]).tolist(), strict=True)):
            leg = _SavedLeg(nodes[on[i]:on[i + 1]].copy(), edges[oe[i]:oe[i + 1]].copy(),
                            costs[oe[i]:oe[i + 1]].copy(), cost[i], t0[i], None if upto[i] < 0 else upto[i])
            yield owner, role, leg


#: Unit phases recorded in ``Unit.phases`` (and dispatch.nc ``status``): codes are indices here.
PHASES = ("at_station", "turnout", "to_incident", "on_scene", "returning", "standby_away")


def make_incident(id: str, time_s: float, lon: float, lat: float, kind: str,
                  needs: Mapping[str, int] | None = None, on_scene_s: float | None = None,
                  stage_m: float | None = None) -> Incident:
    """An :class:`Incident` with the defaults of :data:`INCIDENT_TYPES` for its kind."""
    spec = INCIDENT_TYPES.get(kind)
    if spec is None and (needs is None or on_scene_s is None):
        raise ValidationError(f"incident {id}: kind={kind!r} is not one of {sorted(INCIDENT_TYPES)}; "
                              "give its needs and on-scene time")
    needs = dict(needs if needs is not None else spec.needs)
    for t, n in needs.items():
        if t not in UNIT_TYPES or int(n) != n or n < 0:
            raise ValidationError(f"incident {id}: needs {t}={n!r}; unit types are {list(UNIT_TYPES)} "
                                  "with whole counts >= 0")
    on_scene = float(on_scene_s if on_scene_s is not None else spec.on_scene_s)
    for name, v in (("time_s", time_s), ("lon", lon), ("lat", lat), ("on_scene_s", on_scene)):
        if not math.isfinite(float(v)):
            raise ValidationError(f"incident {id}: {name}={v!r} is not a finite number")
    if time_s < 0 or on_scene < 0:
        raise ValidationError(f"incident {id}: time_s={time_s!r} and on_scene_s={on_scene!r} must be >= 0")
    stage = float(stage_m if stage_m is not None else (spec.stage_m if spec is not None else 0.0))
    if not (math.isfinite(stage) and stage >= 0):
        raise ValidationError(f"incident {id}: stage_m={stage_m!r} must be a distance >= 0 m")
    return Incident(str(id), float(time_s), float(lon), float(lat), kind,
                    {t: int(n) for t, n in needs.items() if n}, on_scene, stage_m=stage)


def incidents_from_events(events: Iterable[Event], kinds: Mapping[str, str] = EVENT_INCIDENTS
                          ) -> tuple[list[Incident], int]:
    """Incidents from twin events (e.g. the bridge's ``fire_origin``, ``threshold_crossed``).

    An event becomes an incident when its kind is in ``kinds`` and its data
    give a position (``lon``/``lat`` or ``location: [lon, lat]``). Returns
    the incidents and the number of mapped events skipped for lack of a position.
    """
    out, skipped = [], 0
    for i, ev in enumerate(events):
        kind = kinds.get(ev.kind)
        if kind is None:
            continue
        d = ev.data or {}
        lon, lat = d.get("lon"), d.get("lat")
        if (lon is None or lat is None) and isinstance(d.get("location"), (list, tuple)):
            lon, lat = d["location"][:2]
        if lon is None or lat is None:
            skipped += 1
            continue
        out.append(make_incident(f"ev{i}-{ev.kind}", ev.time_s, float(lon), float(lat), kind))
    return out, skipped


class DispatchModel:
    """Stations, units and incidents on a road graph under a changing flood (see module doc).

    Parameters
    ----------
    router : agents.routing.Router
        Routing on the road graph (its current state is the base state;
        flood frames add to it).
    stations : list of Station
    incidents : list of Incident
    hazard : agents.road_hazard.RoadHazard, optional
        Flood state per frame (applied at its ``times_s``).
    clock : twin.clock.SimClock, optional
        The master clock (a new one at t = 0 by default).
    seed : int
        Seeds on-scene times.
    turnout_s : float or mapping type -> float
    on_scene : {"lognormal", "exponential", "fixed"}
        Distribution of on-scene times around each incident's mean.
    on_scene_cv : float
        Coefficient of variation of the lognormal (ASSUMED 0.5).
    max_snap_m : float
        Incidents and stations farther than this from any node are refused.
    fast : bool
        Run missions whose road state cannot change before the unit is back
        on the fast path (two simpy events, see :meth:`_fast_mission`);
        False runs every mission as a simpy process (the general path, the
        same results, slower).
    """

    def __init__(self, router: Router, stations: Sequence[Station], incidents: Sequence[Incident], *,
                 hazard: RoadHazard | None = None, clock: SimClock | None = None, seed: int = 0,
                 turnout_s: float | Mapping[str, float] = TURNOUT_S, on_scene: str = "lognormal",
                 on_scene_cv: float = 0.5, max_snap_m: float = 2000.0, fast: bool = True):
        from twin.clock import SimClock

        if on_scene not in ON_SCENE_DISTRIBUTIONS:
            raise ValidationError(f"on_scene={on_scene!r}: choose one of {list(ON_SCENE_DISTRIBUTIONS)}")
        if not stations:
            raise ValidationError("dispatch needs at least one station")
        self.router = router
        self.clock = clock or SimClock()
        self.env = self.clock.env
        self.rng = np.random.default_rng(seed)
        self.hazard = hazard
        if hazard is not None and list(hazard.edge_ids) != list(router.edge_ids):
            raise ValidationError("the road hazard was computed for another road graph")
        self.turnout = ({t: float(turnout_s) for t in UNIT_TYPES} if np.isscalar(turnout_s)
                        else {t: float(turnout_s.get(t, TURNOUT_S)) for t in UNIT_TYPES})
        self.stations = list(stations)
        self.incidents = sorted(incidents, key=lambda i: i.time_s)
        self._snap(self.stations, "station", max_snap_m)
        self._snap(self.incidents, "incident", max_snap_m)
        self.units: list[Unit] = []
        S = len(self.stations)
        self._free: dict[str, list[list[int]]] = {t: [[] for _ in range(S)] for t in UNIT_TYPES}
        self._free_st: dict[str, set[int]] = {t: set() for t in UNIT_TYPES}  # stations with a free unit
        self._has = {t: np.zeros(S, dtype=bool) for t in UNIT_TYPES}
        self._away: dict[str, set[int]] = {t: set() for t in UNIT_TYPES}
        for s, st in enumerate(self.stations):
            for t, n in st.units.items():
                if t not in UNIT_TYPES:
                    raise ValidationError(f"station {st.id}: unit type {t!r} is not one of {list(UNIT_TYPES)}")
                for k in range(int(n)):
                    self._free[t][s].append(len(self.units))
                    self.units.append(Unit(f"{st.id}/{t}{k + 1}", t, s, st.node, index=len(self.units),
                                           node=st.node))
                if int(n) > 0:
                    self._free_st[t].add(s)
                self._has[t][s] = int(n) > 0
        self._on_scene = (on_scene, float(on_scene_cv))
        self._max_snap_m = float(max_snap_m)
        self.requests = self._make_requests(on_scene, on_scene_cv)
        self.queues: dict[str, deque[Request]] = {t: deque() for t in UNIT_TYPES}
        self.records: list[tuple] = []
        self._base_closed = router.closed.copy()
        self._base_factor = router.factor.copy()
        self._station_nodes = np.array([st.node for st in self.stations], dtype=np.int64)
        self._station_set = set(self._station_nodes.tolist())
        self._dist = None
        self._dist_key = None
        self.road_changes: list[dict] = []
        self.stranded = 0
        self.frame = -1
        self._until = 0.0
        self.fast = bool(fast)
        self.fast_missions = 0  # missions run on the fast path (see _fast_mission)
        self._frame_times = [float(t) for t in hazard.times_s] if hazard is not None else []
        self._inc_nodes = np.array([i.node for i in self.incidents], dtype=np.int64)
        self._order_key = None
        self._order_blocks: dict[int, tuple[list, list]] = {}
        self._next_call = 0
        self._n_calls = len(self.incidents)  # the calls of the chain; add_incident's come on top
        self._call_waiting = False
        self.lost_stations: dict[int, str] = {}  # station index -> reason (out of service)
        self._by_incident: list[list[Request]] = [[] for _ in self.incidents]
        for r in self.requests:
            self._by_incident[r.incident].append(r)
        self._arrive_cb, self._back_cb = self._arrive, self._back_event
        self._started = False
        self._flood_proc = None
        self._states: dict[str, tuple] = {}  # road states whose trees the router caches (checkpoint)
        self._note_state()

    # ------------------------------------------------------------ set-up
    def _snap(self, items, what: str, max_snap_m: float) -> None:
        if not items:
            return
        nodes, dist = self.router.nearest_lonlat(np.array([i.lon for i in items]),
                                                 np.array([i.lat for i in items]), return_distance=True)
        for item, n, d in zip(items, nodes, dist, strict=True):
            if d > max_snap_m:
                raise ValidationError(f"{what} {item.id} at ({item.lon:.5f}, {item.lat:.5f}) is "
                                      f"{d:.0f} m from the nearest road node (limit {max_snap_m:.0f} m): "
                                      "is it inside the road network's area?")
            item.node = int(n)
            if hasattr(item, "snap_m"):
                item.snap_m = float(d)

    def _make_requests(self, dist: str, cv: float) -> list[Request]:
        """One request per unit needed, in call order; on-scene times drawn at once (seeded)."""
        idx, types, means = [], [], []
        for i, inc in enumerate(self.incidents):
            for t, n in inc.needs.items():
                idx += [i] * n
                types += [t] * n
                means += [inc.on_scene_s] * n
        d = self._draw_on_scene(means, dist, cv)
        return [Request(i, t, self.incidents[i].time_s, float(x)) for i, t, x in zip(idx, types, d, strict=True)]

    def _draw_on_scene(self, means, dist: str, cv: float) -> np.ndarray:
        """On-scene times around ``means`` (s), drawn from the model's generator in order."""
        m = np.asarray(means, dtype=float)
        if dist == "exponential":
            return self.rng.exponential(1.0, m.size) * m
        if dist == "lognormal":
            sigma = math.sqrt(math.log1p(cv * cv))
            return self.rng.lognormal(-sigma * sigma / 2, sigma, m.size) * m
        return m

    # ------------------------------------------------------------ running
    def run(self, until_s: float, *, drain_s: float = 6 * 3600.0, progress=None) -> DispatchModel:
        """Simulate calls up to ``until_s``, then let missions under way finish (≤ ``drain_s`` more).

        ``progress(sim_s)`` is called about every 1 % of ``until_s``.
        """
        if not self._started:
            self.start(until_s)
        elif until_s != self._until:
            raise ValidationError(f"until_s={until_s!r}: the model was started (or restored) with calls up "
                                  f"to {self._until!r} s; run it on with that")
        step = max(until_s / 100.0, 1.0)
        t = self.clock.now_s
        with _fewer_gc_passes():
            while t < until_s:
                t = min(until_s, t + step)
                self.clock.advance_to(t)
                if progress is not None:
                    progress(t)
            end = until_s + drain_s
            while self.env.peek() <= end and any(not u.free for u in self.units):
                self.clock.advance_to(min(end, max(self.env.peek(), self.clock.now_s)))
        return self

    def start(self, until_s: float) -> DispatchModel:
        """Schedule the calls up to ``until_s`` (and the flood frames) on the clock without driving it.

        :meth:`run` starts and drives the clock; a caller that drives the
        clock itself (the coupled runner) starts the model with this, then
        feeds it what happens while the clock runs (:meth:`add_incident`,
        :meth:`take_station_out`, :meth:`sync_roads`).
        """
        if self._started:
            raise ValidationError("the dispatch model is already started (or restored): start it once")
        self._started = True
        self._until = float(until_s)
        if self.hazard is not None:
            self._flood_proc = self.env.process(self._flood_frames())
        # the calls: one chain of events (what a process started now would do, without its generator)
        _Wake(self.env, 0.0, self._on_calls, URGENT)
        return self

    def _on_calls(self, wake) -> None:
        """Place the calls due now, in call order, then wait for the next (``timeout(t - now)``).

        The same times and order as a process looping over the incidents
        (``if t > now: yield timeout(t - now)``); the next wait is scheduled
        before the calls are placed, where that process would have scheduled it
        relative to the missions' first timeouts (which their processes
        scheduled only after this step).
        """
        env = self.env
        incs = self.incidents
        i = self._next_call
        due = []
        if self._call_waiting:  # woken for incident i
            self._call_waiting = False
            due.append(i)
            i += 1
        now = env.now
        n = self._n_calls
        while i < n and incs[i].time_s <= self._until:
            t = incs[i].time_s
            if t > now:
                _Wake(env, t - now, self._on_calls)
                self._call_waiting = True
                break
            due.append(i)
            i += 1
        else:
            i = n  # no more calls
        self._next_call = i
        by, assign = self._by_incident, self._assign
        for k in due:
            for req in by[k]:
                if not assign(req):
                    self._queue_call(req)

    def _call(self, req: Request) -> None:
        if not self._assign(req):
            self._queue_call(req)

    def _queue_call(self, req: Request) -> None:
        """No free unit can reach the call: it waits (logged as queued, or unreachable when no unit
        of its type could reach it even if free)."""
        inc = self.incidents[req.incident]
        if self._staged(inc):
            times, _ = self._reach(inc, self.station_dist)
            reachable = bool(np.isfinite(times[self._has[req.type]]).any())
        else:
            has, reachable = self._has[req.type], False
            order, times, _ = self._station_order(req.incident)
            for k, tk in zip(order, times, strict=True):
                if tk == math.inf:
                    break
                if has[k]:
                    reachable = True
                    break
        req.queued = True
        self.queues[req.type].append(req)
        if not reachable:
            req.unreachable_at_call = True
            self._log("incident_unreachable", "warning", f"no {req.type} can reach incident {inc.id}",
                      incident=inc.id, unit_type=req.type)
        else:
            self._log("incident_queued", "advisory", f"incident {inc.id} waits for a {req.type}",
                      incident=inc.id, unit_type=req.type, queue=len(self.queues[req.type]))

    @property
    def station_dist(self) -> np.ndarray:
        """(n_stations, n_nodes) travel time from each station under the current state."""
        if self._dist_key != self.router.state_key:
            self._dist = self.router.trees(self._station_nodes)[0]
            self._dist_key = self.router.state_key
        return self._dist

    def _station_order(self, i: int) -> tuple[list[int], list[float], list[float]]:
        """Stations by travel time to incident ``i``'s node under the current state (ties: table
        order), those times, and the times in table order; computed for blocks of
        :data:`_ORDER_BLOCK` incidents at once (plain lists: a choice costs no numpy call)."""
        key = self.router.state_key
        if self._order_key != key:
            self._order_key, self._order_blocks = key, {}
        b = i // _ORDER_BLOCK
        blk = self._order_blocks.get(b)
        if blk is None:
            if len(self._order_blocks) >= _ORDER_BLOCKS_KEPT:
                del self._order_blocks[next(iter(self._order_blocks))]
            blk = self._order_blocks[b] = self._order_block(self.station_dist, b)
        j = i - b * _ORDER_BLOCK
        return blk[0][j], blk[1][j], blk[2][j]

    def _order_block(self, dist: np.ndarray, b: int) -> tuple[list, list, list]:
        """Block ``b`` of :meth:`_station_order` from the stations' travel times ``dist``."""
        d = dist[:, self._inc_nodes[b * _ORDER_BLOCK:(b + 1) * _ORDER_BLOCK]]
        o = np.argsort(d, axis=0, kind="stable")
        return o.T.tolist(), np.take_along_axis(d, o, axis=0).T.tolist(), d.T.tolist()

    def _staged(self, inc: Incident) -> bool:
        """True when the incident may be worked from other nodes than its own (see :meth:`_candidates`)."""
        return inc.stage_m > 0 and self._candidates(inc).size > 1

    def _candidates(self, inc: Incident) -> np.ndarray:
        """The incident's node, then (staging) the nodes within ``stage_m``, nearest first."""
        if inc.candidates is None:
            if inc.stage_m > 0:
                from gis.crs import WGS84, WORKING_CRS, transformer

                e, n = transformer(WGS84, WORKING_CRS).transform(inc.lon, inc.lat)
                near = np.array(self.router.within(e, n, inc.stage_m), dtype=np.int64)
                d = np.hypot(*(self.router.node_xy[near] - (e, n)).T) if near.size else np.empty(0)
                near = near[np.argsort(d, kind="stable")]
                inc.candidates = np.concatenate([[inc.node], near[near != inc.node]]).astype(np.int64)
            else:
                inc.candidates = np.array([inc.node], dtype=np.int64)
        return inc.candidates

    def _reach(self, inc: Incident, dist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per row of ``dist`` (n_rows, n_nodes): time to the first reachable candidate, and that node."""
        cand = self._candidates(inc)
        if cand.size == 1:
            return dist[:, cand[0]], None  # None: the incident's own node for every row
        d = dist[:, cand]
        fin = np.isfinite(d)
        first = fin.argmax(axis=1)
        times = np.where(fin.any(axis=1), d[np.arange(d.shape[0]), first], np.inf)
        return times, cand[first]

    def _assign(self, req: Request) -> bool:
        """Send the nearest available unit to ``req`` (False: none can reach it now).

        What a mission's process did first (``since``, phases, ``unit_dispatched``)
        is done here, at the same simulated time.
        """
        inc = self.incidents[req.incident]
        t = req.type
        free = self._free[t]
        s, best_t, targets = -1, math.inf, None
        if not (inc.stage_m > 0 and self._staged(inc)):  # the nearest station with a free unit
            stations = self._free_st[t]
            if stations:
                order, times, by_station = self._station_order(req.incident)
                if len(stations) <= 2:  # few stations with a free unit (a busy hour): look at them only
                    for k in stations:
                        tk = by_station[k]
                        if tk < best_t or (tk == best_t and k < s):  # ties: the first in the table
                            s, best_t = k, tk
                else:  # the stations nearest first
                    for k, tk in zip(order, times, strict=True):
                        if tk == math.inf:
                            break
                        if free[k]:
                            s, best_t = k, tk
                            break
        else:
            times, targets = self._reach(inc, self.station_dist)
            masked = np.where(np.array([len(f) for f in free]) > 0, times, np.inf)
            s = int(masked.argmin())  # ties: the first station in the table
            best_t = float(masked[s])
        away = None
        if self._away[t]:
            for ui in sorted(self._away[t]):  # free units cut off from their station, where they stand
                tu, tgt = self._reach(inc, self.router.tree(self.units[ui].node)[0][None, :])
                if tu[0] < best_t:
                    best_t, away = float(tu[0]), (ui, inc.node if tgt is None else int(tgt[0]))
        if best_t == math.inf:
            return False
        if away is not None:
            u, target = away
            self._away[t].discard(u)
        else:
            u, target = free[s].pop(), inc.node if targets is None else int(targets[s])
            if not free[s]:
                self._free_st[t].discard(s)
        unit = self.units[u]
        unit.free = False
        unit.missions += 1
        now = self.env.now
        req.unit = u
        req.dispatch_s = now
        req.planned_s = planned = best_t + (self.turnout[t] if away is None else 0.0)
        if target == inc.node:
            req.target, req.staged_m = target, 0.0
        else:
            self._set_target(req, inc, target)
        unit.since = now
        self.records.append((now, "unit_dispatched", "info", f"{unit.id} to incident {inc.id}",
                             {"unit": unit.id, "incident": inc.id, "eta_s": planned}))
        turnout = self.turnout[t] if unit.node == unit.home else 0.0  # crews away are in their vehicle
        unit.phase_t += (now, now + turnout)
        unit.phase_c += (1, 2)
        if (away is None and target == inc.node and self.fast
                and (self.frame + 1 >= len(self._frame_times)
                     or self._road_stays(unit, target, now + turnout + best_t + req.on_scene_s))):
            self._fast_mission(unit, req, turnout)
        else:
            unit.process = self.env.process(self._mission(unit, req, turnout))
        return True

    def _road_stays(self, unit: Unit, target: int, leave_s: float) -> bool:
        """True when the next flood frame comes after the unit, leaving ``target`` at ``leave_s``, is
        back at its station (1 s margin over the return time read from a cached reverse tree)."""
        tree = self.router.peek_tree(unit.home, reverse=True)  # not cached: take the general path
        return tree is not None and self._frame_times[self.frame + 1] > leave_s + float(tree[0][target]) + 1.0

    def _fast_mission(self, unit: Unit, req: Request, turnout: float) -> None:
        """A mission no road change can touch: the drive there (after the turnout) is one event, the
        time on scene and the drive back another (:meth:`_arrive`, :meth:`_back_event`).

        The same times, records and tree look-ups, in the same order, as :meth:`_mission` (whose
        first step ran at the dispatch instant, at simpy's urgent priority): the path's edges are
        never read.
        """
        unit.process = None
        self.fast_missions += 1
        env = self.env
        home, target = unit.home, req.target
        if target == home:  # the incident is at the station's node
            _Wake(env, turnout, self._arrive_cb, NORMAL if turnout > 0 else URGENT, (unit, req, None, 0.0))
        else:
            leg = self._leg(home, target)
            now = env.now
            t0 = now + turnout
            _Wake(env, t0 - now + leg.cost, self._arrive_cb, NORMAL, (unit, req, leg, t0))

    def _arrive(self, w: _Wake) -> None:
        """Fast path: the unit is on scene; wait there, then drive home (one event), or stand by."""
        unit, req, leg, t0 = w.args
        now = self.env.now
        if leg is not None:
            leg.t0 = t0
            unit.track.append(leg)
        req.arrive_s = now
        inc_id = self.incidents[req.incident].id
        self.records.append((now, "unit_arrived", "info", f"{unit.id} at incident {inc_id}",
                             {"unit": unit.id, "incident": inc_id, "response_s": now - req.dispatch_s}))
        delay = req.on_scene_s
        req.clear_s = now + delay
        unit.phase_t += (now, now + delay)
        unit.phase_c += (3, 4)
        target, home = req.target, unit.home
        if target != home:
            leg = self._leg(target, home)
            if leg.reachable:
                t0 = now + delay
                _Wake(self.env, t0 - now + leg.cost, self._back_cb, NORMAL, (unit, req, leg, t0, home))
                return
            home = target  # cut off from its station: it will stand by here
        if delay > 0:
            _Wake(self.env, delay, self._back_cb, NORMAL, (unit, req, None, 0.0, home))
        else:
            self._free_unit(unit, home, req, unit.since)

    def _back_event(self, w: _Wake) -> None:
        unit, req, leg, t0, node = w.args
        if leg is not None:
            leg.t0 = t0
            unit.track.append(leg)
        self._free_unit(unit, node, req, unit.since)

    def _set_target(self, req: Request, inc: Incident, node: int) -> None:
        req.target = node
        req.staged_m = 0.0 if node == inc.node else float(
            np.hypot(*(self.router.node_xy[node] - self.router.node_xy[inc.node])))

    @property
    def queue(self) -> list[Request]:
        """Requests waiting for a unit (all types, by call time)."""
        return sorted((r for q in self.queues.values() for r in q), key=lambda r: r.call_s)

    def _any_free(self, t: str) -> bool:
        return bool(self._away[t]) or bool(self._free_st[t])

    def _dispatch_queue(self, types: Iterable[str] = UNIT_TYPES) -> None:
        """Serve waiting requests of ``types`` first-in first-out while units of the type are free."""
        for t in types:
            self._serve(t)

    def _serve(self, t: str) -> None:
        """Serve waiting requests of type ``t`` first-in first-out while units of the type are free."""
        q = self.queues[t]
        if not q or not (self._away[t] or self._free_st[t]):
            return
        skipped: list[Request] = []  # no free unit can reach them: they keep their place
        while q:
            req = q.popleft()
            if not self._assign(req):
                skipped.append(req)
            elif not (self._away[t] or self._free_st[t]):
                break
        if skipped:
            q.extendleft(reversed(skipped))

    def _mission(self, unit: Unit, req: Request, turnout: float, resume: simpy.Event | None = None):
        """The general path: a simpy process, interrupted when a road change touches its path.

        ``resume``: the event a restored unit waits for on its way (:meth:`restore`).
        """
        env = self.env
        inc = self.incidents[req.incident]
        start = unit.since
        unit.req, unit.stage = req, 1
        node = yield from self._drive(unit, unit.node, req, inc, delay=turnout, resume=resume)
        if node != req.target:
            yield from self._abort(unit, req, inc, node, start)
            return
        req.arrive_s = env.now
        unit.phase(env.now, 3)
        self._log("unit_arrived", "info", f"{unit.id} at incident {inc.id}", unit=unit.id,
                  incident=inc.id, response_s=env.now - req.dispatch_s)
        req.clear_s = env.now + req.on_scene_s
        yield from self._return(unit, req.target, start, req, delay=req.on_scene_s)

    def _abort(self, unit: Unit, req: Request, inc: Incident, node: int, start: float):
        """The incident got cut off on the way: the unit stands by where it is, the request is queued again."""
        self.stranded += 1
        req.aborts += 1
        self._log("unit_stranded", "warning", f"{unit.id} cannot reach incident {inc.id} any more; the "
                  "incident is queued again", unit=unit.id, incident=inc.id,
                  node=str(self.router.node_ids[node]))
        req.unit, req.dispatch_s, req.planned_s, req.queued = -1, math.nan, math.nan, True
        self.queues[req.type].appendleft(req)
        unit.busy_s += self.env.now - start
        unit.free, unit.node = True, node
        unit.phase(self.env.now, 5)
        self._away[unit.type].add(unit.index)
        self._dispatch_queue((unit.type,))
        yield from ()

    def _return(self, unit: Unit, orig: int, start: float, req: Request | None = None, delay: float = 0.0,
                resume: simpy.Event | None = None):
        """Drive home after ``delay`` s (on scene); a unit cut off from its station stands by where it
        is, available. ``resume``: the event a restored unit waits for on its way home."""
        unit.req, unit.stage = req, 2
        if resume is None:
            unit.phase(self.env.now + delay, 4)
        node = yield from self._drive(unit, orig, req, delay=delay, resume=resume)
        self._free_unit(unit, node, req, start)

    def _free_unit(self, unit: Unit, node: int, req: Request | None, start: float) -> None:
        """The unit's mission ends at ``node``: back at its station, or standing by where it is."""
        now = self.env.now
        unit.busy_s += now - start
        unit.free = True
        unit.node = node
        if node == unit.home:
            if req is not None:
                req.back_s = now
            unit.phase(now, 0)
            if unit.station in self.lost_stations:  # back at a station out of service: not available
                return
            free = self._free[unit.type][unit.station]
            if not free:
                self._free_st[unit.type].add(unit.station)
            free.append(unit.index)
        else:
            unit.phase(now, 5)
            self._away[unit.type].add(unit.index)
            self._log("unit_standby", "warning", f"{unit.id} is cut off from its station; stands by at "
                      f"node {self.router.node_ids[node]}", unit=unit.id, node=str(self.router.node_ids[node]))
        self._serve(unit.type)

    def _rehome(self, unit: Unit):
        """A unit standing by away from its station heads home (roads changed)."""
        self._away[unit.type].discard(unit.index)
        unit.free = False
        unit.since = self.env.now
        yield from self._return(unit, unit.node, self.env.now)

    def _leg(self, orig: int, dest: int) -> Leg:
        # from a station: its forward tree; elsewhere: the destination's reverse tree (both cached
        # per state, so units bound for one incident or one station share a tree)
        return self.router.leg(orig, dest, reverse=not (orig in self._station_set or self.router.cached(orig)))

    def _drive(self, unit: Unit, orig: int, req: Request, inc: Incident | None = None, delay: float = 0.0,
               resume: simpy.Event | None = None):
        """Drive from ``orig`` to ``req.target`` (``inc`` given) or home, leaving after ``delay`` s
        (turnout, on scene), re-routing on road changes.

        The wait and the drive are one timeout (fewer simpy events); the
        path's edges are only read when a road change may interrupt it (and
        for the map afterwards); an interrupt before departure re-plans at
        departure. Returns the node reached (not the destination when cut off).
        Before each wait, ``unit.wait`` says what the unit waits for, so that a
        checkpoint can rebuild the process (``resume``: the restored wait's event,
        :meth:`_resume_drive`).
        """
        env = self.env
        dest = req.target if inc is not None else unit.home
        if resume is not None:
            node, stop = yield from self._resume_drive(unit, req, dest, resume)
            if stop:
                return node
        else:
            node = orig
            if node == dest and delay > 0:
                unit.wait = ("stop", node)
                yield env.timeout(delay)
        while node != dest:
            leg = self._leg(node, dest)
            if not leg.reachable and inc is not None and inc.stage_m > 0:
                times, targets = self._reach(inc, self.router.tree(node)[0][None, :])
                if np.isfinite(times[0]) and targets is not None:
                    self._set_target(req, inc, int(targets[0]))
                    dest = req.target
                    self._log("unit_restaged", "advisory", f"{unit.id} works incident {inc.id} from "
                              f"{req.staged_m:.0f} m away", unit=unit.id, incident=inc.id)
                    continue
            if not leg.reachable:
                if delay > 0:
                    unit.wait = ("stop", node)
                    yield env.timeout(delay)
                return node  # cut off: the caller decides (stand by here, hand the request back)
            t0 = env.now + delay
            delay = 0.0
            node = yield from self._drive_leg(unit, req, leg, t0, dest, env.timeout(t0 - env.now + leg.cost))
        return node

    def _drive_leg(self, unit: Unit, req: Request | None, leg, t0: float, dest: int, wait: simpy.Event):
        """Drive ``leg`` (set off at ``t0``, arriving when ``wait`` fires); on an interrupt (road
        change ahead) finish the edge it is on. Returns the node reached."""
        env = self.env
        unit.leg = (t0, leg)
        unit.wait = ("leg",)
        try:
            yield wait
        except simpy.Interrupt:
            k = _edge_at(leg.cum, env.now - t0)
            unit.leg = None
            leg.t0, leg.upto = t0, k + 1
            unit.track.append(leg)
            end = t0 + float(leg.cum[k]) if k >= 0 else t0
            return (yield from self._finish_edge(unit, req, leg, k, end, dest))
        unit.leg = None
        leg.t0 = t0
        unit.track.append(leg)
        return dest

    def _finish_edge(self, unit: Unit, req: Request | None, leg, k: int, end: float, dest: int,
                     wait: simpy.Event | None = None):
        """Drive to the end of edge ``k`` of ``leg`` (reached at ``end``; ``wait``: a restored wait for
        it), then count the re-route. Returns the node at the edge's end."""
        env = self.env
        unit.wait = ("edge", k, end)
        if wait is not None:
            yield wait
        while env.now < end:  # finish the edge it is on, or the wait (no interrupt: unit.leg is None)
            yield env.timeout(end - env.now)
        node = int(leg.nodes[k + 1])
        if node != dest:
            if req is not None:  # a unit driving home has no request to count it on
                req.reroutes += 1
            self._log("unit_rerouted", "advisory", f"{unit.id} re-routes at node "
                      f"{self.router.node_ids[node]}", unit=unit.id, node=str(self.router.node_ids[node]))
        return node

    def _resume_drive(self, unit: Unit, req: Request | None, dest: int, event: simpy.Event):
        """A restored drive's first wait (``unit.wait``, fired by ``event``) and what follows it up
        to the next node: (node, True when the drive ends there)."""
        kind = unit.wait[0]
        if kind == "stop":
            node = unit.wait[1]
            yield event
            return node, True
        if kind == "leg":
            t0, leg = unit.leg
            return (yield from self._drive_leg(unit, req, leg, t0, dest, event)), False
        _, k, end = unit.wait
        return (yield from self._finish_edge(unit, req, unit.track[-1], k, end, dest, event)), False

    def _flood_frames(self, first: int = 0, resume: simpy.Event | None = None):
        """Apply the hazard's frames from ``first`` on at their times (``resume``: a restored wait
        for frame ``first``)."""
        from agents.road_hazard import CLOSED

        env = self.env
        hz = self.hazard
        for k in range(first, len(hz.times_s)):
            t = hz.times_s[k]
            if resume is not None:
                yield resume
                resume = None
            elif t > env.now:
                yield env.timeout(t - env.now)
            flood_closed = hz.state[k] == CLOSED
            old_cost = self.router._cost.copy()
            old_closed = self.router.closed.copy()
            self.router.set_state(self._base_closed | flood_closed,
                                  self._base_factor * hz.time_factor[k])
            self.frame = k
            self._road_events(k, old_closed, self.router.closed)
            self._roads_changed(old_cost)

    def _roads_changed(self, old_cost: np.ndarray) -> None:
        """After a road change: units whose path ahead changed cost re-route, waiting requests are
        served, units standing by away head home when a way opened."""
        env = self.env
        self._note_state()
        changed = self.router._cost != old_cost
        for unit in self.units:
            if unit.leg is None:
                continue
            t0, leg = unit.leg
            i = _edge_at(leg.cum, env.now - t0)
            if changed[leg.edges[i + 1:]].any():
                unit.leg = None
                unit.process.interrupt("road state changed")
        self._dispatch_queue()
        for t in UNIT_TYPES:
            for ui in sorted(self._away[t]):
                u = self.units[ui]
                if np.isfinite(self.router.tree(u.home, reverse=True)[0][u.node]):
                    u.process = env.process(self._rehome(u))

    # ------------------------------------------------------------ fed while the clock runs
    def add_incident(self, incident: Incident) -> int:
        """Place a call now: its time becomes the clock's, its units are asked for at once.

        For a caller that drives the clock (:meth:`start`): incidents known
        only as the run goes (injects, alerts, flood rescues). Its on-scene
        times are drawn from the model's generator as the initial calls' are.
        Returns the incident's index in :attr:`incidents`.

        Raises
        ------
        ValidationError
            When it lies farther than ``max_snap_m`` from every road node.
        """
        inc = incident
        inc.time_s = float(self.env.now)
        self._snap([inc], "incident", self._max_snap_m)
        i = len(self.incidents)
        self.incidents.append(inc)
        self._inc_nodes = np.append(self._inc_nodes, inc.node)
        self._order_blocks.pop(i // _ORDER_BLOCK, None)  # its block's station order lacks it
        types = [t for t, n in inc.needs.items() for _ in range(n)]
        d = self._draw_on_scene([inc.on_scene_s] * len(types), *self._on_scene)
        reqs = [Request(i, t, inc.time_s, float(x)) for t, x in zip(types, d, strict=True)]
        self.requests.extend(reqs)
        self._by_incident.append(reqs)
        for req in reqs:
            self._call(req)
        return i

    def take_station_out(self, station_id: str, reason: str = "") -> list[str]:
        """Put a station out of service now: its free units leave the assignments.

        Units out on a mission finish it and, back at the station, stay out
        of service; units standing by away from it stay available where they
        are. Returns the ids of the units taken out now (none when already out).

        Raises
        ------
        ValidationError
            When no station has the id (the known ids are listed).
        """
        ids = [st.id for st in self.stations]
        if station_id not in ids:
            raise ValidationError(f"station {station_id!r} is not one of the model's stations {ids}")
        s = ids.index(station_id)
        if s in self.lost_stations:
            return []
        self.lost_stations[s] = str(reason)
        out = []
        for t in UNIT_TYPES:
            out += [self.units[u].id for u in self._free[t][s]]
            self._free[t][s].clear()
            self._free_st[t].discard(s)
            self._has[t][s] = False
        self._log("station_out_of_service", "warning", f"station {station_id} out of service"
                  + (f": {reason}" if reason else ""), station=station_id, reason=str(reason), units=out)
        return out

    def sync_roads(self) -> bool:
        """Take the road graph's closures and slow-downs as they are now (every reason).

        What a flood frame does (:meth:`_flood_frames`), from the graph itself
        (:meth:`agents.routing.Router.sync`): units whose path ahead changed
        cost re-route, waiting requests are served, units standing by away
        head home. The change is counted in :attr:`road_changes`; no road
        event is logged (whoever closed the roads did). Returns True when the
        state changed.
        """
        router = self.router
        old_cost, old_closed, key = router._cost, router.closed, router.state_key
        if router.sync() == key:
            return False
        new = router.closed
        self.road_changes.append({"time_s": float(self.env.now), "frame": len(self.road_changes),
                                  "closed": int((new & ~old_closed).sum()),
                                  "reopened": int((old_closed & ~new).sum()), "closed_total": int(new.sum())})
        self._roads_changed(old_cost)
        return True

    def _road_events(self, k: int, old: np.ndarray, new: np.ndarray) -> None:
        ids = self.router.edge_ids
        closed = np.flatnonzero(new & ~old)
        opened = np.flatnonzero(old & ~new)
        self.road_changes.append({"time_s": float(self.env.now), "frame": k, "closed": int(len(closed)),
                                  "reopened": int(len(opened)), "closed_total": int(new.sum())})
        if len(closed):
            self._log("road_closed", "warning", f"{len(closed)} road edges closed by the flood",
                      n=int(len(closed)), edges=[str(ids[i]) for i in closed])
        if len(opened):
            self._log("road_reopened", "info", f"{len(opened)} road edges reopened as water recedes",
                      n=int(len(opened)), edges=[str(ids[i]) for i in opened])

    # ------------------------------------------------------------ checkpoint and restore
    def _note_state(self) -> None:
        """Remember the router's road state (closures packed, slow-downs sparse) while trees of it are
        cached: a checkpoint rebuilds the router's cache from them (:meth:`checkpoint`)."""
        r = self.router
        if r.state_key not in self._states:
            slow = np.flatnonzero(r.factor != 1.0)
            self._states[r.state_key] = (np.packbits(r.closed), slow, r.factor[slow].copy())
        live = {k[2] for k in r._trees} | {r.state_key, self._dist_key, self._order_key}
        for key in [k for k in self._states if k not in live]:
            del self._states[key]

    def checkpoint(self) -> dict[str, Any]:
        """The model's whole state at the clock's instant, for :meth:`restore`.

        Plain values (JSON, no NaN) and numpy arrays by key, as a coupling's
        ``save`` returns them: the incidents (those added while running too)
        and every request's record; the units (phase history, node, busy
        time, the legs driven) and for each unit under way what its process
        waits for (the leg it drives and when it set off, the edge it
        finishes, the time on scene or the turnout); the free lists, the
        queues, the records, the random generator; the router's road state
        and the keys of its cached trees (which trees are cached decides
        which of two equal paths a unit takes); and every event the model has
        pending (the next call, the next flood frame, the units' waits) with
        its instant, in simpy's order. simpy processes cannot be written out:
        :meth:`restore` builds them again from what they wait for.

        Raises
        ------
        ValidationError
            Before :meth:`start`, or when an urgent event of the model is
            still due at this instant (a process just started or interrupted):
            advance the clock first.
        """
        if not self._started:
            raise ValidationError("checkpoint: the dispatch model is not started; start or run it first")
        env = self.env
        now = float(env.now)
        queued = {id(ev): (float(t), int(prio), int(eid), ev) for t, prio, eid, ev in env._queue}
        ridx = {id(q): i for i, q in enumerate(self.requests)}
        legs = _LegTable()
        pending: list[tuple[int, list]] = []

        def when(ev, what: str) -> tuple[float, int, int]:
            hit = queued.get(id(ev))
            if hit is None or isinstance(ev, simpy.events.Initialize) or (hit[0] == now and hit[1] == URGENT):
                raise ValidationError(f"checkpoint at t={now!r} s: {what} has an event still due now; "
                                      "advance the clock before the checkpoint")
            return hit[:3]

        for t, prio, eid, ev in queued.values():
            if isinstance(ev, simpy.events.Interruption):
                raise ValidationError(f"checkpoint at t={now!r} s: a unit's interrupt is still due; "
                                      "advance the clock before the checkpoint")
            if not isinstance(ev, _Wake) or not ev.callbacks or getattr(ev.callbacks[0], "__self__", None) is not self:
                continue
            cb = ev.callbacks[0].__func__
            if cb is DispatchModel._on_calls:
                pending.append((eid, ["calls", t, prio]))
            elif cb in (DispatchModel._arrive, DispatchModel._back_event):
                unit, req, leg, t0 = ev.args[:4]
                entry = ["arrive" if cb is DispatchModel._arrive else "back", t, prio, unit.index,
                         ridx[id(req)], legs.add(leg, unit.index, 2) if leg is not None else -1, float(t0)]
                pending.append((eid, entry + ([int(ev.args[4])] if len(ev.args) > 4 else [])))
        for u in self.units:
            if u.process is None or not u.process.is_alive:
                continue
            t, prio, eid = when(u.process.target, f"unit {u.id}")
            wait = list(u.wait)
            if wait[0] == "leg":
                t0, leg = u.leg
                wait = ["leg", float(t0), legs.add(leg, u.index, 1)]
            entry = ["unit", t, prio, u.index, u.stage, ridx[id(u.req)] if u.req is not None else -1, wait]
            pending.append((eid, entry))
        if self._flood_proc is not None and self._flood_proc.is_alive:
            t, prio, eid = when(self._flood_proc.target, "the flood frames")
            pending.append((eid, ["frames", t, prio, self.frame + 1]))
        for u in self.units:
            for leg in u.track:
                legs.add(leg, u.index, 0)
        out: dict[str, Any] = {
            "now_s": now, "until_s": self._until, "next_call": self._next_call, "n_calls": self._n_calls,
            "call_waiting": self._call_waiting, "frame": self.frame, "stranded": self.stranded,
            "fast_missions": self.fast_missions, "road_changes": list(self.road_changes),
            "n_frames": len(self._frame_times), "rng": self.rng.bit_generator.state,
            "station_ids": [s.id for s in self.stations], "unit_ids": [u.id for u in self.units],
            "pending": [e for _, e in sorted(pending, key=lambda p: p[0])],
            "lost_stations": [[int(s), why] for s, why in self.lost_stations.items()],
            "free": {t: [list(f) for f in self._free[t]] for t in UNIT_TYPES},
            "away": {t: sorted(self._away[t]) for t in UNIT_TYPES},
            "has": {t: self._has[t].tolist() for t in UNIT_TYPES},
            "queues": {t: [ridx[id(q)] for q in self.queues[t]] for t in UNIT_TYPES},
            "records": [[kind, sev, msg, data] for _, kind, sev, msg, data in self.records],
            "record_t": np.array([rec[0] for rec in self.records], float),
        }
        out.update(self._incidents_state())
        out.update(self._requests_state())
        out.update(self._units_state())
        out.update(legs.arrays())
        out.update(self._router_state())
        return out

    def _incidents_state(self) -> dict[str, Any]:
        incs = self.incidents
        return {"inc_id": [i.id for i in incs], "inc_kind": [i.kind for i in incs],
                "inc_needs": [dict(i.needs) for i in incs],
                **{f"inc_{a}": np.array([getattr(i, a) for i in incs], np.int64 if a == "node" else float)
                   for a in ("time_s", "lon", "lat", "on_scene_s", "stage_m", "snap_m", "node")}}

    def _requests_state(self) -> dict[str, Any]:
        rq = self.requests
        out = {f"req_{a}": np.array([getattr(q, a) for q in rq], dt) for a, dt in _REQUEST_FIELDS}
        out["req_type"] = np.array([UNIT_TYPES.index(q.type) for q in rq], np.int64)
        return out

    def _units_state(self) -> dict[str, Any]:
        us = self.units
        out = {f"unit_{a}": np.array([getattr(u, a) for u in us], dt) for a, dt in _UNIT_FIELDS}
        out["unit_phase_n"] = np.array([len(u.phase_t) for u in us], np.int64)
        out["unit_phase_t"] = np.array([t for u in us for t in u.phase_t], float)
        out["unit_phase_c"] = np.array([c for u in us for c in u.phase_c], np.int64)
        return out

    def _router_state(self) -> dict[str, Any]:
        """The road state, the base state of the flood frames, and the router's cached trees' keys
        (least recently used first) with the road states they belong to."""
        r = self.router
        self._note_state()
        keys = list(self._states)
        missing = ({k[2] for k in r._trees} | {self._dist_key, self._order_key}) - set(keys) - {None}
        if missing:
            raise ValidationError("checkpoint: the router caches trees of a road state the model never saw "
                                  "(its state was set from outside the model); sync the roads through "
                                  "the model (sync_roads)")
        at = {k: i for i, k in enumerate(keys)}
        st = [self._states[k] for k in keys]
        return {"closed": r.closed.copy(), "factor": r.factor.copy(), "state_key": r.state_key,
                "base_closed": self._base_closed.copy(), "base_factor": self._base_factor.copy(),
                "state_keys": keys, "tree_keys": [[int(s), bool(rev), at[k]] for s, rev, k in r._trees],
                "state_closed": np.stack([s[0] for s in st]),
                "state_slow_n": np.array([s[1].size for s in st], np.int64),
                "state_slow_idx": np.concatenate([s[1] for s in st]).astype(np.int64),
                "state_slow_val": np.concatenate([s[2] for s in st]).astype(float),
                "dijkstra_runs": int(r.dijkstra_runs), "dist_key": self._dist_key, "order_key": self._order_key,
                "order_blocks": [int(b) for b in self._order_blocks]}

    def restore(self, saved: Mapping[str, Any]) -> DispatchModel:
        """Put a :meth:`checkpoint` back: the run goes on as the checkpointed one did.

        The model must be built as the checkpointed one was (a router on the
        same road graph, the same stations, parameters and hazard; its
        incidents are replaced by the checkpoint's), on a clock at the
        checkpoint's instant, and not started. The pending events are
        scheduled again at their instants in their saved order; each unit
        under way gets a new process that waits for the rest of what it was
        waiting for (the remaining time of its leg, edge, turnout or time on
        scene) and then goes on as the saved one would have. Returns the model.

        Raises
        ------
        ValidationError
            When the model was started, the clock is at another instant, or
            the stations, units or road graph differ from the checkpoint's.
        """
        if self._started:
            raise ValidationError("restore: the dispatch model is already started; restore into a model "
                                  "built afresh (not started)")
        now = float(saved["now_s"])
        if float(self.env.now) != now:
            raise ValidationError(f"restore: the clock is at t={self.env.now!r} s, the checkpoint at t={now!r} s; "
                                  "build the model on a clock at the checkpoint's instant")
        for what, mine, theirs in (("station_ids", [s.id for s in self.stations], saved["station_ids"]),
                                   ("unit_ids", [u.id for u in self.units], saved["unit_ids"]),
                                   ("road edges", self.router.n_edges, len(saved["closed"])),
                                   ("flood frames", len(self._frame_times), saved["n_frames"])):
            if list(mine) != list(theirs) if isinstance(mine, list) else mine != theirs:
                raise ValidationError(f"restore: {what} of the model ({mine!r}) differ from the "
                                      f"checkpoint's ({theirs!r}); build the model as the saved one was")
        self._started = True
        self._until = float(saved["until_s"])
        self._next_call, self._n_calls = int(saved["next_call"]), int(saved["n_calls"])
        self._call_waiting = bool(saved["call_waiting"])
        self.frame, self.stranded = int(saved["frame"]), int(saved["stranded"])
        self.fast_missions = int(saved["fast_missions"])
        self.road_changes = [dict(c) for c in saved["road_changes"]]
        self.rng.bit_generator.state = saved["rng"]
        self._restore_incidents(saved)
        self._restore_requests(saved)
        legs = self._restore_units(saved)
        self.lost_stations = {int(s): str(why) for s, why in saved["lost_stations"]}
        S = len(self.stations)
        for t in UNIT_TYPES:
            self._free[t] = [[int(u) for u in f] for f in saved["free"][t]]
            self._free_st[t] = {s for s in range(S) if self._free[t][s]}
            self._away[t] = {int(u) for u in saved["away"][t]}
            self._has[t] = np.array(saved["has"][t], dtype=bool)
            self.queues[t] = deque(self.requests[i] for i in saved["queues"][t])
        self.records = [(t, kind, sev, msg, data) for t, (kind, sev, msg, data)
                        in zip(np.asarray(saved["record_t"], float).tolist(), saved["records"], strict=True)]
        self._restore_router(saved)
        self._restore_pending(saved["pending"], legs)
        return self

    def _restore_incidents(self, saved: Mapping[str, Any]) -> None:
        cols = {a: np.asarray(saved[f"inc_{a}"]).tolist()
                for a in ("time_s", "lon", "lat", "on_scene_s", "stage_m", "snap_m", "node")}
        self.incidents = [Incident(str(i), cols["time_s"][k], cols["lon"][k], cols["lat"][k], str(kind),
                                   {str(t): int(n) for t, n in needs.items()}, cols["on_scene_s"][k],
                                   node=int(cols["node"][k]), snap_m=cols["snap_m"][k],
                                   stage_m=cols["stage_m"][k])
                          for k, (i, kind, needs) in enumerate(zip(saved["inc_id"], saved["inc_kind"],
                                                                   saved["inc_needs"], strict=True))]
        self._inc_nodes = np.array(cols["node"], dtype=np.int64)
        self._order_key, self._order_blocks = None, {}

    def _restore_requests(self, saved: Mapping[str, Any]) -> None:
        cols = {a: np.asarray(saved[f"req_{a}"]).tolist() for a, _ in _REQUEST_FIELDS}
        types = [UNIT_TYPES[k] for k in np.asarray(saved["req_type"]).tolist()]
        self.requests = [Request(type=types[k], **{a: cols[a][k] for a, _ in _REQUEST_FIELDS})
                         for k in range(len(types))]
        self._by_incident = [[] for _ in self.incidents]
        for q in self.requests:
            self._by_incident[q.incident].append(q)

    def _restore_units(self, saved: Mapping[str, Any]) -> dict[int, Any]:
        """Units' records and tracks; returns the legs under way by their index in the leg table."""
        cols = {a: np.asarray(saved[f"unit_{a}"]).tolist() for a, _ in _UNIT_FIELDS}
        n = np.asarray(saved["unit_phase_n"]).tolist()
        pt, pc = np.asarray(saved["unit_phase_t"]).tolist(), np.asarray(saved["unit_phase_c"]).tolist()
        k = 0
        for j, u in enumerate(self.units):
            for a, _ in _UNIT_FIELDS:
                setattr(u, a, cols[a][j])
            u.phase_t, u.phase_c = pt[k:k + n[j]], pc[k:k + n[j]]
            k += n[j]
            u.track, u.leg, u.process, u.req, u.stage, u.wait = [], None, None, None, 0, None
        under_way = {}
        for i, (owner, role, leg) in enumerate(_LegTable.read(saved)):
            if role == 0:
                self.units[owner].track.append(leg)
            else:
                under_way[i] = leg
        return under_way

    def _restore_router(self, saved: Mapping[str, Any]) -> None:
        """The saved road state, and the router's cache rebuilt (the same trees, in the same LRU order)."""
        from collections import OrderedDict

        r = self.router
        keys = list(saved["state_keys"])
        tree_keys = [(int(s), bool(rev), int(i)) for s, rev, i in saved["tree_keys"]]
        packed = np.asarray(saved["state_closed"], np.uint8)
        off = np.concatenate([[0], np.cumsum(saved["state_slow_n"])]).astype(np.int64)
        idx, val = np.asarray(saved["state_slow_idx"], np.int64), np.asarray(saved["state_slow_val"], float)
        size, r.cache_size = r.cache_size, len(tree_keys) + len(self.stations) + r.cache_size
        self._states = {}
        self._dist = self._dist_key = None
        try:
            for i, key in enumerate(keys):
                factor = np.ones(r.n_edges)
                factor[idx[off[i]:off[i + 1]]] = val[off[i]:off[i + 1]]
                r.set_state(np.unpackbits(packed[i], count=r.n_edges).astype(bool), factor)
                if r.state_key != key:
                    raise ValidationError("restore: a saved road state does not match its key; the router is "
                                          "on another road graph than the checkpointed model's")
                self._states[key] = (packed[i].copy(), idx[off[i]:off[i + 1]].copy(), val[off[i]:off[i + 1]].copy())
                for rev in (False, True):
                    src = [s for s, rv, j in tree_keys if j == i and rv is rev]
                    if src:
                        r.trees(src, reverse=rev)
                # the stations' times and orders as last computed (under this state, maybe an earlier one:
                # kept as they are while the state differs, used again if it comes back)
                if key == saved["dist_key"]:
                    self._dist, self._dist_key = r.trees(self._station_nodes)[0], key
                if key == saved["order_key"]:
                    d = r.trees(self._station_nodes)[0]
                    self._order_key = key
                    self._order_blocks = {int(b): self._order_block(d, int(b)) for b in saved["order_blocks"]}
            r.set_state(np.asarray(saved["closed"], bool), np.asarray(saved["factor"], float))
            if r.state_key != saved["state_key"]:
                raise ValidationError("restore: the saved road state does not match its key; the router is "
                                      "on another road graph than the checkpointed model's")
            cache = r._trees
            r._trees = OrderedDict(((s, rev, keys[i]), cache[(s, rev, keys[i])]) for s, rev, i in tree_keys)
        finally:
            r.cache_size = size
        r.dijkstra_runs = int(saved["dijkstra_runs"])
        self._base_closed = np.asarray(saved["base_closed"], bool).copy()
        self._base_factor = np.asarray(saved["base_factor"], float).copy()

    def _restore_pending(self, pending: Sequence[Sequence], legs: Mapping[int, Any]) -> None:
        """The saved events again, at their instants and in their order; units' processes rebuilt."""
        env = self.env
        for entry in pending:
            kind, t, prio = entry[0], float(entry[1]), int(entry[2])
            if kind == "calls":
                _Wake(env, 0.0, self._on_calls, prio, at=t)
            elif kind == "frames":
                ev = _Wake(env, 0.0, None, prio, at=t)
                self._flood_proc = env.process(self._flood_frames(int(entry[3]), ev))
            elif kind in ("arrive", "back"):
                unit, req = self.units[int(entry[3])], self.requests[int(entry[4])]
                leg = legs[int(entry[5])] if int(entry[5]) >= 0 else None
                args = (unit, req, leg, float(entry[6])) + ((int(entry[7]),) if kind == "back" else ())
                _Wake(env, 0.0, self._arrive_cb if kind == "arrive" else self._back_cb, prio, args, at=t)
            else:
                unit = self.units[int(entry[3])]
                stage, ri, wait = int(entry[4]), int(entry[5]), entry[6]
                req = self.requests[ri] if ri >= 0 else None
                if wait[0] == "leg":
                    unit.leg, unit.wait = (float(wait[1]), legs[int(wait[2])]), ("leg",)
                elif wait[0] == "edge":
                    unit.wait = ("edge", int(wait[1]), float(wait[2]))
                else:
                    unit.wait = ("stop", int(wait[1]))
                ev = _Wake(env, 0.0, None, prio, at=t)
                unit.process = env.process(self._mission(unit, req, 0.0, resume=ev) if stage == 1
                                           else self._return(unit, unit.node, unit.since, req, resume=ev))

    # ------------------------------------------------------------ records
    def _log(self, kind: str, severity: str, message: str, **data) -> None:
        self.records.append((self.env.now, kind, severity, message, data))

    def event_log(self, log: EventLog | None = None) -> EventLog:
        """The run's events as a :class:`twin.events.EventLog` (appended to ``log`` if given)."""
        from twin.events import EventLog

        log = log if log is not None else EventLog()
        for t, kind, sev, msg, data in self.records:
            log.append({"time_s": float(t), "kind": kind, "source": "dispatch", "severity": sev,
                        "message": msg, "data": data})
        return log

    def request_table(self):
        """One row per request (pandas DataFrame)."""
        import pandas as pd

        rows = []
        for r in self.requests:
            inc = self.incidents[r.incident]
            rows.append({"incident": inc.id, "kind": inc.kind, "unit_type": r.type,
                         "unit": self.units[r.unit].id if r.unit >= 0 else "",
                         "call_s": r.call_s, "dispatch_s": r.dispatch_s, "arrive_s": r.arrive_s,
                         "clear_s": r.clear_s, "back_s": r.back_s, "wait_s": r.dispatch_s - r.call_s,
                         "response_s": r.arrive_s - r.dispatch_s, "planned_s": r.planned_s,
                         "reroutes": r.reroutes, "aborted_trips": r.aborts, "staged_m": r.staged_m,
                         "unreachable_at_call": r.unreachable_at_call,
                         "queued": r.queued})
        return pd.DataFrame(rows)

    def incident_table(self):
        """One row per incident: first unit's response, all units on scene, within 5 min."""
        import pandas as pd

        req = self.request_table()
        inc = pd.DataFrame({"id": [i.id for i in self.incidents], "kind": [i.kind for i in self.incidents],
                            "lon": [i.lon for i in self.incidents], "lat": [i.lat for i in self.incidents],
                            "node": [str(self.router.node_ids[i.node]) for i in self.incidents],
                            "snap_m": [round(i.snap_m, 1) for i in self.incidents],
                            "call_s": [i.time_s for i in self.incidents],
                            "units_needed": [int(sum(i.needs.values())) for i in self.incidents]})
        inc["called"] = inc["call_s"] <= self._until
        if len(req):
            req = req.assign(_i=[r.incident for r in self.requests])
            g = req.groupby("_i")
            first = req[req["arrive_s"].notna()].sort_values("arrive_s", kind="stable").groupby("_i").first()
            agg = pd.DataFrame({
                "first_dispatch_s": g["dispatch_s"].min(), "first_arrival_s": g["arrive_s"].min(),
                "all_on_scene_s": g["arrive_s"].max().where(g["arrive_s"].count() == g.size()),
                "max_wait_s": g["wait_s"].max(), "reroutes": g["reroutes"].sum(),
                "aborted_trips": g["aborted_trips"].sum(), "unreachable_at_call": g["unreachable_at_call"].any(),
                "max_staged_m": g["staged_m"].max()})
            agg["first_unit"] = first["unit"]
            agg["response_s"] = first["response_s"]
            inc = inc.join(agg)
        else:
            for c in ("first_dispatch_s", "first_arrival_s", "all_on_scene_s", "max_wait_s", "response_s",
                      "max_staged_m"):
                inc[c] = np.nan
            inc["first_unit"], inc["reroutes"], inc["aborted_trips"], inc["unreachable_at_call"] = "", 0, 0, False
        inc["first_unit"] = inc["first_unit"].fillna("")
        inc["call_to_arrival_s"] = inc["first_arrival_s"] - inc["call_s"]
        inc["within_5min"] = inc["response_s"] <= RESPONSE_TARGET_S
        inc["reached"] = inc["first_arrival_s"].notna()
        for c in ("reroutes", "aborted_trips"):
            inc[c] = inc[c].fillna(0).astype(int)
        inc["unreachable_at_call"] = inc["unreachable_at_call"].fillna(False).astype(bool)
        return inc

    def unit_table(self, horizon_s: float | None = None):
        """One row per unit: missions, busy time in all and utilisation over [0, ``horizon_s``].

        Busy = turning out, driving, on scene or returning (not at the
        station, not standing by away from it). The default horizon is the
        call period (``until_s`` of :meth:`run`): missions that run on after
        it count only up to it, so a long drain does not dilute the figure.
        """
        import pandas as pd

        h = float(horizon_s if horizon_s is not None else self._until)
        now = self.clock.now_s
        rows = []
        for u in self.units:
            busy = u.busy_s + (0.0 if u.free else now - u.since)
            t = np.array(u.phase_t + [max(now, u.phase_t[-1])])
            on = np.isin(u.phase_c, (1, 2, 3, 4))
            window = np.clip(np.minimum(t[1:], h) - np.maximum(t[:-1], 0.0), 0.0, None)
            rows.append({"unit": u.id, "type": u.type, "station": self.stations[u.station].id,
                         "missions": u.missions, "busy_s": busy, "busy_in_horizon_s": float(window[on].sum()),
                         "utilisation": float(window[on].sum()) / h if h > 0 else math.nan})
        return pd.DataFrame(rows)

    def summary(self) -> dict[str, Any]:
        """KPIs of the run (JSON-compatible)."""
        inc = self.incident_table()
        req = self.request_table()
        units = self.unit_table()
        called = inc[inc["called"]] if len(inc) else inc
        resp = called["response_s"].dropna().to_numpy()
        c2a = called["call_to_arrival_s"].dropna().to_numpy()
        waits = req["wait_s"].dropna().to_numpy() if len(req) else np.empty(0)

        def pct(a: np.ndarray) -> dict[str, float | None]:
            if a.size == 0:
                return {k: None for k in ("mean", "p50", "p90", "p95", "max")}
            return {"mean": float(a.mean()), "p50": float(np.percentile(a, 50)),
                    "p90": float(np.percentile(a, 90)), "p95": float(np.percentile(a, 95)),
                    "max": float(a.max())}

        util = units.groupby("type")["utilisation"].mean().to_dict() if len(units) else {}
        n = int(len(called))
        return {
            "incidents": n,
            "requests": int(len(req)),
            "reached": int(called["reached"].sum()) if n else 0,
            "response_s": pct(resp),
            "call_to_arrival_s": pct(c2a),
            "within_5min_share": float(called["within_5min"].mean()) if n else None,
            "response_target_s": RESPONSE_TARGET_S,
            "queued_requests": int(req["queued"].sum()) if len(req) else 0,
            "queue_wait_s": pct(waits[waits > 0]) if (waits > 0).any() else pct(np.empty(0)),
            "mean_wait_s": float(waits.mean()) if waits.size else None,
            "utilisation_by_type": {k: float(v) for k, v in util.items()},
            "utilisation_mean": float(units["utilisation"].mean()) if len(units) else None,
            "units": int(len(units)),
            "stations": len(self.stations),
            "reroutes": int(req["reroutes"].sum()) if len(req) else 0,
            "unreachable_incidents": int(called["unreachable_at_call"].sum()) if n else 0,
            "never_reached": int(n - called["reached"].sum()) if n else 0,
            "stranded_events": int(self.stranded),
            "units_standing_by_away": int(sum(len(v) for v in self._away.values())),
            "road_changes": self.road_changes,
            "sim_end_s": float(self.clock.now_s),
        }

    # ------------------------------------------------------------ positions for the map
    def positions(self, times_s: Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Units' lon, lat and phase code at ``times_s``: arrays (n_times, n_units).

        On an edge, the position is interpolated along the edge's geometry at
        the share of its traversal time elapsed; between traversals a unit
        stands at the node it reached (its station node when at home).
        """
        import shapely

        times = np.asarray(times_s, dtype=float)
        T, U = len(times), len(self.units)
        lonlat = self.router.node_lonlat
        lon = np.empty((T, U))
        lat = np.empty((T, U))
        phase = np.zeros((T, U), dtype=np.int8)
        on_edge: list[tuple[int, int, int, float]] = []
        ev = self.router.edge_v
        for j, u in enumerate(self.units):
            pt, pc = u.phase_t, u.phase_c
            phase[:, j] = np.asarray(pc)[np.searchsorted(np.asarray(pt), times, side="right") - 1]
            node = np.full(T, u.home, dtype=np.int64)
            if u.track:
                legs = [(leg.t0 + leg.cum[:leg.upto], leg.edges[:leg.upto], leg.edge_costs[:leg.upto])
                        for leg in u.track]
                t_out = np.concatenate([a for a, _, _ in legs])
                edges = np.concatenate([e for _, e, _ in legs])
                t_in = t_out - np.concatenate([c for _, _, c in legs])
                i = np.searchsorted(t_in, times, side="right") - 1
                has = i >= 0
                ic = np.clip(i, 0, None)
                moving = has & (times < t_out[ic])
                node = np.where(has, ev[edges[ic]], node)
                for ti in np.flatnonzero(moving):
                    dt = t_out[ic[ti]] - t_in[ic[ti]]
                    frac = (times[ti] - t_in[ic[ti]]) / dt if dt > 0 else 1.0
                    on_edge.append((ti, j, int(edges[ic[ti]]), frac))
            lon[:, j] = lonlat[node, 0]
            lat[:, j] = lonlat[node, 1]
        if on_edge:
            geoms = self._edge_geoms()
            ti, j, e, f = (np.array(x) for x in zip(*on_edge, strict=True))
            pts = shapely.line_interpolate_point(geoms[e], f, normalized=True)
            lon[ti, j] = shapely.get_x(pts)
            lat[ti, j] = shapely.get_y(pts)
        return lon, lat, phase

    def _edge_geoms(self) -> np.ndarray:
        g = getattr(self, "_geoms", None)
        if g is None:
            g = self._geoms = np.array([self.router.roads.edge(e)["geometry"]
                                        for e in self.router.edge_ids], dtype=object)
        return g


# ---------------------------------------------------------------- incident sources
#: ARR 2019 hazard class from which floodwater is unsafe for people (H4: "unsafe for vehicles and
#: people"; D·V > 0.6 m²/s or D > 1.2 m or V > 2 m/s), see :func:`agents.people_hazard.hazard_class`.
RESCUE_HAZARD_CLASS = 4


def flood_rescue_incidents(flood, router: Router, n: int, *, seed: int = 0,
                           hazard_class: int = RESCUE_HAZARD_CLASS, near_road_m: float = 150.0,
                           until_s: float | None = None, kind: str = "flood_rescue") -> list[Incident]:
    """Up to ``n`` rescue calls where the flood becomes dangerous to people.

    Candidate cells: land cells (not ``sea``) whose ARR 2019 hazard class
    (:func:`agents.people_hazard.hazard_class` of depth and speed; Smith,
    Davey & Cox 2014) reaches ``hazard_class`` at some frame, within
    ``near_road_m`` of a road node (people are where the streets are). ``n``
    of them are drawn without replacement (seeded); each call comes at a
    uniform time between the frame before the crossing and the crossing
    frame (the flood crossed the threshold somewhere in that interval), at the
    cell's centre.
    """
    from agents.people_hazard import hazard_class as arr_class
    from agents.road_hazard import open_flood
    from gis.crs import WGS84, WORKING_CRS, transformer

    ds = open_flood(flood)
    depth = ds["depth"].to_numpy().astype(float)
    speed = ds["speed"].to_numpy().astype(float) if "speed" in ds else np.zeros_like(depth)
    times = ds["time"].to_numpy().astype(float)
    danger = arr_class(depth, speed) >= hazard_class
    if "sea" in ds:
        danger &= ~ds["sea"].to_numpy().astype(bool)[None]
    if until_s is not None:
        danger &= (times <= until_s)[:, None, None]
    ever = danger.any(axis=0)
    iy, ix = np.nonzero(ever)
    if iy.size == 0 or n <= 0:
        return []
    x, y = ds["x"].to_numpy().astype(float), ds["y"].to_numpy().astype(float)
    _, dist = router.nearest(x[ix], y[iy], return_distance=True)
    near = dist <= near_road_m
    iy, ix = iy[near], ix[near]
    if iy.size == 0:
        return []
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(iy.size, size=min(int(n), iy.size), replace=False))
    first = danger[:, iy[pick], ix[pick]].argmax(axis=0)
    lo = np.where(first > 0, times[np.maximum(first - 1, 0)], times[first])
    t = lo + rng.uniform(0.0, 1.0, pick.size) * (times[first] - lo)
    lon, lat = transformer(WORKING_CRS, WGS84).transform(x[ix[pick]], y[iy[pick]])
    order = np.argsort(t, kind="stable")
    return [make_incident(f"rescue-{k + 1}", float(t[i]), float(lon[i]), float(lat[i]), kind)
            for k, i in enumerate(order)]


#: ASSUMED mix of ordinary calls (not a statistic): share of fires among random calls.
RANDOM_FIRE_SHARE = 0.3


def random_incidents(router: Router, calls_per_hour: float, hours: float, *, seed: int = 0,
                     fire_share: float = RANDOM_FIRE_SHARE) -> list[Incident]:
    """Poisson calls (rate ``calls_per_hour``) at uniformly drawn road nodes, fires or medical."""
    if calls_per_hour <= 0 or hours <= 0:
        return []
    rng = np.random.default_rng(seed + 1_000_003)
    n = int(rng.poisson(calls_per_hour * hours))
    t = np.sort(rng.uniform(0.0, hours * 3600.0, n))
    nodes = rng.integers(0, router.n_nodes, n)
    kinds = np.where(rng.random(n) < fire_share, "fire", "medical")
    ll = router.node_lonlat
    return [make_incident(f"{kinds[k]}-{k + 1}", float(t[k]), float(ll[nodes[k], 0]), float(ll[nodes[k], 1]),
                          str(kinds[k])) for k in range(n)]


@contextmanager
def _fewer_gc_passes(gen0: int = 100_000):
    """Raise the cyclic GC's generation-0 threshold while the model runs (restored after).

    Every simpy event and process is a tracked container; with the default
    threshold (700 allocations) the collector scans ever more live objects
    (requests, legs, records) as a run grows, and the rate of a 40,000-call
    run fell below half that of a 10,000-call one in the benchmark.
    """
    import gc

    old = gc.get_threshold()
    gc.set_threshold(max(old[0], gen0), *old[1:])
    try:
        yield
    finally:
        gc.set_threshold(*old)


def _edge_at(cum: np.ndarray, elapsed: float) -> int:
    """Index of the edge a leg with cumulative times ``cum`` is on after ``elapsed`` s (-1: not started).

    At an edge's exact end the index is that edge (the node after it is reached).
    """
    if elapsed <= 0 or cum.size == 0:
        return -1
    return min(int(np.searchsorted(cum, elapsed, side="left")), cum.size - 1)
