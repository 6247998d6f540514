"""Fast shortest paths on a road graph: a CSR copy for ``scipy.sparse.csgraph``.

:class:`Router` copies a :class:`gis.roads.RoadGraph` into a compressed
sparse row (CSR) matrix once: one stored entry per ordered node pair (u, v)
that has at least one edge. Parallel edges share that entry, which holds the
cheapest *open* edge's cost; the router remembers which edge id that is, so
paths come back as edge ids of the road graph.

Costs are ``base × factor`` per edge (``inf`` when closed), with ``base``
the free-flow travel time (default) or any other per-edge array (e.g.
walking time ``length_m / 1.34``) and ``factor`` the slow-down factor (>= 1).
The hazard state — a closed mask and a factor per edge, aligned with
:attr:`gis.roads.RoadGraph.edge_ids` — is held by the router as arrays: set it
with :meth:`Router.set_state` (vectorised, O(E)) or copy it from the road
graph's attributes with :meth:`Router.sync`. Either re-weights the CSR data
in O(E) without rebuilding its structure and changes :attr:`Router.state_key`
(a hash of the closed-and-slowed set).

Single-source trees ``scipy.sparse.csgraph.dijkstra(indices=...,
return_predecessors=True)`` are cached per (source, direction, state), so
many queries from a few stations cost one Dijkstra per station and state;
reverse trees (run on the transposed matrix) give the time *to* a target
from every node, e.g. a unit's way back to its station.

Closed edges keep their CSR slot with an infinite cost: csgraph never relaxes
an infinite edge (``d + inf`` is never smaller than a finite distance) and
keeps explicit zero-cost entries (zero-length edges) as edges.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from twin.errors import GraphError, ValidationError

if TYPE_CHECKING:  # pragma: no cover
    from gis.roads import RoadGraph

#: Default number of cached shortest-path trees (each holds 2 arrays of n_nodes).
DEFAULT_CACHE = 512


@dataclass(frozen=True)
class Route:
    """One shortest path.

    Attributes
    ----------
    nodes : ndarray of int
        Node indices (into :attr:`Router.node_ids`) from origin to destination.
    edges : ndarray of int
        Edge indices (into :attr:`Router.edge_ids`), one fewer than ``nodes``.
    cost : float
        Total cost (s for travel times), ``inf`` when there is no open route.
    """

    nodes: np.ndarray
    edges: np.ndarray
    cost: float

    @property
    def reachable(self) -> bool:
        return bool(np.isfinite(self.cost))


class Leg:
    """A shortest path whose cost is known at once and whose nodes and edges are read on demand.

    Holds references to the tree's predecessor row and to the edge costs and
    cheapest-edge table of the road state it was planned under, so it stays
    valid after the state changes or the tree leaves the cache. A simulation
    that only needs arrival times never walks the path (the dispatch model
    walks it for re-routing checks and the map's positions).

    Attributes
    ----------
    orig, dest : int
        Node indices.
    cost : float
        Total cost under the planning state (``inf``: no open route).
    t0, upto : float, int or None
        For a simulation that drives the leg: when it set off, and how many
        edges it drove (None: all of them).
    """

    __slots__ = ("orig", "dest", "cost", "_router", "_pred", "_reverse", "_edge_cost", "_pair_edge",
                 "_nodes", "_edges", "_cum", "t0", "upto")

    def __init__(self, router: Router, pred: np.ndarray, reverse: bool, orig: int, dest: int, cost: float):
        self.orig, self.dest, self.cost = orig, dest, cost
        self.t0, self.upto = 0.0, None
        self._router, self._pred, self._reverse = router, pred, reverse
        self._edge_cost, self._pair_edge = router._cost, router.pair_edge
        self._nodes = self._edges = self._cum = None

    @property
    def reachable(self) -> bool:
        return bool(np.isfinite(self.cost))

    @property
    def nodes(self) -> np.ndarray:
        """Node indices from ``orig`` to ``dest``."""
        if self._nodes is None:
            if not self.reachable:
                self._nodes = np.empty(0, np.int64)
            elif self._reverse:
                self._nodes = self._router._walk(self._pred, self.orig)
            else:
                self._nodes = self._router._walk(self._pred, self.dest)[::-1].copy()
        return self._nodes

    @property
    def edges(self) -> np.ndarray:
        """Edge indices along the path (the cheapest parallel edge under the planning state)."""
        if self._edges is None:
            self._edges = self._router._edges_along(self.nodes, self._pair_edge)
        return self._edges

    @property
    def edge_costs(self) -> np.ndarray:
        """Cost of each edge under the planning state."""
        return self._edge_cost[self.edges]

    @property
    def cum(self) -> np.ndarray:
        """Cumulative cost at the end of each edge."""
        if self._cum is None:
            self._cum = np.cumsum(self.edge_costs)
        return self._cum


class Router:
    """Shortest paths over a road graph with cached csgraph Dijkstra trees.

    Parameters
    ----------
    roads : gis.roads.RoadGraph
        The graph. Its node and edge order (``graph.nodes``, ``edge_ids``)
        fixes the indices used here.
    base : str or array_like, optional
        Per-edge base cost: an edge attribute name (default
        ``"free_time_s"``) or an array of ``n_edges`` non-negative numbers
        in :attr:`edge_ids` order.
    slow_applies : bool
        Multiply the base by the slow-down factor (True for times; pass
        False for a pure length metric).
    cache_size : int
        Maximum number of cached trees (least recently used dropped first).

    Notes
    -----
    The initial hazard state is copied from the graph (:meth:`sync`).
    """

    def __init__(self, roads: RoadGraph, base: str | Sequence[float] | np.ndarray = "free_time_s",
                 *, slow_applies: bool = True, cache_size: int = DEFAULT_CACHE):
        from scipy.sparse import csr_matrix

        self.roads = roads
        g = roads.graph
        self.node_ids: list[Hashable] = list(g.nodes)
        self.node_index: dict[Hashable, int] = {n: i for i, n in enumerate(self.node_ids)}
        self.edge_ids: list[Hashable] = roads.edge_ids
        self.edge_index: dict[Hashable, int] = {e: i for i, e in enumerate(self.edge_ids)}
        n, m = len(self.node_ids), len(self.edge_ids)
        if n == 0:
            raise GraphError("Router: the road graph is empty")
        ends = [roads.endpoints(e) for e in self.edge_ids]
        self.edge_u = np.fromiter((self.node_index[u] for u, _ in ends), dtype=np.int64, count=m)
        self.edge_v = np.fromiter((self.node_index[v] for _, v in ends), dtype=np.int64, count=m)
        self.base = self._base_costs(base)
        self.slow_applies = bool(slow_applies)
        # one CSR slot per ordered pair (u, v): pair_of_edge maps edges to slots
        keys = self.edge_u * n + self.edge_v
        self.pair_keys, self.pair_of_edge = np.unique(keys, return_inverse=True)
        pu, pv = np.divmod(self.pair_keys, n)
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.add.at(indptr, pu + 1, 1)
        indptr = np.cumsum(indptr)
        self._csr = csr_matrix((np.zeros(len(self.pair_keys)), pv.astype(np.int32),
                                indptr.astype(np.int32)), shape=(n, n))
        self._csr_t = None
        self.closed = np.zeros(m, dtype=bool)
        self.factor = np.ones(m, dtype=float)
        self.cache_size = int(cache_size)
        self._trees: OrderedDict[tuple, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self.dijkstra_runs = 0
        self._coords = None
        self._kdtree = None
        self._buf = None
        self.state_key = ""
        self.sync()

    # ------------------------------------------------------------ set-up
    def _base_costs(self, base) -> np.ndarray:
        if isinstance(base, str):
            try:
                arr = np.array([self.roads.edge(e)[base] for e in self.edge_ids], dtype=float)
            except KeyError:
                raise ValidationError(f"Router base={base!r} is not an edge attribute; use "
                                      "'free_time_s', 'length_m' or an array") from None
        else:
            arr = np.asarray(base, dtype=float)
            if arr.shape != (len(self.edge_ids),):
                raise ValidationError(f"Router base has shape {arr.shape}; give one cost per edge "
                                      f"({len(self.edge_ids)}) in edge_ids order")
        if not (np.isfinite(arr).all() and (arr >= 0).all()):
            i = int(np.flatnonzero(~(np.isfinite(arr) & (arr >= 0)))[0])
            raise ValidationError(f"Router base cost of edge {self.edge_ids[i]!r} is {arr[i]!r}: "
                                  "costs must be finite and >= 0")
        return arr

    @property
    def n_nodes(self) -> int:
        return len(self.node_ids)

    @property
    def n_edges(self) -> int:
        return len(self.edge_ids)

    # ------------------------------------------------------------ hazard state
    def sync(self) -> str:
        """Copy closures and slow factors from the road graph's edge attributes (O(E)).

        Returns the new :attr:`state_key`.
        """
        closed = np.empty(self.n_edges, dtype=bool)
        factor = np.empty(self.n_edges, dtype=float)
        for i, e in enumerate(self.edge_ids):
            d = self.roads.edge(e)
            closed[i] = d["closed"]
            factor[i] = d["slow_factor"]
        return self.set_state(closed, factor)

    def set_state(self, closed: np.ndarray | None = None, factor: np.ndarray | None = None) -> str:
        """Set the closed mask and/or slow factors (arrays in :attr:`edge_ids` order).

        Re-weights the CSR data in O(E) when the state changed; cached trees
        of other states stay cached (a state seen again is free). Returns
        :attr:`state_key`.
        """
        if closed is not None:
            closed = np.asarray(closed, dtype=bool)
            if closed.shape != (self.n_edges,):
                raise ValidationError(f"closed mask has shape {closed.shape}; need ({self.n_edges},)")
        if factor is not None:
            factor = np.asarray(factor, dtype=float)
            if factor.shape != (self.n_edges,):
                raise ValidationError(f"slow factors have shape {factor.shape}; need ({self.n_edges},)")
            if not (np.isfinite(factor).all() and (factor >= 1.0).all()):
                raise ValidationError("slow factors must be finite and >= 1 (1 = free flow)")
        new_closed = self.closed if closed is None else closed.copy()
        new_factor = self.factor if factor is None else factor.copy()
        key = _state_hash(new_closed, new_factor)
        if self.state_key == key:
            return key
        self.closed, self.factor, self.state_key = new_closed, new_factor, key
        self._reweight()
        return key

    @property
    def edge_cost(self) -> np.ndarray:
        """Current cost per edge (``inf`` when closed)."""
        cost = self.base * self.factor if self.slow_applies else self.base.copy()
        cost[self.closed] = np.inf
        return cost

    def _reweight(self) -> None:
        cost = self.edge_cost
        # per pair: the cheapest edge (ties: the first in edge order) via a lexsort by (pair, cost)
        order = np.lexsort((np.arange(self.n_edges), cost, self.pair_of_edge))
        first = np.searchsorted(self.pair_of_edge[order], np.arange(len(self.pair_keys)))
        self.pair_edge = order[first]
        self._csr.data[:] = cost[self.pair_edge]
        self._csr_t = None
        self._cost = cost

    # ------------------------------------------------------------ trees
    def node(self, node_id: Hashable) -> int:
        """Index of a node id (GraphError when unknown)."""
        try:
            return self.node_index[node_id]
        except KeyError:
            raise GraphError(f"node {node_id!r} is not in the road graph; use nearest_node(lon, lat)") \
                from None

    def trees(self, sources: Iterable[int] | int, *, reverse: bool = False
              ) -> tuple[np.ndarray, np.ndarray]:
        """Distances and predecessors from (or, ``reverse``, to) each source node index.

        Returns
        -------
        dist, pred : ndarray (n_sources, n_nodes)
            ``dist[i, j]`` the cost from source i to node j (to source i from
            node j when ``reverse``); ``pred[i, j]`` the node before j on that
            path (after j when ``reverse``), -9999 where none.
        """
        from scipy.sparse.csgraph import dijkstra

        src = np.atleast_1d(np.asarray(sources, dtype=np.int64))
        if src.size and (src.min() < 0 or src.max() >= self.n_nodes):
            raise GraphError(f"source node index out of range 0..{self.n_nodes - 1}: {src}")
        missing = [int(s) for s in dict.fromkeys(src.tolist())
                   if (int(s), reverse, self.state_key) not in self._trees]
        if missing:
            mat = self._transposed() if reverse else self._csr
            dist, pred = dijkstra(mat, directed=True, indices=missing, return_predecessors=True)
            self.dijkstra_runs += len(missing)
            for i, s in enumerate(missing):
                self._trees[(s, reverse, self.state_key)] = (dist[i], pred[i])
        out = []
        for s in src.tolist():
            k = (int(s), reverse, self.state_key)
            self._trees.move_to_end(k)
            out.append(self._trees[k])
        while len(self._trees) > self.cache_size:
            self._trees.popitem(last=False)
        if not out:
            return np.empty((0, self.n_nodes)), np.empty((0, self.n_nodes), dtype=np.int32)
        return np.stack([d for d, _ in out]), np.stack([p for _, p in out])

    def _transposed(self):
        if self._csr_t is None:
            self._csr_t = self._csr.transpose().tocsr()
        return self._csr_t

    def tree(self, source: int, *, reverse: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """One cached tree (1-D dist and pred) of :meth:`trees`."""
        k = (int(source), reverse, self.state_key)
        hit = self._trees.get(k)
        if hit is not None:
            self._trees.move_to_end(k)
            return hit
        dist, pred = self.trees([source], reverse=reverse)
        return dist[0], pred[0]

    def peek_tree(self, source: int, *, reverse: bool = False) -> tuple[np.ndarray, np.ndarray] | None:
        """The cached tree of :meth:`tree` under the current state, or None; neither computes nor
        counts as a use (the least-recently-used order of the cache is left as it is)."""
        return self._trees.get((source, reverse, self.state_key))

    def cached(self, source: int, *, reverse: bool = False) -> bool:
        """True when the tree of ``source`` under the current state is cached."""
        return (int(source), reverse, self.state_key) in self._trees

    def clear_cache(self) -> None:
        self._trees.clear()

    # ------------------------------------------------------------ queries
    def travel_time(self, orig: int, dest: int) -> float:
        """Cost from node index ``orig`` to ``dest`` (``inf`` if unreachable).

        Uses a cached forward tree of ``orig`` or reverse tree of ``dest``,
        else computes (and caches) the forward tree of ``orig``.
        """
        if not self.cached(orig) and self.cached(dest, reverse=True):
            return float(self.tree(dest, reverse=True)[0][orig])
        return float(self.tree(orig)[0][dest])

    def travel_times(self, origins: Sequence[int], dests: Sequence[int]) -> np.ndarray:
        """Matrix (n_origins, n_destinations) of costs from cached forward trees."""
        dist, _ = self.trees(origins)
        return dist[:, np.asarray(dests, dtype=np.int64)]

    def route(self, orig: int, dest: int) -> Route:
        """Shortest path from node index ``orig`` to ``dest`` (forward tree of ``orig``).

        When a reverse tree of ``dest`` is cached and the forward tree of
        ``orig`` is not, the path is read from the reverse tree (same cost;
        among equal-cost paths it may pick another).
        """
        if not self.cached(orig) and self.cached(dest, reverse=True):
            return self.route_to(orig, dest)
        dist, pred = self.tree(orig)
        cost = float(dist[dest])
        if not np.isfinite(cost):
            return Route(np.empty(0, np.int64), np.empty(0, np.int64), np.inf)
        nodes_a = self._walk(pred, dest)[::-1].copy()
        return Route(nodes_a, self._edges_along(nodes_a), cost)

    def route_to(self, orig: int, dest: int) -> Route:
        """Shortest path from ``orig`` to ``dest`` read from the reverse tree of ``dest``."""
        dist, pred = self.tree(dest, reverse=True)
        cost = float(dist[orig])
        if not np.isfinite(cost):
            return Route(np.empty(0, np.int64), np.empty(0, np.int64), np.inf)
        nodes_a = self._walk(pred, orig)
        return Route(nodes_a, self._edges_along(nodes_a), cost)

    def _walk(self, pred: np.ndarray, start: int) -> np.ndarray:
        from agents._kernels.routing import walk

        if self._buf is None:
            self._buf = np.empty(self.n_nodes, dtype=np.int64)
        n = walk(pred, int(start), self._buf)
        if n < 0:  # pragma: no cover - a shortest-path tree has no cycle
            raise GraphError("corrupt predecessor tree: no root within n_nodes hops")
        return self._buf[:n].copy()

    def leg(self, orig: int, dest: int, *, reverse: bool | None = None) -> Leg:
        """A lazy :class:`Leg` from ``orig`` to ``dest`` (O(1) once the tree is cached).

        ``reverse`` None: the forward tree of ``orig`` when cached, else the
        reverse tree of ``dest`` when cached, else the forward tree of ``orig``.
        """
        if reverse is None:
            reverse = not self.cached(orig) and self.cached(dest, reverse=True)
        src, end = (dest, orig) if reverse else (orig, dest)
        k = (int(src), reverse, self.state_key)
        hit = self._trees.get(k)  # what tree() does, inlined: a leg per mission leg in dispatch
        if hit is None:
            hit = self.tree(src, reverse=reverse)
        else:
            self._trees.move_to_end(k)
        return Leg(self, hit[1], reverse, orig, dest, float(hit[0][end]))

    def _edges_along(self, nodes: np.ndarray, pair_edge: np.ndarray | None = None) -> np.ndarray:
        if len(nodes) < 2:
            return np.empty(0, np.int64)
        keys = nodes[:-1] * self.n_nodes + nodes[1:]
        pairs = np.searchsorted(self.pair_keys, keys)
        return (self.pair_edge if pair_edge is None else pair_edge)[pairs].astype(np.int64)

    def path_cost(self, edges: Sequence[int]) -> float:
        """Sum of current costs along edge indices (``inf`` if one is closed)."""
        return float(self._cost[np.asarray(edges, dtype=np.int64)].sum())

    def route_ids(self, route: Route) -> tuple[list[Hashable], list[Hashable]]:
        """(node ids, edge ids) of a :class:`Route`."""
        return ([self.node_ids[i] for i in route.nodes], [self.edge_ids[i] for i in route.edges])

    # ------------------------------------------------------------ positions
    @property
    def node_xy(self) -> np.ndarray:
        """(n_nodes, 2) east_m, north_m in EPSG:4547."""
        if self._coords is None:
            nd = self.roads.graph.nodes
            self._coords = np.array([(nd[n]["east_m"], nd[n]["north_m"]) for n in self.node_ids])
        return self._coords

    @property
    def node_lonlat(self) -> np.ndarray:
        """(n_nodes, 2) lon, lat in degrees."""
        nd = self.roads.graph.nodes
        return np.array([(nd[n]["x"], nd[n]["y"]) for n in self.node_ids])

    def nearest(self, east_m, north_m, return_distance: bool = False):
        """Index of the nearest node to EPSG:4547 points (scipy cKDTree); arrays in, arrays out."""
        if self._kdtree is None:
            from scipy.spatial import cKDTree

            self._kdtree = cKDTree(self.node_xy)
        dist, idx = self._kdtree.query(np.column_stack([np.ravel(east_m), np.ravel(north_m)]))
        idx = idx.astype(np.int64)
        if np.ndim(east_m) == 0:
            return (int(idx[0]), float(dist[0])) if return_distance else int(idx[0])
        return (idx, dist) if return_distance else idx

    def within(self, east_m: float, north_m: float, radius_m: float) -> list[int]:
        """Indices of the nodes within ``radius_m`` of an EPSG:4547 point (any order)."""
        self.nearest(east_m, north_m)  # builds the KD-tree
        return self._kdtree.query_ball_point((float(east_m), float(north_m)), float(radius_m))

    def nearest_lonlat(self, lon, lat, return_distance: bool = False):
        """Index of the nearest node to lon/lat points (projected to EPSG:4547 first)."""
        from gis.crs import WGS84, WORKING_CRS, transformer

        lon_a, lat_a = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
        if not (np.isfinite(lon_a).all() and np.isfinite(lat_a).all()):
            raise ValidationError(f"nearest_lonlat: lon/lat must be finite, got {lon!r}, {lat!r}")
        e, n = transformer(WGS84, WORKING_CRS).transform(lon_a, lat_a)
        if np.ndim(lon) == 0:
            e, n = float(e), float(n)
        return self.nearest(e, n, return_distance=return_distance)


def _state_hash(closed: np.ndarray, factor: np.ndarray) -> str:
    h = hashlib.blake2b(digest_size=12)
    h.update(np.packbits(closed).tobytes())
    h.update(np.ascontiguousarray(factor).tobytes())
    return h.hexdigest()
