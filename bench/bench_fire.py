"""Benchmark of the high-rise fire model (issue 14): the 115-storey tower, CFAST on one room, ensembles.

(a) ``tower``: the 115-storey tower with 20 compartments per storey: Ping An Finance Centre's
    example (``physics/data/fire_buildings/ping_an_finance_centre.toml``: storeys, plate, core,
    refuge floors) with 13 office zones per storey instead of 8 and only the fire lifts kept of its
    lift shafts, so an office storey holds lobby + corridor + 13 offices + 3 stairs + fire-lift
    shaft + smoke shaft = 20 compartments (a refuge storey 9: refuge, plant, lobby, corridor and
    the 5 shafts); 2,212 compartments in all. A fast t² fire in the first office of storey 44,
    sprinklers off (the harder case: flashover, facade spread), summer (33 °C outside), run with
    :class:`physics.fire_sim.FireSimulation` at 1 s steps for ``--duration`` (default 2 h) in
    chunks of 60 s. Reported: × real time (simulated s / wall s), zone-model steps per second,
    Newton iterations per step, and where the wall time goes: the zone kernel (``K.step``), the
    rest of ``FireZoneModel.step`` (glazing, outputs), and the rest of the simulation (fire
    sources, detectors and sprinklers, tenability, recording). A run that stops (the zone model
    refuses a step) is reported with the time it reached; its rates are over what ran.
    Profile: every ``--profile-every``-th kernel call is repeated (untimed in the figures above) on
    copies of its inputs by the kernel's Python body (``K.step.py_func``) calling the compiled
    pieces through timers: layer properties + fire sources, vent statics, the Newton solve
    (residual evaluations, sparse LDLᵀ solves), layer limiting, vent transfers and the layer update;
    the compiled step on the same inputs gives the total. The pieces are called from Python (a
    dispatch of ~10 µs each, and the Newton loop itself run as Python), so they add up to more than
    the compiled step: read them as proportions. ``compiled pieces``: the first sampled step's inputs
    are kept and each compiled piece is repeated ``PIECE_REPEAT`` times inside one compiled loop (no
    dispatch, no Python), CPU time per call: layer properties + fire sources, vent statics + slab
    table, one residual, one sparse LDLᵀ solve, the whole Newton solve (``solve_pressures``), the
    step's tail (jets, ceiling-vent plumes, transfers, layer update) and the whole step; these add up
    to the step but for its allocations and calls (0.02-0.05 ms: a replica of the step with a thread-CPU timer
    around each call gave its pieces summing to the step's time within the timers' cost).
(b) ``cfast``: the references.md MQH room (:func:`physics.fire_cases.one_room`: 4×4×2.4 m, door
    1×2 m, fast t² to 500 kW, 900 s) in NIST CFAST (``physics.fire_cfast.run_case``: wall time of
    the CFAST process, input writing and output parsing included; CFAST's own "Total execution
    time" beside it) and in our zone model (``FireZoneModel`` alone at 1 s steps, heat release at
    each step's middle, as ``tests/physics/test_fire_zone_cfast.py`` runs it), both in this run.
(c) ``ensemble``: :func:`physics.fire_ensemble.fire_ensemble` on the same tower (and on
    ``tower_30_residential``), ``--ens-members`` members drawn from every storey × the four
    growth rates, ``--ens-duration`` s each, in this process (1 worker), on 2 worker processes
    and on 2 threads of one process. Members per second and the projected wall time of 1000
    members of ``--ens-duration`` and of 1800 s (the 30 minutes the untenable-by-30-min share needs;
    member cost taken as proportional to the simulated time: an assumption, stated).

Run ``python bench/bench_fire.py --help``; ``--quick`` for a short check (~3 min).
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402
from numba import njit  # noqa: E402

from physics._kernels import fire_zone as K  # noqa: E402

TOWER_FLOOR = 44
TOWER_ROOMS = 13
PIECE_REPEAT = 40


# ----------------------------------------------------------------------------- compiled pieces of a step
@njit(cache=True)
def _loop_props_sources(state, geom, par, vent, vidx, vvent, vvidx, q_kw, dt, reps):
    n = state.shape[0]
    props = np.empty((n, K.NPROP))
    src = np.empty((n, K.NSRC))
    qburn = np.zeros(n)
    for _ in range(reps):
        K.layer_props(state, geom, par, props)
        K.fire_sources(state, geom, props, par, q_kw, dt, src, qburn, K.open_area(vent, vidx, vvent, vvidx, n),
                       np.empty((0, 3)), np.zeros((n, 3)))
    return props, src


@njit(cache=True)
def _statics(vent, vidx, vvent, vvidx, geom, props, par, vchan0, teff, vs, vl, vvs, vvl, first, sp, ovents, oc, a_open,
             ct):
    """The step's statics as :func:`K.step` makes them before Newton's loop (the wall vents' slab table and open
    list, the ceiling vents' statics, their Froude shares from ``vchan0``, the step before's flows, and their table);
    returns how many wall vents are open."""
    none = np.zeros(0, np.bool_)
    a_open[:] = 0.0
    n_open = K.wall_slabs(vent, vidx, geom, props, par, teff, vs, vl, first, sp, ovents, oc, a_open)
    K.ceiling_open_area(vvidx, vvent, a_open)
    K.ceiling_statics(vvent, vvidx, geom, props, par, vvs, vvl)
    if par[K.P_FROUDE] > 0.0:
        K.froude_split(vchan0, vvidx, vvs, vvl, props, geom, par)
    K.ceiling_rows(vvent, vvidx, vvs, vvl, par, teff, none, none, ct)
    return n_open


@njit(cache=True)
def _loop_statics(vent, vidx, vvent, vvidx, geom, props, par, vchan0, oc, reps):
    n, m, kk = props.shape[0], vidx.shape[0], vvidx.shape[0]
    teff = np.empty((n, 2))
    teff[:, 0] = props[:, K.Q_TU]
    teff[:, 1] = props[:, K.Q_TL]
    vs, vl = np.empty((m, K.NVS)), np.empty((m, 6), np.int64)
    vvs, vvl = np.empty((kk, 6)), np.empty((kk, 2), np.int64)
    first, sp = np.empty(m + 1, np.int64), np.empty((3 * m, K.NOS))
    ovents, a_open = np.empty(m, np.int64), np.zeros(n)
    ct = np.empty((kk, K.NCT))
    n_open = 0
    for _ in range(reps):
        n_open = _statics(vent, vidx, vvent, vvidx, geom, props, par, vchan0, teff, vs, vl, vvs, vvl, first, sp,
                          ovents, oc, a_open, ct)
    return teff, (vs, vl, vvs, vvl, first, sp, ovents[:n_open], ct)


@njit(cache=True)
def _loop_residual(dp, dt, state, geom, props, par, vent, vidx, vvent, vvidx, src, teff, stat, reps):
    n, m, kk = state.shape[0], vidx.shape[0], vvidx.shape[0]
    pn = props[:, K.Q_P].copy()
    chan, vchan = np.zeros((m, 4)), np.zeros((kk, 4))
    res, wv, wvv, hv, hvv = np.empty(n), np.empty(m), np.empty(kk), np.empty(m), np.empty(kk)
    gm1 = par[K.P_R] / (par[K.P_CP] - par[K.P_R])
    diag, pf, du, dl = np.empty(n), np.empty(n), np.empty(n), np.empty(n)
    for i in range(n):
        diag[i] = geom[i, K.G_VOL] / (gm1 * dt)
    for _ in range(reps):  # as the Newton loop calls it
        K.residual_and_merit(dp, pn, dt, diag, geom, props, par, vidx, vvidx, src, stat, chan, vchan, res, wv, wvv, hv,
                             hvv, pf, du, dl)
    return res, wv, wvv


@njit(cache=True)
def _loop_ldl(res, geom, par, dt, wv, wvv, plan, vents, reps):
    n = res.shape[0]
    gm1 = par[K.P_R] / (par[K.P_CP] - par[K.P_R])
    diag = np.empty(n)
    for i in range(n):
        diag[i] = geom[i, K.G_VOL] / (gm1 * dt)
    x = np.empty(n)
    ok = 0
    for _ in range(reps):  # (the open wall vents only: the others' weights were never set)
        ok = K.direct_solve(-res, diag, wv, wvv, plan, x, vents)
    if ok < 0:
        raise ValueError("the captured Jacobian is not positive definite")
    return x


@njit(cache=True)
def _loop_solve(state, geom, props, par, vent, vidx, vvent, vvidx, src, dt, teff, stat, dp0, vchan0, oc, plan, reps):
    """The statics and the Newton solve as :func:`K.step` runs them, from the step's start each time: the solve
    changes the slab table's donors and the ceiling vents' Froude shares it starts from (``stat``), so a loop of
    the solve alone would start later repeats from the converged ones (fewer donor updates: the 2026-12-05 figures
    had it 0.35 ms short of the step's own solve). Take the statics' own time off this loop's. ``vchan0`` the
    ceiling vents' flows of the step before, which the Froude shares start from (as :func:`K.step`)."""
    n, m, kk = state.shape[0], vidx.shape[0], vvidx.shape[0]
    chan, vchan = np.zeros((m, 4)), np.zeros((kk, 4))
    fu, fl, dp, t2 = np.ones(n), np.ones(n), dp0.copy(), teff.copy()
    vs, vl, vvs, vvl, first, sp, _rows, ct = stat[:8]
    ovents, a_open = np.empty(m, np.int64), np.zeros(n)
    it = 0
    for _ in range(reps):
        t2[:, :] = teff
        fu[:] = 1.0
        fl[:] = 1.0
        n_open = _statics(vent, vidx, vvent, vvidx, geom, props, par, vchan0, t2, vs, vl, vvs, vvl, first, sp,
                          ovents, oc, a_open, ct)
        dp[:] = dp0
        it, _err, _bad = K.solve_pressures(state, geom, props, par, vent, vidx, vvent, vvidx, src, dt, t2,
                                           (vs, vl, vvs, vvl, first, sp, ovents[:n_open]) + stat[7:], chan, vchan,
                                           dp, plan, fu, fl)
    return it, chan, vchan, dp, fu, fl, t2


@njit(cache=True)
def _loop_tail(state, geom, props, par, vent, vidx, vvent, vvidx, src, dt, teff, stat, chan0, vchan0, dp, fu, fl,
               reps):
    n = state.shape[0]
    vs, vl = stat[0], stat[1]
    new_state = np.empty_like(state)
    tally = np.zeros(K.NTALLY)
    qburn = np.zeros(n)
    for _ in range(reps):
        chan, vchan = chan0.copy(), vchan0.copy()
        K.apply_fractions_around(chan, vchan, vidx, vvidx, fu, fl, stat[8], stat[9])
        mix = np.zeros((n, 2))
        if par[K.P_MIX] > 0.0:
            K.door_jets(props[:, K.Q_P] + dp, vent, vidx, vs, vl, props, par, np.empty((vidx.shape[0], 4)), mix)
        vdest = np.full((vvidx.shape[0], 2), -1, np.int64)
        if par[K.P_VDEP] > 0.0:
            K.ceiling_vent_plumes(vchan, vvidx, vvent, geom, props, par, state, dt, mix, vdest)
        dm, dh, ds = np.zeros((n, 2)), np.zeros((n, 2)), np.zeros((n, 2, K.NSP))
        K.vent_transfers(chan, vchan, vidx, vvidx, vdest, dt, state, props, par, dm, dh, ds, tally)
        K.layer_update(state, geom, props, par, src, mix, qburn, dt, dm, dh, ds, tally, new_state)
    return new_state


@njit(cache=True)
def _loop_step(state, geom, par, vent, vidx, vvent, vvidx, q_kw, dt, dp0, vchan0, plan, reps):
    n, m = state.shape[0], vidx.shape[0]
    new_state, chan, vchan = np.empty_like(state), np.zeros((m, 4)), vchan0.copy()
    qburn, tally, dp = np.zeros(n), np.zeros(K.NTALLY), dp0.copy()
    for _ in range(reps):
        dp[:] = dp0
        vchan[:, :] = vchan0  # (the Froude shares start from the step before's flows)
        K.step(state, geom, par, vent, vidx, vvent, vvidx, q_kw, dt, new_state, chan, vchan, qburn, tally, dp, plan)
    return new_state


def compiled_pieces(args, reps: int = PIECE_REPEAT) -> dict[str, Any]:
    """CPU ms per call of the compiled pieces of one step with inputs ``args`` (``K.step``'s), each repeated
    ``reps`` times in a compiled loop after one warm-up call (module docstring (a))."""
    state, geom, par, vent, vidx, vvent, vvidx, q_kw, dt = args[:9]
    dp0, vchan0, plan = args[14].copy(), args[11].copy(), args[15]
    par = par.copy()

    def timed(fn, *a):
        fn(*a, 1)
        t0 = time.thread_time()
        out = fn(*a, reps)
        return 1e3 * (time.thread_time() - t0) / reps, out

    out: dict[str, Any] = {"repeat": reps}
    out["props_and_sources_ms"], (props, src) = timed(_loop_props_sources, state, geom, par, vent, vidx, vvent,
                                                      vvidx, q_kw, dt)
    oc = plan[1][23].copy()  # K.step_plan's outside cache (the work arrays' last)
    out["statics_and_slab_table_ms"], (teff, stat) = timed(_loop_statics, vent, vidx, vvent, vvidx, geom, props, par,
                                                           vchan0, oc)
    stat = stat + K.vent_adjacency(state.shape[0], vidx)  # the plan's read-only adjacency (refresh_donors)
    out["residual_ms"], (res, wv, wvv) = timed(_loop_residual, dp0, dt, state, geom, props, par, vent, vidx, vvent,
                                               vvidx, src, teff, stat)
    ldl = plan[0]  # K.step_plan: (the factorisation plan, the step's work arrays)
    out["ldl_solve_ms"], _ = timed(_loop_ldl, res, geom, par, dt, wv, wvv, ldl, stat[6])
    statics_and_solve_ms, solved = timed(_loop_solve, state, geom, props, par, vent, vidx, vvent, vvidx, src, dt,
                                         teff, stat, dp0, vchan0, oc, ldl)
    out["newton_solve_ms"] = statics_and_solve_ms - out["statics_and_slab_table_ms"]
    it, chan, vchan, dp, fu, fl, t2 = solved
    out["newton_iterations"] = int(it)
    out["tail_ms"], _ = timed(_loop_tail, state, geom, props, par, vent, vidx, vvent, vvidx, src, dt, t2, stat, chan,
                              vchan, dp, fu, fl)
    out["step_ms"], _ = timed(_loop_step, state, geom, par, vent, vidx, vvent, vvidx, q_kw, dt, dp0, vchan0, plan)
    pieces = out["props_and_sources_ms"] + out["statics_and_slab_table_ms"] + out["newton_solve_ms"] + out["tail_ms"]
    out["allocations_and_calls_ms"] = out["step_ms"] - pieces
    out["note"] = ("CPU ms per call, each piece repeated in a compiled loop on the inputs of one sampled step; the "
                   "Newton solve is timed with the statics it starts from (from the step's start each time) less "
                   "the statics' own time; the tail copies chan/vchan each call; step = the compiled K.step")
    return out


# ----------------------------------------------------------------------------- the tower
def tower_spec():
    """The 115-storey tower with 20 compartments per office storey (module docstring)."""
    from physics import fire_building as fb

    d = fb.merged_description(fb.EXAMPLES["ping_an_finance_centre"])
    f = d["fire"]
    room = dict(f["rooms"][0])
    share = 1.0 / TOWER_ROOMS
    f["rooms"] = [dict(room, name=f"office {i + 1}", share=share) for i in range(TOWER_ROOMS)]
    f["rooms"][-1]["share"] = 1.0 - share * (TOWER_ROOMS - 1)
    f["core"]["lifts"] = [lift for lift in f["core"]["lifts"] if lift["name"] == "fire lifts"]
    d["name"] = "115-storey tower, 20 compartments per storey (Ping An example, 13 office zones, fire lifts only)"
    f["assumptions"] = [*f["assumptions"], "BENCHMARK: 13 office zones per storey, only the fire-lift shaft kept"]
    return fb.parse_fire_building(d, "bench tower")


class KernelProfile:
    """Times the pieces of sampled zone-kernel steps (module docstring (a))."""

    PIECES = ("layer_props", "fire_sources", "wall_slabs", "ceiling_statics", "solve_pressures", "line_search_merit",
              "residual_and_merit", "direct_solve", "update_vents_into", "_fractions_from_sums",
              "apply_fractions_around", "vent_transfers", "layer_update")

    def __init__(self, every: int):
        self.every = max(1, int(every))
        self.calls = 0
        self.samples = 0
        self.t = dict.fromkeys(self.PIECES, 0.0)
        self.n = dict.fromkeys(self.PIECES, 0)
        self.newton_iterations = 0
        self.total_compiled = 0.0
        self.max_state_diff = 0.0
        self.captured: list | None = None  # the first sampled step's inputs (:func:`compiled_pieces`)
        self.captured_t = math.nan

    def _timed(self, name, fn):
        def wrapper(*a):
            t0 = time.thread_time()
            out = fn(*a)
            self.t[name] += time.thread_time() - t0
            self.n[name] += 1
            return out
        return wrapper

    def maybe_sample(self, args) -> None:
        self.calls += 1
        if self.calls < 3 or self.calls % self.every:
            return
        copies = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
        ref = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
        if self.captured is None:
            self.captured = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
            self.captured_t = float(args[2][K.P_TIME])
        t0 = time.thread_time()
        K.step(*ref)
        self.total_compiled += time.thread_time() - t0
        g = K.__dict__
        saved = {name: g[name] for name in self.PIECES}
        try:
            for name in self.PIECES:
                fn = saved[name].py_func if name in ("solve_pressures", "line_search_merit") else saved[name]
                g[name] = self._timed(name, fn)
            it, _err, _bad = K.step.py_func(*copies)
        finally:
            g.update(saved)
        self.newton_iterations += int(it)
        self.samples += 1
        self.max_state_diff = max(self.max_state_diff, float(np.max(np.abs(copies[9] - ref[9]))))

    def breakdown(self) -> dict[str, Any]:
        n = max(self.samples, 1)
        per = {k: v / n for k, v in self.t.items()}
        newton = per["solve_pressures"]
        rest_newton = newton - per["residual_and_merit"] - per["direct_solve"]
        total = self.total_compiled / n
        statics = per["wall_slabs"] + per["ceiling_statics"]
        known = per["layer_props"] + per["fire_sources"] + statics + newton + per["apply_fractions_around"] \
            + per["vent_transfers"] + per["layer_update"]
        return {"samples": self.samples, "kernel_step_ms": 1e3 * total,
                "props_and_sources_ms": 1e3 * (per["layer_props"] + per["fire_sources"]),
                "vent_statics_ms": 1e3 * statics, "newton_ms": 1e3 * newton,
                "residual_ms": 1e3 * per["residual_and_merit"], "linear_solve_ms": 1e3 * per["direct_solve"],
                "newton_other_ms": 1e3 * rest_newton, "layer_limiting_ms": 1e3 * (per["_fractions_from_sums"]
                                                                                 + per["apply_fractions_around"]),
                "transfers_and_update_ms": 1e3 * (per["vent_transfers"] + per["layer_update"]),
                "remainder_ms": 1e3 * (total - known),
                "residuals_per_step": self.n["residual_and_merit"] / n,
                "linear_solves_per_step": self.n["direct_solve"] / n,
                "newton_iterations_per_step": self.newton_iterations / n,
                "replica_vs_compiled_max_abs_state_diff": self.max_state_diff,
                "note": "CPU time (thread) of the pieces, called from Python on copies of sampled steps' inputs "
                        "(dispatch overhead ~10 us per call included); remainder = compiled step - pieces"}


def run_tower(duration_s: float, profile_every: int, chunk_s: float = 60.0,
              max_wall_s: float = math.inf, threads: int = 1, batch: bool = True) -> dict[str, Any]:
    """(a): the tower run with the wall time split (module docstring). ``threads``: the zone model's (its kernel's
    step on that many threads, :class:`~physics.fire_zone.FireZoneModel`); the CPU times are then the main
    thread's, ``process_cpu_s`` all threads'. ``batch`` (the run's default): the steps between two where Python
    must act run in one compiled call (:mod:`physics.fire_sim_steps`), timed as the compiled loop; False
    (``--no-batch``) steps in Python one step per call, with the kernel's time and profile split out."""
    from physics._kernels import fire_steps as FSK
    from physics.fire_sim import FireSimulation

    spec = tower_spec()
    t_build = time.perf_counter()
    sim = FireSimulation(spec, floor=TOWER_FLOOR, growth="fast", sprinklers=False, season="summer",
                         duration_s=duration_s, dt_s=1.0, record_every_s=10.0, threads=threads)
    build_s = time.perf_counter() - t_build
    zone = sim.zone
    prof = KernelProfile(profile_every)
    acc = dict.fromkeys(("kernel", "zone", "profile", "kernel_cpu", "zone_cpu", "profile_cpu"), 0.0)
    kernel, zone_step = zone._kernel_step, zone.step
    clock, cpu = time.perf_counter, time.thread_time

    def timed_kernel(*args):
        t0, c0 = clock(), cpu()
        prof.maybe_sample(args)
        t1, c1 = clock(), cpu()
        out = kernel(*args)
        t2, c2 = clock(), cpu()
        acc["profile"] += t1 - t0
        acc["profile_cpu"] += c1 - c0
        acc["kernel"] += t2 - t1
        acc["kernel_cpu"] += c2 - c1
        return out

    def timed_zone(dt):
        t0, c0 = clock(), cpu()
        out = zone_step(dt)
        acc["zone"] += clock() - t0
        acc["zone_cpu"] += cpu() - c0
        return out

    serial_loop, parallel_loop = FSK.run_steps, FSK.run_steps_parallel

    def timed_loop(inner):
        def run(*args):
            t0, c0 = clock(), cpu()
            out = inner(*args)
            acc["kernel"] += clock() - t0
            acc["kernel_cpu"] += cpu() - c0
            return out
        return run

    sim.batch_steps = batch
    if batch:  # wrapping the zone's step would send the run down the one-step path: time the compiled loop
        # (the parallel loop is made from run_steps' own code: made before run_steps is swapped for the timer)
        timed_parallel = timed_loop(parallel_loop()) if threads > 1 else None
        FSK.run_steps = timed_loop(serial_loop)
        FSK.run_steps_parallel = lambda: timed_parallel
    else:
        zone._kernel_step = timed_kernel
        zone.step = timed_zone
    try:
        return _tower_timed(sim, spec, build_s, duration_s, chunk_s, max_wall_s, threads, batch, prof, acc,
                            profile_every)
    finally:
        FSK.run_steps, FSK.run_steps_parallel = serial_loop, parallel_loop


def _tower_timed(sim, spec, build_s: float, duration_s: float, chunk_s: float, max_wall_s: float, threads: int,
                 batch: bool, prof: KernelProfile, acc: dict[str, float], profile_every: int) -> dict[str, Any]:
    """The timed part of :func:`run_tower` (its wrappers set)."""
    net, zone = sim.network, sim.zone
    per_storey = np.bincount(net.storey, minlength=net.n_storeys)
    sim.advance_to(min(10.0, duration_s))  # warm-up: compiles or loads the kernels (not timed)
    t_start, steps0, newton0 = sim.t, zone.steps, zone.newton_iterations
    for k in acc:
        acc[k] = 0.0
    prof.__init__(profile_every)
    prof.calls = 3
    error = None
    stall0 = C.cpu_stall_us()
    t0, cpu0, pcpu0 = time.perf_counter(), time.thread_time(), time.process_time()
    stopped = None
    while sim.t < duration_s - 1e-9:
        if time.perf_counter() - t0 > max_wall_s:
            stopped = f"wall budget --max-wall {max_wall_s:g} s reached"
            break
        target = min(duration_s, sim.t + chunk_s)
        try:
            sim.advance_to(target)
        except Exception as exc:  # noqa: BLE001 - a stopped run is reported with the time it reached
            error = f"{type(exc).__name__}: {exc}"
            break
        run_s = time.perf_counter() - t0 - acc["profile"]
        run_cpu = time.thread_time() - cpu0 - acc["profile_cpu"]
        print(f"  tower: t = {sim.t:6.0f} s, {(sim.t - t_start) / max(run_s, 1e-9):6.1f} x real time (wall), "
              f"{(sim.t - t_start) / max(run_cpu, 1e-9):6.1f} (CPU)", flush=True)
    wall_all = time.perf_counter() - t0
    cpu_all = time.thread_time() - cpu0
    process_cpu = time.process_time() - pcpu0 - acc["profile_cpu"]
    contention = C.contention_pct(stall0, wall_all)
    # the profiler's own work (the replica and the compiled repeat of sampled steps) is taken out of the wall time
    wall = wall_all - acc["profile"]
    cpu_s = cpu_all - acc["profile_cpu"]
    if batch:  # the compiled loop holds the zone's step: no Python of the zone's outside it
        acc["zone"], acc["zone_cpu"] = acc["kernel"], acc["kernel_cpu"]
    acc["zone"] -= acc["profile"]
    acc["zone_cpu"] -= acc["profile_cpu"]
    span = sim.t - t_start
    steps = zone.steps - steps0
    events: dict[str, int] = {}
    for e in sim.events:
        events[e["kind"]] = events.get(e["kind"], 0) + 1
    return {"building": spec.name, "compartments": net.n_compartments, "wall_vents": net.n_vents,
            "ceiling_vents": net.n_vvents, "storeys": net.n_storeys,
            "compartments_per_storey": {int(k): int(v) for k, v in zip(*np.unique(per_storey, return_counts=True),
                                                                      strict=True)},
            "origin": net.names[sim.origin], "duration_s": duration_s, "t_reached_s": sim.t, "error": error, "stopped": stopped,
            "build_s": build_s, "span_s": span, "wall_s": wall, "wall_with_profile_s": wall_all,
            "profile_s": acc["profile"], "cpu_s": cpu_s, "threads": threads, "process_cpu_s": process_cpu,
            "batch": batch, "batches": sim.batches, "batched_steps": sim.batched_steps,
            "x_real_time_cpu": span / cpu_s if cpu_s > 0 else math.nan,
            "steps_per_cpu_s": steps / cpu_s if cpu_s > 0 else math.nan,
            "kernel_cpu_s": acc["kernel_cpu"], "zone_other_cpu_s": acc["zone_cpu"] - acc["kernel_cpu"],
            "sim_other_cpu_s": cpu_s - acc["zone_cpu"],
            "x_real_time": span / wall if wall > 0 else math.nan, "steps": steps,
            "steps_per_s": steps / wall if wall > 0 else math.nan,
            "newton_per_step": (zone.newton_iterations - newton0) / max(steps, 1),
            "kernel_s": acc["kernel"], "zone_other_s": acc["zone"] - acc["kernel"],
            "sim_other_s": wall - acc["zone"], "events": events, "profile": prof.breakdown(),
            "compiled_pieces": dict(compiled_pieces(prof.captured), t_s=prof.captured_t)
            if prof.captured is not None else None,
            "cpu_contention_pct": contention}


# ----------------------------------------------------------------------------- CFAST
def run_cfast_case(repeat: int) -> dict[str, Any]:
    """(b): the MQH room in CFAST and in the zone model, wall times side by side."""
    from physics import fire_cases, fire_cfast
    from physics.fire_zone import FireZoneModel

    case = fire_cases.one_room()
    fire = case.fires[0]
    out: dict[str, Any] = {"case": case.description, "t_end_s": case.t_end_s}
    temps: dict[str, float] = {}

    def ours():
        m = FireZoneModel(case.network, t_inside_k=case.t_in_c + 273.15, t_outside_k=case.t_out_c + 273.15,
                          radiative_fraction=fire.radiative_fraction,
                          fire_diameter_m=2.0 * np.sqrt(fire.area_m2 / np.pi), fuel=fire.zone_fuel())
        while m.t < case.t_end_s - 1e-9:
            m.q_kw[:] = case.q_kw(m.t + 0.5)
            m.step(1.0)
            if abs(m.t - 600.0) < 1e-9:
                temps["ours_t_upper_600_c"] = float(m.t_upper[0]) - 273.15
        return m

    t = C.time_call(ours, repeat=repeat, warmup=1, max_seconds=20.0)
    out["ours"] = t.as_dict()
    c0 = time.thread_time()
    ours()
    out["ours"]["cpu_s"] = time.thread_time() - c0
    try:
        fire_cfast.find_cfast()
    except Exception as exc:  # noqa: BLE001 - CFAST missing: reported
        out["cfast"] = {"error": str(exc)}
        out.update(temps)
        return out
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(repeat):
            t0, r0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
            ds = fire_cfast.run_case(case, Path(tmp) / f"r{k}", timeout_s=300)
            r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            runs.append({"wall_s": time.perf_counter() - t0, "process_wall_s": ds.attrs.get("cfast_wall_s"),
                         "cpu_s": (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime),
                         "execution_s": ds.attrs.get("cfast_execution_s"), "steps": ds.attrs.get("cfast_steps")})
        temps["cfast_t_upper_600_c"] = float(ds["t_upper"].sel(time=600.0, method="nearest").values.ravel()[0]) \
            - 273.15
    out["cfast"] = {"runs": runs, "median_wall_s": float(np.median([r["wall_s"] for r in runs])),
                    "median_cpu_s": float(np.median([r["cpu_s"] for r in runs])),
                    "median_execution_s": float(np.median([r["execution_s"] or np.nan for r in runs])),
                    "revision": ds.attrs.get("cfast_revision")}
    out.update(temps)
    return out


# ----------------------------------------------------------------------------- ensemble
def run_ensemble_case(building, label: str, members: int, duration_s: float, configs) -> list[dict[str, Any]]:
    """(c): members/s of fire_ensemble at each (workers, processes) config."""
    from physics.fire_ensemble import GROWTHS, fire_ensemble

    rows = []
    for workers, processes in configs:
        stall0 = C.cpu_stall_us()
        t0 = time.perf_counter()
        ds = fire_ensemble(building, origins="all floors", growths=GROWTHS, members=members, seed=1,
                           duration_s=duration_s, record_every_s=30.0, workers=workers, processes=processes,
                           sprinklers=False)
        total = time.perf_counter() - t0
        wall = float(ds.attrs["wall_s"])
        ok = int(ds.attrs["n_ok"])
        rate = members / wall if wall > 0 else math.nan
        mean_member = float(np.nanmean(ds.member_wall_s.values))
        mean_cpu = float(np.nanmean(ds.member_cpu_s.values))
        cores = min(workers, os.cpu_count() or 1) if processes else 1  # the kernels hold the GIL
        rows.append({"building": label, "workers": workers, "mode": "processes" if processes else "threads",
                     "members": members, "ok": ok, "duration_s": duration_s, "wall_s": wall, "total_s": total,
                     "members_per_s": rate, "mean_member_wall_s": mean_member, "mean_member_cpu_s": mean_cpu,
                     "warm_s": float(ds.attrs["warm_s"]),
                     "projected_1000_cpu_ideal_s": 1000.0 * mean_cpu / cores,
                     "projected_1000_1800s_cpu_ideal_s": 1000.0 * mean_cpu / cores * 1800.0 / duration_s,
                     "projected_1000_s": 1000.0 / rate if rate > 0 else math.nan,
                     "projected_1000_1800s_s": 1000.0 / rate * 1800.0 / duration_s if rate > 0 else math.nan,
                     "errors": sorted({str(e)[:80] for e in ds.member_error.values if e}),
                     "cpu_contention_pct": C.contention_pct(stall0, total)})
        print(f"  ensemble {label} {workers} {'proc' if processes else 'thr'}: {ok}/{members} ok, "
              f"{wall:.1f} s, {rate:.3f} members/s", flush=True)
    return rows


# ----------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="short runs: tower 300 s, 2 ensemble members of 120 s")
    p.add_argument("--duration", type=float, default=7200.0, help="tower run length, s (default 2 h)")
    p.add_argument("--max-wall", type=float, default=math.inf,
                   help="stop the tower run after this many wall seconds (rates over what ran)")
    p.add_argument("--profile-every", type=int, default=50, help="profile every n-th kernel step (default 50)")
    p.add_argument("--cfast-repeat", type=int, default=3)
    p.add_argument("--ens-members", type=int, default=4)
    p.add_argument("--ens-duration", type=float, default=600.0)
    p.add_argument("--parts", default="tower,cfast,ensemble", help="comma-separated subset of tower,cfast,ensemble")
    p.add_argument("--out", default=None, help="folder of the JSON (default bench/results)")
    p.add_argument("--threads", type=int, default=1,
                   help="threads of the tower's zone kernel (FireZoneModel(threads=N); default 1). The same "
                        "numbers; opt-in in the model because on busy cores each parallel region waits for a "
                        "descheduled thread: compare on an idle machine")
    p.add_argument("--no-batch", action="store_true",
                   help="step the tower in Python one step per call (FireSimulation.batch_steps = False), with the "
                        "kernel's time and --profile-every's split of a step; by default the steps between two "
                        "where Python must act run in one compiled call and the note splits that loop from Python")
    args = p.parse_args(argv)
    if args.quick:
        args.duration, args.ens_members, args.ens_duration, args.cfast_repeat = 300.0, 2, 120.0, 1
    parts = set(args.parts.split(","))
    C.set_threads(1)
    warn = C.busy_warning()
    payload: dict[str, Any] = {"benchmark": "fire", "quick": args.quick, "machine": C.machine_info(),
                               "args": vars(args)}
    rows, notes = [], []
    if "tower" in parts:
        print("(a) tower ...", flush=True)
        tw = run_tower(args.duration, args.profile_every, max_wall_s=args.max_wall, threads=args.threads,
                       batch=not args.no_batch)
        payload["tower"] = tw
        rows.append(["tower", f"{tw['compartments']} comp., {tw['span_s']:.0f} of {tw['duration_s']:.0f} s",
                     "FireSimulation", tw["wall_s"], tw["cpu_s"], tw["x_real_time"], tw["x_real_time_cpu"],
                     tw["steps_per_cpu_s"], tw["newton_per_step"], "1000x", tw["cpu_contention_pct"]])
        pr = tw["profile"]
        if tw["batch"]:
            notes.append(f"tower CPU: compiled loop (zone step, fires, devices, glazing, outputs) "
                         f"{tw['kernel_cpu_s']:.1f} s in {tw['batches']} calls of {tw['batched_steps']} steps, "
                         f"Python {tw['sim_other_cpu_s']:.1f} s (main thread; zone step on {tw['threads']} "
                         f"thread(s), all threads {tw['process_cpu_s']:.1f} s); --no-batch for the kernel's profile")
        else:
            notes.append(f"tower CPU: kernel {tw['kernel_cpu_s']:.1f} s, rest of FireZoneModel.step "
                         f"{tw['zone_other_cpu_s']:.1f} s, rest of the simulation {tw['sim_other_cpu_s']:.1f} s "
                         f"(main thread; kernel on {tw['threads']} thread(s), all threads {tw['process_cpu_s']:.1f} s); "
                         f"profile (CPU) of {pr['samples']} steps: "
                         f"step {pr['kernel_step_ms']:.1f} ms = props+sources {pr['props_and_sources_ms']:.2f} + statics "
                         f"{pr['vent_statics_ms']:.2f} + Newton {pr['newton_ms']:.1f} (residuals "
                         f"{pr['residual_ms']:.1f} ms in {pr['residuals_per_step']:.1f}, LDLᵀ {pr['linear_solve_ms']:.1f} "
                         f"ms in {pr['linear_solves_per_step']:.1f} solves) + limiting {pr['layer_limiting_ms']:.2f} + "
                         f"transfers {pr['transfers_and_update_ms']:.2f} + remainder {pr['remainder_ms']:.2f}")
        cp = tw["compiled_pieces"]
        if cp is not None:
            notes.append(f"tower compiled pieces (CPU ms per call, step at t = {cp['t_s']:.0f} s): step "
                         f"{cp['step_ms']:.2f} = props+sources {cp['props_and_sources_ms']:.3f} + statics and slab "
                         f"table {cp['statics_and_slab_table_ms']:.3f} + Newton solve {cp['newton_solve_ms']:.2f} "
                         f"({cp['newton_iterations']} iterations; one residual {cp['residual_ms']:.3f}, one LDLᵀ "
                         f"solve {cp['ldl_solve_ms']:.3f}) + tail {cp['tail_ms']:.3f} + allocations and calls "
                         f"{cp['allocations_and_calls_ms']:.3f}")
        if tw["stopped"]:
            notes.append(f"tower run cut at t = {tw['t_reached_s']:.0f} s of {tw['duration_s']:.0f} s: "
                         f"{tw['stopped']}; rates over the span that ran")
        if tw["error"]:
            notes.append(f"tower run STOPPED at t = {tw['t_reached_s']:.1f} s: {tw['error'][:160]}")
    if "cfast" in parts:
        print("(b) CFAST one room ...", flush=True)
        cf = run_cfast_case(args.cfast_repeat)
        payload["cfast"] = cf
        o = cf["ours"]
        rows.append(["cfast", "MQH room 900 s", "zone model", o["median_s"], o["cpu_s"], 900.0 / o["median_s"],
                     900.0 / o["cpu_s"], None, None, None, None])
        if "runs" in cf.get("cfast", {}):
            c = cf["cfast"]
            rows.append(["cfast", "MQH room 900 s", "NIST CFAST (process)", c["median_wall_s"], c["median_cpu_s"],
                         900.0 / c["median_wall_s"], 900.0 / c["median_cpu_s"], None, None, None, None])
            notes.append(f"CFAST {cf['cfast'].get('revision')}: process wall {cf['cfast']['median_wall_s']:.3f} s "
                         f"(own execution time {cf['cfast']['median_execution_s']:.3f} s); upper layer at 600 s: "
                         f"CFAST {cf.get('cfast_t_upper_600_c', math.nan):.0f} °C, ours "
                         f"{cf.get('ours_t_upper_600_c', math.nan):.0f} °C")
        else:
            notes.append(f"CFAST not run: {cf['cfast'].get('error')}")
    if "ensemble" in parts:
        print("(c) ensembles ...", flush=True)
        configs = [(1, True), (2, True), (2, False)]
        ens = run_ensemble_case(tower_spec(), "tower 115", args.ens_members, args.ens_duration, configs)
        ens += run_ensemble_case("tower_30_residential", "tower 30", max(args.ens_members, 4) * 2, args.ens_duration,
                                 configs)
        payload["ensemble"] = ens
        for r in ens:
            rows.append(["ensemble", f"{r['building']}: {r['ok']}/{r['members']} x {r['duration_s']:.0f} s",
                         f"{r['workers']} {r['mode']}", r["wall_s"], r["mean_member_cpu_s"] * r["members"], None,
                         r["duration_s"] / r["mean_member_cpu_s"], r["members_per_s"], None,
                         "1000 in 60 s", r["cpu_contention_pct"]])
            notes.append(f"ensemble {r['building']} {r['workers']} {r['mode']}: 1000 members of "
                         f"{r['duration_s']:.0f} s at the measured rate {r['projected_1000_s'] / 60:.0f} min, from "
                         f"the members' CPU time on {min(r['workers'], os.cpu_count() or 1) if r['mode'] == 'processes' else 1}"
                         f" core(s) {r['projected_1000_cpu_ideal_s'] / 60:.0f} min; of 1800 s "
                         f"{r['projected_1000_1800s_cpu_ideal_s'] / 60:.0f} min (target 1 min)"
                         + (f"; errors: {r['errors'][:2]}" if r["errors"] else ""))
    if warn:
        notes.append(warn)
    C.print_table("Fire model: wall time, x real time, rates",
                  ["part", "case", "impl", "wall s", "CPU s", "x real (wall)", "x real (CPU)",
                   "steps/CPU s | members/s", "Newton/step", "target", "contention %"], rows, notes)
    payload["notes"] = notes
    path = C.write_results("fire-quick" if args.quick else "fire", payload, args.out)
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
