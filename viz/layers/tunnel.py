"""Kinds of the metro-tunnel protection model: segments by share of the limit, protection zone, sources, DAS events.

Each builder takes a tunnel-vibration forecast (:func:`physics.tunnel_vibration.forecast_vibration`'s
dataset: dims ``segment`` and ``source``, segment ends ``lon0/lat0/lon1/lat1``) and returns a
:class:`viz.scene.LayerSet`; :func:`tunnel_layers` returns every set, top first, as the run kind's ``layers``.

* ``tunnel_segments``: each segment a path coloured by ``ratio`` = PPV / limit (the largest over the sources,
  each at the limit of its own dominant frequency), classes of :data:`RATIO_CLASSES`: below 0.5 grey-blue
  ("well below"), 0.5–0.8 yellow, 0.8–1 orange ("near the limit": within the scatter of the attenuation laws,
  whose site constants K, α span a factor of ~1.5 within one ground class), ≥ 1 red ("over the limit").
  Tooltip: line, chainage, PPV, frequency, limit, ratio, source.
* ``tunnel_zone``: the protection zone, ``protection_m`` beyond the outer edge of each line's tunnel (plan view),
  drawn from the segment chords (the approximate alignment), translucent.
* ``tunnel_sources``: construction sources coloured by type, with a ring at the source's safe distance
  (the distance to the lining where its PPV equals the limit; drawn in plan).
* ``tunnel_das_events`` (hook for detected DAS events): points of a GeoJSON FeatureCollection with a ``class``
  or ``event_class`` (the bridge's ``das_event`` classes: drilling, piling, excavation, intrusion, train, vehicle,
  unknown), optional ``confidence``, ``chainage_m``, ``line``, ``time``/``t_start``/``onset_s`` (as
  ``twin tunnel detect``'s ``events.geojson`` writes them). :func:`tunnel_layers` draws it when given
  ``events=`` (a path or a dict) or when the dataset's attr ``events_geojson`` names an existing file, so a
  ``tunnel detect`` run that writes ``events.geojson`` gets it on its map without touching this module.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from twin.errors import ValidationError
from viz.layers import build, register
from viz.scene import LayerSet, Legend

#: (upper edge of the class, colour, legend label); the last class has no upper edge.
RATIO_CLASSES: list[tuple[float, tuple[int, int, int, int], str]] = [
    (0.5, (110, 140, 170, 200), "< 0.5 of the limit"),
    (0.8, (240, 200, 40, 235), "0.5 – 0.8"),
    (1.0, (245, 130, 30, 245), "0.8 – 1 near the limit"),
    (math.inf, (210, 20, 30, 255), "≥ 1 over the limit"),
]
SOURCE_COLOURS = {"blasting": (200, 0, 120, 255), "piling": (120, 60, 200, 255), "drilling": (0, 140, 160, 255),
                  "excavation": (150, 100, 40, 255)}
EVENT_COLOURS = {"drilling": (0, 140, 160, 255), "piling": (120, 60, 200, 255), "excavation": (150, 100, 40, 255),
                 "intrusion": (230, 0, 0, 255), "train": (90, 90, 90, 255), "vehicle": (60, 60, 200, 255),
                 "unknown": (0, 0, 0, 255)}
ZONE_COLOUR = (0, 120, 210, 45)


def ratio_class(ratio: Any) -> np.ndarray:
    """Class index (0..3) of :data:`RATIO_CLASSES` of every ratio (half-open: ``edge[k-1] <= r < edge[k]``)."""
    edges = np.array([c[0] for c in RATIO_CLASSES[:-1]])
    return np.searchsorted(edges, np.nan_to_num(np.asarray(ratio, dtype=float), nan=0.0), side="right")


def _need(ds: Any, names: tuple[str, ...], what: str) -> None:
    missing = [n for n in names if n not in ds]
    if missing:
        raise ValidationError(f"{what}: the dataset lacks {missing}; give a tunnel forecast "
                              "(physics.tunnel_vibration.forecast_vibration)")


def _source_bounds(ds: Any, pad_deg: float = 0.006) -> tuple[float, float, float, float] | None:
    if "lon" not in ds or ds.sizes.get("source", 0) == 0:
        return None
    lon, lat = ds["lon"].values, ds["lat"].values
    return (float(lon.min()) - pad_deg, float(lat.min()) - pad_deg, float(lon.max()) + pad_deg,
            float(lat.max()) + pad_deg)


@register("tunnel_segments")
def tunnel_segments(ds: Any, *, layer_id: str = "tunnel_segments", label: str = "Tunnel PPV / limit",
                    visible: bool = True) -> LayerSet:
    """Tunnel segments coloured by their PPV as a share of the limit (see the module docstring)."""
    _need(ds, ("lon0", "lat0", "lon1", "lat1", "ratio", "ppv_cm_s", "limit_cm_s"), "tunnel_segments")
    k = ratio_class(ds["ratio"].values)
    sid = ds["source_id"].values if "source_id" in ds else np.array([])
    src = ds["source_index"].values
    ppv, lim, ratio, f = (ds[v].values for v in ("ppv_cm_s", "limit_cm_s", "ratio", "f_hz"))
    c0, c1, line = ds["chainage_start_m"].values, ds["chainage_end_m"].values, ds["line"].values
    lon0, lat0, lon1, lat1 = (np.round(ds[v].values, 6) for v in ("lon0", "lat0", "lon1", "lat1"))
    data = []
    for i in range(k.size):
        tip = (f"<b>Line {html.escape(str(line[i]))}</b> {c0[i]:,.0f}–{c1[i]:,.0f} m<br/>"
               f"PPV {ppv[i]:.3g} cm/s" + (f" at {f[i]:.0f} Hz" if np.isfinite(f[i]) else "")
               + f"<br/>limit {lim[i]:.3g} cm/s; ratio {ratio[i]:.2f}"
               + (f"<br/>source {html.escape(str(sid[src[i]]))}" if src[i] >= 0 and sid.size else ""))
        data.append({"path": [[lon0[i], lat0[i]], [lon1[i], lat1[i]]], "c": list(RATIO_CLASSES[k[i]][1]),
                     "w": 4 + 3 * int(k[i]), "tooltip": tip})
    layer = {"@@type": "PathLayer", "id": layer_id, "data": data, "getPath": "@@=path", "getColor": "@@=c",
             "getWidth": "@@=w", "widthUnits": "pixels", "widthMinPixels": 3, "capRounded": True,
             "pickable": True, "autoHighlight": True}
    counts = np.bincount(k, minlength=len(RATIO_CLASSES))
    stops = [(f"{lab} ({n})", col) for (_, col, lab), n in zip(RATIO_CLASSES, counts, strict=True)]
    title = f"PPV / limit ({ds.attrs.get('limits', '')})"
    bounds = _source_bounds(ds) or (float(min(lon0.min(), lon1.min())), float(min(lat0.min(), lat1.min())),
                                    float(max(lon0.max(), lon1.max())), float(max(lat0.max(), lat1.max())))
    return LayerSet(layers=[layer], legends=[Legend(layer_id, title, "", stops)], label=label, visible=visible,
                    bounds=bounds)


@register("tunnel_zone")
def tunnel_zone(ds: Any, *, layer_id: str = "tunnel_zone", label: str = "Metro protection zone",
                visible: bool = True) -> LayerSet:
    """The protection zone of every line: ``protection_m`` beyond the outer edge, from the segment chords."""
    import geopandas as gpd
    import shapely
    from shapely import linestrings

    from gis.crs import WGS84, WORKING_CRS

    _need(ds, ("lon0", "lat0", "lon1", "lat1", "diameter_m", "line"), "tunnel_zone")
    prot = float(ds.attrs.get("protection_m", 50.0))
    coords = np.stack([np.column_stack([ds["lon0"].values, ds["lat0"].values]),
                       np.column_stack([ds["lon1"].values, ds["lat1"].values])], axis=1)
    g = gpd.GeoDataFrame({"line": ds["line"].values, "r": ds["diameter_m"].values / 2 + prot},
                         geometry=linestrings(coords), crs=WGS84).to_crs(ds.attrs.get("crs") or WORKING_CRS)
    polys = []
    for ln, part in g.groupby("line", sort=False):
        merged = shapely.line_merge(part.geometry.union_all())
        poly = merged.buffer(float(part["r"].max()), cap_style="round").simplify(2.0)
        zone = gpd.GeoSeries([poly], crs=g.crs).to_crs(WGS84)
        for p in getattr(zone.iloc[0], "geoms", [zone.iloc[0]]):
            rings = [np.round(np.asarray(p.exterior.coords)[:, :2], 6).tolist(),
                     *(np.round(np.asarray(r.coords)[:, :2], 6).tolist() for r in p.interiors)]
            polys.append({"polygon": rings, "tooltip": f"Line {html.escape(str(ln))}: protection zone, "
                                                       f"{prot:g} m beyond the tunnel's outer edge"})
    layer = {"@@type": "PolygonLayer", "id": layer_id, "data": polys, "getPolygon": "@@=polygon",
             "getFillColor": list(ZONE_COLOUR), "getLineColor": [0, 120, 210, 140], "stroked": True,
             "filled": True, "lineWidthUnits": "pixels", "getLineWidth": 1, "pickable": True}
    legend = Legend(layer_id, "Protection zone", "", [(f"{prot:g} m beyond the outer edge", ZONE_COLOUR)])
    return LayerSet(layers=[layer], legends=[legend], label=label, visible=visible, bounds=_source_bounds(ds))


@register("tunnel_sources")
def tunnel_sources(ds: Any, *, layer_id: str = "tunnel_sources", label: str = "Construction sources",
                   visible: bool = True) -> LayerSet:
    """Construction sources by type, with a ring at each source's safe distance (plan view)."""
    _need(ds, ("lon", "lat", "source_type", "safe_distance_m"), "tunnel_sources")
    pts, rings = [], []
    for i in range(ds.sizes["source"]):
        typ = str(ds["source_type"].values[i])
        c = list(SOURCE_COLOURS.get(typ, (0, 0, 0, 255)))
        safe = float(ds["safe_distance_m"].values[i])
        q = float(ds["max_charge_kg"].values[i]) if "max_charge_kg" in ds else math.nan
        tip = (f"<b>{html.escape(str(ds['source_id'].values[i]))}</b> ({html.escape(typ)})<br/>"
               f"PPV at the nearest lining {float(ds['ppv_max_cm_s'].values[i]):.3g} cm/s "
               f"at {float(ds['min_distance_m'].values[i]):.1f} m<br/>limit "
               f"{float(ds['source_limit_cm_s'].values[i]):.3g} cm/s; safe distance {safe:.1f} m"
               + (f"<br/>max charge per delay {q:.3g} kg" if math.isfinite(q) else ""))
        p = [round(float(ds["lon"].values[i]), 7), round(float(ds["lat"].values[i]), 7)]
        pts.append({"p": p, "c": c, "tooltip": tip})
        if math.isfinite(safe) and safe > 0:
            rings.append({"p": p, "r": safe, "c": c[:3] + [200]})
    layers = [{"@@type": "ScatterplotLayer", "id": f"{layer_id}_safe", "data": rings, "getPosition": "@@=p",
               "getRadius": "@@=r", "radiusUnits": "meters", "stroked": True, "filled": False,
               "getLineColor": "@@=c", "lineWidthUnits": "pixels", "getLineWidth": 2, "pickable": False},
              {"@@type": "ScatterplotLayer", "id": layer_id, "data": pts, "getPosition": "@@=p",
               "getFillColor": "@@=c", "getLineColor": [255, 255, 255, 255], "stroked": True,
               "radiusUnits": "pixels", "getRadius": 7, "lineWidthUnits": "pixels", "getLineWidth": 1.5,
               "pickable": True, "autoHighlight": True}]
    present = sorted(set(map(str, ds["source_type"].values)))
    legend = Legend(layer_id, "Sources (ring: safe distance)", "",
                    [(t, SOURCE_COLOURS.get(t, (0, 0, 0, 255))) for t in present])
    return LayerSet(layers=layers, legends=[legend], label=label, visible=visible, bounds=_source_bounds(ds))


def read_events(events: Any) -> list[dict]:
    """Point features of a DAS events GeoJSON (path or dict): ``[{"p", "class", "c", "tooltip"}, ...]``."""
    fc = json.loads(Path(events).read_text(encoding="utf-8")) if isinstance(events, (str, Path)) else events
    if not isinstance(fc, dict) or fc.get("type") != "FeatureCollection":
        raise ValidationError(f"events = {str(events)[:80]!r}: need a GeoJSON FeatureCollection of Points")
    out = []
    for i, f in enumerate(fc.get("features", [])):
        geom, props = f.get("geometry") or {}, f.get("properties") or {}
        if geom.get("type") != "Point":
            raise ValidationError(f"events feature {i}: geometry {geom.get('type')!r}: need a Point")
        cls = str(props.get("class") or props.get("event_class") or "unknown")
        bits = [f"<b>{html.escape(cls)}</b>"]
        for key, fmt in (("confidence", "{:.2f}"), ("chainage_m", "{:,.0f} m"), ("line", "{}")):
            if props.get(key) is not None:
                bits.append(f"{key}: {html.escape(fmt.format(props[key]))}")
        t = next((props[k] for k in ("time", "t_start", "onset_s") if props.get(k) is not None), None)
        if t is not None:
            bits.append(f"time: {html.escape(str(t))}" + (" s" if isinstance(t, (int, float)) else ""))
        out.append({"p": [float(v) for v in geom["coordinates"][:2]], "class": cls,
                    "c": list(EVENT_COLOURS.get(cls, EVENT_COLOURS["unknown"])), "tooltip": "<br/>".join(bits)})
    return out


@register("tunnel_das_events")
def tunnel_das_events(events: Any, *, layer_id: str = "tunnel_das_events", label: str = "DAS events",
                      visible: bool = True) -> LayerSet:
    """Detected DAS events (a GeoJSON of Points with ``class``) as diamonds-like dots coloured by class."""
    rows = read_events(events)
    layer = {"@@type": "ScatterplotLayer", "id": layer_id, "data": rows, "getPosition": "@@=p",
             "getFillColor": "@@=c", "getLineColor": [255, 255, 0, 255], "stroked": True, "radiusUnits": "pixels",
             "getRadius": 9, "lineWidthUnits": "pixels", "getLineWidth": 2.5, "pickable": True,
             "autoHighlight": True}
    present = sorted({r["class"] for r in rows})
    legend = Legend(layer_id, "DAS events", "", [(c, EVENT_COLOURS.get(c, EVENT_COLOURS["unknown"])) for c in present])
    bounds = None
    if rows:
        xy = np.array([r["p"] for r in rows])
        bounds = (float(xy[:, 0].min()), float(xy[:, 1].min()), float(xy[:, 0].max()), float(xy[:, 1].max()))
    return LayerSet(layers=[layer], legends=[legend] if rows else [], label=label, visible=visible, bounds=bounds)


def tunnel_layers(ds: Any, *, warp: Any = None, max_px: int | None = None, events: Any = None) -> list[LayerSet]:
    """Every layer set of a tunnel forecast, top first: DAS events (when given), sources, segments, zone.

    ``events``: a DAS events GeoJSON (path or dict); default: the dataset's attr ``events_geojson`` when that
    file exists. ``warp`` and ``max_px`` are unused (vector layers only).
    """
    sets = []
    if events is None and ds.attrs.get("events_geojson") and Path(ds.attrs["events_geojson"]).exists():
        events = ds.attrs["events_geojson"]
    if events is not None:
        sets.append(build("tunnel_das_events", events))
    if ds.sizes.get("source", 0):
        sets.append(build("tunnel_sources", ds))
    sets.append(build("tunnel_segments", ds))
    sets.append(build("tunnel_zone", ds))
    return sets
