"""Calibration figures of ranked suites: equal to the reference packages (``uncertainty-calibration``,
which HELM uses, and scikit-learn's Brier score) on the same probabilities, run in their own venv."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_llmeval.results.calibration import (
    brier_score,
    calibration,
    choice_probabilities,
    confidence_and_correct,
    ece,
    equal_mass_edges,
    reliability_bins,
    selective_accuracy,
)

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = Path(__file__).with_name("calibration_reference.py")
# The reference sums each bin's values in another order than we do: the means can differ in the last
# bits. Each of at most 600 terms is at most 1, so the difference stays far below 1e-12.
TOL = 1e-12


def reference_python() -> str:
    python = os.environ.get("LLMEVAL_CALIBRATION_PYTHON") or str(ROOT / ".venv-calib" / "bin" / "python")
    if not Path(python).exists():
        pytest.skip(f"no reference venv at {python}: run `bash scripts/setup` (it makes .venv-calib)")
    probe = subprocess.run([python, "-c", "import calibration, sklearn"], capture_output=True, text=True)
    if probe.returncode:
        pytest.skip(f"{python} lacks uncertainty-calibration or scikit-learn: run `bash scripts/setup`")
    return python


def run_reference(datasets: list[dict]) -> list[dict]:
    done = subprocess.run([reference_python(), str(REFERENCE)], input=json.dumps(datasets), capture_output=True,
                          text=True, check=True)
    return json.loads(done.stdout)


def datasets() -> list[dict]:
    """Random suites of 1 to 600 cases and 3 to 5 choices, sharper and flatter, plus edge cases."""
    rng = np.random.default_rng(20261207)
    out = []
    for i in range(40):
        n = int(rng.integers(1, 600)) if i else 1
        k = int(rng.integers(3, 6))
        logits = rng.normal(size=(n, k)) * rng.uniform(0.2, 6.0)
        answers = rng.integers(0, k, size=n)
        probs = [choice_probabilities(row) for row in logits]
        conf, correct = confidence_and_correct(probs, answers.tolist())
        out.append({"conf": conf.tolist(), "correct": correct.tolist(), "probs": [p.tolist() for p in probs],
                    "answers": answers.tolist(), "distinct": len(set(conf.tolist())) == n})
    edges = [0.1, 0.2, 0.30000000000000004, 0.5, 0.5, 0.5, 0.9, 1.0, 1.0, 0.7]
    out.append({"conf": edges, "correct": [1, 0, 1, 1, 0, 1, 1, 1, 0, 0], "distinct": False})
    out.append({"conf": [0.6] * 25, "correct": [1] * 10 + [0] * 15, "distinct": False})
    out.append({"conf": [0.99, 0.95, 0.4], "correct": [1, 1, 1], "distinct": True})
    return out


def test_ece_selective_accuracy_and_brier_equal_the_reference_packages() -> None:
    data = datasets()
    reference = run_reference(data)
    for d, ref in zip(data, reference):
        assert ece(d["conf"], d["correct"], bins=10) == pytest.approx(ref["ece_equal_width"], abs=TOL)
        assert ece(d["conf"], d["correct"], bins=10, binning="equal_mass") == pytest.approx(ref["ece_equal_mass"], abs=TOL)
        if d["distinct"]:  # the reference orders equal confidences arbitrarily (np.argsort's quicksort)
            assert selective_accuracy(d["conf"], d["correct"], 0.1) == pytest.approx(ref["selective_acc"], abs=TOL)
        if "brier" in ref:
            assert brier_score(d["probs"], d["answers"]) == pytest.approx(ref["brier"], abs=TOL)


def test_the_suite_figures_in_one_call() -> None:
    lls = [[-1.0, -2.0, -3.0], [-0.5, -0.4, -9.0], [-2.0, -2.0, -2.0], [0.0, -50.0, -50.0]]
    answers = [0, 0, 1, 0]
    figures = calibration(lls, answers)
    probs = [choice_probabilities(r) for r in lls]
    conf, correct = confidence_and_correct(probs, answers)
    assert correct.tolist() == [1, 0, 0, 1]  # a tie goes to the first choice, as Ranked.pred
    assert figures.n == 4 and figures.accuracy == 0.5
    assert figures.ece_10_bin == pytest.approx(ece(conf, correct))
    assert figures.brier == pytest.approx(brier_score(probs, answers))
    assert sum(b.count for b in figures.bins) == 4 and len(figures.bins) == 10
    as_json = json.loads(json.dumps(figures.as_dict()))
    assert as_json["reliability"][9]["count"] == 1 and as_json["reliability"][9]["accuracy"] == 1.0
    assert as_json["reliability"][0]["confidence"] is None


def test_hand_computed_values() -> None:
    # two bins used: (0.2, 0.3] holds 0.25 (wrong), (0.7, 0.8] holds 0.75 twice (right, wrong)
    assert ece([0.25, 0.75, 0.75], [0, 1, 0]) == pytest.approx((1 / 3) * 0.25 + (2 / 3) * 0.25)
    assert brier_score([[0.5, 0.5], [1.0, 0.0]], [0, 0]) == pytest.approx(0.25)
    # 20 cases: int(0.1 * 20) + 1 = 3 most confident
    conf = [i / 20 for i in range(20)]
    right = [0] * 17 + [1, 0, 1]
    assert selective_accuracy(conf, right) == pytest.approx(2 / 3)


@given(st.lists(st.tuples(st.floats(0, 1), st.booleans()), min_size=1, max_size=200), st.sampled_from(["equal_width", "equal_mass"]))
def test_bins_hold_every_case_once_and_ece_is_between_0_and_1(rows, binning) -> None:
    conf = [c for c, _ in rows]
    right = [int(r) for _, r in rows]
    bins = reliability_bins(conf, right, binning=binning)
    assert sum(b.count for b in bins) == len(rows)
    for b in bins:
        assert b.lower <= b.upper
        if b.count:
            assert b.lower - 1e-12 <= b.confidence <= b.upper + 1e-12 or (b.lower == 0.0 and b.confidence == 0.0)
    assert 0.0 <= ece(conf, right, binning=binning) <= 1.0


@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=8))
def test_choice_probabilities_sum_to_one(lls) -> None:
    p = choice_probabilities(lls)
    assert abs(p.sum() - 1.0) < 1e-12 and (p >= 0).all() and p.max() <= 1.0


def test_equal_mass_edges_with_fewer_cases_than_bins_and_ties() -> None:
    assert equal_mass_edges(np.array([0.2, 0.4, 0.6]), 10).tolist() == [0.30000000000000004, 0.5, 1.0]
    assert equal_mass_edges(np.array([0.5] * 6), 3).tolist() == [0.5, 1.0]
    with pytest.raises(ValueError, match="finite loglikelihoods"):
        choice_probabilities([])
    with pytest.raises(ValueError, match="out of range"):
        confidence_and_correct([[0.5, 0.5]], [2])
