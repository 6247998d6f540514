"""Tenability at head height accumulated record by record (numba): :class:`physics.fire_sim_tenability.TenabilityTracker`.

One record's work in two passes over the compartments around four numpy calls: :func:`head_inputs` gathers the
arguments of the transcendental functions (the caller takes ``exp`` and ``**`` with numpy, as
:func:`physics.fire_tenability.head_measures` does, so the numbers are numpy's to the bit), :func:`head_record`
does the rest: the ISO 13571 rates, the radiant flux, the extinction at head height and the visibility, the
trapezoid FED sums and the first crossing of each criterion (linear between records). Each line is the numpy
expression of :func:`~physics.fire_tenability.head_measures` and ``TenabilityTracker.update`` element by element,
in the same order, so the results are bit-identical (``tests/physics/test_fire_step_fast.py``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: Rows of :func:`head_inputs`' output: exp's argument of the CO₂ factor, the head's gas temperature (°C, ≥ 1e-9)
#: for t_Iconv's power, exp's argument of the layer's emissivity, the upper layer's temperature for T⁴.
A_CO2, A_TC, A_EMIS, A_TU = 0, 1, 2, 3


@njit(cache=True)
def head_inputs(z, tu, tl, co2u, co2l, soot_u, height, head, soot_sigma, args):
    """``args`` (4, N): CO₂ % at head height / 5, the gas at head height in °C (at least 1e-9), −K_u·depth of the
    upper layer (K_u = ``soot_sigma``·soot) and T_u."""
    for i in range(z.shape[0]):
        below = z[i] < head
        co2 = co2u[i] if below else co2l[i]
        args[A_CO2, i] = 100.0 * co2 / 5.0
        tc = (tu[i] if below else tl[i]) - 273.15
        args[A_TC, i] = tc if tc >= 1e-9 or tc != tc else 1e-9
        depth = height[i] - z[i] if z[i] < height[i] else 0.0
        args[A_EMIS, i] = -(soot_sigma * soot_u[i]) * (depth if depth >= 0.0 or depth != depth else 0.0)
        args[A_TU, i] = tu[i]


@njit(cache=True, error_model="numpy")
def head_record(z, cou, col, soot_u, soot_l, height, head, soot_sigma, vis_c, t_amb4, sigma, e_co2, p_tc, e_emis,
                p_tu4, first, dt_min, rates, fed_a, fed_h, y_prev, thr, times, t_prev, t, ext, vis):
    """One record at ``t``: the measures at head height from :func:`head_inputs`' numpy results (``e_co2`` =
    exp(CO₂ %/5), ``p_tc`` = T_c^−3.4, ``e_emis`` = exp(−K_u·depth), ``p_tu4`` = T_u⁴), the FEDs advanced by the
    trapezoid over ``dt_min`` from the last record's ``rates`` (2, N; now this record's), the first failure of each
    criterion written to ``times`` (4, N; ``first``: at ``t``, else linear from ``y_prev``, the last record's
    (FED_a, FED_h, radiant, extinction), now this one's) against ``thr`` (4, N). ``ext`` and ``vis``: extinction
    (1/m) and visibility (m) at head height. ``rates`` also takes the radiant flux (row 2). Returns whether a
    criterion failed for the first time."""
    failed = False
    for i in range(z.shape[0]):
        below = z[i] < head
        co = cou[i] if below else col[i]
        rate_a = co / 35000.0 * e_co2[i]
        rate_h = 1.0 / (5.0e7 * p_tc[i])
        depth = height[i] - z[i] if z[i] < height[i] else 0.0
        d4 = p_tu4[i] - t_amb4
        rad = (1.0 - e_emis[i]) * sigma * (d4 if d4 >= 0.0 or d4 != d4 else 0.0) / 1000.0 * \
            (1.0 if depth > 0 else 0.0)
        if not z[i] >= head:
            rad = 0.0
        k_head = soot_sigma * (soot_u[i] if below else soot_l[i])
        ext[i] = k_head
        vis[i] = vis_c / (k_head if k_head >= 1e-300 else 1e-300) if k_head > 0 else np.inf
        if not first:
            fed_a[i] = fed_a[i] + 0.5 * (rate_a + rates[0, i]) * dt_min
            fed_h[i] = fed_h[i] + 0.5 * (rate_h + rates[1, i]) * dt_min
        rates[0, i], rates[1, i], rates[2, i] = rate_a, rate_h, rad
        y = (fed_a[i], fed_h[i], rad, k_head)
        for j in range(4):
            if np.isinf(times[j, i]) and y[j] >= thr[j, i]:
                failed = True
                if first:
                    times[j, i] = t
                else:
                    f = (thr[j, i] - y_prev[j, i]) / (y[j] - y_prev[j, i])
                    if f != f:
                        f = 0.0
                    f = min(max(f, 0.0), 1.0)
                    times[j, i] = t_prev + f * (t - t_prev)
            y_prev[j, i] = y[j]
    return failed


@njit(cache=True)
def group_extreme(x, index, offsets, largest, empty, out):
    """``out[g]``: the largest (``largest``) or smallest of ``x[index[offsets[g]:offsets[g + 1]]]``, ``empty`` for an
    empty group; NaN wins as in ``numpy.maximum`` / ``numpy.minimum`` (``a if a >= b or a is NaN else b``)."""
    for g in range(offsets.shape[0] - 1):
        lo, hi = offsets[g], offsets[g + 1]
        if lo == hi:
            out[g] = empty
            continue
        m = x[index[lo]]
        for k in range(lo + 1, hi):
            v = x[index[k]]
            keep = m >= v if largest else m <= v
            if not (keep or m != m):
                m = v
        out[g] = m
