"""The client's download and extraction on a full disk, and entry names that are not what they say.

Real server and CLI processes on loopback; a full disk is a tiny tmpfs (as
root) or a file size limit (RLIMIT_FSIZE) for the child; see ``full_disk.py``.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from full_disk import full_disk
from client_support import FAST, FixedBody
from servers import cli_export

from engine import Client, UnsafeArchive
from engine.client.extract import extract_archive, verify_archive

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


def tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() if p.is_file() else b"<folder>"
        for p in sorted(folder.rglob("*"))
        if p.name != ".filler"
    }


def test_a_download_onto_a_full_disk_is_a_message_and_leaves_nothing(demo, tmp_path: Path):
    srv, made = demo
    d = made[0]
    assert len(cli_export(srv.store, d, d.format, tmp_path)) > 64 << 10
    with full_disk(tmp_path / "disk", room=64 << 10) as disk:
        done = subprocess.run(
            [sys.executable, "-m", "engine", "download", "--backend", srv.base, "--apikey", srv.keys["alice"],
             "--no-progress", d.dataset_id, d.version_id, "--format", d.format,
             "--extract-to", str(tmp_path / "data"), "--download-file", str(disk.folder / "d.zip")],
            capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, preexec_fn=disk.preexec, timeout=120,
        )  # fmt: skip
        text = done.stderr.decode()
        assert done.returncode == 2, (done.returncode, text)
        assert "Traceback" not in text and text.count("\n") == 1 and text.startswith("error: "), text
        assert disk.problem in text and str(disk.folder / "d.zip.part") in text
        assert tree(disk.folder) == {}  # nothing was received whole: neither the part nor its record is kept
    assert not (tmp_path / "data").exists()


_EXTRACT = "import sys; from pathlib import Path; from engine.client.extract import extract_archive; " \
    "extract_archive(Path(sys.argv[1]), Path(sys.argv[2]))"


@pytest.mark.parametrize("existing", [False, True], ids=["new-folder", "existing-folder"])
def test_extraction_onto_a_full_disk_leaves_the_folder_as_it_was(demo, tmp_path: Path, existing: bool):
    srv, made = demo
    d = made[0]
    archive = tmp_path / "a.zip"
    archive.write_bytes(cli_export(srv.store, d, d.format, tmp_path))
    names = verify_archive(archive)
    assert names > 20
    # Without a tmpfs: no file over 2 KiB, so some images are written and one is not.
    with full_disk(tmp_path / "disk", room=64 << 10, file_limit=2 << 10) as disk:
        target = disk.folder / "data"
        if existing:
            target.mkdir()
            (target / "keep.txt").write_bytes(b"mine")
            import zipfile

            with zipfile.ZipFile(archive) as z:
                first = next(i.filename for i in z.infolist() if not i.is_dir())
            (target / first).parent.mkdir(parents=True, exist_ok=True)
            (target / first).write_bytes(b"old")  # a file the archive would replace
        before = tree(disk.folder)
        done = subprocess.run(
            [sys.executable, "-c", _EXTRACT, str(archive), str(target)],
            capture_output=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, preexec_fn=disk.preexec, timeout=120,
        )
        text = done.stderr.decode()
        assert done.returncode != 0, text
        assert tree(disk.folder) == before
        assert "OutputError" in text and disk.problem in text and "nothing was extracted" in text, text


# -- names that are not what their flag says (built byte by byte) -------------

_UTF8 = 0x800


def _hand_made_zip(entries: list[tuple[bytes, int, bytes]]) -> bytes:
    """A stored ZIP whose names are taken as given, with the given general-purpose flags."""
    local = central = b""
    for name, flags, data in entries:
        crc = zlib.crc32(data)
        offset = len(local)
        local += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, flags, 0, 0, 0x21, crc, len(data), len(data), len(name), 0)
        local += name + data
        central += struct.pack(
            "<4s6H3L5H2L", b"PK\x01\x02", 20, 20, flags, 0, 0, 0x21, crc, len(data), len(data), len(name), 0, 0, 0, 0,
            0o100644 << 16, offset,
        ) + name  # fmt: skip
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(entries), len(entries), len(central), len(local), 0)
    return local + central + end


@pytest.mark.parametrize(
    ("name", "flags"),
    [(b"train/caf\xe9.txt", _UTF8), (b"train/a\x00b.txt", 0), (b"train/a\x00../../b.txt", _UTF8)],
    ids=["not-utf8", "nul", "nul-utf8"],
)
def test_a_name_that_is_not_what_it_says_is_refused_and_named(tmp_path: Path, name: bytes, flags: int):
    body = _hand_made_zip([(b"train/ok.txt", 0, b"fine"), (name, flags, b"hostile")])
    server = FixedBody(body)
    target = tmp_path / "data"
    try:
        with pytest.raises(UnsafeArchive) as caught:
            Client(server.base, "k", **FAST).download_dataset(
                "d", "v", extract_to_dir=str(target), download_file=str(tmp_path / "h.zip")
            )
    finally:
        server.stop()
    assert repr(name) in str(caught.value) and "nothing was extracted" in str(caught.value)
    assert not target.exists()
    archive = tmp_path / "h.zip"
    assert archive.read_bytes() == body  # kept for inspection, as a corrupt one is
    with pytest.raises(UnsafeArchive, match="nothing was extracted"):
        extract_archive(archive, target)
    assert not target.exists()
