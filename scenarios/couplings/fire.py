"""The fire coupling: a high-rise fire (:mod:`physics.fire_sim`) on the scenario's clock.

What runs
---------
A :class:`physics.fire_sim.FireSimulation` of the scenario's building
(``building``: an example name such as ``"ping_an_finance_centre"`` or a
building file) with the fire on storey ``floor`` (the storey index, 0 =
ground = L1, as everywhere in :mod:`agents.building`), ignited at the
scenario time ``start_s`` (from the scenario's ``[[hazards.fires]]`` ``after``;
0 without one). Every ``period_s`` (default 10 s) the coupling advances the
fire to the clock's time (``FireSimulation.advance_to(t - start_s)``, the zone
model at its own ``dt_s``), up to the fire's ``duration_s`` when the section
gives one (else to the run's end).

With ``evacuate = true`` (or a ``[models.fire_evacuation]`` section) the
building's occupants are evacuated in the same run, smoke driving the agents:
the coupling steps :class:`scenarios.fire_evacuation.FireEvacuation` instead
(the fire and :class:`agents.building_evac.BuildingEvacuation` co-stepped in
5 s blocks: alarm at the first detector or sprinkler, walking and flight
speeds from visibility, untenable stairs closed to a floor, stair doors held
open by the people passing them).

Events (the fire's :data:`physics.fire_sim.FIRE_EVENT_KINDS`, named by
:data:`EVENT_KINDS`, those of ``twin fire run``): ``fire_ignition``,
``fire_detector``, ``fire_sprinkler``, ``fire_flashover``,
``fire_glazing_broken``, ``fire_facade_spread``, ``fire_floor_untenable``,
``fire_burnout``; with the evacuation (:data:`EVACUATION_KINDS`)
``building_alarm``, ``stair_door_closed`` (a stair closed to a floor's
people), ``floor_cut_off`` (every stair of a floor closed; ``people_caught``).
Each carries the scenario time it happened at (``time_s``; ``wall_time`` the
simulated instant), not the step that found it, so the log holds them in the
order the steps found them. ``data``: ``storey`` (index), ``floor_label``
("L45"), compartment, device, detail, ``fire_time_s`` (since ignition) and
the building's ``lon``/``lat`` (``events.parquet`` places them).

A building is no raster: the coupling writes no field of the twin state.
Its per-storey frames (at every step: visibility, extinction and upper-layer
temperature on the storey's route, untenable or not; people still on the
storey with the evacuation) are the table ``fire_floor_frames``; the fire's
record Dataset (fire.nc's variables, with ``rset_s``, ``margin_s``,
``people_caught`` per storey from the evacuation) is the table
``fire_storeys`` (times since ignition) and, on the scenario's clock
(:func:`scenario_dataset`), the map layer ``fire_floors``
(:mod:`viz.layers.fire_building`); ``fire_margin`` is the evacuation's margin table
(ASET − RSET per floor, people caught, and the same without smoke). Its own
files (:func:`files_fire`) go to ``fire/``: ``fire.nc`` (times since
ignition), ``aset.csv``, plots, ``evacuation.nc``, ``margin.csv``. KPIs in
the coupling's summary (``summary.json`` ``couplings.fire``, and the
headline KPIs): :data:`KPI_NAMES`.

Inputs (sha256 in the run's ``manifest.json``, :func:`building_inputs`): ``fire_building``, the
building file (an example's packaged file), and ``fire_building_tables``, the evacuation building file
it names, if any; editing either changes the run's inputs.

Checkpoints: the zone model has no save/restore of its own, so a resumed run
**re-runs the fire (and the evacuation) deterministically** from ignition to
the checkpoint's fire time at restore — the same seed and steps give the
same events, which are dropped (the restored log has them) — and goes on. A
building file whose sha256 is not the checkpoint's is refused (the re-run would
be of another building).

Parameters (a ``[models.fire]`` section, checked by the ``fire`` run kind's
request): ``building``, ``floor``, ``compartment``, ``growth``, ``sprinklers``
(``"on"``, ``"off"``, ``"building"``), ``season`` or ``t_outside_c``,
``duration_s``, ``dt_s``, ``record_every_s``; the coupling's own: ``start_s``,
``evacuate``, ``door_hold``.
"""

from __future__ import annotations

import html
import math
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

from scenarios.coupling import Coupling, CouplingContext, register_coupling
from twin.errors import ValidationError

FIRE_PARAMS = ("building", "floor", "compartment", "growth", "sprinklers", "season", "t_outside_c", "duration_s",
               "dt_s", "record_every_s")
PARAMS = (*FIRE_PARAMS, "start_s", "evacuate", "door_hold")
#: The fire model's event kinds -> the kinds of the scenario's event log: those of ``twin fire run``'s
#: events.jsonl (:data:`physics.fire_io.EVENT_KINDS`; a test keeps them equal).
EVENT_KINDS = {"ignition": "fire_ignition", "detector": "fire_detector", "sprinkler": "fire_sprinkler",
               "flashover": "fire_flashover", "glazing_broken": "fire_glazing_broken", "spread": "fire_facade_spread",
               "floor_untenable": "fire_floor_untenable", "burnout": "fire_burnout"}
#: The co-simulated evacuation's events (:class:`scenarios.fire_evacuation.FireEvacuation`) -> the log's kinds.
EVACUATION_KINDS = {"alarm": "building_alarm", "stair_door_closed": "stair_door_closed",
                    "floor_cut_off": "floor_cut_off"}
SEVERITY = {"ignition": "alarm", "detector": "warning", "sprinkler": "warning", "flashover": "alarm",
            "glazing_broken": "warning", "spread": "alarm", "floor_untenable": "alarm", "burnout": "info"}
#: Storeys untenable by these times since ignition (s) are counted in the KPIs.
UNTENABLE_BY_S = (900.0, 1800.0)
#: KPIs the coupling reports (summary keys; times in s since ignition).
KPI_NAMES = ("first_alarm_s", "first_sprinkler_s", "flashover_s", "first_untenable_s", "floors_untenable_by_15min",
             "floors_untenable_by_30min", "people_caught", "smallest_margin_s")
PERIOD_S = 10.0


# ----------------------------------------------------------------------------- parameters
def from_scenario(section: dict[str, Any], scenario: Any) -> dict[str, Any]:
    """The coupling's parameters from ``[models.fire]`` (or ``[models.fire_evacuation]``) and the scenario.

    The ignition time is the ``after`` of the scenario's fire origin (``[[hazards.fires]]``,
    one at most for this coupling); its ``floor``, when given, must be the section's.

    Raises
    ------
    ValidationError
        For several fire origins, or an origin on another floor than the section's.
    """
    out = {k: section[k] for k in PARAMS if section.get(k) is not None}
    models = getattr(scenario, "models", {}) or {}
    if "fire_evacuation" in models:
        out["evacuate"] = True
        if "building" not in out:
            out.update({k: v for k, v in models["fire_evacuation"].items() if k in PARAMS})
    fires = list(getattr(getattr(scenario, "hazards", None), "fires", None) or [])
    if len(fires) > 1:
        raise ValidationError(f"hazards.fires: {len(fires)} fire origins; the fire coupling runs one building fire "
                              "per scenario: keep one [[hazards.fires]]")
    if fires:
        origin = fires[0]
        if origin.floor is not None and "floor" in out and int(origin.floor) != int(out["floor"]):
            raise ValidationError(f"hazards.fires.0.floor={origin.floor!r} but models.fire.floor={out['floor']!r}: "
                                  "give the same storey index (0 = ground) in both, or leave the origin's out")
        out.setdefault("start_s", float(origin.after))
    return out


def _seconds(p: dict[str, Any], key: str, default: float | None, *, zero: bool = False) -> float | None:
    v = p.get(key, default)
    if v is None:
        return None
    ok = not isinstance(v, bool) and isinstance(v, int | float) and math.isfinite(v) and (v >= 0 if zero else v > 0)
    if not ok:
        raise ValidationError(f"couplings.fire.{key}={v!r}: give a finite number of seconds "
                              f"{'>= 0' if zero else '> 0'}")
    return float(v)


def fire_settings(ctx: CouplingContext) -> dict[str, Any]:
    """The checked parameters: the keywords of :class:`physics.fire_sim.FireSimulation` (``kw``, from the
    ``fire`` run kind's :class:`~physics.fire_run.FireRequest` and :func:`~physics.fire_run.sim_kwargs`),
    ``start_s``, the fire's length in this run (``duration_s``: the section's, cut at the run's end) and
    ``evacuate``.

    Raises
    ------
    ValidationError
        Naming ``couplings.fire`` and every field that is wrong (the request's own checks: building,
        floor, compartment, growth, sprinklers, season or t_outside_c, steps).
    """
    import pydantic

    from physics.fire_run import MAX_DURATION_S, FireRequest, sim_kwargs
    from twin.errors import describe_problems

    p = ctx.params
    bad = sorted(k for k in p if k not in PARAMS)
    if bad:
        raise ValidationError(f"couplings.fire: unknown parameter(s) {bad}; allowed: {list(PARAMS)}")
    start = _seconds(p, "start_s", 0.0, zero=True)
    run_end = float(ctx.duration_s or 3600.0)
    if start >= run_end:
        raise ValidationError(f"couplings.fire.start_s={start:g}: the fire starts at or after the run's end "
                              f"({run_end:g} s); start it earlier or run longer")
    own = _seconds(p, "duration_s", None)
    # without its own length the fire lasts to the run's end, at most the run kind's 6 h (long burnt out)
    length = min(run_end - start, MAX_DURATION_S) if own is None else min(own, run_end - start)
    fields = {k: p[k] for k in FIRE_PARAMS if p.get(k) is not None}
    # the request checks its length against its record interval: ask for at least one interval
    fields["duration_s"] = max(length, float(fields.get("record_every_s", PERIOD_S)), 10.0)
    try:
        req = FireRequest.model_validate(fields)
    except pydantic.ValidationError as exc:
        raise ValidationError(describe_problems(exc, "couplings.fire")) from None
    try:
        kw = sim_kwargs(req)  # the building read, the floor and compartment checked against it
    except ValidationError as exc:
        raise ValidationError(f"couplings.fire: {exc}") from None
    building = kw.pop("building")
    kw["duration_s"] = length
    door_hold = p.get("door_hold", "passing")
    if door_hold not in ("passing", "closed", "open"):
        raise ValidationError(f"couplings.fire.door_hold={door_hold!r}: give \"passing\", \"closed\" or \"open\"")
    return {"building": building, "name": req.building, "kw": kw, "start_s": start, "duration_s": length,
            "evacuate": bool(p.get("evacuate", False)), "door_hold": door_hold, "request": req}


# ----------------------------------------------------------------------------- setup
def building_inputs(building: str | Path) -> dict[str, Path]:
    """The files the fire's building is read from, by role (their sha256 go to the run's manifest).

    ``fire_building`` is the fire building file (for an example name, the file packaged in
    ``physics/data/fire_buildings/``) and, when that file names the evacuation's building file
    (``building = "<path>"``, relative to it, as :func:`physics.fire_building.merged_description`
    reads it), ``fire_building_tables`` is that file: editing either changes the run's inputs.
    """
    from physics.fire_run import building_path
    from twin.building_file import read_description

    path = building_path(str(building)).resolve()
    out = {"fire_building": path}
    if path.suffix.lower() in (".toml", ".json"):
        ref = read_description(path).get("building")
        if isinstance(ref, str):
            out["fire_building_tables"] = (path.parent / ref).resolve()
    return out


def setup_fire(ctx: CouplingContext) -> None:
    """Build the fire, or the fire and the building's evacuation co-stepped; nothing burns before ``start_s``."""
    from twin.files import file_sha256

    s = fire_settings(ctx)
    o = ctx.own
    o.update(settings=s, fire_t=0.0, frames=[], events=[], evac_events=[], co=None, result=None, evac=None,
             dataset=None)
    inputs = building_inputs(s["building"])
    for role, path in inputs.items():
        ctx.add_input(role, path)
    o["building_sha256"] = {role: file_sha256(path)[0] for role, path in inputs.items()}
    if s["evacuate"]:
        from scenarios.fire_evacuation import FireEvacuation

        kw = dict(s["kw"])
        fire_record = kw.pop("record_every_s")
        seed = int(ctx.rng.integers(2**31))  # the run's seed and the coupling's name: the same at a resume's set-up
        o["co"] = FireEvacuation(s["building"], seed=seed, door_hold=s["door_hold"], fire_record_s=fire_record, **kw)
        o["sim"] = o["co"].sim
    else:
        from physics.fire_sim import FireSimulation

        o["sim"] = FireSimulation(s["building"], **s["kw"])
    ctx.summary.update(building=str(s["name"]), origin_storey=s["kw"]["floor"],
                       origin_level=f"L{s['kw']['floor'] + 1}", ignition_at_s=s["start_s"],
                       fire_duration_s=s["duration_s"], evacuate=s["evacuate"], growth=str(s["kw"]["growth"]),
                       sprinklers={True: "on", False: "off", None: "building"}[s["kw"]["sprinklers"]])


# ----------------------------------------------------------------------------- step
def step_fire(ctx: CouplingContext, t: float, dt: float) -> None:
    """Advance the fire (and the evacuation) to ``t`` (scenario time), emit the new events at their times,
    record a per-storey frame."""
    o, s = ctx.own, ctx.own["settings"]
    fire_t = min(t - s["start_s"], s["duration_s"])
    if fire_t <= o["fire_t"] + 1e-9:
        return
    fire_new, evac_new = _advance(o, fire_t)
    for e in fire_new:
        _emit(ctx, e)
    for e in evac_new:
        _emit_evacuation(ctx, e)
    now = {k: np.asarray(v).copy() for k, v in o["sim"].floor_now().items()}
    if o["co"] is not None:
        now["people"] = np.asarray(o["co"].people_by_floor_now(), float)
    o["frames"].append((float(t), float(o["fire_t"]), now))


def _advance(o: dict, fire_t: float) -> tuple[list[dict], list[dict]]:
    """Step the model to ``fire_t`` (s since ignition); its new fire events and evacuation events.

    The co-simulation moves in whole blocks of its record interval (5 s): its time may end past ``fire_t``
    by less than a block when the coupling's period is not a multiple of it."""
    if o["co"] is None:
        new = o["sim"].advance_to(fire_t)
        o["fire_t"] = float(fire_t)
        return new, []
    co = o["co"]
    alarm_before = co.alarm_s
    fire_new, evac_new = co.advance_to(fire_t)
    o["fire_t"] = float(co.t)
    if not math.isfinite(alarm_before) and math.isfinite(co.alarm_s):
        evac_new = [{"time_s": float(co.alarm_s), "kind": "alarm", "floor": None}, *evac_new]
    return fire_new, evac_new


def _event(ctx: CouplingContext, fire_time_s: float, kind: str, severity: str, message: str,
           data: dict[str, Any]) -> None:
    """An event of the run at the scenario time ``start + fire_time_s`` (``wall_time`` that instant)."""
    from twin.events import Event

    t = ctx.own["settings"]["start_s"] + float(fire_time_s)
    data = {"fire_time_s": float(fire_time_s), **data, "building": str(ctx.own["settings"]["name"]), **_lonlat(ctx)}
    ctx.state.events.append(Event.parse({"time_s": t, "wall_time": ctx.state.clock.start + timedelta(seconds=t),
                                         "kind": kind, "source": ctx.name, "severity": severity,
                                         "message": message, "data": data}))


def _emit(ctx: CouplingContext, e: dict[str, Any]) -> None:
    """One fire event into the scenario's log at its own time (start + time since ignition)."""
    kind = str(e["kind"])
    storey = e.get("storey")
    where = "" if storey is None else f" on L{int(storey) + 1}"
    message = f"{kind.replace('_', ' ')}{where}" + (f": {e['detail']}" if e.get("detail") else "")
    _event(ctx, e["time_s"], EVENT_KINDS.get(kind, f"fire_{kind}"), SEVERITY.get(kind, "info"), message,
           {"fire_kind": kind, "storey": storey, "floor_label": None if storey is None else f"L{int(storey) + 1}",
            "compartment": e.get("compartment"), "device": e.get("device"), "detail": e.get("detail", "")})
    ctx.own["events"].append({"time_s": ctx.own["settings"]["start_s"] + float(e["time_s"]),
                              "fire_time_s": float(e["time_s"]),
                              **{k: e.get(k) for k in ("kind", "storey", "compartment", "device", "detail")}})


def _emit_evacuation(ctx: CouplingContext, e: dict[str, Any]) -> None:
    """An evacuation event (alarm, a stair door closed to a floor, a floor cut off) into the log."""
    kind = str(e["kind"])
    floor = e.get("floor")
    label = None if floor is None else f"L{int(floor) + 1}"
    if kind == "alarm":
        message = "building alarm: the occupants start to leave"
    elif kind == "stair_door_closed":
        message = f"stair {e.get('stair')} closed to the people of {label} (untenable)"
    else:
        message = f"{label} cut off: every stair closed, {e.get('people_caught', 0)} people on the floor"
    data = {"evacuation_kind": kind, "storey": floor, "floor_label": label,
            **{k: e[k] for k in ("stair", "people_caught") if k in e}}
    _event(ctx, e["time_s"], EVACUATION_KINDS[kind], "warning" if kind == "alarm" else "alarm", message, data)
    ctx.own["evac_events"].append({"time_s": ctx.own["settings"]["start_s"] + float(e["time_s"]), **e})


def _lonlat(ctx: CouplingContext) -> dict[str, float]:
    """The building's ``lon``/``lat`` (its file's location), cached; {} without one."""
    o = ctx.own
    if "lonlat" not in o:
        attrs = getattr(o["sim"].network, "attrs", None) or {}
        lon, lat = attrs.get("lon"), attrs.get("lat")
        ok = all(isinstance(v, int | float) and math.isfinite(v) for v in (lon, lat))
        o["lonlat"] = {"lon": float(lon), "lat": float(lat)} if ok else {}
    return o["lonlat"]


# ----------------------------------------------------------------------------- finish and KPIs
def finish_fire(ctx: CouplingContext) -> None:
    """The fire's result (its Dataset since ignition), the evacuation's margins, the KPIs."""
    o = ctx.own
    if o["fire_t"] <= 0:  # the run ended before the ignition
        ctx.summary.update(fire_time_simulated_s=0.0, events={}, **kpis(ctx))
        return
    if o["co"] is not None:
        o["evac"] = o["co"].result(uncoupled=True)
        res = o["evac"].fire
        ctx.summary["evacuation"] = _plain(o["evac"].summary)
    else:
        res = o["sim"].result()
    o["result"] = res
    o["dataset"] = res.dataset  # times since ignition, as fire.nc
    ctx.summary.update(fire_time_simulated_s=o["fire_t"], events=_counts(o["events"] + o["evac_events"]),
                       **kpis(ctx))


def _plain(value: Any) -> Any:
    """JSON-ready copy (numpy scalars and arrays as Python values, NaN as None)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _margin_frame(margin):
    """The evacuation's margin table with ``storey`` (its ``floor``) as the storey index."""
    return margin.rename(columns={"floor": "storey"}) if "floor" in margin and "storey" not in margin else margin


def _counts(events: list[dict]) -> dict[str, int]:
    out: dict[str, int] = {}
    for e in events:
        out[e["kind"]] = out.get(e["kind"], 0) + 1
    return out


def _first(events: list[dict], kind: str) -> float | None:
    times = [e["fire_time_s"] for e in events if e["kind"] == kind]
    return min(times) if times else None


def kpis(ctx: CouplingContext) -> dict[str, Any]:
    """The fire's KPIs (:data:`KPI_NAMES`; times in s since ignition; None when it did not happen or,
    for the counts by 15/30 min, when the fire ran shorter)."""
    o = ctx.own
    ev = o["events"]
    ds = o.get("dataset")
    aset = np.asarray(ds["aset_s"].values, float) if ds is not None and "aset_s" in ds else np.zeros(0)
    out: dict[str, Any] = {"first_alarm_s": _first(ev, "detector"), "first_sprinkler_s": _first(ev, "sprinkler"),
                           "flashover_s": _first(ev, "flashover")}
    for by, key in zip(UNTENABLE_BY_S, ("floors_untenable_by_15min", "floors_untenable_by_30min"), strict=True):
        out[key] = int(np.count_nonzero(np.isfinite(aset) & (aset <= by))) if o["fire_t"] >= by - 1e-9 else None
    fin = aset[np.isfinite(aset)]
    out["first_untenable_s"] = float(fin.min()) if fin.size else None
    out["floors_untenable"] = int(fin.size)
    out["people_caught"] = out["smallest_margin_s"] = None
    evac = o.get("evac")
    if evac is not None and math.isfinite(evac.alarm_s):  # before the alarm nobody has moved: nothing to count
        m = evac.margin
        out["people_caught"] = float(np.nansum(m["people_caught"].to_numpy(float)))
        from scenarios.fire_evacuation import smallest_margin

        out.update(smallest_margin(m, o["fire_t"]))
        out["building_alarm_s"] = _finite(evac.alarm_s)
    return out



# ----------------------------------------------------------------------------- outputs
def tables_fire(ctx: CouplingContext) -> dict[str, Any]:
    """``fire_floor_frames`` (per step and storey), ``fire_storeys`` (ASET, ignition) and ``fire_margin``."""
    import pandas as pd

    o = ctx.own
    out: dict[str, Any] = {"fire_floor_frames": floor_frames(o["frames"])}
    ds = o.get("dataset")
    if ds is not None:
        n = ds.sizes["storey"]
        cols = {"storey": np.arange(n), "level": [f"L{i + 1}" for i in range(n)]}
        for v in ("aset_s", "ignition_s", "rset_s", "margin_s", "people_caught", "refuge"):
            if v in ds and ds[v].dims == ("storey",):
                cols[v] = np.asarray(ds[v].values)
        out["fire_storeys"] = pd.DataFrame(cols)
    if o["evac"] is not None:
        out["fire_margin"] = _margin_frame(o["evac"].margin).reset_index(drop=True)
    return out


def floor_frames(frames: list) -> Any:
    """A long table of the per-storey frames: ``time_s`` (scenario), ``fire_time_s``, ``storey``, and each value."""
    import pandas as pd

    rows = []
    for t, ft, now in frames:
        n = len(next(iter(now.values()))) if now else 0
        row = {"time_s": np.full(n, t), "fire_time_s": np.full(n, ft), "storey": np.arange(n)}
        row.update({k: np.asarray(v) for k, v in now.items() if np.ndim(v) == 1 and len(v) == n})
        rows.append(pd.DataFrame(row))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(
        {"time_s": [], "fire_time_s": [], "storey": []})


def files_fire(ctx: CouplingContext, out_dir) -> dict[str, Any]:
    """The fire's own files in ``fire/`` of the run directory (times since ignition; its events.jsonl and
    summary are the run's): ``fire.nc``, ``aset.csv``, the plots (:func:`physics.fire_io.write_fire_outputs`);
    with the evacuation ``evacuation.nc``, ``evacuation_uncoupled.nc`` and ``margin.csv``."""
    from pathlib import Path

    from physics.fire_io import write_fire_outputs

    o = ctx.own
    if o.get("result") is None:
        return {}
    sub = Path(out_dir) / "fire"
    sub.mkdir(parents=True, exist_ok=True)
    paths = {k: Path(v) for k, v in write_fire_outputs(o["result"], sub, events=False).items()}
    evac = o.get("evac")
    if evac is not None:
        for name, ds in (("evacuation", evac.evacuation), ("evacuation_uncoupled", evac.uncoupled)):
            if ds is not None:
                paths[name] = sub / f"{name}.nc"
                ds.to_netcdf(paths[name])
        paths["margin"] = sub / "margin.csv"
        evac.margin.to_csv(paths["margin"], index=False, float_format="%.1f")
    return paths


def scenario_dataset(ds, start_s: float):
    """The fire's Dataset on the scenario's clock: ``time``, the storeys' ``ignition_s``, ``aset_s`` and
    ``rset_s`` and the events of attr ``events`` shifted by the ignition time ``start_s`` (what the map's
    one slider shows; ``margin_s`` is a difference and stays), and a first record at the scenario's start
    (the fire's record at ignition: ambient, nothing burning yet) so the slider before the ignition shows
    the building clear."""
    import json

    out = ds.assign_coords(time=("time", np.asarray(ds["time"].values, float) + start_s,
                                 {"units": "s", "long_name": "scenario time (s since the scenario's start)"}))
    for v in ("ignition_s", "aset_s", "rset_s"):
        if v in out:
            out[v] = out[v] + start_s
            out[v].attrs = {**ds[v].attrs, "long_name": f"{ds[v].attrs.get('long_name', v)} (scenario time)"}
    if isinstance(ds.attrs.get("events"), str):
        events = json.loads(ds.attrs["events"])
        out.attrs["events"] = json.dumps([{**e, "time_s": float(e["time_s"]) + start_s} for e in events],
                                         ensure_ascii=False)
    out.attrs["ignition_at_s"] = float(start_s)
    if start_s > 0 and "time" in out.dims:  # before the ignition: the building as at ignition (ambient, clear)
        import xarray as xr

        first = out.isel(time=[0]).assign_coords(time=("time", [0.0], out["time"].attrs))
        out = xr.concat([first, out], dim="time", data_vars="minimal", coords="minimal", compat="override",
                        combine_attrs="override")
    return out


def layers_fire(ctx: CouplingContext, times_s) -> list:
    """The building's storeys coloured by tenability on the scenario's slider (layer ``fire_floors``)."""
    ds = ctx.own.get("dataset")
    if ds is None:
        return []
    from viz.layers import build

    return [build("fire_floors", scenario_dataset(ds, ctx.own["settings"]["start_s"]))]


def view_fire(ctx: CouplingContext, view: dict) -> dict:
    """The map opens pitched on the tower (``fire_building.map_view``), not straight down on the grid."""
    ds = ctx.own.get("dataset")
    if ds is None:
        return view
    from viz.layers.fire_building import map_view

    if "lon" in ds.attrs and "lat" in ds.attrs:  # centred on the tower, not on the scenario's grid
        view = {**view, "longitude": float(ds.attrs["lon"]), "latitude": float(ds.attrs["lat"])}
    return map_view(ds, view)


def report_fire(ctx: CouplingContext) -> list[str]:
    """KPIs, the event timeline, ASET (and margins) per storey."""
    s = ctx.summary

    def mins(v) -> str:
        return "—" if v is None else f"{v / 60:.1f} min"

    rows = [("building", s["building"]), ("origin", f"{s['origin_level']} (storey index {s['origin_storey']})"),
            ("ignition", f"{s['ignition_at_s'] / 60:g} min after the scenario's start"),
            ("growth / sprinklers", f"{s['growth']} / {s['sprinklers']}"),
            ("first detector alarm (since ignition)", mins(s.get("first_alarm_s"))),
            ("first sprinkler", mins(s.get("first_sprinkler_s"))), ("flashover", mins(s.get("flashover_s"))),
            ("first storey untenable", mins(s.get("first_untenable_s"))),
            ("storeys untenable by 15 / 30 min", f"{_na(s.get('floors_untenable_by_15min'))} / "
                                                 f"{_na(s.get('floors_untenable_by_30min'))}"),
            ("people caught", _na(s.get("people_caught"))),
            ("smallest margin ASET − RSET", ("at most " if s.get("smallest_margin_is_bound") else "")
             + mins(s.get("smallest_margin_s")) + (f" ({s['smallest_margin_level']})"
                                                  if s.get("smallest_margin_level") else ""))]
    ev = s.get("evacuation")
    if ev:
        rows += [("building alarm (since ignition)", mins(ev.get("alarm_s"))),
                 ("RSET with smoke / without smoke effects", f"{mins(ev.get('rset_s'))} / "
                                                            f"{mins(ev.get('rset_uncoupled_s'))}"),
                 ("occupants / not safe at the end", f"{_na(ev.get('people'))} / {_na(ev.get('people_not_safe'))}"),
                 ("people cut off by closed stairs", _na(ev.get("people_cut_off")))]
    out = ["<section><h2>High-rise fire</h2>" + _table(["", ""], rows) + "</section>"]
    ev = ctx.own["events"][:200]
    if ev:
        out.append("<section><h2>Fire events</h2>" + _table(
            ["scenario time", "since ignition", "event", "storey", "where", "detail"],
            [(mins(e["time_s"]), mins(e["fire_time_s"]), e["kind"],
              "" if e["storey"] is None else f"L{int(e['storey']) + 1}",
              e.get("device") or e.get("compartment") or "", e.get("detail") or "") for e in ev]) + "</section>")
    ds = ctx.own.get("dataset")
    if ds is not None and "aset_s" in ds:
        aset = np.asarray(ds["aset_s"].values, float)
        idx = np.flatnonzero(np.isfinite(aset))
        idx = idx[np.argsort(aset[idx])][:30]
        head = ["storey", "ASET"] + (["RSET", "margin", "people caught"] if "margin_s" in ds else [])
        body = []
        for i in idx:
            r = [f"L{i + 1}", mins(aset[i])]
            if "margin_s" in ds:
                r += [mins(_finite(ds["rset_s"].values[i])), mins(_finite(ds["margin_s"].values[i])),
                      _na(_finite(ds["people_caught"].values[i]) if "people_caught" in ds else None)]
            body.append(r)
        out.append("<section><h2>Storeys untenable (ASET since ignition, earliest first)</h2>"
                   + (_table(head, body) if body else "<p>no storey became untenable</p>") + "</section>")
    return out


def _finite(v) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


def _na(v) -> str:
    if v is None:
        return "—"
    return f"{v:,.0f}" if isinstance(v, float) else str(v)


def _table(head, rows) -> str:
    th = "".join(f"<th>{html.escape(str(h))}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


# ----------------------------------------------------------------------------- checkpoints
def save_fire(ctx: CouplingContext) -> dict:
    """The fire's time and the coupling's records (the model itself is re-run at restore)."""
    o = ctx.own
    frames = o["frames"]
    out: dict[str, Any] = {"fire_t": float(o["fire_t"]), "events": _plain(o["events"]),
                           "evac_events": _plain(o["evac_events"]), "frame_times": [[t, ft] for t, ft, _ in frames],
                           "building_sha256": dict(o["building_sha256"])}
    for k in (frames[0][2] if frames else {}):
        out[f"frame/{k}"] = np.stack([np.asarray(f[2][k]) for f in frames])
    return out


def _check_building_unchanged(ctx: CouplingContext, saved: dict[str, str] | None) -> None:
    """Refuse to resume when a building file's sha256 is not the checkpoint's (a checkpoint without them: no check)."""
    from twin.errors import SnapshotError

    if saved is None:
        return
    now = ctx.own["building_sha256"]
    changed = [f"{role} {ctx.inputs.get(role, '?')} (sha256 {str(saved.get(role))[:12]} then, "
               f"{str(now.get(role))[:12]} now)" for role in sorted(set(saved) | set(now))
               if saved.get(role) != now.get(role)]
    if changed:
        raise SnapshotError(f"couplings.fire: the building changed since the checkpoint: {'; '.join(changed)}. "
                            "A resume re-runs the fire from ignition, so it would mix two buildings: run it again "
                            "instead of resuming")


def restore_fire(ctx: CouplingContext, saved: dict) -> None:
    """Re-run the model set up afresh to the saved fire time (deterministic: the same seed and steps),
    dropping the events it re-makes (the restored log has them); put the coupling's records back.

    Raises
    ------
    twin.errors.SnapshotError
        When a building file changed since the checkpoint (the re-run would be of another building).
    """
    o = ctx.own
    _check_building_unchanged(ctx, saved.get("building_sha256"))
    fire_t = float(saved["fire_t"])
    if fire_t > 0:
        _advance(o, fire_t)
    o["fire_t"] = fire_t
    o["events"] = [dict(e) for e in saved["events"]]
    o["evac_events"] = [dict(e) for e in saved["evac_events"]]
    keys = [k.removeprefix("frame/") for k in saved if k.startswith("frame/")]
    o["frames"] = [(float(t), float(ft), {k: np.asarray(saved[f"frame/{k}"])[i] for k in keys})
                   for i, (t, ft) in enumerate(saved["frame_times"])]


FIRE = register_coupling(Coupling(
    name="fire", phase="physics", period_s=PERIOD_S, kinds=("fire", "fire_evacuation"),
    reads=(), writes=tuple(f"event:{k}" for k in (*EVENT_KINDS.values(), *EVACUATION_KINDS.values())),
    setup=setup_fire, step=step_fire, finish=finish_fire, save=save_fire, restore=restore_fire, files=files_fire,
    from_scenario=from_scenario, layers=layers_fire, tables=tables_fire, report=report_fire, map_view=view_fire,
    doc="high-rise fire (physics.fire_sim) on the run's clock: events, per-storey frames, ASET, "
        "optional co-simulated evacuation"))
