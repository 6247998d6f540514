"""A fire run's steps without Python between them: up to the next step where Python must act (numba).

:class:`physics.fire_sim.FireSimulation` steps its zone model once a second and, every step, works out the fires'
heat release, the zone step, the detectors' and sprinklers' links and checks for flashover, fallen glazing, façade
flames and burn-out; on the record grid it records. :func:`run_steps` does those steps in one compiled loop, with
the same kernels in the same order, and returns after the first step where Python has anything to do: a possible
event (a fire at the flashover temperature, a device operated, a pane fell out, a façade flame near the sill above,
an ignition due, a fire burnt out), a record due, the run's end, or ``max_steps`` steps. The step it returns after
is complete but for its Python part (the events, the spread's bookkeeping and the record), which the caller then
runs as it does after every step of its own loop; the steps before it had none.

Exactness: the zone step (:func:`physics._kernels.fire_zone.step`), its outputs, the first guess's ring
(:func:`~physics._kernels.fire_zone.accept_guess`), the glazing (:func:`~physics._kernels.fire_zone.glazing_hits`)
and the devices (:func:`physics._kernels.fire_devices.devices_step`) are the very kernels the Python loop calls;
the rest, the fires' heat release (:meth:`physics.fire_source.FireState.advance`), the step lengths and the first
guess, is float arithmetic written out in the Python loop's order, with Python's ``min``/``max`` (the first of
equal values), so every number is the Python loop's to the bit (``tests/physics/test_fire_steps_batch.py``). The
façade check only decides whether to return: it returns when a flame is within a micrometre of the sill above,
and Python's own check then decides.

numba stamps this module's cache with this file only; the package's cache folder is tagged with a hash of all its
sources (:mod:`physics._kernels`), so an edit of :mod:`physics._kernels.fire_zone` or
:mod:`physics._kernels.fire_devices` compiles this loop afresh too (before, it ran the kernels as they were until
its cache files were deleted).

Layouts: ``fire_par`` (F, NFP) a fire's constants, ``fire_st`` (F, NFS) its stepped state (in and out); ``ist``
and ``fst`` the zone's and the loop's integer and float scalars (in and out), columns ``I_*`` and ``F_*``.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
from numba import njit

from physics._kernels import fire_devices as DK
from physics._kernels import fire_zone as K
from physics._kernels.rebind import rebound

# a fire's constants (fire_par columns): FireSource's start, α, caps, sprinkler mode (0 none, 1 control) and time,
# flashover time, the held heat release, the decay's energy target and 2·(1 − DECAY_FRACTION)·E (the decay's span
# times its start rate), whether flashed and burnt out, then the façade check's: whether Python would check it, the
# fuel-controlled rate, the ventilation limit, the windows' h_eq and a_v·ρ_g·√(g·h_eq), the gap to the sill above
(FP_T0, FP_ALPHA, FP_CAP, FP_POST, FP_MODE, FP_TSP, FP_TFO, FP_QACT, FP_TARGET, FP_SPAN, FP_FLASHED, FP_BURNT,
 FP_LIVE, FP_XFUEL, FP_VLIM, FP_HEQ, FP_DEN, FP_GAP) = range(18)
NFP = 18
# a fire's state (fire_st columns): whether it was advanced before, then, its q before decay, energy, decay start
FS_HAS_T, FS_T, FS_QPRE, FS_E, FS_TDEC, FS_QDEC = range(6)
NFS = 6
# integer scalars (ist): the zone's ring position and fill, whether the mean predicted better, panes broken,
# Newton iterations and steps, then the loop's: steps done, why it returned, devices operated in the last step,
# and whether the model keeps a halved step (``keep_halved_step``)
I_RPOS, I_NRATES, I_MEANB, I_PANES, I_NEWTON, I_STEPS, I_DONE, I_WHY, I_NHIT, I_KEEP = range(10)
NIST = 10
# float scalars (fst): the zone's time, last step length and try length, dt_max, the run's time, end, next record,
# dt_s, the devices' last time, the lowest break temperature of the glazing, the flashover limit, the next
# façade ignition, the last step's start and end, the last step length tried when the zone failed
(F_ZT, F_DTLAST, F_DTTRY, F_DTMAX, F_T, F_END, F_NEXTREC, F_DTS, F_DEVT, F_GLZMIN, F_FOLIM, F_NEXTIGN, F_T0,
 F_T1, F_TRY) = range(15)
NFST = 15
# why run_steps returned (ist[I_WHY])
WHY_LIMIT, WHY_END, WHY_RECORD, WHY_EVENT, WHY_FAILED = range(5)
#: a façade flame this close (m) below the sill above makes the loop return (Python's check decides)
FLAME_MARGIN_M = 1e-6
#: the zone step :func:`_substep` calls (:func:`run_steps_parallel`'s copies call the parallel one)
_zone_step = K.step


@njit(cache=True, inline="always")
def _pymin(a, b):
    """Python's ``min(a, b)``: ``a`` unless ``b`` is smaller."""
    return b if b < a else a


@njit(cache=True, inline="always")
def _pymax(a, b):
    """Python's ``max(a, b)``: ``a`` unless ``b`` is larger."""
    return b if b > a else a


@njit(cache=True)
def fire_advance(p, s, t):
    """:meth:`physics.fire_source.FireState.advance` at ``t`` of the fire with constants ``p`` (NFP,) and state
    ``s`` (NFS,, updated): its heat release (kW). A suppressed fire after its sprinkler (an exponential) is not
    here: the caller steps that run in Python."""
    # FireSource._undecayed_at
    if t >= p[FP_TFO]:
        q_pre = p[FP_POST]
    else:
        d = _pymax(t - p[FP_T0], 0.0)
        q_pre = _pymin(p[FP_ALPHA] * (d * d), p[FP_CAP])
    if p[FP_MODE] != 0.0 and p[FP_TSP] < p[FP_TFO] and t >= p[FP_TSP]:
        q_pre = p[FP_QACT]
    if s[FS_HAS_T] != 0.0:
        e_new = s[FS_E] + 0.5 * (s[FS_QPRE] + q_pre) * (t - s[FS_T])
        target = p[FP_TARGET]
        if not math.isfinite(s[FS_TDEC]) and e_new >= target and target > s[FS_E]:
            f = (target - s[FS_E]) / (e_new - s[FS_E])
            s[FS_TDEC] = s[FS_T] + f * (t - s[FS_T])
            s[FS_QDEC] = s[FS_QPRE] + f * (q_pre - s[FS_QPRE])
        s[FS_E] = e_new
    s[FS_HAS_T] = 1.0
    s[FS_T] = t
    s[FS_QPRE] = q_pre
    if math.isfinite(s[FS_TDEC]):
        span = p[FP_SPAN] / s[FS_QDEC]
        return _pymin(q_pre, _pymax(s[FS_QDEC] * (1.0 - (t - s[FS_TDEC]) / span), 0.0))
    return q_pre


@njit(cache=True)
def fire_event(fire_c, fire_par, fire_st, q, tu, limit):
    """Whether a fire after the step asks for Python: at the flashover temperature (not flashed, no sprinkler
    operated), burnt out (decaying, its heat release 0, not marked yet), or a façade flame within
    :data:`FLAME_MARGIN_M` of the sill above (EN 1991-1-2 B.4.1's height, as
    :func:`physics.fire_spread.window_flame_height_m`; ``FP_LIVE`` marks a fire whose spread Python would check)."""
    for f in range(fire_c.shape[0]):
        c = fire_c[f]
        p = fire_par[f]
        if p[FP_FLASHED] == 0.0 and not (tu[c] < limit) and not math.isfinite(p[FP_TSP]):
            return True
        if p[FP_BURNT] == 0.0 and math.isfinite(fire_st[f, FS_TDEC]) and q[c] <= 0.0:
            return True
        if p[FP_LIVE] != 0.0:
            q_fuel = q[c] * p[FP_XFUEL] / p[FP_POST]
            if q_fuel > p[FP_VLIM]:
                x = _pymax(q_fuel, 0.0) / 1000.0 / p[FP_DEN]
                flame = _pymax(0.0, p[FP_HEQ] * (2.37 * x ** (2.0 / 3.0) - 1.0))
                if flame >= p[FP_GAP] - FLAME_MARGIN_M:
                    return True
    return False


@njit(cache=True)
def _first_guess(dt, dp_last, rates, rate_sum, ist, fst, guess):
    """:meth:`physics.fire_zone.FireZoneModel._first_guess` into ``guess``."""
    if rates.shape[0] == 1 or ist[I_NRATES] == 0 or ist[I_MEANB] == 0:
        r = dt / fst[F_DTLAST]
        for i in range(guess.shape[0]):
            guess[i] = dp_last[i] * r
    else:
        r = dt / ist[I_NRATES]
        for i in range(guess.shape[0]):
            guess[i] = rate_sum[i] * r


@njit(cache=True)
def _all_below(x, offset, limit):
    """Whether ``x[i] − offset < limit`` for every i (NaN: not below). One pass without an early exit, which the
    compiler vectorises: 0.3 against 3 µs over the tower's 2,212 compartments while they are all cold (the usual
    case; a hot one found early saved little)."""
    below = True
    for i in range(x.shape[0]):
        below &= x[i] - offset < limit
    return below


@njit(cache=True)
def _break_glazing(tu, vent_open, broken, glazed, brk_c, vidx, hits, ist, fst):
    """:meth:`physics.fire_zone.FireZoneModel._break_glazing` (its set-up done by the model before); how many panes
    fell out."""
    if glazed.shape[0] == 0:
        return 0
    if _all_below(tu, 273.15, fst[F_GLZMIN]):  # every upper layer below the lowest break temperature (the model's
        return 0                                # tu.max() test)
    k = K.glazing_hits(tu, glazed, vidx, brk_c, broken, hits)
    for j in range(k):
        broken[hits[j]] = True
        vent_open[hits[j]] = 1.0
    ist[I_PANES] += k
    return k


@njit(cache=True)
def _substep(dt, bufs, cur, geom, par, vent, vidx, vvent, vvidx, q, plan, chan, vchan, qburn, tally_total, tally,
             tu, vent_open, broken, glazed, brk_c, ghits, dp_last, guess, rates, rate_sum, ist, fst):
    """:meth:`physics.fire_zone.FireZoneModel._substep` from ``bufs[cur]`` into ``bufs[1 - cur]``: returns the
    buffer now holding the state, or -1 when twelve halvings did not do (the model raises)."""
    dt0 = dt
    if _break_glazing(tu, vent_open, broken, glazed, brk_c, vidx, ghits, ist, fst) > 0:
        K.set_open(vent, vent_open)  # (the model's every sub-step: only set_open writes the column, run_steps first)
    for attempt in range(12):
        par[K.P_TIME] = fst[F_ZT] + dt
        tally[:] = 0.0
        if attempt == 0:
            _first_guess(dt, dp_last, rates, rate_sum, ist, fst, guess)
        else:
            guess[:] = 0.0
        it, err, bad = _zone_step(bufs[cur], geom, par, vent, vidx, vvent, vvidx, q, dt, bufs[1 - cur], chan, vchan,
                              qburn, tally, guess, plan)
        if bad == 0:
            fst[F_DTLAST] = dt
            better = K.accept_guess(guess, dt, rates, rate_sum, ist[I_RPOS], ist[I_NRATES])
            ist[I_MEANB] = 1 if better else 0
            k = rates.shape[0]
            if k != 1:
                ist[I_RPOS] = (ist[I_RPOS] + 1) % k
                ist[I_NRATES] = min(ist[I_NRATES] + 1, k)
            dp_last[:] = guess
            for j in range(tally.shape[0]):
                tally_total[j] += tally[j]
            fst[F_ZT] += dt
            ist[I_NEWTON] += it
            ist[I_STEPS] += 1
            if ist[I_KEEP] != 0 and dt < dt0:
                fst[F_DTTRY] = dt
            return 1 - cur
        dt *= 0.5
    fst[F_TRY] = dt
    return -1


@njit(cache=True)
def run_steps(state, bufs, geom, par, vent, vidx, vvent, vvidx, plan, chan, vchan, qburn, tally_total, vent_open,
              broken, glazed, brk_c, ghits, dp_last, guess, rates, rate_sum, p_base, ext_per_kg, out, tu_before, q,
              fire_c, fire_par, fire_st, has_dev, dev_c, dev_hc, dev_r, link, gas0, u0, od0, rti, act, obsc,
              activation, gas, u, od, t_ref, new_link, hit, at_ceiling, ist, fst, max_steps):
    """Steps of a fire run (the module docstring) from ``state`` (not changed): the zone's state after each into
    ``bufs`` (2, N, NSTATE) in turn (returns which holds the last), its outputs into ``out`` (NOUT + 1, N, holding
    the present ones on entry), the upper layers' temperatures before the last step into ``tu_before``, the fires'
    heat release of the last step into ``q``; the devices' links, gas and activation times in place; ``ist`` and
    ``fst`` the scalars in and out (``ist[I_WHY]`` why it returned, ``ist[I_DONE]`` the steps done)."""
    bufs[0, :, :] = state
    cur = 0
    K.set_open(vent, vent_open)  # the open fractions as the caller left them (doors opened between calls)
    tally = np.zeros(tally_total.shape[0])
    ist[I_DONE] = 0
    ist[I_NHIT] = 0
    ist[I_WHY] = WHY_LIMIT
    while True:
        t, end, nr, dts = fst[F_T], fst[F_END], fst[F_NEXTREC], fst[F_DTS]
        # FireSimulation.advance_to's step length and _step's landing on the record grid
        h = _pymin(_pymin(dts, end - t), nr - t if nr > t else math.inf)
        t0, t1 = t, t + h
        if abs(t1 - nr) < 1e-6 * dts:
            t1 = nr
        q[:] = 0.0
        for f in range(fire_c.shape[0]):
            q[fire_c[f]] = fire_advance(fire_par[f], fire_st[f], t1)
        tu_before[:] = out[K.O_TU]
        panes = ist[I_PANES]  # (a pane that falls out in the step is an event after it)
        # FireZoneModel.step(t1 - t0)
        zend = fst[F_ZT] + (t1 - t0)
        while fst[F_ZT] < zend - 1e-12:
            sub = _pymin(_pymin(fst[F_DTMAX], fst[F_DTTRY]), zend - fst[F_ZT])
            cur = _substep(sub, bufs, cur, geom, par, vent, vidx, vvent, vvidx, q, plan, chan, vchan, qburn,
                           tally_total, tally, out[K.O_TU], vent_open, broken, glazed, brk_c, ghits, dp_last, guess,
                           rates, rate_sum, ist, fst)
            if cur < 0:
                ist[I_WHY] = WHY_FAILED
                return -1
        K.step_outputs(bufs[cur], geom, par, p_base, ext_per_kg, out)
        fst[F_T], fst[F_T0], fst[F_T1] = t1, t0, t1
        ist[I_DONE] += 1
        if has_dev:
            ist[I_NHIT] = DK.devices_step(dev_c, dev_hc, dev_r, q, out[K.O_TU], out[K.O_TL], out[K.O_Z],
                                          out[K.NOUT], True, at_ceiling, link, gas0, u0, od0, rti, act, obsc,
                                          fst[F_DEVT], t1, activation, gas, u, od, t_ref, new_link, hit)
            link[:] = new_link
            gas0[:] = gas
            u0[:] = u
            od0[:] = od
            fst[F_DEVT] = t1
        if (ist[I_NHIT] > 0 or ist[I_PANES] != panes or fst[F_NEXTIGN] <= t1 + 1e-9
                or fire_event(fire_c, fire_par, fire_st, q, out[K.O_TU], fst[F_FOLIM])):
            ist[I_WHY] = WHY_EVENT
            return cur
        if abs(t1 - nr) < 1e-9:
            ist[I_WHY] = WHY_RECORD
            return cur
        if not (t1 < end - 1e-9):
            ist[I_WHY] = WHY_END
            return cur
        if ist[I_DONE] >= max_steps:
            return cur


# ----------------------------------------------------------------------------- on the parallel zone step
_PARALLEL: dict[str, object] = {}


def _rebound(disp, name: str, **swap):
    """``disp``'s code with the globals in ``swap`` bound in, named ``name`` (:func:`~physics._kernels.rebind.rebound`)."""
    return rebound(disp, name, "On the parallel zone step (:func:`run_steps_parallel`):", **swap)


def run_steps_parallel():
    """:func:`run_steps` stepping the zone with :func:`physics._kernels.fire_zone_parallel.step` (the same numbers;
    the caller sets numba's thread count), made once per process. Named with that file's hash, so that an edit
    there compiles it again (numba stamps the cache with this file only)."""
    from physics._kernels import fire_zone_parallel as KP

    tag = hashlib.sha1(Path(KP.__file__).read_bytes()).hexdigest()[:10]
    if tag not in _PARALLEL:
        sub = _rebound(_substep, f"_substep_par_{tag}", _zone_step=KP.step)
        _PARALLEL[tag] = _rebound(run_steps, f"run_steps_par_{tag}", _substep=sub)
    return _PARALLEL[tag]
