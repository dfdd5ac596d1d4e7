"""Demo data: one small dataset of each kind, so a fresh checkout has something to export.

:func:`create_demo` makes five datasets, one per export format, with real
content (PNG and JPEG images drawn with Pillow, review texts, CSV rows,
sentences with entity spans). Everything a user sees (names, texts, image
bytes, annotations) follows from ``seed`` alone; only ids and timestamps
differ between runs. Each dataset draws from its own random stream, so a
change to one generator leaves the others' output as it was.

The data is built to exercise the formats' corner cases: unnamed items
(exported under their id), unlabelled items, a name with non-ASCII letters,
images without boxes, text with an emoji before an entity (character, not
byte or UTF-16, offsets).
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import Callable, Iterator

import msgspec
from PIL import Image, ImageDraw

from engine.errors import InvalidInput
from engine.model import ContentType
from engine.store import MetadataStore, NewItem
from formats import natural_format
from formats.coordinates import Span, format_span

__all__ = ["DemoDataset", "DemoProgress", "create_demo", "demo_names"]


class DemoDataset(msgspec.Struct):
    """What :func:`create_demo` made, and the format that suits it."""

    dataset_id: str
    version_id: str
    name: str
    content_type: str
    format: str


#: Called with the dataset being made and the number of items made so far, all datasets together.
DemoProgress = Callable[[str, int], None]


def demo_names() -> list[str]:
    """The names of the demo datasets, in the order they are made."""
    return [name for name, *_ in _DATASETS]


def create_demo(
    store: MetadataStore, *, items: int = 40, seed: int = 0, force: bool = False, progress: DemoProgress | None = None
) -> list[DemoDataset]:
    """Create the five demo datasets with ``items`` items each; deterministic for a seed.

    A store that already has datasets with the demo names is refused
    (:class:`InvalidInput`) unless ``force``, which adds another set with new
    ids: a second run by mistake would otherwise leave two of each name.
    """
    if isinstance(items, bool) or not isinstance(items, int) or items < 1:
        raise InvalidInput(f"items must be a positive integer, got {items!r}")
    existing = {ds.name for ds in store.list_datasets()}
    present = [name for name in demo_names() if name in existing]
    if present and not force:
        raise InvalidInput(
            f"the store already has the demo datasets {', '.join(present)}; "
            "`dsexport demo --force` adds another set (same names, new ids)"
        )
    made = []
    done = 0
    for name, kind, fmt, build in _DATASETS:
        rng = random.Random(f"dsexport-demo:{seed}:{name}")
        dataset_id, version_id, rows = build(store, name, items, rng)
        if progress is not None:
            progress(name, done)
            rows = _counted(rows, name, done, progress)
        store.add_items(version_id, rows)
        done += items
        made.append(DemoDataset(dataset_id, version_id, name, kind.value, fmt))
    return made


def _counted(rows: Iterator[NewItem], name: str, before: int, progress: DemoProgress) -> Iterator[NewItem]:
    """``rows`` as they are drawn, reporting each one taken (``before`` were made by earlier datasets)."""
    for count, row in enumerate(rows, 1):
        yield row
        progress(name, before + count)


# -- images -------------------------------------------------------------------


def _encode(image: Image.Image, extension: str) -> bytes:
    out = io.BytesIO()
    if extension == "jpg":
        image.save(out, "JPEG", quality=85)
    else:
        image.save(out, "PNG")
    return out.getvalue()


def _canvas(rng: random.Random, size: int) -> Image.Image:
    """A pastel background with grain, so no two images are alike."""
    base = tuple(rng.randrange(150, 256) for _ in range(3))
    image = Image.new("RGB", (size, size), base)
    grain = Image.frombytes("L", (size, size), rng.randbytes(size * size))
    return Image.composite(Image.new("RGB", (size, size), (0, 0, 0)), image, grain.point(lambda v: v // 6))


def _pet(rng: random.Random, kind: str) -> Image.Image:
    """A cartoon head: cats get pointed ears, dogs floppy ones."""
    image = _canvas(rng, 64)
    draw = ImageDraw.Draw(image)
    fur = (rng.randrange(180, 240), rng.randrange(90, 150), rng.randrange(20, 60))
    if kind == "dogs":
        fur = (rng.randrange(90, 140), rng.randrange(60, 90), rng.randrange(30, 60))
    cx, cy, r = rng.randrange(26, 38), rng.randrange(30, 40), rng.randrange(14, 19)
    if kind == "cats":
        for side in (-1, 1):
            draw.polygon(
                [(cx + side * r, cy - 4), (cx + side * (r - 10), cy - r - 8), (cx + side * 3, cy - r)], fill=fur
            )
    else:
        for side in (-1, 1):
            draw.ellipse([cx + side * r - 6, cy - r, cx + side * r + 6, cy + 6], fill=tuple(c // 2 for c in fur))
    draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fur)
    for side in (-1, 1):
        draw.ellipse([cx + side * 6 - 2, cy - 5, cx + side * 6 + 2, cy - 1], fill=(20, 20, 20))
    draw.ellipse([cx - 2, cy + 3, cx + 2, cy + 6], fill=(60, 20, 20))
    return image


def _pets(store: MetadataStore, name: str, n: int, rng: random.Random) -> _Made:
    """Image classification: cats and dogs, single-label; every 7th unlabelled, every 5th unnamed."""
    ds = store.create_dataset(name, ContentType.IMAGES, default_splits=True, description="Cats and dogs, drawn.")
    version = ds.versions[0]
    labels = {label: store.create_label(version.id, label).id for label in ("cats", "dogs")}
    splits = [s.id for s in version.splits]  # train, valid, test

    def rows() -> Iterator[NewItem]:
        for i in range(n):
            kind = rng.choice(("cats", "dogs"))
            split = splits[_split_of(i, (6, 2, 2))]
            extension = "jpg" if i % 3 == 0 else "png"
            item_name = "chat de Zoë" if i == 2 else None if i % 5 == 4 else f"{kind[:-1]}{i}"
            anns = [] if i % 7 == 3 else [(labels[kind], split, "")]
            data = _encode(_pet(rng, kind), extension)
            yield NewItem(name=item_name, extension=extension, split_ids=[split], data=data, annotations=anns)

    return ds.id or "", version.id or "", rows()


def _shapes(store: MetadataStore, name: str, n: int, rng: random.Random) -> _Made:
    """Object detection: 0..3 shapes per image, each box exactly where it is drawn."""
    ds = store.create_dataset(name, ContentType.IMAGES, default_splits=True, description="Shapes with boxes.")
    version = ds.versions[0]
    labels = {label: store.create_label(version.id, label).id for label in ("circle", "square", "triangle")}
    splits = [s.id for s in version.splits]
    size = 96

    def rows() -> Iterator[NewItem]:
        for i in range(n):
            image = _canvas(rng, size)
            draw = ImageDraw.Draw(image)
            split = splits[_split_of(i, (6, 2, 2))]
            anns = []
            for _ in range(rng.randrange(0, 4)):
                shape = rng.choice(sorted(labels))
                side = rng.randrange(16, 40)
                x0, y0 = rng.randrange(0, size - side), rng.randrange(0, size - side)
                box = [x0, y0, x0 + side - 1, y0 + side - 1]  # inclusive pixel bounds
                colour = tuple(rng.randrange(0, 120) for _ in range(3))
                if shape == "circle":
                    draw.ellipse(box, fill=colour)
                elif shape == "square":
                    draw.rectangle(box, fill=colour)
                else:
                    draw.polygon([(x0, box[3]), (box[2], box[3]), (x0 + (side - 1) / 2, y0)], fill=colour)
                cx, cy = (x0 + side / 2) / size, (y0 + side / 2) / size
                anns.append((labels[shape], split, f"{cx:.6f} {cy:.6f} {side / size:.6f} {side / size:.6f}"))
            yield NewItem(
                name=f"shapes{i:03d}", extension="png", split_ids=[split], data=_encode(image, "png"), annotations=anns
            )

    return ds.id or "", version.id or "", rows()


# -- text ---------------------------------------------------------------------

_GOOD = ["wonderful", "charming", "gripping", "delightful", "moving", "sharp"]
_BAD = ["dull", "clumsy", "tedious", "forgettable", "muddled", "shrill"]
_PARTS = ["plot", "soundtrack", "cast", "ending", "dialogue", "camera work"]
_ASIDES = ["I watched it at the café.", "My naïve cousin disagreed.", "Seen twice.", "", "Déjà vu, in places."]


def _reviews(store: MetadataStore, name: str, n: int, rng: random.Random) -> _Made:
    """Text classification: pos/neg reviews in train and test; unlabelled ones in unsup."""
    ds = store.create_dataset(name, ContentType.TEXT, description="Film reviews.")
    version_id = ds.versions[0].id or ""
    labels = {label: store.create_label(version_id, label).id for label in ("pos", "neg")}
    splits = [store.create_split(version_id, s).id for s in ("train", "test", "unsup")]

    def rows() -> Iterator[NewItem]:
        for i in range(n):
            mood = rng.choice(("pos", "neg"))
            words = _GOOD if mood == "pos" else _BAD
            a, b = rng.sample(_PARTS, 2)
            text = f"The {a} was {rng.choice(words)} and the {b} {rng.choice(words)}. {rng.choice(_ASIDES)}".strip()
            split = splits[_split_of(i, (5, 3, 2))]
            anns = [] if split == splits[2] else [(labels[mood], split, "")]
            yield NewItem(name=f"review{i}", extension="txt", text=text, split_ids=[split], annotations=anns)

    return ds.id or "", version_id, rows()


_IRIS = {  # class: mean of sepal length, sepal width, petal length, petal width
    "setosa": (5.0, 3.4, 1.5, 0.25),
    "versicolor": (5.9, 2.8, 4.3, 1.3),
    "virginica": (6.6, 3.0, 5.5, 2.0),
}
_IRIS_COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def _iris(store: MetadataStore, name: str, n: int, rng: random.Random) -> _Made:
    """Tabular: rows as ``item.text`` joined by the config's separator, class as a label."""
    ds = store.create_dataset(name, ContentType.TABULAR, description="Flower measurements, made up.")
    version_id = ds.versions[0].id or ""
    config = json.dumps({"column_names": ",".join(_IRIS_COLUMNS), "csv_separator": ","})
    store.update_version_config(version_id, config)
    labels = {label: store.create_label(version_id, label).id for label in _IRIS}
    splits = [store.create_split(version_id, s).id for s in ("train", "test")]

    def rows() -> Iterator[NewItem]:
        for i in range(n):
            kind = rng.choice(sorted(_IRIS))
            values = [max(0.1, rng.gauss(mean, 0.3)) for mean in _IRIS[kind]]
            split = splits[_split_of(i, (8, 2))]
            text = ",".join(f"{v:.1f}" for v in values)
            yield NewItem(text=text, split_ids=[split], annotations=[(labels[kind], split, "")])

    return ds.id or "", version_id, rows()


_ENTITIES = {
    "PERSON": ["Zoë Martin", "José Álvarez", "Łukasz Nowak", "Søren Holm", "Ngozi Okafor", "Amélie Roux"],
    "ORG": ["Grünwald Bank", "Orbital Systems", "Café Łazienki", "Nordlys AS", "Banco Açaí"],
    "LOC": ["Łódź", "São Paulo", "Zürich", "Reykjavík", "Kraków", "İzmir", "Nairobi"],
}
_TEMPLATES = [
    ["{PERSON}", " joined ", "{ORG}", " in ", "{LOC}", "."],
    ["Yesterday ", "{PERSON}", " flew from ", "{LOC}", " to ", "{LOC}", "."],
    ["🙂 ", "{PERSON}", " says ", "{ORG}", " is hiring again."],
    ["Shares of ", "{ORG}", " fell after the storm in ", "{LOC}", "."],
    ["Nothing of note happened today."],
]


def _news(store: MetadataStore, name: str, n: int, rng: random.Random) -> _Made:
    """Named entities: sentences with PERSON/ORG/LOC spans in character offsets."""
    ds = store.create_dataset(name, ContentType.NER, description="Invented news sentences.")
    version_id = ds.versions[0].id or ""
    labels = {label: store.create_label(version_id, label).id for label in _ENTITIES}
    splits = [store.create_split(version_id, s).id for s in ("train", "test")]

    def rows() -> Iterator[NewItem]:
        for i in range(n):
            split = splits[_split_of(i, (7, 3))]
            text, anns = "", []
            for piece in rng.choice(_TEMPLATES):
                if piece.startswith("{"):
                    label = piece[1:-1]
                    entity = rng.choice(_ENTITIES[label])
                    anns.append((labels[label], split, format_span(Span(len(text), len(text) + len(entity)))))
                    text += entity
                else:
                    text += piece
            yield NewItem(name=None if i % 6 == 5 else f"article{i}", text=text, split_ids=[split], annotations=anns)

    return ds.id or "", version_id, rows()


def _split_of(i: int, weights: tuple[int, ...]) -> int:
    """Deal items to splits in a fixed pattern, e.g. (6, 2, 2): six train, two valid, two test."""
    slot = i % sum(weights)
    for index, weight in enumerate(weights):
        if slot < weight:
            return index
        slot -= weight
    raise AssertionError("unreachable")


_Made = tuple[str, str, Iterator[NewItem]]  # dataset id, version id, its items (drawn lazily, in order)
_Builder = Callable[[MetadataStore, str, int, random.Random], _Made]
_DATASETS: list[tuple[str, ContentType, str, _Builder]] = [
    ("pets", ContentType.IMAGES, natural_format(ContentType.IMAGES.value), _pets),
    ("reviews", ContentType.TEXT, natural_format(ContentType.TEXT.value), _reviews),
    ("shapes", ContentType.IMAGES, natural_format(ContentType.IMAGES.value, has_boxes=True), _shapes),
    ("iris-like", ContentType.TABULAR, natural_format(ContentType.TABULAR.value), _iris),
    ("news", ContentType.NER, natural_format(ContentType.NER.value), _news),
]
