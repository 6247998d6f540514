"""agents.dispatch.DispatchModel: validation on networks whose answers are known.

Every expected time below is turnout + the sum of length / speed over the
path the answer names, computed by hand from the network built in the test
(lengths given explicitly, speeds 36 km/h = 10 m/s), so the model must hit
it to float round-off (rel 1e-12). The queueing check is against Erlang C
(formula in ../shared/docs/references.md; Kleinrock 1975, Queueing Systems
vol. 1, eq. 3.40), within three standard errors of the mean over seeds.
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import LineString

from agents.dispatch import DispatchModel, Station, make_incident
from agents.road_hazard import CLOSED, RoadHazard
from agents.routing import Router
from gis.roads import RoadGraph
from twin.errors import ValidationError

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


# a---b---c---d in a line (1 km apart, 1 km each), detour b-x-d (1.5 km each)
PTS = {"a": (114.00, 22.50), "b": (114.01, 22.50), "c": (114.02, 22.50), "d": (114.03, 22.50),
       "x": (114.02, 22.51)}
LINE = two_way({"ab": ("a", "b", 1000.0), "bc": ("b", "c", 1000.0), "cd": ("c", "d", 1000.0),
                "bx": ("b", "x", 1500.0), "xd": ("x", "d", 1500.0)})


def station_at(node: str, **units) -> Station:
    return Station(f"st-{node}", *PTS[node], dict(units or {"engine": 1}))


def incident_at(node: str, t: float = 0.0, kind: str = "fire", **kw):
    return make_incident(f"i-{node}-{t:g}", t, *PTS[node], kind, **kw)


def hazard_closing(router: Router, edges: list[str], at_s: float, reopen_s: float | None = None
                   ) -> RoadHazard:
    """Flood frames: all open at 0, ``edges`` closed from ``at_s`` (reopened at ``reopen_s``)."""
    times = [0.0, at_s] + ([reopen_s] if reopen_s is not None else [])
    state = np.zeros((len(times), router.n_edges), dtype=np.int8)
    for e in edges:
        state[1, router.edge_index[e]] = CLOSED
    shape = state.shape
    return RoadHazard(np.array(times), list(router.edge_ids), np.zeros(shape), np.zeros(shape),
                      np.where(state == CLOSED, 0.0, 1.0), state)


def run(graph, stations, incidents, until=3600.0, **kw) -> DispatchModel:
    return DispatchModel(Router(graph), stations, incidents, on_scene="fixed", **kw).run(until)


# ------------------------------------------------------------------ exact times
def test_one_road_arrival_is_turnout_plus_length_over_speed():
    g = network(two_way({"ab": ("a", "b", 1234.5)}), PTS)
    m = run(g, [station_at("a")], [incident_at("b", t=10.0, needs={"engine": 1}, on_scene_s=600.0)])
    r = m.requests[0]
    assert r.dispatch_s == 10.0
    assert r.arrive_s == pytest.approx(10.0 + 60.0 + 1234.5 / V, rel=1e-12)
    assert r.back_s == pytest.approx(r.arrive_s + 600.0 + 1234.5 / V, rel=1e-12)
    assert m.summary()["response_s"]["max"] == pytest.approx(60.0 + 123.45, rel=1e-12)
    busy = 60.0 + 123.45 + 600.0 + 123.45  # turnout, there, on scene, back
    assert m.unit_table()["utilisation"].iloc[0] == pytest.approx(busy / 3600.0, rel=1e-12)
    assert m.unit_table(horizon_s=500.0)["utilisation"].iloc[0] == pytest.approx(490.0 / 500.0, rel=1e-12)


def test_closed_edge_adds_exactly_the_detour():
    g = network(LINE, PTS)
    open_run = run(g, [station_at("a")], [incident_at("d", needs={"engine": 1}, on_scene_s=0.0)])
    g.close_edges(["cd"], "test")
    closed_run = run(g, [station_at("a")], [incident_at("d", needs={"engine": 1}, on_scene_s=0.0)])
    direct, detour = (1000 + 1000) / V, (1500 + 1500) / V  # b->c->d vs b->x->d
    assert open_run.requests[0].arrive_s == pytest.approx(60 + 1000 / V + direct, rel=1e-12)
    assert closed_run.requests[0].arrive_s - open_run.requests[0].arrive_s == pytest.approx(
        detour - direct, rel=1e-12)


def test_road_flooding_mid_trip_reroutes_at_the_next_node():
    g = network(LINE, PTS)
    router = Router(g)
    # the unit leaves a at 60 s, is halfway along a->b at 110 s when c->d floods
    hz = hazard_closing(router, ["cd"], at_s=110.0)
    m = DispatchModel(router, [station_at("a")],
                      [incident_at("d", needs={"engine": 1}, on_scene_s=0.0)], hazard=hz,
                      on_scene="fixed").run(3600)
    r = m.requests[0]
    assert r.planned_s == pytest.approx(60 + 3000 / V, rel=1e-12)
    # reaches b at 160 s on the old path, then b->x->d: 300 s
    assert r.arrive_s == pytest.approx(60 + 1000 / V + 3000 / V, rel=1e-12)
    assert r.reroutes == 1
    kinds = [rec[1] for rec in m.records]
    assert "unit_rerouted" in kinds and "road_closed" in kinds
    # only c->d is closed: the way home d->c->b->a is open, 300 s
    assert r.back_s == pytest.approx(r.arrive_s + 3000 / V, rel=1e-12)


def test_closure_behind_the_unit_does_not_reroute():
    g = network(LINE, PTS)
    router = Router(g)
    hz = hazard_closing(router, ["ab"], at_s=200.0)  # the unit is on b->c by then
    m = DispatchModel(router, [station_at("a")],
                      [incident_at("d", needs={"engine": 1}, on_scene_s=0.0)], hazard=hz,
                      on_scene="fixed").run(3600)
    assert m.requests[0].reroutes == 0
    assert m.requests[0].arrive_s == pytest.approx(60 + 3000 / V, rel=1e-12)


def test_unreachable_incident_waits_until_the_water_recedes():
    g = network(LINE, PTS)
    router = Router(g)
    # d cut off (c->d and x->d closed) from 30 s to 1000 s; the call comes at 50 s
    hz = hazard_closing(router, ["cd", "xd"], at_s=30.0, reopen_s=1000.0)
    m = DispatchModel(router, [station_at("a")],
                      [incident_at("d", t=50.0, needs={"engine": 1}, on_scene_s=0.0)], hazard=hz,
                      on_scene="fixed").run(3600)
    r = m.requests[0]
    assert r.unreachable_at_call and r.queued
    assert r.dispatch_s == 1000.0
    assert r.arrive_s == pytest.approx(1000 + 60 + 3000 / V, rel=1e-12)
    kinds = [rec[1] for rec in m.records]
    assert kinds.count("incident_unreachable") == 1 and "road_reopened" in kinds
    assert m.summary()["unreachable_incidents"] == 1


def test_unit_cut_off_on_the_way_stands_by_and_is_sent_again():
    g = network(LINE, PTS)
    router = Router(g)
    # d is cut off (c->d, x->d closed) at 110 s, when the unit is halfway along a->b; open at 1000 s
    hz = hazard_closing(router, ["cd", "xd"], at_s=110.0, reopen_s=1000.0)
    m = DispatchModel(router, [station_at("a")],
                      [incident_at("d", needs={"engine": 1}, on_scene_s=0.0)], hazard=hz,
                      on_scene="fixed").run(3600)
    r = m.requests[0]
    assert r.aborts == 1 and r.queued
    assert r.dispatch_s == 1000.0  # sent again from b, where it stood by, when d opens
    assert r.arrive_s == pytest.approx(1000 + 2000 / V, rel=1e-12)  # no second turnout
    assert r.back_s == pytest.approx(r.arrive_s + 3000 / V, rel=1e-12)
    kinds = [rec[1] for rec in m.records]
    assert kinds.count("unit_stranded") == 1 and kinds.count("unit_dispatched") == 2


def test_cut_off_rescue_is_worked_from_the_nearest_reachable_node():
    g = network(LINE, PTS)
    g.close_edges(["cd", "xd"], "flood")
    m = run(g, [station_at("a", rescue=1)],
            [incident_at("d", kind="flood_rescue", needs={"rescue": 1}, on_scene_s=0.0, stage_m=1600.0)])
    r = m.requests[0]
    assert m.router.node_ids[r.target] == "c"  # c is ~1.03 km from d, x ~1.49 km
    assert r.arrive_s == pytest.approx(60 + 2000 / V, rel=1e-12)
    assert r.staged_m == pytest.approx(1028, rel=0.01)
    assert not r.unreachable_at_call


def test_nearest_available_unit_and_fifo_queue():
    g = network(LINE, PTS)
    stations = [station_at("a"), station_at("c")]
    incidents = [incident_at("d", t=0.0, needs={"engine": 1}, on_scene_s=1000.0),
                 incident_at("d", t=5.0, needs={"engine": 1}, on_scene_s=1000.0),
                 incident_at("b", t=6.0, needs={"engine": 1}, on_scene_s=10.0)]
    m = run(g, stations, incidents)
    first, second, third = m.requests
    assert m.units[first.unit].station == 1  # c is 100 s from d, a 300 s
    assert m.units[second.unit].station == 0  # c busy: a's unit
    assert third.queued and third.dispatch_s == pytest.approx(first.back_s, rel=1e-12)
    assert third.dispatch_s - third.call_s > 0


def test_positions_interpolate_along_the_edge():
    g = network(two_way({"ab": ("a", "b", 1000.0)}), PTS)
    m = run(g, [station_at("a")], [incident_at("b", needs={"engine": 1}, on_scene_s=100.0)])
    lon, lat, phase = m.positions([0.0, 60.0 + 25.0, 60.0 + 100.0 + 50.0, 5000.0])
    assert lon[:, 0] == pytest.approx([114.00, 114.0025, 114.01, 114.00], abs=1e-9)
    assert phase[:, 0].tolist() == [1, 2, 3, 0]


# ------------------------------------------------------------------ queueing: Erlang C
def erlang_c_wait(lam: float, mu: float, c: int) -> float:
    """Mean wait in queue Wq of M/M/c (Erlang C; references.md, Kleinrock 1975 eq. 3.40)."""
    a = lam / mu
    top = a**c / math.factorial(c) * c / (c - a)
    pc = top / (sum(a**k / math.factorial(k) for k in range(c)) + top)
    return pc / (c * mu - lam)


def test_mmc_waits_match_erlang_c():
    # c = 3 units at one station, calls at the station (zero travel), turnout 0, exponential on
    # scene: M/M/c with rho = 0.75. 8 seeds x 12,000 calls (first 1,000 dropped as warm-up).
    # Per-seed means are autocorrelated samples, the seeds independent: the tolerance is 3
    # standard errors of the mean over seeds (two-sided t with 7 dof: ~98 %).
    g = network(two_way({"ab": ("a", "b", 1000.0)}), PTS)
    c, mean_service, rho = 3, 600.0, 0.75
    lam = rho * c / mean_service
    expected = erlang_c_wait(lam, 1 / mean_service, c)
    means, waited = [], []
    for seed in range(8):
        rng = np.random.default_rng(100 + seed)
        times = np.cumsum(rng.exponential(1 / lam, 12_000))
        incidents = [make_incident(f"q{i}", float(t), *PTS["a"], "medical",
                                   needs={"engine": 1}, on_scene_s=mean_service)
                     for i, t in enumerate(times)]
        m = DispatchModel(Router(g), [station_at("a", engine=c)], incidents, seed=seed,
                          turnout_s=0.0, on_scene="exponential").run(float(times[-1]) + 1)
        waits = np.array([r.dispatch_s - r.call_s for r in m.requests])[1000:]
        assert np.isfinite(waits).all()
        means.append(waits.mean())
        waited.append((waits > 0).mean())
    se = np.std(means, ddof=1) / math.sqrt(len(means))
    assert abs(np.mean(means) - expected) < 3 * se, (means, expected)
    a = lam * mean_service  # P(wait > 0) = C(c, a), same tolerance rule
    top = a**c / math.factorial(c) * c / (c - a)
    p_wait = top / (sum(a**k / math.factorial(k) for k in range(c)) + top)
    se_p = np.std(waited, ddof=1) / math.sqrt(len(waited))
    assert abs(np.mean(waited) - p_wait) < 3 * se_p, (waited, p_wait)


# ------------------------------------------------------------------ invariants
@pytest.fixture(scope="module")
def busy_run(shenzhen_dir):
    from gis.roads import load_road_graph

    g = load_road_graph(shenzhen_dir / "osm" / "central_drive_overpass_20241006.json").largest_scc()
    stations = [Station("s1", 114.055, 22.540, {"engine": 2, "ambulance": 1, "rescue": 1}),
                Station("s2", 114.030, 22.530, {"engine": 1, "ambulance": 2})]

    def incidents(seed):
        rng = np.random.default_rng(seed)
        return [make_incident(f"i{k}", float(rng.uniform(0, 3600)), float(rng.uniform(114.02, 114.08)),
                              float(rng.uniform(22.52, 22.56)), str(rng.choice(["fire", "medical"])))
                for k in range(40)]

    return g, stations, incidents


def test_no_unit_is_double_booked(busy_run):
    g, stations, incidents = busy_run
    m = DispatchModel(Router(g), stations, incidents(3), seed=3).run(3600)
    table = m.request_table()
    assert (table["queued"]).any()  # the run is busy enough to queue
    for _, rows in table[table["unit"] != ""].groupby("unit"):
        rows = rows.sort_values("dispatch_s")
        assert (rows["dispatch_s"].to_numpy()[1:] >= rows["back_s"].to_numpy()[:-1]).all()


def test_same_seed_same_run(busy_run):
    g, stations, incidents = busy_run
    a = DispatchModel(Router(g), stations, incidents(7), seed=7).run(3600).request_table()
    b = DispatchModel(Router(g), stations, incidents(7), seed=7).run(3600).request_table()
    c = DispatchModel(Router(g), stations, incidents(7), seed=8).run(3600).request_table()
    assert a.equals(b)
    assert not a["back_s"].equals(c["back_s"])


def test_bad_inputs_are_refused():
    g = network(two_way({"ab": ("a", "b", 1000.0)}), PTS)
    with pytest.raises(ValidationError, match="kind='flood'"):
        make_incident("x", 0.0, *PTS["a"], "flood")
    with pytest.raises(ValidationError, match="needs tank"):
        make_incident("x", 0.0, *PTS["a"], "fire", needs={"tank": 1})
    with pytest.raises(ValidationError, match="from the nearest road node"):
        DispatchModel(Router(g), [Station("far", 113.5, 22.5, {"engine": 1})], [])
    with pytest.raises(ValidationError, match="at least one station"):
        DispatchModel(Router(g), [], [])


# ------------------------------------------------------------------ fast path = general path
def grid_network(side: int, rng) -> RoadGraph:
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


@pytest.mark.parametrize("flood", [False, True], ids=["dry", "flood-frames"])
def test_fast_path_gives_the_same_run_as_the_general_path(flood):
    # missions that no road change can touch run as two events (DispatchModel(fast=True)); every
    # mission as a simpy process (fast=False) must give the same tables, records and positions
    rng = np.random.default_rng(11)
    g, pts = grid_network(7, rng)
    nodes = list(pts)
    stations = [Station(f"st{k}", *pts[n], {"engine": 2, "ambulance": 1, "rescue": 1})
                for k, n in enumerate(["n1_1", "n5_2", "n3_5"])]
    t = np.cumsum(rng.exponential(400.0, 150))
    kinds = rng.choice(["fire", "medical", "collapse", "flood_rescue"], t.size, p=[0.3, 0.5, 0.1, 0.1])
    at = [nodes[k] for k in rng.integers(0, len(nodes), t.size)]
    at[:3] = ["n1_1", "n5_2", "n3_5"]  # calls at a station's node
    incidents = [make_incident(f"c{k}", float(t[k]), *pts[at[k]], str(kinds[k])) for k in range(t.size)]
    runs = []
    for fast in (True, False):
        router = Router(g)
        hz = None
        if flood:  # random closures and slow-downs every 10 min over the first half of the calls
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
        m = DispatchModel(router, stations, incidents, hazard=hz, seed=4, fast=fast).run(float(t[-1]) + 1)
        runs.append(m)
    fast, general = runs
    assert fast.fast_missions > 50 and general.fast_missions == 0
    if flood:
        assert general.summary()["reroutes"] > 0
    for table in ("incident_table", "request_table", "unit_table"):
        a, b = getattr(fast, table)(), getattr(general, table)()
        assert a.equals(b), table
    assert fast.records == general.records
    assert fast.summary() == general.summary()
    times = np.linspace(0.0, fast.clock.now_s, 97)
    for a, b in zip(fast.positions(times), general.positions(times), strict=True):
        assert np.array_equal(a, b)
