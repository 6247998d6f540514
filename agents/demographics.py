"""Desired walking speeds and pre-movement times of a population.

Two draws that every evacuation model of the twin needs, with the source of
each number:

* :func:`speed_sample` - free walking speed on level ground (m/s):

  - ``"weidmann_adult"``: normal, mean 1.34 m/s, standard deviation 0.26 m/s
    (Weidmann 1993, *Transporttechnik der Fussgaenger*, ETH Zuerich IVT
    Schriftenreihe 90, the mean of 58 studies), truncated to mean +- 3 sd
    by redrawing;
  - ``"rimea_age"``: uniform between the lower and upper speed of the
    person's age in :data:`RIMEA_AGE_SPEEDS` (RiMEA 3.0, test 7, after
    Weidmann 1993), ages given or drawn uniformly from 10 to 80 years.

* :func:`premovement_sample` - pre-movement time (s) from the alarm to the
  start of movement, ``"lognormal"`` (the shape PD 7974-6:2019 and ISO/TR
  16738 use for pre-movement distributions), ``"uniform"`` or ``"constant"``.

Every draw goes through the generator given (``numpy.random.Generator``), so a
seeded model is reproducible.
"""

from __future__ import annotations

import math

import numpy as np

from twin.errors import ValidationError

#: Weidmann 1993: mean free walking speed on level ground and its spread (m/s).
WEIDMANN_MEAN_MPS = 1.34
WEIDMANN_SD_MPS = 0.26

#: Free walking speed by age, (age in years, lower m/s, upper m/s).
#: Read off the speed-by-age figure of RiMEA 3.0 (test 7, after Weidmann 1993)
#: at ten ages, to about +-0.05 m/s; between them the bounds are interpolated
#: linearly. A digitisation of a figure, not the guideline's own numbers:
#: check against the guideline before a certification run.
RIMEA_AGE_SPEEDS: tuple[tuple[float, float, float], ...] = (
    (5.0, 0.58, 1.00),
    (10.0, 0.90, 1.40),
    (15.0, 1.10, 1.60),
    (20.0, 1.20, 1.65),
    (30.0, 1.15, 1.60),
    (40.0, 1.10, 1.55),
    (50.0, 1.05, 1.45),
    (60.0, 0.95, 1.35),
    (70.0, 0.80, 1.20),
    (80.0, 0.60, 0.95),
)

SPEED_PROFILES = ("weidmann_adult", "rimea_age")
PREMOVEMENT_DISTS = ("lognormal", "uniform", "constant")


def _count(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise ValidationError(f"n must be a whole number >= 0, got {n!r}")
    return int(n)


def age_speed_bounds(ages: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper free walking speed (m/s) at each age (years), RiMEA 3.0 test 7.

    Parameters
    ----------
    ages : array_like
        Ages in years, 5 to 80 (the range of the figure).

    Returns
    -------
    (lower, upper) : tuple of ndarray
        Speeds in m/s, linear between the tabulated ages.

    Raises
    ------
    ValidationError
        An age outside 5-80 years or not finite (names the first one).
    """
    a = np.asarray(ages, dtype=np.float64)
    table = np.asarray(RIMEA_AGE_SPEEDS)
    bad = ~np.isfinite(a) | (a < table[0, 0]) | (a > table[-1, 0])
    if bad.any():
        first = a[bad].flat[0]
        raise ValidationError(
            f"ages: {first!r} is outside the RiMEA speed-by-age table "
            f"({table[0, 0]:g}-{table[-1, 0]:g} years)"
        )
    return np.interp(a, table[:, 0], table[:, 1]), np.interp(a, table[:, 0], table[:, 2])


def speed_sample(
    rng: np.random.Generator,
    n: int,
    profile: str = "weidmann_adult",
    ages: np.ndarray | None = None,
) -> np.ndarray:
    """Draw ``n`` desired (free) walking speeds in m/s.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness (the model's, for reproducibility).
    n : int
        Number of people.
    profile : {"weidmann_adult", "rimea_age"}
        ``"weidmann_adult"``: N(1.34, 0.26) m/s truncated to 0.56-2.12 m/s
        (Weidmann 1993). ``"rimea_age"``: uniform between the age's bounds in
        :data:`RIMEA_AGE_SPEEDS` (RiMEA 3.0 test 7).
    ages : array_like, optional
        Ages in years (``"rimea_age"`` only); drawn uniformly from 10-80 when
        omitted (the age range of RiMEA test 7's population).

    Returns
    -------
    ndarray of float64, shape (n,)
        Speeds in m/s.

    Raises
    ------
    ValidationError
        Unknown profile, ``ages`` with the wrong length or out of range.
    """
    n = _count(n)
    if profile == "weidmann_adult":
        if ages is not None:
            raise ValidationError("ages: only the 'rimea_age' profile uses ages")
        lo = WEIDMANN_MEAN_MPS - 3 * WEIDMANN_SD_MPS
        hi = WEIDMANN_MEAN_MPS + 3 * WEIDMANN_SD_MPS
        v = rng.normal(WEIDMANN_MEAN_MPS, WEIDMANN_SD_MPS, n)
        bad = (v < lo) | (v > hi)
        while bad.any():  # redraw the tails: a truncated normal
            v[bad] = rng.normal(WEIDMANN_MEAN_MPS, WEIDMANN_SD_MPS, int(bad.sum()))
            bad = (v < lo) | (v > hi)
        return v
    if profile == "rimea_age":
        if ages is None:
            ages = rng.uniform(10.0, 80.0, n)
        ages = np.asarray(ages, dtype=np.float64)
        if ages.shape != (n,):
            raise ValidationError(f"ages: expected {n} ages, got shape {ages.shape}")
        lower, upper = age_speed_bounds(ages)
        return lower + (upper - lower) * rng.random(n)
    raise ValidationError(f"profile: {profile!r} is not one of {', '.join(SPEED_PROFILES)}")


def premovement_sample(
    rng: np.random.Generator,
    n: int,
    dist: str = "lognormal",
    **params: float,
) -> np.ndarray:
    """Draw ``n`` pre-movement times in seconds.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness.
    n : int
        Number of people.
    dist : {"lognormal", "uniform", "constant"}
        Distribution family.
    **params
        ``"lognormal"``: ``median_s`` (default 60 s), ``sigma`` (standard
        deviation of ln t, default 0.5) and ``shift_s`` (added to every draw,
        default 0 s): t = shift + median * exp(sigma * Z). The defaults are
        illustrative (an awake, alerted office population of the order PD
        7974-6 describes); a study sets its own. ``"uniform"``: ``low_s``,
        ``high_s``. ``"constant"``: ``value_s``.

    Returns
    -------
    ndarray of float64, shape (n,)
        Pre-movement times, s (>= 0).

    Raises
    ------
    ValidationError
        Unknown distribution or parameter, a negative or non-finite value.
    """
    n = _count(n)
    allowed = {
        "lognormal": {"median_s": 60.0, "sigma": 0.5, "shift_s": 0.0},
        "uniform": {"low_s": 0.0, "high_s": 60.0},
        "constant": {"value_s": 0.0},
    }
    if dist not in allowed:
        raise ValidationError(f"dist: {dist!r} is not one of {', '.join(PREMOVEMENT_DISTS)}")
    p = dict(allowed[dist])
    for key, value in params.items():
        if key not in p:
            raise ValidationError(
                f"{key}: not a parameter of the {dist} distribution ({', '.join(p)})"
            )
        if not math.isfinite(float(value)) or float(value) < 0:
            raise ValidationError(f"{key}: must be finite and >= 0, got {value!r}")
        p[key] = float(value)
    if dist == "lognormal":
        if p["median_s"] <= 0:
            raise ValidationError(f"median_s: must be > 0, got {p['median_s']!r}")
        return p["shift_s"] + p["median_s"] * np.exp(p["sigma"] * rng.standard_normal(n))
    if dist == "uniform":
        if p["high_s"] < p["low_s"]:
            raise ValidationError(f"high_s: {p['high_s']!r} is below low_s {p['low_s']!r}")
        return rng.uniform(p["low_s"], p["high_s"], n)
    return np.full(n, p["value_s"])
