"""Set-up of the slope-failure model on a :class:`twin.domain.Domain`: per-cell parameters, fills, rain.

:func:`slope_setup` turns the shared working grid into the inputs of the
slope kernels (:mod:`physics._kernels.slope`): one column of the
``(N_PARAMS, n_cells)`` parameter array per modelled cell. Choices:

* **modelled cells**: active land cells (``domain.land``) with a slope of at
  least ``min_slope_deg`` (default :data:`MIN_SLOPE_DEG` = 1 degree). Flatter
  cells are not modelled and report NaN: the infinite-slope FS grows without
  bound as the slope goes to 0 (tan(phi')/tan(delta)), and shallow landslides
  need a slope; sea, blocked and flat cells are outside the model;
* **slope**: the domain's slope (degrees, Horn 1981, :mod:`gis.terrain`),
  converted to radians; where a fill raises the surface, the slope is
  recomputed on the raised surface with the same kernel (:func:`gis.terrain.slope`)
  over the fill's cells and the ring of cells around them (Horn's 3 x 3 window);
* **zones**: codes of the soil table (:mod:`physics.slope_params`) from a
  raster (nearest) or polygons (rasterised), else the table's default zone
  everywhere; a fill's cells take the fill's zone (``fill_spoil`` by default);
* **soil depth**: each zone's slope-depth rule (:func:`physics.slope_params.depth_on_grid`,
  Saulnier et al. 1997) where no depth map exists; in a fill, the fill's
  thickness (the slip surface may lie anywhere within the fill, the profile's
  base is the old ground surface);
* **initial water table**: the zone's default depth, but never below the soil
  base (``d = min(d_table, soil depth)``): the table's value is "near the soil
  base" (its stated assumption) and a thin soil from the slope rule would
  otherwise hold a water table in the bedrock below it;
* **D_hat**: :func:`physics._kernels.slope.iverson_dhat` (4 D0 cos^2 delta,
  Iverson 2000) or ``trigrs_dhat`` (TRIGRS 2.0, 4 D0 / cos^2 delta);
* **long-term infiltration** I_LT: 0 (the steady water table is at its
  initial depth with no steady recharge), or a given rate.

Fill zones (:func:`read_fills`): polygons of GeoJSON (any CRS; WGS 84 when
it states none) with the property ``thickness_m`` (m, > 0) and optionally
``taper_m`` (m): the surface is raised by ``thickness_m`` inside the polygon
(flat top, vertical-walled, the default) or, with ``taper_m > 0``, by
``thickness_m * min(1, d / taper_m)`` where ``d`` is the distance (m) from
the cell centre to the nearest cell centre outside the polygon, a fill whose
faces slope down to the old ground. ``zone`` names the table zone of its
soil (default ``fill_spoil``); ``c_kpa``, ``phi_deg``, ``gamma_kn_m3``,
``ks_m_s``, ``d0_m2_s`` and ``water_table_m`` override that zone's defaults
for that polygon. Later polygons win where they overlap. SRTM (2000)
predates the Guangming dump of 2013-2015: a fill is how a user adds it.

Rain (:func:`rain_series`): a design storm of :data:`physics.flood_city.STORMS`,
a uniform rate, a rain file (CSV ``time_h, mm_h``: each row the rate from
its ``time_h`` until the next row's, the last row's lasting as long as the
interval before it; or a NetCDF with ``rain`` (time, y, x) in mm/h, ``time``
the start of each block in seconds (or datetimes) from the run's start, the
CRS in the variable's or the file's ``crs`` attribute, warped bilinearly
onto the domain), or the storm of a flood run (its ``storm`` attribute,
rebuilt block for block from its depth-duration maxima), or the rain gauges
of a twin store over a time window (IDW in hourly blocks by the bridge's
:mod:`hardware_bridge.fusion.rain_grid`). Rain may stop
before the end of the run: the kernel superposes the steps, so pressure
heads keep diffusing after it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from physics._kernels import slope as K
from physics.slope_params import PARAMS, SoilTable, defaults_on_grid, depth_on_grid, load_table
from twin.errors import DataMissingError, ValidationError

MIN_SLOPE_DEG = 1.0
FILL_ZONE = "fill_spoil"
FILL_OVERRIDES = ("c_kpa", "phi_deg", "gamma_kn_m3", "ks_m_s", "d0_m2_s", "water_table_m")
MAX_FILL_M = 200.0
DHATS = ("iverson", "trigrs")
RASTER_SUFFIXES = (".tif", ".tiff", ".img", ".vrt", ".asc", ".nc")
MM_H = 1.0 / 3.6e6  # m/s per mm/h


# -- fills ---------------------------------------------------------------------------------------
def _read_polygons(src, what: str):
    """A GeoDataFrame from a path, a GeoJSON dict or a GeoDataFrame (WGS 84 when no CRS is stated)."""
    import geopandas as gpd

    if isinstance(src, str | Path):
        p = Path(src).expanduser()
        if not p.is_file():
            raise DataMissingError(f"{what}={str(src)!r}: no such file")
        try:
            gdf = gpd.read_file(p)
        except Exception as exc:  # noqa: BLE001 - any reader failure: not a vector file
            raise ValidationError(f"{what}={str(src)!r}: not a vector file GDAL can read ({exc})") from None
    elif isinstance(src, Mapping):
        gdf = gpd.GeoDataFrame.from_features(src.get("features", []), crs="EPSG:4326")
    else:
        gdf = src
    if gdf.crs is None:
        gdf = gdf.set_crs("EPSG:4326")
    return gdf


def read_fills(fills, table: SoilTable | None = None):
    """Validated fill polygons (GeoDataFrame in their own CRS); every problem listed at once.

    Columns: ``thickness_m``, ``taper_m`` (0 = flat), ``zone`` and the overrides
    of :data:`FILL_OVERRIDES` (NaN = the zone's default), ``geometry``.

    Raises
    ------
    twin.errors.ValidationError
        Naming each feature (by index and ``name`` when it has one), the property,
        its value and what is allowed.
    """
    table = table or load_table()
    gdf = _read_polygons(fills, "fills").reset_index(drop=True)
    problems = []
    if len(gdf) == 0:
        problems.append("no polygon: give at least one feature with a thickness_m")
    if "thickness_m" not in gdf.columns:
        problems.append(f"no 'thickness_m' property (properties: {[c for c in gdf.columns if c != 'geometry']})")
    out = {"thickness_m": [], "taper_m": [], "zone": [], **{k: [] for k in FILL_OVERRIDES}}

    def num(v) -> float:
        try:
            return float(v)
        except (TypeError, ValueError):
            return float("nan")

    for i, row in gdf.iterrows():
        name = row["name"] if "name" in gdf.columns else None
        who = f"fills feature {i}" + (f" ({name!r})" if isinstance(name, str) and name else "")
        geom = row.geometry
        if geom is None or geom.is_empty or geom.geom_type not in ("Polygon", "MultiPolygon"):
            problems.append(f"{who}: geometry {None if geom is None else geom.geom_type}: must be a Polygon "
                            "or MultiPolygon")
        t = num(row.get("thickness_m"))
        if not (math.isfinite(t) and 0 < t <= MAX_FILL_M):
            problems.append(f"{who}: thickness_m={row.get('thickness_m')!r}: must be a number in (0, {MAX_FILL_M:g}] m")
        raw_taper = row.get("taper_m") if "taper_m" in gdf.columns else None
        taper = 0.0 if raw_taper is None or (isinstance(raw_taper, float) and math.isnan(raw_taper)) else num(raw_taper)
        if not (math.isfinite(taper) and taper >= 0):
            problems.append(f"{who}: taper_m={raw_taper!r}: must be a number >= 0 m (0: flat)")
        zone = row.get("zone") if "zone" in gdf.columns else None
        zone = FILL_ZONE if zone is None or (isinstance(zone, float) and math.isnan(zone)) else str(zone)
        if zone not in table.zones:
            problems.append(f"{who}: zone={zone!r}: not in the soil table (zones: {sorted(table.zones)})")
        out["thickness_m"].append(t)
        out["taper_m"].append(taper)
        out["zone"].append(zone)
        for k in FILL_OVERRIDES:
            raw = row.get(k) if k in gdf.columns else None
            v = float("nan") if raw is None or (isinstance(raw, float) and math.isnan(raw)) else num(raw)
            units, lo, hi, lo_open, hi_open = PARAMS[k]
            inside = math.isfinite(v) and (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)
            if raw is not None and not (isinstance(raw, float) and math.isnan(raw)) and not inside:
                span = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
                problems.append(f"{who}: {k}={raw!r}: must lie in {span} {units}")
            out[k].append(v)
    if problems:
        raise ValidationError(f"fills: {len(problems)} problem(s): " + "; ".join(problems))
    import geopandas as gpd

    return gpd.GeoDataFrame(out, geometry=list(gdf.geometry), crs=gdf.crs)


def fill_grids(domain, fills, table: SoilTable) -> dict[str, np.ndarray]:
    """Fill polygons burnt onto the domain's grid (cell centres inside; later polygons win).

    Returns ``thickness`` (m, 0 outside fills), ``zone`` (code, -1 outside),
    ``index`` (feature index, -1 outside) and one array per override of
    :data:`FILL_OVERRIDES` (NaN: the zone's default).
    """
    from rasterio.features import geometry_mask
    from scipy import ndimage

    gdf = fills.to_crs(domain.crs)
    shape = domain.shape
    res = domain.resolution_m
    out = {"thickness": np.zeros(shape), "zone": np.full(shape, -1, np.int16),
           "index": np.full(shape, -1, np.int32), **{k: np.full(shape, np.nan) for k in FILL_OVERRIDES}}
    for i, row in gdf.iterrows():
        inside = geometry_mask([row.geometry], out_shape=shape, transform=domain.transform, invert=True)
        if not inside.any():
            continue
        t = np.full(shape, row["thickness_m"])
        if row["taper_m"] > 0:
            d = ndimage.distance_transform_edt(inside) * res  # to the nearest centre outside
            t = row["thickness_m"] * np.minimum(1.0, d / row["taper_m"])
        out["thickness"][inside] = t[inside]
        out["zone"][inside] = table.zone(row["zone"]).code
        out["index"][inside] = i
        for k in FILL_OVERRIDES:
            out[k][inside] = row[k]
    return out


def raised_slope(domain, elevation: np.ndarray, changed: np.ndarray) -> np.ndarray:
    """The domain's slope (deg) with cells near ``changed`` recomputed on ``elevation`` (Horn, :mod:`gis.terrain`)."""
    from scipy import ndimage

    from gis import terrain

    slope = np.array(domain.slope, dtype=np.float64)
    if not changed.any():
        return slope
    near = ndimage.binary_dilation(changed, structure=np.ones((3, 3), bool))
    new = terrain.slope(domain.grid_dataarray(elevation, "elevation", "m")).values
    slope[near] = new[near]
    return slope


# -- zones ---------------------------------------------------------------------------------------
def zone_grid(domain, zones, table: SoilTable) -> np.ndarray:
    """Zone codes on the domain's grid from None (the default zone), a raster or polygons."""
    from physics.slope_params import zones_from_polygons, zones_from_raster

    like = domain.grid_dataarray(np.zeros(domain.shape, np.uint8), "zone", "1")
    if zones is None:
        return np.full(domain.shape, table.zone(table.default_zone).code, np.int16)
    if isinstance(zones, str | Path) and Path(zones).suffix.lower() in RASTER_SUFFIXES:
        from gis.raster import open_raster

        src = open_raster(Path(zones).expanduser(), masked=False)
        return np.asarray(zones_from_raster(src, like, table=table).values, np.int16)
    gdf = _read_polygons(zones, "zones")
    return np.asarray(zones_from_polygons(gdf, like, table=table).values, np.int16)


# -- set-up --------------------------------------------------------------------------------------
def _dhat(name: str, d0, slope_rad):
    if name == "iverson":
        return K.iverson_dhat(d0, slope_rad)
    if name == "trigrs":
        return K.trigrs_dhat(d0, slope_rad)
    raise ValidationError(f"dhat={name!r}: use one of {DHATS}")


def slope_setup(domain, *, table: SoilTable | str | Path | None = None, zones=None, fills=None,
                dhat: str = "iverson", min_slope_deg: float = MIN_SLOPE_DEG,
                i_lt_mm_h: float = 0.0) -> dict[str, Any]:
    """Per-cell inputs of the slope kernels on a Domain (choices: module docstring).

    Parameters
    ----------
    domain : twin.domain.Domain
        The grid, masks, elevation and slope (:meth:`Domain.from_city` or ``from_dem``).
    table : SoilTable, path of a TOML table, or None
        The soil table (None: the packaged ``physics/slope_soils.toml``).
    zones : path (raster or vector), GeoDataFrame, GeoJSON dict, or None
        Soil zones (None: the table's default zone everywhere).
    fills : path, GeoDataFrame, GeoJSON dict, or None
        Fill polygons (:func:`read_fills`).
    dhat : {"iverson", "trigrs"}
        The D_hat form.
    min_slope_deg : float
        Cells flatter than this are not modelled (NaN).
    i_lt_mm_h : float
        Long-term steady infiltration I_LT (mm/h), every cell.

    Returns
    -------
    dict
        ``params`` (N_PARAMS, n) float64 of the modelled cells, ``cells`` (n,)
        their flat (C-order) indices on the grid, ``active`` (bool grid),
        ``zones`` (n,) int codes, ``zone`` (int16 grid, -1 not modelled),
        ``zone_names`` {code: name}, ``slope_deg``, ``soil_depth``, ``elevation``
        (m, with fills; NaN blocked), ``fill_thickness`` (m) grids, ``fills``
        (list of dicts for outputs), ``table``, ``dhat``, ``min_slope_deg``,
        ``domain``.
    """
    if not isinstance(table, SoilTable):
        table = load_table(table)
    if dhat not in DHATS:
        raise ValidationError(f"dhat={dhat!r}: use one of {DHATS}")
    if not (isinstance(min_slope_deg, int | float) and 0 < min_slope_deg < 90):
        raise ValidationError(f"min_slope_deg={min_slope_deg!r}: must be a number in (0, 90) degrees")
    if not (isinstance(i_lt_mm_h, int | float) and math.isfinite(i_lt_mm_h) and i_lt_mm_h >= 0):
        raise ValidationError(f"i_lt_mm_h={i_lt_mm_h!r}: must be a finite number >= 0 mm/h")
    zone = zone_grid(domain, zones, table)
    elevation = np.where(domain.blocked, np.nan, np.asarray(domain.elevation, np.float64))
    fill_info: list[dict] = []
    fg = None
    if fills is not None:
        gdf = read_fills(fills, table)
        fg = fill_grids(domain, gdf, table)
        inside = fg["index"] >= 0
        elevation = np.where(inside & np.isfinite(elevation), elevation + fg["thickness"], elevation)
        zone = np.where(inside, fg["zone"], zone).astype(np.int16)
        slope_deg = raised_slope(domain, np.where(np.isfinite(elevation), elevation, np.nan), inside)
        for i, row in gdf.iterrows():
            m = fg["index"] == i
            fill_info.append({"index": int(i), "zone": row["zone"], "thickness_m": float(row["thickness_m"]),
                              "taper_m": float(row["taper_m"]), "cells": int(m.sum()),
                              "volume_m3": float(fg["thickness"][m].sum() * domain.resolution_m ** 2),
                              **{k: float(row[k]) for k in FILL_OVERRIDES if math.isfinite(row[k])}})
    else:
        slope_deg = np.array(domain.slope, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        active = np.asarray(domain.land, bool) & np.isfinite(slope_deg) & (slope_deg >= min_slope_deg) \
            & np.isfinite(elevation)
    cells = np.flatnonzero(active)
    zc = zone.ravel()[cells].astype(np.int64)
    sl = slope_deg.ravel()[cells]
    vals = defaults_on_grid(zc, table)
    depth = depth_on_grid(sl, zc, table)
    if fg is not None:
        fidx = fg["index"].ravel()[cells]
        infill = fidx >= 0
        depth = np.where(infill, fg["thickness"].ravel()[cells], depth)
        for k in FILL_OVERRIDES:
            o = fg[k].ravel()[cells]
            vals[k] = np.where(infill & np.isfinite(o), o, vals[k])
    rad = np.radians(sl)
    params = np.empty((K.N_PARAMS, cells.size))
    params[K.P_SLOPE] = rad
    params[K.P_COHESION] = vals["c_kpa"] * 1e3
    params[K.P_PHI] = np.radians(vals["phi_deg"])
    params[K.P_GAMMA_S] = vals["gamma_kn_m3"] * 1e3
    params[K.P_KZ] = vals["ks_m_s"]
    params[K.P_DHAT] = _dhat(dhat, vals["d0_m2_s"], rad)
    params[K.P_WATER_TABLE] = np.minimum(vals["water_table_m"], depth)
    params[K.P_I_LT] = i_lt_mm_h * MM_H
    params[K.P_SOIL_DEPTH] = depth
    soil_depth = np.full(domain.shape, np.nan)
    soil_depth.ravel()[cells] = depth
    zone_out = np.full(domain.shape, -1, np.int16)
    zone_out.ravel()[cells] = zc
    return {
        "params": np.ascontiguousarray(params), "cells": cells, "active": active, "zones": zc,
        "zone": zone_out, "zone_names": table.codes(), "slope_deg": slope_deg, "soil_depth": soil_depth,
        "elevation": elevation, "fill_thickness": None if fg is None else fg["thickness"],
        "fills": fill_info, "table": table, "dhat": dhat, "min_slope_deg": float(min_slope_deg),
        "i_lt_mm_h": float(i_lt_mm_h), "domain": domain,
    }


# -- rain ----------------------------------------------------------------------------------------
def _series(rain) -> tuple[np.ndarray, np.ndarray]:
    """(rain (n, 1) m/s, t_edges s) of a UniformRain (mm/h blocks)."""
    return (np.ascontiguousarray(np.asarray(rain.rates, np.float64)[:, None] * MM_H),
            np.asarray(rain.times, np.float64))


def read_rain_csv(path) -> tuple[np.ndarray, np.ndarray]:
    """(t_edges s, rates mm/h) of a CSV ``time_h, mm_h`` (module docstring); '#' lines skipped.

    Raises
    ------
    twin.errors.ValidationError
        Naming the file and the line of a bad row (times must increase from >= 0, rates >= 0).
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataMissingError(f"rain_file={str(path)!r}: no such file")
    times, rates = [], []
    header_allowed = True
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        parts = [q.strip() for q in s.split(",")]
        try:
            t, r = float(parts[0]), float(parts[1])
        except (ValueError, IndexError):
            if header_allowed:  # the first row may be a header
                header_allowed = False
                continue
            raise ValidationError(f"rain_file {p}, line {n}: {s!r}: expected 'time_h, mm_h' numbers") from None
        header_allowed = False
        if not (math.isfinite(t) and t >= 0 and math.isfinite(r) and r >= 0):
            raise ValidationError(f"rain_file {p}, line {n}: time_h={t}, mm_h={r}: need time >= 0 and rate >= 0")
        if times and t <= times[-1]:
            raise ValidationError(f"rain_file {p}, line {n}: time_h={t} does not increase (after {times[-1]})")
        times.append(t)
        rates.append(r)
    if not times:
        raise ValidationError(f"rain_file {p}: no 'time_h, mm_h' row")
    last = times[-1] - times[-2] if len(times) > 1 else 1.0
    edges = np.array(times + [times[-1] + last]) * 3600.0
    return edges, np.array(rates)


def read_rain_netcdf(path, domain) -> tuple[np.ndarray, np.ndarray]:
    """(t_edges s, rates mm/h (n, ny, nx) on the domain) of a NetCDF ``rain`` (time, y, x) in mm/h."""
    import xarray as xr

    from physics.forcing import GriddedRain

    p = Path(path).expanduser()
    try:
        ds = xr.load_dataset(p)
    except Exception as exc:  # noqa: BLE001 - any reader failure means "not this input"
        raise ValidationError(f"rain_file={str(path)!r}: not a NetCDF file xarray can read ({exc})") from None
    if "rain" not in ds or ds["rain"].dims != ("time", "y", "x"):
        raise ValidationError(f"rain_file={str(path)!r}: needs a variable 'rain' with dims (time, y, x) in mm/h "
                              f"(variables: {sorted(map(str, ds.data_vars))})")
    da = ds["rain"]
    crs = da.attrs.get("crs") or ds.attrs.get("crs") or (ds["spatial_ref"].attrs.get("crs_wkt")
                                                         if "spatial_ref" in ds else None)
    if not crs:
        raise ValidationError(f"rain_file={str(path)!r}: no CRS (set attrs['crs'] on 'rain' or the file)")
    t = da["time"].values
    if np.issubdtype(t.dtype, np.datetime64):
        t = (t - t[0]) / np.timedelta64(1, "s")
    da = da.assign_coords(time=np.asarray(t, np.float64))
    da.attrs["crs"] = crs
    da.attrs.pop("transform", None)
    like = domain.grid_dataarray(np.zeros(domain.shape, np.float32), "rain", "mm/h")
    g = GriddedRain.from_dataarray(da, like)
    return g.times, g.rates / MM_H


GAUGE_BLOCK_S = 3600.0  # hourly blocks: a (blocks, ny, nx) float64 field of the city at 30 m is 41 MB a block


def parse_start(text) -> Any:
    """The rain's start as a timezone-aware UTC datetime (:func:`twin.instants.parse_instant`).

    Raises
    ------
    ValidationError
        Naming ``rain_start`` and the value, for text that is not ISO 8601 or has no time zone.
    """
    from twin.instants import parse_instant

    return parse_instant(text, "rain_start")


def gauge_readings(store_dir, start, end) -> tuple[list, list[str]]:
    """Rain-gauge readings (``hardware_bridge.fusion.Reading``) of a store between two times.

    Datastreams ``<sensor id>/rain_gauge/...`` (values: rain depth in m per
    reporting interval), placed at their sensor's lon/lat from the store's
    sensor registry. Returns (readings, ids of gauges without a position).
    """
    from datetime import timedelta

    from hardware_bridge.fusion import Reading
    from twin.store import Store

    p = Path(store_dir).expanduser()
    if not p.is_dir():
        raise DataMissingError(f"gauges={str(store_dir)!r}: no such store folder")
    readings, unplaced = [], set()
    with Store.open_readonly(p) as store:
        pos = {sen.id: (sen.lon, sen.lat) for sen in store.sensors()}
        for ds in store.latest_times():
            parts = ds.split("/")
            if len(parts) < 2 or parts[1] != "rain_gauge":
                continue
            if parts[0] not in pos:
                unplaced.add(parts[0])
                continue
            lon, lat = pos[parts[0]]
            for o in store.observations(ds, t0=start, t1=end + timedelta(seconds=1)):
                if o.value is not None:
                    readings.append(Reading(datastream_id=ds, kind="rain_gauge", time=o.phenomenon_time,
                                            value=float(o.value), lon=lon, lat=lat, station=parts[0],
                                            unit=o.unit or "m"))
    return readings, sorted(unplaced)


def read_gauge_rain(store_dir, rain_start, hours: float, domain) -> tuple[np.ndarray, np.ndarray, dict]:
    """(t_edges s, rates mm/h (n, ny, nx), info) of the store's rain gauges over ``hours`` from ``rain_start``.

    Gridded by inverse-distance weighting in hourly blocks
    (:func:`hardware_bridge.fusion.rain_grid.grid_rain`, its default IDW settings);
    a gauge without a reading in a block is left out of that block.

    Raises
    ------
    twin.errors.ValidationError
        No placed gauge reading in the window, or a block without any reporting gauge.
    """
    from datetime import timedelta

    from hardware_bridge.fusion.rain_grid import grid_rain

    t0 = parse_start(rain_start)
    t1 = t0 + timedelta(hours=float(hours))
    readings, unplaced = gauge_readings(store_dir, t0, t1)
    if not readings:
        extra = f" ({len(unplaced)} gauges have no position in its sensor registry)" if unplaced else ""
        raise ValidationError(f"gauges={str(store_dir)!r}: no rain_gauge reading between {t0.isoformat()} and "
                              f"{t1.isoformat()}{extra}")
    like = domain.grid_dataarray(np.zeros(domain.shape, np.float32), "rain", "mm/h")
    da = grid_rain(readings, like, start=t0, end=t1, block_s=GAUGE_BLOCK_S, origin=t0)
    rates = np.asarray(da.values, np.float64)
    empty = np.flatnonzero(np.isnan(rates).all(axis=(1, 2)))
    if empty.size:
        raise ValidationError(f"gauges={str(store_dir)!r}: no gauge reported in the block starting "
                              f"{(t0 + timedelta(seconds=float(da['time'][empty[0]]))).isoformat()}; "
                              "choose a window the gauges cover")
    starts = np.asarray(da["time"].values, np.float64)
    info = {"name": f"rain gauges of {Path(store_dir).expanduser().name or store_dir} from {t0.isoformat()}", "method": "gauges (IDW)",
            "source": str(store_dir), "start_utc": t0.isoformat(), "gauges": int(len({r.station for r in readings})),
            "unplaced_gauges": unplaced, "block_min": GAUGE_BLOCK_S / 60.0}
    return np.append(starts, starts[-1] + GAUGE_BLOCK_S), np.nan_to_num(rates), info


def storm_from_info(info: Mapping[str, Any]):
    """Rebuild the rain a flood run used from its ``storm`` description (:func:`physics.flood_city.storm_info`).

    A design storm is rebuilt from its depth-duration maxima, method, block
    length and peak position (block for block the same); a uniform rain from
    its rate and length.

    Raises
    ------
    twin.errors.ValidationError
        When the description is neither.
    """
    from physics.forcing import UniformRain
    from physics.rain import alternating_block, chicago

    method = info.get("method")
    if method in ("alternating_block", "chicago") and info.get("ddf_mm"):
        ddf = {float(k.rstrip("h")): float(v) for k, v in info["ddf_mm"].items()}
        build = alternating_block if method == "alternating_block" else chicago
        return build(ddf, float(info["duration_h"]), float(info.get("block_min", 10.0)),
                     peak_fraction=float(info.get("peak_fraction", 0.5)), name=str(info.get("name", "storm")))
    if info.get("name") == "uniform rain":
        return UniformRain.constant(float(info["peak_mm_h"]), float(info["duration_h"]) * 3600.0)
    raise ValidationError(f"flood run storm {dict(info)!r}: neither a design storm with its maxima nor a "
                          "uniform rain; cannot rebuild it")


def flood_nc_path(flood) -> Path:
    """flood.nc of a flood run given as its folder or the file itself.

    Raises
    ------
    twin.errors.DataMissingError
        When neither exists.
    """
    p = Path(flood).expanduser()
    if p.is_dir():
        p = p / "flood.nc"
    if not p.is_file():
        raise DataMissingError(f"flood={str(flood)!r}: no flood run there (a folder of `twin flood run` or its "
                               "flood.nc)")
    return p


def resolve_flood_run(value, store_dir=None) -> Path:
    """A flood run given as a folder, a flood.nc, or a run id of the store at ``store_dir``.

    A run id is looked up in the store's runs table (it must be a finished
    ``flood_forecast`` run) and found in the console's run folder
    ``<store>/runs/run-<id>/`` (where ``twin serve --store`` writes runs).

    Raises
    ------
    twin.errors.ValidationError, twin.errors.DataMissingError
        Naming the value and what is wrong.
    """
    s = str(value).strip()
    if not s.isdigit():
        return flood_nc_path(s)
    if Path(s).exists():
        return flood_nc_path(s)
    if store_dir is None:
        raise ValidationError(f"flood={s!r}: a run id needs the store it is in (--store DIR)")
    from twin.store import Store

    with Store.open_readonly(store_dir) as store:
        info = store.run(int(s))
    if info.kind != "flood_forecast" or info.status != "done":
        raise ValidationError(f"flood={s!r}: run {s} of {store_dir} is a {info.status} {info.kind} run; "
                              "give a finished flood_forecast run")
    return flood_nc_path(Path(store_dir) / "runs" / f"run-{int(s):05d}")


def flood_run_info(flood) -> dict[str, Any]:
    """What a slope run takes from a flood run: its storm (rebuilt), its area and its path.

    ``districts`` (None: the whole city) and ``city`` come from the run's
    ``summary.json`` request when it is there, else from the ``region`` label
    of flood.nc (``"Futian, Luohu"`` or ``"<city> (whole city)"``); ``dem``
    is the DEM of a DEM run.
    """
    import xarray as xr

    path = flood_nc_path(flood)
    with xr.open_dataset(path) as ds:
        attrs = dict(ds.attrs)
    try:
        storm = json.loads(attrs.get("storm", ""))
    except ValueError:
        raise ValidationError(f"flood={str(flood)!r}: flood.nc has no readable 'storm' attribute") from None
    rain = storm_from_info(storm)
    req = {}
    summary = path.parent / "summary.json"
    if summary.is_file():
        try:
            req = json.loads(summary.read_text(encoding="utf-8")).get("request") or {}
        except ValueError:
            req = {}
    if req:
        districts, city, dem = req.get("districts"), req.get("city"), req.get("dem")
    else:
        region = str(attrs.get("region", ""))
        city = region.split(" (whole city)")[0] if region.endswith("(whole city)") else None
        districts = None if city or not region else [d.strip() for d in region.split(",") if d.strip()]
        dem = None
    return {"path": path, "rain": rain, "storm": storm, "districts": districts, "city": city, "dem": dem,
            "region": attrs.get("region")}


def rain_series(source: Mapping[str, Any], setup: Mapping[str, Any] | None = None, *,
                city=None) -> tuple[np.ndarray, np.ndarray, dict]:
    """The rain of a slope run: ``(rain (n_int, 1 or n_cells) m/s, t_edges s, storm info dict)``.

    The source's rain (:func:`source_rain`) times ``source["rain_scale"]``
    (default 1; recorded in the info as ``rain_scale``).
    """
    rain, t_edges, info = source_rain(source, setup, city=city)
    scale = float(source.get("rain_scale", 1.0) or 0.0) if source.get("rain_scale") is not None else 1.0
    if not (np.isfinite(scale) and scale >= 0.0):
        raise ValidationError(f"rain_scale={source.get('rain_scale')!r}: give a finite factor >= 0")
    if scale == 1.0:
        return rain, t_edges, info
    info = {**info, "rain_scale": scale}
    for key in ("total_mm", "peak_mm_h"):
        if key in info and info[key] is not None:
            info[key] = float(info[key]) * scale
    return rain * scale, t_edges, info


def source_rain(source: Mapping[str, Any], setup: Mapping[str, Any] | None = None, *,
                city=None) -> tuple[np.ndarray, np.ndarray, dict]:
    """The unscaled rain of a slope run: ``(rain (n_int, 1 or n_cells) m/s, t_edges s, storm info dict)``.

    ``source`` holds one of ``storm`` (a name of :data:`physics.flood_city.STORMS`),
    ``rain_mm_h`` (uniform rate), ``rain_file`` (CSV or NetCDF, module
    docstring), ``flood`` (a flood run: folder or flood.nc) or ``gauges`` (a
    twin store's rain gauges from ``rain_start`` for ``storm_hours``,
    :func:`read_gauge_rain`), with
    ``storm_hours`` (length of a storm or a uniform rain, h), ``method`` and
    ``peak_fraction`` (design storms). A gridded NetCDF needs ``setup`` (the
    cells of :func:`slope_setup`): the rain is given per modelled cell.
    """
    from physics.flood_city import make_storm, storm_info

    hours = source.get("storm_hours")
    if source.get("gauges") is not None:
        if setup is None:
            raise ValidationError("gauge rain needs the model's cells (setup)")
        t_edges, rates, info = read_gauge_rain(source["gauges"], source.get("rain_start"), float(hours),
                                               setup["domain"])
        flat = rates.reshape(rates.shape[0], -1)[:, setup["cells"]]
        dt = np.diff(t_edges) / 3600.0
        mean = flat.mean(axis=1) if flat.shape[1] else np.zeros(dt.size)
        return (np.ascontiguousarray(flat * MM_H), t_edges,
                {**info, "duration_h": float(hours), "total_mm": float((mean * dt).sum()),
                 "peak_mm_h": float(flat.max(initial=0.0))})
    if source.get("flood") is not None:
        info = flood_run_info(source["flood"])
        rain, t_edges = _series(info["rain"])
        return rain, t_edges, {**info["storm"], "source": f"flood run {info['path']}"}
    if source.get("rain_file") is not None:
        p = Path(source["rain_file"]).expanduser()
        if not p.is_file():
            raise DataMissingError(f"rain_file={str(p)!r}: no such file")
        if p.suffix.lower() == ".nc":
            if setup is None:
                raise ValidationError("a gridded rain file needs the model's cells (setup)")
            t_edges, rates = read_rain_netcdf(p, setup["domain"])
            flat = rates.reshape(rates.shape[0], -1)[:, setup["cells"]]
            dt = np.diff(t_edges) / 3600.0
            mean = flat.mean(axis=1) if flat.shape[1] else np.zeros(dt.size)
            return (np.ascontiguousarray(flat * MM_H), t_edges,
                    {"name": f"gridded rain from {p.name}", "method": "file", "source": str(p),
                     "duration_h": float((t_edges[-1] - t_edges[0]) / 3600.0),
                     "total_mm": float((mean * dt).sum()), "peak_mm_h": float(flat.max(initial=0.0))})
        t_edges, rates = read_rain_csv(p)
        dt = np.diff(t_edges) / 3600.0
        return (np.ascontiguousarray(rates[:, None] * MM_H), t_edges,
                {"name": f"rain from {p.name}", "method": "file", "source": str(p),
                 "duration_h": float((t_edges[-1] - t_edges[0]) / 3600.0),
                 "total_mm": float((rates * dt).sum()), "peak_mm_h": float(rates.max())})
    storm = source.get("rain_mm_h")
    if storm is None:
        from physics.flood_city import STORMS

        storm = source.get("storm") or STORMS[0]
    if hours is None:
        raise ValidationError("storm_hours: give the length of the storm (h)")
    rain = make_storm(storm, hours=float(hours), method=source.get("method", "alternating_block"), city=city,
                      peak_fraction=float(source.get("peak_fraction", 0.5)))
    r, t_edges = _series(rain)
    return r, t_edges, storm_info(rain, float(hours))


def eval_times(hours: float, every_s: float = 3600.0) -> np.ndarray:
    """Evaluation times (s): 0 (the initial steady state), then every ``every_s`` up to ``hours``, the end
    included. A cell failing at 0 is unstable under its initial water table, before any rain."""
    end = float(hours) * 3600.0
    if not (math.isfinite(end) and end > 0 and every_s > 0):
        raise ValidationError(f"hours={hours!r}, every_s={every_s!r}: both must be > 0")
    t = np.arange(0.0, end + 1e-6, every_s)
    if t[-1] < end - 1e-6:
        t = np.append(t, end)
    return t


__all__ = ["DHATS", "FILL_OVERRIDES", "FILL_ZONE", "GAUGE_BLOCK_S", "MIN_SLOPE_DEG", "eval_times", "fill_grids",
           "flood_nc_path", "flood_run_info", "gauge_readings", "parse_start", "read_gauge_rain", "raised_slope", "rain_series", "read_fills", "read_rain_csv",
           "read_rain_netcdf", "resolve_flood_run", "slope_setup", "storm_from_info", "zone_grid"]
