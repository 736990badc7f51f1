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


@dataclass(frozen=True)
class Mark:
    """What :func:`prerender` recorded on a view function or a blueprint."""

    prerender: bool
    paths: PathsFunction | None = None


@overload
def prerender(target: Markable, /) -> Markable: ...


@overload
def prerender(
    enabled: bool = True, /, *, paths: PathsFunction | None = None
) -> Callable[[Markable], Markable]: ...


def prerender(target: Any = True, /, *, paths: PathsFunction | None = None) -> Any:
    """Mark a view function or a Blueprint as prerendered, or as rendered on demand.

    ``@prerender`` and ``@prerender(True)`` prerender the view; ``@prerender(False)`` renders it
    on demand. On a Blueprint (``prerender(False)(bp)``) the mark is the default of every route
    in it. A route's own mark wins over its innermost blueprint's, which wins over
    ``ONDEMAND_OUTPUT``.

    :param paths: for a route with parameters, a callable returning dicts of URL values, one per
        page to prerender. It runs inside an app context at build time.
    :return: the view or blueprint itself, so the mark can go above or below ``@route``.
    """
    if isinstance(target, bool):
        if paths is not None and not target:
            raise TypeError("prerender(False, paths=...): paths only apply to prerendered routes")
        mark = Mark(target, paths)
        return lambda obj: _apply(obj, mark)
    return _apply(target, Mark(True, paths))


def _apply(obj: Markable, mark: Mark) -> Markable:
    if isinstance(obj, Blueprint):
        if mark.paths is not None:
            raise TypeError(f"prerender(paths=...) marks a view, not the blueprint {obj.name!r}")
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
