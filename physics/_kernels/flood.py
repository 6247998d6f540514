"""Numba kernels of the local-inertial shallow-water scheme (pure: arrays in, arrays out).

Scheme: Bates, Horritt & Fewtrell (2010, J. Hydrol. 387:33) with the
q-centred numerical diffusion of de Almeida, Bates, Freer & Souvignet (2012,
WRR 48:W05528). For a face between cells L and R (unit discharge q, m²/s):

    h_f   = max(eta_L, eta_R) - max(z_L, z_R)                (flow depth at the face)
    q_c   = theta * q_t + (1 - theta)/2 * (q_{t,left} + q_{t,right})
    r     = q_c - g h_f dt (eta_R - eta_L)/dx
    q_new (1 + b |q_new|) = r,  b = g dt n² / h_f^(7/3)  =>  q_new = 2 r / (1 + sqrt(1 + 4 b |r|))

with q = 0 where h_f <= h_dry or either cell is blocked. (With a wave-depth
cap h_cap, the h_f of the pressure term r is min(h_f, h_cap); see
``FloodModel(wave_depth_cap_m=...)``. By default h_cap = BIG: no effect.)
In the q-centred
average a neighbouring face that is a wall (a closed edge, or a face of a
blocked cell) counts as q_t itself (zero gradient), not as 0. The face
Manning n² is the mean of the two cells' n².

Friction is implicit in q_new. Bates et al. and de Almeida et al. divide by
(1 + b |q_t|) with the old discharge; that linearisation has the growth
factor (1 - b q)/(1 + b q) -> -1 where friction is stiff (shallow water on
slopes), and on a 1 % tilted plane under rain it locks into an odd-even
checkerboard of depths (every other cell nearly dry). Both forms share the
Manning steady state n² q² = h_f^(10/3) |S|.

Mass is conserved exactly (to round-off) by the flux form of the depth
update, and depths never go negative because each cell's outflow over a step
is limited to the water it holds: outgoing fluxes of a cell whose outflow
volume exceeds its storage are scaled by storage / outflow (the donor's
factor), never by clipping depths.

Layout
------
``h``, ``n2``, ``phi`` are (ny, nx) cell arrays (depth m, Manning n² s²/m^(2/3),
porosity 0-1 with 0 = blocked). ``zb`` is the bed (m) with blocked cells
raised to :data:`BIG` (see :func:`blocked_bed`): a face next to a blocked
cell then has h_f = 0 and no flux, without reading ``phi``. ``qx`` is
(ny, nx+1): ``qx[j, i]`` crosses the face between cells (j, i-1) and (j, i),
positive towards +i (east). ``qy`` is (ny+1, nx): ``qy[j, i]`` crosses the
face between (j-1, i) and (j, i), positive towards +j (south on a north-up
grid). Boundary faces are ``qx[:, 0]``, ``qx[:, nx]``, ``qy[0, :]``,
``qy[ny, :]``. All arrays share one float dtype (float64 or float32); the
arithmetic runs in that dtype (float32 end to end), volumes are summed in
float64.

``cols`` (ny, 3) holds each row's span [lo, hi) of open cells (and whether all of it has porosity 1)
(:func:`active_columns`); nothing outside it is read or written (faces
there stay 0), so the blocked margin of a city grid costs nothing.
``chunks`` splits the rows into contiguous blocks of about equal open-cell
count (:func:`row_chunks`); each block is one parallel work item.

A step is one sweep over the grid (:func:`fused_pass`, the default) or,
equivalently (the same arithmetic, the same results bit for bit), two passes:
  1. :func:`flux_pass`, per block of rows in order: the unlimited new fluxes
     of row j (its x faces and the y face above it) into ``qx_s``/``qy_s``
     from the current ``qx``/``qy``; then, once the faces around row j-1 are
     known, that row's outflow-limiting factor into ``fp`` (the factor of
     cell (j, i) is ``fp[j+1, i+1]``; the padding rows/columns hold 1).
     The y face below a block's last row belongs to the next block and is
     computed again into a row buffer (one extra row per block);
  2. :func:`update_pass`: limited fluxes (each scaled by its donor's factor)
     into ``qx``/``qy``; depths advanced with rain, infiltration, drainage,
     inflows and fixed-level (tide) cells; maxima and the volume balance per
     row.

:func:`fused_pass` runs both within each block, row by row, with the
unlimited fluxes and factors in small rolling row buffers per block (served
by the caches), so ``qx_s``/``qy_s``/``fp`` never go through memory; the rows
next to a block boundary are computed first into halo buffers read by both
blocks (see its docstring).

The face friction term uses h_f^(-7/3) = r^7 with r = h_f^(-1/3) from a
bit-level first guess and Newton steps r <- r (4 - h_f r³)/3 (exact to a few
ulp, and, unlike ``cbrt``, it vectorises).

Bytes per cell-update (memory traffic counted as in STREAM, each array read
or written once per pass, the 3-row stencils served by the caches; B = 8
float64, 4 float32; uniform rain, no infiltration/inflow/level cells):
pass 1 reads h, zb, qx, qy and writes qx_s, qy_s, fp (7 B); pass 2 reads
qx_s, qy_s, fp, h, hmax (and phi in rows with porosity other than 1) and
writes qx, qy, h, hmax (9 B, 10 B with phi), plus the rare tmax/tarr
writes: 16 B = 128 B (float64), 64 B (float32) on an all-open grid. The
fused sweep reads h, zb, qx, qy, hmax and writes qx, qy, h, hmax: 9 B = 72 B
(float64), 36 B (float32), plus the halo rows at block boundaries (a few rows
per block). See :func:`bytes_per_cell_update`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange, types
from numba.extending import intrinsic, overload

G = 9.80665
BIG = 1e30  # bed of blocked cells in ``zb``: BIG + h == BIG in float32 and float64

# Boundary codes per edge (west, east, north, south).
CLOSED = 0
FREE = 1

_MAGIC64 = 0x553EF0FF289DD794
_MAGIC32 = 0x54A2FA8C


# --------------------------------------------------------------------------
# h^(-1/3) without libm (vectorisable)
# --------------------------------------------------------------------------
@intrinsic
def _bits(typingctx, x):
    ity = types.int64 if x.bitwidth == 64 else types.int32

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(ity))

    return ity(x), codegen


@intrinsic
def _float_of_bits(typingctx, i, like):
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(like))

    return like(i, like), codegen


def rcbrt(a):  # pragma: no cover - replaced by the overload in jitted code
    """a^(-1/3) for a > 0 (jitted code only)."""
    return a ** (-1.0 / 3.0)


@overload(rcbrt, inline="always", jit_options={"fastmath": True, "error_model": "numpy"})
def _rcbrt_ov(a):
    if isinstance(a, types.Float) and a.bitwidth == 64:
        def impl(a):
            i = _bits(a)
            r = _float_of_bits(np.int64(_MAGIC64) - np.int64(float(i) * (1.0 / 3.0)), a)
            r = r * (4.0 - a * r * r * r) * (1.0 / 3.0)
            r = r * (4.0 - a * r * r * r) * (1.0 / 3.0)
            r = r * (4.0 - a * r * r * r) * (1.0 / 3.0)
            r = r * (4.0 - a * r * r * r) * (1.0 / 3.0)
            return r
        return impl
    if isinstance(a, types.Float) and a.bitwidth == 32:
        def impl(a):
            i = _bits(a)
            third = np.float32(1.0 / 3.0)
            four = np.float32(4.0)
            r = _float_of_bits(np.int32(_MAGIC32 - np.int32(np.float32(i) * third)), a)
            r = r * (four - a * r * r * r) * third
            r = r * (four - a * r * r * r) * third
            r = r * (four - a * r * r * r) * third
            return r
        return impl
    return None


@njit(inline="always", fastmath=True, error_model="numpy")
def _flux(q0, qa, qb, zl, zr, hl, hr, n2f, gdt, gdtd, theta, th2, h_dry, h_cap, zero, one):
    etal = zl + hl
    etar = zr + hr
    hf = max(etal, etar) - max(zl, zr)
    r = rcbrt(max(hf, h_dry))
    r2 = r * r
    r7 = r2 * r2 * r2 * r
    qc = theta * q0 + th2 * (qa + qb)
    rr = qc - gdtd * min(hf, h_cap) * (etar - etal)  # h_cap: see FloodModel(wave_depth_cap_m)
    b = gdt * n2f * r7
    # friction implicit in the new discharge: q (1 + b |q|) = rr, root written without cancellation
    q = (one + one) * rr / (one + np.sqrt(one + (one + one + one + one) * b * abs(rr)))
    return q if hf > h_dry else zero


@njit(inline="always")
def _lim(q, f_left, f_right, zero):
    # A face's flux is scaled by the factor of the cell it drains.
    return q * (f_left if q > zero else f_right)


# --------------------------------------------------------------------------
# Set-up helpers
# --------------------------------------------------------------------------
def blocked_bed(z: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """``z`` with blocked cells (``phi == 0``) raised to :data:`BIG` (same dtype)."""
    return np.ascontiguousarray(np.where(phi > 0, z, BIG), dtype=z.dtype)


def active_columns(phi: np.ndarray) -> np.ndarray:
    """(ny, 3) int64: per row the span [lo, hi) from the first to past the last open cell (lo = hi: none)
    and 1 when every cell of the span has porosity 1 (the update pass then does not read ``phi``)."""
    phi = np.asarray(phi)
    open_ = phi > 0
    ny, nx = open_.shape
    any_ = open_.any(axis=1)
    lo = np.where(any_, np.argmax(open_, axis=1), 0)
    hi = np.where(any_, nx - np.argmax(open_[:, ::-1], axis=1), 0)
    col = np.arange(nx)[None, :]
    span = (col >= lo[:, None]) & (col < hi[:, None])
    full = (any_ & np.all((phi == 1) | ~span, axis=1)).astype(np.int64)
    return np.ascontiguousarray(np.stack([lo, hi, full], axis=1).astype(np.int64))


def row_chunks(cols: np.ndarray, n: int) -> np.ndarray:
    """Row boundaries (int64, first 0, last ny) of at most ``n`` non-empty blocks of about equal open span."""
    ny = cols.shape[0]
    n = max(1, min(int(n), ny))
    w = (cols[:, 1] - cols[:, 0]).astype(np.float64) + 1.0  # an empty row costs a little too
    cum = np.concatenate([[0.0], np.cumsum(w)])
    targets = cum[-1] * np.arange(1, n) / n
    cuts = np.searchsorted(cum, targets)
    b = np.unique(np.concatenate([[0], np.clip(cuts, 1, ny - 1) if ny > 1 else [], [ny]]).astype(np.int64))
    return b


def bytes_per_cell_update(itemsize: int, *, gridded_rain=False, infiltration="none", drainage_grid=False,
                          inflow=False, level=False, phi_binary=True, phi_read=1.0, n2_grid=False,
                          fused=True) -> dict:
    """Memory traffic per open-span cell and step (STREAM counting: no write-allocate), by pass.

    ``fused``: the one-sweep step (:func:`fused_pass`, key ``fused_pass``), else
    the two passes (:func:`flux_pass`, :func:`update_pass`); ``total`` in both.

    ``phi_read`` is the share of cells in rows whose span is not all of
    porosity 1 (only those rows read ``phi`` in the update pass; see
    :func:`active_columns`); ``n2_grid`` a Manning field per cell (not one value);
    ``level`` True or the share of cells in rows holding fixed-level cells.
    """
    b = itemsize
    p1 = 7 * b + (0 if phi_binary else b)  # h, zb, qx, qy read; qx_s, qy_s, fp written; (phi)
    p1 += b if n2_grid else 0
    p2 = 9 * b + phi_read * b  # qx_s, qy_s, fp, h, hmax (phi) read; qx, qy, h, hmax written
    p2 += b if gridded_rain else 0
    p2 += b if drainage_grid else 0
    p2 += b if inflow else 0
    p2 += {"none": 0, "constant": b, "green_ampt": 4 * b, "scs_cn": 3 * b}.get(infiltration, 0)
    p2 += (1 + b) * float(level)  # level mask and bed in rows with fixed-level cells (share, or True)
    if fused:
        # as the update pass, with zb, qx, qy read instead of qx_s, qy_s, fp; phi once (every row when not binary)
        p = p2 - phi_read * b + (b if not phi_binary else phi_read * b)
        p += b if n2_grid else 0
        return {"fused_pass": p, "total": p}
    return {"flux_pass": p1, "update_pass": p2, "total": p1 + p2}


# --------------------------------------------------------------------------
# Pass 1: fluxes and limiter
# --------------------------------------------------------------------------
@njit(fastmath=True, cache=True, error_model="numpy")
def _x_faces(j, h, zb, n2r, qx, sj, lo, hi, nx, bc, bslope_dx, gdt, gdtd, theta, th2, h_dry, h_cap, zero, one,
             half):
    hj = h[j]
    zj = zb[j]
    qj = qx[j]
    # interior faces i in [lo+1, hi) between cells i-1 and i; the neighbouring face is a wall
    # when the cell beyond it is blocked (zb = BIG) or it is a closed edge
    a = lo + 1
    b = hi
    if a < b:
        # first face: its west neighbour may be the edge
        for i in range(a, min(a + 1, b)):
            q0 = qj[i]
            if i == 1:
                qa = qj[0] if bc[0] == FREE else q0
            else:
                qa = q0 if zj[i - 2] >= BIG else qj[i - 1]
            if i == nx - 1:
                qb = qj[nx] if bc[1] == FREE else q0
            else:
                qb = q0 if zj[i + 1] >= BIG else qj[i + 1]
            sj[i] = _flux(q0, qa, qb, zj[i - 1], zj[i], hj[i - 1], hj[i], half * (n2r[i - 1] + n2r[i]),
                          gdt, gdtd, theta, th2, h_dry, h_cap, zero, one)
        # bulk: 2 <= i <= nx - 2, on views shifted so that the loop index k starts at 0 and every
        # access is view[k] (indexing one row at i-2 .. i+1 compiles to gathers, ~5x slower)
        i0 = max(a + 1, 2)
        i1 = max(min(b, nx - 1), i0)
        hl = hj[i0 - 1:i1 - 1]
        hr = hj[i0:i1]
        zll = zj[i0 - 2:i1 - 2]
        zl = zj[i0 - 1:i1 - 1]
        zr = zj[i0:i1]
        zrr = zj[i0 + 1:i1 + 1]
        qw = qj[i0 - 1:i1 - 1]
        qc = qj[i0:i1]
        qe = qj[i0 + 1:i1 + 1]
        nl = n2r[i0 - 1:i1 - 1]
        nr = n2r[i0:i1]
        out = sj[i0:i1]
        for k in range(i1 - i0):
            q0 = qc[k]
            qa = q0 if zll[k] >= BIG else qw[k]
            qb = q0 if zrr[k] >= BIG else qe[k]
            out[k] = _flux(q0, qa, qb, zl[k], zr[k], hl[k], hr[k], half * (nl[k] + nr[k]),
                           gdt, gdtd, theta, th2, h_dry, h_cap, zero, one)
        # last face when it touches the east edge (and was not the first)
        if b == nx and nx - 1 > a:
            i = nx - 1
            q0 = qj[i]
            qa = q0 if zj[i - 2] >= BIG else qj[i - 1]
            qb = qj[nx] if bc[1] == FREE else q0
            sj[i] = _flux(q0, qa, qb, zj[i - 1], zj[i], hj[i - 1], hj[i], half * (n2r[i - 1] + n2r[i]),
                          gdt, gdtd, theta, th2, h_dry, h_cap, zero, one)
    # west and east edges (ghost cell lower by bslope*dx, outflow only)
    if lo == 0 and hi > 0:
        q = zero
        if bc[0] == FREE:
            q = _flux(qj[0], qj[0], qj[1], zj[0] - bslope_dx, zj[0], zero, hj[0], n2r[0],
                      gdt, gdtd, theta, th2, h_dry, h_cap, zero, one)
            q = min(q, zero)
        sj[0] = q
    if hi == nx and lo < hi:
        q = zero
        if bc[1] == FREE:
            q = _flux(qj[nx], qj[nx - 1], qj[nx], zj[nx - 1], zj[nx - 1] - bslope_dx, hj[nx - 1], zero,
                      n2r[nx - 1], gdt, gdtd, theta, th2, h_dry, h_cap, zero, one)
            q = max(q, zero)
        sj[nx] = q


@njit(fastmath=True, cache=True, error_model="numpy")
def _y_faces(j, h, zb, n2a, n2b, qy, out, a, b, ny, bc, gdt, gdtd, theta, th2, h_dry, h_cap, zero, one,
             half):
    """Unlimited flux at the y faces between rows j-1 and j, columns [a, b), into ``out``."""
    hu = h[j - 1]
    hd = h[j]
    zu = zb[j - 1]
    zd = zb[j]
    q0r = qy[j]
    qar = qy[j - 1]
    qbr = qy[j + 1]
    # walls: row j-2 blocked (or closed north edge at j == 1); row j+1 blocked (or closed south edge)
    if j == 1:
        wa_edge = bc[2] != FREE
        za = zu  # unused
    else:
        wa_edge = False
        za = zb[j - 2]
    if j == ny - 1:
        wb_edge = bc[3] != FREE
        zbb = zd  # unused
    else:
        wb_edge = False
        zbb = zb[j + 1]
    # views from column a, so that the loop index starts at 0 (a loop over range(a, b) with a
    # runtime start keeps numba's negative-index wraparound and compiles to gathers)
    b = max(a, b)
    hu = hu[a:b]
    hd = hd[a:b]
    zu = zu[a:b]
    zd = zd[a:b]
    za = za[a:b]
    zbb = zbb[a:b]
    q0r = q0r[a:b]
    qar = qar[a:b]
    qbr = qbr[a:b]
    n2a = n2a[a:b]
    n2b = n2b[a:b]
    out = out[a:b]
    for i in range(b - a):
        q0 = q0r[i]
        # (at j == 1 / ny - 1 za / zbb are the face's own rows: a blocked cell there makes the
        # face itself dry, so the neighbour test cannot change its value)
        qa = q0 if (wa_edge or za[i] >= BIG) else qar[i]
        qb = q0 if (wb_edge or zbb[i] >= BIG) else qbr[i]
        out[i] = _flux(q0, qa, qb, zu[i], zd[i], hu[i], hd[i], half * (n2a[i] + n2b[i]),
                       gdt, gdtd, theta, th2, h_dry, h_cap, zero, one)


@njit(fastmath=True, cache=True, error_model="numpy")
def _top_edge(h, zb, n2r, phi, qy, out, lo, hi, bc, bslope_dy, gdt, gdtd, theta, th2, h_dry, h_cap, zero,
              one):
    if bc[2] == FREE:
        for i in range(lo, hi):
            q = zero
            if phi[0, i] > 0:
                q = _flux(qy[0, i], qy[0, i], qy[1, i], zb[0, i] - bslope_dy, zb[0, i], zero, h[0, i], n2r[i],
                          gdt, gdtd, theta, th2, h_dry, h_cap, zero, one)
                q = min(q, zero)
            out[i] = q


@njit(fastmath=True, cache=True, error_model="numpy")
def _bottom_edge(h, zb, n2r, phi, qy, out, lo, hi, ny, bc, bslope_dy, gdt, gdtd, theta, th2, h_dry, h_cap, zero,
                 one):
    if bc[3] == FREE:
        for i in range(lo, hi):
            q = zero
            if phi[ny - 1, i] > 0:
                q = _flux(qy[ny, i], qy[ny - 1, i], qy[ny, i], zb[ny - 1, i], zb[ny - 1, i] - bslope_dy,
                          h[ny - 1, i], zero, n2r[i], gdt, gdtd, theta, th2, h_dry, h_cap, zero, one)
                q = max(q, zero)
            out[i] = q


@njit(fastmath=True, cache=True, error_model="numpy")
def _limit_row(hrow, prow, sxrow, above, below, frow, lo, hi, dtdy, dtdx, area, zero, one):
    # frow: the padded factor row (the factor of cell i is frow[i + 1])
    hi = max(lo, hi)
    hj = hrow[lo:hi]
    sw = sxrow[lo:hi]
    se = sxrow[lo + 1:hi + 1]
    ab = above[lo:hi]
    be = below[lo:hi]
    pr = prow[lo:hi]
    fr = frow[lo + 1:hi + 1]
    for i in range(hi - lo):  # from 0: see _y_faces
        out = (dtdy * (max(se[i], zero) - min(sw[i], zero))
               + dtdx * (max(be[i], zero) - min(ab[i], zero)))
        vol = pr[i] * area * hj[i]
        lim = out > vol
        fr[i] = vol / (out if lim else one) if lim else one


@njit(parallel=True, cache=True, fastmath=True, nogil=True, error_model="numpy")
def flux_pass(h, zb, n2, phi, qx, qy, qx_s, qy_s, fp, ybuf, cols, chunks, bc, par, phi_binary, F):
    """Pass 1: unlimited fluxes into ``qx_s``/``qy_s`` and the limiting factors into ``fp``.

    ``par`` = (dt, dx, dy, theta, h_dry, bslope, h_cap) as float64; ``F`` the
    float class of the arrays (np.float64 or np.float32). ``n2`` is (ny, nx)
    or (1, 1) for one value; with ``phi_binary`` (porosity only 0 or 1) the
    limiter does not read ``phi``. ``ybuf`` is a (len(chunks) - 1, nx)
    scratch row per block. The factor of cell (j, i) is
    ``min(1, phi dx dy h / out)``, ``out = dt (dy (max(qx_E, 0) - min(qx_W, 0))
    + dx (max(qy_S, 0) - min(qy_N, 0)))`` from the unlimited fluxes.
    """
    ny, nx = h.shape
    zero = F(0.0)
    one = F(1.0)
    half = F(0.5)
    dt = F(par[0])
    dx = F(par[1])
    dy = F(par[2])
    theta = F(par[3])
    h_dry = F(par[4])
    bslope = F(par[5])
    h_cap = F(par[6])
    gdt = F(G) * dt
    gdtdx = gdt / dx
    gdtdy = gdt / dy
    th2 = half * (one - theta)
    area = dx * dy
    dtdx = dt * dx
    dtdy = dt * dy
    n2_uniform = n2.shape[0] == 1
    n2c = np.full(nx, n2[0, 0]) if n2_uniform else np.empty(0, dtype=n2.dtype)
    ones = np.ones(nx, dtype=h.dtype)
    nch = chunks.size - 1
    for c in prange(nch):
        j0 = chunks[c]
        j1 = chunks[c + 1]
        for j in range(j0, j1):
            lo = cols[j, 0]
            hi = cols[j, 1]
            n2j = n2c if n2_uniform else n2[j]
            _x_faces(j, h, zb, n2j, qx, qx_s[j], lo, hi, nx, bc, bslope * dx, gdt, gdtdx, theta, th2, h_dry, h_cap,
                     zero, one, half)
            if j == 0:
                _top_edge(h, zb, n2j, phi, qy, qy_s[0], lo, hi, bc, bslope * dy, gdt, gdtdy, theta, th2, h_dry,
                          h_cap, zero, one)
            else:
                a = max(lo, cols[j - 1, 0])
                b = min(hi, cols[j - 1, 1])
                n2u = n2c if n2_uniform else n2[j - 1]
                _y_faces(j, h, zb, n2u, n2j, qy, qy_s[j], a, b, ny, bc, gdt, gdtdy, theta, th2, h_dry, h_cap,
                         zero, one, half)
            if j > j0:
                jl = j - 1
                _limit_row(h[jl], ones if (phi_binary or cols[jl, 2]) else phi[jl], qx_s[jl], qy_s[jl], qy_s[j],
                           fp[jl + 1], cols[jl, 0], cols[jl, 1], dtdy, dtdx, area, zero, one)
        jl = j1 - 1
        lo = cols[jl, 0]
        hi = cols[jl, 1]
        if j1 == ny:
            _bottom_edge(h, zb, n2c if n2_uniform else n2[ny - 1], phi, qy, qy_s[ny], lo, hi, ny, bc,
                         bslope * dy, gdt, gdtdy, theta, th2, h_dry, h_cap, zero, one)
            below = qy_s[ny]
        else:
            a = max(lo, cols[j1, 0])
            b = min(hi, cols[j1, 1])
            below = ybuf[c]
            _y_faces(j1, h, zb, n2c if n2_uniform else n2[jl], n2c if n2_uniform else n2[j1], qy, below,
                     a, b, ny, bc, gdt, gdtdy, theta, th2, h_dry, h_cap, zero, one, half)
        _limit_row(h[jl], ones if (phi_binary or cols[jl, 2]) else phi[jl], qx_s[jl], qy_s[jl], below, fp[jl + 1],
                   lo, hi, dtdy, dtdx, area, zero, one)


# --------------------------------------------------------------------------
# Pass 2: limited fluxes, depths, sources, maxima, volume balance
# --------------------------------------------------------------------------
@njit(fastmath=True, cache=True, error_model="numpy")
def _update_row(j, ny, nx, lo, hi, h, zb, phi, qx, qy, sxj, sya, syb, fu, fc_, fd, cols, rr, p1r, p2r, drr, inr,
                lmr, hmax, tmax, tarr, infil_cum, ones, infil_mode, dt, dtdx, dtdy, dta, area, t_new, level,
                h_arrive, zero, one, c02, c08, mm):
    """Row j of :func:`update_pass` from its unlimited fluxes (``sxj``: x faces; ``sya``/``syb``: the y faces
    above and below) and the padded factor rows ``fu``/``fc_``/``fd`` of rows j-1, j, j+1; returns the row's
    (rain, infiltration, drainage, inflow, boundary outflow, level exchange) volumes and its max depth."""
    hj = h[j]
    zj = zb[j]
    pj = ones if cols[j, 2] else phi[j]  # porosity 1 over the row's span: not read
    qxj = qx[j]
    qyj = qy[j]
    hmj = hmax[j]
    tmj = tmax[j]
    taj = tarr[j]
    icj = infil_cum[j]
    v_rain = 0.0
    v_inf = 0.0
    v_drn = 0.0
    v_in = 0.0
    v_lvl = 0.0
    row_max = zero
    # views from column lo: the loop index starts at 0 (see _y_faces)
    fcw = fc_[lo:hi]
    fcc = fc_[lo + 1:hi + 1]
    fce = fc_[lo + 2:hi + 2]
    fuc = fu[lo + 1:hi + 1]
    fdc = fd[lo + 1:hi + 1]
    sxw = sxj[lo:hi]
    sxe = sxj[lo + 1:hi + 1]
    syn = sya[lo:hi]
    sys_ = syb[lo:hi]
    v_qxj = qxj[lo:hi]
    v_qyj = qyj[lo:hi]
    v_pj = pj[lo:hi]
    v_hj = hj[lo:hi]
    v_rr = rr[lo:hi]
    v_inr = inr[lo:hi]
    v_p1r = p1r[lo:hi]
    v_p2r = p2r[lo:hi]
    v_icj = icj[lo:hi]
    v_drr = drr[lo:hi]
    v_lmr = lmr[lo:hi]
    v_zj = zj[lo:hi]
    v_hmj = hmj[lo:hi]
    v_tmj = tmj[lo:hi]
    v_taj = taj[lo:hi]
    for i in range(hi - lo):
        fc = fcc[i]
        qw = _lim(sxw[i], fcw[i], fc, zero)
        qe = _lim(sxe[i], fc, fce[i], zero)
        qn = _lim(syn[i], fuc[i], fc, zero)
        qs = _lim(sys_[i], fc, fdc[i], zero)
        v_qxj[i] = qw
        v_qyj[i] = qn
        p = v_pj[i]
        opn = p > zero
        pa = p * area
        h0 = v_hj[i]
        dvol = dtdy * (qw - qe) + dtdx * (qn - qs)
        r = v_rr[i]
        vr = r * dta
        vin = v_inr[i] * dt
        v = max(pa * h0 + dvol + vr + vin, zero)  # < 0 by round-off only
        vi = zero
        if infil_mode == 1:
            vi = min(v_p1r[i] * dta, v)
        elif infil_mode == 2:
            vi = min(v_p1r[i] * (one + v_p2r[i] / max(v_icj[i], mm)) * dta, v)
            if opn:
                v_icj[i] += vi / area
        elif infil_mode == 3:
            s_ = v_p1r[i]
            p0 = v_icj[i]
            pn = p0 + r * dt
            d0 = p0 - c02 * s_
            d1 = pn - c02 * s_
            q0 = d0 * d0 / (p0 + c08 * s_) if d0 > zero else zero
            q1 = d1 * d1 / (pn + c08 * s_) if d1 > zero else zero
            if opn:
                v_icj[i] = pn
            vi = min((r * dt - (q1 - q0)) * area, v)
        v -= vi
        vd = min(v_drr[i] * dta, v)
        v -= vd
        hn = v / (pa if opn else one)
        if v_lmr[i]:
            target = max(level - v_zj[i], zero)
            v_lvl += (target - hn) * pa
            hn = target
        hn = hn if opn else h0
        v_hj[i] = hn
        if opn:
            v_rain += vr
            v_inf += vi
            v_drn += vd
            v_in += vin
            row_max = max(row_max, hn)
        hm = v_hmj[i]
        if hn > hm:
            v_hmj[i] = hn
            v_tmj[i] = t_new
            if hn >= h_arrive and hm < h_arrive:
                v_taj[i] = t_new
    # the face east of the row's last open cell
    qxj[hi] = _lim(sxj[hi], fc_[hi], fc_[hi + 1], zero)
    v_out = 0.0
    if lo == 0:
        v_out -= dtdy * qxj[0]
    if hi == nx:
        v_out += dtdy * qxj[nx]
    if j == 0:
        for i in range(lo, hi):
            v_out -= dtdx * qyj[i]
    if j == ny - 1:
        qyb = qy[ny]
        for i in range(lo, hi):
            qyb[i] = _lim(syb[i], fc_[i + 1], one, zero)
            v_out += dtdx * qyb[i]
    return v_rain, v_inf, v_drn, v_in, v_out, v_lvl, row_max


@njit(parallel=True, cache=True, fastmath=True, nogil=True, error_model="numpy")
def update_pass(h, zb, phi, qx, qy, qx_s, qy_s, fp, cols, chunks, par, rain, infil_mode, ip1, ip2, infil_cum,
                drain_rate, inflow, level_mask, level_rows, hmax, tmax, tarr, row_acc, F):
    """Pass 2: limited fluxes into ``qx``/``qy``; depths advanced; maxima and volumes tracked.

    ``par`` = (dt, dx, dy, t_new, level, h_arrive) as float64.
    Per open cell, in order: flux divergence; rain (``rain`` m/s over the
    whole cell area, routed to its open part, i.e. divided by porosity);
    ``inflow`` (m³/s); infiltration, then drainage (m/s capacity), each
    limited to the water present; fixed-level cells (``level_mask`` = 1, only
    looked at in rows with ``level_rows`` = 1) set to ``max(level - z, 0)``.
    Blocked cells (phi = 0) keep their depth and take no rain.
    ``row_acc[j, k]`` receives this step's volumes (m³) for row j: 0 rain,
    1 infiltration, 2 drainage, 3 inflow, 4 boundary outflow (edges),
    5 level-cell exchange (+ added), 6 max depth of the row (m) for the next
    time step. ``hmax``/``tmax`` hold the running maximum and its time;
    ``tarr`` the first time the depth reached ``h_arrive`` (set when the
    maximum first crosses it, so NaN means never).
    Infiltration by ``infil_mode``: 0 none; 1 constant capacity ``ip1``
    (m/s); 2 Green-Ampt, capacity ``ip1 * (1 + ip2 / F)`` with ``ip1`` = Ks
    (m/s), ``ip2`` = suction head x moisture deficit (m), ``F`` =
    ``infil_cum`` the depth infiltrated so far (floored at 1 mm); 3 SCS curve
    number on the rain: of the step's rain dP the part dP - dQ infiltrates,
    Q = (P - 0.2 S)² / (P + 0.8 S) for P > 0.2 S, ``ip1`` = S (m),
    ``infil_cum`` = P, the cumulative rain (m).
    ``rain``, ``ip1``, ``ip2``, ``drain_rate`` and ``inflow`` are arrays of
    shape (ny, nx), or (1, 1) to apply one value everywhere.
    """
    ny, nx = h.shape
    zero = F(0.0)
    one = F(1.0)
    dt = F(par[0])
    dx = F(par[1])
    dy = F(par[2])
    t_new = F(par[3])
    level = F(par[4])
    h_arrive = F(par[5])
    area = dx * dy
    dtdx = dt * dx
    dtdy = dt * dy
    dta = dt * area
    c02 = F(0.2)
    c08 = F(0.8)
    mm = F(1e-3)
    dtype = h.dtype
    # one-value inputs become constant rows (served by L1): the cell loop has no branches on them
    rain_c = np.full(nx, rain[0, 0]) if rain.shape[0] == 1 else np.empty(0, dtype=dtype)
    p1_c = np.full(nx, ip1[0, 0]) if ip1.shape[0] == 1 else np.empty(0, dtype=dtype)
    p2_c = np.full(nx, ip2[0, 0]) if ip2.shape[0] == 1 else np.empty(0, dtype=dtype)
    dr_c = np.full(nx, drain_rate[0, 0]) if drain_rate.shape[0] == 1 else np.empty(0, dtype=dtype)
    in_c = np.full(nx, inflow[0, 0]) if inflow.shape[0] == 1 else np.empty(0, dtype=dtype)
    no_lvl = np.zeros(nx, dtype=np.uint8)
    ones = np.ones(nx, dtype=dtype)
    nch = chunks.size - 1
    for c in prange(nch):
        for j in range(chunks[c], chunks[c + 1]):
            lo = cols[j, 0]
            hi = cols[j, 1]
            if lo >= hi:
                row_acc[j, 6] = 0.0
                continue
            rr = rain_c if rain.shape[0] == 1 else rain[j]
            p1r = p1_c if ip1.shape[0] == 1 else ip1[j]
            p2r = p2_c if ip2.shape[0] == 1 else ip2[j]
            drr = dr_c if drain_rate.shape[0] == 1 else drain_rate[j]
            inr = in_c if inflow.shape[0] == 1 else inflow[j]
            lmr = level_mask[j] if level_rows[j] else no_lvl
            v_rain, v_inf, v_drn, v_in, v_out, v_lvl, row_max = _update_row(
                j, ny, nx, lo, hi, h, zb, phi, qx, qy, qx_s[j], qy_s[j], qy_s[j + 1], fp[j], fp[j + 1], fp[j + 2],
                cols, rr, p1r, p2r, drr, inr, lmr, hmax, tmax, tarr, infil_cum, ones, infil_mode, dt, dtdx, dtdy,
                dta, area, t_new, level, h_arrive, zero, one, c02, c08, mm)
            row_acc[j, 0] += v_rain
            row_acc[j, 1] += v_inf
            row_acc[j, 2] += v_drn
            row_acc[j, 3] += v_in
            row_acc[j, 4] += v_out
            row_acc[j, 5] += v_lvl
            row_acc[j, 6] = row_max
    return h


# --------------------------------------------------------------------------
# Fused step: both passes in one sweep over each block of rows
# --------------------------------------------------------------------------
@njit(fastmath=True, cache=True, error_model="numpy")
def _sx_row(k, sxrow, h, zb, n2k, qx, cols, nx, bc, bslope_dx, gdt, gdtdx, theta, th2, h_dry, h_cap, zero, one,
            half):
    """Unlimited x-face fluxes of row k into ``sxrow`` (the faces just outside an open span read as 0)."""
    lo = cols[k, 0]
    hi = cols[k, 1]
    if lo < hi:
        if lo > 0:
            sxrow[lo] = zero
        if hi < nx:
            sxrow[hi] = zero
        _x_faces(k, h, zb, n2k, qx, sxrow, lo, hi, nx, bc, bslope_dx, gdt, gdtdx, theta, th2, h_dry, h_cap,
                 zero, one, half)


@njit(fastmath=True, cache=True, error_model="numpy")
def _sy_row(k, out, h, zb, n2, n2c, n2_uniform, phi, qy, cols, ny, bc, bslope_dy, gdt, gdtdy, theta, th2, h_dry,
            h_cap, zero, one, half):
    """Unlimited fluxes of the y faces above row k (k = 0: north edge, k = ny: south edge) into ``out``;
    0 where the rows k-1 and k read it and there is no face flux (as in a zeroed ``qy_s`` row)."""
    if k == 0 or k == ny:
        jr = 0 if k == 0 else ny - 1
        lo = cols[jr, 0]
        hi = cols[jr, 1]
        n2r = n2c if n2_uniform else n2[jr]
        if bc[2 if k == 0 else 3] != FREE:
            for i in range(lo, hi):
                out[i] = zero
        elif k == 0:
            _top_edge(h, zb, n2r, phi, qy, out, lo, hi, bc, bslope_dy, gdt, gdtdy, theta, th2, h_dry, h_cap,
                      zero, one)
        else:
            _bottom_edge(h, zb, n2r, phi, qy, out, lo, hi, ny, bc, bslope_dy, gdt, gdtdy, theta, th2, h_dry,
                         h_cap, zero, one)
        return
    l1 = cols[k - 1, 0]
    h1 = cols[k - 1, 1]
    l2 = cols[k, 0]
    h2 = cols[k, 1]
    a = max(l1, l2)
    b = max(a, min(h1, h2))
    for i in range(min(l1, l2), a):
        out[i] = zero
    for i in range(b, max(h1, h2)):
        out[i] = zero
    _y_faces(k, h, zb, n2c if n2_uniform else n2[k - 1], n2c if n2_uniform else n2[k], qy, out, a, b, ny, bc,
             gdt, gdtdy, theta, th2, h_dry, h_cap, zero, one, half)


@njit(fastmath=True, cache=True, error_model="numpy")
def _fp_row(k, frow, h, phi, phi_binary, ones, cols, ny, nx, sxrow, above, below, dtdy, dtdx, area, zero, one):
    """Outflow factors of row k into the padded row ``frow``; 1 where rows k-1..k+1 read it outside row k."""
    lo = cols[k, 0]
    hi = cols[k, 1]
    ulo = lo
    uhi = hi + 2
    if k > 0:
        ulo = min(ulo, cols[k - 1, 0])
        uhi = max(uhi, cols[k - 1, 1] + 2)
    if k < ny - 1:
        ulo = min(ulo, cols[k + 1, 0])
        uhi = max(uhi, cols[k + 1, 1] + 2)
    uhi = min(uhi, nx + 2)
    for i in range(ulo, lo + 1):
        frow[i] = one
    for i in range(max(hi, lo) + 1, uhi):
        frow[i] = one
    _limit_row(h[k], ones if (phi_binary or cols[k, 2]) else phi[k], sxrow, above, below, frow, lo, hi,
               dtdy, dtdx, area, zero, one)


@njit(inline="always")
def _in_halo(k, c, j0, j1, nch, w):
    # row (or face) k is taken from the halo of the block's top (k < j0 + w) or bottom (k >= j1 - 1) boundary
    return (c > 0 and k < j0 + w) or (c < nch - 1 and k >= j1 - 1)


@njit(inline="always")
def _pick(k, c, j0, j1, nch, w, halo, roll, ones_p, ny):
    if k < 0 or k > ny - 1 + w - 1:  # fp rows -1 and ny: the padding (w = 2 for y faces: none)
        return ones_p
    if c > 0 and k < j0 + w:
        return halo[c - 1, k - j0 + 1]
    if c < nch - 1 and k >= j1 - 1:
        return halo[c, k - j1 + 1]
    return roll[c, k % roll.shape[1]]


@njit(parallel=True, cache=True, fastmath=True, nogil=True, error_model="numpy")
def fused_pass(h, zb, n2, phi, qx, qy, hx, hy, hf, rx, ry, rf, cols, chunks, bc, par1, phi_binary, par2, rain,
               infil_mode, ip1, ip2, infil_cum, drain_rate, inflow, level_mask, level_rows, hmax, tmax, tarr,
               row_acc, F):
    """One step as :func:`flux_pass` then :func:`update_pass` (same arithmetic), in one sweep per block.

    Per block of rows [j0, j1), in order m = j0-1 .. j1: the unlimited fluxes
    of the y faces above row m+1 and of the x faces of row m, the factors of
    row m, then the update of row m-1 (:func:`_update_row`). The unlimited
    fluxes and factors live in small rolling row buffers of the block (``rx``
    (nblocks, 3, nx+1), ``ry`` (nblocks, 4, nx), ``rf`` (nblocks, 3, nx+2),
    ones at first): the scratch fields of the two-pass step never go through
    memory. Rows near a block boundary b (the y faces above rows b-1, b, b+1,
    the factors of rows b-1, b) read rows of the neighbouring block, which
    updates them in place; they are computed first, from the state at the
    start of the step, into halo buffers (``hx`` (nblocks-1, 2, nx+1) zeros,
    ``hy`` (nblocks-1, 3, nx) zeros, ``hf`` (nblocks-1, 2, nx+2) ones) read by
    both blocks, so a face between blocks gets the same limited flux on both
    sides. ``par1``/``par2`` as for the two passes.
    """
    ny, nx = h.shape
    zero = F(0.0)
    one = F(1.0)
    half = F(0.5)
    dt = F(par1[0])
    dx = F(par1[1])
    dy = F(par1[2])
    theta = F(par1[3])
    h_dry = F(par1[4])
    bslope = F(par1[5])
    h_cap = F(par1[6])
    t_new = F(par2[3])
    level = F(par2[4])
    h_arrive = F(par2[5])
    gdt = F(G) * dt
    gdtdx = gdt / dx
    gdtdy = gdt / dy
    th2 = half * (one - theta)
    area = dx * dy
    dtdx = dt * dx
    dtdy = dt * dy
    dta = dt * area
    bsx = bslope * dx
    bsy = bslope * dy
    c02 = F(0.2)
    c08 = F(0.8)
    mm = F(1e-3)
    dtype = h.dtype
    n2_uniform = n2.shape[0] == 1
    n2c = np.full(nx, n2[0, 0]) if n2_uniform else np.empty(0, dtype=n2.dtype)
    ones = np.ones(nx, dtype=dtype)
    ones_p = np.ones(nx + 2, dtype=dtype)
    rain_c = np.full(nx, rain[0, 0]) if rain.shape[0] == 1 else np.empty(0, dtype=dtype)
    p1_c = np.full(nx, ip1[0, 0]) if ip1.shape[0] == 1 else np.empty(0, dtype=dtype)
    p2_c = np.full(nx, ip2[0, 0]) if ip2.shape[0] == 1 else np.empty(0, dtype=dtype)
    dr_c = np.full(nx, drain_rate[0, 0]) if drain_rate.shape[0] == 1 else np.empty(0, dtype=dtype)
    in_c = np.full(nx, inflow[0, 0]) if inflow.shape[0] == 1 else np.empty(0, dtype=dtype)
    no_lvl = np.zeros(nx, dtype=np.uint8)
    nch = chunks.size - 1
    # halo of each boundary b, from the state at the start of the step
    for c in prange(nch - 1):
        b = chunks[c + 1]
        for r in range(2):
            k = b - 1 + r
            _sx_row(k, hx[c, r], h, zb, n2c if n2_uniform else n2[k], qx, cols, nx, bc, bsx, gdt, gdtdx, theta,
                    th2, h_dry, h_cap, zero, one, half)
        for r in range(3):
            _sy_row(b - 1 + r, hy[c, r], h, zb, n2, n2c, n2_uniform, phi, qy, cols, ny, bc, bsy, gdt, gdtdy,
                    theta, th2, h_dry, h_cap, zero, one, half)
        for r in range(2):
            _fp_row(b - 1 + r, hf[c, r], h, phi, phi_binary, ones, cols, ny, nx, hx[c, r], hy[c, r], hy[c, r + 1],
                    dtdy, dtdx, area, zero, one)
    for c in prange(nch):
        j0 = chunks[c]
        j1 = chunks[c + 1]
        for m in range(j0 - 1, j1 + 1):
            k = m + 1
            if k <= j1 and not _in_halo(k, c, j0, j1, nch, 2):
                _sy_row(k, ry[c, k % 4], h, zb, n2, n2c, n2_uniform, phi, qy, cols, ny, bc, bsy, gdt, gdtdy,
                        theta, th2, h_dry, h_cap, zero, one, half)
            if m >= j0 and m < j1:
                sx = rx[c, m % 3]
                _sx_row(m, sx, h, zb, n2c if n2_uniform else n2[m], qx, cols, nx, bc, bsx, gdt, gdtdx, theta,
                        th2, h_dry, h_cap, zero, one, half)
                if not _in_halo(m, c, j0, j1, nch, 1):
                    _fp_row(m, rf[c, m % 3], h, phi, phi_binary, ones, cols, ny, nx, sx,
                            _pick(m, c, j0, j1, nch, 2, hy, ry, ones, ny),
                            _pick(m + 1, c, j0, j1, nch, 2, hy, ry, ones, ny), dtdy, dtdx, area, zero, one)
            j = m - 1
            if j < j0:
                continue
            lo = cols[j, 0]
            hi = cols[j, 1]
            if lo >= hi:
                row_acc[j, 6] = 0.0
                continue
            rr = rain_c if rain.shape[0] == 1 else rain[j]
            p1r = p1_c if ip1.shape[0] == 1 else ip1[j]
            p2r = p2_c if ip2.shape[0] == 1 else ip2[j]
            drr = dr_c if drain_rate.shape[0] == 1 else drain_rate[j]
            inr = in_c if inflow.shape[0] == 1 else inflow[j]
            lmr = level_mask[j] if level_rows[j] else no_lvl
            v_rain, v_inf, v_drn, v_in, v_out, v_lvl, row_max = _update_row(
                j, ny, nx, lo, hi, h, zb, phi, qx, qy, rx[c, j % 3],
                _pick(j, c, j0, j1, nch, 2, hy, ry, ones, ny), _pick(j + 1, c, j0, j1, nch, 2, hy, ry, ones, ny),
                _pick(j - 1, c, j0, j1, nch, 1, hf, rf, ones_p, ny), _pick(j, c, j0, j1, nch, 1, hf, rf, ones_p, ny),
                _pick(j + 1, c, j0, j1, nch, 1, hf, rf, ones_p, ny),
                cols, rr, p1r, p2r, drr, inr, lmr, hmax, tmax, tarr, infil_cum, ones, infil_mode, dt, dtdx, dtdy,
                dta, area, t_new, level, h_arrive, zero, one, c02, c08, mm)
            row_acc[j, 0] += v_rain
            row_acc[j, 1] += v_inf
            row_acc[j, 2] += v_drn
            row_acc[j, 3] += v_in
            row_acc[j, 4] += v_out
            row_acc[j, 5] += v_lvl
            row_acc[j, 6] = row_max


# --------------------------------------------------------------------------
# Time stepping
# --------------------------------------------------------------------------
@njit(cache=True, nogil=True)
def _hydro_at(ts, qs, n, t):
    # Hydrograph.at: linear between samples, zero outside them
    if t < ts[0] or t > ts[n - 1]:
        return 0.0
    return np.interp(t, ts[:n], qs[:n])


@njit(cache=True, nogil=True)
def advance(h, zb, n2, phi, qx, qy, qx_s, qy_s, fp, ybuf, fused, hx, hy, hf, rx, ry, rf, cols, chunks, bc,
            phi_binary,
            rain, infil_mode, ip1, ip2, infil_cum, drain_rate, inflow, level_mask, level_rows,
            hmax, tmax, tarr, row_acc,
            inflow_cells, inflow_t, inflow_q, inflow_n, level_t, level_v, has_level, z_level_min,
            t, t_end, t_next, h_max_now, dx, dy, theta, alpha, h_dry, dt_max, phi_min, bslope, h_arrive, h_cap,
            max_steps, F):
    """Steps from ``t`` while ``t < t_end - 1e-9`` and the piecewise-constant forcings hold (``t < t_next``).

    Each step: dt = min(CFL step, t_end - t, max(t_next - t, 1e-6)), with
    CFL step = min(dt_max, alpha sqrt(theta) min(dx, dy) / sqrt(g h_max / phi_min))
    (dt_max when h_max <= h_dry), h_max the largest depth after the last
    step or the highest water level over [t, t + dt_max] above the lowest
    level cell, at most ``h_cap``;
    inflows the mean of the hydrographs at t and t + dt (exact for
    piecewise-linear ones); the level at t + dt; then :func:`fused_pass` when
    ``fused`` (with its halo buffers ``hx``/``hy``/``hf`` and rolling buffers
    ``rx``/``ry``/``rf``), else :func:`flux_pass` and :func:`update_pass` (with
    ``qx_s``/``qy_s``/``fp``/``ybuf``). ``inflow_cells`` (k, 2) are the (j, i) of k
    hydrographs sampled at ``inflow_t[k, :inflow_n[k]]``; ``level_t``/``level_v``
    the level series. At most ``max_steps`` steps.

    Returns (t, steps taken, largest depth now).
    """
    nsteps = 0
    par1 = np.empty(7)
    par2 = np.empty(6)
    dmin = min(dx, dy)
    while t < t_end - 1e-9 and (nsteps == 0 or t < t_next) and nsteps < max_steps:
        hm = h_max_now
        if has_level:
            # highest level over the coming step (linear between samples)
            t1 = t + dt_max
            lv = max(np.interp(t, level_t, level_v), np.interp(t1, level_t, level_v))
            for k in range(level_t.size):
                if level_t[k] > t and level_t[k] < t1:
                    lv = max(lv, level_v[k])
            hm = max(hm, lv - z_level_min)
        hm = min(hm, h_cap)
        if hm <= h_dry:
            dtc = dt_max
        else:
            dtc = min(dt_max, alpha * math.sqrt(theta) * dmin / math.sqrt(G * hm / phi_min))
        sub = min(dtc, t_end - t, max(t_next - t, 1e-6))
        t_new = t + sub
        for k in range(inflow_cells.shape[0]):
            n = inflow_n[k]
            inflow[inflow_cells[k, 0], inflow_cells[k, 1]] = 0.5 * (
                _hydro_at(inflow_t[k], inflow_q[k], n, t) + _hydro_at(inflow_t[k], inflow_q[k], n, t_new))
        level = np.interp(t_new, level_t, level_v) if has_level else 0.0
        par1[0] = sub
        par1[1] = dx
        par1[2] = dy
        par1[3] = theta
        par1[4] = h_dry
        par1[5] = bslope
        par1[6] = h_cap
        par2[0] = sub
        par2[1] = dx
        par2[2] = dy
        par2[3] = t_new
        par2[4] = level
        par2[5] = h_arrive
        if fused:
            fused_pass(h, zb, n2, phi, qx, qy, hx, hy, hf, rx, ry, rf, cols, chunks, bc, par1, phi_binary, par2,
                       rain, infil_mode, ip1, ip2, infil_cum, drain_rate, inflow, level_mask, level_rows, hmax,
                       tmax, tarr, row_acc, F)
        else:
            flux_pass(h, zb, n2, phi, qx, qy, qx_s, qy_s, fp, ybuf, cols, chunks, bc, par1, phi_binary, F)
            update_pass(h, zb, phi, qx, qy, qx_s, qy_s, fp, cols, chunks, par2, rain, infil_mode, ip1, ip2,
                        infil_cum, drain_rate, inflow, level_mask, level_rows, hmax, tmax, tarr, row_acc, F)
        h_max_now = row_acc[:, 6].max()
        t = t_new
        nsteps += 1
    return t, nsteps, h_max_now


@njit(parallel=True, cache=True)
def max_depth(h):
    """Largest depth of the grid (for the CFL time step)."""
    ny, nx = h.shape
    rows = np.zeros(ny)
    for j in prange(ny):
        m = 0.0
        for i in range(nx):
            if h[j, i] > m:
                m = h[j, i]
        rows[j] = m
    return rows.max()
