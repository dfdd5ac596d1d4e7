"""Blob back ends: ``local`` (a folder of files) and ``memory`` (tests). See ``engine.store.api.BlobStore``."""
