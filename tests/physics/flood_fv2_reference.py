"""Pure-numpy reference of one second-order step of the finite-volume flood scheme (tests only; closed edges).

Written from the docstring of :mod:`physics._kernels.flood_fv2` and vectorised over the grid; it shares
no code with the numba kernels (the face flux, the cells' update and the sources are those of the
first-order reference, :mod:`flood_fv_reference`). Per direction and cell, with the edge cells' outer
neighbour the mirror ghost (h, -u_n, u_t, z) of a closed edge:

    minmod slopes of h, eta = h + z and the velocities u_n, u_t (0 next to a blocked cell; the velocity
    slopes 0 unless the cell and both neighbours are wet, h > h_dry), face values q -/+ s/2 and face beds
    z -/+ (s_eta - s_h)/2; the face flux F(right value of the left cell, left value of the right cell), a
    closed edge face against the mirror of the edge cell's face value; each cell's normal momentum gets
    the centred bed term g/2 (h_w + h_e)(z_w - z_e) (Audusse et al. 2004 §3).

Time: Heun, U1 = U + dt L(U), U^{n+1} = (U + U1 + dt L(U1)) / 2, then the first-order sources and
implicit friction once over dt with no face fluxes.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

# tests run with --import-mode=importlib: load the sibling first-order reference by path
_spec = importlib.util.spec_from_file_location("flood_fv_reference", Path(__file__).with_name("flood_fv_reference.py"))
R = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(R)
G, BIG, State = R.G, R.BIG, R.State


def _minmod(a, b):
    return np.where(a * b > 0, np.where(a > 0, np.minimum(a, b), np.maximum(a, b)), 0.0)


def _x_faces(h, un, ut, z, h_dry):
    """Second-order x-face fluxes (4, ny, nx+1) and the cells' centred bed terms (ny, nx) of a state whose
    normal velocity along x is ``un``, with closed west and east edges."""
    # the row extended by the mirror ghosts
    he = np.column_stack([h[:, :1], h, h[:, -1:]])
    ue = np.column_stack([-un[:, :1], un, -un[:, -1:]])
    te = np.column_stack([ut[:, :1], ut, ut[:, -1:]])
    ze = np.column_stack([z[:, :1], z, z[:, -1:]])
    ee = he + ze
    a, c, b = slice(None, -2), slice(1, -1), slice(2, None)
    ok = (ze[:, a] < BIG) & (ze[:, c] < BIG) & (ze[:, b] < BIG)
    wet = ok & (he[:, a] > h_dry) & (he[:, c] > h_dry) & (he[:, b] > h_dry)
    sh = np.where(ok, _minmod(he[:, c] - he[:, a], he[:, b] - he[:, c]), 0.0)
    se = np.where(ok, _minmod(ee[:, c] - ee[:, a], ee[:, b] - ee[:, c]), 0.0)
    su = np.where(wet, _minmod(ue[:, c] - ue[:, a], ue[:, b] - ue[:, c]), 0.0)
    sv = np.where(wet, _minmod(te[:, c] - te[:, a], te[:, b] - te[:, c]), 0.0)
    dz = 0.5 * (se - sh)
    lh, rh = h - 0.5 * sh, h + 0.5 * sh
    lz, rz = z - dz, z + dz
    lu, ru = un - 0.5 * su, un + 0.5 * su
    lv, rv = ut - 0.5 * sv, ut + 0.5 * sv
    src = np.where(z < BIG, 0.5 * G * (lh + rh) * (lz - rz), 0.0)
    # faces: the west edge's mirror, the inner faces, the east edge's mirror
    left = [np.column_stack([lh[:, :1], rh]), np.column_stack([-lu[:, :1], ru]),
            np.column_stack([lv[:, :1], rv]), np.column_stack([lz[:, :1], rz])]
    right = [np.column_stack([lh, rh[:, -1:]]), np.column_stack([lu, -ru[:, -1:]]),
             np.column_stack([lv, rv[:, -1:]]), np.column_stack([lz, rz[:, -1:]])]
    return np.array(R._hll(*left, *right)), src


def _rate(s: State, z, phi, dx, dy, dt, h_dry):
    """L(U) dt applied: the state after the flux and bed terms of one Euler stage (no sources)."""
    wet = s.h > h_dry
    inv = np.where(wet, 1.0 / np.where(wet, s.h, 1.0), 0.0)
    u, v = s.hu * inv, s.hv * inv
    fx, srcx = _x_faces(s.h, u, v, z, h_dry)
    fyt, srcy = _x_faces(s.h.T, v.T, u.T, z.T, h_dry)
    fy = fyt.transpose(0, 2, 1)
    opn = phi > 0
    pa = phi * dx * dy
    dvol = dt * dy * (fx[0][:, :-1] - fx[0][:, 1:]) + dt * dx * (fy[0][:-1] - fy[0][1:])
    dmu = dt / dx * ((fx[2][:, :-1] - fx[1][:, 1:]) + srcx) + dt / dy * (fy[3][:-1] - fy[3][1:])
    dmv = dt / dx * (fx[3][:, :-1] - fx[3][:, 1:]) + dt / dy * ((fy[2][:-1] - fy[1][1:]) + srcy.T)
    p = np.where(opn, phi, 1.0)
    hn = np.maximum(pa * s.h + dvol, 0.0) / np.where(opn, pa, 1.0)
    return State(h=np.where(opn, hn, s.h), hu=np.where(opn, s.hu + dmu / p, s.hu),
                 hv=np.where(opn, s.hv + dmv / p, s.hv))


def heun_step(s: State, z, phi, n2, *, dx, dy, dt, h_dry=1e-5, rain=0.0, infil_rate=0.0,
              drain_rate=0.0) -> tuple[State, dict]:
    """One second-order step with closed edges; ``z`` the bed with blocked cells at BIG. Returns the new state
    and the sources' volumes."""
    s1 = _rate(s, z, phi, dx, dy, dt, h_dry)
    s2 = _rate(s1, z, phi, dx, dy, dt, h_dry)
    mid = State(h=0.5 * s.h + 0.5 * s2.h, hu=0.5 * s.hu + 0.5 * s2.hu, hv=0.5 * s.hv + 0.5 * s2.hv)
    ny, nx = s.h.shape
    zero_x, zero_y = np.zeros((4, ny, nx + 1)), np.zeros((4, ny + 1, nx))
    return R.update(mid, zero_x, zero_y, phi, n2, dx=dx, dy=dy, dt=dt, h_dry=h_dry, rain=rain,
                    infil_rate=infil_rate, drain_rate=drain_rate)
