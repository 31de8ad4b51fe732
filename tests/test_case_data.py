"""Bad or unusual case data: read exactly as written, or refused with one line naming the file and the fix.

The unit tests read files directly; the pytester tests check that a real pytest run shows a
single collection error line (no traceback) for each kind of bad data.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import pytest_llmeval as le
from pytest_llmeval.datasets import casefiles
from pytest_llmeval.datasets.suite import CaseError, CaseSpec, load_cases, plan_suite
from pytest_llmeval.datasets.casefiles import load_yaml

pytest_plugins = ["pytester"]

BOM = "\ufeff"


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> str:
    (tmp_path / name).write_bytes(text.encode(encoding))
    return name


# ----------------------------------------------------------------------------- CSV


def test_csv_cell_keeps_its_quoted_line_breaks(tmp_path: Path) -> None:
    name = write(tmp_path, "c.csv", 'id,q\r\nx,"l1\nl2"\r\ny,"a\r\nb"\r\nz,plain\r\n')
    cases = load_cases(name, base_dir=tmp_path)
    assert [c["q"] for c in cases] == ["l1\nl2", "a\r\nb", "plain"]
    assert [c.line for c in cases] == [3, 5, 6]  # the line each record ends on


CELL = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12).filter(
    lambda s: not s.strip().startswith("[")  # a cell holding a JSON list is read as that list
)


@given(cells=st.lists(st.tuples(CELL, CELL), min_size=1, max_size=5), bom=st.booleans(), tsv=st.booleans())
def test_property_csv_reads_back_what_the_csv_module_wrote(cells, bom, tsv, tmp_path_factory) -> None:
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter="\t" if tsv else ",")
    writer.writerow(["id", "a", "b"])
    writer.writerows([f"c{i}", a, b] for i, (a, b) in enumerate(cells))
    folder = tmp_path_factory.mktemp("csv")
    name = write(folder, "c.tsv" if tsv else "c.csv", (BOM if bom else "") + out.getvalue())
    cases = load_cases(name, base_dir=folder)
    assert [(c["a"], c["b"]) for c in cases] == cells


# ----------------------------------------------------------------------------- byte-order marks and encodings

ROWS = [{"id": "x1", "q": "1+1", "choices": ["1", "2"]}, {"id": "x2", "q": "2+2", "choices": ["3", "4"]}]
FILES = {
    "c.jsonl": "".join(json.dumps(r) + "\n" for r in ROWS),
    "c.json": json.dumps(ROWS),
    "c.yaml": "- {id: x1, q: 1+1, choices: ['1', '2']}\n- {id: x2, q: 2+2, choices: ['3', '4']}\n",
    "c.csv": 'id,q,choices\r\nx1,1+1,"[""1"", ""2""]"\r\nx2,2+2,"[""3"", ""4""]"\r\n',
    "c.tsv": 'id\tq\tchoices\nx1\t1+1\t["1", "2"]\nx2\t2+2\t["3", "4"]\n',
}


@pytest.mark.parametrize("name", sorted(FILES))
def test_a_byte_order_mark_is_not_part_of_the_data(tmp_path: Path, name: str) -> None:
    write(tmp_path, name, BOM + FILES[name])
    cases = load_cases(name, base_dir=tmp_path)
    assert [c.id for c in cases] == ["x1", "x2"]
    assert [dict(c) for c in cases] == ROWS


@pytest.mark.parametrize("name", sorted(FILES))
def test_windows_line_endings_read_the_same(tmp_path: Path, name: str) -> None:
    write(tmp_path, name, FILES[name].replace("\r\n", "\n").replace("\n", "\r\n"))
    assert [dict(c) for c in load_cases(name, base_dir=tmp_path)] == ROWS


def test_a_utf16_file_is_named_with_the_fix(tmp_path: Path) -> None:
    write(tmp_path, "c.jsonl", FILES["c.jsonl"], encoding="utf-16")
    with pytest.raises(CaseError, match=r"^c\.jsonl: not UTF-8 text .*; save the file as UTF-8$"):
        load_cases("c.jsonl", base_dir=tmp_path)


def test_a_directory_is_not_a_case_file(tmp_path: Path) -> None:
    (tmp_path / "cases.jsonl").mkdir()
    with pytest.raises(CaseError, match=r"^cases\.jsonl: is a directory"):
        load_cases("cases.jsonl", base_dir=tmp_path)


# ----------------------------------------------------------------------------- JSONL lines


def test_jsonl_string_with_a_unicode_line_separator_stays_on_its_line(tmp_path: Path) -> None:
    text = json.dumps({"id": "a", "q": "one\u2028two\x0cthree\x85four"}, ensure_ascii=False) + "\n{\"id\": \"b\", \"q\": 2}\n"
    name = write(tmp_path, "c.jsonl", text)
    cases = load_cases(name, base_dir=tmp_path)
    assert cases[0]["q"] == "one\u2028two\x0cthree\x85four"
    assert [c.line for c in cases] == [1, 2]


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"id": "a"}\r\n{"id": "b",\r\n', r"^c\.jsonl:2: not valid JSON \(.*\); each line must be one JSON object: fix or remove that line$"),
        ('{"id": "a"}\n\n{"q": 1}\n', r"^c\.jsonl:3: case has no 'id' field; .*pass id='<field>' to le\.cases$"),
        ('{"id": "a"}\n{"id": "a"}\n', r"^c\.jsonl:2: duplicate case id 'a' \(first at c\.jsonl:1\)"),
        ('{"id": "a"}\n[1, 2]\n', r"^c\.jsonl:2: a case must be an object with named fields, got list$"),
        ('{"id": "a", "q": ' + "[" * 5000 + "]" * 5000 + "}\n", r"^c\.jsonl:1: the JSON on this line is nested too deeply"),
        ('{"id": "a", "q": ' + "[" * 150 + "]" * 150 + "}\n", r"^c\.jsonl:1: the case nests more than 100 levels deep"),
    ],
)
def test_bad_jsonl_names_the_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    write(tmp_path, "c.jsonl", text)
    with pytest.raises(CaseError, match=message):
        load_cases("c.jsonl", base_dir=tmp_path)


# ----------------------------------------------------------------------------- YAML


def laughs(levels: int, width: int = 9) -> str:
    """The "billion laughs" document: each level lists the previous one ``width`` times."""
    lines = ["l0: &l0 " + "lol" * 3]
    for i in range(1, levels + 1):
        lines.append(f"l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * width) + "]")
    lines.append(f"cases: [{{id: x, q: *l{levels}}}]")
    return "\n".join(lines) + "\n"


def test_billion_laughs_is_refused_before_it_expands(tmp_path: Path) -> None:
    document = laughs(9)  # about 500 bytes; 9**9 (387 million) strings when expanded
    assert len(document) < 600
    with pytest.raises(CaseError, match=r"^lol\.yaml: YAML aliases \(\*name\) expand this file by [\d,]+ nodes and characters"):
        load_yaml(document, "lol.yaml")
    write(tmp_path, "lol.yaml", document)
    with pytest.raises(CaseError, match="write the repeated values out or alias fewer of them$"):
        load_cases("lol.yaml", base_dir=tmp_path)


def test_merge_keys_are_bounded_too() -> None:
    lines = ["m0: &m0 {a: 1}"] + [f"m{i}: &m{i} {{<<: [" + ", ".join([f"*m{i - 1}"] * 9) + "]}" for i in range(1, 10)]
    with pytest.raises(CaseError, match="YAML aliases"):
        load_yaml("\n".join(lines) + "\n", "merge.yaml")


def test_alias_limit_counts_what_aliases_add(monkeypatch: pytest.MonkeyPatch) -> None:
    # "abc" is one node of 3 characters (size 4): aliasing it once adds 4 to what the file spells out.
    document = "- &a abc\n- *a\n"
    monkeypatch.setattr(casefiles, "YAML_ALIAS_LIMIT", 4)
    assert load_yaml(document, "ok.yaml") == ["abc", "abc"]
    monkeypatch.setattr(casefiles, "YAML_ALIAS_LIMIT", 3)
    with pytest.raises(CaseError, match="expand this file by 4 nodes and characters, more than the 3 allowed"):
        load_yaml(document, "big.yaml")


def test_shared_values_through_aliases_still_work(tmp_path: Path) -> None:
    write(tmp_path, "c.yaml", "- {id: a, choices: &yn ['yes', 'no']}\n- {id: b, choices: *yn}\n- {id: c, choices: *yn}\n")
    assert [c["choices"] for c in load_cases("c.yaml", base_dir=tmp_path)] == [["yes", "no"]] * 3


def test_a_recursive_alias_is_refused() -> None:
    with pytest.raises(CaseError, match=r"^rec\.yaml:1: a YAML alias refers to a value that contains it"):
        load_yaml("- &a {id: x, q: [*a]}\n", "rec.yaml")


def test_yaml_plain_values_are_not_silently_retyped() -> None:
    document = "[no, on, Yes, '012', 012, 1:20, 2024-01-01, 1_000, '=', =, true, 12, -3.5, 1e3, 0x1F, ~]"
    assert load_yaml(document, "t.yaml") == [
        "no", "on", "Yes", "012", "012", "1:20", "2024-01-01", "1_000", "=", "=", True, 12, -3.5, 1000.0, 31, None,
    ]


def test_yaml_python_tags_are_refused() -> None:
    with pytest.raises(CaseError, match=r"^t\.yaml:1: malformed YAML"):
        load_yaml("- !!python/object/apply:os.system ['true']\n", "t.yaml")


# ----------------------------------------------------------------------------- the decorator never raises


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_fewshot": 2}, "num_fewshot=2 needs fewshot_source="),
        ({"stop": 5}, "stop= must be a string or a list of non-empty strings, got 5"),
        ({"min_pass_rate": 2}, "min_pass_rate= must be a number between 0 and 1, got 2"),
        ({"num_fewshot": -1, "fewshot_source": []}, "num_fewshot= must be a whole number, 0 or more, got -1"),
        ({"max_new_tokens": "64"}, "max_new_tokens= must be a whole number of at least 1, got '64'"),
        ({"prompt": 3}, "prompt= must be a format string such as '{question}' or a function of the case, got 3"),
        ({"prompt": "{q"}, "the prompt '{q' is not a valid format string"),
    ],
)
def test_bad_arguments_wait_for_collection(kwargs: dict, message: str) -> None:
    def test_suite(case):  # pragma: no cover - never run
        pass

    decorated = le.cases([{"id": "a", "q": "x"}], **kwargs)(test_suite)  # must not raise at import
    spec = decorated.pytestmark[0].args[0]
    assert isinstance(spec, CaseSpec) and spec.function == "test_suite"
    with pytest.raises(CaseError) as raised:
        plan_suite(spec, None)
    assert str(raised.value).startswith(f"le.cases of test_suite: {message}")


# ----------------------------------------------------------------------------- one line in a real run


def one_line_error(pytester: pytest.Pytester, data: dict[str, str], decorator: str) -> str:
    """Run pytest on a suite with ``decorator``; return its single collection error line."""
    pytester.makeini("[pytest]\nllmeval_history = off\n")
    for name, text in data.items():
        (pytester.path / name).write_text(text, encoding="utf-8")
    pytester.makepyfile(
        test_suite=f"""
        import pytest_llmeval as le

        {decorator}
        def test_gen(case, completion):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    lines = result.stdout.lines
    start = next(i for i, line in enumerate(lines) if "ERROR collecting test_suite.py" in line)
    end = next(i for i, line in enumerate(lines) if "short test summary info" in line)
    body = [line for line in lines[start + 1 : end] if line.strip()]
    assert len(body) == 1, "\n".join(lines)
    return body[0]


CASES = '{"id": "a", "q": "x", "choices": ["p", "r"]}\n{"id": "b", "q": "y", "choices": ["p", "r"]}\n'


@pytest.mark.parametrize(
    "data, decorator, expected",
    [
        ({}, '@le.cases([{"id": "a", "q": "x"}], prompt="Q: {q")',
         "llmeval: le.cases of test_gen: the prompt 'Q: {q' is not a valid format string (expected '}' before end of string): "
         "write a literal brace twice, '{{' or '}}', and a case field as '{name}'"),
        ({}, '@le.cases([{"id": "a", "q": "x"}], prompt="Q: {q} }")',
         "llmeval: le.cases of test_gen: the prompt 'Q: {q} }' is not a valid format string (Single '}' encountered in format string): "
         "write a literal brace twice, '{{' or '}}', and a case field as '{name}'"),
        ({}, '@le.cases([{"id": "a", "q": "x"}], prompt="Q: {}")',
         "llmeval: le.cases of test_gen: the prompt 'Q: {}' uses the positional field '{}'; name the case field instead, such as '{question}'"),
        ({}, '@le.cases([{"id": "a", "q": "x"}], prompt="Q: {0}")',
         "llmeval: le.cases of test_gen: the prompt 'Q: {0}' uses the positional field '{0}'; name the case field instead, such as '{question}'"),
        ({}, '@le.cases([{"id": "a", "q": "x"}], prompt="Q: {q.upper}")',
         "llmeval: le.cases of test_gen: the prompt 'Q: {q.upper}' reads an attribute in '{q.upper}'; a template names case fields "
         "and may index them ('{choices[0]}'): for anything else pass a function of the case as prompt="),
        ({}, '@le.cases([{"id": "a", "q": "x"}], prompt="Q: {nope}")',
         "llmeval: <list>: case 'a' has no field 'nope' used by the prompt 'Q: {nope}'; it has: id, q. Add the field or change the prompt"),
        ({"c.jsonl": CASES}, '@le.cases("c.jsonl", prompt="{q} {choices[5]}")',
         "llmeval: c.jsonl:1: cannot fill the prompt '{q} {choices[5]}' for case 'a' (IndexError: list index out of range); "
         "check the case's fields or change the prompt"),
        ({}, '@le.cases([{"id": "a", "q": "x"}], prompt="{q}", num_fewshot=2)',
         "llmeval: le.cases of test_gen: num_fewshot=2 needs fewshot_source=: the file or list the examples are drawn from"),
        ({"c.jsonl": CASES}, '@le.cases("c.jsonl", prompt="{q}", num_fewshot=2, fewshot_source="c.jsonl")',
         "llmeval: le.cases of test_gen: num_fewshot=2 but c.jsonl has only 1 examples besides case 'a', which is in it too "
         "and is never its own example; lower num_fewshot, or add examples"),
        ({"c.jsonl": CASES}, '@le.cases("c.jsonl", prompt="{q}", num_fewshot=3, fewshot_source="c.jsonl")',
         "llmeval: le.cases of test_gen: num_fewshot=3 but c.jsonl has only 2 examples; lower num_fewshot or add examples"),
        ({"c.jsonl": CASES, "pool.jsonl": '{"id": "e1", "q": "z"}\n'},
         '@le.cases("c.jsonl", prompt="{q}", num_fewshot=1, fewshot_source="pool.jsonl")',
         "llmeval: pool.jsonl:1: case 'e1': a few-shot example needs an answer to show, and it has none of the fields "
         "target, answer, answers, expected, output, label; add one, or name the field that holds it with target="),
        ({"lol.yaml": laughs(9)}, '@le.cases("lol.yaml", prompt="{q}")',
         re.compile(r"llmeval: lol\.yaml: YAML aliases \(\*name\) expand this file by [\d,]{11,} nodes and characters, more than "
                    r"the 10,000,000 allowed \(nested aliases grow exponentially\); write the repeated values out or alias fewer of them")),
        ({"c.jsonl": '{"id": "a", "q": "x"}\n{"id": "b", "q": \n'}, '@le.cases("c.jsonl", prompt="{q}")',
         "llmeval: c.jsonl:2: not valid JSON (Expecting value at column 18); each line must be one JSON object: fix or remove that line"),
        ({}, '@le.cases([{"id": "a", "q": "x"}], prompt="{q}", stop=5)',
         "llmeval: le.cases of test_gen: stop= must be a string or a list of non-empty strings, got 5"),
    ],
)
def test_bad_data_is_one_collection_error_line(
    pytester: pytest.Pytester, data: dict, decorator: str, expected: str | re.Pattern[str]
) -> None:
    line = one_line_error(pytester, data, decorator)
    if isinstance(expected, str):
        assert line == expected
    else:
        assert expected.fullmatch(line), line


def test_a_bom_csv_with_line_breaks_collects_every_case(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nllmeval_history = off\n")
    (pytester.path / "c.csv").write_text(BOM + 'id,q\r\nx,"l1\nl2"\r\ny,plain\r\n', encoding="utf-8")
    pytester.makepyfile(
        """
        import pytest_llmeval as le

        @le.cases("c.csv", prompt="{q}")
        def test_gen(case):
            assert case["q"] in ("l1\\nl2", "plain")
        """
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)


def test_a_case_that_contains_itself_is_refused() -> None:
    row: dict = {"id": "a", "q": []}
    row["q"].append(row)
    with pytest.raises(CaseError, match=r"^<list>\[0\]: the case contains itself"):
        load_cases([row])


def test_shared_values_are_measured_once() -> None:
    shared: list = ["x"]
    for _ in range(60):  # 60 levels, each listing the level below twice: 2**60 paths, 61 distinct values
        shared = [shared, shared]
    assert load_cases([{"id": "a", "q": shared}])[0]["q"] is shared


def test_a_benchmark_loader_failing_at_import_is_one_collection_error_line(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nllmeval_history = off\n")
    pytester.makepyfile(
        """
        import pytest_llmeval as le

        @le.cases(le.formats.arc("missing.jsonl"), prompt="{context}", choices="choices")
        def test_arc(case, ranked):
            pass

        def test_plain():
            pass
        """
    )
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*ERROR collecting*", "llmeval: *missing.jsonl*"])
    assert "Traceback" not in result.stdout.str() and "raise" not in result.stdout.str()
