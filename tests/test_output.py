"""Where ``export -o`` writes, as a user runs it: what is at the path, full disks, signals.

Real processes, real file systems: a full disk is a tiny tmpfs (as root) or
a file size limit (RLIMIT_FSIZE) for the child; see ``full_disk.py``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from archive_check import check_archive
from cli_run import big_store, export_until_it_writes
from full_disk import full_disk

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str, **kwargs) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **kwargs.pop("env", {})}
    env.pop("DSEXPORT_STORE", None)
    return subprocess.run([sys.executable, "-m", "engine", *args], capture_output=True, env=env, timeout=120, **kwargs)


def one_line_error(done: subprocess.CompletedProcess[bytes]) -> str:
    """The stderr of a failed command: one ``error:`` line, no traceback."""
    text = done.stderr.decode()
    assert done.returncode == 2, (done.returncode, text)
    assert "Traceback" not in text and text.count("\n") == 1 and text.startswith("error: "), text
    return text


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict]]:
    """A demo store of 40 items a dataset: each archive is under 1 MiB, so it is written in one write."""
    root = tmp_path_factory.mktemp("output") / "store"
    done = run("demo", "--store", str(root), "--items", "40", "--json")
    assert done.returncode == 0, done.stderr.decode()
    return root, {d["format"]: d for d in json.loads(done.stdout)}


def export_args(demo, fmt: str = "yolo") -> list[str]:
    root, made = demo
    d = made[fmt]
    return ["export", "--store", str(root), d["dataset_id"], d["version_id"], "-f", fmt, "--no-progress"]


@pytest.fixture(scope="module")
def reference(demo, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The YOLO archive, written to a fresh path."""
    out = tmp_path_factory.mktemp("reference") / "yolo.zip"
    done = run(*export_args(demo), "-o", str(out))
    assert done.returncode == 0, done.stderr.decode()
    check_archive(out)
    return out.read_bytes()


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != ".filler")


# -- a full disk: every byte or an error -------------------------------------


@pytest.mark.parametrize("to", ["file", "stdout"])
def test_a_full_disk_mid_write_fails_the_export_and_leaves_nothing(demo, reference, tmp_path: Path, to: str):
    """The archive (~680 KiB) goes out in one write, of which the disk takes 128 KiB: a short write."""
    assert len(reference) > 256 << 10
    with full_disk(tmp_path / "disk", room=128 << 10) as disk:
        target = disk.folder / "x.zip"
        if to == "file":
            done = run(*export_args(demo), "-o", str(target), preexec_fn=disk.preexec)
            named = str(target)
        else:
            with open(target, "wb") as stdout:
                done = subprocess.run(
                    [sys.executable, "-m", "engine", *export_args(demo), "-o", "-"],
                    stdout=stdout, stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)},
                    preexec_fn=disk.preexec, timeout=120,
                )
            named = "standard output"
        message = one_line_error(done)
        assert disk.problem in message and named in message
        if to == "file":
            assert listing(disk.folder) == []  # neither the archive nor its temporary file


def test_standard_output_on_dev_full_is_a_message(demo):
    with open("/dev/full", "wb") as stdout:
        done = subprocess.run(
            [sys.executable, "-m", "engine", *export_args(demo), "-o", "-"],
            stdout=stdout, stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120,
        )
    message = one_line_error(done)
    assert "no space left" in message and "standard output" in message


# -- what -o does to what is already at the path -------------------------------


def test_a_regular_file_is_replaced_and_keeps_its_permissions(demo, reference, tmp_path: Path):
    target = tmp_path / "x.zip"
    target.write_bytes(b"old")
    target.chmod(0o640)
    done = run(*export_args(demo), "-o", str(target))
    assert done.returncode == 0, done.stderr.decode()
    assert target.read_bytes() == reference
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert listing(tmp_path) == ["x.zip"]


@pytest.mark.parametrize("mode", [0o444, 0o400, 0o000])
def test_a_read_only_file_is_refused_and_left_as_it_was(demo, tmp_path: Path, mode: int):
    target = tmp_path / "x.zip"
    target.write_bytes(b"keep me")
    target.chmod(mode)
    message = one_line_error(run(*export_args(demo), "-o", str(target)))
    assert "read-only" in message and str(target) in message
    assert stat.S_IMODE(target.stat().st_mode) == mode
    target.chmod(0o600)
    assert target.read_bytes() == b"keep me"
    assert listing(tmp_path) == ["x.zip"]


@pytest.mark.parametrize("existing", [True, False], ids=["to-a-file", "dangling"])
def test_a_symlink_is_followed_and_stays_a_link(demo, reference, tmp_path: Path, existing: bool):
    (tmp_path / "real").mkdir()
    real = tmp_path / "real" / "archive.zip"
    if existing:
        real.write_bytes(b"old")
    link = tmp_path / "x.zip"
    link.symlink_to(real)
    done = run(*export_args(demo), "-o", str(link))
    assert done.returncode == 0, done.stderr.decode()
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_bytes() == reference
    assert listing(tmp_path / "real") == ["archive.zip"] and listing(tmp_path) == ["real", "x.zip"]


def test_a_fifo_is_written_as_a_stream(demo, reference, tmp_path: Path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []

    def read() -> None:
        with open(fifo, "rb") as reader:  # waits for the writer, as a user's `unzip` would
            received.append(reader.read())

    reader = threading.Thread(target=read, daemon=True)  # daemon: stuck forever if the FIFO is replaced
    reader.start()
    done = run(*export_args(demo), "-o", str(fifo))
    assert done.returncode == 0, done.stderr.decode()
    assert stat.S_ISFIFO(fifo.lstat().st_mode), "the FIFO was replaced by a file"
    reader.join(30)
    assert received == [reference]
    assert listing(tmp_path) == ["pipe"]


def _device(tmp_path: Path, name: str, minor: int) -> Path:
    """A character device node like /dev/null (minor 3) or /dev/full (minor 7); the real one if not root."""
    if os.geteuid() != 0:
        return Path("/dev") / name
    node = tmp_path / name
    os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, minor))
    return node


def test_a_character_device_is_written_in_place(demo, tmp_path: Path):
    null = _device(tmp_path, "null", 3)
    done = run(*export_args(demo), "-o", str(null))
    assert done.returncode == 0, done.stderr.decode()
    assert stat.S_ISCHR(null.lstat().st_mode)
    full = _device(tmp_path, "full", 7)
    message = one_line_error(run(*export_args(demo), "-o", str(full)))
    assert "no space left" in message and str(full) in message
    assert stat.S_ISCHR(full.lstat().st_mode) and full.lstat().st_rdev == os.makedev(1, 7)
    if os.geteuid() == 0:
        assert listing(tmp_path) == ["full", "null"]


@pytest.mark.parametrize("kind", ["socket", "folder"])
def test_a_socket_or_folder_is_refused(demo, tmp_path: Path, kind: str):
    target = tmp_path / "x"
    if kind == "socket":
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(target))
    else:
        target.mkdir()
    try:
        message = one_line_error(run(*export_args(demo), "-o", str(target)))
    finally:
        if kind == "socket":
            server.close()
    assert kind in message and str(target) in message
    assert (stat.S_ISSOCK if kind == "socket" else stat.S_ISDIR)(target.lstat().st_mode)
    assert listing(tmp_path) == ["x"]


# -- temporary files on a full disk ------------------------------------------


@pytest.mark.parametrize("fmt", ["yolo", "csv", "spacy-ner"])
def test_a_full_temporary_folder_is_a_message_not_a_traceback(tmp_path: Path, fmt: str):
    """The formats that keep lists in spools (and the central directory's spool) on a full TMPDIR."""
    root = tmp_path / "store"
    done = run("demo", "--store", str(root), "--items", "400", "--json")
    assert done.returncode == 0, done.stderr.decode()
    d = next(d for d in json.loads(done.stdout) if d["format"] == fmt)
    # 8 KiB of room: Python's probe of TMPDIR fits, the spools do not. A size limit a
    # file cannot stand in: the store's own files would hit it before the CSV spool.
    with full_disk(tmp_path / "tmp", room=8 << 10, needs_tmpfs=True) as disk:
        done = run(
            "export", "--store", str(root), d["dataset_id"], d["version_id"], "-f", fmt, "-o", "-", "--no-progress",
            env={"TMPDIR": str(disk.folder)}, preexec_fn=disk.preexec,
        )
        message = one_line_error(done)
        assert disk.problem in message and str(disk.folder) in message
        assert listing(disk.folder) == []


# -- signals ------------------------------------------------------------------


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """40,000 items of 2 KiB: an export that takes long enough to be stopped while it writes."""
    root = tmp_path_factory.mktemp("big") / "store"
    return (root, *big_store(root, 40_000))


@pytest.mark.parametrize("backend", ["trio", "asyncio"])
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_stopping_signal_ends_like_ctrl_c(big, tmp_path: Path, stop: signal.Signals, backend: str):
    root, dataset_id, version_id = big
    out = tmp_path / "out"
    out.mkdir()
    proc = export_until_it_writes(
        root, dataset_id, version_id, out, "--backend", backend, "--no-progress",
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        # Frozen while it writes: the signal arrives mid-export, however fast the machine.
        proc.send_signal(signal.SIGSTOP)
        assert [p.name for p in out.iterdir() if p.name.endswith(".partial")], "the export finished before the signal"
        proc.send_signal(stop)
        proc.send_signal(signal.SIGCONT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = stderr.decode()
    assert proc.returncode == 128 + stop, (proc.returncode, text)
    assert text == f"interrupted by {stop.name}; partial output removed\n"
    assert list(out.iterdir()) == []
