"""Draw Gradebot's two Teams app icons (an open book with a check mark) and write them as PNG files.

Pure standard library (zlib + struct), deterministic: the same run always writes the same bytes.
Run `python manifest/icons.py [out_dir]` to regenerate manifest/color.png (192×192) and manifest/outline.png (32×32).
"""

from __future__ import annotations

import argparse
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

Point = tuple[float, float]
Rgb = tuple[int, int, int]

MANIFEST_DIR = Path(__file__).resolve().parent
COLOR_SIZE = 192
OUTLINE_SIZE = 32
ACCENT: Rgb = (0x33, 0x58, 0xC4)  # the manifest's accentColor, #3358C4
WHITE: Rgb = (0xFF, 0xFF, 0xFF)
SUPERSAMPLING = 4  # samples per axis per pixel, for smooth edges

# The glyph in unit coordinates (0..1, y grows downwards): two slanted pages and a check mark across them.
LEFT_PAGE: tuple[Point, ...] = ((0.16, 0.25), (0.485, 0.32), (0.485, 0.77), (0.16, 0.70))
RIGHT_PAGE: tuple[Point, ...] = ((0.515, 0.32), (0.84, 0.25), (0.84, 0.70), (0.515, 0.77))
CHECK_MARK: tuple[Point, ...] = ((0.30, 0.50), (0.44, 0.64), (0.71, 0.37))
GLYPH_BOX = (0.16, 0.25, 0.84, 0.77)  # left, top, right, bottom: nothing is drawn outside it
CHECK_WIDTH = 0.085


def _inside_convex(point: Point, polygon: Sequence[Point]) -> bool:
    """True when the point lies inside a convex polygon given in clockwise or counter-clockwise order."""
    x, y = point
    sign = 0.0
    for index, (x1, y1) in enumerate(polygon):
        x2, y2 = polygon[(index + 1) % len(polygon)]
        cross = (x2 - x1) * (y - y1) - (y2 - y1) * (x - x1)
        if cross != 0.0:
            if sign == 0.0:
                sign = cross
            elif (cross > 0) != (sign > 0):
                return False
    return True


def _distance_to_segment(point: Point, start: Point, end: Point) -> float:
    px, py = point
    ax, ay = start
    bx, by = end
    dx, dy = bx - ax, by - ay
    length_squared = dx * dx + dy * dy
    t = 0.0 if length_squared == 0.0 else max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / length_squared))
    cx, cy = ax + t * dx, ay + t * dy
    return float(((px - cx) ** 2 + (py - cy) ** 2) ** 0.5)


def _on_check_mark(point: Point) -> bool:
    return any(
        _distance_to_segment(point, CHECK_MARK[i], CHECK_MARK[i + 1]) <= CHECK_WIDTH / 2
        for i in range(len(CHECK_MARK) - 1)
    )


def _on_page(point: Point) -> bool:
    return _inside_convex(point, LEFT_PAGE) or _inside_convex(point, RIGHT_PAGE)


def _may_touch_glyph(row: int, column: int, size: int) -> bool:
    left, top, right, bottom = GLYPH_BOX
    return left <= (column + 1) / size and column / size <= right and top <= (row + 1) / size and row / size <= bottom


def _page_coverage(size: int) -> list[list[float]]:
    """For each pixel, the share of its samples that fall on white page (pages minus the check mark)."""
    step = 1.0 / (size * SUPERSAMPLING)
    rows: list[list[float]] = []
    for row in range(size):
        coverage_row: list[float] = []
        for column in range(size):
            if not _may_touch_glyph(row, column, size):
                coverage_row.append(0.0)
                continue
            hits = 0
            for sy in range(SUPERSAMPLING):
                for sx in range(SUPERSAMPLING):
                    point = ((column * SUPERSAMPLING + sx + 0.5) * step, (row * SUPERSAMPLING + sy + 0.5) * step)
                    if _on_page(point) and not _on_check_mark(point):
                        hits += 1
            coverage_row.append(hits / SUPERSAMPLING**2)
        rows.append(coverage_row)
    return rows


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_png(width: int, height: int, rows: Sequence[bytes], *, alpha: bool) -> bytes:
    """A PNG file from raw 8-bit RGB (alpha=False) or RGBA (alpha=True) rows, each row unfiltered."""
    channels = 4 if alpha else 3
    if len(rows) != height or any(len(row) != width * channels for row in rows):
        raise ValueError(f"expected {height} rows of {width * channels} bytes")
    header = struct.pack(">IIBBBBB", width, height, 8, 6 if alpha else 2, 0, 0, 0)
    raw = b"".join(b"\x00" + row for row in rows)  # filter type 0 (None) on every row
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw, 9)) + _chunk(b"IEND", b"")
    )


def _blend(background: Rgb, foreground: Rgb, share: float) -> bytes:
    return bytes(round(b + (f - b) * share) for b, f in zip(background, foreground, strict=True))


def color_icon() -> bytes:
    """192×192 full-colour icon: white book and accent check mark on an accent background."""
    coverage = _page_coverage(COLOR_SIZE)
    rows = [b"".join(_blend(ACCENT, WHITE, share) for share in row) for row in coverage]
    return encode_png(COLOR_SIZE, COLOR_SIZE, rows, alpha=False)


def outline_icon() -> bytes:
    """32×32 outline icon: the white book on a transparent background, the check mark cut out."""
    coverage = _page_coverage(OUTLINE_SIZE)
    rows = [b"".join(bytes((*WHITE, round(255 * share))) for share in row) for row in coverage]
    return encode_png(OUTLINE_SIZE, OUTLINE_SIZE, rows, alpha=True)


def write_icons(out_dir: Path = MANIFEST_DIR) -> tuple[Path, Path]:
    """Write color.png and outline.png into out_dir; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    color_path, outline_path = out_dir / "color.png", out_dir / "outline.png"
    color_path.write_bytes(color_icon())
    outline_path.write_bytes(outline_icon())
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
