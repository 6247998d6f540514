"""The one rule for a sensor's live status, and the one palette every view draws it with.

A datastream of a sensor is, at a given instant, in exactly one of five states:

``offline``
    it never reported, its device said it is offline (a ``sensor_offline``
    event of ``<station>/<kind>`` not yet followed by ``sensor_online``), or it
    has been silent for longer than ``offline_after_s`` (when given);
``stale``
    its latest observation is more than ``stale_after_s`` old (the bridge's own
    stale limit, 900 s by default);
``alarm``
    an active alert of severity ``alarm`` (a ``threshold_crossed`` event not yet
    lowered by ``alert_cleared``), or its latest value reaches the sensor's
    ``thresholds["alarm"]``;
``warning``
    the same at severity ``warning`` / ``thresholds["warning"]``;
``ok``
    otherwise.

Precedence: offline > stale > alarm > warning > ok
--------------------------------------------------
The status answers "what does this sensor tell us about *now*?". A reading
that is old, or from a device that is down, cannot vouch for the present,
whatever it was: a gauge that reported 3.1 m an hour ago and then went silent
may read 4 m or 1 m now, and showing it as "alarm" would let command staff
trust a dead gauge during the very storm that drowned it. The alert itself is
not hidden: it stays open in the alerts list and is drawn on the map (a ring
at the sensor) until the bridge clears it or an operator acknowledges it. So
the colour says what the sensor can be trusted for, and the alert says what
it last warned of. Between the two levels of silence, ``offline`` (known
down, or never heard of) outranks ``stale`` (merely late). ``alarm`` outranks
``warning`` as its higher level.

An advisory alert does not change the status (it is shown in the alerts list).

Both views that colour sensors, the command console (:mod:`viz.console.live`)
and the ``sensors`` map layer (:mod:`viz.layers.sensors`), call
:func:`sensor_status` and draw with :data:`STATUS_COLOURS`; the console page
gets the palette and labels from the server (:func:`palette_json`). The
event-log fold both need (which alerts are active, which devices are offline)
is :class:`AlertFlags`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from twin.errors import ValidationError
from twin.events import Severity

#: The statuses in legend order, from calm to blind.
STATUSES = ("ok", "warning", "alarm", "stale", "offline")
#: Which status wins when several apply (see the module docstring for why).
PRECEDENCE = ("offline", "stale", "alarm", "warning", "ok")
#: Order of a list an operator scans: what needs action first.
ATTENTION = ("alarm", "warning", "offline", "stale", "ok")
#: Fill colour (RGBA, 0-255) of each status, for every view.
STATUS_COLOURS: dict[str, tuple[int, int, int, int]] = {
    "ok": (30, 160, 70, 255),
    "warning": (245, 150, 20, 255),
    "alarm": (220, 20, 30, 255),
    "stale": (170, 150, 60, 255),
    "offline": (120, 120, 120, 255),
}
#: What each status means, in a few words (legend tooltips, list titles).
STATUS_LABELS = {
    "ok": "reporting, below its thresholds",
    "warning": "active warning alert, or value at its warning threshold",
    "alarm": "active alarm alert, or value at its alarm threshold",
    "stale": "no observation for longer than the stale limit",
    "offline": "device offline, or never reported",
}
#: Silence (s) after which a datastream is stale: the bridge's default stale limit.
STALE_AFTER_S = 900.0

#: Event kinds that change a status (the rest only fill the alerts list).
STATUS_EVENT_KINDS = ("threshold_crossed", "alert_cleared", "sensor_offline", "sensor_online")

_LEVELS = (Severity.ALARM.value, Severity.WARNING.value)  # the alerting levels, highest first
_RANKS = {s.value: s.rank for s in Severity}


def sensor_status(
    *,
    age_s: float | None,
    value: float | None = None,
    thresholds: Mapping[str, float] | None = None,
    active_alert: str | None = None,
    device_offline: bool = False,
    stale_after_s: float = STALE_AFTER_S,
    offline_after_s: float | None = None,
) -> str:
    """Status of one datastream: offline, stale, alarm, warning or ok (module docstring).

    Parameters
    ----------
    age_s : float or None
        Age of the latest observation at the instant asked about (s); None if
        the datastream never reported. A negative age (a reading stamped ahead
        of the clock) counts as fresh.
    value : float or None
        The latest value, in the sensor's unit.
    thresholds : mapping or None
        The sensor's ``thresholds`` (``"warning"``, ``"alarm"`` keys are used).
    active_alert : str or None
        Severity of the datastream's active threshold alert, if any.
    device_offline : bool
        The device said it is offline.
    stale_after_s : float
        Silence (s) after which the datastream is stale.
    offline_after_s : float or None
        Silence (s) after which it is offline; None: silence alone never makes
        it offline (the bridge only knows a device is down when it says so).

    Returns
    -------
    str
        One of :data:`STATUSES`.

    Examples
    --------
    >>> sensor_status(age_s=4000.0, value=3.1, thresholds={"alarm": 3.0}, active_alert="alarm")
    'stale'
    >>> sensor_status(age_s=60.0, value=2.6, thresholds={"warning": 2.5, "alarm": 3.0})
    'warning'
    """
    if age_s is None or device_offline:
        return "offline"
    if offline_after_s is not None and age_s > offline_after_s:
        return "offline"
    if age_s > stale_after_s:
        return "stale"
    for level in _LEVELS:
        if active_alert == level or _reaches(value, (thresholds or {}).get(level)):
            return level
    return "ok"


def _reaches(value: float | None, threshold: float | None) -> bool:
    return value is not None and threshold is not None and math.isfinite(value) \
        and value >= threshold


def check_limits(stale_after_s: float, offline_after_s: float | None) -> None:
    """Raise :class:`~twin.errors.ValidationError` unless ``0 < stale <= offline``."""
    if not stale_after_s > 0:
        raise ValidationError(f"stale_after_s={stale_after_s!r} must be > 0 seconds "
                              f"(the bridge's default is {STALE_AFTER_S:g})")
    if offline_after_s is not None and not stale_after_s <= offline_after_s:
        raise ValidationError(f"stale_after_s={stale_after_s}, offline_after_s={offline_after_s}: "
                              "need stale_after_s <= offline_after_s, or offline_after_s=None")


def device_key(datastream_id: str) -> str:
    """``"S1/rain_gauge[/name]"`` -> ``"S1/rain_gauge"``: the key device status events use."""
    return "/".join(datastream_id.split("/", 2)[:2])


def is_device_status(datastream_id: str) -> bool:
    """True for ``<station>/<kind>/status`` streams: device health (battery), not a measurement.

    They feed a device's status; no view shows them as a sensor of their own.
    """
    return datastream_id.count("/") >= 2 and datastream_id.split("/", 2)[2] == "status"


@dataclass
class AlertFlags:
    """What the event log says about statuses: active alerts and offline devices.

    Feed it the live events in id order (:meth:`apply`); ask it per datastream
    (:meth:`alert_of`, :meth:`offline_of`). The console follows the log with it
    incrementally; the map layer folds the whole log once.

    Attributes
    ----------
    active : dict
        Source (a datastream id) -> severity of its active threshold alert, or None.
    offline : dict
        Device key (``"<station>/<kind>"``) -> whether it said it is offline.
    """

    active: dict[str, str | None] = field(default_factory=dict)
    offline: dict[str, bool] = field(default_factory=dict)

    def apply(self, kind: str, source: str, severity: str, data: Mapping[str, Any]) -> bool:
        """Take one event into account; True if it can change the status of ``source``.

        A ``threshold_crossed`` event's severity is the alert's level; an
        ``alert_cleared`` lowers it to ``data["to"]`` (None: no alert left).
        """
        if kind == "threshold_crossed":
            self.active[source] = severity
        elif kind == "alert_cleared":
            to = data.get("to")
            self.active[source] = to if to in _RANKS else None
        elif kind in ("sensor_offline", "sensor_online"):
            self.offline[source] = kind == "sensor_offline"
        else:
            return False
        return True

    def alert_of(self, datastream_id: str) -> str | None:
        """Severity of the datastream's active threshold alert (None when none)."""
        return self.active.get(datastream_id)

    def offline_of(self, datastream_id: str) -> bool:
        """Whether the datastream's device said it is offline."""
        return self.offline.get(device_key(datastream_id), False)


def palette_json() -> dict[str, Any]:
    """The statuses, their colours and labels as JSON for pages (the console's ``/api/info``)."""
    return {"order": list(STATUSES), "attention": list(ATTENTION),
            "colors": {k: list(v) for k, v in STATUS_COLOURS.items()},
            "labels": dict(STATUS_LABELS)}


__all__ = [
    "ATTENTION",
    "PRECEDENCE",
    "STALE_AFTER_S",
    "STATUSES",
    "STATUS_COLOURS",
    "STATUS_EVENT_KINDS",
    "STATUS_LABELS",
    "AlertFlags",
    "check_limits",
    "device_key",
    "is_device_status",
    "palette_json",
    "sensor_status",
]
