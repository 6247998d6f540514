"""Tests for viz/flood_map.py and `twin flood map`: the flood run page in real headless Chromium.

The runs are synthetic (a pond filling up in EPSG:4547 over Futian), so the
page tests do not depend on the flood model; what is checked is the page:
it draws, needs no network, logs no error, its time slider switches frames
and the compare view draws both runs and their difference.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

from viz.browser import TWINMAP_READY_JS, BrowserSession, count_non_background
from viz.flood_map import max_depth_difference, write_flood_map
from viz.offline import assert_offline
from viz.page import write_page
from viz.scene import Scene

X0, Y0, RES = 494_000.0, 2_506_000.0, 30.0
NY, NX = 80, 120
W, H = 1000, 700
WHITE = (255, 255, 255)


def _run(scale: float = 1.0, n_times: int = 13) -> xr.Dataset:
    """A 2-hour run every 10 min: a pond deepening in the middle, a hill (elevation) around it."""
    y, x = np.mgrid[0:NY, 0:NX]
    r2 = ((x - NX / 2) / (NX / 3)) ** 2 + ((y - NY / 2) / (NY / 3)) ** 2
    times = np.arange(n_times) * 600.0
    depth = np.stack([np.where(r2 < 1, (1 - r2) * 2.0 * scale * k / (n_times - 1), 0.0)
                      for k in range(n_times)]).astype(np.float32)
    wet = depth >= 0.15
    arrival = np.where(wet.any(axis=0), times[np.argmax(wet, axis=0)], np.nan).astype(np.float32)
    elevation = (10 + 30 * r2 + 3 * np.sin(x / 7.0)).astype(np.float32)
    sea = np.zeros((NY, NX), np.uint8)
    sea[-6:, :] = 1
    return xr.Dataset(
        {"depth": (("time", "y", "x"), depth), "max_depth": (("y", "x"), depth.max(axis=0)),
         "arrival_time": (("y", "x"), arrival, {"long_name": "first time depth >= 0.15 m (NaN: never)"}),
         "elevation": (("y", "x"), elevation), "sea": (("y", "x"), sea)},
        coords={"time": times, "y": Y0 - RES * (np.arange(NY) + 0.5), "x": X0 + RES * (np.arange(NX) + 0.5)},
        attrs={"crs": "EPSG:4547", "transform": (RES, 0.0, X0, 0.0, -RES, Y0), "title": f"pond x{scale}"})


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    d = tmp_path_factory.mktemp("flood_map")
    a, b = _run(1.0), _run(1.6)
    a.to_netcdf(d / "a.nc")
    b.to_netcdf(d / "b.nc")
    single = write_flood_map(d / "a.nc", d / "single.html")
    compare = write_flood_map(a, d / "compare.html", compare_with=b)
    scene = Scene(title="pond x1.0", view=single_view(d / "single.html"))
    blank = write_page(scene, d / "blank.html")
    return {"dir": d, "single": single, "compare": compare, "blank": blank, "a": a, "b": b}


def single_view(path) -> dict:
    import json
    import re

    text = path.read_text(encoding="utf-8")
    m = re.search(r'<script id="twin-scene" type="application/json">(.*?)</script>', text, re.S)
    return json.loads(m.group(1))["scene"]["view"]


def test_pages_are_offline_and_report_their_size(pages):
    for key in ("single", "compare"):
        info = pages[key]
        assert_offline(info["path"].read_text(encoding="utf-8"))
        assert info["bytes"] == info["path"].stat().st_size
        assert 4_300_000 < info["bytes"] < 6_000_000  # bundle ~4.3 MB + small synthetic bitmaps
    assert pages["single"]["frames"] == 13 and not pages["single"]["compare"]
    assert pages["compare"]["compare"]
    d = max_depth_difference(pages["a"], pages["b"])
    assert d.max() == pytest.approx(1.2, abs=1e-5) and d.min() == 0.0


@pytest.mark.browser
def test_flood_page_draws_offline_and_the_slider_switches_frames(pages, chromium, tmp_path):
    out = {}
    with BrowserSession(width=W, height=H) as b:
        b.goto(pages["blank"], ready_js=TWINMAP_READY_JS, timeout=90)
        b.screenshot(tmp_path / "blank.png")
        b.goto(pages["single"]["path"], ready_js=TWINMAP_READY_JS, timeout=90)
        n = b.evaluate("map.frameCount")
        # The pond deepens throughout: the page opens on the last frame, the largest flooded area.
        assert n == 13 and b.evaluate("map.frame") == n - 1
        assert b.evaluate("document.querySelector('.tm-label').textContent") == \
            "+2 h 00 min — largest flooded area"
        # Move the slider as a user would: focus it and press Home, then End.
        b.evaluate("document.querySelector('.tm-slider').focus()")
        b.press("Home", key_code=36)
        b.wait_for("map.frame === 0", timeout=30)
        b.evaluate("map._drawn()")
        assert b.evaluate("document.querySelector('.tm-label').textContent") == "+0 min"
        b.screenshot(tmp_path / "first.png")
        b.press("End", key_code=35)
        b.wait_for(f"map.frame === {n - 1}", timeout=30)
        b.evaluate("map._drawn()")
        assert b.evaluate("document.querySelector('.tm-slider').value") == str(n - 1)
        b.screenshot(tmp_path / "last.png")
        # Hiding the depth layer through the API leaves the basemap only.
        b.evaluate("map.setLayerVisible('flood_depth', false)")
        b.screenshot(tmp_path / "hidden.png")
        with pytest.raises(Exception, match="outside"):
            b.evaluate(f"map.setFrame({n})")
        errors, network = list(b.console_errors), list(b.network_requests)
    assert network == [], network
    assert errors == [], errors
    for name in ("blank", "first", "last", "hidden"):
        out[name] = count_non_background(tmp_path / f"{name}.png", background=WHITE)
    # The map draws (hillshade, pond, controls) far beyond the blank page (title panel only).
    assert out["first"] > 0.15 * W * H and out["first"] > 10 * max(out["blank"], 1), out
    a0 = np.asarray(__import__("PIL.Image").Image.open(tmp_path / "first.png").convert("RGB"), dtype=int)
    a1 = np.asarray(__import__("PIL.Image").Image.open(tmp_path / "last.png").convert("RGB"), dtype=int)
    ah = np.asarray(__import__("PIL.Image").Image.open(tmp_path / "hidden.png").convert("RGB"), dtype=int)
    changed = (np.abs(a1 - a0).max(axis=-1) > 30).sum()
    # The pond covers ~π/4 of the middle third of the grid: tens of thousands of pixels change.
    assert changed > 0.03 * W * H, changed
    # Frame 0 is dry: hiding the depth layer at the last frame restores (about) the first picture.
    back = (np.abs(ah - a0).max(axis=-1) > 30)
    back[H - 60:, :] = False  # slider and label differ
    assert back.sum() < 0.1 * changed, back.sum()
    # Deep water is blue: the last frame is bluer than the first in the middle of the map.
    mid = (slice(H // 2 - 40, H // 2 + 40), slice(W // 2 - 40, W // 2 + 40))
    assert (a1[mid][..., 2] - a1[mid][..., 0]).mean() > (a0[mid][..., 2] - a0[mid][..., 0]).mean() + 40


@pytest.mark.browser
def test_compare_page_draws_both_halves_and_the_difference(pages, chromium, tmp_path):
    from PIL import Image

    with BrowserSession(width=W, height=H) as b:
        b.goto(pages["compare"]["path"], ready_js=TWINMAP_READY_JS, timeout=90)
        assert b.evaluate("[compare.a.ready, compare.b.ready, compare.diffShown]") == [True, True, False]
        b.evaluate("compare.a.setFrame(compare.a.frameCount - 1)")
        assert b.evaluate("compare.b.frame") == 12  # frames follow each other by time
        b.screenshot(tmp_path / "ab.png")
        # Views are synced: moving A moves B.
        b.evaluate("compare.a.deck.props.onViewStateChange({viewState: Object.assign({}, "
                   "compare.a.viewState, {zoom: compare.a.viewState.zoom + 0.5})})")
        assert b.evaluate("compare.b.viewState.zoom === compare.a.viewState.zoom")
        b.evaluate("compare.a.deck.props.onViewStateChange({viewState: Object.assign({}, "
                   "compare.a.viewState, {zoom: compare.a.viewState.zoom - 0.5})})")
        b.evaluate("Promise.all([compare.a._drawn(), compare.b._drawn()])")
        b.screenshot(tmp_path / "ab.png")
        b.evaluate("document.querySelector('.tm-cmpbar input').click()")
        b.wait_for("compare.diffShown === true && compare.b.scene.title.indexOf('B') === 0", timeout=30)
        b.evaluate("compare.b._drawn()")
        ids = b.evaluate("compare.b.deck.props.layers.map(l => l.id)")
        b.screenshot(tmp_path / "diff.png")
        errors, network = list(b.console_errors), list(b.network_requests)
    assert network == [] and errors == [], (network, errors)
    assert "diff" in ids
    ab = np.asarray(Image.open(tmp_path / "ab.png").convert("RGB"), dtype=int)
    df = np.asarray(Image.open(tmp_path / "diff.png").convert("RGB"), dtype=int)
    for half in (ab[:, : W // 2], ab[:, W // 2:]):
        assert (np.abs(half - 255).max(axis=-1) > 16).mean() > 0.15
    # B is deeper everywhere in the pond: the difference is drawn red in the right half.
    right = df[:, W // 2:]
    red = (right[..., 0] > right[..., 2] + 60) & (right[..., 0] > 120)
    assert red.sum() > 2000, red.sum()
    left_change = (np.abs(df[:, : W // 2 - 2] - ab[:, : W // 2 - 2]).max(axis=-1) > 30).mean()
    assert left_change < 0.02  # the left half still shows A


def test_cli_flood_map(pages, tmp_path):
    from twin.cli import main

    d = pages["dir"]
    r = CliRunner().invoke(main, ["flood", "map", str(d / "a.nc"), "--out", str(tmp_path / "m.html"),
                                  "--compare", str(d / "b.nc"), "--max-frames", "5"])
    assert r.exit_code == 0, r.output
    assert "5 frames" in r.output and "A | B compare" in r.output
    assert_offline((tmp_path / "m.html").read_text(encoding="utf-8"))
    bad = CliRunner().invoke(main, ["flood", "map", str(d / "a.nc"), "--out", str(tmp_path / "x.html"),
                                    "--max-frames", "1"])
    assert bad.exit_code != 0 and "max-frames" in bad.output
    not_a_run = tmp_path / "x.nc"
    xr.Dataset({"v": ("t", [1.0])}).to_netcdf(not_a_run)
    bad = CliRunner().invoke(main, ["flood", "map", str(not_a_run), "--out", str(tmp_path / "y.html")])
    assert bad.exit_code != 0 and "max_depth" in bad.output
