"""Benchmark of the DAS simulator (``physics.das_simulate``) and the DAS file writer (``physics.das_io``).

A 10 km fibre (10,000 channels at 1 m) at 1 kHz, the default :class:`SimConfig` (20 trains per hour each way,
1.5 road crossings per km, 8 events), ``--seconds`` of record (default 20):

(a) generation alone (the chunks consumed and dropped): channel-samples per second and times real time;
(b) generation + writing ``das.nc`` (NetCDF4, float32, uncompressed; ``--compress`` adds zlib level 1):
    times real time and the file's size per minute of record.

One core (the simulator is single-threaded numpy + numba). Compile time excluded (a 1 s warm-up run on 100
channels first). The CPU contention of the shared machine is printed. Run ``python bench/bench_das_sim.py --help``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from _common import busy_warning, machine_info, print_table, write_results

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from physics.das_io import write_das  # noqa: E402
from physics.das_layout import FibreLayout  # noqa: E402
from physics.das_simulate import DasSimulator  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--channels", type=int, default=10_000)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--fs", type=float, default=1000.0)
    ap.add_argument("--compress", action="store_true", help="also time a zlib-compressed file")
    args = ap.parse_args()
    warn = busy_warning()
    if warn:
        print(warn)
    for _ in DasSimulator(FibreLayout(n_channel=100, fs_hz=args.fs), 1.0, 0, n_events=4).chunks():
        pass
    lay = FibreLayout(n_channel=args.channels, fs_hz=args.fs, line="1")
    sim = DasSimulator(lay, args.seconds, 7, n_events=8)
    rows, out = [], {"channels": args.channels, "seconds": args.seconds, "fs_hz": args.fs,
                     "noise_std_1_s": sim.sigma_white, "truth_rows": sim.truth["class"].value_counts().to_dict()}
    t0 = time.perf_counter()
    for _ in sim.chunks(1.0):
        pass
    gen = time.perf_counter() - t0
    n = args.channels * args.seconds * args.fs
    rows.append(["generate", gen, n / gen / 1e6, args.seconds / gen, "-"])
    out["generate"] = {"wall_s": gen, "msamples_per_s": n / gen / 1e6, "x_real_time": args.seconds / gen}
    for compress in (False, True) if args.compress else (False,):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "das.nc"
            t0 = time.perf_counter()
            write_das(path, lay, sim.chunks(1.0), "2026-12-04T09:00:00+08:00", "bench", compress=compress)
            wall = time.perf_counter() - t0
            mb_min = path.stat().st_size / 1e6 / (args.seconds / 60.0)
        name = "generate + write" + (" (zlib 1)" if compress else "")
        rows.append([name, wall, n / wall / 1e6, args.seconds / wall, mb_min])
        out[name] = {"wall_s": wall, "msamples_per_s": n / wall / 1e6, "x_real_time": args.seconds / wall,
                     "mb_per_minute": mb_min}
    print_table(f"DAS simulator: {args.channels} channels x {args.seconds:g} s at {args.fs:g} Hz (one core)",
                ["step", "wall s", "M samples/s", "x real time", "MB per minute"], rows,
                notes=[f"noise std {sim.sigma_white:.3g} 1/s (density 5e-9 1/s/sqrt(Hz))"])
    out["machine"] = machine_info()
    print(write_results("das_sim", out))


if __name__ == "__main__":
    main()
