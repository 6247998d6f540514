"""Route handlers of the console (see :mod:`viz.console.app` for the list).

Reads need no token; actions go through :class:`~viz.console.auth.TokenGate`.
Every error is JSON: ``{"error": <code>, "reason": <text>, ...}``, validation
errors also name the ``field`` and the ``value``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from twin.errors import RequestError, TwinError, ValidationError
from twin.events import Event, Severity
from twin.sensor_status import palette_json
from viz.console.auth import TokenGate
from viz.console.feed import Feed
from viz.console.incidents import ACTION_KIND, IncidentBoard
from viz.console.live import ACK_KIND, LiveState
from viz.console.models import (
    AckRequest,
    BodyError,
    parse_action,
    parse_body,
    parse_run_body,
    read_body,
)
from viz.console.runs import Busy, NoForecast, NotRunning, RunManager, UnknownRun
from viz.console.scenes import STATUS_COLORS, SceneCache, sensors_layer

MAX_LIMIT = 1000
SSE_MAX_S = 300.0


def _invalid(field: str, value: Any, reason: str, status: int = 422) -> JSONResponse:
    return JSONResponse({"error": "validation", "field": field, "value": value, "reason": reason,
                         "errors": [{"field": field, "value": value, "reason": reason}]},
                        status_code=status)


def _int_param(raw: str | None, field: str, default: int, lo: int, hi: int) -> int:
    if raw is None:
        return default
    if not raw.isdigit() or not lo <= int(raw) <= hi:
        raise BodyError([{"field": field, "value": raw,
                          "reason": f"must be a whole number from {lo} to {hi}"}])
    return int(raw)


def _run_id(raw: str | None, field: str) -> int:
    if raw is None or not raw.isdigit() or len(raw) > 12:
        raise BodyError([{"field": field, "value": raw, "reason": "run id must be a positive whole number"}])
    return int(raw)


def _scene_error(exc: TwinError) -> JSONResponse:
    if isinstance(exc, NoForecast):
        status = 404 if isinstance(exc, UnknownRun) else 409
        return JSONResponse({"error": "no_forecast", "reason": str(exc)}, status_code=status)
    if isinstance(exc, ValidationError):
        return JSONResponse({"error": "compare", "reason": str(exc)}, status_code=422)
    return JSONResponse({"error": "scene", "reason": f"{type(exc).__name__}: {exc}"}, status_code=503)


def display_zone() -> dict[str, Any]:
    """The zone the page shows times in (:data:`twin.clock.DISPLAY_TZ_NAME`: Shenzhen, UTC+8, "CST").

    ``{"name": "Asia/Shanghai", "label": "CST", "offset_min": 480}``: the page formats with the
    IANA name and falls back to the fixed offset where the browser lacks the zone.
    """
    from datetime import UTC, datetime

    from twin.clock import DISPLAY_TZ_NAME, display_tz

    off = datetime.now(UTC).astimezone(display_tz()).utcoffset()
    minutes = int(off.total_seconds() // 60) if off is not None else 480
    return {"name": DISPLAY_TZ_NAME, "label": "CST" if minutes == 480 else f"UTC{minutes / 60:+g}",
            "offset_min": minutes}


def run_kinds() -> list[dict[str, Any]]:
    """The registered run kinds and the JSON schema of what the console's form may send for each."""
    from twin.runkinds import kinds

    return [{"name": k.name, "title": k.title, "schema": k.form_request.model_json_schema()}
            for k in kinds()]


class ConsoleApi:
    """Handlers bound to one console's state."""

    def __init__(self, *, store: Any, live: LiveState, feed: Feed, runs: RunManager,
                 scenes: SceneCache, gate: TokenGate, city: Any, incidents: IncidentBoard | None = None) -> None:
        self.store = store
        self.incidents_board = incidents if incidents is not None else IncidentBoard(store)
        self.live = live
        self.feed = feed
        self.runs = runs
        self.scenes = scenes
        self.gate = gate
        self.city = city
        self._ack_lock = asyncio.Lock()
        self._districts: dict[str, str] | None = None

    # --------------------------------------------------------------- helpers
    async def sync(self) -> None:
        """Catch up with the store now and publish what changed (reads are never stale)."""
        await self.feed.poll_and_publish(self.live.refresh, self.incidents_board.refresh, self.runs.poll)

    def district_names(self) -> dict[str, str]:
        """casefolded English/Chinese name or adcode -> English name of the city's districts."""
        if self._districts is None:
            out: dict[str, str] = {}
            for r in self.city.districts().itertuples():
                for key in (r.name, r.name_zh, r.adcode):
                    out[str(key).casefold()] = str(r.name)
            self._districts = out
        return self._districts

    # ----------------------------------------------------------------- reads
    async def info(self, request: Request) -> JSONResponse:
        try:
            districts = sorted(set((await asyncio.to_thread(self.district_names)).values()))
        except TwinError:
            districts = []
        return JSONResponse({
            "title": f"{self.city.manifest.city.title} — command console",
            "city": self.city.name, "actions": self.gate.enabled,
            "stale_after_s": self.live.stale_after_s, "status_colors": STATUS_COLORS,
            "statuses": palette_json(),
            "districts": districts, "kinds": await asyncio.to_thread(run_kinds),
            "seq": self.feed.seq, "time_zone": display_zone(),
        })

    async def sensors(self, request: Request) -> JSONResponse:
        await self.sync()
        entries = self.live.sensors()
        return JSONResponse({"sensors": entries, "counts": self.live.counts(), "seq": self.feed.seq,
                             "cursor": self.feed.cursor})

    async def alerts(self, request: Request) -> JSONResponse:
        try:
            limit = _int_param(request.query_params.get("limit"), "limit", 200, 1, MAX_LIMIT)
        except BodyError as exc:
            return JSONResponse(exc.payload(), status_code=422)
        await self.sync()
        return JSONResponse({"alerts": self.live.alerts(limit), "seq": self.feed.seq,
                             "cursor": self.feed.cursor})

    async def incidents(self, request: Request) -> JSONResponse:
        """``GET /api/incidents[?closed=1]``: the live incidents (newest first) with their dispatches and evacuations."""
        closed = request.query_params.get("closed")
        if closed not in (None, "0", "1"):
            return _invalid("closed", closed[:20], "give 1 to list closed incidents too, 0 (default) not to")
        await self.sync()
        return JSONResponse({"incidents": self.incidents_board.incidents(include_closed=closed == "1"),
                             "seq": self.feed.seq, "cursor": self.feed.cursor})

    async def runs_list(self, request: Request) -> JSONResponse:
        runs = await asyncio.to_thread(self.runs.runs)
        return JSONResponse({"runs": runs, "busy": self.runs.busy})

    async def run_get(self, request: Request) -> JSONResponse:
        raw = request.path_params["id"]
        if not raw.isdigit() or len(raw) > 12:
            return _invalid("id", raw, "run id must be a positive whole number")
        run = await asyncio.to_thread(self.runs.get, int(raw))
        if run is None:
            return JSONResponse({"error": "not_found", "reason": f"no run with id {raw}"},
                                status_code=404)
        return JSONResponse(run)

    async def run_events(self, request: Request) -> JSONResponse:
        """``GET /api/runs/{id}/events[?kind=K&limit=n]``: the events run ``id`` stored, in its order.

        ``kind`` keeps one event kind (``counts`` always covers the whole run); ``limit`` caps the
        list (default 500, at most :data:`MAX_LIMIT`).
        """
        try:
            rid = _run_id(request.path_params["id"], "id")
            limit = _int_param(request.query_params.get("limit"), "limit", 500, 1, MAX_LIMIT)
        except BodyError as exc:
            return JSONResponse(exc.payload(), status_code=422)
        kind = request.query_params.get("kind") or None
        if kind is not None and (len(kind) > 64 or not kind.replace("_", "").replace("-", "").isalnum()):
            return _invalid("kind", kind[:64], "an event kind is letters, digits, _ and - (e.g. floor_cleared)")
        try:
            out = await asyncio.to_thread(self.runs.events, rid, kind, limit)
        except UnknownRun as exc:
            return JSONResponse({"error": "not_found", "reason": str(exc)}, status_code=404)
        return JSONResponse(out)

    async def scene_base(self, request: Request) -> JSONResponse:
        try:
            scene = await asyncio.to_thread(self.scenes.base)
        except TwinError as exc:
            return JSONResponse({"error": "scene", "reason": f"{type(exc).__name__}: {exc}"},
                                status_code=503)
        return JSONResponse(scene)

    async def scene_forecast(self, request: Request) -> JSONResponse:
        """The map of ``?run=ID`` (any finished run), or of the newest forecast cycle.

        Without ``run`` it is the newest cycle ``twin forecast`` issued (by issue time), never
        a what-if run of the form; with none issued, an empty scene whose ``run`` is null and
        whose title says so.
        """
        raw = request.query_params.get("run")
        try:
            rid = None if raw is None else _run_id(raw, "run")
        except BodyError as exc:
            return JSONResponse(exc.payload(), status_code=422)
        try:
            which = await asyncio.to_thread(self.runs.latest_forecast if rid is None else
                                            (lambda: self.runs.done(rid)))
            scene = await asyncio.to_thread(self.scenes.forecast, which)
        except TwinError as exc:
            return _scene_error(exc)
        return JSONResponse({**scene, "forecast": None if which is None else which[0]["forecast"]})

    async def scene_compare(self, request: Request) -> JSONResponse:
        """``?a=ID&b=ID``: two finished runs of one kind side by side, and their B − A difference."""
        try:
            a = _run_id(request.query_params.get("a"), "a")
            b = _run_id(request.query_params.get("b"), "b")
        except BodyError as exc:
            return JSONResponse(exc.payload(), status_code=422)
        if a == b:
            return _invalid("b", b, "compare two different runs")
        try:
            ra = await asyncio.to_thread(self.runs.done, a)
            rb = await asyncio.to_thread(self.runs.done, b)
            scene = await asyncio.to_thread(self.scenes.compare, ra, rb)
        except TwinError as exc:
            return _scene_error(exc)
        return JSONResponse(scene)

    async def scene_sensors(self, request: Request) -> JSONResponse:
        await self.sync()
        return JSONResponse({"title": "sensors", "layers": [sensors_layer(self.live.sensors())],
                             "legends": [{"layer": "sensors", "title": "Sensor status", "units": "",
                                          "categories": [[k, v] for k, v in STATUS_COLORS.items()]}],
                             "timeline": None, "seq": self.feed.seq})

    async def changes(self, request: Request) -> JSONResponse:
        raw = request.query_params.get("since")
        since = self.feed.parse_cursor(raw)
        if raw is not None and len(raw) > 40:
            return _invalid("since", raw[:40], "must be a cursor '<epoch>.<seq>' from this API")
        await self.sync()
        msgs, lost = self.feed.since(0 if since is None else since)
        return JSONResponse({"seq": self.feed.seq, "epoch": self.feed.epoch, "cursor": self.feed.cursor,
                             "resync": lost, "messages": msgs})

    async def stream(self, request: Request) -> Response:
        last = request.headers.get("last-event-id") or request.query_params.get("since")
        last_seq = self.feed.parse_cursor(last[:40] if last else None)
        gen = self.feed.stream(last_seq, request.is_disconnected, max_s=SSE_MAX_S)
        return StreamingResponse(gen, media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    # --------------------------------------------------------------- actions
    async def ack(self, request: Request) -> JSONResponse:
        if (denied := await self.gate.deny(request)) is not None:
            return denied
        raw = request.path_params["id"]
        if not raw.isdigit() or len(raw) > 12:
            return _invalid("id", raw, "alert id must be a positive whole number")
        aid = int(raw)
        try:
            body = parse_body(AckRequest, await read_body(request), allow_empty=True)
        except BodyError as exc:
            return JSONResponse(exc.payload(), status_code=exc.status)
        await self.sync()
        alert = await asyncio.to_thread(self.live.alert, aid)
        if alert is None:
            return JSONResponse({"error": "not_found", "reason": f"no alert with id {aid} "
                                 "(alerts are live events of severity advisory or above)"},
                                status_code=404)
        async with self._ack_lock:
            existing = await asyncio.to_thread(self.live.ack_of, aid)
            if existing is not None:
                return JSONResponse({"alert_id": aid, "status": "acknowledged", "ack": existing,
                                     "already": True})
            ev = Event(time_s=time.time(), kind=ACK_KIND, source="console", severity=Severity.INFO,
                       message=f"alert {aid} ({alert['kind']} from {alert['source']}) acknowledged "
                               f"by {body.by}",
                       data={"alert_id": aid, "by": body.by, "note": body.note,
                             "alert_kind": alert["kind"], "alert_source": alert["source"],
                             "client": request.client.host if request.client else None})
            await asyncio.to_thread(self.store.put_event, ev)
        await self.sync()
        ack = await asyncio.to_thread(self.live.ack_of, aid)
        return JSONResponse({"alert_id": aid, "status": "acknowledged", "ack": ack, "already": False})

    async def action(self, request: Request) -> JSONResponse:
        """``POST /api/actions``: a trainee's dispatch or evacuation order, recorded as a ``trainee_action`` event.

        201 with the event id and the incident as it now stands; 404 for an incident the board does not
        have (or closed); 422 naming the field and the value for anything else wrong.
        """
        if (denied := await self.gate.deny(request)) is not None:
            return denied
        try:
            known = await asyncio.to_thread(self.district_names)
        except TwinError:
            known = {}
        try:
            act = parse_action(await read_body(request), context={"districts": known})
        except BodyError as exc:
            return JSONResponse(exc.payload(), status_code=exc.status)
        await self.sync()
        incident = None
        if act.incident_id is not None:
            incident = self.incidents_board.incident(act.incident_id)
            if incident is None or incident["status"] == "closed":
                return JSONResponse({"error": "not_found", "field": "incident_id", "value": act.incident_id,
                                     "reason": f"no open incident with id {act.incident_id} (GET /api/incidents "
                                               "lists them)"}, status_code=404)
        data = act.model_dump(exclude_none=True)
        if incident is not None:
            data.update(incident=incident["incident"], incident_ref=incident.get("ref"), drill=incident.get("drill"))
        data["client"] = request.client.host if request.client else None
        ev = Event(time_s=time.time(), kind=ACTION_KIND, source="console", severity=Severity.INFO,
                   message=_action_message(act), data={k: v for k, v in data.items() if v is not None})
        eid = await asyncio.to_thread(self.store.put_event, ev)
        await self.sync()
        inc = None if act.incident_id is None else self.incidents_board.incident(act.incident_id)
        return JSONResponse({"event_id": eid, "action": act.action, "incident": inc}, status_code=201)

    async def _record_forecast(self, request: Request, run: dict[str, Any]) -> None:
        """A forecast started from the console, as a ``trainee_action`` (``by``: header ``X-Twin-Operator``,
        percent-encoded UTF-8)."""
        from urllib.parse import unquote

        by = unquote(request.headers.get("x-twin-operator") or "").strip()[:64] or "console operator"
        ev = Event(time_s=time.time(), kind=ACTION_KIND, source="console", severity=Severity.INFO,
                   message=f"{by} started a {run.get('kind')} forecast (run {run.get('id')})",
                   data={"action": "forecast", "by": by, "run_id": run.get("id"), "kind": run.get("kind"),
                         "client": request.client.host if request.client else None})
        await asyncio.to_thread(self.store.put_event, ev)

    async def run_start(self, request: Request) -> JSONResponse:
        if (denied := await self.gate.deny(request)) is not None:
            return denied
        try:
            known = await asyncio.to_thread(self.district_names)
        except TwinError as exc:
            return JSONResponse({"error": "data", "reason": f"{type(exc).__name__}: {exc}"},
                                status_code=503)
        try:
            kind, req, form = parse_run_body(await read_body(request), context={"districts": known},
                                             resolve_run=self.runs.output_of)
        except BodyError as exc:
            return JSONResponse(exc.payload(), status_code=exc.status)
        try:  # every check the model makes on a request, before 202 (twin.runkinds.RunKind.check)
            await asyncio.to_thread(kind.precheck, req, self.city)
        except RequestError as exc:
            return _invalid(exc.field, _jsonable(exc.value), str(exc))
        except TwinError as exc:
            return JSONResponse({"error": "data", "reason": f"{type(exc).__name__}: {exc}"},
                                status_code=503)
        try:
            run = await asyncio.to_thread(self.runs.start, kind, req, form=form)
        except Busy as exc:
            return JSONResponse({"error": "busy", "reason": str(exc)}, status_code=409)
        await self._record_forecast(request, run)
        await self.sync()
        return JSONResponse(run, status_code=202, headers={"Location": f"/api/runs/{run['id']}"})

    async def run_cancel(self, request: Request) -> JSONResponse:
        """``POST /api/runs/{id}/cancel``: the run stops at its next progress report (202; 409 not running)."""
        if (denied := await self.gate.deny(request)) is not None:
            return denied
        try:
            rid = _run_id(request.path_params["id"], "id")
        except BodyError as exc:
            return JSONResponse(exc.payload(), status_code=422)
        try:
            run = await asyncio.to_thread(self.runs.cancel, rid)
        except NotRunning as exc:
            found = await asyncio.to_thread(self.runs.get, rid)
            return JSONResponse({"error": "not_found" if found is None else "not_running", "reason": str(exc),
                                 "status": None if found is None else found["status"]},
                                status_code=404 if found is None else 409)
        await self.sync()
        return JSONResponse(run, status_code=202, headers={"Location": f"/api/runs/{rid}"})


def _action_message(act: Any) -> str:
    if act.action == "dispatch":
        where = f" from station {act.station}" if act.station else ""
        return f"{act.by} dispatched {act.units} {act.unit_type}{where} to incident {act.incident_id}"
    about = f" (incident {act.incident_id})" if act.incident_id is not None else ""
    return f"{act.by} ordered the evacuation of {', '.join(act.districts)}{about}"


def _jsonable(value: Any) -> Any:
    import json

    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return repr(value)
    return value


__all__ = ["ConsoleApi"]
