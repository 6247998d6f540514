"""Kind ``road_status``: slowed and closed roads, static or changing with the time slider.

State codes: 0 open, 1 slowed, 2 closed (:data:`STATES`).  Open roads are
not drawn by default (the ``roads`` layer below shows the network, and
skipping them keeps a city page small); ``show_open=True`` draws them faint,
e.g. to hover the queue of every street.

A framed layer stores the geometry of each road drawn on some frame once
(the layer's ``twinPaths``) and each distinct look of a road once (its
``twinRows``: ``{"i": road, "pi": index in twinPaths, "c", "w", "tooltip"}``,
one per road, state and tooltip text).  Each frame's patch only lists rows,
slowed before closed (so closed roads draw on top):
``{"data": {"twinRows": "<row numbers>"}}``, the numbers packed by
:func:`viz.layers.movers.byte_planes` (``viz/static/twinmap.js`` builds the
path rows).  A street that stays closed for 60 frames costs one geometry,
one row and 60 small integers; per-frame ``values`` (a queue that changes
every frame) cost a row per frame and road.  Measured on the road layer of a
district evacuation over central Futian (2,917 roads, 61 frames, 150 k drawn
road-frames, a queue in every tooltip): 15.3 MB as per-frame rows with
colour and tooltip; the same frames re-encoded this way 1.05 MB (0.38 MB
geometry, 0.39 MB rows, 0.28 MB row numbers).
"""

from __future__ import annotations

import html

import numpy as np

from twin.errors import ValidationError
from viz.layers import register
from viz.layers.movers import byte_planes, check_times, frame_label
from viz.scene import LayerSet, Legend

#: State code → (name, colour RGBA, line width px).
STATES = {
    0: ("open", (60, 150, 80, 110), 1.5),
    1: ("slowed", (245, 150, 20, 235), 3.0),
    2: ("closed", (215, 25, 30, 255), 4.0),
}


def _paths(lines) -> list[list[list[float]]]:
    """Coordinate lists ``[[lon, lat], ...]`` (1e-6 deg) of shapely LineStrings or coordinate lists."""
    out = []
    for k, ln in enumerate(lines):
        coords = getattr(ln, "coords", ln)
        if getattr(ln, "geom_type", "LineString") != "LineString":
            raise ValidationError(f"lines[{k}] is a {ln.geom_type}: give LineStrings (explode multi-lines first)")
        try:
            a = np.asarray(list(coords), dtype=float)
        except (TypeError, ValueError):
            raise ValidationError(f"lines[{k}]={ln!r:.80}: give a LineString or [[lon, lat], ...]") from None
        if a.ndim != 2 or a.shape[0] < 2 or a.shape[1] < 2:
            raise ValidationError(f"lines[{k}] has coordinates of shape {a.shape}: "
                                  "give at least 2 (lon, lat) points")
        a = a[:, :2]
        if not np.all(np.isfinite(a)) or np.abs(a[:, 0]).max() > 180 or np.abs(a[:, 1]).max() > 90:
            raise ValidationError(f"lines[{k}] has coordinates outside WGS84 degrees "
                                  f"(first {a[0].tolist()}): reproject to EPSG:4326")
        out.append(np.round(a, 6).tolist())
    return out


def _framed(arr, name: str, n: int, n_times: int | None, dtype) -> np.ndarray:
    a = np.asarray(arr, dtype=dtype)
    if a.shape == (n,):
        return a[None, :] if n_times is None else np.broadcast_to(a, (n_times, n))
    if a.ndim == 2 and a.shape[1] == n and (n_times is None or a.shape[0] == n_times):
        return a
    want = f"({n},) or ({n_times if n_times is not None else 'n_times'}, {n})"
    raise ValidationError(f"{name} has shape {a.shape}: with {n} lines give shape {want}")


def _tooltip(name: str, state: int, value, value_label: str | None) -> str:
    text = f"<b>{html.escape(name)}</b><br/>{STATES[state][0]}"
    if value is not None and np.isfinite(value):
        text += f"<br/>{html.escape(value_label or 'value')}: {float(value):.4g}"
    return text


@register("road_status")
def road_status(lines, state, *, times_s=None, layer_id: str = "road_status", label: str = "Road status",
                values=None, value_label: str | None = None, visible: bool = True,
                names=None, show_open: bool = False) -> LayerSet:
    """Roads coloured by state (open / slowed / closed), optionally over time.

    Parameters
    ----------
    lines : sequence
        shapely LineStrings or ``[[lon, lat], ...]`` lists, WGS84 degrees.
    state : int array (n,) or (n_times, n)
        0 open, 1 slowed, 2 closed; 2-D needs ``times_s``.
    times_s : array (n_times,) or None
        Frame times (s); None for a static layer.
    values : array (n,) or (n_times, n), or None
        A number per road shown in the tooltip (e.g. queue length), NaN for none.
    value_label : str or None
        Its name in the tooltip (e.g. ``"queue (people)"``).
    names : sequence of str or None
        Road names for the tooltip (default ``"road <i>"``).
    show_open : bool
        Draw open roads too (faint green); by default they are left out.

    Returns
    -------
    LayerSet
        One PathLayer, a legend open/slowed/closed, frames when ``times_s`` is given.
    """
    paths = _paths(lines)
    n = len(paths)
    if times_s is None:
        s = _framed(state, "state", n, None, float)
        if s.shape[0] != 1:
            raise ValidationError(f"state has shape {s.shape}: a (n_times, n) state needs times_s")
        t = None
    else:
        n_t = np.asarray(times_s, dtype=float).size
        s = _framed(state, "state", n, n_t, float)
        t = check_times(times_s, n_t, what=f"state of shape {s.shape}")
    if s.size and (not np.all(np.isin(s, list(STATES)))):
        bad = s[~np.isin(s, list(STATES))][0]
        raise ValidationError(f"state holds {bad}: use 0 open, 1 slowed, 2 closed")
    s = s.astype(np.int64)
    v = None
    if values is not None:
        v = _framed(values, "values", n, s.shape[0], float)
        if v.shape != s.shape:
            raise ValidationError(f"values has shape {np.shape(values)}: give ({n},) or the shape of state {s.shape}")
    if names is None:
        names = [f"road {k}" for k in range(n)]
    elif len(names) != n:
        raise ValidationError(f"names has {len(names)} entries for {n} lines")
    drawn = s >= (0 if show_open else 1)  # (frames, n)

    def row_props(i: int, k: int) -> tuple[list[int], float, str]:
        name, colour, width = STATES[int(s[i, k])]
        val = None if v is None else float(v[i, k])
        return list(colour), width, _tooltip(str(names[k]), int(s[i, k]), val, value_label)

    layer = {"@@type": "PathLayer", "id": layer_id, "getPath": "@@=path", "getColor": "@@=c",
             "getWidth": "@@=w", "widthUnits": "pixels", "capRounded": True, "jointRounded": True,
             "pickable": True, "autoHighlight": True}
    frames = {}
    if t is None:
        rows = []
        for k in np.flatnonzero(drawn[0]):
            c, w, tip = row_props(0, int(k))
            rows.append({"path": paths[k], "c": c, "w": w, "tooltip": tip})
        layer["data"] = rows
    else:
        ever = np.flatnonzero(drawn.any(axis=0))
        path_of = {int(k): j for j, k in enumerate(ever)}
        variants: dict[tuple, int] = {}  # (road, state, tooltip) -> row of twinRows
        rows: list[dict] = []
        patches = []
        for i in range(s.shape[0]):
            picked = []
            ks = np.flatnonzero(drawn[i])
            for k in (int(k) for k in ks[np.argsort(s[i, ks], kind="stable")]):  # closed drawn on top
                c, w, tip = row_props(i, k)
                key = (k, int(s[i, k]), tip)
                if key not in variants:
                    variants[key] = len(rows)
                    rows.append({"i": k, "pi": path_of[k], "c": c, "w": w, "tooltip": tip})
                picked.append(variants[key])
            patches.append({"data": {"twinRows": byte_planes(picked)}})
        layer["data"] = []
        layer["twinPaths"] = [paths[k] for k in ever]
        layer["twinRows"] = rows
        frames[layer_id] = patches
    stops = [(name, colour) for code, (name, colour, _) in STATES.items() if show_open or code]
    legend = Legend(layer_id, label if show_open else f"{label} (open roads not drawn)", "", stops)
    bounds = None
    if n:
        allc = np.concatenate([np.asarray(p) for p in paths])
        bounds = (float(allc[:, 0].min()), float(allc[:, 1].min()),
                  float(allc[:, 0].max()), float(allc[:, 1].max()))
    return LayerSet(layers=[layer], legends=[legend], label=label, visible=visible, times_s=t,
                    labels=None if t is None else [frame_label(x) for x in t], frames=frames, bounds=bounds)
