"""The debrief of a drill: what was injected, what the bridge raised, what the trainees did, how fast.

:func:`collect` reads a drill's log from the store (:mod:`scenarios.drill`: ``drill_started``,
``drill_inject``) and the live events that followed it, up to the next drill's start:

* **alerts** — live events of severity advisory or above (the bridge's ``threshold_crossed``,
  a drill's ``road_lost`` / ``station_lost``);
* **actions** — acknowledgements (``alert_ack``, from the console's Acknowledge) and
  ``trainee_action`` events (the console's dispatch and evacuate, and forecast runs started).

For every inject played it finds the first matching action and its **reaction time**, the
time from the inject's actual instant to the action:

* ``acknowledge`` — the acknowledgement of the alert the inject raised: the first alert from
  the inject's datastream at or after the inject (a ``sensor_value``), or the inject's own
  event (``road_lost``, ``station_lost``);
* ``dispatch`` — the first dispatch to the incident the inject created (``data.incident_id``
  is the incident's event id);
* ``evacuate`` — the first evacuation ordered at or after the inject;
* ``forecast`` — the first forecast run started from the console at or after the inject.

Reaction times are given in wall seconds and on the drill's clock (wall seconds times the
speed the drill was played at). Each target of the drill is then ``met`` (its action came
within the limit on its clock), ``missed`` (later, or never: ``no action``) or ``not played``.

:func:`write_debrief` writes ``debrief.json``, ``timeline.csv`` and ``debrief.html`` (offline:
inline CSS and an inline SVG timeline, nothing fetched).
"""

from __future__ import annotations

import csv
import html
import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scenarios.drill import DRILL_ENDED, DRILL_INJECT, DRILL_STARTED
from scenarios.schema import format_duration
from twin.errors import ValidationError

ACK_KIND = "alert_ack"
ACTION_KIND = "trainee_action"
ALERT_SEVERITIES = ("advisory", "warning", "alarm")
#: An alert stamped this much before its inject still counts (the store's and the player's clocks agree
#: on one machine; the margin covers rounding of the stored text).
CLOCK_SLACK_S = 1.0


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


@dataclass
class Debrief:
    """A drill's debrief (see the module docstring); :meth:`to_json` is ``debrief.json``."""

    drill: dict[str, Any]
    injects: list[dict[str, Any]]
    targets: list[dict[str, Any]]
    timeline: list[dict[str, Any]]
    kpis: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"drill": self.drill, "kpis": self.kpis, "targets": self.targets, "injects": self.injects,
                "timeline": self.timeline}


# ----------------------------------------------------------------------------- reading the store
def drill_ids(store: Any) -> list[str]:
    """Ids of the drills logged in the store, oldest first."""
    return [e.data.get("drill") for e in store.event_rows_after(0, kinds=[DRILL_STARTED]) if e.run_id is None]


def collect(store: Any, drill_id: str | None = None) -> Debrief:
    """The debrief of drill ``drill_id`` (default: the newest drill) from an open store.

    Raises
    ------
    ValidationError
        When the store has no drill, or none with that id (naming the ones it has).
    """
    starts = [e for e in store.event_rows_after(0, kinds=[DRILL_STARTED]) if e.run_id is None]
    if not starts:
        raise ValidationError(f"no drill in the store {store.root}: play one first (twin drill run DRILL.toml "
                              "--store ...)")
    if drill_id is None:
        start = starts[-1]
    else:
        found = [e for e in starts if e.data.get("drill") == drill_id]
        if not found:
            raise ValidationError(f"drill={drill_id!r} is not in the store {store.root}; drills there: "
                                  f"{[e.data.get('drill') for e in starts]}")
        start = found[0]
    later = [e.id for e in starts if e.id > start.id]
    rows = [e for e in store.event_rows_after(start.id)
            if e.run_id is None and (not later or e.id < later[0])]
    return build(start, rows)


def build(start: Any, rows: list[Any]) -> Debrief:
    """The debrief from the ``drill_started`` row and the live rows after it (store rows, id order)."""
    plan = dict(start.data)
    did = plan.get("drill")
    t0 = _when(plan.get("started") or start.wall_time)
    speed = float(plan.get("speed") or 1.0)
    logs = [e for e in rows if e.kind == DRILL_INJECT and e.data.get("drill") == did]
    ended = next((e for e in rows if e.kind == DRILL_ENDED and e.data.get("drill") == did), None)
    alerts = [e for e in rows if e.severity in ALERT_SEVERITIES and e.kind != ACK_KIND]
    acks = [e for e in rows if e.kind == ACK_KIND]
    actions = [e for e in rows if e.kind == ACTION_KIND]
    injects = [_inject_row(e.data, alerts, acks, actions, t0, speed) for e in logs]
    targets = [_verdict(t, injects) for t in plan.get("targets", [])]
    drill = {k: plan.get(k) for k in ("drill", "name", "title", "scenario", "scenario_hash", "speed",
                                      "start_at_s", "started", "file")}
    drill["ended"] = ended.data.get("status") if ended is not None else "running"
    timeline = _timeline(t0, speed, float(plan.get("start_at_s") or 0.0), logs, alerts, acks, actions)
    return Debrief(drill, injects, targets, timeline, _kpis(injects, targets, alerts, acks, actions))


def _since(t0: datetime, when: str, speed: float) -> tuple[float, float]:
    s = (_when(when) - t0).total_seconds()
    return round(s, 3), round(s * speed, 3)


def _reaction(ev: Any, since: datetime, speed: float, what: str) -> dict[str, Any]:
    wall = round((_when(ev.wall_time) - since).total_seconds(), 3)
    return {"action": what, "event_id": ev.id, "at": ev.wall_time, "by": ev.data.get("by"),
            "wall_s": wall, "drill_s": round(wall * speed, 3)}


def _inject_row(log: dict, alerts: list, acks: list, actions: list, t0: datetime, speed: float) -> dict[str, Any]:
    row = {k: log.get(k) for k in ("position", "kind", "what", "note", "offset_s", "status", "planned_at",
                                   "actual_at", "lag_s", "datastream", "event_id")}
    row["alert"] = None
    row["reactions"] = {}
    if log.get("status") != "played":
        return row
    at = _when(log["actual_at"])
    alert = _alert_of(log, alerts, at)
    if alert is not None:
        row["alert"] = {"event_id": alert.id, "kind": alert.kind, "severity": alert.severity,
                        "message": alert.message, "at": alert.wall_time,
                        "latency_s": round((_when(alert.wall_time) - at).total_seconds(), 3)}
        ack = next((a for a in acks if a.data.get("alert_id") == alert.id), None)
        if ack is not None:
            row["reactions"]["acknowledge"] = _reaction(ack, at, speed, "acknowledge")
    if log.get("kind") == "incident":
        disp = next((a for a in actions if a.data.get("action") == "dispatch"
                     and a.data.get("incident_id") == log.get("event_id")), None)
        if disp is not None:
            row["reactions"]["dispatch"] = _reaction(disp, at, speed, "dispatch")
    for what in ("evacuate", "forecast"):
        first = next((a for a in actions if a.data.get("action") == what and _when(a.wall_time) >= at), None)
        if first is not None:
            row["reactions"][what] = _reaction(first, at, speed, what)
    return row


def _alert_of(log: dict, alerts: list, at: datetime) -> Any:
    """The alert an inject raised: its own event, or the first alert from its datastream after it."""
    if log.get("event_id") is not None:
        return next((a for a in alerts if a.id == log["event_id"]), None)
    ds = log.get("datastream")
    return next((a for a in alerts if ds is not None and a.source == ds
                 and (_when(a.wall_time) - at).total_seconds() >= -CLOCK_SLACK_S), None)


def _verdict(target: dict, injects: list[dict]) -> dict[str, Any]:
    out = {k: target.get(k) for k in ("name", "title", "inject", "action", "within_s", "clock")}
    inj = next((i for i in injects if i["position"] == target.get("inject")), None)
    if inj is None or inj["status"] != "played":
        return out | {"measured_s": None, "verdict": "not played"}
    react = inj["reactions"].get(target["action"])
    if react is None:
        return out | {"measured_s": None, "verdict": "missed", "why": "no action"}
    measured = react["wall_s"] if target.get("clock") == "wall" else react["drill_s"]
    met = measured <= float(target["within_s"])
    return out | {"measured_s": measured, "by": react.get("by"), "verdict": "met" if met else "missed",
                  "why": "" if met else "too late"}


def _kpis(injects: list, targets: list, alerts: list, acks: list, actions: list) -> dict[str, Any]:
    def median(xs: list[float]) -> float | None:
        xs = sorted(xs)
        if not xs:
            return None
        m = len(xs) // 2
        return xs[m] if len(xs) % 2 else (xs[m - 1] + xs[m]) / 2

    per_action = {}
    for what in ("acknowledge", "dispatch", "evacuate", "forecast"):
        times = [i["reactions"][what]["drill_s"] for i in injects if what in i["reactions"]]
        per_action[what] = {"n": len(times), "median_drill_s": median(times)}
    return {"injects_played": sum(i["status"] == "played" for i in injects),
            "alerts": len(alerts), "acknowledgements": len(acks),
            "actions": len(actions), "reactions": per_action,
            "targets": len(targets), "targets_met": sum(t["verdict"] == "met" for t in targets),
            "targets_missed": sum(t["verdict"] == "missed" for t in targets)}


def _timeline(t0: datetime, speed: float, start_at: float, logs: list, alerts: list, acks: list,
              actions: list) -> list[dict]:
    """Injects, alerts and actions in time order: wall seconds since the drill started, and the scenario's
    time (``scenario_s``: the offset from the scenario's start, on the drill's clock)."""
    rows = []
    for e in logs:
        if e.data.get("status") == "played":
            rows.append(("inject", e.data["actual_at"], f"#{e.data['position']} {e.data['kind']}: "
                         f"{e.data.get('what', '')}", "", e.id))
    rows += [("alert", a.wall_time, f"{a.severity} {a.kind} from {a.source}: {a.message}", "", a.id)
             for a in alerts]
    rows += [("action", a.wall_time, f"acknowledge alert {a.data.get('alert_id')}", a.data.get("by") or "", a.id)
             for a in acks]
    rows += [("action", a.wall_time, _action_text(a.data), a.data.get("by") or "", a.id) for a in actions]
    out = []
    for kind, when, what, by, eid in sorted(rows, key=lambda r: (_when(r[1]), r[4])):
        wall_s, drill_s = _since(t0, when, speed)
        out.append({"type": kind, "at": when, "wall_s": wall_s, "scenario_s": round(start_at + drill_s, 3),
                    "what": what, "by": by, "event_id": eid})
    return out


def _action_text(d: dict) -> str:
    a = d.get("action")
    if a == "dispatch":
        return f"dispatch {d.get('units', 1)} {d.get('unit_type')} to incident {d.get('incident_id')}"
    if a == "evacuate":
        return f"evacuate {', '.join(d.get('districts') or [])}"
    if a == "forecast":
        return f"start a {d.get('kind')} forecast (run {d.get('run_id')})"
    return str(a)


# ----------------------------------------------------------------------------- writing
def write_debrief(debrief: Debrief, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write ``debrief.json``, ``timeline.csv`` and ``debrief.html`` into ``out_dir``; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "debrief.json", "csv": out / "timeline.csv", "html": out / "debrief.html"}
    paths["json"].write_text(json.dumps(debrief.to_json(), indent=2, ensure_ascii=False), encoding="utf-8")
    with paths["csv"].open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=["at", "wall_s", "scenario_s", "type", "what", "by", "event_id"])
        w.writeheader()
        w.writerows(debrief.timeline)
    paths["html"].write_text(render_html(debrief), encoding="utf-8")
    return paths


def _fmt_s(s: float | None) -> str:
    if s is None:
        return "–"
    return f"{s:.1f} s" if abs(s) < 120 else f"{s / 60:.1f} min"


_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left;
vertical-align:top}th{background:#f4f4f4}.met{color:#1a7f37;font-weight:600}.missed{color:#c62828;font-weight:600}
.notplayed{color:#777}.kpi{display:inline-block;margin:0 18px 8px 0}.kpi b{font-size:18px;display:block}
.inject{fill:#1f77b4}.alert{fill:#d62728}.action{fill:#2ca02c}svg text{font-size:11px;fill:#333}
"""


def render_html(d: Debrief) -> str:
    """The offline debrief page."""
    e = html.escape
    k = d.kpis
    kpis = "".join(f'<span class="kpi"><b>{e(str(v))}</b>{e(label)}</span>' for label, v in (
        ("injects played", k["injects_played"]), ("alerts", k["alerts"]), ("trainee actions",
         k["acknowledgements"] + k["actions"]), ("targets met", f"{k['targets_met']} / {k['targets']}")))
    trows = "".join(
        f"<tr><td>{e(t['title'] or t['name'])}</td><td>#{t['inject']}</td><td>{e(t['action'])}</td>"
        f"<td>{_fmt_s(t['within_s'])} ({e(t['clock'])})</td><td>{_fmt_s(t['measured_s'])}</td>"
        f"<td>{e(t.get('by') or '')}</td><td class=\"{t['verdict'].replace(' ', '')}\">{e(t['verdict'])}"
        f"{(' (' + e(t['why']) + ')') if t.get('why') else ''}</td></tr>" for t in d.targets)
    irows = "".join(_inject_html(i) for i in d.injects)
    lrows = "".join(f"<tr><td>{e(_clock(r['at']))}</td><td>{_fmt_s(r['wall_s'])}</td>"
                    f"<td>{e(format_duration(round(r['scenario_s'])))}</td>"
                    f"<td>{e(r['type'])}</td><td>{e(r['what'])}</td><td>{e(r['by'])}</td></tr>" for r in d.timeline)
    dr = d.drill
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Debrief — {e(str(dr.get('title')))}</title>
<style>{_CSS}</style></head><body>
<h1>Debrief: {e(str(dr.get('title')))}</h1>
<p>Drill <code>{e(str(dr.get('drill')))}</code> of scenario <code>{e(str(dr.get('scenario')))}</code>, started
{e(str(dr.get('started')))} at {e(f"{dr.get('speed') or 1:g}")}× real time ({e(str(dr.get('ended')))}).
Reaction times run from the inject's actual instant to the first matching action; the drill clock is wall
time × the speed.</p>
<div>{kpis}</div>
<h2>Targets</h2>
<table><tr><th>target</th><th>inject</th><th>action</th><th>within</th><th>measured</th><th>by</th>
<th>verdict</th></tr>{trows}</table>
<p>Measured on the target's clock: drill (wall × speed) or wall.</p>
<h2>Injects and reactions</h2>
<table><tr><th>#</th><th>inject</th><th>played</th><th>alert raised</th><th>acknowledged</th><th>dispatched</th>
<th>evacuation</th><th>forecast</th></tr>{irows}</table>
<h2>Timeline</h2>
{_svg(d.timeline)}
<table><tr><th>at (UTC)</th><th>since start</th><th>scenario time</th><th>type</th><th>what</th><th>by</th></tr>
{lrows}</table>
</body></html>
"""


def _clock(text: str) -> str:
    """``hh:mm:ss.s`` of a stored UTC instant."""
    t = _when(text)
    return f"{t:%H:%M:%S}.{t.microsecond // 100_000}"


def _inject_html(i: dict) -> str:
    e = html.escape
    if i["status"] != "played":
        return (f"<tr><td>{i['position']}</td><td>{e(i['kind'])}: {e(i.get('what') or '')}</td>"
                f"<td class=\"notplayed\">{e(str(i['status']))}</td>{'<td></td>' * 5}</tr>")
    a = i["alert"]
    alert = "–" if a is None else f"{e(a['severity'])} {e(a['kind'])} after {_fmt_s(a['latency_s'])}"

    def cell(what: str) -> str:
        r = i["reactions"].get(what)
        return "–" if r is None else f"{_fmt_s(r['drill_s'])} by {e(str(r.get('by') or '?'))}"

    return (f"<tr><td>{i['position']}</td><td>{e(i['kind'])}: {e(i.get('what') or '')}</td>"
            f"<td>{e(_clock(i['actual_at']))} (lag {_fmt_s(i['lag_s'])})</td><td>{alert}</td>"
            f"<td>{cell('acknowledge')}</td><td>{cell('dispatch')}</td><td>{cell('evacuate')}</td>"
            f"<td>{cell('forecast')}</td></tr>")


def _svg(timeline: list[dict], width: int = 1000) -> str:
    """Three lanes (injects, alerts, actions) of dots on the wall-time axis."""
    if not timeline:
        return "<p>Nothing happened.</p>"
    t_max = max(max(r["wall_s"] for r in timeline), 1.0)
    lanes = {"inject": 30, "alert": 60, "action": 90}
    x = lambda s: 110 + (width - 140) * max(s, 0.0) / t_max  # noqa: E731 - a scale
    parts = [f'<text x="4" y="{y + 4}">{name}s</text><line x1="110" x2="{width - 30}" y1="{y}" y2="{y}" '
             f'stroke="#ccc"/>' for name, y in lanes.items()]
    for r in timeline:
        parts.append(f'<circle class="{r["type"]}" cx="{x(r["wall_s"]):.1f}" cy="{lanes[r["type"]]}" r="5">'
                     f'<title>{html.escape(r["what"])}</title></circle>')
    parts.append(f'<text x="110" y="118">0 s</text><text x="{width - 80}" y="118">{_fmt_s(t_max)} (wall)</text>')
    return f'<svg width="{width}" height="125" role="img">{"".join(parts)}</svg>'


__all__ = ["ACTION_KIND", "Debrief", "build", "collect", "drill_ids", "render_html", "write_debrief"]
