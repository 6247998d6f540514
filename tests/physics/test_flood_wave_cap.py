"""The optional wave-depth cap of the flood model (``FloodModel(wave_depth_cap_m=...)``).

The cap replaces h_f by min(h_f, cap) in the pressure term of the momentum
update only, so that the CFL step is that of water ``cap`` deep. Claims
tested here: it changes nothing where no water is deeper than the cap
(bit for bit); the volume balance closes as without it (closed basin with
rain to n_steps x eps relative: the flux-form update conserves volume to round-off,
LeVeque 2002, Finite Volume Methods for Hyperbolic Problems, ch. 4); a deep pool stays at rest
(well-balancedness, Audusse et al. 2004 SIAM J. Sci. Comput. 25:2050); a
disturbed deep pool under rain, stepped at the capped step (far above its
own CFL step), stays bounded, keeps the volume of the uncapped run and
levels out (more slowly); and without the cap that same step is unstable,
so the tests can fail.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

from physics.flood import FloodModel
from physics.forcing import UniformRain
from twin.errors import ValidationError

_spec = importlib.util.spec_from_file_location("flood_reference", Path(__file__).with_name("flood_reference.py"))
flood_reference = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(flood_reference)
State, ref_step = flood_reference.State, flood_reference.step

G = 9.80665
NY, NX, DX = 40, 50, 10.0


def _pool_bed() -> np.ndarray:
    """A gently bumpy plain (0-0.5 m) with a bowl 20 m deep in its middle (m)."""
    yy, xx = np.mgrid[0:NY, 0:NX] * DX
    z = 0.25 * (1 + np.sin(xx / 70.0) * np.cos(yy / 55.0))
    r2 = ((xx - NX * DX / 2) ** 2 + (yy - NY * DX / 2) ** 2) / (120.0**2)
    return z - 20.0 * np.clip(1 - r2, 0, None)


def test_cap_above_every_depth_changes_nothing():
    z = _pool_bed()
    kw = {"dx": DX, "manning": 0.03, "rain": UniformRain.constant(80.0, 1800.0), "h0": np.maximum(-5.0 - z, 0.0)}
    a = FloodModel(z, **kw)
    b = FloodModel(z, **kw, wave_depth_cap_m=100.0)
    a.step(900.0)
    b.step(900.0)
    assert a.n_steps == b.n_steps
    assert np.array_equal(a.h, b.h) and np.array_equal(a.qx, b.qx) and np.array_equal(a.qy, b.qy)


def test_deep_pool_stays_at_rest_at_the_capped_step():
    z = _pool_bed()
    h0 = np.maximum(-2.0 - z, 0.0)  # 18 m of still water in the bowl, dry plain around it
    assert h0.max() > 17.0
    m = FloodModel(z, dx=DX, manning=0.03, h0=h0, wave_depth_cap_m=1.0)
    dt_cap = m.cfl_dt()
    assert dt_cap == pytest.approx(0.7 * math.sqrt(0.7) * DX / math.sqrt(G * 1.0))
    for _ in range(500):
        m.step(dt_cap)
    qmax = max(np.abs(m.qx).max(), np.abs(m.qy).max())
    print(f"deep pool at rest, cap 1 m: dt {dt_cap:.2f} s, {m.n_steps} steps, max|q| {qmax:.1e} m2/s")
    assert m.n_steps == 500
    # round-off only (see test_lake_at_rest_over_bumpy_bed_with_islands): each depth moves by about an ulp
    # of the deepest water a step, and a surface off by those ulps drives at most g cap dt (2 ulp)/dx of
    # discharge a step (the cap bounds the pressure term's depth); bounds linear in the steps
    ulp = float(np.spacing(h0.max()))
    assert qmax <= m.n_steps * G * 1.0 * dt_cap * 2 * ulp / DX  # 6.6e-12 m2/s (measured 1e-14)
    assert np.abs(m.h - h0).max() <= 2 * m.n_steps * ulp  # 3.6e-12 m (measured 3.6e-15)


def _disturbed_pool(cap, steps, dt):
    z = _pool_bed()
    eta = np.where(np.arange(NX) < NX // 2, -1.0, -3.0) * np.ones((NY, 1))  # a 2 m step across the pool
    h0 = np.maximum(eta - z, 0.0)
    m = FloodModel(z, dx=DX, manning=0.03, h0=h0, rain=UniformRain.constant(100.0, 1e6), wave_depth_cap_m=cap)
    for _ in range(steps):
        m.step(dt)
        if not np.isfinite(m.h).all() or m.h.max() > 1e3:
            break
    return m


def _spread(m_or_st, z) -> float:
    eta = (z + m_or_st.h)[m_or_st.h > 5.0]
    return float(eta.max() - eta.min())


def test_disturbed_deep_pool_under_rain_is_stable_and_conserves_volume():
    cap = 1.0
    dt = 0.7 * math.sqrt(0.7) * DX / math.sqrt(G * cap)  # 1.87 s; the pool's own CFL step is 0.43 s
    m = _disturbed_pool(cap, 900, dt)
    ref = _disturbed_pool(None, 0, dt)  # the same without the cap, stepped at its own CFL step
    ref.step(m.t)
    b = m.balance()
    qmax = max(np.abs(m.qx).max(), np.abs(m.qy).max())
    print(f"disturbed deep pool + rain, cap {cap} m: {m.n_steps} steps of {dt:.2f} s (uncapped: {ref.n_steps}), "
          f"level spread 2 m -> {_spread(m, m.z):.3f} m (uncapped {_spread(ref, ref.z):.4f} m), max|q| "
          f"{qmax:.2f} m2/s, relative volume error {b['relative_error']:.1e}")
    assert m.n_steps == 900  # every step at the capped step (no sub-steps: the cap bounds the CFL depth)
    assert ref.n_steps > 3 * m.n_steps
    assert np.isfinite(m.h).all() and m.h.min() >= 0.0
    assert b["relative_error"] <= m.n_steps * np.finfo(np.float64).eps  # one rounding a step (measured 2.7e-14)
    # same rain on a closed basin: both storages within their round-off
    assert m.storage() == pytest.approx(ref.storage(), rel=(m.n_steps + ref.n_steps) * np.finfo(np.float64).eps)
    # the seiche decays more slowly (its waves run at sqrt(g cap)), but it decays
    assert _spread(m, m.z) < 0.1
    assert qmax < 1.0


RAIN_M_S = 100.0 / 3.6e6


def _state(m) -> State:
    return State(h=m.h.copy(), qx=m.qx.copy(), qy=m.qy.copy(), infil_cum=m.infil_cum.copy(),
                  hmax=m.hmax.copy(), tmax=m.tmax.copy(), tarr=m.tarr.copy())


def _ref_step(st, m, dt, t_new, h_cap):
    ref_step(st, m.z.astype(float), np.full(m.shape, 0.03**2), np.ones(m.shape), dt, DX, DX, t_new=t_new,
             theta=0.7, h_dry=m.h_dry, h_cap=h_cap, rain=RAIN_M_S)


def _ref_run(m, dt, steps, h_cap):
    """``steps`` steps of the numpy reference (flood_reference.py) from the model's state."""
    st = _state(m)
    for k in range(steps):
        _ref_step(st, m, dt, (k + 1) * dt, h_cap)
    return st, steps


def test_capped_kernels_match_the_numpy_reference():
    cap = 1.0
    m = _disturbed_pool(cap, 0, 1.0)
    st = _state(m)
    dt = 0.9 * m.cfl_dt()
    for _ in range(40):
        m.step(dt)
        _ref_step(st, m, dt, m.t, cap)
    print(f"capped kernels vs numpy reference, 40 steps: max|dh| {np.abs(m.h - st.h).max():.1e} m")
    # operation order only (as test_kernels_match_numpy_reference): 40 steps x 4 ulp of each field's largest value
    for mine, ref in ((m.h, st.h), (m.qx, st.qx), (m.qy, st.qy)):
        np.testing.assert_allclose(mine, ref, rtol=0, atol=40 * 4 * np.spacing(np.abs(ref).max()))
    assert np.abs(m.qx).max() > 0.1  # the disturbance moves water


def test_without_the_cap_the_capped_step_blows_up():
    cap = 1.0
    dt = 0.7 * math.sqrt(0.7) * DX / math.sqrt(G * cap)
    m = _disturbed_pool(None, 0, dt)
    assert m.cfl_dt() < dt / 4  # the pool's own CFL step (~18 m deep)
    capped, _ = _ref_run(m, dt, 300, cap)
    free, _ = _ref_run(m, dt, 300, np.inf)
    print(f"numpy reference, 300 steps of {dt:.2f} s: level spread 2 m -> {_spread(capped, m.z):.2f} m with the "
          f"cap, {_spread(free, m.z):.1f} m without (max|q| {np.abs(free.qx).max():.0f} m2/s)")
    assert _spread(capped, m.z) < 2.0
    assert _spread(free, m.z) > 10.0  # unstable: the outflow limiter bounds it, nothing damps it


def test_cap_must_be_positive():
    with pytest.raises(ValidationError, match="wave_depth_cap_m"):
        FloodModel(_pool_bed(), dx=DX, wave_depth_cap_m=0.0)
