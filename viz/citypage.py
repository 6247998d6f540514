"""The city's "one map" page: static layers of a :class:`twin.city.City` on the scene page.

The page is a :class:`viz.scene.Scene` written by :func:`viz.page.write_page`
and drawn by ``viz/static/twinmap.js``, like the flood and run pages, so it
has their title, layer panel, legends, labels and scale bar: basemap
(hillshade clear over the sea, districts, coast), roads, metro, then the
place names (districts in Chinese and pinyin, main roads, metro lines) and
the station names (off at first).
"""

from __future__ import annotations

from pathlib import Path

from twin.errors import DataMissingError

#: Vector layers drawn when the city has them (manifest name -> map layer kind).
MAP_LAYERS = {
    "coast": "coast",
    "roads": "roads",
    "metro_lines": "metro_lines",
    "metro_stations": "metro_stations",
}


def city_vectors(city) -> dict:
    """Districts and the optional vector layers of ``MAP_LAYERS`` a city has (missing optional ones left out)."""
    layers = {"districts": city.districts()}
    for name, kind in MAP_LAYERS.items():
        try:
            layers[kind] = city.vector(name)
        except DataMissingError:
            if not city.manifest.layers[name].optional:
                raise
    return layers


def city_scene(city_name: str, *, resolution: float = 90.0):
    """The scene of a city's map (see the module docstring)."""
    from gis.raster import make_grid, transform_of
    from gis.terrain import hillshade
    from twin.city import City
    from viz.flood_map import add_labels
    from viz.layers import build
    from viz.scene import Scene

    city = City(city_name)
    ds = city.static(resolution, terrain=False)
    shade = hillshade(ds["elevation"])
    water = make_grid((ds["land"].values == 0).astype("uint8"), transform_of(ds), ds.attrs["crs"], name="water")
    vec = city_vectors(city)
    scene = Scene(title=f"{city.manifest.city.title} — city map")
    scene.add(build("basemap", shade, water=water, districts=vec["districts"], coast=vec.get("coast")))
    if vec.get("roads") is not None:
        scene.add(build("roads", vec["roads"]))
    if vec.get("metro_lines") is not None or vec.get("metro_stations") is not None:
        scene.add(build("metro", vec.get("metro_lines"), vec.get("metro_stations")))
    add_labels(scene, vec)
    return scene


def write_city_map(city_name: str, out: str | Path, *, resolution: float = 90.0) -> dict:
    """Write the offline map page of a city; returns ``{"bytes": n, "layers": [...]}``.

    The hillshade is computed on the working grid at ``resolution`` metres
    (the bitmap is capped at 2048 px anyway), clear over water (GSHHG land
    mask). Optional layers that are missing are left out; required ones
    raise :class:`DataMissingError`.
    """
    from viz.page import write_page

    scene = city_scene(city_name, resolution=resolution)
    js = scene.to_json()
    path = write_page(js, out, title=scene.title)
    return {"bytes": Path(path).stat().st_size, "layers": [j["id"] for j in js["layers"]]}
