"""The map labels' font: Noto Sans CJK SC cut down to exactly the characters the labels use.

deck.gl's ``TextLayer`` draws text from a glyph atlas it renders on a canvas
with the CSS font it is given, for the characters of its ``characterSet``.
Chinese labels need a CJK font the page carries itself (no network): this
module subsets Debian's ``fonts-noto-cjk`` (``NotoSansCJK-Regular.ttc``, face
"Noto Sans CJK SC") with :mod:`fontTools.subset` to the label characters
(Latin letters and digits included, so one font draws every label) and
returns it as a WOFF ``data:`` URL (zlib; WOFF2 would need brotli, which is
not installed).  A page's labels need a few hundred glyphs: ~40–120 kB.

``viz/static/twinmap.js`` registers the font (``FontFace`` from the scene's
``fonts``) and waits for ``document.fonts.load`` before it builds any text
layer, so the atlas is drawn with the real glyphs, not tofu.

Without the font (:func:`find_cjk_font` finds none) :func:`label_font`
raises :class:`~twin.errors.DataMissingError` saying to install
``fonts-noto-cjk``; :func:`viz.scene.Scene.to_json` catches it, warns with
:class:`MissingFontWarning` and keeps only the labels' Latin text (pinyin,
line numbers, sensor ids) drawn in the browser's sans-serif.
"""

from __future__ import annotations

import base64
import functools
import io
import os
from pathlib import Path

from twin.errors import DataMissingError, ValidationError

#: CSS family name of the subset font in a page.
LABEL_FAMILY = "TwinLabels"

#: Setting naming a CJK font file (.ttc/.otf/.ttf) to use instead of the Debian one.
ENV_VAR = "TWIN_CJK_FONT"

#: Where Debian/Ubuntu's fonts-noto-cjk puts the fonts (CI installs it).
SEARCH = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/noto/NotoSansCJK-Regular.ttc",
)

#: Face of a collection to use: simplified Chinese.
FACE = "Noto Sans CJK SC"


class MissingFontWarning(UserWarning):
    """No CJK font: labels keep only their Latin text."""


def find_cjk_font() -> Path:
    """The CJK font file: ``$TWIN_CJK_FONT``, else Debian's NotoSansCJK-Regular.ttc.

    Raises
    ------
    DataMissingError
        When none is found, saying to install ``fonts-noto-cjk``.
    """
    env = os.environ.get(ENV_VAR)
    if env:
        p = Path(env)
        if not p.is_file():
            raise DataMissingError(f"{ENV_VAR}={env!r} is not a font file: point it at a CJK font "
                                   "(e.g. NotoSansCJK-Regular.ttc) or unset it")
        return p
    for cand in SEARCH:
        if Path(cand).is_file():
            return Path(cand)
    raise DataMissingError(
        "no CJK font for the map labels: install Debian's fonts-noto-cjk (`apt-get install fonts-noto-cjk`, "
        f"which provides {SEARCH[0]}) or set {ENV_VAR} to a CJK .ttc/.otf file")


def _open_face(path: Path):
    from fontTools.ttLib import TTCollection, TTFont

    if path.suffix.lower() in (".ttc", ".otc"):
        coll = TTCollection(str(path), lazy=True)
        for i, f in enumerate(coll.fonts):
            if f["name"].getDebugName(1) == FACE:
                return TTFont(str(path), fontNumber=i, lazy=False)
        return TTFont(str(path), fontNumber=0, lazy=False)
    return TTFont(str(path), lazy=False)


def label_chars(texts) -> str:
    """The sorted distinct characters of ``texts`` (no control characters), as one string."""
    chars = set()
    for t in texts:
        chars.update(ch for ch in str(t) if ch.isprintable())
    return "".join(sorted(chars))


@functools.lru_cache(maxsize=16)
def subset_font(chars: str, path: str | None = None) -> bytes:
    """WOFF bytes of the CJK font cut down to ``chars`` (and .notdef).

    Raises
    ------
    DataMissingError
        When no font is found (see :func:`find_cjk_font`).
    ValidationError
        When ``chars`` is empty.
    """
    from fontTools import subset

    if not chars:
        raise ValidationError("subset_font: no characters to keep")
    font = _open_face(Path(path) if path else find_cjk_font())
    opts = subset.Options()
    opts.flavor = "woff"
    opts.layout_features = []      # the atlas draws single glyphs: no shaping tables needed
    opts.name_IDs = [0, 1, 2, 3, 4, 5, 6]
    opts.notdef_outline = True
    opts.hinting = False
    opts.desubroutinize = True     # smaller after zlib
    sub = subset.Subsetter(options=opts)
    sub.populate(text=chars)
    sub.subset(font)
    buf = io.BytesIO()
    font.flavor = "woff"
    font.save(buf)
    return buf.getvalue()


def covered_chars(font_bytes: bytes) -> set[str]:
    """Characters that have a glyph in a font (its best cmap)."""
    from fontTools.ttLib import TTFont

    f = TTFont(io.BytesIO(font_bytes))
    return {chr(c) for c in f.getBestCmap()}


def label_font(chars: str) -> dict:
    """``{"family", "url", "chars", "bytes"}``: the subset font of ``chars`` as a WOFF data URL.

    ``family`` is :data:`LABEL_FAMILY` plus a hash of ``chars``.

    Raises
    ------
    DataMissingError
        When no CJK font is installed (install ``fonts-noto-cjk``).
    """
    import hashlib

    data = subset_font(chars, str(find_cjk_font()))
    # A family name per subset: two scenes on one page (A | B) must not swap each other's glyphs.
    family = f"{LABEL_FAMILY}-{hashlib.sha1(chars.encode('utf-8')).hexdigest()[:10]}"
    return {"family": family, "url": "data:font/woff;base64," + base64.b64encode(data).decode("ascii"),
            "chars": chars, "bytes": len(data)}


def is_latin(ch: str) -> bool:
    """True for characters every sans-serif font has (ASCII, Latin-1, general punctuation)."""
    return ord(ch) < 0x0250 or 0x2000 <= ord(ch) < 0x2070


__all__ = ["LABEL_FAMILY", "MissingFontWarning", "covered_chars", "find_cjk_font", "is_latin",
           "label_chars", "label_font", "subset_font"]
