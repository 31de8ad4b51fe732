"""A conftest.py for pytester projects: a backend that answers each prompt with the prompt itself and
ranks choices by a fixed rule, logging every call (kind, number of requests) to ``calls.log``.

Environment variables, read at each call: ``ECHO_BATCH`` (requests per backend call, default 64),
``ECHO_BREAK_UPPER`` (answer "" to a prompt written in capitals: a model that regressed on
upper-case input), ``ECHO_RANK`` (``first``: prefer the first position; ``named``, the default: the
choice the prompt names, else the first).
"""

CONFTEST = '''
import json, os
from pytest_llmeval import Completion, Ranked

LOG = os.path.join(os.path.dirname(__file__), "calls.log")


def log(kind, n):
    with open(LOG, "a") as f:
        f.write(json.dumps([kind, n]) + "\\n")


class Echo:
    capabilities = frozenset({"generate", "rank"})

    def __init__(self, settings):
        self.settings = settings

    @property
    def fingerprint(self):
        return {"model": "echo"}

    def describe(self):
        return "echo"

    def batch_size(self):
        return int(os.environ.get("ECHO_BATCH", "64"))

    def check(self):
        return None

    def run_generate(self, requests, progress=None):
        log("generate", len(requests))
        out = []
        for r in requests:
            broken = os.environ.get("ECHO_BREAK_UPPER") and r.text.isupper()
            out.append(Completion("" if broken else r.text, prompt=r.text))
        return out

    def run_rank(self, requests, progress=None):
        log("rank", len(requests))
        first = os.environ.get("ECHO_RANK") == "first"
        out = []
        for r in requests:
            lls = tuple(-1.0 - j + (0.0 if first else 10.0 * (c in r.text)) for j, c in enumerate(r.choices))
            out.append(Ranked(context=r.text, choices=tuple(r.choices), loglikelihoods=lls, is_greedy=(False,) * len(lls)))
        return out


def pytest_llmeval_make_backend(config, settings):
    return Echo(settings)
'''

INI = "[pytest]\nllmeval_history = off\nllmeval_output = out\nllmeval_baseline = baseline.json\nllmeval_cache = off\n"


def calls(path) -> list:
    """The backend calls a run made: ``[kind, number of requests]`` each."""
    import json

    log = path / "calls.log"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def samples(path, out: str = "out") -> dict:
    """``(suite, id) -> samples.jsonl line`` of a run."""
    import json

    rows = [json.loads(line) for line in (path / out / "samples.jsonl").read_text().splitlines()]
    return {(row["suite"], row["id"]): row for row in rows}


def results(path, out: str = "out") -> dict:
    import json

    return json.loads((path / out / "results.json").read_text())
