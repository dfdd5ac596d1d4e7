"""``--help`` of every command shows every default and every bracketed word its help text has.

Typer reads help text as Rich markup, where ``[default: ...]`` is a style tag
and disappears; a default that is not a plain value is therefore given as
the option's ``show_default`` string. These tests read ``--help`` as a user
sees it (a real process on a wide terminal), so such a loss cannot return.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from enum import Enum
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.core import TyperArgument, TyperOption

from engine.cli import app

ROOT = Path(__file__).resolve().parents[2]
BRACKETED = re.compile(r"\[[^\]]*\]")


def commands(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every command and group under ``group`` (Typer's Click objects), with the words that name it."""
    yield path, group
    for name, command in getattr(group, "commands", {}).items():
        yield from commands(command, (*path, name))


COMMANDS = dict(commands(typer.main.get_command(app)))


@cache
def help_of(path: tuple[str, ...]) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TERMINAL_WIDTH", "DSEXPORT_STORE")}
    env |= {"COLUMNS": "400", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "engine", *path, "--help"], capture_output=True, env=env, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


def row_of(text: str, param: Any) -> str:
    """The help line of ``param`` in its panel: its long option (``--store``), or an argument's name."""
    name = max(param.opts, key=len) if isinstance(param, TyperOption) else (param.name or "")
    rows = [line for line in text.splitlines() if line.startswith("│") and re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", line)]
    assert rows, f"no help line for {name}"
    return rows[0]


def shown_default(param: Any) -> str | None:
    """What ``[default: ...]`` must say for ``param``; None where there is no default to show."""
    if param.show_default is False:  # type: ignore[attr-defined]
        return None
    if isinstance(param.show_default, str):  # type: ignore[attr-defined]
        return f"({param.show_default})"  # type: ignore[attr-defined]
    default = param.default
    if param.required or default is None or default == "" or isinstance(param, TyperArgument):
        return None  # nothing, or every split, or a required argument
    if isinstance(param, TyperOption) and param.is_flag:
        if not param.secondary_opts:
            return None  # a plain flag (--json, --force): off unless given
        return (param.opts if default else param.secondary_opts)[0].lstrip("-")
    if isinstance(default, Enum):
        return str(default.value)
    return str(default)


PARAMS = [
    pytest.param(path, param.name, id=" ".join((*path, param.name or "")))
    for path, command in COMMANDS.items()
    for param in command.params
    if param.name != "help"
]


@pytest.mark.parametrize(("path", "name"), PARAMS)
def test_every_default_is_shown(path: tuple[str, ...], name: str):
    param = next(p for p in COMMANDS[path].params if p.name == name)
    expected = shown_default(param)
    row = row_of(help_of(path), param)
    if expected is None:
        assert "[default:" not in row, row
    else:
        assert f"[default: {expected}]" in row, row


@pytest.mark.parametrize(("path", "name"), PARAMS)
def test_no_bracketed_help_text_is_lost(path: tuple[str, ...], name: str):
    param = next(p for p in COMMANDS[path].params if p.name == name)
    row = row_of(help_of(path), param)
    for bracketed in BRACKETED.findall(getattr(param, "help", None) or ""):
        assert bracketed in row, (bracketed, row)


@pytest.mark.parametrize("path", list(COMMANDS), ids=lambda path: " ".join(path) or "dsexport")
def test_no_bracketed_command_text_is_lost(path: tuple[str, ...]):
    text = " ".join(help_of(path).split())
    for bracketed in BRACKETED.findall(COMMANDS[path].help or ""):
        assert " ".join(bracketed.split()) in text, bracketed


@pytest.mark.parametrize("option", ["--store", "--progress", "--apikey", "--shards", "--parts-dir"])
def test_export_shows_the_described_defaults(option: str):
    """The options whose ``[default: ...]`` used to vanish from ``dsexport export --help``."""
    row = next(line for line in help_of(("export",)).splitlines() if re.search(rf"{option}(?![\w-])", line))
    assert re.search(r"\[default: \(\S[^\]]*\)\]", row), row


def test_format_choices_are_the_registry_names():
    from formats import FORMATS

    for path in (("export",), ("download",), ("import",)):
        row = next(line for line in help_of(path).splitlines() if "--format" in line)
        assert f"<{'|'.join(FORMATS)}>" in row, row
