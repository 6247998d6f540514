"""Local time stepping (physics.flood_lts) against the global step, the numpy reference and the balance."""

from __future__ import annotations

import numpy as np
import pytest

from physics import flood_lts
from physics.flood import FloodModel
from physics.forcing import UniformRain
from tests.physics.flood_lts_reference import coarse_step
from twin.errors import ValidationError

DX = 10.0
RAIN_MM_H = 100.0


def pool_case(ny=64, nx=96, *, pool_depth=8.0, boundaries="closed", blocked=True):
    """A plane tilted 1 % (x) and 0.5 % (y) with a pit ``pool_depth`` deep and full, some blocked cells."""
    x = np.arange(nx)[None, :]
    y = np.arange(ny)[:, None]
    z = (0.01 * x * DX + 0.005 * y * DX).astype(float)
    pit = np.zeros((ny, nx), dtype=bool)
    pit[30:36, 40:46] = True
    z[pit] -= pool_depth
    if blocked:
        z[10:14, 70:74] = np.nan  # a building block
    h0 = np.where(pit, pool_depth, 0.0)
    return z, h0


def model_of(z, h0, *, rain=RAIN_MM_H, boundaries="closed", hours=1.0):
    return FloodModel(z, dx=DX, rain=UniformRain.constant(rain, hours * 3600.0), boundaries=boundaries, h0=h0)


def run_lts(m, seconds, chunk=60.0, **kw):
    hmin = np.inf
    while m.t < seconds - 1e-9:
        flood_lts.run(m, min(chunk, seconds - m.t), **kw)
        hmin = min(hmin, float(m.h.min()))
    return hmin


def test_every_tile_at_level_zero_is_the_global_step_to_round_off():
    # max_level=0: one tile level, dt_0 the global CFL step, the same face arithmetic (imported);
    # only the order of summation of the row volumes and t + dt - t differ (round-off)
    z, h0 = pool_case(boundaries="free")
    g = model_of(z, h0, boundaries="free")
    s = model_of(z, h0, boundaries="free")
    for _ in range(5):
        g.step(60.0)
        flood_lts.run(s, 60.0, tile=16, max_level=0)
    assert s.n_steps == g.n_steps
    for name in ("h", "qx", "qy", "hmax"):
        a, b = getattr(g, name), getattr(s, name)
        np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-12, err_msg=name)
    bg, bs = g.balance(), s.balance()
    assert bs["outflow"] == pytest.approx(bg["outflow"], rel=1e-9, abs=1e-9)
    assert bs["rain"] == pytest.approx(bg["rain"], rel=1e-12)


def test_deep_pool_mass_exact_and_depths_never_negative():
    # the pool (8 m) sets a step 2^k shorter than the sheet flow's: several levels are used;
    # each face's volume leaves one cell and enters the other at the same sub-step: closure
    # to round-off (1e-12 relative, as the global step's closed-basin test)
    z, h0 = pool_case()
    m = model_of(z, h0)
    hmin = run_lts(m, 900.0, tile=16)
    st = flood_lts.stats(m)
    assert max(lv["level"] for lv in st["levels"] if lv["cell_updates"] > 0) >= 3
    assert hmin >= 0.0
    b = m.balance()
    assert b["relative_error"] < 1e-12
    assert b["outflow"] == 0.0


def test_free_edges_balance_closes():
    z, h0 = pool_case()
    m = model_of(z, h0, boundaries="free")
    run_lts(m, 900.0, tile=16)
    b = m.balance()
    assert b["outflow"] > 0.0
    assert b["relative_error"] < 1e-12


def test_lake_at_rest_stays_at_rest():
    # a flat water surface over a bumpy bed with a deep hole and an island: every face has
    # eta_L = eta_R up to the rounding of z + (eta - z) (~1e-16 m), so discharges stay at round-off
    # (SWASHES, Delestre et al. 2013, IJNMF 72:269, §3.1.1: lake at rest, u = 0, h + z = const)
    rng = np.random.default_rng(3)
    ny, nx = 48, 64
    z = rng.uniform(-1.0, 0.5, (ny, nx))
    z[20:26, 30:36] = -12.0  # deep hole: finer levels
    z[5:9, 5:9] = 3.0  # island (dry)
    eta = 1.0
    h0 = np.maximum(eta - z, 0.0)
    m = model_of(z, h0, rain=0.0)
    run_lts(m, 600.0, tile=8)
    wet = h0 > 0
    assert np.abs((z + m.h)[wet] - eta).max() < 1e-12
    assert np.abs(m.qx).max() < 1e-12 and np.abs(m.qy).max() < 1e-12
    assert max(lv["level"] for lv in flood_lts.stats(m)["levels"]) >= 1


def test_one_coarse_step_matches_the_numpy_reference():
    z, h0 = pool_case(blocked=False)
    m = model_of(z, h0)
    flood_lts.run(m, 120.0, tile=16)  # some flow first
    tiles = m._lts.tiles
    h, qx, qy = m.h.copy(), m.qx.copy(), m.qy.copy()
    t0 = m.t
    flood_lts.advance(m, t0 + 30.0, max_steps=1, tile=16)
    dt0 = m.t - t0
    lev = np.repeat(np.repeat(tiles.level, 16, axis=0), 16, axis=1)[: z.shape[0], : z.shape[1]]
    assert lev.max() >= 2
    n2 = np.full(z.shape, m.n2.flat[0]) if m.n2.size == 1 else m.n2
    coarse_step(h, qx, qy, z, n2, np.ones(z.shape), lev, dt0, DX, DX, rain=RAIN_MM_H / 3.6e6,
                theta=m.theta, h_dry=m.h_dry)
    np.testing.assert_allclose(m.h, h, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(m.qx, qx, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(m.qy, qy, rtol=1e-10, atol=1e-12)


def test_deep_pool_with_rain_close_to_the_global_step():
    # Both are the same first-order-in-time scheme with different stable step sequences; the
    # shallow tiles step up to 2^K longer. Their difference is of the order of what a cell's
    # depth changes over one coarse step: the tolerance is that change, measured on the global
    # run (its largest |h(T) - h(T - dt_max)| over the grid, dt_max = 30 s the longest coarse
    # step), and the pool's volume within the rain of one coarse step over its area.
    z, h0 = pool_case()
    g = model_of(z, h0)
    s = model_of(z, h0)
    g.step(870.0)
    h_before = g.h.copy()
    g.step(30.0)
    tol = float(np.abs(g.h - h_before).max())
    run_lts(s, 900.0, tile=16)
    assert 0.0 < tol < 0.05
    assert np.abs(s.hmax - g.hmax).max() <= tol
    assert np.abs(s.h - g.h).max() <= tol
    pit = np.zeros(z.shape, dtype=bool)
    pit[30:36, 40:46] = True
    vol_g, vol_s = g.h[pit].sum(), s.h[pit].sum()
    assert abs(vol_s - vol_g) <= tol * pit.sum()


def test_refuses_bad_settings():
    z, h0 = pool_case()
    m = model_of(z, h0)
    with pytest.raises(ValidationError, match="tile"):
        flood_lts.run(m, 10.0, tile=1)
    with pytest.raises(ValidationError, match="max_level"):
        flood_lts.run(m, 10.0, max_level=-1)


def test_time_stepping_hook_and_forcings_balance():
    # FloodModel(time_stepping="lts") runs through physics.flood_lts.advance; a rising tide on a
    # strip of sea cells, an inflow discharge on the west edge and an outflow edge at normal
    # depth on the east (physics.flood_boundaries) are booked in the same acc columns: closure to
    # round-off (1e-12, as the global step's balance tests)
    from physics.flood_boundaries import EdgeDischarge, EdgeNormalDepth
    from physics.forcing import WaterLevel

    z, h0 = pool_case()
    sea = np.zeros(z.shape, dtype=bool)
    sea[-4:, :20] = True
    z = np.where(sea, -1.0, z)
    h0 = np.where(sea, 1.0, h0)
    tide = WaterLevel(sea, np.array([0.0, 900.0]), np.array([0.0, 0.5]))
    kw = dict(dx=DX, rain=UniformRain.constant(RAIN_MM_H, 3600.0), h0=h0, water_level=tide,
              boundaries=[EdgeDischarge("west", q_m2s=0.05), EdgeNormalDepth("east", slope=0.01)])
    m = FloodModel(z, time_stepping="lts", **kw)
    m.step(900.0)
    b = m.balance()
    assert b["inflow"] > 0 and b["outflow"] > 0 and b["level_exchange"] != 0
    assert b["relative_error"] < 1e-12
    assert m.h.min() >= 0.0
    # the hook is flood_lts.advance with its default tiles: the same numbers as calling it directly
    d = FloodModel(z, **kw)
    flood_lts.run(d, 900.0)
    np.testing.assert_array_equal(d.h, m.h)


def test_drying_bumpy_sheet_with_levels_closes_its_balance():
    # Thin water draining over a bumpy slope with a deep pit (levels 0-3, 8-cell tiles): many cells
    # have their outflow limited (factor < 1), and a face's two cells must see the same factors.
    # When numba fused the factor and update loops of a sub-step, a tile could update before its
    # neighbour's factors of that sub-step existed: 7.4e-4 relative here, 2.1e-8 on the city at 90 m.
    # Each face's volume leaves one cell and enters the other: closure to round-off (1e-12, as the
    # global step's balance tests).
    rng = np.random.default_rng(7)
    ny = nx = 48
    z = rng.uniform(0.0, 2.0, (ny, nx)) + 0.02 * DX * np.arange(ny)[:, None]
    z[20:23, 20:23] -= 8.0
    h0 = np.where(z < 0, 0.5 - z, 0.01)
    m = FloodModel(z, dx=DX, h0=h0, rain=UniformRain.constant(50.0, 600.0), drainage_mm_h=20.0, boundaries="free")
    worst = 0.0
    for _ in range(30):
        flood_lts.run(m, 60.0, tile=8, max_level=3)
        worst = max(worst, m.balance()["relative_error"])
        assert m.h.min() >= 0.0
    assert max(lv["level"] for lv in flood_lts.stats(m)["levels"]) == 3
    assert worst < 1e-12


def test_tile_and_max_level_set_through_the_model():
    z, h0 = pool_case()
    kw = dict(dx=DX, rain=UniformRain.constant(RAIN_MM_H, 3600.0), h0=h0)
    m = FloodModel(z, time_stepping="lts", lts_tile=16, lts_max_level=2, **kw)
    m.step(300.0)
    st = flood_lts.stats(m)
    assert (st["tile"], st["max_level"]) == (16, 2)
    assert max(lv["level"] for lv in st["levels"]) == 2
    d = FloodModel(z, **kw)
    flood_lts.run(d, 300.0, tile=16, max_level=2)
    np.testing.assert_array_equal(d.h, m.h)
    with pytest.raises(ValidationError, match="lts_tile"):
        FloodModel(z, time_stepping="lts", lts_tile=1, **kw)
    with pytest.raises(ValidationError, match="lts_max_level"):
        FloodModel(z, time_stepping="lts", lts_max_level=2.5, **kw)
