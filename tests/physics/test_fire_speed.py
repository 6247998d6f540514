"""The fire run's speed-ups are the same computation: each fast path against the slower one it replaced.

- L's row patterns computed once (``sparse_ldl.row_patterns``) give the factor of ``sparse_ldl.numeric``'s
  tree walks to the bit: the same additions in the same order (Davis 2006, LDL's up-looking algorithm).
- The devices' kernel (``physics._kernels.fire_devices``) against its numpy reference
  (``tests/physics/fire_devices_reference.py``): the same formulas, but numba's exp/cbrt/pow are the C
  library's and numpy's its own, which differ by an ulp or two; the tolerance 1e-12 relative is ~10⁴ ulp, far
  below any physical resolution and far above that round-off.
- The storeys' max/min by ``reduceat`` are the loop's to the bit (max and min round nothing).
"""

from __future__ import annotations

import numpy as np
import pytest

from physics._kernels import fire_zone as K
from physics._kernels import sparse_ldl as S
from physics.fire_detection import LAYER_AT_CEILING_M, DeviceSet, DeviceState
from physics.fire_sim_tenability import StoreyGroups
from tests.physics import fire_devices_reference as REF


def _tower_edges(rng, n):
    edges = [(i, i + 1) for i in range(n // 3 - 1)]
    edges += [(i, int(rng.integers(0, n // 3))) for i in range(n // 3, n)]
    edges += [(int(rng.integers(0, n)), int(rng.integers(0, n))) for _ in range(n // 10)]
    edges += [(int(i), -1) for i in rng.integers(0, n, n // 5)]
    return np.array(edges, np.int64)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_row_patterns_give_numerics_factor_bit_for_bit(seed):
    rng = np.random.default_rng(seed)
    n = 300
    edges = _tower_edges(rng, n)
    order = S.minimum_degree(n, edges)
    ap, ai, dpos, epos = S.pattern(n, edges, order)
    ax = np.zeros(ai.shape[0])
    ax[dpos] += rng.uniform(0.5, 2.0, n)
    for e, (a, b) in enumerate(edges):
        w = rng.uniform(0.1, 50.0)
        if a == b:
            continue
        ax[dpos[a]] += w
        if b >= 0:
            ax[dpos[b]] += w
            ax[epos[e]] -= w
    parent, lp = S.symbolic(ap, ai)
    rp, rj = S.row_patterns(ap, ai, parent)
    assert rp[-1] == lp[-1]  # every entry of L appears once in the rows' patterns
    outs = []
    for fn, extra in ((S.numeric, (parent,)), (S.numeric_rows, (rp, rj))):
        li, lx, d = np.empty(lp[-1], np.int64), np.empty(lp[-1]), np.empty(n)
        assert fn(ap, ai, ax, *extra, lp, li, lx, d) == n
        outs.append((li, lx, d))
    for a, b in zip(*outs, strict=True):
        assert np.array_equal(a, b)
    # and it refuses an indefinite matrix at the same column
    bad = ax.copy()
    bad[dpos[order[n // 2]]] = -1e6
    li, lx, d = np.empty(lp[-1], np.int64), np.empty(lp[-1]), np.empty(n)
    k_ref = S.numeric(ap, ai, bad, parent, lp, li, lx, d)
    assert k_ref < n and S.numeric_rows(ap, ai, bad, rp, rj, lp, li, lx, d) == k_ref


def test_direct_solve_with_the_plan_solves_the_dense_system():
    # the zone kernel's plan now carries the row patterns: its solve against numpy's dense one (the bound of
    # tests/physics/test_sparse_ldl.py: a few ulps times the condition number, 1e-9 relative)
    rng = np.random.default_rng(5)
    n = 120
    edges = _tower_edges(rng, n)
    edges = edges[edges[:, 0] != edges[:, 1]]  # a network's vents join two compartments (or one and outside)
    vidx, vvidx = edges[: len(edges) // 2], edges[len(edges) // 2:]
    plan = K.ldl_plan(n, vidx, vvidx)
    diag, wv, wvv = rng.uniform(0.5, 2.0, n), rng.uniform(0.1, 50.0, len(vidx)), rng.uniform(0.1, 50.0, len(vvidx))
    dense = np.diag(diag)
    for (a, b), w in zip(edges, np.concatenate([wv, wvv]), strict=True):
        dense[a, a] += w
        if b >= 0:
            dense[b, b] += w
            dense[a, b] -= w
            dense[b, a] -= w
    rhs = rng.normal(size=n)
    x = np.empty(n)
    assert K.direct_solve(rhs, diag, wv, wvv, plan, x) == 0
    np.testing.assert_allclose(x, np.linalg.solve(dense, rhs), rtol=1e-9, atol=1e-12)


def test_direct_solve_is_the_csc_assembly_and_numeric_rows_to_the_bit():
    # direct_solve assembles J into the factor's arrays and factorises by static update lists: against the CSC
    # assembly + numeric_rows + solve it replaced, x to the bit (the same additions in the same order), with only
    # some vents open (``vents``) and with all, and J's diagonal for merit_floor the same
    rng = np.random.default_rng(7)
    n = 150
    edges = _tower_edges(rng, n)
    edges = edges[edges[:, 0] != edges[:, 1]]
    edges = np.concatenate([edges, edges[:3]])  # several vents between one pair share an entry
    vidx, vvidx = edges[: 2 * len(edges) // 3], edges[2 * len(edges) // 3:]
    plan = K.ldl_plan(n, vidx, vvidx)
    order = S.minimum_degree(n, edges)
    ap, ai, dpos, epos = S.pattern(n, edges, order)
    parent, lp = S.symbolic(ap, ai)
    rp, rj = S.row_patterns(ap, ai, parent)
    new = np.empty(n, np.int64)
    new[order] = np.arange(n)
    diag, wv, wvv = rng.uniform(0.5, 2.0, n), rng.uniform(0.1, 50.0, len(vidx)), rng.uniform(0.1, 50.0, len(vvidx))
    for vents in (None, np.sort(rng.choice(len(vidx), len(vidx) // 2, replace=False))):
        ax = np.zeros(ai.shape[0])
        ax[dpos] += diag
        open_ = np.arange(len(vidx)) if vents is None else vents
        for e, w in [(int(v), wv[v]) for v in open_] + [(len(vidx) + k, wvv[k]) for k in range(len(vvidx))]:
            a, b = edges[e]
            ax[dpos[a]] += w
            if b >= 0:
                ax[dpos[b]] += w
                ax[epos[e]] -= w
        li, lx, d = np.empty(lp[-1], np.int64), np.empty(lp[-1]), np.empty(n)
        assert S.numeric_rows(ap, ai, ax, rp, rj, lp, li, lx, d) == n
        rhs = rng.normal(size=n)
        ref = np.empty(n)
        ref[new] = rhs
        S.solve(lp, li, lx, d, ref)
        x = np.empty(n)
        assert K.direct_solve(rhs, diag, wv, wvv, plan, x, vents) == 0
        assert np.array_equal(x.view(np.int64), ref[new].view(np.int64))
        assert np.array_equal(plan[K.LDL_SCRATCH][new], ax[dpos])  # J's diagonal, as merit_floor reads it
    with pytest.raises(ValueError, match="vent joins"):
        K.ldl_plan(n, np.array([[3, 3]]), vvidx)


def _devices(n_comp, rng):
    dev = DeviceSet()
    for c in range(n_comp):
        dev.add(c, "sprinkler", radius_m=float(rng.uniform(0.2, 3.0)), rti=50.0, activation_c=68.0)
        dev.add(c, "heat", radius_m=6.4, rti=100.0, activation_c=57.0)
        dev.add(c, "smoke", radius_m=6.4, mode="obscuration")
    return dev


def test_device_kernel_matches_the_numpy_reference_over_a_growing_fire():
    rng = np.random.default_rng(11)
    n = 40
    h = rng.uniform(2.4, 4.5, n)
    dev = _devices(n, rng)
    state = DeviceState(dev, h)
    c = dev.compartment
    radius, rti, act, obsc = (dev._col(k) for k in ("radius_m", "rti", "activation_k", "obscuration_pct_m"))
    t_prev = None
    ref = {}
    hits_kernel, hits_ref = [], []
    for k in range(240):
        t = float(k)
        q = np.where(np.arange(n) % 3 == 0, 0.05 * t * t, 0.0)  # fast t² in a third of the rooms
        tu = 293.15 + 0.5 * t * rng.uniform(0.5, 1.5, n)
        tl = 293.15 + 0.05 * t * rng.uniform(0.5, 1.5, n)
        zl = h * np.clip(1.0 - t / 200.0 * rng.uniform(0.5, 1.5, n), 0.05, 1.0)
        zl[::7] = h[::7]  # no layer yet: the device sits in the lower layer
        ext = 0.002 * t * rng.uniform(0.5, 1.5, n)
        gas, u, od, t_ref = REF.gas_now(c, h, radius, q, tu, tl, zl, ext)
        got = state._gas_now(q, tu, tl, zl, ext)
        for a, b in zip(got, (gas, u, od, t_ref), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=0.0)
        hits_kernel.append(state.advance(t, q, t_upper_k=tu, t_lower_k=tl, layer_height_m=zl,
                                         extinction_upper=ext))
        if t_prev is None:
            ref = {"link": t_ref, "gas": gas, "u": u, "od": od, "act": np.full(len(c), np.inf)}
            hits_ref.append(np.array([], np.int64))
        else:
            new, ref_act, hit = REF.link_step(ref["link"], ref["gas"], gas, ref["u"], u, ref["od"], od, rti, act,
                                              obsc, t_prev, t, ref["act"])
            ref = {"link": new, "gas": gas, "u": u, "od": od, "act": ref_act}
            hits_ref.append(hit)
        t_prev = t
        np.testing.assert_allclose(state.link_k, ref["link"], rtol=1e-12, atol=0.0)
        np.testing.assert_allclose(state.activation_s, ref["act"], rtol=1e-12, atol=0.0)
    assert [h.tolist() for h in hits_kernel] == [h.tolist() for h in hits_ref]
    fired = np.isfinite(state.activation_s)
    assert 0 < fired.sum() < len(c)  # the test crossed activations of every kind, and not all devices
    assert {dev.kind[d] for d in np.flatnonzero(fired)} == {"sprinkler", "heat", "smoke"}


def test_device_state_without_layers_and_wrong_sizes():
    rng = np.random.default_rng(2)
    dev = _devices(3, rng)
    state = DeviceState(dev, [3.0, 3.0, 3.0])
    got = state._gas_now(np.array([100.0, 0.0, 0.0]), None, None, None, None)
    ref = REF.gas_now(dev.compartment, np.full(3, 3.0), dev._col("radius_m"), np.array([100.0, 0.0, 0.0]),
                      np.full(3, state.t_ambient_k), np.full(3, state.t_ambient_k), np.full(3, 3.0), None)
    for a, b in zip(got, ref, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=0.0)
    assert LAYER_AT_CEILING_M > 0
    with pytest.raises(Exception, match="q_kw: 2 compartments"):
        state._gas_now(np.zeros(2), None, None, None, None)


def test_storey_groups_are_the_loops_max_and_min():
    rng = np.random.default_rng(4)
    x = rng.normal(size=50)
    groups = [np.array([3, 1, 7]), np.array([], np.int64), np.array([0]), rng.choice(50, 20, replace=False)]
    g = StoreyGroups(groups)
    want_max = np.array([x[r].max() if len(r) else -5.0 for r in groups])
    want_min = np.array([x[r].min() if len(r) else np.nan for r in groups])
    assert np.array_equal(g.max(x, -5.0), want_max)
    assert np.array_equal(g.min(x), want_min, equal_nan=True)
    assert np.array_equal(StoreyGroups([np.array([], np.int64)]).max(x, 0.0), [0.0])


def test_step_reusing_its_work_arrays_is_a_fresh_step():
    # K.step_plan's work arrays are scratch: a step whose work arrays hold garbage (NaN, huge numbers) from
    # before gives, to the bit, the step with freshly made ones (what K.step allocated every step before)
    from physics import fire_cases
    from physics.fire_zone import FireZoneModel

    case = fire_cases.two_rooms()
    m = FireZoneModel(case.network, t_inside_k=293.15, t_outside_k=283.15)
    for _ in range(60):  # a layer, door flows and jets: every piece of the step at work
        m.q_kw[0] = 0.047 * m.t ** 2
        m.step(1.0)
    a = m.arrays
    n = case.network.n_compartments
    results = []
    fresh = K.step_plan(n, a["vidx"], a["vvidx"])
    for garbage in (None, np.nan, 1e300):
        plan = K.step_plan(n, a["vidx"], a["vvidx"])
        if garbage is not None:
            for w in plan[1]:
                w[...] = -7 if w.dtype.kind == "i" else garbage
            for i in K.WORK_READ_ONLY:  # the vents' index list and adjacency are part of the plan, not scratch
                plan[1][i][...] = fresh[1][i]
            for w in plan[0][K.LDL_SCRATCH:]:  # the LDLᵀ solve's scratch (matrix diagonal, L, D, solution)
                w[...] = -7 if w.dtype.kind == "i" else garbage
        new, chan, vchan = np.empty_like(m.state), np.zeros_like(m.chan), np.zeros_like(m.vchan)
        qburn, tally, dp = np.zeros(n), np.zeros(K.NTALLY), m._dp_last.copy()
        it = K.step(m.state, a["geom"], m.par, a["vent"], a["vidx"], a["vvent"], a["vvidx"], m.q_kw.copy(), 1.0, new,
                    chan, vchan, qburn, tally, dp, plan)
        results.append((it, new, chan, vchan, qburn, tally, dp))
    for other in results[1:]:
        assert other[0] == results[0][0]
        for x, y in zip(other[1:], results[0][1:], strict=True):
            assert np.array_equal(x, y)
    assert np.any(results[0][2] > 0)  # the door carried flow
