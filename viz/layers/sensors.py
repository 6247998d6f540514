"""Kind ``sensors``: sensor points coloured by live status, with last value, unit and time.

Status of a sensor at ``now``:

* ``offline`` — no observation, or the latest is older than ``offline_after_s``;
* ``stale`` — the latest is older than ``stale_after_s``;
* ``alarm`` / ``warning`` — the sensor is in ``alarms`` (an active alert), or
  its latest value reached its ``thresholds["alarm"]`` / ``["warning"]``;
* ``ok`` — otherwise.
"""

from __future__ import annotations

import html
import math
from datetime import UTC, datetime

from twin.errors import ValidationError
from viz.layers import register
from viz.scene import LayerSet, Legend

STATUS_COLOURS = {
    "ok": (30, 160, 70, 255),
    "warning": (245, 150, 20, 255),
    "alarm": (220, 20, 30, 255),
    "stale": (170, 150, 60, 255),
    "offline": (120, 120, 120, 255),
}


def sensor_status(sensor, latest: dict | None, now: datetime, *, stale_after_s: float = 900.0,
                  offline_after_s: float = 3600.0, alarm: bool = False) -> str:
    """One of ok / warning / alarm / stale / offline (see the module docstring)."""
    if latest is None or latest.get("time") is None:
        return "offline"
    age = (now - latest["time"]).total_seconds()
    if age > offline_after_s:
        return "offline"
    if age > stale_after_s:
        return "stale"
    if alarm:
        return "alarm"
    v = latest.get("value")
    th = dict(getattr(sensor, "thresholds", {}) or {})
    if v is not None and math.isfinite(v):
        if "alarm" in th and v >= th["alarm"]:
            return "alarm"
        if "warning" in th and v >= th["warning"]:
            return "warning"
    return "ok"


def latest_from_store(store, not_after: datetime | None = None) -> dict[str, dict]:
    """Latest observation per sensor id from a :class:`twin.store.Store`.

    A datastream ``"<sensor id>/<property>"`` belongs to ``<sensor id>``; with
    several datastreams the most recent wins.  Values: ``{"value", "unit", "time", "datastream"}``.
    """
    out: dict[str, dict] = {}
    for ds_id, t in store.latest_times(not_after).items():
        obs = store.observations(ds_id, t0=t, limit=1)
        if not obs:
            continue
        o = obs[0]
        sid = ds_id.split("/", 1)[0]
        if sid not in out or o.phenomenon_time > out[sid]["time"]:
            out[sid] = {"value": o.value, "unit": o.unit, "time": o.phenomenon_time, "datastream": ds_id}
    return out


def _tooltip(s, status: str, latest: dict | None) -> str:
    name = html.escape(s.name or s.id)
    parts = [f"<b>{name}</b> ({html.escape(s.kind)})", f"status: <b>{status}</b>"]
    if latest and latest.get("time") is not None:
        v = latest.get("value")
        unit = latest.get("unit") or s.unit
        val = "—" if v is None else f"{v:g}"
        when = latest["time"].astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        parts.append(f"{val} {html.escape(unit)} at {when}")
    else:
        parts.append("no observation")
    return "<br/>".join(parts)


def status_points_layer(points, *, layer_id: str = "sensors") -> dict:
    """ScatterplotLayer JSON of points coloured by status (:data:`STATUS_COLOURS`).

    ``points``: dicts with ``id``, ``lon``, ``lat``, ``status`` (a key of
    :data:`STATUS_COLOURS`; unknown ones draw as offline) and ``tooltip``
    (escaped HTML); points without a location are left out.  The static
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


@register("sensors")
def sensors(registry, latest: dict[str, dict] | None = None, *, now: datetime | None = None,
            alarms=(), stale_after_s: float = 900.0, offline_after_s: float = 3600.0,
            layer_id: str = "sensors", label: str = "Sensors") -> LayerSet:
    """Sensors as dots coloured by status (legend: the statuses present or not).

    Parameters
    ----------
    registry : SensorRegistry or iterable of Sensor
    latest : dict or None
        sensor id → ``{"value", "unit", "time"}`` (see :func:`latest_from_store`).
    now : datetime or None
        Reference time (timezone-aware; default: now, UTC).
    alarms : iterable of str
        Sensor ids with an active alarm (shown as alarm while not stale).
    """
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        raise ValidationError(f"now={now!r} must be timezone-aware (e.g. tzinfo=datetime.UTC)")
    if not (0 < stale_after_s <= offline_after_s):
        raise ValidationError(f"stale_after_s={stale_after_s}, offline_after_s={offline_after_s}: "
                              "need 0 < stale_after_s <= offline_after_s")
    latest = latest or {}
    alarms = set(alarms)
    points = []
    for s in registry:
        last = latest.get(s.id)
        st = sensor_status(s, last, now, stale_after_s=stale_after_s, offline_after_s=offline_after_s,
                           alarm=s.id in alarms)
        points.append({"id": s.id, "lon": s.lon, "lat": s.lat, "status": st, "tooltip": _tooltip(s, st, last)})
    layer = status_points_layer(points, layer_id=layer_id)
    legend = Legend(layer_id, "Sensor status", "", [(k, v) for k, v in STATUS_COLOURS.items()])
    lons = [p["lon"] for p in points]
    lats = [p["lat"] for p in points]
    bounds = (min(lons), min(lats), max(lons), max(lats)) if lons else None
    return LayerSet(layers=[layer], legends=[legend], label=label, bounds=bounds)
