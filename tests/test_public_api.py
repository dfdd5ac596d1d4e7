"""The public surface of ``engine`` and ``formats`` is complete and importable."""

from __future__ import annotations

import engine
import formats


def test_engine_all_is_resolvable_and_sorted():
    assert engine.__all__ == sorted(engine.__all__)
    for name in engine.__all__:
        assert getattr(engine, name) is not None, name


def test_unknown_engine_attribute_is_an_attribute_error():
    try:
        engine.NoSuchThing  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_format_registry_matches_names():
    assert set(formats.FORMATS) == {"folders", "yolo", "csv", "spacy-ner"}
    for key, cls in formats.FORMATS.items():
        assert cls.name == key
    assert formats.get_format("SPACY_NER") is formats.FORMATS["spacy-ner"]


def test_natural_format_of_each_content_type():
    import pytest

    from engine.errors import InvalidInput

    assert formats.natural_format("images") == "folders"
    assert formats.natural_format("images", has_boxes=True) == "yolo"
    assert formats.natural_format("text") == "folders"
    assert formats.natural_format("tabular") == "csv"
    assert formats.natural_format("ner") == "spacy-ner"
    with pytest.raises(InvalidInput, match="video"):
        formats.natural_format("video")
