"""The step's tail skips only work that gives exactly nothing: its results are the full loops' to the bit.

- ``door_jets`` works out a jet vent's flows only where one of its two jets can entrain (``_jet_entrains``): its
  ``mix`` is that of every jet vent's flows run through ``_jet_mix`` (the former loop, here in Python over the
  compiled helpers), on compartments with and without layers, jets hotter and colder than their receivers; the
  two-thread ``door_jets_par`` gives the same. Where ``_jet_entrains`` says no, ``_jet_mix`` adds 0 for any flow.
- ``layer_update`` skips the plume's mass and species terms where a compartment has none (no entrainment, no fuel)
  and keeps the balance's sums in locals, and ``_merge_emptied`` writes its two layers' tests out: the former
  loops' new state, transfers, tallies and count of overdrawn compartments, with plumes, oxygen burnt, jet mixing
  and emptied layers among the compartments.
- ``apply_fractions_around`` (from the limited compartments' side) moves the same channels as ``apply_fractions``
  over every vent, closed vents' zeros included, and ``apply_fractions`` with its unlimited sides skipped as well.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import pytest

from physics._kernels import fire_zone as K

PAR = {K.P_R: 287.0, K.P_CP: 1005.0, K.P_G: 9.81, K.P_P0: 101325.0, K.P_TOUT: 300.0, K.P_DELTA: 1e-4,
       K.P_CHIR: 0.35, K.P_Y_CO2: 2.5, K.P_Y_CO: 0.01, K.P_Y_SOOT: 0.015, K.P_Y_H2O: 1.2, K.P_HOT: 5.0}


def _par():
    par = np.zeros(K.NPAR)
    for k, v in PAR.items():
        par[k] = v
    return par


def _jet_case(rng, n=60, m=400):
    """Wall vents whose middle slab is a jet's (upper layer one side, lower the other), between compartments with
    random interfaces, layers present or absent and layer temperatures either way round."""
    vidx = np.stack([rng.integers(0, n, m), rng.integers(-1, n, m)], axis=1).astype(np.int64)
    vidx[vidx[:, 0] == vidx[:, 1], 1] = -1
    vs = np.zeros((m, K.NVS))
    vs[:, K.VS_Z] = 0.0
    vs[:, K.VS_Z + 1] = rng.uniform(0.2, 1.0, m)
    vs[:, K.VS_Z + 2] = vs[:, K.VS_Z + 1] + np.where(rng.random(m) < 0.1, 0.0, rng.uniform(0.1, 1.0, m))
    vs[:, K.VS_Z + 3] = 2.1
    vs[:, K.VS_D:K.VS_D + 4] = rng.normal(0, 1, (m, 4)) * rng.choice([1e-5, 1e-2, 3.0], (m, 1))
    vs[:, K.VS_RHO:K.VS_RHO + 6] = rng.uniform(0.4, 1.2, (m, 6))
    vl = rng.integers(0, 2, (m, 6)).astype(np.int64)
    jets = rng.random(m) < 0.7
    vl[jets, 3] = 1 - vl[jets, 2]
    vl[vidx[:, 1] < 0, 3] = 1  # outside gives its air (a lower layer)
    vl[(vidx[:, 1] < 0) & jets, 2] = 0
    vent = np.zeros((m, K.NVENT))
    vent[:, K.V_BOT], vent[:, K.V_TOP], vent[:, K.V_CD] = 0.0, 2.1, 0.7
    vent[:, K.V_W] = rng.uniform(0.5, 2.0, m)
    vent[:, K.V_OPEN] = np.where(rng.random(m) < 0.1, 0.0, 1.0)
    props = np.zeros((n, K.NPROP))
    props[:, K.Q_P] = 101325.0 + rng.normal(0, 5, n)
    props[:, K.Q_TU] = rng.uniform(290.0, 700.0, n)
    props[:, K.Q_TL] = rng.uniform(290.0, 400.0, n)
    props[:, K.Q_ZI] = rng.uniform(0.0, 2.4, n)
    props[:, K.Q_HASU] = rng.random(n) < 0.7
    props[:, K.Q_HASL] = rng.random(n) < 0.9
    pf = rng.normal(0, 1, n) * rng.choice([1e-5, 1e-2, 1.0], n)
    return pf, vent, vidx, vs, vl, props, _par()


def _door_jets_every_jet(pf, vent, vidx, vs, vl, props, par):
    """The former ``door_jets``: every jet vent's middle slab worked out (``_jet_slab``, the cut path's channels in
    test_fire_step_fast) and both its jets through ``_jet_mix``.
    Returns (mix, how many jets entrained something, how many jets with a flow entrained nothing)."""
    mix = np.zeros((props.shape[0], 2))
    jet = np.zeros((vidx.shape[0], 4))
    took = idle = 0
    for v in range(vidx.shape[0]):
        width = vent[v, K.V_W] * vent[v, K.V_OPEN]
        h = vs[v, K.VS_Z + 2] - vs[v, K.VS_Z + 1]
        if vl[v, 2] == vl[v, 3] or width <= 0.0 or h <= 0.0:
            continue
        a, b = vidx[v]
        c0 = pf[a] - (pf[b] if b >= 0 else 0.0)
        K._jet_slab(v, c0 + vs[v, K.VS_D + 1], c0 + vs[v, K.VS_D + 2], h, vs, vl, par[K.P_DELTA],
                    math.sqrt(par[K.P_DELTA]), vent[v, K.V_CD] * width, jet)
        zb, zt = vent[v, K.V_BOT], vent[v, K.V_TOP]
        for d, layer, r, flow in ((a, vl[v, 2], b, jet[v, 0] + jet[v, 1]), (b, vl[v, 3], a, jet[v, 2] + jet[v, 3])):
            if r < 0 or not flow > 0.0:
                continue
            before = mix[r].copy()
            K._jet_mix(d, layer, r, flow, zb, zt, width, props, par, mix)
            if np.array_equal(before, mix[r]):
                idle += 1
            else:
                took += 1
    return mix, took, idle


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_door_jets_give_every_jets_mixing(seed):
    args = _jet_case(np.random.default_rng(seed))
    want, took, idle = _door_jets_every_jet(*args)
    assert took > 20 and idle > 20  # jets that entrain and jets with a flow that entrain nothing
    mix = np.full_like(want, np.nan)
    K.door_jets(*args, np.full((args[2].shape[0], 4), np.nan), mix)
    np.testing.assert_array_equal(mix, want)


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="numba has one thread here (NUMBA_NUM_THREADS)")
def test_door_jets_on_two_threads_give_the_serial_mixing():
    from physics._kernels import fire_zone_parallel as KP

    args = _jet_case(np.random.default_rng(7))
    want, got = np.zeros((args[5].shape[0], 2)), np.zeros((args[5].shape[0], 2))
    K.door_jets(*args, np.zeros((args[2].shape[0], 4)), want)
    numba.set_num_threads(2)
    KP.door_jets_par(*args, np.zeros((args[2].shape[0], 4)), got)
    np.testing.assert_array_equal(got, want)
    assert np.count_nonzero(want) > 10


def test_a_jet_that_cannot_entrain_adds_nothing_whatever_its_flow():
    rng = np.random.default_rng(3)
    pf, vent, vidx, vs, vl, props, par = _jet_case(rng)
    n = props.shape[0]
    said = {True: 0, False: 0}
    for _ in range(3000):
        d, r = int(rng.integers(-1, n)), int(rng.integers(0, n))
        layer = 1 if d < 0 else int(rng.integers(0, 2))
        zb, zt = rng.uniform(0.0, 1.0), rng.uniform(1.0, 2.4)
        can = K._jet_entrains(d, layer, r, zb, zt, props, par[K.P_TOUT])
        said[bool(can)] += 1
        for flow in (1e-6, 0.3, 40.0):
            mix = np.zeros((n, 2))
            K._jet_mix(d, layer, r, flow, zb, zt, 1.2, props, par, mix)
            assert (np.count_nonzero(mix) > 0) == bool(can), (d, layer, r, zb, zt, flow)
    assert said[True] > 300 and said[False] > 300


def _layer_case(rng, n=80):
    state = np.zeros((n, K.NSTATE))
    state[:, K.MU] = rng.uniform(0.0, 50.0, n) * (rng.random(n) < 0.8)
    state[:3, K.MU] = rng.uniform(1.0, 5.0, 3)  # upper layers the vents empty (below)
    state[:, K.ML] = rng.uniform(1.0, 200.0, n)
    state[:, K.UU] = state[:, K.MU] * 718.0 * rng.uniform(300.0, 700.0, n)
    state[:, K.UL] = state[:, K.ML] * 718.0 * rng.uniform(290.0, 350.0, n)
    for s0, col in ((K.SU, K.MU), (K.SL, K.ML)):
        state[:, s0:s0 + K.NSP] = state[:, [col]] * rng.uniform(0.0, 0.2, (n, K.NSP))
    geom = np.zeros((n, K.NGEOM))
    geom[:, K.G_VOL] = rng.uniform(20.0, 400.0, n)
    props = np.zeros((n, K.NPROP))
    props[:, K.Q_TU] = rng.uniform(300.0, 700.0, n)
    props[:, K.Q_TL] = rng.uniform(290.0, 350.0, n)
    props[:, K.Q_VU] = rng.uniform(0.0, 100.0, n)
    src = np.zeros((n, K.NSRC))
    fire = rng.random(n) < 0.15
    src[fire, 0] = rng.uniform(0.0, 2.0, fire.sum())  # entrainment (one of them maybe 0 with fuel)
    src[fire, 1] = rng.uniform(0.0, 0.05, fire.sum()) * (rng.random(fire.sum()) < 0.7)
    src[fire, 2] = src[fire, 1] * 3.0
    src[:, 3] = np.where(fire, rng.uniform(0.0, 5e5, n), 0.0)
    src[:, 4] = rng.uniform(0.0, 2e3, n) * (rng.random(n) < 0.5)
    src[:, 5] = rng.uniform(0.0, 1e3, n)
    src[:, 7] = rng.uniform(0.0, 1e3, n) * (rng.random(n) < 0.1)
    src[:, 8] = rng.uniform(0.0, 50.0, n) * (rng.random(n) < 0.1)
    qburn = np.where(fire, rng.uniform(0.0, 1e3, n), 0.0)
    mix = rng.uniform(0.0, 0.5, (n, 2)) * (rng.random((n, 2)) < 0.3)
    dm = rng.normal(0, 1.0, (n, 2)) * (rng.random((n, 1)) < 0.7)
    dm[:3, 0] = -state[:3, K.MU]  # layers the vents empty
    dh = rng.normal(0, 3e5, (n, 2)) * (rng.random((n, 1)) < 0.7)
    ds = rng.normal(0, 0.05, (n, 2, K.NSP)) * (rng.random((n, 1, 1)) < 0.7)
    return state, geom, props, _par(), src, mix, qburn, 1.0, dm, dh, ds


def _merge_emptied_loop(new_state, i, floor):
    """The former ``_merge_emptied``: a loop over the two layers' columns, the upper layer first."""
    tiny = 1e-9 * (new_state[i, K.MU] + new_state[i, K.ML])
    for m_col, u_col, s_col, om, ou, os in ((K.MU, K.UU, K.SU, K.ML, K.UL, K.SL),
                                            (K.ML, K.UL, K.SL, K.MU, K.UU, K.SU)):
        if floor <= new_state[i, m_col] and (new_state[i, m_col] < tiny
                                             or (new_state[i, u_col] <= 0.0 and new_state[i, m_col] < 1e5 * tiny)):
            new_state[i, om] += new_state[i, m_col]
            new_state[i, ou] += new_state[i, u_col]
            new_state[i, m_col] = 0.0
            new_state[i, u_col] = 0.0
            new_state[i, os:os + K.NSP] += new_state[i, s_col:s_col + K.NSP]
            new_state[i, s_col:s_col + K.NSP] = 0.0
            return True
    return False


def _layer_update_every_term(state, geom, props, par, src, mix, qburn, dt, dm, dh, ds, tally, new_state):
    """The former ``layer_update`` loop, every compartment's plume terms added, the emptied layers merged by the
    former loop (in Python over the compiled jet mixing). Returns (overdrawn compartments, merged layers)."""
    cp = par[K.P_CP]
    gamma = cp / (cp - par[K.P_R])
    yields = np.zeros(K.NSP)
    yields[[K.SP_CO2, K.SP_CO, K.SP_SOOT, K.SP_H2O]] = par[[K.P_Y_CO2, K.P_Y_CO, K.P_Y_SOOT, K.P_Y_H2O]]
    bad = merged = 0
    for i in range(state.shape[0]):
        ent, mf, mo2, qconv, wu, wl = src[i, :6]
        tl, ml0 = props[i, K.Q_TL], state[i, K.ML]
        dm[i, 0] += (ent + mf) * dt
        dm[i, 1] -= ent * dt
        dh[i, 0] += (cp * tl * (ent + mf) + qconv - wu) * dt
        dh[i, 1] += (-cp * tl * ent - wl) * dt
        for s in range(K.NSP):
            y = state[i, K.SL + s] / ml0 if ml0 > 0.0 else 0.0
            ds[i, 0, s] += (y * ent + yields[s] * mf) * dt
            ds[i, 1, s] -= y * ent * dt
        ds[i, 0, K.SP_O2] -= mo2 * dt
        if mix[i, 0] > 0.0 or mix[i, 1] > 0.0:
            K._mix_layers(i, mix, dt, state, props, par, dm, dh, ds)
        tally[K.T_WALLS] += (wu + wl - src[i, 8]) * dt
        tally[K.T_LAYER_RAD] += src[i, 7] * dt
        tally[K.T_VENT_RAD] += src[i, 8] * dt
        tally[K.T_RADIATED] += par[K.P_CHIR] * qburn[i] * 1000.0 * dt
        tally[K.T_RELEASED] += qburn[i] * 1000.0 * dt
        tally[K.T_FUEL_MASS] += mf * dt
        tally[K.T_FUEL_H] += cp * tl * mf * dt
        du_tot = dh[i, 0] + dh[i, 1]
        du_u = (dh[i, 0] + props[i, K.Q_VU] * ((gamma - 1.0) * du_tot / geom[i, K.G_VOL])) / gamma
        new_state[i, K.MU] = state[i, K.MU] + dm[i, 0]
        new_state[i, K.ML] = state[i, K.ML] + dm[i, 1]
        new_state[i, K.UU] = state[i, K.UU] + du_u
        new_state[i, K.UL] = state[i, K.UL] + (du_tot - du_u)
        new_state[i, K.SU:K.SU + K.NSP] = state[i, K.SU:K.SU + K.NSP] + ds[i, 0]
        new_state[i, K.SL:K.SL + K.NSP] = state[i, K.SL:K.SL + K.NSP] + ds[i, 1]
        floor = -1e-12 * (state[i, K.MU] + ml0)
        merged += _merge_emptied_loop(new_state, i, floor)
        ns = new_state[i]
        if ns[K.MU] < floor or ns[K.ML] < floor or not (ns[K.MU] + ns[K.ML] > 0.0 and ns[K.UU] + ns[K.UL] > 0.0) \
                or (ns[K.MU] > 0.0 and ns[K.UU] < 0.0) or (ns[K.ML] > 0.0 and ns[K.UL] < 0.0):
            bad += 1
    return bad, merged


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_layer_update_gives_the_every_term_update(seed):
    state, geom, props, par, src, mix, qburn, dt, dm, dh, ds = _layer_case(np.random.default_rng(seed))
    assert np.any((src[:, 0] == 0.0) & (src[:, 1] == 0.0)) and np.any(src[:, 0] > 0.0) and np.any(src[:, 2] > 0.0)
    tally0 = np.random.default_rng(seed + 10).uniform(0.0, 1e6, K.NTALLY)
    want = [dm.copy(), dh.copy(), ds.copy(), tally0.copy(), np.full_like(state, np.nan)]
    got = [dm.copy(), dh.copy(), ds.copy(), tally0.copy(), np.full_like(state, np.nan)]
    bad_want, merged = _layer_update_every_term(state, geom, props, par, src, mix, qburn, dt, *want)
    bad_got = K.layer_update(state, geom, props, par, src, mix, qburn, dt, *got)
    assert merged >= 3  # the layers the vents emptied were merged
    assert bad_got == bad_want
    for w, g, name in zip(want, got, ("dm", "dh", "ds", "tally", "new_state"), strict=True):
        np.testing.assert_array_equal(g, w, err_msg=name)


@pytest.mark.parametrize("seed", [0, 1])
def test_apply_fractions_around_the_limited_compartments_moves_every_channel(seed):
    rng = np.random.default_rng(seed)
    n, m, kk = 50, 300, 40
    vidx = np.stack([rng.integers(0, n, m), rng.integers(-1, n, m)], axis=1).astype(np.int64)
    vidx[vidx[:, 0] == vidx[:, 1], 1] = -1
    vvidx = np.stack([rng.integers(0, n, kk), rng.integers(-1, n, kk)], axis=1).astype(np.int64)
    vvidx[vvidx[:, 0] == vvidx[:, 1], 1] = -1
    chan = rng.uniform(0.0, 3.0, (m, 4)) * (rng.random((m, 4)) < 0.5)
    closed = rng.random(m) < 0.3
    chan[closed] = 0.0
    vchan = rng.uniform(0.0, 3.0, (kk, 4)) * (rng.random((kk, 4)) < 0.5)
    fu, fl = np.ones(n), np.ones(n)
    lim = rng.choice(n, 12, replace=False)
    fu[lim[:6]] = rng.uniform(0.0, 1.0, 6)
    fl[lim[6:]] = rng.uniform(0.0, 1.0, 6)
    want_c, want_v = chan.copy(), vchan.copy()
    for v in range(m):  # every vent, every side (the former loop)
        for c0, side in ((0, vidx[v, 0]), (2, vidx[v, 1])):
            if side >= 0:
                K._reassign(want_c, v, c0, fu[side], fl[side])
    for k in range(kk):
        for c0, side in ((0, vvidx[k, 0]), (2, vvidx[k, 1])):
            if side >= 0:
                K._reassign(want_v, k, c0, fu[side], fl[side])
    assert not np.array_equal(want_c, chan)
    ptr, adj = K.vent_adjacency(n, vidx)
    got_c, got_v = chan.copy(), vchan.copy()
    K.apply_fractions_around(got_c, got_v, vidx, vvidx, fu, fl, ptr, adj)
    np.testing.assert_array_equal(got_c, want_c)
    np.testing.assert_array_equal(got_v, want_v)
    open_vents = np.flatnonzero(~closed)
    for vents in (None, open_vents):
        got_c, got_v = chan.copy(), vchan.copy()
        K.apply_fractions(got_c, got_v, vidx, vvidx, fu, fl, vents)
        np.testing.assert_array_equal(got_c, want_c)
        np.testing.assert_array_equal(got_v, want_v)
