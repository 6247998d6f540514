"""Kinds ``flood_depth`` (depth over time, one bitmap per frame) and ``flood_max_depth``.

Depths are coloured by :data:`DEPTH_RAMP` (metres); cells shallower than its
first stop (0.05 m) and cells outside the domain (NaN) are transparent.
The time series is thinned to at most ``max_frames`` frames (default 37: a
6 h run saved every 10 min keeps all), always keeping the first and the
last.  The page opens on the kept frame with the largest flooded area
(cells at or above the ramp's first stop, i.e. drawn), whose slider label
says so.  Every frame also carries its depths for the hover read-out
(1 cm steps, zlib: :func:`viz.layers._raster.value_grid`).  Measured on
real runs: a palette-PNG frame averages ~28 kB for Futian+Luohu at 30 m
(821×467 cells) and ~44 kB for the whole city at 90 m (1011×580); the
whole-city values add ~64 kB a frame, so a 37-frame city page went from
6.6 MB to 9.4 MB (the 4.3 MB bundle included).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from twin.errors import ValidationError
from viz.layers import register
from viz.layers._raster import MAX_PX, MercatorWarp, Ramp, raster_frame, raster_layer
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


#: Depth read-out step on the page (m): 1 cm (read-out within 5 mm); 1 mm made values ~25 % bigger.
DEPTH_STEP_M = 0.01


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
    first_stop = float(DEPTH_RAMP.values[0])
    patches, wet = [], []
    for i in keep:
        v = warp(depth.values[i])
        wet.append(int(np.count_nonzero(np.asarray(depth.values[i]) >= first_stop)))
        patches.append(raster_frame(v, DEPTH_RAMP, units="m", name="Water depth", step=DEPTH_STEP_M,
                                    below_text="dry", nodata_text="outside the model"))
    layer = raster_layer(layer_id, warp(depth.values[keep[0]]), DEPTH_RAMP, warp.bounds, units="m",
                         name="Water depth", step=DEPTH_STEP_M, below_text="dry",
                         nodata_text="outside the model")
    frames = [{}] + patches[1:]  # frame 0 is the layer's own image and values
    t = [float(times[i]) for i in keep]
    initial = largest_flooded_frame(wet)
    labels = [time_label(v) for v in t]
    if wet[initial] > 0:
        labels[initial] += " — largest flooded area"
    return LayerSet(layers=[layer], legends=[DEPTH_RAMP.legend(layer_id, "Water depth", "m")],
                    label=label, times_s=t, labels=labels, frames={layer_id: frames},
                    bounds=warp.bounds, initial_frame=initial)


def largest_flooded_frame(wet_cells) -> int:
    """Index of the frame with the most wet cells (the first of equals; 0 when all are dry)."""
    wet = np.asarray(wet_cells)
    return int(np.argmax(wet)) if wet.size else 0


@register("flood_max_depth")
def flood_max_depth(ds, *, max_px: int = MAX_PX, layer_id: str = "flood_max_depth",
                    warp: MercatorWarp | None = None, label: str = "Maximum depth",
                    visible: bool = False, legend: bool = True) -> LayerSet:
    """Maximum depth of a run (``max_depth``, m), same colours as ``flood_depth``; hidden at first.

    It always has its legend, so the page keeps one when only this layer is
    shown; a scene merges it with the depth frames' legend (same ramp) into
    one item.  ``legend`` is accepted for compatibility and no longer drops it.
    """
    mx = _grid_var(ds, "max_depth")
    warp = warp or MercatorWarp.for_grid(mx, max_px=max_px)
    layer = raster_layer(layer_id, warp(mx.values), DEPTH_RAMP, warp.bounds, units="m", name="Maximum depth",
                         step=DEPTH_STEP_M, below_text="dry", nodata_text="outside the model")
    legends = [DEPTH_RAMP.legend(layer_id, "Maximum depth", "m")]
    return LayerSet(layers=[layer], legends=legends, label=label, visible=visible, bounds=warp.bounds)
