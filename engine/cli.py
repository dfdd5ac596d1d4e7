"""The ``dsexport`` command line (Typer, with Rich for tables and progress).

Every failure the product names (an unknown id, a bad format, a missing
blob, an unwritable output, a full disk) ends with its message on stderr
and exit status 2. Ctrl-C, SIGTERM and SIGHUP end alike, after the partial
output is removed, with 128 + the signal's number (130, 143, 129).
"""

from __future__ import annotations

import os
import re
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import msgspec
import typer
from typer.core import TyperCommand
from rich.console import Console
from rich.table import Table

from engine.client.api import DEFAULT_TIMEOUT, credentials
from engine.client.source import http_source
from engine.errors import DsexportError, InvalidInput, NotFound
from engine.pipeline import ExportOptions, ExportResult, run_export
from engine.progress_bar import progress_bar
from engine.sinks import open_sink
from engine.sources import ExportPlan, Source, StoreSource
from engine.store import Store
from engine.tables import IdRow, ids_table
from formats import natural_format

if TYPE_CHECKING:
    from engine.demo import DemoDataset

app = typer.Typer(
    name="dsexport",
    help="Stream labelled datasets into ZIP archives (FOLDERS, YOLO, CSV, SPACY_NER) in bounded memory.",
    no_args_is_help=True,
    add_completion=False,
)
err = Console(stderr=True, soft_wrap=True)  # messages are never wrapped: they may be parsed


def _out() -> Console:
    """Standard output; wide when piped, so ids in tables are never cut."""
    return Console() if sys.stdout.isatty() else Console(width=200)


class FormatChoice(str, Enum):
    folders = "folders"
    yolo = "yolo"
    csv = "csv"
    spacy_ner = "spacy-ner"


class BackendChoice(str, Enum):
    trio = "trio"
    asyncio = "asyncio"


class CompressChoice(str, Enum):
    store = "store"
    deflate = "deflate"


def _default_store() -> Path:
    return Path(os.environ.get("DSEXPORT_STORE", "dsexport-data"))


StoreOption = Annotated[
    Path,
    typer.Option("--store", help="Store folder [default: $DSEXPORT_STORE or ./dsexport-data]", show_default=False),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
ApiKeyOption = Annotated[
    Optional[str], typer.Option("--apikey", help="API key [default: $DSEXPORT_API_KEY].", show_default=False)
]
TimeoutOption = Annotated[
    float, typer.Option(min=0.1, help="Seconds to wait for a connection or for the server's next bytes.")
]


_RAY_CLUSTER = re.compile(r"(ray://)?\S+:\d+")  # HOST:PORT of a head, or ray://HOST:PORT for Ray Client


def _ray_address(value: str) -> str:
    """``--ray``'s value. An option in its place means the value was left out: say so, not "no cluster at -o"."""
    if value in ("local", "auto") or _RAY_CLUSTER.fullmatch(value):
        return value
    if value.startswith("-"):
        raise typer.BadParameter(f"needs local, auto or HOST:PORT, not {value}")
    raise typer.BadParameter(f"{value!r} is not local, auto or [ray://]HOST:PORT")


class _NamesMissingValues(TyperCommand):
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


def _report_retries() -> None:
    """Say on stderr when a request to a server is retried (stamina logs a bare event name otherwise)."""
    from stamina.instrumentation import RetryDetails, set_on_retry_hooks

    def hook(details: RetryDetails) -> None:
        cause = str(details.caused_by) or type(details.caused_by).__name__
        err.print(f"[yellow]retry {details.retry_num} in {details.wait_for:.1f} s:[/] {cause}", highlight=False)

    set_on_retry_hooks([hook])


#: The signal that stopped the command: SIGINT, or SIGTERM/SIGHUP forwarded as it.
_stopped_by = signal.SIGINT


def _stop_like_ctrl_c(signum: int, frame: object) -> None:
    """SIGTERM and SIGHUP stop a command the way Ctrl-C does.

    The running event loop's own SIGINT handler is called (trio delivers the
    interrupt where it is safe; asyncio cancels its main task), so the
    export unwinds and its sink removes the temporary file; outside a loop
    KeyboardInterrupt is raised here. The exit status remembers which signal.
    """
    global _stopped_by
    _stopped_by = signal.Signals(signum)
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)
    else:  # SIGINT ignored (a background job): still stop
        raise KeyboardInterrupt


@contextmanager
def _user_errors(interrupted: str = "partial output removed") -> Iterator[None]:
    """Turn the product's errors into a message and exit 2; a stopping signal into 128 + its number."""
    try:
        yield
    except DsexportError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        err.print(f"interrupted by {_stopped_by.name}; {interrupted}", highlight=False)
        raise typer.Exit(128 + _stopped_by) from None


def _open_store(store: Path | None, *, create: bool) -> Store:
    return Store.open(store or _default_store(), create=create)


@app.command()
def demo(
    store: StoreOption = None,  # type: ignore[assignment]
    items: Annotated[int, typer.Option(min=1, help="Items per dataset.")] = 40,
    seed: Annotated[int, typer.Option(help="Seed of the generated content.")] = 0,
    force: Annotated[bool, typer.Option("--force", help="Add another set to a store that has the demo datasets.")] = False,
    json: JsonOption = False,
) -> None:
    """Create one demo dataset of each kind (and the store, if absent) and print their ids."""
    with _user_errors(), _open_store(store, create=True) as opened:
        made = _make_demo(opened, items=items, seed=seed, force=force, show_progress=err.is_terminal)
    if json:
        sys.stdout.buffer.write(msgspec.json.encode(made) + b"\n")
        return
    out = _out()
    rows = [IdRow(d.name, d.dataset_id, d.version_id, before_ids=[d.content_type, d.format]) for d in made]
    out.print(ids_table(out, ["content", "format"], [], rows))


def _make_demo(store: Store, *, items: int, seed: int, force: bool, show_progress: bool) -> list[DemoDataset]:
    """The demo datasets, with a bar (items made, rate, ETA) if asked: a large --items takes minutes."""
    from engine.demo import create_demo, demo_names

    if not show_progress:
        return create_demo(store, items=items, seed=seed, force=force)
    with progress_bar(err, with_bytes=False) as bar:
        task = bar.add_task("demo", total=items * len(demo_names()))

        def on_progress(name: str, made: int) -> None:
            bar.update(task, completed=made, description=f"demo {name}")

        return create_demo(store, items=items, seed=seed, force=force, progress=on_progress)


@app.command()
def init(store: StoreOption = None) -> None:  # type: ignore[assignment]
    """Create an empty store (for `serve`, `user create` and `import`); `demo` creates one with data."""
    root = store or _default_store()
    with _user_errors():
        try:
            Store.open(root, create=False).close()
        except NotFound:
            Store.open(root, create=True).close()
            err.print(f"created an empty store at {root}", highlight=False)
        else:
            err.print(f"a store exists at {root} already; left as it is", highlight=False)


@app.command()
def datasets(store: StoreOption = None, json: JsonOption = False) -> None:  # type: ignore[assignment]
    """List datasets, their versions, splits and item counts."""
    with _user_errors(), _open_store(store, create=False) as opened:
        rows = [
            {
                "dataset_id": ds.id,
                "name": ds.name,
                "content_type": ds.content_type,
                "version_id": v.id,
                "version": v.name,
                "splits": {s.name: opened.count_items(v.id or "", s.id) for s in opened.splits(v.id or "")},
                "items": opened.count_items(v.id or ""),
            }
            for ds in opened.list_datasets()
            for v in ds.versions
        ]
    if json:
        sys.stdout.buffer.write(msgspec.json.encode(rows) + b"\n")
        return
    out = _out()
    table_rows = [
        IdRow(
            r["name"], r["dataset_id"], r["version_id"], before_ids=[r["content_type"]],
            after_ids=[", ".join(f"{k}: {n}" for k, n in r["splits"].items()), str(r["items"])],
        )
        for r in rows
    ]
    out.print(ids_table(out, ["content"], ["splits", "items"], table_rows))


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


@app.command(cls=_NamesMissingValues)
def export(
    dataset_id: Annotated[str, typer.Argument(help="Dataset id.")],
    version_id: Annotated[str, typer.Argument(help="Version id.")],
    format: Annotated[FormatChoice, typer.Option("--format", "-f", help="Export format.")],
    store: StoreOption = None,  # type: ignore[assignment]
    split: Annotated[Optional[str], typer.Option(help="Only this split (name or id).")] = None,
    output: Annotated[str, typer.Option("--output", "-o", help="Archive path, or - for stdout.")] = "dataset.zip",
    backend: Annotated[BackendChoice, typer.Option(help="Async backend.")] = BackendChoice.trio,
    concurrency: Annotated[int, typer.Option(min=1, help="Content reads in flight (fetch window).")] = 16,
    compress: Annotated[CompressChoice, typer.Option(help="Entry compression.")] = CompressChoice.store,
    skip_missing: Annotated[bool, typer.Option(help="Skip items whose content is missing; list them at the end.")] = False,
    progress: Annotated[Optional[bool], typer.Option("--progress/--no-progress", help="Progress bar [default: on a terminal].")] = None,
    from_url: Annotated[
        Optional[str],
        typer.Option("--from", help="Export from this SeeMe-compatible API (e.g. http://host:8000/api/v1/) instead of a store."),
    ] = None,
    apikey: ApiKeyOption = None,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    ray: Annotated[Optional[str], typer.Option("--ray", metavar="local|auto|ADDRESS", parser=_ray_address, help="Shard the export over Ray: local starts a cluster here, auto joins $RAY_ADDRESS's, else a cluster address.")] = None,
    shards: Annotated[Optional[int], typer.Option(min=1, help="Shards of a --ray export [default: the cluster's CPUs].")] = None,
    parts_dir: Annotated[Optional[Path], typer.Option(help="Folder for a --ray export's parts, reachable by every worker [default: the output's folder].")] = None,
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
    )
    if ray is None and (shards is not None or parts_dir is not None):
        err.print("[bold red]error:[/] --shards and --parts-dir belong to a --ray export", highlight=False)
        raise typer.Exit(2)
    with _user_errors():
        if from_url and store is not None:
            raise InvalidInput("give --store (export from a store) or --from (from an API), not both")
        make_source: Callable[[], Source]  # picklable (a partial): Ray ships it to its workers
        if from_url:
            _report_retries()
            url, key = credentials(from_url, apikey)
            make_source = partial(http_source, url, key, timeout=timeout, max_connections=concurrency)
        else:
            make_source = partial(StoreSource, store or _default_store())
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
    if output != "-":
        err.print(
            f"wrote {output}: {result.items} items, {result.entries} entries, "
            f"{result.bytes:,} bytes in {result.seconds:.2f} s",
            highlight=False,
        )


@app.command()
def download(
    dataset_id: Annotated[str, typer.Argument(help="Dataset id.")],
    version_id: Annotated[str, typer.Argument(help="Version id.")],
    backend_url: Annotated[
        Optional[str],
        typer.Option("--backend", help="API base, e.g. http://host:8000/api/v1/ [default: $DSEXPORT_BACKEND].", show_default=False),
    ] = None,
    apikey: ApiKeyOption = None,
    split: Annotated[str, typer.Option(help="Only this split (id).")] = "",
    format: Annotated[
        Optional[FormatChoice], typer.Option("--format", "-f", help="Export format [default: the server's, by content type].", show_default=False)
    ] = None,
    extract_to: Annotated[Path, typer.Option("--extract-to", help="Folder to extract into.")] = Path("data"),
    download_file: Annotated[Path, typer.Option(help="Where the archive is downloaded (and resumed from).")] = Path("dataset.zip"),
    keep_zip: Annotated[bool, typer.Option("--keep-zip", help="Keep the archive after extracting it.")] = False,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    progress: Annotated[Optional[bool], typer.Option("--progress/--no-progress", help="Progress bar [default: on a terminal].")] = None,
    json: JsonOption = False,
) -> None:
    """Download a version's export from a server, verify it and extract it (resumes an interrupted download)."""
    from engine.client import Client

    show = progress if progress is not None else err.is_terminal
    _report_retries()
    with _user_errors("run the same command again to resume the download"):
        url, key = credentials(backend_url, apikey)
        result = Client(url, key, timeout=timeout).download_dataset(
            dataset_id,
            version_id,
            split_id=split,
            extract_to_dir=str(extract_to),
            download_file=str(download_file),
            remove_download_file=not keep_zip,
            export_format=format.value if format else "",
            progress=show,
        )
    if json:
        sys.stdout.buffer.write(msgspec.json.encode(result) + b"\n")
        return
    resumed = f", resumed from byte {result.resumed_from:,}" if result.resumed_from else ""
    kept = f"; archive kept at {result.archive}" if result.archive else ""
    err.print(
        f"extracted {result.entries} entries ({result.format or 'server default'}, {result.bytes:,} bytes"
        f"{resumed}) into {result.folder}{kept}",
        highlight=False,
    )


@app.command("export-all")
def export_all(
    store: StoreOption = None,  # type: ignore[assignment]
    out: Annotated[Path, typer.Option(help="Folder for the archives.")] = Path("out"),
    backend: Annotated[BackendChoice, typer.Option(help="Async backend.")] = BackendChoice.trio,
    json: JsonOption = False,
) -> None:
    """Export every version of every dataset in its natural format into OUT.

    Images and text: folders (yolo when the images have boxes); tabular:
    csv; named entities: spacy-ner.
    """
    store_path = store or _default_store()
    results: list[ExportResult] = []
    with _user_errors():
        with _open_store(store_path, create=False) as opened:
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
                _export_one(lambda: StoreSource(store_path), ds.id or "", v.id or "", str(target), options, backend.value, False)
            )
    names = {ds.id: ds.name for ds, _, _ in targets}
    if json:
        sys.stdout.buffer.write(msgspec.json.encode(results) + b"\n")
        return
    table = Table("dataset", "format", "items", "entries", "bytes", "seconds")
    for r in results:
        table.add_row(names[r.dataset_id], r.format, str(r.items), str(r.entries), f"{r.bytes:,}", f"{r.seconds:.3f}")
    _out().print(table)
    _out().print(f"archives in {out}/")


def main() -> None:
    """Console-script entry point; SIGTERM and SIGHUP stop it as Ctrl-C does (unless ignored, as under nohup)."""
    for stopping in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(stopping) == signal.SIG_DFL:
            signal.signal(stopping, _stop_like_ctrl_c)
    app()


import engine.server.cli  # noqa: E402,F401  (serve, user create, import)
