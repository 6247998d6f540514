"""Scenes the console serves: the basemap, the latest forecast and the live sensors.

A scene is the JSON dict of the viz contract (``title``, ``view``, ``layers``
— deck.gl layer JSON as pydeck emits it —, ``legends``, ``timeline``); the page
hands it to ``TwinMap``. Scenes are built once and cached (the basemap per
process, the forecast per finished run), except the sensors layer, which
follows the live state.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from twin.errors import DataMissingError

#: Colours of the sensor statuses (RGBA), also used by the page's legend.
STATUS_COLORS = {
    "ok": [46, 160, 67, 230],
    "stale": [230, 160, 20, 230],
    "offline": [128, 128, 128, 230],
    "alarm": [220, 30, 30, 255],
}
BASE_LAYERS = {"coast": "coast", "roads": "roads", "metro_lines": "metro_lines",
               "metro_stations": "metro_stations"}


def empty_scene(title: str, view: dict[str, float] | None = None) -> dict[str, Any]:
    """A valid scene with no layers."""
    return {"title": title,
            "view": view or {"longitude": 114.06, "latitude": 22.6, "zoom": 9.5},
            "layers": [], "legends": [], "timeline": None}


def _deck_scene(deck: Any, title: str) -> dict[str, Any]:
    doc = json.loads(deck.to_json())
    v = doc.get("initialViewState") or {}
    return {"title": title,
            "view": {k: v[k] for k in ("longitude", "latitude", "zoom") if k in v},
            "layers": doc.get("layers", []), "legends": [], "timeline": None}


def base_scene(city: Any, resolution: float = 90.0) -> dict[str, Any]:
    """The city's basemap: hillshade with water, districts, coast, roads and metro.

    Uses the ``basemap`` layer kinds of :mod:`viz.layers` when they exist, else the
    builders of :mod:`viz.citymap`.
    """
    try:
        from viz.layers import build_layers  # noqa: F401  (the map helper's registry)
        from viz.scene import Scene  # noqa: F401
    except ImportError:
        pass
    else:
        scene = _registry_base(city, resolution)
        if scene is not None:
            return scene
    from gis.raster import make_grid, transform_of
    from gis.terrain import hillshade
    from viz.citymap import city_map_deck

    ds = city.static(resolution, terrain=False)
    shade = hillshade(ds["elevation"])
    water = make_grid((ds["land"].values == 0).astype("uint8"), transform_of(ds), ds.attrs["crs"],
                      name="water")
    layers = {"districts": city.districts()}
    for name, kind in BASE_LAYERS.items():
        try:
            layers[kind] = city.vector(name)
        except DataMissingError:
            if not city.manifest.layers[name].optional:
                raise
    deck = city_map_deck(shade, layers, water=water, max_px=1600)
    return _deck_scene(deck, f"{city.manifest.city.title} — basemap")


def _registry_base(city: Any, resolution: float) -> dict[str, Any] | None:
    """Placeholder for the registry path (filled in once viz.layers lands)."""
    return None


def sensors_layer(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """deck.gl ScatterplotLayer JSON of the located sensors, coloured by status."""
    data = []
    for e in entries:
        if e.get("lon") is None or e.get("lat") is None:
            continue
        value = "—" if e.get("value") is None else f"{e['value']:.4g} {e.get('unit') or ''}".strip()
        data.append({"id": e["id"], "position": [e["lon"], e["lat"]], "status": e["status"],
                     "color": STATUS_COLORS.get(e["status"], STATUS_COLORS["offline"]),
                     "tooltip": f"{e['id']}: {value} ({e['status']})"})
    return {"@@type": "ScatterplotLayer", "id": "sensors", "data": data,
            "getPosition": "@@=position", "getFillColor": "@@=color", "getLineColor": [255, 255, 255, 255],
            "stroked": True, "lineWidthMinPixels": 1, "getRadius": 7, "radiusUnits": "pixels",
            "pickable": True}


def forecast_scene(run: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """Scene of a finished forecast run: depth frames with a timeline, arrival time."""
    title = f"Forecast run {run['id']}: {run['params'].get('storm')} over " \
            f"{', '.join(run['params'].get('districts') or ['the city'])}"
    scene = _registry_forecast(run, run_dir)
    if scene is not None:
        return scene
    out = empty_scene(title)
    out["run"] = run["id"]
    return out


def _registry_forecast(run: dict[str, Any], run_dir: Path) -> dict[str, Any] | None:
    """Placeholder for the registry path (filled in once viz.layers lands)."""
    return None


class SceneCache:
    """Builds each scene once (thread-safe): the basemap, and the forecast per run id."""

    def __init__(self, city: Any, *, base_resolution: float = 90.0) -> None:
        self.city = city
        self.base_resolution = float(base_resolution)
        self._lock = threading.Lock()
        self._base: dict[str, Any] | None = None
        self._forecast: tuple[int, dict[str, Any]] | None = None

    def base(self) -> dict[str, Any]:
        with self._lock:
            if self._base is None:
                self._base = base_scene(self.city, self.base_resolution)
            return self._base

    def forecast(self, latest: tuple[dict[str, Any], Path] | None) -> dict[str, Any]:
        if latest is None:
            out = empty_scene("No forecast yet: start a run")
            out["run"] = None
            return out
        run, run_dir = latest
        with self._lock:
            if self._forecast is None or self._forecast[0] != run["id"]:
                self._forecast = (run["id"], forecast_scene(run, run_dir))
            return self._forecast[1]


__all__ = ["STATUS_COLORS", "SceneCache", "base_scene", "empty_scene", "forecast_scene", "sensors_layer"]
