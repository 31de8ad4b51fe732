"""The stateless seeded sampler: row-independent, the right distribution, top-p respected, seeds
stable across processes, and the same samples from the transformers backend at any batch size."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_llmeval.models.sampling import mix_seed, sample_next, sample_seed


def test_a_rows_token_depends_only_on_its_own_logits_seed_and_step() -> None:
    import torch

    torch.manual_seed(0)
    logits = torch.randn(9, 50)
    seeds, steps = [sample_seed(1, f"c{i}", i % 3) for i in range(9)], [i % 4 for i in range(9)]
    together = sample_next(logits, seeds, steps, temperature=1.3, top_p=0.9).tolist()
    alone = [sample_next(logits[i : i + 1], seeds[i : i + 1], steps[i : i + 1], temperature=1.3, top_p=0.9).item() for i in range(9)]
    shuffled = list(reversed(range(9)))
    reordered = sample_next(logits[shuffled], [seeds[i] for i in shuffled], [steps[i] for i in shuffled], 1.3, 0.9).tolist()
    assert together == alone == list(reversed(reordered))
    assert len(set(together)) > 1


def test_draws_follow_the_tempered_softmax() -> None:
    """4000 draws, each from its own seed; each token's frequency within 5 standard errors
    (sqrt(p (1 - p) / 4000) <= 0.0079) of softmax(logits / T): a fixed-seed check that a wrong
    temperature (p off by > 0.05 here) cannot pass."""
    import torch

    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0]])
    t = 0.7
    expected = torch.softmax(logits[0] / t, dim=-1).tolist()
    n = 4000
    tokens = sample_next(logits.expand(n, 4), list(range(n)), [0] * n, temperature=t).tolist()
    for token, p in enumerate(expected):
        freq = tokens.count(token) / n
        assert abs(freq - p) <= 5 * math.sqrt(p * (1 - p) / n), (token, freq, p)


def test_tokens_outside_the_top_p_nucleus_are_never_drawn() -> None:
    import torch

    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    n = 500
    tokens = set(sample_next(logits.expand(n, 4), list(range(n)), [3] * n, temperature=1.0, top_p=0.8).tolist())
    assert tokens == {0, 1}  # 0.5 + 0.3 reaches 0.8: the nucleus is the first two
    tokens = set(sample_next(logits.expand(n, 4), list(range(n)), [3] * n, temperature=1.0, top_p=0.81).tolist())
    assert tokens == {0, 1, 2}


def test_bad_arguments_are_refused() -> None:
    import torch

    with pytest.raises(ValueError, match="one seed and one step per row"):
        sample_next(torch.zeros(2, 3), [1], [0, 0])
    with pytest.raises(ValueError, match="temperature must be positive"):
        sample_next(torch.zeros(1, 3), [1], [0], temperature=0.0)


def test_seeds_are_stable_across_processes_and_distinct() -> None:
    code = "from pytest_llmeval.models.sampling import sample_seed, mix_seed; print(sample_seed(1234, 'add-001', 3), mix_seed(5, 7))"
    outs = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"PYTHONHASHSEED": h, "PYTHONPATH": ":".join(sys.path)}).stdout
        for h in ("1", "2")
    }
    assert outs == {f"{sample_seed(1234, 'add-001', 3)} {mix_seed(5, 7)}\n"}
    seeds = {sample_seed(s, c, r) for s in (1, 2) for c in ("a", "b", "a1") for r in range(4)}
    assert len(seeds) == 24 and all(0 <= x < 2**63 for x in seeds)


def test_backend_samples_are_the_same_at_batch_sizes_1_7_and_64(tiny_model_dir: Path) -> None:
    from pytest_llmeval.datasets.suite import Request
    from pytest_llmeval.models.hf import HFBackend
    from pytest_llmeval.settings import GenerationSettings, LLMSettings

    prompts = [("What is " + "two plus " * (i % 5) + "two?") for i in range(16)]
    requests = [Request(kind="generate", text=p, seed=sample_seed(1234, f"c{i}", r), repeat=r) for i, p in enumerate(prompts) for r in range(4)]
    gen = GenerationSettings(max_new_tokens=8, do_sample=True, temperature=1.2, top_p=0.95)
    outputs = {}
    for bs in (1, 7, 64):
        backend = HFBackend.load(LLMSettings(model=str(tiny_model_dir), batch_size=bs, generation=gen))
        outputs[bs] = [str(c) for c in backend.run_generate(requests)]
    assert outputs[1] == outputs[7] == outputs[64]
    assert len(set(outputs[1])) > 32  # 64 samples: sampled, not one greedy text per prompt


def test_seeded_samples_from_the_fast_loop_equal_transformers_generate(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The decode loop (shared prefix, finished rows dropped) samples through the same stateless
    sampler as ``model.generate``, so both give the same texts. The two compute each row's logits
    in a different layout, which changes float32 logits by a few units in the last place (about
    1e-6 here); a sampled token could only differ where the best two noised, tempered logits are
    closer than that, so the test first checks that no step comes within 1e-4 of such a tie."""
    import torch

    from pytest_llmeval.datasets.suite import Request
    from pytest_llmeval.models import sampling
    from pytest_llmeval.models.hf import HFBackend
    from pytest_llmeval.settings import GenerationSettings, LLMSettings

    temperature, top_p = 1.2, 0.95
    margins: list[float] = []
    original = sampling.seeded_hook

    def recording_hook(seeds: Any, t: Any, p: Any) -> Any:
        inner = original(seeds, t, p)

        def hook(logits: Any, rows: Any, steps: Any) -> Any:
            scaled = sampling.nucleus(logits.float() / t, p)
            noise = torch.stack([sampling.gumbel_noise(seeds[r], k, scaled.shape[-1]) for r, k in zip(rows, steps)])
            top = torch.topk(scaled + noise, 2, dim=-1).values
            margins.extend((top[:, 0] - top[:, 1]).tolist())
            return inner(logits, rows, steps)

        return hook

    monkeypatch.setattr(sampling, "seeded_hook", recording_hook)
    prompts = [("What is " + "two plus " * (i % 5) + "two?") for i in range(8)]
    requests = [Request(kind="generate", text=q, chat=True, seed=sample_seed(7, f"c{i}", r), repeat=r) for i, q in enumerate(prompts) for r in range(3)]
    gen = GenerationSettings(max_new_tokens=8, do_sample=True, temperature=temperature, top_p=top_p)
    backend = HFBackend.load(LLMSettings(model=str(tiny_model_dir), batch_size=8, generation=gen))
    fast = [str(c) for c in backend.run_generate(requests)]
    assert margins and min(margins) > 1e-4, "a sampled step is within float error of a tie: pick other seeds"
    backend.fast_decode = False
    assert [str(c) for c in backend.run_generate(requests)] == fast
    assert len(set(fast)) > 8
