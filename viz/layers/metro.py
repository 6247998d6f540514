"""Kind ``metro``: metro lines in their own colours and stations as dots, with tooltips."""

from __future__ import annotations

import geopandas as gpd

from viz.layers import register
from viz.scene import LayerSet, Legend


@register("metro")
def metro(lines: gpd.GeoDataFrame | None = None, stations: gpd.GeoDataFrame | None = None, *,
          label: str = "Metro") -> LayerSet:
    """Metro lines (``lineColor``/``color``) and stations (name, line); either may be None.

    The legend gives each line's colour ("Line 1", ...).
    """
    from viz.citymap import hex_to_rgb, metro_lines_layer, metro_stations_layer
    from viz.layers.labels import _line_text

    layers, legends = [], []
    if lines is not None and len(lines):
        layers += metro_lines_layer(lines)
        col = next((c for c in ("lineColor", "color", "colour") if c in lines.columns), None)
        if "line" in lines.columns and col:
            stops = [(_line_text(n)[1] or str(n), hex_to_rgb(c)) for n, c in zip(lines["line"], lines[col],
                                                                                  strict=True)]
            legends.append(Legend("metro_lines", "Metro lines", "", stops))
    if stations is not None and len(stations):
        layers += metro_stations_layer(stations)
    return LayerSet(layers=layers, legends=legends, label=label)
