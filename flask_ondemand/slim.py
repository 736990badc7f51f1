"""The slim app: the user's own app, with only its on-demand rules routable.

It is the same Flask object, so hooks, error handlers, the session, extensions and CLI commands
are all there. Only its URL map changes: a prerendered rule is kept as a Werkzeug ``build_only``
rule, so ``url_for`` still builds its URLs but no request reaches its view.
"""

from __future__ import annotations

import functools
import inspect
import uuid
from collections.abc import Callable, Container, Iterable, Iterator
from itertools import chain
from typing import Any

from flask import Flask, abort, current_app, redirect, request
from flask.globals import _cv_request
from jinja2.utils import LRUCache
from werkzeug.exceptions import NotFound
from werkzeug.http import parse_cookie
from werkzeug.routing import Map, MapAdapter, Rule
from werkzeug.wrappers import Response

from .manifest import RuleEntry
from .routes import FILE_METHODS, live_cookies


def make_slim(
    app: Flask, prerendered: Iterable[RuleEntry], *, file_urls: Container[str] | None = None
) -> Flask:
    """Make ``app`` route only what was not prerendered, in place, and return it.

    - A prerendered GET rule becomes build-only: ``url_for`` builds it, requests never match it;
      but one marked ``live_query`` or ``fallback="live"`` stays as it is, for its URLs with a
      query string or that were not built.
    - A prerendered rule that also takes other methods (a form posting to its own page) keeps
      them; its GET and HEAD answer 404, since every page of it is a file.
    - A rule without a view function becomes build-only too, so it gives 404 rather than 500.
    - A build-only rule loses Werkzeug's redirect from a folder URL without its slash; for the
      folder URLs in ``file_urls`` the slim app gives it back (a 308), for hosts that send such
      a URL to it rather than to their own files.
    """
    methods = {
        (entry.rule, entry.endpoint): set(entry.methods)
        for entry in prerendered
        if not entry.routable
    }
    old = app.url_map
    new = _empty_like(old)
    wrapped: set[str] = set()
    for rule in old.iter_rules():
        copy = _copy_rule(rule)
        if rule.endpoint not in app.view_functions:
            copy.build_only = True
        elif (rule.rule, rule.endpoint) in methods:
            if methods[rule.rule, rule.endpoint] <= FILE_METHODS:
                copy.build_only = True
            elif rule.endpoint not in wrapped:
                wrapped.add(rule.endpoint)
                view = app.view_functions[rule.endpoint]
                app.view_functions[rule.endpoint] = _without_get(view)
        new.add(copy)
    app.url_map = new
    if file_urls is not None:
        app.before_request_funcs.setdefault(None, []).insert(0, _folder_redirect(file_urls))
    return app


def _folder_redirect(file_urls: Container[str]) -> Any:
    # Looked up for a path no rule takes, not gathered at start-up: a cold start does not pay
    # for the size of the site.
    def redirect_to_folder() -> Response | None:
        if not isinstance(request.routing_exception, NotFound) or request.path == "/":
            return None
        if request.path + "/" in file_urls:
            location = request.path.rsplit("/", 1)[-1] + "/"
            query = request.query_string.decode("latin-1")
            return redirect(location + (f"?{query}" if query else ""), 308)
        return None

    return redirect_to_folder


def _empty_like(old: Map) -> Map:
    return type(old)(
        default_subdomain=old.default_subdomain,
        strict_slashes=old.strict_slashes,
        merge_slashes=old.merge_slashes,
        redirect_defaults=old.redirect_defaults,
        converters=old.converters,
        sort_parameters=old.sort_parameters,
        sort_key=old.sort_key,
        host_matching=old.host_matching,
    )


def _copy_rule(rule: Rule) -> Rule:
    copy = rule.empty()
    # empty() drops the attribute by which Flask answers OPTIONS itself.
    if hasattr(rule, "provide_automatic_options"):
        copy.provide_automatic_options = rule.provide_automatic_options  # type: ignore[attr-defined]
    return copy


def _without_get(view: Any) -> Any:
    @functools.wraps(view)
    def other_methods_only(**values: Any) -> Any:
        if request.method in ("GET", "HEAD"):
            abort(404)
        return current_app.ensure_sync(view)(**values)

    return other_methods_only


def live_renderer(
    app: Flask, prerendered: Iterable[RuleEntry]
) -> Callable[[dict[str, Any]], bool] | None:
    """Return the test of whether a request for a file's URL is rendered by the slim ``app``
    instead: it carries a cookie of ``ONDEMAND_LIVE_COOKIES``, and its URL is a page of a
    rule that takes them. None when no request is.

    Only requests with such a cookie pay for the URL match, which signed-in visitors' pages
    (rendered now) would pay anyway.

    Reads ``ONDEMAND_LIVE_COOKIES``.
    """
    names = frozenset(live_cookies(app))
    rules = {(entry.rule, entry.endpoint) for entry in prerendered if entry.live_cookies}
    if not names or not rules:
        return None
    # A file's URL is matched against every rule, build-only ones too (prerendered ones that
    # take no live cookies): in the slim map, /user/staff/ would fall to /user/<name>/.
    every_rule = _empty_like(app.url_map)
    for rule in app.url_map.iter_rules():
        copy = _copy_rule(rule)
        copy.build_only = False
        every_rule.add(copy)

    def renders_live(environ: dict[str, Any]) -> bool:
        header = environ.get("HTTP_COOKIE", "")
        if not any(name in header for name in names) or not names & parse_cookie(header).keys():
            return False
        try:
            slim: Any = app.create_url_adapter(app.request_class(environ))
            adapter = MapAdapter(
                every_rule,
                slim.server_name,
                slim.script_name,
                slim.subdomain,
                slim.url_scheme,
                slim.path_info,
                "GET",
            )
            rule, _ = adapter.match(method="GET", return_rule=True)
        except Exception:  # no route, a redirect, an untrusted Host: the file answers
            return False
        return (rule.rule, rule.endpoint) in rules

    return renders_live


def allowed_methods(app: Flask, environ: dict[str, Any]) -> list[str]:
    """The methods ``app`` has a route for at the request's URL; none if the request is bad."""
    try:
        adapter = app.create_url_adapter(app.request_class(environ))
    except Exception:  # an untrusted Host, say: the caller answers 405 either way
        return []
    return list(adapter.allowed_methods()) if adapter is not None else []


def settle(app: Flask) -> None:
    """Ready ``app``, loaded and made slim, to serve requests: what Flask and Frozen-Flask
    would otherwise work out again for every request is worked out once. Every view and hook
    is registered by now.

    - Flask's ``ensure_sync`` asks ``inspect.iscoroutinefunction`` of the view and of each
      hook, for every request; which of the app's views and hooks are plain functions is
      asked once here. Any other function, and any coroutine function, goes to Flask's own.
      An app whose class has its own ``ensure_sync`` keeps it as it is.
    - Frozen-Flask's ``url_for`` logger, which records URLs only while a freeze runs, is
      dropped: nothing freezes a served app, and it runs for every ``url_for``.
    - The URLs ``url_for`` builds in requests are kept (see :func:`_keep_built_urls`): a
      page's links are built once, not for every request.
    - Every template loaded stays loaded, in a dict rather than Jinja's cache of the 400
      used last, which takes a lock and reorders a queue each time a page asks for a
      template (about 1.5 microseconds; a page and its base are two). The templates are the
      files the app ships: a bounded set. An app that set its own ``cache_size`` in
      ``jinja_options`` keeps its cache (set it for a loader that finds any name, such as
      templates read from a database).
    """
    if type(app).ensure_sync is Flask.ensure_sync:
        plain = frozenset(
            func
            for func in _views_and_hooks(app)
            if _hashable(func) and not inspect.iscoroutinefunction(func)
        )
        ensure_sync = app.ensure_sync

        def known_sync(func: Callable[..., Any]) -> Callable[..., Any]:
            try:
                if func in plain:
                    return func
            except TypeError:  # unhashable: not one of them
                pass
            return ensure_sync(func)

        app.ensure_sync = known_sync  # type: ignore[method-assign]
    for functions in app.url_default_functions.values():
        functions[:] = [func for func in functions if not _frozen_flask_logger(func)]
    _keep_built_urls(app)
    loaded: Any = app.jinja_env.cache  # typed as Jinja's mapping, which LRUCache is not
    if "cache_size" not in app.jinja_options and isinstance(loaded, LRUCache):
        app.jinja_env.cache = dict(loaded.items())


#: The types of value whose URL part Werkzeug's converters make from the value alone, and
#: that cannot change once made: a URL built of them can be kept. Not float: 0.0 and -0.0
#: are one key, and two URLs.
_KEPT_VALUE_TYPES = frozenset({str, int, bool, type(None), uuid.UUID})
#: URLs kept at most: a site's links are far fewer; URLs built of values that keep changing
#: (a search's query) must not grow the memory without end.
_URLS_KEPT = 4096
#: The longest URL kept: every value is in its URL, so no key holds more than this either,
#: however long a value a visitor sends (a query's, in a search page's links).
_KEPT_URL_LENGTH = 512


def _keep_built_urls(app: Flask) -> None:
    """Make ``app.url_for`` keep each URL it builds in a request, by everything the URL is
    made of: the endpoint, its values and their types, ``_anchor``, ``_method``, ``_scheme``,
    ``_external``, and the request's host, subdomain, scheme, script root, method, and (for
    ``.endpoint``) blueprint.

    Flask's own ``url_for`` builds every URL again: 2 to 4 microseconds each, for every link
    of every page. Nothing else goes into a URL, except what this leaves to Flask: an app
    with ``url_defaults`` functions or ``url_build_error_handlers`` (either may read the
    request); an app with a converter, URL map or rule class of its own (its ``to_url`` may
    read more than its value), or whose class makes URLs its own way; values of other types
    than str, int, bool, None and UUID (an object may change, or give its ``str`` another);
    a URL longer than 512 characters; a URL whose build fails; and ``url_for`` outside a
    request of this app.
    """
    own = type(app)
    if (
        own.url_for is not Flask.url_for
        or own.inject_url_defaults is not Flask.inject_url_defaults
        or own.handle_url_build_error is not Flask.handle_url_build_error
        or type(app.url_map) is not Map
        or app.url_rule_class is not Rule
        or any(
            converter not in Map.default_converters.values()
            for converter in app.url_map.converters.values()
        )
    ):
        return
    build = app.url_for
    defaults, error_handlers = app.url_default_functions, app.url_build_error_handlers
    kept: dict[tuple[Any, ...], str] = {}

    def url_for(
        endpoint: str,
        *,
        _anchor: str | None = None,
        _method: str | None = None,
        _scheme: str | None = None,
        _external: bool | None = None,
        **values: Any,
    ) -> str:
        context = _cv_request.get(None)
        key = None
        if (
            context is not None
            and context.app is app  # not another app's request: its URL map builds
            and context.url_adapter is not None
            and not error_handlers
            and not any(defaults.values())
            and all(type(value) in _KEPT_VALUE_TYPES for value in values.values())
        ):
            adapter = context.url_adapter
            key = (
                endpoint,
                context.request.blueprint if endpoint[:1] == "." else None,
                _anchor,
                _method,
                _scheme,
                _external,
                adapter.server_name,
                adapter.subdomain,
                adapter.url_scheme,
                adapter.script_name,
                adapter.default_method,
                tuple(values.items()),
                tuple(map(type, values.values())),  # 1 and True are equal keys
            )
            url = kept.get(key)
            if url is not None:
                return url
        url = build(
            endpoint,
            _anchor=_anchor,
            _method=_method,
            _scheme=_scheme,
            _external=_external,
            **values,
        )
        if key is not None and len(url) <= _KEPT_URL_LENGTH:
            if len(kept) >= _URLS_KEPT:
                kept.clear()
            kept[key] = url
        return url

    app.url_for = url_for  # type: ignore[method-assign]
    # Flask's templates call the url_for their environment was made with.
    if "jinja_env" in vars(app) and app.jinja_env.globals.get("url_for") == build:
        app.jinja_env.globals["url_for"] = url_for


def _views_and_hooks(app: Flask) -> Iterator[Callable[..., Any]]:
    """What Flask calls through ``ensure_sync`` per request: views, hooks, error handlers and
    context processors, of the app and of its blueprints."""
    yield from app.view_functions.values()
    for hooks in (
        app.before_request_funcs,
        app.after_request_funcs,
        app.teardown_request_funcs,
        app.template_context_processors,
    ):
        yield from chain.from_iterable(hooks.values())
    yield from app.teardown_appcontext_funcs
    for by_code in app.error_handler_spec.values():
        for by_class in by_code.values():
            yield from by_class.values()


def _hashable(func: object) -> bool:
    try:
        hash(func)
    except TypeError:
        return False
    return True


def _frozen_flask_logger(func: object) -> bool:
    """Whether ``func`` is the ``url_defaults`` function of a Frozen-Flask ``UrlForLogger``."""
    if getattr(func, "__module__", None) != "flask_frozen":
        return False
    for cell in getattr(func, "__closure__", None) or ():
        try:
            if type(cell.cell_contents).__name__ == "UrlForLogger":
                return True
        except ValueError:  # a cell not filled yet
            continue
    return False
