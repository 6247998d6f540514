"""Threshold alerts from sensor readings → :class:`twin.events.Event`.

Rules live in configuration (``alerts.toml`` next to this module, with the
source of every number; pass another file or a dict to override). Per kind:

* **measured kinds** (rain, water level, GNSS, inclinometer, smoke, heat,
  fixed gas detectors): each reading updates the stream's history and the
  kind's *metrics* (table below); every rule compares one metric with a
  threshold and names a severity. The stream's level is the most severe rule
  that holds.
* **event kinds** (``das_event``, ``petrol_video_event``): the event class
  maps to a severity; events below ``min_confidence`` are dropped. A DAS
  event its sender places outside the tunnel's protection zone
  (``inside_zone = false``) is lowered to ``outside_zone``; its place
  (``line``, ``chainage_m``, ``lon``/``lat``) goes into the alert's data.

Hysteresis and dedup: one alert per stream per level. A stream raises an
event (kind ``"threshold_crossed"``) when its level rises above the active
level; the level stays active until every rule of that level or above has
fallen back past ``threshold ∓ deadband``; then an ``"alert_cleared"`` event
(severity info, data ``from``/``to``) lowers it. Event kinds raise one
event per (stream, class, position bucket) within ``dedup_s`` seconds.

Metrics (units as written in the TOML):

============================  ============================================================
kind                          metrics
============================  ============================================================
rain_gauge                    depth_mm (trailing ``window_h``; readings are depths in m per
                              interval, or intensities in m/s over the time since the
                              stream's previous reading)
water_level                   level_m
gnss_displacement             cumulative_mm, rate_mm_per_day, tangent_angle_deg;
                              forecast: time_to_failure_h
inclinometer                  change_mrad, rate_mrad_per_day; forecast: time_to_failure_h
smoke                         obscuration_pct_per_m
heat                          temperature_c
gas_lel / gas_h2s, gas_co /   lel_pct / ppm / o2_pct
gas_o2
============================  ============================================================

Windowed depths are running sums per stream and window (exact: the partial
sums of :func:`math.fsum`, so there is no drift and the total does not depend
on the order the readings arrived in). Levels follow the stream's newest
reading; a late (out-of-order) reading inside a window updates the sums and
re-evaluates the newest reading at once (the event then names the newest
reading and ``late_reading_time``), so it raises what the in-order stream
would have raised instead of waiting for the next reading.

Rates use the reading closest to ``t - window`` in the stream's history and
are undefined until the history spans half the window. The improved
tangential angle (Xu et al. 2009) is ``atan(rate / v)`` with ``v`` the
station's constant-velocity-stage rate (``v_mm_per_day``): 45° means the
slope moves at its usual pace, 80°/85° mark mid-acceleration / imminent
failure.

**Failure-time forecasts** (``time_to_failure_h``, GNSS and inclinometers):
the inverse-velocity forecast of :mod:`hardware_bridge.fusion.inverse_velocity`
(Fukuzono 1985) over the stream's trailing ``window_h`` hours, in hours from
the newest reading to the forecast failure time; undefined (the rule does not
hold) while the series gives no forecast (not accelerating, acceleration not
significant, poor fit, unbounded interval, too few velocities). Its parameters are the kind's ``[<kind>.inverse_velocity]``
table (a station's ``inverse_velocity`` table overrides it), defaults in
:data:`FORECAST_DEFAULTS`. Give every ``time_to_failure_h`` rule of a kind the
same ``window_h``. Forecast rules form their own *lane*: their level is kept
apart from the measured metrics' level, so a forecast coming within a lead
time is raised even when the stream's rate or angle level is already higher
(and the other way round). Their ``threshold_crossed`` message gives the
forecast failure time, its interval and the fit window; ``data["forecast"]``
holds the numbers and ``data["lane"] == "forecast"``. Their hysteresis is
the table's ``deadband_h`` (hours): a forecast level clears when the forecast
lies more than that beyond the rule's lead time, or when the series stops
accelerating (status ``not_accelerating``); a reading that gives no forecast
for another reason (poor fit, unbounded interval, too few velocities after a
gap) keeps the level, so a noisy series does not raise and clear by turns.

**A station's own thresholds** (:meth:`AlertEngine.set_thresholds`,
:meth:`AlertEngine.use_sensors`): the ``thresholds`` of a sensor of the
registry (:class:`twin.sensors.Sensor`; a scenario's ``[[sensors]]``), levels
by severity name in the sensor's unit (SI when none is given), e.g.
``{"advisory": 0.15, "warning": 0.3, "alarm": 0.5}`` m for a water level. They
rule on the kind's :data:`THRESHOLD_METRICS` metric (an amount of the
reading, converted to the metric's unit with the display table) with ``>=``
and replace the station's rising rules on that metric (its
``[<kind>.stations."<id>"]`` rules, else the kind's defaults); the other
rules of the station stay. Levels must rise with severity. Rain gauges (depths
over windows) and O2 (limits on both sides) take theirs from the alert config.

Event times: ``time_s`` is the clock's simulation time of the reading's
phenomenon time when a :class:`twin.clock.SimClock` is given, else POSIX
seconds (or the reading's own seconds).
"""

from __future__ import annotations

import bisect
import copy
import math
import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from hardware_bridge.display import DISPLAY, DisplayUnit, display_unit
from hardware_bridge.fusion import Reading, as_readings
from twin.errors import ConfigError, ValidationError
from twin.events import Event, Severity

CONFIG_PATH = Path(__file__).with_name("alerts.toml")

METRICS: dict[str, tuple[str, ...]] = {
    "rain_gauge": ("depth_mm",),
    "water_level": ("level_m",),
    "gnss_displacement": ("cumulative_mm", "rate_mm_per_day", "tangent_angle_deg"),
    "inclinometer": ("change_mrad", "rate_mrad_per_day"),
    "smoke": ("obscuration_pct_per_m",),
    "heat": ("temperature_c",),
    "gas_lel": ("lel_pct",),
    "gas_h2s": ("ppm",),
    "gas_co": ("ppm",),
    "gas_o2": ("o2_pct",),
}
#: Forecast metrics: model outputs, not amounts of the reading (so not in the kind's display
#: unit): the hours from the newest reading to the inverse-velocity failure time. Rules on them
#: form their own lane (module docstring).
FORECAST_METRICS: dict[str, tuple[str, ...]] = {
    "gnss_displacement": ("time_to_failure_h",),
    "inclinometer": ("time_to_failure_h",),
}
#: Inverse-velocity parameters used when a kind has no ``[<kind>.inverse_velocity]`` table
#: (see :func:`hardware_bridge.fusion.inverse_velocity.forecast_failure`).
FORECAST_DEFAULTS: dict[str, Any] = {"velocity_window_h": 6.0, "alpha": 2.0, "confidence": 0.95,
                                     "r2_min": 0.7, "min_points": 5, "min_window_points": 3,
                                     "deadband_h": 6.0, "weighted": False}
WINDOWED = {"depth_mm", "rate_mm_per_day", "tangent_angle_deg", "rate_mrad_per_day",
            "time_to_failure_h"}
#: The unit of every metric: the number a rule's ``threshold`` is written in. A metric that is
#: the reading itself, or an amount of it (a depth, a displacement, a tilt), is in the kind's
#: display unit (:mod:`hardware_bridge.display`, checked by the tests), so an alert reads like
#: the console's value.
METRIC_UNITS: dict[str, str] = {
    "depth_mm": "mm", "level_m": "m", "cumulative_mm": "mm", "rate_mm_per_day": "mm/d",
    "tangent_angle_deg": "°", "change_mrad": "mrad", "rate_mrad_per_day": "mrad/d",
    "obscuration_pct_per_m": "%/m", "temperature_c": "°C", "lel_pct": "%LEL", "ppm": "ppm",
    "o2_pct": "% vol", "time_to_failure_h": "h",
}
#: Metrics that are the newest reading in its display unit (converted with the display table).
READING_METRICS = frozenset({"level_m", "obscuration_pct_per_m", "temperature_c", "lel_pct", "ppm",
                             "o2_pct"})
OP_SYMBOLS = {">=": "≥", ">": ">", "<=": "≤", "<": "<"}
EVENT_KINDS = ("das_event", "petrol_video_event")
OPS = {">=": lambda v, t: v >= t, ">": lambda v, t: v > t,
       "<=": lambda v, t: v <= t, "<": lambda v, t: v < t}

#: The metric a sensor's own thresholds set, per kind (module docstring): an amount of the reading,
#: in the kind's display unit, so a threshold in the sensor's unit converts exactly. Rain gauges
#: (rules on depths over windows) and O2 (limits below and above) are left to the alert config.
THRESHOLD_METRICS: dict[str, str] = {
    "water_level": "level_m", "gnss_displacement": "cumulative_mm", "inclinometer": "change_mrad",
    "smoke": "obscuration_pct_per_m", "heat": "temperature_c", "gas_lel": "lel_pct", "gas_h2s": "ppm",
    "gas_co": "ppm",
}
#: Names of threshold levels: the severities of :class:`twin.events.Severity`, least severe first.
THRESHOLD_LEVELS: tuple[str, ...] = tuple(s.value for s in Severity)

__all__ = ["AlertEngine", "CONFIG_PATH", "FORECAST_DEFAULTS", "FORECAST_METRICS", "METRIC_UNITS", "Rule",
           "THRESHOLD_LEVELS", "THRESHOLD_METRICS", "crossing_message", "forecast_message", "load_config",
           "metric_text", "threshold_problems", "threshold_rules"]


def _display_in(kind: str, unit: str, si_unit: str | None = None) -> DisplayUnit | None:
    """The display entry of ``kind`` whose shown unit is ``unit`` (that of ``si_unit`` first:
    a rain gauge reporting intensities still sums depths in mm), or None."""
    d = display_unit(kind, si_unit)
    if d is not None and d.unit == unit:
        return d
    return next((e for (k, _), e in DISPLAY.items() if k == kind and e.unit == unit), None)


def metric_text(kind: str, metric: str, value: float, si_unit: str | None = None) -> str:
    """A metric's value with its unit: ``"35 ppm"``, ``"52.0 mm"``, ``"3.2 mm/d"``.

    Metrics in the kind's display unit (:data:`METRIC_UNITS` equal to the
    :mod:`hardware_bridge.display` unit) take its decimals; the others (rates,
    angles) three significant digits.
    """
    unit = METRIC_UNITS.get(metric, "")
    d = _display_in(kind, unit, si_unit)
    if d is not None and math.isfinite(value):
        text = f"{value:.{d.decimals}f}"
        if text.startswith("-") and float(text) == 0.0:
            text = text[1:]
    else:
        text = f"{value:.3g}"
    return f"{text} {unit}".strip()


def crossing_message(kind: str, where: str, rule: Rule, value: float, si_unit: str | None = None) -> str:
    """The text of a ``threshold_crossed`` alert, in the units operators read.

    ``"gas_co cs-01: 35 ppm ≥ 34.4 ppm (CO at 200 % of the PC-TWA)"``; windowed metrics
    name the window (``"rain_gauge RG1: 52.0 mm over 3 h ≥ 50 mm (...)"``) and metrics
    that are not the reading name themselves (``"rate_mm_per_day 24 h: 6.10 mm/d ≥ 5 mm/d"``).
    """
    unit = METRIC_UNITS.get(rule.metric, "")
    same = _display_in(kind, unit, si_unit) is not None
    win = f" over {rule.window_h:g} h" if rule.window_h else ""
    head = f"{kind} {where}: " + ("" if same else f"{rule.metric} ")
    thr = f"{rule.threshold:g} {unit}".strip()
    return (f"{head}{metric_text(kind, rule.metric, value, si_unit)}{win} "
            f"{OP_SYMBOLS.get(rule.op, rule.op)} {thr}" + (f" ({rule.label})" if rule.label else ""))


def _when(t: float, posix: bool) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M UTC") if posix else f"{t:.0f} s"


def forecast_data(f, unit: str, *, posix: bool) -> dict[str, Any]:
    """The numbers of a :class:`~hardware_bridge.fusion.inverse_velocity.Forecast` for an event
    (times ISO 8601 UTC when the readings are timed by datetimes, else seconds)."""
    def when(t):
        if not math.isfinite(t):
            return None
        return datetime.fromtimestamp(t, UTC).isoformat() if posix else float(t)

    h = 3600.0
    return {"method": f"inverse velocity (Fukuzono 1985; Voight alpha = {f.alpha:g})",
            "status": f.status, "failure_time": when(f.t_f), "interval": [when(f.t_lo), when(f.t_hi)],
            "confidence": f.confidence, "lead_h": f.lead_s / h,
            "lead_interval_h": [(f.t_lo - f.t_last) / h, (f.t_hi - f.t_last) / h],
            "se_h": f.se_s / h, "r2": f.r2, "n_fit": f.n_fit, "fit_start": when(f.fit_t0),
            "fit_end": when(f.fit_t1), "last_velocity": f.last_velocity * h,
            "velocity_unit": f"{unit}/h", "alpha": f.alpha}


def forecast_message(kind: str, where: str, rule: Rule, f, unit: str, *, posix: bool) -> str:
    """The text of a ``time_to_failure_h`` alert: the forecast time, its interval and the fit.

    ``"gnss_displacement SL1: failure forecast 2024-06-05 04:10 UTC (in 20.0 h) ≤ 24 h (...);
    95 % interval 2024-06-05 02:00 UTC – 2024-06-05 07:30 UTC; fit of 12 velocities
    2024-06-02 03:00 UTC – 2024-06-04 05:30 UTC, R² 0.97, last velocity 7.23 mm/h"``
    """
    lead = f.lead_s / 3600.0
    ahead = f"in {lead:.1f} h" if lead >= 0 else f"overdue by {-lead:.1f} h"
    return (f"{kind} {where}: failure forecast {_when(f.t_f, posix)} ({ahead}) "
            f"{OP_SYMBOLS.get(rule.op, rule.op)} {rule.threshold:g} h"
            + (f" ({rule.label})" if rule.label else "")
            + f"; {100 * f.confidence:g} % interval {_when(f.t_lo, posix)} – {_when(f.t_hi, posix)}"
            f"; fit of {f.n_fit} velocities {_when(f.fit_t0, posix)} – {_when(f.fit_t1, posix)}, "
            f"R² {f.r2:.2f}, last velocity {abs(f.last_velocity) * 3600.0:.3g} {unit}/h")


def load_config(path: str | os.PathLike | None = None) -> dict[str, Any]:
    """The alert configuration (the packaged ``alerts.toml`` by default)."""
    p = Path(path) if path is not None else CONFIG_PATH
    try:
        with open(p, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"alert config {p} does not exist: give an existing TOML file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"alert config {p} is not valid TOML: {exc}") from exc


@dataclass(frozen=True)
class Rule:
    """One threshold rule (see ``alerts.toml`` for the fields)."""

    metric: str
    threshold: float
    severity: Severity
    op: str = ">="
    window_h: float | None = None
    label: str = ""
    source: str = ""
    verified: bool = False
    assumption: str = ""

    def holds(self, value: float, margin: float = 0.0) -> bool:
        """Rule holds at ``value``; ``margin`` > 0 relaxes it by the deadband (for staying active)."""
        t = self.threshold - margin if self.op in (">=", ">") else self.threshold + margin
        return OPS[self.op](value, t)


def _rule(kind: str, where: str, rec: Mapping[str, Any]) -> Rule:
    def bad(msg: str) -> ConfigError:
        return ConfigError(f"alert config {where}: {msg}")

    if not isinstance(rec, Mapping):
        raise bad(f"rule {rec!r} must be a table")
    metric = rec.get("metric")
    allowed = (*METRICS.get(kind, ()), *FORECAST_METRICS.get(kind, ()))
    if metric not in allowed:
        raise bad(f"metric={metric!r} is not one of {allowed} for kind {kind!r}")
    thr = rec.get("threshold")
    if isinstance(thr, bool) or not isinstance(thr, int | float) or not math.isfinite(thr):
        raise bad(f"threshold={thr!r} must be a finite number")
    try:
        sev = Severity.coerce(rec.get("severity", ""))
    except Exception:
        raise bad(f"severity={rec.get('severity')!r} is not one of {[s.value for s in Severity]}") from None
    op = rec.get("op", ">=")
    if op not in OPS:
        raise bad(f"op={op!r} is not one of {list(OPS)}")
    win = rec.get("window_h")
    if metric in WINDOWED:
        if isinstance(win, bool) or not isinstance(win, int | float) or not win > 0:
            raise bad(f"metric {metric!r} needs window_h > 0 (hours), got {win!r}")
        win = float(win)
    elif win is not None:
        raise bad(f"metric {metric!r} takes no window_h (got {win!r})")
    source = str(rec.get("source", "")).strip()
    if not source:
        raise bad(f"rule {metric} {op} {thr} has no source: say where the number comes from")
    verified = bool(rec.get("verified", False))
    assumption = str(rec.get("assumption", "")).strip()
    if not verified and not assumption:
        raise bad(f"rule {metric} {op} {thr} is not verified and gives no assumption (reason)")
    return Rule(metric, float(thr), sev, op, win, str(rec.get("label", "")), source, verified, assumption)


def _threshold_value(kind: str, level: str, value: Any, unit: str) -> tuple[float | None, str]:
    """One threshold in its metric's unit, or None and what is wrong with it."""
    from hardware_bridge.schema import KINDS, Kind
    from hardware_bridge.units import to_si

    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None, "must be a finite number"
    si_unit = KINDS[Kind(kind)].quantities[0].si_unit
    try:
        si, si_unit = to_si(kind, float(value), unit or si_unit, field=f"thresholds.{level}")
    except ValidationError as exc:
        return None, str(exc)
    shown = display_unit(kind, si_unit).value(si)
    if THRESHOLD_METRICS[kind] in ("cumulative_mm", "change_mrad") and not shown > 0:
        return None, "must be more than 0: the metric is a change from the baseline, never below 0"
    return shown, ""


def threshold_problems(kind: str, thresholds: Mapping[str, Any], unit: str = "") -> list[tuple[str, Any, str]]:
    """Every problem of a sensor's own thresholds, as ``(level, value, what is wrong)``.

    ``level`` is ``""`` for a problem of the whole table (a kind that takes none). Levels are
    :data:`THRESHOLD_LEVELS`, values finite numbers in ``unit`` (the kind's SI unit when ``""``)
    within the kind's plausible range, rising with severity.
    """
    if not thresholds:
        return []
    if kind not in THRESHOLD_METRICS:
        why = ("its rules are depths over windows" if kind == "rain_gauge" else
               "its limits lie below and above" if kind == "gas_o2" else "no metric of it takes one")
        return [("", dict(thresholds), f"kind {kind!r} takes no sensor thresholds ({why}); kinds that do: "
                                       f"{sorted(THRESHOLD_METRICS)}. Set its rules in the alert config")]
    out: list[tuple[str, Any, str]] = []
    prev: tuple[str, float, Any] | None = None
    for level, value in thresholds.items():
        if level not in THRESHOLD_LEVELS:
            out.append((str(level), value, f"unknown level; use {list(THRESHOLD_LEVELS)}"))
    for level in THRESHOLD_LEVELS:  # least severe first
        if level not in thresholds:
            continue
        value = thresholds[level]
        shown, why = _threshold_value(kind, level, value, unit)
        if shown is None:
            out.append((level, value, why))
            continue
        if prev is not None and not shown > prev[1]:
            out.append((level, value, f"must be above {prev[0]} = {prev[2]!r}: levels rise with severity"))
        prev = (level, shown, value)
    return out


def threshold_rules(kind: str, station: str, thresholds: Mapping[str, Any], unit: str = "", *,
                    source: str = "") -> tuple[Rule, ...]:
    """The rules of a station's own thresholds (module docstring), least severe first.

    Raises
    ------
    ValidationError
        Listing every problem (:func:`threshold_problems`) with the level and the value.
    """
    problems = threshold_problems(kind, thresholds, unit)
    if problems:
        raise ValidationError(f"thresholds of {kind} sensor {station!r}: " + "; ".join(
            f"{'thresholds.' + lv if lv else 'thresholds'} = {v!r}: {why}" for lv, v, why in problems))
    metric = THRESHOLD_METRICS.get(kind, "")
    src = source or f"thresholds of sensor {station!r} in the sensor registry"
    return tuple(Rule(metric, _threshold_value(kind, lv, thresholds[lv], unit)[0], Severity(lv), ">=",
                      label=f"{lv} level of {station}", source=src, verified=False,
                      assumption="the station's own level, as given with the sensor")
                 for lv in THRESHOLD_LEVELS if lv in thresholds)


@dataclass
class _KindConf:
    kind: str
    rules: tuple[Rule, ...]
    deadband: float
    stations: dict[str, dict[str, Any]]
    station_rules: dict[str, tuple[Rule, ...]]
    classes: dict[str, Severity]
    min_confidence: float
    dedup_s: float
    position_bucket_m: float
    source: str
    forecast: dict[str, Any]
    station_forecast: dict[str, dict[str, Any]]
    outside_zone: Severity | None = None


def _forecast_params(where: str, base: Mapping[str, Any], table: Any) -> dict[str, Any]:
    """``base`` updated by an ``inverse_velocity`` table, each value checked (ConfigError names it)."""
    if not isinstance(table, Mapping):
        raise ConfigError(f"alert config {where} must be a table")
    out = dict(base)
    for key, val in table.items():
        if key in ("source", "assumption"):
            continue
        if key not in FORECAST_DEFAULTS:
            raise ConfigError(f"alert config {where}: unknown key {key!r}; use {sorted(FORECAST_DEFAULTS)}")
        if key == "weighted":
            if not isinstance(val, bool):
                raise ConfigError(f"alert config {where}: weighted={val!r} must be true or false")
            out[key] = val
            continue
        num = not isinstance(val, bool) and isinstance(val, int | float) and math.isfinite(val)
        ok = num and {
            "velocity_window_h": lambda v: v > 0, "alpha": lambda v: v > 1,
            "confidence": lambda v: 0 < v < 1, "r2_min": lambda v: 0 <= v <= 1,
            "min_points": lambda v: isinstance(v, int) and v >= 3,
            "min_window_points": lambda v: isinstance(v, int) and v >= 2,
            "deadband_h": lambda v: v >= 0,
        }[key](val)
        if not ok:
            allowed = {"velocity_window_h": "> 0 hours", "alpha": "> 1 (2 = Fukuzono)",
                       "confidence": "in (0, 1)", "r2_min": "in [0, 1]", "min_points": "an integer >= 3",
                       "min_window_points": "an integer >= 2", "deadband_h": ">= 0 hours"}[key]
            raise ConfigError(f"alert config {where}: {key}={val!r} must be {allowed}")
        out[key] = val
    return out


def _parse_config(cfg: Mapping[str, Any]) -> dict[str, _KindConf]:
    out: dict[str, _KindConf] = {}
    for kind, sec in cfg.items():
        if kind in ("version", "confined"):  # confined spaces: fusion.confined reads that table
            continue
        if kind not in METRICS and kind not in EVENT_KINDS:
            raise ConfigError(
                f"alert config: unknown kind [{kind}]; use one of {sorted([*METRICS, *EVENT_KINDS])}"
            )
        if not isinstance(sec, Mapping):
            raise ConfigError(f"alert config [{kind}] must be a table")
        if not sec.get("enabled", True):
            continue
        db = sec.get("deadband", 0.0)
        if isinstance(db, bool) or not isinstance(db, int | float) or not (db >= 0 and math.isfinite(db)):
            raise ConfigError(f"alert config [{kind}] deadband={db!r} must be a finite number >= 0")
        rules = tuple(_rule(kind, f"[{kind}].rules[{i}]", r) for i, r in enumerate(sec.get("rules", [])))
        stations = {str(k): dict(v) for k, v in dict(sec.get("stations", {})).items()}
        st_rules = {
            s: tuple(_rule(kind, f"[{kind}.stations.{s}].rules[{i}]", r) for i, r in enumerate(v["rules"]))
            for s, v in stations.items() if "rules" in v
        }
        classes: dict[str, Severity] = {}
        if kind in EVENT_KINDS:
            if not str(sec.get("source", "")).strip():
                raise ConfigError(f"alert config [{kind}] has no source for its class levels")
            if not sec.get("verified", False) and not str(sec.get("assumption", "")).strip():
                raise ConfigError(f"alert config [{kind}] is not verified and gives no assumption")
            for c, s in dict(sec.get("classes", {})).items():
                try:
                    classes[str(c)] = Severity.coerce(s)
                except Exception:
                    raise ConfigError(f"alert config [{kind}.classes] {c}={s!r} is not a severity") from None
        outside = None
        if "outside_zone" in sec:
            try:
                outside = Severity.coerce(sec["outside_zone"])
            except Exception:
                raise ConfigError(f"alert config [{kind}] outside_zone={sec['outside_zone']!r} is not a "
                                  "severity") from None
        mc = float(sec.get("min_confidence", 0.0))
        if not 0.0 <= mc <= 1.0:
            raise ConfigError(f"alert config [{kind}] min_confidence={mc!r} must lie in [0, 1]")
        fc = _forecast_params(f"[{kind}.inverse_velocity]", FORECAST_DEFAULTS, sec.get("inverse_velocity", {}))
        st_fc = {s: _forecast_params(f"[{kind}.stations.{s}.inverse_velocity]", fc, v["inverse_velocity"])
                 for s, v in stations.items() if "inverse_velocity" in v}
        out[kind] = _KindConf(kind, rules, float(db), stations, st_rules, classes, mc,
                              float(sec.get("dedup_s", 0.0)), float(sec.get("position_bucket_m", 0.0)),
                              str(sec.get("source", "")), fc, st_fc, outside)
    return out


def _msum_add(partials: list[float], x: float) -> None:
    """Add ``x`` to an exact sum kept as non-overlapping partials (Shewchuk 1997, as in
    :func:`math.fsum`); ``math.fsum(partials)`` is the correctly rounded total."""
    i = 0
    for y in partials:
        if abs(x) < abs(y):
            x, y = y, x
        hi = x + y
        lo = y - (hi - x)
        if lo:
            partials[i] = lo
            i += 1
        x = hi
    partials[i:] = [x]


class _Window:
    """Running sum of a stream's values with time in ``(newest - w, newest]``.

    ``lo`` is the index (into the stream's sorted history) of the first value in
    the window; the sum is exact (partials), so adding and removing values in any
    order gives the same total: no drift and no dependence on arrival order.
    """

    __slots__ = ("w", "lo", "partials")

    def __init__(self, w: float) -> None:
        self.w = w
        self.lo = 0
        self.partials: list[float] = []

    def total(self) -> float:
        return math.fsum(self.partials)


class _Plan:
    """Per-stream evaluation plan of a rule tuple (thresholds, deadbands and windows resolved)."""

    __slots__ = ("rules", "keep", "windows", "lanes")

    def __init__(self, rules: tuple[Rule, ...], deadband: float, forecast_deadband: float = 0.0) -> None:
        self.rules = rules
        self.keep = max((ru.window_h or 0.0 for ru in rules), default=0.0) * 3600.0
        # one running sum per distinct depth window (rules sharing a window share it)
        self.windows = sorted({ru.window_h * 3600.0 for ru in rules if ru.metric == "depth_mm"})
        steps = []
        forecast = {m for ms in FORECAST_METRICS.values() for m in ms}
        for ru in rules:
            upper = ru.op in (">=", ">")
            db = forecast_deadband if ru.metric in forecast else deadband
            hold = ru.threshold - db if upper else ru.threshold + db
            win = self.windows.index(ru.window_h * 3600.0) if ru.metric == "depth_mm" else -1
            steps.append((ru, win, ru.severity.rank, upper, ru.op in (">", "<"), ru.threshold, hold))
        # lane 0: measured metrics; lane 1: failure-time forecasts (their own level)
        self.lanes = (tuple(s for s in steps if s[0].metric not in forecast),
                      tuple(s for s in steps if s[0].metric in forecast))


class _Stream:
    __slots__ = ("times", "values", "baseline", "levels", "prev_t", "plan", "windows", "forecast")

    def __init__(self, plan: _Plan) -> None:
        self.times: list[float] = []
        self.values: list[float] = []  # rain: depth (m) of the interval ending at the time
        self.baseline: float | None = None
        self.levels: list[Severity | None] = [None, None]  # active level per lane (see _Plan)
        self.forecast: tuple[tuple, Any] | None = None  # (key, Forecast) of the newest reading
        self.prev_t: float | None = None
        self.plan = plan
        self.windows = [_Window(w) for w in plan.windows]

    @property
    def active(self) -> Severity | None:
        """The stream's level: the higher of its lanes' levels."""
        lv = [x for x in self.levels if x is not None]
        return max(lv, key=lambda x: x.rank) if lv else None

    def replan(self, plan: _Plan) -> None:
        """Switch to another rule plan, summing its windows afresh from the history."""
        self.plan = plan
        self.windows = [_Window(w) for w in plan.windows]
        for win in self.windows:
            if self.times:
                win.lo = bisect.bisect_right(self.times, self.times[-1] - win.w)
            for v in self.values[win.lo:]:
                _msum_add(win.partials, v)


class AlertEngine:
    """Evaluate readings against the alert rules (module docstring).

    Parameters
    ----------
    config : dict, path or None
        Parsed TOML (as :func:`load_config` returns), a TOML path, or None for
        the packaged ``alerts.toml``.
    clock : twin.clock.SimClock, optional
        Converts datetimes to the simulation seconds of :attr:`Event.time_s`.
    """

    def __init__(self, config: Mapping[str, Any] | str | os.PathLike | None = None, *, clock=None) -> None:
        if config is None or isinstance(config, str | os.PathLike):
            config = load_config(config)
        self.config = copy.deepcopy(dict(config))
        self.kinds = _parse_config(self.config)
        self.clock = clock
        self._streams: dict[str, _Stream] = {}
        self._last_event: dict[tuple, float] = {}
        # the config's own station rules (what a station goes back to), and the stations given thresholds
        self._config_station_rules = {k: dict(kc.station_rules) for k, kc in self.kinds.items()}
        self._own: dict[tuple[str, str], tuple[Rule, ...]] = {}

    # ---------------------------------------------------------------- public
    def rules_for(self, kind: str, station: str = "") -> tuple[Rule, ...]:
        """The rules applied to a stream of ``kind`` at ``station``."""
        kc = self.kinds.get(kind)
        if kc is None:
            return ()
        return kc.station_rules.get(station, kc.rules)

    def set_thresholds(self, kind: str, station: str, thresholds: Mapping[str, Any] | None, unit: str = "",
                       *, source: str = "") -> tuple[Rule, ...]:
        """Give ``station`` its own threshold levels (module docstring); returns its rules now.

        ``thresholds`` maps severity names to levels in ``unit`` (the kind's SI unit when
        ``""``); empty or None puts the station back on the config's rules. A kind the
        config switches off (``enabled = false``) stays off; a kind it does not name gets
        a table with no default rules and no deadband.

        Raises
        ------
        ValidationError
            Naming every bad level and its value (:func:`threshold_problems`).
        """
        rules = threshold_rules(kind, station, thresholds or {}, unit, source=source) if thresholds else ()
        kc = self.kinds.get(kind)
        if kc is None:
            if not rules or not dict(self.config.get(kind) or {}).get("enabled", True):
                return ()
            kc = self.kinds[kind] = _KindConf(kind, (), 0.0, {}, {}, {}, 0.0, 0.0, 0.0, "",
                                              dict(FORECAST_DEFAULTS), {})
            self._config_station_rules[kind] = {}
        configured = self._config_station_rules[kind]
        if rules:
            metric = THRESHOLD_METRICS[kind]
            base = configured.get(station, kc.rules)
            new = tuple(r for r in base if not (r.metric == metric and r.op in (">=", ">"))) + rules
            if kc.station_rules.get(station) != new:  # unchanged: keep the tuple (no stream re-plans)
                kc.station_rules[station] = new
            self._own[(kind, station)] = rules
        else:
            self._own.pop((kind, station), None)
            if station in configured:
                kc.station_rules[station] = configured[station]
            else:
                kc.station_rules.pop(station, None)
        return self.rules_for(kind, station)

    def use_sensors(self, sensors: Iterable[Any], *, source: str = "") -> list[str]:
        """Set the thresholds of every sensor of a registry (:class:`twin.sensors.Sensor`: ``id``,
        ``kind``, ``unit``, ``thresholds``); stations given thresholds before that no longer have
        any go back to the config's rules.

        Returns one line per sensor whose thresholds cannot be used (a kind that takes none,
        an unknown level, levels not rising...): that sensor keeps the config's rules.
        """
        problems: list[str] = []
        wanted: set[tuple[str, str]] = set()
        for s in sensors:
            thresholds = dict(getattr(s, "thresholds", None) or {})
            if not thresholds:
                continue
            kind, station = str(s.kind), str(s.id)
            try:
                self.set_thresholds(kind, station, thresholds, str(getattr(s, "unit", "") or ""), source=source)
            except ValidationError as exc:
                problems.append(f"{exc}; the station keeps the alert config's rules")
                self.set_thresholds(kind, station, None)
                continue
            wanted.add((kind, station))
        for kind, station in [k for k in self._own if k not in wanted]:
            self.set_thresholds(kind, station, None)
        return problems

    def active(self) -> dict[str, Severity]:
        """Active level per datastream (streams without an active alert are left out)."""
        return {k: s.active for k, s in self._streams.items() if s.active is not None}

    def evaluate(self, readings: Reading | Iterable[Reading] | Any) -> list[Event]:
        """Events raised by one reading or a window of readings (processed in time order)."""
        rs = as_readings(readings)
        rs.sort(key=lambda r: r.t)
        out: list[Event] = []
        for r in rs:
            out.extend(self._one(r))
        return out

    # --------------------------------------------------------------- helpers
    def _time_s(self, r: Reading) -> float:
        if isinstance(r.time, datetime) and self.clock is not None:
            return float(self.clock.seconds_at(r.time))
        return r.t

    def _event(self, r: Reading, kind: str, sev: Severity, message: str, data: dict) -> Event:
        base = {"kind": r.kind, "station": r.station, "datastream": r.datastream_id,
                "phenomenon_time": r.time.isoformat() if isinstance(r.time, datetime) else float(r.time)}
        return Event(time_s=self._time_s(r), kind=kind, source=r.datastream_id, severity=sev,
                     message=message, data={**base, **data})

    def _one(self, r: Reading) -> list[Event]:
        kc = self.kinds.get(r.kind)
        if kc is None:
            return []
        if r.kind in EVENT_KINDS:
            return self._discrete(r, kc)
        if r.value is None:
            return []
        return self._measured(r, kc)

    def _discrete(self, r: Reading, kc: _KindConf) -> list[Event]:
        res = r.result or {}
        if r.kind == "das_event":
            cls = res.get("class", res.get("event_class"))
        else:
            cls = res.get("violation")
        sev = kc.classes.get(str(cls)) if cls is not None else None
        if sev is None:
            return []
        conf = res.get("confidence")
        if conf is not None and float(conf) < kc.min_confidence:
            return []
        pos = res.get("position_m")
        bucket = None
        if pos is not None and kc.position_bucket_m > 0:
            bucket = int(math.floor(float(pos) / kc.position_bucket_m))
        key = (r.datastream_id, str(cls), bucket)
        t = r.t
        last = self._last_event.get(key)
        if last is not None and 0 <= t - last < kc.dedup_s:
            return []
        self._last_event[key] = t
        where = f" at {float(pos):.0f} m along the fibre" if pos is not None else ""
        if res.get("line") is not None and res.get("chainage_m") is not None:
            where += f" ({res['line']} chainage {float(res['chainage_m']):.0f} m)"
        if res.get("inside_zone") is False and kc.outside_zone is not None and kc.outside_zone.rank < sev.rank:
            sev = kc.outside_zone  # outside the protection zone: logged, not raised
            where += ", outside the protection zone"
        elif res.get("inside_zone") is True:
            where += ", inside the protection zone"
        site = res.get("station") or r.station or r.datastream_id
        what = "DAS event" if r.kind == "das_event" else "video violation"
        msg = f"{what} '{cls}' at {site}{where}" + (f" (confidence {float(conf):.2f})" if conf is not None else "")
        kind = "das_event" if r.kind == "das_event" else "video_violation"
        data = {"class": str(cls), "confidence": conf, "position_m": pos, "result": dict(res),
                "rule_source": kc.source}
        for k in ("line", "chainage_m", "lon", "lat", "offset_m", "inside_zone"):  # the place, when the sender gives it
            if res.get(k) is not None:
                data[k] = res[k]
        return [self._event(r, kind, sev, msg, data)]

    def _history(self, r: Reading, kc: _KindConf, rules: tuple[Rule, ...]) -> tuple[_Stream, int]:
        st = self._streams.get(r.datastream_id)
        fdb = float(kc.station_forecast.get(r.station, kc.forecast)["deadband_h"])
        if st is None:
            st = self._streams[r.datastream_id] = _Stream(_Plan(rules, kc.deadband, fdb))
        elif st.plan.rules is not rules:  # same datastream, other station's rules: re-plan
            st.replan(_Plan(rules, kc.deadband, fdb))
        t = r.t
        v = float(r.value)
        if r.kind == "rain_gauge":
            if r.unit == "m/s":
                v = v * (t - st.prev_t) if st.prev_t is not None and t > st.prev_t else 0.0
            st.prev_t = t if st.prev_t is None else max(st.prev_t, t)
        if st.baseline is None:
            scfg = kc.stations.get(r.station, {})
            b = scfg.get("baseline_m", scfg.get("baseline_rad"))
            st.baseline = float(b) if b is not None else v
        times, values = st.times, st.values
        old_newest = times[-1] if times else -math.inf
        k = bisect.bisect_right(times, t)
        times.insert(k, t)
        values.insert(k, v)
        if st.windows:
            newest = times[-1]
            for win in st.windows:
                if t > old_newest - win.w:  # inside the window (also when it is the newest)
                    _msum_add(win.partials, v)
                else:  # before the window: the window's first index moves up by one
                    win.lo += 1
                if newest > old_newest:  # the window slides: drop what fell out of it
                    cut, lo = newest - win.w, win.lo
                    while times[lo] <= cut:
                        _msum_add(win.partials, -values[lo])
                        lo += 1
                    win.lo = lo
        cut = bisect.bisect_left(times, times[-1] - st.plan.keep - 1.0) - 1  # keep one before the window
        if cut > 0:
            del times[:cut]
            del values[:cut]
            k -= cut
            for win in st.windows:  # everything cut lies before every window
                win.lo -= cut
        return st, k

    def _metric(self, r: Reading, rule: Rule, st: _Stream, k: int, station_cfg: dict) -> float | None:
        t, v = st.times[k], st.values[k]
        m = rule.metric
        if m == "depth_mm":
            if k == len(st.times) - 1:  # the newest reading: the running sum of its window
                return 1000.0 * st.windows[st.plan.windows.index(rule.window_h * 3600.0)].total()
            lo = bisect.bisect_right(st.times, t - rule.window_h * 3600.0)
            return 1000.0 * math.fsum(st.values[lo:k + 1])
        if m in READING_METRICS:
            # readings are SI (fusion.Reading); one without a unit is in the kind's SI unit
            d = display_unit(r.kind, r.unit or None) or display_unit(r.kind)
            return None if d is None else d.value(v)
        if m == "cumulative_mm":
            return 1000.0 * abs(v - st.baseline)
        if m == "change_mrad":
            return 1000.0 * abs(v - st.baseline)
        if m == "time_to_failure_h":
            f = self._forecast(r, rule, st, k)
            return f.lead_s / 3600.0 if f.ok else None
        # rates over the trailing window
        w = rule.window_h * 3600.0
        j = bisect.bisect_right(st.times, t - w) - 1  # last reading at or before t - w
        cands = [i for i in (j, j + 1) if 0 <= i < k]
        if not cands:
            return None
        i = min(cands, key=lambda i: abs(st.times[i] - (t - w)))
        dt = t - st.times[i]
        if dt < 0.5 * w or dt <= 0:
            return None
        rate = 1000.0 * abs(v - st.values[i]) / (dt / 86400.0)  # mm/d or mrad/d
        if m in ("rate_mm_per_day", "rate_mrad_per_day"):
            return rate
        if m == "tangent_angle_deg":
            v0 = station_cfg.get("v_mm_per_day")
            if v0 is None:
                return None
            return math.degrees(math.atan2(rate, float(v0)))
        return None  # pragma: no cover - metrics are validated at load

    def _forecast(self, r: Reading, rule: Rule, st: _Stream, k: int):
        """The inverse-velocity forecast at reading ``k`` over the rule's window (cached per
        newest reading, so the rules of one reading share it); displacement in display units."""
        from hardware_bridge.fusion.inverse_velocity import forecast_failure

        kc = self.kinds[r.kind]
        params = kc.station_forecast.get(r.station, kc.forecast)
        w = rule.window_h * 3600.0
        key = (st.times[k], k, len(st.times), w, id(params))
        if st.forecast is not None and st.forecast[0] == key:
            return st.forecast[1]
        lo = bisect.bisect_right(st.times, st.times[k] - w)
        d = display_unit(r.kind, r.unit or None) or display_unit(r.kind)
        scale = d.scale if d is not None else 1.0
        f = forecast_failure(
            st.times[lo:k + 1], scale * np.asarray(st.values[lo:k + 1]),
            velocity_window_s=params["velocity_window_h"] * 3600.0, fit_window_s=w,
            alpha=params["alpha"], confidence=params["confidence"], r2_min=params["r2_min"],
            min_points=params["min_points"], min_window_points=params["min_window_points"],
            weighted=params["weighted"])
        st.forecast = (key, f)
        return f

    def _measured(self, r: Reading, kc: _KindConf) -> list[Event]:
        rules = self.rules_for(r.kind, r.station)
        if not rules:
            return []
        st, k = self._history(r, kc, rules)
        last = len(st.times) - 1
        late = None
        if k != last:
            # a late reading: levels follow the newest time, so re-evaluate the newest
            # reading's metrics with it included (nothing changes if it lies before every window)
            if st.times[k] <= st.times[last] - st.plan.keep:
                return []
            late = r.time
            newest = st.times[last]
            when = datetime.fromtimestamp(newest, UTC) if isinstance(r.time, datetime) else newest
            r = replace(r, time=when, value=st.values[last])
            k = last
        scfg = kc.stations.get(r.station, {})
        totals = [w.total() for w in st.windows]
        out = []
        for lane, steps in enumerate(st.plan.lanes):
            if steps:
                ev = self._lane(r, st, k, scfg, lane, steps, totals, late)
                if ev is not None:
                    out.append(ev)
        return out

    def _lane(self, r: Reading, st: _Stream, k: int, scfg: dict, lane: int, steps: tuple,
              totals: list[float], late) -> Event | None:
        """Evaluate one lane's rules at the newest reading: the event raised or cleared, if any."""
        # the most severe rule that holds (ties: the larger exceedance, then the first rule)
        # and the most severe rule that still holds within the deadband
        now: tuple[Rule, float] | None = None
        now_key: tuple[int, float] = (-1, 0.0)
        hold_rank, lvl_hold = -1, None
        for ru, wi, rank, upper, strict, thr, thr_hold in steps:
            val = 1000.0 * totals[wi] if wi >= 0 else self._metric(r, ru, st, k, scfg)
            if val is None:
                continue
            if upper:
                hit = val > thr if strict else val >= thr
                held = val > thr_hold if strict else val >= thr_hold
            else:
                hit = val < thr if strict else val <= thr
                held = val < thr_hold if strict else val <= thr_hold
            if hit:
                key = (rank, val if upper else -val)
                if now is None or key > now_key:
                    now, now_key = (ru, val), key
            if held and rank > hold_rank:
                hold_rank, lvl_hold = rank, ru.severity
        active = st.levels[lane]
        if lane == 1 and now is None and lvl_hold is None and active is not None:
            f = st.forecast[1] if st.forecast is not None else None
            if f is None or f.status not in ("forecast", "not_accelerating"):
                return None  # no forecast this time (poor fit, gap, wide interval): keep the level
        rank = -1 if active is None else active.rank
        where = r.station or r.datastream_id
        extra = {"lane": "forecast"} if lane == 1 else {}
        if now is not None and now[0].severity.rank > rank:
            ru, val = now
            st.levels[lane] = ru.severity
            data = {"metric": ru.metric, "value": val, "unit": METRIC_UNITS[ru.metric],
                    "threshold": ru.threshold, "op": ru.op,
                    "window_h": ru.window_h, "label": ru.label, "rule_source": ru.source,
                    "verified": ru.verified, "assumption": ru.assumption, **extra}
            if lane == 1:
                f = self._forecast(r, ru, st, k)
                d = display_unit(r.kind, r.unit or None) or display_unit(r.kind)
                unit = d.unit if d is not None else r.unit
                msg = forecast_message(r.kind, where, ru, f, unit, posix=isinstance(r.time, datetime))
                data["forecast"] = forecast_data(f, unit, posix=isinstance(r.time, datetime))
            else:
                msg = crossing_message(r.kind, where, ru, val, r.unit or None)
            if late is not None:
                data["late_reading_time"] = late.isoformat() if isinstance(late, datetime) else late
            return self._event(r, "threshold_crossed", ru.severity, msg, data)
        if active is not None and (lvl_hold is None or lvl_hold.rank < active.rank):
            st.levels[lane] = lvl_hold
            to = "none" if lvl_hold is None else lvl_hold.value
            what = "failure-time forecast " if lane == 1 else ""
            return self._event(r, "alert_cleared", Severity.INFO,
                               f"{r.kind} {where}: {what}{active.value} cleared (now {to})",
                               {"from": active.value, "to": None if lvl_hold is None else lvl_hold.value,
                                **extra})
        return None
