"""The zip layer: byte identity with zipstream-ng, constant memory, safety."""

from __future__ import annotations

import io
import time
import zipfile
import zlib
from pathlib import Path
from unittest import mock

import pytest
import zipstream
import zipstream.ng

from archive_check import check_archive
from engine.errors import ContentError, InvalidInput
from engine.zipwriter import FIXED_DATE_TIME, SpooledCentralDirectory, ZipWriter, predicted_zip_size


class MemoryBlob:
    def __init__(self, data: bytes, crc: int | None = None, chunk: int = 7) -> None:
        self.data, self.size, self.chunk = data, len(data), chunk
        self.crc32 = zlib.crc32(data) if crc is None else crc

    def chunks(self):
        for i in range(0, len(self.data), self.chunk):
            yield self.data[i : i + self.chunk]


ENTRIES = [
    ("a.txt", b"hello"),
    ("train/cats/ünïcode 名前.jpg", b"\xff\xd8" * 500),
    ("empty", b""),
    ("big/blob.bin", MemoryBlob(bytes(range(256)) * 300)),
    ("z.txt", b"last"),
]


def write(entries, **kwargs) -> bytes:
    out = bytearray()
    writer = ZipWriter(out.extend, buffer_size=64, **kwargs)
    try:
        for path, data in entries:
            writer.write(path, data)
    except BaseException:
        writer.discard()
        raise
    assert writer.close() == len(out)
    return bytes(out)


def plain_zipstream(entries) -> bytes:
    """The same entries through zipstream-ng used plainly, clock fixed."""
    fixed = time.struct_time(FIXED_DATE_TIME + (0, 1, -1))
    with mock.patch.object(zipstream.ng.time, "localtime", return_value=fixed):
        zs = zipstream.ZipStream()
        for path, data in entries:
            if isinstance(data, bytes):
                zs.add(data, path)
            else:
                zs.add(data.chunks(), path, size=data.size)
        return bytes(zs)


def test_byte_identical_to_plain_zipstream_ng():
    assert write(ENTRIES) == plain_zipstream(ENTRIES)


def test_output_reads_back_with_independent_readers(tmp_path: Path):
    archive = tmp_path / "a.zip"
    archive.write_bytes(write(ENTRIES))
    entries = check_archive(archive)
    assert entries == {p: d if isinstance(d, bytes) else d.data for p, d in ENTRIES}
    with zipfile.ZipFile(archive) as zf:
        assert {i.date_time for i in zf.infolist()} == {FIXED_DATE_TIME}
        assert zf.getinfo("train/cats/ünïcode 名前.jpg").flag_bits & 0x800  # UTF-8 flagged


def test_deflate_is_smaller_and_readable(tmp_path: Path):
    data = [("text.txt", b"abc" * 10_000), ("blob.bin", MemoryBlob(b"x" * 50_000))]
    stored, deflated = write(data), write(data, compress_type=zipfile.ZIP_DEFLATED)
    assert len(deflated) < len(stored) / 10
    archive = tmp_path / "d.zip"
    archive.write_bytes(deflated)
    assert check_archive(archive) == {"text.txt": b"abc" * 10_000, "blob.bin": b"x" * 50_000}


def test_predicted_size_matches_actual():
    sizes = [(p, len(d) if isinstance(d, bytes) else d.size) for p, d in ENTRIES]
    assert predicted_zip_size(iter(sizes)) == len(write(ENTRIES))


@pytest.mark.parametrize("count", [65_534, 65_535, 65_536])
def test_predicted_size_at_the_zip64_entry_count_boundary(count: int):
    entries = [(f"{i}.txt", b"x") for i in range(count)]
    actual = len(write(entries))
    assert predicted_zip_size((p, 1) for p, _ in entries) == actual


def test_more_than_65535_entries_is_zip64_and_valid(tmp_path: Path):
    count = 70_000
    archive = tmp_path / "many.zip"
    with archive.open("wb") as f:
        writer = ZipWriter(f.write)
        for i in range(count):
            writer.write(f"d{i % 7}/{i}.bin", i.to_bytes(4, "little"))
        writer.close()
    raw = archive.read_bytes()
    assert b"PK\x06\x06" in raw[-200:]  # zip64 end of central directory record
    entries = check_archive(archive)
    assert len(entries) == count
    assert entries["d4/69997.bin"] == (69997).to_bytes(4, "little")


def test_central_directory_is_spooled_not_held():
    writer = ZipWriter(lambda data: None)
    assert isinstance(writer._filelist, SpooledCentralDirectory)
    for i in range(1000):
        writer.write(f"{i}.bin", b"abc")
    # Nothing per entry is held in Python objects: the spool is a file.
    assert len(writer._filelist) == 1000
    assert writer._filelist._file.tell() == sum(46 + len(f"{i}.bin") for i in range(1000))
    writer.close()


def test_output_arrives_in_buffered_chunks():
    chunks: list[bytes] = []
    writer = ZipWriter(chunks.append, buffer_size=4096)
    for i in range(100):
        writer.write(f"{i}.bin", b"x" * 1000)
    writer.close()
    assert len(chunks) > 10
    assert all(len(c) < 4096 + 1200 for c in chunks)
    zipfile.ZipFile(io.BytesIO(b"".join(chunks))).testzip()


def test_corrupt_blob_is_refused_by_crc():
    with pytest.raises(ContentError, match="CRC-32"):
        write([("bad.bin", MemoryBlob(b"payload", crc=123))])


def test_blob_shorter_than_announced_is_refused():
    blob = MemoryBlob(b"payload")
    blob.size = 100
    with pytest.raises(ContentError, match="expected 100 bytes"):
        write([("short.bin", blob)])


@pytest.mark.parametrize("path", ["", "/abs", "a/../b", "..", "a\\b", "nul\x00", "dir/", "a//b"])
def test_unsafe_paths_are_refused(path: str):
    with pytest.raises(InvalidInput, match="unsafe archive path"):
        write([(path, b"x")])


def test_dots_inside_names_are_fine():
    assert zipfile.ZipFile(io.BytesIO(write([("a..b/c...txt", b"x")]))).namelist() == ["a..b/c...txt"]


def test_big_chunks_pass_through_uncopied_and_in_order():
    big = MemoryBlob(bytes(range(256)) * 4096, chunk=512 << 10)  # 1 MiB in two 512 KiB chunks
    entries = [("before.txt", b"a" * 100), ("big.bin", big), ("after.txt", b"z")]
    pieces: list[bytes] = []
    writer = ZipWriter(pieces.append, buffer_size=1 << 20)
    for path, data in entries:
        writer.write(path, data)
    writer.close()
    assert sum(len(p) == 512 << 10 for p in pieces) == 2  # handed on as they came
    assert b"".join(pieces) == plain_zipstream(entries)


@pytest.mark.parametrize("compression", ["store", "deflate"])
def test_write_many_is_byte_identical_to_write(compression: str):
    """Runs of small bytes entries, blobs and unicode names, with flushes inside a run."""
    from engine.zipwriter import COMPRESSION

    entries = [*ENTRIES, *((f"many/{i}/é{i}.bin", bytes([i % 251]) * (i % 97)) for i in range(300)), *ENTRIES[::-1]]
    entries = [(f"{i}-{path}", data) for i, (path, data) in enumerate(entries)]
    expected = write(entries, compress_type=COMPRESSION[compression])
    out = bytearray()
    writer = ZipWriter(out.extend, buffer_size=4096, compress_type=COMPRESSION[compression])
    for start in range(0, len(entries), 37):
        writer.write_many(iter(entries[start : start + 37]))
    assert writer.entries_written == len(entries)
    assert writer.close() == len(out)
    assert bytes(out) == expected
    with zipfile.ZipFile(io.BytesIO(bytes(out))) as archive:
        assert archive.testzip() is None
        assert len(archive.namelist()) == len(entries)


def test_write_many_refuses_an_unsafe_path_in_a_run():
    writer = ZipWriter(bytearray().extend)
    with pytest.raises(InvalidInput, match="unsafe"):
        writer.write_many([("ok.txt", b"1"), ("../evil", b"2")])
    writer.discard()
