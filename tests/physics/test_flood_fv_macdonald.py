"""MacDonald's steady channels with the finite-volume scheme, through the discharge and stage edges
(SWASHES, Delestre et al. 2013, IJNMF 72:269, §4.2; MacDonald et al. 1997, J. Hydraul. Eng. 123:1041).

Cases and beds: tests/physics/macdonald.py (the ``bc`` slice's module). Unlike the local-inertial scheme,
the full shallow-water equations have the prescribed h(x) as their steady state, so the FV scheme must
converge to it: first order in dx (HLL's dissipation and the one-sided bed term of the hydrostatic
reconstruction are O(dx)). Inflow: ``EdgeDischarge`` (q exactly, mass-exact); outlet: ``EdgeStage`` at h(L).
"""

from __future__ import annotations

import numpy as np
import pytest

from physics import flood_boundaries as FB
from physics.flood_fv import FVFloodModel
from physics.forcing import UniformRain
from tests.physics.macdonald import CASES


def _run(name: str, dx: float, t_end: float, order: int = 1):
    c = CASES[name]
    nx = int(round(c.length_m / dx))
    x = (np.arange(nx) + 0.5) * dx
    z = c.bed(x)
    rain = UniformRain.constant(c.rain_m_s * 3.6e6, 10 * t_end) if c.rain_m_s else None
    m = FVFloodModel(z[None, :], dx=dx, manning=c.n, rain=rain, h0=c.h(x)[None, :], order=order,
                     boundaries=[FB.EdgeDischarge("west", q_m2s=c.q0),
                                 FB.EdgeStage("east", level_m=float(c.h(c.length_m)))])
    m.hu[...] = c.q(x)[None, :]  # start from the exact state: the run settles on the scheme's own
    m.refresh()
    m.step(t_end)
    b = m.balance()
    assert b["relative_error"] <= 1e-12
    assert b["inflow"] == pytest.approx(c.q0 * dx * t_end, rel=1e-12)  # the edge's q, exactly
    return c, x, m


@pytest.mark.parametrize("name", ["subcritical", "rain"])
def test_macdonald_steady_channels_converge_at_first_order(name, one_thread):
    """SWASHES §4.2.1 (subcritical, L = 1000 m, q = 2 m²/s, n = 0.033) and the same profile with rain.
    Steady after 3000 s (~9 travel times L / sqrt(g h)). The depth error falls like dx: halving dx
    divides it by >= 1.7 (order >= 0.77, first order with the boundary cells' O(dx) terms); the cell
    discharge (hu) matches q(x) to O(dx) as well (the face mass fluxes are exact at steady state, the
    cell value differs by HLL's dissipation term)."""
    err, qerr = {}, {}
    for dx in (10.0, 5.0):
        c, x, m = _run(name, dx, 3000.0)
        err[dx] = float(np.abs(m.h[0] - c.h(x)).max())
        qerr[dx] = float(np.abs(m.hu[0] - c.q(x)).max())
        print(f"MacDonald {name} dx={dx}: max|dh| {err[dx]:.2e} m, max|dq| {qerr[dx]:.2e} m2/s")
    assert err[5.0] <= err[10.0] / 1.7
    assert qerr[5.0] <= qerr[10.0] / 1.7
    assert err[5.0] <= 0.02 * float(CASES[name].h(np.array([0.0]))[0])  # 2 % of the depth at 200 cells


def test_macdonald_second_order_is_closer_inside_the_channel(one_thread):
    """The same subcritical case at order 2 (MUSCL-minmod, Heun) on dx = 10 m: away from the two edge
    regions (100 m each) the error is at least halved against order 1 on the same grid (second order
    where the profile is smooth; minmod clips to first order at the crest). NOT MET near the discharge
    inlet: the order-2 depths there oscillate cell to cell by a few cm (stated, not asserted)."""
    c, x, m1 = _run("subcritical", 10.0, 3000.0, order=1)
    _, _, m2 = _run("subcritical", 10.0, 3000.0, order=2)
    inner = (x > 100.0) & (x < 900.0)
    e1 = float(np.abs(m1.h[0] - c.h(x))[inner].max())
    e2 = float(np.abs(m2.h[0] - c.h(x))[inner].max())
    e2_all = float(np.abs(m2.h[0] - c.h(x)).max())
    print(f"MacDonald subcritical dx=10: inner max|dh| order 1 {e1:.2e}, order 2 {e2:.2e}; order 2 overall {e2_all:.2e}")
    assert e2 <= 0.5 * e1


def test_macdonald_transcritical_jump_in_its_cell(one_thread):
    """SWASHES §4.2.3 (L = 100 m, q = 2 m²/s, n = 0.0328): subcritical inflow, critical at x = 50 m,
    supercritical, a hydraulic jump at x = 200/3 m, subcritical outflow. A conservative shock-capturing
    scheme puts the jump where the Rankine-Hugoniot conditions hold: the steepest rise of the depth
    within one cell of x = 200/3 m, and the depth outside the jump's three cells within 5 % of h(x)
    (first order at dx = 1 m: O(dx) and the smeared sonic point)."""
    c, x, m = _run("transcritical", 1.0, 600.0)
    h = m.h[0]
    i = int(np.argmax(np.diff(h)))
    x_jump = 0.5 * (x[i] + x[i + 1])
    away = np.abs(x - c.jump_x) > 3.0
    rel = float((np.abs(h - c.h(x)) / c.h(x))[away].max())
    print(f"MacDonald transcritical: jump at {x_jump:.2f} m (analytic {c.jump_x:.2f}), max rel error away {rel:.3f}")
    assert abs(x_jump - c.jump_x) <= 1.0
    assert rel <= 0.05
