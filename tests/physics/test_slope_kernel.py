"""Validation of the transient infinite-slope kernels (:mod:`physics._kernels.slope`).

Sources of the expected numbers:
- infinite-slope FS, dry and saturated: Taylor (1948), Fundamentals of Soil
  Mechanics (Wiley); Iverson (2000, WRR 36:1897); the two worked
  figures (1.2127 and 0.618) are those of ``docs/references.md`` (slope
  failure), recomputed by hand in each test;
- R(t*) = sqrt(t*/pi) exp(-1/t*) - erfc(1/sqrt(t*)): Iverson (2000); R(1) from
  erfc(1) = 0.157299207 (Abramowitz & Stegun 1964, table 7.1);
- the large-t* expansion of R from the series of exp and erfc (A&S 4.2.1,
  7.1.5), derived in ``test_response_large_tstar_asymptote``.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import pytest

from physics._kernels import slope as k
from tests.physics import slope_reference as ref

DEG = math.pi / 180.0


def make_params(
    n=1,
    slope_deg=30.0,
    c=0.0,
    phi_deg=35.0,
    gamma_s=20000.0,
    kz=1e-5,
    dhat=1e-5,
    d=1.0,
    i_lt=0.0,
    soil_depth=2.0,
):
    p = np.empty((k.N_PARAMS, n))
    p[k.P_SLOPE] = slope_deg * DEG
    p[k.P_COHESION] = c
    p[k.P_PHI] = phi_deg * DEG
    p[k.P_GAMMA_S] = gamma_s
    p[k.P_KZ] = kz
    p[k.P_DHAT] = dhat
    p[k.P_WATER_TABLE] = d
    p[k.P_I_LT] = i_lt
    p[k.P_SOIL_DEPTH] = soil_depth
    return p


def run_fs(params, rain, t_edges, t_eval, n_depths, gamma_w=k.GAMMA_W):
    n = params.shape[1]
    fs_min, z_min, t_fail = np.empty(n), np.empty(n), np.empty(n)
    fs_t = np.empty((len(t_eval), n))
    k.factor_of_safety(
        params,
        np.ascontiguousarray(rain, dtype=float),
        np.asarray(t_edges, float),
        np.asarray(t_eval, float),
        n_depths,
        gamma_w,
        fs_min,
        z_min,
        t_fail,
        fs_t,
    )
    return fs_min, z_min, t_fail, fs_t


def run_psi(params, rain, t_edges, t_eval, n_depths):
    out = np.empty((len(t_eval), n_depths, params.shape[1]))
    return k.pressure_head(
        params,
        np.ascontiguousarray(rain, dtype=float),
        np.asarray(t_edges, float),
        np.asarray(t_eval, float),
        n_depths,
        out,
    )


NO_RAIN = (np.zeros((1, 1)), [0.0, 3600.0])


def test_dry_slope_matches_hand_figure():
    # Water table at the slip depth (d = Z = 2 m), no rain: psi = 0 exactly.
    # Hand: tan35/tan30 = 0.700208/0.577350 = 1.212795 (references.md: 1.2127);
    # with c' = 5 kPa: + 5000 / (20000 * 2 * sin30 cos30) = + 0.288675.
    rain, edges = NO_RAIN
    p = make_params(n=2, d=2.0, soil_depth=2.0)
    p[k.P_COHESION, 1] = 5000.0
    fs_min, z_min, t_fail, _ = run_fs(p, rain, edges, [600.0], 1)
    expected = [
        math.tan(35 * DEG) / math.tan(30 * DEG),
        math.tan(35 * DEG) / math.tan(30 * DEG) + 5000.0 / (20000.0 * 2.0 * 0.5 * math.sqrt(3) / 2),
    ]
    np.testing.assert_allclose(fs_min, expected, rtol=1e-12)  # closed form, round-off only
    assert abs(fs_min[0] - 1.2127) < 1e-4  # the 4-decimal figure of references.md
    assert abs(fs_min[1] - 1.501470) < 1e-6  # hand: 1.212795 + 0.288675
    np.testing.assert_array_equal(z_min, [2.0, 2.0])
    assert np.isnan(t_fail).all()


def test_saturated_slope_water_table_at_surface():
    # d = 0, no rain: psi = Z cos^2(delta) (slope-parallel seepage), c' = 0:
    # FS = tan(phi)/tan(delta) (1 - gamma_w/gamma_s) = 1.212795 * (1 - 9810/20000)
    #    = 0.617919 (references.md: 0.618). FS < 1 from the first evaluated time.
    rain, edges = NO_RAIN
    p = make_params(d=0.0, soil_depth=3.0)
    fs_min, _, t_fail, _ = run_fs(p, rain, edges, [60.0, 120.0], 3)
    assert abs(fs_min[0] - 0.617919) < 1e-6
    assert abs(fs_min[0] - 0.618) < 5e-4
    assert t_fail[0] == 60.0


def test_response_zero_and_one():
    # R(0) = 0 by definition (limit t* -> 0+); R(1) = exp(-1)/sqrt(pi) - erfc(1)
    # = 0.2075537 - 0.1572992 = 0.0502545 (references.md: 0.0503).
    assert k.response(0.0) == 0.0
    assert k.response(1e-3) == 0.0  # exp(-1000) and erfc(31.6) underflow
    assert abs(k.response(1.0) - 0.0502545) < 1e-7
    assert abs(k.response(1.0) - 0.0503) < 1e-4


def test_response_large_tstar_asymptote():
    # With x = 1/sqrt(t*): exp(-x^2) = 1 - x^2 + x^4/2 - ... (A&S 4.2.1) and
    # erfc(x) = 1 - (2/sqrt(pi)) (x - x^3/3 + ...) (A&S 7.1.5), so
    # R = sqrt(t*/pi) - 1 + 1/sqrt(pi t*) - 1/(6 sqrt(pi)) t*^(-3/2) + O(t*^(-5/2)):
    # R grows like sqrt(t*/pi) - 1 (the linear-diffusion head rises without
    # bound; the pressure cap Z beta stops it in the kernel).
    for ts in (1e2, 1e4, 1e6):
        r = k.response(ts)
        asym = math.sqrt(ts / math.pi) - 1.0 + 1.0 / math.sqrt(math.pi * ts)
        # next term 1/(6 sqrt(pi)) ts^-1.5 = 9.4e-5 at 1e2; allow 2x it, plus
        # round-off of the cancellation sqrt(ts/pi) - 1 (~1e-13 at 1e6)
        assert abs(r - asym) < 2.0 * ts**-1.5 / (6 * math.sqrt(math.pi)) + 1e-12
    assert abs(k.response(1e6) - (math.sqrt(1e6 / math.pi) - 1.0)) < 1e-3


def test_steady_water_table_no_rain():
    # No rain, I_LT = 1e-6 m/s, Kz = 1e-5: beta = cos^2 30 - 0.1 = 0.75 - 0.1 = 0.65.
    # d = 1 m, Z = 0.5, 1.0, 1.5, 2.0: psi = (Z - 1) * 0.65 = -0.325, 0, 0.325, 0.65.
    rain, edges = NO_RAIN
    p = make_params(d=1.0, i_lt=1e-6, soil_depth=2.0)
    psi = run_psi(p, rain, edges, [10.0, 1e5], 4)
    for i in range(2):
        np.testing.assert_allclose(psi[i, :, 0], [-0.325, 0.0, 0.325, 0.65], rtol=0, atol=1e-14)


def test_pressure_decays_after_rain_stops():
    # Rain 5e-6 m/s (I/Kz = 0.5) for T = 6 h, then none. Z = 2 m, d = 1.5 m,
    # D_hat = 1e-4 m^2/s: Z^2/D_hat = 4e4 s, T* = 0.54. By superposition
    # psi - (Z - d) beta = Z (I/Kz) [R(t*) - R(t* - T*)]: the head at Z keeps
    # rising briefly after T (diffusive lag: R'(t* - T*) ~ 0 just after T), peaks,
    # then falls strictly and ends below psi(T), back towards the steady head.
    # Late-time hand figure: R(t*) - R(t* - T*) ~ T* R'(t*) -> T* / (2 sqrt(pi t*))
    # (R'(t*) = exp(-1/t*) / (2 sqrt(pi t*)), from the definition of R), so at
    # t = 1e4 T: 2 * 0.5 * 0.54 / (2 sqrt(pi * 5400)) = 2.0730e-3 m.
    T = 6 * 3600.0
    p = make_params(d=1.5, soil_depth=2.0, dhat=1e-4)
    t_eval = T * np.array([1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 100.0, 1000.0, 1e4])
    psi = run_psi(p, np.array([[5e-6]]), [0.0, T], t_eval, 1)[:, 0, 0]
    steady = (2.0 - 1.5) * math.cos(30 * DEG) ** 2
    peak = psi.argmax()
    assert peak > 0  # the lag: the maximum comes after the rain stops
    assert np.all(np.diff(psi[peak:]) < 0)  # strictly decaying after the peak
    assert psi[-1] < psi[0]  # eventually below psi(T)
    tstar, tstar_rain = 1e4 * T * 1e-4 / 4.0, T * 1e-4 / 4.0
    late = 2.0 * 0.5 * tstar_rain / (2.0 * math.sqrt(math.pi * tstar))
    # neglected terms are O(T*/t*) and O(1/t*) relative, ~2e-4 here
    assert abs((psi[-1] - steady) / late - 1.0) < 1e-3


def test_fs_falls_monotonically_under_constant_rain_until_cap():
    # Constant rain 1e-5 m/s (= Kz) for 5 days, Z = 2 m, d = 1.5 m: R(t*)
    # increases with t* (dR/dt* = exp(-1/t*)/(2 sqrt(pi t*)) > 0), so psi rises
    # and FS falls strictly until psi reaches Z beta = 1.5 m (0.375 + 2 R(t*) =
    # 1.5 at R = 0.5625, t* ~ 7.7, t ~ 3.1e5 s < 5 days with Z^2/D_hat = 4e4 s),
    # then FS stays at its capped value (hand formula below).
    T = 5 * 86400.0
    p = make_params(d=1.5, soil_depth=2.0, c=2000.0, dhat=1e-4)
    t_eval = np.linspace(600.0, T, 200)
    _, _, _, fs_t = run_fs(p, np.array([[1e-5]]), [0.0, T], t_eval, 1)
    fs = fs_t[:, 0]
    z, beta = 2.0, math.cos(30 * DEG) ** 2
    fs_cap = math.tan(35 * DEG) / math.tan(30 * DEG) + (
        2000.0 - z * beta * 9810 * math.tan(35 * DEG)
    ) / (20000.0 * z * 0.5 * math.cos(30 * DEG))
    capped = np.isclose(fs, fs_cap, rtol=0, atol=1e-12)
    assert capped.any() and not capped[0]
    first = capped.argmax()
    assert capped[first:].all()
    assert np.all(np.diff(fs[: first + 1]) < 0)


def test_two_equal_steps_equal_one_long_step():
    # Superposition consistency: rain I on [0, T/2) and I on [T/2, T) is the
    # same history as I on [0, T); the inner step dI = 0 contributes nothing.
    T = 12 * 3600.0
    p = make_params(n=3, d=1.0, soil_depth=3.0)
    t_eval = np.linspace(100.0, 3 * T, 40)
    one = run_psi(p, np.array([[4e-6]]), [0.0, T], t_eval, 5)
    two = run_psi(p, np.array([[4e-6], [4e-6]]), [0.0, T / 2, T], t_eval, 5)
    np.testing.assert_allclose(two, one, rtol=0, atol=1e-14)


def test_rain_above_kz_infiltrates_at_kz():
    T = 3600.0
    p = make_params(kz=1e-5)
    a = run_psi(p, np.array([[1e-5]]), [0.0, T], [T], 3)
    b = run_psi(p, np.array([[5e-5]]), [0.0, T], [T], 3)
    np.testing.assert_array_equal(a, b)


def random_case(seed, n_cells=64, n_steps=6):
    rng = np.random.default_rng(seed)
    p = np.empty((k.N_PARAMS, n_cells))
    p[k.P_SLOPE] = rng.uniform(10, 50, n_cells) * DEG
    p[k.P_COHESION] = rng.uniform(500, 15000, n_cells)  # > 0: no exact FS ties over depth
    p[k.P_PHI] = rng.uniform(20, 40, n_cells) * DEG
    p[k.P_GAMMA_S] = rng.uniform(16000, 22000, n_cells)
    p[k.P_KZ] = 10 ** rng.uniform(-6.5, -4.5, n_cells)
    p[k.P_DHAT] = k.iverson_dhat(10 ** rng.uniform(-6, -3, n_cells), p[k.P_SLOPE])
    p[k.P_SOIL_DEPTH] = rng.uniform(0.5, 5.0, n_cells)
    p[k.P_WATER_TABLE] = p[k.P_SOIL_DEPTH] * rng.uniform(0.0, 1.2, n_cells)
    p[k.P_I_LT] = p[k.P_KZ] * rng.uniform(0, 0.2, n_cells)
    rain = rng.uniform(0, 3e-5, (n_steps, n_cells)) * (rng.random((n_steps, n_cells)) < 0.7)
    edges = np.concatenate([[0.0], np.cumsum(rng.uniform(1800, 7200, n_steps))])
    t_eval = np.linspace(0.0, edges[-1] * 2.0, 25)
    return p, rain, edges, t_eval


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kernel_matches_numpy_reference(seed):
    # Same formulas, different summation order: agreement to round-off; 1e-10
    # (absolute on psi in m and FS, relative on times) is far above float64
    # round-off of a sum of <= 7 terms of order 1.
    p, rain, edges, t_eval = random_case(seed)
    psi = run_psi(p, rain, edges, t_eval, 7)
    np.testing.assert_allclose(
        psi, ref.pressure_head(p, rain, edges, t_eval, 7), rtol=0, atol=1e-10
    )
    got = run_fs(p, rain, edges, t_eval, 7)
    want = ref.factor_of_safety(p, rain, edges, t_eval, 7, k.GAMMA_W)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-10, equal_nan=True)
    assert np.isfinite(got[2]).any() and np.isnan(got[2]).any()  # both outcomes exercised


def test_broadcast_rain_equals_per_cell_rain():
    p, rain, edges, t_eval = random_case(3, n_cells=16)
    col = rain[:, :1]
    a = run_psi(p, col, edges, t_eval, 4)
    b = run_psi(p, np.repeat(col, 16, axis=1), edges, t_eval, 4)
    np.testing.assert_array_equal(a, b)


def test_one_and_two_threads_equal():
    # Cells are independent and each is computed in the same order on any
    # thread: results must be bit-identical.
    p, rain, edges, t_eval = random_case(4, n_cells=257)
    old = numba.get_num_threads()
    outs = []
    try:
        for threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(threads)
            outs.append(run_fs(p, rain, edges, t_eval, 6))
    finally:
        numba.set_num_threads(old)
    for a, b in zip(*outs, strict=True):
        np.testing.assert_array_equal(a, b)


def test_trigrs_ierfc_form_equals_iverson_form():
    # TRIGRS (Baum et al. 2008) writes the step response as
    # 2 sqrt(D1 t) ierfc(Z / (2 sqrt(D1 t))), ierfc(x) = exp(-x^2)/sqrt(pi) - x erfc(x)
    # (Carslaw & Jaeger 1959, app. II); with D_hat = 4 D1 it is Z R(t D_hat / Z^2).
    # trigrs_dhat and iverson_dhat differ by cos^4(delta).
    d1, z = 3e-5, 1.7
    for t in (60.0, 3600.0, 86400.0, 1e7):
        x = z / (2.0 * math.sqrt(d1 * t))
        ierfc = math.exp(-x * x) / math.sqrt(math.pi) - x * math.erfc(x)
        trigrs = 2.0 * math.sqrt(d1 * t) * ierfc
        assert abs(trigrs - z * k.response(t * 4.0 * d1 / z**2)) < 1e-12 * max(1.0, trigrs)
    ratio = k.iverson_dhat(1e-5, 30 * DEG) / k.trigrs_dhat(1e-5, 30 * DEG)
    assert abs(ratio - math.cos(30 * DEG) ** 4) < 1e-15


def test_component_steps_agree_with_kernel_over_the_same_times():
    # The component evaluates the kernel at each step's end time and keeps the
    # running minimum: it must equal one kernel call over all those times.
    from physics.slope import SlopeStability

    p, rain, edges, _ = random_case(5, n_cells=32)
    names = {
        "topographic__slope_angle": k.P_SLOPE,
        "soil__effective_cohesion": k.P_COHESION,
        "soil__friction_angle": k.P_PHI,
        "soil__unit_weight": k.P_GAMMA_S,
        "soil__saturated_hydraulic_conductivity": k.P_KZ,
        "soil__effective_diffusivity": k.P_DHAT,
        "water_table__depth": k.P_WATER_TABLE,
        "soil__long_term_infiltration_rate": k.P_I_LT,
        "soil__depth": k.P_SOIL_DEPTH,
    }
    comp = SlopeStability(rain, edges, n_depths=5, **{n: p[r] for n, r in names.items()})
    dt = 1800.0
    for _ in range(20):
        assert comp.step(dt) == dt
    t_eval = dt * np.arange(1, 21)
    fs_min, z_min, t_fail, _ = run_fs(p, rain, edges, t_eval, 5)
    np.testing.assert_array_equal(comp.get("factor_of_safety__minimum").values, fs_min)
    np.testing.assert_array_equal(comp.get("factor_of_safety__depth_of_minimum").values, z_min)
    np.testing.assert_array_equal(comp.get("time_of_failure").values, t_fail)
    assert comp.get("factor_of_safety").attrs["units"] == "1"


# -- the fast path (distinct lags, exact bounds) against the reference ---------------------------
def lattice_case(seed, n_cells=400, hours=24, stop_h=18, step_min=10):
    """Rain on a 10-min lattice that stops at ``stop_h``, hourly outputs to ``hours``; a
    mix of stable, failing and near-critical cells (c' small, steep slopes, wet starts)."""
    rng = np.random.default_rng(seed)
    p, _, _, _ = random_case(seed, n_cells=n_cells)
    p[k.P_SLOPE] = rng.uniform(15, 50, n_cells) * DEG
    p[k.P_COHESION] = rng.uniform(0, 8000, n_cells)
    p[k.P_DHAT] = k.iverson_dhat(10 ** rng.uniform(-5.5, -3.5, n_cells), p[k.P_SLOPE])
    n_steps = stop_h * 60 // step_min
    rain = rng.uniform(0, 2e-5, (n_steps, n_cells)) * (rng.random((n_steps, n_cells)) < 0.8)
    edges = np.arange(n_steps + 1) * step_min * 60.0
    t_eval = np.arange(1, hours + 1) * 3600.0
    return p, rain, edges, t_eval


def test_lag_table_lists_each_lag_once():
    # edges 0, 600, 1200; outputs 600, 1800: lags 600 (twice), 1200, 1800 -> {600, 1200, 1800}
    lags, idx, order = k.lag_table(np.array([0.0, 600.0, 1200.0]), np.array([600.0, 1800.0]))
    np.testing.assert_array_equal(lags, [600.0, 1200.0, 1800.0])
    np.testing.assert_array_equal(idx, [[0, -1, -1], [2, 1, 0]])
    np.testing.assert_array_equal(order, [1, 0])


@pytest.mark.parametrize("seed", [10, 11])
def test_lattice_rain_that_stops_matches_numpy_reference(seed):
    # 10-min rain stopping at 18 h, hourly outputs to 24 h: the lag table (144 lags) and the
    # bounds are used; same formulas, so agreement to round-off (tolerance as above).
    p, rain, edges, t_eval = lattice_case(seed)
    np.testing.assert_allclose(
        run_psi(p, rain, edges, t_eval, 10),
        ref.pressure_head(p, rain, edges, t_eval, 10), rtol=0, atol=1e-10,
    )
    got = run_fs(p, rain, edges, t_eval, 10)
    want = ref.factor_of_safety(p, rain, edges, t_eval, 10, k.GAMMA_W)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-10, equal_nan=True)
    failed = np.isfinite(got[2])
    assert 0.1 < failed.mean() < 0.9  # both outcomes, many of each
    assert (got[2][failed] > t_eval[0]).any()  # some fail during the storm, not at once


def test_bounds_skip_nothing_that_matters():
    # The bounded kernel against the previous direct sum at every (cell, depth, time), on
    # cells where the bounds skip depths and times and where FS is near 1: t_fail equal
    # exactly, the rest to round-off of two summation orders.
    p, rain, edges, t_eval = lattice_case(12, n_cells=2000)
    rain = np.ascontiguousarray(rain[:, :1])  # one series for all: many cells near FS = 1
    n = p.shape[1]
    fast = run_fs(p, rain, edges, t_eval, 10)
    slow = [np.empty(n), np.empty(n), np.empty(n), np.empty((len(t_eval), n))]
    k.factor_of_safety_direct(p, rain, edges, t_eval, 10, k.GAMMA_W, *slow)
    np.testing.assert_array_equal(fast[2], slow[2])
    for g, w in zip(fast, slow, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12, equal_nan=True)
    near = np.abs(fast[0] - 1.0) < 0.05
    assert near.sum() > 20


def test_cells_outside_the_model_and_flat_cells():
    # NaN slope (outside the DEM) and bad inputs: NaN everywhere; slope 0: tan(delta) = 0,
    # an infinite slope cannot slide, FS = +inf, no depth, no failure.
    p, rain, edges, t_eval = lattice_case(13, n_cells=6)
    p[k.P_SLOPE, 0] = np.nan
    p[k.P_SLOPE, 1] = 0.0
    p[k.P_SOIL_DEPTH, 2] = 0.0
    p[k.P_KZ, 3] = np.nan
    fs_min, z_min, t_fail, fs_t = run_fs(p, rain, edges, t_eval, 5)
    for c in (0, 2, 3):
        assert np.isnan(fs_min[c]) and np.isnan(z_min[c]) and np.isnan(t_fail[c])
        assert np.isnan(fs_t[:, c]).all()
    assert fs_min[1] == np.inf and np.isnan(z_min[1]) and np.isnan(t_fail[1])
    assert (fs_t[:, 1] == np.inf).all()
    want = ref.factor_of_safety(p[:, 4:], rain[:, 4:], edges, t_eval, 5, k.GAMMA_W)
    np.testing.assert_allclose(fs_min[4:], want[0], rtol=1e-10)


def test_no_output_times_and_outputs_before_the_rain():
    p, rain, edges, _ = lattice_case(14, n_cells=8)
    fs_min, z_min, t_fail, _ = run_fs(p, rain, edges + 7200.0, [600.0, 3600.0], 4)
    want = ref.factor_of_safety(p, rain, edges + 7200.0, [600.0, 3600.0], 4, k.GAMMA_W)
    np.testing.assert_allclose(fs_min, want[0], rtol=1e-12)  # steady head only
    fs_min, z_min, t_fail, _ = run_fs(p, rain, edges, [], 4)
    assert (fs_min == np.inf).all() and np.isnan(z_min).all() and np.isnan(t_fail).all()
