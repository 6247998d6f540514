"""Benchmark of the flood model (both schemes) against Landlab OverlandFlow and the memory roofline.

Cases
-----
* ``500x500`` and ``2000x2000``: a fractal (power-law spectrum) surface of
  30 m cells, 0-100 m relief, closed edges, Manning n = 0.03, theta = 0.7,
  rain on the whole grid at a constant 58 mm/h (the 2023-09-07 storm's
  1-hour mean is 116.8 mm/h; any constant rate costs the same per step).
* ``city 30 m``: Shenzhen at 30 m as the twin runs it
  (:func:`physics.flood_city.city_flood_setup`: NaN outside the DEM and
  outside the city polygon blocked, sea cells fixed at tide level 0 m, free
  edges, Manning per slope class, drainage per district) with a constant
  58 mm/h.

Each case runs the local-inertial scheme (``FloodModel()``) and the
finite-volume scheme (``FloodModel(scheme="fv")``, a row saying "not built"
when this checkout has none) at 1 and 2 numba threads, in float64 and
float32; Landlab on the fractal surfaces at 1 and 2 OpenMP threads, float64.

The same case on every side (issue 17, "Fair figures")
-------------------------------------------------------
* **Initial state**: the local-inertial model (float64) rains ``--warm-s``
  seconds (1800 s, as in the LISFLOOD-FP runs of the references; 900 s with
  ``--quick``) onto the dry surface; that depth
  field, at rest (discharges 0), is the initial state of every timed run:
  both schemes, both precisions, both thread counts, and Landlab.
* **Edges**: closed on all four sides. Landlab's grid has one ring of nodes
  more than the model's, closed (``set_closed_boundaries_at_grid_edges``):
  its core nodes are the model's cells, and its rates count core nodes.
* **Timing**: one untimed chunk of ``CHUNK_S`` = 60 simulated seconds
  (numba compilation or cache load, first touch), then ``N`` chunks of 60 s
  timed one by one (N = 8; 3 with ``--quick``). Each side sub-steps inside a
  chunk under its own CFL limit and cuts the last sub-step at the chunk's
  end. "median" and "best" are the median and the fastest of those chunks,
  the same on every side; "mean" is all chunks' simulated time over their
  wall time.
* **Time to solution**: simulated seconds per wall second beside
  cell-updates/s, and steps per simulated second: the local-inertial step is
  alpha sqrt(theta) dx / sqrt(g h_max), Landlab's alpha dx / sqrt(g h_max)
  (alpha = 0.7 on both), so at equal depths the model takes
  1/sqrt(theta) = 1.20x more steps for the same simulated time.
* **Active cells**: cell-updates count every grid cell (steps x cells). On
  the city, blocked cells (outside the DEM and the outline) and fixed-level
  cells (sea, outflow ring) count too; the rate over active cells (open,
  not fixed-level) x steps is reported beside it.

Throughput = cells x steps / wall time of the time loop (forcing look-ups,
CFL step and the kernel sweep; no output writing).

Roofline: STREAM triad bandwidth (``bench/_common.py``) measured in the same
run at each thread count, divided by the bytes per cell-update of the
kernel design (local-inertial: :func:`physics._kernels.flood.bytes_per_cell_update`:
every array read or written once per pass, stencil neighbours served by the
caches, no write-allocate, as STREAM counts; for the city from its traffic
shares - Manning and drainage grids, porosity and level rows - times the
open-span share of the grid; finite volume:
:func:`physics._kernels.flood_fv.bytes_per_cell_update`, 9 words a cell as
well, with the same shares). The fraction is the measured
median rate over that bound. ``cpu_contention_pct`` (Linux PSI) is the share
of each timed stretch during which some task waited for a CPU: the machine
is shared, and figures taken at high contention understate the kernels.

Targets (issue 17) are a column of the table: local-inertial >= 10x Landlab
OverlandFlow (f64, 2 threads); finite volume >= 55 M cell-updates/s at
2000x2000, 2 threads, f64. LISFLOOD-FP 8.1's figures (ACC ~14, FV1 ~11,
DG2 ~2 M cell-updates/s at 2000x2000, 2 threads, f64, rain on a 30 m
surface) are printed as the issue states them: not measured here.

Storm: the whole city at 30 m through the 6-hour alternating-block design
storm of the 2023-09-07 records (:func:`physics.rain.storm_2023_09_07`, via
the city set-up) at 2 threads, float64: wall time of the model run
(``FloodModel.run`` with a frame every 10 min; set-up excluded), simulated
seconds per wall second, the mean step, the rate over all and over active
cells, and where the deepest land cell is. ``--wave-depth-cap M`` repeats it
with ``FloodModel(wave_depth_cap_m=M)`` and compares the maximum depths
with the uncapped run. Skipped with ``--quick``.

Run ``python bench/bench_flood.py --help``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
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
ALPHA = 0.7
DX = 30.0
CHUNK_S = 60.0
LI, FV = "local_inertial", "fv"

#: Issue 17's figures for LISFLOOD-FP 8.1 (2000x2000, 2 threads, f64, rain on a 30 m surface): not measured here.
LISFLOOD_FP_ISSUE = [("ACC (local inertial)", 14e6, ""), ("FV1 (finite volume, 1st order)", 11e6,
                                                          "~30 % more steps than ACC"),
                     ("DG2", 2e6, "")]
TARGET_LI_X_LANDLAB = 10.0
TARGET_FV_RATE = 55e6

LANDLAB_SCRIPT = r"""
import json, sys, time
import numpy as np
from landlab import RasterModelGrid
from landlab.components import OverlandFlow
p = json.loads(sys.argv[1])
z = np.pad(np.load(p["dem"]), 1, mode="edge")  # one ring of closed nodes around the model's cells
h = np.pad(np.load(p["h0"]), 1)
ny, nx = z.shape
g = RasterModelGrid((ny, nx), xy_spacing=p["dx"])
g.add_field("topographic__elevation", z[::-1].ravel().astype(float), at="node")
g.add_field("surface_water__depth", h[::-1].ravel().astype(float), at="node")
g.set_closed_boundaries_at_grid_edges(True, True, True, True)
of = OverlandFlow(g, mannings_n=p["n"], theta=p["theta"], alpha=p["alpha"], rainfall_intensity=p["rain_m_s"])
steps = [0]
cfl = of.calc_time_step
def counted():  # overland_flow(dt) calls it once per sub-step
    steps[0] += 1
    return cfl()
of.calc_time_step = counted
walls, counts = [], []
for k in range(p["warm_chunks"] + p["chunks"]):
    s0, t0 = steps[0], time.perf_counter()
    of.overland_flow(p["chunk_s"])
    if k >= p["warm_chunks"]:
        walls.append(time.perf_counter() - t0)
        counts.append(steps[0] - s0)
hc = g.at_node["surface_water__depth"].reshape(ny, nx)[1:-1, 1:-1]
import landlab
print(json.dumps({"walls": walls, "steps": counts, "mean_depth_m": float(hc.mean()), "max_depth_m": float(hc.max()),
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


# -- timing in chunks (the same on every side) ------------------------------------------------------------
def chunk_figures(walls: list[float], steps: list[int], cells: int, active: int) -> dict[str, Any]:
    """Rates and time to solution of timed chunks of CHUNK_S simulated seconds: mean, median and best."""
    w, s = np.asarray(walls, dtype=np.float64), np.asarray(steps, dtype=np.int64)
    sim, wall = CHUNK_S * w.size, float(w.sum())
    rates = s * cells / w
    return {"chunks": int(w.size), "chunk_s": CHUNK_S, "wall_s": wall, "steps": int(s.sum()),
            "steps_per_sim_s": float(s.sum() / sim), "cells": int(cells), "active_cells": int(active),
            "sim_s_per_wall_s": sim / wall, "sim_s_per_wall_s_median": CHUNK_S / float(np.median(w)),
            "sim_s_per_wall_s_best": CHUNK_S / float(w.min()),
            "rate": float(s.sum() * cells / wall), "rate_median": float(statistics.median(rates)),
            "rate_best": float(rates.max()), "active_rate": float(s.sum() * active / wall),
            "active_rate_median": float(statistics.median(s * active / w))}


def time_model(m, n_chunks: int, active: int) -> dict[str, Any]:
    """One untimed chunk, then ``n_chunks`` timed chunks of CHUNK_S simulated seconds."""
    m.step(CHUNK_S)
    walls, steps = [], []
    stall0, t0 = C.cpu_stall_us(), time.perf_counter()
    for _ in range(n_chunks):
        s0, c0 = m.n_steps, time.perf_counter()
        m.step(CHUNK_S)
        walls.append(time.perf_counter() - c0)
        steps.append(m.n_steps - s0)
    r = chunk_figures(walls, steps, m.h.size, active)
    r["cpu_contention_pct"] = C.contention_pct(stall0, time.perf_counter() - t0)
    r["relative_volume_error"] = m.balance()["relative_error"]
    r["mean_depth_m"] = float(m.h.astype(np.float64).mean())
    r["max_depth_m"] = float(m.h.max())
    return r


def traffic_shares(m: FloodModel) -> dict[str, Any]:
    """What the kernels read per grid cell: the open-span share, and the rows that read phi / level data."""
    cols = K.active_columns(m.phi)
    w = (cols[:, 1] - cols[:, 0]).astype(np.float64)
    span = float(w.sum())
    b = getattr(m, "boundaries", None)
    level = (np.asarray(b.level_cells) > 0) if b is not None and hasattr(b, "level_cells") \
        else np.asarray(m._level_mask, dtype=bool)
    phi = np.asarray(m.phi)
    return {"span_fraction": span / m.h.size,
            "phi_read": float(w[cols[:, 2] == 0].sum() / span) if span else 0.0,
            "level": float(w[level.any(axis=1)].sum() / span) if span else 0.0,
            "n2_grid": bool(m.n2.size > 1 and not np.all(m.n2 == m.n2.flat[0])),
            "phi_binary": bool(np.all((phi == 0) | (phi == 1))), "drainage_grid": bool(m.drain.size > 1)}


def bytes_per_grid_cell(m, scheme: str) -> float:
    """Bytes per cell-update counted over the whole grid: the kernel's traffic model x its open-span share."""
    itemsize = np.dtype(m.dtype).itemsize
    tr = traffic_shares(m)
    common = {"drainage_grid": tr["drainage_grid"], "level": tr["level"], "phi_binary": tr["phi_binary"],
              "n2_grid": tr["n2_grid"]}
    if scheme == LI:
        bpc = K.bytes_per_cell_update(itemsize, phi_read=tr["phi_read"], **common)
    else:
        from physics._kernels import flood_fv as KF

        bpc = KF.bytes_per_cell_update(itemsize, **common)
    return bpc["total"] * tr["span_fraction"]


def build(make: Callable[..., FloodModel], scheme: str, dtype, h0: np.ndarray):
    """A model of ``scheme``, or None and the reason (the fv scheme may not be in this checkout)."""
    if scheme == LI:
        return make(dtype, scheme, h0), None
    try:
        return make(dtype, scheme, h0), None
    except (TypeError, ImportError, NotImplementedError, ValueError) as exc:  # twin's ValidationError is a ValueError
        return None, f"not built ({type(exc).__name__}: {str(exc)[:80]})"


def warm_state(make: Callable[..., FloodModel], warm_s: float, threads: int) -> np.ndarray:
    """Depths after ``warm_s`` s of rain (local-inertial, float64): the common initial state of every timed run."""
    C.set_threads(threads)
    m = make(np.float64, LI, None)
    m.step(warm_s)
    return m.h.astype(np.float64).copy()


def run_model_cases(name: str, make, h0, active: int, threads: list[int], n_chunks: int) -> list[dict[str, Any]]:
    rows = []
    for scheme in (LI, FV):
        for dtype in (np.float64, np.float32):
            for t in threads:
                C.set_threads(t)
                m, why = build(make, scheme, dtype, h0)
                row = {"case": name, "scheme": scheme, "dtype": np.dtype(dtype).name, "threads": t, "model": "twin"}
                if m is None:
                    row["error"] = why
                    rows.append(row)
                    print(f"  {name:>9} {scheme} {row['dtype']} {t} thr: {why}")
                    break
                row.update(time_model(m, n_chunks, active))
                row["bytes_per_cell_update"] = bytes_per_grid_cell(m, scheme)
                rows.append(row)
                print(f"  {name:>9} {scheme} {row['dtype']} {t} thr: {row['sim_s_per_wall_s']:.1f} sim s/wall s, "
                      f"{row['rate_median'] / 1e6:.1f} M cell-updates/s (median), {row['steps_per_sim_s']:.3f} "
                      f"steps/sim s")
            if rows and "error" in rows[-1]:
                break
    return rows


def run_landlab(z: np.ndarray, h0: np.ndarray, threads: int, n_chunks: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "dem.npy", z)
        np.save(Path(tmp) / "h0.npy", h0)
        p = {"dem": str(Path(tmp) / "dem.npy"), "h0": str(Path(tmp) / "h0.npy"), "dx": DX, "n": MANNING,
             "theta": THETA, "alpha": ALPHA, "rain_m_s": RAIN_MM_H / 3.6e6, "chunk_s": CHUNK_S,
             "warm_chunks": 1, "chunks": n_chunks}
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        stall0, t0 = C.cpu_stall_us(), time.perf_counter()
        out = subprocess.run([sys.executable, "-c", LANDLAB_SCRIPT, json.dumps(p)], capture_output=True,
                             text=True, env=env, timeout=3600)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed"}
    raw = json.loads(out.stdout.strip().splitlines()[-1])
    r = chunk_figures(raw["walls"], raw["steps"], z.size, z.size)
    r.update(mean_depth_m=raw["mean_depth_m"], max_depth_m=raw["max_depth_m"], landlab=raw["landlab"])
    r["cpu_contention_pct"] = C.contention_pct(stall0, time.perf_counter() - t0)  # whole subprocess
    return r


def city_setup(storm, hours: float):
    from physics.flood_city import city_flood_setup

    return city_flood_setup("shenzhen", resolution=DX, storm=storm, hours=hours)


def active_cells(kw: dict[str, Any]) -> int:
    """Open cells that are not fixed-level (sea, outflow ring): the cells the scheme actually steps."""
    z = np.asarray(getattr(kw["dem"], "values", kw["dem"]), dtype=np.float64)
    act = np.isfinite(z)
    if kw.get("porosity") is not None:
        act &= np.asarray(kw["porosity"]) > 0
    if kw.get("water_level") is not None:
        act &= ~np.asarray(kw["water_level"].mask, dtype=bool)
    return int(np.count_nonzero(act))


def storm_run(s, threads: int, cap, ref_hmax=None) -> dict[str, Any]:
    """The 6-hour design storm over the city (set-up ``s``), float64; optional wave-depth cap; timing and maxima."""
    from physics.flood_city import model_kwargs

    kw = model_kwargs(s)
    m = FloodModel(**kw, dtype=np.float64, wave_depth_cap_m=cap)
    m.step(1e-3)  # compile / load the cache outside the timing
    stall0 = C.cpu_stall_us()
    t0 = time.perf_counter()
    m.run(6 * 3600.0 - 1e-3, 600.0)
    wall = time.perf_counter() - t0
    b = m.balance()
    land = s["context"]["land"]
    hm = np.where(land, m.hmax.astype(np.float64), np.nan)
    jm, im = np.unravel_index(int(np.nanargmax(hm)), m.shape)
    act = active_cells(kw)
    out = {"threads": threads, "dtype": "float64", "wave_depth_cap_m": cap, "grid": list(m.shape), "wall_s": wall,
           "steps": m.n_steps, "cell_updates": m.cell_updates, "rate": m.cell_updates / wall,
           "active_cells": act, "active_rate": m.n_steps * act / wall, "sim_s_per_wall_s": 6 * 3600.0 / wall,
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
           f"{r['wall_s']:.1f} s wall ({r['sim_s_per_wall_s']:.0f} sim s/wall s), {r['steps']} steps (mean dt "
           f"{r['mean_dt_s']:.2f} s), {r['rate'] / 1e6:.1f} M cell-updates/s over all {r['grid'][0] * r['grid'][1]} "
           f"cells, {r['active_rate'] / 1e6:.1f} M/s over the {r['active_cells']} active ones, max depth "
           f"{r['max_depth_land_m']:.1f} m at {r['max_depth_at_xy']}, cpu contention {r['cpu_contention_pct'] or 0:.0f} %")
    if "max_depth_vs_uncapped" in r:
        c = r["max_depth_vs_uncapped"]
        txt += (f"; max depth vs uncapped: RMS {c['rms_m_where_either_above_0.15']:.3f} m, max "
                f"{c['max_abs_m']:.2f} m, cells > 0.15 m {c['flooded_cells_0.15_capped']} vs "
                f"{c['flooded_cells_0.15_uncapped']}")
    return txt


# -- the table -------------------------------------------------------------------------------------------
def compare(rows: list[dict[str, Any]], ll_rows: list[dict[str, Any]], bw: dict[int, Any]) -> None:
    """Add the roofline bound and the ratios to Landlab (median/median, best/best) to each model row."""
    ll = {(r["case"], r["threads"]): r for r in ll_rows if "error" not in r}
    for r in rows:
        if "error" in r:
            continue
        b = r["bytes_per_cell_update"]
        roof = bw[r["threads"]].best_gbs * 1e9 / b if b else None
        r["roofline_rate"] = roof
        r["roofline_fraction"] = r["rate_median"] / roof if roof else None
        ref = ll.get((r["case"], r["threads"]))
        if ref is not None:
            r["vs_landlab"] = {k: r[k] / ref[k] for k in ("rate_median", "rate_best", "sim_s_per_wall_s_median",
                                                          "sim_s_per_wall_s_best")}
        r["target"] = target(r)


def target(r: dict[str, Any]) -> str | None:
    """Issue 17's target for the row, and whether the median figures meet it."""
    if r["case"] != "2000x2000" or r["threads"] != 2 or r["dtype"] != "float64":
        return None
    if r["scheme"] == LI and "vs_landlab" in r:
        v = r["vs_landlab"]
        ok = [f"{'met' if v[k] >= TARGET_LI_X_LANDLAB else 'missed'} on {nm} ({v[k]:.1f}x)"
              for k, nm in (("rate_median", "cell-updates/s"), ("sim_s_per_wall_s_median", "time to solution"))]
        return f">= {TARGET_LI_X_LANDLAB:.0f}x Landlab: " + ", ".join(ok)
    if r["scheme"] == FV:
        ok = "met" if r["rate_median"] >= TARGET_FV_RATE else "missed"
        return f">= {TARGET_FV_RATE / 1e6:.0f} M cell-updates/s: {ok}"
    return None


def table_rows(rows, ll_rows) -> list[list[Any]]:
    out = []
    for r in rows + ll_rows:
        label = "landlab" if r.get("model") == "landlab" else r["scheme"]
        if "error" in r:
            out.append([r["case"], label, r.get("dtype"), r["threads"], r["error"]] + [None] * 14)
            continue
        v = r.get("vs_landlab") or {}
        out.append([r["case"], label, r["dtype"], r["threads"], r["sim_s_per_wall_s"], r["sim_s_per_wall_s_best"],
                    r["steps_per_sim_s"], r["max_depth_m"], r["rate"] / 1e6, r["rate_median"] / 1e6, r["rate_best"] / 1e6,
                    r["active_rate_median"] / 1e6 if r["active_cells"] != r["cells"] else None,
                    r.get("bytes_per_cell_update"), r.get("roofline_fraction"), v.get("sim_s_per_wall_s_median"),
                    v.get("rate_median"), r.get("relative_volume_error"), r.get("cpu_contention_pct"),
                    r.get("target")])
    for nm, rate, note in LISFLOOD_FP_ISSUE:
        out.append(["2000x2000", f"LISFLOOD-FP 8.1 {nm}: issue 17's figure, not measured here", "float64", 2, None,
                    None, note or None, None, None, rate / 1e6, None, None, None, None, None, None, None, None, None])
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--quick", action="store_true", help="short timings, 500x500 only, no city, no 6-hour storm "
                                                         "(< 1 min)")
    ap.add_argument("--out", default=None, help="results folder (default bench/results/)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="numba / OpenMP thread counts")
    ap.add_argument("--sizes", type=int, nargs="+", default=None, help="fractal grid sizes (default 500 2000)")
    ap.add_argument("--warm-s", type=float, default=None, help="rain before the common initial state (s)")
    ap.add_argument("--chunks", type=int, default=None, help="timed chunks of 60 s on every side (8; --quick 3)")
    ap.add_argument("--no-landlab", action="store_true", help="skip the Landlab reference")
    ap.add_argument("--no-city", action="store_true", help="skip the Shenzhen cases (no TWIN_DATA needed)")
    ap.add_argument("--no-storm", action="store_true", help="skip the whole-city 6-hour storm")
    ap.add_argument("--wave-depth-cap", type=float, nargs="*", default=[], metavar="M",
                    help="also run the storm with FloodModel(wave_depth_cap_m=M) for each M and compare maxima")
    args = ap.parse_args(argv)

    threads = C.thread_counts(args.threads)
    warn = C.busy_warning()
    sizes = args.sizes or ([500] if args.quick else [500, 2000])
    warm_s = args.warm_s or (900.0 if args.quick else 1800.0)
    n_chunks = args.chunks or (3 if args.quick else 8)
    rows: list[dict[str, Any]] = []
    ll_rows: list[dict[str, Any]] = []

    bw = {t: C.stream_triad(t, total_mb=200.0 if args.quick else 400.0) for t in threads}
    for t, b in bw.items():
        print(f"STREAM triad, {t} thread(s): {b.best_gbs:.1f} GB/s (best), {b.median_gbs:.1f} GB/s (median)")

    for n in sizes:
        z = fractal_dem(n)

        def make(dtype, scheme, h0, z=z):
            kw = {"theta": THETA, "alpha": ALPHA} if scheme == LI else {"scheme": scheme}  # fv: its own CFL
            return FloodModel(z, dx=DX, manning=MANNING, dtype=dtype, h0=h0,
                              rain=UniformRain.constant(RAIN_MM_H, 1e7), **kw)

        h0 = warm_state(make, warm_s, max(threads))
        print(f"{n}x{n}: initial state after {warm_s:.0f} s of rain: mean depth {h0.mean() * 1000:.1f} mm, "
              f"max {h0.max():.2f} m")
        rows += run_model_cases(f"{n}x{n}", make, h0, z.size, threads, n_chunks)
        if not args.no_landlab:
            for t in threads:
                r = run_landlab(z, h0, t, n_chunks)
                r.update(case=f"{n}x{n}", threads=t, dtype="float64", model="landlab", scheme="landlab")
                ll_rows.append(r)
                print(f"  {n}x{n} landlab {t} thr: " + (r["error"] if "error" in r else
                      f"{r['sim_s_per_wall_s']:.1f} sim s/wall s, {r['rate_median'] / 1e6:.1f} M cell-updates/s "
                      f"(median), {r['steps_per_sim_s']:.3f} steps/sim s"))

    city = None
    if not args.no_city and not args.quick:
        try:
            city = city_setup(RAIN_MM_H, 24.0)
        except Exception as exc:  # data missing: say so, keep the rest
            print(f"city cases skipped: {exc}")
    if city is not None:
        from physics.flood_city import model_kwargs

        kw = model_kwargs(city)

        def make_city(dtype, scheme, h0):
            extra = {} if scheme == LI else {"scheme": scheme}
            return FloodModel(**{**kw, "h0": kw.get("h0") if h0 is None else h0}, dtype=dtype, **extra)

        h0 = warm_state(make_city, warm_s, max(threads))
        city_rows = run_model_cases("city 30 m", make_city, h0, active_cells(kw), threads, n_chunks)
        for r in city_rows:
            r["grid"] = list(np.shape(kw["dem"]))
        rows += city_rows

    storm = None
    if city is not None and not args.no_storm:
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

    compare(rows, ll_rows, bw)
    notes = [f"STREAM triad {t} thr: {b.best_gbs:.1f} GB/s" for t, b in bw.items()]
    notes.append(f"same case on every side: initial state = the depths after {warm_s:.0f} s of rain (local-inertial, "
                 "f64), at rest; closed edges (Landlab: a closed ring of nodes around the model's cells); one untimed "
                 f"chunk then {n_chunks} timed chunks of {CHUNK_S:.0f} simulated s; median and best of those chunks "
                 "on every side")
    notes.append("sim s/wall s = simulated seconds per wall second (time to solution); steps/sim s: the local-inertial "
                 "CFL step carries sqrt(theta) (1.20x more steps than Landlab at equal depth)")
    notes.append("M/s = cell-updates (all grid cells x steps) per second; 'active' = open, not fixed-level cells x "
                 "steps (city only); x Landlab = median over median, time to solution and cell-updates/s")
    notes.append("B/cu = bytes per cell-update from the kernel design (either scheme's fused sweep: 72 B f64, 36 B f32 "
                 "on an all-open grid; the city scaled by its open-span share); roofline = STREAM best / B/cu; "
                 "'of roofline' = median rate over it")
    notes.append("cpu contention % = share of the timed wall time during which some task on the machine "
                 "waited for a CPU (Linux PSI); the machine is shared, high values mean slowed timings")
    if storm:
        notes.append(storm_line(storm))
        notes.extend(storm_line(v) for v in storm["variants"])
    if warn:
        notes.append(warn)
    C.print_table("Flood model: time to solution and cell-updates per second, the same case on every side",
                  ["case", "scheme", "dtype", "thr", "sim s/wall s", "best", "steps/sim s", "h max end m", "M cu/s mean",
                   "median",
                   "best", "active M/s", "B/cu", "of roofline", "x LL time", "x LL cu/s", "rel. vol. err",
                   "cpu cont. %", "target (issue 17)"],
                  table_rows(rows, ll_rows), notes)
    payload = {"benchmark": "flood", "quick": args.quick, "machine": C.machine_info(),
               "stream": {str(t): b.as_dict() for t, b in bw.items()}, "twin": rows, "landlab": ll_rows,
               "lisflood_fp_issue_17_not_measured": [{"solver": nm, "rate": rate, "note": note}
                                                     for nm, rate, note in LISFLOOD_FP_ISSUE],
               "city_storm_6h": storm,
               "settings": {"rain_mm_h": RAIN_MM_H, "manning": MANNING, "theta": THETA, "alpha": ALPHA, "dx_m": DX,
                            "warm_s": warm_s, "chunk_s": CHUNK_S, "chunks": n_chunks, "edges": "closed"}}
    path = C.write_results("flood-quick" if args.quick else "flood", payload, args.out)
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
