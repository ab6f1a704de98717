"""Uploads, good and hostile, made in memory: a class's images as a zip, and the files an
attacker sends instead (a zip bomb, a pixel bomb, thousands of tiny files, names that climb
out of the folder, other files renamed ``.png``). The hostile tool and the tests send them."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

import numpy as np
from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle")


def draw_shape(image: Image.Image, shape: str, rng: np.random.Generator) -> None:
    """``shape`` in a random light colour, at a random place and size near the middle of a 48-pixel-high canvas."""
    draw, ink = ImageDraw.Draw(image), tuple(int(v) for v in rng.integers(140, 256, 3))
    x, y, r = int(rng.integers(18, 30)), int(rng.integers(18, 30)), int(rng.integers(8, 16))
    if shape == "circle":
        draw.ellipse((x - r, y - r, x + r, y + r), fill=ink)
    elif shape == "square":
        draw.rectangle((x - r, y - r, x + r, y + r), fill=ink)
    else:
        draw.polygon([(x, y - r), (x - r, y + r), (x + r, y + r)], fill=ink)


def shape_image(shape: str, rng: np.random.Generator, kind: str = "JPEG") -> bytes:
    """One 48-pixel image of ``shape`` on a random dark ground."""
    image = Image.new("RGB", (48, 48), tuple(int(v) for v in rng.integers(0, 120, 3)))
    draw_shape(image, shape, rng)
    out = io.BytesIO()
    image.save(out, kind)
    return out.getvalue()


def noise_jpeg(rng: np.random.Generator, kilobytes: int = 100) -> bytes:
    """A JPEG of about ``kilobytes`` (within a few per cent): noise, which JPEG cannot shrink."""

    def encode(side: int) -> bytes:
        out = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)).save(out, "JPEG", quality=75)
        return out.getvalue()

    first = encode(256)
    return encode(int(256 * (kilobytes * 1024 / len(first)) ** 0.5))


def class_zip(per_class: int = 30, classes: tuple[str, ...] = SHAPES, top: str | None = "shapes", seed: int = 0) -> bytes:
    """A zip with one folder per class (inside ``top``, as zipping a folder makes it)."""
    rng = np.random.default_rng(seed)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        for c, name in enumerate(classes):
            for i in range(per_class):
                kind = "PNG" if i % 3 == 2 else "JPEG"
                path = f"{name}/{i:03d}.{'png' if kind == 'PNG' else 'jpg'}"
                zf.writestr(f"{top}/{path}" if top else path, shape_image(SHAPES[c % len(SHAPES)], rng, kind=kind))
    return out.getvalue()


def photo_zip(images: int, kilobytes: int = 100, classes: int = 4, seed: int = 0) -> bytes:
    """``images`` photo-sized JPEGs in ``classes`` folders: what a class's own photos weigh."""
    rng = np.random.default_rng(seed)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        for i in range(images):
            zf.writestr(f"class-{i % classes}/{i:05d}.jpg", noise_jpeg(rng, kilobytes))
    return out.getvalue()


def zip_bomb(megabytes: int = 2000) -> bytes:
    """A zip of one member that unpacks to ``megabytes`` of zeros from a few megabytes."""
    out = io.BytesIO()
    block = b"\0" * (1 << 20)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("bomb/zeros.png", "w", force_zip64=True) as member:
        for _ in range(megabytes):
            member.write(block)
    return out.getvalue()


def pixel_bomb(side: int = 60_000) -> bytes:
    """A valid PNG header claiming ``side`` × ``side`` pixels over a few bytes of data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 1024)) + chunk(b"IEND", b"")


def many_files(count: int = 10_000) -> bytes:
    """A zip of ``count`` one-byte files."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        for i in range(count):
            zf.writestr(f"c{i % 3}/{i}.png", b"x")
    return out.getvalue()


def traversal_zip() -> bytes:
    """Members whose names climb out of any folder they are unpacked in, beside a few good ones."""
    rng = np.random.default_rng(1)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name in ("../../escaped.jpg", "/etc/escaped.jpg", "a\\..\\..\\escaped.jpg", "C:/escaped.jpg", "ok/../../escaped.jpg"):
            zf.writestr(zipfile.ZipInfo(name), shape_image("circle", rng))
    return out.getvalue()


def renamed_zip(per_class: int = 8) -> bytes:
    """Files that are not images, named as if they were: text, an executable, a PDF, a GIF."""
    out = io.BytesIO()
    gif = io.BytesIO()
    Image.new("P", (8, 8)).save(gif, "GIF")
    fakes = (b"just some text", b"\x7fELF\x02\x01\x01" + b"\0" * 64, b"%PDF-1.4 not really", gif.getvalue())
    with zipfile.ZipFile(out, "w") as zf:
        for c in range(2):
            for i in range(per_class):
                zf.writestr(f"c{c}/{i}.png", fakes[i % len(fakes)])
    return out.getvalue()
