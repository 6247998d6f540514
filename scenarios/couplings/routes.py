"""The routes coupling: a route between two points recomputed on the road state of each step.

A small consumer of the road state (what dispatch and evacuation will do
at scale): a :class:`agents.routing.Router` on the shared ``road_graph``
(built at the first step) and the road nodes nearest ``origin`` and
``destination`` (``[lon, lat]``); every ``period_s`` (default 300 s), the router takes the
graph's closures and slow-downs (:meth:`~agents.routing.Router.sync`) and
the fastest route is recorded: time, cost (s, null when cut off), its edge
ids, and ``road_state_t_s``, the time of the road state it was computed on.
An event ``route_computed`` (``route_cut_off`` when no open route) carries
the same record without the edge list. ``ctx.summary["routes"]`` lists
every record (with the edges).

Outputs of a run: the table ``routes`` (one row per computation, edge list as
a count) and a report section with the route's time at each step. The
coupling has no model section in a scenario file (``kinds`` is empty): a
config names it.
"""

from __future__ import annotations

import math

from scenarios.coupling import Coupling, CouplingContext, register_coupling
from twin.errors import ValidationError

PARAMS = ("origin", "destination")


def _lonlat(value, name: str) -> tuple[float, float]:
    try:
        lon, lat = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValidationError(f"couplings.routes.{name}={value!r}: give [lon, lat] in degrees") from None
    if not (math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90):
        raise ValidationError(f"couplings.routes.{name}={value!r}: give [lon, lat] in degrees")
    return lon, lat


def setup_routes(ctx: CouplingContext) -> None:
    bad = sorted(k for k in ctx.params if k not in PARAMS)
    missing = [k for k in PARAMS if k not in ctx.params]
    if bad or missing:
        raise ValidationError(f"couplings.routes: unknown {bad}, missing {missing}; give exactly "
                              f"{list(PARAMS)} as [lon, lat]")
    ctx.own["points"] = (_lonlat(ctx.params["origin"], "origin"),
                         _lonlat(ctx.params["destination"], "destination"))
    ctx.summary["routes"] = []


def _router(ctx: CouplingContext):
    """The router on the shared road graph, built on first use (the graph's writer may set up later)."""
    from agents.routing import Router

    if "router" not in ctx.own:
        router = Router(ctx.shared["road_graph"])
        (o, d) = ctx.own["points"]
        ctx.own.update(router=router, orig=router.nearest_lonlat(*o), dest=router.nearest_lonlat(*d))
    return ctx.own["router"]


def step_routes(ctx: CouplingContext, t: float, dt: float) -> None:
    """Compute the route on the road graph as it is now and record it."""
    router = _router(ctx)
    router.sync()
    route = router.route(ctx.own["orig"], ctx.own["dest"])
    _, edges = router.route_ids(route)
    rec = {"t_s": float(t), "cost_s": route.cost if route.reachable else None,
           "n_edges": len(edges), "road_state_t_s": ctx.shared["road_state"]["t_s"]}
    ctx.summary["routes"].append(rec | {"edges": [str(e) for e in edges]})
    ctx.emit("route_computed" if route.reachable else "route_cut_off",
             f"route {'computed' if route.reachable else 'cut off'} at t={t:g} s", data=rec)


def save_routes(ctx: CouplingContext) -> dict:
    """Nothing beyond the summary (its records are checkpointed with it); the router is rebuilt."""
    return {}


def restore_routes(ctx: CouplingContext, saved: dict) -> None:
    """Nothing to put back: the router is built on the restored graph at the next step."""


def routes_tables(ctx: CouplingContext) -> dict:
    """``routes``: time, cost (s, NaN when cut off), edges, road state's time, reachable."""
    import pandas as pd

    rows = [{"t_s": r["t_s"], "cost_s": float("nan") if r["cost_s"] is None else float(r["cost_s"]),
             "n_edges": r["n_edges"], "road_state_t_s": r["road_state_t_s"],
             "reachable": r["cost_s"] is not None} for r in ctx.summary.get("routes", [])]
    return {"routes": pd.DataFrame(rows, columns=["t_s", "cost_s", "n_edges", "road_state_t_s",
                                                  "reachable"])}


def routes_report(ctx: CouplingContext) -> list[str]:
    """One section: origin, destination and the route's time at each step."""
    import html

    (o, d) = ctx.own["points"]
    rows = []
    for r in ctx.summary.get("routes", []):
        cost = "cut off" if r["cost_s"] is None else f"{r['cost_s'] / 60:.1f} min"
        rows.append(f"<tr><td>{r['t_s'] / 60:g} min</td><td>{cost}</td><td>{r['n_edges']}</td></tr>")
    rows = "".join(rows)
    return [f"<section><h2>Route</h2><p>From {html.escape(str(list(o)))} to {html.escape(str(list(d)))} "
            "(lon, lat), on the road state of each step.</p><table><thead><tr><th>time</th>"
            f"<th>travel time</th><th>edges</th></tr></thead><tbody>{rows}</tbody></table></section>"]


register_coupling(Coupling(
    name="routes", phase="response", period_s=300.0,
    reads=("road_graph", "road_state"), writes=("event:route_computed", "event:route_cut_off"),
    setup=setup_routes, step=step_routes, save=save_routes, restore=restore_routes,
    tables=routes_tables, report=routes_report,
    doc="fastest route between two points on the current road state (agents.routing.Router)"))
