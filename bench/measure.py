"""Run a contender as a child process and measure it from outside.

Wall time is taken by this (parent) process around the child, from before
the fork to after ``os.wait4`` returns; peak RSS is the ``ru_maxrss`` that
``wait4`` reports for the child: the kernel's accounting (KiB on Linux), the
largest resident set of the child or of any descendant it waited for (so a
``sh -c 'find | xargs cat'`` reports its largest process, not their sum).

One caveat of that accounting: a forked child starts with its parent's
resident pages, and the kernel carries that into ``ru_maxrss`` across
``exec``. The orchestrator therefore stays small (datasets are generated and
plots drawn in other processes), forks rather than vforks (a vfork child
would inherit the parent's *lifetime* peak), and :func:`rss_floor` measures
the floor, ``true`` spawned the same way, which every report prints: a peak
at the floor means "no more than this".

An export that reads its pages in a page reader process (``dsexport`` on a
large store) reports that process's own peak (``page_reader_peak_rss_kib``);
its figure is the sum of both peaks, as the two run side by side.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["Run", "Summary", "as_dict", "empty_trash", "measure_one", "prewarm", "rss_floor", "run_child", "summarise"]


@dataclass
class Run:
    """One measured run of one contender."""

    seconds: float
    peak_rss_kib: int
    exit_code: int
    warmup: bool = False
    #: What the child printed as JSON (archive bytes, entries, inner seconds).
    child: dict = field(default_factory=dict)
    error: str = ""


@dataclass
class Summary:
    """Median, min and max over the measured (non-warm-up) runs."""

    runs: int
    seconds_median: float
    seconds_min: float
    seconds_max: float
    items_per_s: float
    items_per_s_min: float
    items_per_s_max: float
    mb_per_s: float
    peak_rss_mib_median: float
    peak_rss_mib_min: float
    peak_rss_mib_max: float


def run_child(argv: list[str], cwd: Path, *, env: dict[str, str] | None = None, warmup: bool = False) -> Run:
    """Fork, exec ``argv`` in ``cwd``, wait with ``os.wait4``; stdout is parsed as JSON if it is."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        environment = dict(os.environ if env is None else env)
        started = time.perf_counter()
        pid = os.fork()
        if pid == 0:  # the child: only async-signal-safe work, then exec
            try:
                os.chdir(cwd)
                os.dup2(out.fileno(), 1)
                os.dup2(err.fileno(), 2)
                os.execvpe(argv[0], argv, environment)
            finally:
                os._exit(127)
        _, status, usage = os.wait4(pid, 0)
        seconds = time.perf_counter() - started
        code = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace").strip()
        stderr = err.read().decode(errors="replace").strip()
    child: dict = {}
    if stdout.startswith("{"):
        try:
            child = json.loads(stdout.splitlines()[-1])
        except json.JSONDecodeError:
            pass
    error = "" if code == 0 else (stderr or stdout)[-2000:]
    peak = usage.ru_maxrss + int(child.get("page_reader_peak_rss_kib") or 0)
    return Run(round(seconds, 4), peak, code, warmup, child, error)


def rss_floor() -> int:
    """Peak RSS (KiB) reported for ``true``: the floor every child's figure starts from."""
    return run_child(["true"], Path("/")).peak_rss_kib


def measure_one(argv: list[str], cwd: Path, out: Path, trash: Path, *, warmup: bool = False) -> Run:
    """One run of a contender writing into a fresh, empty ``out``.

    Afterwards its files are deleted and any folders it made (a
    materialised tree) moved to ``trash``, for :func:`empty_trash` to remove
    after the point: deleting a million files slows this file system's next
    file creations for a while (ext4 ``discard``), which must not fall on
    the next timed run.
    """
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    try:
        return run_child(argv, cwd, warmup=warmup)
    finally:
        for path in out.iterdir():
            if path.is_file():
                path.unlink()
        trash.mkdir(parents=True, exist_ok=True)
        out.rename(trash / f"{out.name}-{time.monotonic_ns()}")


def empty_trash(trash: Path) -> None:
    """Remove what the runs left (not timed) and flush the file system."""
    shutil.rmtree(trash, ignore_errors=True)
    os.sync()


def prewarm(paths: list[Path]) -> None:
    """Read files into the page cache, so every contender starts from a warm cache."""
    buffer = bytearray(1 << 20)  # one small buffer: this process's RSS must stay low
    for path in paths:
        with open(path, "rb", buffering=0) as f:
            while f.readinto(buffer):
                pass


def summarise(runs: list[Run], items: int, payload_bytes: int) -> Summary | None:
    """The summary of the successful measured runs; None if there are none."""
    good = [r for r in runs if not r.warmup and r.exit_code == 0]
    if not good:
        return None
    secs = [r.seconds for r in good]
    rss = [r.peak_rss_kib / 1024 for r in good]
    median = statistics.median(secs)
    return Summary(
        runs=len(good),
        seconds_median=round(median, 4),
        seconds_min=min(secs),
        seconds_max=max(secs),
        items_per_s=round(items / median, 1),
        items_per_s_min=round(items / max(secs), 1),
        items_per_s_max=round(items / min(secs), 1),
        mb_per_s=round(payload_bytes / 1e6 / median, 2),
        peak_rss_mib_median=round(statistics.median(rss), 1),
        peak_rss_mib_min=round(min(rss), 1),
        peak_rss_mib_max=round(max(rss), 1),
    )


def as_dict(obj: Run | Summary | None) -> dict | None:
    return None if obj is None else asdict(obj)
