"""Kind ``movers``: moving people and units, one set of points per frame of the time slider.

Positions are ``lon``/``lat`` arrays of shape ``(n_times, n)`` in WGS84
degrees; NaN means "not on the map at that frame" (not yet spawned, inside a
building, arrived).  The page draws one deck.gl ``ScatterplotLayer`` whose
``data`` each frame replaces with that frame's points.

Frames are encoded compactly (:func:`encode_points`), not as JSON rows:
positions as integer micro-degrees (1e-6 deg, about 0.1 m) relative to an
origin, int32 in byte planes, zlib, base64, and the group of each point as
uint8/uint16 the same way; ``viz/static/twinmap.js`` decodes them
(``DecompressionStream``) into binary deck.gl attributes (float64 positions,
RGBA colours).  JSON rows ``[lon, lat, group]`` cost ~25 bytes a point; the
encoding ~5 for agents scattered over 4 km (measured: 10 k agents × 60
frames make a 7.4 MB page, 4.3 MB of it the deck.gl bundle; 8.5 MB without
the byte planes; 50 k agents × 60 frames 19.7 MB, drawn by headless Chromium
in ~3 s).

Beyond ``max_points`` on a frame the points are thinned deterministically
and the legend says so: each group keeps the same agents on every frame
(a fixed random order within the group, seed 0), the same number ``K`` at
most from every group, ``K`` the largest that keeps every frame within
``max_points``.  Small groups (fire engines among thousands of walkers) are
therefore kept whole while the big ones are sampled.
"""

from __future__ import annotations

import base64
import html
import zlib

import numpy as np

from twin.errors import ValidationError
from viz.layers import register
from viz.scene import LayerSet, Legend

#: Colours of further groups when ``group_colors`` does not give one (the first group takes ``color``).
PALETTE = [
    (200, 30, 30), (30, 90, 200), (240, 150, 0), (40, 150, 60), (140, 60, 170),
    (0, 160, 170), (120, 80, 40), (230, 80, 160), (90, 90, 90), (160, 170, 0),
]

#: Micro-degrees: the position step of encoded frames (about 0.11 m of latitude).
STEP_DEG = 1e-6


def frame_label(t: float) -> str:
    """Slider label of a frame time in seconds: ``+45 s``, ``+3 min 20 s``, ``+1 h 05 min``."""
    s = int(round(float(t)))
    sign = "-" if s < 0 else "+"
    s = abs(s)
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    if h:
        return f"{sign}{h} h {m:02d} min" + (f" {sec:02d} s" if sec else "")
    if m:
        return f"{sign}{m} min" + (f" {sec:02d} s" if sec else "")
    return f"{sign}{sec} s"


def check_times(times_s, n_times: int, *, what: str) -> list[float]:
    """``times_s`` as floats, checked: one finite, increasing time per frame of ``what``."""
    t = np.asarray(times_s, dtype=float).ravel() if times_s is not None else None
    if t is None or t.shape != (n_times,):
        got = None if t is None else t.shape
        raise ValidationError(f"times_s has shape {got}: {what} has {n_times} frames, give one time each")
    if not np.all(np.isfinite(t)):
        raise ValidationError(f"times_s={t.tolist()[:8]}...: every time must be finite")
    if n_times > 1 and not np.all(np.diff(t) > 0):
        raise ValidationError(f"times_s={t.tolist()[:8]}...: times must increase")
    return [float(v) for v in t]


def rgba(color, *, what: str) -> list[int]:
    """``color`` (RGB or RGBA, 0-255) as a 4-list, or a ValidationError naming ``what``."""
    try:
        c = [int(v) for v in color]
    except (TypeError, ValueError):
        raise ValidationError(f"{what}={color!r}: give an RGB(A) colour, e.g. (200, 30, 30)") from None
    if len(c) == 3:
        c.append(255)
    if len(c) != 4 or not all(0 <= v <= 255 for v in c):
        raise ValidationError(f"{what}={color!r}: give an RGB(A) colour with values 0-255")
    return c


def _b64z(arr: np.ndarray) -> str:
    return base64.b64encode(zlib.compress(np.ascontiguousarray(arr).tobytes(), 6)).decode("ascii")


def byte_planes(values) -> str:
    """Non-negative integers (< 2**31) as base64 of zlib of their little-endian int32 byte planes.

    Byte 0 of every value, then byte 1, 2, 3: the high bytes of small numbers are
    alike, so zlib packs the planes ~25-30 % better than plain int32.
    ``viz/static/twinmap.js`` reads them back (``planesInt32``).
    """
    a = np.ascontiguousarray(np.asarray(values, dtype=np.int64).astype("<i4"))
    return _b64z(a.view(np.uint8).reshape(-1, 4).T)


def read_byte_planes(text: str) -> np.ndarray:
    """Inverse of :func:`byte_planes` (int64 array)."""
    raw = np.frombuffer(zlib.decompress(base64.b64decode(text)), dtype=np.uint8)
    return np.ascontiguousarray(raw.reshape(4, -1).T).view("<i4").ravel().astype(np.int64)


def encode_points(lon, lat, group_index=None) -> dict:
    """One frame's points in the compact form ``twinmap.js`` decodes.

    Parameters
    ----------
    lon, lat : array (k,)
        Finite positions in degrees.
    group_index : array (k,) of int or None
        Index of each point's group in the layer's ``twinGroups`` (None: all 0).

    Returns
    -------
    dict
        ``{"twinPoints": {"n", "x0", "y0", "xy", "g", "gb"}}``: ``xy`` is base64 of zlib of
        the 2n little-endian int32 ``round(lon * 1e6) - x0`` (all points), then
        ``round(lat * 1e6) - y0``, stored as 4 byte planes (byte 0 of every value, then
        byte 1 ...); ``g`` base64 of zlib of the group indices (``gb`` bytes each: 1 or 2;
        ``""`` when all are 0).
    """
    x = np.rint(np.asarray(lon, dtype=float) / STEP_DEG).astype(np.int64)
    y = np.rint(np.asarray(lat, dtype=float) / STEP_DEG).astype(np.int64)
    n = int(x.size)
    x0 = int(x.min()) if n else 0
    y0 = int(y.min()) if n else 0
    xy = np.concatenate([x - x0, y - y0])  # all x offsets, then all y offsets
    g = np.zeros(n, dtype=np.int64) if group_index is None else np.asarray(group_index, dtype=np.int64)
    gb = 1 if (not n or g.max() < 256) else 2
    gtext = "" if not n or not g.any() else _b64z(g.astype("<u1" if gb == 1 else "<u2"))
    return {"twinPoints": {"n": n, "x0": x0, "y0": y0, "xy": byte_planes(xy), "g": gtext, "gb": gb}}


def decode_points(data: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inverse of :func:`encode_points` (tests, tools): ``(lon, lat, group_index)``."""
    p = data["twinPoints"]
    n = int(p["n"])
    xy = read_byte_planes(p["xy"])
    lon = (p["x0"] + xy[:n]) / 1e6  # as twinmap.js computes it
    lat = (p["y0"] + xy[n:]) / 1e6
    if p["g"]:
        g = np.frombuffer(zlib.decompress(base64.b64decode(p["g"])), dtype="<u1" if p["gb"] == 1 else "<u2")
    else:
        g = np.zeros(n, dtype=np.int64)
    return lon, lat, g.astype(np.int64)


def thin_keep(visible: np.ndarray, group_index: np.ndarray, max_points: int, *, seed: int = 0) -> np.ndarray:
    """Which agents to draw so that no frame has more than ``max_points`` (see the module docstring).

    Parameters
    ----------
    visible : bool array (n_times, n)
    group_index : int array (n,)
    max_points : int

    Returns
    -------
    bool array (n,)
        All True when no frame exceeds ``max_points``.
    """
    n = visible.shape[1]
    if not n or int(visible.sum(axis=1).max(initial=0)) <= max_points:
        return np.ones(n, dtype=bool)
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    rank = np.empty(n, dtype=np.int64)  # rank of each agent within its group, in the random order
    g_sorted = group_index[order]
    for g in np.unique(group_index):
        members = order[g_sorted == g]
        rank[members] = np.arange(members.size)
    lo, hi = 0, int(rank.max()) + 1  # K = lo is within the limit; K = hi is not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if int((visible & (rank < mid)).sum(axis=1).max()) <= max_points:
            lo = mid
        else:
            hi = mid
    return rank < lo


def _positions(lon, lat, times_s):
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    if lon.ndim == 1 and lat.ndim == 1 and lon.shape == lat.shape:  # one frame
        lon, lat = lon[None, :], lat[None, :]
    if lon.ndim != 2 or lon.shape != lat.shape:
        raise ValidationError(f"lon has shape {lon.shape} and lat {lat.shape}: "
                              "give both as (n_times, n_agents) arrays of the same shape")
    t = check_times(times_s, lon.shape[0], what=f"lon/lat of shape {lon.shape}")
    visible = np.isfinite(lon) & np.isfinite(lat)
    bad_lon = visible & (np.abs(lon) > 180)
    bad_lat = visible & (np.abs(lat) > 90)
    if bad_lon.any() or bad_lat.any():
        which, arr, mask = ("lon", lon, bad_lon) if bad_lon.any() else ("lat", lat, bad_lat)
        i, j = np.argwhere(mask)[0]
        raise ValidationError(f"{which}[{i}, {j}]={arr[i, j]}: positions must be WGS84 degrees "
                              "(reproject metres to EPSG:4326 first)")
    return lon, lat, visible, t


def _groups(n, group, group_labels, group_colors, label, color):
    """(group index per agent, [(code, label, rgba)]) in code order."""
    if group is None:
        return np.zeros(n, dtype=np.int64), [(0, (group_labels or {}).get(0, label), rgba(color, what="color"))]
    g = np.asarray(group)
    if g.shape != (n,):
        raise ValidationError(f"group has shape {g.shape}: give one group code per agent, shape ({n},)")
    if n and not np.issubdtype(g.dtype, np.integer):
        if not (np.issubdtype(g.dtype, np.floating) and np.all(np.isfinite(g)) and np.all(g == np.rint(g))):
            raise ValidationError(f"group has dtype {g.dtype}: give integer group codes")
        g = g.astype(np.int64)
    codes = np.unique(g)
    labels = dict(group_labels or {})
    colours = dict(group_colors or {})
    groups = []
    for k, code in enumerate(codes.tolist()):
        c = colours.get(code, color if k == 0 else PALETTE[k % len(PALETTE)])
        groups.append((int(code), str(labels.get(code, f"group {code}")), rgba(c, what=f"group_colors[{code}]")))
    index = np.searchsorted(codes, g).astype(np.int64)
    return index, groups


@register("movers")
def movers(times_s, lon, lat, *, layer_id: str = "movers", label: str = "People",
           color=(200, 30, 30), radius_m: float = 4.0, group=None, group_labels=None,
           group_colors=None, visible: bool = True, max_points: int = 50000) -> LayerSet:
    """Moving agents as dots on the time slider.

    Parameters
    ----------
    times_s : array (n_times,)
        Time of each frame, seconds from the start of the run (increasing).
    lon, lat : arrays (n_times, n)
        WGS84 degrees; NaN (in either) = not on the map at that frame.
    layer_id, label : str
        The layer's id and the name of its toggle (and of its legend).
    color : RGB(A)
        Colour of the agents (of the first group when there are groups).
    radius_m : float
        Dot radius in metres (at least 1.5 px and at most 10 px on screen).
    group : int array (n,) or None
        Group code of each agent (e.g. 0 walker, 1 fire engine).
    group_labels, group_colors : dict or None
        Code → label (tooltip and legend) and code → RGB(A); unnamed codes are
        ``"group <code>"``, uncoloured ones take :data:`PALETTE`.
    visible : bool
        Initial state of the toggle.
    max_points : int
        At most this many dots on any frame; more are thinned (legend says so).

    Returns
    -------
    LayerSet
        One ScatterplotLayer (``data`` patched each frame), a categorical legend,
        ``times_s``, ``frames``, bounds of every drawn position.

    Raises
    ------
    ValidationError
        Mismatched shapes (naming the argument and both shapes), positions
        outside WGS84 ranges, bad times, colours, ``radius_m`` or ``max_points``.
    """
    lon, lat, vis, t = _positions(lon, lat, times_s)
    if not (isinstance(max_points, (int, np.integer)) and max_points > 0):
        raise ValidationError(f"max_points={max_points!r}: give a positive integer")
    if not (np.isfinite(radius_m) and radius_m > 0):
        raise ValidationError(f"radius_m={radius_m!r}: give a positive radius in metres")
    n = lon.shape[1]
    gidx, groups = _groups(n, group, group_labels, group_colors, label, color)
    keep = thin_keep(vis, gidx, int(max_points))
    patches = []
    for i in range(lon.shape[0]):
        m = vis[i] & keep
        patches.append({"data": encode_points(lon[i, m], lat[i, m], gidx[m])})
    tips = [f"<b>{html.escape(lab)}</b>" if len(groups) > 1 or lab == label
            else f"<b>{html.escape(label)}</b><br/>{html.escape(lab)}" for _, lab, _ in groups]
    layer = {
        "@@type": "ScatterplotLayer", "id": layer_id, "data": [],
        "getPosition": "@@=p", "getFillColor": "@@=c", "stroked": False,
        "radiusUnits": "meters", "getRadius": float(radius_m),
        "radiusMinPixels": 1.5, "radiusMaxPixels": 10,
        "pickable": True, "autoHighlight": True,
        "twinGroups": [{"code": code, "label": lab, "c": c, "tooltip": tip}
                       for (code, lab, c), tip in zip(groups, tips, strict=True)],
    }
    title = label
    stops = [(lab, c) for _, lab, c in groups]
    if not keep.all():
        per_group = np.bincount(gidx, minlength=len(groups))
        kept = np.bincount(gidx[keep], minlength=len(groups))
        title = f"{label} · thinned: {int(keep.sum()):,} of {n:,} drawn (≤ {int(max_points):,} a frame)"
        stops = [(lab if kept[k] == per_group[k] else f"{lab} ({int(kept[k]):,} of {int(per_group[k]):,})", c)
                 for k, (_, lab, c) in enumerate(groups)]
    bounds = None
    if vis.any():
        bounds = (float(lon[vis].min()), float(lat[vis].min()), float(lon[vis].max()), float(lat[vis].max()))
    return LayerSet(layers=[layer], legends=[Legend(layer_id, title, "", stops)], label=label,
                    visible=visible, times_s=t, labels=[frame_label(v) for v in t],
                    frames={layer_id: patches}, bounds=bounds)
