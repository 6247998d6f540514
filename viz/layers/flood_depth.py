"""Kinds ``flood_depth`` (depth over time, one bitmap per frame) and ``flood_max_depth``.

Depths are coloured by :data:`DEPTH_RAMP` (metres); cells shallower than its
first stop (0.05 m) and cells outside the domain (NaN) are transparent.
The time series is thinned to at most ``max_frames`` frames (default 37: a
6 h run saved every 10 min keeps all), always keeping the first and the
last.  Measured on real runs: a palette-PNG frame averages ~28 kB for
Futian+Luohu at 30 m (821×467 cells) and ~44 kB for the whole city at
90 m (1011×580), so a 37-frame page is the 4.3 MB bundle plus ~1.7–2.4 MB.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from twin.errors import ValidationError
from viz.layers import register
from viz.layers._raster import MAX_PX, MercatorWarp, Ramp, bitmap_layer, png_data_url
from viz.scene import LayerSet

#: Depth colour ramp (m): pale blue for shallow water to purple for > 2 m.
DEPTH_RAMP = Ramp([
    (0.05, (200, 230, 250, 120)),
    (0.15, (140, 195, 240, 170)),
    (0.3, (80, 155, 225, 200)),
    (0.5, (35, 105, 205, 220)),
    (1.0, (20, 55, 165, 235)),
    (2.0, (70, 25, 140, 245)),
    (4.0, (120, 0, 95, 255)),
])


def frame_indices(n: int, max_frames: int) -> list[int]:
    """At most ``max_frames`` indices of ``range(n)``, evenly spread, first and last kept."""
    if n <= 0:
        return []
    if max_frames < 2:
        raise ValidationError(f"max_frames={max_frames}: keep at least 2 frames (first and last)")
    if n <= max_frames:
        return list(range(n))
    return sorted({int(round(v)) for v in np.linspace(0, n - 1, max_frames)})


def _grid_var(ds, name: str) -> xr.DataArray:
    if isinstance(ds, xr.DataArray):
        da = ds
    else:
        if name not in ds:
            raise ValidationError(f"the dataset has no {name!r} variable (has {sorted(ds.data_vars)}): "
                                  "is it a flood run (twin flood run writes flood.nc)?")
        da = ds[name].copy(deep=False)
        da.attrs = {**{k: ds.attrs[k] for k in ("crs", "transform") if k in ds.attrs}, **da.attrs}
    return da


def time_label(t: float) -> str:
    """``+2 h 10 min`` for 7800 s."""
    m = int(round(float(t) / 60))
    h, m = divmod(m, 60)
    return f"+{h} h {m:02d} min" if h else f"+{m} min"


@register("flood_depth")
def flood_depth(ds, *, max_frames: int = 37, max_px: int = MAX_PX, layer_id: str = "flood_depth",
                warp: MercatorWarp | None = None, label: str = "Flood depth") -> LayerSet:
    """Water depth over time: a BitmapLayer whose image changes with the time slider.

    Parameters
    ----------
    ds : Dataset or DataArray
        A flood run (``depth`` (time, y, x) in m, coordinate ``time`` in s,
        attrs ``crs``/``transform``) or the depth DataArray itself.
    max_frames : int
        Cap on the frames kept (evenly thinned, first and last kept).
    max_px : int
        Cap on the bitmap's width and height.
    warp : MercatorWarp or None
        Reuse a warp built for the same grid (saves its set-up).
    """
    depth = _grid_var(ds, "depth")
    if depth.dims != ("time", "y", "x"):
        raise ValidationError(f"depth dims {depth.dims}: expected ('time', 'y', 'x')")
    warp = warp or MercatorWarp.for_grid(depth.isel(time=0), max_px=max_px)
    times = np.asarray(depth["time"].values, dtype=float)
    keep = frame_indices(len(times), max_frames)
    urls = [png_data_url(warp(depth.values[i]), DEPTH_RAMP) for i in keep]
    layer = bitmap_layer(layer_id, urls[0], warp.bounds)
    frames = [{}] + [{"image": u} for u in urls[1:]]  # frame 0 is the layer's own image
    t = [float(times[i]) for i in keep]
    return LayerSet(layers=[layer], legends=[DEPTH_RAMP.legend(layer_id, "Water depth", "m")],
                    label=label, times_s=t, labels=[time_label(v) for v in t],
                    frames={layer_id: frames}, bounds=warp.bounds)


@register("flood_max_depth")
def flood_max_depth(ds, *, max_px: int = MAX_PX, layer_id: str = "flood_max_depth",
                    warp: MercatorWarp | None = None, label: str = "Maximum depth",
                    visible: bool = False, legend: bool = True) -> LayerSet:
    """Maximum depth of a run (``max_depth``, m), same colours as ``flood_depth``; hidden at first."""
    mx = _grid_var(ds, "max_depth")
    warp = warp or MercatorWarp.for_grid(mx, max_px=max_px)
    layer = bitmap_layer(layer_id, png_data_url(warp(mx.values), DEPTH_RAMP), warp.bounds)
    legends = [DEPTH_RAMP.legend(layer_id, "Maximum depth", "m")] if legend else []
    return LayerSet(layers=[layer], legends=legends, label=label, visible=visible, bounds=warp.bounds)
