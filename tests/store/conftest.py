"""Fixtures of the SQLite back-end tests: a store, an image dataset in it, and a store with content in a bucket."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.store import Store, open_store


@pytest.fixture()
def store(tmp_path: Path):
    with Store.open(tmp_path / "store") as opened:
        yield opened


@pytest.fixture()
def images(store: Store):
    """An image dataset with default splits and two labels."""
    ds = store.create_dataset("pets", "images", default_splits=True)
    version = ds.versions[0]
    train, valid, test = version.splits
    cats = store.create_label(version.id, "cats")
    dogs = store.create_label(version.id, "dogs")
    return version.id, (train, valid, test), (cats, dogs)



@pytest.fixture()
def s3_store(s3_env, tmp_path: Path):
    """A SQLite store whose content is in a fresh bucket of the session's SeaweedFS, under ``content/``."""
    bucket = s3_env.create_bucket()
    with open_store(tmp_path / "store", blobs=f"s3://{bucket}/content") as store:
        store.bucket = bucket
        yield store
