"""The page reader process: the same pages and archives as reading in-process, and a clean stop."""

from __future__ import annotations

import os
import signal
import sqlite3
from pathlib import Path

import pytest
from archive_check import check_archive

from engine.demo import DemoDataset, create_demo
from engine.errors import ContentError, InvalidInput, MissingBlob, NotFound
from engine.pipeline import ExportOptions, run_export
from engine.sinks import FileSink
from engine.sources import PAGE_PROCESS_VARIABLE, StoreSource, page_process_threshold
from engine.store import INLINE_LIMIT, NewItem, PageContent, Store, StoreReader
from engine.store.sqlite.page_process import FRAME_BYTES
from formats import FORMATS

READER_MODULE = "engine.store.sqlite.page_process"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("page-process-store")
    with Store.open(root) as store:
        made = create_demo(store, items=24, seed=5)
        made.append(_loose(store))
    return root, made


def _loose(store: Store) -> DemoDataset:
    """Items in no split, in two splits, with two labels: the shapes the demo does not have."""
    dataset = store.create_dataset("loose", "images", default_splits=True)
    version = dataset.versions[0]
    train, valid = (store.resolve_split(version.id, name).id for name in ("train", "valid"))
    cat, dog = (store.create_label(version.id, name).id for name in ("cat", "dog"))
    store.add_items(version.id, [
        *(NewItem(name=f"alone{n}", extension="png", data=os.urandom(64 + n)) for n in range(6)),
        *(NewItem(name=f"both{n}", extension="png", split_ids=[train, valid], data=os.urandom(300),
                  annotations=[(cat, train, ""), (dog, train, ""), (dog, valid, "")]) for n in range(6)),
    ])
    return DemoDataset(dataset.id, version.id, "loose", "images", "folders")


def _readers_of_this_process() -> list[int]:
    """PIDs of this process's live page reader children (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        state = stat.rsplit(")", 1)[1].split()[0]
        if parent == os.getpid() and READER_MODULE in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def _comparable(pages) -> list[tuple]:
    """Every field of every item; a blob file by its path, size and CRC-32 (objects differ, files do not)."""
    out = []
    for page in pages:
        for item in page:
            content = item.content
            if content is not None and not isinstance(content, bytes):
                content = (type(content).__name__, str(getattr(content, "path", "")), content.size, content.crc32)
            annotations = [(a.label.id, a.label.name, a.coordinates) for a in item.annotations]
            split = None if item.split is None else item.split.id
            out.append((item.id, item.name, item.extension, item.text, split, annotations, content, item.width, item.height))
    return out


def test_pages_from_the_reader_process_equal_the_pages_read_here(demo):
    root, made = demo
    reader = StoreReader.open(root)
    try:
        for d in made:
            first_split = reader.splits(d.version_id)[0].id
            for content, splits, start, stop in (
                (PageContent.BYTES, None, 0, None),
                (PageContent.NONE, None, 3, 17),
                (PageContent.SIZES, [first_split], 0, None),
            ):
                here = reader.iter_pages(d.version_id, splits, content=content, page_size=4, start=start, stop=stop)
                expected = _comparable(here)
                assert expected, d.name
                there = reader.iter_pages_in_process(
                    d.version_id, splits, content=content, page_size=4, start=start, stop=stop
                )
                assert _comparable(there) == expected, (d.name, content, start, stop)
    finally:
        reader.close()


def test_every_format_is_byte_identical_through_the_reader_process(demo, tmp_path: Path):
    root, made = demo
    exported = 0
    for d in made:
        for name, format_cls in FORMATS.items():
            if d.content_type not in format_cls.content_types:
                continue
            options = ExportOptions(format=name, skip_missing=True)
            here, there = tmp_path / f"{d.name}-{name}-here.zip", tmp_path / f"{d.name}-{name}-there.zip"
            run_export(lambda: StoreSource(root, page_process_from=10**9), d.dataset_id, d.version_id, FileSink(here), options)
            source = StoreSource(root, page_process_from=0)
            run_export(lambda: source, d.dataset_id, d.version_id, FileSink(there), options)
            assert source.page_reader_peak_rss_kib, "the export did not go through a page reader"
            assert there.read_bytes() == here.read_bytes(), (d.name, name)
            exported += 1
    assert exported >= len(made)
    check_archive(there)


def test_closing_the_pages_early_stops_the_reader(demo):
    root, made = demo
    reader = StoreReader.open(root)
    try:
        pages = reader.iter_pages_in_process(made[0].version_id, content=PageContent.BYTES, page_size=1)
        assert next(pages)
        assert len(_readers_of_this_process()) == 1
        pages.close()
        assert _readers_of_this_process() == []
    finally:
        reader.close()


def test_a_reader_that_dies_is_a_clear_error(tmp_path: Path):
    root = tmp_path / "store"
    with Store.open(root) as store:  # more rows than the pipe and the reader's buffer hold: it is still writing
        version = store.create_dataset("many", "images", default_splits=True).versions[0]
        train = store.resolve_split(version.id, "train")
        store.add_items(version.id, (NewItem(name=f"i{n}", extension="bin", split_ids=[train.id], data=os.urandom(1024))
                                     for n in range(4000)))
    reader = StoreReader.open(root)
    try:
        pages = reader.iter_pages_in_process(version.id, content=PageContent.BYTES, page_size=1)
        assert next(pages)
        [pid] = _readers_of_this_process()
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(ContentError, match=r"page reader stopped .*exit status -9"):
            for _ in pages:
                pass
        assert _readers_of_this_process() == []
    finally:
        reader.close()


def test_a_store_the_reader_cannot_open_fails_the_export_and_leaves_nothing(tmp_path: Path):
    root = tmp_path / "store"
    with Store.open(root) as store:
        [d, *_] = create_demo(store, items=4, seed=1)
    out = tmp_path / "out.zip"
    source = StoreSource(root, page_process_from=0)

    def planned(plan) -> None:  # the plan is read; now the reader process finds no store
        (root / "store.sqlite3").rename(tmp_path / "moved.sqlite3")

    with pytest.raises(NotFound, match=f"no store at {root}"):
        run_export(lambda: source, d.dataset_id, d.version_id, FileSink(out), ExportOptions(format=d.format),
                   on_plan=planned)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["moved.sqlite3", "store"]  # no archive, no temporary file
    assert _readers_of_this_process() == []


def test_an_unknown_version_is_not_found_before_a_reader_starts(demo):
    root, _ = demo
    reader = StoreReader.open(root)
    try:
        with pytest.raises(NotFound):
            reader.iter_pages_in_process("nope", content=PageContent.NONE)
        assert _readers_of_this_process() == []
    finally:
        reader.close()


@pytest.mark.parametrize("raw, expected", [("", 50_000), ("0", 0), ("1000", 1000)])
def test_the_threshold_variable(monkeypatch, raw: str, expected: int):
    monkeypatch.setenv(PAGE_PROCESS_VARIABLE, raw)
    assert page_process_threshold() == expected


@pytest.mark.parametrize("raw", ["-1", "many", "1.5"])
def test_a_bad_threshold_names_the_variable_and_the_choices(monkeypatch, raw: str):
    monkeypatch.setenv(PAGE_PROCESS_VARIABLE, raw)
    with pytest.raises(InvalidInput, match=f"{PAGE_PROCESS_VARIABLE} must be a whole number.*0: always"):
        StoreSource("anywhere")


def _content_store(store) -> str:
    """A version with content of every kind a page row can hold: none, inline, a file (or a pack)."""
    version = store.create_dataset("kinds", "images", default_splits=True).versions[0]
    train = store.resolve_split(version.id, "train").id
    store.add_items(version.id, [
        NewItem(name="empty", extension="png", split_ids=[train]),
        *(NewItem(name=f"small{n}", extension="png", split_ids=[train], data=os.urandom(100 + n)) for n in range(5)),
        *(NewItem(name=f"big{n}", extension="png", split_ids=[train], data=os.urandom(200_000 + n)) for n in range(3)),
    ])
    return version.id


def test_every_kind_of_content_comes_through_the_reader_process(store):
    version_id = _content_store(store)
    reader = store.reader()
    try:
        here = _comparable(reader.iter_pages(version_id, content=PageContent.BYTES, page_size=3))
        kinds = {type(c).__name__ if not isinstance(c, tuple) else c[0] for *_, c, _w, _h in here}
        assert kinds == {"NoneType", "bytes", "BlobFile"}, kinds
        assert _comparable(reader.iter_pages_in_process(version_id, content=PageContent.BYTES, page_size=3)) == here
    finally:
        reader.close()


def test_packed_content_comes_through_the_reader_process(s3_store):
    version_id = _content_store(s3_store)
    reader = s3_store.reader()
    try:
        here = [(i.id, i.content if isinstance(i.content, bytes) else None if i.content is None else i.content.read())
                for page in reader.iter_pages(version_id, content=PageContent.BYTES, page_size=3) for i in page]
        assert sum(isinstance(c, bytes) for _, c in here) == 8
        there = [(i.id, i.content if isinstance(i.content, bytes) else None if i.content is None else i.content.read())
                 for page in reader.iter_pages_in_process(version_id, content=PageContent.BYTES, page_size=3)
                 for i in page]
        assert there == here
    finally:
        reader.close()


def test_a_corrupt_inline_blob_is_the_same_error_through_the_reader_process(store):
    version_id = _content_store(store)
    with sqlite3.connect(store.root / "store.sqlite3") as db:  # bytes lost on disk, behind the store's back
        assert db.execute("UPDATE blobs SET data = substr(data, 1, 10) WHERE size = 102").rowcount == 1
    reader = store.reader()
    try:
        errors = []
        for iterate in (reader.iter_pages, reader.iter_pages_in_process):
            with pytest.raises(MissingBlob) as caught:
                list(iterate(version_id, content=PageContent.BYTES, page_size=3))
            errors.append(str(caught.value))
        assert errors[0] == errors[1]
        assert "is corrupt (10 bytes inline, expected 102)" in errors[0]
    finally:
        reader.close()


def test_pages_join_into_frames_of_bounded_bytes(store):
    """Small pages join into frames of one split; a frame holds at most FRAME_BYTES of content."""
    version = store.create_dataset("heavy", "images", default_splits=True).versions[0]
    train, valid = (store.resolve_split(version.id, name).id for name in ("train", "valid"))
    size = INLINE_LIMIT - 1
    count = FRAME_BYTES // size + 40  # more than a frame holds
    store.add_items(version.id, [
        *(NewItem(name=f"t{n}", extension="bin", split_ids=[train], data=os.urandom(size)) for n in range(count)),
        NewItem(name="v", extension="bin", split_ids=[valid], data=b"v"),
    ])
    reader = store.reader()
    try:
        pages = list(reader.iter_pages_in_process(version.id, content=PageContent.BYTES, page_size=16))
        assert [len({i.split.id for i in page}) for page in pages] == [1] * len(pages)
        assert [page[0].split.id for page in pages] == [train] * (len(pages) - 1) + [valid]
        assert len(pages) >= 3
        assert max(sum(len(i.content) for i in page) for page in pages) <= FRAME_BYTES
        assert _comparable(pages) == _comparable(reader.iter_pages(version.id, content=PageContent.BYTES))
    finally:
        reader.close()


def test_a_source_told_not_to_reads_its_pages_itself(demo, tmp_path: Path):
    root, made = demo
    d = made[0]
    source = StoreSource(root, page_process_from=0, page_process=False)
    run_export(lambda: source, d.dataset_id, d.version_id, FileSink(tmp_path / "a.zip"), ExportOptions(format=d.format))
    assert source.page_reader_peak_rss_kib is None
    assert check_archive(tmp_path / "a.zip")
