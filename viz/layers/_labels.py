"""Map labels: one helper that makes a deck.gl ``TextLayer`` drawn with the page's CJK label font.

Every label layer of a scene uses the family :data:`viz.fonts.LABEL_FAMILY`;
:meth:`viz.scene.Scene.to_json` gathers the characters of all of them,
embeds the font cut to exactly those characters (``fonts`` of the scene
JSON) and sets every label layer's ``characterSet`` to them, so the page
builds one glyph atlas (see :mod:`viz.fonts`).  Each label keeps a Latin
alternative (``latin``: pinyin, numbers, ids) used when no CJK font is
installed.
"""

from __future__ import annotations

import html
import math

from viz.fonts import LABEL_FAMILY

#: Label styles: size (px), text colour (None: per row), background box colour, font weight.
STYLES = {
    "district": (15, (25, 35, 90, 255), (255, 255, 255, 170), "bold"),
    "road": (11, (70, 50, 20, 255), (255, 250, 235, 215), "normal"),
    "metro_line": (12, None, (255, 255, 255, 225), "bold"),
    "station": (11, (35, 35, 35, 255), (255, 255, 255, 215), "normal"),
    "sensor": (11, (20, 20, 20, 255), (255, 255, 255, 215), "normal"),
}


#: Decluttering priorities (``twinDeclutter``, higher placed first; see :func:`label_layer`): place
#: names frame the map, then metro lines, incidents (what command staff act on), stations and
#: hospitals, shelters and metro stations, and street names last.
PRIORITY = {"district": 100.0, "metro_line": 60.0, "incident": 50.0, "fire_station": 40.0, "hospital": 40.0,
            "shelter": 35.0, "station": 30.0, "road": 20.0}


def label_rows(items) -> list[dict]:
    """Label data rows from ``(lon, lat, text, latin[, colour[, tooltip]])`` tuples (or dicts with those keys).

    Rows with no text or no finite position are left out.
    """
    rows = []
    for it in items:
        if isinstance(it, dict):
            lon, lat, text = it.get("lon"), it.get("lat"), it.get("text")
            latin, colour, tip = it.get("latin", ""), it.get("colour"), it.get("tooltip")
        else:
            lon, lat, text, latin, *rest = it
            colour = rest[0] if rest else None
            tip = rest[1] if len(rest) > 1 else None
        if not text or lon is None or lat is None or not (math.isfinite(lon) and math.isfinite(lat)):
            continue
        row = {"p": [round(float(lon), 6), round(float(lat), 6)], "t": str(text), "l": str(latin or "")}
        if colour is not None:
            row["c"] = [int(v) for v in colour][:4] + [255] * (4 - len(colour))
        if tip:
            row["tooltip"] = tip
        rows.append(row)
    return rows


def label_layer(layer_id: str, items, *, style: str = "district", size: float | None = None,
                pickable: bool = False, offset: tuple[float, float] = (0.0, 0.0),
                min_zoom: float | None = None, declutter: float | None = None) -> dict:
    """deck.gl ``TextLayer`` JSON of labels in the page's label font.

    Parameters
    ----------
    layer_id : str
        The layer's id.
    items : iterable
        ``(lon, lat, text, latin[, colour[, tooltip]])`` or dicts (see :func:`label_rows`);
        ``latin`` is what is drawn without a CJK font ("" drops the label then).
    style : str
        A key of :data:`STYLES` (size, colour, background box, weight).
    size : float or None
        Text height in pixels (default: the style's).
    pickable : bool
        Hover shows a row's ``tooltip`` (escaped HTML) when it has one.
    offset : (dx, dy)
        Pixel offset of the text from its point (e.g. beside a dot).
    min_zoom : float or None
        Drawn only from this zoom on (``twinMinZoom``: street names would crowd a city view).
    declutter : float or None
        Thin the labels with zoom (``twinDeclutter``, honoured by twinmap.js): a label whose box
        would overlap one of a layer of higher priority (a :data:`PRIORITY` value), or an earlier
        row of its own layer, is left out until the map is zoomed in far enough to part them.
        Put the rows most worth reading first. None: every label is drawn.
    """
    px, colour, background, weight = STYLES[style]
    rows = label_rows(items)
    layer = {
        "@@type": "TextLayer", "id": layer_id, "data": rows,
        "getPosition": "@@=p", "getText": "@@=t",
        "getColor": "@@=c" if colour is None or any("c" in r for r in rows) else list(colour),
        "getSize": float(size or px), "sizeUnits": "pixels",
        "fontFamily": LABEL_FAMILY, "fontWeight": weight, "characterSet": "",
        # A plain (not SDF) atlas at 32 px on a pale box: SDF glyphs with an outline came out
        # washed-out and thin at the 10-12 px of street and station names (looked at in Chromium).
        "fontSettings": {"sdf": False, "fontSize": 32, "buffer": 4},
        "background": True, "getBackgroundColor": list(background), "backgroundPadding": [3, 1, 3, 1],
        "getTextAnchor": "middle" if not offset[0] else "start", "getAlignmentBaseline": "center",
        "getPixelOffset": [float(offset[0]), float(offset[1])],
        "pickable": bool(pickable),
    }
    if min_zoom is not None:
        layer["twinMinZoom"] = float(min_zoom)
    if declutter is not None:
        layer["twinDeclutter"] = float(declutter)
    if colour is not None and layer["getColor"] == "@@=c":
        for r in rows:
            r.setdefault("c", list(colour))
    return layer


def escape(text) -> str:
    """HTML-escaped text for a tooltip."""
    return html.escape(str(text))
