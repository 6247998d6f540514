"""The city's routable network (agents.city_roads) on the real central Shenzhen Overpass file."""

from __future__ import annotations

import pytest
from shapely.geometry import Point

from agents.city_roads import city_road_graph
from gis.roads import load_road_graph
from twin.errors import DataMissingError, ValidationError

# The data set's README: the Overpass answer holds "a strip of Hong Kong south of the Shenzhen River".
# The Shenzhen River at Futian/Lo Wu runs near 22.50-22.53 N; Hong Kong's nearest roads lie south of it.


@pytest.fixture(scope="module")
def overpass_path(shenzhen_dir):
    return shenzhen_dir / "osm" / "central_drive_overpass_20241006.json"


@pytest.fixture(scope="module")
def whole(city):
    return city_road_graph(city)


def test_city_graph_drops_hong_kong_and_is_strongly_connected(city, whole, overpass_path):
    raw = load_road_graph(overpass_path)
    land = city.districts().geometry.union_all()
    outside_raw = [n for n, d in raw.graph.nodes(data=True) if not land.contains(Point(d["x"], d["y"]))]
    assert len(outside_raw) > 0  # the file does reach beyond the city (Hong Kong)
    assert all(land.contains(Point(d["x"], d["y"])) for _, d in whole.graph.nodes(data=True))
    import networkx as nx

    assert nx.is_strongly_connected(whole.graph)
    assert 0.8 * raw.n_nodes < whole.n_nodes < raw.n_nodes


def test_districts_limit_the_graph(city, whole):
    futian = city_road_graph(city, districts=["福田"])
    assert futian.n_nodes < whole.n_nodes
    poly = city.districts().set_index("name").geometry["Futian"]
    import geopandas as gpd

    from gis.crs import WORKING_CRS

    grown = gpd.GeoSeries([poly], crs="EPSG:4326").to_crs(WORKING_CRS).buffer(500.0).iloc[0]
    assert all(grown.contains(Point(d["east_m"], d["north_m"])) for _, d in futian.graph.nodes(data=True))


def test_unknown_district_and_missing_layer_are_clear(city, tmp_path, monkeypatch):
    with pytest.raises(ValidationError, match="districts='Atlantis'"):
        city_road_graph(city, districts=["Atlantis"])
    from twin.city import City

    empty = City("shenzhen", data_root=tmp_path)
    with pytest.raises(DataMissingError, match="drive_roads.*twin data fetch"):
        city_road_graph(empty)
