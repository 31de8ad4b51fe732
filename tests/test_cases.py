"""Reading eval cases: formats, ids, prompts and the messages bad data gets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_llmeval.datasets.suite import (
    Case,
    CaseError,
    CaseSpec,
    answer_texts,
    build_request,
    check_spec,
    dataset_hash,
    load_cases,
    plan_suite,
    prompt_hash,
    render_prompt,
)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_jsonl_cases_keep_ids_fields_and_lines(tmp_path: Path) -> None:
    write(tmp_path, "c.jsonl", '{"id": "a", "q": 1}\n\n{"id": "b", "q": 2}\n')
    cases = load_cases("c.jsonl", base_dir=tmp_path)
    assert [c.id for c in cases] == ["a", "b"]
    assert cases[1]["q"] == 2 and cases[1].line == 3 and cases[1].where == "c.jsonl:3"


def test_json_yaml_csv_and_lists_read_the_same_cases(tmp_path: Path) -> None:
    rows = [{"id": "x1", "question": "1+1", "choices": ["1", "2"]}, {"id": "x2", "question": "2+2", "choices": ["3", "4"]}]
    write(tmp_path, "c.json", json.dumps({"cases": rows}))
    write(tmp_path, "c.yaml", "- id: x1\n  question: 1+1\n  choices: ['1', '2']\n- id: x2\n  question: 2+2\n  choices: ['3', '4']\n")
    write(tmp_path, "c.csv", 'id,question,choices\nx1,1+1,"[""1"", ""2""]"\nx2,2+2,"[""3"", ""4""]"\n')
    loaded = [load_cases(src, base_dir=tmp_path) for src in ("c.json", "c.yaml", "c.csv", rows)]
    for cases in loaded:
        assert [dict(c) for c in cases] == rows


def test_malformed_jsonl_line_names_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, "bad.jsonl", '{"id": "a"}\n{"id": "b",\n')
    with pytest.raises(CaseError, match=r"bad\.jsonl:2: not valid JSON"):
        load_cases("bad.jsonl", base_dir=tmp_path)


def test_duplicate_id_names_both_places(tmp_path: Path) -> None:
    write(tmp_path, "dup.jsonl", '{"id": "a"}\n{"id": "b"}\n{"id": "a"}\n')
    with pytest.raises(CaseError, match=r"dup\.jsonl:3: duplicate case id 'a' \(first at dup\.jsonl:1\)"):
        load_cases("dup.jsonl", base_dir=tmp_path)


def test_missing_id_field_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(CaseError, match="has no 'id' field.*pass id="):
        load_cases([{"question": "q"}])
    assert load_cases([{"name": "n1"}], id_field="name")[0].id == "n1"


@pytest.mark.parametrize(
    "name,text,message",
    [
        ("missing.jsonl", None, "file not found"),
        ("empty.jsonl", "\n", "no cases found"),
        ("c.txt", "x", "unknown case file type"),
        ("bad.yaml", "- id: [1\n", "malformed YAML"),
        ("notlist.json", '{"id": 1}', "expected a JSON list"),
    ],
)
def test_unusable_files_get_clear_errors(tmp_path: Path, name: str, text: str | None, message: str) -> None:
    if text is not None:
        write(tmp_path, name, text)
    with pytest.raises(CaseError, match=message):
        load_cases(name, base_dir=tmp_path)


def test_prompt_missing_field_names_case_and_field() -> None:
    case = Case(id="c1", fields={"question": "q"}, source="m.jsonl", line=4)
    assert render_prompt("Q: {question}", case) == "Q: q"
    with pytest.raises(CaseError, match=r"m\.jsonl:4: case 'c1' has no field 'answer'"):
        render_prompt("{question} {answer}", case)


def test_case_reads_like_a_dict_and_missing_keys_are_explained() -> None:
    case = Case(id="c1", fields={"a": 1})
    assert dict(case) == {"a": 1} and case.get("b") is None
    with pytest.raises(KeyError, match="has no field 'b'; it has: a"):
        case["b"]


def test_rank_request_needs_choices() -> None:
    case = Case(id="c", fields={"q": "x", "opts": ["a", "b"]})
    req = build_request(CaseSpec(source=[], prompt="{q}", choices="opts"), case, "rank")
    assert req.choices == ("a", "b") and req.text == "x"
    with pytest.raises(CaseError, match="no choices="):
        build_request(CaseSpec(source=[], prompt="{q}"), case, "rank")


def test_limit_keeps_first_cases_and_full_dataset_hash(tmp_path: Path) -> None:
    rows = [{"id": f"c{i}", "q": i} for i in range(5)]
    full = plan_suite(CaseSpec(source=rows), None)
    limited = plan_suite(CaseSpec(source=rows), None, limit=2)
    assert [c.id for c in limited.cases] == ["c0", "c1"] and limited.limited and not full.limited
    assert limited.dataset == full.dataset


def test_prompt_hash_changes_with_template_and_chat() -> None:
    base = prompt_hash(CaseSpec(source=[], prompt="{q}"))
    assert base == prompt_hash(CaseSpec(source=[], prompt="{q}"))
    assert base != prompt_hash(CaseSpec(source=[], prompt="{q} "))
    assert base != prompt_hash(CaseSpec(source=[], prompt="{q}", chat=True))


def test_chat_not_said_is_none_and_sends_what_chat_false_sends() -> None:
    from pytest_llmeval.datasets.suite import request_for

    unsaid, raw = CaseSpec(source=[], prompt="{q}"), CaseSpec(source=[], prompt="{q}", chat=False)
    assert unsaid.chat is None
    assert prompt_hash(unsaid) == prompt_hash(raw)  # so baselines recorded either way compare
    assert unsaid.delimiter == raw.delimiter == " "
    case = Case(id="c", fields={"q": "x", "a": "y"})
    for kind in ("generate", "rank"):
        spec = CaseSpec(source=[], prompt="{q}", choices="opts")
        req = build_request(spec, Case(id="c", fields={"q": "x", "opts": ["a", "b"]}), kind)  # type: ignore[arg-type]
        assert req.chat is False and req.target_delimiter == " "
    pool = [{"id": f"e{i}", "q": f"q{i}", "a": f"a{i}"} for i in range(3)]
    fewshot = dict(source=[{"id": "c", "q": "x", "a": "y"}], prompt="{q}", target="a", num_fewshot=2, fewshot_source=pool)
    plans = [plan_suite(CaseSpec(**fewshot, chat=chat), None) for chat in (None, False)]  # type: ignore[arg-type]
    unsaid_req, raw_req = (request_for(plan.spec, plan, case, "generate") for plan in plans)
    assert unsaid_req == raw_req and unsaid_req.fewshot == () and unsaid_req.text.endswith("\n\nx")
    check_spec(unsaid)
    with pytest.raises(CaseError, match="chat= must be True or False"):
        check_spec(CaseSpec(source=[], chat="yes"))  # type: ignore[arg-type]


@given(st.lists(st.dictionaries(st.sampled_from("abc"), st.integers() | st.text(max_size=5)), max_size=6))
def test_dataset_hash_ignores_order_and_sees_content(rows: list[dict]) -> None:
    cases = [Case(id=str(i), fields=r) for i, r in enumerate(rows)]
    assert dataset_hash(cases) == dataset_hash(list(reversed(cases)))
    if cases:
        changed = [Case(id=cases[0].id, fields={**cases[0].fields, "zz": 1}), *cases[1:]]
        assert dataset_hash(changed) != dataset_hash(cases)


def test_fewshot_needs_a_source_when_the_suite_is_planned() -> None:
    spec = CaseSpec(source=[{"id": "a"}], num_fewshot=2, function="test_x")  # the decorator never raises
    with pytest.raises(CaseError, match="^le.cases of test_x: num_fewshot=2 needs fewshot_source="):
        plan_suite(spec, None)


# ----------------------------------------------------------------------------- prompt templates

FIELDS = {"q": "x", "choices": ["p", "r"], "meta": {"lang": "en"}, "n": 3}


@pytest.mark.parametrize(
    "template, text",
    [
        ("Q: {q}", "Q: x"),
        ("{choices[1]} or {choices[0]}", "r or p"),
        ("{meta[lang]}", "en"),
        ("{q!r} {n:03d}", "'x' 003"),
        ("a literal {{brace}} and {q}", "a literal {brace} and x"),
    ],
)
def test_templates_name_and_index_case_fields(template: str, text: str) -> None:
    assert render_prompt(template, Case(id="c", fields=FIELDS)) == text


@pytest.mark.parametrize(
    "template, problem",
    [
        ("Q: {q", "is not a valid format string (expected '}' before end of string): write a literal brace twice, '{{' or '}}'"),
        ("Q: q}", "is not a valid format string (Single '}' encountered in format string)"),
        ("{}", "uses the positional field '{}'; name the case field instead"),
        ("{0}", "uses the positional field '{0}'"),
        ("{q.upper}", "reads an attribute in '{q.upper}'"),
        ("{choices[0].real}", "reads an attribute in '{choices[0].real}'"),
        ("{q!x}", "uses the conversion '!x'"),
        ("{choices[0]x}", "has a malformed field '{choices[0]x}'"),
    ],
)
def test_unusable_templates_name_the_template_and_the_fix(template: str, problem: str) -> None:
    case = Case(id="c", fields=FIELDS, source="c.jsonl", line=2)
    with pytest.raises(CaseError) as raised:
        render_prompt(template, case)
    assert str(raised.value).startswith(f"c.jsonl:2: the prompt {template!r} {problem}")
    spec = CaseSpec(source=[{"id": "c", **FIELDS}], prompt=template, function="test_q")
    with pytest.raises(CaseError) as raised:
        check_spec(spec)
    assert str(raised.value).startswith(f"le.cases of test_q: the prompt {template!r} {problem}")


@pytest.mark.parametrize(
    "template, reason",
    [
        ("{choices[5]}", "IndexError: list index out of range"),
        ("{meta[nope]}", "KeyError: 'nope'"),
        ("{q[lang]}", "TypeError: string indices must be integers"),
        ("{q:d}", "ValueError: Unknown format code 'd' for object of type 'str'"),
    ],
)
def test_a_template_that_does_not_fit_a_case_names_the_case(template: str, reason: str) -> None:
    with pytest.raises(CaseError) as raised:
        render_prompt(template, Case(id="c", fields=FIELDS, source="c.jsonl", line=2))
    assert str(raised.value).startswith(f"c.jsonl:2: cannot fill the prompt {template!r} for case 'c' ({reason}")


def test_a_long_template_is_shortened_in_messages() -> None:
    template = "Question: " + "word " * 40 + "{"
    with pytest.raises(CaseError) as raised:
        check_spec(CaseSpec(source=[], prompt=template))
    assert repr(template) not in str(raised.value) and "...'" in str(raised.value)


@given(st.text(alphabet="{}[]!:.0aq x", max_size=14))
def test_property_any_template_renders_or_is_a_case_error(template: str) -> None:
    """No template text, however malformed, escapes as anything but a CaseError."""
    case = Case(id="c", fields={"a": "A", "q": ["x"]})
    try:
        text = render_prompt(template, case)
    except CaseError:
        return
    assert isinstance(text, str)


# ----------------------------------------------------------------------------- answer texts


@pytest.mark.parametrize(
    "fields, kwargs, texts",
    [
        ({"answer": 4}, {}, ("4",)),
        ({"answer": "12", "target": "3*4=12\n#### 12"}, {}, ("3*4=12\n#### 12",)),  # GSM8K shows the solution
        ({"expected": "Paris"}, {}, ("Paris",)),
        ({"gold": "B", "answer": "A"}, {"target": "gold"}, ("B",)),
        ({"x": 1}, {"target": lambda c: c["x"] + 1}, ("2",)),
        ({"opts": ["red", "blue"], "answer": 1}, {"choices": "opts"}, ("blue",)),
        ({"opts": ["red", "blue"], "answer": "1"}, {"choices": "opts"}, ("blue",)),  # a CSV cell is text
        ({"opts": ["red", "blue"], "answer": "B"}, {"choices": "opts"}, ("blue",)),
        ({"opts": ["red", "blue"], "answer": "blue"}, {"choices": "opts"}, ("blue",)),
        ({"opts": ["red", "blue"], "answer": True}, {"choices": "opts"}, ("True",)),
        ({"answers": ["Paris", "paris, France"]}, {}, ("Paris", "paris, France")),
        ({"question": "no answer"}, {}, ()),
    ],
)
def test_answer_texts(fields: dict, kwargs: dict, texts: tuple) -> None:
    assert answer_texts(fields, **kwargs) == texts


def test_answer_index_out_of_range_is_refused_only_when_strict() -> None:
    case = Case(id="c", fields={"opts": ["red", "blue"], "answer": 7}, source="c.jsonl", line=4)
    with pytest.raises(CaseError, match=r"^c\.jsonl:4: case 'c': answer 7 is not an index into its 2 choices"):
        answer_texts(case, choices="opts")
    assert answer_texts(case, choices="opts", strict=False) == ("7",)
    with pytest.raises(CaseError, match=r"^c\.jsonl:4: case 'c' has no field 'gold' \(named by target=\)"):
        answer_texts(case, target="gold")


def test_prompt_text_says_what_the_prompt_hash_covers():
    from pytest_llmeval.datasets.suite import PROMPT_TEXT_LIMIT, prompt_text

    assert prompt_text(CaseSpec(source=[], prompt="Q: {q}\n")) == "Q: {q}"
    assert prompt_text(CaseSpec(source=[], prompt="{q}", chat=True, system="Be brief.")) == '{q}\n(chat: true)\n(system: "Be brief.")'
    assert prompt_text(CaseSpec(source=[], prompt="{q}", choices="choices")) == '{q}\n(target_delimiter: " ")'

    def ask(case):
        return f"Q: {case['q']}"

    assert prompt_text(CaseSpec(source=[], prompt=ask)).startswith("    def ask(case):")
    assert len(prompt_text(CaseSpec(source=[], prompt="x" * 10_000))) == PROMPT_TEXT_LIMIT + 4
