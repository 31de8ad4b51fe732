"""Eval cases read from files (JSONL, JSON, CSV/TSV, YAML) or lists, and the error bad case data raises.

Every file is read as UTF-8 with an optional byte-order mark, and its text reaches the parser
unchanged: line breaks inside a quoted CSV cell stay in the cell, a JSON string may hold a
raw U+2028. YAML aliases are bounded before anything is built from them, so a few hundred
bytes cannot expand to gigabytes. Nothing here imports pytest.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

from pytest_llmeval.jsonfiles import SCALAR_TYPES, json_document, jsonl_rows, read_text

__all__ = [
    "MAX_DEPTH",
    "YAML_ALIAS_LIMIT",
    "Case",
    "CaseError",
    "CaseSource",
    "check_depth",
    "load_cases",
    "load_yaml",
    "parse_rows",
    "resolve_source_path",
]

CaseSource = Union[str, Path, Sequence[Mapping[str, Any]]]

Row = tuple[int | None, Any]
"""A record and its 1-based line in the file (``None`` where a format has no line per record)."""

YAML_ALIAS_LIMIT = 10_000_000
"""How much YAML aliases may add to a case file: the nodes and characters beyond what it spells out
(10 MB of repeated text is plenty for shared choices or instructions; nested aliases reach it fast)."""


MAX_DEPTH = 100
"""How deeply the values of one case may nest (lists in lists...): deeper data is refused, since
hashing, printing and comparing it would exhaust Python's recursion limit."""


class CaseError(ValueError):
    """Eval data that cannot be used; the message names the file, the line and the fix."""


@dataclass(frozen=True)
class Case(Mapping[str, Any]):
    """One eval case: its fields, read like a dict (``case["answer"]``), plus where it came from."""

    id: str
    fields: Mapping[str, Any]
    source: str = "<list>"
    line: int | None = None
    repeat: int = 0
    """Which sample of the case an item is, when the suite samples each case several times."""
    perturbation: str | None = None
    """The perturbation that made this variant of a case (``qa-007~typos``: ``"typos"``); None
    for a case as written."""
    rotation: int | None = None
    """Which rotation of a multiple-choice case's options this item is (``permute="cyclic"``)."""
    original_id: str | None = None
    """The id of the case as written, for a variant or a rotation."""
    search: bool = False
    """The item that searches the suite's cases for their smallest breaking change (``search=``)."""

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


def load_cases(source: CaseSource, *, base_dir: Path | None = None, id_field: Any = "id") -> list[Case]:
    """Read every case of ``source`` (a JSONL/JSON/CSV/YAML path or a list of dicts), with ids."""
    rows, where = _read_rows(source, base_dir)
    cases: list[Case] = []
    seen: dict[str, str] = {}
    for line, row in rows:
        loc = f"{where}:{line}" if line is not None else f"{where}[{len(cases)}]"
        if not isinstance(row, Mapping):
            raise CaseError(f"{loc}: a case must be an object with named fields, got {type(row).__name__}")
        check_depth(row, loc)
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
        return parse_rows(read_text(path, where, CaseError), path.suffix.lower(), where), where
    if isinstance(source, Mapping):
        raise CaseError("le.cases takes a file path or a list of dicts, got a single dict: wrap it in a list")
    if isinstance(source, Sequence):
        return [(None, row) for row in source], "<list>"
    try:
        rows = list(source)  # any other iterable, e.g. a generator from a benchmark loader
    except TypeError:
        raise CaseError(f"le.cases takes a file path or a list of dicts, got {type(source).__name__}") from None
    return [(None, row) for row in rows], "<list>"


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


def check_depth(row: Any, loc: str) -> None:
    """Refuse a record whose values nest more than :data:`MAX_DEPTH` levels, or contain
    themselves; a value shared by several fields (a YAML alias) is measured once."""
    if isinstance(row, Mapping) and all(type(v) in SCALAR_TYPES for v in row.values()):
        return  # the usual case: one level of plain values, neither deep nor able to hold itself
    heights: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Any, bool]] = [(row, False)]
    while stack:
        value, finished = stack.pop()
        key, parts = id(value), _parts(value)
        if finished:
            on_path.discard(key)
            heights[key] = 1 + max((heights[id(p)] for p in parts), default=0)
            if heights[key] > MAX_DEPTH:
                raise CaseError(f"{loc}: the case nests more than {MAX_DEPTH} levels deep; flatten its fields")
            continue
        if key in heights:
            continue
        if key in on_path:
            raise CaseError(f"{loc}: the case contains itself (a list or dict inside its own value); break the cycle")
        on_path.add(key)
        stack.append((value, True))
        stack.extend((p, False) for p in parts if id(p) not in heights)


def _parts(value: Any) -> list[Any]:
    if isinstance(value, Mapping):
        return list(value.values())
    if isinstance(value, (list, tuple)):
        return list(value)
    return []


def parse_rows(text: str, suffix: str, where: str) -> list[Row]:
    """The records of a case file's ``text``; ``suffix`` (``".jsonl"``...) says its format."""
    if suffix == ".jsonl":
        return _jsonl_rows(text, where)
    if suffix == ".json":
        return _listed(json_document(text, where, CaseError), where, "a JSON list of cases (or {\"cases\": [...]})")
    if suffix in {".yaml", ".yml"}:
        return _listed(load_yaml(text, where), where, "a YAML list of cases (or a 'cases:' list)")
    if suffix in {".csv", ".tsv"}:
        return _csv_rows(text, "\t" if suffix == ".tsv" else ",", where)
    raise CaseError(f"{where}: unknown case file type {suffix!r}; use .jsonl, .json, .csv, .tsv, .yaml or .yml")


def _jsonl_rows(text: str, where: str) -> list[Row]:
    fix = "each line must be one JSON object: fix or remove that line"
    return [(number, row) for number, row in jsonl_rows(text, where, CaseError, fix)]


def _listed(data: Any, where: str, expected: str) -> list[Row]:
    if isinstance(data, dict) and isinstance(data.get("cases"), list):
        data = data["cases"]
    if not isinstance(data, list):
        raise CaseError(f"{where}: expected {expected}, got {type(data).__name__}")
    return [(None, row) for row in data]


def _csv_rows(text: str, delimiter: str, where: str) -> list[Row]:
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows: list[Row] = []
    try:
        for row in reader:
            if None in row:
                raise CaseError(
                    f"{where}:{reader.line_num}: more values than columns; quote values that contain the delimiter"
                )
            rows.append((reader.line_num, {k: _csv_value(v) for k, v in row.items()}))
    except csv.Error as exc:
        raise CaseError(f"{where}:{reader.line_num}: malformed CSV ({exc}); fix the quoting on that line") from None
    return rows


def _csv_value(value: str | None) -> Any:
    """CSV cells are text; a cell holding a JSON list (e.g. choices) is read as that list."""
    if value is None:
        return ""
    stripped = value.strip()
    if stripped.startswith("[") and stripped.endswith("]"):
        try:
            return json.loads(stripped)
        except (json.JSONDecodeError, RecursionError):
            return value
    return value


# ----------------------------------------------------------------------------- YAML


_YAML_CORE_SCHEMA = (
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", list("tTfF")),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?(?:0|[1-9][0-9]*)|0o[0-7]+|0x[0-9a-fA-F]+)$", list("-+0123456789")),
    (
        "tag:yaml.org,2002:float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*|[0-9]+(?:\.[0-9]*)?[eE][-+]?[0-9]+|\.[0-9]+[eE][-+]?[0-9]+)"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        list("-+.0123456789"),
    ),
    ("tag:yaml.org,2002:merge", r"^(?:<<)$", ["<"]),
)
"""Which plain YAML scalars are not text: YAML 1.2's core schema. PyYAML's default (YAML 1.1)
would silently turn ``no`` and ``on`` into booleans, ``012`` into 10, ``1:20`` into 80 and
``2024-01-01`` into a date; in a case file these stay text."""


@functools.lru_cache(maxsize=1)
def _yaml_loader() -> type:
    import yaml

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    loader = type("CaseYAMLLoader", (base,), {"yaml_implicit_resolvers": {}})
    for tag, pattern, first in _YAML_CORE_SCHEMA:
        loader.add_implicit_resolver(tag, re.compile(pattern), first)
    return loader


def load_yaml(text: str, where: str) -> Any:
    """``text`` read as YAML (safe: plain data only, YAML 1.2's core types), refusing a document
    whose aliases would expand it by more than :data:`YAML_ALIAS_LIMIT`, or that refers to
    itself; checked on the parsed node graph, where an alias is one shared node, before any
    value is built."""
    import yaml

    loader = _yaml_loader()(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node, where)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise CaseError(f"{where}{line}: malformed YAML ({getattr(exc, 'problem', None) or exc}); fix the file") from None
    except RecursionError:
        raise CaseError(f"{where}: the YAML is nested too deeply; flatten the cases") from None
    finally:
        loader.dispose()


def _children(node: Any) -> list[Any]:
    import yaml

    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _own_size(node: Any) -> int:
    import yaml

    return 1 + (len(node.value) if isinstance(node, yaml.ScalarNode) else 0)


def _check_expansion(root: Any, where: str) -> None:
    """Refuse ``root`` when aliases make its expanded size exceed what the file spells out by
    more than the limit, or when a node contains an alias to itself (a cycle)."""
    expanded: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            on_path.discard(key)
            expanded[key] = _own_size(node) + sum(expanded[id(c)] for c in _children(node))
            continue
        if key in expanded:
            continue
        on_path.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in on_path:
                line = child.start_mark.line + 1
                raise CaseError(
                    f"{where}:{line}: a YAML alias refers to a value that contains it, so the cases never end; "
                    "write the values out instead of the alias"
                )
            if id(child) not in expanded:
                stack.append((child, False))
    spelled_out = sum(_own_size(n) for n in _unique_nodes(root))
    extra = expanded[id(root)] - spelled_out
    if extra > YAML_ALIAS_LIMIT:
        raise CaseError(
            f"{where}: YAML aliases (*name) expand this file by {extra:,} nodes and characters, more than the "
            f"{YAML_ALIAS_LIMIT:,} allowed (nested aliases grow exponentially); write the repeated values out "
            "or alias fewer of them"
        )


def _unique_nodes(root: Any) -> Iterator[Any]:
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        yield node
        stack.extend(_children(node))
