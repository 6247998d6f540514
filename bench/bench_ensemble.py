"""Benchmark of ensembles on Dask (scenarios.ensemble): members per hour at 1 and 2 workers, and threads.

The same members (one perturbation spec, one seed: identical requests) run three ways, in one run:

* ``processes 1x1``: a LocalCluster of 1 worker process, 1 thread;
* ``processes 2x1``: 2 worker processes, 1 thread each (the default of ``twin ensemble run``);
* ``threads 1x2``: 1 worker inside this process with 2 threads (``processes=False``).

Each configuration's fields are compared with the 1-worker run's (same seed:
they must be identical); threads inside one process share netCDF4/HDF5 and
GDAL, which are not thread-safe, and the table says when members failed or differ.

Members are flood runs (``flood_forecast``) over one district with a uniform
rain scaled by a lognormal factor (CV 0.3) and a uniform tide of 0-1 m;
every member runs the model with one numba thread. Each configuration
starts its cluster, runs one untimed warm-up member per worker (kernels
compiled or loaded from numba's cache), then the timed members: wall time
from the first submission to the last member written to ``members.zarr``
(cluster start and warm-up excluded). Members per hour = members / wall
time. The speed-up is over ``processes 1x1`` (target: >= 1.8 with 2
workers). ``cpu_contention_pct`` (Linux PSI) is the share of each configuration's
time (cluster start to the end) during which some task waited for a CPU: on a shared 2-core
machine, figures taken at high contention understate the speed-up.

Run ``python bench/bench_ensemble.py --help``; ``--quick`` (~1 min) checks it runs.
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

CONFIGS = (("processes 1x1", 1, 1, True), ("processes 2x1", 2, 1, True), ("threads 1x2", 1, 2, False))


def _fields(zarr_path: Path):
    """The members' fields of an ensemble store (NaN where a member failed), or None without a store."""
    import xarray as xr

    if not Path(zarr_path).is_dir():
        return None
    ds = xr.open_zarr(zarr_path)
    return np.asarray(ds[ds.attrs["variable"]].values)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--members", type=int, default=8, help="members per configuration (default 8)")
    ap.add_argument("--district", default="Futian", help="district of the flood members (default Futian)")
    ap.add_argument("--resolution", type=float, default=30.0, help="cell size, m (default 30)")
    ap.add_argument("--hours", type=float, default=1.0, help="simulated hours per member (default 1)")
    ap.add_argument("--rain", type=float, default=80.0, help="base rain, mm/h (default 80)")
    ap.add_argument("--quick", action="store_true", help="4 members at 500 m for 0.5 h: checks it runs")
    ap.add_argument("--out", default=None, help="results folder (default bench/results)")
    args = ap.parse_args(argv)
    if args.quick:
        args.members, args.resolution, args.hours = 4, 500.0, 0.5

    from scenarios.ensemble import run_ensemble

    base = {"districts": [args.district], "resolution": args.resolution, "hours": args.hours,
            "rain_mm_h": args.rain}
    perturb = {"seed": 2026, "rain_scale": {"dist": "lognormal", "cv": 0.3},
               "params": {"tide_m": {"dist": "uniform", "low": 0.0, "high": 1.0}}}
    busy = C.busy_warning()
    results, rows, fields = [], [], {}
    work = Path(tempfile.mkdtemp(prefix="bench_ensemble_"))
    try:
        for label, workers, threads, processes in CONFIGS:
            out = work / label.replace(" ", "_")
            stall = C.cpu_stall_us()
            t0 = time.perf_counter()
            res = run_ensemble("flood_forecast", base, perturb, args.members, out, workers=workers,
                               threads_per_worker=threads, processes=processes, warmup_params=base)
            total = time.perf_counter() - t0
            fields[label] = _fields(res.zarr)
            member_s = sorted(r["wall_s"] for r in res.rows if r["status"] == "ok")
            member_cpu = sorted(r["cpu_s"] for r in res.rows if r["status"] == "ok")
            rec = {"config": label, "workers": workers, "threads_per_worker": threads, "processes": processes,
                   "members": args.members, "failed": len(res.failed), "wall_s": res.wall_s,
                   "warm_s": res.warm_s, "total_s": total, "members_per_hour": res.members_per_hour,
                   "member_wall_s_median": member_s[len(member_s) // 2] if member_s else None,
                   "member_cpu_s_median": member_cpu[len(member_cpu) // 2] if member_cpu else None,
                   "cpu_contention_pct": C.contention_pct(stall, total)}
            results.append(rec)
            print(f"{label}: {args.members} members in {res.wall_s:.1f} s ({res.members_per_hour:.0f}/h)",
                  file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    one = results[0]["members_per_hour"]
    ref = fields[CONFIGS[0][0]]
    for rec in results:
        rec["speedup_vs_1_worker"] = rec["members_per_hour"] / one if one else None
        got = fields[rec["config"]]
        rec["fields_identical_to_1x1"] = bool(ref is not None and got is not None and ref.shape == got.shape
                                              and np.array_equal(ref, got, equal_nan=True))
        rows.append([rec["config"], rec["workers"], rec["threads_per_worker"], rec["members"], rec["wall_s"],
                     rec["members_per_hour"], rec["speedup_vs_1_worker"], rec["member_wall_s_median"],
                     rec["member_cpu_s_median"], rec["cpu_contention_pct"], rec["failed"],
                     "yes" if rec["fields_identical_to_1x1"] else "NO"])
    notes = [f"members: flood_forecast over {args.district} at {args.resolution:g} m for {args.hours:g} h, "
             f"uniform rain {args.rain:g} mm/h x lognormal (CV 0.3), tide U(0, 1) m; one numba thread each",
             "wall = first submission to last member in members.zarr (cluster start and warm-up excluded)",
             "member CPU s = CPU time of the member's thread: when it stays while the member's wall time grows, "
             "the member waited for a CPU (other processes, or the GIL with threads)",
             "target: speed-up >= 1.8 with 2 worker processes",
             "same fields: every member's field equals the 1-worker run's (same seed); threads inside one "
             "process share netCDF4/HDF5 and GDAL, which are not thread-safe: members may fail or differ"]
    if busy:
        notes.append(busy)
    C.print_table("Ensemble members per hour (scenarios.ensemble on dask.distributed)",
                  ["config", "workers", "threads", "members", "wall s", "members/h", "speed-up",
                   "member s (median)", "member CPU s (median)", "cpu contention %", "failed", "same fields"], rows, notes)
    path = C.write_results("ensemble-quick" if args.quick else "ensemble",
                           {"machine": C.machine_info(), "args": vars(args), "base": base, "perturbation": perturb,
                            "results": results, "notes": notes}, args.out)
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
