"""PNG figures of flood runs and sensor feeds (matplotlib, Agg, no pyplot state).

Four figures, each a function that takes data objects and returns a
:class:`matplotlib.figure.Figure` (save it with :func:`save_png`, or get the
bytes with :func:`png_bytes`):

* :func:`rain_depth_figure` — the rain the model received (hyetograph in mm/h,
  bars, with the cumulative depth in mm on a twin axis) above the water depth
  over time at one or more points (working CRS or lon/lat);
* :func:`area_balance_figure` — flooded land area over time by depth class
  (km²), the cumulative volume balance (where the rain went: storage, drainage,
  infiltration, outflow, sea) and its closure error in relative terms;
* :func:`max_depth_figure` — maximum depth in classes (m) over a hillshade of
  the bed, sea, district outlines and the deepest locations numbered;
* :func:`sensor_figure` — one datastream of a :class:`twin.store.Store` with
  the alert levels of ``hardware_bridge/fusion/alerts.toml`` drawn as bands per
  severity and the stored alert events marked.

The numbers behind the flood figures are public functions too
(:func:`rain_series`, :func:`area_by_class`, :func:`balance_series`,
:func:`depth_at`, :func:`deepest_locations`), so a report can print them and a
test can compare them with the Dataset.

Figures are built on :class:`matplotlib.figure.Figure` directly (no
``pyplot``, so no global figure registry and no GUI backend); text uses a CJK
font when one is installed (Debian ``fonts-noto-cjk``) and falls back quietly
to the default font otherwise.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import xarray as xr

from twin.errors import ValidationError

#: Lower bounds of the depth classes (m) of areas and maps.
DEPTH_CLASSES_M = (0.15, 0.3, 0.5, 1.0)
#: Colour per depth class (light to dark blue, then purple above 1 m).
DEPTH_COLOURS = ("#9ecae1", "#4292c6", "#2158a8", "#5a0f6e")
#: Colours of the alert severities (blue/yellow/orange/red signals).
SEVERITY_COLOURS = {"info": "#2f7ed8", "advisory": "#e0b000", "warning": "#f07f00", "alarm": "#d62728"}
#: Families tried, in order, for Chinese text.
CJK_FAMILIES = ("Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans SC", "Source Han Sans SC",
                "Source Han Sans CN", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei", "Droid Sans Fallback",
                "SimHei", "Microsoft YaHei", "PingFang SC")
#: Shenzhen local time (China Standard Time, no daylight saving).
CST = timezone(timedelta(hours=8), "UTC+8")
BALANCE_PARTS = (  # (volume variable, label, colour, sign: + = water leaving the surface)
    ("storage_change", "stored on the surface", "#4292c6", 1),
    ("drainage", "drained (sewer capacity)", "#31a354", 1),
    ("infiltration", "infiltrated", "#a1d99b", 1),
    ("outflow", "left over the grid edge", "#969696", 1),
    ("to_sea", "ran into the sea / out over the outline", "#9e9ac8", 1),
)


# ----------------------------------------------------------------------------- style
def font_families() -> list[str]:
    """Font family list for text: DejaVu Sans, then the first installed CJK family (if any)."""
    from matplotlib import font_manager

    fm = font_manager.fontManager
    cjk = [n for n in CJK_FAMILIES if n in {f.name for f in fm.ttflist}]
    if not cjk:
        # matplotlib's font cache may predate the CJK fonts (installed later): register their files
        for path in font_manager.findSystemFonts():
            base = os.path.basename(path).lower()
            if any(k in base for k in ("cjk", "wqy", "sourcehansans", "droidsansfallback", "simhei", "msyh")):
                with contextlib.suppress(Exception):
                    fm.addfont(path)
        cjk = [n for n in CJK_FAMILIES if n in {f.name for f in fm.ttflist}]
    return ["DejaVu Sans", *cjk[:1]]


@contextlib.contextmanager
def style() -> Iterator[None]:
    """Context with the figures' rc settings (fonts with CJK fallback, quiet grids)."""
    import matplotlib

    rc = {"font.family": font_families(), "font.size": 9.5, "axes.titlesize": 10.5,
          "axes.grid": True, "grid.alpha": 0.3, "grid.linewidth": 0.6, "axes.spines.top": False,
          "legend.fontsize": 8.5, "legend.framealpha": 0.85, "figure.dpi": 100, "savefig.dpi": 120}
    with matplotlib.rc_context(rc):
        yield


def new_figure(width_in: float, height_in: float):
    """A pyplot-free :class:`~matplotlib.figure.Figure` with the constrained layout engine."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width_in, height_in), layout="constrained")


def save_png(fig, path: str | os.PathLike, *, dpi: int = 120) -> Path:
    """Write ``fig`` as a PNG (parents created) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with style():
        fig.savefig(path, format="png", dpi=dpi, facecolor="white")
    return path


def png_bytes(fig, *, dpi: int = 120) -> bytes:
    """The PNG encoding of ``fig``."""
    buf = io.BytesIO()
    with style():
        fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    return buf.getvalue()


# ----------------------------------------------------------------------------- layout
def _renderer(fig):
    """Draw ``fig`` on an Agg canvas (laying it out) and return the renderer, for measuring text."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    fig.canvas.draw()
    return fig.canvas.get_renderer()


def _inside(bb, box, pad: float = 0.0) -> bool:
    return bb.x0 >= box.x0 + pad and bb.x1 <= box.x1 - pad and bb.y0 >= box.y0 + pad and bb.y1 <= box.y1 - pad


def _wrap_once(text: str) -> str:
    """``text`` with its longest line split once: at " — ", else " · ", else ", ", else a space,
    whichever of the first kind present is nearest the line's middle."""
    lines = text.split("\n")
    k = max(range(len(lines)), key=lambda n: len(lines[n]))
    line = lines[k]
    for sep in (" — ", " · ", ", ", " "):
        cuts = [m for m in range(len(line)) if line.startswith(sep, m)]
        if cuts:
            m = min(cuts, key=lambda c: abs(c - len(line) / 2))
            keep = sep.strip() if sep == ", " else ""
            lines[k:k + 1] = [line[:m] + keep, line[m + len(sep):]]
            return "\n".join(lines)
    return text


def fit_titles(fig, *, pad_px: float = 2.0, rounds: int = 6) -> None:
    """Wrap each axes title that reaches past the figure's edge until it fits (see :func:`_wrap_once`).

    A subtitle naming the storm, the region and the grid is wider than a 9-inch
    figure for a whole-city run; constrained layout makes room for the extra lines.
    """
    for _ in range(rounds):
        r = _renderer(fig)
        wide = [ax.title for ax in fig.axes
                if ax.title.get_text() and not _inside(ax.title.get_window_extent(r), fig.bbox, pad_px)]
        changed = False
        for t in wide:
            new = _wrap_once(t.get_text())
            changed |= new != t.get_text()
            t.set_text(new)
        if not changed:
            return


#: Offsets (points) tried in turn for a map label: in place, then rings above, below, right, left, diagonally.
_LABEL_OFFSETS_PT = [(0.0, 0.0)] + [
    (rad * cx, rad * cy) for rad in (9.0, 14.0, 20.0, 28.0, 38.0)
    for cx, cy in ((0, 1), (0, -1), (1.6, 0), (-1.6, 0), (1.2, 0.8), (-1.2, 0.8), (1.2, -0.8), (-1.2, -0.8))]


def _overlap(a, b) -> float:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return w * h if w > 0 and h > 0 else 0.0


def label_box(t, renderer):
    """Window extent (px) of a map label with its rounded white box (``t``: an Annotation)."""
    pad = (t.get_bbox_patch().get_boxstyle().pad * t.get_fontsize() + 0.5) * t.figure.dpi / 72.0 \
        if t.get_bbox_patch() is not None else 0.0
    return t.get_window_extent(renderer).padded(pad)


def place_labels(ax, labels: Sequence, avoid: Sequence, *, pad_px: float = 2.0) -> None:
    """Move each label (an Annotation with offset points) off the ``avoid`` artists and the labels before it.

    Tries :data:`_LABEL_OFFSETS_PT` in turn and keeps the first offset where the label lies
    inside the axes and overlaps nothing; failing that the least overlapping one inside the
    axes, and hides a label that fits nowhere inside.
    """
    if not labels:
        return
    r = _renderer(ax.figure)
    axbox = ax.get_window_extent(r)
    taken = [a.get_window_extent(r).padded(pad_px) for a in avoid]
    for t in labels:
        best, cost = None, math.inf
        for off in _LABEL_OFFSETS_PT:
            t.xyann = off
            bb = label_box(t, r)
            if not _inside(bb, axbox):
                continue
            c = sum(_overlap(bb, o) for o in taken)
            if c < cost:
                best, cost = off, c
            if c == 0:
                break
        if best is None:
            t.set_visible(False)
            continue
        t.xyann = best
        taken.append(label_box(t, r).padded(pad_px))


# ----------------------------------------------------------------------------- checks
def _require(ds: xr.Dataset, name: str, dims: tuple[str, ...]) -> xr.DataArray:
    """``ds[name]`` after checking it is there with ``dims`` (ValidationError naming it otherwise)."""
    if not isinstance(ds, xr.Dataset):
        raise ValidationError(f"expected a flood output xarray.Dataset, got {type(ds).__name__}: "
                              "pass the result of physics.flood.simulate / run_city_flood or open flood.nc")
    if name not in ds:
        raise ValidationError(f"flood dataset lacks the variable {name!r} (dims {dims}): pass the output of "
                              "physics.flood.simulate / run_city_flood (store_fields=True for frames)")
    da = ds[name]
    if tuple(da.dims) != dims:
        raise ValidationError(f"flood dataset variable {name!r} has dims {tuple(da.dims)}, expected {dims}")
    return da


def _time_h(ds: xr.Dataset) -> np.ndarray:
    t = np.asarray(_require(ds, "time", ("time",)).values, dtype=np.float64)
    if t.size < 2 or not np.all(np.diff(t) > 0):
        raise ValidationError(f"flood dataset 'time' must hold >= 2 increasing times (s), got {t[:5]}")
    return t / 3600.0


def _attr_json(ds: xr.Dataset, key: str, default):
    v = ds.attrs.get(key)
    if v is None:
        return default
    if isinstance(v, str):
        try:
            return json.loads(v)
        except ValueError:
            return default
    return v


def storm_of(ds: xr.Dataset) -> dict:
    """The storm description of a run (``attrs['storm']``), or {} when it has none."""
    s = _attr_json(ds, "storm", {})
    return s if isinstance(s, dict) else {}


def cell_area_m2(ds: xr.Dataset) -> float:
    """Area of one cell (m²) from the transform (or the coordinates)."""
    from gis.raster import cell_size

    dx, dy = cell_size(ds)
    return float(dx * dy)


def open_mask(ds: xr.Dataset) -> np.ndarray:
    """Cells that take rain: land, sea and outflow edge for city runs, every cell otherwise."""
    shape = (ds.sizes["y"], ds.sizes["x"])
    if "land" in ds:
        m = np.asarray(ds["land"].values).astype(bool)
        for name in ("sea", "outflow_edge"):
            if name in ds:
                m = m | np.asarray(ds[name].values).astype(bool)
        return m
    return np.ones(shape, bool)


def land_mask(ds: xr.Dataset) -> np.ndarray:
    """Active land cells (``land``), else every cell."""
    if "land" in ds:
        return np.asarray(ds["land"].values).astype(bool)
    return np.ones((ds.sizes["y"], ds.sizes["x"]), bool)


def _title_when(ds: xr.Dataset) -> str:
    storm = storm_of(ds)
    name = storm.get("name") or "rain"
    total = storm.get("total_mm")
    dur = ds.attrs.get("duration_h")
    if dur is None and "time" in ds.coords:
        dur = float(ds["time"][-1]) / 3600.0
    region = ds.attrs.get("region")
    res = ds.attrs.get("resolution_m", ds.attrs.get("cell_size_m"))
    bits = [name]
    if total is not None:
        bits.append(f"{float(total):.0f} mm")
    if dur is not None:
        bits.append(f"{float(dur):g} h simulated")
    where = ", ".join(b for b in (region, f"{float(res):g} m grid" if res else None) if b)
    return " · ".join(bits) + (f" — {where}" if where else "")


# ----------------------------------------------------------------------------- numbers
def rain_series(ds: xr.Dataset, *, rain_area_m2: float | None = None) -> dict[str, np.ndarray]:
    """Rain the model received, averaged over the cells that take rain.

    Parameters
    ----------
    ds : Dataset
        Flood output with ``volume_rain`` (m³, cumulative) on ``time`` (s).
    rain_area_m2 : float, optional
        Area that receives rain (m²); default: land + sea + outflow-edge cells of a city
        run, every cell otherwise (:func:`open_mask`).

    Returns
    -------
    dict
        ``t_h`` output times (h), ``cumulative_mm`` mean depth (mm) at those
        times, ``t0_h``/``t1_h`` interval bounds (h) and ``intensity_mm_h``
        mean intensity over each output interval (mm/h).
    """
    t_h = _time_h(ds)
    vol = np.asarray(_require(ds, "volume_rain", ("time",)).values, dtype=np.float64)
    area = float(open_mask(ds).sum()) * cell_area_m2(ds) if rain_area_m2 is None else float(rain_area_m2)
    if not (math.isfinite(area) and area > 0):
        raise ValidationError(f"rain_area_m2={area!r} must be a positive area (m²)")
    cum = vol / area * 1000.0
    dt = np.diff(t_h)
    return {"t_h": t_h, "cumulative_mm": cum, "t0_h": t_h[:-1], "t1_h": t_h[1:],
            "intensity_mm_h": np.diff(cum) / dt, "rain_area_m2": np.float64(area)}


def area_by_class(ds: xr.Dataset, classes: Sequence[float] = DEPTH_CLASSES_M) -> dict[str, np.ndarray]:
    """Land area (km²) per depth class at each output time, from the depth frames.

    Class k holds cells with ``classes[k] <= depth < classes[k+1]`` (the last
    is open above). Returns ``{"t_h": ..., "labels": [...], "km2": (nclass, ntime)}``.
    """
    t_h = _time_h(ds)
    depth = _require(ds, "depth", ("time", "y", "x"))
    edges = [float(c) for c in classes]
    if not edges or any(b <= a for a, b in zip(edges, edges[1:], strict=False)) or edges[0] <= 0:
        raise ValidationError(f"classes={classes!r} must be increasing positive depths (m)")
    land = land_mask(ds)
    cell_km2 = cell_area_m2(ds) / 1e6
    km2 = np.zeros((len(edges), t_h.size))
    for k in range(t_h.size):
        h = np.asarray(depth.isel(time=k).values)[land]  # NaN compares False: counted nowhere
        above = np.array([np.count_nonzero(h >= e) for e in edges])
        km2[:, k] = (above - np.r_[above[1:], 0]) * cell_km2
    labels = [f"{a:g}–{b:g} m" for a, b in zip(edges, edges[1:], strict=False)] + [f"≥ {edges[-1]:g} m"]
    return {"t_h": t_h, "labels": labels, "km2": km2}


def balance_series(ds: xr.Dataset) -> dict[str, np.ndarray]:
    """Cumulative volumes (m³) at each output time: inputs, where they went, closure error.

    Returns ``t_h``, ``rain``, ``inflow``, the parts of :data:`BALANCE_PARTS`
    (``storage_change`` = storage − initial storage; ``to_sea`` = −level
    exchange, water the fixed-level sea cells absorbed), ``error`` (m³) and
    ``relative_error`` (the model's own, |error| / (rain + inflow + |level
    exchange|)).
    """
    t_h = _time_h(ds)

    def v(name: str, required: bool) -> np.ndarray:
        if not required and f"volume_{name}" not in ds:
            return np.zeros(t_h.size)
        return np.asarray(_require(ds, f"volume_{name}", ("time",)).values, dtype=np.float64)

    out = {"t_h": t_h, "rain": v("rain", True), "storage": v("storage", True)}
    for name in ("inflow", "infiltration", "drainage", "outflow", "level_exchange", "correction", "error",
                 "relative_error"):
        out[name] = v(name, False)
    out["storage_change"] = out["storage"] - out["storage"][0]
    out["to_sea"] = -out["level_exchange"]
    return out


def _xy_of(ds: xr.Dataset, x: float, y: float, crs: str | None) -> tuple[float, float]:
    if crs is None:
        return float(x), float(y)
    work = ds.attrs.get("crs")
    if not work:
        raise ValidationError(f"point given in {crs} but the flood dataset has no attrs['crs']: "
                              "give the point in the grid's coordinates (crs=None)")
    from pyproj import Transformer

    xx, yy = Transformer.from_crs(crs, work, always_xy=True).transform(float(x), float(y))
    return float(xx), float(yy)


def cell_of(ds: xr.Dataset, x: float, y: float, *, crs: str | None = None) -> tuple[int, int]:
    """(row, col) of the cell holding point (x, y); ``crs`` e.g. "EPSG:4326" for lon/lat."""
    from gis.raster import transform_of, world_to_pixel

    xx, yy = _xy_of(ds, x, y, crs)
    col, row = world_to_pixel(transform_of(ds), xx, yy)
    j, i = int(math.floor(float(row))), int(math.floor(float(col)))
    ny, nx = ds.sizes["y"], ds.sizes["x"]
    if not (0 <= j < ny and 0 <= i < nx):
        raise ValidationError(f"point ({x}, {y}){' in ' + crs if crs else ''} lies outside the flood grid "
                              f"(x {float(ds['x'].min()):.0f}..{float(ds['x'].max()):.0f}, "
                              f"y {float(ds['y'].min()):.0f}..{float(ds['y'].max()):.0f})")
    return j, i


def depth_at(ds: xr.Dataset, x: float, y: float, *, crs: str | None = None) -> np.ndarray:
    """Water depth (m) over time at the cell holding (x, y) (NaN off land)."""
    depth = _require(ds, "depth", ("time", "y", "x"))
    j, i = cell_of(ds, x, y, crs=crs)
    return np.asarray(depth.isel(y=j, x=i).values, dtype=np.float64)


def lonlat_of(ds: xr.Dataset, x, y) -> tuple[np.ndarray, np.ndarray] | None:
    """WGS84 lon/lat of working-CRS points, or None when the dataset has no CRS."""
    crs = ds.attrs.get("crs")
    if not crs:
        return None
    from pyproj import Transformer

    lon, lat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(
        np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
    return np.asarray(lon), np.asarray(lat)


#: Text for a place outside every district polygon (the margin kept around the city or the districts).
OUTSIDE_DISTRICTS = "outside the districts"


def _nearest_district(dist: np.ndarray, j: int, i: int, dx: float, dy: float,
                      tolerance_m: float) -> tuple[int, float]:
    """(district id, distance m) of the nearest cell with a district within ``tolerance_m`` of (j, i); (-1, nan)."""
    rj, ri = int(tolerance_m // dy), int(tolerance_m // dx)
    j0, i0 = max(j - rj, 0), max(i - ri, 0)
    win = dist[j0:j + rj + 1, i0:i + ri + 1]
    jj, ii = np.nonzero(win >= 0)
    if jj.size == 0:
        return -1, float("nan")
    d = np.hypot((jj + j0 - j) * dy, (ii + i0 - i) * dx)
    k = int(np.argmin(d))
    if d[k] > tolerance_m:
        return -1, float("nan")
    return int(win[jj[k], ii[k]]), float(d[k])


def district_label(p: Mapping) -> str:
    """A deepest place's district as shown in tables: the name, "Luohu (90 m outside)", the outside
    label, or "–" for a run without districts."""
    name, d = p.get("district"), p.get("district_distance_m")
    if name is None:
        return OUTSIDE_DISTRICTS if p.get("district_known") else "–"
    return f"{name} ({d:.0f} m outside)" if d else str(name)


def deepest_locations(ds: xr.Dataset, n: int = 10, *, min_separation_m: float = 300.0,
                      district_tolerance_m: float | None = None) -> list[dict]:
    """The ``n`` deepest places: maxima of ``max_depth`` at least ``min_separation_m`` apart.

    Each is ``{"rank", "x", "y", "lon", "lat", "max_depth_m", "time_of_max_h",
    "arrival_h", "district", "district_distance_m", "district_known"}`` (lon/lat
    None without a CRS; arrival None if the arrival depth was never reached).
    Cells are taken in order of depth, skipping any within ``min_separation_m``
    of one already taken, so one pond gives one entry.

    ``district`` is the name of the cell's district. A cell whose centre lies just
    outside every district polygon (a river on the border, the coast: the polygons
    are rasterised by cell centre) takes the nearest district within
    ``district_tolerance_m`` (default: 1.5 cells, at least 150 m), with
    ``district_distance_m`` > 0; farther out it is None with ``district_known``
    True (the margin around the city: :data:`OUTSIDE_DISTRICTS`). A run without a
    ``district`` raster has None and ``district_known`` False. See
    :func:`district_label`.
    """
    md = np.asarray(_require(ds, "max_depth", ("y", "x")).values, dtype=np.float64)
    if n < 1:
        raise ValidationError(f"n={n!r} must be >= 1")
    xs, ys = np.asarray(ds["x"].values, np.float64), np.asarray(ds["y"].values, np.float64)
    flat = md.ravel()
    cand = np.flatnonzero(flat > 0)  # NaN compares False
    k_max = max(50_000, 200 * n)  # candidates: the deepest wet cells (O(N) selection, then sorted)
    if cand.size > k_max:
        cand = cand[np.argpartition(flat[cand], cand.size - k_max)[cand.size - k_max:]]
    cand = cand[np.argsort(-flat[cand], kind="stable")]
    tmax = ds["time_of_max_depth"].values if "time_of_max_depth" in ds else None
    tarr = ds["arrival_time"].values if "arrival_time" in ds else None
    names = _attr_json(ds, "district_names", [])
    dist = ds["district"].values if "district" in ds else None
    # greedy non-maximum suppression: a picked cell masks the cells closer than min_separation_m
    dx = abs(float(xs[1] - xs[0])) if xs.size > 1 else 1.0
    dy = abs(float(ys[1] - ys[0])) if ys.size > 1 else 1.0
    r = float(min_separation_m)
    ri, rj = int(r // dx), int(r // dy)
    oj, oi = np.mgrid[-rj:rj + 1, -ri:ri + 1]
    disk = (oi * dx) ** 2 + (oj * dy) ** 2 < r * r
    masked = np.zeros(md.shape, bool)
    picked: list[tuple[int, int]] = []
    for k in cand:
        j, i = divmod(int(k), md.shape[1])
        if masked[j, i]:
            continue
        picked.append((j, i))
        if len(picked) == n:
            break
        j0, j1, i0, i1 = max(j - rj, 0), min(j + rj + 1, md.shape[0]), max(i - ri, 0), min(i + ri + 1, md.shape[1])
        masked[j0:j1, i0:i1] |= disk[j0 - (j - rj):j1 - (j - rj), i0 - (i - ri):i1 - (i - ri)]
    ll = lonlat_of(ds, [xs[i] for _, i in picked], [ys[j] for j, _ in picked]) if picked else None
    tol = max(150.0, 1.5 * max(dx, dy)) if district_tolerance_m is None else float(district_tolerance_m)
    out = []
    for r, (j, i) in enumerate(picked):
        d = int(dist[j, i]) if dist is not None else -1
        away = 0.0 if d >= 0 else None
        if dist is not None and d < 0:
            d, away = _nearest_district(np.asarray(dist), j, i, dx, dy, tol)
            away = away if d >= 0 else None
        ta = float(tarr[j, i]) if tarr is not None else float("nan")
        out.append({
            "rank": r + 1, "x": float(xs[i]), "y": float(ys[j]),
            "lon": float(ll[0][r]) if ll is not None else None, "lat": float(ll[1][r]) if ll is not None else None,
            "max_depth_m": float(md[j, i]),
            "time_of_max_h": float(tmax[j, i]) / 3600.0 if tmax is not None else None,
            "arrival_h": ta / 3600.0 if math.isfinite(ta) else None,
            "district": names[d] if 0 <= d < len(names) else None,
            "district_distance_m": away if 0 <= d < len(names) else None,
            "district_known": dist is not None and bool(names),
        })
    return out


# ----------------------------------------------------------------------------- figure 1
def _points(ds, points, crs) -> list[tuple[str, float, float]]:
    """[(label, x, y)] in the working CRS; default: the deepest location."""
    if points is None:
        top = deepest_locations(ds, 1)
        if not top:
            return []
        p = top[0]
        where = f"{p['lon']:.4f}°E {p['lat']:.4f}°N" if p["lon"] is not None else f"x {p['x']:.0f}, y {p['y']:.0f}"
        return [(f"deepest cell ({where})", p["x"], p["y"])]
    items = points.items() if isinstance(points, Mapping) else (
        (None, p) for p in ([points] if np.ndim(points) == 1 and len(points) == 2
                            and not isinstance(points[0], Sequence | np.ndarray) else points))
    out = []
    for label, p in items:
        try:
            x, y = (float(v) for v in p)
        except (TypeError, ValueError):
            raise ValidationError(f"point {p!r} must be a pair of numbers (x, y) or (lon, lat)") from None
        cell_of(ds, x, y, crs=crs)
        xx, yy = _xy_of(ds, x, y, crs)
        if label is None:
            label = f"{x:.4f}°E {y:.4f}°N" if crs == "EPSG:4326" else f"x {x:.0f}, y {y:.0f}"
        out.append((str(label), xx, yy))
    return out


def rain_depth_figure(ds: xr.Dataset, points=None, *, crs: str | None = None,
                      rain_area_m2: float | None = None, title: str | None = None):
    """Hyetograph (mm/h bars) with cumulative rain (mm, twin axis) above the depth at points (m).

    Parameters
    ----------
    ds : Dataset
        Flood output (``volume_rain``; ``depth`` frames for the lower panel).
    points : (x, y), list of (x, y) or {label: (x, y)}, optional
        Where to read the depth; default: the deepest location. Coordinates
        in the grid's CRS, or in ``crs`` (e.g. ``"EPSG:4326"`` for lon/lat).
    rain_area_m2 : float, optional
        Area receiving rain (see :func:`rain_series`).
    title : str, optional
        Default: the storm, its total and the region.

    Returns
    -------
    matplotlib.figure.Figure
        Axes: rain intensity, depth (when there are depth frames) and,
        last, the cumulative rain (twin of the first).
    """
    rs = rain_series(ds, rain_area_m2=rain_area_m2)
    has_depth = "depth" in ds
    if points is not None and not has_depth:
        _require(ds, "depth", ("time", "y", "x"))
    pts = _points(ds, points, crs) if has_depth else []
    with style():
        fig = new_figure(9.0, 6.2 if has_depth else 3.6)
        if has_depth:
            ax, axd = fig.subplots(2, 1, sharex=True, height_ratios=(1.0, 1.15))
        else:
            ax, axd = fig.subplots(1, 1), None
        ax.bar(rs["t0_h"], rs["intensity_mm_h"], width=rs["t1_h"] - rs["t0_h"], align="edge",
               color="#6baed6", edgecolor="#2171b5", linewidth=0.6, label="rain intensity (interval mean)")
        ax.set_ylabel("rain intensity (mm/h)")
        ax.set_ylim(0, max(1.0, float(np.nanmax(rs["intensity_mm_h"], initial=0.0)) * 1.15))
        ax2 = ax.twinx()
        ax2.plot(rs["t_h"], rs["cumulative_mm"], color="#08306b", lw=2.0, marker="o", ms=2.5,
                 label="cumulative rain")
        ax2.set_ylabel("cumulative rain (mm)")
        ax2.set_ylim(0, max(1.0, float(rs["cumulative_mm"][-1]) * 1.1))
        ax2.grid(False)
        ax2.spines["top"].set_visible(False)
        total = float(rs["cumulative_mm"][-1])
        ax2.annotate(f"{total:.1f} mm", (rs["t_h"][-1], total), xytext=(-4, 6), textcoords="offset points",
                     ha="right", fontsize=9, color="#08306b", fontweight="bold")
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, loc="upper left")
        ax.set_title(title or f"Rain over the model area and water depth\n{_title_when(ds)}")
        if axd is None:
            ax.set_xlabel("time since start of run (h)")
        else:
            thr = float(ds.attrs.get("flooded_depth_m", ds.attrs.get("h_arrive_m", 0.15)))
            colours = ("#d62728", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#17becf")
            top = 0.0
            for k, (label, x, y) in enumerate(pts):
                d = depth_at(ds, x, y)
                top = max(top, float(np.nanmax(d, initial=0.0)))
                axd.plot(rs["t_h"], d, color=colours[k % len(colours)], lw=2.0, marker="o", ms=2.5, label=label)
            axd.axhline(thr, color="#555555", lw=1.0, ls="--", label=f"flood threshold {thr:g} m")
            axd.set_ylim(0, max(thr * 1.5, top * 1.15))
            axd.set_ylabel("water depth (m)")
            axd.set_xlabel("time since start of run (h)")
            axd.legend(loc="upper left")
            axd.set_title("Water depth at the point" + ("s" if len(pts) > 1 else ""), fontsize=9.5)
        ax.set_xlim(rs["t_h"][0], rs["t_h"][-1])
        fit_titles(fig)
    return fig


# ----------------------------------------------------------------------------- figure 2
def _volume_scale(vmax: float) -> tuple[float, str]:
    for f, u in ((1e6, "million m³"), (1e3, "thousand m³")):
        if vmax >= 5 * f:
            return f, u
    return 1.0, "m³"


def area_balance_figure(ds: xr.Dataset, *, title: str | None = None):
    """Flooded land area by depth class (km²), volume balance (m³) and its relative error.

    Panels: (a) stacked areas per depth class from the depth frames (or the
    ``flooded_area`` series alone without frames); (b) where the cumulative
    rain went — storage on the surface, drainage, infiltration, edge outflow,
    sea — stacked, with rain + inflow as a line: the stack meets the line when
    the balance closes; (c) relative closure error (log scale).
    """
    bs = balance_series(ds)
    t = bs["t_h"]
    with style():
        fig = new_figure(9.0, 8.0)
        axa, axb, axc = fig.subplots(3, 1, sharex=True, height_ratios=(1.0, 1.15, 0.45))
        if "depth" in ds:
            ac = area_by_class(ds)
            axa.stackplot(t, ac["km2"], labels=ac["labels"], colors=DEPTH_COLOURS[: len(ac["labels"])],
                          alpha=0.9, edgecolor="white", linewidth=0.3)
            total = ac["km2"].sum(axis=0)
            axa.plot(t, total, color="#08306b", lw=1.2)
            peak = int(np.argmax(total))
            frac = (t[peak] - t[0]) / (t[-1] - t[0])
            axa.annotate(f"peak {total[peak]:.2f} km² at {t[peak]:.2g} h", (t[peak], total[peak]),
                         xytext=(0, 6), textcoords="offset points", fontsize=8.5,
                         ha="right" if frac > 0.8 else "left" if frac < 0.2 else "center")
            axa.set_ylim(0, max(total.max(), 1e-3) * 1.15)
            axa.legend(loc="upper left", title="depth class", title_fontsize=8)
        else:
            fa = np.asarray(_require(ds, "flooded_area", ("time",)).values, dtype=np.float64) / 1e6
            axa.fill_between(t, fa, color=DEPTH_COLOURS[1], alpha=0.8,
                             label=ds["flooded_area"].attrs.get("long_name", "flooded area"))
            axa.legend(loc="upper left")
        axa.set_ylabel("flooded land area (km²)")
        axa.set_ylim(bottom=0)
        axa.set_title(title or f"Flooded land area and water balance\n{_title_when(ds)}")

        inputs = bs["rain"] + bs["inflow"] + np.maximum(bs["correction"], 0)
        vmax = float(np.nanmax(np.abs(inputs), initial=0.0))
        f, unit = _volume_scale(vmax)
        parts = [(k, lab, c) for k, lab, c, _ in BALANCE_PARTS if np.any(np.abs(bs[k]) > 1e-9 * max(vmax, 1))]
        if parts:
            axb.stackplot(t, [bs[k] / f for k, _, _ in parts], labels=[lab for _, lab, _ in parts],
                          colors=[c for _, _, c in parts], alpha=0.85, edgecolor="white", linewidth=0.3)
        axb.plot(t, bs["rain"] / f, color="#08306b", lw=2.0, label="rain received")
        if np.any(bs["inflow"] > 0):
            axb.plot(t, (bs["rain"] + bs["inflow"]) / f, color="#08306b", lw=1.5, ls="--", label="rain + inflow")
        axb.set_ylabel(f"cumulative volume ({unit})")
        axb.set_ylim(bottom=min(0.0, float(np.nanmin([bs[k].min() for k, _, _ in parts], initial=0.0)) / f))
        axb.legend(loc="upper left", ncols=2)
        axb.set_title("Where the rain went (stacked, cumulative since the start)", fontsize=9.5)

        rel = np.abs(bs["relative_error"])
        floor = 1e-17
        axc.semilogy(t, np.maximum(rel, floor), color="#d62728", lw=1.5, marker="o", ms=2.5)
        axc.set_ylabel("|error| / input (–)")
        axc.set_xlabel("time since start of run (h)")
        worst = float(np.nanmax(rel, initial=0.0))
        axc.set_title(f"Volume balance closure error: max {worst:.1e} of the input"
                      + (" (values below 1e-17 drawn at 1e-17)" if np.any(rel < floor) else ""), fontsize=9)
        axc.set_ylim(floor / 3, max(worst * 30, 1e-14))
        axa.set_xlim(t[0], t[-1])
        fit_titles(fig)
    return fig


# ----------------------------------------------------------------------------- figure 3
def hillshade_array(z: np.ndarray, dx: float, dy: float, *, azimuth: float = 315.0,
                    altitude: float = 45.0) -> np.ndarray:
    """Shade in [0, 1] of a north-up grid (NaN where z is NaN); sun from ``azimuth`` / ``altitude`` degrees."""
    zf = np.where(np.isfinite(z), z, np.nanmean(z) if np.isfinite(z).any() else 0.0)
    gy, gx = np.gradient(zf, dy, dx)  # rows run south: d/dy(row) = -dz/dnorth
    slope = np.arctan(np.hypot(gx, gy))
    aspect = np.arctan2(-gx, gy)  # downslope direction, clockwise from north
    zen, az = np.radians(90.0 - altitude), np.radians(azimuth)
    shade = np.cos(zen) * np.cos(slope) + np.sin(zen) * np.sin(slope) * np.cos(az - aspect)
    return np.where(np.isfinite(z), np.clip(shade, 0.0, 1.0), np.nan)


def _boundary_segments(ids: np.ndarray, xe: np.ndarray, ye: np.ndarray) -> np.ndarray:
    """Segments (n, 2, 2) along cell edges between different non-negative ids; xe/ye are cell edges."""
    segs = []
    a, b = ids[:, :-1], ids[:, 1:]
    j, i = np.nonzero((a != b) & ((a >= 0) | (b >= 0)))
    x = xe[i + 1]
    segs.append(np.stack([np.stack([x, ye[j]], -1), np.stack([x, ye[j + 1]], -1)], 1))
    a, b = ids[:-1, :], ids[1:, :]
    j, i = np.nonzero((a != b) & ((a >= 0) | (b >= 0)))
    y = ye[j + 1]
    segs.append(np.stack([np.stack([xe[i], y], -1), np.stack([xe[i + 1], y], -1)], 1))
    return np.concatenate(segs) if segs else np.zeros((0, 2, 2))


def max_depth_figure(ds: xr.Dataset, *, districts=None, dem=None, top_n: int = 10,
                     title: str | None = None):
    """Map of the maximum depth (m, classes) over a hillshade, with sea, districts and deepest places.

    Parameters
    ----------
    ds : Dataset
        Flood output with ``max_depth``; ``elevation``, ``sea``, ``district``
        and ``attrs['district_names']`` of a city run are used when present.
    districts : GeoDataFrame, optional
        District polygons with a ``name`` column (any CRS); default: outlines
        traced from the ``district`` raster.
    dem : array or DataArray, optional
        Elevation (m) for the hillshade when ``ds`` has no ``elevation``.
    top_n : int
        Number the ``top_n`` deepest places (:func:`deepest_locations`); 0: none.
    """
    from matplotlib.collections import LineCollection
    from matplotlib.colors import BoundaryNorm, ListedColormap

    from gis.raster import transform_of

    md = np.asarray(_require(ds, "max_depth", ("y", "x")).values, dtype=np.float64)
    t = transform_of(ds)
    ny, nx = md.shape
    ext = np.array([t.c, t.c + t.a * nx, t.f + t.e * ny, t.f]) / 1000.0
    xe = (t.c + t.a * np.arange(nx + 1)) / 1000.0
    ye = (t.f + t.e * np.arange(ny + 1)) / 1000.0
    z = None
    if "elevation" in ds:
        z = np.asarray(ds["elevation"].values, dtype=np.float64)
    elif dem is not None:
        z = np.asarray(getattr(dem, "values", dem), dtype=np.float64)
        if z.shape != md.shape:
            raise ValidationError(f"dem has shape {z.shape}, max_depth {md.shape}: give the DEM of the run")
    sea = np.asarray(ds["sea"].values).astype(bool) if "sea" in ds else np.zeros(md.shape, bool)
    crs = ds.attrs.get("crs") or "grid units"
    with style():
        w = 9.5
        fig = new_figure(w, min(11.0, max(4.5, w * ny / nx * 0.9 + 1.0)))
        ax = fig.subplots(1, 1)
        ax.set_facecolor("#f2f2f2")
        if z is not None:
            hs = hillshade_array(np.where(sea, np.nan, z), abs(t.a), abs(t.e))
            ax.imshow(0.45 + 0.55 * hs, cmap="gray", vmin=0, vmax=1, extent=ext, interpolation="bilinear")
        if sea.any():
            ax.imshow(np.where(sea, 1.0, np.nan), cmap=ListedColormap(["#c6dbef"]), vmin=0, vmax=1,
                      extent=ext, interpolation="nearest")
        levels = [*DEPTH_CLASSES_M, max(2.0 * DEPTH_CLASSES_M[-1], float(np.nanmax(md, initial=0.0)))]
        cmap = ListedColormap(list(DEPTH_COLOURS))
        norm = BoundaryNorm(levels, cmap.N)
        im = ax.imshow(np.where(md >= levels[0], md, np.nan), cmap=cmap, norm=norm, extent=ext,
                       interpolation="nearest", alpha=0.92)
        cb = fig.colorbar(im, ax=ax, shrink=0.75, pad=0.01)
        cb.set_label("maximum water depth (m)")
        cb.set_ticks(levels)
        cb.set_ticklabels([f"{v:.2g}" for v in levels])
        labels = []
        if districts is not None and len(districts):
            g = districts.to_crs(ds.attrs["crs"])
            for geom, name in zip(g.geometry, g["name"], strict=True):
                for p in getattr(geom, "geoms", [geom]):
                    xs, ys = p.exterior.xy
                    ax.plot(np.asarray(xs) / 1000, np.asarray(ys) / 1000, color="#222222", lw=0.8)
                rp = geom.representative_point()
                if ext[0] < rp.x / 1000 < ext[1] and ext[2] < rp.y / 1000 < ext[3]:
                    labels.append(_district_label(ax, rp.x / 1000, rp.y / 1000, name))
        elif "district" in ds:
            ids = np.asarray(ds["district"].values, dtype=np.int64)
            segs = _boundary_segments(ids, xe, ye)
            ax.add_collection(LineCollection(segs, colors="#222222", linewidths=0.7))
            names = _attr_json(ds, "district_names", [])
            xc, yc = np.asarray(ds["x"].values) / 1000, np.asarray(ds["y"].values) / 1000
            for d in np.unique(ids[ids >= 0]):
                jj, ii = np.nonzero(ids == d)
                if jj.size < 50 or d >= len(names):
                    continue
                k = np.argmin((jj - jj.mean()) ** 2 + (ii - ii.mean()) ** 2)
                labels.append(_district_label(ax, xc[ii[k]], yc[jj[k]], names[d]))
        markers = []
        if top_n:
            for p in deepest_locations(ds, top_n):
                markers += ax.plot(p["x"] / 1000, p["y"] / 1000, marker="o", ms=11, mfc="white", mec="#d62728",
                                   mew=1.4, gid="deepest-marker")
                ax.text(p["x"] / 1000, p["y"] / 1000, str(p["rank"]), fontsize=7, ha="center", va="center",
                        color="#d62728", fontweight="bold")
        ax.set_xlim(ext[0], ext[1])
        ax.set_ylim(ext[2], ext[3])
        ax.set_aspect("equal")
        ax.grid(False)
        ax.set_xlabel(f"easting (km, {crs})")
        ax.set_ylabel(f"northing (km, {crs})")
        ax.set_title(title or f"Maximum water depth\n{_title_when(ds)}\n"
                              f"classes from {DEPTH_CLASSES_M[0]:g} m; numbered circles: deepest places")
        fit_titles(fig)
        place_labels(ax, labels, markers)
    return fig


def _district_label(ax, x: float, y: float, name) -> Any:
    """A district's name on the map at (x, y) km; :func:`place_labels` moves it off the markers."""
    return ax.annotate(str(name), (x, y), xytext=(0.0, 0.0), textcoords="offset points", fontsize=8,
                       ha="center", va="center", color="#111111", gid="district-label", annotation_clip=False,
                       bbox={"boxstyle": "round,pad=0.15", "fc": "white", "alpha": 0.6, "lw": 0})


# ----------------------------------------------------------------------------- figure 4
#: What the value axis of a sensor plot names, per kind: "CO (ppm)". The unit and the conversion
#: from the stored SI value come from :mod:`hardware_bridge.display`, as on the console.
QUANTITY_NAMES = {"rain_gauge": "rain", "water_level": "water level", "gnss_displacement": "displacement",
                  "inclinometer": "tilt", "gas_o2": "O₂", "gas_h2s": "H₂S", "gas_co": "CO",
                  "gas_lel": "combustible gas", "smoke": "smoke obscuration", "heat": "temperature"}
#: Metrics measured from a baseline (the station's, or the first reading), in the kind's display unit.
_FROM_BASELINE = {"cumulative_mm": "displacement from baseline", "change_mrad": "tilt change from baseline"}
_SI_LABEL = {"m": "value (m)", "m/s": "value (m/s)", "K": "value (K)", "1": "value (–)", "rad": "value (rad)"}


def _utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _baseline(engine_cfg: Mapping, kind: str, station: str, first: float) -> float:
    scfg = (engine_cfg.get(kind, {}) or {}).get("stations", {}).get(station, {})
    b = scfg.get("baseline_m", scfg.get("baseline_rad"))
    return float(b) if b is not None else first


def _trailing_depth_mm(t_s: np.ndarray, v: np.ndarray, unit: str, window_h: float) -> np.ndarray:
    """Rain depth (mm) over the trailing window ending at each reading (readings in m per interval or m/s)."""
    if unit == "m/s":
        inc = np.r_[0.0, v[1:] * np.diff(t_s)]
    else:
        inc = v
    c = np.r_[0.0, np.cumsum(inc)]
    lo = np.searchsorted(t_s, t_s - window_h * 3600.0, side="right")
    return 1000.0 * (c[1:] - c[lo])


def sensor_figure(store, datastream_id: str, *, t0: datetime | str | None = None,
                  t1: datetime | str | None = None, alerts=None, tz: timezone = CST,
                  title: str | None = None):
    """A datastream's readings with its alert levels as coloured bands and its alert events marked.

    Parameters
    ----------
    store : twin.store.Store
        Where the observations (SI units) and the alert events live.
    datastream_id : str
        ``"{station}/{kind}[/{name}]"``, e.g. ``"RG-0001/rain_gauge"``.
    t0, t1 : datetime or ISO text, optional
        Time window (phenomenon time, ``t0 <= t < t1``).
    alerts : path, dict or AlertEngine, optional
        Alert configuration (default: the packaged ``alerts.toml``).
    tz : tzinfo
        Time zone of the time axis (default UTC+8, Shenzhen).

    Rain gauges are drawn as depth per reading (bars) and, below, the
    trailing-window depths that the rain rules compare (one line per window,
    thresholds as dashed lines in the severity colour). Other kinds are
    drawn in the unit of their instantaneous metric (level m, gas ppm / %LEL
    / % vol, °C, %/m, mm or mrad from baseline) with a band per rule from its
    threshold outward; windowed rate rules are listed, not drawn.

    Raises
    ------
    ValidationError
        When the datastream id is malformed or the stream has no numeric readings.
    """
    from hardware_bridge.fusion.alerts import AlertEngine

    parts = str(datastream_id).split("/")
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise ValidationError(f"datastream_id={datastream_id!r} must look like 'STATION/KIND[/NAME]', "
                              "e.g. 'RG-0001/rain_gauge' (see `twin bridge inspect`)")
    station, kind = parts[0], parts[1]
    obs = [o for o in store.observations(datastream_id, t0, t1) if o.value is not None]
    if not obs:
        raise ValidationError(f"datastream {datastream_id!r} has no numeric observations"
                              f"{' in the window' if t0 or t1 else ''}: check the id with `twin bridge inspect`")
    engine = alerts if isinstance(alerts, AlertEngine) else AlertEngine(alerts)
    rules = list(engine.rules_for(kind, station))
    times = np.array([_utc(o.phenomenon_time).timestamp() for o in obs])
    vals = np.array([float(o.value) for o in obs])
    unit = obs[-1].unit or ""
    when = [datetime.fromtimestamp(s, tz) for s in times]
    events = [e for e in _events_of(store, datastream_id)
              if times[0] - 1 <= _event_t(e) <= times[-1] + 1]
    span = (f"{when[0]:%Y-%m-%d %H:%M} – {when[-1]:%Y-%m-%d %H:%M} ({tz.tzname(None) or tz})")
    with style():
        if kind == "rain_gauge":
            fig = _rain_gauge_axes(when, times, vals, unit, rules, events, tz)
        else:
            fig = _level_axes(when, times, vals, unit, kind, station, rules, events, engine, tz)
        fig.axes[0].set_title(title or f"{datastream_id} — {len(obs)} readings, {span}")
        fig.axes[-1].set_xlabel(f"time ({tz.tzname(None) or tz})")
        import matplotlib.dates as mdates

        for ax in fig.axes:
            loc = mdates.AutoDateLocator(tz=tz)
            ax.xaxis.set_major_locator(loc)
            ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc, tz=tz))
        fit_titles(fig)
    return fig


def _events_of(store, datastream_id: str) -> list:
    return [e for e in store.events() if e.source == datastream_id
            and e.kind in ("threshold_crossed", "alert_cleared", "das_event", "video_violation")]


def _event_t(e) -> float:
    pt = e.data.get("phenomenon_time")
    if isinstance(pt, str):
        try:
            return _utc(datetime.fromisoformat(pt)).timestamp()
        except ValueError:
            pass
    elif isinstance(pt, int | float):
        return float(pt)
    return float(e.time_s)


def _mark_events(ax, events, tz, y_frac: float = 0.97) -> None:
    seen = set()
    for e in events:
        sev = str(getattr(e.severity, "value", e.severity))
        c = SEVERITY_COLOURS.get(sev, "#444444") if e.kind != "alert_cleared" else "#666666"
        x = datetime.fromtimestamp(_event_t(e), tz)
        lab = ("cleared" if e.kind == "alert_cleared" else f"alert: {sev}")
        ax.axvline(x, color=c, lw=1.2, ls=":" if e.kind == "alert_cleared" else "-",
                   label=None if lab in seen else lab)
        ax.plot([x], [y_frac], transform=ax.get_xaxis_transform(), marker="v" if e.kind != "alert_cleared" else "^",
                color=c, ms=7, clip_on=False)
        seen.add(lab)


def _rain_gauge_axes(when, times, vals, unit, rules, events, tz):
    from hardware_bridge.display import display_unit

    fig = new_figure(9.0, 6.0)
    ax, axw = fig.subplots(2, 1, sharex=True, height_ratios=(0.8, 1.2))
    d = display_unit("rain_gauge", unit)
    if d is None:
        raise ValidationError(f"rain gauge readings in {unit!r}: expected 'm' (depth per reading) or 'm/s'")
    if unit == "m/s":
        ax.plot(when, d.value(vals), color="#2171b5", lw=1.2, label="intensity")
        ax.set_ylabel(f"rain intensity ({d.unit})")
    else:
        w = np.diff(times, prepend=times[0] - (np.median(np.diff(times)) if times.size > 1 else 300.0))
        ax.bar(when, d.value(vals), width=-w / 86400.0 * 0.9, align="edge", color="#6baed6",
               edgecolor="#2171b5", lw=0.4, label="rain per reading")
        ax.set_ylabel(f"rain per reading ({d.unit})")
    ax.legend(loc="upper left")
    drawn = []
    windows = sorted({r.window_h for r in rules if r.metric == "depth_mm"}) or [1.0]
    styles = ("-", (0, (6, 2)), "-.", ":")
    for k, win in enumerate(windows):
        d = _trailing_depth_mm(times, vals, unit, win)
        axw.plot(when, d, color="#08306b", lw=1.6, ls=styles[k % len(styles)], label=f"rain in last {win:g} h")
        drawn.append(float(np.nanmax(d, initial=0.0)))
    top = max(drawn, default=1.0)
    by_thr: dict[float, list] = {}
    for r in rules:
        if r.metric == "depth_mm":
            by_thr.setdefault(r.threshold, []).append(r)
    for thr, group in sorted(by_thr.items()):
        group.sort(key=lambda r: r.severity.rank)
        c = SEVERITY_COLOURS.get(group[-1].severity.value, "#444444")
        axw.axhline(thr, color=c, lw=1.4, ls="--")
        text = ", ".join(f"{r.severity.value} in {r.window_h:g} h" for r in group)
        axw.text(0.995, thr, f"≥ {thr:g} mm: {text}", transform=axw.get_yaxis_transform(), va="bottom",
                 ha="right", fontsize=7.5, color=c,
                 bbox={"boxstyle": "round,pad=0.1", "fc": "white", "alpha": 0.7, "lw": 0})
        top = max(top, thr)
    axw.set_ylim(0, top * 1.12)
    axw.set_ylabel("rain in trailing window (mm)")
    _mark_events(axw, events, tz)
    axw.legend(loc="upper left", fontsize=8)
    return fig


class SensorScale(NamedTuple):
    """How a sensor's series is drawn (see :func:`sensor_scale`)."""

    label: str                      # the value axis: "CO (ppm)"
    unit: str                       # the plotted unit ("ppm"; the SI unit when the table has none)
    convert: Callable[[Any], np.ndarray]  # stored SI values -> plotted values
    metric: str | None              # the alert metric plotted (its rules are comparable)
    drawn: list                     # rules drawn as threshold lines (their thresholds in ``unit``)
    skipped: list                   # (rule, why) not drawn


def sensor_scale(kind: str, si_unit: str | None, rules: Sequence, baseline: float | None = None) -> SensorScale:
    """How a sensor's series is drawn: axis label, unit, conversion, the rules drawn and those not.

    Values are in the operator's unit of :func:`hardware_bridge.display.display_unit`
    (a CO reading stored as 8e-6 mol/mol is drawn at 8 ppm, a heat detector's
    298.15 K at 25 °C). A rule is drawn when its metric is the plotted one and its
    unit (:data:`hardware_bridge.fusion.alerts.METRIC_UNITS`, the unit its threshold
    is written in) is the plotted unit; a mismatch is listed, never drawn on the
    wrong scale. Displacement and tilt with rules from a baseline are drawn as
    the change from ``baseline`` (SI).
    """
    from hardware_bridge.display import display_unit
    from hardware_bridge.fusion.alerts import METRIC_UNITS, READING_METRICS

    d = display_unit(kind, si_unit or None)
    if d is None:  # a unit outside the table: drawn as stored, no threshold is comparable
        return SensorScale(_SI_LABEL.get(si_unit or "", f"value ({si_unit or '–'})"), si_unit or "",
                           lambda v: np.asarray(v, float), None, [],
                           [(r, "no display unit for the stored unit") for r in rules])
    base = [r for r in rules if r.metric in _FROM_BASELINE]
    reading = [r for r in rules if r.metric in READING_METRICS]
    if base and not reading:
        metric = base[0].metric
        b = 0.0 if baseline is None else float(baseline)
        label = f"{_FROM_BASELINE[metric]} ({d.unit})"

        def conv(v):
            return d.scale * np.abs(np.asarray(v, float) - b)
    else:
        metric = reading[0].metric if reading else None
        label = f"{QUANTITY_NAMES.get(kind, kind.replace('_', ' '))} ({d.unit})"

        def conv(v):
            return d.scale * np.asarray(v, float) + d.offset
    drawn, skipped = [], []
    for r in rules:
        if r.metric != metric:
            skipped.append((r, ""))
        elif METRIC_UNITS.get(r.metric) != d.unit:
            skipped.append((r, f"threshold in {METRIC_UNITS.get(r.metric)}, plotted in {d.unit}"))
        else:
            drawn.append(r)
    return SensorScale(label, d.unit, conv, metric, drawn, skipped)


def _level_axes(when, times, vals, unit, kind, station, rules, events, engine, tz):
    fig = new_figure(9.0, 4.6)
    ax = fig.subplots(1, 1)
    sc = sensor_scale(kind, unit, rules, _baseline(engine.config, kind, station, float(vals[0])))
    drawable, skipped = sc.drawn, sc.skipped
    y = sc.convert(vals)
    ax.plot(when, y, color="#08306b", lw=1.6, marker="o" if y.size < 80 else None, ms=3, label=kind)
    lo, hi = float(np.nanmin(y)), float(np.nanmax(y))
    thr = [r.threshold for r in drawable]
    lo, hi = min([lo, *thr]), max([hi, *thr])
    pad = 0.08 * (hi - lo or abs(hi) or 1.0)
    lo, hi = lo - pad, hi + pad
    for r in sorted(drawable, key=lambda r: r.severity.rank):
        c = SEVERITY_COLOURS.get(r.severity.value, "#444444")
        upward = r.op in (">=", ">")
        ax.axhspan(r.threshold, hi if upward else lo, color=c, alpha=0.13, lw=0)
        ax.axhline(r.threshold, color=c, lw=1.3, ls="--")
        ax.text(0.995, r.threshold, f"{r.severity.value}: {r.op} {r.threshold:g} {sc.unit}"
                + (f" ({r.label})" if r.label else ""),
                transform=ax.get_yaxis_transform(), va="bottom" if upward else "top", ha="right", fontsize=7.5,
                color=c, bbox={"boxstyle": "round,pad=0.1", "fc": "white", "alpha": 0.7, "lw": 0})
    if skipped:
        ax.text(0.01, 0.02, "not drawn: " + "; ".join(
            f"{r.metric}{f' ({r.window_h:g} h)' if r.window_h else ''} {r.op} {r.threshold:g} [{r.severity.value}]"
            + (f" ({why})" if why else "") for r, why in skipped[:4]) + (" …" if len(skipped) > 4 else ""),
            transform=ax.transAxes, fontsize=7, color="#555555")
    if not rules:
        ax.text(0.01, 0.02, f"no alert rules for kind {kind!r} at station {station!r} in the alert config",
                transform=ax.transAxes, fontsize=7.5, color="#555555")
    ax.set_ylim(lo, hi)
    ax.set_ylabel(sc.label)
    _mark_events(ax, events, tz)
    ax.legend(loc="upper left")
    return fig


def figures_for_run(ds: xr.Dataset, *, points=None, crs: str | None = None, districts=None,
                    top_n: int = 10) -> dict[str, Any]:
    """The three flood figures of a run: ``{"rain_depth", "area_balance", "max_depth"}``."""
    return {
        "rain_depth": rain_depth_figure(ds, points, crs=crs),
        "area_balance": area_balance_figure(ds),
        "max_depth": max_depth_figure(ds, districts=districts, top_n=top_n),
    }
