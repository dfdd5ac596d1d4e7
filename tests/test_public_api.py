"""The public surface of ``engine``, ``formats``, ``engine.store`` and ``engine.client`` is complete and importable."""

from __future__ import annotations

import importlib
import types

import pytest

import engine
import formats

PACKAGES = ["engine", "formats", "engine.store", "engine.client"]


def _defined_in(value: object, package: str) -> bool:
    module = getattr(value, "__module__", None) or ""
    return module == package or module.startswith(package + ".")


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_name_is_in_all(package: str):
    """As httpx's test_exported_members: a name the package defines and shows is in ``__all__``."""
    module = importlib.import_module(package)
    shown = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType) and _defined_in(value, package)
    }
    assert shown - set(module.__all__) == set()
    assert len(module.__all__) == len(set(module.__all__)), "a name is listed twice"


@pytest.mark.parametrize("package", PACKAGES)
def test_every_name_in_all_resolves(package: str):
    module = importlib.import_module(package)
    for name in module.__all__:
        assert getattr(module, name) is not None, f"{package}.{name}"


def test_engine_lazy_names_are_all_listed():
    assert set(engine._LAZY) <= set(engine.__all__)


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
    assert set(formats.FORMATS) == {"folders", "yolo", "csv", "spacy-ner", "ultralytics", "coco"}
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
