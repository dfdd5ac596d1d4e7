"""``DatasetFormat`` is derived from the one registry and keeps its members, values and documentation."""

from __future__ import annotations

import inspect
import pydoc

import engine
import engine.client
from engine.client.dataset_format import DatasetFormat
from formats import FORMATS


def test_members_and_values_are_as_they_were():
    assert [(f.name, f.value) for f in DatasetFormat] == [
        ("FOLDERS", "folders"), ("YOLO", "yolo"), ("CSV", "csv"), ("SPACY_NER", "spacy-ner"),
        ("ULTRALYTICS", "ultralytics"), ("COCO", "coco"),  # beside the spec's four
    ]
    assert [f.value for f in DatasetFormat] == list(FORMATS)


def test_it_is_a_str_enum_reachable_from_engine_and_the_client():
    assert engine.DatasetFormat is DatasetFormat is engine.client.DatasetFormat
    assert DatasetFormat("spacy-ner") is DatasetFormat.SPACY_NER
    assert DatasetFormat.YOLO == "yolo" and isinstance(DatasetFormat.CSV, str)


def test_help_and_inspect_show_it_by_name():
    assert DatasetFormat.__module__ == "engine.client.dataset_format"
    assert DatasetFormat.__qualname__ == "DatasetFormat"
    assert "SPACY_NER" in (inspect.getdoc(DatasetFormat) or "")
    page = pydoc.render_doc(DatasetFormat, renderer=pydoc.plaintext)
    for member in ("FOLDERS", "YOLO", "CSV", "SPACY_NER"):
        assert member in page
