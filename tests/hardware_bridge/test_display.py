"""The display-unit table: every stored quantity has a unit people read, converted exactly."""

import math

import pytest

from hardware_bridge.display import DISPLAY, display_unit, format_reading, table_json
from hardware_bridge.schema import KINDS
from hardware_bridge.units import to_si


def test_every_stored_quantity_has_a_display_unit():
    for kind, spec in KINDS.items():
        for q in spec.quantities:
            assert (kind.value, q.si_unit) in DISPLAY, (kind.value, q.si_unit)


@pytest.mark.parametrize(
    "kind, value, unit, shown",
    [
        # the faults of the issue: what the console showed in SI, and what an operator reads
        ("gas_co", 8.0, "ppm", "8 ppm"),
        ("heat", 25.0, "°C", "25.0 °C"),
        ("rain_gauge", 0.1, "mm", "0.1 mm"),
        ("gas_lel", 12.0, "%LEL", "12 %LEL"),
        ("gas_o2", 20.9, "%", "20.9 % vol"),
        ("gas_h2s", 10.0, "ppm", "10.0 ppm"),
        ("rain_gauge", 36.0, "mm/h", "36.0 mm/h"),
        ("gnss_displacement", 12.5, "mm", "12.5 mm"),
        ("inclinometer", 1.5, "mrad", "1.50 mrad"),
        ("smoke", 2.0, "%/m", "2.0 %/m"),
    ],
)
def test_round_trip_through_si(kind, value, unit, shown):
    # the bridge's own normalisation to SI, then the display table back: the operator's number
    si, si_unit = to_si(kind, value, unit)
    assert format_reading(kind, si, si_unit) == shown


def test_display_inverse_and_json():
    d = display_unit("heat", "K")
    assert d.to_si(d.value(300.0)) == pytest.approx(300.0, abs=1e-9)
    rows = {(r["kind"], r["si_unit"]): r for r in table_json()}
    r = rows[("heat", "K")]
    assert r["scale"] * 273.15 + r["offset"] == pytest.approx(0.0, abs=1e-9)


def test_missing_and_unknown():
    assert format_reading("gas_co", None, "1") == "–"
    assert format_reading("gas_co", math.nan, "1") == "–"
    assert display_unit("das_event") is None
    assert format_reading("something", 1.5, "Pa") == "1.5 Pa"
    # a zero-drift reading just below zero is shown as 0, not "-0"
    assert format_reading("gas_lel", -0.004, "1") == "0 %LEL"
