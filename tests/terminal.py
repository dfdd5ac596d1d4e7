"""Run ``python -m engine`` on a pseudo-terminal of a given width, as a person at a terminal sees it."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
CURSOR_UP = re.compile(r"\x1b\[\d*A")


@dataclass
class TerminalRun:
    returncode: int
    stdout: str  # as written, escape sequences included
    stderr: str

    @staticmethod
    def lines(raw: str) -> list[str]:
        """The text lines as drawn: escape sequences removed, split at line ends and carriage returns."""
        return [line for line in re.split(r"\r\n|\n|\r", _ESCAPE.sub("", raw)) if line.strip()]


def run_on_terminal(*args: str, columns: int = 80, timeout: float = 300) -> TerminalRun:
    """Run the CLI with stdout and stderr on terminals ``columns`` wide (stdin: /dev/null)."""
    masters, slaves = [], []
    for _ in range(2):
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
        masters.append(master)
        slaves.append(slave)
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR", "DSEXPORT_STORE")}
    env |= {"TERM": "xterm-256color", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine", *args], stdin=subprocess.DEVNULL, stdout=slaves[0], stderr=slaves[1], env=env
    )
    for slave in slaves:
        os.close(slave)
    chunks: dict[int, list[bytes]] = {master: [] for master in masters}
    open_fds = list(masters)
    try:
        while open_fds:
            ready, _, _ = select.select(open_fds, [], [], timeout)
            if not ready:
                raise TimeoutError(f"no output for {timeout} s from {args}")
            for fd in ready:
                try:
                    data = os.read(fd, 65536)
                except OSError:  # EIO: the process closed its end
                    data = b""
                if data:
                    chunks[fd].append(data)
                else:
                    open_fds.remove(fd)
        returncode = proc.wait(timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for master in masters:
            os.close(master)
    out, err = (b"".join(chunks[m]).decode("utf-8", "replace") for m in masters)
    return TerminalRun(returncode, out, err)
