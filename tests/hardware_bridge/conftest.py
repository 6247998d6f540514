"""Fixtures of the hardware-bridge tests: a real mosquitto broker on 127.0.0.1.

``mosquitto`` starts ``/usr/sbin/mosquitto -c <generated conf>`` at a free port
(persistence off, in-flight and queue limits set), waits until it accepts TCP
connections and stops it afterwards; ``broker.restart()`` stops it and starts a
new one on the same port. ``start_bridge`` runs the bridge process
(``python -m hardware_bridge.runner``) and waits for its READY line.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

MOSQUITTO = os.environ.get("TWIN_MOSQUITTO") or shutil.which("mosquitto") or "/usr/sbin/mosquitto"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


class Broker:
    """A mosquitto process on 127.0.0.1:port with a generated configuration."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.workdir = workdir
        self.conf = workdir / "mosquitto.conf"
        self.log = workdir / "mosquitto.log"
        self.proc: subprocess.Popen | None = None
        self.conf.write_text(
            "\n".join(
                [
                    f"listener {self.port} {self.host}",
                    "allow_anonymous true",
                    "persistence false",
                    # Unacknowledged QoS>0 messages in flight per client.
                    "max_inflight_messages 1000",
                    # Messages queued per client beyond the in-flight ones (e.g. while the
                    # bridge is down). Beyond this mosquitto drops messages: keep it above
                    # the largest backlog a test builds.
                    "max_queued_messages 500000",
                    "max_queued_bytes 0",
                    "set_tcp_nodelay true",
                    "log_dest stderr",
                    "log_type error",
                    "log_type warning",
                    "",
                ]
            )
        )

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        logf = open(self.log, "ab")  # noqa: SIM115 - kept open for the broker's lifetime
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=logf, stderr=logf)
        logf.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"mosquitto exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}"
                )
            if _accepts(self.host, self.port):
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"mosquitto did not accept connections on {self.address} in {timeout} s")

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        deadline = time.monotonic() + 10
        while _accepts(self.host, self.port) and time.monotonic() < deadline:
            time.sleep(0.05)

    def restart(self) -> None:
        """Stop the broker and start a fresh one on the same port (sessions are lost)."""
        self.stop()
        self.start()


@pytest.fixture
def mosquitto(tmp_path_factory) -> Broker:
    """A running mosquitto broker (``.host``, ``.port``, ``.address``, ``.restart()``)."""
    if not Path(MOSQUITTO).is_file():
        pytest.skip(f"mosquitto not installed at {MOSQUITTO} (apt-get install mosquitto)")
    pytest.importorskip("paho.mqtt.client", reason="paho-mqtt is not installed")
    broker = Broker(tmp_path_factory.mktemp("mosquitto"))
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


class BridgeProcess:
    """``python -m hardware_bridge.runner`` as a child process."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.args = args
        self.log = log
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
