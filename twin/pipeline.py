"""The one run pipeline: request -> validated parameters -> run with progress -> outputs, summary, report, map.

The CLI (``twin <kind> run``) and the console's run form both call
:func:`run`; a model supplies only its :class:`twin.runkinds.RunKind`.

Progress goes to one callback as dicts with a ``phase`` ("validating",
"running", "writing outputs", "writing report", "writing map", "done"), a
``fraction`` of the whole job (0-1; the model's run is 0-0.9) and, while
running, what the model reports (``sim_s``, ``duration_s``, ``steps``...).

Before anything runs, the request is validated (its pydantic model) and
pre-checked (the kind's :attr:`~twin.runkinds.RunKind.check`): :func:`check`
does both, and the console calls it before it answers ``202``. A run is
cancelled cooperatively: set the ``cancel`` event and the run raises
:class:`twin.errors.RunCancelled` at its next progress report (or between
the pipeline's phases).
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


@dataclass
class RunResult:
    """A finished run: its kind, request, files by role, summary and output Dataset."""

    kind: RunKind
    request: Any
    paths: dict[str, Path]
    summary: dict[str, Any]
    dataset: Any
    wall_s: float


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


def run(kind: str | RunKind, params: Mapping[str, Any] | Any, out_dir: str | Path, *,
        city: Any = None, progress: Progress | None = None, report: bool = True, map: bool = True,
        validation_context: dict | None = None, console: bool = False,
        cancel: threading.Event | Any = None) -> RunResult:
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
    wall = time.perf_counter() - t0
    say({"phase": "done", "fraction": 1.0})
    return RunResult(kind=k, request=req, paths=paths, summary=summary, dataset=ds, wall_s=wall)


__all__ = ["RunResult", "check", "clean_json", "run", "write_json"]
