"""Soil table, zones, slope-depth rule and Monte Carlo sampler of the slope model
(physics/slope_params.py, physics/slope_montecarlo.py).

Sources of the expected numbers:
* lognormal mean/CV conversion: sigma_ln^2 = ln(1 + cv^2), mu_ln = ln m - sigma_ln^2 / 2
  (standard moments of the lognormal; e.g. Johnson, Kotz & Balakrishnan 1994, ch. 14).
* truncated-normal mean and sd: scipy.stats.truncnorm (an independent implementation).
* P(FS < 1) for FS = a + b c', c' ~ N(mu, sigma): Phi((1 - a - b mu) / (b sigma)) (closed form).
* slope-depth end points: the rule's definition (Saulnier et al. 1997; Baum et al. 2010):
  h_max at slope_min, h_min at slope_max.
Tolerances: sampled statistics within 4 standard errors (two-sided miss chance ~6e-5 per check
for a normal estimator; the seeds are fixed so the tests are deterministic); exact geometry and
end points to round-off.
"""

from __future__ import annotations

import copy
import json
import tomllib

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from physics.slope_montecarlo import (
    lognormal_params,
    probability_of_failure,
    sample,
    sample_members,
)
from physics.slope_params import (
    DEFAULT_TABLE,
    PARAMS,
    ParamSpec,
    defaults_on_grid,
    depth_from_slope,
    depth_on_grid,
    load_table,
    validate_table,
    zones_from_polygons,
    zones_from_raster,
)
from twin.errors import ValidationError

N = 200_000  # draws per distribution check: the 4-sigma band on a mean is 4 sd / sqrt(N) ~ 0.9 % of sd


def _raw():
    return tomllib.loads(DEFAULT_TABLE.read_text(encoding="utf-8"))


# -- table --------------------------------------------------------------------------------
def test_packaged_table_loads_and_every_default_lies_in_its_cited_range():
    t = load_table()
    assert set(t.zones) == {"granite_residual", "weathered_sedimentary", "fill_spoil"}
    assert t.default_zone == "granite_residual"
    for zname, z in t.zones.items():
        for p in PARAMS:
            spec = getattr(z, p)
            lo, hi = spec.range
            assert lo <= spec.default <= hi, (zname, p)
            assert spec.source.strip(), (zname, p)
        assert z.depth_rule is not None and z.depth_rule.source
    header = DEFAULT_TABLE.read_text(encoding="utf-8")[:800]
    assert "NOT MEASUREMENTS IN SHENZHEN" in header


def test_bad_table_refused_naming_path_value_and_allowed_interval():
    d = _raw()
    d["zones"]["granite_residual"]["phi_deg"]["default"] = 75.0
    d["zones"]["fill_spoil"]["c_kpa"]["low"] = 20.0  # above high = 10, and default outside
    with pytest.raises(ValidationError) as e:
        validate_table(d)
    msg = str(e.value)
    assert "zones.granite_residual.phi_deg.default = 75.0: must lie in (0, 60) deg" in msg
    assert "zones.fill_spoil.c_kpa.low = 20.0: must be below high = 10.0" in msg  # every problem listed


def test_bad_table_structure_listed_with_paths():
    d = _raw()
    del d["zones"]["weathered_sedimentary"]["ks_m_s"]["source"]
    d["zones"]["fill_spoil"]["gamma_kn_m3"]["dist"] = "gamma"
    d["zones"]["granite_residual"]["depth_m"]["default"] = "5"  # strict: a string is not a number
    with pytest.raises(ValidationError) as e:
        validate_table(d)
    msg = str(e.value)
    assert "zones.weathered_sedimentary.ks_m_s.source = (missing)" in msg
    assert "zones.fill_spoil.gamma_kn_m3.dist = 'gamma'" in msg
    assert "zones.granite_residual.depth_m.default = '5'" in msg


def test_user_table_from_file(tmp_path):
    text = DEFAULT_TABLE.read_text(encoding="utf-8").replace('default_zone = "granite_residual"',
                                                            'default_zone = "fill_spoil"')
    p = tmp_path / "mine.toml"
    p.write_text(text, encoding="utf-8")
    assert load_table(p).default_zone == "fill_spoil"
    p.write_text(text.replace('default_zone = "fill_spoil"', 'default_zone = "peat"'), encoding="utf-8")
    with pytest.raises(ValidationError, match="default_zone = 'peat'"):
        load_table(p)


# -- zones -----------------------------------------------------------------------------------
X0, Y0, RES = 500_000.0, 2_500_000.0, 30.0  # EPSG:4547 metres, near Shenzhen


def _grid(n=10):
    x = X0 + RES * (np.arange(n) + 0.5)
    y = Y0 - RES * (np.arange(n) + 0.5)  # north-up: rows go south
    return xr.DataArray(np.zeros((n, n)), dims=("y", "x"), coords={"y": y, "x": x},
                        attrs={"crs": "EPSG:4547"})


def test_zones_from_polygons_land_on_the_right_cells():
    import geopandas as gpd
    from shapely.geometry import box

    g = _grid()
    # cols 2..4, rows 3..5: box edges on cell edges, so exactly those cell centres are inside
    poly = box(X0 + 2 * RES, Y0 - 6 * RES, X0 + 5 * RES, Y0 - 3 * RES)
    gdf = gpd.GeoDataFrame({"zone": ["fill_spoil"]}, geometry=[poly], crs="EPSG:4547")
    z = zones_from_polygons(gdf, g)
    expect = np.full((10, 10), 1)
    expect[3:6, 2:5] = 3
    np.testing.assert_array_equal(z.values, expect)
    assert z.attrs["units"] == "1" and json.loads(z.attrs["zone_names"])["3"] == "fill_spoil"
    # the same polygon as GeoJSON in lon/lat (EPSG:4326) reprojected onto the grid
    geo = json.loads(gdf.to_crs("EPSG:4326").to_json())
    z2 = zones_from_polygons(geo, g)
    np.testing.assert_array_equal(z2.values, expect)


def test_zones_from_raster_same_crs_finer_with_code_map():
    from affine import Affine

    g = _grid()
    src = np.zeros((30, 30), dtype=np.int32)  # 10 m cells, 3 per target cell
    src[9:18, 15:30] = 7  # target rows 3..5, cols 5..9
    tr = Affine(10.0, 0, X0, 0, -10.0, Y0)
    z = zones_from_raster(src, g, src_transform=tr, src_crs="EPSG:4547", code_map={7: "weathered_sedimentary"})
    expect = np.full((10, 10), 1)  # code 0 unmapped -> default zone
    expect[3:6, 5:10] = 2
    np.testing.assert_array_equal(z.values, expect)


def test_zones_from_raster_other_crs_resampled_nearest():
    from pyproj import Transformer

    g = _grid(20)
    # a lon/lat raster whose code-3 block covers target rows 5..14, cols 5..14
    t = Transformer.from_crs("EPSG:4547", "EPSG:4326", always_xy=True)
    lon0, lat0 = t.transform(X0 - 100, Y0 + 100)
    lon1, lat1 = t.transform(X0 + 20 * RES + 100, Y0 - 20 * RES - 100)
    n = 200
    lons = np.linspace(lon0, lon1, n + 1)
    lats = np.linspace(lat0, lat1, n + 1)
    lonc, latc = (lons[:-1] + lons[1:]) / 2, (lats[:-1] + lats[1:]) / 2
    LON, LAT = np.meshgrid(lonc, latc)
    xs, ys = Transformer.from_crs("EPSG:4326", "EPSG:4547", always_xy=True).transform(LON, LAT)
    col, row = (xs - X0) / RES, (Y0 - ys) / RES
    codes = np.where((col >= 5) & (col < 15) & (row >= 5) & (row < 15), 3, 1).astype(np.int16)
    src = xr.DataArray(codes, dims=("y", "x"), coords={"y": latc, "x": lonc}, attrs={"crs": "EPSG:4326"})
    z = zones_from_raster(src, g).values
    # interior of the block (one cell away from its edges, where nearest-resampling may shift
    # the boundary by a source cell ~ 3.5 m) and the cells far from it
    assert np.all(z[6:14, 6:14] == 3)
    assert np.all(z[:4, :] == 1) and np.all(z[16:, :] == 1) and np.all(z[:, :4] == 1)
    assert set(np.unique(z)) == {1, 3}


def test_defaults_on_grid_and_unknown_codes():
    t = load_table()
    z = np.array([[1, 2], [3, 1]])
    d = defaults_on_grid(z, t)
    assert d["phi_deg"][1, 0] == t.zones["fill_spoil"].phi_deg.default
    with pytest.raises(ValidationError, match=r"\[9\]"):
        defaults_on_grid(np.array([9]), t)


# -- slope-depth rule ---------------------------------------------------------------------------
def test_depth_from_slope_end_points_clipping_and_monotone():
    h = depth_from_slope([0.0, 50.0, 25.0, -5.0, 70.0], 1.0, 8.0, 0.0, 50.0)
    np.testing.assert_allclose(h, [8.0, 1.0, 4.5, 8.0, 1.0], rtol=0, atol=1e-12)  # mid: the mean
    s = np.linspace(0, 89, 500)
    assert np.all(np.diff(depth_from_slope(s, 1.0, 8.0, 5.0, 45.0)) <= 0)
    with pytest.raises(ValidationError, match="h_min"):
        depth_from_slope(10.0, 9.0, 8.0, 0.0, 50.0)


def test_depth_on_grid_uses_each_zones_rule():
    t = load_table()
    z = np.array([1, 3, 1, 3])
    s = np.array([0.0, 0.0, 50.0, 40.0])
    r1, r3 = t.zones["granite_residual"].depth_rule, t.zones["fill_spoil"].depth_rule
    np.testing.assert_allclose(depth_on_grid(s, z, t), [r1.h_max_m, r3.h_max_m, r1.h_min_m, r3.h_min_m])


# -- sampling ------------------------------------------------------------------------------------
def _spec(**kw):
    return ParamSpec(range=[0.0, 1e9], source="test", **kw)


def test_normal_mean_and_sd_within_4_sigma():
    x = sample(_spec(default=36.0, dist="normal", sd=3.0), N, np.random.default_rng(1))
    assert abs(x.mean() - 36.0) < 4 * 3.0 / np.sqrt(N)
    assert abs(x.std() - 3.0) < 4 * 3.0 / np.sqrt(2 * N)  # se of a normal sample sd: sd / sqrt(2n)


def test_lognormal_mean_and_cv_within_4_sigma():
    m, cv = 5.0, 0.5
    x = sample(_spec(default=m, dist="lognormal", cv=cv), N, np.random.default_rng(2))
    mu, sig = lognormal_params(m, cv)
    assert sig == pytest.approx(np.sqrt(np.log(1.25)), rel=1e-12)
    assert abs(x.mean() - m) < 4 * m * cv / np.sqrt(N)
    # the CV through ln x, which is exactly normal(mu, sig): its mean and sd within 4 se
    lx = np.log(x)
    assert abs(lx.mean() - mu) < 4 * sig / np.sqrt(N)
    assert abs(lx.std() - sig) < 4 * sig / np.sqrt(2 * N)
    assert np.exp(sig**2) - 1 == pytest.approx(cv**2, rel=1e-12)  # the conversion returns the CV


def test_uniform_mean_and_sd_within_4_sigma():
    x = sample(_spec(default=5.0, dist="uniform", low=2.0, high=10.0), N, np.random.default_rng(3))
    sd = 8.0 / np.sqrt(12)
    assert x.min() >= 2.0 and x.max() <= 10.0
    assert abs(x.mean() - 6.0) < 4 * sd / np.sqrt(N)
    # var of a uniform sample variance: (mu4 - sd^4)/n with mu4 = 9/5 sd^4 -> se(s) ~ sd*sqrt(0.8/n)/2
    assert abs(x.std() - sd) < 4 * sd * np.sqrt(0.8 / N) / 2


def test_truncnorm_in_bounds_and_moments_match_scipy():
    mu, sd, lo, hi = 36.0, 3.0, 28.0, 38.0  # asymmetric truncation: the mean moves below 36
    x = sample(_spec(default=mu, dist="truncnorm", sd=sd, low=lo, high=hi), N, np.random.default_rng(4))
    assert x.min() >= lo and x.max() <= hi
    ref = stats.truncnorm((lo - mu) / sd, (hi - mu) / sd, loc=mu, scale=sd)
    assert abs(x.mean() - ref.mean()) < 4 * ref.std() / np.sqrt(N)
    assert ref.mean() < mu - 0.5  # the check would catch an untruncated sampler
    assert abs(x.std() - ref.std()) < 4 * ref.std() / np.sqrt(N)  # generous: truncated tails are light


def test_members_shape_bounds_and_same_seed_same_members():
    z = np.array([[1, 2, 3], [3, 2, 1]])
    a = sample_members(z, 64, 42)
    b = sample_members(z, 64, np.random.default_rng(42))
    c = sample_members(z, 64, 43)
    t = load_table()
    for p in PARAMS:
        assert a[p].shape == (64, 6)
        np.testing.assert_array_equal(a[p], b[p])
        assert not np.array_equal(a[p], c[p])
    phi3 = a["phi_deg"][:, z.ravel() == 3]
    assert phi3.min() >= t.zones["fill_spoil"].phi_deg.low and phi3.max() <= t.zones["fill_spoil"].phi_deg.high
    zz = sample_members(z, 8, 1, per="zone")["c_kpa"]
    np.testing.assert_array_equal(zz[:, 0], zz[:, 5])  # both cells of zone 1 share a draw
    with pytest.raises(ValidationError, match="seed = None"):
        sample_members(z, 8, None)


def test_c_phi_correlation_by_cholesky():
    d = _raw()
    rho = -0.5
    d["correlation"]["c_phi"] = rho
    g = d["zones"]["granite_residual"]
    g["c_kpa"] = {"default": 5.0, "dist": "normal", "sd": 1.0, "range": [0.0, 20.0], "source": "test"}
    g["phi_deg"] = {"default": 36.0, "dist": "normal", "sd": 3.0, "range": [28.0, 45.0], "source": "test"}
    t = validate_table(copy.deepcopy(d))
    m = sample_members(np.ones(4), 50_000, 5, table=t)
    r = np.corrcoef(m["c_kpa"].ravel(), m["phi_deg"].ravel())[0, 1]
    assert abs(r - rho) < 4 * (1 - rho**2) / np.sqrt(200_000)  # se of Pearson r ~ (1 - rho^2)/sqrt(n)


# -- probability of failure ------------------------------------------------------------------------
def test_probability_of_failure_converges_to_closed_form():
    """FS = a + b c', c' ~ N(5, 2) kPa: P(FS < 1) = Phi((1 - a - b mu)/(b sigma))."""
    mu, sig, b = 5.0, 2.0, 0.05
    a = np.array([0.8, 0.9, 0.6, 1.2])  # per cell: P = Phi(-0.5), Phi(-1.5), Phi(1.5), Phi(-3.5)
    n = 20_000
    c = sample(_spec(default=mu, dist="normal", sd=sig), (n, a.size), np.random.default_rng(7))
    p, se = probability_of_failure(a + b * c)
    exact = stats.norm.cdf((1 - a - b * mu) / (b * sig))
    np.testing.assert_allclose(exact[:3], stats.norm.cdf([-0.5, -1.5, 1.5]), rtol=1e-12)
    se_exact = np.sqrt(exact * (1 - exact) / n)
    assert np.all(np.abs(p - exact) < 4 * se_exact)
    np.testing.assert_allclose(se, np.sqrt(p * (1 - p) / n), rtol=1e-12)


def test_probability_of_failure_counts_and_nan():
    fs = np.array([[0.5, np.nan], [1.5, np.nan], [0.9, np.nan], [1.0, np.nan]])
    p, se = probability_of_failure(fs)
    assert p[0] == 0.5 and se[0] == pytest.approx(np.sqrt(0.25 / 4))  # FS = 1.0 is not failure
    assert np.isnan(p[1]) and np.isnan(se[1])
