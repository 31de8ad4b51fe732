from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_llmeval.training.callbacks import EvalEvery, LLMEvalCallback, check_floor
from pytest_llmeval.training.inline import EvalResult, short_names
from pytest_llmeval.results.stats import SuiteResult
from tiny_example import EXAMPLE, example_module, one_thread


SUITE = """
import pytest_llmeval as le


@le.cases("cases.jsonl", prompt="{a}+{b}=", id="id", max_new_tokens=4)
def test_addition(case, completion):
    le.assert_number(completion, case["answer"])


@le.cases("cases.jsonl", prompt="{a}+{b}=", id="id", max_new_tokens=4)
def test_anything(case, completion):
    pass
"""


@pytest.fixture
def evals(tmp_path: Path) -> Path:
    pairs = example_module("data").eval_pairs()[:12]
    rows = [{"id": f"add-{a:02d}-{b:02d}", "a": a, "b": b, "answer": a + b} for a, b in pairs]
    d = tmp_path / "evals"
    d.mkdir()
    (d / "cases.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (d / "test_evals.py").write_text(SUITE, encoding="utf-8")
    return d


@pytest.fixture(scope="module")
def tiny() -> tuple[Any, Any]:
    train = example_module("train")
    tokenizer = train.build_tokenizer()
    return train.build_model(tokenizer, train.SIZES["tiny"], seed=1), tokenizer


def _result(rates: dict[str, tuple[int, int]]) -> EvalResult:
    suites = tuple(
        SuiteResult(name=f"evals/test_x.py::{name}", n=n, passed=p, failed=n - p, errors=0) for name, (p, n) in rates.items()
    )
    return EvalResult(suites=suites, names=short_names([s.name for s in suites]))


# --------------------------------------------------------------------------- floors (pure)


def test_floor_for_every_suite() -> None:
    result = _result({"test_a": (3, 10), "test_b": (8, 10)})
    breaches = check_floor(result, 0.5, step=7)
    assert [(b.suite, b.pass_rate, b.floor, b.step) for b in breaches] == [("test_a", 0.3, 0.5, 7)]
    assert "test_a pass rate 30.0% fell below its floor 50.0% at step 7" == breaches[0].describe()
    assert check_floor(result, 0.3, step=1) == []  # at the floor is not below it
    assert check_floor(result, None, step=1) == []


def test_floor_per_suite_by_short_or_full_name() -> None:
    result = _result({"test_a": (3, 10), "test_b": (8, 10)})
    assert [b.suite for b in check_floor(result, {"test_b": 0.9}, step=1)] == ["test_b"]
    assert [b.suite for b in check_floor(result, {"evals/test_x.py::test_a": 0.4}, step=1)] == ["test_a"]
    with pytest.raises(KeyError, match="floor names 'test_c'"):
        check_floor(result, {"test_c": 0.5}, step=1)
    with pytest.raises(ValueError, match="between 0 and 1"):
        check_floor(result, {"test_a": 50}, step=1)
    with pytest.raises(TypeError, match="floor must be"):
        check_floor(result, "0.5", step=1)  # type: ignore[arg-type]


def test_schedule_arguments_checked() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        EvalEvery(0, "evals")
    with pytest.raises(TypeError, match="step is set for each eval"):
        LLMEvalCallback("evals", every_n_steps=2, step=3)


# --------------------------------------------------------------------------- plain loop


def test_eval_every_in_a_plain_loop(tiny: tuple[Any, Any], evals: Path, tmp_path: Path) -> None:
    model, tokenizer = tiny
    lines: list[str] = []
    every = EvalEvery(2, evals, tokenizer, output_dir=tmp_path / "out" / "ckpt-{step}", log=lines.append, history=False)
    model.train()
    logged = {step: every(step, model) for step in range(1, 6)}
    assert [s for s, v in logged.items() if v is not None] == [2, 4]
    assert logged[2]["eval/test_anything/pass_rate"] == 1.0
    assert 0.0 <= logged[2]["eval/test_addition/pass_rate"] <= 1.0
    assert every.final(5, model) is not None
    assert every.final(5, model) is None  # already evaluated at this step
    assert [s for s, _ in every.results] == [2, 4, 5]
    assert model.training
    assert (tmp_path / "out" / "ckpt-4" / "results.json").is_file()
    assert any(line.startswith("[llmeval step 2] test_addition: ") for line in lines)
    assert not every.should_stop


def test_eval_every_floor_stops(tiny: tuple[Any, Any], evals: Path) -> None:
    model, tokenizer = tiny
    every = EvalEvery(1, evals, tokenizer, floor={"test_anything": 1.0, "test_addition": 1.0}, floor_from_step=2, log=None, history=False)
    every(1, model)
    assert not every.should_stop  # floors are not checked before floor_from_step
    every(2, model)
    assert every.should_stop
    assert "test_addition pass rate" in every.stop_reason and "test_anything" not in every.stop_reason


# --------------------------------------------------------------------------- Trainer callback


def _trainer(model: Any, tokenizer: Any, tmp_path: Path, callbacks: list[Any], steps: int) -> Any:
    import torch
    from transformers import Trainer, TrainingArguments

    train = example_module("train")
    ids, mask, labels = train.encode(tokenizer, [(a, b) for a in range(8) for b in range(8)])

    class Pairs(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(ids)

        def __getitem__(self, i: int) -> dict[str, Any]:
            return {"input_ids": ids[i], "attention_mask": mask[i], "labels": labels[i]}

    args = TrainingArguments(
        output_dir=str(tmp_path / "trainer"),
        max_steps=steps,
        per_device_train_batch_size=8,
        learning_rate=1e-3,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )
    return Trainer(model=model, args=args, train_dataset=Pairs(), processing_class=tokenizer, callbacks=callbacks)


def test_callback_in_a_trainer_logs_and_evaluates_at_the_end(evals: Path, tmp_path: Path) -> None:
    train = example_module("train")
    tokenizer = train.build_tokenizer()
    model = train.build_model(tokenizer, train.SIZES["tiny"], seed=2)
    callback = LLMEvalCallback(evals, every_n_steps=2, log=None, history=False)
    trainer = _trainer(model, tokenizer, tmp_path, [callback], steps=5)
    callback.trainer = trainer
    trainer.train()
    assert [s for s, _ in callback.results] == [2, 4, 5]  # every 2 steps, and at the end
    logged = [e for e in trainer.state.log_history if "eval/test_addition/pass_rate" in e]
    assert [e["step"] for e in logged] == [2, 4, 5]
    assert all(e["eval/test_anything/pass_rate"] == 1.0 for e in logged)
    assert model.training  # the Trainer's mode, as the callback found it
    assert trainer.state.global_step == 5


def test_callback_without_trainer_reference_still_logs(evals: Path, tmp_path: Path) -> None:
    train = example_module("train")
    tokenizer = train.build_tokenizer()
    model = train.build_model(tokenizer, train.SIZES["tiny"], seed=2)
    callback = LLMEvalCallback(evals, every_n_steps=3, log=None, history=False, eval_on_end=False)
    seen: list[dict[str, float]] = []

    from transformers import TrainerCallback

    class Reporter(TrainerCallback):  # stands for a report_to integration listed after ours
        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
            seen.append(dict(logs or {}))

    trainer = _trainer(model, tokenizer, tmp_path, [callback, Reporter()], steps=4)
    trainer.train()
    assert [s for s, _ in callback.results] == [3]
    assert [e["step"] for e in trainer.state.log_history if "eval/test_addition/pass_rate" in e] == [3]
    assert sum("eval/test_addition/pass_rate" in logs for logs in seen) == 1


def test_callback_floor_stops_training(evals: Path, tmp_path: Path) -> None:
    train = example_module("train")
    tokenizer = train.build_tokenizer()
    model = train.build_model(tokenizer, train.SIZES["tiny"], seed=2)
    callback = LLMEvalCallback(evals, every_n_steps=2, floor={"test_addition": 1.0}, log=None, history=False)
    trainer = _trainer(model, tokenizer, tmp_path, [callback], steps=10)
    trainer.train()
    assert trainer.state.global_step == 2
    assert "test_addition" in callback.stop_reason
    assert [s for s, _ in callback.results] == [2]  # stopping right after an eval does not repeat it


def test_callback_methods_called_directly(tiny: tuple[Any, Any], evals: Path) -> None:
    from transformers import TrainerControl, TrainerState

    model, tokenizer = tiny
    callback = LLMEvalCallback(evals, tokenizer, every_n_steps=4, floor=0.99, floor_from_step=8, log=None, history=False)
    state, control = TrainerState(), TrainerControl()
    state.global_step = 3
    callback.on_step_end(None, state, control, model=model)
    assert callback.results == [] and not control.should_log
    state.global_step = 4
    callback.on_step_end(None, state, control, model=model)
    assert [s for s, _ in callback.results] == [4]
    assert control.should_log and not control.should_training_stop
    assert state.log_history[-1]["step"] == 4 and "eval/test_addition/pass_rate" in state.log_history[-1]
    logs: dict[str, float] = {"loss": 1.0}
    callback.on_log(None, state, control, logs=logs)
    assert logs["eval/test_addition/pass_rate"] == callback.last.pass_rate("test_addition")
    again: dict[str, float] = {"loss": 0.5}
    callback.on_log(None, state, control, logs=again)
    assert again == {"loss": 0.5}  # figures are handed over once
    state.global_step = 8
    callback.on_step_end(None, state, control, model=model)
    assert control.should_training_stop  # test_addition is far below 0.99 on an untrained model
    callback.on_train_end(None, state, control, model=model)
    assert [s for s, _ in callback.results] == [4, 8]
    state.global_step = 9
    callback.on_train_end(None, state, control, model=model)
    assert [s for s, _ in callback.results] == [4, 8, 9]


def test_callback_needs_a_tokenizer(tiny: tuple[Any, Any], evals: Path) -> None:
    from transformers import TrainerControl, TrainerState

    model, _ = tiny
    callback = LLMEvalCallback(evals, every_n_steps=1, log=None, history=False)
    state = TrainerState()
    state.global_step = 1
    with pytest.raises(ValueError, match="no tokenizer"):
        callback.on_step_end(None, state, TrainerControl(), model=model)


# --------------------------------------------------------------------------- the example


def _compare(a: Path, b: Path) -> tuple[int, str]:
    import io

    from pytest_llmeval.cli import compare

    parser = __import__("argparse").ArgumentParser()
    compare.COMMAND.register(parser.add_subparsers())
    args = parser.parse_args(["compare", str(a), str(b)])
    out = io.StringIO()
    return compare.run(args, out=out), out.getvalue()


def test_example_quick_training_run(tmp_path: Path) -> None:
    """train.py --quick: checkpoints that AutoTokenizer/AutoModel load, an inline eval at each,
    results to compare, a run history by step, and training data that holds the eval set out."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from pytest_llmeval.datasets.heldout import ContaminationIndex, load_training_texts
    from pytest_llmeval.results.history import suite_trend

    train = example_module("train")
    out = tmp_path / "run"
    with one_thread():
        assert train.main(["--quick", "--out", str(out), "--threads", "0", "--quiet"]) == 0
    ckpts = sorted(p.name for p in out.glob("checkpoint-*"))
    assert ckpts == ["checkpoint-30", "checkpoint-60"]
    model = AutoModelForCausalLM.from_pretrained(out / "checkpoint-60")
    tokenizer = AutoTokenizer.from_pretrained(out / "checkpoint-60")
    assert sum(p.numel() for p in model.parameters()) < 1_000_000
    assert tokenizer.decode(tokenizer("12+34=46")["input_ids"]) == "12+34=46"
    assert [(p.step, p.n) for p in suite_trend(out / "history.sqlite", "test_addition")] == [(30, 500), (60, 500)]
    code, text = _compare(out / "checkpoint-30" / "llmeval", out / "checkpoint-60" / "llmeval")
    assert code in (0, 1, 2)
    assert any(text.strip().splitlines()[-1].startswith(v) for v in ("KEEP", "DISCARD", "MIXED", "UNCHANGED"))
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log if "eval/test_addition/pass_rate" in e] == [30, 60]

    index = ContaminationIndex(load_training_texts(out / "train.jsonl"))
    cases = [json.loads(line) for line in (EXAMPLE / "cases.jsonl").read_text().splitlines()]
    assert len(cases) == 500
    assert [c["id"] for c in cases if index.check(f"{c['a']}+{c['b']}=", c["answer"])] == []
    a, b = example_module("data").train_pairs()[1234]
    assert index.check(f"{a}+{b}=", a + b) is not None  # a trained-on case would be flagged


@pytest.mark.slow
def test_example_trains_and_the_checkpoint_decision_is_keep(tmp_path: Path) -> None:
    """A real (short) training run: the later checkpoint is significantly better -> KEEP, and
    going back to the earlier one -> DISCARD."""
    train = example_module("train")
    out = tmp_path / "run"
    hook = train.inline_evals(200, out, quiet=True)
    with one_thread():
        result = train.train(out, steps=400, save_every=200, on_step=hook, quiet=True)
    rates = [r.pass_rate("test_addition") for _, r in hook.results]
    assert [s for s, _ in hook.results] == [200, 400]
    assert rates[1] > rates[0]
    a, b = result.checkpoints[0] / "llmeval", result.checkpoints[1] / "llmeval"
    code, text = _compare(a, b)
    assert (code, text.strip().splitlines()[-1].split(":")[0]) == (0, "KEEP")
    code, text = _compare(b, a)
    assert (code, text.strip().splitlines()[-1].split(":")[0]) == (1, "DISCARD")
