"""Deciding, rule by rule, what is prerendered and what is rendered on demand.

The decision reads the marks left by :func:`~flask_ondemand.prerender` and ``ONDEMAND_OUTPUT``
each time it is asked, so it always reflects the app as it is now.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass

from flask import Blueprint, Flask
from werkzeug.routing import Rule

from .errors import ConfigError
from .islands import is_island
from .marks import Mark, mark_of

OUTPUTS = ("static", "server")

#: Methods a prerendered file answers by itself.
FILE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# Flask adds these to every GET rule, so they say nothing about what the view accepts.
_AUTOMATIC_METHODS = frozenset({"HEAD", "OPTIONS"})


class Mode(str, enum.Enum):
    PRERENDERED = "prerendered"
    ON_DEMAND = "on demand"
    #: The rule has no view function: nothing can run for it, so it is only used to build URLs.
    NOT_SERVED = "not served"


@dataclass(frozen=True)
class Route:
    """One URL rule and the decision taken for it."""

    rule: Rule
    mode: Mode
    #: Why: "route mark", "blueprint 'shop' mark", "ONDEMAND_OUTPUT = 'static'", "no GET", ...
    reason: str
    #: The mark on the view itself, if any.
    mark: Mark | None = None
    #: Set when the route's own mark cannot be honoured; the build fails with it.
    problem: str | None = None

    @property
    def endpoint(self) -> str:
        return str(self.rule.endpoint)

    @property
    def methods(self) -> list[str]:
        """The methods the view declares, without the automatic HEAD and OPTIONS."""
        return sorted((self.rule.methods or set()) - _AUTOMATIC_METHODS)

    @property
    def explicit(self) -> bool:
        """True when the view itself is marked ``prerender(True)``."""
        return self.mark is not None and self.mark.prerender

    def describe(self) -> str:
        return f"{self.rule.rule} ({self.endpoint})"

    def for_url(self, url: str) -> str:
        """A page of this route, for messages: the URL, then the rule (if it differs) and the
        endpoint, each once."""
        rule = "" if url == self.rule.rule else f"rule {self.rule.rule}, "
        return f"{url} ({rule}endpoint {self.endpoint})"


def output_default(app: Flask) -> str:
    """Return ``ONDEMAND_OUTPUT``, checked.

    Reads ``ONDEMAND_OUTPUT``.
    """
    output = app.config.get("ONDEMAND_OUTPUT", "static")
    if output not in OUTPUTS:
        raise ConfigError(f"ONDEMAND_OUTPUT must be 'static' or 'server', not {output!r}")
    return str(output)


def classify(app: Flask) -> list[Route]:
    """Classify every URL rule of ``app``, in the order of its URL map.

    Precedence: the view's own mark, then its innermost blueprint's mark, then
    ``ONDEMAND_OUTPUT``. A rule without GET is always on demand, and a rule that accepts GET and
    other methods is on demand unless its view is marked ``prerender(True)``.

    Reads ``ONDEMAND_OUTPUT``.
    """
    default = output_default(app)
    return [_classify_rule(app, rule, default) for rule in app.url_map.iter_rules()]


def _classify_rule(app: Flask, rule: Rule, default: str) -> Route:
    view = app.view_functions.get(rule.endpoint)
    if view is None:
        return Route(rule, Mode.NOT_SERVED, "no view function")
    if is_static_view(app, rule.endpoint):
        return Route(rule, Mode.PRERENDERED, "static folder")

    mark = mark_of(view)
    methods = rule.methods or set()
    if "GET" not in methods:
        problem = None
        if is_island(view):
            problem = f"an island but accepts no GET (methods: {', '.join(sorted(methods))})"
        elif mark is not None and mark.prerender:
            problem = (
                f"marked prerender(True) but accepts no GET (methods: {', '.join(sorted(methods))})"
            )
        return Route(rule, Mode.ON_DEMAND, "no GET", mark, problem)
    other = sorted(methods - FILE_METHODS)
    if mark is not None:
        mode = Mode.PRERENDERED if mark.prerender else Mode.ON_DEMAND
        return Route(rule, mode, _mark_reason(mark, is_island(view), other), mark)

    if other:
        return Route(rule, Mode.ON_DEMAND, f"also accepts {', '.join(other)}", mark)
    for name, blueprint in _enclosing_blueprints(app, rule.endpoint):
        blueprint_mark = mark_of(blueprint)
        if blueprint_mark is not None:
            mode = Mode.PRERENDERED if blueprint_mark.prerender else Mode.ON_DEMAND
            return Route(rule, mode, f"blueprint {name!r} mark", mark)
    mode = Mode.PRERENDERED if default == "static" else Mode.ON_DEMAND
    return Route(rule, mode, f"ONDEMAND_OUTPUT = {default!r}", mark)


def _mark_reason(mark: Mark, island: bool, other_methods: list[str]) -> str:
    """Why a route with a mark of its own is what it is, with what the mark says besides."""
    if island:
        return "island"
    said = ["route mark"]
    if mark.prerender and other_methods:
        said.append(f"{', '.join(other_methods)} on demand")
    if mark.live_query:
        said.append("URLs with a query on demand")
    if mark.fallback == "live":
        said.append("URLs not built on demand")
    return "; ".join(said)


def _enclosing_blueprints(app: Flask, endpoint: str) -> Iterator[tuple[str, object]]:
    """Yield the blueprints an endpoint belongs to, innermost first.

    A nested blueprint is registered under its dotted name ("parent.child"), which is also the
    prefix of its endpoints ("parent.child.view").
    """
    parts = endpoint.split(".")[:-1]
    for end in range(len(parts), 0, -1):
        name = ".".join(parts[:end])
        blueprint = app.blueprints.get(name)
        if blueprint is not None:
            yield name, blueprint


def is_static_view(app: Flask, endpoint: str) -> bool:
    """True for the endpoints that serve an app's or a blueprint's static folder."""
    view = app.view_functions.get(endpoint)
    if view is None:
        return False
    function = getattr(view, "__func__", view)
    return endpoint == "static" or function in (
        Flask.send_static_file,
        Blueprint.send_static_file,
    )
