"""The dispatch coupling: emergency units answering calls on the run's clock and its road graph.

A :class:`agents.dispatch.DispatchModel` on the run's clock
(``ctx.state.clock``: the runner drives it; the model is only started,
:meth:`~agents.dispatch.DispatchModel.start`) and on a
:class:`agents.routing.Router` over the shared ``road_graph`` (written by
``roads``). Set up at t = 0 with:

* the stations and units of ``stations`` (a CSV ``id, name, kind, lon, lat,
  engines, ambulances, rescue``; default the ASSUMED demo stations of
  :mod:`agents.dispatch_run`), those farther than 2 km from the graph left out;
* the calls known beforehand: ``incidents`` (CSV, :func:`agents.dispatch_run.read_incidents`),
  ``events`` (JSON lines, :func:`agents.dispatch_run.read_events`) and
  random calls (``calls_per_hour``, Poisson over the run,
  :func:`agents.dispatch.random_incidents`, seeded from the coupling's ``ctx.rng``).

Every ``period_s`` (default 60 s), in this order:

1. the router takes the graph's closures and slow-downs of every reason
   (flood, debris, inject; :meth:`~agents.dispatch.DispatchModel.sync_roads`):
   units whose path ahead changed cost re-route at the end of the edge they
   are on, waiting calls are served;
2. the events since the last step, in log order: ``station_lost``
   (data ``station``) takes the station's free units out of service;
   ``incident`` (data ``lon``, ``lat``, ``incident``, optional ``needs``,
   ``on_scene_s``, ``id``) becomes a call now;
3. flood rescues (``flood_rescues`` > 0 and a ``water_depth`` field): each
   land cell within ``near_road_m`` (150 m) of a road node whose ARR 2019
   hazard class (:func:`agents.people_hazard.hazard_class` of the state's
   depth and speed) first reaches ``hazard_class`` (4, H4: unsafe for people
   and vehicles) at this step gives a call with probability
   ``rescue_probability`` (ASSUMED 1.0), at the cell's centre, up to
   ``flood_rescues`` calls in the run — the rule of
   :func:`agents.dispatch.flood_rescue_incidents`, drawn when and where the
   hazard appears instead of from a finished flood;
4. what the model recorded since the last step becomes events of the run at
   the instant it happened: ``unit_dispatched``, ``unit_arrived``,
   ``incident_queued``, ``incident_unreachable``, ``unit_rerouted``,
   ``unit_stranded``, ``unit_standby``, ``unit_restaged``,
   ``station_out_of_service``; and ``incident_closed`` (data ``incident``)
   when the last unit of a call leaves the scene.

Reads: only ``road_graph`` is declared. The depth and speed fields and the
``incident``/``station_lost`` events are used when the run has them: they
come from earlier phases (physics, forcing, consequences), so they are in
place before this response-phase coupling steps at the same instant
whatever is declared, and declaring them would make a run without a flood
or without injects refuse (or pull in a flood) for inputs dispatch can do
without.

Checkpoints (:func:`save_dispatch`, :func:`restore_dispatch`): the model's
whole state (:meth:`agents.dispatch.DispatchModel.checkpoint`: units, the
legs they drive and the time left, requests, queues, records, its random
generator, its router's road state and cached trees) and the coupling's
cursors. The road graph's closures are the roads, injects and debris
couplings' to restore; the model's router keeps the state it last synced,
so the first step after a resume sees the same road change as the run that
did not stop. A crashed run resumes to the same events and tables (tested).

Parameters: ``stations``, ``incidents``, ``events``, ``calls_per_hour`` (0),
``flood_rescues`` (12 when the run has a flood, else 0), ``rescue_probability``
(1.0), ``hazard_class`` (4), ``near_road_m`` (150), ``turnout_s`` (60),
``on_scene`` ("lognormal"). A scenario's ``[models.dispatch]`` section gives
them (:func:`dispatch_from_scenario`; ``flood = "run:flood_forecast"``: the
run's own flood).
"""

from __future__ import annotations

import html
import math
from typing import Any

import numpy as np

from scenarios.coupling import Coupling, CouplingContext, register_coupling
from twin.errors import ValidationError

PARAMS = ("stations", "incidents", "events", "calls_per_hour", "flood_rescues", "rescue_probability",
          "hazard_class", "near_road_m", "turnout_s", "on_scene")
#: Keys of the dispatch run kind's request that a coupled run supplies itself (dropped from a scenario).
RUN_KEYS = ("hours", "city", "seed", "frame_s", "flood", "roads", "districts")
#: Default flood rescue calls when the run has a flood (as ``twin dispatch run``).
DEFAULT_RESCUES = 12
#: ASSUMED: every cell where the water first becomes dangerous near a road gives a call (capped).
RESCUE_PROBABILITY = 1.0
NEAR_ROAD_M = 150.0
#: Model records that are not turned into run events (the couplings that change the roads log them).
NOT_FORWARDED = ("road_closed", "road_reopened")


# ----------------------------------------------------------------------------- scenario
def dispatch_from_scenario(section: dict[str, Any], scenario: Any = None) -> dict[str, Any]:
    """The coupling's parameters from a scenario's ``[models.dispatch]`` section.

    ``flood`` must be absent or ``"run:flood_forecast"`` (the run's flood),
    ``roads`` absent (the run's road graph); the run's own keys (hours, city,
    seed, districts, frame_s) and shared values dispatch does not take are dropped.

    Raises
    ------
    ValidationError
        For a flood or road file: a coupled run floods and routes on its own state.
    """
    flood = section.get("flood")
    if flood is not None and not str(flood).startswith("run:"):
        raise ValidationError(f"models.dispatch.flood={flood!r}: a coupled run takes the flood of its "
                              "own flood model; write flood = \"run:flood_forecast\" and enable "
                              "[models.flood_forecast]")
    if section.get("roads") is not None:
        raise ValidationError(f"models.dispatch.roads={section['roads']!r}: a coupled run routes on the "
                              "road graph of its roads coupling; remove roads from the dispatch section")
    return {k: (str(v) if k in ("stations", "incidents", "events") else v)
            for k, v in section.items() if k in PARAMS and v is not None}


def check_params(params: dict[str, Any]) -> None:
    """Refuse unknown keys and bad numbers, listing every problem."""
    problems = [f"unknown parameter {k!r} (allowed: {list(PARAMS)})" for k in params if k not in PARAMS]
    for key, lo, hi in (("calls_per_hour", 0.0, 1000.0), ("rescue_probability", 0.0, 1.0),
                        ("near_road_m", 0.0, 5000.0), ("turnout_s", 0.0, 3600.0),
                        ("flood_rescues", 0, 5000), ("hazard_class", 1, 6)):
        v = params.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int | float)
                              or not (math.isfinite(v) and lo <= v <= hi)):
            problems.append(f"{key}={v!r}: give a number in [{lo:g}, {hi:g}]")
    if problems:
        raise ValidationError("couplings.dispatch: " + "; ".join(problems))


# ----------------------------------------------------------------------------- set-up
def setup_dispatch(ctx: CouplingContext) -> None:
    """Router on the shared graph, stations, the calls known beforehand; the model started on the clock."""
    from agents.dispatch import DispatchModel, random_incidents
    from agents.dispatch_run import (
        DEMO_STATIONS,
        _stations_on_roads,
        read_events,
        read_incidents,
        read_stations,
    )
    from agents.routing import Router

    p = ctx.params
    check_params(p)
    if "road_graph" not in ctx.shared:
        raise ValidationError("couplings.dispatch: no shared road_graph; enable the roads coupling")
    router = Router(ctx.shared["road_graph"])
    stations_file = p.get("stations") or DEMO_STATIONS
    ctx.add_input("stations", stations_file)
    stations, dropped = _stations_on_roads(read_stations(stations_file), router)
    incidents = []
    if p.get("incidents"):
        ctx.add_input("incidents", p["incidents"])
        incidents += read_incidents(p["incidents"])
    if p.get("events"):
        ctx.add_input("events", p["events"])
        incidents += read_events(p["events"])[0]
    calls_seed, model_seed = (int(s) for s in ctx.rng.integers(0, 2**31 - 1, size=2))
    incidents += random_incidents(router, float(p.get("calls_per_hour", 0.0)), ctx.duration_s / 3600.0,
                                  seed=calls_seed)
    model_args = {"turnout_s": float(p.get("turnout_s", 60.0)), "on_scene": p.get("on_scene", "lognormal"),
                  "fast": False}  # roads may change at any step: every mission a process
    model = DispatchModel(router, stations, incidents, clock=ctx.state.clock, seed=model_seed, **model_args)
    model.start(ctx.duration_s)
    ctx.own.update(model=model, router=router, model_args=model_args, event_cursor=len(ctx.state.events),
                   record_cursor=0,
                   open_incidents=set(), n_known=0, seeds={"calls": calls_seed, "model": model_seed},
                   rescues=0, off_roads=0, events_seen=0)
    ctx.summary.update(stations=len(stations), stations_off_roads=dropped, units=len(model.units),
                       calls_known_at_start=len(incidents))


def _rescue_cells(ctx: CouplingContext) -> None:
    """Land cells near a road node (the candidates of flood rescues), once."""
    dom, router = ctx.domain, ctx.own["router"]
    land = ~np.asarray(dom.sea, bool)
    yy, xx = np.meshgrid(np.asarray(dom.y, float), np.asarray(dom.x, float), indexing="ij")
    _, dist = router.nearest(xx.ravel(), yy.ravel(), return_distance=True)
    near = land & (np.asarray(dist).reshape(land.shape) <= float(ctx.params.get("near_road_m", NEAR_ROAD_M)))
    ctx.own.update(near_road=near, danger_seen=np.zeros_like(near))


# ----------------------------------------------------------------------------- step
def step_dispatch(ctx: CouplingContext, t: float, dt: float) -> None:
    """Roads, then the events since the last step, then flood rescues; the model's records as events."""
    model = ctx.own["model"]
    model.sync_roads()
    _take_events(ctx, model)
    _flood_rescues(ctx, model, t)
    _forward_records(ctx, model)
    _close_incidents(ctx, model, t)


def _take_events(ctx: CouplingContext, model) -> None:
    from agents.dispatch import make_incident

    events = ctx.state.events
    start, end = ctx.own["event_cursor"], len(events)
    ctx.own["event_cursor"] = end
    for k in range(start, end):
        ev = events[k]
        d = ev.data or {}
        if ev.kind == "station_lost":
            try:
                model.take_station_out(str(d.get("station")), str(d.get("reason", "")))
            except ValidationError as exc:
                ctx.emit("dispatch_ignored", f"station_lost ignored: {exc}", severity="warning",
                         data={"event": ev.kind, "station": d.get("station")})
        elif ev.kind == "incident":
            ctx.own["events_seen"] += 1
            iid = str(d.get("id") or f"{ev.source}-{k}")
            try:
                inc = make_incident(iid, model.clock.now_s, float(d["lon"]), float(d["lat"]),
                                    str(d["incident"]), d.get("needs"), d.get("on_scene_s"))
                model.add_incident(inc)
            except (KeyError, TypeError, ValueError, ValidationError) as exc:
                ctx.own["off_roads"] += 1
                ctx.emit("incident_unreachable", f"incident {iid} not taken: {exc}", severity="warning",
                         data={"incident": iid, "reason": str(exc)})


def _flood_rescues(ctx: CouplingContext, model, t: float) -> None:
    from agents.dispatch import RESCUE_HAZARD_CLASS, make_incident
    from agents.people_hazard import hazard_class
    from gis.crs import WGS84, transformer

    st = ctx.state
    if not st.has_field("water_depth"):
        return
    cap = int(ctx.params.get("flood_rescues", DEFAULT_RESCUES))
    left = cap - ctx.own["rescues"]
    if left <= 0:
        return
    if "near_road" not in ctx.own:
        _rescue_cells(ctx)
    depth = np.nan_to_num(st.field("water_depth").values.astype(float), nan=0.0)
    speed = (np.nan_to_num(st.field("water_speed").values.astype(float), nan=0.0)
             if st.has_field("water_speed") else np.zeros_like(depth))
    level = int(ctx.params.get("hazard_class", RESCUE_HAZARD_CLASS))
    new = (hazard_class(depth, speed) >= level) & ctx.own["near_road"] & ~ctx.own["danger_seen"]
    iy, ix = np.nonzero(new)
    if iy.size == 0:
        return
    ctx.own["danger_seen"] |= new
    p = float(ctx.params.get("rescue_probability", RESCUE_PROBABILITY))
    pick = np.flatnonzero(ctx.rng.random(iy.size) < p)
    pick = np.sort(ctx.rng.permutation(pick)[:left])
    dom = ctx.domain
    lon, lat = transformer(dom.crs, WGS84).transform(np.asarray(dom.x, float)[ix[pick]],
                                                     np.asarray(dom.y, float)[iy[pick]])
    for i in range(pick.size):
        ctx.own["rescues"] += 1
        inc = make_incident(f"rescue-{ctx.own['rescues']}", t, float(lon[i]), float(lat[i]), "flood_rescue")
        try:
            model.add_incident(inc)
        except ValidationError as exc:
            ctx.own["off_roads"] += 1
            ctx.emit("incident_unreachable", f"flood rescue {inc.id} not taken: {exc}", severity="warning",
                     data={"incident": inc.id, "reason": str(exc)})


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    return v


def _emit_at(ctx: CouplingContext, t: float, kind: str, message: str, severity: str, data: dict) -> None:
    """An event at the simulated instant ``t`` (a model record's own time, up to the clock's now)."""
    from twin.events import Event

    clock = ctx.state.clock
    ctx.state.events.append(Event.parse({"time_s": float(t), "wall_time": clock.at(t), "kind": kind,
                                         "source": ctx.name, "severity": severity, "message": message,
                                         "data": _plain(data)}))


def _forward_records(ctx: CouplingContext, model) -> None:
    recs = model.records
    start = ctx.own["record_cursor"]
    ctx.own["record_cursor"] = len(recs)
    for t, kind, sev, msg, data in recs[start:]:
        if kind not in NOT_FORWARDED:
            _emit_at(ctx, t, kind, msg, sev, data)
    ctx.own["event_cursor"] = len(ctx.state.events)  # its own events are not read back


def _close_incidents(ctx: CouplingContext, model, t: float) -> None:
    """``incident_closed`` for each call whose every unit has left the scene by ``t``."""
    opened = ctx.own["open_incidents"]
    opened.update(range(ctx.own["n_known"], len(model.incidents)))
    ctx.own["n_known"] = len(model.incidents)
    by = model._by_incident
    done = []
    for i in sorted(opened):
        reqs = by[i]
        clears = [r.clear_s for r in reqs]
        if reqs and all(c <= t for c in clears):  # NaN (not yet on scene) compares False
            done.append((max(clears), i))
    for tc, i in sorted(done):
        opened.discard(i)
        inc = model.incidents[i]
        _emit_at(ctx, tc, "incident_closed", f"incident {inc.id} closed", "info",
                 {"incident": inc.id, "kind": inc.kind, "lon": inc.lon, "lat": inc.lat})
    ctx.own["event_cursor"] = len(ctx.state.events)


def finish_dispatch(ctx: CouplingContext) -> None:
    """Forward the last records; the model's KPIs into the summary."""
    model = ctx.own["model"]
    _forward_records(ctx, model)
    _close_incidents(ctx, model, model.clock.now_s)
    s = model.summary()
    s.pop("road_changes", None)
    ctx.summary.update(s)
    ctx.summary.update(road_state_changes=len(model.road_changes), flood_rescues=ctx.own["rescues"],
                       incidents_from_events=ctx.own["events_seen"],
                       incidents_not_taken=ctx.own["off_roads"],
                       stations_out_of_service=[model.stations[i].id for i in sorted(model.lost_stations)],
                       seeds=ctx.own["seeds"])


# ----------------------------------------------------------------------------- checkpoints
#: The coupling's own counters saved beside the model (:func:`save_dispatch`).
COUNTERS = ("event_cursor", "record_cursor", "n_known", "rescues", "off_roads", "events_seen")


def save_dispatch(ctx: CouplingContext) -> dict[str, Any]:
    """The model's whole state (:meth:`agents.dispatch.DispatchModel.checkpoint`, keys ``model/...``),
    the cursors and counters, the calls still open and the cells already dangerous."""
    o = ctx.own
    out: dict[str, Any] = {f"model/{k}": v for k, v in o["model"].checkpoint().items()}
    out.update({k: int(o[k]) for k in COUNTERS})
    out["open_incidents"] = sorted(int(i) for i in o["open_incidents"])
    if "danger_seen" in o:
        out["danger_seen"] = o["danger_seen"].copy()
    return out


def restore_dispatch(ctx: CouplingContext, saved: dict[str, Any]) -> None:
    """Put a :func:`save_dispatch` state back after ``setup``: a model built afresh on the restored
    clock (same router, stations, seed and parameters) takes the saved state
    (:meth:`agents.dispatch.DispatchModel.restore`: units under way resume their trips)."""
    from agents.dispatch import DispatchModel

    o = ctx.own
    model = DispatchModel(o["router"], o["model"].stations, [], clock=ctx.state.clock, seed=o["seeds"]["model"],
                          **o["model_args"])
    model.restore({k.removeprefix("model/"): v for k, v in saved.items() if k.startswith("model/")})
    o["model"] = model
    o.update({k: int(saved[k]) for k in COUNTERS})
    o["open_incidents"] = {int(i) for i in saved["open_incidents"]}
    if "danger_seen" in saved:
        _rescue_cells(ctx)
        o["danger_seen"] = np.asarray(saved["danger_seen"], bool).copy()


# ----------------------------------------------------------------------------- outputs
def dispatch_layers_coupled(ctx: CouplingContext, times_s) -> list:
    """Units moving (``movers``), stations and incidents at the run's frame times."""
    from agents.dispatch_run import build_dataset, dispatch_layers

    model = ctx.own["model"]
    ds = build_dataset(model, np.asarray(times_s, float), None, None, hours=ctx.duration_s / 3600.0)
    return dispatch_layers(ds)


def dispatch_tables(ctx: CouplingContext) -> dict[str, Any]:
    """``incidents`` (points, response times) and ``units`` (at their station, missions, utilisation)."""
    import geopandas as gpd

    model = ctx.own["model"]
    inc = model.incident_table()
    incidents = gpd.GeoDataFrame(inc, geometry=gpd.points_from_xy(inc["lon"], inc["lat"]), crs="EPSG:4326")
    units = model.unit_table()
    where = {s.id: (s.lon, s.lat) for s in model.stations}
    lost = {model.stations[i].id for i in model.lost_stations}
    units["station_out_of_service"] = units["station"].isin(lost)
    units = gpd.GeoDataFrame(units, geometry=gpd.points_from_xy([where[s][0] for s in units["station"]],
                                                                [where[s][1] for s in units["station"]]),
                             crs="EPSG:4326")
    return {"incidents": incidents, "units": units}


def response_histogram(response_s: np.ndarray, bin_min: float = 1.0) -> list[tuple[float, int]]:
    """(bin start in min, count) of response times (s) in ``bin_min``-minute bins."""
    m = np.asarray(response_s, float) / 60.0
    m = m[np.isfinite(m)]
    if m.size == 0:
        return []
    edges = np.arange(0.0, math.floor(m.max() / bin_min) * bin_min + 2 * bin_min, bin_min)
    counts, _ = np.histogram(m, bins=edges)
    return [(float(e), int(c)) for e, c in zip(edges[:-1], counts, strict=True)]


def dispatch_report(ctx: CouplingContext) -> list[str]:
    """KPIs (response times, share within 5 min per 建标152-2017, unreachable, re-routes) and the distribution."""
    from agents.dispatch import RESPONSE_TARGET_S
    from agents.dispatch_run import dispatch_report_sections

    model = ctx.own["model"]
    out = dispatch_report_sections(None, dict(ctx.summary))
    inc = model.incident_table()
    rows = response_histogram(inc["response_s"].to_numpy(float) if len(inc) else np.empty(0))
    if rows:
        top = max(c for _, c in rows) or 1
        trs = "".join(
            f"<tr><td class=\"n\">{a:g}–{a + 1:g}</td><td class=\"n\">{c}</td><td>"
            f"<span style=\"display:inline-block;height:0.8em;width:{12 * c / top:.1f}em;background:"
            f"{'#3b6fb6' if (a + 1) * 60 <= RESPONSE_TARGET_S else '#c0392b'}\"></span></td></tr>"
            for a, c in rows)
        out.insert(1, "<section><h2>Response times (dispatch → first unit on scene)</h2><table><thead><tr>"
                   "<th class=\"n\">min</th><th class=\"n\">incidents</th><th></th></tr></thead>"
                   f"<tbody>{trs}</tbody></table><p>Red: beyond the 5 minutes of 建标152-2017. Road "
                   f"changes seen by dispatch: {len(model.road_changes)}; stations out of service: "
                   f"{html.escape(', '.join(ctx.summary.get('stations_out_of_service', [])) or 'none')}."
                   "</p></section>")
    return out


DISPATCH = register_coupling(Coupling(
    name="dispatch", phase="response", period_s=60.0, kinds=("dispatch",),
    reads=("road_graph",),
    optional_reads=("water_depth", "water_speed", "event:incident", "event:station_lost"),
    writes=("event:unit_dispatched", "event:unit_arrived", "event:incident_closed",
            "event:incident_unreachable", "event:incident_queued", "event:unit_rerouted",
            "event:unit_stranded", "event:unit_standby", "event:unit_restaged",
            "event:station_out_of_service", "event:dispatch_ignored"),
    setup=setup_dispatch, step=step_dispatch, finish=finish_dispatch, save=save_dispatch,
    restore=restore_dispatch,
    doc="emergency dispatch (agents.dispatch) on the run's clock and road graph: calls, injects, flood rescues",
    from_scenario=dispatch_from_scenario, layers=dispatch_layers_coupled, tables=dispatch_tables,
    report=dispatch_report))
