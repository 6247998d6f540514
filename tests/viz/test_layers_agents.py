"""Layer kinds of the agents: ``movers`` (moving points), ``road_status`` and ``facilities``.

Unit tests check the layer JSON (frames, coded points, thinning, refusals);
the browser test draws 200 agents walking along a real Futian street
(深南大道, from ``roads/futian_edges.geojson``) with a real street closing at
frame 5, and reads positions and colours back from the page.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from PIL import Image

from twin.errors import ValidationError
from viz.layers import build
from viz.layers.movers import byte_planes, decode_points, encode_points, read_byte_planes, thin_keep
from viz.layers.road_status import STATES
from viz.scene import Scene

# ------------------------------------------------------------------------------------ data


def _walk(line, n=200, n_times=10, spawn_late=20):
    """Agents walking along ``line``: start spread over its first 40 %, 8 % of it a frame.

    The first ``spawn_late`` agents appear at frame 3; agents past the end have arrived (NaN).
    """
    start = np.linspace(0.0, 0.4, n)
    frac = start[None, :] + 0.08 * np.arange(n_times)[:, None]
    pts = shapely.line_interpolate_point(line, np.clip(frac, 0, 1), normalized=True)
    lon, lat = shapely.get_x(pts), shapely.get_y(pts)
    gone = frac > 1.0
    gone[:3, :spawn_late] = True
    lon[gone] = np.nan
    lat[gone] = np.nan
    return lon, lat


@pytest.fixture(scope="module")
def streets(shenzhen_dir):
    """Three real Futian streets: 深南大道 (walk), 红荔路 (closes), 滨河大道 (slowed)."""
    g = gpd.read_file(shenzhen_dir / "roads" / "futian_edges.geojson")
    by_id = g.set_index("id").geometry
    return {"walk": by_id["96334031#10"], "close": by_id["44394823#0"], "slow": by_id["328724256#4"]}


def _scene(streets, *, n_times=10):
    times = np.arange(n_times) * 30.0
    lon, lat = _walk(streets["walk"], n_times=n_times)
    group = np.where(np.arange(lon.shape[1]) % 50 == 0, 1, 0)
    movers = build("movers", times, lon, lat, group=group, group_labels={0: "Walker", 1: "Fire engine"},
                   group_colors={0: (30, 90, 200), 1: (0, 150, 0)}, radius_m=6.0)
    state = np.zeros((n_times, 2), dtype=int)
    state[5:, 0] = 2  # 红荔路 closes at frame 5
    state[2:, 1] = 1  # 滨河大道 slowed from frame 2
    queue = np.arange(n_times, dtype=float)[:, None] * np.array([[3.0, 1.0]])
    roads = build("road_status", [streets["close"], streets["slow"]], state, times_s=times,
                  values=queue, value_label="queue (vehicles)", names=["红荔路", "滨河大道"])
    c = streets["walk"].coords
    shelters = build("facilities", [c[0][0], c[-1][0]], [c[0][1] + 0.002, c[-1][1] + 0.002],
                     ["福田体育公园", "Shelter B"], capacity=[5000, np.nan], latin=["Futian Sports Park", "Shelter B"])
    scene = Scene(title="Agents", sets=[roads, movers, shelters])
    w, s, e, n = scene.bounds()
    scene.view = {"longitude": (w + e) / 2, "latitude": (s + n) / 2, "zoom": 13.0}  # ~8.8 km across 1000 px
    return scene, {"lon": lon, "lat": lat, "state": state, "group": group}


# ------------------------------------------------------------------------------------ movers JSON


def test_movers_frames_hold_every_drawn_agent_and_drop_nan(streets):
    lon, lat = _walk(streets["walk"])
    ls = build("movers", np.arange(10) * 30.0, lon, lat)
    assert ls.times_s == [30.0 * k for k in range(10)] and ls.labels[1] == "+30 s"
    patches = ls.frames["movers"]
    assert len(patches) == 10 and ls.layers[0]["data"] == []
    for i, p in enumerate(patches):
        x, y, g = decode_points(p["data"])
        ok = np.isfinite(lon[i])
        assert x.size == ok.sum() and not g.any()
        np.testing.assert_allclose(x, lon[i, ok], atol=5.1e-7, rtol=0)
        np.testing.assert_allclose(y, lat[i, ok], atol=5.1e-7, rtol=0)
    assert decode_points(patches[0]["data"])[0].size == 200 - 20  # not yet spawned
    assert decode_points(patches[9]["data"])[0].size == int(np.isfinite(lon[9]).sum()) < 200  # arrived
    assert ls.legends[0].stops == [("People", [200, 30, 30, 255])]
    b = ls.bounds
    assert b[0] == np.nanmin(lon) and b[3] == np.nanmax(lat)


def test_encoded_points_are_micro_degrees_and_smaller_than_json_rows():
    rng = np.random.default_rng(1)
    lon = 114.05 + rng.uniform(0, 0.02, 10_000)
    lat = 22.54 + rng.uniform(0, 0.02, 10_000)
    g = rng.integers(0, 3, 10_000)
    enc = encode_points(lon, lat, g)
    x, y, gg = decode_points(enc)
    assert np.abs(x - lon).max() <= 5e-7 + 1e-12 and np.array_equal(gg, g)
    import json

    rows = json.dumps([[round(a, 6), round(b, 6), int(c)] for a, b, c in zip(lon, lat, g, strict=True)])
    assert len(json.dumps(enc)) < 0.5 * len(rows)
    assert encode_points([], [])["twinPoints"]["n"] == 0


def test_byte_planes_round_trip():
    v = np.array([0, 1, 255, 256, 70_000, 2**31 - 1, 12])
    assert read_byte_planes(byte_planes(v)).tolist() == v.tolist()
    assert read_byte_planes(byte_planes([])).tolist() == []


def test_movers_groups_legend_and_tooltips():
    lon = np.array([[114.05, 114.06, 114.07]])
    lat = np.array([[22.54, 22.54, 22.54]])
    ls = build("movers", [0.0], lon, lat, group=np.array([7, 3, 7]), label="Units",
               group_labels={3: "Ambulance", 7: "Fire engine"}, group_colors={7: (255, 0, 0)})
    groups = ls.layers[0]["twinGroups"]
    assert [g["label"] for g in groups] == ["Ambulance", "Fire engine"]  # code order
    assert groups[1]["c"] == [255, 0, 0, 255] and groups[0]["tooltip"] == "<b>Ambulance</b>"
    _, _, g = decode_points(ls.frames["movers"][0]["data"])
    assert g.tolist() == [1, 0, 1]
    assert [s[0] for s in ls.legends[0].stops] == ["Ambulance", "Fire engine"]


def test_movers_refuse_mismatched_shapes_and_bad_values():
    lon = np.zeros((4, 5)) + 114.0
    lat = np.zeros((4, 5)) + 22.5
    t = np.arange(4.0)
    with pytest.raises(ValidationError, match=r"lon has shape \(4, 5\) and lat \(4, 6\)"):
        build("movers", t, lon, np.zeros((4, 6)))
    with pytest.raises(ValidationError, match=r"times_s has shape \(3,\).*4 frames"):
        build("movers", t[:3], lon, lat)
    with pytest.raises(ValidationError, match=r"group has shape \(4,\).*\(5,\)"):
        build("movers", t, lon, lat, group=np.zeros(4, int))
    with pytest.raises(ValidationError, match=r"lon\[0, 0\]=500000.0.*WGS84"):
        build("movers", t, lon + 500000 - 114.0, lat)
    with pytest.raises(ValidationError, match="times must increase"):
        build("movers", t[::-1], lon, lat)
    with pytest.raises(ValidationError, match="max_points=0"):
        build("movers", t, lon, lat, max_points=0)
    with pytest.raises(ValidationError, match="group_colors"):
        build("movers", t, lon, lat, group=np.arange(5), group_colors={1: (300, 0, 0)})


def test_thinning_keeps_small_groups_whole_and_the_same_agents_on_every_frame():
    rng = np.random.default_rng(3)
    n_times, n = 6, 5000
    lon = 114.0 + rng.uniform(0, 0.1, (n_times, n))
    lat = 22.5 + rng.uniform(0, 0.1, (n_times, n))
    lon[rng.uniform(size=(n_times, n)) < 0.3] = np.nan
    group = np.zeros(n, int)
    group[:12] = 1  # 12 fire engines among walkers
    ls = build("movers", np.arange(n_times) * 60.0, lon, lat, group=group, max_points=1000,
               group_labels={0: "Walker", 1: "Fire engine"})
    drawn = []
    for i, p in enumerate(ls.frames["movers"]):
        x, _, g = decode_points(p["data"])
        assert x.size <= 1000 and (g == 1).sum() == np.isfinite(lon[i, :12]).sum()
        drawn.append(set(np.round(x, 6)))
    keep = thin_keep(np.isfinite(lon) & np.isfinite(lat), group, 1000)
    assert keep[:12].all() and 0 < keep.sum() < n
    assert int((np.isfinite(lon) & keep).sum(axis=1).max()) == 1000  # as many as fit
    assert "thinned" in ls.legends[0].title and f"{keep.sum():,} of {n:,}" in ls.legends[0].title
    assert ls.legends[0].stops[1][0] == "Fire engine" and "of" in ls.legends[0].stops[0][0]
    again = build("movers", np.arange(n_times) * 60.0, lon, lat, group=group, max_points=1000)
    assert again.frames == ls.frames  # deterministic


# ------------------------------------------------------------------------------------ road status JSON


def test_road_status_static_draws_slowed_and_closed_only():
    lines = [[[114.0, 22.5], [114.01, 22.5]], [[114.0, 22.51], [114.01, 22.51]], [[114.0, 22.52], [114.01, 22.52]]]
    ls = build("road_status", lines, [0, 1, 2], values=[1.0, np.nan, 7.0], value_label="queue")
    rows = ls.layers[0]["data"]
    assert [r["c"] for r in rows] == [list(STATES[1][1]), list(STATES[2][1])]
    assert rows[1]["tooltip"] == "<b>road 2</b><br/>closed<br/>queue: 7" and "queue" not in rows[0]["tooltip"]
    assert not ls.frames and ls.times_s is None
    assert [s[0] for s in ls.legends[0].stops] == ["slowed", "closed"]
    shown = build("road_status", lines, [0, 1, 2], show_open=True)
    assert len(shown.layers[0]["data"]) == 3 and shown.legends[0].stops[0][0] == "open"


def test_road_status_frames_pick_rows_of_one_geometry_store():
    lines = [shapely.LineString([(114.0, 22.5 + k / 100), (114.01, 22.5 + k / 100)]) for k in range(4)]
    state = np.zeros((6, 4), int)
    state[3:, 1] = 2
    state[1:4, 2] = 1
    ls = build("road_status", lines, state, times_s=np.arange(6) * 60.0)
    layer = ls.layers[0]
    assert layer["twinPaths"] == [[[114.0, 22.51], [114.01, 22.51]], [[114.0, 22.52], [114.01, 22.52]]]
    rows = layer["twinRows"]  # road 2 slowed, road 1 closed: one row each, however many frames
    assert [(r["i"], r["pi"], r["c"]) for r in rows] == [(2, 1, list(STATES[1][1])), (1, 0, list(STATES[2][1]))]
    patches = ls.frames["road_status"]
    # slowed before closed (closed drawn on top), packed as int32 byte planes
    assert [read_byte_planes(p["data"]["twinRows"]).tolist() for p in patches] == [[], [0], [0], [0, 1], [1], [1]]
    assert "closed" in rows[1]["tooltip"] and "slowed" in rows[0]["tooltip"]
    queued = build("road_status", lines, state, times_s=np.arange(6) * 60.0,
                   values=np.arange(6.0)[:, None] * np.ones(4), value_label="queue")
    # the queue changes every frame: a row per road and frame drawn (1 + 1 + 2 + 1 + 1)
    assert len(queued.layers[0]["twinRows"]) == 6
    assert queued.layers[0]["twinRows"][-1]["tooltip"].endswith("queue: 5")


def test_road_status_refusals():
    lines = [[[114.0, 22.5], [114.01, 22.5]], [[114.0, 22.51], [114.01, 22.51]]]
    with pytest.raises(ValidationError, match=r"state has shape \(3,\).*2 lines"):
        build("road_status", lines, [0, 1, 2])
    with pytest.raises(ValidationError, match="state holds 5"):
        build("road_status", lines, [0, 5])
    with pytest.raises(ValidationError, match=r"needs times_s"):
        build("road_status", lines, np.zeros((3, 2)))
    with pytest.raises(ValidationError, match=r"state has shape \(3, 2\).*\(4, 2\)"):
        build("road_status", lines, np.zeros((3, 2)), times_s=[0, 1, 2, 3])
    with pytest.raises(ValidationError, match=r"lines\[0\].*WGS84"):
        build("road_status", [[[500000.0, 2490000.0], [500100.0, 2490000.0]]], [1])
    with pytest.raises(ValidationError, match=r"values has shape \(3,\)"):
        build("road_status", lines, [1, 2], values=[1, 2, 3])


# ------------------------------------------------------------------------------------ facilities JSON


def test_facilities_dots_labels_and_tooltips():
    # called directly: build("facilities", ..., kind=...) clashes with build's own first argument
    from viz.layers.facilities import facilities

    ls = facilities([114.05, 114.06, np.nan], [22.54, 22.55, 22.56], ["莲花山公园", "B", "C"],
                    kind="fire_station", capacity=[4, None, 2])
    dots, text = ls.layers
    assert dots["id"] == "fire_station" and text["id"] == "fire_station_names"
    assert len(dots["data"]) == 2 and dots["getFillColor"] == [200, 20, 20, 255]
    assert dots["data"][0]["tooltip"] == "<b>莲花山公园</b><br/>fire station<br/>capacity: 4"
    assert dots["data"][1]["tooltip"] == "<b>B</b><br/>fire station"
    assert [r["t"] for r in text["data"]] == ["莲花山公园", "B"]
    assert "1 without a position" in ls.legends[0].title and ls.label == "Fire stations"
    with pytest.raises(ValidationError, match="kind='school'"):
        facilities([114.0], [22.5], ["x"], kind="school")
    with pytest.raises(ValidationError, match="names has 1 entries for 2"):
        build("facilities", [114.0, 114.1], [22.5, 22.5], ["x"])


def test_the_three_kinds_share_one_timeline_in_a_scene(streets):
    scene, _ = _scene(streets)
    js = scene.to_json()
    tl = js["timeline"]
    assert len(tl["times_s"]) == 10 and tl["labels"][5] == "+2 min 30 s"
    assert set(tl["frames"]) == {"road_status", "movers"}
    ids = [lyr["id"] for lyr in js["layers"]]
    assert ids == ["road_status", "movers", "shelter", "shelter_names"]


# ------------------------------------------------------------------------------------ in the browser


def _project(b, lon, lat):
    return b.evaluate(f"map.deck.getViewports()[0].project([{lon}, {lat}])")


def _near(img, xy, colour, radius=2, tol=40):
    """Is a pixel within ``radius`` of screen point ``xy`` within ``tol`` of ``colour``?"""
    x, y = int(round(xy[0])), int(round(xy[1]))
    patch = img[y - radius:y + radius + 1, x - radius:x + radius + 1, :3].astype(int)
    return bool((np.abs(patch - np.asarray(colour[:3])).max(axis=2) <= tol).any())


@pytest.mark.browser
def test_agents_move_and_the_street_closes_on_the_slider(streets, chromium, tmp_path):
    from viz.browser import TWINMAP_READY_JS, BrowserSession
    from viz.page import write_page

    scene, data = _scene(streets)
    page = write_page(scene, tmp_path / "agents.html")
    lon, lat = data["lon"], data["lat"]
    movers_js = "map.pointsOf('movers')"
    roads_js = ("map.deck.props.layers.find(l => l.id === 'road_status').props.data"
                ".map(r => [r.i, r.c, r.tooltip])")
    closed = list(STATES[2][1])
    mid = streets["close"].interpolate(0.5, normalized=True)
    with BrowserSession(width=1000, height=700) as b:
        b.goto(page, ready_js=TWINMAP_READY_JS, timeout=90)
        shot0 = tmp_path / "f0.png"
        b.screenshot(shot0)
        p0 = np.array(b.evaluate(movers_js))
        ok0 = np.isfinite(lon[0])
        assert p0.shape == (ok0.sum(), 3)
        assert np.array_equal(p0[:, 2], data["group"][ok0])
        np.testing.assert_allclose(p0[:, 0], lon[0, ok0], atol=5.1e-7, rtol=0)
        np.testing.assert_allclose(p0[:, 1], lat[0, ok0], atol=5.1e-7, rtol=0)
        assert [r[0] for r in b.evaluate(roads_js)] == []  # both streets open at frame 0
        road_xy = _project(b, mid.x, mid.y)

        assert b.evaluate("map.setFrame(7)") == 7
        p7 = np.array(b.evaluate(movers_js))
        ok7 = np.isfinite(lon[7])
        assert p7.shape == (ok7.sum(), 3)
        tips = b.evaluate("(() => { var L = map.deck.props.layers.find(l => l.id === 'movers');"
                          " return [0, 1].map(i => map._tooltip({layer: L, index: i}).html); })()")
        first = [data["group"][k] for k in np.flatnonzero(ok7)[:2]]
        assert tips == [["<b>Walker</b>", "<b>Fire engine</b>"][g] for g in first] and 1 in first
        np.testing.assert_allclose(p7[:, 0], lon[7, ok7], atol=5.1e-7, rtol=0)
        np.testing.assert_allclose(p7[:, 1], lat[7, ok7], atol=5.1e-7, rtol=0)
        assert np.abs(p7[:, 0].min() - p0[:, 0].min()) > 1e-3  # the front moved (west: the edge's direction)
        lead = int(np.flatnonzero(ok7).max())  # drawn on the part of the street empty at frame 0
        lead_xy = _project(b, lon[7, lead], lat[7, lead])
        shot7 = tmp_path / "f7.png"
        assert 0 < lead_xy[0] < 1000 and 0 < lead_xy[1] < 700
        b.screenshot(shot7)

        b.evaluate("map.setFrame(6)")
        rows = b.evaluate(roads_js)
        assert [r[0] for r in rows] == [1, 0] and rows[1][1] == closed  # closed last: drawn on top
        assert rows[1][2] == "<b>红荔路</b><br/>closed<br/>queue (vehicles): 18"
        shot6 = tmp_path / "f6.png"
        b.screenshot(shot6)
        assert b.evaluate("document.querySelector('.tm-label').textContent") == "+3 min"
        assert b.console_errors == [] and b.network_requests == []

    img0, img6, img7 = (np.asarray(Image.open(p).convert("RGB")) for p in (shot0, shot6, shot7))
    walker = (30, 90, 200)
    assert _near(img7, lead_xy, walker) and not _near(img0, lead_xy, walker)
    assert _near(img6, road_xy, closed) and not _near(img0, road_xy, closed)


@pytest.mark.browser
def test_a_large_movers_page_opens(chromium, tmp_path):
    """10 k agents × 60 frames: the page size and that it draws (the figures are in the log)."""
    import time

    from viz.browser import TWINMAP_READY_JS, BrowserSession
    from viz.page import write_page

    rng = np.random.default_rng(0)
    n_times, n = 60, 10_000
    lon0 = 114.03 + rng.uniform(0, 0.04, n)
    lat0 = 22.52 + rng.uniform(0, 0.04, n)
    step = rng.normal(0, 2e-5, (n_times, n, 2)).cumsum(axis=0)
    ls = build("movers", np.arange(n_times) * 10.0, lon0 + step[..., 0], lat0 + step[..., 1])
    page = write_page(Scene(sets=[ls]), tmp_path / "big.html")
    size = page.stat().st_size
    with BrowserSession(width=1000, height=700) as b:
        t0 = time.perf_counter()
        b.goto(page, ready_js=TWINMAP_READY_JS, timeout=120)
        load_s = time.perf_counter() - t0
        assert b.evaluate("map.frameCount") == n_times
        assert b.evaluate("map.setFrame(59).then(() => map.pointsOf('movers').length)") == n
        assert b.console_errors == []
    print(f"10k movers x 60 frames: page {size / 1e6:.1f} MB, drawn in {load_s:.1f} s")
    assert size < 20e6
