"""The room run's numbers: peak flow over a window, congestion events, time quantiles (hand-computed cases)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from agents.room_analysis import congestion_events, peak_flow, quantile_time


def test_peak_flow_counts_the_busiest_window():
    # passages at 0..9 s one a second, then 20 in [30, 32): the busiest 10 s window holds those 20
    t = np.concatenate([np.arange(10.0), 30.0 + np.linspace(0.0, 1.9, 20)])
    assert peak_flow(t, 10.0) == pytest.approx(2.0)
    assert peak_flow(np.arange(10.0), 10.0) == pytest.approx(1.0)  # [0, 10) holds 10 passages
    assert peak_flow([], 10.0) == 0.0


def test_congestion_events_with_hysteresis():
    """Congested above 4 P/m²; eased only below 3 P/m², so a queue wavering about 4 is one congestion."""
    t = np.arange(8) * 0.5
    dens = np.array([[1.0, 0.0], [4.5, 0.0], [5.0, 0.0], [3.9, 0.0], [4.1, 4.0], [2.9, 0.0], [4.2, 0.0],
                     [0.0, 0.0]])
    ev = congestion_events(t, dens, ["A", "B"], threshold=4.0, eased=3.0)
    assert [(e["kind"], e["time_s"], e["data"]["exit"]) for e in ev] == [
        ("exit_congested", 0.5, "A"), ("exit_congestion_eased", 2.5, "A"), ("exit_congested", 3.0, "A"),
        ("exit_congestion_eased", 3.5, "A")]  # B reaches 4.0 but never exceeds it
    assert ev[0]["severity"] == "warning" and ev[0]["data"]["density_p_m2"] == 4.5


def test_quantile_time_is_the_time_that_share_was_out():
    t = np.arange(1.0, 21.0)  # 20 people out at 1..20 s
    assert quantile_time(t, 0.95) == 19.0  # the 19th of 20
    assert quantile_time(t, 1.0) == 20.0
    assert math.isinf(quantile_time(np.array([1.0, np.nan]), 0.95))
