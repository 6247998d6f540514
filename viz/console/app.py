"""``twin serve``: the command console, a Starlette app over the twin's store.

Routes
------
Page and files (no token):
    ``GET /`` the console page; ``GET /static/<name>`` its files, the deck.gl
    bundle (``deck.js``) and ``twinmap.js`` (whitelisted names only).
Reads (no token: viewers see):
    ``GET /api/info``, ``/api/sensors``, ``/api/alerts[?limit=n]``, ``/api/runs``,
    ``/api/runs/{id}``, ``/api/runs/{id}/events[?kind=K&limit=n]`` (the events the run
    stored: time, kind, severity, message; per-kind counts), ``/api/scene/base``,
    ``/api/scene/forecast[?run=ID]`` (the newest finished run, or run ID; 409 when it is
    not done; a run without a model grid, agents or a building, as its offline map draws it),
    ``/api/scene/compare?a=ID&b=ID`` (two finished runs of one kind and their
    B − A difference, for ``TwinMap.compare``; 422 for runs without a model grid),
    ``/api/scene/sensors``, ``/api/incidents[?closed=1]`` (live incidents with their dispatches
    and evacuations, :mod:`viz.console.incidents`),
    ``/api/stream`` (Server-Sent Events), ``/api/changes?since=<seq>`` (polling fallback).
Actions (``Authorization: Bearer <token>``; 401 without, 403 wrong or read-only;
wrong tokens are answered slowly, see :mod:`viz.console.auth`):
    ``POST /api/alerts/{id}/ack`` (body optional ``{"by", "note"}``; idempotent),
    ``POST /api/runs`` (``{"kind", ...the kind's console request}``; 202, 409 busy,
    422 for anything the model would refuse, naming the field and value),
    ``POST /api/runs/{id}/cancel`` (202; the run stops at its next progress report
    and ends ``cancelled``; 409 when it is not running),
    ``POST /api/actions`` (a trainee's ``{"action": "dispatch", "incident_id", "unit_type",
    "units", "station", "by"}`` or ``{"action": "evacuate", "districts": [...], "incident_id",
    "by"}``; 201, recorded as a ``trainee_action`` event; 404 for an incident not open; 422
    naming the field and value). A forecast started with ``POST /api/runs`` is recorded as a
    ``trainee_action`` too (``by`` from the ``X-Twin-Operator`` header).

Every response, errors and unexpected 500s included, carries a
Content-Security-Policy that allows nothing but this origin (plus
``data:``/``blob:`` images and workers), so even a mistaken remote URL in a
scene could not be fetched: the headers are added by a wrapper around the
whole application, outside Starlette's error handling.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from twin.web import ThreadedServer

STATIC_DIR = Path(__file__).with_name("static")

#: Sent with every response: the console talks to its own origin only. ``'wasm-unsafe-eval'``
#: lets the deck.gl bundle compile its small WebAssembly helpers (it probes for them at load);
#: it does not allow JavaScript ``eval``.
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob:; connect-src 'self' data: blob:; worker-src 'self' blob:; "
        "font-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
        "form-action 'none'"),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


class _SecurityHeaders:
    """ASGI wrapper adding :data:`SECURITY_HEADERS` (and ``no-store`` on ``/api``) to every response.

    It wraps the whole Starlette app, so the 500 of Starlette's outermost error
    middleware gets the headers too; ``state`` and other attributes are the app's.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        api = scope.get("path", "").startswith("/api/")

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                have = {k.lower() for k, _ in headers}
                for k, v in SECURITY_HEADERS.items():
                    if k.encode() not in have:
                        headers.append((k.encode(), v.encode()))
                if api and b"cache-control" not in have:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _asset_paths() -> dict[str, Path]:
    """deck.js and twinmap.js from the map helper's :mod:`viz.page` (pydeck's bundle as fallback)."""
    out: dict[str, Path] = {}
    try:
        from viz import page
    except ImportError:
        page = None
    if page is not None:
        for fn, name in (("deck_bundle_path", "deck.js"), ("twinmap_js_path", "twinmap.js")):
            f = getattr(page, fn, None)
            if f is not None:
                out[name] = Path(f())
    if "deck.js" not in out:
        import pydeck

        out["deck.js"] = Path(pydeck.__file__).parent / "nbextension" / "static" / "index.js"
    if "twinmap.js" not in out:
        js = Path(__file__).parent.parent / "static" / "twinmap.js"
        if js.is_file():
            out["twinmap.js"] = js
    return out


def create_app(store_dir: str | os.PathLike, *, token: str | None, runs_dir: str | os.PathLike | None = None,
               city: Any = "shenzhen", base_resolution: float = 90.0, stale_after_s: float = 900.0,
               allowed_hosts: list[str] | None = None,
               poll_s: float = 0.1, wake_on_commit: bool = True) -> Any:
    """The console's Starlette application.

    Parameters
    ----------
    store_dir : path or str
        The twin's store: a directory (SQLite, created if missing) or a ``postgresql://`` URL
        (:func:`twin.store.open_store`).
    token : str or None
        Token of the actions (None or ``""``: a read-only console).
    runs_dir : path, optional
        Where model runs write their outputs (default ``<store_dir>/runs``).
    city : str or twin.city.City
        The city of the basemap and of the runs.
    base_resolution : float
        Grid (m) of the basemap's hillshade.
    stale_after_s : float
        A datastream silent for longer shows as ``stale``.
    allowed_hosts : list of str, optional
        Accepted ``Host`` headers (DNS-rebinding guard); None accepts any.
    poll_s : float
        Longest wait of the live feed between polls (s): it wakes on the store's next commit
        (:meth:`viz.console.live.LiveState.wait`) and polls the runs at least this often.
    wake_on_commit : bool
        False: the feed sleeps ``poll_s`` between polls instead of waiting for the commit (the console
        before issue 16; ``bench/bench_console.py`` compares both).

    Returns
    -------
    ASGI app
        The Starlette app inside the security-headers wrapper; ``app.state.console``
        is the :class:`~viz.console.api.ConsoleApi`.
    """
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.gzip import GZipMiddleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from twin.city import City
    from twin.store import Store
    from viz.console.api import ConsoleApi
    from viz.console.auth import TokenGate
    from viz.console.feed import Feed
    from viz.console.files import StaticFiles
    from viz.console.incidents import IncidentBoard, district_locator
    from viz.console.live import LiveState
    from viz.console.runs import RunManager
    from viz.console.scenes import SceneCache

    gate = TokenGate(token)
    the_city = City(city) if isinstance(city, str) else city
    store = Store.open(store_dir)
    # from the target, not store.db_path: on PostgreSQL that is the URL with its password masked
    live = LiveState(store_dir, stale_after_s=stale_after_s)
    runs = RunManager(store, runs_dir if runs_dir is not None else store.root / "runs", the_city)
    board = IncidentBoard(store, district_locator(the_city))
    feed = Feed(lambda: live.refresh() + board.refresh() + runs.poll(), recheck=live.recheck,
                wait=live.wait if wake_on_commit else None, interval_s=poll_s)
    api = ConsoleApi(store=store, live=live, feed=feed, runs=runs,
                     scenes=SceneCache(the_city, base_resolution=base_resolution), gate=gate, city=the_city,
                     incidents=board)
    files = StaticFiles([STATIC_DIR], extra=_asset_paths())

    async def page(request: Request) -> Any:
        return files.response("console.html", request)

    async def static(request: Request) -> Any:
        return files.response(request.path_params["name"], request)

    async def not_found(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"error": "not_found", "reason": f"no route {request.url.path}"},
                            status_code=404)

    async def not_allowed(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"error": "method_not_allowed",
                             "reason": f"{request.method} is not allowed on {request.url.path}"},
                            status_code=405)

    async def internal(request: Request, exc: Exception) -> JSONResponse:
        # the traceback goes to the server's log (Starlette re-raises after answering), not to the client
        return JSONResponse({"error": "internal", "reason": f"the console failed on {request.url.path} "
                             f"({type(exc).__name__}); see the server's log"}, status_code=500)

    @contextlib.asynccontextmanager
    async def lifespan(app: Any):
        await feed.start()
        try:
            yield
        finally:
            await feed.stop()

    routes = [
        Route("/", page, methods=["GET", "HEAD"]),
        Route("/static/{name:path}", static, methods=["GET", "HEAD"]),
        Route("/api/info", api.info, methods=["GET"]),
        Route("/api/sensors", api.sensors, methods=["GET"]),
        Route("/api/alerts", api.alerts, methods=["GET"]),
        Route("/api/alerts/{id}/ack", api.ack, methods=["POST"]),
        Route("/api/incidents", api.incidents, methods=["GET"]),
        Route("/api/actions", api.action, methods=["POST"]),
        Route("/api/runs", api.runs_list, methods=["GET"]),
        Route("/api/runs", api.run_start, methods=["POST"]),
        Route("/api/runs/{id}", api.run_get, methods=["GET"]),
        Route("/api/runs/{id}/events", api.run_events, methods=["GET"]),
        Route("/api/runs/{id}/cancel", api.run_cancel, methods=["POST"]),
        Route("/api/scene/base", api.scene_base, methods=["GET"]),
        Route("/api/scene/forecast", api.scene_forecast, methods=["GET"]),
        Route("/api/scene/compare", api.scene_compare, methods=["GET"]),
        Route("/api/scene/sensors", api.scene_sensors, methods=["GET"]),
        Route("/api/stream", api.stream, methods=["GET"]),
        Route("/api/changes", api.changes, methods=["GET"]),
    ]
    # gzip (not for text/event-stream): the deck bundle 4.3 MB -> ~1.2 MB, scenes ~3x smaller
    middleware = [Middleware(GZipMiddleware, minimum_size=1024)]
    if allowed_hosts is not None:
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts))
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan,
                    exception_handlers={404: not_found, 405: not_allowed, Exception: internal})
    app.state.console = api
    app.state.store = store
    return _SecurityHeaders(app)


def loopback_hosts(host: str) -> list[str]:
    """Host headers a console bound to ``host`` accepts (loopback names plus ``host``)."""
    return sorted({"127.0.0.1", "localhost", "[::1]", "::1", host})


class ConsoleServer(ThreadedServer):
    """uvicorn serving a console app in a background thread (tests, drills): ``start``/``stop``.

    ``port=0`` picks a free port; :attr:`url` is known after construction.
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(app, host, port, name="twin-console", lifespan="on", graceful_s=2)


__all__ = ["ConsoleServer", "create_app", "loopback_hosts"]
