"""Drills for trainers: a drill file, its inject timeline, and the player that plays it live.

A **drill file** (TOML or YAML) names a scenario — a built-in name or a scenario file,
relative to the drill file — and adds what the trainer measures::

    title = "Typhoon night on Futian: first hour in the command room"
    scenario = "futian_typhoon_night"
    speed = 1.0                      # default pace; `twin drill run --speed` overrides
    scenario_injects = true          # play the scenario's [[injects]] too (default)

    [[injects]]                      # the drill's own injects (same types as a scenario's)
    after = "5 min"
    kind = "sensor_value"
    payload = { station = "FT-RG01", sensor = "rain_gauge", value = 120.0, unit = "mm" }

    [[targets]]
    name = "ack_rain_alarm"
    title = "Acknowledge the rain alarm within 2 min"
    inject = 1                       # 1-based position in the timeline as written
    action = "acknowledge"
    within = "2 min"

    [[sensors]]                      # the drill's alert levels for a sensor of its scenario
    station = "FT-WL01"
    kind = "water_level"
    thresholds = { advisory = 3.5, warning = 4.0, alarm = 4.5 }   # m, the kind's SI unit

The **timeline** is the scenario's injects (when ``scenario_injects``) followed by the
drill's, numbered 1, 2, ... in that order (the numbers targets use); they are played in
order of their offset from the scenario's start.

A **target** asks for an action within a time of its inject: ``acknowledge`` the alert
the inject raised (a ``sensor_value`` crossing a bridge alert rule, or the ``road_lost``
/ ``station_lost`` event itself, which is an alert of severity warning), ``dispatch`` a
unit to the incident an ``incident`` inject created, ``evacuate`` a zone or start a
``forecast`` run from the console after any inject. ``clock = "drill"`` (default) measures the reaction on the drill's clock (wall
seconds times the speed), ``"wall"`` in real seconds.

The **player** (:class:`DrillPlayer`, ``twin drill run``) plays the timeline at real
time or ``speed`` times faster: ``sensor_value`` injects are published through MQTT on
the bridge's topics (``sz/v1/<kind>/<station>/obs``, the payload of
:mod:`hardware_bridge.schema`, as :mod:`hardware_bridge.sources.simulated` sends them),
so ``twin bridge run`` ingests them and its alert rules fire; ``incident``,
``road_lost`` and ``station_lost`` are written to the store as live events
(``source="drill"``). The drill log is in the store's live events too:
``drill_started`` (the drill, its plan and targets), one ``drill_inject`` per inject
(drill id, position, kind, planned and actual wall time, the event it wrote) and
``drill_ended``. The scenario's sensors are registered in the store so the console
places them, with their ``thresholds`` (the scenario's, or the drill's ``[[sensors]]``
levels, which replace them for that station and kind): the running bridge reads the
registry again when it changes (:class:`hardware_bridge.twin_link.TwinLink`) and uses
them as the station's alert rules, so a water-level inject past a level raises an alert
to acknowledge though water levels have no default rules. The debrief
(:mod:`scenarios.debrief`) reads that log.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from hardware_bridge.schema import Kind
from scenarios.files import (
    BUILTIN_DIR,
    LoadedScenario,
    Problem,
    ScenarioError,
    load_scenario,
    read_file,
)
from scenarios.schema import Duration, Inject, SensorThresholds, Station, format_duration
from twin.errors import ConfigError, ValidationError

#: Event kinds of the drill log (live events of the store).
DRILL_STARTED = "drill_started"
DRILL_INJECT = "drill_inject"
DRILL_ENDED = "drill_ended"
DRILL_SOURCE = "drill"
#: Actions a target can ask for, and the inject kinds each can answer.
TARGET_ACTIONS: dict[str, tuple[str, ...]] = {
    "acknowledge": ("sensor_value", "road_lost", "station_lost"),
    "dispatch": ("incident",),
    "evacuate": ("sensor_value", "incident", "road_lost", "station_lost"),
    "forecast": ("sensor_value", "incident", "road_lost", "station_lost"),
}
MAX_SPEED = 10_000.0
#: The built-in drills (``scenarios/builtin/drills/*.toml``).
DRILLS_DIR = BUILTIN_DIR / "drills"


class DrillError(ScenarioError):
    """A drill file that cannot play; ``problems`` lists every :class:`~scenarios.files.Problem` found."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        super().__init__(source, problems)
        lines = "\n  ".join(str(p) for p in self.problems)
        self.args = (f"drill {source}: {len(self.problems)} problem(s):\n  {lines}",)


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class Target(_Strict):
    """What a trainee should do, and how soon after an inject.

    Attributes
    ----------
    name : str
        Identifier (``[a-z][a-z0-9_]*``).
    title : str
        For people (e.g. "Acknowledge the rain alarm within 2 min").
    inject : int
        1-based position of the inject in the drill's timeline as written.
    action : str
        ``acknowledge``, ``dispatch``, ``evacuate`` or ``forecast`` (see :data:`TARGET_ACTIONS`).
    within : float
        The limit (s), written with its unit.
    clock : str
        ``drill`` (wall seconds times the speed) or ``wall`` (real seconds).
    """

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    title: str = Field(default="", max_length=200)
    inject: int = Field(ge=1, le=10_000)
    action: Literal["acknowledge", "dispatch", "evacuate", "forecast"]
    within: Duration = Field(gt=0.0, le=7 * 86400.0)
    clock: Literal["drill", "wall"] = "drill"


class DrillSensor(_Strict):
    """The drill's alert levels for a sensor of its scenario (the scenario's ``[[sensors]]`` entry of that
    station and kind): they replace the scenario's thresholds of it for this drill.

    Attributes
    ----------
    station, kind : str
        The scenario's sensor.
    thresholds : SensorThresholds
        Severity -> level in the kind's SI unit (:class:`scenarios.schema.SensorThresholds`).
    """

    station: Station
    kind: Kind = Field(strict=False)
    thresholds: SensorThresholds


class DrillFile(_Strict):
    """A drill file, validated (see the module docstring)."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=20_000)
    scenario: str = Field(min_length=1, max_length=1024)
    speed: float = Field(default=1.0, gt=0.0, le=MAX_SPEED, strict=False, allow_inf_nan=False)
    scenario_injects: bool = True
    injects: list[Inject] = Field(default_factory=list, max_length=10_000)
    targets: list[Target] = Field(default_factory=list, max_length=1000)
    sensors: list[DrillSensor] = Field(default_factory=list, max_length=10_000)


@dataclass(frozen=True)
class PlannedInject:
    """One inject of the timeline: its 1-based position as written, its offset (s) from the start."""

    position: int
    offset_s: float
    inject: Any

    @property
    def kind(self) -> str:
        return self.inject.kind

    def describe(self) -> str:
        """A short text of what the inject does."""
        p = self.inject.payload
        if self.kind == "sensor_value":
            what = p.result if p.value is None else f"{p.value:g} {p.unit}"
            return f"{p.station}/{p.sensor.value} = {what}"
        if self.kind == "incident":
            return f"{p.incident} at {p.lon:.4f}, {p.lat:.4f}"
        if self.kind == "road_lost":
            where = f"way {p.osm_way}" if p.osm_way is not None else f"{p.lon:.4f}, {p.lat:.4f}"
            return f"road lost near {where}" + (f" ({p.reason})" if p.reason else "")
        return f"station {p.station} lost" + (f" ({p.reason})" if p.reason else "")


@dataclass(frozen=True)
class LoadedDrill:
    """A checked drill: the file, its scenario, the timeline in play order."""

    drill: DrillFile
    path: Path
    scenario: LoadedScenario
    timeline: list[PlannedInject]
    #: The scenario's sensors with the drill's thresholds in place (what the player registers).
    sensors: tuple = ()

    @property
    def duration_s(self) -> float:
        return float(self.scenario.scenario.time.duration)

    def target_inject(self, target: Target) -> PlannedInject:
        """The planned inject a target is about."""
        return next(p for p in self.timeline if p.position == target.inject)


# ----------------------------------------------------------------------------- loading
def builtin_drills() -> list[str]:
    """Names of the built-in drills."""
    return sorted(p.stem for p in DRILLS_DIR.glob("*.toml"))


def find_drill(name_or_path: str | os.PathLike) -> Path:
    """The drill file at a path, or the built-in drill of that name.

    Raises
    ------
    DrillError
        When it is neither (listing the built-in drills).
    """
    p = Path(name_or_path).expanduser()
    if p.is_file():
        return p
    builtin = DRILLS_DIR / f"{name_or_path}.toml"
    if builtin.is_file():
        return builtin
    raise DrillError(str(name_or_path), [Problem("(file)", str(name_or_path), "no such drill file, and not "
                                                    f"a built-in drill; built-ins are {builtin_drills()}")])


def load_drill(path: str | os.PathLike) -> LoadedDrill:
    """Load and check a drill file (or a built-in drill by name) and the scenario it names; nothing plays
    on a bad file.

    Raises
    ------
    DrillError
        (a :class:`~scenarios.files.ScenarioError`) listing every problem found (in the drill file and in its scenario), each with
        its path in the file, the value and what is allowed.
    """
    import pydantic

    from scenarios.files import _translate

    p = find_drill(path)
    data = {"name": p.stem.replace("-", "_").lower(), **read_file(p)}
    problems: list[Problem] = []
    drill = None
    try:
        drill = DrillFile.model_validate(data)
    except pydantic.ValidationError as exc:
        problems += _translate(exc, prefix="", data=data)
    loaded = _scenario_of(data.get("scenario"), p.parent, problems)
    if loaded is None:
        raise DrillError(str(p), problems)
    # the timeline and targets are checked even when other parts of the file fail
    injects, targets, own, own_sensors = _parts(drill, data)
    timeline = _timeline(loaded, own, injects)
    problems += _inject_problems(injects, loaded)
    problems += _target_problems(targets, timeline)
    sensors = _sensors(own_sensors, loaded, problems)
    problems = list(dict.fromkeys(problems))
    if problems or drill is None:
        raise DrillError(str(p), problems)
    return LoadedDrill(drill, p, loaded, timeline, sensors)


def _parts(drill: DrillFile | None, data: dict) -> tuple[list, list, bool, list]:
    """(the drill's own injects, its targets, whether the scenario's injects play, its sensors): from the
    validated drill, or each item that validates alone (None for the others) when the file failed."""
    if drill is not None:
        return list(drill.injects), list(drill.targets), drill.scenario_injects, list(drill.sensors)
    from pydantic import TypeAdapter

    def each(key: str, adapter: Any) -> list:
        raw = data.get(key)
        return [_try(adapter, r) for r in raw] if isinstance(raw, list) else []

    own = data.get("scenario_injects", True)
    return (each("injects", TypeAdapter(Inject)), each("targets", TypeAdapter(Target)), own is not False,
            each("sensors", TypeAdapter(DrillSensor)))


def _sensors(own: list, loaded: LoadedScenario, problems: list[Problem]) -> tuple:
    """The scenario's sensors with the drill's thresholds in place, each checked as a scenario sensor
    (levels its kind takes, in range); problems appended (a sensor the scenario lacks, one given twice)."""
    import pydantic

    from scenarios.files import _translate
    from scenarios.schema import Sensor

    out = {(s.station, s.kind.value): s for s in loaded.scenario.sensors}
    seen: set[tuple[str, str]] = set()
    for i, ds in enumerate(own):
        if ds is None:
            continue
        key = (ds.station, ds.kind.value)
        if key not in out:
            problems.append(Problem(f"sensors.{i}.station", ds.station, f"no {ds.kind.value} sensor of that "
                                    f"station in the scenario's [[sensors]]; declared: {sorted(out)}"))
            continue
        if key in seen:
            problems.append(Problem(f"sensors.{i}", f"{ds.station} {ds.kind.value}", "given twice; give one "
                                    "entry per sensor"))
            continue
        seen.add(key)
        rec = out[key].model_dump() | {"thresholds": ds.thresholds.levels()}
        try:
            out[key] = Sensor.model_validate(rec)
        except pydantic.ValidationError as exc:
            problems += [Problem(f"sensors.{i}.{q.path}", _inline(q.value), q.message)
                         for q in _translate(exc, prefix="", data=rec)]
    return tuple(out.values())


def _try(adapter: Any, raw: Any) -> Any:
    import pydantic

    try:
        return adapter.validate_python(raw)
    except pydantic.ValidationError:
        return None


def _inline(value: Any) -> Any:
    """A table as its TOML inline text (problems are hashable); other values as they are."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {v!r}" for k, v in value.items()) + " }"
    return value


def _scenario_of(name: Any, base: Path, problems: list[Problem]) -> LoadedScenario | None:
    """The drill's scenario (a file relative to the drill, or a built-in name); its problems prefixed."""
    if not isinstance(name, str) or not name:
        return None
    candidate = base / name
    try:
        return load_scenario(candidate if candidate.is_file() else name)
    except ScenarioError as exc:
        problems += [Problem(f"scenario: {q.path}" if q.path != "(file)" else "scenario", q.value, q.message)
                     for q in exc.problems]
        return None


def _timeline(loaded: LoadedScenario, scenario_injects: bool, injects: list) -> list[PlannedInject]:
    """The scenario's injects (when ``scenario_injects``) then the drill's, numbered as written, in play order."""
    sc = loaded.scenario
    written = (list(sc.injects) if scenario_injects else []) + list(injects)
    plan = [PlannedInject(i, _offset_s(inj, sc.time.start), inj)
            for i, inj in enumerate(written, start=1) if inj is not None]
    return sorted(plan, key=lambda q: (q.offset_s, q.position))


def _offset_s(inj: Any, start: datetime) -> float:
    return float(inj.after) if inj.after is not None else (inj.at - start).total_seconds()


def _inject_problems(injects: list, loaded: LoadedScenario) -> list[Problem]:
    """The drill's own injects: inside the scenario's window, naming declared sensors."""
    sc = loaded.scenario
    declared = {(s.station, s.kind.value) for s in sc.sensors}
    out = []
    for i, inj in enumerate(injects):
        if inj is None:
            continue
        off = _offset_s(inj, sc.time.start)
        if not 0.0 <= off <= sc.time.duration:
            key = "after" if inj.after is not None else "at"
            out.append(Problem(f"injects.{i}.{key}", format_duration(off) if key == "after" else inj.at.isoformat(),
                               f"outside the scenario's window (0 .. {format_duration(sc.time.duration)} "
                               f"from {sc.time.start.isoformat()})"))
        if inj.kind == "sensor_value" and declared and (inj.payload.station, inj.payload.sensor.value) not in declared:
            out.append(Problem(f"injects.{i}.payload.station", inj.payload.station,
                               f"no {inj.payload.sensor.value} sensor of that station in the scenario's "
                               f"[[sensors]]; declared: {sorted(declared)}"))
    return out


def _target_problems(targets: list, timeline: list[PlannedInject]) -> list[Problem]:
    by_pos = {p.position: p for p in timeline}
    out = []
    for i, t in enumerate(targets):
        if t is None:
            continue
        planned = by_pos.get(t.inject)
        if planned is None:
            out.append(Problem(f"targets.{i}.inject", t.inject, f"no inject at that position; the timeline "
                               f"runs 1..{max(by_pos, default=0)} (the scenario's injects first when "
                               "scenario_injects is true, then the drill's)"))
        elif planned.kind not in TARGET_ACTIONS[t.action]:
            out.append(Problem(f"targets.{i}.action", t.action, f"inject {t.inject} is a {planned.kind}; "
                               f"{t.action} answers {list(TARGET_ACTIONS[t.action])}"))
    seen: set[str] = set()
    for i, t in enumerate(targets):
        if t is not None and t.name in seen:
            out.append(Problem(f"targets.{i}.name", t.name, "used by another target; names must be unique"))
        elif t is not None:
            seen.add(t.name)
    return out


# ----------------------------------------------------------------------------- playing
def new_drill_id(name: str, now: datetime | None = None) -> str:
    """``<name>-<UTC yyyymmddThhmmssZ>-<4 hex>``: unique per play."""
    now = now or datetime.now(UTC)
    return f"{name}-{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(2)}"


def iso(t: datetime) -> str:
    """UTC ISO 8601 text with ``Z``."""
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class DrillPlayer:
    """Plays a :class:`LoadedDrill` into a store and an MQTT broker (module docstring).

    Parameters
    ----------
    drill : LoadedDrill
    store_dir : path
        The twin's store (the one ``twin bridge run`` and ``twin serve`` use).
    broker : str or None
        ``HOST:PORT`` of the broker the bridge subscribes to; needed when the timeline has
        ``sensor_value`` injects.
    speed : float or None
        How many times faster than real time (None: the drill file's ``speed``).
    start_at : float
        Offset (s) of the scenario to start from: earlier injects are logged as skipped.
    progress : callable
        Called with one line of text per inject played (and at start and end).
    sleep : callable
        ``sleep(seconds)`` (the default waits in real time).
    connect_timeout_s : float
        How long to wait for the broker before giving up (FetchError).
    """

    drill: LoadedDrill
    store_dir: str | os.PathLike
    broker: str | None = None
    speed: float | None = None
    start_at: float = 0.0
    progress: Callable[[str], None] = print
    sleep: Callable[[float], None] = time.sleep
    connect_timeout_s: float = 10.0
    drill_id: str = ""
    played: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        speed = self.drill.drill.speed if self.speed is None else float(self.speed)
        if not 0.0 < speed <= MAX_SPEED:
            raise ValidationError(f"speed={self.speed!r}: must be more than 0 and at most {MAX_SPEED:g} "
                                  "(times real time)")
        self.speed = speed
        if not 0.0 <= self.start_at <= self.drill.duration_s:
            raise ValidationError(f"start_at={format_duration(self.start_at)}: must lie in the scenario's "
                                  f"window 0 .. {format_duration(self.drill.duration_s)}")
        if self.broker is None and any(p.kind == "sensor_value" for p in self._to_play()):
            raise ConfigError("the drill publishes sensor values through MQTT: give --broker HOST:PORT "
                              "(the broker `twin bridge run` subscribes to)")
        self.drill_id = self.drill_id or new_drill_id(self.drill.drill.name)

    def _to_play(self) -> list[PlannedInject]:
        return [p for p in self.drill.timeline if p.offset_s >= self.start_at]

    def play(self) -> dict[str, Any]:
        """Play the timeline; returns the summary written with ``drill_ended``.

        The broker is connected first: a broker that cannot be reached stops the drill before
        anything is written to the store.
        """
        from twin.store import Store

        publisher = self._publisher()
        try:
            with Store.open(self.store_dir) as store:
                return self._play(store, publisher)
        finally:
            if publisher is not None:
                publisher.close()

    def _play(self, store: Any, publisher: Any) -> dict[str, Any]:
        status = "done"
        try:
            self._register_sensors(store)
            t0 = datetime.now(UTC)
            m0 = time.monotonic()
            self._log(store, DRILL_STARTED, f"drill {self.drill_id} started", self._plan(t0))
            self.progress(f"drill {self.drill_id}: {len(self._to_play())} inject(s) at {self.speed:g}x")
            for p in self.drill.timeline:
                self._step(store, publisher, p, t0, m0)
        except BaseException as exc:
            status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            raise
        finally:
            summary = {"drill": self.drill_id, "status": status, "played": len(self.played)}
            self._log(store, DRILL_ENDED, f"drill {self.drill_id} {status}", summary)
            self.progress(f"drill {self.drill_id}: {status}, {len(self.played)} inject(s) played")
        return summary

    # ----------------------------------------------------------------- parts
    def _publisher(self) -> Any:
        if self.broker is None:
            return None
        from hardware_bridge.sources.mqtt import MqttPublisher, parse_broker

        host, port = parse_broker(self.broker)
        return MqttPublisher(host, port, client_id=f"twin-drill-{secrets.token_hex(4)}",
                             connect_timeout_s=self.connect_timeout_s)

    def _register_sensors(self, store: Any) -> None:
        from hardware_bridge.schema import KINDS
        from twin.sensors import Sensor

        sensors = []
        for s in self.drill.sensors or self.drill.scenario.scenario.sensors:
            spec = KINDS[s.kind]
            unit = spec.quantities[0].si_unit if spec.quantities else ""
            levels = s.thresholds.levels() if s.thresholds is not None else {}
            sensors.append(Sensor(id=s.station, kind=s.kind.value, name=s.name or s.station, lon=s.lon,
                                  lat=s.lat, unit=unit, properties={"drill": self.drill_id}, thresholds=levels))
        if sensors:
            store.put_sensors(sensors)

    def _plan(self, t0: datetime) -> dict[str, Any]:
        d = self.drill
        return {"drill": self.drill_id, "name": d.drill.name, "title": d.drill.title,
                "file": str(d.path), "scenario": d.scenario.scenario.name, "scenario_hash": d.scenario.hash,
                "speed": self.speed, "start_at_s": self.start_at, "started": iso(t0),
                "injects": [{"position": p.position, "kind": p.kind, "offset_s": p.offset_s,
                             "note": p.inject.note, "what": p.describe()} for p in d.timeline],
                "targets": [t.model_dump(mode="json") | {"within_s": t.within} for t in d.drill.targets]}

    def _step(self, store: Any, publisher: Any, p: PlannedInject, t0: datetime, m0: float) -> None:
        base = {"drill": self.drill_id, "position": p.position, "kind": p.kind, "note": p.inject.note,
                "what": p.describe(), "offset_s": p.offset_s}
        if p.offset_s < self.start_at:
            self._log(store, DRILL_INJECT, f"inject {p.position} skipped (before --start-at)",
                      base | {"status": "skipped"})
            return
        wait_s = (p.offset_s - self.start_at) / self.speed
        left = wait_s - (time.monotonic() - m0)
        if left > 0:
            self.sleep(left)
        actual = datetime.now(UTC)
        planned = t0 + timedelta(seconds=wait_s)
        written = self._do(store, publisher, p, actual)
        rec = base | written | {"status": "played", "planned_at": iso(planned), "actual_at": iso(actual),
                                "lag_s": round((actual - planned).total_seconds(), 3)}
        self._log(store, DRILL_INJECT, f"inject {p.position} ({p.kind}) played: {p.describe()}", rec)
        self.played.append(rec)
        self.progress(f"[{format_duration(p.offset_s):>8}] #{p.position} {p.kind}: {p.describe()} "
                      f"(lag {rec['lag_s']:.2f} s)")

    def _do(self, store: Any, publisher: Any, p: PlannedInject, now: datetime) -> dict[str, Any]:
        """Carry one inject out; returns what the log records of it (datastream or event id)."""
        if p.kind == "sensor_value":
            return self._publish(publisher, p, now)
        event = inject_event(p, self.drill_id, now)
        return {"event_id": store.put_event(event), "event_kind": event.kind}

    def _publish(self, publisher: Any, p: PlannedInject, now: datetime) -> dict[str, Any]:
        from hardware_bridge.schema import datastream_id, obs_topic

        v = p.inject.payload
        ds = datastream_id(v.station, v.sensor)
        rec = {"datastream": ds, "phenomenonTime": iso(now), "resultTime": iso(now), "seq": p.position,
               "result": v.result if v.value is None else v.value}
        if v.value is not None:
            rec["unit"] = v.unit
        publisher.publish(obs_topic(v.sensor, v.station), json.dumps(rec).encode())
        publisher.flush(30.0)
        return {"datastream": ds, "topic": obs_topic(v.sensor, v.station)}

    def _log(self, store: Any, kind: str, message: str, data: dict[str, Any]) -> int:
        from twin.events import Event

        return store.put_event(Event(time_s=time.time(), kind=kind, source=DRILL_SOURCE, severity="info",
                                     message=message, data=data))


def inject_event(p: PlannedInject, drill_id: str, now: datetime) -> Any:
    """The live event an ``incident``, ``road_lost`` or ``station_lost`` inject writes.

    An incident is severity info (the console's Incidents panel answers it with a dispatch);
    a lost road or station is a warning (an alert to acknowledge).
    """
    from twin.events import Event

    pl = p.inject.payload
    tag = {"drill": drill_id, "inject": p.position}
    if p.kind == "incident":
        data = {"lon": pl.lon, "lat": pl.lat, "incident": pl.incident, "id": f"{drill_id}-{p.position}",
                "needs": pl.needs, "on_scene_s": pl.on_scene} | tag
        return Event(time_s=now.timestamp(), wall_time=now, kind="incident", source=DRILL_SOURCE,
                     severity="info", message=f"{pl.incident.replace('_', ' ')}: {p.inject.note or p.describe()}",
                     data={k: v for k, v in data.items() if v is not None})
    if p.kind == "road_lost":
        data = {"lon": pl.lon, "lat": pl.lat, "osm_way": pl.osm_way, "reason": pl.reason,
                "lasts_s": pl.lasts} | tag
        return Event(time_s=now.timestamp(), wall_time=now, kind="road_lost", source=DRILL_SOURCE,
                     severity="warning", message=p.inject.note or p.describe(),
                     data={k: v for k, v in data.items() if v is not None})
    return Event(time_s=now.timestamp(), wall_time=now, kind="station_lost", source=DRILL_SOURCE,
                 severity="warning", message=p.inject.note or p.describe(),
                 data={"station": pl.station, "reason": pl.reason} | tag)


__all__ = ["DRILLS_DIR", "DRILL_ENDED", "DRILL_INJECT", "DRILL_SOURCE", "DRILL_STARTED", "TARGET_ACTIONS",
           "DrillError", "DrillFile", "DrillPlayer", "DrillSensor", "LoadedDrill", "PlannedInject", "Target",
           "builtin_drills", "find_drill", "inject_event", "iso", "load_drill", "new_drill_id"]
