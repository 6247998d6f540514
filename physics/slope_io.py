"""Writing the slope-failure outputs: slope.nc, GeoTIFFs, assets_hit.geojson and summary.json.

The NetCDF carries a CF ``spatial_ref`` grid mapping and the GeoTIFFs a CRS
and NaN nodata (:func:`gis.raster.write_netcdf`, :func:`gis.raster.write_geotiff`),
so both open in QGIS, rasterio and xarray. :func:`slope_summary` gives the
figures the report and the console show (keys in the module of the run kind,
:mod:`physics.slope_run`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import xarray as xr

from twin.errors import ValidationError
from twin.pipeline import write_json

#: GeoTIFFs written when their variable is in the Dataset.
GEOTIFFS = ("fs_min", "time_of_failure", "probability_of_failure", "runout_depth")
WORST_CELLS = 20
ASSET_VARS = ("asset_kind", "asset_id", "asset_name", "asset_depth_m", "asset_wkt")


def _check(ds: xr.Dataset) -> None:
    missing = [v for v in ("fs_min", "depth_of_minimum", "time_of_failure", "zone") if v not in ds]
    if missing:
        raise ValidationError(f"slope dataset lacks {missing}: pass the output of physics.slope_run.run_slope")
    if not ds.attrs.get("crs"):
        raise ValidationError("slope dataset has no attrs['crs']: cannot georeference the outputs")


def write_slope_netcdf(ds: xr.Dataset, path) -> Path:
    """slope.nc: the whole Dataset as CF NetCDF4 (deflate), assets as string variables along ``asset``."""
    from gis.raster import write_netcdf

    _check(ds)
    out = ds.copy()
    out.attrs["transform"] = list(out.attrs["transform"])
    return write_netcdf(out, path)


def write_slope_geotiffs(ds: xr.Dataset, out_dir) -> dict[str, Path]:
    """``<name>.tif`` of :data:`GEOTIFFS` present in ``ds``: float32, NaN nodata, the run's CRS."""
    from gis.raster import make_grid, transform_of, write_geotiff

    _check(ds)
    out_dir = Path(out_dir)
    paths = {}
    for name in GEOTIFFS:
        if name not in ds:
            continue
        da = ds[name]
        g = make_grid(np.asarray(da.values, np.float32), transform_of(ds), ds.attrs["crs"], name=name,
                      units=da.attrs.get("units"), long_name=da.attrs.get("long_name"))
        paths[name] = write_geotiff(g, out_dir / f"{name}.tif")
    return paths


def assets_frame(ds: xr.Dataset):
    """The assets hit (``asset_*`` variables) as a GeoDataFrame in WGS 84 (empty without any)."""
    import geopandas as gpd
    from shapely import wkt

    cols = ["kind", "id", "name", "deposit_depth_m"]
    if "asset_kind" not in ds:
        return gpd.GeoDataFrame({c: [] for c in cols}, geometry=[], crs="EPSG:4326")
    return gpd.GeoDataFrame(
        {"kind": ds["asset_kind"].values.astype(str), "id": ds["asset_id"].values.astype(str),
         "name": ds["asset_name"].values.astype(str),
         "deposit_depth_m": ds["asset_depth_m"].values.astype(float)},
        geometry=[wkt.loads(str(w)) for w in ds["asset_wkt"].values], crs="EPSG:4326")


def write_assets_geojson(ds: xr.Dataset, path) -> Path:
    """assets_hit.geojson (WGS 84): kind, id, name, deposit_depth_m per asset (an empty collection without any)."""
    path = Path(path)
    gdf = assets_frame(ds)
    if len(gdf) == 0:
        path.write_text(json.dumps({"type": "FeatureCollection", "features": []}) + "\n", encoding="utf-8")
        return path
    path.write_text(gdf.to_json(drop_id=True, ensure_ascii=False), encoding="utf-8")
    return path


def _lonlat(ds: xr.Dataset, x, y) -> tuple[np.ndarray, np.ndarray]:
    from pyproj import Transformer

    tr = Transformer.from_crs(ds.attrs["crs"], "EPSG:4326", always_xy=True)
    return tr.transform(np.asarray(x, float), np.asarray(y, float))


def _attr_json(ds: xr.Dataset, name: str, default):
    try:
        return json.loads(ds.attrs.get(name, ""))
    except (TypeError, ValueError):
        return default


def worst_cells(ds: xr.Dataset, n: int = WORST_CELLS) -> list[dict]:
    """The ``n`` cells of lowest minimum FS: lon, lat, fs_min, depth_m, time_s (None: never < 1), zone."""
    fs = np.asarray(ds["fs_min"].values, float).ravel()
    ok = np.flatnonzero(np.isfinite(fs))
    if ok.size == 0:
        return []
    pick = ok[np.argsort(fs[ok], kind="stable")[:n]]
    rows, cols = np.unravel_index(pick, ds["fs_min"].shape)
    lon, lat = _lonlat(ds, ds["x"].values[cols], ds["y"].values[rows])
    names = _attr_json(ds, "zone_names", {})
    depth = np.asarray(ds["depth_of_minimum"].values, float).ravel()
    tf = np.asarray(ds["time_of_failure"].values, float).ravel()
    zone = np.asarray(ds["zone"].values).ravel()
    prob = np.asarray(ds["probability_of_failure"].values, float).ravel() if "probability_of_failure" in ds else None
    out = []
    for k, c in enumerate(pick):
        row = {"lon": round(float(lon[k]), 6), "lat": round(float(lat[k]), 6), "fs_min": float(fs[c]),
               "depth_m": float(depth[c]), "time_s": None if np.isnan(tf[c]) else float(tf[c]),
               "zone": names.get(str(int(zone[c])), str(int(zone[c])))}
        if prob is not None:
            row["probability_of_failure"] = float(prob[c])
        out.append(row)
    return out


def by_district(ds: xr.Dataset, failing: np.ndarray, cell_km2: float) -> dict[str, dict]:
    """Cells modelled and failing (and their area, km²) per district of the ``district`` grid."""
    if "district" not in ds:
        return {}
    names = _attr_json(ds, "district_names", [])
    did = np.asarray(ds["district"].values, np.int64)
    modelled = np.isfinite(np.asarray(ds["fs_min"].values, float))
    out = {}
    for k, name in enumerate(names):
        m = (did == k) & modelled
        if not m.any():
            continue
        f = int((failing & (did == k)).sum())
        out[name] = {"cells_modelled": int(m.sum()), "cells_failing": f, "area_failing_km2": f * cell_km2}
    return out


def slope_summary(ds: xr.Dataset) -> dict:
    """JSON-able summary (keys the report and the console look for; :mod:`physics.slope_run`)."""
    from gis.raster import cell_size

    _check(ds)
    dx, dy = cell_size(ds)
    cell_km2 = dx * dy / 1e6
    fs = np.asarray(ds["fs_min"].values, float)
    modelled = np.isfinite(fs)
    with np.errstate(invalid="ignore"):
        failing = modelled & (fs < 1.0)
    tf = np.asarray(ds["time_of_failure"].values, float)
    timings = _attr_json(ds, "timings", {})
    out = {
        "region": ds.attrs.get("region"), "mode": ds.attrs.get("mode"), "storm": _attr_json(ds, "storm", {}),
        "duration_h": float(ds.attrs.get("duration_h", float("nan"))),
        "grid": {"shape": [int(ds.sizes["y"]), int(ds.sizes["x"])], "resolution_m": dx, "crs": ds.attrs["crs"]},
        "cells_modelled": int(modelled.sum()), "area_modelled_km2": float(modelled.sum() * cell_km2),
        "cells_failing": int(failing.sum()), "area_failing_km2": float(failing.sum() * cell_km2),
        "earliest_failure_s": float(np.nanmin(tf)) if np.isfinite(tf).any() else None,
        # FS < 1 at t = 0: unstable under the initial water table, before any rain
        "cells_failing_initially": int((tf == 0).sum()),
        "fs_min": float(np.nanmin(fs)) if modelled.any() else None,
        "worst_cells": worst_cells(ds),
        "by_district": by_district(ds, failing, cell_km2),
        "parameters": {k: _attr_json(ds, k, ds.attrs.get(k)) if k == "fills" else ds.attrs.get(k)
                       for k in ("n_depths", "dhat", "min_slope_deg", "i_lt_mm_h", "soil_table", "fills")
                       if k in ds.attrs},
        "zones": _attr_json(ds, "zone_names", {}),
        "timings_s": timings, "run_time_s": timings.get("run_time_s"),
    }
    evals = len(_attr_json(ds, "eval_times_s", [])) * int(ds.attrs.get("n_depths", 0)) * int(modelled.sum())
    if timings.get("deterministic_s"):
        out["evaluations"] = evals
        out["evaluations_per_s"] = evals / timings["deterministic_s"]
    if "probability_of_failure" in ds:
        p = np.asarray(ds["probability_of_failure"].values, float)
        thr = float(ds.attrs.get("fail_probability", 0.5))
        with np.errstate(invalid="ignore"):
            hi = int((p >= thr).sum())
        out.update(members=int(ds.attrs.get("members", 0)), n_members=int(ds.attrs.get("members", 0)), seed=int(ds.attrs.get("seed", 0)),
                   per=ds.attrs.get("per"), fail_probability=thr, cells_probable=hi,
                   area_probable_km2=hi * cell_km2,
                   probability_max=float(np.nanmax(p)) if np.isfinite(p).any() else None)
    if "runout_depth" in ds:
        from physics.slope_runout import ASSET_MIN_DEPTH_M

        info = _attr_json(ds, "runout", {})
        dep = np.nan_to_num(np.asarray(ds["runout_depth"].values, float))
        out.update(runout_volume_m3=info.get("deposit_volume_m3", float(dep.sum() * dx * dy)),
                   runout_source_volume_m3=info.get("source_volume_m3"),
                   runout_travel_angle_deg=info.get("travel_angle_deg"),
                   # area under at least the deposit that counts an asset as hit (assets_hit's min_depth_m);
                   # runout_area_ge_0_1m_km2 is the same figure under its older name
                   runout_area_km2=float((dep >= ASSET_MIN_DEPTH_M).sum() * cell_km2),
                   runout_area_min_depth_m=ASSET_MIN_DEPTH_M,
                   runout_area_ge_0_1m_km2=float((dep >= ASSET_MIN_DEPTH_M).sum() * cell_km2),
                   runout_area_any_deposit_km2=float((dep > 0).sum() * cell_km2),
                   runout_max_depth_m=float(dep.max(initial=0.0)))
    assets = assets_frame(ds)
    out["assets_hit"] = {str(k): int(v) for k, v in assets["kind"].value_counts().items()} if len(assets) else {}
    if "asset_notes" in ds.attrs:
        out["asset_notes"] = _attr_json(ds, "asset_notes", [])
    if len(assets):
        out["assets_hit_names"] = {
            str(k): sorted({n for n in g["name"] if n}) for k, g in assets.groupby("kind")}
    return out


def write_slope_outputs(ds: xr.Dataset, out_dir) -> dict:
    """slope.nc, fs_min.tif, time_of_failure.tif (probability_of_failure.tif, runout_depth.tif when
    present), assets_hit.geojson, summary.json. Returns ``{"paths": {role: Path}, "summary": dict}``.

    The per-district counts come from the Dataset's ``district`` grid.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"netcdf": write_slope_netcdf(ds, out_dir / "slope.nc")}
    paths.update(write_slope_geotiffs(ds, out_dir))
    if "runout_depth" in ds or "asset_kind" in ds:
        paths["assets"] = write_assets_geojson(ds, out_dir / "assets_hit.geojson")
    summary = slope_summary(ds)
    summary["files"] = {k: p.name for k, p in paths.items()}
    paths["summary"] = write_json(summary, out_dir / "summary.json")
    return {"paths": paths, "summary": summary}


__all__ = ["GEOTIFFS", "assets_frame", "by_district", "slope_summary", "worst_cells", "write_assets_geojson",
           "write_slope_geotiffs", "write_slope_netcdf", "write_slope_outputs"]
