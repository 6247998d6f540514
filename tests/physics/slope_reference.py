"""Pure-numpy reference of the transient infinite-slope kernels (tests only).

Written from the formulas in the docstring of :mod:`physics._kernels.slope`
(Iverson 2000, WRR 36:1897; superposition of rain steps as in TRIGRS, Baum
et al. 2008, USGS OFR 2008-1159), vectorised over times x depths x cells and
sharing no code with the numba kernels:

    psi = (Z - d) beta + (Z / Kz) sum_k dI_k R((t - t_k) D_hat / Z^2),  psi <= Z beta
    FS  = tan phi' / tan delta + (c' - psi gamma_w tan phi') / (gamma_s Z sin delta cos delta)
"""

from __future__ import annotations

import numpy as np
from scipy.special import erfc

from physics._kernels.slope import (
    P_COHESION,
    P_DHAT,
    P_GAMMA_S,
    P_I_LT,
    P_KZ,
    P_PHI,
    P_SLOPE,
    P_SOIL_DEPTH,
    P_WATER_TABLE,
)


def response(tstar):
    """R(t*) elementwise, 0 where t* <= 0."""
    tstar = np.asarray(tstar, dtype=float)
    pos = tstar > 0
    ts = np.where(pos, tstar, 1.0)
    r = np.sqrt(ts / np.pi) * np.exp(-1.0 / ts) - erfc(1.0 / np.sqrt(ts))
    return np.where(pos, r, 0.0)


def depths(params, n_depths):
    """(n_depths, n_cells) vertical depths Z_j = soil_depth (j + 1) / n_depths."""
    j = np.arange(1, n_depths + 1, dtype=float)[:, None]
    return params[P_SOIL_DEPTH][None, :] * j / n_depths


def pressure_head(params, rain, t_edges, t_eval, n_depths):
    """psi (n_eval, n_depths, n_cells) in m."""
    n_cells = params.shape[1]
    kz = params[P_KZ]
    beta = np.cos(params[P_SLOPE]) ** 2 - params[P_I_LT] / kz
    infil = np.minimum(np.broadcast_to(rain, (rain.shape[0], n_cells)), kz)  # (n, cells)
    steps = np.diff(np.vstack([np.zeros((1, n_cells)), infil, np.zeros((1, n_cells))]), axis=0)
    z = depths(params, n_depths)[None, :, :, None]  # (1, J, C, 1)
    dt = np.asarray(t_eval)[:, None] - np.asarray(t_edges)[None, :]  # (E, K)
    dt = dt[:, None, None, :]  # (E, 1, 1, K)
    tstar = np.where(dt > 0, dt * params[P_DHAT][None, None, :, None] / z**2, 0.0)
    s = np.sum(steps.T[None, None, :, :] * response(tstar), axis=-1)  # (E, J, C)
    zz = z[..., 0]
    psi = (zz - params[P_WATER_TABLE]) * beta + zz * s / kz
    return np.minimum(psi, zz * beta)


def factor_of_safety(params, rain, t_edges, t_eval, n_depths, gamma_w):
    """(fs_min, z_min, t_fail, fs_t) as the kernel defines them."""
    psi = pressure_head(params, rain, t_edges, t_eval, n_depths)
    z = depths(params, n_depths)[None]
    delta = params[P_SLOPE]
    tphi = np.tan(params[P_PHI])
    fs = tphi / np.tan(delta) + (params[P_COHESION] - psi * gamma_w * tphi) / (
        params[P_GAMMA_S] * z * np.sin(delta) * np.cos(delta)
    )  # (E, J, C)
    per_depth = fs.min(axis=0)  # (J, C)
    jmin = per_depth.argmin(axis=0)  # first = shallowest on ties
    cells = np.arange(params.shape[1])
    fs_min = per_depth[jmin, cells]
    z_min = z[0, jmin, cells]
    failed = (fs < 1.0).any(axis=1)  # (E, C)
    first = failed.argmax(axis=0)
    t_fail = np.where(failed.any(axis=0), np.asarray(t_eval)[first], np.nan)
    fs_t = fs[:, jmin, cells]
    return fs_min, z_min, t_fail, fs_t
