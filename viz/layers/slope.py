"""Kinds of the slope-failure model: FS, probability, failure time, runout and assets hit.

Each builder takes a slope run's dataset (``slope.nc``: dims ``(y, x)``,
attrs ``crs``/``transform``/``duration_h``; see :mod:`physics.slope`) and
returns a :class:`viz.scene.LayerSet`; :func:`slope_layers` returns every
set the dataset has, as a run kind's ``layers``.

Colour classes and why:

* ``slope_fs`` (``fs_min``, factor of safety, classes of :data:`FS_CLASSES`):
  FS < 1 red "unstable" (limit equilibrium: driving stress exceeds strength);
  1–1.3 orange "marginal" (stands, but below the smallest design minimum
  for permanent slopes, 1.25–1.35 in GB 50330-2013 Table 5.3.2);
  1.3–1.5 pale yellow "near design minimum" (1.4 is the Hong Kong GEO
  Geotechnical Manual for Slopes minimum for new slopes with high risk to
  life under 10-year rain); FS ≥ 1.5 is not drawn, so stable hills leave
  the basemap visible.
* ``slope_probability`` (``probability_of_failure`` shown in %): transparent
  below :data:`PROBABILITY_FLOOR` (5 %), yellow to dark red to 100 %.  At
  the 100–1000 members a run uses, the standard error of a 5 % estimate is
  0.7–2.2 %, and most hill cells carry some small probability that would
  otherwise tint the whole map.
* ``slope_failure_time`` (``time_of_failure``): a cell appears once the frame
  time reaches its first time with FS < 1, coloured by that time (h);
  frames hourly over ``duration_h`` (or the times you pass, e.g. a flood
  run's frame times, so both play on one slider).
* ``slope_runout`` (``runout_depth``, m of deposit, browns) and
  ``slope_runout_source`` (``runout_source``, m of failed thickness, violets;
  hidden at first): transparent below 0.1 m, the depth
  :func:`physics.slope_runout.assets_hit` counts an asset as hit from.
* ``slope_assets`` (``asset_*`` along dim ``asset``, WKT in EPSG:4326):
  buildings as polygons, roads and metro lines as paths, stations as dots,
  coloured by kind, with a tooltip (name, kind, deposit depth, id).
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass

import numpy as np
import xarray as xr

from twin.errors import ValidationError
from viz.layers import build, register
from viz.layers._raster import MAX_PX, MercatorWarp, Ramp, bitmap_layer, png_data_url, raster_layer
from viz.layers.flood_depth import time_label
from viz.scene import LayerSet, Legend


@dataclass
class Classes:
    """A stepped colour scale: class ``k`` holds ``edges[k-1] <= v < edges[k]``.

    Duck-types :class:`viz.layers._raster.Ramp` for :func:`png_data_url` and
    :func:`raster_layer` (``palette``, ``indices``, ``values``,
    ``transparent_below``).  A class with alpha 0 and NaN are transparent.

    Attributes
    ----------
    edges : list of float
        Strictly increasing class limits (one fewer than the classes).
    colours : list of RGBA
        One colour per class.
    labels : list of str
        One legend label per class.
    """

    edges: list[float]
    colours: list[tuple[int, int, int, int]]
    labels: list[str]
    transparent_below: bool = False

    def __post_init__(self) -> None:
        e = [float(v) for v in self.edges]
        if any(b <= a for a, b in zip(e, e[1:], strict=False)):
            raise ValidationError(f"class edges {e}: must increase strictly")
        if len(self.colours) != len(e) + 1 or len(self.labels) != len(e) + 1:
            raise ValidationError(f"{len(e)} class edges need {len(e) + 1} colours and labels, got "
                                  f"{len(self.colours)} colours and {len(self.labels)} labels")
        self.values = np.asarray(e)

    def palette(self) -> np.ndarray:
        """RGBA palette (n + 1, 4) uint8: entry 0 transparent, then one entry per class."""
        return np.vstack([[0, 0, 0, 0], np.asarray(self.colours, dtype=float)]).astype(np.uint8)

    def indices(self, values) -> np.ndarray:
        """Palette index of every value (0 = transparent: NaN or a class with alpha 0)."""
        a = np.asarray(values, dtype=np.float64)
        finite = np.isfinite(a)
        idx = 1 + np.searchsorted(self.values, np.where(finite, a, 0.0), side="right")
        idx[~finite] = 0
        alpha = np.asarray([c[3] for c in self.colours])
        idx[(idx > 0) & (alpha[np.maximum(idx - 1, 0)] == 0)] = 0
        return idx.astype(np.uint8)

    def classify(self, values) -> np.ndarray:
        """Class number (0 .. n-1) of every value, -1 for NaN."""
        a = np.asarray(values, dtype=np.float64)
        k = np.searchsorted(self.values, np.where(np.isfinite(a), a, 0.0), side="right")
        return np.where(np.isfinite(a), k, -1)

    def legend(self, layer: str, title: str, units: str = "") -> Legend:
        return Legend(layer=layer, title=title, units=units,
                      stops=list(zip(self.labels, [tuple(c) for c in self.colours], strict=True)))


#: FS limits (1): 1 = limit equilibrium; 1.3 and 1.5 bracket the design minimums of
#: GB 50330-2013 Table 5.3.2 (1.25-1.35, permanent slopes) and the Hong Kong GEO
#: Geotechnical Manual for Slopes (1.4, new slopes, high risk to life).
FS_EDGES = (1.0, 1.3, 1.5)
FS_CLASSES = Classes(
    edges=list(FS_EDGES),
    colours=[(200, 20, 30, 235), (245, 135, 30, 215), (250, 215, 90, 150), (0, 0, 0, 0)],
    labels=["FS < 1 unstable", "1 – 1.3 marginal", "1.3 – 1.5 near design minimum",
            "≥ 1.5 stable (not drawn)"])

#: Probabilities (as fractions) below this are not drawn.
PROBABILITY_FLOOR = 0.05


def probability_ramp(floor: float = PROBABILITY_FLOOR) -> Ramp:
    """Probability ramp in %: transparent below ``floor`` (a fraction), yellow → dark red at 100 %."""
    if not 0.0 < float(floor) < 0.1:
        raise ValidationError(f"floor={floor}: give a probability floor in (0, 0.1), e.g. 0.05")
    f = 100.0 * float(floor)
    return Ramp([(f, (255, 235, 150, 170)), (10.0, (254, 190, 80, 195)), (25.0, (250, 130, 45, 215)),
                 (50.0, (225, 45, 30, 230)), (75.0, (170, 0, 40, 240)), (100.0, (100, 0, 40, 250))])


#: Deposits and failed thickness thinner than this (m) are not drawn (assets_hit's default).
RUNOUT_MIN_DEPTH_M = 0.1
#: Deposit ramp (m): browns darker than the FS classes' yellow and orange, so thin deposit on a
#: marginal slope is not read as an FS class.
RUNOUT_RAMP = Ramp([(0.1, (175, 140, 100, 200)), (0.5, (150, 112, 75, 215)), (1.0, (128, 88, 52, 225)),
                    (2.0, (105, 66, 33, 235)), (5.0, (82, 46, 20, 245)), (10.0, (58, 28, 10, 250))])
SOURCE_RAMP = Ramp([(0.1, (210, 190, 230, 170)), (1.0, (160, 120, 200, 200)), (3.0, (110, 60, 160, 225)),
                    (10.0, (60, 20, 110, 245))])

#: Asset kind → (legend label, colour RGBA).
ASSET_KINDS = {
    "building": ("buildings", (200, 30, 150, 230)),
    "road": ("roads", (25, 25, 25, 240)),
    "metro_line": ("metro lines", (0, 120, 210, 240)),
    "metro_station": ("metro stations", (0, 70, 160, 255)),
}


def _var(ds, name: str) -> xr.DataArray:
    """``ds[name]`` with the dataset's crs/transform in its attrs."""
    if name not in ds:
        raise ValidationError(f"the dataset has no {name!r} variable (has {sorted(ds.data_vars)}): "
                              "is it a slope run (twin slope run writes slope.nc)?")
    da = ds[name].copy(deep=False)
    if da.dims != ("y", "x"):
        raise ValidationError(f"{name} dims {da.dims}: expected ('y', 'x')")
    da.attrs = {**{k: ds.attrs[k] for k in ("crs", "transform") if k in ds.attrs}, **da.attrs}
    return da


def _warp(ds, warp: MercatorWarp | None, max_px: int | None) -> MercatorWarp:
    return warp or MercatorWarp.for_grid(ds, max_px=max_px or MAX_PX)


@register("slope_fs")
def slope_fs(ds, *, warp: MercatorWarp | None = None, max_px: int | None = None, layer_id: str = "slope_fs",
             label: str = "Slope factor of safety", visible: bool = True) -> LayerSet:
    """Minimum factor of safety (``fs_min``) in the classes of :data:`FS_CLASSES`; FS ≥ 1.5 transparent."""
    fs = _var(ds, "fs_min")
    warp = _warp(ds, warp, max_px)
    layer = raster_layer(layer_id, warp(fs.values), FS_CLASSES, warp.bounds, name="Minimum FS",
                         step=0.01, nodata_text="not modelled (flat, water or outside)")
    return LayerSet(layers=[layer], legends=[FS_CLASSES.legend(layer_id, "Minimum factor of safety")],
                    label=label, visible=visible, bounds=warp.bounds)


@register("slope_probability")
def slope_probability(ds, *, warp: MercatorWarp | None = None, max_px: int | None = None,
                      floor: float = PROBABILITY_FLOOR, layer_id: str = "slope_probability",
                      label: str = "Probability of slope failure", visible: bool = True) -> LayerSet:
    """``probability_of_failure`` (0–1) as %, transparent below ``floor``."""
    p = _var(ds, "probability_of_failure")
    warp = _warp(ds, warp, max_px)
    ramp = probability_ramp(floor)
    layer = raster_layer(layer_id, 100.0 * warp(p.values), ramp, warp.bounds, units="%",
                         name="Probability of failure", step=0.1, below_text="low",
                         nodata_text="not modelled")
    return LayerSet(layers=[layer], legends=[ramp.legend(layer_id, "Probability of failure", "%")],
                    label=label, visible=visible, bounds=warp.bounds)


def hourly_times(duration_h: float) -> list[float]:
    """0, 3600, ... s up to ``duration_h`` (the end kept when it is not a whole hour)."""
    d = float(duration_h)
    if not (math.isfinite(d) and d > 0):
        raise ValidationError(f"duration_h={duration_h}: give a positive number of hours")
    t = [3600.0 * k for k in range(int(math.floor(d + 1e-9)) + 1)]
    if d * 3600.0 - t[-1] > 1.0:
        t.append(d * 3600.0)
    return t


def _duration_h(ds, tof: np.ndarray) -> float:
    d = ds.attrs.get("duration_h")
    try:
        d = float(d)
    except (TypeError, ValueError):
        d = float("nan")
    if math.isfinite(d) and d > 0:
        return d
    last = float(np.nanmax(tof)) / 3600.0 if np.isfinite(tof).any() else 0.0
    return max(1.0, math.ceil(last))


@register("slope_failure_time")
def slope_failure_time(ds, *, warp: MercatorWarp | None = None, max_px: int | None = None,
                       times_s=None, layer_id: str = "slope_failure_time",
                       label: str = "Slope failures by this time", visible: bool = True) -> LayerSet:
    """Cells that have failed by each frame's time, coloured by when they failed (h).

    Parameters
    ----------
    ds : Dataset
        A slope run (``time_of_failure`` in s from the start, NaN = never; attrs ``duration_h``).
    times_s : sequence of float or None
        Frame times (s from the start).  None: hourly over ``duration_h``.  Give a flood
        run's frame times (its ``flood_depth`` set's ``times_s``) to put both on one slider.

    Returns
    -------
    LayerSet
        One BitmapLayer, one image per frame (a cell shows once t ≥ its time of failure);
        hovering reads the time of failure.  The map opens on the last frame.
    """
    tof = np.asarray(_var(ds, "time_of_failure").values, dtype=np.float64)
    warp = _warp(ds, warp, max_px)
    if times_s is None:
        t = hourly_times(_duration_h(ds, tof))
    else:
        t = [float(v) for v in np.asarray(times_s, dtype=float).ravel()]
        if not t or not np.all(np.isfinite(t)) or (len(t) > 1 and not np.all(np.diff(t) > 0)):
            raise ValidationError(f"times_s={t[:8]}: give finite, increasing frame times (s)")
    end_h = max(t[-1] / 3600.0, 1e-3)
    ramp = Ramp([(0.0, (70, 0, 90, 245)), (0.25 * end_h, (120, 20, 130, 235)), (0.5 * end_h, (170, 50, 160, 225)),
                 (0.75 * end_h, (215, 100, 185, 215)), (end_h, (245, 165, 215, 205))], transparent_below=True)
    hours = warp(tof / 3600.0)
    layer = bitmap_layer(layer_id, "", warp.bounds, values=hours, units="h", name="Slope failed at",
                         step=1 / 60, nodata_text="no failure (or not modelled)")
    patches, counts = [], []
    finite = np.isfinite(tof)
    for k, tk in enumerate(t):
        shown = np.where(hours <= tk / 3600.0 + 1e-9, hours, np.nan)
        counts.append(int(np.count_nonzero(finite & (tof <= tk + 1e-6))))
        img = png_data_url(shown, ramp)
        if k == 0:
            layer["image"] = img
            patches.append({})
        else:
            patches.append({"image": img})
    labels = [f"{time_label(tk)} — {n:,} cells failed" for tk, n in zip(t, counts, strict=True)]
    return LayerSet(layers=[layer], legends=[ramp.legend(layer_id, "Slope failed at (from the start)", "h")],
                    label=label, visible=visible, times_s=t, labels=labels, frames={layer_id: patches},
                    bounds=warp.bounds, initial_frame=len(t) - 1)


@register("slope_runout")
def slope_runout(ds, *, warp: MercatorWarp | None = None, max_px: int | None = None,
                 layer_id: str = "slope_runout", label: str = "Landslide runout deposit",
                 visible: bool = True) -> LayerSet:
    """Deposit thickness (``runout_depth``, m), transparent below :data:`RUNOUT_MIN_DEPTH_M`."""
    dep = _var(ds, "runout_depth")
    warp = _warp(ds, warp, max_px)
    layer = raster_layer(layer_id, warp(dep.values), RUNOUT_RAMP, warp.bounds, units="m", name="Runout deposit",
                         step=0.01, below_text="none", nodata_text="not modelled")
    return LayerSet(layers=[layer], legends=[RUNOUT_RAMP.legend(layer_id, "Runout deposit thickness", "m")],
                    label=label, visible=visible, bounds=warp.bounds)


@register("slope_runout_source")
def slope_runout_source(ds, *, warp: MercatorWarp | None = None, max_px: int | None = None,
                        layer_id: str = "slope_runout_source", label: str = "Runout source (failed thickness)",
                        visible: bool = False) -> LayerSet:
    """Failed thickness the runout starts from (``runout_source``, m); hidden at first.

    The source cells are the failed cells (FS < 1, or p above the run's threshold), which
    the failure-time or probability layer already shows: drawn by default it would hide
    their colours.
    """
    src = _var(ds, "runout_source")
    warp = _warp(ds, warp, max_px)
    layer = raster_layer(layer_id, warp(src.values), SOURCE_RAMP, warp.bounds, units="m", name="Failed thickness",
                         step=0.01, below_text="none", nodata_text="not modelled")
    return LayerSet(layers=[layer], legends=[SOURCE_RAMP.legend(layer_id, "Failed (source) thickness", "m")],
                    label=label, visible=visible, bounds=warp.bounds)


# ----------------------------------------------------------------------------- assets
def asset_table(ds) -> list[dict]:
    """The assets hit of a slope run: ``[{"kind", "id", "name", "depth_m", "geometry"}]`` (shapely, lon/lat).

    Takes a slope dataset (``asset_kind``, ``asset_id``, ``asset_name``, ``asset_depth_m``,
    ``asset_wkt`` along dim ``asset``) or the GeoDataFrame of
    :func:`physics.slope_runout.assets_hit` (columns kind, id, name, deposit_depth_m, geometry).
    """
    import shapely.wkt

    if isinstance(ds, xr.Dataset):
        if "asset_wkt" not in ds or ds.sizes.get("asset", 0) == 0:
            return []
        n = ds.sizes["asset"]

        def col(name, default=""):
            return list(ds[name].values) if name in ds else [default] * n

        kinds, ids, names = col("asset_kind"), col("asset_id"), col("asset_name")
        depths, wkts = col("asset_depth_m", np.nan), col("asset_wkt")
        geoms = []
        for k, w in enumerate(wkts):
            try:
                geoms.append(shapely.wkt.loads(str(w)) if str(w) else None)
            except Exception as exc:  # shapely raises its own GEOSException
                raise ValidationError(f"asset_wkt[{k}]={str(w)[:60]!r}: not WKT ({exc})") from None
    else:
        gdf = ds
        if getattr(gdf, "crs", None) is not None and gdf.crs.to_epsg() != 4326:
            gdf = gdf.to_crs(4326)
        kinds = list(gdf["kind"])
        ids = list(gdf["id"]) if "id" in gdf else [""] * len(gdf)
        names = list(gdf["name"]) if "name" in gdf else [""] * len(gdf)
        depths = list(gdf["deposit_depth_m"]) if "deposit_depth_m" in gdf else [np.nan] * len(gdf)
        geoms = list(gdf.geometry)
    out = []
    for k, g in enumerate(geoms):
        kind = str(kinds[k])
        if kind not in ASSET_KINDS:
            raise ValidationError(f"asset_kind[{k}]={kind!r}: allowed kinds are {sorted(ASSET_KINDS)}")
        name = "" if names[k] is None or (isinstance(names[k], float) and math.isnan(names[k])) else str(names[k])
        out.append({"kind": kind, "id": str(ids[k]), "name": name, "depth_m": float(depths[k]),
                    "geometry": g})
    return out


def _tip(a: dict) -> str:
    label = ASSET_KINDS[a["kind"]][0][:-1] if a["kind"] != "metro_station" else "metro station"
    name = a["name"] or f"{label} {a['id']}"
    depth = f"{a['depth_m']:.2f} m" if math.isfinite(a["depth_m"]) else "–"
    return (f"<b>{html.escape(name)}</b><br/>{html.escape(label)} hit by the runout"
            f"<br/>deposit depth: {depth}<br/>id: {html.escape(a['id'])}")


def _parts(geom, types: tuple[str, ...]) -> list:
    if geom is None or geom.is_empty:
        return []
    if geom.geom_type in types:
        return [geom]
    if hasattr(geom, "geoms"):
        return [p for g in geom.geoms for p in _parts(g, types)]
    return []


def _xy(coords) -> list[list[float]]:
    return [[round(float(c[0]), 6), round(float(c[1]), 6)] for c in coords]


class _Footprint:
    """Where the deposit is at least ``min_depth_m`` (dilated by one cell), sampled at lon/lat points."""

    def __init__(self, ds, min_depth_m: float):
        from pyproj import Transformer
        from scipy.ndimage import binary_dilation

        from viz.layers._raster import grid_transform

        dep = np.nan_to_num(np.asarray(ds["runout_depth"].values, dtype=np.float64), nan=0.0)
        # One cell of slack: the runout's asset test intersects lines with whole cell squares,
        # which a line may cross between two sample points.
        self.mask = binary_dilation(dep >= min_depth_m, structure=np.ones((3, 3), bool))
        t = grid_transform(ds)
        self.inv = ~t
        self.cell = min(abs(t.a), abs(t.e))
        self.to_grid = Transformer.from_crs("EPSG:4326", ds.attrs["crs"], always_xy=True)
        self.to_ll = Transformer.from_crs(ds.attrs["crs"], "EPSG:4326", always_xy=True)

    def hit_parts(self, coords: np.ndarray) -> list[np.ndarray]:
        """The runs of a lon/lat line (densified to a quarter cell) that lie on the footprint."""
        x, y = self.to_grid.transform(coords[:, 0], coords[:, 1])
        xy = np.column_stack([x, y])
        seg = np.hypot(*np.diff(xy, axis=0).T)
        pts = [xy[:1]]
        for k, d in enumerate(seg):
            n = max(1, int(np.ceil(d / (self.cell / 4))))
            f = (np.arange(1, n + 1) / n)[:, None]
            pts.append(xy[k] + f * (xy[k + 1] - xy[k]))
        xy = np.vstack(pts)
        col = np.floor(self.inv.a * xy[:, 0] + self.inv.b * xy[:, 1] + self.inv.c).astype(np.int64)
        row = np.floor(self.inv.d * xy[:, 0] + self.inv.e * xy[:, 1] + self.inv.f).astype(np.int64)
        h, w = self.mask.shape
        inside = (row >= 0) & (row < h) & (col >= 0) & (col < w)
        on = np.zeros(len(xy), bool)
        on[inside] = self.mask[row[inside], col[inside]]
        parts = []
        edges = np.flatnonzero(np.diff(np.r_[0, on.astype(np.int8), 0]))
        for a, b in zip(edges[::2], edges[1::2], strict=True):
            a, b = max(a - 1, 0), min(b + 1, len(xy))  # reach the neighbouring samples: no 1-point runs
            lon, lat = self.to_ll.transform(xy[a:b, 0], xy[a:b, 1])
            parts.append(np.column_stack([lon, lat]))
        return parts


@register("slope_assets")
def slope_assets(ds, *, layer_id: str = "slope_assets", label: str = "Assets hit by runout",
                 visible: bool = True, clip_lines: bool = True,
                 min_depth_m: float = RUNOUT_MIN_DEPTH_M) -> LayerSet:
    """Assets hit (buildings, roads, metro lines and stations) coloured by kind, with tooltips.

    Parameters
    ----------
    ds : Dataset or GeoDataFrame
        A slope run with ``asset_*`` variables, or :func:`physics.slope_runout.assets_hit`'s frame.
    clip_lines : bool
        With a dataset that has ``runout_depth``, draw of a road or metro line only its
        stretches on the deposit (cells ≥ ``min_depth_m``, one cell of slack), so a hit on a
        30 km metro line marks the hit, not the line; a line with no such stretch is drawn whole.

    Returns
    -------
    LayerSet
        ``{layer_id}_areas`` (PolygonLayer), ``{layer_id}_lines`` (PathLayer) and
        ``{layer_id}_points`` (ScatterplotLayer), each only when some asset has that
        geometry; a legend of the kinds with their counts.  No layers when nothing was hit.
    """
    assets = asset_table(ds)
    foot = None
    if clip_lines and isinstance(ds, xr.Dataset) and "runout_depth" in ds and ds.attrs.get("crs") \
            and any(a["kind"] in ("road", "metro_line") for a in assets):
        foot = _Footprint(ds, min_depth_m)
    polys, paths, points, allxy = [], [], [], []
    for a in assets:
        c = list(ASSET_KINDS[a["kind"]][1])
        tip = _tip(a)
        for p in _parts(a["geometry"], ("Polygon",)):
            rings = [_xy(p.exterior.coords), *(_xy(r.coords) for r in p.interiors)]
            polys.append({"polygon": rings, "c": c, "tooltip": tip})
            allxy += rings[0]
        lines = [np.asarray(ln.coords)[:, :2] for ln in _parts(a["geometry"], ("LineString", "LinearRing"))]
        if foot is not None and lines:
            hit = [part for ln in lines for part in foot.hit_parts(ln)]
            lines = hit or lines
        for ln in lines:
            paths.append({"path": _xy(ln), "c": c, "tooltip": tip})
            allxy += paths[-1]["path"]
        for pt in _parts(a["geometry"], ("Point",)):
            points.append({"p": _xy(pt.coords)[0], "c": c, "tooltip": tip})
            allxy.append(points[-1]["p"])
    if allxy:
        xy = np.asarray(allxy)
        if np.abs(xy[:, 0]).max() > 180 or np.abs(xy[:, 1]).max() > 90:
            raise ValidationError(f"asset geometry at {xy[0].tolist()} is not in lon/lat degrees: "
                                  "give asset_wkt in EPSG:4326")
    layers = []
    if polys:
        layers.append({"@@type": "PolygonLayer", "id": f"{layer_id}_areas", "data": polys,
                       "getPolygon": "@@=polygon", "getFillColor": "@@=c", "getLineColor": [255, 255, 255, 255],
                       "stroked": True, "filled": True, "lineWidthUnits": "pixels", "getLineWidth": 1,
                       "pickable": True, "autoHighlight": True})
    if paths:
        layers.append({"@@type": "PathLayer", "id": f"{layer_id}_lines", "data": paths, "getPath": "@@=path",
                       "getColor": "@@=c", "getWidth": 4, "widthUnits": "pixels", "widthMinPixels": 3,
                       "capRounded": True, "jointRounded": True, "pickable": True, "autoHighlight": True})
    if points:
        layers.append({"@@type": "ScatterplotLayer", "id": f"{layer_id}_points", "data": points,
                       "getPosition": "@@=p", "getFillColor": "@@=c", "getLineColor": [255, 255, 255, 255],
                       "stroked": True, "radiusUnits": "pixels", "getRadius": 7, "lineWidthUnits": "pixels",
                       "getLineWidth": 1.5, "pickable": True, "autoHighlight": True})
    counts = {k: sum(a["kind"] == k for a in assets) for k in ASSET_KINDS}
    stops = [(f"{ASSET_KINDS[k][0]} ({n})", ASSET_KINDS[k][1]) for k, n in counts.items() if n]
    legends = [Legend(layers[0]["id"], "Assets hit by runout", "", stops)] if layers else []
    bounds = None
    if allxy:
        xy = np.asarray(allxy)
        bounds = (float(xy[:, 0].min()), float(xy[:, 1].min()), float(xy[:, 0].max()), float(xy[:, 1].max()))
    return LayerSet(layers=layers, legends=legends, label=label, visible=visible, bounds=bounds)


# ----------------------------------------------------------------------------- all of a run
def has_assets(ds) -> bool:
    """Whether a slope dataset lists any asset hit."""
    return "asset_wkt" in ds and ds.sizes.get("asset", 0) > 0


def slope_layers(ds, *, warp: MercatorWarp | None = None, max_px: int | None = None,
                 times_s=None) -> list[LayerSet]:
    """Every layer set a slope run has, top first (as :func:`viz.run_map.run_scene` draws them).

    Order, top first: assets hit (vectors, so no raster hides them), runout deposit, runout
    source (hidden at first: its cells are the failed ones, shown below it), failure time (frames: failed cells cover the FS classes as the
    slider moves, so the red FS < 1 cells still standing at a time stay visible), then the
    main raster: the probability of failure when the run is probabilistic, else the minimum
    FS.  In a probabilistic run the failure time and the minimum FS are listed but hidden
    at first (they would cover the probability).

    Parameters
    ----------
    ds : Dataset
        A slope run (the ``slope.nc`` contract).
    warp, max_px
        A warp of the run's grid to reuse, or the bitmap size cap.
    times_s : sequence of float or None
        Frame times of the failure-time layer (default hourly over ``duration_h``); pass a
        flood run's frame times to share its slider.
    """
    warp = _warp(ds, warp, max_px)
    probabilistic = "probability_of_failure" in ds
    sets = []
    if has_assets(ds):
        s = build("slope_assets", ds)
        if s.layers:
            sets.append(s)
    if "runout_depth" in ds:
        sets.append(build("slope_runout", ds, warp=warp))
    if "runout_source" in ds:
        sets.append(build("slope_runout_source", ds, warp=warp))
    if "time_of_failure" in ds:
        sets.append(build("slope_failure_time", ds, warp=warp, times_s=times_s, visible=not probabilistic))
    if probabilistic:
        sets.append(build("slope_probability", ds, warp=warp))
    if "fs_min" in ds:
        sets.append(build("slope_fs", ds, warp=warp, visible=not probabilistic))
    return sets


def zone_names(ds) -> dict[int, str]:
    """Zone code → name from ``ds['zone'].attrs['zone_names']`` (a JSON object or list), else {}."""
    if "zone" not in ds:
        return {}
    raw = ds["zone"].attrs.get("zone_names", ds.attrs.get("zone_names"))
    if raw is None:
        return {}
    try:
        obj = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError:
        return {}
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            try:
                out[int(k)] = str(v)
            except (TypeError, ValueError):
                continue
        return out
    if isinstance(obj, list):
        return {k: str(v) for k, v in enumerate(obj)}
    return {}


__all__ = ["ASSET_KINDS", "FS_CLASSES", "FS_EDGES", "PROBABILITY_FLOOR", "RUNOUT_MIN_DEPTH_M", "Classes",
           "asset_table", "has_assets", "hourly_times", "probability_ramp", "slope_assets", "slope_failure_time",
           "slope_fs", "slope_layers", "slope_probability", "slope_runout", "slope_runout_source", "zone_names"]
