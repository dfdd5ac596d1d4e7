"""Exports from PostgreSQL: byte-identical to SQLite's of the same data, and one consistent state while edits go on."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from engine.demo import create_demo
from engine.errors import InvalidInput
from engine.pipeline import ExportOptions, run_export
from engine.sinks import FileSink
from engine.sources import ReaderSource
from engine.store import INLINE_LIMIT, LocalBlobs, NewItem, PageContent, Store
from engine.store.postgres import PostgresStore
from formats import FORMATS
from postgres import load_sqlite_tables


def _noise_png(side: int) -> bytes:
    import random

    from PIL import Image

    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), random.Random(side).randbytes(side * side * 3)).save(out, "PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def both(postgres, tmp_path_factory):
    """The demo datasets (plus an item with a large blob in each image dataset) in SQLite and, copied row by row, in PostgreSQL."""
    folder = tmp_path_factory.mktemp("both")
    with Store.open(folder / "store") as sqlite:
        made = create_demo(sqlite, items=30, seed=1)
        for images in (d for d in made if d.content_type == "images"):
            split = sqlite.splits(images.version_id)[0]
            big = _noise_png(200)  # a real image over INLINE_LIMIT: kept in the blob store, not inline
            assert len(big) > INLINE_LIMIT
            sqlite.add_items(images.version_id, [NewItem(name="big", extension="png", split_ids=[split.id], data=big)])
    url = postgres.new_database("exports")
    PostgresStore.open_url(url, create=True, files=LocalBlobs(folder / "store" / "blobs")).close()
    load_sqlite_tables(folder / "store" / "store.sqlite3", url)
    sqlite = Store.open(folder / "store", create=False)
    pg = PostgresStore.open_url(url, files=LocalBlobs(folder / "store" / "blobs"))
    yield sqlite, pg, made
    sqlite.close()
    pg.close()


def _export(store, d, fmt: str, out: Path, split: str | None = None) -> bytes:  # noqa: ANN001
    with store.reader() as reader:
        run_export(
            lambda: ReaderSource(reader, page_size=7), d.dataset_id, d.version_id, FileSink(out),
            ExportOptions(format=fmt, split=split),
        )
    return out.read_bytes()


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_format_exports_the_same_bytes_from_postgresql_as_from_sqlite(both, fmt: str, tmp_path: Path) -> None:
    sqlite, pg, made = both
    compared, big_seen = 0, False
    for d in made:
        for split in (None, sqlite.splits(d.version_id)[0].name if sqlite.splits(d.version_id) else None):
            if d.content_type not in FORMATS[fmt].content_types:
                continue
            expected = _export(sqlite, d, fmt, tmp_path / f"s-{d.name}-{split}.zip", split)
            got = _export(pg, d, fmt, tmp_path / f"p-{d.name}-{split}.zip", split)
            assert got == expected, f"{fmt} export of {d.name} (split {split}) differs"
            with zipfile.ZipFile(io.BytesIO(got)) as archive:
                assert archive.testzip() is None and archive.namelist()
                sizes = [info.file_size for info in archive.infolist()]
            compared += 1
            big_seen = big_seen or max(sizes) >= INLINE_LIMIT
    assert compared >= 2 and big_seen == (fmt != "csv" and fmt != "spacy-ner")


class _EditsAfterFirstPage:
    """A reader whose page iteration lets ``edit`` run (and commit) once the first page is out."""

    def __init__(self, reader, edit) -> None:  # noqa: ANN001
        self._reader, self._edit = reader, edit

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self._reader, name)

    def iter_pages(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201
        pages = self._reader.iter_pages(*args, **kwargs)

        def edited():  # noqa: ANN202
            for n, page in enumerate(pages):
                yield page
                if n == 0:
                    self._edit()

        return edited()


def test_an_export_reads_one_state_while_another_client_edits_the_version(postgres, tmp_path: Path) -> None:
    url = postgres.new_database("edits")
    with PostgresStore.open_url(url, create=True, files=LocalBlobs(tmp_path / "blobs")) as store:
        made = create_demo(store, items=30, seed=2)
        d = next(d for d in made if d.format == "folders")
        before = _export(store, d, "folders", tmp_path / "before.zip")
        split = store.splits(d.version_id)[0]
        labels = store.labels(d.version_id)
        victims = [item.id for page in store.iter_pages(d.version_id, content=PageContent.NONE) for item in page]

        def edit() -> None:  # another client, on its own connections
            with PostgresStore.open_url(url, files=LocalBlobs(tmp_path / "blobs")) as other:
                other.add_items(d.version_id, [NewItem(name=f"late{i}", split_ids=[split.id], data=b"x") for i in range(5)])
                other.delete_item(victims[-1])
                other.update_label(d.version_id, labels[0].id, name="renamed", description="", color="", index=None, shortcut="")

        with store.reader() as reader:
            run_export(
                lambda: ReaderSource(_EditsAfterFirstPage(reader, edit), page_size=4), d.dataset_id, d.version_id,
                FileSink(tmp_path / "during.zip"), ExportOptions(format="folders"),
            )
        after = _export(store, d, "folders", tmp_path / "after.zip")
    assert (tmp_path / "during.zip").read_bytes() == before  # the state the export started from, whole
    assert after != before
    with zipfile.ZipFile(tmp_path / "after.zip") as archive:
        assert any("renamed" in name for name in archive.namelist())


def test_an_archive_imports_into_postgresql_all_or_nothing(both, tmp_path: Path) -> None:
    from engine.importer import import_archive

    sqlite, pg, made = both
    for d in made:
        archive = _export(pg, d, d.format, tmp_path / f"{d.name}.zip")
        target = pg.create_version(d.dataset_id, f"imported-{d.name}").id or ""
        with open(tmp_path / f"{d.name}.zip", "rb") as f:
            import_archive(pg, target, f, d.format)
        assert pg.count_items(target) == pg.count_items(d.version_id), d.name
        again = tmp_path / f"{d.name}-again.zip"
        with pg.reader() as reader:
            run_export(lambda: ReaderSource(reader), d.dataset_id, target, FileSink(again), ExportOptions(format=d.format))
        with zipfile.ZipFile(io.BytesIO(archive)) as one, zipfile.ZipFile(again) as other:
            # The same entries (some formats name files by version id, so compare sizes, not names).
            assert other.testzip() is None
            assert sorted(i.file_size for i in one.infolist()) == sorted(i.file_size for i in other.infolist()), d.name
    news = next(d for d in made if d.content_type == "ner")
    before = (pg.revision(news.version_id), pg.count_items(news.version_id), len(pg.labels(news.version_id)))
    docs = b'[{"id": "a", "name": "a", "text": "short", "annotations": [{"start": 2, "end": 99, "label": "NEWLABEL"}]}]'
    bad = io.BytesIO()
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("config.json", '{"splits": ["brand-new"], "colors": {}}')
        z.writestr("brand-new.json", docs)
    with pytest.raises(InvalidInput):
        import_archive(pg, news.version_id, io.BytesIO(bad.getvalue()), "spacy-ner")
    after = (pg.revision(news.version_id), pg.count_items(news.version_id), len(pg.labels(news.version_id)))
    assert after == before and "brand-new" not in [s.name for s in pg.splits(news.version_id)]
