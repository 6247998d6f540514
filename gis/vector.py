"""Vector layers: read with a declared datum, convert offsets, rasterize onto grids.

Chinese commercial map data (Amap, Tencent, Baidu) is published with the
GCJ-02 or BD-09 offset on top of WGS 84 longitudes and latitudes. Files do
not say so, so every layer is read with a *declared* datum:
``"wgs84"`` / ``"cgcs2000"`` (taken as WGS 84: they agree to a few cm),
``"gcj02"`` or ``"bd09"`` (offsets removed on load with :mod:`gis.coords`),
or any CRS pyproj knows (reprojected as usual).
"""

from __future__ import annotations

import os
from pathlib import Path

import geopandas as gpd
import numpy as np
import xarray as xr

from gis.crs import WGS84, crs_string, get_crs
from gis.raster import crs_of, make_grid, transform_of
from twin.errors import DataMissingError, ValidationError

GEOGRAPHIC_DATUMS = {"wgs84": WGS84, "cgcs2000": "EPSG:4490"}


def read_vector(
    path: str | os.PathLike,
    *,
    datum: str = "wgs84",
    layer: str | None = None,
    to_crs=None,
) -> gpd.GeoDataFrame:
    """Read GeoJSON, GeoPackage, Shapefile or GeoParquet with a declared datum.

    The result is in WGS 84 (EPSG:4326) unless ``to_crs`` is given; GCJ-02
    and BD-09 inputs have their offset removed. ``attrs["datum_declared"]``
    records what the caller declared.
    """
    path = Path(path)
    if not path.exists():
        raise DataMissingError(f"vector file not found: {path}")
    d = datum.lower().replace("-", "").replace("_", "")
    if path.suffix.lower() in (".parquet", ".geoparquet"):
        gdf = gpd.read_parquet(path)
    else:
        gdf = gpd.read_file(path, layer=layer, engine="pyogrio")
    if d in ("gcj02", "bd09"):
        gdf = gdf.set_geometry(
            gpd.GeoSeries(offset_to_wgs84(gdf.geometry.values, d), index=gdf.index), crs=WGS84
        )
    elif d in GEOGRAPHIC_DATUMS:
        if gdf.crs is None or get_crs(crs_string(gdf.crs)).is_geographic:
            # lon/lat in WGS 84 or CGCS2000: the same to a few centimetres.
            gdf = gdf.set_crs(WGS84, allow_override=True)
        else:
            gdf = gdf.to_crs(WGS84)
    else:
        try:
            crs = get_crs(datum)
        except Exception as err:
            raise ValidationError(
                f"datum={datum!r} for {path.name} is not known: use 'wgs84', 'cgcs2000', 'gcj02', "
                "'bd09' or a CRS such as 'EPSG:4547'"
            ) from err
        gdf = gdf.set_crs(crs, allow_override=True).to_crs(WGS84)
    if to_crs is not None:
        gdf = gdf.to_crs(get_crs(to_crs))
    gdf.attrs["datum_declared"] = d
    gdf.attrs["source"] = str(path)
    return gdf


def offset_to_wgs84(geoms, datum: str):
    """Remove the GCJ-02 or BD-09 offset from shapely geometries (lon/lat in, WGS 84 lon/lat out)."""
    import shapely

    from gis import coords

    if datum == "gcj02":
        return coords.geometry_gcj02_to_wgs84(geoms)
    if datum != "bd09":
        raise ValidationError(f"datum={datum!r}: only 'gcj02' and 'bd09' carry an offset")

    def _bd(xy: np.ndarray) -> np.ndarray:
        lon, lat = coords.bd09_to_wgs84(xy[:, 0], xy[:, 1])
        return np.column_stack([lon, lat])

    return shapely.transform(geoms, _bd)


def _shapes(gdf: gpd.GeoDataFrame, like: xr.DataArray | xr.Dataset, values):
    crs = crs_of(like)
    if gdf.crs is None:
        raise ValidationError(
            "rasterize: the GeoDataFrame has no CRS; read it with read_vector(..., datum=...)"
        )
    g = gdf.to_crs(get_crs(crs))
    return [
        (geom, v)
        for geom, v in zip(g.geometry, values, strict=True)
        if geom is not None and not geom.is_empty
    ]


def rasterize_ids(
    gdf: gpd.GeoDataFrame,
    like: xr.DataArray | xr.Dataset,
    column: str | None = None,
    *,
    fill: int = -1,
    dtype=np.int32,
    all_touched: bool = False,
    name: str = "id",
) -> xr.DataArray:
    """Burn each feature's id (``column``, or its row number) into the grid of ``like``.

    A cell takes the value of the feature covering its centre (later rows win
    where features overlap); cells under none get ``fill``.
    """
    from rasterio.features import rasterize

    values = gdf[column].to_numpy() if column else np.arange(len(gdf))
    shape = (like.sizes["y"], like.sizes["x"])
    out = rasterize(
        _shapes(gdf, like, values),
        out_shape=shape,
        transform=transform_of(like),
        fill=fill,
        all_touched=all_touched,
        dtype=np.dtype(dtype).name,
    )
    return make_grid(out, transform_of(like), crs_of(like), name=name, units="1", nodata=fill)


def rasterize_fraction(
    gdf: gpd.GeoDataFrame,
    like: xr.DataArray | xr.Dataset,
    *,
    supersample: int = 8,
    name: str = "fraction",
) -> xr.DataArray:
    """Fraction (0-1) of each cell covered by the union of the features.

    Computed by burning on a grid ``supersample`` times finer and averaging
    blocks: the error per cell is at most about 1/supersample of the cell's
    boundary length share (exact for cells wholly in or out).
    """
    from affine import Affine
    from rasterio.features import rasterize

    if supersample < 1:
        raise ValidationError(f"supersample={supersample} must be >= 1")
    h, w = like.sizes["y"], like.sizes["x"]
    t = transform_of(like) @ Affine.scale(1 / supersample)
    fine = rasterize(
        _shapes(gdf, like, np.ones(len(gdf), dtype=np.uint8)),
        out_shape=(h * supersample, w * supersample),
        transform=t,
        fill=0,
        dtype="uint8",
    )
    frac = fine.reshape(h, supersample, w, supersample).mean(axis=(1, 3), dtype=np.float64)
    return make_grid(
        frac.astype(np.float32), transform_of(like), crs_of(like), name=name, units="1"
    )
