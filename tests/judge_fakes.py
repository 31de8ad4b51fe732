"""Small fake backends for judge tests, installed as a package that registers the ``fake`` scheme."""

from __future__ import annotations

from pathlib import Path

from backend_packages import register_scheme

FAKE_PACKAGE = '''
from pytest_llmeval import Completion, Ranked
from pytest_llmeval.models import OutputError, RankUnsupported

CALLS = []
"""(spec, kind, number of requests) of every backend call, across backends."""


def _reply(text):
    """The reply a judge prompt shows (between 'Reply:' and the next blank line)."""
    if "Reply:" not in text:
        return text
    return text.split("Reply:", 1)[1].split("\\n\\n", 1)[0]


class FakeBackend:
    """``fake:model`` answers with the prompt's last word; ``fake:rank`` judges by scoring labels
    (PASS when the reply says 'good'); ``fake:gen-good`` generates the label; ``fake:gen-chatty``
    chats first and answers the label when asked again; ``fake:gen-bad`` never gives a label.
    ``fake:norank`` claims loglikelihoods but has none (like a server without prompt logprobs: it
    generates the label); ``fake:failing`` and ``fake:nan`` score labels with a failed request or
    NaN; ``fake:down`` answers every request with a failed one."""

    def __init__(self, spec, settings):
        self.spec = spec
        self.settings = settings
        self.capabilities = frozenset({"generate", "rank"} if spec in ("rank", "norank", "failing", "nan") else {"generate"})

    @property
    def fingerprint(self):
        return {"model": "fake:" + self.spec}

    def describe(self):
        return "fake " + self.spec

    def batch_size(self):
        return 64

    def verdict(self, text):
        return "PASS" if "good" in _reply(text) else "FAIL"

    def run_generate(self, requests, progress=None):
        CALLS.append((self.spec, "generate", len(requests)))
        out = []
        for r in requests:
            if self.spec == "down":
                out.append(OutputError("POST http://down.test/v1/chat/completions failed: HTTP 500 after 5 tries"))
                continue
            if self.spec == "model" or "Verdict:" not in r.text:
                answer = r.text.split()[-1]
            elif self.spec in ("gen-good", "norank"):
                answer = " " + self.verdict(r.text) + "."
            elif self.spec == "gen-chatty":
                answer = self.verdict(r.text) if "That is not one of" in r.text else "I would say " + self.verdict(r.text)
            else:
                answer = "maybe, hard to tell"
            out.append(Completion(answer, prompt=r.text))
        return out

    def run_rank(self, requests, progress=None):
        CALLS.append((self.spec, "rank", len(requests)))
        if self.spec == "norank":
            self.capabilities = frozenset({"generate"})
            raise RankUnsupported("the server at http://norank.test/v1 returned no prompt logprobs")
        out = []
        for r in requests:
            wanted = self.verdict(r.text)
            if self.spec == "failing":
                out.append(OutputError("POST http://judge.test/v1/completions failed: HTTP 503 after 5 tries"))
                continue
            lls = tuple(float("nan") if self.spec == "nan" else 0.0 if c == wanted else -2.0 for c in r.choices)
            out.append(Ranked(context=r.text, choices=r.choices, loglikelihoods=lls, is_greedy=(False,) * len(lls)))
        return out

    def check(self):
        return None


def make(spec, settings):
    return FakeBackend(spec, settings)
'''


def install_fake_package(root: Path) -> None:
    """A package on sys.path that registers the 'fake' scheme, as `pip install` would."""
    register_scheme(root, "fake", "fake_backend:make", module="fake_backend", source=FAKE_PACKAGE)
