"""The Monte Carlo of the transient slope model (:func:`physics.slope_montecarlo.monte_carlo`).

Sources of expected numbers:
- brute force: each member's parameters (:func:`member_params`, numpy and scipy transforms)
  through the numpy reference ``tests/physics/slope_reference.py``: the kernel's counts must
  equal it member by member;
- closed form: with only c' random (normal) and a dry profile (water table at the soil base,
  no rain) FS at the base is linear in c' (Taylor 1948 infinite slope; Iverson 2000):
  FS = tan(phi)/tan(delta) + c' / (gamma_s h sin(delta) cos(delta)), lowest at the base
  for c' >= 0, so P(FS < 1) = Phi((c* - mu) / sigma), c* = (1 - tan(phi)/tan(delta))
  gamma_s h sin(delta) cos(delta); tolerance 4 binomial standard errors;
- the inverse normal CDF against scipy.special.ndtri (Cephes).
"""

from __future__ import annotations

import math
import tomllib

import numpy as np
import pytest
from scipy.special import ndtr as sp_ndtr
from scipy.special import ndtri as sp_ndtri

from physics import slope_montecarlo as mc
from physics._kernels import slope as k
from physics.slope_params import DEFAULT_TABLE, validate_table
from tests.physics import slope_reference as ref
from twin.errors import ValidationError

DEG = math.pi / 180.0


def case(n_cells=240, seed=0):
    """Steep cells of the three table zones under 10-min rain that stops, hourly outputs."""
    rng = np.random.default_rng(seed)
    base = np.empty((k.N_PARAMS, n_cells))
    base[k.P_SLOPE] = rng.uniform(5, 45, n_cells) * DEG  # below ~14 deg the pre-check decides
    base[k.P_COHESION] = 5000.0
    base[k.P_PHI] = 34 * DEG
    base[k.P_GAMMA_S] = 19000.0
    base[k.P_KZ] = 1e-6
    base[k.P_DHAT] = k.iverson_dhat(5e-5, base[k.P_SLOPE])
    base[k.P_WATER_TABLE] = 3.0
    base[k.P_I_LT] = 0.0
    base[k.P_SOIL_DEPTH] = 4.0
    zones = rng.integers(1, 4, n_cells)
    rain = rng.uniform(0, 2e-5, (72, 1))
    edges = np.arange(73) * 600.0
    t_eval = np.arange(1, 19) * 3600.0
    return base, zones, rain, edges, t_eval


def brute_force_fails(base, zones, rain, edges, t_eval, seed, members, n_depths, **kw):
    fails = np.zeros(base.shape[1], dtype=np.int64)
    for m in members:
        p = mc.member_params(base, zones, seed, m, **kw)
        fs_min = ref.factor_of_safety(p, rain, edges, t_eval, n_depths, k.GAMMA_W)[0]
        fails += fs_min < 1.0
    return fails


@pytest.mark.parametrize("dhat", ["iverson", "trigrs"])
def test_counts_equal_brute_force_member_by_member(dhat):
    base, zones, rain, edges, t_eval = case()
    out = mc.monte_carlo(base, zones, 12, 7, rain=rain, t_edges=edges, t_eval=t_eval,
                         n_depths=6, dhat=dhat)
    want = brute_force_fails(base, zones, rain, edges, t_eval, 7, range(12), 6, dhat=dhat)
    np.testing.assert_array_equal(np.rint(out["p"] * 12).astype(int), want)
    np.testing.assert_array_equal(out["n_valid"], 12)
    assert 0.1 < (want > 0).mean() < 0.95  # failing and stable cells both present
    assert ((want > 0) & (want < 12)).sum() > 20  # many cells between 0 and 1


def test_per_zone_draws_are_shared_within_a_zone():
    base, zones, rain, edges, t_eval = case(n_cells=60, seed=1)
    base[k.P_SLOPE] = 38 * DEG  # same cells within a zone: same member outcomes
    base[k.P_DHAT] = k.iverson_dhat(5e-5, base[k.P_SLOPE])
    out = mc.monte_carlo(base, zones, 40, 3, rain=rain, t_edges=edges, t_eval=t_eval,
                         n_depths=5, per="zone")
    for z in (1, 2, 3):
        assert np.unique(out["p"][zones == z]).size == 1
    want = brute_force_fails(base, zones, rain, edges, t_eval, 3, range(40), 5, per="zone")
    np.testing.assert_array_equal(np.rint(out["p"] * 40).astype(int), want)


def test_same_seed_same_p_whatever_the_chunks():
    base, zones, rain, edges, t_eval = case(n_cells=120, seed=2)
    kw = dict(rain=rain, t_edges=edges, t_eval=t_eval, n_depths=5)
    runs = [mc.monte_carlo(base, zones, 30, 11, chunk_members=c, **kw)["p"] for c in (1, 7, 30)]
    np.testing.assert_array_equal(runs[0], runs[1])
    np.testing.assert_array_equal(runs[0], runs[2])
    other = mc.monte_carlo(base, zones, 30, 12, **kw)["p"]
    assert not np.array_equal(other, runs[0])
    # the first 10 members of the 30-member run are the 10-member run
    first = mc.monte_carlo(base, zones, 10, 11, **kw)["p"]
    want = brute_force_fails(base, zones, rain, edges, t_eval, 11, range(10), 5)
    np.testing.assert_array_equal(np.rint(first * 10).astype(int), want)


def one_parameter_table(mu_kpa, sd_kpa):
    data = tomllib.loads(DEFAULT_TABLE.read_text(encoding="utf-8"))
    c = data["zones"]["granite_residual"]["c_kpa"]
    for key in ("cv", "low", "high", "sd"):
        c.pop(key, None)
    c.update(default=mu_kpa, dist="normal", sd=sd_kpa, range=[0.0, 20.0])
    return validate_table(data, origin="test table")


def test_probability_converges_to_the_closed_form():
    mu, sd = 5.0, 2.0  # kPa
    table = one_parameter_table(mu, sd)
    n = 50
    base, _, _, _, _ = case(n_cells=n)
    delta, phi, gs, h = 40 * DEG, 30 * DEG, 19000.0, 2.0
    base[k.P_SLOPE], base[k.P_PHI], base[k.P_GAMMA_S] = delta, phi, gs
    base[k.P_SOIL_DEPTH] = base[k.P_WATER_TABLE] = h  # dry profile: psi = (Z - h) beta <= 0
    fixed = ("phi_deg", "gamma_kn_m3", "ks_m_s", "d0_m2_s", "depth_m", "water_table_m")
    out = mc.monte_carlo(base, np.ones(n, int), 2000, 5, rain=np.zeros((1, 1)),
                         t_edges=[0.0, 3600.0], t_eval=[3600.0], table=table, fixed=fixed)
    c_star = (1 - math.tan(phi) / math.tan(delta)) * gs * h * math.sin(delta) * math.cos(delta)
    p_exact = float(sp_ndtr((c_star / 1000.0 - mu) / sd))  # c* = 5.84 kPa: p = 0.66
    p_hat = out["p"].mean()  # 50 independent cells x 2000 members = 1e5 trials
    se = math.sqrt(p_exact * (1 - p_exact) / (n * 2000))
    assert abs(p_hat - p_exact) < 4 * se
    assert 0.6 < p_exact < 0.7
    np.testing.assert_allclose(out["se"], np.sqrt(out["p"] * (1 - out["p"]) / 2000))


def test_cells_outside_the_model():
    base, zones, rain, edges, t_eval = case(n_cells=5, seed=3)
    base[k.P_SLOPE, 0] = np.nan  # outside the DEM
    base[k.P_SLOPE, 1] = 0.0  # flat: cannot slide
    zones[2] = -1  # no zone: outside the model
    out = mc.monte_carlo(base, zones, 8, 1, rain=rain, t_edges=edges, t_eval=t_eval)
    assert np.isnan(out["p"][0]) and np.isnan(out["p"][2]) and out["n_valid"][2] == 0
    assert out["p"][1] == 0.0 and out["n_valid"][1] == 8 and out["se"][1] == 0.0
    assert np.isfinite(out["p"][3:]).all()


def test_ndtri_matches_scipy():
    # Acklam's start + two Halley steps: to round-off of Phi near p (the residual Phi(x) - p
    # is known to ~1e-16 absolute, so x to ~1e-16 / phi(x); solved in the lower half, where that holds; 1e-12 covers p in [1e-12, 1 - 1e-9])
    p = np.concatenate([np.logspace(-12, -1, 60), np.linspace(0.02, 0.98, 200),
                        1 - np.logspace(-9, -1, 40)])
    got = np.array([k.ndtri(v) for v in p])
    np.testing.assert_allclose(got, sp_ndtri(p), rtol=1e-12, atol=1e-12)


def test_kernel_draws_equal_numpy_transforms():
    table = one_parameter_table(5.0, 2.0)
    z = np.random.default_rng(0).standard_normal(200)
    for zone in table.zones.values():
        for name in ("c_kpa", "phi_deg", "gamma_kn_m3", "ks_m_s", "depth_m"):
            spec = getattr(zone, name)
            row = mc._spec_row(spec)
            got = np.array([k.draw(mc._DIST_KIND[spec.dist], row, v) for v in z])
            np.testing.assert_allclose(got, mc.transform(z, spec), rtol=1e-12)


@pytest.mark.parametrize("kw, field", [
    ({"per": "pixel"}, "per"), ({"dhat": "savage"}, "dhat"), ({"seed": None}, "seed"),
    ({"n_members": 0}, "n_members"), ({"zones": [9, 9, 9]}, "zones"), ({"fixed": ("c",)}, "fixed"),
])
def test_bad_arguments_are_named(kw, field):
    base, zones, rain, edges, t_eval = case(n_cells=3)
    args = dict(base=base, zones=zones, n_members=2, seed=0, rain=rain, t_edges=edges, t_eval=t_eval)
    args.update(kw)
    with pytest.raises(ValidationError, match=field):
        mc.monte_carlo(**args)


def test_one_and_two_threads_give_the_same_p():
    # cells are counted independently, each member in the same order on any thread
    import numba

    base, zones, rain, edges, t_eval = case(n_cells=300, seed=4)
    old = numba.get_num_threads()
    try:
        outs = []
        for threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(threads)
            outs.append(mc.monte_carlo(base, zones, 10, 2, rain=rain, t_edges=edges,
                                       t_eval=t_eval, n_depths=4)["p"])
    finally:
        numba.set_num_threads(old)
    np.testing.assert_array_equal(outs[0], outs[1])


def test_failure_times_equal_brute_force():
    # each member's first output with FS < 1 (the reference's t_fail), counted per cell:
    # p_by_time[i] = share of members failed by t_eval[i]; t_fail_median = the earliest time
    # by which at least half of the failing members have failed (lower median)
    base, zones, rain, edges, t_eval = case(n_cells=200, seed=5)
    # water table at the base, little cohesion: cells fail as the storm raises the head
    base[k.P_COHESION], base[k.P_SOIL_DEPTH], base[k.P_WATER_TABLE] = 500.0, 2.0, 2.0
    fixed = ("c_kpa", "depth_m", "water_table_m")
    n_m = 9
    out = mc.monte_carlo(base, zones, n_m, 4, rain=rain, t_edges=edges, t_eval=t_eval,
                         n_depths=5, failure_time=True, fixed=fixed)
    times = np.full((n_m, base.shape[1]), np.nan)
    for m in range(n_m):
        p = mc.member_params(base, zones, 4, m, fixed=fixed)
        times[m] = ref.factor_of_safety(p, rain, edges, t_eval, 5, k.GAMMA_W)[2]
    by_time = np.array([(times <= t).sum(axis=0) for t in t_eval]) / n_m
    np.testing.assert_allclose(out["p_by_time"], by_time, rtol=0, atol=1e-12)
    np.testing.assert_allclose(out["p_by_time"][-1], out["p"], rtol=0, atol=1e-12)
    failed = np.isfinite(times)
    for c in range(base.shape[1]):
        t = np.sort(times[failed[:, c], c])
        want = t[(t.size + 1) // 2 - 1] if t.size else np.nan
        np.testing.assert_equal(out["t_fail_median"][c], want)
    assert (failed & (times > t_eval[0])).sum() > 20  # failures during the storm, not at once
    plain = mc.monte_carlo(base, zones, n_m, 4, rain=rain, t_edges=edges, t_eval=t_eval,
                           n_depths=5, fixed=fixed)
    np.testing.assert_array_equal(plain["p"], out["p"])
    assert "t_fail_median" not in plain


def test_all_parameters_fixed_gives_the_deterministic_outcome():
    """With every table parameter fixed, each member is the deterministic run: p is 1 where the
    kernel's fs_min < 1 and 0 elsewhere. A drawn water table deeper than the soil (here 1-4 m
    soils) is put at the soil base, the deterministic set-up's rule (physics.slope_city): without
    it the members were drier than the deterministic run (Guangming: 93 cells with FS < 1 in the
    deterministic run, none with p >= 0.5 in 1000 members)."""
    base, zones, rain, edges, t_eval = case(n_cells=200, seed=4)
    rng = np.random.default_rng(4)
    base[k.P_SOIL_DEPTH] = rng.uniform(1.0, 4.0, base.shape[1])
    base[k.P_WATER_TABLE] = np.minimum(3.0, base[k.P_SOIL_DEPTH])  # the set-up's capped value
    names = list(mc.PARAMS)
    fs, z, tf = (np.empty(base.shape[1]) for _ in range(3))
    k.factor_of_safety(base, rain, edges, t_eval, 6, k.GAMMA_W, fs, z, tf, np.empty((0, base.shape[1])))
    drawn = mc.member_params(base, zones, 0, 0, fixed=tuple(n for n in names if n != "water_table_m"))
    assert np.all(drawn[k.P_WATER_TABLE] <= drawn[k.P_SOIL_DEPTH])
    out_all = mc.monte_carlo(base, zones, 3, 0, rain=rain, t_edges=edges, t_eval=t_eval, n_depths=6,
                             fixed=tuple(names))
    np.testing.assert_array_equal(out_all["p"], (fs < 1.0).astype(float))
    assert 0 < (fs < 1.0).sum() < fs.size
