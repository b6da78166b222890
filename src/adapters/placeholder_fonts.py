"""The placeholder font: one with wide coverage where the system has one, and text it can really draw."""

from __future__ import annotations

import threading
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

# Fonts with wide coverage, best first; Pillow finds a bare file name in the system's font folders.
_FONT_FILES = (
    "NotoSansCJK-Regular.ttc",  # Linux with Noto CJK: Latin, Greek, Cyrillic and CJK in one face
    "Arial Unicode.ttf",  # macOS
    "msyh.ttc",  # Windows (Microsoft YaHei): Latin and CJK
    "DejaVuSans.ttf",  # most Linux systems: Latin, Greek, Cyrillic and many symbols, no CJK
    "arial.ttf",  # Windows
)
_PROBE_SIZE = 24
_MISSING = "\U0010fffd"  # a private-use code point no font draws: shows what this font draws for "no glyph"
# Pillow's FreeType fonts share one FreeType library and are not safe to use from two threads at once;
# re-entrant because drawing text checks glyphs, which draws too.
FREETYPE = threading.RLock()


@lru_cache(maxsize=1)
def _font_file() -> str | None:
    """The first of _FONT_FILES this system has, looked up once: each miss walks the font folders."""
    for name in _FONT_FILES:
        try:
            with FREETYPE:
                return ImageFont.truetype(name, _PROBE_SIZE).path
        except OSError:
            continue
    return None


@lru_cache(maxsize=32)
def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """The placeholder font at a size; Pillow's built-in font (ASCII and little more) if the system has none."""
    path = _font_file()
    with FREETYPE:
        return ImageFont.truetype(path, size) if path else ImageFont.load_default(size=size)


def _glyph_picture(char: str) -> tuple[object, bytes] | None:
    """How the placeholder font draws one character: its box and pixels, or None if it cannot draw it at all."""
    probe = font(_PROBE_SIZE)
    canvas = Image.new("L", (_PROBE_SIZE * 3, _PROBE_SIZE * 2))
    try:
        with FREETYPE:
            ImageDraw.Draw(canvas).text((_PROBE_SIZE // 2, 0), char, fill=255, font=probe)
            return probe.getbbox(char), canvas.tobytes()
    except (ValueError, OSError):  # e.g. a lone surrogate, or non-Latin-1 text with a bitmap font
        return None


@lru_cache(maxsize=4096)
def font_covers(char: str) -> bool:
    """Whether the placeholder font has a glyph for char: Pillow has no direct check, so compare its picture
    with the picture of a code point no font has (the "missing glyph" box). Cached: prompts repeat letters."""
    picture = _glyph_picture(char)
    return picture is not None and picture != _glyph_picture(_MISSING)


def drawable(text: str) -> str:
    """text with each character the font lacks replaced by '?': a '?' says more than a row of identical boxes."""
    return "".join(c if font_covers(c) else "?" for c in text)
