"""The scenarios: which dataset, at which sizes, against which contenders.

A :class:`Scenario` names a dataset kind (:mod:`bench.generate`) and, for
each mode (``quick`` for ``make bench``, ``full`` for ``make bench-full``),
the points to measure: one dataset size each, with its contenders and how
many times to run them. Adding a scenario is adding one entry to
:data:`SCENARIOS`. The HTTP scenarios' contenders
(:mod:`bench.http_contenders`) start a server for each run.

The quick run measures fewer points and runs than the full one (about 25
minutes on a 2-core machine once the datasets exist, most of it the 1 M-item
points and the S3 and Ray scenarios); where it measures less than the full
run, :attr:`Scenario.quick_note` says so in the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

__all__ = ["MODES", "SCENARIOS", "Point", "Scenario"]

MODES = ("quick", "full")

#: Every archive writer plus the floors: the default line-up of blob scenarios.
ALL = ["dsexport", "zipstream-plain", "zipfile-memory", "materialise", "zip-cli", "cat-file", "cat", "crc32"]
#: Ours to a file, to standard output and over HTTP, against the writers and floors the targets name.
FILE_BLOBS = ["dsexport", "dsexport-stdout", "http-download", "zipstream-plain", "zip-cli", "cat-file", "cat"]
#: What the quick run measures of them (the read floor and, for big blobs, zip -r are no target there).
QUICK_IMAGES = [c for c in FILE_BLOBS if c != "cat"]
QUICK_BLOBS = [c for c in FILE_BLOBS if c not in ("cat", "zip-cli")]
#: The ratio columns of the scenarios whose content lives in blob files.
FILE_RATIOS = ("zipstream-plain", "zip-cli", "cat-file")
#: Single-big-entry formats (CSV, SPACY_NER): no blob files to cat or zip by hand.
TEXT = ["dsexport", "zipstream-plain", "zipfile-memory", "crc32"]
#: One process against the same export as Ray shards.
SCALEOUT = ["dsexport", "dsexport-ray-1", "dsexport-ray-2"]


@dataclass(frozen=True)
class Point:
    """One dataset size of a scenario, measured against ``contenders``."""

    n: int
    params: dict[str, int]
    contenders: list[str]
    #: Measured runs per contender (after one warm-up unless ``warmup`` is False).
    repeat: int = 3
    warmup: bool = True
    #: Contenders run fewer times here (name -> repeat), e.g. the slow ones at 1 M.
    repeat_of: dict[str, int] = field(default_factory=dict)
    #: Contenders left out of the warm-up round (the store is pre-read into the page cache anyway).
    cold: tuple[str, ...] = ()

    def runs_of(self, contender: str, repeat: int | None) -> int:
        """Measured runs of ``contender``: the ``--repeat`` override, else this point's plan."""
        if repeat is not None:
            return repeat
        return self.repeat_of.get(contender, self.repeat)


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    #: Dataset kind, a key of ``bench.generate.BUILDERS``.
    kind: str
    #: Fixed dataset parameters; ``n`` comes from the point.
    params: dict[str, int]
    #: mode -> points
    plan: dict[str, list[Point]]
    #: Contenders the table divides every rate by (ratio columns).
    ratios: tuple[str, ...] = ("zipstream-plain", "cat")
    #: The largest ``--sizes`` value accepted (a guard for scenarios of big items).
    max_n: int = 10_000_000
    #: What the quick run measures less of, and what only the full run does (printed in the report).
    quick_note: str = ""
    full_note: str = ""
    notes: str = ""

    def points(self, mode: str, sizes: list[int] | None = None) -> list[Point]:
        """The points of ``mode``; ``sizes`` replaces the sizes (an unplanned size gets the first point's plan)."""
        planned = self.plan[mode]
        if not sizes:
            return planned
        if max(sizes) > self.max_n:
            raise ValueError(f"scenario {self.name} takes at most {self.max_n:,} items, got {max(sizes):,}")
        by_n = {p.n: p for p in planned}
        return [replace(by_n.get(n, planned[0]), n=n, params={**self.params, "n": n}) for n in sizes]


def _points(params: dict[str, int], sizes: list[int], contenders: list[str], **plan) -> list[Point]:
    return [Point(n, {**params, "n": n}, list(contenders), **plan) for n in sizes]


_SMALL = {"size": 1024, "seed": 0}
_YOLO = {"kib": 100, "seed": 0}
_BLOBS = {"mib": 100, "seed": 0}
#: COCO and Ultralytics of the same images and boxes, beside Datumaro's COCO exporter.
BOXES = ["dsexport", "dsexport-ultralytics", "datumaro-coco", "zipstream-plain", "crc32"]
_SEED = {"seed": 0}

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in [
        Scenario(
            name="small",
            title="Many small items: FOLDERS of 1 KiB items",
            kind="small",
            params=_SMALL,
            plan={
                "quick": [
                    Point(10_000, {**_SMALL, "n": 10_000}, ALL, cold=("materialise",),
                          repeat_of={"materialise": 1, "zipfile-memory": 2, "zip-cli": 2, "crc32": 2}),
                    Point(100_000, {**_SMALL, "n": 100_000}, [c for c in ALL if c != "materialise"],
                          repeat_of={"zipfile-memory": 2, "zip-cli": 2, "cat-file": 2, "crc32": 2}),
                    Point(1_000_000, {**_SMALL, "n": 1_000_000}, ["dsexport", "zipstream-plain", "zip-cli", "crc32"],
                          repeat=2, repeat_of={"zipstream-plain": 1, "zip-cli": 1, "crc32": 1},
                          cold=("dsexport", "zipstream-plain", "crc32")),
                ],
                "full": [
                    *_points(_SMALL, [10_000, 100_000], ALL, repeat_of={"materialise": 1}, cold=("materialise",)),
                    Point(1_000_000, {**_SMALL, "n": 1_000_000}, ALL,
                          repeat_of={"materialise": 1, "zipfile-memory": 2, "zip-cli": 2}, cold=("materialise",)),
                    Point(5_000_000, {**_SMALL, "n": 5_000_000},
                          ["dsexport", "zipstream-plain", "zipfile-memory", "crc32"],
                          repeat=2, warmup=False, repeat_of={"zipfile-memory": 1}),
                ],
            },
            ratios=("zipstream-plain", "zip-cli", "cat"),
            quick_note="materialise runs once (no warm-up) and only at 10 k, zipfile-memory, zip-cli and crc32 "
            "twice (cat-file too at 100 k); at 1 M items "
            "only dsexport (2 runs), zipstream-plain, zip-cli and crc32 (1 run each) run, and only zip-cli has a "
            "warm-up run (it reads the tree; the store is pre-read instead); zipfile-memory, materialise, cat and "
            "cat-file are left out at 1 M to keep the run short",
            full_note="materialise runs once, without warm-up (writing files on this file system swings "
            "10x from run to run); at 5 M items the tree-based contenders (materialise, zip-cli, cat) are left out: "
            "5 M files take ~20 GB of disk and ~5 minutes to write; no warm-up there (the data was just read)",
        ),
        Scenario(
            name="yolo",
            title="Object detection: YOLO of ~100 KiB images with 0-3 boxes",
            kind="yolo",
            params=_YOLO,
            plan={
                "quick": _points(_YOLO, [20_000], QUICK_IMAGES, repeat=2, warmup=False,
                                 repeat_of={"http-download": 1, "zipstream-plain": 1, "zip-cli": 1}),
                "full": _points(_YOLO, [20_000], [*FILE_BLOBS, "zipfile-memory", "materialise", "crc32"]),
            },
            ratios=FILE_RATIOS,
            quick_note="2 runs of ours to a file and to stdout and of cat-file, 1 of the others; no warm-up (the "
            "blob files and the tree are pre-read); cat, zipfile-memory, materialise and crc32 only in the full run",
            notes="cat and cat-file read the store's blob files (the same bytes as the images), not a copy; "
            "http-download is the same export over HTTP (its MB/s against dsexport's is the HTTP target)",
        ),
        Scenario(
            name="coco",
            title="Object detection: COCO and Ultralytics of ~80 KiB PNGs with 0-3 boxes, beside Datumaro",
            kind="boxes",
            params=_SEED,
            plan={
                "quick": _points(_SEED, [2_000, 20_000], BOXES, repeat=1, repeat_of={"datumaro-coco": 1}),
                "full": _points(_SEED, [2_000, 20_000], BOXES, repeat=3, repeat_of={"datumaro-coco": 2}),
            },
            ratios=("datumaro-coco", "crc32"),
            quick_note="one run each",
            notes="dsexport is our COCO export (JSONs streamed from spools), dsexport-ultralytics our Ultralytics "
            "export of the same version; datumaro-coco is Datumaro's coco_instances exporter (save_media) over "
            "the same images (the dataset's folder tree) and boxes, writing a folder, not an archive; "
            "zipstream-plain builds each split's JSON in memory",
        ),
        Scenario(
            name="blobs",
            title="Big blobs: FOLDERS of 100 MiB items",
            kind="blobs",
            params=_BLOBS,
            plan={
                "quick": _points(_BLOBS, [10], [*QUICK_BLOBS, "dsexport-devnull"], repeat=2, warmup=False,
                                 repeat_of={"zipstream-plain": 1, "dsexport-devnull": 1}),
                "full": _points(_BLOBS, [10], [*FILE_BLOBS, "dsexport-devnull", "zipfile-memory", "materialise",
                                               "crc32"]),
            },
            ratios=FILE_RATIOS,
            max_n=20,
            quick_note="2 runs of ours (to a file, to stdout, over HTTP) and of cat-file, 1 of the others; no "
            "warm-up (the blob files are pre-read); cat, zip-cli, zipfile-memory, materialise and crc32 only in the "
            "full run",
            notes="dsexport-devnull is ours into a sink that drops the bytes: the engine without the disk",
        ),
        Scenario(
            name="csv",
            title="Tabular: CSV of five numeric columns",
            kind="csv",
            params=_SEED,
            plan={
                "quick": _points(_SEED, [300_000], TEXT),
                "full": _points(_SEED, [5_000_000], TEXT, repeat=2, warmup=False),
            },
            ratios=("zipstream-plain", "crc32"),
            quick_note="300 k rows instead of 5 M",
            notes="the baselines write the same two entries (the CSV streamed as one entry, config.json); "
            "crc32 is the floor of paging the rows out of the store; cat and zip -r do not apply",
        ),
        Scenario(
            name="ner",
            title="Named entities: SPACY_NER documents",
            kind="ner",
            params=_SEED,
            plan={
                "quick": _points(_SEED, [100_000], TEXT),
                "full": _points(_SEED, [1_000_000], TEXT),
            },
            ratios=("zipstream-plain", "crc32"),
            quick_note="100 k documents instead of 1 M",
            notes="the baselines write one JSON array per split, streamed, plus config.json; "
            "crc32 is the floor of paging the documents out of the store",
        ),
        Scenario(
            name="http",
            title="Over HTTP: the export endpoint on loopback (FOLDERS of 1 KiB items)",
            kind="small",
            params=_SMALL,
            plan={
                "quick": [
                    Point(100_000, {**_SMALL, "n": 100_000}, ["http-download", "http-download-x16"], repeat=2,
                          repeat_of={"http-download-x16": 1}, warmup=False),
                    Point(1_000_000, {**_SMALL, "n": 1_000_000}, ["http-download"], repeat=1, warmup=False),
                ],
                "full": [
                    Point(100_000, {**_SMALL, "n": 100_000}, ["http-download", "http-download-x16"], repeat=3,
                          repeat_of={"http-download-x16": 2}, warmup=False),
                    Point(1_000_000, {**_SMALL, "n": 1_000_000}, ["http-download"], repeat=3, warmup=False),
                ],
            },
            ratios=(),
            quick_note="fewer runs (one download at 1 M)",
            full_note="16 concurrent downloads only at 100 k items (16 x 1.2 GB at 1 M would take minutes)",
            notes="each run starts its own server; MB/s is the dataset's payload per second of the client's wall "
            "time (x16: the 16 downloads together); the first download of a 1 M version streams without a length",
        ),
        Scenario(
            name="remote",
            title="Client-side export over HTTP, 20 ms per request: fetch window 64 against 1",
            kind="small",
            params=_SMALL,
            plan={
                "quick": _points(_SMALL, [1_000], ["remote-w64", "remote-w16", "remote-w1"], repeat=1, warmup=False),
                "full": _points(_SMALL, [20_000], ["remote-w64", "remote-w16", "remote-w1"], repeat=1,
                                warmup=False, repeat_of={"remote-w64": 2, "remote-w16": 2}),
            },
            ratios=("remote-w1",),
            quick_note="1 k items instead of 20 k (window 1 pays 20 ms per item: 20 k take ~8 minutes)",
            notes="a proxy on loopback holds every request 20 ms; the export runs the HTTP source and writes "
            "FOLDERS to a file",
        ),
        Scenario(
            name="scaleout",
            title="Scale-out: the small-items export as 1 and 2 Ray shards (local cluster, 2 CPUs)",
            kind="small",
            params=_SMALL,
            plan={
                "quick": _points(_SMALL, [1_000_000], [c for c in SCALEOUT if c != "dsexport-ray-1"], repeat=1,
                                 warmup=False),
                "full": _points(_SMALL, [1_000_000], SCALEOUT, repeat=2, warmup=False),
            },
            ratios=("dsexport",),
            quick_note="one run each, and no 1-shard run",
            full_note="two runs each, no warm-up (the 1 M store was just read by the scenarios before)",
            notes="the Ray contenders start their own local cluster (in the wall time); the lines under the "
            "table split off Ray's start-up and the stitch, the serial part (bench/scaleout.py)",
        ),
        Scenario(
            name="s3-small",
            title="Object storage: 1 KiB items packed in an S3 bucket (SeaweedFS) against the local store",
            kind="small",
            params=_SMALL,
            plan={
                "quick": _points(_SMALL, [20_000], ["dsexport", "dsexport-s3", "s3-get"], repeat=2),
                "full": _points(_SMALL, [1_000_000], ["dsexport", "dsexport-s3", "s3-get"], repeat=2,
                                repeat_of={"s3-get": 1}),
            },
            ratios=("dsexport",),
            quick_note="20 k items instead of 1 M",
            notes="dsexport-s3 reads the same store copied to a bucket (small items in packs, one ranged read "
            "per pack and page); s3-get is one GET per item's object (16 threads, no archive): the floor of "
            "storing each item as an object, as peers do; the bucket is filled once per cache (not timed)",
        ),
        Scenario(
            name="s3-yolo",
            title="Object storage: YOLO of ~100 KiB images in an S3 bucket against the local store",
            kind="yolo",
            params=_YOLO,
            plan={
                "quick": _points(_YOLO, [2_000], ["dsexport", "dsexport-s3", "s3-get"], repeat=2),
                "full": _points(_YOLO, [20_000], ["dsexport", "dsexport-s3", "s3-get"]),
            },
            ratios=("dsexport", "s3-get"),
            quick_note="2 k images instead of 20 k",
            notes="images are one object each in the bucket; s3-get is a raw parallel GET of the same objects "
            "with the same client (16 threads): the floor",
        ),
        Scenario(
            name="s3-ray",
            title="Scale-out with parts in the bucket: 2 Ray shards assembled by server-side copies",
            kind="small",
            params=_SMALL,
            plan={
                "quick": [Point(20_000, {**_SMALL, "n": 20_000, "size": size}, ["dsexport-ray-2", "dsexport-ray-s3"],
                                repeat=1, warmup=False) for size in (1024, 16_384)],
                "full": [Point(200_000, {**_SMALL, "n": 200_000, "size": size}, ["dsexport-ray-2", "dsexport-ray-s3"],
                               repeat=2, warmup=False) for size in (1024, 16_384)],
            },
            ratios=("dsexport-ray-2",),
            quick_note="20 k items (1 KiB and 16 KiB: the same entries, 16x the bytes), one run each",
            notes="the lines under the table give the stitch (the driver's serial part): with parts in the "
            "bucket it should not grow with the archive's bytes, only with its entries",
        ),
        Scenario(
            name="backends",
            title="Backends: the small-items export on trio and on asyncio + uvloop",
            kind="small",
            params=_SMALL,
            plan={
                "quick": _points(_SMALL, [100_000], ["dsexport", "dsexport-asyncio"]),
                "full": _points(_SMALL, [1_000_000], ["dsexport", "dsexport-asyncio"], repeat=2),
            },
            ratios=("dsexport",),
            quick_note="100 k items instead of 1 M",
            notes="dsexport is trio (the default); dsexport-asyncio is asyncio on uvloop",
        ),
    ]
}
