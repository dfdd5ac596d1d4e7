"""Serving the app with Hypercorn, its worker on trio or on asyncio with uvloop.

SIGINT or SIGTERM starts a graceful shutdown: no new connections, open
requests get :data:`GRACE_SECONDS` to finish, then their streams are cut.
Hypercorn cannot always cut them: its trio worker shields socket writes
and its asyncio worker waits for a closing socket's buffer to drain, so a
client that stops reading would hold the process forever. A watchdog
therefore ends the process :data:`CUT_AFTER` seconds after the signal.
The store cannot be corrupted by a cut: every write is one SQLite
transaction (WAL) and blobs are renamed into place only when complete.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading

from engine.errors import InvalidInput, choices_hint
from engine.store.address import StoreAddress

__all__ = ["WORKERS", "serve"]

WORKERS = ("trio", "uvloop")
GRACE_SECONDS = 5.0
CUT_AFTER = GRACE_SECONDS + 2.0


def _start_watchdog() -> None:
    """After a shutdown signal: exit even if a stalled client keeps a socket open."""

    def cut() -> None:
        logging.getLogger("dsexport.http").warning(
            "connections still open %.0f s after the shutdown signal: cutting them", CUT_AFTER
        )
        logging.shutdown()
        os._exit(0)

    timer = threading.Timer(CUT_AFTER, cut)
    timer.daemon = True
    timer.start()


def _config(bind: str):
    from hypercorn.config import Config

    from engine.server.status_line import add_reason_phrases

    add_reason_phrases()  # "400 Bad Request": Hypercorn has no setting for the phrase
    config = Config()
    config.bind = [bind]
    config.accesslog = None  # the app logs one line per request itself
    config.errorlog = logging.getLogger("hypercorn.error")  # through the root handler, once
    config.graceful_timeout = GRACE_SECONDS
    config.keep_alive_timeout = 75
    return config


def _check_bind(config) -> None:
    """Bind the configured addresses once, with Hypercorn's own socket set-up, and let them go.

    So a port in use (or an address not on this machine) is one line naming
    ``--bind`` and exit 2 before anything starts, instead of Hypercorn's
    traceback from inside the event loop.
    """
    try:
        sockets = config.create_sockets()
    except (OSError, OverflowError) as exc:  # OverflowError: a port beyond 65535
        reason = (exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)).rstrip(".")
        raise InvalidInput(
            f"cannot listen on {', '.join(config.bind)}: {reason}; give another --bind HOST:PORT"
        ) from None
    for sock in (*sockets.secure_sockets, *sockets.insecure_sockets, *sockets.quic_sockets):
        sock.close()


def serve(store: StoreAddress | str | os.PathLike[str], bind: str = "127.0.0.1:8000", worker: str = "trio") -> None:
    """Serve ``store`` (a ``StoreAddress``, or a folder path) on ``bind`` until SIGINT/SIGTERM."""
    address = StoreAddress.of(store)
    if worker not in WORKERS:
        raise InvalidInput(f"unknown worker {worker!r}; valid: {choices_hint(WORKERS)}")
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    from engine.server.app import create_app

    app = create_app(address)
    config = _config(bind)
    _check_bind(config)
    logging.getLogger("dsexport.http").info("serving %s on http://%s (worker %s)", address.display(), bind, worker)
    if worker == "trio":
        import trio
        from hypercorn.trio import serve as hypercorn_serve

        async def stop_on_signal() -> None:
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for _ in signals:
                    _start_watchdog()
                    return

        trio.run(lambda: hypercorn_serve(app, config, shutdown_trigger=stop_on_signal))
    else:
        import asyncio

        import uvloop
        from hypercorn.asyncio import serve as hypercorn_serve

        async def main() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()

            def on_signal() -> None:
                if not stop.is_set():
                    _start_watchdog()
                stop.set()

            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, on_signal)
            await hypercorn_serve(app, config, shutdown_trigger=stop.wait)

        uvloop.run(main())
