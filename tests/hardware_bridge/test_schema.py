"""Wire models, the kinds table and unit normalisation (hardware_bridge.schema / units).

Expected conversions follow from unit definitions: 0 °C = 273.15 K and
1 °F = 5/9 K (SI Brochure, 9th ed., 2019, §2.3.4 and NIST SP 811 App. B.8);
1 inch = 25.4 mm exactly (International Yard and Pound Agreement 1959);
ppm = 1e-6, ppb = 1e-9 (mole fraction), % = 1e-2.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import pydantic
import pytest

from hardware_bridge import units
from hardware_bridge.schema import (
    ALARM_KINDS,
    KINDS,
    OBS_SUBSCRIPTION,
    DasEventResult,
    Datastream,
    Kind,
    Observation,
    ObservationBatch,
    Status,
    datastream_id,
    encode,
    obs_topic,
    status_topic,
)
from twin.errors import ValidationError


def test_every_kind_has_a_spec_and_every_accepted_unit_converts():
    assert set(KINDS) == set(Kind)
    units.warm_up()  # raises if pint cannot parse an accepted spelling
    for kind, spec in KINDS.items():
        if spec.is_event:
            assert spec.quantities == ()
            continue
        for q in spec.quantities:
            assert q.lo < q.hi
            for u in q.accepted:
                conv = units.conversion(kind, u)
                assert conv.quantity is q
                assert conv.scale > 0 and math.isfinite(conv.offset)


def test_alarm_kinds_are_the_life_safety_detectors():
    assert ALARM_KINDS == {
        "gas_o2", "gas_h2s", "gas_co", "gas_lel", "smoke", "heat", "das_event",
        "petrol_video_event",
    }


@pytest.mark.parametrize(
    ("kind", "value", "unit", "si", "si_unit"),
    [
        ("rain_gauge", 12.5, "mm", 0.0125, "m"),
        ("rain_gauge", 1.0, "in", 0.0254, "m"),
        ("rain_gauge", 36.0, "mm/h", 1e-5, "m/s"),
        ("water_level", 250.0, "cm", 2.5, "m"),
        ("gnss_displacement", 3.0, "mm", 0.003, "m"),
        ("inclinometer", 90.0, "deg", math.pi / 2, "rad"),
        ("inclinometer", 5.0, "mrad", 0.005, "rad"),
        ("gas_o2", 20.9, "%vol", 0.209, "1"),
        ("gas_h2s", 10.0, "ppm", 1e-5, "1"),
        ("gas_h2s", 500.0, "ppb", 5e-7, "1"),
        ("gas_co", 25.0, "ppm", 2.5e-5, "1"),
        ("gas_lel", 10.0, "%LEL", 0.1, "1"),
        ("smoke", 4.0, "%/m", 0.04, "1/m"),
        ("heat", 57.0, "°C", 330.15, "K"),
        ("heat", 32.0, "degF", 273.15, "K"),
        ("heat", 300.0, "K", 300.0, "K"),
    ],
)
def test_to_si(kind, value, unit, si, si_unit):
    got, got_unit = units.to_si(kind, value, unit)
    assert got == pytest.approx(si, rel=1e-12, abs=1e-12)
    assert got_unit == si_unit


@pytest.mark.parametrize(
    ("kind", "unit", "needle"),
    [
        ("rain_gauge", "°C", "'°C'"),
        ("heat", "mm", "'mm'"),
        ("gas_o2", "%LEL", "'%LEL'"),  # % of LEL is not an O2 volume fraction
        ("water_level", "furlong", "'furlong'"),
        ("gas_h2s", None, "missing"),
        ("gas_h2s", "", "missing"),
    ],
)
def test_wrong_or_missing_unit_is_rejected_naming_field_and_value(kind, unit, needle):
    with pytest.raises(ValidationError) as err:
        units.to_si(kind, 1.0, unit)
    msg = str(err.value)
    assert "'unit'" in msg and needle in msg and kind in msg


def test_out_of_range_names_value_and_range():
    with pytest.raises(ValidationError, match=r"'result' = 9999\.0 .*plausible range"):
        units.to_si("water_level", 9999.0, "m")
    with pytest.raises(ValidationError, match="plausible range"):
        units.to_si("heat", -300.0, "°C")  # below absolute zero


def test_topics_and_datastream_ids():
    assert obs_topic("rain_gauge", "RG-01") == "sz/v1/rain_gauge/RG-01/obs"
    assert status_topic(Kind.HEAT, "T1.f3") == "sz/v1/heat/T1.f3/status"
    assert OBS_SUBSCRIPTION == "sz/v1/+/+/obs"
    assert datastream_id("RG-01", "rain_gauge") == "RG-01/rain_gauge"
    assert datastream_id("RG-01", "rain_gauge", "tipping") == "RG-01/rain_gauge/tipping"
    with pytest.raises(ValueError):
        obs_topic("thermometer", "X")


def _obs(**kw):
    base = {"datastream": "RG1/rain_gauge", "phenomenonTime": "2024-06-01T08:00:00+08:00",
            "result": 1.0, "unit": "mm"}
    base.update(kw)
    return base


def test_observation_model_is_strict():
    m = Observation.model_validate(_obs())
    assert m.phenomenonTime.utcoffset() == timedelta(hours=8)
    assert m.seq == 0
    bad = [
        _obs(phenomenonTime="2024-06-01T08:00:00"),  # naive
        _obs(phenomenonTime=1717200000),  # epoch number, not ISO text
        _obs(result=True),
        _obs(result="1.0"),
        _obs(result=float("nan")),
        _obs(seq=-1),
        _obs(seq=1.0),
        _obs(extra_field=1),
        _obs(datastream="has space/rain_gauge"),
    ]
    for doc in bad:
        with pytest.raises(pydantic.ValidationError):
            Observation.model_validate(doc)


def test_batch_status_datastream_and_event_models():
    b = ObservationBatch.model_validate(
        {"datastream": "RG1/rain_gauge", "unit": "mm", "components": ["phenomenonTime", "result"],
         "dataArray": [["2024-06-01T00:00:00Z", 1.0]]}
    )
    assert b.components == ["phenomenonTime", "result"]
    with pytest.raises(pydantic.ValidationError):
        ObservationBatch.model_validate({**b.model_dump(), "components": ["phenomenonTime", "colour"]})
    s = Status.model_validate({"state": "offline"})
    assert s.time is None
    with pytest.raises(pydantic.ValidationError):
        Status.model_validate({"state": "online", "battery": 87})  # battery is a fraction
    d = Datastream.model_validate(
        {"id": "RG1/rain_gauge", "thing_id": "RG1", "kind": "rain_gauge",
         "unitOfMeasurement": {"name": "millimetre", "symbol": "mm"},
         "observedProperty": {"name": "rainfall"}}
    )
    assert d.kind is Kind.RAIN_GAUGE
    ev = DasEventResult.model_validate({"position_m": 1200.0, "energy": 3.5, "class": "excavation"})
    assert ev.event_class == "excavation"
    with pytest.raises(pydantic.ValidationError):
        DasEventResult.model_validate({"position_m": -1.0, "energy": 3.5, "class": "excavation"})
    placed = DasEventResult.model_validate({"position_m": 10.0, "energy": 1.0, "class": "piling", "line": "1号线",
                                            "chainage_m": 5010.0, "lon": 114.05, "lat": 22.54, "inside_zone": True})
    assert placed.inside_zone is True and placed.lon == 114.05
    with pytest.raises(pydantic.ValidationError, match="give both or neither"):
        DasEventResult.model_validate({"position_m": 10.0, "energy": 1.0, "class": "piling", "lon": 114.05})


def test_encode_round_trips():
    m = Observation(
        datastream="RG1/rain_gauge",
        phenomenonTime=datetime(2024, 6, 1, 8, tzinfo=timezone(timedelta(hours=8))),
        result=2.5,
        unit="mm",
        seq=3,
    )
    raw = encode(m)
    assert b"resultTime" not in raw  # None fields left out
    back = Observation.model_validate_json(raw)
    assert back == m
    assert back.phenomenonTime.astimezone(UTC) == datetime(2024, 6, 1, tzinfo=UTC)
