"""Benchmark of dispatch (agents.dispatch) and routing (agents.routing) against networkx.

Cases
-----
* ``grid``: a synthetic street grid of 230 × 230 junctions 100 m apart near
  Shenzhen (every neighbour pair joined both ways: 210,680 directed edges),
  speeds drawn from 30/40/50/60 km/h (seeded), 20 stations at random nodes
  with 3 engines and 2 ambulances each; incidents (70 % medical, 30 % fire:
  2 engines) at random nodes, Poisson in time at a rate giving about 60 %
  unit utilisation, fixed-mean lognormal on-scene times (mean 10 min so
  many lifecycles fit a run). A *lifecycle* is one unit request from call
  to the unit back at its station: call, assignment, turnout, the drive
  edge by edge, on scene, the drive back. Lifecycles/s = requests completed /
  wall time of ``DispatchModel.run`` (set-up of the model is timed apart).
  The ``grid + flood`` row (300 calls, about 3 simulated hours) closes a
  fresh random 2 % of the edges every 10 min (6 road states per hour): every
  change costs 20 station trees, reverse trees for units re-routed on their
  way and the interrupts, so its rate measures the cost of road changes.
  Missions that no flood frame can reach before the unit is back run on the
  model's fast path (two simpy events each: every mission of ``grid``); the
  others, every mission of ``grid + flood``, as simpy processes
  (``fast missions`` in the results).
* Shortest-path queries per second, Router vs networkx in the same run, on
  the grid and on the real central Shenzhen graph (``TWIN_DATA``): *cold*
  one-to-one queries (the router's cache cleared before each: a full
  csgraph Dijkstra from the origin, then the path) against networkx's
  one-to-one Dijkstra (``RoadGraph.shortest_path``, which stops at the
  target); and *station* queries (few origins, many targets: the dispatch
  pattern, the router's trees cached per origin) against the same networkx call.

Reference: simpy's own M/M/c (references.md: ≈ 80 k lifecycles/s on this kind
of machine) is measured here too (``simpy_mmc``: a bare simpy Resource with
c servers, exponential service, no routing), the ceiling of any model built
on simpy.

Run ``python bench/bench_dispatch.py --help``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import _common as C  # noqa: E402

SIDE = 230
SPACING_M = 100.0
ORIGIN = (113.95, 22.50)
SPEEDS_KMH = (30.0, 40.0, 50.0, 60.0)


def grid_roads(side: int = SIDE, seed: int = 0):
    """A RoadGraph of ``side`` × ``side`` junctions, 4-neighbours joined both ways."""
    import networkx as nx
    from shapely import linestrings

    from gis.roads import RoadGraph

    rng = np.random.default_rng(seed)
    dlat = SPACING_M / 110_574.0
    dlon = SPACING_M / (111_320.0 * math.cos(math.radians(ORIGIN[1])))
    G = nx.MultiDiGraph()
    ij = np.arange(side * side)
    i, j = np.divmod(ij, side)
    lon, lat = ORIGIN[0] + j * dlon, ORIGIN[1] + i * dlat
    G.add_nodes_from((int(n), {"x": float(lon[n]), "y": float(lat[n])}) for n in ij)
    right = ij[j < side - 1]
    up = ij[i < side - 1]
    u = np.concatenate([right, right + 1, up, up + side])
    v = np.concatenate([right + 1, right, up + side, up])
    speed = rng.choice(SPEEDS_KMH, size=u.size) / 3.6
    coords = np.stack([np.column_stack([lon[u], lat[u]]), np.column_stack([lon[v], lat[v]])], axis=1)
    geoms = linestrings(coords)
    G.add_edges_from((int(a), int(b), k, {"length_m": SPACING_M, "speed_mps": float(s), "road_class": "primary",
                                          "geometry": g})
                     for k, (a, b, s, g) in enumerate(zip(u, v, speed, geoms, strict=True)))
    return RoadGraph(G)


def dispatch_case(roads, router, n_incidents: int, *, flood: bool, seed: int = 0) -> dict[str, Any]:
    """Run the dispatch model on ``roads``; lifecycles/s of the simulation."""
    from agents.dispatch import DispatchModel, Station, make_incident
    from agents.road_hazard import CLOSED, RoadHazard

    rng = np.random.default_rng(seed)
    ll = router.node_lonlat
    st_nodes = rng.choice(router.n_nodes, 20, replace=False)
    stations = [Station(f"S{k}", float(ll[n, 0]), float(ll[n, 1]), {"engine": 3, "ambulance": 2})
                for k, n in enumerate(st_nodes)]
    # unit-seconds per hour at 60 % of 100 units; each request ~ 10 min on scene + ~2 × 8 min driving
    per_request_s = 600.0 + 60.0 + 2 * 480.0
    requests_per_call = 0.7 * 1 + 0.3 * 2
    rate = 0.6 * 100 / (per_request_s * requests_per_call)  # calls per second
    t = np.cumsum(rng.exponential(1 / rate, n_incidents))
    nodes = rng.integers(0, router.n_nodes, n_incidents)
    kinds = np.where(rng.random(n_incidents) < 0.3, "fire", "medical")
    incidents = [make_incident(f"i{k}", float(t[k]), float(ll[nodes[k], 0]), float(ll[nodes[k], 1]), str(kinds[k]),
                               on_scene_s=600.0) for k in range(n_incidents)]
    hazard = None
    if flood:
        times = np.arange(0.0, t[-1] + 600.0, 600.0)
        state = np.zeros((times.size, router.n_edges), dtype=np.int8)
        for k in range(1, times.size):
            state[k, rng.random(router.n_edges) < 0.02] = CLOSED
        z = np.zeros(state.shape, dtype=np.float32)
        hazard = RoadHazard(times, list(router.edge_ids), z, z, np.where(state == CLOSED, 0.0, 1.0), state)
    router.clear_cache()
    router.set_state(np.zeros(router.n_edges, bool), np.ones(router.n_edges))
    t0 = time.perf_counter()
    model = DispatchModel(router, stations, incidents, hazard=hazard, seed=seed)
    setup = time.perf_counter() - t0
    stall0 = C.cpu_stall_us()
    t0 = time.perf_counter()
    model.run(float(t[-1]) + 1.0)
    wall = time.perf_counter() - t0
    done = sum(1 for r in model.requests if np.isfinite(r.back_s))
    s = model.summary()
    return {"incidents": n_incidents, "requests": len(model.requests), "lifecycles": done, "setup_s": setup,
            "wall_s": wall, "rate": done / wall, "sim_hours": float(t[-1]) / 3600.0,
            "utilisation_mean": s["utilisation_mean"], "reroutes": s["reroutes"],
            "dijkstra_runs": router.dijkstra_runs, "road_states": 1 + (len(hazard.times_s) - 1 if flood else 0),
            "fast_missions": model.fast_missions,
            "cpu_contention_pct": C.contention_pct(stall0, wall)}


def simpy_mmc(n: int, c: int = 100, seed: int = 0) -> dict[str, Any]:
    """A bare simpy M/M/c (Resource with c servers): the ceiling of a simpy model."""
    import simpy

    rng = np.random.default_rng(seed)
    lam, mu = 0.6 * c / 600.0, 1 / 600.0
    arrivals = np.cumsum(rng.exponential(1 / lam, n))
    service = rng.exponential(1 / mu, n)
    env = simpy.Environment()
    res = simpy.Resource(env, capacity=c)
    done = [0]

    def customer(k):
        with res.request() as req:
            yield req
            yield env.timeout(service[k])
        done[0] += 1

    def source():
        for k in range(n):
            yield env.timeout(arrivals[k] - env.now)
            env.process(customer(k))

    env.process(source())
    t0 = time.perf_counter()
    env.run()
    wall = time.perf_counter() - t0
    return {"lifecycles": done[0], "wall_s": wall, "rate": done[0] / wall}


def query_case(name: str, roads, router, n_cold: int, n_nx: int, seed: int = 0) -> dict[str, Any]:
    """Shortest-path queries/s: cold and cached-station router queries vs networkx one-to-one."""
    rng = np.random.default_rng(seed)
    pairs = rng.integers(0, router.n_nodes, size=(max(n_cold, n_nx), 2))
    ids = router.node_ids
    router.set_state(np.zeros(router.n_edges, bool), np.ones(router.n_edges))

    def cold():
        for a, b in pairs[:n_cold]:
            router.clear_cache()
            router.route(int(a), int(b))

    t_cold = C.time_call(cold, repeat=3, warmup=1, max_seconds=20.0)
    stations = rng.integers(0, router.n_nodes, 10)
    targets = rng.integers(0, router.n_nodes, 2000)

    def cached():
        router.clear_cache()
        for k, b in enumerate(targets):
            router.route(int(stations[k % 10]), int(b))

    t_cached = C.time_call(cached, repeat=3, warmup=1, max_seconds=20.0)

    def nx_queries():
        for a, b in pairs[:n_nx]:
            roads.shortest_path(ids[a], ids[b], weight="travel_time_s")

    t_nx = C.time_call(nx_queries, repeat=2, warmup=0, max_seconds=60.0)
    return {"graph": name, "nodes": router.n_nodes, "edges": router.n_edges,
            "router_cold_qps": n_cold / t_cold.median, "router_station_qps": targets.size / t_cached.median,
            "networkx_qps": n_nx / t_nx.median,
            "cold_vs_networkx": (n_cold / t_cold.median) / (n_nx / t_nx.median),
            "station_vs_networkx": (targets.size / t_cached.median) / (n_nx / t_nx.median)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer incidents and queries")
    ap.add_argument("--out", default=None, help="results folder (default bench/results/)")
    ap.add_argument("--side", type=int, default=SIDE, help="junctions per side of the grid")
    ap.add_argument("--no-city", action="store_true", help="skip the real central graph (no TWIN_DATA needed)")
    args = ap.parse_args(argv)

    from agents.routing import Router

    warn = C.busy_warning()
    t0 = time.perf_counter()
    roads = grid_roads(args.side)
    router = Router(roads)
    build_s = time.perf_counter() - t0
    print(f"grid {args.side}x{args.side}: {router.n_nodes} nodes, {router.n_edges} edges, built in {build_s:.1f} s")
    n_inc = 20_000 if args.quick else 100_000
    rows = []
    for flood in (False, True):
        r = dispatch_case(roads, router, 300 if flood else n_inc, flood=flood)  # flood: ~3 h, 18 road states
        r["case"] = "grid + flood" if flood else "grid"
        rows.append(r)
        print(f"  {r['case']}: {r['rate']:,.0f} lifecycles/s ({r['lifecycles']} in {r['wall_s']:.1f} s)")
    mmc = simpy_mmc(n_inc)
    print(f"  simpy M/M/c: {mmc['rate']:,.0f} lifecycles/s")
    queries = [query_case("grid", roads, router, 20 if args.quick else 100, 3 if args.quick else 10)]
    if not args.no_city:
        try:
            from agents.city_roads import city_road_graph

            central = city_road_graph()
            queries.append(query_case("central Shenzhen", central, Router(central), 200 if args.quick else 1000,
                                      50 if args.quick else 200))
        except Exception as exc:  # data missing: say so, keep the rest
            print(f"central graph skipped: {exc}")
    for q in queries:
        print(f"  queries {q['graph']}: router cold {q['router_cold_qps']:,.0f}/s, station "
              f"{q['router_station_qps']:,.0f}/s, networkx {q['networkx_qps']:,.1f}/s")

    table = [[r["case"], f"{r['lifecycles']:,}", r["wall_s"], f"{r['rate']:,.0f}", r["road_states"],
              r["reroutes"], r["utilisation_mean"], r["cpu_contention_pct"]] for r in rows]
    table.append(["simpy M/M/c (ceiling)", f"{mmc['lifecycles']:,}", mmc["wall_s"], f"{mmc['rate']:,.0f}", None,
                  None, 0.6, None])
    C.print_table(f"Dispatch: incident lifecycles per second (grid {router.n_nodes:,} nodes, "
                  f"{router.n_edges:,} edges; target ≥ 50,000/s)",
                  ["case", "lifecycles", "wall s", "per s", "road states", "reroutes", "utilisation",
                   "cpu contention %"], table, [])
    qt = [[q["graph"], f"{q['edges']:,}", f"{q['router_cold_qps']:,.0f}", f"{q['router_station_qps']:,.0f}",
           f"{q['networkx_qps']:,.1f}", f"{q['cold_vs_networkx']:,.0f}×", f"{q['station_vs_networkx']:,.0f}×"]
          for q in queries]
    notes = ["cold: cache cleared before each query (full csgraph Dijkstra + path); station: 10 origins, "
             "2,000 targets, trees cached per origin; networkx: RoadGraph.shortest_path (one-to-one, stops "
             "at the target)"]
    if warn:
        notes.append(warn)
    C.print_table("Shortest-path queries per second", ["graph", "edges", "router cold", "router station",
                                                        "networkx", "cold ×", "station ×"], qt, notes)
    payload = {"benchmark": "dispatch", "quick": args.quick, "machine": C.machine_info(),
               "grid": {"side": args.side, "nodes": router.n_nodes, "edges": router.n_edges, "build_s": build_s},
               "dispatch": rows, "simpy_mmc": mmc, "queries": queries}
    path = C.write_results("dispatch-quick" if args.quick else "dispatch", payload, args.out)
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
