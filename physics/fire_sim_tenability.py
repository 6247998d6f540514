"""Tenability accumulated record by record during a fire run: the step-wise form of :func:`fire_tenability.assess`.

:class:`TenabilityTracker` takes the zone model's state at each record time
and keeps running FED sums (the trapezoid of :func:`fire_tenability.assess`,
term by term in the same order, so the numbers are those of
:func:`fire_tenability.assess_history` on the recorded history), the first
time each compartment fails each criterion (the same linear crossing as
:func:`fire_detection.first_crossing_s`) and each storey's ASET over its
escape route (:func:`fire_tenability.route_compartments`). One update costs
O(N); a run is O(T·N), not O(T²·N) as re-assessing the whole history at each
record would be.

A storey's status (``floor_status``): 2 once its route is untenable (its
ASET has passed), 1 where the route has smoke — visibility at head height
below :data:`SMOKE_VISIBILITY_M` (30 m) or an upper layer above
:data:`SMOKE_T_UPPER_K` (60 °C) — else 0. Both smoke thresholds are our
assumption (a route a person would see as smoke-logged), not a tenability
limit.
"""

from __future__ import annotations

import numpy as np

from physics._kernels import fire_tenability as TK
from physics.fire_correlations import AMBIENT_K, FED_THRESHOLD, SOOT_EXTINCTION_M2_KG, VISIBILITY_C
from physics.fire_network import COMPARTMENT_KINDS, FireNetwork
from physics.fire_sim_cache import per_network
from physics.fire_tenability import (
    CRITERIA,
    HEAD_HEIGHT_M,
    LARGE_SPACE_M2,
    RADIANT_LIMIT_KW_M2,
    SHAFT_KINDS,
    SIGMA,
    VISIBILITY_LIMIT_M,
    at_head,
    head_measures,
    route_compartments,
    stair_door_sides,
)

#: Status smoke thresholds (our assumption): visibility at head height (m), upper-layer temperature (K, 60 °C).
SMOKE_VISIBILITY_M = 30.0
SMOKE_T_UPPER_K = 333.15
#: Visibility reported where the air is clear (m): the measures' visibility is infinite without soot.
VISIBILITY_CAP_M = 100.0


def storey_routes(network: FireNetwork, *, include_rooms: bool = False) -> list[np.ndarray]:
    """Escape-route compartments of every storey (as :func:`fire_tenability.assess` takes them)."""
    sides = stair_door_sides(network)
    return [route_compartments(network, s, include_rooms=include_rooms, door_sides=sides)
            for s in range(network.n_storeys)]


def _routes_and_groups(network: FireNetwork, include_rooms: bool) -> tuple[list[np.ndarray], StoreyGroups]:
    routes = storey_routes(network, include_rooms=include_rooms)
    return routes, StoreyGroups(routes)


def storey_rooms(network: FireNetwork) -> list[np.ndarray]:
    """The non-shaft compartments of every storey."""
    shaft = np.isin(np.asarray(COMPARTMENT_KINDS)[network.kind], SHAFT_KINDS)
    return [np.flatnonzero((network.storey == s) & ~shaft) for s in range(network.n_storeys)]


def head_fields(network: FireNetwork, state: dict, *, head_height_m: float = HEAD_HEIGHT_M,
                t_ambient_k: float = AMBIENT_K) -> dict[str, np.ndarray]:
    """:func:`fire_tenability.head_measures` of a zone-model state given by its field names ((N,) arrays)."""
    z = state["layer_height"]
    zero = np.zeros(z.shape)
    co = at_head(z, state["upper_layer__co"], state["lower_layer__co"], head_height_m)
    co2 = at_head(z, state.get("upper_layer__co2", zero), state.get("lower_layer__co2", zero), head_height_m)
    return head_measures(network, t_upper_k=state["upper_layer__temperature"],
                         t_lower_k=state["lower_layer__temperature"], layer_height_m=z, co_ppm=co, co2=co2,
                         soot_upper=state.get("upper_layer__soot"), soot_lower=state.get("lower_layer__soot", zero),
                         head_height_m=head_height_m, t_ambient_k=t_ambient_k)


#: The zone-model fields the tracker's kernel path reads (:meth:`TenabilityTracker.update`); a state without one of
#: them takes the numpy path of :func:`head_fields`.
KERNEL_FIELDS = ("layer_height", "upper_layer__temperature", "lower_layer__temperature", "upper_layer__co",
                 "lower_layer__co", "upper_layer__co2", "lower_layer__co2", "upper_layer__soot", "lower_layer__soot")


class TenabilityTracker:
    """Running FEDs, criterion times and storey ASETs over the record times (see the module docstring).

    ``kernel``: a record whose state has every one of :data:`KERNEL_FIELDS` is taken in two numba passes
    (:mod:`physics._kernels.fire_tenability`) around numpy's ``exp`` and ``**``, else by the numpy expressions of
    :func:`head_fields`; the two give the same numbers to the bit (tested). False: always numpy."""

    def __init__(self, network: FireNetwork, *, head_height_m: float = HEAD_HEIGHT_M,
                 t_ambient_k: float = AMBIENT_K, include_rooms: bool = False, kernel: bool = True):
        self.network = network
        self.head_height_m = head_height_m
        self.t_ambient_k = t_ambient_k
        self.kernel = bool(kernel)
        self.routes, self._groups = per_network(network, ("routes", bool(include_rooms)),
                                                lambda: _routes_and_groups(network, include_rooms))
        n = network.n_compartments
        self.fed_asphyxiant = np.zeros(n)
        self.fed_heat = np.zeros(n)
        self.times = np.full((len(CRITERIA), n), np.inf)  # first failure per criterion
        self.aset_s = np.full(network.n_storeys, np.inf)
        self.criterion = [""] * network.n_storeys
        self._t: float | None = None
        self._rates = np.zeros((3, n))  # the last record's asphyxiant and heat FED rates and radiant flux
        self._y = np.zeros((len(CRITERIA), n))  # the last record's values of the criteria
        # the kernel path's constants: the criteria's thresholds (the visibility limit by head_measures' rule)
        self._height = np.ascontiguousarray(network.height_m, float)
        limit = np.where(network.area_m2 > LARGE_SPACE_M2, VISIBILITY_LIMIT_M[1], VISIBILITY_LIMIT_M[0])
        self._thr = np.ascontiguousarray(np.stack(np.broadcast_arrays(
            FED_THRESHOLD, FED_THRESHOLD, RADIANT_LIMIT_KW_M2, VISIBILITY_C["reflecting"] / limit * np.ones(n))))
        self._args = np.empty((4, n))

    @property
    def compartment_aset_s(self) -> np.ndarray:
        return self.times.min(axis=0)

    def update(self, t_s: float, state: dict) -> dict[str, np.ndarray]:
        """Add the record at ``t_s`` (after the last one); returns the head measures now."""
        t = float(t_s)
        if self.kernel and all(k in state for k in KERNEL_FIELDS):
            return self._update_kernel(t, state)
        m = head_fields(self.network, state, head_height_m=self.head_height_m, t_ambient_k=self.t_ambient_k)
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
            else:  # the crossing linear between the records, as fire_detection.first_crossing_s
                with np.errstate(divide="ignore", invalid="ignore"):
                    f = (thr - self._y) / (y - self._y)
                at = self._t + np.clip(np.nan_to_num(f), 0.0, 1.0) * (t - self._t)
                self.times[hit] = at[hit]
            self._storeys()
        self._t, self._y = t, y
        self._rates = np.stack([rates[0], rates[1], m["radiant_kw_m2"]])
        return m

    def _update_kernel(self, t: float, state: dict) -> dict[str, np.ndarray]:
        """:meth:`update` in the kernels of :mod:`physics._kernels.fire_tenability` (``head_measures``' numbers)."""
        f = {k: np.ascontiguousarray(state[k], float) for k in KERNEL_FIELDS}
        z, hh, args = f["layer_height"], float(self.head_height_m), self._args
        TK.head_inputs(z, f["upper_layer__temperature"], f["lower_layer__temperature"], f["upper_layer__co2"],
                       f["lower_layer__co2"], f["upper_layer__soot"], self._height, hh, SOOT_EXTINCTION_M2_KG, args)
        # numpy's exp and power, as head_measures takes them (numba's are the C library's: other last bits)
        e_co2, p_tc = np.exp(args[TK.A_CO2]), args[TK.A_TC] ** -3.4
        e_emis, p_tu4 = np.exp(args[TK.A_EMIS]), args[TK.A_TU] ** 4
        n = z.shape[0]
        ext, vis = np.empty(n), np.empty(n)
        first = self._t is None
        failed = TK.head_record(z, f["upper_layer__co"], f["lower_layer__co"], f["upper_layer__soot"],
                                f["lower_layer__soot"], self._height, hh, SOOT_EXTINCTION_M2_KG,
                                VISIBILITY_C["reflecting"], self.t_ambient_k**4, SIGMA, e_co2, p_tc, e_emis, p_tu4,
                                first, 0.0 if first else (t - self._t) / 60.0, self._rates, self.fed_asphyxiant,
                                self.fed_heat, self._y, self._thr, self.times, 0.0 if first else self._t, t, ext, vis)
        if failed:
            self._storeys()
        self._t = t
        return {"asphyxiant_rate": self._rates[0].copy(), "heat_rate": self._rates[1].copy(),
                "radiant_kw_m2": self._rates[2].copy(), "extinction_per_m": ext, "visibility_m": vis,
                "extinction_limit_per_m": self._thr[3].copy()}

    def _storeys(self) -> None:
        c_aset = self.compartment_aset_s
        for s, route in enumerate(self.routes):
            if not len(route) or np.isfinite(self.aset_s[s]):
                continue
            j = route[int(np.argmin(c_aset[route]))]
            if np.isfinite(c_aset[j]):
                self.aset_s[s] = c_aset[j]
                self.criterion[s] = CRITERIA[int(np.argmin(self.times[:, j]))]

    def untenable(self, t_s: float) -> np.ndarray:
        """(S,) bool: the storey's route has failed by ``t_s``."""
        return t_s >= self.aset_s

    def floor_measures(self, m: dict, t_upper_k: np.ndarray, t_s: float) -> dict[str, np.ndarray]:
        """Per storey over its route: worst FEDs, least visibility (capped), worst extinction, status."""
        g = self._groups
        out = {"fed_asphyxiant": g.max(self.fed_asphyxiant, 0.0), "fed_heat": g.max(self.fed_heat, 0.0),
               "extinction_per_m": g.max(m["extinction_per_m"], 0.0), "t_upper_k": g.max(t_upper_k, 0.0),
               "visibility_m": np.minimum(g.min(m["visibility_m"], VISIBILITY_CAP_M), VISIBILITY_CAP_M)}
        untenable = self.untenable(t_s)
        smoke = (out["visibility_m"] < SMOKE_VISIBILITY_M) | (out["t_upper_k"] > SMOKE_T_UPPER_K)
        out["status"] = np.where(untenable, 2, np.where(smoke, 1, 0)).astype(np.int8)
        out["untenable"] = untenable
        return out


class StoreyGroups:
    """Max and min of an (N,) field over each storey's compartments (a list of index arrays, some empty) in one
    pass (:func:`physics._kernels.fire_tenability.group_extreme`): the same numbers as a loop of ``x[r].max()``,
    exactly (NaN wins, as in numpy)."""

    def __init__(self, groups: list[np.ndarray]):
        sizes = np.array([len(r) for r in groups], np.int64)
        self.filled = np.flatnonzero(sizes > 0)
        self.index = np.concatenate([np.asarray(r, np.int64) for r in groups] + [np.zeros(0, np.int64)])
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.starts = self.offsets[:-1][self.filled]
        self.n = len(groups)

    def _reduce(self, largest: bool, x: np.ndarray, empty: float) -> np.ndarray:
        out = np.empty(self.n)
        TK.group_extreme(np.ascontiguousarray(x, float), self.index, self.offsets, largest, float(empty), out)
        return out

    def max(self, x: np.ndarray, empty: float = np.nan) -> np.ndarray:
        """(S,) the largest of ``x`` over each group, ``empty`` for an empty group."""
        return self._reduce(True, x, empty)

    def min(self, x: np.ndarray, empty: float = np.nan) -> np.ndarray:
        """(S,) the smallest of ``x`` over each group, ``empty`` for an empty group."""
        return self._reduce(False, x, empty)
