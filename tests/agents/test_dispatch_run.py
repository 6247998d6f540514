"""``twin dispatch run`` end to end on the real central road graph with a synthetic flood.

The flood (written by the test) is a 90 m EPSG:4547 grid over central Futian:
an east-west band 0.5 m deep from 600 s (above the 0.3 m closure depth of
Pregnolato et al. 2017, so its streets close) and a 1.5 m pond flowing at
1 m/s (ARR 2019 class H5, unsafe for people: rescue calls). The map page must
open in headless Chromium with the units on the slider at the positions of
dispatch.nc.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

from gis.crs import WGS84, WORKING_CRS, transformer
from twin.events import Event

CENTRE = (114.055, 22.540)
TIMES = [0.0, 600.0, 1200.0, 1800.0]


def write_flood(path) -> None:
    e0, n0 = transformer(WGS84, WORKING_CRS).transform(*CENTRE)
    cell = 90.0
    x = e0 - 2000 + cell * (np.arange(45) + 0.5)
    y = n0 + 2000 - cell * (np.arange(45) + 0.5)
    X, Y = np.meshgrid(x, y)
    band = np.abs(Y - n0) < 100
    pond = np.hypot(X - (e0 + 900), Y - (n0 + 900)) < 250
    depth = np.zeros((len(TIMES), y.size, x.size), "float32")
    speed = np.zeros_like(depth)
    for i, t in enumerate(TIMES):
        if t >= 600:
            depth[i][band] = 0.5
            depth[i][pond] = 1.5
            speed[i][pond] = 1.0
    ds = xr.Dataset({"depth": (("time", "y", "x"), depth), "speed": (("time", "y", "x"), speed),
                     "max_depth": (("y", "x"), depth.max(axis=0)),
                     "arrival_time": (("y", "x"), np.where(depth.max(axis=0) > 0.15, 600.0, np.nan)),
                     "elevation": (("y", "x"), np.full(X.shape, 5.0, "float32"))},
                    coords={"time": TIMES, "x": x, "y": y},
                    attrs={"crs": "EPSG:4547", "title": "synthetic test flood",
                           "transform": (cell, 0.0, x[0] - cell / 2, 0.0, -cell, y[0] + cell / 2)})
    ds.to_netcdf(path)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, twin_data):
    from twin.cli.dispatch import dispatch

    tmp = tmp_path_factory.mktemp("dispatch")
    write_flood(tmp / "flood.nc")
    out = tmp / "run"
    res = CliRunner().invoke(dispatch, ["run", "--flood", str(tmp / "flood.nc"), "--flood-rescues", "4",
                                        "--calls-per-hour", "20", "--hours", "0.5", "--seed", "3",
                                        "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out


def test_run_writes_the_outputs(run_dir):
    s = json.loads((run_dir / "summary.json").read_text())
    for name in ("dispatch.nc", "incidents.csv", "requests.csv", "units.csv", "events.jsonl",
                 "response_times.png", "map.html", "report.html"):
        assert (run_dir / name).stat().st_size > 0, name
    assert s["incidents"] >= 4 and s["reached"] >= 1
    assert 0.0 <= s["within_5min_share"] <= 1.0
    assert s["road_changes"][1]["closed"] > 0  # the band closes at 600 s
    report = (run_dir / "report.html").read_text()
    assert "Roads closed by the flood" in report and "data:image/png;base64" in report
    kinds = {Event.parse(json.loads(line)).kind for line in (run_dir / "events.jsonl").open()}
    assert {"road_closed", "unit_dispatched", "unit_arrived"} <= kinds
    ds = xr.open_dataset(run_dir / "dispatch.nc")
    assert ds["unit_lon"].dims == ("time", "unit") and ds.sizes["unit"] == s["units"]
    assert ds["depth"].shape[0] == ds.sizes["time"]
    assert (ds["road_state"].isel(time=0) == 0).all() and (ds["road_state"].isel(time=-1) == 2).any()
    rescues = [i for i in ds["incident"].to_numpy() if str(i).startswith("rescue-")]
    assert len(rescues) == 4


@pytest.mark.browser
def test_map_shows_units_moving_and_closed_streets(run_dir, chromium):
    from viz.browser import TWINMAP_READY_JS, BrowserSession

    ds = xr.open_dataset(run_dir / "dispatch.nc")
    lon, lat = ds["unit_lon"].to_numpy(), ds["unit_lat"].to_numpy()
    moved = np.flatnonzero(np.abs(np.diff(lon, axis=0)).max(axis=1) > 0)
    assert moved.size, "no unit moved between frames"
    k = int(moved[0] + 1)
    roads_js = "map.deck.props.layers.find(l => l.id === 'flooded_roads').props.data.length"
    with BrowserSession(width=1000, height=700) as b:
        b.goto(run_dir / "map.html", ready_js=TWINMAP_READY_JS, timeout=120)
        assert b.evaluate("map.frameCount") == ds.sizes["time"]
        assert b.evaluate(f"map.setFrame({k})") == k
        pts = np.array(b.evaluate("map.pointsOf('units')"))
        assert pts.shape[0] == ds.sizes["unit"]
        order = np.lexsort((pts[:, 1], pts[:, 0]))
        want = np.lexsort((lat[k], lon[k]))
        np.testing.assert_allclose(pts[order, 0], lon[k][want], atol=5.1e-7, rtol=0)
        np.testing.assert_allclose(pts[order, 1], lat[k][want], atol=5.1e-7, rtol=0)
        last = ds.sizes["time"] - 1
        b.evaluate(f"map.setFrame({last})")
        assert b.evaluate(roads_js) > 0
        assert b.console_errors == []


def test_bad_stations_file_is_refused_naming_the_row(tmp_path):
    from twin.cli.dispatch import dispatch

    bad = tmp_path / "stations.csv"
    bad.write_text("id,name,kind,lon,lat,engines,ambulances,rescue\nA,x,fire_station,114.05,22.54,two,0,0\n")
    res = CliRunner().invoke(dispatch, ["run", "--stations", str(bad), "--calls-per-hour", "5",
                                        "--out", str(tmp_path / "o")])
    assert res.exit_code != 0
    assert "row 1 (A): engines='two'" in res.output and "Traceback" not in res.output


def test_a_run_with_nothing_to_dispatch_is_refused(tmp_path):
    from twin.cli.dispatch import dispatch

    res = CliRunner().invoke(dispatch, ["run", "--out", str(tmp_path / "o")])
    assert res.exit_code != 0 and "nothing to dispatch" in res.output
    assert not (tmp_path / "o" / "dispatch.nc").exists()


def test_not_a_flood_file_is_refused(tmp_path):
    from twin.cli.dispatch import dispatch

    bad = tmp_path / "flood.nc"
    bad.write_text("not netcdf")
    res = CliRunner().invoke(dispatch, ["run", "--flood", str(bad), "--out", str(tmp_path / "o")])
    assert res.exit_code != 0 and "flood.nc" in res.output and "Traceback" not in res.output


def test_incidents_file_is_read_with_needs(tmp_path):
    from agents.dispatch_run import read_incidents

    f = tmp_path / "inc.csv"
    f.write_text("# test\nid,time_min,lon,lat,kind,needs,on_scene_min\n"
                 "a,1.5,114.05,22.54,fire,engine:3;ambulance:1,30\nb,2,114.06,22.55,medical,,\n")
    a, b = read_incidents(f)
    assert (a.time_s, a.needs, a.on_scene_s) == (90.0, {"engine": 3, "ambulance": 1}, 1800.0)
    assert (b.needs, b.on_scene_s) == ({"ambulance": 1}, 25 * 60.0)


def test_twin_help_lists_dispatch():
    from twin.cli import main

    res = CliRunner().invoke(main, ["dispatch", "run", "--help"])
    assert res.exit_code == 0 and "--flood-rescues" in res.output


def test_events_become_incidents(tmp_path):
    from agents.dispatch_run import read_events

    f = tmp_path / "events.jsonl"
    recs = [{"time_s": 30.0, "kind": "fire_origin", "source": "bridge", "data": {"lon": 114.05, "lat": 22.54}},
            {"time_s": 60.0, "kind": "threshold_crossed", "source": "gauge-7",
             "data": {"location": [114.06, 22.55]}},
            {"time_s": 90.0, "kind": "threshold_crossed", "source": "gauge-8", "data": {}},
            {"time_s": 99.0, "kind": "sensor_offline", "source": "gauge-9", "data": {"lon": 114.0, "lat": 22.5}}]
    f.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    incidents, no_position = read_events(f)
    assert [(i.kind, i.time_s, i.lon) for i in incidents] == [("fire", 30.0, 114.05), ("flood_rescue", 60.0, 114.06)]
    assert no_position == 1
    f.write_text('{"time_s": "soon"}\n')
    from twin.errors import RequestError

    with pytest.raises(RequestError, match="line 1"):
        read_events(f)


def test_rescue_calls_come_from_dangerous_cells_between_frames(tmp_path, shenzhen_dir):
    """Rescue calls only where the ARR 2019 class reaches H4 (here the 1.5 m, 1 m/s pond: H5), never in
    the 0.5 m still band (H2), at times between the frame before the crossing and the crossing: (0, 600]."""
    from agents.city_roads import city_road_graph
    from agents.dispatch import flood_rescue_incidents
    from agents.routing import Router

    write_flood(tmp_path / "flood.nc")
    ds = xr.open_dataset(tmp_path / "flood.nc")
    roads = city_road_graph(path=shenzhen_dir / "osm" / "central_drive_overpass_20241006.json", clip=False)
    calls = flood_rescue_incidents(ds, Router(roads), 50, seed=1)
    e0, n0 = transformer(WGS84, WORKING_CRS).transform(*CENTRE)
    e, n = transformer(WGS84, WORKING_CRS).transform([c.lon for c in calls], [c.lat for c in calls])
    assert 0 < len(calls) <= 50
    assert (np.hypot(np.array(e) - (e0 + 900), np.array(n) - (n0 + 900)) < 250).all()  # cell centres in the pond
    assert all(0.0 < c.time_s <= 600.0 for c in calls)
    assert [c.time_s for c in calls] == sorted(c.time_s for c in calls)
    again = flood_rescue_incidents(ds, Router(roads), 50, seed=1)
    assert [(c.lon, c.time_s) for c in again] == [(c.lon, c.time_s) for c in calls]
