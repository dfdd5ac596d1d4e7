"""Independent checks of a ZIP archive: Python's zipfile, Info-ZIP, 7-Zip.

``bsdtar`` and ``python -m zipfile -t`` accept some broken archives, so they
are not used. The external tools are required: CI installs them.
"""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path


def read_archive(path: Path) -> dict[str, bytes]:
    """Every entry's bytes, after zipfile has verified each CRC."""
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None
        names = zf.namelist()
        assert len(names) == len(set(names)), "duplicate entry names"
        return {name: zf.read(name) for name in names}


def check_archive(path: Path) -> dict[str, bytes]:
    """Verify with three independent readers and return the entries."""
    for tool in ("unzip", "7z"):
        assert shutil.which(tool), f"{tool} is required to check archives (apt-get install unzip p7zip-full)"
    unzip = subprocess.run(["unzip", "-tq", str(path)], capture_output=True, text=True)
    assert unzip.returncode == 0, unzip.stdout + unzip.stderr
    seven = subprocess.run(["7z", "t", "-bd", str(path)], capture_output=True, text=True)
    assert seven.returncode == 0 and "Everything is Ok" in seven.stdout, seven.stdout + seven.stderr
    return read_archive(path)
