"""Kind ``fire_floors``: a tower fire run as storey slabs coloured by tenability on the time slider.

The numbers are a fire run's per-storey series (``fire.nc`` of
:func:`physics.fire_sim.simulate_fire`), drawn two ways, as the building
evacuation is (:mod:`viz.layers.building_evac`, geometry in
:mod:`viz.layers._tower`):

* the tower as extruded storey slabs at their elevations (footprint: the
  dataset's ``footprint`` attr, else a square of ``floor_area_m2`` centred
  on attrs ``lon``/``lat``), seen in 3-D on the pitched view of
  :func:`map_view`;
* the floor strip: one flat band per storey east of the footprint, ground
  storey southmost, so the page reads from straight above too.

Each storey is coloured by its ``floor_status`` at the frame's time (clear
grey, smoke amber, untenable dark red) or flame orange once it burns
(``ignition_s`` ≤ t; darker flame red once its route is untenable too);
refuge floors are outlined blue. One data patch per
frame. Hover a storey for its label (L = index + 1), upper-layer
temperature, visibility, FED (asphyxiant, heat), ASET, the evacuation's
RSET and margin when the dataset carries them (``rset_s``, ``margin_s``,
``people_caught`` per storey, added by the evacuation coupling), and its
events so far. Beside the strip, one column per event kind (ignition and
facade spread, detector, sprinkler, flashover) marks each storey's first
event of that kind once its time has passed; the origin marker beside the
burning storey's facade lists the run's timeline on hover.
"""

from __future__ import annotations

import html
import json
import math
from collections import defaultdict

import numpy as np

from twin.errors import ValidationError
from viz.layers import register
from viz.layers._tower import M_PER_DEG, Tower, frame_indices, square_footprint, tower
from viz.scene import LayerSet, Legend

#: Fill colours of a storey by ``floor_status`` (0 clear, 1 smoke, 2 untenable), and once it burns (opaque: no
#: ghost of the slabs inside).
CLEAR = (190, 190, 190, 255)
SMOKE = (245, 185, 45, 255)
UNTENABLE = (125, 0, 25, 255)
BURNING = (255, 100, 0, 255)
#: A burning storey whose escape route is untenable too (the fire floor's ASET passed): darker flame red.
BURNING_UNTENABLE = (215, 25, 0, 255)
STATUS_COLOURS = (CLEAR, SMOKE, UNTENABLE)
#: Outline of refuge floors (strip band and slab rings).
REFUGE_LINE = (40, 110, 235, 255)
EDGE = (80, 80, 80, 200)
#: Marker columns beside the strip: (title, event kinds, colour).
EVENT_COLUMNS = (("ignition / facade spread", ("ignition", "spread"), (255, 60, 0, 255)),
                 ("detector", ("detector",), (150, 70, 210, 255)),
                 ("sprinkler", ("sprinkler",), (0, 165, 185, 255)),
                 ("flashover", ("flashover",), (255, 215, 0, 255)))
EVENT_NAMES = {"ignition": "ignition", "detector": "detector", "sprinkler": "sprinkler", "flashover": "flashover",
               "glazing_broken": "glazing broken", "spread": "facade spread", "floor_untenable": "floor untenable",
               "burnout": "burnout"}
MAX_FRAMES = 60
#: Visibility the fire run reports where there is no smoke (physics.fire_sim_tenability.VISIBILITY_CAP_M).
VISIBILITY_CAP_M = 100.0
#: Where a dataset without a location is drawn (agents.building's demo site, Futian).
DEMO_LON, DEMO_LAT = 114.0505, 22.5367
PITCH, BEARING = 50.0, -20.0
#: Ground metres per pixel at zoom 0 on the equator (Web Mercator, 512-px tiles as deck.gl counts them).
WEB_MERCATOR_M_PER_PX_Z0 = 78_271.517
REQUIRED = ("floor_status", "storey_base_m", "storey_height_m")
#: Storey events listed in a slab's hover, at most.
MAX_EVENT_LINES = 6


def status_colours(status: np.ndarray, burning: np.ndarray) -> np.ndarray:
    """RGBA (S, 4) of storeys with ``floor_status`` ``status`` (0/1/2); ``burning`` storeys flame orange.

    A burning storey whose route is untenable (status 2) turns a darker flame red, so the fire floor's own
    ASET shows on the slider (it burns from the first frame, and would otherwise stay one colour).
    """
    s = np.clip(np.asarray(status, dtype=int), 0, 2)
    out = np.asarray(STATUS_COLOURS, dtype=int)[s]
    burning = np.asarray(burning, dtype=bool)
    out[burning] = BURNING
    out[burning & (s == 2)] = BURNING_UNTENABLE
    return out


def fire_legend_stops(refuge: bool = True) -> list:
    """Categorical legend stops of the storey colours (and the refuge outline when the tower has refuge floors)."""
    stops = [("clear", CLEAR), ("smoke: visibility < 30 m or T > 60 °C on the route", SMOKE),
             ("untenable (ISO 13571, visibility, radiant heat)", UNTENABLE), ("burning", BURNING),
             ("burning, escape route untenable", BURNING_UNTENABLE)]
    return stops + [("refuge floor (blue outline)", REFUGE_LINE)] if refuge else stops


def time_label(t: float) -> str:
    """``+1 h 05 min 30 s`` / ``+12 min 30 s`` / ``+40 s``."""
    s = int(round(t))
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    if h:
        return f"+{h} h {m:02d} min {s:02d} s"
    return f"+{m} min {s:02d} s" if m else f"+{s} s"


def map_view(ds, view: dict, *, screen_px: float = 700.0) -> dict:
    """The view a fire run's map opens on: pitched 50°, turned 20°, zoomed to the tower's height.

    ``view`` is the straight-down view of the layers' bounds; the zoom puts
    1.8 × the tower's height (at least 60 m) across ``screen_px`` pixels
    and the centre moves 0.3 × the height up the view's bearing, so a
    30-storey and a 115-storey tower both stand whole mid-page.
    """
    top = float((np.asarray(ds["storey_base_m"].values, float) + np.asarray(ds["storey_height_m"].values, float))
                .max()) if "storey_base_m" in ds and "storey_height_m" in ds else 60.0
    m_per_px = 1.8 * max(top, 60.0) / screen_px
    lat = view["latitude"]
    zoom = math.log2(WEB_MERCATOR_M_PER_PX_Z0 * math.cos(math.radians(lat)) / m_per_px)
    # the tower rises up the screen from its footprint: look a third of its height further "up" the bearing
    d, b = 0.3 * top, math.radians(BEARING)
    lon = view["longitude"] + d * math.sin(b) / (M_PER_DEG * math.cos(math.radians(lat)))
    lat = lat + d * math.cos(b) / M_PER_DEG
    return {**view, "longitude": round(lon, 7), "latitude": round(lat, 7), "zoom": round(min(zoom, 20.0), 2),
            "pitch": PITCH, "bearing": BEARING}


# ------------------------------------------------------------------------------------------ inputs
def _check(ds) -> None:
    for name in REQUIRED:
        if name not in ds:
            raise ValidationError(f"the dataset has no {name!r} variable: is it a fire run's fire.nc "
                                  "(physics.fire_sim.simulate_fire(...).dataset)?")
    dims = tuple(ds["floor_status"].dims)
    if dims != ("time", "storey"):
        raise ValidationError(f"floor_status: expected dims ('time', 'storey'), got {dims}")
    n = ds.sizes["storey"]
    for name in ("storey_base_m", "storey_height_m"):
        if ds[name].dims != ("storey",):
            raise ValidationError(f"{name}: expected dims ('storey',), got {ds[name].dims}")
    if n < 1 or ds.sizes["time"] < 1:
        raise ValidationError(f"floor_status: {ds.sizes['time']} times × {n} storeys: the run recorded nothing")
    h = np.asarray(ds["storey_height_m"].values, dtype=float)
    if not (np.isfinite(h).all() and (h > 0).all()):
        raise ValidationError(f"storey_height_m: every storey needs a positive height, got {h[~(h > 0)][:3]}")


def _attr_float(ds, name: str) -> float:
    try:
        v = float(ds.attrs[name])
    except (KeyError, TypeError, ValueError):
        return float("nan")
    return v


def _footprint(ds) -> tuple[np.ndarray, str]:
    """The footprint ring (lon, lat) and a note ("" or where it was placed)."""
    if "footprint" in ds.attrs:
        try:
            fp = np.asarray(json.loads(ds.attrs["footprint"]), dtype=float)
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"attrs footprint: not a JSON list of [lon, lat] ({exc})") from None
        if fp.ndim != 2 or fp.shape[0] < 3 or fp.shape[1] != 2:
            raise ValidationError(f"attrs footprint: expected at least 3 (lon, lat) points, got shape {fp.shape}")
        return fp, ""
    area = _attr_float(ds, "floor_area_m2")
    if not (math.isfinite(area) and area > 0):
        raise ValidationError(f"attrs floor_area_m2={ds.attrs.get('floor_area_m2')!r}: the fire dataset needs the "
                              "floor plate's area (m²) to draw the footprint")
    lon, lat = _attr_float(ds, "lon"), _attr_float(ds, "lat")
    if math.isfinite(lon) and math.isfinite(lat):
        return square_footprint(lon, lat, area), ""
    return square_footprint(DEMO_LON, DEMO_LAT, area), " (no location in the building file: drawn at the demo site)"


def _plate_scale(ds) -> np.ndarray:
    """(S,) side scale of each storey's slab: √(plate / the footprint's area), from ``storey_plate_m2`` if given.

    A tapering tower (Ping An: 3136 m² at L1 to 1444 m² at L115) narrows up the slabs; without the
    variable every slab is the footprint.
    """
    n = ds.sizes["storey"]
    area = _attr_float(ds, "floor_area_m2")
    if "storey_plate_m2" not in ds or "footprint" in ds.attrs or not (math.isfinite(area) and area > 0):
        return np.ones(n)
    plate = np.asarray(ds["storey_plate_m2"].values, dtype=float)
    return np.where(np.isfinite(plate) & (plate > 0), np.sqrt(np.clip(plate, 0, None) / area), 1.0)


def _events(ds) -> list[dict]:
    text = ds.attrs.get("events")
    if text is None or text == "":
        return []
    try:
        ev = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"attrs events: not JSON ({exc}); expected the run's event list") from None
    if not isinstance(ev, list):
        raise ValidationError(f"attrs events: expected a JSON list, got {type(ev).__name__}")
    return sorted((e for e in ev if isinstance(e, dict) and "time_s" in e), key=lambda e: float(e["time_s"]))


def _storey_var(ds, name: str, fill: float = float("nan")) -> np.ndarray:
    n = ds.sizes["storey"]
    return np.asarray(ds[name].values, dtype=float) if name in ds else np.full(n, fill)


def _series(ds, name: str) -> np.ndarray | None:
    return np.asarray(ds[name].values, dtype=float) if name in ds else None


# ------------------------------------------------------------------------------------------ text
def _event_line(e: dict, with_storey: bool = False) -> str:
    kind = EVENT_NAMES.get(str(e.get("kind")), str(e.get("kind")))
    where = []
    if with_storey and e.get("storey") is not None:
        where.append(f"L{int(e['storey']) + 1}")
    if e.get("compartment"):
        where.append(_room(str(e["compartment"])))
    if e.get("device"):
        where.append(str(e["device"]))
    tail = f" ({', '.join(where)})" if where else ""
    return f"{time_label(float(e['time_s']))} {kind}{tail}"


def _room(name: str) -> str:
    """A compartment's name without the network's ``"<storey index>/"`` prefix (the storey is said as L)."""
    head, sep, tail = name.partition("/")
    return tail if sep and head.isdigit() else name


def _fmt_vis(v: float) -> str:
    """Visibility text; the fire run caps it at 100 m (physics.fire_sim_tenability.VISIBILITY_CAP_M): no smoke."""
    if not math.isfinite(v) or v >= VISIBILITY_CAP_M:
        return f"≥ {VISIBILITY_CAP_M:.0f} m (no smoke)"
    return f"{v:.1f} m" if v < 10 else f"{v:.0f} m"


class _Tips:
    """Hover texts of storeys (per frame) and of the origin marker."""

    def __init__(self, ds, events: list[dict]) -> None:
        self.base = np.asarray(ds["storey_base_m"].values, dtype=float)
        self.refuge = np.asarray(ds["refuge"].values).astype(bool) if "refuge" in ds else \
            np.zeros(ds.sizes["storey"], bool)
        self.aset = _storey_var(ds, "aset_s")
        self.ign = _storey_var(ds, "ignition_s")
        self.rset = _storey_var(ds, "rset_s") if "rset_s" in ds else None
        self.margin = _storey_var(ds, "margin_s") if "margin_s" in ds else None
        self.caught = _storey_var(ds, "people_caught") if "people_caught" in ds else None
        self.t_up = _series(ds, "floor_temperature_max")
        self.vis = _series(ds, "floor_visibility_min")
        self.fed_a = _series(ds, "floor_fed_asphyxiant_max")
        self.fed_h = _series(ds, "floor_fed_heat_max")
        self.duration = _attr_float(ds, "duration_s")
        self.origin = ds.attrs.get("origin_storey")
        self.by_storey: dict[int, list[dict]] = defaultdict(list)
        for e in events:
            if e.get("storey") is not None:
                self.by_storey[int(e["storey"])].append(e)

    def storey(self, f: int, i: int, t: float, status: int) -> str:
        burning = math.isfinite(self.ign[f]) and self.ign[f] <= t
        state = "burning" if burning else ("clear", "smoke", "untenable")[min(max(status, 0), 2)]
        notes = []
        if self.origin is not None and int(self.origin) == f:
            notes.append("fire origin")
        if self.refuge[f]:
            notes.append("refuge floor")
        head = f"<b>L{f + 1}</b> ({self.base[f]:.0f} m)" + (" — " + ", ".join(notes) if notes else "")
        lines = [f"{time_label(t)}: {state}"]
        if self.t_up is not None:
            lines.append(f"upper layer T max {self.t_up[i, f] - 273.15:.0f} °C")
        if self.vis is not None:
            lines.append(f"visibility {_fmt_vis(self.vis[i, f])}")
        if self.fed_a is not None or self.fed_h is not None:
            a = f"{self.fed_a[i, f]:.2f}" if self.fed_a is not None else "—"
            h = f"{self.fed_h[i, f]:.2f}" if self.fed_h is not None else "—"
            lines.append(f"FED asphyxiant {a}, heat {h}")
        if math.isfinite(self.aset[f]):
            lines.append(f"ASET {self.aset[f]:.0f} s")
        else:
            end = f" ({self.duration:.0f} s)" if math.isfinite(self.duration) else ""
            lines.append(f"ASET: tenable to the end of the run{end}")
        lines += self._evacuation(f)
        if math.isfinite(self.ign[f]):
            lines.append(f"{'burning since' if burning else 'catches fire at'} {time_label(self.ign[f])}")
        lines += self._storey_events(f, t)
        return "<br/>".join([head, *(html.escape(v, quote=False) for v in lines)])

    def _evacuation(self, f: int) -> list[str]:
        out = []
        if self.rset is not None and math.isfinite(self.rset[f]):
            out.append(f"RSET {self.rset[f]:.0f} s")
        if self.margin is not None and math.isfinite(self.margin[f]):
            caught = ""
            if self.caught is not None and math.isfinite(self.caught[f]) and self.caught[f] > 0:
                caught = f", {int(self.caught[f])} people caught"
            out.append(f"margin ASET − RSET {self.margin[f]:+.0f} s" + (" (unsafe)" if self.margin[f] < 0 else "")
                       + caught)
        return out

    def _storey_events(self, f: int, t: float) -> list[str]:
        done = [e for e in self.by_storey.get(f, []) if float(e["time_s"]) <= t + 1e-9]
        lines = [_event_line(e) for e in done[:MAX_EVENT_LINES]]
        if len(done) > MAX_EVENT_LINES:
            lines.append(f"… and {len(done) - MAX_EVENT_LINES} more events")
        return lines

    def origin_tip(self, ds, events: list[dict], max_lines: int = 14) -> str:
        comp = _room(str(ds.attrs.get("origin_compartment") or ""))
        f = int(self.origin) if self.origin is not None else None
        head = "<b>Fire origin</b>" + (f": L{f + 1}" if f is not None else "") + (f", {comp}" if comp else "")
        out = []
        sets = [f"{k} {ds.attrs[k]}" for k in ("growth", "sprinklers", "season") if k in ds.attrs]
        if sets:
            out.append(", ".join(sets))
        main = [e for e in events if e.get("kind") != "floor_untenable"]
        out += [_event_line(e, with_storey=True) for e in main[:max_lines]]
        if len(main) > max_lines:
            out.append(f"… and {len(main) - max_lines} more events")
        unt = [e for e in events if e.get("kind") == "floor_untenable"]
        if unt:
            first = unt[0]
            where = f"L{int(first['storey']) + 1} " if first.get("storey") is not None else ""
            out.append(f"{len(unt)} storeys untenable, the first {where}at {time_label(float(first['time_s']))}")
        return "<br/>".join([head, *(html.escape(v, quote=False) for v in out)])


# ------------------------------------------------------------------------------------------ layers
def _event_markers(geo: Tower, events: list[dict], col_w: float) -> list[tuple[float, dict]]:
    """(time, row) of each storey's first event of each marker column, east of the strip."""
    first: dict[tuple[int, int], list[dict]] = defaultdict(list)
    n = len(geo.elevation_m)
    for e in events:
        if e.get("storey") is None or not 0 <= int(e["storey"]) < n:
            continue
        for k, (_, kinds, _) in enumerate(EVENT_COLUMNS):
            if e.get("kind") in kinds:
                first[(int(e["storey"]), k)].append(e)
    out = []
    for (f, k), evs in first.items():
        x = geo.strip_x1 + col_w * (0.9 + 1.2 * k)
        ya, yb = geo.band(f)
        lon, lat = geo.to_deg(x, 0.5 * (ya + yb))
        lines = [_event_line(e) for e in evs[:MAX_EVENT_LINES]]
        tip = f"<b>L{f + 1}: {html.escape(EVENT_COLUMNS[k][0])}</b><br/>" + \
            "<br/>".join(html.escape(v, quote=False) for v in lines)
        out.append((float(evs[0]["time_s"]), {"p": [round(float(lon), 7), round(float(lat), 7)],
                                              "c": list(EVENT_COLUMNS[k][2]), "tooltip": tip}))
    return sorted(out, key=lambda r: r[0])


def _refuge_rings(geo: Tower, refuge: np.ndarray, scale: np.ndarray) -> list[dict]:
    """Closed rings just outside the slab's base and top edge of every refuge storey (3-D outline)."""
    out = []
    for f in np.flatnonzero(refuge):
        ring = geo.scaled_ring(1.03 * scale[f])
        ring.append(ring[0])
        for z in (geo.elevation_m[f], geo.elevation_m[f] + geo.slab_extrusion(f)):
            out.append({"path": [[a, b, round(float(z), 2)] for a, b in ring],
                        "tooltip": f"<b>L{f + 1}</b> — refuge floor"})
    return out


def _origin_marker(geo: Tower, f: int, scale: float, tip: str) -> dict:
    """The origin marker: just south of the origin storey's facade, at its top."""
    y = scale * geo.fy.min() - max(0.15 * scale * geo.width_m, 3.0)
    lon, lat = geo.to_deg(0.5 * scale * (geo.fx.min() + geo.fx.max()), y)
    z = geo.elevation_m[f] + geo.slab_extrusion(f)  # its top edge: drawn pitched, the disc's centre reads level
    return {"p": [round(float(lon), 7), round(float(lat), 7), round(float(z), 2)], "tooltip": tip}


def _storey_rows(geo: Tower, tips: _Tips, status: np.ndarray, i: int, t: float,
                 scale: np.ndarray) -> tuple[list[dict], list[dict]]:
    """The slabs' and the strip's rows at frame ``i`` (time ``t``; ``status`` that frame's ``floor_status``)."""
    cols = status_colours(status, np.isfinite(tips.ign) & (tips.ign <= t + 1e-9))
    slabs, strip = [], []
    for f in range(len(status)):
        tip = tips.storey(f, i, t, int(status[f]))
        c = [int(v) for v in cols[f]]
        slabs.append({"polygon": geo.slab(f, scale[f]), "e": geo.slab_extrusion(f), "c": c, "tooltip": tip})
        ref = bool(tips.refuge[f])
        strip.append({"polygon": geo.strip[f], "c": c, "lc": list(REFUGE_LINE if ref else EDGE),
                      "lw": 3 if ref else 1, "tooltip": tip})
    return slabs, strip


def _storey_layers(layer_id: str, geo: Tower, tips: _Tips, status: np.ndarray, times: np.ndarray,
                   keep: list[int], scale: np.ndarray) -> tuple[list[dict], dict[str, list[dict]]]:
    """The floor strip's and the slabs' layers (rows of the first kept frame) and their patches per frame."""
    strip_id = f"{layer_id}_strip"
    slabs0, strip0 = _storey_rows(geo, tips, status[keep[0]], keep[0], float(times[keep[0]]), scale)
    layers = [
        {"@@type": "PolygonLayer", "id": strip_id, "data": strip0, "getPolygon": "@@=polygon",
         "getFillColor": "@@=c", "filled": True, "stroked": True, "getLineColor": "@@=lc",
         "lineWidthUnits": "pixels", "getLineWidth": "@@=lw", "pickable": True, "autoHighlight": True},
        {"@@type": "PolygonLayer", "id": layer_id, "data": slabs0, "getPolygon": "@@=polygon",
         "extruded": True, "getElevation": "@@=e", "getFillColor": "@@=c", "filled": True,
         "stroked": False, "wireframe": True, "getLineColor": [60, 60, 60, 160], "pickable": True,
         "autoHighlight": True, "material": False},
    ]
    frames: dict[str, list[dict]] = {strip_id: [{}], layer_id: [{}]}
    for i in keep[1:]:
        slabs, strip = _storey_rows(geo, tips, status[i], i, float(times[i]), scale)
        frames[layer_id].append({"data": slabs})
        frames[strip_id].append({"data": strip})
    return layers, frames


def _refuge_layer(refuge_id: str, geo: Tower, refuge: np.ndarray, scale: np.ndarray) -> list[dict]:
    """The refuge storeys' outline layer (none without refuge storeys)."""
    rows = _refuge_rings(geo, refuge, scale)
    if not rows:
        return []
    return [{"@@type": "PathLayer", "id": refuge_id, "data": rows, "getPath": "@@=path",
             "getColor": list(REFUGE_LINE), "widthUnits": "pixels", "getWidth": 3, "pickable": True}]


def _event_layer(events_id: str, markers: list[tuple[float, dict]], times: np.ndarray,
                 keep: list[int]) -> tuple[dict, list[dict], Legend]:
    """The event markers' layer (those passed at the first kept frame), its patch per frame and its legend."""
    def shown(i: int) -> list:
        return [r for tm, r in markers if tm <= float(times[i]) + 1e-9]

    layer = {"@@type": "ScatterplotLayer", "id": events_id, "data": shown(keep[0]),
             "getPosition": "@@=p", "getFillColor": "@@=c", "getLineColor": [255, 255, 255, 255],
             "stroked": True, "lineWidthUnits": "pixels", "getLineWidth": 1.5,
             "radiusUnits": "pixels", "getRadius": 6, "pickable": True, "autoHighlight": True}
    legend = Legend(events_id, "Fire events (columns beside the strip)", "",
                    [(title, colour) for title, _, colour in EVENT_COLUMNS])
    return layer, [{}] + [{"data": shown(i)} for i in keep[1:]], legend


def _origin_layer(origin_id: str, ds, geo: Tower, tips: _Tips, events: list[dict], scale: np.ndarray) -> list[dict]:
    """The fire origin's marker layer (none when the dataset names no origin storey within the tower)."""
    origin = ds.attrs.get("origin_storey")
    if origin is None or not 0 <= int(origin) < len(geo.elevation_m):
        return []
    f = int(origin)
    return [{"@@type": "ScatterplotLayer", "id": origin_id,
             "data": [_origin_marker(geo, f, scale[f], tips.origin_tip(ds, events))],
             "getPosition": "@@=p", "getFillColor": list(BURNING), "getLineColor": [255, 255, 255, 255],
             "stroked": True, "billboard": True, "lineWidthUnits": "pixels", "getLineWidth": 2,
             "radiusUnits": "pixels", "getRadius": 9, "pickable": True, "autoHighlight": True}]


@register("fire_floors")
def fire_floors(ds, *, layer_id: str = "fire_floors", label: str = "Fire: storeys by tenability",
                max_frames: int = MAX_FRAMES, visible: bool = True) -> LayerSet:
    """Storeys of a tower fire coloured by tenability, on the time slider.

    Parameters
    ----------
    ds : xarray.Dataset
        A fire run's ``fire.nc`` (:func:`physics.fire_sim.simulate_fire`):
        needs ``floor_status`` (time, storey), ``storey_base_m``,
        ``storey_height_m`` and attr ``floor_area_m2`` (or ``footprint``);
        uses, when there, ``storey_plate_m2`` (tapering slabs), ``floor_temperature_max``, ``floor_visibility_min``,
        ``floor_fed_asphyxiant_max``, ``floor_fed_heat_max``, ``refuge``,
        ``aset_s``, ``ignition_s``, ``rset_s``, ``margin_s``,
        ``people_caught`` and attrs ``lon``, ``lat``, ``origin_storey``,
        ``origin_compartment``, ``events``.
    layer_id : str
        Id of the slab layer; the others are ``{layer_id}_strip``,
        ``{layer_id}_refuge``, ``{layer_id}_events``, ``{layer_id}_origin``.
    max_frames : int
        Cap on the frames kept (evenly thinned, first and last kept).

    Returns
    -------
    LayerSet
        One frame per kept time (slabs, strip and event markers patched),
        the legends and the bounds of footprint, strip and markers.

    Raises
    ------
    ValidationError
        When a required variable or attr is missing or malformed (named).
    """
    _check(ds)
    footprint, where_note = _footprint(ds)
    times = np.asarray(ds["time"].values, dtype=float)
    keep = frame_indices(len(times), max(2, int(max_frames)))
    geo = tower(footprint, ds["storey_base_m"].values, ds["storey_height_m"].values)
    events = _events(ds)
    tips = _Tips(ds, events)
    scale = np.round(_plate_scale(ds), 4)
    layers, frames = _storey_layers(layer_id, geo, tips, np.asarray(ds["floor_status"].values), times, keep, scale)
    layers += _refuge_layer(f"{layer_id}_refuge", geo, tips.refuge, scale)
    legends = [Legend(layer_id, f"Storeys by tenability — {ds.attrs.get('building', 'building')}{where_note}", "",
                      fire_legend_stops(bool(tips.refuge.any())))]
    col_w = max(0.15 * geo.width_m, 4.0, 0.04 * geo.top_m())  # markers ~12 px apart at map_view's zoom
    markers = _event_markers(geo, events, col_w)
    x_right = geo.strip_x1
    if markers:
        events_id = f"{layer_id}_events"
        layer, frames[events_id], legend = _event_layer(events_id, markers, times, keep)
        layers.append(layer)
        legends.append(legend)
        x_right = geo.strip_x1 + col_w * (0.9 + 1.2 * len(EVENT_COLUMNS))
    layers += _origin_layer(f"{layer_id}_origin", ds, geo, tips, events, scale)
    t = [float(times[i]) for i in keep]
    return LayerSet(layers=layers, legends=legends, label=label, visible=visible, times_s=t,
                    labels=[time_label(v) for v in t], frames=frames, bounds=geo.bounds(x_right))

__all__ = ["BURNING", "BURNING_UNTENABLE", "CLEAR", "EVENT_COLUMNS", "REFUGE_LINE", "SMOKE", "STATUS_COLOURS", "UNTENABLE",
           "fire_floors", "fire_legend_stops", "map_view", "status_colours", "time_label"]
