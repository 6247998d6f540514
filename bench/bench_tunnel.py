"""Benchmark of the tunnel-vibration forecast (physics.tunnel_vibration): every metro line × N sources.

Times, each as the median of repeats after a warm-up call:

* building the tunnels of every line (50 m segments, pieces cut at the stations);
* the horizontal source-to-segment distances (numpy, chunked: the sources × pieces matrix);
* the whole forecast (distances, PPV by GB 6722 / Bornitz, limits, inversions, dataset) for N sources
  spread at random within 300 m of random points of the lines (seeded).

Needs TWIN_DATA (the metro lines). No numba kernel: the distance matrix is a few vectorised numpy passes and
the table below shows whether that is worth a kernel (it decides ``physics/_kernels/vibration.py``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import busy_warning, machine_info, print_table, time_call, write_results  # noqa: E402


def random_sources(tun, n: int, seed: int) -> list[dict]:
    """``n`` sources of all four types within 300 m of random points of the tunnels (working CRS)."""
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, tun.n_segments, n)
    out = []
    types = ("blasting", "piling", "drilling", "excavation")
    for i, r in enumerate(rows):
        x, y = tun.chainage_to_point(tun.seg_line[r], (tun.seg_c0[r] + tun.seg_c1[r]) / 2)
        ang, dist = rng.uniform(0, 2 * np.pi), rng.uniform(20.0, 300.0)
        typ = types[i % 4]
        s = {"x": float(x) + dist * np.cos(ang), "y": float(y) + dist * np.sin(ang), "type": typ, "id": f"S{i}"}
        if typ == "blasting":
            s["charge_kg"] = float(rng.uniform(2.0, 30.0))
        out.append(s)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sources", type=int, default=100, help="number of sources (default 100)")
    ap.add_argument("--segment-m", type=float, default=50.0)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="10 sources, 2 repeats")
    ap.add_argument("--out", default=None, help="folder of the JSON results (default bench/results)")
    a = ap.parse_args()
    if a.quick:
        a.sources, a.repeat = 10, 2
    from physics.tunnel_geometry import build_tunnels, horizontal_distance_to_segments
    from physics.tunnel_vibration import forecast_vibration

    warn = busy_warning()
    t_build = time_call(lambda: build_tunnels(segment_m=a.segment_m), repeat=a.repeat)
    tun = build_tunnels(segment_m=a.segment_m)
    src = random_sources(tun, a.sources, seed=7)
    xs = np.array([s["x"] for s in src])
    ys = np.array([s["y"] for s in src])
    t_dist = time_call(lambda: horizontal_distance_to_segments(tun, xs, ys), repeat=a.repeat)
    t_fc = time_call(lambda: forecast_vibration(src, tunnels=tun), repeat=a.repeat)
    t0 = time.perf_counter()
    ds = forecast_vibration(src, tunnels=tun)
    wall = time.perf_counter() - t0
    pairs = a.sources * tun.n_segments
    rows = [
        ["build tunnels (all lines)", tun.n_segments, t_build.median, t_build.min, ""],
        ["distances sources × segments", pairs, t_dist.median, t_dist.min, f"{pairs / t_dist.median / 1e6:.1f} M pairs/s"],
        ["whole forecast", pairs, t_fc.median, t_fc.min, f"{pairs / t_fc.median / 1e6:.1f} M pairs/s"],
    ]
    notes = [f"{len(tun.lines)} lines, {tun.n_segments} segments of ~{a.segment_m:g} m, {tun.pieces['ax'].size} "
             f"straight pieces; {a.sources} sources (seed 7); {int(ds['over_limit'].sum())} segments over the "
             f"operating limit in this random plan", "times in s (median and min of the repeats, after a warm-up)"]
    if warn:
        notes.append(warn)
    print_table("Tunnel vibration forecast", ["step", "items", "median s", "min s", "rate"], rows, notes)
    path = write_results("tunnel", {"machine": machine_info(), "args": vars(a), "segments": tun.n_segments,
                                    "sources": a.sources, "build_s": t_build.times, "distances_s": t_dist.times,
                                    "forecast_s": t_fc.times, "single_forecast_wall_s": wall}, a.out)
    print(f"results: {path}")


if __name__ == "__main__":
    main()
