"""Two-thread variant of the fire zone kernel's step (:func:`step`, opt-in: ``FireZoneModel(threads=2)``).

The same numbers as :func:`physics._kernels.fire_zone.step` to the bit: only loops whose iterations write
disjoint rows run in parallel (numba ``prange``), and every sum over vents into a compartment is made
afterwards in the serial code's order. The loops taken in parallel are those that carry the step's cost:

- the vents' flows in every evaluation of the residual (:func:`residual_and_merit_par`): the open wall vents cut
  into :data:`RUNS` runs, one per thread, each run by the serial loops themselves (the first
  :func:`~physics._kernels.fire_zone.wall_flows_summed`, summing as it goes, the others
  :func:`~physics._kernels.fire_zone.wall_flows`, the last also the ceiling vents), then the later runs' parts of the
  residual and of the layers' outflows added in the serial order; the same runs for the re-evaluation of the
  vents around moved donors (:func:`wall_flows_some`, from :data:`MIN_PARALLEL_VENTS` vents);
- the fire sources (:func:`fire_sources_par`) and the wall vents' statics (:func:`wall_statics_par`, in
  :func:`wall_slabs_par`), per compartment and per vent;
- the door jets' entrainment (:func:`door_jets_par`: per vent in parallel, added to ``mix`` in the vents' order)
  and the layer update (:func:`layer_update_par`: per compartment, the balance's tallies then summed in order).

The slab table stays serial: filled in parallel it took longer (25.4-26.4 µs against 22.6-23.7 µs on a captured
tower step, idle machine).

The orchestration (the step, Newton's loop and its line search) is not copied: :func:`_rebound` makes a
second dispatcher of the serial function's own code with the parallel pieces bound in place of the serial ones
(its own name, so its own cache entry; invalidated with ``fire_zone.py``'s like the serial one's).

What it gives (the 115-storey bench tower, 2 h, an idle 2-core machine, numba's OpenMP layer, four alternated
pairs through the run's compiled steps): 9.5-9.7 s (x 741-759 real time) against 10.4-11.1 s (x 648-690) serial,
7-13 % off the wall time, the CPU time doubled (19 s: the second thread spins between regions). The pieces are
short (a residual 81 -> 70 µs, the statics 55 -> 32, the door jets 54 -> 28 µs) and the LDLᵀ solves stay serial.
Why opt-in: each parallel region (~10 a step) hands work to the other core and waits for it at
the end; idle, a region costs ~2 µs, but on a machine whose cores are busy the other thread is descheduled and each
region waits a scheduler slice: under load 4-5 the step took 10-100 ms against 2-4 ms serial.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numba
import numpy as np
from numba import njit, prange

from physics._kernels import fire_zone as K
from physics._kernels.fire_zone import (
    COLD_JET_FACTOR,
    G_VOL,
    ML,
    MU,
    NSP,
    P_CHIR,
    P_CP,
    P_DELTA,
    P_R,
    P_TOUT,
    P_Y_CO,
    P_Y_CO2,
    P_Y_H2O,
    P_Y_SOOT,
    Q_HASL,
    Q_HASU,
    Q_P,
    Q_TL,
    Q_TU,
    Q_VU,
    Q_ZI,
    SL,
    SP_CO,
    SP_CO2,
    SP_H2O,
    SP_O2,
    SP_SOOT,
    SU,
    T_FUEL_H,
    T_FUEL_MASS,
    T_LAYER_RAD,
    T_RADIATED,
    T_RELEASED,
    T_VENT_RAD,
    T_WALLS,
    UL,
    UU,
    V_BOT,
    V_CD,
    V_OPEN,
    V_TOP,
    V_W,
    VS_D,
    VS_Z,
    _jet_entrains,
    _jet_slab,
    _merge_emptied,
    _mix_layers,
    _plume_transfers,
    ceiling_flow,
    poreh_entrainment,
)
from physics._kernels.rebind import rebound

#: runs of wall vents per evaluation of the flows, one per thread (a constant: numba's thread count read inside a
#: kernel would keep it from its cache)
RUNS = 2


@njit(cache=True, inline="always")
def _chunk(nw, parts, c):
    """Bounds of part ``c`` of ``parts`` nearly equal parts of ``nw`` items."""
    return c * nw // parts, (c + 1) * nw // parts


@njit(cache=True)
def _balanced_runs(vents, first, parts, extra):
    """Where to cut the open wall vents ``vents`` (ascending, each with its rows of the slab table) into ``parts``
    runs of about equal work: equal shares of their slab rows, the last run also ``extra`` rows' worth (the ceiling
    vents). Returns (parts + 1,) indices into ``vents``. (Equal numbers of vents left the upper half, with more
    slabs cut at a neutral plane, 20 % slower than the lower.)"""
    nw = vents.shape[0]
    cut = np.empty(parts + 1, np.int64)
    cut[0], cut[parts] = 0, nw
    if nw == 0:
        cut[:] = 0
        return cut
    r0 = first[vents[0]]
    total = first[vents[nw - 1] + 1] - r0 + extra
    for c in range(1, parts):
        target = r0 + c * total // parts
        lo, hi = cut[c - 1], nw  # the first vent whose rows start at or after the target (bisection)
        while lo < hi:
            mid = (lo + hi) // 2
            if first[vents[mid]] < target:
                lo = mid + 1
            else:
                hi = mid
        cut[c] = lo
    return cut


@njit(cache=True, parallel=True, error_model="numpy")
def _wall_flows_parts(vents, pf, vidx, first, sp, delta, chan, hv, wv, parts, res, du, dl, dt, kk, vvidx, vvs,
                      ct, cp, vchan, hvv, wvv):
    """The wall vents ``vents`` cut into ``parts`` runs of about equal work (:func:`_balanced_runs`), one per
    thread: the first run by the serial
    :func:`~physics._kernels.fire_zone.wall_flows_summed` (its sums into ``res``, ``du``, ``dl`` come first in the
    serial order, and no other run touches them), the others by :func:`~physics._kernels.fire_zone.wall_flows`
    (flows only, summed after by the caller), the last also the first ``kk`` ceiling vents'
    :func:`~physics._kernels.fire_zone.ceiling_flow`. The serial loops themselves, so the same numbers."""
    cut = _balanced_runs(vents, first, parts, kk)
    for c in prange(parts):
        lo, hi = cut[c], cut[c + 1]
        if c == 0:
            K.wall_flows_summed(vents[lo:hi], pf, vidx, first, sp, delta, chan, hv, wv, res, du, dl, dt)
        else:
            K.wall_flows(vents[lo:hi], pf, vidx, first, sp, delta, chan, hv, wv)
        if c == parts - 1:
            for k in range(kk):
                hf, w = ceiling_flow(k, pf, vvidx, vvs, ct, cp, delta, vchan)
                wvv[k] = w
                hvv[k] = hf


@njit(cache=True)
def residual_and_merit_par(dp, pn, dt, diag, geom, props, par, vidx, vvidx, src, stat, chan, vchan, res, wv, wvv, hv,
                           hvv, pf, du, dl):
    """:func:`~physics._kernels.fire_zone.residual_and_merit`: the open wall vents' and the ceiling vents' flows in
    one parallel region, a run of vents per thread (:func:`_wall_flows_parts`; the first run summed as it goes),
    then the other runs' parts of the residual and of the layers' outflows added in the serial code's order (the
    wall vents as :func:`~physics._kernels.fire_zone.wall_flows_summed` adds them, then the ceiling vents)."""
    n = res.shape[0]
    gm1 = par[P_R] / (par[P_CP] - par[P_R])
    for i in range(n):
        pf[i] = pn[i] + dp[i]
    for i in range(n):
        res[i] = diag[i] * dp[i] - (src[i, 3] - src[i, 4] - src[i, 5] + par[P_CP] * props[i, Q_TL] * src[i, 1])
        du[i] = 0.0
        dl[i] = 0.0
    vents = stat[6]
    parts = min(RUNS, max(vents.shape[0], 1))
    _wall_flows_parts(vents, pf, vidx, stat[4], stat[5], par[P_DELTA], chan, hv, wv, parts, res, du, dl, dt,
                      vvidx.shape[0], vvidx, stat[2], stat[7], par[P_CP], vchan, hvv, wvv)
    for j in range(_balanced_runs(vents, stat[4], parts, vvidx.shape[0])[1], vents.shape[0]):  # the later runs
        v = vents[j]
        a, b = vidx[v, 0], vidx[v, 1]
        res[a] += hv[v]
        du[a] += chan[v, 0] * dt
        dl[a] += chan[v, 1] * dt
        if b >= 0:
            res[b] -= hv[v]
            du[b] += chan[v, 2] * dt
            dl[b] += chan[v, 3] * dt
    for k in range(vvidx.shape[0]):
        res[vvidx[k, 0]] += hvv[k]
        if vvidx[k, 1] >= 0:
            res[vvidx[k, 1]] -= hvv[k]
    return K.error_and_merit(res, geom, gm1, dt)


#: fewer wall vents than this are evaluated serially (a parallel region costs microseconds to start and end; the
#: re-evaluations of the vents around the compartments whose donors moved are often a few dozen)
MIN_PARALLEL_VENTS = 256


@njit(cache=True, parallel=True, error_model="numpy")
def _wall_flows_runs(vents, pf, vidx, first, sp, delta, chan, hv, wv, parts):
    """:func:`~physics._kernels.fire_zone.wall_flows` over ``parts`` runs of ``vents``, one per thread."""
    nw = vents.shape[0]
    for c in prange(parts):
        lo, hi = _chunk(nw, parts, c)
        K.wall_flows(vents[lo:hi], pf, vidx, first, sp, delta, chan, hv, wv)


@njit(cache=True, error_model="numpy")
def wall_flows_some(vents, pf, vidx, first, sp, delta, chan, hv, wv):
    """:func:`~physics._kernels.fire_zone.wall_flows`, in runs over the threads (:func:`_wall_flows_runs`) for at
    least :data:`MIN_PARALLEL_VENTS` vents: the same numbers either way."""
    if vents.shape[0] < MIN_PARALLEL_VENTS:
        K.wall_flows(vents, pf, vidx, first, sp, delta, chan, hv, wv)
    else:
        _wall_flows_runs(vents, pf, vidx, first, sp, delta, chan, hv, wv, RUNS)


@njit(cache=True, parallel=True)
def door_jets_par(pf, vent, vidx, vs, vl, props, par, jet, mix):
    """:func:`~physics._kernels.fire_zone.door_jets`: each jet vent's flows (where its jet can entrain,
    :func:`~physics._kernels.fire_zone._jet_entrains`) and the entrainment of each receiver
    (:func:`~physics._kernels.fire_zone._jet_mix`'s expressions) with the vents in parallel, then added to ``mix``
    in the vents' order (receiver b, then a, as the serial loop adds them)."""
    for i in range(mix.shape[0]):
        mix[i, 0] = 0.0
        mix[i, 1] = 0.0
    m = vidx.shape[0]
    col = np.empty((m, 2), np.int64)  # per vent: mix's column of receiver b and of receiver a (-1: none)
    ent = np.empty((m, 2))
    for v in prange(m):
        col[v, 0] = -1
        col[v, 1] = -1
        if vl[v, 2] == vl[v, 3]:  # no jet slab (the usual case; its rows of ``jet`` are left as they were)
            continue
        width = vent[v, V_W] * vent[v, V_OPEN]
        h = vs[v, VS_Z + 2] - vs[v, VS_Z + 1]
        if width <= 0.0 or h <= 0.0:
            continue
        a, b = vidx[v, 0], vidx[v, 1]
        zb, zt = vent[v, V_BOT], vent[v, V_TOP]
        into_b = b >= 0 and _jet_entrains(a, vl[v, 2], b, zb, zt, props, par[P_TOUT])
        into_a = _jet_entrains(b, vl[v, 3], a, zb, zt, props, par[P_TOUT])
        if not (into_b or into_a):  # (most jet vents; their rows of ``jet`` are left as they were)
            continue
        for c in range(4):
            jet[v, c] = 0.0
        c0 = pf[a] - (pf[b] if b >= 0 else 0.0)
        _jet_slab(v, c0 + vs[v, VS_D + 1], c0 + vs[v, VS_D + 2], h, vs, vl, par[P_DELTA], math.sqrt(par[P_DELTA]),
                  vent[v, V_CD] * width, jet)
        if into_b and jet[v, 0] + jet[v, 1] > 0.0:
            col[v, 0], ent[v, 0] = _jet_entrainment(a, vl[v, 2], b, jet[v, 0] + jet[v, 1], zb, zt, width, props,
                                                    par)
        if into_a and jet[v, 2] + jet[v, 3] > 0.0:
            col[v, 1], ent[v, 1] = _jet_entrainment(b, vl[v, 3], a, jet[v, 2] + jet[v, 3], zb, zt, width, props,
                                                    par)
    for v in range(m):
        if col[v, 0] >= 0:
            mix[vidx[v, 1], col[v, 0]] += ent[v, 0]
        if col[v, 1] >= 0:
            mix[vidx[v, 0], col[v, 1]] += ent[v, 1]


@njit(cache=True, inline="always")
def _jet_entrainment(d, layer_d, r, flow, zb, zt, width, props, par):
    """(column of ``mix``, kg/s) that :func:`~physics._kernels.fire_zone._jet_mix` adds to receiver ``r``'s row,
    column −1 where it adds nothing: its expressions, to the character."""
    zi_r = props[r, Q_ZI]
    zi_d = props[d, Q_ZI] if d >= 0 else 1e300
    if layer_d == 0:
        if props[r, Q_HASL] > 0.0:
            zd = max(0.0, zi_r - max(zb, zi_d))
            return 0, poreh_entrainment(props[d, Q_TU], props[r, Q_TL], flow, zd, width, props[r, Q_P], par)
    elif props[r, Q_HASU] > 0.0:
        t_jet = props[d, Q_TL] if d >= 0 else par[P_TOUT]
        zd = max(0.0, min(zt, zi_d) - max(zi_r, zb))
        return 1, COLD_JET_FACTOR * poreh_entrainment(props[r, Q_TU], t_jet, flow, zd, width, props[r, Q_P], par)
    return -1, 0.0


@njit(cache=True, parallel=True)
def layer_update_par(state, geom, props, par, src, mix, qburn, dt, dm, dh, ds, tally, new_state):
    """:func:`~physics._kernels.fire_zone.layer_update` with the compartments in parallel (each writes its own rows
    of ``dm``, ``dh``, ``ds``, ``new_state``), the balance terms then added to ``tally`` in the compartments'
    order (the serial sums): the loop's body otherwise to the character."""
    n = state.shape[0]
    cp = par[P_CP]
    gamma = cp / (cp - par[P_R])
    gm1 = gamma - 1.0
    yields = np.zeros(NSP)
    yields[SP_CO2] = par[P_Y_CO2]
    yields[SP_CO] = par[P_Y_CO]
    yields[SP_SOOT] = par[P_Y_SOOT]
    yields[SP_H2O] = par[P_Y_H2O]
    flag = np.zeros(n, np.int64)
    for i in prange(n):
        ent, mf, mo2, qconv, wu, wl = src[i, 0], src[i, 1], src[i, 2], src[i, 3], src[i, 4], src[i, 5]
        tl = props[i, Q_TL]
        ml0 = state[i, ML]
        # plume: entrained lower-layer gas and the fire's products to the upper layer
        if ent != 0.0 or mf != 0.0:  # (a plume: its mass and species terms are exactly 0 elsewhere, skipped)
            _plume_transfers(i, ent, mf, dt, state, yields, dm, ds)
        dh[i, 0] += (cp * tl * (ent + mf) + qconv - wu) * dt
        dh[i, 1] += (-cp * tl * ent - wl) * dt
        if mo2 != 0.0:
            ds[i, 0, SP_O2] -= mo2 * dt
        if mix[i, 0] > 0.0 or mix[i, 1] > 0.0:
            _mix_layers(i, mix, dt, state, props, par, dm, dh, ds)
        du_tot = dh[i, 0] + dh[i, 1]
        dpi = gm1 * du_tot / geom[i, G_VOL]
        du_u = (dh[i, 0] + props[i, Q_VU] * dpi) / gamma
        new_state[i, MU] = state[i, MU] + dm[i, 0]
        new_state[i, ML] = state[i, ML] + dm[i, 1]
        new_state[i, UU] = state[i, UU] + du_u
        new_state[i, UL] = state[i, UL] + (du_tot - du_u)
        for s in range(NSP):
            new_state[i, SU + s] = state[i, SU + s] + ds[i, 0, s]
            new_state[i, SL + s] = state[i, SL + s] + ds[i, 1, s]
        _merge_emptied(new_state, i, -1e-12 * (state[i, MU] + ml0))
        if new_state[i, MU] < -1e-12 * (state[i, MU] + ml0) or new_state[i, ML] < -1e-12 * (state[i, MU] + ml0):
            flag[i] = 1
        elif not (new_state[i, MU] + new_state[i, ML] > 0.0 and new_state[i, UU] + new_state[i, UL] > 0.0):
            flag[i] = 1  # emptied (or not a number): the step was too long for this compartment
        elif (new_state[i, MU] > 0.0 and new_state[i, UU] < 0.0) or (new_state[i, ML] > 0.0 and new_state[i, UL] < 0.0):
            flag[i] = 1  # a layer with mass and no energy: the pressure work of a too-long step
    bad = 0
    for i in range(n):
        wu, wl, mf, tl = src[i, 4], src[i, 5], src[i, 1], props[i, Q_TL]
        tally[T_WALLS] += (wu + wl - src[i, 8]) * dt
        tally[T_LAYER_RAD] += src[i, 7] * dt
        tally[T_VENT_RAD] += src[i, 8] * dt
        tally[T_RADIATED] += par[P_CHIR] * qburn[i] * 1000.0 * dt
        tally[T_RELEASED] += qburn[i] * 1000.0 * dt
        tally[T_FUEL_MASS] += mf * dt
        tally[T_FUEL_H] += cp * tl * mf * dt
        bad += flag[i]
    return bad


#: this file's own hash, in the names of :func:`_rebound`'s dispatchers: numba keys their cache on ``fire_zone.py``
#: (the file their code is read from), so an edit here must give them other names to be compiled again
_TAG = hashlib.sha1(Path(__file__).read_bytes()).hexdigest()[:10]


def _rebound(disp, name, **swap):
    """A second dispatcher of the serial kernel function ``disp``'s own code with the globals in ``swap`` (the
    parallel pieces) bound in place of the serial ones (:func:`~physics._kernels.rebind.rebound`). Named ``name`` and
    this file's :data:`_TAG`: its cache entry is its own, compiled again when ``fire_zone.py`` (numba's stamp) or this
    file (the name) changes. Same options as the serial function's."""
    return rebound(disp, f"{name}_{_TAG}", "Parallel pieces bound in (:mod:`physics._kernels.fire_zone_parallel`):",
                   **swap)


#: the wall vents' statics (per vent) and the fire sources (per compartment) in parallel: the serial functions' own
#: code, whose loop is a ``prange`` (``range`` in the serial kernel), compiled with ``parallel=True``
wall_statics_par = rebound(K.wall_statics, f"wall_statics_par_{_TAG}", "In parallel over the vents:", parallel=True)
fire_sources_par = rebound(K.fire_sources, f"fire_sources_par_{_TAG}", "In parallel over the compartments:",
                           parallel=True)
@njit(cache=True)
def wall_slabs_par(vent, vidx, geom, props, par, teff, vs, vl, first, sp, ovents, oc, a_open):
    """:func:`~physics._kernels.fire_zone.wall_slabs` as the parallel statics (:func:`wall_statics_par`, every
    column of ``vs``/``vl``), then the serial slab table, open vents and wall vents' open area: the same numbers in
    ``first``, ``sp``, ``ovents``, ``a_open`` and in the columns of ``vs``/``vl`` the door jets read."""
    for v in range(vidx.shape[0]):
        if vidx[v, 1] < 0:
            a_open[vidx[v, 0]] += vent[v, V_W] * vent[v, V_OPEN] * (vent[v, V_TOP] - vent[v, V_BOT])
    wall_statics_par(vent, vidx, geom, props, par, vs, vl, oc)
    K.slab_table(vent, vidx, vs, vl, par, teff, first, sp)
    return K.open_vents(first, ovents)


line_search_merit_par = _rebound(K.line_search_merit, "line_search_merit_par",
                                 residual_and_merit=residual_and_merit_par)
update_vents_into_par = _rebound(K.update_vents_into, "update_vents_into_par", wall_flows=wall_flows_some)
solve_pressures_par = _rebound(K.solve_pressures, "solve_pressures_par", residual_and_merit=residual_and_merit_par,
                               line_search_merit=line_search_merit_par, update_vents_into=update_vents_into_par)
step = _rebound(K.step, "step_par", fire_sources=fire_sources_par, wall_slabs=wall_slabs_par,
                solve_pressures=solve_pressures_par, door_jets=door_jets_par, layer_update=layer_update_par)


def step_on(threads: int):
    """:func:`step` on ``threads`` threads (numba's ``set_num_threads`` before each call: the setting is per
    calling thread, so it holds wherever the model is stepped); what ``FireZoneModel(threads=n)`` steps with."""

    def run(*args):
        numba.set_num_threads(threads)
        return step(*args)

    run.threads = threads
    return run
