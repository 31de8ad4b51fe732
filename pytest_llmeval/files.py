"""Content hashes of what determines a model's outputs, cached so a session pays them once."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Iterable

CHUNK = 1 << 20


def cache_dir() -> Path:
    """Where converted models and hash caches live: ``$LLMEVAL_CACHE_DIR`` or ``~/.cache/pytest-llmeval``."""
    root = os.environ.get("LLMEVAL_CACHE_DIR")
    if root:
        return Path(root).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "pytest-llmeval"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def cached_file_hash(path: Path, cache: Path | None = None) -> str:
    """sha256 of ``path``, remembered by (absolute path, size, mtime) so a file is read once."""
    path = Path(path).resolve()
    stat = path.stat()
    key = f"{path}|{stat.st_size}|{stat.st_mtime_ns}"
    cache_file = (cache or cache_dir()) / "hashes.json"
    table: dict[str, str] = {}
    try:
        table = json.loads(cache_file.read_text())
        if not isinstance(table, dict):
            table = {}
    except (OSError, ValueError):
        table = {}
    if key in table:
        return table[key]
    digest = sha256_file(path)
    table = {k: v for k, v in table.items() if not k.startswith(f"{path}|")}
    table[key] = digest
    try:
        atomic_write_text(cache_file, json.dumps(table, sort_keys=True, indent=1) + "\n")
    except OSError:
        pass  # a read-only cache only costs a re-hash next time
    return digest


def hash_files(paths: Iterable[Path]) -> str:
    """One digest over several files (by name and content hash), order-independent."""
    parts = sorted(f"{p.name}:{cached_file_hash(p)}" for p in paths)
    return "sha256:" + hashlib.sha256("\n".join(parts).encode()).hexdigest()


def sha256_text(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


class ReadOnlyFileError(PermissionError):
    """The file exists and the user may not write it: it was left as it is."""


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so a reader never sees half a file (temp file, fsync, rename).

    A file that exists keeps its permission bits; a new file gets the usual mode for new
    files (0666 less the umask). A symbolic link is followed, so the file it names is
    replaced and the link stays. A file the user may not write is not replaced:
    :class:`ReadOnlyFileError` says so (renaming over it would succeed in a writable folder).
    """
    path = Path(os.path.realpath(path))
    mode = _existing_mode(path)
    if mode is not None and not os.access(path, os.W_OK):
        raise ReadOnlyFileError(errno.EACCES, "the file is read-only (make it writable to let it be replaced)", str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.chmod(tmp, mode if mode is not None else 0o666 & ~_umask())
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _existing_mode(path: Path) -> int | None:
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return None


def _umask() -> int:
    """The process umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".msgpack", ".h5")


def weight_files(model_dir: Path) -> list[Path]:
    return sorted(p for p in Path(model_dir).iterdir() if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
