"""A bound on what oneDNN keeps per shape of product, so that a run's memory stops growing with its cases.

oneDNN builds a primitive (its kernel, its scratch memory) for every shape of product it computes,
and torch keeps the last ones it used in two caches: oneDNN's primitive cache
(``ONEDNN_PRIMITIVE_CACHE_CAPACITY``, 1024 by default) and torch's own ``ideep`` cache
(``LRU_CACHE_CAPACITY``, 1024 by default); a primitive stays in memory while either holds it. The
plugin's products come in many shapes: a decoding step's live rows, and a prefill tree's tokens
(nearly every prefill a new row count, up to 1024), so with 1024 entries each, a run kept hundreds of
MiB more the more cases it ran.

:func:`bound` sets both capacities to :data:`CAPACITY`, each only where the user has not set it,
before the plugin's first oneDNN product (each cache reads its variable once, when first used;
where oneDNN already ran in the process, nothing changes). A primitive dropped from the caches is
built again, the same, when its shape comes back: the results do not change, only the time to build
it is paid again.
"""

from __future__ import annotations

import os

__all__ = ["CAPACITY", "bound"]

CAPACITY = 16
"""Entries each cache keeps. A decoding step needs a few shapes (SmolLM2: 5 layer shapes at the step's live
rows), consecutive steps mostly share them, and torch's cache serves a repeated shape without asking
oneDNN's; the prefills' one-off row counts fall out. A call of 64 generations built the same 36 primitives
at 16 as at 1024 (``ONEDNN_VERBOSE=2``; 0.2 to 0.4 ms each), with the same completions."""

VARIABLES = {
    "ONEDNN_PRIMITIVE_CACHE_CAPACITY": ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "DNNL_PRIMITIVE_CACHE_CAPACITY"),
    "LRU_CACHE_CAPACITY": ("LRU_CACHE_CAPACITY",),
}
"""Each variable this module sets, and the names under which a user may already have set it."""


def bound(environ: "os._Environ[str] | dict[str, str] | None" = None) -> list[str]:
    """Set each cache's capacity the user left unset; returns the variables it set."""
    env = os.environ if environ is None else environ
    done = []
    for name, names in VARIABLES.items():
        if not any(env.get(n) for n in names):
            env[name] = str(CAPACITY)
            done.append(name)
    return done
