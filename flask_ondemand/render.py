"""Rendering prerendered pages into files: the build's engine, in one process or several.

A page is rendered by calling the app's ``wsgi_app`` with a prepared environ, as a server
would: each page gets its own request and app context (its own ``flask.g``, its own
teardowns), its ``url_for`` calls are recorded as the URLs they built (so discovery needs no
replay), and what it reads of its request is recorded (see safety.py).

With ``jobs`` above 1, the URLs are rendered by worker processes forked after the app is
loaded; each writes its pages (see pagefiles.py) and sends back a small :class:`Rendered`
record per URL, never a page body. The parent owns the list of URLs: it hands out the ones the
generators gave, then those the pages' ``url_for`` calls found, round after round, until no
new one comes up, and makes the pages' folders before it hands their URLs out (on a disk,
processes making folders side by side slow each other down). The files are the same whichever
way they were rendered.
"""

from __future__ import annotations

import gc
import io
import math
import multiprocessing
import os
import signal
import sys
import traceback
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO
from unicodedata import normalize
from urllib.parse import unquote, urlsplit

import flask_frozen
from flask import Flask, request, request_finished, request_started
from flask.testing import EnvironBuilder
from markupsafe import escape
from werkzeug.datastructures import Headers
from werkzeug.http import parse_options_header
from werkzeug.routing import Rule

from . import islands
from .errors import (
    BuildError,
    ContentTypeWarning,
    IslandWarning,
    PageError,
    PagesFailed,
    RequestDataWarning,
)
from .extension import site_url
from .headers import check_header_text, merge_vary
from .layout import SIBLING_SUFFIXES, stays_inside, type_from_name, with_siblings
from .pagefiles import NameClash, PageFiles
from .pagetable import REDIRECT_STATUSES
from .routes import Mode, Route, is_static_view, live_cookies, takes_live_cookies
from .safety import (
    RECORDER_KEY,
    Recorder,
    note_external_url,
    recording_requests,
    shown_location,
    start_recording,
    stop_recording,
)


@dataclass(frozen=True)
class BuiltPage:
    """What the server must know about one prerendered URL beyond its file."""

    #: Path of the file inside the build's client folder, with "/" separators.
    file: str
    #: The view's Content-Type, when the file name would make a server send another one.
    content_type: str | None = None
    #: ``(status, location)`` when the view answered with a redirect.
    redirect: tuple[int, str] | None = None
    #: The headers of the page's response that its file is sent with (see
    #: :data:`NOT_KEPT_HEADERS`).
    headers: tuple[tuple[str, str], ...] = ()
    #: True when the file was kept from an earlier build rather than rendered now.
    kept: bool = False
    #: Precompressed siblings written beside the file (".gz", ".br").
    compressed: tuple[str, ...] = ()
    #: True for a page of a ``prerender(live_query=True)`` route.
    live_query: bool = False
    #: The endpoint its request reached; None for a file kept, or Flask's own redirect.
    endpoint: str | None = None
    #: For a ``live_query`` page, the query parameters it looked up while it was rendered,
    #: sorted; None when it read its query whole (see :class:`~flask_ondemand.safety.Recorder`).
    query_keys: tuple[str, ...] | None = None

    def files(self) -> list[str]:
        """The page's file and its precompressed siblings (see :func:`with_siblings`)."""
        return with_siblings(self.file, self.compressed)


@dataclass(frozen=True)
class Rendered:
    """The outcome of one URL, as a worker sends it back."""

    url: str
    #: None when the page was skipped (an ignored 404 or redirect).
    page: BuiltPage | None
    #: What its ``url_for`` calls built, as they built it (query, fragment and all), less
    #: what this process reported before.
    discovered: tuple[str, ...] = ()
    #: ``(category, message, once_key)`` of each warning, for the parent to issue.
    warnings: tuple[tuple[type[Warning], str, str | None], ...] = ()
    #: The page's failure, as (url, cause, traceback), when it failed.
    error: tuple[str, str, str | None] | None = None
    #: True when it failed because its file and another page's folder want one name, which
    #: the build settles once every page is rendered (see ``Freezer``).
    clash: bool = False


@dataclass
class PageRenderer:
    """Renders URLs of ``app`` into ``root``, in the current process.

    Use it as a context manager: inside, the app is set up for building (see :meth:`building`).
    It is on the hot path of every build, so it keeps per-page work to what each page needs.

    Reads ``ONDEMAND_STRICT``, ``ONDEMAND_SITE_URL`` and the ``FREEZER_*`` keys.
    """

    app: Flask
    root: Path
    #: Names a URL's file, as Frozen-Flask's ``urlpath_to_filepath``.
    file_name: Callable[[str], str]
    #: The route a URL is a page of, or None.
    route_for: Callable[[str], Route | None] = lambda url: None
    #: The route of a rule a request reached, or None: a page's, without matching it again.
    route_of: Callable[[Rule], Route | None] = lambda rule: None
    _stack: ExitStack = field(default_factory=ExitStack)
    _base_environ: dict[str, Any] = field(default_factory=dict)
    #: URLs from url_for this process sent back lately: most pages link to the same ones.
    _reported: set[str] = field(default_factory=set)
    #: The files it writes, under ``root``.
    files: PageFiles = field(init=False, repr=False)
    #: (file suffix, Content-Type) -> whether the name tells that type.
    _told: dict[tuple[str, str], bool] = field(default_factory=dict)
    _warnings: list[tuple[type[Warning], str, str | None]] = field(default_factory=list)
    #: True when no setting says where the site is: absolute URLs then name the build's host.
    _guessed_address: bool = False
    #: Route (by id; None for no route) -> what its pages need from it, found once.
    _facts: dict[int, _RouteFacts] = field(default_factory=dict)
    #: What the page being rendered built with ``url_for``, once it has rendered.
    _links: list[str] = field(default_factory=list)

    def __enter__(self) -> PageRenderer:
        self._stack.enter_context(self.building())
        # Flask's builder, as Frozen-Flask's test client uses: it applies SERVER_NAME,
        # APPLICATION_ROOT and PREFERRED_URL_SCHEME, and FREEZER_BASE_URL or the site's URL
        # over them: pages render as requests to the site's scheme and host.
        config = self.app.config
        base_url = config["FREEZER_BASE_URL"] or site_url(self.app)
        self._guessed_address = not (base_url or config["SERVER_NAME"])
        self._base_environ = EnvironBuilder(self.app, path="/", base_url=base_url).get_environ()
        self.files = PageFiles(self.root)
        self.files.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    @contextmanager
    def building(self) -> Iterator[None]:
        """Set the app up for rendering pages into files, and put it back after.

        Exceptions in views propagate (rather than being logged as 500 pages); requests record
        what they read, until their request ends; ``url_for`` records the URLs it builds; and
        ``FREEZER_RELATIVE_URLS`` is applied.
        """
        app = self.app
        saved = app.config["PROPAGATE_EXCEPTIONS"], app.jinja_env.globals["url_for"]
        app.config["PROPAGATE_EXCEPTIONS"] = True
        # flask.url_for calls app.url_for; templates call the one Jinja was given.
        app.url_for = _recording_url_for(app.url_for)  # type: ignore[method-assign]
        app.jinja_env.globals["url_for"] = app.url_for
        try:
            with ExitStack() as stack:
                stack.enter_context(recording_requests(app))
                stack.enter_context(islands.without_hooks(app))
                stack.enter_context(request_started.connected_to(_started, app))
                stack.enter_context(request_finished.connected_to(_finished, app))
                if app.config["FREEZER_RELATIVE_URLS"]:
                    stack.enter_context(flask_frozen.patch_url_for(app))
                yield
        finally:
            del app.url_for
            app.config["PROPAGATE_EXCEPTIONS"], app.jinja_env.globals["url_for"] = saved

    def render(self, url: str, last_modified: Any = None, *, file: str | None = None) -> Rendered:
        """Render ``url`` and write its file (``file``, or the one its URL names); never raises
        for the page's own failures."""
        self._warnings = []
        self._links = []
        try:
            page, discovered = self._render(url, last_modified, file)
        except NameClash as clash:
            # Rendered, but its file could not be written yet (the build settles the name and
            # writes it again, following no links): its links and warnings count now.
            links, warnings = self._new_links(self._links), tuple(self._warnings)
            clashed = (clash.url, clash.cause, None)
            return Rendered(url, None, links, warnings, error=clashed, clash=True)
        except PageError as error:
            # The page's own exception, if it raised one; a check's refusal has none to show.
            cause = error.__cause__
            trace = "".join(traceback.format_exception(cause)) if cause else None
            failure = (error.url, error.cause, trace)
            return Rendered(url, None, error=failure)
        return Rendered(url, page, self._new_links(discovered), tuple(self._warnings))

    def _new_links(self, discovered: list[str]) -> tuple[str, ...]:
        """The URLs a page's ``url_for`` calls built that this process did not report lately."""
        new = [found for found in discovered if found not in self._reported]
        if len(self._reported) >= _REPORTED_KEPT:  # a cache of the usual links, not a record
            self._reported.clear()
        self._reported.update(new)
        return tuple(new)

    def make_folders_ahead(self, urls: Iterable[str]) -> None:
        """Make the folders of these URLs' files before workers render them, when the build
        folder started empty. On a disk, two processes that make folders in one folder wait
        for each other (and spin while they wait, taking the CPU pages need): so the build's
        process makes them all, and workers only write files."""
        if self.files.fresh:
            for folder in filter(None, map(self._folder_of, urls)):
                self.files.make_folder_ahead(folder)

    def remove_folders_made_for(self, urls: Iterable[str]) -> None:
        """Remove the empty folders made ahead for pages that wrote no file (skipped)."""
        if self.files.fresh:
            for folder in filter(None, map(self._folder_of, urls)):
                self.files.remove_empty_folders(folder)

    def _folder_of(self, url: str) -> str | None:
        """The folder of the file a URL names, inside ``root``; None for one at its top, or a
        name its page is refused for (it fails, saying why)."""
        file = normalize("NFC", self.file_name(url))
        if "/" not in file or _file_problem(file) is not None:
            return None
        return file.rpartition("/")[0]

    def _warn(self, category: type[Warning], message: str, once_key: str | None = None) -> None:
        """Note a warning, for :func:`render_all` to issue (workers cannot show their own)."""
        self._warnings.append((category, message, once_key))

    def _render(
        self, url: str, last_modified: Any, file: str | None
    ) -> tuple[BuiltPage | None, list[str]]:
        config = self.app.config
        file = file or normalize("NFC", self.file_name(url))
        if problem := _file_problem(file):
            raise PageError(url, problem)
        path = f"{self.files.root_path}/{file}"
        if (
            not self.files.fresh
            and os.path.isfile(path)
            and self._keep_existing(url, path, last_modified)
        ):
            siblings = tuple(s for s in SIBLING_SUFFIXES if os.path.isfile(path + s))
            return BuiltPage(file, kept=True, compressed=siblings), []

        status_line, headers, body, recorder = self._fetch(url)
        self._links = recorder.urls
        route = None if recorder.rule is None else self.route_of(recorder.rule)
        facts = self._facts_of(route)
        self._check_request_data(url, route, facts, status_line, headers, recorder)
        status = int(status_line.split(" ", 1)[0])
        redirect: tuple[int, str] | None = None
        if status in REDIRECT_STATUSES and "Location" in headers:
            policy = config["FREEZER_REDIRECT_POLICY"]
            if policy == "error":
                raise PageError(url, f"answered {status_line} (FREEZER_REDIRECT_POLICY)")
            if policy == "ignore":
                self._warn(flask_frozen.RedirectWarning, f"Ignored {status_line!r} on URL {url}")
                return None, recorder.urls
            redirect = (status, self._on_site(headers["Location"]))
            body, content_type = redirect_page(redirect[1]), "text/html; charset=utf-8"
        elif status == 404 and config["FREEZER_IGNORE_404_NOT_FOUND"]:
            self._warn(flask_frozen.NotFoundWarning, f"Ignored {status_line!r} on URL {url}")
            return None, recorder.urls
        elif not 200 <= status < 300:
            raise PageError(url, f"answered {status_line}; only 2xx pages can be files")
        else:
            content_type = headers.get("Content-Type", "application/octet-stream")

        # A static file's type is Flask's, which its owner cannot change: no warning about it.
        told_type = self._check_content_type(url, file, content_type, warn=not facts.static)
        kept = kept_headers(url, headers)
        if facts.live_cookies:
            # A shared cache must not give this file to a visitor with a live cookie.
            kept = _with_vary_cookie(kept)
        if _island_in_head(body):
            where = route.for_url(url) if route else url
            self._warn(
                IslandWarning,
                f"{where} has an island in <head>: a browser ends the head at its element, and"
                " what follows moves into the body. Put defer() in the body.",
                once_key=f"head {route.rule.rule if route else url}",
            )
        if self._guessed_address and _holds(body, recorder.external_url):
            where = route.for_url(url) if route else url
            self._warn(
                RequestDataWarning,
                f"{where} holds the absolute URL {recorder.external_url}, made from the build's"
                " own address: set ONDEMAND_SITE_URL to your site's (as"
                " 'https://example.com').",
                once_key="ONDEMAND_SITE_URL",  # once a build: one setting fixes them all
            )
        self.files.write(url, path, body)
        compressed = self.files.write_compressed(url, path, body, content_type)
        content_type_kept = None if told_type else content_type
        endpoint = None if route is None else route.endpoint
        query_keys = None
        if facts.live_query and not recorder.whole_query:
            query_keys = tuple(sorted(recorder.query_keys))
        page = BuiltPage(
            file,
            content_type_kept,
            redirect,
            kept,
            False,
            compressed,
            facts.live_query,
            endpoint,
            query_keys,
        )
        return page, recorder.urls

    def _facts_of(self, route: Route | None) -> _RouteFacts:
        """What the pages of ``route`` need to know of it, found for its first page."""
        key = id(route)
        facts = self._facts.get(key)
        if facts is None:
            live = route is not None and takes_live_cookies(self.app, route)
            facts = self._facts[key] = _RouteFacts(
                static=route is not None and is_static_view(self.app, route.endpoint),
                live_cookies=live,
                session_is_live=live
                and self.app.config["SESSION_COOKIE_NAME"] in live_cookies(self.app),
                live_query=route is not None and route.mark is not None and route.mark.live_query,
            )
        return facts

    def path_of(self, built: str) -> str | None:
        """The path to freeze for a URL as ``url_for`` built it: unquoted, without query or
        fragment, without the script name of ``FREEZER_BASE_URL``; None for another host."""
        parts = urlsplit(built)
        if parts.netloc and parts.netloc != self._base_environ["HTTP_HOST"]:
            return None
        path = unquote(parts.path)
        script_name = self._base_environ.get("SCRIPT_NAME", "")
        return path[len(script_name) :] if script_name and path.startswith(script_name) else path

    def _keep_existing(self, url: str, path: str, last_modified: Any) -> bool:
        """``FREEZER_SKIP_EXISTING`` and generator-given ``last_modified``, as in Frozen-Flask."""
        skip = self.app.config["FREEZER_SKIP_EXISTING"]
        if callable(skip):
            skip = skip(url, path)
        if skip:
            return True
        if last_modified is None:
            return False
        return bool(datetime.fromtimestamp(os.stat(path).st_mtime) >= last_modified)

    def _fetch(self, url: str) -> tuple[str, Headers, bytes, Recorder]:
        """Call the app for ``url``, as a server would. An exception in the view is raised as
        a :class:`PageError` naming the URL, rather than logged and turned into a 500 page."""
        global _current_recorder
        recorder = _current_recorder = Recorder()
        environ = dict(self._base_environ)
        environ["PATH_INFO"] = url.encode("utf-8").decode("latin-1")
        environ["wsgi.input"] = io.BytesIO()
        environ[RECORDER_KEY] = recorder
        answer: list[Any] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            answer[:] = [status, Headers(headers)]
            return lambda data: None

        try:
            chunks = self.app.wsgi_app(environ, start_response)
            try:
                body = b"".join(chunks)
            finally:
                getattr(chunks, "close", lambda: None)()
        except (Exception, SystemExit) as error:  # a view calling sys.exit() fails its page
            raise PageError(url, f"{type(error).__name__}: {error}") from error
        finally:
            _current_recorder = None
        return answer[0], answer[1], body, recorder

    def _check_request_data(
        self,
        url: str,
        route: Route | None,
        facts: _RouteFacts,
        status_line: str,
        headers: Headers,
        recorder: Recorder,
    ) -> None:
        """Fail on a page that sets a cookie, or redirects because of its request; warn (or
        fail, strict) on one that reads its request."""
        cookie_names = set()
        if "Set-Cookie" in headers:
            cookie_names = {header.split("=", 1)[0] for header in headers.getlist("Set-Cookie")}
        if recorder.writes or cookie_names:
            set_cookies = [f"Set-Cookie: {name}" for name in sorted(cookie_names)]
            what = ", ".join(filter(None, [_listed(recorder.writes), *set_cookies]))
            # Flask-WTF puts a form's token in the session: the form could be an island.
            form = any("csrf_token" in written for written in recorder.writes)
            advice = (
                "Render the form in an island (@island, defer()), or mark the route"
                if form
                else "Mark the route"
            )
            raise PageError(
                url,
                f"sets a cookie ({what}) while answering {status_line}. A prerendered page is"
                f" built once and served to everyone, so it must never set someone's cookie."
                f" {advice} @prerender(False).",
            )
        if not recorder.reads and status_line[0] != "3":  # what most pages come to
            return
        reads = dict(recorder.reads)
        if facts.live_query:
            for query in ("request.args", "request.values"):  # its queries render on demand
                reads.pop(query, None)
        session_is_live = facts.session_is_live
        if session_is_live:
            # A visitor with a session renders the page live; the file is for those without
            # (a redirect to the login page, say, is right for them).
            for visitor in ("session", "current_user"):
                reads.pop(visitor, None)
        location = headers.get("Location")
        status = int(status_line.split(" ", 1)[0])
        if status in REDIRECT_STATUSES and location is not None and not session_is_live:
            self._check_redirect(url, route, status_line, location, reads)
        if not reads:
            return
        what = _listed(reads)
        if self.app.config.get("ONDEMAND_STRICT"):
            raise PageError(
                url,
                f"read request-specific data while prerendering: {what} (ONDEMAND_STRICT)."
                f" {_advice(reads)}",
            )
        where = route.for_url(url) if route else url
        message = (
            f"{where} is prerendered but read {what}: the file holds what the build's"
            f" request gave, for every visitor. {_advice(reads)}"
        )
        key = f"{route.rule.rule} {route.endpoint}" if route else url
        self._warn(RequestDataWarning, message, once_key=key)  # one per route

    def _check_redirect(
        self,
        url: str,
        route: Route | None,
        status_line: str,
        location: str,
        reads: dict[str, str | None],
    ) -> None:
        """Fail on a redirect made from the build's request, which a file would send every
        visitor: one after reading request data (``@login_required`` sending the anonymous
        build to the login page), or to an on-demand page with this page's URL in its query
        (``?next=/explore``). A route marked ``prerender(True)`` is its author's choice: a
        warning then."""
        target = urlsplit(location)
        target_route = self.route_for(unquote(target.path)) if not target.netloc else None
        about_this_page = (
            target_route is not None
            and target_route.mode is Mode.ON_DEMAND
            and url in unquote(target.query)
        )
        if not reads and not about_this_page:
            return
        why = f"after reading {_listed(reads)}" if reads else "with this page's URL in its query"
        message = (
            f"redirects ({status_line} to {location}) {why}: as a file, that redirect would"
            " send every visitor there, signed in or not. Mark the route @prerender(False)"
            " (or list the session's cookie in ONDEMAND_LIVE_COOKIES)."
        )
        if route is not None and route.explicit:
            key = f"redirect {route.rule.rule} {route.endpoint}"
            self._warn(RequestDataWarning, f"{route.for_url(url)} {message}", once_key=key)
            reads.clear()  # said once, here
            return
        raise PageError(url, message)

    def _check_content_type(self, url: str, file: str, content_type: str, *, warn: bool) -> bool:
        """Return True when the file name tells a server the view's type (servers assume
        UTF-8); warn (if ``warn``) when the name's extension says another type.

        A name without extension tells nothing, and that is fine: the manifest records the type.
        """
        name = file.rsplit("/", 1)[-1]
        key = (os.path.splitext(name)[1] or name, content_type)
        if key not in self._told:
            told = type_from_name(name)
            mimetype, options = parse_options_header(content_type)
            charset = options.get("charset", "utf-8").lower()
            self._told[key] = told == mimetype.lower() and charset in ("utf-8", "utf8")
        if self._told[key]:
            return True
        told = type_from_name(name)
        wrong_type = told != parse_options_header(content_type)[0].lower()
        ignored = self.app.config["FREEZER_IGNORE_MIMETYPE_WARNINGS"]
        if warn and wrong_type and "." in name and not ignored:
            self._warn(
                ContentTypeWarning,
                f"{url}: the file name {name!r} says {told}, but the view answered"
                f" {content_type}. The server sends {content_type}; a server that goes by"
                " extension will not.",
            )
        return False

    def _on_site(self, location: str) -> str:
        """A redirect's Location without the build's own scheme and host: Flask's routing
        redirects (a missing slash, say) are absolute, and the build's host is no real one."""
        parts = urlsplit(location)
        if parts.netloc and parts.netloc == self._base_environ["HTTP_HOST"]:
            return parts._replace(scheme="", netloc="").geturl() or "/"
        return location


@dataclass(frozen=True)
class _RouteFacts:
    """What each page of a route needs from it."""

    #: It serves static files: their type is Flask's, which their owner cannot change.
    static: bool = False
    #: A visitor with a live cookie gets its pages rendered on demand (see routes.py).
    live_cookies: bool = False
    #: ... and the session's cookie is one of the live cookies.
    session_is_live: bool = False
    #: ``prerender(live_query=True)``: its query strings render on demand.
    live_query: bool = False


def render_all(
    renderer: PageRenderer,
    urls: Iterable[tuple[str, Any]],
    *,
    accept: Callable[[str], bool],
    jobs: int = 1,
    chunk_size: int = 64,
) -> Iterator[Rendered]:
    """Render ``(url, last_modified)`` pairs, and every URL their pages' ``url_for`` calls
    built that ``accept`` takes, each once; yield a :class:`Rendered` per URL.

    ``urls`` is read as pages are rendered, and each page's outcome is let go once yielded:
    what the build holds at once does not grow with the site, but for the set of URLs seen.

    A failing page does not stop the others: at the end, one failure raises its
    :class:`PageError`, and more raise :class:`PagesFailed` listing them all. Warnings from
    workers are issued here, at the end, in order (those with a ``once_key`` once per key,
    for the first page by URL), so that a build says the same whichever process rendered what.

    :param chunk_size: the most URLs a worker process is handed at once; fewer when there are
        few, so that every worker gets some.
    """
    generated = iter(urls)
    seen: set[str] = set()
    # URLs found by url_for, rendered before more generated ones: so they do not pile up.
    found: deque[tuple[str, Any]] = deque()
    # What url_for built as it built it (query and all) -> seen: most pages link to the same
    # few. A cache: bounded, so that a site of links to every page does not keep them twice.
    built_seen: set[str] = set()
    # Warning -> its message; one per once_key (the first by URL), or per message.
    said: dict[tuple[type[Warning], str], str] = {}
    failures: list[PageError] = []

    def take(count: int) -> list[tuple[str, Any]]:
        """Up to ``count`` URLs not rendered yet."""
        taken: list[tuple[str, Any]] = []
        while found and len(taken) < count:
            taken.append(found.popleft())
        for url, modified in generated:
            if url not in seen:
                seen.add(url)
                taken.append((url, modified))
                if len(taken) >= count:
                    break
        return taken

    def note(rendered: Rendered) -> None:
        if rendered.error is not None and not rendered.clash:
            failures.append(PageError(*rendered.error))
        for category, message, once_key in rendered.warnings:
            key = (category, once_key or message)
            said[key] = min(said.get(key, message), message)
        for built in rendered.discovered:
            if built in built_seen:
                continue
            if len(built_seen) >= _BUILT_SEEN_KEPT:
                built_seen.clear()
            built_seen.add(built)
            url = renderer.path_of(built)
            if url is not None and url not in seen:
                seen.add(url)
                if accept(url):
                    found.append((url, None))

    with _rendering(renderer, jobs) as render_some:
        for rendered in render_some(take, chunk_size):
            note(rendered)
            yield rendered
        for (category, _), message in sorted(said.items(), key=lambda item: item[1]):
            warnings.warn(message, category, stacklevel=2)
        if failures:
            failures.sort(key=lambda failure: failure.url)
            raise failures[0] if len(failures) == 1 else PagesFailed(failures)


#: Renders the URLs ``take(count)`` gives, until it gives none, yielding each outcome; the
#: caller notes each outcome (and what it found) before the next ``take``.
RenderSome = Callable[[Callable[[int], list[tuple[str, Any]]], int], Iterator[Rendered]]
_CHUNKS_PER_WORKER = 4
# How many URLs as url_for built them a build, and each process, remembers having seen.
_BUILT_SEEN_KEPT = _REPORTED_KEPT = 4096

# The renderer of a worker process, and the build's process: set before the fork, inherited by
# the workers.
_worker_renderer: PageRenderer | None = None
_builder = 0


@contextmanager
def _rendering(renderer: PageRenderer, jobs: int) -> Iterator[RenderSome]:
    global _worker_renderer, _builder
    with renderer:
        if jobs <= 1:

            def render_here(take: Callable[[int], list[tuple[str, Any]]], size: int) -> Any:
                while batch := take(1):
                    for url, modified in batch:
                        yield renderer.render(url, modified)

            yield render_here
            return
        _worker_renderer, _builder = renderer, os.getpid()
        # Fork after the app is loaded: each worker starts with the app ready to render. What
        # exists now stays: the garbage collector need not go through it in every worker.
        gc.freeze()
        # A ProcessPoolExecutor, not a multiprocessing.Pool: when a worker dies (a view calls
        # os._exit, the kernel kills it for memory), it says so instead of waiting forever.
        pool = ProcessPoolExecutor(
            jobs, mp_context=multiprocessing.get_context("fork"), initializer=_start_worker
        )
        in_flight = jobs * _CHUNKS_PER_WORKER

        def render_in_workers(take: Callable[[int], list[tuple[str, Any]]], size: int) -> Any:
            # Chunks of up to ``size`` pages save a round trip per page, but a few slow pages
            # (a database query each) must still reach every worker: when few URLs are ready,
            # chunks are smaller, so that one slow chunk does not leave the others idle. At
            # most a few chunks per worker are out at once, and each outcome is let go once
            # the caller has it.
            ready = take(in_flight * size)
            running: set[Future[list[Rendered]]] = set()
            try:
                while ready or running:
                    chunk = max(1, min(size, math.ceil(len(ready) / in_flight)))
                    while ready and len(running) < in_flight:
                        batch, ready = ready[:chunk], ready[chunk:]
                        renderer.make_folders_ahead(url for url, _ in batch)
                        running.add(pool.submit(_render_chunk, batch))
                    done, running = wait(running, return_when=FIRST_COMPLETED)
                    for future in done:
                        yield from future.result()
                    if len(ready) < in_flight * size:
                        ready += take(in_flight * size - len(ready))
            except BrokenProcessPool:
                raise BuildError(
                    "a process rendering pages died (killed, or a view ended the process);"
                    " render with --jobs 1 to see which page"
                ) from None

        try:
            yield render_in_workers
        except BaseException:
            _stop_now(pool)
            raise
        else:
            pool.shutdown()
        finally:
            _worker_renderer = None
            gc.unfreeze()


def _stop_now(pool: ProcessPoolExecutor) -> None:
    """Stop the workers without waiting for the pages they are rendering: the build failed."""
    # The executor has no public way to stop a running task; its worker processes are kept here
    # (until shutdown clears them).
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.kill()


def _start_worker() -> None:
    """Set a worker up: it dies if the build's process does, even by SIGKILL (a worker left
    over would write into a build being undone), and it shows its views' own warnings itself,
    as the build's process would (what the CLI records there, a worker cannot send back)."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != _builder:  # it died before the line above could take effect
        os._exit(1)
    warnings.showwarning = _show_warning_on_stderr


def _show_warning_on_stderr(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def _render_chunk(chunk: Sequence[tuple[str, Any]]) -> list[Rendered]:
    assert _worker_renderer is not None
    return [_worker_renderer.render(url, modified) for url, modified in chunk]


# The recorder of the page being rendered: a build renders one page at a time per process, and
# the hooks below run for every url_for call, where a lookup through flask.request would cost.
_current_recorder: Recorder | None = None


def _recording_url_for(url_for: Callable[..., str]) -> Callable[..., str]:
    """Wrap ``app.url_for`` to note, on the page's recorder, each URL it builds."""

    def recording_url_for(endpoint: str, **values: Any) -> str:
        url = url_for(endpoint, **values)
        if _current_recorder is not None:
            _current_recorder.urls.append(url)
            if url.startswith(("http://", "https://")):
                note_external_url(url)
        return url

    return recording_url_for


def _started(sender: Flask, **extra: Any) -> None:
    if _current_recorder is not None:
        _current_recorder.rule = request.url_rule
        start_recording(_current_recorder, sender)


def _finished(sender: Flask, **extra: Any) -> None:
    if _current_recorder is not None:
        stop_recording(_current_recorder)


#: Headers of a page's response that its file is not sent with: a file server computes them
#: for the bytes it sends (Content-Length, Content-Encoding, ETag, Last-Modified, Date,
#: Accept-Ranges, and the hop-by-hop ones), the build records them apart (Content-Type,
#: Location), or refuses the page (Set-Cookie).
NOT_KEPT_HEADERS = frozenset(
    {
        "content-length",
        "content-encoding",
        "transfer-encoding",
        "etag",
        "last-modified",
        "date",
        "accept-ranges",
        "connection",
        "keep-alive",
        "set-cookie",
        "content-type",
        "location",
    }
)


def kept_headers(url: str, headers: Headers) -> tuple[tuple[str, str], ...]:
    """The headers of a page's response its file is sent with: every one, from the view, its
    ``Response``, ``response.headers`` or an ``after_request`` hook, less
    :data:`NOT_KEPT_HEADERS`, a ``Content-Disposition`` that says nothing the URL does not,
    and ``Cookie`` in ``Vary``: Flask adds it when anything touched the session, an
    after_request hook included, but a file is the same for every cookie.
    A value no server or host file could carry fails the page."""
    kept = []
    for name, value in headers.items():
        if name.lower() == "vary":
            value = merge_vary(*(f for f in value.split(",") if f.strip().lower() != "cookie"))
        if value and name.lower() not in NOT_KEPT_HEADERS and not _names_the_url(name, value, url):
            try:
                check_header_text(f"the header {name}", value)
            except ValueError as error:
                raise PageError(url, str(error)) from None
            kept.append((name, value))
    return tuple(kept)


def _with_vary_cookie(headers: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    """``headers`` with ``Cookie`` in their ``Vary``."""
    vary = [value for name, value in headers if name.lower() == "vary"]
    others = tuple(pair for pair in headers if pair[0].lower() != "vary")
    return (*others, ("Vary", merge_vary(*vary, "Cookie")))


def _file_problem(file: str) -> str | None:
    """Why a page cannot have the file ``file``, if it cannot."""
    if (
        file[:1] not in ("", "/")
        and file[-1] != "/"
        and "//" not in file
        and "/." not in "/" + file
        and "\0" not in file
    ):
        return None  # most names: no part is empty or starts with "."; checked per page
    if not stays_inside(file):
        return f"its file {file!r} would be outside the build folder"
    if os.path.normpath(file) != file:  # "a/./b", "a//b": no browser asks for such a URL
        return f"its file {file!r} has an empty, '.' or '..' part"
    return None


def _island_in_head(body: bytes) -> bool:
    """Whether an HTML page has an island's element inside its ``<head>``."""
    island = body.find(b"<ondemand-island")
    if island < 0:
        return False
    lower = body.lower()
    head = lower.find(b"<head")
    ends = [end for end in (lower.find(b"</head>"), lower.find(b"<body")) if end >= 0]
    return 0 <= head < island and (not ends or island < min(ends))


def _listed(reads: dict[str, str | None]) -> str:
    """What a page read, with where, for a message."""
    return ", ".join(
        f"{read} ({shown_location(where)})" if where else read
        for read, where in sorted(reads.items())
    )


def _advice(reads: Iterable[str]) -> str:
    """What to do about a prerendered page that read ``reads``."""
    ways = ["Move what depends on the visitor into an island ({{ defer(...) }} and @island)"]
    if {"request.args", "request.values"} & set(reads):
        ways.append("render its URLs with a query on demand (prerender(live_query=True))")
    return ", ".join(ways) + ", or mark the route @prerender(False)."


def _holds(body: bytes, url: str | None) -> bool:
    """Whether a page's body holds ``url``, as it is or escaped for HTML."""
    if url is None:
        return False
    return url.encode() in body or str(escape(url)).encode() in body


def _names_the_url(name: str, value: str, url: str) -> bool:
    """True for the ``Content-Disposition: inline; filename=...`` Flask's ``send_file`` gives
    every static file, naming the file its URL ends in: browsers do the same without it."""
    if name.lower() != "content-disposition":
        return False
    disposition, options = parse_options_header(value)
    return disposition == "inline" and options.get("filename") == url.rsplit("/", 1)[-1]


def redirect_page(location: str) -> bytes:
    """The HTML written for a prerendered redirect, for hosts that serve files only."""
    target = escape(location)
    return (
        "<!doctype html>\n"
        f"<title>Redirecting to {target}</title>\n"
        '<meta name="robots" content="noindex">\n'
        f'<meta http-equiv="refresh" content="0; url={target}">\n'
        f'<link rel="canonical" href="{target}">\n'
        f'<p>Redirecting to <a href="{target}">{target}</a>.</p>\n'
    ).encode()
