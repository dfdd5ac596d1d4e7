"""The dsexport command as a user runs it: a real process, real exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from archive_check import check_archive
from cli_run import big_store, dsexport, export_until_it_writes


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    root = tmp_path_factory.mktemp("cli") / "store"
    done = dsexport("demo", "--store", str(root), "--items", "10", "--json")
    assert done.returncode == 0, done.stderr.decode()
    made = json.loads(done.stdout)
    assert {d["content_type"] for d in made} == {"images", "text", "tabular", "ner"}
    assert len(made) == 5
    return root, made


def test_datasets_lists_versions_splits_and_counts(store):
    root, made = store
    done = dsexport("datasets", "--store", str(root), "--json")
    assert done.returncode == 0, done.stderr.decode()
    rows = json.loads(done.stdout)
    assert {r["dataset_id"] for r in rows} == {d["dataset_id"] for d in made}
    reviews = next(r for r in rows if r["name"] == made[1]["name"])
    assert set(reviews["splits"]) >= {"train", "test"}
    assert all(r["items"] > 0 for r in rows)


def test_export_to_file_and_to_stdout_are_identical(store, tmp_path: Path):
    root, made = store
    for d in made:
        out = tmp_path / f"{d['name']}.zip"
        args = ["export", "--store", str(root), d["dataset_id"], d["version_id"], "--format", d["format"]]
        to_file = dsexport(*args, "-o", str(out), "--backend", "asyncio")
        assert to_file.returncode == 0, to_file.stderr.decode()
        assert b"wrote" in to_file.stderr
        to_stdout = dsexport(*args, "-o", "-")
        assert to_stdout.returncode == 0, to_stdout.stderr.decode()
        assert to_stdout.stdout == out.read_bytes()
        assert check_archive(out)


def test_store_from_environment_and_split_option(store, tmp_path: Path):
    root, made = store
    d = made[0]
    done = dsexport(
        "export", d["dataset_id"], d["version_id"], "-f", "folders", "--split", "test", "-o", "t.zip",
        cwd=tmp_path, env_store=root,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert all(name.startswith("test/") for name in check_archive(tmp_path / "t.zip"))


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["NOPE", "{v}", "-f", "folders"], "NOPE"),
        (["{d}", "NOPE", "-f", "folders"], "NOPE"),
        (["{d}", "{v}", "-f", "folders", "--split", "NOPE"], "train"),
        (["{d}", "{v}", "-f", "tarball"], "spacy-ner"),
        (["{d}", "{v}", "-f", "csv"], "folders"),
        (["{d}", "{v}", "-f", "folders", "-o", "missing/dir/a.zip"], "does not exist"),
    ],
)
def test_bad_input_exits_2_with_a_message_and_writes_nothing(store, tmp_path: Path, args, needle):
    root, made = store
    d = made[0]
    filled = [a.format(d=d["dataset_id"], v=d["version_id"]) for a in args]
    done = dsexport("export", "--store", str(root), *filled, cwd=tmp_path)
    assert done.returncode == 2, (done.returncode, done.stderr.decode())
    assert needle in done.stderr.decode()
    assert list(tmp_path.iterdir()) == []


def test_missing_store_is_a_clear_error(tmp_path: Path):
    done = dsexport("datasets", "--store", str(tmp_path / "nothing"))
    assert done.returncode == 2
    assert "no store" in done.stderr.decode()


def test_export_all_writes_every_archive_and_a_summary(store, tmp_path: Path):
    root, made = store
    done = dsexport("export-all", "--store", str(root), "--out", str(tmp_path / "out"), "--json")
    assert done.returncode == 0, done.stderr.decode()
    results = json.loads(done.stdout)
    assert len(results) == len(made)
    # Each dataset in its natural format: the detection demo as yolo, not folders.
    assert {r["dataset_id"]: r["format"] for r in results} == {d["dataset_id"]: d["format"] for d in made}
    archives = sorted((tmp_path / "out").iterdir())
    assert len(archives) == len(made)
    for archive in archives:
        check_archive(archive)


@pytest.mark.parametrize("backend", ["trio", "asyncio"])
def test_ctrl_c_stops_and_removes_the_partial_file(tmp_path: Path, backend: str):
    import signal

    root = tmp_path / "store"
    dataset_id, version_id = big_store(root, 60_000)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    proc = export_until_it_writes(root, dataset_id, version_id, out_dir, "--backend", backend)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr.decode()
    assert b"interrupted" in stderr
    assert list(out_dir.iterdir()) == []


def test_cli_demo_twice_names_the_datasets_and_force(tmp_path: Path):
    store = str(tmp_path / "store")
    assert dsexport("demo", "--store", store, "--items", "2").returncode == 0
    again = dsexport("demo", "--store", store, "--items", "2")
    assert again.returncode == 2, again.stderr.decode()
    message = again.stderr.decode()
    assert "pets, reviews, shapes, iris-like, news" in message and "--force" in message
    assert "Traceback" not in message and len(message.strip().splitlines()) == 1
    listed = dsexport("datasets", "--store", store, "--json")
    assert len(json.loads(listed.stdout)) == 5
    forced = dsexport("demo", "--store", store, "--items", "2", "--force", "--json")
    assert forced.returncode == 0, forced.stderr.decode()
    assert len(json.loads(dsexport("datasets", "--store", store, "--json").stdout)) == 10
