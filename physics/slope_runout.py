"""Landslide runout from failed cells, and the assets the deposit reaches.

:func:`runout` routes the failed material of every slide down the DEM with
an energy-line (travel-angle, Fahrböschung) stopping rule and
multiple-flow-direction spreading, conserving volume; the method is stated
in :mod:`physics._kernels.runout`. A *slide* is one 8-connected body of
source cells (``source_depth > 0``); each slide has one travel angle alpha,
by default from its volume ``V`` (m^3) by the power law quoted for
Corominas (1996, "The angle of reach as a mobility index for small and large
landslides", Can. Geotech. J. 33:260-271)::

    tan(alpha) = H / L = 0.97 * V ** -0.105

(the coefficients are those given with issue 12; they were not re-checked
against the paper's tables here: pass ``travel_angle_deg`` to use another
angle, e.g. a site back-analysis). For V = 900 m^3 (one 30 m cell failing
1 m deep) alpha = 25.4 deg; for 10^6 m^3 alpha = 12.8 deg.

:func:`assets_hit` lists the buildings, road edges, metro lines and stations
where the deposit is at least ``min_depth_m`` thick, and :func:`city_assets`
gathers those layers from the city manifest for an area.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from twin.errors import ValidationError

#: tan(alpha) = COROMINAS_A * V ** COROMINAS_B (V in m^3), see the module docstring.
COROMINAS_A = 0.97
COROMINAS_B = -0.105
#: Modified Holmgren (1994) spreading of Horton et al. (2013): centre-cell raise dh (m), exponent p.
DEFAULT_DH_M = 2.0
DEFAULT_EXPONENT = 4.0
#: Asset kinds, in the order rows are listed.
ASSET_KINDS = ("building", "road", "metro_line", "metro_station")


def travel_angle_corominas(volume_m3: Any) -> np.ndarray:
    """Travel angle alpha (degrees) of a landslide of ``volume_m3`` (Corominas 1996 power law).

    Examples
    --------
    >>> round(float(travel_angle_corominas(900.0)), 1)
    25.4
    """
    v = np.asarray(volume_m3, dtype=float)
    if np.any(~np.isfinite(v)) or np.any(v <= 0):
        raise ValidationError(f"volume_m3={volume_m3!r}: give positive finite volumes (m^3)")
    return np.degrees(np.arctan(COROMINAS_A * v**COROMINAS_B))


@dataclass(frozen=True)
class RunoutResult:
    """What :func:`runout` returns (2-D arrays on the DEM's grid).

    Attributes
    ----------
    deposit : ndarray (ny, nx) float64
        Deposit thickness, m (0 where nothing stopped, NaN outside the DEM).
    reach : ndarray (ny, nx) bool
        Cells the flow passed through or stopped in (sources included).
    source_volume_m3, deposit_volume_m3, left_volume_m3 : float
        Released, deposited on the grid, and carried off the grid (or onto
        NaN cells); released = deposited + left to round-off.
    travel_angle_deg : ndarray (n_slides,)
        The travel angle used for each slide.
    slide : ndarray (ny, nx) int32
        Slide number of each source cell (1..n_slides), 0 elsewhere.
    slide_volume_m3, slide_left_m3 : ndarray (n_slides,)
        Each slide's released volume and the part that left the grid.
    slide_cells : ndarray (n_slides,) int64
        Cells each slide's material entered (its footprint, sources included).
    slide_length_m, slide_drop_m : ndarray (n_slides,)
        Largest horizontal distance from the slide's highest source cell to a
        cell its material entered (cell centres), and the height from that
        source down to the lowest such cell: the modelled runout length L and
        fall height H, to compare with mapped events.
    through_m3 : ndarray (ny, nx) float64
        Volume that passed through (or started in) each cell.
    """

    deposit: np.ndarray
    reach: np.ndarray
    source_volume_m3: float
    deposit_volume_m3: float
    left_volume_m3: float
    travel_angle_deg: np.ndarray
    slide: np.ndarray
    slide_volume_m3: np.ndarray
    slide_left_m3: np.ndarray
    slide_cells: np.ndarray
    slide_length_m: np.ndarray
    slide_drop_m: np.ndarray
    through_m3: np.ndarray

    @property
    def n_slides(self) -> int:
        return int(self.travel_angle_deg.shape[0])

    @property
    def volume_error(self) -> float:
        """|released - deposited - left| / released (0 when nothing was released)."""
        if self.source_volume_m3 == 0:
            return 0.0
        return abs(self.source_volume_m3 - self.deposit_volume_m3 - self.left_volume_m3) / self.source_volume_m3


def label_slides(source: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected bodies of ``source`` (bool 2-D): (labels int32, 0 = none; count)."""
    from scipy import ndimage

    labels, n = ndimage.label(source, structure=np.ones((3, 3), dtype=bool))
    return labels.astype(np.int32), int(n)


def runout(elevation: Any, cell_size: float, source_depth: Any, *,
           travel_angle_deg: float | None = None, slides: Any = None,
           dh_m: float = DEFAULT_DH_M, exponent: float = DEFAULT_EXPONENT,
           n_chunks: int | None = None) -> RunoutResult:
    """Route failed material down the DEM and deposit it (energy line + multiple flow directions).

    Parameters
    ----------
    elevation : array (ny, nx)
        Ground elevation, m, on a square-celled metric grid; NaN = outside
        the model (material reaching it leaves).
    cell_size : float
        Cell size, m.
    source_depth : array (ny, nx)
        Failed thickness, m (vertical), >= 0; 0 or NaN = no failure.
    travel_angle_deg : float, optional
        One travel angle for every slide (degrees, 0 < alpha < 90). Default:
        per slide from its volume (:func:`travel_angle_corominas`).
    slides : array (ny, nx) of int, optional
        Slide numbers of the source cells (> 0; one travel angle and one
        energy-line envelope each). Default: 8-connected bodies of source cells.
    dh_m, exponent : float
        Modified Holmgren spreading: centre-cell raise (m) and exponent
        (defaults: the debris-flow values taken from Horton et al. 2013).
    n_chunks : int, optional
        Parallel work split (default: numba's thread count).

    Returns
    -------
    RunoutResult

    Raises
    ------
    twin.errors.ValidationError
        Naming the argument, its value and what is allowed.
    """
    import numba

    from physics._kernels.runout import route

    z = np.asarray(elevation, dtype=np.float64)
    if z.ndim != 2 or z.shape[0] < 1 or z.shape[1] < 1:
        raise ValidationError(f"elevation: shape {z.shape}; give a 2-D grid (ny, nx)")
    d = np.asarray(source_depth, dtype=np.float64)
    if d.shape != z.shape:
        raise ValidationError(f"source_depth: shape {d.shape}, expected the elevation's {z.shape}")
    d = np.where(np.isnan(d), 0.0, d)
    if np.any(~np.isfinite(d)) or np.any(d < 0):
        raise ValidationError("source_depth: values must be finite and >= 0 (m); "
                              f"got min {np.nanmin(d)!r}, max {np.nanmax(d)!r}")
    cs = float(cell_size)
    if not (np.isfinite(cs) and cs > 0):
        raise ValidationError(f"cell_size={cell_size!r}: give a positive cell size in metres")
    for name, value in (("dh_m", dh_m), ("exponent", exponent)):
        if not (np.isfinite(value) and value > 0):
            raise ValidationError(f"{name}={value!r}: give a positive number")
    src = d > 0
    bad = src & np.isnan(z)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise ValidationError(f"source_depth: {int(bad.sum())} source cells lie on NaN elevation "
                              f"(first at row {r}, col {c}); sources must be inside the DEM")
    if slides is None:
        labels, n = label_slides(src)
    else:
        labels = np.asarray(slides)
        if labels.shape != z.shape or not np.issubdtype(labels.dtype, np.integer):
            raise ValidationError(f"slides: shape {labels.shape}, dtype {labels.dtype}; give integer "
                                  f"slide numbers of shape {z.shape}")
        if np.any(labels[src] <= 0):
            raise ValidationError("slides: every source cell needs a slide number > 0")
        uniq, inv = np.unique(labels[src], return_inverse=True)
        labels = np.zeros(z.shape, dtype=np.int32)
        labels[src] = inv.ravel() + 1
        n = int(uniq.size)
    area = cs * cs
    vol = (d * area).ravel()
    flat = labels.ravel()
    order = np.argsort(flat, kind="stable")
    counts = np.bincount(flat, minlength=n + 1)
    ptr = np.concatenate([[0], np.cumsum(counts[1:])]).astype(np.int64)
    cells = order[counts[0]:].astype(np.int64)
    slide_volume = np.bincount(flat, weights=vol, minlength=n + 1)[1:]
    if travel_angle_deg is None:
        angle = travel_angle_corominas(slide_volume) if n else np.zeros(0)
    else:
        a = float(travel_angle_deg)
        if not (np.isfinite(a) and 0 < a < 90):
            raise ValidationError(f"travel_angle_deg={travel_angle_deg!r}: give an angle in (0, 90) degrees")
        angle = np.full(n, a)
    ny, nx = z.shape
    dep = np.zeros(ny * nx)
    through = np.zeros(ny * nx)
    stats = np.zeros((4, n))
    chunks = int(n_chunks or numba.get_num_threads())
    if n:
        route(np.ascontiguousarray(z.ravel()), ny, nx, vol, ptr, cells, np.tan(np.radians(angle)),
              cs, float(dh_m), float(exponent), max(1, min(chunks, n)), dep, through, stats)
    deposit = (dep / area).reshape(z.shape)
    deposit[np.isnan(z)] = np.nan
    return RunoutResult(
        deposit=deposit, reach=(through > 0).reshape(z.shape),
        source_volume_m3=float(vol.sum()), deposit_volume_m3=float(dep.sum()),
        left_volume_m3=float(stats[0].sum()), travel_angle_deg=np.asarray(angle, dtype=float),
        slide=labels, slide_volume_m3=slide_volume, slide_left_m3=stats[0],
        slide_cells=stats[1].astype(np.int64), slide_length_m=stats[2], slide_drop_m=stats[3],
        through_m3=through.reshape(z.shape))


# --------------------------------------------------------------------- assets hit
class AssetSources(dict):
    """The asset layers of an area, as keyword arguments of :func:`assets_hit`.

    A dict (``buildings``, ``roads``, ``metro_lines``, ``metro_stations``,
    only those available) with :attr:`notes`: why a kind is missing or empty.
    """

    def __init__(self, *args, notes: list[str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.notes: list[str] = list(notes or [])


def _first_column(gdf, names):
    for n in names:
        if n in gdf.columns:
            return n
    return None


def _text(values) -> list[str]:
    import pandas as pd

    return ["" if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v) for v in values]


def _asset_frame(kind: str, data) -> Any:
    """(id, name, geometry) rows of one asset kind, in EPSG:4326."""
    import geopandas as gpd

    from gis.crs import WGS84

    if kind == "road" and not isinstance(data, gpd.GeoDataFrame):
        if not hasattr(data, "to_geodataframe"):
            raise ValidationError(f"roads: {type(data).__name__}; give a gis.roads.RoadGraph or a "
                                  "GeoDataFrame of edges with an 'id' column")
        data = data.to_geodataframe()
    if not isinstance(data, gpd.GeoDataFrame):
        raise ValidationError(f"{kind}: {type(data).__name__}; give a GeoDataFrame")
    if data.crs is None:
        raise ValidationError(f"{kind}: the GeoDataFrame has no CRS; set it (e.g. EPSG:4326)")
    gdf = data.to_crs(WGS84)
    n = len(gdf)
    if kind == "metro_line" and "line" in gdf.columns:
        ids = _text(gdf["line"])
        names = [f"Line {i}" if i and not i.lower().startswith("line") else i for i in ids]
    elif kind == "metro_station" and "name" in gdf.columns:
        base = _text(gdf["name"])
        line = _text(gdf["line"]) if "line" in gdf.columns else [""] * n
        zh = _text(gdf["nameCn"]) if "nameCn" in gdf.columns else [""] * n
        ids = [f"{ln}/{b}" if ln else b for ln, b in zip(line, base, strict=True)]
        names = [f"{b} {z}".strip() + (f" ({ln})" if ln else "")
                 for b, z, ln in zip(base, zh, line, strict=True)]
    else:
        id_col = _first_column(gdf, ("id", "osmid", "osm_id", "edge_id"))
        ids = _text(gdf[id_col]) if id_col else [str(i) for i in gdf.index]
        name_col = _first_column(gdf, ("name", "name_zh", "nameCn"))
        names = _text(gdf[name_col]) if name_col else [""] * n
    return gpd.GeoDataFrame({"id": ids, "name": names}, geometry=gdf.geometry.values, crs=WGS84)


def assets_hit(deposit, *, buildings=None, roads=None, metro_lines=None, metro_stations=None,
               min_depth_m: float = 0.1):
    """Buildings, road edges, metro lines and stations under at least ``min_depth_m`` of deposit.

    An asset is hit when its geometry (a footprint, a line, a point) meets a
    grid cell whose deposit is >= ``min_depth_m`` (exact intersection with the
    cell squares, in the grid's CRS); its depth is the maximum deposit over
    those cells.

    Parameters
    ----------
    deposit : xarray.DataArray (y, x)
        Deposit thickness, m (NaN = outside), with attrs ``crs`` (metric) and
        ``transform`` (or regular ``x``/``y`` coordinates); north-up.
    buildings, metro_lines, metro_stations : geopandas.GeoDataFrame, optional
        In any CRS. Ids from ``id``/``osmid`` (buildings), ``line`` (lines),
        ``line``/``name`` (stations); names from ``name`` (+ ``nameCn``).
    roads : gis.roads.RoadGraph or geopandas.GeoDataFrame, optional
        The graph's edge ids (``id``) are kept, so
        ``graph.close_edges(hits.id[hits.kind == "road"], "landslide")``
        closes them for evacuation and dispatch.
    min_depth_m : float
        Deposit thickness that counts as hit, m.

    Returns
    -------
    geopandas.GeoDataFrame
        EPSG:4326, columns ``kind`` ("building", "road", "metro_line",
        "metro_station"), ``id``, ``name`` (str), ``deposit_depth_m`` (float),
        ``geometry`` (the asset's); by kind, then deepest first.
    """
    import geopandas as gpd
    import pandas as pd
    import shapely

    from gis.crs import WGS84
    from gis.raster import crs_of, transform_of

    if not (np.isfinite(min_depth_m) and min_depth_m > 0):
        raise ValidationError(f"min_depth_m={min_depth_m!r}: give a positive thickness in metres")
    if getattr(deposit, "dims", None) is None or tuple(deposit.dims) != ("y", "x"):
        raise ValidationError(f"deposit: dims {getattr(deposit, 'dims', None)}; give an "
                              "xarray.DataArray with dims ('y', 'x') and attrs crs, transform")
    crs = crs_of(deposit)
    t = transform_of(deposit)
    if t.b != 0 or t.d != 0:
        raise ValidationError(f"deposit: transform {tuple(t)[:6]} is rotated; give a north-up grid")
    values = np.asarray(deposit.values, dtype=float)
    with np.errstate(invalid="ignore"):
        rows, cols = np.nonzero(np.isfinite(values) & (values >= min_depth_m))
    depth = values[rows, cols]
    xa, ya = t * (cols, rows)
    xb, yb = t * (cols + 1, rows + 1)
    tree = shapely.STRtree(shapely.box(np.minimum(xa, xb), np.minimum(ya, yb),
                                       np.maximum(xa, xb), np.maximum(ya, yb)))
    frames = []
    for kind, data in (("building", buildings), ("road", roads), ("metro_line", metro_lines),
                       ("metro_station", metro_stations)):
        if data is None:
            continue
        assets = _asset_frame(kind, data)
        if assets.empty or depth.size == 0:
            continue
        geoms = assets.to_crs(crs).geometry.values
        which, cell = tree.query(geoms, predicate="intersects")
        if which.size == 0:
            continue
        best = np.full(len(assets), -np.inf)
        np.maximum.at(best, which, depth[cell])
        keep = np.flatnonzero(np.isfinite(best))
        sub = assets.iloc[keep].copy()
        sub.insert(0, "kind", kind)
        sub["deposit_depth_m"] = best[keep]
        frames.append(sub.sort_values(["deposit_depth_m", "id"], ascending=[False, True]))
    cols_out = ["kind", "id", "name", "deposit_depth_m", "geometry"]
    if not frames:
        return gpd.GeoDataFrame({c: pd.Series(dtype=object if c != "deposit_depth_m" else float)
                                 for c in cols_out[:-1]}, geometry=gpd.GeoSeries([], crs=WGS84),
                                crs=WGS84)
    out = pd.concat(frames, ignore_index=True)
    return gpd.GeoDataFrame(out[cols_out], geometry="geometry", crs=WGS84)


def city_assets(city, bounds_lonlat) -> AssetSources:
    """The city's asset layers inside ``bounds_lonlat`` (lon_min, lat_min, lon_max, lat_max).

    ``buildings``, ``metro_lines``, ``metro_stations`` from the manifest
    layers of those names (features meeting the box); ``roads``: the edges
    meeting the box of :func:`agents.city_roads.city_road_graph` (the graph
    evacuation and dispatch route on, so its edge ids close there). A kind
    whose layer is absent, or that has no feature in the box, is left out
    and said in :attr:`AssetSources.notes` (for Shenzhen the building layer
    covers central Nanshan only, and the drivable roads central Shenzhen).

    Returns
    -------
    AssetSources
        ``assets_hit(deposit, **city_assets(city, bounds))``.
    """
    import shapely

    from twin.errors import ConfigError, DataError, GraphError

    b = tuple(float(v) for v in bounds_lonlat)
    if len(b) != 4 or not all(np.isfinite(b)) or b[0] >= b[2] or b[1] >= b[3]:
        raise ValidationError(f"bounds_lonlat={bounds_lonlat!r}: give (lon_min, lat_min, lon_max, "
                              "lat_max) with min < max, degrees")
    box = shapely.box(*b)
    out = AssetSources()
    for key, layer in (("buildings", "buildings"), ("metro_lines", "metro_lines"),
                       ("metro_stations", "metro_stations")):
        try:
            gdf = city.vector(layer)
        except (DataError, ConfigError) as exc:
            out.notes.append(f"{key}: the city has no {layer!r} layer on disk ({exc})")
            continue
        sub = gdf[gdf.intersects(box)]
        if sub.empty:
            extent = ", ".join(f"{v:.3f}" for v in gdf.total_bounds) if len(gdf) else "empty"
            out.notes.append(f"{key}: no feature of the city's {layer!r} layer lies in the area "
                             f"(the layer covers lon/lat {extent} only)")
            continue
        out[key] = sub
    try:
        from agents.city_roads import city_road_graph

        edges = city_road_graph(city).to_geodataframe()
    except (DataError, ConfigError, GraphError) as exc:
        out.notes.append(f"roads: no routable road graph for the city ({exc})")
        return out
    sub = edges[edges.intersects(box)]
    if sub.empty:
        extent = ", ".join(f"{v:.3f}" for v in edges.total_bounds)
        out.notes.append("roads: no edge of the city's drivable road graph lies in the area "
                         f"(the graph covers lon/lat {extent} only)")
    else:
        out["roads"] = sub
    return out
