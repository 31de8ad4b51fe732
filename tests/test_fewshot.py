"""Few-shot selection (deterministic per case) and prompt layout (lm-eval's)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_llmeval.datasets.suite import CaseError, CaseSpec, answer_texts, fewshot_pairs_for, fewshot_prefix_for, plan_suite
from pytest_llmeval.datasets.heldout import case_answer
from pytest_llmeval.datasets.fewshot import (
    FewshotError,
    Turns,
    build_context,
    fewshot_prefix,
    fewshot_turns,
    plain_prefix,
    qa_pair,
    render_qa,
    select_fewshot,
)
from pytest_llmeval.models.chat import chat_fewshot_context

POOL = [{"id": f"ex-{i:02d}", "question": f"Q{i}?", "choices": ["yes", "no"], "answer": i % 2} for i in range(20)]


def ids(rows):
    return [r["id"] for r in rows]


def test_selection_is_deterministic_and_excludes_the_case():
    first = select_fewshot(POOL, "ex-03", 5)
    assert ids(first) == ids(select_fewshot(POOL, "ex-03", 5))
    assert "ex-03" not in ids(first)
    assert len(set(ids(first))) == 5


def test_selection_depends_on_case_and_seed():
    picks = {tuple(ids(select_fewshot(POOL, f"case-{n}", 3))) for n in range(10)}
    assert len(picks) > 5
    assert ids(select_fewshot(POOL, "case-1", 3, seed=1)) != ids(select_fewshot(POOL, "case-1", 3, seed=2))


def test_selection_does_not_depend_on_other_cases():
    alone = select_fewshot(POOL, "case-7", 4)
    for n in range(6):  # other cases drawn first, as another shard or -k selection would
        select_fewshot(POOL, f"case-{n}", 4)
    assert ids(select_fewshot(POOL, "case-7", 4)) == ids(alone)


@settings(max_examples=40, deadline=None)
@given(order=st.permutations(list(range(len(POOL)))), case=st.text(min_size=1, max_size=8), k=st.integers(0, 6))
def test_property_selection_ignores_pool_order(order, case, k):
    shuffled = [POOL[i] for i in order]
    got = select_fewshot(shuffled, case, k)
    assert ids(got) == ids(select_fewshot(POOL, case, k))
    assert len(got) == k and case not in ids(got)


def test_exclude_id_and_custom_id_field():
    pool = [{"key": str(i), "question": "q", "answer": "a"} for i in range(4)]
    got = select_fewshot(pool, "0", 2, exclude_id="1", id_field="key")
    assert {r["key"] for r in got} == {"2", "3"}


@pytest.mark.parametrize(
    "pool, k, message",
    [
        (POOL[:3], 3, "needs 3 few-shot examples but the pool has 2"),
        ([{"question": "q"}], 1, "no 'id' field"),
        (["not a dict"], 1, "not a mapping"),
        (POOL, -1, ">= 0"),
    ],
)
def test_selection_errors(pool, k, message):
    with pytest.raises(FewshotError, match=message):
        select_fewshot(pool, "ex-00", k)


def test_prefix_layout():
    examples = [{"id": "a", "question": "Q: 1+1?", "answer": "2"}, {"id": "b", "question": "Q: 2+2?", "answer": "4"}]
    assert fewshot_prefix(examples) == "Q: 1+1? 2\n\nQ: 2+2? 4\n\n"
    assert fewshot_prefix(examples, lambda e: e["id"], delimiter="|") == "a|b|"
    assert fewshot_prefix([]) == ""
    with pytest.raises(FewshotError, match="must return a string"):
        fewshot_prefix(examples, lambda e: 3)


def test_qa_pairs_of_each_row_shape():
    mc = {"id": "m", "prompt": "Which?\nAnswer:", "choices": ["A", "B"], "answer": 1}
    assert qa_pair(mc) == ("Which?\nAnswer:", "B")
    wino = {"id": "w", "context": "The cup fell because ", "choices": ["it", "he"], "continuation": "was heavy.", "answer": 0}
    assert qa_pair(wino) == ("The cup fell because it", "was heavy.")
    gsm = {"id": "g", "prompt": "Question: 1+1?\nAnswer:", "target": "1+1=2\n#### 2", "answer": "2"}
    assert qa_pair(gsm) == ("Question: 1+1?\nAnswer:", "1+1=2\n#### 2")
    assert render_qa(mc) == "Which?\nAnswer: B"
    with pytest.raises(CaseError, match="not an index"):
        qa_pair({**mc, "answer": 5})
    with pytest.raises(FewshotError, match="no 'prompt' or 'question'"):
        qa_pair({"id": "x", "answer": "y"})


def test_build_context_is_description_examples_question():
    row = {"id": "t", "description": "About maps.\n\n", "prompt": "Q3\nAnswer:", "choices": ["A", "B"], "answer": 0}
    examples = [{"id": "e1", "prompt": "Q1\nAnswer:", "choices": ["A", "B"], "answer": 1}]
    assert build_context(row, examples) == "About maps.\n\nQ1\nAnswer: B\n\nQ3\nAnswer:"
    assert build_context(row) == "About maps.\n\nQ3\nAnswer:"


def test_chat_fewshot_context_uses_turns(tiny_model_dir: Path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    row = {"id": "t", "description": "About maps.\n\n", "prompt": "Q3", "choices": ["A", "B"], "answer": 0}
    examples = [{"id": "e1", "prompt": "Q1", "choices": ["A", "B"], "answer": 1}]
    assert chat_fewshot_context(tok, row, examples) == (
        "<|im_start|>system\nAbout maps.\n\n<|im_end|>\n"
        "<|im_start|>user\nQ1<|im_end|>\n<|im_start|>assistant\nB<|im_end|>\n"
        "<|im_start|>user\nQ3<|im_end|>\n<|im_start|>assistant\n"
    )


def test_fewshot_errors_are_case_errors():
    assert issubclass(FewshotError, CaseError)  # so the plugin reports them as one collection error line
    with pytest.raises(CaseError, match="needs 3 few-shot examples"):
        select_fewshot(POOL[:3], "ex-00", 3)


def test_turns_are_handed_over_before_rendering():
    row = {"id": "t", "description": "About maps.\n\n", "prompt": "Q3\nAnswer:", "choices": ["A", "B"], "answer": 0}
    examples = [{"id": "e1", "prompt": "Q1\nAnswer:", "choices": ["A", "B"], "answer": 1}]
    turns = fewshot_turns(row, examples)
    assert turns == Turns(question="Q3\nAnswer:", examples=(("Q1\nAnswer:", "B"),), system="About maps.\n\n")
    assert turns.plain() == build_context(row, examples)
    assert turns.plain(target_delimiter="|", fewshot_delimiter="#") == "About maps.\n\nQ1\nAnswer:|B#Q3\nAnswer:"
    assert fewshot_turns({"id": "u", "prompt": "Q"}).system is None
    assert plain_prefix([("q1", "a1"), ("q2", "a2")]) == "q1 a1\n\nq2 a2\n\n"


SHAPES = {
    "multiple choice": (
        {"id": "m", "question": "Which?", "choices": ["red", "blue"], "answer": 1},
        {"prompt": "{question}", "choices": "choices"},
    ),
    "letter answer (CSV)": (
        {"id": "l", "question": "Which?", "choices": ["red", "blue"], "answer": "B"},
        {"prompt": "{question}", "choices": "choices"},
    ),
    "GSM8K": (
        {"id": "g", "question": "1+1?", "target": "1+1=2\n#### 2", "answer": "2"},
        {"prompt": "{question}"},
    ),
    "WinoGrande": (
        {"id": "w", "context": "The cup fell because ", "choices": ["it", "he"], "continuation": "was heavy.", "answer": 0},
        {"prompt": "{context}", "choices": "choices", "continuation": "continuation"},
    ),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_one_path_for_an_examples_answer(shape: str):
    """A row shows the same solved example through le.cases, through fewshot.qa_pair, and the
    held-out check looks for the same answer text."""
    row, options = SHAPES[shape]
    case = {**row, "id": "case"}
    spec = CaseSpec(source=[case], num_fewshot=1, fewshot_source=[row], **options)
    plan = plan_suite(spec, None)
    (pair,) = fewshot_pairs_for(spec, plan, plan.cases[0])
    assert pair == qa_pair(row)
    expected_answer = pair[1] if "continuation" not in row else row["choices"][row["answer"]]
    assert case_answer(row, choices=options.get("choices")) == expected_answer
    assert answer_texts(row, choices=options.get("choices"))[0] == expected_answer


def test_plugin_prefix_uses_the_plain_layout():
    pool = [{"id": f"e{i}", "q": f"Q{i}", "answer": f"A{i}"} for i in range(3)]
    spec = CaseSpec(source=[{"id": "c", "q": "Q"}], prompt="{q}", num_fewshot=2, fewshot_source=pool, fewshot_delimiter="##")
    plan = plan_suite(spec, None)
    pairs = fewshot_pairs_for(spec, plan, plan.cases[0])
    assert fewshot_prefix_for(spec, plan, plan.cases[0]) == "".join(f"{q} {a}##" for q, a in pairs)


def test_a_case_in_its_own_pool_is_never_its_example():
    pool = [{"id": f"c{i}", "q": f"Q{i}", "answer": "a"} for i in range(3)]
    spec = CaseSpec(source=pool, prompt="{q}", num_fewshot=2, fewshot_source=pool)
    plan = plan_suite(spec, None)  # 2 examples besides each case: enough
    for case in plan.cases:
        assert f"Q{case.id[1:]}" not in [q for q, _ in fewshot_pairs_for(spec, plan, case)]
    with pytest.raises(CaseError, match=r"^le\.cases: num_fewshot=4 but the fewshot_source list has only 3 examples;"):
        plan_suite(CaseSpec(source=pool, prompt="{q}", num_fewshot=4, fewshot_source=pool), None)
    with pytest.raises(CaseError, match=r"^le\.cases: num_fewshot=3 but .* only 2 examples besides case 'c0', which is in it too"):
        plan_suite(CaseSpec(source=pool[:1], prompt="{q}", num_fewshot=3, fewshot_source=pool), None)
    plan_suite(CaseSpec(source=[{"id": "new", "q": "Q"}], prompt="{q}", num_fewshot=3, fewshot_source=pool), None)
