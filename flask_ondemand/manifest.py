"""The build manifest: what a build holds, for the server and for adapters.

``manifest.json`` sits beside the build's ``client/`` folder, and the table of its pages,
``pages.sqlite`` (see pagetable.py), beside it. Format (version 3)::

    {
      "format": 3,
      "app": {"import": "example_app:create_app()", "project_root": ".."},
      "pages": 10004,
      "site_headers": [["Content-Security-Policy", "default-src 'self'"]],
      "cdn_cache_headers": [["Netlify-CDN-Cache-Control", "durable"]],
      "prerendered": [{"rule": "/", "endpoint": "index", "methods": ["GET"], "live_query": true,
                       "query_keys": ["page"]},
                      {"rule": "/blog/<slug>/", "endpoint": "blog.post", "methods": ["GET"]},
                      {"rule": "/prices/", "endpoint": "prices", "methods": ["GET"],
                       "cache": {"max_age": 60, "swr": 600}}],
      "on_demand": [{"rule": "/login", "endpoint": "login", "methods": ["GET", "POST"]}]
    }

- ``app``: how ``DIR/server.py`` imports the app (``flask --app`` syntax, or null for Flask's
  ``wsgi.py``/``app.py`` discovery), and the project folder relative to ``DIR``.
- ``pages``: how many pages the table holds. Each page (a row) has:

  - its URL and its file, the file's path inside ``client/`` (for a partial build, inside
    ``base-client/`` when its own ``client/`` does not have it): :attr:`Manifest.files`;
  - the file's Content-Type if its name does not tell it: :attr:`Manifest.content_types`;
  - its own headers: :attr:`Manifest.headers`, below;
  - its redirect, if its view answered with one: :attr:`Manifest.redirects`;
  - whether it is a page of a ``prerender(live_query=True)`` route, whose file answers the
    bare URL while the same URL with a query string goes to the app
    (:attr:`Manifest.live_query`), or of a route marked ``cache``, whose file is only the first
    answer of the route cache, which the app refreshes (:attr:`Manifest.cached`).
- ``site_headers`` and a page's own headers: the headers each page's response carried (from
  the view, its ``Response``, ``response.headers`` or an ``after_request`` hook), to send with
  its file, less those a file server computes itself (see ``render.NOT_KEPT_HEADERS``). What
  most files carry is written once, in ``site_headers``: a site's security headers, say (a
  partial build keeps the previous build's). A page's own headers are what it has otherwise, by
  header name: its values of a name replace the site's values of that name, and ``null`` means
  it has none of them.
- ``cdn_cache_headers``: the headers the host's CDN reads a cached route's sharing from, each
  with directives of its own (written by the build's adapter; the server sends them).
- ``prerendered`` and ``on_demand``: the URL rules, as Werkzeug writes them, with the methods
  the view declares (HEAD and OPTIONS are implied), and ``live_query``, ``fallback``,
  ``live_cookies`` and ``cache`` (the ``cache()`` mark's ``max_age`` and ``swr``) where they
  are not false, "404", false and none. A ``live_query`` rule has ``query_keys`` too, the
  query parameters its pages looked up while they were built (a query without any of them
  gives the page its file holds), unless a page read its query whole (iterated
  ``request.args``, read ``request.url``): for hosts that route a query by its keys.

Every file path must stay inside the client folder; a manifest naming one outside it is refused
as corrupt. Formats 1 and 2, which held the pages in the JSON (``files``, ``content_types``,
``headers``, ``redirects``, ``live_query`` and ``cached``), are still read; format 1 has no
``site_headers``.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import ManifestError
from .layout import stays_inside
from .marks import FALLBACKS
from .pagetable import PAGES_NAME, REDIRECT_STATUSES, PageRow, PageTable, write_pages
from .pagetable import Redirect as Redirect

MANIFEST_NAME = "manifest.json"
FORMAT = 3
#: The formats this version reads: 1 and 2 hold the pages in the JSON; 1 has no site headers.
READABLE_FORMATS = (1, 2, 3)

Header = tuple[str, str]
#: A file's own header: a value, or None for "none of the site's headers of this name".
OwnHeader = tuple[str, str | None]


@dataclass(frozen=True)
class Caching:
    """A route's ``cache(max_age, swr)``, for what serves it (hosts' caches too)."""

    max_age: int
    swr: int = 0


@dataclass(frozen=True)
class RuleEntry:
    rule: str
    endpoint: str
    methods: list[str]
    #: A prerendered rule whose URLs with a query string render on demand.
    live_query: bool = False
    #: A prerendered rule's answer for a URL the build did not produce: "404" or "live".
    fallback: str = "404"
    #: A prerendered rule whose URLs render on demand for a request with a live cookie.
    live_cookies: bool = False
    #: The route's ``cache()`` mark, if it has one.
    cache: Caching | None = None
    #: A ``live_query`` rule's query parameters its pages looked up while they were built,
    #: sorted; None when one read its query whole, or the build did not say.
    query_keys: tuple[str, ...] | None = None

    @property
    def routable(self) -> bool:
        """Whether a prerendered rule still takes requests in the slim app: for its URLs with
        a query string or a live cookie, those the build did not produce, or to refresh a
        cached page."""
        return (
            self.live_query
            or self.fallback == "live"
            or self.live_cookies
            or self.cache is not None
        )


@dataclass
class Manifest:
    """A build's manifest. The build makes one in memory; :meth:`read` gives one whose pages
    (``files`` to ``cached``) are read-only views of the build's table, read as asked."""

    app_import: str | None
    project_root: str
    #: URL -> its file, for every URL a file answers.
    files: Mapping[str, str] = field(default_factory=dict)
    #: File -> its Content-Type, for each file whose name does not tell it.
    content_types: Mapping[str, str] = field(default_factory=dict)
    #: Headers every file is sent with, unless its own ``headers`` name them.
    site_headers: list[Header] = field(default_factory=list)
    #: File -> its own headers, which replace the site's of the same name (see above).
    headers: Mapping[str, list[OwnHeader]] = field(default_factory=dict)
    redirects: Mapping[str, Redirect] = field(default_factory=dict)
    #: URLs whose file is for the bare URL only: with a query string, the app renders them.
    live_query: AbstractSet[str] = field(default_factory=set)
    #: URLs whose file is only the first answer of a cached route: the app refreshes them.
    cached: AbstractSet[str] = field(default_factory=set)
    #: (header, directives): where the host's CDN reads a cached answer's sharing from.
    cdn_cache_headers: list[Header] = field(default_factory=list)
    prerendered: list[RuleEntry] = field(default_factory=list)
    on_demand: list[RuleEntry] = field(default_factory=list)

    def prerendered_routes(self) -> set[tuple[str, str]]:
        """The prerendered rules as ``(rule, endpoint)`` pairs: what tells two builds' code
        apart, for a server or a partial build."""
        return {(entry.rule, entry.endpoint) for entry in self.prerendered}

    def headers_for(self, file: str) -> list[Header]:
        """Every header ``file`` is sent with: the site's, less those its own replace, then
        its own."""
        return self.every_header(self.headers.get(file, ()))

    def every_header(self, own: Sequence[OwnHeader]) -> list[Header]:
        """Every header of a file whose own headers are ``own`` (see :meth:`headers_for`)."""
        if not own:
            return list(self.site_headers)
        names = {name.lower() for name, _ in own}
        return [
            *(pair for pair in self.site_headers if pair[0].lower() not in names),
            *((name, value) for name, value in own if value is not None),
        ]

    def set_headers(self, headers_of: Mapping[str, Sequence[Header]]) -> None:
        """Set the headers of every file from ``headers_of`` (file -> all its headers; a file
        it does not list has none). Those most files have are stored once, in
        ``site_headers``; each file keeps the rest as its own."""
        files = list(dict.fromkeys(self.files.values()))
        self.site_headers = site_headers_of(Counter(tuple(headers_of.get(f, ())) for f in files))
        site = by_name(self.site_headers)
        self.headers = {}
        for file in files:
            if own := own_headers(headers_of.get(file, ()), site):
                self.headers[file] = own

    def to_json(self, pages: int | None = None) -> str:
        """The JSON part of the manifest: all but the pages, which :meth:`page_rows` gives;
        ``pages`` says how many there are (by default, as many as :attr:`files` has)."""
        data = {
            "format": FORMAT,
            "app": {"import": self.app_import, "project_root": self.project_root},
            "pages": len(self.files) if pages is None else pages,
            "site_headers": [list(pair) for pair in self.site_headers],
            "cdn_cache_headers": [list(pair) for pair in self.cdn_cache_headers],
            "prerendered": [_rule_data(entry) for entry in self.prerendered],
            "on_demand": [_rule_data(entry) for entry in self.on_demand],
        }
        return json.dumps(data, indent=1, ensure_ascii=False) + "\n"

    def page_rows(self) -> Iterator[PageRow]:
        """The manifest's pages, as the table holds them.

        :raises ValueError: see :meth:`check_pages`.
        """
        table = self.table()
        if table is not None:
            yield from table.rows()
            return
        self.check_pages()
        for url, file in self.files.items():
            yield PageRow(
                url,
                file,
                self.content_types.get(file),
                tuple(self.headers.get(file, ())),
                self.redirects.get(url),
                url in self.live_query,
                url in self.cached,
            )

    def check_pages(self) -> None:
        """Check that every page has a file of its own, and that nothing belongs to no page.

        :raises ValueError: for two pages with one file, or a type or headers of a file no
            page has, or a redirect or a flag of a URL that is no page.
        """
        files: dict[str, str] = {}
        for url, file in self.files.items():
            if file in files:
                raise ValueError(f"{files[file]} and {url} have one file, {file!r}")
            files[file] = url
        strays = [file for file in [*self.content_types, *self.headers] if file not in files]
        strays += [
            url
            for url in [*self.redirects, *self.live_query, *self.cached]
            if url not in self.files
        ]
        if strays:
            raise ValueError(f"{strays[0]!r} belongs to no page")

    def write(
        self,
        path: Path,
        pages: Iterable[PageRow] | None = None,
        *,
        on: PageTable | None = None,
        without: Iterable[str] = (),
    ) -> None:
        """Write ``manifest.json`` at ``path``, and its table of pages beside it: ``pages``,
        read as they come, or by default this manifest's (see :meth:`page_rows`).

        :param on: with ``pages``, a table they are added to, less its pages of ``without``
            (see :func:`~flask_ondemand.pagetable.write_pages`).
        :raises ManifestError: for a page the table refuses.
        """
        table_path = path.with_name(PAGES_NAME)
        table = self.table()
        try:
            if pages is None and table is not None:  # a build's, as it is: a copy will do
                if table.path.resolve() != table_path.resolve():
                    shutil.copyfile(table.path, table_path)
                count = len(self.files)
            else:
                rows = self.page_rows() if pages is None else pages
                count = write_pages(table_path, rows, on=on, without=without)
        except ValueError as error:
            raise ManifestError(f"{path}: cannot write the pages: {error}") from None
        path.write_text(self.to_json(count), encoding="utf-8")

    def table(self) -> PageTable | None:
        """The table the pages are all views of, if they are (a manifest read, as it was)."""
        table = getattr(self.files, "table", None)
        views = (self.content_types, self.headers, self.redirects, self.live_query, self.cached)
        if table is None or any(getattr(view, "table", None) is not table for view in views):
            return None
        assert isinstance(table, PageTable)
        return table

    @classmethod
    def read(cls, path: Path) -> Manifest:
        """Read and check a manifest; any problem is a :class:`ManifestError` naming the file."""
        # Through DIR/manifest.json's link, once: its table is the one beside the same build's
        # JSON, even when a new build goes live in between.
        real = path.resolve()
        try:
            data = json.loads(real.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ManifestError(
                f"{path}: no manifest. Run `flask ondemand build` to make a build."
            ) from None
        except (OSError, UnicodeDecodeError, ValueError) as error:
            raise ManifestError(f"{path}: unreadable manifest ({error})") from None
        try:
            if isinstance(data, dict) and data.get("format") == FORMAT:
                return cls._from_table(data, PageTable(real.with_name(PAGES_NAME)))
            return cls._from_data(data)
        except KeyError as error:
            raise ManifestError(f"{path}: not a flask_ondemand manifest (no {error})") from None
        except (TypeError, ValueError, AttributeError) as error:
            raise ManifestError(f"{path}: not a flask_ondemand manifest ({error})") from None

    @classmethod
    def _from_table(cls, data: Any, table: PageTable) -> Manifest:
        """A format 3 manifest: the JSON's parts, and views of its table of pages."""
        table.check()
        app = data["app"]
        return cls(
            app_import=_optional_str(app["import"]),
            project_root=_str(app["project_root"]),
            files=table.files(),
            content_types=table.content_types(),
            site_headers=_header_list(data["site_headers"]),
            headers=table.headers(),
            redirects=table.redirects(),
            live_query=table.flagged("live_query"),
            cached=table.flagged("cached"),
            cdn_cache_headers=_header_list(data.get("cdn_cache_headers", [])),
            prerendered=[_rule_entry(entry) for entry in data["prerendered"]],
            on_demand=[_rule_entry(entry) for entry in data["on_demand"]],
        )

    @classmethod
    def _from_data(cls, data: Any) -> Manifest:
        """A format 1 or 2 manifest, whose pages are in its JSON."""
        if data.get("format") not in READABLE_FORMATS:
            raise ValueError(
                f"format {data.get('format')!r}; this flask_ondemand reads formats"
                f" {', '.join(map(str, READABLE_FORMATS[:-1]))} and {READABLE_FORMATS[-1]}."
                " Rebuild with this version."
            )
        app = data["app"]
        manifest = cls(
            app_import=_optional_str(app["import"]),
            project_root=_str(app["project_root"]),
            files={_str(url): _str(file) for url, file in data["files"].items()},
            content_types={_str(f): _str(t) for f, t in data["content_types"].items()},
            site_headers=_header_list(data.get("site_headers", [])),
            headers={  # a file with no headers of its own is one without an entry
                _str(file): own
                for file, pairs in data["headers"].items()
                if (own := _own_header_list(pairs))
            },
            redirects={
                _str(url): Redirect(int(r["status"]), _str(r["location"]))
                for url, r in data["redirects"].items()
            },
            live_query={_str(url) for url in data.get("live_query", [])},
            cached={_str(url) for url in data.get("cached", [])},
            cdn_cache_headers=_header_list(data.get("cdn_cache_headers", [])),
            prerendered=[_rule_entry(entry) for entry in data["prerendered"]],
            on_demand=[_rule_entry(entry) for entry in data["on_demand"]],
        )
        for url, redirect in manifest.redirects.items():
            if redirect.status not in REDIRECT_STATUSES:
                raise ValueError(f"redirect status {redirect.status} for {url}")
        for file in [*manifest.files.values(), *manifest.content_types, *manifest.headers]:
            if not stays_inside(file):
                raise ValueError(f"the file {file!r} is outside the client folder")
        manifest.check_pages()
        return manifest


def by_name(pairs: Iterable[Header]) -> dict[str, tuple[Header, ...]]:
    """Headers grouped by name, case aside, each name's values in order."""
    grouped: dict[str, tuple[Header, ...]] = {}
    for name, value in pairs:
        grouped[name.lower()] = (*grouped.get(name.lower(), ()), (name, value))
    return grouped


def site_headers_of(files_with: Mapping[tuple[Header, ...], int]) -> list[Header]:
    """The site's headers, from how many files are sent with each set of headers: for each
    header name, the values more than half of the files have, if any, by name, whichever
    order the files come in."""
    count = sum(files_with.values())
    tallies: dict[str, dict[tuple[Header, ...], int]] = {}
    for pairs, files in files_with.items():
        for key, values in by_name(pairs).items():
            tally = tallies.setdefault(key, {})
            tally[values] = tally.get(values, 0) + files
    site: list[Header] = []
    for _, tally in sorted(tallies.items()):
        values, held_by = max(tally.items(), key=lambda item: item[1])
        if held_by * 2 > count:
            site += values
    return site


def own_headers(pairs: Iterable[Header], site: Mapping[str, tuple[Header, ...]]) -> list[OwnHeader]:
    """What a file whose headers are ``pairs`` has of its own, beside the site's headers
    (as :func:`by_name` groups them): its values of a name the site has none or others of,
    and None for a name of the site's it has none of."""
    values = by_name(pairs)
    own: list[OwnHeader] = []
    for key in [*values, *(key for key in site if key not in values)]:
        if values.get(key) != site.get(key):
            own += values[key] if key in values else [(site[key][0][0], None)]
    return own


def _header_list(pairs: Any) -> list[Header]:
    return [(_str(name), _str(value)) for name, value in pairs]


def _own_header_list(pairs: Any) -> list[OwnHeader]:
    return [(_str(name), _optional_str(value)) for name, value in pairs]


def _rule_entry(data: Any) -> RuleEntry:
    methods = [_str(method) for method in data["methods"]]
    live_query = data.get("live_query", False)
    fallback = _str(data.get("fallback", "404"))
    if fallback not in FALLBACKS:
        raise ValueError(f"fallback {fallback!r} for {data['rule']}")
    live_cookies = data.get("live_cookies", False)
    if not isinstance(live_query, bool) or not isinstance(live_cookies, bool):
        raise TypeError(f"expected true or false, got {live_query!r}, {live_cookies!r}")
    caching = data.get("cache")
    if caching is not None:
        caching = Caching(_seconds(caching["max_age"]), _seconds(caching.get("swr", 0)))
    query_keys = data.get("query_keys")
    if query_keys is not None:
        query_keys = tuple(_str(key) for key in query_keys)
    return RuleEntry(
        _str(data["rule"]),
        _str(data["endpoint"]),
        methods,
        live_query=live_query,
        fallback=fallback,
        live_cookies=live_cookies,
        cache=caching,
        query_keys=query_keys,
    )


def _seconds(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TypeError(f"expected a number of seconds, got {value!r}")
    return value


def _rule_data(entry: RuleEntry) -> dict[str, Any]:
    data = asdict(entry)
    # What most rules have is not written, as in format 1.
    for key, usual in (
        ("live_query", False),
        ("fallback", "404"),
        ("live_cookies", False),
        ("cache", None),
        ("query_keys", None),
    ):
        if data[key] == usual:
            del data[key]
    return data


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


def _optional_str(value: Any) -> str | None:
    return None if value is None else _str(value)
