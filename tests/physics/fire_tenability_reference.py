"""Numpy reference of one tenability record (:class:`physics.fire_sim_tenability.TenabilityTracker.update` as it
was before its kernels, :mod:`physics._kernels.fire_tenability`): the head measures of
:func:`physics.fire_sim_tenability.head_fields`, the trapezoid FED sums and the linear first crossing, kept as they
were for the tests to compare."""

from __future__ import annotations

import numpy as np

from physics.fire_correlations import FED_THRESHOLD
from physics.fire_sim_tenability import head_fields
from physics.fire_tenability import RADIANT_LIMIT_KW_M2


class ReferenceTracker:
    """FEDs (``fed_asphyxiant``, ``fed_heat``) and first failure ``times`` (4, N) over the records given to
    :meth:`update`."""

    def __init__(self, network):
        n = network.n_compartments
        self.network = network
        self.fed_asphyxiant, self.fed_heat = np.zeros(n), np.zeros(n)
        self.times = np.full((4, n), np.inf)
        self._t = self._rates = self._y = None

    def update(self, t_s: float, state: dict) -> dict:
        m = head_fields(self.network, state)
        t = float(t_s)
        rates = (m["asphyxiant_rate"], m["heat_rate"])
        if self._t is not None:
            dt_min = (t - self._t) / 60.0
            self.fed_asphyxiant = self.fed_asphyxiant + 0.5 * (rates[0] + self._rates[0]) * dt_min
            self.fed_heat = self.fed_heat + 0.5 * (rates[1] + self._rates[1]) * dt_min
        y = np.stack([self.fed_asphyxiant, self.fed_heat, m["radiant_kw_m2"], m["extinction_per_m"]])
        thr = np.stack(np.broadcast_arrays(FED_THRESHOLD, FED_THRESHOLD, RADIANT_LIMIT_KW_M2,
                                           m["extinction_limit_per_m"] * np.ones(y.shape[1])))
        hit = np.isinf(self.times) & (y >= thr)
        if np.any(hit):
            if self._t is None:
                self.times[hit] = t
            else:
                with np.errstate(divide="ignore", invalid="ignore"):
                    f = (thr - self._y) / (y - self._y)
                at = self._t + np.clip(np.nan_to_num(f), 0.0, 1.0) * (t - self._t)
                self.times[hit] = at[hit]
        self._t, self._rates, self._y = t, rates, y
        return m
