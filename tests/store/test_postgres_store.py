"""What the PostgreSQL back end does beyond the contract: migrations, connections, several processes, faults."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest

from engine.errors import InvalidInput, NotFound, RemoteError
from engine.store import INLINE_LIMIT, LocalBlobs, NewItem, PageContent
from engine.store.postgres import PostgresReader, PostgresStore
from engine.store.postgres.db import display_url, to_postgres
from engine.store.postgres.schema import MIGRATION_LOCK, SCHEMA_VERSION
from postgres import PostgresServer, require_postgres


def _open(url: str, tmp_path: Path, *, create: bool = True) -> PostgresStore:
    return PostgresStore.open_url(url, create=create, files=LocalBlobs(tmp_path / "blobs"))


def _schema_rows(url: str) -> list[int]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("SELECT version FROM dsexport_schema ORDER BY version")]


def test_shared_queries_are_spelled_for_postgresql() -> None:
    assert to_postgres("SELECT a FROM t WHERE x = ? ORDER BY rowid") == "SELECT a FROM t WHERE x = %s ORDER BY seq"
    assert to_postgres("INSERT OR IGNORE INTO t (a) VALUES (?)") == "INSERT INTO t (a) VALUES (%s) ON CONFLICT DO NOTHING"
    assert to_postgres("SELECT '100%'") == "SELECT '100%%'"
    assert to_postgres("SELECT rowidx, growid FROM t") == "SELECT rowidx, growid FROM t"


def test_messages_never_show_a_password() -> None:
    assert display_url("postgresql://ada:s3cret@db:5432/x") == "postgresql://ada:***@db:5432/x"
    assert display_url("postgresql://ada@db/x?sslmode=require&password=s3cret") == (
        "postgresql://ada@db/x?sslmode=require&password=***"
    )
    assert display_url("postgresql://ada@db/x") == "postgresql://ada@db/x"


def test_a_migration_waits_for_one_under_way_and_then_has_nothing_left_to_do(pg_url: str, tmp_path: Path) -> None:
    holder = psycopg.connect(pg_url, autocommit=True)
    holder.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))  # another process is migrating
    opened: list[PostgresStore] = []
    worker = threading.Thread(target=lambda: opened.append(_open(pg_url, tmp_path)))
    worker.start()
    try:
        for _ in range(200):  # the opener's session shows up as waiting for the lock
            waiting = holder.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            ).fetchone()[0]
            if waiting:
                break
            time.sleep(0.05)
        assert waiting == 1
        assert holder.execute("SELECT to_regclass('items')").fetchone()[0] is None  # nothing applied meanwhile
    finally:
        holder.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
        holder.close()
        worker.join(30)
    assert len(opened) == 1
    opened[0].close()
    assert _schema_rows(pg_url) == list(range(1, SCHEMA_VERSION + 1))


def test_two_processes_creating_one_store_at_once_migrate_it_once(pg_url: str, tmp_path: Path) -> None:
    script = (
        "import sys; from engine.store import LocalBlobs; from engine.store.postgres import PostgresStore\n"
        "PostgresStore.open_url(sys.argv[1], create=True, files=LocalBlobs(sys.argv[2])).close()\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, pg_url, str(tmp_path / f"b{n}")], stderr=subprocess.PIPE)
        for n in range(2)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
    assert _schema_rows(pg_url) == list(range(1, SCHEMA_VERSION + 1))


def test_an_empty_database_is_no_store_until_created(pg_url: str, tmp_path: Path) -> None:
    where = display_url(pg_url)
    with pytest.raises(NotFound, match=f"no store at {where}; create one with `dsexport init --store {where}`"):
        _open(pg_url, tmp_path, create=False)
    with pytest.raises(NotFound, match="dsexport init"):
        PostgresReader.open_reader_url(pg_url, files=LocalBlobs(tmp_path / "blobs"))
    _open(pg_url, tmp_path).close()
    _open(pg_url, tmp_path, create=False).close()
    PostgresReader.open_reader_url(pg_url, files=LocalBlobs(tmp_path / "blobs")).close()


def test_readers_refuse_older_and_newer_schemas(pg_url: str, tmp_path: Path) -> None:
    _open(pg_url, tmp_path).close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DELETE FROM dsexport_schema WHERE version = %s", (SCHEMA_VERSION,))
    with pytest.raises(InvalidInput, match="older than this dsexport's.*dsexport init --store"):
        PostgresReader.open_reader_url(pg_url, files=LocalBlobs(tmp_path / "blobs"))
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("INSERT INTO dsexport_schema (version) VALUES (%s), (%s)", (SCHEMA_VERSION, SCHEMA_VERSION + 1))
    for opening in (
        lambda: PostgresReader.open_reader_url(pg_url, files=LocalBlobs(tmp_path / "blobs")),
        lambda: _open(pg_url, tmp_path),
    ):
        with pytest.raises(InvalidInput, match="upgrade dsexport"):
            opening()


def test_a_store_without_a_blob_store_is_refused_naming_blobs(pg_url: str) -> None:
    for opening in (
        lambda: PostgresStore.open_url(pg_url, create=True, files=None),
        lambda: PostgresReader.open_reader_url(pg_url, files=None),
    ):
        with pytest.raises(InvalidInput, match="--blobs"):
            opening()


def test_a_wrong_password_names_the_server_and_never_the_password(postgres, tmp_path: Path) -> None:
    user = postgres.password_user("right-password")
    postgres.new_database()
    good = postgres.url("postgres", user=user, password="right-password")
    bad = postgres.url("postgres", user=user, password="wrong-secret")
    with pytest.raises(RemoteError) as caught:
        _open(bad, tmp_path)
    message = str(caught.value)
    assert f"{user}:***@127.0.0.1:{postgres.port}/postgres" in message and "password authentication failed" in message
    assert "wrong-secret" not in message and "right-password" not in message
    with psycopg.connect(good) as conn:  # the right one gets in
        assert conn.execute("SELECT current_user").fetchone() == (user,)


def test_an_unreachable_server_is_named(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once the socket is closed
    with pytest.raises(RemoteError, match=f"127.0.0.1:{port}/db failed"):
        _open(f"postgresql://someone:pw@127.0.0.1:{port}/db", tmp_path)


def test_two_stores_on_one_database_see_each_others_writes_revisions_and_sizes(pg_url: str, tmp_path: Path) -> None:
    with _open(pg_url, tmp_path) as one, _open(pg_url, tmp_path) as other:
        ds = one.create_dataset("pets", "images", default_splits=True)
        version = ds.versions[0]
        assert [d.id for d in other.list_datasets()] == [ds.id]
        one.add_items(version.id, [NewItem(name="a", split_ids=[version.splits[0].id], data=b"x" * 10)])
        assert other.count_items(version.id) == 1
        assert other.revision(version.id) == one.revision(version.id) > 0
        other.remember_archive_size("etag-1", version.id, other.revision(version.id), 1234)
        assert one.archive_size("etag-1") == 1234


def test_small_blobs_are_inline_and_large_ones_in_the_blob_store(pg_url: str, tmp_path: Path) -> None:
    with _open(pg_url, tmp_path) as store:
        small, large = store.put_blob(b"s" * 100), store.put_blob(b"L" * (INLINE_LIMIT + 1))
        assert store.blobs.files.exists(large.sha256) and not store.blobs.files.exists(small.sha256)
    with psycopg.connect(pg_url) as conn:
        rows = dict(conn.execute("SELECT sha256, octet_length(data) FROM blobs").fetchall())
    assert rows == {small.sha256: 100, large.sha256: None}


def test_export_order_is_byte_order_whatever_the_database_collation(postgres, tmp_path: Path) -> None:
    with postgres.admin() as conn:
        conn.execute(
            "CREATE DATABASE icu_en TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C'"
        )
        # Under this database's own collation "apple" sorts before "Banana"; bytes say the opposite.
    url = postgres.url("icu_en")
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT 'apple' < 'Banana'").fetchone() == (True,)
    with _open(url, tmp_path) as store:
        ds = store.create_dataset("d", "text")
        version_id = ds.versions[0].id
        store.add_items(version_id, [NewItem(id=i, name=i) for i in ("apple", "Banana", "cherry", "Cherry")])
        names = [item.name for page in store.iter_pages(version_id, content=PageContent.NONE) for item in page]
    assert names == sorted(["apple", "Banana", "cherry", "Cherry"])  # Python's str order is byte order here


def test_a_rejected_bulk_batch_names_its_rows_and_leaves_nothing(pg_url: str, tmp_path: Path) -> None:
    with _open(pg_url, tmp_path) as store:
        version_id = store.create_dataset("d", "text").versions[0].id
        store.add_items(version_id, [NewItem(id="dup", name="first")])
        with pytest.raises(InvalidInput, match=r"rows 0\.\.2 were rejected: duplicate key value .*\(id\)=\(dup\)"):
            store.add_items(version_id, [NewItem(id="x1"), NewItem(id="dup"), NewItem(id="x2")])
        assert store.count_items(version_id) == 1


def test_text_postgresql_cannot_hold_is_bad_input_not_a_crash(pg_url: str, tmp_path: Path) -> None:
    with _open(pg_url, tmp_path) as store:
        version_id = store.create_dataset("d", "text").versions[0].id
        with pytest.raises(InvalidInput, match=r"rows 0\.\.0 were rejected: .*(NUL|0x00)"):
            store.add_items(version_id, [NewItem(name="nul", text="a\x00b")])
        assert store.count_items(version_id) == 0


def test_a_reader_cut_off_by_a_restart_fails_with_an_error_naming_the_server(tmp_path: Path) -> None:
    require_postgres()
    server = PostgresServer()  # its own server: a restart would cut the session's other tests off
    try:
        url = server.new_database()
        with _open(url, tmp_path) as store:
            version = store.create_dataset("d", "images", default_splits=True).versions[0]
            train = version.splits[0].id
            store.add_items(version.id, [NewItem(name=f"n{i}", split_ids=[train], data=b"x") for i in range(50)])
            with store.reader() as reader:
                pages = reader.iter_pages(version.id, content=PageContent.BYTES, page_size=10)
                assert len(next(pages)) == 10
                server.restart()
                with pytest.raises(RemoteError, match=f"127.0.0.1:{server.port}"):
                    list(pages)
            assert store.count_items(version.id) == 50  # the pool replaced its cut connections
    finally:
        server.stop()


def test_readers_held_by_slow_downloads_leave_the_pool_to_the_other_calls(pg_url: str, tmp_path: Path) -> None:
    from engine.store.postgres.store import POOL_SIZE

    with _open(pg_url, tmp_path) as store:
        store.create_dataset("d", "text")
        readers = [store.reader() for _ in range(POOL_SIZE + 5)]
        try:
            for reader in readers:
                reader.snapshot().__enter__()  # each holds a transaction, as a download does
            started = time.monotonic()
            assert [d.name for d in store.list_datasets()] == ["d"]
            assert time.monotonic() - started < 5
        finally:
            for reader in readers:
                reader.close()


def test_pack_compaction_on_postgresql_reclaims_deleted_content_while_an_export_reads_on(pg_url: str, s3_env) -> None:
    from engine.store import open_blobs
    from engine.store.compact import compact

    files = open_blobs(f"s3://{s3_env.create_bucket()}/c")
    with PostgresStore.open_url(pg_url, create=True, files=files) as store:
        versions = {}
        for name in ("gone", "kept"):
            version = store.create_dataset(name, "images", default_splits=True).versions[0]
            datas = [f"{name} {i} ".encode() * 20 for i in range(50)]
            store.add_items(version.id, [NewItem(name=f"i{i}", split_ids=[version.splits[0].id], data=d) for i, d in enumerate(datas)])
            versions[name] = (version.id, datas)
        assert len(store.pack_usage()) == 2
        store.delete_dataset(next(d.id for d in store.list_datasets() if d.name == "gone"))
        kept_version, kept = versions["kept"]
        with store.reader() as reader:  # an export that began before the compaction
            pages = reader.iter_pages(kept_version, content=PageContent.BYTES, page_size=10)
            first = [item.content for item in next(pages)]
            report = compact(store, files, grace=3600)
            rest = [item.content for page in pages for item in page]
        assert first + rest == kept
        assert len(report.rewritten) == 2 and report.kept_for_grace == 2
        assert set(store.pack_usage()) == set(report.written)
        assert [item.content for page in store.iter_pages(kept_version, content=PageContent.BYTES) for item in page] == kept
        later = compact(store, files, grace=3600, now=time.time() + 3601)
        assert len(later.deleted) == 2 and set(store.retired_packs()) == set()
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM blobs").fetchone() == (50,)  # the deleted dataset's rows are gone
