"""The fire network: built compartment by compartment, checked with every problem named."""

from __future__ import annotations

import numpy as np
import pytest

from physics.fire_network import CONCRETE, OUTSIDE, NetworkBuilder
from twin.errors import ValidationError


def three_storey_stack():
    """A room per storey and a stair shaft of three compartments joined by ceiling vents."""
    b = NetworkBuilder("stack", storey_heights_m=[3.0, 3.0, 3.0])
    stair = []
    for s in range(3):
        room = b.compartment(f"room{s}", kind="room", storey=s, area_m2=100.0, sprinklered=True, detector=True)
        stair.append(b.compartment(f"stair{s}", kind="stair", storey=s, area_m2=12.0, lining=CONCRETE))
        b.vent(room, stair[-1], bottom_m=0.0, top_m=2.1, width_m=0.9, kind="shaft_door", open_fraction=0.0)
        b.vent(room, OUTSIDE, bottom_m=0.9, top_m=2.4, width_m=3.0, kind="window", open_fraction=0.0,
               break_c=300.0)
    for lo, hi in zip(stair[:-1], stair[1:], strict=True):
        b.ceiling_vent(lo, hi, area_m2=12.0)
    return b.build(source="test")


def test_a_stack_is_built_with_absolute_elevations():
    net = three_storey_stack()
    assert net.n_compartments == 6 and net.n_vents == 6 and net.n_vvents == 2
    assert net.base_m[net.index("room2")] == 6.0
    # the third storey's window: sill 0.9 m above its floor at 6 m
    assert net.vent_bottom_m[5] == pytest.approx(6.9)
    assert net.summary()["by_kind"] == {"room": 3, "stair": 3}
    assert list(net.on_storey(1)) == [2, 3]
    assert net.volume_m3.sum() == pytest.approx(3 * (300.0 + 36.0))


def test_every_problem_of_a_network_is_named():
    b = NetworkBuilder("bad", storey_heights_m=[3.0, 3.0])
    a = b.compartment("a", kind="room", storey=0, area_m2=-5.0)
    c = b.compartment("c", kind="room", storey=1, area_m2=10.0)
    b.vent(a, c, bottom_m=0.0, top_m=2.0, width_m=1.0)  # c's floor is at 3 m: not within it
    with pytest.raises(ValidationError, match=r"area_m2\[0\]=-5.0") as e:
        b.build()
    assert "not within compartment 'c'" not in str(e.value)  # geometry is checked once values are sane


def test_a_wall_vent_must_lie_within_both_compartments():
    b = NetworkBuilder("geometry", storey_heights_m=[3.0, 3.0])
    a = b.compartment("a", kind="room", storey=0, area_m2=5.0)
    c = b.compartment("c", kind="room", storey=1, area_m2=10.0)
    b.vent(a, c, bottom_m=0.0, top_m=2.0, width_m=1.0)
    b.ceiling_vent(a, c, area_m2=1.0)  # a's ceiling (3 m) is c's floor: fine; the wall vent is not
    with pytest.raises(ValidationError, match="not within compartment 'c'") as e:
        b.build()
    assert "ceiling vent" not in str(e.value)


def test_unknown_kinds_and_dangling_vents_are_refused():
    b = NetworkBuilder("kinds", storey_heights_m=[3.0])
    b.compartment("a", kind="atrium", storey=0, area_m2=5.0)
    with pytest.raises(ValidationError, match=r"kind\[0\]='atrium'"):
        b.build()
    b = NetworkBuilder("dangling", storey_heights_m=[3.0])
    a = b.compartment("a", kind="room", storey=0, area_m2=5.0)
    b.vent(a, 7, bottom_m=0.0, top_m=2.0, width_m=1.0)
    with pytest.raises(ValidationError, match=r"vent_b\[0\]=7"):
        b.build()
    net = NetworkBuilder("ok", storey_heights_m=[3.0])
    net.compartment("a", kind="room", storey=0, area_m2=5.0)
    with pytest.raises(ValidationError, match="compartment 'b' is not in building 'ok'"):
        net.build().index("b")
    assert np.all(three_storey_stack().arrays()["vent_cd"] == 0.7)
