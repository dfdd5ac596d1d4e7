"""The contract suites every store back end passes (the pattern of zarr-python's ``testing/store.py``).

A back end's test module subclasses :class:`MetadataStoreTests` (and gives
a ``metadata_store`` fixture: an open, empty store) or :class:`BlobStoreTests`
(a ``blob_store`` fixture: an empty blob store). The tests use only the
interfaces of ``engine.store.api``: no SQL, no private names; what is
specific to one back end is tested beside it (``tests/store/test_sqlite_*``).

Importing this module needs pytest (a test dependency).
"""

from __future__ import annotations

import threading
import zlib

import pytest

from engine.errors import InvalidInput, MissingBlob, NotFound
from engine.model import ContentType
from engine.store.api import (
    INLINE_LIMIT,
    BlobRef,
    BlobStore,
    MetadataStore,
    NewItem,
    PackedBlobs,
    PageContent,
)

__all__ = ["BlobStoreTests", "MetadataStoreTests", "PackedBlobsTests"]


def _image(kind: str, size: tuple[int, int], *, noise: bool = False) -> bytes:
    """A real image file of ``size`` (random pixels when ``noise``, so it does not compress)."""
    import io
    import random

    from PIL import Image

    pixels = random.Random(7).randbytes(size[0] * size[1] * 3) if noise else bytes(size[0] * size[1] * 3)
    out = io.BytesIO()
    Image.frombytes("RGB", size, pixels).save(out, kind)
    return out.getvalue()


def _occurrences(pages) -> list[tuple[str, str | None]]:  # noqa: ANN001
    return [(item.name, item.split.name if item.split else None) for page in pages for item in page]


class BlobStoreTests:
    """What every :class:`~engine.store.api.BlobStore` does. Subclasses provide ``blob_store``."""

    @pytest.fixture()
    def blob_store(self) -> BlobStore:
        raise NotImplementedError("a back end's test class provides the blob_store fixture")

    def test_is_a_blob_store(self, blob_store: BlobStore) -> None:
        assert isinstance(blob_store, BlobStore)

    @pytest.mark.parametrize("size", [0, 1, INLINE_LIMIT, 3 * 1024 * 1024 + 7])
    def test_put_then_open_gives_the_bytes_back_again_and_again(self, blob_store: BlobStore, size: int) -> None:
        data = bytes(range(251)) * (size // 251) + bytes(size % 251)
        ref = blob_store.put(data[i : i + 65_536] for i in range(0, len(data), 65_536))
        assert ref == BlobRef.of(data)
        assert blob_store.exists(ref.sha256)
        blob = blob_store.open(ref, "item-1")
        assert (blob.size, blob.crc32) == (size, zlib.crc32(data))
        assert b"".join(blob.chunks()) == data
        assert b"".join(blob.chunks()) == data  # re-readable

    def test_putting_the_same_content_again_is_harmless(self, blob_store: BlobStore) -> None:
        first = blob_store.put([b"same" * 30_000])
        assert blob_store.put([b"same" * 15_000, b"same" * 15_000]) == first
        assert b"".join(blob_store.open(first, "x").chunks()) == b"same" * 30_000

    def test_unknown_content_does_not_exist(self, blob_store: BlobStore) -> None:
        assert not blob_store.exists("0" * 64)

    def test_delete_removes_and_reading_then_names_the_item(self, blob_store: BlobStore) -> None:
        ref = blob_store.put([b"gone" * 1000])
        opened = blob_store.open(ref, "item-7")
        blob_store.delete(ref.sha256)
        blob_store.delete(ref.sha256)  # absent content is not an error
        assert not blob_store.exists(ref.sha256)
        with pytest.raises(MissingBlob, match="item item-7") as caught:
            b"".join(opened.chunks())
        assert caught.value.item_id == "item-7"

    def test_a_failed_put_leaves_no_blob(self, blob_store: BlobStore) -> None:
        def broken():
            yield b"partial" * 20_000
            raise OSError("source went away")

        with pytest.raises(OSError, match="went away"):
            blob_store.put(broken())
        assert not blob_store.exists(BlobRef.of(b"partial" * 20_000).sha256)

    def test_puts_from_many_threads(self, blob_store: BlobStore) -> None:
        datas = [bytes([n]) * (100_000 + n) for n in range(8)]
        refs: list[BlobRef | None] = [None] * len(datas)

        def put(n: int) -> None:
            refs[n] = blob_store.put([datas[n]])

        threads = [threading.Thread(target=put, args=(n,)) for n in range(len(datas))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for data, ref in zip(datas, refs):
            assert ref is not None and b"".join(blob_store.open(ref, "x").chunks()) == data


class PackedBlobsTests:
    """What a blob store with the packs capability does. Subclasses provide ``packed_blobs``
    whose packs roll over at 64 KiB (so a test can fill several)."""

    @pytest.fixture()
    def packed_blobs(self) -> PackedBlobs:
        raise NotImplementedError("a back end's test class provides the packed_blobs fixture")

    def test_has_the_capability(self, packed_blobs: PackedBlobs) -> None:
        assert isinstance(packed_blobs, PackedBlobs)

    def test_added_blobs_read_back_by_slot_in_any_order(self, packed_blobs: PackedBlobs) -> None:
        datas = [bytes([n]) * (n * 97 + 1) for n in range(200)]  # about 1.9 MiB: several 64 KiB packs
        with packed_blobs.pack_writer() as writer:
            slots = [writer.add(data) for data in datas]
        packs = list(dict.fromkeys(slot.pack for slot in slots))
        assert len(packs) > 1 and set(packs) <= set(packed_blobs.list_packs())
        first = [s for s in slots if s.pack == packs[0]]
        assert [s.offset for s in first] == [sum(x.size for x in first[:n]) for n in range(len(first))]  # appended
        assert [s.size for s in slots] == [len(d) for d in datas]
        order = list(range(len(datas)))[::-7] + [0, 0]
        got = packed_blobs.read_packed([slots[n] for n in order], [f"item-{n}" for n in order])
        assert got == [datas[n] for n in order]

    def test_a_pack_is_visible_only_when_sealed(self, packed_blobs: PackedBlobs) -> None:
        before = set(packed_blobs.list_packs())
        writer = packed_blobs.pack_writer()
        slot = writer.add(b"pending" * 10)
        assert slot.pack not in packed_blobs.list_packs()
        assert writer.seal() == [slot.pack]
        assert set(packed_blobs.list_packs()) - before == {slot.pack}
        assert packed_blobs.read_packed([slot], ["i"]) == [b"pending" * 10]

    def test_an_error_inside_the_writer_leaves_no_pack(self, packed_blobs: PackedBlobs) -> None:
        before = set(packed_blobs.list_packs())
        with pytest.raises(RuntimeError, match="ingest failed"):
            with packed_blobs.pack_writer() as writer:
                for n in range(40):
                    writer.add(bytes([n]) * 4000)  # 160 KB: some packs were sealed already
                raise RuntimeError("ingest failed")
        assert set(packed_blobs.list_packs()) == before

    def test_a_deleted_pack_names_the_item_when_read(self, packed_blobs: PackedBlobs) -> None:
        with packed_blobs.pack_writer() as writer:
            slot = writer.add(b"soon gone")
        packed_blobs.delete_pack(slot.pack)
        packed_blobs.delete_pack(slot.pack)  # absent is not an error
        with pytest.raises(MissingBlob, match="item item-9") as caught:
            packed_blobs.read_packed([slot], ["item-9"])
        assert caught.value.item_id == "item-9"


class MetadataStoreTests:
    """What every :class:`~engine.store.api.MetadataStore` does. Subclasses provide ``metadata_store``."""

    @pytest.fixture()
    def metadata_store(self) -> MetadataStore:
        raise NotImplementedError("a back end's test class provides the metadata_store fixture")

    @pytest.fixture()
    def pets(self, metadata_store: MetadataStore):  # noqa: ANN201
        """An image dataset: version, its three default splits, two labels."""
        ds = metadata_store.create_dataset("pets", "images", default_splits=True)
        version = ds.versions[0]
        cats = metadata_store.create_label(version.id or "", "cats")
        dogs = metadata_store.create_label(version.id or "", "dogs")
        return ds, version.id or "", version.splits, (cats, dogs)

    def test_is_a_metadata_store(self, metadata_store: MetadataStore) -> None:
        assert isinstance(metadata_store, MetadataStore)

    def test_catalog_round_trip(self, metadata_store: MetadataStore, pets) -> None:  # noqa: ANN001
        ds, version_id, splits, (cats, dogs) = pets
        assert [d.id for d in metadata_store.list_datasets()] == [ds.id]
        got = metadata_store.get_dataset(ds.id or "")
        assert (got.name, got.content_type, [v.id for v in got.versions]) == ("pets", "images", [version_id])
        assert metadata_store.get_version(ds.id or "", version_id).name == "v1"
        assert [s.name for s in metadata_store.splits(version_id)] == ["train", "valid", "test"]
        assert [label.id for label in metadata_store.labels(version_id)] == [cats.id, dogs.id]
        assert metadata_store.resolve_split(version_id, "VALID") == splits[1]
        assert metadata_store.version_content_type(version_id) is ContentType.IMAGES
        assert metadata_store.version_in_dataset(ds.id or "", version_id)
        other = metadata_store.create_dataset("other", "text")
        assert not metadata_store.version_in_dataset(other.id or "", version_id)
        assert not metadata_store.version_in_dataset(ds.id or "", "nope")

    def test_unknown_ids_are_not_found(self, metadata_store: MetadataStore, pets) -> None:  # noqa: ANN001
        ds, version_id, _, _ = pets
        for call in (
            lambda: metadata_store.get_dataset("nope"),
            lambda: metadata_store.get_version(ds.id or "", "nope"),
            lambda: metadata_store.version_content_type("nope"),
            lambda: metadata_store.resolve_split(version_id, "nope"),
            lambda: metadata_store.get_item("nope"),
            lambda: metadata_store.iter_pages(version_id, ["nope"], content=PageContent.NONE),
        ):
            with pytest.raises(NotFound):
                call()

    def test_a_rejected_write_leaves_nothing(self, metadata_store: MetadataStore, pets) -> None:  # noqa: ANN001
        _, version_id, (train, _, _), _ = pets
        before = metadata_store.revision(version_id)
        with pytest.raises(NotFound):
            metadata_store.create_item(version_id, name="x", split_ids=[train.id or "", "nosplit"])
        with pytest.raises(InvalidInput):
            metadata_store.create_label(version_id, "")
        assert metadata_store.count_items(version_id) == 0
        assert len(metadata_store.labels(version_id)) == 2
        assert metadata_store.revision(version_id) == before

    def test_pages_in_export_order_with_each_kind_of_content(self, metadata_store: MetadataStore, pets) -> None:  # noqa: ANN001
        _, version_id, (train, valid, _), (cats, _) = pets
        small, large = b"s" * 100, bytes(range(256)) * 400
        metadata_store.add_items(
            version_id,
            [
                NewItem(name="a", split_ids=[train.id or ""], data=small, annotations=[(cats.id or "", train.id or "", "")]),
                NewItem(name="b", split_ids=[train.id or "", valid.id or ""], data=large),
                NewItem(name="c"),
            ],
        )
        assert metadata_store.count_occurrences(version_id) == 4
        assert metadata_store.count_items_up_to(version_id, None, 2) == 2
        assert metadata_store.count_items_up_to(version_id, train.id, 10) == 2
        order = [("a", "train"), ("b", "train"), ("b", "valid"), ("c", None)]
        assert _occurrences(metadata_store.iter_pages(version_id, content=PageContent.NONE, page_size=1)) == order
        with metadata_store.reader() as reader:
            pages = list(reader.iter_pages(version_id, content=PageContent.BYTES, page_size=2))
        items = [item for page in pages for item in page]
        assert [len(p) for p in pages] == [2, 1, 1]  # a page never spans two splits
        assert items[0].content == small and [a.label.name for a in items[0].annotations] == ["cats"]
        assert b"".join(items[1].content.chunks()) == large
        assert items[3].content is None
        sized = [i.content for p in metadata_store.iter_pages(version_id, content=PageContent.SIZES) for i in p]
        assert sized[:3] == [BlobRef.of(small), BlobRef.of(large), BlobRef.of(large)] and sized[3] is None
        none = [i.content for p in metadata_store.iter_pages(version_id, content=PageContent.NONE) for i in p]
        assert none == [None] * 4
        shard = metadata_store.iter_pages(version_id, content=PageContent.NONE, start=1, stop=3)
        assert _occurrences(shard) == order[1:3]

    def test_image_sizes_are_measured_at_ingest_kept_and_paged(self, metadata_store: MetadataStore, pets) -> None:  # noqa: ANN001
        _, version_id, (train, _, _), _ = pets
        png, jpeg = _image("PNG", (37, 21)), _image("JPEG", (640, 480), noise=True)
        assert len(jpeg) >= INLINE_LIMIT  # a blob file, not inline
        ref = metadata_store.put_blob(jpeg)
        metadata_store.add_items(
            version_id,
            [
                NewItem(name="png", split_ids=[train.id or ""], data=png),  # measured from its data
                NewItem(name="jpeg", split_ids=[train.id or ""], blob=ref, width=640, height=480),  # by its caller
                NewItem(name="bytes", split_ids=[train.id or ""], data=b"not an image"),
                NewItem(name="given", split_ids=[train.id or ""], data=png, width=3, height=4),  # the caller's word
            ],
        )
        made = metadata_store.create_item(version_id, name="made", split_ids=[train.id or ""], width=7, height=9)
        want = {"png": (37, 21), "jpeg": (640, 480), "bytes": (None, None), "given": (3, 4), "made": (7, 9)}
        for content in PageContent:
            pages = metadata_store.iter_pages(version_id, content=content)
            assert {i.name: (i.width, i.height) for p in pages for i in p} == want
        assert (metadata_store.get_item(made.id or "").width, metadata_store.get_item(made.id or "").height) == (7, 9)

    def test_unmeasured_images_are_listed_and_their_sizes_recorded(self, metadata_store: MetadataStore, pets) -> None:  # noqa: ANN001
        _, version_id, (train, _, _), _ = pets
        text = metadata_store.create_dataset("notes", "text").versions[0].id or ""
        metadata_store.add_items(text, [NewItem(name="t", data=b"no image here")])
        ref = metadata_store.put_blob(b"\x89PNG not really")
        metadata_store.add_items(
            version_id,
            [NewItem(name=f"n{i}", split_ids=[train.id or ""], blob=ref) for i in range(3)]
            + [NewItem(name="sized", split_ids=[train.id or ""], data=_image("PNG", (5, 6)))],
        )
        first = metadata_store.unmeasured_images("", 2)
        rest = metadata_store.unmeasured_images(first[-1][0], 2)
        listed = first + rest
        assert len(first) == 2 and len(rest) == 1  # the image items without a size, by id; not the text item
        assert all(content == b"\x89PNG not really" for _, _, content in listed)
        before = metadata_store.revision(version_id)
        metadata_store.set_image_sizes([(listed[0][0], 10, 20)])
        assert metadata_store.revision(version_id) > before  # COCO archives change with the sizes
        assert (metadata_store.get_item(listed[0][0]).width, metadata_store.get_item(listed[0][0]).height) == (10, 20)
        assert [i for i, _, _ in metadata_store.unmeasured_images()] == [i for i, _, _ in listed[1:]]

    def test_transaction_is_all_or_nothing_and_nested_calls_join_it(self, metadata_store: MetadataStore, pets) -> None:  # noqa: ANN001
        _, version_id, _, _ = pets
        with pytest.raises(RuntimeError, match="import failed"):
            with metadata_store.transaction():
                metadata_store.create_label(version_id, "birds")
                split = metadata_store.create_split(version_id, "extra")
                metadata_store.add_items(version_id, [NewItem(name=f"n{i}", split_ids=[split.id or ""]) for i in range(5)], batch=2)
                raise RuntimeError("import failed")
        assert [label.name for label in metadata_store.labels(version_id)] == ["cats", "dogs"]
        assert [s.name for s in metadata_store.splits(version_id)] == ["train", "valid", "test"]
        assert metadata_store.count_items(version_id) == 0
        with metadata_store.transaction():
            metadata_store.create_label(version_id, "birds")
            metadata_store.add_items(version_id, [NewItem(name="kept")])
        assert metadata_store.count_items(version_id) == 1 and len(metadata_store.labels(version_id)) == 3

    def test_add_items_outside_a_transaction_keeps_the_batches_before_a_rejected_row(
        self, metadata_store: MetadataStore, pets  # noqa: ANN001
    ) -> None:
        _, version_id, (train, _, _), _ = pets
        rows = [NewItem(name=f"n{i}", split_ids=[train.id or ""]) for i in range(4)] + [NewItem(split_ids=["nosplit"])]
        with pytest.raises(NotFound):
            metadata_store.add_items(version_id, rows, batch=2)
        assert metadata_store.count_items(version_id) == 4

    def test_a_snapshot_reads_one_state_while_writes_go_on(self, metadata_store: MetadataStore, pets) -> None:  # noqa: ANN001
        _, version_id, (train, _, _), _ = pets
        metadata_store.add_items(version_id, [NewItem(name=f"a{i}", split_ids=[train.id or ""]) for i in range(6)])
        with metadata_store.reader() as reader, reader.snapshot():
            revision = reader.revision(version_id)
            done = threading.Event()

            def write() -> None:
                metadata_store.add_items(version_id, [NewItem(name="late", split_ids=[train.id or ""])])
                done.set()

            threading.Thread(target=write).start()
            assert done.wait(10)
            assert reader.revision(version_id) == revision
            assert len(_occurrences(reader.iter_pages(version_id, content=PageContent.NONE, page_size=4))) == 6
        assert metadata_store.count_items(version_id) == 7 and metadata_store.revision(version_id) > revision

    def test_every_change_raises_the_revision(self, metadata_store: MetadataStore, pets) -> None:  # noqa: ANN001
        _, version_id, (train, _, _), (cats, _) = pets
        seen = [metadata_store.revision(version_id)]
        item = metadata_store.create_item(version_id, name="x", split_ids=[train.id or ""])
        seen.append(metadata_store.revision(version_id))
        metadata_store.annotate(item.id or "", train.id or "", cats.id or "")
        seen.append(metadata_store.revision(version_id))
        metadata_store.update_version_config(version_id, '{"k": 1}')
        seen.append(metadata_store.revision(version_id))
        assert seen == sorted(set(seen))

    def test_accounts(self, metadata_store: MetadataStore, pets) -> None:  # noqa: ANN001
        ds, _, _, _ = pets
        user, key = metadata_store.create_user("ada", "secret")
        assert metadata_store.user_for_key(key) == user["id"] and metadata_store.user_for_key("forged") is None
        logged = metadata_store.login("ada", "secret")
        assert logged is not None and metadata_store.user_for_key(logged[1]) == user["id"]
        assert metadata_store.login("ada", "wrong") is None and metadata_store.login("ada", "") is None
        keyless, _ = metadata_store.create_user("bot")
        assert metadata_store.login("bot", "") is None and metadata_store.login("bot", "anything") is None
        with pytest.raises(InvalidInput, match="must not be empty"):
            metadata_store.create_user("eve", " ")
        assert metadata_store.owner_of(ds.id or "") == ""
        assert keyless["username"] == "bot"

    def test_archive_sizes_of_older_revisions_are_dropped(self, metadata_store: MetadataStore, pets) -> None:  # noqa: ANN001
        _, version_id, _, _ = pets
        metadata_store.remember_archive_size("old", version_id, 1, 100)
        assert metadata_store.archive_size("old") == 100
        metadata_store.remember_archive_size("new", version_id, 2, 200)
        assert (metadata_store.archive_size("old"), metadata_store.archive_size("new")) == (None, 200)
        assert metadata_store.archive_size("never") is None

    def test_records_keep_every_id_and_loading_them_again_changes_nothing(
        self, metadata_store: MetadataStore, pets  # noqa: ANN001
    ) -> None:
        from engine.store.records import BlobRecord, DatasetRecord, ItemRecord, LabelRecord, UserRecord

        ds, version_id, (train, valid, _), (cats, _) = pets
        metadata_store.create_user("ada", "secret")
        small, large = b"s" * 100, bytes(range(256)) * 400
        metadata_store.add_items(version_id, [
            NewItem(id="item-a", name="a", split_ids=[train.id or "", valid.id or ""], data=small,
                    annotations=[(cats.id or "", train.id or "", "")]),
            NewItem(id="item-b", name="b", data=large, width=640, height=480),
        ])  # fmt: skip
        records = list(metadata_store.records())
        kinds = [type(r).__name__ for r in records]
        assert kinds.index("UserRecord") < kinds.index("DatasetRecord") < kinds.index("BlobRecord") < kinds.index("ItemRecord")
        assert [r.id for r in records if isinstance(r, DatasetRecord)] == [ds.id]
        assert [r.name for r in records if isinstance(r, LabelRecord)] == ["cats", "dogs"]
        assert [r.username for r in records if isinstance(r, UserRecord)] == ["ada"]
        blobs = {r.sha256: r for r in records if isinstance(r, BlobRecord)}
        assert blobs[BlobRef.of(small).sha256].data == small and blobs[BlobRef.of(large).sha256].data is None
        assert b"".join(metadata_store.open_blob(BlobRef.of(large)).chunks()) == large
        items = {r.id: r for r in records if isinstance(r, ItemRecord)}
        assert items["item-a"].split_ids == [train.id, valid.id] and items["item-b"].split_ids == []
        assert (items["item-b"].width, items["item-b"].height) == (640, 480) and items["item-a"].width is None
        before = _occurrences(metadata_store.iter_pages(version_id, content=PageContent.NONE))
        assert metadata_store.load_records(records) == len(records)
        assert list(metadata_store.records()) == records
        assert _occurrences(metadata_store.iter_pages(version_id, content=PageContent.NONE)) == before

    def test_blobs_small_and_large_are_stored_once(self, metadata_store: MetadataStore) -> None:
        for data in (b"tiny", b"L" * (INLINE_LIMIT + 1)):
            ref = metadata_store.put_blob(data)
            assert ref == BlobRef.of(data) == metadata_store.put_blob_stream(iter([data[:3], data[3:]]))
            assert metadata_store.blobs.exists(ref.sha256)
