"""The injects coupling: a scenario's inject timeline played on the run's clock.

Each inject has a time ``t_s`` (s from the run's start: the scenario's
``after``, or ``at`` minus the start) and fires at the first step at or after
it (``period_s``, default 60 s), in timeline order:

* ``incident`` → an ``incident`` event (data ``lon``, ``lat``, ``incident``,
  ``needs``/``on_scene_s`` when given, ``id`` ``inject-<n>``) that dispatch answers;
* ``road_lost`` → the nearest road segment to ``lon``/``lat`` (the edge at the
  least distance and its twin of the other direction, the same street
  segment; or every edge of OSM way ``osm_way``) is closed on the shared
  ``road_graph`` under reason ``"inject"``; events ``road_lost`` (data
  ``edges``, ``lon``, ``lat``, ``osm_way``, ``cause``, ``lasts_s``) and
  ``road_closed`` (data ``n``, ``edges``, ``reason="inject"``); after
  ``lasts`` the edges reopen (``road_reopened``) unless another inject still
  holds them;
* ``station_lost`` → a ``station_lost`` event (data ``station``, ``reason``);
* ``sensor_value`` → a ``sensor_reading`` event (the value in SI, the
  sensor's ``lon``/``lat`` from the scenario's ``sensors``), and the reading
  goes through the hardware bridge's alert engine
  (:class:`hardware_bridge.fusion.alerts.AlertEngine`: the rules of
  ``alerts.toml``, or the file of parameter ``alerts``, and each sensor's own
  ``thresholds`` as its station's rules — a water-level gauge has no default
  rules, so its thresholds are what makes it alert; one engine for the
  run, so windows and hysteresis hold across readings). Each
  ``threshold_crossed`` it raises is emitted with the sensor's ``lon``/``lat``
  and, when its severity reaches ``incident_min_severity`` (default
  ``"info"``: every crossing), an ``incident`` of the kind the sensor's kind
  maps to (:data:`SENSOR_INCIDENTS`: ``flood_rescue`` for rain and water
  level, as :data:`agents.dispatch.EVENT_INCIDENTS` maps ``threshold_crossed``).

Reads ``road_graph`` always, though only ``road_lost`` injects use it: a
coupling's reads are fixed, and one coupling per timeline keeps a scenario's
injects one switch; a run with injects therefore has a road graph (the
``roads`` coupling), as every built-in scenario with injects has anyway.

Parameters: ``injects`` (list of ``{"t_s", "kind", "payload", "note"}``),
``sensors`` (list of ``{"station", "kind", "lon", "lat", "name"}``, optionally ``"thresholds"``:
severity name -> level in the kind's SI unit, see
:meth:`hardware_bridge.fusion.alerts.AlertEngine.set_thresholds`),
``alerts`` (an alert TOML), ``incident_min_severity``. From a scenario:
:func:`injects_from_scenario`. Checkpoints: the cursor, the closures in
force and their reopening times are saved; the alert engine's stream
histories are not (a resumed run starts its windows empty).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import numpy as np

from scenarios.coupling import Coupling, CouplingContext, register_coupling
from twin.errors import ValidationError

PARAMS = ("injects", "sensors", "alerts", "incident_min_severity")
INJECT_KINDS = ("sensor_value", "incident", "road_lost", "station_lost")
REASON = "inject"
#: Incident kind a sensor kind's threshold crossing calls for (ASSUMED for the kinds beyond rain and
#: water level: heat and smoke → fire; ground movement → collapse; gas → fire).
SENSOR_INCIDENTS: dict[str, str] = {
    "rain_gauge": "flood_rescue", "water_level": "flood_rescue",
    "smoke": "fire", "heat": "fire", "gas_lel": "fire", "gas_h2s": "fire", "gas_co": "fire", "gas_o2": "fire",
    "gnss_displacement": "collapse", "inclinometer": "collapse",
}
SEVERITIES = ("info", "advisory", "warning", "alarm")


# ----------------------------------------------------------------------------- scenario
def injects_from_scenario(section: dict[str, Any], scenario: Any) -> dict[str, Any]:
    """The timeline and sensors of a validated :class:`scenarios.schema.Scenario`, as plain values.

    ``section`` may carry ``alerts`` and ``incident_min_severity``; every inject's
    time becomes ``t_s`` (``after``, or ``at`` minus the scenario's start).
    """
    start = scenario.time.start
    out = []
    for inj in scenario.injects:
        t = inj.after if inj.after is not None else (inj.at - start).total_seconds()
        out.append({"t_s": float(t), "kind": inj.kind, "note": inj.note,
                    "payload": _plain(inj.payload.model_dump(exclude_none=True))})  # durations in s
    sensors = [_plain(s.model_dump(exclude={"thresholds"}))
               | {"thresholds": s.thresholds.levels() if s.thresholds is not None else {}} for s in scenario.sensors]
    params = {"injects": out, "sensors": sensors}
    params.update({k: section[k] for k in ("alerts", "incident_min_severity") if section.get(k) is not None})
    return params


def seconds(value: Any, what: str) -> float | None:
    """Seconds of a duration given as a number (s) or as text with its unit (``"2 h"``); None stays None."""
    if value is None:
        return None
    if isinstance(value, str):
        from scenarios.schema import parse_duration

        try:
            return parse_duration(value)
        except ValueError as exc:
            raise ValidationError(f"couplings.injects: {what}={value!r}: {exc}") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ValidationError(f"couplings.injects: {what}={value!r}: give seconds >= 0 or a duration "
                              "with its unit ('2 h')")
    return float(value)


def check_params(params: dict[str, Any]) -> list[dict[str, Any]]:
    """The timeline sorted by time (stable); every problem listed in one ValidationError."""
    problems = [f"unknown parameter {k!r} (allowed: {list(PARAMS)})" for k in params if k not in PARAMS]
    sev = params.get("incident_min_severity", "info")
    if sev not in SEVERITIES:
        problems.append(f"incident_min_severity={sev!r}: use one of {list(SEVERITIES)}")
    injects = params.get("injects") or []
    problems += _sensor_problems(params.get("sensors") or [])
    sensors = {s.get("station") for s in params.get("sensors") or []}
    for i, inj in enumerate(injects):
        t, kind, pay = inj.get("t_s"), inj.get("kind"), inj.get("payload")
        where = f"injects[{i}]"
        if isinstance(t, bool) or not isinstance(t, int | float) or not (math.isfinite(t) and t >= 0):
            problems.append(f"{where}.t_s={t!r}: give seconds >= 0 from the run's start")
        if kind not in INJECT_KINDS:
            problems.append(f"{where}.kind={kind!r}: use one of {list(INJECT_KINDS)}")
        if not isinstance(pay, dict):
            problems.append(f"{where}.payload={pay!r}: give a table")
        elif kind in ("road_lost", "incident"):
            key = "lasts" if kind == "road_lost" else "on_scene"
            try:
                seconds(pay.get(key), f"{where}.payload.{key}")
            except ValidationError as exc:
                problems.append(str(exc).removeprefix("couplings.injects: "))
        elif kind == "sensor_value" and pay.get("station") not in sensors:
            problems.append(f"{where}.payload.station={pay.get('station')!r}: not among the sensors "
                            f"{sorted(s for s in sensors if s)}; add it to [[sensors]] with its lon/lat")
    if problems:
        raise ValidationError("couplings.injects: " + "; ".join(problems))
    order = sorted(range(len(injects)), key=lambda i: (float(injects[i]["t_s"]), i))
    return [dict(injects[i], index=i) for i in order]


def _sensor_problems(sensors: list[dict[str, Any]]) -> list[str]:
    """Each sensor's thresholds checked as the alert engine takes them (level and value named)."""
    from hardware_bridge.fusion.alerts import threshold_problems

    out = []
    for i, s in enumerate(sensors):
        th = s.get("thresholds") or {}
        if not isinstance(th, dict):
            out.append(f"sensors[{i}].thresholds={th!r}: give a table of severity -> level")
            continue
        for level, value, why in threshold_problems(str(s.get("kind")), th):
            out.append(f"sensors[{i}].thresholds{'.' + level if level else ''}={value!r}: {why}")
    return out


# ----------------------------------------------------------------------------- set-up and step
def setup_injects(ctx: CouplingContext) -> None:
    from hardware_bridge.fusion.alerts import AlertEngine

    timeline = check_params(ctx.params)
    if ctx.params.get("alerts"):
        ctx.add_input("alerts", ctx.params["alerts"])
    engine = AlertEngine(ctx.params.get("alerts"), clock=ctx.state.clock)
    for s in ctx.params.get("sensors") or []:
        if s.get("thresholds"):
            engine.set_thresholds(str(s["kind"]), s["station"], s["thresholds"],
                                  source=f"the scenario's [[sensors]] thresholds of {s['station']}")
    ctx.own.update(timeline=timeline, next=0, holds={}, reopen=[],
                   sensors={s["station"]: s for s in ctx.params.get("sensors") or []}, engine=engine)
    ctx.summary.update(injects=len(timeline), fired={k: 0 for k in INJECT_KINDS}, threshold_crossed=0,
                       incidents=0, roads_closed=[])


def step_injects(ctx: CouplingContext, t: float, dt: float) -> None:
    """Reopen the roads whose time is up, then fire every inject due by ``t``, in timeline order."""
    _reopen_due(ctx, t)
    o = ctx.own
    while o["next"] < len(o["timeline"]) and o["timeline"][o["next"]]["t_s"] <= t + 1e-9:
        inj = o["timeline"][o["next"]]
        o["next"] += 1
        FIRE[inj["kind"]](ctx, inj, t)
        ctx.summary["fired"][inj["kind"]] += 1


def _fire_incident(ctx: CouplingContext, inj: dict, t: float) -> None:
    p = inj["payload"]
    data = {"lon": float(p["lon"]), "lat": float(p["lat"]), "incident": p["incident"],
            "id": f"inject-{inj['index'] + 1}"}
    if p.get("needs"):
        data["needs"] = {k: int(v) for k, v in p["needs"].items()}
    if p.get("on_scene") is not None:
        data["on_scene_s"] = seconds(p["on_scene"], "on_scene")
    ctx.summary["incidents"] += 1
    ctx.emit("incident", inj.get("note") or f"{p['incident']} incident (inject)", severity="warning",
             data=data)


def _fire_station_lost(ctx: CouplingContext, inj: dict, t: float) -> None:
    p = inj["payload"]
    ctx.emit("station_lost", inj.get("note") or f"station {p['station']} lost", severity="warning",
             data={"station": p["station"], "reason": p.get("reason", "")})


def nearest_segment(graph, lon: float, lat: float) -> list:
    """The edges at the least distance from ``lon``/``lat`` (a street segment's one or two directions)."""
    import shapely

    from gis.crs import WGS84, WORKING_CRS, transformer

    ids = list(graph.edge_ids)
    geoms = shapely.transform(np.array([graph.edge(e)["geometry"] for e in ids], dtype=object),
                              lambda xy: np.column_stack(transformer(WGS84, WORKING_CRS).transform(
                                  xy[:, 0], xy[:, 1])))
    x, y = transformer(WGS84, WORKING_CRS).transform(lon, lat)
    d = shapely.distance(geoms, shapely.Point(x, y))
    return [ids[i] for i in np.flatnonzero(d <= d.min() + 1e-6)]


def _fire_road_lost(ctx: CouplingContext, inj: dict, t: float) -> None:
    p = inj["payload"]
    graph = ctx.shared.get("road_graph")
    if graph is None:
        raise ValidationError("couplings.injects: a road_lost inject needs the shared road_graph; "
                              "enable the roads coupling")
    if p.get("osm_way") is not None:
        edges = [e for e in graph.edge_ids if graph.edge(e).get("osm_way") == int(p["osm_way"])]
    else:
        edges = nearest_segment(graph, float(p["lon"]), float(p["lat"]))
    lasts = seconds(p.get("lasts"), "lasts")
    ctx.emit("road_lost", inj.get("note") or p.get("reason") or "road lost", severity="warning",
             data={"edges": [str(e) for e in edges], "lon": p.get("lon"), "lat": p.get("lat"),
                   "osm_way": p.get("osm_way"), "cause": p.get("reason", ""),
                   "lasts_s": None if lasts is None else float(lasts)})
    if not edges:
        return
    holds = ctx.own["holds"]
    for e in edges:
        holds[str(e)] = holds.get(str(e), 0) + 1
    graph.close_edges(edges, reason=REASON)
    ctx.emit("road_closed", f"{len(edges)} road edges closed: {p.get('reason') or 'road lost'}",
             severity="warning", data={"n": len(edges), "edges": [str(e) for e in edges], "reason": REASON})
    ctx.summary["roads_closed"].append({"t_s": float(t), "edges": [str(e) for e in edges]})
    if lasts is not None:
        ctx.own["reopen"].append([float(inj["t_s"]) + float(lasts), [str(e) for e in edges]])


def _reopen_due(ctx: CouplingContext, t: float) -> None:
    due = [r for r in ctx.own["reopen"] if r[0] <= t + 1e-9]
    if not due:
        return
    ctx.own["reopen"] = [r for r in ctx.own["reopen"] if r[0] > t + 1e-9]
    graph = ctx.shared["road_graph"]
    by_id = {str(e): e for e in graph.edge_ids}
    holds = ctx.own["holds"]
    free = []
    for _, edges in due:
        for e in edges:
            holds[e] -= 1
            if holds[e] == 0:
                del holds[e]
                free.append(e)
    if free:
        graph.reopen([by_id[e] for e in free], reason=REASON)
        ctx.emit("road_reopened", f"{len(free)} road edges reopened (inject over)",
                 data={"n": len(free), "edges": free, "reason": REASON})


def _fire_sensor_value(ctx: CouplingContext, inj: dict, t: float) -> None:
    from hardware_bridge.fusion import Reading
    from hardware_bridge.units import to_si

    p = inj["payload"]
    sensor = ctx.own["sensors"][p["station"]]
    kind = str(p["sensor"])
    now: datetime = ctx.state.clock.now
    value, unit = (to_si(kind, float(p["value"]), str(p["unit"]), field="value")
                   if p.get("value") is not None else (None, ""))
    where = {"lon": float(sensor["lon"]), "lat": float(sensor["lat"])}
    ctx.emit("sensor_reading", inj.get("note") or f"{kind} at {p['station']}",
             data={"station": p["station"], "sensor": kind, "value": value, "unit": unit,
                   "result": p.get("result"), **where})
    reading = Reading(datastream_id=f"{p['station']}/{kind}", kind=kind, time=now, value=value,
                      lon=where["lon"], lat=where["lat"], station=p["station"], unit=unit,
                      result=p.get("result"))
    min_rank = SEVERITIES.index(ctx.params.get("incident_min_severity", "info"))
    for ev in ctx.own["engine"].evaluate(reading):
        sev = str(ev.severity)
        ctx.emit(ev.kind, ev.message, severity=sev, data={**_plain(ev.data), **where})
        if ev.kind != "threshold_crossed":
            continue
        ctx.summary["threshold_crossed"] += 1
        kind_inc = SENSOR_INCIDENTS.get(kind)
        if kind_inc is not None and SEVERITIES.index(sev) >= min_rank:
            ctx.summary["incidents"] += 1
            ctx.emit("incident", f"{kind_inc} call from the {sev} alert at {p['station']}",
                     severity="warning", data={**where, "incident": kind_inc,
                                               "id": f"alert-{inj['index'] + 1}", "station": p["station"]})


def _plain(v: Any) -> Any:
    """JSON-able values: numpy scalars as numbers, enums as their values, containers walked."""
    from enum import Enum

    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, Enum):
        return v.value
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    return v


FIRE = {"incident": _fire_incident, "station_lost": _fire_station_lost, "road_lost": _fire_road_lost,
        "sensor_value": _fire_sensor_value}


# ----------------------------------------------------------------------------- checkpoints
def save_injects(ctx: CouplingContext) -> dict:
    """The cursor, the edges held closed by injects and their reopening times."""
    return {"next": ctx.own["next"], "holds": dict(ctx.own["holds"]),
            "reopen": [list(r) for r in ctx.own["reopen"]]}


def restore_injects(ctx: CouplingContext, saved: dict) -> None:
    """Put the cursor back and close the held edges again on the freshly built graph (no events)."""
    ctx.own.update(next=int(saved["next"]), holds={str(k): int(v) for k, v in saved["holds"].items()},
                   reopen=[[float(t), [str(e) for e in edges]] for t, edges in saved["reopen"]])
    graph = ctx.shared.get("road_graph")
    if graph is not None and ctx.own["holds"]:
        by_id = {str(e): e for e in graph.edge_ids}
        graph.close_edges([by_id[e] for e in ctx.own["holds"]], reason=REASON)


def injects_report(ctx: CouplingContext) -> list[str]:
    """The timeline as played: time, kind, note."""
    import html

    rows = "".join(f"<tr><td class=\"n\">{inj['t_s'] / 60:.0f}</td><td>{html.escape(inj['kind'])}</td>"
                   f"<td>{html.escape(inj.get('note') or '')}</td></tr>" for inj in ctx.own["timeline"])
    s = ctx.summary
    return [f"<section><h2>Injects</h2><p>{s['injects']} injects; {s['threshold_crossed']} alert "
            f"thresholds crossed; {s['incidents']} incidents raised.</p><table><thead><tr>"
            "<th class=\"n\">min</th><th>kind</th><th>note</th></tr></thead>"
            f"<tbody>{rows}</tbody></table></section>"]


INJECTS = register_coupling(Coupling(
    name="injects", phase="forcing", period_s=60.0, kinds=(),
    reads=("road_graph",),
    writes=("event:incident", "event:road_lost", "event:station_lost", "event:sensor_reading",
            "event:threshold_crossed", "event:alert_cleared", "event:road_closed", "event:road_reopened"),
    setup=setup_injects, step=step_injects, save=save_injects, restore=restore_injects,
    doc="a scenario's inject timeline on the clock: incidents, roads and stations lost, sensor values -> alerts",
    from_scenario=injects_from_scenario, report=injects_report))
