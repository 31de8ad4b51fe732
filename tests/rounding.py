"""How far float32 rounding alone may move a model's numbers, for tests that compare two
computations of one model (another CPU's kernels, another batch shape).

The derivation, with SmolLM2's numbers and measurements, is in the docstring of
tests/test_loglik_reference.py.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

EPS32 = 2.0**-23  # float32 machine epsilon, 1.19e-7


@dataclass(frozen=True)
class Bound:
    """The float32 bound of a model with ``layers`` layers and ``vocab`` tokens whose logits
    reach ``logit_scale`` (Z) in absolute value."""

    layers: int
    vocab: int
    logit_scale: float

    @classmethod
    def of(cls, model: Any, logit_scale: float) -> Bound:
        return cls(model.config.num_hidden_layers, model.config.vocab_size, logit_scale)

    @property
    def logit(self) -> float:
        """The most one logit may move: rho * Z, rho = 2L * eps32."""
        return 2 * self.layers * EPS32 * self.logit_scale

    @property
    def margin(self) -> float:
        """A logit margin (one token's lead over another) at most this far from 0 is a near-tie."""
        return 2 * self.logit

    def loglikelihood(self, n_tokens: int, value: float) -> float:
        """The tolerance of a loglikelihood ``value`` summed over ``n_tokens`` continuation tokens."""
        per_token = 2 * self.logit + math.ceil(math.log2(self.vocab)) * EPS32
        return n_tokens * per_token + (n_tokens - 1) * EPS32 / 2 * abs(value)


def step_leads(step_logits: Sequence[Any]) -> tuple[float, float]:
    """For the logits of greedy generation steps (``generate(..., output_logits=True).logits``,
    batch 1): the smallest lead of the best token over the second, and the largest |logit|."""
    import torch

    steps = torch.cat([s.float().reshape(-1, s.shape[-1]) for s in step_logits])
    top = steps.topk(2, dim=-1).values
    return float((top[:, 0] - top[:, 1]).min()), float(steps.abs().max())


def assert_no_greedy_near_tie(model: Any, prompts: Sequence[Sequence[int]], max_new_tokens: int, pad_token_id: int) -> None:
    """Greedy generation from each prompt (token ids, one at a time) never chooses between two
    tokens within the float32 bound of each other: so its text is the same whatever the
    kernels or the batch it runs in, and comparing it exactly is portable."""
    import torch

    for ids in prompts:
        with torch.inference_mode():
            out = model.generate(
                torch.tensor([list(ids)]), attention_mask=torch.ones((1, len(ids)), dtype=torch.long),
                max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad_token_id,
                output_logits=True, return_dict_in_generate=True,
            )
        lead, scale = step_leads(out.logits)
        margin = Bound.of(model, scale).margin
        assert lead > margin, (
            f"greedy generation from {list(ids)[:12]}... chooses a token by {lead:.1e}, within the float32 "
            f"bound {margin:.1e}: another CPU or batch may choose otherwise; use another prompt"
        )


@dataclass
class LogitWatch:
    """What the output embedding produced: the largest |logit|, and at every position it was
    asked for, the lead of the largest logit over the second (an argmax near-tie if small)."""

    largest: float = 0.0
    leads: list[float] = field(default_factory=list)


@contextmanager
def watch_logits(model: Any) -> Iterator[LogitWatch]:
    seen = LogitWatch()

    def hook(module: Any, args: Any, output: Any) -> None:
        logits = output.detach().float().reshape(-1, output.shape[-1])
        seen.largest = max(seen.largest, float(logits.abs().max()))
        top = logits.topk(2, dim=-1).values
        seen.leads.extend((top[:, 0] - top[:, 1]).tolist())

    handle = model.get_output_embeddings().register_forward_hook(hook)
    try:
        yield seen
    finally:
        handle.remove()
