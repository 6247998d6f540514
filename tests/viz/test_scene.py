"""Tests for viz/scene.py and the layer kinds' scene JSON (no browser)."""

from __future__ import annotations

import base64
import io
import json
import math
import re
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import xarray as xr
from PIL import Image
from pyproj import Transformer

from twin.errors import ValidationError
from twin.events import Event
from twin.sensors import Sensor
from viz.layers import build
from viz.layers._raster import MercatorWarp, Ramp
from viz.layers.flood_depth import DEPTH_RAMP, frame_indices
from viz.scene import LayerSet, Legend, Scene

X0, Y0, RES = 495_000.0, 2_505_000.0, 30.0  # EPSG:4547, Futian
NY, NX = 50, 70


def _run(n_times: int = 7) -> xr.Dataset:
    """A flood-run-shaped Dataset: a pond deepening in the middle, NaN outside a corner."""
    y, x = np.mgrid[0:NY, 0:NX]
    r2 = ((x - NX / 2) / (NX / 4)) ** 2 + ((y - NY / 2) / (NY / 4)) ** 2
    times = np.arange(n_times) * 600.0
    depth = np.stack([np.where(r2 < 1, (1 - r2) * 1.5 * k / (n_times - 1), 0.0) for k in range(n_times)])
    depth[:, :5, :5] = np.nan
    depth = depth.astype(np.float32)
    arrival = np.full((NY, NX), np.nan, np.float32)
    wet = depth >= 0.15
    first = np.argmax(wet, axis=0)
    arrival[wet.any(axis=0)] = times[first[wet.any(axis=0)]]
    ds = xr.Dataset(
        {"depth": (("time", "y", "x"), depth), "max_depth": (("y", "x"), depth.max(axis=0)),
         "arrival_time": (("y", "x"), arrival, {"long_name": "first time depth >= 0.15 m (NaN: never)"})},
        coords={"time": times, "y": Y0 - RES * (np.arange(NY) + 0.5), "x": X0 + RES * (np.arange(NX) + 0.5)},
        attrs={"crs": "EPSG:4547", "transform": (RES, 0.0, X0, 0.0, -RES, Y0), "title": "test run"})
    return ds


def _decode(url: str) -> np.ndarray:
    assert url.startswith("data:image/png;base64,")
    with Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as im:
        return np.asarray(im.convert("RGBA"))


# --------------------------------------------------------------------------- ramps and warps


def test_ramp_indices_transparent_below_and_nan_clamped_above():
    r = Ramp([(0.0, (0, 0, 255, 255)), (1.0, (255, 0, 0, 255))], steps=4)
    idx = r.indices([np.nan, -0.1, 0.0, 0.5, 1.0, 7.0])
    assert list(idx) == [0, 0, 1, 3, 5, 5]
    pal = r.palette()
    assert pal.shape == (6, 4) and tuple(pal[0]) == (0, 0, 0, 0)
    assert tuple(pal[1]) == (0, 0, 255, 255) and tuple(pal[5]) == (255, 0, 0, 255)
    clamp = Ramp([(0.0, (0, 0, 255, 255)), (1.0, (255, 0, 0, 255))], transparent_below=False)
    assert clamp.indices([-5.0])[0] == 1
    with pytest.raises(ValidationError, match="increasing"):
        Ramp([(1.0, (0, 0, 0)), (0.5, (1, 1, 1))])


def test_warp_bounds_match_pyproj_corners_within_a_cell():
    ds = _run()
    warp = MercatorWarp.for_grid(ds["max_depth"].assign_attrs(ds.attrs))
    west, south, east, north = warp.bounds
    tr = Transformer.from_crs("EPSG:4547", "EPSG:4326", always_xy=True)
    xs = [X0, X0 + NX * RES, X0, X0 + NX * RES]
    ys = [Y0, Y0, Y0 - NY * RES, Y0 - NY * RES]
    lon, lat = tr.transform(xs, ys)
    cell_lon = RES / (111_320 * math.cos(math.radians(22.6)))
    cell_lat = RES / 110_574
    assert abs(west - min(lon)) < cell_lon and abs(east - max(lon)) < cell_lon
    assert abs(south - min(lat)) < cell_lat and abs(north - max(lat)) < cell_lat


def _wide_grid(res=1000.0, x0=350_000.0, y0=2_600_000.0, nx=300, ny=150) -> xr.DataArray:
    """300 km x 150 km of EPSG:4547 around its central meridian 114 E: the grid is visibly rotated
    against north at its east and west ends (meridian convergence ~0.5 degrees)."""
    return xr.DataArray(np.zeros((ny, nx), np.float32), dims=("y", "x"),
                        attrs={"crs": "EPSG:4547", "transform": (res, 0.0, x0, 0.0, -res, y0)})


def test_warp_puts_each_cell_where_pyproj_says_not_off_by_the_grid_rotation():
    """A marker cell drawn on the bitmap lands on the pixel whose lon/lat holds it (within half a
    cell), where a plain affine stretch of the grid between the same bounds is off by over a cell."""
    res, x0, y0, ny, nx = 1000.0, 350_000.0, 2_600_000.0, 150, 300
    da = _wide_grid(res, x0, y0, nx, ny)
    warp = MercatorWarp.for_grid(da, max_px=4000)
    tr = Transformer.from_crs("EPSG:4547", "EPSG:4326", always_xy=True)
    to_merc = Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)
    west, south, east, north = warp.bounds
    (mx0, mx1), (my0, my1) = to_merc.transform([west, east], [south, north])
    h, w = warp.shape
    cell_lon, cell_lat = res / 103_000, res / 110_574
    naive_off = []
    for row, col in [(3, nx - 4), (ny - 4, 3), (3, 3), (ny // 2, nx // 2)]:
        marker = np.zeros((ny, nx), np.float32)
        marker[row, col] = 1.0
        pix = np.argwhere(warp(marker) == 1.0)
        assert len(pix), (row, col)
        py, px = pix.mean(axis=0) + 0.5  # centre of the marked pixels -> lon/lat (linear in mercator)
        lon, lat = to_merc.transform(mx0 + px / w * (mx1 - mx0), my1 - py / h * (my1 - my0),
                                     direction="INVERSE")
        want_lon, want_lat = tr.transform(x0 + (col + 0.5) * res, y0 - (row + 0.5) * res)
        assert abs(lon - want_lon) < 0.5 * cell_lon and abs(lat - want_lat) < 0.5 * cell_lat, (row, col)
        # A straight affine mapping of the grid onto the same bounds:
        nlon, nlat = to_merc.transform(mx0 + (col + 0.5) / nx * (mx1 - mx0),
                                       my1 - (row + 0.5) / ny * (my1 - my0), direction="INVERSE")
        naive_off.append(max(abs(nlon - want_lon) / cell_lon, abs(nlat - want_lat) / cell_lat))
    assert max(naive_off) > 1.0, naive_off


# --------------------------------------------------------------------------- layer kinds


def test_flood_depth_frames_legend_and_transparency():
    ds = _run(n_times=37)
    ls = build("flood_depth", ds, max_frames=10)
    keep = frame_indices(37, 10)
    assert keep[0] == 0 and keep[-1] == 36 and len(keep) == 10
    assert ls.times_s == [600.0 * k for k in keep]
    frames = ls.frames["flood_depth"]
    assert len(frames) == 10 and frames[0] == {} and all("image" in f for f in frames[1:])
    # The pond deepens throughout: the last frame has the largest flooded area, opened on and labelled.
    assert ls.initial_frame == 9 and ls.labels[-1] == "+6 h 00 min — largest flooded area"
    assert ls.labels[0] == "+0 min"
    # Legend in metres, increasing, with the ramp's colours.
    lg = ls.legends[0].to_json()
    assert lg["units"] == "m" and lg["layer"] == "flood_depth"
    values = [s[0] for s in lg["stops"]]
    assert values == sorted(values) and values[0] == pytest.approx(0.05) and values[-1] >= 2
    assert all(len(s[1]) == 4 for s in lg["stops"])
    # Frame 0: all dry -> fully transparent; last: the pond is opaque, the corners stay clear.
    first = _decode(ls.layers[0]["image"])
    last = _decode(frames[-1]["image"])
    assert first[..., 3].max() == 0
    h, w, _ = last.shape
    assert last[h // 2, w // 2, 3] > 200
    assert last[2, 2, 3] == 0 and last[h - 3, w - 3, 3] == 0
    # The deepest colour of the last frame is the ramp colour of ~1.5 m.
    pal_idx = DEPTH_RAMP.indices([1.5])[0]
    assert tuple(last[h // 2, w // 2]) == tuple(DEPTH_RAMP.palette()[pal_idx])


def test_scene_json_timeline_toggles_and_view():
    ds = _run()
    scene = Scene(title="t")
    scene.add(build("flood_arrival", ds))
    scene.add(build("flood_depth", ds))
    js = json.loads(json.dumps(scene.to_json()))  # JSON-clean
    assert [lyr["id"] for lyr in js["layers"]] == ["flood_arrival", "flood_depth"]
    assert js["layers"][0]["@@type"] == "BitmapLayer"
    tl = js["timeline"]
    assert len(tl["times_s"]) == len(tl["labels"]) == 7 == len(tl["frames"]["flood_depth"])
    assert js["toggles"] == [{"label": "Flood arrival time", "layers": ["flood_arrival"], "visible": False},
                             {"label": "Flood depth", "layers": ["flood_depth"], "visible": True}]
    assert [lg["units"] for lg in js["legends"]] == ["h", "m"]
    assert "0.15 m" in js["legends"][0]["title"]
    b = js["layers"][1]["bounds"]
    v = js["view"]
    assert b[0] < v["longitude"] < b[2] and b[1] < v["latitude"] < b[3] and 10 < v["zoom"] < 18


def test_scene_rejects_duplicates_unknown_frames_and_mismatched_times():
    ds = _run()
    with pytest.raises(ValidationError, match="duplicate"):
        Scene(sets=[build("flood_depth", ds), build("flood_depth", ds)]).to_json()
    with pytest.raises(ValidationError, match="time axis"):
        Scene(sets=[build("flood_depth", ds),
                    build("flood_depth", ds.isel(time=slice(0, 3)), layer_id="other")]).to_json()
    bad = LayerSet(layers=[{"@@type": "ScatterplotLayer", "id": "a", "data": []}], times_s=[0.0],
                   frames={"b": [{}]})
    with pytest.raises(ValidationError, match="'b'"):
        Scene(sets=[bad]).to_json()
    with pytest.raises(ValidationError, match="0-255"):
        Legend("a", "x", "m", [(0, (300, 0, 0))]).to_json()


def test_diff_is_b_minus_a_on_a_diverging_ramp():
    ds = _run()
    a = ds["max_depth"].assign_attrs(ds.attrs)
    b = a + 0.0
    b.values[:, : NX // 2] += 1.0   # B deeper in the west half
    b.values[:, NX // 2:] -= 0.6    # shallower in the east half (negative: fine for a difference)
    ls = build("diff", a, b)
    img = _decode(ls.layers[0]["image"])
    h, w, _ = img.shape
    west, east = img[h // 2, w // 6], img[h // 2, 5 * w // 6]
    assert west[0] > west[2] and west[3] > 0      # red: B higher
    assert east[2] > east[0] and east[3] > 0      # blue: B lower
    lg = ls.legends[0].to_json()
    values = [s[0] for s in lg["stops"]]
    assert values[0] < 0 < values[-1] and values == sorted(values)


def test_sensor_status_and_alert_placement():
    now = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
    reg = [Sensor(id="g1", kind="water_level", lon=114.05, lat=22.54, unit="m",
                  thresholds={"warning": 1.0, "alarm": 2.0}),
           Sensor(id="g2", kind="water_level", lon=114.06, lat=22.55, unit="m"),
           Sensor(id="g3", kind="rain_gauge", lon=114.07, lat=22.56, unit="mm"),
           Sensor(id="g4", kind="rain_gauge", lon=114.08, lat=22.57, unit="mm"),
           Sensor(id="g5", kind="water_level", lon=114.09, lat=22.58, unit="m",
                  thresholds={"warning": 1.0, "alarm": 2.0})]
    latest = {"g1": {"value": 2.3, "unit": "m", "time": now - timedelta(minutes=2)},
              "g2": {"value": 0.2, "unit": "m", "time": now - timedelta(minutes=30)},
              "g3": {"value": 4.0, "unit": "mm", "time": now - timedelta(minutes=1)},
              "g5": {"value": 1.2, "unit": "m", "time": now - timedelta(minutes=1)}}
    ls = build("sensors", reg, latest, now=now)
    data = {d["id"]: d for d in ls.layers[0]["data"]}
    assert {k: d["status"] for k, d in data.items()} == {
        "g1": "alarm", "g2": "stale", "g3": "ok", "g4": "offline", "g5": "warning"}
    assert re.search(r"2\.30? m at 2024-06-01 11:58:00 UTC", data["g1"]["tooltip"])  # display units
    assert [s[0] for s in ls.legends[0].stops][:3] == ["ok", "warning", "alarm"]
    events = [Event(time_s=60.0, kind="threshold_crossed", source="g1/level", severity="alarm", message="high"),
              Event(time_s=90.0, kind="x", source="nowhere", severity="warning", message="?"),
              Event(time_s=30.0, kind="y", source="g3", severity="info", message="minor"),
              Event(time_s=10.0, kind="z", source="op", severity="warning", message="<b>",
                    data={"lon": 114.1, "lat": 22.6})]
    al = build("alerts", events, reg)
    rows = al.layers[1]["data"]
    assert [r["severity"] for r in rows] == ["warning", "alarm"]  # info filtered, time order
    assert rows[1]["p"] == [114.05, 22.54] and rows[0]["p"] == [114.1, 22.6]
    assert "&lt;b&gt;" in rows[0]["tooltip"]
    assert "1 without a place" in al.label
