"""Spools and name claims: exact, bounded, cleaned up."""

from __future__ import annotations

import zlib

import pytest
from full_disk import full_disk

from engine.errors import OutputError
from engine.spool import FileSpool, SpillingClaims


def test_spool_tracks_size_and_crc_and_rereads():
    spool = FileSpool()
    for part in (b"abc", b"", b"def" * 1000):
        spool.write(part)
    blob = spool.close()
    expected = b"abc" + b"def" * 1000
    assert (blob.size, blob.crc32) == (len(expected), zlib.crc32(expected))
    assert b"".join(blob.chunks()) == expected
    assert b"".join(blob.chunks()) == expected  # re-readable
    spool.discard()


def test_claims_are_exact_before_and_after_spilling():
    claims = SpillingClaims(memory_limit=10)
    keys = [f"train/{i}.jpg" for i in range(50)]
    assert all(claims.claim(k) for k in keys)
    assert claims._db is not None, "should have spilled to disk past the limit"
    assert not any(claims.claim(k) for k in keys)
    assert claims.claim("train/50.jpg")
    assert not claims.claim("train/50.jpg")
    claims.close()


def test_claims_spill_file_is_removed_on_close():
    claims = SpillingClaims(memory_limit=1)
    claims.claim("a")
    claims.claim("b")
    path = claims._tmp.name
    claims.close()
    import os

    assert not os.path.exists(path)


def test_claim_values_survive_spilling():
    claims = SpillingClaims(memory_limit=2)
    claims.claim("item:1", "a.jpg")
    for i in range(10):
        claims.claim(f"k{i}")
    assert claims._db is not None
    claims.claim("item:2", "b~2.jpg")
    assert claims.value("item:1") == "a.jpg"
    assert claims.value("item:2") == "b~2.jpg"
    assert claims.value("item:3") is None
    assert not claims.claim("item:2", "changed")
    assert claims.value("item:2") == "b~2.jpg"
    claims.close()


def test_claims_on_a_full_temporary_folder_are_a_message(tmp_path):
    """Past SQLite's 2 MiB cache the table is written to disk: a full one is an OutputError naming it."""
    with full_disk(tmp_path / "tmp", room=8 << 10, needs_tmpfs=True) as disk:
        claims = SpillingClaims(memory_limit=10, directory=str(disk.folder))
        with pytest.raises(OutputError, match=f"no space left .* in {disk.folder}"):
            for i in range(200_000):
                claims.claim(f"train/a-rather-long-file-name-{i:08d}.jpg")
        claims.close()
        assert [p.name for p in disk.folder.iterdir() if p.name != ".filler"] == []
