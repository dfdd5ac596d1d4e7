"""The command line's progress bar: always one line, however narrow the terminal.

A bar that does not fit is wrapped by Rich onto several lines, which then
scroll and smear on every refresh. So the bar has layouts from the richest
to the barest, and each refresh draws the first one whose natural width fits
the terminal: fewer fields when narrow, never a second line.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rich.console import Console
from rich.filesize import decimal
from rich.measure import Measurement
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Column, Table
from rich.text import Text

__all__ = ["progress_bar"]

#: The description (dataset and format) is cut with an ellipsis beyond this many cells.
DESCRIPTION_WIDTH = 24
_UNBOUNDED = 10_000  # a width to measure what a layout needs, unsqueezed


class _ItemRateColumn(ProgressColumn):
    """Items per second, from the bar's own progress."""

    def render(self, task: Task) -> Text:
        rate = f"{task.speed:,.0f} items/s" if task.speed else "- items/s"
        return Text(rate, style="progress.data.speed")


class _BytesColumn(ProgressColumn):
    """Archive bytes written so far (the task's ``bytes`` field)."""

    def render(self, task: Task) -> Text:
        return Text(decimal(task.fields.get("bytes", 0)), style="progress.filesize")


class _ByteRateColumn(ProgressColumn):
    """Archive bytes per second since the start."""

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        rate = f"{decimal(int(task.fields.get('bytes', 0) / elapsed))}/s" if elapsed > 0 else "-"
        return Text(rate, style="progress.data.speed")


def _description() -> TextColumn:
    return TextColumn(
        "[bold]{task.description}",
        table_column=Column(no_wrap=True, overflow="ellipsis", max_width=DESCRIPTION_WIDTH),
    )


def _layouts(with_bytes: bool) -> list[list[ProgressColumn]]:
    """The bar's layouts, richest first; the bytes columns only where an archive is written."""
    size: list[ProgressColumn] = [_BytesColumn()] if with_bytes else []
    rate: list[ProgressColumn] = [_ByteRateColumn()] if with_bytes else []
    return [
        [_description(), BarColumn(bar_width=40), MofNCompleteColumn(), TextColumn("items"), _ItemRateColumn(),
         *size, *rate, TimeRemainingColumn()],
        [_description(), BarColumn(bar_width=20), MofNCompleteColumn(), _ItemRateColumn(), *size, TimeRemainingColumn()],
        [_description(), BarColumn(bar_width=12), MofNCompleteColumn(), *size, TimeRemainingColumn()],
        [_description(), MofNCompleteColumn(), TimeRemainingColumn()],
    ]


class _OneLineProgress(Progress):
    """A :class:`Progress` that picks, on every refresh, the richest layout that fits the terminal."""

    def __init__(self, layouts: Sequence[Sequence[ProgressColumn]], console: Console) -> None:
        self._layouts = layouts
        self._terminal = console  # kept here: Progress draws once before its own console is set
        super().__init__(*layouts[0], console=console, transient=False)

    def make_tasks_table(self, tasks: Iterable[Task]) -> Table:
        tasks = list(tasks)
        unbounded = self._terminal.options.update_width(_UNBOUNDED)
        for columns in self._layouts:
            self.columns = tuple(columns)
            table = super().make_tasks_table(tasks)
            if Measurement.get(self._terminal, unbounded, table).maximum <= self._terminal.width:
                break
        return table


def progress_bar(console: Console, *, with_bytes: bool = True) -> Progress:
    """A one-line bar on ``console``: items, and with ``with_bytes`` the archive's bytes and rate."""
    return _OneLineProgress(_layouts(with_bytes), console)
