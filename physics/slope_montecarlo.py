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

:func:`monte_carlo` runs the transient model (``physics._kernels.slope``) over members without
holding them all: member m's standard normals come from its own ``SeedSequence`` child
(:func:`member_normals`), are drawn in chunks (numpy, while the numba kernel counts the
previous chunk) and transformed inside the kernel, cell by cell, only as far as needed to
decide whether the member fails (FS < 1 at some depth and output time): a lower bound of
the capped FS from the distributions' lower bounds of phi' and c', then the capped FS of
the drawn values, then the exact bounds and the transient head (kernel docstring). The
result is the count of failing members per cell, the same as evaluating every member in
full (tested member by member against the numpy reference).
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


# -- Monte Carlo of the transient model (numba kernel; members drawn in chunks) ---------------
_DIST_KIND = {"normal": 0, "lognormal": 1, "uniform": 2, "truncnorm": 3}
_UNITS = {"c_kpa": (1000.0, "P_COHESION"), "phi_deg": (np.pi / 180.0, "P_PHI"),
          "gamma_kn_m3": (1000.0, "P_GAMMA_S"), "ks_m_s": (1.0, "P_KZ"),
          "depth_m": (1.0, "P_SOIL_DEPTH"), "water_table_m": (1.0, "P_WATER_TABLE")}
DHAT = ("iverson", "trigrs")
#: Members' standard normals are drawn in chunks of at most this many bytes (two chunks are
#: held: one counted by the kernel while the next is drawn).
CHUNK_BYTES = 128e6


def _spec_row(spec: ParamSpec) -> np.ndarray:
    """The kernel's constants of one distribution (see ``physics._kernels.slope.draw``)."""
    row = np.zeros(6)
    if spec.dist == "normal":
        row[:2] = spec.default, spec.sd
    elif spec.dist == "lognormal":
        row[:2] = lognormal_params(spec.default, spec.cv)
    elif spec.dist == "uniform":
        row[:2] = spec.low, spec.high
    else:
        row[:] = (spec.default, spec.sd, ndtr((spec.low - spec.default) / spec.sd),
                  ndtr((spec.high - spec.default) / spec.sd), spec.low, spec.high)
    return row


def _zone_tables(zones, table: SoilTable, fixed):
    """(zone_idx per cell, kinds, spec, zone codes in row order) for the kernel."""
    names = list(PARAMS)
    bad = [f for f in fixed if f not in names]
    if bad:
        raise ValidationError(f"fixed = {list(fixed)!r}: {bad} are not parameters (allowed: {names})")
    specs = sorted(table.zones.values(), key=lambda s: s.code)
    codes = np.array([s.code for s in specs], dtype=np.int64)
    z = np.asarray(zones).ravel().astype(np.int64)
    present = np.unique(z[z >= 0])
    unknown = [int(c) for c in present if c not in codes]
    if unknown:
        raise ValidationError(f"zones: codes {unknown} are not in the table (codes: {codes.tolist()}; "
                              f"negative codes mark cells outside the model)")
    zone_idx = np.where(z >= 0, np.searchsorted(codes, np.maximum(z, 0)), -1).astype(np.int64)
    kinds = np.full((len(specs), len(names)), -1, dtype=np.int64)
    spec = np.zeros((len(specs), len(names), 6))
    for r, s in enumerate(specs):
        for q, name in enumerate(names):
            if name in fixed:
                continue
            ps = getattr(s, name)
            kinds[r, q] = _DIST_KIND[ps.dist]
            spec[r, q] = _spec_row(ps)
    return zone_idx, kinds, spec, codes


def _units(zone_idx: np.ndarray, per: str) -> tuple[np.ndarray, int]:
    """Column of the members' normals for each cell: the cell (per="cell") or its zone."""
    if per == "cell":
        return np.arange(zone_idx.size, dtype=np.int64), zone_idx.size
    n_zones = int(zone_idx.max()) + 1 if (zone_idx >= 0).any() else 1
    return np.maximum(zone_idx, 0).astype(np.int64), n_zones


def member_normals(seed: int, member: int, n_units: int) -> np.ndarray:
    """The standard normals (7, n_units) of one member: ``default_rng(SeedSequence(seed).spawn(
    member + 1)[member]).standard_normal((7, n_units))``, rows in the order of ``PARAMS``.

    One child seed per member, so a member's draws do not depend on how many members are run
    nor on the chunking (``SeedSequence.spawn`` keys its children 0, 1, 2, ...).
    """
    child = np.random.SeedSequence(seed).spawn(member + 1)[member]
    return np.random.default_rng(child).standard_normal((len(PARAMS), n_units))


def member_params(base, zones, seed: int, member: int, *, table: SoilTable | None = None,
                  per: str = "cell", dhat: str = "iverson", fixed=()) -> np.ndarray:
    """One member's (N_PARAMS, n_cells) params as :func:`monte_carlo` draws them (numpy, with
    :func:`transform`): for checking the kernel and for looking at a member."""
    from physics._kernels import slope as K

    table = table or load_table()
    base = np.asarray(base, float)
    zone_idx, kinds, _, codes = _zone_tables(zones, table, fixed)
    unit, n_units = _units(zone_idx, per)
    zn = member_normals(seed, member, n_units)
    rho = table.correlation.c_phi
    names = list(PARAMS)
    ic, ip = names.index("c_kpa"), names.index("phi_deg")
    if rho != 0.0 and kinds[:, ic].min() >= 0 and kinds[:, ip].min() >= 0:
        zn[ip] = rho * zn[ic] + np.sqrt(1.0 - rho * rho) * zn[ip]
    out = base.copy()
    specs = {s.code: s for s in table.zones.values()}
    for r, code in enumerate(codes):
        cells = zone_idx == r
        if not cells.any():
            continue
        for q, name in enumerate(names):
            if kinds[r, q] < 0:
                continue
            x = transform(zn[q, unit[cells]], getattr(specs[int(code)], name))
            if name == "d0_m2_s":
                slope = base[K.P_SLOPE, cells]
                out[K.P_DHAT, cells] = (K.trigrs_dhat if dhat == "trigrs" else K.iverson_dhat)(x, slope)
            else:
                scale, row = _UNITS[name]
                out[getattr(K, row), cells] = x * scale
    # the water table is never below the soil base (the deterministic set-up's rule, physics.slope_city)
    out[K.P_WATER_TABLE] = np.minimum(out[K.P_WATER_TABLE], out[K.P_SOIL_DEPTH])
    return out


def monte_carlo(base, zones, n_members: int, seed: int, *, rain, t_edges, t_eval,
                n_depths: int = 10, table: SoilTable | None = None, per: str = "cell",
                dhat: str = "iverson", gamma_w: float | None = None, progress=None,
                fixed=(), chunk_members: int | None = None, failure_time: bool = False) -> dict:
    """Probability of failure per cell: the fraction of members with FS < 1 at some depth
    and output time, over ``n_members`` parameter sets drawn from the zone table.

    Parameters
    ----------
    base : (N_PARAMS, n_cells) float64
        The deterministic run's params (``physics._kernels.slope`` rows, SI units). Slope,
        I_LT and the parameters listed in ``fixed`` are taken from it for every member.
    zones : (n_cells,) int
        Zone codes of the table (``physics.slope_params``); a negative code marks a cell
        outside the model (p = NaN).
    n_members : int
        Members (>= 1).
    seed : int
        Member m draws ``member_normals(seed, m, n_units)`` (one ``SeedSequence`` child per
        member): same seed, same p, whatever ``chunk_members``; the first k members of a run
        are the members of a k-member run.
    rain, t_edges, t_eval
        As for ``factor_of_safety``: rain (n_intervals, n_cells) or (n_intervals, 1), m/s.
    n_depths : int
        Depth levels per member (Z_j = h (j + 1) / n_depths of the member's h).
    table : SoilTable, optional
        The zone table (default: the packaged one) with each parameter's distribution.
    per : {"cell", "zone"}
        "cell": every cell draws its own values (no spatial correlation); "zone": one draw
        per zone and member, shared by its cells (full correlation within a zone).
    dhat : {"iverson", "trigrs"}
        D_hat from the drawn D0: Iverson's (2000) 4 D0 cos^2(delta), the default because it
        is the form of the infinite-slope solution the kernel implements and the one in
        ``docs/references.md``; or TRIGRS's 4 D0 / cos^2(delta) (Baum et al. 2008).
    gamma_w : float
        Unit weight of water (N/m^3), default ``GAMMA_W``.
    progress : callable(done_members, n_members), optional
        Called after each chunk.
    fixed : sequence of str
        Table parameters (``PARAMS`` names) not sampled but taken from ``base`` (e.g.
        ``("depth_m",)`` to keep the slope-depth rule's depths).
    chunk_members : int, optional
        Members per chunk (default: as many as fit in ``CHUNK_BYTES`` of normals).
    failure_time : bool
        Also find each failing member's first output time with FS < 1 (costs a scan of the
        earlier outputs for failing members only, and an int32 (n_cells, n_eval) count):
        adds ``p_by_time`` and ``t_fail_median``.

    Returns
    -------
    dict
        ``p`` (n_cells,) probability of FS < 1 (NaN outside the model; 0 on flat cells),
        ``se`` (n_cells,) its binomial standard error sqrt(p (1 - p) / n), ``n_members``,
        ``seed``, ``n_valid`` (n_cells,) members inside the model per cell (members whose
        drawn h, Kz or gamma_s is <= 0 are left out), ``per``, ``dhat``. With
        ``failure_time``: ``p_by_time`` (n_eval, n_cells) probability of FS < 1 at some
        depth by t_eval[i] (non-decreasing in i for increasing t_eval; the last row is ``p``)
        and ``t_fail_median`` (n_cells,) the earliest output time (s) by which at least half
        of the failing members have failed (the lower median; NaN where none fails).
    """
    from concurrent.futures import ThreadPoolExecutor

    import numba

    from physics._kernels import slope as K

    if not (isinstance(n_members, (int, np.integer)) and not isinstance(n_members, bool) and n_members >= 1):
        raise ValidationError(f"n_members = {n_members!r}: must be an integer >= 1")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValidationError(f"seed = {seed!r}: must be an integer >= 0 (runs must be reproducible)")
    if per not in ("cell", "zone"):
        raise ValidationError(f"per = {per!r}: must be 'cell' or 'zone'")
    if dhat not in DHAT:
        raise ValidationError(f"dhat = {dhat!r}: must be one of {DHAT}")
    if not (isinstance(n_depths, (int, np.integer)) and n_depths >= 1):
        raise ValidationError(f"n_depths = {n_depths!r}: must be an integer >= 1")
    gamma_w = K.GAMMA_W if gamma_w is None else float(gamma_w)
    base = np.ascontiguousarray(base, dtype=np.float64)
    if base.ndim != 2 or base.shape[0] != K.N_PARAMS:
        raise ValidationError(f"base has shape {base.shape}: expected ({K.N_PARAMS}, n_cells)")
    n_cells = base.shape[1]
    if np.asarray(zones).size != n_cells:
        raise ValidationError(f"zones has {np.asarray(zones).size} values: expected one per cell ({n_cells})")
    rain = np.asarray(rain, dtype=np.float64)
    rain = np.ascontiguousarray(rain[:, None] if rain.ndim == 1 else rain)
    t_edges = np.ascontiguousarray(t_edges, dtype=np.float64)
    t_eval = np.ascontiguousarray(np.atleast_1d(t_eval), dtype=np.float64)
    if rain.ndim != 2 or rain.shape[1] not in (1, n_cells) or t_edges.shape != (rain.shape[0] + 1,):
        raise ValidationError(f"rain {rain.shape} and t_edges {t_edges.shape}: expected "
                              f"(n, 1 or {n_cells}) and (n + 1,)")
    if np.any(np.diff(t_edges) <= 0):
        raise ValidationError("t_edges: must increase strictly")
    table = table or load_table()
    zone_idx, kinds, spec, _ = _zone_tables(zones, table, tuple(fixed))
    unit, n_units = _units(zone_idx, per)
    lags, lag_idx, t_desc = K.lag_table(t_edges, t_eval)
    if chunk_members is None:
        chunk_members = int(max(1, min(n_members, CHUNK_BYTES // (8 * K.N_MC * max(n_units, 1)))))
    if not (isinstance(chunk_members, (int, np.integer)) and chunk_members >= 1):
        raise ValidationError(f"chunk_members = {chunk_members!r}: must be an integer >= 1")
    children = np.random.SeedSequence(int(seed)).spawn(int(n_members))
    fails = np.zeros(n_cells, dtype=np.int64)
    valid = np.zeros(n_cells, dtype=np.int64)
    first = np.zeros((n_cells, t_eval.size if failure_time else 0), dtype=np.int32)
    size = min(chunk_members, n_members)
    bufs = [np.empty((size, K.N_MC, n_units)), np.empty((size, K.N_MC, n_units))]
    starts = list(range(0, n_members, chunk_members))

    def fill(buf, start):
        m = min(chunk_members, n_members - start)
        for q in range(m):
            np.random.default_rng(children[start + q]).standard_normal(out=buf[q])
        return buf[:m]

    threads = numba.get_num_threads()  # thread-local in numba: carry the caller's setting

    def count(normals):
        numba.set_num_threads(threads)
        K.member_failures(base, zone_idx, unit, kinds, spec, normals, float(table.correlation.c_phi),
                          dhat == "trigrs", rain, t_edges, t_eval, int(n_depths), gamma_w,
                          lags, lag_idx, t_desc, fails, valid, first)

    # the kernel (numba, GIL released) counts one chunk while this thread draws the next
    with ThreadPoolExecutor(max_workers=1) as pool:
        normals = fill(bufs[0], starts[0])
        for n, start in enumerate(starts):
            job = pool.submit(count, normals)
            if n + 1 < len(starts):
                normals = fill(bufs[(n + 1) % 2], starts[n + 1])
            job.result()
            if progress is not None:
                progress(start + min(chunk_members, n_members - start), int(n_members))
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(valid > 0, fails / np.maximum(valid, 1), np.nan)
        se = np.sqrt(p * (1.0 - p) / np.maximum(valid, 1))
    out = {"p": p, "se": se, "n_members": int(n_members), "seed": int(seed), "n_valid": valid,
           "per": per, "dhat": dhat}
    if failure_time:
        by_time = np.cumsum(first, axis=1)  # (n_cells, n_eval)
        v = valid[:, None]
        with np.errstate(invalid="ignore", divide="ignore"):
            out["p_by_time"] = np.where(v > 0, by_time / np.maximum(v, 1), np.nan).T
        half = (fails + 1) // 2  # the lower median: ceil(n_fail / 2)-th failure
        idx = np.argmax(by_time >= half[:, None], axis=1) if t_eval.size else np.zeros(n_cells, int)
        out["t_fail_median"] = np.where(fails > 0, t_eval[idx] if t_eval.size else np.nan, np.nan)
    return out
