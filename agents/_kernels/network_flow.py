"""Queue model of groups of people on a directed network: the time-step kernel and its reference.

A link/queue model in the manner of MATSim's queue simulation (Gawron 1998;
Cetin, Burri & Nagel 2003), with groups of people as the moving units:

* a group entering edge ``e`` at time ``t_in`` may leave it at
  ``t_in + travel_s[e]`` (free travel time, slowed by the flood when the
  group entered); groups leave an edge in the order they entered it (FIFO:
  a group that may not leave blocks those behind it — the queue at the
  downstream node);
* **flow capacity**, at both ends of an edge: its outflow accumulator fills at ``flow_cap[e]`` people/s
  (capped at ``acc_max[e]``: the largest group plus one step's flow, so a
  busy edge carries its fractions over) and a head group of
  ``n`` people leaves only when the accumulator holds ``n``, which then
  drains by ``n``; a long queue therefore discharges at exactly
  ``flow_cap[e]`` people/s. An inflow accumulator (same capacity) meters
  groups onto the edge the same way (MATSim's inflow capacity), so a narrow
  street after a wide one holds the queue *before* the narrowing, as the
  SFPE hydraulic model's transitions (flow = min of the upstream flow and
  each element's capacity) and RiMEA test 12 expect, and not packed at jam
  density inside the narrow street;
* **storage capacity**: a group enters the next edge only while the people on
  it plus the group stay within ``storage[e]`` (spill-back); every storage
  is at least the largest group and every flow capacity positive (zero
  capacities deadlock MATSim);
* **stuck time** (MATSim's ``stuckTime``): a head group held by a full next
  edge for ``stuck_s`` seconds moves onto it anyway (counted in
  ``forced``), which breaks gridlock — queues that wait on each other in a
  cycle; MATSim's default is 10 s for cars, the model's default is longer
  (:mod:`agents.district_evac`) so that spill-back, not this rule, governs
  ordinary congestion;
* each step, edges are served in one fixed (seeded) order, each group moves
  at most one edge per step, and groups at their origin (``state`` 0) enter
  their first edge from their departure time on, storage permitting.

Group states: 0 waiting at the origin, 1 moving, 2 arrived, 3 stranded.
The route of group ``g`` is ``route[pos[g]:end[g]]`` (edge indices); its
current edge is ``route[pos[g]]`` while it moves. A group whose
``strand_at_end`` is set becomes stranded (not arrived) at the end of its route.

:func:`advance` (numba) and :func:`advance_reference` (plain Python with
deques, written separately) implement the same rules; tests compare them.
"""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

import numba
import numpy as np

WAITING, MOVING, ARRIVED, STRANDED = 0, 1, 2, 3
EPS = 1e-9


class Edges(NamedTuple):
    """Per-edge arrays (length E)."""

    travel_s: np.ndarray  # float64: travel time of a group entering now, s
    flow_cap: np.ndarray  # float64: people/s (> 0)
    storage: np.ndarray  # float64: people (>= largest group)
    acc_max: np.ndarray  # float64: cap of the flow accumulator, people
    occ: np.ndarray  # float64 (in/out): people on the edge
    acc: np.ndarray  # float64 (in/out): outflow accumulator, people
    acc_in: np.ndarray  # float64 (in/out): inflow accumulator, people
    head: np.ndarray  # int64 (in/out): first group in the edge's FIFO, -1 none
    tail: np.ndarray  # int64 (in/out): last group, -1 none
    max_queue: np.ndarray  # float64 (out): most people ready to leave but held, over the steps
    max_occ: np.ndarray  # float64 (out): most people on the edge
    people_out: np.ndarray  # float64 (out): people who left the edge (cumulative)
    forced: np.ndarray  # float64 (out): people moved onto the edge by the stuck-time rule (cumulative)


class Steps(NamedTuple):
    """The stretch of time one call advances."""

    t0: float  # start time, s
    dt: float  # step, s
    n: int  # number of steps
    step0: int  # global index of the first step (for ``last_step``)
    stuck_s: float  # stuck time, s (inf: never force)


class Groups(NamedTuple):
    """Per-group arrays (length G)."""

    size: np.ndarray  # float64 people
    state: np.ndarray  # int8 (in/out)
    depart_s: np.ndarray  # float64: earliest time the group may enter its first edge
    pos: np.ndarray  # int64 (in/out): index into route of the current (or first) edge
    end: np.ndarray  # int64: route end (exclusive)
    strand_at_end: np.ndarray  # int8: 1 = stranded, not arrived, at the end of the route
    exit_s: np.ndarray  # float64 (in/out): when the group may leave its current edge
    enter_s: np.ndarray  # float64 (in/out): when it entered its current edge
    next_in_q: np.ndarray  # int64 (in/out): next group in the same edge's FIFO, -1 none
    done_s: np.ndarray  # float64 (in/out): arrival or stranding time, NaN before
    last_step: np.ndarray  # int64 (in/out): last step in which the group moved


@numba.njit(cache=True)
def _push(e, g, edges, groups, t_in, step):
    if edges.tail[e] >= 0:
        groups.next_in_q[edges.tail[e]] = g
    else:
        edges.head[e] = g
    edges.tail[e] = g
    groups.next_in_q[g] = -1
    edges.occ[e] += groups.size[g]
    edges.acc_in[e] -= groups.size[g]
    groups.enter_s[g] = t_in
    groups.exit_s[g] = t_in + edges.travel_s[e]
    groups.last_step[g] = step
    if edges.occ[e] > edges.max_occ[e]:
        edges.max_occ[e] = edges.occ[e]


@numba.njit(cache=True)
def _pop(e, edges, groups):
    g = edges.head[e]
    edges.head[e] = groups.next_in_q[g]
    if edges.head[e] < 0:
        edges.tail[e] = -1
    groups.next_in_q[g] = -1
    edges.occ[e] -= groups.size[g]
    if edges.occ[e] < EPS:
        edges.occ[e] = 0.0
    return g


@numba.njit(cache=True)
def advance(edges, groups, route, order, wait_order, steps, counts):
    """Advance the network ``steps.n`` steps of ``steps.dt`` seconds from ``steps.t0`` (in place).

    Parameters
    ----------
    edges : Edges
    groups : Groups
    route : ndarray of int64
        Concatenated routes (edge indices).
    order : ndarray of int64
        The order in which edges are served each step (a permutation).
    wait_order : ndarray of int64
        All groups, sorted by departure time (the order they are let onto the network).
    steps : Steps
        Step k moves groups at ``t0 + (k + 1)·dt``.
    counts : ndarray (steps.n, 4) float64 (out)
        People waiting, moving, arrived, stranded at the end of each step.

    Returns
    -------
    int
        Number of groups that moved onto the network, off it or along it.
    """
    t0, dt, n_steps, step0, stuck_s = steps.t0, steps.dt, steps.n, steps.step0, steps.stuck_s
    moves = 0
    n_groups = groups.size.shape[0]
    tally = np.zeros(4)  # people per state, kept up to date on every transition
    for g in range(n_groups):
        tally[groups.state[g]] += groups.size[g]
    first = 0  # wait_order[:first] have all left their origin
    for k in range(n_steps):
        step = step0 + k
        t = t0 + k * dt
        tn = t + dt
        # flow accumulators fill at the flow capacity
        for e in range(edges.flow_cap.shape[0]):
            a = edges.acc[e] + edges.flow_cap[e] * dt
            edges.acc[e] = a if a < edges.acc_max[e] else edges.acc_max[e]
            a = edges.acc_in[e] + edges.flow_cap[e] * dt
            edges.acc_in[e] = a if a < edges.acc_max[e] else edges.acc_max[e]
        # groups leaving their origin (in departure order), storage permitting
        while first < wait_order.shape[0] and groups.state[wait_order[first]] != WAITING:
            first += 1
        for i in range(first, wait_order.shape[0]):
            g = wait_order[i]
            if groups.depart_s[g] > tn - EPS:
                break  # wait_order is sorted by departure time
            if groups.state[g] != WAITING:
                continue
            e = route[groups.pos[g]]
            if edges.occ[e] + groups.size[g] > edges.storage[e] + EPS or edges.acc_in[e] < groups.size[g] - EPS:
                continue
            groups.state[g] = MOVING
            tally[WAITING] -= groups.size[g]
            tally[MOVING] += groups.size[g]
            t_in = groups.depart_s[g] if groups.depart_s[g] > t else t
            _push(e, g, edges, groups, t_in, step - 1)
            moves += 1
        # node transitions: heads of the edges' queues
        for j in range(order.shape[0]):
            e = order[j]
            while edges.head[e] >= 0:
                g = edges.head[e]
                if groups.exit_s[g] > tn + EPS or groups.last_step[g] == step:
                    break
                if edges.acc[e] < groups.size[g] - EPS:
                    break
                if groups.pos[g] + 1 < groups.end[g]:
                    nxt = route[groups.pos[g] + 1]
                    if edges.acc_in[nxt] < groups.size[g] - EPS:
                        break
                    if edges.occ[nxt] + groups.size[g] > edges.storage[nxt] + EPS:
                        if tn - groups.exit_s[g] < stuck_s - EPS:
                            break
                        edges.forced[nxt] += groups.size[g]
                    _pop(e, edges, groups)
                    edges.acc[e] -= groups.size[g]
                    edges.people_out[e] += groups.size[g]
                    groups.pos[g] += 1
                    _push(nxt, g, edges, groups, tn, step)
                else:
                    _pop(e, edges, groups)
                    edges.acc[e] -= groups.size[g]
                    edges.people_out[e] += groups.size[g]
                    groups.state[g] = STRANDED if groups.strand_at_end[g] else ARRIVED
                    groups.done_s[g] = tn
                    groups.last_step[g] = step
                    tally[MOVING] -= groups.size[g]
                    tally[groups.state[g]] += groups.size[g]
                moves += 1
        # queues (people ready to leave but held) and the tally
        for e in range(edges.flow_cap.shape[0]):
            q = 0.0
            g = edges.head[e]
            while g >= 0 and groups.exit_s[g] <= tn + EPS:
                q += groups.size[g]
                g = groups.next_in_q[g]
            if q > edges.max_queue[e]:
                edges.max_queue[e] = q
        for c in range(4):
            counts[k, c] = tally[c]
    return moves


def advance_reference(edges: Edges, groups: Groups, route, order, wait_order, steps: Steps, counts) -> int:
    """The rules of :func:`advance` written plainly (deques for the FIFOs); same arguments and effect.

    Kept for the tests: an independent reading of the module's rules to
    compare the numba kernel against. Slow (pure Python).
    """
    n_edges = len(edges.flow_cap)
    queues = [deque() for _ in range(n_edges)]
    for e in range(n_edges):  # rebuild the FIFOs from the linked lists
        g = int(edges.head[e])
        while g >= 0:
            queues[e].append(g)
            g = int(groups.next_in_q[g])
    t0, dt, n_steps, step0, stuck_s = steps
    moves = 0

    def enter(e: int, g: int, t_in: float, step: int) -> None:
        queues[e].append(g)
        edges.occ[e] += groups.size[g]
        edges.acc_in[e] -= groups.size[g]
        groups.enter_s[g] = t_in
        groups.exit_s[g] = t_in + edges.travel_s[e]
        groups.last_step[g] = step
        edges.max_occ[e] = max(edges.max_occ[e], edges.occ[e])

    def leave(e: int) -> int:
        g = queues[e].popleft()
        occ = edges.occ[e] - groups.size[g]
        edges.occ[e] = occ if occ >= EPS else 0.0
        edges.acc[e] -= groups.size[g]
        edges.people_out[e] += groups.size[g]
        return g

    for k in range(n_steps):
        step, t = step0 + k, t0 + k * dt
        tn = t + dt
        np.minimum(edges.acc + edges.flow_cap * dt, edges.acc_max, out=edges.acc)
        np.minimum(edges.acc_in + edges.flow_cap * dt, edges.acc_max, out=edges.acc_in)
        for g in wait_order:
            if groups.state[g] != WAITING or groups.depart_s[g] > tn - EPS:
                continue
            e = route[groups.pos[g]]
            if edges.occ[e] + groups.size[g] > edges.storage[e] + EPS or edges.acc_in[e] < groups.size[g] - EPS:
                continue
            groups.state[g] = MOVING
            enter(e, g, max(groups.depart_s[g], t), step - 1)
            moves += 1
        for e in order:
            while queues[e]:
                g = queues[e][0]
                if groups.exit_s[g] > tn + EPS or groups.last_step[g] == step:
                    break
                if edges.acc[e] < groups.size[g] - EPS:
                    break
                last = groups.pos[g] + 1 >= groups.end[g]
                if not last:
                    nxt = route[groups.pos[g] + 1]
                    if edges.acc_in[nxt] < groups.size[g] - EPS:
                        break
                    if edges.occ[nxt] + groups.size[g] > edges.storage[nxt] + EPS:
                        if tn - groups.exit_s[g] < stuck_s - EPS:
                            break
                        edges.forced[nxt] += groups.size[g]
                leave(e)
                if last:
                    groups.state[g] = STRANDED if groups.strand_at_end[g] else ARRIVED
                    groups.done_s[g] = tn
                    groups.last_step[g] = step
                else:
                    groups.pos[g] += 1
                    enter(nxt, g, tn, step)
                moves += 1
        for e in range(n_edges):
            q = 0.0  # the queue: the FIFO's prefix of groups ready to leave
            for g in queues[e]:
                if groups.exit_s[g] > tn + EPS:
                    break
                q += groups.size[g]
            edges.max_queue[e] = max(edges.max_queue[e], q)
        for s in range(4):
            counts[k, s] = float(groups.size[groups.state == s].sum())
    # write the FIFOs back as linked lists (-1 for groups in no FIFO)
    groups.next_in_q[:] = -1
    for e in range(n_edges):
        edges.head[e] = queues[e][0] if queues[e] else -1
        edges.tail[e] = queues[e][-1] if queues[e] else -1
        q = list(queues[e])
        for a, b in zip(q, q[1:] + [-1], strict=False):
            groups.next_in_q[a] = b
    return moves


__all__ = ["ARRIVED", "MOVING", "STRANDED", "WAITING", "Edges", "Groups", "Steps", "advance", "advance_reference"]
