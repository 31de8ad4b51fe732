"""The completion cache: every completion and ranking a backend computed, in one SQLite file.

An output is stored under a key made of

- the backend's *identity*: what its outputs depend on, known without loading it (for a local
  model the content hashes of its weights, tokenizer and chat-template files, the device, the
  dtype and the versions of the software that computes; for a served model its name and the
  server's address, never the API key; see :func:`backend_identity`);
- the model settings (seed, generation settings, batch size, context length...);
- the request exactly as the scheduler hands it to the backend: every field of
  :class:`~pytest_llmeval.datasets.suite.Request`, taken generically, so fields added later
  (the sample's ``seed``, its ``repeat`` index) are part of the key without a change here; a
  field marked ``KEYED_WHEN_SET`` (a workflow round's ``messages`` and ``tools``) only when set, so
  that the keys of requests without it did not change when it came;
- this package's version and the cache's schema.

Next to the outputs the cache keeps, per identity, what the loaded backend reported about itself
(its fingerprint, whether it has a chat template), so a run whose outputs are all cached records
the same fingerprint as one that loaded the model, without loading it. It is stored again after
the backend's answers, which may complete it (a served model's reported name and
``system_fingerprint``). Failures are never stored:
only the outputs of a backend call that returned.

The file (:mod:`.cache_file`) is shared by concurrent sessions and xdist workers (WAL journal, a
busy timeout, retries). A corrupt file is set aside (renamed ``NAME.corrupt-TIME-PID``) with a
warning and a new one is started; a file that cannot be opened or written is a warning and the
run goes on uncached.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import json
import time
from typing import Any, Mapping, Sequence

from pytest_llmeval.jsonfiles import SCALAR_TYPES
from pytest_llmeval.memo import IdentityMemo
from pytest_llmeval.models.cache_file import CacheStore, LLMEvalCacheWarning, transaction, transaction_many
from pytest_llmeval.models.outputs import Completion, Ranked
from pytest_llmeval.models.protocol import capabilities, has_chat_template
from pytest_llmeval.own_warnings import warn

__all__ = ["MODES", "CacheStore", "CompletionCache", "LLMEvalCacheWarning", "decode", "encode", "request_key"]

Result = Completion | Ranked
MODES = ("on", "off", "refresh", "readonly")
"""``on``: read and write; ``off``: neither; ``refresh``: recompute and overwrite; ``readonly``: read only."""
SCHEMA = 1
QUERY_CHUNK = 500


# ----------------------------------------------------------------------------- keys


def canonical(value: Any) -> Any:
    """``value`` as plain JSON data, for hashing: a dataclass becomes its type name and every field
    (generically: fields added later are included; a field whose metadata says
    ``{"cache_key": "when_set"}`` only when it is not ``None``, so adding one keeps earlier keys),
    tuples become lists, mappings sorted dicts."""
    if type(value) in SCALAR_TYPES:  # most values: before the dataclass and mapping checks
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {}
        for name, late, default in _key_fields(type(value)):
            field_value = getattr(value, name)
            if not (late and field_value == default):  # a late field that holds its default is left out
                out[name] = canonical(field_value)
        return {"__type__": type(value).__name__, **out}
    if isinstance(value, Mapping):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return {"__repr__": repr(value)}


@functools.cache
def _key_fields(cls: type) -> tuple[tuple[str, bool, Any], ...]:
    """A dataclass's fields as keys read them, once per class (every request of a run is walked
    through them): each name, whether it is marked ``{"cache_key": "when_set"}`` (added later: a
    workflow round's messages and tools, left out while it holds its default, so older keys stay
    valid), and its default."""
    return tuple((f.name, f.metadata.get("cache_key") == "when_set", f.default) for f in dataclasses.fields(cls))


def digest(data: Any) -> str:
    return _digest_plain(canonical(data))


def _digest_plain(plain: Any) -> str:
    """:func:`digest` of data that is already :func:`canonical` (which leaves such data as it is)."""
    text = json.dumps(plain, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _plugin_version() -> str:
    from pytest_llmeval.version import __version__

    return __version__


def identity_key(identity: Mapping[str, Any]) -> str:
    """The key of a backend identity; this package's version is part of it (a new version may
    compute differently)."""
    return digest({"schema": SCHEMA, "plugin": _plugin_version(), "identity": identity})


UNKEYED = ("model", "base_url", "api_key_env", "concurrency", "request_timeout", "max_retries", "price_in", "price_out", "max_cost")
"""Settings that are not in an output's key: the model and server (the identity says what they
are) and how requests are sent, retried and priced (an answer does not depend on them)."""


def request_key(identity: str, settings: Any, request: Any) -> str:
    """The key of one output: the backend identity (its key), the model settings but the
    :data:`UNKEYED` ones and, for a ranking, the generation settings (a loglikelihood does not
    depend on them), and every field of the request."""
    fields = _keyed_settings(settings, getattr(request, "kind", None) == "rank")
    return _digest_plain({"identity": identity, "settings": fields, "request": canonical(request)})


_SETTINGS_SEEN = IdentityMemo(8)
"""The keyed form of the last settings seen, by their identity (held, so the id stays theirs):
every request of a batch has the same settings, and walking them per request was most of the
cost of looking up a large cached run."""


def _keyed_settings(settings: Any, rank: bool) -> Any:
    held = _SETTINGS_SEEN.get(settings, rank)
    if held is not None and not isinstance(settings, (dict, list)):
        return held
    fields = canonical(settings)
    if isinstance(fields, dict):
        for name in UNKEYED:
            fields.pop(name, None)
        if rank:
            fields.pop("generation", None)
    return _SETTINGS_SEEN.put(settings, fields, rank)


# ----------------------------------------------------------------------------- values


def encode(result: Result) -> str:
    """A completion (its text and every attribute it carries) or a ranking, as JSON."""
    if isinstance(result, Completion):
        return json.dumps({"type": "completion", "text": result.text, "attrs": dict(vars(result))})
    if isinstance(result, Ranked):
        return json.dumps({"type": "ranked", "fields": canonical(result)})
    raise TypeError(f"cannot cache a {type(result).__name__}")


def decode(text: str) -> Result:
    data = json.loads(text)
    if data["type"] == "completion":
        accepted = _completion_parameters()
        attrs = dict(data["attrs"])
        out = Completion(data["text"], **{k: v for k, v in attrs.items() if k in accepted})
        for name, value in attrs.items():  # attributes a backend added beyond the constructor's
            if name not in accepted:
                setattr(out, name, value)
        return out
    fields = {f.name for f in dataclasses.fields(Ranked)}
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data["fields"].items() if k in fields}
    return Ranked(**values)


@functools.cache
def _completion_parameters() -> frozenset[str]:
    """The attributes :class:`Completion`'s constructor takes besides its text (read once, not per row)."""
    return frozenset(inspect.signature(Completion.__new__).parameters) - {"cls", "text"}


def cacheable(result: Any) -> bool:
    """Only real outputs are stored: never an error a backend returned in place of one."""
    if not isinstance(result, (Completion, Ranked)):
        return False
    return getattr(result, "finish_reason", None) != "error" and not getattr(result, "error", None)


# ----------------------------------------------------------------------------- one session's view


class CompletionCache:
    """The cache as a session uses it: one backend identity, one set of model settings, a mode.

    ``identity`` is None when the backend cannot say what it is without loading (the cache is then
    bypassed). ``hits`` counts the outputs served from the file, by request kind.
    """

    def __init__(self, store: CacheStore | None, identity: Mapping[str, Any] | None, settings: Any, mode: str = "on") -> None:
        if mode not in MODES:
            raise ValueError(f"cache mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.store = store
        self.mode = mode
        self.settings = settings
        self.identity = identity_key(identity) if identity is not None and mode != "off" else None
        self.hits: dict[str, int] = {}
        self.written = 0
        self._info: Mapping[str, Any] | None = None
        self._info_read = False

    @property
    def active(self) -> bool:
        return self.identity is not None and self.store is not None and self.store.problem is None

    @property
    def reads(self) -> bool:
        return self.active and self.mode in ("on", "readonly")

    @property
    def writes(self) -> bool:
        return self.active and self.mode in ("on", "refresh")

    def info(self) -> Mapping[str, Any] | None:
        """What the loaded backend reported about itself when its outputs were stored, or None."""
        if not self._info_read and self.active:
            assert self.store is not None and self.identity is not None
            row = self.store.run("read", lambda c: c.execute("SELECT info FROM backends WHERE identity = ?", (self.identity,)).fetchone(), None)
            self._info = json.loads(row[0]) if row else None
            self._info_read = True
        return self._info

    @property
    def fingerprint(self) -> Mapping[str, Any] | None:
        info = self.info()
        return info.get("fingerprint") if info else None

    @property
    def has_chat_template(self) -> bool | None:
        info = self.info()
        return info.get("has_chat_template") if info else None

    @property
    def capabilities(self) -> frozenset[str] | None:
        """What the stored backend could do (None when not recorded: stored by an older version)."""
        info = self.info()
        found = info.get("capabilities") if info else None
        return frozenset(found) if isinstance(found, list) else None

    def lookup(self, requests: Sequence[Any]) -> list[Result | None]:
        """The stored output of each request, None where there is none (all None unless reading)."""
        if not requests or not self.reads or self.info() is None:
            return [None] * len(requests)
        assert self.store is not None and self.identity is not None
        keys = [request_key(self.identity, self.settings, r) for r in requests]
        found: dict[str, str] = {}
        for i in range(0, len(keys), QUERY_CHUNK):
            part = keys[i : i + QUERY_CHUNK]
            sql = f"SELECT key, value FROM outputs WHERE key IN ({','.join('?' * len(part))})"
            found.update(self.store.run("read", lambda c, p=part, s=sql: dict(c.execute(s, p).fetchall()), {}))
        out: list[Result | None] = []
        for request, key in zip(requests, keys):
            try:
                result = decode(found[key]) if key in found else None
            except (ValueError, KeyError, TypeError):  # a row this version cannot read: compute it again
                result = None
            if result is not None:
                self.hits[request.kind] = self.hits.get(request.kind, 0) + 1
            out.append(result)
        return out

    def save_answers(self, backend: Any, requests: Sequence[Any], outputs: Sequence[Any]) -> None:
        """Store what ``backend`` answered to ``requests``: its fingerprint first (its answers may
        have completed it, see :meth:`remember`), then the outputs (:meth:`save`)."""
        self.remember(backend)
        self.save(requests, outputs)

    def save(self, requests: Sequence[Any], outputs: Sequence[Any]) -> None:
        """Store the outputs a backend call returned (not errors; nothing unless writing)."""
        if not self.writes or self._info is None:
            return
        assert self.store is not None and self.identity is not None
        now = time.time()
        rows = [
            (request_key(self.identity, self.settings, r), self.identity, r.kind, encode(o), now)
            for r, o in zip(requests, outputs)
            if cacheable(o)
        ]
        if rows and self.store.run("write", lambda c: transaction(c, "INSERT OR REPLACE INTO outputs VALUES (?, ?, ?, ?, ?)", rows), False):
            self.written += len(rows)

    def remember(self, backend: Any) -> None:
        """Keep what the loaded ``backend`` says about itself, so a fully cached run records the
        same fingerprint without loading it. Called after loading and again after the backend's
        answers, which may complete it or change what the backend reports about its build.

        What a backend reports of its build (the fingerprint's ``versions``: a served model's
        reported name and ``system_fingerprint``) and what it found it can do (``capabilities``)
        update the stored description and never drop outputs: the outputs' key is the identity,
        and a server's self-report may change from one answer to the next. A fingerprint whose
        other fields contradict the one stored for this identity means the identity missed
        something: its outputs are dropped, with a warning."""
        if not self.active:
            return
        info = {
            "fingerprint": canonical(dict(backend.fingerprint)),
            "has_chat_template": has_chat_template(backend),
            "capabilities": sorted(capabilities(backend)),
        }
        old = self.info()
        if old is not None and _same_model(old, info):
            new = merge(old, info)
            if new != old:
                if self.writes:
                    self._store_info(new, drop=False)
                else:
                    self._info = new
            return
        if not self.writes:  # read-only: what is stored describes another model (or none): read nothing
            self._info = None
            return
        if old is not None:
            warn(
                LLMEvalCacheWarning(
                    "llmeval: the completion cache held outputs of a model that reported another fingerprint under the same "
                    "identity; they were dropped (it may be a backend bug: report it if the model files did not change)"
                ),
                stacklevel=2,
            )
        self._store_info(info, drop=old is not None)

    def _store_info(self, info: Mapping[str, Any], *, drop: bool) -> None:
        """Write ``info`` for this identity; ``drop``: delete its stored outputs first."""
        assert self.store is not None and self.identity is not None
        identity = self.identity
        statements = [
            ("DELETE FROM outputs WHERE identity = ?", [(identity,)] if drop else []),
            ("INSERT OR REPLACE INTO backends VALUES (?, ?)", [(identity, json.dumps(info))]),
        ]
        if self.store.run("write", lambda c: transaction_many(c, statements), False):
            self._info, self._info_read = info, True


def _same_model(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether two stored descriptions are of the same model: their fingerprints, but for what a
    backend reports of its build (``versions``), agree where both have a field."""
    a, b = (dict(x.get("fingerprint") or {}) for x in (old, new))
    a.pop("versions", None)
    b.pop("versions", None)
    return _agree(a, b)


def _agree(a: Any, b: Any) -> bool:
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return all(_agree(a[k], b[k]) for k in a.keys() & b.keys())
    return a == b


def merge(old: Any, new: Any) -> Any:
    """``new``, keeping the fields of ``old`` it does not have (recursively, for mappings)."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        return {**old, **{k: merge(old.get(k), v) for k, v in new.items()}}
    return new
