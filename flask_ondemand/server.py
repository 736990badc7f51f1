"""Serving a build: prerendered files first, every other request to the slim app.

This module knows WSGI and WhiteNoise, not Flask: it serves a folder of files and hands what is
not a file to another WSGI app. WhiteNoise answers GET and HEAD for files (ETag, Last-Modified,
304, Range, precompressed ``.gz``/``.br`` siblings). Only the URLs the build's manifest lists
can reach a file; the path of a request is never used to build a file path.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Container, Iterable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from os import PathLike
from pathlib import Path
from typing import Any
from urllib.parse import quote
from wsgiref.headers import Headers

from whitenoise import WhiteNoise
from whitenoise.responders import MissingFileError, NotARegularFileError, StaticFile
from whitenoise.responders import Response as FileResponse
from whitenoise.string_utils import decode_path_info

from .headers import merge_vary
from .layout import type_from_name

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
MethodsFor = Callable[[dict[str, Any]], Iterable[str]]

#: Where a request for a page in ``cached`` carries its file to the app (a :class:`PageFile`).
PAGE_FILE_KEY = "flask_ondemand.page_file"


@dataclass(frozen=True)
class PageFile:
    """A prerendered page's file, handed to the app for a URL whose route is cached: the app
    answers with it until it holds a newer answer (see caching.py)."""

    path: str
    #: Its Content-Type and the headers its page's response carried.
    headers: tuple[tuple[str, str], ...]
    #: When it was written (its mtime): the age of the answer it is.
    modified: float


class SiteServer:
    """A WSGI app serving a build's client folder, and ``app`` for everything else.

    Nothing is read from the folder at start-up, so a server starts as fast for ten thousand
    pages as for ten: the first request for a URL finds its file through ``files`` and reads
    its size and headers once; later requests are one dictionary lookup, as in WhiteNoise.

    :param client_dir: the folder of prerendered files. Give its real path, not a path through
        a symlink that a later build may move.
    :param app: the WSGI app for every request no file answers.
    :param files: URL -> file path in ``client_dir`` (or in ``base_dir``, if ``client_dir``
        lacks it), for every URL a file answers (the manifest's ``files``); nothing else in
        the folders can be reached.
    """

    def __init__(
        self,
        client_dir: str | PathLike[str],
        app: WSGIApp,
        files: Mapping[str, str],
        *,
        # File path (in client_dir) -> Content-Type, for files whose name does not tell it.
        content_types: Mapping[str, str] | None = None,
        # File path -> the headers its page's response carried, sent with the file (and with
        # the page's redirect, for a redirect). Each replaces a default of the same name, but
        # a Vary is merged.
        headers_for: Callable[[str], Iterable[tuple[str, str]]] = lambda file: (),
        # URL -> (status, location), answered for GET and HEAD before any file.
        redirects: Mapping[str, tuple[int, str]] | None = None,
        # The methods ``app`` has a route for at a request's path: decides between handing a
        # POST on a file's URL to ``app`` and answering 405. None: ``app`` has no such routes.
        methods_for: MethodsFor | None = None,
        # Pages change at every deploy, and their ETags make revalidation cheap.
        max_age: int = 0,
        # Where the files ``client_dir`` lacks are: a partial build's base (real path too).
        base_dir: str | PathLike[str] | None = None,
        # URLs whose file answers only without a query string: with one, ``app`` renders them.
        live_query: Container[str] = frozenset(),
        # Whether a request for a file's URL is one ``app`` renders instead (it carries a live
        # cookie): its answer is then Cache-Control: private, with Vary: Cookie.
        renders_live: Callable[[dict[str, Any]], bool] | None = None,
        # URLs of cached routes: their GET and HEAD go to ``app`` with the file as a PageFile
        # in the environ (under PAGE_FILE_KEY), the first answer of a cache that refreshes it.
        cached: Container[str] = frozenset(),
    ) -> None:
        self.app = app
        self.client_dir = Path(client_dir)
        self._roots = [self.client_dir.resolve()]
        if base_dir is not None:
            self._roots.append(Path(base_dir).resolve())
        # Mappings read as asked (a build's table of pages): what a path is, is found once.
        self._urls = files
        self._redirect_of = redirects or {}
        self._max_age = max_age
        self._methods_for = methods_for
        self._live_query = live_query
        self._renders_live = renders_live
        self._cached = cached
        self._headers_for = headers_for
        types = self._types = content_types or {}

        def add_page_headers(file_headers: Any, path: str, url: str) -> None:
            file = self._urls[url]
            if file in types:
                file_headers["Content-Type"] = types[file]
            set_page_headers(file_headers, headers_for(file))

        self._files = _ClientFiles(
            app,
            max_age=max_age,
            # Flask sends no CORS header on pages, so the built site does not either.
            allow_all_origins=False,
            index_file=True,
            add_headers_function=add_page_headers,
        )
        #: PATH_INFO -> what it is, filled as paths are first asked for (misses too, up to a
        #: bound).
        self._paths: dict[str, _Path] = {}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        # By the path as the WSGI server gives it: decoded only the first time it is seen.
        raw = environ.get("PATH_INFO", "")
        known = self._paths.get(raw) or self._learn(raw)
        if known is _NOTHING:  # the common case of an on-demand page: one dict lookup
            return self.app(environ, start_response)
        method = environ.get("REQUEST_METHOD", "GET")
        if method in ("GET", "HEAD"):
            # A live cookie first: the page of a query is that visitor's own too.
            live = self._renders_live
            if known.is_page and live is not None and live(environ):
                return self.app(environ, _private(start_response))
            if known.live_query and environ.get("QUERY_STRING"):
                return self.app(environ, start_response)
            if known.cached:
                if known.page_file is not None:
                    environ[PAGE_FILE_KEY] = known.page_file
                return self.app(environ, start_response)
            if known.responder is not None:
                try:
                    return self._files.serve(known.responder, environ, start_response)
                except FileNotFoundError:  # its build was deleted since: nothing sent yet
                    self._paths.pop(raw, None)
        elif known.is_page:
            allowed = set(self._methods_for(environ)) if self._methods_for else set()
            if method not in allowed:
                return _answer_file_methods(method, allowed, start_response)
        return self.app(environ, start_response)

    def _learn(self, raw: str) -> _Path:
        """Find, once, what a path (``PATH_INFO``, as WSGI gives it) is: a redirect, a file,
        Flask's redirect of a folder's URL without its slash, or nothing of the build's."""
        if len(self._paths) >= _PATHS_KEPT:  # random paths must not grow it without end
            self._paths.clear()
        url = decode_path_info(raw)
        redirect = self._redirect_of.get(url)
        file = self._urls.get(url)
        known = _NOTHING
        if redirect is not None:
            status, location = redirect
            responder = _Redirect(
                HTTPStatus(status),
                location,
                max_age=self._max_age,
                headers=self._headers_for(file or ""),
            )
            known = _Path(is_page=True, responder=responder)
        elif file is not None:
            live_query = url in self._live_query
            if url in self._cached:
                known = _Path(True, live_query=live_query, cached=True)
                known.page_file = self._page_file(file)
            else:
                known = _Path(True, live_query=live_query, responder=self._file_responder(url))
        elif url + "/" in self._urls:
            known = _Path(is_page=False, responder=self._files.redirect(url, url + "/"))
        self._paths[raw] = known
        return known

    def _file_responder(self, url: str) -> Any:
        """The responder of a page's file, or None if it is gone since the build (the app
        answers, with its 404)."""
        for root in self._roots:
            try:
                return self._files.get_static_file(str(root / self._urls[url]), url)
            except NotARegularFileError:
                continue
        return None

    def _page_file(self, file: str) -> PageFile | None:
        """The file of a cached URL; None if it is gone (the app renders it)."""
        for root in self._roots:
            try:
                modified = os.stat(root / file).st_mtime
            except OSError:
                continue
            headers = Headers([("Content-Type", self._types.get(file) or _type_of(file))])
            set_page_headers(headers, self._headers_for(file))
            return PageFile(str(root / file), tuple(headers.items()), modified)
        return None


#: How many paths a server remembers what they are, before it starts again.
_PATHS_KEPT = 100_000


@dataclass(eq=False)
class _Path:
    """What a request's path is, for a build's server."""

    #: A URL of the build's (a file, or a redirect): a method a file cannot answer is a 405
    #: there, unless the app takes it; a live cookie may render it.
    is_page: bool
    #: With a query string, the app renders it (``prerender(live_query=True)``).
    live_query: bool = False
    #: The app answers it, from the route cache, with its file as the first entry.
    cached: bool = False
    page_file: PageFile | None = None
    #: What answers a GET or a HEAD: a file, a redirect; None: the app.
    responder: Any = None


#: A path that is nothing of the build's: the app answers every request for it.
_NOTHING = _Path(is_page=False)


def _private(start_response: Callable[..., Any]) -> Callable[..., Any]:
    """A ``start_response`` that makes an answer personal: ``Cache-Control: private`` (in place
    of ``public``, with the view's other directives) and ``Cookie`` in ``Vary``."""

    def start_private(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        control = [v for name, v in headers if name.lower() == "cache-control"]
        vary = [v for name, v in headers if name.lower() == "vary"]
        directives = [
            d.strip()
            for value in control
            for d in value.split(",")
            if d.strip() and d.strip().lower() not in ("public", "private")
        ]
        kept = [(n, v) for n, v in headers if n.lower() not in ("cache-control", "vary")]
        kept += [
            ("Cache-Control", ", ".join(["private", *directives])),
            ("Vary", merge_vary(*vary, "Cookie")),
        ]
        return start_response(status, kept, exc_info)

    return start_private


def _answer_file_methods(
    method: str, app_methods: set[str], start_response: Callable[..., Any]
) -> list[bytes]:
    """Answer OPTIONS, or 405, for a method neither the file nor the app handles at a URL."""
    allow = ", ".join(sorted(app_methods | {"GET", "HEAD", "OPTIONS"}))
    if method == "OPTIONS":
        start_response("200 OK", [("Allow", allow), ("Content-Length", "0")])
        return []
    body = f"{method} is not allowed here. Allowed: {allow}.\n".encode()
    start_response(
        "405 Method Not Allowed",
        [
            ("Allow", allow),
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
        ],
    )
    return [body]


def set_page_headers(headers: Headers, pairs: Iterable[tuple[str, str]]) -> None:
    """Give ``headers`` those a page's response carried: each replaces a default of the same
    name, but a ``Vary`` is merged with the one there (``Accept-Encoding``)."""
    pairs = list(pairs)
    for name in {name.lower() for name, _ in pairs} - {"vary"}:
        del headers[name]
    for name, value in pairs:
        if name.lower() == "vary" and (vary := headers["Vary"]) is not None:
            headers["Vary"] = merge_vary(vary, value)
        else:
            headers.add_header(name, value)


class _PageFile(StaticFile):  # type: ignore[misc]
    """WhiteNoise's file responder, keeping a page's own ``Vary``: WhiteNoise sets ``Vary:
    Accept-Encoding`` on a file with precompressed siblings, over any other."""

    def get_headers(self, headers_list: list[tuple[str, str]], files: dict[Any, Any]) -> Any:
        page_vary = [value for name, value in headers_list if name.lower() == "vary"]
        headers = super().get_headers(headers_list, files)
        if page_vary:
            headers["Vary"] = merge_vary(*page_vary, headers["Vary"])
        return headers


class _ClientFiles(WhiteNoise):  # type: ignore[misc]  # WhiteNoise ships no types
    """WhiteNoise, with Flask's answers where they differ: 308 for a folder's URL without its
    slash (WhiteNoise sends 302), ``charset=utf-8`` unquoted, as Werkzeug writes it, and a
    page's own ``Vary`` kept."""

    def get_static_file(self, path: str, url: str, stat_cache: Any = None) -> _PageFile:
        # WhiteNoise's own, making a _PageFile: it has no other way to choose the responder.
        if stat_cache is None and not os.path.exists(path):
            raise MissingFileError(path)
        headers = Headers([])
        self.add_mime_headers(headers, path, url)
        self.add_cache_headers(headers, path, url)
        self.add_headers_function(headers, path, url)
        encodings = {"gzip": path + ".gz", "br": path + ".br"}
        return _PageFile(path, headers.items(), stat_cache=stat_cache, encodings=encodings)

    def add_mime_headers(self, headers: Any, path: str, url: str) -> None:
        media_type = self.media_types.get_type(path)
        if media_type.startswith("text/"):
            media_type += f"; charset={self.charset}"
        headers["Content-Type"] = media_type

    def redirect(self, from_url: str, to_url: str) -> _Redirect:
        relative = "./" if to_url + "index.html" == from_url else from_url.split("/")[-1] + "/"
        return _Redirect(
            HTTPStatus.PERMANENT_REDIRECT, quote(relative), max_age=self.max_age, keep_query=True
        )


class _Redirect:
    """A WhiteNoise responder for a redirect."""

    def __init__(
        self,
        status: HTTPStatus,
        location: str,
        *,
        max_age: int,
        keep_query: bool = False,
        # What the redirecting page's response carried besides its Location.
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        self.status = status
        self.location = location
        self.keep_query = keep_query
        defaults = Headers([("Cache-Control", f"max-age={max_age}, public")])
        set_page_headers(defaults, headers)
        self.headers = defaults.items()

    def get_response(self, method: str, environ: Mapping[str, Any]) -> FileResponse:
        location = self.location
        query = environ.get("QUERY_STRING", "")
        if self.keep_query and query:
            # WSGI hands the query over as Latin-1 decoded bytes: quote those bytes.
            location += "?" + quote(query.encode("latin-1"), safe="=&;%+/:@!$'()*,~")
        headers = [*self.headers, ("Location", location), ("Content-Length", "0")]
        return FileResponse(self.status, headers, None)


def _type_of(file: str) -> str:
    """The Content-Type WhiteNoise gives a file by its name, with Werkzeug's charset."""
    media_type = type_from_name(file)
    return media_type + "; charset=utf-8" if media_type.startswith("text/") else media_type
