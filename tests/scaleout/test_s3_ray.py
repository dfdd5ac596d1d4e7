"""``--ray`` over a store whose content is in a bucket (SeaweedFS): the workers read it from there.

A local Ray cluster of its own (2 CPUs); the workers inherit the driver's
environment, so the AWS variables are set before it starts.
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path

import pytest
import ray

from archive_check import check_archive
from engine.errors import InvalidInput
from engine.pipeline import ExportOptions, run_export
from engine.scaleout import run_scaleout
from engine.sinks import FileSink
from engine.sources import StoreSource
from engine.store import NewItem, StoreAddress


@pytest.fixture(scope="module")
def s3_cluster(seaweed):
    saved = {name: os.environ.get(name) for name in seaweed.env()}
    os.environ.update(seaweed.env())
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    try:
        yield seaweed
    finally:
        ray.shutdown()
        for name, value in saved.items():
            os.environ.pop(name, None) if value is None else os.environ.__setitem__(name, value)


def test_workers_read_packed_and_large_content_from_the_bucket(s3_cluster, tmp_path: Path):
    blobs = f"s3://{s3_cluster.create_bucket()}/ray"
    address = StoreAddress(str(tmp_path / "store"), blobs)
    with address.open(create=True) as opened:
        ds = opened.create_dataset("mixed", "images", default_splits=True)
        version = ds.versions[0]
        train, valid, _ = (s.id for s in version.splits)
        label = opened.create_label(version.id, "cat").id
        rows = [
            NewItem(name=f"i{n}", extension="bin", split_ids=[[train], [valid], [train, valid]][n % 3],
                    data=(os.urandom(70_000) if n % 10 == 0 else f"small {n}".encode() * (n + 1)),
                    annotations=[(label, s, "") for s in [[train], [valid], [train, valid]][n % 3]])
            for n in range(60)
        ]  # fmt: skip
        opened.add_items(version.id, rows)
    ids = (ds.id, version.id)
    single = tmp_path / "single.zip"
    run_export(functools.partial(StoreSource, address), *ids, FileSink(single), ExportOptions(format="folders"))
    scaled = tmp_path / "scaled.zip"
    result = run_scaleout(functools.partial(StoreSource, address), *ids, str(scaled), ExportOptions(format="folders"), shards=3)
    assert result.shards == 3 and scaled.read_bytes() == single.read_bytes()
    assert len(check_archive(scaled)) > 60


@pytest.fixture(scope="module")
def mixed(s3_cluster, tmp_path_factory):
    """A local store whose archive is about 14 MB: shards of several MiB and smaller ones."""
    address = StoreAddress(str(tmp_path_factory.mktemp("mixed") / "store"))
    with address.open(create=True) as opened:
        ds = opened.create_dataset("mixed", "images", default_splits=True)
        version = ds.versions[0]
        train, valid, _ = (s.id for s in version.splits)
        rows = [
            NewItem(name=f"i{n % 7}", extension="bin", split_ids=[[train], [valid], [train, valid]][n % 3],
                    data=os.urandom(300_000) if n % 4 == 0 else f"small {n}".encode() * (n + 1))
            for n in range(150)
        ]  # fmt: skip
        opened.add_items(version.id, rows)
    return address, (ds.id, version.id)


@pytest.mark.parametrize("fmt", ["folders", "yolo"])
def test_parts_assembled_in_the_bucket_are_byte_identical(s3_cluster, mixed, tmp_path: Path, fmt: str):
    address, ids = mixed
    bucket = s3_cluster.create_bucket()
    single = tmp_path / "single.zip"
    run_export(functools.partial(StoreSource, address), *ids, FileSink(single), ExportOptions(format=fmt))
    for shards in (1, 5):
        result = run_scaleout(functools.partial(StoreSource, address), *ids, f"s3://{bucket}/out/{shards}.zip",
                              ExportOptions(format=fmt), shards=shards, parts_dir=f"s3://{bucket}/parts")  # fmt: skip
        got = tmp_path / f"{shards}.zip"
        s3_cluster.client().download_file(bucket, f"out/{shards}.zip", str(got))
        assert got.read_bytes() == single.read_bytes(), f"{fmt} with {shards} shards"
        assert result.shards == shards and result.bytes == len(single.read_bytes())
    check_archive(got)
    assert s3_cluster.keys(bucket) == ["out/1.zip", "out/5.zip"]  # the parts are gone
    assert s3_cluster.pending_uploads(bucket) == []


def test_output_and_parts_must_both_be_in_the_bucket(s3_cluster, tmp_path: Path):
    address = StoreAddress(str(tmp_path / "store"))
    with address.open(create=True) as opened:
        ds = opened.create_dataset("d", "images")
    for output, parts in (("s3://b/a.zip", None), (str(tmp_path / "a.zip"), "s3://b/parts")):
        with pytest.raises(InvalidInput, match="give both -o s3://"):
            run_scaleout(functools.partial(StoreSource, address), ds.id, ds.versions[0].id, output,
                         ExportOptions(format="folders"), parts_dir=parts)  # fmt: skip
