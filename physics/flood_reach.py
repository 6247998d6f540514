"""A real river reach of the city for the flood model: its OSM centreline, a burned channel, edge boundaries.

:func:`river_reach` cuts the city's terrain (SRTM, the city's CRS) to a reach of a named OSM river
(``waterway=river``), conditions it (the artefact rule of :mod:`physics.flood_terrain`, then the channel
burned by :func:`burn_channel`), and states the boundaries a hydraulic engineer gives a reach: an upstream
discharge hydrograph over the channel's cells of the edge the river enters by, and a normal-depth outlet
(the bed's slope) along the edge it leaves by; every other face is a wall. :func:`write_reach` writes the
DEM (GeoTIFF) and the boundary file (TOML) that ``twin flood run --dem ... --boundaries ...`` takes; ``twin
flood reach`` does both and runs it.

The reach is cut so that the river enters through one edge and leaves through the opposite one: the box
of the centreline between ``start_km`` and ``end_km`` (chainage from the first vertex, in the direction
OSM draws the river, which is its flow direction), widened by ``buffer_m`` across the flow only.

Why a burned channel: SRTM (2000, 1", C-band) sees the water surface of a river, often with voids filled
from neighbours, not its bed. Along the Dasha River (大沙河, Nanshan) the cells under the centreline read
from +23 m to -10 m in no order (a running minimum falls to -22.8 m), so a raw reach has no thalweg and the
inflow ponds. The rule (:func:`thalweg`): the centreline sampled every quarter cell, the elevation of its
cells smoothed by a running median over ``median_m`` (500 m: longer than the noise's bumps, shorter than
the river's bends), then the decreasing isotonic regression of that (pool-adjacent-violators, least
squares: the closest profile that never rises downstream), minus ``channel_depth_m``; the cells the line
crosses and those whose centre lies within ``channel_width_m``/2 of it take that bed (:func:`burn_channel`),
with a fall of at least 1e-4 so that no stretch is flat. Last, every depression left is filled to the level
at which it spills towards the outlet edge (:func:`fill_to_outlet`): under a reach's inflow the SRTM holes
beside the river (up to 14 m deep along the Dasha River after the artefact rule) would otherwise store the
flood before it reaches the outlet. Real storage off the channel is lost with them: a reach run is for the
channel and its floodplain, not for ponding in the city (``twin flood run`` on the city does that).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from physics.flood_boundaries import EdgeDischarge, EdgeNormalDepth
from twin.errors import DataMissingError, ValidationError

#: Defaults (assumptions, not survey data: say so where they are used)
CHANNEL_WIDTH_M = 60.0  # the lower Dasha River is ~40-70 m between its embankments (satellite imagery)
CHANNEL_DEPTH_M = 2.0  # depth of the burned channel below the smoothed SRTM profile
MEDIAN_M = 500.0  # running-median window of the profile
MIN_FALL = 1e-4  # the burned bed falls at least this (m/m) so that no stretch of it is flat
BUFFER_M = 600.0  # valley kept on each side of the reach, across the flow


@dataclass
class Reach:
    """A river reach ready for :class:`physics.flood.FloodModel` (or ``twin flood run``).

    ``dem``: the conditioned bed (xarray DataArray, m, the city's CRS, ``transform``/``crs`` attrs);
    ``boundaries``: the edge specs; ``line_xy``: the centreline in the grid's CRS (m); ``chainage_m`` and
    ``profile_m``/``thalweg_m``: the smoothed SRTM profile and the burned bed along it; ``hydrograph``:
    (times_s, Q m³/s) entering; ``inflow_edge``/``outlet_edge``; ``conditioning``: what changed.
    """

    dem: object
    boundaries: list
    line_xy: np.ndarray
    chainage_m: np.ndarray
    profile_m: np.ndarray
    thalweg_m: np.ndarray
    hydrograph: tuple[np.ndarray, np.ndarray]
    inflow_edge: str
    outlet_edge: str
    river: str
    conditioning: dict = field(default_factory=dict)


# -- the profile -----------------------------------------------------------------------------------
def running_median(values: np.ndarray, window: int) -> np.ndarray:
    """Median over ``window`` samples centred on each (shrinking at the ends)."""
    v = np.asarray(values, dtype=np.float64)
    h = max(0, int(window) // 2)
    return np.array([np.median(v[max(0, i - h):i + h + 1]) for i in range(v.size)])


def decreasing_isotonic(values: np.ndarray) -> np.ndarray:
    """The least-squares non-increasing fit of ``values`` (pool adjacent violators)."""
    v = np.asarray(values, dtype=np.float64)
    means: list[float] = []
    counts: list[int] = []
    for x in v:
        means.append(float(x))
        counts.append(1)
        # a block higher than the one before it violates "never rises": pool them
        while len(means) > 1 and means[-1] > means[-2]:
            m2, c2 = means.pop(), counts.pop()
            m1, c1 = means.pop(), counts.pop()
            means.append((m1 * c1 + m2 * c2) / (c1 + c2))
            counts.append(c1 + c2)
    return np.repeat(means, counts)


def thalweg(profile: np.ndarray, spacing_m: float, *, median_m: float = MEDIAN_M,
            channel_depth_m: float = CHANNEL_DEPTH_M) -> np.ndarray:
    """The burned bed along a centreline from the terrain ``profile`` sampled every ``spacing_m``."""
    smooth = running_median(profile, max(1, round(median_m / spacing_m)))
    fall = MIN_FALL * spacing_m * np.arange(smooth.size)  # no stretch flat
    return decreasing_isotonic(smooth) - channel_depth_m - fall


def fill_to_outlet(z: np.ndarray, outlet_edge: str) -> np.ndarray:
    """Depressions filled to the level at which they spill towards ``outlet_edge``: Priority-Flood (Barnes,
    Lehman & Mulla 2014, Algorithm 2) over the 4 face neighbours the model's fluxes cross, seeded at the
    outlet edge's cells only (the other three edges are walls in the reach's model). NaN cells stay NaN and
    pass no water."""
    import heapq

    ny, nx = z.shape
    out = np.array(z, dtype=np.float64, copy=True)
    valid = np.isfinite(out)
    seen = ~valid
    seeds = {"south": [(ny - 1, i) for i in range(nx)], "north": [(0, i) for i in range(nx)],
             "east": [(j, nx - 1) for j in range(ny)], "west": [(j, 0) for j in range(ny)]}[outlet_edge]
    heap = []
    for j, i in seeds:
        if not seen[j, i]:
            seen[j, i] = True
            heap.append((out[j, i], j, i))
    heapq.heapify(heap)
    while heap:
        level, j, i = heapq.heappop(heap)
        for jj, ii in ((j - 1, i), (j + 1, i), (j, i - 1), (j, i + 1)):
            if 0 <= jj < ny and 0 <= ii < nx and not seen[jj, ii]:
                seen[jj, ii] = True
                if out[jj, ii] < level:
                    out[jj, ii] = level
                heapq.heappush(heap, (out[jj, ii], jj, ii))
    return out


def burn_channel(z: np.ndarray, transform, line_xy: np.ndarray, bed: np.ndarray, *, width_m: float
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``z`` with its channel cells set to the burned bed: (new z, channel mask).

    Channel cells: the cells the centreline ``line_xy`` (grid CRS, sampled densely) passes through (with a
    face-sharing cell where it passes a corner, so the channel is 4-connected), and every cell whose centre lies
    within ``width_m``/2 of it. Each takes ``bed`` of the nearest sample (lowered or
    raised: under a river SRTM measured the water surface or filled a void, not the bed).
    """
    from scipy.spatial import cKDTree

    ny, nx = z.shape
    fc, fr = ~transform * (line_xy[:, 0], line_xy[:, 1])
    r, c = np.floor(fr).astype(np.int64), np.floor(fc).astype(np.int64)
    ok = (r >= 0) & (r < ny) & (c >= 0) & (c < nx)
    mask = np.zeros((ny, nx), dtype=bool)
    r, c = r[ok], c[ok]
    mask[r, c] = True
    # where the line passes a cell corner, consecutive cells touch only diagonally: the model's fluxes cross
    # faces, so one of the two cells sharing a face with both joins the channel
    diag = (np.abs(np.diff(r)) == 1) & (np.abs(np.diff(c)) == 1)
    mask[r[:-1][diag], c[1:][diag]] = True
    cols, rows = np.meshgrid(np.arange(nx) + 0.5, np.arange(ny) + 0.5)
    cx, cy = transform * (cols, rows)
    tree = cKDTree(line_xy)
    dist, idx = tree.query(np.column_stack([cx.ravel(), cy.ravel()]))
    mask |= (dist <= width_m / 2.0).reshape(ny, nx)
    out = np.array(z, dtype=np.float64, copy=True)
    out[mask] = np.asarray(bed)[idx.reshape(ny, nx)[mask]]
    return out, mask


# -- the river -------------------------------------------------------------------------------------
def river_centreline(city, river: str) -> np.ndarray:
    """The (lon, lat) polyline of the OSM river ``river`` (``name``/``name:zh``/``name:en``, ``waterway=river``)
    in the city's OSM layer, its ways joined end to start in the order OSM draws them (flow direction)."""
    from gis.osm import read_osm_xml

    (path,) = city.files("osm")

    def keep(t: dict) -> bool:
        return t.get("waterway") in ("river", "canal") and river in (t.get("name"), t.get("name:zh"),
                                                                       t.get("name:en"))

    coords, ways = read_osm_xml(path, keep_way=keep)
    if not ways:
        raise DataMissingError(f"river={river!r}: no OSM way with waterway=river and that name in {path}; "
                               "give a river of the city's OSM layer (e.g. 大沙河 / 'Shahe River')")
    parts = [[coords[n] for n in w.nodes if n in coords] for w in ways]
    line = list(parts.pop(0))
    while parts:
        for k, p in enumerate(parts):
            if p[0] == line[-1]:
                line += p[1:]
            elif p[-1] == line[0]:
                line = p[:-1] + line
            else:
                continue
            parts.pop(k)
            break
        else:
            raise DataMissingError(f"river={river!r}: its {len(ways)} OSM ways do not join into one line")
    return np.asarray(line, dtype=np.float64)


def _edge_of(direction: np.ndarray, entering: bool) -> str:
    """The grid edge a line crosses when it runs along ``direction`` (x east, y north) into (or out of) a box."""
    dx, dy = direction
    if abs(dy) >= abs(dx):
        going_south = dy < 0
        return ("north" if going_south else "south") if entering else ("south" if going_south else "north")
    going_east = dx > 0
    return ("west" if going_east else "east") if entering else ("east" if going_east else "west")


def design_hydrograph(peak_m3s: float, base_m3s: float, rise_h: float, fall_h: float
                      ) -> tuple[np.ndarray, np.ndarray]:
    """A triangular flood hydrograph (times s, Q m³/s): base, peak after ``rise_h``, base again ``fall_h`` later."""
    for name, v in (("peak_m3s", peak_m3s), ("rise_h", rise_h), ("fall_h", fall_h)):
        if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
            raise ValidationError(f"{name}={v!r}: give a number > 0")
    if not (isinstance(base_m3s, int | float) and math.isfinite(base_m3s) and 0 <= base_m3s <= peak_m3s):
        raise ValidationError(f"base_m3s={base_m3s!r}: give a number between 0 and peak_m3s ({peak_m3s})")
    t = np.array([0.0, rise_h * 3600.0, (rise_h + fall_h) * 3600.0, (rise_h + fall_h) * 3600.0 + 86400.0])
    return t, np.array([base_m3s, peak_m3s, base_m3s, base_m3s], dtype=np.float64)


def river_reach(city="shenzhen", river: str = "大沙河", *, start_km: float = 0.0, end_km: float | None = 6.5,
                resolution: float = 30.0, buffer_m: float = BUFFER_M, channel_width_m: float = CHANNEL_WIDTH_M,
                channel_depth_m: float = CHANNEL_DEPTH_M, median_m: float = MEDIAN_M, peak_m3s: float = 200.0,
                base_m3s: float = 5.0, rise_h: float = 1.0, fall_h: float = 3.0) -> Reach:
    """The reach of ``river`` between chainages ``start_km`` and ``end_km`` (None: its end), ready to run.

    The default is the Dasha River (大沙河) from its first OSM vertex (below Xili) 6.5 km down, stopping short
    of its estuary into Shenzhen Bay (the last 1.4 km run between reclaimed land and the tide). The
    hydrograph (``peak_m3s`` over a ``base_m3s`` flow, ``rise_h`` up and ``fall_h`` down) is an example, not
    a design flood of the river: give the design figure of the river authority where one exists.
    """
    import pyproj
    import xarray as xr

    from physics.flood_terrain import remove_artefacts
    from twin.city import City
    from twin.domain import Domain

    city = City(city) if isinstance(city, str) else city
    for name, v in (("resolution", resolution), ("channel_width_m", channel_width_m),
                    ("channel_depth_m", channel_depth_m), ("median_m", median_m)):
        if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
            raise ValidationError(f"{name}={v!r}: give a number > 0")
    if not (isinstance(buffer_m, int | float) and math.isfinite(buffer_m) and buffer_m >= 0):
        raise ValidationError(f"buffer_m={buffer_m!r}: give a number >= 0 (m)")
    t_q = design_hydrograph(peak_m3s, base_m3s, rise_h, fall_h)
    lonlat = river_centreline(city, river)
    to_grid = pyproj.Transformer.from_crs("EPSG:4326", city.crs, always_xy=True)
    x, y = to_grid.transform(lonlat[:, 0], lonlat[:, 1])
    chain = np.r_[0.0, np.cumsum(np.hypot(np.diff(x), np.diff(y)))]
    total_km = chain[-1] / 1000.0
    end_km = total_km if end_km is None else end_km
    if not (0.0 <= start_km < end_km <= total_km + 1e-9):
        raise ValidationError(f"start_km={start_km}, end_km={end_km}: give 0 <= start_km < end_km <= "
                              f"{total_km:.2f} (the length of {river} in the OSM layer, km)")
    # the reach's centreline, every quarter cell
    spacing = resolution / 4.0
    s = np.arange(start_km * 1000.0, end_km * 1000.0 + 1e-6, spacing)
    lx, ly = np.interp(s, chain, x), np.interp(s, chain, y)
    enter = _edge_of(np.array([lx[min(8, lx.size - 1)] - lx[0], ly[min(8, ly.size - 1)] - ly[0]]), True)
    leave = _edge_of(np.array([lx[-1] - lx[max(0, lx.size - 9)], ly[-1] - ly[max(0, ly.size - 9)]]), False)
    if {enter, leave} not in ({"north", "south"}, {"east", "west"}):
        raise ValidationError(f"{river} between {start_km} and {end_km} km enters by the {enter} and leaves by the "
                              f"{leave}: choose a reach that runs across the box (start_km/end_km)")
    # the box: cut at the two ends along the flow, widened across it
    ns = enter in ("north", "south")
    x0, x1 = lx.min() - (buffer_m if ns else 0.0), lx.max() + (buffer_m if ns else 0.0)
    y0, y1 = ly.min() - (0.0 if ns else buffer_m), ly.max() + (0.0 if ns else buffer_m)
    to_ll = pyproj.Transformer.from_crs(city.crs, "EPSG:4326", always_xy=True)
    lo = to_ll.transform(x0 + resolution / 2, y0 + resolution / 2)
    hi = to_ll.transform(x1 - resolution / 2, y1 - resolution / 2)
    dom = Domain.from_area(city, {"bbox": [lo[0], lo[1], hi[0], hi[1]]}, resolution=resolution)
    z = np.where(dom.blocked | dom.sea, np.nan, dom.elevation)
    z_art, art = remove_artefacts(z, dx=resolution)
    fc, fr = ~dom.transform * (lx, ly)
    rows, cols = np.floor(fr).astype(np.int64), np.floor(fc).astype(np.int64)
    inside = (rows >= 0) & (rows < z.shape[0]) & (cols >= 0) & (cols < z.shape[1])
    rows, cols, s_in = rows[inside], cols[inside], s[inside]
    profile = z_art[rows, cols]
    if not np.all(np.isfinite(profile)):
        raise ValidationError(f"{river}: the reach crosses cells without terrain (nodata or sea); shorten it "
                              "(end_km) so that it stays on land")
    bed = thalweg(profile, spacing, median_m=median_m, channel_depth_m=channel_depth_m)
    z_new, channel = burn_channel(z_art, dom.transform, np.column_stack([lx[inside], ly[inside]]), bed,
                                  width_m=channel_width_m)
    z_new = np.where(np.isfinite(z_art), z_new, np.nan)
    z_fill = fill_to_outlet(z_new, leave)
    filled = int(np.count_nonzero(z_fill > z_new))
    z_new = z_fill
    boundaries = _reach_boundaries(dom, lx, ly, enter, leave, t_q, channel_width_m, resolution)
    da = xr.DataArray(z_new.astype(np.float32), dims=("y", "x"), coords={"y": dom.y, "x": dom.x},
                      name="elevation", attrs={"units": "m", "crs": str(dom.crs),
                                               "transform": tuple(dom.transform)[:6],
                                               "long_name": f"bed of the {river} reach (SRTM, conditioned)"})
    return Reach(dem=da, boundaries=boundaries, line_xy=np.column_stack([lx, ly]), chainage_m=s_in,
                 profile_m=profile, thalweg_m=bed, hydrograph=t_q, inflow_edge=enter, outlet_edge=leave,
                 river=river, conditioning={"artefacts": art.as_dict(),
                                            "channel_cells": int(channel.sum()), "channel_width_m": channel_width_m,
                                            "filled_cells": filled,
                                            "median_m": median_m, "channel_depth_m": channel_depth_m})


def _reach_boundaries(dom, lx, ly, enter: str, leave: str, t_q, width_m: float, dx: float) -> list:
    """The upstream discharge (Q / width over the channel's faces) and the normal-depth outlet."""
    along = lx[0] if enter in ("north", "south") else ly[0]
    span = (along - width_m / 2.0, along + width_m / 2.0)
    t, q = t_q
    return [EdgeDischarge(edge=enter, span_m=span, q_m2s=list(q / width_m), times_s=list(t)),
            EdgeNormalDepth(edge=leave, slope="bed")]


def write_reach(reach: Reach, out_dir) -> tuple[Path, Path]:
    """``reach_dem.tif`` (GeoTIFF, float32) and ``reach.toml`` (the boundary file) in ``out_dir``."""
    import rasterio
    from affine import Affine

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dem_path, toml_path = out / "reach_dem.tif", out / "reach.toml"
    a = reach.dem
    with rasterio.open(dem_path, "w", driver="GTiff", height=a.shape[0], width=a.shape[1], count=1,
                       dtype="float32", crs=a.attrs["crs"], transform=Affine(*a.attrs["transform"]),
                       nodata=np.float32(np.nan), compress="deflate") as f:
        f.write(a.values.astype(np.float32), 1)
        f.update_tags(1, units="m", long_name=a.attrs["long_name"])
    lines = [f"# {reach.river}: a river reach cut from the city's SRTM with a burned channel "
             "(physics/flood_reach.py).",
             "# The hydrograph is an example, not the river's design flood.", ""]
    for b in reach.boundaries:
        lines.append("[[edge]]")
        lines.append(f'edge = "{b.edge}"')
        lines.append(f'kind = "{b.kind}"')
        if b.span_m is not None:
            lines.append(f"span_m = [{b.span_m[0]:.3f}, {b.span_m[1]:.3f}]")
        if b.kind == "discharge":
            t, v = b.series()
            lines.append("times_s = [" + ", ".join(f"{x:.1f}" for x in t) + "]")
            lines.append("q_m2s = [" + ", ".join(f"{x:.6g}" for x in v) + "]")
        elif b.kind == "normal_depth":
            lines.append(f'slope = "{b.slope}"' if isinstance(b.slope, str) else f"slope = {b.slope}")
        lines.append("")
    toml_path.write_text("\n".join(lines), encoding="utf-8")
    return dem_path, toml_path
