"""Beyond accuracy: the factual questions asked a little differently, and the multiple-choice
questions with their options in every order.

- ``test_factual_robustness``: each question also with typos, in lower case, with extra spaces and
  with contractions (``What is`` -> ``What's``); the report shows accuracy under each, the worst case
  (right as written and under every perturbation) and each drop's paired test.
- ``test_facts_mc_cyclic``: the multiple-choice questions with their options listed in the prompt,
  every rotation of the options scored (CircularEval): a case counts only when every rotation is
  right, and the report counts how often each position was chosen.
"""

import pytest_llmeval as le


@le.cases(
    "../factual/factual.jsonl",
    prompt="{question} Answer in a few words.",
    chat=True,
    max_new_tokens=24,
    perturb=[le.perturb.typos(rate=0.05), le.perturb.case("lower"), le.perturb.whitespace(), le.perturb.contractions()],
)
def test_factual_robustness(case, completion):
    le.assert_contains(completion, case["answers"])


LISTED = "Question: {question}\nA. {choices[0]}\nB. {choices[1]}\nC. {choices[2]}\nD. {choices[3]}\nAnswer:"
"""The options listed in the prompt, as MMLU shows them: their order is part of what the model reads."""


@le.cases("../multiple_choice/capitals_and_facts.jsonl", prompt=LISTED, choices="choices", permute="cyclic")
def test_facts_mc_cyclic(case, ranked):
    le.assert_choice(ranked, case["answer"])
