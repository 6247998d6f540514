"""Road graphs: construction, speeds, hazards and routing (gis/roads.py).

Facts about central Futian come from the data README
(shenzhen/README.md, roads row): 3,216 directed edges, 611.7 km, 25 rail and
10 subway edges, drivable classes' largest strongly connected part 1,131
nodes; ``speed_mps`` in the file are class defaults.
"""

from __future__ import annotations

import geopandas as gpd
import networkx as nx
import numpy as np
import pytest
from shapely.geometry import LineString, Polygon

from gis.roads import (
    DEFAULT_SPEEDS_KMH,
    DRIVABLE_CLASSES,
    EMERGENCY_CLASSES,
    RoadGraph,
    load_road_graph,
    normalise_class,
)
from twin.errors import DataMissingError, GraphError, ValidationError

# Nodes of the Futian network (ids from futian_nodes.geojson), all in the LSCC.
ORIG = "cluster_2868134337_409392099"  # near 114.0505 E, 22.5335 N
DEST = "2750252825"  # near 114.045 E, 22.545 N
VIA = "2750667749"  # near 114.060 E, 22.540 N

NON_ROAD_SPEEDS = {  # km/h, only to load every edge (drivable_only=False)
    "railway.rail": 80,
    "railway.subway": 60,
    "footway": 5,
    "pedestrian": 5,
    "steps": 2,
    "path": 5,
    "cycleway": 15,
}


# ------------------------------------------------------------------ synthetic
def toy_edges(**overrides) -> gpd.GeoDataFrame:
    """A square a-b-c-d with two routes a->c, and a parallel pair a->b."""
    pts = {
        "a": (114.000, 22.500),
        "b": (114.001, 22.500),
        "c": (114.001, 22.501),
        "d": (114.000, 22.501),
    }
    rows = [
        ("ab", "a", "b", "primary"),
        ("ab2", "a", "b", "residential"),  # parallel, slower
        ("bc", "b", "c", "primary"),
        ("ad", "a", "d", "secondary"),
        ("dc", "d", "c", "secondary"),
        ("ca", "c", "a", "tertiary"),
    ]
    data = {
        "id": [r[0] for r in rows],
        "u": [r[1] for r in rows],
        "v": [r[2] for r in rows],
        "highway": [r[3] for r in rows],
        "geometry": [LineString([pts[r[1]], pts[r[2]]]) for r in rows],
    }
    data.update(overrides)
    return gpd.GeoDataFrame(data, crs="EPSG:4326")


@pytest.fixture()
def toy() -> RoadGraph:
    return RoadGraph.from_geodataframe(toy_edges())


def test_toy_speeds_times_and_projection(toy):
    d = toy.edge("ab")
    assert d["speed_mps"] == pytest.approx(50 / 3.6)
    assert d["length_m"] == pytest.approx(102.8, abs=0.5)  # 0.001 deg of lon at 22.5 N
    assert d["travel_time_s"] == pytest.approx(d["length_m"] / d["speed_mps"])
    a, b = toy.graph.nodes["a"], toy.graph.nodes["b"]
    # EPSG:4547 metres: 0.001 deg east is ~102.8 m east and ~0 m north
    assert b["east_m"] - a["east_m"] == pytest.approx(102.8, abs=0.5)
    assert abs(b["north_m"] - a["north_m"]) < 0.5
    # 114 E is the central meridian of EPSG:4547: false easting 500 km, no zone prefix
    assert a["east_m"] == pytest.approx(500_000.0, abs=0.01)


def test_parallel_edges_kept_and_cheapest_used(toy):
    assert toy.graph.number_of_edges("a", "b") == 2
    nodes, cost = toy.shortest_path("a", "b")
    assert toy.path_edges(nodes) == ["ab"]
    toy.close_edges("ab", reason="crash")
    nodes2, cost2 = toy.shortest_path("a", "b")
    assert toy.path_edges(nodes2) == ["ab2"]
    assert cost2 == pytest.approx(toy.edge("ab2")["travel_time_s"]) and cost2 > cost


def test_closure_reasons_are_independent(toy):
    toy.close_edges(["ab", "ab2"], reason="flood")
    toy.close_edges(["ab"], reason="fire")
    with pytest.raises(GraphError, match="no open route from 'a' to 'b'"):
        toy.shortest_path("a", "b")  # b is entered only by the two closed edges
    assert toy.reopen(reason="flood") == 2
    assert toy.edge("ab")["closed"] and not toy.edge("ab2")["closed"]
    assert toy.reopen() == 1
    assert not toy.edge("ab")["closed"]


def test_no_route_raises(toy):
    toy.close_edges(["ab", "ab2", "ad"], reason="flood")
    with pytest.raises(GraphError, match="no open route"):
        toy.shortest_path("a", "c")
    assert set(toy.travel_times_from("a")) == {"a"}


def test_mask_and_slow_stacking(toy):
    mask = np.array([i == "ad" for i in toy.edge_ids])
    assert toy.close_edges(mask, reason="smoke") == 1
    assert toy.edge("ad")["closed"]
    base = toy.edge("bc")["free_time_s"]
    toy.slow_edges(["bc"], 2.0, reason="rain")
    toy.slow_edges(["bc"], 1.5, reason="debris")
    assert toy.edge("bc")["travel_time_s"] == pytest.approx(3.0 * base)
    toy.slow_edges(["bc"], 3.0, reason="rain")  # replaces the rain factor
    assert toy.edge("bc")["travel_time_s"] == pytest.approx(4.5 * base)
    gdf = toy.to_geodataframe().set_index("id")
    assert gdf.loc["bc", "slowed"] and not gdf.loc["bc", "closed"]
    assert gdf.loc["ad", "closed"] and gdf.loc["ad", "hazard_reasons"] == "smoke"
    assert gdf.loc["bc", "slow_factor"] == pytest.approx(4.5)
    with pytest.raises(ValidationError, match="mask has shape"):
        toy.close_edges(np.array([True, False]), reason="x")


def test_largest_scc_respects_closures(toy):
    assert toy.largest_scc().n_nodes == 4
    toy.close_edges("ca", reason="collapse")  # nothing returns to a
    assert toy.largest_scc().n_nodes == 1
    assert toy.largest_scc(respect_closures=False).n_nodes == 4


def test_within_keeps_nodes_inside_and_edges_between_them(toy):
    toy.close_edges("ab", reason="flood")
    west = Polygon([(113.9995, 22.4995), (114.0005, 22.4995), (114.0005, 22.5015), (113.9995, 22.5015)])
    part = toy.within(west)  # a and d only (b, c at 114.001 E)
    assert set(part.graph.nodes) == {"a", "d"}
    assert part.edge_ids == ["ad"]
    # 0.0005 deg of longitude at 22.5 N is ~51 m: a 60 m margin takes b and c in as well
    assert toy.within(west, buffer_m=60.0).n_nodes == 4
    assert toy.within(west, buffer_m=60.0).edge("ab")["closed"]  # hazard state copied...
    toy.reopen("ab")
    assert part.n_edges == 1 and toy.n_edges == 6  # ...and the original graph is untouched


def test_edges_intersecting_polygon(toy):
    box = Polygon(
        [(114.0008, 22.4995), (114.0012, 22.4995), (114.0012, 22.5012), (114.0008, 22.5012)]
    )
    hit = set(toy.edges_intersecting(box))
    assert hit == {"ab", "ab2", "bc", "dc", "ca"}  # everything touching x in [0.0008, 0.0012]
    assert "ad" not in hit


@pytest.mark.parametrize(
    "bad, exc, match",
    [
        ({"u": None}, GraphError, r"'u'"),
        ({"highway": ["primary"] * 5 + ["funicular"]}, GraphError, "funicular"),
        ({"length_m": [10.0, 10.0, -5.0, 10.0, 10.0, 10.0]}, ValidationError, r"length_m = -5\.0"),
        ({"id": ["x"] * 6}, GraphError, "'x' occurs twice"),
    ],
)
def test_bad_input_names_field_and_value(bad, exc, match):
    gdf = toy_edges()
    for k, v in bad.items():
        if v is None:
            gdf = gdf.drop(columns=[k])
        else:
            gdf[k] = v
    with pytest.raises(exc, match=match):
        RoadGraph.from_geodataframe(gdf, drivable_only=False)


def test_bad_hazard_and_query_arguments(toy):
    with pytest.raises(ValidationError, match="factor = 0.5"):
        toy.slow_edges(["ab"], 0.5, reason="x")
    with pytest.raises(GraphError, match="'zz'"):
        toy.close_edges(["zz"], reason="x")
    with pytest.raises(GraphError, match="origin node 'q'"):
        toy.shortest_path("q", "a")
    with pytest.raises(ValidationError, match="weight='cost'"):
        toy.shortest_path("a", "c", weight="cost")


def test_speed_overrides_and_classes():
    assert normalise_class("highway.primary_link") == "primary_link"
    assert normalise_class("['residential', 'service']") == "residential"
    g = RoadGraph.from_geodataframe(toy_edges(), speeds={"highway.primary": 72})
    assert g.edge("ab")["speed_mps"] == pytest.approx(20.0)
    with pytest.raises(ValidationError, match="speeds"):
        RoadGraph.from_geodataframe(toy_edges(), speeds={"primary": -1})
    assert DRIVABLE_CLASSES < EMERGENCY_CLASSES
    assert set(EMERGENCY_CLASSES) <= set(DEFAULT_SPEEDS_KMH)


def test_projected_input_is_reprojected():
    gdf = toy_edges().to_crs("EPSG:4547")
    g = RoadGraph.from_geodataframe(gdf)
    assert g.graph.nodes["a"]["x"] == pytest.approx(114.0, abs=1e-9)
    assert g.edge("ab")["length_m"] == pytest.approx(102.8, abs=0.5)


def test_load_road_graph_dispatch_and_errors(tmp_path, toy):
    toy.slow_edges(["bc"], 2.0, reason="rain")
    for name in ("net.geojson", "net.gpkg", "net.parquet"):
        p = tmp_path / name
        gdf = toy.to_geodataframe()
        gdf.to_parquet(p) if name.endswith("parquet") else gdf.to_file(p)
        g = load_road_graph(p)
        assert (g.n_nodes, g.n_edges) == (4, 6)
        # hazards are state, not data: a reload starts open
        assert g.edge("bc")["travel_time_s"] == pytest.approx(toy.edge("bc")["free_time_s"])
    with pytest.raises(DataMissingError):
        load_road_graph(tmp_path / "missing.geojson")
    (tmp_path / "net.csv").write_text("u,v\n")
    with pytest.raises(GraphError, match="'.csv'"):
        load_road_graph(tmp_path / "net.csv")


# ------------------------------------------------------------------ real Futian
@pytest.fixture(scope="module")
def futian_path(shenzhen_dir):
    return shenzhen_dir / "roads" / "futian_edges.geojson"


@pytest.fixture(scope="module")
def futian_raw(futian_path):
    return gpd.read_file(futian_path)


@pytest.fixture()
def futian(futian_path):
    return RoadGraph.from_edges_geojson(futian_path)


@pytest.mark.data
def test_futian_drivable_lscc_is_1131(futian):
    assert futian.largest_scc().n_nodes == 1131  # README fact
    # Which classes give it: adding living_street -> 1,132, service -> 1,245
    # (documented in gis/roads.py); check the latter so the choice stays visible.
    full = RoadGraph.from_edges_geojson(futian.graph.graph["source"], classes=EMERGENCY_CLASSES)
    assert full.largest_scc().n_nodes == 1246


@pytest.mark.data
def test_futian_rail_and_subway_not_drivable(futian, futian_raw):
    rail = futian_raw[futian_raw["type"].str.startswith("railway.")]
    assert len(rail) == 35 and (rail["type"] == "railway.subway").sum() == 10  # README: 25 + 10
    ids = set(futian.edge_ids)
    assert not ids & set(rail["id"])
    assert all(d["road_class"] in DRIVABLE_CLASSES for *_, d in futian.graph.edges(data=True))


@pytest.mark.data
def test_futian_oneway_edges_stay_oneway(futian, futian_raw):
    pairs = set(zip(futian_raw["u"], futian_raw["v"], strict=True))
    drivable = futian_raw[futian_raw["type"].map(normalise_class).isin(DRIVABLE_CLASSES)]
    oneway = [
        (u, v) for u, v in zip(drivable["u"], drivable["v"], strict=True) if (v, u) not in pairs
    ]
    assert len(oneway) > 500  # central Futian has many one-way carriageways
    for u, v in oneway:
        assert futian.graph.has_edge(u, v) and not futian.graph.has_edge(v, u)


@pytest.mark.data
def test_futian_all_edges_total_length(futian_path):
    with pytest.raises(GraphError, match="railway"):
        RoadGraph.from_edges_geojson(futian_path, drivable_only=False)
    g = RoadGraph.from_edges_geojson(futian_path, drivable_only=False, speeds=NON_ROAD_SPEEDS)
    assert g.n_edges == 3216 and g.n_nodes == 1745  # README facts
    total_km = sum(d["length_m"] for *_, d in g.graph.edges(data=True)) / 1000
    assert total_km == pytest.approx(611.7, abs=0.05)


@pytest.mark.data
def test_futian_speeds_by_class_not_file(futian, futian_raw):
    # the file gives every residential edge one of 13.89/5.56/8.33 m/s; ours are by class
    for *_, d in futian.graph.edges(data=True):
        assert d["speed_mps"] == pytest.approx(DEFAULT_SPEEDS_KMH[d["road_class"]] / 3.6)


@pytest.mark.data
def test_futian_nodes_from_node_file_and_nearest(futian, futian_path):
    nodes = gpd.read_file(futian_path.with_name("futian_nodes.geojson")).set_index("id")
    p = nodes.geometry[ORIG]
    assert futian.graph.nodes[ORIG]["x"] == pytest.approx(p.x)
    n, dist = futian.nearest_node(p.x, p.y, return_distance=True)
    assert n == ORIG and dist == pytest.approx(0.0, abs=1e-6)
    # brute force over all nodes in EPSG:4547 for a handful of points
    rng = np.random.default_rng(0)
    lon = rng.uniform(114.03, 114.07, 20)
    lat = rng.uniform(22.51, 22.57, 20)
    got = futian.nearest_node(lon, lat)
    from gis.crs import transformer

    e, no = transformer("EPSG:4326", "EPSG:4547").transform(lon, lat)
    ids = list(futian.graph.nodes)
    xy = np.array(
        [(futian.graph.nodes[i]["east_m"], futian.graph.nodes[i]["north_m"]) for i in ids]
    )
    for k in range(20):
        best = ids[int(np.argmin(np.hypot(xy[:, 0] - e[k], xy[:, 1] - no[k])))]
        assert got[k] == best


def reference_cost(g: RoadGraph, orig, dest, weight="travel_time_s") -> float:
    """Independent check: plain DiGraph keeping the cheapest open parallel edge."""
    D = nx.DiGraph()
    for row in g.to_geodataframe().itertuples():
        if row.closed:
            continue
        w = getattr(row, weight)
        if not D.has_edge(row.u, row.v) or D[row.u][row.v]["w"] > w:
            D.add_edge(row.u, row.v, w=w)
    return nx.dijkstra_path_length(D, str(orig), str(dest), weight="w")


@pytest.mark.data
def test_futian_shortest_path_is_sum_and_minimal(futian):
    nodes, cost = futian.shortest_path(ORIG, DEST)
    edges = futian.path_edges(nodes)
    assert nodes[0] == ORIG and nodes[-1] == DEST and len(edges) == len(nodes) - 1
    assert cost == pytest.approx(sum(futian.edge(e)["travel_time_s"] for e in edges))
    assert cost == pytest.approx(reference_cost(futian, ORIG, DEST))
    # an alternative forced through a third node is never faster
    via = futian.shortest_path(ORIG, VIA)[1] + futian.shortest_path(VIA, DEST)[1]
    assert cost <= via + 1e-9
    # nor is the route that is shortest in metres
    short_nodes, _ = futian.shortest_path(ORIG, DEST, weight="length_m")
    t_short = sum(
        futian.edge(e)["travel_time_s"] for e in futian.path_edges(short_nodes, "length_m")
    )
    assert cost <= t_short + 1e-9
    # single-source Dijkstra agrees
    assert futian.travel_times_from(ORIG)[DEST] == pytest.approx(cost)
    within = futian.travel_times_from(ORIG, cutoff=cost / 2)
    assert DEST not in within and max(within.values()) <= cost / 2


@pytest.mark.data
def test_futian_closing_a_path_edge_reroutes(futian):
    nodes, cost = futian.shortest_path(ORIG, DEST)
    edges = futian.path_edges(nodes)
    blocked = edges[len(edges) // 2]
    assert futian.close_edges([blocked], reason="flooded underpass") == 1
    nodes2, cost2 = futian.shortest_path(ORIG, DEST)
    assert blocked not in futian.path_edges(nodes2)
    assert cost2 >= cost - 1e-9
    assert cost2 == pytest.approx(reference_cost(futian, ORIG, DEST))
    futian.reopen()
    assert futian.shortest_path(ORIG, DEST)[1] == pytest.approx(cost)


@pytest.mark.data
def test_futian_slowing_doubles_edge_time(futian):
    nodes, cost = futian.shortest_path(ORIG, DEST)
    e = futian.path_edges(nodes)[0]
    t0 = futian.edge(e)["travel_time_s"]
    futian.slow_edges([e], 2.0, reason="waterlogging")
    assert futian.edge(e)["travel_time_s"] == pytest.approx(2 * t0)
    nodes2, cost2 = futian.shortest_path(ORIG, DEST)
    assert cost2 <= cost + t0 + 1e-9 and cost2 >= cost - 1e-9
    if e in futian.path_edges(nodes2):
        assert cost2 == pytest.approx(cost + t0)
    futian.reopen(reason="waterlogging")
    assert futian.edge(e)["travel_time_s"] == pytest.approx(t0)


@pytest.mark.data
def test_futian_geodataframe_export(futian, tmp_path):
    futian.close_edges(futian.edge_ids[:3], reason="fire")
    gdf = futian.to_geodataframe()
    assert gdf.crs.to_epsg() == 4326 and len(gdf) == futian.n_edges
    assert gdf["closed"].sum() == 3 and list(gdf["id"][:3]) == futian.edge_ids[:3]
    assert {"closed", "slowed", "travel_time_s", "road_class", "length_m"} <= set(gdf.columns)
    p = tmp_path / "futian_routable.geojson"
    gdf.to_file(p)
    back = gpd.read_file(p)
    assert len(back) == len(gdf) and back["closed"].sum() == 3


def test_raw_graph_validation():
    G = nx.MultiDiGraph()
    G.add_node(1, x=114.0, y=22.5)
    G.add_node(2, x=114.001, y=22.5)
    G.add_edge(1, 2, key="e", length_m=-3.0, speed_mps=10.0, road_class="primary")
    with pytest.raises(ValidationError, match="length_m = -3.0"):
        RoadGraph(G)
    G.edges[1, 2, "e"].update(length_m=3.0, speed_mps="fast")
    with pytest.raises(ValidationError, match="speed_mps = 'fast'"):
        RoadGraph(G)
    G.edges[1, 2, "e"]["speed_mps"] = 10.0
    G.nodes[2]["y"] = 222.5
    with pytest.raises(ValidationError, match="node 2"):
        RoadGraph(G)
    with pytest.raises(GraphError, match="MultiDiGraph"):
        RoadGraph(nx.DiGraph())


def test_gcj02_edges_are_moved_to_wgs84(tmp_path):
    """An Amap-style network in GCJ-02 lands on the WGS 84 positions once its datum is declared."""
    from shapely import transform

    from gis import coords

    def to_gcj(xy):
        lon, lat = coords.wgs84_to_gcj02(xy[:, 0], xy[:, 1])
        return np.column_stack([lon, lat])

    gdf = toy_edges()
    gdf["geometry"] = transform(gdf.geometry.values, to_gcj)
    p = tmp_path / "gcj.geojson"
    gdf.to_file(p)
    raw = RoadGraph.from_edges_geojson(p)
    fixed = RoadGraph.from_edges_geojson(p, datum="gcj02")
    assert raw.graph.nodes["a"]["x"] == pytest.approx(114.0 + 0.0049, abs=3e-4)  # ~500 m east
    assert fixed.graph.nodes["a"]["x"] == pytest.approx(114.0, abs=1e-7)
    assert fixed.graph.nodes["a"]["y"] == pytest.approx(22.5, abs=1e-7)
