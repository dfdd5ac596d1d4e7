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


def _reference_claims(ops):
    """What one-key-at-a-time claims in a dict answer to a sequence of claim / claim_many calls."""
    taken: set[str] = set()
    answers = []
    for op, arg in ops:
        if op == "one":
            answers.append(arg not in taken)
            taken.add(arg)
        else:
            done = 0
            for key in arg:
                if key in taken:
                    break
                taken.add(key)
                done += 1
            answers.append(done)
    return answers


def test_claim_many_is_exact_before_and_after_spilling_with_many_collisions():
    """Runs with taken keys, repeats inside a run and single claims mixed in: the answers of a plain set."""
    import random

    rng = random.Random(7)
    ops = []
    for _ in range(3000):
        if rng.random() < 0.3:
            ops.append(("one", f"k{rng.randrange(6000)}"))
        else:
            ops.append(("many", [f"k{rng.randrange(6000)}" for _ in range(rng.randrange(0, 12))]))
    claims = SpillingClaims(memory_limit=100)
    answers = [claims.claim(arg) if op == "one" else claims.claim_many(arg) for op, arg in ops]
    assert claims._db is not None, "should have spilled to disk past the limit"
    assert answers == _reference_claims(ops)
    assert any(isinstance(a, int) and a < len(arg) for a, (op, arg) in zip(answers, ops) if op == "many")
    # Every key claimed is taken now, whichever way it was claimed; no other key is.
    claimed = {arg for (op, arg), a in zip(ops, answers) if op == "one" and a}
    claimed |= {key for (op, arg), a in zip(ops, answers) if op == "many" for key in arg[:a]}
    assert all(not claims.claim(key) for key in claimed)
    assert claims.claim_many(sorted(f"k{i}" for i in range(6000) if f"k{i}" not in claimed)) == 6000 - len(claimed)
    claims.close()


def test_claim_many_keeps_values_and_unusual_keys():
    claims = SpillingClaims(memory_limit=2)
    claims.claim("item:1", "a.jpg")
    odd = ['quote"and\\backslash', "ünïcode 名前", "tab\tnewline\n", "emoji 😀", "", "nul\x00a", "nul\x00b", "nul"]
    assert claims.claim_many([f"k{i}" for i in range(10)]) == 10
    assert claims._db is not None
    assert claims.claim_many(odd) == len(odd)
    assert claims.claim_many([*odd[::-1]]) == 0
    assert not any(claims.claim(key) for key in odd)
    assert claims.value("item:1") == "a.jpg"
    assert claims.claim_many(["new", "new"]) == 1  # a repeat inside one run is taken by the first
    assert claims.claim_many(["nul\x00c", "nul\x00a"]) == 1  # a NUL does not end a key
    claims.close()


def test_claim_many_on_a_full_temporary_folder_is_a_message(tmp_path):
    with full_disk(tmp_path / "tmp", room=8 << 10, needs_tmpfs=True) as disk:
        claims = SpillingClaims(memory_limit=10, directory=str(disk.folder))
        with pytest.raises(OutputError, match=f"no space left .* in {disk.folder}"):
            for start in range(0, 200_000, 512):
                claims.claim_many([f"train/a-rather-long-file-name-{i:08d}.jpg" for i in range(start, start + 512)])
        claims.close()
        assert [p.name for p in disk.folder.iterdir() if p.name != ".filler"] == []
