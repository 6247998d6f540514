"""The fused local-inertial step over each row's open segments only: blocked cells inside a row cost nothing.

:func:`physics._kernels.flood.fused_pass` sweeps each row's open *span* (first to last open cell): blocked
cells between two open stretches of a row (a bay of the city outline, the Hong Kong side of the river, a
building block) are stepped too, with zero fluxes and an unchanged depth. :func:`fused_pass_segments` is the
same sweep (the same blocks, halos, rolling row buffers and order) over each row's open *segments*
(maximal runs of open cells, :func:`segments`), calling the global kernel's face, limiter and update
functions (imported, not copied) once per segment. Every face next to a blocked cell carries exactly 0 in
the span sweep (its flow depth is ``BIG - BIG = 0``), and a blocked cell's depth, maxima and volumes never
change there, so the segment sweep gives the same depths and discharges, bit for bit; only the float64 row
volumes are summed per segment (round-off of the balance).

Buffers outside a row's segments keep values of earlier rows; they are read only through faces next to a
blocked cell, whose flux is 0, so only their finiteness matters (factors are in [0, 1], fluxes finite).
The y-face buffer of a pair of rows is zeroed over both rows' segments before the overlaps are computed.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from physics._kernels.flood import (
    ACC_DRAINAGE,
    ACC_INFILTRATION,
    ACC_INFLOW,
    ACC_LEVEL_EXCHANGE,
    ACC_OUTFLOW,
    ACC_RAIN,
    ACC_ROW_MAX,
    CLOSED,
    Blocks,  # noqa: F401 - the parallel loop's body names the namedtuple types it receives
    Coefficients,  # noqa: F401
    Forcing,  # noqa: F401
    Grid,  # noqa: F401
    Outputs,  # noqa: F401
    UniformRows,  # noqa: F401
    _bottom_edge_impl,
    _in_halo,
    _limit_row,
    _pick,
    _row,
    _top_edge_impl,
    _update_row_impl,
    _x_faces_impl,
    _y_faces_impl,
    begin_step,
    coefficients,
    uniform_rows,
)


def segments(open_: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's maximal runs of open cells, as CSR: ``ptr`` (ny+1,) and ``seg`` (n, 2) [lo, hi), int64."""
    open_ = np.asarray(open_, dtype=bool)
    ny, nx = open_.shape
    pad = np.zeros((ny, nx + 2), dtype=np.int8)
    pad[:, 1:-1] = open_
    d = np.diff(pad, axis=1)
    rows_lo, lo = np.nonzero(d == 1)
    _, hi = np.nonzero(d == -1)
    seg = np.ascontiguousarray(np.stack([lo, hi], axis=1).astype(np.int64)).reshape(-1, 2)
    ptr = np.zeros(ny + 1, dtype=np.int64)
    np.add.at(ptr, rows_lo + 1, 1)
    return np.cumsum(ptr).astype(np.int64), seg


def segment_chunks(ptr: np.ndarray, seg: np.ndarray, n: int) -> np.ndarray:
    """Row boundaries (int64, first 0, last ny) of at most ``n`` blocks of about equal open-cell count."""
    ny = ptr.size - 1
    n = max(1, min(int(n), ny))
    w = np.zeros(ny)
    rows = np.repeat(np.arange(ny), np.diff(ptr))
    np.add.at(w, rows, (seg[:, 1] - seg[:, 0]).astype(np.float64))
    cum = np.concatenate([[0.0], np.cumsum(w + 1.0)])  # an empty row costs a little too
    cuts = np.searchsorted(cum, cum[-1] * np.arange(1, n) / n)
    return np.unique(np.concatenate([[0], np.clip(cuts, 1, ny - 1) if ny > 1 else [], [ny]]).astype(np.int64))


@njit(fastmath=True, cache=True, error_model="numpy")
def _sx_row_seg(k, sxrow, h, zb, qx, bc, n2k, cf, kw, vw, ke, ve, ptr, seg):
    # unlimited x-face fluxes of row k's segments; the faces at a segment's ends next to a blocked cell are 0
    nx = h.shape[1]
    for s in range(ptr[k], ptr[k + 1]):
        lo = seg[s, 0]
        hi = seg[s, 1]
        if lo > 0:
            sxrow[lo] = cf.zero
        if hi < nx:
            sxrow[hi] = cf.zero
        _x_faces_impl(k, h, zb, qx, bc, n2k, sxrow, lo, hi, cf, kw, vw, ke, ve)


@njit(fastmath=True, cache=True, error_model="numpy")
def _sy_row_seg(k, out, h, zb, n2, phi, qy, bc, n2u, cf, ekind, evalue, ptr, seg):
    # unlimited fluxes of the y faces above row k: 0 over both rows' segments, then the overlaps
    ny = h.shape[0]
    zero = cf.zero
    if k == 0 or k == ny:
        jr = 0 if k == 0 else ny - 1
        n2r = _row(n2, n2u, jr)
        for s in range(ptr[jr], ptr[jr + 1]):
            lo = seg[s, 0]
            hi = seg[s, 1]
            if bc[2 if k == 0 else 3] == CLOSED:
                for i in range(lo, hi):
                    out[i] = zero
            elif k == 0:
                _top_edge_impl(h, zb, phi, qy, bc, n2r, out, lo, hi, cf, ekind[2], evalue[2])
            else:
                _bottom_edge_impl(h, zb, phi, qy, bc, n2r, out, lo, hi, cf, ekind[3], evalue[3])
        return
    for r in range(k - 1, k + 1):
        for s in range(ptr[r], ptr[r + 1]):
            for i in range(seg[s, 0], seg[s, 1]):
                out[i] = zero
    n2a = _row(n2, n2u, k - 1)
    n2b = _row(n2, n2u, k)
    s1 = ptr[k - 1]
    s2 = ptr[k]
    while s1 < ptr[k] and s2 < ptr[k + 1]:
        a = max(seg[s1, 0], seg[s2, 0])
        b = min(seg[s1, 1], seg[s2, 1])
        if a < b:
            _y_faces_impl(k, h, zb, qy, bc, n2a, n2b, out, a, b, cf)
        if seg[s1, 1] < seg[s2, 1]:
            s1 += 1
        else:
            s2 += 1


@njit(fastmath=True, cache=True, error_model="numpy")
def _fp_row_seg(k, frow, hrow, prow, sxrow, above, below, cf, ptr, seg):
    # outflow factors of row k's segments (the padding of the buffers stays 1: the ghost cells of the edges)
    for s in range(ptr[k], ptr[k + 1]):
        _limit_row(hrow, prow, sxrow, above, below, frow, seg[s, 0], seg[s, 1], cf)


@njit(inline="always")
def _sx(k, sxrow, g, u, cf, ptr, seg):
    _sx_row_seg(k, sxrow, g.h, g.zb, g.qx, g.bc, _row(g.n2, u.n2, k), cf, g.ekind[0, k], g.evalue[0, k],
                g.ekind[1, k], g.evalue[1, k], ptr, seg)


@njit(inline="always")
def _sy(k, out, g, u, cf, ptr, seg):
    _sy_row_seg(k, out, g.h, g.zb, g.n2, g.phi, g.qy, g.bc, u.n2, cf, g.ekind, g.evalue, ptr, seg)


@njit(inline="always")
def _fp(k, frow, g, u, sxrow, above, below, cf, ptr, seg):
    _fp_row_seg(k, frow, g.h[k], u.ones if (g.phi_binary or g.cols[k, 2]) else g.phi[k], sxrow, above, below, cf,
                ptr, seg)


@njit(inline="always")
def _update(j, g, f, o, cf, u, sxj, sya, syb, fu, fc_, fd, ptr, seg):
    # :func:`physics._kernels.flood._update_row` segment by segment; the row's volumes summed over them
    ny, nx = g.h.shape
    lmr = f.level_mask[j] if f.level_rows[j] else u.no_level
    acc = o.acc[j]
    row_max = 0.0
    for s in range(ptr[j], ptr[j + 1]):
        v_rain, v_inf, v_drn, v_in, v_out, v_lvl, rm = _update_row_impl(
            j, ny, nx, seg[s, 0], seg[s, 1], g.h, g.zb, g.phi, g.qx, g.qy, sxj, sya, syb, fu, fc_, fd, g.cols,
            _row(f.rain, u.rain, j), _row(f.infil_p1, u.infil_p1, j), _row(f.infil_p2, u.infil_p2, j),
            _row(f.drain_rate, u.drain_rate, j), _row(f.inflow, u.inflow, j),
            lmr, o.hmax, o.tmax, o.tarr, f.infil_cum, u.ones, f.infil_mode, cf, f.level_now)
        acc[ACC_RAIN] += v_rain
        acc[ACC_INFILTRATION] += v_inf
        acc[ACC_DRAINAGE] += v_drn
        acc[ACC_INFLOW] += v_in
        acc[ACC_OUTFLOW] += v_out
        acc[ACC_LEVEL_EXCHANGE] += v_lvl
        row_max = max(row_max, float(rm))
    acc[ACC_ROW_MAX] = row_max


@njit(parallel=True, cache=True, fastmath=True, nogil=True, error_model="numpy")
def fused_pass_segments(g, blocks, f, o, cf, u, ptr, seg):
    """:func:`physics._kernels.flood.fused_pass` over the open segments ``ptr``/``seg`` (:func:`segments`).

    The same halo prologue and block sweep (see its docstring); each row function runs once per segment
    of its row. ``blocks`` may be balanced by open cells (:func:`segment_chunks`).
    """
    ny = g.h.shape[0]
    chunks = blocks.chunks
    hx = blocks.halo_x
    hy = blocks.halo_y
    hf = blocks.halo_f
    rx = blocks.roll_x
    ry = blocks.roll_y
    rf = blocks.roll_f
    ones = u.ones
    ones_p = u.ones_p
    nch = chunks.size - 1
    for c in prange(nch - 1):
        b = chunks[c + 1]
        for r in range(2):
            _sx(b - 1 + r, hx[c, r], g, u, cf, ptr, seg)
        for r in range(3):
            _sy(b - 1 + r, hy[c, r], g, u, cf, ptr, seg)
        for r in range(2):
            _fp(b - 1 + r, hf[c, r], g, u, hx[c, r], hy[c, r], hy[c, r + 1], cf, ptr, seg)
    for c in prange(nch):
        j0 = chunks[c]
        j1 = chunks[c + 1]
        for m in range(j0 - 1, j1 + 1):
            k = m + 1
            if k <= j1 and not _in_halo(k, c, j0, j1, nch, 2):
                _sy(k, ry[c, k % 4], g, u, cf, ptr, seg)
            if m >= j0 and m < j1:
                sx = rx[c, m % 3]
                _sx(m, sx, g, u, cf, ptr, seg)
                if not _in_halo(m, c, j0, j1, nch, 1):
                    _fp(m, rf[c, m % 3], g, u, sx, _pick(m, c, j0, j1, nch, 2, hy, ry, ones, ny),
                        _pick(m + 1, c, j0, j1, nch, 2, hy, ry, ones, ny), cf, ptr, seg)
            j = m - 1
            if j < j0:
                continue
            _update(j, g, f, o, cf, u, rx[c, j % 3],
                    _pick(j, c, j0, j1, nch, 2, hy, ry, ones, ny),
                    _pick(j + 1, c, j0, j1, nch, 2, hy, ry, ones, ny),
                    _pick(j - 1, c, j0, j1, nch, 1, hf, rf, ones_p, ny),
                    _pick(j, c, j0, j1, nch, 1, hf, rf, ones_p, ny),
                    _pick(j + 1, c, j0, j1, nch, 1, hf, rf, ones_p, ny), ptr, seg)


@njit(cache=True, nogil=True)
def advance(g, blocks, f, o, p, w, F, ptr, seg):
    """:func:`physics._kernels.flood.advance` with :func:`fused_pass_segments` (the same steps)."""
    u = uniform_rows(g, f)
    t = w.t
    h_max = w.h_max
    nsteps = 0
    while t < w.t_end - 1e-9 and (nsteps == 0 or t < w.t_next) and nsteps < w.max_steps:
        step = begin_step(t, h_max, w, f, p)
        fused_pass_segments(g, blocks, f, o, coefficients(step, p, F), u, ptr, seg)
        h_max = o.acc[:, ACC_ROW_MAX].max()
        t = step.t_new
        nsteps += 1
    return t, nsteps, h_max
