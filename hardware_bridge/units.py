"""Unit normalisation to SI with pint, keeping the original value and unit.

Every accepted input spelling of a kind (``KINDS[kind].quantities[i].accepted``)
is mapped to a pint expression (``_PINT_SPELLING``); the conversion to the
quantity's SI unit is affine, ``si = scale * value + offset`` (offset non-zero
only for temperatures in °C/°F), and ``(scale, offset)`` is computed once per
(kind, unit) by pint from two points and cached, so the hot path is one
multiply-add. A spelling not accepted for the kind is rejected with a message
that names the field, the value and the accepted units — this is what catches a
rain gauge reporting in °C.

Note that ``%`` means different things per kind (volume fraction for O2, mole
fraction for H2S/CO, fraction of LEL for ``gas_lel``); it always maps to 0.01.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from hardware_bridge.schema import KINDS, Kind, QuantitySpec
from twin.errors import ValidationError
from twin.units import affine

# input spelling -> pint expression
_PINT_SPELLING: dict[str, str] = {
    "mm": "millimeter",
    "cm": "centimeter",
    "m": "meter",
    "in": "inch",
    "mm/h": "millimeter / hour",
    "mm/min": "millimeter / minute",
    "m/s": "meter / second",
    "in/h": "inch / hour",
    "rad": "radian",
    "mrad": "milliradian",
    "deg": "degree",
    "°": "degree",
    "arcsec": "arcsecond",
    "%": "percent",
    "%vol": "percent",
    "percent": "percent",
    "%LEL": "percent",
    "1": "dimensionless",
    "mol/mol": "mole / mole",
    "ppm": "ppm",
    "ppb": "ppb",
    "%/m": "percent / meter",
    "1/m": "1 / meter",
    "K": "kelvin",
    "degC": "degree_Celsius",
    "°C": "degree_Celsius",
    "℃": "degree_Celsius",
    "degF": "degree_Fahrenheit",
    "°F": "degree_Fahrenheit",
}
_PINT_SI = {"m": "meter", "m/s": "meter / second", "rad": "radian", "1": "dimensionless",
            "1/m": "1 / meter", "K": "kelvin"}


@dataclass(frozen=True)
class Conversion:
    """Affine map of one input unit to SI: ``si = scale * value + offset``."""

    quantity: QuantitySpec
    unit: str
    scale: float
    offset: float

    def __call__(self, value: float) -> float:
        return self.scale * value + self.offset


@lru_cache(maxsize=512)
def _conversion(kind: Kind, unit: str) -> Conversion | None:
    spec = KINDS[kind]
    q = spec.quantity_for(unit)
    if q is None:
        return None
    scale, offset = affine(_PINT_SPELLING[unit], _PINT_SI[q.si_unit])
    return Conversion(q, unit, scale, offset)


def warm_up() -> None:
    """Load pint and compute every (kind, unit) conversion now (~1 s), not on the first message."""
    for kind, spec in KINDS.items():
        for unit in spec.accepted_units:
            _conversion(kind, unit)


def conversion(kind: Kind | str, unit: object) -> Conversion:
    """The conversion of ``unit`` to SI for ``kind``.

    Raises
    ------
    ValidationError
        If ``unit`` is missing or not an accepted unit of the kind's quantities
        (e.g. ``"°C"`` for a rain gauge).
    """
    spec = KINDS[Kind(kind)]
    if spec.is_event:
        raise ValidationError(f"kind {spec.kind.value!r} reports events, not quantities with units")
    if unit is None or unit == "":
        raise ValidationError(
            f"field 'unit' is missing for kind {spec.kind.value!r}; "
            f"give one of {', '.join(spec.accepted_units)}"
        )
    if not isinstance(unit, str):
        raise ValidationError(f"field 'unit' = {unit!r} is not a string")
    conv = _conversion(spec.kind, unit) if unit in _PINT_SPELLING else None
    if conv is None:
        whats = " or ".join(q.what for q in spec.quantities)
        raise ValidationError(
            f"field 'unit' = {unit[:32]!r} is not a unit of {whats} accepted for kind "
            f"{spec.kind.value!r}; give one of {', '.join(spec.accepted_units)}"
        )
    return conv


def to_si(kind: Kind | str, value: float, unit: str, field: str = "result") -> tuple[float, str]:
    """Convert ``value`` in ``unit`` to the SI unit of ``kind`` and check its plausible range.

    Returns
    -------
    (si_value, si_unit)

    Raises
    ------
    ValidationError
        Unknown/incompatible unit, non-finite value, or a value outside the
        kind's plausible range; the message names ``field`` and the value.
    """
    conv = conversion(kind, unit)
    si = conv(value)
    q = conv.quantity
    if not (q.lo <= si <= q.hi):  # also false for NaN
        raise ValidationError(
            f"field {field!r} = {value!r} {unit} ({si:.6g} {q.si_unit}) is outside the plausible "
            f"range of {q.what} for kind {Kind(kind).value!r}: [{q.lo:.6g}, {q.hi:.6g}] {q.si_unit}; "
            "check the sensor and its unit"
        )
    return si, q.si_unit
