"""Tests for physics/slope_report.py: the slope run's report sections carry the dataset's numbers.

The run is synthetic, built to the ``slope.nc`` contract on a 60 × 80 grid at
30 m in EPSG:4547 around the 2015 Guangming landslide (22.718 N, 113.932 E);
every expected number below is recomputed here from the arrays with numpy.
"""

from __future__ import annotations

import base64
import html
import io
import json
import re

import numpy as np
import pytest
import xarray as xr
from PIL import Image
from pyproj import Transformer

from physics.slope_report import figures_numbers, slope_report_sections, worst_cells
from twin.errors import ValidationError

X0, Y0, RES = 492_000.0, 2_514_200.0, 30.0
NY, NX = 60, 80
CELL_KM2 = RES * RES / 1e6
TO_LL = Transformer.from_crs("EPSG:4547", "EPSG:4326", always_xy=True)


def _ll(x, y) -> str:
    lon, lat = TO_LL.transform(x, y)
    return f"{lon:.6f} {lat:.6f}"


def slope_ds(probabilistic: bool = True, runout: bool = True) -> xr.Dataset:
    """FS 0.5 → 2.0 west to east (one cell 0.31 at row 40, col 5), zones north/south, a debris blob."""
    y, x = np.mgrid[0:NY, 0:NX]
    fs = (0.5 + 1.5 * x / (NX - 1)).astype(np.float32)
    fs[40, 5] = 0.31
    fs[:3, :] = np.nan
    tof = np.where(fs < 1.0, 600.0 + 20000.0 * (fs - 0.31), np.nan).astype(np.float32)
    data = {
        "fs_min": (("y", "x"), fs),
        "depth_of_minimum": (("y", "x"), np.where(np.isfinite(fs), 1.0 + 0.05 * x, np.nan).astype(np.float32)),
        "time_of_failure": (("y", "x"), tof),
        "slope": (("y", "x"), np.where(np.isfinite(fs), 45.0 - 40.0 * x / (NX - 1), np.nan).astype(np.float32)),
        "zone": (("y", "x"), np.where(y < 30, 1, 3).astype(np.int16),
                 {"zone_names": json.dumps({"1": "granite_residual", "3": "fill_spoil"})}),
        "soil_depth": (("y", "x"), (1.0 + 0.05 * x).astype(np.float32)),
        "elevation": (("y", "x"), (100.0 + 3.0 * (NX - x)).astype(np.float32)),
    }
    if probabilistic:
        p = np.clip((1.3 - fs) / 0.8, 0.0, 1.0).astype(np.float32)
        data["probability_of_failure"] = (("y", "x"), p)
        data["probability_se"] = (("y", "x"), np.sqrt(p * (1 - p) / 200.0).astype(np.float32))
    if runout:
        r2 = ((x - 40) / 8.0) ** 2 + ((y - 25) / 6.0) ** 2
        data["runout_depth"] = (("y", "x"), np.where(r2 < 1, 3.0 * (1 - r2), 0.0).astype(np.float32))
        data["runout_source"] = (("y", "x"), np.where((fs < 0.7) & (y >= 20) & (y < 30), 2.0, 0.0)
                                 .astype(np.float32))
        cx, cy = X0 + 40.5 * RES, Y0 - 25.5 * RES
        data.update({
            "asset_kind": (("asset",), np.array(["road", "building", "metro_station"], dtype=object)),
            "asset_id": (("asset",), np.array(["e7", "way/101", "st-3"], dtype=object)),
            "asset_name": (("asset",), np.array(["Guangming Ave", "Block <A>", "Station 3"], dtype=object)),
            "asset_depth_m": (("asset",), np.array([1.25, 2.93, 0.15])),
            "asset_wkt": (("asset",), np.array([
                f"LINESTRING ({_ll(cx - 200, cy)}, {_ll(cx + 200, cy)})",
                f"POLYGON (({_ll(cx, cy)}, {_ll(cx + 20, cy)}, {_ll(cx + 20, cy + 20)}, {_ll(cx, cy)}))",
                f"POINT ({_ll(cx + 90, cy)})"], dtype=object)),
        })
    coords = {"y": Y0 - RES * (np.arange(NY) + 0.5), "x": X0 + RES * (np.arange(NX) + 0.5)}
    attrs = {"crs": "EPSG:4547", "transform": (RES, 0.0, X0, 0.0, -RES, Y0), "resolution_m": RES,
             "duration_h": 6.0, "mode": "probabilistic" if probabilistic else "deterministic",
             "storm": json.dumps({"name": "2023-09-07", "total_mm": 312.4}), "region": "synthetic Guangming"}
    return xr.Dataset(data, coords=coords, attrs=attrs)


@pytest.fixture(scope="module")
def ds() -> xr.Dataset:
    return slope_ds()


@pytest.fixture(scope="module")
def page(ds) -> str:
    return "".join(slope_report_sections(ds, {"members": 200, "seed": 7}))


def _text(page: str) -> str:
    """Visible text of the sections (tags dropped, entities decoded)."""
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def test_headline_numbers_are_the_datasets(ds, page):
    fs = ds["fs_min"].values.astype(float)
    n_mod = int(np.isfinite(fs).sum())
    n_fail = int((fs < 1.0).sum())  # NaN compares False
    text = _text(page)
    assert f"{n_fail:,}" in text and f"of {n_mod:,} modelled" in text
    assert f"{n_fail * CELL_KM2:.3f} km²" in text
    tof = ds["time_of_failure"].values
    assert f"{np.nanmin(tof) / 3600:.2f} h" in text  # 600 s at the 0.31 cell: 0.17 h
    assert "0.310" in text  # lowest FS
    assert "Monte Carlo members 200 seed 7" in " ".join(text.split())


def test_class_and_zone_tables_count_cells(ds, page):
    fs = ds["fs_min"].values.astype(float)
    zone = ds["zone"].values
    text = " ".join(_text(page).split())
    n1 = int((fs < 1).sum())
    n2 = int(((fs >= 1) & (fs < 1.3)).sum())
    n3 = int(((fs >= 1.3) & (fs < 1.5)).sum())
    n4 = int((fs >= 1.5).sum())
    assert n1 + n2 + n3 + n4 == int(np.isfinite(fs).sum())
    assert f"FS < 1 unstable {n1:,} {n1 * CELL_KM2:.3f}" in text
    assert f"1 – 1.3 marginal {n2:,} {n2 * CELL_KM2:.3f}" in text
    assert f"≥ 1.5 stable (not drawn) {n4:,} {n4 * CELL_KM2:.3f}" in text
    for code, name in ((1, "granite_residual"), (3, "fill_spoil")):
        m = np.isfinite(fs) & (zone == code)
        nf = int((m & (fs < 1)).sum())
        assert f"{name} {int(m.sum()):,} {nf:,} {100 * nf / m.sum():.1f} {fs[m].min():.2f}" in text


def test_worst_cells_from_the_dataset_and_from_the_summary(ds, page):
    rows, cols = np.unravel_index(np.nanargmin(ds["fs_min"].values), ds["fs_min"].shape)
    lon, lat = TO_LL.transform(float(ds["x"][cols]), float(ds["y"][rows]))
    w = worst_cells(ds, 3)
    assert w[0]["fs_min"] == pytest.approx(0.31, abs=1e-6) and w[0]["zone"] == "fill_spoil"
    assert w[0]["lon"] == pytest.approx(lon, abs=1e-9) and w[0]["lat"] == pytest.approx(lat, abs=1e-9)
    assert [c["fs_min"] for c in w] == sorted(c["fs_min"] for c in w)
    text = " ".join(_text(page).split())
    assert f"1 {lon:.5f} {lat:.5f} 0.310 1.25 0.17 h fill_spoil" in text
    given = [{"lon": 113.93194, "lat": 22.71806, "fs_min": 0.123, "depth_m": 4.5, "time_s": 9000.0,
              "zone": "fill_spoil"}]
    text2 = " ".join(_text("".join(slope_report_sections(ds, {"worst_cells": given}))).split())
    assert "1 113.93194 22.71806 0.123 4.50 2.50 h fill_spoil" in text2
    assert "as listed in the run's summary" in text2
    assert "P(failure)" not in text2
    given[0]["probability_of_failure"] = 0.875
    text3 = " ".join(_text("".join(slope_report_sections(ds, {"worst_cells": given}))).split())
    assert "P(failure) %" in text3 and "2.50 h fill_spoil 87.5" in text3


def test_figures_are_inline_pngs(page):
    imgs = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(imgs) == 2  # FS histogram, FS against slope
    for b64 in imgs:
        im = Image.open(io.BytesIO(base64.b64decode(b64)))
        assert im.format == "PNG" and im.size[0] > 300 and im.size[1] > 200
        a = np.asarray(im.convert("L"))
        assert (a < 200).mean() > 0.01  # axes, bars or points drawn, not a blank canvas


def test_probability_section_counts_levels(ds, page):
    p = ds["probability_of_failure"].values.astype(float)
    text = " ".join(_text(page).split())
    for lv in (0.05, 0.5, 0.95):
        n = int((p >= lv).sum())
        assert f"≥ {100 * lv:g} % {n:,} {n * CELL_KM2:.3f}" in text
    assert f"(Σ p): {np.nansum(p):,.1f}" in text
    num = figures_numbers(ds)
    assert num["expected_failing_km2"] == pytest.approx(np.nansum(p) * CELL_KM2, rel=1e-6)


def test_runout_volumes_and_assets_in_depth_order(ds, page):
    dep = ds["runout_depth"].values.astype(float)
    src = ds["runout_source"].values.astype(float)
    text = " ".join(_text(page).split())
    assert f"deposit volume {dep.sum() * 900:,.0f} m³" in text
    assert f"failed (source) volume {src.sum() * 900:,.0f} m³" in text
    assert f"({(dep >= 0.1).sum() * CELL_KM2:.3f} km²" not in text  # written as a row, not in brackets
    assert f"deposit area (≥ 0.1 m) {(dep >= 0.1).sum() * CELL_KM2:.3f} km²" in text
    assert "1 buildings, 1 roads, 1 metro stations hit." in text
    i_b, i_r, i_s = (text.index(s) for s in ("building Block <A> way/101 2.93", "road Guangming Ave e7 1.25",
                                             "metro station Station 3 st-3 0.15"))
    assert i_b < i_r < i_s
    assert "Block &lt;A&gt;" in page and "Block <A>" not in page  # names are escaped


def test_a_deterministic_run_without_runout_has_no_such_sections():
    secs = slope_report_sections(slope_ds(probabilistic=False, runout=False), None)
    text = _text("".join(secs))
    assert "Probability of failure" not in text and "Runout" not in text and "Monte Carlo" not in text
    assert len(secs) == 5


def test_report_page_is_offline(tmp_path, ds):
    from viz.offline import assert_offline
    from viz.report import write_run_report

    class Kind:
        name, title = "slope_test", "Slope test"
        report_sections = staticmethod(slope_report_sections)

        @staticmethod
        def describe_params(params):
            return ""

    path = write_run_report(Kind, ds, {"cells_failing": 1}, tmp_path)
    assert_offline(path.read_text(encoding="utf-8"))
    assert "Minimum FS by class" in path.read_text(encoding="utf-8")


def test_a_dataset_without_fs_is_refused():
    with pytest.raises(ValidationError, match="'fs_min'"):
        slope_report_sections(xr.Dataset({"x": ("x", [1.0])}), {})
