"""The city run with the global step, saving depth snapshots for :mod:`bench.bench_flood_ceiling` and the final
maximum depth as the reference of the live-cell and LTS runs.

Usage: ``python bench/flood_city_snapshots.py --resolution 30 --hours 6 --out /tmp/lts3/city30.npz``. Advances in
600 s chunks (as ``bench_flood_city.py``), saves ``h`` every ``--every`` s, the final ``hmax`` and the steps, wall
and CPU time of the stepping.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CHUNK_S = 600.0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--resolution", type=float, default=30.0)
    ap.add_argument("--hours", type=float, default=6.0)
    ap.add_argument("--every", type=float, default=1800.0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    from physics.flood import FloodModel
    from physics.flood_city import city_flood_setup, model_kwargs

    setup = city_flood_setup(resolution=args.resolution, hours=args.hours)
    model = FloodModel(**model_kwargs(setup))
    model.warm_up()
    snaps, times = [], []
    duration = args.hours * 3600.0
    w0, c0 = time.perf_counter(), time.process_time()
    while model.t < duration - 1e-9:
        model.step(min(CHUNK_S, duration - model.t))
        if abs(model.t / args.every - round(model.t / args.every)) < 1e-6:
            snaps.append(model.h.astype(np.float32))
            times.append(model.t)
            print(f"t = {model.t:.0f} s, steps {model.n_steps}, {time.perf_counter() - w0:.0f} s", flush=True)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    b = model.balance()
    meta = {"resolution": args.resolution, "hours": args.hours, "steps": model.n_steps, "wall_s": wall,
            "cpu_s": cpu, "balance_relative_error": b["relative_error"], "times": times}
    np.savez_compressed(args.out, h=np.stack(snaps), hmax=model.hmax, times=np.asarray(times),
                        meta=json.dumps(meta))
    print(json.dumps(meta))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
