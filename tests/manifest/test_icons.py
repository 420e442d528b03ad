"""The committed icons are what manifest/icons.py draws, at Teams' sizes: a full-colour 192×192 and a white 32×32."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from manifest import icons

MANIFEST_DIR = Path(icons.__file__).resolve().parent


def _pixels(image: Image.Image) -> list[tuple[int, ...]]:
    return [tuple(image.getpixel((x, y))) for y in range(image.height) for x in range(image.width)]  # type: ignore[arg-type]


def test_the_committed_icons_are_exactly_what_the_generator_draws(tmp_path: Path) -> None:
    for drawn in icons.write_icons(tmp_path):
        with Image.open(drawn) as fresh, Image.open(MANIFEST_DIR / drawn.name) as committed:
            assert (fresh.mode, fresh.size) == (committed.mode, committed.size)
            assert _pixels(fresh) == _pixels(committed), "run python -m manifest.icons"


def test_the_color_icon_is_192_opaque_and_mostly_the_accent_colour() -> None:
    with Image.open(MANIFEST_DIR / "color.png") as image:
        assert (image.format, image.mode, image.size) == ("PNG", "RGB", (192, 192))  # no transparency
        pixels = _pixels(image)
    accent = sum(1 for pixel in pixels if pixel == icons.ACCENT)
    white = sum(1 for pixel in pixels if pixel == icons.WHITE)
    assert accent > len(pixels) // 2  # a full-colour background
    assert white > len(pixels) // 10  # and a visible white glyph
    assert pixels[0] == icons.ACCENT  # the corners are background


def test_the_outline_icon_is_32_white_on_transparent() -> None:
    with Image.open(MANIFEST_DIR / "outline.png") as image:
        assert (image.format, image.mode, image.size) == ("PNG", "RGBA", (32, 32))
        pixels = _pixels(image)
    assert all(pixel[:3] == (255, 255, 255) for pixel in pixels), "outline icons may only use white"
    alphas = [pixel[3] for pixel in pixels]
    assert alphas[0] == 0  # transparent background
    assert sum(1 for alpha in alphas if alpha == 255) > 100  # a solid glyph
    assert sum(1 for alpha in alphas if alpha == 0) > 300
