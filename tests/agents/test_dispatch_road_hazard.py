"""agents.road_hazard: the Pregnolato et al. 2017 curve and flood sampling along edges.

Expected speeds are eq. 4 of Pregnolato, Ford, Wilkinson & Dawson (2017),
Transp. Res. D 55:67-81, v(w) = 0.0009 w² − 0.5529 w + 86.9448 km/h (w in
mm), evaluated by hand; the road is closed from 300 mm (same paper). The D·V
limit 0.6 m²/s is Shand et al. 2011 (ARR Project 10, large 4WD) / ARR 2019
Table 6.7.4. Tolerances are float round-off.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import xarray as xr
from shapely.geometry import LineString

from agents.road_hazard import (
    CLOSED,
    OPEN,
    SLOWED,
    apply_hazard,
    pregnolato_speed_kmh,
    road_hazard,
    speed_factor,
    transitions,
)
from gis.crs import WGS84, WORKING_CRS, transformer
from gis.roads import RoadGraph
from twin.errors import DataError, DataMissingError


@pytest.mark.parametrize(("depth_m", "kmh"), [
    pytest.param(0.0, 86.9448, id="dry"),
    pytest.param(0.1, 0.0009 * 100**2 - 0.5529 * 100 + 86.9448, id="100mm-40.65"),
    pytest.param(0.2, 0.0009 * 200**2 - 0.5529 * 200 + 86.9448, id="200mm-12.36"),
    pytest.param(0.299, 0.0009 * 299**2 - 0.5529 * 299 + 86.9448, id="299mm-2.09"),
    pytest.param(0.3, 0.0, id="300mm-closed"),
    pytest.param(1.5, 0.0, id="deep-closed"),
])
def test_pregnolato_curve_points(depth_m, kmh):
    assert float(pregnolato_speed_kmh(depth_m)) == pytest.approx(kmh, abs=1e-9)


def test_speed_factor_caps_at_free_flow():
    # a 20 km/h street is not slowed until v(w) < 20 km/h (w ≈ 166 mm); a 60 km/h one earlier
    f = speed_factor(np.array([0.05, 0.1, 0.1]), np.array([20, 20, 60]) / 3.6)
    assert f[0] == 1.0 and f[1] == 1.0
    assert f[2] == pytest.approx((0.0009 * 1e4 - 55.29 + 86.9448) / 60, rel=1e-12)


# ------------------------------------------------------------------ synthetic raster
LON0, LAT0 = 114.05, 22.53


@pytest.fixture()
def line_roads() -> RoadGraph:
    """Two-way street a-b of ~206 m going east, and a side street b-c going north."""
    pts = {"a": (LON0, LAT0), "b": (LON0 + 0.002, LAT0), "c": (LON0 + 0.002, LAT0 + 0.002)}
    rows = [("ab", "a", "b"), ("ba", "b", "a"), ("bc", "b", "c"), ("cb", "c", "b")]
    return RoadGraph.from_geodataframe(gpd.GeoDataFrame({
        "id": [r[0] for r in rows], "u": [r[1] for r in rows], "v": [r[2] for r in rows],
        "highway": ["primary"] * 4,
        "geometry": [LineString([pts[r[1]], pts[r[2]]]) for r in rows]}, crs=WGS84))


def flood_grid(depth_at, speed=0.0, cell=10.0, times=(0.0, 600.0, 1200.0)) -> xr.Dataset:
    """A 10 m grid around the streets; ``depth_at(t_index, east, north)`` gives the depth."""
    e0, n0 = transformer(WGS84, WORKING_CRS).transform(LON0, LAT0)
    x = e0 - 100 + cell * (np.arange(50) + 0.5)
    y = n0 + 400 - cell * (np.arange(60) + 0.5)  # north-up: y decreasing
    X, Y = np.meshgrid(x, y)
    depth = np.stack([depth_at(i, X, Y) for i in range(len(times))]).astype("float32")
    return xr.Dataset({"depth": (("time", "y", "x"), depth),
                       "speed": (("time", "y", "x"), np.full_like(depth, speed))},
                      coords={"time": list(times), "x": x, "y": y}, attrs={"crs": "EPSG:4547"})


def test_pond_on_one_street_slows_then_closes_it(line_roads):
    e0, n0 = transformer(WGS84, WORKING_CRS).transform(LON0 + 0.001, LAT0)
    levels = [0.0, 0.15, 0.35]  # dry, slowed (50 km/h road: v(150 mm) = 24.3 km/h), closed

    def pond(i, X, Y):
        return np.where((abs(X - e0) < 15) & (abs(Y - n0) < 15), levels[i], 0.0)

    hz = road_hazard(line_roads, flood_grid(pond))
    ix = {e: i for i, e in enumerate(hz.edge_ids)}
    for e in ("ab", "ba"):
        assert hz.state[:, ix[e]].tolist() == [OPEN, SLOWED, CLOSED]
        assert hz.depth_m[1, ix[e]] == pytest.approx(0.15, rel=1e-6)
        assert hz.speed_factor[1, ix[e]] == pytest.approx(
            float(pregnolato_speed_kmh(0.15)) / 50.0, rel=1e-6)
    for e in ("bc", "cb"):
        assert hz.state[:, ix[e]].tolist() == [OPEN, OPEN, OPEN]


def test_fast_shallow_water_closes_by_depth_times_velocity(line_roads):
    def sheet(i, X, Y):
        return np.full_like(X, [0.0, 0.2, 0.2][i])

    slow = road_hazard(line_roads, flood_grid(sheet, speed=2.0))   # D·V = 0.4 ≤ 0.6
    fast = road_hazard(line_roads, flood_grid(sheet, speed=3.5))   # D·V = 0.7 > 0.6
    assert (slow.state[1] == SLOWED).all()
    assert (fast.state[1] == CLOSED).all()
    no_limit = road_hazard(line_roads, flood_grid(sheet, speed=3.5), dv_limit=None)
    assert (no_limit.state[1] == SLOWED).all()


def test_sea_cells_and_points_off_the_grid_are_dry(line_roads):
    ds = flood_grid(lambda i, X, Y: np.full_like(X, 1.0))
    ds["sea"] = (("y", "x"), np.ones((ds.sizes["y"], ds.sizes["x"]), dtype="uint8"))
    assert (road_hazard(line_roads, ds).state == OPEN).all()


def test_apply_closes_slows_and_reopens_on_the_graph(line_roads):
    e0, n0 = transformer(WGS84, WORKING_CRS).transform(LON0 + 0.001, LAT0)
    levels = [0.0, 0.35, 0.0]

    def pond(i, X, Y):
        return np.where((abs(X - e0) < 15) & (abs(Y - n0) < 15), levels[i], 0.0)

    hz = road_hazard(line_roads, flood_grid(pond))
    line_roads.close_edges(["bc"], "fire")
    changes = apply_hazard(line_roads, hz, 1)
    assert sorted(changes["closed"]) == ["ab", "ba"]
    assert line_roads.edge("ab")["closed_by"] == {"flood"}
    changes = apply_hazard(line_roads, hz, 2)
    assert sorted(changes["reopened"]) == ["ab", "ba"]
    assert not line_roads.edge("ab")["closed"]
    assert line_roads.edge("bc")["closed_by"] == {"fire"}  # another reason's closure stays
    assert [t for t in transitions(hz) if t[3] == CLOSED] == [
        (1, hz.edge_ids.index("ab"), OPEN, CLOSED), (1, hz.edge_ids.index("ba"), OPEN, CLOSED)]


def test_bad_flood_file_is_refused(tmp_path, line_roads):
    with pytest.raises(DataMissingError, match="not found"):
        road_hazard(line_roads, tmp_path / "nope.nc")
    bad = tmp_path / "bad.nc"
    xr.Dataset({"h": (("y", "x"), np.zeros((3, 3)))}).to_netcdf(bad)
    with pytest.raises(DataError, match="no 'depth'"):
        road_hazard(line_roads, bad)
