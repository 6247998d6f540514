"""FloodModel: kernels against the numpy reference, sources and sinks, API and errors.

The reference (tests/physics/flood_reference.py) implements one step of the
scheme documented in physics/_kernels/flood.py with numpy only; the numba
kernels must agree with it to round-off on small random grids.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from physics.flood import FloodModel, Infiltration, simulate
from physics.forcing import MM_PER_H, GriddedRain, Hydrograph, UniformRain, WaterLevel
from twin.errors import GridError, TwinError, ValidationError

# tests run with --import-mode=importlib: load the sibling reference module by path
_spec = importlib.util.spec_from_file_location("flood_reference", Path(__file__).with_name("flood_reference.py"))
flood_reference = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(flood_reference)
State, ref_step = flood_reference.State, flood_reference.step

# ----------------------------------------------------------------------------
# numba kernels == numpy reference
# ----------------------------------------------------------------------------


def _random_case(seed: int, ny: int = 13, nx: int = 17):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:ny, 0:nx]
    z = 0.02 * xx + 0.5 * np.sin(xx / 2.3) * np.cos(yy / 1.7) + 0.2 * rng.random((ny, nx))
    # wet and dry cells: a random water surface, dry where it is below the bed and at random spots
    eta = 0.3 + 0.2 * rng.random((ny, nx))
    h0 = np.maximum(eta - z, 0.0)
    h0[rng.random((ny, nx)) < 0.2] = 0.0
    phi = rng.uniform(0.3, 1.0, (ny, nx))
    phi[rng.random((ny, nx)) < 0.1] = 0.0  # buildings
    phi[rng.random((ny, nx)) < 0.3] = 1.0
    n = rng.uniform(0.01, 0.1, (ny, nx))
    return rng, z, h0, phi, n


CASES = [
    # (seed, boundaries, infiltration mode, drainage, inflow, level)
    (1, "closed", "none", False, False, False),
    (2, "free", "none", False, False, False),
    (3, {"west": "free", "south": "free"}, "constant", True, False, False),
    (4, {"east": "free", "north": "free"}, "green_ampt", True, True, False),
    (5, "closed", "scs_cn", False, True, True),
    (6, "free", "scs_cn", True, True, True),
]


@pytest.mark.parametrize(("seed", "bounds", "infil", "drainage", "inflow", "level"), CASES)
def test_kernels_match_numpy_reference(seed, bounds, infil, drainage, inflow, level):
    rng, z, h0, phi, n = _random_case(seed)
    ny, nx = z.shape
    dx = 7.0
    rain_mm_h = rng.uniform(0, 200, (1, ny, nx))
    rain = GriddedRain([0.0, 1e6], rain_mm_h)
    infiltration = {
        "none": Infiltration(),
        "constant": Infiltration.constant(rng.uniform(0, 50, (ny, nx))),
        "green_ampt": Infiltration.green_ampt(rng.uniform(1, 30, (ny, nx)), 110.0, 0.4),
        "scs_cn": Infiltration.scs_cn(rng.uniform(60, 95, (ny, nx))),
    }[infil]
    drain_mm_h = rng.uniform(0, 40, (ny, nx)) if drainage else 0.0
    open_cells = np.argwhere(phi > 0)
    jq, iq = open_cells[len(open_cells) // 2]
    q_in = 0.8  # constant hydrograph: the value is the same however the model samples it
    inflows = [Hydrograph((iq + 0.5) * dx, (ny - jq - 0.5) * dx, [0.0, 1e6], [q_in, q_in], "Q")] if inflow else []
    wl = None
    mask = np.zeros((ny, nx), dtype=np.uint8)
    if level:
        mask[:, :2] = 1
        wl = WaterLevel(mask, [0.0, 100.0], [0.4, 0.9])
    model = FloodModel(z, dx=dx, manning=n, rain=rain, infiltration=infiltration, drainage_mm_h=drain_mm_h,
                       inflows=inflows, water_level=wl, boundaries=bounds, porosity=phi, h0=h0,
                       theta=0.7, h_arrive=0.3)
    bc = tuple(int(c) for c in model.bc)
    st = State(h=model.h.copy(), qx=model.qx.copy(), qy=model.qy.copy(), infil_cum=model.infil_cum.copy(),
               hmax=model.hmax.copy(), tmax=model.tmax.copy(), tarr=model.tarr.copy())
    inflow_grid = np.zeros((ny, nx))
    if inflow:
        inflow_grid[jq, iq] = q_in
    totals = dict.fromkeys(("rain", "infiltration", "drainage", "inflow", "outflow", "level_exchange"), 0.0)
    for _ in range(40):
        dt = 0.9 * model.cfl_dt()
        steps = model.n_steps
        model.step(dt)
        assert model.n_steps == steps + 1
        vols = ref_step(st, z, n * n, phi, dt, dx, dx, t_new=model.t, theta=0.7, h_dry=model.h_dry, bc=bc,
                        bslope=model.boundary_slope, rain=rain_mm_h[0] * MM_PER_H,
                        infil_mode=Infiltration.MODES[infil], ip1=infiltration.p1, ip2=infiltration.p2,
                        drain=np.asarray(drain_mm_h) * MM_PER_H, inflow=inflow_grid,
                        level_mask=mask if level else None, level=wl.at(model.t) if level else 0.0,
                        h_arrive=0.3)
        for k, v in vols.items():
            totals[k] += v
    # Tolerance: 40 steps of float64 arithmetic that differs only in operation order (numba fastmath,
    # Newton h^(-1/3) vs **(7/3)): a few ulp per step, accumulated at worst linearly, i.e. 40 steps x 4 ulp
    # of the largest value of each field (measured: 1-2 ulp after the 40 steps).
    for mine, ref in ((model.h, st.h), (model.qx, st.qx), (model.qy, st.qy), (model.infil_cum, st.infil_cum),
                      (model.hmax, st.hmax)):
        np.testing.assert_allclose(mine, ref, rtol=0, atol=40 * 4 * np.spacing(max(np.abs(ref).max(), 1e-300)))
    assert np.array_equal(np.isnan(model.tarr), np.isnan(st.tarr))
    b = model.balance()
    for k, v in totals.items():
        assert b[k] == pytest.approx(v, rel=1e-10, abs=1e-9), k
    # the case exercised what it claims
    assert (model.h == 0).any() and (model.h > 0).any()
    assert np.abs(model.qx).max() > 1e-3
    if bounds != "closed":
        assert b["outflow"] > 0
    if infil != "none":
        assert b["infiltration"] > 0
    if drainage:
        assert b["drainage"] > 0
    assert b["relative_error"] < 1e-12
    assert (model.h[phi == 0] == h0[phi == 0]).all()


def test_kernels_match_reference_float32():
    """float32 kernels follow the float64 reference to float32 round-off."""
    rng, z, h0, phi, n = _random_case(11)
    model = FloodModel(z, dx=5.0, manning=n, porosity=phi, h0=h0, boundaries="free", dtype=np.float32,
                       rain=UniformRain.constant(60.0, 1e6))
    assert model.h.dtype == np.float32 and model.qx.dtype == np.float32
    st = State(h=h0.copy(), qx=np.zeros(model.qx.shape), qy=np.zeros(model.qy.shape),
               infil_cum=np.zeros(z.shape), hmax=h0.copy(), tmax=np.zeros(z.shape), tarr=np.full(z.shape, np.nan))
    for _ in range(20):
        dt = 0.9 * model.cfl_dt()
        model.step(dt)
        ref_step(st, z, n * n, phi, dt, 5.0, 5.0, t_new=model.t, bc=(1, 1, 1, 1), rain=60.0 * MM_PER_H)
    # The kernels compute in float64 and round what they store: one float32 rounding of each depth per step
    # (relative <= 2^-24), plus the rounding of h0; accumulated at worst linearly over the 20 steps:
    # 21 x 2^-24 x the deepest cell (0.76 m) = 9.5e-7 m (measured 9.5e-8 m).
    err = np.abs(model.h - st.h).max()
    assert err <= 21 * 2.0**-24 * float(h0.max()), err


# ----------------------------------------------------------------------------
# sources and sinks with known answers
# ----------------------------------------------------------------------------


def test_scs_cn_runoff_on_a_flat_closed_basin():
    """Flat closed basin: every cell keeps its runoff, so depth = Q(P) of USDA TR-55 eq. 2-1..2-4.

    P = 100 mm, CN 80: S = 25400/80 - 254 = 63.5 mm, Ia = 0.2 S = 12.7 mm,
    Q = (P - Ia)² / (P - Ia + S) = 87.3² / 150.8 = 50.539 mm.
    """
    z = np.zeros((6, 6))
    ds = simulate(z, 7200.0, dx=10.0, rain=UniformRain([0.0, 3600.0], [100.0]),
                  infiltration=Infiltration.scs_cn(80.0), output_every_s=3600.0)
    q_mm = 87.3**2 / 150.8
    depth_mm = ds["depth"].isel(time=-1).values * 1000.0
    np.testing.assert_allclose(depth_mm, q_mm, rtol=1e-6)  # float32 output frames
    assert float(ds["volume_infiltration"][-1]) == pytest.approx((100.0 - q_mm) / 1000 * 36 * 100.0, rel=1e-9)


def test_green_ampt_ponded_infiltration_follows_the_implicit_solution():
    """Ponded Green-Ampt (Chow, Maidment & Mays 1988, eq. 4.3.6): Ks t = F - psi dtheta ln(1 + F / (psi dtheta)).

    Sandy loam from Chow et al. Table 4.3.1: Ks = 10.9 mm/h, psi = 110.1 mm,
    effective porosity 0.412 taken as the moisture deficit. 0.5 m of ponded
    water on a flat closed basin for 2 h. The model integrates f = Ks (1 +
    psi dtheta / F) explicitly with F floored at 1 mm. Two first-order errors
    of opposite sign, each bounded from the rate f(F) = Ks (1 + psi dtheta / F):
    the floor makes it reach 1 mm later than the analytic F (infinite rate at
    F = 0), a delay d = 1 mm / f(1 mm) - t_exact(1 mm) that leaves F short by
    f(F_T) d at the end; forward Euler with the step dt overshoots a decreasing
    rate, and along its modified equation F' = f (1 - dt f'/2) reaches F_T
    early by (dt/2) ln(f(1 mm) / f(F_T)), F too high by f(F_T) times that. The
    tolerance is the sum of the two magnitudes (0.043 mm, 0.07 %): measured
    60.053 mm against 60.048 mm, the net of the two (predicted +0.005 mm).
    """
    ks, psi, dth = 10.9, 110.1, 0.412
    model = FloodModel(np.zeros((4, 4)), dx=10.0, h0=0.5, infiltration=Infiltration.green_ampt(ks, psi, dth))
    model.run(7200.0)
    f_model = model.balance()["infiltration"] / (16 * 100.0) * 1000.0  # mm
    pd = psi * dth
    from scipy.optimize import brentq

    f_exact = brentq(lambda f: f - pd * math.log1p(f / pd) - ks * 2.0, 1e-6, 1000.0)
    rate = lambda f: ks / 3600.0 * (1.0 + pd / f)  # noqa: E731  (mm/s)
    dt = 7200.0 / model.n_steps  # mean step (s); the CFL step of 0.5 - 0.44 m of water
    delay = 1.0 / rate(1.0) - (1.0 - pd * math.log1p(1.0 / pd)) / (ks / 3600.0)
    early = dt / 2 * math.log(rate(1.0) / rate(f_exact))
    assert abs(f_model - f_exact) <= rate(f_exact) * (delay + early), (f_model, f_exact)
    assert model.balance()["relative_error"] < 1e-12


def test_drainage_removes_its_capacity_and_no_more():
    """Drainage 20 mm/h under 50 mm/h rain on a flat basin for 1 h leaves 30 mm; under 10 mm/h rain, none."""
    z = np.zeros((5, 5))
    ds = simulate(z, 3600.0, dx=10.0, rain=50.0, drainage_mm_h=20.0)
    np.testing.assert_allclose(ds["depth"].isel(time=-1).values, 0.030, rtol=1e-6)
    ds = simulate(z, 3600.0, dx=10.0, rain=10.0, drainage_mm_h=20.0)
    assert float(ds["depth"].isel(time=-1).max()) < 1e-12
    assert float(ds["volume_drainage"][-1]) == pytest.approx(0.010 * 25 * 100.0, rel=1e-9)


def test_linear_hydrograph_volume_is_exact():
    """A triangular hydrograph 0 -> 2 -> 0 m³/s over 600 s delivers 600 m³ (its integral), to round-off."""
    z = np.zeros((5, 5))
    q = Hydrograph(25.0, 25.0, [0.0, 200.0, 600.0], [0.0, 2.0, 0.0])
    ds = simulate(z, 900.0, dx=10.0, inflows=[q])
    assert float(ds["volume_inflow"][-1]) == pytest.approx(600.0, rel=1e-12)
    assert float(ds["volume_storage"][-1]) == pytest.approx(600.0, rel=1e-12)


def test_blocked_cells_stay_dry_and_porosity_doubles_depth():
    rng = np.random.default_rng(3)
    z = 0.05 * rng.random((12, 12))
    phi = np.ones_like(z)
    phi[4:8, 4:8] = 0.0  # a building
    ds = simulate(z, 1800.0, dx=5.0, rain=100.0, porosity=phi, output_every_s=300.0)
    assert float(np.abs(ds["depth"].values[:, 4:8, 4:8]).max()) == 0.0
    assert float(ds["max_depth"].values[4:8, 4:8].max()) == 0.0
    # the same rain volume on a half-open flat basin stands twice as deep
    z = np.zeros((6, 6))
    full = simulate(z, 1800.0, dx=5.0, rain=100.0)
    half = simulate(z, 1800.0, dx=5.0, rain=100.0, porosity=0.5)
    d_full = full["depth"].isel(time=-1).values
    d_half = half["depth"].isel(time=-1).values
    np.testing.assert_allclose(d_full, 0.05, rtol=1e-6)
    np.testing.assert_allclose(d_half, 2 * d_full, rtol=1e-6)
    assert float(half["volume_storage"][-1]) == pytest.approx(float(full["volume_storage"][-1]), rel=1e-12)


def test_arrival_time_and_time_of_max_are_consistent():
    """A point inflow on a slope: arrival <= time of max wherever the max reaches the threshold."""
    ny, nx = 20, 40
    z = np.tile(np.linspace(2.0, 0.0, nx), (ny, 1))
    q = Hydrograph(15.0, 105.0, [0.0, 600.0, 1200.0], [5.0, 5.0, 0.0])
    ds = simulate(z, 2400.0, dx=10.0, inflows=[q], manning=0.03, h_arrive=0.05, output_every_s=600.0)
    hmax = ds["max_depth"].values
    tarr = ds["arrival_time"].values
    tmax = ds["time_of_max_depth"].values
    reached = hmax >= 0.05
    assert reached.sum() > 20 and (~reached).sum() > 20
    assert np.all(np.isfinite(tarr[reached]))
    assert np.all(np.isnan(tarr[~reached]))
    assert np.all(tarr[reached] <= tmax[reached])
    assert np.all((tmax >= 0) & (tmax <= 2400.0))
    # arrival spreads downhill from the source: later further away along the source row
    row = tarr[10, 1:12]
    assert np.all(np.diff(row[np.isfinite(row)]) >= 0)
    # max depth bounds every stored frame
    assert np.all(ds["depth"].values <= hmax[None] + 1e-6)


def test_output_dataset_has_units_and_round_trips_netcdf(tmp_path):
    z = np.zeros((5, 6))
    z[:, :3] = 0.1
    ds = simulate(z, 600.0, dx=10.0, rain=30.0, output_every_s=120.0, boundaries={"east": "free"})
    for name, var in ds.data_vars.items():
        assert var.attrs.get("units"), f"{name} has no units"
    for name in ("time", "x", "y"):
        assert ds[name].attrs.get("units"), f"coordinate {name} has no units"
    assert ds.sizes["time"] == 6
    assert ds["depth"].dims == ("time", "y", "x")
    path = tmp_path / "flood.nc"
    ds.to_netcdf(path)
    with xr.open_dataset(path) as back:
        np.testing.assert_array_equal(back["depth"].values, ds["depth"].values)
        assert back["max_depth"].attrs["units"] == "m"
        assert back.attrs["theta"] == 0.7


def test_dataarray_dem_keeps_grid_and_crs():
    from affine import Affine

    from gis.raster import make_grid

    dem = make_grid(np.zeros((6, 10)), Affine(10.0, 0, 500000.0, 0, -10.0, 2500060.0), "EPSG:4547")
    ds = simulate(dem, 60.0, rain=10.0)
    assert ds.attrs["crs"] == "EPSG:4547"
    np.testing.assert_allclose(ds["x"].values, dem["x"].values)
    assert ds.attrs["transform"][:3] == (10.0, 0.0, 500000.0)


# ----------------------------------------------------------------------------
# errors: each names the field and the value
# ----------------------------------------------------------------------------

Z = np.zeros((4, 5))


@pytest.mark.parametrize(
    ("kwargs", "exc", "words"),
    [
        ({"manning": -0.01}, ValidationError, ["manning", "-0.01"]),
        ({"manning": np.full((4, 5), np.nan)}, ValidationError, ["manning", "nan"]),
        ({"manning": np.ones((3, 5))}, GridError, ["manning", "(3, 5)", "(4, 5)"]),
        ({"boundaries": "open"}, ValidationError, ["boundaries", "open"]),
        ({"boundaries": {"up": "free"}}, ValidationError, ["boundaries", "up"]),
        ({"porosity": 1.5}, ValidationError, ["porosity", "1.5"]),
        ({"porosity": -0.2}, ValidationError, ["porosity", "-0.2"]),
        ({"porosity": np.ones((4, 4))}, GridError, ["porosity", "(4, 4)"]),
        ({"h0": -1.0}, ValidationError, ["h0", "-1"]),
        ({"alpha": 0.75}, ValidationError, ["alpha", "0.75"]),
        ({"theta": 1.2}, ValidationError, ["theta", "1.2"]),
        ({"dx": 0.0}, ValidationError, ["dx", "0"]),
        ({"dx": -5.0}, ValidationError, ["dx", "-5"]),
        ({"drainage_mm_h": -3.0}, ValidationError, ["drainage_mm_h", "-3"]),
        ({"drainage_mm_h": np.ones((2, 2))}, GridError, ["drainage_mm_h", "(2, 2)"]),
        ({"dtype": np.int32}, ValidationError, ["dtype", "int32"]),
        ({"inflows": [Hydrograph(500.0, 5.0, [0, 1], [1, 1], "pipe")]}, ValidationError, ["pipe", "500", "outside"]),
        ({"water_level": WaterLevel(np.ones((2, 2)), [0, 1], [0, 0])}, GridError, ["water level", "(2, 2)"]),
        ({"rain": GriddedRain([0, 60], np.ones((1, 3, 3)))}, GridError, ["rain", "(3, 3)", "(4, 5)"]),
    ],
)
def test_bad_inputs_raise_naming_field_and_value(kwargs, exc, words):
    kw = {"dx": 10.0, **kwargs}
    with pytest.raises(exc) as info:
        FloodModel(Z, **kw)
    msg = str(info.value).lower()
    for w in words:
        assert w.lower() in msg, (w, msg)


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda: UniformRain.constant(float("nan"), 60.0), ["rain", "nan"]),
        (lambda: UniformRain.constant(-5.0, 60.0), ["rain", "-5"]),
        (lambda: UniformRain([0, 10, 5], [1, 1]), ["rain", "increasing"]),
        (lambda: UniformRain([0, 10], [1, 1]), ["rain", "2 rates"]),
        (lambda: GriddedRain([0, 10], np.full((1, 2, 2), np.nan)), ["gridded rain", "finite"]),
        (lambda: Hydrograph(0, 0, [0, 1], [1, -1], "q1"), ["q1", "discharge"]),
        (lambda: WaterLevel(np.ones((2, 2)), [0, 1], [0, np.nan], "surge"), ["surge", "finite"]),
        (lambda: Infiltration.constant(-1.0), ["infiltration", "-1"]),
        (lambda: Infiltration.green_ampt(5.0, 100.0, 1.5), ["green_ampt", "deficit"]),
        (lambda: Infiltration.scs_cn(120.0), ["scs_cn", "120"]),
    ],
)
def test_bad_forcings_raise_naming_field_and_value(make, words):
    with pytest.raises(ValidationError) as info:
        make()
    msg = str(info.value).lower()
    for w in words:
        assert w.lower() in msg, (w, msg)


def test_simulate_rejects_nan_rain_and_bad_duration():
    with pytest.raises(ValidationError, match="nan"):
        simulate(Z, 60.0, dx=10.0, rain=float("nan"))
    with pytest.raises(ValidationError, match="duration_s"):
        simulate(Z, -1.0, dx=10.0)
    with pytest.raises(GridError, match="2-D"):
        simulate(np.zeros(5), 60.0, dx=10.0)
    with pytest.raises(ValidationError, match="dx"):
        simulate(Z, 60.0)
    assert issubclass(GridError, TwinError)


def test_component_contract():
    assert "surface_water__depth" in FloodModel.input_var_names()
    assert "max_depth" in FloodModel.output_var_names()
    assert FloodModel.var_units("manning_n") == "s/m^(1/3)"
    with pytest.raises(ValidationError, match="nope"):
        FloodModel.var_units("nope")
    m = FloodModel(Z, dx=10.0, h0=0.1)
    assert m.step(5.0) == 5.0
    assert m.t == pytest.approx(5.0)
