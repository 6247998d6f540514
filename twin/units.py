"""Conversion of field values between unit strings, with pint.

Components declare units in landlab's short form (``"m"``, ``"m2/s"``,
``"mm/h"``, ``"1"``) and the twin's fields in CF's (``"m s-1"``); pint reads
neither exponent form, so :func:`pint_expression` rewrites a unit glued to
its exponent (``m2``, ``s-1``) as ``m**2``, ``s**-1`` first. Conversions are
affine, ``to = scale * from + offset`` (offset non-zero only for temperatures
in °C/°F), worked out once per pair of unit strings by pint from two points.
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np

from twin.errors import ValidationError

_DIMENSIONLESS = {"", "1", "-"}
# a unit name followed directly by an integer exponent: "m2", "s-1" (but not "1/m" or "m^(1/3)")
_GLUED_EXPONENT = re.compile(r"(?<![\w^])([A-Za-z]+)(-?\d+)\b")


@lru_cache(maxsize=1)
def registry():  # -> pint.UnitRegistry
    """The project's one pint registry (created on first use: loading takes ~0.3 s).

    It adds ``ppb`` (pint defines ppm but not ppb), which gas sensors report in.
    """
    import pint

    ureg = pint.UnitRegistry()
    if "ppb" not in ureg:
        ureg.define("ppb = 1e-9 = parts_per_billion")
    return ureg


def affine(src: str, dst: str) -> tuple[float, float]:
    """``(scale, offset)`` with ``dst = scale * src + offset``, for two pint unit expressions.

    Worked out by pint from two points (0 and 1), so temperature offsets are
    kept. Raises pint's own errors for unknown or incompatible units.
    """
    ureg = registry()
    s, d = ureg.Unit(src), ureg.Unit(dst)
    zero, one = (ureg.Quantity(v, s).to(d).magnitude for v in (0.0, 1.0))
    return float(one - zero), float(zero)


def pint_expression(units: str) -> str:
    """``units`` as pint reads it: ``"m2/s"`` -> ``"m**2/s"``, ``"1"`` -> ``"dimensionless"``."""
    text = units.strip()
    if text in _DIMENSIONLESS:
        return "dimensionless"
    return _GLUED_EXPONENT.sub(r"\1**\2", text)


@lru_cache(maxsize=256)
def conversion(from_units: str, to_units: str) -> tuple[float, float]:
    """``(scale, offset)`` with ``to = scale * from + offset``.

    Raises
    ------
    ValidationError
        When pint does not know a unit or the two measure different things.
    """
    import pint

    try:
        return affine(pint_expression(from_units), pint_expression(to_units))
    except pint.errors.DimensionalityError as exc:
        raise ValidationError(
            f"units {from_units!r} cannot be converted to {to_units!r}: they measure different "
            "quantities"
        ) from exc
    except (pint.errors.UndefinedUnitError, AttributeError, TypeError, ValueError) as exc:
        raise ValidationError(
            f"units {from_units!r} or {to_units!r} are not units pint knows ({exc}); "
            "write them like 'm', 'mm/h', 'm2/s' or 'm s-1'"
        ) from exc


def convert(values: np.ndarray, from_units: str, to_units: str, *, what: str) -> np.ndarray:
    """``values`` (in ``from_units``) in ``to_units``, as float64.

    Parameters
    ----------
    values : array-like
        Numbers in ``from_units``.
    from_units, to_units : str
        Unit strings (see :func:`pint_expression`).
    what : str
        The field's name, for error messages.

    Raises
    ------
    ValidationError
        Naming ``what`` and the units, when they cannot be converted.
    """
    try:
        a = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{what}: values {values!r:.80} are not numbers") from exc
    if from_units.strip() == to_units.strip():
        return a
    try:
        scale, offset = conversion(from_units, to_units)
    except ValidationError as exc:
        raise ValidationError(f"{what}: {exc}") from exc
    return a * scale + offset if offset else a * scale
