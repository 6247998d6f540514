"""Census totals over grid cells, hazard zones and evacuee groups (agents.population)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from agents.population import evacuee_groups, hazard_zone, population_grid, read_census
from twin.errors import DataMissingError, ValidationError


def _grid(district: np.ndarray, land: np.ndarray | None = None, cell: float = 100.0) -> xr.Dataset:
    ny, nx = district.shape
    return xr.Dataset({"district": (("y", "x"), district), "land": (("y", "x"), np.ones_like(district)
                                                                   if land is None else land)},
                      coords={"x": 500_000 + cell * (np.arange(nx) + 0.5),
                              "y": 2_490_000 - cell * (np.arange(ny) + 0.5)},
                      attrs={"crs": "EPSG:4547", "district_adcodes": json.dumps(["440304", "440303"])})


CENSUS = pd.DataFrame({"adcode": ["440304", "440303"], "name_zh": ["福田区", "罗湖区"],
                       "population": [1_553_225, 1_143_801]})


def test_the_census_has_the_yearbook_totals(twin_data):
    """2020 census, yearbook table: Shenzhen 17,494,398; Futian 1,553,225 (data set README, the CSV's source)."""
    c = read_census()
    total = dict(zip(c["adcode"], c["population"], strict=True))
    assert total["440300"] == 17_494_398 and total["440304"] == 1_553_225
    assert sum(v for k, v in total.items() if k != "440300") == 17_494_398


def test_a_missing_census_names_the_file_and_the_fetch_command(tmp_path, monkeypatch):
    monkeypatch.setenv("TWIN_DATA", str(tmp_path))
    with pytest.raises(DataMissingError, match=r"census2020_districts\.csv.*twin data fetch"):
        read_census()


def test_a_district_the_grid_holds_whole_sums_back_to_its_census_total():
    d = np.zeros((20, 30), np.int16)
    d[:, 20:] = 1
    land = np.ones_like(d)
    land[:3, :5] = 0  # water: holds nobody
    # Futian whole on the grid; a tenth of Luohu's polygon inside it
    pop = population_grid(_grid(d, land), CENSUS, coverage={"440304": 1.0, "440303": 0.1})
    assert float(pop.where(d == 0).sum()) == pytest.approx(1_553_225, rel=1e-12)
    assert float(pop.where(d == 1).sum()) == pytest.approx(1_143_801 / 10, rel=1e-12)
    assert float(pop.values[:3, :5].sum()) == 0.0
    assert np.ptp(pop.values[(d == 0) & (land == 1)]) == 0.0  # uniform: the stated assumption


def test_hazard_zone_accepts_boolean_and_probability_rasters_and_a_flood_run():
    b = xr.DataArray(np.array([[True, False], [False, True]]), dims=("y", "x"))
    assert hazard_zone(b).values.tolist() == [[True, False], [False, True]]
    p = xr.DataArray(np.array([[0.2, 0.5], [0.9, np.nan]]), dims=("y", "x"))
    assert hazard_zone(p).values.tolist() == [[False, True], [True, False]]
    assert hazard_zone(p, probability_threshold=0.8).values.tolist() == [[False, False], [True, False]]
    with pytest.raises(ValidationError, match="probability"):
        hazard_zone(p * 3)
    depth = np.zeros((2, 2, 2))
    depth[1] = [[0.2, 0.6], [0.4, 0.0]]
    speed = np.zeros_like(depth)
    speed[1, 1, 0] = 1.6  # 0.4 m x 1.6 m/s: D·V 0.64 > 0.6 -> H4
    flood = xr.Dataset({"depth": (("time", "y", "x"), depth), "speed": (("time", "y", "x"), speed)})
    assert hazard_zone(flood).values.tolist() == [[False, True], [True, False]]  # ARR H3 and up
    assert hazard_zone(flood, depth_threshold_m=0.15).values.tolist() == [[True, True], [True, False]]
    with pytest.raises(ValidationError, match="not both"):
        hazard_zone(flood, depth_threshold_m=0.3, hazard_class=3)


class _NearestRouter:
    """Stands in for agents.routing.Router: node i sits at the centre of column i."""

    def __init__(self, x):
        self.x = np.asarray(x)
        self.node_lonlat = np.column_stack([114.0 + np.arange(len(x)) * 1e-3, np.full(len(x), 22.5)])

    def nearest(self, east, north):
        return np.abs(np.asarray(east)[:, None] - self.x[None, :]).argmin(axis=1)


def test_groups_gather_the_zone_people_at_nodes_in_whole_groups():
    d = np.zeros((4, 3), np.int16)
    pop = population_grid(_grid(d), CENSUS, coverage={"440304": 12 / 10_000})  # 1,553,225 / 10,000 a cell
    zone = xr.DataArray(np.zeros((4, 3), bool), dims=("y", "x"))
    zone[:, 1] = True
    router = _NearestRouter(pop["x"].values)
    g = evacuee_groups(pop, zone, router, group_size=20)
    expected = round(4 * 1_553_225 / 10_000)
    assert g["people"].sum() == expected
    assert (g["node"] == 1).all() and g["people"].max() == 20 and (g["people"] == 20).sum() == expected // 20
    assert len(evacuee_groups(pop, zone, router, group_size=1)) == expected  # one agent per person
