"""Skill of a flood forecast at the city's waterlogging spots: ROC AUC and hit rate against random land.

**Reporting only** (as :mod:`physics.hitrate`): the spots describe a
forecast after the fact; no parameter is chosen on them.

Method
------
* **Score** of a cell: the deepest maximum water depth (m) within
  ``radius_m`` (default 100 m) of its centre - a ``scipy.ndimage``
  maximum filter with a disc of cell centres within the radius (NaN cells
  count as 0 m). A spot's score is that of the cell holding it.
* **Negatives**: ``n_random`` (default 5000) cells drawn uniformly, with
  replacement, from the eligible cells (active land inside ``within``:
  the same area as the spots); cells are equal-area, so this is uniform
  in area. Spots outside the eligible cells are left out and counted.
* **AUC**: P(score of a spot > score of a random cell) + P(=)/2, the
  Mann-Whitney U statistic divided by n_spots * n_random (Hanley & McNeil
  1982, Radiology 143:29). 0.5 = no skill. Significance: the one-sided
  Mann-Whitney U test p-value (``scipy.stats.mannwhitneyu``, normal
  approximation with tie correction) and a percentile bootstrap 95 % CI
  (spots and random cells resampled, ``n_boot`` = 1000).
* **Hit rate at a false-alarm rate** ``far`` (default 0.2): the share of
  spots scoring above the ``1 - far`` quantile of the random cells'
  scores (strictly above: ties at a dry 0 m never count as hits).
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr

from twin.errors import CRSError, ValidationError

RADIUS_M = 100.0
N_RANDOM = 5000
FALSE_ALARM_RATE = 0.2
N_BOOT = 1000


def disc_footprint(radius_m: float, dx: float, dy: float) -> np.ndarray:
    """Cells whose centres lie within ``radius_m`` of the centre cell's centre (bool, odd square)."""
    rx, ry = int(radius_m // dx), int(radius_m // dy)
    yy, xx = np.mgrid[-ry:ry + 1, -rx:rx + 1]
    return (xx * dx) ** 2 + (yy * dy) ** 2 <= radius_m ** 2 + 1e-9


def neighbourhood_max(max_depth: np.ndarray, radius_m: float, dx: float, dy: float) -> np.ndarray:
    """Deepest water within ``radius_m`` of each cell (NaN counted as 0 m)."""
    from scipy import ndimage

    h = np.nan_to_num(np.asarray(max_depth, dtype=np.float64), nan=0.0)
    return ndimage.maximum_filter(h, footprint=disc_footprint(radius_m, dx, dy), mode="constant", cval=0.0)


def auc(pos, neg) -> float:
    """Area under the ROC curve: P(pos > neg) + P(pos == neg)/2 (Mann-Whitney U / (n_pos n_neg))."""
    pos, neg = np.asarray(pos, np.float64), np.asarray(neg, np.float64)
    if pos.size == 0 or neg.size == 0:
        raise ValidationError(f"auc needs scores of both classes, got {pos.size} positives, {neg.size} negatives")
    s = np.sort(neg)
    below = np.searchsorted(s, pos, side="left")
    ties = np.searchsorted(s, pos, side="right") - below
    return float((below.sum() + 0.5 * ties.sum()) / (pos.size * neg.size))


def roc_curve(pos, neg) -> tuple[np.ndarray, np.ndarray]:
    """(false-alarm rate, hit rate) at every threshold ("score > t"), from (1, 1) down to (0, 0)."""
    pos, neg = np.asarray(pos, np.float64), np.asarray(neg, np.float64)
    t = np.unique(np.concatenate([pos, neg, [-np.inf]]))[::-1]
    fpr = np.array([(neg > x).mean() for x in t])
    tpr = np.array([(pos > x).mean() for x in t])
    return np.concatenate([[0.0], fpr]), np.concatenate([[0.0], tpr])


def hit_rate_at(pos, neg, far: float) -> tuple[float, float, float]:
    """(hit rate, threshold, actual false-alarm rate) with the threshold the ``1 - far`` quantile of ``neg``."""
    if not (0 < far < 1):
        raise ValidationError(f"false-alarm rate far={far!r} must lie in (0, 1)")
    neg = np.asarray(neg, np.float64)
    thr = float(np.quantile(neg, 1.0 - far))
    return float((np.asarray(pos) > thr).mean()), thr, float((neg > thr).mean())


def bootstrap_auc(pos, neg, *, n_boot: int = N_BOOT, seed: int = 0) -> tuple[float, float]:
    """Percentile 95 % CI of the AUC, resampling both classes with replacement."""
    rng = np.random.default_rng(seed)
    pos, neg = np.asarray(pos, np.float64), np.asarray(neg, np.float64)
    vals = [auc(pos[rng.integers(0, pos.size, pos.size)], neg[rng.integers(0, neg.size, neg.size)])
            for _ in range(n_boot)]
    lo, hi = np.quantile(vals, [0.025, 0.975])
    return float(lo), float(hi)


def paired_auc_difference(pos_a, neg_a, pos_b, neg_b, *, n_boot: int = N_BOOT, seed: int = 0,
                          allow_unpaired: bool = False) -> dict:
    """AUC(b) - AUC(a) for two forecasts scored at the same spots and the same random cells (paired).

    The spots and the random cells are resampled together (the same indices for a and b), so the
    interval reflects that both runs share their sample. ``p_not_better`` is the share of bootstrap
    differences <= 0 (a one-sided bootstrap p-value for "b beats a"). With ``allow_unpaired`` samples of
    other sizes (e.g. buildings blocked some cells, so the eligible cells differ) are resampled
    independently (``paired`` False in the result: a wider interval).
    """
    pa, na, pb, nb = (np.asarray(v, np.float64) for v in (pos_a, neg_a, pos_b, neg_b))
    paired = pa.shape == pb.shape and na.shape == nb.shape
    if not paired and not allow_unpaired:
        raise ValidationError("paired AUC difference: both forecasts must be scored at the same spots and cells")
    rng = np.random.default_rng(seed)
    d = np.empty(n_boot)
    for k in range(n_boot):
        i, j = rng.integers(0, pa.size, pa.size), rng.integers(0, na.size, na.size)
        if paired:
            ib, jb = i, j
        else:
            ib, jb = rng.integers(0, pb.size, pb.size), rng.integers(0, nb.size, nb.size)
        d[k] = auc(pb[ib], nb[jb]) - auc(pa[i], na[j])
    lo, hi = np.quantile(d, [0.025, 0.975])
    return {"delta_auc": auc(pb, nb) - auc(pa, na), "delta_ci95": [float(lo), float(hi)],
            "p_not_better": float((d <= 0).mean()), "n_boot": int(n_boot), "paired": paired}


def skill_scores(pos, neg, *, far: float = FALSE_ALARM_RATE, n_boot: int = N_BOOT, seed: int = 0) -> dict:
    """AUC, its Mann-Whitney p-value and bootstrap CI, and the hit rate at ``far``, from two score samples."""
    from scipy import stats

    pos, neg = np.asarray(pos, np.float64), np.asarray(neg, np.float64)
    a = auc(pos, neg)
    p = float(stats.mannwhitneyu(pos, neg, alternative="greater", method="asymptotic").pvalue) \
        if np.ptp(np.concatenate([pos, neg])) > 0 else 1.0
    lo, hi = bootstrap_auc(pos, neg, n_boot=n_boot, seed=seed)
    hr, thr, far_actual = hit_rate_at(pos, neg, far)
    return {"auc": a, "auc_ci95": [lo, hi], "mannwhitney_p": p, "false_alarm_rate": float(far),
            "false_alarm_rate_actual": far_actual, "hit_rate": hr, "threshold_m": thr,
            "n_spots": int(pos.size), "n_random": int(neg.size)}


def _within_mask(like: xr.DataArray, within, crs: str) -> np.ndarray:
    from physics.hitrate import _eligible

    return _eligible(like, within, crs)


def spot_skill(max_depth: xr.DataArray, points, *, within=None, radius_m: float = RADIUS_M,
               n_random: int = N_RANDOM, far: float = FALSE_ALARM_RATE, n_boot: int = N_BOOT,
               seed: int = 0, curve: bool = False, scores: bool = False) -> dict:
    """Skill of ``max_depth`` at the ``points`` against random eligible land cells (see the module docstring).

    Parameters
    ----------
    max_depth : DataArray (y, x), m, metric CRS in attrs (``crs``, ``transform``)
        NaN marks cells outside the run (sea, blocked): not eligible.
    points : GeoDataFrame of points (any CRS)
    within : shapely geometry (grid CRS), GeoDataFrame/GeoSeries, or None
        The area scored (spots and random cells alike).
    curve : bool
        Add the ROC curve (``roc_fpr``, ``roc_tpr`` lists) to the result.
    scores : bool
        Add the spots' and random cells' scores (``spot_scores``, ``random_scores`` arrays), e.g. for
        :func:`paired_auc_difference` (same ``seed`` and eligible cells = the same random cells).

    Returns
    -------
    dict
        :func:`skill_scores` plus ``n_points``, ``n_outside``, ``radius_m``, ``seed``, the
        spots' and random cells' median scores (m), and a note.
    """
    from gis.raster import cell_size, crs_of, transform_of, world_to_pixel

    if max_depth.ndim != 2:
        raise ValidationError(f"max_depth must be 2-D (y, x), got dims {max_depth.dims}")
    if not (isinstance(radius_m, int | float) and math.isfinite(radius_m) and radius_m >= 0):
        raise ValidationError(f"radius_m={radius_m!r} must be a finite number >= 0")
    if not (isinstance(n_random, int) and n_random >= 1):
        raise ValidationError(f"n_random={n_random!r} must be a positive integer")
    if points.crs is None:
        raise CRSError("points have no CRS; set it (e.g. EPSG:4326) before scoring")
    crs = crs_of(max_depth)
    dx, dy = cell_size(max_depth)
    score = neighbourhood_max(max_depth.values, radius_m, dx, dy)
    eligible = _within_mask(max_depth, within, crs)
    cells = np.flatnonzero(eligible)
    if cells.size == 0:
        raise ValidationError("no eligible cell: the run's land and `within` do not overlap")
    pts = points.to_crs(crs)
    col, row = world_to_pixel(transform_of(max_depth), pts.geometry.x.to_numpy(), pts.geometry.y.to_numpy())
    ci, ri = np.floor(col).astype(np.int64), np.floor(row).astype(np.int64)
    ny, nx = score.shape
    inside = (ci >= 0) & (ci < nx) & (ri >= 0) & (ri < ny)
    inside[inside] = eligible[ri[inside], ci[inside]]
    if not inside.any():
        raise ValidationError("no spot lies on an eligible cell: give points inside the run's land and `within`")
    pos = score[ri[inside], ci[inside]]
    rng = np.random.default_rng(seed)
    neg = score.ravel()[cells[rng.integers(0, cells.size, size=n_random)]]
    out = skill_scores(pos, neg, far=far, n_boot=n_boot, seed=seed)
    out.update({"n_points": int(len(points)), "n_outside": int(len(points) - inside.sum()),
                "radius_m": float(radius_m), "seed": int(seed), "eligible_cells": int(cells.size),
                "median_score_spots_m": float(np.median(pos)), "median_score_random_m": float(np.median(neg)),
                "note": "validation data used for reporting only; no parameter is tuned to it"})
    if scores:
        out.update(spot_scores=pos, random_scores=neg)
    if curve:
        fpr, tpr = roc_curve(pos, neg)
        out.update(roc_fpr=fpr.tolist(), roc_tpr=tpr.tolist())
    return out
