"""parse_message: normalisation per kind, rejections with reasons, and fuzzing (never raises)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hardware_bridge.schema import KINDS, Kind
from hardware_bridge.validate import Accepted, Rejected, is_alarm_topic, parse_message, parse_topic
from twin.errors import ValidationError

RECV = datetime(2024, 6, 1, 0, 0, 30, tzinfo=UTC)
T0 = "2024-06-01T08:00:00+08:00"  # = 2024-06-01T00:00:00Z


def topic(kind: str, station: str = "S1", channel: str = "obs") -> str:
    return f"sz/v1/{kind}/{station}/{channel}"


def payload(kind: str, station: str = "S1", **kw) -> bytes:
    doc = {"datastream": f"{station}/{kind}", "phenomenonTime": T0}
    doc.update(kw)
    return json.dumps(doc).encode()


# one non-SI reading per quantity kind: (kind, value, unit, SI value, SI unit)
NON_SI = [
    ("rain_gauge", 7.5, "mm", 0.0075, "m"),
    ("water_level", 180.0, "cm", 1.8, "m"),
    ("gnss_displacement", 12.0, "mm", 0.012, "m"),
    ("inclinometer", 2.0, "deg", math.radians(2.0), "rad"),
    ("gas_o2", 20.9, "%", 0.209, "1"),
    ("gas_h2s", 12.0, "ppm", 1.2e-5, "1"),
    ("gas_co", 30.0, "ppm", 3.0e-5, "1"),
    ("gas_lel", 8.0, "%LEL", 0.08, "1"),
    ("smoke", 3.0, "%/m", 0.03, "1/m"),
    ("heat", 68.0, "°C", 341.15, "K"),
]


def test_non_si_covers_every_quantity_kind():
    assert {k for k, *_ in NON_SI} == {k.value for k, s in KINDS.items() if not s.is_event}


@pytest.mark.parametrize(("kind", "value", "unit", "si", "si_unit"), NON_SI)
def test_each_kind_normalised_to_si_keeping_original(kind, value, unit, si, si_unit):
    res = parse_message(topic(kind), payload(kind, result=value, unit=unit, seq=4), RECV)
    assert isinstance(res, Accepted), getattr(res, "reason", None)
    (o,) = res.observations
    assert o.value == pytest.approx(si, rel=1e-12)
    assert o.unit == si_unit
    assert (o.original_value, o.original_unit) == (value, unit)
    assert o.raw()["original"] == {"value": value, "unit": unit}
    assert o.datastream_id == f"S1/{kind}" and o.seq == 4
    assert o.phenomenon_time == datetime(2024, 6, 1, tzinfo=UTC)
    assert o.result_time == o.phenomenon_time  # default
    assert res.alarm == KINDS[Kind(kind)].alarm


def test_event_kinds():
    das = parse_message(
        topic("das_event", "L11"),
        payload("das_event", "L11", result={"position_m": 5300.5, "energy": 12.0, "class": "excavation"}),
        RECV,
    )
    assert isinstance(das, Accepted)
    (o,) = das.observations
    assert o.value is None and o.unit == ""
    assert o.event == {"position_m": 5300.5, "energy": 12.0, "class": "excavation"}
    assert o.raw()["event"]["class"] == "excavation"
    pv = parse_message(
        topic("petrol_video_event", "PS7"),
        payload("petrol_video_event", "PS7",
                result={"station": "PS7", "violation": "smoking", "confidence": 0.93}),
        RECV,
    )
    assert isinstance(pv, Accepted) and pv.alarm
    bad = parse_message(
        topic("petrol_video_event", "PS7"),
        payload("petrol_video_event", "PS7",
                result={"station": "PS7", "violation": "dancing", "confidence": 0.93}),
        RECV,
    )
    assert isinstance(bad, Rejected) and "violation" in bad.reason and "dancing" in bad.reason
    num = parse_message(topic("das_event", "L11"), payload("das_event", "L11", result=3.0), RECV)
    assert isinstance(num, Rejected) and "must be an object" in num.reason


def test_batch_data_array_gives_every_row():
    rows = [[f"2024-06-01T00:{m:02d}:00Z", 0.5 * m, m] for m in range(60)]
    doc = {"datastream": "S1/rain_gauge/tb", "unit": "mm",
           "components": ["phenomenonTime", "result", "seq"], "dataArray": rows}
    res = parse_message(topic("rain_gauge"), json.dumps(doc).encode(), RECV)
    assert isinstance(res, Accepted)
    assert len(res.observations) == 60
    assert [o.seq for o in res.observations] == list(range(60))
    assert res.observations[10].value == pytest.approx(0.005)
    assert res.observations[10].datastream_id == "S1/rain_gauge/tb"
    # a single bad row rejects the batch and names the row and the field
    rows[17][1] = -3.0
    res = parse_message(topic("rain_gauge"), json.dumps({**doc, "dataArray": rows}).encode(), RECV)
    assert isinstance(res, Rejected)
    assert "dataArray[17].result" in res.reason and "-3.0" in res.reason
    rows[17] = ["2024-06-01T00:17:00", 1.0, 17]
    res = parse_message(topic("rain_gauge"), json.dumps({**doc, "dataArray": rows}).encode(), RECV)
    assert isinstance(res, Rejected) and "dataArray[17].phenomenonTime" in res.reason
    assert "naive" in res.reason


def _r(topic_: str, raw: bytes) -> str:
    res = parse_message(topic_, raw, RECV)
    assert isinstance(res, Rejected), res
    assert res.payload == raw and res.topic == topic_ and res.received_at == RECV
    return res.reason


def test_malformed_messages_rejected_with_field_and_value():
    rg = topic("rain_gauge")
    assert "not valid JSON" in _r(rg, b'{"datastream": "S1/rain_gauge", ')
    assert "not UTF-8" in _r(rg, b"\xff\xfe{}")
    assert "not an object" in _r(rg, b"[1, 2]")
    reason = _r(rg, json.dumps({"datastream": "S1/rain_gauge", "result": 1.0, "unit": "mm"}).encode())
    assert "'phenomenonTime' is missing" in reason
    assert "'result' is missing" in _r(rg, payload("rain_gauge", unit="mm"))
    assert "'unit' is missing" in _r(rg, payload("rain_gauge", result=1.0))
    nan = b'{"datastream": "S1/rain_gauge", "phenomenonTime": "2024-06-01T00:00:00Z", "result": NaN, "unit": "mm"}'
    assert "NaN" in _r(rg, nan)
    inf = nan.replace(b"NaN", b"Infinity")
    assert "Infinity" in _r(rg, inf)
    big = nan.replace(b"NaN", b"1e999")
    assert "1e999" in _r(rg, big)
    reason = _r(rg, payload("rain_gauge", result=3.0, unit="°C"))
    assert "'unit' = '°C'" in reason and "rain_gauge" in reason
    reason = _r(rg, payload("rain_gauge", result=1.0, unit="mm", phenomenonTime="2024-06-01T08:00:00"))
    assert "'phenomenonTime' = '2024-06-01T08:00:00'" in reason and "naive" in reason
    reason = _r(rg, payload("rain_gauge", result=1.0, unit="mm", phenomenonTime="yesterday"))
    assert "'yesterday'" in reason
    reason = _r(topic("water_level"), payload("water_level", result=-9999.0, unit="m"))
    assert "-9999.0" in reason and "plausible range" in reason
    reason = _r(rg, payload("rain_gauge", result="1.0", unit="mm"))
    assert "'result' = '1.0'" in reason
    reason = _r(rg, payload("rain_gauge", result=1.0, unit="mm", seq=-5))
    assert "'seq' = -5" in reason
    reason = _r(rg, payload("rain_gauge", result=1.0, unit="mm", colour="red"))
    assert "'colour' is not allowed" in reason


def test_topic_problems():
    raw = payload("rain_gauge", result=1.0, unit="mm")
    reason = _r("sz/v1/thermometer/S1/obs", raw)
    assert "unknown kind 'thermometer'" in reason
    assert "does not follow" in _r("sz/v2/rain_gauge/S1/obs", raw)
    assert "invalid station" in _r("sz/v1/rain_gauge/S 1/obs", raw)
    # topic / payload mismatch: other station, other kind
    reason = _r(topic("rain_gauge", "S2"), raw)
    assert "'datastream' = 'S1/rain_gauge'" in reason and "'S2'" in reason
    reason = _r(topic("water_level"), raw)
    assert "'datastream' = 'S1/rain_gauge'" in reason and "'water_level'" in reason
    assert parse_topic("sz/v1/heat/T-1/status").channel == "status"
    with pytest.raises(ValidationError):
        parse_topic("sz/v1/heat/T-1")
    assert is_alarm_topic("sz/v1/gas_h2s/MH1/obs") and not is_alarm_topic("sz/v1/rain_gauge/R/obs")
    assert not is_alarm_topic("garbage")


def test_status_messages():
    res = parse_message(topic("gas_h2s", "MH1", "status"), b'{"state": "offline"}', RECV)
    assert isinstance(res, Accepted) and res.status is not None and res.status.state == "offline"
    (o,) = res.observations
    assert o.is_status and o.datastream_id == "MH1/gas_h2s/status"
    assert o.phenomenon_time == RECV  # last will carries no time: arrival time
    res = parse_message(
        topic("gas_h2s", "MH1", "status"),
        b'{"state": "online", "battery": 0.8, "time": "2024-06-01T00:00:10Z", "firmware": "2.1"}',
        RECV,
    )
    assert isinstance(res, Accepted) and res.observations[0].value == 0.8
    assert "'state'" in _r(topic("gas_h2s", "MH1", "status"), b'{"state": "asleep"}')
    # a device may not publish observations on the reserved status datastream
    assert "reserved" in _r(topic("gas_h2s", "MH1"), payload(
        "gas_h2s", "MH1", result=1.0, unit="ppm", datastream="MH1/gas_h2s/status"))


def test_received_at_must_be_aware():
    with pytest.raises(ValidationError):
        parse_message(topic("heat"), b"{}", datetime(2024, 1, 1))


# ----------------------------------------------------------------- fuzzing
def _check(res, raw: bytes) -> None:
    assert isinstance(res, Accepted | Rejected)
    if isinstance(res, Rejected):
        assert res.reason and isinstance(res.reason, str)
        assert res.payload == raw
    else:
        assert res.observations
        for o in res.observations:
            assert o.value is None or math.isfinite(o.value)
            assert o.phenomenon_time.tzinfo is UTC


_TOPICS = st.sampled_from(
    [topic(k.value) for k in Kind] + [topic("heat", channel="status"), "sz/v1/x/y/obs", "", "#"]
)
_FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_FUZZ
@given(topic_=_TOPICS, raw=st.binary(max_size=300))
def test_fuzz_arbitrary_bytes_never_raise(topic_, raw):
    _check(parse_message(topic_, raw, RECV), raw)


_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=30),
    st.sampled_from([T0, "2024-06-01T00:00:00", "2024-06-01T00:00:00Z", "mm", "ppm", "°C",
                     "S1/rain_gauge", "S1/heat", "phenomenonTime", "result", "seq"]),
)
_json = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=20,
)
_keys = st.sampled_from(["datastream", "phenomenonTime", "resultTime", "result", "unit", "seq",
                         "parameters", "components", "dataArray", "state", "battery", "time"])
_docs = st.dictionaries(_keys, _json, max_size=8)


@_FUZZ
@given(topic_=_TOPICS, doc=_docs)
def test_fuzz_json_payloads_never_raise(topic_, doc):
    raw = json.dumps(doc).encode()
    _check(parse_message(topic_, raw, RECV), raw)


@_FUZZ
@given(
    kind=st.sampled_from([k for k, s in KINDS.items() if not s.is_event]),
    value=st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(-(10**30), 10**30)),
    unit=st.sampled_from(["mm", "m", "cm", "%", "ppm", "°C", "K", "deg", "%/m", "%LEL", "furlong"]),
    when=st.sampled_from([T0, "2024-06-01T00:00:00", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00"]),
)
def test_fuzz_near_valid_observations(kind, value, unit, when):
    raw = payload(kind.value, result=value, unit=unit, phenomenonTime=when)
    res = parse_message(topic(kind.value), raw, RECV)
    _check(res, raw)
    if isinstance(res, Accepted):
        spec = KINDS[kind]
        (o,) = res.observations
        q = spec.quantity_for(unit)
        assert q is not None and q.lo <= o.value <= q.hi
