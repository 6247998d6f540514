"""A uvicorn server in a background thread: the bridge's HTTP ingest and the console use it.

``port=0`` binds a free port at construction, so :attr:`ThreadedServer.url`
is known before :meth:`~ThreadedServer.start` (tests and drills start servers
on 127.0.0.1 at a free port).
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

from twin.errors import ConfigError


class ThreadedServer:
    """uvicorn serving an ASGI ``app`` in a daemon thread: ``start``/``stop`` or ``with``.

    Parameters
    ----------
    app : ASGI application
    host : str
        Interface to bind (default loopback).
    port : int
        0 picks a free port.
    name : str
        Thread name, and what the start-up error calls the server.
    lifespan : {"on", "off", "auto"}
        uvicorn's lifespan mode (``"on"`` when the app has start-up/shut-down hooks).
    graceful_s : float or None
        Seconds uvicorn waits for open connections (e.g. event streams) at shut-down.
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, *, name: str = "twin-http",
                 lifespan: str = "auto", graceful_s: float | None = None) -> None:
        import uvicorn

        self.host = host
        self.name = name
        self._sock: socket.socket | None = None
        if port == 0:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, 0))
            self._sock = s
            port = s.getsockname()[1]
        self.port = port
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan=lifespan,
                                timeout_graceful_shutdown=graceful_s)
        self.server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None
        self.exit_code: int | str | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 20.0) -> ThreadedServer:
        """Start serving; returns once uvicorn accepts connections.

        Raises
        ------
        ConfigError
            When the server thread dies or is not up within ``timeout`` seconds.
        """
        socks = [self._sock] if self._sock is not None else None
        self._thread = threading.Thread(target=self._serve, args=(socks,), name=self.name, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                why = f"uvicorn exited with {self.exit_code}" if self.exit_code is not None else \
                    f"not up within {timeout:g} s"
                raise ConfigError(f"{self.name}: the server did not start on {self.url} ({why}); "
                                  "is the port free?")
            time.sleep(0.02)
        return self

    def _serve(self, socks: list[socket.socket] | None) -> None:
        try:
            self.server.run(sockets=socks)
        except SystemExit as exc:  # uvicorn exits on a start-up failure (e.g. the port is taken)
            self.exit_code = exc.code

    def stop(self, timeout: float = 15.0) -> None:
        """Ask uvicorn to exit, wait for its thread, release the socket."""
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=timeout)
        if self._sock is not None:
            self._sock.close()

    def __enter__(self) -> ThreadedServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


__all__ = ["ThreadedServer"]
