"""Design storms: hyetographs built from depth-duration maxima.

A design storm turns a handful of "most rain in d hours" figures (a
depth-duration-frequency curve, or the records of one event) into a rain
series for the flood model. Two classic constructions:

* :func:`alternating_block` (Chow, Maidment & Mays 1988, *Applied
  Hydrology* §14.4): block increments of the depth-duration curve, largest at
  the peak, the rest placed alternately after and before it;
* :func:`chicago` (Keifer & Chu 1957, *J. Hydraul. Div.* 83(HY4):1332): the
  continuous hyetograph whose every centred window of length ``t`` holds the
  depth ``i(t)·t`` of the intensity-duration curve ``i(t) = a / (t + b)^c``.

:func:`storm_2023_09_07` builds either one from the records of the
2023-09-07 Shenzhen storm, read from ``hazard_events.json`` through
:class:`twin.city.City`.

Units: durations in hours at the interface, block length in minutes, depths
in mm, intensities in mm/h, model times in seconds.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

import numpy as np

from physics.forcing import UniformRain
from twin.errors import DataIntegrityError, ValidationError

METHODS = ("alternating_block", "chicago")


class DesignStorm(UniformRain):
    """A :class:`UniformRain` that remembers how it was built (for reports and file metadata)."""

    def __init__(self, times_s, rates_mm_h, *, method: str, ddf: Mapping[float, float],
                 block_min: float, peak_fraction: float, name: str = "design storm",
                 params: Mapping[str, float] | None = None):
        super().__init__(times_s, rates_mm_h)
        self.method = method
        self.ddf = {float(k): float(v) for k, v in ddf.items()}
        self.block_min = float(block_min)
        self.peak_fraction = float(peak_fraction)
        self.name = name
        self.params = dict(params or {})

    @property
    def duration_h(self) -> float:
        return float(self.times[-1] - self.times[0]) / 3600.0

    def block_depths_mm(self) -> np.ndarray:
        """Depth of each block (mm)."""
        return self.rates * np.diff(self.times) / 3600.0

    def max_running_mm(self, window_h: float) -> float:
        """Largest rain depth (mm) in any window of ``window_h`` hours aligned on block edges.

        For a piecewise-constant series whose window is a whole number of
        blocks this is the maximum over all window positions: the windowed
        depth is piecewise linear in the window start, so it peaks where an
        edge of the window meets a block edge, i.e. on block edges.
        """
        k = window_h * 60.0 / self.block_min
        n = int(round(k))
        if abs(k - n) > 1e-9 or n < 1:
            raise ValidationError(
                f"window_h={window_h} h is not a whole number of {self.block_min:g}-min blocks"
            )
        d = self.block_depths_mm()
        if n >= d.size:
            return float(d.sum())
        c = np.concatenate([[0.0], np.cumsum(d)])
        return float(np.max(c[n:] - c[:-n]))

    def describe(self) -> dict:
        """Metadata for outputs: method, maxima used, block length, peak position, totals."""
        return {
            "name": self.name, "method": self.method, "duration_h": self.duration_h,
            "block_min": self.block_min, "peak_fraction": self.peak_fraction,
            "total_mm": self.total_mm, "peak_mm_h": float(self.rates.max()),
            "ddf_mm": {f"{k:g}h": v for k, v in sorted(self.ddf.items())},
            **({"params": self.params} if self.params else {}),
            **({"rain_scale": self.rain_scale} if getattr(self, "rain_scale", 1.0) != 1.0 else {}),
        }


# -- depth-duration curve ---------------------------------------------------------------
def _check_ddf(ddf: Mapping[float, float]) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(ddf, Mapping) or len(ddf) == 0:
        raise ValidationError("ddf must be a non-empty mapping {duration_h: depth_mm}")
    items = sorted((float(k), float(v)) for k, v in ddf.items())
    t = np.array([k for k, _ in items])
    d = np.array([v for _, v in items])
    if not (np.all(np.isfinite(t)) and np.all(t > 0)):
        raise ValidationError(f"ddf durations must be positive hours, got {t.tolist()}")
    if not (np.all(np.isfinite(d)) and np.all(d > 0)):
        raise ValidationError(f"ddf depths must be positive mm, got {d.tolist()}")
    if np.any(np.diff(d) < 0):
        raise ValidationError(f"ddf depths must not decrease with duration, got {dict(items)}")
    if np.any(d / t > np.r_[np.inf, (d / t)[:-1]] + 1e-12):
        raise ValidationError(
            f"ddf mean intensities (depth/duration) must not increase with duration, got {dict(items)}"
        )
    return t, d


def ddf_depth(ddf: Mapping[float, float], duration_h) -> np.ndarray:
    """Depth (mm) for ``duration_h`` by log-log interpolation through the maxima.

    Between two given durations t1 < t2 the curve is the power law
    ``D(t) = D1 (t/t1)^k`` with ``k = ln(D2/D1) / ln(t2/t1)``. Below the
    shortest duration the first segment's power law is extended (for one
    point only: ``D ∝ t``, constant intensity); above the longest the last
    segment's. Extrapolation beyond the longest duration is refused by the
    storm builders (a storm longer than the maxima know of is a guess).
    """
    t, d = _check_ddf(ddf)
    x = np.log(np.asarray(duration_h, dtype=np.float64))
    lt, ld = np.log(t), np.log(d)
    if t.size == 1:
        return np.exp(ld[0] + (x - lt[0]))
    y = np.interp(x, lt, ld)
    k0 = (ld[1] - ld[0]) / (lt[1] - lt[0])
    k1 = (ld[-1] - ld[-2]) / (lt[-1] - lt[-2])
    y = np.where(x < lt[0], ld[0] + k0 * (x - lt[0]), y)
    y = np.where(x > lt[-1], ld[-1] + k1 * (x - lt[-1]), y)
    return np.exp(y)


def _blocks(duration_h: float, block_min: float, ddf) -> int:
    if not (isinstance(duration_h, int | float) and math.isfinite(duration_h) and duration_h > 0):
        raise ValidationError(f"duration_h={duration_h!r} must be a positive number of hours")
    if not (isinstance(block_min, int | float) and math.isfinite(block_min) and block_min > 0):
        raise ValidationError(f"block_min={block_min!r} must be a positive number of minutes")
    n = duration_h * 60.0 / block_min
    if abs(n - round(n)) > 1e-9 or round(n) < 1:
        raise ValidationError(
            f"duration_h={duration_h} h is not a whole number of block_min={block_min} min blocks"
        )
    longest = max(float(k) for k in ddf)
    if duration_h > longest * (1 + 1e-12):
        raise ValidationError(
            f"duration_h={duration_h} h exceeds the longest duration in the ddf ({longest:g} h): "
            "give a depth for a duration at least as long as the storm"
        )
    return int(round(n))


def _check_peak(peak_fraction: float) -> float:
    if not (isinstance(peak_fraction, int | float) and 0.0 <= peak_fraction <= 1.0):
        raise ValidationError(f"peak_fraction={peak_fraction!r} must lie in [0, 1]")
    return float(peak_fraction)


def _alternate(increments: np.ndarray, peak_index: int) -> np.ndarray:
    """Largest increment at ``peak_index``, the next ones alternately after and before it.

    When one side is full the rest go on the other side. Each prefix of
    the sorted increments so occupies a contiguous run of blocks, so the
    largest k-block total is the sum of the k largest increments.
    """
    inc = np.sort(increments)[::-1]
    n = inc.size
    out = np.empty(n)
    lo = hi = peak_index
    out[peak_index] = inc[0]
    after = True
    for v in inc[1:]:
        if (after and hi + 1 < n) or lo == 0:
            hi += 1
            out[hi] = v
        else:
            lo -= 1
            out[lo] = v
        after = not after
    return out


def alternating_block(
    ddf: Mapping[float, float],
    duration_h: float,
    block_min: float = 10.0,
    *,
    peak_fraction: float = 0.5,
    start_s: float = 0.0,
    name: str = "alternating-block design storm",
) -> DesignStorm:
    """Alternating-block hyetograph through the depth-duration maxima ``ddf``.

    Parameters
    ----------
    ddf : mapping {duration_h: depth_mm}
        Largest rain depths over the given durations (mm). Interpolated
        log-log (:func:`ddf_depth`); at least one duration must be
        >= ``duration_h``.
    duration_h : float
        Storm length (h), a whole number of blocks.
    block_min : float
        Block length (min).
    peak_fraction : float
        Where the peak block sits, as a fraction of the storm (0.5 = centre;
        the peak block is ``floor(peak_fraction * n)``, clamped to the last).
    start_s : float
        Model time of the storm start (s).

    Returns
    -------
    DesignStorm
        Block ``k`` (0-based) rains ``D((m+1)Δt) - D(mΔt)`` for its rank ``m``,
        at the rate depth / Δt (mm/h). The total equals ``D(duration_h)``;
        the largest total over any ``j`` whole blocks equals ``D(jΔt)``
        whenever the increments decrease with rank (a concave depth-duration
        curve, true of the 2023-09-07 records), because the alternating
        order keeps the ``j`` largest increments contiguous.
    """
    n = _blocks(duration_h, block_min, ddf)
    pf = _check_peak(peak_fraction)
    dt_h = block_min / 60.0
    depth = ddf_depth(ddf, dt_h * np.arange(1, n + 1))
    inc = np.diff(np.concatenate([[0.0], depth]))
    peak = min(int(math.floor(pf * n)), n - 1)
    blocks = _alternate(inc, peak)
    times = start_s + np.arange(n + 1) * block_min * 60.0
    return DesignStorm(times, blocks / dt_h, method="alternating_block", ddf=ddf,
                       block_min=block_min, peak_fraction=pf, name=name)


# -- Chicago ------------------------------------------------------------------------------
def fit_idf(ddf: Mapping[float, float]) -> tuple[float, float, float]:
    """Least-squares fit of ``i(t) = a / (t + b)^c`` (i mm/h, t min) to the points of ``ddf``.

    Residuals are relative, ``ln i_fit - ln i_obs`` (each point weighs the
    same whatever its size), with ``b >= 0`` and ``0 < c < 1`` (so depth
    ``i·t`` grows with duration). With fewer than three points ``b`` is
    fixed at 0 (a pure power law) and, for one point, ``c`` at 0.5.
    Returns ``(a, b, c)``.
    """
    from scipy.optimize import least_squares

    t_h, d = _check_ddf(ddf)
    t = t_h * 60.0
    li = np.log(d / t_h)
    if t.size == 1:
        c = 0.5
        return float(np.exp(li[0]) * t[0] ** c), 0.0, c
    if t.size == 2:
        c = -(li[1] - li[0]) / (np.log(t[1]) - np.log(t[0]))
        c = min(max(c, 1e-6), 1 - 1e-6)
        return float(np.exp(li[0]) * t[0] ** c), 0.0, float(c)

    def resid(p):
        la, b, c = p
        return la - c * np.log(t + b) - li

    best = None
    for b0 in (0.0, 5.0, 20.0, 60.0):
        c0 = 0.6
        la0 = float(np.mean(li + c0 * np.log(t + b0)))
        r = least_squares(resid, [la0, b0, c0], bounds=([-np.inf, 0.0, 1e-6], [np.inf, 1e4, 1 - 1e-6]),
                          xtol=1e-14, ftol=1e-14, gtol=1e-14)
        if best is None or r.cost < best.cost:
            best = r
    la, b, c = best.x
    return float(np.exp(la)), float(b), float(c)


def chicago(
    ddf: Mapping[float, float],
    duration_h: float,
    block_min: float = 10.0,
    *,
    peak_fraction: float = 0.5,
    start_s: float = 0.0,
    name: str = "Chicago design storm",
) -> DesignStorm:
    """Chicago hyetograph (Keifer & Chu 1957) of the IDF curve fitted to ``ddf``.

    With ``i(t) = a / (t + b)^c`` fitted by :func:`fit_idf` and the depth
    ``F(t) = i(t) t / 60`` (mm, t in min), the rain between the peak at
    ``t_p = r T`` and a time ``s`` before it is ``r F(s / r)``, and after it
    ``(1 - r) F(s / (1 - r))`` (r = ``peak_fraction``). Blocks hold the
    exact depth of the continuous hyetograph over their interval (so the
    instantaneous peak intensity is averaged over the peak block); the
    total is ``F(T)``, which differs from the given depth by the fit error.
    ``peak_fraction`` must lie strictly inside (0, 1).
    """
    n = _blocks(duration_h, block_min, ddf)
    r = _check_peak(peak_fraction)
    if not 0.0 < r < 1.0:
        raise ValidationError(f"chicago: peak_fraction={peak_fraction} must lie strictly inside (0, 1)")
    a, b, c = fit_idf(ddf)
    total_min = duration_h * 60.0
    tp = r * total_min

    def F(tm):
        tm = np.asarray(tm, dtype=np.float64)
        return a * tm / (tm + b) ** c / 60.0

    edges = np.arange(n + 1) * block_min
    before = r * (F(total_min) - F(np.clip(tp - edges, 0.0, None) / r))
    after = r * F(total_min) + (1 - r) * F(np.clip(edges - tp, 0.0, None) / (1 - r))
    cum = np.where(edges <= tp, before, after)
    blocks = np.diff(cum)
    if np.any(blocks < -1e-9):
        raise DataIntegrityError(f"chicago: negative block depth {blocks.min()} mm (fit a={a}, b={b}, c={c})")
    blocks = np.maximum(blocks, 0.0)
    times = start_s + edges * 60.0
    return DesignStorm(times, blocks / (block_min / 60.0), method="chicago", ddf=ddf,
                       block_min=block_min, peak_fraction=r, name=name,
                       params={"a_mm_h": a, "b_min": b, "c": c})


# -- the 2023-09-07 storm -------------------------------------------------------------------
EVENT_ID = "rain_2023-09-07"


def records_2023_09_07(city=None, durations_h: Sequence[float] | None = None) -> dict[float, float]:
    """The storm's record depths {duration_h: mm} from ``hazard_events.json`` (via ``City.events()``).

    Keys ``max_<n>h_mm`` of ``records_broken_since_1952``; each record is
    from its own gauge, so together they form an envelope of the event,
    not one gauge's curve. ``durations_h`` keeps only those durations.
    """
    from twin.city import City

    city = city if city is not None else City("shenzhen")
    events = city.events().get("events", [])
    ev = next((e for e in events if e.get("id") == EVENT_ID), None)
    if ev is None:
        raise DataIntegrityError(f"hazard_events.json has no event with id {EVENT_ID!r}")
    recs = ev.get("records_broken_since_1952", {})
    out = {}
    for key, val in recs.items():
        m = re.fullmatch(r"max_(\d+(?:\.\d+)?)h_mm", key)
        if m:
            v = val["value"] if isinstance(val, Mapping) else val
            out[float(m.group(1))] = float(v)
    if not out:
        raise DataIntegrityError(f"event {EVENT_ID!r} lists no max_<n>h_mm records")
    if durations_h is not None:
        missing = [d for d in durations_h if float(d) not in out]
        if missing:
            raise ValidationError(
                f"durations_h={list(durations_h)}: no record for {missing} h; records: {sorted(out)}"
            )
        out = {float(d): out[float(d)] for d in durations_h}
    return dict(sorted(out.items()))


def storm_2023_09_07(
    hours: float = 6.0,
    method: str = "alternating_block",
    *,
    block_min: float = 10.0,
    peak_fraction: float = 0.5,
    durations_h: Sequence[float] | None = None,
    city=None,
    start_s: float = 0.0,
) -> DesignStorm:
    """Design storm of the 2023-09-07 Shenzhen records (1 h 116.8, 3 h 246.8, 6 h 349.7 mm, ...).

    The maxima are read from the data (never from this code). By default
    the records up to the first duration >= ``hours`` (and at least the two
    shortest) are used (for 6 h: 1, 2, 3 and 6 h); pass ``durations_h=(1, 3, 6)`` to use only those. ``method`` is
    ``"alternating_block"`` or ``"chicago"``.
    """
    if method not in METHODS:
        raise ValidationError(f"method={method!r}: use one of {METHODS}")
    ddf = records_2023_09_07(city, durations_h)
    if durations_h is None:
        # Keep the records up to the first one at least as long as the storm:
        # longer ones do not shape a storm of this length (and would pull the Chicago fit).
        # At least two records stay, so that a storm shorter than the shortest record follows
        # the first segment's power law rather than a constant intensity.
        longer = [d for d in ddf if d >= hours]
        if longer:
            keep = max(min(longer), sorted(ddf)[min(1, len(ddf) - 1)])
            ddf = {d: v for d, v in ddf.items() if d <= keep}
    name = f"2023-09-07 Shenzhen record storm, {hours:g} h, {method.replace('_', '-')}"
    build = alternating_block if method == "alternating_block" else chicago
    return build(ddf, hours, block_min, peak_fraction=peak_fraction, start_s=start_s, name=name)
