"""HTTP ingest of SensorThings-shaped JSON (Starlette app, served with uvicorn).

Routes
------
``POST /v1/obs/{kind}/{station}``
    Body: one Observation or a dataArray batch (see :mod:`hardware_bridge.schema`),
    routed exactly like an MQTT message on ``sz/v1/{kind}/{station}/obs``.
``POST /v1.1/Observations``
    SensorThings-style: the topic follows from the body's ``datastream``
    (``"{station}/{kind}[/{name}]"``).
``GET /v1/health``
    ``{"ok": true}``.

Responses: ``201 {"stored": n, "duplicates": d, "flags": [...]}`` once the
observations are durably stored (a re-sent observation answers 201 with
``stored: 0, duplicates: 1``); ``400 {"reason": ...}`` when the body is not JSON
and ``422 {"reason": ...}`` when it is JSON but invalid — in both cases the raw
body is kept in the dead-letter store with that reason before the answer is
sent; ``413`` for a body over ``max_body_bytes`` (not stored: the client is told
to split it); ``503`` if the store could not be written (nothing acknowledged:
retry).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from hardware_bridge.sources import Message, as_sink, raw_obs_topic, topic_for_datastream

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 8 * 1024 * 1024


def outcome(result: Any) -> dict[str, Any]:
    """Summary of one :class:`~hardware_bridge.ingest.IngestResult`.

    ``{"status", "ok", "stored", "duplicates", "reason", "flags"}``; ``ok`` is true
    for ``stored`` and ``duplicate``; ``retry`` (not processed) is neither ok nor rejected.
    """
    status = getattr(result, "status", "stored")
    flags = [f for f in ("late", "skewed") if getattr(result, f, 0)]
    return {
        "status": status,
        "ok": status in ("stored", "duplicate"),
        "stored": int(getattr(result, "stored", 0) or 0),
        "duplicates": int(getattr(result, "duplicates", 0) or 0),
        "reason": getattr(result, "reason", None),
        "flags": flags,
    }


def make_app(sink: Any, *, max_body_bytes: int = MAX_BODY_BYTES):
    """The Starlette application feeding ``sink`` (an ingestor or a sink).

    The sink runs in a worker thread (it blocks on SQLite's fsync).
    """
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    target = as_sink(sink)

    async def _ingest(topic: str, request: Request) -> JSONResponse:
        body = await request.body()
        if len(body) > max_body_bytes:
            return JSONResponse(
                {"reason": f"body of {len(body)} bytes exceeds {max_body_bytes}; split the batch"},
                status_code=413,
            )
        msg = Message(topic, body, datetime.now(UTC))
        try:
            results: Sequence[Any] = await asyncio.to_thread(target.handle_many, [msg])
        except Exception as exc:
            log.error("HTTP ingest of %s failed: %s", topic, exc)
            return JSONResponse(
                {"reason": f"the store could not be written ({type(exc).__name__}: {exc}); retry"},
                status_code=503,
            )
        o = outcome(results[0])
        if o["status"] == "retry":
            return JSONResponse({"reason": o["reason"] or "not processed; retry"},
                                status_code=503)
        if o["ok"]:
            return JSONResponse(
                {"stored": o["stored"], "duplicates": o["duplicates"], "flags": o["flags"],
                 "topic": topic},
                status_code=201,
            )
        try:
            json.loads(body)
            code = 422
        except ValueError:
            code = 400
        return JSONResponse({"reason": o["reason"], "dead_letter": True, "topic": topic},
                            status_code=code)

    async def obs(request: Request) -> JSONResponse:
        p = request.path_params
        return await _ingest(raw_obs_topic(p["kind"], p["station"]), request)

    async def sta_observations(request: Request) -> JSONResponse:
        body = await request.body()
        try:
            doc = json.loads(body)
        except ValueError:
            doc = None
        topic = topic_for_datastream(doc.get("datastream") if isinstance(doc, dict) else None)
        return await _ingest(topic, request)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[
            Route("/v1/obs/{kind}/{station}", obs, methods=["POST"]),
            Route("/v1.1/Observations", sta_observations, methods=["POST"]),
            Route("/v1/health", health, methods=["GET"]),
        ]
    )


class HttpServer:
    """uvicorn serving :func:`make_app` in a background thread (``start``/``stop``).

    ``port=0`` picks a free port; the bound port is :attr:`port` after :meth:`start`.
    """

    def __init__(self, sink: Any, host: str = "127.0.0.1", port: int = 0, **app_kw: Any) -> None:
        import uvicorn

        self.host = host
        self._sock = None
        if port == 0:
            import socket

            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, 0))
            self._sock = s
            port = s.getsockname()[1]
        self.port = port
        config = uvicorn.Config(make_app(sink, **app_kw), host=host, port=port,
                                log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> HttpServer:
        socks = [self._sock] if self._sock is not None else None
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": socks},
                                        name="http-ingest", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"HTTP ingest server did not start on {self.url}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._sock is not None:
            self._sock.close()

    def __enter__(self) -> HttpServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


__all__ = ["HttpServer", "make_app", "outcome"]
