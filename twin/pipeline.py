"""The one run pipeline: request -> validated parameters -> run with progress -> outputs, summary, report, map.

The CLI (``twin <kind> run``) and the console's run form both call
:func:`run`; a model supplies only its :class:`twin.runkinds.RunKind`.

Progress goes to one callback as dicts with a ``phase`` ("validating",
"running", "writing outputs", "writing report", "writing map", "storing events"
(with a store), "done"), a
``fraction`` of the whole job (0-1; the model's run is 0-0.9) and, while
running, what the model reports (``sim_s``, ``duration_s``, ``steps``...).

Before anything runs, the request is validated (its pydantic model) and
pre-checked (the kind's :attr:`~twin.runkinds.RunKind.check`): :func:`check`
does both, and the console calls it before it answers ``202``. A run is
cancelled cooperatively: set the ``cancel`` event and the run raises
:class:`twin.errors.RunCancelled` at its next progress report (or between
the pipeline's phases).

Events of a run
---------------
A kind whose model has events (a road closed, a unit dispatched, a floor
cleared, a person stranded) writes them into the run folder as
:data:`EVENTS_NAME` (``events.jsonl``): one :class:`twin.events.Event` record
(:meth:`~twin.events.Event.to_record`) per line, in the order they happened.
That file is the one contract: with a store attached (``store=``), the
pipeline appends those events to the store's event log, tied to the run
(:meth:`twin.store.Store.put_run_events`; the run is recorded in the store's
``runs`` table first unless a ``run_id`` is given), so the console and other
readers of the store see them. Storing is idempotent:
:func:`store_run_events` of the same folder again adds nothing. A kind
without events writes no file and nothing is stored.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twin.runkinds import Progress, RunContext, RunKind, get_kind

RUN_SHARE = 0.9  # share of the progress bar given to the model's run itself
SUMMARY_NAME = "summary.json"
EVENTS_NAME = "events.jsonl"  # a run's events, one twin.events.Event record per line (module docstring)


@dataclass
class RunResult:
    """A finished run: its kind, request, files by role, summary and output Dataset."""

    kind: RunKind
    request: Any
    paths: dict[str, Path]
    summary: dict[str, Any]
    dataset: Any
    wall_s: float
    run_id: int | None = None
    events_stored: int = 0


def clean_json(o: Any) -> Any:
    """``o`` with numpy scalars made Python numbers and NaN/inf made None (valid JSON)."""
    import numpy as np

    if isinstance(o, dict):
        return {k: clean_json(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [clean_json(v) for v in o]
    if isinstance(o, np.generic):
        return clean_json(o.item())
    if isinstance(o, float) and not math.isfinite(o):
        return None
    return o


def write_json(obj: Any, path: str | Path) -> Path:
    """Write ``obj`` as UTF-8 JSON (NaN/inf as null) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(clean_json(obj), ensure_ascii=False, indent=2, default=str) + "\n",
                    encoding="utf-8")
    return path


def check(kind: str | RunKind, params: Mapping[str, Any] | Any, *, city: Any = None,
          validation_context: dict | None = None, console: bool = False) -> Any:
    """The validated request of ``params``, after the kind's pre-check; nothing runs.

    Raises
    ------
    twin.errors.ValidationError
        A field pydantic refuses (named with its value).
    twin.errors.RequestError
        A value the model refuses (:meth:`twin.runkinds.RunKind.precheck`), with ``field`` and ``value``.
    """
    k = kind if isinstance(kind, RunKind) else get_kind(kind)
    req = k.validate(params, context=validation_context, console=console)
    k.precheck(req, city)
    return req


def _written_since(out: Path, since_ns: int, known: set[Path]) -> dict[str, Path]:
    """Files of ``out`` modified since ``since_ns`` that ``known`` does not list, by a role made from the name."""
    extra: dict[str, Path] = {}
    for p in sorted(out.iterdir()):
        if not p.is_file() or p.resolve() in known or p.stat().st_mtime_ns < since_ns:
            continue
        role = p.stem
        while role in extra:
            role += "_"
        extra[role] = p
    return extra


def write_run_events(records: Any, out_dir: str | Path) -> Path:
    """Write a run's events as :data:`EVENTS_NAME` in ``out_dir`` (the format :func:`read_run_events`
    reads): one JSON record per line, in order. ``records``: :class:`twin.events.Event` objects or
    their records (``Event.to_record()`` dicts)."""
    path = Path(out_dir) / EVENTS_NAME
    with path.open("w", encoding="utf-8") as fh:
        for rec in records:
            rec = rec.to_record() if hasattr(rec, "to_record") else rec
            fh.write(json.dumps(clean_json(rec), ensure_ascii=False) + "\n")
    return path


def read_run_events(out_dir: str | Path) -> list[Any]:
    """The events a run wrote into ``out_dir`` (:data:`EVENTS_NAME`), validated; [] without the file.

    Raises
    ------
    twin.errors.ValidationError
        Naming the file and the line of a record that is not an event.
    """
    from twin.errors import ValidationError
    from twin.events import Event

    path = Path(out_dir) / EVENTS_NAME
    if not path.is_file():
        return []
    out = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                out.append(Event.parse(json.loads(line)))
            except (ValueError, ValidationError) as exc:
                raise ValidationError(f"{path}, line {n}: not a twin.events.Event record: {exc}") from None
    return out


def store_run_events(store: Any, run_id: int, out_dir: str | Path) -> int:
    """Append the events of the run in ``out_dir`` to ``store``'s event log, tied to run ``run_id``.

    Idempotent (:meth:`twin.store.Store.put_run_events`): returns the number of events newly stored.
    """
    events = read_run_events(out_dir)
    return store.put_run_events(run_id, events) if events else 0


def run(kind: str | RunKind, params: Mapping[str, Any] | Any, out_dir: str | Path, *,
        city: Any = None, progress: Progress | None = None, report: bool = True, map: bool = True,
        validation_context: dict | None = None, console: bool = False,
        cancel: threading.Event | Any = None, store: Any = None, run_id: int | None = None) -> RunResult:
    """Run one model end to end and write its outputs into ``out_dir``.

    Parameters
    ----------
    kind : str or RunKind
        A registered kind (name or command name).
    params : mapping or the kind's request model
        Validated before anything runs; a bad value raises
        :class:`twin.errors.ValidationError` naming the field and the value.
    out_dir : path
        Folder for the files (created).
    city : twin.city.City, optional
        The city the run works on (the kind decides whether it needs one).
    progress : callable(dict), optional
        See the module docstring.
    report, map : bool
        Also write ``report.html`` (offline) and ``map.html`` (offline map).
    validation_context : dict, optional
        Passed to the request model's validators (e.g. the city's district names).
    console : bool
        Validate against the kind's console request (the console's form).
    cancel : threading.Event or callable() -> bool, optional
        Set to stop the run: it raises :class:`twin.errors.RunCancelled` at the
        model's next progress report or the pipeline's next phase.
    store : twin.store.Store, optional
        Where the run's events go (module docstring, "Events of a run").
        Without ``run_id`` the pipeline records the run in the store's ``runs``
        table (kind, request) and ends it done, failed or cancelled.
    run_id : int, optional
        The store's id of this run, when the caller recorded it (the console does).

    Returns
    -------
    RunResult
        ``summary["files"]`` (also in ``summary.json``) names every file the
        run wrote into ``out_dir``, ``summary.json`` and ``report.html`` included.

    Raises
    ------
    twin.errors.ValidationError, twin.errors.RequestError
        Before anything runs (see :func:`check`).
    twin.errors.RunCancelled
        When ``cancel`` was set; the files written so far stay.
    """
    k = kind if isinstance(kind, RunKind) else get_kind(kind)
    say = progress or (lambda _p: None)
    say({"phase": "validating", "fraction": 0.0})
    req = check(k, params, city=city, validation_context=validation_context, console=console)
    if store is None or run_id is not None:
        return _run(k, req, out_dir, city=city, say=say, report=report, map=map, cancel=cancel,
                    store=store, run_id=run_id)
    from twin.errors import RunCancelled

    rid = store.start_run(k.name, clean_json(req.model_dump()))
    status = "failed"
    try:
        res = _run(k, req, out_dir, city=city, say=say, report=report, map=map, cancel=cancel,
                   store=store, run_id=rid)
        status = "done"
        return res
    except RunCancelled:
        status = "cancelled"
        raise
    finally:
        store.end_run(rid, status)


def _run(k: RunKind, req: Any, out_dir: str | Path, *, city: Any, say: Progress, report: bool,
         map: bool, cancel: Any, store: Any, run_id: int | None) -> RunResult:
    """:func:`run` after validation."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    since_ns = time.time_ns() - 2_000_000_000  # coarse file-system clocks: 2 s of slack

    def running(p: dict[str, Any]) -> None:
        say({**p, "phase": "running", "fraction": RUN_SHARE * float(p.get("fraction", 0.0))})

    ctx = RunContext(city=city, out_dir=out, progress=running, cancel=cancel)

    def phase(name: str, fraction: float) -> None:
        ctx.check_cancelled()
        say({"phase": name, "fraction": fraction})

    phase("running", 0.0)
    ds = k.run(req, ctx)
    phase("writing outputs", RUN_SHARE)
    res = k.write(ds, out, req, ctx)
    paths, summary = dict(res.paths), dict(res.summary)
    summary.setdefault("kind", k.name)
    summary.setdefault("request", clean_json(req.model_dump()))
    if report:
        phase("writing report", 0.93)
        from viz.report import write_run_report

        paths["report"] = write_run_report(k, ds, summary, out, ctx)
    if map:
        phase("writing map", 0.96)
        from viz.run_map import write_run_map

        paths["map"] = write_run_map(k, ds, out / "map.html", city=city)["path"]
    ctx.check_cancelled()
    summary_path = out / SUMMARY_NAME
    paths["summary"] = summary_path
    known = {Path(p).resolve() for p in paths.values()}
    paths.update(_written_since(out, since_ns, known))
    summary["files"] = {role: Path(p).name for role, p in paths.items()}
    write_json(summary, summary_path)
    stored = 0
    if store is not None and run_id is not None:
        phase("storing events", 0.99)
        stored = store_run_events(store, run_id, out)
    wall = time.perf_counter() - t0
    say({"phase": "done", "fraction": 1.0})
    return RunResult(kind=k, request=req, paths=paths, summary=summary, dataset=ds, wall_s=wall,
                     run_id=run_id, events_stored=stored)


__all__ = ["EVENTS_NAME", "RunResult", "check", "clean_json", "read_run_events", "run", "store_run_events",
           "write_json"]
