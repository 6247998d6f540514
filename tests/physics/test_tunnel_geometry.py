"""Tunnels from the metro lines (physics/tunnel_geometry.py), on the real Shenzhen lines (TWIN_DATA).

Sources of the expected numbers:
* Line 1's length: the sum of its station-to-station geodesic distances on the WGS 84 ellipsoid
  (pyproj.Geod, an independent computation from the stations' lon/lat). The approximate alignment is
  straight between stations, so the two differ only by the working CRS's scale error, below 55 ppm over
  Shenzhen (gis/crs.py; EPSG:4547 with CM 114E): tolerance 1e-4 relative (~4 m on 40 km).
* Chainage round trip: chainage -> point -> chainage is exact arithmetic on straight legs; < 1 cm.
* Protection zone: 50 m beyond the outer edge of a 6 m tunnel (tunnel_limits.toml [tunnel], issue 15),
  so a point 30 m off the axis is inside (30 <= 53) and 90 m off is not.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from pyproj import Geod

from physics.tunnel_geometry import (
    TunnelOverride,
    build_tunnels,
    horizontal_distance_to_segments,
    line_key,
)
from twin.config import data_dir
from twin.errors import ValidationError


@pytest.fixture(scope="module")
def line1():
    return build_tunnels(select=["Line 1"])


def _line1_lonlat():
    path = data_dir() / "shenzhen/metro/sz_metro_lines_approx.geojson"
    fc = json.loads(path.read_text(encoding="utf-8"))
    (feat,) = [f for f in fc["features"] if f["properties"]["line"] == "1"]
    return np.asarray(feat["geometry"]["coordinates"]), feat["properties"]


def test_line1_length_matches_geodesic_station_distances(line1):
    lonlat, props = _line1_lonlat()
    assert len(lonlat) == props["n_matched"] == 30  # one vertex per station
    geod = Geod(ellps="WGS84")
    _, _, dist = geod.inv(lonlat[:-1, 0], lonlat[:-1, 1], lonlat[1:, 0], lonlat[1:, 1])
    assert line1.length_m("1") == pytest.approx(float(np.sum(dist)), rel=1e-4)
    assert line1.seg_c1[-1] == pytest.approx(line1.length_m("1"))
    seg_len = line1.seg_c1 - line1.seg_c0
    assert np.all(np.abs(seg_len - 50.0) <= 25.0)


def test_chainage_round_trip_below_1cm(line1):
    c = np.linspace(0.0, line1.length_m("1"), 997)
    x, y = line1.chainage_to_point("1号线", c)
    lines, c2, off = line1.locate(x, y)
    assert set(lines) == {"1"}
    assert np.max(np.abs(c2 - c)) < 0.01
    assert np.max(off) < 0.01


def _offset_point(tun, chainage, offset):
    """A point ``offset`` m to the left of the axis at ``chainage`` (mid-leg, away from the stations)."""
    x, y = tun.chainage_to_point("1", [chainage - 1.0, chainage, chainage + 1.0])
    tx, ty = x[2] - x[0], y[2] - y[0]
    n = np.hypot(tx, ty)
    return x[1] - ty / n * offset, y[1] + tx / n * offset


def test_protection_zone_30m_in_90m_out(line1):
    cum = line1.chainage["1"]
    k = int(np.argmax(np.diff(cum)))  # the longest leg: its middle is far from any bend
    mid = (cum[k] + cum[k + 1]) / 2
    for off, inside in ((30.0, True), (90.0, False)):
        x, y = _offset_point(line1, mid, off)
        assert bool(line1.in_protection_zone(x, y)[0]) is inside
        _, c, d = line1.locate(x, y)
        assert d[0] == pytest.approx(off, abs=1e-6) and c[0] == pytest.approx(mid, abs=1e-6)
    h = horizontal_distance_to_segments(line1, *_offset_point(line1, mid, 30.0))
    assert h.min() == pytest.approx(30.0, abs=1e-6)


def test_overrides_by_line_and_chainage():
    tun = build_tunnels(select=["1"], overrides=[TunnelOverride("Line 1", depth_m=25.0),
                                                 {"line": "1", "diameter_m": 6.2, "chainage_from_m": 1000.0,
                                                  "chainage_to_m": 2000.0}])
    assert np.all(tun.depth_m == 25.0)
    mid = (tun.seg_c0 + tun.seg_c1) / 2
    assert np.all(tun.diameter_m[(mid >= 1000) & (mid < 2000)] == 6.2)
    assert np.all(tun.diameter_m[mid < 1000] == 6.0)


def test_bad_input():
    with pytest.raises(ValidationError, match="segment_m = -5"):
        build_tunnels(select=["1"], segment_m=-5)
    with pytest.raises(ValidationError, match="'99'"):
        build_tunnels(select=["99"])
    with pytest.raises(ValidationError, match="depth_m = 0"):
        TunnelOverride("1", depth_m=0.0)


def test_line_key():
    assert line_key("Line 1") == line_key("1号线") == line_key(1) == "1"
    assert line_key("Line 6 Branch") == "6支"


def test_locator_gives_map_points_along_the_line(line1):
    at = line1.locator("Line 1")
    x, y, lon, lat = at([0.0, 500.0, 1e9])
    x0, y0 = line1.chainage_to_point("1", [0.0, 500.0, line1.length_m("1")])
    np.testing.assert_allclose(x, x0) and np.testing.assert_allclose(y, y0)
    lonlat, _ = _line1_lonlat()
    np.testing.assert_allclose([lon[0], lat[0]], lonlat[0], atol=1e-7)  # first station, back in WGS 84
    np.testing.assert_allclose([lon[2], lat[2]], lonlat[-1], atol=1e-7)  # clipped to the last station
