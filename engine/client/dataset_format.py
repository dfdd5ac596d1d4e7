"""``DatasetFormat``: the export formats by SeeMe's names, derived from the one registry, ``formats.FORMATS``.

Why derived: the list of format names exists once. A format added to the
registry is a member here too, named as the spec names it (``spacy-ner`` ->
``SPACY_NER``); the value is what the HTTP API and CLI take.
"""

from __future__ import annotations

import enum

from formats import FORMATS

__all__ = ["DatasetFormat"]


def _member_name(format_name: str) -> str:
    """The spec's ``export_format`` spelling of a registry key: ``"spacy-ner"`` -> ``"SPACY_NER"``."""
    return format_name.upper().replace("-", "_")


DatasetFormat = enum.Enum(  # type: ignore[misc]
    "DatasetFormat",
    [(_member_name(name), name) for name in FORMATS],
    type=str,
    module=__name__,
    qualname="DatasetFormat",
)
DatasetFormat.__doc__ = (
    "The export formats by SeeMe's names (FOLDERS, YOLO, CSV, SPACY_NER, ...); "
    "the value is what the HTTP API and CLI take, e.g. DatasetFormat.SPACY_NER.value == 'spacy-ner'."
)
