"""The command line's tables of datasets, readable at any terminal width.

Two whole ids take 72 columns, so on an 80-column terminal a one-line row
leaves nothing for the name, content and counts, and Rich squeezes those to
bare ellipses. A table therefore has two layouts: one line per row where it
fits, and otherwise the ids stacked under the dataset's name, so the ids
stay whole and the other columns keep their room. Piped output (width 200)
keeps the one-line layout.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import Console
from rich.measure import Measurement
from rich.table import Column, Table
from rich.text import Text

__all__ = ["IdRow", "ids_table"]

ID_WIDTH = 36  # a UUID string, shown whole
_UNBOUNDED = 10_000  # a width to measure what the one-line layout needs, unsqueezed


@dataclass(frozen=True)
class IdRow:
    """One dataset version: its name, ids and the other cells, in the order of the headers."""

    name: str
    dataset_id: str
    version_id: str
    before_ids: Sequence[str]  # cells shown before the ids in the one-line layout
    after_ids: Sequence[str] = ()


def ids_table(
    console: Console, before_ids: Sequence[str], after_ids: Sequence[str], rows: Sequence[IdRow]
) -> Table:
    """A table of ``rows`` that fits ``console``: one line per row if it can, else ids under each name."""
    one_line = _one_line(before_ids, after_ids, rows)
    natural = Measurement.get(console, console.options.update_width(_UNBOUNDED), one_line).maximum
    return one_line if natural <= console.width else _stacked(before_ids, after_ids, rows)


def _id_column(title: str) -> Column:
    return Column(title, no_wrap=True, min_width=ID_WIDTH)


def _one_line(before_ids: Sequence[str], after_ids: Sequence[str], rows: Sequence[IdRow]) -> Table:
    table = Table("dataset", *before_ids, _id_column("dataset id"), _id_column("version id"), *after_ids)
    for r in rows:
        table.add_row(r.name, *r.before_ids, r.dataset_id, r.version_id, *r.after_ids)
    return table


def _stacked(before_ids: Sequence[str], after_ids: Sequence[str], rows: Sequence[IdRow]) -> Table:
    """The name on the first line of its cell, the dataset id and version id below it."""
    names = Column("dataset\ndataset id\nversion id", width=ID_WIDTH, no_wrap=True, overflow="ellipsis")
    table = Table(names, *before_ids, *after_ids, show_lines=True)
    for r in rows:
        cell = Text(r.name, style="bold")
        cell.append(f"\n{r.dataset_id}\n{r.version_id}")
        table.add_row(cell, *r.before_ids, *r.after_ids)
    return table
