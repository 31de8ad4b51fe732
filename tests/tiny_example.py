"""Helpers for tests of the tiny arithmetic example (``example_suites/arithmetic_tiny``)."""

from __future__ import annotations

import importlib.util
import sys
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Iterator

EXAMPLE = Path(__file__).resolve().parents[1] / "example_suites" / "arithmetic_tiny"


def example_module(name: str) -> ModuleType:
    """The example's train.py / data.py, imported under a private name."""
    key = f"_arithmetic_tiny_{name}"
    if key in sys.modules:
        return sys.modules[key]
    spec = importlib.util.spec_from_file_location(key, EXAMPLE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[key] = module
    spec.loader.exec_module(module)
    return module


@contextmanager
def one_thread() -> Iterator[None]:
    """Train with one torch thread (fastest for these tiny models on a shared CPU), then restore."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
