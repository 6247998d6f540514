"""Layers of the tunnel forecast (viz/layers/tunnel.py): classes, zone, sources, the DAS events hook, and the
offline page in headless Chromium.

Expected values: the ratio classes are the module's own edges (0.5, 0.8, 1; half-open); the protection zone is
50 m beyond a 6 m tunnel's outer edge (tunnel_limits.toml), so a point 30 m off the axis lies in the drawn
polygon and a point 90 m off does not (the polygon is simplified by 2 m, far below the 23 m margins).
"""

from __future__ import annotations

import json
import math

import geopandas as gpd
import numpy as np
import pytest
from PIL import Image
from pyproj import Transformer
from shapely.geometry import LineString, Point, Polygon

from gis.crs import WORKING_CRS
from physics.tunnel_geometry import build_tunnels
from physics.tunnel_vibration import forecast_vibration
from twin.errors import ValidationError
from viz.layers import build, kinds
from viz.layers.tunnel import RATIO_CLASSES, ratio_class, tunnel_layers
from viz.scene import Scene

X0, Y0 = 500_000.0, 2_490_000.0
TO_LL = Transformer.from_crs(WORKING_CRS, "EPSG:4326", always_xy=True)


@pytest.fixture(scope="module")
def ds():
    gdf = gpd.GeoDataFrame({"line": ["T"]}, geometry=[LineString([(X0, Y0), (X0 + 2000.0, Y0)])], crs=WORKING_CRS)
    tun = build_tunnels(gdf)
    return forecast_vibration([{"x": X0 + 1025.0, "y": Y0 + 25.0, "type": "blasting", "charge_kg": 12.0, "id": "B1",
                                "ground": "medium_rock"},
                               {"x": X0 + 400.0, "y": Y0 - 10.0, "type": "piling", "id": "P1"}], tunnels=tun)


def test_kinds_registered_and_classes_half_open():
    assert {"tunnel_segments", "tunnel_zone", "tunnel_sources", "tunnel_das_events"} <= set(kinds())
    np.testing.assert_array_equal(ratio_class([0.0, 0.49, 0.5, 0.8, 0.99, 1.0, 7.0, np.nan]), [0, 0, 1, 2, 2, 3, 3, 0])


def test_segments_are_coloured_by_share_of_the_limit(ds):
    s = build("tunnel_segments", ds)
    data = s.layers[0]["data"]
    assert len(data) == ds.sizes["segment"]
    over = np.flatnonzero(ds["over_limit"].values)
    assert over.size >= 1
    for k in over:
        assert data[k]["c"] == list(RATIO_CLASSES[3][1]) and "source B1" in data[k]["tooltip"]
    assert s.legends[0].stops[3][0].endswith(f"({over.size})")


def test_zone_polygon_30m_in_90m_out(ds):
    s = build("tunnel_zone", ds)
    (poly,) = [Polygon(p["polygon"][0], p["polygon"][1:]) for p in s.layers[0]["data"]]
    for off, inside in ((30.0, True), (90.0, False)):
        lon, lat = TO_LL.transform(X0 + 700.0, Y0 + off)
        assert poly.contains(Point(lon, lat)) is inside


def test_sources_have_safe_distance_rings(ds):
    s = build("tunnel_sources", ds)
    rings = {lyr["id"]: lyr for lyr in s.layers}["tunnel_sources_safe"]["data"]
    np.testing.assert_allclose([r["r"] for r in rings], ds["safe_distance_m"].values)


def test_das_events_hook(ds, tmp_path):
    lon, lat = TO_LL.transform(X0 + 1500.0, Y0)
    ev = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
         "properties": {"class": "intrusion", "confidence": 0.93, "chainage_m": 1500.0, "line": "T"}},
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},  # as twin tunnel detect writes
         "properties": {"event_class": "drilling", "confidence": 0.8, "onset_s": 12.5}}]}
    p = tmp_path / "events.geojson"
    p.write_text(json.dumps(ev))
    assert [s.layer_ids()[0] for s in tunnel_layers(ds)] == ["tunnel_sources_safe", "tunnel_segments", "tunnel_zone"]
    with_events = tunnel_layers(ds.assign_attrs(events_geojson=str(p)))
    assert with_events[0].layer_ids() == ["tunnel_das_events"]
    rows = with_events[0].layers[0]["data"]
    assert "intrusion" in rows[0]["tooltip"] and rows[1]["tooltip"].startswith("<b>drilling</b>")
    assert "time: 12.5 s" in rows[1]["tooltip"]
    Scene(sets=with_events).to_json()
    with pytest.raises(ValidationError, match="events feature 0"):
        build("tunnel_das_events", {"type": "FeatureCollection", "features": [
            {"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}}]})


class _TunnelKind:
    name, title = "tunnel_test", "Tunnel test"

    @staticmethod
    def layers(ds, warp=None, max_px=None):
        return tunnel_layers(ds, warp=warp, max_px=max_px)


@pytest.mark.browser
def test_tunnel_map_draws_offline_in_chromium(ds, chromium, tmp_path):
    from viz.browser import TWINMAP_READY_JS, BrowserSession, count_non_background
    from viz.run_map import write_run_map

    info = write_run_map(_TunnelKind, ds, tmp_path / "map.html")
    w, h = 900, 650
    k = int(np.flatnonzero(ds["over_limit"].values)[0])
    lon = (float(ds["lon0"][k]) + float(ds["lon1"][k])) / 2
    lat = (float(ds["lat0"][k]) + float(ds["lat1"][k])) / 2
    with BrowserSession(width=w, height=h) as b:
        b.goto(info["path"], ready_js=TWINMAP_READY_JS, timeout=90)
        ids = b.evaluate("map.deck.props.layers.map(l => l.id)")
        assert {"tunnel_segments", "tunnel_zone", "tunnel_sources", "tunnel_sources_safe"} <= set(ids), ids
        b.screenshot(tmp_path / "tunnel.png")
        px, py = (round(v) for v in b.evaluate(f"map.deck.getViewports()[0].project([{lon}, {lat}])")[:2])
        errors, network = list(b.console_errors), list(b.network_requests)
    assert errors == [], errors
    assert network == [], network
    assert 0 <= px < w and 0 <= py < h, (px, py)
    assert count_non_background(tmp_path / "tunnel.png", background=(255, 255, 255)) > 0.005 * w * h
    a = np.asarray(Image.open(tmp_path / "tunnel.png").convert("RGB"), dtype=int)
    near = a[max(0, py - 2):py + 3, max(0, px - 2):px + 3].reshape(-1, 3)
    red = (near[:, 0] > 150) & (near[:, 1] < 90) & (near[:, 2] < 90)
    assert red.any(), near  # the over-limit segment is drawn red where it lies
    assert math.isfinite(float(ds["ratio"][k]))
