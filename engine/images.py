"""Image sizes, read from the header only: the one place that asks Pillow.

Why: COCO writes boxes in pixels, so an export needs every image's width
and height. Reading them at export time would open every blob; instead they
are measured once, when content enters the store, and kept on the item.
:func:`image_size` reads the header with ``Image.open(...).size``; Pillow
parses the header lazily and never decodes pixels for it (a JPEG's size is
in its SOF marker, a PNG's in IHDR).

Where it is called: :class:`engine.store.api.NewItem` measures its own
``data`` when built (so every back end gets sizes for rows it is handed
bytes for, without code of its own), and the paths that store content by
reference measure the file they stream (server uploads, the importer's
large members, ``dsexport store measure-images`` for older stores).
"""

from __future__ import annotations

import functools
import io
import warnings
from collections.abc import Iterator
from typing import IO

from PIL import Image, UnidentifiedImageError

__all__ = ["HEAD_BYTES", "blob_size", "image_size"]

#: How much of a blob is read to find its size; headers beyond this (a JPEG after a huge EXIF block) read all of it.
HEAD_BYTES = 256 * 1024

Size = tuple[int, int]


#: Leading bytes of the formats most images are stored in, and Pillow's name for each: content that
#: starts with one is opened by that plugin alone (Pillow otherwise tries every plugin whose check
#: passes, ~0.3 ms for bytes that are no image at all, which a million-item load would pay).
_MAGIC = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF8", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)
_SIGNED = frozenset({name for _, name in _MAGIC} | {"WEBP"})


def _formats(head: bytes, extension: str) -> list[str] | None:
    """The Pillow formats to try: by the content's signature, else by its extension; None: no image."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return ["WEBP"]
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return [name]
    by_extension = _format_of(extension.lower().lstrip(".")) if extension else None
    if by_extension is None or by_extension in _SIGNED:  # a .jpg without JPEG's signature is no JPEG
        return None
    return [by_extension]


@functools.lru_cache(maxsize=256)
def _format_of(extension: str) -> str | None:
    """Pillow's format for a file extension (``ppm`` -> ``PPM``), looked up once per extension."""
    return Image.registered_extensions().get("." + extension)


def image_size(source: bytes | IO[bytes], extension: str = "") -> Size | None:
    """(width, height) of image content, or None when it is not an image Pillow knows (or is unreadable).

    ``source`` is the bytes or a seekable binary file positioned at the start;
    ``extension`` (``"ppm"``) names the format of content whose first bytes do
    not (formats without a signature of their own).
    Images beyond Pillow's decompression-bomb limit have no size here: the
    guard runs inside ``Image.open``, and a size is not worth turning it off.
    """
    fp = io.BytesIO(source) if isinstance(source, (bytes, bytearray, memoryview)) else source
    start = fp.tell()
    formats = _formats(fp.read(16), extension)
    fp.seek(start)
    if formats is None:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(fp, formats=formats) as image:
                width, height = image.size
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError, SyntaxError, EOFError):
        return None
    if width <= 0 or height <= 0:
        return None
    return int(width), int(height)


def blob_size(chunks: Iterator[bytes], total: int, extension: str = "") -> Size | None:
    """The size of content given as chunks (a stored blob): its first :data:`HEAD_BYTES`, else all of it."""
    head = bytearray()
    for chunk in chunks:
        head += chunk
        if len(head) >= HEAD_BYTES:
            break
    size = image_size(bytes(head), extension)
    if size is not None or len(head) >= total:
        return size
    for chunk in chunks:  # the header lies further in: read the rest
        head += chunk
    return image_size(bytes(head), extension)
