"""Fixtures of the hardware-bridge tests (the ``mosquitto`` broker fixture is in tests/conftest.py:
``hardware_bridge.broker.LocalBroker`` at a free port on 127.0.0.1). ``start_bridge`` runs the bridge process
(``python -m hardware_bridge.runner``, a directory or a ``postgresql://`` URL as ``--store``) and waits for its READY line. ``bridge_store`` is the store of a bridge test on each backend (SQLite directory,
PostgreSQL database of the ``pg_server`` fixture) with the counts and keys the reliability tests compare.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


class BridgeProcess:
    """``python -m hardware_bridge.runner`` as a child process."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.args = args
        self.log = log
        self.ready: dict = {}  # the READY line, once wait_ready has seen it
        self._logf = open(log, "ab")  # noqa: SIM115
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hardware_bridge.runner", *args],
            stdout=subprocess.PIPE,
            stderr=self._logf,
            env=env,
            text=True,
        )

    def wait_ready(self, timeout: float = 30.0) -> dict:
        """Wait for the JSON line ``{"event": "ready", ...}`` on stdout."""
        deadline = time.monotonic() + timeout
        import selectors

        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"bridge exited with {self.proc.returncode}: {self.stderr()}")
            if sel.select(timeout=0.2):
                line = self.proc.stdout.readline()
                if not line:
                    continue
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if rec.get("event") == "ready":
                    sel.close()
                    self.ready = rec
                    return rec
        sel.close()
        raise RuntimeError(f"bridge not ready within {timeout} s: {self.stderr()}")

    def stderr(self) -> str:
        self._logf.flush()
        return self.log.read_text(errors="replace")[-3000:]

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._logf.close()

    def terminate(self, timeout: float = 30.0) -> dict:
        """SIGTERM; return the final stats line (``{"event": "stopped", ...}``)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        self._logf.close()
        for line in reversed(out.splitlines()):
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if rec.get("event") == "stopped":
                return rec
        return {}


@pytest.fixture
def start_bridge(tmp_path):
    """Factory: ``start_bridge(args) -> BridgeProcess`` (ready); every process is stopped after."""
    procs: list[BridgeProcess] = []

    def _start(args: list[str], wait: bool = True) -> BridgeProcess:
        bp = BridgeProcess([str(a) for a in args], tmp_path / f"bridge-{len(procs)}.log")
        procs.append(bp)
        if wait:
            bp.wait_ready()
        return bp

    yield _start
    for bp in procs:
        if bp.proc.poll() is None:
            bp.proc.kill()
            bp.proc.wait()


# --------------------------------------------------------------------------
# The store of a bridge test, on each backend
# --------------------------------------------------------------------------
BACKENDS = ["sqlite", "postgresql"]


class BridgeStore:
    """The store bridges of one test write to, and what the test reads back from it.

    ``target`` is the ``--store`` argument: a directory, or a URL with ``?files=`` (bridges on PostgreSQL take
    no file lock; every PostgreSQL write transaction takes the store's advisory lock).
    """

    def __init__(self, backend: str, target: str, files: Path) -> None:
        self.backend = backend
        self.target = target
        self.files = files

    def _rows(self, sql: str) -> list[tuple] | None:
        """Rows of ``sql`` (no parameters); None while the bridge has not created the table yet."""
        if self.backend == "sqlite":
            path = self.files / "twin.sqlite"
            if not path.exists():
                return None
            con = sqlite3.connect(path, timeout=60)
            try:
                return con.execute(sql).fetchall()
            except sqlite3.OperationalError:
                return None
            finally:
                con.close()
        import psycopg

        try:
            with psycopg.connect(self.target.split("?", 1)[0], autocommit=True) as con:
                return con.execute(sql).fetchall()
        except psycopg.errors.UndefinedTable:
            return None

    def counts(self) -> tuple[int, int]:
        """(observations, dead letters) stored."""
        n = self._rows("SELECT COUNT(*) FROM observations")
        d = self._rows("SELECT COUNT(*) FROM dead_letters")
        return (n[0][0] if n else 0), (d[0][0] if d else 0)

    def wait_counts(self, n_obs: int, n_dead: int = 0, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while self.counts() != (n_obs, n_dead):
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.backend} store has {self.counts()}, want {(n_obs, n_dead)}")
            time.sleep(0.1)

    def keys(self) -> list[tuple[str, int]]:
        """``(datastream_id, seq)`` of every stored observation."""
        return [tuple(r) for r in self._rows("SELECT datastream_id, seq FROM observations") or []]

    def dead_letters(self) -> list[tuple[str, bytes, str, int]]:
        """``(topic, payload, reason, hits)`` of every dead letter."""
        rows = self._rows("SELECT topic, payload, reason, hits FROM dead_letters") or []
        return [(t, bytes(p), r, h) for t, p, r, h in rows]


@pytest.fixture(params=BACKENDS)
def bridge_store(request, tmp_path) -> Iterator[BridgeStore]:
    """The store of this test on the parameter's backend (a fresh database per test on PostgreSQL)."""
    files = tmp_path / "store"
    if request.param == "sqlite":
        yield BridgeStore("sqlite", str(files), files)
        return
    url = request.getfixturevalue("pg_server").new_database()
    yield BridgeStore("postgresql", f"{url}?files={files}", files)
