"""The S3 blob back end on a real S3 server (SeaweedFS): the blob and packs contract suites, and its faults."""

from __future__ import annotations

import pytest

from engine.errors import AuthenticationFailed, InvalidInput, MissingBlob, RemoteError
from engine.store.blobs.s3 import S3Blobs, S3Location
from engine.store.registry import open_blobs
from engine.store.testing import BlobStoreTests, PackedBlobsTests


class TestS3BlobStore(BlobStoreTests):
    @pytest.fixture()
    def blob_store(self, s3_env):
        return open_blobs(f"s3://{s3_env.create_bucket()}/some/prefix")


class TestS3Packs(PackedBlobsTests):
    @pytest.fixture()
    def packed_blobs(self, s3_env):
        return S3Blobs(S3Location.parse(f"s3://{s3_env.create_bucket()}/p"), pack_bytes=64 * 1024)


def test_large_blobs_are_one_object_each_under_the_prefix_and_no_upload_is_left(s3_env):
    bucket = s3_env.new_bucket()
    blobs = open_blobs(f"s3://{bucket}/store")
    ref = blobs.put([b"L" * (9 << 20), b"M" * 100])  # more than one multipart part
    assert s3_env.keys(bucket) == [f"store/blobs/{ref.sha256[:2]}/{ref.sha256}"]  # the temporary object is gone
    assert s3_env.pending_uploads(bucket) == []


def test_a_failed_put_leaves_no_object_and_no_upload(s3_env):
    bucket = s3_env.new_bucket()
    blobs = open_blobs(f"s3://{bucket}/store")
    blobs.put([b"first"])

    def broken():
        yield b"x" * (9 << 20)
        raise OSError("source went away")

    with pytest.raises(OSError, match="went away"):
        blobs.put(broken())
    assert len(s3_env.keys(bucket)) == 1 and s3_env.pending_uploads(bucket) == []


def test_an_aborted_pack_leaves_no_upload(s3_env):
    bucket = s3_env.new_bucket()
    blobs = S3Blobs(S3Location.parse(f"s3://{bucket}"), pack_bytes=64 << 20)
    blobs.put([b"make the bucket"])
    with pytest.raises(KeyboardInterrupt):
        with blobs.pack_writer() as writer:
            for n in range(30):
                writer.add(bytes([n]) * 60_000)
            writer.add(b"z" * (9 << 20))  # past one 8 MiB part: the multipart upload has begun
            raise KeyboardInterrupt
    assert s3_env.pending_uploads(bucket) == [] and blobs.list_packs() == {}


def test_wrong_credentials_name_the_endpoint(s3_env, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    blobs = open_blobs(f"s3://{s3_env.new_bucket()}/x")
    with pytest.raises(AuthenticationFailed, match=s3_env.endpoint.replace(".", r"\.")):
        blobs.put([b"data"])


def test_a_missing_object_names_the_item(s3_env):
    blobs = open_blobs(f"s3://{s3_env.new_bucket()}/x")
    ref = blobs.put([b"here"])
    blobs.delete(ref.sha256)
    with pytest.raises(MissingBlob, match="item it-42.*no object s3://"):
        blobs.open(ref, "it-42").read()


def test_an_unreachable_endpoint_is_a_remote_error(monkeypatch, s3_env):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # discard port: nothing listens
    blobs = open_blobs("s3://bucket/x")
    with pytest.raises(RemoteError, match="127.0.0.1:9"):
        blobs.put([b"data"])


def test_a_missing_bucket_is_named(s3_env):
    blobs = S3Blobs.from_url(f"s3://{s3_env.new_bucket('absent')}/x")
    with pytest.raises(InvalidInput, match="no bucket 'absent-.*create it first"):
        blobs.list_packs()


@pytest.mark.parametrize("url", ["s3://", "s3:///prefix"])
def test_a_bad_url_names_the_form(url):
    with pytest.raises(InvalidInput, match="s3://BUCKET"):
        open_blobs(url)
