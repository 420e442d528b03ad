"""Read the PNG files our icon writer produces (8-bit RGB/RGBA, non-interlaced), independently of that writer."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHANNELS = {2: 3, 6: 4}  # colour type -> samples per pixel


@dataclass(frozen=True, slots=True)
class Png:
    width: int
    height: int
    color_type: int
    pixels: list[tuple[int, ...]]  # row-major, one tuple of channel values per pixel


def _paeth(left: int, up: int, up_left: int) -> int:
    estimate = left + up - up_left
    distances = (abs(estimate - left), abs(estimate - up), abs(estimate - up_left))
    return (left, up, up_left)[distances.index(min(distances))]


def _unfilter(raw: bytes, width: int, height: int, channels: int) -> bytes:
    stride = width * channels
    previous = bytearray(stride)
    out = bytearray()
    for row in range(height):
        start = row * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up_left = previous[i - channels] if i >= channels else 0
            predictor = (0, left, previous[i], (left + previous[i]) // 2, _paeth(left, previous[i], up_left))[kind]
            line[i] = (line[i] + predictor) & 0xFF
        out += line
        previous = line
    return bytes(out)


def read_png(data: bytes) -> Png:
    """Parse the chunks (checking every CRC), the IHDR header and the pixels; ValueError on anything unexpected."""
    if not data.startswith(SIGNATURE):
        raise ValueError("not a PNG file")
    position, header, compressed = len(SIGNATURE), b"", b""
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        (crc,) = struct.unpack(">I", data[position + 8 + length : position + 12 + length])
        if zlib.crc32(kind + body) & 0xFFFFFFFF != crc:
            raise ValueError(f"bad CRC in {kind!r} chunk")
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            compressed += body
        position += 12 + length
    width, height, depth, color_type, _, _, interlace = struct.unpack(">IIBBBBB", header)
    if depth != 8 or color_type not in CHANNELS or interlace != 0:
        raise ValueError(f"unsupported PNG: depth {depth}, colour type {color_type}, interlace {interlace}")
    channels = CHANNELS[color_type]
    samples = _unfilter(zlib.decompress(compressed), width, height, channels)
    pixels = [tuple(samples[i : i + channels]) for i in range(0, len(samples), channels)]
    return Png(width, height, color_type, pixels)
