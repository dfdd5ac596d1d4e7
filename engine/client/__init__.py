"""The client side: download exports from a SeeMe-compatible API, or build them here.

``Client``/``AsyncClient`` (``client.py``) offer ``download_dataset`` as the
SeeMe docs write it and ``export`` (client-side); ``api.py`` is the HTTP
layer (timeouts, retries, errors), ``download.py`` the resumable download,
``extract.py`` verification and safe extraction (names judged by
``engine.archive_names``, the importer's policy), ``dataset_format.py``
the format enum derived from ``formats.FORMATS``, ``source.py`` the engine
Source over the API.
"""

from engine.client.client import AsyncClient, Client, DownloadResult
from engine.client.dataset_format import DatasetFormat

__all__ = ["AsyncClient", "Client", "DatasetFormat", "DownloadResult"]
