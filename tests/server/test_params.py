"""Query parameters and If-Match: parsed from their declaration, refused with the field and its range."""

from __future__ import annotations

import pytest

from engine.errors import InvalidInput
from engine.server.bodies import MAX_VERSION_NUMBER
from engine.server.params import Query, if_match, parse_query

PAGE = Query(name="pageSize", kind="int", default=10, lowest=1, highest=100)
FLAG = Query(name="onlyUnsplit", kind="bool", default=False)
SPLIT = Query(name="splitId")


def test_absent_and_empty_values_take_the_default():
    assert parse_query([PAGE, FLAG, SPLIT], {}) == {"pageSize": 10, "onlyUnsplit": False, "splitId": None}
    assert parse_query([PAGE, FLAG, SPLIT], {"pageSize": "", "onlyUnsplit": "", "splitId": ""}) == {
        "pageSize": 10, "onlyUnsplit": False, "splitId": None}


@pytest.mark.parametrize(("text", "value"), [("True", True), ("yes", True), ("1", True), ("FALSE", False), ("no", False), ("0", False)])
def test_booleans_in_any_case(text, value):
    assert parse_query([FLAG], {"onlyUnsplit": text}) == {"onlyUnsplit": value}


@pytest.mark.parametrize("text", ["0", "101", "-1", "1.5", "ten", "9" * 31])
def test_integers_outside_their_range_name_field_and_range(text):
    with pytest.raises(InvalidInput, match=r"^pageSize must be an integer from 1 to 100, got "):
        parse_query([PAGE], {"pageSize": text})


def test_a_long_value_is_clipped_in_the_message():
    with pytest.raises(InvalidInput) as refused:
        parse_query([PAGE], {"pageSize": "x" * 10_000})
    assert len(str(refused.value)) < 200


def test_a_bad_boolean_names_the_field():
    with pytest.raises(InvalidInput, match="onlyUnsplit must be true or false, got 'maybe'"):
        parse_query([FLAG], {"onlyUnsplit": "maybe"})


def test_the_first_declared_bad_parameter_is_named():
    with pytest.raises(InvalidInput, match="^onlyUnsplit"):
        parse_query([FLAG, PAGE], {"pageSize": "0", "onlyUnsplit": "maybe"})


@pytest.mark.parametrize(("header", "value"), [(None, None), ('"3"', 3), ("3", 3), ('W/"0"', 0), (f'"{MAX_VERSION_NUMBER}"', MAX_VERSION_NUMBER)])
def test_if_match_values(header, value):
    assert if_match(header) == value


@pytest.mark.parametrize("header", ['"-1"', f'"{MAX_VERSION_NUMBER + 1}"', '"abc"', '""'])
def test_if_match_out_of_range_is_refused(header):
    with pytest.raises(InvalidInput, match=f"If-Match must be a quoted item version from 0 to {MAX_VERSION_NUMBER}"):
        if_match(header)


def test_schemas_state_types_ranges_and_defaults():
    assert PAGE.schema() == {"name": "pageSize", "in": "query",
                             "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 10}}
    assert FLAG.schema()["schema"] == {"type": "boolean", "default": False}
    assert Query(name="format", kind="enum", choices=("a", "b")).schema()["schema"] == {"type": "string", "enum": ["a", "b"]}
