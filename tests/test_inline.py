from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tiny_example import example_module, one_thread
from pytest_llmeval.results.samplefile import read_samples


SUITE = """
import pytest_llmeval as le


@le.cases("cases.jsonl", prompt="{a}+{b}=", id="id", max_new_tokens=4)
def test_addition(case, completion):
    le.score("length", len(completion))
    le.assert_number(completion, case["answer"])


@le.cases("cases.jsonl", prompt="{a}+{b}=", id="id", max_new_tokens=4)
def test_first_digit(case, completion):
    assert completion.strip()[:1] == str(case["answer"])[0]
"""


def write_suite(directory: Path, pairs: list[tuple[int, int]], source: str = SUITE) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    rows = [{"id": f"add-{a:02d}-{b:02d}", "a": a, "b": b, "answer": a + b} for a, b in pairs]
    (directory / "cases.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (directory / "test_evals.py").write_text(source, encoding="utf-8")
    return directory


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any, Path]:
    """A tiny GPT-2 trained for a few seconds (some answers right, most wrong), and its checkpoint."""
    train = example_module("train")
    out = tmp_path_factory.mktemp("tiny")
    with one_thread():
        result = train.train(out, steps=150, save_every=150, size=train.SIZES["tiny"], lr=1e-2, quiet=True)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    ckpt = result.checkpoints[-1]
    model = AutoModelForCausalLM.from_pretrained(ckpt)
    tokenizer = AutoTokenizer.from_pretrained(ckpt)
    return model, tokenizer, ckpt


@pytest.fixture
def evals(tmp_path: Path) -> Path:
    data = example_module("data")
    return write_suite(tmp_path / "evals", data.eval_pairs()[:40])


def test_live_model_in_training_mode_is_evaluated_and_restored(trained: tuple[Any, Any, Path], evals: Path) -> None:
    import torch

    import pytest_llmeval as le

    model, tokenizer, _ = trained
    model.train()
    frozen = model.transformer.wte
    frozen.eval()  # a mixed-mode model: each module's own flag must come back
    seen: list[tuple[bool, bool, bool]] = []
    hook = model.register_forward_hook(
        lambda mod, args, out: seen.append((torch.is_inference_mode_enabled(), out.logits.requires_grad, mod.training))
    )
    try:
        result = le.evaluate(model, tokenizer, evals, history=False)
    finally:
        hook.remove()
    assert seen, "the model was never called"
    assert all(inference for inference, _, _ in seen), "a forward pass ran outside inference_mode"
    assert not any(grad for _, grad, _ in seen), "an autograd graph was built during the eval"
    assert not any(training for _, _, training in seen), "the model ran in training mode (dropout on)"
    assert model.training is True
    assert frozen.training is False
    assert all(m.training for name, m in model.named_modules() if not name.startswith("transformer.wte"))
    assert not torch.is_inference_mode_enabled()
    assert all(p.grad is None for p in model.parameters())
    assert {s.name.rsplit("::", 1)[-1] for s in result.suites} == {"test_addition", "test_first_digit"}
    assert result.n == 80


def test_results_equal_a_pytest_run_of_the_same_files(
    trained: tuple[Any, Any, Path], evals: Path, pytester: pytest.Pytester, tmp_path: Path
) -> None:
    import pytest_llmeval as le

    model, tokenizer, ckpt = trained
    model.train()
    inline = le.evaluate(model, tokenizer, evals, output_dir=tmp_path / "inline", history=False)
    run = pytester.runpytest(str(evals), "--llmeval-model", str(ckpt), "--llmeval-output", str(tmp_path / "cli"), "-p", "no:cacheprovider")
    assert run.ret == 0
    cli_results = json.loads((tmp_path / "cli" / "results.json").read_text())
    inline_results = json.loads((tmp_path / "inline" / "results.json").read_text())
    assert set(cli_results["suites"]) == set(inline_results["suites"]) == {s.name for s in inline.suites}
    for name, suite in cli_results["suites"].items():
        mine = inline.suite(name)
        assert suite["cases"] == inline_results["suites"][name]["cases"]
        assert {k: v for k, v in suite["cases"].items()} == {k: v for k, v in mine.outcomes.items()} or _as_bits(suite["cases"]) == _as_bits(mine.outcomes)
        assert suite["passed"] == mine.passed and suite["n"] == mine.n
    cli_samples = read_samples(tmp_path / "cli" / "samples.jsonl")
    inline_samples = read_samples(tmp_path / "inline" / "samples.jsonl")
    assert [(s["suite"], s["id"], s["completion"], s["outcome"]) for s in cli_samples] == [
        (s["suite"], s["id"], s["completion"], s["outcome"]) for s in inline_samples
    ]
    # the trained model gets some answers right and some wrong: the comparison means something
    outcomes = {s["outcome"] for s in inline_samples}
    assert outcomes == {"pass", "fail"}


def _as_bits(cases: dict[str, Any]) -> dict[str, int]:
    return {k: 1 if v in ("pass", 1) else 0 for k, v in cases.items()}


def test_mode_and_rng_restored_when_the_run_raises(trained: tuple[Any, Any, Path], evals: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    import pytest_llmeval as le

    model, tokenizer, _ = trained
    model.train()

    def boom(*args: Any, **kwargs: Any) -> int:
        assert not model.training
        torch.manual_seed(999)  # a run that moves the generators
        raise RuntimeError("interrupted")

    monkeypatch.setattr(pytest, "main", boom)
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    with pytest.raises(RuntimeError, match="interrupted"):
        le.evaluate(model, tokenizer, evals, history=False)
    assert model.training is True
    assert torch.equal(torch.rand(3), expected)


def test_broken_eval_file_raises_clear_error_and_restores_mode(trained: tuple[Any, Any, Path], tmp_path: Path) -> None:
    import pytest_llmeval as le
    from pytest_llmeval.training.inline import InlineEvalError

    model, tokenizer, _ = trained
    model.train()
    broken = write_suite(tmp_path / "broken", [(1, 2)], source="import pytest_llmeval as le\ndef broken(:\n")
    with pytest.raises(InlineEvalError, match=r"interrupted.*run `pytest") as info:
        le.evaluate(model, tokenizer, broken, history=False)
    assert info.value.exit_code == 2
    assert "SyntaxError" in info.value.output
    assert "test_evals.py" in str(info.value)
    assert model.training is True
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InlineEvalError, match="no eval cases were collected"):
        le.evaluate(model, tokenizer, empty, history=False)


def test_eval_in_the_middle_of_training_changes_nothing(evals: Path) -> None:
    """Dropout on, a global RNG: training with an inline eval gives the very same weights."""
    import torch

    import pytest_llmeval as le

    train = example_module("train")
    tokenizer = train.build_tokenizer()
    batch = train.encode(tokenizer, [(1, 2), (30, 40), (55, 5), (9, 9)])

    def run(with_eval: bool) -> list[Any]:
        model = train.build_model(tokenizer, train.SIZES["tiny"], seed=3)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        model.train()
        torch.manual_seed(7)
        for step in range(4):
            loss = model(input_ids=batch[0], attention_mask=batch[1], labels=batch[2]).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if with_eval and step == 1:
                le.evaluate(model, tokenizer, evals, limit=5, history=False)
        return [p.detach().clone() for p in model.parameters()]

    plain, evaluated = run(False), run(True)
    assert all(torch.equal(a, b) for a, b in zip(plain, evaluated))


def test_options_limit_keyword_history_and_log_dict(trained: tuple[Any, Any, Path], evals: Path, tmp_path: Path) -> None:
    import pytest_llmeval as le
    from pytest_llmeval.results.history import suite_trend

    model, tokenizer, _ = trained
    db = tmp_path / "h.sqlite"
    result = le.evaluate(model, tokenizer, evals, keyword="test_addition", limit=7, history=db, label="ckpt", step=150)
    assert [s.name.rsplit("::", 1)[-1] for s in result.suites] == ["test_addition"]
    suite = result.suite("test_addition")
    assert suite.n == 7 and suite.limited
    assert result.step == 150 and result.history_run is not None
    [point] = suite_trend(db, "test_addition")
    assert (point.label, point.step, point.n, point.passed) == ("ckpt", 150, 7, suite.passed)
    logged = result.log_dict()
    assert logged["eval/test_addition/pass_rate"] == suite.pass_rate
    assert logged["eval/test_addition/n"] == 7.0
    assert "eval/test_addition/length" in logged
    assert set(result.pass_rates()) == {"test_addition"}
    assert "test_addition: " in result.summary()
    with pytest.raises(KeyError, match="no suite 'nope'"):
        result.suite("nope")


def test_history_default_path_is_under_the_rootdir(trained: tuple[Any, Any, Path], evals: Path) -> None:
    import pytest_llmeval as le
    from pytest_llmeval.results.history import list_runs

    model, tokenizer, _ = trained
    result = le.evaluate(model, tokenizer, evals, limit=2, rootdir=evals)
    runs = list_runs(evals / ".llmeval" / "history.sqlite")
    assert [r.run_id for r in runs] == [result.history_run]


def test_a_live_model_s_outputs_stay_out_of_the_completion_cache(trained: tuple[Any, Any, Path], evals: Path) -> None:
    """Its weights change under one name (the checkpoint the settings name), so nothing is cached."""
    import pytest_llmeval as le

    model, tokenizer, ckpt = trained
    result = le.evaluate(model, tokenizer, evals, limit=2, rootdir=evals, history=False, args=["--llmeval-model", str(ckpt)])
    assert result.n == 4
    assert not (evals / ".llmeval" / "cache.sqlite").exists()


def test_evaluate_s_options_come_from_the_option_table() -> None:
    import inspect

    from pytest_llmeval.options import option
    from pytest_llmeval.training.inline import FORWARDED_OPTIONS, _command, evaluate

    assert set(FORWARDED_OPTIONS) <= set(inspect.signature(evaluate).parameters)
    forwarded = {name: None for name in FORWARDED_OPTIONS} | {"limit": 3, "output_dir": Path("out"), "train_data": "t.jsonl"}
    cmd = _command(["evals"], forwarded, keyword="add", rootdir=None, quiet=False, extra=["-x"])
    given = {cmd[i]: cmd[i + 1] for i, arg in enumerate(cmd[:-1]) if arg.startswith("--llmeval-")}
    assert given == {
        option("history").flag: "off",
        option("limit").flag: "3",
        option("output").flag: str(Path("out").resolve()),
        option("train-data").flag: "t.jsonl",
    }
    assert cmd[-3:] == ["-k", "add", "-x"]


def test_a_llama_model_trains_after_an_inline_eval(tmp_path: Path) -> None:
    """No tensor cached during the eval (rotary tables, masks) leaks into the next training step."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import pytest_llmeval as le
    from tiny import build_tiny_model

    path = build_tiny_model(tmp_path / "llama")
    model = AutoModelForCausalLM.from_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    evals = write_suite(tmp_path / "evals", [(1, 2), (3, 4)])
    model.train()
    le.evaluate(model, tokenizer, evals, history=False)
    ids = tokenizer(["What is two plus two?"], return_tensors="pt")["input_ids"]
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    assert model.training
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    assert torch.isfinite(loss)


def test_short_names() -> None:
    from pytest_llmeval.training.inline import short_names

    assert short_names(["a/test_x.py::test_one", "a/test_x.py::test_two"]) == {
        "test_one": "a/test_x.py::test_one",
        "test_two": "a/test_x.py::test_two",
    }
    clash = short_names(["a/test_x.py::test_one", "b/test_y.py::test_one"])
    assert clash == {"test_x/test_one": "a/test_x.py::test_one", "test_y/test_one": "b/test_y.py::test_one"}
    same = short_names(["a/test_x.py::test_one", "b/test_x.py::test_one"])
    assert same == {"a/test_x.py::test_one": "a/test_x.py::test_one", "b/test_x.py::test_one": "b/test_x.py::test_one"}


def test_ctrl_c_during_the_run_reaches_the_training_loop(
    trained: tuple[Any, Any, Path], evals: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pytest_llmeval as le

    model, tokenizer, _ = trained
    model.train()
    monkeypatch.setattr(pytest, "main", lambda *a, **k: pytest.ExitCode.INTERRUPTED)  # what pytest does on Ctrl-C
    with pytest.raises(KeyboardInterrupt):
        le.evaluate(model, tokenizer, evals, history=False)
    assert model.training
