"""What a map page shows, checked in real headless Chromium: the opening frame, labels in the CJK
label font, the value under the cursor, the basemap's edge at the sea, the scale bar, legends.

The flood run is synthetic (EPSG:4547 over Futian): depth in 6 × 6-cell blocks of distinct values,
wet inside an ellipse that grows until frame 4 and then shrinks, sea along the south edge.
"""

from __future__ import annotations

import math
import re

import geopandas as gpd
import numpy as np
import pytest
import xarray as xr
from PIL import Image
from pyproj import Transformer
from shapely.geometry import box

from viz.browser import TWINMAP_READY_JS, BrowserSession
from viz.flood_map import write_flood_map
from viz.layers import build
from viz.layers._labels import label_layer
from viz.layers.flood_depth import DEPTH_RAMP, DEPTH_STEP_M
from viz.page import write_page
from viz.scene import LayerSet, Scene

X0, Y0, RES = 494_000.0, 2_506_000.0, 30.0
NY, NX = 60, 90
SEA_ROWS = 8
W, H = 1000, 700
RADII = [0.0, 0.3, 0.6, 0.9, 1.25, 0.95, 0.7, 0.5, 0.4]  # wet ellipse per frame: largest at frame 4
TO_LL = Transformer.from_crs("EPSG:4547", "EPSG:4326", always_xy=True)


def _blocks() -> np.ndarray:
    """Depth per 6 × 6 block: 0.1 … 3.8 m, neighbours distinct."""
    bi, bj = np.mgrid[0:NY, 0:NX] // 6
    return (0.1 + 0.37 * ((bi * 7 + bj * 3) % 11)).astype(np.float32)


def _run() -> xr.Dataset:
    y, x = np.mgrid[0:NY, 0:NX]
    r = np.sqrt(((x - NX / 2) / (NX / 2.2)) ** 2 + ((y - NY / 2) / (NY / 2.2)) ** 2)
    land = y < NY - SEA_ROWS
    depth = np.stack([np.where((r < rad) & land, _blocks(), 0.0) for rad in RADII]).astype(np.float32)
    arrival = np.where((depth >= 0.15).any(axis=0), 600.0 * np.argmax(depth >= 0.15, axis=0), np.nan)
    elevation = np.where(land, 10 + 20 * r + 4 * np.sin(x / 5.0), 0.0).astype(np.float32)
    return xr.Dataset(
        {"depth": (("time", "y", "x"), depth), "max_depth": (("y", "x"), depth.max(axis=0)),
         "arrival_time": (("y", "x"), arrival.astype(np.float32)),
         "elevation": (("y", "x"), elevation), "sea": (("y", "x"), (~land).astype(np.uint8))},
        coords={"time": 600.0 * np.arange(len(RADII)), "y": Y0 - RES * (np.arange(NY) + 0.5),
                "x": X0 + RES * (np.arange(NX) + 0.5)},
        attrs={"crs": "EPSG:4547", "transform": (RES, 0.0, X0, 0.0, -RES, Y0), "title": "receding pond"})


def _cell_lonlat(row: int, col: int) -> tuple[float, float]:
    return TO_LL.transform(X0 + (col + 0.5) * RES, Y0 - (row + 0.5) * RES)


@pytest.fixture(scope="module")
def flood_page(tmp_path_factory):
    d = tmp_path_factory.mktemp("map_features")
    ds = _run()
    ds.to_netcdf(d / "run.nc")
    info = write_flood_map(d / "run.nc", d / "flood.html")
    return {"path": info["path"], "nc": d / "run.nc", "ds": ds}


def _screen(b, lon: float, lat: float, view: str = "map") -> list[float]:
    return b.evaluate(f"{view}.deck.getViewports()[0].project([{lon}, {lat}])")


def _hover(b, x: float, y: float) -> str:
    """Move the pointer to (x, y) as a user would; the deck.gl tooltip's text ('' when none)."""
    b.cdp("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x + 3, "y": y + 3})
    b.cdp("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y})
    b.wait_for("(() => { const t = document.querySelector('.deck-tooltip');"
               " return !!t && t.style.display !== 'none' && t.innerText.length > 0; })()", timeout=15)
    b.pump(0.3)
    return b.evaluate("document.querySelector('.deck-tooltip').innerText")


def _rgb(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=int)


# --------------------------------------------------------------------------- opening frame


@pytest.mark.browser
def test_flood_page_opens_on_the_largest_flooded_frame(flood_page, chromium, tmp_path):
    ds = flood_page["ds"]
    wet = (ds["depth"].values >= float(DEPTH_RAMP.values[0])).sum(axis=(1, 2))
    want = int(np.argmax(wet))
    assert want == 4 and wet[0] == 0  # the data: dry at first, largest in the middle, receding after
    with BrowserSession(width=W, height=H) as b:
        b.goto(flood_page["path"], ready_js=TWINMAP_READY_JS, timeout=90)
        assert b.evaluate("map.frame") == want
        label = b.evaluate("document.querySelector('.tm-label').textContent")
        assert label == "+40 min — largest flooded area"
        assert b.evaluate("document.querySelector('.tm-slider').value") == str(want)
        assert b.evaluate("map.frameCount") == len(RADII)  # the slider keeps every frame
        b.evaluate("map.setFrame(0)")
        assert b.evaluate("document.querySelector('.tm-label').textContent") == "+0 min"
        assert b.console_errors == [] and b.network_requests == []


# --------------------------------------------------------------------------- values under the cursor


@pytest.mark.browser
def test_hover_shows_the_depth_of_the_cell_under_the_pointer(flood_page, chromium):
    nc = xr.open_dataset(flood_page["nc"])
    blocks = _blocks()
    with BrowserSession(width=W, height=H) as b:
        b.goto(flood_page["path"], ready_js=TWINMAP_READY_JS, timeout=90)
        t = b.evaluate("map.frameTime()")
        depth = nc["depth"].sel(time=t).values
        # Cells in the middle of their 6 × 6 block (the pointer's pixel may map to a neighbour cell).
        wet_cells = [(r, c) for r in range(2, NY - SEA_ROWS, 6) for c in range(2, NX, 6) if depth[r, c] > 0.5]
        assert len(wet_cells) > 10
        rng = np.random.default_rng(7)
        picked = [wet_cells[i] for i in rng.choice(len(wet_cells), 4, replace=False)]
        picked.append(max(wet_cells, key=lambda rc: depth[rc]))
        for r, c in picked:
            x, y = _screen(b, *_cell_lonlat(r, c))
            text = _hover(b, x, y)
            m = re.search(r"Water depth: ([0-9.]+) m", text)
            assert m, text
            # Read-out: 1 cm steps shown with 2 decimals, i.e. within 5 mm (+ float rounding).
            assert abs(float(m.group(1)) - float(depth[r, c])) <= DEPTH_STEP_M / 2 + 1e-6, (r, c, text)
            assert depth[r, c] == blocks[r, c]
        # With the maximum depth shown too, both values are listed, the top layer first.
        b.evaluate("map.setLayerVisible('flood_max_depth', true)")
        r, c = picked[0]
        x, y = _screen(b, *_cell_lonlat(r, c))
        text = _hover(b, x, y)
        mx = float(nc["max_depth"].values[r, c])
        assert re.search(rf"Water depth: {depth[r, c]:.2f} m\s+Maximum depth: {mx:.2f} m", text), text
        # At +0 min the same cell is dry, and the read-out says so.
        b.evaluate("map.setFrame(0)")
        b.cdp("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x + 40, "y": y})
        text = _hover(b, x, y)
        assert re.search(rf"Water depth: dry \(< 0.05 m\)\s+Maximum depth: {mx:.2f} m", text), text
        assert b.console_errors == []


# --------------------------------------------------------------------------- basemap edge, legend, scale


@pytest.mark.browser
def test_hillshade_is_transparent_over_the_sea(flood_page, chromium, tmp_path):
    with BrowserSession(width=W, height=H) as b:
        b.goto(flood_page["path"], ready_js=TWINMAP_READY_JS, timeout=90)
        for lid in ("flood_depth", "flood_arrival", "flood_max_depth"):
            b.evaluate(f"map.setLayerVisible('{lid}', false)")
        b.screenshot(tmp_path / "base.png")
        sea = [_screen(b, *_cell_lonlat(NY - 3, c)) for c in range(10, NX - 10, 10)]
        land = [_screen(b, *_cell_lonlat(NY - SEA_ROWS - 4, c)) for c in range(10, NX - 10, 10)]
    img = _rgb(tmp_path / "base.png")
    sea_px = np.array([img[int(y), int(x)] for x, y in sea])
    land_px = np.array([img[int(y), int(x)] for x, y in land])
    assert (sea_px == 255).all(), sea_px          # the page's white shows through: nothing drawn
    assert (land_px.max(axis=1) < 245).all(), land_px  # relief drawn on land


@pytest.mark.browser
def test_scale_bar_length_matches_the_ground_distance_and_follows_the_zoom(flood_page, chromium):
    def haversine(lon1, lat1, lon2, lat2):
        p1, p2 = math.radians(lat1), math.radians(lat2)
        dp, dl = p2 - p1, math.radians(lon2 - lon1)
        a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
        return 2 * 6_371_008.8 * math.asin(math.sqrt(a))

    seen = []
    with BrowserSession(width=W, height=H) as b:
        b.goto(flood_page["path"], ready_js=TWINMAP_READY_JS, timeout=90)
        for dz in (0.0, 1.0, 2.7):
            b.evaluate(f"map.setView(Object.assign({{}}, map.viewState, {{zoom: map.viewState.zoom + {dz}}}))")
            b.evaluate("map._drawn()")
            bar = b.evaluate("(() => { const s = document.querySelector('.tm-scale');"
                             " const r = s.querySelector('.tm-scale-bar').getBoundingClientRect();"
                             " return {metres: +s.dataset.metres, width: r.width,"
                             " text: s.querySelector('.tm-scale-text').textContent,"
                             " shown: r.width > 0 && getComputedStyle(s).display !== 'none'}; })()")
            assert bar["shown"]
            # The bar's width on the screen, unprojected at the view's centre, is the stated distance.
            a, c = b.evaluate(f"(() => {{ const v = map.deck.getViewports()[0];"
                              f" return [v.unproject([{W / 2}, {H / 2}]),"
                              f" v.unproject([{W / 2} + {bar['width']}, {H / 2}])]; }})()")
            ground = haversine(a[0], a[1], c[0], c[1])
            assert ground == pytest.approx(bar["metres"], rel=0.02), (bar, ground)
            m = bar["metres"]
            assert bar["text"] == (f"{m / 1000:g} km" if m >= 1000 else f"{m:g} m")
            assert str(m / 10 ** math.floor(math.log10(m)))[0] in "125" and 30 < bar["width"] <= 110
            seen.append(bar)
    assert seen[1]["metres"] < seen[0]["metres"] and seen[2]["metres"] < seen[1]["metres"]


@pytest.mark.browser
def test_flood_legend_stays_when_only_the_maximum_depth_is_shown(flood_page, chromium):
    with BrowserSession(width=W, height=H) as b:
        b.goto(flood_page["path"], ready_js=TWINMAP_READY_JS, timeout=90)
        items = ("[...document.querySelectorAll('.tm-legend-item')]"
                 ".filter(e => e.offsetParent !== null).map(e => e.querySelector('h4').textContent)")
        assert any("Water depth" in t for t in b.evaluate(items))
        b.evaluate("map.setLayerVisible('flood_depth', false)")
        assert not any("depth" in t for t in b.evaluate(items))
        b.evaluate("map.setLayerVisible('flood_max_depth', true)")
        shown = b.evaluate(items)
        assert any("Maximum depth" in t and "(m)" in t for t in shown), shown
        assert b.evaluate("getComputedStyle(document.querySelector('.tm-legend')).display") != "none"


# --------------------------------------------------------------------------- labels


def _label_scene() -> Scene:
    """Two districts labelled (Chinese over pinyin), and three big single glyphs to look at."""
    districts = gpd.GeoDataFrame({"name": ["Futian", "Luohu"], "name_zh": ["福田", "罗湖"]},
                                 geometry=[box(114.00, 22.50, 114.08, 22.58), box(114.08, 22.50, 114.16, 22.58)],
                                 crs=4326)
    glyphs = label_layer("glyphs", [(114.03, 22.61, "福", "F"), (114.08, 22.61, "湖", "H"),
                                    (114.13, 22.61, "\U000f0001", "")], size=56)
    scene = Scene(title="labels", view={"longitude": 114.08, "latitude": 22.56, "zoom": 11.2})
    scene.add(build("basemap", None, districts=districts))
    scene.add(build("labels", districts))
    scene.add(LayerSet(layers=[glyphs], label="Glyphs"))
    return scene


@pytest.mark.browser
def test_labels_draw_in_the_cjk_font_and_toggle(chromium, tmp_path):
    js = _label_scene().to_json()
    assert len(js["fonts"]) == 1 and js["fonts"][0]["url"].startswith("data:font/woff;base64,")
    family = js["fonts"][0]["family"]
    page = write_page(js, tmp_path / "labels.html")
    with BrowserSession(width=W, height=H) as b:
        b.goto(page, ready_js=TWINMAP_READY_JS, timeout=90)
        assert b.evaluate(f"document.fonts.check('56px \"{family}\"', '福湖福田罗湖')")
        assert b.evaluate(f"[...document.fonts].some(f => f.family.replace(/\"/g, '') === '{family}'"
                          " && f.status === 'loaded')")
        b.screenshot(tmp_path / "on.png")
        glyph_xy = [_screen(b, lon, 22.61) for lon in (114.03, 114.08, 114.13)]
        label_xy = [_screen(b, 114.04, 22.54), _screen(b, 114.12, 22.54)]
        panel = b.evaluate("(() => { const r = document.querySelector('.tm-layers').getBoundingClientRect();"
                           " return [r.left, r.top, r.right, r.bottom]; })()")
        b.evaluate("document.querySelector('input[data-layers^=\"labels\"]').click()")
        b.evaluate("map._drawn()")
        b.screenshot(tmp_path / "off.png")
        assert b.console_errors == [] and b.network_requests == []
    on, off = _rgb(tmp_path / "on.png"), _rgb(tmp_path / "off.png")
    changed = np.abs(on - off).max(axis=-1) > 40
    changed[int(panel[1]):int(panel[3]) + 1, int(panel[0]):int(panel[2]) + 1] = False  # its checkbox
    assert changed.sum() > 400, changed.sum()  # the district names went away
    # ... and only there: every changed pixel lies within 90 px of a district's label point.
    near = np.zeros_like(changed)
    for x, y in label_xy:
        near[max(0, int(y) - 60):int(y) + 60, max(0, int(x) - 90):int(x) + 90] = True
    assert changed[~near].sum() == 0

    def crop(x, y):
        ink = on[int(y) - 34:int(y) + 34, int(x) - 34:int(x) + 34].min(axis=-1) < 120
        return ink

    fu, hu, nonsense = (crop(x, y) for x, y in glyph_xy)
    # Real glyphs: inked, and different characters look different; a character no font has
    # (a private-use code point) draws a box or nothing, unlike either.
    assert fu.sum() > 300 and hu.sum() > 300, (fu.sum(), hu.sum())
    assert (fu ^ hu).sum() > 0.4 * min(fu.sum(), hu.sum())
    for g in (fu, hu):
        assert (g ^ nonsense).sum() > 0.4 * g.sum()


# --------------------------------------------------------------------------- the city map page


@pytest.mark.data
@pytest.mark.browser
def test_city_map_page_has_title_layer_panel_legends_labels_and_scale(shenzhen_dir, chromium, tmp_path):
    from viz.citypage import write_city_map
    from viz.offline import assert_offline

    info = write_city_map("shenzhen", tmp_path / "city.html")
    html = (tmp_path / "city.html").read_text(encoding="utf-8")
    assert_offline(html)
    assert info["bytes"] < 7_000_000  # measured 5.3 MB: the 4.3 MB bundle, hillshade, vectors, font
    assert {"hillshade", "districts", "metro_lines", "labels_districts", "labels_roads"} <= set(info["layers"])
    with BrowserSession(width=1200, height=800) as b:
        b.goto(tmp_path / "city.html", ready_js=TWINMAP_READY_JS, timeout=120)
        assert "city map" in b.evaluate("document.querySelector('.tm-title').textContent")
        toggles = b.evaluate("[...document.querySelectorAll('.tm-layers label')].map(l => l.textContent.trim())")
        assert toggles == ["Basemap", "Roads", "Metro", "Place names", "Station names"]
        legends = b.evaluate("[...document.querySelectorAll('.tm-legend-item')].filter(e => e.offsetParent)"
                             ".map(e => e.textContent)")
        assert any(t.startswith("Metro lines") and "Line 1" in t for t in legends), legends
        assert any(t.startswith("Basemap") and "District boundary" in t for t in legends), legends
        assert b.evaluate("+document.querySelector('.tm-scale').dataset.metres") > 0
        family = b.evaluate("map.scene.fonts[0].family")
        assert b.evaluate(f"document.fonts.check('15px \"{family}\"', '福田龙岗深南大道')")
        # District names (Chinese and pinyin) are drawn; main-road names wait for a street zoom.
        names = b.evaluate("map.deck.props.layers.find(l => l.id === 'labels_districts').props.data.map(d => d.t)")
        assert "福田\nFutian" in names and len(names) == 9
        shown = "map.deck.props.layers.find(l => l.id === 'labels_roads').props.visible"
        assert b.evaluate(shown) is False
        b.evaluate("map.setView(Object.assign({}, map.viewState, {longitude: 114.055, latitude: 22.54, zoom: 14}))")
        assert b.evaluate(shown) is True
        assert b.console_errors == [] and b.network_requests == []
