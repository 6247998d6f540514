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

Fast evaluation (what the kernels do; results equal the direct sum above
to round-off)
-------------------------------------------------------------------------
* **Distinct lags.** R((t_i - t_k) D_hat / Z^2) depends on the cell and depth
  only through D_hat / Z^2, and on the times only through the lag
  t_i - t_k. :func:`lag_table` lists the distinct positive lags once per
  call (hourly outputs over 10-min rain: 144 lags instead of ~1,800
  (t_i, t_k) pairs); per cell and depth each R is computed at most once,
  lazily, and only for rain steps with dI_k != 0 (rain above Kz infiltrates
  at Kz, so a long storm above Kz is two steps). Off a lattice the lags are
  simply all distinct and the work is that of the direct sum. The missing R
  values of a sum are computed first and the sum is then a plain
  multiply-add loop; a depth that needs most lags fills its whole row at
  once. Cells are processed in blocks of 64 per parallel task, each with
  its own scratch rows.
* **R below t* = 1/40 is 0.** R(1/40) < 5e-21 (R ~ exp(-1/t*) t*^(3/2) /
  (2 sqrt(pi)) as t* -> 0, from A&S 7.1.23): below the round-off of any head.
* **Exact bounds (branch and bound, no approximation).** With infiltration
  I_k >= 0, psi(Z, t) <= min(Z beta, (Z - d) beta + Z (I_max / Kz)
  R((t - t_1) D_hat / Z^2)) (t_1: first rain step; the superposition is
  sum_k I_k [R(t - t_k) - R(t - t_{k+1})] with non-negative brackets, R
  increasing, telescoping to R(t - t_1)), and FS decreases as psi rises
  (0 < delta < 90 deg). So FS(Z, t) >= FS at that bound. A depth, or a
  time at a depth, whose bound is above the running minimum (fs_min) or
  >= 1 (failure) is skipped; the bound rises with t, so times are scanned
  latest first and the scan stops at the first bound above the minimum.
  Every skip leaves a margin of 1e-9 in FS against round-off. fs_min, its
  depth (ties: shallowest), t_fail (first t_eval index with FS < 1 at some
  depth) and fs_t are those of the full evaluation.
* **Outside the model.** A cell with a NaN parameter, a slope >= 90 deg, a
  soil depth or Kz <= 0 gives NaN everywhere; a flat cell (slope <= 0: tan
  delta = 0, the infinite slope cannot slide) gives fs_min = +inf, z_min =
  NaN, t_fail = NaN and fs_t = +inf.

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


EPS_FS = 1e-9  # margin (FS units) of every bound-based skip, far above round-off (~1e-15)
TSTAR_ZERO = 1.0 / 40.0  # R(t*) < 5e-21 below this: returned as 0
_BLOCK = 64  # cells per parallel task (scratch arrays are allocated once per block)


@numba.njit(cache=True, nogil=True)
def response(tstar):
    """Iverson's R(t*) = sqrt(t*/pi) exp(-1/t*) - erfc(1/sqrt(t*)); 0 for t* <= 0."""
    if tstar <= 0.0:
        return 0.0
    return math.sqrt(tstar / math.pi) * math.exp(-1.0 / tstar) - math.erfc(1.0 / math.sqrt(tstar))


@numba.njit(cache=True, nogil=True)
def _resp(tstar):
    """R(t*) with R = 0 below :data:`TSTAR_ZERO` (< 5e-21 there)."""
    if tstar < TSTAR_ZERO:
        return 0.0
    return math.sqrt(tstar / math.pi) * math.exp(-1.0 / tstar) - math.erfc(1.0 / math.sqrt(tstar))


@numba.njit(cache=True, nogil=True)
def lag_table(t_edges, t_eval):
    """Distinct positive lags and where each (t_eval[i], t_edges[k]) pair falls among them.

    Returns
    -------
    lags : (n_lags,) float64
        Sorted distinct values of t_eval[i] - t_edges[k] > 0 (s).
    lag_idx : (n_eval, n_edges) int64
        Index into ``lags`` of t_eval[i] - t_edges[k], -1 where t_edges[k] >= t_eval[i].
    t_desc : (n_eval,) int64
        Indices of ``t_eval`` from the latest time to the earliest.
    """
    n_e = t_eval.shape[0]
    n_k = t_edges.shape[0]
    diffs = np.empty(n_e * n_k)
    m = 0
    for i in range(n_e):
        for k in range(n_k):
            v = t_eval[i] - t_edges[k]
            if v > 0.0:
                diffs[m] = v
                m += 1
    lags = np.unique(diffs[:m])
    idx = np.full((n_e, n_k), -1, dtype=np.int64)
    for i in range(n_e):
        for k in range(n_k):
            v = t_eval[i] - t_edges[k]
            if v > 0.0:
                idx[i, k] = np.searchsorted(lags, v)
    t_desc = np.argsort(-t_eval, kind="mergesort").astype(np.int64)
    return lags, idx, t_desc


@numba.njit(cache=True, nogil=True)
def _steps(rain, col, kz, di, ks):
    """Non-zero infiltration steps of one cell: fills di, ks; returns (count, I_max).

    I_max is +inf when some rain is negative or NaN (the bounds then fall back to the cap).
    """
    n = rain.shape[0]
    prev = 0.0
    m = 0
    imax = 0.0
    for k in range(n + 1):
        cur = 0.0
        if k < n:
            cur = rain[k, col]
            if cur > kz:
                cur = kz
            if not cur >= 0.0:
                imax = np.inf
        d = cur - prev
        prev = cur
        if d != 0.0:
            di[m] = d
            ks[m] = k
            m += 1
        if cur > imax:
            imax = cur
    return m, imax


@numba.njit(cache=True, nogil=True, inline="always")
def _r_cached(lg, a, lags, row, stamps, stamp):
    """R(lags[lg] a), computed once per stamp (cell/depth) and kept in ``row``."""
    if stamps[lg] == stamp:
        return row[lg]
    r = _resp(lags[lg] * a)
    row[lg] = r
    stamps[lg] = stamp
    return r


@numba.njit(cache=True, nogil=True, inline="always")
def _fill_row(a, lags, row, stamps, stamp):
    """Every R(lags[l] a) of a row (when most lags will be needed: no per-term checks)."""
    for lg in range(lags.shape[0]):
        if stamps[lg] != stamp:
            row[lg] = _resp(lags[lg] * a)
            stamps[lg] = stamp


@numba.njit(cache=True, nogil=True, inline="always")
def _psi_full(i, z, kz, steady, cap, nnz, di, ks, lag_idx, row):
    """psi (m) at t_eval[i] from a filled row (:func:`_fill_row`)."""
    s = 0.0
    for m in range(nnz):
        lg = lag_idx[i, ks[m]]
        if lg < 0:
            break
        s += di[m] * row[lg]
    psi = steady + z * s / kz
    return min(psi, cap)


@numba.njit(cache=True, nogil=True, inline="always")
def _psi_lag(i, z, a, kz, steady, cap, nnz, di, ks, lag_idx, lags, row, stamps, stamp):
    """psi (m) at t_eval[i], depth z, from the cell's non-zero steps (cached R): the missing
    R values first, then a plain sum (a loop with the R calls in it runs ~3x slower)."""
    for m in range(nnz):
        lg = lag_idx[i, ks[m]]
        if lg < 0:
            break
        if stamps[lg] != stamp:
            row[lg] = _resp(lags[lg] * a)
            stamps[lg] = stamp
    return _psi_full(i, z, kz, steady, cap, nnz, di, ks, lag_idx, row)


@numba.njit(cache=True, nogil=True, inline="always")
def _psi_bound(i, z, a, kz, steady, cap, nnz, imax, ks, lag_idx, lags, row, stamps, stamp):
    """Upper bound of psi at t_eval[i]: min(cap, steady + z I_max R(t - t_first) / kz)."""
    if nnz == 0:
        return min(steady, cap)
    if imax == np.inf:
        return cap
    lg = lag_idx[i, ks[0]]
    if lg < 0:
        return min(steady, cap)
    r = _r_cached(lg, a, lags, row, stamps, stamp)
    return min(steady + z * (imax * r) / kz, cap)


@numba.njit(cache=True, nogil=True, inline="always")
def _fsv(z, psi, a_dry, tg, coh, gsc):
    """FS = tan(phi)/tan(delta) + (c' - psi gamma_w tan(phi)) / (gamma_s z sin cos)."""
    return a_dry + (coh - psi * tg) / (gsc * z)


@numba.njit(cache=True, nogil=True)
def _sort_by(keys, order, n):
    """order[:n] = indices sorted by keys ascending (stable: lower index first on ties)."""
    for q in range(n):
        order[q] = q
    for q in range(1, n):
        v = order[q]
        p = q - 1
        while p >= 0 and keys[order[p]] > keys[v]:
            order[p + 1] = order[p]
            p -= 1
        order[p + 1] = v


@numba.njit(cache=True, nogil=True)
def _depth_bounds(h, n_depths, dhat, d, beta, kz, i_last, nnz, imax, ks, lag_idx, lags, row2, stamps2,
                  stamp, a_dry, tg, coh, gsc, zs, av, st, cp, lb, order):
    """Per depth j of the profile: its depth ``zs``, time factor ``av`` (D_hat / Z^2), steady
    head ``st``, head cap ``cp`` and the lower bound ``lb`` of FS over the output times (FS at
    the bound of psi); ``order`` the depths by increasing bound."""
    for j in range(n_depths):
        z = h * (j + 1) / n_depths
        zs[j] = z
        av[j] = dhat / (z * z)
        st[j] = (z - d) * beta
        cp[j] = z * beta
        pb = _psi_bound(i_last, z, av[j], kz, st[j], cp[j], nnz, imax, ks, lag_idx, lags,
                        row2[j], stamps2[j], stamp)
        lb[j] = _fsv(z, pb, a_dry, tg, coh, gsc)
    _sort_by(lb, order, n_depths)

@numba.njit(cache=True, nogil=True)
def _cell_state(params, c):
    """0: valid; 1: flat (slope <= 0); 2: outside the model (NaN, slope >= 90 deg, h or Kz <= 0)."""
    for r in range(params.shape[0]):
        if params[r, c] != params[r, c]:
            return 2
    delta = params[P_SLOPE, c]
    if delta >= 0.5 * math.pi or params[P_SOIL_DEPTH, c] <= 0.0 or params[P_KZ, c] <= 0.0:
        return 2
    if delta <= 0.0:
        return 1
    return 0


@numba.njit(cache=True, nogil=True)
def _fs_one(c, params, rain, t_edges, t_eval, n_depths, gamma_w, lags, lag_idx, t_desc,
            fs_min, z_min, t_fail, fs_t, want_t, row2, stamps2, di, ks, zs, av, st, cp, lb, order):
    n_e = t_eval.shape[0]
    state = _cell_state(params, c)
    if state != 0 or n_e == 0:
        v = np.nan if state == 2 else np.inf
        fs_min[c] = v
        z_min[c] = np.nan
        t_fail[c] = np.nan
        if want_t:
            for i in range(n_e):
                fs_t[i, c] = v
        return
    stamp = c + 1
    delta = params[P_SLOPE, c]
    tphi = math.tan(params[P_PHI, c])
    a_dry = tphi / math.tan(delta)
    tg = tphi * gamma_w
    coh = params[P_COHESION, c]
    gsc = params[P_GAMMA_S, c] * math.sin(delta) * math.cos(delta)
    kz = params[P_KZ, c]
    dhat = params[P_DHAT, c]
    d = params[P_WATER_TABLE, c]
    beta = math.cos(delta) ** 2 - params[P_I_LT, c] / kz
    h = params[P_SOIL_DEPTH, c]
    col = np.int64(0)
    if rain.shape[1] > 1:
        col = np.int64(c)
    nnz, imax = _steps(rain, col, kz, di, ks)
    i_last = t_desc[0]
    _depth_bounds(h, n_depths, dhat, d, beta, kz, i_last, nnz, imax, ks, lag_idx, lags, row2, stamps2,
                  stamp, a_dry, tg, coh, gsc, zs, av, st, cp, lb, order)
    best = np.inf
    jb = -1
    for q in range(n_depths):
        j = order[q]
        if lb[j] > best + EPS_FS:
            break
        z = zs[j]
        dmin = np.inf
        dense = nnz * n_e > 2 * lags.shape[0]
        if dense:
            _fill_row(av[j], lags, row2[j], stamps2[j], stamp)
        for q2 in range(n_e):
            i = t_desc[q2]
            pb = _psi_bound(i, z, av[j], kz, st[j], cp[j], nnz, imax, ks, lag_idx, lags,
                            row2[j], stamps2[j], stamp)
            if _fsv(z, pb, a_dry, tg, coh, gsc) > dmin + EPS_FS:
                break
            if dense:
                psi = _psi_full(i, z, kz, st[j], cp[j], nnz, di, ks, lag_idx, row2[j])
            else:
                psi = _psi_lag(i, z, av[j], kz, st[j], cp[j], nnz, di, ks, lag_idx, lags,
                               row2[j], stamps2[j], stamp)
            f = _fsv(z, psi, a_dry, tg, coh, gsc)
            if f < dmin:
                dmin = f
            if psi >= cp[j]:
                break  # at the cap: the lowest FS this depth can reach
        if jb < 0 or dmin < best or (dmin == best and z < zs[jb]):
            best = dmin
            jb = j
    fs_min[c] = best
    z_min[c] = zs[jb]
    tf = np.nan
    if best < 1.0:
        for i in range(n_e):
            for j in range(n_depths):
                if lb[j] >= 1.0 + EPS_FS:
                    continue
                z = zs[j]
                pb = _psi_bound(i, z, av[j], kz, st[j], cp[j], nnz, imax, ks, lag_idx, lags,
                                row2[j], stamps2[j], stamp)
                if _fsv(z, pb, a_dry, tg, coh, gsc) >= 1.0 + EPS_FS:
                    continue
                psi = _psi_lag(i, z, av[j], kz, st[j], cp[j], nnz, di, ks, lag_idx, lags,
                               row2[j], stamps2[j], stamp)
                if _fsv(z, psi, a_dry, tg, coh, gsc) < 1.0:
                    tf = t_eval[i]
                    break
            if not math.isnan(tf):
                break
    t_fail[c] = tf
    if want_t:
        z = zs[jb]
        for i in range(n_e):
            psi = _psi_lag(i, z, av[jb], kz, st[jb], cp[jb], nnz, di, ks, lag_idx, lags,
                           row2[jb], stamps2[jb], stamp)
            fs_t[i, c] = _fsv(z, psi, a_dry, tg, coh, gsc)


@numba.njit(cache=True, nogil=True)
def _fs_block(c0, c1, params, rain, t_edges, t_eval, n_depths, gamma_w, lags, lag_idx, t_desc,
              fs_min, z_min, t_fail, fs_t, want_t, n_l, n_k):
    """Cells c0..c1-1 (one parallel task; the helpers inline here, not in the prange body)."""
    row2 = np.empty((n_depths, n_l))
    stamps2 = np.zeros((n_depths, n_l), dtype=np.int64)
    di = np.empty(n_k)
    ks = np.empty(n_k, dtype=np.int64)
    zs = np.empty(n_depths)
    av = np.empty(n_depths)
    st = np.empty(n_depths)
    cp = np.empty(n_depths)
    lb = np.empty(n_depths)
    order = np.empty(n_depths, dtype=np.int64)
    for c in range(c0, c1):
        _fs_one(c, params, rain, t_edges, t_eval, n_depths, gamma_w, lags, lag_idx, t_desc,
                fs_min, z_min, t_fail, fs_t, want_t, row2, stamps2, di, ks, zs, av, st, cp,
                lb, order)


@numba.njit(cache=True, nogil=True, parallel=True)
def _fs_cells(params, rain, t_edges, t_eval, n_depths, gamma_w, lags, lag_idx, t_desc,
              fs_min, z_min, t_fail, fs_t):
    n_cells = params.shape[1]
    n_e = t_eval.shape[0]
    want_t = fs_t.shape[0] == n_e and n_e > 0
    n_l = max(lags.shape[0], 1)
    n_k = t_edges.shape[0]
    n_blocks = (n_cells + _BLOCK - 1) // _BLOCK
    for b in numba.prange(n_blocks):
        _fs_block(b * _BLOCK, min(n_cells, (b + 1) * _BLOCK), params, rain, t_edges, t_eval,
                  n_depths, gamma_w, lags, lag_idx, t_desc, fs_min, z_min, t_fail, fs_t, want_t,
                  n_l, n_k)


@numba.njit(cache=True, nogil=True)
def factor_of_safety(params, rain, t_edges, t_eval, n_depths, gamma_w, fs_min, z_min, t_fail, fs_t):
    """Minimum FS over depths and times per cell, its depth, first time FS < 1.

    Fills ``fs_min`` (-), ``z_min`` (m) and ``t_fail`` (s; NaN if FS >= 1 at
    every evaluated depth and time), each (n_cells,). If ``fs_t`` has shape
    (n_eval, n_cells) it is filled with FS(t) at the depth of the minimum;
    pass a (0, n_cells) array to skip it. Ties keep the shallowest depth and
    earliest time (t_fail: the first index of ``t_eval`` with FS < 1 at some
    depth). Cells outside the model give NaN, flat cells +inf (module
    docstring). Evaluated with distinct lags and exact bounds (module
    docstring): the same results as the direct sum, to round-off. Returns
    ``fs_min``.
    """
    lags, lag_idx, t_desc = lag_table(t_edges, t_eval)
    _fs_cells(params, rain, t_edges, t_eval, n_depths, gamma_w, lags, lag_idx, t_desc,
              fs_min, z_min, t_fail, fs_t)
    return fs_min


@numba.njit(cache=True, nogil=True)
def _psi_block(c0, c1, params, rain, t_eval, n_depths, lags, lag_idx, out, n_l, n_k):
    row = np.empty(n_l)
    stamps = np.zeros(n_l, dtype=np.int64)
    di = np.empty(n_k)
    ks = np.empty(n_k, dtype=np.int64)
    for c in range(c0, c1):
        kz = params[P_KZ, c]
        delta = params[P_SLOPE, c]
        beta = math.cos(delta) ** 2 - params[P_I_LT, c] / kz
        d = params[P_WATER_TABLE, c]
        h = params[P_SOIL_DEPTH, c]
        col = np.int64(0)
        if rain.shape[1] > 1:
            col = np.int64(c)
        nnz, _ = _steps(rain, col, kz, di, ks)
        for j in range(n_depths):
            stamp = c * n_depths + j + 1
            z = h * (j + 1) / n_depths
            a = params[P_DHAT, c] / (z * z)
            for i in range(t_eval.shape[0]):
                out[i, j, c] = _psi_lag(i, z, a, kz, (z - d) * beta, z * beta, nnz, di, ks,
                                        lag_idx, lags, row, stamps, stamp)


@numba.njit(cache=True, nogil=True, parallel=True)
def _psi_cells(params, rain, t_edges, t_eval, n_depths, lags, lag_idx, out):
    n_cells = params.shape[1]
    n_l = max(lags.shape[0], 1)
    n_k = t_edges.shape[0]
    n_blocks = (n_cells + _BLOCK - 1) // _BLOCK
    for b in numba.prange(n_blocks):
        _psi_block(b * _BLOCK, min(n_cells, (b + 1) * _BLOCK), params, rain, t_eval, n_depths,
                   lags, lag_idx, out, n_l, n_k)


@numba.njit(cache=True, nogil=True)
def pressure_head(params, rain, t_edges, t_eval, n_depths, out):
    """Fill ``out`` (n_eval, n_depths, n_cells) with psi(Z_j, t_i) (m) and return it."""
    lags, lag_idx, _ = lag_table(t_edges, t_eval)
    _psi_cells(params, rain, t_edges, t_eval, n_depths, lags, lag_idx, out)
    return out


# -- direct sum (the previous kernel; kept as the benchmark's numba baseline) ------------------
@numba.njit(cache=True, nogil=True)
def _psi(z, t, c, params, rain, t_edges):
    """Pressure head (m) at vertical depth z (m), time t (s), cell c, by the direct sum."""
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
def factor_of_safety_direct(params, rain, t_edges, t_eval, n_depths, gamma_w, fs_min, z_min,
                            t_fail, fs_t):
    """:func:`factor_of_safety` by the direct sum at every (cell, depth, time), no bounds.

    The kernel before the lag table and the bounds, kept as a baseline for
    ``bench/bench_slope.py``. Valid cells only (0 < slope < 90 deg).
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


# -- Monte Carlo: did a member fail? -----------------------------------------------------------
# Sampled parameters, in the order of ``physics.slope_params.PARAMS``:
MC_C, MC_PHI, MC_GAMMA, MC_KS, MC_D0, MC_DEPTH, MC_WT = 0, 1, 2, 3, 4, 5, 6
N_MC = 7
# Distribution kinds of the spec table (``spec[zone, param]`` holds their constants):
DIST_FIXED, DIST_NORMAL, DIST_LOGNORMAL, DIST_UNIFORM, DIST_TRUNCNORM = -1, 0, 1, 2, 3
_SQRT2 = math.sqrt(2.0)
_SQRT2PI = math.sqrt(2.0 * math.pi)


@numba.njit(cache=True, nogil=True)
def ndtr(x):
    """Standard normal CDF Phi(x) = erfc(-x / sqrt 2) / 2."""
    return 0.5 * math.erfc(-x / _SQRT2)


@numba.njit(cache=True, nogil=True)
def ndtri(p):
    """Inverse of :func:`ndtr`: Acklam's rational approximation (relative error 1.2e-9)
    refined by two Halley steps on ndtr (cubic convergence: to round-off). Solved in the
    lower half (p > 1/2 as -ndtri(1 - p), exact there), where Phi(x) - p keeps its digits."""
    if p <= 0.0:
        return -np.inf
    if p >= 1.0:
        return np.inf
    if p > 0.5:
        return -_ndtri_low(1.0 - p)
    return _ndtri_low(p)


@numba.njit(cache=True, nogil=True)
def _ndtri_low(p):
    if p < 0.02425:
        q = math.sqrt(-2.0 * math.log(p))
        x = (((((-7.784894002430293e-03 * q - 3.223964580411365e-01) * q - 2.400758277161838e00)
               * q - 2.549732539343734e00) * q + 4.374664141464968e00) * q + 2.938163982698783e00) / (
            (((7.784695709041462e-03 * q + 3.224671290700398e-01) * q + 2.445134137142996e00) * q
             + 3.754408661907416e00) * q + 1.0)
    else:
        q = p - 0.5
        r = q * q
        x = (((((-3.969683028665376e01 * r + 2.209460984245205e02) * r - 2.759285104469687e02) * r
               + 1.383577518672690e02) * r - 3.066479806614716e01) * r + 2.506628277459239e00) * q / (
            ((((-5.447609879822406e01 * r + 1.615858368580409e02) * r - 1.556989798598866e02) * r
              + 6.680131188771972e01) * r - 1.328068155288572e01) * r + 1.0)
    for _ in range(2):
        e = ndtr(x) - p
        u = e * _SQRT2PI * math.exp(0.5 * x * x)
        x = x - u / (1.0 + 0.5 * x * u)
    return x


@numba.njit(cache=True, nogil=True)
def draw(kind, sp, z):
    """One draw from a standard normal ``z`` (the transforms of ``physics.slope_montecarlo``).

    ``sp``: normal (mean, sd); lognormal (mu_ln, sigma_ln); uniform (low, high);
    truncnorm (mean, sd, Phi(a), Phi(b), low, high).
    """
    if kind == DIST_NORMAL:
        return sp[0] + sp[1] * z
    if kind == DIST_LOGNORMAL:
        return math.exp(sp[0] + sp[1] * z)
    if kind == DIST_UNIFORM:
        return sp[0] + (sp[1] - sp[0]) * ndtr(z)
    u = sp[2] + (sp[3] - sp[2]) * ndtr(z)
    return min(max(sp[0] + sp[1] * ndtri(u), sp[4]), sp[5])


@numba.njit(cache=True, nogil=True, inline="always")
def _param(base_v, kinds, spec, zi, q, normals, m, unit, scale):
    if kinds[zi, q] == DIST_FIXED:
        return base_v
    return draw(kinds[zi, q], spec[zi, q], normals[m, q, unit]) * scale


@numba.njit(cache=True, nogil=True)
def _lower(kind, sp, base_v, scale):
    """Lower bound of a sampled parameter (-inf when unbounded), in SI units."""
    if kind == DIST_FIXED:
        return base_v
    if kind == DIST_LOGNORMAL:
        return 0.0
    if kind == DIST_UNIFORM:
        return sp[0] * scale
    if kind == DIST_TRUNCNORM:
        return sp[4] * scale
    return -np.inf


@numba.njit(cache=True, nogil=True, inline="always")
def _member_head(base, c, zi, unit, m, kinds, spec, c_lo, tphi_lo, normals, rho, sd, cd, td,
                 n_depths, gamma_w):
    """The cheap part of a member: (state, gamma_s, phi', c', h, Kz, Kz drawn?, beta).

    state 0: cannot fail (pre-check or capped FS >= 1); -1: outside the model; 1: undecided.
    """
    deg = math.pi / 180.0
    # exact pre-check without drawing phi' or c': FS at the cap rises with phi' (when
    # gamma_s >= gamma_w), with c' >= 0 and as beta falls (beta <= cos^2 delta), so with
    # phi' at its lower bound, c' = 0 and beta = cos^2 delta it is a lower bound of FS
    gs = _param(base[P_GAMMA_S, c], kinds, spec, zi, MC_GAMMA, normals, m, unit, 1000.0)
    if c_lo >= 0.0 and gs >= gamma_w and tphi_lo * (1.0 - gamma_w / gs) >= (1.0 + EPS_FS) * td:
        return 0, gs, 0.0, 0.0, 0.0, 0.0, False, 0.0
    if kinds[zi, MC_PHI] != DIST_FIXED and rho != 0.0 and kinds[zi, MC_C] != DIST_FIXED:
        zc = normals[m, MC_C, unit]
        zphi = rho * zc + math.sqrt(1.0 - rho * rho) * normals[m, MC_PHI, unit]
        phi = draw(kinds[zi, MC_PHI], spec[zi, MC_PHI], zphi) * deg
    else:
        phi = _param(base[P_PHI, c], kinds, spec, zi, MC_PHI, normals, m, unit, deg)
    coh = _param(base[P_COHESION, c], kinds, spec, zi, MC_C, normals, m, unit, 1000.0)
    h = _param(base[P_SOIL_DEPTH, c], kinds, spec, zi, MC_DEPTH, normals, m, unit, 1.0)
    if not (h > 0.0 and gs > 0.0 and phi == phi and coh == coh):
        return -1, gs, phi, coh, h, 0.0, False, 0.0
    i_lt = base[P_I_LT, c]
    kz = base[P_KZ, c]
    kz_drawn = False
    if i_lt != 0.0:
        kz = _param(kz, kinds, spec, zi, MC_KS, normals, m, unit, 1.0)
        kz_drawn = True
    beta = cd * cd - i_lt / kz
    tphi = math.tan(phi)
    # the cap psi = Z beta: FS = a_dry - beta tg / gsc + c' / (gsc Z), lowest at the deepest
    # level for c' >= 0 (at the shallowest otherwise); at or above 1 there: never fails
    z_low = h if coh >= 0.0 else h / n_depths
    if _fsv(z_low, z_low * beta, tphi / td, tphi * gamma_w, coh, gs * sd * cd) >= 1.0 + EPS_FS:
        return 0, gs, phi, coh, h, kz, kz_drawn, beta
    return 1, gs, phi, coh, h, kz, kz_drawn, beta


@numba.njit(cache=True, nogil=True)
def _member_fails(base, c, zi, unit, m, kinds, spec, normals, gs, phi, coh, h, kz, kz_drawn, beta,
                  trigrs, sd, cd, td, rain, n_depths, gamma_w, lags, lag_idx, t_desc, want_time,
                  row2, stamps2, stamp, di, ks, zs, av, st, cp, lb, order):
    """(state, i_first) of member m of cell c (undecided by :func:`_member_head`): state 1 if
    FS < 1 at some depth and output time, 0 if not, -1 if its parameters are outside the
    model; i_first the first t_eval index with FS < 1 (only with ``want_time``, else -1)."""
    i_lt = base[P_I_LT, c]
    tphi = math.tan(phi)
    a_dry = tphi / td
    tg = tphi * gamma_w
    gsc = gs * sd * cd
    if not kz_drawn:
        kz = _param(kz, kinds, spec, zi, MC_KS, normals, m, unit, 1.0)
        beta = cd * cd - i_lt / kz
    if not kz > 0.0:
        return -1, -1
    if kinds[zi, MC_D0] == DIST_FIXED:
        dhat = base[P_DHAT, c]
    else:
        d0 = draw(kinds[zi, MC_D0], spec[zi, MC_D0], normals[m, MC_D0, unit])
        dhat = 4.0 * d0 / (cd * cd) if trigrs else 4.0 * d0 * cd * cd
    d = _param(base[P_WATER_TABLE, c], kinds, spec, zi, MC_WT, normals, m, unit, 1.0)
    if d > h:  # never below the soil base: the deterministic set-up's rule (physics.slope_city)
        d = h
    if not (d == d and dhat == dhat):
        return -1, -1
    col = np.int64(0)
    if rain.shape[1] > 1:
        col = np.int64(c)
    nnz, imax = _steps(rain, col, kz, di, ks)
    i_last = t_desc[0]
    n_e = t_desc.shape[0]
    # the likeliest failure first: the base of the profile at the last output time
    jd = n_depths - 1
    z = h * (jd + 1) / n_depths
    av[jd] = dhat / (z * z)
    st[jd] = (z - d) * beta
    cp[jd] = z * beta
    psi = _psi_lag(i_last, z, av[jd], kz, st[jd], cp[jd], nnz, di, ks, lag_idx, lags,
                   row2[jd], stamps2[jd], stamp)
    failed = _fsv(z, psi, a_dry, tg, coh, gsc) < 1.0
    if failed and not want_time:
        return 1, -1
    _depth_bounds(h, n_depths, dhat, d, beta, kz, i_last, nnz, imax, ks, lag_idx, lags, row2, stamps2,
                  stamp, a_dry, tg, coh, gsc, zs, av, st, cp, lb, order)
    if not failed:
        for q in range(n_depths):
            j = order[q]
            if lb[j] >= 1.0 + EPS_FS or failed:
                break
            z = zs[j]
            for q2 in range(n_e):
                i = t_desc[q2]
                pb = _psi_bound(i, z, av[j], kz, st[j], cp[j], nnz, imax, ks, lag_idx, lags,
                                row2[j], stamps2[j], stamp)
                if _fsv(z, pb, a_dry, tg, coh, gsc) >= 1.0 + EPS_FS:
                    break
                psi = _psi_lag(i, z, av[j], kz, st[j], cp[j], nnz, di, ks, lag_idx, lags,
                               row2[j], stamps2[j], stamp)
                if _fsv(z, psi, a_dry, tg, coh, gsc) < 1.0:
                    failed = True
                    break
    if not failed:
        return 0, -1
    if not want_time:
        return 1, -1
    # the first output (index order, as t_fail) with FS < 1 at some depth
    for i in range(n_e):
        for q in range(n_depths):
            j = order[q]
            if lb[j] >= 1.0 + EPS_FS:
                break
            z = zs[j]
            pb = _psi_bound(i, z, av[j], kz, st[j], cp[j], nnz, imax, ks, lag_idx, lags,
                            row2[j], stamps2[j], stamp)
            if _fsv(z, pb, a_dry, tg, coh, gsc) >= 1.0 + EPS_FS:
                continue
            psi = _psi_lag(i, z, av[j], kz, st[j], cp[j], nnz, di, ks, lag_idx, lags,
                           row2[j], stamps2[j], stamp)
            if _fsv(z, psi, a_dry, tg, coh, gsc) < 1.0:
                return 1, i
    return 1, n_e - 1  # not reached: the failure found above is among these


@numba.njit(cache=True, nogil=True)
def _mc_block(c0, c1, base, zone_idx, unit, kinds, spec, normals, rho, trigrs, rain, t_eval,
              n_depths, gamma_w, lags, lag_idx, t_desc, fails, valid, first, n_l, n_k):
    """Members of cells c0..c1-1 (one parallel task; the helpers inline here)."""
    n_m = normals.shape[0]
    want_time = first.shape[1] > 0
    deg = math.pi / 180.0
    row2 = np.empty((n_depths, n_l))
    stamps2 = np.zeros((n_depths, n_l), dtype=np.int64)
    di = np.empty(n_k)
    ks = np.empty(n_k, dtype=np.int64)
    zs = np.empty(n_depths)
    av = np.empty(n_depths)
    st = np.empty(n_depths)
    cp = np.empty(n_depths)
    lb = np.empty(n_depths)
    order = np.empty(n_depths, dtype=np.int64)
    stamp = 0
    # per-cell constants first, then members outermost: each member's normals are read
    # for consecutive cells (a member's plane is contiguous)
    live = np.zeros(_BLOCK, dtype=np.bool_)
    sdb = np.empty(_BLOCK)
    cdb = np.empty(_BLOCK)
    tdb = np.empty(_BLOCK)
    c_lo = np.empty(_BLOCK)
    tphi_lo = np.empty(_BLOCK)
    for c in range(c0, c1):
        zi = zone_idx[c]
        delta = base[P_SLOPE, c]
        if zi < 0 or not (delta == delta) or delta >= 0.5 * math.pi or t_eval.shape[0] == 0:
            continue
        if delta <= 0.0:
            valid[c] += n_m  # flat: an infinite slope cannot slide
            continue
        q = c - c0
        live[q] = True
        sdb[q] = math.sin(delta)
        cdb[q] = math.cos(delta)
        tdb[q] = math.tan(delta)
        c_lo[q] = _lower(kinds[zi, MC_C], spec[zi, MC_C], base[P_COHESION, c], 1000.0)
        tphi_lo[q] = math.tan(_lower(kinds[zi, MC_PHI], spec[zi, MC_PHI], base[P_PHI, c], deg))
    for m in range(n_m):
        for c in range(c0, c1):
            q = c - c0
            if not live[q]:
                continue
            zi = zone_idx[c]
            u = unit[c]
            state, gs, phi, coh, h, kz, kz_drawn, beta = _member_head(
                base, c, zi, u, m, kinds, spec, c_lo[q], tphi_lo[q], normals, rho, sdb[q],
                cdb[q], tdb[q], n_depths, gamma_w)
            r = state
            if state == 1:
                stamp += 1
                r, i_first = _member_fails(base, c, zi, u, m, kinds, spec, normals, gs, phi, coh,
                                           h, kz, kz_drawn, beta, trigrs, sdb[q], cdb[q], tdb[q],
                                           rain, n_depths, gamma_w, lags, lag_idx, t_desc,
                                           want_time, row2, stamps2, stamp, di, ks, zs, av, st,
                                           cp, lb, order)
                if r == 1 and want_time:
                    first[c, i_first] += 1
            if r >= 0:
                valid[c] += 1
                fails[c] += r


@numba.njit(cache=True, nogil=True, parallel=True)
def member_failures(base, zone_idx, unit, kinds, spec, normals, rho, trigrs, rain, t_edges,
                    t_eval, n_depths, gamma_w, lags, lag_idx, t_desc, fails, valid, first):
    """Count, per cell, the members of a chunk that fail (FS < 1 at some depth and time).

    Parameters
    ----------
    base : (N_PARAMS, n_cells) float64
        Parameters of the deterministic run; slope, I_LT and every parameter whose
        ``kinds`` entry is ``DIST_FIXED`` are taken from it (SI units, see ``P_*``).
    zone_idx : (n_cells,) int64
        Row of ``kinds`` / ``spec`` per cell; -1: outside the model (not counted).
    unit : (n_cells,) int64
        Column of ``normals`` per cell (the cell itself, or its zone when drawn per zone).
    kinds : (n_zones, N_MC) int64, spec : (n_zones, N_MC, 6) float64
        Distribution of each sampled parameter (``DIST_*``; constants as in :func:`draw`,
        in the table's units: kPa, deg, kN/m^3, m/s, m^2/s, m, m).
    normals : (n_members_chunk, N_MC, n_units) float64
        Standard normals of each member.
    rho : float
        Correlation of the normals of c' and phi'.
    trigrs : bool
        D_hat from the drawn D0 by :func:`trigrs_dhat` (True) or :func:`iverson_dhat`.
    lags, lag_idx, t_desc
        :func:`lag_table` of ``t_edges`` and ``t_eval``.
    fails, valid : (n_cells,) int64
        Incremented by the failing members and by the members inside the model.
    first : (n_cells, n_eval) int32, or (n_cells, 0) to skip
        ``first[c, i]`` incremented by the failing members whose first FS < 1 (over depths)
        is at t_eval[i] (index order, as ``t_fail``); finding it costs a scan of the earlier
        outputs for failing members only.

    Each member is decided exactly: the capped FS, then the per-depth and per-time bounds
    (module docstring) rule members out; the first (depth, time) with FS < 1 ends a member.
    """
    n_cells = base.shape[1]
    n_l = max(lags.shape[0], 1)
    n_k = t_edges.shape[0]
    n_blocks = (n_cells + _BLOCK - 1) // _BLOCK
    for b in numba.prange(n_blocks):
        _mc_block(b * _BLOCK, min(n_cells, (b + 1) * _BLOCK), base, zone_idx, unit, kinds, spec,
                  normals, rho, trigrs, rain, t_eval, n_depths, gamma_w, lags, lag_idx, t_desc,
                  fails, valid, first, n_l, n_k)
