"""Fixtures of the SQLite back-end tests: a store, and an image dataset in it."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.store import Store


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

