"""Tests for the viz.layers registry: a new kind is one module, found without touching the others."""

from __future__ import annotations

import importlib.util
import textwrap

import numpy as np
import pytest

from twin.errors import ValidationError
from viz import layers
from viz.browser import TWINMAP_READY_JS, BrowserSession
from viz.page import write_page
from viz.scene import Scene

BUILTIN = {"basemap", "roads", "metro", "flood_depth", "flood_max_depth", "flood_arrival", "sensors",
           "alerts", "diff"}

# A later model's layer module, as it would be written: it imports only the registry and the scene.
MODULE = textwrap.dedent('''
    from viz.layers import register
    from viz.scene import Legend, LayerSet

    @register("slope_failure_test")
    def slope_failure(cells, *, layer_id="slope_failure_test"):
        data = [{"polygon": [[lon, lat], [lon + 0.02, lat], [lon + 0.02, lat + 0.02], [lon, lat + 0.02]],
                 "p": p, "tooltip": f"P(failure) = {p:.0%}"} for lon, lat, p in cells]
        layer = {"@@type": "PolygonLayer", "id": layer_id, "data": data, "getPolygon": "@@=polygon",
                 "getFillColor": [200, 0, 200, 255], "pickable": True}
        return LayerSet(layers=[layer], label="Slope failure",
                        legends=[Legend(layer_id, "Slope failure", "", [("likely", (200, 0, 200))])],
                        bounds=(114.0, 22.5, 114.1, 22.6))
''')


@pytest.fixture
def slope_module(tmp_path):
    path = tmp_path / "slope_failure_layer.py"
    path.write_text(MODULE, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("slope_failure_layer", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    yield mod
    layers.unregister("slope_failure_test")


def test_builtin_kinds_are_discovered():
    assert BUILTIN <= set(layers.kinds())


def test_unknown_and_duplicate_kinds_are_refused(slope_module):
    with pytest.raises(ValidationError, match="unknown layer kind 'nope'.*basemap"):
        layers.build("nope")
    with pytest.raises(ValidationError, match="already registered"):
        layers.register("slope_failure_test")(lambda: None)
    with pytest.raises(ValidationError, match="non-empty"):
        layers.register(" ")

    @layers.register("returns_junk_test")
    def junk():
        return [1]

    try:
        with pytest.raises(ValidationError, match="not a LayerSet"):
            layers.build("returns_junk_test")
    finally:
        layers.unregister("returns_junk_test")


@pytest.mark.browser
def test_a_new_module_adds_its_layer_to_the_map(slope_module, chromium, tmp_path):
    assert "slope_failure_test" in layers.kinds()
    view = {"longitude": 114.05, "latitude": 22.55, "zoom": 11}
    scene = Scene(title="slopes", view=view)
    scene.add(layers.build("slope_failure_test", [(114.01, 22.52, 0.8), (114.06, 22.56, 0.4)]))
    js = scene.to_json()
    assert [t["label"] for t in js["toggles"]] == ["Slope failure"]
    write_page(js, tmp_path / "slopes.html")
    with BrowserSession(width=800, height=600) as b:
        b.goto(tmp_path / "slopes.html", ready_js=TWINMAP_READY_JS, timeout=90)
        ids = b.evaluate("map.deck.props.layers.map(l => l.id + ':' + l.constructor.layerName)")
        b.screenshot(tmp_path / "s.png")
        legend = b.evaluate("document.querySelector('.tm-legend').textContent")
        errors = list(b.console_errors) + list(b.network_requests)
    assert ids == ["slope_failure_test:PolygonLayer"]
    assert "Slope failure" in legend and "likely" in legend
    assert errors == []
    from PIL import Image

    a = np.asarray(Image.open(tmp_path / "s.png").convert("RGB"), dtype=int)
    magenta = (np.abs(a - [200, 0, 200]).max(axis=-1) < 10).sum()
    # Two 0.02° squares at zoom 11 (world 512·2^11 px): 58 px wide, 58/cos(22.5°) = 63 px high.
    assert abs(magenta - 2 * 58.3 * 63.2) < 0.08 * 2 * 58.3 * 63.2, magenta
