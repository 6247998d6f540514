"""Fire ensembles: many fire origins and growth rates on one building → ASET percentiles per floor.

A **member** is one complete, deterministic run of :func:`physics.fire_sim.simulate_fire` on the
whole building (every storey, every shaft; or on its storey window, below) with one origin (storey and
compartment) and one growth rate; every other input (sprinklers, season, duration, time step) is the same for all members. The
members are the product ``origins × growths`` (or ``members`` of them drawn without replacement
with ``seed``). Nothing inside a member is random: the spread of the ensemble is the spread over
where the fire starts and how fast it grows, nothing else (no uncertainty in the building, the
fuel, the weather or the model is sampled).

From each member the storeys' ASET (``aset_s`` of the run's dataset: the time the storey's escape
route became untenable, NaN where it stayed tenable to the end) is kept. Per storey the ensemble
gives:

* ``aset_percentile_s``: the 10th, 50th and 90th percentiles of ASET over the members that ran. A
  member whose storey stayed tenable counts as ASET > ``duration_s`` (right-censored); the
  percentile is the empirical one (``numpy.quantile(method="inverted_cdf")``: a value some member
  had, no interpolation across the censored ones) and NaN where it lies beyond the run.
* ``p_untenable``: the share of the members in which the storey was untenable by 10, 20 and 30
  minutes (NaN for a threshold beyond ``duration_s``: the run cannot tell).

Members run in parallel on a Dask ``LocalCluster`` (``workers`` processes of one thread each by
default; ``processes=False`` for threads in one process, which only helps where the kernels release
the GIL: the zone model's do not, see ``bench/bench_fire.py``), one numba thread per member,
``batch`` members per Dask task (default "auto": tasks of up to :data:`AUTO_BATCH_MAX` members spread over the
list, shrinking to one member at the end so the workers end together), or in this process one after another
with ``workers=1``. The cluster runs without the workers' statistical profiler and with slower monitors
(:data:`CLUSTER_CONFIG`). Before the members, each worker runs 2 s of the 30-storey example (kernels compiled or
loaded; its time is ``warm_s``, outside ``wall_s``). Results do not depend on the number of workers or the batch.
Each member records its CPU time, that of the windows it left (``member_cpu_left_s``), its end time and worker
(``member_end_s``, ``member_worker``: the bench's split of the CPU and the tail).
A member that fails is kept with its error (``member_ok`` False) and left out of the statistics.

**Set-up once per worker.** The building's network and the zone model's LDLᵀ ordering and pattern
(:func:`physics.fire_sim.prepare_building`, 0.2 CPU s on the 2,212-compartment tower) are made at a
worker thread's first member and reused by its next ones while the building is the same object
(:func:`prepared_building`; ``setup_cache=False`` builds every member afresh). A member run on the
cached set-up is the same, to the bit, as a fresh :func:`~physics.fire_sim.simulate_fire` run
(tested). Only what the ensemble keeps (ASET and ignition per storey, the events' counts) is taken
from a member's run; no Dataset is built.

**Time step.** Members step :data:`ENSEMBLE_DT_S` = 2 s by default (``dt_s``); a single
:func:`~physics.fire_sim.simulate_fire` run steps 1 s. Chosen with ``bench/bench_fire_ensemble.py --parts
dt`` on 600 s members (origins × the four growths × summer and winter, record every 10 s) against 1 s and
tested on other members (``tests/physics/test_fire_ensemble_dt.py``): the storeys' ASETs agree within less
than two record intervals (ASET = a record time + a fraction of the 10 s interval, so a layer passing head
height a moment earlier across a record time moves it by up to two intervals; most differences were 0 or one
interval, the largest 11.2 s), earlier rather than later, but for "ties", where an escape route's smoke layer
stops within millimetres of head height and the storey's fate turns on those millimetres (the bench tower's
storey 10, slow, summer: 0.7 mm above head height at 1 s, untenable at 443 s at 2 s); the post-flashover
fire room stays within 10 % of its rise of the 1 s run. Longer steps fail: at 2.5 s a ~23 MW
post-flashover room oscillates by hundreds of K from step to step (the explicit layer radiation with the
door-jet entrainment), and the 115-storey tower's stairs cannot give their outflow over steps longer than
~3 s (the zone model halves them). Within 600 s only the origin storey becomes untenable (once, on the
30-storey example, the storey above too); 1800 s members were checked at 2 s on the 30-storey example only.

**Storey window.** By default (``window="auto"``) a member on a building of 60 storeys or more runs only the
storeys 2 below to 3 above its origin in summer (reverse stack effect: smoke goes down the shafts), 1 below to 1
above in winter (:func:`physics.fire_window.default_window`): the shafts cut at the window's edges end in
reservoirs that hold, step by step, the state a fire-free run of the whole building has there (its stack effect);
a guard reruns a member whose smoke reached an edge storey's floor (or which ignited or made it untenable) on a
wider window (summer: 28 below, 3 above, then 40 below, 3 above; winter: eight times the first), then on the whole
building. On the 115-storey bench tower 1000 summer members cost 0.080 CPU s each against 0.60 s for whole-building
members in the same run (``bench/bench_fire_ensemble.py --parts window --window-thousand 1000``, the default path:
43.8-43.9 s in all on 2 processes on an idle machine, 48.1 s at 99.4 % contention). Validated against whole-building members on both examples, summer and winter, sprinklers on and off (``tests/physics/test_fire_window.py``: every storey's ASET within two
record intervals, as the time step's test); ``window=None`` is the whole building for every member, the path
before windows to the bit. On the 30-storey example "auto" keeps the whole building (a window did not pay there).
"""

from __future__ import annotations

import itertools
import math
import os
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from twin.errors import ValidationError

#: The t² growth classes (NFPA 72 / BS PD 7974-1), slowest first.
GROWTHS = ("slow", "medium", "fast", "ultrafast")
#: Percentiles of ASET reported per storey.
PERCENTILES = (10, 50, 90)
#: Times (s) at which the probability that a storey is untenable is reported: 10, 20, 30 min.
THRESHOLDS_S = (600.0, 1200.0, 1800.0)
#: Default time step of the members (s): "Time step" in the module docstring. A single run steps 1 s.
ENSEMBLE_DT_S = 2.0
#: Largest ensemble accepted in one call.
MAX_MEMBERS = 20_000

MEMBER_DEFINITION = (
    "one deterministic run of physics.fire_sim.simulate_fire on the whole building (or its storey window, "
    "physics.fire_window) with one origin (storey, compartment) and one growth rate; all other inputs shared; "
    "no other uncertainty sampled")


@dataclass(frozen=True)
class Member:
    """One member: its index, origin storey and compartment (None: the storey's first room), growth."""

    index: int
    floor: int
    compartment: str | None
    growth: str | float


# ----------------------------------------------------------------------------- members
def building_spec(building: Any) -> Any:
    """The checked :class:`~physics.fire_building.FireBuildingSpec` of a spec, example name or file path."""
    from physics.fire_sim import resolve_building

    return resolve_building(building)


def _growth(g: Any) -> str | float:
    if isinstance(g, str) and g in GROWTHS:
        return g
    if isinstance(g, int | float) and not isinstance(g, bool) and math.isfinite(g) and g > 0:
        return float(g)
    raise ValidationError(f"growths: {g!r} is neither one of {list(GROWTHS)} nor an alpha > 0 (kW/s²)")


def _origins(origins: Any, n_storeys: int) -> list[tuple[int, str | None]]:
    if isinstance(origins, str):
        if origins != "all floors":
            raise ValidationError(f"origins={origins!r}: give 'all floors' or a list of (floor, compartment|None)")
        return [(s, None) for s in range(n_storeys)]
    out = []
    for k, o in enumerate(origins):
        floor, comp = (o, None) if isinstance(o, int) and not isinstance(o, bool) else tuple(o)
        if isinstance(floor, bool) or not isinstance(floor, int | np.integer) or not 0 <= int(floor) < n_storeys:
            raise ValidationError(f"origins[{k}]={o!r}: the floor is a storey index 0..{n_storeys - 1} "
                                  "(0 = ground)")
        if comp is not None and not isinstance(comp, str):
            raise ValidationError(f"origins[{k}]={o!r}: the compartment is a name (str) or None")
        out.append((int(floor), comp))
    if not out:
        raise ValidationError("origins: empty; give at least one (floor, compartment|None) or 'all floors'")
    return out


def ensemble_members(n_storeys: int, origins: Any = "all floors", growths: Iterable[Any] = GROWTHS,
                     members: int | None = None, seed: int = 0) -> list[Member]:
    """The members: every (origin, growth) pair, or ``members`` of them drawn without replacement.

    Parameters
    ----------
    n_storeys : int
        Storeys of the building (origins are checked against it).
    origins : "all floors" or sequence of (floor, compartment or None) or of floor
    growths : sequence of growth class names or alphas (kW/s²)
    members : int, optional
        Draw this many of the pairs (``numpy.random.default_rng(seed)``, without replacement, kept in
        the pairs' order); default all of them.
    seed : int

    Raises
    ------
    twin.errors.ValidationError
        An origin off the building, an unknown growth, or more members than pairs.
    """
    orig = _origins(origins, n_storeys)
    grow = [_growth(g) for g in growths]
    if not grow:
        raise ValidationError(f"growths: empty; give some of {list(GROWTHS)} or alphas in kW/s²")
    pairs = list(itertools.product(orig, grow))
    if members is not None:
        if isinstance(members, bool) or not isinstance(members, int) or not 1 <= members <= len(pairs):
            raise ValidationError(f"members={members!r}: give a whole number from 1 to {len(pairs)} "
                                  f"(the {len(orig)} origins × {len(grow)} growths), or None for all")
        pick = np.sort(np.random.default_rng(seed).choice(len(pairs), size=members, replace=False))
        pairs = [pairs[i] for i in pick]
    if len(pairs) > MAX_MEMBERS:
        raise ValidationError(f"{len(pairs)} members: at most {MAX_MEMBERS} in one call; pass members= to draw fewer")
    return [Member(m, f, c, g) for m, ((f, c), g) in enumerate(pairs)]


# ----------------------------------------------------------------------------- one member (on a worker)
class _Prepared(threading.local):
    """This thread's prepared building (:func:`physics.fire_sim.prepare_building`), made at its first member and
    kept for the next ones while they run on the same building object (one building at a time)."""

    spec: Any = None
    prepared: Any = None


_PREPARED = _Prepared()


def prepared_building(spec: Any) -> Any:
    """The ``prepared=`` of :class:`~physics.fire_sim.FireSimulation` for ``spec`` in this thread: its network and
    the zone model's LDLᵀ plan, made once and reused while the members' building is the same object (a spec is
    not modified after it is checked). The runs stay identical to fresh ones (tested)."""
    if _PREPARED.spec is not spec:
        from physics.fire_sim import prepare_building

        _PREPARED.spec, _PREPARED.prepared = None, None  # the previous building is let go first
        _PREPARED.prepared = prepare_building(spec)
        _PREPARED.spec = spec
    return _PREPARED.prepared


def member_simulation(building: Any, member: Member, sim_kwargs: dict[str, Any], *, setup_cache: bool = True):
    """The :class:`~physics.fire_sim.FireSimulation` of ``member`` (not stepped yet); with ``setup_cache`` on the
    building's prepared network (:func:`prepared_building`), else built afresh as :func:`simulate_fire` does."""
    from physics.fire_sim import FireSimulation

    extra = {"prepared": prepared_building(building)} if setup_cache else {}
    return FireSimulation(building, floor=member.floor, compartment=member.compartment, growth=member.growth,
                          **sim_kwargs, **extra)


def _windowed(building: Any, member: Member, sim_kwargs: dict[str, Any], window: tuple[int, int]):
    """``member`` run on its storey window (:mod:`physics.fire_window`): (simulation, its window, the guard's
    finding: "" when the window's edges stayed quiet, the building storey of the edge reached or -1; the run stops
    at the record where an edge was reached)."""
    from physics import fire_window as W
    from physics.fire_sim import outside_temperature_k

    prepared = prepared_building(building)
    spec = prepared[0]
    win = W.cached_window(building, prepared, member.floor, *window)
    kw = dict(sim_kwargs)
    hist = W.cached_history(building, prepared, outside_temperature_k(kw.get("season", "summer")),
                            kw.get("dt_s", 1.0), kw.get("duration_s", 3600.0), kw.get("record_every_s", 10.0))
    sim = W.window_simulation(spec, win, hist, floor=member.floor, compartment=member.compartment,
                              growth=member.growth, **kw)
    return (sim, win, *W.run_guarded(sim, win))


def _wider(building: Any, member: Member, tried: tuple[int, int], first: tuple[int, int],
           season: str | float) -> tuple[int, int] | None:
    """:func:`physics.fire_window.wider_window` on the member's building and season (None: the whole building
    next)."""
    from physics import fire_window as W
    from physics.fire_sim import outside_temperature_k

    reverse = W.reverse_stack(outside_temperature_k(season))
    return W.wider_window(tried, first, prepared_building(building)[1].n_storeys, member.floor, reverse)


def run_member(building: Any, member: Member, sim_kwargs: dict[str, Any], setup_cache: bool = True,
               window: tuple[int, int] | None = None) -> dict[str, Any]:
    """Run ``member`` (:func:`member_simulation` to ``duration_s``, as :func:`physics.fire_sim.simulate_fire`):
    its per-storey ASET and ignition times.

    ``window`` (storeys below, above): run the member on that storey window around its origin
    (:mod:`physics.fire_window`, on the cached set-up); if the guard finds an edge reached, rerun it on a window
    wider (:func:`physics.fire_window.wider_window`, by the season's stack effect), and if that one's
    edges are reached too, on the whole building (``window_fallback`` names the first window's reason;
    ``window_used`` the window of the result, "" for the whole building).

    Returns a dict (never raises: a failure is returned with its error): ``member``, ``ok``,
    ``aset_s`` and ``ignition_s`` ((S,) arrays), ``compartment`` (the origin's name as run),
    ``events`` (count per kind), ``windowed`` (bool: the result is a window's), ``window_fallback``,
    ``window_used`` (str),
    ``wall_s``, ``cpu_s``; or ``ok`` False and ``error``. Only what the ensemble keeps is taken from the run (no
    Dataset is built).
    """
    import numba

    numba.set_num_threads(1)
    t0, c0 = time.perf_counter(), time.thread_time()
    out: dict[str, Any] = {"member": member.index, "ok": False, "windowed": False, "window_fallback": "",
                           "window_used": ""}
    try:
        sim = win = None
        w = window
        left_cpu = 0.0
        while w is not None:
            c1 = time.thread_time()
            sim, win, why, _edge = _windowed(building, member, sim_kwargs, w)
            if not why:
                out["window_used"] = f"{w[0]},{w[1]}"
                break
            left_cpu += time.thread_time() - c1
            out["window_fallback"] = out["window_fallback"] or why
            w = _wider(building, member, w, window, sim_kwargs.get("season", "summer"))
            sim, win = None, None
        out["cpu_left_s"] = left_cpu
        if sim is None:
            sim = member_simulation(building, member, sim_kwargs, setup_cache=setup_cache)
            sim.advance_to(sim.duration_s)
        counts: dict[str, int] = {}
        for e in sim.events:
            counts[e["kind"]] = counts.get(e["kind"], 0) + 1
        aset = np.where(np.isfinite(sim.tenability.aset_s), sim.tenability.aset_s, np.nan)
        ign = sim.ignition_s.copy()
        if win is not None:
            aset, ign = win.to_building(aset), win.to_building(ign)
        out.update(ok=True, aset_s=aset, ignition_s=ign, compartment=str(sim.network.names[sim.origin]),
                   events=counts, windowed=win is not None)
    except Exception as exc:  # noqa: BLE001 - a failing member is reported, not raised on the worker
        out.update(error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc(limit=4))
    out["wall_s"] = time.perf_counter() - t0
    out["cpu_s"] = time.thread_time() - c0
    out["end_unix_s"], out["worker_pid"] = time.time(), os.getpid()
    return out


def run_batch(building: Any, members: list[Member], sim_kwargs: dict[str, Any],
              setup_cache: bool = True, window: tuple[int, int] | None = None) -> list[dict[str, Any]]:
    """:func:`run_member` of each of ``members`` in turn (one Dask task for several members)."""
    return [run_member(building, m, sim_kwargs, setup_cache, window) for m in members]


def _warm_worker() -> int:
    """Before the members, on each worker (and in this process with one worker): one numba thread and a 2 s
    run of the 30-storey example, which compiles or loads the kernels, so members' times do not include it."""
    import numba

    from physics.fire_sim import simulate_fire

    numba.set_num_threads(1)
    simulate_fire("tower_30_residential", floor=1, growth="fast", duration_s=2.0, record_every_s=1.0)
    return os.getpid()


# ----------------------------------------------------------------------------- statistics
def censored_percentiles(aset_s: np.ndarray, percentiles: Sequence[float] = PERCENTILES) -> np.ndarray:
    """(P, S) empirical percentiles of ASET over members (rows of ``aset_s`` (M, S)); NaN (tenable to the end)
    counts as beyond the run, and a percentile beyond the run is NaN (see the module docstring)."""
    a = np.where(np.isfinite(aset_s), aset_s, np.inf)
    if a.shape[0] == 0:
        return np.full((len(percentiles), a.shape[1]), np.nan)
    q = np.quantile(a, np.asarray(percentiles, float) / 100.0, axis=0, method="inverted_cdf")
    return np.where(np.isfinite(q), q, np.nan)


def untenable_probability(aset_s: np.ndarray, thresholds_s: Sequence[float], duration_s: float) -> np.ndarray:
    """(T, S) share of members (rows of ``aset_s``) with ASET ≤ each threshold; NaN past ``duration_s``."""
    if aset_s.shape[0] == 0:
        return np.full((len(thresholds_s), aset_s.shape[1]), np.nan)
    out = np.array([np.mean(np.isfinite(aset_s) & (aset_s <= t), axis=0) for t in thresholds_s], float)
    out[np.asarray(thresholds_s, float) > duration_s + 1e-9] = np.nan
    return out


# ----------------------------------------------------------------------------- the ensemble
#: Dask settings of the ensemble's cluster: the workers' statistical profiler (a stack sample every 10 ms, which
#: takes the GIL from the member's thread) off, and the monitors that poll memory, the system and the event loops'
#: blocking (every 20 ms) less often. Members are CPU-bound tasks of 0.05-0.6 s with small results; nothing here
#: changes what they compute. 1000 bench-tower members (busy machine): the workers' CPU beyond their members' 9.4 ->
#: 6.9 s with the first three; 300 members, alternating pairs: with the tick at 1 s, this process 1.2-1.3 s
#: instead of 1.9-2.0 s, the workers' 4.4-4.7 s beyond their members' instead of 5.6-5.8 s.
CLUSTER_CONFIG = {"distributed.worker.profile.enabled": False,
                  "distributed.worker.memory.monitor-interval": "1s",
                  "distributed.admin.system-monitor.interval": "2s",
                  "distributed.admin.tick.interval": "1s"}


def _client(workers: int, processes: bool):
    import dask
    import distributed  # noqa: F401 - its defaults in dask's config before the set below (which would drop them)

    with dask.config.set(CLUSTER_CONFIG):
        return _start_client(workers, processes)


def _start_client(workers: int, processes: bool):
    import logging

    from distributed import Client, LocalCluster

    if processes:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                               protocol="tcp://", dashboard_address=":0", silence_logs=logging.ERROR,
                               env={"OMP_NUM_THREADS": "1"})  # numba: set_num_threads(1) in each member; an
        # env NUMBA_NUM_THREADS was seen lost on a restarted worker, which numba then refuses ("threads launched")
    else:
        cluster = LocalCluster(n_workers=1, threads_per_worker=workers, processes=False, dashboard_address=":0",
                               silence_logs=logging.ERROR)
    return Client(cluster, set_as_default=False), cluster


def _run_all(building: Any, members: list[Member], sim_kwargs: dict[str, Any], workers: int, processes: bool,
             say: Callable[[dict[str, Any]], None], setup_cache: bool = True,
             batch: int | str = "auto",
             window: tuple[int, int] | None = None) -> tuple[list[dict[str, Any]], float, float]:
    """Every member's result (in member order), the wall time of the members and that of starting and warming
    the workers before them."""
    if workers == 1:
        return _run_here(building, members, sim_kwargs, say, setup_cache, window)
    return _run_on_cluster(building, members, sim_kwargs, workers, processes, say, setup_cache, batch, window)


class _Tally:
    """The members' results in member order, and the progress report after each one."""

    def __init__(self, n: int, say: Callable[[dict[str, Any]], None]) -> None:
        self.results: list[dict[str, Any]] = [{}] * n
        self.done = self.failed = 0
        self.say = say
        self.t0 = time.perf_counter()

    def add(self, mem: Member, r: dict[str, Any]) -> None:
        self.results[mem.index] = r
        self.done += 1
        self.failed += not r["ok"]
        self.say({"phase": "members", "done": self.done, "total": len(self.results), "failed": self.failed,
                  "member": mem.index, "ok": r["ok"], "wall_s": time.perf_counter() - self.t0})


def _run_here(building: Any, members: list[Member], sim_kwargs: dict[str, Any],
              say: Callable[[dict[str, Any]], None],
              setup_cache: bool = True,
              window: tuple[int, int] | None = None) -> tuple[list[dict[str, Any]], float, float]:
    """The members one after another in this process (after warming it)."""
    t_warm = time.perf_counter()
    _warm_worker()
    tally = _Tally(len(members), say)
    for mem in members:
        tally.add(mem, run_member(building, mem, sim_kwargs, setup_cache, window))
    return tally.results, time.perf_counter() - tally.t0, tally.t0 - t_warm


#: ``batch="auto"``: the largest Dask task, in members. Per task the scheduler (in this process) and the worker
#: spend a few ms; 1000 bench-tower members took 6.3 CPU s in this process in tasks of one member, 3.3 s in tasks of 10.
AUTO_BATCH_MAX = 25


def _spread(n: int) -> np.ndarray:
    """A fixed order of ``n`` members in which any run of consecutive ones samples the whole list evenly (the
    golden-ratio sequence), so batches of it cost alike though the members are in storey order and a building's
    dear members gather on some storeys."""
    return np.argsort((np.arange(n) * 0.6180339887498949) % 1.0, kind="stable")


def _batches(members: list[Member], batch: int | str, workers: int = 1) -> list[list[Member]]:
    """The Dask tasks' members: consecutive groups of ``batch``, or with "auto" groups of the :func:`_spread` order
    shrinking towards the end (guided self-scheduling: each ``1/(4 workers)`` of the members left, at most
    :data:`AUTO_BATCH_MAX`, at least 1), so the workers end within about one member of each other."""
    if batch != "auto":
        return [members[i:i + batch] for i in range(0, len(members), batch)]
    order = [members[i] for i in _spread(len(members))]
    out, i = [], 0
    while i < len(order):
        size = min(AUTO_BATCH_MAX, max(1, math.ceil((len(order) - i) / (4 * workers))))
        out.append(order[i:i + size])
        i += size
    return out


def _run_on_cluster(building: Any, members: list[Member], sim_kwargs: dict[str, Any], workers: int,
                    processes: bool, say: Callable[[dict[str, Any]], None], setup_cache: bool = True,
                    batch: int | str = "auto",
             window: tuple[int, int] | None = None) -> tuple[list[dict[str, Any]], float, float]:
    """The members on a Dask LocalCluster of ``workers`` (warmed first), ``batch`` members per task, results
    taken as they complete."""
    from distributed import as_completed

    t_warm = time.perf_counter()
    client, cluster = _client(workers, processes)
    try:
        say({"phase": "starting workers", "done": 0, "total": len(members), "failed": 0})
        client.run(_warm_worker) if processes else client.submit(_warm_worker, pure=False).result()
        tally = _Tally(len(members), say)
        spec = client.scatter(building, broadcast=True)
        futures = {client.submit(run_batch, spec, group, sim_kwargs, setup_cache, window, pure=False,
                                 key=f"fire-members-{group[0].index:05d}-{time.time_ns()}"): group
                   for group in _batches(members, batch, workers)}
        for fut in as_completed(list(futures), loop=client.loop):
            group = futures[fut]
            try:
                rs = fut.result()
            except Exception as exc:  # noqa: BLE001 - a lost worker: reported with each of its members
                rs = [{"member": mem.index, "ok": False, "error": f"{type(exc).__name__}: {exc}", "wall_s": math.nan}
                      for mem in group]
            for mem, r in zip(group, rs, strict=True):
                tally.add(mem, r)
            fut.release()
        wall = time.perf_counter() - tally.t0
    finally:
        client.close()
        cluster.close()
    return tally.results, wall, tally.t0 - t_warm


def window_arg(window: Any, n_storeys: int, season: str | float = "summer") -> tuple[int, int] | None:
    """(below, above) storeys of an ensemble's ``window=`` on a building of ``n_storeys`` (None: the whole
    building). "auto": the ``season``'s defaults (:func:`physics.fire_window.default_window`, by the stack effect's
    direction) on a building of at least :data:`physics.fire_window.AUTO_MIN_STOREYS` storeys, else the whole
    building (module docstring, "Storey window")."""
    from physics import fire_window as W
    from physics.fire_sim import outside_temperature_k

    if window is None or window == "none":
        return None
    if isinstance(window, str):
        if window != "auto":
            raise ValidationError(f"window={window!r}: give None, 'auto' or (storeys below, storeys above)")
        return W.default_window(outside_temperature_k(season)) if n_storeys >= W.AUTO_MIN_STOREYS else None
    try:
        below, above = window
    except (TypeError, ValueError):
        raise ValidationError(f"window={window!r}: give None, 'auto' or (storeys below, storeys above)") from None
    W.window_storeys(2, 0, below, above)  # checks both
    return int(below), int(above)


def _check_run(workers: Any, duration_s: Any, batch: Any = "auto") -> None:
    """Refuse ``workers`` that is not a whole number >= 1, ``batch`` that is neither that nor "auto", and a
    ``duration_s`` that is not a finite time > 0."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValidationError(f"workers={workers!r}: give a whole number >= 1")
    if batch != "auto" and (isinstance(batch, bool) or not isinstance(batch, int) or batch < 1):
        raise ValidationError(f"batch={batch!r}: give the members per Dask task, a whole number >= 1, or 'auto'")
    if not (isinstance(duration_s, int | float) and math.isfinite(duration_s) and duration_s > 0):
        raise ValidationError(f"duration_s={duration_s!r}: give a run length in seconds > 0")


def _member_arrays(results: list[dict[str, Any]], n_storeys: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(M, S) ASET and ignition times of the members (NaN rows for those that failed) and (M,) which ran."""
    n = len(results)
    aset = np.full((n, n_storeys), np.nan)
    ign = np.full((n, n_storeys), np.nan)
    ok = np.zeros(n, bool)
    for r in results:
        if r.get("ok"):
            m = r["member"]
            ok[m] = True
            aset[m], ign[m] = r["aset_s"], r["ignition_s"]
    return aset, ign, ok


def _ensemble_vars(results: list[dict[str, Any]], aset: np.ndarray, ign: np.ndarray, ok: np.ndarray,
                   percentiles: Sequence[float], thresholds_s: Sequence[float], duration_s: float) -> dict:
    """The dataset's variables: per member and storey, the statistics per storey, the members' run records."""
    end = np.array([r.get("end_unix_s", np.nan) for r in results], float)
    starts = end - np.array([r.get("wall_s", np.nan) for r in results], float)
    t_start = float(np.nanmin(starts)) if np.any(np.isfinite(starts)) else math.nan
    pct = censored_percentiles(aset[ok], percentiles)
    prob = untenable_probability(aset[ok], thresholds_s, duration_s)
    return {
        "aset_s": (("member", "storey"), aset, {"units": "s", "long_name": "available safe egress time of the "
                                                "storey's escape route (NaN: tenable to the end of the run)"}),
        "ignition_s": (("member", "storey"), ign, {"units": "s", "long_name": "time the storey started to burn "
                                                   "(NaN: never)"}),
        "aset_percentile_s": (("percentile", "storey"), pct, {
            "units": "s", "long_name": "empirical percentile of ASET over the members that ran (inverted CDF; "
                                       "tenable members count as ASET beyond the run; NaN: beyond the run)"}),
        "p_untenable": (("threshold", "storey"), prob, {
            "units": "1", "long_name": "share of the members in which the storey is untenable by the threshold "
                                       "(NaN: threshold beyond the run)"}),
        "member_ok": (("member",), ok, {"long_name": "the member ran to the end"}),
        "member_wall_s": (("member",), np.array([r.get("wall_s", np.nan) for r in results], float),
                          {"units": "s", "long_name": "wall time of the member's run"}),
        "member_cpu_s": (("member",), np.array([r.get("cpu_s", np.nan) for r in results], float),
                         {"units": "s", "long_name": "CPU time of the member's thread"}),
        "member_error": (("member",), np.array([r.get("error", "") for r in results], dtype=object),
                         {"long_name": "error of a member that failed (empty: none)"}),
        "member_windowed": (("member",), np.array([bool(r.get("windowed")) for r in results]),
                            {"long_name": "the member's result is its storey window's (physics.fire_window)"}),
        "member_window_fallback": (("member",), np.array([r.get("window_fallback", "") for r in results],
                                                         dtype=object),
                                   {"long_name": "why the member's first window was left (for a wider one or the "
                                                 "whole building; empty: it was not)"}),
        "member_window": (("member",), np.array([r.get("window_used", "") for r in results], dtype=object),
                          {"long_name": "storeys below,above of the window of the member's result (empty: the "
                                        "whole building)"}),
        "member_cpu_left_s": (("member",), np.array([r.get("cpu_left_s", np.nan) for r in results], float),
                              {"units": "s", "long_name": "CPU time of the member's runs on windows it left (part "
                                                          "of member_cpu_s)"}),
        "member_end_s": (("member",), end - t_start,
                         {"units": "s", "long_name": "time the member's run ended, from the start of the first "
                                                     "member's"}),
        "member_worker": (("member",), np.array([r.get("worker_pid", -1) for r in results], np.int64),
                          {"long_name": "process id of the worker that ran the member"}),
    }


def _ensemble_coords(spec: Any, mems: list[Member], results: list[dict[str, Any]], percentiles: Sequence[float],
                     thresholds_s: Sequence[float]) -> dict:
    """The dataset's coordinates: members with their origin and growth, storeys with refuge, the statistics'."""
    n_storeys = spec.n_storeys
    growth_txt = [g if isinstance(g, str) else f"alpha {g:g} kW/s2" for g in (m.growth for m in mems)]
    comp = [r.get("compartment") or (m.compartment or "") for r, m in zip(results, mems, strict=True)]
    return {
        "member": ("member", np.arange(len(mems))),
        "storey": ("storey", np.arange(n_storeys), {"long_name": "storey index (0 = ground)"}),
        "percentile": ("percentile", np.asarray(percentiles, float), {"units": "%"}),
        "threshold": ("threshold", np.asarray(thresholds_s, float), {"units": "s",
                                                                    "long_name": "time since ignition"}),
        "member_floor": ("member", np.array([m.floor for m in mems]), {"long_name": "origin storey"}),
        "member_compartment": ("member", np.array(comp, dtype=object), {"long_name": "origin compartment"}),
        "member_growth": ("member", np.array(growth_txt, dtype=object), {"long_name": "t² growth rate"}),
        "refuge": ("storey", np.array([s in set(spec.refuge_floors()) for s in range(n_storeys)])),
    }


def _check_compartments(spec: Any, mems: list[Member]) -> None:
    """Refuse, before any member runs, an origin compartment the building does not have on that storey."""
    named = sorted({(m.floor, m.compartment) for m in mems if m.compartment is not None})
    if named:
        from physics.fire_building import build_network
        from physics.fire_sim import named_compartment

        net = build_network(spec)
        for floor, comp in named:
            named_compartment(net, floor, comp)


def fire_ensemble(building: Any, *, origins: Any = "all floors", growths: Iterable[Any] = GROWTHS,
                  members: int | None = None, duration_s: float = 1800.0, dt_s: float = ENSEMBLE_DT_S,
                  record_every_s: float = 10.0, sprinklers: bool | None = None, season: str | float = "summer",
                  workers: int = 1, processes: bool = True, seed: int = 0, setup_cache: bool = True,
                  batch: int | str = "auto",
                  thresholds_s: Sequence[float] = THRESHOLDS_S, percentiles: Sequence[float] = PERCENTILES,
                  progress: Callable[[dict[str, Any]], None] | None = None, window: Any = "auto"):
    """Run an ensemble of fires (origins × growth rates) on ``building``; ASET per storey per member and
    its percentiles and untenable probabilities per storey (see the module docstring).

    Parameters
    ----------
    building : FireBuildingSpec, example name or path of a fire building file
    origins : "all floors" (every storey, its first room) or sequence of (floor, compartment or None)
    growths : sequence of "slow" | "medium" | "fast" | "ultrafast" or alphas (kW/s²)
    members : int, optional
        Draw this many (origin, growth) pairs at random (``seed``) instead of running all of them.
    duration_s, record_every_s, sprinklers, season
        Passed to every member's :class:`~physics.fire_sim.FireSimulation`.
    dt_s : float
        The members' time step (s), default :data:`ENSEMBLE_DT_S`.
    workers : int
        1: members one after another in this process; more: a Dask LocalCluster.
    processes : bool
        With ``workers`` > 1: worker processes of one thread (default) or threads of one process.
    seed : int
        Seed of the draw of ``members`` (the runs themselves are deterministic).
    setup_cache : bool
        Build the building's network and the zone model's LDLᵀ plan once per worker thread, not per member
        (:func:`prepared_building`; the members are the same to the bit). False: every member from scratch.
    batch : int or "auto"
        Members per Dask task with ``workers`` > 1 (1: one task per member); "auto" (default): tasks of up to
        :data:`AUTO_BATCH_MAX` members spread over the list, shrinking to one member towards the end
        (:func:`_batches`), so the workers end together.
    thresholds_s, percentiles
        Times for ``p_untenable`` (default 10/20/30 min) and the ASET percentiles (default 10/50/90).
    progress : callable(dict), optional
        ``{"phase", "done", "total", "failed", "member", "ok", "wall_s"}`` after each member.
    window : "auto" (default), None or (below, above)
        Run each member on a storey window around its origin (:mod:`physics.fire_window`): ``below`` and
        ``above`` storeys (whole numbers >= 1); "auto": the measured defaults of the ``season``'s stack effect
        (:func:`physics.fire_window.default_window`: 2,3 in summer, 1,1 in winter) on a building
        tall enough for them to pay (:data:`physics.fire_window.AUTO_MIN_STOREYS`), else the whole building; a member
        whose window edges were reached is rerun on the whole building (``window_fallbacks``). None: every member
        on the whole building (the path before windows, to the bit).

    Returns
    -------
    xarray.Dataset
        dims ``member``, ``storey``, ``percentile``, ``threshold``: ``aset_s`` and ``ignition_s``
        (member, storey), ``aset_percentile_s`` (percentile, storey), ``p_untenable`` (threshold,
        storey), ``member_ok``, ``member_wall_s``, ``member_cpu_s``, ``member_error``; member coordinates
        ``member_floor``, ``member_compartment``, ``member_growth``; attrs with the run's inputs,
        ``n_ok``, ``wall_s`` and ``member_definition``.

    Raises
    ------
    twin.errors.ValidationError
        Bad origins, growths, members or workers (before anything runs).
    """
    import xarray as xr

    _check_run(workers, duration_s, batch)
    spec = building_spec(building)
    win = window_arg(window, spec.n_storeys, season)
    mems = ensemble_members(spec.n_storeys, origins, growths, members, seed)
    _check_compartments(spec, mems)
    sim_kwargs = {"sprinklers": sprinklers, "season": season, "duration_s": float(duration_s), "dt_s": float(dt_s),
                  "record_every_s": float(record_every_s)}
    say = progress or (lambda _d: None)
    results, wall, warm = _run_all(spec, mems, sim_kwargs, workers, processes, say, bool(setup_cache), batch, win)
    aset, ign, ok = _member_arrays(results, spec.n_storeys)
    attrs = {"building": spec.name, "n_members": len(mems), "n_ok": int(ok.sum()), "duration_s": float(duration_s),
             "dt_s": float(dt_s), "season": str(season),
             "sprinklers": "building" if sprinklers is None else ("on" if sprinklers else "off"),
             "workers": workers, "processes": int(bool(processes)), "seed": seed, "setup_cache": int(bool(setup_cache)),
             "batch": batch, "wall_s": wall, "warm_s": warm, "window": "none" if win is None else f"{win[0]},{win[1]}",
             "window_fallbacks": sum(1 for r in results if r.get("window_fallback")),
             "window_widened": sum(1 for r in results if r.get("window_fallback") and r.get("windowed")),
             "n_windowed": sum(1 for r in results if r.get("windowed")),
             "member_definition": MEMBER_DEFINITION}
    ds = xr.Dataset(_ensemble_vars(results, aset, ign, ok, percentiles, thresholds_s, float(duration_s)),
                    coords=_ensemble_coords(spec, mems, results, percentiles, thresholds_s), attrs=attrs)
    say({"phase": "done", "done": len(mems), "total": len(mems), "failed": int((~ok).sum()), "wall_s": wall})
    return ds

__all__ = ["GROWTHS", "MEMBER_DEFINITION", "Member", "PERCENTILES", "THRESHOLDS_S", "building_spec",
           "censored_percentiles", "ensemble_members", "fire_ensemble", "run_member", "untenable_probability"]
