"""Geometry input: shapely, rooms, GeoJSON (lon/lat projected), and its checks naming the element."""

from __future__ import annotations

import json

import numpy as np
import pytest
from shapely.geometry import LineString, Polygon, box

from agents.crowd import AgentsSpec, simulate
from agents.floor_field import FloorField
from agents.geometry import Geometry
from twin.errors import DataIntegrityError, ValidationError


def test_walls_are_the_boundary_less_the_open_exits():
    g = Geometry(box(0, 0, 10, 5), {"door": ((10, 2), (10, 3))})
    walls = g.wall_segments()
    assert np.isclose(np.hypot(walls[:, 2] - walls[:, 0], walls[:, 3] - walls[:, 1]).sum(), 29.0)
    g.exit_open[0] = False  # a closed exit is a wall again
    walls = g.wall_segments()
    assert np.isclose(np.hypot(walls[:, 2] - walls[:, 0], walls[:, 3] - walls[:, 1]).sum(), 30.0)


def test_self_intersecting_polygon_is_named():
    bow = Polygon([(0, 0), (4, 4), (4, 0), (0, 4)])
    with pytest.raises(ValidationError, match="walkable.*Self-intersection"):
        Geometry(bow, {"d": ((0, 0), (0, 1))})


def test_exit_off_the_boundary_is_named():
    with pytest.raises(ValidationError, match="exit 'middle'"):
        Geometry(box(0, 0, 10, 5), {"middle": ((5, 2), (5, 3))})


def test_rooms_merge_and_an_internal_wall_blocks_the_floor_field():
    g = Geometry.from_rooms([box(0, 0, 5, 5), box(5, 0, 10, 5)], {"d": ((10, 2), (10, 3))},
                            walls=[LineString([(5, 0), (5, 4)])])  # fmt: skip
    field = FloorField(g, cell_m=0.2)
    # from (2.5, 1) the way out goes round the wall's end at y = 4
    d = field.distance_at(np.array([[2.5, 1.0]]))[0]
    assert d > np.hypot(2.5, 3.0) + np.hypot(5.0, 2.0) - 0.5
    assert d < 1.0275 * (np.hypot(2.5, 3.2) + np.hypot(5.0, 1.8)) + 1.0


def _geojson(tmp_path, features, **extra):
    path = tmp_path / "room.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features, **extra}))
    return path


def test_geojson_lonlat_room_is_projected_and_simulated(tmp_path):
    # A 20 m x 10 m room drawn in lon/lat in Futian (22.54 N): 1 m is about
    # 9.7e-6 deg of longitude and 9.0e-6 deg of latitude there.
    lon0, lat0 = 114.0579, 22.5431
    dlon, dlat = 1 / (111320 * np.cos(np.radians(lat0))), 1 / 110574
    ring = [[lon0 + x * dlon, lat0 + y * dlat] for x, y in [(0, 0), (20, 0), (20, 10), (0, 10), (0, 0)]]
    door = [[lon0 + 20 * dlon, lat0 + 4 * dlat], [lon0 + 20 * dlon, lat0 + 6 * dlat]]
    path = _geojson(tmp_path, [
        {"type": "Feature", "properties": {"role": "walkable"},
         "geometry": {"type": "Polygon", "coordinates": [ring]}},
        {"type": "Feature", "properties": {"role": "exit", "id": "main"},
         "geometry": {"type": "LineString", "coordinates": door}},
    ])  # fmt: skip
    g = Geometry.from_geojson(path)
    xmin, ymin, xmax, ymax = g.bounds
    assert abs((xmax - xmin) - 20) < 0.05 and abs((ymax - ymin) - 10) < 0.05
    ds = simulate(path, AgentsSpec(n=15), seed=1, until_s=60)
    assert int(ds.attrs["evacuated"]) == 15
    first = ds.isel(time=0)
    assert np.all((first.lon > lon0) & (first.lon < lon0 + 20 * dlon))
    assert np.all((first.lat > lat0) & (first.lat < lat0 + 10 * dlat))


def test_geojson_unknown_role_is_refused(tmp_path):
    path = _geojson(tmp_path, [{"type": "Feature", "properties": {"role": "door"},
                                "geometry": {"type": "Point", "coordinates": [0, 0]}}])  # fmt: skip
    with pytest.raises(DataIntegrityError, match="feature 0: role 'door'"):
        Geometry.from_geojson(path)


def test_geojson_metric_crs_member_is_honoured(tmp_path):
    # EPSG:4547 (CGCS2000 / 3-degree GK CM 114E): coordinates already metric
    e, n = 505955.846, 2493941.246
    ring = [[e, n], [e + 10, n], [e + 10, n + 6], [e, n + 6], [e, n]]
    path = _geojson(tmp_path, [
        {"type": "Feature", "properties": {"role": "walkable"},
         "geometry": {"type": "Polygon", "coordinates": [ring]}},
        {"type": "Feature", "properties": {"role": "exit"},
         "geometry": {"type": "LineString", "coordinates": [[e + 10, n + 2], [e + 10, n + 3]]}},
    ], crs={"type": "name", "properties": {"name": "EPSG:4547"}})  # fmt: skip
    g = Geometry.from_geojson(path)
    assert g.exit_ids == ["exit0"]
    xmin, ymin, xmax, ymax = g.bounds
    assert abs((xmax - xmin) - 10) < 0.01 and abs((ymax - ymin) - 6) < 0.01


def test_trajectories_make_a_movers_layer(tmp_path):
    from agents.crowd import movers_layer

    lon0, lat0 = 114.0579, 22.5431
    d = 1e-5
    g = Geometry(box(lon0, lat0, lon0 + 100 * d, lat0 + 50 * d),
                 {"a": ((lon0 + 100 * d, lat0 + 20 * d), (lon0 + 100 * d, lat0 + 30 * d))},
                 crs="EPSG:4326")  # fmt: skip
    ds = simulate(g, AgentsSpec(n=12), seed=3, until_s=10)
    layer = movers_layer(ds)
    assert len(layer.frames["crowd"]) == ds.sizes["time"]
    np.testing.assert_allclose(layer.times_s, ds.time.values)
    shared = np.arange(0.0, 11.0, 2.0)
    assert len(movers_layer(ds, times_s=shared).frames["crowd"]) == shared.size
