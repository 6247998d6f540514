"""The scene: what one map shows, as JSON that ``viz/static/twinmap.js`` draws.

Python builds a :class:`Scene` from :class:`LayerSet` s (each the output of a
layer builder in :mod:`viz.layers`) and :meth:`Scene.to_json` gives::

    {"title": str,
     "view": {"longitude", "latitude", "zoom"},
     "layers": [deck.gl layer JSON as pydeck emits it, {"@@type": "BitmapLayer", "id": ...}],
     "legends": [{"layer": id, "layers": [id, ...], "title": str, "units": str,
                  "stops": [[value, [r, g, b, a]], ...]}],
     "toggles": [{"label": str, "layers": [id, ...], "visible": bool}],
     "timeline": null | {"times_s": [...], "labels": [...], "initial": i,
                         "frames": {layer_id: [{props of frame 0}, {props of frame 1}, ...]}},
     "fonts": [{"family": str, "url": "data:font/woff;base64,..."}]}   # when it has labels

A legend shows while any of its ``layers`` does; legends with the same
units and stops (one ramp on two layers, e.g. depth frames and maximum
depth) are merged into one item.  ``timeline.initial`` is the frame the page
opens on (a layer set's ``initial_frame``, default 0).  ``fonts`` is the
label font cut to the labels' characters (:mod:`viz.fonts`); a raster
layer's ``twinValues`` holds its values for the hover read-out
(:func:`viz.layers._raster.value_grid`).

A frame patch replaces props of its layer (``{"image": "data:image/png;base64,..."}``
for a bitmap, ``{"data": [...]}`` for points).  Layers draw in list order
(later on top).  Every LayerSet in a scene that has frames must share one
time axis.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np

from twin.errors import ValidationError


def layer_json(layer) -> dict:
    """deck.gl JSON of one layer: a dict as is, or a :class:`pydeck.Layer` serialised by pydeck."""
    if isinstance(layer, dict):
        if "@@type" not in layer or "id" not in layer:
            raise ValidationError(f"layer JSON needs '@@type' and 'id', got keys {sorted(layer)[:8]}")
        return layer
    import pydeck as pdk

    if isinstance(layer, pdk.Layer):
        return json.loads(layer.to_json())
    raise ValidationError(f"layer: expected a pydeck.Layer or a dict, got {type(layer).__name__}")


@dataclass
class Legend:
    """A colour legend of one layer.

    ``stops`` are ``(value, (r, g, b, a))`` in increasing value order for a
    continuous ramp, or ``(label, colour)`` for categories.
    """

    layer: str
    title: str
    units: str
    stops: list

    def to_json(self) -> dict:
        stops = []
        for value, colour in self.stops:
            if isinstance(value, (int, float, np.number)):
                value = float(value)
                if not math.isfinite(value):
                    raise ValidationError(f"legend {self.title!r}: stop value {value} is not finite")
                value = round(value, 6)
            c = [int(v) for v in colour]
            if len(c) == 3:
                c.append(255)
            if len(c) != 4 or not all(0 <= v <= 255 for v in c):
                raise ValidationError(f"legend {self.title!r}: colour {colour} is not RGB(A) in 0-255")
            stops.append([value, c])
        return {"layer": self.layer, "title": self.title, "units": self.units, "stops": stops}


@dataclass
class LayerSet:
    """What a layer builder returns.

    Attributes
    ----------
    layers : list
        deck.gl layers (:class:`pydeck.Layer` or layer-JSON dicts), bottom first.
    legends : list[Legend]
    label : str
        Name of the toggle that shows/hides all of ``layers`` ("" for none).
    visible : bool
        Initial state of that toggle.
    times_s : list[float] or None
        Time of each frame (seconds from the start of the run/forecast).
    labels : list[str] or None
        Slider label of each frame.
    frames : dict
        layer id → list of prop patches, one per frame.
    bounds : tuple or None
        (west, south, east, north) in degrees, used to fit the view.
    initial_frame : int or None
        The frame the page opens on (e.g. the one with the most to see).
    """

    layers: list = field(default_factory=list)
    legends: list[Legend] = field(default_factory=list)
    label: str = ""
    visible: bool = True
    times_s: list[float] | None = None
    labels: list[str] | None = None
    frames: dict[str, list[dict]] = field(default_factory=dict)
    bounds: tuple[float, float, float, float] | None = None
    initial_frame: int | None = None

    def layer_ids(self) -> list[str]:
        return [layer_json(lyr)["id"] for lyr in self.layers]


@dataclass
class Scene:
    """One map: layer sets in drawing order, a view, an optional time axis."""

    title: str = "Shenzhen Twin"
    view: dict | None = None
    sets: list[LayerSet] = field(default_factory=list)

    def add(self, layer_set: LayerSet) -> Scene:
        """Append a layer set (drawn above the ones before); returns the scene."""
        if not isinstance(layer_set, LayerSet):
            raise ValidationError(f"Scene.add: expected a LayerSet, got {type(layer_set).__name__}")
        self.sets.append(layer_set)
        return self

    def bounds(self) -> tuple[float, float, float, float] | None:
        """Union of the sets' bounds in degrees, or None."""
        b = np.array([s.bounds for s in self.sets if s.bounds is not None], dtype=float)
        if not len(b):
            return None
        return float(b[:, 0].min()), float(b[:, 1].min()), float(b[:, 2].max()), float(b[:, 3].max())

    def _timeline(self, ids: set[str]) -> dict | None:
        timed = [s for s in self.sets if s.frames]
        if not timed:
            return None
        times = timed[0].times_s
        labels = timed[0].labels
        if not times:
            raise ValidationError("a layer set has frames but no times_s: give each frame its time")
        frames: dict[str, list[dict]] = {}
        for s in timed:
            if s.times_s is None or len(s.times_s) != len(times) or \
                    not np.allclose(s.times_s, times, rtol=0, atol=1e-6):
                raise ValidationError(
                    f"layer sets with frames disagree on the time axis ({len(times)} vs "
                    f"{len(s.times_s or [])} frames): resample them to one times_s")
            for lid, patches in s.frames.items():
                if lid not in ids:
                    raise ValidationError(f"frames for layer id {lid!r}, which no layer in the scene has")
                if len(patches) != len(times):
                    raise ValidationError(
                        f"layer {lid!r} has {len(patches)} frame patches for {len(times)} times")
                frames[lid] = patches
        labels = list(labels) if labels else [_default_label(t) for t in times]
        initial = next((s.initial_frame for s in timed if s.initial_frame is not None), 0)
        if not 0 <= int(initial) < len(times):
            raise ValidationError(f"initial_frame={initial} is outside 0..{len(times) - 1}")
        return {"times_s": [float(t) for t in times], "labels": labels, "initial": int(initial),
                "frames": frames}

    def to_json(self) -> dict:
        """The scene as a JSON-ready dict (see the module docstring).

        Raises
        ------
        ValidationError
            On duplicate layer ids, frames of unknown layers, or sets whose
            time axes differ.
        """
        from viz.citymap import view_for_bounds

        layers, legends, toggles = [], [], []
        for s in self.sets:
            js = [layer_json(lyr) for lyr in s.layers]
            layers += js
            legends += [lg.to_json() for lg in s.legends]
            if s.label and js:
                toggles.append({"label": s.label, "layers": [j["id"] for j in js], "visible": s.visible})
        ids = [j["id"] for j in layers]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValidationError(f"duplicate layer id(s) {dup}: give each layer of a scene its own id")
        view = self.view
        if view is None:
            b = self.bounds()
            if b is not None:
                v = view_for_bounds(*b)
                view = {"longitude": v.longitude, "latitude": v.latitude, "zoom": v.zoom}
            else:
                view = {"longitude": 114.06, "latitude": 22.6, "zoom": 9.5}
        out = {"title": self.title, "view": dict(view), "layers": layers, "legends": _merge_legends(legends),
               "toggles": toggles, "timeline": self._timeline(set(ids))}
        fonts = _resolve_labels(layers)
        if fonts:
            out["fonts"] = fonts
        return out


def _merge_legends(legends: list[dict]) -> list[dict]:
    """One item per distinct ramp (units and stops): titles joined, shown while any of its layers is."""
    out: list[dict] = []
    by_key: dict[str, dict] = {}
    for lg in legends:
        key = json.dumps([lg["units"], lg["stops"]])
        lg = {**lg, "layers": [lg["layer"]]}
        if key in by_key and isinstance(lg["stops"][0][0], (int, float)):
            m = by_key[key]
            m["layers"].append(lg["layer"])
            if lg["title"] not in m["title"].split(" / "):
                m["title"] += " / " + lg["title"]
            continue
        by_key[key] = lg
        out.append(lg)
    return out


def _resolve_labels(layers: list[dict]) -> list[dict]:
    """Give the label layers (:func:`viz.layers._labels.label_layer`) their font; returns the scene's fonts.

    Replaces each label layer dict in ``layers`` with a copy whose ``characterSet``
    is every label character of the scene.  Without a CJK font
    (:class:`~twin.errors.DataMissingError`) it warns and keeps the Latin text only.
    """
    import warnings

    from twin.errors import DataMissingError
    from viz.fonts import LABEL_FAMILY, MissingFontWarning, is_latin, label_chars, label_font

    idx = [i for i, j in enumerate(layers) if j.get("@@type") == "TextLayer" and j.get("fontFamily") == LABEL_FAMILY]
    if not idx:
        return []
    chars = label_chars(r["t"] for i in idx for r in layers[i]["data"])
    if not chars:
        return []
    try:
        font = label_font(chars)
    except DataMissingError as exc:
        warnings.warn(f"map labels drawn in Latin only: {exc}", MissingFontWarning, stacklevel=3)
        for i in idx:
            rows = [{**r, "t": r["l"]} for r in layers[i]["data"] if r.get("l")]
            layers[i] = {**layers[i], "data": rows, "fontFamily": "sans-serif"}
        latin = label_chars(r["t"] for i in idx for r in layers[i]["data"])
        for i in idx:
            layers[i]["characterSet"] = "".join(ch for ch in latin if is_latin(ch))
        return []
    for i in idx:
        layers[i] = {**layers[i], "characterSet": chars, "fontFamily": font["family"]}
    return [{"family": font["family"], "url": font["url"]}]


def _default_label(t: float) -> str:
    """``"+1 h 20 min"`` style label of a time in seconds."""
    m = int(round(t / 60))
    h, m = divmod(m, 60)
    return f"+{h} h {m:02d} min" if h else f"+{m} min"


def dumps(scene_json: dict) -> str:
    """Compact JSON text of a scene, safe to put inside an HTML ``<script>`` element."""
    text = json.dumps(scene_json, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.replace("</", "<\\/").replace("<!--", "<\\u0021--")
