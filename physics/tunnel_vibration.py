"""Construction-vibration forecast at metro tunnel linings: PPV per tunnel segment against its limit.

Sources (:func:`read_sources`) are points with a ``type`` in {blasting, piling, drilling, excavation}:

* **blasting**: ``charge_kg`` per delay; V = K·(Q^(1/3)/R)^α (GB 6722-2014) with K, α of the ground class;
* **continuous** (piling, drilling, excavation): a reference PPV ``v1_cm_s`` at ``r1_m`` and a dominant
  frequency ``f_hz`` (defaults by type: FTA 2018 Table 7-4 at 25 ft), attenuated by Bornitz (geometric
  spreading n, material damping a = π·f·η/c of the ground class).

Every default (ground classes, source types, limits) is in ``physics/tunnel_limits.toml`` with its
source and a ``verified`` flag. The distance R from a source to the lining is 3-D: the horizontal
distance to the tunnel axis, the depth of the axis below the source, minus the outer radius (clipped at
:data:`MIN_DISTANCE_M`: a source closer than that is reported in ``warnings``).

Per segment: the largest PPV over the active sources and which source gives it, that source's
dominant frequency, the limit of the chosen set (``operating`` or ``construction``) for that frequency,
and the largest ratio PPV/limit over the sources (each source against the limit at its own frequency).
Per source: its largest PPV at any lining, the safe distance for the limit at its frequency, and for
blasting the largest charge per delay at its actual distance.

The result is an :class:`xarray.Dataset` with dims ``segment`` and ``source``: the same object the run
pipeline passes to a run kind's ``write`` and ``layers`` (``physics/tunnel_run.py``), with units on
every variable; :func:`segments_frame` turns it into a GeoDataFrame.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from physics import vibration_laws as law
from physics.tunnel_geometry import (
    ALIGNMENT_NOTE,
    LIMITS_FILE,
    Tunnels,
    build_tunnels,
    horizontal_distance_to_segments,
)
from twin.errors import ValidationError

SOURCE_TYPES = ("blasting", "piling", "drilling", "excavation")
GROUNDS = ("hard_rock", "medium_rock", "soft_rock", "soil")
#: Ground class when a source gives none: blasting happens in rock, the other works mostly in soil.
DEFAULT_GROUND = {"blasting": "medium_rock", "piling": "soil", "drilling": "soil", "excavation": "soil"}
LIMIT_SETS = ("operating", "construction")
MIN_DISTANCE_M = 0.5
MAX_CHARGE_KG = 5000.0
_KNOWN = {"id", "name", "type", "charge_kg", "v1_cm_s", "r1_m", "f_hz", "ground", "depth_m", "start", "end",
          "note", "invented"}


def load_table(path: Path | str | None = None) -> dict[str, Any]:
    """The limits/ground/source table (``tunnel_limits.toml`` or a user's file of the same layout)."""
    p = Path(path) if path is not None else LIMITS_FILE
    if not p.exists():
        raise ValidationError(f"limits_file = {str(p)!r}: no such file")
    try:
        table = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ValidationError(f"limits_file = {str(p)!r}: not valid TOML ({e})") from None
    for key in ("limits", "ground", "sources"):
        if key not in table:
            raise ValidationError(f"limits_file = {str(p)!r}: no [{key}] table")
    return table


def limit_cm_s(f_hz: Any, bands: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """The PPV limit (cm/s) for dominant frequencies ``f_hz``: the band with f_min < f <= f_max."""
    f = np.asarray(f_hz, dtype=np.float64)
    out = np.full(f.shape, np.nan)
    for i, b in enumerate(bands):
        lo = -np.inf if i == 0 else b["f_min_hz"]
        hit = (f > lo) & (f <= b["f_max_hz"])
        out[hit] = b["ppv_cm_s"]
    if np.any(np.isnan(out)):
        raise ValidationError(f"f_hz = {f[np.isnan(out)].flat[0]!r}: in no frequency band of the limits")
    return out


# ------------------------------------------------------------------ sources
def read_sources(sources: Any, *, table: Mapping[str, Any] | None = None, crs: str | None = None) -> dict[str, Any]:
    """Validate construction sources and fill their defaults; every problem is reported at once.

    Parameters
    ----------
    sources : path, GeoJSON dict or list of dict
        A GeoJSON FeatureCollection of Points in lon/lat (WGS 84), or a list of dicts with ``lon``,
        ``lat`` (or ``x``, ``y`` in ``crs``) and the same properties: ``type`` (required), ``id``,
        ``charge_kg`` (blasting: kg per delay, required), ``v1_cm_s``, ``r1_m``, ``f_hz``, ``ground``
        (one of :data:`GROUNDS`), ``depth_m`` (below ground, default 0), ``start``/``end`` (ISO 8601
        with zone).
    table : mapping, optional
        :func:`load_table`'s result (default: the packaged table).
    crs : str, optional
        The metric CRS of the tunnels (default the working CRS).

    Returns
    -------
    dict of numpy arrays
        ``id, type, ground, x, y, lon, lat, depth_m, charge_kg, v1_cm_s, r1_m, f_hz, start, end`` (one
        entry per source; NaN / None where not applicable).

    Raises
    ------
    ValidationError
        Listing every bad feature with its index, the field and the value, before any computation.
    """
    from gis.crs import WGS84, WORKING_CRS, transformer

    table = table or load_table()
    crs = crs or WORKING_CRS
    items, origin = _items(sources)
    problems: list[str] = []
    rows: list[dict[str, Any]] = []
    for i, (props, xy, lonlat) in enumerate(items):
        rows.append(_source_row(i, props, xy, lonlat, table, problems))
    if not rows:
        problems.append("no sources")
    if problems:
        raise ValidationError(f"{origin}: {len(problems)} problem(s):\n  " + "\n  ".join(problems))
    to_m = transformer(WGS84, crs)
    to_ll = transformer(crs, WGS84)
    for r in rows:
        if r["lon"] is not None:
            r["x"], r["y"] = to_m.transform(r["lon"], r["lat"])
        else:
            r["lon"], r["lat"] = to_ll.transform(r["x"], r["y"])
    out: dict[str, Any] = {k: np.array([r[k] for r in rows], dtype=object) for k in ("id", "type", "ground")}
    for k in ("x", "y", "lon", "lat", "depth_m", "charge_kg", "v1_cm_s", "r1_m", "f_hz"):
        out[k] = np.array([np.nan if r[k] is None else r[k] for r in rows], dtype=np.float64)
    out["start"] = [r["start"] for r in rows]
    out["end"] = [r["end"] for r in rows]
    ids = list(out["id"])
    dup = sorted({s for s in ids if ids.count(s) > 1})
    if dup:
        raise ValidationError(f"{origin}: field 'id' = {dup[0]!r} is used by more than one source; give unique ids")
    return out


def _items(sources: Any) -> tuple[list[tuple[dict, tuple | None, tuple | None]], str]:
    """(properties, (x, y) or None, (lon, lat) or None) per source, and a name for messages."""
    origin = "sources"
    if isinstance(sources, (str, Path)):
        p = Path(sources)
        origin = f"sources file {str(p)!r}"
        if not p.exists():
            raise ValidationError(f"{origin}: no such file")
        try:
            sources = json.loads(p.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValidationError(f"{origin}: not valid JSON ({e})") from None
    if isinstance(sources, Mapping):
        if sources.get("type") != "FeatureCollection" or not isinstance(sources.get("features"), list):
            raise ValidationError(f"{origin}: type = {sources.get('type')!r}: need a GeoJSON FeatureCollection")
        out = []
        for f in sources["features"]:
            geom = (f or {}).get("geometry") or {}
            props = dict((f or {}).get("properties") or {})
            c = geom.get("coordinates")
            if geom.get("type") != "Point" or not isinstance(c, list) or len(c) < 2:
                props["_geom"] = f"geometry {geom.get('type')!r}: need a Point [lon, lat]"
                out.append((props, None, (math.nan, math.nan)))
            else:
                out.append((props, None, (c[0], c[1])))
        return out, origin
    if isinstance(sources, Sequence):
        out = []
        for s in sources:
            s = dict(s)
            if "lon" in s or "lat" in s:
                out.append((s, None, (s.pop("lon", math.nan), s.pop("lat", math.nan))))
            else:
                out.append((s, (s.pop("x", math.nan), s.pop("y", math.nan)), None))
        return out, origin
    raise ValidationError(f"sources = {type(sources).__name__}: give a GeoJSON file, a FeatureCollection or a list")


def _num(props: Mapping, key: str, i: int, problems: list[str], *, lo: float, hi: float,
         lo_open: bool = True) -> float | None:
    v = props.get(key)
    if v is None:
        return None
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    ok = ok and (v > lo if lo_open else v >= lo) and v <= hi
    if not ok:
        need = f"{'>' if lo_open else '>='} {lo:g} and <= {hi:g}"
        problems.append(f"feature {i}: field {key!r} = {v!r}: must be a number {need}")
        return None
    return float(v)


def _time(props: Mapping, key: str, i: int, problems: list[str]) -> datetime | None:
    v = props.get(key)
    if v is None:
        return None
    try:
        t = datetime.fromisoformat(str(v))
    except ValueError:
        t = None
    if t is None or t.tzinfo is None:
        problems.append(f"feature {i}: field {key!r} = {v!r}: give ISO 8601 with a zone, e.g. 2026-12-07T08:00+08:00")
        return None
    return t


def _source_row(i: int, props: dict, xy: tuple | None, lonlat: tuple | None, table: Mapping[str, Any],
                problems: list[str]) -> dict[str, Any]:
    n0 = len(problems)
    if "_geom" in props:
        problems.append(f"feature {i}: {props.pop('_geom')}")
    typ = props.get("type")
    if typ not in SOURCE_TYPES:
        problems.append(f"feature {i}: field 'type' = {typ!r}: must be one of {list(SOURCE_TYPES)}")
    ground = props.get("ground", DEFAULT_GROUND.get(typ, "soil"))
    if ground not in GROUNDS or ground not in table["ground"]:
        problems.append(f"feature {i}: field 'ground' = {ground!r}: must be one of {list(GROUNDS)}")
    row: dict[str, Any] = {"id": str(props.get("id", props.get("name", f"S{i}"))), "type": typ, "ground": ground,
                           "x": None, "y": None, "lon": None, "lat": None}
    if lonlat is not None:
        lon, lat = lonlat
        if not (isinstance(lon, (int, float)) and -180 <= lon <= 180 and isinstance(lat, (int, float))
                and -90 <= lat <= 90):
            problems.append(f"feature {i}: field 'coordinates' = [{lon!r}, {lat!r}]: need lon, lat in degrees (WGS 84)")
        else:
            row["lon"], row["lat"] = float(lon), float(lat)
    else:
        x, y = xy
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in (x, y)):
            problems.append(f"feature {i}: field 'x, y' = {x!r}, {y!r}: need metres in the working CRS (or lon, lat)")
        else:
            row["x"], row["y"] = float(x), float(y)
    row["depth_m"] = _num(props, "depth_m", i, problems, lo=0.0, hi=200.0, lo_open=False) or 0.0
    row["charge_kg"] = _num(props, "charge_kg", i, problems, lo=0.0, hi=MAX_CHARGE_KG)
    row["v1_cm_s"] = _num(props, "v1_cm_s", i, problems, lo=0.0, hi=1000.0)
    row["r1_m"] = _num(props, "r1_m", i, problems, lo=0.0, hi=1000.0)
    row["f_hz"] = _num(props, "f_hz", i, problems, lo=0.0, hi=10000.0)
    row["start"] = _time(props, "start", i, problems)
    row["end"] = _time(props, "end", i, problems)
    if row["start"] and row["end"] and row["end"] <= row["start"]:
        problems.append(f"feature {i}: field 'end' = {props['end']!r}: must be after start {props['start']!r}")
    if typ == "blasting":
        if props.get("charge_kg") is None:
            problems.append(f"feature {i}: field 'charge_kg' = None: a blasting source needs its charge per delay (kg)")
        for key in ("v1_cm_s", "r1_m"):
            if props.get(key) is not None:
                problems.append(f"feature {i}: field {key!r} = {props[key]!r}: not used for blasting (give charge_kg)")
    elif typ in SOURCE_TYPES:
        if props.get("charge_kg") is not None:
            problems.append(f"feature {i}: field 'charge_kg' = {props['charge_kg']!r}: only for blasting")
        d = table["sources"].get(typ, {})
        row["v1_cm_s"] = row["v1_cm_s"] if row["v1_cm_s"] is not None else d.get("v1_cm_s")
        row["r1_m"] = row["r1_m"] if row["r1_m"] is not None else d.get("r1_m")
    if typ in SOURCE_TYPES and row["f_hz"] is None:
        row["f_hz"] = table["sources"].get(typ, {}).get("f_hz")
    if len(problems) == n0 and typ in SOURCE_TYPES and None in (row["f_hz"],):
        problems.append(f"feature {i}: field 'f_hz' = None: the table has no default for type {typ!r}")
    return row


def active_mask(src: Mapping[str, Any], at: datetime | None) -> np.ndarray:
    """Sources working at time ``at`` (start <= at < end; open ends count); all of them when ``at`` is None."""
    n = len(src["id"])
    if at is None:
        return np.ones(n, dtype=bool)
    if at.tzinfo is None:
        raise ValidationError(f"at = {at.isoformat()!r}: give a time with a zone")
    return np.array([(s is None or s <= at) and (e is None or at < e) for s, e in zip(src["start"], src["end"],
                                                                                       strict=True)])


# ------------------------------------------------------------------ forecast
def lining_distance_m(tun: Tunnels, src: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """3-D distance (m) from every source to every segment's lining, ``(n_source, n_segment)``, and the horizontal one.

    R = sqrt(h² + (axis depth − source depth)²) − outer radius, with h the horizontal distance to the axis.
    """
    h = horizontal_distance_to_segments(tun, src["x"], src["y"])
    dz = tun.depth_m[None, :] - src["depth_m"][:, None]
    return np.sqrt(h * h + dz * dz) - tun.diameter_m[None, :] / 2, h


def ppv_matrix_cm_s(src: Mapping[str, Any], r_m: np.ndarray, table: Mapping[str, Any]) -> np.ndarray:
    """PPV (cm/s) of every source at distances ``r_m`` ``(n_source, ...)``: GB 6722 or Bornitz by type."""
    r = np.maximum(r_m, MIN_DISTANCE_M)
    out = np.empty_like(r)
    g = table["ground"]
    for i, (typ, ground) in enumerate(zip(src["type"], src["ground"], strict=True)):
        gp = g[ground]
        if typ == "blasting":
            out[i] = law.blast_ppv_cm_s(src["charge_kg"][i], r[i], gp["k"], gp["alpha"])
        else:
            a = law.material_damping_per_m(src["f_hz"][i], gp["eta"], gp["c_m_s"])
            out[i] = law.bornitz_ppv(src["v1_cm_s"][i], src["r1_m"][i], r[i], gp["n"], a)
    return out


def forecast_vibration(sources: Any, *, tunnels: Tunnels | None = None, lines: Sequence[str] | None = None,
                       limits: str = "operating", segment_m: float = 50.0, at: datetime | None = None,
                       limits_file: Path | str | None = None, city: Any = None,
                       progress: Callable[[float, float], None] | None = None):
    """Forecast the PPV at the lining of every tunnel segment from construction sources.

    Parameters
    ----------
    sources : path, GeoJSON dict or list of dict
        See :func:`read_sources` (validated before anything is computed).
    tunnels : Tunnels, optional
        Prebuilt tunnels (:func:`physics.tunnel_geometry.build_tunnels`); default: the city's metro lines
        (``lines`` of them, all by default) cut every ``segment_m`` m.
    limits : {"operating", "construction"}
        The limit set of the table (operating lines are held stricter).
    at : datetime, optional
        Only the sources working at this time (default: every source, the envelope of the plan).
    limits_file : path, optional
        A table of the same layout as ``physics/tunnel_limits.toml``.
    progress : callable(done, total), optional
        Called after each block of sources.

    Returns
    -------
    xarray.Dataset
        Dims ``segment`` and ``source``. Per segment: ``line``, ``chainage_start_m``, ``chainage_end_m``,
        ``depth_m``, ``diameter_m``, ``lon0/lat0/lon1/lat1``, ``ppv_cm_s``, ``source_index`` (-1: none
        active), ``distance_m``, ``f_hz``, ``limit_cm_s``, ``ratio``, ``over_limit``. Per source: its
        fields, ``nearest_line``, ``nearest_chainage_m``, ``offset_m``, ``in_zone``, ``min_distance_m``,
        ``ppv_max_cm_s``, ``source_limit_cm_s``, ``safe_distance_m``, ``max_charge_kg``, ``active``.
        Attrs: limit set, counts, the alignment note, warnings.
    """
    import xarray as xr

    from gis.crs import WGS84, transformer

    table = load_table(limits_file)
    if limits not in table["limits"]:
        raise ValidationError(f"limits = {limits!r}: choose one of {sorted(table['limits'])}")
    bands = table["limits"][limits]["bands"]
    if tunnels is None:
        tunnels = build_tunnels(city, select=lines, segment_m=segment_m)
    src = read_sources(sources, table=table, crs=tunnels.crs)
    act = active_mask(src, at)
    n_src, n_seg = len(src["id"]), tunnels.n_segments
    f_src = src["f_hz"]
    lim_src = limit_cm_s(f_src, bands)

    best_ppv = np.zeros(n_seg)
    best_src = np.full(n_seg, -1, dtype=np.int32)
    best_r = np.full(n_seg, np.nan)
    best_ratio = np.zeros(n_seg)
    ppv_max = np.zeros(n_src)
    r_min = np.zeros(n_src)
    h_min = np.zeros(n_src)
    warnings: list[str] = []
    block = 32
    for i0 in range(0, n_src, block):
        sl = slice(i0, min(n_src, i0 + block))
        sub = {k: v[sl] for k, v in src.items()}
        r, h = lining_distance_m(tunnels, sub)
        ppv = ppv_matrix_cm_s(sub, r, table)
        r_min[sl] = r.min(axis=1)
        h_min[sl] = h.min(axis=1)
        ppv_max[sl] = ppv.max(axis=1)
        live = act[sl][:, None]
        ppv_a = np.where(live, ppv, 0.0)
        j = np.argmax(ppv_a, axis=0)
        cand = ppv_a[j, np.arange(n_seg)]
        better = cand > best_ppv
        best_ppv[better] = cand[better]
        best_src[better] = j[better] + i0
        best_r[better] = r[j[better], np.flatnonzero(better)]
        best_ratio = np.maximum(best_ratio, (ppv_a / lim_src[sl][:, None]).max(axis=0))
        if progress is not None:
            progress(float(sl.stop), float(n_src))
    for k in np.flatnonzero(r_min < MIN_DISTANCE_M):
        warnings.append(f"source {src['id'][k]!r} is {r_min[k]:.2f} m from the lining (inside or touching it): "
                        f"its distance was clipped to {MIN_DISTANCE_M} m")
    has = best_src >= 0
    f_seg = np.where(has, f_src[np.maximum(best_src, 0)], np.nan)
    lim_seg = np.where(has, limit_cm_s(np.where(has, f_seg, 1.0), bands), limit_cm_s(np.full(n_seg, 1.0), bands))
    over = best_ratio > 1.0

    safe_d, max_q = _inversions(src, r_min, lim_src, table)
    near_line, near_c, near_off = tunnels.locate(src["x"], src["y"])
    in_zone = tunnels.in_protection_zone(src["x"], src["y"])

    to_ll = transformer(tunnels.crs, WGS84)
    x0, y0, x1, y1 = _segment_ends(tunnels)
    lon0, lat0 = to_ll.transform(x0, y0)
    lon1, lat1 = to_ll.transform(x1, y1)
    seg_vars = {
        "line": (tunnels.seg_line.astype(str), {"long_name": "metro line"}),
        "segment_index": (tunnels.seg_index.astype(np.int32), {"long_name": "segment along the line, 0 at its first station"}),
        "chainage_start_m": (tunnels.seg_c0, {"units": "m"}), "chainage_end_m": (tunnels.seg_c1, {"units": "m"}),
        "depth_m": (tunnels.depth_m, {"units": "m", "long_name": "depth of the tunnel axis"}),
        "diameter_m": (tunnels.diameter_m, {"units": "m", "long_name": "outer diameter"}),
        "lon0": (np.asarray(lon0), {"units": "degree_east"}), "lat0": (np.asarray(lat0), {"units": "degree_north"}),
        "lon1": (np.asarray(lon1), {"units": "degree_east"}), "lat1": (np.asarray(lat1), {"units": "degree_north"}),
        "ppv_cm_s": (best_ppv, {"units": "cm/s", "long_name": "largest PPV at the lining over the active sources"}),
        "source_index": (best_src, {"long_name": "source giving ppv_cm_s (-1: none)"}),
        "distance_m": (best_r, {"units": "m", "long_name": "distance from that source to the lining"}),
        "f_hz": (f_seg, {"units": "Hz", "long_name": "dominant frequency (of that source)"}),
        "limit_cm_s": (lim_seg, {"units": "cm/s", "long_name": f"limit ({limits}) at that frequency"}),
        "ratio": (best_ratio, {"units": "1", "long_name": "largest PPV/limit over the sources (each at its own f)"}),
        "over_limit": (over, {"long_name": "ratio > 1"}),
    }
    src_vars = {
        "source_id": (src["id"].astype(str), {}), "source_type": (src["type"].astype(str), {}),
        "ground": (src["ground"].astype(str), {}),
        "x": (src["x"], {"units": "m", "crs": tunnels.crs}), "y": (src["y"], {"units": "m", "crs": tunnels.crs}),
        "lon": (src["lon"], {"units": "degree_east"}), "lat": (src["lat"], {"units": "degree_north"}),
        "source_depth_m": (src["depth_m"], {"units": "m"}),
        "charge_kg": (src["charge_kg"], {"units": "kg", "long_name": "charge per delay (blasting)"}),
        "v1_cm_s": (src["v1_cm_s"], {"units": "cm/s", "long_name": "reference PPV (continuous)"}),
        "r1_m": (src["r1_m"], {"units": "m"}), "source_f_hz": (f_src, {"units": "Hz"}),
        "active": (act, {}),
        "nearest_line": (near_line.astype(str), {}), "nearest_chainage_m": (near_c, {"units": "m"}),
        "offset_m": (near_off, {"units": "m", "long_name": "horizontal distance to the nearest tunnel axis"}),
        "in_zone": (in_zone, {"long_name": "inside the protection zone"}),
        "min_distance_m": (r_min, {"units": "m", "long_name": "3-D distance to the nearest lining"}),
        "ppv_max_cm_s": (ppv_max, {"units": "cm/s", "long_name": "largest PPV of the source at any lining"}),
        "source_limit_cm_s": (lim_src, {"units": "cm/s", "long_name": f"limit ({limits}) at the source's f"}),
        "safe_distance_m": (safe_d, {"units": "m", "long_name": "distance to the lining where PPV = limit"}),
        "max_charge_kg": (max_q, {"units": "kg", "long_name": "largest charge per delay at min_distance_m"}),
    }
    ds = xr.Dataset({k: ("segment", v, a) for k, (v, a) in seg_vars.items()}
                    | {k: ("source", v, a) for k, (v, a) in src_vars.items()})
    ds.attrs.update(
        title="Construction-vibration forecast at metro tunnel linings", limits=limits,
        limits_title=table["limits"][limits].get("title", limits), crs=tunnels.crs,
        protection_m=tunnels.protection_m, alignment=ALIGNMENT_NOTE, at="" if at is None else at.isoformat(),
        n_segments=n_seg, n_sources=n_src, n_active=int(act.sum()), n_over_limit=int(over.sum()),
        max_ratio=float(best_ratio.max(initial=0.0)), warnings=json.dumps(warnings, ensure_ascii=False),
        lines=json.dumps(tunnels.lines, ensure_ascii=False),
    )
    return ds


def _inversions(src: Mapping[str, Any], r_min: np.ndarray, lim: np.ndarray,
                table: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Per source: the distance where its PPV equals the limit, and (blasting) the largest charge at r_min."""
    n = len(src["id"])
    safe = np.full(n, np.nan)
    qmax = np.full(n, np.nan)
    g = table["ground"]
    par = {k: np.array([g[name][k] for name in src["ground"]], dtype=np.float64)
           for k in ("k", "alpha", "n", "eta", "c_m_s")}
    blast = src["type"] == "blasting"
    if blast.any():
        b = blast
        safe[b] = law.blast_safe_distance_m(lim[b], src["charge_kg"][b], par["k"][b], par["alpha"][b])
        qmax[b] = law.blast_max_charge_kg(lim[b], np.maximum(r_min[b], MIN_DISTANCE_M), par["k"][b], par["alpha"][b])
    c = ~blast
    if c.any():
        a = law.material_damping_per_m(src["f_hz"][c], par["eta"][c], par["c_m_s"][c])
        safe[c] = law.bornitz_distance_m(lim[c], src["v1_cm_s"][c], src["r1_m"][c], par["n"][c], a)
    return safe, qmax


def _segment_ends(tun: Tunnels) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    x0, y0, x1, y1 = (np.empty(tun.n_segments) for _ in range(4))
    for key in tun.lines:
        rows = np.flatnonzero(tun.seg_line == key)
        x0[rows], y0[rows] = tun.chainage_to_point(key, tun.seg_c0[rows])
        x1[rows], y1[rows] = tun.chainage_to_point(key, tun.seg_c1[rows])
    return x0, y0, x1, y1


def segments_frame(ds: Any):
    """The segment variables of a forecast as a GeoDataFrame (LineStrings in WGS 84, start to end)."""
    import geopandas as gpd
    from shapely import linestrings

    cols = [k for k, v in ds.data_vars.items() if v.dims == ("segment",)]
    df = ds[cols].to_dataframe().reset_index(drop=True)
    coords = np.stack([np.column_stack([df["lon0"], df["lat0"]]), np.column_stack([df["lon1"], df["lat1"]])], axis=1)
    geom = linestrings(coords)
    sid = ds["source_id"].values
    df["source_id"] = [sid[i] if i >= 0 else "" for i in df["source_index"]]
    return gpd.GeoDataFrame(df.drop(columns=["lon0", "lat0", "lon1", "lat1"]), geometry=geom, crs="EPSG:4326")


def sources_frame(ds: Any):
    """The source variables of a forecast as a GeoDataFrame of points (WGS 84)."""
    import geopandas as gpd

    cols = [k for k, v in ds.data_vars.items() if v.dims == ("source",)]
    df = ds[cols].to_dataframe().reset_index(drop=True)
    return gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(df["lon"], df["lat"]), crs="EPSG:4326")
