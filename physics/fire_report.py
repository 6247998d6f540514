"""Report sections of a fire run (the ``fire`` run kind's ``report_sections``).

:func:`report_sections` turns a run's Dataset (the ``fire.nc`` contract) and its summary
(:func:`physics.fire_io.summarise`) into the HTML ``<section>`` blocks of ``report.html``
(:func:`viz.report.write_run_report` wraps them in a page that loads nothing from the network):

* a headline in words and the key numbers;
* the event timeline (ignition, detectors, sprinklers, flashover, glazing, facade spread,
  storeys untenable, burn-out);
* the ASET table: every storey untenable within the run, earliest first;
* the three figures (:mod:`physics.fire_plots`), embedded as PNG data URLs;
* the building's sources and assumptions (from the building file when the run context
  carries it, else the Dataset's ``source_note``) and the model's limits.
"""

from __future__ import annotations

import html
import math
from typing import Any

#: Events listed in the timeline (the rest are counted).
MAX_EVENT_ROWS = 300


def _s(v: Any) -> str:
    """Seconds as ``"123 s (2.1 min)"``; ``"–"`` for None/NaN."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    return f"{float(v):.0f} s ({float(v) / 60.0:.1f} min)"


def _num(v: Any, fmt: str = ".0f", unit: str = "") -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    return f"{v:{fmt}}{(' ' + unit) if unit else ''}"


def headline(summary: dict) -> str:
    """The run in two sentences (plain text)."""
    o = summary.get("origin", {})
    when = []
    for key, what in (("first_detector_s", "first detector"), ("first_sprinkler_s", "first sprinkler"),
                      ("flashover_s", "flashover")):
        v = summary.get(key)
        when.append(f"{what} at {v:.0f} s" if v is not None else f"no {what}")
    n = summary.get("storeys_untenable", 0)
    first = summary.get("aset_first_storeys") or []
    lead = (f"; the first, {first[0]['floor_label']}, at {first[0]['aset_s']:.0f} s" if first else "")
    spread = [s for s in summary.get("storeys_burning", []) if s != o.get("storey")]
    spread_text = (f" Flames spread up the facade to {', '.join(f'L{s + 1}' for s in spread)}." if spread
                   else "")
    return (f"A {summary.get('growth')} fire in {o.get('compartment')} on {o.get('floor_label')} (storey "
            f"{o.get('storey')}) of {summary.get('building')}, sprinklers {summary.get('sprinklers')}, "
            f"{summary.get('season')} outside air: {', '.join(when)}. {n} storey(s) became untenable on their "
            f"escape route within {summary.get('duration_s', 0) / 60.0:.0f} min{lead}.{spread_text}")


def _table(head: list[str], rows: list[list[str]]) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def key_numbers(summary: dict) -> list[tuple[str, str]]:
    """(name, value) rows of the headline table."""
    by_min = summary.get("storeys_untenable_by_min", {})
    rows = [("origin", f"{summary['origin'].get('compartment')} ({summary['origin'].get('floor_label')})"),
            ("first detector", _s(summary.get("first_detector_s"))),
            ("first sprinkler", _s(summary.get("first_sprinkler_s"))),
            ("flashover", _s(summary.get("flashover_s"))),
            ("first glazing broken", _s(summary.get("first_glazing_broken_s"))),
            ("first storey untenable", _s(summary.get("first_untenable_s")))]
    rows += [(f"storeys untenable by {m} min", str(v)) for m, v in by_min.items() if v is not None]
    rows += [("peak heat release", _num((summary.get("peak_heat_release_kw") or 0.0) / 1000.0, ".2f", "MW")),
             ("hottest upper layer", _num(summary.get("max_upper_temperature_c"), ".0f", "°C")),
             ("hottest stair upper layer", _num(summary.get("max_stair_temperature_c"), ".0f", "°C")),
             ("outside air", _num(summary.get("t_outside_c"), ".1f", "°C")),
             ("simulated", _s(summary.get("duration_s"))),
             ("wall time of the simulation", _num(summary.get("run_time_s"), ".1f", "s")
              + (f" ({summary['faster_than_real_time']:.0f}× real time)" if summary.get("faster_than_real_time")
                 else ""))]
    return rows


def events_section(ds) -> str:
    """The event timeline as a table (time, storey, event, compartment, device, detail)."""
    from physics.fire_io import events_of, storey_label

    ev = events_of(ds)
    rows = [[f"{float(e['time_s']):.0f}", html.escape(storey_label(e.get("storey"))),
             html.escape(str(e["kind"]).replace("_", " ")), html.escape(str(e.get("compartment") or "–")),
             html.escape(str(e.get("device") or "–")), html.escape(str(e.get("detail") or ""))]
            for e in ev[:MAX_EVENT_ROWS]]
    more = (f"<p>{len(ev) - MAX_EVENT_ROWS} later events are in events.jsonl.</p>"
            if len(ev) > MAX_EVENT_ROWS else "")
    return ("<section><h2>Event timeline</h2>"
            + _table(["time (s)", "storey", "event", "compartment", "device", "detail"], rows) + more
            + "</section>")


def aset_section(ds) -> str:
    """Every storey untenable within the run, earliest first (ASET, refuge, peak temperature, visibility)."""
    import numpy as np

    from physics.fire_io import aset_table

    table = aset_table(ds)
    tmax = np.asarray(ds["floor_temperature_max"].values, float).max(axis=0) - 273.15
    vis = np.asarray(ds["floor_visibility_min"].values, float).min(axis=0)
    rows = [[html.escape(r["floor_label"]), str(r["storey"]), f"{r['aset_s']:.0f}", f"{r['aset_min']:.1f}",
             "yes" if r["refuge"] else "", f"{tmax[r['storey']]:.0f}", f"{vis[r['storey']]:.1f}"] for r in table]
    if not rows:
        return ("<section><h2>ASET per storey</h2><p>No storey became untenable on its escape route within "
                "the run.</p></section>")
    return ("<section><h2>ASET per storey</h2><p>Available safe egress time: when the storey's escape route "
            "(lobby, corridor, refuge) first fails ISO 13571 (asphyxiant or heat FED 0.3), the visibility "
            "limit or the radiant limit at head height; the file aset.csv gives it to "
            "<code>twin evacuate building --aset</code>. Storeys not listed stayed tenable.</p>"
            + _table(["storey", "storey index", "ASET (s)", "ASET (min)", "refuge", "max upper T (°C)",
                      "min visibility (m)"], rows) + "</section>")


def figures_section(ds) -> str:
    from physics.fire_plots import hrr_figure, layers_figure, tenability_figure
    from viz.report import figure_html

    return ("<section><h2>Figures</h2>"
            + figure_html(tenability_figure(ds), "tenability per storey over time",
                          "Escape-route status per storey: clear, smoke (visibility under 30 m or upper layer over "
                          "60 °C on the route), untenable; circles mark each storey's ASET.")
            + figure_html(layers_figure(ds), "smoke layers around the origin",
                          "Upper-layer temperature and smoke-layer height on the origin storey ± 2 and in a stair.")
            + figure_html(hrr_figure(ds), "heat release rate") + "</section>")


def building_section(ds, ctx: Any = None) -> str:
    """The building's sources and assumptions (its file's), else the Dataset's ``source_note``."""
    spec = (getattr(ctx, "extras", None) or {}).get("spec")
    parts = []
    if spec is not None:
        if spec.fire.sources:
            parts.append("<h3>Sources</h3><ul>" + "".join(f"<li>{html.escape(s)}</li>" for s in spec.fire.sources)
                         + "</ul>")
        if spec.fire.assumptions:
            parts.append("<h3>Assumptions</h3><ul>"
                         + "".join(f"<li>{html.escape(s)}</li>" for s in spec.fire.assumptions) + "</ul>")
    if spec is not None and spec.location is not None and spec.location.label:
        parts.insert(0, f"<p>{html.escape(spec.name)}: {html.escape(spec.location.label)}.</p>")
    note = ds.attrs.get("source_note")
    if spec is None and note:  # without the file: the note the run carries (its location and assumptions)
        parts.insert(0, f"<p>{html.escape(str(note))}</p>")
    if not parts:
        parts.append("<p>The building file gives no sources or assumptions.</p>")
    return "<section><h2>The building</h2>" + "".join(parts) + "</section>"


def model_section() -> str:
    return ("<section><h2>Model</h2><p>" + html.escape(
        "Two-zone smoke model over the building's compartments and shafts (physics.fire_zone, CFAST's "
        "conservation equations; vent flows by the orifice equation with each side's hydrostatics, so the "
        "stack effect follows from the outside temperature); t² design fire capped by fuel and ventilation, "
        "flashover at an upper-layer rise of 500 K, sprinkler control after activation (Alpert's ceiling jet "
        "and the RTI link equation); window flames by EN 1991-1-2 Annex B igniting the storey above; "
        "tenability by ISO 13571 FED, visibility and radiant flux at head height on the escape route. "
        "No door-jet mixing in the stairs yet; doors are closed unless the building file or an "
        "evacuation holds them open.") + "</p></section>")


def report_sections(ds, summary: dict, ctx: Any = None) -> list[str]:
    """The HTML sections of a fire run's report (see the module docstring)."""
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in key_numbers(summary))
    head = ("<section><h2>Headline</h2><p>" + html.escape(headline(summary)) + "</p>"
            f"<table><tbody>{rows}</tbody></table></section>")
    return [head, events_section(ds), aset_section(ds), figures_section(ds), building_section(ds, ctx),
            model_section()]


__all__ = ["MAX_EVENT_ROWS", "aset_section", "building_section", "events_section", "figures_section", "headline",
           "key_numbers", "report_sections"]
