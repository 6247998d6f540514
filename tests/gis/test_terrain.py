"""Tests for gis.terrain and its numba kernels (gis._kernels.terrain).

Numba results are cross-checked against the small pure-numpy references
below on random surfaces; analytic cases (planes, a bowl) check the numbers.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import xarray as xr

from gis import terrain
from gis._kernels import terrain as K
from twin.errors import GridError, ValidationError

CODES = np.array([1, 2, 4, 8, 16, 32, 64, 128])
DI = np.array([0, 1, 1, 1, 0, -1, -1, -1])
DJ = np.array([1, 1, 0, -1, -1, -1, 0, 1])


# --------------------------------------------------------------------------
# Pure-numpy references
# --------------------------------------------------------------------------
def ref_slope_aspect(z, dx, dy):
    """Horn (1981) with edge replication (np.pad mode='edge'); no nodata."""
    zp = np.pad(z, 1, mode="edge")
    a, b, c = zp[:-2, :-2], zp[:-2, 1:-1], zp[:-2, 2:]
    d, f = zp[1:-1, :-2], zp[1:-1, 2:]
    g, h, k = zp[2:, :-2], zp[2:, 1:-1], zp[2:, 2:]
    p = ((c + 2 * f + k) - (a + 2 * d + g)) / (8 * dx)
    q = ((a + 2 * b + c) - (g + 2 * h + k)) / (8 * dy)
    slope = np.degrees(np.arctan(np.hypot(p, q)))
    aspect = np.degrees(np.arctan2(-p, -q)) % 360.0
    aspect[(p == 0) & (q == 0)] = -1.0
    return slope, aspect


def ref_flowdir(z, dx, dy):
    """D8 by stacking the 8 distance-weighted drops; out-of-grid = +inf height."""
    ny, nx = z.shape
    zp = np.pad(z, 1, mode="constant", constant_values=np.inf)
    drops = np.empty((8, ny, nx))
    for m in range(8):
        dist = dx if DI[m] == 0 else dy if DJ[m] == 0 else math.hypot(dx, dy)
        zn = zp[1 + DI[m] : 1 + DI[m] + ny, 1 + DJ[m] : 1 + DJ[m] + nx]
        drops[m] = (z - zn) / dist
    best = drops.argmax(axis=0)  # first maximum, same tie rule as the kernel
    out = CODES[best].astype(np.uint8)
    out[drops.max(axis=0) <= 0] = 0
    return out


def ref_accumulation(fdir, weights=None):
    """Walk every cell's path downstream, adding its weight to each visited cell."""
    ny, nx = fdir.shape
    w = np.ones((ny, nx)) if weights is None else weights
    acc = np.zeros((ny, nx))
    for i in range(ny):
        for j in range(nx):
            ci, cj = i, j
            while True:
                acc[ci, cj] += w[i, j]
                code = fdir[ci, cj]
                if code == 0:
                    break
                m = int(np.flatnonzero(CODES == code)[0])
                ci, cj = ci + DI[m], cj + DJ[m]
    return acc


def ref_fill_flat(z):
    """Minimal flat fill by iteration (Planchon & Darboux 2001 idea, no epsilon).

    W starts at +inf inside and z on the edge; repeat W = max(z, min over
    8-neighbours of W) until nothing changes.
    """
    w = np.full_like(z, np.inf)
    w[0, :], w[-1, :], w[:, 0], w[:, -1] = z[0, :], z[-1, :], z[:, 0], z[:, -1]
    while True:
        wp = np.pad(w, 1, mode="constant", constant_values=np.inf)
        ny, nx = z.shape
        nmin = np.min(
            [wp[1 + DI[m] : 1 + DI[m] + ny, 1 + DJ[m] : 1 + DJ[m] + nx] for m in range(8)], axis=0
        )
        new = np.maximum(z, nmin)
        new[0, :], new[-1, :], new[:, 0], new[:, -1] = z[0, :], z[-1, :], z[:, 0], z[:, -1]
        new = np.minimum(w, new)
        if np.array_equal(new, w):
            return w
        w = new


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------
def grid(z, dx=30.0, dy=None, crs="EPSG:4547", x0=500000.0, y0=2500000.0, **attrs):
    """A north-up DataArray in the project's raster convention."""
    dy = dx if dy is None else dy
    ny, nx = z.shape
    xs = x0 + dx * (np.arange(nx) + 0.5)
    ys = y0 - dy * (np.arange(ny) + 0.5)
    base = {"crs": crs, "transform": (dx, 0.0, x0, 0.0, -dy, y0), "units": "m"}
    base.update(attrs)
    return xr.DataArray(z, dims=("y", "x"), coords={"y": ys, "x": xs}, attrs=base)


def plane(ny, nx, dx, dy, grade, uphill_bearing):
    """z = grade * (east * sin(b) + north * cos(b)): rises towards bearing b."""
    b = math.radians(uphill_bearing)
    east = dx * np.arange(nx)[None, :]
    north = -dy * np.arange(ny)[:, None]
    return grade * (east * math.sin(b) + north * math.cos(b))


def random_dem(seed, ny=40, nx=30):
    rng = np.random.default_rng(seed)
    base = np.cumsum(rng.normal(size=(ny, nx)), axis=0) + np.cumsum(
        rng.normal(size=(ny, nx)), axis=1
    )
    return 50.0 + 3.0 * base + rng.random((ny, nx))


def outlet_cells(z, sea=None):
    """Edges, cells next to nodata, and sea cells (the seeds of priority-flood)."""
    ny, nx = z.shape
    nan = np.isnan(z)
    nanp = np.pad(nan, 1, constant_values=False)
    near = np.zeros_like(nan)
    for m in range(8):
        near |= nanp[1 + DI[m] : 1 + DI[m] + ny, 1 + DJ[m] : 1 + DJ[m] + nx]
    out = near & ~nan
    out[0, :] = out[-1, :] = out[:, 0] = out[:, -1] = True
    out &= ~nan
    if sea is not None:
        out |= sea & ~nan
    return out


# --------------------------------------------------------------------------
# Slope and aspect
# --------------------------------------------------------------------------
@pytest.mark.parametrize("bearing", [0.0, 90.0, 180.0, 270.0, 30.0, 135.0, 315.0])
def test_plane_slope_and_aspect(bearing):
    # A 1:10 plane: slope = atan(0.1) = 5.7106 deg everywhere; it faces
    # (aspect, downslope) the bearing opposite to its uphill direction.
    dx, dy = 30.0, 20.0
    dem = grid(plane(12, 15, dx, dy, 0.1, bearing), dx=dx, dy=dy)
    expect_aspect = (bearing + 180.0) % 360.0
    s = terrain.slope(dem, edges="extrapolate")
    a = terrain.aspect(dem, edges="extrapolate")
    np.testing.assert_allclose(s.values, math.degrees(math.atan(0.1)), atol=1e-9)
    diff = (a.values - expect_aspect + 180.0) % 360.0 - 180.0
    np.testing.assert_allclose(diff, 0.0, atol=1e-7)
    # Default edge replication: exact on the interior too.
    s_rep = terrain.slope(dem).values
    a_rep = terrain.aspect(dem).values
    np.testing.assert_allclose(s_rep[1:-1, 1:-1], 5.710593137499643, atol=1e-9)
    diff = (a_rep[1:-1, 1:-1] - expect_aspect + 180.0) % 360.0 - 180.0
    np.testing.assert_allclose(diff, 0.0, atol=1e-7)


def test_replicated_edges_halve_the_gradient_across_the_edge():
    # Plane rising east: on the west/east columns one side of Horn's window is
    # a copy of the centre column, so dz/dx is half: atan(0.05).
    dem = grid(plane(6, 7, 30.0, 30.0, 0.1, 90.0))
    s = terrain.slope(dem).values
    np.testing.assert_allclose(s[:, 0], math.degrees(math.atan(0.05)), atol=1e-9)
    np.testing.assert_allclose(s[:, -1], math.degrees(math.atan(0.05)), atol=1e-9)
    np.testing.assert_allclose(s[:, 1:-1], math.degrees(math.atan(0.1)), atol=1e-9)


def test_flat_aspect_is_minus_one_and_slope_zero():
    dem = grid(np.full((5, 6), 12.0))
    assert (terrain.aspect(dem).values == -1.0).all()
    assert (terrain.slope(dem).values == 0.0).all()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_slope_aspect_match_numpy_reference(seed):
    z = random_dem(seed)
    s_ref, a_ref = ref_slope_aspect(z, 30.0, 25.0)
    dem = grid(z, dx=30.0, dy=25.0)
    np.testing.assert_allclose(terrain.slope(dem).values, s_ref, atol=1e-10)
    np.testing.assert_allclose(terrain.aspect(dem).values, a_ref, atol=1e-9)


def test_slope_z_factor():
    dem = grid(plane(8, 8, 10.0, 10.0, 0.1, 45.0), dx=10.0)
    s = terrain.slope(dem, z_factor=2.0, edges="extrapolate")
    np.testing.assert_allclose(s.values, math.degrees(math.atan(0.2)), atol=1e-9)


def test_nodata_is_masked_and_neighbours_use_the_centre():
    z = plane(7, 7, 30.0, 30.0, 0.1, 90.0)
    z[3, 3] = -9999.0
    dem = grid(z, nodata=-9999.0)
    s = terrain.slope(dem)
    assert np.isnan(s.values[3, 3])
    assert np.isfinite(np.delete(s.values.ravel(), 3 * 7 + 3)).all()
    # West of the hole: its east neighbour column is partly the centre value.
    assert s.values[3, 2] < math.degrees(math.atan(0.1))
    assert math.isnan(s.attrs["nodata"])


def test_wrappers_keep_coords_and_attrs():
    dem = grid(random_dem(3, 6, 5), name_tag="keep-me")
    for out in (terrain.slope(dem), terrain.aspect(dem), terrain.hillshade(dem)):
        assert out.dims == ("y", "x")
        np.testing.assert_array_equal(out["x"].values, dem["x"].values)
        np.testing.assert_array_equal(out["y"].values, dem["y"].values)
        assert out.attrs["crs"] == "EPSG:4547"
        assert out.attrs["transform"] == dem.attrs["transform"]
        assert out.attrs["name_tag"] == "keep-me"
    assert terrain.slope(dem).attrs["units"] == "degree"
    assert dem.attrs["units"] == "m"  # input attrs untouched


def test_cell_size_from_coords_when_no_transform():
    z = plane(6, 6, 30.0, 30.0, 0.1, 0.0)
    dem = grid(z)
    del dem.attrs["transform"]
    np.testing.assert_allclose(
        terrain.slope(dem, edges="extrapolate").values, math.degrees(math.atan(0.1)), atol=1e-9
    )


def test_geographic_cell_sizes_match_geodesic_distances():
    # One arc-second cells at ~22.6 N (the SRTM DEM): compare with pyproj.Geod.
    from pyproj import Geod

    d = 1.0 / 3600.0
    dem = grid(np.zeros((4, 3)), dx=d, dy=d, crs="EPSG:4326", x0=114.0, y0=22.6)
    dx_row, dy_row = terrain.cell_sizes_m(dem)
    geod = Geod(ellps="WGS84")
    for i, lat in enumerate(22.6 - d * (np.arange(4) + 0.5)):
        _, _, ew = geod.inv(114.0, lat, 114.0 + d, lat)
        _, _, ns = geod.inv(114.0, lat - d / 2, 114.0, lat + d / 2)
        assert dx_row[i] == pytest.approx(ew, rel=1e-6)
        assert dy_row[i] == pytest.approx(ns, rel=1e-6)
    assert 28.0 < dx_row[0] < 29.0 and 30.5 < dy_row[0] < 31.0


def test_grid_checks():
    z = np.zeros((4, 4))
    with pytest.raises(GridError, match="dims"):
        terrain.slope(xr.DataArray(z, dims=("row", "col")))
    south_up = grid(z)
    south_up.attrs["transform"] = (30.0, 0.0, 0.0, 0.0, 30.0, 0.0)
    with pytest.raises(GridError, match="north-up"):
        terrain.slope(south_up)
    with pytest.raises(ValidationError, match="edges"):
        terrain.slope(grid(z), edges="wrap")


# --------------------------------------------------------------------------
# Hillshade
# --------------------------------------------------------------------------
def test_hillshade_values():
    flat = grid(np.zeros((5, 5)))
    # Flat ground under a 45 deg sun: cos(45) = 0.7071; uint8 1 + round(254 * 0.7071) = 181.
    np.testing.assert_allclose(terrain.hillshade(flat, dtype="float").values, math.cos(math.pi / 4))
    assert (terrain.hillshade(flat).values == 181).all()
    # A 45 deg slope facing the sun (aspect 315 = uphill 135): fully lit.
    toward = grid(plane(6, 6, 10.0, 10.0, 1.0, 135.0), dx=10.0)
    hs = terrain.hillshade(toward, dtype="float", edges="extrapolate").values
    np.testing.assert_allclose(hs, 1.0, atol=1e-12)
    assert (terrain.hillshade(toward, edges="extrapolate").values == 255).all()
    # Facing away: in shadow, 0 (uint8 1, since 0 means nodata).
    away = grid(plane(6, 6, 10.0, 10.0, 1.0, 315.0), dx=10.0)
    np.testing.assert_allclose(
        terrain.hillshade(away, dtype="float", edges="extrapolate").values, 0.0, atol=1e-12
    )
    assert (terrain.hillshade(away, edges="extrapolate").values == 1).all()


def test_hillshade_nodata():
    z = np.zeros((4, 4))
    z[1, 2] = np.nan
    hs = terrain.hillshade(grid(z))
    assert hs.dtype == np.uint8 and hs.values[1, 2] == 0 and hs.attrs["nodata"] == 0
    assert np.isnan(terrain.hillshade(grid(z), dtype="float").values[1, 2])


# --------------------------------------------------------------------------
# Depression filling
# --------------------------------------------------------------------------
def bowl():
    """21x21: floor 0-3 inside a Chebyshev ring of height 10 with a notch at 4."""
    rng = np.random.default_rng(5)
    n, c = 21, 10
    ii, jj = np.mgrid[0:n, 0:n]
    cheb = np.maximum(abs(ii - c), abs(jj - c))
    z = 3.0 - 0.1 * (cheb - 7)  # outside the ring: falls towards the grid edge
    z[cheb == 6] = 10.0
    inside = cheb < 6
    z[inside] = rng.uniform(0.0, 3.0, inside.sum())
    z[c - 6, c] = 4.0  # the spill point: lowest rim cell
    return z, inside


def test_bowl_fills_flat_to_spill_level():
    z, inside = bowl()
    filled = terrain.fill_depressions(grid(z)).values
    assert (filled[inside] == 4.0).all()
    np.testing.assert_array_equal(filled[~inside], z[~inside])


def test_bowl_epsilon_fill_drains():
    z, inside = bowl()
    eps = 1e-3
    filled = terrain.fill_depressions(grid(z), epsilon=eps).values
    assert (filled[inside] > 4.0).all()
    assert (filled[inside] <= 4.0 + inside.sum() * eps).all()
    np.testing.assert_array_equal(filled[~inside], z[~inside])
    fd = terrain.flow_direction(grid(filled)).values
    assert (fd[inside] != 0).all()


def test_surface_without_depressions_is_unchanged():
    rng = np.random.default_rng(11)
    # Strictly increasing in row and column: every cell has a lower neighbour
    # on a path to the north or west edge.
    z = np.cumsum(np.cumsum(rng.uniform(0.1, 1.0, (25, 30)), axis=0), axis=1)
    for eps in (None, 0.0, 1e-4):
        filled = terrain.fill_depressions(grid(z), epsilon=eps).values
        np.testing.assert_array_equal(filled, z)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_flat_fill_matches_iterative_reference(seed):
    z = random_dem(seed)
    filled = terrain.fill_depressions(grid(z)).values
    np.testing.assert_array_equal(filled, ref_fill_flat(z))
    assert (filled > z).any()  # the random surface has depressions to fill


@pytest.mark.parametrize("eps", [0.0, 1e-6, 0.01])
def test_epsilon_fill_leaves_no_pits(eps):
    z = random_dem(7, 50, 45)
    z[20:24, 10:13] = np.nan  # a nodata hole: its neighbours are outlets
    sea = np.zeros(z.shape, dtype=bool)
    sea[30:40, 30:40] = True  # a "sea" patch inside the grid
    dem = grid(z)
    filled = terrain.fill_depressions(dem, epsilon=eps, outlets=sea).values
    flat = terrain.fill_depressions(dem, outlets=sea).values
    valid = ~np.isnan(z)
    assert np.isnan(filled[~valid]).all()
    assert (filled[valid] >= flat[valid]).all()
    assert (filled[valid] >= z[valid]).all()
    np.testing.assert_array_equal(filled[sea], z[sea])  # outlets keep their height
    fd = terrain.flow_direction(grid(filled)).values
    pits = (fd == 0) & valid & ~outlet_cells(z, sea)
    assert not pits.any(), f"{pits.sum()} pits left"
    assert (fd[~valid] == terrain.D8_NODATA).all()


def test_fill_rejects_bad_arguments():
    dem = grid(np.zeros((4, 4)))
    with pytest.raises(ValidationError, match="epsilon"):
        terrain.fill_depressions(dem, epsilon=-1.0)
    with pytest.raises(GridError, match="outlets"):
        terrain.fill_depressions(dem, outlets=np.zeros((3, 3), dtype=bool))


def test_priority_flood_kernel_writes_into_out():
    z = random_dem(1, 10, 10)
    out = np.empty_like(z)
    ret = K.priority_flood(z, np.zeros(z.shape, dtype=np.bool_), 0.0, False, out)
    assert ret is out
    np.testing.assert_array_equal(out, ref_fill_flat(z))


# --------------------------------------------------------------------------
# D8 flow direction and accumulation
# --------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_flowdir_matches_numpy_reference(seed):
    z = random_dem(seed)
    fd = terrain.flow_direction(grid(z, dx=30.0, dy=20.0))
    assert fd.dtype == np.uint8 and fd.attrs["nodata"] == 255
    np.testing.assert_array_equal(fd.values, ref_flowdir(z, 30.0, 20.0))


def test_flowdir_codes_on_simple_surfaces():
    # Falling to the east: every cell but the east column flows E (code 1).
    east = np.tile(-3.0 * np.arange(6.0), (5, 1))
    fd = terrain.flow_direction(grid(east)).values
    assert (fd[:, :-1] == 1).all() and (fd[:, -1] == 0).all()
    # Falling to the south: code 4; to the north-east: code 128.
    fd = terrain.flow_direction(grid(east.T.copy())).values
    assert (fd[:-1, :] == 4).all() and (fd[-1, :] == 0).all()
    ne = np.add.outer(np.arange(5.0), -np.arange(5.0))  # rises south and west
    fd = terrain.flow_direction(grid(ne)).values
    assert (fd[1:, :-1] == 128).all()


def test_single_outlet_plane_accumulates_every_cell():
    # z = i + j (rows south, columns east): everything flows NW then along
    # the edges to the north-west corner, the only cell with no lower neighbour.
    ny, nx = 17, 23
    z = np.add.outer(np.arange(ny), np.arange(nx)).astype(float)
    fd = terrain.flow_direction(grid(z))
    assert (fd.values == 0).sum() == 1 and fd.values[0, 0] == 0
    acc = terrain.flow_accumulation(fd)
    assert acc.values[0, 0] == ny * nx
    assert acc.attrs["units"] == "cells"
    np.testing.assert_array_equal(acc.values, ref_accumulation(fd.values))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_accumulation_matches_reference_and_sums_at_outlets(seed):
    z = random_dem(seed, 30, 25)
    filled = terrain.fill_depressions(grid(z), epsilon=0.0)
    fd = terrain.flow_direction(filled)
    acc = terrain.flow_accumulation(fd).values
    np.testing.assert_array_equal(acc, ref_accumulation(fd.values))
    assert acc[fd.values == 0].sum() == z.size
    assert (acc >= 1).all()
    rng = np.random.default_rng(seed)
    w = rng.uniform(0.0, 5.0, z.shape)
    accw = terrain.flow_accumulation(fd, weights=w).values
    np.testing.assert_allclose(accw, ref_accumulation(fd.values, w), rtol=1e-12)
    assert accw[fd.values == 0].sum() == pytest.approx(w.sum(), rel=1e-12)


def test_accumulation_with_nodata():
    z = random_dem(4, 20, 20)
    z[5:8, 5:8] = np.nan
    fd = terrain.flow_direction(terrain.fill_depressions(grid(z), epsilon=0.0))
    acc = terrain.flow_accumulation(fd).values
    valid = ~np.isnan(z)
    assert np.isnan(acc[~valid]).all()
    assert acc[(fd.values == 0) & valid].sum() == valid.sum()


def test_accumulation_rejects_cycles_and_bad_codes():
    cyc = grid(np.array([[1, 16], [0, 0]], dtype=np.uint8))  # E then W: a loop
    with pytest.raises(ValidationError, match="cycle"):
        terrain.flow_accumulation(cyc)
    bad = grid(np.array([[3, 0], [0, 0]], dtype=np.uint8))
    with pytest.raises(ValidationError, match="D8 codes"):
        terrain.flow_accumulation(bad)


# --------------------------------------------------------------------------
# Real DEM
# --------------------------------------------------------------------------
def open_dem(path):
    try:
        from gis.raster import open_raster
    except ImportError:
        open_raster = None
    if open_raster is not None:
        return open_raster(path)
    import rasterio

    with rasterio.open(path) as src:
        data = src.read(1).astype(np.float64)
        t = src.transform
        crs = src.crs.to_string()
    ny, nx = data.shape
    xs = t.c + t.a * (np.arange(nx) + 0.5)
    ys = t.f + t.e * (np.arange(ny) + 0.5)
    return xr.DataArray(
        data,
        dims=("y", "x"),
        coords={"y": ys, "x": xs},
        attrs={"crs": crs, "transform": tuple(t)[:6]},
    )


@pytest.mark.data
@pytest.mark.slow
def test_real_dem_shenzhen(shenzhen_dir):
    dem = open_dem(shenzhen_dir / "terrain" / "srtm1_shenzhen.tif")
    assert dem.shape == (1440, 3240)
    s = terrain.slope(dem).values
    assert np.nanmin(s) >= 0.0 and np.nanmax(s) < 90.0
    assert 20.0 < np.nanmax(s) < 89.0  # Shenzhen's hills are steep somewhere
    filled = terrain.fill_depressions(dem, epsilon=0.0)
    assert (filled.values >= dem.values).all()
    fd = terrain.flow_direction(filled)
    acc = terrain.flow_accumulation(fd).values
    outlets = fd.values == 0
    assert acc[outlets].sum() == dem.size
    # Only edge cells are outlets (the DEM has no nodata and no sea mask here).
    inner = outlets[1:-1, 1:-1]
    assert not inner.any()
    assert acc.max() > 1e4  # some rivers drain large areas


def test_epsilon_zero_fill_drains_flats_at_sea_level():
    # Regression: at z = 0 the next float64 is subnormal (5e-324) and the D8
    # drop step / 30 m underflowed to 0, leaving pits on the real DEM's coast.
    z = np.zeros((12, 14))
    z[4:8, 5:9] = -2.0  # a depression below a flat at exactly 0
    filled = terrain.fill_depressions(grid(z), epsilon=0.0).values
    fd = terrain.flow_direction(grid(filled)).values
    assert (fd[1:-1, 1:-1] != 0).all()
    assert (filled[1:-1, 1:-1] > 0.0).all() and (filled[1:-1, 1:-1] < 1e-150).all()
