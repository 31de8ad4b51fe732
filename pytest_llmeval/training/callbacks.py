"""Eval suites during training: a ``transformers`` Trainer callback and a plain-loop helper.

Both run :func:`pytest_llmeval.evaluate` on the live model every ``N`` steps (and, for the
callback, at the end of training), log ``eval/<suite>/pass_rate`` (plus ``ci_low``, ``ci_high``,
``n``, ``errors`` and graded metrics), and can stop training when a suite falls below a floor.

    trainer = Trainer(model=model, args=args, train_dataset=ds, processing_class=tokenizer)
    trainer.add_callback(le.LLMEvalCallback("evals/", every_n_steps=200, floor=0.5, trainer=trainer))

    every = le.EvalEvery(200, "evals/", tokenizer, floor={"test_addition": 0.5})
    for step in range(1, steps + 1):
        ...                                   # forward, backward, optimizer.step()
        every(step, model)                    # evaluates at steps 200, 400, ...
        if every.should_stop:
            break
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, Union

from pytest_llmeval.training.inline import EvalResult, evaluate

__all__ = ["EvalEvery", "FloorBreach", "LLMEvalCallback", "check_floor"]

Floor = Union[float, Mapping[str, float], None]


@dataclass(frozen=True)
class FloorBreach:
    """A suite whose pass rate fell below its floor."""

    suite: str
    pass_rate: float
    floor: float
    step: int

    def describe(self) -> str:
        return f"{self.suite} pass rate {self.pass_rate:.1%} fell below its floor {self.floor:.1%} at step {self.step}"


def check_floor(result: EvalResult, floor: Floor, step: int) -> list[FloorBreach]:
    """The suites of ``result`` under ``floor``: one rate for every suite, or ``{suite: rate}``
    keyed by short name (``test_addition``) or full suite id. A named suite that did not run
    raises ``KeyError`` (a typo would otherwise never stop anything)."""
    if floor is None:
        return []
    if isinstance(floor, (int, float)) and not isinstance(floor, bool):
        wanted = {short: float(floor) for short in result.names}
    elif isinstance(floor, Mapping):
        wanted = {}
        for name, rate in floor.items():
            try:
                suite = result.suite(name)
            except KeyError as exc:
                raise KeyError(f"floor names {name!r}, which is not a suite of this eval run: {exc.args[0]}") from None
            short = next((s for s, full in result.names.items() if full == suite.name), suite.name)
            wanted[short] = float(rate)
    else:
        raise TypeError(f"floor must be a number or {{suite: rate}}, got {type(floor).__name__}")
    for name, rate in wanted.items():
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"floor for {name} must be between 0 and 1, got {rate}")
    breaches = []
    for short, rate in wanted.items():
        suite = result.suite(short)
        if suite.n and suite.pass_rate < rate - 1e-12:
            breaches.append(FloorBreach(short, suite.pass_rate, rate, step))
    return breaches


class _Schedule:
    """What both helpers share: when to evaluate, how, where to write, and the floor check."""

    def __init__(
        self,
        paths: str | Path | Sequence[str | Path],
        every_n_steps: int,
        *,
        floor: Floor = None,
        floor_from_step: int = 0,
        output_dir: str | Path | None = None,
        prefix: str = "eval",
        log: Callable[[str], None] | None = print,
        evaluate_options: Mapping[str, Any] | None = None,
    ) -> None:
        if every_n_steps < 1:
            raise ValueError(f"every_n_steps must be at least 1, got {every_n_steps}")
        self.paths = paths
        self.every_n_steps = every_n_steps
        self.floor = floor
        self.floor_from_step = floor_from_step
        self.output_dir = output_dir
        self.prefix = prefix
        self.log = log
        self.options = dict(evaluate_options or {})
        if "step" in self.options:
            raise TypeError("step is set for each eval from the training step; drop the step= argument")
        self.results: list[tuple[int, EvalResult]] = []
        self.breaches: list[FloorBreach] = []
        self.eval_seconds = 0.0
        self.last_step: int | None = None

    @property
    def last(self) -> EvalResult | None:
        return self.results[-1][1] if self.results else None

    @property
    def should_stop(self) -> bool:
        return bool(self.breaches)

    @property
    def stop_reason(self) -> str:
        return "; ".join(b.describe() for b in self.breaches)

    def due(self, step: int) -> bool:
        return step > 0 and step % self.every_n_steps == 0 and step != self.last_step

    def output_for(self, step: int) -> Path | None:
        if self.output_dir is None:
            return None
        text = str(self.output_dir)
        if "{step}" in text:
            return Path(text.format(step=step))
        return Path(text) / f"step-{step}"

    def run(self, model: Any, tokenizer: Any, step: int) -> EvalResult:
        if tokenizer is None:
            raise ValueError("no tokenizer: pass tokenizer= (or give the Trainer a processing_class)")
        started = time.perf_counter()
        options = {"label": f"step-{step}", **self.options}
        result = evaluate(model, tokenizer, self.paths, output_dir=self.output_for(step), step=step, **options)
        self.eval_seconds += time.perf_counter() - started
        self.results.append((step, result))
        self.last_step = step
        if step >= self.floor_from_step:
            self.breaches = check_floor(result, self.floor, step)
        if self.log is not None:
            for line in result.summary().splitlines():
                self.log(f"[llmeval step {step}] {line} ({result.seconds:.1f}s)")
            if self.breaches:
                self.log(f"[llmeval step {step}] stopping: {self.stop_reason}")
        return result


class EvalEvery(_Schedule):
    """Run eval suites every ``n`` steps of a plain PyTorch loop.

    ``every(step, model)`` evaluates when ``step`` is a multiple of ``n`` and returns the flat
    figures (``{"eval/test_addition/pass_rate": 0.64, ...}``) for your logger, else ``None``.
    ``every.final(step, model)`` evaluates unless that step was just evaluated. After a call,
    ``should_stop`` is true when a suite fell below ``floor`` (from ``floor_from_step`` on).
    Other keyword arguments go to :func:`pytest_llmeval.evaluate` (``keyword``, ``limit``,
    ``max_new_tokens``, ``history``, ``quiet``, ...).
    """

    def __init__(
        self,
        n: int,
        paths: str | Path | Sequence[str | Path],
        tokenizer: Any = None,
        *,
        floor: Floor = None,
        floor_from_step: int = 0,
        output_dir: str | Path | None = None,
        prefix: str = "eval",
        log: Callable[[str], None] | None = print,
        **evaluate_options: Any,
    ) -> None:
        super().__init__(
            paths, n, floor=floor, floor_from_step=floor_from_step, output_dir=output_dir, prefix=prefix,
            log=log, evaluate_options=evaluate_options,
        )
        self.tokenizer = tokenizer

    def __call__(self, step: int, model: Any, tokenizer: Any = None) -> dict[str, float] | None:
        if not self.due(step):
            return None
        return self.run(model, tokenizer or self.tokenizer, step).log_dict(self.prefix)

    def final(self, step: int, model: Any, tokenizer: Any = None) -> dict[str, float] | None:
        if step == self.last_step:
            return None
        return self.run(model, tokenizer or self.tokenizer, step).log_dict(self.prefix)


def _trainer_callback_base() -> type:
    try:
        from transformers import TrainerCallback
    except ImportError:  # pragma: no cover - transformers is a dependency
        return object
    return TrainerCallback


class LLMEvalCallback(_trainer_callback_base()):  # type: ignore[misc]
    """A ``transformers.TrainerCallback`` that runs eval suites every ``every_n_steps`` optimizer
    steps and at the end of training.

    Figures go through the Trainer's logging: with ``trainer=`` they are logged with
    ``trainer.log`` (so every ``report_to`` integration and ``state.log_history`` get them);
    without it they are added to ``state.log_history`` and to the next ``on_log`` call's logs.
    When a suite falls below ``floor`` (a rate for all suites or ``{suite: rate}``, checked from
    ``floor_from_step`` on) it sets ``control.should_training_stop``. ``output_dir`` writes
    each eval's ``results.json``/``samples.jsonl`` (``"{step}"`` in it is replaced by the step,
    else a ``step-N`` folder is used), so two checkpoints can be compared with
    ``python -m pytest_llmeval compare``. Other keyword arguments go to
    :func:`pytest_llmeval.evaluate`.
    """

    def __init__(
        self,
        paths: str | Path | Sequence[str | Path],
        tokenizer: Any = None,
        *,
        every_n_steps: int = 500,
        floor: Floor = None,
        floor_from_step: int = 0,
        eval_on_end: bool = True,
        output_dir: str | Path | None = None,
        trainer: Any = None,
        prefix: str = "eval",
        log: Callable[[str], None] | None = print,
        **evaluate_options: Any,
    ) -> None:
        self.schedule = _Schedule(
            paths, every_n_steps, floor=floor, floor_from_step=floor_from_step, output_dir=output_dir,
            prefix=prefix, log=log, evaluate_options=evaluate_options,
        )
        self.tokenizer = tokenizer
        self.eval_on_end = eval_on_end
        self.trainer = trainer
        self._pending: dict[str, float] = {}

    # figures -----------------------------------------------------------------

    @property
    def results(self) -> list[tuple[int, EvalResult]]:
        return self.schedule.results

    @property
    def last(self) -> EvalResult | None:
        return self.schedule.last

    @property
    def stop_reason(self) -> str:
        return self.schedule.stop_reason

    # events ------------------------------------------------------------------

    def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, processing_class: Any = None, **kwargs: Any) -> Any:
        if self.schedule.due(state.global_step):
            self._evaluate(state, control, model, processing_class or kwargs.get("tokenizer"), in_step=True)
        return control

    def on_train_end(self, args: Any, state: Any, control: Any, model: Any = None, processing_class: Any = None, **kwargs: Any) -> Any:
        if self.eval_on_end and state.global_step != self.schedule.last_step and state.global_step > 0:
            self._evaluate(state, control, model, processing_class or kwargs.get("tokenizer"), in_step=False)
        return control

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **kwargs: Any) -> Any:
        if self._pending and logs is not None:
            logs.update(self._pending)
            self._pending = {}
        return control

    def _evaluate(self, state: Any, control: Any, model: Any, tokenizer: Any, *, in_step: bool) -> None:
        if model is None:
            raise ValueError("LLMEvalCallback got no model from the Trainer")
        step = int(state.global_step)
        result = self.schedule.run(model, self.tokenizer or tokenizer, step)
        figures = result.log_dict(self.schedule.prefix)
        figures[f"{self.schedule.prefix}/seconds"] = round(result.seconds, 3)
        if self.trainer is not None:
            self.trainer.log(dict(figures))
        else:
            state.log_history.append({**figures, "step": step})
            if in_step:
                self._pending = dict(figures)
                control.should_log = True
        if self.schedule.should_stop:
            control.should_training_stop = True
