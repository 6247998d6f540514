"""Tests for viz/browser.py's BrowserSession against real headless Chromium."""

from __future__ import annotations

import pytest

from twin.errors import BrowserError, ValidationError
from twin.testing import serve_directory
from viz.browser import BrowserSession

PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>t</title></head>
<body style="margin:0;background:#fff"><div id="box" style="width:50px;height:40px;background:#c00"></div>
<script>
  window.later = false;
  setTimeout(function () { window.later = true; }, 300);
  console.error('boom', 42);
</script></body></html>"""


@pytest.mark.browser
def test_session_file_page_evaluate_errors_and_requests(chromium, tmp_path):
    from viz.browser import count_non_background

    page = tmp_path / "p.html"
    page.write_text(PAGE, encoding="utf-8")
    with BrowserSession(width=300, height=200) as b:
        assert b.goto(page, ready_js="window.later === true", timeout=30) is True
        assert b.evaluate("1 + 2") == 3
        assert b.evaluate("new Promise(r => setTimeout(() => r({a: [1, 'x']}), 50))") == {"a": [1, "x"]}
        with pytest.raises(BrowserError, match="nope"):
            b.evaluate("(() => { throw new Error('nope'); })()")
        with pytest.raises(BrowserError, match="rejected|late"):
            b.evaluate("Promise.reject(new Error('rejected late'))")
        b.screenshot(tmp_path / "s.png")
        assert b.console_errors == ["boom 42"]
        assert b.requests[0] == page.resolve().as_uri() and b.network_requests == []
        # Not ready in time: strict raises, lenient returns False.
        with pytest.raises(BrowserError, match="was not true"):
            b.goto(page, ready_js="window.never === 1", timeout=1.5)
        assert b.goto(page, ready_js="window.never === 1", timeout=1.5, strict=False) is False
        with pytest.raises(ValidationError, match="not a file"):
            b.goto(tmp_path / "missing.html")
    assert count_non_background(tmp_path / "s.png", background=(255, 255, 255)) == 50 * 40


@pytest.mark.browser
def test_session_over_http_records_network_requests(chromium, tmp_path):
    (tmp_path / "p.html").write_text(PAGE, encoding="utf-8")
    with serve_directory(tmp_path) as server, BrowserSession(width=300, height=200) as b:
        url = f"{server.url}/p.html"
        b.goto(url, ready_js="document.getElementById('box') !== null", timeout=30)
        assert b.evaluate("location.href") == url
        assert url in b.network_requests
        assert "/p.html" in server.log


def test_session_outside_with_fails_clearly():
    with pytest.raises(BrowserError, match="not started"):
        BrowserSession().evaluate("1")
    with pytest.raises(ValidationError, match="width"):
        BrowserSession(width=0)
