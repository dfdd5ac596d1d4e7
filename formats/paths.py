"""Safe, unique, deterministic archive paths.

Every path component that comes from user data (item names, extensions,
label and split names) goes through :func:`safe_component`:

* ``/`` and ``\\`` become ``_`` so a name can never add a folder level;
* NUL, other control characters and the characters Windows forbids in file
  names (``<>:"|?*``) become ``_``;
* Unicode is NFC-normalised; leading/trailing spaces and trailing dots are
  stripped (Windows drops them silently, which would merge names);
* ``.``, ``..`` and names that end up empty become ``_``; Windows device
  names (``CON``, ``nul.txt``, ``COM1``...) get a ``_`` prefix;
* a component is cut to at most 200 UTF-8 bytes, keeping its extension.

Uniqueness: :class:`UniquePaths` claims each full path case-insensitively
(``Cat.jpg`` and ``cat.jpg`` would overwrite each other on macOS and Windows
when extracted). When a path is taken, the item id is added to the stem,
``cat1.jpg`` -> ``cat1~<item_id>.jpg``, then a counter if even that is
taken. Items arrive in a stable order, so the first one keeps the plain name
and the result is the same on every run.
"""

from __future__ import annotations

import re
import unicodedata

from formats.base import NameClaims

__all__ = ["InMemoryClaims", "UniquePaths", "file_name", "renamed", "safe_component", "split_ext", "split_stem"]

_UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\<>:"|?*]')
_MAX_COMPONENT_BYTES = 200
# Device names Windows will not create as files, with or without an extension.
_WINDOWS_RESERVED = frozenset(
    ["CON", "PRN", "AUX", "NUL"] + [f"{p}{n}" for p in ("COM", "LPT") for n in range(1, 10)]
)
_RESERVED_PREFIXES = frozenset(name[:3] for name in _WINDOWS_RESERVED)


# Names that need no cleaning: ASCII letters, digits and common punctuation,
# not starting with a dot or space nor ending in one, short enough to need no
# clipping. Matching this first keeps the common case at one regex call.
_PLAIN = re.compile(r"[\w\-+=,;@#$%&'()\[\]{}!~^`][\w\-+=,;@#$%&'()\[\]{}!~^`. ]{0,48}(?<![. ])", re.ASCII)

# _PLAIN, and not starting like a Windows device name: a name safe_component returns unchanged.
_PLAIN_NAME = re.compile(r"(?!(?i:CON|PRN|AUX|NUL|COM|LPT))" + _PLAIN.pattern, re.ASCII)


def safe_component(text: str, fallback: str = "_") -> str:
    """Make ``text`` one safe path component (see the module docstring)."""
    if _PLAIN.fullmatch(text) and text[:3].upper() not in _RESERVED_PREFIXES:
        return text
    if text.isascii() and text.isprintable() and not _UNSAFE.search(text):
        cleaned = text
    else:
        cleaned = _UNSAFE.sub("_", unicodedata.normalize("NFC", text))
    cleaned = cleaned.strip(" ").rstrip(". ")
    if cleaned in ("", ".", ".."):
        cleaned = fallback
    elif cleaned[:3].upper() in _RESERVED_PREFIXES and cleaned.split(".")[0].upper() in _WINDOWS_RESERVED:
        cleaned = "_" + cleaned
    if len(cleaned) > _MAX_COMPONENT_BYTES // 4:
        cleaned = _clip(cleaned)
    return cleaned


def _clip(component: str) -> str:
    """Cut a component to the byte limit, keeping a short extension."""
    if len(component.encode("utf-8")) <= _MAX_COMPONENT_BYTES:
        return component
    stem, dot, ext = component.rpartition(".")
    if not dot or len(ext) > 16:
        stem, ext = component, ""
    room = _MAX_COMPONENT_BYTES - len(ext.encode("utf-8")) - (1 if ext else 0)
    stem = stem.encode("utf-8")[:room].decode("utf-8", "ignore")
    return f"{stem}.{ext}" if ext else stem


def split_ext(path: str) -> tuple[str, str]:
    """``"a/b.jpg"`` -> ``("a/b", ".jpg")``; no suffix -> ``(path, "")``."""
    slash = path.rfind("/")
    dot = path.rfind(".")
    if dot <= slash + 1:
        return path, ""
    return path[:dot], path[dot:]


def split_stem(name: str) -> tuple[str, str]:
    """A file name read back: ``"a.jpg"`` -> ``("a", "jpg")``; ``".x"`` and ``"a"`` have no extension."""
    stem, dot, ext = name.rpartition(".")
    return (stem, ext) if dot and stem else (name, "")


def file_name(name: str, item_id: str, extension: str) -> str:
    """The spec's file name: ``name`` + ``.`` + ``extension``, or the id.

    The name falls back to the item id when empty. A name that already ends
    in ``.<extension>`` (an original file name such as ``cat1.jpg``) does not
    get the extension twice; no extension means no dot.
    """
    if _PLAIN_NAME.fullmatch(name):  # most names: safe as they are (safe_component's first test, in one call)
        base = name
    else:
        base = safe_component(name or item_id, fallback="") or safe_component(item_id)
    ext, suffix = _extensions.get(extension) or _extension(extension)
    if not ext or base[-len(suffix) :].lower() == suffix:
        return base
    if len(base) + len(suffix) <= _MAX_COMPONENT_BYTES // 4:
        return f"{base}.{ext}"
    return _clip(f"{base}.{ext}")


_extensions: dict[str, tuple[str, str]] = {}


def _extension(extension: str) -> tuple[str, str]:
    """The safe extension and its lower-case ``.suffix``; memoised, there are few."""
    known = _extensions.get(extension)
    if known is None:
        ext = safe_component(extension.lstrip("."), fallback="") if extension else ""
        known = (ext, "." + ext.lower())
        if len(_extensions) < 4096:
            _extensions[extension] = known
    return known


class InMemoryClaims:
    """Taken keys in a dict: fine for tests and small exports.

    The engine supplies a spilling implementation for large ones.
    """

    def __init__(self) -> None:
        self._taken: dict[str, str] = {}

    def claim(self, key: str, value: str = "") -> bool:
        if key in self._taken:
            return False
        self._taken[key] = value
        return True

    def claim_many(self, keys: list[str]) -> int:
        """Claim ``keys`` in order up to the first taken one; how many were claimed."""
        for done, key in enumerate(keys):
            if not self.claim(key):
                return done
        return len(keys)

    def value(self, key: str) -> str | None:
        return self._taken.get(key)


class UniquePaths:
    """Hands out archive paths that are unique, case-insensitively."""

    def __init__(self, claims: NameClaims) -> None:
        self._claims = claims
        # Claims that take a run of keys in one call (engine.spool.SpillingClaims) make unique_many cheap.
        self._claim_many = getattr(claims, "claim_many", None)

    def unique(self, path: str, item_id: str) -> str:
        """``path`` if free, else ``stem~<item_id>.ext`` (then ``~2``, ...)."""
        if self._claims.claim(path.casefold()):
            return path
        return self._renamed(path, item_id)

    def unique_many(self, paths: list[str], item_ids: list[str]) -> list[str]:
        """``[unique(p, i) for p, i in zip(paths, item_ids)]``, with the claims made in runs.

        The same claims in the same order, so the same names: a run stops at
        its first taken path, which is renamed before the next run starts.
        """
        claim_many = self._claim_many
        if claim_many is None:
            return [self.unique(path, item_id) for path, item_id in zip(paths, item_ids, strict=True)]
        keys = [path.casefold() for path in paths]
        done = claim_many(keys)
        if done == len(paths):
            return paths
        result = paths[:done]
        while done < len(paths):
            result.append(self._renamed(paths[done], item_ids[done]))
            start = done + 1
            done = start + claim_many(keys[start:])
            result += paths[start:done]
        return result

    def _renamed(self, path: str, item_id: str) -> str:
        """The first free ``stem~<item_id>[~n].ext`` for a taken ``path``, claimed."""
        folder, slash, name = path.rpartition("/")
        tag = safe_component(item_id)
        counter = 1
        while True:
            candidate = folder + slash + renamed(name, tag, counter)
            if self._claims.claim(candidate.casefold()):
                return candidate
            counter += 1


def renamed(name: str, tag: str, attempt: int) -> str:
    """The ``attempt``-th new name for a taken file name: ``stem~tag[~n].ext``.

    The result is clipped again, so even a long name stays within the limit.
    """
    stem, ext = split_ext(name)
    suffix = f"~{tag}" if attempt == 1 else f"~{tag}~{attempt}"
    room = _MAX_COMPONENT_BYTES - len(suffix.encode("utf-8")) - len(ext.encode("utf-8"))
    if len(stem.encode("utf-8")) > room:
        stem = stem.encode("utf-8")[: max(room, 1)].decode("utf-8", "ignore")
    return f"{stem}{suffix}{ext}"
