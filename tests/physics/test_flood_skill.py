"""Skill at the waterlogging spots (physics/flood_skill.py): AUC and ROC by hand, then on the real city."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
from affine import Affine
from scipy import stats
from shapely.geometry import Point

from gis.raster import make_grid
from physics.flood_skill import (
    auc,
    disc_footprint,
    hit_rate_at,
    neighbourhood_max,
    paired_auc_difference,
    roc_curve,
    skill_scores,
    spot_skill,
)
from twin.errors import CRSError, ValidationError

DX = 30.0
T = Affine(DX, 0.0, 500_000.0, 0.0, -DX, 2_500_000.0)


def test_auc_hand_example_and_mann_whitney():
    # pairs (pos > neg): 3 beats 1, 2, 0 (3); 2 beats 1 and 0, ties 2 (2.5): 5.5 of 6
    pos, neg = [3.0, 2.0], [1.0, 2.0, 0.0]
    assert auc(pos, neg) == pytest.approx(5.5 / 6)
    # the same number is scipy's Mann-Whitney U / (n_pos n_neg) (Hanley & McNeil 1982, Radiology 143:29)
    u = stats.mannwhitneyu(pos, neg).statistic
    assert auc(pos, neg) == pytest.approx(u / 6)
    assert auc([1, 1], [1, 1, 1]) == 0.5 and auc([0], [1]) == 0.0


def test_roc_curve_ends_and_area():
    rng = np.random.default_rng(3)
    pos, neg = rng.normal(1.0, 1.0, 200), rng.normal(0.0, 1.0, 300)
    fpr, tpr = roc_curve(pos, neg)
    assert (fpr[0], tpr[0]) == (0.0, 0.0) and (fpr[-1], tpr[-1]) == (1.0, 1.0)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    # trapezoids under the empirical ROC = the Mann-Whitney AUC (ties counted half)
    assert np.trapezoid(tpr, fpr) == pytest.approx(auc(pos, neg), abs=1e-12)


def test_hit_rate_at_false_alarm_rate():
    neg = np.arange(10.0)              # 0..9: the 80 % quantile is 7.2; 8 and 9 exceed it (2 of 10)
    hr, thr, far = hit_rate_at([7.0, 8.0, 10.0, 0.0], neg, 0.2)
    assert thr == pytest.approx(7.2) and far == pytest.approx(0.2) and hr == pytest.approx(0.5)
    with pytest.raises(ValidationError, match="far"):
        hit_rate_at([1.0], neg, 1.5)


def test_disc_footprint_and_neighbourhood_max():
    fp = disc_footprint(100.0, DX, DX)
    # cells (i, j) with (30 i)² + (30 j)² <= 100²: 7 + 2*7 + 2*5 + 2*3 = 37
    assert fp.shape == (7, 7) and fp.sum() == 37 and fp[3, 6] and fp[4, 6] and not fp[5, 6]
    h = np.zeros((20, 20))
    h[10, 10] = 1.0
    h[0, 0] = np.nan
    m = neighbourhood_max(h, 100.0, DX, DX)
    assert m.sum() == 37 and m[10, 13] == 1.0 and m[12, 12] == 1.0 and m[13, 13] == 0.0


def _spot_grid(h):
    return make_grid(h, T, "EPSG:4547", name="max_depth", units="m")


def _pts(cells):
    return gpd.GeoDataFrame(geometry=[Point(T * (i + 0.5, j + 0.5)) for j, i in cells], crs="EPSG:4547")


def test_spot_skill_on_a_synthetic_grid_matches_the_closed_form():
    h = np.zeros((50, 50))
    h[25, 25] = 1.0
    r = spot_skill(_spot_grid(h), _pts([(25, 25), (25, 27), (24, 26)]), n_random=5000, seed=1)
    # spots all score 1 m; a random cell scores 1 with q = 37/2500 (the disc): AUC = 1 - q/2
    q = 37 / 2500
    se = np.sqrt(q * (1 - q) / 5000) / 2          # binomial SE of the sampled q, halved
    assert r["auc"] == pytest.approx(1 - q / 2, abs=4 * se)
    assert r["hit_rate"] == 1.0 and r["threshold_m"] == 0.0 and r["n_spots"] == 3 and r["n_outside"] == 0
    assert r["mannwhitney_p"] < 1e-3 and r["auc_ci95"][0] <= r["auc"] <= r["auc_ci95"][1]


def test_spot_skill_leaves_out_spots_off_the_land_and_checks_inputs():
    h = np.zeros((20, 20))
    h[:, :5] = np.nan                  # sea
    r = spot_skill(_spot_grid(h), _pts([(10, 2), (10, 10)]), n_random=100)
    assert r["n_spots"] == 1 and r["n_outside"] == 1 and r["auc"] == 0.5
    with pytest.raises(CRSError):
        spot_skill(_spot_grid(h), gpd.GeoDataFrame(geometry=[Point(0, 0)]))
    with pytest.raises(ValidationError, match="n_random"):
        spot_skill(_spot_grid(h), _pts([(10, 10)]), n_random=0)
    with pytest.raises(ValidationError, match="no spot"):
        spot_skill(_spot_grid(h), _pts([(10, 2)]))


def test_paired_auc_difference():
    rng = np.random.default_rng(5)
    pos, neg = rng.normal(0.5, 1.0, 40), rng.normal(0.0, 1.0, 400)
    same = paired_auc_difference(pos, neg, pos, neg, n_boot=200)
    assert same["delta_auc"] == 0.0 and same["delta_ci95"] == [0.0, 0.0] and same["p_not_better"] == 1.0
    # b separates perfectly (every spot above every random cell): AUC 1, so the difference is 1 - AUC(a)
    better = paired_auc_difference(pos, neg, pos + 100.0, neg, n_boot=200)
    assert better["delta_auc"] == pytest.approx(1.0 - auc(pos, neg)) and better["p_not_better"] == 0.0
    with pytest.raises(ValidationError, match="same spots"):
        paired_auc_difference(pos, neg, pos[:3], neg)
    # other samples (buildings blocked cells): resampled independently when allowed, flagged unpaired
    other = paired_auc_difference(pos, neg, pos[:30] + 100.0, neg[:300], n_boot=200, allow_unpaired=True)
    assert other["paired"] is False and other["delta_auc"] == pytest.approx(1.0 - auc(pos, neg))
    assert other["delta_ci95"][0] < other["delta_auc"] <= other["delta_ci95"][1] + 1e-12


def test_skill_scores_no_signal_is_half():
    r = skill_scores(np.zeros(10), np.zeros(100))
    assert r["auc"] == 0.5 and r["mannwhitney_p"] == 1.0 and r["hit_rate"] == 0.0


@pytest.mark.slow
def test_skill_on_the_real_city_short_storm(tmp_path):
    """Futian at 90 m, 60 mm/h for 15 min, roads burned: the conditioning is recorded and the skill computed.

    Whether the forecast beats random points at a stated significance is test_flood_city.py's (the `fair`
    slice's); here: the bookkeeping on real data (spots in the district on land, the step reports).
    """
    from physics.flood_city import city_flood_setup, run_city_flood
    from physics.hitrate import waterlogging_hit_rate
    from twin.city import City

    city = City("shenzhen")
    setup = city_flood_setup(city, resolution=90.0, districts=["Futian"], storm=60.0, hours=0.25,
                             conditioning="artefacts+roads")
    cond = setup["context"]["conditioning"]
    assert cond["steps"] == ["artefacts", "roads"]
    roads = cond["reports"][1]
    assert roads["cells_changed"] > 100 and roads["detail"]["bridge_cells_kept"] > 0
    assert roads["max_change_m"] <= -0.15 + 1e-9 and roads["min_change_m"] >= -(3.0 + 0.15 + 1.0) - 1e-9
    ds = run_city_flood(setup)
    assert "roads" in ds.attrs["terrain_conditioning"]
    md = ds["max_depth"].assign_attrs(crs=ds.attrs["crs"], transform=ds.attrs["transform"])
    points = city.vector("waterlogging")
    hr = waterlogging_hit_rate(md, points, within=setup["context"]["outline"])
    sk = hr["skill"]
    assert sk["n_spots"] == hr["n_in_domain"] > 20
    assert 0.0 <= sk["auc"] <= 1.0 and 0.0 <= sk["mannwhitney_p"] <= 1.0
    # strictly above the 80 % quantile of the random scores: at most 20 % of them (fewer with ties at 0 m)
    assert sk["false_alarm_rate"] == 0.2 and sk["false_alarm_rate_actual"] <= 0.2


@pytest.mark.slow
def test_twin_flood_skill_command_writes_the_table(tmp_path):
    """`twin flood skill` on Futian at 90 m, 60 mm/h for 1 h: four conditionings, the table and the plot."""
    import json

    from click.testing import CliRunner

    from twin.cli.flood_skill import skill

    out = tmp_path / "skill"
    r = CliRunner().invoke(skill, ["--out", str(out), "--storms", "60mm_h_1h", "--districts", "Futian",
                                   "--resolution", "90", "--bootstrap", "100"])
    assert r.exit_code == 0, r.output
    doc = json.loads((out / "skill.json").read_text())
    labels = [row["conditioning"] for row in doc["rows"]]
    assert labels == ["none", "+artefacts", "+roads", "+buildings"]
    assert doc["rows"][-1]["run"] is False          # no building footprint reaches Futian
    assert doc["rows"][2]["cells_changed"]["roads"] > 0
    assert (out / "roc.png").stat().st_size > 10_000 and "| 60mm_h_1h | +roads |" in (out / "skill.md").read_text()
    bad = CliRunner().invoke(skill, ["--out", str(out), "--storms", "bogus"])
    assert bad.exit_code == 1 and "storm 'bogus'" in bad.output
