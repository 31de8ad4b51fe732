"""A pytest plugin for benchmarks/bench_start.py: when does a run reach its first batch, and what came before.

Loaded with ``-p start_probe`` (benchmarks/ on ``PYTHONPATH``). It writes, to the file named by
``$START_PROBE_OUT``, the system-wide monotonic clock (``time.monotonic``, the same clock in every
process) at these points, then ends the process at the first batch (what follows is not the start):

- ``plugin``: this module imported (pytest has started, its plugins are loading);
- ``collected``: collection (and deselection) done;
- ``load_called``: the model's load begins;
- ``torch``, ``transformers``: each imported, by the model's load (timed here just before it, as
  the load would import them);
- ``modeling``: ``transformers.modeling_utils`` imported (what every model class needs: the
  model's own module, its tokenizer and weights are what is left of the load);
- ``loaded``: the model and tokenizer ready (the backend's own load, from the converted copy);
- ``kernels``: the float32 kernel chosen (``llmeval_cpu_matmul = auto``; a cached choice is read),
  when the header line describes the model;
- ``first_batch``: the first backend call of the run begins (its requests are all known).
"""

from __future__ import annotations

import json
import os
import time

_marks: dict[str, float] = {"plugin": time.monotonic()}


def _mark(name: str) -> None:
    _marks.setdefault(name, time.monotonic())


def _write() -> None:
    with open(os.environ["START_PROBE_OUT"], "w", encoding="utf-8") as out:
        json.dump(_marks, out)


def pytest_collection_finish(session) -> None:  # noqa: ARG001 - a pytest hook
    _mark("collected")


def pytest_configure(config) -> None:  # noqa: ARG001 - a pytest hook
    from pytest_llmeval.models import batched, cpu_matmul, hf

    load = hf.HFBackend.load.__func__

    def timed_load(cls, *args, **kwargs):
        _mark("load_called")
        import torch  # noqa: F401 - timed: the load would import it

        _mark("torch")
        import transformers  # noqa: F401

        _mark("transformers")
        import transformers.modeling_utils  # noqa: F401 - what every model class imports (the load would)

        _mark("modeling")
        backend = load(cls, *args, **kwargs)
        _mark("loaded")
        return backend

    hf.HFBackend.load = classmethod(timed_load)
    kernels_for = cpu_matmul.kernels_for

    def timed_kernels(*args, **kwargs):
        choice = kernels_for(*args, **kwargs)
        _mark("kernels")
        return choice

    cpu_matmul.kernels_for = timed_kernels
    call = batched.call

    def first_call(backend, kind, requests, progress=None):
        _mark("first_batch")
        _write()
        os._exit(0)
        return call(backend, kind, requests, progress)  # not reached

    batched.call = first_call
