"""Routable directed road graphs with hazard state, for emergency routing.

A :class:`RoadGraph` wraps a ``networkx.MultiDiGraph``. A *multi*-graph,
because real networks hold distinct roads between the same two junctions
(central Futian has 32 such parallel pairs: a slip road beside a main
carriageway, two halves of a split way). Each has its own length, class and
hazard state, and closing one by id must leave the other open; a DiGraph
would silently keep only one of them.

Graph contents
--------------
Nodes (any hashable id: strings for SUMO/GeoJSON data, ints for OSM):
``x``, ``y`` lon/lat in degrees (WGS 84, EPSG:4326) and ``east_m``,
``north_m`` in the city's working CRS EPSG:4547 (CGCS2000 / GK CM 114E).

Edges (key = the edge id, a string, unique in the graph):

========== ============================================================
length_m   length in metres (the source's when given, else geodesic on
           the WGS 84 ellipsoid with ``pyproj.Geod``)
road_class OSM highway class without prefix (``"primary"``, ...)
speed_mps  free-flow speed, m/s (OSM ``maxspeed`` if tagged, else the
           class default of :data:`DEFAULT_SPEEDS_KMH` / 3.6)
free_time_s  length_m / speed_mps
travel_time_s  free_time_s x slow_factor: the routing weight
slow_factor  product of the factors of all active slow-downs (1 = none)
closed     True while any closure is active: the edge is then *hidden*
           from routing (not given an infinite cost)
geometry   shapely LineString, lon/lat EPSG:4326, drawn from u to v
name, oneway, osm_way  from the source when known
========== ============================================================

Default speeds (km/h)
---------------------
Free-flow speeds by class follow the design speeds of China's urban road
code CJJ 37-2012 (城市道路工程设计规范, table 3.2.2): expressway 快速路
100/80/60, arterial 主干路 60/50/40, secondary arterial 次干路 50/40/30,
branch road 支路 40/30/20. OSM classes map onto them as used by the
OSM China community: motorway = urban expressway (80, middle value),
trunk = expressway/major arterial (60), primary = arterial (50),
secondary = secondary arterial (40), tertiary = branch (30),
unclassified/road 25, residential 20 (lowest branch value). Ramps
(``*_link``) take about half to two thirds of their road's speed, the range
CJJ 37 gives for interchange ramps: motorway/trunk links 40, primary/
secondary links 30, tertiary links 25. Classes outside CJJ 37: service
(compound and access roads, posted 5-15 km/h in Shenzhen estates) 15 and
living_street (shared space, walking pace) 10. These are design speeds,
not observed ones: congestion is out of scope, and the ``speeds`` argument
of every constructor overrides any class (km/h).

Drivable classes
----------------
:data:`DRIVABLE_CLASSES` (the default) is motorway, trunk, primary,
secondary and tertiary with their links, plus unclassified, residential and
road. On the real central-Futian network this reproduces the data README's
fact "drivable classes' largest strongly connected part: 1,131 nodes";
adding living_street gives 1,132 and adding service 1,245. The converter of
that network (SUMO netconvert) only lets delivery vehicles onto service
roads, which is why they are left out by default.
:data:`EMERGENCY_CLASSES` adds service and living_street: fire engines and
ambulances do use estate and access roads to reach a building. From OSM,
service roads tagged ``service=parking_aisle``/``driveway``/``drive-through``
are always dropped (car-park lanes, not routes).

Hazards
-------
``close_edges(ids_or_mask, reason)`` and ``slow_edges(ids, factor, reason)``
record each hazard under its reason, so a flood and a fire can close or slow
the same street independently; calling again with the same reason replaces
that reason's factor. ``reopen(ids=None, reason=None)`` clears them.
"""

from __future__ import annotations

import ast
import math
import os
from collections.abc import Hashable, Iterable, Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
from pyproj import Geod
from shapely.geometry import LineString

from gis import osm
from gis.crs import WGS84, WORKING_CRS, crs_string, get_crs, transformer
from gis.vector import read_vector
from twin.errors import CRSError, DataMissingError, GraphError, ValidationError

#: Free-flow speed by OSM highway class, km/h (basis: CJJ 37-2012, see module doc).
DEFAULT_SPEEDS_KMH: dict[str, float] = {
    "motorway": 80.0,
    "motorway_link": 40.0,
    "trunk": 60.0,
    "trunk_link": 40.0,
    "primary": 50.0,
    "primary_link": 30.0,
    "secondary": 40.0,
    "secondary_link": 30.0,
    "tertiary": 30.0,
    "tertiary_link": 25.0,
    "unclassified": 25.0,
    "road": 25.0,
    "residential": 20.0,
    "service": 15.0,
    "living_street": 10.0,
}

#: Public motor-road classes (default): reproduces Futian's LSCC of 1,131 nodes.
DRIVABLE_CLASSES: frozenset[str] = frozenset(
    {
        "motorway", "motorway_link", "trunk", "trunk_link", "primary", "primary_link",
        "secondary", "secondary_link", "tertiary", "tertiary_link",
        "unclassified", "residential", "road",
    }
)  # fmt: skip

#: Drivable classes plus the access roads emergency vehicles use.
EMERGENCY_CLASSES: frozenset[str] = DRIVABLE_CLASSES | {"service", "living_street"}

#: ``service=*`` values never routed (car-park aisles, private driveways).
EXCLUDED_SERVICE = frozenset({"parking_aisle", "driveway", "drive-through"})

#: Columns looked for, in order, to find the road class of a GeoDataFrame edge.
CLASS_COLUMNS = ("road_class", "highway", "type", "fclass")

_GEOD = Geod(ellps="WGS84")

EdgeSelector = str | Iterable[Hashable] | np.ndarray | pd.Series


def normalise_class(value: Any) -> str:
    """``"highway.primary"`` -> ``"primary"``; osmnx lists ``"['a', 'b']"`` -> first item."""
    if isinstance(value, (list, tuple)) and value:
        value = value[0]
    s = str(value).strip()
    if s.startswith("[") and s.endswith("]"):
        try:
            items = ast.literal_eval(s)
            if items:
                s = str(items[0])
        except (ValueError, SyntaxError):
            pass
    return s[len("highway.") :] if s.startswith("highway.") else s


def speed_table(speeds: Mapping[str, float] | None = None) -> dict[str, float]:
    """Default speeds (km/h) updated with ``speeds``; keys may carry a ``highway.`` prefix."""
    table = dict(DEFAULT_SPEEDS_KMH)
    for key, kmh in (speeds or {}).items():
        try:
            value = float(kmh)
        except (TypeError, ValueError) as err:
            raise ValidationError(f"speeds[{key!r}] = {kmh!r} is not a number (km/h)") from err
        if not (math.isfinite(value) and value > 0):
            raise ValidationError(f"speeds[{key!r}] = {kmh!r}: give a positive speed in km/h")
        table[normalise_class(key)] = value
    return table


def geodesic_length_m(line: LineString) -> float:
    """Length of a lon/lat LineString on the WGS 84 ellipsoid, metres."""
    return float(_GEOD.geometry_length(line))


class RoadGraph:
    """A directed road multigraph with travel times and hazard state (see module doc).

    Build it with :meth:`from_edges_geojson`, :meth:`from_geodataframe`,
    :meth:`from_osm_xml` or :func:`load_road_graph`. The constructor takes a
    ``networkx.MultiDiGraph`` whose edges are keyed by id and already carry
    ``length_m``, ``road_class``, ``speed_mps`` and ``geometry``, and whose
    nodes carry ``x``/``y``; it adds the derived attributes.
    """

    def __init__(self, graph: nx.MultiDiGraph):
        if not isinstance(graph, nx.MultiDiGraph):
            raise GraphError(f"RoadGraph needs a networkx.MultiDiGraph, got {type(graph).__name__}")
        self.graph = graph
        graph.graph.setdefault("crs", WGS84)
        graph.graph.setdefault("projected_crs", WORKING_CRS)
        self._edge_index: dict[Hashable, tuple[Hashable, Hashable]] = {}
        for u, v, k, d in graph.edges(keys=True, data=True):
            if k in self._edge_index:
                raise GraphError(
                    f"edge id {k!r} occurs twice (u={u!r}, v={v!r}); ids must be unique"
                )
            self._edge_index[k] = (u, v)
            self._init_edge(k, d)
        self._project_nodes()
        self._kdtree = None
        self._kd_nodes: list[Hashable] = []

    # ------------------------------------------------------------ building
    @staticmethod
    def _init_edge(key: Hashable, d: dict) -> None:
        values = {}
        for name, lower_ok in (("length_m", True), ("speed_mps", False)):
            if name not in d:
                raise GraphError(f"edge {key!r} has no {name!r} attribute")
            try:
                x = float(d[name])
            except (TypeError, ValueError):
                x = math.nan
            if not (math.isfinite(x) and (x >= 0 if lower_ok else x > 0)):
                raise ValidationError(
                    f"edge {key!r}: {name} = {d[name]!r}; must be a finite number "
                    + (">= 0 m" if lower_ok else "> 0 m/s")
                )
            values[name] = x
        length, speed = values["length_m"], values["speed_mps"]
        d["length_m"] = length
        d["speed_mps"] = speed
        d["free_time_s"] = length / speed
        d.setdefault("closed_by", set())
        d.setdefault("slowed_by", {})
        d["slow_factor"] = float(np.prod(list(d["slowed_by"].values()))) if d["slowed_by"] else 1.0
        d["closed"] = bool(d["closed_by"])
        d["travel_time_s"] = d["free_time_s"] * d["slow_factor"]

    def _project_nodes(self) -> None:
        nodes = list(self.graph.nodes)
        if not nodes:
            return
        for n in nodes:
            if "x" not in self.graph.nodes[n] or "y" not in self.graph.nodes[n]:
                raise GraphError(f"node {n!r} has no x/y (lon/lat) attributes")
        lon = np.array([self.graph.nodes[n]["x"] for n in nodes], dtype=float)
        lat = np.array([self.graph.nodes[n]["y"] for n in nodes], dtype=float)
        bad = ~(np.isfinite(lon) & np.isfinite(lat) & (np.abs(lat) <= 90) & (np.abs(lon) <= 180))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValidationError(
                f"node {nodes[i]!r}: x/y = ({lon[i]!r}, {lat[i]!r}) is not a lon/lat in degrees"
            )
        east, north = transformer(WGS84, WORKING_CRS).transform(lon, lat)
        for n, e, no in zip(nodes, east, north, strict=True):
            self.graph.nodes[n]["east_m"] = float(e)
            self.graph.nodes[n]["north_m"] = float(no)

    @classmethod
    def from_geodataframe(
        cls,
        edges: gpd.GeoDataFrame,
        nodes: gpd.GeoDataFrame | None = None,
        *,
        drivable_only: bool = True,
        speeds: Mapping[str, float] | None = None,
        classes: Iterable[str] | None = None,
    ) -> RoadGraph:
        """Build from directed edge lines with ``u``/``v`` node-id columns.

        Parameters
        ----------
        edges : one row per *directed* edge (a two-way street is two rows),
            LineString geometry drawn from u to v; columns ``u``, ``v``, a
            class column (first of :data:`CLASS_COLUMNS` present), optional
            ``id``, ``length_m``, ``name``, ``osm_way``, ``oneway``.
        nodes : optional points with an ``id`` column (or index) giving node
            positions; else each node sits at the first/last vertex of its edges.
        drivable_only : keep only ``classes`` (default :data:`DRIVABLE_CLASSES`).
        speeds : per-class overrides of :data:`DEFAULT_SPEEDS_KMH`, km/h.
        classes : the classes kept when ``drivable_only``.

        Raises
        ------
        GraphError : a missing ``u``/``v``/class column, duplicate ids, or a
            kept class with no speed.
        ValidationError : a negative or non-finite length.
        """
        missing = [c for c in ("u", "v") if c not in edges.columns]
        if missing:
            raise GraphError(
                f"road edges lack column(s) {missing}: each edge row needs 'u' and 'v' "
                f"(from/to node ids); columns present: {list(edges.columns)}"
            )
        class_col = next((c for c in CLASS_COLUMNS if c in edges.columns), None)
        if class_col is None:
            raise GraphError(
                f"road edges have no road-class column: expected one of {list(CLASS_COLUMNS)}, "
                f"got {list(edges.columns)}"
            )
        edges = _to_wgs84(edges, "road edges")
        table = speed_table(speeds)
        keep = frozenset(normalise_class(c) for c in (classes or DRIVABLE_CLASSES))
        rc = edges[class_col].map(normalise_class)
        if drivable_only:
            edges, rc = edges[rc.isin(keep)], rc[rc.isin(keep)]
        unknown = sorted(set(rc) - set(table))
        if unknown:
            raise GraphError(
                f"no speed for road class(es) {unknown} (column {class_col!r}): pass "
                f"speeds={{{unknown[0]!r}: <km/h>, ...}} or drop them with drivable_only=True"
            )
        if "length_m" in edges.columns:
            lengths = pd.to_numeric(edges["length_m"], errors="coerce").to_numpy(dtype=float)
        else:
            lengths = np.full(len(edges), np.nan)
        ids = edges["id"].astype(str).tolist() if "id" in edges.columns else None

        node_xy: dict[Hashable, tuple[float, float]] = {}
        if nodes is not None:
            nodes = _to_wgs84(nodes, "road nodes")
            nid = nodes["id"] if "id" in nodes.columns else nodes.index.to_series()
            for n, p, kind in zip(
                nid, nodes.geometry, nodes.get("type", [None] * len(nodes)), strict=True
            ):
                node_xy[n] = (p.x, p.y, kind)
        G = nx.MultiDiGraph(crs=WGS84, projected_crs=WORKING_CRS)
        optional = [c for c in ("name", "osm_way", "oneway") if c in edges.columns]
        for i, (u, v, geom, cls_) in enumerate(
            zip(edges["u"], edges["v"], edges.geometry, rc, strict=True)
        ):
            key = ids[i] if ids is not None else f"{u}->{v}#{i}"
            if geom is None or geom.is_empty:
                raise GraphError(f"edge {key!r} (u={u!r}, v={v!r}) has no geometry")
            if geom.geom_type == "MultiLineString":
                geom = _merge_multiline(geom, key)
            length = float(lengths[i])
            if math.isnan(length):
                length = geodesic_length_m(geom)
            elif not (math.isfinite(length) and length >= 0):
                raise ValidationError(
                    f"edge {key!r}: length_m = {length!r}; "
                    "lengths must be finite and >= 0 m (fix the input or drop the column)"
                )
            for n, xy in ((u, geom.coords[0]), (v, geom.coords[-1])):
                if n not in G:
                    if n in node_xy:
                        x, y, kind = node_xy[n]
                        G.add_node(n, x=float(x), y=float(y))
                        if isinstance(kind, str):
                            G.nodes[n]["junction"] = kind
                    else:
                        G.add_node(n, x=float(xy[0]), y=float(xy[1]))
            if G.has_edge(u, v, key):
                raise GraphError(f"edge id {key!r} occurs twice; ids must be unique")
            attrs = {
                "id": key,
                "length_m": float(length),
                "road_class": cls_,
                "speed_mps": table[cls_] / 3.6,
                "geometry": geom,
            }
            for c in optional:
                val = edges[c].iloc[i]
                attrs[c] = None if _isna(val) else val
            G.add_edge(u, v, key=key, **attrs)
        return cls(G)

    @classmethod
    def from_edges_geojson(
        cls,
        path: str | os.PathLike,
        drivable_only: bool = True,
        speeds: Mapping[str, float] | None = None,
        *,
        classes: Iterable[str] | None = None,
        nodes_path: str | os.PathLike | None = None,
        datum: str = "wgs84",
    ) -> RoadGraph:
        """Read directed edge lines (GeoJSON, GeoPackage, GeoParquet) and build the graph.

        ``datum`` declares the lon/lat datum of the files (``"gcj02"`` for
        Amap-derived networks: the offset is removed on load, see
        :func:`gis.vector.read_vector`).

        When ``nodes_path`` is not given and the file is called
        ``<name>_edges.<ext>``, a sibling ``<name>_nodes.<ext>`` is used for
        node positions if it exists (SUMO exports place junctions up to
        ~18 m from the ends of edge shapes in central Futian). See
        :meth:`from_geodataframe` for the columns and errors.
        """
        path = Path(path)
        edges = read_vector(path, datum=datum)
        nodes = None
        if nodes_path is None and "_edges" in path.stem:
            sibling = path.with_name(path.name.replace("_edges", "_nodes"))
            nodes_path = sibling if sibling.exists() else None
        if nodes_path is not None:
            nodes = read_vector(Path(nodes_path), datum=datum)
        g = cls.from_geodataframe(
            edges, nodes, drivable_only=drivable_only, speeds=speeds, classes=classes
        )
        g.graph.graph["source"] = str(path)
        return g

    @classmethod
    def from_osm_xml(cls, path: str | os.PathLike, speeds: Mapping[str, float] | None = None,
                     **options) -> RoadGraph:
        """Build from raw OSM XML; ``options`` (``classes=``, ``use_maxspeed=``) as :meth:`_from_osm`."""
        return cls._from_osm(osm.read_osm_xml, path, speeds, **options)

    @classmethod
    def from_overpass_json(cls, path: str | os.PathLike, speeds: Mapping[str, float] | None = None,
                           **options) -> RoadGraph:
        """Build from an Overpass API JSON answer (e.g. the data set's
        ``osm/central_drive_overpass_20241006.json``) by the rules of :meth:`from_osm_xml`."""
        return cls._from_osm(osm.read_overpass_json, path, speeds, **options)

    @classmethod
    def _from_osm(
        cls,
        reader,
        path: str | os.PathLike,
        speeds: Mapping[str, float] | None = None,
        *,
        classes: Iterable[str] | None = None,
        use_maxspeed: bool = True,
    ) -> RoadGraph:
        """Build from raw OSM read by ``reader`` (see :mod:`gis.osm` for the splitting and tag rules).

        Keeps ways whose ``highway`` is in ``classes`` (default
        :data:`DRIVABLE_CLASSES`) and that motor vehicles may use
        (:func:`gis.osm.is_motor_accessible`; service car-park aisles and
        driveways dropped). Each segment becomes one edge per allowed
        direction, ids ``"<way>#<seq>"`` forward and ``"-<way>#<seq>"``
        backward (the SUMO convention). Speed is ``maxspeed`` when tagged and
        ``use_maxspeed``, else the class default; length is geodesic.
        """
        keep = frozenset(normalise_class(c) for c in (classes or DRIVABLE_CLASSES))
        table = speed_table(speeds)
        missing_speed = sorted(keep - set(table))
        if missing_speed:
            raise GraphError(
                f"no speed for road class(es) {missing_speed}: pass speeds={{class: km/h}}"
            )

        def keep_way(tags: dict[str, str]) -> bool:
            return (
                tags.get("highway") in keep
                and osm.is_motor_accessible(tags)
                and tags.get("service") not in EXCLUDED_SERVICE
            )

        coords, ways = reader(path, keep_way)
        segments = osm.split_ways(ways, coords)
        G = nx.MultiDiGraph(crs=WGS84, projected_crs=WORKING_CRS, source=str(path))
        for seg in segments:
            tags = seg.tags
            road_class = tags["highway"]
            direction = osm.oneway_direction(tags)
            line = LineString([coords[n] for n in seg.nodes])
            length = geodesic_length_m(line)
            kmh = table[road_class]
            source = "class"
            if use_maxspeed:
                tagged = osm.parse_maxspeed(tags.get("maxspeed"))
                if tagged is not None:
                    kmh, source = tagged, "maxspeed"
            u, v = seg.nodes[0], seg.nodes[-1]
            for n in (u, v):
                if n not in G:
                    G.add_node(n, x=coords[n][0], y=coords[n][1])
            common = {
                "length_m": length,
                "road_class": road_class,
                "name": tags.get("name"),
                "osm_way": seg.way_id,
                "oneway": direction != 0,
            }
            for sign, a, b, geom, dir_tag in (
                (1, u, v, line, "maxspeed:forward"),
                (-1, v, u, LineString(line.coords[::-1]), "maxspeed:backward"),
            ):
                if direction not in (0, sign):
                    continue
                speed_kmh, speed_source = kmh, source
                if use_maxspeed:
                    tagged = osm.parse_maxspeed(tags.get(dir_tag))
                    if tagged is not None:
                        speed_kmh, speed_source = tagged, "maxspeed"
                key = f"{seg.way_id}#{seg.seq}" if sign == 1 else f"-{seg.way_id}#{seg.seq}"
                G.add_edge(
                    a, b, key=key, id=key, geometry=geom, speed_mps=speed_kmh / 3.6,
                    speed_source=speed_source, **common,
                )  # fmt: skip
        return cls(G)

    # ------------------------------------------------------------ inspection
    @property
    def n_nodes(self) -> int:
        return self.graph.number_of_nodes()

    @property
    def n_edges(self) -> int:
        return self.graph.number_of_edges()

    @property
    def edge_ids(self) -> list[Hashable]:
        """Edge ids in graph order: the row order of :meth:`to_geodataframe` and of masks."""
        return list(self._edge_index)

    def edge(self, edge_id: Hashable) -> dict:
        """The attribute dict of one edge (live: do not edit hazard fields by hand)."""
        u, v = self._endpoints(edge_id)
        return self.graph.edges[u, v, edge_id]

    def endpoints(self, edge_id: Hashable) -> tuple[Hashable, Hashable]:
        """(u, v) of an edge."""
        return self._endpoints(edge_id)

    def _endpoints(self, edge_id: Hashable) -> tuple[Hashable, Hashable]:
        try:
            return self._edge_index[edge_id]
        except KeyError:
            raise GraphError(f"no edge with id {edge_id!r} in this road graph") from None

    def _check_node(self, node: Hashable, what: str) -> None:
        if node not in self.graph:
            raise GraphError(
                f"{what} node {node!r} is not in the road graph; use nearest_node(lon, lat)"
            )

    def __repr__(self) -> str:
        closed = sum(1 for *_, d in self.graph.edges(data=True) if d["closed"])
        return f"RoadGraph({self.n_nodes} nodes, {self.n_edges} edges, {closed} closed)"

    # ------------------------------------------------------------ hazards
    def _select(self, ids_or_mask: EdgeSelector) -> list[Hashable]:
        if isinstance(ids_or_mask, (str, bytes)) or not isinstance(ids_or_mask, Iterable):
            ids_or_mask = [ids_or_mask]
        arr = ids_or_mask.to_numpy() if isinstance(ids_or_mask, pd.Series) else ids_or_mask
        if (
            isinstance(arr, np.ndarray)
            and arr.dtype == bool
            or (isinstance(arr, list) and arr and all(isinstance(a, (bool, np.bool_)) for a in arr))
        ):
            mask = np.asarray(arr, dtype=bool)
            if mask.shape != (self.n_edges,):
                raise ValidationError(
                    f"edge mask has shape {mask.shape}; it must have one entry per edge "
                    f"({self.n_edges}), in the order of edge_ids / to_geodataframe()"
                )
            all_ids = self.edge_ids
            return [all_ids[i] for i in np.flatnonzero(mask)]
        ids = list(arr)
        for e in ids:
            self._endpoints(e)
        return ids

    def close_edges(self, ids_or_mask: EdgeSelector, reason: str) -> int:
        """Close edges (ids, one id, or a boolean mask over :attr:`edge_ids`) for ``reason``.

        Closed edges are hidden from every routing query until reopened.
        Returns the number of edges that were open and are now closed.
        """
        n = 0
        for e in self._select(ids_or_mask):
            d = self.edge(e)
            n += not d["closed"]
            d["closed_by"].add(str(reason))
            d["closed"] = True
        return n

    def slow_edges(self, ids: EdgeSelector, factor: float, reason: str) -> int:
        """Multiply travel time by ``factor`` (>= 1) on these edges, recorded under ``reason``.

        travel_time_s = free_time_s x prod(factors of active reasons); a
        second call with the same reason replaces its factor. Returns the
        number of edges affected.
        """
        f = float(factor)
        if not (math.isfinite(f) and f >= 1.0):
            raise ValidationError(
                f"slow factor = {factor!r}: must be a finite number >= 1 "
                "(1 = no slow-down, 2 = twice the travel time)"
            )
        sel = self._select(ids)
        for e in sel:
            d = self.edge(e)
            d["slowed_by"][str(reason)] = f
            self._refresh(d)
        return len(sel)

    def reopen(self, ids: EdgeSelector | None = None, reason: str | None = None) -> int:
        """Lift closures and slow-downs: all, or only for ``ids`` and/or ``reason``.

        Returns the number of edges whose state changed.
        """
        sel = self.edge_ids if ids is None else self._select(ids)
        changed = 0
        for e in sel:
            d = self.edge(e)
            before = (frozenset(d["closed_by"]), tuple(sorted(d["slowed_by"].items())))
            if reason is None:
                d["closed_by"].clear()
                d["slowed_by"].clear()
            else:
                d["closed_by"].discard(str(reason))
                d["slowed_by"].pop(str(reason), None)
            self._refresh(d)
            after = (frozenset(d["closed_by"]), tuple(sorted(d["slowed_by"].items())))
            changed += before != after
        return changed

    @staticmethod
    def _refresh(d: dict) -> None:
        d["closed"] = bool(d["closed_by"])
        d["slow_factor"] = float(np.prod(list(d["slowed_by"].values()))) if d["slowed_by"] else 1.0
        d["travel_time_s"] = d["free_time_s"] * d["slow_factor"]

    def edges_intersecting(self, geometry, crs: str = WGS84, buffer_m: float = 0.0) -> list:
        """Ids of edges whose line meets ``geometry`` (e.g. a flood or fire polygon).

        ``geometry`` is in ``crs``; ``buffer_m`` grows it (in EPSG:4547
        metres) first. Feed the result to :meth:`close_edges`.
        """
        gdf = self.to_geodataframe()[["id", "geometry"]].to_crs(WORKING_CRS)
        shape = gpd.GeoSeries([geometry], crs=crs).to_crs(WORKING_CRS).iloc[0]
        if buffer_m:
            shape = shape.buffer(buffer_m)
        hits = gdf.geometry.intersects(shape).to_numpy()
        return gdf["id"][hits].tolist()

    # ------------------------------------------------------------ routing
    def _weight(self, weight: str):
        """A networkx weight function: min over open parallel edges; None hides the pair."""

        def w(_u, _v, data: dict) -> float | None:
            best = None
            for d in data.values():
                if d["closed"]:
                    continue
                c = d[weight]
                if best is None or c < best:
                    best = c
            return best

        return w

    def shortest_path(
        self, orig: Hashable, dest: Hashable, weight: str = "travel_time_s"
    ) -> tuple[list[Hashable], float]:
        """Dijkstra shortest path over open edges: (node list, total cost in weight's unit).

        Raises GraphError when a node is unknown or no open route exists.
        """
        self._check_node(orig, "origin")
        self._check_node(dest, "destination")
        self._check_weight(weight)
        try:
            cost, nodes = nx.single_source_dijkstra(
                self.graph, orig, dest, weight=self._weight(weight)
            )
        except nx.NetworkXNoPath:
            raise GraphError(
                f"no open route from {orig!r} to {dest!r} ({self._n_closed()} edges closed); "
                "check closures or route within largest_scc()"
            ) from None
        return nodes, float(cost)

    def path_edges(self, nodes: list[Hashable], weight: str = "travel_time_s") -> list[Hashable]:
        """Edge ids along a node path, taking the cheapest open parallel edge at each step."""
        self._check_weight(weight)
        out = []
        for a, b in zip(nodes[:-1], nodes[1:], strict=True):
            cands = [
                (d[weight], k)
                for k, d in self.graph.get_edge_data(a, b, default={}).items()
                if not d["closed"]
            ]
            if not cands:
                raise GraphError(f"no open edge from {a!r} to {b!r} on this path")
            out.append(min(cands, key=lambda t: t[0])[1])
        return out

    def travel_times_from(
        self, origin: Hashable, cutoff: float | None = None, weight: str = "travel_time_s"
    ) -> dict[Hashable, float]:
        """Single-source Dijkstra costs to every reachable node (within ``cutoff``)."""
        self._check_node(origin, "origin")
        self._check_weight(weight)
        return dict(
            nx.single_source_dijkstra_path_length(
                self.graph, origin, cutoff=cutoff, weight=self._weight(weight)
            )
        )

    def _check_weight(self, weight: str) -> None:
        if self.n_edges and weight not in next(iter(self.graph.edges(data=True)))[2]:
            raise ValidationError(
                f"weight={weight!r} is not an edge attribute; use 'travel_time_s', "
                "'free_time_s' or 'length_m'"
            )

    def _n_closed(self) -> int:
        return sum(1 for *_, d in self.graph.edges(data=True) if d["closed"])

    def largest_scc(self, respect_closures: bool = True) -> RoadGraph:
        """The largest strongly connected component as a new RoadGraph (hazards copied).

        With ``respect_closures`` closed edges do not connect nodes (they are
        kept in the result only when both ends are in the component).
        """
        G = self.graph
        if respect_closures:
            G = nx.subgraph_view(G, filter_edge=lambda u, v, k: not self.graph[u][v][k]["closed"])
        if self.n_nodes == 0:
            raise GraphError("the road graph is empty")
        comp = max(nx.strongly_connected_components(G), key=len)
        return self._subgraph(comp)

    def within(self, area, crs: str = WGS84, buffer_m: float = 0.0) -> RoadGraph:
        """The part of the graph inside ``area`` as a new RoadGraph (hazards copied).

        A node is kept when it lies inside ``area`` (a shapely polygon in
        ``crs``, grown by ``buffer_m`` metres in EPSG:4547); an edge when both
        its ends are kept. E.g. the Shenzhen side of a network that crosses
        the Shenzhen River into Hong Kong: ``graph.within(city_polygon)``.
        Follow with :meth:`largest_scc` to route on it.
        """
        from shapely import contains_xy

        shape = gpd.GeoSeries([area], crs=crs).to_crs(WORKING_CRS).iloc[0]
        if buffer_m:
            shape = shape.buffer(buffer_m)
        ids = list(self.graph.nodes)
        xy = np.array([(self.graph.nodes[n]["east_m"], self.graph.nodes[n]["north_m"]) for n in ids],
                      dtype=float).reshape(-1, 2)
        inside = contains_xy(shape, xy[:, 0], xy[:, 1])
        return self._subgraph([n for n, keep in zip(ids, inside, strict=True) if keep])

    def _subgraph(self, nodes) -> RoadGraph:
        """A new RoadGraph of ``nodes`` and the edges between them, hazard state copied."""
        sub = self.graph.subgraph(nodes).copy()
        for *_, d in sub.edges(data=True):
            d["closed_by"] = set(d["closed_by"])
            d["slowed_by"] = dict(d["slowed_by"])
        return RoadGraph(sub)

    # ------------------------------------------------------------ nearest node
    def nearest_node(self, lon, lat, return_distance: bool = False):
        """The node nearest to (lon, lat) in EPSG:4547 metres (scipy cKDTree).

        Scalars give one node id; arrays give a list. With
        ``return_distance`` also the planar distance(s) in metres.
        """
        if self._kdtree is None:
            from scipy.spatial import cKDTree

            if self.n_nodes == 0:
                raise GraphError("the road graph is empty: no nearest node")
            self._kd_nodes = list(self.graph.nodes)
            xy = np.array(
                [
                    (self.graph.nodes[n]["east_m"], self.graph.nodes[n]["north_m"])
                    for n in self._kd_nodes
                ]
            )
            self._kdtree = cKDTree(xy)
        scalar = np.ndim(lon) == 0 and np.ndim(lat) == 0
        lon_a = np.atleast_1d(np.asarray(lon, dtype=float))
        lat_a = np.atleast_1d(np.asarray(lat, dtype=float))
        if not (np.isfinite(lon_a).all() and np.isfinite(lat_a).all()):
            raise ValidationError(f"nearest_node: lon/lat must be finite, got {lon!r}, {lat!r}")
        e, n = transformer(WGS84, WORKING_CRS).transform(lon_a, lat_a)
        dist, idx = self._kdtree.query(np.column_stack([e, n]))
        nodes = [self._kd_nodes[i] for i in np.atleast_1d(idx)]
        dist = np.atleast_1d(dist)
        if scalar:
            return (nodes[0], float(dist[0])) if return_distance else nodes[0]
        return (nodes, dist) if return_distance else nodes

    # ------------------------------------------------------------ export
    def to_geodataframe(self) -> gpd.GeoDataFrame:
        """Edges as a GeoDataFrame in EPSG:4326, one row per edge in :attr:`edge_ids` order.

        Columns: id, u, v, road_class, name, length_m, speed_mps,
        free_time_s, travel_time_s, slow_factor, closed, slowed,
        hazard_reasons ("; "-joined), oneway, osm_way, geometry. Node ids
        are written as strings so mixed-type ids survive GeoJSON/GeoParquet.
        """
        rows = []
        for u, v, k, d in self.graph.edges(keys=True, data=True):
            reasons = sorted(d["closed_by"]) + sorted(set(d["slowed_by"]) - d["closed_by"])
            rows.append(
                {
                    "id": str(k),
                    "u": str(u),
                    "v": str(v),
                    "road_class": d["road_class"],
                    "name": d.get("name"),
                    "length_m": d["length_m"],
                    "speed_mps": d["speed_mps"],
                    "free_time_s": d["free_time_s"],
                    "travel_time_s": d["travel_time_s"],
                    "slow_factor": d["slow_factor"],
                    "closed": d["closed"],
                    "slowed": d["slow_factor"] > 1.0,
                    "hazard_reasons": "; ".join(reasons),
                    "oneway": d.get("oneway"),
                    "osm_way": None if d.get("osm_way") is None else str(d["osm_way"]),
                    "geometry": d["geometry"],
                }
            )
        cols = [
            "id", "u", "v", "road_class", "name", "length_m", "speed_mps", "free_time_s",
            "travel_time_s", "slow_factor", "closed", "slowed", "hazard_reasons", "oneway",
            "osm_way", "geometry",
        ]  # fmt: skip
        return gpd.GeoDataFrame(pd.DataFrame(rows, columns=cols), geometry="geometry", crs=WGS84)

    def nodes_geodataframe(self) -> gpd.GeoDataFrame:
        """Nodes as points in EPSG:4326 with id (string), east_m, north_m."""
        ids = list(self.graph.nodes)
        data = self.graph.nodes
        return gpd.GeoDataFrame(
            {
                "id": [str(n) for n in ids],
                "east_m": [data[n]["east_m"] for n in ids],
                "north_m": [data[n]["north_m"] for n in ids],
            },
            geometry=gpd.points_from_xy([data[n]["x"] for n in ids], [data[n]["y"] for n in ids]),
            crs=WGS84,
        )


# ---------------------------------------------------------------- helpers
def _isna(val) -> bool:
    try:
        return bool(pd.isna(val))
    except (TypeError, ValueError):
        return False


def _merge_multiline(geom, key) -> LineString:
    from shapely.ops import linemerge

    merged = linemerge(geom)
    if merged.geom_type != "LineString":
        raise GraphError(f"edge {key!r}: geometry is a MultiLineString with gaps; give one line")
    return merged


def _to_wgs84(gdf: gpd.GeoDataFrame, what: str) -> gpd.GeoDataFrame:
    if gdf.crs is None:
        b = gdf.total_bounds
        if len(gdf) and not (-180 <= b[0] <= b[2] <= 180 and -90 <= b[1] <= b[3] <= 90):
            raise CRSError(
                f"{what} have no CRS and bounds {tuple(round(x, 3) for x in b)} are not lon/lat: "
                "set the CRS of the file (e.g. EPSG:4547)"
            )
        return gdf.set_crs(WGS84)
    if crs_string(gdf.crs) != WGS84 and not get_crs(crs_string(gdf.crs)).equals(get_crs(WGS84)):
        return gdf.to_crs(WGS84)
    return gdf


VECTOR_SUFFIXES = (".geojson", ".json", ".gpkg", ".parquet", ".geoparquet", ".shp")
OSM_SUFFIXES = (".osm", ".xml")


def load_road_graph(path: str | os.PathLike, **kwargs) -> RoadGraph:
    """Load a road graph, choosing the reader by suffix.

    ``.geojson``/``.json``/``.gpkg``/``.parquet``/``.geoparquet``/``.shp``:
    :meth:`RoadGraph.from_edges_geojson`, except a ``.json`` Overpass API answer:
    :meth:`RoadGraph.from_overpass_json`; ``.osm``/``.xml``:
    :meth:`RoadGraph.from_osm_xml`. Keyword arguments go to the reader.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.exists():
        raise DataMissingError(f"road network file not found: {path}")
    if suffix == ".json" and osm.is_overpass_json(path):
        return RoadGraph.from_overpass_json(path, **kwargs)
    if suffix in VECTOR_SUFFIXES:
        return RoadGraph.from_edges_geojson(path, **kwargs)
    if suffix in OSM_SUFFIXES:
        return RoadGraph.from_osm_xml(path, **kwargs)
    raise GraphError(
        f"cannot tell the road network format of {path.name!r} from suffix {suffix!r}: "
        f"use one of {list(VECTOR_SUFFIXES + OSM_SUFFIXES)} (OSM PBF: convert with osmium first)"
    )
