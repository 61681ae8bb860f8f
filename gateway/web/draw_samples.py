"""Draws the user page's sample item pictures (``static/samples/*.png``), no image library.

Run ``python -m gateway.web.draw_samples`` to regenerate them. Each picture is a few flat
shapes rasterised at 3x and box-filtered down, then written by a minimal PNG encoder (one
IHDR, one zlib-compressed IDAT, IEND). The file names are what the local vision model reads
("pet_bottle" → 무색페트병), and the page sends the Korean item name as the hint as well.
"""

from __future__ import annotations

import struct
import sys
import zlib
from collections.abc import Callable
from pathlib import Path

SIZE = 128
SCALE = 3
RGB = tuple[int, int, int]
Inside = Callable[[float, float], bool]


class Canvas:
    """An RGB canvas drawn in unit coordinates (0..1 on both axes), supersampled."""

    def __init__(self, background: RGB) -> None:
        self.n = SIZE * SCALE
        self.px = [list(background) for _ in range(self.n * self.n)]

    def fill(self, inside: Inside, color: RGB, box: tuple[float, float, float, float]) -> None:
        x0, y0, x1, y1 = (max(0, min(self.n, int(v * self.n))) for v in box)
        for y in range(y0, y1):
            for x in range(x0, x1):
                if inside((x + 0.5) / self.n, (y + 0.5) / self.n):
                    self.px[y * self.n + x] = list(color)

    def rect(self, x0: float, y0: float, x1: float, y1: float, color: RGB, r: float = 0) -> None:
        def inside(x: float, y: float) -> bool:
            dx = max(x0 + r - x, 0.0, x - (x1 - r))
            dy = max(y0 + r - y, 0.0, y - (y1 - r))
            return dx * dx + dy * dy <= r * r

        self.fill(inside, color, (x0, y0, x1, y1))

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, color: RGB) -> None:
        def inside(x: float, y: float) -> bool:
            return ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1

        self.fill(inside, color, (cx - rx, cy - ry, cx + rx, cy + ry))

    def polygon(self, points: list[tuple[float, float]], color: RGB) -> None:
        def inside(x: float, y: float) -> bool:
            hit = False
            for (ax, ay), (bx, by) in zip(points, points[1:] + points[:1], strict=True):
                if (ay > y) != (by > y) and x < ax + (y - ay) * (bx - ax) / (by - ay):
                    hit = not hit
            return hit

        xs, ys = [p[0] for p in points], [p[1] for p in points]
        self.fill(inside, color, (min(xs), min(ys), max(xs), max(ys)))

    def png(self) -> bytes:
        rows = bytearray()
        for y in range(SIZE):
            rows.append(0)  # filter type: none
            for x in range(SIZE):
                acc = [0, 0, 0]
                for sy in range(SCALE):
                    base = (y * SCALE + sy) * self.n + x * SCALE
                    for sx in range(SCALE):
                        p = self.px[base + sx]
                        acc[0] += p[0]
                        acc[1] += p[1]
                        acc[2] += p[2]
                rows += bytes(v // (SCALE * SCALE) for v in acc)
        return encode_png(SIZE, SIZE, bytes(rows))


def encode_png(width: int, height: int, filtered_rows: bytes) -> bytes:
    """An 8-bit RGB PNG of already filtered scanlines."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(filtered_rows, 9)) + chunk(b"IEND", b""))


BG: RGB = (240, 247, 241)


def pet_bottle() -> Canvas:
    c = Canvas(BG)
    c.rect(0.43, 0.08, 0.57, 0.18, (40, 120, 200), r=0.02)  # cap
    c.polygon([(0.44, 0.18), (0.56, 0.18), (0.68, 0.32), (0.32, 0.32)], (200, 228, 245))
    c.rect(0.32, 0.30, 0.68, 0.90, (200, 228, 245), r=0.06)
    c.rect(0.32, 0.48, 0.68, 0.64, (60, 170, 110))  # label
    c.rect(0.38, 0.36, 0.42, 0.84, (235, 246, 252), r=0.02)  # shine
    return c


def can() -> Canvas:
    c = Canvas(BG)
    c.rect(0.30, 0.18, 0.70, 0.86, (210, 60, 60), r=0.05)
    c.ellipse(0.50, 0.18, 0.20, 0.05, (190, 195, 200))
    c.ellipse(0.50, 0.86, 0.20, 0.05, (150, 155, 160))
    c.rect(0.30, 0.44, 0.70, 0.58, (245, 245, 245))
    c.rect(0.36, 0.24, 0.40, 0.80, (230, 120, 120), r=0.02)
    return c


def cardboard_box() -> Canvas:
    c = Canvas(BG)
    c.polygon([(0.16, 0.34), (0.50, 0.22), (0.84, 0.34), (0.50, 0.46)], (214, 170, 110))
    c.polygon([(0.16, 0.34), (0.50, 0.46), (0.50, 0.88), (0.16, 0.74)], (190, 140, 80))
    c.polygon([(0.50, 0.46), (0.84, 0.34), (0.84, 0.74), (0.50, 0.88)], (170, 122, 66))
    c.polygon([(0.30, 0.29), (0.36, 0.27), (0.70, 0.39), (0.64, 0.41)], (240, 220, 170))
    return c


def milk_carton() -> Canvas:
    c = Canvas(BG)
    c.polygon([(0.32, 0.30), (0.50, 0.14), (0.68, 0.30)], (235, 235, 240))
    c.rect(0.44, 0.08, 0.56, 0.16, (235, 235, 240))
    c.rect(0.32, 0.30, 0.68, 0.90, (250, 250, 252))
    c.rect(0.32, 0.52, 0.68, 0.74, (70, 130, 210))
    c.ellipse(0.50, 0.42, 0.08, 0.05, (70, 130, 210))
    return c


def glass_bottle() -> Canvas:
    c = Canvas(BG)
    c.rect(0.45, 0.06, 0.55, 0.12, (220, 180, 40), r=0.01)
    c.rect(0.45, 0.12, 0.55, 0.34, (50, 140, 80))
    c.polygon([(0.45, 0.32), (0.55, 0.32), (0.66, 0.46), (0.34, 0.46)], (50, 140, 80))
    c.rect(0.34, 0.44, 0.66, 0.92, (50, 140, 80), r=0.05)
    c.rect(0.34, 0.56, 0.66, 0.74, (245, 240, 220))
    c.rect(0.39, 0.48, 0.42, 0.88, (120, 200, 140), r=0.01)
    return c


def battery() -> Canvas:
    c = Canvas(BG)
    c.rect(0.44, 0.12, 0.56, 0.20, (180, 180, 185), r=0.01)
    c.rect(0.34, 0.18, 0.66, 0.90, (40, 40, 45), r=0.04)
    c.rect(0.34, 0.18, 0.66, 0.40, (230, 150, 30), r=0.04)
    c.rect(0.34, 0.36, 0.66, 0.40, (230, 150, 30))
    c.rect(0.46, 0.60, 0.54, 0.62, (250, 250, 250))
    c.rect(0.49, 0.57, 0.51, 0.65, (250, 250, 250))
    return c


SAMPLES: dict[str, Callable[[], Canvas]] = {
    "pet_bottle": pet_bottle, "can": can, "cardboard_box": cardboard_box,
    "milk_carton": milk_carton, "glass_bottle": glass_bottle, "battery": battery,
}


def main(folder: Path | None = None) -> None:
    out = folder or Path(__file__).parent / "static" / "samples"
    out.mkdir(parents=True, exist_ok=True)
    for name, draw in SAMPLES.items():
        (out / f"{name}.png").write_bytes(draw().png())
        print(f"wrote {out / name}.png")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else None)
