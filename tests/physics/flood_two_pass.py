"""The flood step as two passes over the whole grid: the reference of the one-sweep step (tests only).

:func:`physics._kernels.flood.fused_pass` does the arithmetic of one step
in a single sweep per block of rows, with rolling row buffers and halo rows
at block boundaries. Here the same row kernels run in the plain order:

1. :func:`flux_pass`, per block of rows in order: the unlimited new fluxes
   of row j (its x faces and the y face above it) into ``qx_s``/``qy_s``
   from the current ``qx``/``qy``; then, once the faces around row j-1 are
   known, that row's outflow-limiting factor into ``fp`` (the factor of
   cell (j, i) is ``fp[j+1, i+1]``; the padding rows/columns hold 1). The y
   face below a block's last row belongs to the next block and is computed
   again into a row buffer (one extra row per block);
2. :func:`update_pass`: every row's update (``_update_row``) from them.

The edge, line and level boundaries (physics/flood_boundaries.py) live in the shared row kernels
(``_x_faces``, ``_top_edge``, ``_bottom_edge``: the edge faces; ``_update_row``: edge volumes, level
cells) and in ``K.begin_step`` (per-step values), so both steps apply them with the same arithmetic.
numba's cache keys a cached function on its own file only: the row kernels are inlined here, so a
change of physics/_kernels/flood.py must come with a touch of this file (or a cleared cache).

:func:`advance` has the signature of ``K.advance``; a model steps with it
when its ``_time_loop`` is replaced (see ``TwoPassFloodModel`` in
test_flood_fused.py), so both steps share everything but the sweep.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from physics._kernels import flood as K
from physics._kernels.flood import (
    _bottom_edge,
    _limit_row,
    _row,
    _top_edge,
    _update_row,
    _x_faces,
    _y_faces,
)


@njit(parallel=True, cache=True, fastmath=True, nogil=True, error_model="numpy")
def flux_pass(g, chunks, cf, u, qx_s, qy_s, fp, ybuf):
    """Pass 1: unlimited fluxes into ``qx_s``/``qy_s`` and the outflow factors into ``fp``.

    ``ybuf`` is a (len(chunks) - 1, nx) scratch row per block.
    """
    ny = g.h.shape[0]
    cols = g.cols
    nch = chunks.size - 1
    for c in prange(nch):
        j0 = chunks[c]
        j1 = chunks[c + 1]
        for j in range(j0, j1):
            lo = cols[j, 0]
            hi = cols[j, 1]
            n2j = _row(g.n2, u.n2, j)
            _x_faces(j, g, n2j, qx_s[j], lo, hi, cf)
            if j == 0:
                _top_edge(g, n2j, qy_s[0], lo, hi, cf)
            else:
                a = max(lo, cols[j - 1, 0])
                b = min(hi, cols[j - 1, 1])
                _y_faces(j, g, _row(g.n2, u.n2, j - 1), n2j, qy_s[j], a, b, cf)
            if j > j0:
                jl = j - 1
                _limit_row(g.h[jl], u.ones if (g.phi_binary or cols[jl, 2]) else g.phi[jl], qx_s[jl],
                           qy_s[jl], qy_s[j], fp[jl + 1], cols[jl, 0], cols[jl, 1], cf)
        jl = j1 - 1
        lo = cols[jl, 0]
        hi = cols[jl, 1]
        if j1 == ny:
            _bottom_edge(g, _row(g.n2, u.n2, ny - 1), qy_s[ny], lo, hi, cf)
            below = qy_s[ny]
        else:
            a = max(lo, cols[j1, 0])
            b = min(hi, cols[j1, 1])
            below = ybuf[c]
            _y_faces(j1, g, _row(g.n2, u.n2, jl), _row(g.n2, u.n2, j1), below, a, b, cf)
        _limit_row(g.h[jl], u.ones if (g.phi_binary or cols[jl, 2]) else g.phi[jl], qx_s[jl], qy_s[jl], below,
                   fp[jl + 1], lo, hi, cf)


@njit(parallel=True, cache=True, fastmath=True, nogil=True, error_model="numpy")
def update_pass(g, chunks, f, o, cf, u, qx_s, qy_s, fp):
    """Pass 2: limited fluxes into ``qx``/``qy``, depths, maxima and volumes, row by row."""
    nch = chunks.size - 1
    for c in prange(nch):
        for j in range(chunks[c], chunks[c + 1]):
            _update_row(j, g, f, o, cf, u, qx_s[j], qy_s[j], qy_s[j + 1], fp[j], fp[j + 1], fp[j + 2])


@njit(cache=True, nogil=True)
def advance(g, blocks, f, o, p, w, F):
    """``K.advance`` with :func:`flux_pass` then :func:`update_pass` as the step."""
    ny, nx = g.h.shape
    dtype = g.h.dtype
    # unlimited fluxes and factors; entries outside the open spans are never written, so fresh
    # zeros (ones for the factors' padding) per call hold what a kept scratch would hold
    qx_s = np.zeros((ny, nx + 1), dtype=dtype)
    qy_s = np.zeros((ny + 1, nx), dtype=dtype)
    fp = np.ones((ny + 2, nx + 2), dtype=dtype)
    ybuf = np.zeros((blocks.chunks.size - 1, nx), dtype=dtype)
    u = K.uniform_rows(g, f)
    t = w.t
    h_max = w.h_max
    nsteps = 0
    while t < w.t_end - 1e-9 and (nsteps == 0 or t < w.t_next) and nsteps < w.max_steps:
        step = K.begin_step(t, h_max, w, f, p)
        cf = K.coefficients(step, p, F)
        flux_pass(g, blocks.chunks, cf, u, qx_s, qy_s, fp, ybuf)
        update_pass(g, blocks.chunks, f, o, cf, u, qx_s, qy_s, fp)
        h_max = o.acc[:, K.ACC_ROW_MAX].max()
        t = step.t_new
        nsteps += 1
    return t, nsteps, h_max
