"""Frozen-Flask's Freezer, taught which routes are prerendered.

On an app without :class:`~flask_ondemand.OnDemand` it is ``flask_frozen.Freezer`` (Frozen-Flask's
own test suite runs against it in CI). On an app with OnDemand it freezes only the prerendered
routes, never follows a ``url_for`` to an on-demand one, renders each page in its own app
context, and records what the server needs to know about each file (see :attr:`Freezer.pages`).
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from unicodedata import normalize

import flask_frozen
from flask import Flask, request, request_finished, request_started
from markupsafe import escape
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.http import parse_options_header
from werkzeug.routing import AnyConverter, Rule

from .errors import BuildError, ContentTypeWarning, NoPathsWarning, PageError, RequestDataWarning
from .extension import has_ondemand
from .manifest import REDIRECT_STATUSES
from .page import PAGE_KEY
from .routes import Mode, Route, classify, is_static_view
from .safety import RECORDER_KEY, Recorder, recording_requests, start_recording, stop_recording
from .server import type_from_name

#: ``app.extensions`` key of the Freezer made for an app, so the build uses its generators.
FREEZER_KEY = "ondemand.freezer"


@dataclass(frozen=True)
class BuiltPage:
    """What the server must know about one prerendered URL beyond its file."""

    #: Path of the file inside the build's client folder, with "/" separators.
    file: str
    #: The view's Content-Type, when the file name would make a server send another one.
    content_type: str | None = None
    #: ``(status, location)`` when the view answered with a redirect.
    redirect: tuple[int, str] | None = None
    #: Headers the page set with ``response.headers``, to be sent with its file.
    headers: tuple[tuple[str, str], ...] = ()
    #: True when the file was kept from an earlier freeze rather than rendered now.
    kept: bool = False


# This subclass overrides private methods of Frozen-Flask 1.0 (_generate_all_urls, _build_one,
# _check_endpoints, _static_rules_endpoints): hence the <1.1 pin in setup.cfg, and CI running
# Frozen-Flask's own test suite against it.
class Freezer(flask_frozen.Freezer):  # type: ignore[misc]  # Frozen-Flask ships no types
    """Frozen-Flask's ``Freezer``, aware of :func:`~flask_ondemand.prerender` marks.

    ``register_generator`` and the ``url_for`` discovery work as in Frozen-Flask, and
    ``@prerender(paths=...)`` adds a generator per route. ``flask ondemand build`` uses the last
    Freezer made for the app, so generators registered on it count.
    """

    def __init__(
        self,
        app: Flask | None = None,
        with_static_files: bool = True,
        with_no_argument_rules: bool = True,
        log_url_for: bool = True,
    ) -> None:
        #: URL -> :class:`BuiltPage` for every page the last freeze of an OnDemand app wrote.
        self.pages: dict[str, BuiltPage] = {}
        #: The routes as the last freeze of an OnDemand app classified them.
        self.routes: list[Route] = []
        self._routes: dict[int, Route] | None = None
        #: URL -> the prerendered route it belongs to, for messages.
        self._url_routes: dict[str, Route] = {}
        #: Routes (or URLs) already warned about for reading request data: once is enough.
        self._warned_about: set[str] = set()
        self._destination: Path | None = None
        super().__init__(app, with_static_files, with_no_argument_rules, log_url_for)
        self.register_generator(self.prerender_paths_urls)

    def init_app(self, app: Flask | None) -> None:
        super().init_app(app)
        if app is not None:
            app.extensions[FREEZER_KEY] = self

    @property
    def root(self) -> Path:
        if self._destination is not None:
            return self._destination
        root: Path = super().root
        return root

    @contextmanager
    def destination(self, path: Path) -> Iterator[None]:
        """Freeze into ``path`` instead of ``FREEZER_DESTINATION`` inside the block."""
        self._destination = path
        try:
            yield
        finally:
            self._destination = None

    def freeze_yield(self) -> Iterator[flask_frozen.Page]:
        self.pages = {}
        if self.app is None or not has_ondemand(self.app):
            yield from super().freeze_yield()
            return
        self.routes = classify(self.app)
        problems = [f"{r.describe()} is {r.problem}" for r in self.routes if r.problem]
        if problems:
            raise BuildError("; ".join(problems))
        self._routes = {id(route.rule): route for route in self.routes}
        self._url_routes = {}
        self._warned_about = set()
        try:
            with recording_requests(self.app):
                yield from super().freeze_yield()
        finally:
            self._routes = None

    # URL generation

    def no_argument_rules_urls(self) -> Iterator[tuple[str, Mapping[str, Any]]]:
        """URLs of the rules that need no values from the app.

        Without OnDemand, Frozen-Flask's own: every GET rule without arguments. With it, every
        prerendered rule whose arguments all have defaults, or take a value from ``any(...)``.
        """
        if self._routes is None:
            yield from super().no_argument_rules_urls()
            return
        for route in self._prerendered_pages():
            yield from _values_known_from_rule(route.rule)

    def prerender_paths_urls(self) -> Iterator[tuple[str, Mapping[str, Any]]]:
        """URLs given by ``@prerender(paths=...)``, Astro's ``getStaticPaths``."""
        if self._routes is None:
            return
        done: set[str] = set()
        for route in self._prerendered_pages():
            paths = route.mark.paths if route.mark else None
            if paths is None or route.endpoint in done:
                continue
            done.add(route.endpoint)
            try:
                values_list = list(paths())
            except Exception as error:
                raise BuildError(
                    f"paths() of {route.describe()} failed: {type(error).__name__}: {error}"
                ) from error
            for values in values_list:
                if not isinstance(values, Mapping):
                    raise BuildError(
                        f"paths() of {route.describe()} must yield dicts of URL values,"
                        f" not {values!r}"
                    )
                yield route.endpoint, values

    def _generate_all_urls(self) -> Iterator[tuple[str, str | None, Any]]:
        """Frozen-Flask's URLs, less those that lead to an on-demand route."""
        generated = super()._generate_all_urls()
        if self._routes is None:
            yield from generated
            return
        server_name = self.app.config["SERVER_NAME"] or "localhost"
        adapter = self.app.url_map.bind(server_name)
        for url, endpoint, last_modified in generated:
            try:
                rule, _ = adapter.match(url, method="GET", return_rule=True)
            except MethodNotAllowed:
                continue  # a POST-only URL, such as a form's action: always on demand
            except HTTPException:
                # Unknown URLs and redirects are left to the page build, which reports them.
                yield url, endpoint, last_modified
                continue
            route = self._routes.get(id(rule))
            if route is not None and route.mode is Mode.PRERENDERED:
                self._url_routes[url] = route
                yield url, rule.endpoint, last_modified

    def _check_endpoints(self, seen_endpoints: set[str | None]) -> None:
        if self._routes is None:
            super()._check_endpoints(seen_endpoints)
            return
        missing = [
            route for route in self._prerendered_pages() if route.endpoint not in seen_endpoints
        ]
        explicit = [route.describe() for route in missing if route.explicit]
        if explicit:
            raise BuildError(
                f"{', '.join(explicit)}: marked prerender(True), but no URL was generated."
                " Give it @prerender(paths=...) or a Freezer URL generator."
            )
        for route in missing:
            warnings.warn(
                f"{route.describe()} is prerendered but no URL was generated, so every URL of it"
                " will be 404. Give it @prerender(paths=...), or mark it prerender(False).",
                NoPathsWarning,
                stacklevel=2,
            )

    def _static_rules_endpoints(self) -> Iterator[str]:
        # Frozen-Flask 1.0.2 raises KeyError here on a rule that has no view function.
        for rule in self.app.url_map.iter_rules():
            if is_static_view(self.app, rule.endpoint):
                yield rule.endpoint

    def _prerendered_pages(self) -> Iterator[Route]:
        """The prerendered routes whose pages come from views, not from a static folder."""
        assert self._routes is not None
        for route in self._routes.values():
            if route.mode is Mode.PRERENDERED and not is_static_view(self.app, route.endpoint):
                yield route

    # Page build

    def _build_one(self, url: str, last_modified: Any = None) -> Path:
        if self._routes is None:
            path: Path = super()._build_one(url, last_modified)
            return path
        config = self.app.config
        file = normalize("NFC", self.urlpath_to_filepath(url))
        path = self.root / file
        if not path.resolve().is_relative_to(self.root.resolve()):
            raise PageError(url, f"its file {file!r} would be outside the build folder")
        if path.is_file() and self._keep_existing(url, path, last_modified):
            self.pages[url] = BuiltPage(file, kept=True)
            return path

        response, recorder, page_headers = self._fetch(url)
        with response:
            self._check_request_data(url, response, recorder)
            status = response.status_code
            redirect: tuple[int, str] | None = None
            if status in REDIRECT_STATUSES and "Location" in response.headers:
                policy = config["FREEZER_REDIRECT_POLICY"]
                if policy == "error":
                    raise PageError(url, f"answered {response.status} (FREEZER_REDIRECT_POLICY)")
                if policy == "ignore":
                    warnings.warn(
                        f"Ignored {response.status!r} on URL {url}",
                        flask_frozen.RedirectWarning,
                        stacklevel=3,
                    )
                    path.unlink(missing_ok=True)  # a copy from the previous build must go
                    return path
                redirect = (status, response.headers["Location"])
                content, content_type = redirect_page(redirect[1]), "text/html; charset=utf-8"
            elif status == 404 and config["FREEZER_IGNORE_404_NOT_FOUND"]:
                warnings.warn(
                    f"Ignored {response.status!r} on URL {url}",
                    flask_frozen.NotFoundWarning,
                    stacklevel=3,
                )
                path.unlink(missing_ok=True)  # a copy from the previous build must go
                return path
            elif not 200 <= status < 300:
                raise PageError(url, f"answered {response.status}; only 2xx pages can be files")
            else:
                content, content_type = response.get_data(), response.content_type

        told_type = self._check_content_type(url, path, content_type)
        self.pages[url] = BuiltPage(
            file, None if told_type else content_type, redirect, page_headers
        )
        _write_page(url, path, content)
        return path

    def _keep_existing(self, url: str, path: Path, last_modified: Any) -> bool:
        """``FREEZER_SKIP_EXISTING`` and generator-given ``last_modified``, as in Frozen-Flask."""
        skip = self.app.config["FREEZER_SKIP_EXISTING"]
        if callable(skip):
            skip = skip(url, str(path))
        if skip:
            return True
        if last_modified is None:
            return False
        return bool(datetime.fromtimestamp(path.stat().st_mtime) >= last_modified)

    def _fetch(self, url: str) -> tuple[Any, Recorder, tuple[tuple[str, str], ...]]:
        """GET ``url`` from the app in a fresh app context, logging its ``url_for`` calls and
        recording what it reads of its request. Return the response, the recorder, and the
        headers the page set with ``response.headers``.

        An exception in the view is raised as a :class:`PageError` naming the URL, rather than
        logged and turned into a 500 page.
        """
        app = self.app
        recorder = Recorder()
        page_headers: list[tuple[str, str]] = []

        def started(sender: Flask, **extra: Any) -> None:
            start_recording(recorder)

        def finished(sender: Flask, **extra: Any) -> None:
            stop_recording(recorder)
            page_headers.extend(_page_headers())

        with ExitStack() as stack:
            # A fresh app context per page: its own flask.g, and teardown_appcontext per page.
            stack.enter_context(app.app_context())
            if self.log_url_for:
                stack.enter_context(self.url_for_logger)
            if app.config["FREEZER_RELATIVE_URLS"]:
                stack.enter_context(flask_frozen.patch_url_for(app))
            stack.enter_context(_propagating_exceptions(app))
            stack.enter_context(request_started.connected_to(started, app))
            stack.enter_context(request_finished.connected_to(finished, app))
            try:
                response = app.test_client().get(
                    url,
                    base_url=app.config["FREEZER_BASE_URL"],
                    environ_base={RECORDER_KEY: recorder},
                )
                return response, recorder, tuple(page_headers)
            except Exception as error:
                raise PageError(url, f"{type(error).__name__}: {error}") from error

    def _check_request_data(self, url: str, response: Any, recorder: Recorder) -> None:
        """Fail on a page that sets a cookie; warn (or fail, strict) on one that reads its
        request. Reads ``ONDEMAND_STRICT``."""
        route = self._url_routes.get(url)
        where = f"{url} ({route.describe()})" if route else url
        cookie_names = {
            header.split("=", 1)[0] for header in response.headers.getlist("Set-Cookie")
        }
        if recorder.writes or cookie_names:
            what = ", ".join(
                [*sorted(recorder.writes), *(f"Set-Cookie: {n}" for n in sorted(cookie_names))]
            )
            raise PageError(
                url,
                f"sets a cookie ({what}). A prerendered page is built once and served to"
                " everyone, so it must never set someone's cookie. Mark the route"
                " @prerender(False).",
            )
        if not recorder.reads:
            return
        what = ", ".join(sorted(recorder.reads))
        if self.app.config.get("ONDEMAND_STRICT"):
            raise PageError(
                url,
                f"read request-specific data while prerendering: {what} (ONDEMAND_STRICT)."
                " Mark the route @prerender(False), or stop reading it.",
            )
        key = route.describe() if route else url
        if key not in self._warned_about:
            self._warned_about.add(key)
            warnings.warn(
                f"{where} is prerendered but read {what}: the file holds what the build's"
                " request gave, for every visitor. Mark the route @prerender(False) if it"
                " depends on the request.",
                RequestDataWarning,
                stacklevel=3,
            )

    def _check_content_type(self, url: str, path: Path, content_type: str) -> bool:
        """Return True when the file name tells a server the view's type (servers assume
        UTF-8); warn when the name's extension says another type.

        A name without extension tells nothing, and that is fine: the manifest records the type.
        """
        told = type_from_name(path.name)
        mimetype, options = parse_options_header(content_type)
        if told == mimetype.lower():
            return options.get("charset", "utf-8").lower() in ("utf-8", "utf8")
        if "." in path.name and not self.app.config["FREEZER_IGNORE_MIMETYPE_WARNINGS"]:
            warnings.warn(
                f"{url}: the file name {path.name!r} says {told}, but the view answered"
                f" {content_type}. The server sends {content_type}; a server that goes by"
                " extension will not.",
                ContentTypeWarning,
                stacklevel=3,
            )
        return False


def _values_known_from_rule(rule: Rule) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield the URL values of a rule that its defaults and ``any(...)`` converters fix."""
    defaults = dict(rule.defaults or {})
    free = sorted(set(rule.arguments) - set(defaults))
    converters = getattr(rule, "_converters", {})
    if not all(isinstance(converters.get(name), AnyConverter) for name in free):
        return
    choices = [sorted(converters[name].items) for name in free]
    for combination in itertools.product(*choices):
        yield rule.endpoint, {**defaults, **dict(zip(free, combination, strict=True))}


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


def _page_headers() -> list[tuple[str, str]]:
    """The headers the current page set with ``response.headers``, but Content-Type, which the
    manifest records apart."""
    state = request.environ.get(PAGE_KEY)
    if state is None:
        return []
    return [(k, v) for k, v in state.headers.items() if k.lower() != "content-type"]


@contextmanager
def _propagating_exceptions(app: Flask) -> Iterator[None]:
    """Let an exception in a view reach the build, instead of Flask's log and 500 page."""
    saved = app.config["PROPAGATE_EXCEPTIONS"]
    app.config["PROPAGATE_EXCEPTIONS"] = True
    try:
        yield
    finally:
        app.config["PROPAGATE_EXCEPTIONS"] = saved


def _write_page(url: str, path: Path, content: bytes) -> None:
    """Write ``content`` unless the file already holds it, keeping its mtime (and ETag) then.

    The old file is unlinked first, never written through: it may be a hard link into the
    live build.
    """
    try:
        if path.is_file():
            if path.read_bytes() == content:
                return
            path.unlink()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    except (FileExistsError, NotADirectoryError, IsADirectoryError) as error:
        raise PageError(
            url, f"cannot write {path.name!r}: a page and a folder want the same name ({error})"
        ) from error
