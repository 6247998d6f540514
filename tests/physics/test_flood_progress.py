"""FloodModel.run's progress_every_s: progress reports without patching the model (physics/flood.py)."""

from __future__ import annotations

import numpy as np
import pytest

from physics.flood import FloodModel
from physics.forcing import UniformRain
from twin.errors import ValidationError


def _plane_model() -> FloodModel:
    """A 12 x 16 tilted plane (10 m cells) under 60 mm/h, draining through its free east edge."""
    z = np.tile(np.linspace(2.0, 0.0, 16), (12, 1))
    return FloodModel(z, dx=10.0, rain=UniformRain.constant(60.0, 600.0), boundaries="free")


def test_progress_after_every_chunk():
    calls = []
    _plane_model().run(600.0, 300.0, progress_every_s=100.0, progress=lambda t, d: calls.append((t, d)))
    assert [t for t, _ in calls] == pytest.approx([100.0, 200.0, 300.0, 400.0, 500.0, 600.0])
    assert {d for _, d in calls} == {600.0}


def test_progress_after_every_output_without_chunks():
    calls = []
    _plane_model().run(600.0, 300.0, progress=lambda t, d: calls.append(t))
    assert calls == pytest.approx([300.0, 600.0])


def test_chunked_run_equals_stepping_in_the_same_chunks():
    # A chunk's end is a sub-step's end: the run must equal step() called chunk by chunk.
    ds = _plane_model().run(600.0, 300.0, progress_every_s=100.0)
    ref = _plane_model()
    for _ in range(6):
        ref.step(100.0)
    assert np.array_equal(ds["max_depth"].values, ref.hmax.astype(np.float32))
    assert np.array_equal(ds["depth"].values[-1], ref.h.astype(np.float32))


def test_progress_every_s_must_be_positive():
    with pytest.raises(ValidationError, match="progress_every_s"):
        _plane_model().run(600.0, 300.0, progress_every_s=0.0)
