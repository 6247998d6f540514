"""The map page of a flood run (``twin flood map``): depth with a time slider, maxima, arrival; A/B compare.

A page shows, bottom to top: our basemap (hillshade of the run's elevation
with the sea tinted; the city's districts and coast when a city is given),
metro lines and stations, the arrival time and the maximum depth (both off
at first, toggled in the layer panel) and the depth of every kept frame,
switched by the time slider.  With ``compare_with`` the page is a split
view A | B with synced views and a toggle that shows B − A of the maximum
depth in the right half.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import xarray as xr

from twin.errors import DataMissingError, ValidationError
from viz.layers import build
from viz.layers._raster import MAX_PX, MercatorWarp
from viz.layers.basemap import grid_basemap_inputs
from viz.page import write_page
from viz.scene import Scene

DEFAULT_MAX_FRAMES = 37


def open_run(ds_or_path) -> xr.Dataset:
    """A flood run Dataset as given, or opened from its netCDF file (``flood.nc``, or a folder holding one)."""
    if isinstance(ds_or_path, xr.Dataset):
        return ds_or_path
    path = Path(ds_or_path)
    if path.is_dir():
        path = path / "flood.nc"
    if not path.is_file():
        raise DataMissingError(f"flood run {str(path)!r} not found: give the flood.nc that "
                               "`twin flood run --out DIR` wrote (or DIR itself)")
    ds = xr.open_dataset(path)
    for name in ("max_depth", "arrival_time"):
        if name not in ds:
            raise ValidationError(f"{path}: no {name!r} variable (has {sorted(ds.data_vars)}); "
                                  "is it a flood.nc written by `twin flood run`?")
    return ds


def _grid(ds: xr.Dataset, name: str) -> xr.DataArray:
    da = ds[name].copy(deep=False)
    da.attrs = {**{k: ds.attrs[k] for k in ("crs", "transform") if k in ds.attrs}, **da.attrs}
    if not da.attrs.get("crs"):
        raise ValidationError("the run has no attrs['crs']: it cannot be placed on the map "
                              "(runs on a plain array need a georeferenced DEM)")
    return da


def _city_layers(city_name: str | None) -> dict:
    if not city_name:
        return {}
    from twin.city import City

    city = City(city_name)
    out = {"districts": city.districts()}
    for name in ("coast", "metro_lines", "metro_stations"):
        try:
            out[name] = city.vector(name)
        except DataMissingError:
            if not city.manifest.layers[name].optional:
                raise
    return out


def add_labels(scene: Scene, city: dict) -> None:
    """Place names over everything: districts, metro line numbers (and main roads when roads are drawn),
    then the station names (off at first)."""
    if city.get("districts") is None and city.get("metro_lines") is None:
        return
    drawn = {j for s in scene.sets for j in s.layer_ids()}
    scene.add(build("labels", city.get("districts"), metro_lines=city.get("metro_lines"),
                    roads=city.get("roads") if "roads" in drawn else None))
    if city.get("metro_stations") is not None:
        scene.add(build("station_labels", city["metro_stations"]))


def flood_scene(ds: xr.Dataset, *, city: dict | None = None, title: str | None = None,
                max_frames: int = DEFAULT_MAX_FRAMES, max_px: int = MAX_PX,
                view: dict | None = None) -> Scene:
    """The scene of one run (see the module docstring); ``city`` from :func:`_city_layers`."""
    city = city or {}
    mx = _grid(ds, "max_depth")
    warp = MercatorWarp.for_grid(mx, max_px=max_px)
    shade, water = grid_basemap_inputs(ds)
    scene = Scene(title=title or str(ds.attrs.get("title", "Flood run")), view=view)
    scene.add(build("basemap", shade, water=water, districts=city.get("districts"), coast=city.get("coast")))
    if city.get("metro_lines") is not None or city.get("metro_stations") is not None:
        scene.add(build("metro", city.get("metro_lines"), city.get("metro_stations")))
    scene.add(build("flood_arrival", _grid(ds, "arrival_time"), warp=warp))
    scene.add(build("flood_max_depth", mx, warp=warp, legend="depth" not in ds))
    if "depth" in ds:
        scene.add(build("flood_depth", _grid(ds, "depth"), warp=warp, max_frames=max_frames))
    add_labels(scene, city)
    if scene.view is None:
        from viz.citymap import view_for_bounds

        v = view_for_bounds(*warp.bounds)
        scene.view = {"longitude": v.longitude, "latitude": v.latitude, "zoom": v.zoom}
    return scene


def write_flood_map(ds_or_path, out_html: str | os.PathLike, *, compare_with=None,
                    city: str | None = None, max_frames: int = DEFAULT_MAX_FRAMES,
                    max_px: int = MAX_PX) -> dict:
    """Write the offline map page of a flood run (or of two, compared).

    Parameters
    ----------
    ds_or_path : Dataset or path
        Run A (``flood.nc`` or its folder).
    out_html : path
        The page to write.
    compare_with : Dataset, path or None
        Run B: split view A | B plus the B − A maximum-depth difference.
    city : str or None
        City whose districts, coast and metro to draw (e.g. ``"shenzhen"``).
    max_frames : int
        Cap on depth frames per run (evenly thinned, first and last kept).
    max_px : int
        Cap on the flood bitmaps' width and height.

    Returns
    -------
    dict
        ``{"path", "bytes", "frames", "bitmap_px", "compare"}``.
    """
    a = open_run(ds_or_path)
    c = _city_layers(city)
    if compare_with is None:
        scene = flood_scene(a, city=c, max_frames=max_frames, max_px=max_px)
        sj = scene.to_json()
        path = write_page(sj, out_html, title=scene.title)
        compare = False
    else:
        b = open_run(compare_with)
        sa = flood_scene(a, city=c, max_frames=max_frames, max_px=max_px,
                         title="A: " + str(a.attrs.get("title", "run A")))
        sb = flood_scene(b, city=c, max_frames=max_frames, max_px=max_px, view=sa.view,
                         title="B: " + str(b.attrs.get("title", "run B")))
        shade, water = grid_basemap_inputs(a)
        diff = Scene(title="B − A: maximum depth", view=sa.view)
        diff.add(build("basemap", shade, water=water, districts=c.get("districts"), coast=c.get("coast")))
        diff.add(build("diff", _grid(a, "max_depth"), _grid(b, "max_depth"), max_px=max_px))
        add_labels(diff, c)
        sj = sa.to_json()
        path = write_page(sj, out_html, title="Flood runs compared",
                          compare=(sb.to_json(), diff.to_json()))
        compare = True
    tl = sj.get("timeline")
    return {"path": Path(path), "bytes": Path(path).stat().st_size,
            "frames": len(tl["times_s"]) if tl else 0, "compare": compare}


def max_depth_difference(a, b) -> np.ndarray:
    """B − A of the maximum depth on A's grid (m), for reports and tests."""
    from viz.layers.diff import difference

    return np.asarray(difference(_grid(open_run(a), "max_depth"), _grid(open_run(b), "max_depth")).values)
