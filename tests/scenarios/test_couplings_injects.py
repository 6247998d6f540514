"""The injects coupling on the Futian road graph: a drill timeline played on the run's clock.

* a road_lost closes exactly the street segment nearest its point (both
  directions, nothing else) at the first step at or after its time, and
  reopens it after ``lasts``; an OSM way closes every edge of that way;
* a sensor value over its alert threshold (the bridge's rules) makes a
  ``threshold_crossed`` and an incident at the sensor; one under it does not;
* a scenario's timeline becomes the coupling's parameters (times from ``after``).
"""

from __future__ import annotations

import numpy as np
import pytest

from scenarios.coupling import Coupling
from scenarios.runner import run_coupled

ROAD_POINT = [114.0480, 22.5390]  # the built-in typhoon night's road_lost point
SENSORS = [{"station": "FT-RG01", "kind": "rain_gauge", "lon": 114.0550, "lat": 22.5400, "name": ""},
           {"station": "FT-RG02", "kind": "rain_gauge", "lon": 114.0300, "lat": 22.5600, "name": ""},
           {"station": "FT-WL01", "kind": "water_level", "lon": 114.0450, "lat": 22.5230, "name": ""}]


def setup_graph(ctx):
    """The city's roads of the run's districts on its grid, no hazard."""
    from agents.city_roads import city_road_graph
    from scenarios.couplings.roads import grid_outline_wgs84

    graph = city_road_graph(ctx.city, districts=list(ctx.domain.selection))
    ctx.shared["road_graph"] = graph.within(grid_outline_wgs84(ctx.domain)).largest_scc()


def record_closed(ctx, t, dt):
    """After every coupling of the instant: the edges closed on the graph now."""
    g = ctx.shared["road_graph"]
    ctx.summary["closed"].append((t, sorted(str(e) for e in g.edge_ids if g.edge(e)["closed"])))


GRAPH = {"test_graph": Coupling(name="test_graph", phase="consequences", period_s=60.0, reads=(),
                                writes=("road_graph",), setup=setup_graph, step=lambda ctx, t, dt: None),
         "probe": Coupling(name="probe", phase="response", period_s=60.0, reads=("road_graph",),
                           writes=(), setup=lambda ctx: ctx.summary.update(closed=[]), step=record_closed)}


def run(tmp_path, injects, duration_s=1800.0, **params):
    cfg = {"districts": ["Futian"], "resolution_m": 250.0, "duration_s": duration_s, "seed": 1,
           "output_every_s": 600.0,
           "couplings": {"test_graph": {}, "probe": {}, "injects": {"injects": injects, **params}}}
    return run_coupled(cfg, tmp_path, couplings=GRAPH)


def road_lost(t_s, **payload):
    return {"t_s": t_s, "kind": "road_lost", "note": "", "payload": payload}


def sensor(t_s, station, kind, value, unit):
    return {"t_s": t_s, "kind": "sensor_value", "note": "",
            "payload": {"station": station, "sensor": kind, "value": value, "unit": unit}}


def nearest_by_geopandas(graph, lon, lat):
    """Edges at the least distance from the point, measured in EPSG:4547 with geopandas."""
    import geopandas as gpd

    gdf = graph.to_geodataframe().to_crs("EPSG:4547")
    pt = gpd.GeoSeries(gpd.points_from_xy([lon], [lat]), crs="EPSG:4326").to_crs("EPSG:4547").iloc[0]
    d = gdf.geometry.distance(pt).to_numpy()
    return sorted(str(i) for i in gdf["id"].to_numpy()[d <= d.min() + 1e-6])


def test_a_road_lost_closes_the_nearest_segment_and_reopens_it_after_lasts(twin_data, tmp_path):
    res = run(tmp_path / "road", [road_lost(290.0, lon=ROAD_POINT[0], lat=ROAD_POINT[1],
                                            reason="tree down", lasts=600.0)])
    graph = res.contexts["test_graph"].shared["road_graph"]
    want = nearest_by_geopandas(graph, *ROAD_POINT)
    assert 1 <= len(want) <= 2
    if len(want) == 2:  # the segment's two directions: the same end nodes, swapped
        assert graph.endpoints(want[0]) == graph.endpoints(want[1])[::-1]
    by_t = dict(res.contexts["probe"].summary["closed"])
    # the first step at or after 290 s is 300 s; lasts 600 s from 290 s: open again from 900 s
    assert all(by_t[t] == [] for t in by_t if t < 300.0 or t >= 900.0)
    assert all(by_t[t] == want for t in by_t if 300.0 <= t < 900.0)
    closed = [e for e in res.state.events if e.kind == "road_closed"]
    reopened = [e for e in res.state.events if e.kind == "road_reopened"]
    assert [(e.time_s, sorted(e.data["edges"]), e.data["reason"]) for e in closed] == [(300.0, want, "inject")]
    assert [(e.time_s, sorted(e.data["edges"])) for e in reopened] == [(900.0, want)]
    [lost] = [e for e in res.state.events if e.kind == "road_lost"]
    assert lost.data["cause"] == "tree down" and lost.data["lasts_s"] == 600.0


def test_a_road_lost_by_osm_way_closes_every_edge_of_the_way_until_the_end(twin_data, tmp_path):
    res = run(tmp_path / "way", [road_lost(120.0, osm_way=24556363)], duration_s=600.0)
    graph = res.contexts["test_graph"].shared["road_graph"]
    want = sorted(str(e) for e in graph.edge_ids if graph.edge(e)["osm_way"] == 24556363)
    assert want
    by_t = dict(res.contexts["probe"].summary["closed"])
    assert [t for t in by_t if by_t[t]] == [120.0 + 60.0 * k for k in range(9)]
    assert by_t[600.0] == want
    assert not [e for e in res.state.events if e.kind == "road_reopened"]


def test_two_injects_on_one_segment_hold_it_until_both_are_over(twin_data, tmp_path):
    p = {"lon": ROAD_POINT[0], "lat": ROAD_POINT[1]}
    res = run(tmp_path / "two", [road_lost(60.0, lasts="5 min", **p), road_lost(120.0, lasts=600.0, **p)],
              duration_s=900.0)
    by_t = dict(res.contexts["probe"].summary["closed"])
    assert [t for t in by_t if by_t[t]] == [60.0 * k for k in range(1, 12)]  # 60 s .. 660 s: held until 120 + 600 s


@pytest.fixture(scope="module")
def alerts(twin_data, tmp_path_factory):
    toml = tmp_path_factory.mktemp("alerts") / "alerts.toml"
    toml.write_text(
        "[rain_gauge]\nenabled = true\n"
        "[[rain_gauge.rules]]\nmetric = \"depth_mm\"\nwindow_h = 1\nthreshold = 20\nseverity = \"info\"\n"
        "source = \"test\"\nverified = true\n"
        "[water_level]\nenabled = true\ndeadband = 0.05\nrules = []\n"
        "[water_level.stations.\"FT-WL01\"]\nrules = [{metric = \"level_m\", threshold = 4.0, "
        "severity = \"warning\", source = \"test\", verified = true}]\n", encoding="utf-8")
    injects = [sensor(600.0, "FT-RG01", "rain_gauge", 45.0, "mm"),  # over 20 mm in 1 h
               sensor(600.0, "FT-RG02", "rain_gauge", 10.0, "mm"),  # under
               sensor(900.0, "FT-WL01", "water_level", 3.6, "m"),  # under its station's 4.0 m
               sensor(1200.0, "FT-WL01", "water_level", 4.2, "m")]  # over
    return run(tmp_path_factory.mktemp("injects") / "alerts", injects, sensors=SENSORS, alerts=str(toml))


def test_a_sensor_value_over_its_threshold_raises_an_alert_and_an_incident(alerts):
    ev = list(alerts.state.events)
    readings = [e for e in ev if e.kind == "sensor_reading"]
    assert [(e.time_s, e.data["station"]) for e in readings] == [
        (600.0, "FT-RG01"), (600.0, "FT-RG02"), (900.0, "FT-WL01"), (1200.0, "FT-WL01")]
    assert readings[0].data["unit"] == "m" and readings[0].data["value"] == pytest.approx(0.045)
    crossed = [e for e in ev if e.kind == "threshold_crossed"]
    assert [(e.time_s, e.data["station"], str(e.severity)) for e in crossed] == [
        (600.0, "FT-RG01", "info"), (1200.0, "FT-WL01", "warning")]
    where = {s["station"]: (s["lon"], s["lat"]) for s in SENSORS}
    assert all((e.data["lon"], e.data["lat"]) == where[e.data["station"]] for e in crossed)
    incidents = [e for e in ev if e.kind == "incident"]
    assert [(e.time_s, e.data["incident"], (e.data["lon"], e.data["lat"])) for e in incidents] == [
        (600.0, "flood_rescue", where["FT-RG01"]), (1200.0, "flood_rescue", where["FT-WL01"])]
    # each alert comes before its incident, at the same instant
    assert all(ev.index(c) < ev.index(i) for c, i in zip(crossed, incidents, strict=True))


def test_incident_min_severity_keeps_the_low_alerts_from_calling_units(twin_data, tmp_path):
    res = run(tmp_path / "sev", [sensor(600.0, "FT-RG01", "rain_gauge", 45.0, "mm")], duration_s=600.0,
              sensors=SENSORS, incident_min_severity="warning")
    kinds = [e.kind for e in res.state.events]
    assert "threshold_crossed" in kinds and "incident" not in kinds


def test_a_timeline_of_other_kinds_gives_incident_and_station_events_in_order(twin_data, tmp_path):
    inj = [{"t_s": 200.0, "kind": "station_lost", "note": "", "payload": {"station": "F4", "reason": "flooded"}},
           {"t_s": 100.0, "kind": "incident", "note": "trapped",
            "payload": {"lon": 114.06, "lat": 22.533, "incident": "collapse", "needs": {"rescue": 2},
                        "on_scene": 1800.0}}]
    res = run(tmp_path / "kinds", inj, duration_s=300.0)
    got = [(e.time_s, e.kind, e.data) for e in res.state.events if e.kind in ("incident", "station_lost")]
    assert got == [(120.0, "incident", {"lon": 114.06, "lat": 22.533, "incident": "collapse",
                                        "id": "inject-2", "needs": {"rescue": 2}, "on_scene_s": 1800.0}),
                   (240.0, "station_lost", {"station": "F4", "reason": "flooded"})]


def test_a_bad_timeline_is_refused_listing_every_problem():
    from scenarios.couplings.injects import check_params
    from twin.errors import ValidationError

    with pytest.raises(ValidationError) as exc:
        check_params({"injects": [{"t_s": -1.0, "kind": "flood", "payload": {}},
                                  sensor(10.0, "NOPE", "rain_gauge", 1.0, "mm")], "sensors": SENSORS,
                      "colour": 1})
    msg = str(exc.value)
    for part in ("colour", "injects[0].t_s=-1.0", "injects[0].kind='flood'", "injects[1].payload.station='NOPE'"):
        assert part in msg


def test_the_typhoon_scenario_timeline_becomes_parameters():
    from scenarios.couplings.injects import check_params, injects_from_scenario
    from scenarios.files import load_scenario

    sc = load_scenario("futian_typhoon_night").scenario
    params = injects_from_scenario({}, sc)
    assert [i["t_s"] for i in params["injects"]] == [i.after for i in sc.injects]
    assert [i["kind"] for i in params["injects"]] == [i.kind for i in sc.injects]
    assert {s["station"] for s in params["sensors"]} == {s.station for s in sc.sensors}
    [road] = [i for i in params["injects"] if i["kind"] == "road_lost"]
    [lost] = [i for i in sc.injects if i.kind == "road_lost"]
    assert road["payload"]["lasts"] == lost.payload.lasts  # seconds, not the file's text
    assert all(isinstance(s["kind"], str) for s in params["sensors"])
    check_params(params)  # plays as it is
    assert np.all(np.diff([i["t_s"] for i in params["injects"]]) >= 0)
