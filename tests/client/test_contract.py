"""The client as a library user meets it: its signature, the format it got, quiet retries, URL hints.

Against the real server on loopback (the served demo store), the real CLI
in subprocesses, and a fresh interpreter where the default logging matters.
"""

from __future__ import annotations

import inspect
import pydoc
import socket
import subprocess
import sys
import textwrap

import pytest
from cli_run import dsexport

from engine import AsyncClient, Client, InvalidInput, NotFound
from formats import FORMATS

pytestmark = [
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

FAST = dict(timeout=5.0, retry_wait=0.01)

#: ``download_dataset``'s parameters and defaults in spec/export-datasets.txt, in order.
SPEC_SIGNATURE = [
    ("dataset_id", inspect.Parameter.empty),
    ("dataset_version_id", inspect.Parameter.empty),
    ("split_id", ""),
    ("extract_to_dir", "data"),
    ("download_file", "dataset.zip"),
    ("remove_download_file", True),
    ("export_format", ""),
]


@pytest.mark.parametrize("cls", [Client, AsyncClient])
def test_download_dataset_shows_the_spec_signature(cls):
    params = list(inspect.signature(cls.download_dataset).parameters.values())[1:]  # after self
    positional = [(p.name, p.default) for p in params if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    assert positional == SPEC_SIGNATURE
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params[len(SPEC_SIGNATURE):])
    shown = pydoc.render_doc(cls.download_dataset, renderer=pydoc.plaintext)
    assert "*args" not in shown and "**kwargs" not in shown
    assert "split_id: 'str' = ''" in shown and "extract_to_dir: 'str' = 'data'" in shown


def test_the_blocking_export_shows_its_arguments():
    assert inspect.signature(Client.export).parameters.keys() == inspect.signature(AsyncClient.export).parameters.keys()
    assert "*args" not in pydoc.render_doc(Client.export, renderer=pydoc.plaintext)


def _format_cases() -> list[tuple[str, str]]:
    kinds = {"images", "text", "tabular", "ner"}
    return [(kind, fmt) for kind in sorted(kinds) for fmt in FORMATS]


@pytest.mark.parametrize("content_type, fmt", _format_cases())
def test_a_format_is_what_was_asked_for_or_an_error(demo, tmp_path, content_type, fmt):
    srv, made = demo
    of_kind = [d for d in made if d.content_type == content_type]
    d = next((d for d in of_kind if d.format == fmt), of_kind[0])  # images: yolo from the set with boxes
    client = Client(srv.base, srv.keys["alice"], **FAST)
    target = dict(extract_to_dir=str(tmp_path / "data"), download_file=str(tmp_path / "d.zip"))
    fitting = [name for name, spec in FORMATS.items() if content_type in spec.content_types]  # registry order
    if fmt in fitting:
        assert client.download_dataset(d.dataset_id, d.version_id, export_format=fmt, **target).format == fmt
        return
    with pytest.raises(InvalidInput) as refused:
        client.download_dataset(d.dataset_id, d.version_id, export_format=fmt, **target)
    message = str(refused.value)
    assert f"export format {fmt!r} does not fit" in message and repr(content_type) in message
    assert message.endswith("valid for it: " + ", ".join(fitting))
    assert not list(tmp_path.iterdir())  # nothing downloaded, nothing extracted


def test_the_default_format_is_named_in_the_result(demo, tmp_path):
    srv, made = demo
    d = next(d for d in made if d.content_type == "tabular")
    got = Client(srv.base, srv.keys["alice"], **FAST).download_dataset(
        d.dataset_id, d.version_id, extract_to_dir=str(tmp_path / "data"), download_file=str(tmp_path / "d.zip"))
    assert got.format == "csv"


def test_the_cli_refuses_a_format_that_does_not_fit(demo, tmp_path):
    srv, made = demo
    d = next(d for d in made if d.content_type == "images")
    done = dsexport("download", "--backend", srv.base, "--apikey", srv.keys["alice"], "--no-progress",
                    d.dataset_id, d.version_id, "--format", "csv", "--extract-to", str(tmp_path / "data"),
                    "--download-file", str(tmp_path / "d.zip"))
    assert done.returncode == 2 and b"Traceback" not in done.stderr
    assert "export format 'csv' does not fit" in done.stderr.decode()
    assert not list(tmp_path.iterdir())


# -- retries against a dead server: silent in library use ---------------------------


def _dead_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _library_use(tmp_path, configure_logging: str) -> subprocess.CompletedProcess[str]:
    script = textwrap.dedent(f"""
        import logging
        {configure_logging}
        from engine import Client, RemoteError
        try:
            Client("http://127.0.0.1:{_dead_port()}/api/v1/", "k", timeout=1.0, retries=3, retry_wait=0.01
                   ).download_dataset("d", "v", download_file={str(tmp_path / "a.zip")!r})
        except RemoteError:
            pass
        else:
            raise SystemExit("a dead server did not raise RemoteError")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done


def test_retries_print_nothing_in_library_use(tmp_path):
    done = _library_use(tmp_path, "")
    assert done.stdout == "" and done.stderr == ""


def test_retries_reach_an_application_that_configures_logging(tmp_path):
    done = _library_use(tmp_path, "logging.basicConfig(level=logging.WARNING)")
    assert done.stderr.count("stamina.retry_scheduled") == 2  # 3 attempts, 2 retries


def test_the_cli_still_reports_retries(tmp_path):
    done = dsexport("download", "--backend", f"http://127.0.0.1:{_dead_port()}/api/v1/", "--apikey", "k",
                    "--no-progress", "--timeout", "1", "d", "v", "--download-file", str(tmp_path / "a.zip"))
    err = done.stderr.decode()
    assert done.returncode == 2 and "retry 1 in" in err and "cannot reach" in err
    assert "stamina.retry_scheduled" not in err


# -- a backend URL without /api/v1/ ----------------------------------------------------


@pytest.mark.parametrize("suffix, meant", [("", "/api/v1/"), ("/", "/api/v1/"), ("/api", "/api/v1/"),
                                           ("/seeme/", "/seeme/api/v1/")])
def test_a_backend_without_the_api_prefix_gets_a_hint(demo, tmp_path, suffix, meant):
    srv, made = demo
    d = made[0]
    origin = f"http://127.0.0.1:{srv.port}"
    done = dsexport("download", "--backend", origin + suffix, "--apikey", srv.keys["alice"], "--no-progress",
                    d.dataset_id, d.version_id, "--download-file", str(tmp_path / "d.zip"),
                    "--extract-to", str(tmp_path / "data"))
    err = done.stderr.decode()
    assert done.returncode == 2 and "Traceback" not in err
    assert f"not found at {origin}{suffix.rstrip('/')}/datasets/{d.dataset_id}" in err
    assert f"did you mean {origin}{meant}?" in err
    with pytest.raises(NotFound, match=f"did you mean {origin}{meant}"):
        Client(origin + suffix, srv.keys["alice"], **FAST).download_dataset(
            d.dataset_id, d.version_id, export_format=d.format, download_file=str(tmp_path / "e.zip"))
    assert not list(tmp_path.iterdir())


def test_the_right_backend_gets_no_hint(demo, tmp_path):
    srv, _ = demo
    with pytest.raises(NotFound) as missing:
        Client(srv.base, srv.keys["alice"], **FAST).download_dataset(
            "no-such-dataset", "v", download_file=str(tmp_path / "a.zip"))
    assert "no-such-dataset" in str(missing.value) and "did you mean" not in str(missing.value)


def test_a_client_side_export_without_the_api_prefix_gets_the_hint_too(demo, tmp_path):
    srv, made = demo
    d = made[0]
    origin = f"http://127.0.0.1:{srv.port}"
    done = dsexport("export", "--from", origin, "--apikey", srv.keys["alice"], "--no-progress", d.dataset_id,
                    d.version_id, "--format", d.format, "-o", str(tmp_path / "a.zip"))
    err = done.stderr.decode()
    assert done.returncode == 2 and "Traceback" not in err
    assert f"did you mean {origin}/api/v1/?" in err
    assert not (tmp_path / "a.zip").exists()
