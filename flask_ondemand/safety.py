"""Prerender safety: noticing, at build time, a prerendered page that depends on its request.

A prerendered page is rendered once and served to everyone, so what it reads from the build's
request (cookies, the session, query arguments, the client's headers or address) is frozen
into the file. Astro warns about some of this; here the build records every such read while a
page renders, and the freezer turns them into a :class:`~flask_ondemand.RequestDataWarning`
(or an error with ``ONDEMAND_STRICT``). A page that sets a cookie always fails the build.

Recording costs nothing outside a build: the helpers check for a :class:`Recorder` in the
request's environ, and only the build puts one there.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from flask import Flask, has_request_context, request
from flask.globals import _cv_request
from werkzeug.datastructures import EnvironHeaders
from werkzeug.wrappers import Request

RECORDER_KEY = "flask_ondemand.recorder"

# Every request has these, or they describe its body rather than its client.
_ORDINARY_HEADERS = frozenset({"host", "content-type", "content-length"})


@dataclass(eq=False)
class Recorder:
    """What one page read and wrote of its request while it rendered."""

    reads: set[str] = field(default_factory=set)
    writes: set[str] = field(default_factory=set)
    #: The URLs the page's ``url_for`` calls built, for discovering more pages.
    urls: list[str] = field(default_factory=list)
    #: Off while Flask opens the session, which reads the cookies of every request.
    active: bool = False
    #: On while a helper reads on the page's behalf, having noted the read by name.
    quiet: bool = False

    def note(self, what: str, *, write: bool = False) -> None:
        if self.active and not self.quiet:
            (self.writes if write else self.reads).add(what)


def _recorder() -> Recorder | None:
    if not has_request_context():
        return None
    recorder: Recorder | None = request.environ.get(RECORDER_KEY)
    return recorder


def note_request_data(what: str, *, write: bool = False) -> None:
    """Record that the current page read (or wrote) request-specific data, during a build."""
    recorder = _recorder()
    if recorder is not None:
        recorder.note(what, write=write)


@contextmanager
def quietly() -> Iterator[None]:
    """Read request data without recording it, because the caller recorded it by name."""
    recorder = _recorder()
    if recorder is None:
        yield
        return
    recorder.quiet = True
    try:
        yield
    finally:
        recorder.quiet = False


def _note(environ: dict[str, Any], what: str) -> None:
    recorder: Recorder | None = environ.get(RECORDER_KEY)
    if recorder is not None:
        recorder.note(what)


class _RecordingHeaders(EnvironHeaders):
    # Every lookup by name (headers[name], get, in, getlist) goes through _get_key.
    def _get_key(self, key: str) -> str:
        if isinstance(key, str) and key.lower() not in _ORDINARY_HEADERS:
            _note(self.environ, f"request.headers[{key.title()!r}]")
        return super()._get_key(key)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        _note(self.environ, "request.headers")
        return super().__iter__()


AnyRequest = TypeVar("AnyRequest", bound=Request)


def recording_request_class(base: type[AnyRequest]) -> type[AnyRequest]:
    """Return a subclass of the app's request class that records request-specific reads."""
    namespace = {
        "cookies": _recorded(base, "cookies"),
        "args": _recorded(base, "args"),
        "values": _recorded(base, "values"),
        "access_route": _recorded(base, "access_route"),
        "remote_addr": _recorded_attribute("remote_addr"),
        "headers": property(_recording_headers, _reset_headers),
    }
    return type(f"Recording{base.__name__}", (base,), namespace)


def _recorded(base: type[Request], name: str) -> property:
    """A property that records its read, then answers as ``base`` does."""
    inherited = getattr(base, name)

    def get(self: Request) -> Any:
        _note(self.environ, f"request.{name}")
        return inherited.__get__(self, type(self))

    return property(get)


def _recorded_attribute(name: str) -> property:
    """Like :func:`_recorded`, for an attribute Werkzeug assigns in ``__init__``."""
    key = f"_recorded_{name}"

    def get(self: Request) -> Any:
        _note(self.environ, f"request.{name}")
        return self.__dict__[key]

    def set(self: Request, value: Any) -> None:
        self.__dict__[key] = value

    return property(get, set)


def _recording_headers(self: Request) -> _RecordingHeaders:
    # Werkzeug assigns ``headers`` in __init__ (before ``environ``): EnvironHeaders of the
    # request's environ. The recording version reads the same environ.
    if "_recording_headers" not in self.__dict__:
        self.__dict__["_recording_headers"] = _RecordingHeaders(self.environ)
    headers: _RecordingHeaders = self.__dict__["_recording_headers"]
    return headers


def _reset_headers(self: Request, value: Any) -> None:
    self.__dict__.pop("_recording_headers", None)


def start_recording(recorder: Recorder) -> None:
    """Begin recording for the current request, once Flask has opened its session."""
    recorder.active = True


def stop_recording(recorder: Recorder) -> None:
    """End recording; note a session the page touched.

    Flask marks its session ``accessed`` whenever the ``session`` proxy is used (since Flask
    3.1; 3.0 marks reads by key only). Going through the proxy here would mark it too, so the
    request context's own reference is read.
    """
    context = _cv_request.get(None)
    if context is not None and getattr(getattr(context, "_session", None), "accessed", False):
        recorder.note("session")
    recorder.active = False


@contextmanager
def recording_requests(app: Flask) -> Iterator[None]:
    """Make ``app`` use a recording request class inside the block (a build)."""
    saved = app.request_class
    app.request_class = recording_request_class(saved)
    try:
        yield
    finally:
        app.request_class = saved
