"""The surface every registered format shares (formats/base.py, formats/__init__.py)."""

from __future__ import annotations

import inspect
import unicodedata

import pytest
from formats_support import ann, item, label, make_ctx, materialise, render_entries, split

import formats
from engine.model import ContentType
from formats.base import Entry

CONTENT_TYPES = {c.value for c in ContentType}
HOSTILE = [
    "../../up",
    "/abs",
    "a\\b",
    "nul\x00",
    "ctl\x01\x1b\x7f",
    'w<>:"|?*',
    "..",
    ".",
    "",
    "CON",
    "é" * 150,
]

# Annotation coordinates each content type stores (seeme-api.md §8).
COORDINATES = {"images": "0.5 0.5 0.2 0.2", "text": "", "tabular": "", "ner": '{"start": 0, "end": 1}'}


def dataset(content_type: str):
    labels = [label(name, id=f"L{i}") for i, name in enumerate(HOSTILE)]
    splits = [split(name, id=f"S{i}") for i, name in enumerate(HOSTILE)]
    ctx = make_ctx(content_type=content_type, labels=labels, splits=splits, version_id="../v\\1\x00")
    coords = COORDINATES[content_type]
    items = []
    for s in [*splits, None]:
        for i, name in enumerate(HOSTILE):
            annotations = [ann(labels[i], coords), ann(labels[-1 - i], coords)] if i % 3 else []
            items.append(
                item(
                    f"id/{i}\x00",
                    name,
                    HOSTILE[-1 - i],
                    text="x" * (i + 1),
                    split=s,
                    annotations=annotations,
                    content=b"data",
                    width=64 + i,
                    height=48 + i,
                )
            )
    return ctx, items


@pytest.mark.parametrize("key", sorted(formats.FORMATS))
def test_format_surface(key):
    cls = formats.FORMATS[key]
    assert cls.name == key
    assert formats.get_format(key.upper().replace("-", "_")) is cls
    assert isinstance(cls.content_types, frozenset) and cls.content_types
    assert cls.content_types <= CONTENT_TYPES
    assert inspect.ismethod(cls.needs_content)  # a classmethod
    for content_type in cls.content_types:
        assert isinstance(cls.needs_content(make_ctx(content_type=content_type).dataset), bool)


@pytest.mark.parametrize("key", sorted(formats.FORMATS))
def test_entries_are_safe_relative_paths(key):
    cls = formats.FORMATS[key]
    for content_type in sorted(cls.content_types):
        ctx, items = dataset(content_type)
        entries = render_entries(cls, ctx, items)
        assert entries, "a dataset with items must produce entries"
        seen: set[str] = set()
        for entry in entries:
            assert isinstance(entry, Entry)
            path = entry.path
            assert isinstance(path, str) and path
            assert not path.startswith("/") and "\\" not in path
            assert not any(unicodedata.category(ch) == "Cc" for ch in path), path
            parts = path.split("/")
            assert all(part not in ("", ".", "..") for part in parts), path
            # safe_component clips to 200 bytes; a UniquePaths "~<id>" tag may add more,
            # but a component must stay within the usual 255-byte file-system limit.
            assert all(len(part.encode()) <= 255 for part in parts), path
            assert path.casefold() not in seen, f"duplicate {path!r}"
            seen.add(path.casefold())
            assert isinstance(materialise(entry.data), bytes)
