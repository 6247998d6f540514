"""How often a flood forecast lands near known waterlogging spots, against chance.

**Reporting only.** The official waterlogging spots (Shenzhen's 2019 list,
``shenzhen/validation/waterlogging_points_2019.csv``) are used to *describe*
a forecast after the fact. No parameter of the flood model or of its set-up
may be chosen or adjusted to raise this score; doing so would turn a check
into a fit.

Method: the wet mask is ``max_depth >= depth_m``; a Euclidean distance
transform (``scipy.ndimage.distance_transform_edt`` with the cell size as
sampling) gives, for every cell, the distance from its centre to the nearest
wet cell centre. A spot "hits" when that distance at its cell is
``<= radius_m``. Distances are between cell centres, so they carry up to
half a cell diagonal of discretisation error; the random points are scored
the same way, so the comparison is fair.

Random points are placed uniformly over the eligible cells (active land
cells of the run, i.e. finite ``max_depth``, inside ``within``); cells are
equal-area, so this is uniform in area. Spots outside the eligible cells are
left out and counted. The significance is a one-sided exact binomial test
of the spot hit count against the random hit rate (the random rate is an
estimate from ``n_random`` points; its binomial standard error is reported).
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr

from twin.errors import CRSError, ValidationError


def _eligible(max_depth: xr.DataArray, within, crs: str) -> np.ndarray:
    ok = np.isfinite(np.asarray(max_depth.values, dtype=np.float64))
    if within is not None:
        import geopandas as gpd
        from rasterio.features import geometry_mask

        from gis.raster import transform_of

        if isinstance(within, gpd.GeoDataFrame | gpd.GeoSeries):
            if within.crs is None:
                raise CRSError("within has no CRS; set it (e.g. EPSG:4326) before scoring")
            within = within.to_crs(crs).union_all()
        ok &= geometry_mask([within], out_shape=ok.shape, transform=transform_of(max_depth), invert=True)
    return ok


def waterlogging_hit_rate(
    max_depth: xr.DataArray,
    points,
    *,
    radius_m: float = 100.0,
    depth_m: float = 0.15,
    n_random: int = 2000,
    seed: int = 0,
    within=None,
    skill_auc: bool = True,
) -> dict:
    """Share of spots within ``radius_m`` of a cell at least ``depth_m`` deep, vs random points.

    Parameters
    ----------
    max_depth : DataArray (y, x), metres, raster convention, metric CRS
        Maximum depth; NaN marks cells outside the run (sea, blocked).
    points : GeoDataFrame of points (any CRS)
        The spots (validation only: see the module docstring).
    radius_m, depth_m : float
        Search radius (m) and wet threshold (m).
    n_random : int
        Number of random comparison points.
    seed : int
        Seed of the random generator (numpy default_rng).
    within : shapely geometry (in the grid's CRS), GeoDataFrame/GeoSeries, or None
        Area to score in (e.g. the city outline or the run's districts).
    skill_auc : bool
        Add ``skill``: the ROC AUC of the deepest water within ``radius_m``
        against random land cells, its significance and the hit rate at a
        20 % false-alarm rate (:func:`physics.flood_skill.spot_skill`).

    Returns
    -------
    dict
        ``n_points`` (given), ``n_in_domain``, ``n_outside``, ``hits``,
        ``hit_rate``, ``random_n``, ``random_hits``, ``random_hit_rate``,
        ``random_hit_rate_se``, ``ratio`` (hit_rate / random_hit_rate),
        ``p_value`` (P[X >= hits] for X ~ Binomial(n_in_domain,
        random_hit_rate)), ``median_distance_m`` and
        ``random_median_distance_m`` (to the nearest wet cell), ``wet_fraction``
        (of eligible cells), the parameters, and ``skill`` (see ``skill_auc``;
        None when off or no spot is in the domain).
    """
    from scipy import ndimage, stats

    from gis.raster import cell_size, crs_of, transform_of, world_to_pixel

    if max_depth.ndim != 2:
        raise ValidationError(f"max_depth must be 2-D (y, x), got dims {max_depth.dims}")
    for nm, v in (("radius_m", radius_m), ("depth_m", depth_m)):
        if not (isinstance(v, int | float) and math.isfinite(v) and v >= 0):
            raise ValidationError(f"{nm}={v!r} must be a finite number >= 0")
    if not (isinstance(n_random, int) and n_random >= 1):
        raise ValidationError(f"n_random={n_random!r} must be a positive integer")
    crs = crs_of(max_depth)
    if points.crs is None:
        raise CRSError("points have no CRS; set it (e.g. EPSG:4326) before scoring")
    dx, dy = cell_size(max_depth)
    h = np.asarray(max_depth.values, dtype=np.float64)
    eligible = _eligible(max_depth, within, crs)
    wet = np.nan_to_num(h, nan=0.0) >= depth_m
    wet &= np.isfinite(h)
    if wet.any():
        dist = ndimage.distance_transform_edt(~wet, sampling=(dy, dx))
    else:
        dist = np.full(h.shape, np.inf)

    pts = points.to_crs(crs)
    col, row = world_to_pixel(transform_of(max_depth), pts.geometry.x.to_numpy(), pts.geometry.y.to_numpy())
    ci, ri = np.floor(col).astype(np.int64), np.floor(row).astype(np.int64)
    ny, nx = h.shape
    on_grid = (ci >= 0) & (ci < nx) & (ri >= 0) & (ri < ny)
    inside = on_grid.copy()
    inside[on_grid] = eligible[ri[on_grid], ci[on_grid]]
    d_pts = dist[ri[inside], ci[inside]]
    hits = int(np.count_nonzero(d_pts <= radius_m))
    n_in = int(inside.sum())

    cells = np.flatnonzero(eligible)
    if cells.size == 0:
        raise ValidationError("no eligible cell: the run's domain and `within` do not overlap")
    rng = np.random.default_rng(seed)
    pick = cells[rng.integers(0, cells.size, size=n_random)]
    d_rand = dist.ravel()[pick]
    r_hits = int(np.count_nonzero(d_rand <= radius_m))
    p_r = r_hits / n_random
    rate = hits / n_in if n_in else float("nan")
    p_value = float(stats.binomtest(hits, n_in, p_r, alternative="greater").pvalue) if n_in and 0 < p_r < 1 \
        else float("nan")

    def med(a):
        a = a[np.isfinite(a)]
        return float(np.median(a)) if a.size else float("nan")

    skill = None
    if skill_auc and n_in:
        from physics.flood_skill import spot_skill

        skill = spot_skill(max_depth, points, within=within, radius_m=radius_m, seed=seed)
    return {
        "skill": skill,
        "n_points": int(len(points)), "n_in_domain": n_in, "n_outside": int(len(points)) - n_in,
        "hits": hits, "hit_rate": rate,
        "random_n": int(n_random), "random_hits": r_hits, "random_hit_rate": p_r,
        "random_hit_rate_se": math.sqrt(p_r * (1 - p_r) / n_random),
        "ratio": rate / p_r if p_r > 0 and n_in else float("nan"),
        "p_value": p_value,
        "median_distance_m": med(d_pts), "random_median_distance_m": med(d_rand),
        "wet_fraction": float(np.count_nonzero(wet & eligible) / cells.size),
        "radius_m": float(radius_m), "depth_m": float(depth_m), "seed": int(seed),
        "note": "validation data used for reporting only; no parameter is tuned to it",
    }
