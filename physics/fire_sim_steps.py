"""A fire run's steps in compiled batches: :class:`~physics.fire_sim.FireSimulation`'s side of
:func:`physics._kernels.fire_steps.run_steps`.

:func:`batch_ready` says whether the run's next steps can go to the compiled loop (else the run steps in Python, one
step per call, as before); :func:`run_batch` packs the run's state into the loop's arrays, calls it and unpacks the
result, leaving the run after the last step's zone and device steps, for the caller to finish that step in Python
(the flashover, device, glazing, spread and burn-out checks and the record) as it finishes each of its own steps.

The compiled loop does not cover (the run steps in Python then): a suppressed fire (Evans' decay, an exponential in
NumPy) after its sprinkler operated, the conducting walls, a zone model whose step or kernel was swapped (a test,
a profile), a run whose step was swapped or a subclass' own zone step (a windowed run's reservoirs), the devices'
first step, an outside temperature changed since the last step.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from physics._kernels import fire_steps as FS
from physics.fire_detection import LAYER_AT_CEILING_M
from physics.fire_source import DECAY_FRACTION, FLASHOVER_DT_K
from physics.fire_spread import RHO_G
from physics.fire_spread import G as SPREAD_G
from twin.errors import ValidationError

_NO_DEVICES = (np.zeros(0, np.int64),) + (np.zeros(0),) * 15 + (np.zeros(0, np.int64),)


def batch_ready(sim) -> bool:
    """Whether ``sim``'s next steps can run in :func:`physics._kernels.fire_steps.run_steps` (the module
    docstring lists what cannot)."""
    from physics.fire_sim import FireSimulation

    if not sim.batch_steps or type(sim)._zone_step is not FireSimulation._zone_step \
            or type(sim)._step is not FireSimulation._step or "_step" in vars(sim) or "_zone_step" in vars(sim):
        return False  # a step of its own (a subclass', or one a test or a profile watches)
    if sim.links is not None and sim.links._t is None:
        return False
    for fire in sim.fires.values():
        if fire.source.sprinkler == "suppression" and math.isfinite(fire.t_sprinkler_s):
            return False
    return sim.zone.steps_ready()


def _fire_arrays(sim) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(compartments (F,), constants (F, NFP), states (F, NFS)) of ``sim``'s fires, in its order."""
    n = len(sim.fires)
    cs, par, st = np.empty(n, np.int64), np.zeros((n, FS.NFP)), np.zeros((n, FS.NFS))
    spread, zone = sim.spread, sim.zone
    for f, (c, fire) in enumerate(sim.fires.items()):
        src = fire.source
        cs[f] = c
        p = par[f]
        tsp = fire.t_sprinkler_s
        control = src.sprinkler != "none"
        qact = float(min(src.alpha * max(tsp - src.t0_s, 0.0) ** 2, src.pre_flashover_cap_kw)) \
            if control and math.isfinite(tsp) else 0.0
        p[:FS.FP_LIVE] = (src.t0_s, src.alpha, src.pre_flashover_cap_kw, src.post_flashover_kw, float(control), tsp,
                          fire.t_flashover_s, qact, DECAY_FRACTION * src.energy_kj,
                          2.0 * (1.0 - DECAY_FRACTION) * src.energy_kj, float(sim.flashed[c]),
                          float(sim.burnt_out[c]))
        up = spread._above.get(c)
        if (up is not None and up not in spread.reach_s and up not in sim.fires and sim.flashed[c]
                and spread._window_out(zone, c)):
            a_v, h_eq, _, soffit = spread.window(c)
            p[FS.FP_LIVE:] = (1.0, src.rhr_f_kw_m2 * src.floor_area_m2, src.vent_limit_kw, h_eq,
                              a_v * RHO_G * math.sqrt(SPREAD_G * h_eq), spread.window(up)[2] - soffit)
        s = st[f]
        s[:] = (fire._t is not None, fire._t if fire._t is not None else 0.0, fire._q_pre, fire.energy_kj,
                fire.t_decay_s, fire.q_decay_kw)
    return cs, par, st


def _fires_back(sim, st: np.ndarray) -> None:
    for f, fire in enumerate(sim.fires.values()):
        s = st[f]
        fire._t, fire._q_pre, fire.energy_kj = float(s[FS.FS_T]), float(s[FS.FS_QPRE]), float(s[FS.FS_E])
        fire.t_decay_s, fire.q_decay_kw = float(s[FS.FS_TDEC]), float(s[FS.FS_QDEC])


def _device_arrays(links) -> tuple:
    if links is None:
        return (False,) + _NO_DEVICES
    m = len(links.c)
    gas, u, od = links._spare
    return (True, links.c, links._hc, links.radius_m, links.link_k.copy(), links._gas, links._u, links._od,
            links.rti, links.act, links.obsc, links.activation_s, gas, u, od, links._t_ref, np.empty(m), links._hit)


def _devices_back(links, dev: tuple, t1: float) -> None:
    if links is None:
        return
    link, gas0, u0, od0, gas, u, od = dev[4], dev[5], dev[6], dev[7], dev[12], dev[13], dev[14]
    links.link_k, links._gas, links._u, links._od, links._spare, links._t = link, gas0, u0, od0, (gas, u, od), t1


def next_ignition_s(sim) -> float:
    """The earliest pending façade ignition of a compartment not burning yet (inf: none)."""
    return min((t for c, t in sim.spread.ignite_at.items() if c not in sim.fires), default=math.inf)


def run_batch(sim, end: float, max_steps: int = 1 << 30) -> tuple[float, float, np.ndarray, np.ndarray]:
    """Step ``sim`` towards ``end`` in the compiled loop until a step after which Python must act; returns that
    step's (t0, t1, upper layers' temperatures before it, devices operated in it) for the caller to finish it."""
    zone, links = sim.zone, sim.links
    ist, fst = np.zeros(FS.NIST, np.int64), np.zeros(FS.NFST)
    zargs, out = zone.steps_in(ist, fst)
    fst[[FS.F_T, FS.F_END, FS.F_NEXTREC, FS.F_DTS, FS.F_FOLIM, FS.F_NEXTIGN]] = (
        sim.t, end, sim._next_record, sim.dt_s, sim.t_inside_k + FLASHOVER_DT_K, next_ignition_s(sim))
    if links is not None:
        fst[FS.F_DEVT] = links._t
    n = sim.network.n_compartments
    tu_before, q = np.empty(n), np.empty(n)
    cs, par, st = _fire_arrays(sim)
    dev = _device_arrays(links)
    run = FS.run_steps
    if zone.threads > 1:  # the parallel zone step, on the model's threads (numba's setting is per calling thread)
        run = FS.run_steps_parallel()
        numba.set_num_threads(zone.threads)
    try:
        cur = run(*zargs, out, tu_before, q, cs, par, st, *dev, LAYER_AT_CEILING_M, ist, fst, max_steps)
    except ZeroDivisionError:
        raise _zone_failed(zone.t) from None
    if cur < 0:  # as FireZoneModel._substep
        raise ValidationError(f"{zone.name}: a compartment cannot give its outflow even at dt={fst[FS.F_TRY]:g} s; "
                              "check the network for a tiny compartment behind a large vent")
    zone.steps_out(ist, fst, zargs[1][cur], out, q)
    _fires_back(sim, st)
    _devices_back(links, dev, float(fst[FS.F_T1]))
    sim.q_design = q
    sim.t = float(fst[FS.F_T1])
    sim.batches += 1
    sim.batched_steps += int(ist[FS.I_DONE])
    hit = dev[17][:int(ist[FS.I_NHIT])].copy() if links is not None else np.zeros(0, np.int64)
    return float(fst[FS.F_T0]), float(fst[FS.F_T1]), tu_before, hit


def _zone_failed(t: float) -> ValidationError:
    return ValidationError(f"the zone model failed after t={t:g} s (a division by zero in its kernel: a layer "
                           "emptied within the step); report the building and fire")
