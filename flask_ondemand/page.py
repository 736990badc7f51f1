"""Page-level helpers: ``response`` (status, status text, headers), ``redirect`` and ``stream``.

What a view sets through them is kept in a :class:`PageState` in the request's WSGI environ and
applied to whatever the view returns: by a wrapper around ``app.make_response`` for the status
and headers, which must know whether the view returned a body or a Response of its own (put
there by the app's first page state, so that an app using no helper does not pay for it), and
by an ``after_request`` hook for cookies. That hook is the moment the headers are final; from
then on, as in Astro, a change raises :class:`~flask_ondemand.HeadersSentError`.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Flask,
    current_app,
    request,
    stream_template,
    stream_with_context,
)
from flask import redirect as flask_redirect
from flask.globals import _cv_request
from flask.wrappers import Response as FlaskResponse
from werkzeug.datastructures import Headers
from werkzeug.wrappers import Response

from .errors import HeadersSentError
from .headers import check_header_name, check_header_text
from .pagetable import REDIRECT_STATUSES

PAGE_KEY = "flask_ondemand.page"
# Set once the response's headers are final, whether or not the page used a helper.
SENT_KEY = "flask_ondemand.sent"
# Set on a Response made by stream(): the page's status and headers apply to it.
_PAGE_RESPONSE = "_ondemand_page_response"


class PageHeaders(Headers):
    """Werkzeug ``Headers`` that refuse unsafe text, and any change once headers are sent."""

    def __init__(self, state: PageState) -> None:
        super().__init__()
        self._state = state

    def add(self, key: str, value: Any, /, **kwargs: Any) -> None:
        self._check(key, value)
        super().add(key, value, **kwargs)

    def set(self, key: str, value: Any, /, **kwargs: Any) -> None:
        self._check(key, value)
        super().set(key, value, **kwargs)

    def __delitem__(self, key: Any, **kwargs: Any) -> None:
        self._state.check_open("response.headers")
        super().__delitem__(key, **kwargs)

    def pop(self, key: Any = None, default: Any = None) -> Any:
        self._state.check_open("response.headers")
        return super().pop(key, default)

    def clear(self) -> None:
        self._state.check_open("response.headers")
        super().clear()

    def _check(self, key: str, value: Any) -> None:
        self._state.check_open("response.headers")
        check_header_name(str(key))
        check_header_text(f"the value of header {key!r}", str(value))


@dataclass(frozen=True)
class OutgoingCookie:
    """A cookie the page set (``value`` is what goes on the wire) or deleted (``value`` None)."""

    value: str | None
    #: Keyword arguments of Werkzeug's ``set_cookie``, or of ``delete_cookie``.
    options: dict[str, Any]


@dataclass(eq=False)
class PageState:
    """What the view asked for, for the response of the current request."""

    status: int | None = None
    status_text: str | None = None
    headers: PageHeaders = field(init=False)
    outgoing: dict[str, OutgoingCookie] = field(default_factory=dict)
    #: True once the headers are final (after the app's after_request hooks).
    sent: bool = False

    def __post_init__(self) -> None:
        self.headers = PageHeaders(self)

    def check_open(self, what: str) -> None:
        if self.sent:
            raise HeadersSentError(
                f"{what}: the headers of {request.path} were already sent. Headers and cookies"
                " can only be set at page level, before streaming starts."
            )


def page_state() -> PageState:
    """Return the current request's page state, made on first use."""
    environ = request.environ
    state: PageState | None = environ.get(PAGE_KEY)
    if state is None:
        if "ondemand" not in current_app.extensions:
            raise RuntimeError(
                f"flask_ondemand's page helpers need OnDemand on the app {current_app.name!r}:"
                " call OnDemand(app), or ondemand.init_app(app) in your app factory."
            )
        if _APPLIED_KEY not in current_app.extensions:
            _apply_page_states(current_app._get_current_object())  # type: ignore[attr-defined]
        state = environ[PAGE_KEY] = PageState(sent=environ.get(SENT_KEY, False))
    return state


class PageResponse:
    """``response``: the status, status text and headers of the current page, as
    ``Astro.response``. They apply when the view returns a body (a str, a template, a dict or
    list, or a tuple, whose own status and headers win); a view that returns its own Response
    keeps its status and headers."""

    @property
    def status(self) -> int:
        state = page_state()
        return state.status or 200

    @status.setter
    def status(self, value: int) -> None:
        state = page_state()
        state.check_open("response.status")
        if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 599:
            raise ValueError(f"response.status must be an int from 100 to 599, not {value!r}")
        state.status = value

    @property
    def status_text(self) -> str | None:
        state = page_state()
        return state.status_text

    @status_text.setter
    def status_text(self, value: str | None) -> None:
        state = page_state()
        state.check_open("response.status_text")
        if value is not None:
            check_header_text("response.status_text", value)
        state.status_text = value

    @property
    def headers(self) -> Headers:
        state = page_state()
        return state.headers


response = PageResponse()


def redirect(location: str, status: int = 302) -> Response:
    """Return a redirect to ``location``, as ``Astro.redirect``.

    In a prerendered route, the build records it: servers answer with the real status and
    Location, and the file is an HTML page with ``<meta http-equiv="refresh">``.

    :raises ValueError: if ``status`` is not a redirect status: 300, 301, 302, 303, 307 or
        308. (304, 305 and 306 are in the 3xx range but are not redirects.)
    :raises UnsafeHeaderError: if ``location`` has a control character, a line separator or
        a character outside Latin-1 (a 400 in a request).
    """
    if isinstance(status, bool) or status not in REDIRECT_STATUSES:
        raise ValueError(
            f"redirect status must be one of {', '.join(map(str, REDIRECT_STATUSES))},"
            f" not {status!r}"
        )
    check_header_text("the redirect location", location, url=True)
    return flask_redirect(location, status)


def safe_redirect(target: str | None, fallback: str, status: int = 302) -> Response:
    """Redirect to ``target`` if it stays on this site, and to ``fallback`` otherwise.

    For targets that come from the request, as the ``?next=`` of a login form: a target on
    another host (``https://evil.example/``, ``//evil.example``, ``/\\evil.example``), with
    another scheme (``javascript:``), with control characters or surrounding spaces, or from
    HTTPS down to HTTP, is not followed. Hosts listed in ``ONDEMAND_REDIRECT_HOSTS`` (``"host"``
    or ``"host:port"``) are allowed too.

    Reads ``ONDEMAND_REDIRECT_HOSTS``.
    """
    return redirect(target if target and _stays_on_site(target) else fallback, status)


def _stays_on_site(target: str) -> bool:
    if (
        target != target.strip()
        or "\\" in target
        or any(ord(char) < 32 or ord(char) == 127 for char in target)
    ):
        return False
    try:
        parts = urlsplit(target)
    except ValueError:  # "//[" and the like
        return False
    if parts.scheme not in ("", "http", "https") or (parts.scheme and not parts.netloc):
        return False
    if not parts.netloc:
        return not target.startswith("//")
    if parts.netloc.lower() == request.host.lower():
        # This very site: but not from HTTPS down to HTTP.
        return not (request.scheme == "https" and parts.scheme == "http")
    # Another host: only one listed, as "host" or "host:port", and on the port listed.
    listed = {host.lower() for host in current_app.config.get("ONDEMAND_REDIRECT_HOSTS", ())}
    return parts.netloc.lower() in listed


def stream(template_or_chunks: str | Iterable[str | bytes], /, **context: Any) -> Response:
    """Send a page in chunks as it renders: a template by name, or your own chunks.

    ``stream("page.html", items=load_items)`` sends the template's output while Jinja renders
    it, so the head reaches the browser before a slow call in the body finishes. Headers and
    cookies set before the first chunk (also inside your generator, before its first
    ``yield``) go with it; after that, setting them raises
    :class:`~flask_ondemand.HeadersSentError`.
    """
    if isinstance(template_or_chunks, str):
        chunks: Iterator[Any] = stream_template(template_or_chunks, **context)
    else:
        chunks = stream_with_context(iter(template_or_chunks))
    # Run the page up to its first chunk now, while its headers can still change.
    first = list(itertools.islice(chunks, 1))
    page = current_app.response_class(itertools.chain(first, chunks), mimetype="text/html")
    # nginx (and proxies that follow it) buffer answers, but pass this one on as it comes.
    page.headers["X-Accel-Buffering"] = "no"
    setattr(page, _PAGE_RESPONSE, True)
    return page


def install(app: Flask) -> None:
    """Apply page state to the responses of ``app``: its cookies now, its status and headers
    once a page first uses a helper (see :func:`page_state`)."""
    app.after_request(_send_cookies)


# In app.extensions once the app's make_response applies page states.
_APPLIED_KEY = "ondemand.page_states"
_applying = threading.Lock()


def _apply_page_states(app: Flask) -> None:
    """Make ``app.make_response`` apply the page state of its request, from now on: done by
    the first page that has one, before its response is made, so that an app whose pages use
    no helper makes its responses as Flask alone does."""
    with _applying:
        if _APPLIED_KEY in app.extensions:  # another thread's page was first
            return
        make_response = app.make_response

        def make_page_response(rv: Any) -> FlaskResponse:
            made = make_response(rv)
            context = _cv_request.get(None)
            state = context.request.environ.get(PAGE_KEY) if context is not None else None
            if state is not None:
                _apply_status_and_headers(state, rv, made)
            return made

        app.make_response = make_page_response  # type: ignore[method-assign]
        app.extensions[_APPLIED_KEY] = True


def _apply_status_and_headers(state: PageState, rv: Any, made: Response) -> None:
    body = rv[0] if isinstance(rv, tuple) else rv
    if (isinstance(body, Response) and not getattr(body, _PAGE_RESPONSE, False)) or (
        callable(body) and not isinstance(body, Response)
    ):
        return  # the view's own Response, or a WSGI app: theirs to shape
    given_status = False
    given_headers: set[str] = set()
    if isinstance(rv, tuple) and len(rv) > 1:
        extra = rv[1:]
        if len(extra) == 2 or not isinstance(extra[0], (Headers, dict, tuple, list)):
            given_status = True
        if isinstance(extra[-1], (Headers, dict, tuple, list)):
            given_headers = {key.lower() for key, _ in Headers(extra[-1]).items()}
    if not given_status and (state.status is not None or state.status_text is not None):
        code = state.status or made.status_code
        made.status = f"{code} {state.status_text}" if state.status_text else str(code)
    for key in dict.fromkeys(key for key, _ in state.headers.items()):  # in the order set
        if key.lower() not in given_headers:
            made.headers.setlist(key, state.headers.getlist(key))


def _send_cookies(made: Response) -> Response:
    environ = _cv_request.get().request.environ  # not through the proxy: for every request
    environ[SENT_KEY] = True
    state = environ.get(PAGE_KEY)
    if state is not None:
        for name, cookie in state.outgoing.items():
            if cookie.value is None:
                made.delete_cookie(name, **cookie.options)
            else:
                made.set_cookie(name, cookie.value, **cookie.options)
        state.sent = True
    return made
