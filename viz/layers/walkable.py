"""Kind ``walkable``: a pedestrian simulation's place — walkable area, walls, exits open or closed, density.

Everything comes in lon/lat (WGS84) shapely geometries, so the layer knows
nothing of the model: the walkable area (holes are obstacles) as a pale
``PolygonLayer``, walls and pillars (polygons filled dark, lines as paths),
exits as thick ``PathLayer`` segments, green while open and red once closed,
and optionally the run's largest local density as cells coloured on
:data:`DENSITY_STOPS` (P/m²; the congestion threshold of 4 P/m² dark orange).

With ``closed_at_s`` (exit id → time it closed) and the slider's
``times_s``, the exits change colour on the time slider (one data patch per
frame); without them the layer is static.
"""

from __future__ import annotations

import html

import numpy as np

from twin.errors import ValidationError
from viz.layers import register
from viz.scene import LayerSet, Legend

AREA_FILL = (238, 232, 214, 210)
AREA_LINE = (120, 110, 90, 255)
WALL = (70, 70, 70, 255)
OPEN = (30, 160, 60, 255)
CLOSED = (215, 40, 40, 255)
#: Density colours, P/m² (Weidmann's maximum flow near 1.75, the congestion threshold 4, standstill ~5.4).
DENSITY_STOPS = ((0.5, (254, 227, 145, 170)), (1.0, (254, 196, 79, 190)), (2.0, (254, 153, 41, 210)),
                 (4.0, (204, 76, 2, 230)), (6.0, (120, 30, 4, 245)))


def _rings(poly) -> list:
    def ring(r):
        return [[round(float(x), 8), round(float(y), 8)] for x, y in np.asarray(r.coords)[:, :2]]

    return [ring(poly.exterior), *(ring(i) for i in poly.interiors)]


def _polygons(geom) -> list:
    if geom is None or geom.is_empty:
        return []
    if geom.geom_type == "Polygon":
        return [geom]
    if hasattr(geom, "geoms"):
        return [p for g in geom.geoms for p in _polygons(g)]
    return []


def _check_lonlat(geom, what: str) -> None:
    if geom is None or geom.is_empty:
        return
    w, s, e, n = geom.bounds
    if not (-180 <= w <= e <= 180 and -90 <= s <= n <= 90):
        raise ValidationError(f"{what}: bounds {tuple(round(v, 3) for v in geom.bounds)} are not lon/lat "
                              "degrees (reproject to EPSG:4326 first)")


def density_colour(d: float) -> list[int]:
    """RGBA of a density (P/m²) on :data:`DENSITY_STOPS` (the colour of the highest stop at or below it)."""
    c = DENSITY_STOPS[0][1]
    for v, col in DENSITY_STOPS:
        if d >= v:
            c = col
    return list(c)


def _exit_rows(exits: dict, widths: dict, closed_at: dict, t: float | None) -> list[dict]:
    rows = []
    for eid, line in exits.items():
        shut = eid in closed_at and (t is None or t >= closed_at[eid])
        state = f"closed at {closed_at[eid]:.0f} s" if eid in closed_at else "open"
        if eid in closed_at and t is not None and not shut:
            state = f"open (closes at {closed_at[eid]:.0f} s)"
        w = widths.get(eid)
        tip = f"<b>Exit {html.escape(str(eid))}</b>" + (f"<br/>{w:.1f} m wide" if w else "") + \
            f"<br/>{html.escape(state)}"
        rows.append({"path": [[round(float(x), 8), round(float(y), 8)] for x, y in np.asarray(line.coords)[:, :2]],
                     "c": list(CLOSED if shut else OPEN), "tooltip": tip})
    return rows


@register("walkable")
def walkable(area, *, exits: dict, walls=(), exit_widths_m: dict | None = None, closed_at_s: dict | None = None,
             times_s=None, density=None, density_cell_m: float | None = None, layer_id: str = "walkable",
             label: str = "Walkable area", visible: bool = True) -> LayerSet:
    """The place of a pedestrian simulation as map layers.

    Parameters
    ----------
    area : shapely Polygon or MultiPolygon
        The walkable area, lon/lat degrees.
    exits : dict of str to LineString
        Exit segments by id, lon/lat.
    walls : sequence of shapely geometries
        Internal walls and pillars, lon/lat (polygons filled, lines drawn).
    exit_widths_m : dict, optional
        Exit id → width in metres (tooltip).
    closed_at_s : dict, optional
        Exit id → time it closed, s (red from then on; red throughout without ``times_s``).
    times_s : array, optional
        The slider's frame times, s: the exits get one colour patch per frame.
    density : tuple (polygons, values), optional
        Cells as lon/lat shapely polygons and their density, P/m² (cells under
        the first stop, 0.5 P/m², and NaN are not drawn).
    density_cell_m : float, optional
        Cell side, for the legend.
    layer_id, label, visible
        Id prefix of the layers, name of the toggle, initial state.

    Returns
    -------
    LayerSet
        Area, density cells, walls, exits (bottom to top); legends for exits and density; bounds of the area.

    Raises
    ------
    ValidationError
        Geometry not in lon/lat, an empty area, no exits, a closing time for an unknown exit,
        density cells and values of different lengths.
    """
    _check_lonlat(area, "area")
    polys = _polygons(area)
    if not polys:
        raise ValidationError("area: give the walkable area as a non-empty (Multi)Polygon in lon/lat")
    if not exits:
        raise ValidationError("exits: give at least one exit segment (id -> LineString)")
    closed_at = dict(closed_at_s or {})
    unknown = sorted(set(closed_at) - set(exits))
    if unknown:
        raise ValidationError(f"closed_at_s: exit(s) {unknown} are not among the exits {sorted(exits)}")
    widths = dict(exit_widths_m or {})
    layers: list[dict] = [{
        "@@type": "PolygonLayer", "id": f"{layer_id}_area", "data": [{"polygon": _rings(p)} for p in polys],
        "getPolygon": "@@=polygon", "getFillColor": list(AREA_FILL), "getLineColor": list(AREA_LINE),
        "stroked": True, "filled": True, "lineWidthUnits": "pixels", "getLineWidth": 1, "pickable": False,
    }]
    legends = [Legend(f"{layer_id}_exits", "Exits", "", [("open", OPEN), ("closed", CLOSED)])]
    if density is not None:
        cells, values = density
        values = np.asarray(values, dtype=float).ravel()
        if len(cells) != values.size:
            raise ValidationError(f"density: {len(cells)} cells for {values.size} values")
        rows = [{"polygon": _rings(c)[0], "c": density_colour(v),
                 "tooltip": f"largest density {v:.2f} P/m²"}
                for c, v in zip(cells, values, strict=True) if np.isfinite(v) and v >= DENSITY_STOPS[0][0]]
        layers.append({"@@type": "PolygonLayer", "id": f"{layer_id}_density", "data": rows,
                       "getPolygon": "@@=polygon", "getFillColor": "@@=c", "stroked": False, "filled": True,
                       "pickable": True})
        cell = f", {density_cell_m:g} m cells" if density_cell_m else ""
        legends.append(Legend(f"{layer_id}_density", f"Largest local density{cell}", "P/m²",
                              [(v, c) for v, c in DENSITY_STOPS]))
    solid = [p for w in walls for p in _polygons(w)]
    lines = [w for w in walls if w.geom_type in ("LineString", "MultiLineString")]
    for w in [*solid, *lines]:
        _check_lonlat(w, "walls")
    if solid:
        layers.append({"@@type": "PolygonLayer", "id": f"{layer_id}_walls", "data": [{"polygon": _rings(p)}
                                                                                    for p in solid],
                       "getPolygon": "@@=polygon", "getFillColor": list(WALL), "stroked": False, "filled": True})
    if lines:
        paths = [{"path": [[round(float(x), 8), round(float(y), 8)] for x, y in np.asarray(seg.coords)[:, :2]]}
                 for w in lines for seg in getattr(w, "geoms", [w])]
        layers.append({"@@type": "PathLayer", "id": f"{layer_id}_wall_lines", "data": paths, "getPath": "@@=path",
                       "getColor": list(WALL), "widthUnits": "meters", "getWidth": 0.25, "widthMinPixels": 1.5})
    for eid, line in exits.items():
        _check_lonlat(line, f"exit {eid!r}")
    frames, t = {}, None
    if times_s is not None and closed_at:
        from viz.layers.movers import check_times, frame_label

        t = check_times(times_s, len(np.asarray(times_s).ravel()), what="the exits' frames")
        frames[f"{layer_id}_exits"] = [{"data": _exit_rows(exits, widths, closed_at, v)} for v in t]
    first = None if t is None else t[0]
    layers.append({"@@type": "PathLayer", "id": f"{layer_id}_exits", "data": _exit_rows(exits, widths, closed_at,
                                                                                        first),
                   "getPath": "@@=path", "getColor": "@@=c", "widthUnits": "meters", "getWidth": 0.8,
                   "widthMinPixels": 4, "capRounded": True, "pickable": True, "autoHighlight": True})
    w, s, e, n = area.bounds
    return LayerSet(layers=layers, legends=legends, label=label, visible=visible,
                    times_s=t, labels=None if t is None else [frame_label(v) for v in t], frames=frames,
                    bounds=(float(w), float(s), float(e), float(n)))
