"""Numba kernels of the fusion package (pure array in, array out).

:func:`idw` is inverse-distance weighting (Shepard 1968) of gauge values onto
target points, with a search radius, a minimum number of gauges and an exact
pass-through at the gauges. The pure-numpy reference lives in
``tests/hardware_bridge/test_rain_grid.py``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, nogil=True)
def _idw_point(px, py, gx, gy, vals, power, r2, min_gauges, fallback, exact2, d2):
    """IDW at one point; ``d2`` is scratch of length ng. Returns the value (NaN when none)."""
    ng = gx.size
    num = 0.0
    den = 0.0
    cnt = 0
    n_finite = 0
    half = 0.5 * power
    for g in range(ng):
        v = vals[g]
        if np.isnan(v):
            d2[g] = np.inf
            continue
        n_finite += 1
        dx = px - gx[g]
        dy = py - gy[g]
        dd = dx * dx + dy * dy
        d2[g] = dd
        if dd <= exact2:
            return v
        if dd <= r2:
            w = 1.0 / dd if half == 1.0 else dd ** (-half)
            num += w * v
            den += w
            cnt += 1
    if cnt >= min_gauges and cnt > 0:
        return num / den
    if not fallback or n_finite == 0:
        return np.nan
    # fewer than min_gauges inside the radius: the min_gauges nearest reporting gauges, any distance
    order = np.argsort(d2)
    k = min(min_gauges, n_finite)
    num = 0.0
    den = 0.0
    for m in range(k):
        g = order[m]
        w = d2[g] ** (-half)
        num += w * vals[g]
        den += w
    return num / den


@njit(cache=True, nogil=True, parallel=True)
def idw(px, py, gx, gy, gv, power, radius, min_gauges, fallback, exact):
    """Inverse-distance weighting of ``gv`` (nt, ng; NaN = gauge missing) onto points (np,).

    value(p) = sum_g w_g v_g / sum_g w_g with w_g = d(p, g)^-power over the
    reporting gauges within ``radius``; exactly v_g when d(p, g) <= ``exact``;
    when fewer than ``min_gauges`` gauges lie within the radius: the
    ``min_gauges`` nearest reporting gauges if ``fallback`` else NaN.
    Returns (nt, np).
    """
    nt, ng = gv.shape
    npt = px.size
    out = np.empty((nt, npt))
    r2 = radius * radius
    exact2 = exact * exact
    chunk = 512
    nchunk = (npt + chunk - 1) // chunk
    for k in range(nt):
        vals = gv[k]
        for c in prange(nchunk):
            d2 = np.empty(ng)
            for p in range(c * chunk, min(npt, (c + 1) * chunk)):
                out[k, p] = _idw_point(px[p], py[p], gx, gy, vals, power, r2, min_gauges, fallback,
                                       exact2, d2)
    return out
