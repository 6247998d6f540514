"""One self-contained HTML report per flood run (opens offline, no scripts).

:func:`write_flood_report` takes a run's output Dataset (or its folder /
``flood.nc``) and writes ``report.html``: the key numbers, the storm, the run
parameters, flooded area by depth class, the volume balance with its relative
error, the waterlogging hit rate when ``summary.json`` has one, the figures of
:mod:`viz.plots` embedded as ``data:image/png;base64`` URLs, and the deepest
locations with lon/lat. CSS is inline; the page loads nothing, so it passes
:func:`viz.offline.assert_offline` and opens on a command-centre machine with
no network.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from twin.errors import DataMissingError, ValidationError
from viz import plots as P

REPORT_NAME = "report.html"

_CSS = """
body{font-family:"Noto Sans CJK SC","Noto Sans SC","Microsoft YaHei","PingFang SC",system-ui,sans-serif;
 margin:0;background:#f4f6f8;color:#1b2733;line-height:1.45}
header{background:#0b3a60;color:#fff;padding:18px 28px}
header h1{margin:0 0 4px;font-size:22px} header p{margin:0;opacity:.85;font-size:13px}
main{max-width:1120px;margin:0 auto;padding:18px 24px 40px}
section{background:#fff;border-radius:8px;box-shadow:0 1px 3px rgba(0,0,0,.08);margin:16px 0;padding:14px 20px}
h2{font-size:17px;margin:4px 0 10px;color:#0b3a60}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:6px 0}
.card{flex:1 1 150px;background:#eef4fa;border-radius:6px;padding:10px 14px}
.card b{display:block;font-size:22px;color:#0b3a60} .card span{font-size:12px;color:#44515e}
table{border-collapse:collapse;width:100%;font-size:13.5px;margin:4px 0 8px}
th,td{border-bottom:1px solid #e1e6eb;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f0f3f6;font-weight:600} td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.two{display:flex;flex-wrap:wrap;gap:20px} .two>div{flex:1 1 440px}
figure{margin:8px 0 14px} figure img{max-width:100%;height:auto;border:1px solid #e1e6eb}
figcaption{font-size:12.5px;color:#44515e;margin-top:4px}
.note{font-size:12.5px;color:#55616d} .warn{color:#a33}
footer{font-size:12px;color:#66727e;text-align:center;padding:10px}
"""


# ----------------------------------------------------------------------------- loading
def load_run(ds_or_path) -> tuple[xr.Dataset, dict | None, Path | None]:
    """(Dataset, summary.json content or None, run folder or None) of a Dataset, a run folder or a flood.nc."""
    if isinstance(ds_or_path, xr.Dataset):
        return ds_or_path, None, None
    if not isinstance(ds_or_path, str | os.PathLike):
        raise ValidationError(f"flood run {ds_or_path!r}: give an xarray.Dataset, a run folder or a flood.nc path")
    p = Path(ds_or_path)
    nc = p / "flood.nc" if p.is_dir() else p
    if not nc.is_file():
        raise DataMissingError(f"flood output {str(nc)!r} does not exist: give the --out folder of "
                               "`twin flood run` or the path of its flood.nc")
    try:
        ds = xr.load_dataset(nc)
    except (OSError, ValueError) as exc:
        # one line: xarray's message goes on with hints about IO backends a user cannot act on
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0].split(". Consider")[0]
        raise ValidationError(f"{str(nc)!r} is not a readable NetCDF flood output: {first}") from exc
    sj = nc.parent / "summary.json"
    summary = json.loads(sj.read_text(encoding="utf-8")) if sj.is_file() else None
    return ds, summary, nc.parent


# ----------------------------------------------------------------------------- numbers
def _finite_or_none(v: Any) -> float | None:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _f(v: Any, fmt: str = ".3g", unit: str = "") -> str:
    if v is None:
        return "–"
    try:
        x = float(v)
    except (TypeError, ValueError):
        return html.escape(str(v))
    if not math.isfinite(x):
        return "–"
    return f"{x:{fmt}}" + (f" {unit}" if unit else "")


def area_table(ds: xr.Dataset) -> list[dict]:
    """Land area (km²) per depth class: ever reached (from ``max_depth``), at the end and at its peak time."""
    land = P.land_mask(ds)
    cell_km2 = P.cell_area_m2(ds) / 1e6
    md = np.nan_to_num(np.asarray(P._require(ds, "max_depth", ("y", "x")).values, np.float64), nan=0.0)[land]
    edges = list(P.DEPTH_CLASSES_M)
    ac = P.area_by_class(ds) if "depth" in ds else None
    rows = []
    for k, lo in enumerate(edges):
        hi = edges[k + 1] if k + 1 < len(edges) else math.inf
        row = {"class": f"{lo:g}–{hi:g} m" if math.isfinite(hi) else f"≥ {lo:g} m",
               "ever_km2": float(np.count_nonzero((md >= lo) & (md < hi)) * cell_km2),
               "ever_at_least_km2": float(np.count_nonzero(md >= lo) * cell_km2)}
        if ac is not None:
            row["end_km2"] = float(ac["km2"][k, -1])
            row["peak_km2"] = float(ac["km2"][k].max())
        rows.append(row)
    return rows


def balance_table(ds: xr.Dataset) -> tuple[list[tuple[str, float]], float, float]:
    """Rows (label, m³) of the final volume balance, the error (m³) and the relative error."""
    b = P.balance_series(ds)
    rows = [("rain received", b["rain"][-1])]
    if np.any(b["inflow"]):
        rows.append(("point / line inflow", b["inflow"][-1]))
    rows += [("infiltrated", -b["infiltration"][-1]), ("drained (sewer capacity)", -b["drainage"][-1]),
             ("left over the grid edge", -b["outflow"][-1])]
    if np.any(b["level_exchange"]):
        rows.append(("exchanged with the sea and the outflow edge (fixed level)", b["level_exchange"][-1]))
    if np.any(b["correction"]):
        rows.append(("booked corrections (assimilation)", b["correction"][-1]))
    rows.append(("change of surface storage", -b["storage_change"][-1]))
    return [(k, float(v) + 0.0) for k, v in rows], float(b["error"][-1]), float(b["relative_error"][-1])


# ----------------------------------------------------------------------------- html pieces
def _table(head: list[str], rows: list[list[str]], numeric: set[int] = frozenset()) -> str:
    th = "".join(f'<th class="n">{h}</th>' if i in numeric else f"<th>{h}</th>" for i, h in enumerate(head))
    body = "".join("<tr>" + "".join(f'<td class="n">{c}</td>' if i in numeric else f"<td>{c}</td>"
                                    for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _kv(rows: list[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return f"<table><tbody>{body}</tbody></table>"


def figure_html(fig_or_png, alt: str, caption: str | None = None, dpi: int = 110) -> str:
    """A matplotlib figure (or a PNG file's path or bytes) as an inline ``<figure>``.

    Reports load nothing from elsewhere, so the image is a data URL. ``caption`` is HTML.
    """
    if isinstance(fig_or_png, bytes | bytearray):
        png = bytes(fig_or_png)
    elif isinstance(fig_or_png, str | Path):
        png = Path(fig_or_png).read_bytes()
    else:
        png = P.png_bytes(fig_or_png, dpi=dpi)
    data = base64.b64encode(png).decode("ascii")
    cap = f"<figcaption>{caption}</figcaption>" if caption else ""
    return f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">{cap}</figure>'


def _img(fig, alt: str, caption: str, dpi: int) -> str:
    return figure_html(fig, alt, caption, dpi)


def _storm_rows(storm: dict) -> list[tuple[str, str]]:
    rows = [("name", html.escape(str(storm.get("name", "–")))),
            ("hyetograph", html.escape(str(storm.get("method", "–")).replace("_", " ")))]
    rows.append(("total depth", _f(storm.get("total_mm"), ".1f", "mm")))
    rows.append(("peak intensity", _f(storm.get("peak_mm_h"), ".1f", "mm/h")))
    rows.append(("duration", _f(storm.get("duration_h"), "g", "h")))
    if "block_min" in storm:
        rows.append(("block length", _f(storm["block_min"], "g", "min")))
    if "peak_fraction" in storm:
        rows.append(("peak position", _f(storm["peak_fraction"], ".2f", "of the storm")))
    ddf = storm.get("ddf_mm")
    if isinstance(ddf, dict) and ddf:
        rows.append(("depth–duration maxima used",
                     ", ".join(f"{html.escape(str(k))}: {_f(v, '.1f', 'mm')}" for k, v in ddf.items())))
    return rows


def _param_rows(ds: xr.Dataset) -> list[tuple[str, str]]:
    a = ds.attrs
    ny, nx = ds.sizes["y"], ds.sizes["x"]
    res = a.get("resolution_m", a.get("cell_size_m"))
    rows = [("region", html.escape(str(a.get("region", "–")))),
            ("grid", f"{ny} × {nx} cells at {_f(res, 'g', 'm')}" + (f", {int(a['land_cells']):,} land cells"
                                                                     if "land_cells" in a else "")),
            ("CRS", html.escape(str(a.get("crs", "none (grid units)")))),
            ("simulated time", _f(a.get("duration_h", float(ds["time"][-1]) / 3600.0), "g", "h")),
            ("output frames", f"{ds.sizes['time']} (every {_f(float(np.diff(ds['time'].values).mean()), 'g', 's')})"),
            ("scheme", html.escape(str(a.get("scheme", a.get("model", "–"))))),
            ("θ (q-centred diffusion), α (CFL)", f"{_f(a.get('theta'), 'g')}, {_f(a.get('alpha'), 'g')}"),
            ("precision", html.escape(str(a.get("dtype", "–")))),
            ("arrival depth threshold", _f(a.get("h_arrive_m"), "g", "m"))]
    man = P._attr_json(ds, "manning", None)
    if isinstance(man, dict):
        rows.append(("Manning's n", ", ".join(f"{html.escape(str(k))} {_f(v, 'g')}" for k, v in man.items())))
    drn = P._attr_json(ds, "drainage_mm_h", None)
    if isinstance(drn, dict) and drn:
        vals = sorted(set(drn.values()))
        txt = (f"{_f(vals[0], 'g', 'mm/h')} in every district" if len(vals) == 1 else
               ", ".join(f"{html.escape(str(k))} {_f(v, 'g')}" for k, v in drn.items()) + " mm/h")
        rows.append(("drainage capacity", txt))
    for key, label in (("domain", "domain"), ("buffer_m", "buffer around the districts (m)")):
        if key in a:
            rows.append((label, html.escape(str(a[key]))))
    cond = P._attr_json(ds, "terrain_conditioning", None)
    if isinstance(cond, dict):
        parts = [f"{html.escape(str(r.get('step')))}: {_f(r.get('cells_changed'), ',.0f')} cells"
                 for r in cond.get("reports", []) if isinstance(r, dict)]
        rows.append(("terrain conditioning", "; ".join(parts) if parts else "none"))
    steps, cups = a.get("steps"), a.get("cell_updates_per_s")
    wall, model_s, comp = (_finite_or_none(a.get(k)) for k in ("wall_time_s", "model_wall_s", "compile_s"))
    if steps:
        perf = f"{int(steps):,} time steps"
        if model_s is not None:
            perf += f" in {model_s:.1f} s"
        elif wall is not None:
            perf += f" in {wall:.1f} s wall time"
        if cups is not None and math.isfinite(float(cups)):
            perf += f" ({float(cups) / 1e6:.1f} M cell-updates/s)"
        if comp is not None:
            perf += f"; compiling or loading the kernels took {comp:.1f} s more"
        rows.append(("computation", perf))
    if a.get("cite_as"):
        rows.append(("method references", html.escape(str(a["cite_as"]))))
    return rows


def _hit_section(summary: dict | None) -> str:
    hit = (summary or {}).get("waterlogging_hit_rate")
    if not isinstance(hit, dict):
        return ""
    rows = [("official waterlogging spots in the domain", _f(hit.get("n_in_domain"), ",.0f")),
            (f"spots within {_f(hit.get('radius_m'), 'g', 'm')} of a cell ≥ {_f(hit.get('depth_m'), 'g', 'm')}",
             f"{_f(hit.get('hits'), ',.0f')} ({_f(100 * hit['hit_rate'] if hit.get('hit_rate') is not None else None, '.0f')} %)"),
            ("same count for random points (rate)",
             _f(100 * hit["random_hit_rate"] if hit.get("random_hit_rate") is not None else None, ".0f", "%")),
            ("ratio to random", _f(hit.get("ratio"), ".2f")),
            ("p-value (random points do at least as well)", _f(hit.get("p_value"), ".2g"))]
    sk = hit.get("skill")
    if isinstance(sk, dict) and sk.get("auc") is not None:
        ci = sk.get("auc_ci95") or (None, None)
        rows += [("ROC AUC: spots vs random land, ranked by the deepest water within "
                  f"{_f(sk.get('radius_m', hit.get('radius_m')), 'g', 'm')}",
                  f"{_f(sk['auc'], '.3f')} (95 % CI {_f(ci[0], '.3f')}–{_f(ci[1], '.3f')}; "
                  f"Mann–Whitney p {_f(sk.get('mannwhitney_p'), '.2g')})"),
                 (f"hit rate at a {_f(100 * sk['false_alarm_rate'] if sk.get('false_alarm_rate') is not None else None, '.0f')} % "
                  "false-alarm rate",
                  _f(100 * sk["hit_rate"] if sk.get("hit_rate") is not None else None, ".0f", "%"))]
    return ("<section><h2>Waterlogging spots (reporting only)</h2>" + _kv(rows)
            + '<p class="note">The official waterlogging spots are used for this count only; '
              "no model parameter was tuned to them.</p></section>")


def _deepest_section(ds: xr.Dataset, top: list[dict]) -> str:
    if not top:
        return "<section><h2>Deepest locations</h2><p>No cell held water.</p></section>"
    rows = []
    for p in top:
        rows.append([str(p["rank"]),
                     _f(p["lon"], ".5f") if p["lon"] is not None else "–",
                     _f(p["lat"], ".5f") if p["lat"] is not None else "–",
                     f"{p['x']:.0f}, {p['y']:.0f}",
                     _f(p["max_depth_m"], ".2f"),
                     _f(p["time_of_max_h"], ".2f"),
                     _f(p["arrival_h"], ".2f"),
                     html.escape(P.district_label(p))])
    crs = html.escape(str(ds.attrs.get("crs", "grid units")))
    return ("<section><h2>Deepest locations</h2>"
            + _table(["#", "lon (°E)", "lat (°N)", f"x, y (m, {crs})", "max depth (m)", "time of max (h)",
                      f"depth ≥ {_f(ds.attrs.get('h_arrive_m', 0.15), 'g')} m from (h)", "district"],
                     rows, numeric={1, 2, 4, 5, 6})
            + f'<p class="note">Local maxima of the maximum depth at least 300 m apart (one entry per pond), '
              f"numbered as on the map. Cell size {_f(P.cell_area_m2(ds) ** 0.5, 'g', 'm')}; "
              "single-cell maxima on a coarse grid can be DEM artefacts. A place whose cell centre falls "
              "just outside the district polygons (a border river, the coast) is given the nearest district "
              f"and its distance; \"{P.OUTSIDE_DISTRICTS}\" is the margin kept around the city.</p></section>")


# ----------------------------------------------------------------------------- the report
def report_page(title: str, subtitle: str, sections: list[str], footer: str) -> str:
    """One self-contained report page (inline CSS, no scripts) around ``sections`` (HTML blocks)."""
    made = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    head = (f"<header><h1>{html.escape(title)}</h1><p>{html.escape(subtitle)}"
            + (" · " if subtitle else "") + f"report made {made}</p></header><main>")
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{html.escape(title)}"
            f"</title><style>{_CSS}</style></head><body>" + head + "".join(sections)
            + f"</main><footer>{footer}</footer></body></html>\n")


def flood_report_sections(ds: xr.Dataset, *, summary: dict | None = None, top_n: int = 10, points=None,
                          crs: str | None = None, districts=None, dpi: int = 110) -> list[str]:
    """The sections of a flood run's report: key numbers, storm and run, areas and balance, hit rate,
    maps and series, deepest places."""
    for name, dims in (("max_depth", ("y", "x")), ("volume_rain", ("time",)), ("volume_storage", ("time",))):
        P._require(ds, name, dims)
    storm = P.storm_of(ds)
    top = P.deepest_locations(ds, top_n) if top_n else []
    rs = P.rain_series(ds)
    areas = area_table(ds)
    bal_rows, err, rel = balance_table(ds)
    rain_v = bal_rows[0][1]
    land_km2 = float(P.land_mask(ds).sum()) * P.cell_area_m2(ds) / 1e6
    md = np.asarray(ds["max_depth"].values, np.float64)
    peak_area = float(np.max(ds["flooded_area"].values)) / 1e6 if "flooded_area" in ds else None

    cards = [(_f(float(np.nanmax(md)) if np.isfinite(md).any() else None, ".2f", "m"), "maximum depth"),
             (_f(areas[0]["ever_at_least_km2"], ".2f", "km²"),
              f"land ever ≥ {P.DEPTH_CLASSES_M[0]:g} m deep (of {land_km2:.1f} km²)"),
             (_f(peak_area, ".2f", "km²"), "largest flooded area at one time"),
             (_f(rs["cumulative_mm"][-1], ".1f", "mm"), "mean rain received"),
             (_f(rel, ".1e"), "relative volume balance error")]
    parts = ['<section><h2>At a glance</h2><div class="cards">'
             + "".join(f"<div class=card><b>{v}</b><span>{html.escape(k)}</span></div>" for v, k in cards)
             + "</div></section>"]
    parts.append('<section class="two"><div><h2>Storm</h2>' + _kv(_storm_rows(storm) if storm else
                                                                  [("rain", "no storm description in the run")])
                 + "</div><div><h2>Run</h2>" + _kv(_param_rows(ds)) + "</div></section>")

    arow = [[r["class"], _f(r["ever_km2"], ".3f"), _f(r["ever_at_least_km2"], ".3f"),
             _f(r.get("peak_km2"), ".3f"), _f(r.get("end_km2"), ".3f")] for r in areas]
    pct = [[html.escape(k), _f(v, ",.0f"), _f(100.0 * v / rain_v if rain_v else None, ".1f")] for k, v in bal_rows]
    pct.append(["<b>closure error</b> (storage change − net inflow)", _f(err, ".3g"), _f(rel, ".2e") + " (rel.)"])
    parts.append('<section class="two"><div><h2>Flooded land area by depth class (km²)</h2>'
                 + _table(["depth class", "ever in class", "ever at least", "peak in class", "at the end"],
                          arow, numeric={1, 2, 3, 4})
                 + '<p class="note">"Ever" uses each cell\'s maximum depth; "peak" and "end" use the saved '
                   "frames.</p></div><div><h2>Volume balance at the end (m³)</h2>"
                 + _table(["term", "volume (m³)", "% of rain"], pct, numeric={1, 2})
                 + '<p class="note">Signs: + adds water to the surface, − removes it; the terms sum to the '
                   "closure error. Relative error = |error| / (rain + inflow + |sea exchange|).</p></div></section>")
    parts.append(_hit_section(summary))

    figs = P.figures_for_run(ds, points=points, crs=crs, districts=districts, top_n=top_n)
    parts.append("<section><h2>Maps and time series</h2>"
                 + _img(figs["max_depth"], "maximum depth map",
                        "Maximum water depth reached in each cell over the run (classes in metres) on a "
                        "hillshade of the bed; numbers mark the deepest locations listed below.", dpi)
                 + _img(figs["rain_depth"], "rain and depth at a point",
                        "Top: rain intensity per output interval (bars, mm/h) and cumulative mean rain (line, "
                        "mm), both from the model's rain volume over the cells that take rain. Bottom: water "
                        "depth at the point over time.", dpi)
                 + _img(figs["area_balance"], "flooded area and volume balance",
                        "Top: land area per depth class at each saved frame. Middle: where the cumulative rain "
                        "went. Bottom: the balance closure error relative to the input (log scale).", dpi)
                 + "</section>")
    parts.append(_deepest_section(ds, top))
    return parts


def flood_report_html(ds: xr.Dataset, *, summary: dict | None = None, top_n: int = 10, points=None,
                      crs: str | None = None, districts=None, dpi: int = 110,
                      source: str | None = None) -> str:
    """The report page (a string) of a flood output Dataset; see :func:`write_flood_report`."""
    sections = flood_report_sections(ds, summary=summary, top_n=top_n, points=points, crs=crs,
                                     districts=districts, dpi=dpi)
    title = ds.attrs.get("title") or f"Flood forecast: {P.storm_of(ds).get('name', 'rain')}"
    subtitle = P._title_when(ds) + (f" · from {source}" if source else "")
    footer = (f"Shenzhen Twin flood model · {html.escape(str(ds.attrs.get('model', '')))} · "
              "this page loads nothing from the network")
    return report_page(title, subtitle, sections, footer)


def summary_section(summary: dict, title: str = "Summary") -> str:
    """A section listing a run's summary (nested entries flattened to ``a.b``), the default report."""
    rows = []

    def walk(prefix: str, v: Any) -> None:
        if isinstance(v, dict):
            for k, x in v.items():
                walk(f"{prefix}.{k}" if prefix else str(k), x)
        elif isinstance(v, float):
            rows.append((prefix, _f(v, ".4g")))
        else:
            rows.append((prefix, html.escape(str(v))))

    walk("", {k: v for k, v in summary.items() if k not in ("files", "request")})
    return f"<section><h2>{html.escape(title)}</h2>" + _kv(rows) + "</section>"


def _write_page(page: str, out_dir, filename: str) -> Path:
    """Check that ``page`` loads nothing from the network, then write it to ``out_dir/filename``."""
    from viz.offline import assert_offline

    assert_offline(page)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / filename
    path.write_text(page, encoding="utf-8")
    return path


def write_run_report(kind: Any, ds: xr.Dataset, summary: dict, out_dir, ctx: Any = None,
                     filename: str = REPORT_NAME) -> Path:
    """Write ``report.html`` of any run kind: its ``report_sections`` (default: the summary), its request.

    Parameters
    ----------
    kind : twin.runkinds.RunKind
    ds : Dataset
        The run's outputs.
    summary : dict
        The run's summary.
    out_dir : path
    ctx : twin.runkinds.RunContext, optional
        Handed to the kind's ``report_sections``.
    """
    sections = (kind.report_sections(ds, summary, ctx) if kind.report_sections is not None
                else [summary_section(summary)])
    request = summary.get("request")
    if isinstance(request, dict):
        sections.append("<section><h2>Request</h2>" + _kv(
            [(k, html.escape(json.dumps(v, ensure_ascii=False))) for k, v in request.items()]) + "</section>")
    title = str(ds.attrs.get("title") or kind.title)
    subtitle = kind.title + (f" · {kind.describe_params(request)}" if isinstance(request, dict) else "")
    page = report_page(title, subtitle, sections,
                       f"Shenzhen Twin · run kind {html.escape(kind.name)} · this page loads nothing from the network")
    return _write_page(page, out_dir, filename)


def write_flood_report(ds_or_path, out_dir, *, summary: dict | None = None, top_n: int = 10, points=None,
                       crs: str | None = None, districts=None, dpi: int = 110,
                       filename: str = REPORT_NAME) -> Path:
    """Write the self-contained HTML report of a flood run and return its path.

    Parameters
    ----------
    ds_or_path : Dataset, run folder or flood.nc path
        The run's outputs (``summary.json`` next to ``flood.nc`` is read
        for the waterlogging hit rate).
    out_dir : path
        Folder for ``filename`` (created).
    summary : dict, optional
        The run's summary (as in ``summary.json``), overriding the file.
    top_n : int
        Deepest locations listed and numbered on the map.
    points, crs
        Points for the depth time series (see :func:`viz.plots.rain_depth_figure`).
    districts : GeoDataFrame, optional
        District polygons for the map (default: traced from the run's raster).
    dpi : int
        Resolution of the embedded figures.

    Returns
    -------
    Path
        ``out_dir / filename``.

    Raises
    ------
    ValidationError
        When a variable the report needs is missing or has the wrong dims
        (the message names it), or the page would load a remote resource.
    DataMissingError
        When a given path holds no ``flood.nc``.
    """
    ds, found, folder = load_run(ds_or_path)
    page = flood_report_html(ds, summary=summary if summary is not None else found, top_n=top_n, points=points,
                             crs=crs, districts=districts, dpi=dpi,
                             source=str(folder) if folder is not None else None)
    return _write_page(page, out_dir, filename)
