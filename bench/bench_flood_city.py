"""Where the city flood run's time goes, and local time stepping against the global step.

The case is the twin's city run (:func:`physics.flood_city.city_flood_setup`:
the record storm of 2023-09-07, alternating-block hyetograph, sea at tide
level, drainage per district, free edges), float64, default settings. It is
run twice from the same set-up: with the global CFL step (``FloodModel``'s
own time loop) and with local time stepping (:mod:`physics.flood_lts`), each
advanced in 600 s chunks (the chunk ends are step ends on both sides).

Reported:

* wall time split: set-up (grid, storm), compile (numba, or its cache),
  stepping, output (balance and a depth copy every 600 s);
* steps, cell-updates/s over the whole grid (the model's count: every cell
  of the grid per step) and over the open cells actually updated;
* for the global run, at every chunk end: the global step, the share of
  open cells whose own CFL step would allow >= 2x, 4x, 8x it, and the cells
  that set it (depth, bed, fixed-level/sea or land, and the relief of the
  hole: the highest bed within 2 cells minus its own);
* for the LTS run: coarse steps, sub-steps and cell-updates per level;
* max-depth difference LTS - global over cells flooded (>= 0.15 m) in
  either run: median, 99th percentile and max of |diff|; mass closure of
  both (relative balance error);
* with ``--modes ...,live``: the global step over each row's open segments
  (:mod:`physics.flood_live`, blocked cells inside a row skipped), its
  stepping time and the same comparison against the global run;
  ``live_sea``: also the dead sea skipped (an approximation).

Wall and CPU time (process time of all threads) of the stepping are both
reported: the machine is shared.

Usage: ``python bench/bench_flood_city.py [--quick] [--resolution 30]
[--hours 6] [--districts Futian,Luohu] [--tile 32] [--max-level 8]
[--skip-global] [--modes global,live,lts] [--threads 2]``. ``--quick``: Futian and Luohu at 90 m for 1 h. Figures
taken on a shared machine: the JSON carries the CPU pressure during the run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import busy_warning, machine_info, print_table, write_results  # noqa: E402

CHUNK_S = 600.0
FLOODED_M = 0.15


def cell_dt(model) -> np.ndarray:
    """Each open cell's own CFL step (s) from its depth (the formula of ``FloodModel.cfl_dt``)."""
    p = model._params
    h = np.maximum(model.h.astype(np.float64), 0.0)
    with np.errstate(divide="ignore"):
        d = p.alpha * np.sqrt(p.theta) * min(p.dx, p.dy) / np.sqrt(9.80665 * np.minimum(h, p.h_cap) / p.phi_min)
    return np.where(h > p.h_dry, np.minimum(d, p.dt_max), p.dt_max)


def cfl_census(model, level_mask: np.ndarray, top: int = 5) -> dict:
    """The global step, how many open cells would allow 2x/4x/8x it, and the cells that set it."""
    open_ = model.phi > 0
    d = cell_dt(model)[open_]
    dt = float(model.cfl_dt())
    out = {"t_s": model.t, "dt_global_s": dt, "h_max_m": float(model.h[open_].max()),
           **{f"share_ge_{m}x": float(np.mean(d >= m * dt)) for m in (2, 4, 8)}}
    h = np.where(open_, model.h, 0.0)
    idx = np.argsort(h, axis=None)[::-1][:top]
    z = model.z
    rows = []
    for k in idx:
        j, i = np.unravel_index(k, h.shape)
        win = z[max(j - 2, 0):j + 3, max(i - 2, 0):i + 3]
        win = win[np.isfinite(win) & (model.phi[max(j - 2, 0):j + 3, max(i - 2, 0):i + 3] > 0)]
        rows.append({"j": int(j), "i": int(i), "x": float(model.meta["x"][i]), "y": float(model.meta["y"][j]),
                     "depth_m": float(h[j, i]), "bed_m": float(z[j, i]), "fixed_level": bool(level_mask[j, i]),
                     "relief_m": float(win.max() - z[j, i]) if win.size else 0.0})
    out["deepest"] = rows
    return out


def run(setup, mode: str, hours: float, tile: int, max_level: int) -> tuple[dict, object]:
    from physics import flood_lts
    from physics.flood import FloodModel
    from physics.flood_city import model_kwargs

    model = FloodModel(**model_kwargs(setup))
    if mode in ("live", "live_sea"):
        from physics import flood_live

        flood_live.enable(model, skip_dead_sea=mode == "live_sea")
    wl = setup.get("water_level")
    level_mask = np.asarray(wl.mask, dtype=bool) if wl is not None else np.zeros(model.shape, dtype=bool)
    t0 = time.perf_counter()
    if mode in ("global", "live", "live_sea"):
        model.warm_up()
    else:
        flood_lts.advance(model, model.t, max_steps=0, tile=tile, max_level=max_level)
    compile_s = time.perf_counter() - t0
    duration = hours * 3600.0
    step_s = out_s = cpu_s = 0.0
    census = []
    n_open = int(np.count_nonzero(model.phi > 0))
    while model.t < duration - 1e-9:
        target = min(model.t + CHUNK_S, duration)
        t1, c1 = time.perf_counter(), time.process_time()
        if mode in ("global", "live", "live_sea"):
            model.step(target - model.t)
        else:
            flood_lts.run(model, target - model.t, tile=tile, max_level=max_level)
        t2 = time.perf_counter()
        cpu_s += time.process_time() - c1
        model.balance()
        _ = model.h.astype(np.float32)
        out_s += time.perf_counter() - t2
        step_s += t2 - t1
        if mode == "global":
            census.append(cfl_census(model, level_mask))
        print(f"  {mode}: t = {model.t:7.0f} s, steps {model.n_steps}, stepping {step_s:7.1f} s", flush=True)
    b = model.balance()
    res = {"mode": mode, "compile_s": compile_s, "stepping_s": step_s, "stepping_cpu_s": cpu_s, "output_s": out_s,
           "steps": model.n_steps,
           "cells": int(model.h.size), "open_cells": n_open, "sim_s_per_wall_s": duration / step_s,
           "balance_relative_error": b["relative_error"], "balance_error_m3": b["error"]}
    if mode in ("global", "live", "live_sea"):
        from physics import flood_live

        res["cell_updates_per_s"] = model.n_steps * model.h.size / step_s
        res["open_cell_updates"] = model.n_steps * n_open
        res["stepped_cell_updates"] = model.n_steps * flood_live.stepped_cells(model)
        res["stepped_cell_updates_per_s"] = res["stepped_cell_updates"] / step_s
    if mode == "global":
        res["census"] = census
    elif mode == "lts":
        st = flood_lts.stats(model)
        st.pop("level_now")
        res["lts"] = st
        res["open_cell_updates"] = model.cell_updates
        res["cell_updates_per_s"] = None
    res["open_cell_updates_per_s"] = res["open_cell_updates"] / step_s
    return res, model


def compare(m_g, m_l) -> dict:
    a = m_g.hmax.astype(np.float64)
    b = m_l.hmax.astype(np.float64)
    wet = (m_g.phi > 0) & ((a >= FLOODED_M) | (b >= FLOODED_M))
    d = np.abs(b - a)[wet]
    if not d.size:
        return {"flooded_cells": 0}
    land = wet & (np.asarray(m_g._forcing.level_mask) == 0)  # not fixed-level (sea) cells
    dl = np.abs(b - a)[land]
    return {"flooded_cells": int(wet.sum()), "median_m": float(np.median(d)), "p99_m": float(np.quantile(d, 0.99)),
            "max_m": float(d.max()), "land_cells": int(land.sum()),
            "land_p99_m": float(np.quantile(dl, 0.99)) if dl.size else None,
            "land_max_m": float(dl.max()) if dl.size else None,
            "flooded_global": int(((a >= FLOODED_M) & (m_g.phi > 0)).sum()),
            "flooded_lts": int(((b >= FLOODED_M) & (m_g.phi > 0)).sum()),
            "volume_global_m3": m_g.storage(), "volume_lts_m3": m_l.storage()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="Futian and Luohu at 90 m for 1 h")
    ap.add_argument("--resolution", type=float, default=30.0)
    ap.add_argument("--hours", type=float, default=6.0)
    ap.add_argument("--districts", default=None, help="comma-separated districts (default: the whole city)")
    ap.add_argument("--tile", type=int, default=32)
    ap.add_argument("--max-level", type=int, default=8)
    ap.add_argument("--skip-global", action="store_true", help="LTS only (no census, no comparison)")
    ap.add_argument("--skip-lts", action="store_true")
    ap.add_argument("--modes", default=None, help="comma-separated of global, live, lts (default: global,lts)")
    ap.add_argument("--threads", type=int, default=None, help="numba threads (default: numba's)")
    args = ap.parse_args(argv)
    if args.threads:
        from bench._common import set_threads

        set_threads(args.threads)
    modes = args.modes.split(",") if args.modes else [m for m, skip in (("global", args.skip_global),
                                                                        ("lts", args.skip_lts)) if not skip]
    if args.quick:
        args.resolution, args.hours, args.districts = 90.0, 1.0, args.districts or "Futian,Luohu"
    from physics.flood_city import city_flood_setup

    warn = busy_warning()
    if warn:
        print("warning:", warn)
    t0 = time.perf_counter()
    districts = args.districts.split(",") if args.districts else None
    setup = city_flood_setup(resolution=args.resolution, hours=args.hours, districts=districts)
    setup_s = time.perf_counter() - t0
    print(f"set-up {setup_s:.1f} s, grid {setup['dem'].shape}")
    runs, models = {}, {}
    for mode in modes:
        runs[mode], models[mode] = run(setup, mode, args.hours, args.tile, args.max_level)
    cmps = {m: compare(models["global"], models[m]) for m in models if m != "global" and "global" in models}
    cmp_ = cmps.get("lts", {})
    rows = [[m, f"{args.resolution:g} m", r["steps"], setup_s, r["compile_s"], r["stepping_s"], r["stepping_cpu_s"],
             r["output_s"], r["sim_s_per_wall_s"], r["cell_updates_per_s"], r["open_cell_updates_per_s"],
             r["balance_relative_error"]] for m, r in runs.items()]
    print_table(f"City flood {args.hours:g} h, record storm (2023-09-07), float64",
                ["time stepping", "grid", "steps", "set-up s", "compile s", "stepping s", "stepping CPU s",
                 "output s", "sim s / wall s", "cell-upd/s (grid)", "cell-upd/s (open, run)", "balance rel. err"],
                rows, notes=["LTS steps are coarse steps; its cell-updates are those run (open cells of active tiles)",
                             "shared 2-core machine: see cpu pressure in the JSON"])
    if "global" in runs:
        cen = runs["global"]["census"]
        rows = [[f"{c['t_s']:.0f}", c["dt_global_s"], c["h_max_m"], c["share_ge_2x"], c["share_ge_4x"],
                 c["share_ge_8x"], c["deepest"][0]["depth_m"], c["deepest"][0]["relief_m"],
                 c["deepest"][0]["fixed_level"]] for c in cen[:: max(1, len(cen) // 6)] + [cen[-1]]]
        print_table("Global step: share of open cells whose own CFL step is >= m x the global one",
                    ["t s", "dt s", "h_max m", ">= 2x", ">= 4x", ">= 8x", "deepest cell m", "its relief m",
                     "fixed level"], rows)
    if "lts" in runs:
        lv = runs["lts"]["lts"]["levels"]
        print_table("LTS: sub-steps and cell-updates per level", ["level", "dt_0 / 2^k", "sub-steps",
                                                                  "cell-updates"],
                    [[x["level"], f"1/{2 ** x['level']}", x["substeps"], x["cell_updates"]] for x in lv])
    if cmps:
        print_table("Max depth, each mode - global, over cells flooded (>= 0.15 m) in either",
                    ["mode", "cells", "median |d| m", "p99 |d| m", "max |d| m", "land p99 m", "land max m",
                     "flooded global", "flooded mode"],
                    [[m, c["flooded_cells"], c.get("median_m"), c.get("p99_m"), c.get("max_m"), c.get("land_p99_m"),
                      c.get("land_max_m"), c.get("flooded_global"), c.get("flooded_lts")] for m, c in cmps.items()])
    path = write_results("flood_city", {"args": vars(args), "machine": machine_info(), "setup_s": setup_s,
                                        "runs": runs, "max_depth_difference": cmp_, "differences": cmps,
                                        "busy_warning": warn})
    print("wrote", path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
