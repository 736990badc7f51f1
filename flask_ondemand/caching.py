"""Route caching and revalidation: ``cache`` and ``revalidate``, on any host.

::

    @app.route("/prices/")
    @prerender(False)
    @cache(max_age=60, swr=600, tags=["prices"])
    def prices(): ...

    revalidate(path="/prices/")      # or tag="prices": from a view, a command, a worker

A GET or HEAD of a cached route is answered from a store shared by every worker (and, with
Redis, every machine): for ``max_age`` seconds without running the view; for ``swr`` seconds
more, stale, while one background render refreshes it; after that, rendered again in the
foreground. One render of a URL runs at a time across everyone sharing the store: the others
wait for its answer. A prerendered route with ``cache`` is refreshed the same way, its built
file being its first answer.

The cache is a WSGI layer in front of the app's own ``wsgi_app`` (:class:`RouteCache`): a hit
is found by the URL's path and query and answered before Flask makes a request, routes or runs
a hook. It is on only where a build is served (``DIR/server.py``, or a host's function); in
``flask run`` and while building, cached routes render as any other.

Never a leak: an answer is never stored, and says ``Cache-Control: private``, when it sets a
cookie, when its render read anything of its request but its URL (cookies, the session,
``current_user``, a header such as ``Authorization``: the build's request recorder, safety.py,
notes each read), when its status is not 200, 301, 308, 404 or 410, when the view made it
private or no-store, when it varies on more than ``Accept-Encoding``, or when it is streamed.
Any other answer of the app that sets a cookie is sent ``Cache-Control: private`` unless the
view set a ``Cache-Control`` of its own.

Failure: a store that is down, full or corrupt makes pages render live (a warning at most once
a minute; a corrupt entry is a miss). A background render that fails keeps the stale answer
served and is not tried again before ``ONDEMAND_CACHE_LOCK_TIMEOUT`` seconds.
"""

from __future__ import annotations

import hashlib
import hmac
import inspect
import io
import json
import marshal
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote

from flask import Flask, current_app, request
from jinja2 import TemplateNotFound
from werkzeug.exceptions import HTTPException
from werkzeug.http import parse_etags, unquote_etag
from werkzeug.routing import Map
from werkzeug.wrappers import Request, Response

from .safety import RECORDER_KEY, Recorder, record_requests
from .server import PAGE_FILE_KEY, PageFile
from .stores import MEMORY_ENTRY_BYTES, Entry, Store, StoreError, now, open_store

View = TypeVar("View", bound=Callable[..., Any])
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

#: Where the app's :class:`RouteCache` is, in ``app.extensions``.
EXTENSION_KEY = "ondemand.cache"
#: The cache's name in ``Cache-Status`` (RFC 9211).
CACHE_NAME = "flask-ondemand"
#: The statuses an answer is stored with: a page, its permanent redirects, and its absence.
STORED_STATUSES = frozenset({200, 301, 308, 404, 410})
#: The webhook for a CMS: ``POST`` here with ``Authorization: Bearer <token>``.
REVALIDATE_PATH = "/_ondemand/revalidate"
#: An answer larger than this is sent but not stored: a cache of pages, not of downloads.
MAX_ENTRY_BYTES = 8 * 1024 * 1024
#: Background renders a process runs at once; a stale URL beyond them waits for a later visit.
MAX_REFRESHES = 4
#: After the store failed, pages render live this long before it is tried again.
STORE_RETRY_SECONDS = 1.0
#: How many paths' routes, and entries' headers, a process remembers (then it forgets all).
MEMORY_SIZE = 4096
#: A warning about the store is logged at most once in this many seconds.
WARNING_INTERVAL_SECONDS = 60.0

_ATTRIBUTE = "_ondemand_cache"
_ENDPOINT_KEY = "flask_ondemand.cache.endpoint"
_STREAMED_KEY = "flask_ondemand.cache.streamed"
# What a page may read of its request and still be the same for everyone: its URL's query,
# which is part of the cache's key.
_URL_READS = frozenset({"request.args", "request.values"})
# What an answer may vary on and still be stored: the encoding (the body is stored as the
# app made it), and cookies, which Flask names whenever anything opened the session (as
# Flask-Login does for every request): the recorder knows whether the page itself read them.
_VARY_JUDGED = frozenset({"accept-encoding", "cookie"})
# Headers the cache writes as it serves an entry, or that belong to one connection.
_SERVED = frozenset(
    {"age", "cache-status", "date", "content-length", "connection", "keep-alive"}
    | {"transfer-encoding", "server"}
)
# What a 304 answer keeps (RFC 9110, 15.4.5), and the cache's own.
_NOT_MODIFIED = frozenset(
    {"cache-control", "content-location", "date", "etag", "expires", "vary", "age", "cache-status"}
)


@dataclass(frozen=True)
class CacheMark:
    """What :func:`cache` recorded on a view."""

    max_age: int
    swr: int = 0
    tags: tuple[str, ...] = ()


def cache(max_age: int, swr: int = 0, tags: Iterable[str] = ()) -> Callable[[View], View]:
    """Cache the answers of a route: served from the store for ``max_age`` seconds, then
    stale for ``swr`` seconds while one background render refreshes them.

    Put it above or below ``@route``, on an on-demand route or a prerendered one (whose built
    file is then its first answer, refreshed the same way). Each URL (path and query) is one
    entry; ``tags`` name groups of entries for :func:`revalidate`. Answers that depend on their
    visitor are never stored (see the module's docstring).
    """
    for name, value in (("max_age", max_age), ("swr", swr)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"cache({name}=...) is a number of seconds, not {value!r}")
    if isinstance(tags, str):
        raise TypeError(f"cache(tags=...) is a list of tags, not the string {tags!r}")
    names = tuple(tags)
    for tag in names:
        if not isinstance(tag, str) or not tag:
            raise ValueError(f"cache(tags=...): a tag is a non-empty string, not {tag!r}")
    mark = CacheMark(max_age, swr, names)

    def mark_view(view: View) -> View:
        if not callable(view):
            raise TypeError(f"cache marks a view function, not {view!r}")
        setattr(view, _ATTRIBUTE, mark)
        return view

    return mark_view


def cache_mark_of(view: object) -> CacheMark | None:
    """The :func:`cache` mark of a view (or of its class, for a class-based view), or None."""
    mark = getattr(view, _ATTRIBUTE, None)
    if mark is None:
        mark = getattr(getattr(view, "view_class", None), _ATTRIBUTE, None)
    return mark if isinstance(mark, CacheMark) else None


def revalidate(*, path: str | None = None, tag: str | None = None) -> int:
    """Purge the cached answers of a path (with any query string) or a tag, at once, for every
    worker and machine sharing the store: the next request renders them. Return how many
    entries were purged (0 where no store is kept, as on a host whose CDN is the cache).

    Call it with the app's context: from a view, ``flask ondemand revalidate``, or a worker.

    Reads ``ONDEMAND_CACHE_URL`` and ``ONDEMAND_OUT_DIR`` (outside a server).

    :raises StoreError: when the store cannot be reached.
    """
    if path is None and tag is None:
        raise TypeError("revalidate(path='/prices/') or revalidate(tag='prices')")
    return route_cache(current_app).purge(
        paths=[] if path is None else [path], tags=[] if tag is None else [tag]
    )


def route_cache(app: Flask) -> RouteCache:
    """The :class:`RouteCache` :func:`install` put on ``app``."""
    layer: RouteCache | None = app.extensions.get(EXTENSION_KEY)
    if layer is None:
        raise RuntimeError(
            f"flask_ondemand is not set up on the app {app.name!r}."
            " Call OnDemand(app), or ondemand.init_app(app) in your app factory."
        )
    return layer


def install(app: Flask) -> None:
    """Put the route cache in front of ``app.wsgi_app``; it caches once :func:`serve` turns
    it on."""
    layer = RouteCache(app, app.wsgi_app)
    app.extensions[EXTENSION_KEY] = layer
    app.wsgi_app = layer  # type: ignore[method-assign]


def serve(
    app: Flask,
    *,
    default_folder: Path | None,
    cdn_headers: Iterable[tuple[str, str]] = (),
) -> None:
    """Turn the route cache on, for an app about to serve requests.

    :param default_folder: the folder store to use without ``ONDEMAND_CACHE_URL`` (a build
        folder's ``DIR/cache``); None for none (a host's function: its CDN is the cache).
    :param cdn_headers: header names a host's CDN reads the shared-cache policy from, each
        with directives of its own to add (``("Netlify-CDN-Cache-Control", "durable")``).

    Reads ``ONDEMAND_CACHE_URL``, ``ONDEMAND_CACHE_LOCK_TIMEOUT`` and
    ``ONDEMAND_REVALIDATE_TOKEN``.
    """
    layer = app.extensions.get(EXTENSION_KEY)
    if layer is not None:
        store = open_store(app.config.get("ONDEMAND_CACHE_URL"), default_folder=default_folder)
        layer.start(store, tuple(cdn_headers))


def _note_response(response: Response) -> None:
    """Tell the cache which route made the answer it renders, and whether it is streamed."""
    environ = request.environ
    environ[_ENDPOINT_KEY] = request.endpoint
    if response.is_streamed:
        environ[_STREAMED_KEY] = True


@dataclass(frozen=True)
class CachedRoute:
    endpoint: str
    mark: CacheMark
    #: The digest of the view's source and of every template: an entry made with another
    #: version (the code or a template changed in a deploy since) is a miss.
    version: str


class _Routes:
    """The app's cached routes, matched by a URL map of their own rules, before Flask."""

    def __init__(self, app: Flask) -> None:
        url_map = app.url_map
        self.by_endpoint: dict[str, CachedRoute] = {}
        rules = []
        templates = _templates_digest(app)
        for rule in url_map.iter_rules():
            view = app.view_functions.get(rule.endpoint)
            mark = cache_mark_of(view)
            if mark is None or rule.build_only or "GET" not in (rule.methods or ()):
                continue
            rules.append(rule.empty())
            if rule.endpoint not in self.by_endpoint:
                version = _digest(_source_of(view), templates)
                self.by_endpoint[rule.endpoint] = CachedRoute(rule.endpoint, mark, version)
        self._map = Map(
            rules,
            default_subdomain=url_map.default_subdomain,
            strict_slashes=url_map.strict_slashes,
            merge_slashes=url_map.merge_slashes,
            converters=url_map.converters,
            host_matching=url_map.host_matching,
        )
        self._server_name = app.config.get("SERVER_NAME")
        by_host = url_map.host_matching or any(rule.subdomain for rule in rules)
        self._bound = None if by_host else self._map.bind("localhost")
        #: Path -> its route, for a map that matches by path alone.
        self._known: dict[str, CachedRoute | None] = {}

    def match(self, environ: dict[str, Any]) -> CachedRoute | None:
        if not self.by_endpoint:
            return None
        raw = environ.get("PATH_INFO", "")
        if self._bound is not None and raw in self._known:
            return self._known[raw]
        try:
            path = raw.encode("latin-1").decode("utf-8")
            adapter = self._bound or self._map.bind_to_environ(
                environ, server_name=self._server_name
            )
            endpoint, _ = adapter.match(path or "/", method="GET")
            route = self.by_endpoint.get(endpoint)
        except (HTTPException, UnicodeError):
            route = None  # not a cached route: a redirect or a 404 is the app's
        if self._bound is not None:
            if len(self._known) >= MEMORY_SIZE:
                self._known.clear()
            self._known[raw] = route
        return route


def _source_of(view: Any) -> bytes:
    """What a view's version is made of: its source, or its code where there is no source."""
    target = getattr(view, "view_class", None) or inspect.unwrap(view)
    try:
        return inspect.getsource(target).encode()
    except (OSError, TypeError):
        code = getattr(target, "__code__", None)
        return marshal.dumps(code) if code is not None else repr(target).encode()


def _templates_digest(app: Flask) -> bytes:
    """The digest of every template the app's loader lists, by name and source: any template
    may be included by any page, so a change to one is a change to every cached route."""
    environment = app.jinja_env
    loader = environment.loader
    digest = hashlib.sha256()
    if loader is None:
        return digest.digest()
    try:
        names = sorted(loader.list_templates())
    except TypeError:  # a loader that cannot list its templates: only the views count
        return digest.digest()
    for name in names:
        try:
            source, _, _ = loader.get_source(environment, name)
        except TemplateNotFound:
            continue
        digest.update(f"{name}\0{len(source)}\0{source}".encode("utf-8", "surrogatepass"))
    return digest.digest()


def _digest(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()[:16]


class RouteCache:
    """The route cache of one app, as a WSGI layer in front of its ``wsgi_app``.

    Until :meth:`start` it only applies the cookie rule (an answer that sets a cookie is
    private unless the view said otherwise), so ``flask run`` and the build render cached
    routes as any other.
    """

    def __init__(self, app: Flask, inner: WSGIApp) -> None:
        self.app = app
        self.inner = inner
        self.serving = False
        self.store: Store | None = None
        self.routes: _Routes | None = None
        self.lock_timeout = 30.0
        self.cdn_headers: tuple[tuple[str, str], ...] = ()
        self._served = _SERVED
        self._refreshes = threading.BoundedSemaphore(MAX_REFRESHES)
        self._down_until = 0.0
        self._warned: dict[str, float] = {}
        #: id(entry) -> (the entry, its headers as sent but Age and Cache-Status, its ETag).
        self._prepared: dict[int, tuple[Entry, list[tuple[str, str]], str]] = {}
        #: A cached page's file -> (its PageFile, the entry it is).
        self._files: dict[str, tuple[PageFile, Entry | None]] = {}

    def start(self, store: Store | None, cdn_headers: tuple[tuple[str, str], ...]) -> None:
        """Cache from now on, in ``store`` (None: keep nothing, only send the headers a CDN
        in front caches by). Reads ``ONDEMAND_CACHE_LOCK_TIMEOUT``."""
        self.store = store
        self.lock_timeout = float(self.app.config.get("ONDEMAND_CACHE_LOCK_TIMEOUT", 30))
        self.cdn_headers = cdn_headers
        self._served = _SERVED | {name.lower() for name, _ in cdn_headers}
        self.routes = _Routes(self.app)
        if self.routes.by_endpoint and not self.serving:  # once: it wraps the app's classes
            # Only the requests the cache renders record, and tell it what answered.
            record_requests(self.app, on_response=_note_response)
        self.serving = True

    # The hit path

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        method = environ.get("REQUEST_METHOD")
        if (
            method == "POST"
            and environ.get("PATH_INFO") == REVALIDATE_PATH
            and self.app.config.get("ONDEMAND_REVALIDATE_TOKEN")
        ):
            return self._webhook(environ, start_response)
        if self.routes is None or method not in ("GET", "HEAD"):
            if RECORDER_KEY in environ:  # a build's page: a file, never sent with its cookies
                return self.inner(environ, start_response)
            return self.inner(environ, _private_if_cookie(start_response))
        route = self.routes.match(environ)
        if route is None:
            return self.inner(environ, _private_if_cookie(start_response))
        query = environ.get("QUERY_STRING")
        key = environ.get("PATH_INFO", "") + ("?" + query if query else "")
        store = self.store if self._available() else None
        entry = None
        if store is not None:
            try:
                entry = store.get(key)
            except StoreError as error:
                self._store_failed(store, error)
                store = None
        if entry is not None and entry.version != route.version:
            entry = None  # made by other code: a deploy changed the route or a template
        built: PageFile | None = environ.get(PAGE_FILE_KEY)
        if built is not None and (entry is None or entry.stored_at < built.modified):
            entry = self._file_entry(built, route)
        if entry is not None:
            age = now() - entry.stored_at
            mark = route.mark
            if age < mark.max_age:
                status = f"{CACHE_NAME}; hit; ttl={int(mark.max_age - age)}"
                return self._answer(entry, route, environ, start_response, status, age)
            if age < mark.max_age + mark.swr:
                status = f"{CACHE_NAME}; hit; ttl={int(mark.max_age - age)}; fwd=stale"
                if store is not None and self._refresh_later(store, key, route, environ, entry):
                    status += "; detail=refreshing"
                return self._answer(entry, route, environ, start_response, status, age)
        if self.store is None:
            forwarded, note = "bypass", "no-store"  # a host's CDN is the cache
        elif store is None:
            forwarded, note = "bypass", "store-down"
        else:
            forwarded, note = ("uri-miss" if entry is None else "stale"), ""
        return self._render(environ, start_response, key, route, store, forwarded, note)

    def _answer(
        self,
        entry: Entry,
        route: CachedRoute,
        environ: dict[str, Any],
        start_response: Callable[..., Any],
        cache_status: str,
        age: float,
    ) -> list[bytes]:
        """Send a stored answer, with the headers computed as it is sent."""
        prepared = self._prepared.get(id(entry))
        if prepared is None or prepared[0] is not entry:
            prepared = (entry, *self._prepare(entry, route))
            if len(entry.body) <= MEMORY_ENTRY_BYTES:  # the stores remember no larger ones
                if len(self._prepared) >= MEMORY_SIZE:
                    self._prepared.clear()
                self._prepared[id(entry)] = prepared
        _, prepared_headers, etag = prepared
        headers = [
            *prepared_headers,
            ("Age", str(max(0, int(age)))),
            ("Cache-Status", cache_status),
        ]
        if_none_match = environ.get("HTTP_IF_NONE_MATCH")
        if (
            if_none_match
            and etag
            and entry.status == 200
            and parse_etags(if_none_match).contains_weak(unquote_etag(etag)[0] or "")
        ):
            cdn = {name.lower() for name, _ in self.cdn_headers}
            kept = [pair for pair in headers if pair[0].lower() in _NOT_MODIFIED | cdn]
            start_response("304 Not Modified", kept)
            return []
        headers.append(("Content-Length", str(len(entry.body))))
        start_response(f"{entry.status} {entry.reason}", headers)
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else [entry.body]

    def _prepare(self, entry: Entry, route: CachedRoute) -> tuple[list[tuple[str, str]], str]:
        """A stored answer's headers as the cache sends them, but ``Age`` and ``Cache-Status``,
        and its ETag: the view's own, or the entry's."""
        headers = []
        own_policy = None
        etag = ""
        for name, value in entry.headers:
            lower = name.lower()
            if lower == "cache-control":
                own_policy = value
            elif lower not in self._served:
                etag = value if lower == "etag" else etag
                headers.append((name, value))
        headers += self._shared_headers(own_policy, route.mark)
        if not etag and entry.etag:
            etag = entry.etag
            headers.append(("ETag", etag))
        return headers, etag

    def _file_entry(self, built: PageFile, route: CachedRoute) -> Entry | None:
        """A prerendered page's file as the first entry of its URL; None if it is gone."""
        known = self._files.get(built.path)
        if known is not None and known[0] == built:
            return known[1]
        entry = _file_entry(built, route)
        if entry is None or len(entry.body) <= MEMORY_ENTRY_BYTES:
            if len(self._files) >= MEMORY_SIZE:
                self._files.clear()
            self._files[built.path] = (built, entry)
        return entry

    def _shared_headers(self, own_policy: str | None, mark: CacheMark) -> list[tuple[str, str]]:
        """``Cache-Control`` for a stored answer (the view's own directives kept, but its
        sharing), and the CDN's headers: what a cache in front needs to keep it as long."""
        shared = f"s-maxage={mark.max_age}"
        if mark.swr:
            shared += f", stale-while-revalidate={mark.swr}"
        own = [
            directive
            for directive in _directives(own_policy)
            if directive.split("=", 1)[0].lower()
            not in ("public", "s-maxage", "stale-while-revalidate")
        ]
        if not any(directive.lower().startswith("max-age") for directive in own):
            own.insert(0, "max-age=0")  # browsers ask again; a CDN keeps it
        policy = [("Cache-Control", ", ".join(["public", *own, shared]))]
        for name, extra in self.cdn_headers:
            policy.append((name, ", ".join(filter(None, ["public", extra, shared]))))
        return policy

    # Rendering

    def _render(
        self,
        environ: dict[str, Any],
        start_response: Callable[..., Any],
        key: str,
        route: CachedRoute,
        store: Store | None,
        forwarded: str,
        note: str,
    ) -> Iterable[bytes]:
        """Render a URL now, for the visitor asking, and store the answer if it may be: one
        render at a time; a request that finds another render of its URL running waits for
        that one's answer."""
        holder = None
        epoch = ""
        if store is not None:
            try:
                epoch = store.epoch()
                holder = secrets.token_hex(8)
                if not store.lock(key, holder, now() + self.lock_timeout):
                    holder = None
                    entry = self._wait(store, key, route)
                    if entry is not None:
                        status = f"{CACHE_NAME}; fwd={forwarded}; collapsed"
                        age = now() - entry.stored_at
                        return self._answer(entry, route, environ, start_response, status, age)
                    epoch = store.epoch()  # that render stored nothing; this one may
            except StoreError as error:
                self._store_failed(store, error)
                store, holder = None, None
        method = environ.get("REQUEST_METHOD")
        if method != "GET":  # HEAD: rendered as a GET, whose body is stored but not sent
            environ = {**environ, "REQUEST_METHOD": "GET"}
        recorder = environ[RECORDER_KEY] = Recorder()
        started = now()
        outcome: dict[str, Any] = {}

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            reasons = self._reasons(status, headers, recorder, environ, route)
            cache_status = f"{CACHE_NAME}; fwd={forwarded}"
            if reasons:
                cache_status += f"; detail={_sf_string(reasons)}"
            elif store is not None:
                cache_status += "; stored"
            elif note:
                cache_status += f"; detail={note}"
            outcome.update(status=status, headers=headers, reasons=reasons)
            sent = self._sent_headers(headers, route, reasons, cache_status)
            return start_response(status, sent, exc_info)

        try:
            chunks = self.inner(environ, start)
            if store is None or outcome.get("reasons", ["no answer"]):
                return chunks if method == "GET" else _drained(chunks)
            # Stored before it is sent: whoever asks next, here or elsewhere, finds it.
            body = _read(chunks)
            if len(body) <= MAX_ENTRY_BYTES:
                self._put(store, key, _entry(outcome, body, started, key, route), route, epoch)
            return [body] if method == "GET" else []
        finally:
            if store is not None and holder is not None:
                self._unlock(store, key, holder)

    def _wait(self, store: Store, key: str, route: CachedRoute) -> Entry | None:
        """Wait for the render another worker holds the lock for; return its answer, or None
        if it ends without storing a fresh one (or takes longer than the lock lasts)."""
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.005
        while time.monotonic() < deadline:
            time.sleep(delay)
            delay = min(delay * 1.5, 0.05)
            running = store.locked(key)
            entry = store.get(key)
            if (
                entry is not None
                and entry.version == route.version
                and now() - entry.stored_at < max(route.mark.max_age, 1)
            ):
                return entry
            if not running:
                return None
        return None

    def _refresh_later(
        self, store: Store, key: str, route: CachedRoute, environ: dict[str, Any], stale: Entry
    ) -> bool:
        """Start a background render of a stale URL, whose answer was ``stale``, unless one
        runs (here or elsewhere), or failed lately, or ended since ``stale`` was read, or this
        process runs as many as it may. Return whether it started.

        A thread, because the visitor who asked must get the stale answer at once, and a sync
        gunicorn worker runs what follows a response (``call_on_close``) before it closes the
        client's connection."""
        if not self._refreshes.acquire(blocking=False):
            return False
        holder = secrets.token_hex(8)
        locked = False
        try:
            epoch = store.epoch()
            locked = store.lock(key, holder, now() + self.lock_timeout)
            current = store.get(key) if locked else None
            if (
                current is not None
                and current.version == route.version  # another's is a miss, as on the hit path
                and current.stored_at > stale.stored_at
            ):
                # Another worker's refresh stored it between the read and the lock.
                store.unlock(key, holder)
                locked = False
        except StoreError as error:
            self._store_failed(store, error)
            if locked:  # not left for the lock's timeout
                self._unlock(store, key, holder)
            locked = False
        if not locked:
            self._refreshes.release()
            return False
        thread = threading.Thread(
            target=self._refresh,
            args=(store, key, route, _anonymous(environ), holder, epoch),
            name=f"flask_ondemand refresh {key}",
            daemon=True,
        )
        thread.start()
        return True

    def _refresh(
        self,
        store: Store,
        key: str,
        route: CachedRoute,
        environ: dict[str, Any],
        holder: str,
        epoch: str,
    ) -> None:
        """Render a stale URL as an anonymous GET and store it. If it cannot be stored, the
        lock is kept for ``ONDEMAND_CACHE_LOCK_TIMEOUT`` seconds: the stale answer is served
        meanwhile, and the next try comes after that, not at the next request."""
        try:
            recorder = environ[RECORDER_KEY] = Recorder()
            outcome: dict[str, Any] = {}

            def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
                outcome.update(status=status, headers=headers)
                return lambda data: None

            started = now()
            body = _read(self.inner(environ, start))
            reasons = self._reasons(outcome["status"], outcome["headers"], recorder, environ, route)
            if len(body) > MAX_ENTRY_BYTES:
                reasons.append("too large")
            if not reasons:
                outcome["reasons"] = reasons
                self._put(store, key, _entry(outcome, body, started, key, route), route, epoch)
                store.unlock(key, holder)
                return
            self.app.logger.warning(
                "flask_ondemand: refreshing %s gave an answer that is not stored (%s); its stale"
                " answer is served, and the next try is in %.0f s",
                key,
                "; ".join(reasons),
                self.lock_timeout,
            )
        except StoreError as error:
            self._store_failed(store, error)
            return
        except Exception:
            self.app.logger.exception(
                "flask_ondemand: refreshing %s failed; its stale answer is served, and the next"
                " try is in %.0f s",
                key,
                self.lock_timeout,
            )
        finally:
            self._refreshes.release()
        try:
            store.lock(key, holder, now() + self.lock_timeout)  # holds it: no retry until then
        except StoreError as error:
            self._store_failed(store, error)

    def _reasons(
        self,
        status: str,
        headers: list[tuple[str, str]],
        recorder: Recorder,
        environ: dict[str, Any],
        route: CachedRoute,
    ) -> list[str]:
        """Why an answer of a cached route must not be stored nor shared; none if it may."""
        reasons = []
        code = int(status.split(None, 1)[0])
        if code not in STORED_STATUSES:
            reasons.append(f"status {code}")
        cookie = False
        for name, value in headers:
            lower = name.lower()
            if lower == "set-cookie":
                cookie = True
            elif lower == "cache-control":
                reasons += [
                    directive
                    for directive in ("private", "no-store")
                    if directive in {d.split("=", 1)[0].lower() for d in _directives(value)}
                ]
            elif lower == "vary":
                fields = [f.strip() for f in value.split(",") if f.strip()]
                reasons += [f"vary {f}" for f in fields if f.lower() not in _VARY_JUDGED]
        if cookie:
            reasons.append("set-cookie")
        reads = sorted(set(recorder.reads) - _URL_READS)
        if reads:
            reasons.append("read " + ", ".join(reads))
        if recorder.writes:
            reasons.append("wrote " + ", ".join(sorted(recorder.writes)))
        if environ.get(_STREAMED_KEY):
            reasons.append("streamed")
        if environ.get(_ENDPOINT_KEY, route.endpoint) != route.endpoint:
            reasons.append(f"answered by {environ.get(_ENDPOINT_KEY)}")
        return reasons

    def _sent_headers(
        self,
        headers: list[tuple[str, str]],
        route: CachedRoute,
        reasons: list[str],
        cache_status: str,
    ) -> list[tuple[str, str]]:
        own_policy = ", ".join(value for name, value in headers if name.lower() == "cache-control")
        sent = [
            pair
            for pair in headers
            if pair[0].lower() not in ("cache-control", "age", "cache-status")
        ]
        if not reasons:
            sent = _without_cookie_vary(sent)
        if reasons:
            # The view's own policy if it keeps the answer private already, else "private".
            own = _directives(own_policy)
            names = {directive.split("=", 1)[0].lower() for directive in own}
            private = own if names & {"private", "no-store"} else []
            if "private" not in names:
                private.insert(0, "private")
            sent.append(("Cache-Control", ", ".join(private)))
        else:
            sent += self._shared_headers(own_policy or None, route.mark)
        sent += [("Age", "0"), ("Cache-Status", cache_status)]
        return sent

    def _put(self, store: Store, key: str, entry: Entry, route: CachedRoute, epoch: str) -> None:
        try:
            store.put(key, entry, keep_for=route.mark.max_age + route.mark.swr, epoch=epoch)
        except StoreError as error:
            self._store_failed(store, error)

    def _unlock(self, store: Store, key: str, holder: str) -> None:
        try:
            store.unlock(key, holder)
        except StoreError as error:
            self._store_failed(store, error)

    # The store's health

    def _available(self) -> bool:
        return self._down_until <= time.monotonic()

    def _store_failed(self, store: Store, error: StoreError) -> None:
        self._down_until = time.monotonic() + STORE_RETRY_SECONDS
        self._warn(
            "store",
            f"flask_ondemand: the route cache's store {store!r} failed ({error}); cached routes"
            " render live until it works again",
        )

    def _warn(self, kind: str, message: str) -> None:
        """Log ``message``, unless one of its kind was logged within the last minute (by the
        cache's clock; one set back does not silence it)."""
        moment = now()
        last = self._warned.get(kind)
        if last is None or not 0 <= moment - last < WARNING_INTERVAL_SECONDS:
            self._warned[kind] = moment
            self.app.logger.warning(message)

    # Purging

    def purge(
        self,
        *,
        paths: Iterable[str] = (),
        tags: Iterable[str] = (),
        everything: bool = False,
        default_folder: Path | None = None,
    ) -> int:
        """Purge the entries of ``paths`` (any query) and ``tags``, or all of them; return how
        many. Outside a server, the store is the one ``ONDEMAND_CACHE_URL`` names, or the
        folder store of ``default_folder`` (by default ``ONDEMAND_OUT_DIR/cache``).

        Reads ``ONDEMAND_CACHE_URL`` and ``ONDEMAND_OUT_DIR``.
        """
        paths = [_wsgi_path(path) for path in paths]
        tags = list(tags)
        if self.serving:
            store = self.store
        else:
            config = self.app.config
            folder = default_folder or Path(config.get("ONDEMAND_OUT_DIR", "dist")) / "cache"
            store = open_store(config.get("ONDEMAND_CACHE_URL"), default_folder=folder)
        if store is None:
            return 0
        if everything:
            return store.clear()
        return store.purge(paths=paths, tags=tags)

    def _webhook(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        """``POST /_ondemand/revalidate`` with a JSON body ``{"paths": [...], "tags": [...]}``,
        accepted only with ``Authorization: Bearer <ONDEMAND_REVALIDATE_TOKEN>``."""
        incoming = Request(environ)
        incoming.max_content_length = 1024 * 1024
        token = str(self.app.config.get("ONDEMAND_REVALIDATE_TOKEN"))
        scheme, _, given = incoming.headers.get("Authorization", "").partition(" ")
        # Digests of both: the same length, so the comparison takes the same time for any.
        expected = hashlib.sha256(token.encode()).digest()
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            hashlib.sha256(given.strip().encode()).digest(), expected
        ):
            answer = _json({"error": "a bearer token is needed to revalidate"}, 401)
            answer.headers["WWW-Authenticate"] = 'Bearer realm="revalidate"'
            return answer(environ, start_response)
        data = incoming.get_json(force=True, silent=True)
        paths = data.get("paths", []) if isinstance(data, dict) else None
        tags = data.get("tags", []) if isinstance(data, dict) else None
        if (
            not isinstance(paths, list)
            or not isinstance(tags, list)
            or not all(isinstance(p, str) and p.startswith("/") and "?" not in p for p in paths)
            or not all(isinstance(tag, str) and tag for tag in tags)
            or not (paths or tags)
        ):
            message = 'the body must be JSON: {"paths": ["/a/path/"], "tags": ["a tag"]}'
            return _json({"error": message}, 400)(environ, start_response)
        try:
            purged = self.purge(paths=paths, tags=tags)
        except StoreError as error:
            self.app.logger.warning("flask_ondemand: revalidate failed: %s", error)
            return _json({"error": "the cache's store is unavailable"}, 503)(
                environ, start_response
            )
        return _json({"purged": purged, "paths": paths, "tags": tags}, 200)(environ, start_response)


def _read(chunks: Iterable[bytes]) -> bytes:
    """An answer's whole body, its iterable closed."""
    try:
        return b"".join(chunks)
    finally:
        getattr(chunks, "close", lambda: None)()


def _drained(chunks: Iterable[bytes]) -> list[bytes]:
    """No body, for a HEAD rendered as a GET: its body is made, and dropped."""
    _read(chunks)
    return []


def _entry(
    outcome: dict[str, Any], body: bytes | bytearray, started: float, key: str, route: CachedRoute
) -> Entry:
    code, _, reason = str(outcome["status"]).partition(" ")
    headers = tuple(
        (name, value)
        for name, value in _without_cookie_vary(outcome["headers"])
        if name.lower() not in _SERVED
    )
    body = bytes(body)
    return Entry(
        status=int(code),
        reason=reason,
        headers=headers,
        body=body,
        stored_at=started,
        endpoint=route.endpoint,
        version=route.version,
        tags=route.mark.tags,
        path=key.split("?", 1)[0],
        etag=f'"{hashlib.sha256(body).hexdigest()[:32]}"',
    )


def _file_entry(built: PageFile, route: CachedRoute) -> Entry | None:
    """A prerendered page's file as the first entry of its URL; None if it is gone."""
    try:
        with open(built.path, "rb") as file:
            body = file.read()
    except OSError:
        return None
    return Entry(
        status=200,
        reason="OK",
        headers=built.headers,
        body=body,
        stored_at=built.modified,
        endpoint=route.endpoint,
        version=route.version,
        tags=route.mark.tags,
        etag=f'"{hashlib.sha256(body).hexdigest()[:32]}"',
    )


def _anonymous(environ: dict[str, Any]) -> dict[str, Any]:
    """A GET of the same URL from no one: no cookie, no credentials, no client headers."""
    kept = (
        "SERVER_NAME",
        "SERVER_PORT",
        "SERVER_PROTOCOL",
        "SCRIPT_NAME",
        "PATH_INFO",
        "QUERY_STRING",
        "HTTP_HOST",
        "wsgi.url_scheme",
        "wsgi.version",
        "wsgi.errors",
        "wsgi.multithread",
        "wsgi.multiprocess",
        "wsgi.run_once",
    )
    anonymous = {name: environ[name] for name in kept if name in environ}
    anonymous.update(REQUEST_METHOD="GET", CONTENT_LENGTH="0")
    anonymous["wsgi.input"] = io.BytesIO()
    return anonymous


def _private_if_cookie(start_response: Callable[..., Any]) -> Callable[..., Any]:
    """``start_response``, adding ``Cache-Control: private`` to an answer that sets a cookie
    and says nothing of caching itself, so that no cache in front shares it."""

    def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        # A loop, not a set of the names: this runs for every answer of the app.
        for name, _ in headers:
            if name.lower() == "set-cookie":
                if not any(other.lower() == "cache-control" for other, _ in headers):
                    headers = [*headers, ("Cache-Control", "private")]
                break
        return start_response(status, headers, exc_info)

    return start


def _without_cookie_vary(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The headers of an answer found to depend on no cookie, less ``Vary: Cookie``: the
    answer is the same for everyone, and a cache in front may share it with everyone."""
    kept = []
    for name, value in headers:
        if name.lower() == "vary":
            fields = [f.strip() for f in value.split(",") if f.strip().lower() != "cookie"]
            if not fields:
                continue
            value = ", ".join(fields)
        kept.append((name, value))
    return kept


def _directives(policy: str | None) -> list[str]:
    return [part.strip() for part in (policy or "").split(",") if part.strip()]


def _sf_string(reasons: list[str]) -> str:
    """Reasons as a structured-field string (RFC 8941), for ``Cache-Status``'s detail."""
    text = "; ".join(reasons)
    text = "".join(char if " " <= char <= "~" else "?" for char in text)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _wsgi_path(path: str) -> str:
    """A URL path as a WSGI server hands it to the app, as the cache's keys hold it."""
    if not isinstance(path, str) or not path.startswith("/") or "?" in path or "#" in path:
        raise ValueError(f"revalidate takes a URL path such as '/prices/', not {path!r}")
    return unquote(path).encode("utf-8").decode("latin-1")


def _json(data: object, status: int) -> Response:
    return Response(
        json.dumps(data) + "\n",
        status=status,
        mimetype="application/json",
        headers={"Cache-Control": "no-store"},
    )
