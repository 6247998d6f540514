"""CRS registry and the working CRS."""

import pytest

from gis.crs import (
    CGCS2000_GK_114E,
    UTM50N,
    WORKING_CRS,
    crs_string,
    get_crs,
    is_metric,
    scale_factor,
    transformer,
)
from twin.errors import CRSError


def test_registry_names_resolve():
    assert crs_string("wgs84") == "EPSG:4326"
    assert crs_string("cgcs2000") == "EPSG:4490"
    assert crs_string("utm50n") == "EPSG:32650"
    assert crs_string("cgcs2000_gk_114e") == "EPSG:4547"


def test_unknown_crs_names_the_value():
    with pytest.raises(CRSError, match="EPSG:999999"):
        get_crs("EPSG:999999")


def test_epsg4547_published_point():
    """(114.0579 E, 22.5431 N) -> E 505955.846, N 2493941.246 in EPSG:4547.

    EPSG:4547 as the EPSG Geodetic Parameter Dataset defines it (Transverse Mercator, method
    9807 of IOGP Guidance Note 7-2 §3.5.3: CM 114° E, k0 = 1, FE 500 000 m, CGCS2000 ellipsoid).
    """
    x, y = transformer("EPSG:4490", CGCS2000_GK_114E).transform(114.0579, 22.5431)
    assert x == pytest.approx(505955.846, abs=0.01)
    assert y == pytest.approx(2493941.246, abs=0.01)


def test_working_crs_is_metric_and_least_distorted():
    """The docstring's justification: GK 114E distorts < 60 ppm over the city, UTM 50N up to ~1000 ppm."""
    assert is_metric(WORKING_CRS) and not is_metric("EPSG:4326")
    for lon in (113.75, 114.0, 114.65):
        assert abs(scale_factor(lon, 22.6, WORKING_CRS) - 1) < 6e-5
    assert scale_factor(113.75, 22.6, UTM50N) - 1 > 9e-4
