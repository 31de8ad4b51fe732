"""Few-shot prompts and partial scoring through the plugin."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pytest_llmeval.results.samplefile import read_samples

pytest_plugins = ["pytester"]

POOL = [{"id": f"t{i}", "question": f"What is {i} + 1?", "choices": [str(i + 1), str(i + 2)], "answer": 0} for i in range(8)]
CASES = [{"id": f"c{i}", "question": f"What is {i} + 2?", "choices": [str(i + 2), str(i + 3)], "answer": 0} for i in range(4)]


def make_project(pytester: pytest.Pytester, model: Path, chat: bool) -> None:
    pytester.makeini(f"[pytest]\nllmeval_model = {model}\nllmeval_history = off\n")
    pytester.makefile(".jsonl", pool="".join(json.dumps(r) + "\n" for r in POOL))
    pytester.makefile(".jsonl", cases="".join(json.dumps(r) + "\n" for r in CASES))
    pytester.makepyfile(
        f"""
        import pytest_llmeval as le

        @le.cases("cases.jsonl", prompt="Q: {{question}}\\nA:", choices="choices", num_fewshot=2,
                  fewshot_source="pool.jsonl", chat={chat})
        def test_fs(case, ranked):
            le.assert_choice(ranked, case["answer"])
        """
    )


def prompts(pytester: pytest.Pytester, *args: str) -> dict[str, str]:
    out = pytester.path / "out"
    result = pytester.runpytest("--llmeval-output", str(out), *args)
    assert result.parseoutcomes().get("errors", 0) == 0
    return {s["id"]: s["prompt"] for s in read_samples(out / "samples.jsonl")}


def test_fewshot_examples_depend_on_the_case_id_only(pytester: pytest.Pytester, tiny_model_dir: Path) -> None:
    make_project(pytester, tiny_model_dir, chat=False)
    full = prompts(pytester)
    assert set(full) == {"c0", "c1", "c2", "c3"}
    for case_id, prompt in full.items():
        blocks = prompt.split("\n\n")
        assert len(blocks) == 3  # two examples, then the case
        assert blocks[-1] == f"Q: What is {case_id[1:]} + 2?\nA:"
        assert all(b.startswith("Q: What is ") and b.split("A: ")[1] for b in blocks[:2])
    assert len({p.split("\n\n", 1)[0] for p in full.values()}) > 1  # not the same examples for every case
    alone = prompts(pytester, "-k", "c2")
    assert alone == {"c2": full["c2"]}


def test_chat_fewshot_examples_are_earlier_turns(pytester: pytest.Pytester, tiny_model_dir: Path) -> None:
    make_project(pytester, tiny_model_dir, chat=True)
    full = prompts(pytester)
    prompt = full["c1"]
    assert prompt.count("<|im_start|>user\n") == 3 and prompt.count("<|im_start|>assistant\n") == 3
    assert prompt.endswith("Q: What is 1 + 2?\nA:<|im_end|>\n<|im_start|>assistant\n")


def test_continuation_scores_the_text_after_each_filled_in_choice(pytester: pytest.Pytester, tiny_model_dir: Path) -> None:
    pytester.makeini(f"[pytest]\nllmeval_model = {tiny_model_dir}\nllmeval_history = off\n")
    rows = [
        {"id": "w1", "context": "The trophy did not fit in the suitcase because the", "options": [" trophy", " suitcase"],
         "rest": "was too big.", "answer": 0},
    ]
    pytester.makefile(".jsonl", wino="".join(json.dumps(r) + "\n" for r in rows))
    pytester.makepyfile(
        """
        import pytest_llmeval as le
        from pytest_llmeval.models.loglik import rank_choices

        @le.cases("wino.jsonl", prompt="{context}", choices="options", continuation="rest")
        def test_wino(case, ranked, llm):
            direct = rank_choices(llm.model, llm.tokenizer, [(case["context"], case["options"], case["rest"])])[0]
            assert ranked.loglikelihoods == direct.loglikelihoods
            assert ranked.choices == (" trophy", " suitcase")
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_partial_scoring_examples_show_the_filled_in_blank_then_the_rest(pytester: pytest.Pytester, tiny_model_dir: Path) -> None:
    pytester.makeini(f"[pytest]\nllmeval_model = {tiny_model_dir}\nllmeval_history = off\n")
    rows = [
        {"id": f"w{i}", "context": f"Sentence {i} is about the ", "options": ["cat", "dog"], "rest": f"and ends {i}.", "answer": i % 2}
        for i in range(3)
    ]
    pytester.makefile(".jsonl", wino="".join(json.dumps(r) + "\n" for r in rows))
    pytester.makepyfile(
        """
        import pytest_llmeval as le

        @le.cases("wino.jsonl", prompt="{context}", choices="options", continuation="rest",
                  num_fewshot=2, fewshot_source="wino.jsonl")
        def test_wino(case, ranked):
            pass
        """
    )
    got = prompts(pytester)
    # lm-eval's layout: the example's context completed by its correct option, " ", the rest of its sentence
    expected = {i: f"Sentence {i} is about the {['cat', 'dog'][i % 2]} and ends {i}.\n\n" for i in range(3)}
    assert got["w0"] in {expected[1] + expected[2] + "Sentence 0 is about the ", expected[2] + expected[1] + "Sentence 0 is about the "}
