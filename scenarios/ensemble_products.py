"""Products of an ensemble (:mod:`scenarios.ensemble`): exceedance probability, percentiles, spread, KPIs.

From ``members.zarr`` (the members' main field, dims ``member, y, x``; only
members whose ``member_ok`` is true count):

* ``exceedance``: the fraction of members with field > threshold (or <
  threshold for a factor of safety): P(depth > 0.3 m) for ``max_depth``,
  P(FS < 1) for ``fs_min`` by default (:data:`DEFAULT_THRESHOLDS`); a cell no
  member has a value for is NaN;
* ``p05``, ``p50``, ``p95`` (percentiles over the members), ``mean``, ``spread``
  (standard deviation, ddof 0);

written as ``products.nc`` (CRS and transform copied from the members) and one
GeoTIFF per map (``exceedance.tif``, ``p05.tif``...); and from ``members.csv``
the KPI distribution ``kpi_distribution.csv`` (n, mean, std, min, p5, p50, p95, max of each KPI).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from twin.errors import DataMissingError, ValidationError

# variable -> (threshold, "above" | "below")
DEFAULT_THRESHOLDS = {"max_depth": (0.3, "above"), "fs_min": (1.0, "below")}
PERCENTILES = (5, 50, 95)
PRODUCTS_NAME = "products.nc"
KPI_NAME = "kpi_distribution.csv"


def open_members(out_dir: str | Path):
    """The ensemble's ``members.zarr`` as an xarray Dataset.

    Raises
    ------
    twin.errors.DataMissingError
        When the folder has no members store (no member finished).
    """
    import xarray as xr

    from scenarios.ensemble import ZARR_NAME

    path = Path(out_dir) / ZARR_NAME
    if not path.is_dir():
        raise DataMissingError(f"ensemble folder {str(out_dir)!r}: no {ZARR_NAME} (no member finished)")
    return xr.open_zarr(path)


def exceedance(values: Any, threshold: float, direction: str) -> Any:
    """P(value > threshold) (``above``) or P(value < threshold) (``below``) over axis 0, NaN-aware."""
    import numpy as np

    if direction not in ("above", "below"):
        raise ValidationError(f"direction={direction!r}: allowed are 'above' and 'below'")
    v = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(v)
    hit = (v > threshold) if direction == "above" else (v < threshold)
    n = finite.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, (hit & finite).sum(axis=0) / n, np.nan)


def ensemble_products(out_dir: str | Path, *, threshold: float | None = None, direction: str | None = None,
                      percentiles: tuple[float, ...] = PERCENTILES, geotiff: bool = True) -> dict[str, Path]:
    """Write ``products.nc``, the GeoTIFFs and ``kpi_distribution.csv`` of the ensemble in ``out_dir``.

    Parameters
    ----------
    out_dir : path
        An ensemble folder (:func:`scenarios.ensemble.run_ensemble`).
    threshold, direction : float, {"above", "below"}, optional
        Of the exceedance map; default from :data:`DEFAULT_THRESHOLDS` for the variable.
    percentiles : tuple of float
        Each in [0, 100].
    geotiff : bool
        Also one GeoTIFF per map.

    Returns
    -------
    dict of str to Path
        ``netcdf``, ``kpis`` and each GeoTIFF by map name.

    Raises
    ------
    twin.errors.ValidationError
        No threshold for a variable without a default, a bad direction or percentile.
    """
    import warnings

    import numpy as np
    import xarray as xr

    from gis.raster import write_geotiff, write_netcdf

    out = Path(out_dir)
    ds = open_members(out)
    var = ds.attrs["variable"]
    if threshold is None:
        if var not in DEFAULT_THRESHOLDS:
            raise ValidationError(f"threshold=None: variable {var!r} has no default threshold "
                                  f"(defaults: {DEFAULT_THRESHOLDS}); give one")
        threshold = DEFAULT_THRESHOLDS[var][0]
    direction = direction or DEFAULT_THRESHOLDS.get(var, (None, "above"))[1]
    for q in percentiles:
        if not 0 <= q <= 100:
            raise ValidationError(f"percentiles={percentiles!r}: {q} is outside [0, 100]")
    ok = np.asarray(ds["member_ok"].values, dtype=bool)
    values = np.asarray(ds[var].values)[ok].astype(np.float64)
    attrs = {k: ds[var].attrs[k] for k in ("units", "long_name") if k in ds[var].attrs}
    maps: dict[str, Any] = {}
    maps["exceedance"] = (exceedance(values, threshold, direction),
                          {"units": "1", "long_name": f"P({var} {'>' if direction == 'above' else '<'} "
                                                      f"{threshold:g})", "threshold": float(threshold),
                           "direction": direction})
    with warnings.catch_warnings():  # all-NaN cells (outside the domain) stay NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        for q in percentiles:
            maps[f"p{q:02g}"] = (np.nanpercentile(values, q, axis=0),
                                 {**attrs, "long_name": f"{q:g}th percentile of {var} over the members"})
        maps["mean"] = (np.nanmean(values, axis=0), {**attrs, "long_name": f"mean of {var} over the members"})
        maps["spread"] = (np.nanstd(values, axis=0),
                          {**attrs, "long_name": f"standard deviation of {var} over the members"})
    geo = {"crs": ds.attrs.get("crs"), "transform": list(ds.attrs.get("transform") or [])}
    prod = xr.Dataset({name: (("y", "x"), v.astype(np.float32), a) for name, (v, a) in maps.items()},
                      coords={"y": ds["y"].values, "x": ds["x"].values},
                      attrs={**{k: v for k, v in geo.items() if v}, "variable": var,
                             "members_ok": int(ok.sum()), "members": int(ok.size)})
    tmp = out / f".{PRODUCTS_NAME}.tmp"  # a reader may hold the previous file open: replace it whole
    write_netcdf(prod, tmp)
    paths = {"netcdf": tmp.replace(out / PRODUCTS_NAME)}
    if geotiff and geo["crs"]:
        for name in maps:
            da = prod[name].assign_attrs(**{k: v for k, v in geo.items() if v})
            paths[name] = write_geotiff(da, out / f"{name}.tif")
    paths["kpis"] = kpi_distribution(out)
    return paths


def kpi_distribution(out_dir: str | Path) -> Path:
    """``kpi_distribution.csv``: n, mean, std, min, p5, p50, p95, max of each ``kpi.*`` column of the
    members' table over the members that finished."""
    import numpy as np

    from scenarios.ensemble import TABLE_NAME

    out = Path(out_dir)
    with (out / TABLE_NAME).open(encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["status"] == "ok"]
    names = [c for c in (rows[0] if rows else {}) if c.startswith("kpi.")]
    path = out / KPI_NAME
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["kpi", "n", "mean", "std", "min", "p5", "p50", "p95", "max"])
        for name in names:
            v = np.array([float(r[name]) for r in rows if r[name] not in ("", None)])
            v = v[np.isfinite(v)]
            if v.size == 0:
                w.writerow([name[4:], 0, *[""] * 7])
                continue
            stats = [v.mean(), v.std(), v.min(), *np.percentile(v, [5, 50, 95]), v.max()]
            w.writerow([name[4:], v.size, *[f"{s:.6g}" if math.isfinite(s) else "" for s in stats]])
    return path


__all__ = ["DEFAULT_THRESHOLDS", "ensemble_products", "exceedance", "kpi_distribution", "open_members"]
