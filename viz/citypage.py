"""The city's "one map" page: static layers of a :class:`twin.city.City` on an offline deck.gl page."""

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


def write_city_map(city_name: str, out: str | Path, *, resolution: float = 90.0) -> dict:
    """Write the offline map page of a city; returns ``{"bytes": n, "layers": [...]}``.

    The hillshade is computed on the working grid at ``resolution`` metres
    (90 m keeps the page near 6 MB; the bitmap is capped at 2048 px anyway),
    with water (GSHHG land mask) tinted. Optional layers that are missing
    are left out; required ones raise :class:`DataMissingError`.
    """
    from gis.raster import make_grid, transform_of
    from gis.terrain import hillshade
    from twin.city import City
    from viz.citymap import city_map_deck
    from viz.offline import write_offline_html

    city = City(city_name)
    ds = city.static(resolution, terrain=False)
    shade = hillshade(ds["elevation"])
    water = make_grid((ds["land"].values == 0).astype("uint8"), transform_of(ds), ds.attrs["crs"], name="water")
    layers = {"districts": city.districts()}
    for name, kind in MAP_LAYERS.items():
        try:
            layers[kind] = city.vector(name)
        except DataMissingError:
            if not city.manifest.layers[name].optional:
                raise
    deck = city_map_deck(shade, layers, water=water)
    path = write_offline_html(deck, out, title=f"{city.manifest.city.title} — Shenzhen Twin")
    return {"bytes": Path(path).stat().st_size, "layers": ["hillshade", *layers]}
