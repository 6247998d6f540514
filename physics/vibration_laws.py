"""Ground-vibration attenuation laws: blasting (GB 6722-2014) and continuous sources (Bornitz).

Pure numpy functions, arrays in and arrays out (scalars broadcast). Every input is checked:
a bad value raises :class:`twin.errors.ValidationError` naming the argument and the value.

Units
-----
The blasting law keeps the standard's own units: peak particle velocity (PPV) in **cm/s**,
charge in kg per delay, distance in m. The Bornitz law is unit-agnostic in velocity (the
output has the unit of ``v1``); distances are in m.

Sources
-------
- GB 6722-2014 *Safety regulations for blasting* (爆破安全规程), 13.2.4, formula (1), the safe distance
  R = (K/V)^(1/α)·Q^(1/3) (Q: total charge fired at once, or the largest charge per delay), i.e.
  V = K·(Q^(1/3)/R)^α; K and α by ground class (the standard's Table 3, for when no site trials exist;
  as quoted in references.md: hard rock 50–150 / 1.3–1.5, medium 150–250 / 1.5–1.8, soft 250–350 / 1.8–2.0).
- Bornitz, G. (1931) *Über die Ausbreitung der von Großkolbenmaschinen erzeugten
  Bodenschwingungen in die Tiefe*, Springer; in the form used by Woods & Jedele (1985) and
  Amick & Gendreau (2000): v(r) = v1·(r1/r)^n·exp(−a·(r − r1)), n 0.5 for surface (Rayleigh)
  waves, 1 for body waves, material damping a = π·f·η/c.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from twin.errors import ValidationError

__all__ = [
    "blast_max_charge_kg",
    "blast_ppv_cm_s",
    "blast_safe_distance_m",
    "bornitz_distance_m",
    "bornitz_ppv",
    "material_damping_per_m",
]


def _checked(
    name: str, value: ArrayLike, *, positive: bool = True, allow_zero: bool = False
) -> NDArray[np.float64]:
    """Return ``value`` as a float64 array after checking it is finite and (strictly) positive.

    Raises
    ------
    ValidationError
        Naming ``name`` and the first offending value.
    """
    arr = np.asarray(value, dtype=np.float64)
    bad = ~np.isfinite(arr)
    if positive:
        bad |= (arr < 0.0) if allow_zero else (arr <= 0.0)
    if np.any(bad):
        first = arr[bad].flat[0] if arr.ndim else float(arr)
        need = ">= 0" if allow_zero else "> 0"
        raise ValidationError(f"{name} = {first!r}: must be finite and {need}; check the input")
    return arr


def blast_ppv_cm_s(
    charge_kg: ArrayLike, distance_m: ArrayLike, k: ArrayLike, alpha: ArrayLike
) -> NDArray[np.float64]:
    """Peak particle velocity of a blast, V = K·(Q^(1/3)/R)^α (GB 6722-2014, 13.2.4).

    Parameters
    ----------
    charge_kg : array_like
        Q, the largest charge fired in one delay, kg (> 0).
    distance_m : array_like
        R, distance from the charge to the protected object, m (> 0).
    k, alpha : array_like
        Site coefficient K and attenuation exponent α of the ground class (GB 6722-2014
        Table 3, as quoted in references.md: hard rock K 50–150, α 1.3–1.5; medium 150–250, 1.5–1.8;
        soft 250–350, 1.8–2.0).

    Returns
    -------
    numpy.ndarray
        V in **cm/s** (the standard's unit; divide by 100 for m/s).
    """
    q = _checked("charge_kg", charge_kg)
    r = _checked("distance_m", distance_m)
    kk = _checked("k", k)
    a = _checked("alpha", alpha)
    return kk * (np.cbrt(q) / r) ** a


def blast_safe_distance_m(
    v_cm_s: ArrayLike, charge_kg: ArrayLike, k: ArrayLike, alpha: ArrayLike
) -> NDArray[np.float64]:
    """Safe distance for a PPV limit, R = (K/V)^(1/α)·Q^(1/3) (GB 6722-2014, 13.2.4).

    Parameters
    ----------
    v_cm_s : array_like
        Allowed PPV V, cm/s (> 0).
    charge_kg : array_like
        Q, charge per delay, kg (> 0).
    k, alpha : array_like
        Ground-class coefficients as in :func:`blast_ppv_cm_s`.

    Returns
    -------
    numpy.ndarray
        R in m: at this distance or beyond, the blast gives at most ``v_cm_s``.

    Examples
    --------
    K 200, α 1.6, Q 10 kg, V 2 cm/s → R = (200/2)^(1/1.6)·10^(1/3) ≈ 38.3 m.
    """
    v = _checked("v_cm_s", v_cm_s)
    q = _checked("charge_kg", charge_kg)
    kk = _checked("k", k)
    a = _checked("alpha", alpha)
    return (kk / v) ** (1.0 / a) * np.cbrt(q)


def blast_max_charge_kg(
    v_cm_s: ArrayLike, distance_m: ArrayLike, k: ArrayLike, alpha: ArrayLike
) -> NDArray[np.float64]:
    """Largest charge per delay for a PPV limit, Q = (R·(V/K)^(1/α))³ (GB 6722-2014, 13.2.4).

    Parameters
    ----------
    v_cm_s : array_like
        Allowed PPV V, cm/s (> 0).
    distance_m : array_like
        R, distance from the charge to the protected object, m (> 0).
    k, alpha : array_like
        Ground-class coefficients as in :func:`blast_ppv_cm_s`.

    Returns
    -------
    numpy.ndarray
        Q in kg per delay.
    """
    v = _checked("v_cm_s", v_cm_s)
    r = _checked("distance_m", distance_m)
    kk = _checked("k", k)
    a = _checked("alpha", alpha)
    return (r * (v / kk) ** (1.0 / a)) ** 3


def bornitz_ppv(
    v1: ArrayLike, r1_m: ArrayLike, r_m: ArrayLike, n: ArrayLike, alpha_per_m: ArrayLike
) -> NDArray[np.float64]:
    """PPV at distance r from a reference PPV at r1, v(r) = v1·(r1/r)^n·exp(−a·(r − r1)) (Bornitz 1931).

    Parameters
    ----------
    v1 : array_like
        Reference PPV measured (or typical) at ``r1_m`` (>= 0; output has its unit).
    r1_m : array_like
        Reference distance, m (> 0).
    r_m : array_like
        Distance where the PPV is wanted, m (> 0). Distances below ``r1_m`` extrapolate inward.
    n : array_like
        Geometric spreading exponent (>= 0): 0.5 surface (Rayleigh) waves, 1 body waves,
        2 body waves along the surface (Amick & Gendreau 2000).
    alpha_per_m : array_like
        Material damping coefficient a, 1/m (>= 0); see :func:`material_damping_per_m`.

    Returns
    -------
    numpy.ndarray
        v(r), same unit as ``v1``.
    """
    vv = _checked("v1", v1, allow_zero=True)
    r1 = _checked("r1_m", r1_m)
    r = _checked("r_m", r_m)
    nn = _checked("n", n, allow_zero=True)
    a = _checked("alpha_per_m", alpha_per_m, allow_zero=True)
    return vv * (r1 / r) ** nn * np.exp(-a * (r - r1))


def material_damping_per_m(
    f_hz: ArrayLike, loss_factor: ArrayLike, wave_speed_m_s: ArrayLike
) -> NDArray[np.float64]:
    """Material damping coefficient a = π·f·η/c (Woods & Jedele 1985; Amick & Gendreau 2000).

    Parameters
    ----------
    f_hz : array_like
        Dominant frequency f, Hz (> 0).
    loss_factor : array_like
        Loss factor η (>= 0; η = 2ξ with ξ the damping ratio), typically 0.01–0.1.
    wave_speed_m_s : array_like
        Wave speed c, m/s (> 0), e.g. the Rayleigh or shear-wave speed of the ground.

    Returns
    -------
    numpy.ndarray
        a in 1/m.
    """
    f = _checked("f_hz", f_hz)
    eta = _checked("loss_factor", loss_factor, allow_zero=True)
    c = _checked("wave_speed_m_s", wave_speed_m_s)
    return np.pi * f * eta / c


def bornitz_distance_m(
    v_limit: ArrayLike, v1: ArrayLike, r1_m: ArrayLike, n: ArrayLike, alpha_per_m: ArrayLike
) -> NDArray[np.float64]:
    """Distance at which the Bornitz law falls to ``v_limit``: the inverse of :func:`bornitz_ppv` in r.

    Solves ln v1 + n·ln(r1/r) − a·(r − r1) = ln v_limit by bisection on ln r (the left side falls
    monotonically with r for n, a >= 0), to a relative error below 1e-9.

    Parameters
    ----------
    v_limit : array_like
        The PPV to reach (> 0), same unit as ``v1``.
    v1, r1_m, n, alpha_per_m : array_like
        As in :func:`bornitz_ppv` (n and a not both 0).

    Returns
    -------
    numpy.ndarray
        r in m; 0 where even 1 mm from the source stays below ``v_limit``, inf where the law
        never falls to it (n = a = 0 and v1 > v_limit).
    """
    vl = _checked("v_limit", v_limit)
    vv = _checked("v1", v1)
    r1 = _checked("r1_m", r1_m)
    nn = _checked("n", n, allow_zero=True)
    a = _checked("alpha_per_m", alpha_per_m, allow_zero=True)
    vl, vv, r1, nn, a = np.broadcast_arrays(vl, vv, r1, nn, a)

    def excess(r: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.log(vv) + nn * np.log(r1 / r) - a * (r - r1) - np.log(vl)

    lo = np.full(vl.shape, np.log(1e-3))
    hi = np.full(vl.shape, np.log(1e7))
    never = excess(np.exp(hi)) > 0
    below = excess(np.exp(lo)) <= 0
    for _ in range(100):
        mid = (lo + hi) / 2
        pos = excess(np.exp(mid)) > 0
        lo = np.where(pos, mid, lo)
        hi = np.where(pos, hi, mid)
    r = np.exp((lo + hi) / 2)
    return np.where(below, 0.0, np.where(never, np.inf, r))
