"""The contract every physics component follows (after landlab's Component).

A component declares its fields at class level (name, units, intent, where
they live, doc), so callers can inspect it without building one, and
advances with ``step(dt)``, sub-stepping internally under its own stability
limit and returning the simulated time elapsed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from twin.errors import ValidationError


@dataclass(frozen=True)
class FieldSpec:
    """One declared input or output of a component."""

    units: str
    intent: Literal["in", "out", "inout"]
    doc: str
    at: Literal["cell", "face", "grid", "point"] = "cell"
    optional: bool = False
    dtype: str = "float64"


class Component:
    """Base class: declared fields plus ``step(dt) -> elapsed seconds``."""

    name: ClassVar[str] = "Component"
    cite_as: ClassVar[str] = ""
    fields: ClassVar[dict[str, FieldSpec]] = {}

    @classmethod
    def input_var_names(cls) -> tuple[str, ...]:
        return tuple(k for k, f in cls.fields.items() if f.intent in ("in", "inout"))

    @classmethod
    def output_var_names(cls) -> tuple[str, ...]:
        return tuple(k for k, f in cls.fields.items() if f.intent in ("out", "inout"))

    @classmethod
    def var_units(cls, name: str) -> str:
        try:
            return cls.fields[name].units
        except KeyError:
            raise ValidationError(f"{cls.name} has no field {name!r}; fields: {sorted(cls.fields)}") from None

    def step(self, dt: float) -> float:  # pragma: no cover - abstract
        raise NotImplementedError


def require_positive(value: float, name: str) -> float:
    """``value`` as float if > 0, else a ValidationError naming ``name`` and the value."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValidationError(f"{name}={value!r} must be a positive number") from None
    if not v > 0 or v != v or v == float("inf"):
        raise ValidationError(f"{name}={value!r} must be a positive finite number")
    return v


def require_range(value: float, name: str, lo: float, hi: float) -> float:
    """``value`` as float if lo <= value <= hi, else a ValidationError naming it."""
    v = float(value)
    if not lo <= v <= hi:
        raise ValidationError(f"{name}={value!r} must lie in [{lo}, {hi}]")
    return v
