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

from twin.errors import ValidationError
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
    the kind's layers, main layer on top.

    A run on a model grid (``x``/``y`` dimensions with a ``crs``) hands its layers the grid's
    warp and opens on the grid; a run without one (agents on a road graph, a building) gets
    ``warp=None`` and the map opens on the union of its layers' bounds.
    """
    vec = _city_vectors(city)
    warp = _grid_warp(ds, max_px)
    scene = Scene(title=title or str(ds.attrs.get("title") or kind.title))
    shade, water = grid_basemap_inputs(ds) if warp is not None else (None, None)
    if shade is not None or vec.get("districts") is not None:
        scene.add(build("basemap", shade, water=water, districts=vec.get("districts"),
                        coast=vec.get("coast")))
    if vec.get("metro_lines") is not None or vec.get("metro_stations") is not None:
        scene.add(build("metro", vec.get("metro_lines"), vec.get("metro_stations")))
    own = kind.layers(ds, warp=warp, max_px=max_px)
    for layer_set in reversed(own):
        scene.add(layer_set)
    from viz.flood_map import add_labels

    add_labels(scene, vec)
    from viz.citymap import view_for_bounds

    bounds = warp.bounds if warp is not None else layers_bounds(own) or scene.bounds()
    if bounds is None:
        raise ValidationError(f"{kind.name} run: its layers give no extent to open the map on; "
                              "give each LayerSet its bounds")
    v = view_for_bounds(*bounds)
    scene.view = {"longitude": v.longitude, "latitude": v.latitude, "zoom": v.zoom}
    if getattr(kind, "map_view", None) is not None:
        scene.view = dict(kind.map_view(ds, dict(scene.view)))
    return scene


def _grid_warp(ds: xr.Dataset, max_px: int) -> MercatorWarp | None:
    """The warp of a run's model grid, or None for a run without one (agents on a road graph)."""
    if "x" not in ds.dims or "y" not in ds.dims:
        return None
    return MercatorWarp.for_grid(ds, max_px=max_px)


def layers_bounds(sets: list) -> tuple[float, float, float, float] | None:
    """Union of the bounds of a kind's own layer sets (the map opens on the run, not the city)."""
    b = [s.bounds for s in sets if s.bounds is not None]
    if not b:
        return None
    w, s, e, n = (min(x[0] for x in b), min(x[1] for x in b), max(x[2] for x in b), max(x[3] for x in b))
    pad = 0.001  # ~100 m: one building, or agents on one street, still get an extent to zoom to
    return (w - pad, s - pad, e + pad, n + pad) if e - w < 2 * pad or n - s < 2 * pad else (w, s, e, n)


def write_run_map(kind: Any, ds: xr.Dataset, out_html: str | os.PathLike, *, city: Any = None,
                  max_px: int = MAX_PX) -> dict:
    """Write the offline map page of a run; returns ``{"path", "bytes", "frames"}``."""
    scene = run_scene(kind, ds, city=city, max_px=max_px)
    js = scene.to_json()
    path = Path(write_page(js, out_html, title=scene.title))
    tl = js.get("timeline")
    return {"path": path, "bytes": path.stat().st_size, "frames": len(tl["times_s"]) if tl else 0}


__all__ = ["layers_bounds", "run_scene", "write_run_map"]
