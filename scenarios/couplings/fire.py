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
building's occupants are evacuated in the same run, smoke driving the agents
(:mod:`scenarios.fire_evacuation`: walking speed from visibility, untenable
stairs closed, doors held open by evacuees): the co-simulation of that
module is run as a whole for the fire's length when the coupling is set up
(its step-wise form is requested, /tmp/readme/evac-inbox.md) and its events
and frames are released on the clock at their times.

Events (the fire's :data:`physics.fire_sim.FIRE_EVENT_KINDS`, named by
:data:`EVENT_KINDS`): ``fire_ignition``, ``fire_detector``, ``fire_sprinkler``,
``fire_flashover``, ``fire_glazing_broken``, ``fire_facade_spread``, ``fire_floor_untenable``,
``fire_burnout`` (those of ``twin fire run``); with the evacuation ``floor_evacuated``-like events of that
model under ``building_<kind>``. Each carries the scenario time it happened
at (``time_s``; ``wall_time`` the simulated instant), not the step that saw
it: the log holds them in the order the steps found them. ``data``: the
storey (``storey`` index, ``floor_label`` "L45"), compartment, device, detail, the
time since ignition (``fire_time_s``) and the building's ``lon``/``lat``.

A building is no grid: the coupling writes no field of the twin state. Its
per-storey frames (at every step: visibility and upper-layer temperature on
the storey's route, untenable or not) are the table ``fire_floor_frames``;
the fire's record Dataset (fire.nc's variables) is kept for the map layer
``fire_floors`` (:mod:`viz.layers.fire_building`, times shifted to the
scenario's clock) and the tables ``fire_storeys`` (ASET, ignition per storey)
and, with the evacuation, ``fire_margin`` (ASET - RSET per storey, people
caught). KPIs in the coupling's summary (``summary.json`` ``couplings.fire``):
:data:`KPI_NAMES`.

Checkpoints: the zone model has no save/restore of its own, so a resumed run
**re-runs the fire deterministically** to the checkpoint's fire time at
restore (the same events, dropped: they are already in the restored log)
and goes on from there; the evacuation's whole run is redone at set-up.

Parameters (a ``[models.fire]`` section, checked by the ``fire`` run kind's
request): ``building``, ``floor``, ``compartment``, ``growth``, ``sprinklers``
(``"on"``, ``"off"``, ``"building"`` or a bool), ``season`` or ``t_outside_c``,
``duration_s``, ``dt_s``, ``record_every_s``; the coupling's own: ``start_s``,
``evacuate``, ``door_hold``.
"""

from __future__ import annotations

import html
import math
from datetime import timedelta
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
SEVERITY = {"ignition": "alarm", "detector": "warning", "sprinkler": "warning", "flashover": "alarm",
            "glazing_broken": "warning", "spread": "alarm", "floor_untenable": "alarm", "burnout": "info"}
#: Storeys untenable by these times since ignition (s) are counted in the KPIs.
UNTENABLE_BY_S = (900.0, 1800.0)
#: KPIs the coupling reports (summary keys; times in s since ignition).
KPI_NAMES = ("first_alarm_s", "first_sprinkler_s", "flashover_s", "floors_untenable_by_15min",
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

    from physics.fire_run import FireRequest, sim_kwargs
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
    length = run_end - start if own is None else min(own, run_end - start)
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
def setup_fire(ctx: CouplingContext) -> None:
    """Build the fire (and, with ``evacuate``, run the co-simulated evacuation); nothing burns before ``start_s``."""
    s = fire_settings(ctx)
    o = ctx.own
    o.update(settings=s, emitted=0, cursor=0, fire_t=0.0, frames=[], events=[], evac=None, result=None, dataset=None)
    building = s["building"]
    ctx.add_input("fire_building", building)
    if s["evacuate"]:
        _run_evacuation(ctx)
    else:
        from physics.fire_sim import FireSimulation

        o["sim"] = FireSimulation(building, **s["kw"])
    ctx.summary.update(building=str(s["name"]), origin_storey=s["kw"]["floor"], origin_level=f"L{s['kw']['floor'] + 1}",
                       ignition_at_s=s["start_s"], fire_duration_s=s["duration_s"], evacuate=s["evacuate"],
                       growth=str(s["kw"]["growth"]), sprinklers={True: "on", False: "off", None: "building"}[
                           s["kw"]["sprinklers"]])


def _run_evacuation(ctx: CouplingContext) -> None:
    """The whole co-simulation of :mod:`scenarios.fire_evacuation` for the fire's length (replayed on the clock)."""
    try:
        from scenarios.fire_evacuation import evacuate_with_fire
    except ImportError as exc:
        raise ValidationError(f"couplings.fire.evacuate=true: the fire evacuation (scenarios.fire_evacuation) is "
                              f"not available ({exc}); run the fire without evacuate") from exc
    s = ctx.own["settings"]
    kw = dict(s["kw"])
    kw.pop("record_every_s", None)
    kw.pop("dt_s", None)
    seed = int(ctx.rng.integers(2**31))  # the run's seed and the coupling's name: the same at a resume's set-up
    out = evacuate_with_fire(s["building"], seed=seed, door_hold=s["door_hold"], **kw)
    ctx.own["evac"] = _unpack_evacuation(out)


def _unpack_evacuation(out: Any) -> dict[str, Any]:
    """``{"fire": FireResult, "evacuation": Dataset, "margin": DataFrame, "uncoupled": ...}`` of the
    co-simulation's return (an object with those attributes, a mapping or a tuple in that order)."""
    names = ("fire", "evacuation", "margin", "uncoupled")
    if isinstance(out, dict):
        return {k: out.get(k) for k in names}
    if isinstance(out, tuple):
        return {k: (out[i] if i < len(out) else None) for i, k in enumerate(names)}
    return {k: getattr(out, k, None) for k in names}


# ----------------------------------------------------------------------------- step
def step_fire(ctx: CouplingContext, t: float, dt: float) -> None:
    """Advance the fire to ``t`` (scenario time), emit its new events at their times, record a frame."""
    o, s = ctx.own, ctx.own["settings"]
    fire_t = min(t - s["start_s"], s["duration_s"])
    if fire_t <= o["fire_t"] + 1e-9 or fire_t <= 0:
        return
    if o["evac"] is None:
        sim = o["sim"]
        new = sim.advance_to(fire_t)
        now = sim.floor_now()
    else:
        events = o["evac"]["fire"].events
        new = [e for e in events[o["cursor"]:] if float(e["time_s"]) <= fire_t + 1e-9]
        o["cursor"] += len(new)
        now = _floor_at(o["evac"]["fire"].dataset, fire_t)
    o["fire_t"] = float(fire_t)
    for e in new:
        _emit(ctx, e)
    o["frames"].append((float(t), float(fire_t), {k: np.asarray(v).copy() for k, v in now.items()}))


def _floor_at(ds, fire_t: float) -> dict[str, np.ndarray]:
    """A :meth:`FireSimulation.floor_now`-like frame from a recorded Dataset (its last record at or before)."""
    times = np.asarray(ds["time"].values, float)
    i = max(int(np.searchsorted(times, fire_t + 1e-9)) - 1, 0)
    return {"visibility_m": ds["floor_visibility_min"].values[i], "untenable": ds["floor_status"].values[i] == 2,
            "t_upper_k": ds["floor_temperature_max"].values[i]}


def _emit(ctx: CouplingContext, e: dict[str, Any]) -> None:
    """One fire event into the scenario's log at its own time (start + time since ignition)."""
    from twin.events import Event

    o, s = ctx.own, ctx.own["settings"]
    kind = str(e["kind"])
    t = s["start_s"] + float(e["time_s"])
    storey = e.get("storey")
    data = {"fire_kind": kind, "fire_time_s": float(e["time_s"]), "storey": storey,
            "floor_label": None if storey is None else f"L{int(storey) + 1}",
            "compartment": e.get("compartment"), "device": e.get("device"), "detail": e.get("detail", ""),
            "building": str(s["name"])}
    data.update(o.get("lonlat", {}) or _lonlat(ctx))
    where = "" if storey is None else f" on L{int(storey) + 1}"
    message = f"{kind.replace('_', ' ')}{where}" + (f": {e['detail']}" if e.get("detail") else "")
    clock = ctx.state.clock
    event = Event.parse({"time_s": t, "wall_time": clock.start + timedelta(seconds=t),
                         "kind": EVENT_KINDS.get(kind, f"fire_{kind}"), "source": ctx.name,
                         "severity": SEVERITY.get(kind, "info"), "message": message, "data": data})
    ctx.state.events.append(event)
    o["events"].append({"time_s": t, **{k: e.get(k) for k in ("kind", "storey", "compartment", "device", "detail")},
                        "fire_time_s": float(e["time_s"])})
    o["emitted"] += 1


def _lonlat(ctx: CouplingContext) -> dict[str, float]:
    """The building's ``lon``/``lat`` (its file's location), cached; {} without one."""
    o = ctx.own
    if "lonlat" in o:
        return o["lonlat"]
    net = o["evac"]["fire"].network if o["evac"] is not None else getattr(o.get("sim"), "network", None)
    attrs = getattr(net, "attrs", None) or {}
    lon, lat = attrs.get("lon"), attrs.get("lat")
    o["lonlat"] = ({"lon": float(lon), "lat": float(lat)}
                   if isinstance(lon, int | float) and isinstance(lat, int | float) else {})
    return o["lonlat"]


# ----------------------------------------------------------------------------- finish and KPIs
def finish_fire(ctx: CouplingContext) -> None:
    """The fire's result (Dataset on the scenario's clock), ASET per storey, margins and KPIs."""
    o, s = ctx.own, ctx.own["settings"]
    if o["evac"] is not None:
        res = o["evac"]["fire"]
        ds = _cut(res.dataset, o["fire_t"])
    else:
        res = o["sim"].result() if o["fire_t"] > 0 else None
        ds = None if res is None else res.dataset
    o["result"] = res
    if ds is not None:
        ds = ds.assign_coords(time=("time", np.asarray(ds["time"].values, float) + s["start_s"],
                                    {"units": "s", "long_name": "scenario time (s since the scenario's start)"}))
        ds.attrs["ignition_at_s"] = s["start_s"]
        ds = _with_margin(ds, o["evac"])
    o["dataset"] = ds
    ctx.summary.update(fire_time_simulated_s=o["fire_t"], events=_counts(o["events"]), **kpis(ctx))


def _cut(ds, fire_t: float):
    """The records of ``ds`` up to ``fire_t`` (the run may stop before the co-simulation's end)."""
    return ds.sel(time=ds["time"] <= fire_t + 1e-9)


def _with_margin(ds, evac):
    """``rset_s``, ``margin_s``, ``people_caught`` per storey from the margin table (the layer shows them)."""
    if evac is None or evac.get("margin") is None or "storey" not in ds.dims:
        return ds
    m = _margin_frame(evac["margin"])
    n = ds.sizes["storey"]
    for col, units, name in (("rset_s", "s", "required safe egress time"),
                             ("margin_s", "s", "ASET - RSET"), ("people_caught", "1", "people caught")):
        if col in m:
            v = np.full(n, np.nan)
            idx = m["storey"].to_numpy(int)
            ok = (idx >= 0) & (idx < n)
            v[idx[ok]] = m[col].to_numpy(float)[ok]
            ds[col] = ("storey", v, {"units": units, "long_name": name})
    return ds


def _margin_frame(margin):
    import pandas as pd

    m = margin if isinstance(margin, pd.DataFrame) else pd.DataFrame(margin)
    if "storey" not in m and "floor" in m:
        m = m.rename(columns={"floor": "storey"})
    return m


def _counts(events: list[dict]) -> dict[str, int]:
    out: dict[str, int] = {}
    for e in events:
        out[e["kind"]] = out.get(e["kind"], 0) + 1
    return out


def _first(events: list[dict], kind: str) -> float | None:
    times = [e["fire_time_s"] for e in events if e["kind"] == kind]
    return min(times) if times else None


def kpis(ctx: CouplingContext) -> dict[str, Any]:
    """The fire's KPIs (:data:`KPI_NAMES`; times in s since ignition; None when it did not happen)."""
    o = ctx.own
    ev = o["events"]
    ds = o.get("dataset")
    aset = np.asarray(ds["aset_s"].values, float) if ds is not None and "aset_s" in ds else np.zeros(0)
    out: dict[str, Any] = {"first_alarm_s": _first(ev, "detector"), "first_sprinkler_s": _first(ev, "sprinkler"),
                           "flashover_s": _first(ev, "flashover")}
    for by, key in zip(UNTENABLE_BY_S, ("floors_untenable_by_15min", "floors_untenable_by_30min"), strict=True):
        out[key] = int(np.count_nonzero(np.isfinite(aset) & (aset <= by))) if o["fire_t"] >= by else None
    fin = aset[np.isfinite(aset)]
    out["first_untenable_s"] = float(fin.min()) if fin.size else None
    out["floors_untenable"] = int(fin.size)
    out["people_caught"] = out["smallest_margin_s"] = None
    if ds is not None and "margin_s" in ds:
        margin = np.asarray(ds["margin_s"].values, float)
        caught = np.asarray(ds["people_caught"].values, float) if "people_caught" in ds else np.zeros(0)
        out["people_caught"] = float(np.nansum(caught)) if caught.size else None
        out["smallest_margin_s"] = float(np.nanmin(margin)) if np.isfinite(margin).any() else None
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
    if o["evac"] is not None and o["evac"].get("margin") is not None:
        out["fire_margin"] = _margin_frame(o["evac"]["margin"]).reset_index(drop=True)
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
    """The fire's own files in the run directory: ``fire.nc`` (times since ignition, attr ``ignition_at_s``),
    or, when :func:`physics.fire_io.write_fire_outputs` is there, the fire run's files in ``fire/``; with the
    evacuation, ``margin.csv``. For a ``files`` hook of the runner (requested, /tmp/readme/scen-requests.md)."""
    from pathlib import Path

    o, out = ctx.own, Path(out_dir)
    res = o.get("result")
    if res is None:
        return {}
    paths: dict[str, Any] = {}
    try:
        from physics.fire_io import write_fire_outputs
    except ImportError:
        ds = res.dataset.copy()
        ds.attrs["ignition_at_s"] = o["settings"]["start_s"]
        ds.to_netcdf(out / "fire.nc")
        paths["fire"] = out / "fire.nc"
    else:  # its events.jsonl and summary.json would replace the run's: a folder of their own
        sub = out / "fire"
        sub.mkdir(parents=True, exist_ok=True)
        paths |= {f"fire:{k}": Path(v) for k, v in write_fire_outputs(res, sub).items()}
    if o["evac"] is not None and o["evac"].get("margin") is not None:
        paths["margin"] = out / "margin.csv"
        _margin_frame(o["evac"]["margin"]).to_csv(paths["margin"], index=False)
    return paths


def layers_fire(ctx: CouplingContext, times_s) -> list:
    """The building's storeys coloured by tenability on the scenario's slider (layer ``fire_floors``)."""
    ds = ctx.own.get("dataset")
    if ds is None:
        return []
    from viz.layers import build

    return [build("fire_floors", ds)]


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
            ("smallest margin ASET − RSET", mins(s.get("smallest_margin_s")))]
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
        out.append("<section><h2>Storeys untenable (ASET, earliest first)</h2>"
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
    """The fire's time and the coupling's records (the zone model itself is re-run at restore)."""
    o = ctx.own
    frames = o["frames"]
    out: dict[str, Any] = {"fire_t": float(o["fire_t"]), "emitted": int(o["emitted"]), "cursor": int(o["cursor"]),
                           "events": o["events"],
                           "frame_times": [[t, ft] for t, ft, _ in frames]}
    for k in (frames[0][2] if frames else {}):
        out[f"frame/{k}"] = np.stack([np.asarray(f[2][k]) for f in frames])
    return out


def restore_fire(ctx: CouplingContext, saved: dict) -> None:
    """Re-run the fire set up afresh to the saved fire time (deterministic), dropping the events it
    re-makes (the restored log has them), and put the coupling's records back."""
    o = ctx.own
    fire_t = float(saved["fire_t"])
    if o["evac"] is None and fire_t > 0:
        o["sim"].advance_to(fire_t)
    o["fire_t"] = fire_t
    o["emitted"] = int(saved["emitted"])
    o["cursor"] = int(saved["cursor"])
    o["events"] = [dict(e) for e in saved["events"]]
    keys = [k.removeprefix("frame/") for k in saved if k.startswith("frame/")]
    o["frames"] = [(float(t), float(ft), {k: np.asarray(saved[f"frame/{k}"])[i] for k in keys})
                   for i, (t, ft) in enumerate(saved["frame_times"])]


FIRE = register_coupling(Coupling(
    name="fire", phase="physics", period_s=PERIOD_S, kinds=("fire", "fire_evacuation"),
    reads=(), writes=tuple(f"event:{k}" for k in EVENT_KINDS.values()),
    setup=setup_fire, step=step_fire, finish=finish_fire, save=save_fire, restore=restore_fire,
    from_scenario=from_scenario, layers=layers_fire, tables=tables_fire, report=report_fire,
    doc="high-rise fire (physics.fire_sim) on the run's clock: events, per-storey frames, ASET, "
        "optional co-simulated evacuation"))
