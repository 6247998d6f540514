"""Terrain analysis on DEM DataArrays: slope, aspect, hillshade, filling, D8.

Every function takes a raster in the project convention (``xarray.DataArray``
with dims ("y", "x"), cell-centre coords, y descending = north-up, attrs
"crs", "transform", "nodata") and returns a DataArray with the same coords and
attrs, "units", "long_name" and "nodata" updated. The numba kernels live in
:mod:`gis._kernels.terrain`.

Cell size
---------
Taken from ``attrs["transform"]`` (|a|, |e|) when present, else from the
spacing of the x and y coords (which must be uniform). On a projected CRS it
is converted to metres with the CRS's axis unit. On a geographic CRS (e.g.
the SRTM DEM in EPSG:4326) it is converted to metres row by row at each
row's latitude on the CRS's ellipsoid::

    dx_m = radians(dlon) * N(lat) * cos(lat),   dy_m = radians(dlat) * M(lat)

with N and M the prime-vertical and meridian radii of curvature. Without a
"crs" attr the spacing is used as it is: it must then be in the same unit as
the elevations.

Nodata
------
NaN cells and cells equal to ``attrs["nodata"]`` are masked. Float outputs
are NaN there; the D8 grid uses 255; the uint8 hillshade uses 0.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import xarray as xr

from gis._kernels import terrain as _k
from twin.errors import CRSError, GridError, ValidationError

__all__ = [
    "D8_CODES",
    "D8_NODATA",
    "aspect",
    "cell_sizes_m",
    "fill_depressions",
    "flow_accumulation",
    "flow_direction",
    "hillshade",
    "slope",
]

#: ESRI D8 codes in the order E, SE, S, SW, W, NW, N, NE.
D8_CODES = tuple(int(c) for c in _k.D8_CODES)
#: Value of the D8 grid on nodata cells.
D8_NODATA = _k.D8_NODATA

#: Edge rule of Horn's window: "replicate" copies the edge cells outward (the
#: outermost cells then see half the gradient across the edge, as GDAL with
#: -compute_edges); "extrapolate" continues the surface linearly (exact on planes).
Edges = Literal["replicate", "extrapolate"]


# --------------------------------------------------------------------------
# Grid helpers
# --------------------------------------------------------------------------
def _check_grid(da: Any, name: str) -> None:
    if not isinstance(da, xr.DataArray):
        raise ValidationError(
            f"{name} must be an xarray.DataArray with dims ('y', 'x'), got {type(da).__name__}; "
            f"open rasters with gis.raster.open_raster"
        )
    if da.dims != ("y", "x"):
        raise GridError(
            f"{name} must have dims ('y', 'x'), got {da.dims}; "
            f"transpose or rename it (e.g. da.transpose('y', 'x'))"
        )
    if da.shape[0] < 1 or da.shape[1] < 1:
        raise GridError(f"{name} is empty (shape {da.shape}); pass a non-empty grid")


def _transform(da: xr.DataArray) -> tuple[float, ...] | None:
    t = da.attrs.get("transform")
    if t is None:
        return None
    t = tuple(float(v) for v in tuple(t)[:6])
    if len(t) != 6:
        raise GridError(f"attrs['transform'] must have 6 numbers (a, b, c, d, e, f), got {t}")
    if t[1] != 0.0 or t[3] != 0.0:
        raise GridError(
            f"attrs['transform'] {t} is rotated or sheared (b, d not 0); "
            f"reproject to a north-up grid first (gis.raster.reproject)"
        )
    return t


def _spacing_and_rows(da: xr.DataArray) -> tuple[float, float, np.ndarray]:
    """(|dx|, |dy|, y of each row centre) in CRS units; checks north-up."""
    ny, nx = da.shape
    t = _transform(da)
    if t is not None:
        a, _, _, _, e, f = t
        if a <= 0.0 or e >= 0.0:
            raise GridError(
                f"attrs['transform'] {t} is not north-up (need a > 0 and e < 0); "
                f"flip the grid so that y descends (da.isel(y=slice(None, None, -1)))"
            )
        rows = f + e * (np.arange(ny) + 0.5)
        return a, -e, rows
    if "x" not in da.coords or "y" not in da.coords or nx < 2 or ny < 2:
        raise GridError(
            "cannot find the cell size: the raster has no attrs['transform'] and fewer "
            "than 2 x/y coords; set attrs['transform'] (rasterio Affine[:6])"
        )
    xs = np.asarray(da["x"].values, dtype=np.float64)
    ys = np.asarray(da["y"].values, dtype=np.float64)
    dxs = np.diff(xs)
    dys = np.diff(ys)
    dx = float(dxs.mean())
    dy = float(dys.mean())
    if dx <= 0.0 or dy >= 0.0:
        raise GridError(
            f"coords are not north-up (x step {dx}, y step {dy}; need x ascending, y "
            f"descending); flip the grid (da.isel(y=slice(None, None, -1)))"
        )
    if np.ptp(dxs) > 1e-6 * abs(dx) or np.ptp(dys) > 1e-6 * abs(dy):
        raise GridError("x or y coords are not evenly spaced; resample to a regular grid first")
    return dx, -dy, ys


def cell_sizes_m(da: xr.DataArray) -> tuple[np.ndarray, np.ndarray]:
    """Cell width and height of each row of a raster, in metres.

    Parameters
    ----------
    da : xarray.DataArray
        Raster with dims ("y", "x").

    Returns
    -------
    (dx_row, dy_row) : numpy.ndarray of float64, each of length ny
        East-west and north-south cell sizes of every row (m; in CRS units
        when the raster has no "crs" attr). Equal on every row for a
        projected CRS; dx_row follows cos(latitude) on a geographic CRS.

    Raises
    ------
    GridError
        No transform and no regular coords, rotated or not north-up grid.
    CRSError
        ``attrs["crs"]`` is not understood by pyproj.
    """
    _check_grid(da, "raster")
    ny = da.shape[0]
    dx, dy, rows = _spacing_and_rows(da)
    crs_in = da.attrs.get("crs")
    if crs_in is None:
        return np.full(ny, dx), np.full(ny, dy)
    from pyproj import CRS
    from pyproj.exceptions import CRSError as PyprojCRSError

    try:
        crs = CRS.from_user_input(crs_in)
    except PyprojCRSError as exc:
        raise CRSError(
            f"attrs['crs'] = {crs_in!r} is not a CRS pyproj understands; use e.g. 'EPSG:4547'"
        ) from exc
    if crs.is_geographic:
        ell = crs.ellipsoid
        a = ell.semi_major_metre
        inv_f = ell.inverse_flattening
        e2 = 0.0 if not inv_f else (2.0 - 1.0 / inv_f) / inv_f
        phi = np.deg2rad(rows)
        w = 1.0 - e2 * np.sin(phi) ** 2
        n_rad = a / np.sqrt(w)
        m_rad = a * (1.0 - e2) / w**1.5
        dx_row = math.radians(dx) * n_rad * np.cos(phi)
        dy_row = math.radians(dy) * m_rad
        return dx_row.astype(np.float64), dy_row.astype(np.float64)
    factor = 1.0
    if crs.axis_info:
        factor = float(crs.axis_info[0].unit_conversion_factor or 1.0)
    return np.full(ny, dx * factor), np.full(ny, dy * factor)


def _masked_values(da: xr.DataArray) -> np.ndarray:
    """Elevations as a C-contiguous float64 copy with nodata turned into NaN."""
    z = np.array(da.values, dtype=np.float64, order="C", copy=True)
    nodata = da.attrs.get("nodata")
    if nodata is not None and not (isinstance(nodata, float) and math.isnan(nodata)):
        z[z == float(nodata)] = np.nan
    return z


def _wrap(
    da: xr.DataArray, values: np.ndarray, units: str, long_name: str, nodata: Any
) -> xr.DataArray:
    attrs = dict(da.attrs)
    attrs.update(units=units, long_name=long_name, nodata=nodata)
    return xr.DataArray(
        values, coords=da.coords, dims=da.dims, attrs=attrs, name=long_name.replace(" ", "_")
    )


def _as_bool_grid(mask: Any, shape: tuple[int, int], name: str) -> np.ndarray:
    arr = np.asarray(mask.values if isinstance(mask, xr.DataArray) else mask)
    if arr.shape != shape:
        raise GridError(
            f"{name} has shape {arr.shape} but the DEM has shape {shape}; pass a mask on the DEM grid"
        )
    if arr.dtype != np.bool_:
        if arr.dtype.kind not in "iuf" or not np.isin(arr, (0, 1)).all():
            raise ValidationError(
                f"{name} must be boolean (or 0/1), got dtype {arr.dtype} with other values"
            )
        arr = arr == 1
    return np.ascontiguousarray(arr, dtype=np.bool_)


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------
def _edge_flag(edges: str) -> bool:
    if edges not in ("replicate", "extrapolate"):
        raise ValidationError(f"edges must be 'replicate' or 'extrapolate', got {edges!r}")
    return edges == "extrapolate"


def _slope_aspect(dem: xr.DataArray, z_factor: float, edges: str) -> tuple[np.ndarray, np.ndarray]:
    extrapolate = _edge_flag(edges)
    _check_grid(dem, "dem")
    dx_row, dy_row = cell_sizes_m(dem)
    z = _masked_values(dem)
    s = np.empty_like(z)
    a = np.empty_like(z)
    _k.slope_aspect(z, dx_row, dy_row, float(z_factor), extrapolate, s, a)
    return s, a


def slope(dem: xr.DataArray, *, z_factor: float = 1.0, edges: Edges = "replicate") -> xr.DataArray:
    """Slope in degrees by Horn's (1981) 3x3 method, as GDAL ``gdaldem slope``.

    ``slope = atan(z_factor * sqrt(p^2 + q^2))`` with p, q Horn's east and
    north gradients (see :func:`gis._kernels.terrain.slope_aspect`). Cells
    outside the grid follow ``edges``; a nodata neighbour takes the centre
    cell's value.

    Parameters
    ----------
    dem : xarray.DataArray
        Elevation (m) on a ("y", "x") grid.
    z_factor : float
        Multiplier of elevation differences (1 when elevations and cell sizes
        are both metres).
    edges : {"replicate", "extrapolate"}
        Values outside the grid: copies of the edge cells (default, as the
        brief and GDAL) or a linear extrapolation (exact slope on planes
        up to the edge).

    Returns
    -------
    xarray.DataArray
        float64 slope in [0, 90) degrees, NaN on nodata.
    """
    s, _ = _slope_aspect(dem, z_factor, edges)
    return _wrap(dem, s, "degree", "slope", float("nan"))


def aspect(dem: xr.DataArray, *, edges: Edges = "replicate") -> xr.DataArray:
    """Aspect: downslope direction in degrees clockwise from north, flat = -1.

    ``aspect = atan2(-p, -q)`` mod 360 with Horn's east (p) and north (q)
    gradients, as GDAL ``gdaldem aspect``: 0 = facing north, 90 = east,
    180 = south, 270 = west; -1 where the gradient is exactly zero.

    Parameters
    ----------
    dem : xarray.DataArray
        Elevation on a ("y", "x") grid.
    edges : {"replicate", "extrapolate"}
        Values outside the grid (see :func:`slope`).

    Returns
    -------
    xarray.DataArray
        float64 aspect in [0, 360) or -1, NaN on nodata.
    """
    _, a = _slope_aspect(dem, 1.0, edges)
    return _wrap(dem, a, "degree", "aspect", float("nan"))


def hillshade(
    dem: xr.DataArray,
    *,
    azimuth: float = 315.0,
    altitude: float = 45.0,
    z_factor: float = 1.0,
    dtype: Literal["uint8", "float"] = "uint8",
    edges: Edges = "replicate",
) -> xr.DataArray:
    """Hillshade (Lambertian reflectance of a sun at ``azimuth``/``altitude``).

    ``shade = cos(zenith) cos(slope) + sin(zenith) sin(slope) cos(azimuth - aspect)``
    clipped to [0, 1], zenith = 90 - altitude, slope and aspect from Horn's
    gradient times ``z_factor``.

    Parameters
    ----------
    dem : xarray.DataArray
        Elevation on a ("y", "x") grid.
    azimuth : float
        Sun bearing, degrees clockwise from north (default 315, north-west).
    altitude : float
        Sun elevation above the horizon, degrees in [0, 90] (default 45).
    z_factor : float
        Vertical exaggeration.
    dtype : {"uint8", "float"}
        "uint8": ``1 + round(254 * shade)`` in 1..255 with 0 = nodata (the
        GDAL ``gdaldem hillshade`` convention); "float": shade in [0, 1],
        NaN = nodata.
    edges : {"replicate", "extrapolate"}
        Values outside the grid (see :func:`slope`).

    Returns
    -------
    xarray.DataArray
    """
    if dtype not in ("uint8", "float"):
        raise ValidationError(f"hillshade dtype must be 'uint8' or 'float', got {dtype!r}")
    if not 0.0 <= float(altitude) <= 90.0:
        raise ValidationError(f"hillshade altitude must be within [0, 90] degrees, got {altitude}")
    extrapolate = _edge_flag(edges)
    _check_grid(dem, "dem")
    dx_row, dy_row = cell_sizes_m(dem)
    z = _masked_values(dem)
    out = np.empty_like(z)
    _k.hillshade(
        z, dx_row, dy_row, float(azimuth), float(altitude), float(z_factor), extrapolate, out
    )
    if dtype == "float":
        return _wrap(dem, out, "1", "hillshade", float("nan"))
    u8 = np.zeros(out.shape, dtype=np.uint8)
    ok = ~np.isnan(out)
    u8[ok] = (1.0 + np.rint(254.0 * out[ok])).astype(np.uint8)
    return _wrap(dem, u8, "1", "hillshade", 0)


def fill_depressions(
    dem: xr.DataArray,
    *,
    epsilon: float | None = None,
    outlets: Any = None,
) -> xr.DataArray:
    """Fill depressions by Priority-Flood (Barnes, Lehman & Mulla 2014).

    Water leaves the grid at its edges, at cells next to nodata, and at
    ``outlets`` cells (e.g. a sea mask), which keep their elevations. Every
    other cell is raised to the lowest level at which it can spill to an
    outlet.

    Parameters
    ----------
    dem : xarray.DataArray
        Elevation on a ("y", "x") grid.
    epsilon : float or None
        None (default): filled depressions are flat at their spill level.
        A number >= 0: each filled cell is raised ``epsilon`` (elevation
        units) above the neighbour it drains to, so filled flats drain
        towards the spill point; 0 means the smallest float64 step
        (``numpy.nextafter``). Filled cells then exceed the spill level by
        at most (cells in the depression) x epsilon.
    outlets : bool array_like or DataArray, optional
        Cells that act as outlets (True = sea / open water).

    Returns
    -------
    xarray.DataArray
        float64 filled elevation, NaN on nodata.

    References
    ----------
    Barnes, R., Lehman, C., Mulla, D. (2014). Priority-flood: An optimal
    depression-filling and watershed-labeling algorithm for digital
    elevation models. Computers & Geosciences 62:117-127.
    """
    _check_grid(dem, "dem")
    if epsilon is not None and (not np.isfinite(epsilon) or epsilon < 0):
        raise ValidationError(f"epsilon must be None or a finite number >= 0, got {epsilon}")
    z = _masked_values(dem)
    if outlets is None:
        mask = np.zeros(z.shape, dtype=np.bool_)
    else:
        mask = _as_bool_grid(outlets, z.shape, "outlets")
    out = np.empty_like(z)
    _k.priority_flood(z, mask, float(epsilon or 0.0), epsilon is not None, out)
    units = dem.attrs.get("units", "m")
    return _wrap(dem, out, units, "filled elevation", float("nan"))


def flow_direction(dem: xr.DataArray) -> xr.DataArray:
    """D8 flow direction (ESRI codes) by steepest distance-weighted drop.

    Codes: 1 E, 2 SE, 4 S, 8 SW, 16 W, 32 NW, 64 N, 128 NE; 0 where no
    neighbour is lower (pits, flats, and outlets on the edge or next to
    nodata); 255 on nodata. Drops are (z_c - z_n) / L with L = dx, dy or
    sqrt(dx^2 + dy^2) in metres. Run :func:`fill_depressions` with
    ``epsilon`` first to leave 0 only at outlets.

    Parameters
    ----------
    dem : xarray.DataArray
        Elevation on a ("y", "x") grid.

    Returns
    -------
    xarray.DataArray
        uint8 D8 codes (attrs nodata 255).
    """
    _check_grid(dem, "dem")
    dx_row, dy_row = cell_sizes_m(dem)
    z = _masked_values(dem)
    out = np.empty(z.shape, dtype=np.uint8)
    _k.d8_flowdir(z, dx_row, dy_row, out)
    return _wrap(dem, out, "1", "D8 flow direction", D8_NODATA)


def flow_accumulation(fdir: xr.DataArray, *, weights: Any = None) -> xr.DataArray:
    """D8 flow accumulation: cells (or weight) draining through each cell, itself included.

    ``acc[c] = w[c] + sum(acc[u] for u with fdir[u] pointing at c)``, computed in
    O(n) in topological order (in-degree queue). A cell whose code is 0 or
    points off the grid or at nodata is terminal (an outlet); the sum of
    ``acc`` over terminal cells equals the total weight.

    Parameters
    ----------
    fdir : xarray.DataArray
        uint8 ESRI D8 codes from :func:`flow_direction` (255 = nodata).
    weights : array_like or DataArray, optional
        Contribution of each cell (e.g. rainfall excess); default 1 per cell,
        giving the number of upstream cells including the cell itself.

    Returns
    -------
    xarray.DataArray
        float64 accumulation, NaN on nodata; units "cells" without weights.

    Raises
    ------
    ValidationError
        Unknown codes, NaN weights on valid cells, or a cycle in ``fdir``.
    """
    _check_grid(fdir, "fdir")
    codes = np.ascontiguousarray(fdir.values)
    allowed = np.array((0, *D8_CODES, D8_NODATA))
    if not np.isin(codes, allowed).all():
        bad = np.unique(codes[~np.isin(codes, allowed)])[:5]
        raise ValidationError(
            f"fdir holds values {bad.tolist()} that are not ESRI D8 codes "
            f"(0, 1, 2, 4, ..., 128, nodata 255); compute it with gis.terrain.flow_direction"
        )
    codes = codes.astype(np.uint8)
    valid = codes != D8_NODATA
    if weights is None:
        w = np.ones(codes.shape, dtype=np.float64)
        units = "cells"
    else:
        w = np.array(
            weights.values if isinstance(weights, xr.DataArray) else weights, dtype=np.float64
        )
        if w.shape != codes.shape:
            raise GridError(f"weights has shape {w.shape} but fdir has shape {codes.shape}")
        if np.isnan(w[valid]).any():
            raise ValidationError(
                "weights are NaN on some valid cells; fill them (e.g. with 0) first"
            )
        w = np.ascontiguousarray(w)
        units = (
            getattr(weights, "attrs", {}).get("units", "1")
            if isinstance(weights, xr.DataArray)
            else "1"
        )
    out = np.empty(codes.shape, dtype=np.float64)
    done = _k.d8_accumulation(codes, w, out)
    n_valid = int(valid.sum())
    if done < n_valid:
        raise ValidationError(
            f"fdir contains a cycle: {n_valid - done} cells never reach an outlet; "
            f"flow directions must come from a DEM (gis.terrain.flow_direction)"
        )
    return _wrap(fdir, out, units, "D8 flow accumulation", float("nan"))
