"""Benchmark of the coupled runner's overhead: each coupled run against the same models run alone.

For each case (an area at a resolution; default Futian at 30 and 60 m and the
whole city at 90 m), in one process, timed from nothing built to the last
file written:

* ``flood alone``: :func:`physics.flood_city.flood_setup` on
  :meth:`twin.domain.Domain.from_city` and :func:`physics.flood_city.run_city_flood`
  (the model's own driver, advanced in ``--period`` s chunks as the coupled
  flood is, frames every ``--frame-every`` s), its Dataset written as
  ``flood.nc`` by :func:`physics.flood_io.write_flood_netcdf`: what
  ``twin flood run`` does short of its GeoTIFFs and map;
* ``roads alone``: the roads' classification in a plain loop, without the
  runner: the city's road graph built and cut to the grid once, then every
  300 s (and at t = 0) the depth and speed grids made from the flood model's
  state at that time (kept once before the timing), each edge's depth and
  depth x speed, :func:`agents.road_hazard.classify` and
  :func:`agents.road_hazard.apply_hazard`;
* ``coupled rain+flood``: :func:`scenarios.runner.run_coupled` with the
  ``rain`` and ``flood`` couplings (grid, set-up, steps, ``fields.nc``,
  ``events.jsonl``, manifest, summary);
* ``coupled rain+flood+roads``: the same with the ``roads`` coupling.

Overhead = coupled time / reference - 1, the reference being the sum of the
parts run alone: ``flood alone`` for rain+flood, ``flood alone`` + ``roads
alone`` for rain+flood+roads (target < 10 %). Every configuration runs once
untimed first (numba kernels compiled or loaded from the cache, files in the
page cache), then ``--repeat`` times, interleaved with the others (a busy
spell of the shared machine weighs on all). The overhead is given from the
minima (best of N: the least disturbed run of each) and from the medians.
"same results" checks that the coupled run's last water depth equals the
flood's alone (float32, NaN off land) and, with roads, that its edges closed
and slowed at every step equal the plain loop's.

Run ``python bench/bench_coupling.py --help``; ``--quick`` (~15 s) checks it runs; the default run takes ~3 min a thread count.
"""

from __future__ import annotations

import argparse
import gc
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402
import numpy as np  # noqa: E402

#: The roads coupling's default period (s): the plain loop classifies as often.
ROADS_PERIOD_S = 300.0
CONFIGS = ("flood alone", "roads alone", "coupled rain+flood", "coupled rain+flood+roads")
#: The parts run alone whose times add up to each coupled configuration's reference.
REFERENCE = {"coupled rain+flood": ("flood alone",),
             "coupled rain+flood+roads": ("flood alone", "roads alone")}


def parse_cases(text: str) -> list[tuple[str, float]]:
    """``"Futian:30,all:90"`` -> [("Futian", 30.0), ("all", 90.0)]."""
    out = []
    for item in text.split(","):
        name, _, res = item.strip().partition(":")
        if not name or not res:
            raise SystemExit(f"--cases: {item!r} is not AREA:RESOLUTION (e.g. Futian:60, all:90)")
        out.append((name, float(res)))
    return out


def _districts(area: str) -> list[str] | None:
    """The district list of an area (``all``: the whole city)."""
    return None if area == "all" else [area]


def domain(area: str, resolution: float):
    from twin.domain import Domain

    return Domain.from_city("shenzhen", resolution=resolution, districts=_districts(area), buffer_m=500.0)


def flood_alone(args, area: str, resolution: float, work: Path) -> np.ndarray:
    """Grid, set-up, the model's own run and its flood.nc; returns the last depth (NaN off land)."""
    from physics.flood_city import flood_setup, run_city_flood
    from physics.flood_io import write_flood_netcdf

    setup = flood_setup(domain(area, resolution), storm=args.storm, hours=args.hours)
    ds = run_city_flood(setup, output_every_s=args.frame_every, progress_every_s=args.period)
    path = Path(tempfile.mkdtemp(dir=work)) / "flood.nc"
    write_flood_netcdf(ds, path)
    shutil.rmtree(path.parent, ignore_errors=True)
    return np.asarray(ds["depth"].isel(time=-1).values, np.float32)


def flood_states(args, dom) -> tuple[np.ndarray, list[tuple[float, np.ndarray, np.ndarray, np.ndarray]]]:
    """The roads' inputs (untimed): the land mask and the flood model's (t, h, qx, qy) every
    ROADS_PERIOD_S from t = 0, the model stepped every ``--period`` s as the coupled flood is."""
    from physics.flood import FloodModel
    from physics.flood_city import flood_setup, model_kwargs

    setup = flood_setup(dom, storm=args.storm, hours=args.hours)
    model = FloodModel(**model_kwargs(setup))

    def state():
        return model.t, model.h.copy(), model.qx.copy(), model.qy.copy()

    out = [state()]
    while model.t < args.hours * 3600.0 - 1e-9:
        model.step(args.period)
        k = model.t / ROADS_PERIOD_S
        if abs(k - round(k)) < 1e-9:
            out.append(state())
    return np.asarray(setup["context"]["land"], bool), out


def roads_alone(dom, land: np.ndarray, states) -> list[list[float]]:
    """The roads coupling's work in a plain loop: the graph once; every period the depth and speed
    grids it reads made from the flood's state (NaN off land, as the flood coupling publishes them:
    the speed by :meth:`physics.flood.FloodModel.speed`), then classify and apply.

    Returns [t, edges closed, edges slowed] per period (the coupling's ``closed_slowed_by_step``).
    """
    from types import SimpleNamespace

    from agents.city_roads import city_road_graph
    from agents.road_hazard import (
        PREGNOLATO_CLOSED_M,
        VEHICLE_DV_LIMIT,
        RoadHazard,
        apply_hazard,
        classify,
        edge_sample_points,
    )
    from physics.flood import FloodModel
    from scenarios.couplings.roads import edge_maxima, grid_outline_wgs84, sample_cells

    graph = city_road_graph(dom.city, districts=list(dom.selection) if dom.selection else None)
    clipped = graph.within(grid_outline_wgs84(dom))
    graph = graph if clipped.n_edges == graph.n_edges else clipped.largest_scc()
    xy, edge = edge_sample_points(graph, 0.5 * dom.resolution_m)
    row, col, inside = sample_cells(xy, dom.transform, dom.shape)
    dry = ~inside | np.asarray(dom.sea, bool)[row, col]
    ids = list(graph.edge_ids)
    starts = np.searchsorted(edge, np.arange(len(ids)))
    free = np.array([graph.edge(e)["speed_mps"] for e in ids])
    series = []
    for t, h, qx, qy in states:
        depth = np.where(land, h.astype(np.float64), np.nan)
        speed = np.where(land, FloodModel.speed(SimpleNamespace(h=h, qx=qx, qy=qy)), np.nan)
        d = edge_maxima(depth, row, col, dry, starts)
        dv = edge_maxima(depth * speed, row, col, dry, starts)
        f, state = classify(d, dv, free, closed_m=PREGNOLATO_CLOSED_M, dv_limit=VEHICLE_DV_LIMIT)
        apply_hazard(graph, RoadHazard(times_s=np.array([t]), edge_ids=ids, depth_m=d[None],
                                       dv_m2s=dv[None], speed_factor=f[None], state=state[None]), 0)
        series.append([float(t), int((state == 2).sum()), int((state == 1).sum())])
    return series


def coupled(args, area: str, resolution: float, work: Path, with_roads: bool, check: bool = False):
    """The coupled run into a fresh directory. With ``check`` (the untimed first call), returns its last
    water depth (read back from fields.nc) and the roads' series; else None."""
    import xarray as xr

    from scenarios.runner import run_coupled

    cp = {"rain": {"storm": args.storm}, "flood": {"period_s": args.period}}
    if with_roads:
        cp["roads"] = {"period_s": ROADS_PERIOD_S}
    out = Path(tempfile.mkdtemp(dir=work))
    cfg = {"couplings": cp, "duration_s": args.hours * 3600.0, "districts": _districts(area),
           "resolution_m": resolution, "buffer_m": 500.0, "output_every_s": args.frame_every}
    try:
        run = run_coupled(cfg, out)
        if not check:
            return None
        with xr.open_dataset(run.paths["fields"]) as ds:
            depth = np.asarray(ds["water_depth"].isel(time=-1).values, np.float32)
        return depth, run.summary["couplings"].get("roads", {}).get("closed_slowed_by_step")
    finally:
        shutil.rmtree(out, ignore_errors=True)


def _timed(fn) -> tuple[float, float]:
    """(wall s, CPU s of this process, every thread) of one call, after a garbage collection (the
    previous configuration's garbage is not collected on this one's time)."""
    gc.collect()
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def bench_case(args, area: str, resolution: float, threads: int, work: Path) -> list[dict]:
    """Time the four configurations of one case, interleaved; one record per configuration."""
    threads = C.set_threads(threads)
    dom = domain(area, resolution)
    land, states = flood_states(args, dom)
    calls = {"flood alone": lambda check=False: flood_alone(args, area, resolution, work),
             "roads alone": lambda check=False: roads_alone(dom, land, states),
             "coupled rain+flood": lambda check=False: coupled(args, area, resolution, work, False, check),
             "coupled rain+flood+roads": lambda check=False: coupled(args, area, resolution, work, True, check)}
    results = {label: calls[label](check=True) for label in CONFIGS}  # untimed: kernels, caches
    wall = {label: [] for label in CONFIGS}
    cpu = {label: [] for label in CONFIGS}
    for _ in range(args.repeat):  # interleaved, so a busy spell weighs on every configuration
        for label in CONFIGS:
            w, c = _timed(calls[label])
            wall[label].append(w)
            cpu[label].append(c)
    ref_depth = results["flood alone"]
    same = {"coupled rain+flood": np.array_equal(results["coupled rain+flood"][0], ref_depth, equal_nan=True),
            "coupled rain+flood+roads": np.array_equal(results["coupled rain+flood+roads"][0], ref_depth,
                                                       equal_nan=True)
            and results["coupled rain+flood+roads"][1] == results["roads alone"]}
    recs = []
    for label in CONFIGS:
        t, tc = C.Timing(wall[label]), C.Timing(cpu[label])
        rec = {"case": f"{area} {resolution:g} m", "area": area, "resolution_m": resolution,
               "grid": list(dom.shape), "threads": threads, "config": label, **t.as_dict(),
               "cpu_min_s": tc.min, "cpu_median_s": tc.median, "cpu_times_s": tc.times}
        parts = REFERENCE.get(label)
        if parts:
            rec["reference"] = " + ".join(parts)
            rec["reference_min_s"] = sum(min(wall[p]) for p in parts)
            rec["reference_median_s"] = sum(C.Timing(wall[p]).median for p in parts)
            rec["reference_cpu_min_s"] = sum(min(cpu[p]) for p in parts)
            rec["overhead_min_pct"] = 100.0 * (t.min / rec["reference_min_s"] - 1.0)
            rec["overhead_median_pct"] = 100.0 * (t.median / rec["reference_median_s"] - 1.0)
            rec["overhead_cpu_min_pct"] = 100.0 * (tc.min / rec["reference_cpu_min_s"] - 1.0)
            rec["same_results"] = bool(same[label])
        if label == "roads alone":
            rec["edges_closed_max"] = max((c for _, c, _ in results[label]), default=0)
        recs.append(rec)
    return recs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", default="Futian:30,Futian:60,all:90",
                    help="AREA:RESOLUTION list; AREA a district or all (default Futian:30,Futian:60,all:90)")
    ap.add_argument("--hours", type=float, default=1.0, help="simulated hours (default 1)")
    ap.add_argument("--storm", default="2023-09-07", help="design storm (default 2023-09-07)")
    ap.add_argument("--period", type=float, default=60.0, help="flood step on the clock, s (default 60)")
    ap.add_argument("--frame-every", type=float, default=600.0, help="output frames, s (default 600)")
    ap.add_argument("--repeat", type=int, default=5, help="timed repeats (default 5)")
    ap.add_argument("--threads", default=str(C.max_threads()),
                    help=f"numba thread counts, comma-separated (default {C.max_threads()}: all)")
    ap.add_argument("--quick", action="store_true", help="Futian at 250 m, 0.5 h, 1 repeat: checks it runs")
    ap.add_argument("--out", default=None, help="results folder (default bench/results)")
    args = ap.parse_args(argv)
    if args.quick:
        args.cases, args.hours, args.repeat = "Futian:250", 0.5, 1
    cases = parse_cases(args.cases)

    busy = C.busy_warning()
    work = Path(tempfile.mkdtemp(prefix="bench_coupling_"))
    stall = C.cpu_stall_us()
    t_all = time.perf_counter()
    results = []
    try:
        for area, res in cases:
            for n in C.thread_counts(int(v) for v in str(args.threads).split(",")):
                results += bench_case(args, area, res, n, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    contention = C.contention_pct(stall, time.perf_counter() - t_all)
    rows = [[r["case"], "x".join(map(str, r["grid"])), r["threads"], r["config"], r["n"], r["median_s"],
             r["min_s"], r.get("reference_min_s"), r.get("overhead_min_pct"), r.get("overhead_median_pct"),
             r["cpu_min_s"], r.get("overhead_cpu_min_pct"),
             {True: "yes", False: "NO"}.get(r.get("same_results"), "")] for r in results]
    notes = [f"{args.hours:g} h of the {args.storm} design storm; flood stepped every {args.period:g} s, "
             f"roads every {ROADS_PERIOD_S:g} s, frames every {args.frame_every:g} s",
             "each time: grid, set-up, kernel warm-up (cached), steps and files written (flood alone: "
             "flood.nc; coupled: fields.nc, events.jsonl, manifest.json, summary.json); roads alone: "
             "graph built and cut to the grid, then every period the depth and speed grids made from the "
             "flood model's state (kept before the timing), classify and apply",
             "reference = the sum of the parts alone (rain+flood: flood alone; rain+flood+roads: flood "
             "alone + roads alone); overhead = coupled / reference - 1, from the minima (best of n) "
             "and from the medians, and from the minima of the CPU time (process_time: every thread of "
             "the process; time spent waiting for a CPU is not counted, so it is the steadier figure on a "
             "busy machine at 1 thread; at 2, OpenMP threads spinning at barriers inflate it); "
             "target < 10 %; repeats interleaved",
             f"CPU contention over the whole run: {C.fmt(contention)} % of the time some task waited for a CPU",
             "same results: the coupled run's last water depth (fields.nc) equals the flood's alone "
             "(float32, NaN off land) and, with roads, its closed/slowed edge counts at every step equal "
             "the plain loop's"]
    if busy:
        notes.append(busy)
    C.print_table("Coupled runner overhead (scenarios.runner) against the same models run alone",
                  ["case", "grid", "threads", "config", "n", "median s", "min s", "reference min s",
                   "overhead % (min)", "overhead % (median)", "CPU min s", "overhead % (CPU min)",
                   "same results"], rows, notes)
    path = C.write_results("coupling-quick" if args.quick else "coupling",
                           {"machine": C.machine_info(), "args": vars(args), "results": results,
                            "cpu_contention_pct": contention, "notes": notes}, args.out)
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
