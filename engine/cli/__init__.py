"""The ``dsexport`` command line (Typer, with Rich for tables and progress).

    app.py        the Typer application: every command registered, and main()
    common.py     shared options, consoles, --json output, product errors -> one line + exit 2
    signals.py    SIGTERM and SIGHUP stop a command as Ctrl-C does; exit 128 + the signal
    progress.py   the one-line progress bar
    tables.py     tables of datasets that fit 80 columns with whole ids
    datasets.py   demo, init, datasets
    export.py     export, export-all
    download.py   download
    serve.py      serve
    users.py      user create/list/give, user key issue/revoke
    imports.py    import

Every failure the product names (an unknown id, a bad format, a missing
blob, an unwritable output, a full disk) ends with its message on stderr
and exit status 2. Ctrl-C, SIGTERM and SIGHUP end alike, after the partial
output is removed, with 128 + the signal's number (130, 143, 129).
"""

from engine.cli.app import app, main

__all__ = ["app", "main"]
