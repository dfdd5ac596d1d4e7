"""Refusals of the command line: one line naming the problem and the valid choices, exit 2, nothing created."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def dsexport(*args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DSEXPORT_STORE"} | {"PYTHONPATH": str(ROOT), "COLUMNS": "80"}
    return subprocess.run(
        [sys.executable, "-m", "engine", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout
    )


def assert_refused(done: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr
    for needle in needles:
        assert needle in done.stderr, (needle, done.stderr)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("refusals") / "store"
    done = dsexport("demo", "--store", str(root), "--items", "4", "--json")
    assert done.returncode == 0, done.stderr
    return root, {d["name"]: d for d in json.loads(done.stdout)}


@pytest.fixture()
def held_port() -> Iterator[int]:
    """A port another program listens on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


# -- serve on a port in use ---------------------------------------------------


@pytest.mark.parametrize("worker", ["trio", "uvloop"])
def test_serve_on_a_port_in_use_is_one_line(store, held_port: int, worker: str):
    root, _ = store
    done = dsexport("serve", "--store", str(root), "--bind", f"127.0.0.1:{held_port}", "--worker", worker, timeout=60)
    assert_refused(done, f"127.0.0.1:{held_port}", "in use", "--bind")
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


# -- only init and demo create a store ----------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize(
    "command",
    [
        ["serve", "--bind", "127.0.0.1:{port}"],
        ["user", "create", "alice"],
        ["user", "give", "alice"],
        ["datasets"],
        ["export-all"],
        ["export", "D", "V", "-f", "folders"],
        ["import", "D", "V", "-f", "folders", "archive.zip"],
    ],
    ids=lambda command: " ".join(command[:2]),
)
def test_a_missing_store_is_refused_and_not_created(tmp_path: Path, command: list[str]):
    typo = tmp_path / "dsexport-dta"
    (tmp_path / "archive.zip").write_bytes(b"")
    args = [a.format(port=free_port()) for a in command]
    done = dsexport(*args, "--store", str(typo), cwd=tmp_path, timeout=30)
    assert_refused(done, f"no store at {typo}", "dsexport init", "dsexport demo")
    assert not typo.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["archive.zip"]


def test_init_creates_an_empty_store_once(tmp_path: Path):
    root = tmp_path / "new" / "store"
    made = dsexport("init", "--store", str(root))
    assert made.returncode == 0 and "created an empty store" in made.stderr, made.stderr
    again = dsexport("init", "--store", str(root))
    assert again.returncode == 0 and "exists" in again.stderr, again.stderr
    listed = dsexport("datasets", "--store", str(root), "--json")
    assert listed.returncode == 0 and json.loads(listed.stdout) == []
    key = dsexport("user", "create", "alice", "--store", str(root))
    assert key.returncode == 0 and key.stdout.strip(), key.stderr


# -- --ray's value --------------------------------------------------------------


VALID_FORMS = ("local, auto or", "HOST:PORT")


@pytest.mark.parametrize(
    ("ray", "needles"),
    [
        (["--ray", "-o", "x.zip"], (*VALID_FORMS, "not -o")),
        (["--ray", "--shards", "2", "-o", "x.zip"], (*VALID_FORMS, "not --shards")),
        (["-o", "x.zip", "--ray"], ("needs a value", "local|auto|ADDRESS")),
        (["--ray", "lcoal", "-o", "x.zip"], (*VALID_FORMS, "'lcoal' is not")),
        (["--ray", "head", "-o", "x.zip"], (*VALID_FORMS, "'head' is not")),
    ],
    ids=["before -o", "before --shards", "last", "misspelt", "no port"],
)
def test_ray_without_a_valid_value_names_the_values(store, tmp_path: Path, ray: list[str], needles: tuple[str, ...]):
    root, made = store
    d = made["news"]
    done = dsexport("export", "--store", str(root), d["dataset_id"], d["version_id"], "-f", "spacy-ner", *ray,
                    cwd=tmp_path, timeout=60)
    assert_refused(done, "--ray", *needles)
    assert "unexpected extra argument" not in done.stderr
    assert list(tmp_path.iterdir()) == []


# -- --parts-dir is created like export-all --out ------------------------------


def test_a_missing_parts_dir_is_created_and_removed_afterwards(store, tmp_path: Path):
    root, made = store
    d = made["news"]
    args = ["export", "--store", str(root), d["dataset_id"], d["version_id"], "-f", "spacy-ner"]
    single = dsexport(*args, "-o", str(tmp_path / "single.zip"))
    assert single.returncode == 0, single.stderr
    parts = tmp_path / "scratch" / "parts"
    scaled = dsexport(*args, "-o", str(tmp_path / "scaled.zip"), "--ray", "local", "--shards", "2",
                      "--parts-dir", str(parts), timeout=300)
    assert scaled.returncode == 0, scaled.stderr
    assert (tmp_path / "scaled.zip").read_bytes() == (tmp_path / "single.zip").read_bytes()
    assert not (tmp_path / "scratch").exists()


def test_a_parts_dir_that_cannot_be_made_is_one_line(store, tmp_path: Path):
    root, made = store
    d = made["news"]
    (tmp_path / "a-file").write_text("")
    done = dsexport("export", "--store", str(root), d["dataset_id"], d["version_id"], "-f", "spacy-ner",
                    "-o", str(tmp_path / "x.zip"), "--ray", "local", "--parts-dir", str(tmp_path / "a-file" / "parts"))
    assert_refused(done, "cannot create parts folder", "a-file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_a_refused_ray_export_leaves_no_parts_dir_behind(store, tmp_path: Path):
    root, made = store
    d = made["news"]
    done = dsexport("export", "--store", str(root), d["dataset_id"], d["version_id"], "-f", "spacy-ner",
                    "-o", str(tmp_path / "missing" / "x.zip"), "--ray", "local", "--parts-dir", str(tmp_path / "new" / "parts"))
    assert_refused(done, "does not exist")
    assert list(tmp_path.iterdir()) == []
