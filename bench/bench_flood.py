"""Benchmark of the flood model (physics.flood / physics._kernels.flood) against Landlab and the memory roofline.

Cases
-----
* ``500x500`` and ``2000x2000``: a fractal (power-law spectrum) surface of
  30 m cells, 0-100 m relief, closed edges, Manning n = 0.03, theta = 0.7,
  rain on the whole grid at a constant 58 mm/h (the 2023-09-07 storm's
  1-hour mean is 116.8 mm/h; any constant rate costs the same per step).
  The model first runs 600 s (numba compilation, wetting up: after the
  first second every cell holds more than h_dry), then a timed stretch of
  whole steps.
* ``city``: Shenzhen at 30 m as the twin runs it
  (:func:`physics.flood_city.city_flood_setup`: NaN outside the DEM and
  outside the city polygon blocked, sea cells fixed at tide level 0 m, free
  edges, Manning per slope class, drainage per district) with a constant
  58 mm/h. Cell-updates are counted over the whole grid (cells x steps),
  like the other cases; the open (non-blocked) share is reported beside it.

Each case runs at 1 and 2 numba threads, in float64 and float32.
Throughput = cells x steps / wall time of the time loop (forcing look-ups,
CFL step and the kernel sweep; no output writing).

Reference: Landlab ``OverlandFlow`` (Adams et al. 2017, GMD 10:1645; the same
Bates/de Almeida scheme) on the same 500x500 and 2000x2000 grids with the
same DEM, rain, n and theta, each in a subprocess with
``OMP_NUM_THREADS`` = the thread count; its time loop (one adaptive step
per ``overland_flow()`` call) is timed after 3 warm-up steps; cell-updates
= nodes x steps.

Roofline: STREAM triad bandwidth (``bench/_common.py``) measured in the same
run at each thread count, divided by the bytes per cell-update of the
kernel design (:func:`physics._kernels.flood.bytes_per_cell_update`: every
array read or written once per pass, stencil neighbours served by the
caches, no write-allocate, as STREAM counts; for the city from its traffic
shares - Manning and drainage grids, porosity and level rows - times the
open-span share of the grid, since cell-updates count every grid cell but
the kernels touch only each row's open span). The fraction is the measured
rate over that bound. ``cpu_contention_pct`` (Linux PSI) is the share of
each timed stretch during which some task waited for a CPU: the machine is
shared, and figures taken at high contention understate the kernels.

Storm: the whole city at 30 m through the 6-hour alternating-block design
storm of the 2023-09-07 records (:func:`physics.rain.storm_2023_09_07`, via
the city set-up) at 2 threads, float64: wall time of the model run
(``FloodModel.run`` with a frame every 10 min; set-up excluded), the mean
step and where the deepest land cell is. ``--wave-depth-cap M`` repeats it
with ``FloodModel(wave_depth_cap_m=M)`` and compares the maximum depths
with the uncapped run. Skipped with ``--quick``.

Run ``python bench/bench_flood.py --help``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402

from physics._kernels import flood as K  # noqa: E402
from physics.flood import FloodModel  # noqa: E402
from physics.forcing import UniformRain  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
RAIN_MM_H = 58.0
MANNING = 0.03
THETA = 0.7
DX = 30.0

LANDLAB_SCRIPT = r"""
import json, sys, time
import numpy as np
from landlab import RasterModelGrid
from landlab.components import OverlandFlow
p = json.loads(sys.argv[1])
z = np.load(p["dem"])
ny, nx = z.shape
g = RasterModelGrid((ny, nx), xy_spacing=p["dx"])
g.add_field("topographic__elevation", z[::-1].ravel().astype(float), at="node")
g.add_full("surface_water__depth", p["h0"], at="node")
of = OverlandFlow(g, mannings_n=p["n"], theta=p["theta"], rainfall_intensity=p["rain_m_s"])
for _ in range(3):
    of.overland_flow()
steps = 0
t0 = time.perf_counter()
best = 1e300
while True:
    t1 = time.perf_counter()
    of.overland_flow()
    t2 = time.perf_counter()
    best = min(best, t2 - t1)
    steps += 1
    wall = t2 - t0
    if steps >= p["min_steps"] and wall >= p["min_s"]:
        break
import landlab
print(json.dumps({"steps": steps, "wall_s": wall, "best_step_s": best, "cells": ny * nx,
                  "landlab": landlab.__version__}))
"""


def fractal_dem(n: int, relief: float = 100.0, seed: int = 0) -> np.ndarray:
    """A power-law-spectrum surface (n x n), 0..relief m."""
    rng = np.random.default_rng(seed)
    k2 = np.fft.fftfreq(n)[:, None] ** 2 + np.fft.fftfreq(n)[None, :] ** 2
    k2[0, 0] = 1.0
    spec = (rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n))) / k2**1.1
    z = np.real(np.fft.ifft2(spec))
    return (z - z.min()) / (z.max() - z.min()) * relief


def time_model(make, *, warm_s: float, chunk_s: float, min_s: float, min_steps: int) -> dict[str, Any]:
    """Build a model, run ``warm_s`` untimed, then whole ``chunk_s`` intervals until min_s and min_steps."""
    m = make()
    m.step(warm_s)
    s0, c0 = m.n_steps, m.cell_updates
    stall0 = C.cpu_stall_us()
    t0 = time.perf_counter()
    best = 0.0
    while True:
        n0, c1 = m.n_steps, time.perf_counter()
        m.step(chunk_s)
        t1 = time.perf_counter()
        best = max(best, (m.n_steps - n0) * m.h.size / (t1 - c1))
        wall = t1 - t0
        if wall >= min_s and m.n_steps - s0 >= min_steps:
            break
    contention = C.contention_pct(stall0, wall)
    steps = m.n_steps - s0
    cu = m.cell_updates - c0
    open_frac = float(np.count_nonzero(m.phi > 0)) / m.h.size
    b = m.balance()
    return {"steps": steps, "wall_s": wall, "cell_updates": cu, "rate": cu / wall, "best_rate": best,
            "open_fraction": open_frac, "relative_volume_error": b["relative_error"],
            "cpu_contention_pct": contention, "traffic": traffic_shares(m)}


def traffic_shares(m: FloodModel) -> dict[str, Any]:
    """What the kernels read per grid cell: the open-span share and the shares that read phi / level rows."""
    cols = K.active_columns(m.phi)
    w = (cols[:, 1] - cols[:, 0]).astype(np.float64)
    span = float(w.sum())
    lvl_rows = m._level_mask.any(axis=1)
    return {"span_fraction": span / m.h.size,
            "phi_read": float(w[cols[:, 2] == 0].sum() / span) if span else 0.0,
            "level": float(w[lvl_rows].sum() / span) if span else 0.0,
            "n2_grid": bool(m._grid.n2.size > 1), "phi_binary": bool(m._grid.phi_binary),
            "drainage_grid": bool(m.drain.size > 1)}


def bytes_per_grid_cell(itemsize: int, tr: dict[str, Any]) -> dict[str, float]:
    """Bytes per cell-update counted over the whole grid (the kernels touch only the open span)."""
    bpc = K.bytes_per_cell_update(itemsize, drainage_grid=tr["drainage_grid"], level=tr["level"],
                                  phi_binary=tr["phi_binary"], phi_read=tr["phi_read"], n2_grid=tr["n2_grid"])
    return {k: v * tr["span_fraction"] for k, v in bpc.items()}


def run_model_case(name: str, make, threads: int, dtype, quick: bool) -> dict[str, Any]:
    C.set_threads(threads)
    m_kw = {"warm_s": 300.0 if quick else 600.0, "chunk_s": 30.0,
            "min_s": 1.0 if quick else 4.0, "min_steps": 5 if quick else 20}
    r = time_model(lambda: make(dtype), **m_kw)
    r.update(case=name, threads=threads, dtype=np.dtype(dtype).name, model="twin")
    return r


def run_landlab(z: np.ndarray, threads: int, quick: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "dem.npy"
        np.save(path, z)
        p = {"dem": str(path), "dx": DX, "h0": 1e-3, "n": MANNING, "theta": THETA,
             "rain_m_s": RAIN_MM_H / 3.6e6, "min_steps": 3 if quick else 10, "min_s": 1.0 if quick else 4.0}
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        stall0, t0 = C.cpu_stall_us(), time.perf_counter()
        out = subprocess.run([sys.executable, "-c", LANDLAB_SCRIPT, json.dumps(p)], capture_output=True,
                             text=True, env=env, timeout=3600)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed"}
    r = json.loads(out.stdout.strip().splitlines()[-1])
    r["rate"] = r["cells"] * r["steps"] / r["wall_s"]
    r["best_rate"] = r["cells"] / r["best_step_s"]
    r["cpu_contention_pct"] = C.contention_pct(stall0, time.perf_counter() - t0)  # whole subprocess
    return r


def city_setup(storm, hours: float):
    from physics.flood_city import city_flood_setup

    return city_flood_setup("shenzhen", resolution=DX, storm=storm, hours=hours)


def storm_run(s, threads: int, cap, ref_hmax=None) -> dict[str, Any]:
    """The 6-hour design storm over the city (set-up ``s``), float64; optional wave-depth cap; timing and maxima."""
    from physics.flood_city import model_kwargs

    m = FloodModel(**model_kwargs(s), dtype=np.float64, wave_depth_cap_m=cap)
    m.step(1e-3)  # compile / load the cache outside the timing
    stall0 = C.cpu_stall_us()
    t0 = time.perf_counter()
    m.run(6 * 3600.0 - 1e-3, 600.0)
    wall = time.perf_counter() - t0
    b = m.balance()
    land = s["context"]["land"]
    hm = np.where(land, m.hmax.astype(np.float64), np.nan)
    jm, im = np.unravel_index(int(np.nanargmax(hm)), m.shape)
    out = {"threads": threads, "dtype": "float64", "wave_depth_cap_m": cap, "grid": list(m.shape), "wall_s": wall,
           "steps": m.n_steps, "cell_updates": m.cell_updates, "rate": m.cell_updates / wall,
           "mean_dt_s": 6 * 3600.0 / m.n_steps, "cpu_contention_pct": C.contention_pct(stall0, wall),
           "rain_mm": float(s["rain"].depth_mm(0.0, 6 * 3600.0)), "relative_volume_error": b["relative_error"],
           "max_depth_land_m": float(np.nanmax(hm)),
           "max_depth_at_xy": [float(m.meta["x"][im]), float(m.meta["y"][jm])],
           "land_cells_deeper_than_m": {str(d): int(np.count_nonzero(hm > d)) for d in (0.15, 0.5, 1, 2, 5, 10)}}
    if ref_hmax is not None:
        d = hm - ref_hmax
        wet = np.isfinite(d) & ((ref_hmax > 0.15) | (hm > 0.15))
        out["max_depth_vs_uncapped"] = {
            "rms_m_where_either_above_0.15": float(np.sqrt(np.nanmean(d[wet] ** 2))),
            "max_abs_m": float(np.nanmax(np.abs(d))),
            "flooded_cells_0.15_uncapped": int(np.count_nonzero(ref_hmax > 0.15)),
            "flooded_cells_0.15_capped": int(np.count_nonzero(hm > 0.15))}
    out["_hmax"] = hm  # (taken out before the JSON)
    return out


def storm_line(r: dict[str, Any]) -> str:
    cap = r["wave_depth_cap_m"]
    txt = (f"whole-city 6 h storm at 30 m, {r['threads']} thr, wave-depth cap {cap if cap else 'none'}: "
           f"{r['wall_s']:.1f} s wall, {r['steps']} steps (mean dt {r['mean_dt_s']:.2f} s), "
           f"{r['rate'] / 1e6:.1f} M cell-updates/s, max depth {r['max_depth_land_m']:.1f} m at "
           f"{r['max_depth_at_xy']}, cpu contention {r['cpu_contention_pct'] or 0:.0f} %")
    if "max_depth_vs_uncapped" in r:
        c = r["max_depth_vs_uncapped"]
        txt += (f"; max depth vs uncapped: RMS {c['rms_m_where_either_above_0.15']:.3f} m, max "
                f"{c['max_abs_m']:.2f} m, cells > 0.15 m {c['flooded_cells_0.15_capped']} vs "
                f"{c['flooded_cells_0.15_uncapped']}")
    return txt


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--quick", action="store_true", help="short timings, 500x500 + city only, no 6-hour storm")
    ap.add_argument("--out", default=None, help="results folder (default bench/results/)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="numba / OpenMP thread counts")
    ap.add_argument("--no-landlab", action="store_true", help="skip the Landlab reference")
    ap.add_argument("--no-city", action="store_true", help="skip the Shenzhen cases (no TWIN_DATA needed)")
    ap.add_argument("--no-storm", action="store_true", help="skip the whole-city 6-hour storm")
    ap.add_argument("--wave-depth-cap", type=float, nargs="*", default=[], metavar="M",
                    help="also run the storm with FloodModel(wave_depth_cap_m=M) for each M and compare maxima")
    args = ap.parse_args(argv)

    threads = C.thread_counts(args.threads)
    warn = C.busy_warning()
    sizes = [500] if args.quick else [500, 2000]
    dtypes = [np.float64, np.float32]
    rows: list[dict[str, Any]] = []

    bw = {t: C.stream_triad(t, total_mb=200.0 if args.quick else 400.0) for t in threads}
    for t, b in bw.items():
        print(f"STREAM triad, {t} thread(s): {b.best_gbs:.1f} GB/s (best), {b.median_gbs:.1f} GB/s (median)")

    dems = {n: fractal_dem(n) for n in sizes}
    for n, z in dems.items():
        def make(dtype, z=z):
            return FloodModel(z, dx=DX, manning=MANNING, theta=THETA, dtype=dtype,
                              rain=UniformRain.constant(RAIN_MM_H, 1e7))
        for dtype in dtypes:
            for t in threads:
                r = run_model_case(f"{n}x{n}", make, t, dtype, args.quick)
                rows.append(r)
                print(f"  {r['case']:>9} {r['dtype']} {t} thr: {r['rate'] / 1e6:.1f} M cell-updates/s")

    city = None
    if not args.no_city:
        try:
            city = city_setup(RAIN_MM_H, 24.0)
        except Exception as exc:  # data missing: say so, keep the rest
            print(f"city cases skipped: {exc}")
    if city is not None:
        from physics.flood_city import model_kwargs

        kw = model_kwargs(city)

        def make_city(dtype):
            return FloodModel(**kw, dtype=dtype)

        for dtype in dtypes:
            for t in threads:
                r = run_model_case("city 30 m", make_city, t, dtype, args.quick)
                r["grid"] = list(np.shape(kw["dem"]))
                rows.append(r)
                print(f"  city 30 m {r['dtype']} {t} thr: {r['rate'] / 1e6:.1f} M cell-updates/s "
                      f"(open {r['open_fraction']:.0%})")

    ll_rows = []
    if not args.no_landlab:
        for n, z in dems.items():
            for t in threads:
                r = run_landlab(z, t, args.quick)
                r.update(case=f"{n}x{n}", threads=t, dtype="float64", model="landlab")
                ll_rows.append(r)
                if "error" in r:
                    print(f"  landlab {n}x{n} {t} thr: {r['error']}")
                else:
                    print(f"  landlab {n}x{n} {t} thr: {r['rate'] / 1e6:.1f} M cell-updates/s")

    storm = None
    if city is not None and not args.quick and not args.no_storm:
        C.set_threads(max(threads))
        s = city_setup("2023-09-07", 6.0)
        storm = storm_run(s, max(threads), None)
        ref_hmax = storm.pop("_hmax")
        print(storm_line(storm))
        storm["variants"] = []
        for cap in args.wave_depth_cap:
            v = storm_run(s, max(threads), cap, ref_hmax=ref_hmax)
            v.pop("_hmax")
            storm["variants"].append(v)
            print(storm_line(v))

    # -- table ------------------------------------------------------------------------------
    ll = {(r["case"], r["threads"]): r.get("rate") for r in ll_rows}
    ll_best = {(r["case"], r["threads"]): r.get("best_rate") for r in ll_rows}
    table = []
    for r in rows:
        itemsize = np.dtype(r["dtype"]).itemsize
        bpc = bytes_per_grid_cell(itemsize, r["traffic"])
        roof = bw[r["threads"]].best_gbs * 1e9 / bpc["total"]
        r["bytes_per_cell_update"] = bpc
        r["roofline_rate"] = roof
        r["roofline_fraction"] = r["rate"] / roof
        ref = ll.get((r["case"], r["threads"]))
        r["vs_landlab"] = r["rate"] / ref if ref else None
        ref_b = ll_best.get((r["case"], r["threads"]))
        r["best_vs_landlab_best"] = r["best_rate"] / ref_b if ref_b else None
        r["best_roofline_fraction"] = r["best_rate"] / roof
        table.append([r["case"], r["dtype"], r["threads"], r["rate"] / 1e6, r["best_rate"] / 1e6,
                      ref / 1e6 if ref else None, ref_b / 1e6 if ref_b else None, r["vs_landlab"],
                      r["best_vs_landlab_best"], bpc["total"], roof / 1e6, r["roofline_fraction"],
                      r["best_roofline_fraction"], r["relative_volume_error"], r["cpu_contention_pct"]])
    for r in ll_rows:
        if "rate" in r:
            table.append([r["case"], "landlab f64", r["threads"], r["rate"] / 1e6, r["best_rate"] / 1e6, None,
                          None, None, None, None, None, None, None, None, r.get("cpu_contention_pct")])
    notes = [f"STREAM triad {t} thr: {b.best_gbs:.1f} GB/s" for t, b in bw.items()]
    notes.append("bytes/cell-update from the kernel design (K.bytes_per_cell_update): all-open grid float64 "
                 "72 B (one fused sweep; the two-pass step: 128 B), float32 36 B; the city adds the Manning and drainage "
                 "grids, phi in rows with blocked cells and the level mask/bed in sea rows, and is scaled by the "
                 "open-span share of the grid (the kernels read nothing outside it)")
    notes.append("cell-updates = all grid cells x steps (blocked cells included, as for Landlab)")
    notes.append("M/s = mean over the timed stretch; best = fastest 30 s chunk (twin) or step (Landlab), "
                 "STREAM's convention (it reports its best run); the best columns compare best with best")
    notes.append("cpu contention % = share of the timed wall time during which some task on the machine "
                 "waited for a CPU (Linux PSI); the machine is shared, high values mean slowed timings")
    if storm:
        notes.append(storm_line(storm))
        notes.extend(storm_line(v) for v in storm["variants"])
    if warn:
        notes.append(warn)
    C.print_table("Flood model: cell-updates per second (M/s)",
                  ["case", "dtype", "thr", "twin M/s", "best", "landlab M/s", "best", "x landlab", "best/best",
                   "B/cu", "roofline M/s", "of roofline", "best", "rel. vol. err", "cpu contention %"],
                  table, notes)
    payload = {"benchmark": "flood", "quick": args.quick, "machine": C.machine_info(),
               "stream": {str(t): b.as_dict() for t, b in bw.items()}, "twin": rows, "landlab": ll_rows,
               "city_storm_6h": storm,
               "settings": {"rain_mm_h": RAIN_MM_H, "manning": MANNING, "theta": THETA, "dx_m": DX}}
    path = C.write_results("flood-quick" if args.quick else "flood", payload, args.out)
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
