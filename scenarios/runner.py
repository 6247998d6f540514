"""The coupled runner: enabled couplings stepped on one :class:`twin.clock.SimClock`.

Order within a step
-------------------
At every instant ``t`` where several couplings are due, they run in the
run's **schedule**, fixed before the run starts (:func:`schedule`):

1. by phase: ``forcing`` (rain, tide, injects) < ``physics`` (flood, slope)
   < ``consequences`` (road closures, incidents, people to move) <
   ``response`` (routes, dispatch, evacuation);
2. within a phase, by data dependency: a coupling that writes a name runs
   before every coupling of the same phase that reads it (a topological
   order; ties by name). Optional reads count as reads here: a writer
   enabled in the same phase runs first; an absent writer is fine. A cycle
   within a phase is refused, naming it.
   A coupling that reads a name written in a *later* phase sees what that
   writer left at its last earlier step (a lag, on purpose: feedback).

So a road that floods at ``t`` is closed (``roads``, consequences) before
any route is computed at ``t`` (``routes``, response). The couplings are
registered with :meth:`SimClock.every` in the schedule's order, which is the
order the clock runs periodic callbacks at one instant; the output frame of
an instant is recorded after every coupling of that instant (its callback is
registered last). Each coupling ``k`` is called at ``t = n * period_k``
(n = 1, 2, ...) up to the run's end with ``step(ctx, t, period_k)``; its
``setup`` runs at t = 0, in the schedule's order.

The run directory
-----------------
``manifest.json`` (written before the clock starts, again at the end:
config and its sha256 — of the canonical JSON: sorted
keys, no spaces —, seed, package versions, the schedule, sha256 of every
input file), ``fields.nc`` (every dynamic field of the state at each output
time, dims (time, y, x), plus the static masks), ``events.jsonl``
(:func:`twin.pipeline.write_run_events`) and ``summary.json``. The same
config and seed give the same ``fields.nc`` values and ``events.jsonl``
(events carry the simulated instant as their ``wall_time``).

A caller adds to the directory through :func:`run_coupled`'s
``manifest_extra`` (more manifest entries: a scenario's hash and file),
``extra_inputs`` (more files hashed into the manifest) and ``outputs`` (a
hook called after the fields, events and summary are made and before
``summary.json`` is written: tables, report, map — :mod:`scenarios.outputs`);
:func:`resume_coupled` keeps the manifest's extras and takes the same hook.

Checkpoints and resume
----------------------
With ``checkpoint_every_s``, after every coupling and the frame of an
instant ``k * checkpoint_every_s``, the twin state (fields, clock, events)
is snapshotted into the run's own store, ``store/``
(:meth:`twin.store.Store.snapshot`), and each coupling's own state (what the
twin state does not hold: the flood's discharges and maxima, the road
graph's closures; :attr:`~scenarios.coupling.Coupling.save`), its summary,
its random generator's state and the frames so far go beside it,
``checkpoints/<snapshot id>.npz`` and ``.json`` (the ``.json`` written last
marks a whole checkpoint). :func:`resume_coupled` rebuilds the run from
``manifest.json``, restores the last whole checkpoint
(:meth:`twin.store.Store.restore`, then each coupling's ``restore``) and
drives the clock on: a run that crashed after a checkpoint ends with the
``fields.nc`` and ``events.jsonl`` of a run that did not (tested).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from scenarios.coupling import Coupling, CouplingContext, check_couplings, get_coupling
from twin.errors import ValidationError

MANIFEST_NAME = "manifest.json"
FIELDS_NAME = "fields.nc"
SUMMARY_NAME = "summary.json"
STORE_DIR = "store"  # the run's own twin store: checkpoints' snapshots
CHECKPOINT_DIR = "checkpoints"  # the couplings' own state beside each snapshot
#: Static layers copied into ``fields.nc`` beside the frames.
STATIC_OUT = ("elevation", "land", "sea", "district")
VERSIONED = ("numpy", "numba", "xarray", "simpy", "shenzhen-twin")

Progress = Callable[[dict[str, Any]], None]
#: Writes a finished run's further outputs (tables, report, map): ``outputs(run, out_dir) -> {role: path}``.
Outputs = Callable[["CoupledRun", Path], dict[str, Path]]
#: Keys of ``manifest.json`` the runner writes; any other key came from ``manifest_extra``.
MANIFEST_KEYS = ("config", "config_sha256", "seed", "versions", "inputs", "schedule", "checkpoint_every_s")


# ----------------------------------------------------------------------------- config
@dataclass
class RunConfig:
    """A coupled run's plain config (what a scenario file becomes).

    Attributes
    ----------
    couplings : dict
        Enabled couplings by name -> their parameters (``period_s`` overrides the default step).
    duration_s : float
        Simulated length (s).
    start : str
        ISO-8601 instant of t = 0, with its time zone.
    city : str
        City manifest name.
    districts : list of str or None
        The area (None: the whole city, or the ``area`` below).
    area : dict or None
        An area of interest instead of districts: ``{"bbox": [lon_min, lat_min,
        lon_max, lat_max]}`` or ``{"polygon": "/abs/path.geojson"}``; the grid
        is cut to it plus ``buffer_m`` (:meth:`twin.domain.Domain.from_area`).
    resolution_m, buffer_m : float
        The working grid's cell size and the margin around the districts (m).
    seed : int
    output_every_s : float
        Interval of the frames in ``fields.nc`` (s).
    external : list of str
        Names read by couplings that come from outside the run (injects).
    """

    couplings: dict[str, dict[str, Any]]
    duration_s: float
    start: str = "2023-09-07T18:00:00+08:00"
    city: str = "shenzhen"
    districts: list[str] | None = None
    area: dict[str, Any] | None = None
    resolution_m: float = 250.0
    buffer_m: float = 500.0
    seed: int = 0
    output_every_s: float = 600.0
    external: list[str] = field(default_factory=list)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | RunConfig) -> RunConfig:
        """A checked config from a mapping; every problem listed in one ValidationError."""
        if isinstance(data, RunConfig):
            data = asdict(data)
        allowed = set(cls.__dataclass_fields__)
        problems = [f"{k}: unknown setting (allowed: {sorted(allowed)})" for k in data
                    if k not in allowed]
        for key in ("couplings", "duration_s"):
            if key not in data:
                problems.append(f"{key}: missing (required)")
        if problems:
            raise ValidationError("run config: " + "; ".join(problems))
        cfg = cls(**{k: data[k] for k in data})
        cfg.couplings = {str(k): dict(v or {}) for k, v in dict(cfg.couplings).items()} \
            if isinstance(cfg.couplings, Mapping) else cfg.couplings
        problems = cfg.problems()
        if problems:
            raise ValidationError("run config: " + "; ".join(problems))
        return cfg

    def problems(self) -> list[str]:
        out = []
        if not isinstance(self.couplings, dict) or not self.couplings:
            out.append(f"couplings={self.couplings!r}: give at least one coupling name -> parameters")
        for name in ("duration_s", "resolution_m", "output_every_s"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not (math.isfinite(v) and v > 0):
                out.append(f"{name}={v!r}: give a finite number > 0")
        if isinstance(self.buffer_m, bool) or not isinstance(self.buffer_m, int | float) \
                or not (math.isfinite(self.buffer_m) and self.buffer_m >= 0):
            out.append(f"buffer_m={self.buffer_m!r}: give a finite number >= 0")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            out.append(f"seed={self.seed!r}: give an integer >= 0")
        if self.districts is not None and (isinstance(self.districts, str)
                                           or not all(isinstance(d, str) for d in self.districts)):
            out.append(f"districts={self.districts!r}: give a list of district names or null")
        if self.area is not None:
            from twin.domain import area_problems

            out += area_problems(self.area)
            if self.districts is not None:
                out.append(f"area={self.area!r} and districts={self.districts!r}: give one of them")
        try:
            from twin.clock import as_utc

            as_utc(self.start, "start")
        except ValidationError as exc:  # ClockError is a ValueError, not a ValidationError
            out.append(str(exc))
        except ValueError as exc:
            out.append(f"start={self.start!r}: {exc}")
        return out

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def sha256(self) -> str:
        """sha256 of the canonical JSON of the config (sorted keys, no spaces)."""
        return config_sha256(self.to_dict())


def config_sha256(config: Mapping[str, Any]) -> str:
    """sha256 hex of ``json.dumps(config, sort_keys=True, separators=(",", ":"))``."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# ----------------------------------------------------------------------------- schedule
def schedule(enabled: Iterable[Coupling]) -> list[Coupling]:
    """The order of ``enabled`` within an instant (module docstring, "Order within a step").

    Raises
    ------
    ValidationError
        Naming a cycle of data dependencies within a phase.
    """
    enabled = sorted(enabled, key=lambda c: (c.phase_rank, c.name))
    out: list[Coupling] = []
    for rank in sorted({c.phase_rank for c in enabled}):
        out += _topological([c for c in enabled if c.phase_rank == rank])
    return out


def _topological(group: list[Coupling]) -> list[Coupling]:
    """Kahn's algorithm on writer -> reader edges within one phase; ties by name."""
    after: dict[str, set[str]] = {c.name: set() for c in group}
    for w in group:
        for r in group:
            if r is not w and set(w.writes) & set(r.all_reads):
                after[w.name].add(r.name)
    indeg = {c.name: 0 for c in group}
    for readers in after.values():
        for r in readers:
            indeg[r] += 1
    by_name = {c.name: c for c in group}
    ready = sorted(n for n, d in indeg.items() if d == 0)
    out = []
    while ready:
        n = ready.pop(0)
        out.append(by_name[n])
        for r in sorted(after[n]):
            indeg[r] -= 1
            if indeg[r] == 0:
                ready.append(r)
                ready.sort()
    if len(out) < len(group):
        cycle = _find_cycle({n: after[n] for n in after if indeg[n] > 0})
        names = " -> ".join(cycle)
        raise ValidationError(f"couplings of phase {group[0].phase!r} depend on each other in a cycle: "
                              f"{names} (each writes a name the next reads); move one to another phase "
                              "or drop a read")
    return out


def _find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One cycle of ``graph`` (node -> successors) as [a, b, ..., a]."""
    for start in sorted(graph):
        path, seen = [start], {start}
        node = start
        while True:
            nxt = sorted(s for s in graph[node] if s in graph)
            if not nxt:
                break
            node = nxt[0]
            if node in seen:
                return path[path.index(node):] + [node]
            path.append(node)
            seen.add(node)
    return sorted(graph)  # pragma: no cover - every node left has an in-edge, so a cycle exists


# ----------------------------------------------------------------------------- run
@dataclass
class CoupledRun:
    """A coupled run: its config, schedule, state, contexts and (once finished) files and summary."""

    config: RunConfig
    order: list[Coupling]
    periods: dict[str, float]
    state: Any
    contexts: dict[str, CouplingContext]
    inputs: dict[str, Path]
    paths: dict[str, Path] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    checkpoint_every_s: float | None = None
    resumed_from_s: float | None = None
    frame_times: list[float] = field(default_factory=list)
    manifest_extra: dict[str, Any] = field(default_factory=dict)


def _rng(seed: int, name: str) -> np.random.Generator:
    return np.random.default_rng([int(seed), zlib.crc32(name.encode("utf-8"))])


def _resolve(cfg: RunConfig, available: Mapping[str, Coupling] | None) -> list[Coupling]:
    out, problems = [], []
    for name in cfg.couplings:
        if available is not None and name in available:
            out.append(available[name])
            continue
        try:
            out.append(get_coupling(name))
        except ValidationError as exc:
            problems.append(f"couplings.{name}: {exc}")
    if problems:
        raise ValidationError("run config: " + "; ".join(problems))
    return out


def _period(c: Coupling, params: dict[str, Any]) -> float:
    v = params.pop("period_s", c.period_s)
    if isinstance(v, bool) or not isinstance(v, int | float) or not (math.isfinite(v) and v > 0):
        raise ValidationError(f"couplings.{c.name}.period_s={v!r}: give a finite number of seconds > 0")
    return float(v)


def _positive_or_none(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not (math.isfinite(value)
                                                                             and value > 0):
        raise ValidationError(f"{name}={value!r}: give a finite number of seconds > 0, or None")
    return float(value)


def build_run(config: Mapping[str, Any] | RunConfig, *,
              couplings: Mapping[str, Coupling] | None = None,
              checkpoint_every_s: float | None = None) -> CoupledRun:
    """Check the config, order the couplings, build the grid and the state (nothing set up yet).

    Raises
    ------
    ValidationError
        A bad config, an unknown coupling, a read nobody writes, a dependency
        cycle, checkpoints asked of a coupling without save/restore.
    """
    from twin.clock import SimClock
    from twin.domain import Domain
    from twin.state import TwinState

    cfg = RunConfig.from_mapping(config)
    every = _positive_or_none(checkpoint_every_s, "checkpoint_every_s")
    order = schedule(_resolve(cfg, couplings))
    if every is not None:
        stuck = [c.name for c in order if not c.resumable]
        if stuck:
            raise ValidationError(f"checkpoint_every_s={every}: couplings {stuck} define no save/restore, "
                                  "so the run could not be resumed; run without checkpoints")
    params = {c.name: dict(cfg.couplings[c.name]) for c in order}
    periods = {c.name: _period(c, params[c.name]) for c in order}
    domain = (Domain.from_area(cfg.city, cfg.area, resolution=cfg.resolution_m, buffer_m=cfg.buffer_m)
              if cfg.area is not None else
              Domain.from_city(cfg.city, resolution=cfg.resolution_m, districts=cfg.districts,
                               buffer_m=cfg.buffer_m))
    static = domain.as_dataset()
    check_couplings(order, static=[str(v) for v in static.data_vars], external=cfg.external)
    state = TwinState(static, clock=SimClock(start=cfg.start))
    inputs = _domain_inputs(domain)
    if cfg.area is not None and "polygon" in cfg.area:
        inputs["area_polygon"] = Path(cfg.area["polygon"])
    shared: dict[str, Any] = {}
    contexts = {c.name: CouplingContext(name=c.name, params=params[c.name], state=state,
                                        domain=domain, shared=shared, rng=_rng(cfg.seed, c.name),
                                        inputs=inputs, duration_s=float(cfg.duration_s),
                                        period_s=periods[c.name])
                for c in order}
    return CoupledRun(config=cfg, order=order, periods=periods, state=state, contexts=contexts,
                      inputs=inputs, checkpoint_every_s=every)


def run_coupled(config: Mapping[str, Any] | RunConfig, out_dir: str | Path, *,
                progress: Progress | None = None,
                couplings: Mapping[str, Coupling] | None = None,
                checkpoint_every_s: float | None = None,
                manifest_extra: Mapping[str, Any] | None = None,
                extra_inputs: Mapping[str, str | Path] | None = None,
                outputs: Outputs | None = None) -> CoupledRun:
    """Build the enabled couplings, drive them on one clock to the end and write the run directory.

    Parameters
    ----------
    config : mapping or RunConfig
        See :class:`RunConfig`; checked before anything is built.
    out_dir : path
        The run directory (created).
    progress : callable(dict), optional
        Called with ``{"phase", "sim_s", "duration_s", "fraction"}`` at the
        start, after each output interval and at the end.
    couplings : mapping name -> Coupling, optional
        Couplings to use instead of the registered ones of the same name.
    checkpoint_every_s : float, optional
        Snapshot the state every so many simulated seconds into the run's
        store (``store/`` in ``out_dir``, :meth:`twin.store.Store.snapshot`),
        with each coupling's own state beside it (``checkpoints/<id>.npz``,
        ``.json``), so that :func:`resume_coupled` can finish a run that crashed.
    manifest_extra : mapping, optional
        More top-level entries of ``manifest.json`` (a scenario's name, hash and
        file); kept by :func:`resume_coupled`. Keys of :data:`MANIFEST_KEYS` are refused.
    extra_inputs : mapping role -> path, optional
        More input files whose sha256 go to the manifest (a scenario file and
        the files it names).
    outputs : callable(run, out_dir) -> {role: path}, optional
        Called once the fields, events and summary are made (``run.summary``,
        ``run.frame_times`` set), before ``summary.json`` is written: writes
        further files (tables, report, map) and may add to ``run.summary``;
        the paths it returns are listed in the summary's ``files``.

    Returns
    -------
    CoupledRun

    Raises
    ------
    ValidationError
        A bad config, an unknown coupling, a read nobody writes, a dependency cycle,
        a ``manifest_extra`` key the runner writes itself.
    """
    t_wall = time.perf_counter()
    say = progress or (lambda _p: None)
    run = build_run(config, couplings=couplings, checkpoint_every_s=checkpoint_every_s)
    taken = sorted(set(manifest_extra or {}) & set(MANIFEST_KEYS))
    if taken:
        raise ValidationError(f"manifest_extra keys {taken} are written by the runner; use other names")
    run.manifest_extra = dict(manifest_extra or {})
    run.inputs.update({str(k): Path(v) for k, v in (extra_inputs or {}).items()})
    cfg = run.config
    out = Path(out_dir)
    say({"phase": "setting up", "sim_s": 0.0, "duration_s": cfg.duration_s, "fraction": 0.0})
    for c in run.order:
        c.setup(run.contexts[c.name])
    out.mkdir(parents=True, exist_ok=True)
    _write_manifest(out, run)
    every = min(cfg.output_every_s, cfg.duration_s)  # the frames: t = 0, each interval, the end
    frames = _Frames(capacity=math.floor(cfg.duration_s / every + 1e-9) + 2)
    frames.record(run.state)
    return _drive(run, out, frames, say, t_wall, outputs)


def resume_coupled(out_dir: str | Path, *, progress: Progress | None = None,
                   couplings: Mapping[str, Coupling] | None = None,
                   outputs: Outputs | None = None) -> CoupledRun:
    """Finish a run that stopped (a crash) from its last checkpoint, into the same directory.

    Rebuilds the run from ``manifest.json``, sets every coupling up, restores
    the twin state from the store's last snapshot that has its couplings'
    checkpoint (:meth:`twin.store.Store.restore`: fields, clock, events), puts
    each coupling's own state back (``restore``) and drives the clock on from
    there. The files are those the uninterrupted run writes (``manifest_extra``
    and the extra inputs are taken back from the manifest; give ``outputs`` as
    to :func:`run_coupled`).

    Raises
    ------
    twin.errors.SnapshotError
        When the directory has no usable checkpoint.
    """
    from twin.errors import SnapshotError
    from twin.store import Store

    t_wall = time.perf_counter()
    say = progress or (lambda _p: None)
    out = Path(out_dir)
    path = out / MANIFEST_NAME
    if not path.is_file():
        raise SnapshotError(f"{out}: no {MANIFEST_NAME}; not a coupled run directory")
    man = json.loads(path.read_text(encoding="utf-8"))
    run = build_run(man["config"], couplings=couplings,
                    checkpoint_every_s=man.get("checkpoint_every_s"))
    with Store.open(out / STORE_DIR) as store:
        usable = [s for s in store.snapshots() if (out / CHECKPOINT_DIR / f"{s.id}.json").is_file()]
        if not usable:
            raise SnapshotError(f"{out}: no checkpoint to resume from; run it again with run_coupled")
        snap = usable[-1]
        state = store.restore(snap.id)
    run.manifest_extra = {k: v for k, v in man.items() if k not in MANIFEST_KEYS}
    for c in run.order:
        c.setup(run.contexts[c.name])
    for role, entry in man.get("inputs", {}).items():
        run.inputs.setdefault(role, Path(entry["path"]))
    for ctx in run.contexts.values():
        ctx.state = state
    run.state = state
    meta = json.loads((out / CHECKPOINT_DIR / f"{snap.id}.json").read_text(encoding="utf-8"))
    with np.load(out / CHECKPOINT_DIR / f"{snap.id}.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    for c in run.order:
        ctx = run.contexts[c.name]
        own = dict(meta["couplings"][c.name]["values"])
        own.update({k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith(f"{c.name}/")})
        ctx.summary = meta["couplings"][c.name]["summary"]
        ctx.rng.bit_generator.state = meta["couplings"][c.name]["rng"]
        c.restore(ctx, own)
    frames = _Frames.from_checkpoint(meta["frames"], arrays)
    run.resumed_from_s = float(snap.sim_time_s)
    say({"phase": "resuming", "sim_s": run.resumed_from_s, "duration_s": run.config.duration_s,
         "fraction": run.resumed_from_s / run.config.duration_s})
    return _drive(run, out, frames, say, t_wall, outputs)


def _next_multiple(t: float, period: float) -> float:
    """The first ``k * period`` (k >= 1) after ``t`` (times within 1e-9 s of t count as done)."""
    return (math.floor(t / period + 1e-9) + 1) * period


def _drive(run: CoupledRun, out: Path, frames: _Frames, say: Progress, t_wall: float,
           outputs: Outputs | None = None) -> CoupledRun:
    """Register the couplings, the frame recorder and the checkpoints on the clock; run to the end."""
    cfg, state = run.config, run.state
    clock = state.clock
    t0 = clock.now_s
    for c in run.order:
        p = run.periods[c.name]
        clock.every(p, _stepper(c, run.contexts[c.name], p), first_s=_next_multiple(t0, p),
                    until_s=cfg.duration_s)
    every = min(cfg.output_every_s, cfg.duration_s)
    clock.every(every, lambda _t: frames.record(state), first_s=_next_multiple(t0, every),
                until_s=cfg.duration_s)
    store = None
    if run.checkpoint_every_s is not None:
        from twin.store import Store

        store = Store.open(out / STORE_DIR)
        ck = run.checkpoint_every_s
        clock.every(ck, lambda _t: _checkpoint(run, out, store, frames),
                    first_s=_next_multiple(t0, ck), until_s=cfg.duration_s)
    try:
        t = t0
        while t < cfg.duration_s:
            t = min(_next_multiple(t, every), cfg.duration_s)
            clock.advance_to(t)
            say({"phase": "running", "sim_s": t, "duration_s": cfg.duration_s,
                 "fraction": t / cfg.duration_s})
    finally:
        if store is not None:
            store.close()
    if frames.times[-1] < cfg.duration_s - 1e-9:  # an end that is not a whole output interval
        frames.record(state)
    for c in run.order:
        if c.finish is not None:
            c.finish(run.contexts[c.name])
    run.paths = _write(out, run, frames)
    run.frame_times = list(frames.times)
    run.summary = _summary(run, frames, wall_s=time.perf_counter() - t_wall)
    if outputs is not None:
        say({"phase": "writing outputs", "sim_s": cfg.duration_s, "duration_s": cfg.duration_s,
             "fraction": 1.0})
        run.paths.update(outputs(run, out))
        run.summary["files"] = {role: Path(p).name for role, p in run.paths.items()} | {
            "summary": SUMMARY_NAME}
    from twin.pipeline import write_json

    run.paths["summary"] = write_json(run.summary, out / SUMMARY_NAME)
    say({"phase": "done", "sim_s": cfg.duration_s, "duration_s": cfg.duration_s, "fraction": 1.0})
    return run


def _checkpoint(run: CoupledRun, out: Path, store, frames: _Frames) -> int:
    """Snapshot the state into the store and write the couplings' own state beside it."""
    import os

    from twin.pipeline import clean_json

    sid = store.snapshot(run.state, label=f"coupled run t={run.state.clock.now_s:g} s")
    arrays: dict[str, np.ndarray] = {}
    meta: dict[str, Any] = {"sim_s": run.state.clock.now_s, "couplings": {}}
    for c in run.order:
        ctx = run.contexts[c.name]
        values = {}
        for k, v in c.save(ctx).items():
            if isinstance(v, np.ndarray):
                arrays[f"{c.name}/{k}"] = v
            else:
                values[k] = v
        meta["couplings"][c.name] = {"values": values, "summary": ctx.summary,
                                     "rng": ctx.rng.bit_generator.state}
    meta["frames"] = frames.checkpoint(arrays)
    ck = out / CHECKPOINT_DIR
    ck.mkdir(parents=True, exist_ok=True)
    tmp = ck / f".{sid}.npz.tmp"
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    os.replace(tmp, ck / f"{sid}.npz")
    tmp = ck / f".{sid}.json.tmp"
    tmp.write_text(json.dumps(clean_json(meta)), encoding="utf-8")
    os.replace(tmp, ck / f"{sid}.json")  # written last: its presence marks a whole checkpoint
    return sid


def _stepper(c: Coupling, ctx: CouplingContext, period: float) -> Callable[[float], None]:
    def tick(t: float) -> None:
        c.step(ctx, t, period)

    return tick


def _domain_inputs(domain) -> dict[str, Path]:
    """The city files the run's grid is built from, by role (for the manifest)."""
    out: dict[str, Path] = {}
    city = domain.city
    if city is None:
        return out
    for layer in ("elevation", "land", "city", "districts"):
        files = city.files(layer)
        for i, p in enumerate(files):
            out[layer if len(files) == 1 else f"{layer}[{i}]"] = Path(p)
    return out


class _Frames:
    """The state's dynamic fields at each output time (fields appearing later: NaN before).

    With ``capacity`` (the run's number of frames), a float field's frames are cast to float32
    into rows of one block per field, which :meth:`dataset` hands over whole: no copy of every
    frame again to stack them for ``fields.nc``. Frames beyond it (and a resumed run's) are kept
    one array each and stacked.
    """

    def __init__(self, capacity: int = 0) -> None:
        self.times: list[float] = []
        self.values: dict[str, list[np.ndarray | None]] = {}
        self.attrs: dict[str, dict[str, Any]] = {}
        self.capacity = int(capacity)
        self._blocks: dict[str, np.ndarray] = {}

    def record(self, state) -> None:
        n = len(self.times)
        for name, da in state.dynamic.data_vars.items():
            name = str(name)
            if name not in self.values:
                self.values[name] = [None] * n
                self.attrs[name] = dict(da.attrs)
            v = np.asarray(da.values)
            if v.dtype.kind == "f" and n < self.capacity:
                block = self._blocks.get(name)
                if block is None:
                    block = self._blocks[name] = np.empty((self.capacity, *v.shape), np.float32)
                block[n] = v  # the cast of v.astype(np.float32)
                self.values[name].append(block[n])
            else:
                self.values[name].append(v.astype(np.float32) if v.dtype.kind == "f" else v.copy())
        for vals in self.values.values():
            if len(vals) == n:
                vals.append(None)
        self.times.append(float(state.clock.now_s))

    def checkpoint(self, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
        """Put the frames into ``arrays`` (keys ``frames/<field>/<i>``); return their JSON part."""
        for name, vals in self.values.items():
            for i, v in enumerate(vals):
                if v is not None:
                    arrays[f"frames/{name}/{i}"] = v
        return {"times": self.times, "attrs": {k: {a: str(b) if not isinstance(b, int | float) else b
                                                   for a, b in v.items()}
                                               for k, v in self.attrs.items()}}

    @classmethod
    def from_checkpoint(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> _Frames:
        f = cls()
        f.times = [float(t) for t in meta["times"]]
        f.attrs = {k: dict(v) for k, v in meta["attrs"].items()}
        for name in f.attrs:
            f.values[name] = [arrays.get(f"frames/{name}/{i}") for i in range(len(f.times))]
        return f

    def _block(self, name: str) -> np.ndarray | None:
        """The frames of ``name`` as rows of its block (frames before the field: NaN), or None when
        some frame is not in it."""
        block, vals = self._blocks.get(name), self.values[name]
        if block is None or len(vals) > len(block) \
                or any(v is not None and v.base is not block for v in vals):
            return None
        for i, v in enumerate(vals):
            if v is None:
                block[i] = np.nan
        return block[:len(vals)]

    def dataset(self, state):
        import xarray as xr

        ds = xr.Dataset(coords={"time": ("time", np.asarray(self.times),
                                         {"units": "s", "long_name": "simulation time since start"}),
                                "y": state.static["y"].values, "x": state.static["x"].values})
        for name, vals in self.values.items():
            stack = self._block(name)
            if stack is None:
                like = next(v for v in vals if v is not None)
                fill = np.full(like.shape, np.nan, dtype=np.float32 if like.dtype.kind == "f" else float)
                stack = np.stack([fill if v is None else v for v in vals])
            ds[name] = (("time", "y", "x"), stack, self.attrs[name])
        for name in STATIC_OUT:
            if name in state.static:
                ds[name] = (("y", "x"), state.static[name].values, dict(state.static[name].attrs))
        ds["x"].attrs.update(units="m", standard_name="projection_x_coordinate")
        ds["y"].attrs.update(units="m", standard_name="projection_y_coordinate")
        ds.attrs.update(crs=state.crs, transform=list(state.transform),
                        start=state.clock.start.isoformat())
        return ds


def _versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {}
    for name in VERSIONED:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def _write_manifest(out: Path, run: CoupledRun) -> Path:
    """``manifest.json``: config and hash, seed, versions, inputs' sha256, schedule, checkpoints."""
    from twin.files import file_sha256
    from twin.pipeline import write_json

    cfg = run.config
    hashed = {}
    for role, p in sorted(run.inputs.items()):
        digest, nbytes = file_sha256(p)
        hashed[role] = {"path": str(p), "sha256": digest, "bytes": nbytes}
    manifest = {
        "config": cfg.to_dict(), "config_sha256": cfg.sha256(), "seed": cfg.seed,
        "versions": _versions(), "inputs": hashed,
        "schedule": [{"name": c.name, "phase": c.phase, "period_s": run.periods[c.name],
                      "reads": list(c.reads), "optional_reads": list(c.optional_reads),
                      "writes": list(c.writes)} for c in run.order],
        "checkpoint_every_s": run.checkpoint_every_s,
    } | dict(run.manifest_extra)
    return write_json(manifest, out / MANIFEST_NAME)


def _write(out: Path, run: CoupledRun, frames: _Frames) -> dict[str, Path]:
    from twin.pipeline import write_run_events

    paths: dict[str, Path] = {}
    ds = frames.dataset(run.state)
    enc = {str(v): {"zlib": True, "complevel": 1} for v in ds.data_vars}
    ds.to_netcdf(out / FIELDS_NAME, engine="netcdf4", encoding=enc)
    paths["fields"] = out / FIELDS_NAME
    paths["events"] = write_run_events(run.state.events, out)
    paths["manifest"] = _write_manifest(out, run)  # again: inputs a coupling added during the run
    return paths


def _summary(run: CoupledRun, frames: _Frames, *, wall_s: float) -> dict[str, Any]:
    cfg, state = run.config, run.state
    kinds: dict[str, int] = {}
    for e in state.events:
        kinds[e.kind] = kinds.get(e.kind, 0) + 1
    return {
        "duration_s": cfg.duration_s, "start": state.clock.start.isoformat(),
        "end_s": state.clock.now_s, "frames": len(frames.times), "config_sha256": cfg.sha256(),
        "order": [c.name for c in run.order], "periods_s": run.periods,
        "grid": {"shape": list(state.shape), "resolution_m": cfg.resolution_m,
                 "districts": cfg.districts, "area": cfg.area, "label": state.static.attrs.get("label")},
        "fields": sorted(frames.values), "events": kinds,
        "couplings": {n: ctx.summary for n, ctx in run.contexts.items()},
        "resumed_from_s": run.resumed_from_s,
        "files": {role: Path(p).name for role, p in run.paths.items()} | {"summary": SUMMARY_NAME},
        "wall_s": wall_s,
    }


__all__ = ["MANIFEST_KEYS", "CoupledRun", "Outputs", "RunConfig", "build_run", "config_sha256", "resume_coupled", "run_coupled",
           "schedule"]
