"""The evacuation coupling: the district evacuation (:mod:`agents.district_evac`) on the run's clock.

Who leaves and when
-------------------
Residents of the run grid's cells — the 2020 census district totals spread
uniformly over each district's land cells (:func:`agents.population.population_grid`,
the assumption the district model states) — leave when their cell first
reaches the trigger: the ARR 2019 hazard class of the state's
``water_depth`` and ``water_speed`` reaches ``hazard_class`` (default H3,
:func:`agents.people_hazard.hazard_class`), or, with ``depth_m``, the depth
reaches it. The order is given at the step that sees it (``t``); the people
of those cells are gathered into groups of ``group_size`` at the road node
nearest each cell (:func:`agents.population.evacuee_groups`) and depart from
``t + notice_s`` spread uniformly over ``departure_window_s`` (seeded by the
coupling's generator). Every ``people_to_move`` event (debris) since the last
step adds its people, in groups at its point, the same way. Each wave is
routed to the nearest shelter with room; shelters' places are shared by all
waves (a place reserved by an earlier wave stays taken).

The streets
-----------
The walk network is the shared ``road_graph`` without expressways
(:func:`agents.district_evac.walk_network`). Streets close and slow for
walkers by the district model's own rule (close from ``close_class``, default
``hazard_class`` as in ``twin evacuate district``, or from ``depth_m``;
wading slows, Li et al. 2026) applied to the state's depth and
speed sampled along each street (:class:`agents.district_evac.FieldFlood`: no
``flood.nc`` is read), and close where the shared graph is closed for any
reason other than the flood (``debris``, ``inject``: the graph's flood
closures are the car rule of the ``roads`` coupling, not the walkers').

Each step (period default 60 s, the model's hazard chunk ``hazard_every_s``)
the model moves from the last step to ``t`` on the street state of the last
step, then reads the state at ``t``: groups on a street that closed are
stranded, groups whose way crosses one are re-routed; then the new waves of
``t`` are ordered.

Events: ``evacuation_ordered`` (``people``, ``groups``, ``n_cells``, ``cells``
[[lon, lat], ... up to 200], ``lon``/``lat`` centroid, ``reason``
``"flood"`` or the reason of the ``people_to_move`` event, ``depart_from_s``),
``evacuation_progress`` every ``progress_every_s`` (``ordered``, ``waiting``,
``moving``, ``arrived``, ``stranded`` people), ``people_stranded`` once per
step with new stranding (``people``, ``groups``, ``reasons`` {why: people},
``lon``/``lat`` centroid, ``points``), ``shelter_full``.

Parameters: ``hazard_class`` (3), ``close_class`` (``hazard_class``), ``depth_m``
(None: trigger and closure by depth instead), ``notice_s`` (0),
``departure_window_s`` (600), ``mode`` ("walk" or "car"), ``group_size`` (20
on foot, 3 by car), ``shelters`` (CSV/GeoJSON; default the package's ASSUMED
demo list), ``districts`` (only cells of these districts leave; default all
the grid's), ``flood_trigger`` (True; False: only ``people_to_move`` events
order people out), ``dt_s`` (1), ``hazard_every_s`` (60), ``frame_every_s``
(300, map frames), ``progress_every_s`` (600).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from scenarios.coupling import Coupling, CouplingContext, register_coupling
from twin.errors import ValidationError

PARAMS = ("hazard_class", "close_class", "depth_m", "notice_s", "departure_window_s", "mode", "group_size", "shelters",
          "districts", "flood_trigger", "dt_s", "hazard_every_s", "frame_every_s", "progress_every_s")
#: Most points listed in an event's ``cells``/``points``.
MAX_POINTS = 200
WALK_GROUP, CAR_GROUP = 20, 3


# ----------------------------------------------------------------------------- parameters
def _number(params: dict, key: str, default: float, *, low: float = 0.0, strict: bool = False) -> float:
    v = params.get(key, default)
    ok = not isinstance(v, bool) and isinstance(v, int | float) and math.isfinite(v) \
        and (v > low if strict else v >= low)
    if not ok:
        raise ValidationError(f"couplings.evacuation.{key}={v!r}: give a finite number "
                              f"{'>' if strict else '>='} {low:g}")
    return float(v)


def evac_params(ctx: CouplingContext):
    """The model's :class:`agents.district_evac.EvacParams` from the coupling's parameters (checked)."""
    from agents.district_evac import EvacParams

    p = ctx.params
    bad = sorted(k for k in p if k not in PARAMS)
    if bad:
        raise ValidationError(f"couplings.evacuation: unknown parameter(s) {bad}; allowed: {list(PARAMS)}")
    if p.get("hazard_class") is not None and p.get("depth_m") is not None:
        raise ValidationError("couplings.evacuation: give hazard_class or depth_m, not both")
    hc = trigger_class(p)
    close = p.get("close_class")
    close = hc if close is None else close
    if isinstance(close, bool) or not isinstance(close, int) or not 2 <= close <= 6:
        raise ValidationError(f"couplings.evacuation.close_class={close!r}: an ARR hazard class 2..6 (H1 is safe)")
    depth = p.get("depth_m")
    if depth is not None:
        depth = _number(p, "depth_m", 0.0, strict=True)
    duration = float(ctx.duration_s) if ctx.duration_s else 4 * 3600.0
    return EvacParams(mode=str(p.get("mode", "walk")), close_class=int(close), depth_threshold_m=depth,
                      dt_s=_number(p, "dt_s", 1.0, strict=True),
                      hazard_every_s=_number(p, "hazard_every_s", 60.0, strict=True),
                      frame_every_s=_number(p, "frame_every_s", 300.0, strict=True),
                      max_duration_s=duration,
                      departure_window_s=_number(p, "departure_window_s", 600.0))


def trigger_class(params: dict) -> int:
    """The ARR class from which a cell's residents are ordered out (``hazard_class``, default 3), checked."""
    hc = params.get("hazard_class")
    hc = 3 if hc is None else hc
    if isinstance(hc, bool) or not isinstance(hc, int) or not 2 <= hc <= 6:
        raise ValidationError(f"couplings.evacuation.hazard_class={hc!r}: an ARR hazard class 2..6 (H1 is safe)")
    return hc


def from_scenario(section: dict[str, Any], scenario: Any) -> dict[str, Any]:
    """The coupling's parameters from a scenario's ``[models.evacuate_district]`` (+ shared values).

    ``flood = "run:flood_forecast"`` (or no flood) means the coupled flood;
    ``zone = "run:slope_forecast"`` means people leave on the debris'
    ``people_to_move`` events only (``flood_trigger = false``). The run's
    seed and length are the run's (``seed``, ``max_hours`` are not used).

    Raises
    ------
    ValidationError
        For a flood or zone file: a coupled run takes its hazard from the coupled models.
    """
    s = dict(section)
    out: dict[str, Any] = {}
    flood = s.get("flood")
    if flood is not None and flood != "run:flood_forecast":
        raise ValidationError(f"models.evacuate_district.flood={flood!r}: a coupled run takes the flood from "
                              "its flood model; write flood = \"run:flood_forecast\" (or leave it out)")
    zone = s.get("zone")
    if zone is not None:
        if zone != "run:slope_forecast":
            raise ValidationError(f"models.evacuate_district.zone={zone!r}: a coupled run orders people out from "
                                  "the flood or the debris' people_to_move; use zone = \"run:slope_forecast\" "
                                  "or leave it out")
        out["flood_trigger"] = False
    if s.get("hazard_class") is not None:
        out["hazard_class"] = int(s["hazard_class"])
    if s.get("depth_threshold") is not None:
        out["depth_m"] = float(s["depth_threshold"])
    for key in ("mode", "group_size", "shelters", "districts"):
        if s.get(key) is not None:
            out[key] = s[key]
    if s.get("departure_window_min") is not None:
        out["departure_window_s"] = float(s["departure_window_min"]) * 60.0
    return out


# ----------------------------------------------------------------------------- setup
def _network(graph, mode: str):
    """The model's own copy of the shared graph, without its closures (walk: expressways dropped)."""
    from agents.district_evac import walk_network
    from gis.roads import RoadGraph

    if mode == "walk":
        return walk_network(graph, keep_hazard=False)
    g = graph.graph.copy()
    for *_, d in g.edges(data=True):
        d["closed_by"], d["slowed_by"] = set(), {}
    return RoadGraph(g).largest_scc()


def _district_cells(static, names) -> np.ndarray:
    """Cells (y, x) of the named districts of the grid (all land cells when ``names`` is None)."""
    district = np.asarray(static["district"].values)
    if not names:
        return district >= 0
    known = [str(n) for n in static.attrs.get("district_names", [])]
    ids = []
    for n in names:
        hit = [i for i, k in enumerate(known) if k.casefold() == str(n).strip().casefold()]
        if not hit:
            raise ValidationError(f"couplings.evacuation.districts: {n!r} is not a district of the run's grid "
                                  f"(its districts: {known})")
        ids += hit
    return np.isin(district, ids)


def setup_evacuation(ctx: CouplingContext) -> None:
    """Build the model on the shared road graph (no groups yet), the residents per cell, and start it at t = 0."""
    from agents.district_evac import DistrictEvacuation, FieldFlood
    from agents.district_run import DEMO_SHELTERS, read_shelters
    from agents.population import population_grid
    from twin.events import EventLog

    params = evac_params(ctx)
    graph = ctx.shared.get("road_graph")
    if graph is None:
        raise ValidationError("couplings.evacuation: no shared road_graph; enable the roads coupling "
                              "(it writes road_graph) in the run")
    p = ctx.params
    group = _number(p, "group_size", CAR_GROUP if params.mode == "car" else WALK_GROUP, low=1.0)
    shelters_path = Path(p.get("shelters") or DEMO_SHELTERS)
    shelters = read_shelters(shelters_path)
    ctx.add_input("shelters", shelters_path)
    roads = _network(graph, params.mode)
    seed = int(ctx.rng.integers(2**31))
    model = DistrictEvacuation(roads, shelters, _origins([], [], []), params=params, seed=seed,
                               events=EventLog(), largest_group=group, allow_empty=True)
    static = ctx.state.static
    model.flood = FieldFlood(roads, static["x"].values, static["y"].values,
                             sea=np.asarray(static["sea"].values, bool) if "sea" in static else None)
    people = population_grid(static, city=ctx.city)
    ctx.own.update(model=model, params=params, group_size=group, people=people,
                   area=_district_cells(static, p.get("districts")),
                   triggered=np.zeros(people.shape, bool), cursor=0,
                   edge_index={e: i for i, e in enumerate(roads.edge_ids)},
                   waves=[], wave_of=np.zeros(0, np.int64), series=[], last_progress_s=0.0,
                   shelters_path=str(shelters_path))
    ctx.summary.update(residents_on_grid=float(people.values.sum()), walk_edges=roads.n_edges,
                       shelters=len(shelters), shelter_places=float(shelters["capacity"].sum()))
    _read_state(ctx)
    model.start()


def _origins(lon, lat, people):
    import pandas as pd

    return pd.DataFrame({"lon": np.asarray(lon, float), "lat": np.asarray(lat, float),
                         "people": np.asarray(people, float)})


# ----------------------------------------------------------------------------- step
def _read_state(ctx: CouplingContext) -> None:
    """The state's depth and speed on the model's streets, and the shared graph's other closures."""
    model, st = ctx.own["model"], ctx.state
    if st.has_field("water_depth"):
        speed = st.field("water_speed").values if st.has_field("water_speed") else None
        model.flood.set_fields(st.field("water_depth").values, speed)
    graph, index = ctx.shared["road_graph"], ctx.own["edge_index"]
    extra = np.zeros(len(index), bool)
    for e in graph.edge_ids:
        d = graph.edge(e)
        if d["closed"] and (d["closed_by"] - {"flood"}) and e in index:
            extra[index[e]] = True
    model.extra_closed[:] = extra


def trigger_cells(ctx: CouplingContext) -> np.ndarray:
    """Cells (y, x) at or beyond the trigger now (hazard class or depth of the state)."""
    from agents.people_hazard import hazard_class

    st, params = ctx.state, ctx.own["params"]
    if not st.has_field("water_depth"):
        return np.zeros(ctx.own["triggered"].shape, bool)
    depth = np.nan_to_num(np.asarray(st.field("water_depth").values, float), nan=0.0)
    if params.depth_threshold_m is not None:
        return depth >= params.depth_threshold_m
    speed = np.asarray(st.field("water_speed").values, float) if st.has_field("water_speed") \
        else np.zeros_like(depth)
    return hazard_class(depth, speed) >= trigger_class(ctx.params)


def _departures(ctx: CouplingContext, t: float, n: int) -> np.ndarray:
    params = ctx.own["params"]
    start = t + float(ctx.params.get("notice_s", 0.0))
    if params.departure_window_s > 0:
        return start + ctx.rng.uniform(0.0, params.departure_window_s, n)
    return np.full(n, start)


def _add_wave(ctx: CouplingContext, t: float, groups, reason: str, cells_ll: np.ndarray) -> None:
    """Add the groups (lon, lat, people) as one wave and emit ``evacuation_ordered``."""
    model = ctx.own["model"]
    depart = _departures(ctx, t, len(groups))
    new = model.add_groups(groups, depart)
    wave = len(ctx.own["waves"])
    ctx.own["wave_of"] = np.concatenate([ctx.own["wave_of"], np.full(len(new), wave, np.int64)])
    people = float(groups["people"].sum())
    lon, lat = (float(v) for v in cells_ll.mean(axis=0))
    rec = {"t_s": float(t), "reason": reason, "people": people, "groups": len(new), "n_cells": len(cells_ll),
           "lon": lon, "lat": lat, "depart_from_s": float(depart.min()) if len(depart) else float(t)}
    ctx.own["waves"].append(rec)
    ctx.emit("evacuation_ordered", f"{people:,.0f} people ordered to leave ({reason})", severity="warning",
             data=rec | {"cells": [[float(a), float(b)] for a, b in cells_ll[:MAX_POINTS]]})


def _flood_wave(ctx: CouplingContext, t: float) -> None:
    from agents.population import evacuee_groups

    o = ctx.own
    now = trigger_cells(ctx) & o["area"] & ~o["triggered"]
    o["triggered"] |= now
    people = o["people"]
    new = now & (people.values > 0)
    if not new.any():
        return
    groups = evacuee_groups(people, people.copy(data=new), o["model"].router, group_size=o["group_size"])
    if len(groups) == 0:
        return
    iy, ix = np.nonzero(new)
    cells = _cells_lonlat(ctx, iy, ix)
    _add_wave(ctx, t, groups[["lon", "lat", "people"]], "flood", cells)


def _cells_lonlat(ctx: CouplingContext, iy: np.ndarray, ix: np.ndarray) -> np.ndarray:
    from gis.crs import WGS84, transformer

    st = ctx.state.static
    lon, lat = transformer(st.attrs.get("crs", "EPSG:4547"), WGS84).transform(
        st["x"].values[ix], st["y"].values[iy])
    return np.column_stack([lon, lat])


def split_people(people: float, size: float) -> np.ndarray:
    """``people`` in groups of ``size`` (the last smaller): sums to ``people`` exactly."""
    full, rest = divmod(float(people), float(size))
    sizes = [float(size)] * int(full)
    if rest > 1e-9:
        sizes.append(people - size * int(full))
    return np.asarray(sizes)


def _event_waves(ctx: CouplingContext, t: float) -> None:
    """A wave for each ``people_to_move`` event since the last step."""
    o = ctx.own
    events = ctx.state.events
    new = [events[i] for i in range(o["cursor"], len(events))]
    o["cursor"] = len(events)
    for e in new:
        if e.kind != "people_to_move":
            continue
        d = e.data
        people = float(d.get("people", 0.0))
        if not (math.isfinite(people) and people > 0):
            continue
        sizes = split_people(people, o["group_size"])
        groups = _origins([d["lon"]] * len(sizes), [d["lat"]] * len(sizes), sizes)
        _add_wave(ctx, t, groups, str(d.get("reason") or e.source or "people_to_move"),
                  np.array([[float(d["lon"]), float(d["lat"])]]))


def _forward_events(ctx: CouplingContext) -> None:
    """The model's own events of the step: stranding as one ``people_stranded``; ``shelter_full`` as is."""
    from twin.events import EventLog

    model = ctx.own["model"]
    stranded = [e for e in model.events if e.kind == "person_stranded"]
    for e in model.events:
        if e.kind == "shelter_full":
            ctx.emit("shelter_full", e.message, severity="advisory", data=dict(e.data))
    model.events = EventLog()
    if not stranded:
        return
    people = sum(float(e.data["people"]) for e in stranded)
    reasons: dict[str, float] = {}
    for e in stranded:
        reasons[e.data["reason"]] = reasons.get(e.data["reason"], 0.0) + float(e.data["people"])
    pts = np.array([[e.data["lon"], e.data["lat"]] for e in stranded], float)
    ctx.emit("people_stranded", f"{people:,.0f} evacuees stranded", severity="warning",
             data={"people": people, "groups": len(stranded), "reasons": reasons,
                   "lon": float(np.nanmean(pts[:, 0])), "lat": float(np.nanmean(pts[:, 1])),
                   "points": pts[:MAX_POINTS].tolist()})


def counts_now(model) -> dict[str, float]:
    """People ordered out so far and in each state now."""
    g = model.groups
    out = {"ordered": float(model.size.sum())}
    for code, name in enumerate(("waiting", "moving", "arrived", "stranded")):
        out[name] = float(g.size[g.state == code].sum())
    return out


def step_evacuation(ctx: CouplingContext, t: float, dt: float) -> None:
    """Move the evacuees to ``t``, read the streets at ``t``, order the new waves of ``t``."""
    o = ctx.own
    model = o["model"]
    _read_state(ctx)
    model.advance(t)
    if ctx.params.get("flood_trigger", True):
        _flood_wave(ctx, t)
    _event_waves(ctx, t)
    _forward_events(ctx)
    c = counts_now(model)
    o["series"].append([float(t), c["ordered"], c["waiting"], c["moving"], c["arrived"], c["stranded"]])
    every = _number(ctx.params, "progress_every_s", 600.0, strict=True)
    if t - o["last_progress_s"] >= every - 1e-9 or (ctx.duration_s and t >= ctx.duration_s - 1e-9):
        o["last_progress_s"] = float(t)
        ctx.emit("evacuation_progress", f"{c['arrived']:,.0f} of {c['ordered']:,.0f} ordered at a shelter",
                 data=c)


# ----------------------------------------------------------------------------- finish, outputs
def _share_time(series: np.ndarray, share: float) -> float | None:
    """First step time at which ``share`` of the people ordered by the end are at a shelter."""
    if len(series) == 0 or series[-1, 1] <= 0:
        return None
    hit = np.flatnonzero(series[:, 4] >= share * series[-1, 1] - 1e-6)
    return float(series[hit[0], 0]) if len(hit) else None


def finish_evacuation(ctx: CouplingContext) -> None:
    o = ctx.own
    model = o["model"]
    res = model.result()
    o["dataset"] = res.dataset
    series = np.asarray(o["series"], float).reshape(-1, 6)
    c = counts_now(model)
    shelters = model.shelters
    arrivals = res.dataset["shelter_arrivals"].values
    ctx.summary.update(
        **{f"people_{k}": v for k, v in c.items()}, waves=len(o["waves"]), groups=len(model.size),
        cells_ordered=int(o["triggered"].sum()),
        time_to_50pct_s=_share_time(series, 0.5), time_to_95pct_s=_share_time(series, 0.95),
        time_to_100pct_s=_share_time(series, 1.0),
        edges_closed_to_walkers=int(np.isfinite(model.first_closed).sum()),
        shelter_use=[{"name": str(n), "capacity": float(cap), "arrivals": float(a)}
                     for n, cap, a in zip(shelters["name"], shelters["capacity"], arrivals, strict=True)])


def layers_evacuation(ctx: CouplingContext, times_s) -> list:
    """Evacuees (``movers``: on the way, not yet left, stranded), streets by state (``road_status``),
    shelters (``facilities``): the layers of ``twin evacuate district`` on the model's frames."""
    from agents.district_run import district_layers

    ds = ctx.own.get("dataset")
    if ds is None or ds.sizes.get("group", 0) == 0:
        from viz.layers import build

        sh = ctx.own["model"].shelters
        return [build("facilities", sh["lon"].values, sh["lat"].values, [str(n) for n in sh["name"]],
                      kind="shelter", capacity=sh["capacity"].values, layer_id="shelters", label="Shelters")]
    graph = ctx.shared.get("road_graph")
    assumed = bool(graph is not None and graph.graph.graph.get("assumed"))
    return district_layers(ds, streets_assumed=assumed)


def tables_evacuation(ctx: CouplingContext) -> dict[str, Any]:
    """``shelters`` (capacity, places reserved, arrivals; points) and ``groups`` (origin point, wave,
    ordered, departure and arrival/stranding times, shelter, final state)."""
    import geopandas as gpd

    o = ctx.own
    model = o["model"]
    ds = o.get("dataset")
    sh = model.shelters
    arrivals = ds["shelter_arrivals"].values if ds is not None else np.zeros(len(sh))
    shelters = gpd.GeoDataFrame(
        {"name": sh["name"].values, "capacity": sh["capacity"].values, "reserved": model.plan.reserved.copy(),
         "arrivals": arrivals},
        geometry=gpd.points_from_xy(sh["lon"].values, sh["lat"].values), crs="EPSG:4326")
    waves = o["waves"]
    wave = o["wave_of"]
    g = model.groups
    names = np.asarray(sh["name"].values, dtype=object)
    states = np.array(["waiting", "moving", "arrived", "stranded"], dtype=object)
    groups = gpd.GeoDataFrame(
        {"wave": wave, "reason": [waves[w]["reason"] for w in wave] if len(wave) else [],
         "ordered_s": [waves[w]["t_s"] for w in wave] if len(wave) else [],
         "people": g.size.copy(), "depart_s": g.depart_s.copy(), "done_s": g.done_s.copy(),
         "state": states[g.state] if len(wave) else [],
         "shelter": np.where(model.shelter_of >= 0, names[np.maximum(model.shelter_of, 0)], None)
         if len(wave) else [],
         "strand_reason": np.asarray(model.strand_reason, dtype=str)},
        geometry=gpd.points_from_xy(model.origin_ll[:, 0], model.origin_ll[:, 1]), crs="EPSG:4326")
    return {"shelters": shelters, "groups": groups}


def report_evacuation(ctx: CouplingContext) -> list[str]:
    """Key figures (ordered, arrived, stranded, clearance 50/95/100 %), the curve, shelter use, waves."""
    import html

    from agents.district_run import curve_figure
    from viz.report import figure_html

    s, o = ctx.summary, ctx.own

    def minutes(v) -> str:
        return "never" if v is None else f"{v / 60:.1f} min"

    def table(head, rows) -> str:
        th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
        return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"

    key = [("people ordered to leave", f"{s['people_ordered']:,.0f} in {s['waves']} waves, {s['groups']} groups"),
           ("at a shelter", f"{s['people_arrived']:,.0f}"), ("stranded", f"{s['people_stranded']:,.0f}"),
           ("still waiting / on the way at the end", f"{s['people_waiting']:,.0f} / {s['people_moving']:,.0f}"),
           ("50 % / 95 % / 100 % of the ordered at a shelter (since the run's start)",
            " / ".join(minutes(s[k]) for k in ("time_to_50pct_s", "time_to_95pct_s", "time_to_100pct_s"))),
           ("street edges closed to walkers", f"{s['edges_closed_to_walkers']} of {s['walk_edges']}")]
    out = ["<section><h2>Evacuation</h2>" + table(["", ""], key) + "</section>"]
    ds = o.get("dataset")
    if ds is not None and ds.sizes.get("group", 0):
        fig = curve_figure(ds)
        fig.axes[0].set_xlabel("time since the run's start (min)")
        out.append("<section><h2>Evacuation curve</h2>" + figure_html(fig, "evacuation curve") + "</section>")
    out.append("<section><h2>Shelter use</h2>" + table(
        ["shelter", "capacity", "arrivals"],
        [(x["name"], f"{x['capacity']:,.0f}", f"{x['arrivals']:,.0f}") for x in s["shelter_use"]])
        + "<p>Shelters: " + html.escape(o["shelters_path"])
        + (" (ASSUMED demo shelters, not the official list)" if "demo" in o["shelters_path"] else "")
        + ".</p></section>")
    out.append("<section><h2>Evacuation orders</h2>" + (table(
        ["ordered at", "why", "people", "groups", "cells"],
        [(minutes(w["t_s"]), w["reason"], f"{w['people']:,.0f}", w["groups"], w["n_cells"]) for w in o["waves"]])
        if o["waves"] else "<p>nobody was ordered out</p>")
        + "<p>Residents: 2020 census district totals spread uniformly over land cells (an assumption).</p>"
        "</section>")
    return out


# ----------------------------------------------------------------------------- checkpoints
def save_evacuation(ctx: CouplingContext) -> dict:
    """The model's whole state (:meth:`DistrictEvacuation.checkpoint`) and the coupling's own."""
    o = ctx.own
    out = {f"model/{k}": v for k, v in o["model"].checkpoint().items()}
    out.update(triggered=o["triggered"].copy(), wave_of=o["wave_of"].copy(), cursor=int(o["cursor"]),
               waves=o["waves"], series=o["series"], last_progress_s=float(o["last_progress_s"]))
    return out


def restore_evacuation(ctx: CouplingContext, saved: dict) -> None:
    """Put a :func:`save_evacuation` state back into the model set up afresh."""
    o = ctx.own
    o["model"].restore({k.removeprefix("model/"): v for k, v in saved.items() if k.startswith("model/")})
    o["triggered"] = np.asarray(saved["triggered"], bool).copy()
    o["wave_of"] = np.asarray(saved["wave_of"], np.int64).copy()
    o["cursor"] = int(saved["cursor"])
    o["waves"] = [dict(w) for w in saved["waves"]]
    o["series"] = [list(r) for r in saved["series"]]
    o["last_progress_s"] = float(saved["last_progress_s"])


register_coupling(Coupling(
    name="evacuation", phase="response", period_s=60.0,
    reads=("water_depth", "water_speed", "road_graph", "event:people_to_move"),
    writes=("event:evacuation_ordered", "event:evacuation_progress", "event:people_stranded",
            "event:shelter_full"),
    setup=setup_evacuation, step=step_evacuation, finish=finish_evacuation,
    save=save_evacuation, restore=restore_evacuation, kinds=("evacuate_district",),
    from_scenario=from_scenario, layers=layers_evacuation, tables=tables_evacuation, report=report_evacuation,
    doc="district evacuation (agents.district_evac) on the run's clock: flood and debris waves to shelters"))
