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


# ------------------------------------------------------------ the alert thresholds read alike
from hardware_bridge.fusion import Reading  # noqa: E402
from hardware_bridge.fusion.alerts import (  # noqa: E402
    METRIC_UNITS,
    METRICS,
    AlertEngine,
    load_config,
)

# a metric that is a rate or an angle is not an amount of the reading: its unit is derived
DERIVED = {"rate_mm_per_day": "mm/d", "rate_mrad_per_day": "mrad/d", "tangent_angle_deg": "°"}


@pytest.mark.parametrize("kind", sorted(METRICS))
def test_every_metric_is_in_the_kinds_display_unit(kind):
    """Each kind's threshold metrics (the numbers of alerts.toml) are in the unit the console shows,
    so a reading and its threshold can never drift apart (e.g. ppm against ppm, °C against °C)."""
    shown = {d.unit for (k, _), d in DISPLAY.items() if k == kind}
    assert shown, kind
    for metric in METRICS[kind]:
        if metric in DERIVED:
            assert METRIC_UNITS[metric] == DERIVED[metric]
            assert METRIC_UNITS[metric].split("/")[0] in shown | {"°"}
        else:
            assert METRIC_UNITS[metric] in shown, (kind, metric, METRIC_UNITS[metric], shown)


def test_forecast_metrics_are_in_hours():
    """Forecast metrics (model outputs, e.g. the inverse-velocity time to failure) are kept out of
    METRICS because they are not amounts of the reading; their unit is hours, checked here."""
    from hardware_bridge.fusion.alerts import FORECAST_METRICS

    assert FORECAST_METRICS
    for ms in FORECAST_METRICS.values():
        assert all(METRIC_UNITS[m] == "h" for m in ms)


def test_every_configured_rule_has_a_metric_unit():
    eng = AlertEngine(load_config())
    for kind in METRICS:
        for rule in eng.rules_for(kind):
            assert rule.metric in METRIC_UNITS


@pytest.mark.parametrize(
    "kind, value, unit, want",
    [
        pytest.param("gas_co", 35.0, "ppm", "gas_co cs-01: 35 ppm ≥ 34.4 ppm (CO at 200 % of the PC-TWA (二级报警))",
                     id="co-ppm"),
        pytest.param("heat", 60.0, "°C", "heat cs-01: 60.0 °C ≥ 54 °C (class A1 static response temperature "
                     "reached)", id="heat-degC"),
        pytest.param("gas_lel", 52.0, "%LEL", "gas_lel cs-01: 52 %LEL ≥ 50 %LEL (combustible gas "
                     "second-level alarm (二级报警))", id="lel"),
        pytest.param("gas_o2", 18.0, "%", "gas_o2 cs-01: 18.0 % vol < 19.5 % vol (oxygen deficient (缺氧))",
                     id="o2-below"),
        pytest.param("smoke", 9.0, "%/m", "smoke cs-01: 9.0 %/m ≥ 8 %/m (smoke alarm)", id="smoke"),
    ],
)
def test_alert_message_reads_in_the_display_unit(kind, value, unit, want):
    # the reading goes through the bridge's SI normalisation, as stored readings do
    si, si_unit = to_si(kind, value, unit)
    (ev,) = AlertEngine().evaluate(Reading(f"cs-01/{kind}", kind, 0.0, si, unit=si_unit, station="cs-01"))
    assert ev.message == want
    assert ev.data["unit"] == display_unit(kind, si_unit).unit


def test_rain_alert_names_its_window_in_mm():
    eng = AlertEngine()
    rs = [Reading("RG1/rain_gauge", "rain_gauge", 600.0 * k, 0.0125, unit="m", station="RG1")
          for k in range(1, 5)]  # 12.5 mm every 10 min: 25 mm at 20 min, 50 mm at 40 min
    messages = [e.message for e in eng.evaluate(rs)]
    assert "rain_gauge RG1: 25.0 mm over 1 h ≥ 20 mm (short-duration heavy rain (短时强降水))" in messages
    assert messages[-1].startswith("rain_gauge RG1: 50.0 mm over 3 h ≥ 50 mm (rainstorm orange")


def test_rate_alert_names_its_metric():
    eng = AlertEngine()
    rs = [Reading("GN1/gnss_displacement", "gnss_displacement", 3600.0 * h, 0.0002 * h, unit="m", station="GN1")
          for h in range(0, 25)]  # 0.2 mm/h = 4.8 mm/d: advisory (2 mm/d)
    ev = [e for e in eng.evaluate(rs) if e.kind == "threshold_crossed"]
    assert ev[0].message.startswith("gnss_displacement GN1: rate_mm_per_day ")
    assert " mm/d over 24 h ≥ 2 mm/d (deformation rate elevated)" in ev[0].message
