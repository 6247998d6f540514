"""The finite-volume flood scheme (physics.flood_fv): kernel against its numpy reference, well-balancing,
mass, symmetry and the forcings' volume balance.

Every model here is float64 with uniform Manning n or a grid of it (one compiled specialisation of the
time loop for the whole file).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from physics.flood import FloodModel, Infiltration, simulate
from physics.flood_fv import FVFloodModel
from physics.forcing import Hydrograph, UniformRain, WaterLevel
from twin.errors import ValidationError

# tests run with --import-mode=importlib: load the sibling reference module by path
_spec = importlib.util.spec_from_file_location("flood_fv_reference", Path(__file__).with_name("flood_fv_reference.py"))
R = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(R)
_spec2 = importlib.util.spec_from_file_location("flood_fv2_reference",
                                                Path(__file__).with_name("flood_fv2_reference.py"))
R2 = importlib.util.module_from_spec(_spec2)
_spec2.loader.exec_module(R2)


def _bumpy(ny: int, nx: int, dx: float, seed: int = 0, relief: float = 1.0) -> np.ndarray:
    """A smooth random bed (m): sum of a few Gaussian bumps over a gentle bowl."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:ny, 0:nx] * dx
    z = 0.02 * (((x - x.mean()) / (nx * dx)) ** 2 + ((y - y.mean()) / (ny * dx)) ** 2) * nx * dx / 10
    for _ in range(8):
        cx, cy = rng.uniform(0, nx * dx), rng.uniform(0, ny * dx)
        w = rng.uniform(2, 6) * dx
        z += relief * rng.uniform(-0.5, 1.0) * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * w * w))
    return z


def _one_step(model: FVFloodModel) -> float:
    """One step of the model; returns its length (s)."""
    t0 = model.t
    model._advance(t0 + 1e9, max_steps=1)
    return model.t - t0


# ----------------------------------------------------------------------------
# 1. the kernel against the numpy reference (tests/physics/flood_fv_reference.py)
# ----------------------------------------------------------------------------
@pytest.mark.parametrize("free", [False, True])
def test_kernel_steps_match_the_numpy_reference(free):
    """20 steps over a bumpy bed with dry islands, blocked cells, porosity, gridded Manning n, rain,
    constant infiltration and drainage; free (or closed) edges. The two differ in the order and form of
    a few operations (h^(-7/3) from rcbrt's Newton steps against ``**``): round-off of a few ulp per step,
    so 1e-11 of the depth scale (1 m) and of the discharge scale over 20 steps."""
    ny, nx, dx = 23, 31, 2.0
    rng = np.random.default_rng(5)
    z = _bumpy(ny, nx, dx, seed=3, relief=1.2)
    h0 = np.maximum(0.8 - z, 0.0) + rng.uniform(0, 0.2, (ny, nx)) * (rng.uniform(size=(ny, nx)) < 0.7)
    phi = rng.uniform(0.4, 1.0, (ny, nx))
    phi[5:8, 10:13] = 0.0  # a building
    phi[0, 3] = 0.0  # a blocked edge cell
    h0[phi == 0] = 0.0
    n = rng.uniform(0.01, 0.05, (ny, nx))
    edges = "free" if free else "closed"
    m = FVFloodModel(z, dx=dx, manning=n, porosity=phi, h0=h0, rain=UniformRain.constant(3600.0, 1e4),
                     infiltration=Infiltration.constant(900.0), drainage_mm_h=600.0, boundaries=edges)
    # start from a moving state: a few model steps
    for _ in range(5):
        _one_step(m)
    zb = np.where(phi > 0, z, R.BIG)
    s = R.State(h=m.h.copy(), hu=m.hu.copy(), hv=m.hv.copy())
    acc0 = m.balance()
    vols = dict.fromkeys(("rain", "infiltration", "drainage", "outflow"), 0.0)
    for _ in range(20):
        dt = _one_step(m)
        s, v = R.step(s, zb, phi, n * n, dx=dx, dy=dx, dt=dt, h_dry=m.h_dry, rain=3600.0 / 3.6e6,
                      infil_rate=900.0 / 3.6e6, drain_rate=600.0 / 3.6e6, free=(free,) * 4,
                      boundary_slope=m.boundary_slope)
        for k in vols:
            vols[k] += v[k]
    print(f"max |dh| {np.abs(m.h - s.h).max():.1e}, max |dhu| {np.abs(m.hu - s.hu).max():.1e}")
    np.testing.assert_allclose(m.h, s.h, rtol=0, atol=1e-11)
    np.testing.assert_allclose(m.hu, s.hu, rtol=0, atol=1e-11)
    np.testing.assert_allclose(m.hv, s.hv, rtol=0, atol=1e-11)
    b = m.balance()
    for k, v in vols.items():
        assert abs((b[k] - acc0[k]) - v) <= 1e-9 * max(1.0, abs(v)), k
    if free:
        assert vols["outflow"] > 0


def test_second_order_steps_match_the_numpy_reference():
    """Order 2 (MUSCL-minmod, Heun; tests/physics/flood_fv2_reference.py): 20 steps over a bumpy bed with dry
    islands, a building, porosity, gridded Manning n, rain, infiltration and drainage, closed edges. The two
    differ in the form of a few operations (hu * (1/h) against hu/h in the ghosts, h^(-7/3) from rcbrt):
    round-off of a few ulp per step, so 1e-11 of the depth and discharge scales over 20 steps."""
    ny, nx, dx = 23, 31, 2.0
    rng = np.random.default_rng(8)
    z = _bumpy(ny, nx, dx, seed=4, relief=1.2)
    h0 = np.maximum(0.8 - z, 0.0) + rng.uniform(0, 0.2, (ny, nx)) * (rng.uniform(size=(ny, nx)) < 0.7)
    phi = rng.uniform(0.4, 1.0, (ny, nx))
    phi[5:8, 10:13] = 0.0
    phi[0, 3] = 0.0
    h0[phi == 0] = 0.0
    n = rng.uniform(0.01, 0.05, (ny, nx))
    m = FVFloodModel(z, dx=dx, manning=n, porosity=phi, h0=h0, rain=UniformRain.constant(3600.0, 1e4),
                     infiltration=Infiltration.constant(900.0), drainage_mm_h=600.0, boundaries="closed", order=2)
    for _ in range(5):
        _one_step(m)
    zb = np.where(phi > 0, z, R.BIG)
    s = R.State(h=m.h.copy(), hu=m.hu.copy(), hv=m.hv.copy())
    moved = 0.0
    for _ in range(20):
        dt = _one_step(m)
        s0 = s.h.copy()
        s, _v = R2.heun_step(s, zb, phi, n * n, dx=dx, dy=dx, dt=dt, h_dry=m.h_dry, rain=3600.0 / 3.6e6,
                             infil_rate=900.0 / 3.6e6, drain_rate=600.0 / 3.6e6)
        moved = max(moved, float(np.abs(s.h - s0).max()))
    print(f"order 2: max |dh| {np.abs(m.h - s.h).max():.1e}, max |dhu| {np.abs(m.hu - s.hu).max():.1e}, "
          f"largest change of a step {moved:.1e} m")
    assert moved > 1e-4  # the water moves: the comparison is not of two resting states
    np.testing.assert_allclose(m.h, s.h, rtol=0, atol=1e-11)
    np.testing.assert_allclose(m.hu, s.hu, rtol=0, atol=1e-11)
    np.testing.assert_allclose(m.hv, s.hv, rtol=0, atol=1e-11)


# ----------------------------------------------------------------------------
# 2. lake at rest over a bumpy bed with islands (Audusse et al. 2004, SIAM J. Sci. Comput. 25:2050, §2:
#    the hydrostatic reconstruction keeps it to round-off)
# ----------------------------------------------------------------------------
@pytest.mark.parametrize(("porosity", "order"), [(False, 1), (True, 1), (True, 2)])
def test_lake_at_rest_over_bumpy_bed_with_islands(porosity, order):
    ny, nx, dx = 40, 50, 5.0
    z = _bumpy(ny, nx, dx, seed=7, relief=1.5)
    eta = float(np.quantile(z, 0.75))  # a quarter of the cells stand dry
    h0 = np.maximum(eta - z, 0.0)
    assert 0.1 < (h0 == 0).mean() < 0.5  # dry islands
    phi = None
    if porosity:
        phi = np.random.default_rng(2).uniform(0.3, 1.0, (ny, nx))
        phi[10:14, 20:25] = 0.0  # a building in the lake
        h0 = np.where(phi > 0, h0, 0.0)
    model = FVFloodModel(z, dx=dx, manning=0.0 if not porosity else 0.02, h0=h0, porosity=phi, order=order)
    for _ in range(1000 if order == 1 else 300):
        _one_step(model)
    qmax = max(np.abs(model.hu).max(), np.abs(model.hv).max())
    dh = np.abs(model.h - h0).max()
    print(f"FV lake at rest (porosity={porosity}, order {order}): {model.n_steps} steps, {model.t:.0f} s, "
          f"max|hu| {qmax:.1e} m2/s, max|dh| {dh:.1e} m")
    # exact in exact arithmetic: at every face F(U*, U*) = (0, g/2 h*², 0) and the pressure corrections
    # cancel it (at order 2 with the cell's centred bed term, Audusse et al. 2004 §3); what is left is the round-off of g/2 h² (~1e-16 relative), which the HLL dissipation damps
    assert qmax <= 1e-12
    assert dh <= 1e-12
    assert model.balance()["relative_error"] <= 1e-13


# ----------------------------------------------------------------------------
# 3. closed basin: mass to round-off
# ----------------------------------------------------------------------------
def test_closed_basin_keeps_its_water_to_round_off():
    ny, nx, dx = 30, 40, 4.0
    z = _bumpy(ny, nx, dx, seed=11, relief=2.0)
    y, x = np.mgrid[0:ny, 0:nx] * dx
    h0 = 1.5 * np.exp(-((x - 50) ** 2 + (y - 60) ** 2) / 200.0)  # a mound of water sloshing over islands
    model = FVFloodModel(z, dx=dx, manning=0.01, h0=h0)
    model.step(300.0)
    b = model.balance()
    print(f"closed basin: {model.n_steps} steps, error {b['error']:.1e} m3 of {b['storage']:.1f}")
    assert model.n_steps > 200
    assert b["outflow"] == 0.0
    # sum of per-cell volume updates: ~n_steps * cells * 1e-16 relative at most
    assert b["relative_error"] <= 1e-12
    assert float(model.h.min()) >= 0.0


# ----------------------------------------------------------------------------
# 4. 2-D dam break over a dry bed (a cylinder of water): symmetric to the bit
# ----------------------------------------------------------------------------
@pytest.mark.parametrize("order", [1, 2])
def test_cylinder_dam_break_is_symmetric_to_the_bit(order):
    """x and y faces share one flux function and a cell adds its x and y terms as one commutative sum
    (no reassociation or fused multiply-add), so transposing or mirroring the grid gives the same numbers."""
    n, dx = 41, 1.0
    y, x = (np.mgrid[0:n, 0:n] - (n - 1) / 2) * dx
    z = 0.01 * (x * x + y * y) ** 0.5  # a radial bed, also symmetric
    h0 = np.where(x * x + y * y <= 8.0**2, 2.0, 0.0)
    model = FVFloodModel(z, dx=dx, manning=0.02, h0=h0, order=order)
    model.step(4.0)
    h, hu, hv = model.h, model.hu, model.hv
    assert model.n_steps > 20
    assert float(h[n // 2, 0:5].max()) == 0.0 or float(h[n // 2, -1]) > 0.0  # the front is on its way
    np.testing.assert_array_equal(h, h.T)
    np.testing.assert_array_equal(h, h[::-1, :])
    np.testing.assert_array_equal(h, h[:, ::-1])
    np.testing.assert_array_equal(hu, hv.T)
    np.testing.assert_array_equal(hu, -hu[:, ::-1])
    np.testing.assert_array_equal(hv, -hv[::-1, :])
    r = np.hypot(x, y)
    assert float(h[r > 12].max()) > 0.01  # it spread beyond the cylinder


# ----------------------------------------------------------------------------
# 5. every forcing runs and the balance closes
# ----------------------------------------------------------------------------
@pytest.mark.parametrize("case", ["rain_free", "green_ampt", "scs_cn", "inflow_drainage", "tide", "porosity"])
def test_every_forcing_closes_the_volume_balance(case):
    ny, nx, dx = 24, 30, 10.0
    z = _bumpy(ny, nx, dx, seed=1, relief=1.0) + 0.002 * np.arange(nx)[None, :] * dx
    kw: dict = {"manning": 0.03, "rain": UniformRain([0, 300, 900], [80.0, 20.0])}
    if case == "rain_free":
        kw["boundaries"] = {"west": "free", "south": "free"}
    elif case == "green_ampt":
        kw["infiltration"] = Infiltration.green_ampt(10.0, 110.0, 0.3)
    elif case == "scs_cn":
        kw["infiltration"] = Infiltration.scs_cn(np.full((ny, nx), 80.0))
    elif case == "inflow_drainage":
        kw["inflows"] = [Hydrograph(x=155.0, y=125.0, times_s=[0, 200, 600], discharge_m3s=[0.0, 2.0, 0.5])]
        kw["drainage_mm_h"] = np.where(np.arange(nx)[None, :] < 10, 30.0, 0.0) * np.ones((ny, 1))
        kw["infiltration"] = Infiltration.constant(5.0)
    elif case == "tide":
        mask = np.zeros((ny, nx), bool)
        mask[:, :3] = True
        kw["water_level"] = WaterLevel(mask=mask, times_s=[0, 600, 1200], level_m=[0.0, 1.2, 0.4])
    elif case == "porosity":
        phi = np.random.default_rng(4).uniform(0.2, 1.0, (ny, nx))
        phi[8:12, 8:14] = 0.0
        phi[0, :4] = 0.0
        kw["porosity"] = phi
        kw["boundaries"] = "free"
    model = FloodModel(z, dx=dx, scheme="fv", **kw)
    assert isinstance(model, FVFloodModel)
    ds = model.run(1200.0, 300.0)
    b = model.balance()
    print(f"{case}: {model.n_steps} steps, " + ", ".join(f"{k} {b[k]:.3g}" for k in
                                                         ("rain", "infiltration", "drainage", "inflow", "outflow",
                                                          "level_exchange", "storage", "error")))
    # per step and cell the volume update rounds at ~1e-16 of the cell's water: far below 1e-12 of the inputs
    assert b["relative_error"] <= 1e-12
    assert float(np.abs(ds["volume_error"]).max()) <= 1e-12 * max(b["rain"], 1.0) * 10
    assert float(model.h.min()) >= 0.0
    assert ds.attrs["scheme"].startswith("finite volume")
    expected_term = {"rain_free": "outflow", "green_ampt": "infiltration", "scs_cn": "infiltration",
                     "inflow_drainage": "drainage", "tide": "level_exchange", "porosity": "outflow"}[case]
    assert abs(b[expected_term]) > 0.01 * b["rain"]


def test_simulate_takes_scheme_fv_and_refuses_local_inertial_knobs():
    z = np.zeros((5, 6))
    ds = simulate(z, 60.0, rain=50.0, dx=5.0, scheme="fv")
    assert ds.attrs["model"] == "FiniteVolumeFlood"
    assert float(ds["volume_error"][-1]) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValidationError, match="theta"):
        FloodModel(z, dx=5.0, scheme="fv", theta=0.5)
    with pytest.raises(ValidationError, match="order"):
        FVFloodModel(z, dx=5.0, order=3)
    ds2 = simulate(z, 60.0, rain=50.0, dx=5.0, scheme="fv", order=2)
    assert ds2.attrs["order"] == 2
    assert float(ds2["volume_error"][-1]) == pytest.approx(0.0, abs=1e-12)


def test_checkpoint_restores_momenta_and_steps_on_bit_for_bit():
    z = _bumpy(12, 14, 3.0, seed=2)
    kw = {"dx": 3.0, "h0": np.maximum(0.5 - z, 0) + 0.1, "rain": UniformRain.constant(40.0, 1e4)}
    a = FVFloodModel(z, **kw)
    a.step(20.0)
    state = a.checkpoint()
    assert "hu" in state and "hv" in state
    a.step(20.0)
    b = FVFloodModel(z, **kw)
    b.restore(state)
    b.step(20.0)
    np.testing.assert_array_equal(a.h, b.h)
    np.testing.assert_array_equal(a.hu, b.hu)
