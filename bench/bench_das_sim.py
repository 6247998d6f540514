"""Benchmark of the DAS simulator (``physics.das_simulate``) and the DAS file writer (``physics.das_io``).

A 10 km fibre (10,000 channels at 1 m) at 1 kHz, the default :class:`SimConfig` (20 trains per hour each way,
1.5 road crossings per km, 8 events), ``--seconds`` of record (default 20):

(a) generation alone (the chunks consumed and dropped): channel-samples per second and times real time;
(b) generation + writing ``das.nc`` (NetCDF4, float32, uncompressed; ``--compress`` adds zlib level 1):
    times real time and the file's size per minute of record.

(c) ``--background``: a background-only record (``--bg-channels`` = 3,000 channels, ``--bg-seconds`` = 120 s,
    noise 7e-9, trains and road traffic, no event: the false-alarm run's segments, ``bench_das_false_alarms.py``)
    generated with the default noise draw (numpy's float32 ziggurat) and with ``SimConfig(fast_noise=True)`` in
    the same run, where the generation's CPU time goes (the kernels timed by wrapping them; the noise draw is the
    rest), and the default detector (1 numba thread) on the fast-noise record's chunks, held in memory.

One core (the simulator is single-threaded numpy + numba). Compile time excluded (a 1 s warm-up run on 100
channels first). Wall and CPU seconds are both given, and the CPU contention of the shared machine (PSI) is
printed. Run ``python bench/bench_das_sim.py --help``.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

from _common import (
    busy_warning,
    contention_pct,
    cpu_stall_us,
    machine_info,
    print_table,
    write_results,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from physics.das_io import write_das  # noqa: E402
from physics.das_layout import FibreLayout  # noqa: E402
from physics.das_simulate import DasSimulator, SimConfig  # noqa: E402


class _Timed:
    """Wrap a module's function, summing the CPU seconds spent in it."""

    def __init__(self, module, name: str) -> None:
        self.module, self.name, self.fn, self.cpu = module, name, getattr(module, name), 0.0

    def __call__(self, *a, **k):
        c0 = time.process_time()
        try:
            return self.fn(*a, **k)
        finally:
            self.cpu += time.process_time() - c0


def background(args) -> tuple[list, dict]:
    """Case (c): background-only generation, default vs fast noise, its CPU split, and the detector on it."""
    import numba

    from physics._kernels import das_synth
    from physics.das_detect import DasDetector

    lay = FibreLayout(n_channel=args.bg_channels, fs_hz=args.fs, line="1")
    n = args.bg_channels * args.bg_seconds * args.fs
    rows, out = [], {"channels": args.bg_channels, "seconds": args.bg_seconds, "noise": 7e-9}
    kernels = ("white_noise", "add_train", "add_knots", "add_point")
    pool = []
    stall, t_all = cpu_stall_us(), time.perf_counter()
    for fast in (False, True):
        sim = DasSimulator(lay, args.bg_seconds, 1000, SimConfig(noise_density=7e-9, fast_noise=fast), events=[])
        timed = {k: _Timed(das_synth, k) for k in kernels}
        for k, w in timed.items():
            setattr(das_synth, k, w)
        try:
            w0, c0 = time.perf_counter(), time.process_time()
            for ch in sim.chunks(1.0):
                if fast:
                    pool.append(ch)
            wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        finally:
            for k, w in timed.items():
                setattr(das_synth, k, w.fn)
        split = {k: w.cpu for k, w in timed.items()}
        if fast:
            noise = split["white_noise"]
        else:  # the default draw is inline numpy: timed alone, the same blocks again
            import numpy as np

            c1 = time.process_time()
            for b in range(int(math.ceil(sim.n_samples / sim.block))):
                blk = sim._rng(1, b).standard_normal((sim.block, lay.n_channel), dtype=np.float32)
                blk *= np.float32(sim.sigma_white)
            noise = time.process_time() - c1
        name = "fast_noise" if fast else "default noise"
        out[name] = {"wall_s": wall, "cpu_s": cpu, "msamples_per_cpu_s": n / cpu / 1e6, "split_cpu_s": split,
                     "noise_draw_cpu_s": noise, "trains": int((sim.truth["class"] == "train").sum()),
                     "vehicles": int((sim.truth["class"] == "vehicle").sum())}
        shares = [f"{100 * v / cpu:.0f} %" for v in (noise, split["add_train"], split["add_point"],
                                                      cpu - noise - split["add_train"] - split["add_point"])]
        rows.append([f"generate, {name}", wall, cpu, n / cpu / 1e6, args.bg_seconds / cpu, *shares])
    numba.set_num_threads(1)
    det = DasDetector(lay)
    det.push(0.0, pool[0])  # compile / load the cache
    det = DasDetector(lay)
    w0, c0 = time.perf_counter(), time.process_time()
    for k, ch in enumerate(pool):
        det.push(float(k), ch)
    det.flush()
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    out["detector_1_thread"] = {"wall_s": wall, "cpu_s": cpu, "msamples_per_cpu_s": n / cpu / 1e6,
                                "events": det.stats["events"]}
    rows.append(["detector (1 thread) on the same record", wall, cpu, n / cpu / 1e6, args.bg_seconds / cpu,
                 "-", "-", "-", "-"])
    out["cpu_contention_pct"] = contention_pct(stall, time.perf_counter() - t_all)
    return rows, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--channels", type=int, default=10_000)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--fs", type=float, default=1000.0)
    ap.add_argument("--compress", action="store_true", help="also time a zlib-compressed file")
    ap.add_argument("--background", action="store_true", help="case (c) only: background-only records")
    ap.add_argument("--bg-channels", type=int, default=3000)
    ap.add_argument("--bg-seconds", type=float, default=120.0)
    args = ap.parse_args()
    warn = busy_warning()
    if warn:
        print(warn)
    for _ in DasSimulator(FibreLayout(n_channel=100, fs_hz=args.fs), 1.0, 0, n_events=4).chunks():
        pass
    if args.background:
        rows, out = background(args)
        print_table(f"DAS simulator, background only: {args.bg_channels} channels x {args.bg_seconds:g} s at "
                    f"{args.fs:g} Hz (one core), seed 1000, noise 7e-9",
                    ["step", "wall s", "CPU s", "M samples per CPU s", "x real time (CPU)", "noise draw",
                     "trains", "vehicles", "rest (low-frequency noise, Python)"], rows,
                    notes=[f"{out['default noise']['trains']} train passages, {out['default noise']['vehicles']} "
                           "road vehicles; shares of the generation's CPU time",
                           f"cpu contention {out['cpu_contention_pct']}% of the wall time (shared 2-core machine)"])
        out["machine"] = machine_info()
        print(write_results("das_sim_background", out))
        return
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
