"""A real ``dsexport serve`` on a free loopback port, SDK clients, and the demo data the server tests share."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

from engine.cli import app as cli_app
from engine.demo import create_demo
from engine.store import Store

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``dsexport serve`` over ``store`` (a folder or a metadata URL; ``blobs``: its ``--blobs``).

    ``workdir`` holds the server's log and is its working folder (default: the store folder's parent);
    ``env`` adds to the environment it runs in.
    """

    def __init__(
        self, store: Path | str, worker: str = "trio", *, blobs: str | None = None,
        env: dict[str, str] | None = None, workdir: Path | None = None,
    ) -> None:  # fmt: skip
        self.store = store
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}/api/v1/"
        workdir = workdir if workdir is not None else Path(store).parent
        self.log = workdir / f"server-{self.port}.log"
        environment = {**os.environ, "PYTHONPATH": str(ROOT)}
        environment.pop("DSEXPORT_BLOBS", None)  # where content lives is the test's to say
        environment.update(env or {})
        self._log_file = open(self.log, "wb")
        blob_args = ["--blobs", blobs] if blobs is not None else []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "engine", "serve", "--store", str(store), *blob_args,
             "--bind", f"127.0.0.1:{self.port}", "--worker", worker],
            env=environment, stdout=self._log_file, stderr=subprocess.STDOUT, cwd=workdir,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"server did not start: {self.log.read_text()}")

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log_file.close()
        return self.proc.returncode


def make_user(store: Path | str, name: str, password: str = "pw", *, blobs: str | None = None) -> str:
    """A user of the store (a folder, or a metadata URL with ``blobs``) and its API key."""
    from engine.store.address import StoreAddress

    with StoreAddress(str(store), blobs).open(create=True) as opened:
        return opened.create_user(name, password)[1]


def sdk_client(server: Server, user: str = "alice"):
    from seeme import Client

    return Client(username=user, apikey=server.keys[user], backend=server.base, env_file="/nonexistent/.env")


def png(seed: int) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (4 + seed % 5, 3), (seed * 40 % 256, 90, 200)).save(out, "PNG")
    return out.getvalue()


def store_with_demo(folder: Path, owner: str) -> tuple[Path, str, list]:
    store = folder / "store"
    with Store.open(store, create=True) as opened:
        made = create_demo(opened, items=30, seed=1)
        key = opened.create_user(owner, "pw")[1]
        assert sorted(opened.give_datasets(owner)) == sorted(d.dataset_id for d in made)
    return store, key, made


def url(srv: Server, d, split: str | None = None, fmt: str | None = None) -> str:
    base = f"{srv.base}datasets/{d.dataset_id}/versions/{d.version_id}/download"
    if split:
        base += f"/{split}"
    return base + (f"?format={fmt}" if fmt else "")


def auth(srv: Server, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {srv.keys['alice']}", **extra}


def cli_export(
    store: Path | str, d, fmt: str, tmp_path: Path, split: str | None = None, *, blobs: str | None = None
) -> bytes:
    out = tmp_path / f"cli-{d.name}-{fmt}-{split}.zip"
    args = ["export", "--store", str(store), d.dataset_id, d.version_id, "--format", fmt, "-o", str(out),
            "--no-progress", *(["--blobs", blobs] if blobs is not None else [])]
    if split:
        args += ["--split", split]
    result = CliRunner().invoke(cli_app, args)
    assert result.exit_code == 0, result.output
    return out.read_bytes()
