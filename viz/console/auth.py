"""Bearer-token gate of the console's actions (acknowledge an alert, start a forecast run).

Viewers read without a token; every action needs ``Authorization: Bearer <token>``.
The token is compared in constant time (:func:`hmac.compare_digest` on UTF-8 bytes),
so the answer time does not tell how much of a guess was right.

Answers: no ``Authorization`` header (or not ``Bearer``) -> ``401`` with
``WWW-Authenticate: Bearer``; a wrong token -> ``403``; a console started without
a token is read-only -> ``403`` for every action.

Guessing is slowed, never the operator: the right token is accepted at once,
whatever came before it from the same address (clients behind one proxy or
NAT share an address, and a lock-out by address would let anyone there shut
the operator out). A wrong token is answered after a delay that doubles with
each wrong token from that address within :data:`FAILURE_WINDOW_S` (the first
:data:`FREE_FAILURES` are not delayed; :data:`BASE_DELAY_S`, capped at
:data:`MAX_DELAY_S`), and wrong tokens are answered one at a time across all
clients, so parallel requests do not multiply the rate. Many addresses do not
either: past :data:`GLOBAL_FREE_FAILURES` wrong tokens within the window from
all addresses together, every wrong token is delayed the same way by that
count (with the cap, about 15 guesses a minute in all). When more than
:data:`MAX_WAITING` wrong tokens are already waiting, a wrong token gets
``429`` at once instead of a place in the queue (memory stays bounded).
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from twin.errors import ConfigError

MIN_TOKEN_CHARS = 8
FAILURE_WINDOW_S = 60.0   # wrong tokens older than this no longer count
FREE_FAILURES = 3         # wrong tokens per window answered without delay (typos)
BASE_DELAY_S = 0.25       # delay of the first slowed wrong token; doubles with each further one
MAX_DELAY_S = 4.0
GLOBAL_FREE_FAILURES = 20  # wrong tokens per window from all addresses before every wrong one is slowed
MAX_WAITING = 64          # wrong tokens waiting for their answer, across all clients
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
    """Decides whether a request may act (module docstring).

    Parameters
    ----------
    token : str or None
        The token (None or ``""``: a read-only console).
    clock : callable() -> float
        Monotonic seconds (tests pass a fake one).
    sleep : async callable(seconds)
        How a wrong token waits (default :func:`asyncio.sleep`).
    """

    def __init__(self, token: str | None, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> None:
        self._token = check_token(token)
        self._clock = clock
        self._sleep = sleep
        self._failures: dict[str, deque[float]] = {}
        self._all_failures: deque[float] = deque(maxlen=4096)
        self._serial: asyncio.Lock | None = None  # made in the server's event loop
        self._waiting = 0

    def recent_failures(self, client: str) -> int:
        """Wrong tokens from ``client`` within the window."""
        q = self._failures.get(client)
        if not q:
            return 0
        now = self._clock()
        while q and now - q[0] > FAILURE_WINDOW_S:
            q.popleft()
        if not q:
            del self._failures[client]
            return 0
        return len(q)

    def delay_s(self, failures: int) -> float:
        """Delay of a wrong token that is the ``failures``-th within the window."""
        extra = failures - FREE_FAILURES
        return 0.0 if extra <= 0 else min(MAX_DELAY_S, BASE_DELAY_S * 2.0 ** (extra - 1))

    def _failed(self, client: str) -> float:
        """Record a wrong token from ``client``; the delay it gets."""
        if len(self._failures) > 10_000:  # bound the memory a flood of clients can take
            self._failures.clear()
        now = self._clock()
        n = self.recent_failures(client) + 1
        self._failures.setdefault(client, deque(maxlen=64)).append(now)
        q = self._all_failures
        while q and now - q[0] > FAILURE_WINDOW_S:
            q.popleft()
        q.append(now)
        return max(self.delay_s(n), self.delay_s(len(q) - GLOBAL_FREE_FAILURES + FREE_FAILURES))

    @property
    def enabled(self) -> bool:
        """False for a read-only console (started without a token)."""
        return self._token is not None

    async def deny(self, request: Any) -> Any:
        """None when the request carries the token, else the JSON error response (wrong tokens wait first)."""
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
        if hmac.compare_digest(given.strip().encode("utf-8", "surrogateescape"), self._token.encode("utf-8")):
            return None
        client = request.client.host if getattr(request, "client", None) else "?"
        delay = self._failed(client)
        if delay > 0:
            if self._waiting >= MAX_WAITING:
                return JSONResponse({"error": "too_many_attempts", "reason": "too many wrong tokens are "
                                     f"waiting for an answer: try again in {MAX_DELAY_S:g} s"},
                                    status_code=429, headers={"Retry-After": str(max(1, round(MAX_DELAY_S)))})
            if self._serial is None:
                self._serial = asyncio.Lock()
            self._waiting += 1
            try:
                async with self._serial:
                    await self._sleep(delay)
            finally:
                self._waiting -= 1
        return JSONResponse({"error": "forbidden", "reason": "wrong token"
                             + (f" (answered after {delay:g} s: wrong tokens are slowed)" if delay else "")},
                            status_code=403)


__all__ = ["TokenGate", "check_bind", "check_token", "is_loopback"]
