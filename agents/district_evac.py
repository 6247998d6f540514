"""District evacuation over the road network: groups of people walk (or drive) to shelters while streets flood.

The model
---------
Evacuees move in groups (:func:`agents.population.evacuee_groups`) from the
road node nearest their home to a shelter, over a **link/queue model**
(MATSim's queue simulation: Gawron 1998; Cetin, Burri & Nagel 2003) stepped
every ``dt_s`` by the numba kernel :func:`agents._kernels.network_flow.advance`
(rules in that module). Per directed edge, on foot:

* free travel time = length / walking speed (1.34 m/s, Weidmann 1993's mean
  free speed; references.md), × the wading slow-down of the flood;
* flow capacity = specific flow 1.32 P/(s·m) (SFPE hydraulic model, corridors
  and doors: k = 1.40 m/s, Fs,max = 1.32) × walkable width;
* storage = length × walkable width × 5.4 P/m² (Weidmann's jam density),
  at least the largest group; flow capacity at least 0.1 P/s: never zero
  (zero-capacity links deadlock MATSim).

The flow capacity meters groups both onto and off an edge (so queues stand
before a narrowing), and a group held ``stuck_s`` (300 s) by a full next edge
moves on anyway (MATSim's stuck time: it breaks gridlock; counted per edge).

Walkable width per direction of travel (m, :data:`WALK_WIDTH_M`): half of a
street's cross-section, carriageway included — in a district evacuation on
foot people use the whole street — from CJJ 37-2012's 3.5 m lanes and
sidewalks of 2-3 m (its minimum is 2 m) on typical lane counts of each OSM
class (trunk 6 lanes + 3 m sidewalks -> 13.5 m a direction, primary 4 + 3 m ->
10, secondary 4 + 2 m -> 9, tertiary 2 + 2 m -> 5.5, minor streets 2 + 1.5 m
-> 5, ramps one 3.5 m lane). These are class defaults, not surveyed widths.
Expressways (OSM ``motorway``, ``motorway_link``) are closed to people on
foot (Road Traffic Safety Law of the PRC, art. 67) and dropped.

By car (``mode="car"``): road speeds of the graph, 1,800 veh/h a lane and
7.5 m of queue a vehicle (storage), 1.5 people a car (assumptions, stated);
flood slow-down and closure by Pregnolato et al. 2017 and the vehicle D·V
limit (:mod:`agents.road_hazard`).

Flood on the streets
--------------------
Each edge is sampled in EPSG:4547 at its vertices and every half cell
(:func:`agents.road_hazard.edge_sample_points`); depth and speed are
interpolated linearly in time between the flood's frames and read every
``hazard_every_s``. On foot an edge **closes** when the worst sample's ARR
2019 hazard class reaches ``close_class`` (default H3: unsafe for children
and the elderly, :mod:`agents.people_hazard`), or, with ``depth_threshold_m``,
when the deepest sample reaches it; it is **slowed** by
:func:`agents.people_hazard.walking_speed_factor` of its deepest sample.
Edges reopen when the water falls. A group on an edge when it closes is
*stranded* there (the water where it walks is beyond the safe limit); groups
whose remaining route crosses a closed edge are re-routed from the end of
their current edge (or their origin) to the nearest shelter with room; with
no open route they finish their edge and are stranded at its end.

Shelters
--------
Groups take the shelter nearest by network time that still has room
(reserved at assignment, in departure order: a shelter manager's
allocation); a group re-routed gives its place back and takes the nearest
reachable shelter with room. No shelter with room within reach: stranded.

Departures are spread uniformly over ``departure_window_s`` (seeded; an
assumption standing in for warning and pre-movement times).

Step by step (a coupled run)
----------------------------
:meth:`DistrictEvacuation.run` steps to the end on a flood run's frames. A
coupled run (:mod:`scenarios.couplings.evacuation`) drives the same model
on its clock instead: built with ``allow_empty=True`` and the
``largest_group`` it will ever add, started (:meth:`~DistrictEvacuation.start`),
then :meth:`~DistrictEvacuation.advance` ``(until_s)`` moves it in chunks of
``hazard_every_s`` reading the street state at the end of each chunk — the
depth and speed of a grid that changes (:class:`FieldFlood`) and the
closures of other reasons put in :attr:`~DistrictEvacuation.extra_closed`;
:meth:`~DistrictEvacuation.add_groups` adds waves of evacuees while it runs
(routed at once to the nearest shelter with room: places are shared by all
waves); :meth:`~DistrictEvacuation.checkpoint` and
:meth:`~DistrictEvacuation.restore` keep and put back its whole state;
:meth:`~DistrictEvacuation.result` gives the Dataset :meth:`run` gives.
With the same groups and seed, ``advance`` gives the arrivals of ``run``
(tested).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from twin.errors import GraphError, ValidationError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    import xarray as xr

    from gis.roads import RoadGraph
    from twin.events import EventLog

#: Weidmann 1993: mean free walking speed, m/s.
WALK_SPEED_MPS = 1.34
#: SFPE hydraulic model, corridors and doors: maximum specific flow, P/(s·m).
SPECIFIC_FLOW = 1.32
#: Weidmann 1993: jam density, P/m².
JAM_DENSITY = 5.4
#: Smallest flow capacity of an edge, people/s (never zero).
MIN_FLOW_CAP = 0.1
#: Walkable width per direction of travel by OSM class, m (module doc).
WALK_WIDTH_M = {
    "trunk": 13.5, "primary": 10.0, "secondary": 9.0, "tertiary": 5.5,
    "unclassified": 5.0, "residential": 5.0, "road": 5.0, "living_street": 3.0, "service": 2.5,
    "trunk_link": 3.5, "primary_link": 3.5, "secondary_link": 3.5, "tertiary_link": 3.5,
}  # fmt: skip
DEFAULT_WALK_WIDTH_M = 3.5
#: Classes closed to people on foot.
NO_WALK_CLASSES = frozenset({"motorway", "motorway_link"})
#: Lanes per direction by class (car mode).
LANES = {"motorway": 3, "trunk": 3, "primary": 2, "secondary": 2}
#: Car mode: saturation flow per lane (veh/s), queue length per vehicle (m), people per car.
LANE_FLOW_VPS = 1800.0 / 3600.0
VEHICLE_SPACE_M = 7.5
CAR_OCCUPANCY = 1.5

STATE_NAMES = ("at_origin", "moving", "arrived", "stranded")
#: An edge counts as "slowed" in the frames' road state from this travel-time factor on (walking: ~7 cm of water).
SHOWN_SLOW = 1.1


@dataclass(frozen=True)
class EvacParams:
    """Parameters of a district evacuation (defaults and sources in the module doc).

    Attributes
    ----------
    mode : {"walk", "car"}
    walk_speed_mps, specific_flow, jam_density : float
        Walking speed (m/s), flow per metre of width (P/s/m), jam density (P/m²).
    close_class : int
        ARR hazard class (2-6) from which an edge is closed to walkers.
    depth_threshold_m : float or None
        Close at this depth instead (m).
    dt_s, hazard_every_s, frame_every_s : float
        Time step, interval of flood updates, interval of map frames (s);
        ``hazard_every_s`` a multiple of ``dt_s``, ``frame_every_s`` of ``hazard_every_s``.
    max_duration_s : float
        The run stops here even if people are still on their way.
    departure_window_s : float
        Departures spread uniformly over [0, window] (s).
    stuck_s : float
        A group held this long by a full next edge moves onto it anyway (MATSim's
        stuck time, which breaks gridlock; MATSim's default is 10 s for cars, 300 s
        here so that spill-back governs ordinary congestion); ``inf``: never.
    """

    mode: str = "walk"
    walk_speed_mps: float = WALK_SPEED_MPS
    specific_flow: float = SPECIFIC_FLOW
    jam_density: float = JAM_DENSITY
    close_class: int = 3
    depth_threshold_m: float | None = None
    dt_s: float = 1.0
    hazard_every_s: float = 60.0
    frame_every_s: float = 120.0
    max_duration_s: float = 4 * 3600.0
    departure_window_s: float = 600.0
    stuck_s: float = 300.0

    def __post_init__(self) -> None:
        if self.mode not in ("walk", "car"):
            raise ValidationError(f"mode={self.mode!r}: choose 'walk' or 'car'")
        for name in ("walk_speed_mps", "specific_flow", "jam_density", "dt_s", "hazard_every_s",
                     "frame_every_s", "max_duration_s"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ValidationError(f"{name}={v!r}: give a positive number")
        if not (self.stuck_s > 0):
            raise ValidationError(f"stuck_s={self.stuck_s!r}: give a time > 0 s (inf: never force)")
        if not (math.isfinite(self.departure_window_s) and self.departure_window_s >= 0):
            raise ValidationError(f"departure_window_s={self.departure_window_s!r}: give a number >= 0")
        if not 2 <= int(self.close_class) <= 6:
            raise ValidationError(f"close_class={self.close_class!r}: an ARR hazard class 2..6 (H1 is safe)")
        if self.depth_threshold_m is not None and not (self.depth_threshold_m > 0):
            raise ValidationError(f"depth_threshold_m={self.depth_threshold_m!r}: give a depth > 0 m")
        for a, b in (("hazard_every_s", "dt_s"), ("frame_every_s", "hazard_every_s")):
            ratio = getattr(self, a) / getattr(self, b)
            if abs(ratio - round(ratio)) > 1e-9:
                raise ValidationError(f"{a}={getattr(self, a)!r} must be a whole multiple of {b}={getattr(self, b)!r}")


# ----------------------------------------------------------------------------- network
def walk_network(roads: RoadGraph, *, keep_hazard: bool = True) -> RoadGraph:
    """The walkable part of a road graph: expressways dropped, largest strongly connected part.

    ``keep_hazard=False`` drops the graph's closures and slow-downs from the
    copy (a coupled run's shared graph carries the roads' flood closures for
    cars; walkers have their own rule).

    Raises
    ------
    GraphError
        When nothing walkable is left.
    """
    from gis.roads import RoadGraph

    g = roads.graph.copy()
    drop = [(u, v, k) for u, v, k, d in g.edges(keys=True, data=True) if d["road_class"] in NO_WALK_CLASSES]
    g.remove_edges_from(drop)
    g.remove_nodes_from([n for n in list(g.nodes) if g.degree(n) == 0])
    for *_, d in g.edges(data=True):
        d["closed_by"] = set(d["closed_by"]) if keep_hazard else set()
        d["slowed_by"] = dict(d["slowed_by"]) if keep_hazard else {}
        if not keep_hazard:
            RoadGraph._refresh(d)
    if g.number_of_edges() == 0:
        raise GraphError("no walkable road is left once expressways are dropped")
    return RoadGraph(g).largest_scc()


@dataclass
class Network:
    """The arrays the kernel runs on, aligned with ``roads.edge_ids`` (see :func:`build_network`)."""

    roads: Any
    router: Any
    length_m: np.ndarray
    base_time_s: np.ndarray
    width_m: np.ndarray
    flow_cap: np.ndarray
    storage: np.ndarray
    free_speed_mps: np.ndarray
    geoms: np.ndarray  # shapely LineStrings, lon/lat
    node_lonlat: np.ndarray
    edge_u: np.ndarray
    edge_v: np.ndarray


def build_network(roads: RoadGraph, params: EvacParams, largest_group: float) -> Network:
    """Capacities and free travel times of every edge (module doc), and a router over them."""
    from agents.routing import Router

    ids = roads.edge_ids
    data = [roads.edge(e) for e in ids]
    length = np.array([d["length_m"] for d in data], dtype=float)
    cls = [d["road_class"] for d in data]
    speed = np.array([d["speed_mps"] for d in data], dtype=float)
    if params.mode == "walk":
        width = np.array([WALK_WIDTH_M.get(c, DEFAULT_WALK_WIDTH_M) for c in cls])
        free_speed = np.full(len(ids), params.walk_speed_mps)
        flow = params.specific_flow * width
        storage = length * width * params.jam_density
    else:
        lanes = np.array([1 if c.endswith("_link") else LANES.get(c, 1) for c in cls], dtype=float)
        width = lanes * 3.5
        free_speed = speed
        flow = lanes * LANE_FLOW_VPS * CAR_OCCUPANCY
        storage = length * lanes / VEHICLE_SPACE_M * CAR_OCCUPANCY
    flow = np.maximum(flow, MIN_FLOW_CAP)
    storage = np.maximum(storage, largest_group)
    base = length / free_speed
    router = Router(roads, base=base)
    nd = roads.graph.nodes
    return Network(roads=roads, router=router, length_m=length, base_time_s=base, width_m=width,
                   flow_cap=flow, storage=storage, free_speed_mps=free_speed,
                   geoms=np.array([d["geometry"] for d in data], dtype=object),
                   node_lonlat=np.array([(nd[n]["x"], nd[n]["y"]) for n in router.node_ids]),
                   edge_u=router.edge_u, edge_v=router.edge_v)


# ----------------------------------------------------------------------------- flood on edges
class EdgeFlood:
    """Flood depth and speed sampled along every edge, read at any time (module doc).

    Parameters
    ----------
    roads : RoadGraph
    flood : xarray.Dataset
        ``depth`` and optionally ``speed`` (time, y, x) on a regular EPSG:4547 grid.
    """

    def __init__(self, roads: RoadGraph, flood: xr.Dataset):
        from agents.road_hazard import open_flood, sample_along_edges

        ds = open_flood(flood)
        self.depth, self.speed, edge = sample_along_edges(roads, ds)
        self.times_s = ds["time"].to_numpy().astype(float)
        self.starts = np.searchsorted(edge, np.arange(roads.n_edges))
        if not np.all(np.diff(np.append(self.starts, len(edge))) > 0):
            raise GraphError("an edge has no sample point (empty geometry?)")

    def fields_at(self, t_s: float) -> tuple[np.ndarray, np.ndarray]:
        """Depth and speed at every sample point at ``t_s`` (linear in time; held beyond the ends)."""
        times = self.times_s
        if len(times) == 1 or t_s <= times[0]:
            return self.depth[0], self.speed[0]
        if t_s >= times[-1]:
            return self.depth[-1], self.speed[-1]
        i = int(np.searchsorted(times, t_s, side="right")) - 1
        w = (t_s - times[i]) / (times[i + 1] - times[i])
        return ((1 - w) * self.depth[i] + w * self.depth[i + 1],
                (1 - w) * self.speed[i] + w * self.speed[i + 1])

    def edges_at(self, t_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per edge at ``t_s``: deepest depth (m), largest D·V (m²/s), worst ARR hazard class."""
        from agents.people_hazard import hazard_class

        d, v = self.fields_at(t_s)
        cls = hazard_class(d, v)
        return (np.maximum.reduceat(d, self.starts), np.maximum.reduceat(d * v, self.starts),
                np.maximum.reduceat(cls, self.starts))


class FieldFlood(EdgeFlood):
    """Depth and speed of a grid that changes while the evacuation runs (a coupled run's state), on every edge.

    The same sampling as :class:`EdgeFlood` (points along each edge every half
    cell, each reading its cell; off the grid, sea and NaN read dry), but the
    values are the grid's *current* ones, put in with :meth:`set_fields`
    (no time series, no file): :meth:`fields_at` returns them whatever the time.

    Parameters
    ----------
    roads : RoadGraph
    x, y : array
        Cell centres (EPSG:4547 m) of a regular grid.
    sea : array (y, x) of bool, optional
    """

    def __init__(self, roads: RoadGraph, x: np.ndarray, y: np.ndarray, sea: np.ndarray | None = None):
        from agents.road_hazard import edge_sample_points

        x, y = np.asarray(x, float), np.asarray(y, float)
        dx, dy = x[1] - x[0], y[1] - y[0]
        xy, edge = edge_sample_points(roads, 0.5 * min(abs(dx), abs(dy)))
        ix = np.floor((xy[:, 0] - (x[0] - dx / 2)) / dx).astype(np.int64)
        iy = np.floor((xy[:, 1] - (y[0] - dy / 2)) / dy).astype(np.int64)
        inside = (ix >= 0) & (ix < len(x)) & (iy >= 0) & (iy < len(y))
        self.ix, self.iy = np.clip(ix, 0, len(x) - 1), np.clip(iy, 0, len(y) - 1)
        self.dry = ~inside
        if sea is not None:
            self.dry |= np.asarray(sea, bool)[self.iy, self.ix]
        self.shape = (len(y), len(x))
        self.times_s = np.zeros(1)
        self.starts = np.searchsorted(edge, np.arange(roads.n_edges))
        if not np.all(np.diff(np.append(self.starts, len(edge))) > 0):
            raise GraphError("an edge has no sample point (empty geometry?)")
        zero = np.zeros(len(edge))
        self.depth, self.speed = zero, zero.copy()

    def set_fields(self, depth: np.ndarray, speed: np.ndarray | None = None) -> None:
        """The grid's depth (m) and speed (m/s) now, (y, x) arrays; NaN and negatives read dry."""
        depth = np.asarray(depth, float)
        if depth.shape != self.shape:
            raise ValidationError(f"depth has shape {depth.shape}; the grid is {self.shape}")
        d = depth[self.iy, self.ix]
        v = np.zeros_like(d) if speed is None else np.asarray(speed, float)[self.iy, self.ix]
        self.depth = np.where(self.dry | ~np.isfinite(d), 0.0, np.maximum(d, 0.0))
        self.speed = np.where(self.dry | ~np.isfinite(v), 0.0, np.abs(v))

    def fields_at(self, t_s: float) -> tuple[np.ndarray, np.ndarray]:
        """The current depth and speed at every sample point (``t_s`` is not used)."""
        return self.depth, self.speed


def edge_state(net: Network, flood: EdgeFlood | None, t_s: float, params: EvacParams
               ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """(closed mask, travel-time factor >= 1, per-edge depth/dv/class) of every edge at ``t_s``."""
    n = len(net.length_m)
    if flood is None:
        zero = np.zeros(n)
        return np.zeros(n, bool), np.ones(n), {"depth": zero, "dv": zero, "class": np.ones(n, np.int8)}
    depth, dv, cls = flood.edges_at(t_s)
    if params.mode == "walk":
        from agents.people_hazard import walking_speed_factor

        closed = depth >= params.depth_threshold_m if params.depth_threshold_m is not None \
            else cls >= params.close_class
        factor = 1.0 / walking_speed_factor(depth)
    else:
        from agents.road_hazard import classify

        f, state = classify(depth, dv, net.free_speed_mps)
        closed = state == 2
        if params.depth_threshold_m is not None:
            closed |= depth >= params.depth_threshold_m
        factor = 1.0 / np.maximum(np.where(closed, 1.0, f), 1e-6)
    return closed, np.maximum(factor, 1.0), {"depth": depth, "dv": dv, "class": cls}


# ----------------------------------------------------------------------------- shelters and routes
@dataclass
class Plan:
    """Shelter assignment and routes (the flat route array the kernel reads)."""

    shelter_node: np.ndarray
    capacity: np.ndarray
    reserved: np.ndarray
    route: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    shelter_of: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def extend(self, paths: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Append routes (one concatenation for all); their (start, end) indices into :attr:`route`."""
        lengths = np.array([len(p) for p in paths], dtype=np.int64)
        ends = len(self.route) + np.cumsum(lengths)
        if len(paths):
            self.route = np.concatenate([self.route, *[np.asarray(p, dtype=np.int64) for p in paths]])
        return ends - lengths, ends

    def crosses(self, closed: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        """Whether each route slice ``route[start:end]`` holds a closed edge (vectorised)."""
        cs = np.concatenate([[0], np.cumsum(closed[self.route])])
        return cs[np.maximum(end, start)] - cs[start] > 0


def _path_edges(router, pred_row: np.ndarray, start: int, target: int) -> np.ndarray | None:
    """Edge indices from node ``start`` to ``target`` along a reverse tree (None: unreachable)."""
    nodes = [start]
    n = start
    while n != target:
        n = int(pred_row[n])
        if n < 0:
            return None
        nodes.append(n)
    if len(nodes) < 2:
        return np.zeros(0, np.int64)
    a = np.asarray(nodes, dtype=np.int64)
    keys = a[:-1] * router.n_nodes + a[1:]
    return router.pair_edge[np.searchsorted(router.pair_keys, keys)].astype(np.int64)


def assign(plan: Plan, router, groups_idx: np.ndarray, from_node: np.ndarray, size: np.ndarray
           ) -> list[tuple[int, int, np.ndarray | None]]:
    """Nearest shelter with room by current network time for each group, in the given order.

    Returns ``[(group, shelter or -1, edges or None)]``; reserves the places.
    """
    if len(groups_idx) == 0:
        return []
    dist, pred = router.trees(plan.shelter_node, reverse=True)
    cache: dict[tuple[int, int], np.ndarray | None] = {}
    out = []
    for g, node in zip(groups_idx.tolist(), from_node.tolist(), strict=True):
        room = plan.capacity - plan.reserved >= size[g] - 1e-9
        d = np.where(room, dist[:, node], np.inf)
        s = int(np.argmin(d))
        if not np.isfinite(d[s]):
            out.append((g, -1, None))
            continue
        key = (s, node)
        if key not in cache:
            cache[key] = _path_edges(router, pred[s], node, int(plan.shelter_node[s]))
        plan.reserved[s] += size[g]
        out.append((g, s, cache[key]))
    return out


# ----------------------------------------------------------------------------- the run
@dataclass
class EvacResult:
    """A finished district evacuation: its Dataset (:func:`result_dataset`) and event log."""

    dataset: Any
    events: Any


def _positions(net: Network, groups, route, origin_ll: np.ndarray, stranded_ll: np.ndarray, t_s: float,
               which: np.ndarray | None = None):
    """lon, lat and state of every group at ``t_s`` (arrived groups: NaN, the shelter is on the map).

    With ``which`` (group indices), positions along edges are computed for those groups only.
    """
    import shapely

    from agents._kernels.network_flow import MOVING, STRANDED, WAITING

    n = len(groups.size)
    lon = np.full(n, np.nan)
    lat = np.full(n, np.nan)
    st = groups.state
    w = st == WAITING
    lon[w], lat[w] = origin_ll[w, 0], origin_ll[w, 1]
    m = np.flatnonzero(st == MOVING)
    if which is not None:
        m = np.intersect1d(m, which)
    if len(m):
        e = route[groups.pos[m]]
        span = groups.exit_s[m] - groups.enter_s[m]
        frac = np.clip(np.where(span > 0, (t_s - groups.enter_s[m]) / np.where(span > 0, span, 1.0), 1.0), 0, 1)
        pts = shapely.line_interpolate_point(net.geoms[e], frac, normalized=True)
        xy = shapely.get_coordinates(pts)
        lon[m], lat[m] = xy[:, 0], xy[:, 1]
    s = st == STRANDED
    lon[s], lat[s] = stranded_ll[s, 0], stranded_ll[s, 1]
    return lon, lat, st.copy()


def simulate(roads: RoadGraph, shelters: pd.DataFrame, origins: pd.DataFrame, *,
             flood: xr.Dataset | None = None, params: EvacParams | None = None, seed: int = 0,
             events: EventLog | None = None, progress=None, use_reference: bool = False) -> EvacResult:
    """Run a district evacuation.

    Parameters
    ----------
    roads : RoadGraph
        The network people move on (on foot: pass :func:`walk_network` of the city graph).
    shelters : DataFrame
        ``name``, ``lon``, ``lat``, ``capacity`` (people).
    origins : DataFrame
        One row per group: ``lon``, ``lat`` (origin; the nearest node is
        used) and ``people`` (> 0); optionally ``depart_s`` (else departures
        are spread over ``params.departure_window_s``). See
        :func:`agents.population.evacuee_groups`.
    flood : xarray.Dataset, optional
        A flood run (depth, speed over time); None: dry streets.
    params : EvacParams
    seed : int
        Departure times and the order edges are served in.
    events : twin.events.EventLog, optional
        Receives road_closed, road_reopened, person_stranded, shelter_full,
        evacuation_progress events (a new log if None).
    progress : callable(t_s, duration_s, message=None), optional
    use_reference : bool
        Step with the pure-Python reference kernel (tests).

    Returns
    -------
    EvacResult
    """
    run = DistrictEvacuation(roads, shelters, origins, flood=flood, params=params, seed=seed, events=events,
                             use_reference=use_reference)
    return run.run(progress)


NO_ROUTE = "no open route to a shelter with room"


class DistrictEvacuation:
    """The state of one district evacuation: set up by the constructor, advanced by :meth:`run` or :meth:`advance`.

    Arguments as :func:`simulate`, and ``largest_group`` (the most people of
    any group, also of groups added later with :meth:`add_groups`: the
    edges' storage and flow accumulators are sized for it) and
    ``allow_empty`` (start with no groups). Between chunks of ``hazard_every_s`` the
    numba kernel has stepped, the flood state is read (:meth:`update_hazard`):
    closures strand the groups on closed edges and re-route those whose way
    crosses one (:meth:`replan`); frames of positions are kept for the map.
    """

    def __init__(self, roads: RoadGraph, shelters: pd.DataFrame, origins: pd.DataFrame, *,
                 flood: xr.Dataset | None = None, params: EvacParams | None = None, seed: int = 0,
                 events: EventLog | None = None, use_reference: bool = False,
                 largest_group: float | None = None, allow_empty: bool = False):
        import pandas as pd

        from agents._kernels import network_flow as nf
        from twin.events import EventLog

        self.nf = nf
        self.params = p = params or EvacParams()
        self.seed = seed
        self.events = events if events is not None else EventLog()
        self.kernel = nf.advance_reference if use_reference else nf.advance
        rng = np.random.default_rng(seed)
        self.roads = roads
        self.shelters = _check_shelters(shelters)
        origins = pd.DataFrame(origins)
        if len(origins) == 0 and not allow_empty:
            raise ValidationError("no evacuees: the hazard zone holds no people (check the threshold and area)")
        size = origins["people"].to_numpy(dtype=float) if len(origins) else np.zeros(0)
        if not (np.isfinite(size).all() and (size > 0).all()):
            raise ValidationError("origins: every group needs a finite number of people > 0")
        self.size = size
        largest = float(size.max()) if len(size) else 0.0
        if largest_group is not None:
            if not (math.isfinite(largest_group) and largest_group >= largest and largest_group > 0):
                raise ValidationError(f"largest_group={largest_group!r}: give the most people of any group that "
                                      f"will ever be added (>= {largest:g}, the largest given)")
            largest = float(largest_group)
        self.largest_group = largest
        self.net = net = build_network(roads, p, largest)
        self.router = net.router
        n_e, n_g = len(net.length_m), len(size)
        self.origin_node = self._nearest_nodes(origins)
        self.origin_ll = net.node_lonlat[self.origin_node]
        sh = self.shelters
        shelter_node = np.asarray(self.router.nearest_lonlat(sh["lon"].to_numpy(float), sh["lat"].to_numpy(float)))
        self.plan = Plan(shelter_node=shelter_node.astype(np.int64), capacity=sh["capacity"].to_numpy(float),
                         reserved=np.zeros(len(sh)))
        self.flood = EdgeFlood(roads, flood) if flood is not None else None
        depart = rng.uniform(0.0, p.departure_window_s, n_g) if p.departure_window_s > 0 else np.zeros(n_g)
        if "depart_s" in origins.columns:  # the caller's own departure times
            depart = origins["depart_s"].to_numpy(dtype=float)
            if not (np.isfinite(depart).all() and (depart >= 0).all()):
                raise ValidationError("origins: depart_s must be finite times >= 0 s")
        self.depart = depart
        self.wait_order = np.argsort(depart, kind="stable").astype(np.int64)
        acc_max = net.flow_cap * p.dt_s + largest
        self.edges = nf.Edges(travel_s=net.base_time_s.copy(), flow_cap=net.flow_cap.astype(float),
                              storage=net.storage.astype(float), acc_max=acc_max, occ=np.zeros(n_e),
                              acc=acc_max.copy(), acc_in=acc_max.copy(), head=np.full(n_e, -1, np.int64),
                              tail=np.full(n_e, -1, np.int64), max_queue=np.zeros(n_e), max_occ=np.zeros(n_e),
                              people_out=np.zeros(n_e), forced=np.zeros(n_e))
        self.groups = nf.Groups(size=size, state=np.zeros(n_g, np.int8), depart_s=depart,
                                pos=np.zeros(n_g, np.int64), end=np.zeros(n_g, np.int64),
                                strand_at_end=np.zeros(n_g, np.int8), exit_s=np.zeros(n_g), enter_s=np.zeros(n_g),
                                next_in_q=np.full(n_g, -1, np.int64), done_s=np.full(n_g, np.nan),
                                last_step=np.full(n_g, -1, np.int64))
        self.shelter_of = np.full(n_g, -1, np.int64)
        self.stranded_ll = np.full((n_g, 2), np.nan)
        self.strand_reason = np.full(n_g, "", dtype=object)
        self.order = rng.permutation(n_e).astype(np.int64)
        self.closed = np.zeros(n_e, bool)
        #: Edges closed for other reasons than the flood (debris, a lost road), set by the caller.
        self.extra_closed = np.zeros(n_e, bool)
        self.first_closed = np.full(n_e, np.nan)
        self.max_slow = np.ones(n_e)
        self.peak_flow = np.zeros(n_e)
        self.t = 0.0
        self.frames: dict[str, list] = {"t": [], "lon": [], "lat": [], "state": [], "edge_state": []}
        self._started = False
        self.step_count = self.chunk_count = 0
        self.counts_all: list[np.ndarray] = []
        self.times: list[float] = []
        self.milestones = {0.5: False, 0.95: False, 1.0: False}

    def _nearest_nodes(self, origins) -> np.ndarray:
        if len(origins) == 0:
            return np.zeros(0, np.int64)
        return np.asarray(self.router.nearest_lonlat(origins["lon"].to_numpy(float),
                                                     origins["lat"].to_numpy(float)), dtype=np.int64)

    # ------------------------------------------------------------------ waves
    def add_groups(self, origins: pd.DataFrame, depart_s: np.ndarray) -> np.ndarray:
        """Add groups of evacuees while running (a wave); their indices.

        Parameters
        ----------
        origins : DataFrame
            ``lon``, ``lat`` (the nearest node is the origin) and ``people``
            (> 0, at most the ``largest_group`` the model was built for).
        depart_s : array
            Earliest departure of each group (s, >= the current time is usual;
            an earlier time means "as soon as possible").

        Once the run has started, the new groups are given the nearest
        shelter with room at once (in departure order): the shelters'
        places reserved by earlier waves stay taken.

        Raises
        ------
        ValidationError
            Naming the bad column: sizes not > 0 or above ``largest_group``, times not finite.
        """
        import pandas as pd

        from agents._kernels import network_flow as nf

        origins = pd.DataFrame(origins)
        size = origins["people"].to_numpy(dtype=float) if len(origins) else np.zeros(0)
        depart = np.asarray(depart_s, dtype=float).reshape(-1)
        if len(depart) != len(size):
            raise ValidationError(f"add_groups: {len(size)} groups but {len(depart)} departure times")
        if not (np.isfinite(size).all() and (size > 0).all() and (size <= self.largest_group + 1e-9).all()):
            raise ValidationError(f"add_groups: people per group must be > 0 and <= {self.largest_group:g} "
                                  "(largest_group of the model); split bigger groups")
        if not (np.isfinite(depart).all() and (depart >= 0).all()):
            raise ValidationError("add_groups: depart_s must be finite times >= 0 s")
        n0, k = len(self.size), len(size)
        if k == 0:
            return np.zeros(0, np.int64)
        node = self._nearest_nodes(origins)
        g = self.groups
        self.size = np.concatenate([self.size, size])
        self.depart = np.concatenate([self.depart, depart])
        self.origin_node = np.concatenate([self.origin_node, node])
        self.origin_ll = np.concatenate([self.origin_ll, self.net.node_lonlat[node]])
        self.shelter_of = np.concatenate([self.shelter_of, np.full(k, -1, np.int64)])
        self.stranded_ll = np.concatenate([self.stranded_ll, np.full((k, 2), np.nan)])
        self.strand_reason = np.concatenate([self.strand_reason, np.full(k, "", dtype=object)])
        self.groups = nf.Groups(
            size=self.size, state=np.concatenate([g.state, np.zeros(k, np.int8)]), depart_s=self.depart,
            pos=np.concatenate([g.pos, np.zeros(k, np.int64)]), end=np.concatenate([g.end, np.zeros(k, np.int64)]),
            strand_at_end=np.concatenate([g.strand_at_end, np.zeros(k, np.int8)]),
            exit_s=np.concatenate([g.exit_s, np.zeros(k)]), enter_s=np.concatenate([g.enter_s, np.zeros(k)]),
            next_in_q=np.concatenate([g.next_in_q, np.full(k, -1, np.int64)]),
            done_s=np.concatenate([g.done_s, np.full(k, np.nan)]),
            last_step=np.concatenate([g.last_step, np.full(k, -1, np.int64)]))
        self.wait_order = np.argsort(self.depart, kind="stable").astype(np.int64)
        new = np.arange(n0, n0 + k, dtype=np.int64)
        if self._started:
            new_sorted = new[np.argsort(depart, kind="stable")]
            self.replan(new_sorted, self.origin_node[new_sorted], moving=False)
        return new

    # ------------------------------------------------------------------ checkpoints
    #: Per-group and per-edge arrays a checkpoint keeps (attributes of the model; ``edges/``, ``groups/`` prefixed
    #: for the kernel's arrays).
    SAVED = ("size", "depart", "wait_order", "origin_node", "origin_ll", "shelter_of", "stranded_ll", "order",
             "closed", "extra_closed", "first_closed", "max_slow", "peak_flow")

    def checkpoint(self) -> dict[str, Any]:
        """The whole running state: numpy arrays and JSON-able values by key (see :meth:`restore`).

        The network, the shelters and the parameters are not in it: they are
        rebuilt from the same inputs by the constructor.
        """
        out: dict[str, Any] = {k: np.array(getattr(self, k), copy=True) for k in self.SAVED}
        out |= {f"edges/{k}": np.array(v, copy=True) for k, v in self.edges._asdict().items()}
        out |= {f"groups/{k}": np.array(v, copy=True) for k, v in self.groups._asdict().items() if k != "size"}
        out |= {"strand_reason": np.asarray(self.strand_reason, dtype=str), "route": self.plan.route.copy(),
                "reserved": self.plan.reserved.copy(), "router_closed": self.router.closed.copy(),
                "router_factor": self.router.factor.copy(),
                "counts": np.concatenate(self.counts_all) if self.counts_all else np.zeros((0, 4)),
                "counts_rows": np.array([len(c) for c in self.counts_all], np.int64),
                "times": np.asarray(self.times, float)}
        f = self.frames
        out |= {"frames_t": np.asarray(f["t"], float), "frames_n": np.array([len(r) for r in f["lon"]], np.int64),
                "frames_edge_state": np.asarray(f["edge_state"], np.int8).reshape(len(f["t"]), len(self.net.length_m))}
        for key, fill, dt in (("lon", np.nan, np.float64), ("lat", np.nan, np.float64), ("state", -1, np.int8)):
            out[f"frames_{key}"] = _stack(f[key], len(self.size), fill, dt)
        out |= {"t": float(self.t), "step_count": int(self.step_count), "chunk_count": int(self.chunk_count),
                "started": bool(self._started), "milestones": [bool(self.milestones[k]) for k in (0.5, 0.95, 1.0)],
                "events": self.events.to_records()}
        return out

    def restore(self, saved: dict[str, Any]) -> None:
        """Put a :meth:`checkpoint` back into a model built from the same inputs (without the waves)."""
        from twin.events import EventLog

        nf = self.nf
        for k in self.SAVED:
            setattr(self, k, np.array(saved[k], dtype=getattr(self, k).dtype, copy=True))
        self.strand_reason = np.asarray(saved["strand_reason"], dtype=str).astype(object)
        self.edges = nf.Edges(**{k: np.array(saved[f"edges/{k}"], copy=True) for k in nf.Edges._fields})
        self.groups = nf.Groups(size=self.size, **{k: np.array(saved[f"groups/{k}"], copy=True)
                                                   for k in nf.Groups._fields if k != "size"})
        self.plan.route = np.asarray(saved["route"], np.int64).copy()
        self.plan.reserved = np.asarray(saved["reserved"], float).copy()
        self.router.set_state(np.asarray(saved["router_closed"], bool), np.asarray(saved["router_factor"], float))
        rows = np.cumsum(np.asarray(saved["counts_rows"], np.int64))
        self.counts_all = list(np.split(np.asarray(saved["counts"], float), rows[:-1])) if len(rows) else []
        self.times = [float(t) for t in saved["times"]]
        n = np.asarray(saved["frames_n"], np.int64)
        self.frames = {"t": [float(t) for t in saved["frames_t"]],
                       "lon": [np.asarray(r[:k], float) for r, k in zip(saved["frames_lon"], n, strict=True)],
                       "lat": [np.asarray(r[:k], float) for r, k in zip(saved["frames_lat"], n, strict=True)],
                       "state": [np.asarray(r[:k], np.int8) for r, k in zip(saved["frames_state"], n, strict=True)],
                       "edge_state": list(np.asarray(saved["frames_edge_state"], np.int64))}
        self.t, self.step_count = float(saved["t"]), int(saved["step_count"])
        self.chunk_count, self._started = int(saved["chunk_count"]), bool(saved["started"])
        self.milestones = dict(zip((0.5, 0.95, 1.0), (bool(v) for v in saved["milestones"]), strict=True))
        self.events = EventLog.from_records(saved["events"])

    # ------------------------------------------------------------------ events
    def log(self, kind: str, message: str, severity: str = "info", **data) -> None:
        from twin.events import Event

        self.events.append(Event(time_s=float(self.t), kind=kind, source="evacuate_district", severity=severity,
                                 message=message, data=data))

    def note_stranded(self, g: int, lon: float, lat: float, reason: str) -> None:
        """Record where and why group ``g`` is stranded, give its shelter place back, log it."""
        self.stranded_ll[g] = (lon, lat)
        self.strand_reason[g] = reason
        if self.shelter_of[g] >= 0:
            self.plan.reserved[self.shelter_of[g]] -= self.size[g]
            self.shelter_of[g] = -1
        self.log("person_stranded", f"{self.size[g]:.0f} people stranded: {reason}", "warning", group=int(g),
                 people=float(self.size[g]), lon=float(lon), lat=float(lat), reason=reason)

    def strand(self, gs: np.ndarray, where_ll: np.ndarray, reason: str) -> None:
        for g, (lon, lat) in zip(np.asarray(gs, dtype=np.int64).tolist(), where_ll.tolist(), strict=True):
            self.groups.state[g] = self.nf.STRANDED
            self.groups.done_s[g] = self.t
            self.note_stranded(g, lon, lat, reason)

    def stranded_by_kernel(self) -> None:
        """Groups that finished a cut-short route in the last chunk: stranded at the end of their edge."""
        g_ = self.groups
        for g in np.flatnonzero((g_.state == self.nf.STRANDED) & np.isnan(self.stranded_ll[:, 0])).tolist():
            lon, lat = self.net.node_lonlat[self.net.edge_v[self.plan.route[g_.end[g] - 1]]]
            self.note_stranded(g, lon, lat, self.strand_reason[g] or NO_ROUTE)

    # ------------------------------------------------------------------ routes
    def replan(self, gs: np.ndarray, from_node: np.ndarray, moving: bool) -> None:
        """New shelter and route for groups ``gs`` (in this order) from ``from_node``.

        Moving groups keep their current edge and go on from its end; without a
        route they finish it and are stranded there. Waiting groups without a
        route are stranded at their origin.
        """
        plan, g_, nf = self.plan, self.groups, self.nf
        for g in gs.tolist():
            if self.shelter_of[g] >= 0:
                plan.reserved[self.shelter_of[g]] -= self.size[g]
                self.shelter_of[g] = -1
        full_before = plan.reserved >= plan.capacity - 1e-9
        new_g, new_paths = [], []
        for g, s, path in assign(plan, self.router, gs, from_node, self.size):
            cur = int(plan.route[g_.pos[g]]) if moving else -1
            if s < 0 or path is None:
                if moving:  # finish the current edge, stranded at its end
                    new_g.append(g)
                    new_paths.append(np.array([cur]))
                    g_.strand_at_end[g] = 1
                    self.strand_reason[g] = NO_ROUTE
                else:
                    self.strand(np.array([g]), self.origin_ll[[g]], NO_ROUTE)
                continue
            self.shelter_of[g] = s
            if moving:
                path = np.concatenate([[cur], path])
            if len(path) == 0:  # already at the shelter
                g_.state[g] = nf.ARRIVED
                g_.done_s[g] = self.t
                continue
            new_g.append(g)
            new_paths.append(path)
        starts, ends = plan.extend(new_paths)
        g_.pos[new_g], g_.end[new_g] = starts, ends
        names = self.shelters["name"]
        for s in np.flatnonzero((plan.reserved >= plan.capacity - 1e-9) & ~full_before):
            self.log("shelter_full", f"shelter {names.iloc[s]} is fully allocated ({plan.capacity[s]:.0f} places)",
                     "advisory", shelter=str(names.iloc[s]))

    # ------------------------------------------------------------------ flood
    def update_hazard(self) -> None:
        """Read the flood at the current time: travel times, closures (events), stranding, re-routing."""
        net, edges = self.net, self.edges
        new_closed, factor, _ = edge_state(net, self.flood, self.t, self.params)
        new_closed = new_closed | self.extra_closed
        edges.travel_s[:] = net.base_time_s * factor
        np.maximum(self.max_slow, factor, out=self.max_slow)
        just_closed = new_closed & ~self.closed
        reopened = self.closed & ~new_closed
        self._log_roads(just_closed, reopened)
        self.closed = new_closed
        self.router.set_state(new_closed, factor)
        if self.t == 0.0:
            self._reroute(initial=True)
        elif just_closed.any():
            self._strand_on(just_closed)
            self._reroute(initial=False)

    def _log_roads(self, just_closed: np.ndarray, reopened: np.ndarray) -> None:
        ids, net = self.roads.edge_ids, self.net
        for e in np.flatnonzero(just_closed):
            if np.isnan(self.first_closed[e]):
                self.first_closed[e] = self.t
            lon, lat = net.geoms[e].interpolate(0.5, normalized=True).coords[0]
            self.log("road_closed", f"road {self.roads.edge(ids[e]).get('name') or ids[e]} closed by the flood",
                     "warning", edge=str(ids[e]), lon=lon, lat=lat)
        for e in np.flatnonzero(reopened):
            self.log("road_reopened", f"road {self.roads.edge(ids[e]).get('name') or ids[e]} reopened",
                     edge=str(ids[e]))

    def _strand_on(self, just_closed: np.ndarray) -> None:
        """Groups on an edge that closed: stranded where they are (the water there is beyond the limit)."""
        edges, g_ = self.edges, self.groups
        for e in np.flatnonzero(just_closed):
            g = int(edges.head[e])
            on = []
            while g >= 0:
                on.append(g)
                g = int(g_.next_in_q[g])
            if on:
                lon, lat, _ = _positions(self.net, g_, self.plan.route, self.origin_ll, self.stranded_ll, self.t,
                                         which=np.array(on))
                self.strand(np.array(on), np.column_stack([lon[on], lat[on]]), "caught on a flooded street")
                edges.head[e] = edges.tail[e] = -1
                edges.occ[e] = 0.0

    def _reroute(self, initial: bool) -> None:
        """Plan every waiting group (``initial``), else those whose remaining way crosses a closed edge."""
        g_, plan, nf = self.groups, self.plan, self.nf
        waiting = np.flatnonzero(g_.state == nf.WAITING)
        moving = np.flatnonzero(g_.state == nf.MOVING)
        redo_w = waiting if initial else waiting[plan.crosses(self.closed, g_.pos[waiting], g_.end[waiting])]
        redo_m = moving[plan.crosses(self.closed, g_.pos[moving] + 1, g_.end[moving])]
        if len(redo_m):
            self.replan(redo_m, self.net.edge_v[plan.route[g_.pos[redo_m]]], moving=True)
        if len(redo_w):
            redo_w = redo_w[np.argsort(self.depart[redo_w], kind="stable")]
            self.replan(redo_w, self.origin_node[redo_w], moving=False)

    # ------------------------------------------------------------------ the run
    def frame(self, t_s: float | None = None) -> None:
        """Keep the positions and street states of this moment (at ``t_s``, default now) for the map."""
        t = self.t if t_s is None else t_s
        lon, lat, st = _positions(self.net, self.groups, self.plan.route, self.origin_ll, self.stranded_ll, t)
        slowed = self.edges.travel_s >= self.net.base_time_s * SHOWN_SLOW
        for key, v in (("t", t), ("lon", lon), ("lat", lat), ("state", st),
                       ("edge_state", np.where(self.closed, 2, np.where(slowed, 1, 0)))):
            self.frames[key].append(v)

    def start(self) -> None:
        """Read the flood at t = 0, plan every waiting group, keep the first frame (once; :meth:`run` and
        :meth:`advance` call it)."""
        if self._started:
            return
        self._started = True
        self.update_hazard()
        g_ = self.groups
        self.counts_all = [np.array([[g_.size[g_.state == s].sum() for s in range(4)]])]
        self.times = [0.0]
        self.frame()

    def _chunk(self, n_steps: int, total: float) -> None:
        """Step the kernel ``n_steps`` of ``dt_s``, then read the flood (and the closures) at the new time."""
        p, nf, edges = self.params, self.nf, self.edges
        per_chunk = int(round(p.hazard_every_s / p.dt_s))
        span = p.hazard_every_s if n_steps == per_chunk else n_steps * p.dt_s
        counts = np.zeros((n_steps, 4))
        before = edges.people_out.copy()
        self.kernel(edges, self.groups, self.plan.route, self.order, self.wait_order,
                    nf.Steps(float(self.t), float(p.dt_s), n_steps, self.step_count, float(p.stuck_s)), counts)
        self.step_count += n_steps
        self.chunk_count += 1
        self.t = self.step_count * p.dt_s
        np.maximum(self.peak_flow, (edges.people_out - before) / span, out=self.peak_flow)
        self.stranded_by_kernel()
        self.counts_all.append(counts)
        self.times.extend((self.t - span + p.dt_s * np.arange(1, n_steps + 1)).tolist())
        for share, done in self.milestones.items():
            if not done and total > 0 and counts[-1, 2] >= share * total - 1e-9:
                self.milestones[share] = True
                self.log("evacuation_progress", f"{share:.0%} of the evacuees are at a shelter", share=share)
        self.update_hazard()
        if self.chunk_count % int(round(p.frame_every_s / p.hazard_every_s)) == 0:
            self.frame()

    def run(self, progress=None) -> EvacResult:
        """Step until everybody is at a shelter or stranded, or ``max_duration_s``; the result."""
        p, nf, g_ = self.params, self.nf, self.groups
        total = float(self.size.sum())
        self.start()
        per_chunk = int(round(p.hazard_every_s / p.dt_s))
        while self.t < p.max_duration_s - 1e-9 and np.any(g_.state <= nf.MOVING):
            self._chunk(per_chunk, total)
            if progress is not None:
                progress(self.t, p.max_duration_s, None)
        return self.result()

    def advance(self, until_s: float) -> None:
        """Move the evacuation on to ``until_s`` (s), in chunks of ``hazard_every_s`` (the last one shorter).

        At the end of each chunk the street state is read again (the flood
        object's :meth:`edges_at` and :attr:`extra_closed`): closures strand
        the groups on closed streets and re-route those whose way crosses one.
        Groups added with :meth:`add_groups` join from their departure time.
        Unlike :meth:`run` it steps on when nobody is on the way (more groups
        may come) and ignores ``max_duration_s``.

        Raises
        ------
        ValidationError
            When ``until_s`` is not a whole number of time steps after the current time.
        """
        p = self.params
        self.start()
        n = (until_s - self.t) / p.dt_s
        if abs(n - round(n)) > 1e-6:
            raise ValidationError(f"advance(until_s={until_s!r}): give a time a whole number of dt_s={p.dt_s:g} s "
                                  f"after the current t={self.t:g} s")
        per_chunk = int(round(p.hazard_every_s / p.dt_s))
        left = int(round(n))
        while left > 0:
            k = min(per_chunk, left)
            self._chunk(k, float(self.size.sum()))
            left -= k

    def result(self) -> EvacResult:
        """The run so far as an :class:`EvacResult` (Dataset and events; a last frame on the frame grid)."""
        p, nf, g_ = self.params, self.nf, self.groups
        if self.frames["t"][-1] < self.t:  # a last frame on the frame grid (nothing moves any more)
            self.frame(math.ceil(self.t / p.frame_every_s - 1e-9) * p.frame_every_s)
        left = self.size[g_.state <= nf.MOVING].sum()
        if left:
            self.log("evacuation_incomplete", f"{left:.0f} people still on their way at the end of the run "
                     f"({p.max_duration_s:.0f} s)", "warning", people=float(left))
        f = self.frames
        n_g = len(self.size)
        res = {"times": np.asarray(self.times), "counts": np.concatenate(self.counts_all),
               "frames_t": np.asarray(f["t"]),
               "lon": _stack(f["lon"], n_g, np.nan, np.float32), "lat": _stack(f["lat"], n_g, np.nan, np.float32),
               "state": _stack(f["state"], n_g, -1, np.int8), "edge_state": np.asarray(f["edge_state"], np.int8),
               "groups": g_, "edges": self.edges, "shelter_of": self.shelter_of, "origin_ll": self.origin_ll,
               "stranded_ll": self.stranded_ll, "strand_reason": self.strand_reason,
               "first_closed": self.first_closed, "max_slow": self.max_slow, "peak_flow": self.peak_flow,
               "end_s": self.t}
        return EvacResult(dataset=result_dataset(self.net, self.shelters, res, p, self.seed), events=self.events)


def _stack(rows: list[np.ndarray], n: int, fill, dtype) -> np.ndarray:
    """Frames of per-group values as one (frame, group) array; groups added later are ``fill`` before."""
    out = np.full((len(rows), n), fill, dtype=dtype)
    for i, r in enumerate(rows):
        out[i, :len(r)] = r
    return out


def _check_shelters(shelters: pd.DataFrame) -> pd.DataFrame:
    import pandas as pd

    df = pd.DataFrame(shelters).reset_index(drop=True)
    missing = [c for c in ("name", "lon", "lat", "capacity") if c not in df.columns]
    if missing:
        raise ValidationError(f"shelters lack column(s) {missing}: give name, lon, lat, capacity "
                              f"(columns present: {list(df.columns)})")
    if len(df) == 0:
        raise ValidationError("shelters: the table is empty; give at least one shelter")
    for c in ("lon", "lat", "capacity"):
        v = pd.to_numeric(df[c], errors="coerce").to_numpy(float)
        bad = ~np.isfinite(v) | ((v <= 0) if c == "capacity" else False)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValidationError(f"shelters row {i} ({df['name'].iloc[i]!r}): {c}={df[c].iloc[i]!r} "
                                  f"is not {'a capacity > 0' if c == 'capacity' else 'a number'}")
        df[c] = v
    if not ((df["lon"].abs() <= 180) & (df["lat"].abs() <= 90)).all():
        raise ValidationError("shelters: lon/lat must be WGS84 degrees")
    df["name"] = df["name"].astype(str)
    return df


def clear_times(times: np.ndarray, arrived: np.ndarray, total: float) -> dict[str, float]:
    """Times (s) at which 50 %, 95 % and 100 % of ``total`` had arrived (NaN: never)."""
    out = {}
    for key, share in (("t50_s", 0.5), ("t95_s", 0.95), ("t100_s", 1.0)):
        hit = np.flatnonzero(arrived >= share * total - 1e-6)
        out[key] = float(times[hit[0]]) if len(hit) else float("nan")
    return out


def result_dataset(net: Network, shelters: pd.DataFrame, res: dict, params: EvacParams, seed: int) -> xr.Dataset:
    """The run as an xarray.Dataset (dims time, frame, group, edge, shelter)."""
    import xarray as xr

    g, e = res["groups"], res["edges"]
    counts = res["counts"]
    total = float(g.size.sum())
    shelter_people = np.zeros(len(shelters))
    arrived_g = g.state == 2
    np.add.at(shelter_people, res["shelter_of"][arrived_g], g.size[arrived_g])
    area = net.length_m * net.width_m
    ids = [str(i) for i in net.roads.edge_ids]
    names = [net.roads.edge(i).get("name") or "" for i in net.roads.edge_ids]
    ds = xr.Dataset(
        {
            **{name: ("time", counts[:, k], {"units": "people", "long_name": f"evacuees {name.replace('_', ' ')}"})
               for k, name in enumerate(STATE_NAMES)},
            "group_lon": (("frame", "group"), res["lon"], {"units": "degrees_east", "crs": "EPSG:4326",
                                                         "long_name": "group position (NaN: arrived)"}),
            "group_lat": (("frame", "group"), res["lat"], {"units": "degrees_north", "crs": "EPSG:4326"}),
            "group_state": (("frame", "group"), res["state"],
                            {"units": "1", "long_name": "0 at origin, 1 moving, 2 arrived, 3 stranded"}),
            "group_people": ("group", g.size, {"units": "people"}),
            "group_depart_s": ("group", g.depart_s, {"units": "s"}),
            "group_done_s": ("group", g.done_s, {"units": "s", "long_name": "arrival or stranding time"}),
            "group_final_state": ("group", g.state.astype(np.int8), {"units": "1"}),
            "group_shelter": ("group", res["shelter_of"], {"units": "1", "long_name": "shelter index (-1 none)"}),
            "group_origin_lon": ("group", res["origin_ll"][:, 0], {"units": "degrees_east"}),
            "group_origin_lat": ("group", res["origin_ll"][:, 1], {"units": "degrees_north"}),
            "group_strand_reason": ("group", res["strand_reason"].astype(str)),
            "edge_id": ("edge", np.array(ids, dtype=str)),
            "edge_name": ("edge", np.array(names, dtype=str)),
            "edge_wkt": ("edge", np.array([ge.wkt for ge in net.geoms], dtype=str), {"crs": "EPSG:4326"}),
            "edge_length": ("edge", net.length_m, {"units": "m"}),
            "edge_width": ("edge", net.width_m, {"units": "m", "long_name": "walkable width a direction"}),
            "edge_flow_capacity": ("edge", net.flow_cap, {"units": "people/s"}),
            "edge_storage": ("edge", net.storage, {"units": "people"}),
            "edge_people_through": ("edge", e.people_out.copy(), {"units": "people"}),
            "edge_peak_flow": ("edge", res["peak_flow"], {"units": "people/s",
                                                          "long_name": f"highest mean outflow over {params.hazard_every_s:g} s"}),
            "edge_max_queue": ("edge", e.max_queue.copy(), {"units": "people",
                                                            "long_name": "most people held at the downstream node"}),
            "edge_max_occupancy": ("edge", e.max_occ.copy(), {"units": "people"}),
            "edge_forced_in": ("edge", e.forced.copy(), {"units": "people", "long_name":
                               "people moved onto the edge while it was full (stuck-time rule)"}),
            "edge_max_density": ("edge", e.max_occ / np.maximum(area, 1e-9), {"units": "people/m2"}),
            "edge_first_closed": ("edge", res["first_closed"], {"units": "s", "long_name": "first closure (NaN never)"}),
            "edge_max_slow_factor": ("edge", res["max_slow"], {"units": "1"}),
            "edge_state": (("frame", "edge"), res["edge_state"],
                           {"units": "1", "long_name": f"0 open, 1 slowed (travel time x >= {SHOWN_SLOW}), 2 closed"}),
            "shelter_name": ("shelter", shelters["name"].to_numpy(str)),
            "shelter_lon": ("shelter", shelters["lon"].to_numpy(float), {"units": "degrees_east"}),
            "shelter_lat": ("shelter", shelters["lat"].to_numpy(float), {"units": "degrees_north"}),
            "shelter_capacity": ("shelter", shelters["capacity"].to_numpy(float), {"units": "people"}),
            "shelter_arrivals": ("shelter", shelter_people, {"units": "people"}),
        },
        coords={"time": ("time", res["times"], {"units": "s"}), "frame": ("frame", res["frames_t"], {"units": "s"})},
    )
    ct = clear_times(res["times"], counts[:, 2], total)
    done = clear_times(res["times"], counts[:, 2], float(counts[-1, 2]))
    ct["t95_of_arrivals_s"] = done["t95_s"]
    ds.attrs.update({
        "title": "District evacuation", "model": "link/queue model of evacuee groups (agents.district_evac)",
        "mode": params.mode, "seed": int(seed), "evacuees": total, "groups": int(len(g.size)),
        "arrived": float(counts[-1, 2]), "stranded": float(counts[-1, 3]),
        "still_moving": float(counts[-1, 0] + counts[-1, 1]), "end_s": float(res["end_s"]),
        **ct, "params": json.dumps(params.__dict__),
        "edges_closed": int(np.isfinite(res["first_closed"]).sum()),
        "forced_moves_people": float(e.forced.sum()),
    })
    return ds


__all__ = ["DistrictEvacuation", "EdgeFlood", "EvacParams", "FieldFlood", "EvacResult", "Network", "build_network", "clear_times", "edge_state",
           "result_dataset", "simulate", "walk_network"]
