"""Chinese map offsets: GCJ-02 and BD-09 to and from WGS 84.

GCJ-02 ("Mars coordinates") is the obfuscated datum that Chinese law requires
of public map data (Amap/Gaode, Tencent, Google Maps China); BD-09 is Baidu's
further offset of GCJ-02. Neither is a CRS that pyproj knows: both are
closed-form perturbations of WGS 84 longitude/latitude, reproduced here from
the public formulas. Every function works on scalars or numpy arrays (any
shape, broadcast together) and takes and returns **(lon, lat)** in degrees.

Forward GCJ-02 (the public "eviltransform" formula)
---------------------------------------------------
With x = lon - 105, y = lat - 35 (degrees)::

    T_lat = -100 + 2x + 3y + 0.2y^2 + 0.1xy + 0.2 sqrt|x|
            + 2/3 [20 sin(6 pi x) + 20 sin(2 pi x)]
            + 2/3 [20 sin(pi y) + 40 sin(pi y / 3)]
            + 2/3 [160 sin(pi y / 12) + 320 sin(pi y / 30)]
    T_lon = 300 + x + 2y + 0.1x^2 + 0.1xy + 0.1 sqrt|x|
            + 2/3 [20 sin(6 pi x) + 20 sin(2 pi x)]
            + 2/3 [20 sin(pi x) + 40 sin(pi x / 3)]
            + 2/3 [150 sin(pi x / 12) + 300 sin(pi x / 30)]

T_lat and T_lon are metres on the Krasovsky 1940 ellipsoid (a = 6378245.0 m,
e^2 = 0.00669342162296594323); with w = 1 - e^2 sin^2(lat)::

    dlat = T_lat * 180 / (pi * a (1 - e^2) / w^1.5)   (meridian radius M)
    dlon = T_lon * 180 / (pi * a / sqrt(w) * cos(lat)) (parallel radius N cos)

GCJ-02 = WGS 84 + (dlon, dlat). Points outside the rectangle
lon 72.004-137.8347 E, lat 0.8293-55.8271 N (the rectangle eviltransform
uses; it covers mainland China but also neighbouring countries) are
returned unchanged, as Chinese map providers do.

BD-09 (canonical form, x_pi = pi * 3000 / 180)
----------------------------------------------
From GCJ-02 (x = lon, y = lat)::

    z     = sqrt(x^2 + y^2) + 2e-5 sin(y x_pi)
    theta = atan2(y, x)     + 3e-6 cos(x x_pi)
    BD-09 = (z cos(theta) + 0.0065, z sin(theta) + 0.006)

BD-09 is applied everywhere (no rectangle), as Baidu does.

Inverses
--------
The published inverses are approximations good to a few metres. Here each
inverse is the exact inverse of its forward formula, found by fixed-point
iteration p <- p + (target - forward(p)) starting from target (for BD-09,
from the published approximate inverse). The forward maps differ from the
identity by a slowly varying offset whose Jacobian is ~1e-4, so the iteration
contracts by ~1e-4 per step; it stops when the largest change is below
1e-12 degrees or after 30 iterations. Round trips agree to better than
1e-9 degrees (1e-4 m).

References
----------
googollee/eviltransform (public formula and its test vectors); WGS 84
(22.543847 N, 113.912316 E) -> GCJ-02 (22.540796131694766 N,
113.9171764808363 E).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import shapely

from twin.errors import CRSError, ValidationError

__all__ = [
    "CHINA_RECT",
    "bd09_to_gcj02",
    "bd09_to_wgs84",
    "frame_gcj02_to_wgs84",
    "gcj02_offset_m",
    "gcj02_to_bd09",
    "gcj02_to_wgs84",
    "geometry_gcj02_to_wgs84",
    "in_china",
    "wgs84_to_bd09",
    "wgs84_to_gcj02",
]

#: Krasovsky 1940 semi-major axis (m) and squared eccentricity used by GCJ-02.
KRASOVSKY_A = 6378245.0
KRASOVSKY_EE = 0.00669342162296594323

#: The rectangle (lon_min, lat_min, lon_max, lat_max) inside which GCJ-02
#: shifts points (eviltransform's ``outOfChina`` test, inclusive bounds).
CHINA_RECT = (72.004, 0.8293, 137.8347, 55.8271)

#: Baidu's constant.
X_PI = np.pi * 3000.0 / 180.0

#: WGS 84 ellipsoid, used only to turn the GCJ-02 shift into metres.
_WGS84_A = 6378137.0
_WGS84_EE = 0.0066943799901413165

_TOL_DEG = 1e-12
_MAX_ITER = 30


def _as_arrays(lon: Any, lat: Any) -> tuple[np.ndarray, np.ndarray, bool]:
    lon_a = np.asarray(lon, dtype=np.float64)
    lat_a = np.asarray(lat, dtype=np.float64)
    try:
        lon_a, lat_a = np.broadcast_arrays(lon_a, lat_a)
    except ValueError as exc:
        raise ValidationError(
            f"lon and lat cannot be broadcast together: shapes {lon_a.shape} and "
            f"{lat_a.shape}; pass arrays of the same shape"
        ) from exc
    scalar = lon_a.ndim == 0
    return lon_a, lat_a, scalar


def _out(lon: np.ndarray, lat: np.ndarray, scalar: bool) -> tuple[Any, Any]:
    if scalar:
        return float(lon), float(lat)
    return lon, lat


def in_china(lon: Any, lat: Any) -> Any:
    """True where (lon, lat) lies inside :data:`CHINA_RECT` (where GCJ-02 applies).

    Parameters
    ----------
    lon, lat : float or array_like
        Longitude and latitude (degrees).

    Returns
    -------
    bool or numpy.ndarray of bool
    """
    lon_a, lat_a, scalar = _as_arrays(lon, lat)
    lo0, la0, lo1, la1 = CHINA_RECT
    inside = (lon_a >= lo0) & (lon_a <= lo1) & (lat_a >= la0) & (lat_a <= la1)
    return bool(inside) if scalar else inside


def _gcj_delta(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 shift (dlon, dlat) in degrees at WGS 84 (lon, lat), no rectangle test."""
    x = lon - 105.0
    y = lat - 35.0
    xpi = x * np.pi
    ypi = y * np.pi
    common = 20.0 * np.sin(6.0 * xpi) + 20.0 * np.sin(2.0 * xpi)
    t_lat = common + 20.0 * np.sin(ypi) + 40.0 * np.sin(ypi / 3.0)
    t_lon = common + 20.0 * np.sin(xpi) + 40.0 * np.sin(xpi / 3.0)
    t_lat = t_lat + 160.0 * np.sin(ypi / 12.0) + 320.0 * np.sin(ypi / 30.0)
    t_lon = t_lon + 150.0 * np.sin(xpi / 12.0) + 300.0 * np.sin(xpi / 30.0)
    t_lat = t_lat * (2.0 / 3.0)
    t_lon = t_lon * (2.0 / 3.0)
    sqrt_abs_x = np.sqrt(np.abs(x))
    t_lat = t_lat + (-100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sqrt_abs_x)
    t_lon = t_lon + (300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sqrt_abs_x)
    rad_lat = np.deg2rad(lat)
    magic = 1.0 - KRASOVSKY_EE * np.sin(rad_lat) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = (t_lat * 180.0) / ((KRASOVSKY_A * (1.0 - KRASOVSKY_EE)) / (magic * sqrt_magic) * np.pi)
    dlon = (t_lon * 180.0) / (KRASOVSKY_A / sqrt_magic * np.cos(rad_lat) * np.pi)
    return dlon, dlat


def _wgs_to_gcj(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    dlon, dlat = _gcj_delta(lon, lat)
    lo0, la0, lo1, la1 = CHINA_RECT
    inside = (lon >= lo0) & (lon <= lo1) & (lat >= la0) & (lat <= la1)
    return np.where(inside, lon + dlon, lon), np.where(inside, lat + dlat, lat)


def _invert(
    forward: Any, tlon: np.ndarray, tlat: np.ndarray, lon0: np.ndarray, lat0: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Solve forward(p) = target by fixed-point iteration from (lon0, lat0)."""
    lon = lon0.copy()
    lat = lat0.copy()
    for _ in range(_MAX_ITER):
        flon, flat = forward(lon, lat)
        clon = tlon - flon
        clat = tlat - flat
        lon = lon + clon
        lat = lat + clat
        with np.errstate(invalid="ignore"):
            change = np.nanmax(np.abs(np.concatenate([clon.ravel(), clat.ravel()])), initial=0.0)
        if change < _TOL_DEG:
            break
    return lon, lat


def wgs84_to_gcj02(lon: Any, lat: Any) -> tuple[Any, Any]:
    """WGS 84 -> GCJ-02 (degrees; unchanged outside :data:`CHINA_RECT`).

    Parameters
    ----------
    lon, lat : float or array_like
        WGS 84 longitude and latitude (degrees).

    Returns
    -------
    (lon, lat) : floats or numpy.ndarray
        GCJ-02 longitude and latitude (degrees).

    Examples
    --------
    >>> lon, lat = wgs84_to_gcj02(113.912316, 22.543847)
    >>> round(lon, 9), round(lat, 9)
    (113.917176481, 22.540796132)
    """
    lon_a, lat_a, scalar = _as_arrays(lon, lat)
    glon, glat = _wgs_to_gcj(lon_a, lat_a)
    return _out(glon, glat, scalar)


def gcj02_to_wgs84(lon: Any, lat: Any) -> tuple[Any, Any]:
    """GCJ-02 -> WGS 84, the exact inverse of :func:`wgs84_to_gcj02` (iterative).

    Points whose GCJ-02 position lies outside :data:`CHINA_RECT` are
    returned unchanged (a point within ~1 km inside the rectangle's edge may
    then differ from a strict inverse; there is no Chinese territory there).

    Parameters
    ----------
    lon, lat : float or array_like
        GCJ-02 longitude and latitude (degrees).

    Returns
    -------
    (lon, lat) : floats or numpy.ndarray
        WGS 84 longitude and latitude (degrees).
    """
    lon_a, lat_a, scalar = _as_arrays(lon, lat)
    inside = np.asarray(in_china(lon_a, lat_a))
    wlon, wlat = _invert(_wgs_to_gcj, lon_a, lat_a, lon_a, lat_a)
    wlon = np.where(inside, wlon, lon_a)
    wlat = np.where(inside, wlat, lat_a)
    return _out(wlon, wlat, scalar)


def _gcj_to_bd(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    z = np.hypot(lon, lat) + 0.00002 * np.sin(lat * X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def gcj02_to_bd09(lon: Any, lat: Any) -> tuple[Any, Any]:
    """GCJ-02 -> BD-09 (canonical x_pi = pi*3000/180 form; degrees).

    Parameters
    ----------
    lon, lat : float or array_like
        GCJ-02 longitude and latitude (degrees).

    Returns
    -------
    (lon, lat) : floats or numpy.ndarray
        BD-09 longitude and latitude (degrees).
    """
    lon_a, lat_a, scalar = _as_arrays(lon, lat)
    blon, blat = _gcj_to_bd(lon_a, lat_a)
    return _out(blon, blat, scalar)


def bd09_to_gcj02(lon: Any, lat: Any) -> tuple[Any, Any]:
    """BD-09 -> GCJ-02, the exact inverse of :func:`gcj02_to_bd09` (iterative).

    Starts from Baidu's published approximate inverse
    (x = lon - 0.0065, y = lat - 0.006, z = |(x, y)| - 2e-5 sin(y x_pi),
    theta = atan2(y, x) - 3e-6 cos(x x_pi)) and refines it by fixed-point
    iteration.

    Parameters
    ----------
    lon, lat : float or array_like
        BD-09 longitude and latitude (degrees).

    Returns
    -------
    (lon, lat) : floats or numpy.ndarray
        GCJ-02 longitude and latitude (degrees).
    """
    lon_a, lat_a, scalar = _as_arrays(lon, lat)
    x = lon_a - 0.0065
    y = lat_a - 0.006
    z = np.hypot(x, y) - 0.00002 * np.sin(y * X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * X_PI)
    glon, glat = _invert(_gcj_to_bd, lon_a, lat_a, z * np.cos(theta), z * np.sin(theta))
    return _out(glon, glat, scalar)


def wgs84_to_bd09(lon: Any, lat: Any) -> tuple[Any, Any]:
    """WGS 84 -> BD-09 (via GCJ-02; degrees)."""
    glon, glat = wgs84_to_gcj02(lon, lat)
    return gcj02_to_bd09(glon, glat)


def bd09_to_wgs84(lon: Any, lat: Any) -> tuple[Any, Any]:
    """BD-09 -> WGS 84 (via GCJ-02, both steps exact inverses; degrees)."""
    glon, glat = bd09_to_gcj02(lon, lat)
    return gcj02_to_wgs84(glon, glat)


def gcj02_offset_m(lon: Any, lat: Any) -> tuple[Any, Any]:
    """Local GCJ-02 shift in metres at a WGS 84 position.

    ``east_m = dlon_rad * N cos(lat)`` and ``north_m = dlat_rad * M`` with
    (dlon, dlat) = GCJ-02 - WGS 84 and N, M the WGS 84 prime-vertical and
    meridian radii of curvature at ``lat``. Zero outside :data:`CHINA_RECT`.
    In Shenzhen the shift is about 500 m east and 300-340 m south.

    Parameters
    ----------
    lon, lat : float or array_like
        WGS 84 longitude and latitude (degrees).

    Returns
    -------
    (east_m, north_m) : floats or numpy.ndarray
        How far GCJ-02 places the point east and north of its true position (m).
    """
    lon_a, lat_a, scalar = _as_arrays(lon, lat)
    glon, glat = _wgs_to_gcj(lon_a, lat_a)
    phi = np.deg2rad(lat_a)
    w = 1.0 - _WGS84_EE * np.sin(phi) ** 2
    n_rad = _WGS84_A / np.sqrt(w)
    m_rad = _WGS84_A * (1.0 - _WGS84_EE) / w**1.5
    east = np.deg2rad(glon - lon_a) * n_rad * np.cos(phi)
    north = np.deg2rad(glat - lat_a) * m_rad
    return _out(east, north, scalar)


def _coords_gcj_to_wgs(coords: np.ndarray) -> np.ndarray:
    out = np.array(coords, dtype=np.float64, copy=True)
    if out.shape[0] == 0:
        return out
    lon, lat = gcj02_to_wgs84(out[:, 0], out[:, 1])
    out[:, 0] = lon
    out[:, 1] = lat
    return out


def _transform_geoms(geom: Any) -> Any:
    # include_z=None keeps each geometry's own dimensionality (shapely >= 2.1);
    # the z column, when present, is passed through untouched.
    try:
        return shapely.transform(geom, _coords_gcj_to_wgs, include_z=None)
    except (TypeError, ValueError):  # shapely 2.0: no include_z=None
        return shapely.transform(geom, _coords_gcj_to_wgs, include_z=False)


def geometry_gcj02_to_wgs84(geom: Any) -> Any:
    """Move shapely geometries from GCJ-02 lon/lat to WGS 84 lon/lat.

    Parameters
    ----------
    geom : shapely.Geometry or array_like of geometries
        Geometries with x = GCJ-02 longitude, y = GCJ-02 latitude (degrees).
        Z values, where present, are kept.

    Returns
    -------
    shapely.Geometry or numpy.ndarray of geometries
        The same geometries with every vertex moved by :func:`gcj02_to_wgs84`.
    """
    return _transform_geoms(geom)


def frame_gcj02_to_wgs84(gdf: Any) -> Any:
    """Return a copy of a GeoDataFrame with its geometry moved from GCJ-02 to WGS 84.

    Parameters
    ----------
    gdf : geopandas.GeoDataFrame
        Geometry in GCJ-02 lon/lat. Its ``crs`` must be unset or geographic
        (EPSG:4326 or EPSG:4490 as map providers label GCJ-02 data); a
        projected CRS raises :class:`twin.errors.CRSError`.

    Returns
    -------
    geopandas.GeoDataFrame
        A copy with WGS 84 geometry and ``crs`` EPSG:4326.

    Raises
    ------
    CRSError
        If the frame's CRS is not geographic.
    """
    crs = getattr(gdf, "crs", None)
    if crs is not None and not crs.is_geographic:
        raise CRSError(
            f"frame_gcj02_to_wgs84 needs lon/lat geometry, but the frame's crs is "
            f"{crs.to_string()!r}; GCJ-02 is defined on longitude/latitude: reproject "
            f"to EPSG:4326 first or pass data as delivered by the map provider"
        )
    import geopandas as gpd

    out = gdf.copy()
    name = out.geometry.name
    moved = _transform_geoms(np.asarray(out.geometry.values, dtype=object))
    out[name] = gpd.GeoSeries(moved, index=out.index, crs="EPSG:4326")
    return out.set_crs("EPSG:4326", allow_override=True)
