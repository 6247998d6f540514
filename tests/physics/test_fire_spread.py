"""External vertical spread on closed-form inputs: Annex B flame height, its inverse, Law (1978), the chain."""

from __future__ import annotations

import numpy as np
import pytest

from physics import fire_correlations as fc
from physics.fire_source import FireSource
from physics.fire_spread import (
    Facade,
    external_flame,
    flame_reach_kw,
    law_flame_height_m,
    reach_time_s,
    storey_ignition_times,
    window_flame_height_m,
)
from twin.errors import ValidationError


def test_annex_b_flame_height_by_hand():
    # EN 1991-1-2 B.4.1: L_L = h_eq·(2.37·(Q/(A_v·ρ_g·√(g·h_eq)))^(2/3) − 1), Q in MW, ρ_g 0.45 kg/m³.
    # 5 MW out of a 2 x 2 m window: x = 5/(4·0.45·√19.62) = 0.6271, L_L = 2·(2.37·0.7325 − 1) = 1.472 m
    # (hand arithmetic to 4 figures: rel 1e-3).
    assert window_flame_height_m(5000.0, 4.0, 2.0) == pytest.approx(1.472, rel=1e-3)
    # a small fire does not reach past the soffit: L_L = 0 (the max(0, ·) of the Annex)
    assert window_flame_height_m(500.0, 4.0, 2.0) == 0.0
    # the inverse gives back the height
    for h in (0.5, 1.2, 3.0):
        assert window_flame_height_m(flame_reach_kw(h, 5.4, 1.8), 5.4, 1.8) == pytest.approx(h, rel=1e-12)


@pytest.mark.parametrize(("r", "w", "h"), [(0.3, 2.0, 1.5), (1.0, 3.0, 1.8), (2.0, 4.0, 2.0)])
def test_annex_b_is_laws_correlation_for_wood(r, w, h):
    # Law (1978): z + h = 12.8·(R/w)^(2/3). With Q = R·17.5 MJ/kg (wood, EN 1991-1-2 Annex E) Annex B's
    # L_L + h = 2.37/(ρ_g^(2/3)·g^(1/3))·(Q/w)^(2/3) = 1.886·(Q/w)^(2/3) against 12.8/17.5^(2/3) = 1.899:
    # the two agree within 0.72 % at every size (asserted 1 %).
    lb = window_flame_height_m(r * 17500.0, w * h, h)
    ll = law_flame_height_m(r, w, h)
    assert lb + h == pytest.approx(ll + h, rel=0.01)


def test_flame_only_while_post_flashover_and_ventilation_controlled():
    # Fuel heat release rising 20 kW/s, vent limit 5 MW, flashover at 100 s: the flame appears at 250 s
    # (q > limit) and its tip reaches a 1.2 m spandrel when q = flame_reach_kw(1.2) = 6022 kW, t = 301.1 s.
    # Linear interpolation of the smooth L_L(q) on 1 s samples: error < 1e-3 s.
    t = np.arange(0.0, 601.0, 1.0)
    flame = external_flame(t, 20.0 * t, 5000.0, 100.0, 5.4, 1.8)
    assert np.all(flame[t <= 250.0] == 0.0) and flame[251] > 0.0
    q_star = flame_reach_kw(1.2, 5.4, 1.8)
    assert q_star == pytest.approx(6022.0, abs=1.0)
    assert reach_time_s(t, flame, 1.2) == pytest.approx(q_star / 20.0, abs=1e-3)
    # not yet flashed over: no external flame at all
    assert np.all(external_flame(t, 20.0 * t, 5000.0, np.inf, 5.4, 1.8) == 0.0)
    assert reach_time_s(t, flame, 50.0) == float("inf")


def _office(storey: int, t0: float) -> FireSource:
    # 100 m² office, fast growth, Thomas-type flashover at 2 MW, window 3 x 1.8 m -> vent limit 10.9 MW
    vent = float(fc.ventilation_limit_kw(5.4, 1.8))
    return FireSource(f"office {storey}", floor_area_m2=100.0, fuel_load_mj_m2=400.0, t0_s=t0, growth="fast",
                      vent_limit_kw=vent, flashover_kw=2000.0)


def test_leap_frog_chain_up_the_facade():
    # Each storey flashes over √(2000/0.0469) = 206.5 s after ignition; then the fuel burns at
    # RHR_f·A = 25 MW > the 10.9 MW vent limit, its flame (Annex B at 25 MW: 5.95 m) clears the 1.2 m spandrel
    # at once, and the storey above ignites delay_s = 600 s later: t_k = k·(206.5 + 600) s from the origin.
    # The reach is found on the 1 s grid (the flame jumps into existence at flashover): tolerance 1 s per storey.
    facade = Facade(storey_base_m=tuple(3.0 * np.arange(6)), sill_m=0.9, window_height_m=1.8, window_width_m=3.0)
    assert facade.spandrel_m(2) == pytest.approx(1.2)
    out = storey_ignition_times(2, 60.0, facade, _office, t_end_s=4000.0)
    step = np.sqrt(2000.0 / 0.0469) + 600.0
    ign = out["ignition_s"]
    assert np.isinf(ign[:2]).all()  # no downward spread
    assert np.all(np.abs(ign[2:] - (60.0 + step * np.arange(4))) <= 1.0 * np.arange(4) + 1e-9)
    assert np.isinf(out["reach_s"][5])  # the top storey has nothing above it
    assert float(window_flame_height_m(25000.0, 5.4, 1.8)) == pytest.approx(out["flame_m"][2].max())
    # 8 m storeys (6.2 m between the windows, e.g. a double-height plant floor) are beyond the 5.95 m flame: the spread stops at the origin
    tall = Facade(storey_base_m=tuple(8.0 * np.arange(6)), sill_m=0.9, window_height_m=1.8, window_width_m=3.0)
    out2 = storey_ignition_times(2, 60.0, tall, _office, t_end_s=4000.0)
    assert tall.spandrel_m(2) == pytest.approx(6.2) and out2["flame_m"][2].max() < 6.2
    assert np.isinf(out2["ignition_s"][3:]).all() and np.isinf(out2["reach_s"][2])


def test_bad_input():
    with pytest.raises(ValidationError, match="window height h_eq_m=0"):
        window_flame_height_m(1000.0, 4.0, 0.0)
    with pytest.raises(ValidationError, match="storey_base_m"):
        Facade(storey_base_m=(0.0, 0.0))
    with pytest.raises(ValidationError, match="sill_m: give one number or one per storey"):
        Facade(storey_base_m=(0.0, 3.0, 6.0), sill_m=(0.9, 0.9))
    facade = Facade(storey_base_m=(0.0, 3.0))
    with pytest.raises(ValidationError, match="origin_storey=5"):
        storey_ignition_times(5, 0.0, facade, _office, t_end_s=100.0)
    with pytest.raises(ValidationError, match="delay_s=-1"):
        storey_ignition_times(0, 0.0, facade, _office, t_end_s=100.0, delay_s=-1.0)
