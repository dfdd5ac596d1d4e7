"""The dsexport command run as a user runs it: a real process, with ``$DSEXPORT_STORE`` under the test's control."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def dsexport(*args: str, cwd: Path | None = None, env_store: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    import os

    env = dict(os.environ)
    env.pop("DSEXPORT_STORE", None)
    if env_store is not None:
        env["DSEXPORT_STORE"] = str(env_store)
    return subprocess.run([sys.executable, "-m", "engine", *args], capture_output=True, cwd=cwd, env=env, timeout=120)
