"""The command line on a PostgreSQL store: ``--store postgresql://...`` or ``$DSEXPORT_STORE``, with ``--blobs``."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

import pytest

from cli_run import dsexport
from engine.store import LocalBlobs, NewItem
from engine.store.postgres import PostgresStore
from postgres import PostgresServer, require_postgres


def test_a_postgresql_store_needs_blobs_and_says_so(pg_url: str, tmp_path: Path) -> None:
    done = dsexport("init", "--store", pg_url)
    assert done.returncode == 2
    assert "--blobs" in done.stderr.decode() and "Traceback" not in done.stderr.decode()


def test_init_demo_and_export_through_the_environment(pg_url: str, tmp_path: Path) -> None:
    import os

    blobs = tmp_path / "content"
    assert dsexport("init", "--store", pg_url, "--blobs", str(blobs)).returncode == 0
    env = {**os.environ, "DSEXPORT_STORE": pg_url, "DSEXPORT_BLOBS": str(blobs)}

    def run(*args: str) -> subprocess.CompletedProcess[bytes]:
        import sys

        return subprocess.run([sys.executable, "-m", "engine", *args], capture_output=True, env=env, timeout=120)

    made = run("demo", "--items", "12")
    assert made.returncode == 0, made.stderr.decode()
    with PostgresStore.open_url(pg_url, files=LocalBlobs(blobs)) as store:
        datasets = store.list_datasets()
        counts = {d.name: store.count_items(d.versions[0].id or "") for d in datasets}
    assert len(datasets) == 5 and set(counts.values()) == {12}
    pets = next(d for d in datasets if d.name == "pets")
    out = tmp_path / "pets.zip"
    done = run("export", pets.id or "", pets.versions[0].id or "", "-f", "folders", "-o", str(out), "--no-progress")
    assert done.returncode == 0, done.stderr.decode()
    with zipfile.ZipFile(out) as archive:
        assert archive.testzip() is None
        assert sum(not n.endswith("/") for n in archive.namelist()) == 12
    checked = subprocess.run(["unzip", "-tq", str(out)], capture_output=True)
    assert checked.returncode == 0, checked.stdout


def test_a_wrong_password_exits_2_naming_the_server_not_the_password(postgres, tmp_path: Path) -> None:
    user = postgres.password_user("the-right-one")
    url = postgres.url("postgres", user=user, password="not-the-one")
    done = dsexport("datasets", "--store", url, "--blobs", str(tmp_path / "b"))
    err = done.stderr.decode()
    assert done.returncode == 2, err
    assert f"127.0.0.1:{postgres.port}" in err and "password authentication failed" in " ".join(err.split())
    assert "not-the-one" not in err and "the-right-one" not in err and "Traceback" not in err


def test_the_password_can_come_from_pgpassword_instead_of_the_url(postgres, tmp_path: Path) -> None:
    import os
    import sys

    user = postgres.password_user("from-the-environment")
    database = postgres.new_database().rsplit("/", 1)[1]
    url = postgres.url(database, user=user)  # no password in it
    env = {**os.environ, "PGPASSWORD": "from-the-environment"}
    env.pop("DSEXPORT_STORE", None)
    done = subprocess.run(
        [sys.executable, "-m", "engine", "init", "--store", url, "--blobs", str(tmp_path / "b")],
        capture_output=True, env=env, timeout=120,
    )
    assert done.returncode == 0, done.stderr.decode()
    env["PGPASSWORD"] = "wrong"
    refused = subprocess.run(
        [sys.executable, "-m", "engine", "datasets", "--store", url, "--blobs", str(tmp_path / "b")],
        capture_output=True, env=env, timeout=120,
    )
    assert refused.returncode == 2 and "password authentication failed" in refused.stderr.decode()


def test_a_database_restarted_mid_export_fails_clearly_and_leaves_no_archive(tmp_path: Path) -> None:
    require_postgres()
    server = PostgresServer()  # its own: the restart would cut the session's other tests off
    try:
        url, blobs = server.new_database(), tmp_path / "content"
        with PostgresStore.open_url(url, create=True, files=LocalBlobs(blobs)) as store:
            version = store.create_dataset("big", "images", default_splits=True).versions[0]
            train = version.splits[0].id
            store.add_items(version.id or "", [NewItem(name="first", split_ids=[train], data=b"x" * 2048)])
            dataset_id = version.dataset_id
        _fill(url, version.id or "", train or "", 40_000)  # an export long enough to cut, made in a second
        out = tmp_path / "out"
        out.mkdir()
        import sys

        proc = subprocess.Popen(
            [sys.executable, "-m", "engine", "export", "--store", url, "--blobs", str(blobs), dataset_id,
             version.id or "", "-f", "folders", "-o", str(out / "a.zip"), "--no-progress"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        import time

        deadline = time.monotonic() + 60
        while not any(p.stat().st_size > 0 for p in out.iterdir()):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the export never started writing"
            time.sleep(0.002)
        server.restart()
        _, stderr = proc.communicate(timeout=60)
        err = stderr.decode()
        assert proc.returncode == 2, err
        assert f"127.0.0.1:{server.port}" in err and "Traceback" not in err
        assert list(out.iterdir()) == []  # neither the archive nor its partial file
    finally:
        server.stop()


def _fill(url: str, version_id: str, split_id: str, n: int) -> None:
    """``n`` more items of the split sharing its first item's blob, made inside the database
    (``add_items`` is tested elsewhere; this only makes an export long enough to cut)."""
    import psycopg

    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO items (id, version_id, name, description, text, extension, blob_id, created_at, updated_at)"
            " SELECT 'i' || lpad(g::text, 8, '0'), %s, 'i' || g, '', '', 'bin', (SELECT min(id) FROM blobs), '', ''"
            " FROM generate_series(1, %s) g",
            (version_id, n),
        )
        conn.execute(
            "INSERT INTO item_splits (split_id, item_id) SELECT %s, id FROM items WHERE id LIKE 'i%%'", (split_id,)
        )


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_both_url_schemes_name_the_back_end(pg_url: str, tmp_path: Path, scheme: str) -> None:
    url = scheme + pg_url.removeprefix("postgresql")
    done = dsexport("init", "--store", url, "--blobs", str(tmp_path / "b"))
    assert done.returncode == 0, done.stderr.decode()
    assert dsexport("datasets", "--store", url, "--blobs", str(tmp_path / "b")).returncode == 0


def test_store_copy_sqlite_to_postgresql_and_back_exports_the_same_bytes(pg_url: str, tmp_path: Path) -> None:
    from engine.demo import create_demo
    from engine.pipeline import ExportOptions, run_export
    from engine.sinks import FileSink
    from engine.sources import StoreSource
    from engine.store import Store
    from engine.store.address import StoreAddress
    from formats import FORMATS

    src, back, pg_blobs = tmp_path / "src", tmp_path / "back", str(tmp_path / "pg-content")
    with Store.open(src) as store:
        made = create_demo(store, items=12, seed=4)
        store.create_user("ada", "pw")
        store.give_datasets("ada")
    there = dsexport("store", "copy", "--store", str(src), "--to", pg_url, "--to-blobs", pg_blobs)
    assert there.returncode == 0, there.stderr.decode()
    again = dsexport("store", "copy", "--store", str(src), "--to", pg_url, "--to-blobs", pg_blobs)  # resumable
    assert again.returncode == 0, again.stderr.decode()
    home = dsexport("store", "copy", "--store", pg_url, "--blobs", pg_blobs, "--to", str(back))
    assert home.returncode == 0, home.stderr.decode()
    compared = 0
    for d in made:
        for fmt, cls in FORMATS.items():
            if d.content_type not in cls.content_types:
                continue
            archives = []
            for name, address in (
                ("src", StoreAddress(str(src))), ("pg", StoreAddress(pg_url, pg_blobs)), ("back", StoreAddress(str(back))),
            ):
                out = tmp_path / f"{name}-{d.name}-{fmt}.zip"
                run_export(
                    lambda address=address: StoreSource(address), d.dataset_id, d.version_id, FileSink(out),
                    ExportOptions(format=fmt),
                )
                archives.append(out.read_bytes())
            assert archives[0] == archives[1] == archives[2], f"{fmt} export of {d.name} differs after the copies"
            compared += 1
    assert compared >= 8
    with PostgresStore.open_url(pg_url, files=LocalBlobs(pg_blobs)) as pg:
        assert pg.login("ada", "pw") is not None  # users and their password hashes came along
