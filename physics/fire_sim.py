"""A high-rise fire run: the zone model, the design fires, detectors and sprinklers, tenability and façade spread.

:func:`simulate_fire` runs a fire from ignition on one storey of a building
(a fire building file, an example name or a checked
:class:`~physics.fire_building.FireBuildingSpec`) and returns a
:class:`FireResult`: the network, the Dataset written as ``fire.nc`` and the
event timeline. :class:`FireSimulation` is the same run advanced piece by
piece, for a co-simulation (the building evacuation reads the storeys' state
and opens stair doors).

Each step of ``dt_s``:

1. every burning compartment's :class:`~physics.fire_source.FireState` gives
   its heat release at the step's end; the zone model
   (:class:`~physics.fire_zone.FireZoneModel`) steps with it;
2. **flashover** where a burning compartment's upper layer reaches 500 K above
   the initial inside temperature (:data:`~physics.fire_source.FLASHOVER_DT_K`,
   NUREG-1805 ch. 13), the time interpolated in the step; the fire then burns at
   min(RHR_f·A_floor, ventilation limit) (EN 1991-1-2 Annex E.4);
3. the **detectors and sprinklers** (:class:`~physics.fire_detection.DeviceState`:
   Alpert's ceiling jet over the layer and the RTI link); a sprinkler operating
   in a burning compartment before flashover holds its fire (see below);
4. **glazing** that fell out in the zone model (its ``broken`` flags) is an
   event; **façade spread** (:mod:`physics.fire_sim_spread`) and
   **burn-out** are checked;
5. on the record grid (``record_every_s``), the fields are recorded and
   **tenability** accumulated (:class:`~physics.fire_sim_tenability.TenabilityTracker`).

The steps between two where Python has something to do (an event, a record) run in one compiled call
(:mod:`physics.fire_sim_steps`): the same numbers to the bit, without Python between the steps.

Assumptions (stated):

- The origin fire is the building's: the compartment's fuel load (the
  ``[fire]`` occupancy's 80 % fractile or the file's ``fuel_load_mj_m2``)
  times EN 1991-1-2's combustion factor 0.8, its RHR_f, the ``growth`` given
  (default the file's). Its ventilation limit is that of its openings with the
  glazing out (:func:`~physics.fire_source.vent_limit_from_network`); no
  heat-release criterion for flashover, only the zone model's temperature.
- Sprinklers (``sprinklers`` None: as the building file says) are in every
  room, corridor, lobby and refuge compartment, their RTI and link rating the
  file's, at the worst point of a head's square (half its diagonal,
  √(spacing/2) from the fire). When on, the burning compartment's fire is
  **controlled**: its heat release held at the value at the first activation
  (NFPA 13 / PD 7974-1 "controlled fire"), unless the file says
  ``control = "decay"`` (Evans 1993 suppression at its spray density).
- Detectors: the file's kind in the file's locations; smoke detectors by
  obscuration (23.93 %/m, CFAST's default).
- Inside air starts at 20 °C (:data:`~physics.fire_correlations.AMBIENT_K`) in
  every season; outside 33 °C in summer (Shenzhen's July mean daily maximum),
  10 °C in winter (a cold January day), or the temperature given.

Heat release in kW, times in s since ignition, temperatures K.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from physics._kernels import fire_zone as K
from physics.fire_building import (
    EXAMPLES,
    FireBuildingSpec,
    build_network,
    load_example,
    load_fire_building,
)
from physics.fire_correlations import AMBIENT_K
from physics.fire_detection import DeviceSet, DeviceState
from physics.fire_network import COMPARTMENT_KINDS, VENT_KINDS, FireNetwork
from physics.fire_sim_cache import per_network
from physics.fire_sim_record import Recorder, build_dataset
from physics.fire_sim_spread import FacadeSpread
from physics.fire_sim_steps import batch_ready, run_batch
from physics.fire_sim_tenability import (
    VISIBILITY_CAP_M,
    TenabilityTracker,
    head_fields,
    storey_rooms,
)
from physics.fire_source import FLASHOVER_DT_K, FireSource, FireState, vent_limit_from_network
from physics.fire_spread import DEFAULT_DELAY_S
from physics.fire_zone import FireZoneModel
from twin.errors import ValidationError

if TYPE_CHECKING:
    import xarray as xr

FIRE_EVENT_KINDS = ("ignition", "detector", "sprinkler", "flashover", "glazing_broken", "spread",
                    "floor_untenable", "burnout")
#: Outside air (K): Shenzhen's July mean daily maximum 33 °C; a cold winter day 10 °C.
SEASONS_K = {"summer": 306.15, "winter": 283.15}
#: EN 1991-1-2 Annex E.3: combustion factor m for mainly cellulosic fuel.
COMBUSTION_FACTOR = 0.8
SPRINKLED_KINDS = ("room", "corridor", "lobby", "refuge")
SHAFT_KINDS = ("stair", "lift", "smoke_shaft")
_NO_HITS = np.zeros(0, np.int64)


def resolve_building(building) -> FireBuildingSpec:
    """A checked spec from a spec, an example name or a path to a fire building file."""
    if isinstance(building, FireBuildingSpec):
        return building
    if isinstance(building, str) and building in EXAMPLES:
        return load_example(building)
    if isinstance(building, str | Path) and Path(building).exists():
        return load_fire_building(building)
    raise ValidationError(f"building={building!r}: give a fire building file (TOML/JSON), an example name "
                          f"({', '.join(sorted(EXAMPLES))}) or a FireBuildingSpec")


def prepare_building(building) -> tuple:
    """(spec, network, zone plan) of a building, made once and passed as ``prepared=`` to the
    :class:`FireSimulation` runs of one process (an ensemble's members): the network is read only during a run,
    the plan's work arrays are scratch (runs sharing it must step one at a time, never in two threads)."""
    spec = resolve_building(building)
    net = build_network(spec)
    vidx = np.stack([net.vent_a, net.vent_b], axis=1).astype(np.int64).reshape(-1, 2)
    vvidx = np.stack([net.vvent_lower, net.vvent_upper], axis=1).astype(np.int64).reshape(-1, 2)
    return spec, net, K.step_plan(net.n_compartments, vidx, vvidx)


def outside_temperature_k(season) -> float:
    """Outside air temperature (K) of a season name or a temperature in K."""
    if isinstance(season, str):
        if season not in SEASONS_K:
            raise ValidationError(f"season={season!r}: give 'summer', 'winter' or the outside temperature in K")
        return SEASONS_K[season]
    t = float(season)
    if not (np.isfinite(t) and 230.0 <= t <= 330.0):
        raise ValidationError(f"season={season!r}: an outside temperature in K lies in 230..330 K (-43..57 °C)")
    return t


def _time(name: str, value, *, allow_zero: bool = False) -> float:
    v = float(value)
    if not (np.isfinite(v) and (v >= 0 if allow_zero else v > 0)):
        raise ValidationError(f"{name}={value!r}: must be a finite number of seconds {'>=' if allow_zero else '>'} 0")
    return v


def device_set(network: FireNetwork, *, sprinklers_on: bool, t_inside_k: float = AMBIENT_K) -> DeviceSet:
    """The run's detectors and sprinklers (see the module docstring): a sprinkler in every room, corridor,
    lobby and refuge when ``sprinklers_on`` (the file's RTI and rating, √(spacing/2) from the fire); the file's
    detectors where its network has them (smoke by obscuration, or heat), 6.4 m from the fire (NFPA 72)."""
    a = network.attrs
    out = DeviceSet()
    sp, de = a.get("sprinklers", {}), a.get("detectors", {})
    kinds = np.asarray(COMPARTMENT_KINDS)[network.kind]
    if sprinklers_on:
        radius = float(np.sqrt(sp.get("spacing_m2", 12.0) / 2.0))
        for c in np.flatnonzero(np.isin(kinds, SPRINKLED_KINDS)):
            out.add(int(c), "sprinkler", radius_m=radius, rti=float(sp.get("rti", 50.0)),
                    activation_c=float(sp.get("activation_c", 68.0)), name=f"sprinkler {network.names[c]}",
                    t_ambient_k=t_inside_k)
    if de.get("installed", False):
        kind = de.get("kind", "smoke")
        for c in np.flatnonzero(np.asarray(network.detector, bool)):
            if kind == "smoke":
                out.add(int(c), "smoke", radius_m=6.4, mode="obscuration", name=f"smoke {network.names[c]}",
                        t_ambient_k=t_inside_k)
            else:
                out.add(int(c), "heat", radius_m=6.4, rti=float(de.get("rti", 100.0)),
                        activation_c=float(de.get("activation_c") or 57.0), name=f"heat {network.names[c]}",
                        t_ambient_k=t_inside_k)
    return out


@dataclass
class FireResult:
    """A fire run's network, Dataset (``fire.nc``) and time-ordered events."""

    network: FireNetwork
    dataset: xr.Dataset
    events: list[dict]

    def aset_by_floor(self) -> dict[int, float]:
        """{storey: ASET s} for the storeys whose escape route became untenable in the run."""
        a = self.dataset["aset_s"].values
        return {int(s): float(v) for s, v in zip(self.dataset["storey"].values, a, strict=True) if np.isfinite(v)}


def named_compartment(net, floor: int, compartment: str) -> int:
    """Index of the compartment ``compartment`` (``"flat B"`` or ``"12/flat B"``) of storey ``floor`` in
    ``net``; a :class:`~twin.errors.ValidationError` naming it when the building has no such compartment there."""
    name = compartment if "/" in compartment else f"{floor}/{compartment}"
    c = net.index(name)
    if int(net.storey[c]) != floor:
        raise ValidationError(f"compartment={compartment!r} is on storey {int(net.storey[c])}, not {floor}")
    return c


class FireSimulation:
    """A fire run advanced on demand (see the module docstring and :func:`simulate_fire` for the keywords).

    ``prepared``: the :func:`prepare_building` of ``building``, made once for many runs in one process (spares
    the network and the zone's factorisation plan). ``keep_halved_step``: the zone model keeps a step it had to
    halve (:class:`~physics.fire_zone.FireZoneModel`; for a ``dt_s`` too long for the network).
    ``newton_guess_steps``: the zone model's first Newton guess from the mean rate of that many last steps
    (:class:`~physics.fire_zone.FireZoneModel`; 1 is the last step's). ``threads``: the zone model's kernel on that
    many threads (:class:`~physics.fire_zone.FireZoneModel`: the same numbers; opt-in, for idle cores only).

    The steps between two where Python must act run in one compiled call (:mod:`physics.fire_sim_steps`, the same
    numbers to the bit); ``batch_steps`` False (an instance's attribute) steps one step per call in Python;
    ``batches`` and ``batched_steps`` count the calls and the steps they made."""

    batch_steps = True

    def __init__(self, building, *, floor: int, compartment: str | None = None, growth: str | float | None = "fast",
                 sprinklers: bool | None = None, season="summer", duration_s: float = 3600.0, dt_s: float = 1.0,
                 record_every_s: float = 10.0, progress: Callable | None = None,
                 spread_delay_s: float = DEFAULT_DELAY_S, prepared: tuple | None = None,
                 keep_halved_step: bool = False, newton_guess_steps: int = 16, threads: int = 1):
        plan = None
        if prepared is not None:
            self.spec, net, plan = prepared
        else:
            self.spec = resolve_building(building)
            net = build_network(self.spec)
        self.building_source = "" if isinstance(building, FireBuildingSpec) else str(building)
        self.network = net
        s_n = net.n_storeys
        if not (isinstance(floor, int | np.integer) and 0 <= int(floor) < s_n):
            raise ValidationError(f"floor={floor!r}: give a storey index 0..{s_n - 1} (0 = ground)")
        self.duration_s = _time("duration_s", duration_s)
        self.dt_s = _time("dt_s", dt_s)
        self.record_every_s = _time("record_every_s", record_every_s)
        if self.dt_s > self.record_every_s:
            raise ValidationError(f"dt_s={dt_s!r}: must not exceed record_every_s={record_every_s!r}")
        self.t_outside_k = outside_temperature_k(season)
        self.season = season if isinstance(season, str) else f"{self.t_outside_k:g} K"
        self.t_inside_k = AMBIENT_K
        self.progress = progress
        self.origin_storey = int(floor)
        self.origin = self._origin(int(floor), compartment)
        self.growth = growth
        sp = net.attrs.get("sprinklers", {})
        self.sprinklers_on = bool(sp.get("installed", False)) if sprinklers is None else bool(sprinklers)
        self.kinds = np.asarray(COMPARTMENT_KINDS)[net.kind]
        self.zone = FireZoneModel(net, t_inside_k=self.t_inside_k, t_outside_k=self.t_outside_k, dt_max=self.dt_s,
                                  plan=plan, keep_halved_step=keep_halved_step,
                                  newton_guess_steps=newton_guess_steps, threads=threads)
        # the device set and the storeys' rooms, once per network object (fire_sim_cache: read only)
        self.devices = per_network(net, ("devices", self.sprinklers_on, self.t_inside_k), self._devices)
        self.links = DeviceState(self.devices, net.height_m, t_ambient_k=self.t_inside_k) \
            if len(self.devices) else None
        self.fires: dict[int, FireState] = {}
        self.flashed = np.zeros(net.n_compartments, bool)
        self.burnt_out = np.zeros(net.n_compartments, bool)
        self.q_design = np.zeros(net.n_compartments)
        self.ignition_s = np.full(s_n, np.nan)
        self.events: list[dict] = []
        self.rooms = per_network(net, "storey_rooms", lambda: storey_rooms(net))
        self.tenability = TenabilityTracker(net, t_ambient_k=self.t_inside_k)
        self.recorder = Recorder(net)
        self.spread = FacadeSpread(net, delay_s=_time("spread_delay_s", spread_delay_s, allow_zero=True))
        self._untenable_seen = np.zeros(s_n, bool)
        self._broken_seen = np.zeros(net.n_vents, bool)
        self._panes_seen = 0  # the zone's panes_broken when last looked at
        self.t = 0.0
        self._next_record = 0.0
        self._pending: list[dict] = []
        self._returned = 0  # events handed out by advance_to so far
        self.batches = self.batched_steps = 0
        self._ignite(self.origin, 0.0, "ignition", "origin fire")
        self._after_step(0.0, first=True)
        self._flush()

    # ------------------------------------------------------------------ set-up
    def _origin(self, floor: int, compartment: str | None) -> int:
        net = self.network
        on = net.on_storey(floor)
        if compartment is not None:
            return named_compartment(net, floor, compartment)
        kinds = np.asarray(COMPARTMENT_KINDS)[net.kind[on]]
        fuel = np.asarray(net.attrs.get("fuel_load_mj_m2", np.ones(net.n_compartments)))[on]
        for want in (kinds == "room") & (fuel > 0), fuel > 0:
            if np.any(want):
                return int(on[np.flatnonzero(want)[0]])
        raise ValidationError(f"floor={floor}: no compartment with fuel on this storey (a refuge floor?); "
                              f"name one with compartment= (e.g. {[net.names[i] for i in on[:3]]})")

    def source_for(self, c: int, t0_s: float) -> FireSource:
        """The design fire of compartment ``c`` starting at ``t0_s`` (see the module docstring)."""
        net, a = self.network, self.network.attrs
        load = float(np.asarray(a["fuel_load_mj_m2"])[c])
        if not load > 0:
            raise ValidationError(f"compartment {net.names[c]!r} has no fuel load; it cannot burn")
        growth = self.growth if self.growth is not None else a["growth"][c]
        sp = a.get("sprinklers", {})
        mode = "none"
        if self.sprinklers_on and self.kinds[c] in SPRINKLED_KINDS:
            mode = "suppression" if sp.get("control") == "decay" else "control"
        return FireSource(net.names[c], floor_area_m2=float(net.area_m2[c]),
                          fuel_load_mj_m2=COMBUSTION_FACTOR * load, t0_s=float(t0_s), growth=growth,
                          rhr_f_kw_m2=float(np.asarray(a["hrrpua_kw_m2"])[c]),
                          vent_limit_kw=max(vent_limit_from_network(net, c, glazing_broken=True), 1e-6),
                          sprinkler=mode, spray_density_mm_s=float(sp.get("spray_density_mm_min", 6.0)) / 60.0)

    def _devices(self) -> DeviceSet:
        return device_set(self.network, sprinklers_on=self.sprinklers_on, t_inside_k=self.t_inside_k)

    # ------------------------------------------------------------------ events
    def _event(self, t: float, kind: str, c: int | None = None, *, storey: int | None = None,
               device: str | None = None, detail: str = "") -> dict:
        net = self.network
        ev = {"time_s": float(t), "kind": kind,
              "storey": int(net.storey[c]) if c is not None else (None if storey is None else int(storey)),
              "compartment": net.names[c] if c is not None else None, "device": device, "detail": detail}
        self._pending.append(ev)
        return ev

    def _ignite(self, c: int, t0: float, kind: str, detail: str) -> None:
        self.fires[c] = FireState(self.source_for(c, t0))
        s = int(self.network.storey[c])
        if np.isnan(self.ignition_s[s]):
            self.ignition_s[s] = t0
        self._event(t0, kind, c, detail=detail)

    # ------------------------------------------------------------------ stepping
    def _state(self) -> dict[str, np.ndarray]:
        z = self.zone
        out = {"upper_layer__temperature": z.t_upper, "lower_layer__temperature": z.t_lower,
               "layer_height": z.layer_height, "upper_layer__co": z.co_upper, "lower_layer__co": z.co_lower,
               "upper_layer__co2": z.co2_upper, "upper_layer__o2": z.o2_upper, "upper_layer__soot": z.soot_upper,
               "lower_layer__soot": z.soot_lower, "upper_layer__extinction": z.ext_upper,
               "lower_layer__extinction": z.ext_lower, "heat_release_rate": z.q_burned, "pressure": z.pressure}
        co2_lower = getattr(z, "co2_lower", None)
        if co2_lower is not None:
            out["lower_layer__co2"] = co2_lower
        return out

    def advance_to(self, t_s: float) -> list[dict]:
        """Step the run to ``t_s`` (s since ignition, at most ``duration_s``); the events that happened."""
        end = float(t_s)
        if not (np.isfinite(end) and end <= self.duration_s + 1e-9):
            raise ValidationError(f"t_s={t_s!r}: advance within the run's duration_s={self.duration_s:g} s")
        if end < self.t - 1e-9:
            raise ValidationError(f"t_s={t_s!r}: before the run's time {self.t:g} s; a run only moves forward")
        while self.t < end - 1e-9:
            if batch_ready(self):  # steps in the compiled loop up to the next one Python must finish
                t0, t1, t_upper_before, hit = run_batch(self, end)
                self._finish_step(t0, t1, t_upper_before, hit)
            else:
                h = min(self.dt_s, end - self.t, self._next_record - self.t if self._next_record > self.t else math.inf)
                self._step(h)
            self._flush()
        new = sorted(self.events[self._returned:], key=lambda e: e["time_s"])
        self._returned = len(self.events)
        return new

    def _flush(self) -> None:
        self.events.extend(sorted(self._pending, key=lambda e: e["time_s"]))
        self._pending = []

    def _zone_step(self, h: float) -> None:
        """Step the zone model ``h`` s, naming the time where its kernel fails."""
        try:
            self.zone.step(h)
        except ZeroDivisionError:
            raise ValidationError(f"the zone model failed at t={self.zone.t:g} s (a division by zero in its kernel: "
                                  "a layer emptied within the step); report the building and fire") from None

    def _step(self, h: float) -> None:
        t0, t1 = self.t, self.t + h
        if abs(t1 - self._next_record) < 1e-6 * self.dt_s:
            t1 = self._next_record  # land on the record grid exactly
        q = np.zeros(self.network.n_compartments)
        for c, fire in self.fires.items():
            q[c] = fire.advance(t1)
        self.q_design = q
        self.zone.q_kw = q
        t_upper_before = self.zone.t_upper.copy()
        self._zone_step(t1 - t0)
        self.t = t1
        hit = self._devices_step(t1, q)
        self._finish_step(t0, t1, t_upper_before, hit)

    def _finish_step(self, t0: float, t1: float, t_upper_before: np.ndarray, hit: np.ndarray) -> None:
        """A step's Python part after its zone and device steps (``hit``: the devices that operated in it)."""
        self._flashover(t0, t1, t_upper_before)
        self._device_hits(hit)
        self._glazing(t1)
        for c, t_ign in self.spread.update(self, t0, t1):
            self._ignite(c, t_ign, "spread", f"façade flame from storey {int(self.network.storey[c]) - 1}")
        self._burnout(t1)
        self._after_step(t1)  # (the state of the zone step: nothing since changed the zone's outputs)

    def _flashover(self, t0: float, t1: float, before: np.ndarray) -> None:
        limit = self.t_inside_k + FLASHOVER_DT_K
        tu = self.zone.t_upper
        for c, fire in self.fires.items():
            if self.flashed[c] or tu[c] < limit or math.isfinite(fire.t_sprinkler_s):
                continue
            f = (limit - before[c]) / (tu[c] - before[c]) if tu[c] > before[c] else 1.0
            t_fo = t0 + float(np.clip(f, 0.0, 1.0)) * (t1 - t0)
            fire.flashed_over(t_fo)
            self.flashed[c] = True
            self._event(t_fo, "flashover", c, detail=f"upper layer {limit - 273.15:.0f} °C (ΔT 500 K)")

    def _devices_step(self, t1: float, q: np.ndarray) -> np.ndarray:
        """The devices' links stepped to ``t1``; the devices that operated."""
        if self.links is None:
            return _NO_HITS
        z = self.zone
        return self.links.advance(t1, q, t_upper_k=z.t_upper, t_lower_k=z.t_lower, layer_height_m=z.layer_height,
                                  extinction_upper=z.ext_upper)

    def _device_hits(self, hit: np.ndarray) -> None:
        for d in hit:
            d = int(d)
            c = int(self.devices.compartment[d])
            kind = self.devices.kind[d]
            t_act = float(self.links.activation_s[d])
            self._event(t_act, "sprinkler" if kind == "sprinkler" else "detector", c,
                        device=self.devices.names[d], detail=kind)
            if kind == "sprinkler" and c in self.fires:
                self.fires[c].sprinkler_operated(t_act)

    def _glazing(self, t1: float) -> None:
        if self.zone.panes_broken == self._panes_seen:  # no pane fell out in the step
            return
        self._panes_seen = self.zone.panes_broken
        fresh = np.flatnonzero(self.zone.broken & ~self._broken_seen)
        self._broken_seen |= self.zone.broken
        done = set()
        for v in fresh:
            c = int(self.network.vent_a[v])
            if c in done:
                continue
            done.add(c)
            self._event(t1, "glazing_broken", c, detail=f"{VENT_KINDS[self.network.vent_kind[v]]} {int(v)} fell out")

    def _burnout(self, t1: float) -> None:
        for c, fire in self.fires.items():
            if not self.burnt_out[c] and math.isfinite(fire.t_decay_s) and self.q_design[c] <= 0.0:
                self.burnt_out[c] = True
                self._event(t1, "burnout", c, detail="fuel spent (EN 1991-1-2 E.4 decay)")

    def _after_step(self, t: float, *, first: bool = False) -> None:
        if not (first or abs(t - self._next_record) < 1e-9):
            return
        state = self._state()  # on the record grid only (the species' fractions are computed when read)
        m = self.tenability.update(t, state)
        floors = self.tenability.floor_measures(m, state["upper_layer__temperature"], t)
        newly = floors["untenable"] & ~self._untenable_seen
        for s in np.flatnonzero(newly):
            self._event(float(self.tenability.aset_s[s]), "floor_untenable", storey=int(s),
                        detail=self.tenability.criterion[s])
        self._untenable_seen |= floors["untenable"]
        self.recorder.add(t, state, self.q_design, floors, self.rooms)
        self._next_record = min(t + self.record_every_s, self.duration_s)
        if self._next_record <= t:
            self._next_record = np.inf
        if self.progress is not None:
            self.progress(t, self.duration_s, {"events": len(self.events) + len(self._pending),
                                               "burning": int(sum(1 for c in self.fires if not self.burnt_out[c])),
                                               "untenable_storeys": int(self._untenable_seen.sum())})

    # ------------------------------------------------------------------ coupling
    def floor_now(self) -> dict[str, np.ndarray]:
        """(S,) arrays now over each storey's escape route (see the contract in the module docstring)."""
        state = self._state()
        m = head_fields(self.network, state, t_ambient_k=self.t_inside_k)
        floors = self.tenability.floor_measures(m, state["upper_layer__temperature"], self.t)
        t_max = self.recorder.room_max(state["upper_layer__temperature"], self.rooms, empty=self.t_inside_k)
        return {"visibility_m": floors["visibility_m"], "extinction_per_m": floors["extinction_per_m"],
                "untenable": floors["untenable"].copy(), "t_upper_k": t_max}

    def compartments_now(self) -> dict[str, np.ndarray]:
        """(N,) arrays now: ``extinction_per_m`` and ``visibility_m`` at head height (1.8 m; visibility capped at
        100 m), ``t_upper_k`` and ``layer_height_m``."""
        state = self._state()
        m = head_fields(self.network, state, t_ambient_k=self.t_inside_k)
        return {"extinction_per_m": np.array(m["extinction_per_m"], float),
                "visibility_m": np.minimum(m["visibility_m"], VISIBILITY_CAP_M),
                "t_upper_k": state["upper_layer__temperature"].copy(), "layer_height_m": state["layer_height"].copy()}

    def vent_open_fraction(self, indices=None) -> np.ndarray:
        """Open fraction now of wall vents ``indices`` (all if None); ``network.vent_open`` holds the initial ones."""
        frac = self.zone.vent_open
        return frac.copy() if indices is None else frac[np.asarray(indices, np.int64)].copy()

    def compartment_untenable_now(self) -> np.ndarray:
        """(N,) bool: the compartment has failed a tenability criterion (at the last record)."""
        return self.t >= self.tenability.compartment_aset_s

    def stair_door_vents(self) -> dict[tuple[int, str], int]:
        """{(storey, stair name): wall-vent index} of every stair door (the door, not its leakage)."""
        net = self.network
        out = {}
        door = VENT_KINDS.index("shaft_door")
        for v in np.flatnonzero(np.asarray(net.vent_kind) == door):
            a, b = int(net.vent_a[v]), int(net.vent_b[v])
            for x in (a, b):
                if x >= 0 and self.kinds[x] == "stair":
                    out[(int(net.storey[x]), self._stair_name(x))] = int(v)
        return out

    def _stair_name(self, c: int) -> str:
        return self.network.names[c].split("/", 1)[1].removeprefix("stair ")

    def shaft_compartments(self) -> dict[str, np.ndarray]:
        """{stair name: (S,) compartment index of the stair on each storey, -1 where it has none}."""
        net = self.network
        out: dict[str, np.ndarray] = {}
        for c in np.flatnonzero(self.kinds == "stair"):
            col = out.setdefault(self._stair_name(int(c)), np.full(net.n_storeys, -1, np.int64))
            col[int(net.storey[c])] = c
        return out

    def set_vent_open(self, indices, fraction) -> None:
        """Open fraction (0..1) of wall vents ``indices`` (doors held open by evacuees)."""
        idx = np.atleast_1d(np.asarray(indices, np.int64))
        frac = np.broadcast_to(np.asarray(fraction, float), idx.shape)
        if np.any((idx < 0) | (idx >= self.network.n_vents)):
            raise ValidationError(f"indices={idx.tolist()}: wall vents are 0..{self.network.n_vents - 1}")
        if not np.all((frac >= 0) & (frac <= 1)):
            raise ValidationError(f"fraction={np.asarray(fraction).tolist()}: open fractions lie in 0..1")
        self.zone.vent_open[idx] = frac

    # ------------------------------------------------------------------ result
    def result(self) -> FireResult:
        """The run so far as a :class:`FireResult`."""
        ds = build_dataset(self)
        return FireResult(network=self.network, dataset=ds, events=self.timeline())

    def timeline(self) -> list[dict]:
        """Every event so far in time order (a storey's untenability is found at the record after it)."""
        return sorted(self.events, key=lambda e: e["time_s"])

    def attrs(self) -> dict:
        spec = self.spec
        loc = spec.location
        note = (loc.label + ". " if loc is not None and loc.label else "") + \
            "Assumptions: " + "; ".join(spec.fire.assumptions)
        return {"building": spec.name, "building_source": self.building_source, "origin_storey": self.origin_storey,
                "origin_compartment": self.network.names[self.origin],
                "growth": str(self.growth if self.growth is not None else self.network.attrs["growth"][self.origin]),
                "sprinklers": "on" if self.sprinklers_on else "off", "season": str(self.season),
                "t_outside_k": self.t_outside_k, "t_inside_k": self.t_inside_k, "duration_s": self.duration_s,
                "dt_s": self.dt_s, "record_every_s": self.record_every_s,
                "lon": loc.lon if loc is not None else np.nan, "lat": loc.lat if loc is not None else np.nan,
                "floor_area_m2": float(spec.plate_area_m2(self.origin_storey)),
                "events": json.dumps(self.timeline(), ensure_ascii=False), "source_note": note,
                "sprinkler_assumption": self._sprinkler_assumption()}

    def _sprinkler_assumption(self) -> str:
        if not self.sprinklers_on:
            return "no sprinklers"
        if self.network.attrs.get("sprinklers", {}).get("control") == "decay":
            return "suppression: heat release decays after the first activation (Evans 1993, NISTIR 5254)"
        return "controlled: heat release held at its value at the first activation (NFPA 13 / PD 7974-1)"


def simulate_fire(building, *, floor: int, compartment: str | None = None, growth: str | float | None = "fast",
                  sprinklers: bool | None = None, season="summer", duration_s: float = 3600.0, dt_s: float = 1.0,
                  record_every_s: float = 10.0, progress: Callable | None = None,
                  spread_delay_s: float = DEFAULT_DELAY_S, threads: int = 1) -> FireResult:
    """Run a fire from ignition on storey ``floor`` (0 = ground) for ``duration_s``; see the module docstring.

    Parameters
    ----------
    building : path, example name or FireBuildingSpec
    floor : int
        Storey index of the origin (0 = ground).
    compartment : str, optional
        The origin compartment's name on that storey (``"flat B"`` or ``"12/flat B"``); default its first room.
    growth : str or float
        t² class (slow, medium, fast, ultrafast) or α (kW/s²); None: the building file's.
    sprinklers : bool, optional
        None: as the building file says; True/False override.
    season : "summer", "winter" or float
        Outside air: 33 °C, 10 °C or the temperature in K.
    duration_s, dt_s, record_every_s : float
        Run length, zone-model step, record interval (s).
    progress : callable, optional
        ``progress(t_s, duration_s, info)`` at every record.
    spread_delay_s : float
        From the window flame reaching the sill above to that storey's ignition (s; default
        :data:`physics.fire_spread.DEFAULT_DELAY_S`, an assumption: give the building's own where known).
    threads : int
        Threads of the zone model's kernel (1; see :class:`~physics.fire_zone.FireZoneModel`: the same numbers,
        faster only on idle cores).
    """
    sim = FireSimulation(building, floor=floor, compartment=compartment, growth=growth, sprinklers=sprinklers,
                         season=season, duration_s=duration_s, dt_s=dt_s, record_every_s=record_every_s,
                         progress=progress, spread_delay_s=spread_delay_s, threads=threads)
    sim.advance_to(sim.duration_s)
    return sim.result()
