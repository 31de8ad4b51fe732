"""The plugin's behaviour in real pytest runs: collection, fixtures, batching, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytest_llmeval.results.samplefile import read_samples

pytest_plugins = ["pytester"]


def make_ini(pytester: pytest.Pytester, model: Path | str | None = None, extra: str = "") -> None:
    lines = ["[pytest]"]
    if model is not None:
        lines.append(f"llmeval_model = {model}")
    lines.append("llmeval_history = off")
    pytester.makeini("\n".join(lines) + "\n" + extra)


def test_help_shows_the_llmeval_group(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--help")
    result.stdout.fnmatch_lines(["*LLM evaluations (pytest-llmeval)*", "*--llmeval-model=MODEL*", "*--llmeval-limit=LIMIT*"])


def test_cases_become_items_with_case_ids_and_k_selects_them(pytester: pytest.Pytester) -> None:
    make_ini(pytester)
    pytester.makefile(".jsonl", cases='{"id": "add-001", "a": 1}\n{"id": "add-002", "a": 2}\n{"id": "mul-001", "a": 3}\n')
    pytester.makepyfile(
        """
        import pytest_llmeval as le

        @le.cases("cases.jsonl")
        def test_values(case):
            assert case["a"] > 0
        """
    )
    result = pytester.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(["*test_values[[]add-001]", "*test_values[[]add-002]", "*test_values[[]mul-001]"])
    result = pytester.runpytest("-k", "add", "-q")
    result.assert_outcomes(passed=2, deselected=1)


def test_collect_only_never_loads_the_model(pytester: pytest.Pytester) -> None:
    make_ini(pytester, model="/nonexistent/model-dir")
    pytester.makepyfile(
        """
        import pytest_llmeval as le

        @le.cases([{"id": "a", "q": "x"}], prompt="{q}")
        def test_gen(case, completion):
            pass
        """
    )
    result = pytester.runpytest("--collect-only")
    assert result.ret == 0
    result.stdout.no_fnmatch_line("*loaded*")


@pytest.mark.parametrize(
    "data,message",
    [
        ('{"id": "a", "q": "x"}\n{"id": "b", "q": \n', "*cases.jsonl:2: not valid JSON*fix or remove that line*"),
        ('{"id": "a", "q": "x"}\n{"id": "a", "q": "y"}\n', "*cases.jsonl:2: duplicate case id 'a' (first at cases.jsonl:1)*"),
        ('{"id": "a", "other": "x"}\n', "*cases.jsonl:1: case 'a' has no field 'q' used by the prompt*"),
    ],
)
def test_bad_data_is_a_clear_collection_error(pytester: pytest.Pytester, data: str, message: str) -> None:
    make_ini(pytester)
    pytester.makefile(".jsonl", cases=data)
    pytester.makepyfile(
        """
        import pytest_llmeval as le

        @le.cases("cases.jsonl", prompt="Q: {q}")
        def test_gen(case, completion):
            pass
        """
    )
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*ERROR collecting*", message])
    result.stdout.no_fnmatch_line("*Traceback*")
    result.stdout.no_fnmatch_line("*During handling of the above exception*")


def test_model_that_fails_to_load_errors_every_item_once(pytester: pytest.Pytester) -> None:
    make_ini(pytester, model="/nonexistent/model-dir")
    pytester.makepyfile(
        """
        import pytest_llmeval as le

        @le.cases([{"id": f"c{i}", "q": "x"} for i in range(3)], prompt="{q}")
        def test_gen(case, completion):
            pass

        def test_plain():
            pass
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=1, errors=3)
    result.stdout.fnmatch_lines(["*llmeval: model '/nonexistent/model-dir' is not a local path*"])
    result.stdout.no_fnmatch_line("*During handling of the above exception*")
    result.stdout.no_fnmatch_line("*The above exception was the direct cause*")
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_no_model_configured_says_how_to_configure(pytester: pytest.Pytester) -> None:
    make_ini(pytester)
    pytester.makepyfile(
        """
        import pytest_llmeval as le

        @le.cases([{"id": "a", "q": "x"}], prompt="{q}")
        def test_gen(case, completion):
            pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*no model is configured: set llmeval_model*"])


GEN_TEST = """
import pytest_llmeval as le

CASES = [{"id": f"q{i}", "q": "What is " + "two plus " * (i % 4) + "two?"} for i in range(6)]

@le.cases(CASES, prompt="{q}", chat=True, max_new_tokens=6)
def test_gen(case, completion, llm, record_property):
    assert isinstance(completion, str)
    assert completion.tokens_out <= 6 and completion.finish_reason in ("stop", "length")
    assert completion.prompt.startswith("<|im_start|>user")
    # the imperative slow path gives the same greedy text as the batched one
    assert llm.generate(case["q"], chat=True, max_new_tokens=6) == completion
"""

GEN_PROMPTS = ["What is " + "two plus " * (i % 4) + "two?" for i in range(6)]  # GEN_TEST's cases


def _no_greedy_near_tie(model_dir: Path, prompts: list[str], max_new_tokens: int, chat: bool) -> None:
    """Batched and single generation agree exactly on any CPU only if no greedy step is a near-tie."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rounding import assert_no_greedy_near_tie

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    if chat:
        prompts = [tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True) for p in prompts]
    ids = [tok(p, add_special_tokens=not chat)["input_ids"] for p in dict.fromkeys(prompts)]
    assert_no_greedy_near_tie(model, ids, max_new_tokens, tok.pad_token_id)


def test_completions_are_batched_and_match_single_generate(pytester: pytest.Pytester, tiny_model_dir: Path) -> None:
    _no_greedy_near_tie(tiny_model_dir, GEN_PROMPTS, 6, chat=True)
    make_ini(pytester, model=tiny_model_dir)
    pytester.makepyfile(GEN_TEST)
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines(["*llmeval: 6 completions in batches of up to*", "*llmeval: 6/6 completions in*"])


def test_greedy_output_does_not_depend_on_batch_size(tiny_model_dir: Path) -> None:
    from pytest_llmeval.datasets.suite import Request
    from pytest_llmeval.models.hf import HFBackend
    from pytest_llmeval.settings import GenerationSettings, LLMSettings

    prompts = [("What is " + "two plus " * (i % 5) + "two?") for i in range(11)]
    _no_greedy_near_tie(tiny_model_dir, prompts, 8, chat=False)
    requests = [Request(kind="generate", text=p) for p in prompts]
    outputs = {}
    for bs in (1, 4, 11):
        settings = LLMSettings(model=str(tiny_model_dir), batch_size=bs, generation=GenerationSettings(max_new_tokens=8))
        backend = HFBackend.load(settings)
        outputs[bs] = [str(c) for c in backend.run_generate(requests)]
    assert outputs[1] == outputs[4] == outputs[11]
    assert len(set(outputs[1])) > 1  # the prompts really give different texts


def test_limit_runs_first_cases_of_each_suite(pytester: pytest.Pytester) -> None:
    make_ini(pytester)
    pytester.makepyfile(
        """
        import pytest_llmeval as le

        @le.cases([{"id": f"c{i}"} for i in range(5)])
        def test_a(case):
            pass

        @le.cases([{"id": f"d{i}"} for i in range(5)])
        def test_b(case):
            pass
        """
    )
    result = pytester.runpytest("--llmeval-limit", "2", "-q")
    result.assert_outcomes(passed=4)


def test_misses_do_not_fail_the_session_but_errors_do(pytester: pytest.Pytester) -> None:
    make_ini(pytester)
    pytester.makepyfile(
        """
        import pytest_llmeval as le

        @le.cases([{"id": "a", "ok": True}, {"id": "b", "ok": False}, {"id": "c", "ok": False}])
        def test_answers(case):
            le.assert_exact("yes" if case["ok"] else "no", "yes")
        """
    )
    result = pytester.runpytest()
    assert result.ret == 0
    result.stdout.fnmatch_lines(
        ["missed cases*", "*test_answers[[]b]: text differs from the expected text*", "*1 passed, 2 missed*"]
    )
    strict = pytester.runpytest("--llmeval-strict")
    assert strict.ret == pytest.ExitCode.TESTS_FAILED

    pytester.makepyfile(
        """
        import pytest_llmeval as le

        @le.cases([{"id": "a"}, {"id": "b"}])
        def test_broken(case):
            raise KeyError("scorer bug")
        """
    )
    broken = pytester.runpytest()
    assert broken.ret == pytest.ExitCode.TESTS_FAILED
    broken.stdout.fnmatch_lines(["*2 error*"])


def test_non_eval_failures_keep_plain_pytest_semantics(pytester: pytest.Pytester) -> None:
    make_ini(pytester)
    pytester.makepyfile(
        """
        import pytest_llmeval as le

        @le.cases([{"id": "a"}])
        def test_eval(case):
            assert False

        def test_plain():
            assert False
        """
    )
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*1 failed, 1 missed*"])


def test_test_leaving_model_in_training_mode_is_reported_and_repaired(pytester: pytest.Pytester, tiny_model_dir: Path) -> None:
    make_ini(pytester, model=tiny_model_dir)
    pytester.makepyfile(
        """
        import pytest_llmeval as le

        @le.cases([{"id": "a", "q": "hi"}, {"id": "b", "q": "ho"}], prompt="{q}", max_new_tokens=2)
        def test_gen(case, completion, llm):
            assert not llm.model.training
            if case.id == "a":
                llm.model.train()
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*left the model in training mode; the plugin put it back in eval mode*"])


def test_llm_settings_fixture_override_configures_the_model(pytester: pytest.Pytester, tiny_model_dir: Path) -> None:
    make_ini(pytester)
    pytester.makeconftest(
        f"""
        import pytest
        from pytest_llmeval import LLMSettings, GenerationSettings

        @pytest.fixture(scope="session")
        def llm_settings():
            return LLMSettings(model={str(tiny_model_dir)!r}, batch_size=2, seed=7,
                               generation=GenerationSettings(max_new_tokens=3))
        """
    )
    pytester.makepyfile(
        """
        import pytest_llmeval as le

        @le.cases([{"id": "a", "q": "hi"}], prompt="{q}")
        def test_gen(case, completion, llm):
            assert llm.settings.seed == 7 and llm.batch_size() == 2
            assert completion.tokens_out <= 3
        """
    )
    pytester.runpytest().assert_outcomes(passed=1)


def test_score_records_graded_metrics_in_outputs(pytester: pytest.Pytester) -> None:
    make_ini(pytester)
    pytester.makepyfile(
        """
        import pytest_llmeval as le

        @le.cases([{"id": "a", "v": 0.5}, {"id": "b", "v": 1.0}])
        def test_graded(case):
            le.score("quality", case["v"])
        """
    )
    out = pytester.path / "out"
    result = pytester.runpytest("--llmeval-output", str(out))
    assert result.ret == 0
    samples = read_samples(out / "samples.jsonl")
    assert sorted(s["scores"]["quality"] for s in samples) == [0.5, 1.0]


def test_xdist_workers_run_and_report_every_case_once(pytester: pytest.Pytester, tiny_model_dir: Path) -> None:
    pytest.importorskip("xdist")
    _no_greedy_near_tie(tiny_model_dir, GEN_PROMPTS, 6, chat=True)  # a worker's batches depend on scheduling
    make_ini(pytester, model=tiny_model_dir)
    pytester.makepyfile(GEN_TEST)
    out = pytester.path / "out"
    result = pytester.runpytest("-n", "2", "--llmeval-output", str(out))
    result.assert_outcomes(passed=6)
    samples = read_samples(out / "samples.jsonl")
    assert sorted(s["id"] if "id" in s else s["case_id"] for s in samples) == [f"q{i}" for i in range(6)]


def test_relative_model_path_in_ini_is_relative_to_the_ini_file(
    pytester: pytest.Pytester, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    shutil.copytree(tiny_model_dir, pytester.path / "models" / "tiny")
    make_ini(pytester, model="models/tiny")
    evals = pytester.mkdir("evals")
    (evals / "test_rel.py").write_text(
        "import pytest_llmeval as le\n\n"
        "@le.cases([{'id': 'a', 'q': 'hi'}], prompt='{q}', max_new_tokens=2)\n"
        "def test_gen(case, completion):\n    pass\n"
    )
    monkeypatch.chdir(evals)
    pytester.runpytest().assert_outcomes(passed=1)
