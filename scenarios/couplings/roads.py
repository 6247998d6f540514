"""The roads coupling: flood depth and speed in the state -> road closures and slow-downs.

Setup: the city's road graph (:func:`agents.city_roads.city_road_graph`) of
the run's districts, clipped to the run's grid (largest strongly connected
part), shared as ``road_graph``; points along every edge every half cell
(:func:`agents.road_hazard.edge_sample_points`).

Every ``period_s`` (default 300 s): each edge's depth and depth × speed are
the maxima over its points of the state's ``water_depth`` and
``water_speed`` (NaN, sea and points off the grid read dry); the edge's
state follows :func:`agents.road_hazard.classify` (Pregnolato et al. 2017,
closed from 0.3 m; depth × speed > 0.6 m²/s) and is put on the graph with
:func:`agents.road_hazard.apply_hazard` (reason ``"flood"``). Events:
``road_closed`` (warning) and ``road_reopened`` (info), one per step with
changes, ``data = {"n": count, "edges": [edge ids]}``. Shared
``road_state``: ``{"t_s", "closed", "factor"}``, arrays in the graph's
``edge_ids`` order.

Parameters: ``closed_m`` (0.3), ``dv_limit`` (0.6 m²/s; null: depth only),
``spacing_m`` (half a cell), ``roads`` (a road file instead of the city's),
``lattice`` (True: the ASSUMED lattice walk network of the grid's land cells,
:func:`gis.lattice_roads.lattice_road_graph`, where no street data covers the
area) with ``lattice_spacing_m`` (200 m) and ``circuity`` (1.3). A scenario
sets them with its ``[roads]`` table (:func:`scenarios.translate.road_params`).
When the city's layer has no road in the run's area and neither a file nor
the lattice is asked for, setup refuses, naming those scenario keys. The
summary's ``network`` and the report say which network ran (``"ASSUMED
lattice ..."`` for the lattice).

Outputs of a run: the map layer ``road_status`` of the edges slowed or closed
by the flood on the run's frame times (:func:`roads_layers`), the tables
``road_closures`` (one row per edge ever slowed or closed: first times, steps
closed, geometry) and ``road_counts`` (edges closed and slowed at each step)
(:func:`roads_tables`), and a report section (:func:`roads_report`). The
coupling has no model section of its own in a scenario (``kinds`` is empty):
the translation adds it as the provider of ``road_graph``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from scenarios.coupling import Coupling, CouplingContext, register_coupling
from twin.errors import ValidationError

PARAMS = ("closed_m", "dv_limit", "spacing_m", "roads", "lattice", "lattice_spacing_m", "circuity")
#: What to write in a scenario when the run's area has no road (said by the refusal).
ROAD_KEYS_HELP = ('in the scenario file set [roads] file = "<road file>" (GeoJSON edges, OSM XML or '
                  "Overpass JSON covering the area), or [roads] lattice = true (an ASSUMED lattice walk "
                  "network over the run's land cells)")


def grid_outline_wgs84(domain):
    """The run grid's bounding box as a WGS 84 polygon."""
    from shapely.geometry import box

    from gis.crs import WGS84, transformer

    x, y = domain.x, domain.y
    half = domain.resolution_m / 2
    xs = np.array([x.min() - half, x.max() + half, x.max() + half, x.min() - half])
    ys = np.array([y.min() - half, y.min() - half, y.max() + half, y.max() + half])
    lon, lat = transformer(domain.crs, WGS84).transform(xs, ys)
    return box(lon.min(), lat.min(), lon.max(), lat.max())


def sample_cells(xy: np.ndarray, transform, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray,
                                                                              np.ndarray]:
    """(row, col, inside) of points ``xy`` (P, 2) on a north-up grid; row/col clipped to the grid."""
    a, _, c, _, e, f = tuple(transform)[:6]
    col = np.floor((xy[:, 0] - c) / a).astype(np.int64)
    row = np.floor((xy[:, 1] - f) / e).astype(np.int64)
    inside = (row >= 0) & (row < shape[0]) & (col >= 0) & (col < shape[1])
    return np.clip(row, 0, shape[0] - 1), np.clip(col, 0, shape[1] - 1), inside


def edge_maxima(values: np.ndarray, row: np.ndarray, col: np.ndarray, dry: np.ndarray,
                starts: np.ndarray) -> np.ndarray:
    """Per edge, the maximum of a cell field over its points (dry points, NaN and negatives -> 0)."""
    v = values[row, col].astype(float)
    v = np.where(dry | ~np.isfinite(v), 0.0, np.maximum(v, 0.0))
    return np.maximum.reduceat(v, starts)


def road_network(ctx: CouplingContext):
    """(graph, description) of the run: the lattice, the user's file or the city's layer, on the grid."""
    from agents.city_roads import city_road_graph
    from gis.roads import load_road_graph
    from twin.errors import GraphError

    p, dom = ctx.params, ctx.domain
    if p.get("roads") and p.get("lattice"):
        raise ValidationError("couplings.roads: give roads (a road file) or lattice = true, not both")
    if p.get("lattice"):
        return lattice_network(ctx)
    if p.get("roads"):
        graph = load_road_graph(p["roads"])
        ctx.add_input("roads", p["roads"])
        what = f"road file {p['roads']}"
    else:
        try:
            graph = city_road_graph(ctx.city, districts=list(dom.selection) if dom.selection else None)
        except GraphError as exc:  # the API's advice (path=, clip=False) is not a scenario's: re-worded
            where = f"districts {', '.join(dom.selection)}" if dom.selection else "the city"
            raise ValidationError(f"roads: no road of the city's road layer "
                                  f"({Path(ctx.city.files('drive_roads')[0]).name}) lies inside {where}, and "
                                  f"the run reads a road graph; {ROAD_KEYS_HELP}") from exc
        ctx.add_input("drive_roads", ctx.city.files("drive_roads")[0])
        what = "the city's road layer"
    clipped = graph.within(grid_outline_wgs84(dom))
    # a district's graph lies inside its grid (buffer >= the graph's margin): keep it as built
    graph = graph if clipped.n_edges == graph.n_edges else clipped.largest_scc()
    return graph, what


def lattice_network(ctx: CouplingContext):
    """The ASSUMED lattice walk network of the grid's land cells, and its description."""
    from gis.lattice_roads import DEFAULT_CIRCUITY, DEFAULT_SPACING_M, lattice_road_graph

    p, dom = ctx.params, ctx.domain
    spacing = p.get("lattice_spacing_m")
    circuity = p.get("circuity")
    graph = lattice_road_graph(dom.land, dom.transform, dom.crs,
                               spacing_m=DEFAULT_SPACING_M if spacing is None else spacing,
                               circuity=DEFAULT_CIRCUITY if circuity is None else circuity)
    return graph, graph.graph.graph["assumed"]


def setup_roads(ctx: CouplingContext) -> None:
    from agents.road_hazard import edge_sample_points

    bad = sorted(k for k in ctx.params if k not in PARAMS)
    if bad:
        raise ValidationError(f"couplings.roads: unknown parameter(s) {bad}; allowed: {list(PARAMS)}")
    dom = ctx.domain
    graph, network = road_network(ctx)
    spacing = float(ctx.params.get("spacing_m") or 0.5 * dom.resolution_m)
    xy, edge = edge_sample_points(graph, spacing)
    row, col, inside = sample_cells(xy, dom.transform, dom.shape)
    dry = ~inside | np.asarray(dom.sea, bool)[row, col]
    ids = list(graph.edge_ids)
    ctx.own.update(row=row, col=col, dry=dry, starts=np.searchsorted(edge, np.arange(len(ids))),
                   free=np.array([graph.edge(e)["speed_mps"] for e in ids]), ids=ids,
                   closed_series=[], last=(np.zeros(len(ids), np.int8), np.ones(len(ids))),
                   history=[])
    ctx.shared["road_graph"] = graph
    ctx.shared["road_state"] = {"t_s": 0.0, "closed": np.zeros(len(ids), bool),
                                "factor": np.ones(len(ids))}
    ctx.summary.update(edges=len(ids), nodes=graph.n_nodes, network=network,
                       assumed=bool(ctx.params.get("lattice")))
    if ctx.state.has_field("water_depth"):
        step_roads(ctx, ctx.state.clock.now_s, 0.0)


def step_roads(ctx: CouplingContext, t: float, dt: float) -> None:
    """Close and slow the graph's edges from the state's depth and speed at ``t``."""
    from agents.road_hazard import (
        PREGNOLATO_CLOSED_M,
        VEHICLE_DV_LIMIT,
        RoadHazard,
        apply_hazard,
        classify,
    )

    o, st = ctx.own, ctx.state
    depth = edge_maxima(st.field("water_depth").values, o["row"], o["col"], o["dry"], o["starts"])
    if st.has_field("water_speed"):
        dv = edge_maxima(st.field("water_depth").values * st.field("water_speed").values,
                         o["row"], o["col"], o["dry"], o["starts"])
    else:
        dv = np.zeros_like(depth)
    closed_m = float(ctx.params.get("closed_m", PREGNOLATO_CLOSED_M))
    dv_limit = ctx.params.get("dv_limit", VEHICLE_DV_LIMIT)
    f, state = classify(depth, dv, o["free"], closed_m=closed_m, dv_limit=dv_limit)
    hz = RoadHazard(times_s=np.array([t]), edge_ids=o["ids"], depth_m=depth[None], dv_m2s=dv[None],
                    speed_factor=f[None], state=state[None])
    graph = ctx.shared["road_graph"]
    changes = apply_hazard(graph, hz, 0)
    if changes["closed"]:
        ctx.emit("road_closed", f"{len(changes['closed'])} road edges closed by the flood",
                 severity="warning", data={"n": len(changes["closed"]),
                                           "edges": [str(e) for e in changes["closed"]]})
    if changes["reopened"]:
        ctx.emit("road_reopened", f"{len(changes['reopened'])} road edges reopened",
                 data={"n": len(changes["reopened"]), "edges": [str(e) for e in changes["reopened"]]})
    closed = state == 2
    ctx.shared["road_state"] = {"t_s": float(t), "closed": closed, "factor": hz.time_factor[0]}
    o["closed_series"].append([float(t), int(closed.sum()), int((state == 1).sum())])
    if not np.array_equal(state, o["last"][0]):
        o["history"].append((float(t), np.asarray(state, np.int8).copy()))
    o["last"] = (state, f)


def finish_roads(ctx: CouplingContext) -> None:
    series = ctx.own["closed_series"]
    ctx.summary.update(closed_max=max((c for _, c, _ in series), default=0),
                       closed_end=series[-1][1] if series else 0,
                       closed_slowed_by_step=series)


def save_roads(ctx: CouplingContext) -> dict:
    """The edges' last flood state and speed factor, and the series of counts."""
    state, f = ctx.own["last"]
    hist = ctx.own["history"]
    n = len(ctx.own["ids"])
    return {"state": state.copy(), "factor": f.copy(), "closed_series": ctx.own["closed_series"],
            "t_s": ctx.shared["road_state"]["t_s"],
            "history_t": np.array([t for t, _ in hist], float),
            "history_state": np.stack([s for _, s in hist]) if hist else np.zeros((0, n), np.int8)}


def restore_roads(ctx: CouplingContext, saved: dict) -> None:
    """Put the saved closures and slow-downs back on the freshly built graph (no events)."""
    from agents.road_hazard import RoadHazard, apply_hazard

    o = ctx.own
    state = np.asarray(saved["state"], np.int8)
    f = np.asarray(saved["factor"], float)
    zeros = np.zeros((1, len(o["ids"])))
    hz = RoadHazard(times_s=np.array([saved["t_s"]]), edge_ids=o["ids"], depth_m=zeros, dv_m2s=zeros,
                    speed_factor=f[None], state=state[None])
    apply_hazard(ctx.shared["road_graph"], hz, 0)
    ctx.shared["road_state"] = {"t_s": float(saved["t_s"]), "closed": state == 2,
                                "factor": hz.time_factor[0]}
    o["closed_series"] = [list(r) for r in saved["closed_series"]]
    o["last"] = (state, f)
    o["history"] = [(float(t), np.asarray(s, np.int8)) for t, s in
                    zip(saved.get("history_t", []), saved.get("history_state", []), strict=True)]


# ----------------------------------------------------------------------------- outputs
def states_at(history: list, times_s, n: int) -> np.ndarray:
    """Each edge's flood state (0 open, 1 slowed, 2 closed) at each time: the last change at or before it."""
    t_hist = np.array([t for t, _ in history], float)
    out = np.zeros((len(times_s), n), np.int8)
    for i, t in enumerate(times_s):
        k = int(np.searchsorted(t_hist, float(t) + 1e-9, side="right")) - 1
        if k >= 0:
            out[i] = history[k][1]
    return out


def _touched(ctx: CouplingContext) -> np.ndarray:
    """Indices of the edges slowed or closed at some step."""
    hist = ctx.own["history"]
    if not hist:
        return np.zeros(0, int)
    return np.flatnonzero(np.stack([s for _, s in hist]).max(axis=0) > 0)


def roads_layers(ctx: CouplingContext, times_s) -> list:
    """The ``road_status`` layer (slowed and closed by the flood) of the edges ever affected, framed.

    On the ASSUMED lattice the layer says so and starts hidden: its thousands of short
    straight edges would cover the flood they stand for (tick it in the layer panel).
    """
    from viz.layers import build

    idx = _touched(ctx)
    if not len(idx):
        return []
    graph, ids = ctx.shared["road_graph"], ctx.own["ids"]
    state = states_at(ctx.own["history"], times_s, len(ids))[:, idx]
    lines = [graph.edge(ids[i])["geometry"] for i in idx]
    names = [str(graph.edge(ids[i]).get("name") or f"road {ids[i]}") for i in idx]
    assumed = bool(ctx.summary.get("assumed"))
    label = ("ASSUMED lattice streets slowed or closed by the flood" if assumed
             else "Roads slowed or closed by the flood")
    return [build("road_status", lines, state, times_s=list(times_s), names=names,
                  layer_id="roads_flood", label=label, visible=not assumed)]


def roads_tables(ctx: CouplingContext) -> dict:
    """``road_closures`` (GeoDataFrame, one row per edge ever affected) and ``road_counts`` (per step)."""
    import geopandas as gpd
    import pandas as pd

    graph, ids, hist = ctx.shared["road_graph"], ctx.own["ids"], ctx.own["history"]
    idx = _touched(ctx)
    rows = []
    for i in idx:
        d = graph.edge(ids[i])
        seq = [(t, int(s[i])) for t, s in hist]
        first = {k: next((t for t, v in seq if v >= k), None) for k in (1, 2)}
        steps = [st[i] for st in _step_states(ctx)]
        rows.append({"id": str(ids[i]), "name": d.get("name"), "road_class": d.get("road_class"),
                     "length_m": float(d["length_m"]), "first_slowed_s": first[1], "first_closed_s": first[2],
                     "max_state": int(max(v for _, v in seq)), "steps_closed": int(sum(v == 2 for v in steps)),
                     "geometry": d["geometry"]})
    cols = ["id", "name", "road_class", "length_m", "first_slowed_s", "first_closed_s", "max_state",
            "steps_closed", "geometry"]
    closures = gpd.GeoDataFrame(pd.DataFrame(rows, columns=cols), geometry="geometry", crs="EPSG:4326")
    counts = pd.DataFrame(ctx.own["closed_series"], columns=["t_s", "closed", "slowed"])
    return {"road_closures": closures, "road_counts": counts}


def _step_states(ctx: CouplingContext) -> list[np.ndarray]:
    """The state at every step of the series (from the change history)."""
    times = [t for t, _, _ in ctx.own["closed_series"]]
    return list(states_at(ctx.own["history"], times, len(ctx.own["ids"])))


def roads_report(ctx: CouplingContext) -> list[str]:
    """One section: edges of the graph, closed at most and at the end, slowed, the series."""
    import html

    s, series = ctx.summary, ctx.own["closed_series"]
    peak = max(series, key=lambda r: r[1], default=None)
    rows = [("road network", str(s.get("network", ""))),
            ("road edges on the run's grid", f"{s.get('edges', 0):,}"),
            ("closed at most (step)", f"{s.get('closed_max', 0):,}" + (f" at {peak[0] / 60:g} min" if peak
                                                                       and peak[1] else "")),
            ("closed at the end", f"{s.get('closed_end', 0):,}"),
            ("slowed at the end", f"{series[-1][2]:,}" if series else "0"),
            ("edges ever slowed or closed", f"{len(_touched(ctx)):,}"),
            ("closed from depth", f"{ctx.params.get('closed_m', 0.3)} m (Pregnolato et al. 2017)")]
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return [f"<section><h2>Roads</h2><table><tbody>{body}</tbody></table></section>"]


register_coupling(Coupling(
    name="roads", phase="consequences", period_s=300.0,
    reads=("water_depth", "water_speed"),
    writes=("road_graph", "road_state", "event:road_closed", "event:road_reopened"),
    setup=setup_roads, step=step_roads, finish=finish_roads, save=save_roads, restore=restore_roads,
    layers=roads_layers, tables=roads_tables, report=roads_report,
    doc="flood depth and speed -> road edges closed and slowed (Pregnolato 2017; D*V > 0.6 m2/s)"))
