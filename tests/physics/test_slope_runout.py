"""Landslide runout (physics/slope_runout.py, physics/_kernels/runout.py).

Validation (issue 12): runout conserves volume and never runs uphill; the
travel-angle rule (Heim 1932's Fahrböschung: the energy line z0 - L tan(alpha)
falls to the ground at L = H / tan(alpha)) gives the analytic runout on an
inclined plane meeting a flat plain. The kernel equals the numpy reference
``tests/physics/runout_reference.py`` (another algorithm for the same rules).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from physics.slope_runout import (
    COROMINAS_A,
    COROMINAS_B,
    runout,
    travel_angle_corominas,
)
from tests.physics.runout_reference import energy_line, route_reference, settle_reference
from twin.errors import ValidationError

# Volume is a sum of float64 shares (each split is exact up to one rounding):
# relative error of order n_ops * 1e-16, far below this bound.
VOLUME_RTOL = 1e-9


def _cone(n=61, cs=10.0, peak=250.0, grad=0.6):
    """A cone whose foot (r = peak / grad) lies inside the grid, on a flat 0 m plain."""
    y, x = np.mgrid[:n, :n]
    r = np.hypot(x - n // 2, y - n // 2) * cs
    return np.maximum(peak - grad * r, 0.0), cs


def _plane_and_plain(ny=31, nx=140, cs=10.0, slope_deg=35.0, toe_col=40):
    """A plane dipping toward +x at ``slope_deg`` meeting a flat 0 m plain at column ``toe_col``."""
    x = np.arange(nx) * cs
    zrow = np.where(x < toe_col * cs, (toe_col * cs - x) * math.tan(math.radians(slope_deg)), 0.0)
    return np.tile(zrow, (ny, 1)), cs


def _valley(ny=40, nx=50, cs=30.0, seed=1, noise=3.0):
    """A V valley draining toward -y and off the grid, with seeded roughness and a NaN hole.

    Roughness of a few metres makes pits (as in a real unfilled DEM) that trap material.
    """
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:ny, :nx].astype(float)
    z = 0.4 * np.abs(x - nx / 2) * cs + 0.15 * y * cs + rng.normal(0.0, noise, (ny, nx))
    z[5:8, 30:33] = np.nan
    return z, cs


def test_corominas_default_angle_is_the_power_law_of_each_slide_volume():
    # Source: the power law quoted in physics/slope_runout.py (Corominas 1996 form).
    z, cs = _cone()
    d = np.zeros_like(z)
    d[20:23, 20:23] = 1.5  # slide 1: 9 cells
    d[40, 40] = 3.0  # slide 2: 1 cell
    res = runout(z, cs, d)
    vols = np.array([9 * 1.5 * cs * cs, 3.0 * cs * cs])
    np.testing.assert_allclose(res.slide_volume_m3, vols, rtol=1e-12)
    expected = np.degrees(np.arctan(COROMINAS_A * vols**COROMINAS_B))
    np.testing.assert_allclose(res.travel_angle_deg, expected, rtol=1e-12)
    assert res.n_slides == 2
    assert travel_angle_corominas(1e6) == pytest.approx(12.81, abs=0.01)


def _settled_reference(z, d, res, tan_a, cs, dh, p, deposit_angle_deg=None):
    """Reference routing then reference settling: (deposit m, left m^3, routing left per slide, received)."""
    dep, through, left, tan_dep = route_reference(z, d, res.slide, tan_a, cs, dh, p, with_tan=True)
    if deposit_angle_deg is not None:
        tan_dep = np.full_like(z, math.tan(math.radians(deposit_angle_deg)))
    h, _, s_left, _, received = settle_reference(z - d, dep / (cs * cs), tan_dep, cs, 1e-6)
    return h, left.sum() + s_left * cs * cs, left, received | (through > 0)


def test_kernel_equals_numpy_reference_on_a_rough_valley():
    z, cs = _valley()
    d = np.zeros_like(z)
    d[30:33, 20:24] = 2.0
    d[25, 10] = 1.0
    d[36:38, 40:42] = 0.5
    res = runout(z, cs, d, travel_angle_deg=14.0, settle=False)
    assert res.n_slides == 3
    tan_a = np.full(3, math.tan(math.radians(14.0)))
    dep, through, left = route_reference(z, d, res.slide, tan_a, cs, 2.0, 4.0)
    area = cs * cs
    # Same rules, different summation order: equal to float64 round-off.
    np.testing.assert_allclose(np.nan_to_num(res.deposit) * area, dep, rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(res.through_m3, through, rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(res.slide_left_m3, left, rtol=1e-10, atol=1e-9)
    assert left.sum() > 0  # the valley drains off the grid: the exit rule is exercised
    assert np.array_equal(res.reach, through > 0)
    # settled (the default): the reference's routing then its settling, same order of topples
    st = runout(z, cs, d, travel_angle_deg=14.0)
    h, total_left, _, reach = _settled_reference(z, d, res, tan_a, cs, 2.0, 4.0)
    assert st.settle_topples > 0 and st.settle_excess_m <= 1e-6
    np.testing.assert_allclose(np.nan_to_num(st.deposit), h, rtol=1e-9, atol=1e-9)
    assert st.left_volume_m3 == pytest.approx(total_left, rel=1e-9)
    np.testing.assert_allclose(st.slide_left_m3, left, rtol=1e-10, atol=1e-9)
    assert np.array_equal(st.reach, reach)
    assert st.volume_error < VOLUME_RTOL


def test_same_result_for_any_work_split():
    z, cs = _valley(seed=3)
    d = np.zeros_like(z)
    d[30:33, 20:24] = 2.0
    d[20, 5] = 1.0
    a = runout(z, cs, d, n_chunks=1)
    b = runout(z, cs, d, n_chunks=2)
    np.testing.assert_allclose(a.deposit, b.deposit, rtol=1e-12, atol=1e-15)
    assert a.left_volume_m3 == pytest.approx(b.left_volume_m3, rel=1e-12)


def test_volume_conserved_on_a_cone_with_nothing_leaving():
    z, cs = _cone(n=101)  # foot at 417 m, energy line meets the plain 433 m out: inside 500 m
    d = np.zeros_like(z)
    d[45:56, 45:56] = 2.0  # the summit
    res = runout(z, cs, d, travel_angle_deg=30.0)
    assert res.left_volume_m3 == 0.0
    assert res.deposit_volume_m3 == pytest.approx(res.source_volume_m3, rel=VOLUME_RTOL)
    assert np.nansum(res.deposit) * cs * cs == pytest.approx(res.source_volume_m3, rel=VOLUME_RTOL)
    assert (res.deposit[np.isfinite(res.deposit)] >= 0).all()


def test_volume_conserved_when_material_leaves_the_grid():
    z, cs = _valley(noise=0.5)
    d = np.zeros_like(z)
    d[30:35, 15:35] = 3.0
    res = runout(z, cs, d, travel_angle_deg=6.0)  # gentler than the 8.5 deg valley floor
    assert res.left_volume_m3 > 0.1 * res.source_volume_m3
    assert res.volume_error < VOLUME_RTOL
    assert np.isnan(res.deposit[6, 31])  # NaN cells (outside) hold no deposit


def test_energy_line_reach_on_inclined_plane_meeting_a_flat_plain():
    # Analytic: from a source at height H above the plain and horizontal
    # distance x_toe - x0 from the toe, the energy line z0 - L tan(alpha) meets
    # the plain at L = H / tan(alpha) (the Fahrböschung definition, Heim 1932).
    # Tolerance one cell: reach is decided at cell centres.
    alpha = 20.0
    z, cs = _plane_and_plain()
    r0, c0 = 15, 5
    d = np.zeros_like(z)
    d[r0, c0] = 1.0
    res = runout(z, cs, d, travel_angle_deg=alpha)
    h = z[r0, c0]
    x_end = c0 * cs + h / math.tan(math.radians(alpha))
    cols = np.flatnonzero(res.reach[r0])
    assert abs(cols.max() * cs - x_end) <= cs
    dep_cols = np.flatnonzero(res.deposit[r0] > 0)
    assert abs(dep_cols.max() * cs - x_end) <= cs
    # the slide's reported length and drop are those of its footprint
    assert abs(res.slide_length_m[0] - (x_end - c0 * cs)) <= cs
    assert res.slide_drop_m[0] == pytest.approx(h)
    assert res.slide_cells[0] == res.reach.sum()
    assert res.volume_error < VOLUME_RTOL
    # On the plain the kinetic head falls linearly, so material deposits there
    # (most of what stays on the grid stops past the toe).
    toe = 40
    assert np.nansum(res.deposit[:, toe:]) > 0.5 * np.nansum(res.deposit)


def test_a_gentler_plain_angle_runs_further():
    z, cs = _plane_and_plain()
    d = np.zeros_like(z)
    d[15, 5] = 1.0
    far = np.flatnonzero(runout(z, cs, d, travel_angle_deg=15.0).reach[15]).max()
    near = np.flatnonzero(runout(z, cs, d, travel_angle_deg=25.0).reach[15]).max()
    assert far > near


def test_material_in_a_pit_stays_in_the_pit():
    z, cs = _cone()
    z = -z + 300.0  # an inverted cone: a bowl with a flat rim at 300 m
    d = np.zeros_like(z)
    d[20, 20] = 2.0
    res = runout(z, cs, d, travel_angle_deg=5.0)
    assert res.left_volume_m3 == 0.0
    assert res.volume_error < VOLUME_RTOL
    assert res.deposit[30, 30] > 0  # the bottom of the bowl


def _never_uphill_checks(z, cs, res, r0, c0, alpha):
    """Every reached cell at or below the source and within the energy-line length."""
    rows, cols = np.nonzero(res.reach)
    z0 = z[r0, c0]
    assert (z[rows, cols] <= z0).all()
    dist = np.hypot(rows - r0, cols - c0) * cs
    limit = (z0 - z[rows, cols]) / math.tan(math.radians(alpha)) + cs * math.sqrt(2.0)
    assert (dist <= limit).all()
    dep = np.nan_to_num(res.deposit) > 0
    assert not (dep & ~res.reach).any()


@pytest.mark.parametrize("alpha", [12.0, 25.0])
def test_never_uphill_on_the_rough_valley(alpha):
    z, cs = _valley(seed=7)
    for r0, c0 in [(35, 10), (30, 25), (38, 44)]:
        d = np.zeros_like(z)
        d[r0, c0] = 2.0
        res = runout(z, cs, d, travel_angle_deg=alpha)
        _never_uphill_checks(z, cs, res, r0, c0, alpha)
        e = energy_line(z, d > 0, math.tan(math.radians(alpha)), cs)
        assert (e[res.reach] >= z[res.reach]).all()


@pytest.fixture(scope="module")
def srtm_patch(city):
    """A real 4.5 x 4.5 km SRTM patch around Wutong Shan, warped to EPSG:4547 at 30 m."""
    from gis.raster import clip, reproject

    raw = city.raw_elevation()
    part = clip(raw, bbox=(114.18, 22.56, 114.225, 22.60))
    da = reproject(part.astype(np.float64), "EPSG:4547", resolution=30.0)
    return da.values, 30.0


def test_volume_conserved_and_never_uphill_on_real_srtm(srtm_patch):
    import xarray as xr

    from gis.terrain import slope as terrain_slope

    z, cs = srtm_patch
    assert np.isfinite(z).sum() > 10000 and np.nanmax(z) > 600  # Wutong Shan is in it
    zz = xr.DataArray(z, dims=("y", "x"), coords={"y": -np.arange(z.shape[0]) * cs,
                                                  "x": np.arange(z.shape[1]) * cs},
                      attrs={"crs": "EPSG:4547"})
    sl = terrain_slope(zz).values
    d = np.where(np.nan_to_num(sl) > 32.0, 1.5, 0.0)
    res = runout(z, cs, d)  # per-slide Corominas angles
    assert res.n_slides > 5
    assert res.volume_error < VOLUME_RTOL
    assert res.deposit_volume_m3 > 0
    # single sources on the real surface: never uphill, never past the energy line
    peaks = np.argwhere(d > 0)[:: max(1, int((d > 0).sum()) // 4)][:4]
    for r0, c0 in peaks:
        one = np.zeros_like(z)
        one[r0, c0] = 2.0
        r1 = runout(z, cs, one, travel_angle_deg=15.0)
        assert r1.volume_error < VOLUME_RTOL
        _never_uphill_checks(z, cs, r1, r0, c0, 15.0)


def test_no_sources_gives_an_empty_result():
    z, cs = _cone()
    res = runout(z, cs, np.zeros_like(z))
    assert res.n_slides == 0 and res.source_volume_m3 == 0.0
    assert not res.reach.any() and np.nansum(res.deposit) == 0.0


@pytest.mark.parametrize("kwargs, field", [
    ({"cell_size": 0.0}, "cell_size"),
    ({"travel_angle_deg": 95.0}, "travel_angle_deg"),
    ({"source_depth": -np.ones((5, 5))}, "source_depth"),
    ({"source_depth": np.ones((4, 5))}, "source_depth"),
    ({"dh_m": -1.0}, "dh_m"),
])
def test_bad_arguments_name_the_field(kwargs, field):
    args = {"elevation": np.ones((5, 5)), "cell_size": 10.0, "source_depth": np.ones((5, 5))}
    args.update(kwargs)
    with pytest.raises(ValidationError, match=field):
        runout(args.pop("elevation"), args.pop("cell_size"), args.pop("source_depth"), **args)


def test_a_source_on_nan_ground_is_refused():
    z = np.ones((5, 5))
    z[2, 2] = np.nan
    d = np.zeros((5, 5))
    d[2, 2] = 1.0
    with pytest.raises(ValidationError, match="NaN elevation"):
        runout(z, 10.0, d)


def _random_case(seed):
    """A small seeded DEM with integer heights (flats and ties), NaN cells and a few sources."""
    rng = np.random.default_rng(seed)
    ny, nx = rng.integers(3, 13, size=2)
    z = rng.integers(0, 6, size=(ny, nx)).astype(float) * rng.choice([1.0, 5.0])
    z[rng.random((ny, nx)) < 0.05] = np.nan
    d = np.where((rng.random((ny, nx)) < 0.15) & np.isfinite(z), rng.uniform(0.1, 3.0, (ny, nx)), 0.0)
    return z, d, float(rng.uniform(3.0, 40.0)), float(rng.choice([5.0, 30.0]))


@pytest.mark.parametrize("seed", range(40))
def test_random_terrains_conserve_volume_and_match_the_reference(seed):
    # Integer heights make flat moves and equal energy lines (ties) common:
    # the case where a heap order and a sort order could disagree.
    z, d, alpha, cs = _random_case(seed)
    res = runout(z, cs, d, travel_angle_deg=alpha, dh_m=1.0, exponent=2.0, settle=False)
    assert res.volume_error < VOLUME_RTOL
    tan_a = np.full(res.n_slides, math.tan(math.radians(alpha)))
    dep, through, left = route_reference(z, d, res.slide, tan_a, cs, 1.0, 2.0)
    np.testing.assert_allclose(np.nan_to_num(res.deposit) * cs * cs, dep, rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(res.slide_left_m3, left, rtol=1e-10, atol=1e-9)
    # settled, with the slides' own angle and with a stated one
    routed_top = np.nanmax(np.where(np.nan_to_num(res.deposit) > 0, z - d + res.deposit, -np.inf))
    for angle in (None, 8.0):
        st = runout(z, cs, d, travel_angle_deg=alpha, dh_m=1.0, exponent=2.0, deposit_angle_deg=angle)
        assert st.volume_error < VOLUME_RTOL
        # topples only lower their donor and raise receivers to below it: no surface rises above the highest
        surface = np.where(np.nan_to_num(st.deposit) > 0, z - d + st.deposit, -np.inf)
        assert np.nanmax(surface) <= routed_top + 1e-9
        h, total_left, _, reach = _settled_reference(z, d, res, tan_a, cs, 1.0, 2.0, angle)
        np.testing.assert_allclose(np.nan_to_num(st.deposit), h, rtol=1e-9, atol=1e-9)
        assert st.left_volume_m3 == pytest.approx(total_left, rel=1e-9, abs=1e-9)
        assert np.array_equal(st.reach, reach)
    # never above the highest source of the slide that reached it
    top = max((z[res.slide == s + 1].max() for s in range(res.n_slides)), default=-np.inf)
    assert (z[res.reach] <= top).all()


def test_given_slide_numbers_group_separate_bodies():
    z, cs = _cone()
    d = np.zeros_like(z)
    d[20, 20] = 1.0
    d[40, 40] = 2.0
    labels = np.where(d > 0, 7, 0)
    res = runout(z, cs, d, slides=labels)
    assert res.n_slides == 1
    assert res.slide_volume_m3[0] == pytest.approx(3.0 * cs * cs)
    assert res.travel_angle_deg[0] == pytest.approx(float(travel_angle_corominas(3.0 * cs * cs)))
    assert set(np.unique(res.slide)) == {0, 1}
    with pytest.raises(ValidationError, match="slides"):
        runout(z, cs, d, slides=np.where(d > 0, 0, 3))


# ------------------------------------------------------------------ settling to the deposit angle
def _octile(ny, nx, r0, c0, cs):
    """8-neighbour path length (steps of cs and cs sqrt 2) from (r0, c0) to every cell."""
    dy, dx = np.abs(np.mgrid[:ny, :nx] - np.array([r0, c0])[:, None, None])
    return (np.maximum(dy, dx) + (math.sqrt(2.0) - 1.0) * np.minimum(dy, dx)) * cs


def _max_neighbour_slope_excess(surface, holds, tan_d, cs):
    """Largest (S_c - S_n) - tan_d d over neighbour pairs whose upper cell holds deposit (m)."""
    worst = -np.inf
    ny, nx = surface.shape
    for dr, dc in [(-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1)]:
        d = cs * math.hypot(dr, dc)
        r0, r1 = max(0, -dr), min(ny, ny - dr)
        c0, c1 = max(0, -dc), min(nx, nx - dc)
        up = surface[r0:r1, c0:c1]
        nb = surface[r0 + dr:r1 + dr, c0 + dc:c1 + dc]
        ok = holds[r0:r1, c0:c1] & np.isfinite(nb)
        if ok.any():
            worst = max(worst, float(np.max((up - nb - tan_d * d)[ok])))
    return worst


@pytest.mark.parametrize("angle", [10.0, 30.0])
def test_a_single_cell_dump_on_a_flat_plane_settles_to_a_cone_of_the_deposit_angle(angle):
    # The settling kernel on its own (through runout() a source that cannot
    # move stays in its own scar): 10^5 m^3 dumped in one 10 m cell of a
    # flat plane, a 1000 m column. Settled, no neighbour pair may be steeper
    # than tan(angle) (+ the 1e-6 m tolerance), so the pile contains the
    # cone S = H - tan(angle) x (8-neighbour path length) and its peak H is
    # at most that of the steepest such cone of the same volume (found below
    # by bisection); it stands within one cell's rise (tan(angle) x cs) of
    # it, because each topple leaves its cell exactly at the angle.
    from physics._kernels.runout import settle

    n, cs, vol = 61, 10.0, 1e5
    z = np.zeros((n, n))
    h = np.zeros(n * n)
    h[30 * n + 30] = vol / (cs * cs)
    t = math.tan(math.radians(angle))
    received = np.zeros(n * n, dtype=np.uint8)
    left, topples, excess = settle(z.ravel(), n, n, h, np.full(n * n, t), cs, 1e-6, 10**8, received)
    assert left == 0.0 and topples > 0 and excess <= 1e-6
    assert abs(h.sum() * cs * cs - vol) / vol < 1e-9
    dep = h.reshape(n, n)
    assert _max_neighbour_slope_excess(z + dep, dep > 0, t, cs) <= 1e-6
    oct_ = _octile(n, n, 30, 30, cs)
    lo, hi = 0.0, 1000.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if np.maximum(mid - t * oct_, 0.0).sum() * cs * cs > vol else (mid, hi)
    peak = float(dep.max())
    assert dep[30, 30] == peak
    assert hi - t * cs <= peak <= hi + 1e-6
    # the footprint is the cone's: nothing beyond one cell past its foot
    assert (oct_[dep > 0] <= hi / t + cs * math.sqrt(2.0)).all()
    # and the same through the reference
    from tests.physics.runout_reference import settle_reference

    h0 = np.zeros((n, n))
    h0[30, 30] = vol / (cs * cs)
    ref, _, ref_left, ref_topples, _ = settle_reference(z, h0, np.full((n, n), t), cs, 1e-6)
    assert ref_topples == topples and ref_left == 0.0
    np.testing.assert_allclose(dep, ref, rtol=1e-9, atol=1e-9)


def test_a_pit_on_a_plane_fills_to_its_spill_level_and_the_rest_runs_on():
    # A plane dipping 20 deg toward +x (10 m cells) with a 5 x 3 cell pit cut
    # 15 m into it; material released upslope with a 10 deg travel angle
    # runs into the pit. Deposit angle 1 deg < 20 deg: nothing rests on the
    # plane, the pit fills and the excess runs down the plane and off the grid.
    # Expected, from the geometry and the stability rule: the fill stands
    # at most tan(1 deg) x (8-neighbour path length to a spill cell) above
    # the spill level (the lowest rim, column 33), and at least the spill
    # level less tan(1 deg) x (the pit's longest path + one diagonal step):
    # level to within the deposit angle (a 1 deg surface over the pit).
    cs, ny, nx = 10.0, 31, 80
    tan_p = math.tan(math.radians(20.0))
    z = np.tile((nx - np.arange(nx)) * cs * tan_p, (ny, 1))
    pit = np.zeros_like(z, dtype=bool)
    pit[13:18, 30:33] = True
    z[pit] -= 15.0
    spill = z[15, 33]
    assert z[pit].max() < spill < z[12:19, 29:34][~pit[12:19, 29:34]].min() + 1e-9
    capacity = (spill - z[pit]).sum() * cs * cs
    d = np.zeros_like(z)
    d[13:18, 5:15] = 4.0  # 20 000 m^3, about 2.4 times the pit's capacity
    res = runout(z, cs, d, travel_angle_deg=10.0, deposit_angle_deg=1.0)
    assert res.volume_error < VOLUME_RTOL
    assert res.settle_excess_m <= 1e-6
    t = math.tan(math.radians(1.0))
    surface = z - d + np.nan_to_num(res.deposit)
    to_spill = np.min([_octile(ny, nx, r, 33, cs) for r in range(12, 19)], axis=0)
    longest = math.hypot(4, 2) * cs + cs * math.sqrt(2.0)
    # the 1e-6 m settling tolerance adds up once per step of a chain of cells
    assert (surface[pit] <= spill + t * to_spill[pit] + 1e-6 * (to_spill[pit] / cs + 1)).all()
    assert (surface[pit] >= spill - t * longest - 1e-6 * (longest / cs + 1)).all()
    # nothing rests on the 20 deg plane but on its last column (the exit rule
    # takes the ground past the edge as the edge cell's own, so up to
    # tan(1 deg) x cs stays there) and in the source's scar (4 m deep, its
    # downslope end 0.36 m below the ground beyond: a pocket); the rest has
    # left the grid
    dep = np.nan_to_num(res.deposit)
    plane = ~pit & (d == 0)
    plane[:, -1] = False
    assert not (dep[plane] > 0).any()
    assert dep[:, -1].max() <= t * cs + 1e-6
    held = dep[pit].sum() * cs * cs
    assert held >= capacity - t * longest * pit.sum() * cs * cs
    assert res.left_volume_m3 == pytest.approx(res.source_volume_m3 - res.deposit_volume_m3, rel=1e-9)
    assert res.left_volume_m3 > 0.3 * res.source_volume_m3
    assert res.settle_left_m3 > 0  # the overflow left while settling
    # without settling the pit cells hold what reached them, piled far above the rim
    raw = runout(z, cs, d, travel_angle_deg=10.0, settle=False)
    assert (z + np.nan_to_num(raw.deposit))[pit].max() > spill + 10.0


def test_heavy_slide_on_real_srtm_settles_below_its_drop_and_source(srtm_patch):
    # The largest 8-connected body of cells steeper than 30 deg on the
    # Wutong Shan patch (real SRTM), failing 10 m deep (a heavy case: ~38 M m^3).
    # Unsettled, the routing heaps material in dead-end cells (here
    # thousands of metres: the deposit limit is what this tests). Settled
    # with the slide's own travel angle as deposit angle: no deposit thicker
    # than the slide's drop (its highest source down to the lowest cell
    # reached) and no deposit surface above the highest source cell's ground.
    import xarray as xr
    from scipy import ndimage

    from gis.terrain import slope as terrain_slope

    z, cs = srtm_patch
    zz = xr.DataArray(z, dims=("y", "x"), coords={"y": -np.arange(z.shape[0]) * cs,
                                                  "x": np.arange(z.shape[1]) * cs},
                      attrs={"crs": "EPSG:4547"})
    labels, _ = ndimage.label(np.nan_to_num(terrain_slope(zz).values) > 30.0, structure=np.ones((3, 3)))
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    d = np.where(labels == sizes.argmax(), 10.0, 0.0)
    assert (d > 0).sum() > 1000
    raw = runout(z, cs, d, settle=False)
    res = runout(z, cs, d)
    assert res.n_slides == 1 and res.volume_error < VOLUME_RTOL
    assert res.settle_excess_m <= 1e-6
    drop = res.slide_drop_m[0]
    assert np.nanmax(raw.deposit) > drop  # the unbounded pile the settling removes
    assert np.nanmax(res.deposit) < drop
    surface = z - d + np.nan_to_num(res.deposit)
    assert surface[np.nan_to_num(res.deposit) > 0].max() <= z[d > 0].max()
    # and the settled deposit obeys its angle everywhere (the slide's travel angle)
    t = math.tan(math.radians(res.travel_angle_deg[0]))
    assert _max_neighbour_slope_excess(surface, np.nan_to_num(res.deposit) > 0, t, cs) <= 1e-6 + 1e-9


def test_settling_off_keeps_the_routed_deposit_and_bad_angles_are_refused():
    z, cs = _valley(noise=0.5)
    d = np.zeros_like(z)
    d[30:35, 15:35] = 3.0
    off = runout(z, cs, d, travel_angle_deg=6.0, settle=False)
    assert off.settle_topples == 0 and off.settle_left_m3 == 0.0
    on = runout(z, cs, d, travel_angle_deg=6.0)
    assert on.volume_error < VOLUME_RTOL and on.settle_topples > 0
    assert on.left_volume_m3 == pytest.approx(off.left_volume_m3 + on.settle_left_m3, rel=1e-12)
    for bad in (0.0, 90.0, float("nan")):
        with pytest.raises(ValidationError, match="deposit_angle_deg"):
            runout(z, cs, d, deposit_angle_deg=bad)
