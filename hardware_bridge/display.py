"""The units operators read, per sensor kind: one table for the console, plots, alerts and reports.

The bridge stores every reading in SI (``schema.KINDS``: a CO reading of 8 ppm is stored as
``8e-6`` mol/mol, a heat detector's 25 °C as ``298.15 K``). People read ppm, %LEL, % vol O₂,
°C, mm, mm/h and mm of displacement. :data:`DISPLAY` gives, for each kind and stored SI unit,
the unit shown and how many decimals; the alert thresholds of ``fusion/alerts.toml`` are
written in the same units (each kind's metric), so a value and its threshold read alike.

Conversions are affine (``shown = scale * si + offset``), worked out by pint once per entry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

from twin.units import affine


@dataclass(frozen=True)
class DisplayUnit:
    """How one (kind, SI unit) pair is shown.

    Attributes
    ----------
    kind, si_unit : str
        The sensor kind and the SI unit the bridge stores (``schema.QuantitySpec.si_unit``).
    unit : str
        The unit shown to people (``"ppm"``, ``"°C"``, ``"% vol"``).
    pint_unit : str
        The same unit spelled for pint (``"ppm"``, ``"degC"``, ``"percent"``).
    decimals : int
        Digits after the decimal point: the resolution operators work to.
    """

    kind: str
    si_unit: str
    unit: str
    pint_unit: str
    decimals: int

    @cached_property
    def _affine(self) -> tuple[float, float]:
        return affine(_PINT_SI.get(self.si_unit, self.si_unit), self.pint_unit)

    @property
    def scale(self) -> float:
        return self._affine[0]

    @property
    def offset(self) -> float:
        return self._affine[1]

    def value(self, si: float) -> float:
        """``si`` (in :attr:`si_unit`) in the shown unit."""
        return self.scale * si + self.offset

    def to_si(self, shown: float) -> float:
        """A value in the shown unit back to SI."""
        return (shown - self.offset) / self.scale

    def format(self, si: float | None, unit: bool = True) -> str:
        """``si`` as people read it: ``"8.0 ppm"``; ``"–"`` for a missing or non-finite value."""
        if si is None or not math.isfinite(si):
            return "–"
        text = f"{self.value(si):.{self.decimals}f}"
        if text.startswith("-") and float(text) == 0.0:
            text = text[1:]
        return f"{text} {self.unit}" if unit else text

    def as_json(self) -> dict:
        """The entry for a page's script: ``shown = scale * si + offset`` to ``decimals``."""
        return {"kind": self.kind, "si_unit": self.si_unit, "unit": self.unit,
                "scale": self.scale, "offset": self.offset, "decimals": self.decimals}


# pint spellings of the SI units the bridge stores
_PINT_SI = {"1": "dimensionless", "1/m": "1/m"}

DISPLAY: dict[tuple[str, str], DisplayUnit] = {
    (d.kind, d.si_unit): d
    for d in (
        DisplayUnit("rain_gauge", "m", "mm", "mm", 1),
        DisplayUnit("rain_gauge", "m/s", "mm/h", "mm/h", 1),
        DisplayUnit("water_level", "m", "m", "m", 2),
        DisplayUnit("gnss_displacement", "m", "mm", "mm", 1),
        DisplayUnit("inclinometer", "rad", "mrad", "mrad", 2),
        DisplayUnit("gas_o2", "1", "% vol", "percent", 1),
        DisplayUnit("gas_h2s", "1", "ppm", "ppm", 1),
        DisplayUnit("gas_co", "1", "ppm", "ppm", 0),
        DisplayUnit("gas_lel", "1", "%LEL", "percent", 0),
        DisplayUnit("smoke", "1/m", "%/m", "percent/m", 1),
        DisplayUnit("heat", "K", "°C", "degC", 1),
    )
}


def display_unit(kind: str, si_unit: str | None = None) -> DisplayUnit | None:
    """The display entry of ``kind`` (and ``si_unit`` when the kind has several quantities).

    ``None`` for event kinds and for a (kind, unit) pair outside the table (shown as stored).
    """
    if si_unit is not None:
        return DISPLAY.get((str(kind), str(si_unit)))
    for (k, _), d in DISPLAY.items():
        if k == str(kind):
            return d
    return None


def format_reading(kind: str, si_value: float | None, si_unit: str | None) -> str:
    """A stored reading as people read it (falls back to ``"<value> <SI unit>"``)."""
    d = display_unit(kind, si_unit)
    if d is not None:
        return d.format(si_value)
    if si_value is None or not math.isfinite(si_value):
        return "–"
    return f"{si_value:.4g} {si_unit or ''}".strip()


def table_json() -> list[dict]:
    """Every entry as JSON for pages (the console formats readings with it)."""
    return [d.as_json() for d in DISPLAY.values()]
