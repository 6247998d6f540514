"""Flood forecast runs started from the console: one at a time, in a background thread.

A run is recorded in the store's ``runs`` table (kind ``flood_forecast``, the
request as its params, status running/done/failed) and writes the usual flood
outputs (:func:`physics.flood_io.write_flood_outputs`: ``flood.nc``, GeoTIFFs,
``max_depth.png``, ``summary.json``) into ``<runs_dir>/run-<id>/``, plus
``console.json`` with its final progress (and the error of a failed run).
Progress (phase, fraction of simulated time, steps) is kept in memory and
versioned, so the live feed pushes it to the pages.

``setup`` is the hook that turns a request into the model inputs (default:
:func:`physics.flood_city.city_flood_setup` over the console's city); a test
may pass one that builds a small DEM.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from twin.errors import TwinError, ValidationError
from viz.console.models import RunRequest

log = logging.getLogger(__name__)

RUN_KIND = "flood_forecast"
MAX_FRAMES = 36


class Busy(TwinError, RuntimeError):
    """A forecast run is already in progress (the console runs one at a time)."""


def output_every_s(hours: float) -> float:
    """Frame interval: 10 min, or longer so that a run has at most :data:`MAX_FRAMES` frames."""
    return max(600.0, hours * 3600.0 / MAX_FRAMES)


def run_dir_name(run_id: int) -> str:
    return f"run-{int(run_id):05d}"


class RunManager:
    """Starts and tracks forecast runs (module docstring).

    Parameters
    ----------
    store : twin.store.Store
    runs_dir : path
    city : twin.city.City or str
    setup : callable(RunRequest, city) -> setup dict, optional
    """

    def __init__(self, store: Any, runs_dir: str | Path, city: Any, *,
                 setup: Callable[[RunRequest, Any], dict] | None = None) -> None:
        self.store = store
        self.runs_dir = Path(runs_dir).expanduser().resolve()
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        self.city = city
        self._setup = setup or _city_setup
        self._lock = threading.Lock()
        self._progress: dict[int, dict[str, Any]] = {}
        self._thread: threading.Thread | None = None
        self._current: int | None = None
        self.version = 0
        self._seen_version = 0
        self._close_orphans()

    # ----------------------------------------------------------------- queries
    def _entry(self, info: Any) -> dict[str, Any]:
        p = self._progress.get(info.id)
        out_dir = self.runs_dir / run_dir_name(info.id)
        if p is None:
            p = _read_json(out_dir / "console.json") or {}
        fraction = p.get("fraction", 1.0 if info.status == "done" else 0.0)
        return {
            "id": info.id, "kind": info.kind, "status": info.status,
            "started": info.started.isoformat(), "ended": None if info.ended is None else info.ended.isoformat(),
            "params": {k: v for k, v in info.params.items() if k in RunRequest.model_fields},
            "phase": p.get("phase", info.status), "fraction": fraction,
            "sim_s": p.get("sim_s"), "steps": p.get("steps"), "error": p.get("error"),
            "summary": p.get("summary"),
            "has_outputs": (out_dir / "flood.nc").is_file(),
        }

    def runs(self) -> list[dict[str, Any]]:
        """Forecast runs of the store, newest first."""
        with self._lock:
            return [self._entry(r) for r in reversed(self.store.runs()) if r.kind == RUN_KIND]

    def get(self, run_id: int) -> dict[str, Any] | None:
        with self._lock:
            for r in self.store.runs():
                if r.id == run_id and r.kind == RUN_KIND:
                    return self._entry(r)
        return None

    def latest_done(self) -> tuple[dict[str, Any], Path] | None:
        """The newest finished run with outputs and its folder."""
        for r in self.runs():
            if r["status"] == "done" and r["has_outputs"]:
                return r, self.runs_dir / run_dir_name(r["id"])
        return None

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def poll(self) -> list[dict[str, Any]]:
        """Feed messages ``{"type": "run", "run": entry}`` when progress changed since the last call."""
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
    def start(self, req: RunRequest, *, by: str = "operator") -> dict[str, Any]:
        """Record and start a run in the background; raises :class:`Busy` if one is running."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                raise Busy(f"forecast run {self._current} is still running; wait for it to finish "
                           "(GET /api/runs/{id})")
            params = {**req.model_dump(), "by": by, "console_pid": os.getpid()}
            run_id = self.store.start_run(RUN_KIND, params)
            self._current = run_id
            self._set(run_id, phase="queued", fraction=0.0)
            self._thread = threading.Thread(target=self._run, args=(run_id, req), daemon=True,
                                            name=f"forecast-{run_id}")
            self._thread.start()
        return self.get(run_id) or {"id": run_id}

    def join(self, timeout: float | None = None) -> None:
        t = self._thread
        if t is not None:
            t.join(timeout)

    def _set(self, run_id: int, **kw: Any) -> None:
        p = self._progress.setdefault(run_id, {})
        p.update(kw)
        self.version += 1
        p["_v"] = self.version

    def _run(self, run_id: int, req: RunRequest) -> None:
        out_dir = self.runs_dir / run_dir_name(run_id)
        duration = req.hours * 3600.0
        status = "failed"
        last = [0.0]
        try:
            self._set(run_id, phase="setting up", fraction=0.0)
            setup = self._setup(req, self.city)

            def progress(p: dict[str, Any]) -> None:
                now = time.monotonic()
                if now - last[0] < 0.2 and p["t"] < duration:
                    return
                last[0] = now
                self._set(run_id, phase="running", fraction=min(1.0, p["t"] / duration) * 0.95,
                          sim_s=float(p["t"]), steps=int(p["steps"]))

            import numpy as np

            from physics.flood_city import run_city_flood
            from physics.flood_io import _clean, write_flood_outputs

            self._set(run_id, phase="running", fraction=0.0, sim_s=0.0, steps=0)
            ds = run_city_flood(setup, output_every_s=output_every_s(req.hours), dtype=np.float64,
                                progress=progress, progress_every_s=max(60.0, duration / 100))
            self._set(run_id, phase="writing outputs", fraction=0.97)
            res = write_flood_outputs(ds, out_dir, districts=setup["context"].get("districts_gdf"))
            s = _clean(res["summary"])
            summary = {k: s.get(k) for k in ("max_depth_m", "flooded_area_max_km2", "steps", "run_time_s")}
            self._set(run_id, phase="done", fraction=1.0, summary=summary)
            status = "done"
        except Exception as exc:  # reported on the run, never raised into the server
            msg = f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, TwinError):
                log.error("forecast run %s failed:\n%s", run_id, traceback.format_exc())
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
            self._set(run_id, ended=True)

    def _close_orphans(self) -> None:
        """Mark runs left 'running' by a console process that no longer exists as failed."""
        for r in self.store.runs():
            if r.kind != RUN_KIND or r.status != "running":
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


def _city_setup(req: RunRequest, city: Any) -> dict:
    from physics.flood_city import city_flood_setup

    return city_flood_setup(city, resolution=req.resolution, districts=req.districts,
                            storm=req.storm, hours=req.hours)


__all__ = ["Busy", "RUN_KIND", "RunManager", "output_every_s", "run_dir_name"]
