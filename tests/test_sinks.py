"""Sinks: a file appears whole or not at all."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from engine.errors import OutputError
from engine.sinks import FileSink, StdoutSink, open_sink


def test_file_sink_is_atomic(tmp_path: Path):
    target = tmp_path / "out.zip"
    sink = FileSink(target)
    sink.write(b"part one ")
    assert not target.exists(), "target must not appear before commit"
    assert len(list(tmp_path.iterdir())) == 1  # the temporary file
    sink.write(b"part two")
    sink.commit()
    assert target.read_bytes() == b"part one part two"
    assert list(tmp_path.iterdir()) == [target]


def test_file_sink_abort_leaves_nothing_and_keeps_old_file(tmp_path: Path):
    target = tmp_path / "out.zip"
    target.write_bytes(b"previous archive")
    sink = FileSink(target)
    sink.write(b"half")
    sink.abort()
    assert target.read_bytes() == b"previous archive"
    assert list(tmp_path.iterdir()) == [target]


def test_missing_folder_is_a_clear_error(tmp_path: Path):
    with pytest.raises(OutputError, match="does not exist"):
        FileSink(tmp_path / "nope" / "out.zip")


def test_folder_as_target_is_a_clear_error(tmp_path: Path):
    with pytest.raises(OutputError, match="is a folder"):
        FileSink(tmp_path)


def test_no_space_left_is_named(tmp_path: Path):
    if not Path("/dev/full").exists():
        pytest.fail("/dev/full is needed to simulate a full disk")
    sink = FileSink(tmp_path / "x.zip")
    sink._file.close()
    sink._file = open("/dev/full", "wb", buffering=0)
    with pytest.raises(OutputError, match="no space left"):
        sink.write(b"x" * 10)
    sink.abort()
    assert list(tmp_path.iterdir()) == []


def test_stdout_sink_and_dash():
    buffer = io.BytesIO()
    sink = StdoutSink(buffer)
    sink.write(b"zip bytes")
    sink.commit()
    assert buffer.getvalue() == b"zip bytes"
    assert isinstance(open_sink("-"), StdoutSink)
