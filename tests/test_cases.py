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
    build_request,
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
    with pytest.raises(CaseError, match=r"bad\.jsonl:2: malformed JSON line"):
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


@given(st.lists(st.dictionaries(st.sampled_from("abc"), st.integers() | st.text(max_size=5)), max_size=6))
def test_dataset_hash_ignores_order_and_sees_content(rows: list[dict]) -> None:
    cases = [Case(id=str(i), fields=r) for i, r in enumerate(rows)]
    assert dataset_hash(cases) == dataset_hash(list(reversed(cases)))
    if cases:
        changed = [Case(id=cases[0].id, fields={**cases[0].fields, "zz": 1}), *cases[1:]]
        assert dataset_hash(changed) != dataset_hash(cases)


def test_fewshot_needs_a_source() -> None:
    with pytest.raises(CaseError, match="fewshot_source"):
        CaseSpec(source=[], num_fewshot=2)
