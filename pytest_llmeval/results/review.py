"""People in the loop of model-graded scoring: ``review export`` / ``review import`` / ``calibrate``.

- ``python -m pytest_llmeval review export RESULTS_DIR labels.csv`` writes every judged case of
  a run (``RESULTS_DIR/samples.jsonl``) as a CSV row for people to label: suite, id, prompt,
  completion, reference, the judge's label and its probability, and an empty ``human_label``.
- ``python -m pytest_llmeval review import RESULTS_DIR labels.csv`` reads the labels back: it
  checks every label is one the judge could give and every case is in the run, says how many are
  labelled, and with ``--write FILE`` keeps the labelled rows (suite, id, human_label): the
  ``labels_file=`` of a rubric.
- ``python -m pytest_llmeval calibrate RESULTS_DIR labels.csv`` prints the judge's agreement with
  the people (:mod:`pytest_llmeval.results.agreement`): accuracy, Cohen's kappa with its 95%
  interval, the confusion matrix and the cases they disagree on.

A rubric with ``min_kappa=`` and ``labels_file=`` is checked at the end of every run:
:func:`calibration_messages` fails the gate when this run's judge agrees with the labels less.
"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from pytest_llmeval.results.agreement import Agreement, agreement
from pytest_llmeval.results.messages import Message, blocking, plural
from pytest_llmeval.results.samplefile import SamplesError, read_samples

EXPORT_COLUMNS = ("suite", "id", "prompt", "completion", "reference", "judge_label", "judge_probability", "human_label")
HUMAN = "human_label"


class ReviewError(ValueError):
    """A results folder or labels file that cannot be used; the message says how to fix it."""


# ---------------------------------------------------------------- reading


def judged_samples(results_dir: Path) -> list[dict[str, Any]]:
    """The judged cases of a run: its ``samples.jsonl`` lines that have a judgement."""
    path = Path(results_dir) / "samples.jsonl"
    if not path.is_file():
        raise ReviewError(f"{path} does not exist; run the suite with --llmeval-output={results_dir} first")
    try:
        rows = read_samples(path)
    except SamplesError as exc:
        raise ReviewError(str(exc)) from None
    return [row for row in rows if isinstance(row.get("judgement"), dict)]


def read_labels(path: Path) -> dict[tuple[str, str], str]:
    """People's labels: (suite, case id) -> label; a row without a suite has suite ``""``
    (it matches the case id in any suite). Rows with an empty ``human_label`` are left out.

    Read as spreadsheets save CSV: with or without a byte-order mark, ``\\r\\n`` or ``\\n``,
    ``,``, ``;`` or tab between cells, empty rows anywhere; cells :func:`export` protected
    from formulas (:func:`protect_cell`) read back as they were. A file whose header has no
    ``id`` and ``human_label`` column, or that labels one case twice differently, is refused:
    :class:`ReviewError` names the file, the line and the fix."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            text = fh.read()
    except OSError as exc:
        raise ReviewError(f"cannot read the labels file {path}: {exc.strerror or exc}; check the path") from None
    except UnicodeDecodeError as exc:
        raise ReviewError(f"{path} is not a UTF-8 CSV file ({exc.reason} at byte {exc.start}); save it as CSV UTF-8, or export it again with 'review export'") from None
    delimiter = _delimiter(text, path)
    try:
        rows = [(n, [unprotect_cell(c) for c in row]) for n, row in enumerate(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), 1)]
    except csv.Error as exc:
        raise ReviewError(f"{path} is not a CSV file ({exc}); export it again with 'review export'") from None
    rows = [(n, row) for n, row in rows if any(cell.strip() for cell in row)]
    if not rows:
        return {}
    header = [cell.strip() for cell in rows[0][1]]
    labels: dict[tuple[str, str], tuple[str, int]] = {}
    for number, row in rows[1:]:
        cells = dict(zip(header, row))
        case_id, human = cells.get("id") or "", (cells.get(HUMAN) or "").strip()  # ids and suites exactly as exported
        if not human:
            continue
        key = (cells.get("suite") or "", case_id)
        if not case_id:
            raise ReviewError(f"{path}:{number}: a {HUMAN} without an id; fill in the case's id or clear the label")
        if key in labels and labels[key][0] != human:
            raise ReviewError(f"{path}:{number}: {key[0] or '*'}::{case_id} is labelled {human!r} here and {labels[key][0]!r} on line {labels[key][1]}; keep one")
        labels.setdefault(key, (human, number))
    return {key: value for key, (value, _) in labels.items()}


def _delimiter(text: str, path: Path) -> str:
    """The delimiter whose header has our columns (``id`` and ``human_label``): ``,``, ``;``
    (spreadsheets where a comma is the decimal point) or a tab; none is a :class:`ReviewError`."""
    first = next((line for line in io.StringIO(text, newline="") if line.strip()), "").rstrip("\r\n")
    for delimiter in (",", ";", "\t"):
        header = [unprotect_cell(c).strip() for c in next(csv.reader([first], delimiter=delimiter), [])]
        if {"id", HUMAN} <= set(header):
            twice = [c for c in dict.fromkeys(header) if c and header.count(c) > 1]
            if twice:
                raise ReviewError(f"{path}:1: the column {twice[0]!r} appears twice; keep one")
            return delimiter
    shown = first[:120] or "an empty first line"
    raise ReviewError(f"{path}:1: not a labels file (its header is {shown!r}); it needs the columns 'id' and '{HUMAN}': export one with 'review export'")


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "'")
"""A cell starting with one of these is protected with a leading ``'`` (spreadsheets run the
first four and OWASP's tab and carriage return as formulas; the ``'`` itself so that reading
back is exact)."""


def protect_cell(value: Any) -> Any:
    """A CSV cell that no spreadsheet runs as a formula: text starting with ``=``, ``+``, ``-``,
    ``@``, a tab or a carriage return (or ``'``) gets a leading ``'``; :func:`unprotect_cell`
    undoes it exactly."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value


def unprotect_cell(cell: str) -> str:
    """A cell :func:`protect_cell` wrote, as it was before."""
    return cell[1:] if cell[:1] == "'" and cell[1:2] and cell[1] in FORMULA_STARTS else cell


def label_pairs(samples: Iterable[Mapping[str, Any]], labels: Mapping[tuple[str, str], str]) -> list[tuple[str, str, str, str]]:
    """(suite, id, people's label, judge's label) of every judged case people labelled."""
    out = []
    for sample in samples:
        suite, case_id = str(sample.get("suite")), str(sample.get("id"))
        human = labels.get((suite, case_id), labels.get(("", case_id)))
        if human is not None:
            out.append((suite, case_id, human, str(sample["judgement"]["label"])))
    return out


def judge_labels(samples: Iterable[Mapping[str, Any]]) -> list[str]:
    """Every label the judge could give, in the rubric's order."""
    seen: dict[str, None] = {}
    for sample in samples:
        judgement = sample["judgement"]
        seen.update(dict.fromkeys(str(x) for x in judgement.get("labels") or ()))
        seen.update(dict.fromkeys(judgement.get("probabilities") or {}))
        seen[str(judgement.get("label"))] = None
        if set(seen) >= {"WIN", "LOSE"}:
            seen["TIE"] = None
    return list(seen)


# ---------------------------------------------------------------- the gate


def calibration_messages(records: Sequence[Any]) -> list[Message]:
    """For each suite whose rubric has ``min_kappa``: a blocking line when this run's judge
    agrees with the suite's labels file less (or the file cannot be read)."""
    by_suite: dict[str, list[Any]] = {}
    for record in records:
        judgement = getattr(record, "judgement", None)
        if isinstance(judgement, Mapping) and judgement.get("min_kappa") is not None and judgement.get("labels_file"):
            by_suite.setdefault(record.suite, []).append(record)
    out: list[Message] = []
    for suite, rows in sorted(by_suite.items()):
        out += _suite_calibration(suite, rows)
    return out


def _suite_calibration(suite: str, rows: Sequence[Any]) -> list[Message]:
    minimum, path = float(rows[0].judgement["min_kappa"]), Path(rows[0].judgement["labels_file"])
    hint = f"see where they disagree: python -m pytest_llmeval calibrate RESULTS_DIR {path.name}; then improve the rubric or the judge model"
    try:
        labels = read_labels(path)
    except ReviewError as exc:
        return [Message("error", f"{suite}: the judge could not be checked against people: {exc}"), blocking(f"{suite}: judge not calibrated")]
    if not labels:
        return [
            Message("error", f"{suite}: {path.name} has no labelled row, so the judge was not checked against people (min_kappa {minimum:g})",
                    "label some cases in it, or drop min_kappa="),
            blocking(f"{suite}: judge not calibrated"),
        ]  # fmt: skip
    samples = [{"suite": r.suite, "id": r.case_id, "judgement": r.judgement} for r in rows]
    found = agreement(label_pairs(samples, labels), judge_labels(samples))
    if not found.n:
        return [Message("warning", f"{suite}: none of the cases in {path.name} ran, so the judge was not checked against people (min_kappa {minimum:g})",
                        "run the labelled cases too")]  # fmt: skip
    kappa, interval = found.kappa, found.kappa_interval
    shown = "undefined" if kappa is None else f"{kappa:.2f}" + (f" (95% CI {interval[0]:.2f} to {interval[1]:.2f})" if interval else "")
    what = f"{suite}: the judge agrees with people at kappa {shown} on {plural(found.n, 'labelled case')} ({path.name})"
    if kappa is None or kappa < minimum:
        return [Message("error", f"{what}, below min_kappa {minimum:g}", hint), blocking(f"{suite}: judge agrees with people below min_kappa {minimum:g}")]
    return [Message("info", f"{what}, at least min_kappa {minimum:g}")]


# ---------------------------------------------------------------- commands


def export(results_dir: Path, out: Path, *, force: bool = False) -> int:
    samples = judged_samples(results_dir)
    if not samples:
        raise ReviewError(f"{results_dir}/samples.jsonl has no judged case; run a suite with le.cases(..., judge=le.Rubric(...))")
    if out.exists() and not force:
        raise ReviewError(f"{out} exists and may hold people's labels; choose another file, or pass --force to overwrite it")
    rows = [
        {
            "suite": s.get("suite"), "id": s.get("id"), "prompt": s.get("prompt"), "completion": s.get("completion"),
            "reference": s["judgement"].get("reference"), "judge_label": s["judgement"].get("label"),
            "judge_probability": f"{float(s['judgement'].get('probabilities', {}).get(s['judgement'].get('label'), 0.0)):.3f}",
            HUMAN: "",
        }
        for s in sorted(samples, key=lambda s: (str(s.get("suite")), str(s.get("id"))))
    ]  # fmt: skip
    _write_csv(out, EXPORT_COLUMNS, rows)
    print(f"wrote {plural(len(rows), 'judged case')} to {out}; fill in the {HUMAN} column ({', '.join(judge_labels(samples))})")
    return 0


def import_labels(results_dir: Path, labels_path: Path, *, write: Path | None = None) -> int:
    samples = judged_samples(results_dir)
    labels = read_labels(labels_path)
    known = set(judge_labels(samples))
    ids = {(str(s.get("suite")), str(s.get("id"))) for s in samples}
    bad = sorted(f"{s or '*'}::{c}: {label!r}" for (s, c), label in labels.items() if label not in known)
    missing = sorted(f"{s or '*'}::{c}" for s, c in labels if (s, c) not in ids and not (s == "" and any(c == i for _, i in ids)))
    print(f"{plural(len(labels), 'labelled case')} in {labels_path}, {len(label_pairs(samples, labels))} of them in {results_dir}")
    for line in missing[:10]:
        print(f"  not in the run: {line}")
    if bad:
        for line in bad[:20]:
            print(f"  not a label the judge gives ({', '.join(sorted(known))}): {line}", file=sys.stderr)
        return 1
    if write is not None:
        rows = _with_suites(labels, ids, labels_path)
        _write_csv(write, ("suite", "id", HUMAN), [{"suite": s, "id": c, HUMAN: label} for (s, c), label in sorted(rows.items())])
        print(f"wrote the labels to {write} (use it as labels_file= of the rubric)")
    return 0


def _with_suites(labels: Mapping[tuple[str, str], str], ids: set[tuple[str, str]], path: Path) -> dict[tuple[str, str], str]:
    """``labels`` with the suite of every row that had none, from the run's judged cases: a case
    id in no suite of the run, or in several, is a :class:`ReviewError` (a written row always
    names its suite)."""
    out: dict[tuple[str, str], str] = {}
    for (suite, case_id), label in labels.items():
        if not suite:
            found = sorted(s for s, c in ids if c == case_id)
            if len(found) != 1:
                where = f"is judged in {len(found)} suites ({', '.join(found[:3])})" if found else "is not a judged case of the run"
                raise ReviewError(f"{path}: the row of id {case_id!r} has no suite and {where}; fill in its suite column")
            suite = found[0]
        if out.get((suite, case_id), label) != label:
            raise ReviewError(f"{path}: {suite}::{case_id} is labelled both {label!r} and {out[(suite, case_id)]!r}; keep one")
        out[(suite, case_id)] = label
    return out


def calibrate(results_dir: Path, labels_path: Path, *, min_kappa: float | None = None) -> int:
    samples = judged_samples(results_dir)
    found: Agreement = agreement(label_pairs(samples, read_labels(labels_path)), judge_labels(samples))
    for line in found.lines():
        print(line)
    if not found.n:
        print(f"no case of {labels_path} is judged in {results_dir}: check the suite and id columns", file=sys.stderr)
        return 1
    if min_kappa is not None and (found.kappa is None or found.kappa < min_kappa):
        print(f"kappa is below {min_kappa:g}", file=sys.stderr)
        return 1
    return 0


def _write_csv(path: Path, columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> None:
    """CSV for people and spreadsheets: every cell protected from formulas (:func:`protect_cell`);
    a lone surrogate in a text (which UTF-8 cannot hold) is written as its ``\\udXXX`` escape."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8", errors="backslashreplace") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(columns))
        writer.writeheader()
        writer.writerows({k: protect_cell(v) for k, v in row.items()} for row in rows)
