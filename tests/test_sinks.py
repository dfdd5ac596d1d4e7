"""Sinks: a file appears whole or not at all."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest

from engine.errors import OutputError
from engine.scaleout.stitch import copy_range
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
    sink = open_sink("/dev/full")  # written in place, as a stream
    with pytest.raises(OutputError, match="no space left on the device while writing /dev/full"):
        sink.write(b"x" * 10)
    sink.abort()
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_commit_refuses_an_archive_whose_bytes_did_not_all_reach_the_disk(tmp_path: Path):
    target = tmp_path / "out.zip"
    target.write_bytes(b"previous archive")
    sink = FileSink(target)
    sink.write(b"x" * 10)
    with pytest.raises(OutputError, match=r"only 10 of the archive's 20 bytes"):
        sink.commit(20)
    assert target.read_bytes() == b"previous archive"
    assert list(tmp_path.iterdir()) == [target]


def test_commit_counts_the_bytes_the_kernel_copied_in(tmp_path: Path):
    """The scale-out stitch copies parts into the sink's descriptor: they count toward the size."""
    part = tmp_path / "part"
    part.write_bytes(b"p" * 5000)
    target = tmp_path / "out.zip"
    sink = FileSink(target)
    sink.write(b"head")
    with open(part, "rb") as source:
        copy_range(source.fileno(), sink.fileno(), 0, 5000)
    sink.write(b"tail")
    sink.commit(5008)
    assert target.read_bytes() == b"head" + b"p" * 5000 + b"tail"


def test_stdout_sink_and_dash():
    buffer = io.BytesIO()
    sink = StdoutSink(buffer)
    sink.write(b"zip bytes")
    sink.commit()
    assert buffer.getvalue() == b"zip bytes"
    assert isinstance(open_sink("-"), StdoutSink)
