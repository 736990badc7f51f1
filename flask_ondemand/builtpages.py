"""The pages a freeze wrote, kept in a temporary SQLite database rather than in memory.

A build needs, at its end, what it learned of every page (its file, type, headers, redirect):
for the manifest, for checking that no two pages want one file, and for clearing what it did
not write. Held in dicts, that was most of a 100,000-page build's memory; here it is rows of a
private database on disk, which SQLite deletes when it is closed, read a row at a time.

The database is opened when the first page is added: after the render workers are forked,
since an SQLite connection must not cross a fork.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Container, ItemsView, Iterator, Mapping, ValuesView
from typing import Any, NamedTuple

from .render import BuiltPage

_SCHEMA = """
CREATE TABLE pages (
    url TEXT PRIMARY KEY,
    file TEXT NOT NULL,
    content_type TEXT,
    redirect_status INTEGER,
    redirect_location TEXT,
    headers TEXT,
    kept INTEGER NOT NULL,
    compressed TEXT NOT NULL,
    live_query INTEGER NOT NULL,
    endpoint TEXT,
    query_keys TEXT
) WITHOUT ROWID;
-- Each page's file and its precompressed siblings: two pages must not share one name.
CREATE TABLE names (name TEXT PRIMARY KEY, url TEXT NOT NULL) WITHOUT ROWID;
-- A page's file is named by the statement that adds the page: one statement a page, for most.
CREATE TRIGGER page_file AFTER INSERT ON pages BEGIN
    INSERT INTO names VALUES (NEW.file, NEW.url);
END;
"""
_COLUMNS = (
    "url, file, content_type, redirect_status, redirect_location, headers, kept, compressed,"
    " live_query, endpoint, query_keys"
)


# How many distinct header columns :meth:`BuiltPages.rendered_rows` keeps decoded at once.
_DECODED_KEPT = 1024


class RenderedRow(NamedTuple):
    """A page rendered now, as :meth:`BuiltPages.rendered_rows` gives it."""

    url: str
    file: str
    content_type: str | None
    redirect: tuple[int, str] | None
    headers: tuple[tuple[str, str], ...]
    live_query: bool
    endpoint: str | None


class NameTaken(Exception):
    """A page's file, or one of its siblings, is another page's."""

    def __init__(self, name: str, owner: str) -> None:
        super().__init__(f"its file {name!r} is also that of {owner}")
        self.name, self.owner = name, owner


class BuiltPages(Mapping[str, BuiltPage]):
    """URL -> :class:`BuiltPage` of every page a freeze wrote, in URL order."""

    def __init__(self) -> None:
        self._db: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            # "": a private database in a temporary file, deleted on close. Nobody else reads
            # it, so one transaction that is never committed holds it all: nothing needs to
            # reach the disk in any order.
            self._db = sqlite3.connect("", isolation_level=None)
            self._db.executescript(_SCHEMA)
            self._db.execute("BEGIN")
        return self._db

    def add(self, url: str, page: BuiltPage) -> None:
        """Record ``page``, a new URL's.

        :raises NameTaken: if its file or a sibling is another page's; nothing is recorded.
        """
        db = self._connection()
        name = page.file  # a name the renderer checked: as the file system sees it
        try:
            db.execute(
                f"INSERT INTO pages ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                _row(url, page),
            )
            for name in page.files()[1:]:  # its siblings
                db.execute("INSERT INTO names VALUES (?, ?)", (name, url))
        except sqlite3.IntegrityError:
            owner = self.owner_of(name)
            db.execute("DELETE FROM names WHERE url = ?", (url,))
            db.execute("DELETE FROM pages WHERE url = ?", (url,))
            raise NameTaken(name, owner or "?") from None

    def replace(self, url: str, page: BuiltPage) -> None:
        """Record ``page`` as ``url``'s, in place of what it had (see :meth:`add`)."""
        db = self._connection()
        db.execute("DELETE FROM names WHERE url = ?", (url,))
        db.execute("DELETE FROM pages WHERE url = ?", (url,))
        self.add(url, page)

    def owner_of(self, name: str) -> str | None:
        """The URL whose file (or sibling) ``name`` is, if any."""
        if self._db is None:
            return None
        found = self._db.execute("SELECT url FROM names WHERE name = ?", (name,)).fetchone()
        return None if found is None else str(found[0])

    def names(self) -> Container[str]:
        """Every page's file and its precompressed siblings."""
        return _Names(self)

    def folders(self) -> Iterator[tuple[str, str]]:
        """``(url, file)`` of each page whose file is the folder of another page's file."""
        if self._db is None:
            return iter(())
        # Names inside folder F sort from "F/" up to "F0" ("0" follows "/").
        return iter(
            self._db.execute(
                "SELECT url, file FROM pages AS p WHERE EXISTS (SELECT 1 FROM names"
                " WHERE name >= p.file || '/' AND name < p.file || '0') ORDER BY url"
            ).fetchall()
        )

    def count_rendered(self) -> int:
        """How many pages were rendered now, rather than kept from an earlier build."""
        if self._db is None:
            return 0
        count: int = self._db.execute("SELECT count(*) FROM pages WHERE NOT kept").fetchone()[0]
        return count

    def any_kept(self) -> bool:
        """Whether a page's file was kept from an earlier build rather than rendered."""
        return self._db is not None and bool(
            self._db.execute("SELECT 1 FROM pages WHERE kept LIMIT 1").fetchone()
        )

    def live_query_pages(self) -> Iterator[BuiltPage]:
        """The pages of ``prerender(live_query=True)`` routes, in URL order."""
        if self._db is None:
            return
        yield from map(
            _page, self._db.execute(f"SELECT {_COLUMNS} FROM pages WHERE live_query ORDER BY url")
        )

    def items_where(self, *, kept: bool) -> Iterator[tuple[str, BuiltPage]]:
        """The pages whose files were kept from an earlier build (or those rendered now), as
        :meth:`items` gives them."""
        for row in self._rows(_COLUMNS, "WHERE kept" if kept else "WHERE NOT kept"):
            yield row[0], _page(row)

    def rendered_rows(self) -> Iterator[RenderedRow]:
        """What a manifest needs of each page rendered now, in URL order, read without making
        a :class:`BuiltPage` of each: a build's every page passes here."""
        columns = "url, file, content_type, redirect_status, redirect_location, headers,"
        columns += " live_query, endpoint"
        decoded: dict[str, tuple[tuple[str, str], ...]] = {}  # most pages share a few
        rows = self._rows(columns, "WHERE NOT kept")
        for url, file, content_type, status, location, text, live_query, endpoint in rows:
            headers = () if text is None else decoded.get(text)
            if headers is None:
                if len(decoded) >= _DECODED_KEPT:
                    decoded.clear()
                headers = _headers(text)
                decoded[text] = headers
            redirect = None if status is None else (status, location)
            yield RenderedRow(
                url, file, content_type, redirect, headers, bool(live_query), endpoint
            )

    def header_sets(self) -> Iterator[tuple[tuple[tuple[str, str], ...], int]]:
        """Each set of headers pages rendered now are sent with, and how many pages have it,
        counted by the table: most pages share a few."""
        if self._db is None:
            return
        found = self._db.execute("SELECT headers, count(*) FROM pages WHERE NOT kept GROUP BY 1")
        for headers, count in found:
            yield _headers(headers), count

    def has_inside(self, folder: str) -> bool:
        """Whether a page's file (or sibling) is inside ``folder``."""
        if self._db is None:
            return False
        found = self._db.execute(
            "SELECT 1 FROM names WHERE name >= ? AND name < ? LIMIT 1",
            (folder + "/", folder + "0"),
        )
        return found.fetchone() is not None

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def __getitem__(self, url: str) -> BuiltPage:
        found = None
        if self._db is not None:
            found = self._db.execute(
                f"SELECT {_COLUMNS} FROM pages WHERE url = ?", (url,)
            ).fetchone()
        if found is None:
            raise KeyError(url)
        return _page(found)

    def __contains__(self, url: object) -> bool:
        if self._db is None or not isinstance(url, str):
            return False
        return self._db.execute("SELECT 1 FROM pages WHERE url = ?", (url,)).fetchone() is not None

    def __iter__(self) -> Iterator[str]:
        for (url,) in self._rows("url"):
            yield url

    def __len__(self) -> int:
        if self._db is None:
            return 0
        count: int = self._db.execute("SELECT count(*) FROM pages").fetchone()[0]
        return count

    def items(self) -> ItemsView[str, BuiltPage]:
        return _Items(self)

    def values(self) -> ValuesView[BuiltPage]:
        return _Values(self)

    def _rows(self, columns: str, where: str = "") -> Iterator[tuple[Any, ...]]:
        """The pages' ``columns`` (of those ``where`` picks), in URL order, read as they are
        iterated."""
        if self._db is None:
            return
        # A cursor of its own, read a row at a time: the table is not loaded whole.
        yield from self._db.execute(f"SELECT {columns} FROM pages {where} ORDER BY url")


class _Items(ItemsView[str, BuiltPage]):
    _mapping: BuiltPages

    def __iter__(self) -> Iterator[tuple[str, BuiltPage]]:
        for row in self._mapping._rows(_COLUMNS):
            yield row[0], _page(row)


class _Values(ValuesView[BuiltPage]):
    _mapping: BuiltPages

    def __iter__(self) -> Iterator[BuiltPage]:
        for row in self._mapping._rows(_COLUMNS):
            yield _page(row)


class _Names(Container[str]):
    def __init__(self, pages: BuiltPages) -> None:
        self._pages = pages

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._pages.owner_of(name) is not None


def _row(url: str, page: BuiltPage) -> tuple[Any, ...]:
    status, location = page.redirect or (None, None)
    return (
        url,
        page.file,
        page.content_type,
        status,
        location,
        json.dumps(page.headers, ensure_ascii=False) if page.headers else None,
        int(page.kept),
        " ".join(page.compressed),
        int(page.live_query),
        page.endpoint,
        None if page.query_keys is None else json.dumps(page.query_keys),
    )


def _page(row: tuple[Any, ...]) -> BuiltPage:
    (
        _,
        file,
        content_type,
        status,
        location,
        headers,
        kept,
        compressed,
        live_query,
        endpoint,
        query_keys,
    ) = row
    return BuiltPage(
        file,
        content_type,
        None if status is None else (status, location),
        _headers(headers),
        bool(kept),
        tuple(compressed.split()),
        bool(live_query),
        endpoint,
        None if query_keys is None else tuple(json.loads(query_keys)),
    )


def _headers(column: str | None) -> tuple[tuple[str, str], ...]:
    return tuple((name, value) for name, value in json.loads(column)) if column else ()
