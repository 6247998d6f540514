"""How many cell-updates per simulated second an ideal scheme needs on the city flood run (the ceiling of LTS).

From depth snapshots of the global-step run (:mod:`bench.flood_city_snapshots`), per snapshot:

* (a) today: every cell of the rows' open spans, at the global CFL step (deepest water, sea included);
* (b) live cells only at the same step: not blocked, and not a fixed-level (sea) cell whose four neighbours are all
  fixed-level or blocked (such a cell's depth is the level's whatever its faces carry); (b') the same cells at the
  step of the deepest *live* water (the dead sea no longer sets it: different results);
* (c) live cells with per-tile power-of-two levels: each tile's step from the deepest live water within one tile
  (the LTS's buffer), the coarse step that minimises the cost; (c') the same without the buffer (each tile's own
  water: the floor of any tiled scheme).

Usage: ``python bench/bench_flood_ceiling.py --resolution 90 --snapshots /tmp/lts3/city90.npz``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import print_table, write_results  # noqa: E402

G = 9.80665


def live_mask(phi: np.ndarray, level: np.ndarray) -> np.ndarray:
    """Open cells that are not fixed-level cells surrounded by fixed-level or blocked cells (grid edge: live)."""
    dead_nb = np.pad((level != 0) | (phi <= 0), 1, constant_values=False)
    dead = (level != 0) & dead_nb[:-2, 1:-1] & dead_nb[2:, 1:-1] & dead_nb[1:-1, :-2] & dead_nb[1:-1, 2:]
    return (phi > 0) & ~dead


def cfl(h, p) -> np.ndarray:
    """The CFL step of ``FloodModel.cfl_dt`` for depths ``h`` (array), without the level look-ahead."""
    h = np.asarray(h, dtype=np.float64)
    with np.errstate(divide="ignore"):
        d = p.alpha * np.sqrt(p.theta) * min(p.dx, p.dy) / np.sqrt(G * np.minimum(h, p.h_cap) / p.phi_min)
    return np.where(h > p.h_dry, np.minimum(d, p.dt_max), p.dt_max)


def tile_max(a: np.ndarray, tile: int) -> np.ndarray:
    ny, nx = a.shape
    pad = np.zeros((-(-ny // tile) * tile, -(-nx // tile) * tile))
    pad[:ny, :nx] = a
    return pad.reshape(pad.shape[0] // tile, tile, pad.shape[1] // tile, tile).max(axis=(1, 3))


def tile_sum(a: np.ndarray, tile: int) -> np.ndarray:
    ny, nx = a.shape
    pad = np.zeros((-(-ny // tile) * tile, -(-nx // tile) * tile))
    pad[:ny, :nx] = a
    return pad.reshape(pad.shape[0] // tile, tile, pad.shape[1] // tile, tile).sum(axis=(1, 3))


def levels_cost(cells: np.ndarray, dts: np.ndarray, dt_max: float, kmax: int = 8) -> tuple[float, float, int]:
    """(cell-updates per simulated s, dt_0, finest level) of the best power-of-two levels (as choose_levels)."""
    m = cells > 0
    c, d = cells[m], dts[m]
    dmin = d.min()
    best = (np.inf, dmin, 0)
    for k in range(kmax + 1):
        d0 = min(dmin * 2.0 ** k, dt_max)
        lev = np.maximum(np.ceil(np.log2(d0 / d) - 1e-12), 0)
        cost = float((c * 2.0 ** lev).sum() / d0)
        if cost < best[0] * (1 - 1e-12):
            best = (cost, d0, int(lev.max()))
        if d0 >= dt_max:
            break
    return best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--resolution", type=float, default=90.0)
    ap.add_argument("--hours", type=float, default=6.0)
    ap.add_argument("--snapshots", required=True)
    ap.add_argument("--tiles", default="16,32")
    args = ap.parse_args(argv)
    from physics.flood import FloodModel
    from physics.flood_city import city_flood_setup, model_kwargs

    setup = city_flood_setup(resolution=args.resolution, hours=args.hours)
    model = FloodModel(**model_kwargs(setup))
    p = model._params
    phi = np.asarray(model.phi)
    level = np.asarray(model._forcing.level_mask)
    cols = np.asarray(model._grid.cols)
    span = np.zeros(model.shape, dtype=bool)
    for j, (lo, hi, _) in enumerate(cols):
        span[j, lo:hi] = True
    live = live_mask(phi, level)
    z_lmin = model._forcing.z_level_min
    data = np.load(args.snapshots)
    tiles = [int(t) for t in args.tiles.split(",")]
    static = {"grid": int(phi.size), "span": int(span.sum()), "open": int((phi > 0).sum()),
              "fixed_level": int((level != 0).sum()), "live": int(live.sum())}
    print(json.dumps(static))
    rows, out = [], []
    for t, h in zip(data["times"], data["h"], strict=True):
        h = h.astype(np.float64)
        lv_depth = max(float(model._forcing.level_v[:, :].max()) - z_lmin, 0.0) if level.any() else 0.0
        dt_a = float(cfl(max(h[phi > 0].max(), lv_depth), p))
        dt_b2 = float(cfl(h[live].max(), p))
        r = {"t_s": float(t), "dt_global_s": dt_a, "dt_live_s": dt_b2,
             "a": static["span"] / dt_a, "b": static["live"] / dt_a, "b_live_dt": static["live"] / dt_b2}
        for tile in tiles:
            hl = np.where(live, h, 0.0)
            th = tile_max(hl, tile)
            buf = np.pad(th, 1)
            hb = np.max([buf[1 + a:buf.shape[0] - 1 + a, 1 + b:buf.shape[1] - 1 + b]
                         for a in (-1, 0, 1) for b in (-1, 0, 1)], axis=0)
            cells = tile_sum(live.astype(np.float64), tile)
            r[f"c{tile}"], r[f"c{tile}_dt0"], r[f"c{tile}_kmax"] = levels_cost(cells, cfl(hb, p), p.dt_max)
            r[f"c{tile}_nobuf"] = levels_cost(cells, cfl(th, p), p.dt_max)[0]
        out.append(r)
        rows.append([f"{t:.0f}", dt_a, dt_b2, r["a"] / 1e6, r["b"] / 1e6, r["b_live_dt"] / 1e6]
                    + [x for tile in tiles for x in (r[f"c{tile}"] / 1e6, r[f"c{tile}_nobuf"] / 1e6)])
    mean = {k: float(np.mean([r[k] for r in out])) for k in out[0] if k != "t_s"}
    rows.append(["mean", mean["dt_global_s"], mean["dt_live_s"], mean["a"] / 1e6, mean["b"] / 1e6,
                 mean["b_live_dt"] / 1e6] + [mean[k] / 1e6 for tile in tiles for k in (f"c{tile}", f"c{tile}_nobuf")])
    print_table(f"City {args.resolution:g} m, M cell-updates per simulated second (ideal)",
                ["t s", "dt global s", "dt live s", "(a) span, global dt", "(b) live, global dt", "(b') live, live dt"]
                + [x for tile in tiles for x in (f"(c) tiles {tile}, buffer", f"(c') tiles {tile}, no buffer")], rows)
    path = write_results("flood_ceiling", {"args": vars(args), "static": static, "snapshots": out, "mean": mean})
    print("wrote", path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
