"""Benchmark of the coupled runner's overhead: a coupled run against the flood model stepped alone.

Three runs of the same storm on the same grid, in one process, each timed
from nothing built to its last step (grid, set-up, kernel warm-up, steps):

* ``flood alone``: :class:`physics.flood.FloodModel` built with
  :func:`physics.flood_city.flood_setup` on :meth:`twin.domain.Domain.from_city`
  and stepped every ``--period`` s to the end, the depth copied at every
  output interval (what a run keeps);
* ``coupled rain+flood``: :func:`scenarios.runner.run_coupled` with the
  ``rain`` and ``flood`` couplings (same period), writing ``fields.nc``,
  ``events.jsonl``, manifest and summary;
* ``coupled rain+flood+roads``: the same with the ``roads`` coupling
  (the city's road graph on the grid, closures every 300 s).

Overhead = coupled time / alone time - 1 (target < 10 % for rain+flood).
Each configuration runs once untimed first (numba kernels compiled or loaded
from the cache, files cached), then ``--repeat`` times, interleaved with the
others (a busy spell of the shared machine weighs on all); the table shows
the median and the minimum. "same depth" says whether the coupled run's last depth equals the
model's alone (same storm, same steps).

Run ``python bench/bench_coupling.py --help``; ``--quick`` (~30 s) checks it runs.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402
import numpy as np  # noqa: E402


def _districts(args) -> list[str] | None:
    """The district list of ``--district`` (``all``: the whole city)."""
    return None if args.district == "all" else [args.district]


def flood_alone(args) -> np.ndarray:
    """Grid, set-up and the model stepped alone; returns the last depth (NaN off land)."""
    from physics.flood import FloodModel
    from physics.flood_city import flood_setup, model_kwargs
    from twin.domain import Domain

    dom = Domain.from_city("shenzhen", resolution=args.resolution, districts=_districts(args),
                           buffer_m=500.0)
    setup = flood_setup(dom, storm=args.storm, hours=args.hours)
    model = FloodModel(**model_kwargs(setup))
    model.warm_up()
    land = np.asarray(setup["context"]["land"], bool)
    frames, every, t = [], args.frame_every, 0.0
    end = args.hours * 3600.0
    while t < end - 1e-9:
        model.step(args.period)
        t += args.period
        if abs(t / every - round(t / every)) < 1e-9:
            frames.append(np.where(land, model.h, np.nan).astype(np.float32))
    return np.where(land, model.h, np.nan)


def coupled(args, work: Path, with_roads: bool) -> np.ndarray:
    """The coupled run into a fresh directory; returns its last water depth."""
    import xarray as xr

    from scenarios.runner import run_coupled

    cp = {"rain": {"storm": args.storm}, "flood": {"period_s": args.period}}
    if with_roads:
        cp["roads"] = {}
    out = Path(tempfile.mkdtemp(dir=work))
    cfg = {"couplings": cp, "duration_s": args.hours * 3600.0, "districts": _districts(args),
           "resolution_m": args.resolution, "buffer_m": 500.0, "output_every_s": args.frame_every}
    run = run_coupled(cfg, out)
    with xr.open_dataset(run.paths["fields"]) as ds:
        depth = np.asarray(ds["water_depth"].isel(time=-1).values, float)
    shutil.rmtree(out, ignore_errors=True)
    return depth


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--district", default="Futian", help="district, or all for the whole city (default Futian)")
    ap.add_argument("--resolution", type=float, default=60.0, help="cell size, m (default 60)")
    ap.add_argument("--hours", type=float, default=1.0, help="simulated hours (default 1)")
    ap.add_argument("--storm", default="2023-09-07", help="design storm (default 2023-09-07)")
    ap.add_argument("--period", type=float, default=60.0, help="flood step on the clock, s (default 60)")
    ap.add_argument("--frame-every", type=float, default=600.0, help="output frames, s (default 600)")
    ap.add_argument("--repeat", type=int, default=3, help="timed repeats (default 3)")
    ap.add_argument("--quick", action="store_true", help="250 m, 0.5 h, 1 repeat: checks it runs")
    ap.add_argument("--out", default=None, help="results folder (default bench/results)")
    args = ap.parse_args(argv)
    if args.quick:
        args.resolution, args.hours, args.repeat = 250.0, 0.5, 1

    busy = C.busy_warning()
    work = Path(tempfile.mkdtemp(prefix="bench_coupling_"))
    configs = [("flood alone", lambda: flood_alone(args)),
               ("coupled rain+flood", lambda: coupled(args, work, False)),
               ("coupled rain+flood+roads", lambda: coupled(args, work, True))]
    depths, times = {}, {label: [] for label, _ in configs}
    stall = C.cpu_stall_us()
    t_all = time.perf_counter()
    try:
        for label, fn in configs:
            depths[label] = fn()  # untimed: kernels compiled or loaded, files cached
        for _ in range(args.repeat):  # interleaved, so a busy spell weighs on every configuration
            for label, fn in configs:
                t0 = time.perf_counter()
                fn()
                times[label].append(time.perf_counter() - t0)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    contention = C.contention_pct(stall, time.perf_counter() - t_all)
    results = [{"config": label, **C.Timing(times[label]).as_dict()} for label, _ in configs]
    alone, alone_min = results[0]["median_s"], results[0]["min_s"]
    ref = depths["flood alone"].astype(np.float32)  # the coupled frames are float32
    rows = []
    for rec in results:
        rec["overhead_pct"] = 100.0 * (rec["median_s"] / alone - 1.0)
        rec["overhead_min_pct"] = 100.0 * (rec["min_s"] / alone_min - 1.0)
        d = depths[rec["config"]].astype(np.float32)
        rec["same_depth"] = bool(d.shape == ref.shape and np.array_equal(d, ref, equal_nan=True))
        rows.append([rec["config"], rec["n"], rec["median_s"], rec["min_s"], rec["overhead_pct"],
                     rec["overhead_min_pct"], "yes" if rec["same_depth"] else "NO"])
    notes = [f"{args.district} at {args.resolution:g} m, {args.hours:g} h of the {args.storm} design storm, "
             f"flood stepped every {args.period:g} s, frames every {args.frame_every:g} s",
             "each time: grid, set-up, warm-up and steps; the coupled runs also write fields.nc, "
             "events.jsonl, manifest.json and summary.json",
             "overhead = median / median of 'flood alone' - 1 (and the same with the minima); "
             "target < 10 % for rain+flood; repeats interleaved (alone, coupled, coupled+roads, alone, ...)",
             f"CPU contention over the whole run: {C.fmt(contention)} % of the time some task waited for a CPU",
             "same depth: the coupled run's last water depth (fields.nc, float32) equals the model's alone as float32"]
    if busy:
        notes.append(busy)
    C.print_table("Coupled runner overhead (scenarios.runner) against the flood model alone",
                  ["config", "n", "median s", "min s", "overhead % (median)", "overhead % (min)",
                   "same depth"], rows, notes)
    path = C.write_results("coupling-quick" if args.quick else "coupling",
                           {"machine": C.machine_info(), "args": vars(args), "results": results,
                            "cpu_contention_pct": contention, "notes": notes}, args.out)
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
