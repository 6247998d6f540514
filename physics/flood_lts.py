"""Local time stepping for :class:`physics.flood.FloodModel`: deep pools no longer set the whole grid's step.

:func:`advance` is the ``time_stepping="lts"`` counterpart of
``FloodModel._advance``: it takes the model to ``t_end`` (or to the next
change of a piecewise-constant forcing, as ``_advance`` does) with tiles of
cells sub-cycled by power-of-two steps; the scheme, its levels and why mass
is exact across level boundaries are in :mod:`physics._kernels.flood_lts`.
:func:`run` is ``FloodModel.step`` with it (for callers before the
``time_stepping`` hook of ``FloodModel``), :func:`stats` what it did.

Known limits (measured 2026-12-05, bench/bench_flood_city.py): it is not yet faster than the
global step. Over the whole city at 90 m (6 h, record storm) it ran 28.3 s against 9.0 s on a quiet
machine (316 s against 135 s at 04:40 under 98 % CPU pressure):
a cell-update costs 2.4x the fused sweep's (separate passes; a compiled call per tile row) and,
with 32-cell tiles and a one-tile buffer, the fine levels covered most flooded cells (1.01e9
open-cell updates against 0.84e9). Its balance there closes to 5.9e-15 relative since numba no longer
fuses the factor and update loops of a sub-step (before: 2.1e-8, 20 m³ of 5.9e8 m³).
What any tiled scheme could gain (bench/bench_flood_ceiling.py, cell-updates per simulated second
against the global step's over the rows' spans, 6 h mean): at 30 m 0.49 with 32-cell tiles and this
one-tile buffer, 0.42 with 16-cell tiles, 0.29 with no buffer; at 90 m 0.59 (skipping blocked and
dead-sea cells alone: 0.63).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from physics._kernels import flood as K
from physics._kernels import flood_lts as L
from twin.component import require_positive
from twin.errors import ValidationError

TILE = 32  # default tile edge (cells)
MAX_LEVEL = 8  # default finest level: steps down to dt_0 / 256
SUPPORTED_EDGES = {K.CLOSED: "closed", K.FREE: "free", getattr(K, "FACES", -1): "per-face kinds"}


@dataclass
class LTSState:
    """A model's tiles and their buffers (built once per model and tile size)."""

    tiles: L.Tiles
    tile: int
    max_level: int
    forcing_nolevel: K.Forcing | None = None
    coarse_steps: int = 0


def _check(model) -> None:
    bc = np.asarray(model._grid.bc)
    for e, code in zip(("west", "east", "north", "south"), bc, strict=True):
        if int(code) not in SUPPORTED_EDGES:
            raise ValidationError(
                f"time_stepping='lts': the {e} edge has boundary code {int(code)}, which local time stepping "
                f"does not support yet (it supports {sorted(SUPPORTED_EDGES.values())}); "
                "use time_stepping='global' for this model")


def check_settings(tile, max_level, prefix: str = "") -> tuple[int, int]:
    """``(tile, max_level)`` as ints, or ValidationError naming the setting (``prefix``: e.g. "lts_")."""
    if isinstance(tile, bool) or not isinstance(tile, (int, np.integer)) or tile < 2:
        raise ValidationError(f"{prefix}tile={tile!r}: give a tile edge of at least 2 cells, an int (default {TILE})")
    if isinstance(max_level, bool) or not isinstance(max_level, (int, np.integer)) or not 0 <= max_level <= 30:
        raise ValidationError(f"{prefix}max_level={max_level!r}: give an int 0 .. 30 (default {MAX_LEVEL})")
    return int(tile), int(max_level)


def _state(model, tile: int, max_level: int) -> LTSState:
    st = getattr(model, "_lts", None)
    if st is not None and st.tile == tile and st.max_level == max_level:
        return st
    tile, max_level = check_settings(tile, max_level)
    ny, nx = model.shape
    dt = model.dtype
    rb, cb = L.tile_bounds(ny, tile), L.tile_bounds(nx, tile)
    nty, ntx = rb.size - 1, cb.size - 1
    cols = model._grid.cols
    # tiles whose CFL step looks ahead at fixed levels and stage series: those holding fixed-level cells
    # and those on an edge with per-face kinds
    lm = np.asarray(model._forcing.level_mask) != 0
    faces = np.asarray(model._grid.bc) == getattr(K, "FACES", -1)
    has_level = np.zeros((nty, ntx), dtype=np.uint8)
    for a in range(nty):
        for b in range(ntx):
            edge = ((b == 0 and faces[0]) or (b == ntx - 1 and faces[1]) or (a == 0 and faces[2])
                    or (a == nty - 1 and faces[3]))
            has_level[a, b] = edge or lm[rb[a]:rb[a + 1], cb[b]:cb[b + 1]].any()
    tiles = L.Tiles(
        rb=rb, cb=cb, cells=L.tile_cells(cols, rb, cb), has_level=has_level,
        level=np.zeros((nty, ntx), dtype=np.int64), hmax=np.zeros((nty, ntx)),
        order=np.zeros(nty * ntx, dtype=np.int64), n_active=np.zeros(max_level + 1, dtype=np.int64),
        touch=np.zeros(nty * ntx, dtype=np.int64), n_touch=np.zeros(max_level + 1, dtype=np.int64),
        sx=np.zeros((ny, nx + 1), dtype=dt), sy=np.zeros((ny + 1, nx), dtype=dt),
        fp=np.ones((ny + 2, nx + 2), dtype=dt), vol=np.zeros((nty * ntx, L.N_VOLUMES)),
        updates=np.zeros((max_level + 1, 2)))
    st = LTSState(tiles=tiles, tile=tile, max_level=max_level)
    model._lts = st
    return st


def advance(model, t_end: float, max_steps: int = 2**62, *, tile: int = TILE, max_level: int = MAX_LEVEL) -> None:
    """Coarse steps of ``model`` towards ``t_end`` while its rain block and hydrograph segments hold.

    The local-time-stepping twin of ``FloodModel._advance`` (same forcings, same
    ``acc`` volume columns, so ``model.balance()`` closes); ``max_steps`` counts coarse
    steps. ``tile``: tile edge in cells; ``max_level``: the finest level allowed
    (steps down to dt_0 / 2^max_level). ``model.n_steps`` counts coarse steps and
    ``model.cell_updates`` the cell-updates actually run (open cells of the active tiles).
    """
    _check(model)
    st = _state(model, tile, max_level)
    rain = np.ascontiguousarray(model.rain.rate(model.t), dtype=model.dtype)
    if rain.shape not in ((1, 1), model.shape):
        raise ValidationError(f"rain field has shape {rain.shape}, the DEM {model.shape}: give one of the grid's shape")
    model._forcing = model._forcing._replace(rain=rain)
    f = model._forcing
    f_nl = f._replace(has_level=False, series_zmin=np.full_like(f.series_zmin, np.inf))
    p_open = model._params._replace(h_cap=0.0, dt_max=1e300)
    window = K.Window(t=float(model.t), t_end=float(t_end), t_next=float(model._next_change()),
                      h_max=float(model._h_max_now), max_steps=int(max_steps))
    before = float(st.tiles.updates[:, 0].sum())
    t, n, hm = L.advance(model._grid, f, f_nl, model._outputs, model._params, p_open, window, st.tiles,
                         st.max_level, model.dtype.type)
    model.t = float(t)
    model.n_steps += int(n)
    st.coarse_steps += int(n)
    model.cell_updates += int(st.tiles.updates[:, 0].sum() - before)
    model._h_max_now = float(hm)


def run(model, dt: float, **kw) -> float:
    """``model.step(dt)`` with local time stepping; returns ``dt``."""
    dt = require_positive(dt, "dt")
    t_end = model.t + dt
    while model.t < t_end - 1e-9:
        advance(model, t_end, **kw)
    return dt


def stats(model) -> dict:
    """What local time stepping did on ``model``: coarse steps, and per level the sub-steps and cell-updates."""
    st = getattr(model, "_lts", None)
    if st is None:
        return {"coarse_steps": 0, "levels": []}
    u = st.tiles.updates
    levels = [{"level": k, "substeps": int(u[k, 1]), "cell_updates": int(u[k, 0])}
              for k in range(u.shape[0]) if u[k, 1] > 0]
    return {"coarse_steps": st.coarse_steps, "tile": st.tile, "max_level": st.max_level, "levels": levels,
            "tiles": int(np.count_nonzero(st.tiles.cells)), "level_now": st.tiles.level.copy()}
