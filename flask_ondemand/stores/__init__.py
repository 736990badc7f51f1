"""The route cache's stores: where cached answers live, shared by every worker that opens the
same one.

A store is a few methods (:class:`Store`); each backend is one module: ``folder`` (files in a
folder, shared by the workers of one machine) and ``redis`` (shared by every machine that
reaches the server). A store knows entries, tags, locks and purges, not HTTP or Flask.

Time: every time a store compares (an entry's age, a lock's expiry) comes from :func:`now`,
the wall clock, or in tests a clock they move: the number of seconds in the file named by the
environment variable ``ONDEMAND_CACHE_CLOCK``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from ..errors import ConfigError, OnDemandError

#: The environment variable naming a file that holds the time, in seconds since the epoch,
#: for tests that move the clock instead of sleeping.
CLOCK_VARIABLE = "ONDEMAND_CACHE_CLOCK"

#: What starts every stored entry: the format's name and version. Anything else is a miss.
MAGIC = b"flask_ondemand cache 1\n"

#: How many entries a store's process remembers once read (it forgets them all when it has
#: more), and how large one may be to be remembered: at most 256 MiB of a worker's memory.
MEMORY_SIZE = 1024
MEMORY_ENTRY_BYTES = 256 * 1024


class StoreError(OnDemandError):
    """The store cannot be reached or written (down, full, refused): the caller renders live."""


def now() -> float:
    """The cache's clock: the wall clock, or the time in the ``ONDEMAND_CACHE_CLOCK`` file."""
    clock = os.environ.get(CLOCK_VARIABLE)
    if clock is None:
        return time.time()
    return float(Path(clock).read_text())


@dataclass(frozen=True)
class Entry:
    """One cached answer of a URL, as it is stored."""

    status: int
    #: The status line's text, which a view may have set ("No Posts Found").
    reason: str
    #: The answer's headers, less those the cache computes as it serves it (see cache.py).
    headers: tuple[tuple[str, str], ...]
    body: bytes
    #: When it was rendered, by :func:`now`.
    stored_at: float
    #: The endpoint that rendered it, and that endpoint's version then: an entry of an
    #: endpoint whose version changed since (its code or the templates) is a miss.
    endpoint: str
    version: str
    #: The route's tags, and its path: purging either purges the entry.
    tags: tuple[str, ...] = ()
    path: str = ""
    etag: str = ""

    def to_bytes(self) -> bytes:
        head = {
            "status": self.status,
            "reason": self.reason,
            "headers": [list(pair) for pair in self.headers],
            "stored_at": self.stored_at,
            "endpoint": self.endpoint,
            "version": self.version,
            "tags": list(self.tags),
            "path": self.path,
            "etag": self.etag,
        }
        return MAGIC + json.dumps(head, separators=(",", ":")).encode() + b"\n" + self.body

    @classmethod
    def from_bytes(cls, data: bytes) -> Entry | None:
        """Read an entry; None for anything that is not one whole entry (a corrupt file)."""
        if not data.startswith(MAGIC):
            return None
        head, newline, body = data[len(MAGIC) :].partition(b"\n")
        if not newline:
            return None
        try:
            fields = json.loads(head)
            return cls(
                status=_int(fields["status"]),
                reason=_str(fields["reason"]),
                headers=tuple((_str(name), _str(value)) for name, value in fields["headers"]),
                body=body,
                stored_at=float(fields["stored_at"]),
                endpoint=_str(fields["endpoint"]),
                version=_str(fields["version"]),
                tags=tuple(_str(tag) for tag in fields["tags"]),
                path=_str(fields["path"]),
                etag=_str(fields["etag"]),
            )
        except (TypeError, ValueError, KeyError, AttributeError):
            return None


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(value)
    return value


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(value)
    return value


class DecodedEntries:
    """The entries a store's process decoded lately, each with what tells its stored bytes
    apart (a file's identity, or the bytes themselves): an answer served again and again is
    decoded once. At most ``MEMORY_SIZE`` of them, each of at most ``MEMORY_ENTRY_BYTES``; all
    are forgotten when it is full."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[object, Entry | None]] = {}

    def get(
        self, key: str, identity: object, read: Callable[[], tuple[object, bytes]]
    ) -> Entry | None:
        """The entry of ``key`` whose stored bytes ``identity`` names: the one decoded before,
        or else the one ``read()`` gives (the identity of what it read, and the bytes)."""
        remembered = self._entries.get(key)
        if remembered is not None and remembered[0] == identity:
            return remembered[1]
        identity, data = read()
        entry = Entry.from_bytes(data)
        if len(data) <= MEMORY_ENTRY_BYTES:
            if len(self._entries) >= MEMORY_SIZE:
                self._entries.clear()
            self._entries[key] = (identity, entry)
        return entry


def index_names(paths: Iterable[str] = (), tags: Iterable[str] = ()) -> list[str]:
    """The names a store indexes entries by, for their paths and tags, kept apart: a tag may
    look like a path."""
    return [*(f"path {path}" for path in paths), *(f"tag {tag}" for tag in tags)]


class Store(Protocol):
    """What the cache needs of a store. Every method may raise :class:`StoreError`.

    Keys are a URL's path and query as the WSGI server gave them (``/prices/?page=2``).
    """

    def get(self, key: str) -> Entry | None:
        """The entry stored under ``key``, or None (none, or one that cannot be read)."""

    def put(self, key: str, entry: Entry, *, keep_for: float, epoch: str) -> bool:
        """Store ``entry`` under ``key`` (replacing any), for about ``keep_for`` seconds
        after which it is of no use; but only if no purge happened since :meth:`epoch`
        returned ``epoch``: a render that began before a purge may hold what it purged.
        Return whether it was stored."""

    def epoch(self) -> str:
        """A value that changes at every purge."""

    def lock(self, key: str, holder: str, until: float) -> bool:
        """Take the render lock of ``key`` for ``holder`` until the time ``until``, if no one
        else holds it (or their hold has expired). Return whether ``holder`` holds it now."""

    def locked(self, key: str) -> bool:
        """Whether someone holds the render lock of ``key``."""

    def unlock(self, key: str, holder: str) -> None:
        """Release the render lock of ``key``, if ``holder`` holds it."""

    def purge(self, *, paths: Iterable[str] = (), tags: Iterable[str] = ()) -> int:
        """Delete the entries of these paths (any query) and tags; return how many."""

    def clear(self) -> int:
        """Delete every entry; return how many."""


def open_store(url: str | None, *, default_folder: Path | None) -> Store | None:
    """Open the store ``url`` names: ``redis://``, ``rediss://`` or ``unix://`` for Redis, a
    ``file://`` URL or a folder path for a folder store; None for ``default_folder`` (and
    no store at all if that is None too).

    :raises ConfigError: for another scheme, or Redis without the ``redis`` package.
    """
    if url is None:
        if default_folder is None:
            return None
        from .folder import FolderStore

        return FolderStore(default_folder)
    if not isinstance(url, str) or not url:
        raise ConfigError(f"ONDEMAND_CACHE_URL must be a URL or a folder, not {url!r}")
    scheme = urlsplit(url).scheme
    if scheme in ("redis", "rediss", "unix"):
        try:
            from .redis import RedisStore
        except ImportError:
            raise ConfigError(
                f"ONDEMAND_CACHE_URL {url!r} needs the redis package: pip install redis"
                " (flask_ondemand's 'redis' extra)"
            ) from None
        return RedisStore(url)
    if scheme == "file":
        from .folder import FolderStore

        return FolderStore(Path(unquote(urlsplit(url).path)))
    if scheme and len(scheme) > 1:  # not a Windows drive letter
        raise ConfigError(
            f"ONDEMAND_CACHE_URL {url!r}: a redis://, rediss:// or unix:// URL, a file:// URL,"
            " or a folder"
        )
    from .folder import FolderStore

    return FolderStore(Path(url))
