"""Design storms (physics/rain.py).

Facts restated here: the 2023-09-07 Shenzhen records, 1 h 116.8 mm, 2 h
195.8 mm, 3 h 246.8 mm, 6 h 349.7 mm (shenzhen/events/hazard_events.json,
from the press reports it cites).
"""

from __future__ import annotations

import numpy as np
import pytest

from physics.rain import (
    alternating_block,
    chicago,
    ddf_depth,
    fit_idf,
    records_2023_09_07,
    storm_2023_09_07,
)
from twin.errors import ValidationError

RECORDS = {1.0: 116.8, 2.0: 195.8, 3.0: 246.8, 6.0: 349.7}


def _max_running(block_mm: np.ndarray, n: int) -> float:
    """Pure-numpy reference: the largest sum of n consecutive blocks."""
    return max(block_mm[i:i + n].sum() for i in range(block_mm.size - n + 1))


# -- depth-duration curve --------------------------------------------------------------------
def test_ddf_interpolates_log_log_and_extrapolates_with_first_segment():
    assert ddf_depth(RECORDS, [1, 2, 3, 6]) == pytest.approx([116.8, 195.8, 246.8, 349.7], rel=1e-12)
    # midway in log t between 3 and 6 h: the geometric mean of the depths
    assert ddf_depth(RECORDS, np.sqrt(18.0)) == pytest.approx(np.sqrt(246.8 * 349.7), rel=1e-12)
    k = np.log(195.8 / 116.8) / np.log(2.0)
    assert ddf_depth(RECORDS, 0.5) == pytest.approx(116.8 * 0.5 ** k, rel=1e-12)


def test_ddf_rejects_increasing_intensity_and_bad_values():
    with pytest.raises(ValidationError, match="intensities"):
        ddf_depth({1.0: 10.0, 2.0: 30.0}, 1.5)
    with pytest.raises(ValidationError, match="decrease"):
        ddf_depth({1.0: 50.0, 2.0: 40.0}, 1.5)
    with pytest.raises(ValidationError, match="positive"):
        ddf_depth({0.0: 50.0}, 1.0)


# -- alternating block --------------------------------------------------------------------------
@pytest.mark.parametrize("peak_fraction", [0.5, 0.3, 0.0, 1.0])
def test_alternating_block_reproduces_the_maxima(peak_fraction):
    """Windows of 1, 2, 3, 6 h are 6, 12, 18, 36 whole 10-min blocks, so the largest
    running totals equal the depth-duration curve exactly (to round-off): the curve
    through the records is concave, the increments fall with rank and the alternating
    order keeps the k largest contiguous. With a window that is not a whole number of
    blocks the match would only hold to within one block's increment."""
    s = alternating_block(RECORDS, 6.0, 10.0, peak_fraction=peak_fraction)
    blocks = s.block_depths_mm()
    assert blocks.size == 36
    assert np.all(blocks >= 0)
    for h, depth in RECORDS.items():
        assert _max_running(blocks, int(h * 6)) == pytest.approx(depth, rel=1e-9)
        assert s.max_running_mm(h) == pytest.approx(depth, rel=1e-9)
    assert s.total_mm == pytest.approx(349.7, rel=1e-12)
    peak = int(np.argmax(blocks))
    assert peak == min(int(peak_fraction * 36), 35)


def test_alternating_block_shape_is_unimodal():
    blocks = alternating_block(RECORDS, 6.0).block_depths_mm()
    p = int(np.argmax(blocks))
    assert np.all(np.diff(blocks[: p + 1]) >= 0) and np.all(np.diff(blocks[p:]) <= 0)


def test_alternating_block_validates():
    with pytest.raises(ValidationError, match="whole number"):
        alternating_block(RECORDS, 1.05, 10.0)
    with pytest.raises(ValidationError, match="longest"):
        alternating_block(RECORDS, 7.0)
    with pytest.raises(ValidationError, match="peak_fraction"):
        alternating_block(RECORDS, 6.0, peak_fraction=1.5)


# -- Chicago ------------------------------------------------------------------------------------------
def test_chicago_fit_reproduces_the_points():
    """Four points, three parameters: the relative least-squares fit passes within 1.5 %
    of each (measured: 0.3, 0.9, 0.8, 0.1 %); with three points it is exact."""
    a, b, c = fit_idf(RECORDS)
    for h, depth in RECORDS.items():
        t = h * 60.0
        assert a / (t + b) ** c * h == pytest.approx(depth, rel=0.015)
    a3, b3, c3 = fit_idf({1.0: 116.8, 3.0: 246.8, 6.0: 349.7})
    for h, depth in ((1, 116.8), (3, 246.8), (6, 349.7)):
        assert a3 / (h * 60 + b3) ** c3 * h == pytest.approx(depth, rel=1e-8)


def test_chicago_windows_hold_the_fitted_depths():
    s = chicago(RECORDS, 6.0, 10.0)
    a, b, c = s.params["a_mm_h"], s.params["b_min"], s.params["c"]
    blocks = s.block_depths_mm()
    assert np.all(blocks >= 0)
    for h in (1.0, 2.0, 3.0, 6.0):
        t = h * 60.0
        assert _max_running(blocks, int(h * 6)) == pytest.approx(a / (t + b) ** c * h, rel=1e-9)
        assert s.max_running_mm(h) == pytest.approx(RECORDS[h], rel=0.015)
    assert np.argmax(blocks) in (17, 18)


def test_chicago_peak_inside():
    with pytest.raises(ValidationError, match="strictly"):
        chicago(RECORDS, 6.0, peak_fraction=0.0)


# -- the 2023-09-07 storm from the data ---------------------------------------------------------------
def test_records_read_from_the_events_file(shenzhen_dir):
    recs = records_2023_09_07()
    assert {k: recs[k] for k in RECORDS} == RECORDS
    assert recs[12.0] == 465.5


def test_storm_2023_09_07(shenzhen_dir):
    s = storm_2023_09_07(6)
    assert s.total_mm == pytest.approx(349.7, rel=1e-12)
    assert s.max_running_mm(1) == pytest.approx(116.8, rel=1e-9)
    assert s.max_running_mm(3) == pytest.approx(246.8, rel=1e-9)
    assert s.ddf == RECORDS  # records up to the first one >= 6 h
    c = storm_2023_09_07(6, "chicago", durations_h=(1, 3, 6))
    assert c.total_mm == pytest.approx(349.7, rel=1e-8)
    assert c.max_running_mm(1) == pytest.approx(116.8, rel=1e-8)
    short = storm_2023_09_07(0.5)
    assert set(short.ddf) == {1.0, 2.0}  # two records kept: first segment's power law below 1 h
    with pytest.raises(ValidationError, match="method"):
        storm_2023_09_07(6, "scs")
    with pytest.raises(ValidationError, match="no record"):
        storm_2023_09_07(6, durations_h=(1, 4))
