"""The export download's header rules, as pure functions: every Range form accepted and refused."""

from __future__ import annotations

import re

import pytest

from engine.server.http_range import (
    content_range,
    etag_of,
    if_none_match_hits,
    if_range_holds,
    parse_range,
    unsatisfied_range,
)

SIZE = 1000


@pytest.mark.parametrize(
    ("header", "wanted"),
    [
        ("bytes=0-99", (0, 99)),  # first and last
        ("bytes=0-0", (0, 0)),  # one byte
        ("bytes=500-", (500, 999)),  # from START to the end
        ("bytes=999-", (999, 999)),  # the last byte
        ("bytes=990-5000", (990, 999)),  # an end past the last byte is cut to it
        ("bytes=-100", (900, 999)),  # the last 100 bytes
        ("bytes=-1", (999, 999)),
        ("bytes=-5000", (0, 999)),  # a suffix longer than the archive is all of it
        ("  bytes=10-20  ", (10, 20)),  # blanks around the value
        ("bytes=0010-0020", (10, 20)),  # leading zeros
    ],
)
def test_accepted_ranges(header, wanted):
    assert parse_range(header, SIZE) == wanted


@pytest.mark.parametrize(
    "header",
    [
        "bytes=1000-",  # starts at the end
        "bytes=1000-1001",
        "bytes=5000-6000",
        "bytes=20-10",  # start after end
        "bytes=-0",  # an empty suffix
    ],
)
def test_unsatisfiable_ranges(header):
    assert parse_range(header, SIZE) is None


@pytest.mark.parametrize(
    "header",
    [
        "",
        "bytes=",
        "bytes=-",  # neither start nor end
        "bytes=0-1,5-6",  # several ranges: not served
        "bytes=0-1, 5-6",
        "items=0-1",  # another unit
        "Bytes=0-1",  # units are matched as sent
        "bytes = 0-1",  # blanks inside
        "bytes=0 -1",
        "bytes=+1-2",  # signs
        "bytes=-1-2",
        "bytes=1.5-2",
        "bytes=a-b",
        "0-1",  # no unit
    ],
)
def test_malformed_ranges_raise(header):
    with pytest.raises(ValueError):
        parse_range(header, SIZE)


def test_a_range_of_an_empty_archive_is_unsatisfiable():
    assert parse_range("bytes=0-", 0) is None
    assert parse_range("bytes=-10", 0) is None
    with pytest.raises(ValueError):
        parse_range("bytes=-", 0)  # malformed stays malformed


def test_etag_is_a_strong_quoted_hash_of_its_key():
    tag = etag_of("dsx1:v:3:folders::store")
    assert re.fullmatch(r'"[0-9a-f]{40}"', tag)
    assert tag == etag_of("dsx1:v:3:folders::store")
    assert tag != etag_of("dsx1:v:4:folders::store")


def test_if_none_match_hits_any_listed_tag():
    tag = etag_of("k")
    assert if_none_match_hits(tag, tag)
    assert if_none_match_hits(f'"other", {tag}', tag)
    assert if_none_match_hits(f' {tag} ,"other"', tag)
    assert not if_none_match_hits('"other"', tag)
    assert not if_none_match_hits("W/" + tag, tag)  # a weak tag never matches a strong one here
    assert not if_none_match_hits(None, tag)
    assert not if_none_match_hits("", tag)


def test_if_range_holds_only_for_the_current_tag():
    tag = etag_of("k")
    assert if_range_holds(None, tag)  # no If-Range: the Range stands
    assert if_range_holds(tag, tag)
    assert if_range_holds(f"  {tag} ", tag)
    assert not if_range_holds(etag_of("old"), tag)  # the archive changed: send all of it
    assert not if_range_holds("Tue, 01 Dec 2026 10:00:00 GMT", tag)  # dates are not honoured
    assert not if_range_holds("W/" + tag, tag)


def test_content_range_values():
    assert content_range(0, 99, 1000) == "bytes 0-99/1000"
    assert unsatisfied_range(1000) == "bytes */1000"
