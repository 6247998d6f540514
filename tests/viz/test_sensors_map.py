"""The ``sensors`` map layer draws a placed sensor where it is and says how many it cannot draw.

The pixel test renders an offline scene page in headless Chromium, projects each sensor's
lon/lat with the page's own deck.gl viewport, and reads the screenshot there: the dot must
have the sensor's status colour (:data:`twin.sensor_status.STATUS_COLOURS`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from twin.sensor_status import STATUS_COLOURS
from twin.sensors import Sensor
from viz.layers import build

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
REGISTRY = [
    Sensor(id="CO-FUTIAN", kind="gas_co", lon=114.0550, lat=22.5375, unit="1"),
    Sensor(id="HT-NANSHAN", kind="heat", lon=114.0750, lat=22.5450, unit="K"),
]
LATEST = {
    "CO-FUTIAN": {"value": 8e-6, "unit": "1", "time": NOW - timedelta(minutes=1)},          # ok
    "HT-NANSHAN": {"value": 330.15, "unit": "K", "time": NOW - timedelta(minutes=1),      # alarm
                   "alert": "alarm"},
    "GHOST-1": {"value": 1.0, "unit": "m", "time": NOW - timedelta(minutes=1)},           # no position
    "GHOST-2": {"value": 2.0, "unit": "m", "time": NOW - timedelta(minutes=1)},
}
WANT = {"CO-FUTIAN": "ok", "HT-NANSHAN": "alarm"}


def layer_set():
    return build("sensors", REGISTRY, LATEST, now=NOW)


def test_unplaced_sensors_are_counted_not_dropped_silently():
    ls = layer_set()
    assert [d["id"] for d in ls.layers[0]["data"]] == list(WANT)
    assert ls.legends[0].title == "Sensor status · 2 sensors without a position"
    assert ls.label == "Sensors (2 sensors without a position)"
    # with every sensor placed nothing is said
    placed = build("sensors", REGISTRY, {k: v for k, v in LATEST.items() if k in WANT}, now=NOW)
    assert placed.legends[0].title == "Sensor status" and placed.label == "Sensors"


def test_tooltip_reads_in_the_display_unit():
    data = {d["id"]: d for d in layer_set().layers[0]["data"]}
    assert "8 ppm at 2024-06-01 11:59:00 UTC" in data["CO-FUTIAN"]["tooltip"]
    assert "57.0 °C at" in data["HT-NANSHAN"]["tooltip"]


def test_console_rows_without_a_position_are_counted():
    from viz.layers.sensors import count_unplaced, status_points_layer

    rows = [{"id": "a", "lon": 114.0, "lat": 22.5, "status": "ok"},
            {"id": "b", "lon": None, "lat": None, "status": "ok"},
            {"id": "c", "lon": float("nan"), "lat": 22.5, "status": "ok"}]
    assert count_unplaced(rows) == 2
    assert [d["id"] for d in status_points_layer(rows[:2])["data"]] == ["a"]


@pytest.mark.browser
def test_a_placed_sensor_is_drawn_at_its_position_in_its_status_colour(chromium, tmp_path):
    from PIL import Image

    from viz.browser import TWINMAP_READY_JS, BrowserSession
    from viz.page import write_page
    from viz.scene import Scene

    scene = Scene(title="sensors", view={"longitude": 114.065, "latitude": 22.541, "zoom": 13},
                  sets=[layer_set()])
    page = write_page(scene, tmp_path / "sensors.html")
    with BrowserSession(width=1000, height=700) as b:
        b.goto(page, ready_js=TWINMAP_READY_JS, timeout=90)
        b.evaluate("map._drawn()")
        # the page's own projection: canvas offset + deck.gl viewport (CSS px), times the pixel ratio
        pos = b.evaluate(
            "(() => { const r = map.deck.getCanvas ? map.deck.getCanvas().getBoundingClientRect()"
            " : map.canvasBox.getBoundingClientRect(); const vp = map.deck.getViewports()[0];"
            " const dpr = window.devicePixelRatio || 1; return JSON.stringify(" + str(
                [[s.lon, s.lat] for s in REGISTRY]) + ".map(p => { const q = vp.project(p);"
            " return [(r.left + q[0]) * dpr, (r.top + q[1]) * dpr]; })); })()")
        legend = b.evaluate("document.body.textContent")
        shot = b.screenshot(tmp_path / "sensors.png")
        errors = list(b.console_errors)
    assert errors == []
    assert "2 sensors without a position" in legend
    import json

    img = np.asarray(Image.open(shot).convert("RGB"), dtype=int)
    for s, (x, y) in zip(REGISTRY, json.loads(pos), strict=True):
        want = np.array(STATUS_COLOURS[WANT[s.id]][:3])
        xi, yi = int(round(x)), int(round(y))
        patch = img[yi - 2:yi + 3, xi - 2:xi + 3].reshape(-1, 3)  # inside the 6 px dot
        assert np.abs(patch - want).max() <= 12, (s.id, (xi, yi), patch[:3].tolist(), want.tolist())
        # control: 20 px away (outside the dot and left of its label) is not the colour
        away = img[yi, xi - 20]
        assert np.abs(away - want).max() > 40, (s.id, away.tolist())
