"""Import of hostile or broken ZIP files: zip bombs, lying headers, broken entries, bad CSV configs.

Every archive is built here byte by byte (``struct``), since ``zipfile``
cannot write most of them. Each is sent to the real server's upload endpoint
and to a real ``dsexport import`` process: a 400 and exit 2 with one line
naming the entry and the problem, the version exactly as it was, and no blob
file written.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from servers import ROOT, Server
from import_support import entries, export_bytes

from engine.demo import create_demo
from engine.model import ContentType
from engine.store import NewItem, Store

pytestmark = [
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

# -- building archives byte by byte (APPNOTE 4.3.7, 4.3.12, 4.3.16) ----------------------------------------------

_LOCAL = struct.Struct("<4s2B4HL2L2H")
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")
_END = struct.Struct("<4s4H2LH")
_DOS_DATE = 0x21  # 1980-01-01
_REGULAR_FILE = 0o100644 << 16


def local_header(name: bytes, *, crc: int, csize: int, size: int, method: int = 0, flags: int = 0) -> bytes:
    return _LOCAL.pack(b"PK\x03\x04", 20, 0, flags, method, 0, _DOS_DATE, crc, csize, size, len(name), 0) + name


def central_record(
    name: bytes, *, crc: int, csize: int, size: int, offset: int, method: int = 0, flags: int = 0
) -> bytes:
    return _CENTRAL.pack(
        b"PK\x01\x02", 20, 3, 20, 0, flags, method, 0, _DOS_DATE, crc, csize, size, len(name), 0, 0, 0, 0,
        _REGULAR_FILE, offset,
    ) + name


def end_record(count: int, cd_size: int, cd_offset: int) -> bytes:
    return _END.pack(b"PK\x05\x06", 0, 0, count, count, cd_size, cd_offset, 0)


def raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    return packer.compress(data) + packer.flush()


@dataclass
class Raw:
    """One entry as written: ``body`` follows the local header; sizes and CRC as declared."""

    name: bytes
    body: bytes
    crc: int
    size: int
    method: int = 0
    flags: int = 0
    csize: int | None = None  # declared compressed size; None: len(body)
    local_name: bytes | None = None  # the name in the local header; None: ``name``


def stored(name: str | bytes, data: bytes, **declared) -> Raw:
    """An uncompressed entry; ``declared`` overrides what its headers say (size, csize, flags, method)."""
    name = name.encode() if isinstance(name, str) else name
    return Raw(**{"name": name, "body": data, "crc": zlib.crc32(data), "size": len(data), **declared})


def deflated(name: str, data: bytes, **declared) -> Raw:
    """A deflated entry; ``declared`` overrides what its headers say."""
    return Raw(**{"name": name.encode(), "body": raw_deflate(data), "crc": zlib.crc32(data), "size": len(data),
                  "method": zipfile.ZIP_DEFLATED, **declared})


def build_zip(raws: list[Raw], *, directory_order: list[int] | None = None) -> bytes:
    """Local headers and bodies in order, then the central directory (in ``directory_order``)."""
    out, records = bytearray(), []
    for raw in raws:
        csize = len(raw.body) if raw.csize is None else raw.csize
        fields = dict(crc=raw.crc, csize=csize, size=raw.size, method=raw.method, flags=raw.flags)
        records.append(central_record(raw.name, offset=len(out), **fields))
        out += local_header(raw.local_name or raw.name, **fields) + raw.body
    directory = b"".join(records[n] for n in (directory_order or range(len(records))))
    return bytes(out + directory + end_record(len(records), len(directory), len(out)))


def overlapping_bomb(count: int, zeros: int) -> bytes:
    """David Fifield's "better zip bomb" (2019): every entry's data run on into the next entry and one shared kernel.

    The file is ``header_0 quote_0 header_1 quote_1 ... header_n-1 kernel``:
    each quote is a stored deflate block holding the next local header as
    literal bytes, so entry i inflates to the headers after it plus the
    kernel's ``zeros``, and the kernel is paid for once.
    """
    names = [f"train/cat/bomb{i:03d}.jpg".encode() for i in range(count)]
    kernel = raw_deflate(b"\0" * zeros)
    headers: list[bytes] = [b""] * count
    content, body_size = b"\0" * zeros, len(kernel)
    for i in reversed(range(count)):
        headers[i] = local_header(names[i], crc=zlib.crc32(content), csize=body_size, size=len(content), method=8)
        if i:
            content = headers[i] + content
            body_size += 5 + len(headers[i])
    quote = [b"\x00" + struct.pack("<2H", len(h), len(h) ^ 0xFFFF) for h in headers]
    out, records = bytearray(), []
    for i in range(count):
        fields = _LOCAL.unpack(headers[i][: _LOCAL.size])
        records.append(central_record(names[i], crc=fields[7], csize=fields[8], size=fields[9], offset=len(out),
                                      method=8))
        out += headers[i] + (quote[i + 1] if i + 1 < count else kernel)
    directory = b"".join(records)
    return bytes(out + directory + end_record(count, len(directory), len(out)))


def cut_out(data: bytes, piece: bytes) -> bytes:
    """The archive with ``piece`` (an entry's data) removed and the central directory kept as it was."""
    at = data.index(piece)
    return data[:at] + data[at + len(piece):]


def _csv_archive(config: dict, rows: str) -> bytes:
    return build_zip([stored("config.json", json.dumps({"filename": "d.csv", **config}).encode()),
                      stored("d.csv", rows.encode())])


_THREE = build_zip([stored("train/cat/a.jpg", b"A" * 300), stored("train/cat/b.jpg", b"B" * 300),
                    stored("train/cat/c.jpg", b"C" * 300)])

#: case -> (demo dataset, format, archive, words the one-line message must hold: the entry and the problem)
HOSTILE = {
    # item 2: zip bombs below the per-entry ratio floor, and entries out of order
    "overlapping entries (Fifield bomb)": ("pets", "folders", overlapping_bomb(40, (1 << 20) - 4096),
                                           ["'train/cat/bomb001.jpg'", "overlaps the data of", "zip bomb"]),
    "many small entries of zeros": ("pets", "folders",
                                    build_zip([deflated(f"train/cat/z{i:03d}.jpg", b"\0" * (1 << 20))
                                               for i in range(100)]),
                                    ["'train/cat/z", "more than 200x its size", "zip bomb?"]),
    "local headers out of order": ("pets", "folders",
                                   build_zip([stored("train/cat/a.jpg", b"a"), stored("train/cat/b.jpg", b"b")],
                                             directory_order=[1, 0]),
                                   ["'train/cat/a.jpg'", "entries must be in archive order"]),
    # item 9: broken entries
    "name flagged UTF-8 that is not": ("pets", "folders",
                                       build_zip([stored(b"train/cat/caf\xe9.jpg", b"x", flags=0x800)]),
                                       ["caf\\xe9.jpg", "flagged as a UTF-8 name but is not UTF-8"]),
    "unsupported compression method": ("pets", "folders", build_zip([stored("train/cat/a.jpg", b"x", method=99)]),
                                       ["'train/cat/a.jpg'", "compression method 99", "stored (0), deflate (8)"]),
    "encrypted flag": ("pets", "folders", build_zip([stored("train/cat/a.jpg", b"x" * 24, flags=0x1)]),
                       ["'train/cat/a.jpg'", "is encrypted"]),
    "corrupt deflate stream": ("pets", "folders",
                               build_zip([Raw(b"train/cat/a.jpg", b"\xff" * 64, 0, 1000, method=8)]),
                               ["'train/cat/a.jpg'", "compressed data are corrupt"]),
    "declared size larger than the data": ("pets", "folders",
                                           build_zip([stored("train/cat/a.jpg", b"tiny", size=100_000,
                                                             csize=100_000)]),
                                           ["'train/cat/a.jpg'", "declares 100,000 bytes of data",
                                            "run past the central directory"]),
    "deflate stream shorter than declared": ("pets", "folders",
                                             build_zip([deflated("train/cat/a.jpg", b"x" * 100, size=5000)]),
                                             ["'train/cat/a.jpg'", "inflates to 100 bytes",
                                              "declares 5,000 bytes"]),
    # zipfile stops at the declared size and then checks the CRC: verified, not assumed
    "deflate stream longer than declared": ("pets", "folders",
                                            build_zip([deflated("train/cat/a.jpg", b"y" * 5000, size=100)]),
                                            ["'train/cat/a.jpg'", "Bad CRC-32"]),
    "local header names another entry": ("pets", "folders",
                                         build_zip([stored("train/cat/a.jpg", b"x", local_name=b"train/cat/b.jpg")]),
                                         ["'train/cat/a.jpg'", "names b'train/cat/b.jpg' instead"]),
    "entry data cut out": ("pets", "folders", cut_out(_THREE, b"B" * 300),
                           ["'train/cat/a.jpg'", "are missing (data cut out"]),
    "NUL inside an entry name": ("pets", "folders", build_zip([stored(b"train/cat/a.jpg\x00.exe", b"x")]),
                                 ["'train/cat/a.jpg\\x00.exe'", "NUL byte in its name"]),
    "CSV empty label_separator": ("iris-like", "csv",
                                  _csv_archive({"multi_label": True, "label_separator": ""},
                                               "a,labels,split\n1,x y,train\n"),
                                  ["config.json", "label_separator must not be empty"]),
    "CSV separator a line break": ("iris-like", "csv",
                                   _csv_archive({"csv_separator": "\r"}, "a\rlabels\rsplit\n"),
                                   ["config.json", "csv_separator must be one character"]),
}


# -- the store, the server, the CLI -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A demo store owned by alice, and the real server on loopback over it."""
    store = tmp_path_factory.mktemp("guard") / "store"
    with Store.open(store, create=True) as opened:
        made = {d.name: d for d in create_demo(opened, items=6, seed=1)}
        key = opened.create_user("alice", "pw")[1]
        opened.give_datasets("alice")
    srv = Server(store)
    try:
        yield store, made, key, srv
    finally:
        srv.stop()


def cli_import(store: Path, dataset_id: str, version_id: str, fmt: str, archive: Path,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``dsexport import`` in its own process, as an operator runs it."""
    return subprocess.run(
        [sys.executable, "-m", "engine", "import", "--store", str(store), dataset_id, version_id, "--format", fmt,
         str(archive)],
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}, capture_output=True, text=True, timeout=120,
    )


def upload(srv: Server, key: str, dataset_id: str, version_id: str, fmt: str, data: bytes) -> requests.Response:
    return requests.post(
        f"{srv.base}datasets/{dataset_id}/versions/{version_id}/upload/{fmt}",
        files={"file": ("dataset.zip", data, "application/x-zip-compressed")},
        headers={"Authorization": f"Bearer {key}"}, timeout=120,
    )


def version_state(store: Path, dataset_id: str, version_id: str) -> tuple:
    """Everything an import may change: revision, items, labels, splits, config."""
    with Store.open(store, create=False) as opened:
        return (
            opened.revision(version_id),
            opened.count_items(version_id),
            [(label.name, label.color) for label in opened.labels(version_id)],
            [split.name for split in opened.splits(version_id)],
            opened.get_version(dataset_id, version_id).config,
        )


def blob_files(store: Path) -> set[Path]:
    return {p for p in (store / "blobs").rglob("*") if p.is_file()}


def assert_one_line_refusal(stderr: str, words: list[str]) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: rejected archive: "), stderr
    for word in words:
        assert word in lines[0], (word, lines[0])


# -- the tests ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_archive_is_refused_by_upload_and_cli_leaving_the_version(served, tmp_path, case):
    store, made, key, srv = served
    which, fmt, data, words = HOSTILE[case]
    d = made[which]
    before, blobs_before = version_state(store, d.dataset_id, d.version_id), blob_files(store)

    r = upload(srv, key, d.dataset_id, d.version_id, fmt, data)
    assert r.status_code == 400, r.text
    message = r.json()["message"]
    assert "\n" not in message
    for word in words:
        assert word in message, (word, message)

    (tmp_path / "hostile.zip").write_bytes(data)
    result = cli_import(store, d.dataset_id, d.version_id, fmt, tmp_path / "hostile.zip")
    assert result.returncode == 2, result.stderr
    assert_one_line_refusal(result.stderr, words)

    assert version_state(store, d.dataset_id, d.version_id) == before
    assert blob_files(store) == blobs_before


def test_operator_cap_refuses_an_archive_that_otherwise_imports(served, tmp_path, monkeypatch):
    """DSEXPORT_IMPORT_MAX_BYTES bounds even a stored archive (ratio 1), for the server and the CLI alike."""
    store, made, key, _ = served
    d = made["pets"]
    data = build_zip([stored(f"train/cat/cap{i}.jpg", os.urandom(1 << 20)) for i in range(3)])
    (tmp_path / "big.zip").write_bytes(data)
    before, blobs_before = version_state(store, d.dataset_id, d.version_id), blob_files(store)
    words = ["'train/cat/cap2.jpg'", "3,145,728 bytes", "more than the 2,097,152 bytes", "DSEXPORT_IMPORT_MAX_BYTES"]

    monkeypatch.setenv("DSEXPORT_IMPORT_MAX_BYTES", "2M")
    capped = Server(store)
    try:
        r = upload(capped, key, d.dataset_id, d.version_id, "folders", data)
    finally:
        capped.stop()
    assert r.status_code == 400, r.text
    for word in words:
        assert word in r.json()["message"], (word, r.json()["message"])
    result = cli_import(store, d.dataset_id, d.version_id, "folders", tmp_path / "big.zip")
    assert result.returncode == 2, result.stderr
    assert_one_line_refusal(result.stderr, words)
    assert version_state(store, d.dataset_id, d.version_id) == before
    assert blob_files(store) == blobs_before

    result = cli_import(store, d.dataset_id, d.version_id, "folders", tmp_path / "big.zip",
                        env={"DSEXPORT_IMPORT_MAX_BYTES": "not a size"})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: DSEXPORT_IMPORT_MAX_BYTES='not a size' is not a size; give a positive number of bytes, "
        "optionally with K, M, G or T (binary), e.g. 10G"
    ]

    monkeypatch.delenv("DSEXPORT_IMPORT_MAX_BYTES")
    fresh = _fresh_version(store, d.dataset_id)
    result = cli_import(store, d.dataset_id, fresh, "folders", tmp_path / "big.zip")
    assert result.returncode == 0, result.stderr
    assert version_state(store, d.dataset_id, fresh)[1] == 3


def _fresh_version(store: Path, dataset_id: str) -> str:
    with Store.open(store, create=False) as opened:
        return opened.create_version(dataset_id).id or ""


def test_csv_cell_beyond_the_csv_module_limit_round_trips(served, tmp_path):
    """A row we export with a cell of 216,000 characters (the csv module's default limit is 131,072) imports back."""
    store, _, key, srv = served
    big = "a long cell of plain words " * 8000  # 216,000 characters
    with Store.open(store, create=True) as opened:
        ds = opened.create_dataset("wide-rows", ContentType.TABULAR)
        version_id = ds.versions[0].id or ""
        opened.update_version_config(version_id, json.dumps({"column_names": "id,body", "csv_separator": ","}))
        label = opened.create_label(version_id, "keep").id or ""
        split = opened.create_split(version_id, "train").id or ""
        opened.add_items(version_id, [NewItem(text=f"1,{big}", split_ids=[split], annotations=[(label, split, "")]),
                                      NewItem(text="2,short", split_ids=[split])])
        opened.give_datasets("alice", [ds.id or ""])
    dataset_id = ds.id or ""
    first = export_bytes(store, dataset_id, version_id, "csv", tmp_path)
    assert len(big) > 131_072 and f"1,{big},keep,train".encode() in first

    by_cli = _fresh_version(store, dataset_id)
    (tmp_path / "first.zip").write_bytes(first)
    result = cli_import(store, dataset_id, by_cli, "csv", tmp_path / "first.zip")
    assert result.returncode == 0, result.stderr
    by_http = _fresh_version(store, dataset_id)
    r = upload(srv, key, dataset_id, by_http, "csv", first)
    assert r.status_code == 200, r.text

    for target in (by_cli, by_http):
        again = export_bytes(store, dataset_id, target, "csv", tmp_path)
        # The archive names its CSV after the version: equal but for that id.
        assert len(again) == len(first)
        assert entries(again) == entries(first, version_id, target)
