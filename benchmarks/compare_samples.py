"""How far two runs of the same suites moved apart, case by case, from their samples.jsonl files.

    .venv/bin/python benchmarks/compare_samples.py RUN_A/samples.jsonl RUN_B/samples.jsonl

Used for ``llmeval_dtype = bfloat16`` against float32 on the example suites (docs/speed.md):
per suite, the cases whose completion text is identical, whose outcome changed (pass, fail, ...),
and for ranked cases the median and largest difference of a choice's loglikelihood and the cases
whose prediction (the highest total loglikelihood) changed. Cases are matched by suite, id and
repeat; a case in one file only is counted apart.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict
from pathlib import Path


def read(path: Path) -> dict[tuple[str, str, int], dict]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {(r["suite"], str(r["id"]), int(r.get("repeat", 0))): r for r in rows}


def _argmax(values: list[float]) -> int:
    return max(range(len(values)), key=lambda i: (values[i], -i))


def compare(a: dict, b: dict) -> dict[str, dict]:
    suites: dict[str, dict] = defaultdict(lambda: {"cases": 0, "texts": 0, "same_text": 0, "outcome_changed": 0,
                                                   "ranked": 0, "pred_changed": 0, "diffs": [], "only_one": 0})
    for key in sorted(set(a) | set(b)):
        s = suites[key[0].split("::")[0]]
        if key not in a or key not in b:
            s["only_one"] += 1
            continue
        x, y = a[key], b[key]
        s["cases"] += 1
        s["outcome_changed"] += x["outcome"] != y["outcome"]
        if x.get("completion") is not None or y.get("completion") is not None:
            s["texts"] += 1
            s["same_text"] += x.get("completion") == y.get("completion")
        lx, ly = x.get("loglikelihoods"), y.get("loglikelihoods")
        if lx and ly and len(lx) == len(ly):
            s["ranked"] += 1
            s["pred_changed"] += _argmax(lx) != _argmax(ly)
            s["diffs"].extend(abs(p - q) for p, q in zip(lx, ly))
    return dict(suites)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    args = parser.parse_args()
    suites = compare(read(args.a), read(args.b))
    print("| suite | cases | same completion | outcome changed | ranked: prediction changed | loglikelihood difference (median, largest) |")
    print("|---|---:|---:|---:|---:|---|")
    for name, s in sorted(suites.items()):
        texts = f"{s['same_text']}/{s['texts']}" if s["texts"] else ""
        ranked = f"{s['pred_changed']}/{s['ranked']}" if s["ranked"] else ""
        diffs = f"{statistics.median(s['diffs']):.3f}, {max(s['diffs']):.3f} nats" if s["diffs"] else ""
        extra = f" ({s['only_one']} in one run only)" if s["only_one"] else ""
        print(f"| {name}{extra} | {s['cases']} | {texts} | {s['outcome_changed']} | {ranked} | {diffs} |")


if __name__ == "__main__":
    main()
