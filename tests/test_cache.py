"""The completion cache's keys, values and file (models/cache.py), without pytest runs."""

from __future__ import annotations

import dataclasses
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_llmeval.datasets.suite import Request
from pytest_llmeval.models.cache import (
    CacheStore,
    CompletionCache,
    LLMEvalCacheWarning,
    cacheable,
    decode,
    encode,
    merge,
    identity_key,
    request_key,
)
from pytest_llmeval.models.outputs import Completion, Ranked
from pytest_llmeval.settings import GenerationSettings, LLMSettings

IDENTITY = {"backend": "test", "weights": "sha256:abc"}
SETTINGS = LLMSettings(model="m")

texts = st.text(max_size=12)
requests = st.builds(
    Request,
    kind=st.sampled_from(["generate", "rank"]),
    text=texts,
    chat=st.booleans(),
    system=st.none() | texts,
    choices=st.lists(texts, max_size=3).map(tuple),
    target_delimiter=st.sampled_from([" ", "", "\n"]),
    max_new_tokens=st.none() | st.integers(1, 64),
    stop=st.none() | st.lists(texts, max_size=2).map(tuple),
    continuation=st.none() | texts,
    fewshot=st.lists(st.tuples(texts, texts), max_size=2).map(tuple),
)


@given(requests, requests)
def test_distinct_requests_never_share_a_key(a: Request, b: Request) -> None:
    ident = identity_key(IDENTITY)
    assert (request_key(ident, SETTINGS, a) == request_key(ident, SETTINGS, b)) == (a == b)


@given(requests, st.integers(0, 2**31), st.integers(1, 64), st.booleans())
def test_seed_and_generation_settings_are_in_the_key(request: Request, seed: int, tokens: int, sample: bool) -> None:
    ident = identity_key(IDENTITY)
    settings = LLMSettings(model="m", seed=seed, generation=GenerationSettings(max_new_tokens=tokens, do_sample=sample))
    changed = [
        settings.replace(seed=seed + 1),
        settings.replace(generation=GenerationSettings(max_new_tokens=tokens + 1, do_sample=sample)),
        settings.replace(generation=GenerationSettings(max_new_tokens=tokens, do_sample=not sample)),
        settings.replace(batch_size=3),
    ]
    key = request_key(ident, settings, request)
    rank = request.kind == "rank"  # a loglikelihood does not depend on the generation settings
    assert [request_key(ident, other, request) == key for other in changed] == [False, rank, rank, False]
    assert request_key(identity_key({**IDENTITY, "weights": "sha256:abd"}), settings, request) != key
    # the model's name is not part of the key: the identity says what the model is
    assert request_key(ident, settings.replace(model="elsewhere/m"), request) == key
    # nor how requests are sent to a server: the identity has the server, answers do not depend on the rest
    sending = dict(base_url="http://u:p@h:1/v1", api_key_env="K", concurrency=1, request_timeout=1.0, max_retries=0)
    assert request_key(ident, settings.replace(**sending, price_in=1.0, price_out=2.0, max_cost=3.0), request) == key


@dataclasses.dataclass(frozen=True)
class LaterRequest(Request):
    """A request with fields added after the cache was written (the sample's seed and repeat)."""

    seed: int | None = None
    repeat: int = 0


@given(st.none() | st.integers(0, 1000), st.integers(0, 20))
def test_fields_added_to_the_request_later_are_in_the_key(seed: int | None, repeat: int) -> None:
    ident = identity_key(IDENTITY)
    base = LaterRequest("generate", "hi", seed=seed, repeat=repeat)
    key = request_key(ident, SETTINGS, base)
    assert request_key(ident, SETTINGS, dataclasses.replace(base, repeat=repeat + 1)) != key
    assert request_key(ident, SETTINGS, dataclasses.replace(base, seed=(seed or 0) + 1)) != key


def test_keys_stay_those_of_earlier_versions() -> None:
    """A cache file written by an earlier version answers the same run: the identity and the keys
    below were computed by the code before the backend registry and the one batched path. A
    change that must alter them (a new field of ``Request`` or ``LLMSettings``) makes every stored
    output a miss: update the literals and say why in the change's description."""
    from pytest_llmeval.models import backend_identity

    settings = LLMSettings(
        model="openai:tiny-chat", base_url="http://user:pw@127.0.0.1:8000/v1?x=1", seed=7, generation=GenerationSettings(max_new_tokens=16)
    )
    assert backend_identity(settings) == {"scheme": "openai", "model": "tiny-chat", "server": "http://127.0.0.1:8000/v1"}
    generate = Request(kind="generate", text="2+2=", chat=True, system="Be brief.", max_new_tokens=8, stop=("\n",), seed=11, repeat=1)
    rank = Request(kind="rank", text="Capital of France:", choices=("Paris", "Rome"), target_delimiter=" ")
    assert request_key("0" * 64, settings, generate) == "849ba2b094a42d7564492f22c1a22bc3af7e2c8eb7c49575c21681b430f3fba0"
    assert request_key("0" * 64, settings, rank) == "a4ff933ceebeb361b11b276a6a94fc6597cc09ce258d9acfdddf130bd07d0fa6"


@given(st.text(), st.text(), st.integers(0, 10**6), st.floats(0, 1e6), st.sampled_from(["stop", "length"]))
def test_a_completion_comes_back_with_its_metadata(text: str, prompt: str, tokens: int, latency: float, reason: str) -> None:
    done = Completion(text, prompt=prompt, tokens_in=tokens, tokens_out=tokens + 1, latency_s=latency, finish_reason=reason, truncated=2)
    done.retries = 3  # an attribute a backend adds beyond the constructor's
    back = decode(encode(done))
    assert isinstance(back, Completion) and back == done and back.text == done.text
    assert vars(back) == vars(done)


def test_a_ranking_comes_back_equal() -> None:
    ranked = Ranked("Q:", ("a", "b"), (-1.5, -0.25), (False, True), (1, 1), tokens_in=4, latency_s=0.5)
    assert decode(encode(ranked)) == ranked


def test_errors_are_not_cacheable() -> None:
    assert cacheable(Completion("x"))
    assert not cacheable(Completion("", finish_reason="error"))
    failed = Completion("x")
    failed.error = "HTTP 500"
    assert not cacheable(failed)
    assert not cacheable(RuntimeError("boom"))


# ----------------------------------------------------------------------------- the file


class FakeBackend:
    fingerprint = {"model": "sha256:abc", "tokenizer": "sha256:def", "versions": {"x": "1"}}
    has_chat_template = True


def _cache(path: Path, mode: str = "on") -> CompletionCache:
    return CompletionCache(CacheStore(path, readonly=mode == "readonly"), IDENTITY, SETTINGS, mode)


def _fill(path: Path, n: int = 3, mode: str = "on") -> list[Request]:
    reqs = [Request("generate", f"q{i}") for i in range(n)]
    cache = _cache(path, mode)
    cache.remember(FakeBackend())
    cache.save(reqs, [Completion(f"a{i}", tokens_out=i) for i in range(n)])
    return reqs


def _rows(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT count(*) FROM outputs").fetchone()[0]


def test_saved_outputs_are_found_by_a_later_session(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    reqs = _fill(path)
    later = _cache(path)
    found = later.lookup([*reqs, Request("generate", "new")])
    assert [f.tokens_out if f is not None else None for f in found] == [0, 1, 2, None]
    assert later.hits == {"generate": 3}
    assert later.fingerprint == FakeBackend.fingerprint and later.has_chat_template is True


def test_nothing_is_read_before_the_backend_was_remembered(tmp_path: Path) -> None:
    """Outputs without the backend's own report could not record its fingerprint: not read."""
    path = tmp_path / "c.sqlite"
    cache = _cache(path)
    reqs = [Request("generate", "q")]
    cache.save(reqs, [Completion("a")])  # not remembered: not written either
    assert _cache(path).lookup(reqs) == [None]


def test_refresh_and_off_do_not_read_readonly_does_not_write(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    reqs = _fill(path)
    assert _cache(path, "refresh").lookup(reqs) == [None] * 3
    assert _cache(path, "off").lookup(reqs) == [None] * 3
    assert all(_cache(path, "readonly").lookup(reqs))
    _fill(path, n=5, mode="readonly")
    assert _rows(path) == 3
    absent = tmp_path / "absent.sqlite"
    _fill(absent, mode="readonly")
    _fill(absent, mode="off")
    assert not absent.exists()


def test_a_changed_fingerprint_under_the_same_identity_drops_the_outputs(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    reqs = _fill(path)

    class Changed(FakeBackend):
        fingerprint = {**FakeBackend.fingerprint, "tokenizer": "sha256:other"}

    cache = _cache(path)
    with pytest.warns(LLMEvalCacheWarning, match="another fingerprint"):
        cache.remember(Changed())
    assert _rows(path) == 0 and _cache(path).fingerprint == Changed.fingerprint
    assert _cache(path).lookup(reqs) == [None] * 3


class Answered(FakeBackend):
    """The backend after its answers: they told it the served model (an HTTP backend)."""

    fingerprint = {**FakeBackend.fingerprint, "versions": {"x": "1", "served_model": "m-2024"}}


@pytest.mark.parametrize("mode", ["on", "readonly"])
def test_a_fingerprint_completed_by_answers_keeps_the_outputs(tmp_path: Path, mode: str) -> None:
    path = tmp_path / "c.sqlite"
    reqs = _fill(path)
    cache = _cache(path, mode)
    cache.remember(FakeBackend())
    cache.remember(Answered())  # no warning (pytest runs with warnings as errors), nothing dropped
    assert all(cache.lookup(reqs)) and cache.fingerprint == Answered.fingerprint
    stored = _cache(path).fingerprint
    assert stored == (Answered.fingerprint if mode == "on" else FakeBackend.fingerprint)


def test_a_fresh_backend_keeps_the_completed_fingerprint(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    reqs = _fill(path)
    _cache(path).remember(Answered())
    cache = _cache(path)
    cache.remember(FakeBackend())  # loaded again, no answer yet: what it knows is all stored
    assert all(cache.lookup(reqs)) and _cache(path).fingerprint == Answered.fingerprint


fingerprints = st.recursive(
    st.none() | st.booleans() | st.integers(0, 3) | st.sampled_from(["a", "b"]),
    lambda inner: st.dictionaries(st.sampled_from(["k", "l", "m"]), inner, max_size=3),
    max_leaves=8,
)


@given(fingerprints, fingerprints)
def test_merge_keeps_the_new_values_and_the_old_fields_the_new_lacks(a: Any, b: Any) -> None:
    assert merge(a, a) == a
    merged = merge(a, b)
    if isinstance(a, dict) and isinstance(b, dict):
        assert set(merged) == set(a) | set(b)
        assert all(merged[k] == merge(a.get(k), v) for k, v in b.items()) and all(merged[k] == a[k] for k in set(a) - set(b))
    else:
        assert merged == b


@pytest.mark.parametrize("mode", ["on", "readonly"])
def test_a_server_whose_reported_build_churns_never_loses_paid_for_outputs(tmp_path: Path, mode: str) -> None:
    """The served model's name and system_fingerprint are what the server says of itself, from one
    answer to the next (a load balancer over two builds): they are recorded, the latest kept, and
    never a reason to drop outputs (nor to stop reading them)."""
    path = tmp_path / "c.sqlite"
    reqs = _fill(path)
    cache = _cache(path, mode)
    cache.remember(FakeBackend())
    for i in range(6):

        class Reported(FakeBackend):
            fingerprint = {**FakeBackend.fingerprint, "versions": {"x": "1", "system_fingerprint": f"fp_{i % 2}"}}

        cache.remember(Reported())  # no warning (warnings are errors here), nothing dropped
        assert all(cache.lookup(reqs)) and cache.fingerprint["versions"]["system_fingerprint"] == f"fp_{i % 2}"
    assert _rows(path) == 3 and all(_cache(path).lookup(reqs))


def test_a_backend_that_learns_it_cannot_rank_keeps_its_outputs(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    reqs = _fill(path)

    class NoRank(FakeBackend):
        capabilities = frozenset({"generate"})

    cache = _cache(path)
    cache.remember(NoRank())
    assert all(cache.lookup(reqs)) and _cache(path).capabilities == frozenset({"generate"})


def test_a_corrupt_file_is_set_aside_and_a_new_one_started(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    path.write_bytes(b"this is not an SQLite database, it was truncated by a full disk" * 20)
    with pytest.warns(LLMEvalCacheWarning, match=r"is corrupt .*set aside as c\.sqlite\.corrupt-"):
        reqs = _fill(path)
    aside = list(tmp_path.glob("c.sqlite.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes().startswith(b"this is not")
    assert all(_cache(path).lookup(reqs))


def test_an_unwritable_place_is_a_warning_and_no_cache(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    cache = _cache(blocker / "c.sqlite")
    with pytest.warns(LLMEvalCacheWarning, match="cannot be created.*goes on without it"):
        cache.remember(FakeBackend())
    reqs = [Request("generate", "q")]
    cache.save(reqs, [Completion("a")])
    assert cache.lookup(reqs) == [None] and not cache.active


WRITER = textwrap.dedent(
    """
    import sys
    from pytest_llmeval.datasets.suite import Request
    from pytest_llmeval.models.cache import CacheStore, CompletionCache
    from pytest_llmeval.models.outputs import Completion
    from pytest_llmeval.settings import LLMSettings

    class B:
        fingerprint = {"model": "sha256:abc"}
        has_chat_template = False

    path, who = sys.argv[1], sys.argv[2]
    for start in range(0, 200, 10):  # many small transactions, interleaved with the other writer's
        cache = CompletionCache(CacheStore(path), {"backend": "test"}, LLMSettings(model="m"))
        cache.remember(B())
        reqs = [Request("generate", f"{who}-{i}") for i in range(start, start + 10)]
        cache.save(reqs, [Completion(r.text) for r in reqs])
        cache.store.close()
    """
)


def test_two_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    procs = [
        subprocess.Popen([sys.executable, "-W", "error::UserWarning", str(script), str(path), who], stderr=subprocess.PIPE, text=True)
        for who in ("a", "b")
    ]
    errors = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    assert _rows(path) == 400
    with sqlite3.connect(path) as conn:  # a rollback journal: the file alone holds every output
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert not path.with_name("c.sqlite-wal").exists()


def test_a_file_left_in_wal_mode_is_folded_in_and_switched_back(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    reqs = _fill(path)
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
    holder = sqlite3.connect(path)  # another process has it open: the switch waits for a later open
    holder.execute("SELECT count(*) FROM outputs").fetchone()
    cache = _cache(path)
    cache.remember(FakeBackend())
    more = [Request("generate", f"more {i}") for i in range(3)]
    cache.save(more, [Completion(r.text) for r in more])
    holder.close()
    cache.store.close()  # the last to close folds the WAL file into the database
    alone = tmp_path / "alone" / "c.sqlite"
    alone.parent.mkdir()
    shutil.copy(path, alone)
    assert all(_cache(alone).lookup(reqs + more))
    _cache(path).lookup(reqs)  # opened alone: back to a rollback journal
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


@pytest.mark.parametrize("content", ["empty", "foreign"])
def test_a_file_that_is_not_a_cache_is_never_written(tmp_path: Path, content: str) -> None:
    path = tmp_path / "app.sqlite"
    if content == "empty":
        path.write_bytes(b"")
    else:
        with closing(sqlite3.connect(path)) as conn:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("CREATE TABLE orders (id INTEGER)")
            conn.execute("INSERT INTO orders VALUES (7)")
            conn.commit()
    before = path.read_bytes()
    with pytest.warns(LLMEvalCacheWarning, match=r"cannot be used: .*app\.sqlite is (an empty file|a SQLite file of another kind \(tables: orders\)), not a completion cache"):
        cache = _cache(path)
        cache.remember(FakeBackend())
    reqs = [Request("generate", "q")]
    cache.save(reqs, [Completion("a")])
    assert cache.lookup(reqs) == [None] and not cache.active
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["app.sqlite", "app.sqlite.lock"]


def _kinds(found: list[Any]) -> list[str]:
    return [type(f).__name__ for f in found]


def test_rankings_are_stored_and_counted_by_kind(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    cache = _cache(path)
    cache.remember(FakeBackend())
    reqs = [Request("rank", "Q", choices=("a", "b")), Request("generate", "Q")]
    cache.save(reqs, [Ranked("Q", ("a", "b"), (-1.0, -2.0), (True, False)), Completion("x")])
    later = _cache(path)
    assert _kinds(later.lookup(reqs)) == ["Ranked", "Completion"]
    assert later.hits == {"rank": 1, "generate": 1}


# ----------------------------------------------------------------------------- identities


def test_the_local_model_identity_matches_what_loading_fingerprints(tiny_model_dir: Path) -> None:
    from pytest_llmeval.models import backend_identity
    from pytest_llmeval.models.hf import HFBackend

    settings = LLMSettings(model=str(tiny_model_dir), device="cpu")
    identity = backend_identity(settings)
    assert identity is not None and identity["scheme"] == "hf"
    loaded = HFBackend.load(settings)
    assert identity["weights"] == loaded.fingerprint["model"] and identity["dtype"] == loaded.fingerprint["dtype"]
    assert identity["versions"] == loaded.fingerprint["versions"]
    assert {"tokenizer.json", "tokenizer_config.json", "config.json"} <= set(identity["files"])
    assert backend_identity(settings.replace(dtype="bfloat16")) != identity
    assert backend_identity(settings.replace(model=str(tiny_model_dir) + "-absent")) is None  # a hub id: unknown unloaded
    assert backend_identity(settings.replace(model="nosuchscheme:x")) is None  # no backend, no identity


def test_a_cpu_only_torch_build_is_known_without_importing_torch() -> None:
    import torch

    from pytest_llmeval.models.hf_identity import accelerator_possible

    built_for = [getattr(torch.version, name, None) for name in ("cuda", "hip", "xpu")]
    assert accelerator_possible() == any(built_for)


def test_merged_shards_still_count_the_cached_outputs() -> None:
    """``merge`` reads records back from samples.jsonl: the cached flag travels there."""
    from pytest_llmeval.results.records import CaseRecord
    from pytest_llmeval.results.report import sample_json
    from pytest_llmeval.results.session import from_cache

    records = [
        CaseRecord(suite="s", case_id="a", outcome="pass", completion="x", cached=True),
        CaseRecord(suite="s", case_id="b", outcome="pass", completion="y"),
        CaseRecord(suite="r", case_id="c", outcome="fail", choices=("p", "q"), loglikelihoods=(-1.0, -2.0), cached=True),
    ]
    back = [CaseRecord.from_json({**sample_json(r), "case_id": r.case_id}) for r in records]
    assert "cached" not in sample_json(records[1])  # samples of uncached runs are unchanged
    assert from_cache(back) == {"completions": 1, "rankings": 1}
