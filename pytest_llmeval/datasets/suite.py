"""Eval cases: reading them from files or lists, their ids, and the prompt each one sends.

Nothing here imports pytest or torch: the plugin turns a :class:`CaseError` into a collection
error, and the backend turns a :class:`Request` into model calls.
"""

from __future__ import annotations

import csv
import hashlib
import json
import string
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Union

CaseSource = Union[str, Path, Sequence[Mapping[str, Any]]]
PromptTemplate = Union[str, Callable[[Mapping[str, Any]], str], None]


class CaseError(ValueError):
    """Eval data that cannot be used; the message names the file, the line and the fix."""


@dataclass(frozen=True)
class Case(Mapping[str, Any]):
    """One eval case: its fields, read like a dict (``case["answer"]``), plus where it came from."""

    id: str
    fields: Mapping[str, Any]
    source: str = "<list>"
    line: int | None = None

    def __getitem__(self, key: str) -> Any:
        try:
            return self.fields[key]
        except KeyError:
            raise KeyError(
                f"case {self.id!r} ({self.where}) has no field {key!r}; it has: {', '.join(self.fields) or 'none'}"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self.fields)

    def __len__(self) -> int:
        return len(self.fields)

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}" if self.line is not None else self.source

    def __repr__(self) -> str:
        return f"Case(id={self.id!r}, fields={dict(self.fields)!r})"


@dataclass(frozen=True)
class CaseSpec:
    """What ``le.cases(...)`` was told; one per eval suite (test function)."""

    source: CaseSource
    prompt: PromptTemplate = None
    chat: bool = False
    system: str | None = None
    choices: str | None = None
    id: str | Callable[[Mapping[str, Any]], str] = "id"
    min_pass_rate: float | None = None
    max_new_tokens: int | None = None
    stop: tuple[str, ...] | None = None
    num_fewshot: int = 0
    fewshot_source: CaseSource | None = None
    fewshot_seed: int = 1234
    target: str | Callable[[Mapping[str, Any]], str] | None = None
    target_delimiter: str | None = None
    fewshot_delimiter: str = "\n\n"
    continuation: str | None = None

    @property
    def delimiter(self) -> str:
        """What goes between the prompt and a choice: lm-eval's ``" "``, or ``""`` under a chat template."""
        if self.target_delimiter is not None:
            return self.target_delimiter
        return "" if self.chat else " "

    def __post_init__(self) -> None:
        if self.min_pass_rate is not None and not 0.0 <= self.min_pass_rate <= 1.0:
            raise CaseError(f"min_pass_rate must be between 0 and 1, got {self.min_pass_rate}")
        if self.num_fewshot < 0:
            raise CaseError(f"num_fewshot must be 0 or more, got {self.num_fewshot}")
        if self.num_fewshot and self.fewshot_source is None:
            raise CaseError("num_fewshot needs fewshot_source=: the file or list the examples are drawn from")
        if self.prompt is not None and not (isinstance(self.prompt, str) or callable(self.prompt)):
            raise CaseError("prompt must be a format string such as '{question}' or a function of the case")


@dataclass(frozen=True)
class Request:
    """What the model must compute for one case.

    ``kind`` is ``"generate"`` (a completion) or ``"rank"`` (loglikelihood of each choice).
    ``text`` is the prompt before any chat template; the backend applies the template when
    ``chat`` is set, since only it has the tokenizer.
    """

    kind: Literal["generate", "rank"]
    text: str
    chat: bool = False
    system: str | None = None
    choices: tuple[str, ...] = ()
    target_delimiter: str = " "
    max_new_tokens: int | None = None
    stop: tuple[str, ...] | None = None
    continuation: str | None = None
    """For partial scoring (WinoGrande): the text scored after each ``context + choice``."""
    fewshot: tuple[tuple[str, str], ...] = ()
    """Few-shot (question, answer) pairs sent as earlier chat turns (with ``chat``)."""


# ----------------------------------------------------------------------------- reading


def load_cases(source: CaseSource, *, base_dir: Path | None = None, id_field: Any = "id") -> list[Case]:
    """Read every case of ``source`` (a JSONL/JSON/CSV/YAML path or a list of dicts), with ids."""
    rows, where = _read_rows(source, base_dir)
    cases: list[Case] = []
    seen: dict[str, str] = {}
    for line, row in rows:
        loc = f"{where}:{line}" if line is not None else f"{where}[{len(cases)}]"
        if not isinstance(row, Mapping):
            raise CaseError(f"{loc}: a case must be an object with named fields, got {type(row).__name__}")
        case_id = _case_id(row, id_field, loc)
        if case_id in seen:
            raise CaseError(
                f"{loc}: duplicate case id {case_id!r} (first at {seen[case_id]}); "
                "case ids must be unique: rename one, or pass id='<another field>' to le.cases"
            )
        seen[case_id] = loc
        cases.append(Case(id=case_id, fields=dict(row), source=where, line=line))
    if not cases:
        raise CaseError(f"{where}: no cases found; add at least one case")
    return cases


def resolve_source_path(source: str | Path, base_dir: Path | None) -> Path:
    path = Path(source).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return path


def _read_rows(source: CaseSource, base_dir: Path | None) -> tuple[list[tuple[int | None, Any]], str]:
    if isinstance(source, (str, Path)):
        path = resolve_source_path(source, base_dir)
        where = str(source)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise CaseError(f"{where}: file not found (looked at {path}); paths are relative to the test file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise CaseError(f"{where}: cannot read the file ({exc}); check its permissions and that it is UTF-8") from None
        return _parse_text(text, path.suffix.lower(), where), where
    if isinstance(source, Mapping):
        raise CaseError("le.cases takes a file path or a list of dicts, got a single dict: wrap it in a list")
    if isinstance(source, Sequence):
        return [(None, row) for row in source], "<list>"
    try:
        rows = list(source)  # any other iterable, e.g. a generator from a benchmark loader
    except TypeError:
        raise CaseError(f"le.cases takes a file path or a list of dicts, got {type(source).__name__}") from None
    return [(None, row) for row in rows], "<list>"


def _parse_text(text: str, suffix: str, where: str) -> list[tuple[int | None, Any]]:
    if suffix == ".jsonl":
        rows: list[tuple[int | None, Any]] = []
        for number, raw in enumerate(text.splitlines(), start=1):
            if not raw.strip():
                continue
            try:
                rows.append((number, json.loads(raw)))
            except json.JSONDecodeError as exc:
                raise CaseError(
                    f"{where}:{number}: malformed JSON line ({exc.msg} at column {exc.colno}); "
                    "each line must be one JSON object: fix or remove that line"
                ) from None
        return rows
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CaseError(f"{where}:{exc.lineno}: malformed JSON ({exc.msg} at column {exc.colno}); fix the file") from None
        if isinstance(data, Mapping) and isinstance(data.get("cases"), list):
            data = data["cases"]
        if not isinstance(data, list):
            raise CaseError(f"{where}: expected a JSON list of cases (or {{\"cases\": [...]}}), got {type(data).__name__}")
        return [(None, row) for row in data]
    if suffix in {".yaml", ".yml"}:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f":{mark.line + 1}" if mark is not None else ""
            raise CaseError(f"{where}{line}: malformed YAML ({getattr(exc, 'problem', exc)}); fix the file") from None
        if isinstance(data, Mapping) and isinstance(data.get("cases"), list):
            data = data["cases"]
        if not isinstance(data, list):
            raise CaseError(f"{where}: expected a YAML list of cases (or a 'cases:' list)")
        return [(None, row) for row in data]
    if suffix in {".csv", ".tsv"}:
        reader = csv.DictReader(text.splitlines(), delimiter="\t" if suffix == ".tsv" else ",")
        rows = []
        for row in reader:
            if None in row:
                raise CaseError(
                    f"{where}:{reader.line_num}: more values than columns; quote values that contain the delimiter"
                )
            rows.append((reader.line_num, {k: _csv_value(v) for k, v in row.items()}))
        return rows
    raise CaseError(f"{where}: unknown case file type {suffix!r}; use .jsonl, .json, .csv, .tsv, .yaml or .yml")


def _csv_value(value: str | None) -> Any:
    """CSV cells are text; a cell holding a JSON list (e.g. choices) is read as that list."""
    if value is None:
        return ""
    stripped = value.strip()
    if stripped.startswith("[") and stripped.endswith("]"):
        try:
            return json.loads(stripped)
        except json.JSONDecodeError:
            return value
    return value


def _case_id(row: Mapping[str, Any], id_field: Any, loc: str) -> str:
    if callable(id_field):
        value = id_field(row)
    else:
        if id_field not in row:
            raise CaseError(
                f"{loc}: case has no {id_field!r} field; give every case a stable id "
                f"(an '{id_field}' field) or pass id='<field>' to le.cases"
            )
        value = row[id_field]
    if value is None or (isinstance(value, str) and not value.strip()) or isinstance(value, (dict, list)):
        raise CaseError(f"{loc}: case id must be a non-empty string or number, got {value!r}")
    return str(value)


# ----------------------------------------------------------------------------- prompts


def template_fields(template: str) -> list[str]:
    """The field names a ``str.format`` template uses (``{question}`` -> ``question``)."""
    names = []
    for _, name, _, _ in string.Formatter().parse(template):
        if name:
            names.append(name.split(".")[0].split("[")[0])
    return names


def render_prompt(template: PromptTemplate, case: Case) -> str | None:
    """The prompt text of ``case``; ``None`` when there is no template and no ``prompt`` field."""
    if template is None:
        value = case.fields.get("prompt")
        return None if value is None else str(value)
    if callable(template):
        text = template(case)
        if not isinstance(text, str):
            raise CaseError(f"{case.where}: the prompt function returned {type(text).__name__}, not str")
        return text
    missing = [name for name in template_fields(template) if name not in case.fields]
    if missing:
        raise CaseError(
            f"{case.where}: case {case.id!r} has no field {missing[0]!r} used by the prompt {template!r}; "
            f"it has: {', '.join(case.fields) or 'none'}. Add the field or change the prompt"
        )
    try:
        return template.format(**case.fields)
    except (IndexError, ValueError, AttributeError, KeyError) as exc:
        raise CaseError(f"{case.where}: cannot format the prompt {template!r} for case {case.id!r}: {exc}") from None


def case_choices(spec: CaseSpec, case: Case) -> tuple[str, ...]:
    if spec.choices is None:
        return ()
    if spec.choices not in case.fields:
        raise CaseError(
            f"{case.where}: case {case.id!r} has no choices field {spec.choices!r}; "
            f"it has: {', '.join(case.fields)}"
        )
    value = case.fields[spec.choices]
    if isinstance(value, str) or not isinstance(value, Sequence) or len(value) < 2:
        raise CaseError(f"{case.where}: case {case.id!r}: {spec.choices!r} must be a list of at least two choices")
    return tuple(str(v) for v in value)


def build_request(
    spec: CaseSpec,
    case: Case,
    kind: Literal["generate", "rank"],
    fewshot_prefix: str = "",
    fewshot: tuple[tuple[str, str], ...] = (),
) -> Request:
    text = render_prompt(spec.prompt, case)
    if text is None:
        raise CaseError(
            f"{case.where}: case {case.id!r} has no prompt: pass prompt='...{{field}}...' to le.cases "
            "or give each case a 'prompt' field"
        )
    choices = case_choices(spec, case) if kind == "rank" else ()
    if kind == "rank" and not choices:
        raise CaseError(
            f"{case.where}: the test uses the 'ranked' fixture but le.cases has no choices=; "
            "pass choices='<field with the list of choices>'"
        )
    continuation = None
    if kind == "rank" and spec.continuation is not None:
        if spec.continuation not in case.fields:
            raise CaseError(f"{case.where}: case {case.id!r} has no continuation field {spec.continuation!r}")
        continuation = str(case.fields[spec.continuation])
    return Request(
        kind=kind,
        text=fewshot_prefix + text,
        chat=spec.chat,
        system=spec.system,
        choices=choices,
        target_delimiter=spec.delimiter,
        max_new_tokens=spec.max_new_tokens,
        stop=spec.stop,
        continuation=continuation,
        fewshot=fewshot,
    )


# ----------------------------------------------------------------------------- fingerprints


def sha256_text(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def dataset_hash(cases: Sequence[Case]) -> str:
    """A hash of the case contents (ids and fields), independent of file formatting and order."""
    canon = sorted(json.dumps({"id": c.id, "fields": c.fields}, sort_keys=True, default=str) for c in cases)
    return sha256_text("\n".join(canon))


def prompt_hash(spec: CaseSpec) -> str:
    template = spec.prompt
    if callable(template):
        import inspect

        try:
            template_text = inspect.getsource(template)
        except (OSError, TypeError):
            template_text = getattr(template, "__qualname__", repr(template))
    else:
        template_text = template or "{prompt}"
    parts = {
        "template": template_text,
        "chat": spec.chat,
        "system": spec.system,
        "target_delimiter": spec.delimiter,
        "continuation": spec.continuation,
        "fewshot_delimiter": spec.fewshot_delimiter if spec.num_fewshot else None,
    }
    return sha256_text(json.dumps(parts, sort_keys=True))


@dataclass(frozen=True)
class SuitePlan:
    """The cases of one suite after loading, with what identifies its data and prompt."""

    spec: CaseSpec
    cases: tuple[Case, ...]
    dataset: str
    prompt: str
    limited: bool = False
    fewshot_pool: tuple[Case, ...] = field(default=())


def plan_suite(spec: CaseSpec, base_dir: Path | None, limit: int | None = None) -> SuitePlan:
    cases = load_cases(spec.source, base_dir=base_dir, id_field=spec.id)
    pool: tuple[Case, ...] = ()
    if spec.num_fewshot:
        assert spec.fewshot_source is not None
        pool = tuple(load_cases(spec.fewshot_source, base_dir=base_dir, id_field=spec.id))
        if len(pool) < spec.num_fewshot:
            raise CaseError(
                f"num_fewshot={spec.num_fewshot} but the few-shot source has only {len(pool)} cases; "
                "lower num_fewshot or add examples"
            )
    full_hash = dataset_hash(cases)
    limited = limit is not None and limit < len(cases)
    if limited:
        cases = cases[:limit]
    return SuitePlan(spec=spec, cases=tuple(cases), dataset=full_hash, prompt=prompt_hash(spec), limited=limited, fewshot_pool=pool)


def example_target(spec: CaseSpec, example: Case) -> str:
    """The answer text a few-shot example shows after its prompt."""
    if callable(spec.target):
        return str(spec.target(example))
    if isinstance(spec.target, str):
        return str(example[spec.target])
    answer = example.fields.get("answer")
    if answer is None:
        raise CaseError(
            f"{example.where}: few-shot example {example.id!r} has no 'answer' field; "
            "pass target='<field>' to le.cases to say which field holds the answer text"
        )
    choices = case_choices(spec, example) if spec.choices else ()
    if choices and isinstance(answer, int) and not isinstance(answer, bool) and 0 <= answer < len(choices):
        return choices[answer]
    return str(answer)


def fewshot_pairs_for(spec: CaseSpec, plan: SuitePlan, case: Case) -> tuple[tuple[str, str], ...]:
    """The few-shot (prompt, answer) pairs of ``case``, chosen by the case id alone."""
    from pytest_llmeval.datasets.fewshot import select_fewshot

    examples = select_fewshot(
        [dict(c.fields) | {"__case_id__": c.id} for c in plan.fewshot_pool],
        case.id,
        spec.num_fewshot,
        seed=spec.fewshot_seed,
        exclude_id=case.id,
        id_field="__case_id__",
    )
    by_id = {c.id: c for c in plan.fewshot_pool}
    pairs = []
    for ex in examples:
        example = by_id[str(ex["__case_id__"])]
        pairs.append((render_prompt(spec.prompt, example) or "", example_target(spec, example)))
    return tuple(pairs)


def fewshot_prefix_for(spec: CaseSpec, plan: SuitePlan, case: Case) -> str:
    """The few-shot examples that precede ``case``'s prompt as plain text (lm-eval's layout)."""
    return "".join(f"{q}{spec.delimiter}{a}{spec.fewshot_delimiter}" for q, a in fewshot_pairs_for(spec, plan, case))
