"""The bridge's ``fire_origin`` events start fire runs: ``twin fire watch``.

The sensor bridge locates a fire's origin from the detectors
(:class:`hardware_bridge.fusion.fire.FireOrigins`: one ``fire_origin`` live
event per incident, a new one with ``corrected: true`` when an earlier alarm
arrives late). :class:`FireResponder` follows the store's live event log (rows
after the last one it saw, as the console's live feed does) and, for each
``fire_origin`` of a building it knows, starts a fire run
(:func:`respond`):

* **where**: the event's ``floor`` is the storey index (0 = ground), the
  detectors' ``floor`` property (:mod:`scenarios.fire_drill` writes it so; a
  registry counting floors from 1 must be written the same way); the
  compartment is the event's ``zone`` when that names a *room* of that storey
  in the building (a fire burns in a room: a zone naming the lobby, a corridor
  or a shaft is where the detector hangs, so the run takes the storey's first
  room, the fire model's default, and says so in ``compartment_source``);
* **the run**: the registered run kind ``fire`` (:mod:`physics.fire_run`)
  through the run pipeline, recorded in the store like every run (kind
  ``fire``, the request as params, plus ``fire_response``: the origin event,
  its key, the alarm time), into ``<runs_dir>/run-<id>/``, so the console lists
  it, its events stored tied to the run;
* **idempotent**: one run per incident origin, keyed by building, detector and
  alarm time (:func:`origin_key`); an origin whose key has a run in the store
  (running, done or failed) is not run again, so a restarted watcher or a
  second pass does nothing twice; a run the watcher was stopped in (Ctrl-C:
  recorded ``cancelled``) runs again when it starts again; a corrected origin
  has a new key and runs at its (corrected) floor, naming the run it supersedes;
* **bad input** (a building the watcher does not know, a floor outside the
  building, a run that fails) does not stop the watcher: the origin event is
  kept and a ``fire_response`` live event (severity warning) says why (once:
  a watcher started again does not repeat it); an origin of an unknown
  building runs once a watcher that knows the building looks at it again.

Every origin processed gets one ``fire_response`` live event (``status``
``done``, ``failed`` or ``skipped``, the run id, the floor and compartment,
and the estimated ignition time: the alarm time minus the run's own first
detector time).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from twin.errors import RunCancelled, TwinError, ValidationError

ORIGIN_KIND = "fire_origin"
RESPONSE_KIND = "fire_response"
RUN_KIND = "fire"
SOURCE = "fire_response"
#: Compartment kinds a fire starts in (:data:`physics.fire_network.COMPARTMENT_KINDS`).
FIRE_ROOM_KINDS = ("room",)


def origin_key(data: Mapping[str, Any]) -> str:
    """``building|detector|alarm time``: one incident origin (a corrected origin has another)."""
    return f"{data.get('building')}|{data.get('detector')}|{data.get('time')}"


def iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


# ----------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class ResponseSettings:
    """What every run the watcher starts shares (``twin fire watch`` options).

    Attributes
    ----------
    store : Path or str
        The live store (the one ``twin bridge run`` writes): a directory or a ``postgresql://`` URL.
    buildings : mapping
        Building id (the detectors' ``building`` property) -> fire building file or example name.
    runs_dir : Path, optional
        Where run folders go (default ``<store>/runs``, as the console's).
    growth, sprinklers, season, duration_s, dt_s, record_every_s
        The fire run's (``sprinklers``: ``"on"``, ``"off"`` or ``"building"`` for the building file's).
    report, map : bool
        Also write the run's ``report.html`` / ``map.html``.
    """

    store: Path | str
    buildings: Mapping[str, str]
    runs_dir: Path | None = None
    growth: str = "fast"
    sprinklers: str = "building"
    season: str = "summer"
    duration_s: float = 3600.0
    dt_s: float = 1.0
    record_every_s: float = 10.0
    report: bool = True
    map: bool = True

    def __post_init__(self) -> None:
        if self.sprinklers not in ("on", "off", "building"):
            raise ValidationError(f"sprinklers={self.sprinklers!r}: give on, off or building")
        for name in ("duration_s", "dt_s", "record_every_s"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
                raise ValidationError(f"{name}={v!r}: must be a number of seconds > 0")
        if not self.buildings:
            raise ValidationError("buildings: none given; name at least one (--building FILE [--building-id ID])")

    @property
    def runs(self) -> Path:
        from twin.cli.store_target import store_files_dir

        return Path(self.runs_dir) if self.runs_dir is not None else store_files_dir(self.store) / "runs"


def buildings_from(refs: Iterable[str], ids: Iterable[str] = ()) -> dict[str, str]:
    """Building id -> reference from ``--building`` values and optional ``--building-id`` values (paired in
    order; a building without one takes its example name or file stem).

    Raises
    ------
    ValidationError
        When there are more ids than buildings, a reference is neither an example nor a file, or two
        buildings share an id.
    """
    from physics.fire_building import EXAMPLES

    refs, ids = list(refs), list(ids)
    if len(ids) > len(refs):
        raise ValidationError(f"--building-id given {len(ids)} times for {len(refs)} --building: give one id per "
                              "building, in the same order")
    out: dict[str, str] = {}
    for i, ref in enumerate(refs):
        if ref not in EXAMPLES and not Path(ref).is_file():
            raise ValidationError(f"--building {ref!r}: no such file, and not an example ({sorted(EXAMPLES)})")
        bid = ids[i] if i < len(ids) else Path(ref).stem
        if bid in out:
            raise ValidationError(f"--building-id {bid!r}: given to two buildings ({out[bid]!r}, {ref!r}); ids must "
                                  "be unique")
        out[bid] = ref if ref in EXAMPLES else str(Path(ref).resolve())
    return out


# ----------------------------------------------------------------------------- one origin
@dataclass
class Response:
    """What the watcher did with one ``fire_origin`` event."""

    event_id: int
    origin_key: str
    building: str
    status: str  # done | failed | skipped | duplicate
    floor: int | None = None
    compartment: str | None = None
    compartment_source: str = ""
    run_id: int | None = None
    out_dir: Path | None = None
    reason: str = ""
    corrected: bool = False
    supersedes_run: int | None = None
    ignition_estimate: str | None = None
    first_detector_s: float | None = None
    wall_s: float = 0.0
    reported_before: bool = False

    def line(self) -> str:
        """One line for people."""
        where = f"{self.building} storey {self.floor}" + (f" {self.compartment}" if self.compartment else "")
        if self.status == "done":
            extra = f", supersedes run {self.supersedes_run}" if self.supersedes_run is not None else ""
            return f"fire origin #{self.event_id} ({where}): run {self.run_id} done in {self.wall_s:.1f} s{extra}"
        if self.status == "duplicate":
            return f"fire origin #{self.event_id} ({where}): already answered by run {self.run_id}"
        return f"fire origin #{self.event_id} ({where}): {self.status}: {self.reason}"

    def as_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items()}
        d["out_dir"] = None if self.out_dir is None else str(self.out_dir)
        return d


def place_fire(spec: Any, floor: Any, zone: Any) -> tuple[int, str | None, str]:
    """(storey, compartment or None for the model's default, why) of an origin's floor and zone.

    Raises
    ------
    ValidationError
        When the floor is not an integer storey of the building.
    """
    from physics.fire_building import build_network
    from physics.fire_network import COMPARTMENT_KINDS

    n = int(spec.n_storeys)
    if isinstance(floor, bool) or not isinstance(floor, int) or not 0 <= floor < n:
        raise ValidationError(f"floor={floor!r}: not a storey of the building (0 = ground .. {n - 1}); the "
                              "detectors' floor property is the storey index")
    if not zone:
        return floor, None, "default: the origin has no zone (the storey's first room)"
    net = build_network(spec)
    for c in range(net.n_compartments):
        if int(net.storey[c]) != floor or str(net.names[c]).partition("/")[2] != str(zone):
            continue
        kind = COMPARTMENT_KINDS[int(net.kind[c])]
        if kind in FIRE_ROOM_KINDS:
            return floor, str(zone), f"zone {zone!r} of the detector"
        return floor, None, (f"default: zone {zone!r} is a {kind} (where the detector hangs, not a room that "
                             "burns): the storey's first room")
    return floor, None, f"default: zone {zone!r} is no compartment of storey {floor} (the storey's first room)"


def _answered(store: Any, key: str) -> int | None:
    """The id of the run of this origin, when there is one (running, done or failed; a cancelled one does not
    count: the watcher was stopped during it)."""
    for r in store.runs():
        tag = r.params.get("fire_response") if isinstance(r.params, dict) else None
        if isinstance(tag, dict) and tag.get("origin_key") == key and r.status != "cancelled":
            return r.id
    return None


def _previous_run(store: Any, data: Mapping[str, Any]) -> int | None:
    """The run of the origin a corrected origin replaces (same building, the previous detector)."""
    prev = data.get("previous_origin")
    if not data.get("corrected") or not isinstance(prev, dict):
        return None
    found = None
    for r in store.runs():
        tag = r.params.get("fire_response") if isinstance(r.params, dict) else None
        if (isinstance(tag, dict) and tag.get("building") == data.get("building")
                and tag.get("detector") == prev.get("detector")):
            found = r.id
    return found


def _alarm_time(data: Mapping[str, Any]) -> datetime | None:
    t = data.get("time")
    if isinstance(t, str):
        try:
            when = datetime.fromisoformat(t.replace("Z", "+00:00"))
        except ValueError:
            return None
        return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    if isinstance(t, int | float) and math.isfinite(t):
        return datetime.fromtimestamp(float(t), UTC)
    return None


def respond(store: Any, row: Any, settings: ResponseSettings, *,
            progress: Callable[[dict], None] | None = None) -> Response:
    """Answer one ``fire_origin`` event row (module docstring); never raises for bad input.

    A duplicate (a run of the same origin exists) writes nothing; every other outcome writes one
    ``fire_response`` live event.
    """
    data = dict(row.data or {})
    key = origin_key(data)
    building = str(data.get("building"))
    resp = Response(event_id=int(row.id), origin_key=key, building=building, status="skipped",
                    floor=data.get("floor") if isinstance(data.get("floor"), int) else None,
                    corrected=bool(data.get("corrected")))
    seen = _answered(store, key)
    if seen is not None:
        resp.status, resp.run_id = "duplicate", seen
        return resp
    ref = settings.buildings.get(building)
    if ref is None:
        resp.reason = (f"building {building!r} is not one this watcher knows ({sorted(settings.buildings)}); "
                       f"start it with --building FILE --building-id {building}")
        return _log(store, row, resp, settings)
    try:
        from scenarios.fire_drill import building_spec

        spec = building_spec(ref)
        resp.floor, resp.compartment, resp.compartment_source = place_fire(spec, data.get("floor"), data.get("zone"))
    except TwinError as exc:
        resp.reason = str(exc)
        return _log(store, row, resp, settings)
    resp.supersedes_run = _previous_run(store, data)
    _run(store, row, resp, ref, settings, progress)
    return _log(store, row, resp, settings)


def _params(ref: str, resp: Response, s: ResponseSettings) -> dict[str, Any]:
    return {"building": ref, "floor": resp.floor, "compartment": resp.compartment, "growth": s.growth,
            "sprinklers": s.sprinklers, "season": s.season, "duration_s": s.duration_s, "dt_s": s.dt_s,
            "record_every_s": s.record_every_s}


def _run(store: Any, row: Any, resp: Response, ref: str, s: ResponseSettings,
         progress: Callable[[dict], None] | None) -> None:
    """Start, record and end the run of one origin; fills ``resp`` (status done or failed)."""
    from twin import pipeline
    from twin.runkinds import get_kind
    from viz.console.runs import run_dir_name

    data = row.data or {}
    tag = {"origin_event": int(row.id), "origin_key": resp.origin_key, "building": resp.building,
           "detector": data.get("detector"), "alarm_time": data.get("time"), "zone": data.get("zone"),
           "corrected": resp.corrected, "supersedes_run": resp.supersedes_run,
           "compartment_source": resp.compartment_source}
    params = _params(ref, resp, s)
    t0 = time.perf_counter()
    try:
        kind = get_kind(RUN_KIND)
        req = kind.validate(params)
    except TwinError as exc:
        resp.status, resp.reason = "failed", f"the fire run refused the request: {exc}"
        return
    record = pipeline.clean_json(req.model_dump())
    # console_pid: the process running it, so a console starting meanwhile does not fail it as an orphan
    rid = store.start_run(RUN_KIND, {**record, "fire_response": tag, "console_pid": os.getpid()})
    resp.run_id = rid
    resp.out_dir = s.runs / run_dir_name(rid)
    status = "failed"
    try:
        res = pipeline.run(kind, req, resp.out_dir, store=store, run_id=rid, progress=progress,
                           report=s.report, map=s.map)
        status = "done"
        resp.first_detector_s = _first_detector_s(res.dataset, resp.out_dir)
    except (KeyboardInterrupt, RunCancelled):  # the watcher stopped: the origin runs again next time
        status = "cancelled"
        raise
    except TwinError as exc:
        resp.reason = f"the fire run failed: {exc}"
    except Exception as exc:  # noqa: BLE001 - a model's bug must not stop the watcher; it is recorded
        resp.reason = f"the fire run failed: {type(exc).__name__}: {exc}"
    finally:
        store.end_run(rid, status)
        resp.wall_s = time.perf_counter() - t0
    resp.status = status
    alarm = _alarm_time(data)
    if status == "done" and alarm is not None and resp.first_detector_s is not None:
        resp.ignition_estimate = iso(alarm - timedelta(seconds=resp.first_detector_s))


def _first_detector_s(ds: Any, out_dir: Path | None) -> float | None:
    """The run's first detector (or sprinkler) activation (s since ignition), from fire.nc's events."""
    from scenarios.fire_drill import ACTIVATION_EVENTS, run_dataset, run_events

    try:
        events = run_events(ds if hasattr(ds, "attrs") and "events" in getattr(ds, "attrs", {})
                            else run_dataset(out_dir))
    except (TwinError, OSError, ValueError):
        return None
    times = [float(e["time_s"]) for e in events if e.get("kind") in ACTIVATION_EVENTS]
    return min(times) if times else None


def _log(store: Any, row: Any, resp: Response, s: ResponseSettings) -> Response:
    """The ``fire_response`` live event of an answered origin (an origin skipped or refused before, for the
    same reason, is not reported twice)."""
    from twin.events import Event

    ok = resp.status == "done"
    if resp.run_id is None:
        for e in store.events(kind=RESPONSE_KIND):
            if e.data.get("origin_key") == resp.origin_key and e.data.get("reason") == resp.reason:
                resp.reported_before = True
                return resp
    store.put_event(Event(
        time_s=float(row.time_s), kind=RESPONSE_KIND, source=SOURCE, severity="info" if ok else "warning",
        message=resp.line(),
        data={"origin_event": resp.event_id, "origin_key": resp.origin_key, "building": resp.building,
              "status": resp.status, "floor": resp.floor, "compartment": resp.compartment,
              "compartment_source": resp.compartment_source, "run": resp.run_id, "reason": resp.reason,
              "corrected": resp.corrected, "supersedes_run": resp.supersedes_run,
              "ignition_estimate": resp.ignition_estimate, "first_detector_s": resp.first_detector_s,
              "lon": (row.data or {}).get("lon"), "lat": (row.data or {}).get("lat")}))
    return resp


# ----------------------------------------------------------------------------- the watcher
@dataclass
class FireResponder:
    """Follows a store's ``fire_origin`` events and answers each (:func:`respond`).

    Parameters
    ----------
    settings : ResponseSettings
    progress : callable(dict), optional
        The runs' progress (the pipeline's dicts).
    after_id : int
        Start after this event row (default 0: every origin in the store; those answered
        before are duplicates and cost one look-up each).
    """

    settings: ResponseSettings
    progress: Callable[[dict], None] | None = None
    after_id: int = 0
    responses: list[Response] = field(default_factory=list)

    def process(self) -> list[Response]:
        """Answer every ``fire_origin`` stored after the last one seen; returns what was done (duplicates
        included)."""
        from twin.errors import StoreError
        from twin.store import Store

        try:  # a look without taking the bridge's write lock; a store not there yet has no origin
            with Store.open_readonly(self.settings.store) as ro:
                rows = ro.event_rows_after(self.after_id, kinds=[ORIGIN_KIND])
        except StoreError:
            return []
        out: list[Response] = []
        if not rows:
            return out
        with Store.open(self.settings.store) as store:
            for row in rows:
                if row.run_id is None:  # a live origin (a model run's events are not the bridge's)
                    out.append(respond(store, row, self.settings, progress=self.progress))
                self.after_id = max(self.after_id, int(row.id))
        self.responses += out
        return out

    def watch(self, *, poll_s: float = 2.0, stop: Callable[[], bool] | None = None,
              on_response: Callable[[Response], None] | None = None,
              sleep: Callable[[float], None] = time.sleep) -> None:
        """Process, then look again every ``poll_s`` seconds until ``stop()`` is true (or Ctrl-C)."""
        if not (poll_s > 0):
            raise ValidationError(f"poll_s={poll_s!r}: must be > 0 seconds")
        while stop is None or not stop():
            for r in self.process():
                if on_response is not None:
                    on_response(r)
            sleep(poll_s)


__all__ = ["FIRE_ROOM_KINDS", "ORIGIN_KIND", "RESPONSE_KIND", "RUN_KIND", "FireResponder", "Response",
           "ResponseSettings", "buildings_from", "origin_key", "place_fire", "respond"]
