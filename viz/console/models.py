"""Validated request bodies of the console's actions (pydantic v2, strict, no extra fields).

Errors become ``422 {"error": "validation", "field", "value", "reason", "errors": [...]}``
(one item per problem, each naming the field and the value sent). A body nested
deeper than :data:`MAX_DEPTH` is refused (422) before any validator sees it, so
no nesting can reach Python's recursion limit.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import pydantic
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo

MAX_BODY_BYTES = 64 * 1024
MAX_DEPTH = 32  # nesting of objects and arrays in a body; the requests need 3


def _too_deep(raw: bytes, limit: int = MAX_DEPTH) -> int | None:
    """The nesting depth of a JSON text if it exceeds ``limit`` (brackets inside strings not counted), else None.

    A scan, not a parse: it runs before :func:`json.loads`, whose C parser recurses.
    """
    depth = deepest = 0
    in_str = escaped = False
    for c in raw:
        if in_str:
            if escaped:
                escaped = False
            elif c == 0x5C:  # backslash
                escaped = True
            elif c == 0x22:  # quote
                in_str = False
        elif c == 0x22:
            in_str = True
        elif c in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif c in (0x5D, 0x7D):
            depth -= 1
    return deepest if deepest > limit else None


class BodyError(Exception):
    """A request body that cannot be used; ``errors`` lists ``{"field", "value", "reason"}``."""

    def __init__(self, errors: list[dict[str, Any]], status: int = 422) -> None:
        super().__init__("; ".join(f"{e['field']}={e['value']!r}: {e['reason']}" for e in errors))
        self.errors = errors
        self.status = status

    def payload(self) -> dict[str, Any]:
        first = self.errors[0]
        return {"error": "validation", "field": first["field"], "value": first["value"],
                "reason": first["reason"], "errors": self.errors}


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class AckRequest(_Strict):
    """``POST /api/alerts/{id}/ack`` (body optional): who acknowledges, and a note."""

    by: str = Field(default="operator", min_length=1, max_length=64, pattern=r"^\S(.*\S)?$")
    note: str = Field(default="", max_length=500)


#: What ``POST /api/actions`` takes (acknowledge and forecast have their own routes).
ACTIONS = ("dispatch", "evacuate")
#: Unit types a dispatch sends (the dispatch model's, :data:`scenarios.schema.UNIT_TYPES`).
UNIT_TYPES = ("engine", "ambulance", "rescue")
Operator = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^\S(.*\S)?$")]


def _district(value: str, info: ValidationInfo) -> str:
    """A district of the console's city (English, Chinese or adcode; context ``districts``) -> English name."""
    known = (info.context or {}).get("districts") or {}
    key = value.strip().casefold()
    name = known.get(key, known.get(key.removesuffix("区")))  # 福田区 is 福田
    if name is None:
        raise ValueError(f"unknown district; choose from {sorted(set(known.values()))}")
    return name


class DispatchAction(_Strict):
    """``POST /api/actions`` ``{"action": "dispatch", ...}``: send units to an open incident.

    ``incident_id`` is the incident's event id (``GET /api/incidents``); ``station`` optionally
    names the station the units leave from.
    """

    action: Literal["dispatch"]
    incident_id: int = Field(ge=1, le=10**12)
    unit_type: Literal[UNIT_TYPES] = "rescue"
    units: int = Field(default=1, ge=1, le=20)
    station: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    by: Operator = "console operator"
    note: str = Field(default="", max_length=500)


class EvacuateAction(_Strict):
    """``POST /api/actions`` ``{"action": "evacuate", "districts": [...]}``: order a zone's evacuation.

    The zone is a list of districts of the city; ``incident_id`` optionally ties the order to an
    incident of the board.
    """

    action: Literal["evacuate"]
    districts: list[Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_district)]] = Field(
        min_length=1, max_length=20)
    incident_id: int | None = Field(default=None, ge=1, le=10**12)
    by: Operator = "console operator"
    note: str = Field(default="", max_length=500)


def parse_action(raw: bytes, *, context: dict | None = None) -> DispatchAction | EvacuateAction:
    """A ``POST /api/actions`` body -> its validated action; :class:`BodyError` names the field and value."""
    doc = _json_object(raw, False)
    action = doc.get("action")
    model = {"dispatch": DispatchAction, "evacuate": EvacuateAction}.get(action) if isinstance(action, str) else None
    if model is None:
        raise BodyError([{"field": "action", "value": action if action is None or isinstance(action, str | int)
                          else repr(action), "reason": f"choose one of {list(ACTIONS)} (acknowledge an alert: "
                          "POST /api/alerts/{id}/ack; start a forecast: POST /api/runs)"}])
    return _validate(model, raw, context)


def _errors(exc: pydantic.ValidationError) -> list[dict[str, Any]]:
    out = []
    for e in exc.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "body"
        value = e.get("input")
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            value = repr(value)
        if isinstance(value, dict) and e["type"] == "missing":
            value = None
        out.append({"field": loc, "value": value, "reason": e["msg"]})
    return out


async def read_body(request: Any, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request body, read up to ``limit`` bytes; raises :class:`BodyError` (413) beyond."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyError([{"field": "body", "value": f"{declared} bytes",
                          "reason": f"body exceeds {limit} bytes"}], status=413)
    chunks, n = [], 0
    async for chunk in request.stream():
        n += len(chunk)
        if n > limit:
            raise BodyError([{"field": "body", "value": f"more than {limit} bytes",
                              "reason": f"body exceeds {limit} bytes"}], status=413)
        chunks.append(chunk)
    return b"".join(chunks)


def _json_object(raw: bytes, allow_empty: bool) -> dict[str, Any]:
    if len(raw) > MAX_BODY_BYTES:
        raise BodyError([{"field": "body", "value": f"{len(raw)} bytes",
                          "reason": f"body exceeds {MAX_BODY_BYTES} bytes"}], status=413)
    if allow_empty and not raw.strip():
        raw = b"{}"
    if (depth := _too_deep(raw)) is not None:
        raise BodyError([{"field": "body", "value": f"nested {depth} deep",
                          "reason": f"body nests objects/arrays {depth} deep; at most {MAX_DEPTH} allowed"}])
    try:
        doc = json.loads(raw)
    except RecursionError:  # not reached after the scan above; kept so it can never become a 500
        raise BodyError([{"field": "body", "value": "too deep",
                          "reason": f"body nests too deep; at most {MAX_DEPTH} allowed"}]) from None
    except ValueError as exc:
        raise BodyError([{"field": "body", "value": raw[:80].decode("utf-8", "replace"),
                          "reason": f"body is not JSON ({exc}); send a JSON object"}]) from None
    if not isinstance(doc, dict):
        raise BodyError([{"field": "body", "value": doc if not isinstance(doc, list) else "[...]",
                          "reason": f"body must be a JSON object, got {type(doc).__name__}"}])
    return doc


def _validate(model: type[BaseModel], raw: bytes, context: dict | None) -> BaseModel:
    try:
        return model.model_validate_json(raw, context=context)
    except pydantic.ValidationError as exc:
        raise BodyError(_errors(exc)) from None


def parse_body(model: type[BaseModel], raw: bytes, *, context: dict | None = None,
               allow_empty: bool = False) -> BaseModel:
    """Validate a JSON body against ``model``; raises :class:`BodyError` naming field and value."""
    _json_object(raw, allow_empty)
    return _validate(model, raw if raw.strip() else b"{}", context)


#: Key of a console request field's JSON schema marking it as a reference to a finished run
#: (``Field(json_schema_extra={"twin_run": {"kind": "flood_forecast", "field": "flood"}})``).
RUN_REF_KEY = "twin_run"


def run_refs(form: type[BaseModel]) -> dict[str, dict[str, str]]:
    """The fields of a console request that name a finished run: ``{field: {"kind", "field"}}``.

    Such a field holds the id of a finished run of ``kind`` (the form offers the console's finished
    runs of that kind); the console hands the model, in the request's ``field``, the path of that
    run's main output instead, so no file path ever travels in a console request. ``field`` may be
    the marked field itself (a ``str`` path field of the model: the form sends a run id there) or
    another field of the full request (the form's field is then an ``int`` the request lacks).
    """
    out = {}
    for name, f in form.model_fields.items():
        extra = f.json_schema_extra
        ref = extra.get(RUN_REF_KEY) if isinstance(extra, dict) else None
        if isinstance(ref, dict) and isinstance(ref.get("kind"), str) and isinstance(ref.get("field"), str):
            out[name] = {"kind": ref["kind"], "field": ref["field"]}
    return out


def _resolve_refs(doc: dict[str, Any], refs: dict[str, dict[str, str]], resolve_run: Any
                  ) -> tuple[dict[str, Any], dict[str, str]]:
    """Replace the run ids of ``doc`` by their runs' output paths: (run ids sent, paths for other fields)."""
    ids: dict[str, Any] = {}
    elsewhere: dict[str, str] = {}
    for fname, ref in refs.items():
        if doc.get(fname) is None:
            continue
        rid = doc[fname]
        ids[fname] = rid
        if not isinstance(rid, int) or isinstance(rid, bool):
            raise BodyError([{"field": fname, "value": rid,
                              "reason": f"give the id of a finished {ref['kind']} run (a whole number)"}])
        if resolve_run is None:
            raise BodyError([{"field": fname, "value": rid, "reason": "this console cannot resolve run ids"}])
        try:
            path = str(resolve_run(ref["kind"], rid))
        except LookupError as exc:
            raise BodyError([{"field": fname, "value": rid, "reason": str(exc)}]) from None
        if ref["field"] == fname:
            doc[fname] = path
        else:
            elsewhere[fname] = path
    return ids, elsewhere


def parse_run_body(raw: bytes, *, context: dict | None = None,
                   resolve_run: Any = None) -> tuple[Any, BaseModel, dict[str, Any]]:
    """``POST /api/runs``: ``{"kind": name, ...the kind's console request}`` -> (RunKind, full request, form).

    Without ``kind`` the first registered kind is meant (built-ins are discovered first). A field
    that names a run (:func:`run_refs`) carries a run id, which ``resolve_run(kind, run_id)`` turns
    into the path of that run's output (raising ``LookupError`` with the reason for a run that is
    not a finished run of that kind). ``form`` is what the form sent, validated, run ids as sent
    (what the run list shows). Raises :class:`BodyError` naming the field and the value.
    """
    from twin.errors import ValidationError
    from twin.runkinds import get_kind, kinds

    doc = _json_object(raw, False)
    name = doc.pop("kind", None)
    if name is None:
        known = kinds()
        if not known:
            raise BodyError([{"field": "kind", "value": None, "reason": "no run kind is registered"}])
        kind = known[0]
    else:
        try:
            kind = get_kind(name) if isinstance(name, str) else None
        except ValidationError:
            kind = None
        if kind is None:
            raise BodyError([{"field": "kind", "value": name,
                              "reason": f"unknown run kind; choose from {[k.name for k in kinds()]}"}])
    refs = run_refs(kind.form_request)
    if not refs:
        form = _validate(kind.form_request, raw if name is None else json.dumps(doc).encode(), context)
        return kind, kind.validate(form, context=context, console=True), form.model_dump()
    ids, elsewhere = _resolve_refs(doc, refs, resolve_run)
    form = _validate(kind.form_request, json.dumps(doc).encode(), context)
    params = form.model_dump()
    for fname, path in elsewhere.items():
        params.pop(fname)
        params[refs[fname]["field"]] = path
    for fname in refs:  # a form field the full request lacks (an id left unset) is not the model's
        if fname not in kind.request.model_fields:
            params.pop(fname, None)
    try:
        req = kind.request.model_validate(params, context=context)
    except pydantic.ValidationError as exc:
        raise BodyError(_errors(exc)) from None
    return kind, req, {**form.model_dump(), **ids}


__all__ = ["ACTIONS", "MAX_DEPTH", "RUN_REF_KEY", "UNIT_TYPES", "AckRequest", "BodyError", "DispatchAction",
           "EvacuateAction", "parse_action", "parse_body", "parse_run_body", "read_body", "run_refs"]
