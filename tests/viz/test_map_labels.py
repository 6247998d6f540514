"""Labels and their font (viz/fonts.py, viz/layers/labels.py, _labels.py) and the raster values a
page carries for its hover read-out (viz/layers/_raster.py value_grid), without a browser."""

from __future__ import annotations

import base64
import io
import os
import warnings

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import LineString, Point, box

from twin.errors import DataMissingError, ValidationError
from viz import fonts
from viz.fonts import MissingFontWarning, covered_chars, label_chars, label_font, subset_font
from viz.layers import build
from viz.layers._labels import label_layer
from viz.layers._raster import BELOW_CODE, NODATA_CODE, decode_value_grid, value_grid
from viz.layers.labels import _line_text, district_items, road_items
from viz.scene import LayerSet, Scene

# District names of the city manifest (facts; twin/cities/shenzhen.toml) and some metro stations.
TEXTS = ["福田\nFutian", "罗湖\nLuohu", "南山\nNanshan", "宝安\nBao'an", "龙岗\nLonggang", "盐田\nYantian",
         "龙华\nLonghua", "坪山\nPingshan", "光明\nGuangming", "深南大道", "1号线", "2-8号线", "6号线支线",
         "车公庙 Chegongmiao", "会展中心 Convention & Exhibition Center", "WL-01", "rg_7"]


@pytest.fixture
def have_font():
    try:
        return fonts.find_cjk_font()
    except DataMissingError as exc:
        if os.environ.get("CI"):  # CI installs fonts-noto-cjk: a missing font there is a failure
            pytest.fail(str(exc))
        pytest.skip(str(exc))


def test_subset_has_a_glyph_for_every_label_character_and_little_else(have_font):
    chars = label_chars(TEXTS)
    assert "\n" not in chars and " " in chars and "福" in chars
    data = subset_font(chars, str(have_font))
    assert data[:4] == b"wOFF"
    cover = covered_chars(data)
    assert set(chars) <= cover, sorted(set(chars) - cover)
    assert "鹏" not in cover and "Q" not in cover  # only what the labels use
    assert len(cover) < len(chars) + 5
    assert len(data) < 40_000, len(data)  # ~70 glyphs; the whole face is ~16 MB
    # The glyphs have outlines (not empty .notdef boxes): each CJK glyph draws something.
    from fontTools.pens.boundsPen import BoundsPen
    from fontTools.ttLib import TTFont

    f = TTFont(io.BytesIO(data))
    gs, cmap = f.getGlyphSet(), f.getBestCmap()
    for ch in "福田罗湖深南大道":
        pen = BoundsPen(gs)
        gs[cmap[ord(ch)]].draw(pen)
        x0, y0, x1, y1 = pen.bounds
        assert x1 - x0 > 300 and y1 - y0 > 300  # of 1000 units per em


def test_scene_embeds_one_font_for_all_its_labels(have_font):
    a = label_layer("a", [(114.0, 22.5, "福田\nFutian", "Futian")])
    b = label_layer("b", [(114.1, 22.6, "罗湖", "Luohu"), (114.2, 22.6, "", "skipped")], style="road")
    js = Scene(sets=[LayerSet(layers=[a]), LayerSet(layers=[b])]).to_json()
    (font,) = js["fonts"]
    chars = label_chars(["福田\nFutian", "罗湖"])
    text_layers = [j for j in js["layers"] if j["@@type"] == "TextLayer"]
    assert all(j["characterSet"] == chars and j["fontFamily"] == font["family"] for j in text_layers)
    assert font["family"].startswith(fonts.LABEL_FAMILY + "-")
    data = base64.b64decode(font["url"].split(",", 1)[1])
    assert set(chars) <= covered_chars(data)
    assert len(text_layers[1]["data"]) == 1  # a label without text is left out
    assert a["characterSet"] == ""  # the builder's dict is not changed


def test_without_a_cjk_font_labels_fall_back_to_latin_with_a_warning(monkeypatch, tmp_path):
    monkeypatch.setattr(fonts, "SEARCH", (str(tmp_path / "none.ttc"),))
    monkeypatch.delenv(fonts.ENV_VAR, raising=False)
    with pytest.raises(DataMissingError, match="fonts-noto-cjk"):
        label_font("福")
    layer = label_layer("a", [(114.0, 22.5, "福田\nFutian", "Futian"), (114.1, 22.5, "深南大道", "")])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        js = Scene(sets=[LayerSet(layers=[layer])]).to_json()
    assert any(issubclass(w.category, MissingFontWarning) and "fonts-noto-cjk" in str(w.message) for w in caught)
    assert "fonts" not in js
    (tl,) = js["layers"]
    assert [r["t"] for r in tl["data"]] == ["Futian"] and tl["fontFamily"] == "sans-serif"
    assert set(tl["characterSet"]) == set("Futian")
    monkeypatch.setenv(fonts.ENV_VAR, str(tmp_path / "missing.otf"))
    with pytest.raises(DataMissingError, match=fonts.ENV_VAR):
        fonts.find_cjk_font()


def test_district_labels_sit_inside_with_chinese_over_pinyin():
    # An L-shaped district: its centroid lies outside it, the label must not.
    ell = box(0, 0, 10, 2).union(box(0, 0, 2, 10))
    from shapely.affinity import affine_transform

    geom = affine_transform(ell, [0.01, 0, 0, 0.01, 114.0, 22.5])
    d = gpd.GeoDataFrame({"name": ["Futian"], "name_zh": ["福田"]}, geometry=[geom], crs=4326)
    ((lon, lat, text, latin),) = district_items(d)
    assert text == "福田\nFutian" and latin == "Futian"
    assert geom.contains(Point(lon, lat)) and not geom.contains(geom.centroid)


def test_one_label_per_named_main_road():
    def seg(x0, x1, y):
        return LineString([(114.0 + x0 * 0.01, 22.5 + y * 0.01), (114.0 + x1 * 0.01, 22.5 + y * 0.01)])

    roads = gpd.GeoDataFrame({
        "type": ["highway.primary", "highway.primary", "highway.primary", "highway.trunk", "highway.primary_link",
                 "highway.residential", "highway.primary", "highway.motorway"],
        "name": ["深南大道", "深南大道", "深南大道", "滨河大道", "深南大道辅路", "福华路", "?", None]},
        geometry=[seg(0, 1, 0), seg(1, 0, 0), seg(1, 3, 0), seg(0, 2, 1), seg(0, 1, 2), seg(0, 1, 3),
                  seg(0, 1, 4), seg(0, 1, 5)], crs=4326)
    items = road_items(roads)
    assert sorted(t for _, _, t, _ in items) == ["深南大道", "滨河大道"]
    lon, lat = next((x, y) for x, y, t, _ in items if t == "深南大道")
    assert lon == pytest.approx(114.015) and lat == pytest.approx(22.5)  # middle of the merged 3-unit road


@pytest.mark.parametrize(("line", "text"), [
    pytest.param("1", ("1号线", "Line 1"), id="number"),
    pytest.param("Line 11", ("11号线", "Line 11"), id="Line n"),
    pytest.param("2-8", ("2-8号线", "Line 2-8"), id="joint"),
    pytest.param("6支", ("6号线支线", "Line 6 branch"), id="branch"),
])
def test_metro_line_label_text(line, text):
    assert _line_text(line) == text


def test_label_kinds_and_sensor_ids_make_text_layers():
    d = gpd.GeoDataFrame({"name": ["Futian"], "name_zh": ["福田"]}, geometry=[box(114, 22.5, 114.1, 22.6)], crs=4326)
    lines = gpd.GeoDataFrame({"line": ["1"], "color": ["#00ab39"]},
                             geometry=[LineString([(114.0, 22.5), (114.1, 22.6)])], crs=4326)
    ls = build("labels", d, metro_lines=lines)
    assert [j["id"] for j in ls.layers] == ["labels_districts", "labels_metro"] and ls.label == "Place names"
    assert ls.layers[1]["data"][0]["t"] == "1号线" and ls.layers[1]["data"][0]["c"][:3] == [0, 136, 45]
    st = gpd.GeoDataFrame({"name": ["Futian", "Futian"], "nameCn": ["福田", "福田"]},
                          geometry=[Point(114.05, 22.54), Point(114.05, 22.54)], crs=4326)
    sl = build("station_labels", st)
    assert [r["t"] for r in sl.layers[0]["data"]] == ["福田 Futian"] and sl.visible is False
    from datetime import UTC, datetime

    from twin.sensors import Sensor

    sensors = build("sensors", [Sensor(id="WL-01", kind="water_level", lon=114.05, lat=22.54, unit="m")],
                    now=datetime(2024, 1, 1, tzinfo=UTC))
    ids = [j for j in sensors.layers if j["@@type"] == "TextLayer"]
    assert len(ids) == 1 and ids[0]["data"][0]["t"] == "WL-01"


# --------------------------------------------------------------------------- hover values


def test_value_grid_round_trips_within_half_a_step():
    rng = np.random.default_rng(3)
    v = rng.uniform(0, 4, (50, 70))
    v[:5] = np.nan
    v[10, :] = 0.01
    g = value_grid(v, units="m", name="Water depth", step=0.01, below=0.05, below_text="dry")
    assert (g["w"], g["h"]) == (70, 50) and g["units"] == "m" and g["belowText"] == "dry"
    back = decode_value_grid(g)
    keep = np.isfinite(v) & (v >= 0.05)
    assert np.abs(back[keep] - v[keep]).max() <= 0.005 + 1e-9
    assert np.isnan(back[:5]).all() and np.isneginf(back[10]).all()
    codes = np.frombuffer(__import__("zlib").decompress(base64.b64decode(g["data"])), "<u2")
    assert codes.max() == NODATA_CODE and BELOW_CODE in codes
    # Default step: the finite range over 65533 levels; any range fits.
    wide = value_grid(np.array([[-1e6, 0.0, 3e6]]))
    assert np.allclose(decode_value_grid(wide), [[-1e6, 0.0, 3e6]], atol=wide["scale"] / 2 + 1e-6)
    with pytest.raises(ValidationError, match="2-D"):
        value_grid(np.zeros(3))


def test_every_raster_kind_carries_values_on_its_bitmap_grid():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from test_map_features import _run

    from viz.layers._raster import MercatorWarp

    ds = _run()
    warp = MercatorWarp.for_grid(ds["max_depth"].assign_attrs(ds.attrs))
    sets = [build("flood_depth", ds, warp=warp), build("flood_max_depth", ds, warp=warp),
            build("flood_arrival", ds, warp=warp),
            build("diff", ds["max_depth"].assign_attrs(ds.attrs), (ds["max_depth"] + 0.3).assign_attrs(ds.attrs))]
    for s in sets:
        tv = s.layers[0]["twinValues"]
        assert (tv["h"], tv["w"]) == warp.shape and tv["units"] in ("m", "h")
    frames = sets[0].frames["flood_depth"]
    assert all("twinValues" in f for f in frames[1:])
    last = decode_value_grid(frames[-1]["twinValues"])
    want = warp(ds["depth"].values[-1])
    ok = np.isfinite(want) & (want >= 0.05)
    assert ok.sum() > 100 and np.abs(last[ok] - want[ok]).max() <= 0.005 + 1e-6
    diff = decode_value_grid(sets[3].layers[0]["twinValues"])
    assert np.nanmax(np.abs(diff[np.isfinite(diff)] - 0.3)) <= 0.005 + 1e-6
