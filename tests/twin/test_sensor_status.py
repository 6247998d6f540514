"""Tests for twin.sensor_status: the one status rule, its precedence and the event fold."""

from __future__ import annotations

import pytest

from twin.errors import ValidationError
from twin.sensor_status import (
    PRECEDENCE,
    STATUS_COLOURS,
    STATUSES,
    AlertFlags,
    check_limits,
    is_device_status,
    sensor_status,
)

TH = {"warning": 2.5, "alarm": 3.0}


@pytest.mark.parametrize(("kwargs", "want"), [
    pytest.param({"age_s": None, "value": 9.0, "active_alert": "alarm"}, "offline", id="never-reported"),
    pytest.param({"age_s": 10.0, "device_offline": True, "value": 9.0}, "offline",
                 id="device-offline-beats-alarm"),
    pytest.param({"age_s": 4000.0, "offline_after_s": 3600.0}, "offline", id="silent-past-offline-limit"),
    pytest.param({"age_s": 4000.0}, "stale", id="no-offline-limit-stays-stale"),
    pytest.param({"age_s": 901.0, "value": 9.0, "active_alert": "alarm"}, "stale",
                 id="stale-beats-alarm"),
    pytest.param({"age_s": 900.0, "value": 1.0}, "ok", id="exactly-the-stale-limit-is-fresh"),
    pytest.param({"age_s": -30.0, "value": 1.0}, "ok", id="reading-ahead-of-the-clock"),
    pytest.param({"age_s": 10.0, "value": 3.0}, "alarm", id="value-at-alarm-threshold"),
    pytest.param({"age_s": 10.0, "value": 2.5}, "warning", id="value-at-warning-threshold"),
    pytest.param({"age_s": 10.0, "value": 2.6, "active_alert": "alarm"}, "alarm",
                 id="alarm-alert-beats-warning-value"),
    pytest.param({"age_s": 10.0, "value": 3.1, "active_alert": "warning"}, "alarm",
                 id="alarm-value-beats-warning-alert"),
    pytest.param({"age_s": 10.0, "value": 1.0, "active_alert": "advisory"}, "ok",
                 id="advisory-does-not-change-status"),
    pytest.param({"age_s": 10.0, "value": float("nan")}, "ok", id="nan-reaches-no-threshold"),
    pytest.param({"age_s": 10.0, "value": None}, "ok", id="no-value"),
])
def test_status(kwargs, want):
    assert sensor_status(thresholds=TH, **kwargs) == want


def test_every_status_has_a_colour_and_a_rank():
    assert set(STATUSES) == set(PRECEDENCE) == set(STATUS_COLOURS)


def test_limits_are_checked_naming_the_values():
    check_limits(900.0, None)
    with pytest.raises(ValidationError, match="stale_after_s=0"):
        check_limits(0, None)
    with pytest.raises(ValidationError, match="offline_after_s=600"):
        check_limits(900.0, 600.0)


def test_flags_follow_crossings_clearings_and_device_status():
    flags = AlertFlags()
    assert flags.apply("threshold_crossed", "S1/water_level", "alarm", {})
    assert flags.apply("alert_cleared", "S1/water_level", "info", {"from": "alarm", "to": "warning"})
    assert flags.alert_of("S1/water_level") == "warning"
    flags.apply("alert_cleared", "S1/water_level", "info", {"from": "warning", "to": None})
    assert flags.alert_of("S1/water_level") is None
    flags.apply("sensor_offline", "S1/water_level", "warning", {})
    assert flags.offline_of("S1/water_level/depth") and not flags.offline_of("S2/water_level")
    assert not flags.apply("note", "S1/water_level", "info", {})


def test_device_status_streams_are_told_apart():
    assert is_device_status("S1/rain_gauge/status")
    assert not is_device_status("S1/rain_gauge") and not is_device_status("S1/rain_gauge/depth")
