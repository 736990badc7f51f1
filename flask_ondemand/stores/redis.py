"""The Redis store: entries in a Redis server, shared by every machine that reaches it.

Through redis-py (flask_ondemand's ``redis`` extra). Keys, all under ``flask_ondemand:``
(give each site its own database, ``redis://host/1``)::

    flask_ondemand:e:<key>          an entry, expiring when it is of no more use
    flask_ondemand:i:path <path>    the keys of a path's entries (a set); "i:tag <tag>" a tag's
    flask_ondemand:l:<key>          a URL's render lock: "until holder"
    flask_ondemand:epoch            a counter, raised at every purge

What must not interleave runs as one Lua script, which Redis runs alone: storing an entry only
if no purge happened since its render began, a purge, and taking or releasing a lock. A lock
expires by its time on the cache's clock (the tests move it); Redis's own expiry only
collects locks that were left behind.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import redis

from . import DecodedEntries, Entry, StoreError, index_names, now

PREFIX = "flask_ondemand:"
#: Short: a Redis that does not answer must not hold up a page for long (it renders live).
TIMEOUT_SECONDS = 0.5

_PUT = """
if (redis.call('GET', KEYS[1]) or '') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
for i = 3, #KEYS do
  redis.call('SADD', KEYS[i], KEYS[2])
  if redis.call('PTTL', KEYS[i]) < tonumber(ARGV[3]) then
    redis.call('PEXPIRE', KEYS[i], ARGV[3])
  end
end
return 1
"""

_PURGE = """
redis.call('INCR', KEYS[1])
local purged = 0
for i = 2, #KEYS do
  for _, key in ipairs(redis.call('SMEMBERS', KEYS[i])) do
    purged = purged + redis.call('DEL', key)
  end
  redis.call('DEL', KEYS[i])
end
return purged
"""

_LOCK = """
local held = redis.call('GET', KEYS[1])
if held then
  local space = string.find(held, ' ', 1, true)
  if space and tonumber(string.sub(held, 1, space - 1)) > tonumber(ARGV[1])
      and string.sub(held, space + 1) ~= ARGV[2] then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[3] .. ' ' .. ARGV[2], 'PX', ARGV[4])
return 1
"""

_UNLOCK = """
local held = redis.call('GET', KEYS[1])
if held then
  local space = string.find(held, ' ', 1, true)
  if space and string.sub(held, space + 1) == ARGV[1] then redis.call('DEL', KEYS[1]) end
end
return 0
"""

Result = TypeVar("Result")


class RedisStore:
    """A :class:`~flask_ondemand.stores.Store` in Redis. Connects on first use, so a worker
    forked from a server process makes its own connections."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._client: redis.Redis | None = None
        self._scripts: dict[str, Callable[..., Any]] = {}
        #: Key -> the entry, by the bytes last read: the same bytes are not parsed again.
        self._read = DecodedEntries()

    def __repr__(self) -> str:
        return f"RedisStore({_without_password(self.url)!r})"

    @property
    def client(self) -> redis.Redis:
        if self._client is None:
            self._client = redis.Redis.from_url(
                self.url,
                socket_timeout=TIMEOUT_SECONDS,
                socket_connect_timeout=TIMEOUT_SECONDS,
            )
            for name, source in (
                ("put", _PUT),
                ("purge", _PURGE),
                ("lock", _LOCK),
                ("unlock", _UNLOCK),
            ):
                self._scripts[name] = self._client.register_script(source)
        return self._client

    @contextmanager
    def _talking(self) -> Iterator[None]:
        try:
            yield
        except redis.RedisError as error:  # down, timed out, or refused (out of memory)
            raise StoreError(f"{self}: {error}") from error

    def _run(self, script: str, keys: list[str], args: list[Any]) -> Any:
        with self._talking():
            self.client  # noqa: B018 - connects and registers the scripts
            return self._scripts[script](keys=keys, args=args)

    def get(self, key: str) -> Entry | None:
        with self._talking():
            data = self.client.get(PREFIX + "e:" + key)
        if not isinstance(data, bytes):
            return None
        return self._read.get(key, data, lambda: (data, data))  # the bytes are their identity

    def put(self, key: str, entry: Entry, *, keep_for: float, epoch: str) -> bool:
        indexes = [PREFIX + "i:" + name for name in index_names([entry.path], entry.tags)]
        keys = [PREFIX + "epoch", PREFIX + "e:" + key, *indexes]
        milliseconds = max(1000, int(keep_for * 1000))
        return bool(self._run("put", keys, [epoch, entry.to_bytes(), milliseconds]))

    def epoch(self) -> str:
        with self._talking():
            value = self.client.get(PREFIX + "epoch")
        return value.decode() if isinstance(value, bytes) else ""

    def lock(self, key: str, holder: str, until: float) -> bool:
        current = now()
        # Redis's expiry only collects a lock left behind: the lock's own time decides.
        milliseconds = max(1000, int((until - current) * 2000))
        args = [repr(current), holder, repr(until), milliseconds]
        return bool(self._run("lock", [PREFIX + "l:" + key], args))

    def locked(self, key: str) -> bool:
        with self._talking():
            held = self.client.get(PREFIX + "l:" + key)
        if not isinstance(held, bytes):
            return False
        until, _, holder = held.decode("utf-8", "replace").partition(" ")
        try:
            return bool(holder) and float(until) > now()
        except ValueError:
            return False

    def unlock(self, key: str, holder: str) -> None:
        self._run("unlock", [PREFIX + "l:" + key], [holder])

    def purge(self, *, paths: Iterable[str] = (), tags: Iterable[str] = ()) -> int:
        indexes = [PREFIX + "i:" + name for name in index_names(paths, tags)]
        if not indexes:
            return 0
        return int(self._run("purge", [PREFIX + "epoch", *indexes], []))

    def clear(self) -> int:
        purged = 0
        with self._talking():
            self.client.incr(PREFIX + "epoch")
            for pattern, counted in ((PREFIX + "e:*", True), (PREFIX + "i:*", False)):
                batch: list[Any] = []
                for key in self.client.scan_iter(match=pattern, count=500):
                    batch.append(key)
                    if len(batch) == 500:
                        deleted = int(self.client.delete(*batch))
                        purged += deleted if counted else 0
                        batch = []
                if batch:
                    deleted = int(self.client.delete(*batch))
                    purged += deleted if counted else 0
        return purged


def _without_password(url: str) -> str:
    """The URL for messages: a password in it is not shown."""
    scheme, separator, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    return f"{scheme}{separator}{credentials.split(':', 1)[0]}:***@{host}"
