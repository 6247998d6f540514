"""The runner's frames (scenarios.runner._Frames): frames kept in one block per field give the
Dataset the one-array-per-frame path gives (fields appearing later NaN before, ints kept)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from scenarios.runner import _Frames
from twin.state import TwinState

# tests run with --import-mode=importlib: the grid of the state tests, loaded by path
_spec = importlib.util.spec_from_file_location(
    "state_tests", Path(__file__).resolve().parents[1] / "twin" / "test_state.py")
_state_tests = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_state_tests)


def record_three(capacity: int, extra: int = 0) -> tuple[_Frames, object]:
    """Three frames: ``a`` (float64, changes), ``i`` (int16), ``b`` from the second frame on."""
    st = TwinState(_state_tests.make_static())
    f = _Frames(capacity)
    st.set_field("a", np.arange(24.0).reshape(4, 6) / 3.0, "m")  # thirds: float32 rounds them
    st.set_field("i", np.ones((4, 6), np.int16), "1")
    f.record(st)
    st.clock.advance_to(10.0)
    st.set_field("b", np.full((4, 6), 1.0 / 7.0), "m s-1")
    f.record(st)
    st.clock.advance_to(20.0)
    st.set_field("a", np.zeros((4, 6)), "m")
    for _ in range(1 + extra):
        f.record(st)
    return f, f.dataset(st)


def test_block_frames_give_the_same_dataset_as_stacked_frames():
    blocked, ds = record_three(capacity=8)
    _, ref = record_three(capacity=0)
    assert ds.identical(ref)
    assert ds["a"].dtype == np.float32 and ds["i"].dtype == np.int16
    assert np.isnan(ds["b"].values[0]).all() and float(ds["b"].values[1, 0, 0]) == np.float32(1.0 / 7.0)
    assert float(ds["a"].values[0, 0, 1]) == np.float32(1.0 / 3.0)
    assert blocked._block("a") is not None  # the block path was taken, not the fallback


def test_frames_beyond_the_capacity_fall_back_to_stacking():
    over, ds = record_three(capacity=3, extra=1)  # a fourth frame: no room in the blocks
    _, ref = record_three(capacity=0, extra=1)
    assert over._block("a") is None and ds.identical(ref) and ds.sizes["time"] == 4
