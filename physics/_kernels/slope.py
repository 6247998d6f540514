"""Numba kernels of the transient infinite-slope factor of safety (arrays in, arrays out).

Pressure head (Iverson 2000, WRR 36:1897, eqs. for the response to rain of
duration T, generalised to a piecewise-constant rain history by superposing
Heaviside steps of intensity change, as TRIGRS does: Baum, Savage & Godt
2008, USGS OFR 2008-1159, the "general rainfall history" form of the
infinite-depth solution)::

    psi(Z, t) = (Z - d) * beta + Z * sum_k (dI_k / Kz) * R(t*_k)
    beta      = cos^2(delta) - I_LT / Kz        (I_LT: long-term steady infiltration)
    t*_k      = (t - t_k) * D_hat / Z^2         (R = 0 for t*_k <= 0)
    R(t*)     = sqrt(t*/pi) * exp(-1/t*) - erfc(1/sqrt(t*))
    dI_k      = I_k - I_{k-1}                   (I_{-1} = 0; a final step -I_last
                                                 at the end of the series)

Infiltration at each interval is min(rain, Kz) (Iverson's solution requires
Iz/Kz <= 1; the excess runs off). ``D_hat`` is given per cell by the caller:
Iverson's form, the one in ``docs/references.md``, is D_hat = 4 D0 cos^2(delta)
(:func:`iverson_dhat`). TRIGRS writes the same solution as
2 sqrt(D1 t) ierfc(Z / (2 sqrt(D1 t))), which equals Z R(t*) for D_hat = 4 D1,
with D1 = D0 / cos^2(delta) (Baum et al. 2008; the TRIGRS 2.0 Fortran,
subroutine ``iverson``, uses Z^2 / (4 D0 / cos^2 delta) as the time scale):
:func:`trigrs_dhat`. The two differ by cos^4(delta) (0.56 at 30 degrees); the
kernel takes either. Also checked against that source: TRIGRS applies the
same step superposition (R(t - t_n) - R(t - t_{n+1}) per interval, weighted by
I_n/Ks) and the same cap psi <= Z beta; its default beta is
cos(delta) (cos(delta) - I_LT/Ks) where Iverson's is cos^2(delta) - I_LT/Kz
(this kernel: Iverson's; identical for I_LT = 0). Not done here, unlike
TRIGRS: clipping negative frictional strength (FS >= c' term), capping FS at
10 on gentle slopes, the finite-depth (Savage) and unsaturated-zone
solutions, and the water-table rise under upward seepage.

Pressure cap: psi <= Z * beta (Iverson 2000 and TRIGRS limit the computed
head to the hydrostatic head of a water table at the surface with
slope-parallel seepage; the linear solution exceeds it once the soil above Z
would be over-saturated).

Factor of safety (infinite slope; Taylor 1948; Iverson 2000)::

    FS(Z, t) = tan(phi') / tan(delta)
               + (c' - psi * gamma_w * tan(phi')) / (gamma_s * Z * sin(delta) * cos(delta))

Units are SI: Z, d, soil depth in m (vertical), t in s, rain and Kz in m/s,
D0 and D_hat in m^2/s, c' in Pa, gamma in N/m^3, angles in radians.

Layout
------
``params`` is (N_PARAMS, n_cells) float64 with rows named by the ``P_*``
constants (one named row per parameter instead of a long positional list).
``rain`` is (n_intervals, n_cells) or (n_intervals, 1) (broadcast over cells),
intensity in m/s over ``t_edges[k] <= t < t_edges[k + 1]``; ``t_edges`` has
n_intervals + 1 increasing times (s). Evaluation times ``t_eval`` (n_eval,)
are absolute times on the same clock. The depth profile has ``n_depths``
levels Z_j = soil_depth * (j + 1) / n_depths, j = 0..n_depths-1.
"""

from __future__ import annotations

import math

import numba
import numpy as np

P_SLOPE = 0  # delta, slope angle (rad)
P_COHESION = 1  # c', effective cohesion (Pa)
P_PHI = 2  # phi', effective friction angle (rad)
P_GAMMA_S = 3  # gamma_s, soil unit weight (N/m^3)
P_KZ = 4  # Kz, vertical saturated hydraulic conductivity (m/s)
P_DHAT = 5  # D_hat, effective diffusivity of t* = t D_hat / Z^2 (m^2/s)
P_WATER_TABLE = 6  # d, initial (steady) water-table depth (m)
P_I_LT = 7  # I_LT, long-term steady infiltration rate (m/s)
P_SOIL_DEPTH = 8  # soil depth, bottom of the depth profile (m)
N_PARAMS = 9

GAMMA_W = 9810.0  # unit weight of water (N/m^3), rho_w g = 1000 * 9.81


def iverson_dhat(d0, slope):
    """Iverson's (2000) D_hat = 4 D0 cos^2(delta) (m^2/s), for ``params[P_DHAT]``."""
    return 4.0 * d0 * np.cos(slope) ** 2


def trigrs_dhat(d0, slope):
    """TRIGRS's D_hat = 4 D1 = 4 D0 / cos^2(delta) (m^2/s), for ``params[P_DHAT]``."""
    return 4.0 * d0 / np.cos(slope) ** 2


@numba.njit(cache=True, nogil=True)
def response(tstar):
    """Iverson's R(t*) = sqrt(t*/pi) exp(-1/t*) - erfc(1/sqrt(t*)); 0 for t* <= 0."""
    if tstar <= 0.0:
        return 0.0
    return math.sqrt(tstar / math.pi) * math.exp(-1.0 / tstar) - math.erfc(1.0 / math.sqrt(tstar))


@numba.njit(cache=True, nogil=True)
def _psi(z, t, c, params, rain, t_edges):
    """Pressure head (m) at vertical depth z (m), time t (s), cell c (formula above)."""
    delta = params[P_SLOPE, c]
    kz = params[P_KZ, c]
    dhat = params[P_DHAT, c]
    beta = math.cos(delta) ** 2 - params[P_I_LT, c] / kz
    col = np.int64(0)
    if rain.shape[1] > 1:
        col = np.int64(c)
    s = 0.0
    prev = 0.0
    n = rain.shape[0]
    for k in range(n + 1):
        tk = t_edges[k]
        if tk >= t:
            break
        cur = 0.0
        if k < n:
            cur = rain[k, col]
            if cur > kz:
                cur = kz
        di = cur - prev
        prev = cur
        if di != 0.0:
            s += di * response((t - tk) * dhat / (z * z))
    psi = (z - params[P_WATER_TABLE, c]) * beta + z * s / kz
    return min(psi, z * beta)


@numba.njit(cache=True, nogil=True)
def _fs(z, psi, c, params, gamma_w):
    delta = params[P_SLOPE, c]
    tphi = math.tan(params[P_PHI, c])
    return tphi / math.tan(delta) + (params[P_COHESION, c] - psi * gamma_w * tphi) / (
        params[P_GAMMA_S, c] * z * math.sin(delta) * math.cos(delta)
    )


@numba.njit(cache=True, nogil=True, parallel=True)
def pressure_head(params, rain, t_edges, t_eval, n_depths, out):
    """Fill ``out`` (n_eval, n_depths, n_cells) with psi(Z_j, t_i) (m) and return it."""
    n_cells = params.shape[1]
    for c in numba.prange(n_cells):
        h = params[P_SOIL_DEPTH, c]
        for j in range(n_depths):
            z = h * (j + 1) / n_depths
            for i in range(t_eval.shape[0]):
                out[i, j, c] = _psi(z, t_eval[i], c, params, rain, t_edges)
    return out


@numba.njit(cache=True, nogil=True, parallel=True)
def factor_of_safety(params, rain, t_edges, t_eval, n_depths, gamma_w, fs_min, z_min, t_fail, fs_t):
    """Minimum FS over depths and times per cell, its depth, first time FS < 1.

    Fills ``fs_min`` (-), ``z_min`` (m) and ``t_fail`` (s; NaN if FS >= 1 at
    every evaluated depth and time), each (n_cells,). If ``fs_t`` has shape
    (n_eval, n_cells) it is filled with FS(t) at the depth of the minimum;
    pass a (0, n_cells) array to skip it. Ties keep the shallowest depth and
    earliest time. Returns ``fs_min``.
    """
    n_cells = params.shape[1]
    n_eval = t_eval.shape[0]
    for c in numba.prange(n_cells):
        h = params[P_SOIL_DEPTH, c]
        best = np.inf
        zbest = np.nan
        tf = np.nan
        for i in range(n_eval):
            for j in range(n_depths):
                z = h * (j + 1) / n_depths
                f = _fs(z, _psi(z, t_eval[i], c, params, rain, t_edges), c, params, gamma_w)
                if f < best or (f == best and z < zbest):
                    best = f
                    zbest = z
                if f < 1.0 and math.isnan(tf):
                    tf = t_eval[i]
        fs_min[c] = best
        z_min[c] = zbest
        t_fail[c] = tf
        if fs_t.shape[0] == n_eval:
            for i in range(n_eval):
                fs_t[i, c] = _fs(
                    zbest, _psi(zbest, t_eval[i], c, params, rain, t_edges), c, params, gamma_w
                )
    return fs_min
