from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_llmeval.datasets.heldout import (
    ContaminationIndex,
    OverlapFinder,
    case_answer,
    find_overlaps,
    iter_training_texts,
    TrainingText,
    load_training_texts,
    normalize,
    tokens,
)

WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=8)
PUNCT = st.sampled_from(list("+-=?!.,:;()"))
TOKEN = st.one_of(WORD, PUNCT)


def _spaced(toks: list[str], seps: list[str]) -> str:
    out = []
    for i, t in enumerate(toks):
        out.append(t)
        out.append(seps[i % len(seps)])
    return "".join(out)


# --------------------------------------------------------------------------- normalisation


@given(st.text(max_size=200))
def test_normalize_is_idempotent(text: str) -> None:
    assert normalize(normalize(text)) == normalize(text)


@given(st.lists(TOKEN, min_size=1, max_size=30), st.lists(st.sampled_from([" ", "  ", "\t", "\n", " \n "]), min_size=1))
def test_normalize_ignores_case_and_spacing(toks: list[str], seps: list[str]) -> None:
    plain = " ".join(toks)
    # words must stay separated; punctuation may be glued to its neighbours or not
    variant = _spaced([t.upper() for t in toks], seps)
    assert normalize(variant) == normalize(plain)


def test_tokens_split_punctuation_and_fold_case() -> None:
    assert tokens("12+34=46") == ["12", "+", "34", "=", "46"]
    assert normalize("What is  THE capital?") == "what is the capital ?"
    assert normalize("ﬁne") == "fine"  # NFKC ligature


# --------------------------------------------------------------------------- exact


def test_prompt_followed_by_answer_matches_exactly() -> None:
    index = ContaminationIndex(["12+34=46", "5+5=10"])
    finding = index.check("12 + 34 =", 46)
    assert finding is not None
    assert (finding.kind, finding.field, finding.fraction) == ("exact", "prompt+answer", 1.0)
    assert finding.source == "training text #1"
    assert "verbatim" in finding.describe()


def test_held_out_case_is_not_flagged() -> None:
    index = ContaminationIndex(["12+34=46", "5+5=10"])
    assert index.check("12+35=", "47") is None
    assert index.check("34+12=", "46") is None


def test_short_answer_alone_is_not_contamination() -> None:
    index = ContaminationIndex(["46", "the answer is 46"])
    assert index.check("What is 12 plus 34?", "46") is None


def test_list_of_answers_each_tried() -> None:
    index = ContaminationIndex(["Capital of France? Paris"])
    finding = index.check("Capital of France?", ["paris city", "Paris"])
    assert finding is not None and finding.field == "prompt+answer"


@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(TOKEN, min_size=1, max_size=20), min_size=1, max_size=10), st.data())
def test_any_training_text_is_found_whatever_its_spacing(texts: list[list[str]], data: st.DataObject) -> None:
    index = ContaminationIndex([" ".join(t) for t in texts], n=5)
    which = data.draw(st.integers(0, len(texts) - 1))
    toks = texts[which]
    cut = data.draw(st.integers(1, len(toks)))
    prompt = _spaced([t.upper() for t in toks[:cut]], ["  "])
    answer = " ".join(toks[cut:]) or None
    finding = index.check(prompt, answer)
    assert finding is not None and finding.kind == "exact"


# --------------------------------------------------------------------------- n-grams


@settings(max_examples=50, deadline=None)
@given(
    st.lists(WORD, min_size=20, max_size=60),
    st.integers(0, 40),
    st.integers(4, 10),
)
def test_a_long_shared_run_is_found(train_words: list[str], start: int, n: int) -> None:
    start = min(start, len(train_words) - n)
    run = train_words[start : start + n]
    index = ContaminationIndex(["zz " + " ".join(train_words)], n=n)
    # the eval prompt embeds the run among words that never occur in training
    prompt = "QQQ1 QQQ2 " + " ".join(run) + " QQQ3"
    finding = index.check(prompt)
    assert finding is not None
    assert finding.kind == "ngram" and finding.field == "prompt"
    assert finding.overlap == " ".join(run)
    assert 0 < finding.fraction < 1


@settings(max_examples=50, deadline=None)
@given(st.lists(WORD, min_size=13, max_size=40), st.lists(WORD, min_size=13, max_size=40))
def test_disjoint_vocabularies_never_match(train: list[str], case: list[str]) -> None:
    index = ContaminationIndex([" ".join("t" + w for w in train)])
    assert index.check(" ".join("e" + w for w in case), "e1") is None


def test_run_shorter_than_n_is_not_flagged() -> None:
    words = [f"w{i}" for i in range(30)]
    index = ContaminationIndex([" ".join(words)], n=13)
    assert index.check("x " + " ".join(words[:12]) + " y") is None
    assert index.check("x " + " ".join(words[:13]) + " y") is not None


def test_ngram_does_not_span_two_training_texts() -> None:
    a = " ".join(f"a{i}" for i in range(10))
    b = " ".join(f"b{i}" for i in range(10))
    index = ContaminationIndex([a, b], n=13)
    assert index.check(a + " " + b + " tail") is None


def test_answer_ngram_found_and_source_is_file_line(tmp_path: Path) -> None:
    long_answer = " ".join(f"step{i}" for i in range(20))
    data = tmp_path / "train.jsonl"
    data.write_text(
        json.dumps({"text": "unrelated"}) + "\n" + json.dumps({"text": "intro " + long_answer}) + "\n",
        encoding="utf-8",
    )
    index = ContaminationIndex(load_training_texts(data))
    finding = index.check("Explain the proof.", long_answer)
    assert finding is not None and finding.kind == "ngram"
    assert finding.source == f"{data}:2"
    assert "13-token run" in finding.describe()


def test_n_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ContaminationIndex(["x"], n=0)


# --------------------------------------------------------------------------- loading


def test_load_jsonl_fields(tmp_path: Path) -> None:
    data = tmp_path / "train.jsonl"
    lines = [
        {"prompt": "1+1=", "completion": "2"},
        {"question": "Capital of Peru?", "answer": "Lima"},
        {"text": "free text"},
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]},
        "a bare string",
    ]
    data.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n", encoding="utf-8")
    texts = load_training_texts(data)
    whole = {t.text for t in texts if not t.exact_only}
    assert whole == {"1+1= 2", "Capital of Peru? Lima", "free text", "hi hello", "a bare string"}
    assert {t.text for t in texts if t.exact_only} == {"1+1=", "Capital of Peru?", "hi", "hello"}
    assert [t.line for t in texts if t.text == "free text"] == [3]
    index = ContaminationIndex(texts)
    assert index.check("1+1=") is not None  # the prompt alone was trained on
    assert index.check("Capital of Peru?", "Lima").field == "prompt+answer"


def test_load_text_lines_and_directory(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("first line\n\n  \nsecond line\n", encoding="utf-8")
    (tmp_path / "b.jsonl").write_text('{"text": "third"}\n', encoding="utf-8")
    (tmp_path / "ignored.bin").write_bytes(b"\x00\x01")
    texts = load_training_texts(tmp_path)
    assert [(t.text, t.line) for t in texts] == [("first line", 1), ("second line", 4), ("third", 1)]


def test_load_json_list(tmp_path: Path) -> None:
    data = tmp_path / "train.json"
    data.write_text(json.dumps([{"text": "x y"}, {"prompt": "p", "output": "o"}]), encoding="utf-8")
    assert {t.text for t in load_training_texts(data)} == {"x y", "p o", "p"}


def test_malformed_jsonl_names_file_and_line(tmp_path: Path) -> None:
    data = tmp_path / "train.jsonl"
    data.write_text('{"text": "ok"}\n{"text": "broken"\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"train\.jsonl:2: not valid JSON"):
        load_training_texts(data)


def test_record_without_text_names_fields(tmp_path: Path) -> None:
    data = tmp_path / "train.jsonl"
    data.write_text('{"q": "x", "a": "y"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"train\.jsonl:1: no text field .*keys: q, a.*prompt"):
        load_training_texts(data)


def test_record_of_wrong_type(tmp_path: Path) -> None:
    data = tmp_path / "train.jsonl"
    data.write_text("[1, 2]\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"train\.jsonl:1: expected a JSON object or string, got list"):
        load_training_texts(data)


def test_missing_path_and_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="--llmeval-train-data"):
        load_training_texts(tmp_path / "nope.jsonl")
    with pytest.raises(ValueError, match="no training data files"):
        load_training_texts(tmp_path)


def test_not_utf8(tmp_path: Path) -> None:
    data = tmp_path / "train.txt"
    data.write_bytes(b"caf\xe9\n")
    with pytest.raises(ValueError, match="not UTF-8"):
        load_training_texts(data)


def test_from_paths_and_training_text_source() -> None:
    t = TrainingText("a b c", "f.txt", 3)
    assert t.source == "f.txt:3"
    index = ContaminationIndex([t])
    assert len(index) == 1
    assert index.check("A  B C").source == "f.txt:3"


def test_case_answer_and_message() -> None:
    assert case_answer({"question": "q", "answer": 4}) == "4"
    assert case_answer({"q": "x", "expected": "Paris"}) == "Paris"
    assert case_answer({"q": "x", "gold": "B"}, target="gold") == "B"
    assert case_answer({"choices": ["red", "blue"], "answer": 1}, choices="choices") == "blue"
    assert case_answer({"choices": ["red", "blue"], "answer": 7}, choices="choices") == "7"
    assert case_answer({"q": "x", "answers": ["Paris", "paris, France"]}) == ["Paris", "paris, France"]
    assert case_answer({"question": "no answer here"}) is None
    finding = ContaminationIndex(["1+1=2"]).check("1+1=", case_answer({"answer": 2}))
    assert finding is not None
    text = finding.message("evals/test_math.py::test_add", "add-001")
    assert text.startswith("case add-001 of evals/test_math.py::test_add was seen in training: ")
    assert text.endswith("hold it out of the training data")


def test_training_data_with_a_byte_order_mark_and_a_line_separator_is_read_as_written(tmp_path) -> None:
    from pytest_llmeval.datasets.heldout import load_training_texts

    data = tmp_path / "train.jsonl"
    data.write_text('{"text": "first\\u2028still the first"}\n{"text": "second"}\n', encoding="utf-8-sig")
    texts = load_training_texts(data)
    assert [t.text for t in texts] == ["first\u2028still the first", "second"]
    assert [t.line for t in texts] == [1, 2]


# --------------------------------------------------------------------------- streaming


SMALL_WORD = st.sampled_from(["a", "b", "c", "d", "e", "?", "1", "2"])  # few words: many shared runs


@settings(max_examples=200, deadline=None)
@given(
    texts=st.lists(st.tuples(st.lists(SMALL_WORD, max_size=12), st.booleans()), max_size=12),
    cases=st.lists(st.tuples(st.lists(SMALL_WORD, max_size=10), st.one_of(st.none(), st.lists(SMALL_WORD, max_size=4).map(" ".join), st.lists(st.lists(SMALL_WORD, max_size=3).map(" ".join), max_size=3))), max_size=6),
    n=st.integers(1, 5),
)
def test_the_streaming_check_finds_what_the_in_memory_index_finds(texts, cases, n) -> None:
    """The plugin streams training data past the cases; its findings are the index's, text for text."""
    training = [TrainingText(" ".join(words), "train.txt", i + 1, exact_only) for i, (words, exact_only) in enumerate(texts)]
    index = ContaminationIndex(training, n=n)
    finder = OverlapFinder({i: (" ".join(words), answer) for i, (words, answer) in enumerate(cases)}, n=n)
    for item in training:
        finder.feed(item)
    found = finder.findings()
    for i, (words, answer) in enumerate(cases):
        assert found.get(i) == index.check(" ".join(words), answer), i


def test_training_data_is_read_a_line_at_a_time(tmp_path: Path) -> None:
    import tracemalloc

    path = tmp_path / "train.jsonl"
    line = json.dumps({"prompt": "how much is twelve and thirty four", "completion": "forty six " * 8}) + "\n"
    path.write_text(line * 40_000)  # about 5 MB
    texts = iter_training_texts(path)
    tracemalloc.start()
    count = sum(1 for _ in texts)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert count == 80_000  # prompt + completion, and the prompt alone, per record
    assert peak < 1_000_000, f"{peak} bytes held while reading a {path.stat().st_size}-byte file"
    assert find_overlaps({"a": ("How much is twelve and thirty four?", None)}, path) == {}


def test_a_line_without_end_is_one_error_naming_it(tmp_path: Path) -> None:
    from pytest_llmeval.jsonfiles import file_lines

    path = tmp_path / "blob.txt"
    path.write_bytes(b"ok\n" + b"x" * 5000)
    with pytest.raises(ValueError, match=r"blob.txt:2: a line longer than"):
        list(file_lines(path, str(path), max_bytes=4096))
