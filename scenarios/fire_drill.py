"""A fire run's predicted detector activations as a drill the bridge plays as if live.

From a fire run (a run folder with ``fire.nc``, its Dataset, or a
:class:`physics.fire_sim.FireResult`) :func:`drill_from_run` takes the devices
the model saw operate (``res.events`` of kinds ``detector`` and ``sprinkler``,
kept in fire.nc's ``events`` attribute) and writes, with :meth:`FireDrill.write`:

* ``sensors.json``: a sensor registry (:meth:`twin.sensors.SensorRegistry.to_records`)
  of the building's detectors and sprinklers, every device a fire run of the
  building equips (the rules of :class:`physics.fire_sim.FireSimulation`), not
  only those that operate. Properties ``building`` (the building id the bridge's
  :class:`~hardware_bridge.fusion.fire.FireOrigins` groups by), ``floor`` (the
  storey index, 0 = ground, as in :mod:`agents.building` and the fire run),
  ``zone`` (the compartment's name on its storey, e.g. ``lobby``), ``device``
  (the model's device name, e.g. ``smoke 10/lobby``) and ``device_kind``;
  kind ``smoke`` (smoke detectors) or ``heat`` (heat detectors and
  sprinklers: a sprinkler's bulb is a heat-operated device, its flow switch
  the alarm); lon/lat of the building.
* ``<name>.toml``: a drill file (:mod:`scenarios.drill`) of ``sensor_value``
  injects: per device that operates, one quiet reading at the start (smoke 0
  1/m; heat the compartment's initial temperature) and one past the bridge's
  alarm threshold at the predicted activation time (smoke: the model's
  obscuration at activation, 23.93 %/m for CFAST's default detector, above
  the 8 %/m alarm; heat: the device's rated link temperature, 57 °C detector
  or 68 °C sprinkler, above EN 54-5 A1's 54 °C; never less than 1.25 × the
  smoke alarm or 1 K above the heat alarm of the alert configuration). One
  target: acknowledge the first alarm within 2 min (ASSUMED for training).
* ``<name>_scenario.toml``: the scenario the drill names (a drill needs one):
  the run's length, a box of ±0.005° around the building, no sensors of its own
  (a scenario sensor would be registered by the player without the detectors'
  building/floor properties, so the registry goes to the store apart, see
  :func:`register_detectors`) and a building-evacuation model entry of the
  building's storeys (not run by a drill; a scenario names at least one model).

Sensor ids are the device names made station ids (the bridge's
``[A-Za-z0-9][A-Za-z0-9_.-]*``): ``<prefix>.<device>`` with every other
character run replaced by ``-`` (``tower_30_residential.smoke-10-lobby``); the
prefix (default the building id) keeps two buildings' ``smoke 10/lobby`` apart
in one store. Played through MQTT (``twin drill run`` or :func:`play_drill`) beside
``twin bridge run``, the readings reach FireOrigins, which raises
``fire_origin`` at the first device's floor and ``fire_spread`` for the rest.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from twin.errors import ValidationError

#: Files :meth:`FireDrill.write` writes (the drill's name is ``<building id>_fire_drill`` by default).
SENSORS_NAME = "sensors.json"
#: Device kinds of the fire model that are alarms, and the bridge's reading kind of each.
READING_KIND = {"smoke": "smoke", "heat": "heat", "sprinkler": "heat"}
#: Event kinds of the fire model whose devices are replayed.
ACTIVATION_EVENTS = ("detector", "sprinkler")
#: Obscuration (1/m) of a smoke detector without its own (CFAST's default detector, 23.93 %/m).
DEFAULT_SMOKE_OBSCURATION = 0.2393
#: Quiet readings: smoke obscuration (1/m) and, without the run's initial temperature, heat (K; 20 °C ASSUMED).
QUIET_SMOKE = 0.0
QUIET_HEAT_K = 293.15
#: How far around the building the drill's scenario area reaches (degrees).
AREA_HALF_DEG = 0.005
_STATION_BAD = re.compile(r"[^A-Za-z0-9_.\-]+")


def sensor_id(device: str, prefix: str | None = None) -> str:
    """The station id of a device: ``<prefix>.<device>`` made a bridge station id (module docstring).

    Raises
    ------
    ValidationError
        When nothing of the name is left, or the id is longer than the bridge's 64 characters.
    """
    body = _STATION_BAD.sub("-", device.strip()).strip("-.")
    head = _STATION_BAD.sub("-", prefix.strip()).strip("-.") if prefix else ""
    sid = f"{head}.{body}" if head else body
    if not body or not sid[0].isalnum() or len(sid) > 64:
        raise ValidationError(f"device {device!r} (prefix {prefix!r}): station id {sid!r} must start with a letter "
                              "or digit and hold at most 64 characters; give a shorter prefix")
    return sid


@dataclass(frozen=True)
class Device:
    """One alarm device of the building, as a bridge sensor.

    Attributes
    ----------
    device : str
        The fire model's device name (``smoke 10/lobby``).
    sensor_id : str
        Its station id (:func:`sensor_id`).
    device_kind : str
        ``smoke``, ``heat`` or ``sprinkler``.
    storey : int
        Storey index (0 = ground).
    zone : str
        The compartment's name on its storey (``lobby``).
    alarm_value : float
        The reading at activation in SI (1/m for smoke, K for heat).
    quiet_value : float
        The reading before it.
    """

    device: str
    sensor_id: str
    device_kind: str
    storey: int
    zone: str
    alarm_value: float
    quiet_value: float

    @property
    def kind(self) -> str:
        """The bridge's reading kind: ``smoke`` or ``heat``."""
        return READING_KIND[self.device_kind]

    @property
    def unit(self) -> str:
        return "1/m" if self.kind == "smoke" else "K"


@dataclass(frozen=True)
class Activation:
    """A device the run saw operate, and when (s since ignition)."""

    time_s: float
    device: Device


@dataclass(frozen=True)
class FireDrill:
    """A fire run's devices and activations, ready to write as a registry and a drill (module docstring)."""

    building_id: str
    building: str
    origin_storey: int | None
    duration_s: float
    lon: float
    lat: float
    n_storeys: int
    floor_area_m2: float
    devices: tuple[Device, ...]
    activations: tuple[Activation, ...]
    source: str = ""

    # ------------------------------------------------------------------ parts
    def registry(self) -> Any:
        """The building's devices as a :class:`twin.sensors.SensorRegistry` (module docstring)."""
        return devices_registry(self.devices, self.building_id, self.lon, self.lat)

    def injects(self) -> list[dict[str, Any]]:
        """The drill's ``[[injects]]`` tables: a quiet reading at 0 s and the alarm at activation, per device
        that operates, in time order."""
        out = []
        for a in self.activations:
            d = a.device
            out.append({"after": "0 s", "kind": "sensor_value",
                        "note": f"{d.device}: quiet before the fire",
                        "payload": {"station": d.sensor_id, "sensor": d.kind, "value": d.quiet_value, "unit": d.unit}})
        for a in self.activations:
            d = a.device
            out.append({"after": f"{a.time_s:.3f} s", "kind": "sensor_value",
                        "note": f"{d.device} operates (predicted {a.time_s:.1f} s after ignition, storey {d.storey})",
                        "payload": {"station": d.sensor_id, "sensor": d.kind, "value": d.alarm_value,
                                    "unit": d.unit}})
        return out

    @property
    def first(self) -> Activation | None:
        return self.activations[0] if self.activations else None

    # ------------------------------------------------------------------ files
    def write(self, out_dir: str | os.PathLike, *, name: str | None = None, speed: float = 1.0,
              start: datetime | None = None) -> dict[str, Path]:
        """Write ``sensors.json``, the drill file and its scenario into ``out_dir``; returns them by role
        (``sensors``, ``drill``, ``scenario``).

        Raises
        ------
        ValidationError
            When the run saw no device operate (nothing to replay), or ``name`` is not ``[a-z][a-z0-9_]*``.
        """
        if not self.activations:
            raise ValidationError(f"fire run of {self.building_id}: no detector or sprinkler operated within its "
                                  f"{self.duration_s:g} s, so there is nothing to replay; run the fire longer")
        name = name or f"{_ident(self.building_id)}_fire_drill"
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,50}", name):
            raise ValidationError(f"name={name!r}: a drill name is [a-z][a-z0-9_]* (at most 51 characters)")
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        sensors = out / SENSORS_NAME
        sensors.write_text(json.dumps(self.registry().to_records(), ensure_ascii=False, indent=1) + "\n",
                           encoding="utf-8")
        scenario = out / f"{name}_scenario.toml"
        scenario.write_text(self._scenario_toml(name, start), encoding="utf-8")
        drill = out / f"{name}.toml"
        drill.write_text(self._drill_toml(scenario.name, speed), encoding="utf-8")
        return {"sensors": sensors, "drill": drill, "scenario": scenario}

    def _scenario_toml(self, name: str, start: datetime | None) -> str:
        start = start or datetime.now(UTC).replace(second=0, microsecond=0)
        start = start.astimezone(timezone(timedelta(hours=8)))
        # the scenario's window holds every activation (a drill's inject must lie inside it)
        last = max((a.time_s for a in self.activations), default=0.0)
        duration = max(self.duration_s, math.ceil(last) + 1.0)
        h = AREA_HALF_DEG
        lines = [
            "# The scenario of a fire drill written by `twin fire drill` (scenarios/fire_drill.py): the building's",
            "# place and the fire run's length; the detectors are registered in the store apart (sensors.json).",
            f"title = {_q(f'Fire in {self.building_id}, storey {self.origin_storey} (drill scenario)')}",
            f"description = {_q(self._about())}",
            "",
            "[time]",
            f"start = {start.isoformat()}",
            f"duration = {_q(f'{duration:g} s')}",
            "",
            "[area]",
            f"bbox = [{self.lon - h:.6f}, {self.lat - h:.6f}, {self.lon + h:.6f}, {self.lat + h:.6f}]",
            "",
            "[[hazards.fires]]",
            f"lon = {self.lon:.6f}",
            f"lat = {self.lat:.6f}",
            f"building = {_q(self.building_id)}",
            *([f"floor = {self.origin_storey}"] if self.origin_storey is not None else []),
            "",
            "# not run by the drill: a scenario names at least one model",
            "[models.evacuate_building]",
            f"levels = {self.n_storeys}",
            f"floor_area_m2 = {self.floor_area_m2:.1f}",
            "",
            "[[assumptions]]",
            'about = "time.start"',
            'text = "ASSUMED: ignition at the start; the readings are the fire run\'s predictions, not measurements"',
            "",
        ]
        return "\n".join(lines)

    def _about(self) -> str:
        first = self.first
        head = (f"first alarm {first.device.device} at {first.time_s:.1f} s" if first else "no alarm")
        return (f"Detector activations predicted by a fire run of {self.building} (storey {self.origin_storey}, "
                f"{self.duration_s:g} s): {len(self.activations)} device(s) operate, {head}. {self.source}").strip()

    def _drill_toml(self, scenario_file: str, speed: float) -> str:
        first_alarm = len(self.activations) + 1  # quiet readings first, then the alarms in time order
        lines = [
            "# A fire drill written by `twin fire drill` (scenarios/fire_drill.py): the detector readings a fire run",
            "# predicts, played through MQTT as if live. Register sensors.json in the store first",
            "# (`twin fire drill RUN_DIR --out DIR --store STORE`), run `twin bridge run` on the same store.",
            f"title = {_q(f'Fire in {self.building_id}: predicted detector alarms')}",
            f"description = {_q(self._about())}",
            f"scenario = {_q(scenario_file)}",
            f"speed = {float(speed)!r}",
            "scenario_injects = false",
            "",
        ]
        for inj in self.injects():
            p = inj["payload"]
            lines += ["[[injects]]", f"after = {_q(inj['after'])}", 'kind = "sensor_value"', f"note = {_q(inj['note'])}",
                      f"payload = {{ station = {_q(p['station'])}, sensor = {_q(p['sensor'])}, "
                      f"value = {float(p['value'])!r}, unit = {_q(p['unit'])} }}", ""]
        lines += ["[[targets]]", 'name = "ack_first_alarm"',
                  'title = "Acknowledge the first detector alarm within 2 min (ASSUMED training target)"',
                  f"inject = {first_alarm}", 'action = "acknowledge"', 'within = "2 min"', ""]
        return "\n".join(lines)


def _q(text: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(str(text), ensure_ascii=False)


def _ident(text: str) -> str:
    s = re.sub(r"[^a-z0-9_]+", "_", text.lower()).strip("_")
    return s if s and s[0].isalpha() else f"b_{s}"


# ----------------------------------------------------------------------------- reading a run
def run_dataset(run: Any) -> Any:
    """The fire Dataset of a run folder (``fire.nc``), a ``fire.nc`` path, a Dataset or a FireResult."""
    import xarray as xr

    if isinstance(run, xr.Dataset):
        return run
    if hasattr(run, "dataset") and isinstance(run.dataset, xr.Dataset):
        return run.dataset
    p = Path(run)
    path = p / "fire.nc" if p.is_dir() else p
    if not path.is_file():
        raise ValidationError(f"fire run {str(run)!r}: no fire.nc there; give a run folder of `twin fire run` "
                              "(or the fire.nc file itself)")
    with xr.open_dataset(path) as ds:
        return ds.load()


def run_events(ds: Any) -> list[dict[str, Any]]:
    """The run's events (fire.nc's ``events`` attribute, a JSON list)."""
    raw = ds.attrs.get("events")
    if raw is None:
        raise ValidationError("fire run: its Dataset has no 'events' attribute (the JSON list of the run's "
                              "events); write the run with physics.fire_sim / `twin fire run`")
    events = json.loads(raw) if isinstance(raw, str) else list(raw)
    if not isinstance(events, list):
        raise ValidationError(f"fire run: attribute 'events' is {type(events).__name__}, not a JSON list")
    return events


def _zone(compartment: str) -> str:
    """``10/lobby`` -> ``lobby`` (the compartment's name on its storey)."""
    head, _, tail = compartment.partition("/")
    return tail if tail and head.lstrip("-").isdigit() else compartment


def building_spec(ref: Any) -> Any:
    """The :class:`physics.fire_building.FireBuildingSpec` of an example name, a file or a spec."""
    from physics.fire_building import EXAMPLES, FireBuildingSpec, load_example, load_fire_building

    if isinstance(ref, FireBuildingSpec):
        return ref
    ref = str(ref)
    if ref in EXAMPLES:
        return load_example(ref)
    if Path(ref).is_file():
        return load_fire_building(ref)
    raise ValidationError(f"building={ref!r}: neither an example ({sorted(EXAMPLES)}) nor a fire building file")


def _device_rows(net: Any, sprinklers: bool) -> list[tuple[int, str, str, float | None]]:
    """(compartment, name, kind, rated activation °C or None) of the devices a fire run equips: those of
    :func:`physics.fire_sim.device_set` (the run's own rules, so drill and run cannot drift apart)."""
    import numpy as np

    from physics.fire_sim import device_set

    devices = device_set(net, sprinklers_on=sprinklers)
    if not len(devices):
        return []
    act_k = devices._col("activation_k")
    return [(int(c), name, kind, None if not np.isfinite(k) else float(k) - 273.15)
            for c, name, kind, k in zip(devices.compartment, devices.names, devices.kind, act_k, strict=True)]


def building_devices(spec: Any, prefix: str, quiet_k: Any = None, *, sprinklers: bool | None = None) -> list[Device]:
    """Every alarm device a fire run of the building equips (:func:`_device_rows`) as :class:`Device` records.

    ``sprinklers``: None for the building file's (installed or not), True/False as a run's override;
    ``quiet_k`` (N,) the compartments' initial temperatures (K) when known. Smoke detectors read the
    obscuration of CFAST's default detector at activation (:data:`DEFAULT_SMOKE_OBSCURATION`), heat devices
    their rated link temperature; never less than 1.25 × the bridge's smoke alarm or 1 K above its heat alarm.
    """
    from hardware_bridge.fusion.fire import alarm_thresholds
    from physics.fire_building import build_network

    net = build_network(spec)
    installed = bool(net.attrs.get("sprinklers", {}).get("installed", False))
    thr = alarm_thresholds()
    out = []
    for c, name, kind, rated_c in _device_rows(net, installed if sprinklers is None else bool(sprinklers)):
        if kind == "smoke":
            alarm, quiet = max(DEFAULT_SMOKE_OBSCURATION, 1.25 * thr["smoke"]), QUIET_SMOKE
        else:
            alarm = max(float(rated_c) + 273.15, thr["heat"] + 1.0)
            quiet = float(quiet_k[c]) if quiet_k is not None and math.isfinite(float(quiet_k[c])) else QUIET_HEAT_K
            quiet = min(quiet, thr["heat"] - 1.0)
        out.append(Device(device=name, sensor_id=sensor_id(name, prefix), device_kind=kind, storey=int(net.storey[c]),
                          zone=_zone(str(net.names[c])), alarm_value=round(alarm, 4), quiet_value=round(quiet, 3)))
    return out


def devices_registry(devices: Any, building_id: str, lon: float, lat: float) -> Any:
    """:class:`Device` records as a :class:`twin.sensors.SensorRegistry` of bridge sensors (module docstring)."""
    from twin.sensors import Sensor, SensorRegistry

    return SensorRegistry(
        Sensor(id=d.sensor_id, kind=d.kind, name=f"{building_id} {d.device}", lon=float(lon), lat=float(lat),
               unit=d.unit, properties={"building": building_id, "floor": d.storey, "zone": d.zone,
                                        "device": d.device, "device_kind": d.device_kind})
        for d in devices)


def detector_registry(building: Any, building_id: str | None = None, *, prefix: str | None = None,
                      lon: float | None = None, lat: float | None = None) -> Any:
    """The sensor registry of a building's detectors and sprinklers without a run (an example name, a file or a
    spec); ``building_id`` defaults to the example's name or the file's stem, the place to the building file's.

    Raises
    ------
    ValidationError
        When the building cannot be found or has no place and none is given.
    """
    spec = building_spec(building)
    bid = building_id or (_ident(spec.name) if hasattr(building, "fire") else Path(str(building)).stem)
    loc = getattr(spec, "location", None)
    if lon is None or lat is None:
        if loc is None:
            raise ValidationError(f"building {bid!r} has no location in its file: give lon and lat")
        lon, lat = float(loc.lon), float(loc.lat)
    return devices_registry(building_devices(spec, prefix or bid), bid, lon, lat)


def drill_from_run(run: Any, *, building: Any = None, building_id: str | None = None,
                   prefix: str | None = None, lon: float | None = None, lat: float | None = None) -> FireDrill:
    """The drill of a fire run (module docstring).

    Parameters
    ----------
    run : path, xarray.Dataset or FireResult
        A run folder (``fire.nc`` in it), the fire.nc file, its Dataset or the result.
    building : example name, file or FireBuildingSpec, optional
        The run's building (default: fire.nc's ``building`` attribute, an example name or a file).
    building_id : str, optional
        The ``building`` property of the sensors (what the bridge groups alarms by and the fire
        watcher maps back to a building file); default the example name or the file's stem.
    prefix : str, optional
        Of the sensor ids (default ``building_id``).
    lon, lat : float, optional
        The building's place (default fire.nc's ``lon``/``lat``, else the building file's).

    Raises
    ------
    ValidationError
        When the run has no events, the building cannot be found, or it has no place.
    """
    ds = run_dataset(run)
    events = run_events(ds)
    ref = building if building is not None else run_building(run, ds)
    spec = building_spec(ref)
    bid = building_id or (Path(str(ref)).stem if not hasattr(ref, "fire") else _ident(spec.name))
    quiet = _initial_temperatures(ds)
    installed = bool(getattr(spec.fire.sprinklers, "installed", False))
    devices = building_devices(spec, prefix or bid, quiet, sprinklers=installed or ds.attrs.get("sprinklers") == "on")
    by_name = {d.device: d for d in devices}
    acts: dict[str, float] = {}
    for e in events:
        if e.get("kind") not in ACTIVATION_EVENTS or not e.get("device"):
            continue
        dev = str(e["device"])
        if dev not in by_name:
            raise ValidationError(f"fire run: event device {dev!r} is no device of building {bid!r} "
                                  f"({len(by_name)} devices, e.g. {list(by_name)[:3]}); give the run's building")
        t = float(e["time_s"])
        acts[dev] = min(t, acts.get(dev, math.inf))
    activations = tuple(sorted((Activation(t, by_name[d]) for d, t in acts.items()),
                               key=lambda a: (a.time_s, a.device.storey, a.device.device)))
    where_lon = lon if lon is not None else _attr_float(ds, "lon")
    where_lat = lat if lat is not None else _attr_float(ds, "lat")
    loc = getattr(spec, "location", None)
    if where_lon is None and loc is not None:
        where_lon, where_lat = float(loc.lon), float(loc.lat)
    if where_lon is None or where_lat is None:
        raise ValidationError(f"building {bid!r} has no place (no lon/lat in fire.nc or the building file): "
                              "give lon and lat")
    origin = ds.attrs.get("origin_storey")
    return FireDrill(building_id=bid, building=str(ref if not hasattr(ref, "fire") else spec.name),
                     origin_storey=None if origin is None else int(origin),
                     duration_s=float(ds.attrs.get("duration_s", float(ds["time"].values[-1]) if "time" in ds else 0.0)),
                     lon=float(where_lon), lat=float(where_lat), n_storeys=int(spec.n_storeys),
                     floor_area_m2=float(spec.plate_area_m2(0)), devices=tuple(devices), activations=activations,
                     source=str(ds.attrs.get("source_note", "")))


def run_building(run: Any, ds: Any) -> str:
    """The building a run was made of: its request's ``building`` (``summary.json`` of a run folder), else
    fire.nc's ``building_source`` attribute, else its ``building`` when that is an example, a file or an
    example's name (a copy of an example under the same name is taken for the example: give ``building``).

    Raises
    ------
    ValidationError
        When none of those names a building: give it.
    """
    from physics.fire_building import EXAMPLES, load_example

    if isinstance(run, str | os.PathLike):
        p = Path(run)
        summary = (p if p.is_dir() else p.parent) / "summary.json"
        try:
            ref = json.loads(summary.read_text(encoding="utf-8")).get("request", {}).get("building")
        except (OSError, ValueError, AttributeError):
            ref = None
        if isinstance(ref, str) and (ref in EXAMPLES or Path(ref).is_file()):
            return ref
    source = str(ds.attrs.get("building_source", ""))
    if source in EXAMPLES or (source and Path(source).is_file()):
        return source
    name = str(ds.attrs.get("building", ""))
    if name in EXAMPLES or (name and Path(name).is_file()):
        return name
    for example in EXAMPLES:
        if load_example(example).name == name:
            return example
    raise ValidationError(f"fire run: its building {name!r} is no example and no file, and no summary.json names "
                          "it; give the building (--building FILE|EXAMPLE)")


def _attr_float(ds: Any, key: str) -> float | None:
    v = ds.attrs.get(key)
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _initial_temperatures(ds: Any) -> Any:
    if "lower_layer__temperature" not in ds or ds.sizes.get("time", 0) == 0:
        return None
    return ds["lower_layer__temperature"].isel(time=0).values


# ----------------------------------------------------------------------------- the store and the broker
def register_detectors(store_dir: str | os.PathLike, sensors: Any) -> int:
    """Put a drill's detectors (a registry, a ``sensors.json`` path or records) into a store's live registry,
    where a running bridge picks them up; returns how many."""
    from twin.sensors import SensorRegistry
    from twin.store import Store

    if isinstance(sensors, str | os.PathLike):
        path = Path(sensors)
        try:
            sensors = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValidationError(f"{path}: not a sensor registry file (a JSON list of sensor records): {exc}") from None
    if not isinstance(sensors, SensorRegistry):
        sensors = SensorRegistry.from_records(sensors)
    with Store.open(store_dir) as store:
        return store.put_sensors(sensors)


def play_drill(drill_file: str | os.PathLike, store_dir: str | os.PathLike, broker: str, *,
               speed: float | None = None, sensors: Any = None, progress: Any = None) -> dict[str, Any]:
    """Register the detectors (``sensors``: default the ``sensors.json`` beside the drill file) and play the drill
    (:class:`scenarios.drill.DrillPlayer`); returns the player's summary with the injects played."""
    from scenarios.drill import DrillPlayer, load_drill

    drill_file = Path(drill_file)
    register_detectors(store_dir, sensors if sensors is not None else drill_file.parent / SENSORS_NAME)
    player = DrillPlayer(load_drill(drill_file), store_dir, broker=broker, speed=speed,
                         progress=progress or (lambda _line: None))
    summary = player.play()
    return summary | {"injects": player.played}


__all__ = ["ACTIVATION_EVENTS", "Activation", "Device", "FireDrill", "READING_KIND", "SENSORS_NAME",
           "building_devices", "building_spec", "detector_registry", "devices_registry", "drill_from_run",
           "play_drill", "register_detectors", "run_building", "run_dataset", "run_events", "sensor_id"]
