"""Validation of the local-inertial flood model against analytic solutions, invariants and Landlab.

Sources of the expected numbers (papers, textbooks, Landlab's own test) are named in each
test. Every test prints what it measured
(run pytest with -s to see the figures).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from physics.flood import FloodModel, Infiltration, simulate
from physics.forcing import GriddedRain, Hydrograph, UniformRain, WaterLevel

G = 9.80665


def _bumpy(ny: int, nx: int, dx: float, seed: int = 0, relief: float = 1.0) -> np.ndarray:
    """A smooth random bed with pits and hills (m)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:ny, 0:nx] * dx
    z = np.zeros((ny, nx))
    for _ in range(6):
        kx, ky, ph = rng.uniform(0.5, 3.0), rng.uniform(0.5, 3.0), rng.uniform(0, 2 * np.pi)
        z += np.sin(kx * xx / (nx * dx) * 2 * np.pi + ph) * np.cos(ky * yy / (ny * dx) * 2 * np.pi)
    return relief * z / np.abs(z).max()


# ----------------------------------------------------------------------------
# 1. volume balance: a closed basin with rain keeps its volume to round-off (a flux-form
#    update conserves volume to round-off: LeVeque 2002, Finite Volume Methods for
#    Hyperbolic Problems, ch. 4)
# ----------------------------------------------------------------------------

NY, NX, DX = 30, 40, 10.0
STORM = UniformRain([0.0, 600.0, 1200.0, 2400.0], [40.0, 120.0, 20.0])  # 34.0 mm in 40 min


def _balance_case(case: str) -> dict:
    z = _bumpy(NY, NX, DX, seed=1) + 0.002 * np.arange(NX) * DX  # bumps on a gentle tilt to the east
    kw: dict = {"manning": 0.03, "rain": STORM}
    if case == "green_ampt":
        kw["infiltration"] = Infiltration.green_ampt(10.9, 110.1, 0.412)  # sandy loam, Chow et al. Table 4.3.1
    elif case == "scs_cn":
        kw["infiltration"] = Infiltration.scs_cn(np.where(np.arange(NX) < NX // 2, 75.0, 92.0) * np.ones((NY, 1)))
    elif case == "drainage":
        kw["drainage_mm_h"] = np.linspace(5.0, 40.0, NX) * np.ones((NY, 1))
    elif case == "inflow":
        kw["inflows"] = [Hydrograph(55.0, 155.0, [0.0, 300.0, 900.0, 1800.0], [0.0, 3.0, 1.0, 0.0], "culvert")]
    elif case == "free":
        kw["boundaries"] = {"east": "free", "south": "free"}
    elif case == "tide":
        mask = np.zeros((NY, NX), dtype=np.uint8)
        mask[:, -3:] = 1  # sea cells on the east edge
        z[:, -3:] = -1.0
        kw["water_level"] = WaterLevel(mask, [0.0, 1200.0, 2400.0, 3600.0], [0.0, 1.2, 0.3, 0.8], "tide")
    elif case == "gridded":
        rng = np.random.default_rng(5)
        kw["rain"] = GriddedRain([0.0, 900.0, 2400.0], rng.uniform(0.0, 150.0, (2, NY, NX)))
        kw["porosity"] = rng.uniform(0.4, 1.0, (NY, NX))
        kw["porosity"][10:14, 10:16] = 0.0
    model = FloodModel(z, dx=DX, **kw)
    ds = model.run(3600.0, output_every_s=300.0, store_fields=False)
    return {"ds": ds, "model": model}


@pytest.mark.parametrize("case", ["closed", "green_ampt", "scs_cn", "drainage", "inflow", "free", "tide", "gridded"])
def test_volume_balance_closes_to_round_off(case):
    """storage change = rain - infiltration - drainage + inflow - outflow + level exchange, at every output."""
    out = _balance_case(case)
    ds, model = out["ds"], out["model"]
    rel = ds["volume_relative_error"].values
    print(f"{case}: max relative volume error {rel.max():.2e} over {model.n_steps} steps")
    # Round-off of the flux-form update: each step rounds every stored depth (relative <= eps), so the
    # storage drifts from the books by at most eps per step, accumulated linearly: n_steps x eps
    # (1.5e-13 to 5.5e-13 over these runs; measured 2e-16 to 2.4e-15).
    assert np.all(rel <= model.n_steps * np.finfo(np.float64).eps), rel
    # independent checks that each term is the one prescribed (not only that the books close)
    b = model.balance()
    open_area = float(np.count_nonzero(model.phi > 0)) * model.cell_area
    if case != "gridded":
        assert b["rain"] == pytest.approx(STORM.total_mm / 1000.0 * open_area, rel=1e-12)
    if case == "inflow":
        assert b["inflow"] == pytest.approx(0.5 * 300 * 3 + 0.5 * 600 * 4 + 0.5 * 900 * 1, rel=1e-12)  # 2850 m³
    if case in ("green_ampt", "scs_cn"):
        assert b["infiltration"] > 0.1 * b["rain"]
    if case == "drainage":
        assert b["drainage"] > 0.1 * b["rain"]
    if case == "free":
        assert b["outflow"] > 0.05 * b["rain"]
    if case == "tide":
        assert b["level_exchange"] != 0.0
        lvl = model.water_level.at(model.t)
        np.testing.assert_allclose(model.h[:, -3:], lvl + 1.0, atol=1e-12)
    if case == "gridded":
        assert float(np.abs(model.h[10:14, 10:16]).max()) == 0.0


# ----------------------------------------------------------------------------
# 2. lake at rest (well-balancedness, Audusse et al. 2004 SIAM J. Sci. Comput. 25:2050)
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("porosity", [False, True])
def test_lake_at_rest_over_bumpy_bed_with_islands(porosity):
    ny, nx, dx = 40, 50, 5.0
    z = _bumpy(ny, nx, dx, seed=7, relief=1.5)
    eta = 0.6
    h0 = np.maximum(eta - z, 0.0)
    assert 0.1 < (h0 == 0).mean() < 0.5  # dry islands
    phi = np.random.default_rng(2).uniform(0.3, 1.0, (ny, nx)) if porosity else None
    model = FloodModel(z, dx=dx, manning=0.0 if not porosity else 0.02, h0=h0, porosity=phi, theta=0.7)
    for _ in range(1000):
        model.step(model.cfl_dt())
    qmax = max(np.abs(model.qx).max(), np.abs(model.qy).max())
    dh = np.abs(model.h - h0).max()
    print(f"lake at rest (porosity={porosity}): {model.n_steps} steps, {model.t:.0f} s, "
          f"max|q| {qmax:.1e} m2/s, max|dh| {dh:.1e} m")
    # The still state is exact in exact arithmetic (zero surface gradient between wet cells, h_f = 0
    # at wet-dry faces); round-off moves each depth by about an ulp of the deepest water a step (its own
    # rounding, and fluxes moving less than an ulp: q dt/dx ~ 1e-16 m), and a surface off by those ulps
    # drives at most g h dt (2 ulp)/dx of discharge a step. A stable step keeps it there: bounds linear in
    # the steps. With the porosity-blind CFL step this grew ~2x per step (found by this test's twin in
    # test_flood_model).
    ulp, dt = float(np.spacing(h0.max())), model.t / model.n_steps
    assert qmax <= model.n_steps * G * h0.max() * dt * 2 * ulp / dx  # 2.3e-12 m2/s
    assert dh <= 2 * model.n_steps * ulp  # 8.9e-13 m
    assert model.n_steps == 1000


# ----------------------------------------------------------------------------
# 3. analytic front on a flat plane (Hunter et al. 2005, Adv. Water Resour. 28:975; Bates et al. 2010
#    eq. 13; de Almeida et al. 2012; Landlab's test_deAlm_analytical)
# ----------------------------------------------------------------------------


def test_flat_plane_front_matches_analytic_solution():
    """h(x, t) = [(7/3) (C - n² u² (x - u t))]^(3/7), C = 0, for constant velocity u.

    n = 0.01, u = 0.4 m/s as in Landlab's test_deAlm_analytical (which uses
    25 m cells and asserts only decimal=1, i.e. |error| < 0.15 m). Here 5 m
    cells, t = 500 s, and the boundary depth h(0, t) = [(7/3) n² u³ t]^(3/7)
    imposed by a WaterLevel on the first column.
    """
    n, u, T, dx = 0.01, 0.4, 500.0, 5.0
    nx, ny = 60, 3
    ts = np.linspace(0.0, T, 5001)
    mask = np.zeros((ny, nx), dtype=np.uint8)
    mask[:, 0] = 1
    wl = WaterLevel(mask, ts, ((7 / 3) * n**2 * u**3 * ts) ** (3 / 7), "h(0, t)")
    model = FloodModel(np.zeros((ny, nx)), dx=dx, manning=n, water_level=wl)
    model.run(T)
    x = np.arange(nx) * dx  # distance from the imposed column
    arg = (7 / 3) * n**2 * u**2 * (u * T - x)
    ha = np.where(arg > 0, np.abs(arg), 0.0) ** (3 / 7)
    h = model.h[1]
    behind = x < u * T - 3 * dx
    err = h - ha
    rms = float(np.sqrt(np.mean(err[behind] ** 2)))
    emax = float(np.abs(err).max())
    front = float(x[np.nonzero(h >= 0.01)[0].max()])
    front_a = float(x[np.nonzero(ha >= 0.01)[0].max()])
    v1 = model.qx[1, 1] / (0.5 * (h[0] + h[1]))
    print(f"flat-plane front: h(0) {ha[0]:.4f} m, RMS {rms * 1000:.1f} mm behind the front, max {emax * 1000:.1f} mm, "
          f"1-cm front at {front:.0f} m vs {front_a:.0f} m, u at first face {v1:.3f} m/s")
    # Measured: RMS 4.8 mm (4 % of h(0) = 0.123 m), max 31 mm at the front cells, where the
    # analytic h^(3/7) profile has an infinite slope the scheme's diffusion rounds off.
    assert rms <= 0.008
    assert emax <= 0.05
    assert abs(front - front_a) <= 3 * dx
    assert 0.3 <= v1 <= 0.5  # the imposed depth drives u ~ 0.4 m/s into the plane


# ----------------------------------------------------------------------------
# 4. Ritter's dam break through the local-inertial equations (Ritter 1892; SWASHES, Delestre et al. 2013,
#    IJNMF 72:269, §4.1.1; the Riemann problem of the local-inertial system solved as in LeVeque 2002,
#    Finite Volume Methods for Hyperbolic Problems, ch. 13)
# ----------------------------------------------------------------------------


def _li_riemann(pressure: float, h0: float = 1.0) -> tuple[float, float]:
    """Plateau depth h* and front speed s of the local-inertial dam break onto a dry bed.

    Frictionless on a flat bed the local-inertial equations (Bates et al. 2010, advection dropped) are
    h_t + q_x = 0, q_t + (g h²/2)_x = 0: a hyperbolic system with speeds ±sqrt(g h), not the shallow-water
    equations. Their dam break is a rarefaction running upstream, across which the Riemann invariant
    q + (2/3) sqrt(g) h^(3/2) keeps its still-water value (2/3) sqrt(g) h0^(3/2) (the fan is h = xi²/g,
    xi = (x - x0)/t, from -sqrt(g h0) to -sqrt(g h*)), then a plateau (h*, q*) ending in a bore into the
    dry bed, with the Rankine-Hugoniot conditions s h* = q* and s q* = P(h*). The exact pressure jump is
    P = g h*²/2. The scheme's discrete pressure term g h_f (eta_R - eta_L)/dx, with h_f = max(h_L, h_R),
    sums over a monotone bore to between g h*²/2 (bore spread over many cells) and g h*² (one face):
    ``pressure`` = P / (g h*²) in [1/2, 1] spans what the scheme can converge to. Then
    s = sqrt(pressure g h*) and (sqrt(pressure) + 2/3) h*^(3/2) = (2/3) h0^(3/2).
    """
    hs = ((2 / 3) / (math.sqrt(pressure) + 2 / 3)) ** (2 / 3) * h0
    return hs, math.sqrt(pressure * G * hs)


def _sign_changes(d: np.ndarray, tiny: float = 1e-12) -> int:
    s = np.sign(d[np.abs(d) > tiny])
    return int(np.count_nonzero(np.diff(s)))


def test_ritter_dam_break_follows_the_local_inertial_riemann_solution():
    """Dry-bed dam break, h0 = 1 m, frictionless, 1-D channel, t = 100 s, at 2 m and 1 m cells.

    Ritter's shallow-water front runs at 2 sqrt(g h0) (626 m at 100 s). The local-inertial equations
    drop advection, which is what carries that front: their own exact solution (see ``_li_riemann``)
    is a bore at 0.278-0.368 of Ritter's speed behind a plateau 0.543-0.618 m deep (Ritter: 4/9 m at
    the dam), the range spanning the two limits of the scheme's discrete bore. This is the lag de
    Almeida & Bates (2013, WRR 49:4833, "Applicability of the local inertial approximation of the
    shallow water equations to flood modeling") warn of for supercritical flow (the Ritter flow is
    supercritical downstream of the dam); the finite-volume scheme is held to Ritter's front in
    test_flood_fv*.py. Here the local-inertial scheme is held to the solution of its own equations:
    the fan, the Riemann invariant, the plateau and the bore speed within those limits.
    """
    c0 = math.sqrt(G * 1.0)
    T, x0 = 100.0, 1000.0
    h_lo, s_lo = _li_riemann(0.5)  # conservative pressure: h* 0.618 m, bore 1.74 m/s
    h_hi, s_hi = _li_riemann(1.0)  # one-face bore: h* 0.543 m, bore 2.31 m/s
    res = {}
    for dx in (2.0, 1.0):
        nx = int(2000.0 / dx)
        x = (np.arange(nx) + 0.5) * dx
        h0 = np.tile(np.where(x < x0, 1.0, 0.0), (3, 1))
        model = FloodModel(np.zeros((3, nx)), dx=dx, manning=0.0, h0=h0)
        model.run(T)
        h = model.h[1]
        xi = (x - x0) / T
        # the fan of either limit, 5 % of c0 inside its ends (the kinks a first-order scheme rounds off)
        fan = (xi > -0.95 * c0) & (xi < -math.sqrt(G * h_lo) - 0.05 * c0)
        front = float(x[np.nonzero(h > 1e-3)[0].max()] - x0)
        plateau = (xi > -math.sqrt(G * h_hi) + 0.05 * c0) & (x - x0 < 0.9 * front)
        h_star = float(h[plateau].mean())
        q_star = float(np.interp(x0, np.arange(nx + 1) * dx, model.qx[1]))
        res[dx] = {
            "front_over_ritter": front / (2 * c0 * T),
            "fan_edge": float(x[np.nonzero(h < 0.99)[0].min()] - x0),
            "rms_fan_vs_li": float(np.sqrt(np.mean((h - xi**2 / G)[fan] ** 2))),
            "h_star": h_star, "q_star": q_star,
            "plateau_spread": float(h[plateau].max() - h[plateau].min()),
            "invariant": (q_star + (2 / 3) * math.sqrt(G) * h_star**1.5) / ((2 / 3) * math.sqrt(G)),
            # the bore where it crosses half the plateau depth (the front, h > 1 mm, leads it by its smear)
            "bore_speed_mass": q_star / h_star, "bore_speed": float(x[np.nonzero(h >= h_star / 2)[0].max()] - x0) / T,
            "rise": float(np.diff(h)[np.diff(h) > 0].sum()),  # total variation = 1 m + 2 x rise
            "sign_changes": _sign_changes(np.diff(h)),
            "mass": model.balance()["relative_error"],
        }
    print("Ritter through local inertial:", json.dumps(res), f"limits h* {h_hi:.3f}-{h_lo:.3f} m, bore "
          f"{s_lo:.2f}-{s_hi:.2f} m/s ({s_lo / (2 * c0):.3f}-{s_hi / (2 * c0):.3f} of Ritter's)")
    r, r1 = res[2.0], res[1.0]
    for q in (r, r1):
        # plateau and bore between the two limits of the discrete bore (a plateau mean: no grid error)
        assert h_hi <= q["h_star"] <= h_lo
        # the bore's half-depth crossing is found to within a cell (2 m at most, over 100 s)
        assert s_lo - 2.0 / T <= q["bore_speed"] <= s_hi + 2.0 / T
        assert q["front_over_ritter"] < 0.4  # far behind Ritter's front: the stated local-inertial lag
        # mass across the bore (Rankine-Hugoniot s h* = q*), exact for the flux-form update, against the
        # speed of the half-depth crossing, found to within a cell
        assert abs(q["bore_speed_mass"] - q["bore_speed"]) <= 2.0 / T
        # the Riemann invariant across the fan equals its still-water value; a first-order scheme carries
        # it to O(dx/(c0 T)) = 0.6 % at 2 m cells: 1 %
        assert abs(q["invariant"] - 1.0) <= 0.01
        assert q["mass"] < 1e-12
        # no spurious oscillation: the exact solution is monotone (total variation h0 = 1 m); the scheme's
        # profile may rise once, along the plateau towards the bore (fall, rise, fall: two sign changes)
        assert q["sign_changes"] <= 2
    # the fan: h = xi²/g. A first-order scheme rounds the fan's kinks over a width ~ sqrt(c0 dx T)
    # (25 m at dx = 2 m), so the error is O(dx^(1/2)) in amplitude over a width O(dx^(1/2)): RMS
    # O(dx^(3/4)). Assert at least order 1/2 between 2 m and 1 m cells, and the size of the rounding:
    # slope jump 2 c0/(g T) = 0.0064 at the upstream kink times the rounding width 25 m = 0.16 m at the
    # kink itself, decaying over the width; over the 67 m fan, an RMS below 0.04 m.
    assert r1["rms_fan_vs_li"] <= r["rms_fan_vs_li"] / math.sqrt(2)
    assert r["rms_fan_vs_li"] <= 0.04
    # the upstream edge of the fan, -sqrt(g h0) t, a characteristic shared with Ritter's solution,
    # found (h < 0.99) within the rounding width sqrt(c0 dx T) = 25 m = 8 % of c0 T: 10 %
    assert abs(r["fan_edge"] / (-c0 * T) - 1) <= 0.10
    # and that rise is the scheme's (the exact plateau is flat): it shrinks as the cells are halved
    assert r1["rise"] < r["rise"]
    # grid-converged: the bore position moves by less than 3 cells (6 m) when the cells are halved
    assert abs(r1["front_over_ritter"] - r["front_over_ritter"]) * 2 * c0 * T <= 3 * 2.0


# ----------------------------------------------------------------------------
# 5. tilted plane reaches steady outflow q = i L (kinematic wave, e.g. Chow et al. 1988 §9.6)
# ----------------------------------------------------------------------------


def test_tilted_plane_reaches_steady_outflow_i_times_L():
    i_mm, dx, nx, ny, slope, n = 50.0, 10.0, 50, 3, 0.01, 0.03
    length = nx * dx
    x = (np.arange(nx) + 0.5) * dx
    z = np.tile((length - x) * slope, (ny, 1))
    ds = simulate(z, 3 * 3600.0, dx=dx, rain=UniformRain.constant(i_mm, 1e6), manning=n,
                  boundaries={"east": "free"}, boundary_slope=slope, output_every_s=600.0)
    i = i_mm / 3.6e6
    q = np.diff(ds["volume_outflow"].values) / np.diff(ds["time"].values) / (ny * dx)  # m²/s over 10 min
    ratio = q / (i * length)
    # kinematic equilibrium time t_e = (n L / (sqrt(S) i^(2/3)))^(3/5) = 1770 s (Chow et al. eq. 9.6.9)
    h = ds["depth"].isel(time=-1).values[1]
    h_kin = (i * x * n / math.sqrt(slope)) ** 0.6  # steady kinematic depth profile
    prof = np.abs(h / h_kin - 1)[5:]
    print(f"tilted plane: outflow / (i L) every 10 min {np.round(ratio, 4).tolist()}; "
          f"depth vs kinematic profile max {prof.max():.3f} (cells 5+), outlet depth {h[-1] * 1000:.1f} mm")
    assert np.all(np.abs(ratio[-6:] - 1) <= 0.01)  # the last hour: steady within 1 %
    assert abs(ratio[-1] - 1) <= 1e-3
    # The kinematic wave neglects the water-surface gradient the local-inertial scheme keeps;
    # measured 5.6 % at most away from the divide, 0.7 % near the outlet.
    assert prof.max() <= 0.08
    # no odd-even checkerboard (the |q_t| friction linearisation left every other cell ~dry here)
    assert np.all(np.diff(h[:-1]) > 0)  # the outlet cell drains to the ghost cell and stands lower
    assert float(ds["volume_relative_error"].max()) <= 1e-12


# ----------------------------------------------------------------------------
# 6. side by side with Landlab OverlandFlow (Adams et al. 2017, GMD 10:1645; de Almeida et al. 2012)
# ----------------------------------------------------------------------------

_LANDLAB_RUN = r"""
import json, sys
import numpy as np
from landlab import RasterModelGrid
from landlab.components import OverlandFlow
a = json.loads(sys.argv[1])
z = np.load(a["z"])
grid = RasterModelGrid(z.shape, xy_spacing=a["dx"])
grid.add_field("topographic__elevation", z.ravel().copy(), at="node")
grid.add_zeros("surface_water__depth", at="node")
grid.set_closed_boundaries_at_grid_edges(True, True, True, True)
of = OverlandFlow(grid, mannings_n=a["n"], theta=a["theta"], alpha=0.7,
                  rainfall_intensity=a["rain_mm_h"] / 3.6e6)
t = 0.0
while t < a["T"]:
    t += of.overland_flow(min(of.calc_time_step(), a["dt_max"], a["T"] - t))
np.save(a["out"], grid.at_node["surface_water__depth"].reshape(z.shape))
"""


def test_side_by_side_with_landlab_overlandflow(tmp_path):
    """Same 100 x 100 node grid at 10 m (Landlab's closed perimeter = our 98 x 98 closed grid), tilted
    bumpy bed, 50 mm/h for 30 min, n = 0.03, theta = 0.8, alpha = 0.7, both from 1e-5 m of water.

    Landlab is a dev/bench dependency (pip install landlab requireit==0.8.0); it runs in a
    subprocess with OMP_NUM_THREADS=1 (its OpenMP loops spin badly on a loaded 2-core machine).
    """
    # landlab is in the dev extra: CI installs it, so the comparison always runs there.
    n_nodes, dx, n, theta, rain_mm_h, T = 100, 10.0, 0.03, 0.8, 50.0, 1800.0
    yy, xx = np.mgrid[0:n_nodes, 0:n_nodes] * dx  # Landlab nodes, row 0 = south
    z = 0.005 * xx + 0.3 * np.sin(xx / 70.0) * np.cos(yy / 90.0) + 0.1 * np.sin(yy / 37.0 + 1.0)
    np.save(tmp_path / "z.npy", z)
    args = {"z": str(tmp_path / "z.npy"), "out": str(tmp_path / "h.npy"), "dx": dx, "n": n, "theta": theta,
            "rain_mm_h": rain_mm_h, "T": T, "dt_max": 30.0}
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-c", _LANDLAB_RUN, json.dumps(args)], check=True, env=env, timeout=300)
    h_ll = np.load(tmp_path / "h.npy")[1:-1, 1:-1][::-1]  # core nodes, flipped north-up
    model = FloodModel(z[1:-1, 1:-1][::-1], dx=dx, manning=n, theta=theta, h0=1e-5,
                       rain=UniformRain.constant(rain_mm_h, T))
    model.run(T)
    d = model.h - h_ll
    rms = float(np.sqrt(np.mean(d**2)))
    deep = (model.h > 0.05) | (h_ll > 0.05)
    rms_deep = float(np.sqrt(np.mean(d[deep] ** 2)))
    print(f"Landlab side by side: mean depth ours {model.h.mean() * 1000:.3f} mm, Landlab {h_ll.mean() * 1000:.3f} mm; "
          f"RMS diff {rms * 1000:.2f} mm, max {np.abs(d).max() * 1000:.2f} mm, in {deep.sum()} cells deeper "
          f"than 5 cm RMS {rms_deep * 1000:.2f} mm; max depth {model.h.max():.3f} vs {h_ll.max():.3f} m")
    # Same rain volume: mean depths agree (Landlab conserves mass except where it goes negative).
    assert model.h.mean() == pytest.approx(h_ll.mean(), rel=1e-3)
    # Measured RMS 1.1 mm (4 % of the 25 mm mean), max 8.9 mm, 2.6 mm RMS where deeper than 5 cm.
    # The schemes differ in friction (implicit here, |q_t| in Landlab), the time step (sqrt(theta)
    # factor here), wall treatment in the q-centred average and the donor limiter; bounds at ~2x.
    assert rms <= 0.0025
    assert float(np.abs(d).max()) <= 0.02
    assert rms_deep <= 0.005
    assert deep.sum() > 500


# ----------------------------------------------------------------------------
# 7. float32 against float64
# ----------------------------------------------------------------------------


def test_float32_run_stays_close_to_float64():
    z = _bumpy(60, 60, 10.0, seed=3) + 0.003 * np.arange(60) * 10.0
    kw = {"dx": 10.0, "manning": 0.03, "rain": STORM, "boundaries": {"east": "free"}}
    ds64 = simulate(z, 3600.0, output_every_s=1800.0, **kw)
    ds32 = simulate(z, 3600.0, output_every_s=1800.0, dtype=np.float32, **kw)
    h64 = ds64["depth"].isel(time=-1).values.astype(np.float64)
    h32 = ds32["depth"].isel(time=-1).values.astype(np.float64)
    d = h32 - h64
    rms, dmax = float(np.sqrt(np.mean(d**2))), float(np.abs(d).max())
    err32 = float(ds32["volume_relative_error"].max())
    err64 = float(ds64["volume_relative_error"].max())
    print(f"float32 vs float64: depth RMS diff {rms * 1e6:.3f} um, max {dmax * 1e6:.3f} um "
          f"(mean depth {h64.mean() * 1000:.1f} mm, max {h64.max():.3f} m); relative volume error float32 "
          f"{err32:.1e}, float64 {err64:.1e}")
    assert ds32.attrs["dtype"] == "float32"
    # The kernels compute in float64 registers (dt, dx are Python floats) and round only what they
    # store: one round-to-nearest of each depth per step, relative error uniform in +-u, u = 2^-24
    # (standard deviation u/sqrt(3)). Unbiased and independent, n steps of them add up to a standard
    # deviation sqrt(n/3) u; the bounds are three of those, sqrt(3 n) u, times the depth concerned
    # (the scheme's diffusion damps the walk further). n = 1044 steps: sqrt(3 n) u = 3.3e-6.
    n = int(ds32.attrs["steps"])
    walk = math.sqrt(3 * n) * 2.0**-24
    assert rms <= walk * float(np.sqrt(np.mean(h64**2)))  # 2.0e-7 m (measured 1.6e-8 m)
    assert dmax <= walk * float(h64.max())  # 1.9e-6 m (measured 1.3e-7 m)
    assert err32 <= walk  # the storage: the same walk, relative (measured 1.2e-7)
    assert err64 <= int(ds64.attrs["steps"]) * np.finfo(np.float64).eps  # as in the balance test
    # the maximum depth is a maximum over the stored depths: the same walk (was rel=0.02; measured 1e-7)
    assert float(ds32["max_depth"].max()) == pytest.approx(float(ds64["max_depth"].max()), rel=walk)
