"""The two-zone fire model: conservation, closed forms, MQH, stack effect, kernel == numpy reference."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from physics._kernels import fire_zone as K
from physics.fire_correlations import (
    mqh_delta_t,
    mqh_hk,
    parametric_fire_c,
    stack_pressure_pa,
    thermal_penetration_time_s,
)
from physics.fire_network import CONCRETE, OUTSIDE, NetworkBuilder
from physics.fire_zone import CP_AIR, R_AIR, FireZoneModel
from twin.errors import ValidationError

_spec = importlib.util.spec_from_file_location("fire_zone_reference",
                                               Path(__file__).with_name("fire_zone_reference.py"))
REF = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(REF)

GAMMA = CP_AIR / (CP_AIR - R_AIR)
#: the MQH room of references.md (NUREG-1805 ch. 2 example): 16 mm gypsum k 0.16, ρ 790, c 900
MQH_GYPSUM = {"k": 0.16, "rho": 790.0, "c": 900.0, "thickness_m": 0.016}


def one_room(*, door=True, leak=None, lining=MQH_GYPSUM, area=16.0, height=2.4):
    b = NetworkBuilder("room", storey_heights_m=[height])
    r = b.compartment("room", kind="room", storey=0, area_m2=area, lining=lining)
    if door:
        b.vent(r, OUTSIDE, bottom_m=0.0, top_m=2.0, width_m=1.0)
    if leak is not None:
        b.vent(r, OUTSIDE, bottom_m=0.0, top_m=leak[0], width_m=leak[1], kind="leak")
    return b.build()


def three_storeys():
    """A room and a stair per storey, doors into the stair, windows that break at 300 °C, a roof vent."""
    b = NetworkBuilder("stack", storey_heights_m=[3.0, 3.0, 3.0])
    stair = []
    for s in range(3):
        room = b.compartment(f"room{s}", kind="room", storey=s, area_m2=30.0)
        stair.append(b.compartment(f"stair{s}", kind="stair", storey=s, area_m2=12.0, lining=CONCRETE))
        b.vent(room, stair[-1], bottom_m=0.0, top_m=2.1, width_m=0.9, kind="shaft_door",
               open_fraction=1.0 if s == 0 else 0.05)
        b.vent(room, OUTSIDE, bottom_m=0.9, top_m=2.4, width_m=1.0, kind="window",
               open_fraction=0.02, break_c=300.0)
    for lo, hi in zip(stair[:-1], stair[1:], strict=True):
        b.ceiling_vent(lo, hi, area_m2=2.0)
    b.ceiling_vent(stair[-1], OUTSIDE, area_m2=0.3, kind="roof_vent")
    return b.build()


def test_mqh_room_upper_layer_within_the_published_scatter():
    """references.md / NUREG-1805 ch. 2: 4×4×2.4 m gypsum room, door 1×2 m, 500 kW: MQH ΔT ≈ 346 K after
    t_p = 284 s. MQH scatters ±30 % against experiments (NUREG-1805), so the zone model's rise must lie
    within ±30 % of it from t_p on (CFAST gives 279 °C at 540 s, −24 %)."""
    net = one_room()
    m = FireZoneModel(net, t_inside_k=293.15)
    m.q_kw[:] = 500.0
    tp = thermal_penetration_time_s(0.16, 790.0, 900.0, 0.016)
    assert tp == pytest.approx(284.4, abs=0.5)
    m.step(300.0)
    at_t = 2 * 16.0 + 4 * 4.0 * 2.4 - 2.0  # inner surface less the door
    for _ in range(5):
        m.step(60.0)
        mqh = mqh_delta_t(500.0, 2.0, 2.0, mqh_hk(m.t, 0.16, 790.0, 900.0, 0.016), at_t)
        rise = m.t_upper[0] - 293.15
        assert 0.7 * mqh <= rise <= 1.3 * mqh, (m.t, rise, mqh)
    assert mqh == pytest.approx(346.0, abs=1.0)
    # a layer, not a well-mixed room: the interface between the floor and the door soffit
    assert 0.3 < m.layer_height[0] < 2.0
    assert m.t_lower[0] < m.t_upper[0] - 150.0
    assert m.q_burned[0] == pytest.approx(500.0)  # well ventilated: the lower layer keeps its O2
    assert m.o2_lower[0] > 0.20


def test_closed_room_pressure_follows_the_energy_equation():
    """No vents, adiabatic walls, χr = 0: dp/dt = (γ − 1)/V·(Q + c_p·T·ṁ_f) (CFAST Tech. Ref., the
    compartment's pressure equation) integrates in closed form. T of the fuel's enthalpy term is the
    lower layer's, which adiabatic compression warms by ≈ (1 − 1/γ)·Δp/p·T ≈ 6 K here: ≈ 2 % of a term
    that is itself 1.5 % of Q, so 0.05 % tolerance."""
    net = one_room(door=False)
    m = FireZoneModel(net, radiative_fraction=0.0, h_conv=1e-9, dt_max=0.5, layer_radiation=False)
    q = 100.0
    m.q_kw[:] = q
    p0 = m.props[0, K.Q_P]
    m.step(10.0)
    vol = net.volume_m3[0]
    dhc = m.fuel["heat_of_combustion_kj_kg"]
    expected = (GAMMA - 1) / vol * q * 1000.0 * 10.0 * (1.0 + CP_AIR * 293.15 / (dhc * 1000.0))
    assert m.pressure[0] == pytest.approx(expected, rel=5e-4)
    assert m.props[0, K.Q_P] - p0 == pytest.approx(expected, rel=5e-4)
    assert m.balance()["mass_out"] == 0.0 and m.balance()["mass_in"] == 0.0
    # the smoke layer is under the ceiling, and no more mass than the fuel's joined the gas
    assert 0.0 < m.layer_height[0] < 2.4
    assert m.total_mass() - m._initial[0] == pytest.approx(q / dhc * 10.0, rel=1e-9)


def _filling_height(t_end, *, area, height, q_kw, d_m, t0_k, rho0):
    """Interface height of a room filling with smoke at constant pressure (leak at the floor): the
    upper layer's volume grows by the plume's gas and the fire's heat, A·dz/dt = −(ṁ_p(z) + ṁ_f +
    Q/(c_p·T0))/ρ0 (Zukoski 1978, Fire Mater. 2:54, with Heskestad's entrainment), by RK4 at 0.01 s."""
    z, dt = height, 0.01
    mf = q_kw / 20000.0

    def rate(zz):
        return -(K.heskestad_entrainment(q_kw, max(zz, 0.0), q_kw, d_m) + mf
                 + q_kw * 1000.0 / (CP_AIR * t0_k)) / (rho0 * area)

    for _ in range(int(round(t_end / dt))):
        k1 = rate(z)
        k2 = rate(z + 0.5 * dt * k1)
        k3 = rate(z + 0.5 * dt * k2)
        k4 = rate(z + dt * k3)
        z += dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
    return z


def test_leaky_room_layer_descends_as_the_filling_equation():
    """A 5×5×3 m room, 100 kW, adiabatic, a 2 m × 0.1 m leak at the floor: the layer descends as the
    closed-room filling equation (Zukoski 1978) with the same plume; the model advances layers by
    explicit Euler at 0.25 s, O(dt) ≈ 1 % of the descent, hence 3 % / 0.03 m. The leak carries the
    expansion out: ṁ = Q/(c_p·T0) + ṁ_f, so the floor overpressure is (ṁ/(C·A))²/(2ρ0) within 5 %."""
    net = one_room(door=False, leak=(0.1, 2.0), area=25.0, height=3.0)
    m = FireZoneModel(net, radiative_fraction=0.0, h_conv=1e-9, dt_max=0.25, layer_radiation=False)
    m.q_kw[:] = 100.0
    rho0 = m.props[0, K.Q_RL]
    for t in (10.0, 20.0, 30.0):
        m.step(t - m.t)
        z = _filling_height(t, area=25.0, height=3.0, q_kw=100.0, d_m=1.0, t0_k=293.15, rho0=rho0)
        assert m.layer_height[0] == pytest.approx(z, rel=0.03, abs=0.03), (t, m.layer_height[0], z)
    assert m.layer_height[0] < 2.0  # it did descend
    mdot = 100.0 * 1000.0 / (CP_AIR * 293.15) + 100.0 / 20000.0
    dp = (mdot / (0.7 * 0.2)) ** 2 / (2 * rho0)
    assert m.pressure[0] == pytest.approx(dp, rel=0.05)
    assert m.vent_flow[0] == pytest.approx(mdot, rel=0.03)


def test_stack_effect_in_a_tall_shaft_without_fire():
    """A 20-storey stair (70 m) with a leak to the outside on every storey, 20 °C inside, 5 °C outside:
    no layer forms, and the inside-outside pressure difference is the stack formula
    3460·(z − z_n)·(1/To − 1/Ti) (ASHRAE; fire_correlations.stack_pressure_pa) about the neutral plane.
    The formula holds densities at P_atm; the model's atmosphere thins with height (g·z/(R·T) ≈ 0.8 %
    over 70 m) and the shaft's own ceiling openings take a little of the difference: 2 % of the
    largest difference."""
    n, h = 20, 3.5
    b = NetworkBuilder("shaft", storey_heights_m=[h] * n)
    cs = [b.compartment(f"stair{s}", kind="stair", storey=s, area_m2=12.0, lining=CONCRETE) for s in range(n)]
    for c in cs:
        b.vent(c, OUTSIDE, bottom_m=1.5, top_m=1.7, width_m=0.1, kind="leak")
    for lo, hi in zip(cs[:-1], cs[1:], strict=True):
        b.ceiling_vent(lo, hi, area_m2=6.0)
    net = b.build()
    ti, to = 293.15, 278.15
    m = FireZoneModel(net, t_inside_k=ti, t_outside_k=to)
    m.step(5.0)
    z = net.base_m
    slope, icpt = np.polyfit(z, m.pressure, 1)
    zn = -icpt / slope
    assert 0.3 * 70 < zn < 0.7 * 70  # leaks alike on every storey: the neutral plane near mid-height
    expected = stack_pressure_pa(z - zn, to, ti)
    assert np.max(np.abs(m.pressure - expected)) < 0.02 * np.max(np.abs(expected))
    assert slope == pytest.approx(3460.0 * (1 / to - 1 / ti), rel=0.02)
    # cold air in at the bottom, warm air out at the top
    assert m.vent_flow[0] < 0 < m.vent_flow[-1]
    assert np.all(m.vvent_flow > 0)
    # no fire, no layer
    assert np.all(m.state[:, K.MU] == 0.0)
    assert np.all(m.layer_height == pytest.approx(h))
    # the bottom cools a little with the cold air it takes in, the top warms by the compression to
    # stack equilibrium (≈ (1 − 1/γ)·Δp/p·T ≈ 0.02 K)
    assert np.all(np.abs(m.t_lower - ti) < 0.5) and m.t_lower[0] < ti < m.t_lower[-1]


def test_mass_and_energy_are_conserved_to_round_off():
    """Three storeys, a stair, doors, glazing that breaks, a roof vent, 5 °C outside, a fire that
    outgrows its oxygen: whatever is in the building, crossed the outside boundary, went into the walls
    or was radiated balances to round-off (~1e-13 of the totals over 600 steps)."""
    net = three_storeys()
    m = FireZoneModel(net, t_inside_k=293.15, t_outside_k=278.15)
    for _ in range(30):
        m.q_kw[0] = min(0.0469 * m.t ** 2, 2000.0)  # fast t² growth to 2 MW
        m.step(10.0)
    bal = m.balance()
    assert abs(bal["mass_residual"]) < 1e-11 * bal["mass"]
    assert abs(bal["energy_residual"]) < 1e-11 * bal["energy"]
    assert bal["mass_out"] > 100.0 and bal["released"] > 1e8 and bal["walls"] > 0 and bal["radiated"] > 0
    # the window of the fire room broke; smoke reached the stair; every species stayed non-negative
    assert m.vent_open[1] == 1.0 and m.broken[1]
    assert m.t_upper[1] > 350.0
    assert np.all(m.state[:, K.SU:] > -1e-9)
    assert 0.0 < m.o2_upper[0] < 0.2095 and m.co_upper[0] > 10.0 and m.ext_upper[0] > 0.1
    # the fire was oxygen-limited at some point: less burned than asked, or all of it
    assert m.q_burned[0] <= m.q_kw[0] + 1e-9
    # the compiled outputs are the numpy formulas (mole fractions with N2 for the rest; soot over the layer volume)
    volume_upper = m.props[:, K.Q_VU]
    for upper, o2, co2, co, soot in ((True, m.o2_upper, m.co2_upper, m.co_upper, m.soot_upper),
                                     (False, m.o2_lower, m.co2_lower, m.co_lower, m.soot_lower)):
        x = m.mole_fractions(upper=upper)
        np.testing.assert_allclose(o2, x[:, K.SP_O2], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(co2, x[:, K.SP_CO2], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(co, 1e6 * x[:, K.SP_CO], rtol=1e-12, atol=1e-9)
        col, vol = (K.SU, volume_upper) if upper else (K.SL, net.area_m2 * net.height_m - volume_upper)
        expected = np.where(vol > 0, m.state[:, col + K.SP_SOOT] / np.where(vol > 0, vol, 1.0), 0.0)
        np.testing.assert_allclose(soot, expected, rtol=1e-12, atol=1e-18)
    assert np.all(m.layer_height <= net.height_m + 1e-12) and np.all(m.layer_height >= 0.0)


def _random_network(rng):
    """2-6 compartments: rooms on 1-3 storeys, a shaft column, doors, leaks, windows, a roof vent."""
    storeys = int(rng.integers(1, 4))
    b = NetworkBuilder("random", storey_heights_m=list(rng.uniform(2.6, 3.6, storeys)))
    shaft = []
    for s in range(storeys):
        rooms = [b.compartment(f"r{s}{k}", kind="room", storey=s, area_m2=float(rng.uniform(8, 40)))
                 for k in range(2 if storeys == 1 else int(rng.integers(1, 3)) if storeys == 2 else 1)]
        if storeys > 1:
            shaft.append(b.compartment(f"s{s}", kind="stair", storey=s, area_m2=float(rng.uniform(5, 15)),
                                       lining=CONCRETE))
            b.vent(rooms[0], shaft[-1], bottom_m=0.0, top_m=2.0, width_m=float(rng.uniform(0.1, 0.9)))
        if len(rooms) > 1:
            b.vent(rooms[0], rooms[1], bottom_m=0.0, top_m=float(rng.uniform(1.8, 2.2)), width_m=0.8)
        for r in rooms:
            lo = float(rng.uniform(0.0, 1.0))
            b.vent(r, OUTSIDE, bottom_m=lo, top_m=lo + float(rng.uniform(0.05, 1.2)),
                   width_m=float(rng.uniform(0.05, 1.0)), kind="window")
    for lo, hi in zip(shaft[:-1], shaft[1:], strict=True):
        b.ceiling_vent(lo, hi, area_m2=float(rng.uniform(0.5, 4.0)))
    if shaft:
        b.ceiling_vent(shaft[-1], OUTSIDE, area_m2=0.2, kind="roof_vent")
    return b.build()


@pytest.mark.parametrize(("walls", "rule"), [(False, True), (True, True), (False, "cfast")],
                         ids=["lumped", "conducting", "cfast-ceiling-vents"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_numba_kernel_matches_the_numpy_reference(seed, walls, rule):
    """Random small networks, an ultrafast fire, outside colder or warmer: at every step of a 40 s run the
    numba step and the numpy reference (dense Newton solves instead of sparse LDLᵀ, slab
    integrals written differently) take the same state and give the same new state, vent flows and
    balance terms. Both stop Newton and the layer-limiting fixed point at the same tight tolerances,
    reached along slightly different round-off paths: 1e-9 of the masses and energies. (Run apart for
    40 steps, the two drift to ~1e-7 where exchange flows empty a thin layer: round-off amplified by
    the layer limiting, not a difference of formula, so the comparison is step by step.) With conducting
    walls (``wall_conduction=True``) both take the walls' face temperatures and give the same heat into them.
    With CFAST's ceiling-vent rule (``ceiling_vent_froude="cfast"``, ``ceiling_vent_plumes="cfast"``) both take
    the Froude number on the donor layer's excess over ambient and land the flow down unmixed."""
    rng = np.random.default_rng(seed)
    net = _random_network(rng)
    assert 2 <= net.n_compartments <= 6
    m = FireZoneModel(net, t_inside_k=293.15, newton_tol_pa=1e-9, layer_tol_k=1e-9,
                      t_outside_k=float(rng.uniform(275, 305)), wall_conduction=walls, ceiling_vent_froude=rule,
                      ceiling_vent_plumes=rule)
    outputs = {}

    def both(*args):
        results = []
        for fn in (K.step, REF.step):
            copies = [np.array(x, copy=True) if isinstance(x, np.ndarray) else x for x in args]
            r = fn(*copies)
            results.append((r, copies))
        (ra, ca), (rb, cb) = results
        mass_scale = np.abs(ca[0][:, [K.MU, K.ML]]).max()
        energy_scale = np.abs(ca[0][:, [K.UU, K.UL]]).max()
        diff = np.abs(ca[9] - cb[9])  # new_state
        assert np.max(diff[:, [K.UU, K.UL]]) < 1e-9 * energy_scale
        assert np.max(np.delete(diff, [K.UU, K.UL], axis=1)) < 1e-9 * mass_scale
        for j in (10, 11):  # wall and ceiling vent channels
            np.testing.assert_allclose(ca[j], cb[j], rtol=1e-7, atol=1e-9 * mass_scale)
        np.testing.assert_allclose(ca[13], cb[13], rtol=1e-9, atol=1e-9 * energy_scale)  # tally
        assert ra[2] == rb[2]  # the same verdict on overdrawn layers
        if walls:  # the heat into the conducting walls
            np.testing.assert_allclose(ca[17], cb[17], rtol=1e-9, atol=1e-9 * energy_scale)
        outputs["exchange"] = outputs.get("exchange", 0.0) + float(np.minimum(ca[11][:, :2].sum(axis=1),
                                                                               ca[11][:, 2:].sum(axis=1)).sum())
        for j in (9, 10, 11, 12, 13, 14) + ((17,) if walls else ()):  # the kernel's results go on
            args[j][...] = ca[j]
        return ra

    m._kernel_step = both
    for _ in range(40):
        m.q_kw[0] = 0.1876 * m.t ** 2  # ultrafast
        m.step(1.0)
    assert m.t_upper[0] > 310.0 and m.state[0, K.MU] > 0  # the fire made a layer
    bal = m.balance()
    assert abs(bal["energy_residual"]) < 1e-11 * bal["energy"]
    assert bal["layer_radiation"] > 0.0  # the reference checked the layer's radiation too


def test_cooper_exchange_mixes_a_shaft_without_net_flow():
    """Two stacked shaft compartments, closed but for the 1 m² opening between them, hot below and cold
    above: no net flow, yet Cooper's exchange (1995; CFAST's ventcf) swaps gas both ways at
    V_ex = 0.1·√(2g·Δρ·A^2.5/(ρ_a + ρ_b)) while |Δp| ≪ the flooding pressure difference."""
    b = NetworkBuilder("shaft", storey_heights_m=[3.0, 3.0])
    lo = b.compartment("lo", kind="stair", storey=0, area_m2=10.0, lining=CONCRETE)
    hi = b.compartment("hi", kind="stair", storey=1, area_m2=10.0, lining=CONCRETE)
    b.ceiling_vent(lo, hi, area_m2=1.0)
    net = b.build()
    m = FireZoneModel(net, t_inside_k=[373.15, 293.15], h_conv=1e-9, dt_max=0.1)
    m.step(0.3)  # the two start off hydrostatic balance (|Δp| > Δp_f): let the pressures settle first
    pr = m.props
    assert pr[0, K.Q_HASU] == 0.0  # the lower compartment is one layer: its gas at the opening is the lower's
    rho_lo, rho_hi = pr[0, K.Q_RL], pr[1, K.Q_RL] if pr[1, K.Q_HASL] else pr[1, K.Q_RU]
    dp = pr[0, K.Q_P] - 9.80665 * rho_lo * 3.0 - pr[1, K.Q_P]  # at the opening, below minus above
    flood = 0.942 ** 2 * 9.80665 * (rho_hi - rho_lo) * 1.0 / 2.0  # C²·g·Δρ·D⁵/(2A²), D = √A = 1 m
    assert abs(dp) < 0.2 * flood
    vex = 0.1 * np.sqrt(2 * 9.80665 * (rho_hi - rho_lo) * 1.0 / (rho_lo + rho_hi)) * (1 - abs(dp) / flood)
    m.step(0.1)
    up, down = m.vchan[0, :2].sum(), m.vchan[0, 2:].sum()
    # the exchange plus the small pressure-driven flow that keeps the two in balance
    assert min(up, down) == pytest.approx(min(rho_lo, rho_hi) * vex, rel=0.05)
    assert up * 0.1 > 0.01 and down * 0.1 > 0.01
    m.step(120.0)
    # the hot gas rose into the upper compartment's upper layer, the cold sank: the two approach each other
    assert m.t_upper[1] > 330.0 and m.t_lower[0] < 372.0
    bal = m.balance()
    assert bal["mass_out"] == 0.0 and abs(bal["mass_residual"]) < 1e-12 * bal["mass"]


def test_inputs_are_checked_and_doors_close():
    net = one_room()
    with pytest.raises(ValidationError, match="yields sum to"):
        FireZoneModel(net, fuel={"co2": 3.0})
    with pytest.raises(ValidationError, match="unknown key"):
        FireZoneModel(net, fuel={"hcn": 0.01})
    with pytest.raises(ValidationError, match="t_inside_k: 2 values for 1 compartments"):
        FireZoneModel(net, t_inside_k=[293.0, 294.0])
    with pytest.raises(ValidationError, match="newton_tol_pa=0.001: at most 1e-5 Pa"):
        FireZoneModel(net, newton_tol_pa=1e-3)
    m = FireZoneModel(net)
    with pytest.raises(ValidationError, match=r"vent_open_fraction\[0\]=1.5"):
        m.set("vent_open_fraction", [1.5])
    with pytest.raises(ValidationError, match="below 0.0"):
        m.set("heat_release_rate", [-1.0])
    m.set("heat_release_rate", [300.0])
    m.step(30.0)
    assert m.get("upper_layer__temperature").values[0] > 350.0
    assert abs(m.get("vent_mass_flow").values[0]) > 0
    m.set("vent_open_fraction", [0.0])  # an evacuee shuts the door
    m.step(2.0)
    assert m.vent_flow[0] == 0.0
    assert m.get("upper_layer__temperature").attrs["units"] == "K"


def test_every_declared_field_is_reachable_by_name_and_the_outside_drives_the_flows():
    """The Component contract (twin.component): each field gets as a DataArray in its units; the outside
    temperature set by name changes the stack flows through the shaft's leaks (cold outside: in at the
    bottom, out at the top; warm outside: the reverse)."""
    n, h = 6, 3.5
    b = NetworkBuilder("shaft", storey_heights_m=[h] * n)
    cs = [b.compartment(f"s{s}", kind="stair", storey=s, area_m2=12.0, lining=CONCRETE) for s in range(n)]
    for c in cs:
        b.vent(c, OUTSIDE, bottom_m=1.5, top_m=1.7, width_m=0.1, kind="leak")
    for lo, hi in zip(cs[:-1], cs[1:], strict=True):
        b.ceiling_vent(lo, hi, area_m2=6.0)
    m = FireZoneModel(b.build(), t_inside_k=293.15, t_outside_k=273.15)
    for name, spec in FireZoneModel.fields.items():
        da = m.get(name)
        assert da.attrs["units"] == spec.units and np.all(np.isfinite(da.values)), name
    m.step(5.0)
    assert m.get("vent_mass_flow").values[0] < 0 < m.get("vent_mass_flow").values[-1]
    m.set("outside_temperature", [308.15])  # a Shenzhen summer afternoon: reverse stack
    m.step(10.0)
    flows = m.get("vent_mass_flow").values
    assert flows[0] > 0 > flows[-1]
    assert np.all(m.get("ceiling_vent_mass_flow").values < 0)
    with pytest.raises(ValidationError, match="intent 'out'"):
        m.set("pressure", np.zeros(n))


def test_lower_layer_co2_is_the_volume_fraction_of_the_lower_layer():
    """``lower_layer__co2``: moles of CO2 over the lower layer's moles (the untracked rest counted as N2,
    molar masses of :data:`physics._kernels.fire_zone.MOLAR_MASS`); 0 in clean air."""
    m = FireZoneModel(one_room(), t_inside_k=293.15)
    assert m.get("lower_layer__co2").values[0] == 0.0
    ml = m.state[0, K.ML]
    m.state[0, K.SL + K.SP_CO2] = 0.01 * ml  # 1 % CO2 by mass, taken out of the N2
    m._update_outputs()
    o2, co2 = m.state[0, K.SL + K.SP_O2] / 0.032, 0.01 * ml / 0.044
    n2 = (ml - m.state[0, K.SL + K.SP_O2] - 0.01 * ml) / 0.028
    assert m.get("lower_layer__co2").values[0] == pytest.approx(co2 / (o2 + co2 + n2), rel=1e-12)
    assert m.get("lower_layer__co2").attrs["units"] == "1"


def test_poreh_spill_plume_entrainment():
    """Poreh, Morgan, Marshall & Harrison (Fire Safety J. 30:1, 1998) as CFAST's ``poreh_plume`` takes it:
    ṁ_e = 0.44·(T_c/T_h)^(2/3)·(g·ρ_c²·Q·W²/(c_p·T_c))^(1/3)·z, Q = c_p·(T_h − T_c)·ṁ. A 0.5 kg/s jet at
    500 K into 300 K air through a 1 m wide door, 1 m to the interface: Q = 100.45 kW, ρ_c = 1.1767 kg/m³,
    ṁ_e = 0.44·0.7114·(9.80665·1.3845·100450/301350)^(1/3)·1 = 0.44·0.7114·1.6538 = 0.5177 kg/s; zero when
    the jet is not hotter than the air it enters or has no height to rise."""
    m = FireZoneModel(one_room())
    e = K.poreh_entrainment(500.0, 300.0, 0.5, 1.0, 1.0, 101325.0, m.par)
    assert e == pytest.approx(0.5177, rel=1e-3)
    assert K.poreh_entrainment(300.0, 300.0, 0.5, 1.0, 1.0, 101325.0, m.par) == 0.0
    assert K.poreh_entrainment(500.0, 300.0, 0.5, 0.0, 1.0, 101325.0, m.par) == 0.0
    # linear in z, as the cube root of the jet's flow
    assert K.poreh_entrainment(500.0, 300.0, 4.0, 2.0, 1.0, 101325.0, m.par) == pytest.approx(4.0 * e, rel=1e-12)


def test_door_jet_mixing_thickens_the_neighbours_layer_and_conserves():
    """Two rooms joined by a door, 300 kW in the first: the smoke jet entering the second below its
    interface entrains its lower layer (CFAST's vent-flow entrainment), so while it fills (20 s) the neighbour's
    upper layer holds more gas (16 vs 10 kg), cooler (349 vs 378 K) and deeper than with the jets unmixed;
    later its depth is set by the outflow through its door in both. Mass, energy and species balance to
    round-off."""
    b = NetworkBuilder("two", storey_heights_m=[2.4])
    fire = b.compartment("fire", kind="room", storey=0, area_m2=16.0, lining=MQH_GYPSUM)
    nxt = b.compartment("next", kind="room", storey=0, area_m2=24.0, lining=MQH_GYPSUM)
    b.vent(fire, nxt, bottom_m=0.0, top_m=2.0, width_m=1.0)
    b.vent(nxt, OUTSIDE, bottom_m=0.0, top_m=2.0, width_m=1.0)
    net = b.build()
    runs = {}
    for mixing in (True, False):
        m = FireZoneModel(net, door_jet_mixing=mixing)
        m.q_kw[0] = 300.0
        m.step(20.0)
        bal = m.balance()
        assert abs(bal["mass_residual"]) < 1e-12 * bal["mass"]
        assert abs(bal["energy_residual"]) < 1e-12 * bal["energy"]
        assert np.all(m.state[:, K.SU:] > -1e-12)
        runs[mixing] = m
    on, off = runs[True], runs[False]
    assert on.state[1, K.MU] > 1.4 * off.state[1, K.MU]
    assert on.t_upper[1] < off.t_upper[1] - 20.0 and on.layer_height[1] < off.layer_height[1] - 0.1
    # the fire room, upstream of the jet, is the same to a few K
    assert on.t_upper[0] == pytest.approx(off.t_upper[0], abs=3.0)


def test_ceiling_vent_froude_share():
    """The share of a ceiling vent's flow taken from the layer next to the opening, exp(−(Fr/2)²) (the form
    of CFAST's vertical_flow), Fr = V/√(g·d⁵·(T_u − T_l)/T_l): 1 kg/s at 0.8 kg/m³ (V = 1.25 m³/s) out of a
    1 m deep layer at 500 K over 300 K: Fr = 1.25/√(9.80665·(2/3)) = 0.48887, share = exp(−0.059749) = 0.9420
    (hand-computed); a 0.2 m layer gives it all up (Fr = 27); none drawn beyond a layer that is not stably
    stratified or when nothing flows."""
    g = 9.80665
    assert K._froude_share(1.0, 0.8, 500.0, 300.0, 1.0, g) == pytest.approx(0.9420, abs=1e-4)
    assert K._froude_share(1.0, 0.8, 500.0, 300.0, 0.2, g) < 1e-12
    assert K._froude_share(1.0, 0.8, 300.0, 300.0, 1.0, g) == 1.0
    assert K._froude_share(0.0, 0.8, 500.0, 300.0, 1.0, g) == 1.0
    # the model with and without the share, and with CFAST's rule, conserves alike (three storeys, a stair, a fire)
    for froude in (True, False, "cfast"):
        m = FireZoneModel(three_storeys(), t_inside_k=293.15, ceiling_vent_froude=froude, ceiling_vent_plumes=froude)
        for _ in range(12):
            m.q_kw[0] = min(0.0469 * m.t ** 2, 2000.0)
            m.step(10.0)
        bal = m.balance()
        assert abs(bal["mass_residual"]) < 1e-11 * bal["mass"]
        assert abs(bal["energy_residual"]) < 1e-11 * bal["energy"]


def test_cfast_froude_rule_takes_the_donor_layers_excess_over_ambient():
    """CFAST's vertical_flow (CFAST 7/8 ``vflow.f90``): Fr = V/√(g·d⁵·(T − T_amb)/T_amb) with T the donor layer's
    own temperature, share exp(−(Fr/2)²), 1 when T ≤ T_amb. A storey above (ambient 293.15 K) with a 1.8 m lower
    layer under a 330 K upper layer sends 0.5 kg/s down at 1.2 kg/m³ (V = 0.41667 m³/s). This model's rule takes
    the layers' difference: Fr = 0.41667/√(9.80665·1.8⁵·(330 − 293.25)/293.25) = 0.08646, share 0.99813 with the
    lower layer at 293.25 K (0.99814 at 293.15 K). CFAST's: with the lower layer at 293.25 K,
    Fr = 0.41667/√(9.80665·1.8⁵·0.1/293.15) = 1.6573, share exp(−0.68663) = 0.50327; at 293.15 K exactly Fr = 0 and
    the share is 1 (all hand-computed): a jump from 1 to 0.50 in 0.1 K, while the stratification that holds the
    interface (37 K) is the same."""
    g = 9.80665
    par = np.zeros(K.NPAR)
    geom = np.zeros((1, K.NGEOM))
    geom[0, K.G_TWALL] = 293.15
    props = np.zeros((1, K.NPROP))
    for tl, ours, cfast in ((293.25, 0.99813, 0.50327), (293.15, 0.99814, 1.0)):
        props[0, K.Q_TU], props[0, K.Q_TL] = 330.0, tl
        shares = []
        for rule in (1.0, K.RULE_CFAST):
            par[K.P_FROUDE] = rule
            t_w, t_c = K._froude_temperatures(0, 1, props, geom, par)
            shares.append(K._froude_share(0.5, 1.2, t_w, t_c, 1.8, g))
        assert shares[0] == pytest.approx(ours, abs=1e-4)
        assert shares[1] == pytest.approx(cfast, abs=1e-4)
    # the flow up from the upper layer: CFAST's buoyancy is the layer's excess over ambient, ours over the lower
    par[K.P_FROUDE] = K.RULE_CFAST
    assert K._froude_temperatures(0, 0, props, geom, par) == (330.0, 293.15)
    par[K.P_FROUDE] = 1.0
    assert K._froude_temperatures(0, 0, props, geom, par) == (330.0, 293.15)
    with pytest.raises(ValidationError, match="ceiling_vent_froude='CFAST'"):
        FireZoneModel(three_storeys(), ceiling_vent_froude="CFAST")


def test_a_layer_a_step_empties_keeps_no_energy():
    """A 600 K upper layer (0.05-1 kg) in the lower of two stacked shaft compartments drains up through a
    4 m² opening within one step (ceiling flows from the layer at the opening only, and the air falling in from
    above landing by the temperature rule, not as a plume that stays on the draining layer): the emptied layer ends
    with no mass and no energy, its remnant (the pressure-work split's share, up to −15 kJ before) handed
    to the other layer, and mass and energy balance to round-off."""
    b = NetworkBuilder("lift", storey_heights_m=[3.5, 3.5])
    lo = b.compartment("lo", kind="lift", storey=0, area_m2=6.0, lining=CONCRETE)
    hi = b.compartment("hi", kind="lift", storey=1, area_m2=6.0, lining=CONCRETE)
    b.ceiling_vent(lo, hi, area_m2=4.0)
    b.vent(hi, OUTSIDE, bottom_m=3.0, top_m=3.4, width_m=0.5, kind="leak")
    b.vent(lo, OUTSIDE, bottom_m=0.0, top_m=0.4, width_m=0.5, kind="leak")
    net = b.build()
    cv = CP_AIR - R_AIR
    for mu in (0.05, 0.3, 1.0):
        m = FireZoneModel(net, t_inside_k=293.15, t_outside_k=273.15, ceiling_vent_froude=False,
                          ceiling_vent_plumes=False)
        s = m.state
        u_total = s[0, K.UU] + s[0, K.UL]  # the same pressure: the layer's energy comes out of the lower's
        s[0, K.MU], s[0, K.UU], s[0, K.SU + K.SP_O2] = mu, cv * mu * 600.0, 0.2315 * mu
        s[0, K.ML] -= mu
        s[0, K.SL + K.SP_O2] -= 0.2315 * mu
        s[0, K.UL] = u_total - s[0, K.UU]
        m._initial = (m.total_mass(), m.total_energy())
        m.step(2.0)
        assert m.state[0, K.MU] == 0.0 and m.state[0, K.UU] == 0.0
        assert np.all(m.state[0, K.SU:K.SU + K.NSP] == 0.0)
        bal = m.balance()
        assert abs(bal["mass_residual"]) < 1e-12 * bal["mass"]
        assert abs(bal["energy_residual"]) < 1e-12 * bal["energy"]


def test_sooty_upper_layer_radiates_to_the_surfaces_by_hand():
    """The MQH room after 120 s of 500 kW: the kernel's upper-layer radiation checked by hand. Grey gas of
    its soot, κ = 1862·f_v·T (Tien, Lee & Stretton, SFPE Handbook), f_v = soot/(V_u·1800 kg/m³), mean beam
    length 3.6·V_u/A_u; exchange σ·(A_u − A_o)·(T_u⁴ − T_s⁴)/(1/ε_g + 1/ε_w − 1) with A_u = ceiling + walls
    above the interface + the interface (the floor seen through the clear lower layer) and A_o the door to
    the outside (2 m²), through which the layer radiates σ·ε_g·A_o·(T_u⁴ − T_out⁴); the lumped surface's
    balance (convection in + flame radiation + layer radiation = MQH conduction) closes to round-off."""
    m = FireZoneModel(one_room(), dt_max=0.5)
    m.q_kw[:] = 500.0
    m.step(120.0)
    src = np.zeros((1, K.NSRC))
    qb = np.zeros(1)
    m.par[K.P_TIME] = m.t
    a = m.arrays
    a_open = K.open_area(a["vent"], a["vidx"], a["vvent"], a["vvidx"], 1)
    assert a_open[0] == pytest.approx(2.0)
    K.fire_sources(m.state, a["geom"], m.props, m.par, m.q_kw, 0.5, src, qb, a_open, np.empty((0, 3)),
                    np.zeros((1, 3)))
    tu, tl, zi, vu = m.t_upper[0], m.t_lower[0], m.layer_height[0], m.props[0, K.Q_VU]
    a_u, a_l = 16.0 + 16.0 * (2.4 - zi), 16.0 + 16.0 * zi
    bound = a_u + 16.0
    f_v = m.state[0, K.SU + K.SP_SOOT] / (vu * 1800.0)
    eps_g = 1.0 - np.exp(-1862.0 * f_v * tu * 3.6 * vu / bound)
    assert 0.05 < eps_g < 0.9  # a sooty layer, neither clear nor black
    ts = src[0, 6]
    sigma = 5.670374419e-8
    rad = sigma * (bound - 2.0) * (tu ** 4 - ts ** 4) / (1 / eps_g + 1 / 0.9 - 1)
    out = sigma * eps_g * 2.0 * (tu ** 4 - 293.15 ** 4)
    assert src[0, 7] == pytest.approx(rad, rel=1e-12)
    assert src[0, 8] == pytest.approx(out, rel=1e-12)
    assert src[0, 4] == pytest.approx(10.0 * a_u * (tu - ts) + rad + out, rel=1e-12)
    hk = mqh_hk(m.t, 0.16, 790.0, 900.0, 0.016) * 1000.0
    gain = 10.0 * (a_u * (tu - ts) + a_l * (tl - ts)) + 0.35 * qb[0] * 1000.0 + rad
    assert gain == pytest.approx(hk * (a_u + a_l) * (ts - 293.15), rel=1e-10)
    assert tl < ts < tu


def test_layer_radiation_cools_the_layer_and_warms_the_lower_layer_conserving_energy():
    """Same room and fire with and without layer radiation (300 s): the radiating upper layer is cooler,
    the surfaces it heats warm the lower layer, the energy balance closes to round-off and the radiated
    part is a share of what the walls took."""
    runs = {}
    for on in (False, True):
        m = FireZoneModel(one_room(), dt_max=0.5, layer_radiation=on)
        m.q_kw[:] = 500.0
        m.step(300.0)
        bal = m.balance()
        assert abs(bal["energy_residual"]) < 1e-11 * bal["energy"]
        assert abs(bal["mass_residual"]) < 1e-11 * bal["mass"]
        runs[on] = (m.t_upper[0], m.t_lower[0], bal)
    (tu0, tl0, b0), (tu1, tl1, b1) = runs[False], runs[True]
    assert b0["layer_radiation"] == 0.0 and b0["vent_radiation"] == 0.0
    assert 0.0 < b1["layer_radiation"] < b1["walls"]
    assert 0.0 < b1["vent_radiation"] < b1["layer_radiation"]
    assert tu1 < tu0 - 5.0
    assert tl1 > tl0


def test_surface_emissivity_is_validated():
    with pytest.raises(ValidationError, match="surface_emissivity"):
        FireZoneModel(one_room(), surface_emissivity=0.0)


def test_post_flashover_room_peaks_near_the_en_1991_1_2_parametric_fire():
    """A ventilation-controlled office room against EN 1991-1-2 Annex A's parametric fire.

    6 × 6 × 3 m room lined with 16 mm gypsum (the network's default lining, b = √(kρc) = 424 J/m²s^½K), one
    window 3 m wide from 0.9 to 2.4 m: opening factor O = A_v·√h_eq/A_t = 4.5·√1.5/144 = 0.0383 m^½; fire
    load 511 MJ/m² of floor (EN 1991-1-2 Annex E table E.4, office, 80 % fractile) = 127.8 MJ/m² of A_t;
    ventilation controlled (t_max = 0.2e-3·q_td/O = 40.1 min > t_lim 20 min): Annex A's peak is 1173 °C at
    40.1 min (:func:`physics.fire_correlations.parametric_fire_c`). The model's fire: a medium t² growth
    (EN's t_lim 20 min class) to twice Kawagoe's 1500·A_v·√h_eq kW; it burns what the window's air allows.
    Peak upper-layer temperature within ±15 % in K: Annex A is a design envelope fitted to compartment tests
    with about that scatter. Measured: 1357 °C at 810 s (+12.7 %); without the layer's radiation 1865 °C
    (+48 %). Not asserted, a known miss: the same room in 0.2 m concrete (b = 1697) runs to 1240 °C against
    Annex A's 770 °C (+45 %; the lumped quasi-steady MQH surface keeps no heat in the wall)."""
    b = NetworkBuilder("office", storey_heights_m=[3.0])
    r = b.compartment("office", kind="room", storey=0, area_m2=36.0)
    b.vent(r, OUTSIDE, bottom_m=0.9, top_m=2.4, width_m=3.0, kind="door")
    net = b.build()
    a_v, h_eq, a_t = 4.5, 1.5, 2 * 36.0 + 4 * 6.0 * 3.0
    o = a_v * np.sqrt(h_eq) / a_t
    q_td = 511.0 * 36.0 / a_t
    lining_b = np.sqrt(net.wall_k[0] * net.wall_rho[0] * net.wall_c[0])
    t_max_h = 0.2e-3 * q_td / o
    en_peak_c = float(parametric_fire_c(t_max_h, opening_factor=o, b=lining_b, q_td_mj_m2=q_td, growth="medium"))
    assert o == pytest.approx(0.0383, abs=1e-4) and en_peak_c == pytest.approx(1173.0, abs=1.0)
    m = FireZoneModel(net, dt_max=1.0)
    q_vent = 1500.0 * a_v * np.sqrt(h_eq)
    peak = 0.0
    while m.t < t_max_h * 3600.0 - 1e-6:
        m.q_kw[:] = min(0.01172 * (m.t + 0.5) ** 2, 2.0 * q_vent)
        m.step(10.0)
        peak = max(peak, m.t_upper[0])
    assert m.q_burned[0] < 0.95 * m.q_kw[0]  # ventilation controlled
    assert peak == pytest.approx(en_peak_c + 273.15, rel=0.15), peak - 273.15
    bal = m.balance()
    assert abs(bal["energy_residual"]) < 1e-11 * bal["energy"]
    assert bal["vent_radiation"] > 0.1 * bal["released"]  # the window's radiation is a main loss


def _annex_a_office_peak(lining, **kw):
    """Peak upper-layer temperature (K) of the Annex A office room (the test above) lined with ``lining``."""
    b = NetworkBuilder("office", storey_heights_m=[3.0])
    r = b.compartment("office", kind="room", storey=0, area_m2=36.0, **({"lining": lining} if lining else {}))
    b.vent(r, OUTSIDE, bottom_m=0.9, top_m=2.4, width_m=3.0, kind="door")
    m = FireZoneModel(b.build(), dt_max=1.0, **kw)
    q_vent = 1500.0 * 4.5 * np.sqrt(1.5)
    peak = 0.0
    while m.t < 0.2e-3 * (511.0 * 36.0 / 144.0) / (4.5 * np.sqrt(1.5) / 144.0) * 3600.0 - 1e-6:
        m.q_kw[:] = min(0.01172 * (m.t + 0.5) ** 2, 2.0 * q_vent)
        m.step(10.0)
        peak = max(peak, m.t_upper[0])
    bal = m.balance()
    assert abs(bal["energy_residual"]) < 1e-11 * bal["energy"]
    return peak


def test_conducting_walls_give_the_annex_a_lining_effect():
    """The Annex A office room in 16 mm gypsum (b = 424) and in 0.2 m concrete (b = 1697) with 1-D conducting walls
    (``wall_conduction=True``: ceiling, walls and floor): EN 1991-1-2 Annex A's peaks differ by 1173 − 770 = 403 K,
    the heavy wall storing the heat; the model's by 417 K (1442 vs 1025 °C), within ±15 % (the scatter of the
    compartment tests Annex A fits). The lumped quasi-steady surface gives 117 K (1357 vs 1240 °C): it stores
    nothing. Not asserted: each peak against Annex A's, +18.6 % (gypsum; +12.7 % lumped) and +24.4 % (concrete;
    +45 % lumped): no calcination of the gypsum (its dehydration takes heat, Annex A's tests include it), no
    radiation between the surfaces, one lining for ceiling, walls and floor."""
    gyp = _annex_a_office_peak(None, wall_conduction=True)
    con = _annex_a_office_peak(CONCRETE, wall_conduction=True)
    assert gyp - con == pytest.approx(1173.0 - 770.0, rel=0.15), (gyp - 273.15, con - 273.15)
    assert con - 273.15 < 1240.0 - 150.0  # the concrete wall stores what the lumped surface could not
