"""Kind ``roads``: road lines (wider for motorway–secondary), each two-way street drawn once."""

from __future__ import annotations

import geopandas as gpd

from viz.layers import register
from viz.scene import LayerSet, Legend


@register("roads")
def roads(gdf: gpd.GeoDataFrame, *, label: str = "Roads", visible: bool = True) -> LayerSet:
    """Roads of ``gdf`` (any CRS; class in ``type``/``highway``/``fclass``)."""
    from viz.citymap import roads_layer

    layers = roads_layer(gdf)
    legends = [Legend("roads", "Roads", "", [("Motorway to secondary", (80, 80, 80, 220)),
                                             ("Other streets", (150, 150, 150, 170))])] if layers else []
    return LayerSet(layers=layers, legends=legends, label=label, visible=visible)
