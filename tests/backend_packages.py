"""Register a backend scheme the way `pip install` of a package would: a ``*.dist-info`` folder
with an ``entry_points.txt`` naming the factory, in a folder on ``sys.path`` (a pytester dir)."""

from __future__ import annotations

from pathlib import Path


def register_scheme(root: Path, scheme: str, target: str, *, module: str | None = None, source: str | None = None) -> None:
    """Make ``SCHEME:...`` load ``target`` (``module:function``); with ``source``, also write the
    module ``module`` (a plain ``.py`` file) into ``root``."""
    if source is not None:
        (root / f"{module}.py").write_text(source)
    name = f"{scheme}_backend"
    dist = root / f"{name}-0.1.dist-info"
    dist.mkdir(exist_ok=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[pytest_llmeval.backends]\n{scheme} = {target}\n")
