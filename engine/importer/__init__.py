"""An archive in: hostile-name checks, then the format's ``read()``, then one store transaction.

``ingest`` runs an import (:func:`import_archive`); ``archive_guard`` refuses
broken and hostile ZIP files (bombs, overlapping or doctored entries);
``reads`` reads entries in bounded memory for the formats; ``plan`` spools
what an archive adds; ``limits`` holds the operator's limits. The names
themselves are judged by :mod:`engine.archive_names`, which the client's
extraction shares.
"""

from engine.importer.ingest import MAX_ENTRIES, MAX_RATIO, ImportCounts, check_archive, import_archive

__all__ = ["MAX_ENTRIES", "MAX_RATIO", "ImportCounts", "check_archive", "import_archive"]
