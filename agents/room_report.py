"""The figures and report sections of a room evacuation (the analysed Dataset of :mod:`agents.room_analysis`).

Three plots (:func:`curve_figure`, :func:`flow_figure`, :func:`density_figure`, written as PNGs by
:func:`agents.room_run.write_room`) and the HTML sections of the run's report (:func:`report_sections`).

Imported (through :mod:`agents.room_run`) for ``twin --help``: matplotlib and numpy are imported inside
the functions.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from agents.room_analysis import (
    CONGESTED_P_M2,
    DENSITY_CELL_M,
    NEAR_EXIT_M,
    PEAK_WINDOW_S,
    closure_events,
    exits_table,
    run_events,
)

if TYPE_CHECKING:
    from twin.runkinds import RunContext

#: Density classes of the max-density map, P/m², and their colours (light to dark).
DENSITY_LEVELS = (0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 8.0)
DENSITY_COLOURS = ("#f7f7f7", "#fee391", "#fec44f", "#fe9929", "#ec7014", "#cc4c02", "#8c2d04")


# ----------------------------------------------------------------------------- figures
def _mark_closures(ax, ds, y: float, xycoords="data") -> None:
    """A dotted line and an "<exit> closed" label at ``y`` at each exit closure of the run."""
    for e in closure_events(ds):
        ax.axvline(e["time_s"], color="k", lw=0.8, ls=":")
        ax.annotate(f"{e['data']['exit']} closed", (e["time_s"], y), xycoords=xycoords, rotation=90, fontsize=8,
                    ha="right", va="center")


def curve_figure(ds):
    """People out and inside over time, the 95 % and evacuation times and exit closures marked."""
    import numpy as np

    from viz.plots import new_figure, style

    t_out = np.sort(ds["exit_time"].values[np.isfinite(ds["exit_time"].values)])
    n = int(ds.sizes["agent"])
    with style():
        fig = new_figure(7.0, 3.8)
        ax = fig.add_subplot()
        tt = np.concatenate([[0.0], t_out])
        ax.step(tt, np.arange(tt.size), where="post", color="#1f77b4", label="out")
        end = float(ds["time"].values[-1])
        ax.step(np.concatenate([tt, [end]]), n - np.concatenate([np.arange(tt.size), [t_out.size]]), where="post",
                color="#ff7f0e", lw=1, label="still inside")
        for key, lab, col in (("t95_s", "95 % out", "#9467bd"), ("evacuation_time_s", "everyone out", "#d62728")):
            v = float(ds.attrs[key])
            if math.isfinite(v):
                ax.axvline(v, color=col, ls="--", lw=1, label=f"{lab} {v:.0f} s")
        _mark_closures(ax, ds, n * 0.5)
        ax.set_xlabel("time after the alarm (s)")
        ax.set_ylabel("people")
        ax.set_title(f"Evacuation curve — {n} people")
        ax.legend(loc="center right")
    return fig


def flow_figure(ds, window_s: float = PEAK_WINDOW_S):
    """Flow through each exit over time: passages in the trailing ``window_s`` / ``window_s`` (P/s)."""
    import numpy as np

    from viz.plots import new_figure, style

    t_out, idx = ds["exit_time"].values, ds["exit_index"].values
    end = max(float(ds["time"].values[-1]), window_s)
    grid = np.arange(0.0, end + 1.0, 1.0)
    with style():
        fig = new_figure(7.0, 3.8)
        ax = fig.add_subplot()
        for j, eid in enumerate(ds["exit"].values):
            tj = np.sort(t_out[idx == j])
            if not tj.size:
                continue
            cnt = np.searchsorted(tj, grid, side="right") - np.searchsorted(tj, grid - window_s, side="right")
            ax.plot(grid, cnt / window_s, lw=1.2, label=f"{eid} ({tj.size})")
        _mark_closures(ax, ds, 0.5, xycoords=("data", "axes fraction"))
        ax.set_xlabel("time after the alarm (s)")
        ax.set_ylabel(f"flow (P/s, over {window_s:g} s)")
        ax.set_title("Flow through each exit")
        if ax.lines:
            ax.legend(loc="upper right", ncol=2, fontsize=8)
    return fig


def _draw_plan(ax, g) -> None:
    """Walls (grey) and exits (green open, red closed, labelled) of ``g``, in metres from its south-west corner."""
    xmin, ymin = g.bounds[:2]
    for s in g.wall_segments():
        ax.plot([s[0] - xmin, s[2] - xmin], [s[1] - ymin, s[3] - ymin], color="#333", lw=0.8)
    for j, s in enumerate(g.exit_segments):
        col = "#2ca02c" if g.exit_open[j] else "#d62728"
        ax.plot([s[0] - xmin, s[2] - xmin], [s[1] - ymin, s[3] - ymin], color=col, lw=3)
        ax.annotate(str(g.exit_ids[j]), ((s[0] + s[2]) / 2 - xmin, (s[1] + s[3]) / 2 - ymin), fontsize=8,
                    color=col, ha="center", va="center",
                    bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.7})


def density_figure(ds, g):
    """The largest local density of the run on the plan (metres), walls, exits (green open, red closed)."""
    import numpy as np
    from matplotlib.colors import BoundaryNorm, ListedColormap

    from viz.plots import new_figure, style

    xc, yc = ds["cell_xc"].values, ds["cell_yc"].values
    h = float(ds.attrs["density_cell_m"])
    xmin, ymin, xmax, ymax = g.bounds
    aspect = (ymax - ymin) / max(xmax - xmin, 1e-9)
    with style():
        height = float(np.clip(2.0 + 5.0 * aspect, 3.0, 9.0))
        fig = new_figure(float(np.clip(height / aspect + 3.2, 4.8, 7.0)), height)
        ax = fig.add_subplot()
        cmap = ListedColormap(list(DENSITY_COLOURS))
        mesh = ax.pcolormesh(np.append(xc - h / 2, xc[-1] + h / 2) - xmin, np.append(yc - h / 2, yc[-1] + h / 2)
                             - ymin, ds["max_density"].values, cmap=cmap,
                             norm=BoundaryNorm(list(DENSITY_LEVELS), cmap.N))
        fig.colorbar(mesh, ax=ax, label=f"largest density (P/m², {h:g} m cells)", fraction=0.06, shrink=0.7)
        _draw_plan(ax, g)
        ax.set_aspect("equal")
        ax.set_xlabel("m east")
        ax.set_ylabel("m north")
        ax.set_title(f"Largest local density — max {float(ds.attrs['max_density_p_m2']):.2f} P/m²")
    return fig


# ----------------------------------------------------------------------------- report
def _figure_html(fig, alt: str) -> str:
    """``fig`` as an inline PNG ``<figure>`` (the report loads nothing from elsewhere)."""
    from viz.report import figure_html

    return figure_html(fig, alt)


def _cell_html(v) -> str:
    """A table cell's text: floats to 2 decimals, NaN and inf as a dash."""
    import html

    if isinstance(v, float):
        return "–" if not math.isfinite(v) else f"{v:.2f}"
    return html.escape(str(v))


def _exits_section(ds) -> str:
    import html

    table = exits_table(ds)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    body = "".join("<tr>" + "".join(f"<td>{_cell_html(v)}</td>" for v in row) + "</tr>"
                   for row in table.itertuples(index=False))
    return f"<section><h2>Exits</h2><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></section>"


def _events_section(ds, limit: int = 200) -> str:
    import html

    ev = "".join(f"<tr><td>{e['time_s']:.1f}</td><td>{html.escape(str(e['severity']))}</td>"
                 f"<td>{html.escape(e['message'])}</td></tr>" for e in run_events(ds)[:limit])
    return ("<section><h2>Events</h2><table><thead><tr><th>time (s)</th><th>severity</th><th>event</th></tr>"
            f"</thead><tbody>{ev}</tbody></table></section>")


def _model_section(ds) -> str:
    import html

    return "<section><h2>Model and assumptions</h2><p>" + html.escape(
        f"Collision-free speed model (Tordeux, Chraibi & Seyfried 2016; agents.crowd), time step "
        f"{float(ds.attrs['dt_s']):g} s, routing down a floor field (geodesic distance to the open exits, "
        "recomputed when an exit closes). Free speeds Weidmann 1993 (N(1.34, 0.26) m/s) unless the "
        f"profile or file says otherwise. Local density: people per m² on {DENSITY_CELL_M:g} m cells, "
        f"largest over samples every {float(ds.attrs['record_every_s']):g} s; an exit is congested while "
        f"more than {CONGESTED_P_M2:g} P/m² stand within {NEAR_EXIT_M:g} m of it. Place: "
        f"{ds.attrs['place_name']}.") + "</p></section>"


def _key_figures(summary: dict) -> dict:
    """The summary without the request, files and per-exit entries; the densest cell's place as text."""
    key = {k: v for k, v in summary.items() if k not in ("request", "files", "exits") and v is not None}
    at = summary.get("max_local_density_at")
    if at:
        key["max_local_density_at"] = f"{at['lon']:.6f} E, {at['lat']:.6f} N"
    return key


def report_sections(ds, summary: dict, ctx: RunContext | None = None) -> list[str]:
    """Key figures, the three plots, the exits table, the events, the model and its assumptions."""
    # agents.room_run imports this module (it registers report_sections): import it back only when called
    from agents.room_run import end_geometry
    from viz.report import summary_section

    return [
        summary_section(_key_figures(summary)),
        "<section><h2>Evacuation over time</h2>" + _figure_html(curve_figure(ds), "evacuation curve")
        + _figure_html(flow_figure(ds), "flow through each exit") + "</section>",
        "<section><h2>Largest local density</h2>"
        + _figure_html(density_figure(ds, end_geometry(ds)), "max density map") + "</section>",
        _exits_section(ds),
        _events_section(ds),
        _model_section(ds),
    ]


__all__ = ["curve_figure", "density_figure", "flow_figure", "report_sections"]
