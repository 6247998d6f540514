"""Fire ensembles (physics.fire_ensemble) on the 30-storey example tower, short runs.

Four members (origins storeys 24 and 28 × fast and ultrafast growth), 130 s each, sprinklers off,
summer: the ultrafast fire on storey 28 makes that storey untenable at ≈ 121 s (so the statistics
are not all NaN). The checks are internal (no published figures): the ensemble gives the same
numbers with one worker and with two worker processes, a member's row is what a direct
``simulate_fire`` run with the same arguments gives, and the statistics are ordered.
"""

from __future__ import annotations

import numpy as np
import pytest

from physics.fire_ensemble import (
    AUTO_BATCH_MAX,
    Member,
    _batches,
    censored_percentiles,
    ensemble_members,
    fire_ensemble,
    untenable_probability,
)
from physics.fire_sim import simulate_fire
from twin.errors import ValidationError

BUILDING = "tower_30_residential"
ORIGINS = [(24, None), (28, None)]
GROWTHS = ["fast", "ultrafast"]
RUN = {"duration_s": 130.0, "record_every_s": 10.0, "sprinklers": False, "season": "summer"}
THRESHOLDS = (60.0, 120.0, 130.0)


def _ensemble(workers: int, **kw):
    return fire_ensemble(BUILDING, origins=ORIGINS, growths=GROWTHS, workers=workers, thresholds_s=THRESHOLDS, **RUN,
                         **kw)


@pytest.fixture(scope="module")
def one_worker():
    return _ensemble(1)


def test_members_are_the_product_of_origins_and_growths(one_worker):
    ds = one_worker
    assert ds.sizes["member"] == 4
    assert [int(f) for f in ds.member_floor.values] == [24, 24, 28, 28]
    assert list(ds.member_growth.values) == ["fast", "ultrafast", "fast", "ultrafast"]
    assert ds.attrs["n_ok"] == int(ds.member_ok.sum()) >= 1
    assert ds.aset_s.dims == ("member", "storey") and ds.sizes["storey"] == 30
    assert "simulate_fire" in ds.attrs["member_definition"]


def test_same_result_with_one_and_two_worker_processes(one_worker):
    two = _ensemble(2, batch=3)  # two tasks of 3 and 1 members
    assert two.attrs["workers"] == 2
    np.testing.assert_array_equal(two.member_ok.values, one_worker.member_ok.values)
    np.testing.assert_array_equal(two.aset_s.values, one_worker.aset_s.values)  # NaN == NaN here
    np.testing.assert_array_equal(two.ignition_s.values, one_worker.ignition_s.values)
    np.testing.assert_array_equal(two.aset_percentile_s.values, one_worker.aset_percentile_s.values)
    np.testing.assert_array_equal(two.p_untenable.values, one_worker.p_untenable.values)
    assert list(two.member_error.values) == list(one_worker.member_error.values)


def test_a_member_equals_a_direct_simulate_fire_run(one_worker):
    ds = one_worker
    ok = np.flatnonzero(ds.member_ok.values)
    m = int(ok[-1])
    res = simulate_fire(BUILDING, floor=int(ds.member_floor[m]), compartment=None,
                        growth=str(ds.member_growth.values[m]), dt_s=ds.attrs["dt_s"], **RUN)
    np.testing.assert_array_equal(ds.aset_s.values[m], res.dataset["aset_s"].values)
    np.testing.assert_array_equal(ds.ignition_s.values[m], res.dataset["ignition_s"].values)
    assert ds.member_compartment.values[m] == res.dataset.attrs["origin_compartment"]


def test_percentiles_and_probabilities_are_ordered(one_worker):
    ds = one_worker
    p = np.nan_to_num(ds.aset_percentile_s.values, nan=np.inf)  # NaN: beyond the run
    assert np.all(p[1:] >= p[:-1])
    prob = ds.p_untenable.values
    assert np.all(np.diff(prob, axis=0) >= 0) and np.all((prob >= 0) & (prob <= 1))
    # some storey became untenable (the ultrafast fire's own storey, ≈ 121 s)
    assert np.isfinite(ds.aset_s.values).any()
    first = np.nanmin(ds.aset_s.values)
    assert np.nanmin(ds.aset_percentile_s.values) == first


def test_censored_percentiles_count_tenable_members_as_beyond_the_run():
    aset = np.array([[100.0, np.nan], [200.0, np.nan], [np.nan, 50.0], [np.nan, np.nan]])
    p = censored_percentiles(aset, (10, 50, 90))
    # empirical (inverted CDF) over 4 members: P10 = the 1st, P50 = the 2nd, P90 = the 4th smallest
    np.testing.assert_array_equal(p[:, 0], [100.0, 200.0, np.nan])
    np.testing.assert_array_equal(p[:, 1], [50.0, np.nan, np.nan])
    prob = untenable_probability(aset, (60.0, 150.0, 600.0), duration_s=300.0)
    np.testing.assert_array_equal(prob[:, 0], [0.0, 0.25, np.nan])
    np.testing.assert_array_equal(prob[:, 1], [0.25, 0.25, np.nan])


def test_members_drawn_with_a_seed_are_reproducible_and_checked():
    a = ensemble_members(30, "all floors", ["slow", "fast", 0.03], members=10, seed=3)
    b = ensemble_members(30, "all floors", ["slow", "fast", 0.03], members=10, seed=3)
    assert a == b and len(a) == 10 and len({(m.floor, m.growth) for m in a}) == 10
    assert len(ensemble_members(30, "all floors", ["fast"])) == 30
    with pytest.raises(ValidationError, match="members=91"):
        ensemble_members(30, "all floors", ["slow", "fast", 0.03], members=91)
    with pytest.raises(ValidationError, match="storey index 0..29"):
        ensemble_members(30, [(30, None)], ["fast"])
    with pytest.raises(ValidationError, match="growths"):
        ensemble_members(30, [(3, None)], ["quick"])
    with pytest.raises(ValidationError, match="workers"):
        fire_ensemble(BUILDING, origins=[(3, None)], growths=["fast"], workers=0)
    with pytest.raises(ValidationError, match="batch=0"):
        fire_ensemble(BUILDING, origins=[(3, None)], growths=["fast"], workers=2, batch=0)


def test_auto_batches_cover_every_member_once_spread_and_shrinking():
    """batch="auto": every member in exactly one task; tasks of at most AUTO_BATCH_MAX members, never growing,
    the last ones of one member (the workers end together); each task samples the member list evenly (members
    come in storey order and a building's dear ones gather on some storeys)."""
    mems = [Member(i, i // 10, None, "fast") for i in range(1000)]
    tasks = _batches(mems, "auto", workers=2)
    assert sorted(m.index for t in tasks for m in t) == list(range(1000))
    sizes = [len(t) for t in tasks]
    assert max(sizes) == AUTO_BATCH_MAX and sizes == sorted(sizes, reverse=True) and sizes[-4:] == [1] * 4
    assert len(tasks) < 1000 / 10
    for t in tasks[:10]:  # a full task spans the storeys: a quarter of it at least in each quarter of the list
        counts = np.bincount([m.index * 4 // 1000 for m in t], minlength=4)
        assert counts.min() >= len(t) // 4 - 1
    assert [len(t) for t in _batches(mems[:7], 3)] == [3, 3, 1]  # a whole number: consecutive groups
    assert _batches(mems[:1], "auto", workers=2) == [[mems[0]]]


def test_members_record_where_their_cpu_went(one_worker):
    ds = one_worker
    assert np.all(ds.member_cpu_left_s.values == 0.0)  # the 30-storey example runs whole: no window left
    end = ds.member_end_s.values
    assert np.all(np.diff(end) > 0) and end[0] > 0  # one worker: one after another
    assert len(set(ds.member_worker.values.tolist())) == 1
