"""Reproducible sampling that does not depend on the batch: a stateless next-token sampler.

A sample must be the same text whatever batch it runs in (batch size, the other rows, their
order, ``-k``, ``-n 2``). A sampler that draws from one generator per batch cannot give that:
row 3's draw depends on how many numbers rows 0-2 took. Here every draw is a pure function of
the row's own seed and the decoding step:

    u      = uniform noise of shape [V] from a CPU ``torch.Generator`` seeded by ``mix(seed, step)``
    g      = -log(-log(u))                                   (standard Gumbel noise)
    scaled = logits / temperature, with tokens outside the top-p nucleus set to -inf
    token  = argmax(scaled + g)

By the Gumbel-max trick ``token`` is a draw from ``softmax(scaled)``, the same distribution as
ordinary temperature / top-p sampling. The noise is generated on the CPU (the same numbers on
any device) and moved to the logits' device.

:func:`sample_next` is what a decode loop calls once per step; :class:`SeededSampler` wraps
it as a transformers ``LogitsProcessor`` for ``model.generate`` with greedy decoding.
"""

from __future__ import annotations

import hashlib
from typing import Any, Sequence

__all__ = ["SeededSampler", "mix_seed", "sample_next", "sample_seed", "seeded_hook"]

_MASK63 = (1 << 63) - 1
_MASK64 = (1 << 64) - 1


def sample_seed(session_seed: int, case_id: str, repeat: int) -> int:
    """The seed of sample ``repeat`` of case ``case_id``: a stable hash (SHA-256, never Python's
    ``hash()``, which changes between processes) of the three, as a 63-bit non-negative int."""
    text = f"{int(session_seed)}\x1f{case_id}\x1f{int(repeat)}"
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big") & _MASK63


def mix_seed(seed: int, step: int) -> int:
    """The generator seed of decoding step ``step`` of a row seeded ``seed``: SplitMix64's
    finaliser over ``seed + (step + 1) * golden``, so nearby seeds and steps give unrelated
    streams. Pure integer arithmetic: the same on every machine."""
    z = (int(seed) + (int(step) + 1) * 0x9E3779B97F4A7C15) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return (z ^ (z >> 31)) & _MASK63


def gumbel_noise(seed: int, step: int, vocab: int) -> Any:
    """Standard Gumbel noise of shape ``[vocab]`` (float32, CPU) for one row and step."""
    import torch

    generator = torch.Generator(device="cpu").manual_seed(mix_seed(seed, step))
    u = torch.rand(vocab, generator=generator, dtype=torch.float64)
    u = u.clamp_(min=1e-300, max=1.0 - 1e-16)  # log(0) guard; a float64 uniform never reaches 1
    return (-torch.log(-torch.log(u))).to(torch.float32)


def nucleus(scaled: Any, top_p: float | None) -> Any:
    """``scaled`` logits ([B, V]) with the tokens outside each row's top-p nucleus set to -inf:
    the smallest set of most likely tokens whose probability reaches ``top_p`` (at least one)."""
    import torch

    if top_p is None or top_p >= 1.0:
        return scaled
    sorted_logits, order = torch.sort(scaled, dim=-1, descending=True)
    cumulative = torch.softmax(sorted_logits, dim=-1).cumsum(dim=-1)
    drop_sorted = cumulative - torch.softmax(sorted_logits, dim=-1) >= top_p  # mass before this token already enough
    drop_sorted[..., 0] = False
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return scaled.masked_fill(drop, float("-inf"))


def sample_next(
    logits: Any,
    seeds: Sequence[int],
    steps: Sequence[int],
    temperature: float | None = 1.0,
    top_p: float | None = None,
) -> Any:
    """The next token of each row: a temperature / top-p sample drawn with the row's own noise.

    ``logits``: ``[B, V]`` next-token logits (any float dtype, any device); ``seeds[b]``: row
    b's sample seed (:func:`sample_seed`); ``steps[b]``: how many tokens row b has generated so
    far (0 for its first). Returns a ``[B]`` long tensor on the logits' device. Stateless: the
    token of a row depends only on its logits, seed, step, ``temperature`` and ``top_p``, never
    on the other rows, so any decode loop (per-row step counts, rows joining and leaving) gets
    the same samples. ``temperature`` ``None`` means 1.0; it must be positive.
    """
    import torch

    if len(seeds) != logits.shape[0] or len(steps) != logits.shape[0]:
        raise ValueError(f"need one seed and one step per row: {logits.shape[0]} rows, {len(seeds)} seeds, {len(steps)} steps")
    t = 1.0 if temperature is None else float(temperature)
    if t <= 0.0:
        raise ValueError(f"temperature must be positive to sample, got {t}")
    scaled = nucleus(logits.float() / t, top_p)
    vocab = scaled.shape[-1]
    noise = torch.stack([gumbel_noise(s, k, vocab) for s, k in zip(seeds, steps)]).to(scaled.device)
    return torch.argmax(scaled + noise, dim=-1)


class SeededSampler:
    """A transformers ``LogitsProcessor`` that makes greedy ``model.generate`` sample with
    :func:`sample_next`: it puts 0 on the sampled token and -inf elsewhere, so the greedy argmax
    picks it. ``prompt_width`` is the (left-padded) prompt length: the step of every row is
    ``input_ids.shape[1] - prompt_width``."""

    def __init__(self, seeds: Sequence[int], prompt_width: int, temperature: float | None, top_p: float | None) -> None:
        self.seeds = list(seeds)
        self.prompt_width = prompt_width
        self.temperature = temperature
        self.top_p = top_p

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        step = int(input_ids.shape[1]) - self.prompt_width
        tokens = sample_next(scores, self.seeds, [step] * len(self.seeds), self.temperature, self.top_p)
        out = torch.full_like(scores, float("-inf"))
        out.scatter_(-1, tokens.unsqueeze(-1), 0.0)
        return out


def seeded_hook(seeds: Sequence[int], temperature: float | None, top_p: float | None) -> Any:
    """A ``logits_hook`` for :func:`pytest_llmeval.models.decode.greedy_decode` that samples
    with :func:`sample_next`: row ``r`` of the call (``seeds[r]``) gets its own noise at its own
    step, and the returned logits are 0 on the sampled token and -inf elsewhere, so the loop's
    argmax picks it. Rows leaving the batch early do not shift the others' noise."""

    def hook(logits: Any, rows: Sequence[int], steps: Sequence[int]) -> Any:
        import torch

        tokens = sample_next(logits, [seeds[r] for r in rows], list(steps), temperature, top_p)
        out = torch.full_like(logits, float("-inf"))
        out.scatter_(-1, tokens.unsqueeze(-1), 0.0)
        return out

    return hook
