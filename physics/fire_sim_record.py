"""The record of a fire run on its record grid and the Dataset written as ``fire.nc`` (CF-style attrs).

:class:`Recorder` keeps the zone model's fields per compartment and the
storeys' aggregates at each record time; :func:`build_dataset` turns a run's
record into the Dataset of the fire-run contract (:mod:`physics.fire_sim`):
dims ``time``, ``compartment``, ``storey``, every variable with ``units`` and
``long_name``. Besides the contract's variables it holds the layers' soot
and CO₂ (what :func:`physics.fire_tenability.assess_history` needs to
re-assess the record) and the design fires' heat release before the oxygen
limits (``design_heat_release_rate``).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from physics.fire_network import COMPARTMENT_KINDS, FireNetwork
from physics.fire_sim_tenability import StoreyGroups

#: (time, compartment) variables: name -> (units, long_name).
COMPARTMENT_VARS = {
    "upper_layer__temperature": ("K", "upper-layer temperature"),
    "lower_layer__temperature": ("K", "lower-layer temperature"),
    "layer_height": ("m", "interface height above the compartment's floor"),
    "upper_layer__co": ("ppm", "CO of the upper layer (by volume)"),
    "lower_layer__co": ("ppm", "CO of the lower layer (by volume)"),
    "upper_layer__o2": ("1", "O2 volume fraction of the upper layer"),
    "upper_layer__extinction": ("1/m", "light extinction coefficient of the upper layer"),
    "lower_layer__extinction": ("1/m", "light extinction coefficient of the lower layer"),
    "heat_release_rate": ("kW", "heat release burned (after the oxygen limits)"),
    "pressure": ("Pa", "floor pressure minus the outside's at the same elevation"),
    "upper_layer__co2": ("1", "CO2 volume fraction of the upper layer"),
    "lower_layer__co2": ("1", "CO2 volume fraction of the lower layer"),
    "upper_layer__soot": ("kg/m3", "soot concentration of the upper layer"),
    "lower_layer__soot": ("kg/m3", "soot concentration of the lower layer"),
    "design_heat_release_rate": ("kW", "heat release of the design fire (before the zone model's oxygen limits)"),
}
#: (time, storey) variables: name -> (units, long_name).
STOREY_VARS = {
    "floor_temperature_max": ("K", "highest upper-layer temperature over the storey's non-shaft compartments"),
    "floor_layer_height_min": ("m", "lowest interface height over the storey's non-shaft compartments"),
    "floor_visibility_min": ("m", "least visibility at head height (1.8 m) on the storey's escape route "
                                  "(capped at 100 m: clear)"),
    "floor_fed_asphyxiant_max": ("1", "highest asphyxiant FED at head height on the escape route (ISO 13571)"),
    "floor_fed_heat_max": ("1", "highest convected-heat FED at head height on the escape route (ISO 13571)"),
    "floor_status": ("1", "0 clear, 1 smoke (visibility < 30 m or upper layer > 60 °C on the route), "
                          "2 untenable (route past its ASET)"),
    "floor_heat_release": ("kW", "heat release burned on the storey"),
}


class Recorder:
    """Fields at each record time (lists of arrays, stacked once by :func:`build_dataset`)."""

    def __init__(self, network: FireNetwork):
        self.network = network
        self.t: list[float] = []
        self.fields: dict[str, list[np.ndarray]] = {k: [] for k in COMPARTMENT_VARS}
        self.floors: dict[str, list[np.ndarray]] = {k: [] for k in STOREY_VARS}
        self._rooms: list[np.ndarray] | None = None
        self._groups: StoreyGroups | None = None

    def _room_groups(self, rooms: list[np.ndarray]) -> StoreyGroups:
        if self._rooms is not rooms:
            self._rooms, self._groups = rooms, StoreyGroups(rooms)
        return self._groups

    def room_max(self, x: np.ndarray, rooms: list[np.ndarray], empty: float = np.nan) -> np.ndarray:
        """(S,) the largest of ``x`` over each storey's ``rooms`` (``empty`` where a storey has none)."""
        return self._room_groups(rooms).max(x, empty)

    def add(self, t: float, state: dict, q_design: np.ndarray, floors: dict, rooms: list[np.ndarray]) -> None:
        self.t.append(float(t))
        for k in COMPARTMENT_VARS:
            if k == "design_heat_release_rate":
                v = q_design
            else:
                v = state.get(k)
                if v is None:  # a field the zone model does not give (lower_layer__co2 before it has one)
                    v = np.zeros(self.network.n_compartments)
            self.fields[k].append(np.array(v, float, copy=True))
        tu, z, q = state["upper_layer__temperature"], state["layer_height"], state["heat_release_rate"]
        f = self.floors
        f["floor_temperature_max"].append(self.room_max(tu, rooms))
        f["floor_layer_height_min"].append(self._room_groups(rooms).min(z))
        f["floor_visibility_min"].append(floors["visibility_m"].copy())
        f["floor_fed_asphyxiant_max"].append(floors["fed_asphyxiant"].copy())
        f["floor_fed_heat_max"].append(floors["fed_heat"].copy())
        f["floor_status"].append(floors["status"].copy())
        f["floor_heat_release"].append(np.bincount(self.network.storey, weights=q,
                                                   minlength=self.network.n_storeys))


def build_dataset(sim) -> xr.Dataset:
    """The Dataset of a :class:`~physics.fire_sim.FireSimulation`'s record so far (``fire.nc``)."""
    net, rec = sim.network, sim.recorder
    data = {}
    for k, (units, long_name) in COMPARTMENT_VARS.items():
        data[k] = (("time", "compartment"), np.stack(rec.fields[k]), {"units": units, "long_name": long_name})
    for k, (units, long_name) in STOREY_VARS.items():
        a = np.stack(rec.floors[k])
        data[k] = (("time", "storey"), a.astype(np.int8) if k == "floor_status" else a,
                   {"units": units, "long_name": long_name})
    aset = np.where(np.isfinite(sim.tenability.aset_s), sim.tenability.aset_s, np.nan)
    data["aset_s"] = ("storey", aset, {"units": "s", "long_name": "available safe egress time: the escape route's "
                                                                 "first failed criterion (NaN: tenable to the end)"})
    data["aset_criterion"] = ("storey", np.asarray(sim.tenability.criterion, dtype=str),
                              {"units": "1", "long_name": "criterion that set the ASET (asphyxiant, heat, "
                                                          "radiant, visibility; empty where tenable)"})
    data["ignition_s"] = ("storey", sim.ignition_s.copy(),
                          {"units": "s", "long_name": "time the storey's fire ignited (NaN: never burned)"})
    data["storey_base_m"] = ("storey", np.asarray(net.storey_base_m, float),
                             {"units": "m", "long_name": "storey floor elevation above grade"})
    data["storey_height_m"] = ("storey", np.asarray(net.storey_height_m, float),
                               {"units": "m", "long_name": "storey height (floor to floor)"})
    data["refuge"] = ("storey", np.asarray(net.refuge, bool), {"units": "1", "long_name": "refuge floor"})
    data["storey_plate_m2"] = ("storey", np.asarray([sim.spec.plate_area_m2(s) for s in range(net.n_storeys)]),
                               {"units": "m2", "long_name": "gross floor plate area"})
    coords = {
        "time": ("time", np.asarray(rec.t), {"units": "s", "long_name": "time since ignition"}),
        "compartment": ("compartment", np.asarray(net.names, dtype=str), {"units": "1",
                                                                          "long_name": "compartment name"}),
        "storey": ("storey", np.arange(net.n_storeys), {"units": "1", "long_name": "storey index (0 = ground)"}),
        "compartment_storey": ("compartment", np.asarray(net.storey, np.int64),
                               {"units": "1", "long_name": "storey of the compartment"}),
        "compartment_kind": ("compartment", np.asarray(COMPARTMENT_KINDS)[net.kind].astype(str),
                             {"units": "1", "long_name": "compartment kind"}),
        "compartment_area_m2": ("compartment", np.asarray(net.area_m2, float),
                                {"units": "m2", "long_name": "compartment floor area"}),
        "compartment_height_m": ("compartment", np.asarray(net.height_m, float),
                                 {"units": "m", "long_name": "compartment floor-to-ceiling height"}),
    }
    return xr.Dataset(data, coords=coords, attrs=sim.attrs())
