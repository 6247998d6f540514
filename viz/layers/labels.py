"""Kinds ``labels`` (district, main-road and metro-line names) and ``station_labels`` (metro stations).

Labels are deck.gl ``TextLayer`` s in the page's CJK label font
(:mod:`viz.layers._labels`, :mod:`viz.fonts`):

* districts: Chinese name over pinyin (``name_zh`` / ``name`` of
  :meth:`twin.city.City.districts`), at the pole of inaccessibility of the
  district's largest part, so the label sits well inside it;
* main roads (only when the road layer is drawn): roads of class motorway,
  trunk or primary (links left out) that have a name, one label per name, at
  the middle of the longest stretch that name forms when its edges are merged;
* metro lines: "1号线" in the line's colour at the middle of the line;
* stations (own kind, off at first: 300+ names crowd a city view): "福田
  Futian" beside the dot; their tooltips name them anyway.

Road names are drawn from zoom :data:`ROAD_MIN_ZOOM` and station names
from :data:`STATION_MIN_ZOOM` on (``twinMinZoom``, honoured by twinmap.js). All of them thin
with zoom (``twinDeclutter``, :data:`viz.layers._labels.PRIORITY`): a name that would overlap a
more important one is left out until the map is zoomed in far enough.
"""

from __future__ import annotations

import re

import geopandas as gpd
import numpy as np
import shapely
from shapely.ops import polylabel

from viz.layers import register
from viz.layers._labels import PRIORITY, escape, label_layer
from viz.scene import LayerSet

#: Zooms from which road and station names are drawn (a whole-city view is zoom ~9.5; 13 is ~5 km across).
ROAD_MIN_ZOOM = 13.0
STATION_MIN_ZOOM = 12.0

#: Road classes whose names are drawn (OSM ``highway`` values, also as ``highway.primary``).
MAIN_ROADS = ("motorway", "trunk", "primary")


def _col(gdf, names):
    for n in names:
        if n in gdf.columns:
            return gdf[n]
    return None


def _clean(v) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return ""
    s = str(v).strip()
    return "" if not s or set(s) <= {"?", "？"} or s.lower() in ("nan", "none") else s


def district_items(districts: gpd.GeoDataFrame) -> list[tuple]:
    """``(lon, lat, "福田\\nFutian", "Futian")`` per district."""
    g = districts.to_crs(4326)
    zh = _col(g, ("name_zh", "nameCn"))
    en = _col(g, ("name", "name_en"))
    out = []
    for i, geom in enumerate(g.geometry.values):
        if geom is None or geom.is_empty:
            continue
        part = max(getattr(geom, "geoms", [geom]), key=lambda p: p.area)
        p = polylabel(part, tolerance=0.002)
        z = _clean(zh.iloc[i]) if zh is not None else ""
        e = _clean(en.iloc[i]) if en is not None else ""
        text = "\n".join(t for t in (z, e) if t) if z != e else z
        if text:
            out.append((p.x, p.y, text, e))
    return out


def _is_main(cls: str) -> bool:
    c = str(cls).lower().split(".")[-1]
    return c in MAIN_ROADS


def road_items(roads: gpd.GeoDataFrame) -> list[tuple]:
    """One ``(lon, lat, name, "")`` per named main road (see the module docstring)."""
    g = roads.to_crs(4326)
    cls = _col(g, ("type", "highway", "fclass"))
    names = _col(g, ("name", "name_zh"))
    if cls is None or names is None:
        return []
    keep = np.array([_is_main(c) for c in cls]) & np.array([bool(_clean(n)) for n in names])
    g = g[keep]
    out = []
    for name, grp in g.groupby(g[names.name].map(_clean)):
        lines = [geom for geom in grp.geometry.values if geom is not None and not geom.is_empty]
        merged = shapely.line_merge(shapely.unary_union(lines)) if lines else None
        if merged is None or merged.is_empty:
            continue
        longest = max(getattr(merged, "geoms", [merged]), key=lambda p: p.length)
        p = longest.interpolate(0.5, normalized=True)
        out.append((p.x, p.y, name, ""))
    return out


def _line_text(line: str) -> tuple[str, str]:
    m = re.fullmatch(r"\s*(?:Line\s*)?(\d+(?:-\d+)?)(支)?\s*", str(line), re.I)
    if not m:
        return str(line), str(line) if str(line).isascii() else ""
    n, branch = m.group(1), m.group(2)
    return (f"{n}号线支线", f"Line {n} branch") if branch else (f"{n}号线", f"Line {n}")


def metro_line_items(lines: gpd.GeoDataFrame) -> list[tuple]:
    """``(lon, lat, "1号线", "Line 1", colour, tooltip)`` at the middle of each metro line."""
    from viz.citymap import hex_to_rgb

    g = lines.to_crs(4326)
    line = _col(g, ("line", "name", "ref"))
    colours = _col(g, ("lineColor", "color", "colour"))
    out = []
    for i, geom in enumerate(g.geometry.values):
        if geom is None or geom.is_empty or line is None:
            continue
        text, latin = _line_text(line.iloc[i])
        part = max(getattr(geom, "geoms", [geom]), key=lambda p: p.length)
        p = part.interpolate(0.5, normalized=True)
        rgb = hex_to_rgb(colours.iloc[i]) if colours is not None else [200, 30, 30]
        out.append((p.x, p.y, text, latin, [int(c * 0.8) for c in rgb] + [255],
                    f"Metro {escape(latin or text)}"))
    return out


@register("labels")
def labels(districts: gpd.GeoDataFrame | None = None, *, roads: gpd.GeoDataFrame | None = None,
           metro_lines: gpd.GeoDataFrame | None = None, label: str = "Place names",
           layer_id: str = "labels") -> LayerSet:
    """District names (Chinese and pinyin), main-road names and metro line numbers; any may be None."""
    layers = []
    if districts is not None and len(districts):
        layers.append(label_layer(f"{layer_id}_districts", district_items(districts), style="district",
                                  declutter=PRIORITY["district"]))
    if roads is not None and len(roads):
        items = road_items(roads)
        if items:
            layers.append(label_layer(f"{layer_id}_roads", items, style="road", min_zoom=ROAD_MIN_ZOOM,
                                      declutter=PRIORITY["road"]))
    if metro_lines is not None and len(metro_lines):
        layers.append(label_layer(f"{layer_id}_metro", metro_line_items(metro_lines), style="metro_line",
                                  pickable=True, declutter=PRIORITY["metro_line"]))
    return LayerSet(layers=layers, label=label)


@register("station_labels")
def station_labels(stations: gpd.GeoDataFrame, *, label: str = "Station names", visible: bool = False,
                   layer_id: str = "station_labels") -> LayerSet:
    """Metro station names beside their dots, once per station (transfer stations share a name)."""
    g = stations.to_crs(4326)
    zh = _col(g, ("nameCn", "name_zh"))
    en = _col(g, ("name", "name_en"))
    seen, items = set(), []
    for i, geom in enumerate(g.geometry.values):
        if geom is None or geom.is_empty:
            continue
        z = _clean(zh.iloc[i]) if zh is not None else ""
        e = _clean(en.iloc[i]) if en is not None else ""
        key = z or e
        if not key or key in seen:
            continue
        seen.add(key)
        text = f"{z} {e}".strip() if z != e else z
        items.append((geom.x, geom.y, text, e))
    layer = label_layer(layer_id, items, style="station", offset=(7.0, 0.0), min_zoom=STATION_MIN_ZOOM,
                        declutter=PRIORITY["station"])
    return LayerSet(layers=[layer], label=label, visible=visible)
