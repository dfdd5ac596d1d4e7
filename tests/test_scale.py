"""Scale: memory stays flat as the item count grows (marker ``scale``).

Run by ``make test-scale`` and ``make bench-full``, not by the default suite.
Peak RSS is the kernel's accounting of the exporting child process
(``wait4``'s ``ru_maxrss``), measured from outside.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from archive_check import check_archive
from engine.store import NewItem, Store

pytestmark = pytest.mark.scale


def _store(root: Path, count: int) -> tuple[str, str]:
    with Store.open(root) as store:
        ds = store.create_dataset(f"scale-{count}", "images", default_splits=True)
        version = ds.versions[0]
        splits = [store.resolve_split(version.id, name).id for name in ("train", "valid", "test")]
        label = store.create_label(version.id, "things")
        store.add_items(
            version.id,
            (
                NewItem(
                    name=f"item{i}",
                    extension="bin",
                    split_ids=[splits[i % 3]],
                    data=i.to_bytes(8, "big") * 128,  # 1 KiB, unique
                    annotations=[(label.id, splits[i % 3], "")] if i % 4 else [],
                )
                for i in range(count)
            ),
        )
    return ds.id or "", version.id or ""


#: Forks the command and prints its peak RSS (KiB) from ``os.wait4``. It runs in a fresh, small
#: interpreter because a child inherits its parent's resident pages into ``ru_maxrss`` at the fork:
#: forked from this test process (Ray, the SDK and matplotlib imported by other test modules) the
#: export would start from well over 100 MiB.
_LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.execvp(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)
"""


def _export_peak_rss(root: Path, ids: tuple[str, str], out: Path) -> int:
    """Run the CLI export in a child and return its peak RSS in bytes."""
    argv = [sys.executable, "-m", "engine", "export", "--store", str(root), *ids, "-f", "folders", "-o", str(out)]
    done = subprocess.run([sys.executable, "-c", _LAUNCHER, *argv], capture_output=True, text=True, check=True)
    code, peak_kib = map(int, done.stdout.split())
    assert code == 0, done.stderr
    return peak_kib * 1024


def test_peak_rss_is_flat_from_10k_to_500k_items(tmp_path: Path):
    small_ids = _store(tmp_path / "small", 10_000)
    large_ids = _store(tmp_path / "large", 500_000)
    small_rss = _export_peak_rss(tmp_path / "small", small_ids, tmp_path / "small.zip")
    large_rss = _export_peak_rss(tmp_path / "large", large_ids, tmp_path / "large.zip")
    assert large_rss < 150 * 2**20, f"peak RSS {large_rss / 2**20:.0f} MiB at 500k items"
    assert large_rss < 1.3 * small_rss, f"{small_rss / 2**20:.0f} MiB at 10k, {large_rss / 2**20:.0f} MiB at 500k"
    with zipfile.ZipFile(tmp_path / "large.zip") as zf:
        assert len(zf.infolist()) == 500_000
    check_archive(tmp_path / "large.zip")


def _empty_entries_zip(path: Path, count: int) -> None:
    """A FOLDERS archive of ``count`` empty text files in one split and label (about 118 bytes per entry)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for n in range(count):
            zf.writestr(f"train/pos/{n:07d}.txt", b"")


def test_importing_a_million_empty_entries_stays_under_800_mib(tmp_path: Path):
    """The plan is spooled, so what remains is zipfile's central directory (about 600 MiB per million entries).

    Before the plan was spooled this import peaked at 1232 MiB.
    """
    archive = tmp_path / "empty.zip"
    _empty_entries_zip(archive, 1_000_000)
    root = tmp_path / "store"
    with Store.open(root) as store:
        dataset = store.create_dataset("empty", "text")
    ids = (dataset.id or "", dataset.versions[0].id or "")
    argv = [sys.executable, "-m", "engine", "import", "--store", str(root), *ids, "--format", "folders", str(archive)]
    done = subprocess.run([sys.executable, "-c", _LAUNCHER, *argv], capture_output=True, text=True, check=True)
    code, peak_kib = map(int, done.stdout.split())
    assert code == 0, done.stderr
    print(f"peak RSS importing 1,000,000 empty entries: {peak_kib // 1024} MiB")  # shown with pytest -s
    with Store.open(root, create=False) as store:
        assert store.count_items(ids[1]) == 1_000_000
    assert peak_kib * 1024 < 800 * 2**20, f"peak RSS {peak_kib // 1024} MiB importing 1,000,000 empty entries"
