"""The SQLite back end's blobs: small ones inline, large ones through its blob store."""

from __future__ import annotations

import hashlib
import zlib
from pathlib import Path

import pytest

from engine.errors import MissingBlob, NotFound
from engine.store import (
    INLINE_LIMIT,
    BlobFile,
    BlobRef,
    PageContent,
    Store,
)
from sqlite_checks import sql, sql_all


# -- blobs ----------------------------------------------------------------------


def test_small_blobs_are_inline_and_large_ones_files(store: Store):
    small = b"s" * (INLINE_LIMIT - 1)
    large = bytes(range(256)) * 400  # 100 KiB
    s_info, l_info = store.put_blob(small), store.put_blob(large)
    assert s_info == BlobRef(hashlib.sha256(small).hexdigest(), len(small), zlib.crc32(small))
    assert l_info == BlobRef(hashlib.sha256(large).hexdigest(), 102_400, zlib.crc32(large))
    path = store.blobs.files.path_for(l_info.sha256)
    assert path == store.root / "blobs" / l_info.sha256[:2] / l_info.sha256[2:4] / l_info.sha256
    assert path.read_bytes() == large
    assert not store.blobs.files.path_for(s_info.sha256).exists()
    rows = dict(sql_all(store, "SELECT sha256, data FROM blobs"))
    assert rows == {s_info.sha256: small, l_info.sha256: None}
    assert [p.name for p in (store.root / "blobs").rglob("*") if p.is_file()] == [l_info.sha256]  # no temp files


def test_blobs_are_deduplicated_and_a_lost_file_is_rewritten(store: Store):
    large = b"L" * 100_000
    first = store.put_blob(large)
    assert store.put_blob(large) == first
    assert store.put_blob_stream([large[:10], large[10:]]) == first
    assert sql(store, "SELECT count(*) FROM blobs")[0] == 1
    store.blobs.files.path_for(first.sha256).unlink()
    store.put_blob(large)
    assert store.blobs.files.path_for(first.sha256).read_bytes() == large


def test_put_blob_stream_stores_files_and_small_blobs(store: Store):
    chunk = bytes(range(256)) * 4096  # 1 MiB
    whole = b"".join(bytes([i]) + chunk[1:] for i in range(8))
    info = store.put_blob_stream(bytes([i]) + chunk[1:] for i in range(8))
    assert info == BlobRef.of(whole)
    assert store.blobs.files.path_for(info.sha256).read_bytes() == whole
    assert not list((store.root / "blobs").glob(".spool-*"))
    small = store.put_blob_stream(iter([b"ab", b"", b"c"]))
    assert small == BlobRef.of(b"abc")
    assert sql(store, "SELECT data FROM blobs WHERE sha256 = ?", (small.sha256,))[0] == b"abc"


def test_put_blob_stream_keeps_memory_flat(store: Store):
    import tracemalloc

    chunk = b"x" * (1 << 20)
    tracemalloc.start()
    try:
        info = store.put_blob_stream(chunk for _ in range(32))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert info.size == 32 << 20
    assert peak < 8 << 20, f"peak {peak} bytes for a 32 MiB stream"


def test_a_failed_stream_leaves_no_temp_file(store: Store):
    def broken():
        yield b"x" * INLINE_LIMIT
        raise OSError("source went away")

    with pytest.raises(OSError, match="went away"):
        store.put_blob_stream(broken())
    assert [p for p in (store.root / "blobs").rglob("*") if p.is_file()] == []


def test_blob_file_reads_checks_size_and_names_the_item(tmp_path: Path):
    path = tmp_path / "blob"
    path.write_bytes(b"0123456789")
    blob = BlobFile(path, 10, zlib.crc32(b"0123456789"), "ab" * 32, "item-1")
    assert blob.read() == b"0123456789" and b"".join(blob.chunks()) == b"0123456789"
    path.write_bytes(b"01234")
    with pytest.raises(MissingBlob, match=r"item item-1: blob (ab)+ is corrupt .*5 bytes, expected 10"):
        blob.read()
    path.write_bytes(b"0123456789ab")
    with pytest.raises(MissingBlob, match=r"corrupt .*longer than the recorded 10 bytes"):
        next(blob.chunks())  # nothing past the recorded size is handed out
    path.unlink()
    with pytest.raises(MissingBlob, match=rf"item item-1: blob (ab)+ is missing \({path}\)") as caught:
        blob.read()
    assert caught.value.item_id == "item-1"


def test_missing_file_blob_in_an_export_names_the_item(store: Store, images):
    version_id, (train, _, _), _ = images
    info = store.put_blob(b"z" * 100_000)
    item = store.create_item(version_id, name="big", extension="bin", split_ids=[train.id], blob=info)
    [[exported]] = list(store.iter_pages(version_id, [train.id], content=PageContent.BYTES, include_unsplit=False))
    assert isinstance(exported.content, BlobFile)
    assert (exported.content.size, exported.content.crc32) == (info.size, info.crc32)
    store.blobs.files.path_for(info.sha256).unlink()
    with pytest.raises(MissingBlob, match=item.id) as caught:
        exported.content.read()
    assert caught.value.item_id == item.id


def test_unknown_blob_is_rejected(store: Store, images):
    version_id, _, _ = images
    with pytest.raises(NotFound, match="unknown blob"):
        store.create_item(version_id, blob=BlobRef("f" * 64, 1, 0))
    assert store.count_items(version_id) == 0


