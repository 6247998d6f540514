"""Kind ``metro``: metro lines in their own colours and stations as dots, with tooltips."""

from __future__ import annotations

import geopandas as gpd

from viz.layers import register
from viz.scene import LayerSet


@register("metro")
def metro(lines: gpd.GeoDataFrame | None = None, stations: gpd.GeoDataFrame | None = None, *,
          label: str = "Metro") -> LayerSet:
    """Metro lines (``lineColor``/``color``) and stations (name, line); either may be None."""
    from viz.citymap import metro_lines_layer, metro_stations_layer

    layers = []
    if lines is not None and len(lines):
        layers += metro_lines_layer(lines)
    if stations is not None and len(stations):
        layers += metro_stations_layer(stations)
    return LayerSet(layers=layers, label=label)
