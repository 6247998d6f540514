"""The fire model's building description: checked files, the two examples as networks, OSM towers.

The examples must describe the same building as the evacuation (agents/building.py) floor by
floor, so the storeys, elevations, refuge floors and stairs are compared with its loader.
"""

from __future__ import annotations

import copy
import json
import os
import tomllib
from collections import deque

import numpy as np
import pytest

from agents.building import load_building, osm_towers, parse_building, resolve, tower_from_osm_row
from physics.fire_building import (
    EXAMPLES,
    FUEL_LOAD_MJ_M2,
    build_network,
    evacuation_tables,
    fire_building_from_osm,
    load_example,
    load_fire_building,
    merged_description,
    parse_fire_building,
)
from physics.fire_network import COMPARTMENT_KINDS, OUTSIDE, VENT_KINDS
from twin.errors import DataMissingError, ValidationError


@pytest.fixture(scope="module")
def tower():
    spec = load_example("tower_30_residential")
    return spec, build_network(spec)


@pytest.fixture(scope="module")
def ping_an():
    spec = load_example("ping_an_finance_centre")
    return spec, build_network(spec)


def by_kind(net) -> dict[str, int]:
    return net.summary()["by_kind"]


def reachable_from_outside(net) -> np.ndarray:
    """Compartments joined to the outside through any wall or ceiling vent (open, closed or leak)."""
    n = net.n_compartments
    nbrs: list[list[int]] = [[] for _ in range(n + 1)]  # index n is the outside
    pairs = list(zip(net.vent_a, net.vent_b, strict=True)) + list(zip(net.vvent_lower, net.vvent_upper,
                                                                      strict=True))
    for a, b in pairs:
        a, b = int(a), n if b == OUTSIDE else int(b)
        nbrs[a].append(b)
        nbrs[b].append(a)
    seen = np.zeros(n + 1, bool)
    seen[n] = True
    queue = deque([n])
    while queue:
        for j in nbrs[queue.popleft()]:
            if not seen[j]:
                seen[j] = True
                queue.append(j)
    return seen[:n]


def shaft_columns(net) -> dict[str, list[int]]:
    """Shaft compartments by shaft name (the part after ``<storey>/``)."""
    shaft_kinds = [COMPARTMENT_KINDS.index(k) for k in ("stair", "lift", "smoke_shaft")]
    out: dict[str, list[int]] = {}
    for i, name in enumerate(net.names):
        if net.kind[i] in shaft_kinds:
            out.setdefault(name.split("/", 1)[1], []).append(i)
    return out


# ----------------------------------------------------------------------------- checks
def tower_dict() -> dict:
    return merged_description(EXAMPLES["tower_30_residential"])


def test_a_bad_file_lists_every_problem_with_its_path_and_value():
    d = tower_dict()
    d["fire"]["rooms"][0]["share"] = 0.1            # shares add up to 0.85
    d["fire"]["core"]["stairs"][1]["name"] = "Z"    # no such stair in [[stairs]]
    d["fire"]["core"]["lifts"][0]["top"] = 40       # 30 storeys
    d["fire"]["occupancy"] = "casino"
    d["fire"]["core"]["lobby_area_m2"] = -5.0
    d["fire"]["sprinkler"] = {"installed": True}    # misspelt table
    with pytest.raises(ValidationError) as e:
        parse_fire_building(d, source="bad.toml")
    msg = str(e.value)
    assert msg.startswith("bad.toml: 3 problem(s)")
    assert "fire.occupancy = 'casino'" in msg and "'office'" in msg
    assert "fire.core.lobby_area_m2 = -5.0" in msg and "greater than 0" in msg
    assert "fire.sprinkler" in msg and "Extra inputs are not permitted" in msg
    # the cross-checks run once the values are sane, and list all theirs together
    d["fire"]["occupancy"], d["fire"]["core"]["lobby_area_m2"] = "dwelling", 25.0
    del d["fire"]["sprinkler"]
    with pytest.raises(ValidationError) as e:
        parse_fire_building(d, source="bad.toml")
    msg = str(e.value)
    assert "shares add up to 0.85" in msg
    assert "fire.core.stairs.1.name='Z': not a stair of [[stairs]] (one of ['A', 'B'])" in msg
    assert "fire.core.lifts.0 ('fire lift'): bottom=0, top=40: need 0 <= bottom <= top <= 29" in msg


def test_a_plate_too_small_for_its_core_names_the_storey():
    d = tower_dict()
    d["fire"]["plate"]["area_m2"] = 600.0
    d["fire"]["plate"]["top_area_m2"] = 20.0        # the top storeys have no room left
    d["fire"]["glazing"]["head_m"] = 2.9            # above the 2.8 m ceiling
    with pytest.raises(ValidationError) as e:
        parse_fire_building(d)
    msg = str(e.value)
    assert "fire.plate: storey 28 has no area left for rooms" in msg and "2 such storeys" in msg
    assert "fire.glazing.head_m=2.9: above the lowest room ceiling (2.8 m)" in msg


def test_a_fire_file_names_its_evacuation_file_and_may_not_repeat_its_tables(tmp_path):
    evac = EXAMPLES["tower_30_residential"].parent / tomllib.loads(
        EXAMPLES["tower_30_residential"].read_text(encoding="utf-8"))["building"]
    fire = tomllib.loads(EXAMPLES["tower_30_residential"].read_text(encoding="utf-8"))["fire"]
    path = tmp_path / "fire.json"
    path.write_text(json.dumps({"building": str(evac.resolve()), "fire": fire}), encoding="utf-8")
    same = load_fire_building(path).model_dump(exclude={"building"})
    assert same == load_example("tower_30_residential").model_dump(exclude={"building"})
    path.write_text(json.dumps({"building": str(evac.resolve()), "storeys": {"count": 3}, "fire": fire}),
                    encoding="utf-8")
    with pytest.raises(ValidationError, match=r"tables \['storeys'\] are both here and in"):
        load_fire_building(path)
    path.write_text(json.dumps({"building": "nowhere.toml", "fire": fire}), encoding="utf-8")
    with pytest.raises(DataMissingError, match="nowhere.toml: no such building file"):
        load_fire_building(path)


# ----------------------------------------------------------------------------- the examples
def test_the_residential_tower_builds_the_network_its_description_says(tower):
    spec, net = tower
    assert net.n_storeys == 30 and not net.refuge.any()
    # per storey: 4 flats, a lobby, 2 stairs (of [[stairs]]), 2 lift shafts
    assert by_kind(net) == {"room": 120, "lobby": 30, "stair": 60, "lift": 60}
    # 2 stairs + 2 lifts, each 29 ceiling vents between 30 storeys
    assert net.n_vvents == 4 * 29
    np.testing.assert_allclose(net.base_m, net.storey_base_m[net.storey])
    np.testing.assert_allclose(net.storey_base_m, 3.0 * np.arange(30))
    flats = net.kind == COMPARTMENT_KINDS.index("room")
    # net plate: 600 - 25 lobby - 2 stairs - 2 x 6.5 lift cars, split in four
    stair = spec.stair_area_m2(0)
    assert net.area_m2[flats] == pytest.approx((600.0 - 25.0 - 2 * stair - 13.0) / 4)
    assert net.height_m[flats] == pytest.approx(2.8)
    assert np.all(net.attrs["fuel_load_mj_m2"][flats] == FUEL_LOAD_MJ_M2["dwelling"][1])
    windows = net.vent_kind == VENT_KINDS.index("window")
    assert windows.sum() == 120 and np.all(net.vent_break_c[windows] == 600.0)  # double glazing
    assert np.all(net.vent_open[windows] == 0.0)
    assert not net.sprinklered.any() and net.detector.sum() == 30  # lobbies only (GB 50016 §8.4.2)
    assert np.isnan(net.attrs["pressurisation_pa"]).all()


def test_ping_an_has_115_storeys_599_m_and_a_network_of_sensible_size(ping_an):
    spec, net = ping_an
    assert net.n_storeys == 115
    assert net.storey_base_m[114] == pytest.approx(555.1)     # public: top floor at 555.1 m
    assert net.attrs["architectural_height_m"] == pytest.approx(599.1)
    assert spec.storey_heights_m().sum() < 599.1
    assert list(np.flatnonzero(net.refuge)) == [9, 16, 32, 48, 64, 80, 96, 112]
    assert net.storey_base_m[9] <= 50.0                       # GB 50016-2014 §5.5.23
    assert net.n_compartments < 3000
    kinds = by_kind(net)
    assert kinds["room"] == 8 * (115 - 8) + 8                 # office zones, plant on refuge floors
    assert kinds["refuge"] == 8 and kinds["corridor"] == kinds["lobby"] == kinds["smoke_shaft"] == 115
    assert kinds["stair"] == 3 * 115
    spans = [spec.lift_span(x) for x in spec.fire.core.lifts]
    assert kinds["lift"] == sum(hi - lo + 1 for lo, hi in spans)
    refuge = net.kind == COMPARTMENT_KINDS.index("refuge")
    assert np.all(net.area_m2[refuge] == 930.0)
    for s in (0, 9, 50, 114):  # the storey's compartments tile its plate: 3136 m² at L1 to 1444 m² at L115
        assert net.area_m2[net.on_storey(s)].sum() == pytest.approx(3136.0 + (1444.0 - 3136.0) * s / 114)
    # the plate narrows: an office zone of the top storey is smaller than one of the ground's
    assert net.area_m2[net.index("114/office 1")] < net.area_m2[net.index("0/office 1")]
    dp = net.attrs["pressurisation_pa"]
    stairs = net.kind == COMPARTMENT_KINDS.index("stair")
    assert np.all(dp[stairs] == 50.0) and np.all(dp[refuge] == 25.0)
    assert np.all(dp[net.kind == COMPARTMENT_KINDS.index("lobby")] == 25.0)
    assert np.isnan(dp[net.kind == COMPARTMENT_KINDS.index("room")]).all()
    rooms = net.kind == COMPARTMENT_KINDS.index("room")
    assert net.sprinklered[rooms].all() and not net.sprinklered[stairs].any()
    assert net.attrs["sprinklers"]["rti"] == 50.0 and net.attrs["sprinklers"]["activation_c"] == 68.0


def test_express_lifts_have_landing_doors_only_where_they_stop(ping_an):
    spec, net = ping_an
    doors = net.vent_kind == VENT_KINDS.index("shaft_door")
    into = [net.names[b].split("/", 1)[1] for b in net.vent_b[doors]]
    # zone 2: the ground, then L34-L65 (storeys 33-64) after the express run
    assert into.count("zone 2 lifts") == 1 + 32
    assert into.count("shuttle lifts") == 4                  # public: L1, L49, L81, L97
    assert into.count("fire lifts") == 115


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_compartment_is_reachable_and_every_shaft_continuous(name, request):
    spec, net = request.getfixturevalue("tower" if name.startswith("tower") else "ping_an")
    assert reachable_from_outside(net).all()
    vv = {(int(lo), int(hi)) for lo, hi in zip(net.vvent_lower, net.vvent_upper, strict=True)}
    columns = shaft_columns(net)
    assert len(columns) == len(spec.stairs) + len(spec.fire.core.lifts) + len(spec.fire.core.smoke_shafts)
    for column in columns.values():
        storeys = net.storey[column]
        assert np.all(np.diff(storeys) == 1)
        for lo, hi in zip(column[:-1], column[1:], strict=True):
            assert (lo, hi) in vv
            assert net.base_m[lo] + net.height_m[lo] == pytest.approx(net.base_m[hi])
    for shaft in spec.fire.core.smoke_shafts:
        assert (columns[shaft.name][-1], OUTSIDE) in vv          # a smoke shaft opens at its top


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_the_fire_and_the_evacuation_see_the_same_storeys_refuges_and_stairs(name):
    fire = load_example(name)
    evac = resolve(parse_building(evacuation_tables(EXAMPLES[name])))
    assert evac.n_floors == fire.n_storeys
    np.testing.assert_allclose(evac.floor_elevation_m, fire.storey_base_m())
    np.testing.assert_allclose(evac.storey_height_m, fire.storey_heights_m())
    assert list(np.flatnonzero(evac.refuge)) == fire.refuge_floors()
    assert evac.stair_names == fire.stair_names()
    if name == "tower_30_residential":   # the evacuation file itself, read by its own loader
        evac_file = EXAMPLES[name].parent / merged_description(EXAMPLES[name])["building"]
        assert resolve(load_building(evac_file)).n_floors == 30


# ----------------------------------------------------------------------------- OSM
def test_osm_towers_get_the_evacuation_rules_and_fire_defaults(shenzhen_dir):
    """The 39-storey, 199.6 m 中电长城大厦南塔 (OSM way 220656015) of central Nanshan."""
    path = shenzhen_dir / "osm" / "nanshan_buildings.geojson"
    feature = next(f for f in json.loads(path.read_text(encoding="utf-8"))["features"]
                   if f["properties"].get("osmid") == "220656015")
    spec = fire_building_from_osm(feature)
    assert spec.n_storeys == 39 and spec.storey_heights_m().sum() == pytest.approx(199.6)
    assert spec.refuge_floors() == [9, 18, 27, 36]           # GB 50016 §5.5.23: within every 50 m
    assert spec.fire.occupancy == "office" and spec.fire.sprinklers.installed
    assert all(s.pressurised for s in spec.fire.core.stairs)  # GB 51251-2017 §3.1.2: public > 50 m
    net = build_network(spec)
    assert reachable_from_outside(net).all() and by_kind(net)["refuge"] == 4
    # the evacuation's generator on the same building: same storeys, refuge floors and stairs
    towers = osm_towers(path, min_levels=39)
    row = towers[towers["osmid"] == "220656015"].iloc[0]
    evac = resolve(tower_from_osm_row(row))
    np.testing.assert_allclose(evac.floor_elevation_m, spec.storey_base_m())
    assert list(np.flatnonzero(evac.refuge)) == spec.refuge_floors() and evac.n_stairs == len(spec.stairs)
    assert fire_building_from_osm(row) == spec                # a GeoDataFrame row reads the same
    bad = copy.deepcopy(feature)
    bad["properties"]["building:levels"] = "many"
    with pytest.raises(ValidationError, match="building:levels='many'"):
        fire_building_from_osm(bad)


# ----------------------------------------------------------------------------- IFC
def tiny_ifc(path, *, with_areas: bool = True):
    """A 4-storey IFC model made with ifcopenshell's API: per storey two flats (80 and 120 m²), a
    lobby (20 m²), a stair (12 m²), a lift and 1000 mm doors; one basement storey below grade."""
    if os.environ.get("CI"):  # CI installs the ifc extra: a missing ifcopenshell there is a failure
        import ifcopenshell
    else:
        pytest.importorskip("ifcopenshell")
        import ifcopenshell
    import ifcopenshell.api.aggregate
    import ifcopenshell.api.pset
    import ifcopenshell.api.root
    import ifcopenshell.api.spatial
    import ifcopenshell.api.unit

    api = ifcopenshell.api
    model = ifcopenshell.file(schema="IFC4")
    project = api.root.create_entity(model, ifc_class="IfcProject", name="tiny")
    api.unit.assign_unit(model)  # millimetres
    site = api.root.create_entity(model, ifc_class="IfcSite", name="site")
    building = api.root.create_entity(model, ifc_class="IfcBuilding", name="tiny tower")
    api.aggregate.assign_object(model, relating_object=project, products=[site])
    api.aggregate.assign_object(model, relating_object=site, products=[building])
    for i, elevation_mm in enumerate((-3500.0, 0.0, 4500.0, 7700.0, 10900.0)):
        storey = api.root.create_entity(model, ifc_class="IfcBuildingStorey", name=f"L{i}")
        storey.Elevation = elevation_mm
        api.aggregate.assign_object(model, relating_object=building, products=[storey])
        for name, long_name, area in (("01", "flat", 80.0), ("02", "flat", 120.0), ("L", "Lobby", 20.0),
                                      ("S1", "Stair 1", 12.0), ("E1", "Lift 1", 6.0)):
            space = api.root.create_entity(model, ifc_class="IfcSpace", name=name)
            space.LongName = long_name
            api.aggregate.assign_object(model, relating_object=storey, products=[space])
            if with_areas:
                qto = api.pset.add_qto(model, product=space, name="Qto_SpaceBaseQuantities")
                api.pset.edit_qto(model, qto=qto, properties={"NetFloorArea": area})
        door = api.root.create_entity(model, ifc_class="IfcDoor", name="door")
        door.OverallWidth, door.OverallHeight = 1000.0, 2100.0
        api.spatial.assign_container(model, relating_structure=storey, products=[door])
    model.write(str(path))
    return path


def test_an_ifc_model_gives_storeys_rooms_doors_and_core(tmp_path):
    from physics.fire_building import fire_building_from_ifc

    spec = fire_building_from_ifc(tiny_ifc(tmp_path / "tiny.ifc"), occupancy="dwelling")
    assert spec.name == "tiny tower" and spec.n_storeys == 4   # the basement is below grade
    np.testing.assert_allclose(spec.storey_heights_m(), [4.5, 3.2, 3.2, 3.2])
    assert [(r.name, r.share, r.door_width_m) for r in spec.fire.rooms] == \
        [("flat 1", 0.4, 1.0), ("flat 2", 0.6, 1.0)]
    assert spec.fire.core.lobby_area_m2 == 20.0 and len(spec.stairs) == 1
    assert spec.fire.core.lifts[0].cars == 1
    net = build_network(spec)
    assert by_kind(net) == {"room": 8, "lobby": 4, "stair": 4, "lift": 4}
    np.testing.assert_allclose(net.area_m2[net.index("2/flat 2")], 120.0)   # the plate's net is the rooms
    np.testing.assert_allclose(net.area_m2[net.index("2/stair A")], 12.0)
    np.testing.assert_allclose(net.storey_base_m, [0.0, 4.5, 7.7, 10.9])
    assert reachable_from_outside(net).all()
    with pytest.raises(ValidationError, match=r"spaces \['01', '02', 'E1', 'L', 'S1'\] .* no NetFloorArea"):
        fire_building_from_ifc(tiny_ifc(tmp_path / "bare.ifc", with_areas=False))
