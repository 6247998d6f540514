"""An independent numpy/deque reference of the building kernel, compared with the numba kernel.

Written from the rules in the docstring of :mod:`agents._kernels.building`,
sharing no code with it: queues are ``collections.deque`` s keyed by
(floor, stair) or exit, a flight is a list of people in entry order, the
no-overtaking rule is a running minimum (``np.minimum.accumulate``) of the
free positions. Same seed, same draws (the people come from
``agents.building_evac._people``), so every person's times must agree
exactly with :func:`agents.building_evac.simulate`.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest

from agents.building import parse_building, resolve
from agents.building_evac import _network, _people, simulate

A, D_FREE, D_JAM = 0.266, 0.54, 3.8
D_OPT = 1.0 / (2.0 * A)


def reference(tower, seed: int, dt: float, t_end: float) -> np.ndarray:
    """Every person's time to safety (NaN: not safe by ``t_end``) by the kernel's rules."""
    p = _people(tower, np.random.default_rng(seed))
    net = _network(tower, dt)
    F, S, E = net.n_floors, net.n_stairs, net.n_exits
    n = p["floor"].size
    safe = np.full(n, np.nan)
    pos = np.zeros(n)
    refuge_home = net.refuge[p["floor"]] & (p["floor"] > 0) & net.refuge_stop
    safe[refuge_home] = 0.0
    order = [int(a) for a in np.argsort(p["t_arrive"], kind="stable") if not refuge_home[a]]
    door = {(f, s): deque() for f in range(F) for s in range(S)}
    ground = {e: deque() for e in range(E)}
    flight = {(f, s): [] for f in range(1, F) for s in range(S)}
    tok_f = dict.fromkeys(flight, 0.0)
    tok_d = dict.fromkeys(door, 0.0)
    tok_e = dict.fromkeys(range(E), 0.0)
    carry = {**dict.fromkeys(door, 0.0), **{("exit", e): 0.0 for e in range(E)}}
    nxt, t = 0, 0.0

    def bucket(tok, c):
        return min(tok + c * dt, c * dt + 1.0)

    def split(cap, fw, sw, key):
        if fw + sw <= cap:
            return fw, sw
        x = net.floor_share * cap + carry[key]
        want = int(np.floor(x))
        carry[key] = x - want
        kf = min(fw, want)
        ks = min(sw, cap - kf)
        return min(fw, cap - ks), ks

    def ready(f, s):
        L = net.flight_len[f, s]
        return int(np.argmin(np.r_[[pos[a] >= L - 1e-9 for a in flight[(f, s)]], False]))

    while np.isnan(safe).any() and t < t_end:
        t += dt
        while nxt < len(order) and p["t_arrive"][order[nxt]] <= t:
            a = order[nxt]
            nxt += 1
            (ground[p["exit"][a]] if p["floor"][a] == 0 else door[(p["floor"][a], p["stair"][a])]).append(a)
        for (f, s), people in flight.items():
            if not people:
                continue
            L, we, k = net.flight_len[f, s], net.flight_we[s], net.flight_k[s]
            d = min(len(people) / (L * we), D_OPT)
            v = k * (1.0 - A * max(d, D_FREE))
            crowd = min(1.0, max(0.0, (d - D_FREE) / (D_OPT - D_FREE)))
            ids = np.array(people)
            g = p["fac"][ids] + (1.0 - p["fac"][ids]) * crowd
            free = np.minimum(pos[ids] + v * g * dt, np.inf)
            pos[ids] = np.minimum.accumulate(np.r_[L, free])[1:]
        for e in range(E):
            tok_e[e] = bucket(tok_e[e], net.exit_c[e])
            mine = [s for s in range(S) if net.stair_exit[s] == e] if F > 1 else []
            sw = sum(ready(1, s) for s in mine)
            kf, ks = split(int(np.floor(tok_e[e])), len(ground[e]), sw, ("exit", e))
            for _ in range(kf):
                safe[ground[e].popleft()] = t
            s0 = int(t / dt) % S
            left = ks
            while left > 0:
                moved = False
                for j in range(S):
                    s = (s0 + j) % S
                    if left and s in mine and flight[(1, s)] and pos[flight[(1, s)][0]] >= net.flight_len[1, s] - 1e-9:
                        safe[flight[(1, s)].pop(0)] = t
                        left -= 1
                        moved = True
                if not moved:
                    break
            tok_e[e] -= kf + ks - left
        for s in range(S):
            for f in range(1, F):
                tok_d[(f, s)] = bucket(tok_d[(f, s)], net.door_c[s])
                above = ready(f + 1, s) if f + 1 < F else 0
                if net.refuge[f] and net.refuge_stop:
                    k = min(above, int(np.floor(tok_d[(f, s)])))
                    for _ in range(k):
                        safe[flight[(f + 1, s)].pop(0)] = t
                    tok_d[(f, s)] -= k
                    continue
                tok_f[(f, s)] = bucket(tok_f[(f, s)], net.flight_c[s])
                space = max(1, net.flight_hold[f, s]) - len(flight[(f, s)])
                budget = max(0, min(int(np.floor(tok_f[(f, s)])), space))
                fw = min(len(door[(f, s)]), int(np.floor(tok_d[(f, s)])))
                kf, ks = split(budget, fw, above, (f, s))
                for _ in range(ks):
                    a = flight[(f + 1, s)].pop(0)
                    flight[(f, s)].append(a)
                    pos[a] = 0.0
                for _ in range(kf):
                    a = door[(f, s)].popleft()
                    flight[(f, s)].append(a)
                    pos[a] = 0.0
                tok_f[(f, s)] -= kf + ks
                tok_d[(f, s)] -= kf
    return safe


@pytest.mark.parametrize("refuge_mode", ["stop", "continue"])
def test_kernel_agrees_with_the_independent_reference(refuge_mode):
    spec = parse_building({
        "name": "reference", "storeys": {"count": 7, "height_m": 3.2},
        "occupancy": {"floor_area_m2": 500.0, "people_per_floor": 25, "ground_floor_people": 15,
                      "travel_m": 12.0},
        "floors": [{"index": 4, "refuge": True, "people": 5}],
        "stairs": [{"width_m": 1.1, "exit": 0}, {"width_m": 1.3, "riser_mm": 165.0, "tread_mm": 305.0, "exit": 0},
                   {"width_m": 1.2, "door_width_m": 1.2, "exit": 1}],
        "exits": [{"width_m": 1.4}, {"width_m": 1.0}],
        "movement": {"demographics": "shenzhen_census_2020", "floor_share": 0.6, "refuge_mode": refuge_mode,
                     "premovement": {"dist": "lognormal", "median_s": 20.0, "sigma": 0.6}},
    })
    tower = resolve(spec)
    ds = simulate(tower, seed=9, dt=0.5, record_every_s=5.0)
    ref = reference(tower, seed=9, dt=0.5, t_end=float(ds["time"].values[-1]))
    np.testing.assert_array_equal(ds["t_safe"].values, ref)
