"""assert_json: parsing, extraction from surrounding text, JSON Schema checks."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

import pytest_llmeval as le

SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}}, "required": ["name"]}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=8,
)


@given(json_values)
def test_any_json_document_round_trips(value: object) -> None:
    assert le.assert_json(json.dumps(value)) == value


def test_json_is_found_inside_a_fence_or_prose() -> None:
    assert le.assert_json('Here you go:\n```json\n{"name": "Ada"}\n```\nBye') == {"name": "Ada"}
    assert le.assert_json('The result is {"name": "Ada", "age": 36} as asked.', SCHEMA) == {"name": "Ada", "age": 36}


def test_no_json_is_a_miss_with_the_parse_error() -> None:
    with pytest.raises(le.EvalFailure, match="no valid JSON") as info:
        le.assert_json("name: Ada")
    assert info.value.actual == "name: Ada" and info.value.score == 0.0
    with pytest.raises(le.EvalFailure):
        le.assert_json('prefix {"a": 1}', extract=False)


def test_schema_violation_names_the_path() -> None:
    with pytest.raises(le.EvalFailure, match=r"\$\.age.*-1 is less than the minimum of 0"):
        le.assert_json('{"name": "Ada", "age": -1}', SCHEMA)
    with pytest.raises(le.EvalFailure, match="'name' is a required property"):
        le.assert_json('{"age": 3}', SCHEMA)


def test_invalid_schema_is_the_test_authors_error_not_a_miss() -> None:
    with pytest.raises(ValueError, match="invalid JSON Schema"):
        le.assert_json("{}", {"type": "no-such-type"})
    with pytest.raises(TypeError):
        le.assert_json("{}", ["not", "a", "schema"])  # type: ignore[arg-type]
