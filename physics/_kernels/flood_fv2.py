"""Second order of the finite-volume flood scheme: MUSCL in space, Heun (SSP-RK2) in time (numba, pure).

Space: per cell and direction, minmod slopes (van Leer's MUSCL with the
minmod limiter) of the depth h, the surface eta = h + z and the velocities
u, v; a cell's face values are q ± s/2 and its face bed z = eta - h. A slope
is 0 next to a blocked cell or an edge, and the velocity slopes are 0 where
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

Edges: first order (the edge cell's own state against its ghost, :func:`physics._kernels.flood_fv.fill_ghosts`).
Not fused: per stage one pass over the x faces, one over the y faces (into
``Fx``, ``Fy``) and one over the cells, each parallel over rows.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit, prange

from physics._kernels import flood as K
from physics._kernels import flood_fv as KF
from physics._kernels.flood import ACC_OUTFLOW, ACC_ROW_MAX, BIG

FM = KF.FM


class Stage(NamedTuple):
    """Work arrays of the second-order step (allocated once by the model)."""

    h1: np.ndarray  # (ny, nx) first Heun stage
    hu1: np.ndarray
    hv1: np.ndarray
    fx: np.ndarray  # (4, ny, nx+1): x-face fluxes (mass, normal momentum for L, for R, tangential)
    fy: np.ndarray  # (4, ny+1, nx)
    zero_x: np.ndarray  # (4, nx+1) zeros: the face row the source update reads
    zero_y: np.ndarray  # (4, nx) zeros


@njit(inline="always")
def _minmod(a, b, zero):
    return (min(a, b) if a > zero else max(a, b)) if a * b > zero else zero


@njit(inline="always", fastmath=FM)
def _face_values(ha, hc, hb, ea, ec, eb, ua, uc, ub, va, vc, vb, ok_a, ok_b, hdry, half, zero):
    """A cell's (c) reconstructed values at its low (towards a) and high (towards b) faces:
    (h_lo, eta_lo, u_lo, v_lo, h_hi, eta_hi, u_hi, v_hi)."""
    ok = ok_a and ok_b
    sh = _minmod(hc - ha, hb - hc, zero) if ok else zero
    se = _minmod(ec - ea, eb - ec, zero) if ok else zero
    wet = ok and ha > hdry and hc > hdry and hb > hdry
    su = _minmod(uc - ua, ub - uc, zero) if wet else zero
    sv = _minmod(vc - va, vb - vc, zero) if wet else zero
    return (hc - half * sh, ec - half * se, uc - half * su, vc - half * sv,
            hc + half * sh, ec + half * se, uc + half * su, vc + half * sv)


@njit(cache=True, fastmath=FM, error_model="numpy")
def _x_faces(h, hu, hv, zb, j, fx, c, gw, ge):
    """x faces of row j (second order inside, first order at the edges) into ``fx[:, j]``."""
    nx = h.shape[1]
    hdry = c.h_dry
    zero = c.zero
    half = c.half
    hr = h[j]
    zr = zb[j]
    inv = np.empty(nx, dtype=h.dtype)
    for i in range(nx):
        inv[i] = c.one / hr[i] if hr[i] > hdry else zero
    for i in range(1, nx):
        # cells L = i-1 (neighbours i-2, i) and R = i (neighbours i-1, i+1)
        la = i - 2
        rb = i + 1
        okl = zr[i - 1] < BIG and zr[i] < BIG and la >= 0 and zr[max(la, 0)] < BIG
        okr = zr[i - 1] < BIG and zr[i] < BIG and rb < nx and zr[min(rb, nx - 1)] < BIG
        a = max(la, 0)
        b = min(rb, nx - 1)
        _, _, _, _, hl, el, ul, vl = _face_values(
            hr[a], hr[i - 1], hr[i], hr[a] + zr[a], hr[i - 1] + zr[i - 1], hr[i] + zr[i],
            hu[j, a] * inv[a], hu[j, i - 1] * inv[i - 1], hu[j, i] * inv[i],
            hv[j, a] * inv[a], hv[j, i - 1] * inv[i - 1], hv[j, i] * inv[i], okl, True, hdry, half, zero)
        hr_, er, ur, vr, _, _, _, _ = _face_values(
            hr[i - 1], hr[i], hr[b], hr[i - 1] + zr[i - 1], hr[i] + zr[i], hr[b] + zr[b],
            hu[j, i - 1] * inv[i - 1], hu[j, i] * inv[i], hu[j, b] * inv[b],
            hv[j, i - 1] * inv[i - 1], hv[j, i] * inv[i], hv[j, b] * inv[b], True, okr, hdry, half, zero)
        zl = el - hl if okl else zr[i - 1]
        zrr = er - hr_ if okr else zr[i]
        f0, f1, f2, f3 = KF._face(hl, ul, vl, zl, hr_, ur, vr, zrr, c)
        fx[0, j, i] = f0
        fx[1, j, i] = f1
        fx[2, j, i] = f2
        fx[3, j, i] = f3
    f0, f1, f2, f3 = KF._edge_face(gw, j, hr[0], hu[j, 0] * inv[0], hv[j, 0] * inv[0], zr[0], True, c)
    fx[0, j, 0] = f0
    fx[1, j, 0] = f1
    fx[2, j, 0] = f2
    fx[3, j, 0] = f3
    f0, f1, f2, f3 = KF._edge_face(ge, j, hr[nx - 1], hu[j, nx - 1] * inv[nx - 1], hv[j, nx - 1] * inv[nx - 1],
                                   zr[nx - 1], False, c)
    fx[0, j, nx] = f0
    fx[1, j, nx] = f1
    fx[2, j, nx] = f2
    fx[3, j, nx] = f3


@njit(parallel=True, cache=True, error_model="numpy")
def _fluxes(h, hu, hv, g, s, c):
    """All face fluxes of a state (h, hu, hv) into ``s.fx``, ``s.fy``: the y faces as the x faces of the
    transposed state (the same arithmetic, normal velocity v)."""
    ny, nx = h.shape
    for j in prange(ny):
        _x_faces(h, hu, hv, g.zb, j, s.fx, c, g.ghost_w, g.ghost_e)
    ht = h.T
    hut = hu.T
    hvt = hv.T
    zt = g.zb.T
    fyt = s.fy.transpose(0, 2, 1)
    for i in prange(nx):
        _x_faces(ht, hvt, hut, zt, i, fyt, c, g.ghost_n, g.ghost_s)


@njit(cache=True, fastmath=FM, error_model="numpy")
def _cell_update(h, hu, hv, zb, phi, fx, fy, j, ho, huo, hvo, base_h, base_hu, base_hv, w, c):
    """Row j: (ho, huo, hvo) = w * base + (1 - w) * (U + dt L(U)) on the open cells (h in volume form)."""
    j = np.int64(j)  # (a prange index may come in unsigned: j - 1 would turn float)
    nx = h.shape[1]
    zero = c.zero
    one = c.one
    half = c.half
    hdry = c.h_dry
    for i in range(nx):
        p = phi[j, i]
        if p <= zero:
            continue
        hc = h[j, i]
        # centred bed term of the cell in x and y (its own reconstruction, as the faces saw it)
        srcx = zero
        srcy = zero
        for d in range(2):
            if d == 0:
                ia, ib, ja, jb = np.int64(i - 1), np.int64(i + 1), j, j
                n = nx
                k = i
                q_n = hu
                q_t = hv
            else:
                ia, ib, ja, jb = np.int64(i), np.int64(i), j - 1, j + 1
                n = h.shape[0]
                k = j
                q_n = hv
                q_t = hu
            if k >= 1 and k <= n - 2 and zb[ja, ia] < BIG and zb[jb, ib] < BIG:
                ha = h[ja, ia]
                hb = h[jb, ib]
                inva = one / ha if ha > hdry else zero
                invc = one / hc if hc > hdry else zero
                invb = one / hb if hb > hdry else zero
                hlo, elo, _, _, hhi, ehi, _, _ = _face_values(
                    ha, hc, hb, ha + zb[ja, ia], hc + zb[j, i], hb + zb[jb, ib],
                    q_n[ja, ia] * inva, q_n[j, i] * invc, q_n[jb, ib] * invb,
                    q_t[ja, ia] * inva, q_t[j, i] * invc, q_t[jb, ib] * invb, True, True, hdry, half, zero)
                s_ = c.hg * (hlo + hhi) * ((elo - hlo) - (ehi - hhi))
                if d == 0:
                    srcx = s_
                else:
                    srcy = s_
        dvol = c.dtdy * (fx[0, j, i] - fx[0, j, i + 1]) + c.dtdx * (fy[0, j, i] - fy[0, j + 1, i])
        dmu = c.cx * ((fx[2, j, i] - fx[1, j, i + 1]) + srcx) + c.cy * (fy[3, j, i] - fy[3, j + 1, i])
        dmv = c.cx * (fx[3, j, i] - fx[3, j, i + 1]) + c.cy * ((fy[2, j, i] - fy[1, j + 1, i]) + srcy)
        pa = p * c.area
        v = max(pa * hc + dvol, zero)  # < 0 by round-off only
        hn = v / pa
        mu = hu[j, i] + dmu / p
        mv = hv[j, i] + dmv / p
        ho[j, i] = w * base_h[j, i] + (one - w) * hn
        huo[j, i] = w * base_hu[j, i] + (one - w) * mu
        hvo[j, i] = w * base_hv[j, i] + (one - w) * mv


@njit(parallel=True, cache=True, error_model="numpy")
def _update(h, hu, hv, g, s, ho, huo, hvo, base_h, base_hu, base_hv, w, c):
    for j in prange(h.shape[0]):
        _cell_update(h, hu, hv, g.zb, g.phi, s.fx, s.fy, j, ho, huo, hvo, base_h, base_hu, base_hv, w, c)


@njit(cache=True)
def _edge_outflow(s, c):
    """Volume (m³) through the grid edges of the fluxes in ``s`` over dt."""
    ny, nx = s.fx.shape[1], s.fx.shape[2] - 1
    v = 0.0
    for j in range(ny):
        v += c.dtdy * (s.fx[0, j, nx] - s.fx[0, j, 0])
    for i in range(nx):
        v += c.dtdx * (s.fy[0, ny, i] - s.fy[0, 0, i])
    return v


@njit(parallel=True, cache=True, nogil=True, error_model="numpy")
def _sources(g, f, o, c, u, s):
    """Sources, losses, held levels, friction, maxima and CFL rates of every row (the first-order row update
    with no face fluxes)."""
    ny = g.h.shape[0]
    for j in prange(ny):
        KF._update_row(j, g, f, o, c, u, s.zero_x, s.zero_y, s.zero_y)


@njit(cache=True, nogil=True)
def heun_step(g, f, o, c, u, s, p):
    """One second-order step (coefficients ``c``) of the state in ``g`` (see the module docstring)."""
    half = c.half
    zero = c.zero
    # stage 1: U1 = U + dt L(U)
    KF.fill_ghosts(g, p)
    _fluxes(g.h, g.hu, g.hv, g, s, c)
    out1 = _edge_outflow(s, c)
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
    out2 = _edge_outflow(s, c)
    if c.store:
        g.fx[...] = half * (g.fx + s.fx[0])
        g.fy[...] = half * (g.fy + s.fy[0])
    _update(s.h1, s.hu1, s.hv1, g1, s, g.h, g.hu, g.hv, g.h, g.hu, g.hv, half, c)
    # sources and friction over dt, then the edges' volume of the two stages
    _sources(g, f, o, c, u, s)
    o.acc[0, ACC_OUTFLOW] += 0.5 * (out1 + out2)


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
