"""An offline info-card image: a tiny PNG encoder (zlib) and a flat drawing of a disposal card.

There is no font here for Hangul, so the card is a visual summary — a header in the category's
colour with a badge, one numbered block per step (bar length ~ the step's text), the ECO2
footer — and the card's Korean text travels inside the PNG as UTF-8 ``iTXt`` chunks (title and
steps), next to the answer that quotes them.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Mapping, Sequence

RGB = tuple[int, int, int]

WIDTH, HEIGHT = 480, 640
BACKGROUND: RGB = (247, 249, 244)
WHITE: RGB = (255, 255, 255)
INK: RGB = (55, 71, 79)
DEFAULT_COLOR: RGB = (67, 160, 71)
CATEGORY_COLORS: Mapping[str, RGB] = {
    "무색페트병": (66, 165, 245),
    "플라스틱류": (255, 167, 38),
    "종이": (141, 110, 99),
    "종이팩": (161, 136, 127),
    "금속류": (120, 144, 156),
    "유리병": (38, 166, 154),
    "비닐류": (171, 71, 188),
    "발포합성수지": (144, 164, 174),
    "전지": (239, 83, 80),
    "조명제품": (251, 192, 45),
    "의류및원단": (236, 64, 122),
    "전기전자제품": (92, 107, 192),
}

# 3×5 pixel glyphs for what the card writes: digits and the letters of "ECO2".
_GLYPHS = {
    "0": ("111", "101", "101", "101", "111"),
    "1": ("010", "110", "010", "010", "111"),
    "2": ("111", "001", "111", "100", "111"),
    "3": ("111", "001", "111", "001", "111"),
    "4": ("101", "101", "111", "001", "001"),
    "5": ("111", "100", "111", "001", "111"),
    "6": ("111", "100", "111", "101", "111"),
    "7": ("111", "001", "010", "010", "010"),
    "8": ("111", "101", "111", "101", "111"),
    "9": ("111", "101", "111", "001", "111"),
    "E": ("111", "100", "111", "100", "111"),
    "C": ("111", "100", "100", "100", "111"),
    "O": ("111", "101", "101", "101", "111"),
}


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_png(width: int, height: int, rgb: bytes, text: Mapping[str, str] | None = None) -> bytes:
    """An 8-bit RGB PNG of ``rgb`` (row-major, 3 bytes a pixel) with UTF-8 ``iTXt`` chunks."""
    if len(rgb) != width * height * 3:
        raise ValueError("pixel data does not match the size")
    stride = width * 3
    raw = b"".join(b"\x00" + rgb[y * stride : (y + 1) * stride] for y in range(height))
    parts = [
        b"\x89PNG\r\n\x1a\n",
        _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)),
    ]
    for key, value in (text or {}).items():
        # keyword, null, compression flag 0, method 0, empty language tag, empty translated key
        parts.append(
            _chunk(b"iTXt", key.encode("latin-1") + b"\x00\x00\x00\x00\x00" + value.encode())
        )
    parts.append(_chunk(b"IDAT", zlib.compress(raw, 9)))
    parts.append(_chunk(b"IEND", b""))
    return b"".join(parts)


class Canvas:
    def __init__(self, width: int, height: int, color: RGB) -> None:
        self.width, self.height = width, height
        self.pixels = bytearray(bytes(color) * (width * height))

    def rect(self, x: int, y: int, w: int, h: int, color: RGB) -> None:
        x0, y0 = max(x, 0), max(y, 0)
        x1, y1 = min(x + w, self.width), min(y + h, self.height)
        if x1 <= x0 or y1 <= y0:
            return
        row = bytes(color) * (x1 - x0)
        for yy in range(y0, y1):
            start = (yy * self.width + x0) * 3
            self.pixels[start : start + len(row)] = row

    def circle(self, cx: int, cy: int, r: int, color: RGB) -> None:
        for dy in range(-r, r + 1):
            half = int((r * r - dy * dy) ** 0.5)
            self.rect(cx - half, cy + dy, 2 * half + 1, 1, color)

    def text(self, x: int, y: int, text: str, scale: int, color: RGB) -> None:
        for ch in text:
            for row, bits in enumerate(_GLYPHS.get(ch, ("000",) * 5)):
                for col, bit in enumerate(bits):
                    if bit == "1":
                        self.rect(x + col * scale, y + row * scale, scale, scale, color)
            x += 4 * scale

    def png(self, text: Mapping[str, str] | None = None) -> bytes:
        return encode_png(self.width, self.height, bytes(self.pixels), text)


def _lighter(color: RGB, amount: float) -> RGB:
    r, g, b = (int(c + (255 - c) * amount) for c in color)
    return (r, g, b)


def render_info_card(title: str, steps: Sequence[str], category: str | None = None) -> bytes:
    """A PNG card for ``title`` with one block per step (at most 6), coloured by category."""
    color = CATEGORY_COLORS.get(category or "", DEFAULT_COLOR)
    canvas = Canvas(WIDTH, HEIGHT, BACKGROUND)
    canvas.rect(0, 0, WIDTH, 130, color)
    canvas.circle(WIDTH // 2, 65, 42, WHITE)
    canvas.circle(WIDTH // 2, 65, 30, _lighter(color, 0.35))
    shown = list(steps)[:6]
    top, block = 160, 66
    for n, step in enumerate(shown, start=1):
        y = top + (n - 1) * (block + 10)
        canvas.rect(24, y, WIDTH - 48, block, WHITE)
        canvas.rect(24, y, 8, block, color)
        canvas.circle(70, y + block // 2, 20, color)
        canvas.text(70 - 5, y + block // 2 - 9, str(n), 4 if n < 10 else 3, WHITE)
        length = min(WIDTH - 160, 60 + 6 * len(step))
        canvas.rect(110, y + 18, length, 10, _lighter(INK, 0.55))
        canvas.rect(110, y + 38, max(40, length * 2 // 3), 10, _lighter(INK, 0.75))
    canvas.rect(0, HEIGHT - 56, WIDTH, 56, _lighter(color, 0.8))
    canvas.text(WIDTH // 2 - 30, HEIGHT - 38, "ECO2", 4, color)
    meta = {
        "Title": title,
        "Description": "\n".join(f"{n}. {s}" for n, s in enumerate(shown, start=1)),
        "Software": "Eco2 offline info card",
    }
    return canvas.png(meta)
