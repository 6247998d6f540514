"""Kind ``sensors``: sensor points coloured by live status, with last value, unit and time.

A sensor's status is :func:`twin.sensor_status.sensor_status` of the datastream
drawn for it (its most recent one), in :data:`twin.sensor_status.STATUS_COLOURS`:
the rule and palette of the command console, so a sensor has one status
wherever it is shown (offline > stale > alarm > warning > ok; that module says
why). :func:`latest_from_store` gives the latest observations together with what
the store's event log says about them (active alert, device offline).
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from twin.errors import ValidationError
from twin.sensor_status import (
    STALE_AFTER_S,
    STATUS_COLOURS,
    STATUS_EVENT_KINDS,
    AlertFlags,
    check_limits,
    is_device_status,
    sensor_status,
)
from twin.store import utc_text
from viz.layers import register
from viz.scene import LayerSet, Legend


def latest_from_store(store, not_after: datetime | None = None) -> dict[str, dict]:
    """Latest observation per sensor id from a :class:`twin.store.Store`, with its alert flags.

    A datastream ``"<sensor id>/<property>"`` belongs to ``<sensor id>``; with
    several datastreams the most recent wins (device status streams,
    ``.../status``, are left out). Values: ``{"value", "unit", "time",
    "datastream", "alert", "device_offline"}``; ``alert`` (severity of the
    datastream's active threshold alert, or None) and ``device_offline`` come from
    the live event log, up to ``not_after`` (by the events' wall time) if given.
    """
    out: dict[str, dict] = {}
    for ds_id, t in store.latest_times(not_after).items():
        if is_device_status(ds_id):
            continue
        obs = store.observations(ds_id, t0=t, limit=1)
        if not obs:
            continue
        o = obs[0]
        sid = ds_id.split("/", 1)[0]
        if sid not in out or o.phenomenon_time > out[sid]["time"]:
            out[sid] = {"value": o.value, "unit": o.unit, "time": o.phenomenon_time, "datastream": ds_id}
    flags = alert_flags_from_store(store, not_after)
    for entry in out.values():
        entry["alert"] = flags.alert_of(entry["datastream"])
        entry["device_offline"] = flags.offline_of(entry["datastream"])
    return out


def alert_flags_from_store(store, not_after: datetime | None = None) -> AlertFlags:
    """The store's live event log folded into :class:`~twin.sensor_status.AlertFlags`."""
    until = None if not_after is None else utc_text(not_after, "not_after")
    flags = AlertFlags()
    for ev in store.event_rows_after(0, kinds=STATUS_EVENT_KINDS):
        if until is None or ev.wall_time <= until:  # fixed-width UTC text: text order is time order
            flags.apply(ev.kind, ev.source, ev.severity, ev.data)
    return flags


def _status(s, last: dict | None, now: datetime, alarm: str | None, offline: bool, *,
            stale_after_s: float, offline_after_s: float | None) -> str:
    """The shared rule fed from a registry sensor and its ``latest`` entry."""
    has_time = last is not None and last.get("time") is not None
    last = last or {}
    return sensor_status(
        age_s=(now - last["time"]).total_seconds() if has_time else None,
        value=last.get("value"), thresholds=dict(getattr(s, "thresholds", {}) or {}),
        active_alert=last.get("alert") or alarm,
        device_offline=bool(last.get("device_offline")) or offline,
        stale_after_s=stale_after_s, offline_after_s=offline_after_s)


def _tooltip(s, status: str, latest: dict | None) -> str:
    from hardware_bridge.display import format_reading

    name = html.escape(s.name or s.id)
    parts = [f"<b>{name}</b> ({html.escape(s.kind)})", f"status: <b>{status}</b>"]
    if latest and latest.get("time") is not None:
        v = latest.get("value")
        unit = latest.get("unit") or s.unit
        # the stored SI value as operators read it (hardware_bridge.display: ppm, °C, mm ...)
        val = "—" if v is None else format_reading(s.kind, v, unit or None)
        when = latest["time"].astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        parts.append(f"{html.escape(val)} at {when}")
    else:
        parts.append("no observation")
    return "<br/>".join(parts)


def status_points_layer(points, *, layer_id: str = "sensors") -> dict:
    """ScatterplotLayer JSON of points coloured by status (:data:`STATUS_COLOURS`).

    ``points``: dicts with ``id``, ``lon``, ``lat``, ``status`` (a key of
    :data:`STATUS_COLOURS`; unknown ones draw as offline) and ``tooltip``
    (escaped HTML); points without a location cannot be drawn and are left out (count
    them with :func:`count_unplaced` and say so, as :func:`sensors` does).  The static
    ``sensors`` kind and the console's live layer both draw with it.
    """
    data = []
    for p in points:
        if p.get("lon") is None or p.get("lat") is None:
            continue
        st = p["status"] if p["status"] in STATUS_COLOURS else "offline"
        data.append({"id": p["id"], "p": [round(float(p["lon"]), 6), round(float(p["lat"]), 6)],
                     "status": p["status"], "c": list(STATUS_COLOURS[st]), "tooltip": p.get("tooltip", "")})
    return {"@@type": "ScatterplotLayer", "id": layer_id, "data": data, "getPosition": "@@=p",
            "getFillColor": "@@=c", "getLineColor": [255, 255, 255, 255], "stroked": True,
            "radiusUnits": "pixels", "getRadius": 6, "lineWidthUnits": "pixels", "getLineWidth": 1.5,
            "pickable": True, "autoHighlight": True}


def is_placed(point: Mapping) -> bool:
    """True when a point (or a console sensor row) has a finite longitude and latitude."""
    lon, lat = point.get("lon"), point.get("lat")
    return lon is not None and lat is not None and math.isfinite(float(lon)) and math.isfinite(float(lat))


def count_unplaced(points: Iterable[Mapping]) -> int:
    """How many of ``points`` have no position (and so are not drawn)."""
    return sum(1 for p in points if not is_placed(p))


def unplaced_text(n: int) -> str:
    """``"1 sensor without a position"`` / ``"3 sensors without a position"``."""
    return f"{n} sensor{'' if n == 1 else 's'} without a position"


def _alarm_levels(alarms: Iterable[str] | Mapping[str, str]) -> dict[str, str]:
    if isinstance(alarms, Mapping):
        return {str(k): str(v) for k, v in alarms.items()}
    return {str(k): "alarm" for k in alarms}


@register("sensors")
def sensors(registry, latest: dict[str, dict] | None = None, *, now: datetime | None = None,
            alarms: Iterable[str] | Mapping[str, str] = (), offline: Iterable[str] = (),
            stale_after_s: float = STALE_AFTER_S, offline_after_s: float | None = None,
            layer_id: str = "sensors", label: str = "Sensors") -> LayerSet:
    """Sensors as dots coloured by status (legend: every status, present or not).

    A sensor that reports (in ``latest``) but has no position in ``registry`` cannot be
    drawn; it is not dropped silently: the legend's title and the toggle's label say
    ``"N sensors without a position"``.

    Parameters
    ----------
    registry : SensorRegistry or iterable of Sensor
    latest : dict or None
        sensor id → ``{"value", "unit", "time"[, "alert", "device_offline"]}``
        (see :func:`latest_from_store`).
    now : datetime or None
        Reference time (timezone-aware; default: now, UTC).
    alarms : iterable of str, or mapping str → str
        Sensor ids with an active alert: ids alone are alarms, a mapping gives
        each one's severity (``"warning"`` or ``"alarm"``).
    offline : iterable of str
        Sensor ids whose device said it is offline.
    stale_after_s, offline_after_s : float, float or None
        Silence (s) after which a sensor is stale / offline (None: offline only
        when its device says so or it never reported).
    """
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        raise ValidationError(f"now={now!r} must be timezone-aware (e.g. tzinfo=datetime.UTC)")
    check_limits(stale_after_s, offline_after_s)
    latest = latest or {}
    levels = _alarm_levels(alarms)
    down = set(offline)
    points = []
    known = set()
    for s in registry:
        known.add(s.id)
        last = latest.get(s.id)
        st = _status(s, last, now, levels.get(s.id), s.id in down, stale_after_s=stale_after_s,
                     offline_after_s=offline_after_s)
        points.append({"id": s.id, "lon": getattr(s, "lon", None), "lat": getattr(s, "lat", None),
                       "status": st, "tooltip": _tooltip(s, st, last)})
    # sensors that report but have no position (registered without one, or not registered:
    # a new or simulated device) are not drawn; the legend and the toggle say how many
    n_unplaced = count_unplaced(points) + sum(1 for sid in latest if sid not in known)
    points = [p for p in points if is_placed(p)]
    layer = status_points_layer(points, layer_id=layer_id)
    title = "Sensor status" if not n_unplaced else f"Sensor status · {unplaced_text(n_unplaced)}"
    legend = Legend(layer_id, title, "", [(k, v) for k, v in STATUS_COLOURS.items()])
    lons = [p["lon"] for p in points]
    lats = [p["lat"] for p in points]
    bounds = (min(lons), min(lats), max(lons), max(lats)) if lons else None
    lab = label if not n_unplaced else f"{label} ({unplaced_text(n_unplaced)})"
    return LayerSet(layers=[layer, sensor_labels_layer(points, layer_id=f"{layer_id}_ids")], legends=[legend],
                    label=lab, bounds=bounds)


def sensor_labels_layer(points, *, layer_id: str = "sensors_ids") -> dict:
    """TextLayer JSON of the sensor ids beside their dots (points as :func:`status_points_layer` takes)."""
    from viz.layers._labels import label_layer

    return label_layer(layer_id, [(p.get("lon"), p.get("lat"), p["id"], p["id"]) for p in points],
                       style="sensor", offset=(9.0, 0.0))
