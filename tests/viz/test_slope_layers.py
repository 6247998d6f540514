"""Tests for viz/layers/slope.py: the slope model's map layers, and its map page in headless Chromium.

The runs are synthetic, built to the ``slope.nc`` contract on a 60 × 80 grid at
30 m in EPSG:4547 around the 2015 Guangming landslide (22.718 N, 113.932 E),
so these tests do not wait for the model: FS rises from 0.5 in the west to 2.0
in the east, cells with FS < 1 fail at times proportional to FS, a debris
blob lies east of a failed strip, and four assets (one per kind) are hit.
"""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
import xarray as xr
from PIL import Image
from pyproj import Transformer

from twin.errors import ValidationError
from viz.layers import build, kinds
from viz.layers._raster import MercatorWarp, decode_value_grid
from viz.layers.slope import FS_CLASSES, PROBABILITY_FLOOR, asset_table, hourly_times, slope_layers
from viz.scene import Scene

X0, Y0, RES = 492_000.0, 2_514_200.0, 30.0
NY, NX = 60, 80
DURATION_H = 6.0
TO_LL = Transformer.from_crs("EPSG:4547", "EPSG:4326", always_xy=True)


def _ll(x, y) -> str:
    lon, lat = TO_LL.transform(x, y)
    return f"{lon:.6f} {lat:.6f}"


def slope_ds(probabilistic: bool = False, runout: bool = True, assets: bool = True) -> xr.Dataset:
    """A synthetic slope run (contract of slope.nc); see the module docstring."""
    y, x = np.mgrid[0:NY, 0:NX]
    fs = (0.5 + 1.5 * x / (NX - 1)).astype(np.float32)
    fs[:3, :] = np.nan  # three rows outside the model
    tof = np.where(fs < 1.0, 0.99 * DURATION_H * 3600.0 * (fs - 0.5) / 0.5, np.nan).astype(np.float32)
    zone = np.where(y < 30, 1, 2).astype(np.int16)
    soil = (1.0 + 0.05 * x).astype(np.float32)
    data = {
        "fs_min": (("y", "x"), fs),
        "depth_of_minimum": (("y", "x"), np.where(np.isfinite(fs), soil, np.nan).astype(np.float32)),
        "time_of_failure": (("y", "x"), tof),
        "slope": (("y", "x"), np.where(np.isfinite(fs), 45.0 - 40.0 * x / (NX - 1), np.nan).astype(np.float32)),
        "zone": (("y", "x"), zone, {"zone_names": json.dumps({"1": "granite_residual",
                                                              "2": "weathered_sedimentary"})}),
        "soil_depth": (("y", "x"), soil),
        "elevation": (("y", "x"), (100.0 + 3.0 * (NX - x) + 5 * np.sin(y / 6.0)).astype(np.float32)),
    }
    if probabilistic:
        p = np.clip((1.3 - fs) / 0.8, 0.0, 1.0).astype(np.float32)
        data["probability_of_failure"] = (("y", "x"), p)
        data["probability_se"] = (("y", "x"), np.sqrt(p * (1 - p) / 200.0).astype(np.float32))
    if runout:
        src = np.where((fs < 0.7) & (y >= 20) & (y < 30), 2.0, 0.0).astype(np.float32)
        r2 = ((x - 40) / 8.0) ** 2 + ((y - 25) / 6.0) ** 2
        dep = np.where(r2 < 1, 3.0 * (1 - r2), 0.0).astype(np.float32)
        data["runout_source"] = (("y", "x"), src)
        data["runout_depth"] = (("y", "x"), dep)
    coords = {"y": Y0 - RES * (np.arange(NY) + 0.5), "x": X0 + RES * (np.arange(NX) + 0.5)}
    if assets:
        cx, cy = X0 + 40.5 * RES, Y0 - 25.5 * RES  # centre of the debris blob
        bld = (f"POLYGON (({_ll(cx - 30, cy - 20)}, {_ll(cx + 30, cy - 20)}, {_ll(cx + 30, cy + 20)}, "
               f"{_ll(cx - 30, cy + 20)}, {_ll(cx - 30, cy - 20)}))")
        road = f"LINESTRING ({_ll(cx - 200, cy + 60)}, {_ll(cx + 200, cy + 60)})"
        metro = f"MULTILINESTRING (({_ll(cx - 150, cy - 90)}, {_ll(cx, cy - 100)}), ({_ll(cx, cy - 100)}, {_ll(cx + 150, cy - 90)}))"
        stn = f"POINT ({_ll(cx + 100, cy - 95)})"
        data.update({
            "asset_kind": (("asset",), np.array(["building", "road", "metro_line", "metro_station"], dtype=object)),
            "asset_id": (("asset",), np.array(["way/101", "e7", "line 6", "st-3"], dtype=object)),
            "asset_name": (("asset",), np.array(["Block <A> & B", "Guangming Ave", "Line 6", ""], dtype=object)),
            "asset_depth_m": (("asset",), np.array([2.93, 1.25, 0.4, 0.15])),
            "asset_wkt": (("asset",), np.array([bld, road, metro, stn], dtype=object)),
        })
    attrs = {"crs": "EPSG:4547", "transform": (RES, 0.0, X0, 0.0, -RES, Y0), "resolution_m": RES,
             "duration_h": DURATION_H, "mode": "probabilistic" if probabilistic else "deterministic",
             "storm": json.dumps({"name": "2023-09-07", "total_mm": 300.0}), "region": "synthetic Guangming"}
    return xr.Dataset(data, coords=coords, attrs=attrs)


def rgba_of(url: str) -> np.ndarray:
    """The RGBA pixels of a data-URL PNG."""
    raw = base64.b64decode(url.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(raw)).convert("RGBA"))


@pytest.fixture(scope="module")
def ds() -> xr.Dataset:
    return slope_ds()


@pytest.fixture(scope="module")
def warp(ds) -> MercatorWarp:
    return MercatorWarp.for_grid(ds)


def test_every_slope_kind_is_registered():
    assert {"slope_fs", "slope_probability", "slope_failure_time", "slope_runout", "slope_runout_source",
            "slope_assets"} <= set(kinds())


def test_fs_classes_colour_unstable_red_and_leave_stable_cells_transparent(ds, warp):
    s = build("slope_fs", ds, warp=warp)
    (layer,) = s.layers
    assert layer["@@type"] == "BitmapLayer" and layer["id"] == "slope_fs"
    legend = s.legends[0].to_json()
    assert [st[0] for st in legend["stops"]] == ["FS < 1 unstable", "1 – 1.3 marginal",
                                                 "1.3 – 1.5 near design minimum", "≥ 1.5 stable (not drawn)"]
    img = rgba_of(layer["image"])
    fs = warp(ds["fs_min"].values)
    assert img.shape[:2] == fs.shape
    # Transparent exactly where FS >= 1.5 or there is no model.
    clear = ~np.isfinite(fs) | (fs >= 1.5)
    assert clear.sum() > 1000 and (~clear).sum() > 1000
    assert np.array_equal(img[..., 3] == 0, clear)
    assert (img[np.isfinite(fs) & (fs < 1.0)] == [200, 20, 30, 235]).all()
    marg = np.isfinite(fs) & (fs >= 1.0) & (fs < 1.3)
    assert (img[marg] == [245, 135, 30, 215]).all()
    # The hover read-out gives FS within half its 0.01 step.
    back = decode_value_grid(layer["twinValues"])
    ok = np.isfinite(fs)
    assert np.array_equal(np.isfinite(back), ok)
    assert np.abs(back[ok] - fs[ok]).max() <= 0.005 + 1e-6


def test_fs_class_edges_are_half_open():
    assert FS_CLASSES.classify([0.99, 1.0, 1.29, 1.3, 1.49, 1.5, np.nan]).tolist() == [0, 1, 1, 2, 2, 3, -1]
    assert FS_CLASSES.indices([0.5, 1.1, 1.4, 1.6, np.nan]).tolist() == [1, 2, 3, 0, 0]


def test_probability_is_transparent_below_its_floor(warp):
    ds = slope_ds(probabilistic=True)
    s = build("slope_probability", ds, warp=warp)
    (layer,) = s.layers
    p = warp(ds["probability_of_failure"].values)
    img = rgba_of(layer["image"])
    clear = ~np.isfinite(p) | (p < PROBABILITY_FLOOR)
    assert np.array_equal(img[..., 3] == 0, clear)
    assert (~clear).sum() > 1000
    lg = s.legends[0].to_json()
    assert lg["units"] == "%" and lg["stops"][0][0] == 100 * PROBABILITY_FLOOR and lg["stops"][-1][0] == 100.0
    back = decode_value_grid(layer["twinValues"])  # read in %, 0.1 % steps; below the floor: -inf
    shown = np.isfinite(p) & (p >= PROBABILITY_FLOOR)
    assert np.abs(back[shown] - 100 * p[shown]).max() <= 0.05 + 1e-4
    assert np.all(back[np.isfinite(p) & (p < PROBABILITY_FLOOR)] == -np.inf)
    with pytest.raises(ValidationError, match="floor"):
        build("slope_probability", ds, warp=warp, floor=0.5)


def test_failure_time_frames_are_hourly_and_show_cells_once_failed(ds, warp):
    s = build("slope_failure_time", ds, warp=warp)
    n = int(DURATION_H) + 1
    assert s.times_s == [3600.0 * k for k in range(n)]
    assert len(s.frames["slope_failure_time"]) == n and s.frames["slope_failure_time"][0] == {}
    assert s.initial_frame == n - 1
    tof = ds["time_of_failure"].values
    wtof = warp(tof)
    layer = s.layers[0]
    for k, t in enumerate(s.times_s):
        want = int(np.count_nonzero(np.isfinite(tof) & (tof <= t)))
        assert s.labels[k].endswith(f"— {want:,} cells failed")
        url = layer["image"] if k == 0 else s.frames["slope_failure_time"][k]["image"]
        img = rgba_of(url)
        assert np.array_equal(img[..., 3] > 0, np.isfinite(wtof) & (wtof <= t + 1e-6)), k
    assert s.labels[1].startswith("+1 h 00 min")
    # Hover reads the time of failure (h, 1 min steps) on every frame.
    back = decode_value_grid(layer["twinValues"])
    ok = np.isfinite(wtof)
    assert np.abs(back[ok] - wtof[ok] / 3600).max() <= 1 / 120 + 1e-6
    assert hourly_times(2.5) == [0.0, 3600.0, 7200.0, 9000.0]


def _flood_like(n_times: int = 13) -> xr.Dataset:
    """A flood run on the same grid, frames every 10 min (as physics.flood_run writes them)."""
    t = np.arange(n_times) * 600.0
    depth = np.zeros((n_times, NY, NX), np.float32)
    depth[:, 40:50, 60:70] = (t / t[-1])[:, None, None]
    return xr.Dataset({"depth": (("time", "y", "x"), depth)}, coords={"time": t},
                      attrs={"crs": "EPSG:4547", "transform": (RES, 0.0, X0, 0.0, -RES, Y0)})


def test_failure_time_plays_on_the_floods_time_slider(ds, warp):
    flood = build("flood_depth", _flood_like(), warp=warp)
    slope = build("slope_failure_time", ds, warp=warp, times_s=flood.times_s)
    js = Scene(sets=[flood, slope]).to_json()
    tl = js["timeline"]
    assert tl["times_s"] == [600.0 * k for k in range(13)]
    assert set(tl["frames"]) == {"flood_depth", "slope_failure_time"}
    assert len(tl["frames"]["slope_failure_time"]) == 13
    # Hourly frames (3 over the flood's 2 h) cannot share the flood's 10-min slider.
    hourly = build("slope_failure_time", ds, warp=warp, times_s=[0.0, 3600.0, 7200.0])
    with pytest.raises(ValidationError, match="disagree on the time axis"):
        Scene(sets=[flood, hourly]).to_json()
    with pytest.raises(ValidationError, match="increasing"):
        build("slope_failure_time", ds, warp=warp, times_s=[0.0, 0.0])


def test_runout_draws_source_and_deposit_above_a_tenth_of_a_metre(ds, warp):
    deposit = build("slope_runout", ds, warp=warp)
    source = build("slope_runout_source", ds, warp=warp)
    assert deposit.visible and not source.visible  # source cells are the failed cells, shown below
    for s, var in ((source, "runout_source"), (deposit, "runout_depth")):
        (lyr,) = s.layers
        assert lyr["id"] == f"slope_{var.replace('_depth', '')}"
        v = warp(ds[var].values)
        img = rgba_of(lyr["image"])
        assert np.array_equal(img[..., 3] > 0, v >= 0.1), var
        assert (v >= 0.1).sum() > 50
        assert s.legends[0].units == "m"


def test_assets_are_drawn_by_geometry_with_kind_name_and_depth_tooltips(ds):
    s = build("slope_assets", ds)
    by_id = {lyr["id"]: lyr for lyr in s.layers}
    assert {k: v["@@type"] for k, v in by_id.items()} == {
        "slope_assets_areas": "PolygonLayer", "slope_assets_lines": "PathLayer",
        "slope_assets_points": "ScatterplotLayer"}
    (bld,) = by_id["slope_assets_areas"]["data"]
    assert bld["tooltip"] == ("<b>Block &lt;A&gt; &amp; B</b><br/>building hit by the runout"
                              "<br/>deposit depth: 2.93 m<br/>id: way/101")
    lines = by_id["slope_assets_lines"]["data"]
    assert len(lines) == 3  # the road and the metro line's two parts
    assert "<b>Guangming Ave</b><br/>road hit by the runout<br/>deposit depth: 1.25 m" in lines[0]["tooltip"]
    assert lines[1]["c"] == [0, 120, 210, 240] and "Line 6" in lines[2]["tooltip"]
    (stn,) = by_id["slope_assets_points"]["data"]
    assert stn["tooltip"].startswith("<b>metro station st-3</b>")  # no name: kind and id
    assert "0.15 m" in stn["tooltip"]
    legend = s.legends[0].to_json()
    assert [st[0] for st in legend["stops"]] == ["buildings (1)", "roads (1)", "metro lines (1)",
                                                 "metro stations (1)"]
    lon, lat = TO_LL.transform(X0 + 40.5 * RES, Y0 - 25.5 * RES)
    w, so, e, n = s.bounds
    assert w < lon < e and so < lat < n


def test_a_long_line_is_drawn_only_where_the_deposit_is(ds):
    to_grid = Transformer.from_crs("EPSG:4326", "EPSG:4547", always_xy=True)
    cy = Y0 - 25.5 * RES  # the row through the blob's centre
    one = ds.isel(asset=[2]).copy()
    one["asset_wkt"] = ("asset", np.array([f"LINESTRING ({_ll(X0 + 5.5 * RES, cy)}, {_ll(X0 + 75.5 * RES, cy)})"],
                                          dtype=object))
    (lines,) = build("slope_assets", one).layers
    (path,) = [np.asarray(r["path"]) for r in lines["data"]]
    x, _ = to_grid.transform(path[:, 0], path[:, 1])
    # Deposit >= 0.1 m on row 25: 3 (1 - ((c - 40) / 8)^2) >= 0.1, columns 33..47; one cell of slack
    # each side gives columns 32..48, x in [X0 + 32 RES, X0 + 49 RES]; the path reaches one
    # quarter-cell sample beyond (its densification step), and positions are rounded to 1e-6 deg.
    assert x.min() == pytest.approx(X0 + 32 * RES, abs=RES / 4 + 0.2)
    assert x.max() == pytest.approx(X0 + 49 * RES, abs=RES / 4 + 0.2)
    (whole,) = build("slope_assets", one, clip_lines=False).layers
    xw, _ = to_grid.transform(*np.asarray(whole["data"][0]["path"]).T)
    assert xw.max() - xw.min() == pytest.approx(70 * RES, abs=0.5)
    # A line off the deposit (the asset table says it is hit, the grid disagrees) is drawn whole.
    off = one.copy()
    off["asset_wkt"] = ("asset", np.array([f"LINESTRING ({_ll(X0 + 5.5 * RES, Y0 - 55.5 * RES)}, "
                                           f"{_ll(X0 + 20.5 * RES, Y0 - 55.5 * RES)})"], dtype=object))
    (lines,) = build("slope_assets", off).layers
    assert len(lines["data"][0]["path"]) == 2


def test_assets_from_the_runout_geodataframe_match_the_dataset(ds):
    import geopandas as gpd
    import shapely.wkt

    rows = asset_table(ds)
    gdf = gpd.GeoDataFrame({"kind": [r["kind"] for r in rows], "id": [r["id"] for r in rows],
                            "name": [r["name"] for r in rows], "deposit_depth_m": [r["depth_m"] for r in rows]},
                           geometry=[shapely.wkt.loads(w) for w in ds["asset_wkt"].values], crs="EPSG:4326")
    a = build("slope_assets", ds).layers
    b = build("slope_assets", gdf.to_crs(4547)).layers  # reprojected back to lon/lat
    assert [lyr["id"] for lyr in a] == [lyr["id"] for lyr in b]
    assert [r["tooltip"] for lyr in a for r in lyr["data"]] == [r["tooltip"] for lyr in b for r in lyr["data"]]


def test_bad_inputs_name_the_field():
    bad = slope_ds()
    bad["asset_kind"].values[0] = "bridge"
    with pytest.raises(ValidationError, match=r"asset_kind\[0\]='bridge'"):
        build("slope_assets", bad)
    with pytest.raises(ValidationError, match="'probability_of_failure'"):
        build("slope_probability", slope_ds())


def test_slope_layers_of_deterministic_and_probabilistic_runs(ds, warp):
    det = slope_layers(ds, warp=warp)
    assert [s.layer_ids() for s in det] == [
        ["slope_assets_areas", "slope_assets_lines", "slope_assets_points"],
        ["slope_runout"], ["slope_runout_source"], ["slope_failure_time"], ["slope_fs"]]
    assert [s.visible for s in det] == [True, True, False, True, True]
    prob = slope_layers(slope_ds(probabilistic=True), warp=warp)
    ids = [s.layer_ids()[0] for s in prob]
    assert ids == ["slope_assets_areas", "slope_runout", "slope_runout_source", "slope_failure_time",
                   "slope_probability", "slope_fs"]
    assert [s.visible for s in prob] == [True, True, False, False, True, False]
    bare = slope_layers(slope_ds(runout=False, assets=False), warp=warp)
    assert [s.layer_ids() for s in bare] == [["slope_failure_time"], ["slope_fs"]]
    Scene(sets=det).to_json()  # one scene: ids unique, one time axis


# ----------------------------------------------------------------------------- browser
class _SlopeKind:
    name, title = "slope_test", "Slope test"

    @staticmethod
    def layers(ds, warp=None, max_px=None):
        return slope_layers(ds, warp=warp, max_px=max_px)


@pytest.mark.browser
def test_slope_map_draws_offline_in_chromium(chromium, tmp_path):
    from viz.browser import TWINMAP_READY_JS, BrowserSession, count_non_background
    from viz.run_map import write_run_map

    ds = slope_ds()
    info = write_run_map(_SlopeKind, ds, tmp_path / "map.html")
    assert info["frames"] == int(DURATION_H) + 1
    w, h = 900, 650
    slope_ids = ["slope_fs", "slope_failure_time", "slope_runout", "slope_runout_source", "slope_assets_areas",
                 "slope_assets_lines", "slope_assets_points"]
    with BrowserSession(width=w, height=h) as b:
        b.goto(info["path"], ready_js=TWINMAP_READY_JS, timeout=90)
        ids = b.evaluate("map.deck.props.layers.map(l => l.id)")
        assert set(slope_ids) <= set(ids), ids
        assert b.evaluate("map.frameCount") == int(DURATION_H) + 1
        assert b.evaluate("map.frame") == int(DURATION_H)
        assert b.evaluate("document.querySelector('.tm-label').textContent").startswith("+6 h 00 min")
        b.screenshot(tmp_path / "slope.png")
        # A cell of the unstable strip (FS 0.69, fails at 2.25 h): purple at +6 h, red FS < 1 at +0 h.
        lon, lat = TO_LL.transform(X0 + 10.5 * RES, Y0 - 45.5 * RES)
        px, py = (round(v) for v in b.evaluate(f"map.deck.getViewports()[0].project([{lon}, {lat}])")[:2])
        assert 0 <= px < w and 0 <= py < h - 60, (px, py)
        b.evaluate("map.setFrame(0)")
        b.screenshot(tmp_path / "first.png")
        for lid in slope_ids:
            b.evaluate(f"map.setLayerVisible('{lid}', false)")
        b.evaluate("map._drawn()")
        b.screenshot(tmp_path / "bare.png")
        errors, network = list(b.console_errors), list(b.network_requests)
    assert errors == [], errors
    assert network == [], network
    shown = count_non_background(tmp_path / "slope.png", background=(255, 255, 255))
    assert shown > 0.1 * w * h, shown
    a = np.asarray(Image.open(tmp_path / "slope.png").convert("RGB"), dtype=int)
    z = np.asarray(Image.open(tmp_path / "bare.png").convert("RGB"), dtype=int)
    first = np.asarray(Image.open(tmp_path / "first.png").convert("RGB"), dtype=int)
    r, g, bl = a[py, px]
    assert bl > g + 60 and bl > 100, a[py, px]  # failure-time purple (ramp from (70, 0, 90))
    r, g, bl = first[py, px]
    assert r > 150 and g < 80 and bl < 80, first[py, px]  # FS < 1 red, not failed yet
    changed = (np.abs(a - z).max(axis=-1) > 30).sum()
    # The unstable west third of the grid (red and failure-time purple) covers a large share of the view.
    assert changed > 0.05 * w * h, changed


#: Pixels with alpha > 0 of the slope_failure_time layer's image at the map's current frame
#: (the decoded <img> of the frame's patch, which the map hands the layer).
OPAQUE_PIXELS_JS = """(() => {
  const img = map._patch('slope_failure_time', map.frame).props.image, c = document.createElement('canvas');
  c.width = img.naturalWidth; c.height = img.naturalHeight;
  const g = c.getContext('2d');
  g.drawImage(img, 0, 0);
  const d = g.getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let k = 3; k < d.length; k += 4) if (d[k] > 0) n++;
  return n;
})()"""


@pytest.mark.browser
def test_slope_failures_play_on_the_floods_slider_in_chromium(chromium, tmp_path):
    from viz.browser import TWINMAP_READY_JS, BrowserSession
    from viz.page import write_page

    ds = slope_ds()
    warp = MercatorWarp.for_grid(ds)
    flood = build("flood_depth", _flood_like(), warp=warp)
    sets = slope_layers(ds, warp=warp, times_s=flood.times_s)
    scene = Scene(title="flood and slope")
    for s in [flood, *reversed(sets)]:
        scene.add(s)
    page = write_page(scene, tmp_path / "both.html")
    tof = ds["time_of_failure"].values
    with BrowserSession(width=800, height=600) as b:
        b.goto(page, ready_js=TWINMAP_READY_JS, timeout=90)
        assert b.evaluate("map.frameCount") == 13
        assert b.evaluate("map.frame") == flood.initial_frame  # the first timed set (the flood) decides
        b.evaluate("map.setFrame(6)")
        # The slider's label is the flood's; at +1 h the slope layer shows the cells failed by 3600 s.
        assert b.evaluate("document.querySelector('.tm-label').textContent").startswith("+1 h 00 min")
        drawn = b.evaluate(OPAQUE_PIXELS_JS)
        wtof = warp(tof)
        want = int(np.count_nonzero(np.isfinite(wtof) & (wtof <= 3600.0)))
        assert 0 < want < int(np.isfinite(wtof).sum())
        assert drawn == want
        errors = list(b.console_errors)
    assert errors == [], errors
