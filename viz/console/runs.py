"""Model runs started from the console: one at a time, in a background thread.

Any registered run kind (:mod:`twin.runkinds`) can be started. A run is
recorded in the store's ``runs`` table (the kind's name, the request as its
params, status running/done/failed) and goes through the one run pipeline
(:func:`twin.pipeline.run`: the kind's outputs, ``summary.json``,
``report.html``, ``map.html``) into ``<runs_dir>/run-<id>/``, plus
``console.json`` with its final progress (and the error of a failed run).
The events the run wrote (``events.jsonl``, see :mod:`twin.pipeline`) go to
the store's event log tied to the run (:meth:`RunManager.events` reads them
back); runs finished before that existed are imported when the console starts.
Progress (phase, fraction, the model's own figures) is kept in memory and
versioned, so the live feed pushes it to the pages.

:meth:`RunManager.cancel` sets the running run's cancel event: the run stops
at its next progress report (:class:`twin.errors.RunCancelled`), ends with
status ``cancelled`` and is never shown as a forecast (only ``done`` runs
have outputs to show); the next run can start as soon as it has stopped.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from twin.errors import RunCancelled, TwinError, ValidationError
from twin.runkinds import RunKind, get_kind, kinds

log = logging.getLogger(__name__)

PROGRESS_KEYS = ("sim_s", "duration_s", "steps")
#: How often (s) the feed looks in the store for runs another process started or ended
#: (``twin forecast`` issuing a cycle), so the pages list and show them without a reload.
STORE_CHECK_S = 2.0


class Busy(TwinError, RuntimeError):
    """A run is already in progress (the console runs one at a time)."""


class NotRunning(TwinError, RuntimeError):
    """The run asked to be cancelled is not in progress (it ended, or never existed here)."""


class NoForecast(TwinError, LookupError):
    """The run asked for has no outputs to show (not done, or its kind is not registered)."""


class UnknownRun(NoForecast):
    """No run with that id (of a registered kind) exists."""


def run_dir_name(run_id: int) -> str:
    return f"run-{int(run_id):05d}"


class RunManager:
    """Starts and tracks forecast runs (module docstring).

    Parameters
    ----------
    store : twin.store.Store
    runs_dir : path
    city : twin.city.City or str
    """

    def __init__(self, store: Any, runs_dir: str | Path, city: Any) -> None:
        self.store = store
        self.runs_dir = Path(runs_dir).expanduser().resolve()
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        self.city = city
        self._lock = threading.Lock()
        self._progress: dict[int, dict[str, Any]] = {}
        self._thread: threading.Thread | None = None
        self._current: int | None = None
        self._cancel: dict[int, threading.Event] = {}
        self.version = 0
        self._seen_version = 0
        self._close_orphans()
        self._import_events()
        self._store_lock = threading.Lock()
        self._store_checked = time.monotonic()
        self._store_status = self._statuses()

    # ----------------------------------------------------------------- queries
    @staticmethod
    def _kinds() -> dict[str, RunKind]:
        return {k.name: k for k in kinds()}

    def _entry(self, info: Any, kind: RunKind) -> dict[str, Any]:
        p = self._progress.get(info.id)
        out_dir = self.runs_dir / run_dir_name(info.id)
        if p is None:
            p = _read_json(out_dir / "console.json") or {}
        fraction = p.get("fraction", 1.0 if info.status == "done" else 0.0)
        params = {k: v for k, v in info.params.items() if k in kind.form_request.model_fields}
        return {
            "id": info.id, "kind": info.kind, "title": kind.title, "status": info.status,
            "started": info.started.isoformat(), "ended": None if info.ended is None else info.ended.isoformat(),
            "params": params, "description": kind.describe_params(params),
            "phase": p.get("phase", info.status), "fraction": fraction,
            "sim_s": p.get("sim_s"), "steps": p.get("steps"), "error": p.get("error"),
            "summary": p.get("summary"),
            "has_outputs": info.status == "done" and (out_dir / kind.output).is_file(),
            "cancelling": info.status == "running" and _cancelling(self._cancel, info.id),
            "forecast": forecast_cycle(info.params),
        }

    def runs(self) -> list[dict[str, Any]]:
        """Runs of the store whose kind is registered, newest first."""
        known = self._kinds()
        with self._lock:
            return [self._entry(r, known[r.kind]) for r in reversed(self.store.runs()) if r.kind in known]

    def get(self, run_id: int) -> dict[str, Any] | None:
        known = self._kinds()
        with self._lock:
            for r in self.store.runs():
                if r.id == run_id and r.kind in known:
                    return self._entry(r, known[r.kind])
        return None

    def events(self, run_id: int, kind: str | None = None, limit: int = 500) -> dict[str, Any]:
        """The events of run ``run_id`` from the store: ``{"run", "kind", "counts", "total", "events"}``.

        ``events`` (of ``kind`` when given, at most ``limit``, in the run's order) are
        ``{"id", "time_s", "kind", "source", "severity", "message", "data"}``; ``counts`` is per
        event kind over the whole run (what a filter can choose from).

        Raises
        ------
        UnknownRun
            When no run of a registered kind has that id.
        """
        r = self.get(run_id)
        if r is None:
            raise UnknownRun(f"no run with id {run_id}")
        counts = self.store.run_event_counts(run_id)
        rows = self.store.run_event_rows(run_id, kind, limit=limit)
        return {"run": run_id, "kind": r["kind"], "status": r["status"], "counts": counts,
                "total": sum(counts.values()), "filter": kind,
                "events": [{"id": e.id, "time_s": e.time_s, "kind": e.kind, "source": e.source,
                            "severity": e.severity, "message": e.message, "data": e.data} for e in rows]}

    def latest_done(self) -> tuple[dict[str, Any], Path] | None:
        """The newest finished run with outputs and its folder."""
        for r in self.runs():
            if r["status"] == "done" and r["has_outputs"]:
                return r, self.runs_dir / run_dir_name(r["id"])
        return None

    def latest_forecast(self) -> tuple[dict[str, Any], Path] | None:
        """The newest finished forecast cycle with outputs (``forecast`` set: ``twin forecast``) and its folder.

        Newest by issue time (then run id): a cycle re-issued for an earlier time does not hide
        the latest. What-if runs started from the form are never returned.
        """
        cycles = [r for r in self.runs() if r["forecast"] is not None and r["status"] == "done" and r["has_outputs"]]
        if not cycles:
            return None
        r = max(cycles, key=lambda r: (r["forecast"]["issue_time"] or "", r["id"]))
        return r, self.runs_dir / run_dir_name(r["id"])

    def done(self, run_id: int) -> tuple[dict[str, Any], Path]:
        """Run ``run_id`` and its folder, if it finished with outputs.

        Raises
        ------
        NoForecast
            When the run does not exist, is not done (running, failed, cancelled) or lost its outputs.
        """
        r = self.get(run_id)
        if r is None:
            raise UnknownRun(f"no run with id {run_id}")
        if r["status"] != "done" or not r["has_outputs"]:
            why = "has no outputs (they were removed)" if r["status"] == "done" else f"is {r['status']}"
            raise NoForecast(f"run {run_id} {why}: only a finished run has a forecast to show")
        return r, self.runs_dir / run_dir_name(run_id)

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def poll(self) -> list[dict[str, Any]]:
        """Feed messages ``{"type": "run", "run": entry}`` when progress changed since the last call.

        Also, every :data:`STORE_CHECK_S`, the runs another process started or ended in the store
        (a forecast cycle of ``twin forecast``).
        """
        return self._poll_progress() + self._poll_store()

    def _statuses(self) -> dict[int, str]:
        known = self._kinds()
        return {r.id: r.status for r in self.store.runs() if r.kind in known}

    def _poll_store(self) -> list[dict[str, Any]]:
        now = time.monotonic()
        if now - self._store_checked < STORE_CHECK_S or not self._store_lock.acquire(blocking=False):
            return []  # looked lately, or another thread (feed or request) is looking now
        try:
            self._store_checked = now
            status = self._statuses()
            changed = [i for i, st in status.items()
                       if self._store_status.get(i) != st and i not in self._progress]
            self._store_status = status
        except TwinError as exc:  # the store is busy or gone for a moment: look again next time
            log.warning("console: cannot list the store's runs: %s", exc)
            return []
        finally:
            self._store_lock.release()
        out = []
        for i in changed:
            e = self.get(i)
            if e is not None:
                out.append({"type": "run", "run": e})
        return out

    def _poll_progress(self) -> list[dict[str, Any]]:
        v = self.version
        if v == self._seen_version:
            return []
        self._seen_version = v
        with self._lock:
            ids = [i for i, p in self._progress.items() if p.get("_v", 0) > p.get("_sent", -1)]
            for i in ids:
                self._progress[i]["_sent"] = self._progress[i].get("_v", 0)
        out = []
        for i in ids:
            e = self.get(i)
            if e is not None:
                out.append({"type": "run", "run": e})
        return out

    # ----------------------------------------------------------------- actions
    def output_of(self, kind: str, run_id: Any) -> Path:
        """The main output of finished run ``run_id`` of ``kind`` (a console request naming a run).

        Raises
        ------
        LookupError
            With the reason, when it is no finished run of that kind with its outputs.
        """
        if not isinstance(run_id, int) or isinstance(run_id, bool):
            raise LookupError(f"give the id of a finished {kind} run")
        try:
            r, out_dir = self.done(run_id)
        except NoForecast as exc:
            raise LookupError(str(exc)) from None
        if r["kind"] != kind:
            raise LookupError(f"run {run_id} is a {r['kind']} run; choose a finished {kind} run")
        return out_dir / get_kind(kind).output

    def start(self, kind: str | RunKind, req: Any, *, by: str = "operator",
              form: dict[str, Any] | None = None) -> dict[str, Any]:
        """Record and start a run of ``kind`` with the validated request ``req`` in the background.

        ``form`` (what the console's form sent) is recorded with the request, so the run list
        shows the run as asked (a run id where the model got that run's file). Raises
        :class:`Busy` if one is running.
        """
        k = kind if isinstance(kind, RunKind) else get_kind(kind)
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                raise Busy(f"run {self._current} is still running; wait for it to finish "
                           "(GET /api/runs/{id})")
            params = {**req.model_dump(), **(form or {}), "by": by, "console_pid": os.getpid()}
            run_id = self.store.start_run(k.name, params)
            self._current = run_id
            self._cancel[run_id] = threading.Event()
            self._set(run_id, phase="queued", fraction=0.0)
            self._thread = threading.Thread(target=self._run, args=(run_id, k, req), daemon=True,
                                            name=f"run-{run_id}")
            self._thread.start()
        return self.get(run_id) or {"id": run_id}

    def cancel(self, run_id: int) -> dict[str, Any]:
        """Ask run ``run_id`` to stop (it does at its next progress report); returns its entry.

        Idempotent while the run stops. Raises :class:`NotRunning` when it is not in progress here.
        """
        with self._lock:
            ev = self._cancel.get(run_id)
            alive = self._thread is not None and self._thread.is_alive() and self._current == run_id
            if ev is None or not alive:
                raise NotRunning(f"run {run_id} is not running: only a run in progress can be cancelled")
            ev.set()
            self._set(run_id, phase="cancelling")
        return self.get(run_id) or {"id": run_id}

    def join(self, timeout: float | None = None) -> None:
        t = self._thread
        if t is not None:
            t.join(timeout)

    def _set(self, run_id: int, **kw: Any) -> None:
        p = self._progress.setdefault(run_id, {})
        p.update(kw)
        # the run's mark first, then the manager's version: a poll between the two then sees the change next time
        # instead of marking the new version seen without it
        v = self.version + 1
        p["_v"] = v
        self.version = v

    def _run(self, run_id: int, kind: RunKind, req: Any) -> None:
        from twin import pipeline

        out_dir = self.runs_dir / run_dir_name(run_id)
        status = "failed"
        last = [0.0]

        def progress(p: dict[str, Any]) -> None:
            now = time.monotonic()
            if p["phase"] == "running" and now - last[0] < 0.2 and p.get("fraction", 0.0) < pipeline.RUN_SHARE:
                return
            last[0] = now
            self._set(run_id, phase=p["phase"], fraction=float(p.get("fraction", 0.0)),
                      **{k: p[k] for k in PROGRESS_KEYS if k in p})

        cancel = self._cancel[run_id]
        try:
            res = pipeline.run(kind, req, out_dir, city=self.city, progress=progress, cancel=cancel,
                               store=self.store, run_id=run_id)
            s = pipeline.clean_json(res.summary)
            summary = {k: s.get(k) for k in kind.summary_keys} if kind.summary_keys else None
            self._set(run_id, phase="done", fraction=1.0, summary=summary)
            status = "done"
        except RunCancelled:
            status = "cancelled"
            self._set(run_id, phase="cancelled", error="cancelled from the console")
        except Exception as exc:  # reported on the run, never raised into the server
            msg = f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, TwinError):
                log.error("run %s failed:\n%s", run_id, traceback.format_exc())
            self._set(run_id, phase="failed", error=msg)
        finally:
            p = {k: v for k, v in self._progress.get(run_id, {}).items() if not k.startswith("_")}
            try:
                out_dir.mkdir(parents=True, exist_ok=True)
                (out_dir / "console.json").write_text(json.dumps(p, default=str, indent=1))
            except OSError as exc:
                log.error("cannot write %s: %s", out_dir / "console.json", exc)
            try:
                self.store.end_run(run_id, status)
            except Exception:
                log.exception("cannot end run %s in the store", run_id)
            with self._lock:
                self._cancel.pop(run_id, None)
            self._set(run_id, ended=True)

    def _close_orphans(self) -> None:
        """Mark runs left 'running' by a console process that no longer exists as failed."""
        known = self._kinds()
        for r in self.store.runs():
            if r.kind not in known or r.status != "running":
                continue
            pid = r.params.get("console_pid")
            if isinstance(pid, int) and pid != os.getpid() and _alive(pid):
                continue
            try:
                self.store.end_run(r.id, "failed")
            except ValidationError:
                continue
            out_dir = self.runs_dir / run_dir_name(r.id)
            out_dir.mkdir(parents=True, exist_ok=True)
            (out_dir / "console.json").write_text(json.dumps(
                {"phase": "failed", "error": "the console stopped while this run was in progress"}))


    def _import_events(self) -> None:
        """Store the events of finished runs that have an ``events.jsonl`` but none stored (older runs)."""
        from twin import pipeline

        for r in self.store.runs():
            if r.status != "done" or self.store.run_event_counts(r.id):
                continue
            out_dir = self.runs_dir / run_dir_name(r.id)
            if not (out_dir / pipeline.EVENTS_NAME).is_file():
                continue
            try:
                pipeline.store_run_events(self.store, r.id, out_dir)
            except TwinError as exc:
                log.error("run %s: its events were not stored: %s", r.id, exc)


def forecast_cycle(params: dict[str, Any]) -> dict[str, Any] | None:
    """What the run list shows of a forecast cycle (params ``forecast`` of :func:`scenarios.forecast.issue_forecast`).

    ``{"issue_time": ISO UTC, "horizon_h", "lead_times_s", "warm_start_run"}``; None for a run
    that is no forecast cycle (a what-if run from the form, a scenario).
    """
    fc = params.get("forecast")
    if not isinstance(fc, dict) or not isinstance(fc.get("issue_time"), str):
        return None
    leads = fc.get("lead_times_s")
    horizon = fc.get("horizon_h", params.get("hours"))
    return {"issue_time": fc["issue_time"],
            "horizon_h": float(horizon) if isinstance(horizon, int | float) else None,
            "lead_times_s": [float(v) for v in leads] if isinstance(leads, list) else [],
            "warm_start_run": fc.get("warm_start_run")}


def _cancelling(events: dict[int, threading.Event], run_id: int) -> bool:
    ev = events.get(run_id)
    return ev is not None and ev.is_set()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


__all__ = ["Busy", "NoForecast", "NotRunning", "RunManager", "UnknownRun", "forecast_cycle", "run_dir_name"]
