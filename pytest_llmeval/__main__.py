"""``python -m pytest_llmeval`` (also ``pytest-llmeval``): the command line of :mod:`pytest_llmeval.cli`."""

from __future__ import annotations

import sys

from pytest_llmeval.cli.main import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
