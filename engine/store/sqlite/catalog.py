"""Datasets, versions, labels and splits in SQLite: lookups and their writes.

Lookups raise ``NotFound`` listing the valid choices; writes check the
rules of ``engine.store.rules`` first and are one transaction each (or join
the caller's :meth:`~engine.store.sqlite.db.SqliteWrites.transaction`).
Every change to a version's content bumps its revision (the export ETag's source).
"""

from __future__ import annotations

from engine.errors import InvalidInput, NotFound, choices_hint
from engine.ids import new_id, now_iso
from engine.model import ContentType, Dataset, DatasetSplit, DatasetVersion, Label
from engine.store.rules import PALETTE, check_label_fields, check_name
from engine.store.sqlite.db import SqliteReads, SqliteWrites
from engine.store.sqlite.rows import (
    ANN_COLS,
    DATASET_COLS,
    LABEL_COLS,
    SPLIT_COLS,
    VERSION_COLS,
)
from engine.store.sqlite.rows import label as label_row
from engine.store.sqlite.rows import split as split_row

__all__ = ["CatalogReads", "CatalogWrites"]


class CatalogReads(SqliteReads):
    """Lookups of datasets, versions, labels and splits."""

    def _version_row(self, version_id: str) -> tuple[str, str]:
        """(dataset_id, content_type) of a version, or NotFound listing the versions."""
        row = self._one(
            "SELECT v.dataset_id, d.content_type FROM versions v JOIN datasets d ON d.id = v.dataset_id WHERE v.id = ?",
            (version_id,),
        )
        if row is None:
            known = [r[0] for r in self._all("SELECT id FROM versions ORDER BY seq")]
            raise NotFound(f"unknown version {version_id!r}; known versions: {choices_hint(known)}")
        return row

    def version_content_type(self, version_id: str) -> ContentType:
        """The content type of a version's dataset; NotFound listing the versions."""
        return ContentType(self._version_row(version_id)[1])

    def version_in_dataset(self, dataset_id: str, version_id: str) -> bool:
        """Whether ``version_id`` is a version of ``dataset_id`` (an ownership check: no error either way)."""
        return self._one("SELECT 1 FROM versions WHERE id = ? AND dataset_id = ?", (version_id, dataset_id)) is not None

    def _split_in(self, version_id: str, split_id: str) -> DatasetSplit:
        """A split of the version by id, or NotFound listing the version's splits."""
        splits = self.splits(version_id)
        for split in splits:
            if split.id == split_id:
                return split
        names = [f"{s.name} ({s.id})" for s in splits]
        raise NotFound(f"unknown split {split_id!r} in version {version_id}; valid splits: {choices_hint(names)}")

    # -- datasets and versions -----------------------------------------------

    def list_datasets(self) -> list[Dataset]:
        """Every dataset with its versions (labels and splits included), oldest first."""
        rows = self._all(f"SELECT {DATASET_COLS} FROM datasets ORDER BY created_at, id")
        return [self._dataset(r) for r in rows]

    def get_dataset(self, dataset_id: str) -> Dataset:
        row = self._one(f"SELECT {DATASET_COLS} FROM datasets WHERE id = ?", (dataset_id,))
        if row is None:
            known = [r[0] for r in self._all("SELECT id FROM datasets ORDER BY created_at, id")]
            raise NotFound(f"unknown dataset {dataset_id!r}; known datasets: {choices_hint(known)}")
        return self._dataset(row)

    def _dataset(self, r: tuple) -> Dataset:
        rows = self._all(f"SELECT {VERSION_COLS} FROM versions WHERE dataset_id = ? ORDER BY seq", (r[0],))
        return Dataset(
            id=r[0],
            name=r[1],
            description=r[2],
            user_id=r[3],
            content_type=r[4],
            multi_label=bool(r[5]),
            default_splits=bool(r[6]),
            created_at=r[7],
            updated_at=r[8],
            versions=[self._version(v) for v in rows],
        )

    def _version(self, r: tuple) -> DatasetVersion:
        return DatasetVersion(
            id=r[0],
            dataset_id=r[1],
            name=r[2],
            description=r[3],
            config=r[4],
            created_at=r[5],
            updated_at=r[6],
            labels=self.labels(r[0]),
            splits=self.splits(r[0]),
        )

    def get_version(self, dataset_id: str, version_id: str) -> DatasetVersion:
        """A version of a dataset; NotFound lists the dataset's versions (or the datasets)."""
        dataset = self.get_dataset(dataset_id)
        for version in dataset.versions:
            if version.id == version_id:
                return version
        known = [f"{v.name} ({v.id})" for v in dataset.versions]
        raise NotFound(f"dataset {dataset.name!r} has no version {version_id!r}; its versions: {choices_hint(known)}")

    def labels(self, version_id: str) -> list[Label]:
        """The version's labels in export order: ``index``, then creation."""
        rows = self._all(f"SELECT {LABEL_COLS} FROM labels WHERE version_id = ? ORDER BY idx, seq", (version_id,))
        return [label_row(r) for r in rows]

    def splits(self, version_id: str) -> list[DatasetSplit]:
        """The version's splits in creation order."""
        rows = self._all(f"SELECT {SPLIT_COLS} FROM splits WHERE version_id = ? ORDER BY seq", (version_id,))
        return [split_row(r) for r in rows]

    def resolve_split(self, version_id: str, name_or_id: str) -> DatasetSplit:
        """A split by id or name (exact, else case-insensitive if unambiguous)."""
        self._version_row(version_id)
        splits = self.splits(version_id)
        for split in splits:
            if name_or_id in (split.id, split.name):
                return split
        folded = [s for s in splits if s.name.casefold() == name_or_id.casefold()]
        if len(folded) == 1:
            return folded[0]
        names = [s.name for s in splits]
        raise NotFound(f"unknown split {name_or_id!r}; valid splits: {choices_hint(names)}")

    def _label_in(self, version_id: str, label_id: str) -> None:
        labels = self.labels(version_id)
        if label_id not in {label.id for label in labels}:
            names = [f"{label.name} ({label.id})" for label in labels]
            raise NotFound(f"unknown label {label_id!r} in version {version_id}; valid labels: {choices_hint(names)}")

    def get_label(self, version_id: str, label_id: str) -> Label:
        for label in self.labels(version_id):
            if label.id == label_id:
                return label
        self._label_in(version_id, label_id)
        raise AssertionError("unreachable")

    def get_split(self, version_id: str, split_id: str) -> DatasetSplit:
        self._version_row(version_id)
        return self._split_in(version_id, split_id)



class CatalogWrites(CatalogReads, SqliteWrites):
    """Creation, update and deletion of datasets, versions, labels and splits."""

    # -- creation ------------------------------------------------------------

    def create_dataset(
        self,
        name: str,
        content_type: ContentType | str,
        *,
        multi_label: bool = False,
        default_splits: bool = False,
        description: str = "",
        user_id: str | None = None,
    ) -> Dataset:
        """A dataset with a first version ("v1"); ``default_splits`` adds train, valid, test."""
        kinds = [c.value for c in ContentType]
        kind = content_type.value if isinstance(content_type, ContentType) else content_type
        if kind not in kinds:
            raise InvalidInput(f"unknown content type {content_type!r}; valid content types: {choices_hint(kinds)}")
        check_name("dataset", name)
        dataset_id, now = new_id(), now_iso()
        with self._tx() as db:
            db.execute(
                f"INSERT INTO datasets ({DATASET_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (dataset_id, name, description, user_id, kind, bool(multi_label), bool(default_splits), now, now),
            )
            version_id = self._insert_version(dataset_id, "v1", "", "")
            for split in ("train", "valid", "test") if default_splits else ():
                self._insert_split(version_id, split)
            self._bump(version_id)
        return self.get_dataset(dataset_id)

    def create_version(
        self, dataset_id: str, name: str = "", *, description: str = "", config: str = ""
    ) -> DatasetVersion:
        """An empty new version; an empty name becomes ``v<N>`` (N = its position)."""
        self.get_dataset(dataset_id)
        with self._tx():
            count = self._one("SELECT count(*) FROM versions WHERE dataset_id = ?", (dataset_id,))[0]
            version_id = self._insert_version(dataset_id, name or f"v{count + 1}", description, config)
            self._bump(version_id)
        return self.get_version(dataset_id, version_id)

    def _insert_version(self, dataset_id: str, name: str, description: str, config: str) -> str:
        if not isinstance(config, str):
            raise InvalidInput(f"a version's config must be a string (JSON text), got {type(config).__name__}")
        version_id, now = new_id(), now_iso()
        self._db.execute(
            f"INSERT INTO versions ({VERSION_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (version_id, dataset_id, name, description, config, now, now),
        )
        return version_id

    def update_version_config(self, version_id: str, config: str) -> None:
        """Replace a version's config string (e.g. a tabular version's column names)."""
        self._version_row(version_id)
        if not isinstance(config, str):
            raise InvalidInput(f"a version's config must be a string (JSON text), got {type(config).__name__}")
        with self._tx() as db:
            db.execute("UPDATE versions SET config = ?, updated_at = ? WHERE id = ?", (config, now_iso(), version_id))
            self._bump(version_id)

    def create_label(self, version_id: str, name: str, *, color: str = "", index: int | None = None) -> Label:
        """A label; no index -> after the last; no colour -> the palette's, by creation position."""
        self._version_row(version_id)
        check_label_fields(name, color, index)
        label_id, now = new_id(), now_iso()
        with self._tx() as db:
            names = self._check_unused("label", version_id, name)
            if index is None:
                index = self._one("SELECT coalesce(max(idx) + 1, 0) FROM labels WHERE version_id = ?", (version_id,))[0]
            color = (color or PALETTE[len(names) % len(PALETTE)]).lower()
            db.execute(
                f"INSERT INTO labels ({LABEL_COLS}) VALUES (?, ?, ?, '', ?, ?, '', ?, ?)",
                (label_id, version_id, name, color, index, now, now),
            )
            self._bump(version_id)
        return label_row(self._one(f"SELECT {LABEL_COLS} FROM labels WHERE id = ?", (label_id,)))

    def _check_unused(self, kind: str, version_id: str, name: str) -> list[str]:
        """The version's label or split names, in creation order; InvalidInput if ``name`` is one."""
        table = {"label": "labels", "split": "splits"}[kind]
        names = [r[0] for r in self._all(f"SELECT name FROM {table} WHERE version_id = ? ORDER BY seq", (version_id,))]
        if name in names:
            raise InvalidInput(f"{kind} {name!r} already exists in version {version_id}; {table}: {choices_hint(names)}")
        return names

    def create_split(self, version_id: str, name: str) -> DatasetSplit:
        """A split, unique by name in its version; splits export in creation order."""
        self._version_row(version_id)
        with self._tx():
            split_id = self._insert_split(version_id, name)
            self._bump(version_id)
        return self._split_in(version_id, split_id)

    def _insert_split(self, version_id: str, name: str) -> str:
        check_name("split", name)
        self._check_unused("split", version_id, name)
        split_id, now = new_id(), now_iso()
        self._db.execute(
            f"INSERT INTO splits ({SPLIT_COLS}) VALUES (?, ?, ?, '', ?, ?)", (split_id, version_id, name, now, now)
        )
        return split_id

    # -- the HTTP service: updates and deletes ---------------------------------

    def update_dataset(self, dataset_id: str, *, name: str, description: str, multi_label: bool) -> Dataset:
        self.get_dataset(dataset_id)
        check_name("dataset", name)
        with self._tx() as db:
            db.execute(
                "UPDATE datasets SET name = ?, description = ?, multi_label = ?, updated_at = ? WHERE id = ?",
                (name, description or "", bool(multi_label), now_iso(), dataset_id),
            )
            for (version_id,) in self._all("SELECT id FROM versions WHERE dataset_id = ?", (dataset_id,)):
                self._bump(version_id)  # multi_label changes CSV exports
        return self.get_dataset(dataset_id)

    def delete_dataset(self, dataset_id: str) -> None:
        self.get_dataset(dataset_id)
        with self._tx() as db:
            db.execute("DELETE FROM datasets WHERE id = ?", (dataset_id,))

    def update_version(self, version_id: str, *, name: str, description: str, config: str) -> None:
        """Name, description and config; a version's labels and splits change only through their own calls."""
        self._version_row(version_id)
        if not isinstance(config, str):
            raise InvalidInput(f"a version's config must be a string (JSON text), got {type(config).__name__}")
        with self._tx() as db:
            db.execute(
                "UPDATE versions SET name = coalesce(nullif(?, ''), name), description = ?, config = ?,"
                " updated_at = ? WHERE id = ?",
                (name or "", description or "", config, now_iso(), version_id),
            )
            self._bump(version_id)

    def delete_version(self, version_id: str) -> None:
        self._version_row(version_id)
        with self._tx() as db:
            db.execute("DELETE FROM revisions WHERE version_id = ?", (version_id,))
            db.execute("DELETE FROM versions WHERE id = ?", (version_id,))

    def duplicate_version(self, dataset_id: str, version_id: str, name: str = "") -> DatasetVersion:
        """A new version of the dataset with copies of the labels, splits, items, annotations and states.

        Copies get new ids; blobs are shared (they are content-addressed).
        """
        self.get_version(dataset_id, version_id)
        now = now_iso()
        with self._tx() as db:
            count = self._one("SELECT count(*) FROM versions WHERE dataset_id = ?", (dataset_id,))[0]
            new_version = self._insert_version(dataset_id, name or f"v{count + 1}", "", "")
            db.execute(
                "UPDATE versions SET description = (SELECT description FROM versions WHERE id = ?),"
                " config = (SELECT config FROM versions WHERE id = ?) WHERE id = ?",
                (version_id, version_id, new_version),
            )
            db.execute("CREATE TEMP TABLE IF NOT EXISTS id_map (old TEXT PRIMARY KEY, new TEXT NOT NULL)")
            db.execute("DELETE FROM id_map")
            for table in ("labels", "splits", "items"):
                order = "seq" if table != "items" else "id"
                olds = [r[0] for r in self._all(f"SELECT id FROM {table} WHERE version_id = ? ORDER BY {order}", (version_id,))]
                db.executemany("INSERT INTO id_map (old, new) VALUES (?, ?)", [(o, new_id()) for o in olds])
            db.execute(
                f"INSERT INTO labels ({LABEL_COLS}) SELECT m.new, ?, name, description, color, idx, shortcut, ?, ?"
                " FROM labels l JOIN id_map m ON m.old = l.id WHERE l.version_id = ? ORDER BY l.seq",
                (new_version, now, now, version_id),
            )
            db.execute(
                f"INSERT INTO splits ({SPLIT_COLS}) SELECT m.new, ?, name, description, ?, ?"
                " FROM splits s JOIN id_map m ON m.old = s.id WHERE s.version_id = ? ORDER BY s.seq",
                (new_version, now, now, version_id),
            )
            db.execute(
                "INSERT INTO items (id, version_id, name, description, text, extension, blob_id, created_at,"
                " updated_at, width, height, version) SELECT m.new, ?, name, description, text, extension, blob_id,"
                " ?, ?, width, height, 1"
                " FROM items i JOIN id_map m ON m.old = i.id WHERE i.version_id = ? ORDER BY m.new",
                (new_version, now, now, version_id),
            )
            db.execute(
                "INSERT INTO item_splits (split_id, item_id) SELECT ms.new, mi.new FROM item_splits x"
                " JOIN id_map ms ON ms.old = x.split_id JOIN id_map mi ON mi.old = x.item_id"
                " JOIN items i ON i.id = x.item_id WHERE i.version_id = ?",
                (version_id,),
            )
            rows = self._all(
                "SELECT mi.new, ms.new, ml.new, a.coordinates FROM annotations a JOIN id_map mi ON mi.old = a.item_id"
                " JOIN id_map ms ON ms.old = a.split_id JOIN id_map ml ON ml.old = a.label_id"
                " WHERE a.version_id = ? ORDER BY a.rowid",
                (version_id,),
            )
            db.executemany(
                f"INSERT INTO annotations (version_id, {ANN_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(new_version, new_id(), *r, now, now) for r in rows],
            )
            states = self._all(
                "SELECT m.new, s.name, s.user_id, s.state, s.version FROM item_states s"
                " JOIN id_map m ON m.old = s.item_id WHERE s.version_id = ?",
                (version_id,),
            )
            db.executemany(
                "INSERT INTO item_states (item_id, version_id, id, name, user_id, state, version, created_at,"
                " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(r[0], new_version, new_id(), r[1], r[2], r[3], r[4], now, now) for r in states],
            )
            db.execute("DELETE FROM id_map")
            self._bump(new_version)
        return self.get_version(dataset_id, new_version)

    def update_label(
        self, version_id: str, label_id: str, *, name: str, description: str, color: str, index: int | None, shortcut: str
    ) -> Label:
        old = self.get_label(version_id, label_id)
        check_label_fields(name, color, index)
        with self._tx() as db:
            if name != old.name:
                self._check_unused("label", version_id, name)
            db.execute(
                "UPDATE labels SET name = ?, description = ?, color = ?, idx = ?, shortcut = ?, updated_at = ?"
                " WHERE id = ?",
                (name, description or "", (color or old.color).lower(), old.index if index is None else index,
                 shortcut or "", now_iso(), label_id),
            )
            self._bump(version_id)
        return self.get_label(version_id, label_id)

    def delete_label(self, version_id: str, label_id: str) -> Label:
        label = self.get_label(version_id, label_id)
        with self._tx() as db:
            db.execute("DELETE FROM labels WHERE id = ?", (label_id,))
            self._bump(version_id)
        return label

    def update_split(self, version_id: str, split_id: str, *, name: str, description: str) -> DatasetSplit:
        old = self.get_split(version_id, split_id)
        check_name("split", name)
        with self._tx() as db:
            if name != old.name:
                self._check_unused("split", version_id, name)
            db.execute(
                "UPDATE splits SET name = ?, description = ?, updated_at = ? WHERE id = ?",
                (name, description or "", now_iso(), split_id),
            )
            self._bump(version_id)
        return self.get_split(version_id, split_id)

    def delete_split(self, version_id: str, split_id: str) -> DatasetSplit:
        split = self.get_split(version_id, split_id)
        with self._tx() as db:
            db.execute("DELETE FROM splits WHERE id = ?", (split_id,))
            self._bump(version_id)
        return split

