"""Tenability and ASET on synthetic layer histories with closed-form answers (sources named in each test)."""

from __future__ import annotations

import numpy as np
import pytest

from agents.building import load_aset
from physics import fire_correlations as fc
from physics.fire_network import OUTSIDE, NetworkBuilder
from physics.fire_tenability import (
    SIGMA,
    ZONE_FIELDS,
    aset_by_floor,
    assess,
    assess_history,
    fed_asphyxiant,
    radiant_flux_kw_m2,
    route_compartments,
    write_aset_csv,
)
from twin.errors import ValidationError

AMB = fc.AMBIENT_K


def _one_room(area_m2: float = 20.0, height_m: float = 3.0):
    b = NetworkBuilder("room", storey_heights_m=[height_m])
    r = b.compartment("room", kind="room", storey=0, area_m2=area_m2)
    b.vent(r, OUTSIDE, bottom_m=0.0, top_m=2.0, width_m=1.0, kind="outside_door")
    return b.build()


def _history(net, t, **over):
    """A quiet history (ambient, no layer, clean air) with fields overridden: (T, N) arrays."""
    shape = (t.size, net.n_compartments)
    base = {"t_upper_k": np.full(shape, AMB), "t_lower_k": np.full(shape, AMB),
            "layer_height_m": np.broadcast_to(net.height_m, shape).copy(), "co_ppm_upper": np.zeros(shape),
            "co_ppm_lower": np.zeros(shape)}
    base.update({k: np.broadcast_to(np.asarray(v, float), shape).copy() if np.ndim(v) < 2 else v
                 for k, v in over.items()})
    return base


def test_co_dose_reaches_0_3_at_the_iso_13571_time():
    # ISO 13571:2012: FED = Σ φ_CO Δt / 35 000 ppm·min: 3500 ppm in the layer at head height -> 0.3 at 3 min.
    # Constant inputs integrate exactly by the trapezoid rule; the crossing is linear: tolerance 1e-9 s.
    net = _one_room()
    t = np.arange(0.0, 601.0, 10.0)
    ds = assess(t, net, **_history(net, t, layer_height_m=1.0, co_ppm_upper=3500.0))
    assert float(ds["compartment_aset_s"][0]) == pytest.approx(180.0, abs=1e-9)
    assert ds["compartment_criterion"].values[0] == "asphyxiant"
    assert float(ds["aset_s"][0]) == pytest.approx(180.0) and ds["criterion"].values[0] == "asphyxiant"
    # the same history under the zone model's field names
    h = _history(net, t, layer_height_m=1.0, co_ppm_upper=3500.0)
    names = {v: k for k, v in ZONE_FIELDS.items()}
    ds_zone = assess_history(t, net, {names[k]: v for k, v in h.items()})
    assert float(ds_zone["aset_s"][0]) == pytest.approx(180.0, abs=1e-9)
    with pytest.raises(ValidationError, match="lacks \\['layer_height'\\]"):
        assess_history(t, net, {names[k]: v for k, v in h.items() if k != "layer_height_m"})
    # the same CO in the upper layer while the interface is above the head: no dose
    ds_high = assess(t, net, **_history(net, t, layer_height_m=2.2, co_ppm_upper=3500.0))
    assert np.isinf(float(ds_high["aset_s"][0]))
    # 5 % CO2 multiplies the rate by exp(5/5) = e (ISO 13571:2012 hyperventilation factor)
    ds_co2 = assess(t, net, **_history(net, t, layer_height_m=1.0, co_ppm_upper=3500.0, co2_upper=0.05))
    assert float(ds_co2["aset_s"][0]) == pytest.approx(180.0 / np.e, rel=1e-9)


def test_hcn_term_and_its_zero_offset():
    # ISO 13571:2012 HCN term exp(φ/43)/220 − 0.0045 per min: 100 ppm -> 0.04201/min, FED 0.3 at 7.14 min;
    # with no HCN the offset leaves 4.5e-5/min (1/220 − 0.0045), < 0.003 in an hour.
    t = np.arange(0.0, 3601.0, 60.0)[:, None]
    rate = np.exp(100.0 / 43.0) / 220.0 - 0.0045
    fed = fed_asphyxiant(t[:, 0], np.zeros_like(t), hcn_ppm=np.full_like(t, 100.0))
    np.testing.assert_allclose(fed[:, 0], rate * t[:, 0] / 60.0, rtol=1e-12)
    assert 0.3 / rate == pytest.approx(7.14, abs=0.01)
    assert fed_asphyxiant(t[:, 0], np.zeros_like(t), hcn_ppm=np.zeros_like(t))[-1, 0] < 0.003


def test_convected_heat_at_head_height():
    # ISO 13571:2012 t_Iconv = 5e7·T^-3.4 min: a 120 °C layer at head height -> FED 0.3 at 0.3·t_Iconv
    # (~77 s); a 120 °C layer above the head leaves the person in ambient air (radiation checked below).
    net = _one_room()
    t = np.arange(0.0, 301.0, 1.0)
    ds = assess(t, net, **_history(net, t, layer_height_m=1.5, t_upper_k=393.15))
    t_i = 60.0 * 5e7 * 120.0**-3.4
    # the layer is at 120 °C from t = 0, so the trapezoid rule is exact: tolerance 1e-9 s
    assert float(ds["aset_s"][0]) == pytest.approx(0.3 * t_i, abs=1e-9)
    assert ds["criterion"].values[0] == "heat"


def test_radiant_flux_from_the_layer_above():
    # A black layer at 200 °C gives σ(473.15⁴ − 293.15⁴) = 2.42 kW/m² — the textbook equivalence of the 200 °C
    # layer and the 2.5 kW/m² limit. Ramp the layer 20 -> 300 °C over 280 s above a 1.8 m head (interface
    # 2.0 m, no soot data: ε = 1): untenable when σ(T⁴ − Ta⁴) = 2.5 kW/m², T* = (2500/σ + Ta⁴)^¼.
    assert radiant_flux_kw_m2(473.15, 1.0) == pytest.approx(SIGMA * (473.15**4 - AMB**4) / 1000.0)
    assert radiant_flux_kw_m2(473.15, 1.0) == pytest.approx(2.42, abs=0.01)
    # a thin sooty layer radiates less: ε = 1 − exp(−K d)
    assert radiant_flux_kw_m2(473.15, 0.5, extinction_per_m=1.0) == pytest.approx(
        (1 - np.exp(-0.5)) * radiant_flux_kw_m2(473.15, 0.5))
    net = _one_room()
    t = np.arange(0.0, 281.0, 1.0)
    tu = (AMB + t)[:, None]
    ds = assess(t, net, **_history(net, t, layer_height_m=2.0, t_upper_k=tu))
    t_star = (2500.0 / SIGMA + AMB**4) ** 0.25 - AMB
    # linear interpolation of the smooth T⁴ curve on 1 s samples: error < 1e-3 s
    assert float(ds["aset_s"][0]) == pytest.approx(t_star, abs=1e-3)
    assert ds["criterion"].values[0] == "radiant"


@pytest.mark.parametrize(("area", "limit"), [(20.0, 5.0), (400.0, 10.0)])
def test_visibility_limits_by_space_size(area, limit):
    # Jin: S = C/K with C = 3 (reflecting), K = 8700 m²/kg · soot (Mulholland & Croarkin 2000); limits 5 m
    # (small) / 10 m (large). Soot rising linearly at head height: K reaches 3/limit at t = 3/(limit·8700·s').
    net = _one_room(area_m2=area)
    t = np.arange(0.0, 1201.0, 5.0)
    rate = 1e-7  # kg/m³ per s
    ds = assess(t, net, **_history(net, t, layer_height_m=2.5, soot_lower=(rate * t)[:, None],
                                   soot_upper=(2 * rate * t)[:, None]))
    assert float(ds["aset_s"][0]) == pytest.approx(3.0 / (limit * 8700.0 * rate), rel=1e-9)
    assert ds["criterion"].values[0] == "visibility"
    assert float(ds["visibility_m"][-1, 0]) == pytest.approx(3.0 / (8700.0 * rate * 1200.0))


def _two_storeys():
    """Storey 0: fire room, corridor, stair; storey 1: room and stair only (the room opens on the stair)."""
    b = NetworkBuilder("two storeys", storey_heights_m=[3.0, 3.0])
    room0 = b.compartment("room 0", kind="room", storey=0, area_m2=30.0)
    corr0 = b.compartment("corridor 0", kind="corridor", storey=0, area_m2=20.0)
    st0 = b.compartment("stair 0", kind="stair", storey=0, area_m2=10.0)
    room1 = b.compartment("room 1", kind="room", storey=1, area_m2=30.0)
    st1 = b.compartment("stair 1", kind="stair", storey=1, area_m2=10.0)
    b.vent(room0, corr0, bottom_m=0.0, top_m=2.0, width_m=1.0)
    b.vent(corr0, st0, bottom_m=0.0, top_m=2.0, width_m=1.0, kind="shaft_door")
    b.vent(room1, st1, bottom_m=0.05, top_m=2.05, width_m=0.01, kind="leak")  # a closed stair door
    b.vent(room0, OUTSIDE, bottom_m=0.0, top_m=2.0, width_m=1.0, kind="window")
    b.ceiling_vent(st0, st1, area_m2=4.0)
    return b.build()


def test_storey_aset_is_the_earliest_on_the_escape_route(tmp_path):
    net = _two_storeys()
    assert route_compartments(net, 0).tolist() == [1]  # the corridor (the stair door's side too)
    assert route_compartments(net, 0, include_rooms=True).tolist() == [0, 1]
    assert route_compartments(net, 1).tolist() == [3]  # the room behind the closed stair door
    t = np.arange(0.0, 1201.0, 10.0)
    co = np.zeros((t.size, net.n_compartments))
    co[:, 0], co[:, 1], co[:, 3] = 7000.0, 3500.0, 1750.0  # -> 90 s, 180 s, 360 s (35 000 ppm·min / 0.3)
    h = _history(net, t, layer_height_m=1.0)
    h["co_ppm_upper"] = co
    ds = assess(t, net, **h)
    assert ds["compartment_aset_s"].values[[0, 1, 3]] == pytest.approx([90.0, 180.0, 360.0])
    assert ds["aset_s"].values.tolist() == pytest.approx([180.0, 360.0])
    assert ds["aset_compartment"].values.tolist() == ["corridor 0", "room 1"]
    assert bool(ds["untenable"].sel(storey=0, time=180.0)) and not bool(ds["untenable"].sel(storey=0, time=170.0))
    assert float(ds["fed_max"].sel(storey=0).isel(time=-1)) == pytest.approx(3500.0 * 20.0 / 35000.0)
    ds_rooms = assess(t, net, include_rooms=True, **h)
    assert float(ds_rooms["aset_s"][0]) == pytest.approx(90.0)
    # the evacuation reads it back (agents.building.load_aset: floor,aset_s)
    path = write_aset_csv(ds, tmp_path / "aset.csv")
    assert load_aset(path, n_floors=2) == pytest.approx({0: 180.0, 1: 360.0})
    h["co_ppm_upper"] = np.where(np.arange(net.n_compartments) == 3, 0.0, co)
    quiet = assess(t, net, **h)
    assert aset_by_floor(quiet) == pytest.approx({0: 180.0})  # storey 1 tenable to the end: left out


def test_bad_input_names_the_field():
    net = _one_room()
    t = np.arange(0.0, 61.0, 10.0)
    h = _history(net, t)
    h["co_ppm_lower"] = np.zeros((3, 1))
    with pytest.raises(ValidationError, match=r"co_ppm_lower: shape \(3, 1\)"):
        assess(t, net, **h)
    h = _history(net, t, t_upper_k=np.nan)
    with pytest.raises(ValidationError, match="t_upper_k: holds non-finite"):
        assess(t, net, **h)
    with pytest.raises(ValidationError, match="sign='neon'"):
        assess(t, net, sign="neon", **_history(net, t))


def test_the_pieces_on_the_zone_model():
    # The loop a fire run makes, on the real two-zone model (physics.fire_zone) and the CFAST comparison case
    # "two rooms" (fire_cases): FireState gives the heat release, DeviceState the sprinkler, the history goes
    # to assess_history under the model's own field names. Checks that hold whatever the zone model's
    # numbers: the stepped sprinkler equals the batch on the recorded history (same scheme, 1e-9 s), the
    # controlled fire is held at α·t_act² after it, and the storey ASET (no corridor: its rooms, the
    # fallback) is the earliest compartment's, where its failed measure reaches its limit.
    from physics.fire_cases import two_rooms
    from physics.fire_detection import DeviceSet, DeviceState, activation_times
    from physics.fire_source import FireSource, FireState, vent_limit_from_network
    from physics.fire_zone import FireZoneModel

    net = two_rooms().network
    zone = FireZoneModel(net)
    fire = FireState(FireSource("fire room", floor_area_m2=16.0, fuel_load_mj_m2=400.0, growth="fast",
                                peak_kw=500.0, vent_limit_kw=vent_limit_from_network(net, 0), sprinkler="control"))
    dev = DeviceSet()
    dev.add(0, "sprinkler", radius_m=2.0, rti=100.0, activation_c=68.0)
    links = DeviceState(dev, net.height_m)
    names = [k for k in ZONE_FIELDS if k in zone.output_var_names()]
    hist = {k: [] for k in names}
    q_hist = []
    t = np.arange(0.0, 301.0, 1.0)
    for k, tk in enumerate(t):
        q = np.array([fire.advance(tk), 0.0])
        zone.set("heat_release_rate", q)
        if k:
            zone.step(1.0)
        now = {n: zone.get(n).values for n in names}
        for n in names:
            hist[n].append(now[n])
        q_hist.append(q)
        if len(links.advance(tk, q, t_upper_k=now["upper_layer__temperature"],
                             t_lower_k=now["lower_layer__temperature"], layer_height_m=now["layer_height"])):
            fire.sprinkler_operated(float(links.activation_s[0]))
    hist = {n: np.array(v) for n, v in hist.items()}
    t_act = float(links.activation_s[0])
    assert np.isfinite(t_act)
    batch = activation_times(t, np.array(q_hist), dev, ceiling_height_m=net.height_m,
                             t_upper_k=hist["upper_layer__temperature"], t_lower_k=hist["lower_layer__temperature"],
                             layer_height_m=hist["layer_height"])
    assert float(batch["activation_s"][0]) == pytest.approx(t_act, abs=1e-9)
    assert q_hist[-1][0] == pytest.approx(0.0469 * t_act**2)
    ds = assess_history(t, net, hist)
    c_aset = ds["compartment_aset_s"].values
    j = int(np.argmin(c_aset))
    assert float(ds["aset_s"][0]) == pytest.approx(c_aset[j]) and np.isfinite(c_aset[j])
    # the failed measure is at its limit at the ASET (the crossing is linear between samples: rel 1e-9)
    series, limit = {"asphyxiant": (ds["fed_asphyxiant"].values, 0.3), "heat": (ds["fed_heat"].values, 0.3),
                     "radiant": (ds["radiant_kw_m2"].values, 2.5),
                     "visibility": (1.0 / ds["visibility_m"].values, 1.0 / 5.0)}[str(ds["criterion"].values[0])]
    assert np.interp(c_aset[j], t, series[:, j]) == pytest.approx(limit, rel=1e-9)
