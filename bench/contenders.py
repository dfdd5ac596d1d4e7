"""The contenders: each one export (or floor) of a dataset, run as its own process.

``python -m bench.contenders NAME DATASET_ROOT OUT_DIR`` runs one Python
contender and prints one JSON line: ``{"archive_bytes", "entries",
"inner_seconds"}`` (``inner_seconds`` is the work alone, without interpreter
start-up; the parent measures the wall time around the whole process).
:func:`command` gives the argv and working folder of any contender,
including the non-Python ones (``zip-cli``, ``cat``).

Contenders:

* ``dsexport``: ours, ``run_export`` with ``StoreSource`` into a
  ``FileSink`` in ``OUT_DIR`` (same disk), default options (trio);
  ``dsexport-asyncio`` the same on asyncio + uvloop; ``dsexport-stdout``
  the same into a ``StdoutSink`` on a pipe that ``cat > /dev/null`` drains
  (what ``-o - | ...`` does); ``dsexport-devnull`` the same into a sink
  that discards bytes (the engine without the disk).
* ``dsexport-ultralytics``: ours in the Ultralytics format (the ``boxes``
  dataset's own format is COCO).
* ``datumaro-coco``: Datumaro's COCO exporter over the same images and
  boxes (``bench/datumaro_contender.py``; it writes a folder, not an archive).
* ``zipstream-plain``: zipstream-ng used plainly: pages from
  ``Store.iter_pages``, one ``ZipStream.add`` (or ``add_path`` for a blob
  file) per entry, drained after each, into a buffered file; its central
  directory is its own list of ZipInfo in memory.
* ``zipfile-memory``: ``zipfile.ZipFile`` (ZIP_STORED) building the whole
  archive in a ``BytesIO``, then written to a file: a server that answers
  with one body.
* ``materialise``: the export's folder tree written as files (the first step
  of doing it by hand); ``zip-cli`` is the second: ``zip -0 -r -q`` of the
  cached tree, then ``sync`` of the archive.
* ``cat``: the floor of reading the files: ``find | xargs cat > /dev/null``
  over the cached tree, or ``xargs cat`` over the store's blob files when
  the content already lives in files (yolo, blobs). No ZIP writer can meet
  it (it writes nothing): it is shown, never a target.
* ``cat-file``: the floor of writing: the same ``cat`` into one file in
  ``OUT_DIR``, then ``sync`` of that file: the bytes read, written and on
  the disk, as every archive writer's are.
* ``crc32``: the floor of reading the store: pages from ``iter_pages`` and
  ``zlib.crc32`` over every item's bytes (or row/document text).

Every contender that writes an archive fsyncs it before it ends, as our
``FileSink`` does on commit; ``zip`` and ``materialise`` do not (a small
advantage to them: their bytes may still be in the page cache at exit).
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

from bench.datasets import Dataset
from bench.s3 import CONTENDERS as S3_CONTENDERS
from bench.scaleout import CONTENDERS as SCALEOUT_CONTENDERS

__all__ = ["PYTHON_CONTENDERS", "SHELL_CONTENDERS", "command"]

ARCHIVE = "archive.zip"
#: The contenders that are shell commands, not Python (:func:`command`).
SHELL_CONTENDERS = ("zip-cli", "cat", "cat-file")
#: The repository root: Python contenders run here so ``-m bench.contenders`` resolves.
REPO = Path(__file__).resolve().parent.parent


def _datumaro_python() -> str:
    """The interpreter ``make`` builds for Datumaro (``.venv-readers/datumaro``), else this one."""
    built = REPO / ".venv-readers" / "datumaro" / "bin" / "python"
    return str(built) if built.exists() else sys.executable


def command(name: str, dataset: Dataset, out: Path) -> tuple[list[str], Path]:
    """The argv and working folder that run contender ``name`` into ``out``."""
    root = Path(dataset.root)
    if name in PYTHON_CONTENDERS:
        return [sys.executable, "-m", "bench.contenders", name, str(root), str(out)], REPO
    if name == "datumaro-coco":  # Datumaro and the standard library only, possibly on an interpreter of its own
        python = os.environ.get("DSEXPORT_BENCH_DATUMARO_PYTHON") or _datumaro_python()
        return [python, "-m", "bench.datumaro_contender", str(root), str(out)], REPO
    if name == "zip-cli":  # $0 is the archive
        return ["sh", "-c", 'zip -0 -r -q "$0" . && sync "$0"', str(out / ARCHIVE)], dataset.tree
    if name in ("cat", "cat-file"):
        into = "/dev/null" if name == "cat" else '"$0" && sync "$0"'
        if dataset.blob_files:
            listing = root / "blobs.list"
            if not listing.is_file():
                listing.write_bytes(b"".join(f.encode() + b"\0" for f in dataset.blob_files))
            return ["sh", "-c", f"xargs -0 -a blobs.list cat > {into}", str(out / ARCHIVE)], root
        return ["sh", "-c", f"find . -type f -print0 | xargs -0 cat > {into}", str(out / ARCHIVE)], dataset.tree
    raise ValueError(f"unknown contender {name!r}; known: {', '.join([*PYTHON_CONTENDERS, 'datumaro-coco', *SHELL_CONTENDERS])}")


# -- ours --------------------------------------------------------------------------


class _NullSink:
    """A sink that drops every byte (the engine's speed without the disk)."""

    def write(self, data: bytes) -> None:
        pass

    def commit(self, size: int | None = None) -> None:
        pass

    def abort(self) -> None:
        pass


def _dsexport(
    dataset: Dataset, out: Path, *, backend: str = "trio", null: bool = False, fmt: str | None = None
) -> dict:
    from engine.pipeline import ExportOptions, run_export
    from engine.sinks import FileSink
    from engine.sources import StoreSource

    sink = _NullSink() if null else FileSink(out / ARCHIVE)
    source = StoreSource(dataset.store)
    result = run_export(
        lambda: source,
        dataset.dataset_id,
        dataset.version_id,
        sink,
        ExportOptions(format=fmt or dataset.format),
        backend=backend,
    )
    return _outcome(result, source)


def _outcome(result, source) -> dict:
    """What an export of ours reports to the harness: its sizes, and its page reader's peak RSS if one ran."""
    return {"archive_bytes": result.bytes, "entries": result.entries,
            "page_reader_peak_rss_kib": source.page_reader_peak_rss_kib}


def _dsexport_stdout(dataset: Dataset, out: Path) -> dict:
    """Ours into standard output as a pipe (``-o - | cat > /dev/null``): the sendfile path."""
    import subprocess

    from engine.pipeline import ExportOptions, run_export
    from engine.sinks import StdoutSink
    from engine.sources import StoreSource

    reader = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    source = StoreSource(dataset.store)
    try:
        assert reader.stdin is not None
        result = run_export(
            lambda: source,
            dataset.dataset_id,
            dataset.version_id,
            StdoutSink(reader.stdin),
            ExportOptions(format=dataset.format),
        )
        reader.stdin.close()
    finally:
        reader.wait()
    return _outcome(result, source)


# -- baselines ---------------------------------------------------------------------


def _zipstream_plain(dataset: Dataset, out: Path) -> dict:
    from zipstream import ZipStream

    from bench.layouts import entries
    from engine.store import Store

    zs = ZipStream()  # ZIP_STORED, its own central directory in memory
    count = 0
    with Store.open(dataset.store, create=False) as store, open(out / ARCHIVE, "wb") as f:
        for arcname, content in entries(dataset, store):
            if isinstance(content, Path):
                zs.add_path(str(content), arcname)
            else:
                zs.add(content, arcname)
            f.writelines(zs.all_files())
            count += 1
        f.writelines(zs.footer())
        f.flush()
        os.fsync(f.fileno())
        size = f.tell()
    return {"archive_bytes": size, "entries": count}


def _zipfile_memory(dataset: Dataset, out: Path) -> dict:
    from bench.layouts import entries, write_content
    from engine.store import Store

    buffer = io.BytesIO()
    count = 0
    with Store.open(dataset.store, create=False) as store, zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
        for arcname, content in entries(dataset, store):
            if isinstance(content, bytes):
                zf.writestr(arcname, content)
            elif isinstance(content, Path):
                zf.write(content, arcname)
            else:
                with zf.open(arcname, "w", force_zip64=True) as entry:
                    write_content(content, entry.write)
            count += 1
    with open(out / ARCHIVE, "wb") as f:
        f.write(buffer.getbuffer())
        os.fsync(f.fileno())
    return {"archive_bytes": buffer.tell(), "entries": count}


def _materialise(dataset: Dataset, out: Path) -> dict:
    from bench.layouts import materialise

    written = materialise(dataset, out / "tree")
    return {"archive_bytes": written, "entries": dataset.items}


def _crc32(dataset: Dataset, out: Path) -> dict:
    from engine.store import PageContent, Store
    from formats import FORMATS

    crc, size = 0, 0
    with Store.open(dataset.store, create=False) as store:
        needs_blobs = FORMATS[dataset.format].needs_content(store.get_dataset(dataset.dataset_id))
        for page in store.iter_pages(
            dataset.version_id, content=PageContent.BYTES if needs_blobs else PageContent.NONE, include_unsplit=True
        ):
            for item in page:
                content = item.content
                if not needs_blobs:
                    data = item.text.encode()
                    crc = zlib.crc32(data, crc)
                    size += len(data)
                elif isinstance(content, bytes):
                    crc = zlib.crc32(content, crc)
                    size += len(content)
                elif content is not None:
                    for chunk in content.chunks():
                        crc = zlib.crc32(chunk, crc)
                        size += len(chunk)
    return {"archive_bytes": 0, "entries": 0, "bytes_read": size, "crc32": crc}


PYTHON_CONTENDERS: dict[str, Callable[[Dataset, Path], dict]] = {
    **SCALEOUT_CONTENDERS,  # dsexport-ray-1, dsexport-ray-2 (bench/scaleout.py)
    **S3_CONTENDERS,  # dsexport-s3, s3-get, dsexport-ray-s3 (bench/s3.py)
    "dsexport": _dsexport,
    "dsexport-asyncio": lambda d, o: _dsexport(d, o, backend="asyncio"),
    "dsexport-devnull": lambda d, o: _dsexport(d, o, null=True),
    "dsexport-ultralytics": lambda d, o: _dsexport(d, o, fmt="ultralytics"),
    "dsexport-stdout": _dsexport_stdout,
    "zipstream-plain": _zipstream_plain,
    "zipfile-memory": _zipfile_memory,
    "materialise": _materialise,
    "crc32": _crc32,
}


def main(argv: list[str]) -> None:
    name, root, out = argv
    dataset = Dataset.load(Path(root))
    started = time.perf_counter()
    result = PYTHON_CONTENDERS[name](dataset, Path(out))
    result["inner_seconds"] = time.perf_counter() - started
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
