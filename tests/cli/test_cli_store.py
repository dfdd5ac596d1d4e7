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
