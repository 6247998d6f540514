"""Report sections of a slope-failure run (the run kind's ``report_sections``).

:func:`slope_report_sections` turns a run's dataset (the ``slope.nc``
contract: ``fs_min``, ``time_of_failure``, ``slope``, ``zone`` ...; optional
``probability_of_failure``, ``runout_*``, ``asset_*``) and its summary into
HTML sections for :func:`viz.report.write_run_report`: headline numbers,
the run, FS classes overall and by zone, the worst cells, two figures
(histogram of the minimum FS; FS against slope by zone) embedded as PNG data
URLs, probability statistics of a probabilistic run, and the runout with the
assets it hits.  Every number comes from the dataset; of the summary only
``worst_cells`` (a list of dicts lon, lat, fs_min, depth_m, time_s, zone, optionally
probability_of_failure), ``runout_volume_m3``, ``n_members`` (or ``members``) and
``seed`` are read, each optional (members and seed also from the dataset's attrs).
FS classes are those of the map (:data:`viz.layers.slope.FS_CLASSES`).
"""

from __future__ import annotations

import html
import json
import math
from typing import Any

import numpy as np

#: Probability thresholds (fractions) of the probability table.
P_LEVELS = (0.05, 0.5, 0.95)
#: Largest FS on the histogram's axis (larger values go into its last bin).
FS_AXIS_MAX = 3.0
#: Assets listed in the report (the rest are counted).
MAX_ASSET_ROWS = 50


def _cell_m2(ds) -> float:
    """Area of one grid cell (m²) from attrs ``resolution_m`` or the grid's transform."""
    res = ds.attrs.get("resolution_m")
    try:
        r = float(res)
        if math.isfinite(r) and r > 0:
            return r * r
    except (TypeError, ValueError):
        pass
    from gis.raster import transform_of

    t = transform_of(ds)
    return abs(t.a * t.e)


def _arr(ds, name: str) -> np.ndarray | None:
    return np.asarray(ds[name].values, dtype=np.float64) if name in ds else None


def _hours(t_s: float | None) -> str:
    if t_s is None or not math.isfinite(t_s):
        return "–"
    return f"{t_s / 3600.0:.2f} h"


def figures_numbers(ds) -> dict[str, Any]:
    """The headline numbers of a slope run (what the report prints), from the dataset alone.

    Returns
    -------
    dict
        ``cells_modelled``, ``cells_failing`` (FS < 1), ``area_failing_km2``,
        ``fs_min`` (lowest), ``earliest_failure_s`` (None when nothing fails),
        ``cell_m2``; a probabilistic run adds ``expected_failing_cells`` (Σ p),
        ``expected_failing_km2`` and ``cells_p_at_least`` {level: cells}; a run
        with runout adds ``source_volume_m3``, ``deposit_volume_m3``,
        ``deposit_area_km2`` (deposit ≥ 0.1 m) and ``deposit_max_m``.
    """
    from viz.layers.slope import RUNOUT_MIN_DEPTH_M

    cell = _cell_m2(ds)
    fs = _arr(ds, "fs_min")
    ok = np.isfinite(fs)
    fail = ok & (fs < 1.0)
    tof = _arr(ds, "time_of_failure")
    tf = tof[np.isfinite(tof)] if tof is not None else np.empty(0)
    out: dict[str, Any] = {
        "cell_m2": cell, "cells_modelled": int(ok.sum()), "cells_failing": int(fail.sum()),
        "area_failing_km2": float(fail.sum()) * cell / 1e6,
        "fs_min": float(fs[ok].min()) if ok.any() else None,
        "earliest_failure_s": float(tf.min()) if tf.size else None}
    p = _arr(ds, "probability_of_failure")
    if p is not None:
        pf = p[np.isfinite(p)]
        out["expected_failing_cells"] = float(pf.sum())
        out["expected_failing_km2"] = float(pf.sum()) * cell / 1e6
        out["cells_p_at_least"] = {lv: int((pf >= lv).sum()) for lv in P_LEVELS}
        out["p_max"] = float(pf.max()) if pf.size else None
    dep = _arr(ds, "runout_depth")
    if dep is not None:
        d = np.nan_to_num(dep, nan=0.0)
        out["deposit_volume_m3"] = float(d.sum()) * cell
        out["deposit_area_km2"] = float((d >= RUNOUT_MIN_DEPTH_M).sum()) * cell / 1e6
        out["deposit_max_m"] = float(d.max()) if d.size else 0.0
    src = _arr(ds, "runout_source")
    if src is not None:
        out["source_volume_m3"] = float(np.nan_to_num(src, nan=0.0).sum()) * cell
    return out


def worst_cells(ds, n: int = 10) -> list[dict]:
    """The ``n`` cells of lowest minimum FS: dicts lon, lat, fs_min, depth_m, time_s, zone (name or code)."""
    from pyproj import Transformer

    from viz.layers.slope import zone_names

    fs = _arr(ds, "fs_min")
    flat = np.where(np.isfinite(fs), fs, np.inf).ravel()
    k = min(int(n), int(np.isfinite(flat).sum()))
    if k <= 0:
        return []
    idx = np.argsort(flat, kind="stable")[:k]
    rows, cols = np.unravel_index(idx, fs.shape)
    x = np.asarray(ds["x"].values, dtype=float)[cols]
    y = np.asarray(ds["y"].values, dtype=float)[rows]
    crs = ds.attrs.get("crs")
    if crs:
        lon, lat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(x, y)
    else:
        lon, lat = np.full(k, np.nan), np.full(k, np.nan)
    names = zone_names(ds)
    depth, tof, zone = _arr(ds, "depth_of_minimum"), _arr(ds, "time_of_failure"), _arr(ds, "zone")
    out = []
    for j in range(k):
        r, c = int(rows[j]), int(cols[j])
        z = None if zone is None else int(zone[r, c])
        out.append({"lon": float(lon[j]), "lat": float(lat[j]), "fs_min": float(fs[r, c]),
                    "depth_m": None if depth is None else float(depth[r, c]),
                    "time_s": None if tof is None else float(tof[r, c]),
                    "zone": names.get(z, z) if z is not None else None})
    return out


# ----------------------------------------------------------------------------- figures
def fs_histogram_figure(ds):
    """Histogram of ``fs_min`` (cells, 0.05-wide bins to :data:`FS_AXIS_MAX`; larger FS in the last bin),
    the FS class limits drawn as lines."""
    from viz.layers.slope import FS_CLASSES
    from viz.plots import new_figure

    fs = _arr(ds, "fs_min")
    v = fs[np.isfinite(fs)]
    fig = new_figure(6.4, 3.2)
    ax = fig.add_subplot()
    bins = np.arange(0.0, FS_AXIS_MAX + 1e-9, 0.05)
    ax.hist(np.clip(v, 0.0, FS_AXIS_MAX - 1e-6), bins=bins, color="#6b7b8c")
    for edge, col in zip(FS_CLASSES.edges, FS_CLASSES.colours, strict=False):
        ax.axvline(edge, color=np.asarray(col[:3]) / 255.0, lw=1.6, label=f"FS = {edge:g}")
    ax.set_xlabel("minimum factor of safety over depths and times")
    ax.set_ylabel("cells")
    ax.set_yscale("log")
    ax.legend(loc="upper right")
    return fig


def fs_slope_figure(ds, max_points: int = 4000, seed: int = 0):
    """Minimum FS against slope angle, one colour per zone (at most ``max_points`` per zone, seeded)."""
    from viz.layers.slope import zone_names
    from viz.plots import new_figure

    fs, sl = _arr(ds, "fs_min"), _arr(ds, "slope")
    zone = _arr(ds, "zone")
    ok = np.isfinite(fs) & np.isfinite(sl)
    zones = np.zeros_like(fs) if zone is None else zone
    names = zone_names(ds)
    rng = np.random.default_rng(seed)
    fig = new_figure(6.4, 3.6)
    ax = fig.add_subplot()
    for z in np.unique(zones[ok]):
        m = np.flatnonzero(ok & (zones == z))
        if m.size > max_points:
            m = rng.choice(m, max_points, replace=False)
        ax.scatter(sl.ravel()[m], np.clip(fs.ravel()[m], 0.0, FS_AXIS_MAX), s=4, alpha=0.5,
                   label=names.get(int(z), f"zone {int(z)}") if zone is not None else "all cells")
    ax.axhline(1.0, color="#c8141e", lw=1.2)
    ax.set_xlabel("slope (°)")
    ax.set_ylabel(f"minimum FS (clipped at {FS_AXIS_MAX:g})")
    ax.set_ylim(0.0, FS_AXIS_MAX)
    ax.legend(loc="upper right", markerscale=3)
    return fig


# ----------------------------------------------------------------------------- sections
def _cards(cards: list[tuple[str, str]]) -> str:
    return ('<section><h2>At a glance</h2><div class="cards">'
            + "".join(f"<div class=card><b>{v}</b><span>{html.escape(k)}</span></div>" for v, k in cards)
            + "</div></section>")


def _storm(ds) -> dict:
    raw = ds.attrs.get("storm")
    if isinstance(raw, dict):
        return raw
    try:
        v = json.loads(raw) if isinstance(raw, str) else {}
    except json.JSONDecodeError:
        return {"name": raw}
    return v if isinstance(v, dict) else {"name": raw}


def _run_section(ds, summary: dict) -> str:
    from viz.report import _f, _kv

    a = ds.attrs
    storm = _storm(ds)
    rows = [("mode", html.escape(str(a.get("mode", "–")))), ("region", html.escape(str(a.get("region", "–")))),
            ("grid", f"{ds.sizes['y']} × {ds.sizes['x']} cells at {_f(math.sqrt(_cell_m2(ds)), 'g', 'm')}"),
            ("CRS", html.escape(str(a.get("crs", "–")))),
            ("simulated time", _f(a.get("duration_h"), "g", "h")),
            ("storm", html.escape(str(storm.get("name", "–"))))]
    for key, label, unit in (("total_mm", "storm total", "mm"), ("peak_mm_h", "peak intensity", "mm/h")):
        if key in storm:
            rows.append((label, _f(storm[key], ".1f", unit)))
    if a.get("mode") == "probabilistic" or "probability_of_failure" in ds:
        for keys, label in ((("n_members", "members"), "Monte Carlo members"), (("seed",), "seed")):
            v = next((src[k] for k in keys for src in (summary, a) if src.get(k) is not None), None)
            if v is not None:
                rows.append((label, html.escape(str(v))))
    return "<section><h2>Run</h2>" + _kv(rows) + "</section>"


def _class_section(ds, num: dict) -> str:
    from viz.layers.slope import FS_CLASSES, zone_names
    from viz.report import _f, _table

    fs = _arr(ds, "fs_min")
    cls = FS_CLASSES.classify(fs)
    n_mod = max(num["cells_modelled"], 1)
    rows = []
    for k, label in enumerate(FS_CLASSES.labels):
        n = int((cls == k).sum())
        rows.append([html.escape(label), f"{n:,}", _f(n * num["cell_m2"] / 1e6, ".3f"), _f(100.0 * n / n_mod, ".1f")])
    out = ('<section class="two"><div><h2>Minimum FS by class</h2>'
           + _table(["class", "cells", "km²", "% of modelled"], rows, numeric={1, 2, 3})
           + '<p class="note">Class limits as on the map: FS = 1 is limit equilibrium; 1.3 and 1.5 bracket '
             "design minimums for permanent slopes (1.25–1.35 in GB 50330-2013, 1.4 in Hong Kong's "
             "Geotechnical Manual for Slopes).</p></div>")
    zone = _arr(ds, "zone")
    if zone is not None:
        names = zone_names(ds)
        ok = np.isfinite(fs)
        zrows = []
        for z in np.unique(zone[ok]):
            m = ok & (zone == z)
            n, nf = int(m.sum()), int((m & (fs < 1.0)).sum())
            zrows.append([html.escape(names.get(int(z), f"zone {int(z)}")), f"{n:,}", f"{nf:,}",
                          _f(100.0 * nf / n, ".1f"), _f(float(fs[m].min()), ".2f")])
        out += ("<div><h2>By soil zone</h2>"
                + _table(["zone", "cells", "FS < 1", "% failing", "lowest FS"], zrows, numeric={1, 2, 3, 4})
                + "</div>")
    return out + "</section>"


def _worst_section(ds, summary: dict, top_n: int) -> str:
    from viz.report import _f, _table

    given = summary.get("worst_cells")
    cells = given if isinstance(given, list) and given else worst_cells(ds, top_n)
    if not cells:
        return "<section><h2>Worst cells</h2><p>No cell was modelled.</p></section>"
    cells = [c if isinstance(c, dict) else {} for c in cells]
    with_p = any(c.get("probability_of_failure") is not None for c in cells)
    rows = []
    for k, c in enumerate(cells, 1):
        t = c.get("time_s")
        row = [str(k), _f(c.get("lon"), ".5f"), _f(c.get("lat"), ".5f"), _f(c.get("fs_min"), ".3f"),
               _f(c.get("depth_m"), ".2f"), _hours(float(t)) if t is not None else "–",
               html.escape(str(c.get("zone", "–")))]
        if with_p:
            p = c.get("probability_of_failure")
            row.append(_f(100.0 * p if p is not None else None, ".1f"))
        rows.append(row)
    head = ["#", "lon (°E)", "lat (°N)", "FS", "slip depth (m)", "time FS < 1", "zone"]
    head += ["P(failure) %"] if with_p else []
    src = ("as listed in the run's summary" if isinstance(given, list) and given
           else f"the {len(cells)} cells of lowest minimum FS in the dataset")
    return ("<section><h2>Worst cells</h2>"
            + _table(head, rows, numeric={1, 2, 3, 4, 5, 7})
            + f'<p class="note">Cells {html.escape(src)}; "time FS &lt; 1" is from the start of the run '
              "(– never).</p></section>")


def _probability_section(ds, num: dict, summary: dict) -> str:
    from viz.report import _f, _table

    cell_km2 = num["cell_m2"] / 1e6
    rows = [[f"≥ {100 * lv:g} %", f"{n:,}", _f(n * cell_km2, ".3f")] for lv, n in num["cells_p_at_least"].items()]
    se = _arr(ds, "probability_se")
    p = _arr(ds, "probability_of_failure")
    note = ""
    if se is not None:
        m = np.isfinite(p) & np.isfinite(se) & (p >= P_LEVELS[0])
        if m.any():
            note = (f" Median standard error where p ≥ {100 * P_LEVELS[0]:g} %: "
                    f"{100 * float(np.median(se[m])):.2f} %.")
    return ("<section><h2>Probability of failure</h2>"
            + _table(["probability", "cells", "km²"], rows, numeric={1, 2})
            + f'<p class="note">Expected number of failing cells (Σ p): {num["expected_failing_cells"]:,.1f} '
              f'({num["expected_failing_km2"]:.3f} km²); highest probability {_f(100 * (num["p_max"] or 0), ".1f")} %.'
            + note + " The map leaves cells below 5 % transparent.</p></section>")


def _runout_section(ds, num: dict, summary: dict) -> str:
    from viz.layers.slope import ASSET_KINDS, RUNOUT_MIN_DEPTH_M, asset_table
    from viz.report import _f, _kv, _table

    rows = []
    if "source_volume_m3" in num:
        rows.append(("failed (source) volume", _f(num["source_volume_m3"], ",.0f", "m³")))
    rows += [("deposit volume", _f(num["deposit_volume_m3"], ",.0f", "m³")),
             (f"deposit area (≥ {RUNOUT_MIN_DEPTH_M:g} m)", _f(num["deposit_area_km2"], ".3f", "km²")),
             ("thickest deposit", _f(num["deposit_max_m"], ".2f", "m"))]
    if summary.get("runout_volume_m3") is not None:
        rows.append(("runout volume (run summary)", _f(summary["runout_volume_m3"], ",.0f", "m³")))
    out = "<section><h2>Runout and assets hit</h2>" + _kv(rows)
    assets = asset_table(ds)
    if not assets:
        return out + "<p>No building, road, metro line or station lies under the deposit.</p></section>"
    counts = {k: sum(a["kind"] == k for a in assets) for k in ASSET_KINDS}
    out += "<p>" + ", ".join(f"{n:,} {ASSET_KINDS[k][0]}" for k, n in counts.items() if n) + " hit.</p>"
    order = sorted(assets, key=lambda a: -a["depth_m"] if math.isfinite(a["depth_m"]) else math.inf)
    arows = [[html.escape(a["kind"].replace("_", " ")), html.escape(a["name"] or "–"), html.escape(a["id"]),
              _f(a["depth_m"], ".2f")] for a in order[:MAX_ASSET_ROWS]]
    out += _table(["kind", "name", "id", "deposit depth (m)"], arows, numeric={3})
    if len(order) > MAX_ASSET_ROWS:
        out += f'<p class="note">… and {len(order) - MAX_ASSET_ROWS:,} more (thinner deposits).</p>'
    return out + "</section>"


def slope_report_sections(ds, summary: dict | None = None, ctx: Any = None, *, top_n: int = 10,
                          dpi: int = 110) -> list[str]:
    """HTML sections of a slope run's report (for :func:`viz.report.write_run_report`).

    Parameters
    ----------
    ds : Dataset
        The run's ``slope.nc`` (see :mod:`viz.layers.slope` for the variables).
    summary : dict or None
        The run's summary; ``worst_cells``, ``runout_volume_m3``, ``n_members``/``members`` and
        ``seed`` are used when present.
    ctx : twin.runkinds.RunContext or None
        Unused (the run kind's signature).
    top_n : int
        Worst cells listed when the summary has none.
    dpi : int
        Resolution of the embedded figures.

    Returns
    -------
    list of str
        ``<section>`` blocks: at a glance, run, FS classes and zones, worst cells, figures,
        probability (probabilistic runs), runout and assets (runs with runout).
    """
    from twin.errors import ValidationError
    from viz.report import _f, figure_html

    if "fs_min" not in ds:
        raise ValidationError(f"the dataset has no 'fs_min' variable (has {sorted(ds.data_vars)}): "
                              "is it a slope run (twin slope run writes slope.nc)?")
    summary = summary if isinstance(summary, dict) else {}
    num = figures_numbers(ds)
    n_mod = max(num["cells_modelled"], 1)
    cards = [(f"{num['cells_failing']:,}", f"cells with FS < 1 ({100.0 * num['cells_failing'] / n_mod:.1f} % "
                                            f"of {num['cells_modelled']:,} modelled)"),
             (_f(num["area_failing_km2"], ".3f", "km²"), "area with FS < 1"),
             (_hours(num["earliest_failure_s"]), "earliest failure (from the start)"),
             (_f(num["fs_min"], ".3f"), "lowest minimum FS")]
    if "expected_failing_km2" in num:
        cards.append((_f(num["expected_failing_km2"], ".3f", "km²"), "expected failing area (Σ p × cell)"))
    if "deposit_volume_m3" in num:
        cards.append((_f(num["deposit_volume_m3"], ",.0f", "m³"), "runout deposit volume"))
    parts = [_cards(cards), _run_section(ds, summary), _class_section(ds, num), _worst_section(ds, summary, top_n)]
    figs = figure_html(fs_histogram_figure(ds), "histogram of the minimum FS",
                       f"Cells per 0.05 of minimum FS (log scale); FS above {FS_AXIS_MAX:g} is counted in the "
                       "last bin. Lines: the map's class limits.", dpi)
    if "slope" in ds:
        figs += figure_html(fs_slope_figure(ds), "minimum FS against slope by zone",
                            "Minimum FS against slope angle, a random sample of at most 4,000 cells per soil "
                            "zone (seeded); the line is FS = 1.", dpi)
    parts.append("<section><h2>Figures</h2>" + figs + "</section>")
    if "cells_p_at_least" in num:
        parts.append(_probability_section(ds, num, summary))
    if "deposit_volume_m3" in num:
        parts.append(_runout_section(ds, num, summary))
    return parts


__all__ = ["figures_numbers", "fs_histogram_figure", "fs_slope_figure", "slope_report_sections", "worst_cells"]
