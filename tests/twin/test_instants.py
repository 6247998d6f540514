"""The twin's one ISO-8601 instant parser and its callers (clock, forecast, slope rain start)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from physics.slope_city import parse_start
from scenarios.forecast import parse_instant as forecast_instant
from twin.clock import SimClock, as_utc
from twin.errors import ClockError, ValidationError
from twin.instants import parse_instant

CST = timezone(timedelta(hours=8))


@pytest.mark.parametrize("text", ["2023-09-07T17:00:00+08:00", "2023-09-07T09:00:00Z",
                                  "2023-09-07T09:00Z", " 2023-09-07T09:00:00+00:00 "])
def test_text_with_a_zone_becomes_the_same_utc_instant(text):
    t = parse_instant(text, "start")
    assert t == datetime(2023, 9, 7, 9, 0, tzinfo=UTC)
    assert t.utcoffset() == timedelta(0)


def test_aware_datetime_is_converted_to_utc():
    t = parse_instant(datetime(2023, 9, 7, 17, 30, tzinfo=CST))
    assert t == datetime(2023, 9, 7, 9, 30, tzinfo=UTC) and t.tzinfo is UTC


@pytest.mark.parametrize("value, says", [
    ("2023-09-07T17:00", "has no time zone"),
    (datetime(2023, 9, 7, 17, 0), "has no time zone"),
    ("7 Sept 2023 5pm", "is not an ISO-8601 instant"),
    (1694077200, "is not a date-time"),
])
def test_bad_values_name_the_field_and_value_and_say_what_to_give(value, says):
    with pytest.raises(ValidationError) as err:
        parse_instant(value, "time.start")
    msg = str(err.value)
    assert says in msg
    assert msg.startswith(f"time.start={value!r}")
    assert "+08:00" in msg  # tells the user what to give


def test_a_naive_time_gets_a_suggestion_built_from_it():
    with pytest.raises(ValidationError, match=r"'2023-09-07T17:00:00\+08:00' for Shenzhen"):
        parse_instant("2023-09-07T17:00", "start")


def test_callers_share_the_parser_and_keep_their_field_names_and_errors():
    text = "2023-09-07T17:00:00+08:00"
    want = parse_instant(text)
    assert as_utc(text) == forecast_instant(text) == parse_start(text) == want
    with pytest.raises(ClockError, match=r"^when='2023-09-07T17:00' has no time zone"):
        as_utc("2023-09-07T17:00", "when")
    with pytest.raises(ValidationError, match=r"^--at='2023-09-07 17:00' has no time zone"):
        forecast_instant("2023-09-07 17:00", "--at")
    with pytest.raises(ValidationError, match=r"^rain_start='yesterday' is not an ISO-8601 instant"):
        parse_start("yesterday")


def test_the_clock_refuses_a_naive_start_through_the_parser():
    with pytest.raises(ClockError, match=r"start=.* no timezone"):
        SimClock(start="2024-06-01T00:00:00")
    assert SimClock(start="2024-06-01T08:00:00+08:00").start == datetime(2024, 6, 1, tzinfo=UTC)
