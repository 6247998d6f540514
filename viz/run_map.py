"""The offline map page of any run kind: the run's basemap, the city's vectors and the kind's layers.

The run pipeline writes it as ``map.html``; a model supplies only its
``layers`` (:class:`twin.runkinds.RunKind`). The flood keeps its richer page
with A/B compare (:mod:`viz.flood_map`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import xarray as xr

from viz.layers import build
from viz.layers._raster import MAX_PX, MercatorWarp
from viz.layers.basemap import grid_basemap_inputs
from viz.page import write_page
from viz.scene import Scene


def _city_vectors(city: Any) -> dict:
    """Districts, coast and metro of ``city`` (a City or a name; None: none)."""
    if city is None:
        return {}
    from viz.flood_map import _city_layers

    return _city_layers(city if isinstance(city, str) else city.name)


def run_scene(kind: Any, ds: xr.Dataset, *, city: Any = None, title: str | None = None,
              max_px: int = MAX_PX) -> Scene:
    """Scene of a run: basemap (hillshade of the run's ``elevation``, when it has one), metro, then
    the kind's layers, main layer on top."""
    vec = _city_vectors(city)
    warp = MercatorWarp.for_grid(ds, max_px=max_px)
    scene = Scene(title=title or str(ds.attrs.get("title") or kind.title))
    shade, water = grid_basemap_inputs(ds)
    if shade is not None or vec.get("districts") is not None:
        scene.add(build("basemap", shade, water=water, districts=vec.get("districts"),
                        coast=vec.get("coast")))
    if vec.get("metro_lines") is not None or vec.get("metro_stations") is not None:
        scene.add(build("metro", vec.get("metro_lines"), vec.get("metro_stations")))
    for layer_set in reversed(kind.layers(ds, warp=warp, max_px=max_px)):
        scene.add(layer_set)
    from viz.flood_map import add_labels

    add_labels(scene, vec)
    from viz.citymap import view_for_bounds

    v = view_for_bounds(*warp.bounds)
    scene.view = {"longitude": v.longitude, "latitude": v.latitude, "zoom": v.zoom}
    return scene


def write_run_map(kind: Any, ds: xr.Dataset, out_html: str | os.PathLike, *, city: Any = None,
                  max_px: int = MAX_PX) -> dict:
    """Write the offline map page of a run; returns ``{"path", "bytes", "frames"}``."""
    scene = run_scene(kind, ds, city=city, max_px=max_px)
    js = scene.to_json()
    path = Path(write_page(js, out_html, title=scene.title))
    tl = js.get("timeline")
    return {"path": path, "bytes": path.stat().st_size, "frames": len(tl["times_s"]) if tl else 0}


__all__ = ["run_scene", "write_run_map"]
