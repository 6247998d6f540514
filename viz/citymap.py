"""The city map: a deck.gl scene of the twin's static layers.

:func:`city_map_deck` draws a hillshade basemap (a ``BitmapLayer``) and, on
top, one or more deck.gl layers per vector *kind* (districts, coast, roads,
metro lines, metro stations).  Each kind is built by a small function
registered in :data:`LAYER_BUILDERS`; a model adds its own kind without
touching this module::

    from viz.citymap import LAYER_BUILDERS
    LAYER_BUILDERS["flood_depth"] = my_flood_layer   # (GeoDataFrame) -> list[pdk.Layer]

The registry's order is the drawing order (later = on top), so kinds added
later draw above the static ones.

Size control: vectors are reprojected to EPSG:4326, simplified in a local
UTM CRS (default 10 m, ``preserve_topology``) and rounded to 6 decimals
(~0.1 m); the bitmap is at most ``max_px`` pixels on its longer side.

Tooltips: every pickable feature carries a ``tooltip`` property (HTML,
escaped) and the deck's tooltip template is ``{tooltip}``, so each kind
words its own.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Callable

import geopandas as gpd
import numpy as np
import pydeck as pdk
import shapely
import xarray as xr
from affine import Affine
from pyproj import CRS, Transformer
from shapely.geometry import mapping

from twin.errors import CRSError, GridError, ValidationError

LayerBuilder = Callable[[gpd.GeoDataFrame], list[pdk.Layer]]

#: Tooltip template of the deck: each feature supplies its own ``tooltip`` HTML.
TOOLTIP = {
    "html": "{tooltip}",
    "style": {"backgroundColor": "rgba(30,30,30,0.85)", "color": "white",
              "fontFamily": "sans-serif", "fontSize": "12px", "padding": "6px"},
}

SIMPLIFY_M = 10.0
DECIMALS = 6
MAX_BITMAP_PX = 2048
WATER_RGB = (186, 212, 232)

# pydeck turns a bare string prop into a deck.gl expression ("@@=..."); a quoted
# string is passed through as a literal.  Enum-like props must be quoted.
_PIXELS = "'pixels'"
_CIRCLE = "'circle'"


# --------------------------------------------------------------------------- vectors


def prepare_vector(gdf: gpd.GeoDataFrame, simplify_m: float = SIMPLIFY_M,
                   decimals: int = DECIMALS, what: str = "layer") -> gpd.GeoDataFrame:
    """Reproject to EPSG:4326, simplify by ``simplify_m`` metres, round to ``decimals``.

    Simplification (Douglas–Peucker, topology preserved) runs in the UTM zone
    of the data, so the tolerance is in true metres.  Null and empty
    geometries are dropped.

    Raises
    ------
    CRSError
        When the frame has no CRS.
    """
    if not isinstance(gdf, gpd.GeoDataFrame):
        raise ValidationError(f"{what}: expected a GeoDataFrame, got {type(gdf).__name__}")
    if gdf.crs is None:
        raise CRSError(f"{what}: the GeoDataFrame has no CRS: set one (gdf.set_crs(...)) before mapping it")
    gdf = gdf[gdf.geometry.notna() & ~gdf.geometry.is_empty]
    if gdf.empty:
        return gdf.to_crs(4326)
    if simplify_m and simplify_m > 0:
        utm = gdf.estimate_utm_crs()
        geom = gdf.geometry.to_crs(utm).simplify(simplify_m, preserve_topology=True).to_crs(4326)
    else:
        geom = gdf.geometry.to_crs(4326)
    rounded = shapely.transform(np.asarray(geom.values), lambda c: np.round(c, decimals))
    out = gdf.set_geometry(gpd.GeoSeries(rounded, index=gdf.index, crs=4326))
    return out[~out.geometry.is_empty & out.geometry.notna()]


def _py(value):
    """A JSON-safe Python value (numpy scalars, NaN → None)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def feature_collection(gdf: gpd.GeoDataFrame, props: dict[str, list]) -> dict:
    """GeoJSON FeatureCollection of ``gdf``'s geometries with only ``props`` as properties."""
    features = []
    for i, geom in enumerate(gdf.geometry.values):
        features.append({
            "type": "Feature",
            "properties": {k: _py(v[i]) for k, v in props.items()},
            "geometry": mapping(geom),
        })
    return {"type": "FeatureCollection", "features": features}


def hex_to_rgb(color, default=(120, 120, 120)) -> list[int]:
    """``"#00A651"`` / ``"00a651"`` / ``"#0a5"`` → ``[0, 166, 81]``; anything else → ``default``."""
    if isinstance(color, (list, tuple)) and len(color) >= 3:
        return [int(c) for c in color[:3]]
    if not isinstance(color, str):
        return list(default)
    s = color.strip().lstrip("#")
    if len(s) == 3:
        s = "".join(ch * 2 for ch in s)
    try:
        return [int(s[i:i + 2], 16) for i in (0, 2, 4)] if len(s) == 6 else list(default)
    except ValueError:
        return list(default)


def _column(gdf: gpd.GeoDataFrame, names: tuple[str, ...]):
    for n in names:
        if n in gdf.columns:
            return gdf[n]
    return None


def _text(values) -> list[str]:
    return ["" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v) for v in values]


def districts_layer(gdf: gpd.GeoDataFrame) -> list[pdk.Layer]:
    """District polygons: outline + light fill; tooltip with name and area (km²).

    The name is the first of the columns ``name``, ``name_en``, ``nameCn``,
    ``code``; the area is ``area_km2`` if present, else computed in the
    data's UTM zone before simplification.
    """
    if gdf.crs is None:
        raise CRSError("districts: the GeoDataFrame has no CRS: set one before mapping it")
    if "area_km2" in gdf.columns:
        area = [float(a) for a in gdf["area_km2"]]
    else:
        area = list(gdf.geometry.to_crs(gdf.estimate_utm_crs()).area.values / 1e6)
    names = _column(gdf, ("name", "name_en", "nameCn", "code"))
    names = _text(names) if names is not None else [str(i) for i in gdf.index]
    keep = gdf.geometry.notna() & ~gdf.geometry.is_empty
    area = [a for a, k in zip(area, keep, strict=True) if k]
    names = [n for n, k in zip(names, keep, strict=True) if k]
    g = prepare_vector(gdf[keep], what="districts")
    tips = [f"<b>{html.escape(n)}</b><br/>{a:,.1f} km²" for n, a in zip(names, area, strict=True)]
    data = feature_collection(g, {"name": names, "area_km2": [round(a, 2) for a in area],
                                  "tooltip": tips})
    return [pdk.Layer(
        "GeoJsonLayer", data=data, id="districts",
        stroked=True, filled=True, pickable=True,
        get_fill_color=[70, 110, 190, 28], get_line_color=[40, 60, 130, 230],
        line_width_units=_PIXELS, get_line_width=1.5, line_width_min_pixels=1,
        auto_highlight=True, highlight_color=[255, 200, 0, 60],
    )]


def coast_layer(gdf: gpd.GeoDataFrame) -> list[pdk.Layer]:
    """Shore and lake lines, thin blue."""
    g = prepare_vector(gdf, what="coast")
    return [pdk.Layer(
        "GeoJsonLayer", data=feature_collection(g, {}), id="coast",
        stroked=True, filled=False, pickable=False,
        get_line_color=[20, 90, 170, 220], line_width_units=_PIXELS, get_line_width=1.2,
    )]


_MAJOR_ROADS = ("motorway", "trunk", "primary", "secondary")


def roads_layer(gdf: gpd.GeoDataFrame) -> list[pdk.Layer]:
    """Roads as thin grey lines (wider for motorway–secondary classes in ``type``/``highway``).

    Directed edge pairs of two-way streets share one geometry: duplicates
    (same line either way round) are drawn once.
    """
    g = prepare_vector(gdf, what="roads")
    if g.empty:
        return []
    key = shapely.to_wkb(shapely.normalize(np.asarray(g.geometry.values)))
    _, first = np.unique(np.asarray(key, dtype=object).astype(bytes), return_index=True)
    g = g.iloc[np.sort(first)]
    cls = _column(g, ("type", "highway", "fclass"))
    major = [any(m in str(c) for m in _MAJOR_ROADS) for c in cls] if cls is not None else [False] * len(g)
    width = [2.0 if m else 1.0 for m in major]
    return [pdk.Layer(
        "GeoJsonLayer", data=feature_collection(g, {"w": width}), id="roads",
        stroked=True, filled=False, pickable=False,
        get_line_color=[80, 80, 80, 170], line_width_units=_PIXELS,
        get_line_width="properties.w",
    )]


def metro_lines_layer(gdf: gpd.GeoDataFrame) -> list[pdk.Layer]:
    """Metro lines coloured by ``lineColor`` (or ``color``); tooltip with the line name."""
    g = prepare_vector(gdf, what="metro_lines")
    colours = _column(g, ("lineColor", "color", "colour"))
    rgb = [hex_to_rgb(c) for c in colours] if colours is not None else [[200, 30, 30]] * len(g)
    line = _column(g, ("line", "name", "ref"))
    line = _text(line) if line is not None else [""] * len(g)
    tips = [f"Metro line {html.escape(s)}" if s and not s.lower().startswith("line") else html.escape(s)
            for s in line]
    return [pdk.Layer(
        "GeoJsonLayer", data=feature_collection(g, {"c": rgb, "tooltip": tips}), id="metro_lines",
        stroked=True, filled=False, pickable=True,
        get_line_color="properties.c", line_width_units=_PIXELS, get_line_width=3,
    )]


def metro_stations_layer(gdf: gpd.GeoDataFrame) -> list[pdk.Layer]:
    """Metro stations as dots (fill = ``lineColor``, white rim); tooltip with name and line."""
    g = prepare_vector(gdf, what="metro_stations")
    colours = _column(g, ("lineColor", "color", "colour"))
    rgb = [hex_to_rgb(c) for c in colours] if colours is not None else [[200, 30, 30]] * len(g)
    name = _column(g, ("name", "nameCn"))
    name = _text(name) if name is not None else [""] * len(g)
    cn = _text(_column(g, ("nameCn",))) if "nameCn" in g.columns and "name" in g.columns else [""] * len(g)
    line = _text(_column(g, ("line",))) if "line" in g.columns else [""] * len(g)
    tips = [f"<b>{html.escape(n)}</b> {html.escape(c)}" + (f"<br/>{html.escape(ln)}" if ln else "")
            for n, c, ln in zip(name, cn, line, strict=True)]
    return [pdk.Layer(
        "GeoJsonLayer", data=feature_collection(g, {"c": rgb, "tooltip": tips}), id="metro_stations",
        stroked=True, filled=True, pickable=True, point_type=_CIRCLE,
        get_fill_color="properties.c", get_line_color=[255, 255, 255, 255],
        get_point_radius=60, point_radius_min_pixels=2.5, point_radius_max_pixels=8,
        line_width_units=_PIXELS, get_line_width=1,
    )]


#: kind → builder. Insertion order is drawing order (later kinds draw on top).
LAYER_BUILDERS: dict[str, LayerBuilder] = {
    "districts": districts_layer,
    "coast": coast_layer,
    "roads": roads_layer,
    "metro_lines": metro_lines_layer,
    "metro_stations": metro_stations_layer,
}


# --------------------------------------------------------------------------- raster


def _transform_of(da: xr.DataArray) -> Affine:
    t = da.attrs.get("transform")
    if t is not None:
        return Affine(*tuple(t)[:6])
    if "x" not in da.coords or "y" not in da.coords or da.sizes.get("x", 0) < 2 or da.sizes.get("y", 0) < 2:
        raise GridError("hillshade: no attrs['transform'] and no regular x/y coordinates to derive one from")
    x, y = da["x"].values, da["y"].values
    dx, dy = float(x[1] - x[0]), float(y[1] - y[0])
    return Affine(dx, 0.0, float(x[0]) - dx / 2, 0.0, dy, float(y[0]) - dy / 2)


def _shade_to_unit(values: np.ndarray) -> np.ndarray:
    """Hillshade in 0–1: values ≤ 1 are taken as 0–1, larger ones as 0–255."""
    finite = values[np.isfinite(values)]
    if finite.size and float(finite.max()) > 1.0 + 1e-6:
        values = values / 255.0
    return np.clip(values, 0.0, 1.0)


def hillshade_bitmap(hillshade: xr.DataArray, water: xr.DataArray | None = None,
                     max_px: int = MAX_BITMAP_PX, grey_levels: int = 64,
                     water_style: str = "clear") -> tuple[str, list[float]]:
    """Reproject a hillshade to web mercator and encode it as a PNG data URL.

    Parameters
    ----------
    hillshade : DataArray
        Raster convention (dims y, x; attrs crs, transform, nodata); values
        0–1 or 0–255 (brighter = lit).  NaN / nodata cells become transparent.
    water : DataArray or None
        Truthy where water, on any grid and CRS (nearest-neighbour
        reprojected onto the bitmap).
    water_style : str
        ``"clear"`` (default): water pixels are transparent, so the relief
        stops at the shore instead of at the DEM's rectangle (flat sea shaded
        grey offshore); ``"tint"``: they are painted :data:`WATER_RGB`.
    max_px : int
        Largest width or height of the bitmap (resolution is coarsened to fit).
    grey_levels : int
        Grey levels kept (quantised down to a multiple of 256/levels): 64
        levels make the PNG ~40 % smaller than 256 with no visible banding
        on a shaded relief.

    Returns
    -------
    url : str
        ``data:image/png;base64,...`` (greyscale+alpha, or RGBA with water).
    bounds : list[float]
        ``[west, south, east, north]`` in degrees, for ``BitmapLayer.bounds``.
        deck.gl stretches the image linearly in web-mercator space between
        them, which is why the image is resampled to EPSG:3857.

    Notes
    -----
    Grey level = 255 · (0.35 + 0.65 · shade), then quantised: a lighter basemap
    keeps the vector layers readable.
    """
    from PIL import Image
    from rasterio.warp import Resampling, calculate_default_transform, reproject

    if water_style not in ("clear", "tint"):
        raise ValidationError(f"water_style={water_style!r}: use 'clear' or 'tint'")
    if hillshade.ndim != 2:
        raise GridError(f"hillshade: expected 2 dims (y, x), got {hillshade.dims}")
    crs = hillshade.attrs.get("crs")
    if not crs:
        raise CRSError("hillshade: attrs['crs'] is missing: set it (e.g. 'EPSG:4547')")
    src_t = _transform_of(hillshade)
    h, w = hillshade.shape
    src = np.asarray(hillshade.values, dtype=np.float32)
    nodata = hillshade.attrs.get("nodata")
    if nodata is not None and np.isfinite(nodata):
        src = np.where(src == np.float32(nodata), np.nan, src)
    left, top = src_t @ (0, 0)
    right, bottom = src_t @ (w, h)
    dst_t, dw, dh = calculate_default_transform(
        CRS.from_user_input(crs).to_wkt(), "EPSG:3857", w, h,
        left=min(left, right), bottom=min(top, bottom), right=max(left, right), top=max(top, bottom))
    scale = max(dw / max_px, dh / max_px, 1.0)
    if scale > 1.0:
        dw, dh = max(1, int(round(dw / scale))), max(1, int(round(dh / scale)))
        dst_t = Affine(dst_t.a * scale, 0.0, dst_t.c, 0.0, dst_t.e * scale, dst_t.f)
    dst = np.full((dh, dw), np.nan, dtype=np.float32)
    reproject(src, dst, src_transform=src_t, src_crs=crs, src_nodata=np.nan,
              dst_transform=dst_t, dst_crs="EPSG:3857", dst_nodata=np.nan,
              resampling=Resampling.bilinear)
    valid = np.isfinite(dst)
    grey = np.where(valid, 255.0 * (0.35 + 0.65 * _shade_to_unit(np.nan_to_num(dst))), 0)
    step = 256 // max(2, min(256, grey_levels))
    grey = (np.round(grey).astype(np.uint8) // step) * step
    alpha = np.where(valid, 255, 0).astype(np.uint8)
    if water is not None:
        wcrs = water.attrs.get("crs")
        if not wcrs:
            raise CRSError("water mask: attrs['crs'] is missing: set it (e.g. 'EPSG:4326')")
        wsrc = np.asarray(water.values, dtype=np.float32)
        wdst = np.full((dh, dw), np.nan, dtype=np.float32)
        reproject(wsrc, wdst, src_transform=_transform_of(water), src_crs=wcrs, src_nodata=np.nan,
                  dst_transform=dst_t, dst_crs="EPSG:3857", dst_nodata=np.nan,
                  resampling=Resampling.nearest)
        is_water = np.isfinite(wdst) & (wdst > 0.5)
        if water_style == "clear":
            alpha[is_water] = 0
            grey[is_water] = 0
            img = Image.fromarray(np.dstack([grey, alpha]), "LA")
        else:
            rgba = np.dstack([grey, grey, grey, alpha])
            rgba[is_water] = (*WATER_RGB, 255)
            img = Image.fromarray(rgba, "RGBA")
    else:
        img = Image.fromarray(np.dstack([grey, alpha]), "LA")
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
    to_ll = Transformer.from_crs("EPSG:3857", "EPSG:4326", always_xy=True)
    west, north = to_ll.transform(dst_t.c, dst_t.f)
    east, south = to_ll.transform(dst_t.c + dst_t.a * dw, dst_t.f + dst_t.e * dh)
    return url, [round(west, 6), round(south, 6), round(east, 6), round(north, 6)]


def hillshade_layer(hillshade: xr.DataArray, water: xr.DataArray | None = None,
                    max_px: int = MAX_BITMAP_PX) -> pdk.Layer:
    """The hillshade basemap as a deck.gl ``BitmapLayer`` (see :func:`hillshade_bitmap`)."""
    url, bounds = hillshade_bitmap(hillshade, water=water, max_px=max_px)
    # A quoted string is passed through verbatim by pydeck (else it becomes an "@@=" expression).
    return pdk.Layer("BitmapLayer", id="hillshade", image=f"'{url}'", bounds=bounds, pickable=False)


# --------------------------------------------------------------------------- view and deck


def _merc_y(lat: float) -> float:
    lat = max(min(lat, 85.0), -85.0)
    return math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))


def view_for_bounds(west: float, south: float, east: float, north: float,
                    width: int = 1200, height: int = 800, padding: float = 0.05) -> pdk.ViewState:
    """A view centred on the bounds, zoomed so they fit a ``width``×``height`` viewport.

    deck.gl's world is 512·2^zoom pixels wide, so
    ``zoom = log2(min(W·360/Δlon, H·2π/Δy_merc) / 512)`` less the padding.
    """
    if not (east > west and north > south):
        raise ValidationError(f"bounds=({west}, {south}, {east}, {north}): need east > west and north > south")
    ym = 0.5 * (_merc_y(south) + _merc_y(north))
    lat_c = math.degrees(2 * math.atan(math.exp(ym)) - math.pi / 2)
    zx = width * 360.0 / (east - west) / 512.0
    zy = height * 2 * math.pi / (_merc_y(north) - _merc_y(south)) / 512.0
    zoom = math.log2(min(zx, zy) * (1 - 2 * padding))
    return pdk.ViewState(longitude=round((west + east) / 2, 6), latitude=round(lat_c, 6),
                         zoom=round(zoom, 3), pitch=0, bearing=0)


def city_map_deck(
    hillshade: xr.DataArray | None,
    layers: dict[str, gpd.GeoDataFrame],
    view: pdk.ViewState | dict | None = None,
    *,
    water: xr.DataArray | None = None,
    max_px: int = MAX_BITMAP_PX,
    builders: dict[str, LayerBuilder] | None = None,
) -> pdk.Deck:
    """Build the city map: hillshade basemap, then the vector kinds in registry order.

    Parameters
    ----------
    hillshade : DataArray or None
        Basemap shading (raster convention, any CRS); None draws no basemap.
    layers : dict
        kind → GeoDataFrame (any CRS).  Kinds must be keys of ``builders``
        (default :data:`LAYER_BUILDERS`: districts, coast, roads,
        metro_lines, metro_stations).
    view : ViewState, dict or None
        Initial view; None centres and fits the data bounds.
    water : DataArray or None
        Water mask tinted blue on the basemap.
    max_px : int
        Cap on the bitmap's width and height.
    builders : dict or None
        Alternative registry (defaults to :data:`LAYER_BUILDERS`).

    Returns
    -------
    pydeck.Deck
        With ``map_provider=None`` (no tile service) and a per-feature tooltip;
        write it with :func:`viz.offline.write_offline_html`.

    Raises
    ------
    ValidationError
        On an unknown kind or a non-GeoDataFrame value.
    """
    builders = LAYER_BUILDERS if builders is None else builders
    unknown = [k for k in layers if k not in builders]
    if unknown:
        raise ValidationError(
            f"layers has unknown kind(s) {unknown}: known kinds are {list(builders)}; "
            "register a builder in viz.citymap.LAYER_BUILDERS to add one")
    deck_layers: list[pdk.Layer] = []
    bounds: list[tuple[float, float, float, float]] = []
    if hillshade is not None:
        layer = hillshade_layer(hillshade, water=water, max_px=max_px)
        deck_layers.append(layer)
        bounds.append(tuple(layer.bounds))
    for kind, build in builders.items():
        if kind not in layers or layers[kind] is None:
            continue
        gdf = layers[kind]
        if not isinstance(gdf, gpd.GeoDataFrame):
            raise ValidationError(f"layers[{kind!r}]: expected a GeoDataFrame, got {type(gdf).__name__}")
        if gdf.crs is None:
            raise CRSError(f"layers[{kind!r}]: the GeoDataFrame has no CRS: set one before mapping it")
        if len(gdf):
            b = gdf.to_crs(4326).total_bounds
            if np.all(np.isfinite(b)):
                bounds.append(tuple(float(v) for v in b))
        deck_layers.extend(build(gdf))
    if view is None:
        if bounds:
            arr = np.array(bounds)
            view = view_for_bounds(arr[:, 0].min(), arr[:, 1].min(), arr[:, 2].max(), arr[:, 3].max())
        else:
            view = pdk.ViewState(longitude=0, latitude=0, zoom=1)
    elif isinstance(view, dict):
        view = pdk.ViewState(**view)
    return pdk.Deck(layers=deck_layers, initial_view_state=view, map_provider=None, map_style=None,
                    tooltip=TOOLTIP)
