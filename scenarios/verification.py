"""Forecast verification: every kept forecast against what the gauges then read.

Pairs (:func:`forecast_pairs`): each forecast run in the store
(:func:`scenarios.forecast.forecast_runs`, finished) keeps, in its
``forecast_issued`` event, the predicted reading of each water-level gauge at
each lead time. A prediction valid at ``issue + lead`` is paired with the
gauge's stored observation nearest that instant, if one lies within
``tolerance_s`` (default 5 min; ties: the earlier one); otherwise it stays
unpaired (not yet observed, or the gauge was silent).

Table (:func:`verification_table`), per gauge (and ``"all"`` gauges) and lead
time bucket (``0`` = the analysis, then ``(lo, hi]`` of :data:`LEAD_BUCKETS_S`),
with ``e = predicted - observed`` over the bucket's ``n`` pairs:

* ``bias`` = mean(e), ``mae`` = mean(|e|), ``rmse`` = sqrt(mean(e²)) (m);
* threshold crossings against the gauge's lowest threshold (pairs of gauges
  without a threshold are not counted): ``hits`` (predicted and observed at
  or above it), ``misses`` (observed only), ``false_alarms`` (predicted only),
  ``correct_negatives``; ``pod`` = hits / (hits + misses) and ``far`` =
  false_alarms / (hits + false_alarms) where defined.

Outputs (:func:`write_verification`): ``verification.csv`` and
``verification.parquet`` (the table), ``pairs.csv`` (every pair) and
``verification.html`` (the table as a report section, and a figure of bias and RMSE by lead time).
"""

from __future__ import annotations

import html
import math
from datetime import timedelta
from pathlib import Path
from typing import Any

from scenarios.forecast import FORECAST_EVENT, forecast_runs, parse_instant

#: Upper edges (s) of the lead time buckets after the analysis (lead 0): (0, 10 min], (10, 30 min], ...
LEAD_BUCKETS_S = (600.0, 1800.0, 3600.0, 7200.0, 10800.0, 21600.0, 86400.0)
PAIR_COLUMNS = ["run", "station", "datastream", "issue_time", "lead_s", "valid_time", "predicted",
                "observed", "observed_time", "threshold"]
TABLE_COLUMNS = ["station", "lead", "lead_lo_s", "lead_hi_s", "n", "bias", "mae", "rmse", "hits", "misses",
                 "false_alarms", "correct_negatives", "pod", "far"]


def _minutes(s: float) -> str:
    return f"{s / 3600:g} h" if s >= 3600 and s % 3600 == 0 else f"{s / 60:g} min"


def lead_bucket(lead_s: float, edges: tuple[float, ...] = LEAD_BUCKETS_S) -> tuple[str, float, float]:
    """(label, lo, hi) of the bucket holding ``lead_s``: ``"0 (analysis)"`` or ``"lo-hi"``, lo < lead <= hi."""
    if lead_s <= 0:
        return "0 (analysis)", 0.0, 0.0
    lo = 0.0
    for hi in edges:
        if lead_s <= hi:
            return f"{_minutes(lo) if lo else '0'}–{_minutes(hi)}", lo, hi
        lo = hi
    return f"> {_minutes(lo)}", lo, math.inf


def _nearest(store: Any, datastream: str, valid: Any, tolerance_s: float) -> tuple[float, Any] | None:
    tol = timedelta(seconds=tolerance_s)
    obs = [o for o in store.observations(datastream, valid - tol, valid + tol + timedelta(microseconds=1))
           if o.value is not None]
    if not obs:
        return None
    best = min(obs, key=lambda o: (abs((o.phenomenon_time - valid).total_seconds()), o.phenomenon_time))
    return float(best.value), best.phenomenon_time


def forecast_pairs(store: Any, *, tolerance_s: float = 300.0) -> tuple[Any, int]:
    """(DataFrame of :data:`PAIR_COLUMNS`, number of predictions left unpaired) of every finished forecast."""
    import pandas as pd

    rows, unpaired = [], 0
    for run in forecast_runs(store):
        if run.status != "done":
            continue
        issued = store.run_event_rows(run.id, FORECAST_EVENT, limit=1)
        if not issued:
            continue
        data = issued[0].data
        issue = parse_instant(data["issue_time"])
        for station, g in data.get("gauges", {}).items():
            thresholds = list((g.get("thresholds") or {}).values())
            for lead, level in zip(g["lead_s"], g["levels"], strict=True):
                valid = issue + timedelta(seconds=float(lead))
                hit = _nearest(store, g["datastream"], valid, tolerance_s)
                if hit is None:
                    unpaired += 1
                    continue
                rows.append({"run": run.id, "station": station, "datastream": g["datastream"],
                             "issue_time": data["issue_time"], "lead_s": float(lead),
                             "valid_time": valid.isoformat(), "predicted": float(level), "observed": hit[0],
                             "observed_time": hit[1].isoformat(),
                             "threshold": min(thresholds) if thresholds else math.nan})
    return pd.DataFrame(rows, columns=PAIR_COLUMNS), unpaired


def _scores(group: Any) -> dict[str, Any]:
    import numpy as np

    e = (group["predicted"] - group["observed"]).to_numpy(dtype=float)
    with_thr = group[np.isfinite(group["threshold"].to_numpy(dtype=float))]
    p = (with_thr["predicted"] >= with_thr["threshold"]).to_numpy()
    o = (with_thr["observed"] >= with_thr["threshold"]).to_numpy()
    hits, misses = int(np.sum(p & o)), int(np.sum(~p & o))
    false_alarms, negatives = int(np.sum(p & ~o)), int(np.sum(~p & ~o))
    return {"n": int(e.size), "bias": float(e.mean()), "mae": float(np.abs(e).mean()),
            "rmse": float(np.sqrt(np.mean(e ** 2))), "hits": hits, "misses": misses,
            "false_alarms": false_alarms, "correct_negatives": negatives,
            "pod": hits / (hits + misses) if hits + misses else math.nan,
            "far": false_alarms / (hits + false_alarms) if hits + false_alarms else math.nan}


def verification_table(pairs: Any, edges: tuple[float, ...] = LEAD_BUCKETS_S) -> Any:
    """Scores per gauge and lead time bucket, then over all gauges per bucket (module docstring)."""
    import pandas as pd

    if pairs.empty:
        return pd.DataFrame(columns=TABLE_COLUMNS)
    buckets = [lead_bucket(float(s), edges) for s in pairs["lead_s"]]
    pairs = pairs.assign(lead=[b[0] for b in buckets], lead_lo_s=[b[1] for b in buckets],
                         lead_hi_s=[b[2] for b in buckets])
    rows = []
    for station in [*sorted(pairs["station"].unique()), "all"]:
        sub = pairs if station == "all" else pairs[pairs["station"] == station]
        for (lead, lo, hi), group in sub.groupby(["lead", "lead_lo_s", "lead_hi_s"], sort=False):
            rows.append({"station": station, "lead": lead, "lead_lo_s": lo, "lead_hi_s": hi, **_scores(group)})
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    order = {s: k for k, s in enumerate([*sorted(pairs["station"].unique()), "all"])}
    return table.sort_values(["station", "lead_hi_s"], key=lambda c: c.map(order) if c.name == "station" else c,
                             kind="stable").reset_index(drop=True)


def verification_section(table: Any, *, unpaired: int, n_forecasts: int) -> str:
    """The table as an HTML ``<section>`` (numbers to 3 decimals, blanks where undefined)."""
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return "" if not math.isfinite(v) else f"{v:.3f}"
        return html.escape(str(v))

    cols = [c for c in TABLE_COLUMNS if c not in ("lead_lo_s", "lead_hi_s")]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{cell(r[c])}</td>" for c in cols) + "</tr>"
                   for _, r in table.iterrows())
    note = (f"<p>{n_forecasts} forecast(s); {unpaired} prediction(s) without an observation within the "
            "tolerance (not yet observed, or the gauge was silent). e = predicted − observed reading (m); "
            "crossings against each gauge's lowest threshold.</p>")
    return (f"<section><h2>Forecast verification</h2>{note}<table><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table></section>")


def verification_figure(table: Any) -> Any:
    """Bias and RMSE by lead time bucket: one line per gauge, "all" in black (a matplotlib Figure)."""
    from viz import plots as P

    with P.style():
        fig = P.new_figure(7.5, 3.2)
        axes = fig.subplots(1, 2, sharex=True)
        leads = list(table.sort_values("lead_hi_s", kind="stable")["lead"].drop_duplicates())
        x = {lead: k for k, lead in enumerate(leads)}  # every gauge on the same bucket positions
        for station, rows in table.groupby("station", sort=False):
            rows = rows.sort_values("lead_hi_s")
            style = {"color": "black", "linewidth": 2.0} if station == "all" else {"alpha": 0.7}
            for ax, col in zip(axes, ("bias", "rmse"), strict=True):
                ax.plot([x[lead] for lead in rows["lead"]], rows[col], marker="o", label=station, **style)
        for ax in axes:
            ax.set_xticks(range(len(leads)), leads, rotation=30, ha="right")
        axes[0].axhline(0.0, color="grey", linewidth=0.8)
        axes[0].set(title="bias (predicted − observed)", ylabel="m")
        axes[1].set(title="RMSE", ylabel="m")
        axes[1].legend(loc="best")
    return fig


def write_verification(store_dir: str | Path, out_dir: str | Path, *, tolerance_s: float = 300.0
                       ) -> dict[str, Any]:
    """Write ``verification.csv``/``.parquet``, ``pairs.csv`` and ``verification.html`` into ``out_dir``.

    Returns the paths by role, and the counts ``forecasts``, ``n_pairs`` and ``unpaired``.
    """
    from twin.cli.store_target import shown_target
    from twin.store import Store
    from viz.report import figure_html, report_page

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with Store.open_readonly(store_dir) as store:
        pairs, unpaired = forecast_pairs(store, tolerance_s=tolerance_s)
        n_forecasts = sum(r.status == "done" for r in forecast_runs(store))
    table = verification_table(pairs)
    paths = {"csv": out / "verification.csv", "parquet": out / "verification.parquet",
             "pairs": out / "pairs.csv", "html": out / "verification.html"}
    table.to_csv(paths["csv"], index=False)
    table.to_parquet(paths["parquet"], index=False)
    pairs.to_csv(paths["pairs"], index=False)
    sections = [verification_section(table, unpaired=unpaired, n_forecasts=n_forecasts)]
    if not table.empty:
        sections.append("<section><h2>By lead time</h2>" + figure_html(
            verification_figure(table), "bias and RMSE by lead time",
            "Each gauge's bias and RMSE per lead time bucket; all gauges together in black.") + "</section>")
    page = report_page("Forecast verification", f"store {html.escape(shown_target(store_dir))}", sections,
                       "Shenzhen Twin · twin forecast verify · this page loads nothing from the network")
    paths["html"].write_text(page, encoding="utf-8")
    return {**paths, "forecasts": n_forecasts, "n_pairs": int(len(pairs)), "unpaired": unpaired}


__all__ = ["LEAD_BUCKETS_S", "forecast_pairs", "lead_bucket", "verification_figure", "verification_section",
           "verification_table", "write_verification"]
