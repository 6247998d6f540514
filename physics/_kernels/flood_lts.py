"""Local time stepping (LTS) for the local-inertial scheme: tiles of cells sub-cycled by power-of-two steps.

The face arithmetic is that of :mod:`physics._kernels.flood` (imported, not
copied): the unlimited face fluxes (``_x_faces_impl``, ``_y_faces_impl``,
the edge fluxes), the donor limiter ``_lim`` and the cell update with every
forcing (``_update_row_impl``: rain, infiltration, drainage, inflows,
fixed-level cells, maxima, the volumes booked in the ``ACC_*`` columns).

Levels
------
The grid is cut into tiles (about ``tile`` x ``tile`` cells; see
:func:`tile_bounds`). Every coarse step each tile gets a level k >= 0 and
advances by dt_k = dt_0 / 2^k: its CFL step (:func:`physics._kernels.flood.cfl_step`)
is taken from the deepest water of the tile and its 8 neighbours (a one-tile
buffer: a wave crosses at most one cell per step), and dt_0 is the coarse
step that minimises cell-updates per simulated second (:func:`choose_levels`).
With K the finest level, a coarse step is 2^K sub-steps s = 0 .. 2^K - 1 of
dt_K; at sub-step s the tiles of level k >= kmin(s) are *active*
(kmin(0) = 0, else K minus the number of trailing zero bits of s), so a
level-k tile runs 2^k steps of dt_k per coarse step.

Faces
-----
A face between two tiles belongs to the finer one: its level is the larger
of the two, and it is updated (new discharge, limited flux, volumes) at each
step of that level, with that level's dt. The coarser cell next to it
receives that face's flux at every fine sub-step (the time integral of the
fine flux over the coarse step: "refluxing", applied as it happens), so
each face's volume leaves one cell and enters the other at the same
sub-step, and mass is conserved to round-off whatever the levels.

Depths stay >= 0: at each sub-step every cell touched by an active face gets
an outflow factor min(1, phi dx dy h / out) where ``out`` is the outflow over
its *active* faces, each over its own dt (:func:`_cell_factor`); the fluxes
from a finer neighbour are applied before the cell's own step and both are
scaled by that factor, so a coarse cell never loses more than it holds.

One sub-step (:func:`substep`), over the active tiles ``A`` and the touched
tiles ``T`` (``A`` and the tiles with an active finer neighbour):

1. unlimited new fluxes of the faces each tile of ``A`` owns (its inner
   faces and the border lines it shares with coarser tiles or, for ties,
   its west and north lines: each face computed once, with its level's dt);
2. outflow factors of the cells of ``T`` that have an active face;
3. per tile of ``T``: the limited fluxes of its finer neighbours' faces
   into its border cells, then (tiles of ``A``) ``_update_row_impl`` on
   each of its rows with its own dt, the finer border faces read as 0;
4. per tile of ``A``: the limited discharges of the border faces it owns
   written into ``qx``/``qy`` (step 3 may have written 0 there).

With every tile at level 0 a coarse step is one global step with the same
arithmetic: the depths and discharges equal those of the fused step to
round-off (the row volumes are summed per tile, and a cell's flux divergence
is the same sum).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit, prange

from physics._kernels.flood import (
    ACC_COLUMNS,
    ACC_ROW_MAX,
    CLOSED,
    Coefficients,  # noqa: F401 - the parallel loops' bodies name the namedtuple types they receive
    Forcing,  # noqa: F401
    Grid,  # noqa: F401
    Outputs,  # noqa: F401
    Params,  # noqa: F401
    Step,
    UniformRows,  # noqa: F401
    Window,
    _bottom_edge_impl,
    _lim,
    _row,
    _top_edge_impl,
    _update_row_impl,
    _x_faces_impl,
    _y_faces_impl,
    begin_step,
    cfl_step,
    coefficients,
    uniform_rows,
)

N_VOLUMES = ACC_COLUMNS - 1  # the volume columns of ``acc`` (all but ACC_ROW_MAX)


class Tiles(NamedTuple):
    """Tiles, their levels and the sub-step buffers (all updated in place by the kernels)."""

    rb: np.ndarray  # int64 (nty+1,): row bounds of the tile rows
    cb: np.ndarray  # int64 (ntx+1,): column bounds of the tile columns
    cells: np.ndarray  # int64 (nty, ntx): open cells (in the rows' open spans) per tile, 0 = empty tile
    has_level: np.ndarray  # uint8 (nty, ntx): the tile holds fixed-level cells
    level: np.ndarray  # int64 (nty, ntx): level of each tile this coarse step (-1: empty)
    hmax: np.ndarray  # (nty, ntx) float64: deepest water of each tile at the coarse step's start
    order: np.ndarray  # int64 (ntiles,): tiles by level, finest first
    n_active: np.ndarray  # int64 (kmax+1,): tiles of level >= k are order[:n_active[k]]
    touch: np.ndarray  # int64 (ntiles,): tiles by max(own level, neighbours' levels), largest first
    n_touch: np.ndarray  # int64 (kmax+1,)
    sx: np.ndarray  # (ny, nx+1): unlimited x-face fluxes of the sub-step (active faces only)
    sy: np.ndarray  # (ny+1, nx): unlimited y-face fluxes
    fp: np.ndarray  # (ny+2, nx+2) ones: outflow factors, padded (cell (j, i) at [j+1, i+1])
    vol: np.ndarray  # float64 (ntiles, N_VOLUMES): volumes of each tile's rows this coarse step
    updates: np.ndarray  # float64 (kmax+1, 2): per level, cell-updates and sub-steps run so far


def tile_bounds(n: int, size: int) -> np.ndarray:
    """Bounds (int64, 0 .. n) of tiles of ``size`` cells along one axis; no tile narrower than 2 cells.

    (A one-cell tile next to the grid edge would make its neighbour compute the edge face
    with its own step; a 2-cell minimum keeps every edge face in the tile of its cell.)
    """
    size = max(int(size), 2)
    b = list(range(0, n, size)) + [n]
    if len(b) > 2 and b[-1] - b[-2] < 2:
        b.pop(-2)
    return np.asarray(b, dtype=np.int64)


@njit(cache=True)
def tile_cells(cols, rb, cb):
    """Open cells per tile (int64 (nty, ntx)), counted over each row's open span."""
    nty = rb.size - 1
    ntx = cb.size - 1
    out = np.zeros((nty, ntx), dtype=np.int64)
    for a in range(nty):
        for j in range(rb[a], rb[a + 1]):
            lo = cols[j, 0]
            hi = cols[j, 1]
            for b in range(ntx):
                n = min(hi, cb[b + 1]) - max(lo, cb[b])
                if n > 0:
                    out[a, b] += n
    return out


@njit(cache=True)
def _pow2(k):
    return float(np.int64(1) << np.int64(k))


@njit(cache=True)
def kmin_of(s, kmax):
    """Coarsest level active at sub-step ``s`` of a coarse step of 2^kmax sub-steps."""
    if s == 0:
        return 0
    tz = 0
    while (s >> tz) & 1 == 0:
        tz += 1
    return kmax - tz


# --------------------------------------------------------------------------
# Levels (once per coarse step)
# --------------------------------------------------------------------------
@njit(cache=True)
def _tile_depth(h, phi, cols, j0, j1, i0, i1):
    m = 0.0
    for j in range(j0, j1):
        for i in range(max(cols[j, 0], i0), min(cols[j, 1], i1)):
            if phi[j, i] > 0:
                m = max(m, float(h[j, i]))
    return m


@njit(parallel=True, cache=True)
def tile_depths(h, phi, cols, tiles):
    """Deepest water (m) of each open tile into ``tiles.hmax``."""
    rb = tiles.rb
    cb = tiles.cb
    ntx = cb.size - 1
    hm = tiles.hmax
    for t in prange(hm.size):
        a = t // ntx
        b = t - a * ntx
        hm[a, b] = _tile_depth(h, phi, cols, rb[a], rb[a + 1], cb[b], cb[b + 1])


@njit(cache=True)
def choose_levels(tiles, t, f, f_nolevel, p, kmax):
    """Levels of the tiles and the coarse step dt_0 (s); returns (dt_0, finest level K).

    Each open tile's stable step is ``cfl_step`` of the deepest water within one tile of it
    (with the fixed-level look-ahead where it holds fixed-level cells). Of the coarse steps
    dt_min 2^m (m = 0 .. kmax, at most ``p.dt_max``) the one with the fewest cell-updates per
    second, sum(cells 2^k) / dt_0, is taken; a tile's level is the least k with
    dt_0 / 2^k <= its step.
    """
    nty, ntx = tiles.level.shape
    dts = np.full((nty, ntx), np.inf)
    dt_min = np.inf
    for a in range(nty):
        for b in range(ntx):
            if tiles.cells[a, b] == 0:
                continue
            hb = 0.0
            lv = False
            for aa in range(max(a - 1, 0), min(a + 2, nty)):
                for bb in range(max(b - 1, 0), min(b + 2, ntx)):
                    hb = max(hb, tiles.hmax[aa, bb])
                    lv = lv or tiles.has_level[aa, bb] != 0
            d = cfl_step(hb, t, f, p) if lv else cfl_step(hb, t, f_nolevel, p)
            dts[a, b] = d
            dt_min = min(dt_min, d)
    if not np.isfinite(dt_min):  # no open cell
        dt_min = p.dt_max
    best = np.inf
    dt0 = dt_min
    for m in range(kmax + 1):
        d0 = min(dt_min * _pow2(m), p.dt_max)
        cost = 0.0
        for a in range(nty):
            for b in range(ntx):
                if tiles.cells[a, b] > 0:
                    k = 0
                    d = d0
                    while d > dts[a, b]:
                        d *= 0.5
                        k += 1
                    cost += tiles.cells[a, b] * _pow2(k)
        cost /= d0
        if cost < best * (1.0 - 1e-12):
            best = cost
            dt0 = d0
        if d0 >= p.dt_max:
            break
    kfin = 0
    for a in range(nty):
        for b in range(ntx):
            if tiles.cells[a, b] == 0:
                tiles.level[a, b] = -1
                continue
            k = 0
            d = dt0
            while d > dts[a, b]:
                d *= 0.5
                k += 1
            tiles.level[a, b] = k
            kfin = max(kfin, k)
    _sort_tiles(tiles, kfin)
    return dt0, kfin


@njit(cache=True)
def _sort_tiles(tiles, kfin):
    nty, ntx = tiles.level.shape
    lev = tiles.level.ravel()
    touch_key = np.full(nty * ntx, -1, dtype=np.int64)
    for a in range(nty):
        for b in range(ntx):
            k = tiles.level[a, b]
            if k < 0:
                continue
            m = k
            if a > 0:
                m = max(m, tiles.level[a - 1, b])
            if a < nty - 1:
                m = max(m, tiles.level[a + 1, b])
            if b > 0:
                m = max(m, tiles.level[a, b - 1])
            if b < ntx - 1:
                m = max(m, tiles.level[a, b + 1])
            touch_key[a * ntx + b] = m
    o = np.argsort(-lev, kind="mergesort")
    tiles.order[:] = o
    o2 = np.argsort(-touch_key, kind="mergesort")
    tiles.touch[:] = o2
    for k in range(tiles.n_active.size):
        tiles.n_active[k] = np.sum(lev >= k) if k <= kfin else 0
        tiles.n_touch[k] = np.sum(touch_key >= k) if k <= kfin else 0


# --------------------------------------------------------------------------
# One sub-step
# --------------------------------------------------------------------------
@njit(cache=True)
def _tile_box(tiles, a, b):
    # rows [j0, j1) and columns [i0, i1) of tile (a, b)
    return tiles.rb[a], tiles.rb[a + 1], tiles.cb[b], tiles.cb[b + 1]


@njit(cache=True)
def _neighbour_levels(tiles, a, b):
    # levels of the west, east, north and south neighbours (-1: none or empty)
    nty, ntx = tiles.level.shape
    kw = tiles.level[a, b - 1] if b > 0 else -1
    ke = tiles.level[a, b + 1] if b < ntx - 1 else -1
    kn = tiles.level[a - 1, b] if a > 0 else -1
    ks = tiles.level[a + 1, b] if a < nty - 1 else -1
    return kw, ke, kn, ks


@njit(cache=True)
def _step_cf(dt0, kfin, k, s, t, f, p, F):
    # Coefficients of a level-k step that starts at sub-step s of the coarse step from t
    d = dt0 / _pow2(k)
    t_new = t + (s + _pow2(kfin - k)) * (dt0 / _pow2(kfin))
    step = Step(d, t_new, 0.0)
    return coefficients(step, p, F)


@njit(fastmath=True, cache=True, error_model="numpy")
def _tile_faces(a, b, g, u, tiles, cf):
    """Unlimited fluxes of the faces tile (a, b) owns into sx, sy.

    It owns its inner faces, its west and north border lines unless that neighbour is finer,
    and its east and south lines when that neighbour is coarser (or there is none): each face
    is computed once, by the finer side (ties: the east / south tile), with that side's step.
    """
    ny, nx = g.h.shape
    j0, j1, i0, i1 = _tile_box(tiles, a, b)
    k = tiles.level[a, b]
    kw, ke, kn, ks = _neighbour_levels(tiles, a, b)
    xa = i0 - 1 if (kw <= k and i0 > 0) else i0  # faces (xa, xb) computed: [xa+1, xb)
    xb = i1 + 1 if (ke < k and i1 < nx) else i1
    ya = j0 if kn <= k else j0 + 1  # face rows [ya, yb]
    yb = j1 if ks < k else j1 - 1
    cols = g.cols
    for j in range(j0, j1):
        lo = max(xa, cols[j, 0])
        hi = min(xb, cols[j, 1])
        if lo < hi:
            _x_faces_impl(j, g.h, g.zb, g.qx, g.bc, _row(g.n2, u.n2, j), tiles.sx[j], lo, hi, cf, g.ekind[0, j],
                          g.evalue[0, j], g.ekind[1, j], g.evalue[1, j])
    for jf in range(ya, yb + 1):
        if jf == 0 or jf == ny:
            jr = 0 if jf == 0 else ny - 1
            lo = max(cols[jr, 0], i0)
            hi = min(cols[jr, 1], i1)
            if lo < hi and g.bc[2 if jf == 0 else 3] != CLOSED:
                if jf == 0:
                    _top_edge_impl(g.h, g.zb, g.phi, g.qy, g.bc, _row(g.n2, u.n2, jr), tiles.sy[0], lo, hi, cf,
                                   g.ekind[2], g.evalue[2])
                else:
                    _bottom_edge_impl(g.h, g.zb, g.phi, g.qy, g.bc, _row(g.n2, u.n2, jr), tiles.sy[ny], lo, hi, cf,
                                      g.ekind[3], g.evalue[3])
            continue
        lo = max(max(cols[jf - 1, 0], cols[jf, 0]), i0)
        hi = min(min(cols[jf - 1, 1], cols[jf, 1]), i1)
        if lo < hi:
            _y_faces_impl(jf, g.h, g.zb, g.qy, g.bc, _row(g.n2, u.n2, jf - 1), _row(g.n2, u.n2, jf), tiles.sy[jf],
                          lo, hi, cf)


@njit(inline="always")
def _face_dt(k_own, k_nb, edge, kmin, dt0):
    # step of a border face (0: not active this sub-step); at a grid edge the face is the tile's own
    k = k_own if edge else max(k_own, k_nb)
    return dt0 / _pow2(k) if k >= kmin else 0.0


@njit(fastmath=True, cache=True, error_model="numpy")
def _tile_factors(a, b, g, tiles, kmin, dt0, dx, dy):
    """Outflow factors of the cells of tile (a, b) that have an active face this sub-step."""
    ny, nx = g.h.shape
    j0, j1, i0, i1 = _tile_box(tiles, a, b)
    k = tiles.level[a, b]
    kw, ke, kn, ks = _neighbour_levels(tiles, a, b)
    d_in = dt0 / _pow2(k) if k >= kmin else 0.0
    d_w = _face_dt(k, kw, i0 == 0, kmin, dt0)
    d_e = _face_dt(k, ke, i1 == nx, kmin, dt0)
    d_n = _face_dt(k, kn, j0 == 0, kmin, dt0)
    d_s = _face_dt(k, ks, j1 == ny, kmin, dt0)
    h = g.h
    phi = g.phi
    sx = tiles.sx
    sy = tiles.sy
    fp = tiles.fp
    area = dx * dy
    for j in range(j0, j1):
        dn = d_n if j == j0 else d_in
        ds = d_s if j == j1 - 1 else d_in
        lo = max(g.cols[j, 0], i0)
        hi = min(g.cols[j, 1], i1)
        for i in range(lo, hi):
            dw = d_w if i == i0 else d_in
            de = d_e if i == i1 - 1 else d_in
            if dw == 0.0 and de == 0.0 and dn == 0.0 and ds == 0.0:
                continue
            out = (dy * (de * max(float(sx[j, i + 1]), 0.0) - dw * min(float(sx[j, i]), 0.0))
                   + dx * (ds * max(float(sy[j + 1, i]), 0.0) - dn * min(float(sy[j, i]), 0.0)))
            vol = float(phi[j, i]) * area * float(h[j, i])
            fp[j + 1, i + 1] = vol / out if out > vol else 1.0


@njit(fastmath=True, cache=True, error_model="numpy")
def _add_border(j, i, dv, g, o, cf, area):
    # a finer neighbour's flux volume dv (m³) into border cell (j, i) of a coarser tile
    p = g.phi[j, i]
    if p > 0:
        h0 = g.h[j, i]
        hn = max((p * area * h0 + dv) / (p * area), 0.0)
        g.h[j, i] = hn
        hm = o.hmax[j, i]
        if hn > hm:
            o.hmax[j, i] = hn
            o.tmax[j, i] = cf.t_new
            if hn >= cf.h_arrive and hm < cf.h_arrive:
                o.tarr[j, i] = cf.t_new


@njit(fastmath=True, cache=True, error_model="numpy")
def _finer_borders(a, b, g, o, tiles, kmin, dt0, kfin, s, t, f, p, F):
    """Fluxes of the active faces this tile shares with finer tiles into its border cells."""
    ny, nx = g.h.shape
    j0, j1, i0, i1 = _tile_box(tiles, a, b)
    k = tiles.level[a, b]
    kw, ke, kn, ks = _neighbour_levels(tiles, a, b)
    sx = tiles.sx
    sy = tiles.sy
    fp = tiles.fp
    area = p.dx * p.dy
    if kw > k and kw >= kmin:
        cf = _step_cf(dt0, kfin, kw, s, t, f, p, F)
        for j in range(j0, j1):
            q = _lim(sx[j, i0], fp[j + 1, i0], fp[j + 1, i0 + 1], cf.zero)
            _add_border(j, i0, cf.dtdy * q, g, o, cf, area)
    if ke > k and ke >= kmin:
        cf = _step_cf(dt0, kfin, ke, s, t, f, p, F)
        for j in range(j0, j1):
            q = _lim(sx[j, i1], fp[j + 1, i1], fp[j + 1, i1 + 1], cf.zero)
            _add_border(j, i1 - 1, -cf.dtdy * q, g, o, cf, area)
    if kn > k and kn >= kmin:
        cf = _step_cf(dt0, kfin, kn, s, t, f, p, F)
        for i in range(i0, i1):
            q = _lim(sy[j0, i], fp[j0, i + 1], fp[j0 + 1, i + 1], cf.zero)
            _add_border(j0, i, cf.dtdx * q, g, o, cf, area)
    if ks > k and ks >= kmin:
        cf = _step_cf(dt0, kfin, ks, s, t, f, p, F)
        for i in range(i0, i1):
            q = _lim(sy[j1, i], fp[j1, i + 1], fp[j1 + 1, i + 1], cf.zero)
            _add_border(j1 - 1, i, -cf.dtdx * q, g, o, cf, area)


@njit(fastmath=True, cache=True, error_model="numpy")
def _tile_update(tt, a, b, g, f, o, u, tiles, cf):
    """The tile's own step (``_update_row_impl`` row by row); faces shared with finer tiles read as 0."""
    ny, nx = g.h.shape
    j0, j1, i0, i1 = _tile_box(tiles, a, b)
    k = tiles.level[a, b]
    kw, ke, kn, ks = _neighbour_levels(tiles, a, b)
    zero = cf.zero
    lx = np.empty(nx + 1, dtype=g.h.dtype)
    ln = np.empty(nx, dtype=g.h.dtype)
    ls = np.empty(nx, dtype=g.h.dtype)
    fp = tiles.fp
    vol = tiles.vol[tt]
    for j in range(j0, j1):
        lo = max(g.cols[j, 0], i0)
        hi = min(g.cols[j, 1], i1)
        if lo >= hi:
            continue
        for i in range(lo, hi + 1):
            lx[i] = tiles.sx[j, i]
        for i in range(lo, hi):
            ln[i] = tiles.sy[j, i]
            ls[i] = tiles.sy[j + 1, i]
        if lo == i0 and kw > k:
            lx[lo] = zero
        if hi == i1 and ke > k:
            lx[hi] = zero
        if j == j0 and kn > k:
            for i in range(lo, hi):
                ln[i] = zero
        if j == j1 - 1 and ks > k:
            for i in range(lo, hi):
                ls[i] = zero
        lmr = f.level_mask[j] if f.level_rows[j] else u.no_level
        v_rain, v_inf, v_drn, v_in, v_out, v_lvl, _ = _update_row_impl(
            j, ny, nx, lo, hi, g.h, g.zb, g.phi, g.qx, g.qy, lx, ln, ls, fp[j], fp[j + 1], fp[j + 2], g.cols,
            _row(f.rain, u.rain, j), _row(f.infil_p1, u.infil_p1, j), _row(f.infil_p2, u.infil_p2, j),
            _row(f.drain_rate, u.drain_rate, j), _row(f.inflow, u.inflow, j),
            lmr, o.hmax, o.tmax, o.tarr, f.infil_cum, u.ones, f.infil_mode, cf, f.level_now)
        vol[0] += v_rain
        vol[1] += v_inf
        vol[2] += v_drn
        vol[3] += v_in
        vol[4] += v_out
        vol[5] += v_lvl


@njit(fastmath=True, cache=True, error_model="numpy")
def _tile_border_discharges(a, b, g, tiles):
    """Limited discharges of the tile's four border lines into qx, qy (the new state of those faces)."""
    ny, nx = g.h.shape
    j0, j1, i0, i1 = _tile_box(tiles, a, b)
    zero = g.h.dtype.type(0.0)
    sx = tiles.sx
    sy = tiles.sy
    fp = tiles.fp
    k = tiles.level[a, b]
    kw, ke, kn, ks = _neighbour_levels(tiles, a, b)
    # the lines it owns (as in _tile_faces); the grid edges are written by _update_row_impl
    for j in range(j0, j1):
        if i0 > 0 and kw <= k:
            g.qx[j, i0] = _lim(sx[j, i0], fp[j + 1, i0], fp[j + 1, i0 + 1], zero)
        if i1 < nx and ke < k:
            g.qx[j, i1] = _lim(sx[j, i1], fp[j + 1, i1], fp[j + 1, i1 + 1], zero)
    for i in range(i0, i1):
        if j0 > 0 and kn <= k:
            g.qy[j0, i] = _lim(sy[j0, i], fp[j0, i + 1], fp[j0 + 1, i + 1], zero)
        if j1 < ny and ks < k:
            g.qy[j1, i] = _lim(sy[j1, i], fp[j1, i + 1], fp[j1 + 1, i + 1], zero)


# numba fuses consecutive prange loops of the same range (steps 2 and 3 both run over the touched
# tiles) without seeing the dependency through the called functions: a tile's update then read its
# neighbours' outflow factors of an earlier sub-step, and the two sides of a face were limited
# differently (the city at 90 m leaked 20 m³). The steps must run one after the other: no fusion.
NO_FUSION = {"comprehension": True, "prange": True, "numpy": True, "reduction": True, "setitem": True,
             "stencil": True, "fusion": False}


@njit(parallel=NO_FUSION, cache=True)
def substep(g, f, o, p, u, tiles, t, dt0, kfin, s, F):
    """Sub-step ``s`` (0 .. 2^kfin - 1) of the coarse step [t, t + dt0] (see the module docstring)."""
    ntx = tiles.cb.size - 1
    kmin = kmin_of(s, kfin)
    n_act = tiles.n_active[kmin]
    n_tch = tiles.n_touch[kmin]
    order = tiles.order
    touch = tiles.touch
    # 1. unlimited fluxes, level by level (order is finest first: level k is a contiguous run)
    for k in range(kmin, kfin + 1):
        first = tiles.n_active[k + 1] if k < kfin else 0
        last = tiles.n_active[k]
        for m in prange(first, last):
            tt = order[m]
            a = tt // ntx
            _tile_faces(a, tt - a * ntx, g, u, tiles, _step_cf(dt0, kfin, k, s, t, f, p, F))
    # 2. outflow factors
    for m in prange(n_tch):
        tt = touch[m]
        a = tt // ntx
        _tile_factors(a, tt - a * ntx, g, tiles, kmin, dt0, p.dx, p.dy)
    # 3. finer neighbours' fluxes, then the tile's own step
    for m in prange(n_tch):
        tt = touch[m]
        a = tt // ntx
        b = tt - a * ntx
        _finer_borders(a, b, g, o, tiles, kmin, dt0, kfin, s, t, f, p, F)
        k = tiles.level[a, b]
        if k >= kmin:
            _tile_update(tt, a, b, g, f, o, u, tiles, _step_cf(dt0, kfin, k, s, t, f, p, F))
    # 4. border discharges
    for m in prange(n_act):
        tt = order[m]
        a = tt // ntx
        _tile_border_discharges(a, tt - a * ntx, g, tiles)
    # counts: cells and sub-steps per level
    for k in range(kmin, kfin + 1):
        first = tiles.n_active[k + 1] if k < kfin else 0
        n = 0
        for m in range(first, tiles.n_active[k]):
            tt = order[m]
            a = tt // ntx
            n += tiles.cells[a, tt - a * ntx]
        tiles.updates[k, 0] += n
        tiles.updates[k, 1] += 1


@njit(parallel=True, cache=True)
def row_maxima(h, phi, cols, acc):
    """Largest open-cell depth of each row into ``acc[:, ACC_ROW_MAX]``; returns the largest."""
    ny, nx = h.shape
    for j in prange(ny):
        acc[j, ACC_ROW_MAX] = _tile_depth(h, phi, cols, j, j + 1, 0, nx)
    return acc[:, ACC_ROW_MAX].max()


@njit(cache=True)
def _book_volumes(tiles, acc):
    # each tile's volumes of the coarse step into the acc row of its first grid row
    ntx = tiles.cb.size - 1
    for tt in range(tiles.vol.shape[0]):
        a = tt // ntx
        j = tiles.rb[a]
        for c in range(N_VOLUMES):
            acc[j, c] += tiles.vol[tt, c]
            tiles.vol[tt, c] = 0.0


@njit(cache=True)
def advance(g, f, f_nolevel, o, p, p_open, w, tiles, kmax, F):
    """Coarse steps from ``w.t`` while ``t < t_end - 1e-9`` and the forcings hold (as flood.advance).

    Each coarse step: tile depths, levels and dt_0 (:func:`choose_levels`), the forcings of
    [t, t + dt_0] set by ``begin_step`` as for a global step of dt_0 (inflows and line sources:
    their mean; edge discharges: their mean; stages and fixed levels: their value at t + dt_0,
    held over the sub-steps), then 2^K :func:`substep` calls. ``p_open`` is ``p`` with a CFL
    step that never binds (``begin_step`` then takes dt_0 as given). Returns (t, coarse steps,
    largest depth).
    """
    u = uniform_rows(g, f)
    t = w.t
    nsteps = 0
    while t < w.t_end - 1e-9 and (nsteps == 0 or t < w.t_next) and nsteps < w.max_steps:
        tile_depths(g.h, g.phi, g.cols, tiles)
        dt0, kfin = choose_levels(tiles, t, f, f_nolevel, p, kmax)
        # the forcings of [t, t + dt0] as the global step sets them (p_open: a CFL step that never binds)
        te = min(t + dt0, w.t_end)
        step = begin_step(t, 0.0, Window(t, te, w.t_next, 0.0, 1), f, p_open)
        dt0 = step.dt
        t_new = step.t_new
        for s in range(1 << kfin):
            substep(g, f, o, p, u, tiles, t, dt0, kfin, s, F)
        _book_volumes(tiles, o.acc)
        t = t_new
        nsteps += 1
    h_max = row_maxima(g.h, g.phi, g.cols, o.acc)
    return t, nsteps, h_max
