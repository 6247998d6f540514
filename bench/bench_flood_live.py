"""Cost of a step of the city flood run: the span sweep (default) against the segment sweep (physics.flood_live).

The segment sweep takes the same steps as the default (same arithmetic to a few ulp,
tests/physics/test_flood_live.py), so its run time is the step count times its cost per step: this
benchmark measures the cost per step of both on the same state, alternating chunks of ``--steps`` steps
(the same number of steps each, from the same start), wall and CPU time (process time, all threads), and
reports the cells each sweeps (open span, open cells, open cells less the dead sea).

Usage: ``python bench/bench_flood_live.py --resolution 30 --steps 20 --repeat 3 [--threads 2]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import busy_warning, machine_info, print_table, set_threads, write_results  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--resolution", type=float, default=30.0)
    ap.add_argument("--hours", type=float, default=6.0)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--warm-s", type=float, default=1800.0, help="simulated s of the default run before timing")
    args = ap.parse_args(argv)
    if args.threads:
        set_threads(args.threads)
    from physics import flood_live
    from physics.flood import FloodModel
    from physics.flood_city import city_flood_setup, model_kwargs

    warn = busy_warning()
    setup = city_flood_setup(resolution=args.resolution, hours=args.hours)
    base = FloodModel(**model_kwargs(setup))
    base.step(args.warm_s)  # a wet state: rain on the whole city, the sea at the tide
    models = {}
    for mode in ("span (default)", "segments", "segments, dead sea skipped"):
        m = FloodModel(**model_kwargs(setup))
        m.restore(base.checkpoint())
        if mode != "span (default)":
            flood_live.enable(m, skip_dead_sea="dead sea" in mode)
        m.warm_up()
        models[mode] = m
    times = {k: [] for k in models}
    for _ in range(args.repeat):
        for mode, m in models.items():
            w0, c0 = time.perf_counter(), time.process_time()
            m._advance(m.t + 1e6, max_steps=args.steps)
            times[mode].append((time.perf_counter() - w0, time.process_time() - c0))
    ref = np.median([w for w, _ in times["span (default)"]])
    rows, out = [], {}
    for mode, m in models.items():
        w = float(np.median([x for x, _ in times[mode]])) / args.steps
        c = float(np.median([x for _, x in times[mode]])) / args.steps
        cells = flood_live.stepped_cells(m)
        out[mode] = {"wall_per_step_s": w, "cpu_per_step_s": c, "cells_stepped": cells, "times": times[mode]}
        rows.append([mode, cells, w * 1e3, c * 1e3, cells / w / 1e6, ref / args.steps / w])
    print_table(f"City {args.resolution:g} m, cost per step (median of {args.repeat} chunks of {args.steps} steps)",
                ["sweep", "cells per step", "wall ms/step", "CPU ms/step", "M cells/s (wall)", "speed-up (wall)"],
                rows, notes=[warn or "machine quiet", "the segment sweep takes the default's steps: run time ratio "
                             "= cost per step ratio (the dead-sea skip: about the same steps)"])
    path = write_results("flood_live", {"args": vars(args), "machine": machine_info(), "busy_warning": warn,
                                        "runs": out})
    print("wrote", path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
