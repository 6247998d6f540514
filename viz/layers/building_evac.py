"""Kind ``building_evac``: a building evacuation as stacked floor slabs and a floor strip on the time slider.

Two views of the same numbers (people still on each floor, i.e. not yet in a
stair, from :func:`agents.building_evac.simulate`):

* the tower as extruded floor slabs (deck.gl ``PolygonLayer``; each slab's
  footprint carries its floor's height as z, extruded by 85 % of the storey
  height), seen in 3-D when the page's view is pitched (the building run's
  map opens at 55°; drag with the right button or Ctrl to tilt);
* a "floor strip": one rectangle per floor laid flat on the ground east of
  the footprint, the ground floor southmost, each as tall (north-south) as
  its storey is high — readable from straight above, where the slabs show
  only the roof.

Beside the strip, one column per stair shows each flight (storey f down
to f-1, in the band between the two floors) coloured by its density in
P/m² (:data:`DENSITY_STOPS`: free flow below 0.54, maximum flow at 1.88,
standstill at 3.8 — the SFPE relations), so queues on the stairs show on
the slider too (when the dataset has ``people_on_flight``).

The floors are coloured by the people still on them (grey once a floor is clear, then
yellow to dark red with the people left) and change with the time slider
(one data patch per frame); hovering a floor shows its people, its RSET
(the time its last person entered a stair) and its ASET and margin when
given. Refuge floors are drawn blue while empty.
"""

from __future__ import annotations

import html
import json
import math

import numpy as np

from twin.errors import ValidationError
from viz.layers import register
from viz.layers._tower import frame_indices, tower
from viz.scene import LayerSet, Legend

#: Colours of a floor by the people still on it (stops in people; the top stop is the run's busiest floor).
CLEAR = (190, 190, 190, 235)
REFUGE = (110, 160, 230, 235)
RAMP_COLOURS = ((255, 230, 110, 240), (250, 160, 50, 245), (215, 60, 30, 250), (130, 0, 30, 255))
MAX_FRAMES = 60
#: Flight density colours (P/m²): SFPE free flow (< 0.54), maximum flow (1.88), standstill (3.8).
DENSITY_STOPS = ((0.0, (235, 240, 245, 200)), (0.54, (150, 200, 140, 230)), (1.88, (250, 170, 40, 245)),
                 (3.8, (170, 0, 40, 255)))


def density_colours(d: np.ndarray) -> np.ndarray:
    """RGBA (n, 4) of flight densities ``d`` (P/m²) on :data:`DENSITY_STOPS`."""
    x = np.array([v for v, _ in DENSITY_STOPS])
    cols = np.array([c for _, c in DENSITY_STOPS], dtype=float)
    d = np.nan_to_num(np.asarray(d, dtype=float))
    return np.round(np.stack([np.interp(d, x, cols[:, ch]) for ch in range(4)], axis=-1)).astype(int)


def floor_colours(people: np.ndarray, top: float, refuge: np.ndarray) -> np.ndarray:
    """RGBA (n, 4) of floors with ``people`` left; ``top`` people gets the ramp's last colour."""
    p = np.asarray(people, dtype=float)
    top = max(float(top), 1.0)
    stops = np.array([1.0, top / 3.0, 2.0 * top / 3.0, top]) if top > 1 else np.array([1.0, 1.0, 1.0, 1.0])
    cols = np.array(RAMP_COLOURS, dtype=float)
    out = np.empty((p.size, 4))
    for ch in range(4):
        out[:, ch] = np.interp(p, stops, cols[:, ch]) if top > 1 else cols[-1, ch]
    out[p <= 0] = CLEAR
    out[(p <= 0) & np.asarray(refuge, dtype=bool)] = REFUGE
    return np.round(out).astype(int)


def people_ramp(top: int) -> list:
    """Legend stops: clear, 1 person, ..., the busiest floor's people."""
    top = max(int(top), 1)
    stops = [(0, CLEAR), (1, RAMP_COLOURS[0])]
    if top >= 3:
        stops += [(round(top / 3.0), RAMP_COLOURS[1]), (round(2 * top / 3.0), RAMP_COLOURS[2])]
    if top > 1:
        stops.append((top, RAMP_COLOURS[3]))
    return stops


def _tooltip(f: int, elev: float, left: int, start: int, rset: float, aset: float, refuge: bool) -> str:
    lines = [f"people still on the floor: {left} of {start}"]
    if math.isfinite(rset):
        lines.append(f"floor cleared (RSET): {rset:.0f} s")
    if math.isfinite(aset):
        margin = rset - aset if math.isfinite(rset) else float("nan")
        m = f"{margin:+.0f} s" if math.isfinite(margin) else "—"
        lines.append(f"ASET {aset:.0f} s, RSET − ASET {m}" + (" (unsafe)" if margin > 0 else ""))
    head = f"<b>Floor {f}</b> ({elev:.0f} m)" + (" — refuge floor" if refuge else "")
    return "<br/>".join([head, *(html.escape(v, quote=False) for v in lines)])


@register("building_evac")
def building_evac(ds, *, layer_id: str = "building_evac", label: str = "Building: people per floor",
                  max_frames: int = MAX_FRAMES, visible: bool = True) -> LayerSet:
    """Floors of an evacuating building coloured by the people left, on the time slider.

    Parameters
    ----------
    ds : xarray.Dataset
        A building evacuation (:func:`agents.building_evac.simulate`): needs
        ``people_on_floor`` (time, floor), ``people_initial``, ``floor_elevation``,
        ``rset_floor``, ``aset``, ``refuge`` and attrs ``footprint`` (JSON
        list of lon/lat) and ``storey_heights_m``.
    max_frames : int
        Cap on the frames kept (evenly thinned, first and last kept).

    Returns
    -------
    LayerSet
        Strip (``{layer_id}_strip``), stair flights (``{layer_id}_flights``,
        when the dataset has ``people_on_flight``) and slabs (``{layer_id}``),
        one frame per kept time, the legends, and the bounds of all.
    """
    for name in ("people_on_floor", "people_initial", "floor_elevation", "rset_floor", "aset", "refuge"):
        if name not in ds:
            raise ValidationError(f"the dataset has no {name!r} variable: is it a building evacuation "
                                  "(agents.building_evac.simulate)?")
    try:
        footprint = np.asarray(json.loads(ds.attrs["footprint"]), dtype=float)
        heights = np.asarray(json.loads(ds.attrs["storey_heights_m"]), dtype=float)
    except (KeyError, ValueError, TypeError) as exc:
        raise ValidationError(f"building dataset attrs footprint/storey_heights_m missing or not JSON ({exc})") from None
    if footprint.ndim != 2 or footprint.shape[0] < 3 or footprint.shape[1] != 2:
        raise ValidationError(f"footprint: expected at least 3 (lon, lat) points, got shape {footprint.shape}")
    times = np.asarray(ds["time"].values, dtype=float)
    keep = frame_indices(len(times), max(2, int(max_frames)))
    people = np.asarray(ds["people_on_floor"].values)
    start = np.asarray(ds["people_initial"].values)
    elev = np.asarray(ds["floor_elevation"].values, dtype=float)
    rset = np.asarray(ds["rset_floor"].values, dtype=float)
    aset = np.asarray(ds["aset"].values, dtype=float)
    refuge = np.asarray(ds["refuge"].values).astype(bool)
    top = int(max(start.max(initial=0), 1))

    geo = tower(footprint, elev, heights)
    width, x1, y_base = geo.width_m, geo.strip_x1, geo.y_base

    stairs = json.loads(ds.attrs.get("stair_names", "[]"))
    has_flights = "people_on_flight" in ds and "flight_area" in ds and len(stairs) > 0
    col_w = max(0.15 * width, 4.0)
    flight_polys: dict[tuple[int, int], list] = {}
    if has_flights:
        for s_ in range(len(stairs)):
            xa = x1 + col_w * (0.4 + 1.2 * s_)
            for f in range(1, len(elev)):
                ya, yb = y_base + elev[f - 1], y_base + elev[f] - 0.15 * heights[f - 1]
                flight_polys[(f, s_)] = geo.box(xa, xa + col_w, ya, yb)
        on_flight = np.asarray(ds["people_on_flight"].values, dtype=float)
        area = np.asarray(ds["flight_area"].values, dtype=float)

    def flight_rows(i: int) -> list:
        dens = np.where(area > 0, on_flight[i] / np.where(area > 0, area, 1.0), 0.0)
        cols = density_colours(dens)
        out = []
        for (f, s_), poly in flight_polys.items():
            tip = (f"<b>{html.escape(stairs[s_])}</b>, floor {f} → {f - 1}<br/>"
                   f"{int(on_flight[i, f, s_])} people, {dens[f, s_]:.2f} P/m²")
            out.append({"polygon": poly, "c": [int(v) for v in cols[f, s_]], "tooltip": tip})
        return out

    def rows(i: int) -> tuple[list, list]:
        cols = floor_colours(people[i], top, refuge)
        slabs, strip = [], []
        for f in range(len(elev)):
            tip = _tooltip(f, elev[f], int(people[i, f]), int(start[f]), rset[f], aset[f], bool(refuge[f]))
            c = [int(v) for v in cols[f]]
            slabs.append({"polygon": geo.slab(f), "e": geo.slab_extrusion(f), "c": c, "tooltip": tip})
            strip.append({"polygon": geo.strip[f], "c": c, "tooltip": tip})
        return slabs, strip

    slabs0, strip0 = rows(keep[0])
    slab_layer = {"@@type": "PolygonLayer", "id": layer_id, "data": slabs0, "getPolygon": "@@=polygon",
                  "extruded": True, "getElevation": "@@=e", "getFillColor": "@@=c", "filled": True,
                  "stroked": False, "wireframe": True, "getLineColor": [60, 60, 60, 160], "pickable": True,
                  "autoHighlight": True, "material": False}
    strip_id = f"{layer_id}_strip"
    strip_layer = {"@@type": "PolygonLayer", "id": strip_id, "data": strip0, "getPolygon": "@@=polygon",
                   "getFillColor": "@@=c", "filled": True, "stroked": True, "getLineColor": [80, 80, 80, 200],
                   "lineWidthUnits": "pixels", "getLineWidth": 1, "pickable": True, "autoHighlight": True}
    slab_frames, strip_frames = [{}], [{}]
    for i in keep[1:]:
        s, t = rows(i)
        slab_frames.append({"data": s})
        strip_frames.append({"data": t})
    layers = [strip_layer, slab_layer]
    frames = {layer_id: slab_frames, strip_id: strip_frames}
    legends = []
    x_right = x1
    if has_flights:
        flights_id = f"{layer_id}_flights"
        layers.insert(1, {"@@type": "PolygonLayer", "id": flights_id, "data": flight_rows(keep[0]),
                          "getPolygon": "@@=polygon", "getFillColor": "@@=c", "filled": True, "stroked": True,
                          "getLineColor": [90, 90, 90, 160], "lineWidthUnits": "pixels", "getLineWidth": 1,
                          "pickable": True, "autoHighlight": True})
        frames[flights_id] = [{}] + [{"data": flight_rows(i)} for i in keep[1:]]
        legends.append(Legend(flights_id, "Stair flights: density", "P/m²", list(DENSITY_STOPS)))
        x_right = x1 + col_w * (0.4 + 1.2 * len(stairs))
    name = str(ds.attrs.get("building", "building"))
    legend = Legend(layer_id, f"People still on each floor — {name}", "people", people_ramp(top))
    t = [float(times[i]) for i in keep]
    labels = [_time_label(v) for v in t]
    return LayerSet(layers=layers, legends=[legend, *legends], label=label, visible=visible,
                    times_s=t, labels=labels, frames=frames,
                    bounds=geo.bounds(x_right))


def _time_label(t: float) -> str:
    """``+12 min 30 s`` style label (building runs last minutes, not hours)."""
    s = int(round(t))
    m, s = divmod(s, 60)
    return f"+{m} min {s:02d} s" if m else f"+{s} s"


__all__ = ["CLEAR", "DENSITY_STOPS", "REFUGE", "building_evac", "density_colours", "floor_colours", "people_ramp"]
