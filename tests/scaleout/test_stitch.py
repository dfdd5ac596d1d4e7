"""The scale-out pieces that need no Ray: CRC combine, record relocation, shards, stitch."""

from __future__ import annotations

import functools
import io
import os
import random
import zlib
from pathlib import Path
from zipfile import ZIP64_LIMIT, ZIP_DEFLATED

import pytest

from engine.demo import create_demo
from engine.pipeline import ExportOptions, run_export
from engine.scaleout.crc import crc32_combine
from engine.scaleout.driver import _plan, _settle_claims
from engine.scaleout.parts import PartSpec, run_part
from engine.scaleout.records import relocate
from engine.scaleout.shards import cut
from engine.scaleout.stitch import stitch
from engine.sinks import FileSink
from engine.sources import StoreSource
from engine.store import Store
from engine.zipwriter import ZipWriter
from formats_support import MemoryBlob


def test_crc32_combine_equals_the_crc_of_the_concatenation():
    rng = random.Random(7)
    for len1 in (0, 1, 3, 1000, 70_001):
        for len2 in (0, 1, 8, 4096, 123_457):
            a, b = rng.randbytes(len1), rng.randbytes(len2)
            assert crc32_combine(zlib.crc32(a), zlib.crc32(b), len(b)) == zlib.crc32(a + b), (len1, len2)
    # Three pieces, combined left to right, as the stitcher joins shards.
    pieces = [rng.randbytes(n) for n in (5, 0, 300, 17)]
    crc = 0
    for piece in pieces:
        crc = crc32_combine(crc, zlib.crc32(piece), len(piece))
    assert crc == zlib.crc32(b"".join(pieces))
    with pytest.raises(ValueError):
        crc32_combine(0, 0, -1)


def _records(start: int, compress_type: int = 0) -> bytes:
    """The central-directory records of a few entries written from offset ``start``."""
    writer = ZipWriter(io.BytesIO().write, compress_type=compress_type)
    writer._pos = start
    writer.write("plain.txt", b"hello")
    writer.write("dir/Zoë 🙂.bin", b"x" * 1000)
    writer.write("blob.bin", MemoryBlob(b"blob bytes" * 50))
    spool = writer._filelist._file  # type: ignore[attr-defined]
    spool.seek(0)
    records = spool.read()
    writer.discard()
    return records


@pytest.mark.parametrize(
    ("start", "shift"),
    [
        (0, 1234),  # plain: only the offset field changes
        (0, ZIP64_LIMIT - 100),  # crosses the zip64 limit inside the part's entries
        (0, 3 << 30),  # every record gains a zip64 extra
        (ZIP64_LIMIT + 10, 1 << 30),  # records that already carry a zip64 extra
    ],
)
@pytest.mark.parametrize("compress_type", [0, ZIP_DEFLATED])
def test_relocated_records_equal_what_the_writer_writes_at_the_new_offset(start, shift, compress_type):
    moved, count, used = relocate(_records(start, compress_type), shift)
    assert count == 3 and used == len(_records(start, compress_type))
    assert moved == _records(start + shift, compress_type)


def test_relocate_leaves_a_cut_off_record_for_the_next_block():
    records = _records(0)
    moved, count, used = relocate(records[:-3], 10)
    assert count == 2 and used < len(records) - 3
    rest, count2, used2 = relocate(records[used:], 10)
    assert count2 == 1 and moved + rest == relocate(records, 10)[0]


def test_write_copied_gives_the_bytes_of_writing_the_payload():
    data = os.urandom(5000)
    plain, copied = io.BytesIO(), io.BytesIO()
    a = ZipWriter(plain.write)
    a.write("x.csv", MemoryBlob(data))
    a.close()
    b = ZipWriter(copied.write)
    b.write_copied("x.csv", len(data), zlib.crc32(data), lambda: copied.write(data))
    b.close()
    assert copied.getvalue() == plain.getvalue()


def test_cut_covers_the_range_in_balanced_contiguous_shards():
    shards = cut(10, 3)
    assert [(s.start, s.stop) for s in shards] == [(0, 4), (4, 7), (7, 10)]
    assert [len(cut(2, 5)), len(cut(0, 5))] == [2, 1]
    assert cut(0, 5)[0].describe() == "shard 0 (no item occurrences)"
    assert shards[1].describe() == "shard 1 (item occurrences 4-6)"
    with pytest.raises(ValueError):
        cut(10, 0)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("demo")
    with Store.open(root) as store:
        return root, create_demo(store, items=14, seed=5)


def test_parts_written_in_process_stitch_byte_identical(demo, tmp_path: Path):
    """The whole scale-out path minus Ray: parts, claims ledger, stitch."""
    root, made = demo
    factory = functools.partial(StoreSource, root)
    for d in made:
        options = ExportOptions(format=d.format)
        run_export(factory, d.dataset_id, d.version_id, FileSink(tmp_path / "single.zip"), options)
        plan = _plan(factory, d.dataset_id, d.version_id, options, "trio")
        run_dir = tmp_path / f"run-{d.name}"
        run_dir.mkdir()
        specs = [
            PartSpec(
                shard=shard, dataset_id=d.dataset_id, version_id=d.version_id, options=options, plan=plan,
                run_dir=str(run_dir),
            )
            for shard in cut(plan.total, 4)
        ]
        parts = [run_part(spec, factory) for spec in specs]
        parts, _ = _settle_claims(parts, specs, run_dir, lambda spec: run_part(spec, factory))
        stitch(plan, options, parts, run_dir, tmp_path / "stitched.zip")
        assert (tmp_path / "stitched.zip").read_bytes() == (tmp_path / "single.zip").read_bytes(), d.name


def test_ray_is_imported_only_when_a_scale_out_export_runs():
    import subprocess
    import sys

    code = "import sys, engine.cli, engine.scaleout; assert 'ray' not in sys.modules, 'ray imported eagerly'"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
