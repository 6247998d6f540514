"""``twin evacuate room``: the run kind, its files, the command line, the map page."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import shapely
import xarray as xr
from click.testing import CliRunner
from pyproj import Transformer

from twin.events import Event

EXAMPLE = Path(__file__).resolve().parents[2] / "agents" / "data" / "room_futian_station_hall.geojson"
#: A point in Futian (the Civic Centre plaza) the test rooms are laid out from.
LON0, LAT0 = 114.0590, 22.5410


def _room_geojson(path: Path, width: float, depth: float, exits: dict, extra=()) -> Path:
    """A ``width`` x ``depth`` m room (EPSG:4547 metres from LON0/LAT0), exits {id: ((x0, y0), (x1, y1))}, in lon/lat."""
    to_m = Transformer.from_crs("EPSG:4326", "EPSG:4547", always_xy=True)
    to_ll = Transformer.from_crs("EPSG:4547", "EPSG:4326", always_xy=True)
    x0, y0 = to_m.transform(LON0, LAT0)

    def ll(x, y):
        return list(to_ll.transform(x0 + x, y0 + y))

    ring = [(0, 0), (width, 0), (width, depth), (0, depth), (0, 0)]
    feats = [{"type": "Feature", "properties": {"role": "walkable", "name": "test room"},
              "geometry": {"type": "Polygon", "coordinates": [[ll(*p) for p in ring]]}}]
    feats += [{"type": "Feature", "properties": {"role": "exit", "id": k},
               "geometry": {"type": "LineString", "coordinates": [ll(*a), ll(*b)]}} for k, (a, b) in exits.items()]
    feats += list(extra)
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def one_exit_room(tmp_path_factory) -> Path:
    """10 m x 8 m, one 1 m door in the middle of the east wall."""
    return _room_geojson(tmp_path_factory.mktemp("room") / "room.geojson", 10.0, 8.0, {"door": ((10, 3.5), (10, 4.5))})


@pytest.fixture(scope="module")
def two_exit_room(tmp_path_factory) -> Path:
    """10 m x 8 m, 1 m doors in the west and east walls."""
    return _room_geojson(tmp_path_factory.mktemp("room2") / "room.geojson", 10.0, 8.0,
                         {"west": ((0, 4.5), (0, 3.5)), "east": ((10, 3.5), (10, 4.5))})


@pytest.fixture(scope="module")
def small_run(one_exit_room, tmp_path_factory):
    """The command end to end: 50 people, one exit, no map."""
    from twin.cli.evacuate_room import room

    out = tmp_path_factory.mktemp("run") / "out"
    r = CliRunner().invoke(room, [str(one_exit_room), "--people", "50", "--seed", "3", "--out", str(out), "--no-map",
                                  "--json"])
    assert r.exit_code == 0, r.output
    return out, json.loads(r.stdout)


def test_command_writes_every_output(small_run):
    out, s = small_run
    for name in ("trajectories.nc", "exits.csv", "events.jsonl", "evacuation_curve.png", "exit_flow.png",
                 "max_density.png", "summary.json", "report.html"):
        assert (out / name).is_file(), name
    assert json.loads((out / "summary.json").read_text())["people"] == 50
    with xr.open_dataset(out / "trajectories.nc") as ds:
        assert ds.x.dims == ("time", "agent") and ds.sizes["agent"] == 50
        assert ds.attrs["crs"] == "EPSG:4547" and ds.x.attrs["units"] == "m"
        assert {"lon", "lat", "speed", "exit_time", "exit_id"} <= set(ds.variables)
        assert 114.0 < float(ds.lon[0].mean()) < 114.1 and 22.5 < float(ds.lat[0].mean()) < 22.6


def test_everyone_is_out_and_the_counts_agree(small_run):
    out, s = small_run
    assert s["people_out"] == 50 and s["people_inside_at_end"] == 0
    rows = (out / "exits.csv").read_text().splitlines()
    assert rows[0].startswith("exit,width_m,people,first_passage_s,last_passage_s,mean_flow_p_s,peak_flow_10s_p_s")
    assert sum(int(r.split(",")[2]) for r in rows[1:]) == 50
    assert s["exits"]["door"]["people"] == 50
    with xr.open_dataset(out / "trajectories.nc") as ds:
        assert float(ds.exit_time.max()) == pytest.approx(s["evacuation_time_s"])
        assert int(ds.evacuated_count[-1]) == 50
    events = [Event.parse(json.loads(line)) for line in (out / "events.jsonl").read_text().splitlines()]
    assert events[-1].kind == "room_cleared" and events[-1].time_s == s["evacuation_time_s"]


def test_nobody_is_faster_than_a_free_walk(small_run):
    """An agent moves at most v0 dt a step (the speed model caps speed at the free speed, Tordeux et al.
    2016), and leaves when its centre crosses the door: no exit time can beat the straight distance to the
    door over the free speed. Crowding makes the evacuation time larger; a bound that can fail."""
    out, s = small_run
    with xr.open_dataset(out / "trajectories.nc") as ds:
        x, y = ds.x.values[0], ds.y.values[0]
        to_m = Transformer.from_crs("EPSG:4326", "EPSG:4547", always_xy=True)
        x0, y0 = to_m.transform(LON0, LAT0)
        door = shapely.LineString([(x0 + 10, y0 + 3.5), (x0 + 10, y0 + 4.5)])
        d = shapely.distance(shapely.points(x, y), door)
        free = d / ds.free_speed.values
        # trajectories.nc stores x, y to 1 mm: 0.5 mm at >= 0.56 m/s (the slowest free speed) is < 1 ms
        assert np.all(ds.exit_time.values >= free - 1e-3)
    assert s["evacuation_time_s"] >= free.max() - 1e-3
    assert s["evacuation_time_s"] >= s["free_walk_time_max_s"]  # the run's own bound (unrounded positions)


def test_a_closed_exit_sends_everyone_after_it_to_the_other(two_exit_room, tmp_path):
    from twin.cli.evacuate_room import room

    out = tmp_path / "out"
    r = CliRunner().invoke(room, [str(two_exit_room), "--people", "60", "--seed", "5", "--close-exit", "west@3",
                                  "--out", str(out), "--no-map", "--no-report", "--json"])
    assert r.exit_code == 0, r.output
    with xr.open_dataset(out / "trajectories.nc") as ds:
        t, ids = ds.exit_time.values, ds.exit_id.values.astype(str)
    assert np.all(np.isfinite(t))
    assert (ids == "west").sum() > 0 and np.all(t[ids == "west"] <= 3.0 + 1e-9)
    assert np.all(ids[t > 3.0] == "east") and (t > 3.0).sum() > 0
    s = json.loads(r.stdout)
    assert s["exits"]["west"]["closed_at_s"] == 3.0 and s["events"]["exit_closed"] == 1
    closed = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    assert [e["time_s"] for e in closed if e["kind"] == "exit_closed"] == [3.0]


@pytest.mark.parametrize("element, expected", [
    pytest.param({"type": "Feature", "properties": {"role": "exit", "id": "ghost"},
                  "geometry": {"type": "LineString", "coordinates": [[LON0 + 0.00003, LAT0 + 0.00003],
                                                                     [LON0 + 0.00003, LAT0 + 0.00004]]}},
                 "exit 'ghost'", id="exit-off-the-boundary"),
    pytest.param({"type": "Feature", "properties": {"role": "stairs"},
                  "geometry": {"type": "Point", "coordinates": [LON0, LAT0]}}, "feature 2: role 'stairs'",
                 id="unknown-role"),
])
def test_a_bad_place_is_refused_in_one_line_before_running(tmp_path, element, expected):
    from twin.cli.evacuate_room import room

    bad = _room_geojson(tmp_path / "bad.geojson", 10.0, 8.0, {"door": ((10, 3.5), (10, 4.5))}, extra=[element])
    out = tmp_path / "never"
    r = CliRunner().invoke(room, [str(bad), "--people", "5", "--out", str(out)])
    assert r.exit_code == 1
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: FILE: ") and str(bad) in lines[0] and expected in lines[0]
    assert not out.exists()


def test_bad_options_are_refused_naming_them(one_exit_room, tmp_path):
    from twin.cli.evacuate_room import room

    out = tmp_path / "never"
    r = CliRunner().invoke(room, [str(one_exit_room), "--people", "5", "--close-exit", "back@10", "--out", str(out)])
    assert r.exit_code == 1 and "--close-exit" in r.output and "'back'" in r.output and "door" in r.output
    r = CliRunner().invoke(room, [str(one_exit_room), "--people", "5", "--close-exit", "door@10", "--out", str(out)])
    assert r.exit_code == 1 and "at least one must stay open" in r.output
    r = CliRunner().invoke(room, [str(one_exit_room), "--people", "5", "--close-exit", "door10", "--out", str(out)])
    assert r.exit_code == 2 and "EXIT_ID@SECONDS" in r.output
    r = CliRunner().invoke(room, [str(one_exit_room), "--out", str(out)])
    assert r.exit_code == 2 and "exactly one of --people, --density or --agents" in r.output
    r = CliRunner().invoke(room, [str(tmp_path / "none.geojson"), "--people", "5", "--out", str(out)])
    assert r.exit_code == 1 and "does not exist" in r.output
    assert not out.exists()


def test_agents_from_a_csv_and_a_person_outside_refused(one_exit_room, tmp_path):
    from twin.cli.evacuate_room import room

    to_m = Transformer.from_crs("EPSG:4326", "EPSG:4547", always_xy=True)
    to_ll = Transformer.from_crs("EPSG:4547", "EPSG:4326", always_xy=True)
    x0, y0 = to_m.transform(LON0, LAT0)
    lon, lat = to_ll.transform(x0 + np.array([2.0, 5.0, 8.0]), y0 + np.array([4.0, 2.0, 6.0]))
    good = tmp_path / "people.csv"
    good.write_text("# three people\nlon,lat,speed_mps,premovement_s\n" + "".join(
        f"{a:.9f},{b:.9f},1.2,{p}\n" for a, b, p in zip(lon, lat, (0, 5, 10), strict=True)), encoding="utf-8")
    out = tmp_path / "out"
    r = CliRunner().invoke(room, [str(one_exit_room), "--agents", str(good), "--out", str(out), "--no-map",
                                  "--no-report", "--json"])
    assert r.exit_code == 0, r.output
    with xr.open_dataset(out / "trajectories.nc") as ds:
        np.testing.assert_allclose(ds.free_speed.values, 1.2)
        np.testing.assert_allclose(ds.premovement.values, [0, 5, 10])
        assert np.all(ds.exit_time.values >= ds.premovement.values)
    bad = tmp_path / "outside.csv"
    bad.write_text(f"lon,lat\n{lon[0]:.9f},{lat[0]:.9f}\n{LON0 - 0.001},{LAT0}\n", encoding="utf-8")
    r = CliRunner().invoke(room, [str(one_exit_room), "--agents", str(bad), "--out", str(tmp_path / "never")])
    assert r.exit_code == 1 and r.output.count("\n") == 1
    assert "--agents" in r.output and "agent 1 " in r.output and "outside the walkable area" in r.output


def test_same_seed_same_run_other_seed_other(one_exit_room):
    from agents.room_run import RoomRequest, simulate_room

    req = RoomRequest(place=str(one_exit_room), people=30, premovement_median_s=2.0)
    a, b, c = simulate_room(req, 7), simulate_room(req, 7), simulate_room(req, 8)
    np.testing.assert_array_equal(a.x.values, b.x.values)
    np.testing.assert_array_equal(a.exit_time.values, b.exit_time.values)
    assert not np.array_equal(a.exit_time.values, c.exit_time.values)


def test_repeated_runs_give_the_evacuation_time_distribution(one_exit_room, tmp_path):
    from twin import pipeline

    res = pipeline.run("evacuate_room", {"place": str(one_exit_room), "people": 20, "seed": 4, "runs": 3}, tmp_path,
                       report=False, map=False)
    ds = res.dataset
    assert list(ds.run_seed.values) == [4, 5, 6]
    assert ds.evac_time_run.values[0] == ds.attrs["evacuation_time_s"]
    r = res.summary["evacuation_runs"]
    assert r["runs"] == 3 and r["min_s"] <= r["mean_s"] <= r["max_s"] and len(set(ds.evac_time_run.values)) > 1


def test_twin_evacuate_room_help_through_the_main_group():
    from twin.cli import main

    r = CliRunner().invoke(main, ["evacuate", "room", "--help"])
    assert r.exit_code == 0
    for text in ("--close-exit", "--people", "--density", "--agents", "--runs", "role", "walkable"):
        assert text in r.output, text


def test_the_example_place_reads_and_is_labelled_assumed():
    from agents.room_run import RoomRequest, free_area, load_place

    doc = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    walk = [f for f in doc["features"] if f["properties"]["role"] == "walkable"]
    assert walk[0]["properties"]["assumed"] is True and "ASSUMED" in walk[0]["properties"]["name"]
    g = load_place(RoomRequest(place=str(EXAMPLE), people=1))
    assert g.walkable.area == pytest.approx(300 * 60, rel=1e-4)  # as drawn, in EPSG:4547 metres
    assert free_area(g).area == pytest.approx(300 * 60 - 72 * 1.2**2, rel=1e-4)
    assert len(g.exit_ids) == 8


@pytest.mark.browser
def test_map_page_moves_people_and_closes_the_exit(two_exit_room, chromium, tmp_path):
    from agents.room_run import EVACUATE_ROOM, RoomRequest, analyse, load_place, simulate_room
    from viz.browser import TWINMAP_READY_JS, BrowserSession
    from viz.run_map import write_run_map

    req = RoomRequest(place=str(two_exit_room), people=40, close_exits=[{"exit": "west", "at_s": 2.0}])
    ds = analyse(simulate_room(req, 1), load_place(req))
    info = write_run_map(EVACUATE_ROOM, ds, tmp_path / "map.html")
    colours = "map.deck.props.layers.find(l => l.id === 'walkable_exits').props.data.map(r => r.c)"
    with BrowserSession(width=900, height=650) as b:
        b.goto(info["path"], ready_js=TWINMAP_READY_JS, timeout=90)
        n = b.evaluate("map.frameCount")
        assert n == info["frames"] and 2 < n <= 120
        p0 = b.evaluate("map.pointsOf('crowd')")
        assert len(p0) == 40
        assert b.evaluate(colours) == [[30, 160, 60, 255], [30, 160, 60, 255]]  # both open at the start
        b.evaluate("map.setFrame(4)")
        p4 = b.evaluate("map.pointsOf('crowd')")
        b.evaluate(f"map.setFrame({n - 1})")
        assert b.evaluate(colours)[0] == [215, 40, 40, 255]  # west closed by the end
        assert not b.console_errors
    start = {(round(p[0], 6), round(p[1], 6)) for p in p0}
    later = {(round(p[0], 6), round(p[1], 6)) for p in p4}
    assert len(later) > 0 and len(later - start) > len(later) // 2  # most people stand elsewhere 2 s on


def _ll(x, y):
    """Metres east/north of LON0/LAT0 (EPSG:4547) -> [lon, lat]."""
    to_m = Transformer.from_crs("EPSG:4326", "EPSG:4547", always_xy=True)
    to_ll = Transformer.from_crs("EPSG:4547", "EPSG:4326", always_xy=True)
    x0, y0 = to_m.transform(LON0, LAT0)
    return list(to_ll.transform(x0 + x, y0 + y))


def test_a_run_where_nobody_leaves_for_stall_after_seconds_stops(one_exit_room, tmp_path):
    """One person at the door (out within a second), one 8.5 m from it at 0.5 m/s (out after ~17 s):
    with --stall-after 5 the run stops about 5 s after the first left, the second still inside."""
    from twin.cli.evacuate_room import room

    csv = tmp_path / "people.csv"
    csv.write_text("lon,lat,speed_mps\n" + "".join("{:.9f},{:.9f},{}\n".format(*_ll(x, y), v)
                                                   for x, y, v in ((9.5, 4.0, 1.3), (1.5, 4.0, 0.5))),
                   encoding="utf-8")
    out = tmp_path / "out"
    r = CliRunner().invoke(room, [str(one_exit_room), "--agents", str(csv), "--stall-after", "5", "--out", str(out),
                                  "--no-map", "--no-report", "--json"])
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert s["people_out"] == 1 and s["people_inside_at_end"] == 1 and s["evacuation_time_s"] is None
    first_out = s["exits"]["door"]["last_passage_s"]
    assert first_out < 1.0
    assert first_out + 5.0 <= s["stalled_at_s"] <= first_out + 6.0  # checked once a simulated second
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    assert events[-1]["kind"] == "evacuation_stalled" and events[-1]["data"]["inside"] == 1


def test_people_in_a_part_no_exit_reaches_are_refused_or_not_placed(tmp_path):
    """A second, closed-off room: a CSV person there is refused before the run; random placement keeps
    to the part with the door."""
    from agents.room_run import RoomRequest, agents_spec, load_place
    from twin.cli.evacuate_room import room

    closed_off = {"type": "Feature", "properties": {"role": "walkable"},
                  "geometry": {"type": "Polygon", "coordinates": [[_ll(-10, 0), _ll(-4, 0), _ll(-4, 8), _ll(-10, 8),
                                                                   _ll(-10, 0)]]}}
    place = _room_geojson(tmp_path / "two.geojson", 10.0, 8.0, {"door": ((10, 3.5), (10, 4.5))}, extra=[closed_off])
    csv = tmp_path / "people.csv"
    csv.write_text("lon,lat\n" + "".join("{:.9f},{:.9f}\n".format(*_ll(x, y)) for x, y in ((5, 4), (-7, 2))),
                   encoding="utf-8")
    r = CliRunner().invoke(room, [str(place), "--agents", str(csv), "--out", str(tmp_path / "never")])
    assert r.exit_code == 1 and "--agents" in r.output and "agent 1 (row 2)" in r.output and "no exit" in r.output
    assert not (tmp_path / "never").exists()
    req = RoomRequest(place=str(place), density=0.5)
    spec, _ = agents_spec(req, load_place(req))
    assert spec.n == 40  # 0.5 P/m² of the 80 m² room with the door, none of the 48 m² closed off
    assert spec.region.bounds[0] > _ll(-4, 0)[0]


def test_an_exit_narrower_than_a_person_is_refused_before_running(tmp_path):
    from twin.cli.evacuate_room import room

    place = _room_geojson(tmp_path / "slit.geojson", 6.0, 4.0, {"slit": ((6, 1.9), (6, 2.1))})
    r = CliRunner().invoke(room, [str(place), "--people", "3", "--out", str(tmp_path / "never")])
    assert r.exit_code == 1 and "exit 'slit': 0.20 m wide" in r.output and str(place) in r.output
    assert not (tmp_path / "never").exists()


def test_the_console_form_runs_the_example_without_file_paths():
    from agents.room_run import EVACUATE_ROOM, EXAMPLES, check_room, place_path
    from twin.errors import ValidationError

    assert "place" not in EVACUATE_ROOM.form_request.model_fields
    assert "agents" not in EVACUATE_ROOM.form_request.model_fields
    req = EVACUATE_ROOM.validate({"people": 100, "close_exit": "S", "close_at_s": 30.0}, console=True)
    assert req.example == "futian_station_hall" and place_path(req) == EXAMPLES["futian_station_hall"]
    assert [c.model_dump() for c in req.close_exits] == [{"exit": "S", "at_s": 30.0}]
    check_room(req)
    from agents.room_run import load_place
    from twin.errors import RequestError

    hint = EVACUATE_ROOM.form_request.model_fields["close_exit"].description
    assert all(e in hint or e[0] + "1-" in hint for e in load_place(req).exit_ids)  # the form names the exits
    with pytest.raises(RequestError, match="'X9'"):
        check_room(EVACUATE_ROOM.validate({"people": 10, "close_exit": "X9"}, console=True))
    with pytest.raises(ValidationError, match="place"):
        EVACUATE_ROOM.validate({"people": 100, "place": "/etc/passwd"}, console=True)
    with pytest.raises(ValidationError, match="exactly one of place"):
        EVACUATE_ROOM.validate({"people": 100, "place": str(EXAMPLE), "example": "futian_station_hall"})
