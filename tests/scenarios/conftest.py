"""Fixtures of the scenario tests that run the bridge (pytest injects them: with ``--import-mode=importlib`` a
test module cannot import this file).

``twin_argv`` builds the command line of ``twin ARGS...`` in a child process; ``bridge`` runs ``twin bridge run``
on the ``mosquitto`` broker of tests/conftest.py with a fresh store (used by test_drill_e2e.py and
test_fire_drill.py).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


def _twin_argv(*args: str) -> list[str]:
    """``twin ARGS...`` as this interpreter runs it (the venv's, whatever the PATH)."""
    return [sys.executable, "-c", "from twin.cli import main; main()", *args]


@pytest.fixture
def twin_argv() -> Callable[..., list[str]]:
    """The command line of ``twin ARGS...`` in a child process: ``twin_argv("drill", "run", path, ...)``."""
    return _twin_argv


@pytest.fixture
def bridge(mosquitto, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    """``twin bridge run`` on the broker, storing into ``tmp_path/store``: that folder, once the bridge said it is
    ready; stopped with SIGTERM afterwards. Its MQTT client id is the test module's name."""
    store_dir = tmp_path / "store"
    client_id = request.module.__name__.rsplit(".", 1)[-1].replace("_", "-")
    proc = subprocess.Popen(_twin_argv("bridge", "run", "--broker", mosquitto.address, "--store", str(store_dir),
                                       "--client-id", client_id),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready = json.loads(proc.stdout.readline() or "{}")
        assert ready.get("event") == "ready", proc.stderr.read()
        yield store_dir
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
