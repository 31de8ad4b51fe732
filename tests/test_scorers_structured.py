"""assert_json: parsing, extraction from surrounding text, JSON Schema checks."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import pytest_llmeval as le
from pytest_llmeval.scoring.structured import MAX_DEPTH

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


# -- deep, long or odd JSON is judged, never a RecursionError


def nested(depth: int, inner: str = "1", pair: str = "[]") -> str:
    return pair[0] * depth + inner + pair[1] * depth


def _miss(*args: object, **kwargs: object) -> le.EvalFailure:
    with pytest.raises(le.EvalFailure) as info:
        le.assert_json(*args, **kwargs)  # type: ignore[arg-type]
    assert "\n" not in info.value.reason
    return info.value


@pytest.mark.parametrize("extract", [True, False])
@pytest.mark.parametrize("text", ["[" * 5000, nested(5000), nested(101), "{" * 20_000, '{"a":' * 5000, '["' * 20_000])
def test_json_nested_past_the_limit_is_a_miss(text: str, extract: bool) -> None:
    err = _miss(text, extract=extract)
    assert err.reason.endswith("JSON nested deeper than 100 levels")


def test_json_at_the_limit_parses() -> None:
    value = le.assert_json(nested(100))
    for _ in range(99):
        value = value[0]
    assert value == [1]
    value = le.assert_json('{"k":' * 100 + "null" + "}" * 100)
    for _ in range(100):
        value = value["k"]
    assert value is None


@given(st.integers(min_value=1, max_value=150), st.sampled_from(["[]", "{}"]), st.booleans())
def test_json_depth_decides_pass_or_miss(depth: int, pair: str, prose: bool) -> None:
    text = nested(depth) if pair == "[]" else "".join('{"k":' for _ in range(depth)) + "1" + "}" * depth
    if prose:
        text = f"Here it is: {text} -- done"
    if depth <= MAX_DEPTH:
        assert le.assert_json(text) is not None
    else:
        assert "nested deeper than 100" in _miss(text).reason


def test_a_too_deep_value_is_skipped_whole_not_mined_for_an_inner_one() -> None:
    assert le.assert_json(f"first {nested(101)} then {{\"a\": 1}}") == {"a": 1}
    assert "nested deeper" in _miss(f"only {nested(150)} here").reason


def test_a_json_integer_past_the_digit_limit_is_a_miss() -> None:
    err = _miss('{"a": ' + "1" * 5000 + "}")
    assert "a JSON integer has more than 4300 digits" in err.reason


def test_long_prose_with_many_brackets_is_read_in_linear_time() -> None:
    # a failed candidate's JSONDecodeError counts lines from the start of the text it was given
    assert le.assert_json("{x} [y] " * 20_000 + '{"ok": true}') == {"ok": True}
    assert le.assert_json('{"a": [' * 40 + "1 " + "{1} " * 20_000 + '{"ok": true}') == {"ok": True}
    assert le.assert_json("{" * 50_000 + ' {"a": [1]}') == {"a": [1]}  # "{{" is no value at all
    assert "nested deeper" in _miss("[" * 200_000 + ' {"a": [1]}').reason  # "[[" opens one deep value


# -- schema checks on deep input, cyclic or unresolvable schemas, slow patterns

TREE = {"$defs": {"n": {"anyOf": [{"type": "integer"}, {"type": "array", "items": {"$ref": "#/$defs/n"}}]}}, "$ref": "#/$defs/n"}


def _at_stack_depth(frames: int, fn: Any) -> Any:
    return fn() if frames == 0 else _at_stack_depth(frames - 1, fn)


def test_schema_check_of_the_deepest_json_does_not_depend_on_the_callers_stack() -> None:
    limit = sys.getrecursionlimit()
    text = nested(100)
    assert _at_stack_depth(limit - 250, lambda: le.assert_json(text, TREE)) is not None
    err = _at_stack_depth(limit - 250, lambda: _miss(nested(100, '"x"'), TREE))
    assert "is not valid under any of the given schemas" in err.reason
    assert sys.getrecursionlimit() == limit


def test_schema_that_refers_to_itself_forever_is_the_authors_error() -> None:
    with pytest.raises(ValueError, match=r"recursed without end.*\$ref cycle"):
        le.assert_json("1", {"$ref": "#"})


def test_unresolvable_ref_is_the_authors_error_and_nothing_is_fetched() -> None:
    for ref in ("http://127.0.0.1:9/schema.json", "other.json", "#/nowhere"):
        with pytest.raises(ValueError, match="cannot resolve"):
            le.assert_json('{"a": 1}', {"properties": {"a": {"$ref": ref}}})


def test_schema_pattern_keeps_its_meaning_and_is_bounded() -> None:
    schema = {"type": "object", "properties": {"zip": {"pattern": r"^\d{5}$"}}, "patternProperties": {"^x-": {"type": "integer"}}}
    assert le.assert_json('{"zip": "12345", "x-a": 1}', schema) == {"zip": "12345", "x-a": 1}
    assert "does not match" in _miss('{"zip": "1234"}', schema).reason
    assert "is not of type 'integer'" in _miss('{"x-a": "one"}', schema).reason
    slow = {"properties": {"a": {"pattern": "^(a|aa)+$"}}, "patternProperties": {"^(b|bb)+$": {}}}
    with pytest.raises(TimeoutError, match=r"'\^\(a\|aa\)\+\$'.*pattern_timeout=0.05 s"):
        le.assert_json('{"a": "' + "a" * 60 + '!"}', slow, pattern_timeout=0.05)
    with pytest.raises(TimeoutError, match=r"'\^\(b\|bb\)\+\$'"):
        le.assert_json('{"' + "b" * 60 + '!": 1}', slow, pattern_timeout=0.05)
    with pytest.raises(ValueError, match="pattern_timeout must be a positive"):
        le.assert_json("{}", slow, pattern_timeout=-1)


def test_a_long_schema_message_is_clipped_to_one_line() -> None:
    err = _miss(json.dumps({"a": ["x" * 50] * 200}), {"properties": {"a": {"type": "string"}}})
    assert len(err.reason) < 300 and err.reason.endswith("...")


@pytest.mark.parametrize("text", [None, 4, b"{}", {"a": 1}], ids=repr)
def test_non_text_is_a_type_error(text: object) -> None:
    with pytest.raises(TypeError, match=r"assert_json\(\) needs text as a str"):
        le.assert_json(text)  # type: ignore[arg-type]
