"""Numpy reference of the devices' step (:mod:`physics._kernels.fire_devices`): the vectorised form
:class:`physics.fire_detection.DeviceState` used before the kernel, kept as it was for the tests to compare."""

from __future__ import annotations

import numpy as np

from physics.fire_correlations import rti_link_temperature
from physics.fire_detection import LAYER_AT_CEILING_M, device_gas, obscuration_pct_m


def gas_now(c, ceiling_height_m, radius_m, q_kw, t_upper_k, t_lower_k, layer_height_m, extinction_upper):
    """(gas K, u m/s, obscuration %/m, layer K) at each device: the layer plus Alpert's jet where q > 0."""
    q = np.asarray(q_kw, float)
    h = np.broadcast_to(np.asarray(ceiling_height_m, float), (q.size,))
    in_layer = layer_height_m[c] < h[c] - LAYER_AT_CEILING_M
    t_ref = np.where(in_layer, t_upper_k[c], t_lower_k[c])
    gas, u = t_ref.copy(), np.zeros(len(c))
    burning = np.flatnonzero(q[c] > 0.0)
    if len(burning):
        cb = c[burning]
        gas[burning], u[burning] = device_gas(q[cb], h[cb], radius_m[burning], t_ref[burning])
    od = np.zeros(len(c)) if extinction_upper is None else \
        np.where(in_layer, obscuration_pct_m(np.asarray(extinction_upper, float)[c]), 0.0)
    return gas, u, od, t_ref


def link_step(link, gas0, gas1, u0, u1, od0, od1, rti, act, obsc, t0, t1, activation):
    """(new links, new activation times, indices operated) over the step t0 → t1."""
    new = rti_link_temperature(link, 0.5 * (gas0 + gas1), 0.5 * (u0 + u1), rti, t1 - t0)
    fresh = ~np.isfinite(activation)
    hit_t = fresh & np.isfinite(act) & (new >= act)
    hit_o = fresh & np.isfinite(obsc) & (od1 >= obsc)
    with np.errstate(divide="ignore", invalid="ignore"):
        ft = np.where(hit_t, (act - link) / (new - link), 0.0)
        fo = np.where(hit_o, (obsc - od0) / (od1 - od0), 0.0)
    out = np.where(hit_t, t0 + np.clip(ft, 0, 1) * (t1 - t0), activation)
    out = np.where(hit_o, t0 + np.clip(fo, 0, 1) * (t1 - t0), out)
    return new, out, np.flatnonzero(hit_t | hit_o)
