"""Building evacuation: every occupant from their floor down the stairs to an exit (SFPE-based, agent by agent).

Occupants are individuals in numpy arrays. Each one gets, from the run's
seeded generator, a pre-movement time
(:func:`agents.demographics.premovement_sample`), a free walking speed by
demographics (:func:`agents.demographics.speed_sample`; the
``"shenzhen_census_2020"`` profile draws ages from Shenzhen's 2020 census
age shares and speeds by age after RiMEA 3.0 test 7), a stair (floors share
their people evenly among the stairs) and a walking distance to the stair
door, uniform in ``[0, travel_m]`` of the floor. A speed factor ``fac = v /
1.34 m/s`` (the person's speed over Weidmann's mean) scales the SFPE speeds:
``0.85 x 1.40 fac`` m/s on the floor, ``S(D) fac`` on the stairs.

Then they move floor -> stair door queue -> stair flights (queues where
the flow exceeds an element's capacity, speed by density per SFPE) ->
landings with merging -> exit door; :mod:`agents._kernels.building` has the
rules. Time advances in fixed steps (default 0.5 s): the hydraulic model's
elements are flows in persons per second, which a step turns into places
per step with a token bucket; a fixed step makes every element's capacity
exact over time, runs thousands of people through hundreds of elements in
numba without per-person events, and its discretisation error on flows is
bounded by one person per bucket (tests hold the SFPE flows within 5 %).
A discrete-event (simpy) scheduler would need one Python event per person
per element.

:func:`simulate` returns an :class:`xarray.Dataset` (variables below) and
:func:`events` the run's events (floor cleared, queue formed, last out).
:class:`BuildingEvacuation` is the same run stepped block by block (a
co-simulation with a fire). With a ``hazard`` (:mod:`agents.building_hazard`)
smoke slows walking and stair flights and untenable stair doors close between
blocks (people choose another stair, or are cut off); without one the run is
the clear-air run, to the bit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import xarray as xr

from agents.building import Tower
from agents.building_hazard import HazardFn
from twin.errors import ValidationError

#: Unimpeded horizontal speed of the SFPE model, 0.85 k with k = 1.40 m/s (m/s).
V_FLOOR_MPS = 0.85 * 1.40
#: Shenzhen 2020 census age shares (city row of population/census2020_districts.csv:
#: 0-14 15.08 %, 15-64 81.73 %, 65+ 3.2 %) and the age range drawn uniformly in each group
#: (5-15, 15-65, 65-80 years: the RiMEA speed-by-age table covers 5-80).
CENSUS_2020_AGE_GROUPS = ((0.1508, 5.0, 15.0), (0.8173, 15.0, 65.0), (0.0320, 65.0, 80.0))
#: A queue "forms" at a door when this many people wait there (event threshold).
QUEUE_EVENT_PEOPLE = 5
#: Most frames of people-per-floor and flows kept over time.
DEFAULT_RECORD_S = 5.0


def _ages_census(rng: np.random.Generator, n: int) -> np.ndarray:
    shares = np.array([g[0] for g in CENSUS_2020_AGE_GROUPS])
    group = rng.choice(len(shares), size=n, p=shares / shares.sum())
    lo = np.array([g[1] for g in CENSUS_2020_AGE_GROUPS])[group]
    hi = np.array([g[2] for g in CENSUS_2020_AGE_GROUPS])[group]
    return lo + (hi - lo) * rng.random(n)


def sample_speeds(rng: np.random.Generator, n: int, profile: str) -> np.ndarray:
    """Free walking speeds (m/s) of ``n`` people of a demographics ``profile``."""
    from agents.demographics import speed_sample

    if profile == "shenzhen_census_2020":
        return speed_sample(rng, n, "rimea_age", ages=_ages_census(rng, n))
    return speed_sample(rng, n, profile)


def _people(tower: Tower, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per-person floor, stair, exit, speed, pre-movement, distance and arrival time at the door."""
    from agents.demographics import WEIDMANN_MEAN_MPS, premovement_sample

    mv = tower.spec.movement
    floor = np.repeat(np.arange(tower.n_floors), tower.people).astype(np.int64)
    n = floor.size
    j = np.concatenate([np.arange(p) for p in tower.people]) if n else np.zeros(0, np.int64)
    stair = ((j + floor) % tower.n_stairs).astype(np.int64)
    n_exits = len(tower.exit_width_eff_m)
    exit_ = np.where(floor == 0, j % n_exits, tower.stair_exit[stair]).astype(np.int64)
    speed = sample_speeds(rng, n, mv.demographics)
    pre = premovement_sample(rng, n, mv.premovement.dist, **mv.premovement.params())
    dist = rng.random(n) * tower.travel_m[floor]
    fac = speed / WEIDMANN_MEAN_MPS
    return {"floor": floor, "stair": stair, "exit": exit_, "speed": speed, "fac": fac, "pre": pre,
            "dist": dist, "t_arrive": pre + dist / (V_FLOOR_MPS * fac)}


def _network(tower: Tower, dt: float):
    from agents._kernels.building import Net
    from agents.stairs import D_JAM, K_LEVEL, max_specific_flow

    hold = np.floor(D_JAM * tower.stair_length_m.T * tower.stair_width_eff_m[None, :]).astype(np.int64)
    return Net(
        n_floors=tower.n_floors, n_stairs=tower.n_stairs, n_exits=len(tower.exit_width_eff_m),
        floor_share=float(tower.spec.movement.floor_share),
        refuge_stop=tower.spec.movement.refuge_mode == "stop", queue_event_n=QUEUE_EVENT_PEOPLE,
        refuge=tower.refuge.copy(), flight_len=np.ascontiguousarray(tower.stair_length_m.T),
        flight_we=tower.stair_width_eff_m.astype(float), flight_k=tower.stair_k.astype(float),
        flight_hold=np.maximum(hold, 1),
        flight_c=np.array([max_specific_flow(k) * w for k, w in zip(tower.stair_k, tower.stair_width_eff_m, strict=True)]),
        door_c=max_specific_flow(K_LEVEL) * tower.stair_door_width_eff_m,
        exit_c=max_specific_flow(K_LEVEL) * tower.exit_width_eff_m, stair_exit=tower.stair_exit.copy())


def _offsets(caps: np.ndarray) -> tuple[np.ndarray, int]:
    off = np.zeros(caps.size, dtype=np.int64)
    if caps.size > 1:
        off[1:] = np.cumsum(caps[:-1])
    return off, int(caps.sum())


def _state(net, p: dict[str, np.ndarray], reroute: bool = False):
    """Queues, flights and counters; with ``reroute`` every door queue and flight has room for every
    person who might use it (a hazard may send anyone of a floor to any stair)."""
    from agents._kernels.building import State

    F, S, E = net.n_floors, net.n_stairs, net.n_exits
    nq = F * S + E
    qid = np.where(p["floor"] == 0, F * S + p["exit"], p["floor"] * S + p["stair"])
    qcap = np.bincount(qid, minlength=nq).astype(np.int64)
    fcap = np.zeros((F, S), dtype=np.int64)  # people of stair s from floor >= f
    for s in range(S):
        counts = np.bincount(p["floor"][p["stair"] == s] if not reroute else p["floor"], minlength=F)
        fcap[:, s] = np.cumsum(counts[::-1])[::-1]
    fcap[0, :] = 0
    if reroute:
        qcap[:F * S] = np.repeat(np.bincount(p["floor"], minlength=F), S)
        qcap[:S] = 0
    qoff, qn = _offsets(qcap)
    foff, fn = _offsets(fcap.ravel())
    return State(
        clock=np.zeros(1), ptr=np.zeros(2, dtype=np.int64),
        qbuf=np.full(max(qn, 1), -1, dtype=np.int64), qoff=qoff, qhead=np.zeros(nq, np.int64),
        qtail=np.zeros(nq, np.int64),
        fbuf=np.full(max(fn, 1), -1, dtype=np.int64), foff=foff, fhead=np.zeros(F * S, np.int64),
        ftail=np.zeros(F * S, np.int64),
        tok_flight=np.zeros(F * S), tok_door=np.zeros(nq), tok_exit=np.zeros(E), carry=np.zeros(nq),
        door_count=np.zeros(nq, np.int64), flight_count=np.zeros(F * S, np.int64),
        exit_count=np.zeros(E, np.int64), refuge_count=np.zeros(F, np.int64),
        q_formed_t=np.full(nq, np.nan), flight_fac=np.ones(F * S))


def _agents(net, p: dict[str, np.ndarray]):
    from agents._kernels.building import REFUGE, WAITING, Agents

    n = p["floor"].size
    where = np.full(n, WAITING, dtype=np.int64)
    t_leave = np.full(n, np.nan)
    t_safe = np.full(n, np.nan)
    if net.refuge_stop:  # people of a refuge floor are in a place of safety already
        home = net.refuge[p["floor"]] & (p["floor"] > 0)
        where[home] = REFUGE
        t_leave[home] = 0.0
        t_safe[home] = 0.0
    return Agents(floor=p["floor"], stair=p["stair"], exit=p["exit"], fac=p["fac"].astype(float),
                  t_arrive=p["t_arrive"].astype(float), order=np.argsort(p["t_arrive"], kind="stable"),
                  where=where, pos=np.zeros(n), t_leave=t_leave, t_safe=t_safe)


def _ready_at_bottom(net, ag, st) -> np.ndarray:
    """(F, S) people waiting at the bottom of each flight (storey f -> f-1)."""
    out = np.zeros((net.n_floors, net.n_stairs), dtype=np.int64)
    for f in range(1, net.n_floors):
        for s in range(net.n_stairs):
            fl = f * net.n_stairs + s
            ids = st.fbuf[st.foff[fl] + st.fhead[fl]: st.foff[fl] + st.ftail[fl]]
            out[f, s] = int(np.count_nonzero(ag.pos[ids] >= net.flight_len[f, s] - 1e-9))
    return out


def simulate(tower: Tower, *, seed: int = 0, dt: float = 0.5, record_every_s: float = DEFAULT_RECORD_S,
             max_time_s: float = 6 * 3600.0, progress: Callable[[float, float, dict], None] | None = None,
             reference: bool = False, hazard: HazardFn | None = None) -> xr.Dataset:
    """Evacuate ``tower``; the Dataset of the run (see the module docstring for the model).

    Parameters
    ----------
    tower : agents.building.Tower
        The checked building (:func:`agents.building.resolve`).
    seed : int
        Seed of every random draw (same seed, same run).
    dt : float
        Time step (s), 0.05-1.
    record_every_s : float
        Interval of the time series (s), a whole number of steps.
    max_time_s : float
        Stop here even if people remain (they are reported as not out).
    progress : callable(t_s, max_time_s, info), optional
        Called after every record with the simulated time and ``{"out", "people"}``.
    reference : bool
        Run the interpreted kernel (tests only; slow).
    hazard : callable(t_s, EvacState) -> BuildingHazard, optional
        Smoke and closures (:mod:`agents.building_hazard`): called at 0 s and after every record
        block with what the people did in it; its factors and closed doors hold until the next
        call. Without it the run is the clear-air one.

    Returns
    -------
    xarray.Dataset
        Per floor: ``rset_floor`` (time the floor's last person enters a stair,
        or leaves by an exit on the ground floor), ``exit_time_floor`` (its last
        person safe), ``aset``, ``rset_minus_aset``; over ``time``:
        ``people_on_floor``, ``people_in_stair``, ``people_out``,
        ``people_in_refuge``, ``door_queue``, ``landing_queue``, ``exit_queue``,
        ``door_flow``, ``stair_flow``, ``exit_flow`` (P/s over the preceding
        interval); per occupant: ``occ_floor``, ``occ_stair``, ``occ_exit``,
        ``occ_speed``, ``premovement``, ``t_at_door``, ``t_leave_floor``,
        ``t_safe``; ``rset`` (s, last person safe) in attrs; ``events`` in
        attrs (JSON). With a ``hazard`` also: ``floor_speed_factor``
        (time, floor), ``flight_speed_factor`` and ``stair_door_closed``
        (time, floor, stair) in force from each record on, ``door_closed_time``
        (floor, stair), ``floor_closed_time`` and ``people_cut_off`` (floor),
        ``occ_rerouted`` and ``occ_cut_off`` (occupant).
    """
    ev = BuildingEvacuation(tower, seed=seed, dt=dt, record_every_s=record_every_s, max_time_s=max_time_s,
                            reference=reference, hazard=hazard)
    while not ev.done:
        ev.step_block()
        if progress is not None:
            progress(ev.t, max_time_s, {"out": ev.people_safe, "people": ev.n_people})
    return ev.dataset()


class BuildingEvacuation:
    """The evacuation of :func:`simulate` advanced block by block (a co-simulation steps it with a fire).

    Same keywords as :func:`simulate` (without ``progress``). :meth:`step_block` runs one record
    block (``record_every_s``), records it and, with a hazard, hands the hazard the block and applies
    what it returns; :meth:`advance_to` runs blocks to a time; :meth:`dataset` is the run so far.
    """

    def __init__(self, tower: Tower, *, seed: int = 0, dt: float = 0.5, record_every_s: float = DEFAULT_RECORD_S,
                 max_time_s: float = 6 * 3600.0, reference: bool = False, hazard: HazardFn | None = None):
        from agents._kernels.building import advance, advance_reference

        if not (isinstance(seed, int | np.integer) and not isinstance(seed, bool) and seed >= 0):
            raise ValidationError(f"seed={seed!r}: a whole number >= 0")
        if not (math.isfinite(dt) and 0.05 <= dt <= 1.0):
            raise ValidationError(f"dt={dt!r}: the time step must lie in 0.05-1 s")
        per_record = max(1, int(round(record_every_s / dt)))
        if abs(per_record * dt - record_every_s) > 1e-6 * record_every_s:
            raise ValidationError(f"record_every_s={record_every_s!r}: must be a whole number of steps of "
                                  f"dt={dt!r} s")
        if not (math.isfinite(max_time_s) and max_time_s > 0):
            raise ValidationError(f"max_time_s={max_time_s!r}: must be a positive number of seconds")
        self.tower, self.seed, self.dt, self.per_record, self.max_time_s = tower, int(seed), dt, per_record, max_time_s
        self.hazard = hazard
        self.p = p = _people(tower, np.random.default_rng(int(seed)))
        self.net = net = _network(tower, dt)
        self.st = st = _state(net, p, reroute=hazard is not None)
        self.ag = ag = _agents(net, p)
        st.ptr[1] = int(np.count_nonzero(np.isfinite(ag.t_safe)))
        self._step = advance_reference if reference else advance
        self.n_people = ag.floor.size
        self.series: dict[str, list] = {k: [] for k in ("time", "floor", "stair", "flight", "out", "refuge",
                                                        "door_q", "land_q", "exit_q", "door_n", "flight_n",
                                                        "exit_n")}
        F, S = net.n_floors, net.n_stairs
        self.run = None
        if hazard is not None:
            from agents.building_hazard import HazardRun

            self.run = HazardRun(tower.travel_m, V_FLOOR_MPS, p["dist"], p["pre"])
            self.series.update(floor_fac=[], flight_fac=[], closed=[])
        self._passed = np.zeros(F * S + S, np.int64)  # door passages, then people out of each stair's foot
        self._record()
        if self.run is not None:
            _hazard_block(hazard, self.run, net, ag, st, self.series, self._passed)

    @property
    def t(self) -> float:
        """Time of the run (s since the alarm)."""
        return float(self.st.clock[0])

    @property
    def people_safe(self) -> int:
        return int(self.st.ptr[1])

    @property
    def people_cut_off(self) -> int:
        return 0 if self.run is None else int(self.run.caught.sum())

    @property
    def done(self) -> bool:
        """Everyone safe (or caught), or ``max_time_s`` reached."""
        return self.people_safe + self.people_cut_off >= self.n_people or self.t >= self.max_time_s - 1e-9

    def _record(self) -> None:
        from agents._kernels.building import QUEUED, WAITING

        net, ag, st, series = self.net, self.ag, self.st, self.series
        F, S = net.n_floors, net.n_stairs
        waiting = (ag.where == WAITING) | (ag.where == QUEUED)
        series["time"].append(float(st.clock[0]))
        series["floor"].append(np.bincount(ag.floor[waiting], minlength=F))
        on_flight = (st.ftail - st.fhead).reshape(F, S)
        series["flight"].append(on_flight.copy())
        series["stair"].append(on_flight.sum(axis=0))
        series["out"].append(int(st.exit_count.sum()))
        series["refuge"].append(int(np.count_nonzero(ag.where == 4)))
        q = st.qtail - st.qhead
        series["door_q"].append(q[:F * S].reshape(F, S).copy())
        series["exit_q"].append(q[F * S:].copy())
        series["land_q"].append(_ready_at_bottom(net, ag, st))
        series["door_n"].append(st.door_count[:F * S].reshape(F, S).copy())
        series["flight_n"].append(st.flight_count.reshape(F, S).copy())
        series["exit_n"].append(st.exit_count.copy())

    def step_block(self) -> None:
        """One record block (shorter at ``max_time_s``), recorded; then the hazard's call."""
        if self.done:
            return
        steps = min(self.per_record, int(math.ceil((self.max_time_s - self.t) / self.dt - 1e-9)))
        self._step(steps, self.dt, self.net, self.ag, self.st)
        self._record()
        if self.run is not None:
            _hazard_block(self.hazard, self.run, self.net, self.ag, self.st, self.series, self._passed)

    def advance_to(self, t_s: float) -> None:
        """Run blocks until the first record time at or after ``t_s`` (or the end)."""
        while not self.done and self.t < float(t_s) - 1e-9:
            self.step_block()

    def dataset(self) -> xr.Dataset:
        """The run so far (see :func:`simulate`)."""
        ds = _dataset(self.tower, self.p, self.net, self.ag, self.st, self.series, seed=self.seed, dt=self.dt,
                      record_every_s=self.per_record * self.dt)
        return ds if self.run is None else _with_hazard(ds, self.run, self.ag, self.series)


def _hazard_block(hazard: HazardFn, run, net, ag, st, series: dict, passed: np.ndarray) -> None:
    """Hand the hazard what the block did, apply what it returns, record it (from now on)."""
    from agents.building_hazard import EvacState, check_hazard

    F, S = net.n_floors, net.n_stairs
    now = st.door_count[:F * S]
    # left stair s at the ground = entered its lowest flight (1 -> 0) and no longer on it (cumulative)
    bottom = st.flight_count[S:2 * S] - (st.ftail[S:2 * S] - st.fhead[S:2 * S]) if F > 1 else np.zeros(S, np.int64)
    state = EvacState(t_s=float(st.clock[0]), door_passed=(now - passed[:F * S]).reshape(F, S),
                      people_on_floor=series["floor"][-1].copy(), people_on_flight=series["flight"][-1].copy(),
                      door_queue=series["door_q"][-1].copy(), people_out=int(st.exit_count.sum()),
                      people_cut_off=run.n_caught(ag), stair_out=bottom - passed[F * S:])
    passed[:F * S] = now
    passed[F * S:] = bottom
    h = check_hazard(hazard(state.t_s, state), F, S)
    run.apply(h, state.t_s, net, ag, st)
    series["floor_fac"].append(run.floor_speed.copy())
    series["flight_fac"].append(st.flight_fac.reshape(F, S).copy())
    series["closed"].append(run.closed.copy())


def _with_hazard(ds: xr.Dataset, run, ag, series: dict) -> xr.Dataset:
    """The hazard's variables added to the run's Dataset, and its closures and caught people to the events."""
    import json

    ds = ds.assign(
        floor_speed_factor=(("time", "floor"), np.asarray(series["floor_fac"]),
                            {"long_name": "smoke factor of the horizontal walking speed, from this time on",
                             "units": "1"}),
        flight_speed_factor=(("time", "floor", "stair"), np.asarray(series["flight_fac"]),
                             {"long_name": "smoke factor of the speed and flow on the flight from this floor "
                                           "down, from this time on", "units": "1"}),
        stair_door_closed=(("time", "floor", "stair"), np.asarray(series["closed"]).astype(np.int8),
                           {"long_name": "the floor's door into the stair is closed to the floor's people "
                                         "(untenable), from this time on", "units": "1"}),
        door_closed_time=(("floor", "stair"), run.door_closed_t,
                          {"long_name": "time the floor's door into the stair closed (NaN: never)", "units": "s"}),
        floor_closed_time=("floor", run.closed_t, {"long_name": "time every stair door of the floor was closed "
                                                               "(NaN: never)", "units": "s"}),
        people_cut_off=("floor", run.n_caught(ag), {"long_name": "people caught on the floor: every stair door "
                                                                "closed (they stay)", "units": "P"}),
        occ_rerouted=("occupant", run.rerouted, {"long_name": "times the occupant chose another stair", "units": "1"}),
        occ_cut_off=("occupant", run.caught.astype(np.int8),
                    {"long_name": "occupant caught on a floor whose every stair door closed (1)", "units": "1"}),
    )
    ds["t_at_door"] = ds["t_at_door"].copy(data=np.where(np.isfinite(ag.t_arrive), ag.t_arrive, np.nan))
    ds["t_at_door"].attrs["long_name"] = "time reaching the stair (or exit) door, in smoke and after re-routing " \
                                         "(NaN: caught)"
    ds.attrs["people_cut_off"] = int(ds["people_cut_off"].sum())
    ds.attrs["events"] = json.dumps([e.to_record() for e in events(ds)], ensure_ascii=False)
    return ds


def _flows(cum: np.ndarray, times: np.ndarray) -> np.ndarray:
    out = np.zeros(cum.shape, dtype=float)
    if len(times) > 1:
        dt = np.diff(times).reshape((-1,) + (1,) * (cum.ndim - 1))
        out[1:] = np.diff(cum, axis=0) / dt
    return out


def _max_or_nan(values: np.ndarray, groups: np.ndarray, n: int) -> np.ndarray:
    out = np.full(n, np.nan)
    for g in range(n):
        v = values[groups == g]
        if v.size:
            out[g] = np.nan if np.isnan(v).any() else v.max()
    return out


def _dataset(tower: Tower, p, net, ag, st, series, *, seed: int, dt: float, record_every_s: float) -> xr.Dataset:
    import json

    times = np.asarray(series["time"])
    F, S, E = net.n_floors, net.n_stairs, net.n_exits
    rset_floor = _max_or_nan(ag.t_leave, ag.floor, F)
    exit_floor = _max_or_nan(ag.t_safe, ag.floor, F)
    n = ag.floor.size
    done = np.isfinite(ag.t_safe)
    rset = float(ag.t_safe.max()) if n and done.all() else (0.0 if n == 0 else float("nan"))
    floors = np.arange(F)
    ds = xr.Dataset(
        {
            "people_initial": ("floor", tower.people.astype(np.int64), {"long_name": "people on the floor at the alarm", "units": "P"}),
            "floor_elevation": ("floor", tower.floor_elevation_m, {"long_name": "floor level above ground", "units": "m"}),
            "refuge": ("floor", tower.refuge.astype(np.int8), {"long_name": "refuge floor (1)", "units": "-"}),
            "rset_floor": ("floor", rset_floor, {"long_name": "time the floor's last person leaves it (enters a stair; "
                                                              "on the ground floor: passes an exit)", "units": "s"}),
            "exit_time_floor": ("floor", exit_floor, {"long_name": "time the floor's last person reaches safety "
                                                                  "(an exit or a refuge floor)", "units": "s"}),
            "aset": ("floor", tower.aset_s, {"long_name": "available safe egress time (given)", "units": "s"}),
            "rset_minus_aset": ("floor", rset_floor - tower.aset_s,
                                {"long_name": "RSET - ASET of the floor: > 0 means people are still on the floor "
                                              "after it becomes untenable", "units": "s"}),
            "queue_formed": (("floor", "stair"), st.q_formed_t[:F * S].reshape(F, S),
                             {"long_name": f"first time {QUEUE_EVENT_PEOPLE} people wait at the stair door", "units": "s"}),
            "people_on_floor": (("time", "floor"), np.asarray(series["floor"]),
                                {"long_name": "people still on the floor (not yet in a stair)", "units": "P"}),
            "people_in_stair": (("time", "stair"), np.asarray(series["stair"]),
                                {"long_name": "people on the stair's flights", "units": "P"}),
            "people_on_flight": (("time", "floor", "stair"), np.asarray(series["flight"]),
                                 {"long_name": "people on the flight from this floor down to the one below "
                                               "(floor 0: none)", "units": "P"}),
            "flight_area": (("floor", "stair"), np.where(floors[:, None] > 0, net.flight_len * net.flight_we[None, :],
                                                         np.nan),
                            {"long_name": "walking area of the flight from this floor down (travel length x "
                                          "effective width)", "units": "m2"}),
            "people_out": ("time", np.asarray(series["out"]), {"long_name": "people out of the building", "units": "P"}),
            "people_in_refuge": ("time", np.asarray(series["refuge"]),
                                 {"long_name": "people in a refuge floor (its own included)", "units": "P"}),
            "door_queue": (("time", "floor", "stair"), np.asarray(series["door_q"]),
                           {"long_name": "people queued at the floor's door into the stair", "units": "P"}),
            "landing_queue": (("time", "floor", "stair"), np.asarray(series["land_q"]),
                              {"long_name": "people held at the bottom of the flight from this floor "
                                            "(waiting for the landing below)", "units": "P"}),
            "exit_queue": (("time", "exit"), np.asarray(series["exit_q"]),
                           {"long_name": "ground-floor people queued at the exit door", "units": "P"}),
            "door_flow": (("time", "floor", "stair"), _flows(np.asarray(series["door_n"]), times),
                          {"long_name": "flow through the floor's stair door", "units": "P/s"}),
            "stair_flow": (("time", "floor", "stair"), _flows(np.asarray(series["flight_n"]), times),
                           {"long_name": "flow onto the flight below the floor's landing", "units": "P/s"}),
            "exit_flow": (("time", "exit"), _flows(np.asarray(series["exit_n"]), times),
                          {"long_name": "flow out through the exit door", "units": "P/s"}),
            "occ_floor": ("occupant", ag.floor, {"long_name": "occupant's floor", "units": "-"}),
            "occ_stair": ("occupant", np.where(ag.floor > 0, ag.stair, -1), {"long_name": "stair used (-1: none)", "units": "-"}),
            "occ_exit": ("occupant", ag.exit, {"long_name": "exit door", "units": "-"}),
            "occ_speed": ("occupant", p["speed"], {"long_name": "free walking speed", "units": "m/s"}),
            "premovement": ("occupant", p["pre"], {"long_name": "pre-movement time", "units": "s"}),
            "t_at_door": ("occupant", p["t_arrive"], {"long_name": "time reaching the stair (or exit) door", "units": "s"}),
            "t_leave_floor": ("occupant", ag.t_leave, {"long_name": "time entering the stair (ground: passing the exit)", "units": "s"}),
            "t_safe": ("occupant", ag.t_safe, {"long_name": "time reaching an exit or a refuge floor", "units": "s"}),
            "safe_in": ("occupant", ag.where.astype(np.int8), {"long_name": "where the occupant ended: 3 out, 4 refuge, "
                                                                            "0-2 still inside", "units": "-"}),
        },
        coords={"time": ("time", times, {"units": "s"}), "floor": floors, "stair": np.arange(S), "exit": np.arange(E),
                "occupant": np.arange(n)},
        attrs={
            "title": f"Building evacuation: {tower.name}",
            "building": tower.name, "lon": tower.lon, "lat": tower.lat, "location_label": tower.location_label,
            "footprint": json.dumps(tower.footprint), "storey_heights_m": json.dumps(tower.storey_height_m.tolist()),
            "stair_names": json.dumps(tower.stair_names), "exit_names": json.dumps(tower.exit_names),
            "stair_capacity_p_s": json.dumps(net.flight_c.tolist()), "door_capacity_p_s": json.dumps(net.door_c.tolist()),
            "exit_capacity_p_s": json.dumps(net.exit_c.tolist()),
            "rset_s": rset, "people": int(n), "people_not_safe": int(n - done.sum()),
            "seed": seed, "dt_s": dt, "record_every_s": record_every_s, "model": "SFPE hydraulic relations, agent-based, "
            "fixed step (agents.building_evac)",
        })
    ds.attrs["events"] = json.dumps([e.to_record() for e in events(ds)], ensure_ascii=False)
    return ds


def events(ds: xr.Dataset) -> Any:
    """The run's :class:`twin.events.EventLog`: queues formed, floors cleared, unsafe floors, last person out."""
    import json

    from twin.events import Event, EventLog, Severity

    stairs = json.loads(ds.attrs["stair_names"])
    queue, rset_f, margins = ds["queue_formed"].values, ds["rset_floor"].values, ds["rset_minus_aset"].values
    people, refuge = ds["people_initial"].values, ds["refuge"].values
    out: list[Event] = []
    src = "building_evac"
    for f in range(ds.sizes["floor"]):
        for s in range(ds.sizes["stair"]):
            t = float(queue[f, s])
            if math.isfinite(t):
                out.append(Event(time_s=t, kind="queue_formed", source=src, severity=Severity.ADVISORY,
                                 message=f"queue of {QUEUE_EVENT_PEOPLE} at {stairs[s]} on floor {f}",
                                 data={"floor": int(f), "stair": stairs[s]}))
        t = float(rset_f[f])
        if math.isfinite(t) and int(people[f]) > 0 and not int(refuge[f]):
            margin = float(margins[f])
            unsafe = math.isfinite(margin) and margin > 0
            out.append(Event(time_s=t, kind="floor_cleared", source=src,
                             severity=Severity.WARNING if unsafe else Severity.INFO,
                             message=f"floor {f} cleared at {t:.0f} s" + (
                                 f", {margin:.0f} s after its ASET" if unsafe else ""),
                             data={"floor": int(f), "rset_s": t,
                                   "rset_minus_aset_s": margin if math.isfinite(margin) else None}))
    out.extend(_hazard_events(ds, stairs, src))
    rset = float(ds.attrs["rset_s"])
    if math.isfinite(rset):
        out.append(Event(time_s=rset, kind="building_evacuated", source=src,
                         message=f"last person safe at {rset:.0f} s ({ds.attrs['people']} people)",
                         data={"rset_s": rset, "people": int(ds.attrs["people"])}))
    else:
        t_end = float(ds["time"].values[-1])
        out.append(Event(time_s=t_end, kind="person_stranded", source=src, severity=Severity.ALARM,
                         message=f"{ds.attrs['people_not_safe']} people still inside when the run stopped",
                         data={"people": int(ds.attrs["people_not_safe"])}))
    return EventLog(sorted(out, key=lambda e: e.time_s))


def _hazard_events(ds: xr.Dataset, stairs: list[str], src: str) -> list:
    """Stair doors closed and floors cut off (runs with a hazard)."""
    from twin.events import Event, Severity

    if "door_closed_time" not in ds:
        return []
    out = []
    closed, cut, caught = ds["door_closed_time"].values, ds["floor_closed_time"].values, ds["people_cut_off"].values
    for f, s in zip(*np.nonzero(np.isfinite(closed)), strict=True):
        out.append(Event(time_s=float(closed[f, s]), kind="stair_door_closed", source=src,
                         severity=Severity.WARNING, message=f"stair {stairs[s]} closed on floor {f} (untenable)",
                         data={"floor": int(f), "stair": stairs[s]}))
    for f in np.nonzero(np.isfinite(cut))[0]:
        out.append(Event(time_s=float(cut[f]), kind="floor_cut_off", source=src, severity=Severity.ALARM,
                         message=f"every stair closed on floor {f}: {int(caught[f])} people caught there",
                         data={"floor": int(f), "people_cut_off": int(caught[f])}))
    return out


__all__ = ["BuildingEvacuation", "CENSUS_2020_AGE_GROUPS", "V_FLOOR_MPS", "events", "sample_speeds", "simulate"]
