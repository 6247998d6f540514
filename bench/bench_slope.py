"""Benchmark of the transient slope-stability kernels (physics._kernels.slope) and the Monte Carlo.

Inputs as the twin runs them: the Shenzhen working grid at 30 m
(``twin.domain.Domain.from_city``), the cells ``twin slope run`` models
(``physics.slope_city.slope_setup``: land with a slope of at least 1 degree,
the table's default zone everywhere, soil depth from slope, the water table
at most at the soil base, D_hat by ``iverson_dhat``), the 24-hour alternating-block design storm of the
2023-09-07 records (``physics.flood_city.make_storm``: 144 ten-minute
blocks, uniform over the city), outputs every hour (24 times), 10 depths.

(a) Evaluations per second. An evaluation is one (cell, depth, output time):
    cells x 10 x 24 over the wall time. Compared on the same cells: the
    kernel (distinct lags + exact bounds), the previous numba kernel (direct
    sum at every evaluation, ``factor_of_safety_direct``) and the numpy
    reference of the tests (``tests/physics/slope_reference.py``, on a
    subsample in chunks; its rate is per evaluation too). Two rain cases:
    ``storm`` (the default Ks, 1e-6 m/s = 3.6 mm/h, is below every block of
    the storm: infiltration is Kz throughout, two steps per cell) and
    ``unclipped`` (Ks = 1e-4 m/s for every cell: every block infiltrates,
    144 steps per cell: the kernel's worst case for the lag table).
(b) The city: all land cells, ``storm`` case, at each thread count, against
    the issue's 30 s target; ``unclipped`` at the highest thread count.
(c) Monte Carlo (at each thread count): ``physics.slope_montecarlo.monte_carlo`` with 1000
    members (``--members``) over Nanshan (``Domain.from_city(districts=
    ["Nanshan"])``, its buffered land cells), per-cell draws from the
    default zone's distributions, against the 60 s target; includes the
    drawing of the members' normals (numpy, one SeedSequence child each).
    Once more with ``failure_time=True`` (first failure time of each
    failing member: ``p_by_time``, ``t_fail_median``).

Compile time is excluded (a warm-up call on a few cells first). Wall times
(``time.perf_counter``); the CPU contention of the shared machine (Linux PSI)
is stored with each timing. Run ``python bench/bench_slope.py --help``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from physics._kernels import slope as K  # noqa: E402

TARGET_CITY_S = 30.0
TARGET_MC_S = 60.0
N_DEPTHS = 10
HOURS = 24


def storm_series(hours: int = HOURS):
    """(rain (n, 1) m/s, t_edges s, t_eval s, description) of the design storm, hourly outputs."""
    from physics.flood_city import make_storm, storm_info

    storm = make_storm("2023-09-07", hours=hours)
    rain = (np.asarray(storm.rates, float) / 3.6e6)[:, None].copy()
    edges = np.asarray(storm.times, float)
    t_eval = np.arange(1, hours + 1) * 3600.0
    return rain, edges, t_eval, storm_info(storm, hours)


def land_params(domain):
    """(params (N_PARAMS, n), zones (n,)) of the domain's modelled cells, as ``twin slope run``
    sets them up (:func:`physics.slope_city.slope_setup`: default zone, slope-depth rule, water
    table at most at the soil base, land with a slope of at least 1 degree)."""
    from physics.slope_city import slope_setup

    setup = slope_setup(domain)
    return setup["params"], setup["zones"]


def run_kernel(fn, p, rain, edges, t_eval):
    n = p.shape[1]
    out = [np.empty(n), np.empty(n), np.empty(n)]
    fn(p, rain, edges, t_eval, N_DEPTHS, K.GAMMA_W, *out, np.empty((0, n)))
    return out


def timed(fn, *, repeat: int, max_seconds: float = 60.0):
    stall = C.cpu_stall_us()
    t0 = time.perf_counter()
    t = C.time_call(fn, repeat=repeat, warmup=0, max_seconds=max_seconds)
    out = t.as_dict()
    out["cpu_contention_pct"] = C.contention_pct(stall, time.perf_counter() - t0)
    return out


def numpy_rate(p, rain, edges, t_eval, n_cells: int, chunk: int = 100) -> dict:
    """The numpy reference over the first ``n_cells`` cells, in chunks (its memory is
    n_eval x depths x cells x steps)."""
    from tests.physics import slope_reference as ref

    def call():
        for a in range(0, n_cells, chunk):
            ref.factor_of_safety(p[:, a:a + chunk], rain, edges, t_eval, N_DEPTHS, K.GAMMA_W)

    t = timed(call, repeat=1)
    t["evals_per_s"] = n_cells * N_DEPTHS * len(t_eval) / t["median_s"]
    t["cells"] = n_cells
    return t


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--quick", action="store_true",
                    help="200k city cells, 50 members, no unclipped city run: checks it runs")
    ap.add_argument("--out", default=None, help="results folder (default bench/results/)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="numba thread counts")
    ap.add_argument("--members", type=int, default=1000, help="Monte Carlo members (default 1000)")
    ap.add_argument("--numpy-cells", type=int, default=400, help="cells for the numpy reference")
    args = ap.parse_args(argv)

    from twin.domain import Domain

    warn = C.busy_warning()
    threads = C.thread_counts(args.threads)
    rain, edges, t_eval, storm = storm_series()
    t0 = time.perf_counter()
    city = Domain.from_city("shenzhen", resolution=30)
    domain_s = time.perf_counter() - t0
    p_all, _ = land_params(city)
    if args.quick:
        p_all = np.ascontiguousarray(p_all[:, np.random.default_rng(0).permutation(p_all.shape[1])[:200_000]])
    n_city = p_all.shape[1]
    cases = {"storm": p_all}
    unclipped = p_all.copy()
    unclipped[K.P_KZ] = 1e-4
    cases["unclipped"] = unclipped
    evals = n_city * N_DEPTHS * len(t_eval)
    # warm-up: compile or load every kernel on contiguous few-cell arrays
    few = np.ascontiguousarray(p_all[:, :64])
    for fn in (K.factor_of_safety, K.factor_of_safety_direct):
        run_kernel(fn, few, rain, edges, t_eval)

    rows, results = [], {"rate": [], "city": [], "mc": []}
    # (a) rates on a sample of sloping cells (the numpy reference and the direct sum divide by
    # tan(slope)): the kernel, the direct numba sum (fewer cells: it is slow), numpy
    sloping = np.flatnonzero(p_all[K.P_SLOPE] > 0)
    sample = np.random.default_rng(1).permutation(sloping)[:100_000]
    for case, p in cases.items():
        for thr in threads:
            C.set_threads(thr)
            for name, fn, n_s in (("kernel", K.factor_of_safety, 100_000),
                                  ("direct numba", K.factor_of_safety_direct, 20_000)):
                ps = np.ascontiguousarray(p[:, sample[:n_s]])
                ev = ps.shape[1] * N_DEPTHS * len(t_eval)
                t = timed(lambda fn=fn, ps=ps: run_kernel(fn, ps, rain, edges, t_eval), repeat=3)
                t.update(case=case, impl=name, threads=thr, cells=ps.shape[1],
                         evals_per_s=ev / t["median_s"])
                results["rate"].append(t)
                rows.append(["rate", case, name, thr, ps.shape[1], t["median_s"], t["min_s"],
                             t["evals_per_s"] / 1e6, None, t["cpu_contention_pct"]])
        t = numpy_rate(np.ascontiguousarray(p[:, sample]), rain, edges, t_eval, args.numpy_cells)
        t.update(case=case, impl="numpy reference", threads=1)
        results["rate"].append(t)
        rows.append(["rate", case, "numpy reference", 1, t["cells"], t["median_s"], t["min_s"],
                     t["evals_per_s"] / 1e6, None, t["cpu_contention_pct"]])
    # equality of the kernel and the direct sum on the sample (the tests check the numpy side)
    ps = np.ascontiguousarray(p_all[:, sample[:20000]])
    a = run_kernel(K.factor_of_safety, ps, rain, edges, t_eval)
    b = run_kernel(K.factor_of_safety_direct, ps, rain, edges, t_eval)
    max_diff = float(np.nanmax(np.abs(a[0] - b[0])))

    # (b) the city
    for case, p in cases.items():
        for thr in threads if case == "storm" else threads[-1:]:
            if case == "unclipped" and args.quick:
                continue
            C.set_threads(thr)
            out = {}

            def call(p=p, out=out):
                out["r"] = run_kernel(K.factor_of_safety, p, rain, edges, t_eval)

            t = timed(call, repeat=2 if case == "storm" else 1, max_seconds=90.0)
            fs_min, _, t_fail = out["r"]
            t.update(case=case, threads=thr, cells=n_city, evals_per_s=evals / t["median_s"],
                     cells_failing=int(np.isfinite(t_fail).sum()), fs_min_min=float(np.nanmin(fs_min)),
                     target_s=TARGET_CITY_S)
            results["city"].append(t)
            rows.append(["city 30 m", case, "kernel", thr, n_city, t["median_s"], t["min_s"],
                         t["evals_per_s"] / 1e6, TARGET_CITY_S, t["cpu_contention_pct"]])

    # (c) Monte Carlo over Nanshan
    from physics.slope_montecarlo import monte_carlo

    nanshan = Domain.from_city(city.city, resolution=30, districts=["Nanshan"])
    p_n, z_n = land_params(nanshan)
    members = 50 if args.quick else args.members
    monte_carlo(p_n[:, :64].copy(), z_n[:64], 2, 0, rain=rain, t_edges=edges, t_eval=t_eval)
    runs = [(thr, False) for thr in (threads[-1:] if args.quick else threads)]
    runs.append((threads[-1], True))
    for thr, with_time in runs:
        C.set_threads(thr)
        out = {}

        def call(out=out, with_time=with_time):
            out["r"] = monte_carlo(p_n, z_n, members, 0, rain=rain, t_edges=edges, t_eval=t_eval,
                                   n_depths=N_DEPTHS, failure_time=with_time)

        t = timed(call, repeat=1, max_seconds=None)
        pf = out["r"]["p"]
        t.update(threads=thr, cells=p_n.shape[1], members=members, target_s=TARGET_MC_S,
                 failure_time=with_time,
                 member_cells_per_s=members * p_n.shape[1] / t["median_s"],
                 cells_p_gt_0=int((pf > 0).sum()), cells_p_gt_half=int((pf > 0.5).sum()))
        results["mc"].append(t)
        impl = "monte_carlo" + (" + failure times" if with_time else "")
        rows.append(["MC Nanshan", f"{members} members", impl, thr, p_n.shape[1],
                     t["median_s"], t["min_s"], None, TARGET_MC_S, t["cpu_contention_pct"]])

    notes = [
        f"evaluation = (cell, depth, output time); {N_DEPTHS} depths, {len(t_eval)} hourly outputs, "
        f"rain: {storm.get('name')} ({len(edges) - 1} blocks, {storm.get('total_mm', 0):.0f} mm)",
        f"city: {n_city:,} land cells of the {city.shape[0]} x {city.shape[1]} grid "
        f"(domain built in {domain_s:.1f} s, not timed)",
        "storm: default Ks 1e-6 m/s below every block (2 infiltration steps per cell); "
        "unclipped: Ks 1e-4 m/s (144 steps per cell, the lag table's worst case)",
        f"kernel vs direct numba sum on 20,000 cells: max |fs_min difference| = {max_diff:.1e}",
        "MC time includes drawing the normals (numpy, single thread, overlapped with the kernel)",
    ]
    if warn:
        notes.append(warn)
    C.print_table("Slope kernels: wall time (s), evaluations per second (M/s)",
                  ["part", "case", "impl", "threads", "cells", "median s", "min s", "M evals/s",
                   "target s", "contention %"], rows, notes)
    payload = {"benchmark": "slope", "quick": args.quick, "machine": C.machine_info(),
               "args": vars(args), "storm": storm, "n_depths": N_DEPTHS, "n_eval": len(t_eval),
               "city_cells": n_city, "grid": list(city.shape), "domain_build_s": domain_s,
               "kernel_vs_direct_max_abs_diff": max_diff, "results": results, "notes": notes}
    path = C.write_results("slope-quick" if args.quick else "slope", payload, args.out)
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
