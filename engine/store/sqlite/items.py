"""Items, annotations and item states in SQLite, one at a time (the HTTP API's calls).

Many items at once go through ``engine.store.sqlite.bulk``; the export's
reads through ``engine.store.sqlite.pages``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from engine.errors import InvalidInput, NotFound, choices_hint
from engine.ids import new_id, now_iso
from engine.model import Annotation, DatasetItem, DatasetSplit
from engine.store.api import BlobRef, NewItem, VersionConflict
from engine.store.rules import check_coordinates
from engine.store.sqlite.catalog import CatalogReads
from engine.store.sqlite.db import SqliteWrites
from engine.store.sqlite.rows import ANN_COLS, ITEM_COLS
from engine.store.sqlite.rows import annotation as annotation_row
from engine.store.sqlite.rows import split as split_row
from formats.base import Blob

__all__ = ["ItemReads", "ItemWrites"]


class ItemReads(CatalogReads):
    """Item lookups, listings, counts, stats and states."""

    # -- items ---------------------------------------------------------------

    def count_items(self, version_id: str, split_id: str | None = None) -> int:
        """Distinct items of the version, or of one of its splits."""
        self._version_row(version_id)
        if split_id is None:
            return self._one("SELECT count(*) FROM items WHERE version_id = ?", (version_id,))[0]
        self._split_in(version_id, split_id)
        return self._one("SELECT count(*) FROM item_splits WHERE split_id = ?", (split_id,))[0]

    def count_items_up_to(self, version_id: str, split_id: str | None, limit: int) -> int:
        """Items of the version (or of the split), counted up to ``limit``: a cheap "at least N" test.

        No check of the ids: an unknown version or split counts 0.
        """
        if split_id is None:
            sql, key = "SELECT count(*) FROM (SELECT 1 FROM items WHERE version_id = ? LIMIT ?) AS found", version_id
        else:
            sql, key = "SELECT count(*) FROM (SELECT 1 FROM item_splits WHERE split_id = ? LIMIT ?) AS found", split_id
        return self._one(sql, (key, limit))[0]

    def revision(self, version_id: str) -> int:
        """How many changes the version has seen; any change to its content raises it."""
        row = self._one("SELECT revision FROM revisions WHERE version_id = ?", (version_id,))
        return row[0] if row else 0

    def has_boxes(self, version_id: str) -> bool:
        """Whether any annotation of the version is a box (an object detection dataset)."""
        self._version_row(version_id)
        row = self._one(
            "SELECT 1 FROM annotations WHERE version_id = ? AND coordinates != '' LIMIT 1", (version_id,)
        )
        return row is not None

    def annotation_counts(self, version_id: str, split_ids: list[str] | None = None) -> tuple[int, int]:
        """(boxes, image-level labels) among the version's annotations (of ``split_ids`` only, when given)."""
        self._version_row(version_id)
        where, args = "version_id = ?", [version_id]
        if split_ids is not None:
            where += f" AND split_id IN ({','.join('?' * len(split_ids))})"
            args += split_ids
        row = self._one(
            f"SELECT count(*) - count(nullif(coordinates, '')), count(nullif(coordinates, '')) FROM annotations"
            f" WHERE {where}",
            tuple(args),
        )
        return row[1], row[0]

    def get_item(self, item_id: str) -> DatasetItem:
        """An item with its splits (creation order) and annotations (creation order)."""
        found = self._items_by_id([item_id])
        if not found:
            raise NotFound(f"unknown item {item_id!r}")
        return found[0]

    def _items_by_id(self, item_ids: list[str]) -> list[DatasetItem]:
        """Items in the order of ``item_ids`` (unknown ids dropped), in three queries whatever their number."""
        if not item_ids:
            return []
        marks = ",".join("?" * len(item_ids))
        rows = {r[0]: r for r in self._all(f"SELECT {ITEM_COLS} FROM items WHERE id IN ({marks})", tuple(item_ids))}
        splits: dict[str, list[DatasetSplit]] = {}
        for r in self._all(
            "SELECT s.item_id, p.id, p.version_id, p.name, p.description, p.created_at, p.updated_at"
            f" FROM item_splits s JOIN splits p ON p.id = s.split_id WHERE s.item_id IN ({marks}) ORDER BY p.seq",
            tuple(item_ids),
        ):
            splits.setdefault(r[0], []).append(split_row(r[1:]))
        anns: dict[str, list[Annotation]] = {}
        for a in self._all(
            f"SELECT {ANN_COLS} FROM annotations WHERE item_id IN ({marks}) ORDER BY rowid", tuple(item_ids)
        ):
            anns.setdefault(a[1], []).append(annotation_row(a))
        return [
            DatasetItem(
                id=r[0],
                name=r[1],
                description=r[2],
                text=r[3],
                extension=r[4],
                version=r[5],
                created_at=r[6],
                updated_at=r[7],
                width=r[8],
                height=r[9],
                splits=splits.get(r[0], []),
                annotations=anns.get(r[0], []),
            )
            for item_id in item_ids
            if (r := rows.get(item_id)) is not None
        ]

    # -- the HTTP service: items ---------------------------------------------

    def item_version_id(self, item_id: str) -> str | None:
        row = self._one("SELECT version_id FROM items WHERE id = ?", (item_id,))
        return row[0] if row else None

    def list_items(
        self,
        version_id: str,
        *,
        page_size: int = 10,
        page: int = 0,
        split_id: str | None = None,
        label_id: str | None = None,
        only_unlabelled: bool = False,
        only_unsplit: bool = False,
    ) -> list[DatasetItem]:
        """One page of a version's items (by id), optionally filtered by split, label, no label or no split."""
        if page_size < 1 or page < 0:
            raise InvalidInput(f"pageSize must be at least 1 and pageCount at least 0, got {page_size}, {page}")
        where, args = self._item_filter(version_id, split_id, label_id, only_unlabelled, only_unsplit)
        ids = self._all(
            f"SELECT i.id FROM items i WHERE {where} ORDER BY i.id LIMIT ? OFFSET ?",
            (*args, page_size, page * page_size),
        )
        return self._items_by_id([r[0] for r in ids])

    def count_listed_items(
        self,
        version_id: str,
        *,
        split_id: str | None = None,
        label_id: str | None = None,
        only_unlabelled: bool = False,
        only_unsplit: bool = False,
    ) -> int:
        """How many items :meth:`list_items` pages through with the same filters."""
        where, args = self._item_filter(version_id, split_id, label_id, only_unlabelled, only_unsplit)
        return self._one(f"SELECT count(*) FROM items i WHERE {where}", tuple(args))[0]

    def _item_filter(
        self, version_id: str, split_id: str | None, label_id: str | None, only_unlabelled: bool, only_unsplit: bool
    ) -> tuple[str, list[str]]:
        """The WHERE clause (over ``items i``) of an item listing; unknown split or label ids raise NotFound."""
        self._version_row(version_id)
        where, args = ["i.version_id = ?"], [version_id]
        if split_id:
            self._split_in(version_id, split_id)
            where.append("EXISTS (SELECT 1 FROM item_splits s WHERE s.item_id = i.id AND s.split_id = ?)")
            args.append(split_id)
        if label_id:
            self._label_in(version_id, label_id)
            where.append("EXISTS (SELECT 1 FROM annotations a WHERE a.item_id = i.id AND a.label_id = ?)")
            args.append(label_id)
        if only_unlabelled:
            where.append("NOT EXISTS (SELECT 1 FROM annotations a WHERE a.item_id = i.id)")
        if only_unsplit:
            where.append("NOT EXISTS (SELECT 1 FROM item_splits s WHERE s.item_id = i.id)")
        return " AND ".join(where), args

    def item_file(self, item_id: str) -> tuple[bytes | Blob, str] | None:
        """An item's file content and extension in one query; None if it has no file."""
        row = self._one(
            "SELECT b.sha256, b.size, b.crc32, b.data, b.pack, b.pack_offset, coalesce(i.extension, '')"
            " FROM items i JOIN blobs b ON b.id = i.blob_id WHERE i.id = ?",
            (item_id,),
        )
        return None if row is None else (self.blobs.content(item_id, *row[:6]), row[6])

    def unmeasured_images(self, after: str = "", limit: int = 500) -> list[tuple[str, str, bytes | Blob]]:
        """(item id, extension, content) of image items with content but no size, by id after ``after``: what
        ``dsexport store measure-images`` reads (content of items that are no image stays unmeasured)."""
        rows = self._all(
            "SELECT i.id, NULL, coalesce(i.extension, ''), NULL, b.sha256, b.size, b.crc32, b.data, b.pack,"
            " b.pack_offset FROM items i JOIN blobs b ON b.id = i.blob_id"
            " JOIN versions v ON v.id = i.version_id JOIN datasets d ON d.id = v.dataset_id"
            " WHERE i.width IS NULL AND i.id > ? AND d.content_type = 'images' ORDER BY i.id LIMIT ?",
            (after, limit),
        )
        contents = self.blobs.page_contents(rows, at=4)  # packed blobs: one ranged read per pack, as an export reads them
        return [(r[0], r[2], content) for r, content in zip(rows, contents)]

    # -- the HTTP service: annotations, stats, states ---------------------------

    def get_annotation(self, annotation_id: str) -> tuple[str, Annotation]:
        """(version id, annotation)."""
        row = self._one(f"SELECT version_id, {ANN_COLS} FROM annotations WHERE id = ?", (annotation_id,))
        if row is None:
            raise NotFound(f"unknown annotation {annotation_id!r}")
        return row[0], annotation_row(row[1:])

    def label_stats(self, version_id: str, split_id: str) -> list[dict[str, Any]]:
        """Per label of the split: annotations and annotated items; plus ``label_id: ""`` for unlabelled items."""
        self._version_row(version_id)
        self._split_in(version_id, split_id)
        counts = {
            r[0]: (r[1], r[2])
            for r in self._all(
                "SELECT label_id, count(*), count(DISTINCT item_id) FROM annotations WHERE split_id = ? GROUP BY label_id",
                (split_id,),
            )
        }
        out = []
        for label in self.labels(version_id):
            anns, items = counts.get(label.id, (0, 0))
            out.append({"label_id": label.id, "split_id": split_id, "count": items, "annotation_count": anns, "item_count": items})
        unlabelled = self._one(
            "SELECT count(*) FROM item_splits s WHERE s.split_id = ? AND NOT EXISTS"
            " (SELECT 1 FROM annotations a WHERE a.item_id = s.item_id AND a.split_id = s.split_id)",
            (split_id,),
        )[0]
        out.append({"label_id": "", "split_id": split_id, "count": unlabelled, "annotation_count": 0, "item_count": unlabelled})
        return out

    def get_state(self, version_id: str, item_id: str) -> dict[str, Any]:
        row = self._one(
            "SELECT id, name, user_id, state, version, created_at, updated_at FROM item_states"
            " WHERE item_id = ? AND version_id = ?",
            (item_id, version_id),
        )
        if row is None:
            return {"item_id": item_id, "dataset_version_id": version_id, "state": "", "version": 0}
        return _state(item_id, version_id, row)

    def list_states(self, version_id: str) -> list[dict[str, Any]]:
        rows = self._all(
            "SELECT item_id, id, name, user_id, state, version, created_at, updated_at FROM item_states"
            " WHERE version_id = ? ORDER BY item_id",
            (version_id,),
        )
        return [_state(r[0], version_id, r[1:]) for r in rows]



class ItemWrites(ItemReads, SqliteWrites):
    """Creation, update and deletion of single items, annotations and states."""

    def create_item(
        self,
        version_id: str,
        *,
        name: str | None = None,
        extension: str = "",
        text: str = "",
        split_ids: Iterable[str] = (),
        blob: BlobRef | None = None,
        description: str = "",
        width: int | None = None,
        height: int | None = None,
    ) -> DatasetItem:
        """One item; use :meth:`add_items` for many."""
        row = NewItem(
            id=new_id(),
            name=name,
            extension=extension,
            text=text,
            split_ids=list(split_ids),
            blob=blob,
            description=description,
            width=width,
            height=height,
        )
        self.add_items(version_id, [row])
        return self.get_item(row.id)

    def annotate(self, item_id: str, split_id: str, label_id: str, coordinates: str = "") -> Annotation:
        """Annotate an item in one of its splits; coordinates are checked by content type."""
        row = self._one("SELECT version_id, text FROM items WHERE id = ?", (item_id,))
        if row is None:
            raise NotFound(f"unknown item {item_id!r}")
        version_id, text = row
        _, content_type = self._version_row(version_id)
        split = self._split_in(version_id, split_id)
        self._label_in(version_id, label_id)
        if self._one("SELECT 1 FROM item_splits WHERE split_id = ? AND item_id = ?", (split_id, item_id)) is None:
            names = [s.name for s in self.get_item(item_id).splits]
            raise InvalidInput(f"item {item_id} is not in split {split.name!r}; its splits: {choices_hint(names)}")
        stored = check_coordinates(content_type, coordinates or "", text)
        ann_id, now = new_id(), now_iso()
        with self._tx() as db:
            db.execute(
                f"INSERT INTO annotations (version_id, {ANN_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (version_id, ann_id, item_id, split_id, label_id, stored, now, now),
            )
            self._bump(version_id)
        return Annotation(
            id=ann_id,
            item_id=item_id,
            split_id=split_id,
            label_id=label_id,
            coordinates=stored,
            created_at=now,
            updated_at=now,
        )

    def update_item(
        self,
        item_id: str,
        *,
        name: str | None,
        description: str,
        text: str | None,
        split_ids: list[str] | None,
        if_match: int | None = None,
    ) -> DatasetItem:
        """Replace an item's fields and split membership; annotations in splits it leaves go with them.

        ``if_match``: the item's ``version`` the caller last saw; a mismatch raises
        :class:`VersionConflict` and changes nothing.
        """
        row = self._one("SELECT version_id, version FROM items WHERE id = ?", (item_id,))
        if row is None:
            raise NotFound(f"unknown item {item_id!r}")
        version_id, current = row
        if if_match is not None and if_match != current:
            raise VersionConflict(f"item {item_id} is at version {current}, not {if_match}", current)
        valid = {s.id for s in self.splits(version_id)}
        for split_id in split_ids or ():
            if split_id not in valid:
                self._split_in(version_id, split_id)
        with self._tx() as db:
            db.execute(
                "UPDATE items SET name = ?, description = ?, text = ?, updated_at = ?, version = version + 1"
                " WHERE id = ?",
                (name, description or "", text if text is not None else "", now_iso(), item_id),
            )
            if split_ids is not None:
                keep = list(dict.fromkeys(split_ids))
                marks = ",".join("?" * len(keep)) or "''"
                db.execute(f"DELETE FROM item_splits WHERE item_id = ? AND split_id NOT IN ({marks})", (item_id, *keep))
                db.execute(f"DELETE FROM annotations WHERE item_id = ? AND split_id NOT IN ({marks})", (item_id, *keep))
                db.executemany(
                    "INSERT OR IGNORE INTO item_splits (split_id, item_id) VALUES (?, ?)", [(s, item_id) for s in keep]
                )
            self._bump(version_id)
        return self.get_item(item_id)

    def set_item_blob(
        self, item_id: str, blob: BlobRef, extension: str, *, width: int | None = None, height: int | None = None
    ) -> DatasetItem:
        """The item's content is now ``blob`` (its image size, measured by the caller, replaces the old one)."""
        version_id = self.item_version_id(item_id)
        if version_id is None:
            raise NotFound(f"unknown item {item_id!r}")
        with self._tx() as db:
            blob_id = self.blobs.ids_of([blob.sha256])[blob.sha256]
            db.execute(
                "UPDATE items SET blob_id = ?, extension = ?, width = ?, height = ?, updated_at = ?,"
                " version = version + 1 WHERE id = ?",
                (blob_id, extension.lstrip(".").lower(), width, height, now_iso(), item_id),
            )
            self._bump(version_id)
        return self.get_item(item_id)

    def set_image_sizes(self, sizes: list[tuple[str, int, int]]) -> None:
        """Record measured (item id, width, height); each version touched gets a new revision."""
        if not sizes:
            return
        with self._tx() as db:
            db.executemany("UPDATE items SET width = ?, height = ? WHERE id = ?", [(w, h, i) for i, w, h in sizes])
            marks = ",".join("?" * len(sizes))
            versions = db.execute(
                f"SELECT DISTINCT version_id FROM items WHERE id IN ({marks})", [i for i, _, _ in sizes]
            ).fetchall()
            for (version_id,) in versions:
                self._bump(version_id)

    def delete_item(self, item_id: str) -> DatasetItem:
        item = self.get_item(item_id)
        version_id = self.item_version_id(item_id)
        with self._tx() as db:
            db.execute("DELETE FROM items WHERE id = ?", (item_id,))
            self._bump(version_id or "")
        return item

    def update_annotation(self, annotation_id: str, *, label_id: str, coordinates: str) -> Annotation:
        version_id, ann = self.get_annotation(annotation_id)
        _, content_type = self._version_row(version_id)
        self._label_in(version_id, label_id)
        text = self._one("SELECT text FROM items WHERE id = ?", (ann.item_id,))[0]
        stored = check_coordinates(content_type, coordinates or "", text)
        with self._tx() as db:
            db.execute(
                "UPDATE annotations SET label_id = ?, coordinates = ?, updated_at = ? WHERE id = ?",
                (label_id, stored, now_iso(), annotation_id),
            )
            self._bump(version_id)
        return self.get_annotation(annotation_id)[1]

    def delete_annotation(self, annotation_id: str) -> Annotation:
        version_id, ann = self.get_annotation(annotation_id)
        with self._tx() as db:
            db.execute("DELETE FROM annotations WHERE id = ?", (annotation_id,))
            self._bump(version_id)
        return ann

    def put_state(
        self, version_id: str, item_id: str, *, state: str, name: str | None, user_id: str, if_match: int | None
    ) -> dict[str, Any]:
        current = self.get_state(version_id, item_id)["version"]
        if if_match is not None and if_match != current:
            raise VersionConflict(f"the state of item {item_id} is at version {current}, not {if_match}", current)
        now = now_iso()
        with self._tx() as db:
            db.execute(
                "INSERT INTO item_states (item_id, version_id, id, name, user_id, state, version, created_at,"
                " updated_at) VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?) ON CONFLICT(item_id, version_id) DO UPDATE SET"
                " name = excluded.name, state = excluded.state, user_id = excluded.user_id,"
                " version = item_states.version + 1, updated_at = excluded.updated_at",
                (item_id, version_id, new_id(), name, user_id, state or "", now, now),
            )
        return self.get_state(version_id, item_id)


def _state(item_id: str, version_id: str, r: tuple) -> dict[str, Any]:
    out = {
        "id": r[0], "item_id": item_id, "dataset_version_id": version_id, "user_id": r[2], "state": r[3],
        "version": r[4], "created_at": r[5], "updated_at": r[6],
    }
    if r[1] is not None:
        out["name"] = r[1]
    return out


