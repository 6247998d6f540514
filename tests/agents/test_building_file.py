"""Building files: the schema's checks, ASET, refuge floors and towers from OSM building:levels."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from agents.building import (
    load_aset,
    load_building,
    osm_towers,
    parse_building,
    resolve,
    tower_from_osm,
    tower_from_osm_row,
)
from agents.building_evac import events, simulate
from twin.errors import DataIntegrityError, DataMissingError, ValidationError

EXAMPLE = Path(__file__).resolve().parents[2] / "agents" / "data" / "tower_30_residential.toml"

BAD = """
name = "bad"
colour = "red"
[storeys]
count = 0
[occupancy]
floor_area_m2 = 600.0
load_factor_m2_per_person = 18.6
[[stairs]]
width_m = 1.2
riser_mm = 300.0
[[exits]]
width_m = -1.0
"""


def small(**movement):
    return {
        "name": "small", "storeys": {"count": 4, "height_m": 3.0},
        "occupancy": {"floor_area_m2": 400.0, "people_per_floor": 20, "travel_m": 10.0},
        "stairs": [{"width_m": 1.2}], "exits": [{"width_m": 1.2}],
        "movement": {"premovement": {"dist": "constant", "value_s": 0.0}, **movement},
    }


def test_example_file_loads_and_resolves():
    tower = resolve(load_building(EXAMPLE))
    assert tower.n_floors == 30 and tower.n_stairs == 2
    assert list(tower.people[:2]) == [0, 32]  # 600 m² / 18.6 m² per person, lobby empty
    assert tower.aset_s[29] == 900.0


def test_bad_file_is_refused_with_every_problem_named(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(BAD, encoding="utf-8")
    with pytest.raises(ValidationError) as err:
        load_building(path)
    msg = str(err.value)
    assert str(path) in msg
    for expected in ("colour = 'red'", "storeys.count = 0", "stairs.0.riser_mm = 300.0", "exits.0.width_m = -1.0"):
        assert expected in msg


def test_broken_toml_and_missing_file(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("name = \n", encoding="utf-8")
    with pytest.raises(DataIntegrityError, match="not valid TOML"):
        load_building(path)
    with pytest.raises(DataMissingError):
        load_building(tmp_path / "none.toml")


def test_cross_references_are_checked():
    d = small()
    d["floors"] = [{"index": 9, "people": 1}]
    d["stairs"] = [{"width_m": 1.2, "exit": 3}]
    with pytest.raises(ValidationError) as err:
        parse_building(d)
    assert "floors.0.index=9" in str(err.value) and "stairs.0.exit=3" in str(err.value)


def test_riser_tread_outside_the_sfpe_table_is_refused():
    d = small()
    d["stairs"] = [{"width_m": 1.2, "riser_mm": 200.0, "tread_mm": 220.0}]
    with pytest.raises(ValidationError, match="outside the SFPE stair table"):
        parse_building(d)


@pytest.mark.parametrize("aset, unsafe", [pytest.param(5.0, True, id="aset-before-rset"),
                                          pytest.param(5000.0, False, id="aset-after-rset")])
def test_rset_minus_aset_sign(aset, unsafe):
    """RSET - ASET > 0 where people are still on the floor after its ASET (and the event says so)."""
    d = small()
    d["floors"] = [{"index": 3, "aset_s": aset}]
    ds = simulate(resolve(parse_building(d)), seed=1)
    margin = float(ds["rset_minus_aset"].sel(floor=3))
    assert (margin > 0) is unsafe
    assert math.isnan(float(ds["rset_minus_aset"].sel(floor=2)))
    cleared = [e for e in events(ds) if e.kind == "floor_cleared" and e.data["floor"] == 3]
    assert (cleared[0].severity.value == "warning") is unsafe


def test_aset_csv(tmp_path):
    good = tmp_path / "aset.csv"
    good.write_text("floor,aset_s\n3,600\n1,900\n", encoding="utf-8")
    assert load_aset(good, 4) == {3: 600.0, 1: 900.0}
    bad = tmp_path / "bad.csv"
    bad.write_text("floor,aset_s\n7,600\n", encoding="utf-8")
    with pytest.raises(DataIntegrityError, match="line 2: floor=7"):
        load_aset(bad, 4)


def test_refuge_floor_stops_the_people_above():
    """refuge_mode "stop": everyone above the refuge floor ends there; the floors below go out."""
    d = small(refuge_mode="stop")
    d["storeys"] = {"count": 6, "height_m": 3.0}
    d["floors"] = [{"index": 3, "refuge": True, "people": 0}]
    ds = simulate(resolve(parse_building(d)), seed=2)
    ended = ds["safe_in"].values
    floor = ds["occ_floor"].values
    assert np.all(ended[floor > 3] == 4) and np.all(ended[(floor > 0) & (floor < 3)] == 3)
    assert int(ds["people_in_refuge"].values[-1]) == 40
    d["movement"]["refuge_mode"] = "continue"
    ds2 = simulate(resolve(parse_building(d)), seed=2)
    assert np.all(ds2["safe_in"].values == 3)
    assert ds2.attrs["rset_s"] > ds.attrs["rset_s"]


def test_tower_from_osm_levels_follows_the_stated_rules():
    """GB 50016-2014 §5.5.23: refuge floors over 100 m, within every 50 m; two stairs above 27 m."""
    spec = tower_from_osm(39, 1200.0, use="business", height_m=199.6)
    tower = resolve(spec)
    storey = 199.6 / 39
    refuges = np.flatnonzero(tower.refuge)
    assert list(refuges) == [9, 18, 27, 36]  # 46, 92, 138, 184 m: every floor within 50 m above one
    assert tower.floor_elevation_m[-1] - tower.floor_elevation_m[refuges[-1]] <= 50.0
    assert tower.floor_elevation_m[refuges[0]] <= 50.0 < tower.floor_elevation_m[refuges[0] + 1]
    assert np.all(np.diff(tower.floor_elevation_m[refuges]) <= 50.0 + 1e-9)
    assert tower.storey_height_m[0] == pytest.approx(storey)
    assert tower.n_stairs == 2
    assert tower.people[1] == int(1200.0 // 13.9)
    low = resolve(tower_from_osm(6, 300.0))
    assert low.n_stairs == 1 and not low.refuge.any()


def test_towers_from_the_nanshan_osm_buildings(shenzhen_dir):
    """The real 2021 OSM footprints of central Nanshan: Tencent Building (39 storeys, 193.2 m) runs."""
    towers = osm_towers(shenzhen_dir / "osm" / "nanshan_buildings.geojson", min_levels=30)
    assert len(towers) >= 20
    row = towers[towers["name"] == "腾讯大厦"].iloc[0]
    assert row["levels"] == 39 and row["height_m"] == pytest.approx(193.2)
    spec = tower_from_osm_row(row)
    tower = resolve(spec)
    assert 113.9 < tower.lon < 114.0 and 22.5 < tower.lat < 22.6
    assert len(tower.footprint) >= 4 and tower.n_floors == 39
    ds = simulate(tower, seed=1)
    assert ds.attrs["people_not_safe"] == 0 and ds.attrs["rset_s"] > 0


def test_json_file_reads_like_toml(tmp_path):
    import tomllib

    path = tmp_path / "tower.json"
    path.write_text(json.dumps(tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))), encoding="utf-8")
    assert load_building(path) == load_building(EXAMPLE)


def test_people_left_at_max_time_are_reported_stranded():
    ds = simulate(resolve(parse_building(small())), seed=1, max_time_s=30.0)
    assert math.isnan(ds.attrs["rset_s"]) and ds.attrs["people_not_safe"] > 0
    last = list(events(ds))[-1]
    assert last.kind == "person_stranded" and last.data["people"] == ds.attrs["people_not_safe"]


def test_footprint_from_a_toml_file(tmp_path):
    text = EXAMPLE.read_text(encoding="utf-8").replace(
        'label = "demo location', 'footprint = [[114.0503, 22.5365], [114.0507, 22.5365], [114.0507, 22.5369]]\n'
        'label = "demo location')
    path = tmp_path / "fp.toml"
    path.write_text(text, encoding="utf-8")
    assert resolve(load_building(path)).footprint[1] == (114.0507, 22.5365)
    path.write_text(text.replace("[114.0507, 22.5369]", "[514.0, 22.5]"), encoding="utf-8")
    with pytest.raises(ValidationError, match=r"location: footprint.2 = \[514.0, 22.5\]: give \[lon, lat\]"):
        load_building(path)


def test_a_fire_building_file_is_an_evacuation_file_too():
    # physics/data/fire_buildings/ping_an_finance_centre.toml holds the shared tables and [fire]:
    # the evacuation reads it as is and ignores [fire]
    path = Path(__file__).parents[2] / "physics" / "data" / "fire_buildings" / "ping_an_finance_centre.toml"
    spec = load_building(path)
    assert spec.fire is not None and "core" in spec.fire
    tower = resolve(spec)
    assert tower.n_floors == 115
