"""Detected DAS events → ``das_event`` observations on the bridge's MQTT broker.

Only event summaries leave the detector (never raw strain rate). Each non-train event becomes one observation
of the datastream ``"{station}/das_event"`` on ``sz/v1/das_event/{station}/obs`` (:mod:`hardware_bridge.schema`):

- ``phenomenonTime``: the record's start time + the event's onset; ``resultTime``: + its end (when it was known);
- ``result`` (the schema's :class:`~hardware_bridge.schema.DasEventResult`): ``position_m`` (distance along the
  fibre, channel × ``dx_m``), ``energy``, ``class``, ``length_m``, ``confidence``, and the place: ``line``,
  ``chainage_m``, ``lon``/``lat`` (when the tunnel geometry placed the event), ``offset_m`` (estimated distance
  from the fibre) and ``inside_zone`` (within the protection zone; ``false`` lowers the bridge's alert to info);
- ``parameters``: what the result has no field for: onset and end (s), SNR (dB), peak frequency, apparent speed,
  track and segment, whether the event lies at a learned road crossing;
- ``seq``: ``track_id · 1000 + segment``, so a re-sent event (at-least-once delivery) is stored once.

Trains are not published (the bridge's alerts ignore them, and a passage every few minutes would flood the store);
``include_trains=True`` sends them too.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta
from typing import Any

from hardware_bridge.schema import DasEventResult, Kind, datastream_id, obs_topic, status_topic
from twin.errors import ValidationError


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="milliseconds")


def _num(v: Any, nd: int = 3) -> float | None:
    if v is None:
        return None
    f = float(v)
    return round(f, nd) if math.isfinite(f) else None


def event_message(ev: Any, *, station: str, start_time: datetime, dx_m: float, line: str = "") -> tuple[str, bytes]:
    """(topic, payload) of one :class:`physics.das_detect.DasEvent`.

    Raises
    ------
    ValidationError
        When ``start_time`` is naive or the result falls outside the bridge's schema (checked here with the
        schema's own model, so the bridge never dead-letters what the detector sends).
    """
    if start_time.tzinfo is None or start_time.utcoffset() is None:
        raise ValidationError(f"start_time={start_time!r} is naive: give the record's start with its time zone")
    result = {
        "position_m": max(0.0, round(float(ev.channel) * dx_m, 2)),
        "energy": max(0.0, float(ev.energy)),
        "class": ev.event_class,
        "length_m": round(float(ev.length_m), 2),
        "confidence": round(min(max(float(ev.confidence), 0.0), 1.0), 3),
    }
    line = line or str(getattr(ev, "line", "") or "")
    if line:
        result["line"] = line[:64]
    if (c := _num(ev.chainage_m, 2)) is not None:
        result["chainage_m"] = c
    if ev.lon is not None and ev.lat is not None:
        result.update(lon=_num(ev.lon, 7), lat=_num(ev.lat, 7))
    if (off := _num(getattr(ev, "offset_m", None), 2)) is not None:
        result["offset_m"] = off
    if getattr(ev, "inside_zone", None) is not None:
        result["inside_zone"] = bool(ev.inside_zone)
    DasEventResult.model_validate(result)
    params = {
        "onset_s": _num(ev.onset_s), "end_s": _num(ev.end_s),
        "snr_db": _num(ev.snr_db, 2), "peak_frequency_hz": _num(ev.peak_frequency_hz, 2),
        "speed_mps": _num(ev.speed_mps, 3), "track_id": int(ev.track_id), "segment": int(ev.segment),
        "nuisance_site": bool(getattr(ev, "nuisance_site", False)), "source": "twin tunnel detect",
    }
    rec = {
        "datastream": datastream_id(station, Kind.DAS_EVENT),
        "phenomenonTime": _iso(start_time + timedelta(seconds=float(ev.onset_s))),
        "resultTime": _iso(start_time + timedelta(seconds=float(ev.end_s))),
        "result": result,
        "seq": int(ev.track_id) * 1000 + int(ev.segment),
        "parameters": params,
    }
    return obs_topic(Kind.DAS_EVENT, station), json.dumps(rec, ensure_ascii=False).encode()


class DasPublisher:
    """Publishes detected events to an MQTT broker (QoS 1, :class:`hardware_bridge.sources.mqtt.MqttPublisher`).

    Parameters
    ----------
    broker : str
        ``HOST:PORT`` of the broker the bridge subscribes to.
    station : str
        The interrogator's station id (``[A-Za-z0-9][A-Za-z0-9_.-]{0,63}``).
    start_time : datetime
        Time of the record's sample 0 (timezone-aware).
    dx_m : float
        Channel spacing (m).
    line : str
        Metro line the fibre follows (carried in ``parameters``).
    include_trains : bool
        Publish train passages too (default: not).
    """

    def __init__(self, broker: str, *, station: str, start_time: datetime, dx_m: float, line: str = "",
                 include_trains: bool = False) -> None:
        from hardware_bridge.schema import STATION_RE
        from hardware_bridge.sources.mqtt import MqttPublisher, parse_broker

        if not STATION_RE.fullmatch(station or ""):
            raise ValidationError(f"station={station!r}: use letters, digits, '_', '.', '-' (up to 64, starting "
                                  "with a letter or digit), e.g. DAS-L1")
        self.station, self.start_time, self.dx_m, self.line = station, start_time, dx_m, line
        self.include_trains = include_trains
        host, port = parse_broker(broker)
        self.pub = MqttPublisher(host, port, client_id=f"twin-das-{station}"[:64])
        self.sent = 0
        now = datetime.now(start_time.tzinfo)
        self.pub.publish(status_topic(Kind.DAS_EVENT, station),
                         json.dumps({"state": "online", "time": _iso(now)}).encode(), retain=True)

    def publish(self, events: list[Any]) -> int:
        """Publish the events (trains skipped unless ``include_trains``); returns how many were sent."""
        n = 0
        for ev in events:
            if ev.event_class == "train" and not self.include_trains:
                continue
            topic, payload = event_message(ev, station=self.station, start_time=self.start_time, dx_m=self.dx_m,
                                           line=self.line)
            self.pub.publish(topic, payload)
            n += 1
        self.sent += n
        return n

    def close(self) -> None:
        """Wait for every acknowledgement and disconnect."""
        self.pub.close()

    def __enter__(self) -> DasPublisher:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


__all__ = ["DasPublisher", "event_message"]
