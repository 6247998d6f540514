"""Helpers for tests of code that talks to servers (as ``xarray.testing`` is for xarray).

:func:`serve_directory` serves a folder over HTTP on 127.0.0.1 at a free port
in a background thread, for tests of downloaders against a real server.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class QuietHandler(SimpleHTTPRequestHandler):
    """Serves a folder; records each GET path in ``server.log`` instead of logging to stderr."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.server.log.append(self.path)
        super().do_GET()


@contextlib.contextmanager
def serve_directory(
    directory: Path, handler: type[SimpleHTTPRequestHandler] = QuietHandler, **attrs: Any
) -> Iterator[ThreadingHTTPServer]:
    """Serve ``directory`` at ``server.url`` until the block ends; ``attrs`` are set on the server."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(directory)))
    server.daemon_threads = True
    server.log = []
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    for key, value in attrs.items():
        setattr(server, key, value)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
