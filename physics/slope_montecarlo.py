"""Seeded, reproducible Monte Carlo sampling of slope soil parameters and the probability
of failure.

Every distribution is drawn as a transform of standard normals ``z`` from one
``numpy.random.Generator`` (a Gaussian copula), vectorised over (members, cells):

* ``normal``    : x = mean + sd * z
* ``lognormal`` : parameterised by its arithmetic mean m and coefficient of variation v;
  sigma_ln^2 = ln(1 + v^2), mu_ln = ln(m) - sigma_ln^2 / 2, x = exp(mu_ln + sigma_ln * z),
  so that E[x] = m and sd[x] / E[x] = v exactly.
* ``uniform``   : x = low + (high - low) * Phi(z)
* ``truncnorm`` : normal(mean, sd) truncated to [low, high] by inverse CDF:
  u = Phi(a) + (Phi(b) - Phi(a)) * Phi(z), a = (low - mean)/sd, b = (high - mean)/sd,
  x = mean + sd * Phi^-1(u), then clipped to [low, high] against round-off.

Optional correlation rho between c' and phi' (table ``[correlation] c_phi``): the two standard
normals are correlated by the Cholesky factor of [[1, rho], [rho, 1]]:
z_phi <- rho * z_c + sqrt(1 - rho^2) * z_phi. rho is the correlation of the underlying normals
(for normal marginals it is the correlation of c' and phi' themselves; for others it is close to it).

``probability_of_failure(fs) = mean(fs < 1)`` over members, with the binomial standard error
sqrt(p (1 - p) / n).
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr, ndtri

from physics.slope_params import PARAMS, ParamSpec, SoilTable, load_table
from twin.errors import ValidationError


def lognormal_params(mean: float, cv: float) -> tuple[float, float]:
    """(mu_ln, sigma_ln) of a lognormal with arithmetic mean ``mean`` and CV ``cv``."""
    if not (mean > 0 and cv > 0):
        raise ValidationError(f"lognormal mean = {mean}, cv = {cv}: both must be > 0")
    s2 = np.log1p(cv * cv)
    return float(np.log(mean) - s2 / 2.0), float(np.sqrt(s2))


def transform(z: np.ndarray, spec: ParamSpec) -> np.ndarray:
    """Map standard normals ``z`` to draws of ``spec``'s distribution (mean = its default)."""
    z = np.asarray(z, float)
    if spec.dist == "normal":
        return spec.default + spec.sd * z
    if spec.dist == "lognormal":
        mu, sig = lognormal_params(spec.default, spec.cv)
        return np.exp(mu + sig * z)
    if spec.dist == "uniform":
        return spec.low + (spec.high - spec.low) * ndtr(z)
    if spec.dist == "truncnorm":
        a = ndtr((spec.low - spec.default) / spec.sd)
        b = ndtr((spec.high - spec.default) / spec.sd)
        u = a + (b - a) * ndtr(z)
        return np.clip(spec.default + spec.sd * ndtri(u), spec.low, spec.high)
    raise ValidationError(f"dist = {spec.dist!r}: not one of normal, lognormal, uniform, truncnorm")


def sample(spec: ParamSpec, size, rng: np.random.Generator) -> np.ndarray:
    """``size`` independent draws of one parameter."""
    return transform(rng.standard_normal(size), spec)


def _rng(seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        raise ValidationError("seed = None: give an int seed or a numpy.random.Generator (runs must be reproducible)")
    return np.random.default_rng(seed)


def sample_members(zones, n_members: int, seed, *, table: SoilTable | None = None,
                   per: str = "cell") -> dict[str, np.ndarray]:
    """Parameter members for every cell: {param: array (n_members, n_cells)} (float64).

    ``zones``: zone codes (any shape; flattened in C order). ``seed``: int or Generator; the
    same seed gives the same members. ``per="cell"`` draws every cell independently (no
    spatial correlation); ``per="zone"`` draws once per zone and member, shared by all its
    cells (full correlation within a zone). Draw order is fixed: standard normals of shape
    (n_params, n_members, n_units) in the order of ``PARAMS``.
    """
    table = table or load_table()
    if not (isinstance(n_members, (int, np.integer)) and n_members >= 1):
        raise ValidationError(f"n_members = {n_members!r}: must be an integer >= 1")
    if per not in ("cell", "zone"):
        raise ValidationError(f"per = {per!r}: must be 'cell' or 'zone'")
    z = np.asarray(zones).ravel()
    codes = {s.code: s for s in table.zones.values()}
    present = np.unique(z)
    unknown = [int(c) for c in present if int(c) not in codes]
    if unknown:
        raise ValidationError(f"zones: codes {unknown} are not in the table (codes: {sorted(codes)})")
    rng = _rng(seed)
    names = list(PARAMS)
    if per == "cell":
        units = z
    else:
        units = np.arange(len(present))
    normals = rng.standard_normal((len(names), int(n_members), units.size))
    rho = table.correlation.c_phi
    ic, ip = names.index("c_kpa"), names.index("phi_deg")
    if rho != 0.0:
        normals[ip] = rho * normals[ic] + np.sqrt(1.0 - rho * rho) * normals[ip]
    out = {}
    for k, name in enumerate(names):
        vals = np.empty((int(n_members), units.size))
        for code, spec in codes.items():
            m = units == code if per == "cell" else present == code
            if m.any():
                vals[:, m] = transform(normals[k][:, m], getattr(spec, name))
        if per == "zone":
            idx = np.searchsorted(present, z)
            vals = vals[:, idx]
        out[name] = vals
    return out


def probability_of_failure(fs_members, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(p, se): fraction of members with FS < 1 along ``axis`` and its binomial standard error
    sqrt(p (1 - p) / n). Non-finite members are left out of n; a cell with none gives NaN."""
    fs = np.asarray(fs_members, float)
    valid = np.isfinite(fs)
    n = valid.sum(axis=axis)
    fails = (valid & (fs < 1.0)).sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(n > 0, fails / np.maximum(n, 1), np.nan)
        se = np.where(n > 0, np.sqrt(p * (1.0 - p) / np.maximum(n, 1)), np.nan)
    return p, se
