"""Offline HTML pages of scenes: the deck.gl bundle, ``twinmap.js`` and the scene JSON inlined.

A page needs no server and no network: the bundle pydeck ships
(``pydeck/nbextension/static/index.js``, deck.gl 9, ~4.3 MB) and
``viz/static/twinmap.js`` are inlined verbatim, the scene JSON sits in a
``<script type="application/json">`` element, and a few lines call
``TwinMap.mount`` (or ``TwinMap.compare``).  Every page is checked with
:func:`viz.offline.assert_offline`.

A server (the console) instead serves :func:`bundle_path` at
``/static/deck.js`` and :func:`twinmap_js_path` at ``/static/twinmap.js``
and calls the same JavaScript API on scenes from its own API.

In the page, ``window.map`` is the map (the left one in compare mode) and
``window.compare`` the compare view; ``window.twinReady`` turns true when
every map drew its first frame (and ``window.deckInstance``, the left map's
deck, appears then, as on a pydeck page).  A scene with labels carries its
label font (:mod:`viz.fonts`) in its JSON; twinmap.js registers it.
"""

from __future__ import annotations

import functools
import html
import os
from pathlib import Path

from twin.errors import DataMissingError, ValidationError
from viz.scene import Scene, dumps

STATIC = Path(__file__).parent / "static"


def bundle_path() -> Path:
    """Path of the deck.gl bundle shipped with pydeck (defines ``deck``, ``createDeck``, ``updateDeck``).

    Raises
    ------
    DataMissingError
        When the installed pydeck has no bundle (reinstall pydeck >= 0.9).
    """
    import pydeck

    path = Path(pydeck.__file__).parent / "nbextension" / "static" / "index.js"
    if not path.is_file():
        raise DataMissingError(f"deck.gl bundle not found at {path}: reinstall pydeck (>= 0.9), "
                               "whose wheel ships it")
    return path


@functools.lru_cache(maxsize=1)
def bundle_bytes() -> bytes:
    """The deck.gl bundle's bytes (cached)."""
    return bundle_path().read_bytes()


def twinmap_js_path() -> Path:
    """Path of ``viz/static/twinmap.js`` (the ``TwinMap`` API)."""
    return STATIC / "twinmap.js"


def static_files() -> dict[str, Path]:
    """URL name → file, for a server's ``/static/``: ``deck.js`` and ``twinmap.js``."""
    return {"deck.js": bundle_path(), "twinmap.js": twinmap_js_path()}


def _scene_json(scene) -> dict:
    if isinstance(scene, Scene):
        return scene.to_json()
    if isinstance(scene, dict) and "layers" in scene:
        return scene
    raise ValidationError(f"scene: expected a viz.scene.Scene or its JSON dict, got {type(scene).__name__}")


# ``window.deckInstance`` (what pydeck pages define, and viz.browser.DECK_READY_JS polls) is set once
# every map drew its first frame, so tools written for pydeck pages wait for these too.
_WHEN_READY = """
(function wait() {
  if (window.twinReady === true) window.deckInstance = window.map.deck;
  else requestAnimationFrame(wait);
})();
"""

_BOOT_SINGLE = """
var S = JSON.parse(document.getElementById('twin-scene').textContent);
window.map = TwinMap.mount(document.getElementById('twin-map'), S.scene);
""" + _WHEN_READY

_BOOT_COMPARE = """
var S = JSON.parse(document.getElementById('twin-scene').textContent);
window.compare = TwinMap.compare(document.getElementById('twin-map'), S.a, S.b, S.diff);
window.map = window.compare.a;
""" + _WHEN_READY


def render_page(scene, *, title: str = "Shenzhen Twin", compare=None) -> str:
    """Render a self-contained offline HTML page of a scene.

    Parameters
    ----------
    scene : Scene or dict
        The map (the left half in compare mode).
    title : str
        Page title.
    compare : tuple or None
        ``(scene_b, diff_scene)`` for a split view A | B with synced views;
        ``diff_scene`` (may be None) is shown in the right half by the
        "show difference" toggle.

    Returns
    -------
    str
        The HTML; it passes :func:`viz.offline.assert_offline`.
    """
    from viz.offline import assert_offline

    if compare is None:
        payload = {"scene": _scene_json(scene)}
        boot = _BOOT_SINGLE
    else:
        if not isinstance(compare, (tuple, list)) or len(compare) != 2:
            raise ValidationError("compare: expected (scene_b, diff_scene_or_None)")
        b, diff = compare
        payload = {"a": _scene_json(scene), "b": _scene_json(b),
                   "diff": _scene_json(diff) if diff is not None else None}
        boot = _BOOT_COMPARE
    bundle = bundle_bytes().decode("utf-8")
    twinmap = twinmap_js_path().read_text(encoding="utf-8")
    page = (
        "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{html.escape(title)}</title>\n"
        "<style>html,body{margin:0;height:100%;overflow:hidden}#twin-map{width:100vw;height:100vh}</style>\n"
        f"<script>{bundle}</script>\n"
        f"<script>{twinmap}</script>\n"
        "</head>\n<body>\n<div id=\"twin-map\"></div>\n"
        f"<script id=\"twin-scene\" type=\"application/json\">{dumps(payload)}</script>\n"
        f"<script>{boot}</script>\n</body>\n</html>\n"
    )
    assert_offline(page)
    return page


def write_page(scene, path: str | os.PathLike, *, title: str = "Shenzhen Twin", compare=None) -> Path:
    """Write :func:`render_page` to ``path`` (UTF-8; parents created); returns the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_page(scene, title=title, compare=compare), encoding="utf-8")
    return out
