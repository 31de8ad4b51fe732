"""The package's version: one place, read by ``pyproject.toml`` and stamped into fingerprints."""

__version__ = "0.1.0"
