"""``python -m pytest_llmeval merge OUT_DIR SHARD_DIR...``: shards' results, one gate.

Each shard (``pytest --llmeval-shard=I/N --llmeval-output=DIR``) wrote a ``results.json`` and a
``samples.jsonl``. Merging reads their case records back, refuses shards that cannot belong to
one run (a suite with different fingerprints, a case in two shards, a shard missing or given
twice: one line each), and runs the same session as a single run over the union: the same
table, the same ``--baseline`` verdicts, ``results.json`` and ``samples.jsonl`` in ``OUT_DIR``,
and the same exit status (0 passed, 1 the gate failed, 3 the shards cannot be merged; the command
line is :mod:`pytest_llmeval.cli.merge`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from pytest_llmeval.results.gate import GateOptions, RunStatus
from pytest_llmeval.results.fingerprint import Fingerprint
from pytest_llmeval.results.records import CaseRecord
from pytest_llmeval.results.report import GateReport

__all__ = ["MergeError", "Shard", "merge", "merged_records", "output_problems", "read_shards", "shard_problems"]

# fingerprint fields every shard must share, whatever suites it ran: the same model and software
_RUN_WIDE = ("model", "tokenizer", "chat_template", "dtype", "versions")


class MergeError(Exception):
    """Shards that cannot be merged; the message names the shard and the fix."""


@dataclass(frozen=True)
class Shard:
    """One shard's output folder: its results.json and its samples.jsonl lines."""

    path: Path
    results: Mapping[str, Any]
    samples: Sequence[Mapping[str, Any]]

    @property
    def spec(self) -> tuple[int, int] | None:
        """``(I, N)`` when the shard was run with ``--llmeval-shard=I/N``."""
        value = (self.results.get("run") or {}).get("shard")
        return (int(value[0]), int(value[1])) if isinstance(value, list) and len(value) == 2 else None

    def fingerprint(self, suite: str) -> Fingerprint:
        return Fingerprint.from_json((self.results["suites"].get(suite) or {}).get("fingerprint"))

    def cases(self) -> set[tuple[str, str]]:
        return {(str(s.get("suite")), str(s.get("id"))) for s in self.samples}


def read_shards(paths: Sequence[Path]) -> list[Shard]:
    """Each folder's results; raises :class:`MergeError` for one that is unreadable or has no samples."""
    from pytest_llmeval.results.html import ReportError, load_run_dir

    shards = []
    for path in paths:
        try:
            results, samples = load_run_dir(Path(path))
        except ReportError as exc:
            raise MergeError(str(exc)) from None
        counted = sum(len((s or {}).get("cases") or {}) for s in results["suites"].values())
        if counted and not samples:
            raise MergeError(f"{path}: has no samples.jsonl, so its cases cannot be merged; pass the folder written by --llmeval-output")
        shards.append(Shard(Path(path), results, samples))
    return shards


def output_problems(out_dir: Path, files: Sequence[Path], shard_dirs: Sequence[Path]) -> list[str]:
    """Why writing the merged run would touch an input, one line each (nothing when it would
    not): ``out_dir`` the same folder as a shard's, inside one or holding one (also through a
    symbolic link or ``..``), or an output file (``--html``, ``--markdown``) that is a shard's
    file. The shards are never written."""
    out = []
    target = _real(out_dir)
    for shard in shard_dirs:
        folder = _real(shard)
        if target == folder or _inside(target, folder) or _inside(folder, target):
            how = "is" if target == folder else "is inside" if _inside(target, folder) else "holds"
            out.append(f"OUT_DIR {out_dir} {how} the shard folder {shard}, so merging would write over an input; write the merged run to a folder of its own")
    inputs = {_real(Path(d) / name): Path(d) / name for d in shard_dirs for name in ("results.json", "samples.jsonl")}
    for path in files:
        if _real(path) in inputs:
            out.append(f"{path} is {inputs[_real(path)]}, an input of the merge; write it somewhere else")
    return out


def _real(path: Path) -> Path:
    return Path(os.path.realpath(Path(path).expanduser()))


def _inside(path: Path, folder: Path) -> bool:
    return folder in path.parents


def shard_problems(shards: Sequence[Shard], given: Sequence[str] = ()) -> list[str]:
    """Why these shards are not parts of one run, one line each (nothing when they are);
    ``given``: the gate settings the merge command sets itself (``tolerance``...)."""
    return [*_spec_problems(shards), *_fingerprint_problems(shards), *_setting_problems(shards, given), *_overlap_problems(shards)]


_SETTINGS = {"strict": "--llmeval-strict", "tolerance": "--llmeval-tolerance", "alpha": "--llmeval-alpha", "confidence": "the confidence level"}
"""Run-wide settings of results.json that the merged gate uses, and the option that sets each."""


def _setting_problems(shards: Sequence[Shard], given: Sequence[str] = ()) -> list[str]:
    """One line per run-wide setting the shards ran with differently: the gate's settings (unless
    given to merge), ``--llmeval-limit``, and each suite's samples per case and minimum pass rate."""
    seen: dict[str, dict[Any, Path]] = {}

    def note(what: str, value: Any, shard: Path) -> None:
        seen.setdefault(what, {}).setdefault(json.dumps(value, sort_keys=True, default=str), shard)

    for shard in shards:
        settings = shard.results.get("settings") or {}
        for key, option in _SETTINGS.items():
            if key not in given and key in settings:
                note(option, settings[key], shard.path)
        note("--llmeval-limit", (shard.results.get("run") or {}).get("limit"), shard.path)
        for suite, data in shard.results["suites"].items():
            note(f"min_pass_rate of {suite}", (data or {}).get("min_pass_rate"), shard.path)
        for suite, repeats in sorted({(str(s.get("suite")), s.get("repeats", 1)) for s in shard.samples}, key=str):
            note(f"samples per case (--llmeval-repeats, le.cases(repeats=)) of {suite}", repeats, shard.path)
    out = []
    for what, values in seen.items():
        if len(set(values.values())) == 1 and len(values) > 1:  # one folder disagrees with itself
            out.append(f"{next(iter(values.values()))}: its cases ran with a different {what} ({', '.join(values)}); write the folder again with pytest --llmeval-output")
        elif len(values) > 1:
            shown = "; ".join(f"{path}: {value}" for value, path in values.items())
            out.append(f"the shards ran with a different {what} ({shown}); run every shard with the same settings")
    return out


def _spec_problems(shards: Sequence[Shard]) -> list[str]:
    specs = [(s.path, s.spec) for s in shards if s.spec is not None]
    if not specs:
        return []
    out = [f"{s.path}: was not run with --llmeval-shard, the others were; merge only the shards of one run" for s in shards if s.spec is None]
    totals = {spec[1] for _, spec in specs}
    if len(totals) > 1:
        return out + [f"the shards split the run differently ({', '.join(f'{p}: {i}/{n}' for p, (i, n) in specs)}); run every shard with the same N"]
    total = totals.pop()
    seen: dict[int, Path] = {}
    for path, (index, _) in specs:
        if index in seen:
            out.append(f"{path}: is shard {index}/{total} again (as {seen[index]}); pass each shard's folder once")
        seen.setdefault(index, path)
    missing = [i for i in range(1, total + 1) if i not in seen]
    if missing:
        out.append(f"shard{'s' if len(missing) > 1 else ''} {', '.join(f'{i}/{total}' for i in missing)} missing; pass every shard's output folder")
    return out


def _fingerprint_problems(shards: Sequence[Shard]) -> list[str]:
    """One line per shard whose suites (or model and software) differ from an earlier shard's."""
    out = []
    first: dict[str, tuple[Path, Fingerprint]] = {}
    run_wide: dict[str, tuple[Path, Any]] = {}
    for shard in shards:
        differing: dict[str, Path] = {}  # suite -> the shard it differs from
        fields: set[str] = set()
        for suite in sorted(shard.results["suites"]):
            fp = shard.fingerprint(suite)
            if suite in first and first[suite][1] != fp:
                diff = first[suite][1].diff(fp)
                differing[suite] = first[suite][0]
                fields.update(diff.differing + diff.compared_across or ("fingerprint",))
            first.setdefault(suite, (shard.path, fp))
            for key in _RUN_WIDE:
                value = fp.get(key)
                if value is not None and key in run_wide and run_wide[key][1] != value:
                    differing.setdefault(suite, run_wide[key][0])
                    fields.add(key)
                if value is not None:
                    run_wide.setdefault(key, (shard.path, value))
        if differing:
            names = list(differing)
            more = f" and {len(names) - 2} more" if len(names) > 2 else ""
            other = differing[names[0]]
            than = "its other suites" if other == shard.path else str(other)
            out.append(
                f"{shard.path}: ran {', '.join(names[:2])}{more} with a different {', '.join(sorted(fields))} than "
                f"{than}; run every shard with the same model and settings"
            )
    return out


def _overlap_problems(shards: Sequence[Shard]) -> list[str]:
    owner: dict[tuple[str, str], Path] = {}
    out = []
    for shard in shards:
        both = sorted(k for k in shard.cases() if k in owner)
        if both:
            suite, case = both[0]
            more = f" and {len(both) - 1} more" if len(both) > 1 else ""
            out.append(f"{shard.path}: ran {suite}[{case}]{more}, which {owner[both[0]]} ran too; give each shard a different --llmeval-shard=I/N")
        for key in shard.cases():
            owner.setdefault(key, shard.path)
    return out


def merged_records(shards: Sequence[Shard]) -> list[CaseRecord]:
    """The case records of every shard, each with its suite's fingerprint and minimum pass rate."""
    records = []
    for shard in shards:
        suites = shard.results["suites"]
        for sample in shard.samples:
            suite = suites.get(sample.get("suite")) or {}
            data = {**sample, "case_id": sample.get("id"), "fingerprint": suite.get("fingerprint") or {}, "min_pass_rate": suite.get("min_pass_rate")}
            records.append(CaseRecord.from_json(data))
    return records


def merge(out_dir: Path | None, shards: Sequence[Shard], options: GateOptions) -> GateReport:
    """The session over every shard's records: the report a single run would have given."""
    from pytest_llmeval.results.session import EvalSession

    narrowed = {n for s in shards for n in (s.results.get("run") or {}).get("narrowed_by") or ()} - {"--llmeval-shard"}
    run = [s.results.get("run") or {} for s in shards]
    status = RunStatus(interrupted=any(r.get("interrupted") for r in run), stopped_early=any(r.get("stopped_early") for r in run))
    session = EvalSession(replace(options, output_dir=out_dir, narrowed_by=tuple(sorted(narrowed))), cwd=options.rootdir)
    session.add_all(merged_records(shards))
    return session.finish(status)
