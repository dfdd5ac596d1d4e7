"""``Client`` and ``AsyncClient``: SeeMe's ``download_dataset``, streaming and resumable.

``download_dataset`` takes the arguments ``export-datasets.txt`` gives it
(``extract_to_folder`` is accepted too, the SeeMe SDK's name for
``extract_to_dir``). Unlike the SDK, which reads the whole archive into
memory, it streams the archive to ``download_file`` (resuming after a
dropped connection), verifies its length and CRC-32s, and extracts it
refusing entries that would land outside ``extract_to_dir``.

``export`` is the other way to get an archive: it pages through the
version over the API and builds the archive here, in any of the engine's
formats, from any SeeMe-compatible back end.

``AsyncClient`` runs on anyio (trio, or asyncio with uvloop); ``Client``
runs the same code on a private event loop in a helper thread, so it also
works where an event loop is already running (a notebook).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread
import msgspec
from anyio.from_thread import start_blocking_portal

from engine.client.api import DEFAULT_RETRIES, DEFAULT_TIMEOUT, RemoteApi, credentials
from engine.client.download import ByteProgress, download_archive
from engine.client.extract import extract_archive, verify_archive
from engine.client.source import HttpSource
from engine.errors import InvalidInput, choices_hint
from engine.client.dataset_format import DatasetFormat
from engine.model import Dataset
from engine.pipeline import ExportOptions, ExportResult, Progress, export
from engine.sinks import open_sink
from formats import FORMATS

__all__ = ["AsyncClient", "Client", "DownloadResult"]

T = TypeVar("T")


class DownloadResult(msgspec.Struct, kw_only=True):
    """What ``download_dataset`` did."""

    #: The folder the archive was extracted into.
    folder: str
    #: The archive's path, or None when it was removed after extraction.
    archive: str | None
    bytes: int
    entries: int
    #: The format the server used (empty if it did not say).
    format: str
    #: Bytes already on disk from an interrupted earlier try, and requests made.
    resumed_from: int
    requests: int


def _format_value(export_format: DatasetFormat | str | None) -> str:
    """``DatasetFormat.YOLO``, ``"YOLO"``, ``"yolo"`` -> ``"yolo"``; empty -> the server's default."""
    if export_format is None or export_format == "":
        return ""
    if isinstance(export_format, DatasetFormat):
        return export_format.value
    text = str(export_format).strip()
    for fmt in DatasetFormat:
        if text in (fmt.value, fmt.name) or text.lower() == fmt.value:
            return fmt.value
    valid = choices_hint([f.name for f in DatasetFormat] + [f.value for f in DatasetFormat])
    raise InvalidInput(f"unknown export format {export_format!r}; valid: {valid}")


class AsyncClient:
    """A SeeMe-compatible API at ``backend`` (default ``$DSEXPORT_BACKEND``), with ``apikey``
    (default ``$DSEXPORT_API_KEY``). Use as ``async with AsyncClient(...) as client:``, or
    call :meth:`aclose` when done."""

    def __init__(
        self,
        backend: str | None = None,
        apikey: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        retry_wait: float = 0.25,
    ) -> None:
        self.backend, self.apikey = credentials(backend, apikey)
        self._settings = dict(timeout=timeout, retries=retries, retry_wait=retry_wait)
        self._api = RemoteApi(backend, self.apikey, **self._settings)  # type: ignore[arg-type]

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._api.aclose()

    async def download_dataset(
        self,
        dataset_id: str,
        dataset_version_id: str,
        split_id: str = "",
        extract_to_dir: str = "data",
        download_file: str = "dataset.zip",
        remove_download_file: bool = True,
        export_format: DatasetFormat | str = "",
        *,
        extract_to_folder: str | None = None,
        progress: bool | ByteProgress = False,
    ) -> DownloadResult:
        """Download a version (or one split) as ``export_format``, verify it, extract it.

        ``export_format`` empty: the server's default for the content type;
        the result's ``format`` names the format received. A format that
        cannot export the dataset's content type (CSV of images) raises
        InvalidInput naming the formats that can, before anything is written.
        ``progress``: True for a progress bar on stderr, or a callable taking
        (bytes done, total or None). A corrupt or truncated archive raises
        ArchiveError and extracts nothing; an interrupted download keeps
        ``<download_file>.part`` and the next call resumes it.

        Cancelled mid-download, it leaves ``<download_file>.part`` and its
        ``.part.json`` record for the next call to resume, and no extracted files.
        """
        folder = Path(extract_to_folder if extract_to_folder is not None else extract_to_dir)
        fmt = _format_value(export_format)
        if fmt:
            await self._check_format_fits(dataset_id, fmt)
        path = f"datasets/{dataset_id}/versions/{dataset_version_id}/download"
        if split_id:
            path += f"/{split_id}"
        params = {"format": fmt} if fmt else {}
        with _byte_progress(progress, f"{dataset_version_id[:8]} {fmt or 'default'}") as on_bytes:
            got = await download_archive(self._api, path, params, Path(download_file), progress=on_bytes)
        archive = Path(got.path)
        entries = await anyio.to_thread.run_sync(verify_archive, archive, got.bytes)
        await anyio.to_thread.run_sync(extract_archive, archive, folder)
        if remove_download_file:
            archive.unlink(missing_ok=True)
        return DownloadResult(
            folder=str(folder),
            archive=None if remove_download_file else str(archive),
            bytes=got.bytes,
            entries=entries,
            format=got.format or "",
            resumed_from=got.resumed_from,
            requests=got.requests,
        )

    async def _check_format_fits(self, dataset_id: str, fmt: str) -> None:
        """InvalidInput when ``fmt`` cannot export the dataset's content type.

        The server answers such a request with its default format instead
        (the SeeMe SDK re-sends an earlier call's format, seeme-api.md §7.1),
        so a caller who named a format would silently get another one.
        A content type this client does not know is left to the server.
        One GET of the dataset: cancelled, it leaves nothing behind.
        """
        dataset = await self._api.get_json(f"datasets/{dataset_id}", type=Dataset)
        fitting = [name for name, spec in FORMATS.items() if dataset.content_type in spec.content_types]
        if fitting and fmt not in fitting:
            raise InvalidInput(
                f"export format {fmt!r} does not fit dataset {dataset_id} (content type "
                f"{dataset.content_type!r}); valid for it: {choices_hint(fitting)}"
            )

    async def export(
        self,
        dataset_id: str,
        dataset_version_id: str,
        export_format: DatasetFormat | str,
        output: str = "dataset.zip",
        *,
        split_id: str = "",
        concurrency: int = 64,
        skip_missing: bool = False,
        progress: Progress | None = None,
    ) -> ExportResult:
        """Build the archive here from the API's items (client-side export); ``output`` may be ``-``."""
        fmt = _format_value(export_format)
        if not fmt:
            raise InvalidInput(f"a client-side export needs a format; valid: {choices_hint(f.value for f in DatasetFormat)}")
        options = ExportOptions(format=fmt, split=split_id or None, concurrency=concurrency, skip_missing=skip_missing)
        source = self.source(concurrency)
        try:
            return await export(source, dataset_id, dataset_version_id, open_sink(output), options, progress=progress)
        finally:
            await source.aclose()

    def source(self, concurrency: int = 64) -> HttpSource:
        """An engine Source over this client's API, its connection pool sized to ``concurrency``."""
        return HttpSource(RemoteApi(self.backend, self.apikey, max_connections=concurrency, **self._settings))  # type: ignore[arg-type]


class Client:
    """The blocking twin of :class:`AsyncClient`, with the same arguments and methods."""

    def __init__(self, backend: str | None = None, apikey: str | None = None, *, backend_loop: str = "trio", **settings: Any) -> None:
        self._args = credentials(backend, apikey)  # bad arguments fail here, not at the first call
        self._settings = settings
        self._loop = backend_loop

    def _run(self, call: Callable[[AsyncClient], Coroutine[Any, Any, T]]) -> T:
        async def main() -> T:
            async with AsyncClient(*self._args, **self._settings) as client:
                return await call(client)

        with start_blocking_portal(self._loop) as portal:
            return portal.call(main)

    def download_dataset(
        self,
        dataset_id: str,
        dataset_version_id: str,
        split_id: str = "",
        extract_to_dir: str = "data",
        download_file: str = "dataset.zip",
        remove_download_file: bool = True,
        export_format: DatasetFormat | str = "",
        *,
        extract_to_folder: str | None = None,
        progress: bool | ByteProgress = False,
    ) -> DownloadResult:
        return self._run(
            lambda c: c.download_dataset(
                dataset_id,
                dataset_version_id,
                split_id,
                extract_to_dir,
                download_file,
                remove_download_file,
                export_format,
                extract_to_folder=extract_to_folder,
                progress=progress,
            )
        )

    def export(
        self,
        dataset_id: str,
        dataset_version_id: str,
        export_format: DatasetFormat | str,
        output: str = "dataset.zip",
        *,
        split_id: str = "",
        concurrency: int = 64,
        skip_missing: bool = False,
        progress: Progress | None = None,
    ) -> ExportResult:
        return self._run(
            lambda c: c.export(
                dataset_id,
                dataset_version_id,
                export_format,
                output,
                split_id=split_id,
                concurrency=concurrency,
                skip_missing=skip_missing,
                progress=progress,
            )
        )

    # The same arguments as the async methods, so the same documentation in help().
    download_dataset.__doc__ = AsyncClient.download_dataset.__doc__
    export.__doc__ = AsyncClient.export.__doc__


@contextmanager
def _byte_progress(progress: bool | ByteProgress, label: str) -> Iterator[ByteProgress | None]:
    """A Rich download bar on stderr for ``progress=True``; a caller's callable is passed through."""
    if not progress or callable(progress):
        yield progress or None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

    columns = (BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
    with Progress("[bold]{task.description}", *columns, console=Console(stderr=True)) as bar:
        task = bar.add_task(label, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)
