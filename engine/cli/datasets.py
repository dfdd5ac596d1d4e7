"""``dsexport demo``, ``init`` and ``datasets``: make a store, fill it with demo data, list what it holds."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from engine.cli.common import (
    BlobsOption,
    JsonOption,
    StoreOption,
    err,
    open_store,
    out_console,
    store_address,
    user_errors,
    write_json,
)
from engine.cli.progress import progress_bar
from engine.cli.tables import IdRow, ids_table
from engine.errors import NotFound
from engine.store import MetadataStore

if TYPE_CHECKING:
    from engine.demo import DemoDataset

__all__ = ["datasets", "demo", "init"]


def demo(
    store: StoreOption = None,
    blobs: BlobsOption = None,
    items: Annotated[int, typer.Option(min=1, help="Items per dataset.")] = 40,
    seed: Annotated[int, typer.Option(help="Seed of the generated content.")] = 0,
    force: Annotated[bool, typer.Option("--force", help="Add another set to a store that has the demo datasets.")] = False,
    json: JsonOption = False,
) -> None:
    """Create one demo dataset of each kind (and the store, if absent) and print their ids."""
    with user_errors(), open_store(store, blobs, create=True) as opened:
        made = _make_demo(opened, items=items, seed=seed, force=force, show_progress=err.is_terminal)
    if json:
        write_json(made)
        return
    out = out_console()
    rows = [IdRow(d.name, d.dataset_id, d.version_id, before_ids=[d.content_type, d.format]) for d in made]
    out.print(ids_table(out, ["content", "format"], [], rows))


def _make_demo(store: MetadataStore, *, items: int, seed: int, force: bool, show_progress: bool) -> list[DemoDataset]:
    """The demo datasets, with a bar (items made, rate, ETA) if asked: a large --items takes minutes."""
    from engine.demo import create_demo, demo_names

    if not show_progress:
        return create_demo(store, items=items, seed=seed, force=force)
    with progress_bar(err, with_bytes=False) as bar:
        task = bar.add_task("demo", total=items * len(demo_names()))

        def on_progress(name: str, made: int) -> None:
            bar.update(task, completed=made, description=f"demo {name}")

        return create_demo(store, items=items, seed=seed, force=force, progress=on_progress)


def init(store: StoreOption = None, blobs: BlobsOption = None) -> None:
    """Create an empty store (for `serve`, `user create` and `import`); `demo` creates one with data.

    On a store of an older schema, migrate it.
    """
    address = store_address(store, blobs)
    with user_errors():
        try:
            address.open(create=False).close()
        except NotFound:
            address.open(create=True).close()
            err.print(f"created an empty store at {address.display()}", highlight=False)
        else:
            err.print(f"a store exists at {address.display()} already; left as it is", highlight=False)


def datasets(store: StoreOption = None, blobs: BlobsOption = None, json: JsonOption = False) -> None:
    """List datasets, their versions, splits and item counts."""
    with user_errors(), open_store(store, blobs, create=False) as opened:
        rows = [
            {
                "dataset_id": ds.id,
                "name": ds.name,
                "content_type": ds.content_type,
                "version_id": v.id,
                "version": v.name,
                "splits": {s.name: opened.count_items(v.id or "", s.id) for s in opened.splits(v.id or "")},
                "items": opened.count_items(v.id or ""),
            }
            for ds in opened.list_datasets()
            for v in ds.versions
        ]
    if json:
        write_json(rows)
        return
    out = out_console()
    table_rows = [
        IdRow(
            r["name"], r["dataset_id"], r["version_id"], before_ids=[r["content_type"]],
            after_ids=[", ".join(f"{k}: {n}" for k, n in r["splits"].items()), str(r["items"])],
        )
        for r in rows
    ]
    out.print(ids_table(out, ["content"], ["splits", "items"], table_rows))
