"""Numba kernels of the finite-volume shallow-water scheme (pure: arrays in, arrays out).

Equations: the 2-D shallow-water equations in conservative form for
U = (h, hu, hv) on the cells of the local-inertial model's grid (same
layout, see :mod:`physics._kernels.flood`), with storage porosity phi.

Scheme (first order in space and time, explicit, one fused sweep per step):

- **Bed: hydrostatic reconstruction** of Audusse, Bouchut, Bristeau, Klein &
  Perthame (2004, SIAM J. Sci. Comput. 25:2050). At a face between L and R,
  z_f = max(z_L, z_R), h*_L = max(0, h_L + (z_L - z_f)), h*_R likewise,
  U*_{L,R} = (h*, h* u, h* v); the numerical flux is F(U*_L, U*_R) and the
  normal momentum of each side gets g/2 (h_side² - h*_side²). A lake at rest
  has F(U*, U*) = (0, g/2 h*², 0) on both sides of every face and stays at rest
  to round-off, dry cells poking through included (h* = 0 at their faces).
- **Flux: HLL** (Harten, Lax & van Leer 1983) for h and the normal momentum,
  wave speeds of Davis with Toro's dry-bed speeds (S_R = u_L + 2 c_L when
  h*_R = 0, S_L = u_R - 2 c_R when h*_L = 0; Toro 2001, "Shock-capturing methods
  for free-surface shallow flows", §10.5), so that a front over a dry bed runs at
  the Ritter speed 2 sqrt(g h0). Where one side is dry (h* = 0) the flux
  is instead the exact one of the dry-bed Riemann problem sampled at the
  face (Toro 2001 §5.3: c = u = (u_L + 2 c_L)/3 in the fan, h = c²/g), which
  lets water into a dry cell with the momentum the rarefaction carries (HLL's
  average gives it half: velocity c/2 for water at rest). The tangential momentum is carried by the mass
  flux with the upwind tangential velocity, F_t = F_h v_upwind: the shear
  wave of HLLC (Toro 2001 §10.4) with the contact side chosen by the sign of
  F_h. HLL rather than full HLLC for the normal part: for the shallow-water
  equations HLLC's mass and normal-momentum fluxes are HLL's, so only the
  shear wave differs, and it is kept.
- **Walls.** A face next to a blocked cell (porosity 0, bed at ``BIG``) or a
  closed edge sees the mirror state (h, -u_n, u_t, z) of its open side: zero
  mass flux exactly, the wall pressure and HLL's dissipation in the normal
  momentum.
- **Edges** read a ghost state per edge cell (``FVGrid.ghost_*``: h, u, v, z),
  filled before each step by :func:`fill_ghosts` from the edge kinds (closed:
  mirror; free: a dry cell ``boundary_slope`` dx lower, as the local-inertial
  model's free edge).
- **Porosity** as the local-inertial model treats it: storage phi h (and
  phi hu, phi hv), fluxes through a face not scaled, so a cell of porosity phi
  changes 1/phi times faster under the same fluxes (rain falls on the whole
  cell area and is routed to its open part).
- **Sources** after the flux update, per cell, in the local-inertial
  order and arithmetic on volumes: rain, inflow, infiltration, drainage (each
  loss limited to the water present), fixed-level cells; rain and inflow add
  mass without momentum, losses take momentum with the water they take.
- **Friction** (split, after the sources): implicit Manning on the unit
  discharge, q (1 + b |q|) = q*, b = g dt n² / h^(7/3), solved in closed form
  q = 2 q* / (1 + sqrt(1 + 4 b |q*|)) (the backward-Euler step of
  dq/dt = -g n² |q| q / h^(7/3) with h fixed), as the local-inertial model's
  face friction.
- **Wet/dry:** velocities are 0 where h <= h_dry (mass is never removed).
  Positivity: h^{n+1} is a convex combination of reconstructed states when
  dt (max (|u|+c)/dx + (|v|+c)/dy) / phi <= 1/2 (Audusse et al. 2004 §2.3,
  the half-cell CFL of the hydrostatic reconstruction); the step uses
  ``cfl`` <= 1/2 times that bound (:func:`cfl_dt`).

Symmetry: x and y faces go through the same :func:`_face` with the normal
and tangential components swapped, and a cell's x and y contributions are
added as one commutative sum ``a + b``; fastmath is limited to nnan/ninf/nsz
(no reassociation, no fused multiply-add), so a grid and its transpose or
mirror give the same depths bit for bit when dx = dy.

Layout
------
As :mod:`physics._kernels.flood` (``h``, ``zb`` with blocked cells at BIG,
``n2``, ``phi``, ``cols``), plus cell momenta ``hu``, ``hv`` (m²/s), and the
mass fluxes of the last step of each :func:`advance` at the x faces ``fx``
(ny, nx+1) and y faces ``fy`` (ny+1, nx) (m²/s, positive towards +i / +j).

A step: :func:`fill_ghosts`, then :func:`fused_pass`: the y faces at the
block boundaries (halo, from the start-of-step state) in parallel, then per
block of rows, row by row, the velocities of the next row, the y faces below
the row (into a rolling buffer; each face computed once and read by both
cells), the row's x faces, and the row's update in place. Volumes go to the
``acc`` columns of :mod:`physics._kernels.flood` (``ACC_*``); the column
``ACC_ROW_MAX`` holds the row's largest CFL rate (1/s) after the step.

Bytes per cell-update (STREAM counting as the local-inertial kernel):
see :func:`bytes_per_cell_update`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit, prange

from physics._kernels import flood as K
from physics._kernels.flood import (
    ACC_DRAINAGE,
    ACC_INFILTRATION,
    ACC_INFLOW,
    ACC_LEVEL_EXCHANGE,
    ACC_OUTFLOW,
    ACC_RAIN,
    ACC_ROW_MAX,
    BIG,
    K_CLOSED,
    K_DISCHARGE,
    K_FREE,
    K_NORMAL_DEPTH,
    K_STAGE,
    K_ZERO_GRADIENT,
    G,
    rcbrt,
)

# rows of the ghost arrays: state (h, normal velocity along +x/+y, tangential velocity, bed), whether the
# face's mass flux is imposed (1; -1: a wall, the mirror of the edge cell) and its value (m²/s along +x/+y), and the sign an outflow-only face's flux
# must have (-1 west/north, +1 east/south, 0 both ways)
GHOST_ROWS = 7
GH, GUN, GUT, GZ, GIMP, GQ, GOUT = range(GHOST_ROWS)

FM = {"nnan", "ninf", "nsz"}  # no reassociation or contraction: x/y symmetry to the bit

__all__ = ["FVGrid", "FVBlocks", "FVParams", "FVCoefficients", "advance", "fused_pass", "fill_ghosts",
           "cfl_dt", "bytes_per_cell_update", "GHOST_ROWS"]


class FVGrid(NamedTuple):
    """The stepped grid: state (updated in place) and geometry."""

    h: np.ndarray  # depth (m), (ny, nx)
    hu: np.ndarray  # x unit discharge at cell centres (m²/s)
    hv: np.ndarray  # y unit discharge (m²/s)
    zb: np.ndarray  # bed (m), blocked cells at BIG
    n2: np.ndarray  # Manning n², (ny, nx) or (1, 1)
    phi: np.ndarray  # porosity, 0 = blocked
    fx: np.ndarray  # mass flux at x faces of the last step of an advance (m²/s), (ny, nx+1)
    fy: np.ndarray  # at y faces, (ny+1, nx)
    cols: np.ndarray  # int64 (ny, 3): open span [lo, hi) per row, 1 if all of it has porosity 1
    ekind: np.ndarray  # int64 (4, L): kind of each edge face (physics.flood_boundaries.KIND_*), L = max(ny, nx)
    evalue: np.ndarray  # (4, L): its value (physics._kernels.flood.Grid.evalue), refreshed by begin_step
    ghost_w: np.ndarray  # (GHOST_ROWS, ny): ghost states west of column 0 (see fill_ghosts)
    ghost_e: np.ndarray  # (GHOST_ROWS, ny): east of column nx-1
    ghost_n: np.ndarray  # (GHOST_ROWS, nx): north of row 0
    ghost_s: np.ndarray  # (GHOST_ROWS, nx): south of row ny-1


class FVBlocks(NamedTuple):
    """Parallel row blocks and their row buffers."""

    chunks: np.ndarray  # int64 row boundaries (physics._kernels.flood.row_chunks)
    halo: np.ndarray  # (nb-1, 4, nx): y faces at each block boundary
    halo_vel: np.ndarray  # (nb-1, 2, 2, nx): velocities of the two rows at each boundary
    vel: np.ndarray  # (nb, 2, 2, nx): rolling velocity rows (u, v) of each block
    yrow: np.ndarray  # (nb, 2, 4, nx): rolling y-face rows
    xrow: np.ndarray  # (nb, 4, nx+1): x faces of the row being updated
    scratch: np.ndarray  # (nb, 4, nx): per cell of the row: infiltration, drainage volumes, CFL rate, volume


class FVParams(NamedTuple):
    """Scheme parameters, fixed for the run (float64)."""

    dx: float
    dy: float
    cfl: float  # fraction of the positivity bound (<= 1/2 of the half-cell CFL, see cfl_dt)
    h_dry: float
    dt_max: float
    phi_min: float
    boundary_slope: float
    h_arrive: float


class FVCoefficients(NamedTuple):
    """A step's constants in the arrays' dtype."""

    zero: float
    one: float
    half: float
    two: float
    four: float
    third: float  # 1 / 3
    g: float
    hg: float  # g / 2
    ig: float  # 1 / g
    dt: float
    gdt: float
    cx: float  # dt / dx
    cy: float  # dt / dy
    idx: float  # 1 / dx
    idy: float  # 1 / dy
    h_dry: float
    dtdx: float  # dt dx: volume of a y face per unit flux
    dtdy: float  # dt dy
    dta: float  # dt dx dy
    area: float
    t_new: float
    h_arrive: float
    c02: float
    c08: float
    mm: float
    store: bool  # write the face mass fluxes (last step of an advance)


@njit(cache=True, error_model="numpy")
def coefficients(dt, t_new, store, p, F):
    """The step's :class:`FVCoefficients` in the float class ``F`` of the arrays."""
    d = F(dt)
    dx = F(p.dx)
    dy = F(p.dy)
    g = F(G)
    area = dx * dy
    return FVCoefficients(zero=F(0.0), one=F(1.0), half=F(0.5), two=F(2.0), four=F(4.0), third=F(1.0) / F(3.0),
                          g=g, hg=F(0.5) * g, ig=F(1.0) / g, dt=d,
                          gdt=g * d, cx=d / dx, cy=d / dy, idx=F(1.0) / dx, idy=F(1.0) / dy, h_dry=F(p.h_dry),
                          dtdx=d * dx, dtdy=d * dy, dta=d * area, area=area, t_new=F(t_new),
                          h_arrive=F(p.h_arrive), c02=F(0.2), c08=F(0.8), mm=F(1e-3), store=store)


def bytes_per_cell_update(itemsize: int, *, gridded_rain=False, infiltration="none", drainage_grid=False,
                          inflow=False, level=False, phi_binary=True, n2_grid=False) -> dict:
    """Memory traffic per open cell and step of :func:`fused_pass` (STREAM counting, no write-allocate).

    The sweep reads h, hu, hv, zb, hmax and writes h, hu, hv, hmax (9 words);
    the row buffers (velocities, face rows) stay in the caches; ``phi`` is read
    in rows whose span is not all of porosity 1 (``phi_binary=False`` counts it
    everywhere); the rare tmax/tarr writes and the face mass fluxes of the last
    step of an :func:`advance` are not counted. Forcing grids add one word each
    (Green-Ampt 4: p1, p2 and the cumulative read and written; SCS 3).
    """
    b = itemsize
    p = 9 * b
    p += 0 if phi_binary else b
    p += b if n2_grid else 0
    p += b if gridded_rain else 0
    p += b if drainage_grid else 0
    p += b if inflow else 0
    p += {"none": 0, "constant": b, "green_ampt": 4 * b, "scs_cn": 3 * b}.get(infiltration, 0)
    p += (1 + b) * float(level)
    return {"fused_pass": p, "total": p}


# --------------------------------------------------------------------------
# One face
# --------------------------------------------------------------------------
@njit(inline="always", fastmath=FM, error_model="numpy")
def _face(hl, ul, vl, zl, hr, ur, vr, zr, c):
    """Flux at a face between L and R (normal velocity u, tangential v, beds z): returns
    (mass flux, normal-momentum flux for L's update, for R's update, tangential-momentum flux)."""
    zero = c.zero
    # a blocked side (bed BIG) is a wall: it takes the mirror of the open side
    wl = zl >= BIG
    wr = zr >= BIG
    h_l = hr if wl else hl
    u_l = -ur if wl else ul
    v_l = vr if wl else vl
    z_l = zr if wl else zl
    h_r = hl if wr else hr
    u_r = -ul if wr else ur
    v_r = vl if wr else vr
    z_r = zl if wr else zr
    # hydrostatic reconstruction (Audusse et al. 2004)
    zf = max(z_l, z_r)
    hls = max(zero, h_l + (z_l - zf))
    hrs = max(zero, h_r + (z_r - zf))
    cl = np.sqrt(c.g * hls)
    cr = np.sqrt(c.g * hrs)
    sl = min(u_l - cl, u_r - cr)
    sr = max(u_l + cl, u_r + cr)
    sl = sl if hls > zero else u_r - c.two * cr
    sr = sr if hrs > zero else u_l + c.two * cl
    ql = hls * u_l
    qr = hrs * u_r
    fnl = ql * u_l + c.hg * (hls * hls)
    fnr = qr * u_r + c.hg * (hrs * hrs)
    den = sr - sl
    den = den if den > zero else c.one
    ssr = sl * sr
    fh_m = (sr * ql - sl * qr + ssr * (hrs - hls)) / den
    fn_m = (sr * fnl - sl * fnr + ssr * (qr - ql)) / den
    fh = ql if sl >= zero else (qr if sr <= zero else fh_m)
    fn = fnl if sl >= zero else (fnr if sr <= zero else fn_m)
    # one side dry: the exact (Godunov) flux of the dry-bed Riemann problem (Toro 2001 §5.3) instead of HLL's
    # average, which lets water into a dry cell with half the momentum the rarefaction carries (velocity c/2
    # for water at rest, against c at the face in the exact fan): the front would lag.
    dry_r = (hrs <= zero) and (hls > zero)
    dry_l = (hls <= zero) and (hrs > zero)
    # right side dry: fan u_l - c_l .. u_l + 2 c_l; at the face (x/t = 0) c = u = (u_l + 2 c_l) / 3, or the
    # left state when the fan lies wholly right of the face (u_l >= c_l), or dry when wholly left
    csr = max(zero, (u_l + c.two * cl) * c.third)
    hsr = csr * csr * c.ig
    sup_r = u_l >= cl
    fh_r = ql if sup_r else hsr * csr
    fn_r = fnl if sup_r else hsr * csr * csr + c.hg * (hsr * hsr)
    # left side dry: the mirror image (u -> -u)
    csl = max(zero, ((-u_r) + c.two * cr) * c.third)
    hsl = csl * csl * c.ig
    sup_l = (-u_r) >= cr
    fh_l = qr if sup_l else -(hsl * csl)
    fn_l = fnr if sup_l else hsl * csl * csl + c.hg * (hsl * hsl)
    fh = fh_r if dry_r else (fh_l if dry_l else fh)
    fn = fn_r if dry_r else (fn_l if dry_l else fn)
    ft = fh * (v_l if fh > zero else v_r)
    fn_left = fn + c.hg * (h_l * h_l - hls * hls)
    fn_right = fn + c.hg * (h_r * h_r - hrs * hrs)
    both = wl and wr
    return (zero if both else fh, zero if both else fn_left, zero if both else fn_right, zero if both else ft)


@njit(cache=True, fastmath=FM, error_model="numpy")
def _edge_face(gs, k, h, un, ut, z, low, c):
    """Flux at edge face ``k`` between its ghost (column k of ``gs``, see :func:`fill_ghosts`) and the edge cell
    (h, normal and tangential velocity, bed); ``low``: the ghost is on the low-index side (west, north)."""
    zero = c.zero
    mirror = gs[GIMP, k] < zero  # a wall: the edge cell's own state, normal velocity reversed (exact)
    gh = h if mirror else gs[GH, k]
    gu = -un if mirror else gs[GUN, k]
    gt = ut if mirror else gs[GUT, k]
    gz = z if mirror else gs[GZ, k]
    f0, f1, f2, f3 = _face(gh if low else h, gu if low else un, gt if low else ut, gz if low else z,
                           h if low else gh, un if low else gu, ut if low else gt, z if low else gz, c)
    if gs[GIMP, k] > zero:
        # imposed discharge: the mass flux exactly q; the momentum fluxes the Riemann solver's with the ghost
        q = gs[GQ, k]
        f0 = q
        inward = (q > zero) == low
        f3 = q * (gt if inward else ut)
    sgn = gs[GOUT, k]
    if sgn * f0 < zero:
        # an outflow-only face that would let water in: a wall (the mirror of the edge cell)
        w = -un if low else un
        e = un if low else -un
        f0, f1, f2, f3 = _face(h, w, ut, z, h, e, ut, z, c)
    return f0, f1, f2, f3


# --------------------------------------------------------------------------
# Rows
# --------------------------------------------------------------------------
@njit(inline="always")
def _velocity_row(hrow, hurow, hvrow, out, a, b, c):
    """u, v of row cells [a, b) into ``out[0]``, ``out[1]`` (0 where h <= h_dry)."""
    _velocity_row_impl(hrow, hurow, hvrow, out[0], out[1], a, b, c)


@njit(cache=True, fastmath=FM, error_model="numpy")
def _velocity_row_impl(hrow, hurow, hvrow, out_u, out_v, a, b, c):
    """u, v of row cells [a, b) into ``out_u``, ``out_v`` (0 where h <= h_dry). (Two 1-D arrays: stores
    into two rows of one 2-D argument keep the loop from vectorising.)"""
    b = max(a, b)
    hh = hrow[a:b]
    qu = hurow[a:b]
    qv = hvrow[a:b]
    ou = out_u[a:b]
    ov = out_v[a:b]
    for i in range(b - a):
        h = hh[i]
        wet = h > c.h_dry
        inv = c.one / (h if wet else c.one)
        ou[i] = qu[i] * inv if wet else c.zero
        ov[i] = qv[i] * inv if wet else c.zero


@njit(inline="always")
def _span(cols, k, nx):
    """Columns [a, b) whose velocities rows k-1..k+1 read: the union of their spans, one wider each side."""
    ny = cols.shape[0]
    a = nx
    b = 0
    for r in range(max(k - 1, 0), min(k + 2, ny)):
        if cols[r, 0] < cols[r, 1]:
            a = min(a, cols[r, 0])
            b = max(b, cols[r, 1])
    return max(a - 1, 0), min(b + 1, nx)


@njit(cache=True, fastmath=FM, error_model="numpy")
def _x_faces_row(h, u, v, z, gw, ge, j, lo, hi, out, fxrow, c):
    """x faces lo..hi of row j (cells lo-1..hi, edge ghosts at 0 and nx) into ``out`` (4, nx+1)."""
    nx = h.shape[0]
    o0 = out[0]
    o1 = out[1]
    o2 = out[2]
    o3 = out[3]
    a = max(lo, 1)
    b = min(hi, nx - 1)
    if b >= a:
        n = b - a + 1  # faces a..b between cells i-1 and i
        hl = h[a - 1:b]
        hr = h[a:b + 1]
        ul = u[a - 1:b]
        ur = u[a:b + 1]
        vl = v[a - 1:b]
        vr = v[a:b + 1]
        zl = z[a - 1:b]
        zr = z[a:b + 1]
        p0 = o0[a:b + 1]
        p1 = o1[a:b + 1]
        p2 = o2[a:b + 1]
        p3 = o3[a:b + 1]
        for k in range(n):
            f0, f1, f2, f3 = _face(hl[k], ul[k], vl[k], zl[k], hr[k], ur[k], vr[k], zr[k], c)
            p0[k] = f0
            p1[k] = f1
            p2[k] = f2
            p3[k] = f3
    if lo == 0:
        f0, f1, f2, f3 = _edge_face(gw, j, h[0], u[0], v[0], z[0], True, c)
        o0[0] = f0
        o1[0] = f1
        o2[0] = f2
        o3[0] = f3
    if hi == nx:
        f0, f1, f2, f3 = _edge_face(ge, j, h[nx - 1], u[nx - 1], v[nx - 1], z[nx - 1], False, c)
        o0[nx] = f0
        o1[nx] = f1
        o2[nx] = f2
        o3[nx] = f3
    if c.store:
        for i in range(lo, hi + 1):
            fxrow[i] = o0[i]


@njit(cache=True, fastmath=FM, error_model="numpy")
def _y_faces_row(ha, va, ua, za, hb, vb, ub, zb, a, b, out, fyrow, c):
    """y faces between an upper row (``*a``: cells above, L) and a lower row (R), columns [a, b), into ``out``.

    The normal velocity is v, the tangential u: :func:`_face` is the x faces' function.
    """
    b = max(a, b)
    o0 = out[0, a:b]
    o1 = out[1, a:b]
    o2 = out[2, a:b]
    o3 = out[3, a:b]
    ha = ha[a:b]
    va = va[a:b]
    ua = ua[a:b]
    za = za[a:b]
    hb = hb[a:b]
    vb = vb[a:b]
    ub = ub[a:b]
    zb = zb[a:b]
    for k in range(b - a):
        f0, f1, f2, f3 = _face(ha[k], va[k], ua[k], za[k], hb[k], vb[k], ub[k], zb[k], c)
        o0[k] = f0
        o1[k] = f1
        o2[k] = f2
        o3[k] = f3
    if c.store:
        fo = fyrow[a:b]
        for k in range(b - a):
            fo[k] = o0[k]


@njit(inline="always")
def _y_span(cols, k, nx):
    """Columns [a, b) of the y faces between rows k-1 and k that their cells read (union of the two spans)."""
    ny = cols.shape[0]
    a = nx
    b = 0
    for r in (k - 1, k):
        if 0 <= r < ny and cols[r, 0] < cols[r, 1]:
            a = min(a, cols[r, 0])
            b = max(b, cols[r, 1])
    return a, max(a, b)


@njit(cache=True, fastmath=FM, error_model="numpy")
def _y_edge_row(gs, h, vn, ut, z, a, b, low, out, fyrow, c):
    """North (``low``) or south edge faces of columns [a, b) from the ghosts ``gs`` and the edge row."""
    for i in range(a, b):
        f0, f1, f2, f3 = _edge_face(gs, i, h[i], vn[i], ut[i], z[i], low, c)
        out[0, i] = f0
        out[1, i] = f1
        out[2, i] = f2
        out[3, i] = f3
        if c.store:
            fyrow[i] = f0


@njit(cache=True, fastmath=FM, error_model="numpy")
def _y_face_k(k, g, vel_up, vel_dn, out, c):
    """y faces above row k (k = 0: north edge, k = ny: south edge) into ``out``; velocity rows of k-1, k."""
    ny, nx = g.h.shape
    a, b = _y_span(g.cols, k, nx)
    if k == 0:
        _y_edge_row(g.ghost_n, g.h[0], vel_dn[1], vel_dn[0], g.zb[0], a, b, True, out, g.fy[0], c)
    elif k == ny:
        _y_edge_row(g.ghost_s, g.h[ny - 1], vel_up[1], vel_up[0], g.zb[ny - 1], a, b, False, out, g.fy[ny], c)
    else:
        _y_faces_row(g.h[k - 1], vel_up[1], vel_up[0], g.zb[k - 1], g.h[k], vel_dn[1], vel_dn[0], g.zb[k], a, b,
                     out, g.fy[k], c)


@njit(cache=True, fastmath=FM, error_model="numpy")
def _update_row_impl(j, ny, nx, lo, hi, h, hu, hv, zj, pj, n2r, xf, ya, yb, rr, p1r, p2r, drr, inr, lmr,
                     level_now, has_level, losses, hmj, tmj, taj, icj, infil_mode, scr0, scr1, scr2, scr3, c):
    """Row j's cells [lo, hi) from their faces and sources; returns its volumes and largest CFL rate."""
    zero = c.zero
    v_rain = 0.0
    v_inf = 0.0
    v_drn = 0.0
    v_in = 0.0
    n = hi - lo
    sl0 = scr0[lo:hi]  # infiltration and drainage volumes per cell (two 1-D arrays: see _velocity_row_impl)
    sl1 = scr1[lo:hi]
    sl2 = scr2[lo:hi]  # CFL rates
    sv = scr3[lo:hi]  # water volumes after the fluxes (and losses)
    xw0 = xf[0, lo:hi]
    xe0 = xf[0, lo + 1:hi + 1]
    xe1 = xf[1, lo + 1:hi + 1]
    xw2 = xf[2, lo:hi]
    xw3 = xf[3, lo:hi]
    xe3 = xf[3, lo + 1:hi + 1]
    yn0 = ya[0, lo:hi]
    ys0 = yb[0, lo:hi]
    ys1 = yb[1, lo:hi]
    yn2 = ya[2, lo:hi]
    yn3 = ya[3, lo:hi]
    ys3 = yb[3, lo:hi]
    vh = h[lo:hi]
    vu = hu[lo:hi]
    vv = hv[lo:hi]
    vz = zj[lo:hi]
    vp = pj[lo:hi]
    vn2 = n2r[lo:hi]
    vr = rr[lo:hi]
    vp1 = p1r[lo:hi]
    vp2 = p2r[lo:hi]
    vd = drr[lo:hi]
    vi_ = inr[lo:hi]
    vl = lmr[lo:hi]
    vhm = hmj[lo:hi]
    vtm = tmj[lo:hi]
    vta = taj[lo:hi]
    vic = icj[lo:hi]
    v_lvl = 0.0
    rmax = zero
    one = c.one
    # four loops, so that the two that run on every row vectorise (a loss's branches, a held level's gather,
    # a reduction or a conditional store in them would stop it): 1 fluxes, rain, inflow; 2 losses (rows with
    # infiltration or drainage); 3 friction and the CFL rate; 4 held levels (rows holding them)
    for i in range(n):
        p = vp[i]
        opn = p > zero
        pa = p * c.area
        ip = one / (p if opn else one)
        dvol = c.dtdy * (xw0[i] - xe0[i]) + c.dtdx * (yn0[i] - ys0[i])
        dmu = c.cx * (xw2[i] - xe1[i]) + c.cy * (yn3[i] - ys3[i])
        dmv = c.cx * (xw3[i] - xe3[i]) + c.cy * (yn2[i] - ys1[i])
        sv[i] = max(pa * vh[i] + dvol + vr[i] * c.dta + vi_[i] * c.dt, zero)  # < 0 by round-off only
        vu[i] = vu[i] + dmu * ip if opn else vu[i]
        vv[i] = vv[i] + dmv * ip if opn else vv[i]
    if losses:
        for i in range(n):
            opn = vp[i] > zero
            v = sv[i]
            vb = v
            vinf, cum = K.infiltration(infil_mode, v, vr[i], vp1[i], vp2[i], vic[i], c)  # the LI kernel's arithmetic
            if opn and infil_mode != 0:
                vic[i] = cum
            v -= vinf
            vdr = min(vd[i] * c.dta, v)
            v -= vdr
            # the losses take momentum with the water they take
            if opn and v < vb:
                s = v / vb
                vu[i] *= s
                vv[i] *= s
            sv[i] = v
            sl0[i] = vinf if opn else zero
            sl1[i] = vdr if opn else zero
    for i in range(n):
        p = vp[i]
        opn = p > zero
        pa = p * c.area
        h0 = vh[i]
        hn = sv[i] / (pa if opn else one)
        mu = vu[i]
        mv = vv[i]
        # implicit Manning friction on the unit discharge, then the dry threshold
        wet = hn > c.h_dry
        rc = rcbrt(hn if wet else one)
        r3 = rc * rc * rc
        r7 = r3 * r3 * rc
        qm = np.sqrt(mu * mu + mv * mv)
        bq = c.gdt * vn2[i] * r7 * qm
        fac = c.two / (one + np.sqrt(one + c.four * bq))
        mu = mu * fac if wet else zero
        mv = mv * fac if wet else zero
        cw = np.sqrt(c.g * hn)
        rate = (abs(mu) * r3 + cw) * c.idx + (abs(mv) * r3 + cw) * c.idy
        vh[i] = hn if opn else h0
        vu[i] = mu if opn else vu[i]
        vv[i] = mv if opn else vv[i]
        sl2[i] = rate if (wet and opn) else zero
    if has_level:
        # held cells: the level's depth (friction was applied at the depth before it), their CFL rate at it
        for i in range(n):
            lk = vl[i]
            if lk and vp[i] > zero:
                hn = vh[i]
                target = max(level_now[lk - 1] - vz[i], zero)
                v_lvl += (target - hn) * vp[i] * c.area
                vh[i] = target
                if target > c.h_dry:
                    cw = np.sqrt(c.g * target)
                    sl2[i] = (abs(vu[i]) / target + cw) * c.idx + (abs(vv[i]) / target + cw) * c.idy
                else:
                    vu[i] = zero
                    vv[i] = zero
                    sl2[i] = zero
    # the volumes summed and the rates' maximum taken apart (a reduction in the loop above would stop it
    # vectorising without reassociation)
    for i in range(n):
        opn = vp[i] > zero
        v_rain += vr[i] * c.dta if opn else zero
        v_in += vi_[i] * c.dt if opn else zero
        v_inf += sl0[i] if losses else zero
        v_drn += sl1[i] if losses else zero
        rmax = max(rmax, sl2[i])
    # maxima, their times and arrival (a rarely taken branch, apart from the loop above)
    for i in range(n):
        hn = vh[i]
        hm = vhm[i]
        if hn > hm and vp[i] > zero:
            vhm[i] = hn
            vtm[i] = c.t_new
            if hn >= c.h_arrive and hm < c.h_arrive:
                vta[i] = c.t_new
    # the edges: water leaving is outflow, water entering (discharge, stage) inflow
    v_out = 0.0
    if lo == 0:
        v_out, v_in = _edge_volume(-c.dtdy * xf[0, 0], v_out, v_in)
    if hi == nx:
        v_out, v_in = _edge_volume(c.dtdy * xf[0, nx], v_out, v_in)
    if j == 0:
        for i in range(lo, hi):
            v_out, v_in = _edge_volume(-c.dtdx * ya[0, i], v_out, v_in)
    if j == ny - 1:
        for i in range(lo, hi):
            v_out, v_in = _edge_volume(c.dtdx * yb[0, i], v_out, v_in)
    return v_rain, v_inf, v_drn, v_in, v_out, v_lvl, rmax


@njit(inline="always")
def _edge_volume(vol, v_out, v_in):
    """Book an edge face's outgoing volume ``vol`` (m³, < 0: entering) as outflow or inflow."""
    return (v_out + vol, v_in) if vol > 0 else (v_out, v_in - vol)


@njit(inline="always")
def _urow(a, uniform_row, j):
    return uniform_row if a.shape[0] == 1 else a[j]


@njit(inline="always")
def _update_row(j, g, f, o, c, u, xf, ya, yb, scratch):
    """Row j's update (:func:`_update_row_impl`) with its forcing rows picked (the uniform rows for one-value
    inputs), its volumes added to ``o.acc[j]``. (The picks go to locals first: conditional expressions inside
    a call of this many arguments compile to a bytecode numba refuses.)"""
    ny, nx = g.h.shape
    lo = g.cols[j, 0]
    hi = g.cols[j, 1]
    if lo >= hi:
        o.acc[j, ACC_ROW_MAX] = 0.0
    else:
        prow = u.ones if g.cols[j, 2] else g.phi[j]
        lrow = f.level_mask[j] if f.level_rows[j] else u.no_level
        has_level = f.level_rows[j] != 0
        losses = f.infil_mode != 0 or f.drain_rate.shape[0] != 1 or f.drain_rate[0, 0] > 0
        _add_volumes(o.acc[j], _update_row_impl(
            j, ny, nx, lo, hi, g.h[j], g.hu[j], g.hv[j], g.zb[j], prow, _urow(g.n2, u.n2, j), xf, ya, yb,
            _urow(f.rain, u.rain, j), _urow(f.infil_p1, u.infil_p1, j), _urow(f.infil_p2, u.infil_p2, j),
            _urow(f.drain_rate, u.drain_rate, j), _urow(f.inflow, u.inflow, j), lrow, f.level_now, has_level, losses,
            o.hmax[j], o.tmax[j], o.tarr[j], f.infil_cum[j], f.infil_mode, scratch[0], scratch[1], scratch[2], scratch[3], c))


@njit(inline="always")
def _add_volumes(acc, res):
    acc[ACC_RAIN] += res[0]
    acc[ACC_INFILTRATION] += res[1]
    acc[ACC_DRAINAGE] += res[2]
    acc[ACC_INFLOW] += res[3]
    acc[ACC_OUTFLOW] += res[4]
    acc[ACC_LEVEL_EXCHANGE] += res[5]
    acc[ACC_ROW_MAX] = res[6]


# --------------------------------------------------------------------------
# The step
# --------------------------------------------------------------------------
@njit(cache=True, nogil=True)
def fill_ghosts(g, p):
    """Ghost states of the edge faces (``FVGrid.ghost_*``, rows GH..GOUT) from their kinds and values.

    Per face (kind ``g.ekind``, value ``g.evalue``; the edge cell's depth h, velocities u_n, u_t, bed z):

    - closed, or a blocked edge cell: the mirror (h, -u_n, u_t, z): a wall;
    - free (legacy): a dry cell ``value`` lower (z - boundary_slope d), outflow only;
    - discharge: the mass flux is ``value`` (m²/s along +x/+y) exactly; the ghost (h_g, value/h_g, 0, z_e),
      h_g = max(h, (q²/g)^(1/3)) (at least critical depth), gives the momentum fluxes;
    - stage: (max(level - z_e, 0), u_n, u_t, z_e) with level = ``value``;
    - normal depth (``value`` = S d): (h, Manning's normal velocity h^(2/3) S^(1/2) / n outward, u_t,
      z - S d), outflow only; without friction (n = 0) the edge cell's u_n;
    - zero gradient: (h, u_n, u_t, z_e), outflow only;

    z_e = 2 z - z_inner is the bed continued linearly past the edge (z where the inner cell is blocked):
    the hydrostatic reconstruction gives a cell the bed term of a face from its higher side, so an
    inflow edge cell on a slope needs the ghost's bed above its own, as its upstream neighbour would be.
    """
    ny, nx = g.h.shape
    hdry = p.h_dry
    n2u = g.n2.shape[0] == 1
    for e in range(4):
        gs = (g.ghost_w, g.ghost_e, g.ghost_n, g.ghost_s)[e]
        n = ny if e < 2 else nx
        d = p.dx if e < 2 else p.dy
        s_out = -1.0 if (e == 0 or e == 2) else 1.0
        for k in range(n):
            if e == 0:
                j, i = k, 0
            elif e == 1:
                j, i = k, nx - 1
            elif e == 2:
                j, i = 0, k
            else:
                j, i = ny - 1, k
            h = float(g.h[j, i])
            z = float(g.zb[j, i])
            wet = h > hdry
            qn = g.hu[j, i] if e < 2 else g.hv[j, i]
            qt = g.hv[j, i] if e < 2 else g.hu[j, i]
            un = qn / h if wet else 0.0
            ut = qt / h if wet else 0.0
            kind = g.ekind[e, k]
            val = float(g.evalue[e, k])
            # the bed continued linearly past the edge (the edge cell then gets the bed term of its outer half)
            ji = j if e < 2 else (1 if e == 2 else ny - 2)
            ii = i if e >= 2 else (1 if e == 0 else nx - 2)
            z_in = float(g.zb[ji, ii]) if 0 <= ji < ny and 0 <= ii < nx else BIG
            z_ext = 2.0 * z - z_in if z_in < BIG else z
            gh, gun, gut, gz, imp, gq, out = h, -un, ut, z, -1.0, 0.0, 0.0  # closed: mirror (imp < 0)
            if z < BIG:
                if kind == K_FREE:
                    gh, gun, gut, gz, imp, out = 0.0, 0.0, 0.0, z - val, 0.0, s_out
                elif kind == K_DISCHARGE:
                    gh = max(h, (val * val / G) ** (1.0 / 3.0))
                    gun = val / gh if gh > 0.0 else 0.0
                    gut = 0.0
                    gz = z_ext
                    imp = 1.0
                    gq = val
                elif kind == K_STAGE:
                    gh, gun, gz = max(val - z_ext, 0.0), un, z_ext
                elif kind == K_NORMAL_DEPTH:
                    n2 = float(g.n2[0, 0] if n2u else g.n2[j, i])
                    gh, gz, out = h, z - val, s_out
                    gun = un
                    if n2 > 0.0 and wet:
                        gun = s_out * h ** (2.0 / 3.0) * math.sqrt(val / d) / math.sqrt(n2)
                elif kind == K_ZERO_GRADIENT:
                    gh, gun, gz, out = h, un, z_ext, s_out
                if kind != K_CLOSED:
                    imp = max(imp, 0.0)
            gs[GH, k] = gh
            gs[GUN, k] = gun
            gs[GUT, k] = gut
            gs[GZ, k] = gz
            gs[GIMP, k] = imp
            gs[GQ, k] = gq
            gs[GOUT, k] = out


@njit(inline="always")
def _pick_y(k, c, j0, j1, nch, halo, yrow):
    if c > 0 and k == j0:
        return halo[c - 1]
    if c < nch - 1 and k == j1:
        return halo[c]
    return yrow[c, k % 2]


@njit(parallel=True, cache=True, nogil=True, error_model="numpy")
def fused_pass(g, blocks, f, o, c, u):
    """One step (coefficients ``c``) in one sweep per block of rows (see the module docstring)."""
    ny, nx = g.h.shape
    chunks = blocks.chunks
    nch = chunks.size - 1
    for q in prange(nch - 1):
        b = chunks[q + 1]
        hv_ = blocks.halo_vel[q]
        for r in range(2):
            k = b - 1 + r
            a0, b0 = _span(g.cols, k, nx)
            _velocity_row(g.h[k], g.hu[k], g.hv[k], hv_[r], a0, b0, c)
        _y_face_k(b, g, hv_[0], hv_[1], blocks.halo[q], c)
    for q in prange(nch):
        j0 = chunks[q]
        j1 = chunks[q + 1]
        vel = blocks.vel[q]
        a0, b0 = _span(g.cols, j0, nx)
        _velocity_row(g.h[j0], g.hu[j0], g.hv[j0], vel[j0 % 2], a0, b0, c)
        if j0 == 0:
            _y_face_k(0, g, vel[0], vel[0], blocks.yrow[q, 0], c)
        for m in range(j0, j1):
            k = m + 1
            if k == ny:
                _y_face_k(ny, g, vel[m % 2], vel[m % 2], blocks.yrow[q, k % 2], c)
            elif k < j1:
                a0, b0 = _span(g.cols, k, nx)
                _velocity_row(g.h[k], g.hu[k], g.hv[k], vel[k % 2], a0, b0, c)
                _y_face_k(k, g, vel[m % 2], vel[k % 2], blocks.yrow[q, k % 2], c)
            lo = g.cols[m, 0]
            hi = g.cols[m, 1]
            xf = blocks.xrow[q]
            if lo < hi:
                vm = vel[m % 2]
                _x_faces_row(g.h[m], vm[0], vm[1], g.zb[m], g.ghost_w, g.ghost_e, m, lo, hi, xf, g.fx[m], c)
            _update_row(m, g, f, o, c, u, xf, _pick_y(m, q, j0, j1, nch, blocks.halo, blocks.yrow),
                        _pick_y(m + 1, q, j0, j1, nch, blocks.halo, blocks.yrow), blocks.scratch[q])


# --------------------------------------------------------------------------
# Time stepping
# --------------------------------------------------------------------------
@njit(cache=True, nogil=True)
def ahead_rate(t, f, p):
    """CFL rate of still water at the highest held level or stage over [t, t + dt_max] above the lowest bed
    it covers (a rising tide must not be stepped over with the step of the still-dry grid)."""
    hm = K.ahead_depth(0.0, t, f, p)
    if hm <= p.h_dry:
        return 0.0
    return math.sqrt(G * hm) * (1.0 / p.dx + 1.0 / p.dy)


@njit(cache=True, nogil=True)
def cfl_dt(rate_max, t, f, p):
    """Step (s) from ``t``: min(dt_max, cfl phi_min / rate), rate = max over cells of (|u|+c)/dx + (|v|+c)/dy.

    ``p.cfl`` is the fraction of 1/2 (the hydrostatic reconstruction's positivity bound) the model
    chose; the rate is at least :func:`ahead_rate`. dt_max when nothing is wet.
    """
    rate = max(rate_max, ahead_rate(t, f, p))
    if rate <= 0.0:
        return p.dt_max
    return min(p.dt_max, p.cfl * p.phi_min / rate)


@njit(cache=True, nogil=True)
def advance(g, blocks, f, o, p, pl, w, F):
    """Steps from ``w.t`` while ``t < t_end - 1e-9`` and the piecewise-constant forcings hold.

    ``w`` is a :class:`physics._kernels.flood.Window` whose ``h_max`` carries the largest CFL rate
    (1/s) of the current state; ``pl`` the local-inertial :class:`~physics._kernels.flood.Params`
    of the same model, for :func:`physics._kernels.flood.begin_step`, which sets the step's inflows,
    line sources, held levels and edge values for a step of the length chosen here (its own CFL
    step, with depth 0, never binds below it). Each step: :func:`cfl_dt` (bounded by t_end and
    t_next), begin_step, :func:`fill_ghosts`, :func:`fused_pass`. Returns (t, steps, largest CFL rate now).
    """
    u = K.uniform_rows(g, f)  # reads g.h and g.n2
    t = w.t
    rate = w.h_max
    nsteps = 0
    while t < w.t_end - 1e-9 and (nsteps == 0 or t < w.t_next) and nsteps < w.max_steps:
        dt = min(cfl_dt(rate, t, f, p), w.t_end - t, max(w.t_next - t, 1e-6))
        step = K.begin_step(t, 0.0, K.Window(t=t, t_end=t + dt, t_next=w.t_next, h_max=0.0, max_steps=1), f, pl)
        last = (step.t_new >= w.t_end - 1e-9) or (step.t_new >= w.t_next) or (nsteps + 1 >= w.max_steps)
        fill_ghosts(g, p)
        fused_pass(g, blocks, f, o, coefficients(step.dt, step.t_new, last, p, F), u)
        rate = o.acc[:, ACC_ROW_MAX].max()
        t = step.t_new
        nsteps += 1
    return t, nsteps, rate


@njit(cache=True)
def rate_of(h, hu, hv, phi, h_dry, dx, dy):
    """Largest CFL rate (|u|+c)/dx + (|v|+c)/dy (1/s) over the open wet cells of a state."""
    ny, nx = h.shape
    r = 0.0
    for j in range(ny):
        for i in range(nx):
            hh = float(h[j, i])
            if phi[j, i] > 0 and hh > h_dry:
                cw = math.sqrt(G * hh)
                r = max(r, (abs(float(hu[j, i])) / hh + cw) / dx + (abs(float(hv[j, i])) / hh + cw) / dy)
    return r
