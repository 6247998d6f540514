"""Rasters of a model grid as deck.gl bitmaps: warp to web mercator, colour, encode as PNG.

deck.gl's ``BitmapLayer`` takes ``bounds`` in lon/lat and stretches the
image linearly in *web-mercator* space between them.  A grid in the working
CRS (Gauss–Krüger EPSG:4547) is rotated against web mercator, so an image
of the grid itself would be off by that rotation.  :class:`MercatorWarp`
therefore builds, once per grid, a web-mercator (EPSG:3857) pixel grid
covering it and, for every pixel, the source cell whose area holds the
pixel centre (nearest neighbour, via pyproj); each frame is then one gather.
Pixels outside the source grid are NaN (transparent).

Every raster layer also carries its *values* on the bitmap's own pixel grid
(:func:`value_grid`, prop ``twinValues``: uint16 with scale/offset, zlib,
base64), so the page shows the value under the cursor with its unit without
a server: ``viz/static/twinmap.js`` maps the pointer to the pixel and
decodes it.  Pass ``values=`` (and ``units=``, ``name=``) to
:func:`bitmap_layer`, or use :func:`raster_layer` / :func:`raster_frame`
(bitmap and values in one call): every raster kind goes through them.

Colours come from a :class:`Ramp`: stops ``(value, (r, g, b, a))`` with
colours interpolated between neighbouring stops and quantised to a few
levels per segment, so every frame is a small palette PNG (8-bit indices,
per-entry alpha); values below the first stop (dry cells) and NaN are
fully transparent.
"""

from __future__ import annotations

import base64
import io
import zlib
from dataclasses import dataclass

import numpy as np
import xarray as xr
from affine import Affine
from pyproj import CRS, Transformer

from twin.errors import CRSError, GridError, ValidationError
from viz.scene import Legend

MAX_PX = 1600


def grid_transform(da: xr.DataArray | xr.Dataset) -> Affine:
    """The grid's affine transform (attrs['transform'] or regular x/y coordinates)."""
    from gis.raster import transform_of

    try:
        t = transform_of(da)
    except (KeyError, GridError) as exc:
        raise GridError(f"grid {getattr(da, 'name', '')!r}: no attrs['transform'] and no regular "
                        "x/y coordinates; set attrs['transform']") from exc
    if t.b != 0 or t.d != 0:
        raise GridError(f"rotated grids are not supported (transform={tuple(t)[:6]})")
    return t


@dataclass
class MercatorWarp:
    """Nearest-neighbour resampling of one source grid onto a web-mercator bitmap.

    Build it with :meth:`for_grid`; apply with :meth:`__call__`.

    Attributes
    ----------
    rows, cols : ndarray (h, w) of int
        Source cell of each bitmap pixel (-1 outside the grid).
    bounds : tuple
        (west, south, east, north) of the bitmap in degrees.
    shape : tuple
        (height, width) of the bitmap.
    src_shape : tuple
        Shape of the source grid it was built for.
    """

    rows: np.ndarray
    cols: np.ndarray
    bounds: tuple[float, float, float, float]
    shape: tuple[int, int]
    src_shape: tuple[int, int]

    @classmethod
    def for_grid(cls, da: xr.DataArray | xr.Dataset, max_px: int = MAX_PX,
                 crs: str | None = None) -> MercatorWarp:
        """The warp of ``da``'s grid (attrs crs + transform, or x/y coordinates).

        The bitmap's pixel is about one source cell (web-mercator metres are
        1/cos(lat) ground metres), coarsened so neither side exceeds ``max_px``.
        """
        from rasterio.warp import calculate_default_transform

        crs = crs or da.attrs.get("crs")
        if not crs:
            raise CRSError(f"grid {getattr(da, 'name', '')!r}: attrs['crs'] is missing; set it, e.g. 'EPSG:4547'")
        if int(max_px) < 2:
            raise ValidationError(f"max_px={max_px}: a bitmap needs at least 2 pixels a side")
        t = grid_transform(da)
        h, w = int(da.sizes["y"]), int(da.sizes["x"])
        left, top = t.c, t.f
        right, bottom = t.c + t.a * w, t.f + t.e * h
        src_crs = CRS.from_user_input(crs)
        dst_t, dw, dh = calculate_default_transform(
            src_crs.to_wkt(), "EPSG:3857", w, h, left=min(left, right), bottom=min(top, bottom),
            right=max(left, right), top=max(top, bottom))
        scale = max(dw / max_px, dh / max_px, 1.0)
        if scale > 1.0:
            dw, dh = max(2, int(round(dw / scale))), max(2, int(round(dh / scale)))
            dst_t = Affine(dst_t.a * scale, 0.0, dst_t.c, 0.0, dst_t.e * scale, dst_t.f)
        # Centre of every bitmap pixel, in web mercator, back to the source CRS.
        px = dst_t.c + dst_t.a * (np.arange(dw) + 0.5)
        py = dst_t.f + dst_t.e * (np.arange(dh) + 0.5)
        mx, my = np.meshgrid(px, py)
        to_src = Transformer.from_crs("EPSG:3857", src_crs, always_xy=True)
        sx, sy = to_src.transform(mx, my)
        inv = ~t
        col = np.floor(inv.a * sx + inv.b * sy + inv.c)
        row = np.floor(inv.d * sx + inv.e * sy + inv.f)
        inside = (col >= 0) & (col < w) & (row >= 0) & (row < h)
        rows = np.where(inside, row, -1).astype(np.int32)
        cols = np.where(inside, col, -1).astype(np.int32)
        to_ll = Transformer.from_crs("EPSG:3857", "EPSG:4326", always_xy=True)
        west, north = to_ll.transform(dst_t.c, dst_t.f)
        east, south = to_ll.transform(dst_t.c + dst_t.a * dw, dst_t.f + dst_t.e * dh)
        return cls(rows, cols, (round(west, 7), round(south, 7), round(east, 7), round(north, 7)),
                   (dh, dw), (h, w))

    def __call__(self, values) -> np.ndarray:
        """The source array resampled onto the bitmap (float32, NaN outside)."""
        a = np.asarray(values, dtype=np.float32)
        if a.shape != self.src_shape:
            raise GridError(f"array of shape {a.shape} does not match the warp's grid {self.src_shape}")
        out = a[np.maximum(self.rows, 0), np.maximum(self.cols, 0)]
        out[self.rows < 0] = np.nan
        return out


@dataclass
class Ramp:
    """A colour ramp over increasing stop values.

    NaN is transparent; values below the first stop are transparent too
    (``transparent_below``, e.g. dry cells) or take the first colour; above
    the last they take the last colour.  Between stops the colour is interpolated
    linearly and quantised to ``steps`` levels per segment.
    """

    stops: list[tuple[float, tuple[int, int, int, int]]]
    steps: int = 6
    transparent_below: bool = True

    def __post_init__(self) -> None:
        v = [float(s[0]) for s in self.stops]
        if len(v) < 2 or any(b <= a for a, b in zip(v, v[1:], strict=False)):
            raise ValidationError(f"ramp stops {v}: need at least two, strictly increasing")
        self.values = np.asarray(v)
        self.colours = np.asarray([tuple(s[1]) + (255,) * (4 - len(s[1])) for s in self.stops], dtype=float)

    def palette(self) -> np.ndarray:
        """RGBA palette (n, 4) uint8: entry 0 transparent, then the quantised ramp."""
        n_seg = len(self.values) - 1
        pos = np.linspace(0, n_seg, n_seg * self.steps + 1)
        k = np.minimum(pos.astype(int), n_seg - 1)
        f = (pos - k)[:, None]
        cols = self.colours[k] * (1 - f) + self.colours[k + 1] * f
        return np.vstack([[0, 0, 0, 0], np.round(cols)]).astype(np.uint8)

    def indices(self, values) -> np.ndarray:
        """Palette index of every value (0 = transparent)."""
        a = np.asarray(values, dtype=np.float64)
        n_seg = len(self.values) - 1
        finite = np.isfinite(a)
        pos = np.interp(np.where(finite, a, self.values[0]), self.values, np.arange(n_seg + 1))
        idx = 1 + np.round(pos * self.steps).astype(np.int32)  # stop-index space, clipped
        idx[~finite] = 0
        if self.transparent_below:
            idx[a < self.values[0]] = 0
        return idx.astype(np.uint8)

    def legend(self, layer: str, title: str, units: str) -> Legend:
        return Legend(layer=layer, title=title, units=units,
                      stops=[(float(v), tuple(int(c) for c in col)) for v, col in
                             zip(self.values, self.colours, strict=True)])


def png_data_url(values, ramp: Ramp) -> str:
    """A palette PNG (per-entry alpha) of ``values`` coloured by ``ramp``, as a data URL."""
    from PIL import Image

    pal = ramp.palette()
    img = Image.fromarray(ramp.indices(values), "P")
    img.putpalette(pal[:, :3].reshape(-1).tolist())
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True, transparency=bytes(pal[:, 3].tolist()))
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


#: Codes of :func:`value_grid` (uint16): NaN, and values below the ramp's first stop.
NODATA_CODE, BELOW_CODE = 65535, 65534


def value_grid(values, *, units: str = "", name: str = "", step: float | None = None,
               below: float | None = None, below_text: str = "", nodata_text: str = "no data") -> dict:
    """The values of a bitmap, quantised for the page's hover read-out (prop ``twinValues``).

    Parameters
    ----------
    values : ndarray (h, w)
        Values on the bitmap's pixel grid (a :class:`MercatorWarp` output), NaN = no data.
    units : str
        Shown after the value ("m", "h").
    name : str
        What the value is ("Water depth").
    step : float or None
        Quantisation step (same units); default: the finite range over 65533 levels.
        A coarser step (e.g. 1 mm of depth) compresses better.
    below, below_text : float or None, str
        Values below ``below`` read as ``below_text`` (e.g. 0.05, "dry").
    nodata_text : str
        What NaN reads as.

    Returns
    -------
    dict
        ``{"w", "h", "offset", "scale", "data", "units", "name", "below", "belowText",
        "nodataText"}``: ``data`` is base64 of the zlib-compressed little-endian uint16
        codes, row 0 north; value = offset + scale · code, with codes 65535 (no
        data) and 65534 (below) set apart.  The read-out is within ``scale / 2``
        of the value.
    """
    a = np.asarray(values, dtype=np.float64)
    if a.ndim != 2:
        raise ValidationError(f"value_grid: expected a 2-D array, got shape {a.shape}")
    finite = np.isfinite(a)
    low = finite & (a < below) if below is not None else np.zeros_like(finite)
    keep = finite & ~low
    lo = float(a[keep].min()) if keep.any() else 0.0
    hi = float(a[keep].max()) if keep.any() else 0.0
    if step is None:
        step = (hi - lo) / 65533.0 if hi > lo else 1.0
    step = float(step)
    if not step > 0:
        raise ValidationError(f"value_grid: step={step} must be positive")
    if (hi - lo) / step > 65533:
        step = (hi - lo) / 65533.0
    offset = np.floor(lo / step) * step
    codes = np.zeros(a.shape, dtype="<u2")
    codes[keep] = np.clip(np.round((a[keep] - offset) / step), 0, 65533).astype("<u2")
    codes[low] = BELOW_CODE
    codes[~finite] = NODATA_CODE
    data = base64.b64encode(zlib.compress(codes.tobytes(), 9)).decode("ascii")
    return {"w": int(a.shape[1]), "h": int(a.shape[0]), "offset": float(offset), "scale": step, "data": data,
            "units": units, "name": name, "below": None if below is None else float(below),
            "belowText": below_text, "nodataText": nodata_text}


def decode_value_grid(grid: dict) -> np.ndarray:
    """The values of a :func:`value_grid` (NaN for no data, -inf for "below"), as the page reads them."""
    codes = np.frombuffer(zlib.decompress(base64.b64decode(grid["data"])), dtype="<u2")
    codes = codes.reshape(grid["h"], grid["w"])
    out = grid["offset"] + grid["scale"] * codes.astype(np.float64)
    out[codes == BELOW_CODE] = -np.inf
    out[codes == NODATA_CODE] = np.nan
    return out


def bitmap_layer(layer_id: str, url: str, bounds, *, opacity: float = 1.0, pixelated: bool = True,
                 values=None, units: str = "", name: str = "", **value_opts) -> dict:
    """deck.gl JSON of a BitmapLayer (nearest-neighbour texture sampling when ``pixelated``).

    With ``values`` (the bitmap's values, same pixel grid as the image) the
    layer carries them as ``twinValues`` (:func:`value_grid`; ``units``,
    ``name`` and ``value_opts`` go to it), so hovering it shows the value.
    """
    layer = {"@@type": "BitmapLayer", "id": layer_id, "image": url, "bounds": [float(b) for b in bounds],
             "opacity": float(opacity), "pickable": False}
    if pixelated:
        # WebGL2 texture sampler names as deck.gl 9 / luma.gl 9 take them.
        layer["textureParameters"] = {"minFilter": "nearest", "magFilter": "nearest"}
    if values is not None:
        layer["twinValues"] = value_grid(values, units=units, name=name, **value_opts)
    return layer


def raster_frame(values, ramp: Ramp, *, units: str = "", name: str = "", **value_opts) -> dict:
    """A frame patch of a raster layer: ``{"image": PNG data URL, "twinValues": ...}``.

    ``values`` are on the bitmap grid (a :class:`MercatorWarp` output).  Values
    below the ramp's first stop read as ``below_text`` when the ramp hides them.
    """
    if ramp.transparent_below:
        value_opts.setdefault("below", float(ramp.values[0]))
    return {"image": png_data_url(values, ramp),
            "twinValues": value_grid(values, units=units, name=name, **value_opts)}


def raster_layer(layer_id: str, values, ramp: Ramp, bounds, *, units: str = "", name: str = "",
                 opacity: float = 1.0, **value_opts) -> dict:
    """BitmapLayer JSON of ``values`` (on the bitmap grid) coloured by ``ramp``, with hover values."""
    frame = raster_frame(values, ramp, units=units, name=name, **value_opts)
    layer = bitmap_layer(layer_id, frame["image"], bounds, opacity=opacity)
    layer["twinValues"] = frame["twinValues"]
    return layer
