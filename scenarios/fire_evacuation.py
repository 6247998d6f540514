"""A fire and the building's evacuation in one run: smoke drives the evacuating agents, their doors drive the smoke.

:class:`FireEvacuation` co-steps a :class:`physics.fire_sim.FireSimulation` and a
:class:`agents.building_evac.BuildingEvacuation` of the same building file
(its ``[fire]`` table and its evacuation tables) on the evacuation's record grid
(``record_every_s``, 5 s by default); :func:`evacuate_with_fire` runs it to the
end and returns the fire result, the evacuation Dataset, the per-floor margin
table and the same evacuation without smoke for comparison. The run kind
``fire_evacuation`` (``twin fire run ... --evacuate``) writes them.

Time and the alarm
------------------
Times are seconds since ignition. The fire runs alone until the **alarm**:
``alarm_s`` when given, else the first detector or sprinkler activation
the fire model predicts (then the first storey untenable, when the building
has neither: the occupants of the fire floor raise it), rounded up to the
grid. The evacuation starts at the alarm (its pre-movement times count from
it) and runs to the fire's ``duration_s``; RSET per floor is then alarm +
the time its last person enters a stair.

One block [t, t + Δ] of the co-simulation
-----------------------------------------
1. the evacuation runs the block with the hazard set at t;
2. **doors** (``door_hold``): ``"passing"``: each floor's stair door through which
   someone passed in the block, and a stair's ground door when someone left
   the stair there, is held fully open (vent fraction 1) for the fire's
   step over the block, every other stair door closes again (self-closing
   fire doors, GB 50016-2014 §6.5.1: they return to the building file's
   state; so do all once everybody is out or cut off); ``"closed"``: never
   opened; ``"open"``: every stair door propped open from the alarm on;
3. the fire advances to t + Δ (:meth:`FireSimulation.advance_to`);
4. the **hazard** for the next block from the fire's state now:

   * horizontal walking on floor f: the factor
     :func:`physics.fire_correlations.walking_speed_in_smoke` (Frantzich &
     Nilsson 2003 as FDS+Evac applies it: v/v0 = max(0.1, 1 − 0.0807 K)) at
     the extinction coefficient K at head height on the floor's escape route
     (``floor_now()["extinction_per_m"]``, its worst compartment);
   * the flight from floor f down to f − 1 of stair s: the same factor at the
     larger head-height K of the stair's compartments of storeys f and f − 1
     (the flight joins their landings);
   * the stair door (f, s) is **closed** to the floor's people when the
     floor's escape route is untenable (all its doors: the people there are
     caught), or stair s's compartment is untenable (ISO 13571 FED, heat,
     visibility: the fire model's criteria) at storey f or any storey below
     (the way down is cut). Closures are latched and people re-choose
     (:mod:`agents.building_hazard`).

People caught at a floor's ASET are those still on the floor (walking to or
queued at a stair door, not in a stair) at the first record at or after the
ASET; the people caught by closures stay on their floor to the end.
``people_in_smoke_s`` is the person-seconds spent on a floor whose route's
head-height visibility is below 30 m (the fire model's "smoke" status), counted
per block from the people and the visibility at the block's end.

Not modelled (stated): people open no room or flat door (only the stair
doors); people entering a refuge floor from the stair do not open its door;
nobody goes up the stairs to a refuge floor; the fire is not told how many
people stand in a doorway (a door is open or closed for a whole block).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from physics.fire_run import FireRequest, check_fire
from twin.runkinds import RunContext, RunKind, RunOutputs, register_kind

KIND = "fire_evacuation"
DOOR_HOLDS = ("passing", "closed", "open")
#: The fire model's "smoke" status of a route: head-height visibility below this (m).
SMOKE_VISIBILITY_M = 30.0
#: Fire events that raise the alarm (the first one), then the one used when there is neither.
ALARM_KINDS = ("detector", "sprinkler")
FALLBACK_ALARM_KIND = "floor_untenable"
DEFAULT_RECORD_S = 5.0


# ----------------------------------------------------------------------------- the building, both sides
def building_file(building: str | Path) -> Path:
    """The file of an example name or a path (:data:`physics.fire_building.EXAMPLES`)."""
    from physics.fire_building import EXAMPLES
    from twin.errors import ValidationError

    if isinstance(building, str) and building in EXAMPLES:
        return Path(EXAMPLES[building])
    p = Path(building)
    if not p.is_file():
        raise ValidationError(f"building={building!r}: give a fire building file (TOML/JSON) or an example name "
                              f"({', '.join(sorted(EXAMPLES))})")
    return p


def evacuation_tower(building: str | Path, aset: dict[int, float] | None = None):
    """The evacuation's :class:`agents.building.Tower` of a fire building file (its evacuation tables)."""
    from agents.building import parse_building, resolve
    from physics.fire_building import evacuation_tables

    path = building_file(building)
    return resolve(parse_building(evacuation_tables(path), source=str(path)), aset)


# ----------------------------------------------------------------------------- the fire's side of the hazard
class FireHazard:
    """The hazard :func:`agents.building_evac.simulate` calls, driven by a running fire (module docstring).

    Parameters
    ----------
    sim : physics.fire_sim.FireSimulation
        The fire, at the alarm's time.
    stair_names : list of str
        The evacuation's stairs, in its order (matched by name with the fire's stairs).
    door_hold : {"passing", "closed", "open"}
    t_alarm_s : float
        Fire time of the evacuation's time 0.
    block_s : float
        The evacuation's record interval (s).
    """

    def __init__(self, sim, stair_names: list[str], *, door_hold: str, t_alarm_s: float, block_s: float):
        import numpy as np

        self.sim, self.door_hold, self.t_alarm_s, self.block_s = sim, door_hold, float(t_alarm_s), float(block_s)
        F = sim.network.n_storeys
        shafts = sim.shaft_compartments()
        vents = sim.stair_door_vents()
        missing = [s for s in stair_names if s not in shafts]
        if missing:
            from twin.errors import ValidationError

            raise ValidationError(f"stairs {missing}: the evacuation's stairs are not in the fire model's core "
                                  f"({sorted(shafts)}); name them alike in [[stairs]] and [[fire.core.stairs]]")
        S = len(stair_names)
        self.stair_comp = np.stack([shafts[s] for s in stair_names], axis=1)  # (F, S), -1 where none
        self.door_vent = np.array([[vents.get((f, s), -1) for s in stair_names] for f in range(F)], np.int64)
        has = self.door_vent >= 0
        self.door_initial = np.zeros((F, S))
        self.door_initial[has] = sim.vent_open_fraction(self.door_vent[has])
        self.people_in_smoke_s = np.zeros(F)
        self.new_events: list[dict] = []
        self.history: list[dict[str, Any]] = []
        if door_hold == "open":
            sim.set_vent_open(self.door_vent[has], 1.0)

    def _doors(self, state) -> None:
        import numpy as np

        if self.door_hold != "passing":
            return
        held = np.asarray(state.door_passed) > 0
        held[0, :] = np.asarray(state.stair_out) > 0
        has = self.door_vent >= 0
        frac = np.where(held, 1.0, self.door_initial)
        self.sim.set_vent_open(self.door_vent[has], frac[has])

    def release_doors(self) -> None:
        """Nobody passes any more: every stair door back to its building-file state (``passing`` only)."""
        if self.door_hold == "passing":
            has = self.door_vent >= 0
            self.sim.set_vent_open(self.door_vent[has], self.door_initial[has])

    def __call__(self, t_s: float, state):
        """Doors of the block just run, the fire to its end, the hazard from the fire's state now."""
        import numpy as np

        t_fire = min(self.t_alarm_s + float(t_s), self.sim.duration_s)
        self._doors(state)
        if t_fire > self.sim.t + 1e-9:
            self.new_events.extend(self.sim.advance_to(t_fire))
        h = self.hazard_now()
        if t_s > 0:
            smoke = np.asarray(self.now["visibility_m"]) < SMOKE_VISIBILITY_M
            self.people_in_smoke_s += np.asarray(state.people_on_floor) * smoke * self.block_s
        return h

    def hazard_now(self):
        """The :class:`agents.building_hazard.BuildingHazard` of the fire's state now."""
        import numpy as np

        from agents.building_hazard import BuildingHazard

        sim = self.sim
        self.now = now = sim.floor_now()
        k_comp = sim.compartments_now()["extinction_per_m"]
        comp = self.stair_comp
        k_stair = np.where(comp >= 0, k_comp[np.maximum(comp, 0)], 0.0)  # (F, S)
        floor_speed, flight_speed = speed_factors(np.asarray(now["extinction_per_m"], float), k_stair)
        bad = sim.compartment_untenable_now()
        stair_bad = np.where(comp >= 0, bad[np.maximum(comp, 0)], False)
        return BuildingHazard(floor_speed, flight_speed, closed_doors(np.asarray(now["untenable"], bool), stair_bad))


def speed_factors(k_route, k_stair):
    """(floor factor (F,), flight factor (F, S)) from head-height extinction (1/m) on routes and in stairs.

    The factor is :func:`physics.fire_correlations.walking_speed_in_smoke` over the clear-air speed
    (v/v0 = max(0.1, 1 + β/α K), α 0.706 m/s, β −0.057 m²/s: Frantzich & Nilsson 2003 as FDS+Evac takes
    it), on the flight from f to f − 1 at the larger K of the stair at storeys f and f − 1.
    """
    import numpy as np

    from physics.fire_correlations import walking_speed_in_smoke

    k_stair = np.asarray(k_stair, float)
    k_flight = k_stair.copy()
    k_flight[1:] = np.maximum(k_stair[1:], k_stair[:-1])
    return walking_speed_in_smoke(1.0, np.asarray(k_route, float)), walking_speed_in_smoke(1.0, k_flight)


def closed_doors(route_untenable, stair_untenable):
    """(F, S) stair doors closed to a floor's people: its route untenable, or the stair at or below it."""
    import numpy as np

    cut_below = np.logical_or.accumulate(np.asarray(stair_untenable, bool), axis=0)
    return cut_below | np.asarray(route_untenable, bool)[:, None]


# ----------------------------------------------------------------------------- the co-simulation
@dataclass
class FireEvacuationResult:
    """What :func:`evacuate_with_fire` returns.

    Attributes
    ----------
    fire : physics.fire_sim.FireResult
        The fire (its Dataset has ``rset_s``, ``margin_s``, ``people_caught`` per storey added).
    evacuation : xarray.Dataset or None
        The coupled evacuation (times since the alarm; ``alarm_s`` in attrs); None without an alarm.
    margin : pandas.DataFrame
        Per floor: ASET, RSET, margin, people caught, person-seconds in smoke, and the uncoupled figures.
    uncoupled : xarray.Dataset or None
        The same people (same seed) evacuated without smoke, closures or doors (ASET only).
    alarm_s : float
        Fire time the evacuation started (NaN: no alarm in the run).
    wall_time_s : float
        Wall time of the co-simulation (s), the uncoupled run not included.
    summary : dict
        The headline figures (:func:`summary_of`).
    """

    fire: Any
    evacuation: Any
    margin: Any
    uncoupled: Any
    alarm_s: float
    wall_time_s: float
    summary: dict = field(default_factory=dict)


class FireEvacuation:
    """The fire and the evacuation stepped together (see the module docstring).

    Parameters
    ----------
    building : str or path
        An example name or a fire building file holding (or naming) the evacuation's tables too.
    floor, compartment, growth, sprinklers, season, duration_s, dt_s :
        The fire's (:func:`physics.fire_sim.simulate_fire`).
    seed : int
        The evacuation's draws.
    door_hold : {"passing", "closed", "open"}
    alarm_s : float, optional
        Fire time of the alarm; default the first detector or sprinkler (see the module docstring).
    record_every_s : float
        The co-simulation's grid and the evacuation's record interval (s); the fire records every
        ``fire_record_s`` (default the same).
    progress : callable(t_s, duration_s, info), optional
    """

    def __init__(self, building, *, floor: int, compartment: str | None = None, growth: str | float | None = "fast",
                 sprinklers: bool | None = None, season="summer", duration_s: float = 1800.0, dt_s: float = 1.0,
                 seed: int = 0, door_hold: str = "passing", alarm_s: float | None = None,
                 record_every_s: float = DEFAULT_RECORD_S, fire_record_s: float | None = None,
                 progress: Callable[[float, float, dict], None] | None = None):
        from physics.fire_sim import FireSimulation
        from twin.errors import ValidationError

        if door_hold not in DOOR_HOLDS:
            raise ValidationError(f"door_hold={door_hold!r}: one of {list(DOOR_HOLDS)}")
        if alarm_s is not None and not (math.isfinite(alarm_s) and 0 <= alarm_s < duration_s):
            raise ValidationError(f"alarm_s={alarm_s!r}: a time in 0..duration_s={duration_s!r} s, or None for "
                                  "the first detector or sprinkler")
        self.path = building_file(building)
        self.tower = evacuation_tower(self.path)
        self.sim = FireSimulation(str(self.path), floor=floor, compartment=compartment, growth=growth,
                                  sprinklers=sprinklers, season=season, duration_s=duration_s, dt_s=dt_s,
                                  record_every_s=fire_record_s or record_every_s)
        if self.sim.network.n_storeys != self.tower.n_floors:
            raise ValidationError(f"building={building!r}: the fire model has {self.sim.network.n_storeys} storeys, "
                                  f"the evacuation {self.tower.n_floors}: one building file must give both")
        self.seed, self.door_hold, self.block_s = int(seed), door_hold, float(record_every_s)
        self.alarm_given = alarm_s
        self.alarm_s = math.nan
        self.progress = progress
        self.evac = None
        self.hazard: FireHazard | None = None
        self._fire_events_out = 0

    @property
    def t(self) -> float:
        """Time since ignition."""
        return float(self.sim.t)

    @property
    def duration_s(self) -> float:
        return float(self.sim.duration_s)

    def _alarm_due(self) -> bool:
        if self.alarm_given is not None:
            return self.t >= self.alarm_given - 1e-9
        kinds = {e["kind"] for e in self.sim.events}
        return bool(kinds & set(ALARM_KINDS)) or FALLBACK_ALARM_KIND in kinds

    def _start_evacuation(self) -> None:
        from agents.building_evac import BuildingEvacuation

        self.alarm_s = self.t
        self.hazard = FireHazard(self.sim, self.tower.stair_names, door_hold=self.door_hold, t_alarm_s=self.t,
                                 block_s=self.block_s)
        self.evac = BuildingEvacuation(self.tower, seed=self.seed, record_every_s=self.block_s,
                                       max_time_s=max(self.duration_s - self.t, self.block_s), hazard=self.hazard)

    def advance_to(self, t_s: float) -> tuple[list[dict], list[dict]]:
        """Step both to ``t_s`` (s since ignition; whole blocks); the new fire events and evacuation events."""
        end = min(float(t_s), self.duration_s)
        while self.t < end - 1e-9:
            if self.evac is None and self._alarm_due():
                self._start_evacuation()
            if self.evac is None:
                self.sim.advance_to(min(self.t + self.block_s, self.duration_s))
            elif not self.evac.done:
                self.evac.step_block()
            else:  # everybody safe or cut off: the self-closing doors shut, the fire goes on alone
                self.hazard.release_doors()
                self.sim.advance_to(min(self.t + self.block_s, self.duration_s))
            if self.progress is not None:
                self.progress(self.t, self.duration_s, {"people_safe": 0 if self.evac is None else
                                                        self.evac.people_safe})
        fire_new = self.sim.events[self._fire_events_out:]
        self._fire_events_out = len(self.sim.events)
        return list(fire_new), self._evac_events_since()

    def _evac_events_since(self) -> list[dict]:
        """Stair doors closed and floors cut off since the last call (fire time)."""
        import numpy as np

        if self.evac is None or self.evac.run is None or self.evac.run.door_closed_t is None:
            return []
        run, out = self.evac.run, []
        seen = getattr(self, "_evac_seen", set())
        names = self.tower.stair_names
        for f, s in zip(*np.nonzero(np.isfinite(run.door_closed_t)), strict=True):
            key = ("door", int(f), int(s))
            if key not in seen:
                seen.add(key)
                out.append({"time_s": self.alarm_s + float(run.door_closed_t[f, s]), "kind": "stair_door_closed",
                            "floor": int(f), "stair": names[s]})
        caught = run.n_caught(self.evac.ag)
        for f in np.nonzero(np.isfinite(run.closed_t))[0]:
            key = ("cut", int(f))
            if key not in seen:
                seen.add(key)
                out.append({"time_s": self.alarm_s + float(run.closed_t[f]), "kind": "floor_cut_off",
                            "floor": int(f), "people_caught": int(caught[f])})
        self._evac_seen = seen
        return out

    def people_by_floor_now(self):
        """(F,) people still on each storey (walking to or queued at a stair door)."""
        import numpy as np

        if self.evac is None:
            return np.asarray(self.tower.people, np.int64).copy()
        return np.asarray(self.evac.series["floor"][-1]).copy()

    def result(self, *, uncoupled: bool = True) -> FireEvacuationResult:
        """The run so far: the fire, the evacuation, the margin table and (``uncoupled``) the run without smoke."""
        from agents.building_evac import simulate

        fire = self.sim.result()
        evac = None if self.evac is None else self.evac.dataset()
        if evac is not None:
            evac.attrs["alarm_s"] = self.alarm_s
            evac.attrs["door_hold"] = self.door_hold
        aset = fire.aset_by_floor()
        plain = None
        if uncoupled and math.isfinite(self.alarm_s):
            tower = evacuation_tower(self.path, {f: a - self.alarm_s for f, a in aset.items()})
            plain = simulate(tower, seed=self.seed, record_every_s=self.block_s,
                             max_time_s=max(self.duration_s - self.alarm_s, self.block_s))
        smoke_s = None if self.hazard is None else self.hazard.people_in_smoke_s
        table = margin_table(fire.dataset, evac, plain, alarm_s=self.alarm_s, people=self.tower.people,
                             people_in_smoke_s=smoke_s)
        fire = replace(fire, dataset=with_margin(fire.dataset, table, alarm_s=self.alarm_s,
                                                 door_hold=self.door_hold))
        out = FireEvacuationResult(fire=fire, evacuation=evac, margin=table, uncoupled=plain, alarm_s=self.alarm_s,
                                   wall_time_s=math.nan)
        out.summary = summary_of(out)
        return out


def evacuate_with_fire(building, *, floor: int, compartment: str | None = None, growth: str | float | None = "fast",
                       sprinklers: bool | None = None, season="summer", duration_s: float = 1800.0,
                       dt_s: float = 1.0, seed: int = 0, door_hold: str = "passing", alarm_s: float | None = None,
                       record_every_s: float = DEFAULT_RECORD_S, fire_record_s: float | None = None,
                       uncoupled: bool = True, progress: Callable | None = None) -> FireEvacuationResult:
    """Run the fire and the evacuation together to ``duration_s`` (see :class:`FireEvacuation`).

    Returns
    -------
    FireEvacuationResult
        ``fire``, ``evacuation``, ``margin``, ``uncoupled``, ``alarm_s``, ``wall_time_s``, ``summary``.
    """
    t0 = time.perf_counter()
    co = FireEvacuation(building, floor=floor, compartment=compartment, growth=growth, sprinklers=sprinklers,
                        season=season, duration_s=duration_s, dt_s=dt_s, seed=seed, door_hold=door_hold,
                        alarm_s=alarm_s, record_every_s=record_every_s, fire_record_s=fire_record_s,
                        progress=progress)
    co.advance_to(co.duration_s)
    wall = time.perf_counter() - t0
    out = co.result(uncoupled=uncoupled)
    out.wall_time_s = wall
    out.summary["wall_time_s"] = round(wall, 2)
    return out


# ----------------------------------------------------------------------------- margins
def _at_or_after(times, values, t: float):
    """``values`` at the first record time at or after ``t`` (the last record when past the end)."""
    import numpy as np

    i = min(int(np.searchsorted(times, t - 1e-9)), len(times) - 1)
    return values[i]


def _floor_figures(evac, aset, alarm_s: float, people) -> tuple[Any, Any, Any]:
    """(rset fire time, people on the floor at its ASET, people cut off) per floor of an evacuation Dataset."""
    import numpy as np

    F = len(aset)
    if evac is None:  # no alarm: nobody moved
        caught = np.where(np.isfinite(aset), np.asarray(people, float), 0.0)
        return np.full(F, np.nan), caught, np.zeros(F)
    rset = alarm_s + evac["rset_floor"].values
    times = evac["time"].values
    on = evac["people_on_floor"].values
    caught = np.zeros(F)
    for f in np.nonzero(np.isfinite(aset))[0]:
        caught[f] = on[0, f] if aset[f] <= alarm_s else _at_or_after(times, on[:, f], aset[f] - alarm_s)
    cut = evac["people_cut_off"].values.astype(float) if "people_cut_off" in evac else np.zeros(F)
    return rset, caught, cut


def margin_table(fire_ds, evac, plain=None, *, alarm_s: float, people, people_in_smoke_s=None):
    """Per floor: ASET, RSET, margin = ASET − RSET, people caught, person-seconds in smoke; coupled and not.

    Parameters
    ----------
    fire_ds : xarray.Dataset
        The fire (``aset_s`` per storey, NaN where tenable to the end).
    evac, plain : xarray.Dataset or None
        The coupled evacuation and the one without smoke (times since the alarm).
    alarm_s : float
        Fire time of the alarm.
    people : array (F,)
        People per floor at the alarm.
    people_in_smoke_s : array (F,), optional

    Returns
    -------
    pandas.DataFrame
        ``floor``, ``level``, ``refuge``, ``people``, ``aset_s``, ``rset_s`` (fire time the floor's
        last person enters a stair; NaN where nobody lives or someone stays), ``margin_s``,
        ``people_caught`` (on the floor at its ASET), ``people_cut_off`` (left on a floor whose every
        stair closed), ``people_in_smoke_s``, and ``rset_uncoupled_s``, ``margin_uncoupled_s``,
        ``people_caught_uncoupled``.
    """
    import numpy as np
    import pandas as pd

    aset = np.asarray(fire_ds["aset_s"].values, float)
    F = aset.size
    rset, caught, cut = _floor_figures(evac, aset, alarm_s, people)
    rset_u, caught_u, _ = _floor_figures(plain, aset, alarm_s, people) if plain is not None or evac is None \
        else (np.full(F, np.nan), np.full(F, np.nan), None)
    refuge = np.asarray(fire_ds["refuge"].values, bool) if "refuge" in fire_ds else np.zeros(F, bool)
    return pd.DataFrame({
        "floor": np.arange(F), "level": [f"L{f + 1}" for f in range(F)], "refuge": refuge,
        "people": np.asarray(people, np.int64), "aset_s": aset, "rset_s": rset, "margin_s": aset - rset,
        "people_caught": caught.astype(np.int64), "people_cut_off": cut.astype(np.int64),
        "people_in_smoke_s": np.zeros(F) if people_in_smoke_s is None else np.asarray(people_in_smoke_s, float),
        "rset_uncoupled_s": rset_u, "margin_uncoupled_s": aset - rset_u,
        "people_caught_uncoupled": np.nan_to_num(caught_u).astype(np.int64),
    })


def with_margin(fire_ds, table, *, alarm_s: float, door_hold: str):
    """The fire Dataset with ``rset_s``, ``margin_s``, ``people_caught`` (and uncoupled twins) per storey."""
    ds = fire_ds.copy()
    spec = {
        "rset_s": ("time since ignition the storey's last person entered a stair (smoke-coupled evacuation)", "s"),
        "margin_s": ("ASET - RSET of the storey: < 0 means people are still there when it becomes untenable", "s"),
        "people_caught": ("people still on the storey (not in a stair) at its ASET", "1"),
        "people_cut_off": ("people left on the storey with every stair door closed", "1"),
        "people_in_smoke_s": ("person-seconds on the storey with head-height visibility < 30 m", "s"),
        "rset_uncoupled_s": ("RSET of the evacuation without smoke effects (same people)", "s"),
        "margin_uncoupled_s": ("ASET - RSET without smoke effects", "s"),
    }
    for name, (long_name, units) in spec.items():
        ds[name] = ("storey", table[name].to_numpy(), {"long_name": long_name, "units": units})
    ds.attrs.update(alarm_s=float(alarm_s), door_hold=door_hold, evacuation="coupled (scenarios.fire_evacuation)")
    return ds


def smallest_margin(margin, end_s: float) -> dict[str, Any]:
    """The smallest ASET − RSET over the storeys that became untenable, its storey, and whether it is a bound.

    A storey untenable while people were still on it at the end (RSET unknown, NaN) has a margin of at
    most ASET − ``end_s`` (s since ignition): that bound enters the minimum (``smallest_margin_is_bound``).
    """
    import numpy as np

    aset = margin["aset_s"].to_numpy(float)
    rset = margin["rset_s"].to_numpy(float)
    left = np.isfinite(aset) & ~np.isfinite(rset) & (margin["people"].to_numpy(float) > 0)
    values = np.where(left, aset - float(end_s), aset - rset)
    ok = np.isfinite(values)
    if not ok.any():
        return {"smallest_margin_s": None, "smallest_margin_level": None, "smallest_margin_is_bound": False}
    i = int(np.flatnonzero(ok)[np.argmin(values[ok])])
    level = str(margin["level"].iloc[i]) if "level" in margin else f"L{int(margin['floor'].iloc[i]) + 1}"
    return {"smallest_margin_s": float(values[i]), "smallest_margin_level": level,
            "smallest_margin_is_bound": bool(left[i])}


def summary_of(res: FireEvacuationResult) -> dict[str, Any]:
    """Headline figures: alarm, RSET coupled and not, people caught, the smallest margins.

    ``rset_s``: fire time the last person not cut off reaches safety (None while such a person is still
    inside at the end); ``floors_rset_after_aset``: floors with people still on them at their ASET (a
    negative margin, or a floor never cleared because its stairs closed); ``smallest_margin``: by
    :func:`smallest_margin` (a floor still occupied at the end counts as at most ASET − end, ``is_bound``),
    ``smallest_margin_uncoupled``: over the floors with a finite margin without smoke effects.
    """
    import numpy as np

    t = res.margin
    ev, plain = res.evacuation, res.uncoupled

    def rset(ds) -> float | None:
        """Fire time the last person not caught reaches safety; None while someone not caught is inside."""
        if ds is None:
            return None
        safe = ds["t_safe"].values
        caught = ds["occ_cut_off"].values.astype(bool) if "occ_cut_off" in ds else np.zeros(safe.size, bool)
        if not np.isfinite(safe[~caught]).all():
            return None
        return round(res.alarm_s + float(safe[~caught].max(initial=0.0)), 1)

    def smallest(col: str) -> dict | None:
        m = t[col].to_numpy(float)
        if not np.isfinite(m).any():
            return None
        i = int(np.nanargmin(m))
        return {"floor": int(t["floor"][i]), "level": t["level"][i], "margin_s": round(float(m[i]), 1)}

    late = t[(np.isfinite(t["margin_s"]) & (t["margin_s"] < 0)) | (t["people_caught"] > 0)]
    sm = smallest_margin(t, float(res.fire.dataset["time"].values[-1]))
    least = None
    if sm["smallest_margin_s"] is not None:
        floor = int(t["floor"][t["level"] == sm["smallest_margin_level"]].iloc[0])
        least = {"floor": floor, "level": sm["smallest_margin_level"], "margin_s": round(sm["smallest_margin_s"], 1),
                 "is_bound": sm["smallest_margin_is_bound"]}
    return {
        "alarm_s": None if not math.isfinite(res.alarm_s) else round(res.alarm_s, 1),
        "people": int(t["people"].sum()),
        "rset_s": rset(ev), "rset_uncoupled_s": rset(plain),
        "people_not_safe": None if ev is None else int(ev.attrs["people_not_safe"]),
        "people_caught": int(t["people_caught"].sum()), "people_cut_off": int(t["people_cut_off"].sum()),
        "people_caught_uncoupled": int(t["people_caught_uncoupled"].sum()),
        "people_in_smoke_s": round(float(t["people_in_smoke_s"].sum()), 1),
        "floors_rset_after_aset": [int(f) for f in late["floor"]],
        "smallest_margin": least, "smallest_margin_uncoupled": smallest("margin_uncoupled_s"),
        "door_hold": None if ev is None else ev.attrs.get("door_hold"),
    }


# ----------------------------------------------------------------------------- run kind
class FireEvacuationRequest(FireRequest):
    """A fire run's parameters (:class:`physics.fire_run.FireRequest`) plus the evacuation's.

    Attributes
    ----------
    seed : int
        Seed of the evacuation's random draws (pre-movement, speeds, walking distances).
    door_hold : {"passing", "closed", "open"}
        Stair doors held open by people passing (for the block they pass in), always closed, always open.
    alarm_s : float or None
        Time of the alarm after ignition (s); None: the first detector or sprinkler the fire model predicts.
    """

    seed: int = Field(default=0, ge=0, le=2**32 - 1, description="Seed of the evacuation's draws")
    door_hold: Literal["passing", "closed", "open"] = Field(
        default="passing", description="Stair doors held open by people passing, always closed, or always open")
    alarm_s: float | None = Field(default=None, ge=0.0, allow_inf_nan=False,
                                  description="Alarm time after ignition (s); default the first detector/sprinkler")


def _kwargs(req: FireEvacuationRequest) -> dict[str, Any]:
    from physics.fire_run import sim_kwargs

    kw = sim_kwargs(req)
    kw.pop("record_every_s", None)
    return {**kw, "seed": req.seed, "door_hold": req.door_hold, "alarm_s": req.alarm_s}


def run_fire_evacuation(req: FireEvacuationRequest, ctx: RunContext):
    """Run :func:`evacuate_with_fire`; the fire Dataset with the margins per storey (the map's)."""
    def progress(t_s: float, duration_s: float, info: dict | None = None) -> None:
        ctx.report(float(t_s), float(duration_s), **{k: v for k, v in (info or {}).items()
                                                     if isinstance(v, int | float | str)})

    res = evacuate_with_fire(**_kwargs(req), fire_record_s=req.record_every_s, progress=progress)
    ctx.extras.update(result=res.fire, evacuation=res, run_time_s=res.wall_time_s)
    ds = res.fire.dataset
    ds.attrs.setdefault("title", f"Fire on L{req.floor + 1} and evacuation — {ds.attrs.get('building', '')}")
    return ds


def write_fire_evacuation(ds, out_dir, req: FireEvacuationRequest, ctx: RunContext) -> RunOutputs:
    """The fire's files (:func:`physics.fire_io.write_fire_outputs`) + evacuation.nc, evacuation_uncoupled.nc,
    margin.csv; the summary (the fire's under ``fire``)."""
    from physics.fire_io import summarise, write_fire_outputs
    from twin.pipeline import write_run_events

    res: FireEvacuationResult = ctx.extras["evacuation"]
    out = Path(out_dir)
    fire = replace(res.fire, dataset=ds)
    paths = write_fire_outputs(fire, out, events=False)
    paths["events"] = write_run_events(run_events(res), out)
    if res.evacuation is not None:
        paths["evacuation"] = out / "evacuation.nc"
        res.evacuation.to_netcdf(paths["evacuation"])
    if res.uncoupled is not None:
        paths["evacuation_uncoupled"] = out / "evacuation_uncoupled.nc"
        res.uncoupled.to_netcdf(paths["evacuation_uncoupled"])
    paths["margin"] = out / "margin.csv"
    res.margin.to_csv(paths["margin"], index=False, float_format="%.1f")
    summary = {**res.summary, "fire": summarise(fire, run_time_s=ctx.extras.get("run_time_s"))}
    return RunOutputs(paths=paths, summary=summary)


def run_events(res: FireEvacuationResult) -> list:
    """The fire's events and the evacuation's (times since ignition), in time order, as twin events."""
    import json

    from physics.fire_io import event_records
    from twin.events import Event

    out = list(event_records(res.fire))
    if res.evacuation is not None:
        for rec in json.loads(res.evacuation.attrs.get("events", "[]")):
            rec = {**rec, "time_s": float(rec["time_s"]) + res.alarm_s,
                   "data": {**rec.get("data", {}), "evacuation_time_s": float(rec["time_s"])}}
            out.append(Event.parse(rec))
    return sorted(out, key=lambda e: e.time_s)


def fire_evacuation_layers(ds, *, warp=None, max_px: int | None = None) -> list:
    """The storeys coloured by tenability with RSET and margin in the hover (``fire_floors``)."""
    from physics.fire_run import fire_layers

    return fire_layers(ds, warp=warp, max_px=max_px)


def report_sections(ds, summary: dict, ctx: RunContext | None = None) -> list[str]:
    """The fire's report sections, then the margin table (coupled beside uncoupled)."""
    import html

    from physics.fire_report import report_sections as fire_sections

    res = None if ctx is None else ctx.extras.get("evacuation")
    out = fire_sections(ds, summary.get("fire", summary), ctx)
    if res is None:
        return out
    t = res.margin
    rows = t[(t["people"] > 0) | t["aset_s"].notna()]

    def cell(v) -> str:
        if isinstance(v, float):
            return "–" if not math.isfinite(v) else f"{v:.0f}"
        return html.escape(str(v))

    cols = ["level", "people", "aset_s", "rset_s", "margin_s", "people_caught", "people_cut_off",
            "rset_uncoupled_s", "margin_uncoupled_s", "people_caught_uncoupled"]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{cell(r[c])}</td>" for c in cols) + "</tr>"
                   for _, r in rows.iterrows())
    s = res.summary
    text = (f"Alarm at {s['alarm_s']} s after ignition; RSET with smoke {s['rset_s']} s, without "
            f"{s['rset_uncoupled_s']} s; people caught at their floor's ASET {s['people_caught']} "
            f"(without smoke effects {s['people_caught_uncoupled']}), cut off by closed stairs {s['people_cut_off']}; "
            f"stair doors: {s['door_hold']}.")
    return out + [f"<section><h2>Evacuation margin per floor</h2><p>{html.escape(text)}</p>"
                  f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></section>"]


def map_view(ds, view: dict) -> dict:
    from physics.fire_run import map_view as fire_view

    return fire_view(ds, view)


def describe(params: dict[str, Any]) -> str:
    return (f"{params.get('building')}: fire on L{int(params.get('floor', 0)) + 1}, evacuation "
            f"(doors {params.get('door_hold', 'passing')}, seed {params.get('seed', 0)})")


FIRE_EVACUATION = register_kind(RunKind(
    name=KIND, title="High-rise fire with evacuation", request=FireEvacuationRequest,
    run=run_fire_evacuation, write=write_fire_evacuation, layers=fire_evacuation_layers,
    report_sections=report_sections, output="fire.nc", describe=describe,
    summary_keys=("alarm_s", "rset_s", "rset_uncoupled_s", "people_caught", "smallest_margin"),
    duration_s=lambda req: req.duration_s, check=check_fire, map_view=map_view,
))

__all__ = ["DOOR_HOLDS", "FIRE_EVACUATION", "FireEvacuation", "FireEvacuationRequest", "FireEvacuationResult",
           "FireHazard", "building_file", "closed_doors", "run_events", "evacuate_with_fire", "evacuation_tower", "margin_table", "speed_factors", "summary_of",
           "with_margin"]
