"""Tests for viz/offline.py: an HTML page of a pydeck Deck that needs no network."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pydeck as pdk
import pytest

from twin.errors import ValidationError
from viz.browser import count_non_background, screenshot
from viz.offline import (
    assert_offline,
    find_remote_resources,
    offline_html,
    strip_remote_resources,
    trusted_bundles,
    write_offline_html,
)

BUNDLE = Path(pdk.__file__).parent / "nbextension" / "static" / "index.js"


def _deck(layers=None) -> pdk.Deck:
    if layers is None:
        layers = [pdk.Layer("ScatterplotLayer", id="dots",
                            data=[{"p": [114.05, 22.55]}, {"p": [114.10, 22.60]}],
                            get_position="p", get_radius=1500, get_fill_color=[220, 30, 30])]
    return pdk.Deck(layers=layers, map_provider=None, map_style=None,
                    initial_view_state=pdk.ViewState(longitude=114.07, latitude=22.57, zoom=10))


class _Attrs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.values: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag, attrs):
        self.values += [(tag, k, v) for k, v in attrs if v is not None]


def _tag_attrs(page: str) -> list[tuple[str, str, str]]:
    p = _Attrs()
    p.feed(page)
    p.close()
    return p.values


@pytest.fixture(scope="module")
def page() -> str:
    return offline_html(_deck(), title="test page")


def test_page_passes_and_has_no_url_in_any_tag_attribute(page):
    assert_offline(page)
    attrs = _tag_attrs(page)
    assert attrs, "the parser found no tag attributes at all"
    bad = [a for a in attrs if re.search(r"(?i)(https?:)?//", a[2])]
    assert bad == []
    assert "<title>test page</title>" in page


def test_bundle_is_inlined_and_its_url_strings_are_not_resources(page):
    bundle = BUNDLE.read_text(encoding="utf-8")
    # The bundle really mentions URLs (licences, CDNs, APIs) ...
    assert len(re.findall(r"https://", bundle)) > 10
    # ... is inlined verbatim and exempted only as that exact text.
    assert bundle in page
    assert len(trusted_bundles()) == 1
    edited = page.replace(bundle, bundle + "\n// edited", 1)
    problems = find_remote_resources(edited)
    assert len(problems) > 10 and all(p.startswith("<script> (inline)") for p in problems)


def test_page_size_is_bundle_plus_json(page):
    # The page is the ~4.3 MB deck.gl bundle plus a few kB of template and JSON.
    extra = len(page.encode()) - BUNDLE.stat().st_size
    assert 0 < extra < 20_000


def test_pydeck_raw_page_fails_and_stripped_page_passes():
    raw = _deck().to_html(offline=True, as_string=True, notebook_display=False)
    problems = find_remote_resources(raw)
    # pydeck's template: mapbox-gl script, bootstrap, font-awesome, maplibre and widgets css.
    assert len(problems) == 5, problems
    stripped = strip_remote_resources(raw)
    assert find_remote_resources(stripped) == []
    assert BUNDLE.read_text(encoding="utf-8") in stripped


@pytest.mark.parametrize("injected, needle", [
    ('<script src="https://cdn.example.com/x.js"></script>', "cdn.example.com/x.js"),
    ("<SCRIPT type='text/javascript' SRC='http://cdn.example.com/y.js'></SCRIPT>", "y.js"),
    ("<link href=//cdn.example.com/a.css rel=stylesheet>", "a.css"),
    ('<img alt="x" srcset="local.png 1x, https://img.example.com/b.png 2x">', "b.png"),
    ('<style>@import "https://fonts.example.com/f.css";</style>', "f.css"),
    ("<style>body { background: url( 'https://img.example.com/bg.png' ) }</style>", "bg.png"),
    ('<div style="background-image:url(https://img.example.com/d.png)"></div>', "d.png"),
    ('<meta http-equiv="refresh" content="0; url=https://example.com/">', "refresh"),
    ("<script>fetch('https://api.example.com/data.json')</script>", "api.example.com"),
])
def test_injected_remote_resource_is_reported(page, injected, needle):
    bad = page.replace("<head>", "<head>" + injected, 1)
    with pytest.raises(ValidationError, match=re.escape(needle)):
        assert_offline(bad)
    # The stripper removes the element-level ones; a fetch in an inline script stays flagged.
    if "fetch(" not in injected:
        assert find_remote_resources(strip_remote_resources(bad)) == []


def test_plain_text_and_anchor_free_mentions_are_not_resources(page):
    ok = page.replace("<body>", "<body><p>Data: https://example.com/ (a citation in text)</p>", 1)
    assert_offline(ok)


def test_layer_data_url_makes_the_page_fail():
    deck = _deck([pdk.Layer("GeoJsonLayer", id="remote", data="https://example.com/x.geojson")])
    with pytest.raises(ValidationError, match="example.com/x.geojson"):
        offline_html(deck)


def test_basemap_provider_is_refused():
    deck = pdk.Deck(layers=[], map_provider="carto", map_style="light")
    with pytest.raises(ValidationError, match="map_provider"):
        offline_html(deck)


def test_script_closing_text_in_data_cannot_break_out():
    evil = "</script><script>document.title='pwned'</script><!--"
    deck = _deck([pdk.Layer("ScatterplotLayer", id="dots", data=[{"p": [114.0, 22.5], "name": evil}],
                            get_position="p", get_radius=100)])
    page = offline_html(deck)
    assert evil not in page
    assert page.count("</script>") == 2  # the bundle's and the page's own script


def test_write_offline_html(tmp_path):
    out = write_offline_html(_deck(), tmp_path / "sub" / "m.html", title="T")
    assert out.is_file()
    assert_offline(out.read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- browser



@pytest.mark.browser
def test_offline_page_draws_without_any_network_request(chromium, tmp_path):
    html = write_offline_html(_deck(), tmp_path / "dots.html")
    blank = write_offline_html(_deck([]), tmp_path / "blank.html")
    r = screenshot(html, tmp_path / "dots.png", width=600, height=400, timeout=90)
    rb = screenshot(blank, tmp_path / "blank.png", width=600, height=400, timeout=90)
    assert r.ready and rb.ready
    assert r.network_requests == [] and rb.network_requests == []
    assert r.console_errors == []
    assert r.requests and r.requests[0].startswith("file://")
    n = count_non_background(tmp_path / "dots.png", background=(255, 255, 255))
    nb = count_non_background(tmp_path / "blank.png", background=(255, 255, 255))
    # Two 1.5 km discs at zoom 10 (~70 m/px at 22.5 N): ~2 × π·21² ≈ 2800 px.
    assert 1500 < n < 5000, n
    assert nb == 0


@pytest.mark.browser
def test_pydeck_raw_page_would_touch_the_network(chromium, tmp_path):
    # The control for the test above: the unstripped page does request CDN resources.
    raw = tmp_path / "raw.html"
    raw.write_text(_deck().to_html(offline=True, as_string=True, notebook_display=False),
                   encoding="utf-8")
    r = screenshot(raw, tmp_path / "raw.png", width=400, height=300, timeout=90)
    assert any("cdn" in u or "unpkg" in u or "mapbox" in u for u in r.network_requests)


def test_count_non_background(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(1)
    a = np.full((100, 120, 3), 240, dtype=np.uint8)
    a += rng.integers(0, 8, a.shape, dtype=np.uint8)  # noise within the tolerance
    a[10:20, 30:40] = (200, 20, 20)
    a[50, 60] = (240, 240, 200)  # 40 off in blue: counts
    Image.fromarray(a).save(tmp_path / "x.png")
    assert count_non_background(tmp_path / "x.png", tolerance=16) == 101
    # Dominant colour found by itself when background is not given (noise → many colours,
    # so give a plain image for that).
    b = np.zeros((50, 50, 4), dtype=np.uint8)  # transparent → composited on white
    b[:5, :5] = (0, 0, 255, 255)
    Image.fromarray(b, "RGBA").save(tmp_path / "y.png")
    assert count_non_background(tmp_path / "y.png") == 25
    assert count_non_background(tmp_path / "y.png", background=(0, 0, 255)) == 2500 - 25
