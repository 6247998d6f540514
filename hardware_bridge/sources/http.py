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

Confined-space permit actions (operators; need ``link``, a
:class:`~hardware_bridge.twin_link.TwinLink` with a PermitBook, and ``token``)
-----------------------------------------------------------------------------
Every permit route needs ``Authorization: Bearer <token>`` (missing or wrong:
``401``); with no token configured they answer ``503`` ("permits disabled: start
the bridge with --token"), and without a PermitBook ``503`` as well. Bodies are
JSON objects; a missing or invalid field answers ``422 {"field", "reason"}``.

``POST /v1/permits`` ``{"space", "worker"}``
    ``201 {"granted": true, "permit_id", "expires_at", "readings"}`` or
    ``409 {"granted": false, "reasons": [...], "readings"}``; event
    ``permit_granted`` (info) / ``permit_refused`` (warning).
``POST /v1/permits/{id}/enter`` and ``/exit`` ``{"worker"}``
    ``200 {"space", "worker", "inside"}``; ``404`` unknown permit, ``403`` the
    permit is someone else's, ``409`` entry refused (expired, space unsafe) or
    exit of someone not inside; event ``space_entered`` / ``space_exited`` (info).
``GET /v1/spaces/{space}``
    ``200 {"space", "confined_space", "inside", "safe", "reasons", "readings"}``.

Events go to the link's store (``TwinLink.emit``: event log + ``on_event``),
stored under the link's lock before the answer is sent; if an action's event
cannot be stored the action is undone and the answer is ``503`` (retry). The
permit state lives in the bridge process and is rebuilt from these events when
the bridge restarts (:meth:`~hardware_bridge.fusion.confined.PermitBook.restore`).

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
import hmac
import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from hardware_bridge.sources import Message, as_sink, raw_obs_topic, topic_for_datastream
from twin.web import ThreadedServer

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


def make_app(sink: Any, *, max_body_bytes: int = MAX_BODY_BYTES, link: Any = None,
             token: str | None = None):
    """The Starlette application feeding ``sink`` (an ingestor or a sink).

    The sink runs in a worker thread (it blocks on SQLite's fsync). ``link``
    (a TwinLink with ``permits``) and ``token`` enable the permit routes.
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

    permits = PermitRoutes(link, token)
    return Starlette(
        routes=[
            Route("/v1/obs/{kind}/{station}", obs, methods=["POST"]),
            Route("/v1.1/Observations", sta_observations, methods=["POST"]),
            Route("/v1/health", health, methods=["GET"]),
            Route("/v1/permits", permits.request, methods=["POST"]),
            Route("/v1/permits/{id}/enter", permits.enter, methods=["POST"]),
            Route("/v1/permits/{id}/exit", permits.exit, methods=["POST"]),
            Route("/v1/spaces/{space}", permits.space, methods=["GET"]),
        ]
    )


MAX_NAME = 128


class _Invalid(Exception):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


def _name(doc: dict[str, Any], field: str) -> str:
    v = doc.get(field)
    if not isinstance(v, str) or not v.strip():
        raise _Invalid(field, f"{field}={v!r} must be a non-empty string")
    if len(v) > MAX_NAME:
        raise _Invalid(field, f"{field} is {len(v)} characters long; at most {MAX_NAME}")
    return v.strip()


def _iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, UTC).isoformat()


class PermitRoutes:
    """Handlers of the confined-space permit routes (module docstring)."""

    def __init__(self, link: Any, token: str | None) -> None:
        self.link = link
        self.token = token or None

    # ------------------------------------------------------------ helpers
    def _gate(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        if self.token is None:
            return JSONResponse({"reason": "permits disabled: start the bridge with --token"},
                                status_code=503)
        auth = request.headers.get("authorization", "")
        scheme, _, given = auth.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(),
                                                                 self.token.encode()):
            return JSONResponse({"reason": "missing or wrong bearer token: send "
                                           "'Authorization: Bearer <token>'"},
                                status_code=401, headers={"WWW-Authenticate": "Bearer"})
        if self.link is None or getattr(self.link, "permits", None) is None:
            return JSONResponse({"reason": "permits disabled: the bridge runs without a twin "
                                           "link / permit book (drop --no-twin-link)"},
                                status_code=503)
        return None

    @staticmethod
    async def _body(request: Any) -> dict[str, Any]:
        raw = await request.body()
        try:
            doc = json.loads(raw)
        except ValueError as exc:
            raise _Invalid("body", f"body is not JSON ({exc}); send a JSON object") from None
        if not isinstance(doc, dict):
            raise _Invalid("body", f"body must be a JSON object, got {type(doc).__name__}")
        return doc

    @staticmethod
    def _invalid(exc: _Invalid) -> Any:
        from starlette.responses import JSONResponse

        return JSONResponse({"field": exc.field, "reason": exc.reason}, status_code=422)

    def _record(self, ev: Any, snap: tuple) -> tuple[int, dict[str, Any]] | None:
        """Store ``ev`` (link lock held); on failure undo the action back to ``snap``."""
        try:
            self.link.emit(ev, required=True)
        except Exception as exc:
            self.link.permits.rollback(snap)
            return 503, {"reason": f"the permit action could not be stored ({type(exc).__name__}: "
                                   f"{exc}); nothing was changed, retry"}
        return None

    def _event(self, now: datetime, kind: str, severity: str, message: str,
               data: dict[str, Any]) -> Any:
        from twin.events import Event

        clock = getattr(self.link.permits, "clock", None)
        t = float(clock.seconds_at(now)) if clock is not None else now.timestamp()
        return Event(time_s=t, kind=kind, source=f"confined/{data['space']}", severity=severity,
                     message=message, data={**data, "via": "http"})

    def _readings(self, used: dict[str, float]) -> dict[str, Any]:
        limits = self.link.permits.limits
        return {g: {"value": v, "display": limits[g].describe(v) if g in limits else None}
                for g, v in used.items()}

    def _find(self, pid: int) -> Any:
        return self.link.permits.permit(pid)

    # ------------------------------------------------------------ routes
    async def request(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        if (denied := self._gate(request)) is not None:
            return denied
        try:
            doc = await self._body(request)
            space, worker = _name(doc, "space"), _name(doc, "worker")
        except _Invalid as exc:
            return self._invalid(exc)

        def act() -> tuple[Any, Any]:
            with self.link.lock:  # action and event in one order (PermitBook.restore replays it)
                now = datetime.now(UTC)
                snap = self.link.permits.snapshot()
                p = self.link.permits.request(space, worker, now)
                data = {"space": space, "worker": worker, "permit_id": p.permit_id,
                        "reasons": list(p.reasons), "readings": dict(p.readings),
                        "requested_at": p.requested_at, "expires_at": p.expires_at}
                if p.granted:
                    ev = self._event(now, "permit_granted", "info",
                                     f"confined space {space}: entry permit {p.permit_id} granted "
                                     f"to {worker} until {_iso(p.expires_at)}", data)
                else:
                    ev = self._event(now, "permit_refused", "warning",
                                     f"confined space {space}: entry permit refused to {worker}: "
                                     f"{'; '.join(p.reasons)}", data)
                return p, self._record(ev, snap)

        p, failed = await asyncio.to_thread(act)
        if failed is not None:
            return JSONResponse(failed[1], status_code=failed[0])
        body = {"granted": p.granted, "space": space, "worker": worker,
                "readings": self._readings(p.readings)}
        if p.granted:
            return JSONResponse({**body, "permit_id": p.permit_id,
                                 "expires_at": _iso(p.expires_at)}, status_code=201)
        return JSONResponse({**body, "reasons": list(p.reasons)}, status_code=409)

    async def _move(self, request: Any, entering: bool) -> Any:
        from starlette.responses import JSONResponse

        from twin.errors import ValidationError

        if (denied := self._gate(request)) is not None:
            return denied
        try:
            raw_id = request.path_params["id"]
            if not raw_id.isdigit():
                raise _Invalid("id", f"permit id={raw_id!r} must be a positive integer")
            pid = int(raw_id)
            worker = _name(await self._body(request), "worker")
        except _Invalid as exc:
            return self._invalid(exc)

        def act() -> tuple[int, dict[str, Any]]:
            with self.link.lock:  # action and event in one order (PermitBook.restore replays it)
                now = datetime.now(UTC)
                p = self._find(pid)
                if p is None:
                    return 404, {"reason": f"no permit with id {pid}: request one with "
                                           "POST /v1/permits"}
                if p.worker != worker:
                    return 403, {"reason": f"permit {pid} was issued to {p.worker!r}, "
                                           f"not {worker!r}"}
                snap = self.link.permits.snapshot()
                try:
                    if entering:
                        self.link.permits.enter(p.space, worker, now)
                    else:
                        self.link.permits.exit(p.space, worker, now)
                except ValidationError as exc:
                    return 409, {"reason": str(exc), "space": p.space, "worker": worker}
                inside = self.link.permits.inside(p.space)
                kind = "space_entered" if entering else "space_exited"
                verb = "entered" if entering else "left"
                ev = self._event(now, kind, "info",
                                 f"confined space {p.space}: {worker} {verb} (permit {pid}); "
                                 f"{len(inside)} inside", {"space": p.space, "worker": worker,
                                                           "permit_id": pid, "inside": inside})
                if (failed := self._record(ev, snap)) is not None:
                    return failed
            return 200, {"space": p.space, "worker": worker, "permit_id": pid, "inside": inside}

        code, body = await asyncio.to_thread(act)
        return JSONResponse(body, status_code=code)

    async def enter(self, request: Any) -> Any:
        return await self._move(request, True)

    async def exit(self, request: Any) -> Any:
        return await self._move(request, False)

    async def space(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        if (denied := self._gate(request)) is not None:
            return denied
        space = request.path_params["space"]
        if not space.strip() or len(space) > MAX_NAME:
            return self._invalid(_Invalid("space", f"space={space!r} must be 1-{MAX_NAME} "
                                                   "characters"))
        with self.link.lock:
            reasons, used = self.link.permits.assess(space, datetime.now(UTC))
            inside = self.link.permits.inside(space)
        return JSONResponse({"space": space,
                             "confined_space": space in self.link.confined_spaces,
                             "inside": inside, "safe": not reasons, "reasons": reasons,
                             "readings": self._readings(used)})


class HttpServer(ThreadedServer):
    """uvicorn serving :func:`make_app` in a background thread (``start``/``stop``).

    ``port=0`` picks a free port; the bound port is :attr:`port` after construction.
    """

    def __init__(self, sink: Any, host: str = "127.0.0.1", port: int = 0, **app_kw: Any) -> None:
        super().__init__(make_app(sink, **app_kw), host, port, name="http-ingest", lifespan="off")


__all__ = ["HttpServer", "PermitRoutes", "make_app", "outcome"]
