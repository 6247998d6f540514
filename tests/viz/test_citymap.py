"""Tests for viz/citymap.py: the city map deck, on synthetic and on the real Shenzhen data."""

from __future__ import annotations

import base64
import io
import json
import math
import os
import re

import geopandas as gpd
import numpy as np
import pandas as pd
import pydeck as pdk
import pytest
import rasterio
import xarray as xr
from PIL import Image
from pyproj import Transformer
from shapely.geometry import LineString, Point, box

from twin.errors import CRSError, GridError, ValidationError
from viz import citymap
from viz.browser import count_non_background, screenshot
from viz.citymap import (
    LAYER_BUILDERS,
    city_map_deck,
    hex_to_rgb,
    hillshade_bitmap,
    prepare_vector,
    view_for_bounds,
)
from viz.offline import assert_offline, deck_json_size, write_offline_html

# District codes and names: facts listed in the data README.
DISTRICTS = {"440303": "Luohu", "440304": "Futian", "440305": "Nanshan", "440306": "Bao'an",
             "440307": "Longgang", "440308": "Yantian", "440309": "Longhua", "440310": "Pingshan",
             "440311": "Guangming"}
CITY_AREA_KM2 = 2138  # the README: the 9 districts add up to the city's 2138 km²


def _decode(url: str) -> np.ndarray:
    assert url.startswith("data:image/png;base64,")
    with Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as im:
        return np.asarray(im.convert("RGBA"))


def _grid_4547(h=200, w=300, res=100.0, x0=480_000.0, y0=2_520_000.0) -> xr.DataArray:
    """North half lit (1.0), south half dark (0.0), a NaN block in the north-west corner."""
    v = np.zeros((h, w), dtype=np.float32)
    v[: h // 2] = 1.0
    v[:20, :30] = np.nan
    t = (res, 0.0, x0, 0.0, -res, y0)
    x = x0 + res * (np.arange(w) + 0.5)
    y = y0 - res * (np.arange(h) + 0.5)
    return xr.DataArray(v, dims=("y", "x"), coords={"y": y, "x": x},
                        attrs={"crs": "EPSG:4547", "transform": t})


# --------------------------------------------------------------------------- hillshade


def test_hillshade_bitmap_reprojects_from_4547_north_up_with_transparent_nodata():
    da = _grid_4547()
    url, (west, south, east, north) = hillshade_bitmap(da, max_px=2048)
    rgba = _decode(url)
    # Bounds are the lon/lat envelope of the source corners (pyproj, independently).
    tr = Transformer.from_crs("EPSG:4547", "EPSG:4326", always_xy=True)
    xs, ys = [480_000.0, 510_000.0, 480_000.0, 510_000.0], [2_520_000.0, 2_520_000.0, 2_500_000.0, 2_500_000.0]
    lon, lat = tr.transform(xs, ys)
    tol = 0.002  # degrees, ~2 cells
    assert abs(west - min(lon)) < tol and abs(east - max(lon)) < tol
    assert abs(south - min(lat)) < tol and abs(north - max(lat)) < tol
    h, w, _ = rgba.shape
    assert abs(w / h - 1.5) < 0.1  # 30 km × 20 km stays ~3:2 in web mercator
    opaque = rgba[..., 3] == 255
    # North-up: lit north, dark south (grey = 255·(0.35 + 0.65·shade), quantised to 64 levels).
    col = w // 2
    assert rgba[h // 4, col, 0] >= 248 and rgba[3 * h // 4, col, 0] in range(84, 92)
    # The NaN block (north-west tenth by width, top tenth by height) is transparent.
    assert rgba[2, 2, 3] == 0 and not opaque[2, 2]
    assert rgba[h // 2 + 5, w // 2, 3] == 255
    # Reprojection leaves only thin transparent slivers at the rotated edges.
    assert opaque.mean() > 0.9


def test_hillshade_bitmap_caps_size_and_accepts_0_255():
    da = _grid_4547(h=400, w=1200, res=25.0)
    da = da.copy(data=np.nan_to_num(da.values) * 255)
    url, _ = hillshade_bitmap(da, max_px=512)
    rgba = _decode(url)
    assert max(rgba.shape[:2]) <= 512
    assert rgba[..., 0].max() >= 248  # 255 read as fully lit, not clipped to 1/255


def test_hillshade_is_clear_over_water_or_tinted():
    da = _grid_4547()
    lon0, lon1, lat0, lat1 = 113.7, 114.9, 22.3, 22.9
    n = 240
    water = np.zeros((n, n), dtype=np.uint8)
    east_of = 113.9  # water east of this meridian
    lons = lon0 + (np.arange(n) + 0.5) * (lon1 - lon0) / n
    water[:, lons > east_of] = 1
    wda = xr.DataArray(water, dims=("y", "x"), attrs={
        "crs": "EPSG:4326", "transform": ((lon1 - lon0) / n, 0.0, lon0, 0.0, -(lat1 - lat0) / n, lat1)})
    url, (west, _, east, _) = hillshade_bitmap(da, water=wda, water_style="tint")
    rgba = _decode(url)
    h, w, _ = rgba.shape
    col_water = int((0.9 * (east - east_of) + east_of - west) / (east - west) * w)
    col_land = int((west + 0.2 * (east_of - west) - west) / (east - west) * w)
    assert tuple(rgba[3 * h // 4, min(col_water, w - 1), :3]) == citymap.WATER_RGB
    assert rgba[3 * h // 4, col_land, 0] == rgba[3 * h // 4, col_land, 2]  # grey, not tinted
    # Default: the relief stops at the shore (transparent over water), opaque on land.
    clear = _decode(hillshade_bitmap(da, water=wda)[0])
    assert clear[3 * h // 4, min(col_water, w - 1), 3] == 0
    assert clear[3 * h // 4, col_land, 3] == 255
    water_px = _decode(hillshade_bitmap(da, water=wda, water_style="tint")[0])[..., :3] == citymap.WATER_RGB
    assert (clear[..., 3][water_px.all(axis=-1)] == 0).all()
    with pytest.raises(ValidationError, match="water_style"):
        hillshade_bitmap(da, water=wda, water_style="blue")


def test_hillshade_needs_crs():
    da = _grid_4547()
    del da.attrs["crs"]
    with pytest.raises(CRSError, match="crs"):
        hillshade_bitmap(da)
    with pytest.raises(GridError):
        hillshade_bitmap(xr.DataArray(np.zeros((2, 3, 4)), attrs={"crs": "EPSG:4326"}))


# --------------------------------------------------------------------------- vectors


def test_prepare_vector_reprojects_simplifies_and_rounds():
    rng = np.random.default_rng(0)
    x = np.linspace(490_000, 500_000, 1001)  # 10 km, a vertex every 10 m
    y = 2_510_000 + 200 * np.sin(x / 2000) + rng.uniform(-1, 1, x.size)  # ±1 m jitter
    gdf = gpd.GeoDataFrame({"v": [1]}, geometry=[LineString(np.c_[x, y])], crs="EPSG:4547")
    out = prepare_vector(gdf, simplify_m=10)
    assert out.crs.to_epsg() == 4326
    coords = np.asarray(out.geometry.iloc[0].coords)
    assert 3 < len(coords) < 60, len(coords)
    assert np.allclose(coords * 1e6, np.round(coords * 1e6), atol=1e-3)
    lon, lat = Transformer.from_crs("EPSG:4547", "EPSG:4326", always_xy=True).transform(x[0], y[0])
    assert abs(coords[0, 0] - lon) < 1e-6 and abs(coords[0, 1] - lat) < 1e-6
    # The simplified line stays within ~10 m of the original.
    back = gpd.GeoSeries(out.geometry, crs=4326).to_crs(4547).iloc[0]
    assert back.hausdorff_distance(gdf.geometry.iloc[0]) < 12


def test_prepare_vector_needs_crs():
    with pytest.raises(CRSError, match="no CRS"):
        prepare_vector(gpd.GeoDataFrame(geometry=[Point(0, 0)]))


def test_hex_to_rgb():
    assert hex_to_rgb("#00A651") == [0, 166, 81]
    assert hex_to_rgb("0a5") == [0, 170, 85]
    assert hex_to_rgb(None) == [120, 120, 120]
    assert hex_to_rgb("#zzzzzz", default=(1, 2, 3)) == [1, 2, 3]


def test_view_for_bounds_fits_the_viewport():
    w, s, e, n = 113.75, 22.45, 114.65, 22.85
    v = view_for_bounds(w, s, e, n, width=1200, height=800)
    world = 512 * 2 ** v.zoom
    px_x = (e - w) / 360 * world

    def merc(lat):
        return math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))

    px_y = (merc(n) - merc(s)) / (2 * math.pi) * world
    assert px_x <= 1200 and px_y <= 800
    assert max(px_x / 1200, px_y / 800) > 0.85  # tight, not just anywhere
    assert abs(v.longitude - 114.2) < 1e-9
    assert s < v.latitude < n


def _small_layers():
    district = gpd.GeoDataFrame({"name": ["A<b>"]}, geometry=[box(114.0, 22.5, 114.1, 22.6)], crs=4326)
    lines = gpd.GeoDataFrame({"line": ["1"], "color": ["#00ab39"]},
                             geometry=[LineString([(114.0, 22.5), (114.1, 22.6)])], crs=4326)
    stations = gpd.GeoDataFrame({"name": ["S"], "nameCn": ["站"], "line": ["Line 1"], "lineColor": ["#00A651"]},
                                geometry=[Point(114.05, 22.55)], crs=4326)
    return {"metro_stations": stations, "metro_lines": lines, "districts": district}


def test_deck_layer_order_tooltips_and_colours():
    deck = city_map_deck(_grid_4547(), _small_layers())
    assert [lyr.id for lyr in deck.layers] == ["hillshade", "districts", "metro_lines", "metro_stations"]
    assert deck.map_provider is None and deck.map_style is None
    spec = json.loads(deck.to_json())
    assert spec["layers"][0]["image"].startswith("data:image/png;base64,")  # literal, not "@@="
    d = spec["layers"][1]["data"]["features"][0]["properties"]
    assert d["tooltip"].startswith("<b>A&lt;b&gt;</b>")  # names are escaped
    area = box(114.0, 22.5, 114.1, 22.6)
    area_km2 = gpd.GeoSeries([area], crs=4326).to_crs(32649).area.iloc[0] / 1e6
    assert d["area_km2"] == pytest.approx(area_km2, rel=1e-3)  # UTM zone choice: <0.1 %
    assert spec["layers"][2]["data"]["features"][0]["properties"]["c"] == [0, 171, 57]
    st = spec["layers"][3]
    assert st["pointType"] == "circle" and st["lineWidthUnits"] == "pixels"
    assert st["data"]["features"][0]["properties"]["c"] == [0, 166, 81]


def test_unknown_kind_and_registry_extension(monkeypatch):
    with pytest.raises(ValidationError, match="flood"):
        city_map_deck(None, {"flood": gpd.GeoDataFrame(geometry=[Point(0, 0)], crs=4326)})

    def flood_layer(gdf):
        return [pdk.Layer("GeoJsonLayer", id="flood", data=citymap.feature_collection(
            prepare_vector(gdf), {}))]

    monkeypatch.setitem(LAYER_BUILDERS, "flood", flood_layer)
    layers = _small_layers() | {"flood": gpd.GeoDataFrame(geometry=[box(114, 22.5, 114.01, 22.51)], crs=4326)}
    deck = city_map_deck(None, layers)
    assert [lyr.id for lyr in deck.layers][-1] == "flood"
    with pytest.raises(ValidationError, match="GeoDataFrame"):
        city_map_deck(None, {"districts": pd.DataFrame({"a": [1]})})


# --------------------------------------------------------------------------- real data


def _quick_hillshade(path) -> xr.DataArray:
    """Horn-free numpy hillshade (sun azimuth 315°, altitude 45°) of the SRTM tile, EPSG:4326."""
    with rasterio.open(path) as src:
        z = src.read(1).astype(np.float32)
        t = src.transform
        crs = src.crs.to_string()
    lat = math.radians(22.65)
    dy, dx = abs(t.e) * 110_574.0, abs(t.a) * 111_320.0 * math.cos(lat)
    gy, gx = np.gradient(z, dy, dx)
    slope = np.arctan(np.hypot(gx, gy))
    aspect = np.arctan2(-gx, gy)
    az, alt = math.radians(315), math.radians(45)
    hs = np.sin(alt) * np.cos(slope) + np.cos(alt) * np.sin(slope) * np.cos(az - aspect)
    return xr.DataArray(np.clip(hs, 0, 1).astype(np.float32), dims=("y", "x"),
                        attrs={"crs": crs, "transform": tuple(t)[:6]})


def _water(path) -> xr.DataArray:
    with rasterio.open(path) as src:
        land = src.read(1)
        return xr.DataArray((land == 0).astype(np.uint8), dims=("y", "x"),
                            attrs={"crs": src.crs.to_string(), "transform": tuple(src.transform)[:6]})


@pytest.fixture(scope="module")
def real(shenzhen_dir):
    frames = []
    for code, name in DISTRICTS.items():
        g = gpd.read_file(shenzhen_dir / "boundaries" / f"{code}.geojson")
        g["name"], g["code"] = name, code
        frames.append(g)
    districts = gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=frames[0].crs)
    layers = {
        "districts": districts,
        "coast": gpd.read_file(shenzhen_dir / "coast" / "gshhg_full_coastline_sz.geojson"),
        "metro_lines": gpd.read_file(shenzhen_dir / "metro" / "sz_metro_lines_approx.geojson"),
        "metro_stations": gpd.read_file(shenzhen_dir / "metro" / "sz_metro_stations.geojson"),
        "roads": gpd.read_file(shenzhen_dir / "roads" / "futian_edges.geojson"),
    }
    hs = _quick_hillshade(shenzhen_dir / "terrain" / "srtm1_shenzhen.tif")
    water = _water(shenzhen_dir / "coast" / "landmask_gshhg_full_1s_sz.tif")
    deck = city_map_deck(hs, layers, water=water)
    return layers, deck


@pytest.mark.data
def test_real_deck_content(real):
    layers, deck = real
    assert [lyr.id for lyr in deck.layers] == [
        "hillshade", "districts", "coast", "roads", "metro_lines", "metro_stations"]
    spec = json.loads(deck.to_json())
    by_id = {lyr["id"]: lyr for lyr in spec["layers"]}
    props = [f["properties"] for f in by_id["districts"]["data"]["features"]]
    assert sorted(p["name"] for p in props) == sorted(DISTRICTS.values())
    assert sum(p["area_km2"] for p in props) == pytest.approx(CITY_AREA_KM2, rel=0.03)
    assert all(f"{p['area_km2']:,.1f} km²" in p["tooltip"] for p in props)
    # Metro lines keep their own colours.
    want = sorted(tuple(hex_to_rgb(c)) for c in layers["metro_lines"]["color"])
    got = sorted(tuple(f["properties"]["c"]) for f in by_id["metro_lines"]["data"]["features"])
    assert got == want and len(set(got)) > 10
    assert len(by_id["metro_stations"]["data"]["features"]) == len(layers["metro_stations"])
    # Two-way streets are stored as two directed edges: drawn once.
    n_roads = len(by_id["roads"]["data"]["features"])
    assert len(layers["roads"]) * 0.5 <= n_roads < len(layers["roads"]) * 0.8
    # No coordinate has more than 6 decimals (bounds and data alike).
    text = json.dumps({k: v for k, v in spec.items()} | {"layers": spec["layers"][1:]})
    assert not re.search(r"\d\.\d{7,}", text)
    assert all(len(str(b).split(".")[-1]) <= 6 for b in by_id["hillshade"]["bounds"])
    # View centred on the data.
    v = spec["initialViewState"]
    assert 113.9 < v["longitude"] < 114.4 and 22.4 < v["latitude"] < 22.8 and 8.5 < v["zoom"] < 10.5


@pytest.mark.data
def test_real_page_is_offline_and_bounded(real, tmp_path):
    _, deck = real
    path = write_offline_html(deck, tmp_path / "map.html", title="Shenzhen")
    page = path.read_text(encoding="utf-8")
    assert_offline(page)
    assert not re.search(r"""(?i)\s(?:src|href)\s*=\s*["']?(?:https?:)?//""", page.split("<script", 1)[0])
    # Size: 4.3 MB bundle + ~1.8 MB deck JSON (hillshade PNG ~1.1 MB of it) measured; bounded at:
    assert deck_json_size(deck) < 2_500_000
    assert path.stat().st_size < 7_000_000


# --------------------------------------------------------------------------- browser



@pytest.mark.browser
@pytest.mark.data
def test_real_map_draws_and_blank_control_does_not(real, chromium, tmp_path):
    _, deck = real
    blank = city_map_deck(None, {}, view=deck.initial_view_state)
    out = {}
    for name, d in (("map", deck), ("blank", blank)):
        html = write_offline_html(d, tmp_path / f"{name}.html")
        r = screenshot(html, tmp_path / f"{name}.png", width=1200, height=800, timeout=120)
        assert r.ready, f"{name}: deck.gl never reported all layers loaded"
        assert r.network_requests == [], r.network_requests
        assert r.console_errors == [], r.console_errors
        out[name] = count_non_background(tmp_path / f"{name}.png", background=(255, 255, 255))
    total = 1200 * 800
    # Measured: map ~35 % of pixels, blank 0.
    assert out["map"] >= 0.05 * total, out
    assert out["map"] >= 50 * max(out["blank"], 1), out
    keep = os.environ.get("TWIN_KEEP_SCREENSHOTS")
    if keep:
        import shutil

        shutil.copy(tmp_path / "map.png", keep)
