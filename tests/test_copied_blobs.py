"""Blob files copied into the archive by the kernel: the same bytes as the generic path, and checked.

The generic path (blob files read into memory by the fetch window, or
streamed in chunks when large, every byte through :meth:`Sink.write`) is
the reference: the file sink (``copy_file_range``), standard output as a
pipe (``sendfile``), a FIFO, and a sink without ``copy_from`` (files read
straight into the writer's buffer, as for an HTTP response) must give
byte-identical archives.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import zipfile
import zlib
from pathlib import Path

import pytest
from archive_check import check_archive

from engine.errors import ContentError, MissingBlob
from engine.pipeline import ExportOptions, run_export
from engine.regions import CheckedFile, _check_one, copy_checked
from engine.sinks import FileSink, StdoutSink, StreamSink
from engine.sources import StoreSource
from engine.store import BlobRef, Store
from engine.zipwriter import ZipWriter

SIZES = {
    "tiny": 10,  # inline in the store
    "just-over": 64 * 1024 + 1,  # the smallest blob file
    "medium": 100 * 1024,
    "big": 3 * 1024 * 1024 + 7,  # streamed from disk by the generic path
    "empty-ish": 65_537,
}


class WriteOnlySink:
    """The generic path: no ``copy_from``, every byte handed to ``write``."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.parts.append(bytes(data))

    def commit(self, size: int | None = None) -> None:
        assert size == sum(map(len, self.parts))

    def abort(self) -> None:
        self.parts.clear()

    def value(self) -> bytes:
        return b"".join(self.parts)


@pytest.fixture()
def store(tmp_path: Path):
    """Images in blob files (and one inline) with boxes, in two splits, one item in both."""
    root = tmp_path / "store"
    items = {}
    with Store.open(root) as opened:
        ds = opened.create_dataset("pics", "images", default_splits=True)
        version = ds.versions[0]
        train = opened.resolve_split(version.id, "train")
        valid = opened.resolve_split(version.id, "valid")
        label = opened.create_label(version.id, "things")
        for i, (name, size) in enumerate(SIZES.items()):
            data = hashlib.sha256(name.encode()).digest() * (size // 32) + b"z" * (size % 32)
            info = opened.put_blob(data)
            splits = [train.id, valid.id] if i == 2 else [train.id]
            item = opened.create_item(version.id, name=f"{name}-ü" if i == 1 else name, extension="jpg",
                                      split_ids=splits, blob=info)
            opened.annotate(item.id, train.id, label.id, coordinates="0.5 0.5 0.2 0.2")
            items[name] = (item.id, info, data)
    return root, ds.id, version.id, items


def _path(root: Path, info: BlobRef) -> Path:
    with Store.open(root) as opened:
        return opened.blobs.files.path_for(info.sha256)


def _export(store, sink, fmt: str = "yolo", **options):
    root, ds_id, v_id, _ = store
    return run_export(lambda: StoreSource(root), ds_id, v_id, sink, ExportOptions(format=fmt, **options))


_REFERENCE: dict[tuple[str, str], bytes] = {}


def _generic(store, fmt: str) -> bytes:
    """The archive as the generic path writes it: no blob file is taken from its record."""
    import engine.pipeline

    key = (str(store[0]), fmt)
    if key not in _REFERENCE:
        sink = WriteOnlySink()
        mp = pytest.MonkeyPatch()
        mp.setattr(engine.pipeline, "_checked_here", lambda job, content: False)
        try:
            _export(store, sink, fmt)
        finally:
            mp.undo()
        _REFERENCE[key] = sink.value()
    return _REFERENCE[key]


@pytest.mark.parametrize("fmt", ["yolo", "folders"])
def test_files_read_into_a_sink_without_copy_are_byte_identical(store, fmt: str):
    """As for an HTTP response: small blob files read straight into the writer's buffer."""
    sink = WriteOnlySink()
    _export(store, sink, fmt)
    assert sink.value() == _generic(store, fmt)


@pytest.mark.parametrize("fmt", ["yolo", "folders"])
@pytest.mark.parametrize("verify", [True, False])
def test_file_sink_copy_is_byte_identical_to_the_generic_path(store, tmp_path: Path, fmt: str, verify: bool):
    out = tmp_path / "a.zip"
    sink = FileSink(out)
    assert hasattr(sink, "copy_from")
    _export(store, sink, fmt, verify=verify)
    assert out.read_bytes() == _generic(store, fmt)
    entries = check_archive(out)
    for name, (_, _, data) in store[3].items():
        assert data in entries.values(), name


def test_stdout_pipe_copy_is_byte_identical(store, tmp_path: Path):
    """A real process writing to a pipe: ``sendfile`` into it."""
    root, ds_id, v_id, _ = store
    code = (
        "import sys; from engine.pipeline import ExportOptions, run_export; from engine.sinks import StdoutSink;"
        "from engine.sources import StoreSource;"
        f"run_export(lambda: StoreSource({str(root)!r}), {ds_id!r}, {v_id!r}, StdoutSink(), ExportOptions(format='yolo'))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == _generic(store, "yolo")


def test_stdout_to_a_file_and_in_memory_are_byte_identical(store, tmp_path: Path):
    out = tmp_path / "stdout.zip"
    with open(out, "wb") as f:
        _export(store, StdoutSink(f))
    reference = _generic(store, "yolo")
    assert out.read_bytes() == reference
    import io

    memory = io.BytesIO()
    _export(store, StdoutSink(memory))
    assert memory.getvalue() == reference


def test_fifo_copy_is_byte_identical(store, tmp_path: Path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    _export(store, StreamSink(fifo))
    reader.join(30)
    assert received == [_generic(store, "yolo")]


def test_rotted_blob_is_caught_by_default_naming_the_item_and_leaving_nothing(store, tmp_path: Path):
    root, _, _, items = store
    item_id, info, data = items["medium"]
    path = _path(root, info)
    path.chmod(0o644)
    path.write_bytes(data[:500] + bytes([data[500] ^ 0x10]) + data[501:])  # same size, one bit off
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(MissingBlob, match=item_id):
        _export(store, FileSink(out_dir / "a.zip"))
    assert list(out_dir.iterdir()) == []


def test_rotted_blob_under_no_verify_is_copied_and_readers_see_the_crc_mismatch(store, tmp_path: Path):
    """What --no-verify gives up: the CRC in the archive is the recorded one, so a reader still catches the rot."""
    root, _, _, items = store
    _, info, data = items["medium"]
    path = _path(root, info)
    path.chmod(0o644)
    rotted = data[:500] + bytes([data[500] ^ 0x10]) + data[501:]
    path.write_bytes(rotted)
    out = tmp_path / "a.zip"
    _export(store, FileSink(out), verify=False)
    with zipfile.ZipFile(out) as zf:
        bad = zf.testzip()
        assert bad is not None and bad.endswith(".jpg")
        assert zf.getinfo(bad).CRC == zlib.crc32(data) != zlib.crc32(rotted)
    assert subprocess.run(["unzip", "-tq", str(out)], capture_output=True).returncode != 0


@pytest.mark.parametrize("verify", [True, False])
@pytest.mark.parametrize("damage", ["truncated", "grown", "gone"])
def test_resized_or_missing_blob_is_caught_even_without_verify(store, tmp_path: Path, verify: bool, damage: str):
    root, _, _, items = store
    item_id, info, data = items["big"]
    path = _path(root, info)
    path.chmod(0o644)
    if damage == "gone":
        path.unlink()
    else:
        path.write_bytes(data[:-1] if damage == "truncated" else data + b"!")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(MissingBlob, match=item_id):
        _export(store, FileSink(out_dir / "a.zip"), verify=verify)
    assert list(out_dir.iterdir()) == []


def test_skip_missing_skips_a_rotted_blob(store, tmp_path: Path):
    root, _, _, items = store
    item_id, info, data = items["just-over"]
    path = _path(root, info)
    path.chmod(0o644)
    path.write_bytes(bytes(len(data)))
    out = tmp_path / "a.zip"
    result = _export(store, FileSink(out), skip_missing=True)
    assert result.skipped == [item_id]
    assert data not in check_archive(out).values()


@pytest.mark.parametrize("how", ["rewritten", "replaced", "removed"])
def test_a_file_changed_after_its_check_is_refused_when_copied(tmp_path: Path, how: str):
    data = os.urandom(200_000)
    blob_path = tmp_path / "blob"
    blob_path.write_bytes(data)

    class Blob:
        size, crc32, item_id = len(data), zlib.crc32(data), "item-7"

        def file_region(self):
            from formats.base import FileRegion

            return FileRegion(str(blob_path), 0, len(data))

        def chunks(self):
            yield blob_path.read_bytes()

    blob = Blob()
    checked = _check_one(blob, blob.file_region(), verify=True)
    assert isinstance(checked, CheckedFile)
    if how == "rewritten":
        os.utime(blob_path, ns=(1, 1))  # same bytes even: the identity changed, so it is not trusted
    elif how == "replaced":
        other = tmp_path / "other"
        other.write_bytes(data)
        os.replace(other, blob_path)
    else:
        blob_path.unlink()
    sink_path = tmp_path / "out.bin"
    with open(sink_path, "wb") as out:
        with pytest.raises(ContentError, match="item-7.*changed on disk"):
            copy_checked("a/b.jpg", checked, lambda fd, off, n: os.copy_file_range(fd, out.fileno(), n, off))


def test_writer_without_a_copy_reads_a_checked_file_as_a_blob(tmp_path: Path):
    """A sink that cannot copy (HTTP, S3) gets the same entry through chunks() (above 1 MiB) as a kernel copy."""
    data = os.urandom(2_000_000)
    blob_path = tmp_path / "blob"
    blob_path.write_bytes(data)
    from formats.base import FileRegion

    class Blob:
        size, crc32, item_id = len(data), zlib.crc32(data), "x"

        def chunks(self):
            yield data

    checked = _check_one(Blob(), FileRegion(str(blob_path), 0, len(data)), verify=True)
    plain: list[bytes] = []
    writer = ZipWriter(plain.append)
    writer.write("a.jpg", checked)
    writer.close()
    copied = tmp_path / "copied.zip"
    with open(copied, "wb", buffering=0) as f:  # unbuffered: writes and kernel copies in order
        writer = ZipWriter(f.write, copy=lambda fd, off, n: os.copy_file_range(fd, f.fileno(), n, off))
        assert writer.copies_files
        writer.write("a.jpg", checked)
        writer.close()
    assert copied.read_bytes() == b"".join(plain)
    with zipfile.ZipFile(copied) as zf:
        assert zf.read("a.jpg") == data


def test_cli_no_verify_option(store, tmp_path: Path):
    from cli_run import dsexport

    root, ds_id, v_id, items = store
    _, info, data = items["medium"]
    path = _path(root, info)
    path.chmod(0o644)
    path.write_bytes(bytes(len(data)))
    bad = tmp_path / "verified.zip"
    refused = dsexport("export", ds_id, v_id, "-f", "yolo", "--store", str(root), "-o", str(bad))
    assert refused.returncode != 0 and not bad.exists()
    assert b"corrupt content" in refused.stderr and items["medium"][0].encode() in refused.stderr
    trusted = tmp_path / "trusted.zip"
    done = dsexport("export", ds_id, v_id, "-f", "yolo", "--store", str(root), "-o", str(trusted), "--no-verify")
    assert done.returncode == 0, done.stderr.decode()
    with zipfile.ZipFile(trusted) as zf:
        assert zf.testzip() is not None


@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_http_download_of_blob_files_is_byte_identical(store, tmp_path: Path):
    """The export endpoint (a sink without copy_from) gives the generic path's bytes, with its exact length."""
    import requests
    from servers import Server

    root, ds_id, v_id, _ = store
    with Store.open(root) as opened:
        key = opened.create_user("alice", "pw")[1]
        opened.give_datasets("alice")
    srv = Server(root, "uvloop", workdir=tmp_path)
    try:
        r = requests.get(f"{srv.base}datasets/{ds_id}/versions/{v_id}/download?format=yolo",
                         headers={"Authorization": f"Bearer {key}"}, timeout=60)
    finally:
        srv.stop()
    assert r.status_code == 200, r.text
    assert int(r.headers["content-length"]) == len(r.content)
    assert r.content == _generic(store, "yolo")


@pytest.mark.parametrize("offset,length", [(0, 40 << 20), (5000, (40 << 20) - 5000), (17 << 20, 1000), (0, 0),
                                           (3 * 4096 + 7, (16 << 20) + 1)])
def test_crc_of_a_region_in_windows(tmp_path: Path, offset: int, length: int):
    """Regions at any offset (a pack file's), mapped in windows: the CRC-32 of exactly those bytes."""
    from engine.regions import _crc_of
    from formats.base import FileRegion

    data = os.urandom((40 << 20) + 12_345)
    path = tmp_path / "pack"
    path.write_bytes(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        assert _crc_of(fd, FileRegion(str(path), offset, length)) == zlib.crc32(data[offset : offset + length])
    finally:
        os.close(fd)


def test_a_blob_read_into_a_reused_buffer_is_written_as_read(tmp_path: Path):
    """The writer keeps output pieces until it flushes: a chunk it was lent must be copied, not kept."""
    parts = [os.urandom(10_000) for _ in range(5)]

    class ReusingBlob:
        size, crc32, item_id = 50_000, zlib.crc32(b"".join(parts)), "x"

        def chunks(self):
            buffer = bytearray(10_000)
            for part in parts:
                buffer[:] = part
                yield buffer

    out = tmp_path / "a.zip"
    with open(out, "wb") as f:
        writer = ZipWriter(f.write)
        writer.write("a.bin", ReusingBlob())
        writer.write("b.bin", b"after")
        writer.close()
    with zipfile.ZipFile(out) as zf:
        assert zf.testzip() is None
        assert zf.read("a.bin") == b"".join(parts)


@pytest.mark.parametrize("offset", [0, 70_000])
@pytest.mark.parametrize("length", [100_000, 1_500_000])  # read in, and copied by the kernel
def test_a_region_of_a_pack_file_is_copied_exactly(tmp_path: Path, offset: int, length: int):
    """A blob that is part of a bigger file (a pack): only its region is checked and copied."""
    from formats.base import FileRegion

    pack = os.urandom(2_000_000)
    data = pack[offset : offset + length]
    path = tmp_path / "pack"
    path.write_bytes(pack)

    class Packed:
        size, crc32, item_id = len(data), zlib.crc32(data), "p"

        def chunks(self):
            yield data

    checked = _check_one(Packed(), FileRegion(str(path), offset, len(data)), verify=True)
    assert isinstance(checked, CheckedFile)
    assert _check_one(Packed(), FileRegion(str(path), offset, len(data), whole_file=True), verify=True) is None
    out = tmp_path / "a.zip"
    with open(out, "wb", buffering=0) as f:
        writer = ZipWriter(f.write, copy=lambda fd, off, n: os.copy_file_range(fd, f.fileno(), n, off))
        writer.write("a.bin", checked)
        writer.close()
    with zipfile.ZipFile(out) as zf:
        assert zf.testzip() is None and zf.read("a.bin") == data
