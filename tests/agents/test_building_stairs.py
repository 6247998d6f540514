"""SFPE element relations (agents.stairs) against the SFPE Handbook's equations and tables.

Source of every number: the hydraulic model of the SFPE Handbook (Nelson &
Mowrer 2002, 3rd ed. ch. 3-14; Gwynne & Rosenbaum 2016, 5th ed. ch. 59):
S = k (1 - 0.266 D) for 0.54 <= D <= 3.8 P/m²; Fs = S D; Fs,max 1.32 P/s/m
at k = 1.40; the stair table (riser/tread in inches 7.5/10, 7/11, 6.5/12,
6.5/13: k 1.00, 1.08, 1.16, 1.23 and Fs,max 0.94, 1.01, 1.09, 1.16 P/s/m);
boundary layers 0.15 m (stair walls, doors), 0.09 m (handrails).
"""

from __future__ import annotations

import numpy as np
import pytest

from agents.stairs import (
    D_MAX_FLOW,
    effective_width,
    max_specific_flow,
    merge_split,
    specific_flow,
    speed,
    stair_k,
    stair_travel_per_storey,
    transition_flow,
)
from twin.errors import ValidationError


def test_speed_by_density():
    assert speed(0.3, 1.40) == pytest.approx(0.85 * 1.40, abs=0.01)  # free flow: 0.85 k
    assert speed(2.0, 1.40) == pytest.approx(1.40 * (1 - 0.266 * 2.0))
    assert speed(3.8, 1.40) == 0.0
    assert np.all(np.diff(speed(np.linspace(0.54, 3.7, 50), 1.08)) < 0)


def test_specific_flow_peaks_at_1_88():
    d = np.linspace(0.54, 3.7, 3000)
    fs = specific_flow(d, 1.40)
    assert d[np.argmax(fs)] == pytest.approx(D_MAX_FLOW, abs=0.01) and D_MAX_FLOW == pytest.approx(1.88, abs=0.005)
    assert fs.max() == pytest.approx(max_specific_flow(1.40), rel=1e-4)
    assert max_specific_flow(1.40) == pytest.approx(1.32, abs=0.005)


@pytest.mark.parametrize("riser, tread, k, fsm", [
    pytest.param(191, 254, 1.00, 0.94, id="7.5/10"), pytest.param(178, 279, 1.08, 1.01, id="7/11"),
    pytest.param(165, 305, 1.16, 1.09, id="6.5/12"), pytest.param(165, 330, 1.23, 1.16, id="6.5/13")])
def test_stair_table_rows(riser, tread, k, fsm):
    assert stair_k(riser, tread) == pytest.approx(k)
    assert max_specific_flow(stair_k(riser, tread)) == pytest.approx(fsm, abs=0.01)


def test_stair_k_between_rows_and_outside():
    k = stair_k(175.0, 260.0)  # GB 50096 residential maximum riser, minimum tread
    assert 1.00 < k < 1.08
    with pytest.raises(ValidationError, match="outside the SFPE stair table"):
        stair_k(200.0, 220.0)


def test_effective_widths():
    assert effective_width(1.2, "stair_wall") == pytest.approx(0.90)
    assert effective_width(1.2, "handrail") == pytest.approx(1.02)
    assert effective_width(0.9, "door") == pytest.approx(0.60)
    with pytest.raises(ValidationError):
        effective_width(0.25, "door")


def test_stair_travel_follows_the_slope():
    # 3 m at 175/260 mm: 3 / sin(atan(175/260)) = 5.37 m along the flights, + 2 m of landings
    assert stair_travel_per_storey(3.0, 175.0, 260.0, 2.0) == pytest.approx(3.0 * np.hypot(175, 260) / 175 + 2.0)


def test_transition_passes_the_smallest_flow():
    assert transition_flow(2.0, 1.18, 0.91) == 0.91
    assert transition_flow(0.5, 1.18) == 0.5


def test_merge_split_holds_the_share_on_average():
    carry, floor, stair = 0.0, 0, 0
    for _ in range(1000):
        f, s, carry = merge_split(1, 5, 5, 0.3, carry)
        floor += f
        stair += s
    assert floor + stair == 1000 and floor == pytest.approx(300, abs=1)
    assert merge_split(4, 1, 10, 0.5)[:2] == (1, 3)  # places one stream cannot use go to the other
