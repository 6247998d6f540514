"""Wire schema of the hardware bridge: SensorThings-shaped pydantic v2 models and sensor kinds.

Topic layout (MQTT; the HTTP ingest uses the same strings as routing keys)::

    sz/v1/{kind}/{station}/obs       observations: one Observation or one ObservationBatch
    sz/v1/{kind}/{station}/status    retained Status; the device's last will publishes
                                     {"state": "offline"} here (retained) when it drops

``kind`` is a :class:`Kind` value (``rain_gauge``, ``gas_h2s``, ...), ``station``
matches ``[A-Za-z0-9][A-Za-z0-9_.-]{0,63}``. Subscribers use
``sz/v1/+/+/obs`` (or the shared ``$share/twin/sz/v1/+/+/obs``) and ``sz/v1/+/+/status``.

Datastream ids are ``"{station}/{kind}"`` or ``"{station}/{kind}/{name}"`` (several
datastreams of one kind at a station, e.g. ``"RG-0001/rain_gauge/tipping"``); a
payload whose datastream does not belong to the topic's station and kind is rejected.

Observation payload (UTF-8 JSON object; unknown fields are rejected)::

    {"datastream": "RG-0001/rain_gauge",
     "phenomenonTime": "2024-06-01T08:05:00+08:00",   # timezone required
     "resultTime": "2024-06-01T08:05:01+08:00",       # optional (default: phenomenonTime)
     "result": 2.5,                                   # finite number, or an object for event kinds
     "unit": "mm",                                    # required for numeric kinds
     "seq": 17,                                       # optional int >= 0 (default 0)
     "parameters": {"interval_s": 300}}               # optional object

Batched payload (SensorThings "dataArray" form)::

    {"datastream": "RG-0001/rain_gauge", "unit": "mm",
     "components": ["phenomenonTime", "result", "seq"],
     "dataArray": [["2024-06-01T08:05:00+08:00", 2.5, 17], ...]}

``components`` must contain ``phenomenonTime`` and ``result`` and may contain
``resultTime``, ``seq`` and ``parameters``. A batch is accepted or rejected as a whole.

Status payload: ``{"state": "online"|"offline", "time": ..., "battery": 0.87,
"firmware": "1.4.2", "rssi_dbm": -71}`` (all but ``state`` optional; battery is a
fraction 0..1).

The idempotency key of a stored observation is ``(datastream, phenomenonTime, seq)``:
a device that re-sends a reading (at-least-once delivery) must re-send the same
three values.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

TOPIC_ROOT = "sz/v1"
OBS_SUBSCRIPTION = f"{TOPIC_ROOT}/+/+/obs"
STATUS_SUBSCRIPTION = f"{TOPIC_ROOT}/+/+/status"
SHARED_OBS_SUBSCRIPTION = f"$share/twin/{OBS_SUBSCRIPTION}"
STATION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
DATASTREAM_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}(/[A-Za-z0-9_.\-]{1,64}){1,2}")
MAX_SEQ = 2**63 - 1
MAX_BATCH_ROWS = 100_000


class Kind(StrEnum):
    """Sensor kinds the bridge accepts (the ``{kind}`` level of the topic)."""

    RAIN_GAUGE = "rain_gauge"
    WATER_LEVEL = "water_level"
    GNSS_DISPLACEMENT = "gnss_displacement"
    INCLINOMETER = "inclinometer"
    GAS_O2 = "gas_o2"
    GAS_H2S = "gas_h2s"
    GAS_CO = "gas_co"
    GAS_LEL = "gas_lel"
    SMOKE = "smoke"
    HEAT = "heat"
    DAS_EVENT = "das_event"
    PETROL_VIDEO_EVENT = "petrol_video_event"


@dataclass(frozen=True)
class QuantitySpec:
    """One physical quantity a kind may report.

    Attributes
    ----------
    si_unit : str
        Unit stored in the twin (pint spelling; ``"1"`` for a dimensionless ratio).
    accepted : tuple of str
        Input unit spellings accepted for this quantity (see :mod:`hardware_bridge.units`).
    lo, hi : float
        Plausible range in ``si_unit`` (inclusive); values outside are rejected.
    what : str
        Human name of the quantity, used in messages.
    """

    si_unit: str
    accepted: tuple[str, ...]
    lo: float
    hi: float
    what: str


@dataclass(frozen=True)
class KindSpec:
    """What a kind reports, in which units, and whether it is an alarm kind.

    ``alarm`` kinds are life-safety detectors (confined-space gas, smoke, heat,
    tunnel intrusion, petrol-station violations): their messages bypass a full
    ingest queue and are processed first. Event kinds (``quantities == ()``)
    carry an object result validated by ``event_model``.
    """

    kind: Kind
    quantities: tuple[QuantitySpec, ...]
    alarm: bool
    event_model: type[BaseModel] | None = None
    description: str = ""

    @property
    def is_event(self) -> bool:
        return self.event_model is not None

    def quantity_for(self, unit: str) -> QuantitySpec | None:
        for q in self.quantities:
            if unit in q.accepted:
                return q
        return None

    @property
    def accepted_units(self) -> tuple[str, ...]:
        return tuple(u for q in self.quantities for u in q.accepted)


# ---------------------------------------------------------------- event results
class _StrictModel(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False, frozen=True)


class DasEventResult(_StrictModel):
    """Event summary of a distributed acoustic sensing (fibre) interrogator.

    ``position_m``: distance along the fibre (m); ``energy``: the interrogator's
    band energy (arbitrary, >= 0); ``class``: its classifier's label;
    ``length_m``: extent along the fibre (optional); ``confidence`` 0..1 (optional).
    Where the sender knows the fibre's route (``physics.das_layout.FibreLayout``)
    it may add the place (all optional): ``line`` (metro line), ``chainage_m``
    (along that line), ``lon``/``lat`` (WGS84), ``offset_m`` (estimated distance
    of the source from the fibre) and ``inside_zone`` (the event lies inside the
    tunnel's protection zone; ``false`` lowers its alert, see
    ``alerts.toml`` ``[das_event] outside_zone``).
    """

    model_config = ConfigDict(
        strict=True, extra="forbid", allow_inf_nan=False, frozen=True, populate_by_name=True
    )

    position_m: float = Field(ge=0.0, le=200_000.0)
    energy: float = Field(ge=0.0)
    event_class: Literal[
        "intrusion", "excavation", "drilling", "piling", "vehicle", "train", "water_leak", "fire", "unknown"
    ] = Field(alias="class")
    length_m: float | None = Field(default=None, ge=0.0, le=200_000.0)
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    line: str | None = Field(default=None, min_length=1, max_length=64)
    chainage_m: float | None = Field(default=None, ge=-1_000.0, le=200_000.0)
    lon: float | None = Field(default=None, ge=-180.0, le=180.0)
    lat: float | None = Field(default=None, ge=-90.0, le=90.0)
    offset_m: float | None = Field(default=None, ge=0.0, le=10_000.0)
    inside_zone: bool | None = None

    @model_validator(mode="after")
    def _lon_lat_together(self) -> DasEventResult:
        if (self.lon is None) != (self.lat is None):
            raise ValueError(f"lon={self.lon!r}, lat={self.lat!r}: give both or neither")
        return self


class PetrolVideoEventResult(_StrictModel):
    """A petrol-station video-analytics violation event.

    ``station``: the petrol station id; ``violation``: what the camera saw;
    ``confidence``: the detector's score 0..1; ``camera``: camera id (optional).
    """

    station: str = Field(min_length=1, max_length=64)
    violation: Literal["smoking", "phone", "open_flame", "no_grounding", "unauthorised_entry", "other"]
    confidence: float = Field(ge=0.0, le=1.0)
    camera: str | None = Field(default=None, max_length=64)


_PCT = ("%", "%vol", "percent")
# Plausible ranges: wide enough for every real reading, tight enough to catch error
# codes (-9999, 65535, ...) and wrong-unit values.
# Rain: world records 38 mm in 1 min (2.28 m/h) and 1825 mm in 24 h (WMO World
# Weather & Climate Extremes Archive) bound intensity and per-interval depth.
# Water level: Shenzhen's highest point is Wutong Shan at 943.7 m; tunnels/pits below datum.
KINDS: dict[Kind, KindSpec] = {
    k.kind: k
    for k in (
        KindSpec(
            Kind.RAIN_GAUGE,
            (
                QuantitySpec("m", ("mm", "cm", "m", "in"), 0.0, 2.0, "rain depth over the interval"),
                QuantitySpec(
                    "m/s", ("mm/h", "mm/min", "m/s", "in/h"), 0.0, 7e-4, "rain intensity"
                ),
            ),
            alarm=False,
            description="rain gauge: depth per reporting interval, or intensity",
        ),
        KindSpec(
            Kind.WATER_LEVEL,
            (QuantitySpec("m", ("m", "cm", "mm"), -50.0, 1000.0, "water level"),),
            alarm=False,
            description="river / channel / pit water level above the gauge datum",
        ),
        KindSpec(
            Kind.GNSS_DISPLACEMENT,
            (QuantitySpec("m", ("m", "cm", "mm"), -50.0, 50.0, "cumulative displacement"),),
            alarm=False,
            description="slope GNSS cumulative displacement (one component per datastream)",
        ),
        KindSpec(
            Kind.INCLINOMETER,
            (
                QuantitySpec(
                    "rad", ("rad", "mrad", "deg", "°", "arcsec"), -math.pi / 2, math.pi / 2,
                    "tilt angle",
                ),
            ),
            alarm=False,
            description="slope / structure inclinometer tilt",
        ),
        KindSpec(
            Kind.GAS_O2,
            (QuantitySpec("1", (*_PCT, "1", "ppm"), 0.0, 1.0, "oxygen volume fraction"),),
            alarm=True,
            description="confined-space oxygen",
        ),
        KindSpec(
            Kind.GAS_H2S,
            # small negative readings are zero drift of electrochemical cells
            (QuantitySpec("1", ("ppm", "ppb", "mol/mol", "1", *_PCT), -5e-6, 1e-2, "H2S mole fraction"),),
            alarm=True,
            description="hydrogen sulphide (ppm -> mol/mol)",
        ),
        KindSpec(
            Kind.GAS_CO,
            (QuantitySpec("1", ("ppm", "ppb", "mol/mol", "1", *_PCT), -5e-6, 1e-2, "CO mole fraction"),),
            alarm=True,
            description="carbon monoxide (ppm -> mol/mol)",
        ),
        KindSpec(
            Kind.GAS_LEL,
            (QuantitySpec("1", ("%LEL", "%", "1"), -0.05, 1.0, "fraction of the lower explosive limit"),),
            alarm=True,
            description="combustible gas as a fraction of LEL",
        ),
        KindSpec(
            Kind.SMOKE,
            (QuantitySpec("1/m", ("%/m", "1/m"), 0.0, 1.0, "smoke obscuration per metre"),),
            alarm=True,
            description="smoke detector obscuration (%/m -> 1/m)",
        ),
        KindSpec(
            Kind.HEAT,
            (QuantitySpec("K", ("K", "degC", "°C", "℃", "degF", "°F"), 233.15, 1473.15, "temperature"),),
            alarm=True,
            description="heat detector / thermocouple temperature (-40 °C .. 1200 °C)",
        ),
        KindSpec(
            Kind.DAS_EVENT,
            (),
            alarm=True,
            event_model=DasEventResult,
            description="fibre-optic DAS event summary along metro tunnels",
        ),
        KindSpec(
            Kind.PETROL_VIDEO_EVENT,
            (),
            alarm=True,
            event_model=PetrolVideoEventResult,
            description="petrol-station video analytics violation",
        ),
    )
}
ALARM_KINDS = frozenset(k.value for k, s in KINDS.items() if s.alarm)


# ------------------------------------------------------------------- times
def _parse_time(value: Any) -> Any:
    """Before-validator of wire timestamps: ISO-8601 text with a timezone only."""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str):
        if len(value) > 64:
            raise ValueError("timestamp text longer than 64 characters")
        try:
            dt = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(
                "not an ISO-8601 timestamp; give e.g. '2024-06-01T08:00:00+08:00'"
            ) from None
    else:
        raise ValueError("must be an ISO-8601 string with a timezone")
    if dt.tzinfo is None or dt.tzinfo.utcoffset(dt) is None:
        raise ValueError("timestamp has no timezone (naive); add an offset such as +08:00 or Z")
    return dt


AwareTime = Annotated[datetime, BeforeValidator(_parse_time)]
DatastreamId = Annotated[str, Field(pattern=f"^{DATASTREAM_RE.pattern}$", max_length=200)]


# ------------------------------------------------------------- wire models
class UnitOfMeasurement(_StrictModel):
    """SensorThings unitOfMeasurement."""

    name: str
    symbol: str
    definition: str = ""


class ObservedProperty(_StrictModel):
    name: str
    definition: str = ""
    description: str = ""


class Thing(_StrictModel):
    """A device or station (SensorThings Thing)."""

    id: str = Field(pattern=f"^{STATION_RE.pattern}$")
    name: str = ""
    description: str = ""
    properties: dict[str, Any] = Field(default_factory=dict)
    lon: float | None = Field(default=None, ge=-180.0, le=180.0)
    lat: float | None = Field(default=None, ge=-90.0, le=90.0)


class Datastream(_StrictModel):
    """A time series of one kind from one Thing (SensorThings Datastream)."""

    id: DatastreamId
    thing_id: str = Field(pattern=f"^{STATION_RE.pattern}$")
    kind: Annotated[Kind, Field(strict=False)]
    unitOfMeasurement: UnitOfMeasurement
    observedProperty: ObservedProperty


class Observation(_StrictModel):
    """One observation message (see the module docstring for the JSON form)."""

    datastream: DatastreamId
    phenomenonTime: AwareTime
    resultTime: AwareTime | None = None
    result: float | dict[str, Any]
    unit: str | None = Field(default=None, max_length=32)
    seq: int = Field(default=0, ge=0, le=MAX_SEQ)
    parameters: dict[str, Any] | None = None


BATCH_COMPONENTS = ("phenomenonTime", "resultTime", "result", "seq", "parameters")


class ObservationBatch(_StrictModel):
    """Several observations of one datastream in SensorThings dataArray form."""

    datastream: DatastreamId
    unit: str | None = Field(default=None, max_length=32)
    components: list[Literal["phenomenonTime", "resultTime", "result", "seq", "parameters"]] = (
        Field(min_length=2, max_length=5)
    )
    dataArray: list[list[Any]] = Field(min_length=1, max_length=MAX_BATCH_ROWS)


class Status(_StrictModel):
    """Retained device status (``state="offline"`` is also the last-will message)."""

    state: Literal["online", "offline"]
    time: AwareTime | None = None
    battery: float | None = Field(default=None, ge=0.0, le=1.0)
    firmware: str | None = Field(default=None, max_length=64)
    rssi_dbm: float | None = Field(default=None, ge=-200.0, le=0.0)


# ----------------------------------------------------------------- helpers
def obs_topic(kind: Kind | str, station: str) -> str:
    """``sz/v1/{kind}/{station}/obs``."""
    return f"{TOPIC_ROOT}/{Kind(kind).value}/{station}/obs"


def status_topic(kind: Kind | str, station: str) -> str:
    """``sz/v1/{kind}/{station}/status``."""
    return f"{TOPIC_ROOT}/{Kind(kind).value}/{station}/status"


def datastream_id(station: str, kind: Kind | str, name: str | None = None) -> str:
    """``"{station}/{kind}"`` or ``"{station}/{kind}/{name}"``."""
    base = f"{station}/{Kind(kind).value}"
    return base if name is None else f"{base}/{name}"


def encode(model: BaseModel) -> bytes:
    """UTF-8 JSON payload of a wire model (``None`` fields left out, aliases used)."""
    return model.model_dump_json(exclude_none=True, by_alias=True).encode()
