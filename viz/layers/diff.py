"""Kind ``diff``: difference of two rasters (B − A) on a diverging ramp, for A/B compare."""

from __future__ import annotations

import numpy as np
import xarray as xr

from twin.errors import GridError
from viz.layers import register
from viz.layers._raster import (
    MAX_PX,
    MercatorWarp,
    Ramp,
    bitmap_layer,
    grid_transform,
    png_data_url,
    value_grid,
)
from viz.scene import LayerSet

#: Diverging ramp (m): blue where B is lower than A, red where higher; |B − A| < 0.05 m transparent.
DIFF_RAMP = Ramp([
    (-2.0, (5, 48, 97, 235)),
    (-1.0, (33, 102, 172, 225)),
    (-0.5, (67, 147, 195, 215)),
    (-0.2, (146, 197, 222, 200)),
    (-0.05, (209, 229, 240, 170)),
    (0.05, (253, 219, 199, 170)),
    (0.2, (244, 165, 130, 200)),
    (0.5, (214, 96, 77, 215)),
    (1.0, (178, 24, 43, 225)),
    (2.0, (103, 0, 31, 235)),
], transparent_below=False)


def difference(a: xr.DataArray, b: xr.DataArray) -> xr.DataArray:
    """``b − a`` on ``a``'s grid (``b`` is warped onto it when the grids differ, nearest cell)."""
    from gis.raster import reproject

    same = a.shape == b.shape and a.attrs.get("crs") == b.attrs.get("crs") and \
        np.allclose(tuple(grid_transform(a))[:6], tuple(grid_transform(b))[:6])
    if not same:
        if not a.attrs.get("crs") or not b.attrs.get("crs"):
            raise GridError("diff: the grids differ and one has no attrs['crs'] to warp it by")
        b = reproject(b, a.attrs["crs"], resampling="nearest", like=a)
    d = np.asarray(b.values, dtype=np.float32) - np.asarray(a.values, dtype=np.float32)
    out = a.copy(data=d)
    out.attrs = {k: a.attrs[k] for k in ("crs", "transform") if k in a.attrs}
    return out


@register("diff")
def diff(a: xr.DataArray, b: xr.DataArray, *, title: str = "Max depth B − A", units: str = "m",
         ramp: Ramp = DIFF_RAMP, threshold: float = 0.05, max_px: int = MAX_PX,
         layer_id: str = "diff", label: str = "Difference B − A") -> LayerSet:
    """B − A of two rasters: blue where B is lower, red where higher, clear where |B − A| < threshold."""
    d = difference(a, b)
    warp = MercatorWarp.for_grid(d, max_px=max_px)
    full = warp(d.values)
    v = full.copy()
    v[np.abs(v) < threshold] = np.nan
    layer = bitmap_layer(layer_id, png_data_url(v, ramp), warp.bounds)
    # The read-out shows every difference, also those too small to colour.
    layer["twinValues"] = value_grid(full, units=units, name=title, step=0.01 if units == "m" else None,
                                     nodata_text="outside the model")
    return LayerSet(layers=[layer], legends=[ramp.legend(layer_id, title, units)], label=label,
                    bounds=warp.bounds)
