"""What the import tests share: a demo store, an export from it, and an archive's entries compared across versions."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from engine.demo import create_demo
from engine.pipeline import ExportOptions, run_export
from engine.sinks import FileSink
from engine.sources import StoreSource
from engine.store import Store


def export_bytes(store: Path, dataset_id: str, version_id: str, fmt: str, tmp_path: Path) -> bytes:
    out = tmp_path / f"{version_id}-{fmt}.zip"
    run_export(lambda: StoreSource(store), dataset_id, version_id, FileSink(out), ExportOptions(format=fmt))
    return out.read_bytes()


def entries(data: bytes, old: str = "", new: str = "") -> dict[str, bytes]:
    """Entry name -> bytes, the version id renamed; SPACY_NER item ids (new on import) left out."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        out = {}
        for info in zf.infolist():
            body = zf.read(info)
            if old:
                body = body.replace(old.encode(), new.encode())
            if info.filename.endswith(".json") and body.startswith(b"[{"):
                body = json.dumps([{k: v for k, v in doc.items() if k != "id"} for doc in json.loads(body)]).encode()
            out[info.filename.replace(old, new) if old else info.filename] = body
        return out


def make_demo_store(tmp_path: Path) -> tuple[Path, list, str]:
    """A demo store (25 items a dataset) whose datasets alice owns: (path, demo datasets, her key)."""
    store = tmp_path / "store"
    with Store.open(store, create=True) as opened:
        made = create_demo(opened, items=25, seed=3)
        key = opened.create_user("alice", "pw")[1]
        opened.give_datasets("alice")
    return store, made, key
