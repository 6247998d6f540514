"""Transient infinite-slope stability of a set of cells under a rain series (thin component).

:class:`SlopeStability` holds per-cell soil parameters and a piecewise-constant
rain series and, at each :meth:`~SlopeStability.step`, evaluates the
Iverson (2000) / TRIGRS pressure head and the factor of safety over a depth
profile at the new time (kernels and formulas: :mod:`physics._kernels.slope`).
Cells are a flat vector (``at="point"``); gridding, parameter zones and the
CLI are not part of this first slice.
"""

from __future__ import annotations

import numpy as np

from physics._kernels import slope as K
from twin.component import Component, FieldSpec, require_positive
from twin.errors import ValidationError

_INPUTS = {
    # field name: (params row, units, doc, valid_min)
    "topographic__slope_angle": (K.P_SLOPE, "rad", "slope angle delta", 0.0),
    "soil__effective_cohesion": (K.P_COHESION, "Pa", "effective cohesion c'", 0.0),
    "soil__friction_angle": (K.P_PHI, "rad", "effective friction angle phi'", 0.0),
    "soil__unit_weight": (K.P_GAMMA_S, "N/m3", "soil unit weight gamma_s", 0.0),
    "soil__saturated_hydraulic_conductivity": (K.P_KZ, "m/s", "vertical Ks (Kz)", 0.0),
    "soil__effective_diffusivity": (
        K.P_DHAT,
        "m2/s",
        "D_hat of t* = t D_hat / Z^2 (iverson_dhat or trigrs_dhat)",
        0.0,
    ),
    "water_table__depth": (K.P_WATER_TABLE, "m", "initial steady water-table depth d", 0.0),
    "soil__long_term_infiltration_rate": (K.P_I_LT, "m/s", "long-term infiltration I_LT", 0.0),
    "soil__depth": (K.P_SOIL_DEPTH, "m", "soil depth (bottom of the depth profile)", 0.0),
}


class SlopeStability(Component):
    """Factor of safety per cell, advanced in time over a held rain series.

    Parameters
    ----------
    rain : array (n_intervals,) or (n_intervals, n_cells)
        Rain intensity (m/s), constant over each interval.
    t_edges : array (n_intervals + 1,)
        Interval boundaries (s), increasing, on the component's clock (t = 0 at start).
    n_depths : int
        Depth levels Z_j = soil_depth (j + 1) / n_depths.
    gamma_w : float
        Unit weight of water (N/m^3).
    **cells
        One 1-D array (or scalar) per input field of :attr:`fields`, in its units.
    """

    name = "SlopeStability"
    cite_as = (
        "Iverson 2000, WRR 36:1897-1910; Baum, Savage & Godt 2008, "
        "USGS Open-File Report 2008-1159 (TRIGRS)"
    )
    fields = {
        **{
            k: FieldSpec(
                u,
                "in",
                doc,
                at="point",
                attr="_" + k.replace("__", "_"),
                fixed=True,
                valid_min=vmin,
            )
            for k, (_, u, doc, vmin) in _INPUTS.items()
        },
        "factor_of_safety": FieldSpec(
            "1", "out", "minimum FS over depths at the current time", at="point", attr="fs"
        ),
        "factor_of_safety__minimum": FieldSpec(
            "1", "out", "minimum FS over depths and steps so far", at="point", attr="fs_min"
        ),
        "factor_of_safety__depth_of_minimum": FieldSpec(
            "m", "out", "depth of factor_of_safety__minimum", at="point", attr="z_min"
        ),
        "time_of_failure": FieldSpec(
            "s", "out", "first step time with FS < 1 (NaN: never)", at="point", attr="t_fail"
        ),
    }

    def __init__(
        self, rain, t_edges, *, n_depths: int = 10, gamma_w: float = K.GAMMA_W, **cells
    ) -> None:
        unknown = set(cells) - set(_INPUTS)
        missing = set(_INPUTS) - set(cells)
        if unknown or missing:
            raise ValidationError(
                f"{self.name}: unknown fields {sorted(unknown)}, "
                f"missing fields {sorted(missing)}; inputs: {sorted(_INPUTS)}"
            )
        arrays = {k: np.atleast_1d(np.asarray(v, dtype=np.float64)) for k, v in cells.items()}
        n = max(a.size for a in arrays.values())
        self.params = np.empty((K.N_PARAMS, n))
        for k, (row, _, _, _) in _INPUTS.items():
            a = arrays[k]
            if a.ndim != 1 or a.size not in (1, n):
                raise ValidationError(
                    f"{self.name}: {k} has shape {a.shape}, expected ({n},) or scalar"
                )
            if not np.all(np.isfinite(a)) or np.any(a < 0):
                raise ValidationError(f"{self.name}: {k} must be finite and >= 0")
            self.params[row] = a
            setattr(self, self.fields[k].attr, self.params[row])
        for k in (
            "topographic__slope_angle",
            "soil__unit_weight",
            "soil__saturated_hydraulic_conductivity",
            "soil__effective_diffusivity",
            "soil__depth",
        ):
            if np.any(self.params[_INPUTS[k][0]] <= 0):
                raise ValidationError(f"{self.name}: {k} must be > 0")
        rain = np.asarray(rain, dtype=np.float64)
        self.rain = np.ascontiguousarray(rain[:, None] if rain.ndim == 1 else rain)
        self.t_edges = np.asarray(t_edges, dtype=np.float64)
        if self.rain.shape[1] not in (1, n) or self.t_edges.shape != (self.rain.shape[0] + 1,):
            raise ValidationError(
                f"{self.name}: rain {self.rain.shape} and t_edges "
                f"{self.t_edges.shape} do not match {n} cells"
            )
        if np.any(np.diff(self.t_edges) <= 0) or np.any(self.rain < 0):
            raise ValidationError(f"{self.name}: t_edges must increase and rain be >= 0")
        self.n_depths = int(require_positive(n_depths, "n_depths"))
        self.gamma_w = require_positive(gamma_w, "gamma_w")
        self.t = 0.0
        self.fs = np.full(n, np.nan)
        self.fs_min = np.full(n, np.inf)
        self.z_min = np.full(n, np.nan)
        self.t_fail = np.full(n, np.nan)
        self._none = np.empty((0, n))

    def step(self, dt: float) -> float:
        """Advance the evaluation time by ``dt`` (s), evaluate FS there; returns ``dt``."""
        dt = require_positive(dt, "dt")
        self.t += dt
        n = self.params.shape[1]
        fs, z, tf = np.empty(n), np.empty(n), np.empty(n)
        K.factor_of_safety(
            self.params,
            self.rain,
            self.t_edges,
            np.array([self.t]),
            self.n_depths,
            self.gamma_w,
            fs,
            z,
            tf,
            self._none,
        )
        self.fs = fs
        lower = fs < self.fs_min
        self.fs_min = np.where(lower, fs, self.fs_min)
        self.z_min = np.where(lower, z, self.z_min)
        self.t_fail = np.where(np.isnan(self.t_fail), tf, self.t_fail)
        return dt

    run_one_step = step
