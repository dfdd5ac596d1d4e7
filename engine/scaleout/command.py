"""``dsexport export --ray``: the command line's one call into scale-out."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from engine.errors import OutputError
from engine.pipeline import ExportOptions
from engine.scaleout.driver import run_scaleout
from engine.sources import Source
from formats.boxes import left_out_note

__all__ = ["export_on_ray"]


def export_on_ray(
    source_factory: Callable[[], Source],
    dataset_id: str,
    version_id: str,
    output: str,
    options: ExportOptions,
    *,
    ray_address: str,
    shards: int | None,
    parts_dir: str | None,
    backend: str,
) -> str:
    """Run the scale-out export and return the summary line the CLI prints.

    A missing ``parts_dir`` is created, like ``export-all --out``, and
    removed again afterwards: it only ever holds the export's temporary parts.
    """
    local_parts = parts_dir and not parts_dir.startswith("s3://")
    with _made_for_the_export(Path(parts_dir) if local_parts else None):
        result = run_scaleout(
            source_factory,
            dataset_id,
            version_id,
            output,
            options,
            shards=shards,
            ray_address=ray_address,
            parts_dir=parts_dir,
            backend=backend,
        )
    skipped = f", skipped {result.skipped_count} item(s) with missing content" if result.skipped_count else ""
    reruns = f", {len(result.reruns)} re-run for name collisions" if result.reruns else ""
    note = left_out_note(result.format, result.image_labels_left_out, result.boxes)
    return (
        f"wrote {output}: {result.items} items, {result.entries} entries, {result.bytes:,} bytes "
        f"in {result.seconds:.2f} s ({result.shards} shards{reruns}; stitch {result.stitch_seconds:.2f} s){skipped}"
        + (f"\n{note}" if note else "")
    )


@contextmanager
def _made_for_the_export(folder: Path | None) -> Iterator[None]:
    """Create ``folder`` (and missing parents) if absent; remove what was created once empty again."""
    if folder is None or folder.is_dir():
        yield
        return
    created = [folder, *(parent for parent in folder.parents if not parent.exists())]
    try:
        folder.mkdir(parents=True)
    except OSError as exc:
        raise OutputError(f"cannot create parts folder {folder}: {exc.strerror or exc}") from None
    try:
        yield
    finally:
        for made in created:  # deepest first
            try:
                made.rmdir()
            except OSError:
                break  # not empty: something else was put there meanwhile; leave it
