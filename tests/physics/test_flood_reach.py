"""A real river reach (physics.flood_reach): the profile rules, the burned channel, the fill, the Dasha River."""

from __future__ import annotations

import numpy as np
import pytest
from affine import Affine
from click.testing import CliRunner

from physics.flood import FloodModel
from physics.flood_reach import (
    MIN_FALL,
    burn_channel,
    decreasing_isotonic,
    design_hydrograph,
    fill_to_outlet,
    river_reach,
    running_median,
    thalweg,
)
from twin.errors import DataMissingError, ValidationError


def test_decreasing_isotonic_is_the_least_squares_non_increasing_fit():
    """Pool-adjacent-violators (Barlow et al. 1972, "Statistical inference under order restrictions", §1.2):
    a violating pair is replaced by its mean; the fit keeps the sum (it is a projection onto a cone that
    contains the constants) and leaves a non-increasing series unchanged."""
    np.testing.assert_allclose(decreasing_isotonic([3.0, 1.0, 2.0]), [3.0, 1.5, 1.5])
    np.testing.assert_allclose(decreasing_isotonic([1.0, 2.0, 3.0]), [2.0, 2.0, 2.0])
    v = np.array([5.0, 4.0, 4.0, 1.0])
    np.testing.assert_array_equal(decreasing_isotonic(v), v)
    rng = np.random.default_rng(1)
    x = np.linspace(10, 0, 200) + rng.normal(0, 3, 200)
    f = decreasing_isotonic(x)
    assert np.all(np.diff(f) <= 0)
    assert abs(f.sum() - x.sum()) < 1e-9
    # no non-increasing series is closer (checked against a few: the data's running minimum and the line)
    for other in (np.minimum.accumulate(x), np.linspace(10, 0, 200)):
        assert np.sum((f - x) ** 2) <= np.sum((other - x) ** 2)


def test_thalweg_never_rises_and_ignores_a_void():
    """A falling profile with a 20 m SRTM void (a spike down) and a 15 m spike up, 3 samples each: the running
    median over 500 m removes both, so the bed follows the true fall minus the channel depth, and it falls at
    least MIN_FALL per metre everywhere."""
    spacing = 7.5
    s = np.arange(800) * spacing
    true = 10.0 - 1e-3 * s
    p = true.copy()
    p[300:303] -= 20.0
    p[500:503] += 15.0
    bed = thalweg(p, spacing, median_m=500.0, channel_depth_m=2.0)
    assert np.all(np.diff(bed) <= -MIN_FALL * spacing * (1 - 1e-9))
    # away from the ends (where the window shrinks) the bed is the true fall minus 2 m: the median of a linear
    # ramp is its centre, and each outlier in the window moves the median by one rank, i.e. by the fall of one
    # sample (1e-3 x 7.5 m): 3 outliers, 0.0225 m at most (the isotonic fit only pools such steps)
    inner = slice(40, -40)
    np.testing.assert_allclose(bed[inner], (true - 2.0 - MIN_FALL * s)[inner], atol=3 * 1e-3 * spacing + 1e-9)
    np.testing.assert_allclose(running_median([1.0, 9.0, 2.0], 3), [5.0, 2.0, 5.5])


def test_burn_channel_makes_a_connected_channel_along_a_diagonal():
    """A diagonal centreline over a 30 m grid: the burned cells join the two ends through faces (the model's
    fluxes cross faces, not corners), and each takes the bed of its nearest sample."""
    ny = nx = 20
    tr = Affine(30.0, 0, 0, 0, -30.0, 600.0)
    z = np.full((ny, nx), 10.0)
    s = np.arange(0, 520, 7.5)
    line = np.column_stack([40 + s, 560 - s])
    bed = 5.0 - 1e-3 * s
    out, mask = burn_channel(z, tr, line, bed, width_m=30.0)
    assert mask.sum() >= 2 * 17
    assert np.all(out[mask] < 5.0 + 1e-12) and np.all(out[~mask] == 10.0)
    from scipy import ndimage

    lab, n = ndimage.label(mask)  # 4-connectivity
    assert n == 1


def test_fill_to_outlet_drains_only_through_the_outlet_edge():
    """Priority-Flood (Barnes et al. 2014) seeded at the outlet edge only: a pit beside the channel is raised
    to its spill level; a hollow against the east edge (a wall in the reach's model) is filled to the level at
    which it spills towards the south outlet, not left draining through the wall."""
    z = np.array([[9.0, 9.0, 9.0, 9.0, 9.0],
                  [9.0, 5.0, 9.0, 6.0, 2.0],
                  [9.0, 4.0, 9.0, 9.0, 9.0],
                  [9.0, 3.0, 1.0, 9.0, 9.0],
                  [9.0, 2.0, 9.0, 9.0, 9.0]])
    f = fill_to_outlet(z, "south")
    assert f[3, 2] == 3.0  # the pit beside the channel, filled to the channel cell it spills into
    assert f[1, 4] == 9.0 and f[1, 3] == 9.0  # the hollow at the east wall: full to the rim it must cross
    np.testing.assert_array_equal(f[:, 1], z[:, 1])  # the channel itself drains: unchanged
    assert np.all(f >= z)


def test_a_bad_reach_is_refused_before_any_work():
    with pytest.raises(ValidationError, match="peak_m3s"):
        design_hydrograph(-1.0, 0.0, 1.0, 1.0)
    with pytest.raises(ValidationError, match="start_km"):
        river_reach(start_km=5.0, end_km=2.0)
    with pytest.raises(DataMissingError, match="no OSM way"):
        river_reach(river="no such river")


@pytest.fixture(scope="module")
def dasha():
    return river_reach(peak_m3s=100.0, base_m3s=5.0, rise_h=0.5, fall_h=1.0)


def test_the_dasha_river_reach_from_osm_and_srtm(dasha):
    """The Dasha River (大沙河, Nanshan), first 6.5 km of its OSM line (drawn north to south, its flow): it enters
    by the north edge and leaves by the south; its burned bed never rises downstream; after the fill every
    land cell drains to the outlet edge (filling again changes nothing); the inflow covers the 60 m channel."""
    r = dasha
    assert (r.inflow_edge, r.outlet_edge) == ("north", "south")
    assert np.all(np.diff(r.thalweg_m) < 0)
    assert 6.3e3 < r.chainage_m[-1] - r.chainage_m[0] <= 6.5e3
    z = r.dem.values.astype(np.float64)
    np.testing.assert_array_equal(fill_to_outlet(z, "south"), z)
    q = r.boundaries[0]
    assert q.edge == "north" and q.kind == "discharge" and abs((q.span_m[1] - q.span_m[0]) - 60.0) < 1e-9
    assert r.boundaries[1].kind == "normal_depth" and r.boundaries[1].edge == "south"
    print(f"Dasha: bed {r.thalweg_m[0]:.2f} -> {r.thalweg_m[-1]:.2f} m, {r.conditioning}")


def test_the_dasha_hydrograph_enters_whole_and_mass_closes(dasha, one_thread):
    """30 min of the reach: the volume entering through the north edge is the hydrograph's integral (piecewise
    linear: the trapezoid rule is exact; the model's step means of the series are exact too), and the
    balance closes to round-off (1e-12; measured ~1e-15)."""
    r = dasha
    m = FloodModel(r.dem, manning=0.035, boundaries=r.boundaries)
    m.step(1800.0)
    t, q = r.hydrograph
    tt = np.linspace(0, 1800.0, 1801)
    expected = np.trapezoid(np.interp(tt, t, q), tt)
    b = m.balance()
    assert abs(b["inflow"] - expected) <= 1e-9 * expected
    assert b["relative_error"] <= 1e-12


def test_twin_flood_reach_writes_the_files(tmp_path):
    from twin.cli import main

    res = CliRunner().invoke(main, ["flood", "reach", "--out", str(tmp_path), "--no-run", "--end-km", "3"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "reach_dem.tif").is_file()
    text = (tmp_path / "reach.toml").read_text(encoding="utf-8")
    assert 'kind = "discharge"' in text and 'kind = "normal_depth"' in text
    from physics.flood_boundaries import load_boundaries

    assert [b.kind for b in load_boundaries(tmp_path / "reach.toml").specs] == ["discharge", "normal_depth"]
    res = CliRunner().invoke(main, ["flood", "reach", "--help"])
    assert res.exit_code == 0 and "--peak-m3s" in res.output
