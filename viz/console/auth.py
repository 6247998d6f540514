"""Bearer-token gate of the console's actions (acknowledge an alert, start a forecast run).

Viewers read without a token; every action needs ``Authorization: Bearer <token>``.
The token is compared in constant time (:func:`hmac.compare_digest` on UTF-8 bytes),
so the answer time does not tell how much of a guess was right.

Answers: no ``Authorization`` header (or not ``Bearer``) -> ``401`` with
``WWW-Authenticate: Bearer``; a wrong token -> ``403``; a console started without
a token is read-only -> ``403`` for every action. A client that sent
:data:`MAX_FAILURES` wrong tokens within :data:`FAILURE_WINDOW_S` seconds gets
``429`` (with ``Retry-After``) until the window has passed, so a token cannot be
guessed at network speed.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from twin.errors import ConfigError

MIN_TOKEN_CHARS = 8
MAX_FAILURES = 10
FAILURE_WINDOW_S = 60.0
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


def check_token(token: str | None) -> str | None:
    """Validate a configured token (None or ``""``: read-only console)."""
    if token is None or token == "":
        return None
    if not isinstance(token, str) or token != token.strip() or len(token) < MIN_TOKEN_CHARS:
        raise ConfigError(
            f"console token of {len(token) if isinstance(token, str) else '?'} characters is too weak or "
            f"has surrounding spaces: use at least {MIN_TOKEN_CHARS} characters, e.g. "
            f"--token {secrets.token_urlsafe(18)}")
    return token


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``."""
    import ipaddress

    h = host.strip()
    if h in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(h.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse to serve a non-loopback address without a token.

    Raises
    ------
    ConfigError
        ``host`` is reachable from other machines and no token protects the actions.
    """
    if not is_loopback(host) and not token:
        raise ConfigError(
            f"--host {host!r} exposes the console beyond this machine, but no token is set: "
            "anyone on the network could acknowledge alerts and start runs. Give --token "
            "(or TWIN_CONSOLE_TOKEN), or keep --host 127.0.0.1")


class TokenGate:
    """Decides whether a request may act (module docstring)."""

    def __init__(self, token: str | None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._token = check_token(token)
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def _throttled(self, client: str) -> float:
        """Seconds this client must wait (0 when it may try)."""
        q = self._failures.get(client)
        if not q:
            return 0.0
        now = self._clock()
        while q and now - q[0] > FAILURE_WINDOW_S:
            q.popleft()
        if not q:
            del self._failures[client]
            return 0.0
        return FAILURE_WINDOW_S - (now - q[0]) if len(q) >= MAX_FAILURES else 0.0

    def _failed(self, client: str) -> None:
        if len(self._failures) > 10_000:  # bound the memory a flood of clients can take
            self._failures.clear()
        self._failures.setdefault(client, deque(maxlen=MAX_FAILURES)).append(self._clock())

    @property
    def enabled(self) -> bool:
        """False for a read-only console (started without a token)."""
        return self._token is not None

    def deny(self, request: Any) -> Any:
        """None when the request carries the token, else the JSON error response."""
        from starlette.responses import JSONResponse

        if self._token is None:
            return JSONResponse({"error": "read_only", "reason": "this console is read-only: it was "
                                 "started without a token (twin serve --token ...)"}, status_code=403)
        auth = request.headers.get("authorization")
        scheme, _, given = (auth or "").partition(" ")
        if auth is None or scheme.lower() != "bearer" or not given.strip():
            return JSONResponse({"error": "unauthorized", "reason": "this action needs a token: send "
                                 "'Authorization: Bearer <token>'"}, status_code=401,
                                headers={"WWW-Authenticate": 'Bearer realm="twin-console"'})
        client = request.client.host if getattr(request, "client", None) else "?"
        wait = self._throttled(client)
        if wait > 0:
            return JSONResponse({"error": "too_many_attempts", "reason": f"{MAX_FAILURES} wrong tokens "
                                 f"within {FAILURE_WINDOW_S:g} s: try again in {wait:.0f} s"},
                                status_code=429, headers={"Retry-After": str(max(1, round(wait)))})
        if not hmac.compare_digest(given.strip().encode("utf-8", "surrogateescape"),
                                   self._token.encode("utf-8")):
            self._failed(client)
            return JSONResponse({"error": "forbidden", "reason": "wrong token"}, status_code=403)
        return None


__all__ = ["TokenGate", "check_bind", "check_token", "is_loopback"]
