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

import msgspec

from engine.errors import InvalidInput
from engine.pipeline import ExportJob, ExportOptions, Progress, run_export
from engine.sinks import FileSink, Sink
from engine.sources import ExportPlan, Source
from engine.spool import RecordWriter
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


class PartSpool(RecordWriter):
    """A spool that keeps only records and separators: the shard's piece of it."""

    def __init__(self, path: Path, separator: bytes) -> None:
        super().__init__(open(path, "wb"), separator)
        self.path = path
        self.kept = False

    def close(self) -> None:
        raise InvalidInput("a shard never finishes its format: the driver does")

    def keep(self) -> Piece:
        self._file.close()
        self.kept = True
        return Piece(self.path.name, self.records, self.size, self.crc)

    def discard(self) -> None:
        self._file.close()
        if not self.kept:
            self.path.unlink(missing_ok=True)


class _PartJob(ExportJob):
    """An export job over one shard's range that ends in a part, not an archive."""

    def __init__(self, spec: PartSpec, stem: Path, *args: object) -> None:
        self.spec = spec
        self.stem = stem
        self.start, self.stop = spec.shard.start, spec.shard.stop
        super().__init__(*args)  # type: ignore[arg-type]
        if self.plan != spec.plan:
            raise InvalidInput(
                f"version {spec.version_id} changed while it was being exported; run the export again"
            )
        self.claims.start_recording()
        self._spools_at_start = len(self.spools)

    def new_claims(self) -> RecordingClaims:  # type: ignore[override]
        return RecordingClaims(self._file(".claims"), self.spec.seed)

    def _new_spool(self, *, head: bytes = b"", separator: bytes = b"", tail: bytes = b"") -> PartSpool:  # type: ignore[override]
        spool = PartSpool(self._file(f".spool{len(self.spools)}"), separator)
        self.spools.append(spool)  # type: ignore[arg-type]
        return spool

    def _file(self, suffix: str) -> Path:
        return self.stem.with_name(self.stem.name + suffix)

    def write_batch(self, batch: list) -> None:
        super().write_batch(batch)
        _maybe_fault(self.spec.shard.index)

    def finish(self) -> int:
        if len(self.spools) != self._spools_at_start:
            raise InvalidInput("the format opened a spool while writing items; it cannot be sharded")
        self.writer.save_central_directory(self._file(".cd"))
        size = self.writer.bytes_written
        self.writer.discard()  # no footer: the driver writes the one central directory
        self.sink.commit(size)
        self.claims.save()
        self.pieces = [spool.keep() for spool in self.spools]  # type: ignore[attr-defined]
        return size


def run_part(spec: PartSpec, source_factory: Callable[[], Source]) -> PartManifest:
    """Write ``spec``'s part into its run folder; return what it holds.

    On failure nothing of this attempt is left but its temporary files,
    which the driver removes with the run folder.
    """
    stem = Path(spec.run_dir) / f"s{spec.shard.index:05d}-{secrets.token_hex(4)}"
    jobs: list[_PartJob] = []

    def job_factory(plan: ExportPlan, options: ExportOptions, sink: Sink, progress: Progress | None) -> ExportJob:
        jobs.append(_PartJob(spec, stem, plan, options, sink, progress))
        return jobs[-1]

    data = stem.with_name(stem.name + ".zipdata")
    result = run_export(
        source_factory,
        spec.dataset_id,
        spec.version_id,
        FileSink(data),
        spec.options,
        backend=spec.backend,
        job_factory=job_factory,
    )
    job = jobs[0]
    return PartManifest(
        shard=spec.shard,
        data=data.name,
        size=result.bytes,
        entries=result.entries,
        central_directory=stem.name + ".cd",
        claims=stem.name + ".claims",
        pieces=job.pieces,
        items=result.items,
        skipped=result.skipped,
        skipped_count=result.skipped_count,
        seconds=result.seconds,
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
