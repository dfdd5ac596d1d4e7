"""A shard's work: run the ordinary pipeline over a range and write a part.

A part is a handful of files in the run folder, all named after the shard
and a random attempt tag (a retried attempt never meets a dead one's files):

* ``.zipdata``: the local headers and data of the shard's entries, exactly
  as the single-process writer would write them (only the central-directory
  records depend on where an entry lands, and those are kept apart);
* ``.cd``: the shard's central-directory records, offsets relative to the
  part's start;
* ``.spoolN``: the records the shard added to the format's N-th spool
  (joined by its separator; the spool's head and tail are the driver's);
* ``.claims``: the archive names the shard claimed (see :mod:`.claims`).

The ``.zipdata`` file is written under a temporary name and renamed when
complete; the :class:`PartManifest` returned (the task's result) is the
only record of which files belong to the finished part.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import msgspec

from engine.errors import InvalidInput
from engine.pipeline import ExportJob, ExportOptions, Progress, run_export
from engine.sinks import FileSink, Sink
from engine.sources import ExportPlan, Source
from engine.spool import RecordWriter
from engine.zipwriter import ZipWriter
from engine.scaleout.claims import RecordingClaims
from engine.scaleout.shards import Shard

__all__ = ["PartManifest", "PartSpec", "Piece", "run_part"]

#: Fault injection for tests: a folder in which a file ``crash-<shard>``
#: makes that shard's worker process exit mid-shard (once: the file is
#: removed first), and ``fail-<shard>`` makes it exit on every attempt.
FAULTS_ENV = "DSEXPORT_SCALEOUT_FAULTS"


class PartSpec(msgspec.Struct, kw_only=True):
    """Everything a worker needs to write one part (sent to the Ray task)."""

    shard: Shard
    dataset_id: str
    version_id: str
    options: ExportOptions
    #: The plan the driver resolved; a worker that resolves another fails.
    plan: ExportPlan
    run_dir: str
    backend: str = "trio"
    #: The driver's claims ledger to seed from (a re-run), or None.
    seed: str | None = None


class Piece(msgspec.Struct, frozen=True):
    """The records one shard added to one spool: a file and its length and CRC-32."""

    file: str
    records: int
    size: int
    crc: int


class PartManifest(msgspec.Struct, kw_only=True):
    shard: Shard
    data: str
    size: int
    entries: int
    central_directory: str
    claims: str
    pieces: list[Piece]
    items: int
    skipped: list[str]
    skipped_count: int
    #: Wall time of the shard's export inside its task.
    seconds: float = 0.0
    #: Box formats: the shard's image-level labels left out, and its boxes (None: not a box format).
    image_labels_left_out: int = 0
    boxes: int | None = None


class PartSpool(RecordWriter):
    """A spool that keeps only records and separators: the shard's piece of it."""

    def __init__(self, path: Path, separator: bytes) -> None:
        super().__init__(open(path, "wb"), separator)
        self.path = path
        self.kept = False

    def close(self) -> NoReturn:
        raise InvalidInput("a shard never finishes its format: the driver does")

    def keep(self) -> Piece:
        self._file.close()
        self.kept = True
        return Piece(self.path.name, self.records, self.size, self.crc)

    def discard(self) -> None:
        self._file.close()
        if not self.kept:
            self.path.unlink(missing_ok=True)


class _Part:
    """One attempt at a shard's part: the hooks its :class:`ExportJob` is built with, and its end.

    The claims are logged to ``.claims``, the spools keep only the shard's
    records (``.spoolN``), the zip writer's output is the ``.zipdata`` sink,
    and :meth:`end` saves the central-directory records instead of closing
    the archive: the driver writes the one central directory and the
    format's closing entries.
    """

    def __init__(self, spec: PartSpec, stem: Path) -> None:
        self.spec = spec
        self.stem = stem
        self.claims: RecordingClaims | None = None
        self.spools: list[PartSpool] = []
        self.writer: ZipWriter | None = None
        self.sink: Sink | None = None
        self.pieces: list[Piece] = []
        self._spools_at_start = 0

    def job(self, plan: ExportPlan, options: ExportOptions, sink: Sink, progress: Progress | None) -> ExportJob:
        """The shard's job (``run_export``'s ``job_factory``): the pipeline over its range, ending in a part."""
        if plan != self.spec.plan:
            raise InvalidInput(
                f"version {self.spec.version_id} changed while it was being exported; run the export again"
            )
        self.sink = sink
        job = ExportJob(
            plan,
            options,
            sink,
            self._progress,
            start=self.spec.shard.start,
            stop=self.spec.shard.stop,
            claims=self._new_claims,
            spool=self._new_spool,
            writer=self._new_writer,
            end=self.end,
        )
        # What the format claimed and spooled while it was set up is the same in every shard.
        assert self.claims is not None
        self.claims.start_recording()
        self._spools_at_start = len(self.spools)
        return job

    def _new_claims(self) -> RecordingClaims:
        self.claims = RecordingClaims(self._file(".claims"), self.spec.seed)
        return self.claims

    def _new_spool(self, *, head: bytes = b"", separator: bytes = b"", tail: bytes = b"") -> PartSpool:
        spool = PartSpool(self._file(f".spool{len(self.spools)}"), separator)
        self.spools.append(spool)
        return spool

    def _new_writer(self, sink: Sink, compress_type: int) -> ZipWriter:
        self.writer = ZipWriter(sink.write, compress_type=compress_type)
        return self.writer

    def _progress(self, items: int, written: int) -> None:
        """After each batch (and at the end): where the tests may kill this worker."""
        _maybe_fault(self.spec.shard.index)

    def _file(self, suffix: str) -> Path:
        return self.stem.with_name(self.stem.name + suffix)

    def end(self) -> int:
        """The job's end: save the part (records, claims, spool pieces); its size."""
        assert self.writer is not None and self.sink is not None and self.claims is not None
        if len(self.spools) != self._spools_at_start:
            raise InvalidInput("the format opened a spool while writing items; it cannot be sharded")
        self.writer.save_central_directory(self._file(".cd"))
        size = self.writer.bytes_written
        self.writer.discard()  # no footer: the driver writes the one central directory
        self.sink.commit(size)
        self.claims.save()
        self.pieces = [spool.keep() for spool in self.spools]
        return size


def run_part(
    spec: PartSpec, source_factory: Callable[[], Source], *, data_sink: Callable[[Path], Sink] | None = None
) -> PartManifest:
    """Write ``spec``'s part into its run folder; return what it holds.

    On failure nothing of this attempt is left but its temporary files,
    which the driver removes with the run folder. ``data_sink`` puts the
    ``.zipdata`` elsewhere (a bucket: ``engine.scaleout.bucket``).
    """
    if spec.run_dir.startswith("s3://") and data_sink is None:
        from engine.scaleout.bucket import run_part_in_bucket

        return run_part_in_bucket(spec, source_factory)
    stem = Path(spec.run_dir) / f"s{spec.shard.index:05d}-{secrets.token_hex(4)}"
    part = _Part(spec, stem)
    data = stem.with_name(stem.name + ".zipdata")
    result = run_export(
        source_factory,
        spec.dataset_id,
        spec.version_id,
        FileSink(data) if data_sink is None else data_sink(data),
        spec.options,
        backend=spec.backend,
        job_factory=part.job,
    )
    return PartManifest(
        shard=spec.shard,
        data=data.name,
        size=result.bytes,
        entries=result.entries,
        central_directory=stem.name + ".cd",
        claims=stem.name + ".claims",
        pieces=part.pieces,
        items=result.items,
        skipped=result.skipped,
        skipped_count=result.skipped_count,
        seconds=result.seconds,
        image_labels_left_out=result.image_labels_left_out,
        boxes=result.boxes,
    )


def _maybe_fault(shard: int) -> None:
    """Kill this worker process if the tests asked for it (see FAULTS_ENV)."""
    folder = os.environ.get(FAULTS_ENV)
    if not folder:
        return
    crash = Path(folder) / f"crash-{shard}"
    try:
        crash.unlink()
    except FileNotFoundError:
        if not (Path(folder) / f"fail-{shard}").exists():
            return
    os._exit(17)
