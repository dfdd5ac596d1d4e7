"""The pages a person meets: ``/``, the interactive docs at ``/docs`` and ``/api/v1/``, on the real server.

The docs page is checked the way a person sees it: headless Chromium (the
Debian package ``chromium``; ``.ci/run`` installs it) loads ``/docs`` with
every host but the server's unresolvable, and the operations of
``/openapi.json`` must be listed on the rendered page. Without Chromium
the test is skipped on a developer's machine and fails in CI (``CI`` set).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
import requests
from servers import Server

from engine.store import Store

pytestmark = [pytest.mark.filterwarnings("ignore::ResourceWarning")]


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    store = tmp_path_factory.mktemp("docs") / "store"
    Store.open(store, create=True).close()
    server = Server(store)
    yield server
    server.stop()


def origin(server: Server) -> str:
    return f"http://127.0.0.1:{server.port}"


def chromium() -> str:
    """The Chromium binary; without one, skip on a developer's machine and fail in CI."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI", "").lower() in ("", "0", "false"):
            pytest.skip("Chromium is not installed (apt-get install chromium); CI installs it")
        pytest.fail("CI is set but Chromium is missing: .ci/run must install the chromium package")
    return found


def rendered_dom(url: str, profile: Path) -> str:
    """The page's DOM after its scripts ran, as headless Chromium sees it with only 127.0.0.1 reachable."""
    args = [
        chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",  # nothing from the internet
        "--virtual-time-budget=30000",  # run the page's scripts and fetches to rest, on virtual time
        "--dump-dom", url,
    ]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=120)
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)  # Chromium and its helpers: the process group it leads
        proc.wait()
        raise
    assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
    return out.decode()


class _Operations(HTMLParser):
    """The (METHOD, path) of every operation Swagger UI rendered, and its error panels."""

    def __init__(self) -> None:
        super().__init__()
        self.methods: list[str] = []
        self.paths: list[str] = []
        self.errors = 0
        self._in_method = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = (dict(attrs).get("class") or "").split()
        if "opblock-summary-method" in classes:
            self._in_method = True
        if "opblock-summary-path" in classes:
            self.paths.append(dict(attrs).get("data-path") or "")
        if "errors-wrapper" in classes:
            self.errors += 1

    def handle_data(self, data: str) -> None:
        if self._in_method:
            self.methods.append(data.strip().upper())
            self._in_method = False


def test_the_docs_page_lists_every_operation_in_a_browser(srv, tmp_path):
    document = requests.get(origin(srv) + "/openapi.json").json()
    expected = {(method.upper(), path) for path, ops in document["paths"].items() for method in ops}
    assert ("GET", "/api/v1/datasets/{d}/versions/{v}/download") in expected

    page = _Operations()
    page.feed(rendered_dom(origin(srv) + "/docs", tmp_path / "profile"))
    assert page.errors == 0
    assert len(page.methods) == len(page.paths)
    assert set(zip(page.methods, page.paths)) == expected


class _References(HTMLParser):
    """Every URL a page makes the browser load or link to (src and href)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]


def test_the_docs_page_loads_only_assets_from_this_server(srv):
    r = requests.get(origin(srv) + "/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in r.headers["content-security-policy"]
    refs = _References()
    refs.feed(r.text)
    assert len(refs.urls) >= 3  # the stylesheet, Swagger UI's bundle, the script that starts it
    for url in refs.urls:
        assert url.startswith("/") and not url.startswith("//"), url
        asset = requests.get(origin(srv) + url)
        assert asset.status_code == 200 and asset.content, url
        if url.endswith(".js") and "swagger-ui-bundle" not in url:
            assert not re.search(r"https?://", asset.text), url  # our own script names no other host
    assert not re.search(r"https?://", r.text)
    assert requests.get(origin(srv) + "/docs/assets/no-such-file.js").status_code == 404


def test_the_root_and_the_api_base_point_to_the_docs(srv):
    home = requests.get(origin(srv) + "/")
    assert home.status_code == 200 and home.headers["content-type"].startswith("text/html")
    refs = _References()
    refs.feed(home.text)
    assert {"/docs", "/api/v1/"} <= set(refs.urls)

    index = requests.get(origin(srv) + "/api/v1/")
    assert index.status_code == 200 and index.headers["content-type"] == "application/json"
    body = index.json()
    assert body["name"] == "dsexport" and body["openapi"] == "/openapi.json" and body["docs"] == "/docs"
    assert requests.get(origin(srv) + body["openapi"]).json()["openapi"].startswith("3.")
    assert requests.get(origin(srv) + body["docs"]).status_code == 200

    # the API's own description lists its index, not the pages for people
    paths = requests.get(origin(srv) + "/openapi.json").json()["paths"]
    assert "/api/v1/" in paths and "security" not in paths["/api/v1/"]["get"]
    assert not {"/", "/docs", "/docs/init.js"} & set(paths)
