"""Trains at gaps in the fibre's response: a train's still fragment on an island of good coupling between two
badly coupled stretches, or at a stretch's edge, is a train; an intrusion at a stretch's edge is still found
(``DetectorParams.gap_*``; the long background run's seeds 2014 and 2010, where v3 raised these false alarms).

The records are the simulator's (seeded), cut with ``DasSimulator.chunks(start_s=...)``: the detector starts
there, so it learns the fibre's response from the passages it sees in the cut only.
"""

from __future__ import annotations

import numpy as np
import pytest

from physics.das_detect import ALERTING, DasDetector, DetectorParams, _covers
from physics.das_layout import FibreLayout
from physics.das_simulate import DasSimulator, EventSpec, SimConfig
from tests.physics.das_stream import run_detectors
from twin.errors import ValidationError


def _alerting_near(evs: list, ch: float, tol: float, t0: float, t1: float) -> list:
    return [e for e in evs if e.event_class in ALERTING and abs(e.channel - ch) <= tol
            and e.end_s >= t0 and e.onset_s <= t1]


@pytest.fixture(scope="module")
def island() -> tuple[DasSimulator, dict[str, DasDetector], dict[str, list]]:
    """Seed 2014 (3 km, the long run's settings), 690-754 s, plus an intrusion injected at 1,764 m (5 m off,
    740-752 s, 18 dB): channels 1,768-1,781 (gain 0.07) and 1,786-1,810 (0.03) are badly coupled around an island
    1,782-1,785 (0.44); the near bore's train passing at 715-735 s left a still 20 dB fragment on the island
    (v3 reported it as excavation, 8 times in that hour)."""
    lay = FibreLayout(n_channel=3000, line="1")
    intr = EventSpec("intrusion", 1764.0, 5.0, 740.0, 752.0, 18.0)
    sim = DasSimulator(lay, 3600.0, 2014, SimConfig(noise_density=7e-9, fast_noise=True), events=[intr])
    # off: the gap rules (v4, v7's passage_*) and v8's passage_bridge, which takes this fragment too (it fills the
    # break between the train's track before the island and after it)
    dets = {"rule": DasDetector(lay), "off": DasDetector(lay, DetectorParams(gap_min_ch=0, passage_bridge=False))}
    return sim, dets, run_detectors(sim, dets, 754.0, start_s=690.0)


def test_a_trains_fragment_on_an_island_between_gaps_is_a_train(island) -> None:
    sim, dets, out = island
    g = sim.gain
    assert g[1768:1782].max() < 0.1 and g[1786:1811].max() < 0.1 and g[1782:1786].min() > 0.4
    assert len(_alerting_near(out["off"], 1783.5, 3, 715.0, 740.0)) == 1  # the false alarm without the rule
    assert not _alerting_near(out["rule"], 1783.5, 30, 700.0, 739.0)
    assert [e for e in out["rule"] if e.event_class == "train" and abs(e.channel - 1783.5) <= 3]
    assert dets["rule"].stats["gap_fragments"] == 1
    deaf = dets["rule"].deaf_channels(1740, 1830)  # learned from the passages in the cut
    assert deaf[1770 - 1740:1780 - 1740].all() and deaf[1788 - 1740:1809 - 1740].all()
    assert not deaf[:1766 - 1740].any() and not deaf[1812 - 1740:].any()


def test_an_intrusion_at_a_gaps_edge_is_still_found(island) -> None:
    """The intrusion 4 m before the first stretch comes after the train: reported, placed within 5 channels, with
    the rule on as off; the learned gap begins within ``gap_skip_ch`` of its span's edge, so the rule did look at
    it and found no train passage covering it."""
    _, dets, out = island
    for k in ("rule", "off"):
        got = _alerting_near(out[k], 1764.0, 5, 740.0, 752.0)
        assert got, k
    assert dets["rule"].deaf_run_end(1767, 1) is not None
    assert not [e for e in out["rule"] if e.event_class in ALERTING and abs(e.channel - 1764) > 5]


def test_a_near_trains_tail_at_a_stretchs_edge_as_the_far_train_meets_it_is_a_train() -> None:
    """Seed 2010, 1,460-1,503 s: the near bore's train (19.7 m/s, +) passed a badly coupled stretch (channels
    241-268, gain 0.07) as the far bore's (-) met it there; the near train's track went on beyond the stretch, its
    segment 1,490.9-1,500.9 s kept only the tail's still vibration at channel 239 (26 dB), reported by v3 as
    excavation. With the rule it is a train (from the response learned in the same 43 s); with it off the alarm
    is back."""
    lay = FibreLayout(n_channel=3000, line="1")
    sim = DasSimulator(lay, 3600.0, 2010, SimConfig(noise_density=7e-9, fast_noise=True), events=[])
    assert sim.gain[242:268].max() < 0.1 and sim.gain[203:240].min() > 0.9
    # off: the gap rules (v4, v7's passage_*) and v8's passage_bridge, which takes this fragment too (it fills the
    # break between the train's track before the island and after it)
    dets = {"rule": DasDetector(lay), "off": DasDetector(lay, DetectorParams(gap_min_ch=0, passage_bridge=False))}
    out = run_detectors(sim, dets, 1503.0, start_s=1460.0)
    assert len(_alerting_near(out["off"], 239.0, 3, 1490.0, 1501.0)) == 1
    assert not [e for e in out["rule"] if e.event_class in ALERTING]
    assert dets["rule"].stats["gap_fragments"] == 1


def test_covers() -> None:
    assert _covers([(0.0, 5.0), (6.0, 10.0)], 1.0, 12.0, 2.5)
    assert not _covers([(0.0, 5.0), (11.0, 20.0)], 1.0, 12.0, 2.5)  # a 6 s hole
    assert not _covers([(5.0, 10.0)], 0.0, 9.0, 2.5)  # starts before the first passage
    assert not _covers([], 0.0, 1.0, 2.5)


def test_gap_params_are_checked() -> None:
    with pytest.raises(ValidationError, match="gap_min_ch"):
        DetectorParams(gap_min_ch=-1)
    with pytest.raises(ValidationError, match="gap_deaf_ratio"):
        DetectorParams(gap_deaf_ratio=float("nan"))
    assert DetectorParams(gap_min_ch=0).gap_min_ch == 0
    assert np.isfinite(DetectorParams().gap_deaf_ratio)


def test_a_far_trains_fragment_between_partly_deaf_stretches_is_a_train() -> None:
    """Seed 2023, 1,300-1,366 s: stretches of gain 0.18 (channels 696-701) and 0.09 (723-728) around well coupled
    channels 702-722 (gain 1.4-1.5). The near bore's train is loud enough to trigger across them, but they are
    10 dB and more under their neighbours in its energy profile (learned deaf); the far bore's weaker train
    (-16 m/s) then left a still 10.8 dB fragment on 701-723, reported by v3/v4 as excavation. With the rule it is
    a train; off, the alarm is back."""
    lay = FibreLayout(n_channel=3000, line="1")
    sim = DasSimulator(lay, 3600.0, 2023, SimConfig(noise_density=7e-9, fast_noise=True), events=[])
    assert sim.gain[697:701].max() < 0.2 and sim.gain[724:728].max() < 0.1 and sim.gain[703:722].min() > 1.0
    # off: the gap rules (v4, v7's passage_*) and v8's passage_bridge, which takes this fragment too (it fills the
    # break between the train's track before the island and after it)
    dets = {"rule": DasDetector(lay), "off": DasDetector(lay, DetectorParams(gap_min_ch=0, passage_bridge=False))}
    out = run_detectors(sim, dets, 1366.0, start_s=1300.0)
    assert len(_alerting_near(out["off"], 706.0, 5, 1350.0, 1366.0)) == 1
    assert not [e for e in out["rule"] if e.event_class in ALERTING]
    deaf = dets["rule"].deaf_channels(690, 735)
    assert deaf[698 - 690:701 - 690].all() and deaf[724 - 690:728 - 690].all() and not deaf[704 - 690:721 - 690].any()
