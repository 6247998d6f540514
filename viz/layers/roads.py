"""Kind ``roads``: road lines (wider for motorway–secondary), each two-way street drawn once."""

from __future__ import annotations

import geopandas as gpd

from viz.layers import register
from viz.scene import LayerSet


@register("roads")
def roads(gdf: gpd.GeoDataFrame, *, label: str = "Roads", visible: bool = True) -> LayerSet:
    """Roads of ``gdf`` (any CRS; class in ``type``/``highway``/``fclass``)."""
    from viz.citymap import roads_layer

    return LayerSet(layers=roads_layer(gdf), label=label, visible=visible)
