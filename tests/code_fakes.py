"""A package for the plugin's code-execution tests, registered the way `pip install` would
(tests/backend_packages.py): a backend and a sandbox provider from another distribution.

- ``program:N`` (backend): answers each prompt with the prompt itself, N requests per backend
  call (so a case's prompt is the program the model "wrote"). A prompt of several programs joined
  by ``NEXT_SAMPLE`` is a scripted sampler: sample ``r`` of the case (its repeat index) gets
  program ``r`` (cycling). Before each call after the first it
  waits (a few seconds at most) for a sandbox run to have started, and logs how many had: a run
  that starts while the model is still generating shows there.
- ``counting`` (sandbox): runs each job in the ``none`` provider (a subprocess), after waiting (a
  few seconds at most) for a second run to be in flight, and logs the most runs in flight at once.
- ``broken`` (sandbox): cannot start (a :class:`SandboxError` for every run).

Both log JSON lines to the file ``$CODE_FAKES_LOG``.
"""

from __future__ import annotations

import json
from pathlib import Path

from backend_packages import register_scheme

NEXT_SAMPLE = "\n# --- next sample ---\n"

PACKAGE = '''
import dataclasses, json, os, threading, time

from pytest_llmeval import Completion
from pytest_llmeval.scoring.code import SandboxError, get_sandbox

LOCK = threading.Lock()
STATE = {"started": 0, "active": 0, "max_active": 0}
WAIT_S = 5.0
NEXT_SAMPLE = @NEXT_SAMPLE@


def log(**event):
    path = os.environ.get("CODE_FAKES_LOG")
    if path:
        with LOCK, open(path, "a") as fh:
            fh.write(json.dumps(event) + "\\n")


def wait_for(test):
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        with LOCK:
            if test():
                return True
        time.sleep(0.01)
    return False


def answer(request):
    programs = request.text.split(NEXT_SAMPLE)
    return programs[request.repeat % len(programs)]


class ProgramBackend:
    capabilities = frozenset({"generate"})

    def __init__(self, spec, settings):
        self.size = int(spec or 64)
        self.settings = settings
        self.calls = 0

    @property
    def fingerprint(self):
        return {"model": "program:%d" % self.size}

    def describe(self):
        return "program backend"

    def batch_size(self):
        return self.size

    def run_generate(self, requests, progress=None):
        if self.calls:
            wait_for(lambda: STATE["started"] > 0)
        self.calls += 1
        with LOCK:
            started = STATE["started"]
        log(event="generate", n=len(requests), runs_started=started)
        if progress:
            progress(len(requests))
        return [Completion(answer(r), prompt=r.text) for r in requests]

    def run_rank(self, requests, progress=None):
        raise NotImplementedError

    def check(self):
        return None


def make_backend(spec, settings):
    return ProgramBackend(spec, settings)


class CountingSandbox:
    name = "counting"

    @property
    def protections(self):
        return get_sandbox("none").protections

    def run(self, job):
        with LOCK:
            STATE["started"] += 1
            STATE["active"] += 1
            STATE["max_active"] = max(STATE["max_active"], STATE["active"])
        try:
            wait_for(lambda: STATE["active"] >= 2)
            return dataclasses.replace(get_sandbox("none").run(job), sandbox=self.name)
        finally:
            with LOCK:
                most = STATE["max_active"]
                STATE["active"] -= 1
            log(event="run", program=job.program[:40], max_active=most)


class BrokenSandbox:
    name = "broken"
    protections = ()

    def run(self, job):
        raise SandboxError("the broken sandbox cannot start: its runtime is missing; install it, or set llmeval_code_sandbox = none")
'''.replace("@NEXT_SAMPLE@", repr(NEXT_SAMPLE))


def install(root: Path) -> Path:
    """Register the backend and both sandboxes under ``root`` (put it on sys.path); the log file."""
    register_scheme(root, "program", "code_fakes_pkg:make_backend", module="code_fakes_pkg", source=PACKAGE)
    dist = root / "code_fakes_sandboxes-0.1.dist-info"
    dist.mkdir(exist_ok=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: code-fakes-sandboxes\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[pytest_llmeval.sandboxes]\ncounting = code_fakes_pkg:CountingSandbox\nbroken = code_fakes_pkg:BrokenSandbox\n"
    )
    return root / "code_fakes.log"


def events(log: Path, kind: str) -> list[dict]:
    if not log.exists():
        return []
    return [e for e in map(json.loads, log.read_text().splitlines()) if e["event"] == kind]
