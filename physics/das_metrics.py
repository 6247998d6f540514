"""Scores of a DAS detector run against the simulator's ground truth: detection, false alarms, localisation,
confusion.

Definitions (issue 15's metrics):

- A truth event (a row of ``<stem>.truth.csv``) is **detected** when a reported event of any class other than
  ``train`` overlaps its time span (``[t_start_s − slack, t_end_s + slack]``) and lies within ``max_distance_m`` of
  it along the fibre (the distance to the segment between its ``channel`` and ``channel_end``: a moving source
  covers a stretch).
- **Detection rate**: detected / all, over the *target* classes (``drilling``, ``piling``, ``excavation``,
  ``intrusion``) whose ``snr_db`` is at least ``min_snr_db``; also given per class and for all SNRs.
- A **false alarm** is a reported event of an alerting class (not ``train`` or ``vehicle``, the classes the
  bridge's alerts ignore) that matches no target-class truth event by the same rule; the rate is per km of
  fibre per day of record.
- **Localisation error**: per detected target event, the distance (m) of the nearest matching report's chainage
  to the truth's location; median and 90th percentile.
- **Offset error**: per detected target event with a truth ``offset_m``, |estimated − true distance from the
  fibre| of its matching report with the largest energy (``offset_m``, :mod:`physics.das_offset`); median, p90.
- **False alarms named** (``false_alarm_list``): per false alarm, the report (class, onset, end, channel, SNR,
  energy) and, per truth class, the nearest truth event (along the fibre, as above) among those overlapping the
  report's time (± ``slack_s``): its id, channel(s), SNR, distance (m) and the seconds of overlap.
- **False alarms' upper bound**: the one-sided 95 % Poisson upper limit of the count (½·χ²₀.₉₅(2k + 2); 3.0 for
  k = 0) per km per day.
- **Confusion matrix**: truth class (rows, every class in the truth) × the class of the matching report with the
  largest energy (columns; ``missed`` when none; a train matches reports of any class, trains included).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

TARGET_CLASSES = ("drilling", "piling", "excavation", "intrusion")
BACKGROUND_CLASSES = ("train", "vehicle")


def events_frame(events: Iterable[Any]) -> pd.DataFrame:
    """A frame of reported events (``DasEvent`` objects or their ``as_row()`` dicts)."""
    rows = [e.as_row() if hasattr(e, "as_row") else dict(e) for e in events]
    cols = ["event_class", "confidence", "onset_s", "end_s", "channel", "chainage_m", "energy"]
    return pd.DataFrame(rows, columns=None if rows else cols)


def _distance_m(rep_ch: np.ndarray, lo: float, hi: float, dx: float) -> np.ndarray:
    a, b = min(lo, hi), max(lo, hi)
    return np.maximum(np.maximum(a - rep_ch, rep_ch - b), 0.0) * dx


def evaluate(events: Iterable[Any], truth: pd.DataFrame, *, n_channel: int, dx_m: float, duration_s: float,
             max_distance_m: float = 25.0, slack_s: float = 1.0, min_snr_db: float = 10.0) -> dict[str, Any]:
    """Detection rate, false alarms per km per day, localisation error and the confusion matrix.

    Parameters
    ----------
    events : iterable of DasEvent or dict
        The detector's reports.
    truth : DataFrame
        The truth table (``physics.das_io.read_truth``): ``class, t_start_s, t_end_s, channel, snr_db`` and
        optionally ``channel_end``.
    n_channel, dx_m : int, float
        The fibre (its length for the false-alarm rate, channel → metres).
    duration_s : float
        Length of the record (s).
    max_distance_m, slack_s, min_snr_db : float
        Matching distance, time slack and the SNR above which the detection target applies (module docstring).
    """
    rep = events_frame(events)
    tr = truth.reset_index(drop=True)
    ch_end = tr["channel_end"] if "channel_end" in tr else tr["channel"]
    n_rep = len(rep)
    rep_ch = rep["channel"].to_numpy(float) if n_rep else np.zeros(0)
    rep_t0 = rep["onset_s"].to_numpy(float) if n_rep else np.zeros(0)
    rep_t1 = rep["end_s"].to_numpy(float) if n_rep else np.zeros(0)
    rep_cls = rep["event_class"].to_numpy(str) if n_rep else np.zeros(0, str)
    rep_e = rep["energy"].to_numpy(float) if n_rep else np.zeros(0)
    rep_snr = (rep["snr_db"].to_numpy(float) if n_rep and "snr_db" in rep else np.full(n_rep, np.nan))
    rep_off = (pd.to_numeric(rep["offset_m"], errors="coerce").to_numpy(float) if n_rep and "offset_m" in rep
               else np.full(n_rep, np.nan))
    used_by_target = np.zeros(n_rep, bool)
    rows = []
    for i, t in tr.iterrows():
        overlap = (rep_t1 >= t["t_start_s"] - slack_s) & (rep_t0 <= t["t_end_s"] + slack_s)
        dist = _distance_m(rep_ch, float(t["channel"]), float(ch_end[i]), dx_m)
        near = overlap & (dist <= max_distance_m)
        cls = str(t["class"])
        match = near if cls == "train" else near & (rep_cls != "train")
        if cls in TARGET_CLASSES:
            used_by_target |= match
        k = np.flatnonzero(match)
        best = k[np.argmax(rep_e[k])] if k.size else -1
        got = rep_cls[best] if k.size else "missed"
        off_err = abs(rep_off[best] - float(t["offset_m"])) if k.size and "offset_m" in tr else np.nan
        err = float(dist[k].min()) if k.size else np.nan
        if k.size and float(t["channel"]) == float(ch_end[i]):  # a still source: the error of the nearest report
            err = float(np.abs(rep_ch[k] - float(t["channel"])).min() * dx_m)
        rows.append({"class": cls, "snr_db": float(t["snr_db"]), "detected": bool(k.size), "reported": got,
                     "error_m": err, "offset_err_m": off_err})
    res = pd.DataFrame(rows, columns=["class", "snr_db", "detected", "reported", "error_m", "offset_err_m"])
    target = res[res["class"].isin(TARGET_CLASSES)]
    above = target[target["snr_db"] >= min_snr_db]
    alerting = ~np.isin(rep_cls, BACKGROUND_CLASSES)
    fa_idx = np.flatnonzero(alerting & ~used_by_target)
    false_alarms = int(fa_idx.size)
    fa_list = [_name_false_alarm(j, rep_cls, rep_t0, rep_t1, rep_ch, rep_snr, rep_e, tr, ch_end, dx_m, slack_s)
               for j in fa_idx]
    km_day = n_channel * dx_m / 1000.0 * duration_s / 86400.0
    errs = target["error_m"].dropna().to_numpy()
    off = target["offset_err_m"].dropna().to_numpy()
    from scipy.stats import chi2

    fa_hi = 0.5 * float(chi2.ppf(0.95, 2 * false_alarms + 2))
    classes = sorted(set(res["class"]))
    cols = [*sorted(set(res["reported"]) - {"missed"}), "missed"]
    confusion = {c: {r: int(((res["class"] == c) & (res["reported"] == r)).sum()) for r in cols} for c in classes}
    return {
        "n_truth": len(res), "n_target": len(target), "n_target_above_snr": len(above), "n_reported": n_rep,
        "min_snr_db": min_snr_db, "max_distance_m": max_distance_m,
        "detection_rate": float(above["detected"].mean()) if len(above) else float("nan"),
        "detection_rate_all_snr": float(target["detected"].mean()) if len(target) else float("nan"),
        "detection_by_class": {c: float(g["detected"].mean()) for c, g in above.groupby("class")},
        "false_alarms": false_alarms,
        "false_alarm_list": fa_list,
        "false_alarms_per_km_day": false_alarms / km_day if km_day > 0 else float("nan"),
        "false_alarms_per_km_day_upper95": fa_hi / km_day if km_day > 0 else float("nan"),
        "offset_median_m": float(np.median(off)) if off.size else float("nan"),
        "offset_p90_m": float(np.percentile(off, 90)) if off.size else float("nan"),
        "localisation_median_m": float(np.median(errs)) if errs.size else float("nan"),
        "localisation_p90_m": float(np.percentile(errs, 90)) if errs.size else float("nan"),
        "confusion": confusion,
        "trains_reported_as_alerting": int(((res["class"] == "train") & ~res["reported"].isin(
            ["train", "vehicle", "missed"])).sum()),
        "per_event": res,
    }


def _name_false_alarm(j: int, cls: np.ndarray, t0: np.ndarray, t1: np.ndarray, ch: np.ndarray, snr: np.ndarray,
                      energy: np.ndarray, tr: pd.DataFrame, ch_end: pd.Series, dx: float,
                      slack_s: float) -> dict[str, Any]:
    """Report ``j`` (a false alarm) and, per truth class, the nearest truth event overlapping its time."""
    out: dict[str, Any] = {"class": str(cls[j]), "onset_s": round(float(t0[j]), 2), "end_s": round(float(t1[j]), 2),
                           "channel": round(float(ch[j]), 2), "snr_db": round(float(snr[j]), 2),
                           "energy": float(energy[j]), "nearest": {}}
    if tr.empty:
        return out
    a, b = tr["t_start_s"].to_numpy(float), tr["t_end_s"].to_numpy(float)
    overlap = np.minimum(b, t1[j] + slack_s) - np.maximum(a, t0[j] - slack_s)
    lo = np.minimum(tr["channel"].to_numpy(float), ch_end.to_numpy(float))
    hi = np.maximum(tr["channel"].to_numpy(float), ch_end.to_numpy(float))
    dist = np.maximum(np.maximum(lo - ch[j], ch[j] - hi), 0.0) * dx
    tcls = tr["class"].astype(str).to_numpy()
    for c in sorted(set(tcls)):
        k = np.flatnonzero((tcls == c) & (overlap >= 0))
        if not k.size:
            continue
        i = int(k[np.argmin(dist[k])])
        out["nearest"][c] = {"event_id": int(tr["event_id"].iloc[i]) if "event_id" in tr else i,
                             "channel": int(lo[i]) if lo[i] == hi[i] else [int(lo[i]), int(hi[i])],
                             "snr_db": round(float(tr["snr_db"].iloc[i]), 2), "distance_m": round(float(dist[i]), 1),
                             "overlap_s": round(float(overlap[i]), 1)}
    return out


def false_alarm_lines(fa_list: list[dict[str, Any]]) -> list[str]:
    """One printable line per named false alarm (``evaluate``'s ``false_alarm_list``) with its nearest truths."""
    lines = []
    for f in fa_list:
        near = "; ".join(f"{c} {v['distance_m']:g} m (ch {v['channel']}, {v['snr_db']:g} dB, overlap {v['overlap_s']:g} s)"
                         for c, v in sorted(f["nearest"].items(), key=lambda kv: kv[1]["distance_m"]))
        lines.append(f"{f['class']} {f['onset_s']:.1f}-{f['end_s']:.1f} s ch {f['channel']:.1f} {f['snr_db']:.1f} dB"
                     f" | nearest: {near or 'none overlapping'}")
    return lines


def confusion_table(confusion: dict[str, dict[str, int]]) -> list[list[str]]:
    """Rows of a printable confusion matrix (header first)."""
    cols = sorted({c for row in confusion.values() for c in row}, key=lambda c: (c == "missed", c))
    out = [["truth \\ reported", *cols]]
    for cls, row in confusion.items():
        out.append([cls, *(str(row.get(c, 0)) for c in cols)])
    return out


__all__ = ["BACKGROUND_CLASSES", "TARGET_CLASSES", "confusion_table", "evaluate", "events_frame", "false_alarm_lines"]
