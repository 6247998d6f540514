"""Tests for gis.coords (GCJ-02 / BD-09 offsets)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from gis import coords
from twin.errors import CRSError

# Points spread over mainland China (the rectangle's interior, away from its edges).
china_lon = st.floats(min_value=73.5, max_value=135.0, allow_nan=False)
china_lat = st.floats(min_value=18.0, max_value=53.5, allow_nan=False)


def test_published_vector_shenzhen():
    # Source: the eviltransform test vector (github.com/googollee/eviltransform,
    # go/transform_test.go, Shenzhen row) WGS84 (22.543847, 113.912316) ->
    # GCJ-02 (22.540796131694766, 113.9171764808363).
    lon, lat = coords.wgs84_to_gcj02(113.912316, 22.543847)
    assert isinstance(lon, float) and isinstance(lat, float)
    assert abs(lat - 22.540796131694766) < 1e-9
    assert abs(lon - 113.9171764808363) < 1e-9


def test_published_vector_inverse():
    lon, lat = coords.gcj02_to_wgs84(113.9171764808363, 22.540796131694766)
    assert abs(lat - 22.543847) < 1e-9
    assert abs(lon - 113.912316) < 1e-9


@settings(max_examples=300, deadline=None)
@given(china_lon, china_lat)
def test_gcj02_round_trip(lon, lat):
    glon, glat = coords.wgs84_to_gcj02(lon, lat)
    assert (glon, glat) != (lon, lat)  # really shifted inside China
    wlon, wlat = coords.gcj02_to_wgs84(glon, glat)
    assert abs(wlon - lon) < 1e-7 and abs(wlat - lat) < 1e-7


@settings(max_examples=300, deadline=None)
@given(china_lon, china_lat)
def test_bd09_round_trips(lon, lat):
    blon, blat = coords.gcj02_to_bd09(lon, lat)
    glon, glat = coords.bd09_to_gcj02(blon, blat)
    assert abs(glon - lon) < 1e-7 and abs(glat - lat) < 1e-7
    blon, blat = coords.wgs84_to_bd09(lon, lat)
    wlon, wlat = coords.bd09_to_wgs84(blon, blat)
    assert abs(wlon - lon) < 1e-7 and abs(wlat - lat) < 1e-7


def test_bd09_is_the_canonical_form():
    # Canonical x_pi = pi*3000/180 form, evaluated by hand at one point.
    x, y = 114.0, 22.5
    x_pi = np.pi * 3000.0 / 180.0
    z = np.hypot(x, y) + 0.00002 * np.sin(y * x_pi)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * x_pi)
    blon, blat = coords.gcj02_to_bd09(x, y)
    assert blon == pytest.approx(z * np.cos(theta) + 0.0065, abs=1e-12)
    assert blat == pytest.approx(z * np.sin(theta) + 0.006, abs=1e-12)


@pytest.mark.parametrize(
    "lon, lat",
    [(2.3522, 48.8566), (-74.006, 40.7128), (139.6917, 35.6895), (151.2, -33.87), (100.0, -5.0)],
)
def test_outside_china_unchanged(lon, lat):
    # Paris, New York, Tokyo (east of 137.8347 E), Sydney, south of 0.8293 N.
    assert coords.wgs84_to_gcj02(lon, lat) == (lon, lat)
    assert coords.gcj02_to_wgs84(lon, lat) == (lon, lat)
    assert coords.gcj02_offset_m(lon, lat) == (0.0, 0.0)


def test_offset_near_shenzhen_is_hundreds_of_metres():
    # Futian, Shenzhen: GCJ-02 places points ~525 m east and ~303 m south of
    # the true position (the data README quotes ~500 m east / ~340 m south).
    east, north = coords.gcj02_offset_m(114.05, 22.55)
    assert 450.0 < east < 600.0
    assert -380.0 < north < -250.0
    # Consistent with the degree difference at the test vector (~600 m total).
    e2, n2 = coords.gcj02_offset_m(113.912316, 22.543847)
    assert 550.0 < np.hypot(e2, n2) < 650.0


def test_vectorised_equals_scalar():
    rng = np.random.default_rng(7)
    lon = rng.uniform(73.5, 135.0, size=(4, 5))
    lat = rng.uniform(18.0, 53.5, size=(4, 5))
    lon[0, 0], lat[0, 0] = 2.35, 48.85  # one point outside China in the batch
    for fn in (
        coords.wgs84_to_gcj02,
        coords.gcj02_to_wgs84,
        coords.gcj02_to_bd09,
        coords.bd09_to_gcj02,
        coords.wgs84_to_bd09,
        coords.bd09_to_wgs84,
        coords.gcj02_offset_m,
    ):
        vlon, vlat = fn(lon, lat)
        assert vlon.shape == lon.shape and vlat.shape == lat.shape
        for i in range(lon.shape[0]):
            for j in range(lon.shape[1]):
                slon, slat = fn(float(lon[i, j]), float(lat[i, j]))
                assert abs(vlon[i, j] - slon) < 1e-12, fn.__name__
                assert abs(vlat[i, j] - slat) < 1e-12, fn.__name__


def test_geometry_conversion_moves_every_vertex_and_keeps_z():
    line = shapely.LineString([(114.0, 22.5), (114.1, 22.6)])
    moved = coords.geometry_gcj02_to_wgs84(line)
    expect_lon, expect_lat = coords.gcj02_to_wgs84(np.array([114.0, 114.1]), np.array([22.5, 22.6]))
    got = shapely.get_coordinates(moved)
    np.testing.assert_allclose(got[:, 0], expect_lon, atol=1e-12)
    np.testing.assert_allclose(got[:, 1], expect_lat, atol=1e-12)
    pz = coords.geometry_gcj02_to_wgs84(shapely.Point(114.0, 22.5, 7.5))
    assert pz.has_z and pz.z == 7.5


def test_frame_conversion():
    gdf = gpd.GeoDataFrame(
        {"name": ["a", "b"]},
        geometry=[
            shapely.Point(114.0, 22.5),
            shapely.Polygon([(114, 22.5), (114.01, 22.5), (114.01, 22.51)]),
        ],
        crs="EPSG:4326",
    )
    out = coords.frame_gcj02_to_wgs84(gdf)
    assert out.crs.to_epsg() == 4326
    assert list(out["name"]) == ["a", "b"]
    assert gdf.geometry.iloc[0].x == 114.0  # input untouched
    lon, lat = coords.gcj02_to_wgs84(114.0, 22.5)
    assert out.geometry.iloc[0].x == pytest.approx(lon, abs=1e-12)
    assert out.geometry.iloc[0].y == pytest.approx(lat, abs=1e-12)


def test_frame_conversion_rejects_projected_crs():
    gdf = gpd.GeoDataFrame(geometry=[shapely.Point(500000.0, 2490000.0)], crs="EPSG:4547")
    with pytest.raises(CRSError, match="EPSG:4547"):
        coords.frame_gcj02_to_wgs84(gdf)
