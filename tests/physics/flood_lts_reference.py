"""Pure-numpy reference of one coarse step of local time stepping (tests only).

Written from the scheme in the docstring of :mod:`physics._kernels.flood_lts`
on top of the numpy reference of the local-inertial face arithmetic
(:mod:`tests.physics.flood_reference`), whole-grid arrays, no tiles: each
cell has a level k (dt_k = dt_0 / 2^k), each face the larger level of its
two cells; at sub-step s (of 2^K) the faces of level >= kmin(s) get new
discharges with their own dt, every cell's outflow over its active faces is
limited to its storage, the limited fluxes move their volumes, and the cells
of level >= kmin(s) take their rain over their own dt. Closed edges, rain
only (the forcings are the global reference's, checked elsewhere).
"""

from __future__ import annotations

import numpy as np

from tests.physics.flood_reference import fluxes, limit


def kmin(s: int, kmax: int) -> int:
    """Coarsest level active at sub-step ``s``."""
    if s == 0:
        return 0
    tz = (s & -s).bit_length() - 1
    return kmax - tz


def coarse_step(h, qx, qy, z, n2, phi, level, dt0, dx, dy, *, rain=0.0, theta=0.7, h_dry=1e-5):
    """Advance h, qx, qy (float64, in place) by one coarse step dt0 with cell levels ``level`` (ny, nx)."""
    ny, nx = h.shape
    kmax = int(level.max())
    lx = np.zeros((ny, nx + 1), dtype=int)
    lx[:, 1:-1] = np.maximum(level[:, :-1], level[:, 1:])
    lx[:, 0], lx[:, -1] = level[:, 0], level[:, -1]
    ly = np.zeros((ny + 1, nx), dtype=int)
    ly[1:-1] = np.maximum(level[:-1], level[1:])
    ly[0], ly[-1] = level[0], level[-1]
    bc = (0, 0, 0, 0)
    area = dx * dy
    for s in range(2**kmax):
        km = kmin(s, kmax)
        qxs = np.zeros_like(qx)
        qys = np.zeros_like(qy)
        for k in range(km, kmax + 1):
            fx, fy = fluxes(h, z, n2, phi, qx, qy, dt0 / 2**k, dx, dy, theta, h_dry, bc, 0.0)
            qxs = np.where(lx == k, fx, qxs)
            qys = np.where(ly == k, fy, qys)
        dtx = np.where(lx >= km, dt0 / 2.0**lx, 0.0)
        dty = np.where(ly >= km, dt0 / 2.0**ly, 0.0)
        out = (dy * (dtx[:, 1:] * np.maximum(qxs[:, 1:], 0) - dtx[:, :-1] * np.minimum(qxs[:, :-1], 0))
               + dx * (dty[1:] * np.maximum(qys[1:], 0) - dty[:-1] * np.minimum(qys[:-1], 0)))
        vol = phi * area * h
        with np.errstate(divide="ignore", invalid="ignore"):
            f = np.where(out > vol, vol / out, 1.0)
        qxl, qyl = limit(qxs, qys, f)
        dvol = (dy * (dtx[:, :-1] * qxl[:, :-1] - dtx[:, 1:] * qxl[:, 1:])
                + dx * (dty[:-1] * qyl[:-1] - dty[1:] * qyl[1:]))
        dtc = np.where(level >= km, dt0 / 2.0**level, 0.0)
        open_ = phi > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            hn = np.maximum(phi * area * h + dvol + rain * dtc * area, 0.0) / np.where(open_, phi * area, 1.0)
        h[:] = np.where(open_, hn, h)
        qx[:] = np.where(lx >= km, qxl, qx)
        qy[:] = np.where(ly >= km, qyl, qy)
