"""``dsexport store ...`` run as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

from cli_run import dsexport
from engine.store import NewItem, open_store


def test_compact_reports_what_it_did_and_a_local_store_is_refused(s3_env, tmp_path: Path):
    blobs = f"s3://{s3_env.create_bucket()}/p"
    with open_store(tmp_path / "s", blobs=blobs) as store:
        ds = store.create_dataset("d", "images", default_splits=True)
        version = ds.versions[0]
        for n in range(2):  # two small packs: worth merging
            store.add_items(version.id, [NewItem(name=f"{n}-{i}", split_ids=[version.splits[0].id], data=b"x%d-%d" % (n, i)) for i in range(5)])
    done = dsexport("store", "compact", "--store", str(tmp_path / "s"), "--blobs", blobs, "--grace", "0", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (len(report["rewritten"]), len(report["written"]), len(report["deleted"])) == (2, 1, 2)

    with open_store(tmp_path / "local"):
        pass
    refused = dsexport("store", "compact", "--store", str(tmp_path / "local"))
    assert refused.returncode == 2 and b"nothing to compact" in refused.stderr and b"Traceback" not in refused.stderr


def test_copy_verifies_every_blob_and_resumes_after_a_failure(tmp_path: Path):
    import os

    from engine.store import StoreAddress

    source, target = tmp_path / "src", tmp_path / "dst"
    with StoreAddress(str(source)).open(create=True) as store:
        ds = store.create_dataset("d", "images", default_splits=True)
        version = ds.versions[0]
        store.add_items(version.id, [NewItem(name=f"s{i}", split_ids=[version.splits[0].id], data=b"small %d" % i) for i in range(50)])
        bad = store.put_blob(os.urandom(100_000))
        store.create_item(version.id, name="big", split_ids=[version.splits[0].id], blob=bad)
        path = store.blobs.files.path_for(bad.sha256)
    original = path.read_bytes()
    path.write_bytes(b"X" * len(original))  # same size, other bytes: only the hash can tell
    failed = dsexport("store", "copy", "--store", str(source), "--to", str(target))
    text = failed.stderr.decode()
    assert failed.returncode == 2 and "Traceback" not in text, text
    assert f"blob {bad.sha256} is corrupt in the source" in text and "run the copy again" in text
    path.write_bytes(original)  # repaired: the copy resumes
    done = dsexport("store", "copy", "--store", str(source), "--to", str(target), "--json")
    assert done.returncode == 0, done.stderr
    exports = []
    for store_dir in (source, target):
        out = tmp_path / f"{store_dir.name}.zip"
        ran = dsexport("export", "--store", str(store_dir), ds.id, version.id, "-f", "folders", "-o", str(out))
        assert ran.returncode == 0, ran.stderr
        exports.append(out.read_bytes())
    assert exports[0] == exports[1]


def test_copy_refuses_to_copy_a_store_onto_itself(tmp_path: Path):
    with open_store(tmp_path / "s"):
        pass
    done = dsexport("store", "copy", "--store", str(tmp_path / "s"), "--to", str(tmp_path / "s"))
    assert done.returncode == 2 and b"names the source store itself" in done.stderr
