"""Frozen-Flask's Freezer, taught which routes are prerendered.

On an app without :class:`~flask_ondemand.OnDemand` it is ``flask_frozen.Freezer`` (Frozen-Flask's
own test suite runs against it in CI). On an app with OnDemand it freezes only the prerendered
routes, never follows a ``url_for`` to an on-demand one, renders pages with the build's engine
(render.py: each page in its own app context, in one process or several), and records what the
server needs to know about each file (see :attr:`Freezer.pages`).
"""

from __future__ import annotations

import bisect
import contextvars
import itertools
import os
import warnings
from collections.abc import (
    Callable,
    Collection,
    Container,
    Generator,
    Iterable,
    Iterator,
    Mapping,
)
from contextlib import contextmanager
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, TypeVar
from unicodedata import normalize
from urllib.parse import urlsplit

import flask_frozen
from flask import Flask
from werkzeug.exceptions import HTTPException, MethodNotAllowed
from werkzeug.routing import AnyConverter, MapAdapter, Rule
from werkzeug.routing import BuildError as UrlBuildError

from .builtpages import BuiltPages, NameTaken
from .errors import BuildError, NoPathsWarning, PageError
from .extension import has_ondemand, site_url
from .layout import SIBLING_SUFFIXES, with_siblings
from .render import BuiltPage, PageRenderer, render_all
from .routes import Mode, Route, classify, is_static_view

T = TypeVar("T")

#: ``app.extensions`` key of the Freezer made for an app, so the build uses its generators.
FREEZER_KEY = "ondemand.freezer"


# This subclass overrides private methods of Frozen-Flask 1.0 (_generate_all_urls,
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
        #: URL -> :class:`BuiltPage` for every page the last freeze of an OnDemand app wrote
        #: (read from disk as asked: see builtpages.py).
        self.pages = BuiltPages()
        #: URLs the last freeze skipped (FREEZER_IGNORE_404_NOT_FOUND, FREEZER_REDIRECT_POLICY).
        self.skipped: set[str] = set()
        #: The routes as the last freeze of an OnDemand app classified them.
        self.routes: list[Route] = []
        self._routes: dict[int, Route] | None = None
        self._adapter: MapAdapter | None = None
        self._seen_endpoints: set[str | None] = set()
        self._destination: Path | None = None
        # The route, its paths callable and the values prerender_paths_urls last yielded, while
        # Frozen-Flask's url_for turns them into a URL: a failure there is theirs to name.
        self._paths_yielded: tuple[Route, Callable[..., Any], Mapping[str, Any]] | None = None
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

    def freeze_yield(self, *, jobs: int = 1) -> Iterator[flask_frozen.Page]:
        """Freeze, yielding a ``Page(url, path)`` per URL, as Frozen-Flask does.

        :param jobs: with OnDemand, how many processes render pages (forked from this one).
        """
        if self.app is None or not has_ondemand(self.app):
            self._start_pages()
            yield from super().freeze_yield()
            return
        for url in self.freeze_each(jobs=jobs):
            yield self._page_of(url)

    def freeze_each(self, *, jobs: int = 1) -> Iterator[str]:
        """Freeze an OnDemand app, yielding each URL once its page is done: what a build
        needs of :meth:`freeze_yield`, without a path made for every page."""
        self._start_pages()
        with self._classified():
            problems = [f"{r.describe()} is {r.problem}" for r in self.routes if r.problem]
            if problems:
                raise BuildError("; ".join(problems))
            yield from self._freeze_prerendered(jobs)

    def freeze_urls(
        self, urls: Iterable[str], *, others: Mapping[str, str] = {}, jobs: int = 1
    ) -> Iterator[flask_frozen.Page]:
        """Render just ``urls`` (a partial build), following no ``url_for`` to other pages.

        :param others: URL -> file of the pages kept as they are, which no URL rendered now may
            take the file of.

        Needs OnDemand on the app.
        """
        with self._classified():
            pairs = [(url, None) for url in urls]
            rendered = self._render_pages(pairs, accept=lambda url: False, jobs=jobs, others=others)
            for url in rendered:
                yield self._page_of(url)

    def _page_of(self, url: str) -> flask_frozen.Page:
        """Frozen-Flask's ``Page(url, path)`` of a URL done."""
        return flask_frozen.Page(url, Path(self.urlpath_to_filepath(url)))

    def select(self, pattern: str, urls: Collection[str]) -> list[str]:
        """The ``urls`` that ``pattern`` picks: a path glob if it starts with "/" (``/blog/*``;
        without a wildcard, it may also name a page that is new), otherwise an endpoint name.

        Needs OnDemand on the app.
        """
        with self._classified():
            if pattern.startswith("/"):
                if any(char in pattern for char in "*?["):
                    return [url for url in urls if fnmatchcase(url, pattern)]
                return [pattern] if pattern in urls or self._accepts(pattern) else []
            return [
                url for url in urls if (route := self._route_for(url)) and route.endpoint == pattern
            ]

    @contextmanager
    def _classified(self) -> Iterator[None]:
        """Classify the app's routes for the block: what URL filtering and matching need. And
        let the build's own requests through ``TRUSTED_HOSTS``: Frozen-Flask makes URLs in a
        request for localhost, and pages render as requests for the site's host."""
        self.routes = classify(self.app)
        self._routes = {id(route.rule): route for route in self.routes}
        self._adapter = self.app.url_map.bind(self.app.config["SERVER_NAME"] or "localhost")
        self._seen_endpoints = set()
        config = self.app.config
        trusted = config.get("TRUSTED_HOSTS")
        if trusted:
            site = urlsplit(site_url(self.app) or "").hostname
            config["TRUSTED_HOSTS"] = [*trusted, "localhost", *([site] if site else [])]
        try:
            yield
        finally:
            self._routes = None
            if trusted:
                config["TRUSTED_HOSTS"] = trusted

    def _start_pages(self) -> None:
        self.pages.close()
        self.pages, self.skipped = BuiltPages(), set()

    def _freeze_prerendered(self, jobs: int) -> Iterator[str]:
        self.root.mkdir(parents=True, exist_ok=True)
        # Read as pages render, not listed first: a list of every URL is memory that a build
        # of many pages can do without.
        generated = ((url, modified) for url, _, modified in self._generate_all_urls())
        yield from self._render_pages(_apart(generated), accept=self._accepts, jobs=jobs)
        self._check_endpoints(self._seen_endpoints)
        if self.app.config["FREEZER_REMOVE_EXTRA_FILES"] and self._destination is None:
            self._remove_extra_files()

    def _render_pages(
        self,
        urls: Iterable[tuple[str, Any]],
        *,
        accept: Callable[[str], bool],
        jobs: int,
        others: Mapping[str, str] = {},
    ) -> Iterator[str]:
        """Render pages, yielding each URL once it is done, and check that each has a file of
        its own, there at the end."""
        self._start_pages()
        renderer = PageRenderer(
            self.app, self.root, self.urlpath_to_filepath, self._route_for, self._route_of
        )
        kept = _KeptFiles(others)
        clashed: list[str] = []
        for rendered in render_all(renderer, urls, accept=accept, jobs=jobs):
            page = rendered.page
            if rendered.clash:
                clashed.append(rendered.url)
            elif page is None:
                self.skipped.add(rendered.url)
            else:
                self._record(rendered.url, page, kept)
            yield rendered.url
        renderer.remove_folders_made_for(self.skipped)
        self._settle_names(renderer, clashed, kept)

    def _record(self, url: str, page: BuiltPage, kept: _KeptFiles, *, again: bool = False) -> None:
        """Add ``page`` to :attr:`pages` (in place of what ``url`` had, ``again``), unless its
        file or a sibling is another page's or a kept file's: then fail, naming both."""
        problem = next(filter(None, map(kept.clash, page.files())), None)
        if problem is None:
            try:
                (self.pages.replace if again else self.pages.add)(url, page)
            except NameTaken as taken:
                problem = str(taken)
        if problem is not None:
            raise PageError(url, f"{problem}: one of the two URLs has to change")

    def _settle_names(self, renderer: PageRenderer, clashed: list[str], kept: _KeptFiles) -> None:
        """Give a page whose file is another page's folder (``/x`` and ``/x/popup``) the file
        ``x/index.html`` instead, and render again, in this process, the pages whose file is
        not there now: those that clashed, and those whose file another page's folder
        replaced while both rendered (which are among the former). A clash that cannot be
        settled so (``/x/`` wants that file too) fails, naming both pages."""
        # The files the pages that clashed wanted, and the folders those need.
        wanted = {url: normalize("NFC", self.urlpath_to_filepath(url)) for url in clashed}
        needed = {str(folder) for file in wanted.values() for folder in Path(file).parents}
        folders = dict(self.pages.folders())  # the pages' files that other pages' are inside
        for url, file in wanted.items():
            if file in needed or self.pages.has_inside(file):
                folders[url] = file
        for folder in needed:
            if (owner := self.pages.owner_of(folder)) and self.pages[owner].file == folder:
                folders[owner] = folder
        renamed = {url: f"{file}/index.html" for url, file in folders.items()}
        for url, file in renamed.items():
            other = self.pages.owner_of(file) or next(
                (u for u, f in wanted.items() if f == file), None
            )
            if other is not None or (problem := kept.clash(file)):
                because = f"is also that of {other}" if other else problem
                raise PageError(
                    url,
                    f"its file {folders[url]!r} is the folder of another page's file, and"
                    f" {file!r} {because}: one of the URLs has to change",
                )
        again = sorted({*renamed, *clashed})  # "/x" before "/x/popup": its file makes way first
        if not again:
            return
        with renderer:
            for url in again:
                if url in renamed:
                    for name in with_siblings(folders[url]):  # where its folder goes now
                        if (self.root / name).is_file():
                            (self.root / name).unlink()
                file = renamed.get(url) or wanted[url]
                rendered = renderer.render(url, file=file)
                if rendered.error is not None or rendered.page is None:
                    cause = rendered.error[1] if rendered.error else "it answered nothing now"
                    raise PageError(url, f"{cause} (rendered again, for its file {file!r})")
                self._record(url, rendered.page, kept, again=url in self.pages)

    @property
    def produced(self) -> Container[str]:
        """The files the last freeze of an OnDemand app wrote or kept, with their siblings."""
        return self.pages.names()

    def _remove_extra_files(self) -> None:
        """Frozen-Flask's clean-up of ``FREEZER_DESTINATION``: what this freeze did not write."""
        produced = self.produced
        ignore = self.app.config["FREEZER_DESTINATION_IGNORE"]
        for name in flask_frozen.walk_directory(self.root, ignore=ignore):
            if name not in produced:
                (self.root / name).unlink()

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
            for values in _read_paths(route, paths):
                if not isinstance(values, Mapping):
                    raise BuildError(
                        f"paths() of {route.describe()} must yield dicts of URL values,"
                        f" not {values!r}"
                    )
                self._paths_yielded = (route, paths, values)
                yield route.endpoint, values
        self._paths_yielded = None

    def _generate_all_urls(self) -> Iterator[tuple[str, str | None, Any]]:
        """Frozen-Flask's URLs, less those that lead to an on-demand route."""
        generated = super()._generate_all_urls()
        if self._routes is None:
            yield from generated
            return
        # An endpoint whose rules are all prerendered needs no match per URL: a time saver.
        modes: dict[str, set[Mode]] = {}
        for route in self._routes.values():
            modes.setdefault(route.endpoint, set()).add(route.mode)
        prerendered = {endpoint for endpoint, found in modes.items() if found == {Mode.PRERENDERED}}
        self._paths_yielded = None
        try:
            for url, endpoint, last_modified in generated:
                if endpoint in prerendered:
                    self._seen_endpoints.add(endpoint)
                    yield url, endpoint, last_modified
                elif self._accepts(url):
                    yield url, endpoint, last_modified
        except UrlBuildError as error:
            raise self._paths_error(error) from None

    def _paths_error(self, error: UrlBuildError) -> Exception:
        """The error to raise for a URL that Frozen-Flask's url_for could not build: one naming
        the route and its ``paths=`` if they gave the values, else Werkzeug's own."""
        if self._paths_yielded is None:
            return error
        route, paths, values = self._paths_yielded
        return BuildError(
            f"paths={_name_of(paths)} of {route.describe()} yielded {dict(values)!r},"
            f" which url_for cannot build: {error}"
        )

    def _match(self, url: str) -> Route | None:
        """The route a GET of ``url`` reaches; raises Werkzeug's HTTPException when none does."""
        assert self._adapter is not None
        assert self._routes is not None
        rule, _ = self._adapter.match(url, method="GET", return_rule=True)
        return self._routes.get(id(rule))

    def _route_of(self, rule: Rule) -> Route | None:
        """The route of a rule of the app's."""
        assert self._routes is not None
        return self._routes.get(id(rule))

    def _route_for(self, url: str) -> Route | None:
        """The route a GET of ``url`` reaches, or None."""
        try:
            return self._match(url)
        except HTTPException:
            return None

    def _accepts(self, url: str) -> bool:
        """Whether to freeze ``url``: not when it leads to an on-demand route."""
        try:
            route = self._match(url)
        except MethodNotAllowed:
            return False  # a POST-only URL, such as a form's action: always on demand
        except HTTPException:
            return True  # unknown URLs and redirects are left to the page build, which reports them
        if route is None or route.mode is not Mode.PRERENDERED:
            return False
        self._seen_endpoints.add(route.endpoint)
        return True

    def _check_endpoints(self, seen_endpoints: set[str | None]) -> None:
        if self._routes is None:
            super()._check_endpoints(seen_endpoints)
            return
        missing = [
            route
            for route in self._prerendered_pages()
            if route.endpoint not in seen_endpoints
            # A route that renders live what the build did not produce needs no URL now.
            and not (route.mark is not None and route.mark.fallback == "live")
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


def _read_paths(route: Route, paths: Callable[[], Iterable[Any]]) -> Iterator[Any]:
    """What ``paths()`` yields, read as the URLs are rendered; its failure, when it is called
    or while it yields, a :class:`BuildError` naming the route."""
    found: Iterator[Any] | None = None
    while True:
        try:
            if found is None:
                found = iter(paths())
            values = next(found)
        except StopIteration:
            return
        except Exception as error:
            raise BuildError(
                f"paths() of {route.describe()} failed: {type(error).__name__}: {error}"
            ) from error
        yield values


def _apart(generator: Generator[T, None, None]) -> Iterator[T]:
    """Run ``generator`` in a context of its own. Frozen-Flask's URL generation holds a
    request context open while it yields; read as pages render, it would otherwise be the
    context each page's request finds, and every page would share its ``g``."""
    context = contextvars.copy_context()
    try:
        while True:
            try:
                item = context.run(next, generator)
            except StopIteration:
                return
            yield item
    finally:
        context.run(generator.close)  # its contexts end where they began


class _KeptFiles:
    """The files of the pages a partial build keeps, for checking its own few files against:
    cheaper than listing every sibling of ten thousand pages."""

    def __init__(self, others: Mapping[str, str]) -> None:
        self._owners = {os.path.normpath(file): url for url, file in others.items()}
        self._sorted: list[str] | None = None

    def clash(self, name: str) -> str | None:
        """Why a new file ``name`` cannot sit beside the kept files, or None if it can."""
        if not self._owners:  # a whole build keeps none
            return None
        for suffix in ("", *SIBLING_SUFFIXES):
            if name.endswith(suffix) and (owner := self._owners.get(name.removesuffix(suffix))):
                return f"its file {name!r} is also that of {owner}"
        folder = os.path.dirname(name)
        while folder:
            if owner := self._owners.get(folder):
                return f"its file {name!r} needs a folder where {owner} has its file"
            folder = os.path.dirname(folder)
        if self._sorted is None:
            self._sorted = sorted(self._owners)
        first_inside = bisect.bisect_left(self._sorted, name + "/")
        if first_inside < len(self._sorted):
            inside = self._sorted[first_inside]
            if inside.startswith(name + "/"):
                owner = self._owners[inside]
                return f"its file {name!r} is the folder of {owner}'s file {inside!r}"
        return None


def _name_of(function: Callable[..., Any]) -> str:
    """A callable as a message names it: its name, and where a lambda is defined."""
    name = getattr(function, "__qualname__", None) or repr(function)
    code = getattr(function, "__code__", None)
    if "<lambda>" in name and code is not None:
        return f"{name} ({os.path.basename(code.co_filename)}, line {code.co_firstlineno})"
    return name


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
