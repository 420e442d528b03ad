"""The committed icons are what manifest/icons.py draws, at Teams' sizes: a full-colour 192×192 and a white 32×32."""

from __future__ import annotations

from pathlib import Path

import pytest

from manifest import icons
from tests.manifest.png_reader import read_png

MANIFEST_DIR = Path(icons.__file__).resolve().parent


def test_the_committed_icons_are_exactly_what_the_generator_writes(tmp_path: Path) -> None:
    color_path, outline_path = icons.write_icons(tmp_path)
    assert color_path.read_bytes() == (MANIFEST_DIR / "color.png").read_bytes(), "run python manifest/icons.py"
    assert outline_path.read_bytes() == (MANIFEST_DIR / "outline.png").read_bytes(), "run python manifest/icons.py"


def test_the_color_icon_is_192_opaque_and_mostly_the_accent_colour() -> None:
    png = read_png((MANIFEST_DIR / "color.png").read_bytes())
    assert (png.width, png.height, png.color_type) == (192, 192, 2)  # RGB: no transparency
    accent = sum(1 for pixel in png.pixels if pixel == icons.ACCENT)
    white = sum(1 for pixel in png.pixels if pixel == icons.WHITE)
    assert accent > len(png.pixels) // 2  # a full-colour background
    assert white > len(png.pixels) // 10  # and a visible white glyph
    assert png.pixels[0] == icons.ACCENT  # the corners are background


def test_the_outline_icon_is_32_white_on_transparent() -> None:
    png = read_png((MANIFEST_DIR / "outline.png").read_bytes())
    assert (png.width, png.height, png.color_type) == (32, 32, 6)  # RGBA
    assert all(pixel[:3] == (255, 255, 255) for pixel in png.pixels), "outline icons may only use white"
    alphas = [pixel[3] for pixel in png.pixels]
    assert alphas[0] == 0  # transparent background
    assert sum(1 for alpha in alphas if alpha == 255) > 100  # a solid glyph
    assert sum(1 for alpha in alphas if alpha == 0) > 300


def test_the_png_writer_rejects_rows_of_the_wrong_size() -> None:
    with pytest.raises(ValueError, match="expected 2 rows of 6 bytes"):
        icons.encode_png(2, 2, [b"\x00" * 6], alpha=False)
