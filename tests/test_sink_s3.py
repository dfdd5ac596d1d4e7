"""``export -o s3://bucket/key.zip`` as a user runs it, against a real S3 server (SeaweedFS)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from archive_check import check_archive
from cli_run import big_store

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    full = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    full.pop("DSEXPORT_STORE", None)
    return subprocess.run([sys.executable, "-m", "engine", *args], capture_output=True, env=full, timeout=120)


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """A local store with 12,000 random 2 KiB items: a 25 MB archive, several 8 MiB parts."""
    root = tmp_path_factory.mktemp("big") / "store"
    return root, *big_store(root, 12_000)


def test_the_archive_in_the_bucket_is_the_local_one_byte_for_byte(big, s3_env, tmp_path: Path):
    root, dataset_id, version_id = big
    bucket = s3_env.create_bucket()
    local = run("export", "--store", str(root), dataset_id, version_id, "-f", "folders", "-o", str(tmp_path / "a.zip"))
    remote = run("export", "--store", str(root), dataset_id, version_id, "-f", "folders", "-o", f"s3://{bucket}/out/a.zip")
    assert local.returncode == 0 and remote.returncode == 0, remote.stderr
    assert f"wrote s3://{bucket}/out/a.zip".encode() in remote.stderr
    got = tmp_path / "got.zip"
    s3_env.client().download_file(bucket, "out/a.zip", str(got))
    assert got.read_bytes() == (tmp_path / "a.zip").read_bytes()
    assert len(check_archive(got)) == 12_000
    assert s3_env.pending_uploads(bucket) == []


def test_ctrl_c_mid_upload_leaves_nothing_at_the_key_and_no_parts(big, s3_env):
    root, dataset_id, version_id = big
    bucket = s3_env.create_bucket()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine", "export", "--store", str(root), dataset_id, version_id, "-f", "folders",
         "-o", f"s3://{bucket}/a.zip"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not s3_env.pending_uploads(bucket):  # the first part is on its way
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signal.SIGINT, stderr
    assert b"Traceback" not in stderr
    assert s3_env.keys(bucket) == [] and s3_env.pending_uploads(bucket) == []


def test_wrong_credentials_fail_before_the_export_and_name_the_endpoint(big, s3_env):
    root, dataset_id, version_id = big
    done = run("export", "--store", str(root), dataset_id, version_id, "-f", "folders",
               "-o", f"s3://{s3_env.create_bucket()}/a.zip", env={"AWS_SECRET_ACCESS_KEY": "wrong"})  # fmt: skip
    text = done.stderr.decode()
    assert done.returncode == 2 and "Traceback" not in text, text
    assert s3_env.endpoint in text and "refused the credentials" in text


def test_an_output_url_without_an_object_name_is_refused(big, s3_env):
    root, dataset_id, version_id = big
    done = run("export", "--store", str(root), dataset_id, version_id, "-f", "folders", "-o", "s3://bucket/")
    assert done.returncode == 2 and b"name the object" in done.stderr and b"Traceback" not in done.stderr
