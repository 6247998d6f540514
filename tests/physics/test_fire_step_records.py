"""The run's per-step and per-record work in kernels: the same numbers as the numpy expressions, to the bit.

- The devices' step in one call (:func:`physics._kernels.fire_devices.devices_step`) against the two kernels it
  joins, called one after the other as :class:`~physics.fire_detection.DeviceState` did.
- The tenability record in the kernels of :mod:`physics._kernels.fire_tenability` against the numpy path of
  :class:`~physics.fire_sim_tenability.TenabilityTracker` (``kernel=False``: :func:`head_fields`, i.e.
  :func:`physics.fire_tenability.head_measures`, the reference, and the trapezoid and crossing in numpy), on
  random states built to hit every branch and on the records of a real run past its storeys' ASET.

These are refactorings of the arithmetic, not new physics: the expected numbers are the reference's own, and
the tolerance is zero (the same IEEE operations in the same order; numpy's ``exp`` and ``**`` are kept).
"""

from __future__ import annotations

import numpy as np
import pytest

from physics._kernels import fire_devices as DK
from physics.fire_detection import LAYER_AT_CEILING_M
from physics.fire_sim import FireSimulation
from physics.fire_sim_tenability import KERNEL_FIELDS, TenabilityTracker


def _same(a, b) -> None:
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b), strict=True)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_devices_step_is_the_two_kernels_in_turn(seed):
    rng = np.random.default_rng(seed)
    n, m = 30, 50
    c = rng.integers(0, n, m).astype(np.int64)
    hc = rng.uniform(2.4, 4.0, m)
    radius = rng.uniform(0.5, 6.0, m)
    rti = rng.uniform(5.0, 100.0, m)
    act = np.where(rng.random(m) < 0.7, rng.uniform(300.0, 345.0, m), np.inf)
    obsc = np.where(np.isinf(act), 23.93, np.inf)
    link = rng.uniform(293.0, 330.0, m)
    gas0, u0, od0 = rng.uniform(293.0, 360.0, m), rng.uniform(0.0, 2.0, m), rng.uniform(0.0, 30.0, m)
    q = np.where(rng.random(n) < 0.3, rng.uniform(0.0, 3000.0, n), 0.0)
    tu, tl = rng.uniform(293.0, 500.0, n), rng.uniform(293.0, 310.0, n)
    zl = rng.uniform(0.0, 4.0, n)
    ext = rng.uniform(0.0, 2.0, n)
    activation = np.where(rng.random(m) < 0.2, 3.0, np.inf)
    for use_ext in (True, False):
        ref_out = [np.empty(m) for _ in range(4)]
        DK.device_gas(c, hc, radius, q, tu, tl, zl, ext, use_ext, LAYER_AT_CEILING_M, *ref_out)
        ref_new, ref_hit, ref_act = np.empty(m), np.empty(m, np.int64), activation.copy()
        k_ref = DK.link_step(link, gas0, ref_out[0], u0, ref_out[1], od0, ref_out[2], rti, act, obsc, 4.0, 6.0,
                             ref_act, ref_new, ref_hit)
        out = [np.empty(m) for _ in range(4)]
        new, hit, got_act = np.empty(m), np.empty(m, np.int64), activation.copy()
        k = DK.devices_step(c, hc, radius, q, tu, tl, zl, ext, use_ext, LAYER_AT_CEILING_M, link, gas0, u0, od0,
                            rti, act, obsc, 4.0, 6.0, got_act, *out, new, hit)
        assert k == k_ref and k > 0
        _same(hit[:k], ref_hit[:k_ref])
        for a, b in zip((*out, new, got_act), (*ref_out, ref_new, ref_act), strict=True):
            _same(a, b)


def _random_state(rng, n: int, height: np.ndarray, t: float) -> dict[str, np.ndarray]:
    """A zone state with every branch of the head measures: interfaces above and below the head, at it, at the
    ceiling (no layer), on the floor; soot none or thick; layers hotter than the radiant limit's ~200 °C."""
    z = rng.uniform(0.0, 1.0, n) * height
    z[::5] = height[::5]  # no upper layer
    z[1::7] = 1.8  # the interface at head height
    z[2::11] = 0.0
    hot = 293.15 + t * rng.uniform(0.0, 4.0, n)
    soot_u = rng.uniform(0.0, 4e-4, n) * t / 60.0
    soot_u[3::6] = 0.0
    return {"layer_height": z, "upper_layer__temperature": hot, "lower_layer__temperature": 293.15 + 0.2 * (hot - 293.15),
            "upper_layer__co": rng.uniform(0.0, 60.0, n) * t, "lower_layer__co": rng.uniform(0.0, 5.0, n) * t,
            "upper_layer__co2": rng.uniform(0.0, 0.002, n) * t / 10.0, "lower_layer__co2": rng.uniform(0.0, 4e-4, n),
            "upper_layer__soot": soot_u, "lower_layer__soot": 0.1 * soot_u}


def _assert_trackers_equal(a: TenabilityTracker, b: TenabilityTracker, ma: dict, mb: dict) -> None:
    for k in ("asphyxiant_rate", "heat_rate", "radiant_kw_m2", "extinction_per_m", "visibility_m",
              "extinction_limit_per_m"):
        _same(np.broadcast_to(ma[k], mb[k].shape), mb[k])
    for k in ("fed_asphyxiant", "fed_heat", "times", "aset_s", "_y", "_rates"):
        _same(getattr(a, k), getattr(b, k))
    assert a.criterion == b.criterion


def test_tenability_kernel_is_the_numpy_path_on_random_states(small_building):
    net = small_building
    rng = np.random.default_rng(5)
    fast, ref = TenabilityTracker(net), TenabilityTracker(net, kernel=False)
    n = net.n_compartments
    for t in np.arange(0.0, 1210.0, 10.0):
        state = _random_state(rng, n, np.asarray(net.height_m, float), t)
        _assert_trackers_equal(fast, ref, fast.update(t, state), ref.update(t, state))
    assert np.isfinite(fast.times).sum(axis=1).min() > 0  # every criterion failed somewhere
    assert 0 < np.isfinite(fast.aset_s).sum()


def test_tenability_kernel_is_the_numpy_reference_record_by_record(small_building):
    from tests.physics.fire_tenability_reference import ReferenceTracker

    net = small_building
    rng = np.random.default_rng(6)
    fast, ref = TenabilityTracker(net), ReferenceTracker(net)
    for t in np.arange(0.0, 910.0, 10.0):
        state = _random_state(rng, net.n_compartments, np.asarray(net.height_m, float), t)
        ma, mb = fast.update(t, state), ref.update(t, state)
        for k in ("asphyxiant_rate", "heat_rate", "radiant_kw_m2", "extinction_per_m", "visibility_m"):
            _same(ma[k], np.broadcast_to(mb[k], ma[k].shape))
        for k in ("fed_asphyxiant", "fed_heat", "times"):
            _same(getattr(fast, k), getattr(ref, k))
    assert np.isfinite(ref.times).sum(axis=1).min() > 0


def test_tenability_kernel_is_the_numpy_path_on_a_run():
    # a 30-storey flat fire, ultrafast, sprinklers off, winter: storeys untenable within the 600 s
    sim = FireSimulation("tower_30_residential", floor=10, growth="ultrafast", sprinklers=False, season="winter",
                         duration_s=600.0, dt_s=2.0, record_every_s=10.0)
    assert sim.tenability.kernel and all(k in sim._state() for k in KERNEL_FIELDS)
    ref = TenabilityTracker(sim.network, kernel=False)
    ref.update(0.0, sim._state())
    while sim.t < sim.duration_s:
        sim.advance_to(sim.t + sim.record_every_s)
        mb = ref.update(sim.t, sim._state())
        for k in ("fed_asphyxiant", "fed_heat", "times", "aset_s", "_y", "_rates"):
            _same(getattr(sim.tenability, k), getattr(ref, k))
        assert sim.tenability.criterion == ref.criterion
    assert np.isfinite(ref.aset_s).sum() >= 1
    _same(mb["extinction_limit_per_m"], sim.tenability._thr[3])


def test_a_state_without_the_kernel_fields_takes_the_numpy_path(small_building):
    net = small_building
    rng = np.random.default_rng(8)
    state = _random_state(rng, net.n_compartments, np.asarray(net.height_m, float), 300.0)
    del state["lower_layer__co2"]
    a, b = TenabilityTracker(net), TenabilityTracker(net, kernel=False)
    _assert_trackers_equal(a, b, a.update(0.0, state), b.update(0.0, state))
    full = _random_state(rng, net.n_compartments, np.asarray(net.height_m, float), 400.0)
    _assert_trackers_equal(a, b, a.update(10.0, full), b.update(10.0, full))  # then the kernel, from numpy's sums


@pytest.fixture(scope="module")
def small_building():
    from physics.fire_building import build_network
    from physics.fire_sim import resolve_building

    return build_network(resolve_building("tower_30_residential"))


def test_per_network_makes_once_per_network_object_and_forgets_it():
    import gc

    from physics.fire_building import build_network
    from physics.fire_sim import resolve_building
    from physics.fire_sim_cache import _CACHE, per_network

    spec = resolve_building("tower_30_residential")
    a, b = build_network(spec), build_network(spec)
    made = []
    first = per_network(a, "k", lambda: made.append(1) or [1])
    assert per_network(a, "k", lambda: made.append(1) or [2]) is first and made == [1]
    assert per_network(b, "k", lambda: [3]) == [3] and per_network(a, "other", lambda: 4) == 4
    key = id(a)
    del a
    gc.collect()
    assert key not in _CACHE


def test_runs_on_one_network_share_its_set_up_and_match_a_fresh_run():
    from physics.fire_sim import prepare_building

    prepared = prepare_building("tower_30_residential")
    kw = dict(floor=12, growth="fast", sprinklers=True, season="summer", duration_s=120.0, dt_s=2.0)
    one, two = (FireSimulation("tower_30_residential", prepared=prepared, **kw) for _ in range(2))
    assert one.devices is two.devices and one.rooms is two.rooms and one.tenability.routes is two.tenability.routes
    fresh = FireSimulation("tower_30_residential", **kw)
    for sim in (two, fresh):
        sim.advance_to(sim.duration_s)
    for k in ("upper_layer__temperature", "layer_height", "upper_layer__extinction"):
        _same(np.stack(two.recorder.fields[k]), np.stack(fresh.recorder.fields[k]))
    assert two.timeline() == fresh.timeline()


def _reduceat_reference(groups, x, ufunc, empty):
    """StoreyGroups as it was before its kernel: numpy's reduceat over the groups' concatenation."""
    sizes = np.array([len(r) for r in groups], np.int64)
    filled = np.flatnonzero(sizes > 0)
    index = np.concatenate([np.asarray(r, np.int64) for r in groups] + [np.zeros(0, np.int64)])
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])[filled]
    out = np.full(len(groups), empty, float)
    if len(filled):
        out[filled] = ufunc.reduceat(np.asarray(x, float)[index], starts)
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_storey_groups_kernel_is_numpys_reduceat(seed):
    from physics.fire_sim_tenability import StoreyGroups

    rng = np.random.default_rng(seed)
    x = rng.normal(size=200)
    x[rng.choice(200, 3, replace=False)] = np.nan  # numpy's maximum and minimum let NaN win
    x[rng.choice(200, 4, replace=False)] = np.inf
    groups = [rng.choice(200, rng.integers(0, 12), replace=False) for _ in range(60)]
    g = StoreyGroups(groups)
    for empty in (np.nan, 0.0, 100.0):
        _same(g.max(x, empty), _reduceat_reference(groups, x, np.maximum, empty))
        _same(g.min(x, empty), _reduceat_reference(groups, x, np.minimum, empty))
