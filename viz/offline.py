"""Turn a :class:`pydeck.Deck` into one HTML file that needs no network.

Why pydeck's own bundle
-----------------------
pydeck 0.9 ships the deck.gl Jupyter-widget bundle
(``pydeck/nbextension/static/index.js``, ~4.3 MB: deck.gl 9 core, layers,
JSON converter and MapLibre) and ``render_json_to_html(..., offline=True)``
inlines it.  It renders the layers used here with no basemap and no other
file, so nothing has to be vendored; only pydeck's page template still links
CDN resources (the mapbox-gl script, bootstrap, font-awesome and maplibre
stylesheets, the widgets stylesheet, google maps with a key).  This module

1. renders the page with pydeck's template, *without* API keys or custom
   libraries (they would put keys or remote scripts into the file);
2. parses the HTML (:class:`html.parser.HTMLParser`, which treats
   ``<script>``/``<style>`` bodies as opaque text, so tags are never matched
   inside JavaScript) and removes every element that loads a remote resource,
   and every remote ``@import``/``url()`` in ``<style>``;
3. checks the result with :func:`assert_offline`.

What counts as a remote resource
--------------------------------
The bundle is full of URL *strings* (licence headers, the loaders.gl worker
CDN, mapbox and geocoder APIs, the CARTO style).  They are not resources of
the page: each is used only by a feature that asks for it (a map style,
worker loaders, draco meshes, geocoding), which the layers built here do not.
So :func:`assert_offline` inspects what the *page* asks for:

* URL-bearing attributes of every tag (``src``, ``href``, ``srcset``, ``data``,
  ``poster``, ``action``, ``background``, a ``meta`` refresh ...) and ``url()``
  / ``@import`` in ``style`` attributes;
* ``url()`` and ``@import`` inside ``<style>`` bodies;
* inline scripts: a script whose body is byte-identical to a known vendored
  bundle (its SHA-256, see :func:`trusted_bundles`) is exempt; any other
  inline script (the page's own code and the deck JSON: layer data, image
  URLs, map style) must contain no ``http(s)://``/``ws(s)://`` URL at all.

The browser test (tests/viz/test_offline.py) backs this up at run time: it
records every request Chromium makes while drawing the page and finds none
with a network scheme.
"""

from __future__ import annotations

import functools
import hashlib
import html as html_lib
import json
import os
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from twin.errors import ValidationError

#: Attributes that make a browser fetch (or navigate to) the URL they hold.
URL_ATTRS = frozenset({
    "src", "href", "srcset", "data", "poster", "action", "formaction", "background",
    "manifest", "ping", "codebase", "cite", "longdesc", "lowsrc", "dynsrc",
    "xlink:href", "imagesrcset", "archive", "icon",
})

#: Elements removed whole (start tag to end tag) when they load a remote resource.
_CONTAINER_TAGS = frozenset({"script", "iframe", "object", "video", "audio", "frame", "noscript"})

_SCRIPT_URL = re.compile(r"""(?i)\b(?:https?|wss?|ftp)://[^\s"'`<>\\)]*""")
_CSS_URL = re.compile(r"""(?i)url\(\s*(['"]?)(.*?)\1\s*\)""")
_CSS_IMPORT = re.compile(r"""(?i)@import\s+(?:url\(\s*)?(['"]?)([^'"\s);]+)\1\s*\)?[^;]*;?""")
_META_REFRESH_URL = re.compile(r"(?i)url\s*=\s*(\S+)")


def _is_remote(url: str) -> bool:
    """True for an absolute network URL or a protocol-relative one (``//host/...``)."""
    u = html_lib.unescape(url).strip().strip("'\"")
    return bool(re.match(r"(?i)^(?:(?:https?|wss?|ftp):)?//", u))


@functools.lru_cache(maxsize=1)
def trusted_bundles() -> dict[str, str]:
    """SHA-256 → name of the JavaScript bundles allowed to mention URLs.

    Only pydeck's inlined deck.gl bundle, hashed from the installed file, so
    an edited or different script is checked like any other.
    """
    import pydeck

    path = Path(pydeck.__file__).parent / "nbextension" / "static" / "index.js"
    out: dict[str, str] = {}
    if path.is_file():
        digest = hashlib.sha256(path.read_text(encoding="utf-8").encode("utf-8")).hexdigest()
        out[digest] = f"pydeck {pydeck.__version__} deck.gl bundle"
    return out


@dataclass
class _Element:
    tag: str
    attrs: list[tuple[str, str | None]]
    start: int  # offset of '<' of the start tag
    start_end: int  # offset just after the start tag
    end: int | None = None  # offset just after the end tag, when there is one
    text: list[str] = field(default_factory=list)  # body of <script>/<style>/<title>


class _Scanner(HTMLParser):
    """Record every element with its character span in the source."""

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=False)
        self.source = source
        self._line_starts = [0] + [m.end() for m in re.finditer("\n", source)]
        self.elements: list[_Element] = []
        self._open: list[_Element] = []

    def _offset(self) -> int:
        line, col = self.getpos()
        return self._line_starts[line - 1] + col

    def handle_starttag(self, tag, attrs):
        start = self._offset()
        text = self.get_starttag_text() or ""
        el = _Element(tag, attrs, start, start + len(text))
        self.elements.append(el)
        if tag in ("script", "style", "title") or tag in _CONTAINER_TAGS:
            self._open.append(el)

    def handle_startendtag(self, tag, attrs):
        start = self._offset()
        text = self.get_starttag_text() or ""
        self.elements.append(_Element(tag, attrs, start, start + len(text), start + len(text)))

    def handle_endtag(self, tag):
        start = self._offset()
        close = self.source.find(">", start)
        end = len(self.source) if close < 0 else close + 1
        for i in range(len(self._open) - 1, -1, -1):
            if self._open[i].tag == tag:
                self._open[i].end = end
                del self._open[i:]
                break

    def handle_data(self, data):
        if self._open and self._open[-1].tag in ("script", "style", "title"):
            self._open[-1].text.append(data)


def _scan(source: str) -> list[_Element]:
    scanner = _Scanner(source)
    scanner.feed(source)
    scanner.close()
    return scanner.elements


def _attr_problems(el: _Element) -> list[str]:
    out = []
    for name, value in el.attrs:
        if value is None:
            continue
        name = name.lower()
        if name in URL_ATTRS:
            if name.endswith("srcset"):
                urls = [part.strip().split()[0] for part in value.split(",") if part.strip()]
            else:
                urls = [value]
            out += [f"<{el.tag} {name}={u!r}>" for u in urls if _is_remote(u)]
        elif name == "style":
            out += [f"<{el.tag} style=...> {p}" for p in _css_problems(value)]
        elif name == "content" and el.tag == "meta":
            m = _META_REFRESH_URL.search(value)
            if m and _is_remote(m.group(1)):
                out.append(f"<meta content={value!r}> (refresh to a remote URL)")
    return out


def _css_problems(css: str) -> list[str]:
    out = [f"url({m.group(2)})" for m in _CSS_URL.finditer(css) if _is_remote(m.group(2))]
    out += [f"@import {m.group(2)}" for m in _CSS_IMPORT.finditer(css) if _is_remote(m.group(2))]
    return out


def find_remote_resources(page: str) -> list[str]:
    """List the remote resources an HTML page would load (empty when offline).

    See the module docstring for what is inspected and why.
    """
    trusted = trusted_bundles()
    problems: list[str] = []
    for el in _scan(page):
        problems += _attr_problems(el)
        body = "".join(el.text)
        if el.tag == "style":
            problems += [f"<style> {p}" for p in _css_problems(body)]
        elif el.tag == "script" and body.strip():
            if hashlib.sha256(body.encode("utf-8")).hexdigest() in trusted:
                continue
            for m in _SCRIPT_URL.finditer(body):
                problems.append(f"<script> (inline) mentions {m.group(0)}")
    return problems


def assert_offline(page: str) -> None:
    """Raise :class:`ValidationError` if the page would load anything from the network.

    Raises
    ------
    ValidationError
        Listing every remote ``src=``/``href=``/``url()``/``@import`` and every
        URL in a non-vendored inline script.
    """
    problems = find_remote_resources(page)
    if problems:
        listing = "\n  ".join(problems[:50])
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        raise ValidationError(
            f"html page is not offline: {len(problems)} remote resource(s) found:\n  {listing}{more}\n"
            "Build the page with viz.offline.offline_html() (which strips CDN links), "
            "use map_provider=None/map_style=None, and embed data inline (data: URLs)."
        )


def strip_remote_resources(page: str, title: str | None = None) -> str:
    """Remove every element/CSS rule that loads a remote resource; optionally set the title.

    ``<script src=remote>...</script>`` and other container elements are removed
    with their body; void elements (``<link>``, ``<img>``, ...) lose their tag;
    in ``<style>`` bodies remote ``@import`` rules are dropped and remote
    ``url()`` become ``none``.  Spans come from the parser, not from string
    matching, so attribute order, quoting and spacing do not matter.
    """
    edits: list[tuple[int, int, str]] = []  # (start, end, replacement)
    title_done = False
    for el in _scan(page):
        if _attr_problems(el):
            end = el.end if (el.tag in _CONTAINER_TAGS and el.end is not None) else el.start_end
            edits.append((el.start, end, ""))
        elif el.tag == "style" and el.end is not None:
            body = "".join(el.text)
            if _css_problems(body):
                new = _CSS_IMPORT.sub(lambda m: "" if _is_remote(m.group(2)) else m.group(0), body)
                new = _CSS_URL.sub(lambda m: "none" if _is_remote(m.group(2)) else m.group(0), new)
                body_start = el.start_end
                edits.append((body_start, body_start + len(body), new))
        elif el.tag == "title" and title is not None and el.end is not None and not title_done:
            edits.append((el.start, el.end, f"<title>{html_lib.escape(title)}</title>"))
            title_done = True
    edits.sort()
    out, pos = [], 0
    for start, end, repl in edits:
        if start < pos:  # nested in an element already removed
            continue
        out += [page[pos:start], repl]
        pos = end
    out.append(page[pos:])
    return "".join(out)


def _check_deck(deck) -> None:
    provider = getattr(deck, "map_provider", None)
    style = getattr(deck, "map_style", None)
    if provider or style:
        raise ValidationError(
            f"deck.map_provider={provider!r}, map_style={style!r}: a basemap loads tiles from "
            "the network. Build the Deck with map_provider=None, map_style=None for an offline page "
            "(draw a basemap as a layer instead, e.g. viz.citymap's hillshade)."
        )


def offline_html(deck, title: str = "Shenzhen Twin", background: str | None = None) -> str:
    """Render ``deck`` as a self-contained HTML string and check it is offline.

    Parameters
    ----------
    deck : pydeck.Deck
        Built with ``map_provider=None, map_style=None``.
    title : str
        Page title.
    background : str or None
        CSS colour behind the map (None: transparent, i.e. white).

    Raises
    ------
    ValidationError
        When the deck has a basemap provider/style, or the page still refers
        to a remote resource (e.g. a layer whose data is an http URL).
    """
    from pydeck.io.html import render_json_to_html

    _check_deck(deck)
    # pydeck indents its JSON by 2 spaces, one number per line: re-dump it compactly.
    deck_json = json.dumps(json.loads(deck.to_json()), separators=(",", ":"), ensure_ascii=False)
    # Inside <script>, "</" could close the element early: "<\/" is the same JSON string.
    deck_json = deck_json.replace("</", "<\\/").replace("<!--", "<\\u0021--")
    page = render_json_to_html(
        deck_json,
        mapbox_key=None,
        google_maps_key=None,
        tooltip=getattr(deck, "_tooltip", True),
        css_background_color=background,
        custom_libraries=None,
        configuration=None,
        offline=True,
    )
    page = strip_remote_resources(page, title=title)
    assert_offline(page)
    return page


def write_offline_html(deck, path: str | os.PathLike, title: str = "Shenzhen Twin",
                       background: str | None = None) -> Path:
    """Write ``deck`` as a self-contained, network-free HTML file and return its path.

    See :func:`offline_html`.  The file is UTF-8; its size is the ~4.3 MB
    deck.gl bundle plus the deck's JSON.
    """
    page = offline_html(deck, title=title, background=background)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out


def deck_json_size(deck) -> int:
    """Bytes of the deck's JSON (the part of the page that grows with the data)."""
    return len(json.dumps(json.loads(deck.to_json()), separators=(",", ":")).encode("utf-8"))
