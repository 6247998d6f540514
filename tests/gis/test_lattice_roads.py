"""The ASSUMED lattice walk network (gis/lattice_roads.py): path lengths, the sea, reachability, attributes.

Path-length bounds: on an 8-connected lattice with unit steps and diagonal
steps of sqrt 2, the shortest path between two nodes is their octile
distance max + (sqrt 2 - 1) min of the row and column offsets, which is 1
(along an axis or a diagonal) to sqrt(4 - 2 sqrt 2) = 1.0824 (at 22.5 deg)
times the straight line. Every edge is its straight line x circuity, so over
all land a shortest path's length / (straight line x circuity) must lie in
[1, 1.0824]; the only tolerance is float rounding (1e-9 relative). The grid
is in EPSG:4547 (the city's working CRS), so the graph's own projected node
positions are the grid's coordinates.
"""

from __future__ import annotations

import math

import geopandas as gpd
import networkx as nx
import numpy as np
import pytest
from shapely.geometry import LineString

from gis.lattice_roads import (
    DEFAULT_CIRCUITY,
    LATTICE_CLASS,
    OCTILE_MAX_RATIO,
    lattice_road_graph,
    lattice_step,
)
from gis.roads import RoadGraph
from twin.errors import GraphError, ValidationError

CELL = 50.0
#: A north-up grid in EPSG:4547 near Guangming (x0, y0 of the top-left corner).
X0, Y0 = 487_000.0, 2_514_000.0
TRANSFORM = (CELL, 0.0, X0, 0.0, -CELL, Y0)
CRS = "EPSG:4547"


def xy(g: RoadGraph, n) -> np.ndarray:
    d = g.graph.nodes[n]
    return np.array([d["east_m"], d["north_m"]])


def cell_of(x: float, y: float) -> tuple[int, int]:
    return int(math.floor((Y0 - y) / CELL)), int(math.floor((x - X0) / CELL))


def test_octile_bound_is_the_known_constant():
    assert OCTILE_MAX_RATIO == pytest.approx(1.0824, abs=1e-4)
    theta = np.linspace(0.0, np.pi / 4, 100_001)  # octile / straight line over directions: max at 22.5 deg
    assert OCTILE_MAX_RATIO == pytest.approx(np.max(np.cos(theta) + (math.sqrt(2) - 1) * np.sin(theta)), rel=1e-9)


def test_spacing_is_a_whole_number_of_cells():
    assert lattice_step(200.0, 90.0) == 2 and lattice_step(200.0, 250.0) == 1 and lattice_step(200.0, 30.0) == 7


def test_paths_over_open_land_are_the_straight_line_times_circuity_times_1_to_1_0824():
    land = np.ones((81, 81), bool)
    g = lattice_road_graph(land, TRANSFORM, CRS, spacing_m=200.0, circuity=1.3)
    k = lattice_step(200.0, CELL)
    assert g.n_nodes == len(range(k // 2, 81, k)) ** 2
    nodes = list(g.graph.nodes)
    rng = np.random.default_rng(7)
    ratios = []
    for _ in range(40):
        a, b = rng.choice(len(nodes), 2, replace=False)
        path, length = g.shortest_path(nodes[a], nodes[b], weight="length_m")
        straight = float(np.hypot(*(xy(g, nodes[a]) - xy(g, nodes[b]))))
        ratios.append(length / (straight * 1.3))
    assert min(ratios) >= 1.0 - 1e-9 and max(ratios) <= OCTILE_MAX_RATIO + 1e-9
    # the two ends of the range are reached: along a row (1) and at a 2:1 offset (octile/euclid 1.0796)
    row0 = sorted((n for n in nodes if n.startswith(f"L{k // 2}_")), key=lambda n: int(n.split("_")[1]))
    _, along = g.shortest_path(row0[0], row0[-1], weight="length_m")
    assert along == pytest.approx(np.hypot(*(xy(g, row0[0]) - xy(g, row0[-1]))) * 1.3, rel=1e-9)
    a, b = f"L{k // 2}_{k // 2}", f"L{k // 2 + k}_{k // 2 + 2 * k}"
    _, skew = g.shortest_path(a, b, weight="length_m")
    assert skew / (np.hypot(*(xy(g, a) - xy(g, b))) * 1.3) == pytest.approx((2 + math.sqrt(2) - 1) / math.sqrt(5))


def test_no_edge_crosses_the_sea_and_routes_go_round_by_the_one_crossing():
    land = np.ones((60, 60), bool)
    land[:, 28:32] = False  # a river mouth four cells wide, top to bottom
    land[50:54, 28:32] = True  # one land bridge
    g = lattice_road_graph(land, TRANSFORM, CRS, spacing_m=100.0)
    for e in g.edge_ids:  # every edge's line, sampled every metre, stays on land
        line = g.edge(e)["geometry"]
        u, v = g.endpoints(e)
        a, b = xy(g, u), xy(g, v)
        for t in np.linspace(0.0, 1.0, int(np.hypot(*(b - a))) + 1):
            r, c = cell_of(*(a + t * (b - a)))
            assert land[r, c], f"edge {e} ({line}) enters the sea at cell {(r, c)}"
    row5 = sorted((n for n in g.graph.nodes if n.startswith("L5_")), key=lambda n: int(n.split("_")[1]))
    west, east = row5[0], row5[-1]
    assert cell_of(*xy(g, west))[1] < 28 < 32 <= cell_of(*xy(g, east))[1]
    path, _ = g.shortest_path(west, east, weight="length_m")
    rows = [cell_of(*xy(g, n))[0] for n in path]
    assert max(rows) >= 50  # the route goes down to the bridge


def test_a_diagonal_does_not_squeeze_between_two_sea_cells_at_a_corner():
    land = np.zeros((4, 4), bool)
    land[1, 1] = land[2, 2] = True  # land touching at a corner; (1, 2) and (2, 1) are sea
    with pytest.raises(GraphError, match="spacing_m"):
        lattice_road_graph(land, TRANSFORM, CRS, spacing_m=CELL)
    land[1, 2] = True  # one corner cell on land: the diagonal is allowed
    g = lattice_road_graph(land, TRANSFORM, CRS, spacing_m=CELL)
    assert g.graph.has_edge("L1_1", "L2_2") and g.graph.has_edge("L2_2", "L1_1")


def test_every_node_reaches_every_other_and_an_island_is_left_out():
    land = np.ones((40, 40), bool)
    land[:, 20:26] = False
    land[:, 26:] = False
    land[5:15, 30:38] = True  # an island across the sea, smaller than the mainland
    g = lattice_road_graph(land, TRANSFORM, CRS, spacing_m=100.0)
    assert nx.is_strongly_connected(g.graph)
    assert all(cell_of(*xy(g, n))[1] < 20 for n in g.graph.nodes)  # no island node


def test_edges_carry_the_attributes_of_a_file_graph_and_take_hazards():
    g = lattice_road_graph(np.ones((10, 10), bool), TRANSFORM, CRS, spacing_m=100.0)
    file_graph = RoadGraph.from_geodataframe(gpd.GeoDataFrame(
        {"u": ["a", "b"], "v": ["b", "a"], "highway": ["primary", "primary"], "name": ["x", "x"],
         "osm_way": [1, 1], "oneway": [False, False]},
        geometry=[LineString([(114.0, 22.7), (114.001, 22.7)]), LineString([(114.001, 22.7), (114.0, 22.7)])],
        crs="EPSG:4326"))
    lattice_edge = g.edge(g.edge_ids[0])
    assert set(file_graph.edge(file_graph.edge_ids[0])) <= set(lattice_edge)
    assert lattice_edge["road_class"] == LATTICE_CLASS and lattice_edge["name"] == "assumed lattice street"
    u, v = g.endpoints(g.edge_ids[0])
    assert lattice_edge["geometry"].coords[0] == (g.graph.nodes[u]["x"], g.graph.nodes[u]["y"])
    assert "ASSUMED" in g.graph.graph["assumed"] and g.graph.graph["circuity"] == DEFAULT_CIRCUITY
    gdf = g.to_geodataframe()
    assert len(gdf) == g.n_edges and gdf.crs == "EPSG:4326"
    assert g.close_edges([g.edge_ids[0]], "debris") == 1 and g.edge(g.edge_ids[0])["closed"]
    from agents.district_evac import walk_network

    assert walk_network(g, keep_hazard=False).n_edges == g.n_edges  # nothing on the lattice is an expressway


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"spacing_m": 0.0}, "spacing_m"), ({"spacing_m": float("nan")}, "spacing_m"),
    ({"circuity": 0.9}, "circuity"), ({"circuity": True}, "circuity"),
])
def test_bad_numbers_are_refused_naming_the_argument(kwargs, field):
    with pytest.raises(ValidationError, match=field):
        lattice_road_graph(np.ones((5, 5), bool), TRANSFORM, CRS, **kwargs)


def test_a_rotated_transform_or_a_flat_mask_is_refused():
    with pytest.raises(ValidationError, match="north-up"):
        lattice_road_graph(np.ones((5, 5), bool), (CELL, 1.0, X0, 0.0, -CELL, Y0), CRS)
    with pytest.raises(ValidationError, match="2-D"):
        lattice_road_graph(np.ones(5, bool), TRANSFORM, CRS)
