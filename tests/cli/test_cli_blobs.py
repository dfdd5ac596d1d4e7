"""``--blobs`` and ``$DSEXPORT_BLOBS``: a store whose content lives somewhere other than its folder."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import msgspec
from cli_run import dsexport

from engine.store import StoreAddress


def _demo(store: Path, blobs: Path) -> dict[str, tuple[str, str]]:
    """The demo datasets plus a "large" one whose content is too big to be kept inline."""
    made = dsexport("demo", "--store", str(store), "--blobs", str(blobs), "--items", "6", "--json")
    assert made.returncode == 0, made.stderr
    ids = {d["name"]: (d["dataset_id"], d["version_id"]) for d in msgspec.json.decode(made.stdout)}
    with StoreAddress(str(store), str(blobs)).open() as opened:
        ds = opened.create_dataset("large", "images")
        version = ds.versions[0]
        for n in range(3):
            opened.create_item(version.id, name=f"big{n}", extension="bin", blob=opened.put_blob(os.urandom(100_000)))
    return {**ids, "large": (ds.id or "", version.id or "")}


def test_content_goes_where_blobs_says_and_every_command_reads_it_from_there(tmp_path: Path):
    store, blobs = tmp_path / "meta", tmp_path / "content"
    ids = _demo(store, blobs)
    assert any(p.is_file() for p in blobs.rglob("*")), "large content was written to --blobs"
    assert not any(p.is_file() for p in (store / "blobs").rglob("*"))

    out = tmp_path / "large.zip"
    ok = dsexport("export", "--store", str(store), "--blobs", str(blobs), *ids["large"], "-f", "folders", "-o", str(out))
    assert ok.returncode == 0, ok.stderr
    with zipfile.ZipFile(out) as zf:
        assert zf.testzip() is None and sorted(i.file_size for i in zf.infolist() if i.file_size) == [100_000] * 3
    listed = dsexport("datasets", "--store", str(store), "--blobs", str(blobs), "--json")
    assert listed.returncode == 0 and b'"large"' in listed.stdout

    env_out = tmp_path / "large-env.zip"
    env = {**os.environ, "DSEXPORT_BLOBS": str(blobs)}
    import subprocess
    import sys

    by_env = subprocess.run(
        [sys.executable, "-m", "engine", "export", "--store", str(store), *ids["large"], "-f", "folders", "-o", str(env_out)],
        capture_output=True, env=env, timeout=120,
    )  # fmt: skip
    assert by_env.returncode == 0, by_env.stderr
    assert env_out.read_bytes() == out.read_bytes()


def test_without_its_blobs_a_store_names_the_item_whose_content_is_missing(tmp_path: Path):
    store, blobs = tmp_path / "meta", tmp_path / "content"
    ids = _demo(store, blobs)
    out = tmp_path / "large.zip"
    failed = dsexport("export", "--store", str(store), *ids["large"], "-f", "folders", "-o", str(out))
    assert failed.returncode == 2
    assert b"item " in failed.stderr and b"missing" in failed.stderr and b"Traceback" not in failed.stderr
    assert not out.exists() and not list(tmp_path.glob("*.partial"))


def test_blobs_cannot_be_combined_with_an_export_from_an_api(tmp_path: Path):
    failed = dsexport("export", "--from", "http://127.0.0.1:9/api/v1/", "--blobs", str(tmp_path), "d", "v", "-f", "csv")
    assert failed.returncode == 2 and b"--store/--blobs" in failed.stderr


def test_serve_takes_blobs_and_its_downloads_match_the_cli_export(tmp_path: Path):
    import httpx
    from servers import Server, make_user

    store, blobs = tmp_path / "meta", tmp_path / "content"
    ids = _demo(store, blobs)
    key = make_user(store, "alice")
    with StoreAddress(str(store)).open() as opened:
        opened.give_datasets("alice")
    out = tmp_path / "large.zip"
    assert dsexport("export", "--store", str(store), "--blobs", str(blobs), *ids["large"], "-f", "folders",
                    "-o", str(out)).returncode == 0  # fmt: skip
    srv = Server(store, blobs=str(blobs))
    try:
        dataset_id, version_id = ids["large"]
        reply = httpx.get(
            f"{srv.base}datasets/{dataset_id}/versions/{version_id}/download?format=folders",
            headers={"Authorization": f"Bearer {key}"}, timeout=60,
        )  # fmt: skip
        assert reply.status_code == 200, reply.text
        assert reply.content == out.read_bytes()
    finally:
        srv.stop()
