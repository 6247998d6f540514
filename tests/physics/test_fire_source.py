"""The design fire against closed forms: t² growth, caps, burn-out energy, sprinkler laws (sources named)."""

from __future__ import annotations

import numpy as np
import pytest

from physics import fire_correlations as fc
from physics.fire_network import OUTSIDE, NetworkBuilder
from physics.fire_source import (
    OCCUPANCY,
    FireSource,
    FireState,
    evans_time_constant_s,
    flashover_time_s,
    hrr_by_compartment,
    vent_limit_from_network,
    vent_opening,
)
from twin.errors import ValidationError


def _energy(t, q):
    return float(np.sum(0.5 * (q[1:] + q[:-1]) * np.diff(t)))


def test_growth_is_the_t_squared_correlation_until_its_cap():
    # NFPA 72 / SFPE t² classes: the source must reproduce fire_correlations.t_squared_hrr exactly
    f = FireSource("room", floor_area_m2=16.0, fuel_load_mj_m2=500.0, t0_s=30.0, growth="fast", peak_kw=800.0)
    t = np.linspace(0.0, 300.0, 61)
    np.testing.assert_allclose(f.hrr(t), fc.t_squared_hrr(t, "fast", t0_s=30.0, peak_kw=800.0), rtol=1e-12)


def test_ventilation_limit_caps_the_fire():
    # Kawagoe/Huggett ventilation limit 1500 A0 √H0 kW (fire_correlations): a 1 x 2 m door gives 4243 kW
    vent = float(fc.ventilation_limit_kw(2.0, 2.0))
    f = FireSource("room", floor_area_m2=100.0, fuel_load_mj_m2=800.0, growth="ultrafast", vent_limit_kw=vent)
    q = f.hrr(np.array([100.0, 200.0, 400.0]))
    assert q[0] == pytest.approx(0.1876 * 100.0**2)  # still growing (1876 kW)
    assert q[1:] == pytest.approx([vent, vent])


def test_burnout_starts_at_70_percent_and_releases_exactly_the_fire_load():
    # EN 1991-1-2 Annex E.4 (Figure E.1): linear decay from the time 70 % of q_f,d·A_f is consumed.
    # Closed form: ramp to Q_p at t_p = √(Q_p/α) releases Q_p·t_p/3, then Q_p until 0.7·E, then a
    # linear fall lasting 2·0.3·E/Q_p. The internal integration step (0.5 s) on a t² ramp gives an
    # energy error ~dt² α t_p/4 ≈ 4 kJ of 8e6 kJ: tolerances 0.05 s and 1e-6 relative.
    area, qfd, qp, alpha = 20.0, 400.0, 2000.0, 0.0469
    f = FireSource("room", floor_area_m2=area, fuel_load_mj_m2=qfd, growth=alpha, peak_kw=qp)
    e = area * qfd * 1000.0
    tp = np.sqrt(qp / alpha)
    t_decay = tp + (0.7 * e - qp * tp / 3.0) / qp
    t_out = t_decay + 0.6 * e / qp
    ev = f.events()
    assert ev["t_decay_s"] == pytest.approx(t_decay, abs=0.05)
    assert ev["t_burnout_s"] == pytest.approx(t_out, abs=0.05)
    t = np.arange(0.0, t_out + 200.0, 0.25)
    q = f.hrr(t)
    assert _energy(t, q) == pytest.approx(e, rel=1e-5)
    mid = t_decay + 0.5 * (t_out - t_decay)
    assert f.hrr(mid) == pytest.approx(0.5 * qp, rel=1e-4)
    assert f.hrr(t_out + 10.0) == 0.0


def test_flashover_switches_to_the_fully_developed_fire():
    # Thomas' flashover HRR (NUREG-1805 eq. 13-1) for the references.md MQH room, then the whole floor at
    # min(RHR_f·A, ventilation limit) (EN 1991-1-2 E.4): 16 m² x 250 kW/m² = 4000 kW < 4243 kW vent limit.
    at, a0, h0 = 2 * 16 + 16 * 2.4 - 2.0, 2.0, 2.0
    q_fo = fc.flashover_hrr_kw(a0, h0, at)["thomas"]
    vent = float(fc.ventilation_limit_kw(a0, h0))
    f = FireSource("room", floor_area_m2=16.0, fuel_load_mj_m2=600.0, growth="fast", peak_kw=3000.0,
                   vent_limit_kw=vent, flashover_kw=q_fo)
    t_fo = np.sqrt(q_fo / 0.0469)
    assert f.flashover_by_hrr_s() == pytest.approx(t_fo)
    q = f.hrr(np.array([t_fo - 1.0, t_fo + 1.0]))
    assert q[0] == pytest.approx(0.0469 * (t_fo - 1.0) ** 2)
    assert q[1] == pytest.approx(min(4000.0, vent))
    # the zone model's earlier flashover (upper layer 500 K above ambient) wins over the HRR criterion
    t = np.array([0.0, 100.0, 200.0])
    t_zone = flashover_time_s(t, [293.15, 693.15, 893.15])  # crosses 793.15 K halfway: 150 s
    assert t_zone == pytest.approx(150.0)
    assert f.events(t_flashover_s=t_zone)["t_flashover_s"] == pytest.approx(150.0)


def test_sprinkler_control_holds_the_heat_release_at_activation():
    # NFPA 13 / PD 7974-1 controlled fire: Q stays at α·(t_act − t0)² after activation
    f = FireSource("room", floor_area_m2=50.0, fuel_load_mj_m2=500.0, growth="medium", sprinkler="control")
    q = f.hrr(np.array([150.0, 200.0, 600.0]), t_sprinkler_s=150.0)
    assert q == pytest.approx([0.01172 * 150.0**2] * 3)


def test_sprinkler_suppression_follows_evans():
    # Evans (1993, NISTIR 5254) abstract: "the time constant for suppression at a sprinkler spray density
    # of 0.07 mm/s is 410 s"; 3.0·0.07^-1.85 = 410.8 s (the abstract rounds): rel 0.5 %
    assert evans_time_constant_s(0.07) == pytest.approx(410.0, rel=5e-3)
    f = FireSource("room", floor_area_m2=50.0, fuel_load_mj_m2=500.0, growth="fast", sprinkler="suppression",
                   spray_density_mm_s=0.1)
    tau = 3.0 * 0.1**-1.85
    q_act = 0.0469 * 120.0**2
    q = f.hrr(np.array([120.0, 120.0 + tau, 120.0 + 3 * tau]), t_sprinkler_s=120.0)
    np.testing.assert_allclose(q, q_act * np.exp([0.0, -1.0, -3.0]), rtol=1e-12)
    # a sprinkler that operates after flashover has no effect (it is not designed to hold that fire)
    g = FireSource("room", floor_area_m2=16.0, fuel_load_mj_m2=500.0, growth="fast", flashover_kw=1000.0,
                   sprinkler="suppression")
    assert g.hrr(300.0, t_sprinkler_s=200.0) == pytest.approx(4000.0)


def test_occupancy_values_and_bad_input():
    # EN 1991-1-2 Table E.4: office q_f,k = 511 MJ/m² (80 % fractile); m = 0.8 (E.3)
    f = FireSource.from_occupancy("office 12", "office", floor_area_m2=100.0)
    assert f.fuel_load_mj_m2 == pytest.approx(0.8 * 511.0)
    assert f.alpha == fc.GROWTH_ALPHA["medium"] and OCCUPANCY["library"][2] == 500.0
    with pytest.raises(ValidationError, match="occupancy='casino'"):
        FireSource.from_occupancy("r", "casino", floor_area_m2=10.0)
    with pytest.raises(ValidationError, match="sprinkler='deluge'"):
        FireSource("r", floor_area_m2=10.0, fuel_load_mj_m2=100.0, sprinkler="deluge")
    with pytest.raises(ValidationError, match="fuel_load_mj_m2=-5"):
        FireSource("r", floor_area_m2=10.0, fuel_load_mj_m2=-5)
    with pytest.raises(ValidationError, match="spray_density_mm_s=0"):
        FireSource("r", floor_area_m2=10.0, fuel_load_mj_m2=100.0, sprinkler="suppression", spray_density_mm_s=0)


def test_hrr_by_compartment_sums_sources_per_compartment():
    names = ["lobby", "room a", "room b"]
    a = FireSource("room a", floor_area_m2=20.0, fuel_load_mj_m2=500.0, growth="fast")
    b = FireSource(2, floor_area_m2=20.0, fuel_load_mj_m2=500.0, growth="slow", t0_s=60.0)
    t = np.array([0.0, 60.0, 120.0])
    q = hrr_by_compartment(t, [a, b], 3, index=names.index)
    assert q.shape == (3, 3) and np.all(q[:, 0] == 0.0)
    np.testing.assert_allclose(q[:, 1], 0.0469 * t**2)
    np.testing.assert_allclose(q[:, 2], 0.00293 * np.maximum(t - 60.0, 0.0) ** 2)
    with pytest.raises(ValidationError, match="give index="):
        hrr_by_compartment(t, [a], 3)


def test_fire_state_stepping_matches_the_whole_curve():
    # The stepped state integrates the same trapezoid as hrr() on the caller's 1 s steps (hrr uses 0.5 s):
    # the decay start differs by the quadrature error of the t² ramp (α·dt²·t_p/4 ≈ 2 kJ of 7e5 kJ: 2.5e-4 s
    # measured), i.e. 1e-3 kW on the 3.75 kW/s decay: tolerances 1e-3 s and 0.01 kW.
    # Events given during the run (sprinkler, flashover) act as the keyword times of hrr().
    f = FireSource("room", floor_area_m2=10.0, fuel_load_mj_m2=100.0, growth="fast", peak_kw=1500.0)
    state = FireState(f)
    t = np.arange(0.0, 2000.0, 1.0)
    stepped = np.array([state.advance(x) for x in t])
    np.testing.assert_allclose(stepped, f.hrr(t), atol=0.01)
    assert state.t_decay_s == pytest.approx(f.events()["t_decay_s"], abs=1e-3)
    g = FireSource("room", floor_area_m2=50.0, fuel_load_mj_m2=500.0, growth="fast", sprinkler="control")
    s2 = FireState(g)
    for x in range(0, 101):
        s2.advance(float(x))
    s2.sprinkler_operated(100.0)
    assert s2.advance(400.0) == pytest.approx(0.0469 * 100.0**2)
    with pytest.raises(ValidationError, match="t_s=50.0"):
        s2.advance(50.0)
    h = FireState(FireSource("room", floor_area_m2=16.0, fuel_load_mj_m2=500.0, growth="fast"))
    h.advance(0.0)
    h.flashed_over(60.0)  # the zone model saw ΔT 500 K
    assert h.advance(61.0) == pytest.approx(16.0 * 250.0)


def test_vent_limit_of_a_compartments_openings():
    # Two openings: a 1 x 2 m door and a 2 x 1.5 m window (glazing, closed until it breaks).
    # A0 = 2 + 3 = 5 m², H0 = (2·2 + 3·1.5)/5 = 1.7 m (EN 1991-1-2 Annex A's h_eq); limit 1500·A0·√H0.
    b = NetworkBuilder("room", storey_heights_m=[3.0])
    r = b.compartment("room", kind="room", storey=0, area_m2=20.0)
    b.vent(r, OUTSIDE, bottom_m=0.0, top_m=2.0, width_m=1.0, kind="door")
    b.vent(r, OUTSIDE, bottom_m=0.9, top_m=2.4, width_m=2.0, kind="window", open_fraction=0.0, break_c=500.0)
    net = b.build()
    assert vent_opening(net, 0) == pytest.approx((5.0, 1.7))
    assert vent_limit_from_network(net, 0) == pytest.approx(float(fc.ventilation_limit_kw(5.0, 1.7)))
    assert vent_opening(net, 0, glazing_broken=False) == pytest.approx((2.0, 2.0))
    with pytest.raises(ValidationError, match="compartment=3"):
        vent_opening(net, 3)


def test_sprinkler_found_while_running_holds_the_fire():
    # The pieces composed as a zone-model loop would: the references.md MQH room (4 x 4 x 2.4 m, 16 mm gypsum,
    # 1 x 2 m door) with a fast t² fire; the upper layer at MQH's ΔT (NUREG-1805 ch. 2, walls after t_p) and
    # the interface at 1.2 m; a quick-response sprinkler 2 m from the plume. Once it operates (DeviceState)
    # the controlled fire (FireState) stays at α·t_act². Closed-form check: the activation time equals the
    # batch solution for the same history, and the held value is α·t_act².
    from physics.fire_detection import DeviceSet, DeviceState, activation_times

    k, rho, c, d = 0.16, 790.0, 900.0, 0.016
    at = 2 * 16 + 16 * 2.4 - 2.0
    hk = float(fc.mqh_hk(600.0, k, rho, c, d))
    fire = FireState(FireSource("room", floor_area_m2=16.0, fuel_load_mj_m2=500.0, growth="fast",
                                sprinkler="control"))
    dev = DeviceSet()
    dev.add(0, "sprinkler", radius_m=2.0)
    links = DeviceState(dev, [2.4])
    t = np.arange(0.0, 300.0, 1.0)
    q_hist, tu_hist = [], []
    for tk in t:
        q = fire.advance(tk)
        tu = fc.AMBIENT_K + float(fc.mqh_delta_t(q, 2.0, 2.0, hk, at))
        q_hist.append(q)
        tu_hist.append(tu)
        if len(links.advance(tk, [q], t_upper_k=[tu], layer_height_m=[1.2])):
            fire.sprinkler_operated(float(links.activation_s[0]))
    t_act = float(links.activation_s[0])
    assert 30.0 < t_act < 150.0
    assert q_hist[-1] == pytest.approx(0.0469 * t_act**2)
    batch = activation_times(t, np.array(q_hist)[:, None], dev, ceiling_height_m=[2.4],
                             t_upper_k=np.array(tu_hist)[:, None], layer_height_m=np.full((t.size, 1), 1.2))
    assert float(batch["activation_s"][0]) == pytest.approx(t_act, abs=1e-9)
