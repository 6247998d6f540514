"""Kind ``facilities``: shelters, fire stations, hospitals, stations and incidents as labelled dots.

Each call draws one kind of facility (its colour from :data:`KINDS` unless
``color`` is given): a ``ScatterplotLayer`` of dots with a white rim and a
tooltip (name, kind, capacity), and a label layer of the names
(:func:`viz.layers._labels.label_layer`, so Chinese names draw with the
page's CJK font, their Latin alternative without it).
"""

from __future__ import annotations

import html

import numpy as np

from twin.errors import ValidationError
from viz.layers import register
from viz.layers.movers import rgba
from viz.scene import LayerSet, Legend

#: Facility kind → (default label, colour RGB, dot radius px).
KINDS = {
    "shelter": ("Shelters", (30, 140, 70), 7.0),
    "fire_station": ("Fire stations", (200, 20, 20), 7.0),
    "hospital": ("Hospitals", (20, 90, 200), 7.0),
    "station": ("Stations", (110, 60, 160), 6.0),
    "incident": ("Incidents", (250, 140, 0), 8.0),
}


def _capacity_text(cap) -> str | None:
    if cap is None:
        return None
    try:
        c = float(cap)
    except (TypeError, ValueError):
        return str(cap)
    if not np.isfinite(c):
        return None
    return f"{int(c):,}" if c == int(c) else f"{c:,.1f}"


@register("facilities")
def facilities(lon, lat, names, *, kind: str = "shelter", capacity=None, layer_id: str | None = None,
               label: str | None = None, color=None, visible: bool = True, latin=None,
               capacity_label: str = "capacity") -> LayerSet:
    """Facilities of one kind as dots with name labels (the names thin with zoom where they would overlap).

    Parameters
    ----------
    lon, lat : arrays (n,)
        WGS84 degrees.
    names : sequence of str (n,)
        Shown as labels and in the tooltip.
    kind : str
        A key of :data:`KINDS` (default colour and toggle label).
    capacity : array (n,) or None
        Shown in the tooltip (people for shelters, units for stations ...); NaN for unknown.
    layer_id, label : str or None
        Default: ``kind`` and the kind's label (e.g. ``"Shelters"``).
    color : RGB(A) or None
        Overrides the kind's colour.
    latin : sequence of str or None
        Latin alternatives of ``names`` drawn when no CJK font is installed (default: ``names``).
    capacity_label : str
        The tooltip's word for capacity.
    """
    if kind not in KINDS:
        raise ValidationError(f"kind={kind!r}: known facility kinds are {sorted(KINDS)}")
    default_label, default_colour, radius = KINDS[kind]
    layer_id = layer_id or kind
    label = label or default_label
    c = rgba(color if color is not None else default_colour, what="color")
    x = np.asarray(lon, dtype=float).ravel()
    y = np.asarray(lat, dtype=float).ravel()
    n = x.size
    if y.shape != x.shape:
        raise ValidationError(f"lon has shape {np.shape(lon)} and lat {np.shape(lat)}: give one of each per facility")
    names = [str(v) for v in names]
    if len(names) != n:
        raise ValidationError(f"names has {len(names)} entries for {n} facilities (lon has shape {x.shape})")
    caps = [None] * n if capacity is None else list(np.asarray(capacity, dtype=object).ravel())
    if len(caps) != n:
        raise ValidationError(f"capacity has {len(caps)} entries for {n} facilities")
    latin = names if latin is None else [str(v) for v in latin]
    if len(latin) != n:
        raise ValidationError(f"latin has {len(latin)} entries for {n} facilities")
    ok = np.isfinite(x) & np.isfinite(y)
    if (np.abs(x[ok]) > 180).any() or (np.abs(y[ok]) > 90).any():
        raise ValidationError(f"{kind} positions are outside WGS84 degrees (e.g. lon {x[ok][0]}, "
                              f"lat {y[ok][0]}): reproject to EPSG:4326")
    rows, labels = [], []
    kind_text = default_label[:-1].lower() if default_label.endswith("s") else default_label.lower()
    for k in np.flatnonzero(ok):
        tip = f"<b>{html.escape(names[k])}</b><br/>{html.escape(kind_text)}"
        cap = _capacity_text(caps[k])
        if cap is not None:
            tip += f"<br/>{html.escape(capacity_label)}: {html.escape(cap)}"
        rows.append({"p": [round(float(x[k]), 6), round(float(y[k]), 6)], "tooltip": tip})
        labels.append((float(x[k]), float(y[k]), names[k], latin[k]))
    from viz.layers._labels import PRIORITY, label_layer

    dots = {"@@type": "ScatterplotLayer", "id": layer_id, "data": rows, "getPosition": "@@=p",
            "getFillColor": c, "getLineColor": [255, 255, 255, 255], "stroked": True,
            "radiusUnits": "pixels", "getRadius": radius, "lineWidthUnits": "pixels", "getLineWidth": 1.5,
            "pickable": True, "autoHighlight": True}
    # names thin with zoom (twinmap.js twinDeclutter): around Futian a city's stations and incidents
    # would pile up unreadably; the dots and their tooltips stay
    text = label_layer(f"{layer_id}_names", labels, style="station", offset=(radius + 3.0, 0.0),
                       declutter=PRIORITY[kind])
    title = label if ok.all() else f"{label} ({int((~ok).sum())} without a position, not drawn)"
    bounds = None
    if ok.any():
        bounds = (float(x[ok].min()), float(y[ok].min()), float(x[ok].max()), float(y[ok].max()))
    return LayerSet(layers=[dots, text], legends=[Legend(layer_id, title, "", [(label, c)])],
                    label=label, visible=visible, bounds=bounds)
