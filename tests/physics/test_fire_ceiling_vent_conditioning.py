"""How much the ceiling-vent rule's answer hangs on hundredths of a kelvin (issue 14, the three-storey stack).

The stack's stairs fill through 4 m² wells during the first 200 s (physics.fire_cases.three_storey_stack,
fire on the ground floor). Two ceiling-vent rules decide which layer of the storey above feeds the flow down
a well (:func:`physics._kernels.fire_zone.froude_split`):

- this model's (the default): a share exp(−(Fr/2)²) from the layer next to the opening, the Froude number on
  the buoyancy that holds the interface, T_u − T_l (5-40 K here);
- CFAST 8's (``vflow.f90``, ``ceiling_vent_froude="cfast"``): the same form on T_l − T_ambient of the
  donor layer itself, 0.001-0.3 K here, so the share swings between 1 and 0 with hundredths of a kelvin.

Perturbed here by 0.01 K two ways at once: the stairs' air starts 0.01 K warmer than the rooms' (through the
public ``t_inside_k``), and the interior ambient the walls relax to and CFAST's rule measures against is
0.01 K lower (``G_TWALL``; no public handle). Measured (layer heights over 0-160 s, largest change):
the default 0.0004 m with lumped walls and 0.0006 m with conducting walls; CFAST's rule with conducting
walls 0.70 m (stair 1 at 110 s), with lumped walls 0.12 m. A well-conditioned rule moves a layer far less
than the ±0.3 m of issue 14's criterion; 0.05 m is the bound asserted.
"""

from __future__ import annotations

import numpy as np
import pytest

from physics import fire_cases
from physics._kernels import fire_zone as K
from physics.fire_zone import FireZoneModel

#: how long the early filling is followed (s): CFAST's rule flips stair 1 within it (110 s)
T_END_S = 160.0
#: the perturbation (K)
DT_K = 0.01


def _layer_heights(perturbed: bool, **model_kw) -> np.ndarray:
    """Layer heights (time, compartment) of the three-storey stack at 1 s steps to ``T_END_S``."""
    case = fire_cases.three_storey_stack()
    fire = case.fires[0]
    t_in = np.full(case.network.n_compartments, case.t_in_c + 273.15)
    if perturbed:
        for name in ("stair 0", "stair 1", "stair 2"):
            t_in[case.network.index(name)] += DT_K
    m = FireZoneModel(case.network, t_inside_k=t_in, t_outside_k=case.t_out_c + 273.15,
                      radiative_fraction=fire.radiative_fraction,
                      fire_diameter_m=2.0 * np.sqrt(fire.area_m2 / np.pi), fuel=fire.zone_fuel(), **model_kw)
    if perturbed:
        m.arrays["geom"][:, K.G_TWALL] -= DT_K
    out = []
    while m.t < T_END_S - 1e-9:
        m.q_kw[:] = case.q_kw(m.t + 0.5)
        m.step(1.0)
        out.append(m.layer_height.copy())
    return np.array(out)


def _largest_change(**model_kw) -> float:
    return float(np.max(np.abs(_layer_heights(True, **model_kw) - _layer_heights(False, **model_kw))))


@pytest.mark.parametrize("walls", [False, True], ids=["lumped walls", "conducting walls"])
def test_default_ceiling_vent_rule_is_well_conditioned(walls):
    """The default rule: 0.01 K moves no layer of the stack by more than 0.05 m (measured 0.0004-0.0006 m)."""
    assert _largest_change(wall_conduction=walls) < 0.05


def test_cfasts_ceiling_vent_rule_hangs_on_hundredths_of_a_kelvin():
    """Why CFAST's rule is an option, not the default: with conducting walls the same 0.01 K moves stair 1's
    interface by 0.70 m (more than issue 14's whole ±0.3 m tolerance)."""
    assert _largest_change(wall_conduction=True, ceiling_vent_froude="cfast", ceiling_vent_plumes="cfast") > 0.3
