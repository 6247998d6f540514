"""Kind ``flood_arrival``: when water first reached the flood depth (hours after the start)."""

from __future__ import annotations

import re

import numpy as np

from viz.layers import register
from viz.layers._raster import MAX_PX, MercatorWarp, Ramp, raster_layer
from viz.layers.flood_depth import _grid_var
from viz.scene import LayerSet

#: Arrival-time ramp (h): dark red for early arrival to pale yellow for late; never: transparent.
ARRIVAL_RAMP = Ramp([
    (0.0, (150, 0, 20, 230)),
    (0.5, (215, 40, 30, 220)),
    (1.0, (240, 110, 40, 210)),
    (2.0, (250, 175, 60, 200)),
    (3.0, (250, 220, 100, 190)),
    (6.0, (255, 250, 190, 180)),
])


@register("flood_arrival")
def flood_arrival(ds, *, max_px: int = MAX_PX, layer_id: str = "flood_arrival",
                  warp: MercatorWarp | None = None, label: str = "Flood arrival time",
                  visible: bool = False) -> LayerSet:
    """``arrival_time`` (s, NaN = never) as hours, on a bitmap; hidden at first."""
    arr = _grid_var(ds, "arrival_time")
    warp = warp or MercatorWarp.for_grid(arr, max_px=max_px)
    hours = np.asarray(arr.values, dtype=np.float32) / 3600.0
    layer = raster_layer(layer_id, warp(hours), ARRIVAL_RAMP, warp.bounds, units="h", name="Flood arrival",
                         step=1 / 360, nodata_text="never flooded (or outside the model)")
    m = re.search(r">=\s*([0-9.]+)\s*m", str(arr.attrs.get("long_name", "")))
    title = "Flood arrival" + (f" (depth ≥ {m.group(1)} m)" if m else "")
    return LayerSet(layers=[layer], legends=[ARRIVAL_RAMP.legend(layer_id, title, "h")], label=label,
                    visible=visible, bounds=warp.bounds)
