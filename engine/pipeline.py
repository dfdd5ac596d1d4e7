"""One export, end to end: source pages -> fetch window -> format -> zip -> sink.

Two tasks run under one task group:

* the **producer** reads pages from the source, cuts them into batches of at
  most ``BATCH_BYTES`` of content, fetches each batch's content with the
  fetch window, and sends the batch on a channel that holds one batch;
* the **writer** (this task) takes a batch and, in a worker thread, runs the
  format over it and writes the entries into the zip writer, whose output
  goes straight to the sink.

Batches, not items, cross the channel (a hand-off costs ~15 µs), and the
channel's single slot is the backpressure: a slow sink stalls the writer
thread, the channel fills, and the producer stops fetching. Memory is about
three batches plus fixed buffers, whatever the dataset's size.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import aclosing
from operator import attrgetter
from typing import Any, Protocol

import anyio
import anyio.to_thread
import msgspec
from anyio.abc import ObjectSendStream

from engine.errors import InvalidInput, MissingBlob, choices_hint
from engine.regions import READ_IN_MAX, check_files, file_region_of
from engine.sinks import Sink
from engine.sources import ExportPlan, Source
from engine.spool import FileSpool, SpillingClaims
from engine.turns import CpuTurns, in_turn
from engine.zipwriter import COMPRESSION, ZipWriter
from formats import FORMATS, get_format
from formats.base import Content, ExportContext, ExportItem, Format, NameClaims, Spool

__all__ = [
    "BACKENDS",
    "EntryWriter",
    "ExportJob",
    "ExportOptions",
    "ExportResult",
    "JobClaims",
    "JobFactory",
    "JobSpool",
    "JobSpoolFactory",
    "Progress",
    "check_options",
    "export",
    "run_export",
    "zip_writer",
]

BATCH_BYTES = 8 << 20
#: Bytes of blob files checked per batch (not held: the writer copies or reads them itself).
CHECKED_BATCH_BYTES = 64 << 20
BATCH_ITEMS = 2048

#: ``--backend`` values and how anyio runs them.
BACKENDS: dict[str, dict[str, Any]] = {
    "trio": {"backend": "trio"},
    "asyncio": {"backend": "asyncio", "backend_options": {"use_uvloop": True}},
}

Progress = Callable[[int, int], None]
"""Called with (item occurrences done, archive bytes written) after each batch."""


class ExportOptions(msgspec.Struct, kw_only=True):
    format: str
    split: str | None = None
    concurrency: int = 16
    compression: str = "store"
    skip_missing: bool = False
    #: Check each blob file's CRC-32 against the record before the kernel copies it
    #: (False: only its size and identity; see ``engine/regions.py``).
    verify: bool = True


class ExportResult(msgspec.Struct, kw_only=True):
    dataset_id: str
    version_id: str
    format: str
    items: int
    entries: int
    bytes: int
    seconds: float
    #: Ids of items skipped for missing content (first 1,000), and their count.
    skipped: list[str]
    skipped_count: int
    #: Box formats: image-level labels (no box) left out of the label files, and boxes written (None: not a box format).
    image_labels_left_out: int = 0
    boxes: int | None = None


def check_options(plan: ExportPlan, options: ExportOptions) -> type[Format]:
    """The format class for ``options``, or InvalidInput naming what does not fit."""
    format_cls = get_format(options.format)
    content_type = plan.dataset.content_type
    if content_type not in format_cls.content_types:
        fitting = [name for name, cls in FORMATS.items() if content_type in cls.content_types]
        raise InvalidInput(
            f"format {format_cls.name!r} cannot export a {content_type!r} dataset; "
            f"valid formats for it: {choices_hint(fitting)}"
        )
    if options.compression not in COMPRESSION:
        raise InvalidInput(
            f"unknown compression {options.compression!r}; valid: {choices_hint(COMPRESSION)}"
        )
    if options.concurrency < 1:
        raise InvalidInput(f"concurrency must be at least 1, got {options.concurrency}")
    return format_cls


class EntryWriter(Protocol):
    """Where a job's entries go: the zip writer, or a sizer that only counts the bytes (``engine/sizing.py``)."""

    #: Entries written so far.
    entries_written: int

    @property
    def bytes_written(self) -> int:
        """Archive bytes produced so far."""
        ...

    def write(self, path: str, data: Content) -> None: ...

    def close(self) -> int:
        """End the archive (central directory, end records); return its size."""
        ...

    def discard(self) -> None:
        """Abandon the archive, releasing what the writer holds."""
        ...


class JobClaims(NameClaims, Protocol):
    """The name claims a job lends its format, released by :meth:`ExportJob.cleanup`."""

    def close(self) -> None: ...


class JobSpool(Spool, Protocol):
    """A spool a job lends its format, thrown away by :meth:`ExportJob.cleanup` (a no-op once used)."""

    def discard(self) -> None: ...


class JobSpoolFactory(Protocol):
    def __call__(self, *, head: bytes = b"", separator: bytes = b"", tail: bytes = b"") -> JobSpool: ...


def zip_writer(sink: Sink, compress_type: int) -> ZipWriter:
    """The writer of a real export: a streaming zip into ``sink``, blob files copied by the kernel if it can."""
    return ZipWriter(sink.write, compress_type=compress_type, copy=getattr(sink, "copy_from", None))


class ExportJob:
    """The mutable state of one running export, owned by the pipeline.

    By default the job reads every occurrence and writes a complete archive
    into the sink. The keyword arguments change where it reads and how it
    ends, never what the format sees:

    * ``start``/``stop``: only occurrences ``start`` to ``stop - 1`` (None:
      to the end);
    * ``claims``, ``spool``: make the name claims and the spools lent to the
      format (a scale-out shard logs its claims and keeps its spools' records);
    * ``writer``: makes the entry writer from the sink and the compression
      (``engine/sizing.py`` passes a sizer that counts bytes and writes none);
    * ``end``: replaces :meth:`finish`'s closing (the format's trailer
      entries, the central directory, the sink's commit) and returns the
      byte count (a shard saves a part instead, ``engine/scaleout/parts.py``).
    """

    def __init__(
        self,
        plan: ExportPlan,
        options: ExportOptions,
        sink: Sink,
        progress: Progress | None = None,
        *,
        start: int = 0,
        stop: int | None = None,
        claims: Callable[[], JobClaims] = SpillingClaims,
        spool: JobSpoolFactory = FileSpool,
        writer: Callable[[Sink, int], EntryWriter] = zip_writer,
        end: Callable[[], int] | None = None,
    ):
        self.plan = plan
        self.options = options
        self.sink = sink
        self.progress = progress
        #: The occurrences this job reads: ``start`` to ``stop - 1`` (None: to the end).
        self.start = start
        self.stop = stop
        self.format_cls = check_options(plan, options)
        self._make_spool = spool
        self._end = end
        self.claims = claims()
        self.spools: list[JobSpool] = []
        try:
            ctx = ExportContext(
                dataset=plan.dataset,
                version=plan.version,
                labels=plan.labels,
                splits=plan.splits,
                names=self.claims,
                spool=self._new_spool,
                first=start,
            )
            self.format = self.format_cls(ctx)
            self.writer = writer(sink, COMPRESSION[options.compression])
        except BaseException:  # a format or writer that refuses: no job, so release what it was lent here
            self.cleanup()
            raise
        self.items_done = 0
        self.skipped: list[str] = []
        self.skipped_count = 0

    def _new_spool(self, *, head: bytes = b"", separator: bytes = b"", tail: bytes = b"") -> JobSpool:
        spool = self._make_spool(head=head, separator=separator, tail=tail)
        self.spools.append(spool)
        return spool

    def skip(self, missing: list[ExportItem]) -> None:
        """Record items without content, or fail on the first of them."""
        if not self.options.skip_missing:
            item = missing[0]
            label = f"{item.name!r} " if item.name else ""
            raise MissingBlob(
                f"item {item.id} {label}has missing, unreadable or corrupt content; "
                f"nothing was written (use --skip-missing to export without such items)",
                item_id=item.id,
            )
        self.skipped_count += len(missing)
        room = 1000 - len(self.skipped)
        self.skipped.extend(item.id for item in missing[:room])

    def write_batch(self, batch: list[ExportItem]) -> None:
        """Runs in a worker thread: format the batch and write its entries.

        A format that formats a batch at once (``entries_many``) and a writer
        that writes one (``write_many``) are called once per batch, not once
        per item and entry.
        """
        write_many = getattr(self.writer, "write_many", None)
        entries_many = getattr(self.format, "entries_many", None)
        if write_many is None:
            write = self.writer.write
            for item in batch:
                for path, data in self.format.entries(item):
                    write(path, data)
        elif entries_many is not None:
            write_many(entries_many(batch))
        else:
            entries = self.format.entries
            write_many(entry for item in batch for entry in entries(item))
        self.items_done += len(batch)
        if self.progress is not None:
            self.progress(self.items_done, self.writer.bytes_written)

    def finish(self) -> int:
        """Runs in a worker thread: the job's end (by default trailer entries, central directory, commit)."""
        size = self._close_archive() if self._end is None else self._end()
        if self.progress is not None:
            self.progress(self.items_done, size)
        return size

    def _close_archive(self) -> int:
        for entry in self.format.finish():
            self.writer.write(entry.path, entry.data)
        size = self.writer.close()
        self.sink.commit(size)
        return size

    def cleanup(self) -> None:
        self.claims.close()
        for spool in self.spools:
            spool.discard()


JobFactory = Callable[[ExportPlan, ExportOptions, Sink, Progress | None], ExportJob]
"""Makes the job of an export once its plan is known (:class:`ExportJob` by default)."""


async def export(
    source: Source,
    dataset_id: str,
    version_id: str,
    sink: Sink,
    options: ExportOptions,
    *,
    progress: Progress | None = None,
    on_plan: Callable[[ExportPlan], None] | None = None,
    job_factory: JobFactory = ExportJob,
    cpu: CpuTurns | None = None,
) -> ExportResult:
    """Export one version (or one split of it) into ``sink``.

    ``job_factory`` makes the job that holds the export's state; the default
    writes a whole archive (see :class:`ExportJob` for the other use).
    ``cpu``: turns shared by the concurrent exports of a process (see :class:`CpuTurns`).

    On success the sink is committed. On any error or cancellation the sink
    is aborted (a file sink leaves nothing at its path) and the error is
    raised unwrapped from the task group, so callers see e.g. ``NotFound``.
    """
    started = time.perf_counter()
    try:
        plan = await source.plan(dataset_id, version_id, options.split)
        job = job_factory(plan, options, sink, progress)
    except BaseException:
        sink.abort()
        raise
    if on_plan is not None:
        on_plan(plan)
    try:
        try:
            size = await _run(source, job, cpu)
        except BaseExceptionGroup as group:
            raise _single(group) from None
    except BaseException:
        job.writer.discard()
        sink.abort()
        raise
    finally:
        job.cleanup()
    return ExportResult(
        dataset_id=dataset_id,
        version_id=version_id,
        format=job.format_cls.name,
        items=job.items_done,
        entries=job.writer.entries_written,
        bytes=size,
        seconds=time.perf_counter() - started,
        skipped=job.skipped,
        skipped_count=job.skipped_count,
        image_labels_left_out=getattr(job.format, "image_labels_left_out", 0),
        boxes=getattr(job.format, "boxes_written", None),
    )


async def _run(source: Source, job: ExportJob, cpu: CpuTurns | None) -> int:
    send, receive = anyio.create_memory_object_stream[list[ExportItem]](1)
    async with anyio.create_task_group() as tg:
        tg.start_soon(_produce, source, job, send)
        async with receive:
            async for batch in receive:
                await anyio.to_thread.run_sync(in_turn, cpu, job.write_batch, batch)
        return await anyio.to_thread.run_sync(in_turn, cpu, job.finish)


async def _fetch(source: Source, job: ExportJob, batch: list[ExportItem]) -> list[ExportItem]:
    """Make a batch's content ready; the items whose content is missing.

    Blob files the writer takes from their record (:func:`_checked_here`)
    are only checked here (``engine/regions.py``), not read into memory;
    the source fetches the rest.
    """
    window = job.options.concurrency
    in_files = [item for item in batch if _checked_here(job, item.content)]
    if not in_files:
        return await source.fetch(batch, window)
    missing = await check_files(in_files, window, verify=job.options.verify)
    if len(in_files) < len(batch):
        checked = {id(item) for item in in_files}
        missing += await source.fetch([item for item in batch if id(item) not in checked], window)
    return missing


def _checked_here(job: ExportJob, content: object) -> bool:
    """Whether ``content`` is a blob file the writer takes from its record: copied by the kernel, or read in."""
    if content is None or type(content) is bytes:  # first: small items pass here by the million
        return False
    writer = job.writer
    if not getattr(writer, "takes_checked_files", False) or file_region_of(content) is None:
        return False
    return writer.copies_files or content.size <= READ_IN_MAX  # type: ignore[attr-defined,union-attr]


async def _produce(source: Source, job: ExportJob, send: ObjectSendStream[list[ExportItem]]) -> None:
    """Pages -> byte-bounded batches -> fetched -> channel."""
    with_content = job.format_cls.needs_content(job.plan.dataset)
    unsized = job.options.skip_missing and getattr(job.format_cls, "needs_sizes", False)
    pages = source.pages(job.plan, with_content=with_content, start=job.start, stop=job.stop)
    async with send, aclosing(pages):
        async for page in pages:
            for batch in _batches(page, job):
                if with_content:
                    missing = await _fetch(source, job, batch)
                    if unsized:  # --skip-missing and a format of pixel boxes: an image of unknown size is skipped too
                        known = {id(item) for item in missing}
                        missing = [*missing, *(i for i in batch if i.split and i.width is None and id(i) not in known)]
                    if missing:
                        job.skip(missing)
                        gone = {id(item) for item in missing}
                        batch = [item for item in batch if id(item) not in gone]
                try:
                    await send.send(batch)
                except anyio.BrokenResourceError:
                    return  # the writer has stopped; its own exception says why


_content_of = attrgetter("content")
_IN_HAND = frozenset({bytes, type(None)})


def _batches(page: list[ExportItem], job: ExportJob | None = None) -> list[list[ExportItem]]:
    """Cut a page so no batch holds more than BATCH_BYTES of content.

    Blob files the writer takes from their record are never held in a
    batch; they count against CHECKED_BATCH_BYTES instead, so that checking
    the next batch's files overlaps with copying this one's (big blobs) while
    a page of images is still one batch (fewer hand-offs).
    """
    if len(page) <= BATCH_ITEMS:  # a page of small items in hand (or none) is one batch: no Python per item
        contents = list(map(_content_of, page))
        if set(map(type, contents)) <= _IN_HAND and sum(map(len, filter(None, contents))) <= BATCH_BYTES:
            return [list(page)] if page else []
    batches: list[list[ExportItem]] = []
    current: list[ExportItem] = []
    held = checked = 0
    for item in page:
        content = item.content
        size = 0 if content is None else len(content) if isinstance(content, bytes) else content.size
        in_file = job is not None and _checked_here(job, content)
        if current and (
            (held + size > BATCH_BYTES if not in_file else checked + size > CHECKED_BATCH_BYTES)
            or len(current) >= BATCH_ITEMS
        ):
            batches.append(current)
            current, held, checked = [], 0, 0
        current.append(item)
        if in_file:
            checked += size
        else:
            held += size
    if current:
        batches.append(current)
    return batches


def _single(group: BaseExceptionGroup) -> BaseException:
    """The one real error inside a task group's exception group."""
    leaves = list(_leaves(group))
    for leaf in leaves:
        if not isinstance(leaf, anyio.get_cancelled_exc_class()):
            return leaf
    return leaves[0] if leaves else group


def _leaves(exc: BaseException):
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _leaves(inner)
    else:
        yield exc


def run_export(
    source_factory: Callable[[], Source],
    dataset_id: str,
    version_id: str,
    sink: Sink,
    options: ExportOptions,
    *,
    backend: str = "trio",
    progress: Progress | None = None,
    on_plan: Callable[[ExportPlan], None] | None = None,
    job_factory: JobFactory = ExportJob,
) -> ExportResult:
    """Run :func:`export` to completion on ``backend`` (``trio`` or ``asyncio``)."""
    if backend not in BACKENDS:
        raise InvalidInput(f"unknown backend {backend!r}; valid: {choices_hint(BACKENDS)}")

    async def main() -> ExportResult:
        source = source_factory()
        try:
            return await export(
                source,
                dataset_id,
                version_id,
                sink,
                options,
                progress=progress,
                on_plan=on_plan,
                job_factory=job_factory,
            )
        finally:
            await source.aclose()

    try:
        return anyio.run(main, **BACKENDS[backend])
    except asyncio.CancelledError:
        # asyncio's runner turns Ctrl-C into cancelling the main task, and
        # re-raises KeyboardInterrupt only if that task's cancel count is back
        # to zero; otherwise CancelledError escapes. At the top of the run,
        # nothing but Ctrl-C cancels the main task, so say what happened.
        raise KeyboardInterrupt from None
