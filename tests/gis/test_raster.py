"""Raster I/O, reprojection, clipping on small grids the tests make, and on the real DEM."""

import numpy as np
import pytest
import rasterio
import xarray as xr
from affine import Affine
from shapely.geometry import box

from gis.raster import (
    cell_size,
    clip,
    make_grid,
    open_raster,
    reproject,
    target_grid,
    transform_of,
    write_geotiff,
    write_netcdf,
)
from twin.errors import CRSError, DataMissingError, GridError, ValidationError


def _grid(values, res=30.0, x0=500000.0, y0=2500000.0, crs="EPSG:4547"):
    return make_grid(np.asarray(values), Affine(res, 0, x0, 0, -res, y0), crs, name="z", units="m")


def test_make_grid_coords_are_cell_centres():
    da = _grid(np.zeros((2, 3)))
    assert da.x.values.tolist() == [500015.0, 500045.0, 500075.0]
    assert da.y.values.tolist() == [2499985.0, 2499955.0]
    assert cell_size(da) == (30.0, 30.0)
    assert transform_of(da.drop_attrs()) == transform_of(da)


def test_geotiff_roundtrip_keeps_values_crs_units(tmp_path):
    rng = np.random.default_rng(1)
    da = _grid(rng.normal(size=(40, 50)).astype(np.float32))
    da.values[3, 4] = np.nan
    p = write_geotiff(da, tmp_path / "z.tif")
    back = open_raster(p)
    np.testing.assert_array_equal(back.values, da.values)
    assert back.attrs["crs"] == "EPSG:4547"
    assert back.attrs["units"] == "m"
    assert transform_of(back) == transform_of(da)


def test_ascii_grid_without_crs_needs_one(tmp_path):
    p = tmp_path / "g.asc"
    p.write_text("ncols 3\nnrows 2\nxllcorner 0\nyllcorner 0\ncellsize 10\nNODATA_value -9999\n"
                 "1 2 3\n4 -9999 6\n")
    with pytest.raises(CRSError, match="no CRS"):
        open_raster(p)
    da = open_raster(p, crs="EPSG:4547")
    assert np.isnan(da.values[1, 1]) and da.values[0, 2] == 3
    assert cell_size(da) == (10.0, 10.0)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(DataMissingError, match="nope.tif"):
        open_raster(tmp_path / "nope.tif")


def test_reproject_identity_and_resample_conserves_mean():
    """Averaging 30 m onto 90 m must conserve the mean of a field exactly on aligned grids."""
    rng = np.random.default_rng(2)
    da = _grid(rng.random((90, 90)), x0=495000.0, y0=2502000.0)  # origin on the 90 m lattice
    same = reproject(da, "EPSG:4547", like=da, resampling="nearest")
    np.testing.assert_array_equal(same.values, da.values)
    coarse = reproject(da, "EPSG:4547", 90.0, resampling="average")
    assert coarse.shape == (30, 30)
    assert float(coarse.mean()) == pytest.approx(float(da.mean()), rel=1e-6)


def test_bad_resampling_named():
    with pytest.raises(ValidationError, match="resampling='cubicx'"):
        reproject(_grid(np.zeros((4, 4))), "EPSG:4547", 60.0, resampling="cubicx")


def test_target_grid_snaps():
    t, h, w = target_grid((100.0, 200.0, 195.0, 260.0), 30.0)
    assert (t.c, t.f, h, w) == (90.0, 270.0, 3, 4)


def test_clip_bbox_and_polygon():
    da = _grid(np.ones((10, 10)), res=1.0, x0=0.0, y0=10.0)
    sub = clip(da, bbox=(2, 2, 6, 5))
    assert sub.shape == (3, 4)
    assert transform_of(sub).c == 2.0 and transform_of(sub).f == 5.0
    poly = clip(da, box(0, 0, 5, 5).union(box(5, 5, 10, 10)))
    assert int(np.isfinite(poly.values).sum()) == 50
    with pytest.raises(GridError):
        clip(da, bbox=(20, 20, 30, 30))


def test_netcdf_carries_crs(tmp_path):
    da = _grid(np.arange(12.0).reshape(3, 4))
    p = write_netcdf(da, tmp_path / "z.nc")
    ds = xr.open_dataset(p)
    assert ds["z"].attrs["grid_mapping"] == "spatial_ref"
    assert "Gauss-Kruger" in ds["spatial_ref"].attrs["crs_wkt"] or "4547" in ds["spatial_ref"].attrs["crs_wkt"]
    np.testing.assert_array_equal(ds["z"].values, da.values)
    with rasterio.open(f"netcdf:{p}:z") as src:  # GDAL reads the georeferencing back
        assert src.crs.to_epsg() == 4547
        assert src.transform == transform_of(da)


@pytest.mark.data
def test_real_dem_range_and_reprojection(shenzhen_dir):
    """Data README: SRTM1 3240 x 1440, elevation -107..924 m (Wutong Shan max)."""
    dem = open_raster(shenzhen_dir / "terrain/srtm1_shenzhen.tif")
    assert dem.shape == (1440, 3240)
    assert float(np.nanmin(dem)) == -107.0 and float(np.nanmax(dem)) == 924.0
    m = reproject(dem, "EPSG:4547", 90.0)
    # bilinear smoothing lowers the peak but a 90 m grid still sees Wutong Shan above 850 m.
    assert 850 < float(np.nanmax(m)) <= 924
    assert cell_size(m) == (90.0, 90.0)


def test_srtm_hgt_tile(tmp_path):
    """SRTM .hgt: big-endian int16, 1201 x 1201 for 3 arc-second, named by its SW corner, -32768 voids."""
    n = 1201
    z = np.tile(np.arange(n, dtype=np.int16), (n, 1))  # rises eastwards 1 m per cell
    z[10, 20] = -32768
    p = tmp_path / "N22E114.hgt"
    z.astype(">i2").tofile(p)
    da = open_raster(p, units="m")
    assert da.attrs["crs"] == "EPSG:4326"
    t = transform_of(da)
    # cell centres of the edge rows sit on the tile's integer degrees
    assert da.x.values[0] == pytest.approx(114.0) and da.y.values[0] == pytest.approx(23.0)
    assert t.a == pytest.approx(1 / 1200)
    assert np.isnan(da.values[10, 20]) and da.values[5, 7] == 7
