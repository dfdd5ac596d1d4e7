"""A store whose content is in a bucket (``--blobs s3://...``), as a user runs it, on a real S3 server (SeaweedFS).

The S3 store is made with ``dsexport store copy`` from a local one (ids, users and content kept),
so every export from either side must be byte for byte the same.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import pytest

from archive_check import check_archive
from cli_run import dsexport
from engine.errors import DsexportError
from engine.pipeline import ExportOptions, run_export
from engine.sinks import FileSink
from engine.sources import StoreSource
from engine.store import StoreAddress
from formats import FORMATS
from seaweed import start_seaweed

ROOT = Path(__file__).resolve().parents[2]


def _large_dataset(address: StoreAddress, items: int = 3, size: int = 100_000) -> tuple[str, str, list[str]]:
    """An image dataset whose content is too big to be packed: one object per item."""
    with address.open(create=True) as opened:
        ds = opened.create_dataset("large", "images", default_splits=True)
        version = ds.versions[0]
        ids = [
            opened.create_item(version.id, name=f"big{n}", extension="bin", split_ids=[version.splits[0].id],
                               blob=opened.put_blob(os.urandom(size))).id
            for n in range(items)
        ]  # fmt: skip
    return ds.id or "", version.id or "", ids


@pytest.fixture(scope="module")
def stores(tmp_path_factory, seaweed):
    """(local store folder, S3 store folder, its blob URL, {name: (dataset id, version id)}): the same store twice."""
    saved = {name: os.environ.get(name) for name in seaweed.env()}
    os.environ.update(seaweed.env())  # the module's processes reach the session's S3 server
    root = tmp_path_factory.mktemp("s3cli")
    local, remote, blobs = root / "local", root / "remote", f"s3://{seaweed.create_bucket()}/store"
    made = dsexport("demo", "--store", str(local), "--items", "8", "--json")
    assert made.returncode == 0, made.stderr
    ids = {d["name"]: (d["dataset_id"], d["version_id"]) for d in json.loads(made.stdout)}
    large = _large_dataset(StoreAddress(str(local)))
    ids["large"] = large[:2]
    assert dsexport("user", "create", "alice", "--store", str(local), "--password", "pw").returncode == 0
    copied = dsexport("store", "copy", "--store", str(local), "--to", str(remote), "--to-blobs", blobs, "--json")
    assert copied.returncode == 0, copied.stderr
    yield local, remote, blobs, ids
    for name, value in saved.items():
        os.environ.pop(name, None) if value is None else os.environ.__setitem__(name, value)


def _export(store: Path, blobs: str | None, ids: tuple[str, str], fmt: str, out: Path, **env: str):
    extra = ["--blobs", blobs] if blobs else []
    full = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    full.pop("DSEXPORT_BLOBS", None)
    return subprocess.run(
        [sys.executable, "-m", "engine", "export", "--store", str(store), *extra, *ids, "-f", fmt, "-o", str(out)],
        capture_output=True, env=full, timeout=120,
    )  # fmt: skip


def _export_here(address: StoreAddress, ids: tuple[str, str], fmt: str, out: Path) -> str | None:
    """An export in this process; the error's message if it fails."""
    try:
        run_export(partial(StoreSource, address), *ids, FileSink(out), ExportOptions(format=fmt))
    except DsexportError as exc:
        return str(exc)
    return None


def test_every_format_exports_the_same_bytes_from_the_bucket_as_from_the_folder(stores, tmp_path: Path, seaweed):
    local, remote, blobs, ids = stores
    compared = 0
    for name, pair in ids.items():
        for fmt in FORMATS:
            mine, theirs = tmp_path / f"{name}-{fmt}-local.zip", tmp_path / f"{name}-{fmt}-s3.zip"
            a = _export_here(StoreAddress(str(local)), pair, fmt, mine)
            b = _export_here(StoreAddress(str(remote), blobs), pair, fmt, theirs)
            assert a == b, (name, fmt)  # a format that does not fit says so the same way
            if a is None:
                assert theirs.read_bytes() == mine.read_bytes(), (name, fmt)
                check_archive(theirs)
                compared += 1
    assert compared >= len(ids)  # at least each dataset's natural format
    by_cli = _export(remote, blobs, ids["large"], "folders", tmp_path / "cli.zip")  # the CLI's --blobs
    assert by_cli.returncode == 0, by_cli.stderr
    assert (tmp_path / "cli.zip").read_bytes() == (tmp_path / "large-folders-local.zip").read_bytes()
    bucket = blobs.removeprefix("s3://").split("/")[0]
    keys = seaweed.keys(bucket)
    assert any("/packs/" in k for k in keys) and sum("/blobs/" in k for k in keys) == 3  # small packed, large one each


def test_a_second_copy_resumes_with_nothing_to_do_and_users_came_along(stores):
    local, remote, blobs, _ = stores
    again = dsexport("store", "copy", "--store", str(local), "--to", str(remote), "--to-blobs", blobs, "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["blobs_already_there"] == 3
    listed = [dsexport("user", "list", "--store", str(s), *b, "--json") for s, b in ((local, []), (remote, ["--blobs", blobs]))]
    assert listed[0].returncode == listed[1].returncode == 0 and listed[0].stdout == listed[1].stdout
    assert b'"alice"' in listed[1].stdout


def test_wrong_credentials_are_an_error_naming_the_endpoint(stores, tmp_path: Path, seaweed):
    _, remote, blobs, ids = stores
    done = _export(remote, blobs, ids["large"], "folders", tmp_path / "x.zip", AWS_SECRET_ACCESS_KEY="wrong")
    text = done.stderr.decode()
    assert done.returncode == 2 and "Traceback" not in text and seaweed.endpoint in text, text
    assert not (tmp_path / "x.zip").exists() and list(tmp_path.iterdir()) == []


def test_a_missing_object_names_the_item(stores, tmp_path: Path, seaweed):
    blobs = f"s3://{seaweed.create_bucket()}/s"
    dataset_id, version_id, item_ids = _large_dataset(StoreAddress(str(tmp_path / "meta"), blobs), items=1)
    bucket = blobs.removeprefix("s3://").split("/")[0]
    (victim,) = [k for k in seaweed.keys(bucket) if "/blobs/" in k]
    seaweed.client().delete_object(Bucket=bucket, Key=victim)
    done = _export(tmp_path / "meta", blobs, (dataset_id, version_id), "folders", tmp_path / "out.zip")
    text = done.stderr.decode()
    assert done.returncode == 2 and "Traceback" not in text, text
    assert f"item {item_ids[0]} 'big0' has missing" in text
    assert not (tmp_path / "out.zip").exists()


def test_the_s3_server_killed_mid_export_is_a_clear_error_and_leaves_nothing(tmp_path: Path):
    own = start_seaweed(tmp_path / "weed")  # its own server: this test kills it
    try:
        env = {**os.environ, **own.env(), "PYTHONPATH": str(ROOT)}
        env.pop("DSEXPORT_BLOBS", None)
        blobs = f"s3://{own.create_bucket()}/s"
        saved = {k: os.environ.get(k) for k in own.env()}
        os.environ.update(own.env())
        try:
            dataset_id, version_id, _ = _large_dataset(StoreAddress(str(tmp_path / "meta"), blobs), items=60, size=200_000)
        finally:
            for k, v in saved.items():
                os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
        out = tmp_path / "out"
        out.mkdir()
        proc = subprocess.Popen(
            [sys.executable, "-m", "engine", "export", "--store", str(tmp_path / "meta"), "--blobs", blobs,
             dataset_id, version_id, "-f", "folders", "-o", str(out / "a.zip"), "--concurrency", "1"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while not any(p.stat().st_size > 1_000_000 for p in out.iterdir()):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.005)
        own.kill()
        _, stderr = proc.communicate(timeout=120)
    finally:
        own.kill()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = stderr.decode()
    assert proc.returncode == 2 and "Traceback" not in text, text
    assert own.endpoint in text and text.startswith("error: item ") and "failed" in text
    assert list(out.iterdir()) == []  # no archive, no partial file
