"""Writing flood-model outputs: NetCDF, GeoTIFFs, a max-depth map and a JSON summary.

All rasters carry the run's CRS and transform: the NetCDF has a CF
``spatial_ref`` grid mapping (:func:`gis.raster.write_netcdf`), the GeoTIFFs
a CRS and nodata (NaN), so both open in QGIS and xarray/rasterio.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import xarray as xr

from twin.errors import ValidationError
from twin.pipeline import write_json

DEPTH_CLASSES_M = (0.15, 0.3, 0.5, 1.0)


def _grid(ds: xr.Dataset, name: str):
    from gis.raster import make_grid, transform_of

    da = ds[name]
    return make_grid(np.asarray(da.values), transform_of(ds), ds.attrs["crs"], name=name,
                     units=da.attrs.get("units"), long_name=da.attrs.get("long_name"))


def _check(ds: xr.Dataset) -> None:
    missing = [v for v in ("max_depth", "arrival_time", "time_of_max_depth") if v not in ds]
    if missing:
        raise ValidationError(f"flood dataset lacks {missing}: pass the output of run_city_flood/simulate")
    if not ds.attrs.get("crs"):
        raise ValidationError("flood dataset has no attrs['crs']: the DEM had no CRS; cannot georeference outputs")


def write_flood_netcdf(ds: xr.Dataset, path, *, float32: bool = True) -> Path:
    """Write the whole Dataset (frames, maxima, series) as CF NetCDF4 (deflate).

    With ``float32`` the 2-D/3-D float fields are stored in single precision
    (the series stay float64).
    """
    from gis.raster import write_netcdf

    _check(ds)
    out = ds.copy()
    if float32:
        for name, var in out.data_vars.items():
            if var.ndim >= 2 and np.issubdtype(var.dtype, np.floating):
                out[name] = var.astype(np.float32)
    return write_netcdf(out, path)


def write_flood_geotiffs(ds: xr.Dataset, out_dir) -> dict[str, Path]:
    """max_depth.tif (m), arrival_time.tif (s), time_of_max_depth.tif (s): float32, NaN nodata."""
    from gis.raster import write_geotiff

    _check(ds)
    out_dir = Path(out_dir)
    paths = {}
    for name in ("max_depth", "arrival_time", "time_of_max_depth"):
        g = _grid(ds, name).astype(np.float32)
        paths[name] = write_geotiff(g, out_dir / f"{name}.tif")
    return paths


def plot_max_depth(ds: xr.Dataset, path, *, districts=None, title: str | None = None,
                   dpi: int = 150) -> Path:
    """PNG map of the maximum depth: :func:`viz.plots.max_depth_figure` written to ``path``.

    Hillshade, sea, depth classes (m) with a colour bar, district outlines
    (``districts``, a GeoDataFrame with a ``name`` column, or traced from the
    run's ``district`` raster) and the deepest places numbered.
    """
    from viz.plots import max_depth_figure, save_png

    _check(ds)
    return Path(save_png(max_depth_figure(ds, districts=districts, title=title), path, dpi=dpi))

def flood_summary(ds: xr.Dataset, *, hitrate: dict | None = None) -> dict:
    """JSON-able summary: volumes, flooded areas by depth class, max depth, run time, speed, balance."""
    from gis.raster import cell_size

    _check(ds)
    dx, dy = cell_size(ds)
    cell = dx * dy
    last = ds.isel(time=-1)
    vols = {k[len("volume_"):]: float(last[k]) for k in ds.data_vars if k.startswith("volume_")}
    land = np.asarray(ds["land"].values, bool) if "land" in ds else np.isfinite(ds["max_depth"].values)
    land_area = float(land.sum()) * cell
    md = np.asarray(ds["max_depth"].values, dtype=np.float64)
    end = np.asarray(last["depth"].values, dtype=np.float64) if "depth" in ds else None

    def classes(a):
        a = np.nan_to_num(a, nan=0.0)
        return {f">={c:g}m": float(np.count_nonzero(a >= c) * cell / 1e6) for c in DEPTH_CLASSES_M}

    storm = json.loads(ds.attrs.get("storm", "{}"))
    imax = int(np.nanargmax(md)) if np.isfinite(md).any() else None
    where = None
    if imax is not None:
        j, i = np.unravel_index(imax, md.shape)
        x, y = float(ds["x"][i]), float(ds["y"][j])
        where = {"x": x, "y": y, "crs": ds.attrs["crs"]}
        try:
            from pyproj import Transformer

            lon, lat = Transformer.from_crs(ds.attrs["crs"], "EPSG:4326", always_xy=True).transform(x, y)
            where.update(lon=round(lon, 6), lat=round(lat, 6))
        except Exception:  # noqa: BLE001 - position in lon/lat is a courtesy
            pass
    wall = float(ds.attrs.get("wall_time_s", float("nan")))
    out = {
        "region": ds.attrs.get("region"),
        "storm": storm,
        "duration_h": float(ds.attrs.get("duration_h", float(ds["time"][-1]) / 3600.0)),
        "grid": {"shape": [int(ds.sizes["y"]), int(ds.sizes["x"])], "resolution_m": dx,
                 "crs": ds.attrs["crs"], "land_cells": int(land.sum()), "land_area_km2": land_area / 1e6},
        "dtype": ds.attrs.get("dtype"),
        "volumes_m3": vols,
        "volume_balance_error_m3": vols.get("error"),
        "volume_balance_relative_error": vols.get("relative_error"),
        "storage_land_end_m3": float(np.nansum(end[land]) * cell) if end is not None else None,
        "rain_mm": storm.get("total_mm"),
        "flooded_area_end_km2": classes(end) if end is not None else None,
        "flooded_area_max_km2": classes(md),
        "max_depth_m": float(np.nanmax(md)) if imax is not None else None,
        "max_depth_at": where,
        "run_time_s": wall,
        # compiling (or loading from numba's cache) the kernels, apart from the time loop: the
        # cell-update rate is the loop's alone (a first run's compile is not the model's speed)
        "compile_s": float(ds.attrs.get("compile_s", float("nan"))),
        "model_wall_s": float(ds.attrs.get("model_wall_s", wall)),
        "steps": int(ds.attrs.get("steps", 0)),
        "cell_updates": int(ds.attrs.get("cell_updates", 0)),
        "cell_updates_per_s": float(ds.attrs.get("cell_updates_per_s", float("nan"))),
        "parameters": {k: _jsonable(ds.attrs.get(k)) for k in (
            "theta", "alpha", "h_dry_m", "h_arrive_m", "drainage_default_mm_h", "drainage_mm_h", "manning",
            "domain", "buffer_m", "terrain_conditioning", "scheme") if k in ds.attrs},
    }
    if hitrate is not None:
        out["waterlogging_hit_rate"] = hitrate
    return out


def _jsonable(v):
    if isinstance(v, str):
        try:
            return json.loads(v)
        except ValueError:
            return v
    if isinstance(v, np.generic):
        return v.item()
    return v


def write_flood_outputs(ds: xr.Dataset, out_dir, *, districts=None, hitrate: dict | None = None,
                        float32: bool = True) -> dict:
    """Write flood.nc, max_depth.tif, arrival_time.tif, time_of_max_depth.tif, max_depth.png, summary.json.

    Returns ``{"paths": {name: Path}, "summary": dict}``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"netcdf": write_flood_netcdf(ds, out_dir / "flood.nc", float32=float32)}
    paths.update(write_flood_geotiffs(ds, out_dir))
    paths["png"] = plot_max_depth(ds, out_dir / "max_depth.png", districts=districts)
    summary = flood_summary(ds, hitrate=hitrate)
    summary["files"] = {k: p.name for k, p in paths.items()}
    paths["summary"] = write_json(summary, out_dir / "summary.json")
    return {"paths": paths, "summary": summary}
