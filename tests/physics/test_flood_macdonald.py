"""MacDonald's steady channels through the local-inertial scheme, with the discharge and stage edges.

Cases and bed construction: tests/physics/macdonald.py (SWASHES, Delestre et al. 2013, IJNMF 72:269, §4.2;
MacDonald et al. 1997, J. Hydraul. Eng. 123:1041). Each case runs on a 3-row strip from the shallow-water
depth h(x) to steady state, with q0 entering along the west edge (EdgeDischarge) and the level
z(L) + h(L) held beyond the east edge (EdgeStage).

What the scheme must reach, and why the tolerances:

* its own steady state: the local-inertial equations drop the advective term, so at steady state the
  water-surface slope balances friction alone at every face, n² q² = h_f^(10/3) (eta_i - eta_{i+1})/dx.
  :func:`macdonald.li_steady` solves that relation face by face; the model must match it to the
  convergence of the run (1e-6 m; the relation holds exactly in the scheme's fixed point, see
  physics/_kernels/flood.py: friction implicit, q-centred average = q for a linear q);
* the gap to the shallow-water h(x) is the neglected term: linearising the two steady equations about
  h(x), the gap d = h_LI - h obeys d' = (10/3)(S_f/h) d - Fr² h' + 2 q R/(g h²), d(L) = 0 (Fr² = q²/(g h³),
  S_f = n² q²/h^(10/3)); the model's gap must be that d up to the scheme's first-order bed error: the
  face depth h_f = max(eta) - max(z) takes the higher bed of the face, |z'| dx / 2 above the
  face-centred bed, so the profile carries an O(dx) error bounded by dx max|z'| / 2;
* the volume balance closes to round-off (relative 1e-12, float64) and the steady discharge is q(x) at
  every face (1e-9 relative: the fixed point).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from physics import flood_boundaries as FB
from physics.flood import FloodModel
from physics.forcing import UniformRain
from tests.physics.macdonald import CASES, G, li_steady


def _run(name: str, dx: float, t_end: float):
    c = CASES[name]
    nx, ny = int(round(c.length_m / dx)), 3
    x = (np.arange(nx) + 0.5) * dx
    z = c.bed(x)
    eta_out = float(c.h(c.length_m))  # z(L) = 0
    rain = UniformRain.constant(c.rain_m_s * 3.6e6, 10 * t_end) if c.rain_m_s else None
    m = FloodModel(np.tile(z, (ny, 1)), dx=dx, manning=c.n, rain=rain, h0=np.tile(c.h(x), (ny, 1)),
                   boundaries=[FB.EdgeDischarge("west", q_m2s=c.q0), FB.EdgeStage("east", level_m=eta_out)])
    m.step(t_end)
    q_faces = c.q((np.arange(nx) + 1) * dx)
    h_li = li_steady(z, q_faces, c.n, dx, eta_out) - z
    return c, x, z, m, q_faces, h_li


def _gap(c, x) -> np.ndarray:
    """d(x) of the module docstring, integrated upstream from d(L) = 0."""
    def rhs(s, d):
        h, q = c.h(s), c.q(s)
        return (10 / 3) * c.n**2 * q * q / h ** (13 / 3) * d - c.froude2(s) * c.dh(s) + 2 * q * c.rain_m_s / (G * h * h)

    sol = solve_ivp(rhs, (c.length_m, x[0]), [0.0], t_eval=x[::-1], rtol=1e-10, atol=1e-12)
    return sol.y[0][::-1]


@pytest.mark.parametrize("name", ["subcritical", "rain"])
def test_macdonald_subcritical_reaches_the_local_inertial_steady_state(name, one_thread):
    dx = 10.0
    c, x, z, m, q_faces, h_li = _run(name, dx, 6000.0)
    h = m.h[1]
    b = m.balance()
    gap = _gap(c, x)
    err = (h - c.h(x)) - gap
    bound = dx * float(np.abs(c.slope(x)).max()) / 2
    print(f"MacDonald {name}: |h - h_LI| {np.abs(h - h_li).max():.2e} m, |h - h_SWE| {np.abs(h - c.h(x)).max():.4f} m "
          f"(neglected term d: {np.abs(gap).max():.4f} m, Fr² up to {c.froude2(x).max():.2f}), |h - h_SWE - d| "
          f"{np.abs(err).max():.4f} m <= dx max|z'|/2 = {bound:.4f} m")
    assert np.abs(m.h - h[None, :]).max() <= 1e-12  # the strip stays one-dimensional
    assert np.abs(h - h_li).max() <= 1e-6
    np.testing.assert_allclose(m.qx[1, 1:], q_faces, rtol=1e-9)
    assert m.qx[1, 0] == pytest.approx(c.q0, rel=1e-12)
    assert b["relative_error"] <= 1e-12
    assert np.abs(err).max() <= bound


def test_macdonald_transcritical_jump_is_not_represented_but_mass_and_discharge_hold(one_thread):
    """SWASHES §4.2.3: subcritical inflow, critical near x = 58 m, supercritical, a jump at x = 200/3 m.

    Without the advective term the scheme has no critical transition and no jump: it reaches its own
    (subcritical, smooth) steady state on that bed, far above the supercritical depth (measured: up
    to 0.7 m off h(x) there). What it must still do: reach that state (1e-6 m, as above), carry
    q = 2 m²/s through every face, close the balance, and downstream of the jump, where the flow is
    subcritical again, keep the gap to h(x) within the neglected term plus the first-order bed error
    (the bound of the module docstring).
    """
    dx = 1.0
    c, x, z, m, q_faces, h_li = _run("transcritical", dx, 1500.0)
    h = m.h[1]
    down = x > c.jump_x + 3 * dx
    gap = _gap(c, x)
    err = (h - c.h(x) - gap)[down]
    bound = dx * float(np.abs(c.slope(x)).max()) / 2
    print(f"MacDonald transcritical: |h - h_LI| {np.abs(h - h_li).max():.2e} m; supercritical reach |h - h_SWE| up "
          f"to {np.abs(h - c.h(x))[~down].max():.3f} m; downstream of the jump |h - h_SWE - d| "
          f"{np.abs(err).max():.4f} m <= {bound:.4f} m")
    assert np.abs(h - h_li).max() <= 1e-6
    np.testing.assert_allclose(m.qx[1], 2.0, rtol=1e-9)
    assert m.balance()["relative_error"] <= 1e-12
    assert np.all(h > 0)
    assert np.abs(err).max() <= bound
