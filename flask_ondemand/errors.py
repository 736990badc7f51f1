"""Exceptions and warnings raised by flask_ondemand.

Errors stop a build or a server start; every message names the route, URL or file and the cause.
Warnings share one base class, :class:`OnDemandWarning`, so that one filter can silence or promote
them all, as Frozen-Flask does with ``FrozenFlaskWarning``.
"""

from __future__ import annotations

from flask_frozen import MimetypeMismatchWarning, MissingURLGeneratorWarning
from werkzeug.exceptions import BadRequest


class OnDemandError(Exception):
    """Base class of the errors raised by flask_ondemand."""


class ConfigError(OnDemandError):
    """A ``ONDEMAND_*`` setting has a value that cannot work."""


class BuildError(OnDemandError):
    """The build cannot finish. The previous build, if any, is left as it was."""


class PageError(BuildError):
    """One prerendered URL raised, or answered with a status a file cannot hold."""

    def __init__(self, url: str, cause: str, trace: str | None = None) -> None:
        super().__init__(f"{url}: {cause}")
        self.url = url
        self.cause = cause
        #: The traceback of the page's own exception, formatted where it happened (it may
        #: have happened in a worker process).
        self.trace = trace


class PagesFailed(BuildError):
    """More than one prerendered page failed: the build rendered every page it could, and
    lists each failure (up to :attr:`LIMIT`, then how many more)."""

    LIMIT = 20

    def __init__(self, errors: list[PageError]) -> None:
        listed = "".join(f"\n  {error}" for error in errors[: self.LIMIT])
        more = len(errors) - self.LIMIT
        if more > 0:
            listed += f"\n  ... and {more} more"
        super().__init__(f"{len(errors)} pages failed:{listed}")
        self.errors = errors


class HeadersSentError(OnDemandError):
    """A page changed its status, headers or cookies after they were sent: in a streamed page,
    after the first chunk. They can only be set at page level, before streaming starts."""


class UnsafeHeaderError(BadRequest, ValueError):
    """Text bound for a response's head (a header, a cookie, a redirect location, a status text)
    contains CR, LF or NUL. It is refused and never sent.

    It is a ``ValueError``, and also Werkzeug's ``BadRequest``: when the text came from the
    request, as in a header injection attempt, the answer is 400, not 500.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)


class IslandError(OnDemandError):
    """``defer()`` names an endpoint that is not a server island. In a prerendered page, the
    build fails, naming the page."""


class ManifestError(OnDemandError):
    """A build's manifest is missing or does not describe a build this version can serve."""


class OnDemandWarning(UserWarning):
    """Base class of the warnings issued by flask_ondemand."""


class NoViewFunctionWarning(OnDemandWarning):
    """A URL rule has no view function, so it is neither prerendered nor served."""


# Frozen-Flask ships no types, so mypy sees its warning classes as Any.
class NoPathsWarning(OnDemandWarning, MissingURLGeneratorWarning):  # type: ignore[misc]
    """A prerendered route with parameters produced no URL, so all its URLs will be 404.

    It is also a Frozen-Flask ``MissingURLGeneratorWarning``, which it replaces.
    """


class RequestDataWarning(OnDemandWarning):
    """A prerendered page read request-specific data (cookies, the session, query arguments, the
    client's headers or address) while it was built. The file holds what the build's request
    gave, for every visitor. ``ONDEMAND_STRICT = True`` makes this an error."""


class IslandWarning(OnDemandWarning):
    """A prerendered page has a server island where it cannot work: in ``<head>``, where a
    browser ends the head at the island's element."""


class AdapterWarning(OnDemandWarning):
    """An adapter could not give the host everything the wsgi build does (say, a method-based
    route on a host that routes by path only)."""


class ContentTypeWarning(OnDemandWarning, MimetypeMismatchWarning):  # type: ignore[misc]
    """A prerendered file's extension disagrees with the Content-Type its view answered with.

    It is also a Frozen-Flask ``MimetypeMismatchWarning``, so existing filters keep working.
    """
