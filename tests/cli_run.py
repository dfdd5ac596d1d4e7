"""The dsexport command run as a user runs it: a real process, with ``$DSEXPORT_STORE`` under the test's control."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def dsexport(*args: str, cwd: Path | None = None, env_store: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    import os

    env = dict(os.environ)
    env.pop("DSEXPORT_STORE", None)
    env.pop("DSEXPORT_BLOBS", None)
    if env_store is not None:
        env["DSEXPORT_STORE"] = str(env_store)
    return subprocess.run([sys.executable, "-m", "engine", *args], capture_output=True, cwd=cwd, env=env, timeout=120)


def big_store(root: Path, items: int) -> tuple[str, str]:
    """A store at ``root`` with one image dataset of ``items`` 2 KiB items: an export long enough to stop midway."""
    import os

    from engine.store import NewItem, Store

    with Store.open(root) as opened:
        ds = opened.create_dataset("big", "images", default_splits=True)
        version = ds.versions[0]
        train = opened.resolve_split(version.id, "train")
        opened.add_items(
            version.id,
            (NewItem(name=f"i{i}", extension="bin", split_ids=[train.id], data=os.urandom(2048)) for i in range(items)),
        )
    return ds.id or "", version.id or ""


def export_until_it_writes(
    root: Path, dataset_id: str, version_id: str, out_dir: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """``dsexport export`` of a version into ``out_dir/a.zip``, returned once its ``.partial`` file has bytes.

    The export starts with SIGHUP at its default, as from a terminal, even when
    these tests run under ``nohup`` (an ignored SIGHUP is inherited, and the
    command rightly keeps ignoring it).
    """
    import signal
    import time

    proc = subprocess.Popen(
        [sys.executable, "-m", "engine", "export", "--store", str(root), dataset_id, version_id,
         "-f", "folders", "-o", str(out_dir / "a.zip"), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL),
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not any(p.name.endswith(".partial") and p.stat().st_size > 0 for p in out_dir.iterdir()):
        if proc.poll() is not None:
            raise AssertionError(proc.communicate())
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise AssertionError("export never started writing")
        time.sleep(0.002)
    return proc
