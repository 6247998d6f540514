"""Numba kernel of the building evacuation: advance every occupant by fixed steps.

One step of ``dt`` seconds, in this order:

1. occupants whose pre-movement and floor walk are over (``t_arrive <= t``,
   taken in arrival order) join the queue at their stair door (floors >= 1)
   or at their exit door (ground floor);
2. on every stair flight (storey f down to f-1) the occupants move down in
   entry order without overtaking: ``pos += S(D) fac dt`` capped by the
   person ahead and by the flight's length ``L``, where ``S`` is the SFPE
   speed ``k (1 - 0.266 D)`` (``0.85 k`` below 0.54 P/m²) at the flight's
   density ``D = n / (L We)``, capped at the density of maximum flow (1.88
   P/m²: beyond it the extra people are the queue the hydraulic model
   puts before the element), and ``g`` the person's speed factor: ``fac``
   (own free speed over the mean) at free flow (D <= 0.54 P/m²), blended
   linearly to 1 at the density of maximum flow, because in a dense stream
   the density, not the person, sets the pace (the hydraulic model's
   premise; with ``fac`` kept in dense flow one slow walker at the head of
   each flight would set every flight's throughput); in smoke the speed
   is multiplied by the flight's factor ``flight_fac`` (1 in clear air;
   set between blocks by a hazard, :mod:`agents.building_hazard`);
3. exits (bottom first), then landings from floor 1 up: each downstream
   element (exit door or flight below the landing) earns ``C dt`` places,
   ``C`` its maximum flow (P/s, max specific flow x effective width), kept
   (times ``flight_fac`` for a flight: the SFPE flow S·D falls with the
   speed) in a token bucket capped at ``C dt + 1`` (under steady demand the cap never
   binds, so the rate is exact; idle time banks at most one person);
   a flight also holds at most ``3.8 L We`` people (movement stops at 3.8
   P/m²), never fewer than 1 (a zero-capacity element would deadlock).
   The places go to the two streams of the landing — people at the bottom
   of the flight from above, and the floor's door queue, itself limited by
   its door's own bucket (the SFPE transition rule: min of upstream flow and
   each element's maximum) — split by ``floor_share`` when both wait
   (:func:`agents.stairs.merge_split`, with the fractional remainder
   carried). At an exit, the ground floor's queue is the "floor" stream and
   the stairs discharging there take turns. On a refuge floor (``refuge_stop``)
   the people from above leave the stair into the floor through its door.

The steps are small functions inlined into one compiled loop (``inline="always"``: the kernel
reads step by step, yet compiles about as fast as one long function). Arrays are grouped in three named tuples (:data:`Net` the building,
:data:`Agents` the people, :data:`State` the queues and counters). Queues
never wrap: each person enters each queue at most once (a hazard's closed
doors stay closed, so re-routing keeps this), so a queue is a
slice of one flat buffer (``off``, ``cap``) with ``head``/``tail`` counters.

:func:`advance_reference` is the same kernel run by the Python interpreter
(numba's ``py_func``): tests compare the two to catch compilation
differences (integer casts, rounding). An independent reference written
from the rules above with deques and numpy (tests/agents/test_building_reference.py)
checks the kernel's bookkeeping person by person, and the model itself is
checked against the SFPE hand calculations (tests/agents/test_building_sfpe.py).
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import njit

A_SPEED = 0.266
D_FREE = 0.54
D_MAX_FLOW = 1.0 / (2.0 * A_SPEED)
D_JAM = 3.8

#: Where an occupant is.
WAITING, QUEUED, ON_STAIR, OUT, REFUGE = 0, 1, 2, 3, 4

Net = namedtuple("Net", [
    "n_floors", "n_stairs", "n_exits", "floor_share", "refuge_stop", "queue_event_n",
    "refuge",        # (F,) bool
    "flight_len",    # (F, S) m, row 0 unused
    "flight_we",     # (S,) m
    "flight_k",      # (S,) m/s
    "flight_hold",   # (F, S) int, most people a flight holds
    "flight_c",      # (S,) P/s
    "door_c",        # (S,) P/s of each floor's stair door
    "exit_c",        # (E,) P/s
    "stair_exit",    # (S,) int
])

Agents = namedtuple("Agents", [
    "floor", "stair", "exit", "fac", "t_arrive", "order",
    "where", "pos", "t_leave", "t_safe",
])

State = namedtuple("State", [
    "clock",         # (1,) float: time (s)
    "ptr",           # (2,) int: next arrival in `order`, people done
    "qbuf", "qoff", "qhead", "qtail",      # door queues: (F*S + E) queues
    "fbuf", "foff", "fhead", "ftail",      # flights: F*S (row 0 unused)
    "tok_flight",    # (F*S,)
    "tok_door",      # (F*S + E,)
    "tok_exit",      # (E,)
    "carry",         # (F*S + E,) fractional floor share carried
    "door_count",    # (F*S + E,) int people through each door queue's door
    "flight_count",  # (F*S,) int people who entered each flight
    "exit_count",    # (E,) int people out through each exit
    "refuge_count",  # (F,) int people who reached each refuge floor
    "q_formed_t",    # (F*S + E,) first time the queue reached queue_event_n (NaN: never)
    "flight_fac",    # (F*S,) smoke factor of each flight's speed and flow (1: clear; set between blocks)
])


@njit(cache=True, inline="always")
def _split(capacity, floor_waiting, stair_waiting, floor_share, carry):
    """(from floor, from stair, carry): agents.stairs.merge_split, in kernel form."""
    if floor_waiting + stair_waiting <= capacity:
        return floor_waiting, stair_waiting, carry
    x = floor_share * capacity + carry
    want = int(np.floor(x))
    carry = x - want
    take_floor = min(floor_waiting, want)
    take_stair = min(stair_waiting, capacity - take_floor)
    take_floor = min(floor_waiting, capacity - take_stair)
    return take_floor, take_stair, carry


@njit(cache=True, inline="always")
def _ready(ag, st, fl, length):
    """People waiting at the bottom of flight ``fl`` (a prefix of its queue)."""
    n = 0
    i = st.fhead[fl]
    while i < st.ftail[fl] and ag.pos[st.fbuf[st.foff[fl] + i]] >= length - 1e-9:
        n += 1
        i += 1
    return n


@njit(cache=True, inline="always")
def _bucket(tok, c, dt):
    return min(tok + c * dt, c * dt + 1.0)


@njit(cache=True, inline="always")
def _arrivals(t, net, ag, st):
    """Step 1: people whose walk is over join their door queue, in arrival order."""
    F, S = net.n_floors, net.n_stairs
    n = ag.floor.shape[0]
    while st.ptr[0] < n and ag.t_arrive[ag.order[st.ptr[0]]] <= t:
        a = ag.order[st.ptr[0]]
        st.ptr[0] += 1
        if ag.where[a] != WAITING:
            continue
        q = F * S + ag.exit[a] if ag.floor[a] == 0 else ag.floor[a] * S + ag.stair[a]
        st.qbuf[st.qoff[q] + st.qtail[q]] = a
        st.qtail[q] += 1
        ag.where[a] = QUEUED
        if st.qtail[q] - st.qhead[q] >= net.queue_event_n and np.isnan(st.q_formed_t[q]):
            st.q_formed_t[q] = t


@njit(cache=True, inline="always")
def _move(dt, net, ag, st):
    """Step 2: everyone on a flight moves down at the flight's SFPE speed, in entry order, no overtaking."""
    S = net.n_stairs
    for s in range(S):
        for f in range(1, net.n_floors):
            fl = f * S + s
            m = st.ftail[fl] - st.fhead[fl]
            if m == 0:
                continue
            length = net.flight_len[f, s]
            d = min(m / (length * net.flight_we[s]), D_MAX_FLOW)
            v = net.flight_k[s] * (1.0 - A_SPEED * max(d, D_FREE)) * st.flight_fac[fl]
            crowd = min(1.0, max(0.0, (d - D_FREE) / (D_MAX_FLOW - D_FREE)))
            ahead = length
            for i in range(st.fhead[fl], st.ftail[fl]):
                a = st.fbuf[st.foff[fl] + i]
                g = ag.fac[a] + (1.0 - ag.fac[a]) * crowd
                p = min(ag.pos[a] + v * g * dt, ahead)
                ag.pos[a] = p
                ahead = p


@njit(cache=True, inline="always")
def _leave(a, t, e, st, ag):
    ag.where[a] = OUT
    ag.t_safe[a] = t
    st.exit_count[e] += 1
    st.ptr[1] += 1


@njit(cache=True, inline="always")
def _exits(t, dt, net, ag, st):
    """Step 3: each exit door passes the ground floor's queue and the stairs discharging there."""
    F, S = net.n_floors, net.n_stairs
    for e in range(net.n_exits):
        st.tok_exit[e] = _bucket(st.tok_exit[e], net.exit_c[e], dt)
        budget = int(np.floor(st.tok_exit[e]))
        q = F * S + e
        floor_wait = st.qtail[q] - st.qhead[q]
        stair_wait = 0
        if F > 1:
            for s in range(S):
                if net.stair_exit[s] == e:
                    stair_wait += _ready(ag, st, 1 * S + s, net.flight_len[1, s])
        k_floor, k_stair, st.carry[q] = _split(budget, floor_wait, stair_wait, net.floor_share, st.carry[q])
        for _ in range(k_floor):
            a = st.qbuf[st.qoff[q] + st.qhead[q]]
            st.qhead[q] += 1
            ag.t_leave[a] = t
            st.door_count[q] += 1
            _leave(a, t, e, st, ag)
        s0 = int(st.clock[0] / dt) % S  # the stairs take turns, starting one later each step
        left = k_stair
        while left > 0:
            moved = False
            for j in range(S):
                s = (s0 + j) % S
                if left == 0 or net.stair_exit[s] != e:
                    continue
                fl = 1 * S + s
                if st.fhead[fl] < st.ftail[fl]:
                    a = st.fbuf[st.foff[fl] + st.fhead[fl]]
                    if ag.pos[a] >= net.flight_len[1, s] - 1e-9:
                        st.fhead[fl] += 1
                        _leave(a, t, e, st, ag)
                        left -= 1
                        moved = True
            if not moved:
                break
        st.tok_exit[e] -= k_floor + k_stair - left


@njit(cache=True, inline="always")
def _refuge_landing(t, f, s, net, ag, st):
    """A refuge floor's landing (refuge_stop): the people from above leave the stair into the floor."""
    S = net.n_stairs
    q = f * S + s
    above = (f + 1) * S + s
    from_above = _ready(ag, st, above, net.flight_len[f + 1, s]) if f + 1 < net.n_floors else 0
    k = min(from_above, int(np.floor(st.tok_door[q])))
    for _ in range(k):
        a = st.fbuf[st.foff[above] + st.fhead[above]]
        st.fhead[above] += 1
        ag.where[a] = REFUGE
        ag.t_safe[a] = t
        st.refuge_count[f] += 1
        st.ptr[1] += 1
    st.tok_door[q] -= k


@njit(cache=True, inline="always")
def _landing(t, dt, f, s, net, ag, st):
    """The landing of floor f on stair s: door queue and stream from above merge onto the flight below."""
    S = net.n_stairs
    q = f * S + s
    fl = f * S + s
    above = (f + 1) * S + s
    from_above = _ready(ag, st, above, net.flight_len[f + 1, s]) if f + 1 < net.n_floors else 0
    st.tok_flight[fl] = _bucket(st.tok_flight[fl], net.flight_c[s] * st.flight_fac[fl], dt)
    space = max(1, net.flight_hold[f, s]) - (st.ftail[fl] - st.fhead[fl])
    budget = max(0, min(int(np.floor(st.tok_flight[fl])), space))
    door_wait = min(st.qtail[q] - st.qhead[q], int(np.floor(st.tok_door[q])))
    k_floor, k_stair, st.carry[q] = _split(budget, door_wait, from_above, net.floor_share, st.carry[q])
    for _ in range(k_stair):
        a = st.fbuf[st.foff[above] + st.fhead[above]]
        st.fhead[above] += 1
        st.fbuf[st.foff[fl] + st.ftail[fl]] = a
        st.ftail[fl] += 1
        ag.pos[a] = 0.0
    for _ in range(k_floor):
        a = st.qbuf[st.qoff[q] + st.qhead[q]]
        st.qhead[q] += 1
        st.fbuf[st.foff[fl] + st.ftail[fl]] = a
        st.ftail[fl] += 1
        ag.pos[a] = 0.0
        ag.where[a] = ON_STAIR
        ag.t_leave[a] = t
    st.tok_flight[fl] -= k_floor + k_stair
    st.tok_door[q] -= k_floor
    st.door_count[q] += k_floor
    st.flight_count[fl] += k_floor + k_stair


def _advance(n_steps, dt, net, ag, st):
    n = ag.floor.shape[0]
    for _step in range(n_steps):
        if st.ptr[1] >= n:
            break
        t = st.clock[0] + dt
        st.clock[0] = t
        _arrivals(t, net, ag, st)
        _move(dt, net, ag, st)
        _exits(t, dt, net, ag, st)
        for s in range(net.n_stairs):  # 4. landings from floor 1 up
            for f in range(1, net.n_floors):
                q = f * net.n_stairs + s
                st.tok_door[q] = _bucket(st.tok_door[q], net.door_c[s], dt)
                if net.refuge[f] and net.refuge_stop:
                    _refuge_landing(t, f, s, net, ag, st)
                else:
                    _landing(t, dt, f, s, net, ag, st)
    return st.ptr[1]


advance = njit(cache=True)(_advance)


def _interpreted():
    """``_advance`` and every helper as plain Python (numba's ``py_func`` code), for the interpreter."""
    import types

    from numba.core.registry import CPUDispatcher

    g = dict(globals())
    for name, obj in list(g.items()):
        if isinstance(obj, CPUDispatcher) and name != "advance":
            g[name] = types.FunctionType(obj.py_func.__code__, g, name)
    return types.FunctionType(_advance.__code__, g, "advance_reference")


_advance_py = _interpreted()


def advance_reference(n_steps, dt, net, ag, st):
    """The kernel run by the Python interpreter (tests compare it with :func:`advance`)."""
    return _advance_py(n_steps, dt, net, ag, st)


__all__ = ["ON_STAIR", "OUT", "QUEUED", "REFUGE", "WAITING", "Agents", "Net", "State", "advance",
           "advance_reference"]
