"""The command line on a narrow terminal: tables and progress bars fit, names and ids stay readable."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from rich.cells import cell_len

from terminal import CURSOR_UP, TerminalRun, run_on_terminal

LONG_NAME = "a-dataset-whose-name-is-far-too-long-for-one-narrow-terminal-column"


def listed(store: Path) -> list[dict]:
    done = subprocess.run(
        [sys.executable, "-m", "engine", "datasets", "--store", str(store), "--json"], capture_output=True, timeout=120
    )
    assert done.returncode == 0, done.stderr.decode()
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("terminal") / "store"
    done = subprocess.run(
        [sys.executable, "-m", "engine", "demo", "--store", str(root), "--items", "6"], capture_output=True, timeout=120
    )
    assert done.returncode == 0, done.stderr.decode()
    from engine.store import NewItem, Store

    with Store.open(root, create=False) as opened:
        version = opened.create_dataset(LONG_NAME, "text").versions[0]
        opened.add_items(version.id, [NewItem(name="one", text="hello")])
        # Enough items for five-digit counts and rates: the widths a real export's bar has to hold.
        bulk = opened.create_dataset("bulk", "text", default_splits=True).versions[0]
        train = bulk.splits[0].id
        opened.add_items(bulk.id, (NewItem(name=f"t{i}", text=f"text {i}", split_ids=[train]) for i in range(20_000)))
    return root


def assert_fits(lines: list[str], columns: int) -> None:
    too_wide = [line for line in lines if cell_len(line) > columns]
    assert not too_wide, too_wide


@pytest.mark.parametrize("columns", [80, 100])
@pytest.mark.parametrize("command", ["datasets", "demo"])
def test_tables_fit_the_terminal_with_names_and_whole_ids(store: Path, tmp_path: Path, command: str, columns: int):
    if command == "datasets":
        run = run_on_terminal("datasets", "--store", str(store), columns=columns)
        rows = listed(store)
    else:
        fresh = tmp_path / "demo-store"
        run = run_on_terminal("demo", "--store", str(fresh), "--items", "2", columns=columns)
        rows = listed(fresh)
    assert run.returncode == 0, run.stderr
    lines = TerminalRun.lines(run.stdout)
    assert_fits(lines, columns)
    text = "\n".join(lines)
    for row in rows:
        assert row["dataset_id"] in text and row["version_id"] in text
        if row["name"] == LONG_NAME:  # cut where it does not fit, visibly
            assert any(line.strip("│ ").startswith(LONG_NAME[:20]) and "…" in line for line in lines), text
        else:
            assert any(row["name"] in line.split() or f"{row['name']} " in line for line in lines), (row["name"], text)
        assert row["content_type"] in text


def assert_one_line_bar(run: TerminalRun, columns: int, *needles: str) -> None:
    """The bar was redrawn in place (never a cursor move up: a bar of several lines) and shows ``needles``."""
    assert run.returncode == 0, run.stderr
    assert not CURSOR_UP.search(run.stderr), "the bar took more than one line"
    lines = TerminalRun.lines(run.stderr)
    assert_fits([line for line in lines if not line.startswith("wrote ")], columns)  # messages are never wrapped
    assert any(all(needle in line for needle in needles) for line in lines), lines


@pytest.mark.parametrize("columns", [80, 60])
def test_export_progress_bar_is_one_line(store: Path, tmp_path: Path, columns: int):
    bulk = next(r for r in listed(store) if r["name"] == "bulk")
    run = run_on_terminal(
        "export", "--store", str(store), bulk["dataset_id"], bulk["version_id"], "-f", "folders",
        "-o", str(tmp_path / "bulk.zip"), columns=columns,
    )
    assert_one_line_bar(run, columns, "bulk (folders)", "20000/20000")
    assert (tmp_path / "bulk.zip").is_file()


@pytest.mark.parametrize("columns", [80, 60])
def test_demo_shows_progress_on_a_terminal(tmp_path: Path, columns: int):
    run = run_on_terminal("demo", "--store", str(tmp_path / "store"), "--items", "20", "--json", columns=columns)
    assert_one_line_bar(run, columns, "demo", "100/100")
    assert len(json.loads(TerminalRun.lines(run.stdout)[0])) == 5


def test_demo_without_a_terminal_draws_no_bar(tmp_path: Path):
    done = subprocess.run(
        [sys.executable, "-m", "engine", "demo", "--store", str(tmp_path / "store"), "--items", "3", "--json"],
        capture_output=True, timeout=120,
    )
    assert done.returncode == 0 and done.stderr == b"", done.stderr.decode()
