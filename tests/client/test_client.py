"""The client against the real server on loopback: downloads, resume, safety, client-side export.

Every archive is compared with what the CLI writes from the store for the
same version, format and split: byte for byte.
"""

from __future__ import annotations

import http.server
import io
import socket
import threading
import time
import zipfile
from pathlib import Path

import anyio
import pytest
from archive_check import check_archive
from servers import Server
from servers import cli_export
from typer.testing import CliRunner

from bench.proxy import ImpairedProxy
from engine import (
    ArchiveError,
    AsyncClient,
    AuthenticationFailed,
    Client,
    DatasetFormat,
    InvalidInput,
    NotFound,
    RemoteError,
    UnsafeArchive,
)
from engine.cli import app as cli_app
from engine.store import NewItem, Store
from formats import FORMATS
from client_support import FAST, FixedBody

pytestmark = [
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

def first_split(store: Path, version_id: str) -> str:
    with Store.open(store, create=False) as opened:
        return opened.splits(version_id)[0].id or ""


def fitting_formats(d) -> list[str]:
    """The demo dataset's own format, and FOLDERS for the detection set too (its boxes' labels)."""
    return [d.format, "folders"] if d.format == "yolo" else [d.format]


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_dataset_format_names_the_engine_formats():
    assert {f.value for f in DatasetFormat} == set(FORMATS)


@pytest.mark.parametrize("with_split", [False, True], ids=["version", "split"])
def test_download_every_format_equals_the_cli_export(demo, tmp_path, with_split):
    srv, made = demo
    client = Client(srv.base, srv.keys["alice"], **FAST)
    for d in made:
        split = first_split(srv.store, d.version_id) if with_split else ""
        for fmt in fitting_formats(d):
            expected = cli_export(srv.store, d, fmt, tmp_path, split or None)
            target = tmp_path / f"{d.name}-{fmt}-{with_split}"
            result = client.download_dataset(
                d.dataset_id,
                d.version_id,
                split_id=split,
                extract_to_dir=str(target),
                download_file=str(target) + ".zip",
                remove_download_file=False,
                export_format=DatasetFormat(fmt),
            )
            archive = Path(result.archive or "")
            assert archive.read_bytes() == expected, (d.name, fmt)
            assert result.format == fmt and result.requests == 1 and result.resumed_from == 0
            with zipfile.ZipFile(io.BytesIO(expected)) as z:
                files = {i.filename: z.read(i) for i in z.infolist() if not i.is_dir()}
            assert tree(target) == files
            assert not Path(str(archive) + ".part").exists()


def test_defaults_follow_the_spec_signature_and_remove_the_zip(demo, tmp_path, monkeypatch):
    srv, made = demo
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DSEXPORT_BACKEND", srv.base)
    monkeypatch.setenv("DSEXPORT_API_KEY", srv.keys["alice"])
    d = next(m for m in made if m.content_type == "tabular")
    result = Client().download_dataset(d.dataset_id, d.version_id, "", "data", "dataset.zip", True, "")
    assert result.format == "csv" and result.archive is None
    assert not (tmp_path / "dataset.zip").exists()
    assert (tmp_path / "data" / f"{d.version_id}.csv").is_file()
    # the SDK's name for the folder, and a format given by its SeeMe name
    result = Client().download_dataset(d.dataset_id, d.version_id, extract_to_folder="other", export_format="CSV")
    assert (tmp_path / "other" / "config.json").is_file() and result.format == "csv"


@pytest.mark.parametrize("backend", ["trio", "asyncio"])
def test_async_client_runs_on_both_backends(demo, tmp_path, backend):
    srv, made = demo
    d = made[0]

    async def main():
        async with AsyncClient(srv.base, srv.keys["alice"], **FAST) as client:
            return await client.download_dataset(
                d.dataset_id, d.version_id, extract_to_dir=str(tmp_path / "x"),
                download_file=str(tmp_path / "x.zip"), remove_download_file=False, export_format=d.format,
            )

    options = {"use_uvloop": True} if backend == "asyncio" else {}
    result = anyio.run(main, backend=backend, backend_options=options)
    assert (tmp_path / "x.zip").read_bytes() == cli_export(srv.store, d, d.format, tmp_path)
    assert result.entries > 0


def test_dropped_connections_resume_to_identical_bytes(demo, tmp_path):
    srv, made = demo
    d = made[0]  # images: file blobs and inline blobs
    expected = cli_export(srv.store, d, d.format, tmp_path)
    size = len(expected)
    # each number: where the n-th connection is cut, counted in response bytes (headers included)
    for cuts in ([200], [5_000], [size // 3], [size // 2, size // 4, 1_000], [size - 10]):
        with ImpairedProxy(srv.port, cuts=cuts) as proxy:
            target = tmp_path / f"cut-{cuts[0]}"
            seen: list[tuple[int, int | None]] = []
            result = Client(proxy.base(), srv.keys["alice"], **FAST).download_dataset(
                d.dataset_id, d.version_id, extract_to_dir=str(target), download_file=str(target) + ".zip",
                remove_download_file=False, progress=lambda done, total: seen.append((done, total)),
            )  # no export_format: a named one costs a dataset lookup first, on the connection the proxy cuts
        assert result.format == d.format
        assert Path(str(target) + ".zip").read_bytes() == expected, cuts
        assert result.requests == len(cuts) + 1
        assert seen[-1] == (size, size)
        assert all(a[0] <= b[0] for a, b in zip(seen, seen[1:]))  # resumed: never back to zero


def test_an_interrupted_download_is_kept_and_the_next_call_resumes_it(demo, tmp_path):
    srv, made = demo
    d = made[0]
    expected = cli_export(srv.store, d, d.format, tmp_path)
    zip_path = tmp_path / "dataset.zip"
    with ImpairedProxy(srv.port, cuts=[len(expected) // 2] + [1] * 10) as proxy:
        client = Client(proxy.base(), srv.keys["alice"], timeout=5.0, retries=2, retry_wait=0.01)
        with pytest.raises(RemoteError, match="kept in .*dataset.zip.part to resume"):
            client.download_dataset(d.dataset_id, d.version_id, extract_to_dir=str(tmp_path / "data"),
                                    download_file=str(zip_path), export_format=d.format)
        assert not (tmp_path / "data").exists() and not zip_path.exists()
        kept = (tmp_path / "dataset.zip.part").stat().st_size
        assert 0 < kept < len(expected)
        proxy.cuts.clear()
        result = client.download_dataset(d.dataset_id, d.version_id, extract_to_dir=str(tmp_path / "data"),
                                         download_file=str(zip_path), remove_download_file=False,
                                         export_format=d.format)
    assert result.resumed_from == kept
    assert zip_path.read_bytes() == expected
    assert not (tmp_path / "dataset.zip.part").exists() and not (tmp_path / "dataset.zip.part.json").exists()


def _zip(entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for info, data in entries:
            z.writestr(info, data)
    return buffer.getvalue()


def _symlink(name: str, target: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (0o120777 << 16)
    return info


@pytest.mark.parametrize(
    "hostile, reason",
    [
        ("../escape.txt", "climbs out"),
        ("train/../../escape.txt", "climbs out"),
        ("/tmp/escape.txt", "absolute"),
        ("C:/escape.txt", "absolute"),
        ("..\\escape.txt", "climbs out"),
        (_symlink("train/link", "/etc/passwd"), "symbolic link"),
    ],
    ids=["dotdot", "nested-dotdot", "absolute", "drive", "backslash", "symlink"],
)
def test_a_hostile_archive_is_refused_before_anything_is_written(tmp_path, hostile, reason):
    body = _zip([("train/cat/ok.txt", b"fine"), (hostile, b"/etc/passwd")])
    server = FixedBody(body)
    target = tmp_path / "inside" / "data"
    try:
        with pytest.raises(UnsafeArchive, match=reason) as caught:
            Client(server.base, "k", **FAST).download_dataset("d", "v", extract_to_dir=str(target),
                                                              download_file=str(tmp_path / "h.zip"))
    finally:
        server.stop()
    name = hostile.filename if isinstance(hostile, zipfile.ZipInfo) else hostile
    assert repr(name) in str(caught.value)
    assert not (target / "train").exists()  # not even the harmless entry
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["h.zip"]  # not even the folders it would have made


def test_a_symlink_already_in_the_folder_cannot_lead_out(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    target = tmp_path / "data"
    target.mkdir()
    (target / "train").symlink_to(outside)
    server = FixedBody(_zip([("train/x.txt", b"x")]))
    try:
        with pytest.raises(UnsafeArchive, match="symbolic link"):
            Client(server.base, "k", **FAST).download_dataset("d", "v", extract_to_dir=str(target),
                                                              download_file=str(tmp_path / "h.zip"))
    finally:
        server.stop()
    assert list(outside.iterdir()) == []


def test_a_corrupt_archive_extracts_nothing_and_is_kept(tmp_path):
    body = bytearray(_zip([("train/a.txt", b"A" * 1000), ("train/b.txt", b"B" * 1000)]))
    body[body.index(b"B" * 100) + 10] ^= 0xFF  # one flipped byte inside b.txt's data
    server = FixedBody(bytes(body))
    try:
        with pytest.raises(ArchiveError, match="nothing was extracted"):
            Client(server.base, "k", **FAST).download_dataset("d", "v", extract_to_dir=str(tmp_path / "data"),
                                                              download_file=str(tmp_path / "c.zip"))
    finally:
        server.stop()
    assert not (tmp_path / "data").exists()
    assert (tmp_path / "c.zip").read_bytes() == bytes(body)


def test_unknown_ids_and_a_wrong_key_are_named(demo, tmp_path):
    srv, made = demo
    d = made[0]
    client = Client(srv.base, srv.keys["alice"], **FAST)
    with pytest.raises(NotFound, match="no-such-dataset"):
        client.download_dataset("no-such-dataset", d.version_id, extract_to_dir=str(tmp_path / "a"),
                                download_file=str(tmp_path / "a.zip"))
    with pytest.raises(NotFound, match="no-such-version"):
        client.download_dataset(d.dataset_id, "no-such-version", download_file=str(tmp_path / "a.zip"))
    with pytest.raises(NotFound, match="no-such-split"):
        client.download_dataset(d.dataset_id, d.version_id, split_id="no-such-split",
                                download_file=str(tmp_path / "a.zip"))
    with pytest.raises(AuthenticationFailed, match="refused the API key"):
        Client(srv.base, "wrong-key", **FAST).download_dataset(d.dataset_id, d.version_id,
                                                               download_file=str(tmp_path / "a.zip"))
    with pytest.raises(InvalidInput, match="unknown export format 'pascal-voc'; valid: FOLDERS"):
        client.download_dataset(d.dataset_id, d.version_id, export_format="pascal-voc")
    with pytest.raises(InvalidInput, match="http:// or https://"):
        Client("ftp://example.org/api/v1/", "k")
    assert not list(tmp_path.iterdir())


def test_a_server_that_is_down_or_silent_times_out_with_a_message(tmp_path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(RemoteError, match="cannot reach"):
        Client(f"http://127.0.0.1:{port}/api/v1/", "k", timeout=1.0, retries=2, retry_wait=0.01).download_dataset(
            "d", "v", download_file=str(tmp_path / "a.zip"))
    silent = socket.create_server(("127.0.0.1", 0))  # accepts, never answers
    started = time.monotonic()
    try:
        with pytest.raises(RemoteError, match="did not answer within 0.5 s"):
            Client(f"http://127.0.0.1:{silent.getsockname()[1]}/api/v1/", "k", timeout=0.5, retries=2,
                   retry_wait=0.01).download_dataset("d", "v", download_file=str(tmp_path / "a.zip"))
    finally:
        silent.close()
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("with_split", [False, True], ids=["version", "split"])
def test_client_side_export_equals_the_server_side_export(demo, tmp_path, with_split):
    srv, made = demo
    for d in made:
        split = first_split(srv.store, d.version_id) if with_split else ""
        for fmt in fitting_formats(d):
            out = tmp_path / f"remote-{d.name}-{fmt}-{with_split}.zip"
            args = ["export", "--from", srv.base, "--apikey", srv.keys["alice"], d.dataset_id, d.version_id,
                    "--format", fmt, "-o", str(out), "--no-progress", "--concurrency", "8"]
            if split:
                args += ["--split", split]
            result = CliRunner().invoke(cli_app, args)
            assert result.exit_code == 0, result.output
            assert out.read_bytes() == cli_export(srv.store, d, fmt, tmp_path, split or None), (d.name, fmt)
    check_archive(out)


def test_client_side_export_through_the_python_api_and_a_slow_link(demo, tmp_path):
    srv, made = demo
    d = made[0]
    with ImpairedProxy(srv.port, latency=0.005) as proxy:
        result = Client(proxy.base(), srv.keys["alice"], **FAST).export(
            d.dataset_id, d.version_id, DatasetFormat(d.format), str(tmp_path / "a.zip"), concurrency=16)
    assert (tmp_path / "a.zip").read_bytes() == cli_export(srv.store, d, d.format, tmp_path)
    assert result.items > 0


def test_cli_download_and_its_errors(demo, tmp_path):
    srv, made = demo
    d = made[0]
    base = ["download", "--backend", srv.base, "--apikey", srv.keys["alice"], "--no-progress"]
    result = CliRunner().invoke(cli_app, [*base, d.dataset_id, d.version_id, "--format", d.format,
                                          "--extract-to", str(tmp_path / "data"),
                                          "--download-file", str(tmp_path / "d.zip"), "--keep-zip"])
    assert result.exit_code == 0, result.output
    assert "extracted" in result.output and (tmp_path / "d.zip").read_bytes() == cli_export(
        srv.store, d, d.format, tmp_path)
    result = CliRunner().invoke(cli_app, [*base, "nope", d.version_id, "--download-file", str(tmp_path / "e.zip")])
    assert result.exit_code == 2 and "nope" in result.output
    result = CliRunner().invoke(cli_app, ["export", "--from", srv.base, "--apikey", "bad", d.dataset_id,
                                          d.version_id, "--format", "folders", "-o", str(tmp_path / "f.zip")])
    assert result.exit_code == 2 and "refused the API key" in result.output
    assert not (tmp_path / "f.zip").exists()


def test_user_give_makes_demo_datasets_servable(tmp_path):
    store = tmp_path / "store"
    runner = CliRunner()
    assert runner.invoke(cli_app, ["demo", "--store", str(store), "--items", "3"]).exit_code == 0
    key = runner.invoke(cli_app, ["user", "create", "--store", str(store), "bob"]).output.strip().splitlines()[-1]
    result = runner.invoke(cli_app, ["user", "give", "--store", str(store), "nobody"])
    assert result.exit_code == 2 and "unknown user 'nobody'" in result.output
    result = runner.invoke(cli_app, ["user", "give", "--store", str(store), "bob"])
    assert result.exit_code == 0 and "bob now owns 5 dataset(s)" in result.output
    with Store.open(store, create=False) as opened:
        uid = opened.user_for_key(key)
        assert uid and all(opened.owner_of(ds.id or "") == uid for ds in opened.list_datasets())
        assert opened.give_datasets("bob") == []  # none left without an owner


def test_client_side_export_retries_dropped_requests(demo, tmp_path):
    srv, made = demo
    d = made[0]
    # the first connections (listing and item downloads alike) are cut at assorted points
    with ImpairedProxy(srv.port, cuts=[60, 300, 900, 2_500, 60, 5_000, 400]) as proxy:
        Client(proxy.base(), srv.keys["alice"], **FAST).export(
            d.dataset_id, d.version_id, d.format, str(tmp_path / "a.zip"), concurrency=4)
        assert proxy.connections > 7
    assert (tmp_path / "a.zip").read_bytes() == cli_export(srv.store, d, d.format, tmp_path)


class _Flaky(FixedBody):
    """Answers 503 to the first ``failures`` requests, then the archive (with Range support)."""

    def __init__(self, body: bytes, failures: int) -> None:
        self.requests = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(handler) -> None:  # noqa: N805
                self.requests += 1
                if self.requests <= failures:
                    handler.send_response(503)
                    handler.send_header("Content-Length", "0")
                    handler.end_headers()
                    return
                handler.send_response(200)
                handler.send_header("Content-Length", str(len(body)))
                handler.end_headers()
                handler.wfile.write(body)

            def log_message(handler, *args: object) -> None:  # noqa: N805
                pass

        http.server.ThreadingHTTPServer.__init__(self, ("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.server_address[1]}/api/v1/"


def test_5xx_answers_are_retried_then_reported(tmp_path):
    body = _zip([("train/a.txt", b"A")])
    flaky = _Flaky(body, failures=2)
    try:
        result = Client(flaky.base, "k", timeout=5.0, retries=3, retry_wait=0.01).download_dataset(
            "d", "v", extract_to_dir=str(tmp_path / "ok"), download_file=str(tmp_path / "ok.zip"))
        assert result.requests == 3 and (tmp_path / "ok" / "train" / "a.txt").read_bytes() == b"A"
        flaky.requests = -10  # ten more 503s: more than the retries
        with pytest.raises(RemoteError, match="kept failing .3 attempts.*503"):
            Client(flaky.base, "k", timeout=5.0, retries=3, retry_wait=0.01).download_dataset(
                "d", "v", extract_to_dir=str(tmp_path / "no"), download_file=str(tmp_path / "no.zip"))
    finally:
        flaky.stop()
    assert not (tmp_path / "no").exists() and not list(tmp_path.glob("no.zip*"))


def test_the_blocking_client_works_inside_a_running_event_loop(demo, tmp_path):
    srv, made = demo
    d = made[3]

    async def notebook_cell():
        return Client(srv.base, srv.keys["alice"], **FAST).download_dataset(
            d.dataset_id, d.version_id, extract_to_dir=str(tmp_path / "nb"), download_file=str(tmp_path / "nb.zip"))

    result = anyio.run(notebook_cell, backend="asyncio")
    assert result.entries > 0 and (tmp_path / "nb").is_dir()


def test_large_item_files_wait_in_temporary_files_and_match_the_server(tmp_path, monkeypatch):
    import os

    import engine.client.source as source

    store = tmp_path / "store"
    with Store.open(store, create=True) as opened:
        ds = opened.create_dataset("big", "images", default_splits=True)
        version = ds.versions[0]
        train = opened.resolve_split(version.id, "train")
        sizes = [3 << 20, 10, 1 << 20, (1 << 20) + 1, 700_000, 700_000, 2 << 20, 5]
        opened.add_items(version.id, (
            NewItem(name=f"f{i}", extension="bin", split_ids=[train.id], data=os.urandom(size))
            for i, size in enumerate(sizes)
        ))
        key = opened.create_user("carol", "pw")[1]
        opened.give_datasets("carol")
    spooled: list[int] = []
    real_close = source.FileSpool.close

    def tracking_close(spool):
        blob = real_close(spool)
        spooled.append(blob.size)
        return blob

    monkeypatch.setattr(source, "MEMORY_PER_BATCH", 2 << 20)  # the third 700 kB file goes past the batch budget
    monkeypatch.setattr(source.FileSpool, "close", tracking_close)
    srv = Server(store)
    try:
        Client(srv.base, key, **FAST).export(ds.id, version.id, "folders", str(tmp_path / "remote.zip"),
                                             concurrency=1)
    finally:
        srv.stop()
    local = tmp_path / "local.zip"
    assert CliRunner().invoke(cli_app, ["export", "--store", str(store), ds.id, version.id, "-f", "folders",
                                        "-o", str(local), "--no-progress"]).exit_code == 0
    assert (tmp_path / "remote.zip").read_bytes() == local.read_bytes()
    assert sorted(spooled) == sorted([3 << 20, (1 << 20) + 1, 700_000, 2 << 20])


def test_the_http_source_reads_an_occurrence_range_like_the_store(demo):
    from engine.client.api import RemoteApi
    from engine.client.source import HttpSource
    from engine.sources import StoreSource

    srv, made = demo
    d = made[1]  # text: an `unsup` split and more than one page at page_size 7

    async def ids(source, **occurrences):
        try:
            plan = await source.plan(d.dataset_id, d.version_id, None)
            got = []
            async for page in source.pages(plan, with_content=False, **occurrences):
                got += [(item.id, item.split.id if item.split else None, len(item.annotations)) for item in page]
            return got, plan.total
        finally:
            await source.aclose()

    async def main():
        whole, total = await ids(StoreSource(srv.store))
        assert total == len(whole) > 20
        for start, stop in [(0, None), (0, 5), (3, 17), (7, 14), (total - 4, None), (total, None), (13, total)]:
            remote, remote_total = await ids(HttpSource(RemoteApi(srv.base, srv.keys["alice"]), page_size=7),
                                             start=start, stop=stop)
            assert remote_total == total
            assert remote == whole[start:stop], (start, stop)

    anyio.run(main)
