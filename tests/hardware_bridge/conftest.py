"""Fixtures of the hardware-bridge tests (the ``mosquitto`` broker fixture is in tests/conftest.py:
``hardware_bridge.broker.LocalBroker`` at a free port on 127.0.0.1). ``start_bridge`` runs the bridge process
(``python -m hardware_bridge.runner``) and waits for its READY line.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
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
