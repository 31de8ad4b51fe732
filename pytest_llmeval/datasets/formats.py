"""Loaders for local copies of standard benchmark files, in their published schemas.

Nothing is downloaded: point a loader at a file you have (JSONL, a JSON array, CSV for MMLU,
Parquet when pyarrow is installed). Each returns a list of dicts, one per question, with a
stable ``id`` and the prompt and choices built exactly as lm-evaluation-harness's default
task for that benchmark builds them:

- ``prompt``: the question as the task's ``doc_to_text`` renders it;
- ``context``: the zero-shot context (``description`` + ``prompt``);
- ``choices``: the strings scored after the context (with the target delimiter ``" "``);
- ``answer``: the index of the correct choice.

Use a row with :func:`pytest_llmeval.models.loglik.rank_choices` as ``(row["context"], row["choices"])``,
or in an eval file as ``le.cases(formats.arc(path), prompt="{context}", choices="choices")``.

WinoGrande is partial scoring: the choice fills the blank, so the *context* varies per choice
and the text after the blank is what is scored. Its rows carry ``context`` (the sentence up to
the blank), ``choices`` (the two options) and ``continuation`` (the rest); score them as
``(row["context"], row["choices"], row["continuation"])``: each choice's request is
``(context + choice, " " + continuation)``.

TruthfulQA MC2 has several true answers: its rows carry ``choices`` and ``labels`` (1 true,
0 false) instead of ``answer``; its score is the normalised probability of the true answers
(:func:`pytest_llmeval.scoring.leaderboard.mc2_score`).

GSM8K is generation: rows have ``question``, ``prompt`` (``"Question: ...\\nAnswer:"``),
``target`` (the full worked solution, for few-shot examples) and ``answer`` (the final number
as written after ``####``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

from pytest_llmeval.datasets.format_rows import (
    FormatError,
    UniqueIds,
    as_text,
    as_texts,
    choice_index,
    content_id,
    need,
    read_records,
)

__all__ = ["FormatError", "arc", "gsm8k", "hellaswag", "mmlu", "truthfulqa_mc1", "truthfulqa_mc2", "winogrande"]


TRUTHFULQA_PRIMER = (
    "Q: What is human life expectancy in the United States?\n"
    "A: Human life expectancy in the United States is 78 years.\n\n"
    "Q: Who was president of the United States in 1955?\n"
    "A: Dwight D. Eisenhower was president of the United States in 1955.\n\n"
    "Q: Which party did he belong to?\n"
    "A: He belonged to the Republican Party.\n\n"
    "Q: What is the square root of banana?\n"
    "A: I have no comment.\n\n"
    "Q: How does a telescope work?\n"
    "A: Telescopes use lenses or mirrors to focus light and make objects appear closer.\n\n"
    "Q: Where were the 1992 Olympics held?\n"
    "A: The 1992 Olympics were held in Barcelona, Spain."
)
"""The fixed six-question preamble of TruthfulQA's multiple-choice prompt (from the paper)."""

MMLU_LETTERS = ("A", "B", "C", "D")


# ----------------------------------------------------------------------------- loaders


def arc(path: str | Path) -> list[dict[str, Any]]:
    """ARC (Easy or Challenge): ``id``, ``question``, ``choices: {text, label}``, ``answerKey``
    (the Hugging Face layout), or the original release's ``question: {stem, choices: [{text, label}]}``.

    lm-eval's ``arc_easy``/``arc_challenge``: ``"Question: {question}\\nAnswer:"``, the choice texts.
    """
    schema = "ARC"
    ids = UniqueIds()
    rows = []
    for loc, row in read_records(path, schema):
        question = need(row, "question", loc, schema)
        if isinstance(question, Mapping):  # the original AI2 release
            stem = as_text(need(question, "stem", loc, schema), loc, "question.stem")
            options = need(question, "choices", loc, schema)
            if not isinstance(options, list) or not all(isinstance(o, Mapping) for o in options):
                raise FormatError(f"{loc}: question.choices must be a list of {{text, label}} objects")
            texts = [as_text(need(o, "text", loc, schema), loc, "choice text") for o in options]
            labels = [as_text(need(o, "label", loc, schema), loc, "choice label") for o in options]
        else:
            stem = as_text(question, loc, "question")
            choices = need(row, "choices", loc, schema)
            if not isinstance(choices, Mapping):
                raise FormatError(f"{loc}: choices must be an object with 'text' and 'label' lists (the ARC schema)")
            texts = as_texts(need(choices, "text", loc, schema), loc, "choices.text", schema)
            labels = as_texts(need(choices, "label", loc, schema), loc, "choices.label", schema)
        if len(texts) != len(labels):
            raise FormatError(f"{loc}: {len(texts)} choice texts but {len(labels)} labels; fix the record")
        key = as_text(need(row, "answerKey", loc, schema), loc, "answerKey").strip()
        if key not in labels:
            raise FormatError(f"{loc}: answerKey {key!r} is not one of the labels {labels}; fix the record")
        prompt = f"Question: {stem}\nAnswer:"
        rid = str(row["id"]) if row.get("id") not in (None, "") else content_id("arc", stem, *texts)
        rows.append(
            {
                "id": ids(rid),
                "question": stem,
                "prompt": prompt,
                "context": prompt,
                "description": "",
                "choices": texts,
                "labels": labels,
                "answer": labels.index(key),
            }
        )
    return rows


def _hellaswag_clean(text: str) -> str:
    text = text.strip()
    text = text.replace(" [title]", ". ")
    text = re.sub("\\[.*?\\]", "", text)
    return text.replace("  ", " ")


def hellaswag(path: str | Path) -> list[dict[str, Any]]:
    """HellaSwag: ``activity_label``, ``ctx_a``, ``ctx_b``, ``endings``, ``label`` (``ind`` as id).

    lm-eval's ``hellaswag``: the context is ``activity_label: ctx_a Ctx_b`` and the choices the
    endings, both cleaned of WikiHow's bracketed markers.
    """
    schema = "HellaSwag"
    ids = UniqueIds()
    rows = []
    for loc, row in read_records(path, schema):
        label = as_text(need(row, "activity_label", loc, schema), loc, "activity_label")
        ctx_a = as_text(need(row, "ctx_a", loc, schema), loc, "ctx_a")
        ctx_b = as_text(row.get("ctx_b") or "", loc, "ctx_b")
        endings = as_texts(need(row, "endings", loc, schema), loc, "endings", schema)
        raw = row.get("label")
        if raw in (None, ""):
            raise FormatError(f"{loc}: the record has no label (the unlabelled test split?); use the validation split")
        try:
            answer = int(raw)
        except (TypeError, ValueError):
            raise FormatError(f"{loc}: label {raw!r} is not a number; fix the record") from None
        choice_index(answer, len(endings), loc, "label")
        prompt = _hellaswag_clean(label + ": " + ctx_a + " " + ctx_b.capitalize())
        if row.get("ind") not in (None, ""):
            rid = f"hellaswag-{row['ind']}"
        else:
            rid = content_id("hellaswag", label, ctx_a, ctx_b, *endings)
        rows.append(
            {
                "id": ids(rid),
                "prompt": prompt,
                "context": prompt,
                "description": "",
                "choices": [_hellaswag_clean(e) for e in endings],
                "answer": answer,
            }
        )
    return rows


def _mmlu_description(subject: str) -> str:
    if not subject:
        return ""
    return f"The following are multiple choice questions (with answers) about {' '.join(subject.split('_'))}.\n\n"


def _mmlu_subject_from_name(path: Path) -> str:
    name = path.stem
    for suffix in ("_test", "_dev", "_val", "_validation", "_train", "_auxiliary_train"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def mmlu(path: str | Path, subject: str | None = None) -> list[dict[str, Any]]:
    """MMLU: ``question``, ``subject``, ``choices`` (4), ``answer`` (index or letter), or the
    original per-subject CSV (question, A, B, C, D, answer letter; no header), whose subject
    comes from the file name (``abstract_algebra_test.csv``) unless ``subject`` is given.

    With ``subject``, rows of other subjects are left out. lm-eval's ``mmlu_<subject>``: the
    description ``"The following are multiple choice questions (with answers) about ...\\n\\n"``,
    the question with lettered options and ``"Answer:"``; the choices are the letters A-D.
    """
    schema = "MMLU"
    p = Path(path)
    ids = UniqueIds()
    rows = []
    for loc, row in read_records(p, schema, csv_ok=True):
        if isinstance(row, list):  # original CSV
            if [c.strip().lower() for c in row[:1]] == ["question"]:
                continue  # a header line
            if len(row) != 6:
                raise FormatError(
                    f"{loc}: expected 6 columns (question, A, B, C, D, answer), got {len(row)}; "
                    "is this an MMLU CSV file?"
                )
            question, options, answer_raw = row[0], row[1:5], row[5]
            row_subject = subject or _mmlu_subject_from_name(p)
        else:
            question = as_text(need(row, "question", loc, schema), loc, "question")
            options = as_texts(need(row, "choices", loc, schema), loc, "choices", schema)
            answer_raw = need(row, "answer", loc, schema)
            row_subject = str(row.get("subject") or subject or "")
            if subject and row.get("subject") and row["subject"] != subject:
                continue
        if len(options) != 4:
            raise FormatError(f"{loc}: MMLU questions have 4 choices, got {len(options)}; fix the record")
        if isinstance(answer_raw, str) and answer_raw.strip().upper() in MMLU_LETTERS:
            answer = MMLU_LETTERS.index(answer_raw.strip().upper())
        elif isinstance(answer_raw, str) and answer_raw.strip().isdecimal():
            answer = int(answer_raw)
        else:
            answer = answer_raw
        answer = choice_index(answer, 4, loc, "answer")
        prompt = (
            f"{question.strip()}\nA. {options[0]}\nB. {options[1]}\nC. {options[2]}\nD. {options[3]}\nAnswer:"
        )
        description = _mmlu_description(row_subject)
        rows.append(
            {
                "id": ids(content_id(f"mmlu-{row_subject}" if row_subject else "mmlu", question, *options)),
                "subject": row_subject,
                "question": question,
                "options": list(options),
                "prompt": prompt,
                "description": description,
                "context": description + prompt,
                "choices": list(MMLU_LETTERS),
                "answer": answer,
            }
        )
    return rows


def _truthfulqa_targets(row: Any, key: str, loc: str, schema: str) -> tuple[list[str], list[int]]:
    """The choices and 0/1 labels of ``mc1_targets`` or ``mc2_targets``: ``{choices, labels}``
    (the Hugging Face layout) or the original release's ``{answer text: label}`` object."""
    targets = need(row, key, loc, schema)
    if not isinstance(targets, Mapping):
        raise FormatError(f"{loc}: {key} must be an object; is this the multiple-choice TruthfulQA file?")
    if "choices" in targets and "labels" in targets:
        choices = as_texts(targets["choices"], loc, f"{key}.choices", schema)
        labels = targets["labels"]
    else:  # the original release: {"answer text": 1, "other": 0, ...}
        choices, labels = [str(k) for k in targets], list(targets.values())
    if not isinstance(labels, list) or len(choices) != len(labels) or not choices:
        raise FormatError(f"{loc}: {key} has {len(choices)} choices but labels {labels!r:.60}; fix the record")
    flags = [str(v).strip() for v in labels]
    if any(f not in ("0", "1") for f in flags):
        raise FormatError(f"{loc}: {key} labels must be 1 (true) or 0 (false), got {labels!r:.60}; fix the record")
    return choices, [int(f) for f in flags]


def _truthfulqa_row(question: str, choices: list[str]) -> dict[str, Any]:
    prompt = TRUTHFULQA_PRIMER + "\n\nQ: " + question + "\nA:"
    return {"question": question, "prompt": prompt, "context": prompt, "description": "", "choices": choices}


def truthfulqa_mc1(path: str | Path) -> list[dict[str, Any]]:
    """TruthfulQA multiple choice, MC1: ``question``, ``mc1_targets: {choices, labels}`` (the
    Hugging Face layout) or the original ``mc1_targets: {answer: label}`` object.

    lm-eval's ``truthfulqa_mc1``: a fixed six-question primer, then ``"\\n\\nQ: {question}\\nA:"``.
    """
    schema = "TruthfulQA"
    ids = UniqueIds()
    rows = []
    for loc, row in read_records(path, schema):
        question = as_text(need(row, "question", loc, schema), loc, "question")
        choices, labels = _truthfulqa_targets(row, "mc1_targets", loc, schema)
        if labels.count(1) != 1:
            raise FormatError(f"{loc}: mc1_targets must mark exactly one choice with label 1 and the others 0; fix the record")
        rows.append({"id": ids(content_id("truthfulqa", question)), **_truthfulqa_row(question, choices), "answer": labels.index(1)})
    return rows


def truthfulqa_mc2(path: str | Path) -> list[dict[str, Any]]:
    """TruthfulQA multiple choice, MC2: ``question``, ``mc2_targets: {choices, labels}`` (the
    Hugging Face layout) or the original ``mc2_targets: {answer: label}`` object.

    lm-eval's ``truthfulqa_mc2``: the MC1 prompt, every ``mc2_targets`` choice scored after it.
    Rows carry ``choices`` and ``labels`` (1 for each true answer, 0 for each false one, at least
    one of each); score them with ``le.assert_mc2(ranked, case["labels"])`` or ``le.mc2_score``.
    """
    schema = "TruthfulQA"
    ids = UniqueIds()
    rows = []
    for loc, row in read_records(path, schema):
        question = as_text(need(row, "question", loc, schema), loc, "question")
        choices, labels = _truthfulqa_targets(row, "mc2_targets", loc, schema)
        if 1 not in labels or 0 not in labels:
            raise FormatError(
                f"{loc}: mc2_targets must mark at least one true (1) and one false (0) answer, got {labels}; fix the record"
            )
        rows.append({"id": ids(content_id("truthfulqa", question)), **_truthfulqa_row(question, choices), "labels": labels})
    return rows


def winogrande(path: str | Path) -> list[dict[str, Any]]:
    """WinoGrande: ``sentence`` (with one ``_``), ``option1``, ``option2``, ``answer`` ("1"/"2"),
    ``qID`` as id when present.

    Partial scoring as lm-eval's ``winogrande``: each option fills the blank and the rest of the
    sentence is scored. Rows carry ``context`` (up to the blank), ``choices`` (the options) and
    ``continuation`` (after the blank, stripped); score ``(context, choices, continuation)``.
    """
    schema = "WinoGrande"
    ids = UniqueIds()
    rows = []
    for loc, row in read_records(path, schema):
        sentence = as_text(need(row, "sentence", loc, schema), loc, "sentence")
        option1 = as_text(need(row, "option1", loc, schema), loc, "option1")
        option2 = as_text(need(row, "option2", loc, schema), loc, "option2")
        if "_" not in sentence:
            raise FormatError(f"{loc}: the sentence has no '_' blank for the options to fill; fix the record")
        raw = str(row.get("answer") or "").strip()
        if raw not in ("1", "2"):
            raise FormatError(f"{loc}: answer must be \"1\" or \"2\", got {row.get('answer')!r} (the unlabelled test split?)")
        idx = sentence.index("_")
        rid = str(row["qID"]) if row.get("qID") not in (None, "") else content_id("winogrande", sentence, option1, option2)
        rows.append(
            {
                "id": ids(rid),
                "sentence": sentence,
                "context": sentence[:idx],
                "choices": [option1, option2],
                "continuation": sentence[idx + 1 :].strip(),
                "description": "",
                "answer": int(raw) - 1,
            }
        )
    return rows


def gsm8k(path: str | Path) -> list[dict[str, Any]]:
    """GSM8K: ``question`` and ``answer`` (a worked solution ending in ``#### <number>``).

    Rows: ``prompt``/``context`` ``"Question: {question}\\nAnswer:"`` (lm-eval's ``gsm8k``),
    ``target`` the full solution and ``answer`` the number after ``####``, as written.
    """
    schema = "GSM8K"
    ids = UniqueIds()
    rows = []
    for loc, row in read_records(path, schema):
        question = as_text(need(row, "question", loc, schema), loc, "question")
        solution = as_text(need(row, "answer", loc, schema), loc, "answer")
        if "####" not in solution:
            raise FormatError(f"{loc}: the answer has no '#### <number>' line; is this the GSM8K 'main' file?")
        number = solution.split("####")[-1].strip()
        if not number:
            raise FormatError(f"{loc}: nothing follows '####' in the answer; fix the record")
        prompt = f"Question: {question}\nAnswer:"
        rows.append(
            {
                "id": ids(content_id("gsm8k", question)),
                "question": question,
                "prompt": prompt,
                "context": prompt,
                "description": "",
                "target": solution,
                "answer": number,
            }
        )
    return rows


# Code benchmarks (HumanEval, MBPP) live in their own module; ``le.formats`` offers them too.
from pytest_llmeval.datasets.code_tasks import (  # noqa: E402
    HUMANEVAL_INSTRUCT_STOP,
    HUMANEVAL_STOP,
    MBPP_INSTRUCT_STOP,
    MBPP_STOP,
    humaneval,
    humaneval_instruct,
    mbpp,
    mbpp_instruct,
)

__all__ += ["HUMANEVAL_INSTRUCT_STOP", "HUMANEVAL_STOP", "MBPP_INSTRUCT_STOP", "MBPP_STOP", "humaneval", "humaneval_instruct", "mbpp", "mbpp_instruct"]
