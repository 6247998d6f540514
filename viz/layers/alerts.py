"""Kind ``alerts``: alert events as points with a halo sized and coloured by severity.

An event is placed at ``data["lon"], data["lat"]`` when it has them, else at
the sensor named by its ``source`` (``"<sensor id>/<property>"`` or a
sensor id) or ``data["station"]``; events with no place are left out (the
layer set's label says how many).
"""

from __future__ import annotations

import html

from twin.events import Severity
from viz.layers import register
from viz.scene import LayerSet, Legend

SEVERITY_STYLE = {  # colour, halo radius (px)
    "info": ((60, 120, 220, 255), 9),
    "advisory": ((240, 200, 40, 255), 11),
    "warning": ((245, 130, 20, 255), 14),
    "alarm": ((215, 20, 30, 255), 18),
}


def _place(ev, by_id: dict) -> tuple[float, float] | None:
    d = ev.data or {}
    if isinstance(d.get("lon"), (int, float)) and isinstance(d.get("lat"), (int, float)):
        return float(d["lon"]), float(d["lat"])
    for key in (ev.source, (ev.source or "").split("/", 1)[0], d.get("station"), d.get("sensor")):
        if key and key in by_id:
            s = by_id[key]
            return s.lon, s.lat
    return None


@register("alerts")
def alerts(events, sensors=(), *, min_severity: str = "advisory", layer_id: str = "alerts",
           label: str = "Alerts") -> LayerSet:
    """Alert events (``twin.events.Event``) at or above ``min_severity``, newest drawn on top.

    Each gets a translucent halo (radius by severity) and a solid centre;
    the tooltip has severity, kind, message and simulation time.
    """
    by_id = {s.id: s for s in sensors}
    floor = Severity.coerce(min_severity).rank
    rows, missing = [], 0
    for ev in sorted(events, key=lambda e: (e.time_s, Severity.coerce(e.severity).rank)):
        sev = Severity.coerce(ev.severity)
        if sev.rank < floor:
            continue
        where = _place(ev, by_id)
        if where is None:
            missing += 1
            continue
        colour, radius = SEVERITY_STYLE[sev.value]
        tip = (f"<b>{sev.value.upper()}</b> {html.escape(ev.kind)}<br/>{html.escape(ev.message)}"
               f"<br/>t = {ev.time_s / 60:.1f} min · {html.escape(ev.source)}")
        rows.append({"p": [round(where[0], 6), round(where[1], 6)], "c": list(colour),
                     "h": list(colour[:3]) + [70], "r": radius, "severity": sev.value, "tooltip": tip})
    halo = {"@@type": "ScatterplotLayer", "id": f"{layer_id}_halo", "data": rows, "getPosition": "@@=p",
            "getFillColor": "@@=h", "getLineColor": "@@=c", "stroked": True, "radiusUnits": "pixels",
            "getRadius": "@@=r", "lineWidthUnits": "pixels", "getLineWidth": 2, "pickable": False}
    core = {"@@type": "ScatterplotLayer", "id": layer_id, "data": rows, "getPosition": "@@=p",
            "getFillColor": "@@=c", "radiusUnits": "pixels", "getRadius": 4, "pickable": True}
    legend = Legend(layer_id, "Alert severity", "",
                    [(k, v[0]) for k, v in SEVERITY_STYLE.items() if Severity(k).rank >= floor])
    lab = label if not missing else f"{label} ({missing} without a place)"
    lons = [r["p"][0] for r in rows]
    lats = [r["p"][1] for r in rows]
    bounds = (min(lons), min(lats), max(lons), max(lats)) if rows else None
    return LayerSet(layers=[halo, core], legends=[legend], label=lab, bounds=bounds)
