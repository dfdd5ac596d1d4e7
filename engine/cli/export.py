"""``dsexport export`` and ``export-all``: archives from a store, from a SeeMe API, or sharded over Ray."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from enum import Enum
from functools import partial
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table
from typer.core import TyperCommand

from engine.cli.common import (
    ApiKeyOption,
    BackendChoice,
    BlobsOption,
    FormatChoice,
    JsonOption,
    ProgressOption,
    StoreOption,
    TimeoutOption,
    err,
    out_console,
    report_retries,
    store_address,
    user_errors,
    write_json,
)
from engine.cli.progress import progress_bar
from engine.client.api import DEFAULT_TIMEOUT, credentials
from engine.client.source import http_source
from engine.errors import InvalidInput
from engine.pipeline import ExportOptions, ExportResult, run_export
from engine.sinks import open_sink
from engine.sources import ExportPlan, Source, StoreSource
from formats import natural_format
from formats.boxes import left_out_note

__all__ = ["NamesMissingValues", "export", "export_all"]


class CompressChoice(str, Enum):
    store = "store"
    deflate = "deflate"


_RAY_CLUSTER = re.compile(r"(ray://)?\S+:\d+")  # HOST:PORT of a head, or ray://HOST:PORT for Ray Client


def _ray_address(value: str) -> str:
    """``--ray``'s value. An option in its place means the value was left out: say so, not "no cluster at -o"."""
    if value in ("local", "auto") or _RAY_CLUSTER.fullmatch(value):
        return value
    if value.startswith("-"):
        raise typer.BadParameter(f"needs local, auto or HOST:PORT, not {value}")
    raise typer.BadParameter(f"{value!r} is not local, auto or [ray://]HOST:PORT")


class NamesMissingValues(TyperCommand):
    """A command whose option given last without its value (``... --ray``) is told the values it takes.

    Click's parser says only "requires an argument"; an option with a
    metavar listing its forms (``local|auto|ADDRESS``) says which.
    """

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except Exception as exc:  # Click's BadOptionUsage, which Typer does not export
            name = getattr(exc, "option_name", None)
            option = next((p for p in self.params if name in getattr(p, "opts", ())), None)
            if option is None or not option.metavar:
                raise
            raise typer.BadParameter(f"needs a value: {option.metavar}", ctx=ctx, param=option) from None


def _export_one(
    make_source: Callable[[], Source],
    dataset_id: str,
    version_id: str,
    output: str,
    options: ExportOptions,
    backend: str,
    show_progress: bool,
) -> ExportResult:
    """Run one export, with a progress bar (items, bytes, rate, ETA) if asked."""
    if not show_progress:
        return run_export(make_source, dataset_id, version_id, open_sink(output), options, backend=backend)
    with progress_bar(err) as bar:
        task = bar.add_task(f"{options.format}", total=None, bytes=0)

        def on_plan(plan: ExportPlan) -> None:
            bar.update(task, total=plan.total or None, description=f"{plan.dataset.name} ({options.format})")

        def on_progress(items: int, size: int) -> None:
            bar.update(task, completed=items, bytes=size)

        return run_export(
            make_source,
            dataset_id,
            version_id,
            open_sink(output),
            options,
            backend=backend,
            progress=on_progress,
            on_plan=on_plan,
        )


def export(
    dataset_id: Annotated[str, typer.Argument(help="Dataset id.")],
    version_id: Annotated[str, typer.Argument(help="Version id.")],
    format: Annotated[FormatChoice, typer.Option("--format", "-f", help="Export format.")],
    store: StoreOption = None,
    blobs: BlobsOption = None,
    split: Annotated[Optional[str], typer.Option(help="Only this split (name or id).")] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="Archive path, or - for stdout.")] = "dataset.zip",
    backend: Annotated[BackendChoice, typer.Option(help="Async backend.")] = BackendChoice.trio,
    concurrency: Annotated[int, typer.Option(min=1, help="Content reads in flight (fetch window).")] = 16,
    compress: Annotated[CompressChoice, typer.Option(help="Entry compression.")] = CompressChoice.store,
    skip_missing: Annotated[bool, typer.Option(help="Skip items whose content is missing; list them at the end.")] = False,
    verify: Annotated[bool, typer.Option("--verify/--no-verify", help="Check every blob file's CRC-32 against the one recorded at ingest before copying it (--no-verify: only its size and identity).")] = True,
    progress: ProgressOption = None,
    from_url: Annotated[
        Optional[str],
        typer.Option("--from", help="Export from this SeeMe-compatible API (e.g. http://host:8000/api/v1/) instead of a store."),
    ] = None,
    apikey: ApiKeyOption = None,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    ray: Annotated[Optional[str], typer.Option("--ray", metavar="local|auto|ADDRESS", parser=_ray_address, help="Shard the export over Ray: local starts a cluster here, auto joins $RAY_ADDRESS's, else a cluster address.")] = None,
    shards: Annotated[Optional[int], typer.Option(min=1, help="Shards of a --ray export.", show_default="the cluster's CPUs")] = None,
    parts_dir: Annotated[Optional[str], typer.Option(metavar="DIR|URL", help="Folder for a --ray export's parts, reachable by every worker (s3://BUCKET/PREFIX with -o s3://...).", show_default="the output's folder")] = None,
) -> None:
    """Export one dataset version (or one split) as a ZIP archive.

    With --from, items and files are read over the API and the archive is
    built here: any format, from any back end that speaks the SeeMe API.
    """
    show = progress if progress is not None else (err.is_terminal and not (output == "-" and not sys.stdout.isatty()))
    options = ExportOptions(
        format=format.value,
        split=split,
        concurrency=concurrency,
        compression=compress.value,
        skip_missing=skip_missing,
        verify=verify,
    )
    if ray is None and (shards is not None or parts_dir is not None):
        err.print("[bold red]error:[/] --shards and --parts-dir belong to a --ray export", highlight=False)
        raise typer.Exit(2)
    with user_errors():
        if from_url and (store is not None or blobs is not None):
            raise InvalidInput("give --store/--blobs (export from a store) or --from (from an API), not both")
        make_source: Callable[[], Source]  # picklable (a partial): Ray ships it to its workers
        if from_url:
            report_retries()
            url, key = credentials(from_url, apikey)
            make_source = partial(http_source, url, key, timeout=timeout, max_connections=concurrency)
        else:
            # A --ray shard reads its pages itself: the shards already take one CPU each.
            make_source = partial(StoreSource, store_address(store, blobs), page_process=ray is None)
        if ray is not None:
            from engine.scaleout.command import export_on_ray

            summary = export_on_ray(
                make_source, dataset_id, version_id, output, options, ray_address=ray, shards=shards,
                parts_dir=str(parts_dir) if parts_dir else None, backend=backend.value,
            )
            err.print(summary, highlight=False)
            return
        result = _export_one(make_source, dataset_id, version_id, output, options, backend.value, show)
    if result.skipped_count:
        shown = ", ".join(result.skipped[:20])
        more = f" (and {result.skipped_count - 20} more)" if result.skipped_count > 20 else ""
        err.print(f"[yellow]skipped {result.skipped_count} item(s) with missing content:[/] {shown}{more}")
    if (note := left_out_note(result.format, result.image_labels_left_out, result.boxes)) is not None:
        err.print(f"[yellow]{note}[/]", highlight=False)
    if output != "-":
        err.print(
            f"wrote {output}: {result.items} items, {result.entries} entries, "
            f"{result.bytes:,} bytes in {result.seconds:.2f} s",
            highlight=False,
        )


def export_all(
    store: StoreOption = None,
    blobs: BlobsOption = None,
    out: Annotated[Path, typer.Option(help="Folder for the archives.")] = Path("out"),
    backend: Annotated[BackendChoice, typer.Option(help="Async backend.")] = BackendChoice.trio,
    json: JsonOption = False,
) -> None:
    """Export every version of every dataset in its natural format into OUT.

    Images and text: folders (yolo when the images have boxes); tabular:
    csv; named entities: spacy-ner.
    """
    address = store_address(store, blobs)
    results: list[ExportResult] = []
    with user_errors():
        with address.open(create=False) as opened:
            targets = [
                (ds, v, natural_format(ds.content_type, has_boxes=opened.has_boxes(v.id or "")))
                for ds in opened.list_datasets()
                for v in ds.versions
            ]
        out.mkdir(parents=True, exist_ok=True)
        for ds, v, fmt in targets:
            target = out / f"{ds.name or ds.id}-{v.id}-{fmt}.zip"
            options = ExportOptions(format=fmt)
            results.append(
                _export_one(lambda: StoreSource(address), ds.id or "", v.id or "", str(target), options, backend.value, False)
            )
    names = {ds.id: ds.name for ds, _, _ in targets}
    if json:
        write_json(results)
        return
    table = Table("dataset", "format", "items", "entries", "bytes", "seconds")
    for r in results:
        table.add_row(names[r.dataset_id], r.format, str(r.items), str(r.entries), f"{r.bytes:,}", f"{r.seconds:.3f}")
    out_console().print(table)
    out_console().print(f"archives in {out}/")
