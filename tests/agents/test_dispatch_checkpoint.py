"""agents.dispatch.DispatchModel: checkpoint and restore, and a unit re-routed on its way home.

* A run checkpointed mid-way (units on their legs, finishing an edge after a
  re-route, on scene, turning out; flood frames ahead), written out as a
  coupled run writes a checkpoint (arrays to ``.npz``, the rest to JSON) and
  restored into a model built afresh on a clock at that instant, ends with the
  tables, records, summary and positions of the run that did not stop — on
  the fast path and on the general path (every mission a simpy process).
* A unit standing by away from its station (cut off by the flood) heads home
  when the water recedes and is re-routed on the way by a new closure: it has
  no request to count the re-route on (the whole-city 2023-09-07 scenario
  crashed there); it gets home on the new route at the time the hand-worked
  path gives, and the run checkpointed while it drives home resumes to the same end.
"""

from __future__ import annotations

import io
import json
import math

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import LineString

from agents.dispatch import DispatchModel, Station, make_incident
from agents.road_hazard import CLOSED, RoadHazard
from agents.routing import Router
from gis.roads import RoadGraph
from twin.clock import SimClock
from twin.errors import ValidationError
from twin.pipeline import clean_json

SPEED = {"primary": 36.0}  # km/h: 10 m/s on every street
V = 10.0


def network(edges: dict[str, tuple[str, str, float]], pts: dict[str, tuple[float, float]]) -> RoadGraph:
    """Directed streets ``id: (u, v, length_m)`` between points (lon, lat)."""
    ids = list(edges)
    return RoadGraph.from_geodataframe(gpd.GeoDataFrame({
        "id": ids, "u": [edges[e][0] for e in ids], "v": [edges[e][1] for e in ids],
        "highway": ["primary"] * len(ids), "length_m": [edges[e][2] for e in ids],
        "geometry": [LineString([pts[edges[e][0]], pts[edges[e][1]]]) for e in ids]},
        crs="EPSG:4326"), speeds=SPEED)


def two_way(pairs: dict[str, tuple[str, str, float]]) -> dict[str, tuple[str, str, float]]:
    out = {}
    for e, (u, v, m) in pairs.items():
        out[e] = (u, v, m)
        out[e + "_r"] = (v, u, m)
    return out


def frames(router: Router, times: list[float], closed: list[set[str]]) -> RoadHazard:
    """Flood frames at ``times`` with the edges ``closed[k]`` closed at frame k (the others open)."""
    state = np.zeros((len(times), router.n_edges), dtype=np.int8)
    for k, edges in enumerate(closed):
        for e in edges:
            state[k, router.edge_index[e]] = CLOSED
    z = np.zeros(state.shape)
    return RoadHazard(np.array(times, float), list(router.edge_ids), z, z, np.where(state == CLOSED, 0.0, 1.0),
                      state)


def through_files(saved: dict) -> dict:
    """A checkpoint as the coupled runner writes it: arrays to an ``.npz``, the rest to JSON (NaN: null)."""
    arrays = {k: v for k, v in saved.items() if isinstance(v, np.ndarray)}
    values = {k: v for k, v in saved.items() if not isinstance(v, np.ndarray)}
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    buf.seek(0)
    with np.load(buf) as npz:
        out = {k: npz[k] for k in npz.files}
    out.update(json.loads(json.dumps(clean_json(values))))
    return out


def assert_same_run(a: DispatchModel, b: DispatchModel) -> None:
    for table in ("incident_table", "request_table", "unit_table"):
        x, y = getattr(a, table)(), getattr(b, table)()
        assert x.equals(y), table
    assert a.records == b.records
    assert a.summary() == b.summary()
    times = np.linspace(0.0, a.clock.now_s, 211)
    for x, y in zip(a.positions(times), b.positions(times), strict=True):
        assert np.array_equal(x, y)


def assert_same_caches(a: DispatchModel, b: DispatchModel) -> None:
    """The restored router caches the same trees in the same least-recently-used order, and the model
    the same station times and station orders: which trees are cached decides whether a unit's path is
    read from its origin's tree or its destination's, and where two paths tie the two can differ
    (:func:`test_equal_paths_read_from_either_end_can_differ`)."""
    ka, kb = list(a.router._trees), list(b.router._trees)
    assert ka == kb and len(ka) > 0
    for k in ka:
        assert all(np.array_equal(x, y) for x, y in zip(a.router._trees[k], b.router._trees[k], strict=True))
    assert (a._dist_key, a._order_key, list(a._order_blocks)) == (b._dist_key, b._order_key, list(b._order_blocks))


def test_equal_paths_read_from_either_end_can_differ():
    # o-a-d (60 + 120 s) and o-b-d (120 + 60 s) tie: o's tree reaches d through a first, d's reverse
    # tree reaches o through b first, so a leg's path depends on the tree the router has cached
    pts = {"o": (114.0, 22.5), "a": (114.01, 22.51), "b": (114.01, 22.49), "d": (114.02, 22.5)}
    g = network({"oa": ("o", "a", 600.0), "ad": ("a", "d", 1200.0), "ob": ("o", "b", 1200.0),
                 "bd": ("b", "d", 600.0)}, pts)
    r = Router(g)
    o, d = r.node_index["o"], r.node_index["d"]
    fwd, rev = r.leg(o, d, reverse=False), r.leg(o, d, reverse=True)
    assert fwd.cost == rev.cost == pytest.approx(180.0, rel=1e-12)
    assert [r.edge_ids[e] for e in fwd.edges] == ["oa", "ad"] and [r.edge_ids[e] for e in rev.edges] == ["ob", "bd"]


# ------------------------------------------------------------------ resume = run straight through
def grid_network(side: int, rng) -> tuple[RoadGraph, dict]:
    """A side × side street grid, streets both ways, lengths 700-1300 m drawn at random (no ties)."""
    pts = {f"n{i}_{j}": (114.0 + 0.01 * j, 22.5 + 0.01 * i) for i in range(side) for j in range(side)}
    pairs = {}
    for i in range(side):
        for j in range(side):
            if j + 1 < side:
                pairs[f"h{i}_{j}"] = (f"n{i}_{j}", f"n{i}_{j + 1}", float(rng.uniform(700, 1300)))
            if i + 1 < side:
                pairs[f"v{i}_{j}"] = (f"n{i}_{j}", f"n{i + 1}_{j}", float(rng.uniform(700, 1300)))
    return network(two_way(pairs), pts), pts


@pytest.fixture(scope="module")
def busy_city():
    """A 7 × 7 grid, 3 stations, 120 calls of every kind, flood frames closing and slowing streets every
    10 min over the first half of the calls (units re-route, stand by, head home again)."""
    rng = np.random.default_rng(11)
    g, pts = grid_network(7, rng)
    nodes = list(pts)
    stations = [Station(f"st{k}", *pts[n], {"engine": 2, "ambulance": 1, "rescue": 1})
                for k, n in enumerate(["n1_1", "n5_2", "n3_5"])]
    t = np.cumsum(rng.exponential(300.0, 120))
    kinds = rng.choice(["fire", "medical", "collapse", "flood_rescue"], t.size, p=[0.3, 0.5, 0.1, 0.1])
    at = [nodes[k] for k in rng.integers(0, len(nodes), t.size)]
    calls = [(f"c{k}", float(t[k]), *pts[at[k]], str(kinds[k])) for k in range(t.size)]
    router = Router(g)
    times = np.arange(0.0, t[t.size // 2], 600.0)
    state = np.zeros((times.size, router.n_edges), dtype=np.int8)
    factor = np.ones(state.shape)
    frng = np.random.default_rng(5)
    for k in range(1, times.size):
        u = frng.random(router.n_edges)
        state[k, u < 0.08] = CLOSED
        state[k, (u >= 0.08) & (u < 0.2)] = 1
        factor[k, (u >= 0.08) & (u < 0.2)] = 0.4
    z = np.zeros(state.shape)
    hz = RoadHazard(times, list(router.edge_ids), z, z, np.where(state == CLOSED, 0.0, factor), state)
    return g, stations, calls, hz, float(t[-1]) + 1.0


def flipping(hz: RoadHazard) -> RoadHazard:
    """The same frames, alternating between the first two flooded states: road states come back, so
    trees cached under an earlier state are used again."""
    k = np.where(np.arange(hz.times_s.size) == 0, 0, 2 - np.arange(hz.times_s.size) % 2)
    return RoadHazard(hz.times_s, hz.edge_ids, hz.depth_m[k], hz.dv_m2s[k], hz.speed_factor[k], hz.state[k])


def build(city, fast: bool, clock: SimClock | None = None, cache: int | None = None) -> DispatchModel:
    g, stations, calls, hz, _ = city
    router = Router(g) if cache is None else Router(g, cache_size=cache)
    return DispatchModel(router, stations, [make_incident(*c) for c in calls],
                         hazard=hz if cache is None else flipping(hz), seed=4, fast=fast, clock=clock)


@pytest.mark.parametrize(("fast", "cache"), [(True, None), (False, None), (False, 6)],
                         ids=["fast-path", "processes", "recurring-states-small-tree-cache"])
def test_a_restored_run_ends_as_the_run_that_did_not_stop(busy_city, fast, cache):
    # cache: a router keeping only 6 trees (evictions: the restored cache must hold the same trees in the
    # same least-recently-used order) under flood frames whose road states come back
    until = busy_city[-1]
    straight = build(busy_city, fast, cache=cache).run(until)
    assert straight.summary()["reroutes"] > 0
    first = build(busy_city, fast, cache=cache).start(until)
    # three checkpoints in a row, each restored into a model built afresh on a clock at that instant
    # (the second at a flood frame's instant, 3000 s, the third after the last frame)
    model, seen_on_leg, seen_finishing = first, 0, 0
    for t in (1234.5678, 3000.0, until * 0.7):
        model.clock.advance_to(t)
        seen_on_leg += sum(u.leg is not None for u in model.units)
        seen_finishing += sum(u.process is not None and u.process.is_alive and u.wait[0] == "edge"
                              for u in model.units)
        saved = through_files(model.checkpoint())
        before = model
        model = build(busy_city, fast, clock=SimClock(now_s=t), cache=cache).restore(saved)
        assert_same_caches(before, model)
    assert seen_on_leg > 0  # units were mid-leg at a checkpoint: they resume with the time left
    if not fast:
        assert seen_finishing > 0  # and some finishing an edge before a re-route
    model.run(until)
    assert_same_run(straight, model)
    assert model.fast_missions == straight.fast_missions


def test_restore_refuses_a_model_that_cannot_take_the_checkpoint(busy_city):
    until = busy_city[-1]
    m = build(busy_city, True).start(until)
    with pytest.raises(ValidationError, match="not started"):
        build(busy_city, True).checkpoint()
    m.clock.advance_to(900.0)
    saved = m.checkpoint()
    with pytest.raises(ValidationError, match="clock is at t=0"):
        build(busy_city, True).restore(saved)
    with pytest.raises(ValidationError, match="already started"):
        build(busy_city, True, clock=SimClock(now_s=900.0)).start(until).restore(saved)
    g, stations, calls, hz, _ = busy_city
    fewer = DispatchModel(Router(g), stations[:2], [], hazard=hz, clock=SimClock(now_s=900.0))
    with pytest.raises(ValidationError, match="station_ids"):
        fewer.restore(saved)
    with pytest.raises(ValidationError, match="run it on with that"):
        build(busy_city, True, clock=SimClock(now_s=900.0)).restore(saved).run(until + 60.0)


# ------------------------------------------------------------------ re-routed on the way home
# a---b---c---d in a line (1 km each), detour b-x-d (1.5 km each), streets both ways
PTS = {"a": (114.00, 22.50), "b": (114.01, 22.50), "c": (114.02, 22.50), "d": (114.03, 22.50),
       "x": (114.02, 22.51)}
LINE = two_way({"ab": ("a", "b", 1000.0), "bc": ("b", "c", 1000.0), "cd": ("c", "d", 1000.0),
                "bx": ("b", "x", 1500.0), "xd": ("x", "d", 1500.0)})
# the engine from a reaches d at 60 + 300 = 360 s and works there 600 s; the flood cuts d off at 500 s
# (it stands by at d from 960 s), recedes at 1200 s (it heads home d-c-b-a), and closes c->b at 1250 s
# while it drives d->c (1200-1300 s): at c it re-routes c-d-x-b-a (100 + 150 + 150 + 100 s), home at 1800 s
HOME_FRAMES = ([0.0, 500.0, 1200.0, 1250.0], [set(), {"cd_r", "xd_r"}, set(), {"bc_r"}])


def cut_off_then_rerouted(clock: SimClock | None = None) -> DispatchModel:
    router = Router(network(LINE, PTS))
    return DispatchModel(router, [Station("st-a", *PTS["a"], {"engine": 1})],
                         [make_incident("fire-d", 0.0, *PTS["d"], "fire", needs={"engine": 1}, on_scene_s=600.0)],
                         hazard=frames(router, *HOME_FRAMES), on_scene="fixed", clock=clock)


def test_a_unit_rerouted_on_its_way_home_gets_home_on_the_new_route():
    m = cut_off_then_rerouted().run(3600.0)
    [req] = m.requests
    [unit] = m.units
    assert req.arrive_s == pytest.approx(360.0, rel=1e-12) and req.clear_s == pytest.approx(960.0, rel=1e-12)
    assert math.isnan(req.back_s)  # its mission ended standing by at d, not at the station
    standby = [r for r in m.records if r[1] == "unit_standby"]
    assert [r[0] for r in standby] == [pytest.approx(960.0, rel=1e-12)]
    rerouted = [r for r in m.records if r[1] == "unit_rerouted"]
    # at 960 s the mission's way home was cut before it left d (counted on its request); at 1300 s the
    # drive home from standing by re-routes at c, with no request to count it on
    assert [r[0] for r in rerouted] == [pytest.approx(960.0, rel=1e-12), pytest.approx(1300.0, rel=1e-12)]
    assert rerouted[1][4]["node"] == "c"
    assert req.reroutes == 1 and m.summary()["reroutes"] == 1
    # home on the new route at the hand-worked time, free at its station
    assert unit.phases[-2:] == [(1200.0, 4), (pytest.approx(1800.0, rel=1e-12), 0)]
    assert unit.free and unit.node == unit.home and m._free["engine"][0] == [0]
    ids = m.router.edge_ids
    drives = [[ids[e] for e in leg.edges[:leg.upto]] for leg in unit.track if leg.t0 >= 1200.0]
    assert drives == [["cd_r"], ["cd", "xd_r", "bx_r", "ab_r"]]
    assert m.unit_table()["busy_s"].iloc[0] == pytest.approx((960.0 - 0.0) + (1800.0 - 1200.0), rel=1e-12)


@pytest.mark.parametrize("at_s", [1230.0, 1280.0], ids=["on-the-leg-home", "finishing-the-edge"])
def test_a_run_checkpointed_while_the_unit_drives_home_resumes_to_the_same_end(at_s):
    straight = cut_off_then_rerouted().run(3600.0)
    m = cut_off_then_rerouted().start(3600.0)
    m.clock.advance_to(at_s)
    [unit] = m.units
    assert unit.req is None and unit.stage == 2  # driving home with no request
    assert unit.wait[0] == ("leg" if at_s < 1250.0 else "edge")
    resumed = cut_off_then_rerouted(SimClock(now_s=at_s)).restore(through_files(m.checkpoint())).run(3600.0)
    assert_same_run(straight, resumed)
