"""Image sizes from headers (engine/images.py): every common format, exotic ones by extension, no image -> None."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from engine.images import HEAD_BYTES, blob_size, image_size
from engine.store import NewItem


def _image(kind: str, size: tuple[int, int], **save) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (10, 20, 30)).save(out, kind, **save)
    return out.getvalue()


@pytest.mark.parametrize("kind", ["JPEG", "PNG", "GIF", "BMP", "TIFF", "WEBP"])
def test_common_formats_are_sized_by_their_signature(kind: str):
    data = _image(kind, (33, 17))
    assert image_size(data) == (33, 17)
    assert image_size(io.BytesIO(data)) == (33, 17)  # a file, read from its start


def test_a_format_without_a_signature_of_ours_is_sized_by_its_extension():
    data = _image("PPM", (5, 9))
    assert image_size(data, "ppm") == (5, 9) and image_size(data, ".PPM") == (5, 9)


@pytest.mark.parametrize("data, extension", [(b"", ""), (b"plain text", "txt"), (b"\xff\xd8\xff broken", "jpg"),
                                             (b"\x89PNG\r\n\x1a\n" + b"\0" * 30, "png"), (bytes(range(256)), "jpg")])
def test_content_that_is_no_readable_image_has_no_size(data: bytes, extension: str):
    assert image_size(data, extension) is None


def test_a_header_past_the_first_bytes_is_found_in_the_whole_blob():
    """A JPEG whose size marker comes after a large APP segment (EXIF) is read on."""
    jpeg = _image("JPEG", (40, 30))
    filler = b"\xff\xe2" + (60_000).to_bytes(2, "big") + b"\0" * 59_998  # APP2 segments before the frame header
    data = jpeg[:2] + filler * ((HEAD_BYTES // 60_000) + 2) + jpeg[2:]
    chunks = [data[i : i + 4096] for i in range(0, len(data), 4096)]
    assert len(data) > HEAD_BYTES and blob_size(iter(chunks), len(data)) == (40, 30)


def test_a_decompression_bomb_has_no_size_and_no_warning():
    width = height = 20_000  # 400 M pixels: past Pillow's limit, in a header of a few bytes
    png = _image("PNG", (1, 1))
    ihdr_at = png.index(b"IHDR")
    import struct
    import zlib

    body = struct.pack(">II", width, height) + png[ihdr_at + 12 : ihdr_at + 17]
    bomb = png[: ihdr_at] + b"IHDR" + body + struct.pack(">I", zlib.crc32(b"IHDR" + body)) + png[ihdr_at + 21 :]
    assert image_size(bomb) is None  # filterwarnings=error: a DecompressionBombWarning would fail here


def test_new_item_measures_its_own_data_unless_told():
    assert (NewItem(data=_image("PNG", (7, 3)), extension="png").width, NewItem(data=_image("PNG", (7, 3))).height) == (7, 3)
    assert NewItem(data=_image("PNG", (7, 3)), width=1, height=2).width == 1
    assert NewItem(data=b"text").width is None and NewItem(name="no content").width is None
