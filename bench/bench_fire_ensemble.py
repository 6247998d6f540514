"""Benchmark of fire ensembles (issue 14: 1000 members in under a minute): the members' time step and members/s.

(dt) ``--parts dt``: the time step of ensemble members. A fixed set of members (origins × the four t² growths ×
    summer and winter, sprinklers off and, on the 30-storey example, on) runs ``--duration`` (600 s) at each
    ``--dts`` (default 1, 2, 2.5, 3, 5, 10 s) with :class:`physics.fire_sim.FireSimulation` (record every
    10 s, as the ensemble).
    Per member and step: the storeys' ASET and ignition times against dt = 1 s (a storey untenable in one run
    and not in the other counts as the distance to the run's end), the flashover times, the zone model's
    accepted and failed steps (a failed try is a step halved because a compartment could not give its
    outflow), Newton's iterations and the steps stopped by its cap of 50 iterations above the tolerance, the
    least layer mass and energy of any accepted step (negative: a layer emptied), the mass and energy
    residuals of the run relative to the building's gas, the origin room after flashover against 1 s, and the
    CPU time. Storeys whose ASETs differ by two record intervals or more are listed with the test's tie
    judgement (``tests/physics/test_fire_ensemble_dt.py``). Per building, season and dt: the ensemble's
    products over the set's members (ASET P10/P50/P90 per storey, ``p_untenable`` at the run's end) beside
    dt = 1 s. Two sets: ``choose`` (used to choose the ensemble's default dt) and ``held_out`` (which showed
    2.5 s failing and 2 s passing); the test runs members of neither set.
(rate) ``--parts rate``: members/s of :func:`physics.fire_ensemble.fire_ensemble` on the bench tower (the Ping
    An example with 13 office zones per storey and the fire lifts only: 2,212 compartments, as
    ``bench/bench_fire.py``) and on ``tower_30_residential``: ``--members`` members of 600 s drawn from every
    storey × the four growths (seed 1), at dt = 1 s without the per-process set-up cache (the reference, the
    ensemble as it was) and at the ensemble's default dt with it, on 1 worker (this process) and on 2 worker
    processes. Projected: 1000 members at the measured rate, and from the members' CPU time on 2 cores.
    ``--thousand`` also runs 1000 members of the 30-storey example on 2 processes (every flat of every storey as
    origin × the four growth classes and six alphas between them, 1000 of the 1,200 pairs drawn with seed 1).
(window) ``--parts window``: the storey window of :mod:`physics.fire_window` (``--window`` below,above, default
    2,3). Per building (``--buildings``; also ``ping an``, the Ping An example itself): ``--window-members``
    members drawn (seed 2) from every storey × the four growths × summer and winter, sprinklers as the building
    says, each run on the whole building and on the window (guarded: a fallback reruns the whole building and its
    CPU counts), one after another in this process on the cached set-up. The fire-free runs that the window's
    reservoirs follow are timed apart (once per worker and season). A member leaving its first window tries the
    wider ones of :func:`physics.fire_window.wider_window` (summer: ``REVERSE_STACK_WIDER``; winter ``WIDEN`` times
    the first), then the whole building. Agreement: every storey's ASET and ignition against the whole building's
    (tenable counts as the run's end). ``--window-thousand N``: N members of the bench tower (every room × ten
    growths, seed 1, summer) on 2 worker processes on the **default path** (``window="auto"``, ``batch="auto"``:
    what users get; ``--window`` does not apply), and ``--window-reference`` whole-building members the same way in
    the same run, projected to 1000. Printed: the total wall (the call: cluster start, warm-up and dataset
    included), the members' wall, the warm-up, CPU per member, the CPU split (members kept on their first window,
    runs on windows they left, the reruns after them), the tail (one worker idle at the end), this process's CPU,
    the members that left their first window, were widened or ended on the whole building, and the contention.

The machine is shared (2 cores, other jobs): read CPU time beside wall time; the contention (Linux PSI: share
of the time some task waited for a CPU) is printed with each figure. Run ``python bench/bench_fire_ensemble.py
--help``; ``--quick`` for a short check.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402
from bench_fire import tower_spec  # noqa: E402

GROWTHS = ("slow", "medium", "fast", "ultrafast")
DURATION_S = 600.0
RECORD_S = 10.0
#: Origins (storeys) per building: the set used to choose dt and the held-out set.
SETS = {
    "choose": {"tower 115": (10, 44, 80), "tower 30": (3, 12, 24)},
    "held_out": {"tower 115": (25, 62, 103), "tower 30": (7, 18, 28)},
}


def _building(label: str):
    if label == "ping an":
        return "ping_an_finance_centre"
    return tower_spec() if label == "tower 115" else "tower_30_residential"


# ----------------------------------------------------------------------------- (dt) one member, diagnosed
def run_diagnosed(building, *, floor: int, growth: str, season: str, sprinklers: bool, dt_s: float,
                  duration_s: float = DURATION_S) -> dict:
    """One 600 s member at ``dt_s`` with the zone model's steps watched (module docstring (dt))."""
    from physics._kernels import fire_zone as K
    from physics.fire_sim import FireSimulation

    c0 = time.process_time()
    sim = FireSimulation(building, floor=floor, growth=growth, sprinklers=sprinklers, season=season,
                         duration_s=duration_s, dt_s=dt_s, record_every_s=RECORD_S)
    watch = {"tries": 0, "failed": 0, "capped": 0, "newton": 0, "min_mass": np.inf, "min_energy": np.inf}
    tol = float(sim.zone.par[K.P_TOL])

    def kernel(*a):
        it, err, bad = K.step(*a)
        watch["tries"] += 1
        if bad:
            watch["failed"] += 1
            return it, err, bad
        new = a[9]
        watch["newton"] += it
        watch["capped"] += int(it >= 50 and err > tol)
        watch["min_mass"] = min(watch["min_mass"], float(new[:, K.MU].min()), float(new[:, K.ML].min()))
        watch["min_energy"] = min(watch["min_energy"], float(new[:, K.UU].min()), float(new[:, K.UL].min()))
        return it, err, bad

    sim.zone._kernel_step = kernel  # the same compiled step, counted
    sim.advance_to(sim.duration_s)
    cpu = time.process_time() - c0
    bal = sim.zone.balance()
    aset = np.where(np.isfinite(sim.tenability.aset_s), sim.tenability.aset_s, np.nan)
    steps = sim.zone.steps
    z = np.stack(sim.recorder.fields["layer_height"])
    route_z = np.stack([z[:, r].min(axis=1) if len(r) else np.full(len(z), np.inf) for r in sim.tenability.routes],
                       axis=1)
    fire_tu = np.stack(sim.recorder.fields["upper_layer__temperature"])[:, sim.origin]
    return {"record_s": np.asarray(sim.recorder.t), "route_zmin_m": route_z, "fire_room_tu_k": fire_tu,
            "criterion": list(sim.tenability.criterion),
            "floor": floor, "growth": growth, "season": season, "sprinklers": sprinklers, "dt_s": dt_s,
            "cpu_s": cpu, "aset_s": aset, "ignition_s": sim.ignition_s.copy(),
            "flashover_s": sorted(e["time_s"] for e in sim.events if e["kind"] == "flashover"),
            "events": len(sim.events), "steps": steps, "failed_tries": watch["failed"],
            "newton_per_step": watch["newton"] / max(steps, 1), "newton_capped_steps": watch["capped"],
            "min_layer_mass_kg": watch["min_mass"], "min_layer_energy_j": watch["min_energy"],
            "mass_residual_rel": abs(bal["mass_residual"]) / bal["mass"],
            "energy_residual_rel": abs(bal["energy_residual"]) / bal["energy"]}


def aset_differences(a: np.ndarray, ref: np.ndarray, duration_s: float) -> np.ndarray:
    """|ASET − reference| per storey where either run found one; a storey untenable in only one of them counts
    as the distance from its ASET to the run's end (the other run's ASET is beyond it)."""
    x = np.where(np.isfinite(a), a, duration_s)
    y = np.where(np.isfinite(ref), ref, duration_s)
    either = np.isfinite(a) | np.isfinite(ref)
    return np.abs(x - y)[either]


def fire_room_difference(r: dict, ref: dict, settle_s: float = 30.0) -> float:
    """The origin compartment's upper-layer temperature against the reference's, on the records from ``settle_s``
    after the later of the two flashovers: the largest |ΔT| as a share of the reference's rise above the inside
    air (NaN when neither flashed over). A step too long for the post-flashover room shows here as an
    oscillation of hundreds of K."""
    from physics.fire_correlations import AMBIENT_K

    fo = r["flashover_s"][:1] + ref["flashover_s"][:1]
    if not fo:
        return math.nan
    after = r["record_s"] >= max(fo) + settle_s
    if not np.any(after):
        return math.nan
    rise = np.maximum(ref["fire_room_tu_k"][after] - AMBIENT_K, 1.0)
    return float(np.max(np.abs(r["fire_room_tu_k"][after] - ref["fire_room_tu_k"][after]) / rise))


def tie_gaps(r: dict, ref: dict, storeys: np.ndarray, duration_s: float) -> list[dict]:
    """For each of ``storeys`` (ASETs two record intervals apart or more): the run whose storey stayed tenable
    longer, the least height above head height (1.8 m) its escape route's smoke layer reached while tenable (the
    margin by which the storey escaped the visibility switch) and the two runs' difference of that layer height
    at that record; ``tie``: the margin is smaller than that difference and than 1 cm (as ``tests/physics/
    test_fire_ensemble_dt.py`` judges it)."""
    from physics.fire_tenability import HEAD_HEIGHT_M

    out = []
    for s in storeys:
        a, b = (r["aset_s"][s], ref["aset_s"][s])
        later_run = r if np.nan_to_num(a, nan=np.inf) > np.nan_to_num(b, nan=np.inf) else ref
        upto = later_run["record_s"] < np.nan_to_num(later_run["aset_s"][s], nan=np.inf)
        k = int(np.argmin(np.where(upto, later_run["route_zmin_m"][:, s], np.inf)))
        margin = float(later_run["route_zmin_m"][k, s] - HEAD_HEIGHT_M)
        dz = float(abs(r["route_zmin_m"][k, s] - ref["route_zmin_m"][k, s]))
        out.append({"storey": int(s), "aset_s": float(a), "aset_ref_s": float(b),
                    "criterion": (ref if later_run is r else r)["criterion"][s],
                    "later_run": "dt" if later_run is r else "ref", "margin_above_head_m": margin,
                    "route_dz_m": dz, "tie": bool(0.0 <= margin < min(dz, 0.01))})
    return out


def _products(asets: list[np.ndarray], duration_s: float) -> tuple[np.ndarray, np.ndarray]:
    from physics.fire_ensemble import censored_percentiles, untenable_probability

    a = np.stack(asets)
    return censored_percentiles(a), untenable_probability(a, (duration_s,), duration_s)[0]


def run_dt_study(dts: list[float], sets: list[str], buildings: list[str], growths: tuple[str, ...],
                 duration_s: float = DURATION_S) -> dict:
    """(dt): every member of ``sets`` at every dt; per member its differences to dt = 1 s; per group the
    products' differences."""
    members, groups = [], []
    for set_name in sets:
        for label in buildings:
            building = _building(label)
            sprinkler_cases = (False, True) if label == "tower 30" else (False,)
            for season in ("summer", "winter"):
                for spr in sprinkler_cases:
                    by_dt: dict[float, list[np.ndarray]] = {dt: [] for dt in dts}
                    for floor in SETS[set_name][label]:
                        for growth in growths:
                            ref = None
                            for dt in dts:
                                r = run_diagnosed(building, floor=floor, growth=growth, season=season,
                                                  sprinklers=spr, dt_s=dt, duration_s=duration_s)
                                ref = r if ref is None else ref
                                d = aset_differences(r["aset_s"], ref["aset_s"], duration_s)
                                di = aset_differences(r["ignition_s"], ref["ignition_s"], duration_s)
                                x = np.where(np.isfinite(r["aset_s"]), r["aset_s"], duration_s)
                                y = np.where(np.isfinite(ref["aset_s"]), ref["aset_s"], duration_s)
                                far = np.flatnonzero(np.abs(x - y) >= 2.0 * RECORD_S)  # the test's tolerance
                                r["ties"] = tie_gaps(r, ref, far, duration_s)
                                r["fire_room_tu_rel_diff"] = fire_room_difference(r, ref)
                                r.update(set=set_name, building=label, n_aset=int(len(d)),
                                         aset_max_diff_s=float(d.max()) if len(d) else 0.0,
                                         aset_mean_diff_s=float(d.mean()) if len(d) else 0.0,
                                         ignition_max_diff_s=float(di.max()) if len(di) else 0.0,
                                         cpu_ratio=r["cpu_s"] / ref["cpu_s"])
                                by_dt[dt].append(r["aset_s"])
                                members.append(r)
                                print(f"  {set_name} {label} {season} spr={int(spr)} L{floor} {growth:9s} dt={dt:g}: "
                                      f"{r['cpu_s']:.2f} CPU s, {r['steps']} steps ({r['failed_tries']} failed), "
                                      f"ASETs {r['n_aset']}, max |dASET| {r['aset_max_diff_s']:.1f} s, fire room "
                                      f"after flashover {r['fire_room_tu_rel_diff']:.1%}"
                                      + "".join(f"; storey {t['storey']} {t['criterion']}: {t['aset_ref_s']:.1f} -> "
                                                f"{t['aset_s']:.1f} s, layer {t['margin_above_head_m'] * 1e3:.1f} mm "
                                                f"above head (runs differ by {t['route_dz_m'] * 1e3:.1f} mm"
                                                f"{': tie' if t['tie'] else ': NOT a tie'})"
                                                for t in r["ties"]), flush=True)
                    p_ref, u_ref = _products(by_dt[dts[0]], duration_s)
                    for dt in dts:
                        p, u = _products(by_dt[dt], duration_s)
                        dp = aset_differences(p.ravel(), p_ref.ravel(), duration_s)
                        groups.append({"set": set_name, "building": label, "season": season, "sprinklers": spr,
                                       "dt_s": dt, "members": len(by_dt[dt]),
                                       "percentile_max_diff_s": float(dp.max()) if len(dp) else 0.0,
                                       "p_untenable_end_max_diff": float(np.max(np.abs(u - u_ref))),
                                       "storeys_untenable_ref": int(np.sum(u_ref > 0))})
    summary = []
    for set_name in sets:
        for label in buildings:
            for dt in dts:
                rows = [m for m in members if m["set"] == set_name and m["building"] == label and m["dt_s"] == dt]
                if not rows:
                    continue
                summary.append({"set": set_name, "building": label, "dt_s": dt, "members": len(rows),
                                "aset_compared": int(sum(m["n_aset"] for m in rows)),
                                "aset_max_diff_s": max(m["aset_max_diff_s"] for m in rows),
                                "aset_mean_diff_s": float(np.mean([m["aset_mean_diff_s"] for m in rows
                                                                   if m["n_aset"]] or [0.0])),
                                "ignition_max_diff_s": max(m["ignition_max_diff_s"] for m in rows),
                                "fire_room_tu_rel_diff_max": float(np.nanmax([m.get("fire_room_tu_rel_diff", math.nan)
                                                                              for m in rows] + [0.0])),
                                "cpu_s_mean": float(np.mean([m["cpu_s"] for m in rows])),
                                "cpu_ratio_mean": float(np.mean([m["cpu_ratio"] for m in rows])),
                                "failed_tries": int(sum(m["failed_tries"] for m in rows)),
                                "newton_per_step": float(np.mean([m["newton_per_step"] for m in rows])),
                                "newton_capped_steps": int(sum(m["newton_capped_steps"] for m in rows)),
                                "min_layer_mass_kg": min(m["min_layer_mass_kg"] for m in rows),
                                "min_layer_energy_j": min(m["min_layer_energy_j"] for m in rows),
                                "mass_residual_rel_max": max(m["mass_residual_rel"] for m in rows),
                                "energy_residual_rel_max": max(m["energy_residual_rel"] for m in rows)})
    for m in members:  # lists for the JSON (NaN -> null); the route's layer heights are not kept
        m["aset_s"], m["ignition_s"] = m["aset_s"].tolist(), m["ignition_s"].tolist()
        m.pop("route_zmin_m")
        m.pop("fire_room_tu_k")
        m["record_s"] = len(m["record_s"])
    return {"members": members, "groups": groups, "summary": summary}


# ----------------------------------------------------------------------------- (rate) members per second
def every_room(label: str) -> list[tuple[int, str]]:
    """(storey, room) of every room with fuel in the building: origins for more members than storeys × growths."""
    from physics.fire_building import build_network
    from physics.fire_network import COMPARTMENT_KINDS
    from physics.fire_sim import resolve_building

    net = build_network(resolve_building(_building(label)))
    kinds = np.asarray(COMPARTMENT_KINDS)[net.kind]
    fuel = np.asarray(net.attrs["fuel_load_mj_m2"], float)
    return [(int(net.storey[c]), net.names[c].split("/", 1)[1]) for c in np.flatnonzero((kinds == "room") & (fuel > 0))]


#: Growths of the 1000-member run: the four t² classes and six alphas between them (kW/s²).
MANY_GROWTHS = (*GROWTHS, 0.005, 0.008, 0.02, 0.03, 0.07, 0.12)


def run_rate(label: str, members: int, configs: list[tuple[str, int, float | None, bool, int]],
             duration_s: float = DURATION_S, origins: Any = "all floors", growths: Any = GROWTHS) -> list[dict]:
    """(rate): fire_ensemble on ``label`` at each (name, workers, dt or None for the default, cache, batch)."""
    from physics.fire_ensemble import fire_ensemble

    rows = []
    for name, workers, dt, cache, batch in configs:
        stall0 = C.cpu_stall_us()
        t0 = time.perf_counter()
        kw = {} if dt is None else {"dt_s": dt}
        ds = fire_ensemble(_building(label), origins=origins, growths=growths, members=members, seed=1,
                           duration_s=duration_s, workers=workers, setup_cache=cache, batch=batch, **kw)
        total = time.perf_counter() - t0
        wall = float(ds.attrs["wall_s"])
        cpu = float(np.nansum(ds.member_cpu_s.values))
        rate = members / wall if wall > 0 else math.nan
        cores = min(workers, os.cpu_count() or 1)
        rows.append({"building": label, "config": name, "workers": workers, "dt_s": float(ds.attrs["dt_s"]),
                     "setup_cache": cache, "batch": batch, "members": members, "ok": int(ds.attrs["n_ok"]),
                     "wall_s": wall,
                     "total_s": total, "warm_s": float(ds.attrs["warm_s"]), "members_per_s": rate,
                     "member_cpu_s_mean": cpu / members, "member_wall_s_mean": float(np.nanmean(ds.member_wall_s)),
                     "projected_1000_s": 1000.0 / rate if rate > 0 else math.nan,
                     "projected_1000_cpu_2cores_s": 1000.0 * cpu / members / 2.0,
                     "cores_used": cores, "cpu_contention_pct": C.contention_pct(stall0, total),
                     "errors": sorted({str(e)[:80] for e in ds.member_error.values if e})})
        print(f"  {label} {name}: {rows[-1]['ok']}/{members} ok, {wall:.1f} s wall, {rate:.3f} members/s, "
              f"{cpu / members:.3f} CPU s per member", flush=True)
    return rows


# ----------------------------------------------------------------------------- (window) storey windows
def _censored(a: np.ndarray, duration_s: float) -> np.ndarray:
    return np.where(np.isfinite(a), a, duration_s)


def run_window_study(label: str, members: int, window: tuple[int, int], duration_s: float = DURATION_S,
                     seed: int = 2) -> dict[str, Any]:
    """(window): ``members`` drawn from every storey × the four growths × summer and winter (sprinklers as the
    building says), each run on the whole building and on ``window`` (guarded, as the ensemble runs it) in this
    process on the cached set-up; CPU per member, fallbacks, every storey's ASET and ignition against the whole
    building's."""
    from physics import fire_window as W
    from physics.fire_ensemble import Member, ensemble_members, prepared_building, run_member
    from physics.fire_sim import outside_temperature_k, resolve_building

    spec = resolve_building(_building(label))
    prep = prepared_building(spec)
    kw = {"duration_s": duration_s, "dt_s": 2.0, "record_every_s": RECORD_S, "sprinklers": None}
    pairs = [(m, season) for season in ("summer", "winter")
             for m in ensemble_members(spec.n_storeys, "all floors", GROWTHS)]
    pick = np.sort(np.random.default_rng(seed).choice(len(pairs), size=min(members, len(pairs)), replace=False))
    history_cpu = {}
    for season in ("summer", "winter"):  # the fire-free runs, once per worker and season: timed apart
        c0 = time.thread_time()
        W.cached_history(spec, prep, outside_temperature_k(season), 2.0, duration_s, RECORD_S)
        history_cpu[season] = time.thread_time() - c0
    rows = []
    for i in pick:
        m, season = pairs[i]
        mem = Member(len(rows), m.floor, None, m.growth)
        whole = run_member(spec, mem, {**kw, "season": season})
        win = run_member(spec, mem, {**kw, "season": season}, window=window)
        d_aset = np.abs(_censored(whole["aset_s"], duration_s) - _censored(win["aset_s"], duration_s))
        d_ign = np.abs(_censored(whole["ignition_s"], duration_s) - _censored(win["ignition_s"], duration_s))
        rows.append({"floor": m.floor, "growth": m.growth, "season": season, "windowed": win["windowed"],
                     "fallback": win["window_fallback"], "window_used": win["window_used"], "cpu_whole_s": whole["cpu_s"], "cpu_window_s": win["cpu_s"],
                     "aset_max_diff_s": float(d_aset.max()), "ignition_max_diff_s": float(d_ign.max()),
                     "storeys_identical": int(np.sum(d_aset == 0.0)), "storeys_within_1e-3_s": int(np.sum(d_aset < 1e-3)),
                     "storeys": int(d_aset.size), "untenable_whole": np.flatnonzero(np.isfinite(whole["aset_s"])).tolist(),
                     "untenable_window": np.flatnonzero(np.isfinite(win["aset_s"])).tolist()})
        print(f"  {label} storey {m.floor} {m.growth} {season}: whole {whole['cpu_s']:.3f} s, window "
              f"{win['cpu_s']:.3f} s {'(fallback: ' + win['window_fallback'] + ')' if win['window_fallback'] else ''}"
              f" max |dASET| {d_aset.max():.3g} s", flush=True)
    whole_cpu = float(np.mean([r["cpu_whole_s"] for r in rows]))
    win_cpu = float(np.mean([r["cpu_window_s"] for r in rows]))
    quiet = [r for r in rows if r["windowed"]]
    return {"building": label, "window": list(window), "members": len(rows),
            "fallbacks": sum(1 for r in rows if r["fallback"]), "whole_building": len(rows) - len(quiet),
            "cpu_whole_s_mean": whole_cpu, "cpu_window_s_mean": win_cpu, "speedup": whole_cpu / win_cpu,
            "cpu_windowed_only_s_mean": float(np.mean([r["cpu_window_s"] for r in rows if r["windowed"]
                                                       and not r["fallback"]])) if quiet else math.nan,
            "history_cpu_s": history_cpu,
            "aset_max_diff_s": float(max(r["aset_max_diff_s"] for r in rows)),
            "ignition_max_diff_s": float(max(r["ignition_max_diff_s"] for r in rows)),
            "members_aset_over_1e-3_s": int(sum(r["aset_max_diff_s"] >= 1e-3 for r in rows)),
            "members_aset_over_20_s": int(sum(r["aset_max_diff_s"] >= 2 * RECORD_S for r in rows)),
            "share_storeys_identical": float(sum(r["storeys_identical"] for r in rows) / sum(r["storeys"] for r in rows)),
            "share_storeys_within_1e-3_s": float(sum(r["storeys_within_1e-3_s"] for r in rows)
                                                 / sum(r["storeys"] for r in rows)),
            "rows": rows}


def member_split(ds) -> dict[str, float]:
    """Where an ensemble's member CPU went (the dataset of :func:`physics.fire_ensemble.fire_ensemble`): members
    kept on their first window, runs on windows that were left (stopped at the guard's record), the reruns after
    them (wider windows or the whole building); and the tail: the seconds between the first and the last worker's
    last member (one worker idle)."""
    cpu = ds.member_cpu_s.values
    left = ds.member_cpu_left_s.values
    moved = np.array([bool(x) for x in ds.member_window_fallback.values])
    end, worker = ds.member_end_s.values, ds.member_worker.values
    lasts = [float(np.nanmax(end[worker == w])) for w in np.unique(worker[worker >= 0])]
    return {"cpu_first_window_kept_s": float(np.nansum(cpu[~moved])), "cpu_windows_left_s": float(np.nansum(left)),
            "cpu_reruns_s": float(np.nansum(cpu[moved] - left[moved])),
            "tail_s": max(lasts) - min(lasts) if lasts else math.nan,
            "ended_whole_building": int(np.sum(moved & ~ds.member_windowed.values))}


def run_window_thousand(label: str, members: int, reference_members: int, duration_s: float = DURATION_S,
                        batch: int | None = None) -> list[dict]:
    """(window --thousand): ``members`` of ``label`` on 2 worker processes on the default path
    (``window="auto"``), and ``reference_members`` whole-building members the same way in the same run (the
    reference rate, projected to 1000). Total wall includes the cluster's start and the dataset."""
    from physics.fire_ensemble import fire_ensemble

    rows = []
    for name, n, win in (("whole building (reference)", reference_members, None), ("auto (default)", members, "auto")):
        if n <= 0:
            continue
        stall0, t0, p0 = C.cpu_stall_us(), time.perf_counter(), time.process_time()
        kw = {} if batch is None else {"batch": batch}
        ds = fire_ensemble(_building(label), origins=every_room(label), growths=MANY_GROWTHS, members=n, seed=1,
                           duration_s=duration_s, workers=2, window=win, **kw)
        total = time.perf_counter() - t0
        wall = float(ds.attrs["wall_s"])
        cpu = float(np.nansum(ds.member_cpu_s.values))
        rows.append({"building": label, "config": name, "members": n, "ok": int(ds.attrs["n_ok"]), "total_s": total,
                     "wall_s": wall, "warm_s": float(ds.attrs["warm_s"]), "member_cpu_s_mean": cpu / n,
                     "parent_cpu_s": time.process_time() - p0, "members_per_s": n / wall,
                     "projected_1000_s": 1000.0 * wall / n, "batch": str(ds.attrs["batch"]),
                     "fallbacks": int(ds.attrs["window_fallbacks"]), "windowed": int(ds.attrs["n_windowed"]),
                     "widened": int(ds.attrs["window_widened"]), **member_split(ds),
                     "cpu_contention_pct": C.contention_pct(stall0, total)})
        r = rows[-1]
        print(f"  {label} {name}: {n} members, total {total:.1f} s (members {wall:.1f} s, warm-up {r['warm_s']:.1f} s), "
              f"{cpu / n:.4f} CPU s/member, left first window {r['fallbacks']} (widened {r['widened']}), tail "
              f"{r['tail_s']:.2f} s, contention {r['cpu_contention_pct']}", flush=True)
    return rows


# ----------------------------------------------------------------------------- main
def _dt_rows(study: dict) -> list[list[Any]]:
    return [[s["set"], s["building"], s["dt_s"], s["members"], s["aset_compared"], s["aset_max_diff_s"],
             s["aset_mean_diff_s"], s["ignition_max_diff_s"], s["fire_room_tu_rel_diff_max"], s["cpu_s_mean"],
             s["cpu_ratio_mean"], s["failed_tries"],
             s["newton_per_step"], s["newton_capped_steps"], s["min_layer_mass_kg"],
             max(s["mass_residual_rel_max"], s["energy_residual_rel_max"])] for s in study["summary"]]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parts", default="dt,rate", help="comma-separated subset of dt,rate,window")
    p.add_argument("--window", default="2,3", help="storeys below,above of the window part (default 2,3)")
    p.add_argument("--window-members", type=int, default=24, help="members per building in the window part")
    p.add_argument("--window-thousand", type=int, default=0,
                   help="window part: also this many members of the bench tower on 2 processes on the default "
                        "path, window='auto' (e.g. 1000)")
    p.add_argument("--window-reference", type=int, default=40,
                   help="whole-building members on 2 processes measured beside --window-thousand (default 40)")
    p.add_argument("--dts", default="1,2,2.5,3,5,10", help="time steps of the dt study (s; the first is the reference)")
    p.add_argument("--sets", default="choose,held_out", help="member sets of the dt study")
    p.add_argument("--buildings", default="tower 30,tower 115", help="buildings ('tower 30', 'tower 115')")
    p.add_argument("--members", type=int, default=8, help="members per rate measurement (default 8)")
    p.add_argument("--duration", type=float, default=DURATION_S, help="member length, s (default 600)")
    p.add_argument("--batch", type=int, default=8, help="members per Dask task in the batched config (default 8)")
    p.add_argument("--thousand", action="store_true", help="also 1000 members of the 30-storey tower, 2 processes")
    p.add_argument("--quick", action="store_true", help="dt study on one growth, rate with 2 members")
    p.add_argument("--out", default=None, help="folder of the JSON (default bench/results)")
    args = p.parse_args(argv)
    parts = set(args.parts.split(","))
    buildings = [b.strip() for b in args.buildings.split(",")]
    C.set_threads(1)
    warn = C.busy_warning()
    payload: dict[str, Any] = {"benchmark": "fire_ensemble", "quick": args.quick, "machine": C.machine_info(),
                               "args": vars(args)}
    notes = []
    from physics.fire_sim import simulate_fire

    simulate_fire("tower_30_residential", floor=1, growth="fast", duration_s=2.0, record_every_s=1.0)  # kernels
    if "dt" in parts:
        print("(dt) time step of the members ...", flush=True)
        stall0, t0 = C.cpu_stall_us(), time.perf_counter()
        study = run_dt_study([float(x) for x in args.dts.split(",")], args.sets.split(","), buildings,
                             GROWTHS[2:3] if args.quick else GROWTHS, args.duration)
        study["cpu_contention_pct"] = C.contention_pct(stall0, time.perf_counter() - t0)
        payload["dt"] = study
        title = f"Ensemble members' time step against dt = 1 s ({args.duration:.0f} s members, record every 10 s)"
        C.print_table(title,
                      ["set", "building", "dt s", "members", "ASETs", "max |dASET| s", "mean |dASET| s",
                       "max |dignition| s", "fire room after flashover, max |dT|/rise", "CPU s/member", "CPU vs dt=1",
                       "failed tries", "Newton/step",
                       "Newton capped", "min layer kg", "max balance residual (rel)"], _dt_rows(study),
                      [f"CPU contention during the study: {study['cpu_contention_pct']}"])
        grp = [[g["set"], g["building"], g["season"], int(g["sprinklers"]), g["dt_s"], g["members"],
                g["percentile_max_diff_s"], g["p_untenable_end_max_diff"], g["storeys_untenable_ref"]]
               for g in study["groups"]]
        C.print_table("Ensemble products against dt = 1 s", ["set", "building", "season", "sprinklers", "dt s",
                                                              "members", "max |dP10/50/90| s",
                                                              "max |dp_untenable(end)|", "storeys p>0 (dt=1)"],
                      grp, [])
    if "rate" in parts:
        print("(rate) members per second ...", flush=True)
        n = 2 if args.quick else args.members
        configs = [("dt 1 s, no cache, 1 worker", 1, 1.0, False, 1), ("default dt, cache, 1 worker", 1, None, True, 1),
                   ("dt 1 s, no cache, 2 processes", 2, 1.0, False, 1),
                   ("default dt, cache, 2 processes", 2, None, True, 1),
                   (f"default dt, cache, 2 processes, batch {args.batch}", 2, None, True, args.batch)]
        rates = []
        for label in buildings:
            rates += run_rate(label, n * (4 if label == "tower 30" else 1), configs, args.duration)
        if args.thousand:
            rates += run_rate("tower 30", 1000, [(f"default dt, cache, 2 processes, batch {args.batch}", 2, None, True,
                                                  args.batch)], args.duration, every_room("tower 30"), MANY_GROWTHS)
        payload["rate"] = rates
        C.print_table(f"Fire ensembles: members per second ({args.duration:.0f} s members)",
                      ["building", "config", "members", "wall s", "members/s", "CPU s/member",
                       "1000 members at this rate, min", "1000 from CPU on 2 cores, min", "contention %"],
                      [[r["building"], r["config"], r["members"], r["wall_s"], r["members_per_s"],
                        r["member_cpu_s_mean"], r["projected_1000_s"] / 60.0, r["projected_1000_cpu_2cores_s"] / 60.0,
                        r["cpu_contention_pct"]] for r in rates], [])
    if "window" in parts:
        print("(window) storey windows against the whole building ...", flush=True)
        window = tuple(int(x) for x in args.window.split(","))
        studies = []
        for label in buildings:
            stall0, t0 = C.cpu_stall_us(), time.perf_counter()
            st = run_window_study(label, 4 if args.quick else args.window_members, window, args.duration)
            st["cpu_contention_pct"] = C.contention_pct(stall0, time.perf_counter() - t0)
            studies.append(st)
        payload["window"] = studies
        C.print_table(f"Storey window {window[0]} below, {window[1]} above against the whole building "
                      f"({args.duration:.0f} s members, one process)",
                      ["building", "members", "left first window", "ended on whole building", "CPU s/member whole", "CPU s/member window (with fallbacks)",
                       "speed-up", "CPU s windowed only", "fire-free runs CPU s (summer, winter)", "max |dASET| s",
                       "members |dASET| >= 1e-3 s", "members >= 20 s", "storeys identical", "max |dignition| s",
                       "contention %"],
                      [[s["building"], s["members"], s["fallbacks"], s["whole_building"], s["cpu_whole_s_mean"], s["cpu_window_s_mean"],
                        s["speedup"], s["cpu_windowed_only_s_mean"],
                        f"{s['history_cpu_s']['summer']:.2f}, {s['history_cpu_s']['winter']:.2f}", s["aset_max_diff_s"],
                        s["members_aset_over_1e-3_s"], s["members_aset_over_20_s"], s["share_storeys_identical"],
                        s["ignition_max_diff_s"], s["cpu_contention_pct"]] for s in studies], [])
        if args.window_thousand:
            th = run_window_thousand("tower 115", args.window_thousand, args.window_reference, args.duration)
            payload["window_thousand"] = th
            C.print_table("Bench tower, summer: members on 2 worker processes, default path (window=\"auto\") and "
                          "whole building (same run)",
                          ["config", "members", "ok", "total wall s", "members wall s", "warm-up s", "CPU s/member",
                           "CPU kept first window s", "CPU windows left s", "CPU reruns s", "tail s",
                           "parent CPU s", "left first window", "widened", "ended whole building",
                           "1000 members at this rate, s", "contention %"],
                          [[r["config"], r["members"], r["ok"], r["total_s"], r["wall_s"], r["warm_s"],
                            r["member_cpu_s_mean"], r["cpu_first_window_kept_s"], r["cpu_windows_left_s"],
                            r["cpu_reruns_s"], r["tail_s"], r["parent_cpu_s"], r["fallbacks"], r["widened"],
                            r["ended_whole_building"], r["projected_1000_s"], r["cpu_contention_pct"]]
                           for r in th], ["total wall: fire_ensemble's call, the cluster's start and the dataset "
                                          "included; members wall: from the first member's submission to the last's "
                                          "result; tail: one worker idle at the end"])
    if warn:
        notes.append(warn)
        print(warn)
    payload["notes"] = notes
    path = C.write_results("fire_ensemble-quick" if args.quick else "fire_ensemble", payload, args.out)
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
