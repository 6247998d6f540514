"""Map labels thin with zoom (``twinDeclutter``, viz/static/twinmap.js): incident and station names
piled up around Futian are left out where they would overlap, more important ones first, and come
back as the map zooms in; in headless Chromium on a page written by :func:`viz.page.write_page`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from viz.layers._labels import PRIORITY, label_layer
from viz.layers.facilities import facilities

# 12 incidents 150 m apart on a row through the Futian civic centre, and a fire station on the first.
LON0, LAT0 = 114.0600, 22.5430
STEP = 150.0 / (111_320.0 * np.cos(np.radians(LAT0)))  # 150 m of longitude (deg)
N = 12


def test_label_layers_carry_their_declutter_priority():
    assert "twinDeclutter" not in label_layer("x", [(LON0, LAT0, "a", "a")])
    assert label_layer("x", [(LON0, LAT0, "a", "a")], declutter=7)["twinDeclutter"] == 7.0
    inc = facilities([LON0], [LAT0], ["fire-1"], kind="incident")
    st = facilities([LON0], [LAT0], ["Futian fire station"], kind="fire_station")
    names = {lyr["id"]: lyr for s in (inc, st) for lyr in s.layers if lyr["@@type"] == "TextLayer"}
    assert names["incident_names"]["twinDeclutter"] == PRIORITY["incident"]
    assert names["fire_station_names"]["twinDeclutter"] == PRIORITY["fire_station"] < PRIORITY["incident"]


@pytest.fixture(scope="module")
def page(tmp_path_factory, chromium):
    from viz.browser import BrowserSession
    from viz.page import write_page
    from viz.scene import Scene

    lon = LON0 + STEP * np.arange(N)
    sets = [facilities(lon, np.full(N, LAT0), [f"medical-{k}" for k in range(N)], kind="incident"),
            facilities([LON0], [LAT0], ["Futian fire station"], kind="fire_station")]
    scene = Scene(title="declutter", sets=sets)
    scene.view = {"longitude": float(lon.mean()), "latitude": LAT0, "zoom": 10.0}
    path = write_page(scene.to_json(), tmp_path_factory.mktemp("declutter") / "map.html", title="declutter")
    with BrowserSession(width=1000, height=700) as b:
        b.goto(path, ready_js="window.twinReady === true", timeout=120)
        yield b


def shown(b, zoom: float) -> dict[str, list[str]]:
    """The label texts each name layer draws at ``zoom``."""
    b.evaluate(f"map.setView({{longitude: {LON0 + STEP * (N - 1) / 2}, latitude: {LAT0}, zoom: {zoom}}}), 1")
    return json.loads(b.evaluate(
        "JSON.stringify(Object.fromEntries(map.deck.props.layers.filter(l => l.id.endsWith('_names'))"
        ".map(l => [l.id, l.props.visible ? l.props.data.map(r => r.t) : []])))"))


def test_labels_thin_at_a_city_view_and_come_back_zoomed_in(page):
    city, street = shown(page, 10.0), shown(page, 17.0)
    # a whole-city view: 12 names within 1.7 km would overlap; one is drawn, the first (most important)
    assert city["incident_names"] == ["medical-0"]
    assert city["fire_station_names"] == []  # under an incident's name: incidents go first
    # zoomed in (~1 m a pixel: 150 m apart is ~130 px, more than a name's width) every name is drawn
    assert street["incident_names"] == [f"medical-{k}" for k in range(N)]
    # in between, some: the count never falls as the map zooms in
    counts = [len(shown(page, z)["incident_names"]) for z in (10.0, 12.0, 13.0, 14.0, 15.0, 16.0, 17.0)]
    assert counts == sorted(counts) and 1 < counts[3] < N, counts
    # the kept names at zoom 14 are at least a name's width apart (~70 px: "medical-k" at 11 px)
    kept = shown(page, 14.0)["incident_names"]
    idx = sorted(int(t.split("-")[1]) for t in kept)
    px_per_step = 150.0 / (78_271.52 * np.cos(np.radians(LAT0)) / 2 ** 14)  # deck.gl: a 512-px world at zoom 0
    assert min(np.diff(idx)) * px_per_step > 60.0


def test_a_hidden_layer_leaves_its_place_to_the_others(page):
    page.evaluate("map.setLayerVisible('incident', false), map.setLayerVisible('incident_names', false), 1")
    try:
        assert shown(page, 10.0)["fire_station_names"] == ["Futian fire station"]
    finally:
        page.evaluate("map.setLayerVisible('incident', true), map.setLayerVisible('incident_names', true), 1")
    assert shown(page, 10.0)["fire_station_names"] == []
