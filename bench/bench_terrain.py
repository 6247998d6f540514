"""Benchmark of the terrain kernels (gis._kernels.terrain) and their wrappers (gis.terrain).

Grids
-----
* ``dem``: the real SRTM DEM of Shenzhen (``shenzhen/terrain/srtm1_shenzhen.tif``
  through :func:`twin.config.require_file`), reprojected to EPSG:4547 at 30 m
  (bilinear, :func:`gis.raster.reproject`); NaN outside the source footprint.
* ``synthetic``: a fractal (power-law spectrum) surface, default 4000 x 4000
  cells of 30 m, 0-800 m relief plus 0.5 m of white noise (many small pits).
* ``small``: the same kind of surface, default 300 x 300, where the
  loop-based numpy references (flat filling, accumulation) are timed.

Operations
----------
slope+aspect (one kernel: ``terrain.slope`` and ``terrain.aspect`` both run
it), hillshade, fill (flat), fill (epsilon = 0, i.e. the next float),
flow direction (on the epsilon-filled DEM) and flow accumulation. Parallel
kernels (prange) run at every requested numba thread count; serial ones at 1.

Each kernel is timed on prepared float64 arrays with preallocated outputs
(``kernel``), and through the public wrapper on the DataArray (``API``:
includes the float64 copy, cell sizes, output wrapping and checks). Every
timing follows a warm-up call, so numba compilation is excluded.

Reference: the numpy functions of ``tests/gis/test_terrain.py`` (imported,
so there is one reference); hillshade's reference is built on the slope and
aspect reference. The vectorised references (slope/aspect, hillshade, flow
direction) run on the full grids; the loop-based ones (flat fill,
accumulation) only on the small grid. numpy runs on one thread.

Roofline: bytes per cell = the input read once (8 B float64, the 3x3
stencil assumed served by the caches) + every output written once (8 B per
float64 output, 1 B for uint8), no write-allocate read, as STREAM counts;
compared with the STREAM-triad bandwidth measured here at the same thread
count.

Run ``python bench/bench_terrain.py --help``.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402

from gis import terrain  # noqa: E402
from gis._kernels import terrain as K  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
REF_PATH = REPO / "tests" / "gis" / "test_terrain.py"
DEM_RELPATH = "shenzhen/terrain/srtm1_shenzhen.tif"

#: Bytes moved per cell by the stencil kernels (input read once + outputs written).
BYTES_PER_CELL = {
    "slope+aspect": 8 + 8 + 8,  # z in, slope and aspect out (float64)
    "hillshade": 8 + 8,  # z in, float64 shade out
    "flow_direction": 8 + 1,  # z in, uint8 code out
}


# --------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------
def load_refs() -> Any | None:
    """The numpy references of tests/gis/test_terrain.py, or None when they cannot be imported."""
    try:
        spec = importlib.util.spec_from_file_location("_terrain_refs", REF_PATH)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)  # type: ignore[union-attr]
    except Exception as exc:  # missing file, or pytest not installed
        print(f"numpy references unavailable ({REF_PATH}: {exc}); numpy columns left empty")
        return None
    return mod


def ref_hillshade(
    refs: Any, z: np.ndarray, dx: float, dy: float, azimuth: float = 315.0, altitude: float = 45.0
) -> np.ndarray:
    """numpy hillshade on the tests' slope/aspect reference (float shade in [0, 1])."""
    s, a = refs.ref_slope_aspect(z, dx, dy)
    zen = math.radians(90.0 - altitude)
    slp = np.radians(s)
    shade = math.cos(zen) * np.cos(slp) + math.sin(zen) * np.sin(slp) * np.cos(
        math.radians(azimuth) - np.radians(a)
    )
    return np.clip(shade, 0.0, 1.0)


def fractal_surface(
    ny: int,
    nx: int,
    *,
    seed: int = 0,
    exponent: float = 1.6,
    relief: float = 800.0,
    noise: float = 0.5,
) -> np.ndarray:
    """Periodic fractal terrain: white noise shaped to amplitude ~ k^-exponent in Fourier space.

    Scaled to [0, relief] metres, plus uniform white noise of ``noise`` m
    (which makes the many small pits a raw DEM has).
    """
    rng = np.random.default_rng(seed)
    spec = np.fft.rfft2(rng.standard_normal((ny, nx)))
    k = np.hypot(np.fft.fftfreq(ny)[:, None], np.fft.rfftfreq(nx)[None, :])
    k[0, 0] = np.inf
    spec *= k**-exponent
    z = np.fft.irfft2(spec, s=(ny, nx))
    z = (z - z.min()) / (z.max() - z.min()) * relief
    return np.ascontiguousarray(z + noise * rng.random((ny, nx)))


def synthetic_grid(n: int, seed: int = 0):
    """A north-up 30 m DataArray on EPSG:4547 holding :func:`fractal_surface` (n x n)."""
    from affine import Affine

    from gis.raster import make_grid

    z = fractal_surface(n, n, seed=seed)
    return make_grid(
        z,
        Affine(30.0, 0.0, 500000.0, 0.0, -30.0, 2500000.0),
        "EPSG:4547",
        name="synthetic",
        units="m",
    )


def real_dem(quick: bool):
    """The Shenzhen SRTM DEM reprojected to EPSG:4547 at 30 m (a 300 x 300 source window if quick)."""
    from gis.raster import open_raster, reproject
    from twin.config import require_file

    dem = open_raster(require_file(DEM_RELPATH, what="SRTM DEM of Shenzhen"))
    if quick:
        dem = dem.isel(y=slice(500, 800), x=slice(1500, 1800))
        t = dem.attrs["transform"]
        x0 = float(dem["x"].values[0]) - t[0] / 2
        y0 = float(dem["y"].values[0]) - t[4] / 2
        dem.attrs["transform"] = (t[0], 0.0, x0, 0.0, t[4], y0)
    out = reproject(dem, "EPSG:4547", resolution=30.0)
    out.attrs.setdefault("units", "m")
    return out


# --------------------------------------------------------------------------
# One grid
# --------------------------------------------------------------------------
def _agree(a: np.ndarray, b: np.ndarray, exact: bool) -> bool:
    if exact:
        return bool(np.array_equal(a, b, equal_nan=True))
    return bool(np.allclose(a, b, rtol=0.0, atol=1e-9, equal_nan=True))


def bench_grid(
    label: str,
    dem,
    *,
    threads: list[int],
    refs: Any | None,
    bw: dict[int, float],
    repeat: int,
    run_loop_refs: bool,
    ops: set[str],
    budget: float,
) -> list[dict]:
    """Time every operation in ``ops`` on ``dem``; return one record per (op, threads)."""
    ny, nx = dem.shape
    cells = ny * nx
    z = np.ascontiguousarray(dem.values, dtype=np.float64)
    has_nodata = bool(np.isnan(z).any())
    dx_row, dy_row = terrain.cell_sizes_m(dem)
    dx, dy = float(dx_row[0]), float(dy_row[0])
    no_outlets = np.zeros(z.shape, dtype=np.bool_)
    check_refs = refs is not None and not has_nodata  # the references do not handle nodata

    # Pipeline inputs for D8 (computed once, untimed).
    z_eps = K.priority_flood(z, no_outlets, 0.0, True, np.empty_like(z))
    fd = K.d8_flowdir(z_eps, dx_row, dy_row, np.empty(z.shape, dtype=np.uint8))
    ones = np.ones(z.shape)
    dem_eps = dem.copy(data=z_eps)
    fd_da = terrain.flow_direction(dem_eps)

    s_out, a_out, f_out = np.empty_like(z), np.empty_like(z), np.empty_like(z)
    u8_out = np.empty(z.shape, dtype=np.uint8)

    # name -> (parallel, kernel call, API call, reference call or None,
    #          kernel output getter, exact comparison)
    table: dict[str, tuple[bool, Callable, Callable, Callable | None, Callable, bool]] = {
        "slope+aspect": (
            True,
            lambda: K.slope_aspect(z, dx_row, dy_row, 1.0, False, s_out, a_out),
            lambda: terrain.slope(dem),
            (lambda: refs.ref_slope_aspect(z, dx, dy)) if refs else None,
            lambda: (s_out, a_out),
            False,
        ),
        "hillshade": (
            True,
            lambda: K.hillshade(z, dx_row, dy_row, 315.0, 45.0, 1.0, False, f_out),
            lambda: terrain.hillshade(dem),
            (lambda: ref_hillshade(refs, z, dx, dy)) if refs else None,
            lambda: f_out,
            False,
        ),
        "fill (flat)": (
            False,
            lambda: K.priority_flood(z, no_outlets, 0.0, False, f_out),
            lambda: terrain.fill_depressions(dem),
            (lambda: refs.ref_fill_flat(z)) if refs and run_loop_refs else None,
            lambda: f_out,
            True,
        ),
        "fill (epsilon)": (
            False,
            lambda: K.priority_flood(z, no_outlets, 0.0, True, f_out),
            lambda: terrain.fill_depressions(dem, epsilon=0.0),
            None,
            lambda: f_out,
            True,
        ),
        "flow_direction": (
            True,
            lambda: K.d8_flowdir(z_eps, dx_row, dy_row, u8_out),
            lambda: terrain.flow_direction(dem_eps),
            (lambda: refs.ref_flowdir(z_eps, dx, dy)) if refs else None,
            lambda: u8_out,
            True,
        ),
        "flow_accumulation": (
            False,
            lambda: K.d8_accumulation(fd, ones, f_out),
            lambda: terrain.flow_accumulation(fd_da),
            (lambda: refs.ref_accumulation(fd)) if refs and run_loop_refs else None,
            lambda: f_out,
            True,
        ),
    }

    records: list[dict] = []
    for name, (parallel, kern, api, ref, result, exact) in table.items():
        if name not in ops:
            continue
        ref_t = None
        agrees = None
        if ref is not None:
            t0 = time.perf_counter()
            ref_out = ref()
            first = time.perf_counter() - t0
            # Slow references: the first call is the only one when it took most of the budget.
            ref_t = (
                C.Timing([first])
                if first > budget / 2
                else C.time_call(ref, repeat=repeat, warmup=0, max_seconds=budget)
            )
            if check_refs:
                kern()
                mine = result()
                if isinstance(ref_out, tuple):
                    agrees = all(_agree(m, r, exact) for m, r in zip(mine, ref_out, strict=True))
                else:
                    agrees = _agree(mine, ref_out, exact)
        base = None
        for n_thr in threads if parallel else [1]:
            C.set_threads(n_thr)
            kt = C.time_call(kern, repeat=repeat, warmup=1, max_seconds=budget)
            at = C.time_call(api, repeat=repeat, warmup=1, max_seconds=budget)
            base = base or kt.median
            rec: dict[str, Any] = {
                "grid": label,
                "shape": [ny, nx],
                "cells": cells,
                "nodata_fraction": float(np.isnan(z).mean()),
                "op": name,
                "parallel": parallel,
                "threads": n_thr,
                "kernel": kt.as_dict(),
                "api": at.as_dict(),
                "mcells_per_s": cells / kt.median / 1e6,
                "speedup_vs_1_thread": base / kt.median,
                "numpy_ref": ref_t.as_dict() if ref_t else None,
                "speedup_vs_numpy": (ref_t.median / kt.median) if ref_t else None,
                "agrees_with_ref": agrees,
            }
            if name in BYTES_PER_CELL:
                b = BYTES_PER_CELL[name]
                gbs = b * cells / kt.median / 1e9
                rec.update(
                    bytes_per_cell=b,
                    effective_gbs=gbs,
                    roofline_fraction=gbs / bw[n_thr] if n_thr in bw else None,
                    stream_triad_gbs=bw.get(n_thr),
                )
            records.append(rec)
            print(
                f"  {label:10s} {name:18s} {n_thr} thr: kernel {kt.median * 1e3:9.2f} ms "
                f"(min {kt.min * 1e3:.2f}, n={kt.n}), API {at.median * 1e3:9.2f} ms"
                + (f", numpy {ref_t.median * 1e3:.1f} ms" if ref_t else ""),
                flush=True,
            )
    C.set_threads(C.max_threads())
    return records


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------
ALL_OPS = (
    "slope+aspect",
    "hillshade",
    "fill (flat)",
    "fill (epsilon)",
    "flow_direction",
    "flow_accumulation",
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="bench_terrain.py",
        description="Benchmark the terrain kernels (slope/aspect, hillshade, Priority-Flood "
        "filling, D8 direction and accumulation) on the real Shenzhen DEM and a synthetic "
        "surface, against the numpy references of the tests and the STREAM-triad roofline.",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="small grids and few repeats (checks that the benchmark runs, ~1 min)",
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        default=None,
        help="folder for the JSON results (default: bench/results/)",
    )
    p.add_argument(
        "--size",
        type=int,
        default=None,
        help="side of the synthetic grid (default 4000; 256 with --quick)",
    )
    p.add_argument(
        "--small",
        type=int,
        default=None,
        help="side of the grid for the loop-based numpy references (default 300; 64 with --quick)",
    )
    p.add_argument(
        "--threads",
        default="1,2",
        help="numba thread counts for the parallel kernels, comma-separated (default 1,2)",
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="timed repeats per measurement (default 5; 2 with --quick)",
    )
    p.add_argument(
        "--budget",
        type=float,
        default=None,
        help="stop repeating a measurement after this many seconds (default 15)",
    )
    p.add_argument(
        "--stream-mb",
        type=float,
        default=None,
        help="total size of the STREAM-triad arrays, MB (default 400; 48 with --quick)",
    )
    p.add_argument("--skip-dem", action="store_true", help="leave out the real DEM")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    quick = args.quick
    size = args.size or (256 if quick else 4000)
    small = args.small or (64 if quick else 300)
    repeat = args.repeat or (2 if quick else 5)
    budget = args.budget or (5.0 if quick else 15.0)
    stream_mb = args.stream_mb or (48.0 if quick else 400.0)
    try:
        requested = [int(v) for v in args.threads.split(",") if v.strip()]
    except ValueError:
        print(f"--threads must be comma-separated integers, got {args.threads!r}", file=sys.stderr)
        return 2
    threads = C.thread_counts(requested)
    t_start = time.perf_counter()
    busy = C.busy_warning()
    stall0 = C.cpu_stall_us()
    load_before = {"loadavg": C.machine_info()["loadavg_1_5_15"], "cpu_pressure": C.cpu_pressure()}
    if busy:
        print(f"warning: {busy}")

    print(f"STREAM triad over {stream_mb:.0f} MB at {threads} thread(s) ...", flush=True)
    bandwidth = {
        n: C.stream_triad(n, total_mb=stream_mb, repeat=5 if quick else 10) for n in threads
    }
    bw = {n: b.best_gbs for n, b in bandwidth.items()}
    for n, b in bandwidth.items():
        print(f"  {n} thread(s): best {b.best_gbs:.1f} GB/s, median {b.median_gbs:.1f} GB/s")

    refs = load_refs()
    grids: list[tuple[str, Any, bool, set[str]]] = []
    notes: list[str] = []
    if not args.skip_dem:
        try:
            t0 = time.perf_counter()
            dem = real_dem(quick)
            print(
                f"real DEM {dem.shape} on EPSG:4547 at 30 m, loaded and reprojected in "
                f"{time.perf_counter() - t0:.1f} s",
                flush=True,
            )
            grids.append(("dem", dem, False, set(ALL_OPS)))
        except Exception as exc:  # DataMissingError and friends: benchmark the rest
            notes.append(f"real DEM skipped: {exc}")
            print(notes[-1])
    grids.append(("synthetic", synthetic_grid(size), False, set(ALL_OPS)))
    grids.append(
        ("small", synthetic_grid(small, seed=1), True, {"fill (flat)", "flow_accumulation"})
    )

    records: list[dict] = []
    for label, da, loops, ops in grids:
        print(f"{label}: {da.shape[0]} x {da.shape[1]} = {da.size:,} cells", flush=True)
        records += bench_grid(
            label,
            da,
            threads=threads,
            refs=refs,
            bw=bw,
            repeat=repeat,
            run_loop_refs=loops,
            ops=ops,
            budget=budget,
        )

    columns = [
        "grid",
        "op",
        "thr",
        "kernel ms",
        "min ms",
        "Mcell/s",
        "x 1thr",
        "API ms",
        "numpy ms",
        "x numpy",
        "GB/s",
        "roofline",
        "= ref",
    ]
    rows = []
    for r in records:
        rows.append(
            [
                f"{r['grid']} {r['shape'][0]}x{r['shape'][1]}",
                r["op"],
                r["threads"],
                r["kernel"]["median_s"] * 1e3,
                r["kernel"]["min_s"] * 1e3,
                r["mcells_per_s"],
                r["speedup_vs_1_thread"] if r["parallel"] else None,
                r["api"]["median_s"] * 1e3,
                r["numpy_ref"]["median_s"] * 1e3 if r["numpy_ref"] else None,
                r["speedup_vs_numpy"],
                r.get("effective_gbs"),
                f"{100 * r['roofline_fraction']:.0f}%" if r.get("roofline_fraction") else None,
                {True: "yes", False: "NO", None: "-"}[r["agrees_with_ref"]],
            ]
        )
    notes = [
        "kernel = numba kernel on float64 arrays with preallocated outputs; API = public "
        "gis.terrain wrapper on the DataArray (float64 copy, cell sizes, wrapping, checks). "
        "Median of repeats after a warm-up (compile time excluded).",
        "slope+aspect is one kernel: terrain.slope() and terrain.aspect() each run it and "
        "keep one of its two outputs. hillshade API returns uint8.",
        "fill (epsilon) uses epsilon=0 (next float); flow_direction runs on that filled DEM; "
        "flow_accumulation on its D8 codes. Serial kernels run at 1 thread only.",
        "numpy = the reference functions of tests/gis/test_terrain.py (one thread); hillshade's "
        "is built on the slope/aspect reference. Loop-based references (flat fill, "
        "accumulation) only on the small grid; accumulation's is O(n x path length).",
        "roofline: bytes/cell = input read once (8 B float64; the 3x3 stencil assumed to hit "
        "the caches) + outputs written once (slope+aspect 8+8, hillshade 8, D8 1 B), no "
        "write-allocate; GB/s / STREAM-triad best at the same thread count ("
        + ", ".join(f"{n} thr {b:.1f} GB/s" for n, b in bw.items())
        + ").",
        "= ref: kernel output equals the numpy reference (allclose atol 1e-9 for floats); "
        "'-' where not checked (no reference, or nodata cells the references do not handle).",
        *notes,
        *([busy] if busy else []),
    ]
    wall = time.perf_counter() - t_start
    contention = C.contention_pct(stall0, wall)
    if contention is not None:
        notes.append(
            f"CPU contention during the run: some task waited for a CPU {contention:.0f}% of the "
            f"time (Linux PSI); above ~5% other processes disturbed the timings"
        )
    info = C.machine_info()
    C.print_table(
        f"Terrain kernels - {info['cpu_model']}, {info['cpu_count']} cores, numba "
        f"{info['numba']} ({info['numba_threading_layer']})",
        columns,
        rows,
        notes,
    )
    payload = {
        "benchmark": "terrain",
        "quick": quick,
        "machine": info,
        "load_before": load_before,
        "args": vars(args),
        "stream_triad": {str(n): b.as_dict() for n, b in bandwidth.items()},
        "notes": notes,
        "results": records,
        "cpu_contention_pct": contention,
        "wall_s": wall,
    }
    path = C.write_results("terrain-quick" if quick else "terrain", payload, args.out)
    print(f"results: {path}  ({payload['wall_s']:.0f} s)")
    return 0 if all(r["agrees_with_ref"] is not False for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
