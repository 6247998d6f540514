"""Simulated devices get real sites from the data set: on Shenzhen's land, seeded, or unplaced with a reason."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from shapely import Point, union_all

from hardware_bridge.schema import Kind
from hardware_bridge.sources.placement import FAMILY, place_devices
from hardware_bridge.sources.simulated import make_devices
from twin.store import Store


@pytest.fixture(scope="module")
def city(twin_data):
    from twin.city import City

    return City("shenzhen")


@pytest.fixture(scope="module")
def districts(city):
    return city.districts()


@pytest.fixture(scope="module")
def placed(city):
    devs = make_devices(48)  # four of every kind
    return devs, place_devices(devs, seed=7, city=city)


def test_every_placeable_device_is_placed_inside_the_districts(placed, districts):
    devs, p = placed
    land = union_all(list(districts.geometry))
    assert all(FAMILY[d.kind] is not None for d in devs)
    assert [s.id for s in p.sensors] == [d.station for d in devs] and p.unplaced == {}
    for s in p.sensors:
        assert land.contains(Point(s.lon, s.lat)), (s.id, s.lon, s.lat)


def test_slope_sensors_on_steep_land(placed, city):
    from hardware_bridge.sources.placement import SLOPE_GRID_M, SLOPE_MIN_DEG

    ds = city.static(SLOPE_GRID_M)
    slope = [s for s in placed[1].sensors if s.kind in (Kind.GNSS_DISPLACEMENT, Kind.INCLINOMETER)]
    assert len(slope) == 8
    for s in slope:
        # read the slope back from the grid at the sensor's position (not from its properties)
        from pyproj import Transformer

        x, y = Transformer.from_crs("EPSG:4326", ds.attrs["crs"], always_xy=True).transform(s.lon, s.lat)
        cell = ds.sel(x=x, y=y, method="nearest")
        assert float(cell["slope"]) >= SLOPE_MIN_DEG and int(cell["land"]) == 1, s


def test_rain_and_water_level_gauges_stand_in_futian(placed, districts):
    futian = districts.loc[districts["name"] == "Futian", "geometry"].iloc[0]
    gauges = [s for s in placed[1].sensors if s.kind in ("rain_gauge", "water_level")]
    assert len(gauges) == 8
    assert all(futian.contains(Point(s.lon, s.lat)) for s in gauges)
    assert all(s.properties["site_source"].endswith("waterlogging_points_2019.csv") for s in gauges)


def test_gas_detectors_at_metro_stations(placed, city):
    stations = city.vector("metro_stations")
    coords = {(round(g.x, 6), round(g.y, 6)) for g in stations.geometry}
    gas = [s for s in placed[1].sensors if s.kind.startswith("gas_")]
    assert len(gas) == 16
    assert all((round(s.lon, 6), round(s.lat, 6)) in coords for s in gas)
    # four detectors of one kind stand at four different stations
    co = [(s.lon, s.lat) for s in gas if s.kind == "gas_co"]
    assert len(set(co)) == 4


def test_fire_detectors_in_buildings_with_a_floor(placed, city):
    buildings = city.vector("buildings")
    fire = [s for s in placed[1].sensors if s.kind in ("smoke", "heat")]
    assert len(fire) == 8
    for s in fire:
        assert s.properties["building"].startswith("osm-") and s.properties["floor"] >= 1
        assert buildings.geometry.contains(Point(s.lon, s.lat)).any()


def test_same_seed_same_sites_other_seed_other_sites(city):
    devs = make_devices(24)
    a = place_devices(devs, seed=3, city=city)
    b = place_devices(devs, seed=3, city=city)
    c = place_devices(devs, seed=4, city=city)
    assert [s.to_record() for s in a.sensors] == [s.to_record() for s in b.sensors]
    assert [(s.lon, s.lat) for s in a.sensors] != [(s.lon, s.lat) for s in c.sensors]


def test_missing_data_leaves_devices_unplaced_and_says_why(tmp_path):
    from twin.city import City

    empty = City("shenzhen", data_root=tmp_path)  # a data directory without the files
    devs = make_devices(4, ["rain_gauge", "gas_co"])
    p = place_devices(devs, seed=0, city=empty)
    assert p.sensors == []
    assert set(p.unplaced) == {d.station for d in devs}
    assert all("missing" in why or "not found" in why for why in p.unplaced.values()), p.unplaced


def test_simulate_registers_placed_devices_in_the_store(tmp_path, twin_data):
    from twin.cli import main

    store = tmp_path / "store"
    r = CliRunner().invoke(main, ["bridge", "simulate", "--devices", "12", "--minutes", "3", "--seed", "5",
                                  "--store", str(store)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    summary = json.loads(r.output)["placement"]
    assert summary["placed"] == summary["registered"] == 12 and summary["unplaced"] == 0
    with Store.open(store) as st:
        reg = st.sensors()
    assert len(reg) == 12 and all(s.properties["simulated"] for s in reg)
    # inspect shows each stream's latest reading in the display unit (SI alongside)
    rep = json.loads(CliRunner().invoke(main, ["bridge", "inspect", "--store", str(store), "--json"]).output)
    by = {x["datastream"]: x for x in rep["streams"]}
    co = next(v for k, v in by.items() if k.endswith("/gas_co"))
    assert co["latest"].endswith(" ppm") and co["unit_si"] == "1"
    assert float(co["latest"].split()[0]) == pytest.approx(co["latest_si"] * 1e6, abs=0.5)
    heat = next(v for k, v in by.items() if k.endswith("/heat"))
    assert heat["latest"].endswith(" °C") and heat["unit_si"] == "K"
    # the console lists all 12, each placed
    from viz.console.live import LiveState

    live = LiveState(store)
    try:
        rows = live.sensors()
    finally:
        live.close()
    assert {r["sensor"] for r in rows if r["placed"]} == {s.id for s in reg}
    assert [r for r in rows if not r["placed"]] == []
    # --no-place: nothing registered
    store2 = tmp_path / "store2"
    r = CliRunner().invoke(main, ["bridge", "simulate", "--devices", "12", "--minutes", "3", "--no-place",
                                  "--store", str(store2)], catch_exceptions=False)
    assert r.exit_code == 0 and "placement" not in json.loads(r.output)
    with Store.open(store2) as st:
        assert len(st.sensors()) == 0


def test_simulate_without_data_says_which_devices_are_unplaced(tmp_path):
    from twin.cli import main

    store = tmp_path / "store"
    r = CliRunner(env={"TWIN_DATA": str(tmp_path / "no-data")}).invoke(
        main, ["bridge", "simulate", "--devices", "4", "--kinds", "rain_gauge,gas_co", "--minutes", "2",
               "--store", str(store)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    summary = json.loads(r.output)
    assert summary["placement"]["placed"] == 0 and summary["placement"]["unplaced"] == 4
    assert any("waterlogging" in why and "not found" in why for why in summary["placement"]["reasons"])
    assert summary["stored"] > 0  # the readings still flow
    from viz.console.live import LiveState

    live = LiveState(store)
    try:
        rows = live.sensors()
    finally:
        live.close()
    assert len(rows) == 4 and all(r["placed"] is False for r in rows)
