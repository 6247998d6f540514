"""A scenario's bbox or polygon area cuts the run's grid to it (+ buffer), on the real Shenzhen data.

A bounding box's grid is the cells overlapping the box (projected to the city's
CRS) widened by the margin; a polygon's grid is the cells overlapping its
buffered bounds, with the cells whose centre lies outside the buffered polygon
blocked (no water routed there; nobody placed there). A short, coarse
scenario run on a small box over Futian goes end to end.
"""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
import shapely
import xarray as xr

from scenarios.files import load_scenario
from scenarios.run_scenario import run_scenario
from scenarios.runner import RunConfig
from scenarios.translate import translate
from twin.city import City
from twin.domain import Domain
from twin.errors import GridError, ValidationError

RES = 250.0
#: A box over central Futian (CBD to the bay front).
BOX = [114.03, 22.52, 114.08, 22.56]
#: A triangle inside that box: its hypotenuse cuts the grid's cells diagonally.
TRIANGLE = [[114.03, 22.52], [114.08, 22.52], [114.03, 22.56], [114.03, 22.52]]


@pytest.fixture(scope="module")
def city(twin_data):
    return City("shenzhen")


@pytest.fixture(scope="module")
def triangle_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("aoi") / "triangle.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [{
        "type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [TRIANGLE]}}]}))
    return path


def projected_bounds(city, bbox):
    box = shapely.segmentize(shapely.box(*bbox), 0.0005)
    return gpd.GeoSeries([box], crs="EPSG:4326").to_crs(city.crs).total_bounds


def grid_bounds(d: Domain):
    t, (ny, nx) = d.transform, d.shape
    return t.c, t.f + ny * t.e, t.c + nx * t.a, t.f


@pytest.mark.parametrize("buffer_m", [0.0, 600.0])
def test_a_bbox_grid_is_the_box_plus_buffer_snapped_to_cells(city, buffer_m):
    d = Domain.from_area(city, {"bbox": BOX}, resolution=RES, buffer_m=buffer_m)
    x0, y0, x1, y1 = projected_bounds(city, BOX)
    want = (x0 - buffer_m, y0 - buffer_m, x1 + buffer_m, y1 + buffer_m)
    gx0, gy0, gx1, gy1 = grid_bounds(d)
    # every side holds the box + buffer and overshoots it by less than one cell
    assert 0 <= want[0] - gx0 < RES and 0 <= want[1] - gy0 < RES
    assert 0 <= gx1 - want[2] < RES and 0 <= gy1 - want[3] < RES
    assert d.kind == "bbox" and d.selection == ("Futian",) and d.label == "bbox 114.03,22.52,114.08,22.56"
    # a box keeps every cell (only sea on the border and cells without elevation are blocked)
    border = np.zeros(d.shape, bool)
    border[[0, -1], :] = border[:, [0, -1]] = True
    assert not (d.blocked & ~border & np.isfinite(d.elevation)).any()
    # much smaller than the district it lies in (what ran before: the whole of Futian)
    futian = Domain.from_city(city, resolution=RES, districts="Futian", buffer_m=buffer_m)
    assert d.shape[0] * d.shape[1] < 0.5 * futian.shape[0] * futian.shape[1]


def test_a_polygon_grid_blocks_the_cells_outside_it_and_places_nobody_there(city, triangle_file):
    from agents.population import population_grid

    d = Domain.from_area(city, {"polygon": str(triangle_file)}, resolution=RES, buffer_m=0.0)
    assert d.kind == "polygon" and d.label == "polygon triangle.geojson"
    x0, y0, x1, y1 = projected_bounds(city, [114.03, 22.52, 114.08, 22.56])
    gx0, gy0, gx1, gy1 = grid_bounds(d)
    assert 0 <= x0 - gx0 < RES and 0 <= gy1 - y1 < RES  # the grid is the triangle's bounds, snapped
    xs, ys = np.meshgrid(d.x, d.y)
    tri = gpd.GeoSeries([shapely.Polygon(TRIANGLE)], crs="EPSG:4326").to_crs(city.crs).iloc[0]
    inside = shapely.contains_xy(tri, xs, ys)
    assert inside.sum() > 50 and (~inside).sum() > 50  # the diagonal cuts the grid about in half
    assert d.blocked[~inside].all()  # outside the polygon: blocked
    assert not (d.land | d.sea)[~inside].any()
    border = np.zeros(d.shape, bool)
    border[[0, -1], :] = border[:, [0, -1]] = True
    assert not d.blocked[inside & ~border & (np.isfinite(d.elevation) | d.sea)].any()  # inside: active
    people = population_grid(d.as_dataset(), city=city).values
    assert people[~inside].sum() == 0 and people[inside].sum() > 10_000


def test_bad_areas_are_refused_naming_the_key_and_value(city, tmp_path):
    with pytest.raises(ValidationError, match=r"area.bbox=\[114.1, 22.5, 114.0, 22.6\]"):
        Domain.from_area(city, {"bbox": [114.1, 22.5, 114.0, 22.6]}, resolution=RES)
    with pytest.raises(ValidationError, match=r"area.polygon=.*nowhere.geojson.*give an existing"):
        Domain.from_area(city, {"polygon": str(tmp_path / "nowhere.geojson")}, resolution=RES)
    points = tmp_path / "points.geojson"
    points.write_text(json.dumps({"type": "FeatureCollection", "features": [{
        "type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": [114.05, 22.54]}}]}))
    with pytest.raises(ValidationError, match=r"holds no polygon \(geometry types: \['Point'\]\)"):
        Domain.from_area(city, {"polygon": str(points)}, resolution=RES)
    with pytest.raises(ValidationError, match="overlaps no district of shenzhen"):
        Domain.from_area(city, {"bbox": [120.0, 30.0, 120.1, 30.1]}, resolution=RES)
    with pytest.raises(GridError, match="fewer than 2 x 2 cells"):
        Domain.from_area(city, {"bbox": [114.05, 22.54, 114.0502, 22.5402]}, resolution=RES)
    with pytest.raises(ValidationError, match=r"area=\{'bbox'.*and districts=\['Futian'\]: give one"):
        RunConfig.from_mapping({"couplings": {"flood": {}}, "duration_s": 60.0, "districts": ["Futian"],
                                "area": {"bbox": BOX}})
    with pytest.raises(ValidationError, match=r"area=\{'circle': 3\}: give one of"):
        RunConfig.from_mapping({"couplings": {"flood": {}}, "duration_s": 60.0, "area": {"circle": 3}})


SMALL = """
title = "A box over central Futian"
description = "The 2023-09-07 storm on a small box: the grid is the box, not the district."
seed = 3
[time]
start = 2023-09-07T22:00:00+08:00
duration = "3 h"
[area]
{area}
[hazards.rain]
storm = "2023-09-07"
[models.flood_forecast]
resolution = 250.0
[[injects]]
after = "10 min"
kind = "road_lost"
payload = {{ lon = 114.0480, lat = 22.5390, reason = "tree down" }}
[outputs]
frame_every = "10 min"
"""


def test_translate_puts_the_area_in_the_config(tmp_path, triangle_file, twin_data):
    (tmp_path / "b.toml").write_text(SMALL.format(area=f"bbox = {BOX}\nbuffer_m = 200.0"))
    cfg = translate(load_scenario(tmp_path / "b.toml")).config
    assert cfg.area == {"bbox": BOX} and cfg.districts is None and cfg.buffer_m == 200.0
    (tmp_path / "aoi.geojson").write_bytes(triangle_file.read_bytes())
    (tmp_path / "p.toml").write_text(SMALL.format(area='polygon = "aoi.geojson"'))
    cfg = translate(load_scenario(tmp_path / "p.toml")).config
    assert cfg.area == {"polygon": str(tmp_path / "aoi.geojson")} and cfg.buffer_m == 0.0


def test_a_short_coarse_run_on_a_small_box_over_futian_goes_end_to_end(tmp_path, city, twin_data):
    (tmp_path / "box.toml").write_text(SMALL.format(area=f"bbox = {BOX}"))
    run, tr = run_scenario(load_scenario(tmp_path / "box.toml"), tmp_path / "run", duration_s=1800.0,
                           map=False)
    want = Domain.from_area(city, {"bbox": BOX}, resolution=RES, buffer_m=0.0)
    assert list(run.summary["grid"]["shape"]) == list(want.shape)
    assert run.summary["grid"]["label"] == "bbox 114.03,22.52,114.08,22.56"
    with xr.open_dataset(tmp_path / "run" / "fields.nc") as ds:
        assert ds.sizes["y"] == want.shape[0] and ds.sizes["x"] == want.shape[1]
        np.testing.assert_allclose(ds["x"].values, want.x)
        depth = ds["water_depth"].isel(time=-1).values
        assert np.nanmax(depth) > 0  # the storm ponds water on the box
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["config"]["area"] == {"bbox": BOX}
    assert any(e.kind == "road_lost" for e in run.state.events)
    assert "bbox 114.03,22.52,114.08,22.56 (+0 m)" in (tmp_path / "run" / "report.html").read_text()
    # the road graph is cut to the box: fewer edges than Futian's whole graph
    from agents.city_roads import city_road_graph

    edges = run.summary["couplings"]["roads"]["edges"]
    assert 0 < edges < city_road_graph(city, districts=["Futian"]).n_edges


def test_no_water_is_routed_outside_a_polygon(tmp_path, triangle_file, twin_data):
    (tmp_path / "aoi.geojson").write_bytes(triangle_file.read_bytes())
    (tmp_path / "p.toml").write_text(SMALL.format(area='polygon = "aoi.geojson"').split("[[injects]]")[0])
    run_scenario(load_scenario(tmp_path / "p.toml"), tmp_path / "run", duration_s=1200.0, map=False,
                 report=False)
    with xr.open_dataset(tmp_path / "run" / "fields.nc") as ds:
        land = ds["land"].values.astype(bool) | ds["sea"].values.astype(bool)
        depth = np.nan_to_num(ds["water_depth"].values)
    assert (~land).sum() > 50
    assert (depth[:, ~land] == 0).all() and depth[:, land].max() > 0
