"""Distance of a DAS event's source from the fibre, from its energy footprint along the fibre; the protection zone.

**The footprint.** A point source at distance ``d`` from a straight fibre, seen at the channel ``x`` metres along
the fibre from the nearest point, is ``r = sqrt(d² + x²)`` away. With Bornitz attenuation
(:func:`physics.vibration_laws.bornitz_ppv`: ``v(r) = v(d)·(d/r)^n·exp(−a·(r − d))``, material damping
``a = π·f·η/c``, :func:`physics.vibration_laws.material_damping_per_m`) the band energy a channel records over the
event (Σ y², proportional to v²) is

    E(x) = E(0) · (d² / (d² + x²))^n · exp(−2a·(sqrt(d² + x²) − d)).

With n = 1 and no damping (a = 0) the energy falls to half at ``x = ±d``: the half-power half-width *is* the
offset. Damping narrows the footprint: the half-width ``h`` solves ``(d²/(d²+h²))^n·exp(−2a(sqrt(d²+h²) − d)) = ½``,
so ``h < d`` when a > 0 (:func:`half_power_halfwidth`; e.g. d = 30 m at 20 Hz, η = 0.05, c = 250 m/s:
a = 0.0126 /m, h = 23.7 m).

**What the detector measures.** The energy per channel is the *unsmoothed* band energy summed over the event's
triggered windows (the detector's channel smoothing, ``smooth_ch``, enters only its trigger, never this profile),
minus the noise's expected share (the noise floor per window times the windows summed). Channels are 1 gauge of
``dx_m`` each; the interrogator's gauge length (a moving average over the gauge) widens a footprint by about
gauge²/12 in variance, negligible for offsets of several channels and not modelled.

**The estimate** (:func:`fit_offset`): the half-power crossings of the noise-subtracted profile either side of
the peak, their mean distance from the peak as ``h``, and ``d`` from ``h`` by inverting the relation above
(:func:`offset_from_halfwidth`, with ``a`` at the event's measured peak frequency).

**The protection zone.** :func:`zone_distance_m`: the protection distance beyond the tunnel's outer edge plus the
tunnel's outer radius (``physics/tunnel_limits.toml`` ``[tunnel]``: 50 m and 6 m / 2). The fibre lies in the
tunnel, so an event whose distance from the fibre is at most that is inside the zone; the offset is a 3-D
distance and never less than the horizontal one, so the test errs towards *inside* for deep sources.
"""

from __future__ import annotations

import math

import numpy as np

from twin.errors import ValidationError


def footprint(x_m: np.ndarray, offset_m: float | np.ndarray, alpha_per_m: float, n: float = 1.0) -> np.ndarray:
    """Relative band energy ``E(x)/E(0)`` at ``x_m`` along the fibre from a source ``offset_m`` off it."""
    d = np.asarray(offset_m, dtype=np.float64)
    x = np.asarray(x_m, dtype=np.float64)
    r = np.hypot(x, d)
    return (d / r) ** (2.0 * n) * np.exp(-2.0 * alpha_per_m * (r - d))


def half_power_halfwidth(offset_m: float, alpha_per_m: float, n: float = 1.0) -> float:
    """Distance along the fibre at which the footprint's energy is half its peak (m); ``offset_m`` when
    ``alpha_per_m`` = 0 and n = 1."""
    lo, hi = 0.0, 1.0
    while footprint(hi, offset_m, alpha_per_m, n) > 0.5:
        hi *= 2.0
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if footprint(mid, offset_m, alpha_per_m, n) > 0.5 else (lo, mid)
    return 0.5 * (lo + hi)


def offset_from_halfwidth(halfwidth_m: float, alpha_per_m: float, n: float = 1.0) -> float:
    """Inverse of :func:`half_power_halfwidth`: the offset (m) whose footprint is half power at ``halfwidth_m``
    (bisection on a log scale; the half-width grows monotonically with the offset)."""
    lo, hi = 1e-3, 1e4
    if half_power_halfwidth(hi, alpha_per_m, n) < halfwidth_m:
        return hi
    for _ in range(60):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if half_power_halfwidth(mid, alpha_per_m, n) < halfwidth_m else (lo, mid)
    return math.sqrt(lo * hi)


def fit_offset(x_m: np.ndarray, energy: np.ndarray, noise: np.ndarray, x0_m: float, alpha_per_m: float,
               n: float = 1.0) -> float | None:
    """Offset (m) of the source from the half-power half-width of its energy profile.

    The signal is ``energy − noise``; its peak value is the vertex of the parabola through the log signal at the
    three channels around ``x0_m`` (exact for a locally Gaussian top, which the footprint's is: log E ≈ −(1/d² +
    a/d)·x² near x = 0, n = 1); walking out from the peak on each side, the first channel below half of it and
    the one before give the crossing by linear interpolation; the half-width is the mean over the sides found
    (which cancels an error in ``x0_m`` to first order) and the offset its inverse (:func:`offset_from_halfwidth`).
    The crossings rather than a fit of the whole footprint: the fibre's coupling varies along it (±0.3 in log
    amplitude over tens of metres in the simulator), which bends a wide footprint's tails far more than its top.

    Parameters
    ----------
    x_m : array
        Positions of the channels along the fibre (m, increasing, evenly spaced).
    energy, noise : array
        Band energy per channel over the event and the noise's expected share of it.
    x0_m : float
        Position of the event's peak (the detector's sub-channel localisation).
    alpha_per_m, n : float
        Material damping (1/m) at the event's frequency and the geometric spreading exponent.

    Returns
    -------
    float or None
        None when no side of the profile falls to half its peak within the channels given.
    """
    x = np.asarray(x_m, dtype=np.float64)
    s = np.asarray(energy, dtype=np.float64) - np.asarray(noise, dtype=np.float64)
    if s.size < 3:
        return None
    k = int(np.clip(np.argmin(np.abs(x - x0_m)), 1, s.size - 2))
    k = k - 1 + int(np.argmax(s[k - 1:k + 2]))
    if not s[k] > 0:
        return None
    peak = float(s[k])
    if 0 < k < s.size - 1 and s[k - 1] > 0 and s[k + 1] > 0:
        lm, l0, lp = np.log(s[k - 1:k + 2])
        den = lm - 2.0 * l0 + lp
        if den < 0:
            peak = float(np.exp(l0 - (lm - lp) ** 2 / (8.0 * den)))
    half = 0.5 * peak
    widths = []
    for step in (-1, 1):
        i = k
        while 0 <= i + step < s.size and s[i + step] >= half:
            i += step
        j = i + step
        if not 0 <= j < s.size:
            continue
        xc = x[i] + (x[j] - x[i]) * (s[i] - half) / (s[i] - s[j])
        widths.append(abs(xc - x0_m))
    if not widths:
        return None
    return offset_from_halfwidth(float(np.mean(widths)), alpha_per_m, n)


def zone_distance_m(protection_m: float | None = None, outer_diameter_m: float | None = None) -> float:
    """Largest distance from the fibre (in the tunnel) of an event inside the protection zone (m): the
    protection distance beyond the outer edge plus the outer radius, defaults from ``tunnel_limits.toml``."""
    from physics.tunnel_geometry import tunnel_defaults

    d = tunnel_defaults()
    prot = float(d["protection_zone_m"] if protection_m is None else protection_m)
    diam = float(d["outer_diameter_m"] if outer_diameter_m is None else outer_diameter_m)
    if not (math.isfinite(prot) and prot >= 0 and math.isfinite(diam) and diam >= 0):
        raise ValidationError(f"protection_m = {prot!r}, outer_diameter_m = {diam!r}: give distances >= 0 m")
    return prot + diam / 2.0


__all__ = ["fit_offset", "footprint", "half_power_halfwidth", "offset_from_halfwidth", "zone_distance_m"]
