"""A local mosquitto broker for tests, benchmarks, drills and demos.

Starts Debian's ``mosquitto`` (``TWIN_MOSQUITTO`` overrides the binary) on
127.0.0.1 at a free port with a generated configuration (persistence off,
in-flight, queue and message size limits set: :data:`CONFIG`, the configuration
the project ships, each setting with the reason for its value), waits until it accepts connections, and stops
it. ``restart()`` brings a fresh broker up on the same port (sessions lost).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from twin.errors import ConfigError, TwinError

MOSQUITTO = os.environ.get("TWIN_MOSQUITTO") or shutil.which("mosquitto") or "/usr/sbin/mosquitto"

#: Broker settings besides the listener.
CONFIG = (
    "allow_anonymous true",
    "persistence false",
    # Unacknowledged QoS>0 messages in flight per client.
    # Mosquitto 2.0.11 does not always honour it for a queued backlog (issue 16), so the
    # bridge keeps its own bound too (MqttConfig.max_unacked).
    "max_inflight_messages 1000",
    # Messages queued per client beyond the in-flight ones (e.g. while the bridge is
    # down). Beyond this mosquitto drops messages: keep it above the largest backlog
    # (a day of 5 msg/s is 432,000).
    "max_queued_messages 500000",
    # ...and their bytes per client: without it a client away for long could make the
    # broker queue 500,000 x message_size_limit. 256 MiB holds 500,000 readings of 500 B.
    "max_queued_bytes 268435456",
    # Largest packet accepted, 1 MiB (the payload limit; the header adds a few bytes).
    # A client sending a larger PUBLISH is disconnected ("Packet too large") and the
    # message is never forwarded: 148 messages of 2 MB cannot reach the store (issue 16).
    # MQTT 5 clients are told the limit in the CONNACK (Maximum Packet Size). This is
    # mosquitto 2's form of message_size_limit: Debian's 2.0.11 treats that option as
    # this one anyway, logging "recommended to replace message_size_limit with
    # max_packet_size", and without telling clients (they get "Protocol error").
    # It lies above the bridge's own --max-payload-bytes (256 KiB), so a payload
    # between the two still arrives and is dead-lettered (size, SHA-256, first 1 KiB
    # kept) where operators can see it.
    "max_packet_size 1048576",
    "set_tcp_nodelay true",
    "log_dest stderr",
    "log_type error",
    "log_type warning",
)


class BrokerError(TwinError, RuntimeError):
    """The local broker could not be started."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def accepts(host: str, port: int) -> bool:
    """True when something accepts TCP connections at host:port."""
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


class LocalBroker:
    """A mosquitto process on 127.0.0.1:port with a generated configuration."""

    CONFIG = CONFIG

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        if not Path(MOSQUITTO).is_file():
            raise ConfigError(
                f"mosquitto not found at {MOSQUITTO}: install it (apt-get install mosquitto) "
                "or set TWIN_MOSQUITTO to the binary"
            )
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.conf = self.workdir / "mosquitto.conf"
        self.log = self.workdir / "mosquitto.log"
        self.proc: subprocess.Popen | None = None
        self.conf.write_text("\n".join([f"listener {self.port} {self.host}", *self.CONFIG, ""]))

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def start(self, timeout: float = 10.0) -> LocalBroker:
        if self.proc is not None and self.proc.poll() is None:
            return self
        with open(self.log, "ab") as logf:
            self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=logf, stderr=logf)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BrokerError(f"mosquitto exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            if accepts(self.host, self.port):
                return self
            time.sleep(0.05)
        self.stop()
        raise BrokerError(f"mosquitto did not accept connections on {self.address} in {timeout} s")

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
        while accepts(self.host, self.port) and time.monotonic() < deadline:
            time.sleep(0.05)

    def restart(self) -> None:
        """Stop the broker and start a fresh one on the same port (sessions are lost)."""
        self.stop()
        self.start()

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
