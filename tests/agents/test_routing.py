"""agents.routing.Router: csgraph shortest paths against networkx, closures, caching.

The reference is networkx's Dijkstra through ``RoadGraph.shortest_path``
(minimum over open parallel edges): both sum the same float64 edge costs,
possibly in another order, so totals agree to float round-off (1e-9 s
relative) and the router's edge ids re-add to its own total.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import LineString

from agents.routing import Router
from gis.roads import RoadGraph, load_road_graph
from twin.errors import GraphError, ValidationError

PTS = {"a": (114.000, 22.500), "b": (114.001, 22.500), "c": (114.001, 22.501),
       "d": (114.000, 22.501)}
ROWS = [("ab", "a", "b", "primary"), ("ab2", "a", "b", "residential"), ("bc", "b", "c", "primary"),
        ("ad", "a", "d", "secondary"), ("dc", "d", "c", "secondary"), ("ca", "c", "a", "tertiary")]


@pytest.fixture()
def toy() -> RoadGraph:
    """A square a-b-c-d with two routes a->c and a parallel (slower) pair a->b."""
    gdf = gpd.GeoDataFrame({
        "id": [r[0] for r in ROWS], "u": [r[1] for r in ROWS], "v": [r[2] for r in ROWS],
        "highway": [r[3] for r in ROWS],
        "geometry": [LineString([PTS[r[1]], PTS[r[2]]]) for r in ROWS]}, crs="EPSG:4326")
    return RoadGraph.from_geodataframe(gdf)


@pytest.fixture(scope="module")
def central(shenzhen_dir) -> RoadGraph:
    path = shenzhen_dir / "osm" / "central_drive_overpass_20241006.json"
    return load_road_graph(path).largest_scc()


def _nx_cost(roads: RoadGraph, a, b) -> float:
    return roads.shortest_path(a, b, weight="travel_time_s")[1]


def test_agrees_with_networkx_on_real_central_graph(central):
    router = Router(central)
    rng = np.random.default_rng(11)
    for a, b in rng.integers(0, router.n_nodes, size=(25, 2)):
        route = router.route(int(a), int(b))
        expected = _nx_cost(central, router.node_ids[a], router.node_ids[b])
        assert route.cost == pytest.approx(expected, rel=1e-9, abs=1e-9)
        assert router.path_cost(route.edges) == pytest.approx(route.cost, rel=1e-9)
        nodes, edges = router.route_ids(route)
        assert nodes[0] == router.node_ids[a] and nodes[-1] == router.node_ids[b]
        for e, (u, v) in zip(edges, zip(nodes[:-1], nodes[1:], strict=True), strict=True):
            assert central.endpoints(e) == (u, v)


def test_agrees_with_networkx_under_closures_and_slowdowns(central):
    rng = np.random.default_rng(5)
    ids = central.edge_ids
    closed = rng.random(len(ids)) < 0.03
    slowed = (~closed) & (rng.random(len(ids)) < 0.1)
    central.close_edges(closed, "test")
    central.slow_edges(list(np.array(ids, dtype=object)[slowed]), 3.0, "test")
    try:
        router = Router(central)
        assert router.closed.sum() == closed.sum()
        for a, b in rng.integers(0, router.n_nodes, size=(15, 2)):
            route = router.route(int(a), int(b))
            try:
                expected = _nx_cost(central, router.node_ids[a], router.node_ids[b])
            except GraphError:
                expected = np.inf
            assert route.cost == pytest.approx(expected, rel=1e-9, abs=1e-9)
            assert not closed[route.edges].any()
    finally:
        central.reopen(reason="test")


def test_reverse_tree_gives_the_same_costs(central):
    router = Router(central)
    dest = 17
    back, _ = router.tree(dest, reverse=True)
    fwd, _ = router.trees(np.arange(0, router.n_nodes, 97))
    assert np.allclose(back[np.arange(0, router.n_nodes, 97)], fwd[:, dest], rtol=1e-12)
    r1 = router.route_to(40, dest)
    assert r1.cost == pytest.approx(router.travel_time(40, dest), rel=1e-12)
    assert r1.nodes[0] == 40 and r1.nodes[-1] == dest


def test_parallel_edges_use_the_cheapest_open_one(toy):
    router = Router(toy)
    a, b = router.node("a"), router.node("b")
    route = router.route(a, b)
    assert router.route_ids(route)[1] == ["ab"]
    router.set_state(closed=np.array([e == "ab" for e in router.edge_ids]))
    route = router.route(a, b)
    assert router.route_ids(route)[1] == ["ab2"]
    assert route.cost == pytest.approx(toy.edge("ab2")["free_time_s"])


def test_closure_hides_edge_and_cache_follows_state(toy):
    router = Router(toy)
    a, c = router.node("a"), router.node("c")
    open_cost = router.travel_time(a, c)
    runs = router.dijkstra_runs
    assert router.travel_time(a, c) == open_cost and router.dijkstra_runs == runs  # cached
    key_open = router.state_key
    toy.close_edges(["bc"], "flood")
    assert router.sync() != key_open
    detour = router.route(a, c)
    assert router.route_ids(detour)[1] == ["ad", "dc"]
    assert detour.cost == pytest.approx(toy.edge("ad")["free_time_s"] + toy.edge("dc")["free_time_s"])
    assert router.dijkstra_runs == runs + 1
    toy.reopen(reason="flood")
    assert router.sync() == key_open
    assert router.travel_time(a, c) == open_cost and router.dijkstra_runs == runs + 1  # old tree reused


def test_slow_factor_scales_cost(toy):
    router = Router(toy)
    a, b = router.node("a"), router.node("b")
    free = router.travel_time(a, b)
    factor = np.ones(router.n_edges)
    factor[router.edge_index["ab"]] = 2.0
    factor[router.edge_index["ab2"]] = 2.0
    router.set_state(factor=factor)
    assert router.travel_time(a, b) == pytest.approx(2 * free, rel=1e-12)


def test_unreachable_gives_infinite_cost(toy):
    router = Router(toy)
    router.set_state(closed=np.array([e in ("ca",) for e in router.edge_ids]))
    route = router.route(router.node("c"), router.node("a"))
    assert not route.reachable and route.edges.size == 0


def test_custom_base_weights_walking_time(toy):
    lengths = np.array([toy.edge(e)["length_m"] for e in toy.edge_ids])
    router = Router(toy, base=lengths / 1.34)
    a, c = router.node("a"), router.node("c")
    ix = router.edge_index
    via_b = lengths[ix["ab"]] + lengths[ix["bc"]]
    via_d = lengths[ix["ad"]] + lengths[ix["dc"]]
    assert router.travel_time(a, c) == pytest.approx(min(via_b, via_d) / 1.34, rel=1e-12)


def test_nearest_node_by_kdtree(toy):
    router = Router(toy)
    assert router.node_ids[router.nearest_lonlat(114.0009, 22.5001)] == "b"
    idx = router.nearest_lonlat(np.array([114.0, 114.001]), np.array([22.501, 22.501]))
    assert [router.node_ids[i] for i in idx] == ["d", "c"]


@pytest.mark.parametrize("bad", [
    pytest.param({"base": np.ones(3)}, id="wrong-length"),
    pytest.param({"base": -np.ones(6)}, id="negative"),
    pytest.param({"base": "no_such_attr"}, id="unknown-attribute"),
])
def test_bad_base_is_refused(toy, bad):
    with pytest.raises(ValidationError, match="base"):
        Router(toy, **bad)


def test_bad_state_is_refused(toy):
    router = Router(toy)
    with pytest.raises(ValidationError, match="shape"):
        router.set_state(closed=np.zeros(2, dtype=bool))
    with pytest.raises(ValidationError, match=">= 1"):
        router.set_state(factor=np.full(router.n_edges, 0.5))
    with pytest.raises(GraphError, match="not in the road graph"):
        router.node("zz")


def test_walk_kernel_matches_reference(central):
    from agents._kernels.routing import walk, walk_reference

    router = Router(central)
    for reverse in (False, True):
        _, pred = router.tree(3, reverse=reverse)
        for start in (0, 3, 1000, router.n_nodes - 1):
            a, b = np.empty(router.n_nodes, np.int64), np.empty(router.n_nodes, np.int64)
            na, nb = walk(pred, start, a), walk_reference(pred, start, b)
            assert na == nb and (a[:na] == b[:nb]).all()
    assert walk(pred, 0, np.empty(0, np.int64)) == walk_reference(pred, 0, np.empty(0, np.int64)) == -1
