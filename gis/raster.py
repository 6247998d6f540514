"""Rasters as georeferenced ``xarray.DataArray`` objects.

Convention (every grid in the engine follows it):

* dims ``("y", "x")`` (``("time", "y", "x")`` for series), coordinates at
  cell centres, ``y`` descending (north-up);
* ``attrs["crs"]``: a CRS string pyproj accepts (``"EPSG:4547"``);
* ``attrs["transform"]``: the affine transform of the cell corners as the
  6-tuple ``(a, b, c, d, e, f)`` of :class:`affine.Affine`;
* ``attrs["nodata"]`` when the source declares one (float arrays use NaN
  in memory), ``attrs["units"]`` and ``attrs["long_name"]``.

Reading goes through rasterio (GeoTIFF, SRTM ``.hgt``, ESRI ASCII grid and
everything else GDAL opens); writing produces GeoTIFF and CF-style NetCDF
that QGIS and xarray open.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import rasterio
import xarray as xr
from affine import Affine
from rasterio.enums import Resampling
from rasterio.errors import RasterioIOError
from rasterio.warp import calculate_default_transform
from rasterio.warp import reproject as _rio_reproject

from gis.crs import crs_string, get_crs
from twin.errors import CRSError, DataMissingError, GridError, ValidationError

RESAMPLING = {
    "nearest": Resampling.nearest,
    "bilinear": Resampling.bilinear,
    "cubic": Resampling.cubic,
    "average": Resampling.average,
    "mode": Resampling.mode,
    "max": Resampling.max,
    "min": Resampling.min,
    "sum": Resampling.sum,
}


def _resampling(name: str) -> Resampling:
    try:
        return RESAMPLING[name]
    except KeyError:
        raise ValidationError(
            f"resampling={name!r} is not known; use one of {sorted(RESAMPLING)}"
        ) from None


def coords_from_transform(
    transform: Affine, height: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Cell-centre x and y coordinates of a north-up grid."""
    if transform.b != 0 or transform.d != 0:
        raise GridError(f"rotated grids are not supported (transform={tuple(transform)[:6]})")
    x = transform.c + transform.a * (np.arange(width) + 0.5)
    y = transform.f + transform.e * (np.arange(height) + 0.5)
    return x, y


def make_grid(
    values: np.ndarray,
    transform: Affine,
    crs,
    *,
    name: str | None = None,
    units: str | None = None,
    long_name: str | None = None,
    nodata: float | None = None,
) -> xr.DataArray:
    """Wrap a 2-D array and its georeferencing into a DataArray following the convention."""
    values = np.asarray(values)
    if values.ndim != 2:
        raise GridError(f"a grid needs a 2-D array, got shape {values.shape}")
    h, w = values.shape
    x, y = coords_from_transform(transform, h, w)
    attrs = {"crs": crs_string(crs), "transform": tuple(transform)[:6]}
    if nodata is not None:
        attrs["nodata"] = nodata
    if units is not None:
        attrs["units"] = units
    if long_name is not None:
        attrs["long_name"] = long_name
    da = xr.DataArray(values, dims=("y", "x"), coords={"y": y, "x": x}, name=name, attrs=attrs)
    da["x"].attrs.update(standard_name="projection_x_coordinate", axis="X")
    da["y"].attrs.update(standard_name="projection_y_coordinate", axis="Y")
    return da


def transform_of(da: xr.DataArray | xr.Dataset) -> Affine:
    """The affine transform of a grid (from its attrs, else from its coordinates)."""
    t = da.attrs.get("transform")
    if t is not None:
        return Affine(*t[:6])
    x, y = da["x"].values, da["y"].values
    if x.size < 2 or y.size < 2:
        raise GridError(
            "cannot infer a transform from fewer than 2 cells per axis; set attrs['transform']"
        )
    dx, dy = x[1] - x[0], y[1] - y[0]
    return Affine(dx, 0.0, x[0] - dx / 2, 0.0, dy, y[0] - dy / 2)


def world_to_pixel(transform: Affine, x, y) -> tuple[np.ndarray, np.ndarray]:
    """Fractional (col, row) of map coordinates; cell (i, j) spans [j, j+1) x [i, i+1)."""
    inv = ~transform
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    return inv.a * x + inv.b * y + inv.c, inv.d * x + inv.e * y + inv.f


def crs_of(da: xr.DataArray | xr.Dataset) -> str:
    """The CRS string of a grid, or a CRSError saying how to set it."""
    crs = da.attrs.get("crs")
    if not crs:
        raise CRSError(
            f"grid {getattr(da, 'name', '')!r} has no attrs['crs']; set it, e.g. 'EPSG:4547'"
        )
    return crs


def cell_size(da: xr.DataArray | xr.Dataset) -> tuple[float, float]:
    """Positive cell size (dx, dy) in CRS units."""
    t = transform_of(da)
    return abs(t.a), abs(t.e)


def open_raster(
    path: str | os.PathLike,
    *,
    band: int = 1,
    crs=None,
    units: str | None = None,
    name: str | None = None,
    masked: bool = True,
) -> xr.DataArray:
    """Open one band of a raster file (GeoTIFF, SRTM .hgt, ESRI ASCII grid, ...).

    With ``masked=True`` nodata cells become NaN (the array is promoted to
    float); otherwise values are kept in their stored dtype. ``crs`` supplies
    the CRS when the file has none (an ESRI ASCII grid without .prj).
    """
    path = Path(path)
    if not path.exists():
        raise DataMissingError(f"raster file not found: {path}")
    try:
        with rasterio.open(path) as src:
            if band < 1 or band > src.count:
                raise ValidationError(
                    f"band={band} is out of range: {path.name} has {src.count} band(s)"
                )
            data = src.read(band)
            nodata = src.nodata
            src_crs = src.crs
            transform = src.transform
            file_units = src.units[band - 1] if src.units else None
            description = src.descriptions[band - 1] if src.descriptions else None
    except RasterioIOError as err:
        raise DataMissingError(f"cannot open raster {path}: {err}") from err
    if src_crs is None and crs is None:
        raise CRSError(f"{path} has no CRS; pass crs=... (e.g. 'EPSG:4326')")
    the_crs = crs if crs is not None else src_crs.to_wkt()
    if masked and nodata is not None:
        data = data.astype(np.float64 if data.dtype.itemsize > 4 else np.float32)
        data[data == nodata] = np.nan
    da = make_grid(
        data,
        transform,
        get_crs(the_crs),
        name=name or path.stem,
        units=units or file_units or None,
        long_name=description or None,
        nodata=(float(nodata) if nodata is not None else None),
    )
    da.attrs["source"] = str(path)
    return da


def target_grid(
    bounds: tuple[float, float, float, float], resolution: float, snap: bool = True
) -> tuple[Affine, int, int]:
    """Transform and shape of a north-up grid covering ``bounds`` at ``resolution``.

    With ``snap`` the origin lies on a multiple of the resolution, so grids
    of the same resolution built from different areas share cell edges.
    """
    if not (resolution > 0 and math.isfinite(resolution)):
        raise ValidationError(f"resolution={resolution!r} must be a positive number of CRS units")
    minx, miny, maxx, maxy = bounds
    if snap:
        minx = math.floor(minx / resolution) * resolution
        miny = math.floor(miny / resolution) * resolution
        maxx = math.ceil(maxx / resolution) * resolution
        maxy = math.ceil(maxy / resolution) * resolution
    width = max(1, int(round((maxx - minx) / resolution)))
    height = max(1, int(round((maxy - miny) / resolution)))
    return Affine(resolution, 0.0, minx, 0.0, -resolution, maxy), height, width


def reproject(
    da: xr.DataArray,
    dst_crs,
    resolution: float | None = None,
    resampling: str = "bilinear",
    *,
    bounds: tuple[float, float, float, float] | None = None,
    like: xr.DataArray | xr.Dataset | None = None,
    num_threads: int = 2,
) -> xr.DataArray:
    """Warp a grid onto another CRS / resolution / grid.

    Give ``like`` to land exactly on another grid's cells, or ``bounds``
    (in ``dst_crs``) and ``resolution`` for a snapped grid, or only a
    resolution (the bounds of the source, transformed). Float grids keep NaN
    as nodata; integer grids keep their ``nodata`` attr (0 when absent).
    """
    src_crs = get_crs(crs_of(da))
    src_t = transform_of(da)
    if like is not None:
        dst_crs = crs_of(like)
        dst_t = transform_of(like)
        h, w = like.sizes["y"], like.sizes["x"]
    else:
        dst = get_crs(dst_crs)
        if bounds is None:
            if resolution is None:
                t, w, h = calculate_default_transform(
                    src_crs, dst, da.sizes["x"], da.sizes["y"], transform=src_t
                )
                dst_t = t
            else:
                from rasterio.warp import transform_bounds

                h0, w0 = da.sizes["y"], da.sizes["x"]
                left, top = src_t.c, src_t.f
                right, bottom = left + src_t.a * w0, top + src_t.e * h0
                bounds = transform_bounds(src_crs, dst, left, bottom, right, top, densify_pts=51)
        if bounds is not None:
            if resolution is None:
                raise ValidationError("reproject: bounds given without a resolution")
            dst_t, h, w = target_grid(bounds, resolution)
    values = da.values
    is_float = np.issubdtype(values.dtype, np.floating)
    if is_float:
        nodata = np.nan
        out = np.full((h, w), np.nan, dtype=values.dtype)
    else:
        nodata = da.attrs.get("nodata", 0)
        out = np.full((h, w), nodata, dtype=values.dtype)
    _rio_reproject(
        values,
        out,
        src_transform=src_t,
        src_crs=src_crs,
        src_nodata=nodata,
        dst_transform=dst_t,
        dst_crs=get_crs(dst_crs),
        dst_nodata=nodata,
        resampling=_resampling(resampling),
        num_threads=num_threads,
    )
    res = make_grid(out, dst_t, dst_crs, name=da.name)
    for key in ("units", "long_name"):
        if key in da.attrs:
            res.attrs[key] = da.attrs[key]
    if not is_float:
        res.attrs["nodata"] = nodata
    res.attrs["resampling"] = resampling
    return res


def clip(
    da: xr.DataArray, geometry=None, *, bbox=None, geometry_crs=None, all_touched: bool = False
) -> xr.DataArray:
    """Cut a grid to a bounding box and/or mask it outside a polygon.

    ``geometry`` is a shapely geometry (or GeoSeries/GeoDataFrame, unioned),
    in ``geometry_crs`` (default: the grid's CRS). Cells outside become NaN
    for float grids and ``nodata`` (default 0) for integer grids.
    """
    import geopandas as gpd
    from rasterio.features import geometry_mask

    crs = crs_of(da)
    if geometry is not None:
        if isinstance(geometry, gpd.GeoDataFrame | gpd.GeoSeries):
            src = geometry.crs or geometry_crs
            geometry = geometry.to_crs(crs).union_all() if src is not None else geometry.union_all()
        elif geometry_crs is not None:
            geometry = gpd.GeoSeries([geometry], crs=geometry_crs).to_crs(crs).iloc[0]
        bbox = geometry.bounds if bbox is None else bbox
    if bbox is None:
        raise ValidationError("clip needs a geometry or a bbox")
    minx, miny, maxx, maxy = bbox
    if minx >= maxx or miny >= maxy:
        raise ValidationError(f"bbox={bbox!r} is empty: need minx < maxx and miny < maxy")
    t = transform_of(da)
    dx, dy = cell_size(da)
    x, y = da["x"].values, da["y"].values
    ix = np.nonzero((x + dx / 2 > minx) & (x - dx / 2 < maxx))[0]
    iy = np.nonzero((y + dy / 2 > miny) & (y - dy / 2 < maxy))[0]
    if ix.size == 0 or iy.size == 0:
        raise GridError(f"bbox {bbox} does not overlap the grid {da.name!r}")
    sub = da.isel(x=slice(ix[0], ix[-1] + 1), y=slice(iy[0], iy[-1] + 1)).copy()
    sub.attrs["transform"] = tuple(t @ Affine.translation(ix[0], iy[0]))[:6]
    if geometry is not None:
        mask = geometry_mask(
            [geometry],
            out_shape=sub.shape,
            transform=transform_of(sub),
            all_touched=all_touched,
            invert=True,
        )
        if np.issubdtype(sub.dtype, np.floating):
            sub = sub.where(mask)
        else:
            sub.values[~mask] = sub.attrs.get("nodata", 0)
    return sub


def write_geotiff(da: xr.DataArray, path: str | os.PathLike, *, compress: str = "deflate") -> Path:
    """Write a 2-D grid as a tiled, compressed GeoTIFF with CRS, nodata and units."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if da.ndim != 2:
        raise GridError(f"write_geotiff needs a 2-D grid, got dims {da.dims}")
    values = da.values
    if values.dtype == np.bool_:
        values = values.astype(np.uint8)
    nodata = da.attrs.get("nodata")
    if np.issubdtype(values.dtype, np.floating):
        nodata = np.nan
    h, w = values.shape
    profile = dict(
        driver="GTiff",
        height=h,
        width=w,
        count=1,
        dtype=values.dtype,
        crs=get_crs(crs_of(da)).to_wkt(),
        transform=transform_of(da),
        compress=compress,
        nodata=nodata,
    )
    if h >= 256 and w >= 256:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(values, 1)
        if da.attrs.get("units"):
            dst.update_tags(1, units=str(da.attrs["units"]))
            dst.set_band_unit(1, str(da.attrs["units"]))
        if da.attrs.get("long_name"):
            dst.set_band_description(1, str(da.attrs["long_name"]))
    return path


def cf_encode(ds: xr.Dataset) -> xr.Dataset:
    """Add a CF ``spatial_ref`` grid-mapping variable so GIS tools read the CRS from NetCDF."""
    crs = get_crs(crs_of(ds))
    out = ds.copy()
    cf = crs.to_cf()
    cf["spatial_ref"] = crs.to_wkt()
    cf["GeoTransform"] = " ".join(str(v) for v in transform_of(ds).to_gdal())
    out["spatial_ref"] = xr.DataArray(np.int32(0), attrs=cf)
    for name, var in out.data_vars.items():
        if name != "spatial_ref" and {"y", "x"} <= set(var.dims):
            var.attrs["grid_mapping"] = "spatial_ref"
    return out


def write_netcdf(obj: xr.DataArray | xr.Dataset, path: str | os.PathLike) -> Path:
    """Write a grid or Dataset to NetCDF4 with CF georeferencing (opens in QGIS and xarray)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds = obj.to_dataset(name=obj.name or "data") if isinstance(obj, xr.DataArray) else obj
    if isinstance(obj, xr.DataArray):
        ds.attrs.update({k: obj.attrs[k] for k in ("crs", "transform") if k in obj.attrs})
    ds = cf_encode(ds)
    encoding = {
        name: {"zlib": True, "complevel": 4} for name, v in ds.data_vars.items() if v.ndim >= 2
    }
    ds.to_netcdf(path, engine="netcdf4", encoding=encoding)
    return path
