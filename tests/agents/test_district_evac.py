"""Validation of the district evacuation model (agents.district_evac) on small networks built here.

Expected numbers: free walking speed 1.34 m/s (Weidmann 1993), specific flow
1.32 P/(s·m) (SFPE hydraulic model, Fs,max for corridors and doors) times the
walkable width of a residential street a direction (5.0 m,
``WALK_WIDTH_M``), the ARR 2019 H2 depth limit 0.5 m (inclusive) above which
a street closes to walkers (class H3). Tolerances: the model moves people at
whole time steps (dt = 1 s), so times agree within one step per edge.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from shapely.geometry import LineString

from agents.district_evac import WALK_WIDTH_M, EvacParams, simulate
from gis.crs import WGS84, WORKING_CRS, transformer
from gis.roads import RoadGraph

LON0, LAT0 = 114.05, 22.54
M_PER_DEG_LAT = 110_760.0  # only places test nodes; lengths below are the graph's own geodesic lengths


def _ll(east_m: float, north_m: float) -> tuple[float, float]:
    return (LON0 + east_m / (M_PER_DEG_LAT * np.cos(np.radians(LAT0))), LAT0 + north_m / M_PER_DEG_LAT)


def _graph(nodes: dict[str, tuple[float, float]], links: list[tuple[str, str]],
           classes: dict[str, str] | None = None) -> RoadGraph:
    """Two-way streets (residential unless ``classes[a + b]`` says) between named points (metres east/north
    of a Futian point)."""
    rows = []
    for a, b in links:
        for u, v in ((a, b), (b, a)):
            rows.append({"id": f"{u}{v}", "u": u, "v": v, "road_class": (classes or {}).get(a + b, "residential"),
                         "geometry": LineString([_ll(*nodes[u]), _ll(*nodes[v])])})
    return RoadGraph.from_geodataframe(gpd.GeoDataFrame(rows, crs=WGS84))


def _groups(point, n: int, size: float) -> pd.DataFrame:
    lon, lat = _ll(*point)
    return pd.DataFrame({"lon": [lon] * n, "lat": [lat] * n, "people": [size] * n})


def _shelters(*entries) -> pd.DataFrame:
    return pd.DataFrame([{"name": name, "lon": _ll(*p)[0], "lat": _ll(*p)[1], "capacity": cap}
                         for name, p, cap in entries])


def _flood(roads: RoadGraph, wet_edge: str, depths: list[float], times: list[float], cell: float = 20.0):
    """A flood.nc-like Dataset: water ``depths[i]`` at ``times[i]`` along the middle of one edge (its
    central 60 %: the junctions and the other streets stay dry), dry elsewhere."""
    nd = roads.graph.nodes
    east = np.array([nd[n]["east_m"] for n in nd])
    north = np.array([nd[n]["north_m"] for n in nd])
    x = np.arange(east.min() - 200, east.max() + 200, cell) + cell / 2
    y = np.arange(north.max() + 200, north.min() - 200, -cell) - cell / 2
    geom = roads.edge(wet_edge)["geometry"]
    e, n = transformer(WGS84, WORKING_CRS).transform(*np.array(geom.coords).T)
    from shapely.ops import substring

    line = substring(LineString(np.column_stack([e, n])), 0.2, 0.8, normalized=True)
    xx, yy = np.meshgrid(x, y)
    from shapely import points

    wet = line.buffer(cell).contains(points(xx, yy))
    depth = np.array([np.where(wet, d, 0.0) for d in depths])
    return xr.Dataset({"depth": (("time", "y", "x"), depth), "speed": (("time", "y", "x"), np.zeros_like(depth))},
                      coords={"time": np.asarray(times, float), "x": x, "y": y},
                      attrs={"crs": "EPSG:4547"})


LINE = {"A": (0.0, 0.0), "B": (1000.0, 0.0)}


def test_one_edge_arrival_is_length_over_walking_speed():
    roads = _graph(LINE, [("A", "B")])
    res = simulate(roads, _shelters(("S", LINE["B"], 1e6)), _groups(LINE["A"], 1, 10.0),
                   params=EvacParams(departure_window_s=0.0))
    length = roads.edge("AB")["length_m"]
    t = float(res.dataset["group_done_s"][0])
    assert length / 1.34 <= t <= length / 1.34 + 1.0  # within one step (dt = 1 s)


def test_a_queue_discharges_at_the_flow_capacity():
    """50 groups of 20 start together: after the first, 980 people leave at 1.32 P/(s·m) × 5.0 m = 6.6 P/s."""
    roads = _graph(LINE, [("A", "B")])
    res = simulate(roads, _shelters(("S", LINE["B"], 1e6)), _groups(LINE["A"], 50, 20.0),
                   params=EvacParams(departure_window_s=0.0))
    done = np.sort(res.dataset["group_done_s"].values)
    capacity = 1.32 * WALK_WIDTH_M["residential"]
    assert done[-1] - done[0] == pytest.approx((50 - 1) * 20.0 / capacity, abs=1.0)


def test_a_narrowing_passes_its_own_capacity_and_the_queue_stands_before_it():
    """SFPE hydraulic model: flow through a transition is the least of the upstream flow and each element's
    capacity; RiMEA 3.0 test 12: congestion only before the narrowing. 2,000 people leave A at once along a
    trunk road (13.5 m a direction: 17.8 P/s) that narrows at B into a residential street (5.0 m: 6.6 P/s)."""
    nodes = {"A": (0.0, 0.0), "B": (300.0, 0.0), "C": (600.0, 0.0)}
    roads = _graph(nodes, [("A", "B"), ("B", "C")], {"AB": "trunk"})
    res = simulate(roads, _shelters(("S", nodes["C"], 1e6)), _groups(nodes["A"], 100, 20.0),
                   params=EvacParams(departure_window_s=0.0))
    ds = res.dataset
    done = np.sort(ds["group_done_s"].values)
    narrow = 1.32 * WALK_WIDTH_M["residential"]
    assert done[-1] - done[0] == pytest.approx((2000 - 20) / narrow, abs=2.0)
    queue = dict(zip(ds["edge_id"].values, ds["edge_max_queue"].values, strict=True))
    assert queue["AB"] > 1000  # most of the crowd waits at the narrowing
    assert queue["BC"] <= 20.0  # at most one group ever waits at the exit of the narrow street
    density = dict(zip(ds["edge_id"].values, ds["edge_max_density"].values, strict=True))
    assert density["BC"] < 1.0  # the narrow street flows; it is not packed to jam density (5.4 P/m²)


SQUARE = {"A": (0.0, 0.0), "B": (1000.0, 0.0), "C": (500.0, 600.0)}


def test_a_flooded_edge_forces_the_detour_and_the_arrival_matches_it():
    roads = _graph(SQUARE, [("A", "B"), ("A", "C"), ("C", "B")])
    flood = _flood(roads, "AB", [1.0, 1.0], [0.0, 3600.0])  # 1 m of still water: H3, closed to walkers
    res = simulate(roads, _shelters(("S", SQUARE["B"], 1e6)), _groups(SQUARE["A"], 1, 10.0), flood=flood,
                   params=EvacParams(departure_window_s=0.0))
    detour = roads.edge("AC")["length_m"] + roads.edge("CB")["length_m"]
    t = float(res.dataset["group_done_s"][0])
    assert int(res.dataset["group_final_state"][0]) == 2
    assert detour / 1.34 <= t <= detour / 1.34 + 2.0  # two edges: within one step each
    closed = res.dataset["edge_id"].values[np.isfinite(res.dataset["edge_first_closed"].values)]
    assert set(closed) == {"AB", "BA"}


def test_an_edge_flooding_mid_run_closes_when_its_depth_passes_the_h2_limit():
    """Depth rises linearly 0 -> 1 m over 600 s: it passes 0.5 m at 300 s; the flood is read every 60 s,
    and 0.5 m itself is still H2 (limits inclusive), so the street closes at the 360 s reading. A group
    walking it then (it needs 746 s) is stranded on it; one leaving later takes the detour."""
    roads = _graph(SQUARE, [("A", "B"), ("A", "C"), ("C", "B")])
    flood = _flood(roads, "AB", [0.0, 1.0], [0.0, 600.0])
    origins = _groups(SQUARE["A"], 2, 10.0).assign(depart_s=[0.0, 400.0])
    res = simulate(roads, _shelters(("S", SQUARE["B"], 1e6)), origins, flood=flood)
    ds = res.dataset
    first = dict(zip(ds["edge_id"].values, ds["edge_first_closed"].values, strict=True))
    assert first["AB"] == 360.0 and first["BA"] == 360.0
    assert np.isnan(first["AC"]) and np.isnan(first["CB"])
    early, late = 0, 1
    assert int(ds["group_final_state"][early]) == 3  # caught on the flooded street
    assert int(ds["group_final_state"][late]) == 2
    detour = roads.edge("AC")["length_m"] + roads.edge("CB")["length_m"]
    walked = float(ds["group_done_s"][late] - ds["group_depart_s"][late])
    assert detour / 1.34 - 1.0 <= walked <= detour / 1.34 + 2.0
    stranded = [e for e in res.events if e.kind == "person_stranded"]
    assert len(stranded) == 1 and stranded[0].data["people"] == 10.0
    assert [e.time_s for e in res.events if e.kind == "road_closed"] == [360.0, 360.0]


GRID = {f"{i}{j}": (300.0 * i, 300.0 * j) for i in range(4) for j in range(3)}
GRID_LINKS = [(f"{i}{j}", f"{i + 1}{j}") for i in range(3) for j in range(3)] + \
             [(f"{i}{j}", f"{i}{j + 1}") for i in range(4) for j in range(2)]


def _grid_run(seed: int = 0, **kw):
    roads = _graph(GRID, GRID_LINKS)
    origins = pd.concat([_groups(GRID[n], 15, 20.0) for n in ("00", "01", "02", "10")], ignore_index=True)
    shelters = _shelters(("near", GRID["31"], 400.0), ("far", GRID["32"], 1e5))
    return simulate(roads, shelters, origins, seed=seed, params=EvacParams(departure_window_s=120.0, **kw))


def test_people_are_conserved_and_no_edge_holds_more_than_its_storage():
    ds = _grid_run().dataset
    total = ds.attrs["evacuees"]
    s = ds["at_origin"] + ds["moving"] + ds["arrived"] + ds["stranded"]
    np.testing.assert_allclose(s.values, total, rtol=0, atol=1e-6)
    assert float(ds["edge_forced_in"].sum()) == 0.0  # no gridlock here: the stuck-time rule never fired
    assert (ds["edge_max_occupancy"] <= ds["edge_storage"] + 1e-9).all()
    assert float(ds["edge_max_queue"].max()) > 0  # the case is congested
    assert ds.attrs["arrived"] == total


def test_shelters_fill_up_and_later_groups_go_to_the_next():
    ds = _grid_run().dataset
    arrivals = dict(zip(ds["shelter_name"].values, ds["shelter_arrivals"].values, strict=True))
    assert arrivals["near"] == 400.0  # 20 groups of 20: full
    assert arrivals["far"] == ds.attrs["evacuees"] - 400.0


def test_runs_are_reproducible_with_a_seed():
    a, b, c = _grid_run(1).dataset, _grid_run(1).dataset, _grid_run(2).dataset
    for v in ("group_done_s", "group_depart_s", "moving", "edge_max_queue"):
        np.testing.assert_array_equal(a[v].values, b[v].values)
    assert not np.array_equal(a["group_depart_s"].values, c["group_depart_s"].values)


def test_a_cut_off_origin_is_stranded_with_an_event():
    roads = _graph(LINE, [("A", "B")])
    flood = _flood(roads, "AB", [1.0], [0.0])
    res = simulate(roads, _shelters(("S", LINE["B"], 1e6)), _groups(LINE["A"], 2, 10.0), flood=flood,
                   params=EvacParams(departure_window_s=0.0))
    assert res.dataset.attrs["stranded"] == 20.0
    ev = [e for e in res.events if e.kind == "person_stranded"]
    assert len(ev) == 2 and ev[0].data["reason"] == "no open route to a shelter with room"


def test_numba_and_reference_kernels_give_the_same_run():
    ds_a = _grid_run(4).dataset
    import agents.district_evac as de

    roads = _graph(GRID, GRID_LINKS)
    origins = pd.concat([_groups(GRID[n], 15, 20.0) for n in ("00", "01", "02", "10")], ignore_index=True)
    shelters = _shelters(("near", GRID["31"], 400.0), ("far", GRID["32"], 1e5))
    ds_b = de.simulate(roads, shelters, origins, seed=4, params=EvacParams(departure_window_s=120.0),
                       use_reference=True).dataset
    np.testing.assert_allclose(ds_a["group_done_s"].values, ds_b["group_done_s"].values)
    np.testing.assert_allclose(ds_a["arrived"].values, ds_b["arrived"].values)


def test_by_car_water_slows_by_pregnolato_and_closes_from_0_3_m():
    """Pregnolato et al. 2017: v(w) = 0.0009 w² − 0.5529 w + 86.9448 km/h (w in mm), impassable from 300 mm;
    a residential street's 20 km/h (CJJ 37 class default) becomes min(20, v(200 mm)) = 12.36 km/h."""
    roads = _graph(LINE, [("A", "B")])
    length = roads.edge("AB")["length_m"]
    slow = simulate(roads, _shelters(("S", LINE["B"], 1e6)), _groups(LINE["A"], 1, 3.0),
                    flood=_flood(roads, "AB", [0.2], [0.0]), params=EvacParams(mode="car", departure_window_s=0.0))
    v = (0.0009 * 200**2 - 0.5529 * 200 + 86.9448) / 3.6
    t = float(slow.dataset["group_done_s"][0])
    assert length / v <= t <= length / v + 1.0
    closed = simulate(roads, _shelters(("S", LINE["B"], 1e6)), _groups(LINE["A"], 1, 3.0),
                      flood=_flood(roads, "AB", [0.3], [0.0]), params=EvacParams(mode="car", departure_window_s=0.0))
    assert closed.dataset.attrs["stranded"] == 3.0
