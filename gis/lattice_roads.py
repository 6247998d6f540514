"""An ASSUMED road network where no street data covers the area: the lattice walk network.

When a run's area has no road network (the shared Shenzhen data hold roads
only for central Futian, Nanshan and the western edge of Luohu) and the user
has none to give, evacuation, debris, dispatch and the flood's road closures
still need a graph to route on. :func:`lattice_road_graph` builds one from the
run's grid alone, and says it is assumed (``graph.graph["assumed"]``):

* **Nodes** on a regular lattice of the grid's land cells: every ``step``-th
  row and column, ``step = max(1, round(spacing_m / cell))`` (default
  spacing 200 m, about the block size of Shenzhen's industrial and
  residential estates), each at its cell's centre.
* **Edges** between 8-connected lattice neighbours (N, S, E, W and the
  diagonals), both directions. An edge is dropped when its straight line
  enters a cell that is not land (sea, or blocked: outside the run's area),
  and a diagonal is dropped when it would squeeze between two non-land
  cells meeting at a corner (the "no corner cutting" rule of grid path
  finding): a road never crosses the sea, a river mouth or the grid's edge.
* **Length** = straight-line length x ``circuity`` (default 1.3): streets
  wind, and the lattice cannot know how.
* Only the **largest strongly connected part** is kept (every node reaches
  every other; islands and land cut off by the sea are left out).

Edge attributes are those of :class:`gis.roads.RoadGraph` edges read from a
file: ``id``, ``length_m``, ``road_class`` (``"road"``, OSM's class of a road
of unknown type: 25 km/h, the class default of :data:`gis.roads.DEFAULT_SPEEDS_KMH`,
5 m walkable width in :mod:`agents.district_evac`), ``speed_mps``,
``geometry`` (lon/lat LineString from u to v), ``name``
(``"assumed lattice street"``), ``osm_way`` (None), ``oneway`` (False); the
RoadGraph adds ``free_time_s``, ``travel_time_s``, ``closed_by``,
``slowed_by``, ``slow_factor`` and ``closed``.

Circuity (the ratio of network to straight-line distance)
---------------------------------------------------------
Newell (1980) found network distances between random points of a city about
1.2 times the straight line, O'Sullivan (1996) 1.21-1.23 around transit
stations (both as summarised by Levinson's *Transportation Geography and
Network Science*, chapter "Circuity"); Boeing (2019, "The morphology and
circuity of walkable and drivable street networks", 40 US cities from
OpenStreetMap) reports city averages about 1.2 (e.g. Baltimore 1.23 driving,
1.22 walking) and large spreads between cities; Giacomin & Levinson (2015,
*Environment and Planning B* 42(6):1040-1053, 51 US metropolitan areas)
find short trips more circuitous than long ones and circuity growing in the
newer, suburban parts of networks; Ballou, Rahardja & Sakai (2002,
*Transportation Research A* 36(9):843-848) tabulate national road circuity
factors for distance estimation. 1.3 is taken here, above those urban
averages, because (1) an evacuation's trips are short (a few km: the most
circuitous, Giacomin & Levinson), (2) the area it is meant for (Guangming,
hilly, with industrial compounds, reservoirs and rivers) is less direct than
a US grid, and (3) a longer route makes arrivals later, the safe side for
an evacuation estimate. The lattice adds its own detour on top: an
8-connected lattice's shortest path between two nodes is their octile
distance, 1 to sqrt(4 - 2 sqrt 2) = 1.0824 times the straight line
(1.055 on average over directions), so a random pair's network distance is
about 1.3 x 1.055 = 1.37 times the straight line. Set ``circuity`` to
change it; it is an assumption, not a measurement of Shenzhen.
"""

from __future__ import annotations

import math

import networkx as nx
import numpy as np

from gis.roads import DEFAULT_SPEEDS_KMH, RoadGraph
from twin.errors import GraphError, ValidationError

#: Default node spacing, metres (rounded to a whole number of cells, at least one).
DEFAULT_SPACING_M = 200.0
#: Default ratio of an edge's length to its straight line (module doc: Newell 1980, Boeing 2019, ...).
DEFAULT_CIRCUITY = 1.3
#: Largest ratio of an 8-connected lattice path (octile distance) to the straight line: sqrt(4 - 2 sqrt 2).
OCTILE_MAX_RATIO = math.sqrt(4.0 - 2.0 * math.sqrt(2.0))
#: OSM class of the lattice's edges: a road of unknown type.
LATTICE_CLASS = "road"
#: Name of every lattice edge (the map's road layer shows it).
LATTICE_NAME = "assumed lattice street"
#: The forward half of the 8 neighbours (row step, column step); each edge is added both ways.
_DIRECTIONS = ((0, 1), (1, 0), (1, 1), (1, -1))


def lattice_step(spacing_m: float, cell_m: float) -> int:
    """Cells between lattice nodes: ``spacing_m / cell_m`` rounded, at least 1."""
    return max(1, int(round(float(spacing_m) / float(cell_m))))


def lattice_road_graph(land: np.ndarray, transform, crs: str, *, spacing_m: float = DEFAULT_SPACING_M,
                       circuity: float = DEFAULT_CIRCUITY) -> RoadGraph:
    """The ASSUMED lattice walk network of a grid's land cells (module doc).

    Parameters
    ----------
    land : 2-D array of bool
        Cells a road may cross (True) on a north-up grid; sea and blocked cells False.
    transform : affine.Affine or sequence of 6 numbers
        The grid's cell-corner transform ``(a, b, c, d, e, f)``, north-up (b = d = 0).
    crs : str
        The grid's projected CRS (metres), e.g. ``"EPSG:4547"``.
    spacing_m : float
        Distance between lattice nodes (m), rounded to a whole number of cells.
    circuity : float
        Edge length / straight-line length (>= 1).

    Returns
    -------
    gis.roads.RoadGraph
        Its largest strongly connected part; ``graph.graph`` holds ``source``
        (``"lattice"``), ``assumed`` (a sentence saying what was assumed),
        ``spacing_m`` (the spacing used), ``step_cells`` and ``circuity``.

    Raises
    ------
    ValidationError
        For a mask that is not 2-D, a rotated transform, a spacing or circuity out of range.
    GraphError
        When no two lattice nodes are joined (too few land cells for the spacing).
    """
    land = _check_land(land)
    a, b, c, d, e, f = _check_transform(transform)
    spacing_m, circuity = _check_numbers(spacing_m, circuity)
    cell = abs(a)
    k = lattice_step(spacing_m, cell)
    rows = np.arange(k // 2, land.shape[0], k)
    cols = np.arange(k // 2, land.shape[1], k)
    node = land[np.ix_(rows, cols)]
    pairs = [(di, dj, _joined(land, rows, cols, node, k, di, dj)) for di, dj in _DIRECTIONS]
    if not any(m.any() for *_, m in pairs):
        raise GraphError(f"no two lattice nodes {k * cell:g} m apart are joined over land "
                         f"({int(land.sum())} land cells of {cell:g} m): give a smaller spacing_m")
    lon, lat = _node_lonlat(rows, cols, node, (a, c, e, f), crs)
    graph = _graph(rows, cols, node, pairs, lon, lat, k, cell, circuity)
    sub = graph.largest_scc()
    sub.graph.graph.update(graph.graph.graph)
    return sub


# ----------------------------------------------------------------------------- checks
def _check_land(land) -> np.ndarray:
    arr = np.asarray(land)
    if arr.ndim != 2 or min(arr.shape) < 1:
        raise ValidationError(f"land: a 2-D mask of the grid's cells is needed, got shape {arr.shape}")
    return arr.astype(bool)


def _check_transform(transform) -> tuple[float, ...]:
    try:
        t = tuple(float(v) for v in tuple(transform)[:6])
    except (TypeError, ValueError):
        t = ()
    if len(t) != 6 or not all(math.isfinite(v) for v in t) or t[1] != 0.0 or t[3] != 0.0 \
            or t[0] <= 0.0 or t[4] >= 0.0:
        raise ValidationError(f"transform={transform!r}: give a north-up cell-corner transform "
                              "(a > 0, b = d = 0, e < 0), e.g. Domain.transform")
    return t


def _check_numbers(spacing_m, circuity) -> tuple[float, float]:
    for name, v, low in (("spacing_m", spacing_m, 0.0), ("circuity", circuity, 1.0)):
        ok = not isinstance(v, bool) and isinstance(v, int | float) and math.isfinite(v) \
            and (v > low if name == "spacing_m" else v >= low)
        if not ok:
            raise ValidationError(f"{name}={v!r}: give a finite number {'>' if name == 'spacing_m' else '>='} "
                                  f"{low:g}" + (" (m)" if name == "spacing_m" else
                                                " (edge length / straight line; 1.3 by default)"))
    return float(spacing_m), float(circuity)


# ----------------------------------------------------------------------------- lattice
def _joined(land, rows, cols, node, k: int, di: int, dj: int) -> np.ndarray:
    """Mask over lattice nodes (i, j): the edge to (i + di, j + dj) exists (both land, the line over land)."""
    ni, nj = node.shape
    ok = np.zeros_like(node)
    i0, i1 = 0, ni - di
    j0, j1 = max(0, -dj), nj - max(0, dj)
    if i1 <= i0 or j1 <= j0:
        return ok
    src = node[i0:i1, j0:j1] & node[i0 + di:i1 + di, j0 + dj:j1 + dj]
    r = rows[i0:i1][:, None]
    c = cols[j0:j1][None, :]
    m = 4 * k  # samples a quarter cell apart, never on a cell corner
    for s in range(m):
        t = (s + 0.5) / m * k
        src &= land[r + int(math.floor(0.5 + t * di)), c + int(math.floor(0.5 + t * dj))]
    if di and dj:  # a diagonal must not squeeze between two non-land cells meeting at a corner
        for q in range(k):
            corner = land[r + q, c + (q + 1) * dj] | land[r + q + 1, c + q * dj]
            src &= corner
    ok[i0:i1, j0:j1] = src
    return ok


def _node_lonlat(rows, cols, node, t, crs: str) -> tuple[np.ndarray, np.ndarray]:
    """Lon/lat (WGS 84) of every lattice position (NaN where no node)."""
    from gis.crs import WGS84, transformer

    a, c, e, f = t
    x = c + a * (cols + 0.5)
    y = f + e * (rows + 0.5)
    xx, yy = np.meshgrid(x, y)
    lon, lat = transformer(crs, WGS84).transform(xx, yy)
    return np.where(node, lon, np.nan), np.where(node, lat, np.nan)


def _graph(rows, cols, node, pairs, lon, lat, k: int, cell: float, circuity: float) -> RoadGraph:
    """The lattice as a RoadGraph (both directions of every joined pair)."""
    import shapely

    step_m = k * cell

    g = nx.MultiDiGraph()
    ii, jj = np.nonzero(node)
    names = {(i, j): f"L{rows[i]}_{cols[j]}" for i, j in zip(ii.tolist(), jj.tolist(), strict=True)}
    g.add_nodes_from((n, {"x": float(lon[i, j]), "y": float(lat[i, j])}) for (i, j), n in names.items())
    speed = DEFAULT_SPEEDS_KMH[LATTICE_CLASS] / 3.6
    for di, dj, mask in pairs:
        si, sj = np.nonzero(mask)
        if not len(si):
            continue
        ti, tj = si + di, sj + dj
        length = step_m * math.hypot(di, dj) * circuity
        p = np.stack([np.column_stack([lon[si, sj], lat[si, sj]]),
                      np.column_stack([lon[ti, tj], lat[ti, tj]])], axis=1)
        forward = shapely.linestrings(p)
        backward = shapely.linestrings(p[:, ::-1])
        for n, (a, b) in enumerate(zip(zip(si.tolist(), sj.tolist(), strict=True),
                                       zip(ti.tolist(), tj.tolist(), strict=True), strict=True)):
            u, v = names[a], names[b]
            for x, y, geom in ((u, v, forward[n]), (v, u, backward[n])):
                key = f"{x}>{y}"
                g.add_edge(x, y, key=key, id=key, length_m=length, road_class=LATTICE_CLASS,
                           speed_mps=speed, geometry=geom, name=LATTICE_NAME, osm_way=None, oneway=False)
    g.graph.update(source="lattice", spacing_m=step_m, step_cells=k, circuity=circuity,
                   assumed=(f"ASSUMED lattice walk network: nodes every {step_m:g} m on land, 8-connected, "
                            f"edge length = straight line x {circuity:g}; no street data"))
    return RoadGraph(g)


__all__ = ["DEFAULT_CIRCUITY", "DEFAULT_SPACING_M", "LATTICE_CLASS", "LATTICE_NAME", "OCTILE_MAX_RATIO",
           "lattice_road_graph", "lattice_step"]
