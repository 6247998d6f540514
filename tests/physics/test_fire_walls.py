"""1-D transient wall conduction (physics._kernels.fire_walls) against closed forms and a dense solve.

Closed forms: Carslaw & Jaeger, Conduction of Heat in Solids (2nd ed., 1959): the semi-infinite solid
under a constant surface flux q (§2.9, T_s − T_i = 2q/k·√(αt/π)) and heated by convection from a fluid
at T_g (§2.7, (T_s − T_i)/(T_g − T_i) = 1 − exp(β²)·erfc(β), β = h·√(αt)/k); and the steady slab,
q = ΔT/(1/h + L/k). The tolerances are the discretisation's: 12 nodes whose spacings grow by 1.35 from
the face and 1 s backward-Euler steps (first-order in time), checked against refinement below.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from physics._kernels import fire_walls as W
from physics.fire_network import CONCRETE

GYPSUM = {"k": 0.16, "rho": 790.0, "c": 900.0, "thickness_m": 0.016}  # the network's MQH gypsum lining


def _wall(mat, n=12):
    _x, cap, cond = W.wall_grid(mat["k"], mat["rho"], mat["c"], mat["thickness_m"], n=n)
    return cap[None, :], cond[None, :]


def _run(mat, t_end, flux_of, *, h_back=0.0, t_back=293.15, dt=1.0, n=12):
    cap, cond = _wall(mat, n)
    temps = np.full((1, n), 293.15)
    scratch = np.empty((1, 2 * n))
    stored0 = float(np.sum(cap * temps))
    into = 0.0
    for _ in range(int(round(t_end / dt))):
        q = flux_of(temps[0, 0])
        W.advance(temps, cap, cond, np.array([q]), np.array([h_back]), np.array([t_back]), dt, scratch)
        into += q * dt
        into -= h_back * (temps[0, -1] - t_back) * dt  # the back's loss at the new state (implicit)
    return temps, float(np.sum(cap * temps)) - stored0, into


def test_semi_infinite_solid_under_constant_flux():
    """Carslaw & Jaeger §2.9: 10 kW/m² on 0.2 m concrete for 600 s (penetration 4·√(αt) = 9 cm < 20 cm, so the
    slab is semi-infinite to the face): T_s − T_i = 2q/k·√(αt/π) = 162.9 K (161.3 K: −1.0 %); within 2 %."""
    q, t = 1e4, 600.0
    temps, stored, into = _run(CONCRETE, t, lambda ts: q)
    alpha = CONCRETE["k"] / (CONCRETE["rho"] * CONCRETE["c"])
    exact = 2 * q / CONCRETE["k"] * math.sqrt(alpha * t / math.pi)
    assert temps[0, 0] - 293.15 == pytest.approx(exact, rel=0.02)
    assert temps[0, -1] - 293.15 < 1e-3 * exact  # the back has not felt it
    assert stored == pytest.approx(into, rel=1e-12)  # energy to round-off


def test_semi_infinite_solid_heated_by_convection():
    """Carslaw & Jaeger §2.7: gas at 800 °C, h = 25 W/m²K on 0.2 m concrete, 900 s:
    (T_s − T_i)/(T_g − T_i) = 1 − exp(β²)·erfc(β); within 2 %."""
    from scipy.special import erfcx

    h, tg, t = 25.0, 1073.15, 900.0
    temps, stored, into = _run(CONCRETE, t, lambda ts: h * (tg - ts))
    alpha = CONCRETE["k"] / (CONCRETE["rho"] * CONCRETE["c"])
    beta = h * math.sqrt(alpha * t) / CONCRETE["k"]
    exact = (tg - 293.15) * (1 - erfcx(beta))
    assert temps[0, 0] - 293.15 == pytest.approx(exact, rel=0.02)
    assert stored == pytest.approx(into, rel=1e-12)


def test_steady_slab_conducts_delta_t_over_the_resistances():
    """16 mm gypsum between gas at 400 °C (h = 10 W/m²K) and a back held at 20 °C (h_b = 1e6): after 3 h (τ = L²/α
    = 1.1e3 s) the flux is ΔT/(1/h + L/k) = 380/(0.1 + 0.1) = 1900 W/m² (with the back's 1/h_b), to 1e-6."""
    h, tg = 10.0, 673.15
    temps, _stored, _into = _run(GYPSUM, 3 * 3600.0, lambda ts: h * (tg - ts), h_back=1e6)
    q_face = h * (tg - temps[0, 0])
    exact = (tg - 293.15) / (1 / h + GYPSUM["thickness_m"] / GYPSUM["k"] + 1 / 1e6)  # the back's 1/h_b: 5e-6
    assert q_face == pytest.approx(exact, rel=1e-6)
    assert 1e6 * (temps[0, -1] - 293.15) == pytest.approx(exact, rel=1e-6)  # what goes in comes out the back


def test_refining_the_grid_converges():
    """Halving the time step and doubling the nodes moves the constant-flux surface temperature by < 1 %: the
    tolerances above are the scheme's, not a fit."""
    coarse, _, _ = _run(CONCRETE, 600.0, lambda ts: 1e4)
    fine, _, _ = _run(CONCRETE, 600.0, lambda ts: 1e4, dt=0.5, n=24)
    assert abs(coarse[0, 0] - fine[0, 0]) < 0.01 * (fine[0, 0] - 293.15)


def test_kernel_matches_a_dense_solve():
    """The Thomas sweep against numpy's dense solve of the same backward-Euler system, three walls at once."""
    rng = np.random.default_rng(3)
    rows = [W.wall_grid(*(m[k] for k in ("k", "rho", "c", "thickness_m")), n=8) for m in (GYPSUM, CONCRETE, GYPSUM)]
    cap = np.stack([r[1] for r in rows])
    cond = np.stack([r[2] for r in rows])
    temps = 293.15 + rng.uniform(0, 300, (3, 8))
    flux, hb, tb, dt = rng.uniform(0, 2e4, 3), np.array([5.0, 0.0, 15.0]), np.full(3, 290.0), 2.0
    expected = np.empty_like(temps)
    for i in range(3):
        a = np.diag(cap[i] / dt)
        for j, g in enumerate(cond[i]):
            a[j, j] += g
            a[j + 1, j + 1] += g
            a[j, j + 1] -= g
            a[j + 1, j] -= g
        a[-1, -1] += hb[i]
        rhs = cap[i] / dt * temps[i]
        rhs[0] += flux[i]
        rhs[-1] += hb[i] * tb[i]
        expected[i] = np.linalg.solve(a, rhs)
    W.advance(temps, cap, cond, flux, hb, tb, dt, np.empty((3, 16)))
    np.testing.assert_allclose(temps, expected, rtol=1e-12)


def test_wall_grid_spans_the_thickness_and_holds_its_heat_capacity():
    x, cap, cond = W.wall_grid(1.6, 2400.0, 750.0, 0.2, n=12)
    assert x[0] == 0.0 and x[-1] == pytest.approx(0.2) and np.all(np.diff(x) > 0)
    assert cap.sum() == pytest.approx(2400.0 * 750.0 * 0.2)
    assert np.all(np.diff(np.diff(x)) > 0)  # finer at the exposed face
    assert cond[0] == pytest.approx(1.6 / x[1])


def test_zone_model_with_conducting_walls_conserves_energy_into_the_walls():
    """The MQH room (physics.fire_cases.one_room) for 600 s with ``wall_conduction=True``: the gas balance closes to
    round-off as before, and the heat the walls hold plus what left their back faces equals what the gas and the
    flame's radiation gave them (the ``walls`` and ``radiated`` tallies), to round-off."""
    from physics.fire_cases import one_room
    from physics.fire_zone import FireZoneModel

    case = one_room()
    m = FireZoneModel(case.network, wall_conduction=True)
    for _ in range(600):
        m.q_kw[:] = case.q_kw(m.t + 0.5)
        m.step(1.0)
    bal = m.balance()
    assert abs(bal["energy_residual"]) < 1e-11 * bal["energy"]
    into_walls = bal["walls"] + bal["radiated"]
    assert m.wall_energy() - m._wall_e0 + m.wall_back_loss_j == pytest.approx(into_walls, rel=1e-11)
    assert np.all(m.wall_t[0, :, 0] > m.wall_t[0, :, -1]) and np.all(m.wall_t[0, :, -1] > 293.15)  # heated through
    assert m.wall_t[0, 0, 0] > m.wall_t[0, 1, 0] and m.wall_t[0, 0, 0] > m.wall_t[0, 2, 0]  # the ceiling hottest


def test_wall_nodes_are_validated():
    from physics.fire_cases import one_room
    from physics.fire_zone import FireZoneModel
    from twin.errors import ValidationError

    with pytest.raises(ValidationError, match="wall_nodes"):
        FireZoneModel(one_room().network, wall_conduction=True, wall_nodes=2)
