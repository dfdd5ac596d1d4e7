"""The app state: archive sizes come from the store's own table, and a size learnt is seen at once."""

from __future__ import annotations

import anyio

from engine.server.state import AppState
from engine.store import StoreAddress
from engine.store import Store


def test_sizes_live_in_the_store_and_survive_a_restart(tmp_path):
    state = AppState(StoreAddress.of(tmp_path))
    ds = state.store.create_dataset("d", "text", default_splits=False)
    v = ds.versions[0].id
    assert state.size_of('"a"') is None
    anyio.run(state.remember_size, '"a"', v, 1, 1234)
    assert state.size_of('"a"') == 1234
    state.close()
    with Store.open(tmp_path, create=False) as store:
        assert store.archive_size('"a"') == 1234
    again = AppState(StoreAddress.of(tmp_path))
    assert again.size_of('"a"') == 1234
    anyio.run(again.remember_size, '"b"', v, 2, 99)  # a newer revision drops the older sizes
    assert again.size_of('"a"') is None and again.size_of('"b"') == 99
    again.close()


def test_a_learnt_size_is_known_before_the_store_has_it(tmp_path):
    state = AppState(StoreAddress.of(tmp_path))
    state.learn_size('"c"', 42)
    assert state.size_of('"c"') == 42
    assert state.store.archive_size('"c"') is None
    state.close()
