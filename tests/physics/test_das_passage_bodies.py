"""Train fragments in the passage of a train's body (detector version 8: ``DetectorParams.passage_body_m``,
``passage_bridge``).

The fresh background run of v7 (seeds 5000-5031, 3 km x 1 h, noise 7e-9, the map's crossings) left four false
alarms, all train fragments classed excavation: seed 5007's at channel 2,537 (603 s) and seed 5014's three at
channels 1,150-1,158, an island of good coupling (gain 1.6, channels 1,149-1,166) between a deaf stretch
(1,122-1,148, gain 0.11) and a poor one (1,167-1,196, gain 0.24-0.30). Each test cuts the segment's record
around an alarm (``DasSimulator.chunks(start_s=...)``: the same samples as the whole record) and runs v8 beside v8
with the two rules off, asserting that the two report the same events but for the ones
:attr:`DasDetector.retrained` lists by a version-8 rule, which v8 reports as ``train`` (the rules never change
what the detector learns from).
"""

from __future__ import annotations

import dataclasses

import pytest

from physics.das_detect import ALERTING, DasDetector, DetectorParams
from physics.das_layout import FibreLayout
from physics.das_simulate import DasSimulator, SimConfig
from tests.physics.das_stream import run_detectors
from twin.errors import ValidationError

#: v8 with its two rules off: v7's behaviour.
OFF = DetectorParams(passage_body_m=0.0, passage_bridge=False)
V8_RULES = {"passage_body": "passage_bodies", "passage_bridge": "passage_bridges"}


def _key(e) -> tuple:
    return (round(e.onset_s, 3), round(e.end_s, 3), round(e.channel, 3), round(e.energy, 20), e.track_id, e.segment)


def _on_off(seed: int, start_s: float, t1: float) -> DasDetector:
    """Background segment ``seed`` from ``start_s`` to ``t1`` through v8 and v8 with its rules off; asserts the
    discipline (the same reports, those a version-8 rule re-classed train in v8 and alerting off) and returns v8."""
    lay = FibreLayout(n_channel=3000, line="1")
    sim = DasSimulator(lay, 3600.0, seed, SimConfig(noise_density=7e-9, fast_noise=True), events=[])
    on, off = DasDetector(lay), DasDetector(lay, OFF)
    out = run_detectors(sim, {"on": on, "off": off}, t1, start_s=start_s)
    assert [_key(e) for e in out["on"]] == [_key(e) for e in out["off"]]
    changed = {_key(e): cls for e, cls, rule in on.retrained if rule in V8_RULES}
    assert len(changed) == len(on.retrained) - len(off.retrained)
    for a, b in zip(out["on"], out["off"], strict=True):
        if _key(a) in changed:
            assert a.event_class == "train" and b.event_class == changed[_key(a)] and b.event_class in ALERTING
        else:
            assert a.event_class == b.event_class
    for rule, key in V8_RULES.items():
        assert on.stats[key] == sum(r == rule for _, _, r in on.retrained)
        assert off.stats[key] == 0
    return on, out


def test_a_fragment_filling_a_break_in_a_trains_track_is_a_train() -> None:
    """Seed 5007, 560-625 s: the far bore's train (9 dB at the fibre, 19.3 m/s towards channel 0, on channel
    2,537 at 603.0 s, its 140 m body over it until 610.3 s) was tracked to channels 2,683-2,796 (segment ending
    600.1 s) and again from 605.8 s at 2,371-2,485; between, channels 2,527-2,571 (gain 0.87-0.97, no deaf
    stretch) gave a still track, reported by v7 as a 11.5 dB excavation at 2,537.0 (603.2-610.5 s; RMS 75.7 Hz,
    kurtosis 2.54: wheel-rail vibration). The train's body, carried on from the piece before and back from the
    piece after at their speed, covers it: ``passage_bridge``."""
    on, out = _on_off(5007, 560.0, 625.0)
    assert not [e for e in out["on"] if e.event_class in ALERTING]
    (off,) = [e for e in out["off"] if e.event_class in ALERTING]
    assert off.channel == pytest.approx(2537.0, abs=1.0) and off.onset_s == pytest.approx(603.2, abs=0.2)
    ((ev, cls, rule),) = [r for r in on.retrained if r[2] in V8_RULES]
    assert rule == "passage_bridge" and cls == "excavation" and ev.features["train_fragment"] == 7.0


def test_a_fragment_on_an_island_beside_a_deaf_stretch_is_a_train() -> None:
    """Seed 5014, 1,150-1,260 s: the near bore's train passing at about 1,180 s teaches the deaf stretch
    1,122-1,148; the far bore's train (9 dB, 17 m/s towards channel 0) reaches the island at 1,244.7 s; its track
    before it ended at channels 1,394-1,496 (1,238.8 s; the train's head was then at about 1,250, 144 m ahead of
    the track's edge) and v7's passage, carried on from the track's edges, reached the island only at 1,248.6 s:
    v7 reported a 11.2 dB excavation at 1,149.9 (1,243.7-1,253.5 s). With the train's body (140 m) about its
    track the passage covers it: ``passage_body``."""
    on, out = _on_off(5014, 1150.0, 1260.0)
    assert not [e for e in out["on"] if e.event_class in ALERTING and abs(e.channel - 1150) < 30]
    ((ev, cls, rule),) = [r for r in on.retrained if r[2] in V8_RULES]
    assert rule == "passage_body" and ev.channel == pytest.approx(1149.9, abs=1.0)


def test_v8_parameters_are_checked_and_zero_turns_each_rule_off() -> None:
    for bad in (-1.0, float("nan")):
        with pytest.raises(ValidationError, match="passage_body_m"):
            DetectorParams(passage_body_m=bad)
    with pytest.raises(ValidationError, match="passage_bridge"):
        DetectorParams(passage_bridge=1)
    p = dataclasses.replace(DetectorParams(), passage_body_m=0.0)
    assert p.passage_body_m == 0.0 and not OFF.passage_bridge
