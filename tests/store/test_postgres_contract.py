"""The metadata contract suite (``engine.store.testing``) on a real PostgreSQL 15."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.store import LocalBlobs, open_blobs
from engine.store.postgres import PostgresStore
from engine.store.testing import MetadataStoreTests


class TestPostgresWithLocalBlobs(MetadataStoreTests):
    @pytest.fixture()
    def metadata_store(self, pg_url: str, tmp_path: Path):
        with PostgresStore.open_url(pg_url, create=True, files=LocalBlobs(tmp_path / "blobs")) as store:
            yield store


class TestPostgresWithS3Blobs(MetadataStoreTests):
    """Metadata in PostgreSQL, content in a bucket (SeaweedFS): small blobs packed, not inline."""

    @pytest.fixture()
    def metadata_store(self, pg_url: str, s3_env):
        files = open_blobs(f"s3://{s3_env.create_bucket()}/store")
        with PostgresStore.open_url(pg_url, create=True, files=files) as store:
            assert store.blobs.packed
            yield store
