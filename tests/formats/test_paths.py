"""Safe and unique archive paths (formats/paths.py)."""

from __future__ import annotations

import pytest

from formats.paths import InMemoryClaims, UniquePaths, file_name, safe_component


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("cat1.jpg", "cat1.jpg"),
        ("../../etc/passwd", ".._.._etc_passwd"),
        ("..", "_"),
        ("", "_"),
        ("a\x00b\x1fc", "a_b_c"),
        ('w<i>n:d"o|w?s*', "w_i_n_d_o_w_s_"),
        ("trailing. ", "trailing"),
        ("CON", "_CON"),
        ("nul.txt", "_nul.txt"),
        ("COM1.jpg", "_COM1.jpg"),
        ("console.txt", "console.txt"),
        ("e\u0301", "\u00e9"),  # NFC
    ],
)
def test_safe_component(raw: str, safe: str):
    assert safe_component(raw) == safe


def test_file_name_rules():
    assert file_name("cat1", "id1", "jpg") == "cat1.jpg"
    assert file_name("cat1.JPG", "id1", "jpg") == "cat1.JPG"
    assert file_name("", "id1", "png") == "id1.png"
    assert file_name("noext", "id1", "") == "noext"


def test_unique_paths_are_case_insensitive_and_deterministic():
    paths = UniquePaths(InMemoryClaims())
    assert paths.unique("train/Cat.jpg", "a") == "train/Cat.jpg"
    assert paths.unique("train/cat.jpg", "b") == "train/cat~b.jpg"
    assert paths.unique("train/cat.jpg", "b") == "train/cat~b~2.jpg"
    assert paths.unique("valid/cat.jpg", "b") == "valid/cat.jpg"


def test_renamed_long_names_stay_within_the_limit():
    paths = UniquePaths(InMemoryClaims())
    long = "x" * 199 + ".jpg"
    first = paths.unique("t/" + safe_component(long), "a")
    second = paths.unique("t/" + safe_component(long), "item-id-123")
    assert first != second and second.endswith("~item-id-123.jpg")
    assert all(len(part.encode()) <= 200 for part in second.split("/"))


def test_claims_remember_values():
    claims = InMemoryClaims()
    assert claims.value("k") is None
    assert claims.claim("k", "train/a.jpg")
    assert not claims.claim("k", "other")
    assert claims.value("k") == "train/a.jpg"


@pytest.mark.parametrize(
    ("name", "extension", "expected"),
    [
        ("con", "jpg", "_con.jpg"),
        ("Nul", "", "_Nul"),
        ("lpt1", "txt", "_lpt1.txt"),
        ("console", "jpg", "console.jpg"),
        ("com10", "png", "com10.png"),
        ("auxiliary.jpg", "jpg", "auxiliary.jpg"),
        ("img0000001", "jpg", "img0000001.jpg"),
        ("a" * 49, "jpg", "a" * 49 + ".jpg"),
        ("a" * 60, "jpg", "a" * 60 + ".jpg"),
        (" x.", "jpg", "x.jpg"),
    ],
)
def test_file_name_of_plain_and_device_like_names(name: str, extension: str, expected: str):
    assert file_name(name, "id1", extension) == expected
