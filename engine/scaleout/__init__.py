"""Scale-out: one export cut into shards, run as Ray tasks, stitched into one ZIP.

The flow (``dsexport export ... --ray``):

1. :mod:`~engine.scaleout.shards` cuts the version's item occurrences (the
   source's stable order) into contiguous shards.
2. Each shard runs the ordinary pipeline over its range and writes a
   **part** (:mod:`~engine.scaleout.parts`): local headers and data of its
   entries, its central-directory records with part-relative offsets, the
   records it added to each spool, and the archive names it claimed.
   :mod:`~engine.scaleout.ray_sink` runs the shards as the write tasks of a
   Ray Data ``Datasink``.
3. The driver checks the claimed names (:mod:`~engine.scaleout.claims`):
   a shard that claimed a name an earlier shard had already claimed is run
   again, seeded with the earlier shards' names.
4. The driver **stitches** (:mod:`~engine.scaleout.stitch`): parts copied
   in order by the kernel, central-directory records shifted
   (:mod:`~engine.scaleout.records`), the format's closing entries built
   from the shards' spool pieces with combined CRCs
   (:mod:`~engine.scaleout.crc`), end records by the zip writer itself.

The result is byte-identical to the single-process export. Ray is imported
only by :mod:`~engine.scaleout.ray_sink` and :mod:`~engine.scaleout.driver`.
"""

from engine.scaleout.driver import ScaleoutResult, run_scaleout

__all__ = ["ScaleoutResult", "run_scaleout"]
