"""Marking views and blueprints as prerendered or rendered on demand.

A mark is an attribute on the view function or the Blueprint object. Nothing is registered
anywhere, so a mark works above or below ``@route``, on a view that is already registered, and
whether or not :class:`~flask_ondemand.OnDemand` exists yet: routes are classified only when a
build or ``flask ondemand routes`` asks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, overload

from flask import Blueprint

PathsFunction = Callable[[], Iterable[Mapping[str, Any]]]
"""Astro's ``getStaticPaths``: returns the URL values of every page of a parameterised route."""

Markable = TypeVar("Markable", bound="Callable[..., Any] | Blueprint")

_ATTRIBUTE = "_ondemand_mark"
FALLBACKS = ("404", "live")


@dataclass(frozen=True)
class Mark:
    """What :func:`prerender` recorded on a view function or a blueprint."""

    prerender: bool
    paths: PathsFunction | None = None
    #: The route's bare URLs are files; with a query string, they render on demand.
    live_query: bool = False
    #: What a URL of the route that the build did not produce gets: "404", or "live" (it is
    #: rendered on demand).
    fallback: str = "404"
    #: Whether a request carrying one of ``ONDEMAND_LIVE_COOKIES`` renders on demand.
    live_cookies: bool = True


@overload
def prerender(target: Markable, /) -> Markable: ...


@overload
def prerender(
    enabled: bool = True,
    /,
    *,
    paths: PathsFunction | None = None,
    live_query: bool = False,
    fallback: str = "404",
    live_cookies: bool = True,
) -> Callable[[Markable], Markable]: ...


def prerender(
    target: Any = True,
    /,
    *,
    paths: PathsFunction | None = None,
    live_query: bool = False,
    fallback: str = "404",
    live_cookies: bool = True,
) -> Any:
    """Mark a view function or a Blueprint as prerendered, or as rendered on demand.

    ``@prerender`` and ``@prerender(True)`` prerender the view; ``@prerender(False)`` renders it
    on demand. On a Blueprint (``prerender(False)(bp)``) the mark is the default of every route
    in it. A route's own mark wins over its innermost blueprint's, which wins over
    ``ONDEMAND_OUTPUT``.

    :param paths: for a route with parameters, a callable returning dicts of URL values, one per
        page to prerender. It runs inside an app context at build time.
    :param live_query: the route's bare URLs are files, and the same URLs with a query string
        (``/?page=2``, ``/search/?q=x``) render on demand. The route stays routable in the
        slim app for those, and what the build's request had for ``request.args`` is no
        warning.
    :param fallback: what a URL of the route that the build did not produce gets: ``"404"``,
        or ``"live"``, rendered on demand (like Next.js's ``dynamicParams``). A ``"live"``
        route needs no URL generated at build time.
    :param live_cookies: False keeps the route's files for every visitor, even those with a
        cookie of ``ONDEMAND_LIVE_COOKIES`` (a page that is the same for them).
    :return: the view or blueprint itself, so the mark can go above or below ``@route``.
    """
    if fallback not in FALLBACKS:
        raise ValueError(f"prerender(fallback=...) is '404' or 'live', not {fallback!r}")
    if isinstance(target, bool):
        options = {"paths": paths is not None, "live_query": live_query}
        options.update(fallback=fallback != "404", live_cookies=not live_cookies)
        for name in (name for name, given in options.items() if given and not target):
            raise TypeError(
                f"prerender(False, {name}=...): {name} only applies to prerendered routes"
            )
        mark = Mark(target, paths, live_query, fallback, live_cookies)
        return lambda obj: _apply(obj, mark)
    return _apply(target, Mark(True, paths, live_query, fallback, live_cookies))


def _apply(obj: Markable, mark: Mark) -> Markable:
    if isinstance(obj, Blueprint):
        if mark != Mark(mark.prerender):
            raise TypeError(
                f"prerender(paths=, live_query=, fallback=, live_cookies=) mark a view, not the"
                f" blueprint"
                f" {obj.name!r}"
            )
    elif not callable(obj):
        raise TypeError(f"prerender marks a view function or a Blueprint, not {obj!r}")
    try:
        setattr(obj, _ATTRIBUTE, mark)
    except AttributeError:
        raise TypeError(
            f"prerender cannot mark {obj!r}: it takes no attributes. Mark the function it wraps."
        ) from None
    return obj


def mark_of(obj: object) -> Mark | None:
    """Return the mark on a view or blueprint, or None.

    A class-based view may be marked on its class: ``as_view()`` keeps the class as
    ``view_class``, and that mark counts for the view.
    """
    mark = getattr(obj, _ATTRIBUTE, None)
    if mark is None:
        mark = getattr(getattr(obj, "view_class", None), _ATTRIBUTE, None)
    return mark if isinstance(mark, Mark) else None
