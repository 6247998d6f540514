"""Tenability per compartment and storey (ISO 13571) and the ASET the building evacuation takes.

The zone model gives each compartment two layers; a person stands in the
lower one until the interface comes down past head height (``head_height_m``,
1.8 m: NFPA 92's 6 ft clear height), then in the upper one. At head height,
over time:

- **asphyxiant FED** (ISO 13571:2012, asphyxiant-gas model):
  Σ [φ_CO/35 000 + (exp(φ_HCN/43)/220 − 0.0045)]·v_CO2·Δt, φ in ppm (µL/L),
  Δt in min, with CO₂'s hyperventilation factor v_CO2 = exp(φ_CO2/5), φ_CO2 in %
  (O₂ vitiation is not part of the 2012 model);
- **convected heat FED**: Σ Δt/t_Iconv, t_Iconv = 5·10⁷·T^(−3.4) min, T in °C
  (ISO 13571:2012; :func:`~physics.fire_correlations.heat_exposure_minutes`);
- **radiant heat** from the upper layer to a person below it: a grey layer
  q = ε·σ·(T_u⁴ − T_a⁴), ε = 1 − exp(−K·d) with K the layer's extinction
  coefficient (soot's absorption taken as its extinction, an upper bound) and d
  its depth, ε = 1 without soot data. Untenable at 2.5 kW/m², the flux above
  which exposure becomes painful within tens of seconds (Purser, SFPE Handbook;
  the usual limit of BS PD 7974-6), reached under a black layer at ~200 °C;
- **visibility** S = C/K (Jin 1978), K = σ_m·soot (Mulholland's 8700 m²/kg),
  C = 3 (light-reflecting signs, FDS's default) unless ``sign="emitting"`` (8);
  limits 5 m in compartments up to ``large_space_m2`` (100 m²) and 10 m in
  larger ones (Jin's limits for small, familiar spaces and large ones; the area
  boundary is our assumption).

A compartment is untenable from the first time any criterion fails (FED ≥ 0.3,
ISO 13571's design threshold, :data:`~physics.fire_correlations.FED_THRESHOLD`):
its ASET. A storey's ASET is the earliest over its **escape route**: its
corridors, lobbies and refuge compartments and the compartments that open
onto a stair (the stair door's side), with ``include_rooms`` its rooms too; a
storey without such compartments falls back to all its non-shaft
compartments. :func:`aset_by_floor` and :func:`write_aset_csv` give it in the
shape ``agents.building`` reads (``floor,aset_s``, s, floor 0 = ground);
:func:`assess_history` takes the zone model's fields by their names
(:data:`ZONE_FIELDS`).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import xarray as xr

from physics.fire_correlations import (
    AMBIENT_K,
    FED_THRESHOLD,
    SOOT_EXTINCTION_M2_KG,
    VISIBILITY_C,
    heat_exposure_minutes,
)
from physics.fire_detection import first_crossing_s
from physics.fire_network import COMPARTMENT_KINDS, FireNetwork
from twin.errors import ValidationError

HEAD_HEIGHT_M = 1.8
#: Radiant flux limit (kW/m²) at head height.
RADIANT_LIMIT_KW_M2 = 2.5
#: Visibility limits (m): small compartments / large spaces (Jin).
VISIBILITY_LIMIT_M = (5.0, 10.0)
LARGE_SPACE_M2 = 100.0
SIGMA = 5.670374419e-8
CRITERIA = ("asphyxiant", "heat", "radiant", "visibility")
ROUTE_KINDS = ("corridor", "lobby", "refuge")
SHAFT_KINDS = ("stair", "lift", "smoke_shaft")


def at_head(layer_height_m, upper, lower, head_height_m: float = HEAD_HEIGHT_M):
    """The value of the layer a person's head is in: the upper layer's once the interface is below the head."""
    return np.where(np.asarray(layer_height_m, float) < head_height_m, upper, lower)


def _cumulative(t_s: np.ndarray, rate_per_min: np.ndarray) -> np.ndarray:
    """Trapezoidal running integral over time (axis 0) of a rate per minute."""
    dt_min = np.diff(t_s)[:, None] / 60.0
    steps = 0.5 * (rate_per_min[1:] + rate_per_min[:-1]) * dt_min
    return np.concatenate([np.zeros((1,) + rate_per_min.shape[1:]), np.cumsum(steps, axis=0)])


def asphyxiant_rate_per_min(co_ppm, co2_pct=None, hcn_ppm=None) -> np.ndarray:
    """Asphyxiant FED per minute (ISO 13571:2012): (φ_CO/35 000 + HCN term)·exp(φ_CO2/5)."""
    co = np.asarray(co_ppm, float)
    rate = co / 35000.0
    if hcn_ppm is not None:
        rate = rate + np.maximum(np.exp(np.asarray(hcn_ppm, float) / 43.0) / 220.0 - 0.0045, 0.0)
    if co2_pct is not None:
        rate = rate * np.exp(np.asarray(co2_pct, float) / 5.0)
    return np.broadcast_to(rate, co.shape)


def heat_rate_per_min(t_gas_k) -> np.ndarray:
    """Convected-heat FED per minute: 1/t_Iconv, t_Iconv = 5·10⁷·T^(−3.4) min (T °C; ISO 13571:2012)."""
    return 1.0 / heat_exposure_minutes(np.asarray(t_gas_k, float) - 273.15)


def fed_asphyxiant(t_s, co_ppm, co2_pct=None, hcn_ppm=None) -> np.ndarray:
    """Running asphyxiant FED (ISO 13571:2012): CO and HCN doses times the CO₂ hyperventilation factor."""
    return _cumulative(np.asarray(t_s, float), asphyxiant_rate_per_min(co_ppm, co2_pct, hcn_ppm))


def fed_heat(t_s, t_gas_k) -> np.ndarray:
    """Running convected-heat FED: Σ Δt/t_Iconv with t_Iconv = 5·10⁷·T^(−3.4) min (T °C; ISO 13571:2012)."""
    return _cumulative(np.asarray(t_s, float), heat_rate_per_min(t_gas_k))


def radiant_flux_kw_m2(t_upper_k, depth_m, *, extinction_per_m=None, t_ambient_k: float = AMBIENT_K):
    """Flux (kW/m²) from a grey upper layer of depth ``depth_m`` to a person below it (see module docstring)."""
    tu = np.asarray(t_upper_k, float)
    eps = 1.0 if extinction_per_m is None else \
        1.0 - np.exp(-np.asarray(extinction_per_m, float) * np.maximum(np.asarray(depth_m, float), 0.0))
    return eps * SIGMA * np.maximum(tu**4 - t_ambient_k**4, 0.0) / 1000.0 * (np.asarray(depth_m) > 0)


def head_measures(network: FireNetwork, *, t_upper_k, t_lower_k, layer_height_m, co_ppm, co2=None, hcn_ppm=None,
                  soot_upper=None, soot_lower=None, head_height_m: float = HEAD_HEIGHT_M, sign: str = "reflecting",
                  t_ambient_k: float = AMBIENT_K, large_space_m2: float = LARGE_SPACE_M2) -> dict[str, np.ndarray]:
    """The measures at head height of one time (N,) or of a history (T, N), as :func:`assess` takes them.

    ``co_ppm``, ``co2`` (volume fraction) and ``hcn_ppm`` are already the
    values at head height (:func:`at_head`); the layers' temperatures and soot
    are given per layer. Returns the FED rates per minute (``asphyxiant_rate``,
    ``heat_rate``), ``radiant_kw_m2``, ``extinction_per_m`` and ``visibility_m``
    at head height and the extinction limit of each compartment
    (``extinction_limit_per_m``, C / visibility limit). A running model
    integrates the rates step by step (trapezoid, as :func:`assess`).
    """
    z = np.asarray(layer_height_m, float)
    tu = np.asarray(t_upper_k, float)
    zero = np.zeros(z.shape)
    co2_pct = None if co2 is None else 100.0 * np.asarray(co2, float)
    rate_a = asphyxiant_rate_per_min(co_ppm, co2_pct, hcn_ppm)
    rate_h = heat_rate_per_min(at_head(z, tu, t_lower_k, head_height_m))
    depth = np.where(z < network.height_m, network.height_m - z, 0.0)
    k_upper = None if soot_upper is None else SOOT_EXTINCTION_M2_KG * np.asarray(soot_upper, float)
    rad = radiant_flux_kw_m2(tu, depth, extinction_per_m=k_upper, t_ambient_k=t_ambient_k)
    rad = np.where(z >= head_height_m, rad, 0.0)  # below the head the person is in the hot layer itself
    sl = zero if soot_lower is None else soot_lower
    k_head = zero if soot_upper is None else SOOT_EXTINCTION_M2_KG * at_head(z, soot_upper, sl, head_height_m)
    with np.errstate(divide="ignore"):
        vis = np.where(k_head > 0, VISIBILITY_C[sign] / np.maximum(k_head, 1e-300), np.inf)
    limit = np.where(network.area_m2 > large_space_m2, VISIBILITY_LIMIT_M[1], VISIBILITY_LIMIT_M[0])
    return {"asphyxiant_rate": rate_a, "heat_rate": rate_h, "radiant_kw_m2": rad, "extinction_per_m": k_head,
            "visibility_m": vis, "extinction_limit_per_m": VISIBILITY_C[sign] / limit}


def stair_door_sides(network: FireNetwork) -> np.ndarray:
    """The non-shaft compartments joined by a wall vent (open or closed door) to a stair, lift or smoke shaft."""
    shaft = np.isin(np.asarray(COMPARTMENT_KINDS)[network.kind], SHAFT_KINDS)
    a, b = np.asarray(network.vent_a), np.asarray(network.vent_b)
    inner = (a >= 0) & (b >= 0)
    sa, sb = shaft[np.maximum(a, 0)], shaft[np.maximum(b, 0)]
    return np.unique(np.concatenate([a[inner & sb & ~sa], b[inner & sa & ~sb]])).astype(np.int64)


def route_compartments(network: FireNetwork, storey: int, *, include_rooms: bool = False,
                       door_sides: np.ndarray | None = None) -> np.ndarray:
    """The compartments of ``storey`` whose tenability sets its ASET (see the module docstring)."""
    on = network.on_storey(storey)
    kinds = np.asarray(COMPARTMENT_KINDS)[network.kind[on]]
    wanted = ROUTE_KINDS + (("room",) if include_rooms else ())
    sides = stair_door_sides(network) if door_sides is None else door_sides
    sel = np.union1d(on[np.isin(kinds, wanted)], sides[network.storey[sides] == storey])
    if not len(sel):
        sel = on[~np.isin(kinds, SHAFT_KINDS)]
    return np.asarray(sel, dtype=np.int64)


def assess(t_s, network: FireNetwork, *, t_upper_k, t_lower_k, layer_height_m, co_ppm_upper, co_ppm_lower,
           co2_upper=None, co2_lower=None, hcn_ppm_upper=None, hcn_ppm_lower=None, soot_upper=None,
           soot_lower=None, head_height_m: float = HEAD_HEIGHT_M, sign: str = "reflecting",
           include_rooms: bool = False, t_ambient_k: float = AMBIENT_K,
           large_space_m2: float = LARGE_SPACE_M2) -> xr.Dataset:
    """Tenability over a zone-model history: measures per compartment, ASET per compartment and storey.

    Every field is (time, compartment): temperatures K, ``layer_height_m``
    the interface above the compartment's floor, CO/HCN ppm, CO₂ as a volume
    fraction (0..1), soot kg/m³. Returns a Dataset: over (``time``,
    ``compartment``) ``fed_asphyxiant``, ``fed_heat``, ``radiant_kw_m2``,
    ``visibility_m``; over ``compartment`` ``compartment_aset_s`` and
    ``compartment_criterion``; over ``storey`` ``aset_s`` (inf if tenable to
    the end), ``criterion`` (which failed, "" if none) and
    ``aset_compartment``; over (``time``, ``storey``) ``fed_max`` (the worst FED
    on the route) and ``untenable``.
    """
    t = np.asarray(t_s, float)
    n = network.n_compartments
    if t.ndim != 1 or t.size < 2 or not np.all(np.diff(t) > 0):
        raise ValidationError("t_s: give at least two increasing times (s)")
    if sign not in VISIBILITY_C:
        raise ValidationError(f"sign={sign!r}: give one of {sorted(VISIBILITY_C)}")
    if not (0 < head_height_m < 3.0):
        raise ValidationError(f"head_height_m={head_height_m!r}: give a head height in m (1.8 or 2.0)")
    shape = (t.size, n)

    def field(name, value, default=None):
        if value is None:
            return default
        a = np.asarray(value, float)
        if a.shape != shape:
            raise ValidationError(f"{name}: shape {a.shape}, expected {shape} (time, compartment)")
        if not np.all(np.isfinite(a)):
            raise ValidationError(f"{name}: holds non-finite values; the zone model's output must be finite")
        return a

    tu, tl = field("t_upper_k", t_upper_k), field("t_lower_k", t_lower_k)
    z = field("layer_height_m", layer_height_m)
    zero = np.zeros(shape)
    co = at_head(z, field("co_ppm_upper", co_ppm_upper), field("co_ppm_lower", co_ppm_lower), head_height_m)
    co2 = at_head(z, field("co2_upper", co2_upper, zero), field("co2_lower", co2_lower, zero), head_height_m)
    hcn = None if hcn_ppm_upper is None else at_head(z, field("hcn_ppm_upper", hcn_ppm_upper),
                                                     field("hcn_ppm_lower", hcn_ppm_lower, zero), head_height_m)
    su, sl = field("soot_upper", soot_upper), field("soot_lower", soot_lower, zero)
    m = head_measures(network, t_upper_k=tu, t_lower_k=tl, layer_height_m=z, co_ppm=co, co2=co2, hcn_ppm=hcn,
                      soot_upper=su, soot_lower=sl, head_height_m=head_height_m, sign=sign, t_ambient_k=t_ambient_k,
                      large_space_m2=large_space_m2)
    fed_a = _cumulative(t, m["asphyxiant_rate"])
    fed_h = _cumulative(t, m["heat_rate"])
    rad, k_head, vis = m["radiant_kw_m2"], m["extinction_per_m"], m["visibility_m"]
    times = np.stack([first_crossing_s(t, fed_a, FED_THRESHOLD), first_crossing_s(t, fed_h, FED_THRESHOLD),
                      first_crossing_s(t, rad, RADIANT_LIMIT_KW_M2),
                      first_crossing_s(t, k_head, m["extinction_limit_per_m"])])  # (4, N)
    c_aset = times.min(axis=0)
    c_crit = np.where(np.isfinite(c_aset), np.asarray(CRITERIA, dtype=object)[times.argmin(axis=0)], "")
    s_n = network.n_storeys
    s_aset, s_crit, s_comp = np.full(s_n, np.inf), np.full(s_n, "", dtype=object), np.full(s_n, "", dtype=object)
    fed_max = np.zeros((t.size, s_n))
    worst = np.maximum(fed_a, fed_h)
    sides = stair_door_sides(network)
    for s in range(s_n):
        route = route_compartments(network, s, include_rooms=include_rooms, door_sides=sides)
        if not len(route):
            continue
        fed_max[:, s] = worst[:, route].max(axis=1)
        j = route[int(np.argmin(c_aset[route]))]
        if np.isfinite(c_aset[j]):
            s_aset[s], s_crit[s], s_comp[s] = c_aset[j], c_crit[j], network.names[j]
    return xr.Dataset(
        {"fed_asphyxiant": (("time", "compartment"), fed_a, {"long_name": "asphyxiant FED at head height"}),
         "fed_heat": (("time", "compartment"), fed_h, {"long_name": "convected-heat FED at head height"}),
         "radiant_kw_m2": (("time", "compartment"), rad, {"units": "kW/m2"}),
         "visibility_m": (("time", "compartment"), vis, {"units": "m"}),
         "compartment_aset_s": ("compartment", c_aset, {"units": "s"}),
         "compartment_criterion": ("compartment", c_crit),
         "compartment_storey": ("compartment", network.storey.astype(np.int64)),
         "aset_s": ("storey", s_aset, {"units": "s", "long_name": "available safe egress time (inf: tenable "
                                                                 "to the end of the run)"}),
         "criterion": ("storey", s_crit), "aset_compartment": ("storey", s_comp),
         "fed_max": (("time", "storey"), fed_max, {"long_name": "worst FED on the storey's escape route"}),
         "untenable": (("time", "storey"), t[:, None] >= s_aset[None, :])},
        coords={"time": ("time", t, {"units": "s"}), "compartment": list(network.names),
                "storey": np.arange(s_n)},
        attrs={"head_height_m": head_height_m, "fed_threshold": FED_THRESHOLD,
               "radiant_limit_kw_m2": RADIANT_LIMIT_KW_M2, "visibility_limits_m": list(VISIBILITY_LIMIT_M),
               "visibility_c": VISIBILITY_C[sign], "include_rooms": int(include_rooms), "t_end_s": float(t[-1]),
               "source": "ISO 13571:2012 (FED asphyxiant and convected heat), Jin (visibility)"})


#: The zone model's output field names (physics.fire_zone, CSDMS style) -> :func:`assess` keywords.
ZONE_FIELDS = {"upper_layer__temperature": "t_upper_k", "lower_layer__temperature": "t_lower_k",
               "layer_height": "layer_height_m", "upper_layer__co": "co_ppm_upper", "lower_layer__co": "co_ppm_lower",
               "upper_layer__co2": "co2_upper", "lower_layer__co2": "co2_lower", "upper_layer__soot": "soot_upper",
               "lower_layer__soot": "soot_lower", "upper_layer__hcn": "hcn_ppm_upper",
               "lower_layer__hcn": "hcn_ppm_lower"}


def assess_history(t_s, network: FireNetwork, history, **kw) -> xr.Dataset:
    """:func:`assess` on a recorded zone-model history: a mapping (or Dataset) of the model's field names to
    (time, compartment) arrays (names in :data:`ZONE_FIELDS`; the ones it lacks are left out)."""
    args = {ZONE_FIELDS[k]: np.asarray(history[k]) for k in ZONE_FIELDS if k in history}
    missing = [k for k, v in ZONE_FIELDS.items() if v in ("t_upper_k", "t_lower_k", "layer_height_m",
                                                         "co_ppm_upper", "co_ppm_lower") and k not in history]
    if missing:
        raise ValidationError(f"history: lacks {missing}; record these zone-model fields over (time, compartment)")
    return assess(t_s, network, **args, **kw)


def aset_by_floor(ds: xr.Dataset) -> dict[int, float]:
    """ASET (s) per floor where the route became untenable in the run (floor 0 = ground); the dict
    ``agents.building.resolve(spec, aset=...)`` takes. Floors tenable to the end are left out (their ASET
    exceeds the run: ``ds.attrs['t_end_s']``)."""
    a = ds["aset_s"].values
    return {int(s): float(v) for s, v in zip(ds["storey"].values, a, strict=True) if np.isfinite(v)}


def write_aset_csv(ds: xr.Dataset, path: str | Path) -> Path:
    """Write ``floor,aset_s`` (the CSV ``twin evacuate building --aset`` reads)."""
    p = Path(path)
    with p.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["floor", "aset_s"])
        for floor, aset in sorted(aset_by_floor(ds).items()):
            w.writerow([floor, f"{max(aset, 1e-3):.3f}"])  # the reader wants a positive time
    return p
