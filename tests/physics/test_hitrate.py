"""Waterlogging hit rate (physics/hitrate.py) on synthetic grids with known answers."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
from affine import Affine
from scipy import stats
from shapely.geometry import Point, box

from gis.raster import make_grid
from physics.hitrate import waterlogging_hit_rate
from twin.errors import CRSError, ValidationError

X0, Y0, D = 500000.0, 2500000.0, 10.0  # EPSG:4547 metres, 10 m cells, 100 x 100 grid


def _grid(values):
    return make_grid(np.asarray(values, dtype=np.float32), Affine(D, 0, X0, 0, -D, Y0), "EPSG:4547",
                     units="m", name="max_depth")


def _pts(xy, crs="EPSG:4547"):
    return gpd.GeoDataFrame(geometry=[Point(x, y) for x, y in xy], crs=crs)


def test_spots_scored_by_distance_to_wet_cells():
    h = np.zeros((100, 100))
    h[50, 50] = 0.2  # one wet cell, centre at (X0 + 505, Y0 - 505)
    h[0:10, 0:10] = np.nan  # outside the run
    cx, cy = X0 + 505.0, Y0 - 505.0
    pts = _pts([
        (cx + 60.0, cy),          # cell centre 60 m away: hit
        (cx + 101.0, cy + 3.0),   # cell centre 100 m away: hit (<= radius)
        (cx + 113.0, cy),         # cell centre 110 m away: miss
        (cx, cy - 300.0),         # miss
        (X0 + 55.0, Y0 - 55.0),   # NaN cell: outside the domain
        (X0 - 100.0, Y0),         # off the grid
    ])
    r = waterlogging_hit_rate(_grid(h), pts, radius_m=100.0, depth_m=0.15, n_random=5000, seed=1)
    assert (r["n_points"], r["n_in_domain"], r["n_outside"], r["hits"]) == (6, 4, 2, 2)
    assert r["hit_rate"] == 0.5
    # cells within 100 m of the wet cell centre: lattice points with i²+j² <= 100
    n_near = sum(1 for i in range(-10, 11) for j in range(-10, 11) if i * i + j * j <= 100)
    p = n_near / (100 * 100 - 100)
    assert r["random_hit_rate"] == pytest.approx(p, abs=4 * np.sqrt(p * (1 - p) / 5000))
    assert r["median_distance_m"] == pytest.approx(np.median([60, 100, 110, 300]))


def test_threshold_is_inclusive_and_shallow_cells_are_dry():
    h = np.zeros((100, 100))
    h[50, 50] = 0.15
    h[20, 20] = 0.149
    pts = _pts([(X0 + 505.0, Y0 - 505.0), (X0 + 205.0, Y0 - 205.0)])
    r = waterlogging_hit_rate(_grid(h), pts, radius_m=0.0, depth_m=0.15)
    assert r["hits"] == 1


def test_random_rate_within_a_polygon_and_significance():
    h = np.zeros((100, 100))
    h[:, :50] = 1.0  # west half wet: cells in columns 0..59 are within 100 m
    pts = _pts([(X0 + 705.0, Y0 - 100.0 - 10 * k) for k in range(20)]  # 150..200 m away: misses
               + [(X0 + 555.0, Y0 - 100.0 - 10 * k) for k in range(20)])  # 50 m away: hits
    east = box(X0 + 500.0, Y0 - 1000.0, X0 + 1000.0, Y0)
    r = waterlogging_hit_rate(_grid(h), pts, n_random=20000, seed=0, within=east)
    assert r["hits"] == 20 and r["n_in_domain"] == 40
    assert r["random_hit_rate"] == pytest.approx(0.2, abs=0.012)  # 10 of the 50 eastern columns
    assert r["wet_fraction"] == 0.0
    assert r["ratio"] == pytest.approx(0.5 / r["random_hit_rate"])
    expect = stats.binomtest(20, 40, r["random_hit_rate"], alternative="greater").pvalue
    assert r["p_value"] == pytest.approx(expect)
    assert r["p_value"] < 1e-4
    # the whole grid as the area: 60 % of cells are near
    r_all = waterlogging_hit_rate(_grid(h), pts, n_random=20000, seed=0)
    assert r_all["random_hit_rate"] == pytest.approx(0.6, abs=0.015)


def test_points_in_lon_lat_are_projected():
    h = np.zeros((100, 100))
    h[50, 50] = 1.0
    from pyproj import Transformer

    lon, lat = Transformer.from_crs("EPSG:4547", "EPSG:4326", always_xy=True).transform(X0 + 505.0, Y0 - 505.0)
    r = waterlogging_hit_rate(_grid(h), _pts([(lon, lat)], crs="EPSG:4326"), radius_m=1.0)
    assert r["hits"] == 1


def test_seed_reproducible_and_errors():
    h = np.random.default_rng(3).random((100, 100))
    pts = _pts([(X0 + 5.0, Y0 - 5.0)])
    a = waterlogging_hit_rate(_grid(h), pts, seed=7, depth_m=0.99, radius_m=10.0)
    b = waterlogging_hit_rate(_grid(h), pts, seed=7, depth_m=0.99, radius_m=10.0)
    c = waterlogging_hit_rate(_grid(h), pts, seed=8, depth_m=0.99, radius_m=10.0)
    assert 0 < a["random_hit_rate"] < 1
    assert a == b and a["random_hits"] != c["random_hits"]
    with pytest.raises(CRSError):
        waterlogging_hit_rate(_grid(h), gpd.GeoDataFrame(geometry=[Point(0, 0)]))
    with pytest.raises(ValidationError, match="radius_m"):
        waterlogging_hit_rate(_grid(h), pts, radius_m=-1.0)
    with pytest.raises(ValidationError, match="n_random"):
        waterlogging_hit_rate(_grid(h), pts, n_random=0)
