"""Benchmark of the pedestrian crowd model (agents.crowd / agents._kernels.pedestrians).

Case (a fresh room for every row): a square room at 1.5 P/m2 (side sqrt(n / 1.5) + 2 m), a 4 m exit in
the middle of each side, agents on a jittered lattice, free speeds from
Weidmann's N(1.34, 0.26) m/s, floor field at 0.25 m, dt 0.05 s, everyone
moving from the first step. Sizes 1 k, 10 k, 100 k agents.

Throughput = agent-updates per second: the sum over the timed steps of the
agents inside at each step, over the wall time of those steps. A step is
``CrowdModel.step()`` as a user runs it: floor-field directions, cell list
(counting sort), the collision-free speed kernel with neighbour and wall
interaction, exits and bookkeeping (no trajectory sampling). The model
normally runs crowds under 2,000 agents on one thread; here that switch is
off so that the 2-thread rows really use 2 threads.

References in the same run, on the same room and state:

* numpy: :func:`agents._kernels.pedestrians.step_numpy` (all pairs,
  vectorised in blocks; the tests' oracle) at 1 k (and 10 k without
  ``--quick``), one kernel step (the model's own overhead not included);
* mesa: a plain mesa 3 model of the same step, one ``mesa.Agent`` per
  pedestrian with a Python ``step()`` that asks mesa's ``ContinuousSpace``
  for its neighbours within the same radius and computes the same formulas
  (then ``advance()``), at 1 k only; its positions after one step are
  compared with the kernel's (max difference reported).

Memory: a subprocess first steps a 100-agent model (so every kernel is
loaded, or compiled when numba's cache is cold), then builds the 100 k model
(with its mesa views) and runs 10 steps; reported are the process's peak RSS
(all of it: interpreter, libraries, numba and any compilation; tracemalloc
off), its RSS before and with the model, and, from a second run, the
tracemalloc peak (Python and numpy allocations only).

Run ``python bench/bench_crowd.py --help``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as C  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import agents.crowd as crowd  # noqa: E402
from agents._kernels import pedestrians as K  # noqa: E402

DENSITY = 1.5  # P/m2
DT = 0.05
TARGET_UPDATES = 3.0e6  # agent-updates/s on 2 threads (issue 11)
TARGET_STEPS_100K = 10.0  # steps/s at 100 k agents
TARGET_MEM_MIB = 1024.0


def square_room(n: int, seed: int = 0):
    """The benchmark room and n start positions (jittered lattice), metres."""
    from shapely.geometry import box

    from agents.geometry import Geometry

    side = math.sqrt(n / DENSITY) + 2.0
    m = int(math.ceil(math.sqrt(n)))
    sp = (side - 2.0) / m
    g = np.arange(m) * sp + 1.0 + sp / 2
    x, y = np.meshgrid(g, g)
    pos = np.column_stack([x.ravel(), y.ravel()])[:n]
    pos += np.random.default_rng(seed).uniform(-0.1 * sp, 0.1 * sp, pos.shape)
    c = side / 2
    exits = {
        "w": ((0, c - 2), (0, c + 2)), "e": ((side, c - 2), (side, c + 2)),
        "s": ((c - 2, 0), (c + 2, 0)), "n": ((c - 2, side), (c + 2, side)),
    }  # fmt: skip
    return Geometry(box(0, 0, side, side), exits), pos


def build(n: int, views: bool = True):
    geom, pos = square_room(n)
    return crowd.CrowdModel(
        geom, crowd.AgentsSpec(positions=pos), seed=1, dt=DT, cell_m=0.25,
        record_every=10**9, agent_views=views,
    )  # fmt: skip


def time_model(model, steps: int, repeat: int) -> dict[str, Any]:
    """Median/min wall time per step and agent-updates/s over ``repeat`` runs of ``steps`` steps."""
    for _ in range(2):
        model.step()  # warm-up: compilation / cache load, first touch
    per_step, rates = [], []
    stall0 = C.cpu_stall_us()
    t_all = time.perf_counter()
    cpu_rates = []
    for _ in range(repeat):
        updates = 0
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(steps):
            updates += model.n_inside
            model.step()
        wall = time.perf_counter() - t0
        cpu = time.process_time() - c0
        per_step.append(wall / steps)
        rates.append(updates / wall)
        cpu_rates.append(updates / cpu)
    contention = C.contention_pct(stall0, time.perf_counter() - t_all)
    return {
        "s_per_step_median": float(np.median(per_step)), "s_per_step_min": float(np.min(per_step)),
        "updates_per_s_median": float(np.median(rates)), "updates_per_s_max": float(np.max(rates)),
        "updates_per_cpu_s_median": float(np.median(cpu_rates)),
        "agents_inside_end": model.n_inside, "steps_timed": steps * repeat,
        "cpu_contention_pct": contention,
    }  # fmt: skip


def numpy_step_time(model, repeat: int) -> dict[str, Any]:
    """Wall time of one numpy-reference step on the model's current state."""
    e0 = np.zeros_like(model.position)
    model.field.directions(model.position, model.active, e0)
    g = model.geometry
    walls = g.wall_segments()

    def call():
        return K.step_numpy(model.position, e0, model.v0, model.active, model.prm, walls,
                            g.exit_segments, g.exit_open, DT)  # fmt: skip

    t = C.time_call(call, repeat=repeat, warmup=0, max_seconds=60)
    n = model.n_inside
    return {"s_per_step_median": t.median, "s_per_step_min": t.min,
            "updates_per_s_median": n / t.median, "updates_per_s_max": n / t.min}  # fmt: skip


# --------------------------------------------------------------------------
# The same model, written the plain mesa way
# --------------------------------------------------------------------------
def mesa_model(model):
    """A plain mesa 3 model holding the same agents, walls, exits and floor field as ``model``."""
    import mesa
    from mesa.space import ContinuousSpace

    closest, ray_hit, crosses = K._closest.py_func, K._ray_hit.py_func, K._crosses.py_func
    prm = model.prm
    walls = model.geometry.wall_segments()
    exits = model.geometry.exit_segments
    xmin, ymin, xmax, ymax = model.geometry.bounds

    f = model.field

    def desired(px, py):
        """-grad(distance), bilinear, normalised: the kernel's field_directions in Python."""
        fx, fy = (px - f.x0) / f.h - 0.5, (py - f.y0) / f.h - 0.5
        ix = min(max(int(math.floor(fx)), 0), f.nx - 2)
        iy = min(max(int(math.floor(fy)), 0), f.ny - 2)
        tx, ty = min(max(fx - ix, 0.0), 1.0), min(max(fy - iy, 0.0), 1.0)
        w = ((1 - tx) * (1 - ty), tx * (1 - ty), (1 - tx) * ty, tx * ty)
        cells = ((iy, ix), (iy, ix + 1), (iy + 1, ix), (iy + 1, ix + 1))
        ux = sum(wk * f.grad_x[c] for wk, c in zip(w, cells, strict=True))
        uy = sum(wk * f.grad_y[c] for wk, c in zip(w, cells, strict=True))
        nrm = math.hypot(ux, uy)
        return (-ux / nrm, -uy / nrm) if nrm > 0 else (0.0, 0.0)

    class Walker(mesa.Agent):
        def __init__(self, m, xy, v0):
            super().__init__(m)
            self.v0 = float(v0)
            self.new = None
            self.gone = False
            m.space.place_agent(self, (float(xy[0]), float(xy[1])))

        def step(self):
            px, py = self.pos
            ex, ey = desired(px, py)
            ell = prm.length
            reach = min(prm.cutoff, max(prm.rep_cutoff, ell + prm.time_gap * self.v0 + 0.1))
            near = []
            for other in self.model.space.get_neighbors(self.pos, reach, include_center=False):
                dx, dy = px - other.pos[0], py - other.pos[1]
                d2 = dx * dx + dy * dy
                if d2 >= reach * reach or d2 == 0.0:
                    continue
                near.append((dx, dy, d2))
                if d2 < prm.rep_cutoff**2:
                    d = math.sqrt(d2)
                    r = prm.a * math.exp((ell - d) / prm.d) / d
                    ex += r * dx
                    ey += r * dy
            for w in walls:
                qx, qy = closest(px, py, w)
                dx, dy = px - qx, py - qy
                d2 = dx * dx + dy * dy
                if 0.0 < d2 < prm.cutoff**2:
                    d = math.sqrt(d2)
                    r = prm.a_wall * math.exp((0.5 * ell - d) / prm.d_wall) / d
                    ex += r * dx
                    ey += r * dy
            norm = math.hypot(ex, ey)
            if norm == 0.0:
                self.new = (px, py)
                return
            ex, ey = ex / norm, ey / norm
            s = math.inf
            for dx, dy, d2 in near:
                if -(ex * dx + ey * dy) > 0.0 and abs(ey * dx - ex * dy) <= ell:
                    s = min(s, math.sqrt(d2))
            for w in walls:
                s = min(s, ray_hit(px, py, ex, ey, w) + 0.5 * ell)
            v = min(self.v0, max(0.0, (s - ell) / prm.time_gap))
            mx, my = v * ex * DT, v * ey * DT
            for w in walls:
                qx, qy = closest(px + mx, py + my, w)
                if (px + mx - qx) ** 2 + (py + my - qy) ** 2 >= prm.clearance**2:
                    continue
                cx, cy = closest(px, py, w)
                nn = math.hypot(px - cx, py - cy)
                if nn > 0.0:
                    nx_, ny_ = (px - cx) / nn, (py - cy) / nn
                    along = mx * nx_ + my * ny_
                    if along < 0.0:
                        mx, my = mx - along * nx_, my - along * ny_
            qx1, qy1 = px + mx, py + my
            for w in walls:
                ax, ay = closest(qx1, qy1, w)
                bx, by = closest(px, py, w)
                dq2 = (qx1 - ax) ** 2 + (qy1 - ay) ** 2
                if crosses(px, py, qx1, qy1, w) or (
                    dq2 < prm.clearance**2 and dq2 < (px - bx) ** 2 + (py - by) ** 2
                ):
                    qx1, qy1 = px, py
                    break
            self.gone = any(crosses(px, py, qx1, qy1, x) for x in exits)
            self.new = (qx1, qy1)

        def advance(self):
            if self.gone:
                self.model.space.remove_agent(self)
                self.remove()
            else:
                self.model.space.move_agent(self, self.new)

    class PlainMesaCrowd(mesa.Model):
        def __init__(self):
            super().__init__(seed=1)
            self.space = ContinuousSpace(xmax + 1, ymax + 1, torus=False, x_min=xmin - 1,
                                         y_min=ymin - 1)  # fmt: skip
            inside = np.flatnonzero(model.active)
            self.walkers = [Walker(self, model.position[i], model.v0[i]) for i in inside]

        def step(self):
            self.agents.do("step")
            self.agents.do("advance")

    return PlainMesaCrowd()


def mesa_case(n: int, steps: int) -> dict[str, Any]:
    model = build(n)
    for _ in range(2):
        model.step()
    ref = mesa_model(model)
    # one step of each from the same state: do they agree?
    before = model.position.copy()
    ref.step()
    model.step()
    got = np.array([w.new for w in ref.walkers])
    diff = float(np.abs(got - model.position[: len(got)]).max()) if len(got) == n else None
    del before
    t0 = time.perf_counter()
    updates = 0
    for _ in range(steps):
        updates += len(ref.agents)
        ref.step()
    wall = time.perf_counter() - t0
    return {"s_per_step_median": wall / steps, "updates_per_s_median": updates / wall,
            "steps_timed": steps, "max_position_difference_vs_kernel_m": diff}  # fmt: skip


# --------------------------------------------------------------------------
# Memory (subprocess)
# --------------------------------------------------------------------------
def _rss_mib(key: str = "VmRSS") -> float:
    """This process's resident memory (``VmRSS``) or its peak (``VmHWM``), MiB.

    Not ``getrusage``: Linux keeps ``ru_maxrss`` across exec, so a child
    started by a big parent would report the parent's peak.
    """
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return math.nan


def memory_child(n: int, trace: bool) -> None:
    warm = build(100)  # loads (or compiles) every kernel first
    for _ in range(3):
        warm.step()
    del warm
    base = _rss_mib()
    if trace:
        tracemalloc.start()
    model = build(n)
    for _ in range(10):
        model.step()
    out = {"agents": n, "peak_rss_mib": _rss_mib("VmHWM"),
           "rss_before_model_mib": base, "rss_with_model_mib": _rss_mib()}  # fmt: skip
    if trace:
        out["tracemalloc_peak_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
    print(json.dumps(out))


def memory_case(n: int) -> dict[str, Any]:
    """Peak RSS of a clean process (tracemalloc off: its own book-keeping would count), then the
    tracemalloc peak of Python and numpy allocations in a second process."""
    res = {}
    for trace in (False, True):
        cmd = [sys.executable, __file__, "--memory-child", str(n)] + (["--trace"] if trace else [])
        out = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ),
                             timeout=900, check=True)  # fmt: skip
        got = json.loads(out.stdout.strip().splitlines()[-1])
        if trace:
            res["tracemalloc_peak_mib"] = got["tracemalloc_peak_mib"]
        else:
            res.update(got)
    return res


# --------------------------------------------------------------------------
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)  # fmt: skip
    ap.add_argument("--quick", action="store_true", help="1 k and 10 k only, fewer steps, no memory run")
    ap.add_argument("--sizes", type=int, nargs="+", default=None, help="agent counts (default 1000 10000 100000)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="numba thread counts")
    ap.add_argument("--out", default=None, help="results folder (default bench/results/)")
    ap.add_argument("--no-mesa", action="store_true", help="skip the plain mesa reference")
    ap.add_argument("--memory-child", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.memory_child:
        memory_child(args.memory_child, args.trace)
        return 0
    sizes = args.sizes or ([1000, 10000] if args.quick else [1000, 10000, 100000])
    warn = C.busy_warning()
    crowd.PARALLEL_MIN_AGENTS = 0  # measure 2 threads even on 1 k agents
    rows, results = [], []
    for n in sizes:
        steps = 20 if args.quick else (50 if n <= 10000 else 20)
        repeat = 3 if args.quick else 5
        for th in C.thread_counts(args.threads):
            C.set_threads(th)
            r = time_model(build(n), steps, repeat)  # a fresh room for every row
            r.update(impl="numba", agents=n, threads=th)
            results.append(r)
            rows.append([f"{n:,}", "numba kernel (model.step)", th, r["s_per_step_median"] * 1e3,
                         r["updates_per_s_median"] / 1e6, r["updates_per_s_max"] / 1e6,
                         1.0 / r["s_per_step_median"], r["updates_per_cpu_s_median"] / 1e6,
                         r["cpu_contention_pct"]])  # fmt: skip
        if n <= (1000 if args.quick else 10000):
            model = build(n)
            model.step()
            r = numpy_step_time(model, repeat=3 if n <= 1000 else 1)
            r.update(impl="numpy reference", agents=n, threads=1)
            results.append(r)
            rows.append([f"{n:,}", "numpy reference (kernel step)", 1, r["s_per_step_median"] * 1e3,
                         r["updates_per_s_median"] / 1e6, r["updates_per_s_max"] / 1e6,
                         1.0 / r["s_per_step_median"], None, None])  # fmt: skip
        if n == 1000 and not args.no_mesa:
            r = mesa_case(n, steps=5 if args.quick else 10)
            r.update(impl="plain mesa", agents=n, threads=1)
            results.append(r)
            rows.append([f"{n:,}", "plain mesa (Agent.step, ContinuousSpace)", 1,
                         r["s_per_step_median"] * 1e3, r["updates_per_s_median"] / 1e6, None,
                         1.0 / r["s_per_step_median"], None, None])  # fmt: skip
    memory = None
    if not args.quick and 100000 in sizes:
        memory = memory_case(100000)
    notes = [
        f"room at {DENSITY} P/m2, 4 exits, dt {DT} s, Weidmann free speeds; updates = agents inside x steps",
        "numpy and mesa rows: same formulas on the same state; numba rows include the floor-field "
        "look-up, cell list and bookkeeping",
    ]
    if warn:
        notes.append(warn)
    best = {}
    for r in results:
        if r["impl"] == "numba":
            best[(r["agents"], r["threads"])] = r
    largest = max(sizes)
    two = best.get((largest, 2)) or best.get((largest, max(t for (a, t) in best if a == largest)))
    checks = {
        "updates_per_s_2_threads_largest": two["updates_per_s_median"] if two else None,
        "target_updates_per_s": TARGET_UPDATES,
    }
    if (100000, 2) in best:
        checks["steps_per_s_100k_2_threads"] = 1.0 / best[(100000, 2)]["s_per_step_median"]
        checks["target_steps_per_s_100k"] = TARGET_STEPS_100K
    if memory:
        checks.update(memory_100k=memory, target_memory_mib=TARGET_MEM_MIB)
        notes.append(f"100 k agents: process peak RSS {memory['peak_rss_mib']:.0f} MiB (target < 1024 "
                     f"MiB; includes numba compilation when its cache is cold), RSS "
                     f"{memory['rss_with_model_mib']:.0f} MiB with the model vs "
                     f"{memory['rss_before_model_mib']:.0f} MiB before it; tracemalloc peak "
                     f"{memory['tracemalloc_peak_mib']:.0f} MiB")  # fmt: skip
    notes.append("M upd per CPU-s = updates over the process's CPU time (all threads): what the "
                 "kernel does per core-second, less sensitive to other processes than wall time")
    notes.append("cpu contention % = share of the timed wall time during which some task waited "
                 "for a CPU (Linux PSI); a shared 2-core machine understates 2-thread rows")  # fmt: skip
    C.print_table("Crowd model: agent-updates per second",
                  ["agents", "implementation", "threads", "ms/step", "M upd/s (median)",
                   "M upd/s (best)", "steps/s", "M upd per CPU-s", "cpu contention %"],
                  rows, notes)  # fmt: skip
    payload = {"machine": C.machine_info(), "args": vars(args), "results": results, "checks": checks}
    path = C.write_results("crowd-quick" if args.quick else "crowd", payload, args.out)
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
