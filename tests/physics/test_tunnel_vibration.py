"""Construction-vibration forecast at tunnel linings (physics/tunnel_vibration.py).

Sources of the expected numbers:
* Blasting PPV: GB 6722-2014, V = K (Q^(1/3)/R)^alpha, with K 200, alpha 1.65 (medium rock in
  physics/tunnel_limits.toml, the middle of the medium-rock range K 150–250, alpha 1.5–1.8), evaluated by hand.
* Continuous PPV: Bornitz, v = v1 (r1/r)^n exp(-a (r - r1)), a = pi f eta / c, with the table's soil row
  (n 1, eta 0.1, c 200 m/s) and the piling row (v1 1.636 cm/s at 7.62 m, 15 Hz: FTA 2018 Table 7-4).
* Distance to the lining: sqrt(h^2 + depth^2) - D/2 on a straight synthetic tunnel (15 m axis, 6 m outer
  diameter, the table's defaults). Tolerance: round-off (rtol 1e-9); the geometry is exact.
* Limits: the bands of tunnel_limits.toml (GB 6722-2014 Table 2 traffic tunnel, lower ends; operating set).
"""

from __future__ import annotations

import json
import math
from datetime import datetime

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import LineString

from gis.crs import WORKING_CRS
from physics.tunnel_geometry import build_tunnels
from physics.tunnel_vibration import (
    forecast_vibration,
    limit_cm_s,
    load_table,
    read_sources,
    segments_frame,
)
from twin.errors import ValidationError

X0, Y0 = 500_000.0, 2_490_000.0
EXAMPLE = "physics/data/tunnel_examples/line1_construction_plan.geojson"


@pytest.fixture(scope="module")
def straight():
    """A 2 km straight tunnel 'T' along +x in the working CRS: 40 segments of 50 m."""
    gdf = gpd.GeoDataFrame({"line": ["T"]}, geometry=[LineString([(X0, Y0), (X0 + 2000.0, Y0)])], crs=WORKING_CRS)
    return build_tunnels(gdf)


def test_blasting_ppv_at_nearest_segment(straight):
    ds = forecast_vibration([{"x": X0 + 1025.0, "y": Y0 + 40.0, "type": "blasting", "charge_kg": 10.0,
                              "ground": "medium_rock"}], tunnels=straight, limits="construction")
    r = math.hypot(40.0, 15.0) - 3.0
    v = 200.0 * (10.0 ** (1 / 3) / r) ** 1.65
    k = int(np.argmax(ds["ppv_cm_s"].values))
    assert int(ds["segment_index"][k]) == 20  # 1000-1050 m holds x = 1025
    assert float(ds["distance_m"][k]) == pytest.approx(r, rel=1e-9)
    assert float(ds["ppv_cm_s"][k]) == pytest.approx(v, rel=1e-9)
    assert float(ds["ppv_max_cm_s"][0]) == pytest.approx(v, rel=1e-9)
    # 40 Hz default blasting frequency -> the 10-50 Hz band, 12 cm/s
    assert float(ds["limit_cm_s"][k]) == 12.0 and float(ds["ratio"][k]) == pytest.approx(v / 12.0, rel=1e-9)
    # the safe distance of the source gives exactly the limit (GB 6722 inverted)
    safe = float(ds["safe_distance_m"][0])
    assert 200.0 * (10.0 ** (1 / 3) / safe) ** 1.65 == pytest.approx(12.0, rel=1e-9)
    q = float(ds["max_charge_kg"][0])
    assert 200.0 * (q ** (1 / 3) / r) ** 1.65 == pytest.approx(12.0, rel=1e-9)


def test_piling_bornitz_and_operating_limit(straight):
    ds = forecast_vibration([{"x": X0 + 510.0, "y": Y0 - 12.0, "type": "piling"}], tunnels=straight)
    r = math.hypot(12.0, 15.0) - 3.0
    a = math.pi * 15.0 * 0.1 / 200.0
    v = 1.636 * (7.62 / r) * math.exp(-a * (r - 7.62))
    k = int(np.argmax(ds["ppv_cm_s"].values))
    assert float(ds["ppv_cm_s"][k]) == pytest.approx(v, rel=1e-9)
    assert float(ds["f_hz"][k]) == 15.0 and float(ds["limit_cm_s"][k]) == 2.0  # operating, 10-50 Hz
    safe = float(ds["safe_distance_m"][0])
    assert 1.636 * (7.62 / safe) * math.exp(-a * (safe - 7.62)) == pytest.approx(2.0, rel=1e-7)
    assert bool(ds["in_zone"][0]) and float(ds["offset_m"][0]) == pytest.approx(12.0, abs=1e-9)


def test_max_over_sources_and_time_window(straight):
    srcs = [{"x": X0 + 100.0, "y": Y0 + 20.0, "type": "blasting", "charge_kg": 20.0, "id": "B",
             "start": "2026-12-07T09:00+08:00", "end": "2026-12-08T09:00+08:00"},
            {"x": X0 + 100.0, "y": Y0 + 5.0, "type": "excavation", "id": "E"}]
    ds = forecast_vibration(srcs, tunnels=straight)
    seg = int(np.argmax(ds["ppv_cm_s"].values))
    assert ds["source_id"].values[int(ds["source_index"][seg])] == "B"
    later = forecast_vibration(srcs, tunnels=straight, at=datetime.fromisoformat("2026-12-09T00:00+08:00"))
    assert later.attrs["n_active"] == 1
    seg = int(np.argmax(later["ppv_cm_s"].values))
    assert later["source_id"].values[int(later["source_index"][seg])] == "E"


def test_limit_bands():
    t = load_table()
    np.testing.assert_array_equal(limit_cm_s([5, 10, 30, 50, 60], t["limits"]["construction"]["bands"]),
                                  [10, 10, 12, 12, 15])
    np.testing.assert_array_equal(limit_cm_s([5, 30, 60], t["limits"]["operating"]["bands"]), [1.5, 2.0, 2.5])
    entries = t["limits"]["operating"]["bands"] + t["limits"]["construction"]["bands"]
    entries += list(t["ground"].values()) + list(t["sources"].values()) + [t["tunnel"]]
    for e in entries:  # every number with its source, and why it is used when unverified
        assert e["source"] and isinstance(e["verified"], bool)
        assert e["verified"] or e["assumption"]


def test_bad_sources_refused_with_index_field_value(tmp_path):
    fc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"type": "blasting", "charge_kg": 5}, "geometry": {"type": "Point",
                                                                                            "coordinates": [114.05, 22.54]}},
        {"type": "Feature", "properties": {"type": "blasting", "charge_kg": -3}, "geometry": {"type": "Point",
                                                                                             "coordinates": [114.05, 22.54]}},
        {"type": "Feature", "properties": {"type": "jackhammer"}, "geometry": {"type": "Point",
                                                                              "coordinates": [114.05, 22.54]}},
        {"type": "Feature", "properties": {"type": "piling", "start": "tomorrow"},
         "geometry": {"type": "LineString", "coordinates": [[114.05, 22.54], [114.06, 22.54]]}},
    ]}
    p = tmp_path / "bad.geojson"
    p.write_text(json.dumps(fc))
    with pytest.raises(ValidationError) as err:
        read_sources(p)
    msg = str(err.value)
    assert "feature 1: field 'charge_kg' = -3" in msg
    assert "feature 2: field 'type' = 'jackhammer'" in msg
    assert "feature 3: geometry 'LineString'" in msg and "feature 3: field 'start' = 'tomorrow'" in msg
    assert "feature 0" not in msg
    with pytest.raises(ValidationError, match="limits = 'strict'"):
        forecast_vibration(p, limits="strict")


def test_example_plan_near_line1():
    ds = forecast_vibration(EXAMPLE, lines=["1"])
    fc = json.loads(open(EXAMPLE, encoding="utf-8").read())
    assert all(f["properties"]["invented"] for f in fc["features"])
    assert ds.attrs["n_over_limit"] >= 1 and ds.attrs["max_ratio"] > 1.0
    over = ds["over_limit"].values
    assert set(ds["line"].values[over]) == {"1"}
    assert forecast_vibration(EXAMPLE, lines=["1"], limits="construction").attrs["n_over_limit"] == 0
    g = segments_frame(ds)
    assert len(g) == ds.sizes["segment"] and g.crs.to_epsg() == 4326
    assert g.loc[over, "source_id"].str.startswith("P1").all()
