"""Coordinate reference systems the engine knows, and the city's working CRS.

Registry
--------
========== ==========================================================
EPSG:4326  WGS 84 geographic (GPS, OpenStreetMap, SRTM, GSHHG)
EPSG:4490  CGCS2000 geographic (China's national datum; within ~5 cm
           of WGS 84 for mapping purposes, so no datum shift is applied)
EPSG:32650 WGS 84 / UTM zone 50N (central meridian 117 E)
EPSG:4547  CGCS2000 / 3-degree Gauss-Kruger CM 114E (axis order
           north, east in its definition; this module always uses
           x=east, y=north via ``always_xy=True``)
EPSG:3857  Web Mercator (only for drawing on web maps)
========== ==========================================================

GCJ-02 and BD-09 are not CRSs but obfuscating offsets applied to WGS 84
coordinates in Chinese commercial map data; :mod:`gis.coords` removes them.

Working CRS for Shenzhen: EPSG:4547
-----------------------------------
Shenzhen spans 113.75-114.65 E. The 3-degree Gauss-Kruger zone with central
meridian 114 E runs through the city, so the point scale factor
k = 1 + (dlon * cos(lat))**2 / 2 stays below 1 + 5.5e-5 (55 ppm, 0.011 %
in area) everywhere in it. UTM 50N (CM 117 E, k0 = 0.9996) is 2.35-3.25
degrees away: k runs from 1.0003 in the east to 1.0010 in the west of the
city (up to 0.2 % in area, about 4 km² on the city's 2,138 km²); see
``scale_factor`` and tests/gis/test_crs.py. EPSG:4547 is also the national
CGCS2000 grid used by Chinese surveying and planning data, so city layers
delivered in it need no reprojection. Metres on both axes; x east, y north.
"""

from __future__ import annotations

from functools import lru_cache

from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError as _PyprojCRSError

from twin.errors import CRSError

WGS84 = "EPSG:4326"
CGCS2000 = "EPSG:4490"
UTM50N = "EPSG:32650"
CGCS2000_GK_114E = "EPSG:4547"
WEB_MERCATOR = "EPSG:3857"

#: The metric CRS every grid of the Shenzhen twin lives on.
WORKING_CRS = CGCS2000_GK_114E

REGISTRY: dict[str, str] = {
    "wgs84": WGS84,
    "cgcs2000": CGCS2000,
    "utm50n": UTM50N,
    "cgcs2000_gk_114e": CGCS2000_GK_114E,
    "web_mercator": WEB_MERCATOR,
}

#: Offsets used by Chinese map providers on top of WGS 84 (see gis.coords).
OFFSET_DATUMS = ("gcj02", "bd09")


@lru_cache(maxsize=64)
def get_crs(spec: str | int) -> CRS:
    """A pyproj CRS from a registry name ('wgs84', 'utm50n', ...), 'EPSG:n', an int or WKT."""
    if isinstance(spec, str) and spec.lower() in REGISTRY:
        spec = REGISTRY[spec.lower()]
    try:
        return CRS.from_user_input(spec)
    except _PyprojCRSError as err:
        raise CRSError(
            f"unknown CRS {spec!r}: give an EPSG code such as 'EPSG:4547', WKT, "
            f"or one of {sorted(REGISTRY)}"
        ) from err


def crs_string(spec) -> str:
    """The shortest faithful string for a CRS: 'EPSG:n' when it has one, else WKT."""
    crs = spec if isinstance(spec, CRS) else get_crs(spec)
    code = crs.to_epsg(min_confidence=90)
    return f"EPSG:{code}" if code else crs.to_wkt()


@lru_cache(maxsize=64)
def transformer(src: str, dst: str) -> Transformer:
    """A cached x=east/lon, y=north/lat transformer between two CRSs."""
    return Transformer.from_crs(get_crs(src), get_crs(dst), always_xy=True)


def is_metric(spec) -> bool:
    """True when the CRS is projected with metre units on both axes."""
    crs = get_crs(spec) if not isinstance(spec, CRS) else spec
    return crs.is_projected and all(
        (a.unit_name or "").lower() in ("metre", "meter") for a in crs.axis_info
    )


def scale_factor(lon: float, lat: float, spec=WORKING_CRS) -> float:
    """Point scale factor of a projected CRS at (lon, lat) (pyproj's meridian x parallel scale)."""
    from pyproj import Proj

    f = Proj(get_crs(spec)).get_factors(lon, lat)
    return float(f.meridional_scale)
