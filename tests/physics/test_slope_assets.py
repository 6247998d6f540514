"""Assets hit by a landslide deposit (physics/slope_runout.py: assets_hit, city_assets).

Synthetic deposits over the real Nanshan buildings, the real drivable road
graph and the real metro lines and stations; the expected assets are built
independently: the hit cells are polygonised with ``rasterio.features.shapes``
and unioned, and the assets meeting that polygon are selected with
geopandas; the depths with ``rasterio.features.rasterize(all_touched=True)``.
"""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from gis.raster import make_grid, target_grid
from physics.slope_runout import assets_hit, city_assets, runout
from twin.errors import ValidationError

CRS = "EPSG:4547"
MIN_DEPTH = 0.1


def _grid_around(gdf, margin_m=300.0, res=30.0):
    """(transform, ny, nx, x centres, y centres) of a 30 m EPSG:4547 grid covering ``gdf``."""
    b = gdf.to_crs(CRS).total_bounds
    t, ny, nx = target_grid((b[0] - margin_m, b[1] - margin_m, b[2] + margin_m, b[3] + margin_m), res)
    x = t.c + t.a * (np.arange(nx) + 0.5)
    y = t.f + t.e * (np.arange(ny) + 0.5)
    return t, ny, nx, x, y


def _cone_deposit(t, ny, nx, x, y, centre_xy, radius_m, peak=2.0):
    """Deposit thinning linearly from ``peak`` at the centre to 0 at ``radius_m``; NaN in one corner."""
    xx, yy = np.meshgrid(x, y)
    r = np.hypot(xx - centre_xy[0], yy - centre_xy[1])
    dep = np.clip(peak * (1.0 - r / radius_m), 0.0, None)
    dep[:3, :3] = np.nan
    return make_grid(dep, t, CRS, name="deposit", units="m")


def _hit_polygon(da):
    """Union of the cells with deposit >= MIN_DEPTH, polygonised by rasterio (EPSG:4547)."""
    from affine import Affine
    from rasterio.features import shapes

    v = da.values
    mask = np.isfinite(v) & (v >= MIN_DEPTH)
    polys = [shapely.geometry.shape(g) for g, val in
             shapes(mask.astype(np.uint8), mask=mask, transform=Affine(*da.attrs["transform"]))
             if val == 1]
    return shapely.union_all(polys)


def _expected(gdf, da, id_of):
    """Ids of the features of ``gdf`` meeting the hit polygon."""
    poly = _hit_polygon(da)
    g = gdf.to_crs(CRS)
    return {id_of(row) for _, row in g[g.intersects(poly)].iterrows()}


def _max_depth_touched(geom_4547, da):
    """Max deposit over the cells a geometry touches (rasterio, all_touched)."""
    from affine import Affine
    from rasterio.features import rasterize

    cells = rasterize([(geom_4547, 1)], out_shape=da.shape, transform=Affine(*da.attrs["transform"]),
                      all_touched=True, fill=0).astype(bool)
    v = np.where(np.isfinite(da.values), da.values, -np.inf)
    return float(v[cells].max())


def test_buildings_under_the_deposit_are_exactly_those_meeting_it(city):
    bld = city.vector("buildings")
    t, ny, nx, x, y = _grid_around(bld)
    centre = bld.to_crs(CRS).geometry.iloc[len(bld) // 2].centroid
    da = _cone_deposit(t, ny, nx, x, y, (centre.x, centre.y), 600.0)
    hits = assets_hit(da, buildings=bld, min_depth_m=MIN_DEPTH)
    expected = _expected(bld, da, lambda r: str(r["osmid"]))
    assert 5 < len(expected) < len(bld)  # a real subset: some hit, some not
    assert set(hits["id"]) == expected
    assert (hits["kind"] == "building").all()
    assert hits.crs.to_epsg() == 4326
    assert (hits["deposit_depth_m"] >= MIN_DEPTH).all()
    # depth: the max over the cells each footprint touches (rasterio all_touched)
    by_id = bld.set_index(bld["osmid"].astype(str)).to_crs(CRS)
    for _, row in hits.head(10).iterrows():
        assert row["deposit_depth_m"] == pytest.approx(_max_depth_touched(by_id.geometry[row["id"]], da),
                                                       rel=1e-12)


def test_a_thinner_threshold_than_the_deposit_hits_nothing(city):
    bld = city.vector("buildings")
    t, ny, nx, x, y = _grid_around(bld)
    centre = bld.to_crs(CRS).geometry.iloc[0].centroid
    da = _cone_deposit(t, ny, nx, x, y, (centre.x, centre.y), 600.0, peak=0.09)
    assert assets_hit(da, buildings=bld, min_depth_m=MIN_DEPTH).empty
    assert not assets_hit(da, buildings=bld, min_depth_m=0.05).empty


def test_road_edges_hit_are_graph_edges_that_close(city):
    from agents.city_roads import city_road_graph

    graph = city_road_graph(city)
    edges = graph.to_geodataframe()
    # a deposit in central Futian (Shennan Boulevard near Futian station)
    centre = edges.to_crs(CRS).geometry.union_all().centroid
    t, ny, nx, x, y = _grid_around(
        edges[edges.to_crs(CRS).distance(centre) < 1500], margin_m=100.0)
    da = _cone_deposit(t, ny, nx, x, y, (centre.x, centre.y), 400.0)
    hits = assets_hit(da, roads=graph, min_depth_m=MIN_DEPTH)
    expected = _expected(edges, da, lambda r: r["id"])
    assert len(expected) > 5
    assert set(hits["id"]) == expected
    # the same ids close the graph's edges (evacuation and dispatch route around them)
    closed = graph.close_edges(list(hits["id"]), "landslide")
    assert closed == len(expected)
    # a GeoDataFrame of the edges gives the same answer as the graph
    assert set(assets_hit(da, roads=edges)["id"]) == expected


def test_metro_lines_and_stations_hit(city):
    lines = city.vector("metro_lines")
    stations = city.vector("metro_stations")
    st = stations[stations["name"] == "Shopping Park"].to_crs(CRS).geometry.iloc[0]
    t, ny, nx, x, y = _grid_around(stations[stations["name"] == "Shopping Park"], margin_m=1500.0)
    da = _cone_deposit(t, ny, nx, x, y, (st.x, st.y), 700.0)
    hits = assets_hit(da, metro_lines=lines, metro_stations=stations, min_depth_m=MIN_DEPTH)
    exp_lines = _expected(lines, da, lambda r: str(r["line"]))
    exp_stations = _expected(stations, da, lambda r: f"{r['line']}/{r['name']}")
    assert {"1", "3"} <= exp_lines  # Shopping Park is a line 1 / line 3 interchange
    assert set(hits.loc[hits["kind"] == "metro_line", "id"]) == exp_lines
    assert set(hits.loc[hits["kind"] == "metro_station", "id"]) == exp_stations
    assert "Line 1/Shopping Park" in exp_stations
    row = hits[hits["id"] == "Line 1/Shopping Park"].iloc[0]
    assert "购物公园" in row["name"]
    assert list(hits.columns) == ["kind", "id", "name", "deposit_depth_m", "geometry"]
    # kinds in contract order, deepest first within a kind
    assert list(dict.fromkeys(hits["kind"])) == ["metro_line", "metro_station"]
    for _, g in hits.groupby("kind"):
        assert (np.diff(g["deposit_depth_m"].to_numpy()) <= 0).all()


def test_no_deposit_gives_an_empty_frame_with_the_columns(city):
    bld = city.vector("buildings")
    t, ny, nx, *_ = _grid_around(bld)
    da = make_grid(np.zeros((ny, nx)), t, CRS)
    out = assets_hit(da, buildings=bld)
    assert out.empty and list(out.columns) == ["kind", "id", "name", "deposit_depth_m", "geometry"]
    assert out.crs.to_epsg() == 4326


def test_bad_deposit_and_threshold_are_refused():
    da = make_grid(np.ones((4, 4)), target_grid((0, 0, 120, 120), 30.0)[0], CRS)
    with pytest.raises(ValidationError, match="min_depth_m"):
        assets_hit(da, min_depth_m=0.0)
    with pytest.raises(ValidationError, match="deposit"):
        assets_hit(np.ones((4, 4)))


def test_city_assets_says_when_a_kind_is_missing(city):
    # Guangming (the 2015 landslide site): no building footprints and no drivable
    # roads in the city's data there; metro line 6 passes nearby.
    out = city_assets(city, (113.90, 22.70, 113.96, 22.74))
    assert "buildings" not in out
    assert any(n.startswith("buildings:") for n in out.notes)
    assert "roads" not in out and any(n.startswith("roads:") for n in out.notes)
    # central Nanshan: all four kinds
    nan = city_assets(city, (113.92, 22.53, 113.97, 22.57))
    assert {"buildings", "roads", "metro_lines", "metro_stations"} <= set(nan)
    assert len(nan["buildings"]) > 100


def test_runout_on_real_srtm_to_assets_hit(city):
    """End to end: runout over real Nanshan terrain, deposit georeferenced, assets listed."""
    from affine import Affine

    from gis.raster import clip, reproject

    bounds = (113.92, 22.53, 113.97, 22.57)
    raw = clip(city.raw_elevation(), bbox=bounds)
    dem = reproject(raw.astype(np.float64), CRS, resolution=30.0)
    z = dem.values
    # fail the 40 highest cells (the hills of Nanshan Park / Dasha He) 3 m deep
    thr = np.sort(z[np.isfinite(z)])[-40]
    src = np.where(np.nan_to_num(z, nan=-1e9) >= thr, 3.0, 0.0)
    res = runout(z, 30.0, src, travel_angle_deg=12.0)
    assert res.volume_error < 1e-9
    da = make_grid(res.deposit, Affine(*dem.attrs["transform"]), CRS)
    sources = city_assets(city, bounds)
    hits = assets_hit(da, **sources)
    assert set(hits["kind"]) <= {"building", "road", "metro_line", "metro_station"}
    exp = _expected(sources["buildings"], da, lambda r: str(r["osmid"]))
    assert len(exp) > 0  # the deposit reaches some of the real footprints
    assert set(hits.loc[hits["kind"] == "building", "id"]) == exp
