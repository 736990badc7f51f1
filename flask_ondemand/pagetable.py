"""The manifest's pages, one row a page, in SQLite beside ``manifest.json``.

A server needs one page at a time, the first time someone asks for it; a 100,000-page manifest
read whole at start-up cost every cold start a tenth of a second and every worker its memory.
So the per-page part of a build's manifest (each URL's file, type, own headers, redirect, and
whether its queries or its cache go to the app) is a table that is opened, not read: a lookup
costs a few microseconds, and nothing is loaded that no request asked for. SQLite is in the
standard library, and the file is read-only once written, so every process reads it as an
immutable file, without locks.

The table's own ``CHECK`` constraints refuse, when it is written, a file outside the client
folder and a redirect status that is none; a table whose schema is not this one is refused when
it is opened, and each file read is checked again before it is used.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import threading
from collections.abc import Callable, ItemsView, Iterable, Iterator, Mapping, ValuesView
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Any, Generic, NamedTuple, TypeVar

from .errors import ManifestError
from .layout import stays_inside

#: The table's file, beside ``manifest.json``.
PAGES_NAME = "pages.sqlite"
#: The statuses a redirect may have: 300 to 308, less 304 Not Modified and the unused 305 and
#: 306, which are not redirects.
REDIRECT_STATUSES = (300, 301, 302, 303, 307, 308)

# A file leaves the client folder when it is empty, absolute, "..", or has a ".." segment.
_SCHEMA = f"""CREATE TABLE pages (
    url TEXT PRIMARY KEY,
    file TEXT NOT NULL UNIQUE CHECK (
        file <> '' AND file <> '.' AND file <> '..' AND substr(file, 1, 1) <> '/'
        AND substr(file, 1, 3) <> '../' AND instr(file, '/../') = 0
        AND substr(file, -3) <> '/..' AND instr(file, char(0)) = 0
    ),
    content_type TEXT,
    headers TEXT,
    redirect_status INTEGER CHECK (
        redirect_status IS NULL OR redirect_status IN {REDIRECT_STATUSES}
    ),
    redirect_location TEXT CHECK ((redirect_status IS NULL) = (redirect_location IS NULL)),
    live_query INTEGER NOT NULL DEFAULT 0,
    cached INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID"""


class Redirect(NamedTuple):
    """A page's redirect: its view answered with it, and its file holds a refresh to it."""

    status: int
    location: str


class PageRow(NamedTuple):
    """One page of the table. (A named tuple: a build makes one a page, twice.)"""

    url: str
    file: str
    content_type: str | None = None
    #: Its own headers (see the manifest), as ``[name, value-or-None]`` pairs.
    headers: tuple[tuple[str, str | None], ...] = ()
    redirect: Redirect | None = None
    live_query: bool = False
    cached: bool = False


def write_pages(
    path: Path, rows: Iterable[PageRow], *, on: PageTable | None = None, without: Iterable[str] = ()
) -> int:
    """Write the table of ``rows`` into a new file at ``path``, in one transaction, as they
    come; return how many pages the table has.

    :param on: a table to start from (a partial build's previous pages), copied as it is,
        less its pages whose URLs are in ``without``: ``rows`` are added to it.
    :raises ValueError: for a row the table refuses (a file outside the client folder, two
        pages with one file), naming the page.
    """
    path.unlink(missing_ok=True)
    if on is not None:
        shutil.copyfile(on.path, path)
    connection = sqlite3.connect(path)
    try:
        # A new file, which goes live (or is dropped) whole once the build is done: no journal.
        connection.execute("PRAGMA journal_mode = OFF")
        connection.execute("PRAGMA synchronous = OFF")
        if on is None:
            connection.execute(_SCHEMA)
        connection.executemany("DELETE FROM pages WHERE url = ?", ((url,) for url in without))
        last: list[PageRow] = []  # the row being inserted, for the error

        def values() -> Iterator[tuple[Any, ...]]:
            for row in rows:
                last[:] = [row]
                yield (
                    row.url,
                    row.file,
                    row.content_type,
                    json.dumps(row.headers, ensure_ascii=False) if row.headers else None,
                    *(row.redirect or (None, None)),
                    int(row.live_query),
                    int(row.cached),
                )

        try:
            connection.executemany("INSERT INTO pages VALUES (?, ?, ?, ?, ?, ?, ?, ?)", values())
        except sqlite3.IntegrityError as error:
            row = last[0]
            raise ValueError(f"{row.url}: its file {row.file!r} cannot be ({error})") from None
        count: int = connection.execute("SELECT count(*) FROM pages").fetchone()[0]
        connection.commit()
    finally:
        connection.close()
    return count


class PageTable:
    """A build's table of pages, opened for reading once a process asks, and never loaded
    whole. One per build; safe to share between threads, and across ``fork`` (a process
    opens its own connection)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._connection: sqlite3.Connection | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def check(self) -> None:
        """Refuse a table this version did not write.

        :raises ValueError: saying why.
        """
        if not self.path.is_file():
            raise ValueError(f"no {self.path.name} beside it")
        try:
            found = self.query("SELECT sql FROM sqlite_master WHERE name = 'pages'")
        except sqlite3.DatabaseError as error:
            raise ValueError(f"{self.path.name} is unreadable ({error})") from None
        if [row[0] for row in found] != [_SCHEMA]:
            raise ValueError(f"{self.path.name} is not a table of pages this version wrote")

    def query(self, sql: str, parameters: tuple[Any, ...] = ()) -> list[Any]:
        with self._lock:
            return self._opened().execute(sql, parameters).fetchall()

    def each(self, sql: str, parameters: tuple[Any, ...] = ()) -> Iterator[Any]:
        """The rows of a query, read a thousand at a time as they are iterated."""
        with self._lock:
            cursor = self._opened().execute(sql, parameters)
        while True:
            with self._lock:
                rows = cursor.fetchmany(1000)
            if not rows:
                return
            yield from rows

    def _opened(self) -> sqlite3.Connection:
        if self._connection is None or self._pid != os.getpid():
            # Read-only and immutable: no locking, and SQLite caches what it read.
            uri = f"{self.path.resolve().as_uri()}?mode=ro&immutable=1"
            self._connection = sqlite3.connect(uri, uri=True, check_same_thread=False)
            self._pid = os.getpid()
        return self._connection

    def rows(self) -> Iterator[PageRow]:
        """Every page, in URL order, read as they are iterated."""
        for row in self.each("SELECT * FROM pages ORDER BY url"):
            yield self.decoded(_page_row, row, row[0])

    def decoded(self, decode: Callable[[Any], T], value: Any, url: str) -> T:
        """``decode(value)``, the value of a row of ``url``.

        :raises ManifestError: naming the table and the page, if the value is not one this
            version wrote.
        """
        try:
            return decode(value)
        except (TypeError, ValueError) as error:
            raise ManifestError(f"{self.path}: {url!r}: {error}") from None

    def files(self) -> Mapping[str, str]:
        """URL -> its file."""
        return _Column(self, "url", "file", lambda row: _file(row[0]))

    def content_types(self) -> Mapping[str, str]:
        """File -> its Content-Type, for each file whose name does not tell it."""
        return _Column(self, "file", "content_type", lambda row: _text(row[0]))

    def headers(self) -> Mapping[str, list[tuple[str, str | None]]]:
        """File -> its own headers, for each file that has some."""
        return _Column(self, "file", "headers", lambda row: list(_headers(row[0])))

    def redirects(self) -> Mapping[str, Redirect]:
        """URL -> its redirect, for each page whose view answered with one."""
        return _Column(self, "url", "redirect_status, redirect_location", _redirect)

    def flagged(self, column: str) -> AbstractSet[str]:
        """The URLs of the pages whose ``column`` (``live_query``, ``cached``) is set."""
        return _Flagged(self, column)


def _page_row(row: tuple[Any, ...]) -> PageRow:
    url, file, content_type, headers, status, location, live_query, cached = row
    return PageRow(
        _text(url),
        _file(file),
        None if content_type is None else _text(content_type),
        _headers(headers),
        None if status is None else _redirect((status, location)),
        bool(live_query),
        bool(cached),
    )


# Each column as it is read, checked again: the table's constraints keep out what a build
# never writes, these what a hand may have put in anyway. Each raises ValueError.


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


def _file(value: Any) -> str:
    if not stays_inside(_text(value)):
        raise ValueError(f"the file {value!r} is outside the client folder")
    return str(value)


def _redirect(row: tuple[Any, ...]) -> Redirect:
    status, location = row
    if not isinstance(status, int) or status not in REDIRECT_STATUSES:
        raise ValueError(f"redirect status {status!r}")
    return Redirect(status, _text(location))


def _headers(value: Any) -> tuple[tuple[str, str | None], ...]:
    if value is None:
        return ()
    pairs = json.loads(_text(value))
    if not isinstance(pairs, list) or not all(
        isinstance(pair, list)
        and len(pair) == 2
        and isinstance(pair[0], str)
        and isinstance(pair[1], (str, type(None)))
        for pair in pairs
    ):
        raise ValueError(f"headers {value!r}")
    return tuple((name, text) for name, text in pairs)


T = TypeVar("T")
V = TypeVar("V")


class _Column(Mapping[str, V], Generic[V]):
    """``key`` -> ``columns`` of the pages that have them (the first is not null), each row
    read by ``decode``. Lookups query the table; iterating reads it (builds do, servers
    don't)."""

    def __init__(
        self, table: PageTable, key: str, columns: str, decode: Callable[[tuple[Any, ...]], V]
    ) -> None:
        #: The table it is a view of.
        self.table = table
        self._key, self._columns, self._decode = key, columns, decode
        self._has = f"{columns.split(',')[0]} IS NOT NULL"
        self._select = f"SELECT {columns} FROM pages WHERE {key} = ? AND {self._has}"

    def __getitem__(self, key: str) -> V:
        found = self.table.query(self._select, (key,))
        if not found:
            raise KeyError(key)
        return self.table.decoded(self._decode, found[0], key)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and bool(self.table.query(self._select, (key,)))

    def __iter__(self) -> Iterator[str]:
        sql = f"SELECT {self._key} FROM pages WHERE {self._has} ORDER BY url"
        return (row[0] for row in self.table.each(sql))

    def __len__(self) -> int:
        count: int = self.table.query(f"SELECT count(*) FROM pages WHERE {self._has}")[0][0]
        return count

    def items(self) -> ItemsView[str, V]:
        return _ColumnItems(self)

    def values(self) -> ValuesView[V]:
        return _ColumnValues(self)

    def _pairs(self) -> Iterator[tuple[str, V]]:
        """Each key and its value, in one query rather than one a key."""
        sql = f"SELECT {self._key}, {self._columns} FROM pages WHERE {self._has} ORDER BY url"
        for row in self.table.each(sql):
            yield row[0], self.table.decoded(self._decode, row[1:], row[0])


class _ColumnItems(ItemsView[str, V]):
    _mapping: _Column[V]

    def __iter__(self) -> Iterator[tuple[str, V]]:
        return self._mapping._pairs()


class _ColumnValues(ValuesView[V]):
    _mapping: _Column[V]

    def __iter__(self) -> Iterator[V]:
        return (value for _, value in self._mapping._pairs())


class _Flagged(AbstractSet[str]):
    """The URLs of the pages with a flag set."""

    @classmethod
    def _from_iterable(cls, urls: Iterable[T]) -> AbstractSet[T]:
        return frozenset(urls)  # what ``|``, ``&`` and ``-`` give: a plain set

    def __init__(self, table: PageTable, column: str) -> None:
        #: The table it is a view of.
        self.table = table
        self._column = column

    def __contains__(self, url: object) -> bool:
        sql = f"SELECT 1 FROM pages WHERE url = ? AND {self._column}"
        return isinstance(url, str) and bool(self.table.query(sql, (url,)))

    def __iter__(self) -> Iterator[str]:
        sql = f"SELECT url FROM pages WHERE {self._column} ORDER BY url"
        return (row[0] for row in self.table.each(sql))

    def __len__(self) -> int:
        count: int = self.table.query(f"SELECT count(*) FROM pages WHERE {self._column}")[0][0]
        return count
