"""How a stopping signal ends a command: SIGTERM and SIGHUP stop it as Ctrl-C does.

One path for every stop means one clean-up (the export's sink removes its
temporary file) and one exit status rule: 128 + the signal's number (130,
143, 129), remembered here because the interrupt itself always arrives as
SIGINT's KeyboardInterrupt.
"""

from __future__ import annotations

import signal

__all__ = ["install_stop_handlers", "stopped_by"]

#: The signal that stopped the command: SIGINT, or SIGTERM/SIGHUP forwarded as it.
_stopped_by = signal.SIGINT


def stopped_by() -> signal.Signals:
    """The signal that stopped the command (SIGINT unless SIGTERM or SIGHUP was forwarded)."""
    return _stopped_by


def _stop_like_ctrl_c(signum: int, frame: object) -> None:
    """SIGTERM and SIGHUP stop a command the way Ctrl-C does.

    The running event loop's own SIGINT handler is called (trio delivers the
    interrupt where it is safe; asyncio cancels its main task), so the
    export unwinds and its sink removes the temporary file; outside a loop
    KeyboardInterrupt is raised here. The exit status remembers which signal.
    """
    global _stopped_by
    _stopped_by = signal.Signals(signum)
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)
    else:  # SIGINT ignored (a background job): still stop
        raise KeyboardInterrupt


def install_stop_handlers() -> None:
    """Route SIGTERM and SIGHUP through Ctrl-C's path, unless they are ignored (as under nohup)."""
    for stopping in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(stopping) == signal.SIG_DFL:
            signal.signal(stopping, _stop_like_ctrl_c)
