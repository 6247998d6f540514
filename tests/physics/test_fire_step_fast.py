"""The fast paths of a fire step are the general path's arithmetic, to the bit.

- A wall-vent slab whose Δp stays clear of ±δ over its height is one piece of the orifice law: ``wall_flows`` and
  ``_jet_slab`` (``door_jets``' jets) work it out directly instead of through ``piece_ends``' cuts; on slabs of every
  kind (one piece, crossing 0, crossing ±δ, within ±δ, empty) the flows, channels and weights are the cut path's.
- ``wall_flows_summed`` (the residual's wall vents, their sums taken as each vent is worked out) gives
  ``wall_flows``' flows and the residual's former second pass over the vents (``res``, the layers' outflows) to the
  bit; ``accept_guess`` is the numpy bookkeeping after a step (a non-finite change zeroed, the rate remembered), and
  ``set_open`` the numpy column assignment.
- ``step_outputs`` (what a model reads after every step) is ``compartment_outputs`` without the species, and the
  upper layers' extinction the numpy product.
- A fire's heat release at one time in floats (``FireSource._undecayed_at``, a step's call) is the numpy curve's
  (``_undecayed``) for growth, caps, flashover and both sprinkler modes.
- A run reports a pane falling out (``glazing_broken``) at the step it falls, as before: the run only looks at the
  panes when the zone's count of broken panes moved.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from physics._kernels import fire_zone as K
from physics.fire_correlations import SOOT_EXTINCTION_M2_KG
from physics.fire_sim import FireSimulation
from physics.fire_source import FireSource

DELTA = 1e-4


def _cut_path_wall(vents, pf, vidx, first, sp, delta, chan, hv, wv):
    """``wall_flows`` with every slab cut by ``piece_ends`` (the general path), in Python over the compiled
    helpers."""
    for v in vents:
        a, b = vidx[v]
        c0 = pf[a] - (pf[b] if b >= 0 else 0.0)
        chan[v] = 0.0
        hflow = weight = 0.0
        for r in range(first[v], first[v + 1]):
            x1, x2 = c0 + sp[r, K.OS_D0], c0 + sp[r, K.OS_D1]
            dx, t_prev = x2 - x1, 0.0
            for t in K.piece_ends(x1, x2, delta):
                if not t > t_prev:
                    continue
                ya, yb, share, t_prev = x1 + dx * t_prev, x1 + dx * t, t - t_prev, t
                fwd = 0.5 * (ya + yb) >= 0.0
                coef = sp[r, K.OS_CA] if fwd else sp[r, K.OS_CB]
                hcp = sp[r, K.OS_HA] if fwd else sp[r, K.OS_HB]
                col = int(sp[r, K.OS_COLA] if fwd else sp[r, K.OS_COLB])
                f, dfdp = K._piece(ya, yb, share, coef, delta)
                chan[v, col] += abs(f)
                hflow += hcp * f
                weight += hcp * dfdp
        hv[v], wv[v] = hflow, weight


def _mixed_table(rng, m=400):
    """A slab table whose slabs span every case: Δp ranges clear of ±δ (one piece), across 0, across ±δ only,
    inside ±δ, and points (a slab of zero Δp range)."""
    n = 60
    vidx = np.stack([rng.integers(0, n, m), rng.integers(-1, n, m)], axis=1)
    vidx[vidx[:, 0] == vidx[:, 1], 1] = -1
    per = rng.integers(0, 4, m)
    first = np.concatenate([[0], np.cumsum(per)]).astype(np.int64)
    rows = first[-1]
    sp = np.empty((rows, K.NOS))
    scale = rng.choice([1e-6, 5e-5, 2e-4, 1e-2, 3.0], rows)
    sp[:, K.OS_D0] = rng.normal(0, 1, rows) * scale
    sp[:, K.OS_D1] = np.where(rng.random(rows) < 0.2, sp[:, K.OS_D0], sp[:, K.OS_D0] + rng.normal(0, 1, rows) * scale)
    sp[:, K.OS_CA] = rng.uniform(0.1, 3.0, rows)
    sp[:, K.OS_CB] = rng.uniform(0.1, 3.0, rows)
    sp[:, K.OS_HA] = 1005.0 * rng.uniform(290, 900, rows)
    sp[:, K.OS_HB] = 1005.0 * rng.uniform(290, 900, rows)
    sp[:, K.OS_COLA] = rng.integers(0, 2, rows)
    sp[:, K.OS_COLB] = 2 + rng.integers(0, 2, rows)
    pf = rng.normal(0, 1, n) * rng.choice([1e-5, 1e-4, 1.0], n)
    return n, vidx.astype(np.int64), first, sp, pf


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_one_piece_slabs_equal_the_cut_path(seed):
    rng = np.random.default_rng(seed)
    n, vidx, first, sp, pf = _mixed_table(rng)
    m = vidx.shape[0]
    vents = np.arange(m)
    got = [np.zeros((m, 4)), np.empty(m), np.empty(m)]
    want = [np.zeros((m, 4)), np.empty(m), np.empty(m)]
    K.wall_flows(vents, pf, vidx, first, sp, DELTA, *got)
    _cut_path_wall(vents, pf, vidx, first, sp, DELTA, *want)
    x = pf[vidx[:, 0]][:, None] - np.where(vidx[:, 1:] >= 0, pf[vidx[:, 1:]], 0.0)  # c0 per vent
    d0 = np.array([x[v, 0] + sp[r, K.OS_D0] for v in range(m) for r in range(first[v], first[v + 1])])
    d1 = np.array([x[v, 0] + sp[r, K.OS_D1] for v in range(m) for r in range(first[v], first[v + 1])])
    one = (np.minimum(d0, d1) > DELTA) | (np.maximum(d0, d1) < -DELTA)
    assert 0.2 < one.mean() < 0.9  # both paths are exercised
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("seed", [0, 1])
def test_wall_flows_summed_equal_wall_flows_and_the_second_pass(seed):
    rng = np.random.default_rng(seed)
    n, vidx, first, sp, pf = _mixed_table(rng)
    m, dt = vidx.shape[0], 0.5
    vents = np.flatnonzero(first[1:] > first[:-1])  # the open vents, ascending (the step's list)
    res0 = rng.normal(0, 1e3, n)
    want = [np.zeros((m, 4)), np.zeros(m), np.zeros(m)]
    K.wall_flows(vents, pf, vidx, first, sp, DELTA, *want)
    chan, hv = want[0], want[1]
    res_w, du_w, dl_w = res0.copy(), np.zeros(n), np.zeros(n)
    for v in vents:  # the residual's second pass before the change, in the vents' order
        a, b = vidx[v]
        res_w[a] += hv[v]
        du_w[a] += chan[v, 0] * dt
        dl_w[a] += chan[v, 1] * dt
        if b >= 0:
            res_w[b] -= hv[v]
            du_w[b] += chan[v, 2] * dt
            dl_w[b] += chan[v, 3] * dt
    got = [np.zeros((m, 4)), np.zeros(m), np.zeros(m)]
    res_g, du_g, dl_g = res0.copy(), np.zeros(n), np.zeros(n)
    K.wall_flows_summed(vents, pf, vidx, first, sp, DELTA, *got, res_g, du_g, dl_g, dt)
    for g, w in zip(got + [res_g, du_g, dl_g], want + [res_w, du_w, dl_w], strict=True):
        np.testing.assert_array_equal(g, w)


def _remember_rate(rate, rates, rate_sum, pos, n_rates):
    """The model's bookkeeping before a482b70, in numpy: ``rate`` into the ring ``rates`` at row ``pos`` and its
    running sum; whether the ring's mean (of ``n_rates`` rows) predicted ``rate`` better than the last row did (the
    largest error over the compartments smaller), False while the ring is empty."""
    better = False
    if n_rates > 0:  # max() element by element, as the kernel had it: a NaN error is passed over, not propagated
        prev = (pos - 1) % rates.shape[0]
        e_last = e_mean = 0.0
        for i in range(rate.shape[0]):
            e_last = max(e_last, abs(rate[i] - rates[prev, i]))
            e_mean = max(e_mean, abs(rate[i] - rate_sum[i] / n_rates))
        better = e_mean < e_last
    rate_sum += rate - rates[pos]
    rates[pos] = rate
    return bool(better)


@pytest.mark.parametrize("ring", [1, 4])
def test_accept_guess_is_the_numpy_bookkeeping(ring):
    rng = np.random.default_rng(3)
    n, dt = 50, 0.7
    rates, rate_sum = rng.normal(0, 1, (ring, n)), rng.normal(0, 1, n)
    for bad in (False, True):
        dp = rng.normal(0, 1e-3, n)
        if bad:
            dp[[3, 7]] = np.inf, np.nan
        with np.errstate(invalid="ignore"):  # inf · 0 is NaN, as the model's numpy bookkeeping had it
            want_dp = dp * 0.0 if bad else dp.copy()
        for pos, n_rates in ((1, 2), (0, 0), (ring - 1, ring)):  # ring wrapping, empty, full
            want_rates, want_sum = rates.copy(), rate_sum.copy()
            want_better = False if ring == 1 else _remember_rate(want_dp / dt, want_rates, want_sum, pos, n_rates)
            got_dp, got_rates, got_sum = dp.copy(), rates.copy(), rate_sum.copy()
            got_better = K.accept_guess(got_dp, dt, got_rates, got_sum, pos, n_rates)
            np.testing.assert_array_equal(got_dp, want_dp)
            np.testing.assert_array_equal(got_rates, want_rates)
            np.testing.assert_array_equal(got_sum, want_sum)
            assert got_better == want_better


def test_set_open_is_the_column_assignment():
    rng = np.random.default_rng(4)
    vent = rng.uniform(0, 3, (30, K.NVENT))
    fractions = rng.uniform(0, 1, 30)
    want = vent.copy()
    want[:, K.V_OPEN] = fractions
    K.set_open(vent, fractions)
    np.testing.assert_array_equal(vent, want)
    with pytest.raises(ValueError, match="one open fraction per wall vent"):
        K.set_open(vent, fractions[:-1])


def _layer_states(rng, n=200):
    """States and geometries spanning both layers present, an absent (or vanishing) upper or lower layer, an
    empty upper layer (interface at the ceiling) and soot in either layer."""
    geom = np.zeros((n, K.NGEOM))
    geom[:, K.G_BASE] = rng.uniform(0, 300, n)
    geom[:, K.G_H] = rng.uniform(2.5, 4.0, n)
    geom[:, K.G_AREA] = rng.uniform(5, 200, n)
    geom[:, K.G_VOL] = geom[:, K.G_AREA] * geom[:, K.G_H]
    state = np.zeros((n, K.NSTATE))
    rho, cv, t = 1.2, 1012.0 - 287.0, rng.uniform(290, 900, (n, 2))
    share = rng.choice([0.0, 1e-12, 0.3, 0.9, 1.0], n)  # upper layer's share of the volume
    mass = rho * geom[:, K.G_VOL, None] * np.stack([share, 1 - share], axis=1)
    state[:, [K.MU, K.ML]] = mass
    state[:, [K.UU, K.UL]] = cv * mass * t
    state[:, K.SU + K.SP_SOOT] = rng.uniform(0, 1e-3, n) * mass[:, 0]
    state[:, K.SL + K.SP_SOOT] = rng.uniform(0, 1e-4, n) * mass[:, 1]
    return state, geom


def test_step_outputs_are_the_layer_properties():
    """step_outputs' rows are layer_props' values (the arithmetic the step itself uses), to the bit, absent layers
    included; the extinction row is written only where ``out`` has it."""
    rng = np.random.default_rng(5)
    state, geom = _layer_states(rng)
    par = np.zeros(K.NPAR)
    par[[K.P_R, K.P_CP, K.P_G, K.P_P0, K.P_TOUT]] = 287.0, 1012.0, 9.81, 101325.0, 303.0
    p_base = np.empty(len(state))
    K.outside_at_base(geom, par, p_base)
    props = np.empty((len(state), K.NPROP))
    K.layer_props(state, geom, par, props)
    vu = props[:, K.Q_VU]
    vl = geom[:, K.G_VOL] - vu
    with np.errstate(divide="ignore", invalid="ignore"):
        soot_u = np.where(vu > 0.0, state[:, K.SU + K.SP_SOOT] / vu, 0.0)
        soot_l = np.where(vl > 0.0, state[:, K.SL + K.SP_SOOT] / vl, 0.0)
    want = {K.O_TU: props[:, K.Q_TU], K.O_TL: props[:, K.Q_TL], K.O_Z: props[:, K.Q_ZI] - geom[:, K.G_BASE],
            K.O_P: props[:, K.Q_P] - p_base, K.O_SOOTU: soot_u, K.O_SOOTL: soot_l}
    got = np.full((K.NOUT + 1, len(state)), np.nan)
    K.step_outputs(state, geom, par, p_base, SOOT_EXTINCTION_M2_KG, got)
    for row, value in want.items():
        np.testing.assert_array_equal(got[row], value)
    np.testing.assert_array_equal(got[K.NOUT], SOOT_EXTINCTION_M2_KG * soot_u)
    short = np.full((K.NOUT, len(state)), np.nan)
    K.compartment_outputs(state, geom, par, short, False, p_base)
    np.testing.assert_array_equal(short[list(want)], got[list(want)])
    assert np.any(state[:, K.MU] == 0.0) and np.any(state[:, K.ML] == 0.0)  # the absent layers were there


def test_layer_props_are_the_layer_formulas_with_their_temperatures_in_teff():
    """layer_props against the layer formulas in numpy (each division for every compartment, as the kernel had it
    before it skipped those whose value a missing layer discards), to the bit, absent layers included; ``teff``
    receives the layer temperatures."""
    rng = np.random.default_rng(6)
    state, geom = _layer_states(rng)
    par = np.zeros(K.NPAR)
    par[[K.P_R, K.P_CP, K.P_G, K.P_P0, K.P_TOUT]] = 287.0, 1012.0, 9.81, 101325.0, 303.0
    r, cv = 287.0, 1012.0 - 287.0
    gm1 = r / cv
    mu, ml, uu, ul, vol = state[:, K.MU], state[:, K.ML], state[:, K.UU], state[:, K.UL], geom[:, K.G_VOL]
    with np.errstate(divide="ignore", invalid="ignore"):
        p = gm1 * (uu + ul) / vol
        hasu, hasl = mu > 1e-9 * (mu + ml), ml > 1e-9 * (mu + ml)
        tu, tl = np.where(hasu, uu / (cv * mu), 0.0), np.where(hasl, ul / (cv * ml), 0.0)
        tu, tl = np.where(hasu, tu, tl), np.where(hasl, tl, tu)
        vu = np.where(hasl, np.minimum(np.maximum(np.where(hasu, gm1 * uu / p, 0.0), 0.0), vol), vol)
        zi = np.where(vu <= 0.0, geom[:, K.G_BASE] + geom[:, K.G_H], geom[:, K.G_BASE] + (vol - vu) / geom[:, K.G_AREA])
        want = np.stack([p, tu, tl, p / (r * tu), p / (r * tl), zi, hasu, hasl, vu], axis=1)
    props, teff = np.full((len(state), K.NPROP), np.nan), np.full((len(state), 2), np.nan)
    K.layer_props(state, geom, par, props, teff)
    np.testing.assert_array_equal(props, want)
    np.testing.assert_array_equal(teff, want[:, [K.Q_TU, K.Q_TL]])
    assert np.any(~hasu & hasl) and np.any(hasu & ~hasl) and np.any(hasu & hasl)


def _cut_path_slab(v, k, x1, x2, h, a, b, vs, vl, par, teff, cdw, chan):
    """A slab's flows, enthalpy and weight with the slab always cut by ``piece_ends`` (the general path)."""
    if h <= 0.0:
        return 0.0, 0.0
    dx, t_prev, hflow, weight = x2 - x1, 0.0, 0.0, 0.0
    for t in K.piece_ends(x1, x2, par[K.P_DELTA]):
        if not t > t_prev:
            continue
        ya, yb, hh, t_prev = x1 + dx * t_prev, x1 + dx * t, h * (t - t_prev), t
        fwd = 0.5 * (ya + yb) >= 0.0
        j = 2 * k if fwd else 2 * k + 1
        side = a if fwd else b
        layer = vl[v, j]
        t_d = (teff[side, layer] if side >= 0 else par[K.P_TOUT])
        f, dfdp = K._piece(ya, yb, hh, cdw * math.sqrt(2.0 * vs[v, K.VS_RHO + j]), par[K.P_DELTA])
        chan[v, layer if fwd else 2 + layer] += abs(f)
        hflow += par[K.P_CP] * t_d * f
        weight += par[K.P_CP] * t_d * dfdp
    return hflow, weight


@pytest.mark.parametrize("seed", [0, 1])
def test_door_jet_slabs_equal_the_cut_path(seed):
    """``door_jets`` runs ``_jet_slab`` on a jet vent's middle slab: its jet channels equal the cut path's."""
    rng = np.random.default_rng(seed)
    n, m = 40, 300
    vidx = np.stack([rng.integers(0, n, m), rng.integers(-1, n, m)], axis=1).astype(np.int64)
    vidx[vidx[:, 0] == vidx[:, 1], 1] = -1
    vs = np.zeros((m, K.NVS))
    vs[:, K.VS_Z] = 0.0
    vs[:, K.VS_Z + 1] = rng.uniform(0.2, 1.0, m)
    vs[:, K.VS_Z + 2] = vs[:, K.VS_Z + 1] + np.where(rng.random(m) < 0.1, 0.0, rng.uniform(0.1, 1.0, m))
    vs[:, K.VS_Z + 3] = 2.1
    scale = rng.choice([1e-6, 5e-5, 2e-4, 1e-2, 3.0], (m, 1))
    vs[:, K.VS_D:K.VS_D + 4] = rng.normal(0, 1, (m, 4)) * scale
    vs[:, K.VS_RHO:K.VS_RHO + 6] = rng.uniform(0.4, 1.2, (m, 6))
    vl = rng.integers(0, 2, (m, 6)).astype(np.int64)
    vl[:, 3] = 1 - vl[:, 2]  # a jet's slab: upper layer one side, lower the other
    vent = np.zeros((m, K.NVENT))
    vent[:, K.V_BOT], vent[:, K.V_TOP], vent[:, K.V_W], vent[:, K.V_CD], vent[:, K.V_OPEN] = 0.0, 2.1, 1.0, 0.7, 1.0
    par = np.zeros(K.NPAR)
    par[[K.P_R, K.P_CP, K.P_G, K.P_P0, K.P_TOUT, K.P_DELTA]] = 287.0, 1005.0, 9.81, 101325.0, 300.0, DELTA
    teff = rng.uniform(290.0, 700.0, (n, 2))
    pf = rng.normal(0, 1, n) * rng.choice([1e-5, 1e-4, 1.0], n)
    jet = np.full((m, 4), np.nan)
    want = np.full((m, 4), np.nan)  # a vent without a jet slab leaves its scratch rows alone
    for v in range(m):  # door_jets' call of _jet_slab on the jet vents (it skips those whose jets cannot entrain)
        h = vs[v, K.VS_Z + 2] - vs[v, K.VS_Z + 1]
        if h <= 0.0 or vl[v, 2] == vl[v, 3]:
            continue
        jet[v] = 0.0
        want[v] = 0.0
        a, b = vidx[v]
        c0 = pf[a] - (pf[b] if b >= 0 else 0.0)
        K._jet_slab(v, c0 + vs[v, K.VS_D + 1], c0 + vs[v, K.VS_D + 2], h, vs, vl, DELTA, math.sqrt(DELTA),
                    vent[v, K.V_CD] * (vent[v, K.V_W] * vent[v, K.V_OPEN]), jet)
        _cut_path_slab(v, 1, c0 + vs[v, K.VS_D + 1], c0 + vs[v, K.VS_D + 2], h, a, b, vs, vl, par, teff,
                       vent[v, K.V_CD] * vent[v, K.V_W], want)
    np.testing.assert_array_equal(jet, want)
    assert np.count_nonzero(np.nan_to_num(want)) > m // 2


@pytest.mark.parametrize("sprinkler", ["none", "control", "suppression"])
@pytest.mark.parametrize("t_sprinkler, t_flashover", [(np.inf, np.inf), (95.0, np.inf), (np.inf, 140.0),
                                                      (95.0, 140.0), (160.0, 140.0)])
def test_heat_release_at_one_time_is_the_curve(sprinkler, t_sprinkler, t_flashover):
    src = FireSource(0, floor_area_m2=20.0, fuel_load_mj_m2=400.0, t0_s=12.5, growth="fast", peak_kw=3000.0,
                     vent_limit_kw=2500.0, sprinkler=sprinkler)
    times = np.concatenate([np.linspace(0.0, 400.0, 1601), [12.5, 95.0, 140.0, 160.0, 1e5]])
    for t in times:
        got = src._undecayed_at(float(t), t_sprinkler, t_flashover)
        want = float(src._undecayed(np.array([t]), t_sprinkler, t_flashover)[0])
        assert got == want, (t, got, want)


def test_a_pane_that_falls_out_is_reported_at_its_step():
    """Ping An's example past flashover: each ``glazing_broken`` event is at the step its pane fell out, and every
    broken pane's compartment has one; the façade spread's remembered answer whether a compartment's window is out
    (``_window_out``) is the look at its panes, on every step, for the fire storey's windowed compartments."""
    sim = FireSimulation("ping_an_finance_centre", floor=40, growth="ultrafast", sprinklers=False, duration_s=400.0)
    fell: dict[int, float] = {}
    step = sim._step
    windowed = {c: w for c, w in sim.spread._win.items() if sim.network.storey[c] == 40}
    outs = []

    def watched(h):
        before = sim.zone.broken.copy()
        step(h)
        for v in np.flatnonzero(sim.zone.broken & ~before):
            fell.setdefault(int(sim.network.vent_a[v]), sim.t)
        for c, w in windowed.items():
            outs.append(sim.spread._window_out(sim.zone, c))
            assert outs[-1] == bool(np.any(sim.zone.broken[w])), (sim.t, c)

    sim._step = watched
    sim.advance_to(400.0)
    events = {sim.network.names.index(e["compartment"]): e["time_s"] for e in sim.events
              if e["kind"] == "glazing_broken"}
    assert fell and events == fell
    assert any(outs) and not all(outs)  # both answers were checked
    assert sim.zone.panes_broken == int(sim.zone.broken.sum())
