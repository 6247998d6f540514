"""Tests for viz/page.py: offline pages of scenes and the static files a server serves."""

from __future__ import annotations

import json
import re

import pytest

from twin.errors import ValidationError
from viz.offline import assert_offline, find_remote_resources
from viz.page import bundle_bytes, render_page, static_files, twinmap_js_path, write_page
from viz.scene import LayerSet, Scene

DOTS = {"@@type": "ScatterplotLayer", "id": "dots", "data": [{"p": [114.05, 22.55], "tooltip": "a"}],
        "getPosition": "@@=p", "getRadius": 1500, "getFillColor": [220, 30, 30]}


def _scene(extra=None) -> Scene:
    data = DOTS if extra is None else {**DOTS, "data": [{"p": [114.05, 22.55], "tooltip": extra}]}
    return Scene(title="T", view={"longitude": 114.05, "latitude": 22.55, "zoom": 10},
                 sets=[LayerSet(layers=[data], label="Dots")])


def _payload(page: str) -> dict:
    m = re.search(r'<script id="twin-scene" type="application/json">(.*?)</script>', page, re.S)
    return json.loads(m.group(1))


def test_page_inlines_bundle_twinmap_and_scene_and_is_offline():
    page = render_page(_scene(), title="A <title>")
    assert_offline(page)
    assert bundle_bytes().decode("utf-8") in page
    assert twinmap_js_path().read_text(encoding="utf-8") in page
    assert "<title>A &lt;title&gt;</title>" in page
    assert _payload(page)["scene"]["layers"][0]["id"] == "dots"
    assert "window.map = TwinMap.mount(" in page and "window.compare =" not in page


def test_compare_page_carries_three_scenes():
    page = render_page(_scene(), compare=(_scene(), None))
    p = _payload(page)
    assert set(p) == {"a", "b", "diff"} and p["diff"] is None
    assert "window.compare = TwinMap.compare(" in page
    with pytest.raises(ValidationError, match="compare"):
        render_page(_scene(), compare=_scene())


def test_script_text_in_data_cannot_break_out_and_urls_in_data_are_refused():
    evil = "</script><script>document.title='pwned'</script><!--"
    page = render_page(_scene(evil))
    assert evil not in page
    assert _payload(page)["scene"]["layers"][0]["data"][0]["tooltip"] == evil
    with pytest.raises(ValidationError, match="example.com"):
        render_page(_scene("see https://example.com/x.png"))


def test_twinmap_js_needs_nothing_from_the_network():
    js = twinmap_js_path().read_text(encoding="utf-8")
    assert find_remote_resources(f"<script>{js}</script>") == []
    assert not re.search(r"\b(fetch|XMLHttpRequest|import\s*\()", js)


def test_static_files_for_servers(tmp_path):
    files = static_files()
    assert set(files) == {"deck.js", "twinmap.js"}
    assert all(p.is_file() for p in files.values())
    assert files["deck.js"].stat().st_size > 3_000_000
    out = write_page(_scene(), tmp_path / "sub" / "p.html")
    assert out.read_text(encoding="utf-8") == render_page(_scene())
    with pytest.raises(ValidationError, match="scene"):
        render_page([1, 2])
