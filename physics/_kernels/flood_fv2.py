"""Second order of the finite-volume flood scheme: MUSCL in space, Heun (SSP-RK2) in time (numba, pure).

Space: per cell and direction, minmod slopes (van Leer's MUSCL with the
minmod limiter) of the depth h, the surface eta = h + z and the velocities
u, v; a cell's face values are q ± s/2 and its face bed z ± (s_eta - s_h)/2.
The edge cells are reconstructed with their ghost as the outer neighbour;
a slope is 0 next to a blocked cell, and the velocity slopes are 0 where
one of the three cells is dry (h <= h_dry). Minmod keeps the face depths
>= h/2 >= 0. The face flux is the first-order one (:func:`physics._kernels.flood_fv._face`:
hydrostatic reconstruction and HLL) on the reconstructed states, and each
cell adds the centred bed term of Audusse et al. (2004, SIAM J. Sci. Comput.
25:2050, §3) to its normal momentum, g/2 (h_w + h_e)(z_w - z_e) over its two
faces, which cancels the pressure of a lake at rest (eta constant: eta_w = eta_e).

Time: Heun, U1 = U + dt L(U), U^{n+1} = (U + U1 + dt L(U1)) / 2 (Shu & Osher
1988, SSP), on the flux and bed terms only; then the sources, losses,
held levels and implicit friction of the first-order step, once, over dt
(splitting, as at first order). Positivity needs half the first-order CFL
(the reconstruction moves each face value by up to half the cell's range):
the model steps at ``cfl/4`` of the rate bound instead of ``cfl/2``.

Edges: the edge cell's reconstructed face value against its ghost (:func:`physics._kernels.flood_fv._edge_face`).
Not fused: per stage one pass over the x faces, one over the y faces (into
``Fx``, ``Fy``) and one over the cells, each parallel over rows.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit, prange

from physics._kernels import flood as K
from physics._kernels import flood_fv as KF
from physics._kernels.flood import ACC_INFLOW, ACC_OUTFLOW, ACC_ROW_MAX, BIG  # noqa: F401

FM = KF.FM


class Stage(NamedTuple):
    """Work arrays of the second-order step (allocated once by the model)."""

    h1: np.ndarray  # (ny, nx) first Heun stage
    hu1: np.ndarray
    hv1: np.ndarray
    fx: np.ndarray  # (4, ny, nx+1): x-face fluxes (mass, normal momentum for L, for R, tangential)
    fy: np.ndarray  # (4, ny+1, nx)
    src: np.ndarray  # (2, ny, nx): the cells' centred bed terms g/2 (h_w + h_e)(z_w - z_e) in x and y (m³/s²)
    zero_x: np.ndarray  # (4, nx+1) zeros: the face row the source update reads
    zero_y: np.ndarray  # (4, nx) zeros


@njit(inline="always")
def _minmod(a, b, zero):
    return (min(a, b) if a > zero else max(a, b)) if a * b > zero else zero


@njit(inline="always", fastmath=FM)
def _slopes(ha, hc, hb, ea, ec, eb, ua, uc, ub, va, vc, vb, ok, hdry, zero):
    """Minmod slopes of a cell (c) between its neighbours a and b: (h, eta, u, v); 0 unless ``ok``, and the
    velocity slopes 0 unless the three cells are wet."""
    sh = _minmod(hc - ha, hb - hc, zero) if ok else zero
    se = _minmod(ec - ea, eb - ec, zero) if ok else zero
    wet = ok and ha > hdry and hc > hdry and hb > hdry
    su = _minmod(uc - ua, ub - uc, zero) if wet else zero
    sv = _minmod(vc - va, vb - vc, zero) if wet else zero
    return sh, se, su, sv


@njit(cache=True, fastmath=FM, error_model="numpy")
def _x_faces(h, hu, hv, zb, j, fx, src, c, gw, ge):
    """x faces of row j into ``fx[:, j]`` and the row's centred bed terms into ``src`` (nx,).

    The row is extended by its two ghosts (:func:`physics._kernels.flood_fv.fill_ghosts`), so the edge
    cells are reconstructed as the others; a cell next to a blocked cell (or a blocked ghost) keeps
    slope 0. Face beds: z ∓ (s_eta - s_h)/2 (exactly z where the slopes vanish).
    """
    nx = h.shape[1]
    hdry = c.h_dry
    zero = c.zero
    half = c.half
    n = nx + 2
    eh = np.empty(n, dtype=h.dtype)
    ez = np.empty(n, dtype=h.dtype)
    eu = np.empty(n, dtype=h.dtype)
    ev = np.empty(n, dtype=h.dtype)
    for i in range(nx):
        hh = h[j, i]
        inv = c.one / hh if hh > hdry else zero
        eh[i + 1] = hh
        ez[i + 1] = zb[j, i]
        eu[i + 1] = hu[j, i] * inv
        ev[i + 1] = hv[j, i] * inv
    for m, gs in ((0, gw), (n - 1, ge)):
        eh[m] = gs[KF.GH, j]
        ez[m] = gs[KF.GZ, j]
        eu[m] = gs[KF.GUN, j]
        ev[m] = gs[KF.GUT, j]
    # reconstructed values of the real cells at their low (l) and high (r) faces
    lh = np.empty(n, dtype=h.dtype)
    lz = np.empty(n, dtype=h.dtype)
    lu = np.empty(n, dtype=h.dtype)
    lv = np.empty(n, dtype=h.dtype)
    rh = np.empty(n, dtype=h.dtype)
    rz = np.empty(n, dtype=h.dtype)
    ru = np.empty(n, dtype=h.dtype)
    rv = np.empty(n, dtype=h.dtype)
    for m in range(1, n - 1):
        ok = ez[m - 1] < BIG and ez[m] < BIG and ez[m + 1] < BIG
        sh, se, su, sv = _slopes(eh[m - 1], eh[m], eh[m + 1], eh[m - 1] + ez[m - 1], eh[m] + ez[m],
                                 eh[m + 1] + ez[m + 1], eu[m - 1], eu[m], eu[m + 1], ev[m - 1], ev[m], ev[m + 1],
                                 ok, hdry, zero)
        dz = half * (se - sh)
        lh[m] = eh[m] - half * sh
        rh[m] = eh[m] + half * sh
        lz[m] = ez[m] - dz
        rz[m] = ez[m] + dz
        lu[m] = eu[m] - half * su
        ru[m] = eu[m] + half * su
        lv[m] = ev[m] - half * sv
        rv[m] = ev[m] + half * sv
        src[m - 1] = c.hg * (lh[m] + rh[m]) * (lz[m] - rz[m]) if ez[m] < BIG else zero
    for i in range(1, nx):
        f0, f1, f2, f3 = KF._face(rh[i], ru[i], rv[i], rz[i], lh[i + 1], lu[i + 1], lv[i + 1], lz[i + 1], c)
        fx[0, j, i] = f0
        fx[1, j, i] = f1
        fx[2, j, i] = f2
        fx[3, j, i] = f3
    f0, f1, f2, f3 = KF._edge_face(gw, j, lh[1], lu[1], lv[1], lz[1], True, c)
    fx[0, j, 0] = f0
    fx[1, j, 0] = f1
    fx[2, j, 0] = f2
    fx[3, j, 0] = f3
    f0, f1, f2, f3 = KF._edge_face(ge, j, rh[nx], ru[nx], rv[nx], rz[nx], False, c)
    fx[0, j, nx] = f0
    fx[1, j, nx] = f1
    fx[2, j, nx] = f2
    fx[3, j, nx] = f3


@njit(parallel=True, cache=True, error_model="numpy")
def _fluxes(h, hu, hv, g, s, c):
    """All face fluxes of a state (h, hu, hv) into ``s.fx``, ``s.fy`` and the centred bed terms into
    ``s.src``: the y faces as the x faces of the transposed state (the same arithmetic, normal velocity v)."""
    ny, nx = h.shape
    for j in prange(ny):
        _x_faces(h, hu, hv, g.zb, j, s.fx, s.src[0, j], c, g.ghost_w, g.ghost_e)
    ht = h.T
    hut = hu.T
    hvt = hv.T
    zt = g.zb.T
    fyt = s.fy.transpose(0, 2, 1)
    srct = s.src[1].T
    for i in prange(nx):
        _x_faces(ht, hvt, hut, zt, i, fyt, srct[i], c, g.ghost_n, g.ghost_s)


@njit(cache=True, fastmath=FM, error_model="numpy")
def _cell_update(h, hu, hv, phi, fx, fy, src, j, ho, huo, hvo, base_h, base_hu, base_hv, w, c):
    """Row j: (ho, huo, hvo) = w * base + (1 - w) * (U + dt L(U)) on the open cells (h in volume form)."""
    nx = h.shape[1]
    zero = c.zero
    one = c.one
    for i in range(nx):
        p = phi[j, i]
        if p <= zero:
            continue
        dvol = c.dtdy * (fx[0, j, i] - fx[0, j, i + 1]) + c.dtdx * (fy[0, j, i] - fy[0, j + 1, i])
        dmu = c.cx * ((fx[2, j, i] - fx[1, j, i + 1]) + src[0, j, i]) + c.cy * (fy[3, j, i] - fy[3, j + 1, i])
        dmv = c.cx * (fx[3, j, i] - fx[3, j, i + 1]) + c.cy * ((fy[2, j, i] - fy[1, j + 1, i]) + src[1, j, i])
        pa = p * c.area
        v = max(pa * h[j, i] + dvol, zero)  # < 0 by round-off only
        hn = v / pa
        mu = hu[j, i] + dmu / p
        mv = hv[j, i] + dmv / p
        ho[j, i] = w * base_h[j, i] + (one - w) * hn
        huo[j, i] = w * base_hu[j, i] + (one - w) * mu
        hvo[j, i] = w * base_hv[j, i] + (one - w) * mv


@njit(parallel=True, cache=True, error_model="numpy")
def _update(h, hu, hv, g, s, ho, huo, hvo, base_h, base_hu, base_hv, w, c):
    for j in prange(h.shape[0]):
        _cell_update(h, hu, hv, g.phi, s.fx, s.fy, s.src, j, ho, huo, hvo, base_h, base_hu, base_hv, w, c)


@njit(cache=True)
def _edge_volumes(s, c):
    """Volumes (m³) leaving and entering through the grid edges with the fluxes in ``s`` over dt."""
    ny, nx = s.fx.shape[1], s.fx.shape[2] - 1
    v_out = 0.0
    v_in = 0.0
    for j in range(ny):
        v_out, v_in = KF._edge_volume(-c.dtdy * s.fx[0, j, 0], v_out, v_in)
        v_out, v_in = KF._edge_volume(c.dtdy * s.fx[0, j, nx], v_out, v_in)
    for i in range(nx):
        v_out, v_in = KF._edge_volume(-c.dtdx * s.fy[0, 0, i], v_out, v_in)
        v_out, v_in = KF._edge_volume(c.dtdx * s.fy[0, ny, i], v_out, v_in)
    return v_out, v_in


@njit(parallel=True, cache=True, nogil=True, error_model="numpy")
def _sources(g, f, o, c, u, s):
    """Sources, losses, held levels, friction, maxima and CFL rates of every row (the first-order row update
    with no face fluxes)."""
    ny, nx = g.h.shape
    for j in prange(ny):
        KF._update_row(j, g, f, o, c, u, s.zero_x, s.zero_y, s.zero_y, np.empty((4, nx), dtype=g.h.dtype))


@njit(cache=True, nogil=True)
def heun_step(g, f, o, c, u, s, p):
    """One second-order step (coefficients ``c``) of the state in ``g`` (see the module docstring)."""
    half = c.half
    zero = c.zero
    # stage 1: U1 = U + dt L(U)
    KF.fill_ghosts(g, p)
    _fluxes(g.h, g.hu, g.hv, g, s, c)
    out1, in1 = _edge_volumes(s, c)
    if c.store:
        g.fx[...] = s.fx[0]
        g.fy[...] = s.fy[0]
    _update(g.h, g.hu, g.hv, g, s, s.h1, s.hu1, s.hv1, g.h, g.hu, g.hv, zero, c)
    # stage 2: U^{n+1} = (U + U1 + dt L(U1)) / 2
    g1 = KF.FVGrid(h=s.h1, hu=s.hu1, hv=s.hv1, zb=g.zb, n2=g.n2, phi=g.phi, fx=g.fx, fy=g.fy, cols=g.cols,
                   ekind=g.ekind, evalue=g.evalue, ghost_w=g.ghost_w, ghost_e=g.ghost_e, ghost_n=g.ghost_n,
                   ghost_s=g.ghost_s)
    KF.fill_ghosts(g1, p)
    _fluxes(s.h1, s.hu1, s.hv1, g1, s, c)
    out2, in2 = _edge_volumes(s, c)
    if c.store:
        g.fx[...] = half * (g.fx + s.fx[0])
        g.fy[...] = half * (g.fy + s.fy[0])
    _update(s.h1, s.hu1, s.hv1, g1, s, g.h, g.hu, g.hv, g.h, g.hu, g.hv, half, c)
    # sources and friction over dt, then the edges' volume of the two stages
    _sources(g, f, o, c, u, s)
    o.acc[0, ACC_OUTFLOW] += 0.5 * (out1 + out2)
    o.acc[0, ACC_INFLOW] += 0.5 * (in1 + in2)


@njit(cache=True, nogil=True)
def advance(g, s, f, o, p, pl, w, F):
    """As :func:`physics._kernels.flood_fv.advance`, each step :func:`heun_step` (``p.cfl`` already halved)."""
    u = K.uniform_rows(g, f)
    t = w.t
    rate = w.h_max
    nsteps = 0
    while t < w.t_end - 1e-9 and (nsteps == 0 or t < w.t_next) and nsteps < w.max_steps:
        dt = min(KF.cfl_dt(rate, t, f, p), w.t_end - t, max(w.t_next - t, 1e-6))
        step = K.begin_step(t, 0.0, K.Window(t=t, t_end=t + dt, t_next=w.t_next, h_max=0.0, max_steps=1), f, pl)
        last = (step.t_new >= w.t_end - 1e-9) or (step.t_new >= w.t_next) or (nsteps + 1 >= w.max_steps)
        heun_step(g, f, o, KF.coefficients(step.dt, step.t_new, last, p, F), u, s, p)
        rate = o.acc[:, ACC_ROW_MAX].max()
        t = step.t_new
        nsteps += 1
    return t, nsteps, rate
