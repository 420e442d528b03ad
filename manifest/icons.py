"""Draw Gradebot's two Teams app icons (an open book with a check mark) with Pillow and write them as PNG files.

Run `python -m manifest.icons [out_dir]` to regenerate manifest/color.png (192×192) and manifest/outline.png (32×32).
"""

from __future__ import annotations

import argparse
import io
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw

Point = tuple[float, float]
Rgb = tuple[int, int, int]

MANIFEST_DIR = Path(__file__).resolve().parent
COLOR_SIZE = 192
OUTLINE_SIZE = 32
ACCENT: Rgb = (0x33, 0x58, 0xC4)  # the manifest's accentColor, #3358C4
WHITE: Rgb = (0xFF, 0xFF, 0xFF)
SUPERSAMPLING = 8  # drawn this many times larger, then averaged down (smooth edges)

# The glyph in unit coordinates (0..1, y grows downwards): two slanted pages and a check mark across them.
LEFT_PAGE: tuple[Point, ...] = ((0.16, 0.25), (0.485, 0.32), (0.485, 0.77), (0.16, 0.70))
RIGHT_PAGE: tuple[Point, ...] = ((0.515, 0.32), (0.84, 0.25), (0.84, 0.70), (0.515, 0.77))
CHECK_MARK: tuple[Point, ...] = ((0.30, 0.50), (0.44, 0.64), (0.71, 0.37))
CHECK_WIDTH = 0.085


def page_mask(size: int) -> Image.Image:
    """An 8-bit coverage mask (255 = white page) of the pages minus the check mark, anti-aliased, size × size."""
    big = size * SUPERSAMPLING
    mask = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(mask)

    def scaled(points: Sequence[Point]) -> list[tuple[float, float]]:
        return [(x * big, y * big) for x, y in points]

    draw.polygon(scaled(LEFT_PAGE), fill=255)
    draw.polygon(scaled(RIGHT_PAGE), fill=255)
    draw.line(scaled(CHECK_MARK), fill=0, width=round(CHECK_WIDTH * big), joint="curve")
    radius = CHECK_WIDTH * big / 2
    for x, y in scaled((CHECK_MARK[0], CHECK_MARK[-1])):  # round caps
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=0)
    return mask.resize((size, size), Image.Resampling.BOX)


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def color_icon() -> Image.Image:
    """192×192 full-colour icon: white book and accent check mark on an accent background (no transparency)."""
    return Image.composite(
        Image.new("RGB", (COLOR_SIZE, COLOR_SIZE), WHITE),
        Image.new("RGB", (COLOR_SIZE, COLOR_SIZE), ACCENT),
        page_mask(COLOR_SIZE),
    )


def outline_icon() -> Image.Image:
    """32×32 outline icon: the white book on a transparent background, the check mark cut out."""
    icon = Image.new("RGBA", (OUTLINE_SIZE, OUTLINE_SIZE), (*WHITE, 0))
    icon.putalpha(page_mask(OUTLINE_SIZE))
    return icon


def write_icons(out_dir: Path = MANIFEST_DIR) -> tuple[Path, Path]:
    """Write color.png and outline.png into out_dir; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    color_path, outline_path = out_dir / "color.png", out_dir / "outline.png"
    color_path.write_bytes(_png(color_icon()))
    outline_path.write_bytes(_png(outline_icon()))
    return color_path, outline_path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write Gradebot's Teams app icons (color.png, outline.png).")
    parser.add_argument("out_dir", nargs="?", type=Path, default=MANIFEST_DIR, help="folder to write into")
    arguments = parser.parse_args(argv)
    for path in write_icons(arguments.out_dir):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
