"""Detector and sprinkler links stepped with a fire run: one pass over the devices per step (numba).

The per-step work of :class:`physics.fire_detection.DeviceState` (Alpert's ceiling jet over the layer the link
sits in, the RTI link solved exactly over the step with the gas at its mean, the crossing interpolated) done
device by device instead of some forty numpy passes over every device. The same formulas, in the same order,
as :func:`physics.fire_correlations.alpert_ceiling_jet`, :func:`~physics.fire_correlations.rti_link_temperature`
and :func:`physics.fire_detection.obscuration_pct_m`; numba's ``exp``, ``cbrt`` and ``**`` are the C library's,
numpy's its own, so the numbers agree to round-off (a few ulp), not to the bit. The numpy reference is
``tests/physics/fire_devices_reference.py``.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def device_gas(c, hc, radius, q, tu, tl, zl, ext_u, use_ext, at_ceiling, gas, u, od, t_ref):
    """Gas temperature ``gas`` (K) and velocity ``u`` (m/s) at each device, its obscuration ``od`` (%/m) and the
    layer temperature ``t_ref`` (K) it sits in, from the compartments' heat release ``q`` (kW) and layers.

    ``c`` each device's compartment, ``hc`` its ceiling height (m), ``radius`` its distance from the fire (m);
    a device is in the upper layer where the interface is more than ``at_ceiling`` m below its ceiling; with
    ``use_ext`` false ``ext_u`` is not read and ``od`` is 0.
    """
    for d in range(c.shape[0]):
        i = c[d]
        h = hc[d]
        in_layer = zl[i] < h - at_ceiling
        tr = tu[i] if in_layer else tl[i]
        t_ref[d] = tr
        qd = q[i]
        if qd > 0.0:  # Alpert (1972): elsewhere the jet is 0 K and 0 m/s
            r = max(radius[d], 1e-9)
            if r / h <= 0.18:
                dt = 16.9 * qd ** (2 / 3) / h ** (5 / 3)
            else:
                dt = 5.38 * (qd / r) ** (2 / 3) / h
            if r / h <= 0.15:
                uu = 0.96 * np.cbrt(qd / h)
            else:
                uu = 0.195 * np.cbrt(qd) * np.sqrt(h) / r ** (5 / 6)
            gas[d] = tr + dt
            u[d] = uu
        else:
            gas[d] = tr
            u[d] = 0.0
        od[d] = 100.0 * (1.0 - _exp(-ext_u[i])) if use_ext and in_layer else 0.0


@njit(cache=True, inline="always")
def _exp(x):
    """np.exp(x), skipping the call where x is ±0 (exactly 1.0 there): most devices sit in clear, still air
    (no soot, no jet), and the two exponentials were most of the devices' step."""
    return 1.0 if x == 0.0 else np.exp(x)


@njit(cache=True)
def _clip01(f):
    if f < 0.0:
        return 0.0
    if f > 1.0:
        return 1.0
    return f  # NaN stays NaN, as numpy.clip


@njit(cache=True, error_model="numpy")
def link_step(link, gas0, gas1, u0, u1, od0, od1, rti, act, obsc, t0, t1, activation, new, hit):
    """Links from ``t0`` to ``t1`` (s) into ``new`` (K): dT/dt = √u·(T_g − T_l)/RTI with the gas at the mean of
    its values at the step's ends, solved exactly. A device not yet operated operates where its link reaches
    ``act`` (K) or its obscuration ``obsc`` (%/m; the obscuration wins where both), at the linear crossing,
    written to ``activation``; their indices (ascending) into ``hit``. Returns how many operated."""
    n_hit = 0
    span = t1 - t0
    for d in range(link.shape[0]):
        tg = 0.5 * (gas0[d] + gas1[d])
        x = tg - (tg - link[d]) * _exp(-np.sqrt(0.5 * (u0[d] + u1[d])) * span / rti[d])
        new[d] = x
        if np.isfinite(activation[d]):
            continue
        by_t = np.isfinite(act[d]) and x >= act[d]
        by_o = np.isfinite(obsc[d]) and od1[d] >= obsc[d]
        if by_o:
            activation[d] = t0 + _clip01((obsc[d] - od0[d]) / (od1[d] - od0[d])) * span
        elif by_t:
            activation[d] = t0 + _clip01((act[d] - link[d]) / (x - link[d])) * span
        if by_t or by_o:
            hit[n_hit] = d
            n_hit += 1
    return n_hit


@njit(cache=True, error_model="numpy")
def devices_step(c, hc, radius, q, tu, tl, zl, ext_u, use_ext, at_ceiling, link, gas0, u0, od0, rti, act, obsc,
                 t0, t1, activation, gas, u, od, t_ref, new, hit):
    """One step of the devices in one call: :func:`device_gas` of the compartments now into ``gas``, ``u``,
    ``od``, ``t_ref``, then :func:`link_step` from the last step's ``gas0``, ``u0``, ``od0``; returns how many
    operated (their indices in ``hit``). The two kernels' own code, so the numbers are theirs to the bit."""
    device_gas(c, hc, radius, q, tu, tl, zl, ext_u, use_ext, at_ceiling, gas, u, od, t_ref)
    return link_step(link, gas0, gas, u0, u, od0, od, rti, act, obsc, t0, t1, activation, new, hit)
