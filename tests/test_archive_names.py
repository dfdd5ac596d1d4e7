"""One hostile-name policy: every name the importer or the client's extraction refused is refused by both.

Each case is a small archive built byte by byte (``zipfile`` itself would
cut a name at a NUL byte or refuse to write some of these); the importer's
archive check and the client's extraction must both refuse it, naming the
entry, and the extraction must leave nothing behind.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import pytest

from engine.archive_names import HostileName, check_names, name_problem
from engine.client.extract import extract_archive
from engine.errors import InvalidInput, UnsafeArchive
from engine.importer import check_archive
from engine.importer.archive_guard import open_archive

_UTF8 = 0x800
_FILE = 0o100644 << 16
_LINK = 0o120777 << 16
_UNIX, _DOS = 3, 0


def hand_made_zip(entries: list[tuple[bytes, int, int, int, bytes]]) -> bytes:
    """A stored ZIP of (name, flags, made-by system, external attributes, data), names taken as given."""
    local = central = b""
    for name, flags, system, attrs, data in entries:
        crc, offset = zlib.crc32(data), len(local)
        local += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, flags, 0, 0, 0x21, crc, len(data), len(data),
                             len(name), 0) + name + data
        central += struct.pack("<4s2B5H3L5H2L", b"PK\x01\x02", 20, system, 20, flags, 0, 0, 0x21, crc, len(data),
                               len(data), len(name), 0, 0, 0, 0, attrs, offset) + name
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(entries), len(entries), len(central), len(local), 0)
    return local + central + end


def _one(name: bytes, *, flags: int = 0, system: int = _UNIX, attrs: int = _FILE) -> list:
    return [(b"train/ok.txt", 0, _UNIX, _FILE, b"fine"), (name, flags, system, attrs, b"hostile")]


#: case -> (entries, words the refusal holds on both sides). The union of what each side refused before.
HOSTILE = {
    "dotdot": (_one(b"../escape.txt"), ["'../escape.txt'", "'..'"]),
    "nested dotdot": (_one(b"train/../../escape.txt"), ["'train/../../escape.txt'", "'..'"]),
    "absolute": (_one(b"/tmp/escape.txt"), ["'/tmp/escape.txt'", "absolute"]),
    "drive letter": (_one(b"C:/escape.txt"), ["'C:/escape.txt'", "absolute"]),
    "drive letter, no slash": (_one(b"C:escape.txt"), ["'C:escape.txt'", "absolute"]),
    "backslash dotdot": (_one(b"..\\escape.txt"), ["'..\\\\escape.txt'", "'..'"]),
    "backslash absolute": (_one(b"\\tmp\\escape.txt"), ["absolute"]),
    "backslash inside": (_one(b"train\\cat.txt"), ["'train\\\\cat.txt'", "backslash"]),
    "symbolic link (unix)": (_one(b"train/link", attrs=_LINK), ["'train/link'", "symbolic link"]),
    "symbolic link (other system)": (_one(b"train/link", system=_DOS, attrs=_LINK), ["'train/link'",
                                                                                       "symbolic link"]),
    "NUL": (_one(b"train/a\x00b.txt"), ["b'train/a\\x00b.txt'", "NUL byte"]),
    "NUL, UTF-8 flagged": (_one(b"train/a\x00../../b.txt", flags=_UTF8), ["b'train/a\\x00../../b.txt'", "NUL byte"]),
    "line break": (_one(b"train/a\nb.txt"), ["'train/a\\nb.txt'", "control character"]),
    "escape character": (_one(b"train/\x1b[31mred.txt"), ["control character"]),
    "flagged UTF-8, is not": (_one(b"train/caf\xe9.txt", flags=_UTF8), ["b'train/caf\\xe9.txt'",
                                                                        "flagged as a UTF-8 name but is not UTF-8"]),
    "duplicate": (_one(b"train/ok.txt"), ["'train/ok.txt'", "appears twice"]),
    "duplicate but for case": (_one(b"TRAIN/OK.txt"), ["'TRAIN/OK.txt'", "appears twice"]),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_the_importer_refuses_it(case: str):
    entries, words = HOSTILE[case]
    with pytest.raises(InvalidInput) as caught:
        with open_archive(io.BytesIO(hand_made_zip(entries))) as zf:
            check_archive(zf)
    message = str(caught.value)
    assert message.startswith("rejected archive: entry ")
    for word in words:
        assert word in message, (word, message)


@pytest.mark.parametrize("case", list(HOSTILE))
def test_the_client_extraction_refuses_it_and_writes_nothing(case: str, tmp_path: Path):
    entries, words = HOSTILE[case]
    archive = tmp_path / "hostile.zip"
    archive.write_bytes(hand_made_zip(entries))
    target = tmp_path / "out" / "data"
    with pytest.raises(UnsafeArchive) as caught:
        extract_archive(archive, target)
    message = str(caught.value)
    assert message.startswith("archive entry ") and message.endswith("nothing was extracted")
    for word in words:
        assert word in message, (word, message)
    assert not (tmp_path / "out").exists()


def test_harmless_names_pass_both_sides(tmp_path: Path):
    entries = [(b"train/cat/a.jpg", 0, _UNIX, _FILE, b"a"), ("valid/caf\u00e9 \U0001f600.txt".encode(), _UTF8, _UNIX,
                                                            _FILE, b"b"), (b"c.txt", 0, _DOS, 0, b"c")]
    data = hand_made_zip(entries)
    with open_archive(io.BytesIO(data)) as zf:
        assert [i.filename for i in check_archive(zf)] == ["train/cat/a.jpg", "valid/caf\u00e9 \U0001f600.txt", "c.txt"]
    (tmp_path / "ok.zip").write_bytes(data)
    done = extract_archive(tmp_path / "ok.zip", tmp_path / "out")
    assert done.files == 3 and (tmp_path / "out" / "valid" / "caf\u00e9 \U0001f600.txt").read_bytes() == b"b"


def test_the_policy_reads_one_entry_and_the_whole_list():
    import zipfile

    fine = zipfile.ZipInfo("train/a.jpg")
    assert name_problem(fine) is None
    problem = name_problem(zipfile.ZipInfo("../a.jpg"))
    assert problem is not None and problem.shown == "'../a.jpg'" and "'..'" in problem.reason
    folder = zipfile.ZipInfo("train/")
    check_names([folder, folder, fine])  # a folder entry may repeat: it writes no file
    with pytest.raises(HostileName, match="appears twice"):
        check_names([fine, zipfile.ZipInfo("Train/A.jpg")])
