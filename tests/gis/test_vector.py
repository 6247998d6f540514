"""Vector reading with declared datums, and rasterizing."""

import geopandas as gpd
import numpy as np
import pytest
from affine import Affine
from shapely.geometry import Point, box

from gis import coords
from gis.raster import make_grid
from gis.vector import rasterize_fraction, rasterize_ids, read_vector
from twin.errors import ValidationError


def test_gcj02_declared_is_converted(tmp_path):
    # eviltransform's Shenzhen test vector (WGS 84): googollee/eviltransform, go/transform_test.go
    lon, lat = 113.912316, 22.543847
    glon, glat = coords.wgs84_to_gcj02(lon, lat)
    p = tmp_path / "pt.geojson"
    gpd.GeoDataFrame({"n": [1]}, geometry=[Point(glon, glat)], crs="EPSG:4326").to_file(p)
    raw = read_vector(p, datum="wgs84")
    conv = read_vector(p, datum="gcj02")
    assert raw.geometry.iloc[0].x == pytest.approx(glon)
    assert conv.geometry.iloc[0].x == pytest.approx(lon, abs=1e-7)
    assert conv.geometry.iloc[0].y == pytest.approx(lat, abs=1e-7)
    assert conv.attrs["datum_declared"] == "gcj02"
    bd = tmp_path / "bd.geojson"
    blon, blat = coords.wgs84_to_bd09(lon, lat)
    gpd.GeoDataFrame({"n": [1]}, geometry=[Point(blon, blat)], crs="EPSG:4326").to_file(bd)
    assert read_vector(bd, datum="bd09").geometry.iloc[0].x == pytest.approx(lon, abs=1e-7)


def test_projected_and_unknown_datum(tmp_path):
    p = tmp_path / "m.gpkg"
    gpd.GeoDataFrame({"n": [1]}, geometry=[Point(505955.846, 2493941.246)], crs="EPSG:4547").to_file(p)
    g = read_vector(p)
    assert g.geometry.iloc[0].x == pytest.approx(114.0579, abs=1e-6)
    pq = tmp_path / "m.parquet"
    gpd.read_file(p).to_parquet(pq)
    assert read_vector(pq).geometry.iloc[0].y == pytest.approx(22.5431, abs=1e-6)
    with pytest.raises(ValidationError, match="datum='mars'"):
        read_vector(p, datum="mars")


def test_rasterize_ids_and_fractions():
    like = make_grid(np.zeros((10, 10)), Affine(1, 0, 0, 0, -1, 10), "EPSG:4547")
    gdf = gpd.GeoDataFrame({"code": [7, 9]}, geometry=[box(0, 0, 5, 10), box(5, 0, 10, 5)], crs="EPSG:4547")
    ids = rasterize_ids(gdf, like, "code", fill=-1, dtype=np.int16)
    assert (ids.values == 7).sum() == 50 and (ids.values == 9).sum() == 25 and (ids.values == -1).sum() == 25
    half = gpd.GeoDataFrame(geometry=[box(0, 0, 2.5, 10)], crs="EPSG:4547")
    frac = rasterize_fraction(half, like, supersample=8)
    # exact for a boundary on a supersample line: 2.5 cells covered per row
    assert float(frac.values.sum()) == pytest.approx(25.0)
    assert frac.values[0, 2] == pytest.approx(0.5)
