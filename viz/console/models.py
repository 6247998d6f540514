"""Validated request bodies of the console's actions (pydantic v2, strict, no extra fields).

Errors become ``422 {"error": "validation", "field", "value", "reason", "errors": [...]}``
(one item per problem, each naming the field and the value sent).
"""

from __future__ import annotations

import json
from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from physics.flood_city import STORMS

MAX_BODY_BYTES = 64 * 1024
MAX_HOURS = 24.0
MIN_RESOLUTION_M = 30.0
MAX_RESOLUTION_M = 2000.0


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


class RunRequest(_Strict):
    """``POST /api/runs``: a flood forecast over the city (or some districts).

    Attributes
    ----------
    storm : str
        A design storm of :data:`physics.flood_city.STORMS` (``"2023-09-07"``).
    hours : float
        Storm length and simulated time, 0 < hours <= 24.
    resolution : float
        Grid cell size (m), 30 <= resolution <= 2000.
    districts : list of str or None
        District names/adcodes of the city (None: the whole city).
    """

    storm: str = STORMS[0]
    hours: float = Field(gt=0.0, le=MAX_HOURS, allow_inf_nan=False)
    resolution: float = Field(default=90.0, ge=MIN_RESOLUTION_M, le=MAX_RESOLUTION_M,
                              allow_inf_nan=False)
    districts: list[str] | None = Field(default=None, min_length=1, max_length=20)

    @field_validator("storm")
    @classmethod
    def _storm(cls, v: str) -> str:
        if v not in STORMS:
            raise ValueError(f"unknown storm; choose one of {list(STORMS)}")
        return v

    @field_validator("districts")
    @classmethod
    def _districts(cls, v: list[str] | None, info: ValidationInfo) -> list[str] | None:
        if v is None:
            return None
        known = (info.context or {}).get("districts")
        out = []
        for name in v:
            n = name.strip()
            if not n or len(n) > 64:
                raise ValueError(f"district name {name!r} must be 1-64 characters")
            if known is not None and n.casefold() not in known:
                raise ValueError(f"unknown district {name!r}; choose from {sorted(set(known.values()))}")
            out.append(known[n.casefold()] if known is not None else n)
        return list(dict.fromkeys(out))


class AckRequest(_Strict):
    """``POST /api/alerts/{id}/ack`` (body optional): who acknowledges, and a note."""

    by: str = Field(default="operator", min_length=1, max_length=64, pattern=r"^\S(.*\S)?$")
    note: str = Field(default="", max_length=500)


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


def parse_body(model: type[BaseModel], raw: bytes, *, context: dict | None = None,
               allow_empty: bool = False) -> BaseModel:
    """Validate a JSON body against ``model``; raises :class:`BodyError` naming field and value."""
    if len(raw) > MAX_BODY_BYTES:
        raise BodyError([{"field": "body", "value": f"{len(raw)} bytes",
                          "reason": f"body exceeds {MAX_BODY_BYTES} bytes"}], status=413)
    if allow_empty and not raw.strip():
        raw = b"{}"
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise BodyError([{"field": "body", "value": raw[:80].decode("utf-8", "replace"),
                          "reason": f"body is not JSON ({exc}); send a JSON object"}]) from None
    if not isinstance(doc, dict):
        raise BodyError([{"field": "body", "value": doc if not isinstance(doc, list) else "[...]",
                          "reason": f"body must be a JSON object, got {type(doc).__name__}"}])
    try:
        return model.model_validate_json(raw, context=context)
    except pydantic.ValidationError as exc:
        raise BodyError(_errors(exc)) from None


__all__ = ["AckRequest", "BodyError", "RunRequest", "parse_body", "read_body"]
