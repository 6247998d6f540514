"""Evidence for the datum of a lon/lat vector layer whose provenance is unclear.

Administrative boundaries from Chinese map providers (Amap, Tencent, Baidu)
are usually published in GCJ-02, whose offset near Shenzhen is about 520 m
west-east and 300 m north-south -- too large to ignore at 30 m, too small
to see at city scale. This module measures it from the data itself.

Method (ridge alignment)
------------------------
Shenzhen's city and district boundaries run largely along mountain ridges
(watershed divides between Shenzhen, Dongguan and Huizhou, and between its
own districts). On a DEM in a metric CRS, take every boundary vertex on hilly
ground, shift all of them by (dx, dy) and average the *topographic position
index* (TPI: elevation minus the mean elevation within a window, here
~630 m) under them. Boundaries that follow ridges score high TPI only when
they are aligned with the terrain, so the shift that maximises the mean TPI
estimates the layer's offset from the DEM's datum (WGS 84 for SRTM). If the
best shift matches the inverse GCJ-02 offset, the layer is GCJ-02; if it is
near zero, it is WGS 84. Re-running the fit after conversion should then
give a shift near zero. The search is a plain grid search, so it cannot be
trapped by a local optimum inside its window.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import xarray as xr
from scipy.ndimage import map_coordinates, uniform_filter

from gis.crs import transformer
from gis.raster import cell_size, crs_of, transform_of, world_to_pixel
from twin.errors import ValidationError


@dataclass
class AlignmentFit:
    """The result of :func:`fit_ridge_offset` (all offsets in metres, x east, y north)."""

    best_shift_m: tuple[float, float]
    best_score: float
    score_unshifted: float
    n_points: int
    shifts_x: np.ndarray = field(repr=False)
    shifts_y: np.ndarray = field(repr=False)
    scores: np.ndarray = field(repr=False)

    def score_at(self, dx: float, dy: float) -> float:
        """Score of the nearest searched shift."""
        i = int(np.argmin(np.abs(self.shifts_y - dy)))
        j = int(np.argmin(np.abs(self.shifts_x - dx)))
        return float(self.scores[i, j])


def boundary_points(geoms, step_deg: float = 0.0002) -> np.ndarray:
    """Vertices of polygon boundaries / lines, densified to about ``step_deg`` spacing (lon, lat)."""
    import shapely

    out = []
    for g in geoms:
        if g is None or g.is_empty:
            continue
        g = shapely.segmentize(g, step_deg)
        line = g.boundary if "Polygon" in g.geom_type else g
        out.append(shapely.get_coordinates(line))
    if not out:
        raise ValidationError("no geometry to sample boundary points from")
    return np.vstack(out)


def fit_ridge_offset(
    lonlat: np.ndarray,
    dem: xr.DataArray,
    *,
    search_m: float = 1200.0,
    step_m: float = 20.0,
    window_m: float = 630.0,
    min_elevation: float = 80.0,
) -> AlignmentFit:
    """Grid-search the shift that puts boundary points on the DEM's ridges.

    Parameters
    ----------
    lonlat : (n, 2) array
        Boundary vertices as read from the file (lon, lat, no conversion).
    dem : DataArray
        Elevation in a metric CRS (e.g. the SRTM reprojected to EPSG:4547).
    search_m, step_m : float
        Shifts from -search_m to +search_m on both axes, every step_m.
    window_m : float
        Side of the square window of the TPI's local mean.
    min_elevation : float
        Only points whose (smoothed) elevation exceeds this are used: on flat
        land the TPI carries no signal.
    """
    dx_cell, dy_cell = cell_size(dem)
    z = np.nan_to_num(dem.values.astype(np.float64), nan=0.0)
    size = max(3, int(round(window_m / dx_cell)) | 1)
    tpi = z - uniform_filter(z, size=size, mode="nearest")
    t = transform_of(dem)
    x, y = transformer("EPSG:4326", crs_of(dem)).transform(lonlat[:, 0], lonlat[:, 1])
    x, y = np.asarray(x), np.asarray(y)
    col, row = world_to_pixel(t, x, y)
    smooth = uniform_filter(z, size=5, mode="nearest")
    keep = map_coordinates(smooth, [row - 0.5, col - 0.5], order=1, cval=0.0) > min_elevation
    if keep.sum() < 100:
        raise ValidationError(
            f"only {int(keep.sum())} boundary points lie above {min_elevation} m: "
            "the ridge fit needs hilly boundaries (lower min_elevation or use another method)"
        )
    x, y = x[keep], y[keep]
    shifts = np.arange(-search_m, search_m + step_m / 2, step_m)
    scores = np.empty((shifts.size, shifts.size))
    for i, sy in enumerate(shifts):
        for j, sx in enumerate(shifts):
            c, r = world_to_pixel(t, x + sx, y + sy)
            scores[i, j] = map_coordinates(tpi, [r - 0.5, c - 0.5], order=1, cval=0.0).mean()
    i, j = np.unravel_index(int(np.argmax(scores)), scores.shape)
    zero = int(np.argmin(np.abs(shifts)))
    return AlignmentFit(
        best_shift_m=(float(shifts[j]), float(shifts[i])),
        best_score=float(scores[i, j]),
        score_unshifted=float(scores[zero, zero]),
        n_points=int(x.size),
        shifts_x=shifts,
        shifts_y=shifts,
        scores=scores,
    )


@dataclass
class DatumFinding:
    """Which datum a boundary layer is in, with the numbers behind the verdict."""

    verdict: str  # "gcj02", "wgs84" or "unclear"
    fit_raw: AlignmentFit
    fit_converted: AlignmentFit
    gcj02_inverse_shift_m: tuple[float, float]
    tolerance_m: float

    def as_dict(self) -> dict:
        """A JSON-ready summary."""
        return {
            "verdict": self.verdict,
            "method": "ridge alignment: grid search of the shift maximising mean TPI under boundary vertices",
            "best_shift_raw_m": self.fit_raw.best_shift_m,
            "gcj02_inverse_shift_m": [round(v, 1) for v in self.gcj02_inverse_shift_m],
            "best_shift_after_gcj02_to_wgs84_m": self.fit_converted.best_shift_m,
            "mean_tpi_raw_unshifted_m": round(self.fit_raw.score_unshifted, 2),
            "mean_tpi_raw_best_m": round(self.fit_raw.best_score, 2),
            "mean_tpi_converted_unshifted_m": round(self.fit_converted.score_unshifted, 2),
            "n_points": self.fit_raw.n_points,
            "tolerance_m": self.tolerance_m,
        }


def assess_gcj02(
    geoms, dem: xr.DataArray, *, tolerance_m: float = 100.0, **fit_kwargs
) -> DatumFinding:
    """Decide between WGS 84 and GCJ-02 for lon/lat boundary geometries.

    ``gcj02`` when the raw layer's best shift is within ``tolerance_m`` of
    the inverse GCJ-02 offset at the layer's centre and the converted layer's
    best shift is within ``tolerance_m`` of zero; ``wgs84`` when the raw best
    shift is itself within ``tolerance_m`` of zero; otherwise ``unclear``.
    The default tolerance of 100 m is about three 30 m DEM cells, a fifth of
    the GCJ-02 offset's length.
    """
    from gis import coords

    pts = boundary_points(geoms)
    fit_raw = fit_ridge_offset(pts, dem, **fit_kwargs)
    wlon, wlat = coords.gcj02_to_wgs84(pts[:, 0], pts[:, 1])
    fit_conv = fit_ridge_offset(np.column_stack([wlon, wlat]), dem, **fit_kwargs)
    clon, clat = float(np.mean(wlon)), float(np.mean(wlat))
    east, north = coords.gcj02_offset_m(clon, clat)
    inverse = (-float(east), -float(north))

    def near(a, b):
        return float(np.hypot(a[0] - b[0], a[1] - b[1])) <= tolerance_m

    if near(fit_raw.best_shift_m, inverse) and near(fit_conv.best_shift_m, (0.0, 0.0)):
        verdict = "gcj02"
    elif near(fit_raw.best_shift_m, (0.0, 0.0)):
        verdict = "wgs84"
    else:
        verdict = "unclear"
    return DatumFinding(verdict, fit_raw, fit_conv, inverse, tolerance_m)
