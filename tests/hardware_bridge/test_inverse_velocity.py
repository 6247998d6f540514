"""Inverse-velocity failure forecasts (hardware_bridge.fusion.inverse_velocity).

Synthetic series with a known failure time come from Voight's (1988) law dv/dt = A v**alpha,
whose closed form is v(t) = v0 (1 - t/t_f)**(-p), p = 1/(alpha - 1), and displacement
d(t) = v0 t_f / (p - 1) ((1 - t/t_f)**(1 - p) - 1) (alpha != 2) or
d(t) = -v0 t_f ln(1 - t/t_f) (alpha = 2, Fukuzono 1985: 1/v linear in t).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from hardware_bridge.fusion.inverse_velocity import (
    fieller_root,
    fit_inverse_velocity,
    forecast_failure,
    window_velocities,
)
from twin.errors import ValidationError

H = 3600.0
TF = 100 * H  # the known failure time
V0 = 1.0 / H  # 1 mm/h at t = 0


def voight(t, alpha=2.0, t_f=TF, v0=V0):
    """Displacement (mm) of Voight's closed form with v(0) = v0 (mm/s)."""
    if alpha == 2.0:
        return -v0 * t_f * np.log1p(-t / t_f)
    p = 1.0 / (alpha - 1.0)
    return v0 * t_f / (p - 1.0) * ((1.0 - t / t_f) ** (1.0 - p) - 1.0)


HOURLY = np.arange(0.0, 90 * H, H)  # hourly readings for 90 h, the last 11 h before failure


def test_noise_free_alpha2_recovers_the_failure_time():
    f = forecast_failure(HOURLY, voight(HOURLY), velocity_window_s=6 * H, fit_window_s=72 * H)
    assert f.status == "forecast" and f.alpha == 2.0
    # Tolerance from the method: a window's slope is its mean velocity; placed at the window's
    # middle its inverse is 1/v (1 - x^2/12), x = window span / time left. The latest window
    # (5 h span, 11 h left) is off by w^2 / (12 tau) = 25 / 132 = 0.19 h in time units, the
    # others less; the fitted line crosses zero within that (measured: 0.12 h early).
    assert abs(f.t_f - TF) <= 0.25 * H
    assert f.r2 > 0.999
    assert f.lead_s == pytest.approx(f.t_f - 89 * H)
    # the newest window holds the readings of 84..89 h: its velocity is their least-squares slope
    assert f.last_velocity == pytest.approx(np.polyfit(HOURLY[-6:], voight(HOURLY[-6:]), 1)[0])


@pytest.mark.parametrize("alpha, p_tol_h", [(1.5, 0.1), (2.5, 0.1)])
def test_voight_alpha_not_2_closed_form(alpha, p_tol_h):
    # 10-min readings, 1 h windows, up to 10 h before failure: x <= 1/10, so the window-mean
    # error is O(x^2) ~ 1 % of the last (smallest) y value; 0.1 h covers it (measured < 0.05 h)
    t = np.arange(0.0, 90 * H, 600.0)
    d = voight(t, alpha)
    f = forecast_failure(t, d, velocity_window_s=H, alpha=alpha)
    assert f.status == "forecast" and abs(f.t_f - TF) <= p_tol_h * H
    # the same series read with Fukuzono's alpha = 2 misses it: 1/v is curved
    g = forecast_failure(t, d, velocity_window_s=H, alpha=2.0)
    assert not g.ok or abs(g.t_f - TF) > 1.0 * H


def test_noisy_series_interval_covers_the_failure_time():
    """GNSS hourly solutions with 0.5 mm noise (static GNSS precision is of order 1 mm).

    The 95 % Fieller interval must hold the true t_f for this seed, and in at least 90 % of
    200 seeds: if the interval's coverage were 95 %, fewer than 180/200 hits has probability
    0.12 % (binomial), so the bound is loose enough not to flake and tight enough to
    catch an interval that is too narrow.
    """
    rng = np.random.default_rng(12)
    f = forecast_failure(HOURLY, voight(HOURLY) + rng.normal(0, 0.5, HOURLY.size),
                         velocity_window_s=6 * H, fit_window_s=72 * H)
    assert f.ok and f.t_lo <= TF <= f.t_hi
    assert f.t_lo < f.t_f < f.t_hi
    assert stats.binom.cdf(179, 200, 0.95) < 2e-3
    hits = n_ok = 0
    for seed in range(200):
        rng = np.random.default_rng(seed)
        g = forecast_failure(HOURLY, voight(HOURLY) + rng.normal(0, 0.5, HOURLY.size),
                             velocity_window_s=6 * H, fit_window_s=72 * H)
        n_ok += g.ok
        hits += g.ok and g.t_lo <= TF <= g.t_hi
    assert n_ok >= 190  # measured 200/200
    assert hits >= 0.9 * n_ok  # measured 98 %


def test_irregular_sampling_with_a_gap():
    rng = np.random.default_rng(3)
    t = np.cumsum(rng.exponential(0.8 * H, 200))
    t = t[(t < 88 * H) & ((t < 40 * H) | (t > 52 * H))]  # a 12 h outage
    d = voight(t) + rng.normal(0, 0.3, t.size)
    shuffled = rng.permutation(t.size)  # arrival order does not matter
    f = forecast_failure(t[shuffled], d[shuffled], velocity_window_s=6 * H)
    assert f.ok and f.t_lo <= TF <= f.t_hi
    # windows that fell in the outage give no velocity
    assert not np.any((f.t_v > 41 * H) & (f.t_v < 51 * H))


def test_steady_creep_gives_no_forecast():
    t = HOURLY
    exact = forecast_failure(t, 0.25 * t / H, velocity_window_s=6 * H)
    assert exact.status == "not_accelerating" and math.isnan(exact.t_f) and math.isnan(exact.lead_s)
    # With noise, the whole-window gate (the line of 1/v must fall, one-sided t test at
    # (1 - 0.95) / 2) lets about 2.5 % of steady series through by chance; R², the tail and
    # Fieller's interval cut that further. Allowed: at most the gate's 2.5 % of 200 seeds
    # (measured 1 of 200).
    statuses, false = set(), 0
    for seed in range(200):
        rng = np.random.default_rng(seed)
        f = forecast_failure(t, 0.25 * t / H + rng.normal(0, 0.5, t.size), velocity_window_s=6 * H)
        statuses.add(f.status)
        false += f.ok
    assert false <= 5
    assert "not_accelerating" in statuses


def test_decelerating_series_is_not_accelerating():
    t = HOURLY
    d = 50.0 * (1 - np.exp(-t / (30 * H)))  # slowing down
    assert forecast_failure(t, d, velocity_window_s=6 * H).status == "not_accelerating"


def test_direction_and_onset_of_acceleration():
    # 60 h of steady creep at 1 mm/h, then Fukuzono acceleration towards t_f = 100 h
    t = np.arange(0.0, 95 * H, 0.5 * H)
    t_on = 60 * H
    acc = voight(np.clip(t - t_on, 0, None), t_f=TF - t_on)
    d = np.where(t < t_on, V0 * t, V0 * t_on + acc)
    f = forecast_failure(t, -d, velocity_window_s=3 * H, fit_window_s=80 * H)  # moving "down"
    assert f.ok and f.direction == -1 and f.last_velocity < 0
    # the tail starts at the slowest window, about the onset (within a window)
    assert f.fit_t0 >= t_on - 3 * H
    assert abs(f.t_f - TF) <= 0.25 * H  # the same window-mean bias as the noise-free case


def test_window_velocities_are_least_squares_slopes():
    t = np.array([0.0, 1.0, 2.5, 3.0, 10.0, 11.0, 11.5, 12.0]) * H
    d = np.array([0.0, 1.0, 2.0, 4.0, 9.0, 9.5, 10.5, 11.0])
    tv, v, n = window_velocities(t, d, 4 * H)
    # windows end at 12 h: (8, 12] holds 4 readings, (4, 8] none, (0, 4] 3 readings (t = 0
    # belongs to (-4, 0], alone: dropped)
    assert n.tolist() == [3, 4]
    for (a, b), got in zip([(1, 4), (4, 8)], v, strict=True):
        want = np.polyfit(t[a:b], d[a:b], 1)[0]
        assert got == pytest.approx(want, rel=1e-12)
    assert tv[1] == pytest.approx(t[4:].mean())


def test_fieller_interval_is_where_the_band_holds_zero():
    # Fieller's interval equals the times at which the line's confidence band contains 0
    # (brute force over a fine grid, so the quadratic's roots are checked independently)
    rng = np.random.default_rng(5)
    t = np.linspace(0, 10, 15)
    y = 5 - 0.45 * t + rng.normal(0, 0.3, t.size)
    t0, lo, hi, se, r2, b = fieller_root(t, y, 0.9)
    q = stats.t.ppf(0.95, t.size - 2)
    slope, icpt = np.polyfit(t, y, 1)
    s = math.sqrt(np.sum((y - icpt - slope * t) ** 2) / (t.size - 2))
    grid = np.linspace(5, 20, 150001)
    band = q * s * np.sqrt(1 / t.size + (grid - t.mean()) ** 2 / np.sum((t - t.mean()) ** 2))
    inside = grid[np.abs(icpt + slope * grid) <= band]
    assert lo == pytest.approx(inside.min(), abs=2e-4) and hi == pytest.approx(inside.max(), abs=2e-4)
    assert t0 == pytest.approx(-icpt / slope) and b == pytest.approx(slope)
    # a slope that is not significant gives an unbounded interval
    flat = 5 + rng.normal(0, 0.3, t.size) - 0.001 * t
    assert fieller_root(t, flat, 0.95)[1:3] == (-math.inf, math.inf)


@pytest.mark.parametrize("kw, match", [
    (dict(velocity_window_s=0.0), "velocity_window_s|window_s=0.0"),
    (dict(velocity_window_s=H, alpha=1.0), "alpha=1.0"),
    (dict(velocity_window_s=H, confidence=95), "confidence=95"),
    (dict(velocity_window_s=H, r2_min=1.5), "r2_min=1.5"),
    (dict(velocity_window_s=H, min_points=2), "min_points=2"),
    (dict(velocity_window_s=H, fit_window_s=-1.0), "fit_window_s=-1.0"),
])
def test_bad_parameters_name_the_field(kw, match):
    with pytest.raises(ValidationError, match=match):
        forecast_failure(HOURLY, voight(HOURLY), **kw)


def test_bad_series_are_refused():
    with pytest.raises(ValidationError, match="shape"):
        forecast_failure(HOURLY, voight(HOURLY)[:-1], velocity_window_s=H)
    with pytest.raises(ValidationError, match="finite"):
        forecast_failure(HOURLY, np.where(HOURLY > 10 * H, np.nan, 1.0), velocity_window_s=H)
    assert forecast_failure([], [], velocity_window_s=H).status == "too_few_points"
    assert fit_inverse_velocity([1.0, 2.0], [1.0, 2.0]).status == "too_few_points"
