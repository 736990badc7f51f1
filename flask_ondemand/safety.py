"""Prerender safety: noticing, at build time, a prerendered page that depends on its request.

A prerendered page is rendered once and served to everyone, so what it reads from the build's
request (cookies, the session, query arguments, the client's headers or address, the signed-in
user) is frozen into the file. Astro warns about some of this; here the build records every
such read while a page renders, with the template and line it came from, and the renderer
turns them into a :class:`~flask_ondemand.RequestDataWarning` (or an error with
``ONDEMAND_STRICT``). A page that sets a cookie always fails the build.

What cannot change the page is not recorded, so that every warning can be acted on: reads by
``after_request`` hooks (the page is made by then; Flask-Login reads the session in one for
every request), reads while a static file is served, and Flask-Login loading the user: only a
page that then uses ``current_user`` depends on who is signed in.

Recording costs nothing outside a build: the helpers check for a :class:`Recorder` in the
request's environ, and only the build puts one there.
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
import sysconfig
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

from flask import (
    Flask,
    after_this_request,
    current_app,
    g,
    has_request_context,
    request,
)
from flask.ctx import RequestContext
from flask.globals import _cv_request
from flask.sessions import SessionInterface, SessionMixin
from flask.wrappers import Request as FlaskRequest
from werkzeug.datastructures import EnvironHeaders
from werkzeug.wrappers import Request

RECORDER_KEY = "flask_ondemand.recorder"

# Every request has these, they describe its body rather than its client, or they say how the
# site is reached (the same for every visitor of a deployment).
_ORDINARY_HEADERS = frozenset(
    {
        "host",
        "content-type",
        "content-length",
        "x-forwarded-proto",
        "x-forwarded-host",
        "x-forwarded-port",
        "x-forwarded-prefix",
    }
)


@dataclass(eq=False)
class Recorder:
    """What one page read and wrote of its request while it rendered."""

    #: What it read -> where (see :func:`_where_read`), if known.
    reads: dict[str, str | None] = field(default_factory=dict)
    #: What it wrote -> where, as for reads.
    writes: dict[str, str | None] = field(default_factory=dict)
    #: The URLs the page's ``url_for`` calls built, for discovering more pages.
    urls: list[str] = field(default_factory=list)
    #: The first absolute URL the page built for its own site, to tell about the site's URL.
    external_url: str | None = None
    #: True while the page is being made: from the request's start (once Flask has opened its
    #: session, which reads the cookies of every request) to its after_request hooks.
    active: bool = False
    #: On while a helper reads on the page's behalf, having noted the read by name.
    quiet: bool = False
    #: The URL rule the request reached, once it starts: the page's route, known without
    #: matching its URL again.
    rule: Any = None
    #: The names of the query parameters the page looked up (``request.args.get("page")``):
    #: a query without any of them gives the same page (see :func:`_record_lookups`).
    query_keys: set[str] = field(default_factory=set)
    #: True when the page read its query whole (iterated ``request.args``, read
    #: ``request.url`` or ``request.query_string``): any parameter may change it.
    whole_query: bool = False

    def note(self, what: str, *, write: bool = False) -> None:
        if not self.active or self.quiet:
            return
        if write:
            if what not in self.writes:
                self.writes[what] = _where_read()
        elif what not in self.reads or not _in_a_template(self.reads[what]):
            # The first read of each kind, but a template's over code's: where the page shows
            # it is where to put an island (a context processor may have read it first).
            where = _where_read()
            if what not in self.reads or _in_a_template(where):
                self.reads[what] = where

    def note_query(self, key: str | None) -> None:
        """Note a lookup of the query parameter ``key``, or (None) a read of the whole query."""
        if not self.active or self.quiet:
            return
        if key is None:
            self.whole_query = True
        else:
            self.query_keys.add(key)


def _where_read() -> str | None:
    """Where the app read request data: the innermost template being rendered, as
    "templates/base.html, line 12", or else the innermost line of the app's own code (not a
    library's), as "app.py, line 40"; or else (a library's decorator read it, as Flask-Login's
    ``@login_required``) where the view is defined, decorators and all; None if none is."""
    frame: FrameType | None = sys._getframe(2)
    code_line = None
    while frame is not None:
        template = frame.f_globals.get("__jinja_template__")
        if template is not None:
            line = template.get_corresponding_lineno(frame.f_lineno)
            name = _shown(template.filename) or template.name
            if name:  # not a template made from a string
                return f"{name}, line {line}{_TEMPLATE}"
        elif frame.f_code is _DISPATCH:  # what calls the app is not the app's code
            break
        elif code_line is None and not _in_a_library(frame.f_code.co_filename):
            code_line = f"{_shown(frame.f_code.co_filename)}, line {frame.f_lineno}"
        frame = frame.f_back
    return code_line or _view_defined()


# Where Flask runs a request's hooks and view: recording happens inside it.
_DISPATCH = Flask.full_dispatch_request.__code__


def _view_defined() -> str | None:
    """Where the view of the current request is defined (its first decorator's line)."""
    if not has_request_context() or request.endpoint is None:
        return None
    view = current_app.view_functions.get(request.endpoint)
    code = getattr(inspect.unwrap(view), "__code__", None) if view is not None else None
    if code is None or _in_a_library(code.co_filename):
        return None
    return f"{_shown(code.co_filename)}, line {code.co_firstlineno}"


# Appended to a template's location inside the recorder, so it can be told from code's; the
# renderer strips it (see :func:`shown_location`).
_TEMPLATE = " (template)"


def _in_a_template(where: str | None) -> bool:
    return where is not None and where.endswith(_TEMPLATE)


def shown_location(where: str | None) -> str | None:
    """A location as a message shows it."""
    return where.removesuffix(_TEMPLATE) if where else None


_LIBRARIES = (
    str(Path(__file__).parent),
    # "scripts": the environment's own commands, such as bin/flask, which runs the build.
    *{
        sysconfig.get_paths()[key]
        for key in ("stdlib", "platstdlib", "purelib", "platlib", "scripts")
    },
)


@functools.cache
def _in_a_library(filename: str) -> bool:
    """Whether code is this package's, the standard library's or an installed package's."""
    parts = Path(filename).parts
    return (
        filename.startswith(_LIBRARIES)
        or "site-packages" in parts
        or "dist-packages" in parts
        or filename.startswith("<")
    )


def _shown(path: str | None) -> str | None:
    """A template's file as the user would type it: relative to the current folder, if in it."""
    if path is None:
        return None
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def _recorder() -> Recorder | None:
    # The request context itself, not the request proxy: this runs for every page.
    context = _cv_request.get(None)
    if context is None:
        return None
    recorder: Recorder | None = context.request.environ.get(RECORDER_KEY)
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
    # Every lookup by name (headers[name], get, in, getlist) goes through __getitem__ in
    # Werkzeug 3.0, and through _get_key, which __getitem__ calls too, from 3.1 on.
    def __getitem__(self, key: Any, *args: Any, **kwargs: Any) -> Any:
        _note_header(self.environ, key)
        return super().__getitem__(key, *args, **kwargs)

    def _get_key(self, key: str) -> str:
        _note_header(self.environ, key)
        return super()._get_key(key)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        _note(self.environ, "request.headers")
        return super().__iter__()


def _note_header(environ: dict[str, Any], key: object) -> None:
    if isinstance(key, str) and key.lower() not in _ORDINARY_HEADERS:
        _note(environ, f"request.headers[{key.title()!r}]")


AnyRequest = TypeVar("AnyRequest", bound=Request)


def recording_request_class(base: type[AnyRequest]) -> type[AnyRequest]:
    """Return a subclass of the app's request class that records request-specific reads."""
    namespace = {
        "cookies": _recorded(base, "cookies"),
        "args": _recorded_args(base),
        # Read by request.url and request.full_path too: the query as a whole.
        "query_string": _query_string_attribute(),
        "values": _recorded(base, "values"),
        "access_route": _recorded(base, "access_route"),
        "remote_addr": _recorded_attribute("remote_addr"),
        "headers": property(_recording_headers, _reset_headers),
        # Read from the environ, not through ``headers``: Flask-Babel's locale, for one.
        **{
            name: _recorded(base, name, f"request.headers[{header!r}]")
            for name, header in _ACCEPT_HEADERS.items()
        },
        # Absolute URLs of the page's own site: not request-specific, but what the build's
        # request gives for them is only right if the site's URL is set.
        **{name: _external(base, name) for name in ("url", "base_url", "url_root", "host_url")},
    }
    return type(f"Recording{base.__name__}", (base,), namespace)


_ACCEPT_HEADERS = {
    "accept_languages": "Accept-Language",
    "accept_mimetypes": "Accept",
    "accept_charsets": "Accept-Charset",
    "accept_encodings": "Accept-Encoding",
}


def _recorded(base: type[Request], name: str, what: str | None = None) -> property:
    """A property that records its read (as ``what``), then answers as ``base`` does."""
    inherited = getattr(base, name)
    noted = what or f"request.{name}"

    def get(self: Request) -> Any:
        _note(self.environ, noted)
        return inherited.__get__(self, type(self))

    return property(get)


def _recorded_args(base: type[Request]) -> property:
    """``request.args``, noted as a read, which notes which parameters the page looks up."""
    inherited: Any = base.args

    def get(self: Request) -> Any:
        _note(self.environ, "request.args")
        args = self.__dict__.get("args")
        if args is None:
            recorder: Recorder | None = self.environ.get(RECORDER_KEY)
            # Parsing reads the query string: that is no read of the page's.
            with _parsing_query(recorder):
                args = inherited.__get__(self, type(self))
            if recorder is not None:
                _record_lookups(args, recorder)
        return args

    return property(get)


@contextmanager
def _parsing_query(recorder: Recorder | None) -> Iterator[None]:
    """Parse the query without noting a read of it as a whole."""
    whole = recorder.whole_query if recorder is not None else False
    try:
        yield
    finally:
        if recorder is not None:
            recorder.whole_query = whole


def _record_lookups(args: Any, recorder: Recorder) -> None:
    """Make ``args`` (of the app's ``parameter_storage_class``) note its lookups by key; one
    whose class cannot be swapped counts as read whole."""
    base = type(args)
    if base not in _recording_args:
        namespace: dict[str, Any] = {
            name: wrap(method)
            for names, wrap in ((_ARGS_BY_KEY, _by_key), (_ARGS_WHOLE, _whole))
            for name in names
            if callable(method := getattr(base, name, None))  # a mutable one has no __hash__
        }
        _recording_args[base] = type(f"Recording{base.__name__}", (base,), namespace)
    try:
        args.__class__ = _recording_args[base]
    except TypeError:
        recorder.note_query(None)


# How a MultiDict is read: by key, or whole (what a page then shows may hang on any key).
_ARGS_BY_KEY = ("__getitem__", "get", "getlist", "__contains__")
_ARGS_WHOLE = (
    *("__iter__", "__len__", "keys", "values", "items", "lists", "listvalues", "to_dict"),
    *("copy", "deepcopy", "__copy__", "__deepcopy__", "__reduce_ex__", "__getstate__"),
    *("__repr__", "__eq__", "__ne__", "__hash__", "__or__", "__ror__"),
)
_recording_args: dict[type, type] = {}


def _by_key(method: Callable[..., Any]) -> Callable[..., Any]:
    def looked_up(self: Any, key: Any, *args: Any, **kwargs: Any) -> Any:
        recorder = _recorder()
        if recorder is not None:
            recorder.note_query(key if isinstance(key, str) else None)
        return method(self, key, *args, **kwargs)

    return looked_up


def _whole(method: Callable[..., Any]) -> Callable[..., Any]:
    def read_whole(self: Any, *args: Any, **kwargs: Any) -> Any:
        recorder = _recorder()
        if recorder is not None:
            recorder.note_query(None)
        return method(self, *args, **kwargs)

    return read_whole


def _query_string_attribute() -> property:
    """``request.query_string``, which Werkzeug assigns in ``__init__``: reading it (as
    ``request.url`` and ``request.full_path`` do) reads the whole query."""

    def get(self: Request) -> Any:
        recorder: Recorder | None = self.environ.get(RECORDER_KEY)
        if recorder is not None:
            recorder.note_query(None)
        return self.__dict__["_recorded_query_string"]

    def set(self: Request, value: Any) -> None:
        self.__dict__["_recorded_query_string"] = value

    return property(get, set)


def _recorded_attribute(name: str) -> property:
    """Like :func:`_recorded`, for an attribute Werkzeug assigns in ``__init__``."""
    key = f"_recorded_{name}"

    def get(self: Request) -> Any:
        _note(self.environ, f"request.{name}")
        return self.__dict__[key]

    def set(self: Request, value: Any) -> None:
        self.__dict__[key] = value

    return property(get, set)


def _external(base: type[Request], name: str) -> property:
    """A property that notes the absolute URL it gives, then gives it."""
    inherited = getattr(base, name)

    def get(self: Request) -> Any:
        url = inherited.__get__(self, type(self))
        note_external_url(url)
        return url

    return property(get)


def note_external_url(url: str) -> None:
    """Record that the current page built an absolute URL of its own site, during a build."""
    recorder = _recorder()
    if recorder is not None and recorder.active and recorder.external_url is None:
        recorder.external_url = url


def _recording_headers(self: Request) -> _RecordingHeaders:
    # Werkzeug assigns ``headers`` in __init__ (before ``environ``): EnvironHeaders of the
    # request's environ. The recording version reads the same environ.
    if "_recording_headers" not in self.__dict__:
        self.__dict__["_recording_headers"] = _RecordingHeaders(self.environ)
    headers: _RecordingHeaders = self.__dict__["_recording_headers"]
    return headers


def _reset_headers(self: Request, value: Any) -> None:
    self.__dict__.pop("_recording_headers", None)


# The session: its class is swapped for a subclass that notes every read, so that reads are
# seen whatever Flask version marks (3.0 marks reads by key only), and a read by Flask-Login
# while it loads the user is not taken for the page's.
_SESSION_READS = (
    *("__getitem__", "get", "__contains__", "__iter__", "__len__", "keys", "items", "values"),
    *("setdefault", "pop", "copy", "__repr__", "__eq__"),
)
# And these may change it: what they change is noted by key, for the build's message.
_SESSION_WRITES = ("__setitem__", "__delitem__", "setdefault", "pop", "popitem", "update", "clear")
_recording_sessions: dict[type, type] = {}


def _recording_session(session: Any) -> Any:
    """Make ``session`` note its reads; left as it is if its class cannot be swapped (or it
    is None: Flask then makes a null session, which is made to note its reads too)."""
    if session is None:
        return None
    base = type(session)
    if base not in _recording_sessions:
        namespace = {name: _noting(getattr(base, name)) for name in _SESSION_READS}
        namespace.update(
            {
                name: _noting_changes(namespace.get(name, getattr(base, name)))
                for name in _SESSION_WRITES
            }
        )
        _recording_sessions[base] = type(f"Recording{base.__name__}", (base,), namespace)
    # A session class of C, or with __slots__, stays: Flask's own flag then decides.
    with suppress(TypeError):
        session.__class__ = _recording_sessions[base]
    return session


def _noting(method: Callable[..., Any]) -> Callable[..., Any]:
    def noted(self: Any, *args: Any, **kwargs: Any) -> Any:
        note_request_data("session")
        return method(self, *args, **kwargs)

    return noted


def _noting_changes(method: Callable[..., Any]) -> Callable[..., Any]:
    def changing(self: Any, *args: Any, **kwargs: Any) -> Any:
        before = dict(dict.items(self))  # the dict's own methods: not noted as reads
        try:
            return method(self, *args, **kwargs)
        finally:
            after = dict(dict.items(self))
            for key in sorted(before.keys() | after.keys(), key=str):
                if before.get(key, _ABSENT) != after.get(key, _ABSENT):
                    note_request_data(f"session[{key!r}]", write=True)

    return changing


_ABSENT = object()


class _RecordingSessionInterface(SessionInterface):
    """The app's session interface, giving sessions that note their reads."""

    def __init__(self, wrapped: SessionInterface) -> None:
        self.wrapped = wrapped

    def __getattr__(self, name: str) -> Any:
        return getattr(self.wrapped, name)

    def open_session(self, app: Flask, request: FlaskRequest) -> SessionMixin | None:
        session: SessionMixin | None = _recording_session(self.wrapped.open_session(app, request))
        return session

    def save_session(self, app: Flask, session: SessionMixin, response: Any) -> None:
        self.wrapped.save_session(app, session, response)

    def make_null_session(self, app: Flask) -> Any:
        return _recording_session(self.wrapped.make_null_session(app))


class _RecordedUser:
    """Flask-Login's user for the build's request (anonymous), noting every use: a page that
    asks who is signed in depends on it."""

    def __init__(self, user: Any) -> None:
        object.__setattr__(self, "_user", user)

    def __getattr__(self, name: str) -> Any:
        note_request_data("current_user")
        return getattr(object.__getattribute__(self, "_user"), name)

    def __bool__(self) -> bool:
        note_request_data("current_user")
        return bool(object.__getattribute__(self, "_user"))

    def __str__(self) -> str:
        note_request_data("current_user")
        return str(object.__getattribute__(self, "_user"))

    def __eq__(self, other: object) -> bool:
        note_request_data("current_user")
        return bool(object.__getattribute__(self, "_user") == other)

    def __hash__(self) -> int:
        return hash(object.__getattribute__(self, "_user"))


def start_recording(recorder: Recorder, app: Flask) -> None:
    """Begin recording for the current request, once Flask has opened its session, unless it
    is for a static file: what it reads cannot change the file.

    With Flask-Login, the user is loaded first, unrecorded (that reads the session, cookies
    and headers for every request), and is then noted where it is used.
    """
    if _serves_static_files(app):
        return
    if "flask_login" in sys.modules and getattr(app, "login_manager", None) is not None:
        from flask_login.utils import _get_user  # type: ignore[import-untyped]

        user = _get_user()
        g._login_user = _RecordedUser(user)  # where Flask-Login keeps the request's user
    recorder.active = True


def _serves_static_files(app: Flask) -> bool:
    from .routes import is_static_view

    context = _cv_request.get(None)  # not the request proxy: this runs for every page
    rule = None if context is None else context.request.url_rule
    return rule is not None and is_static_view(app, rule.endpoint)


def stop_recording(recorder: Recorder) -> None:
    """End recording. A session whose reads could not be noted one by one is judged by
    Flask's own mark: used at all (Flask 3.1), or read by key (3.0).

    Going through the ``session`` proxy would mark it too, so the request context's own
    reference is read.
    """
    context = _cv_request.get(None)
    session = getattr(context, "_session", None)
    if (
        recorder.active
        and session is not None
        and type(session) not in _recording_sessions.values()
        and getattr(session, "accessed", False)
    ):
        recorder.note("session")
    recorder.active = False


@contextmanager
def recording_requests(app: Flask) -> Iterator[None]:
    """Make ``app`` record what its requests read inside the block (a build): a recording
    request class and session, and no recording while its after_request hooks run."""
    saved = app.request_class, app.session_interface, app.process_response
    app.request_class = recording_request_class(saved[0])
    app.session_interface = _RecordingSessionInterface(saved[1])

    def process_response(response: Any) -> Any:
        # The page is made by now: hooks only add headers (kept) or cookies (refused).
        recorder = _recorder()
        if recorder is not None:
            stop_recording(recorder)
        return saved[2](response)

    app.process_response = process_response  # type: ignore[method-assign]
    try:
        with ExitStack() as signals:
            for signal, receiver in _login_signals():
                signals.enter_context(signal.connected_to(receiver, app))
            yield
    finally:
        del app.process_response
        app.request_class, app.session_interface = saved[0], saved[1]


def _login_signals() -> list[tuple[Any, Callable[..., None]]]:
    """Flask-Login's signals that a page logged its visitor in or out, each with a receiver
    that notes it as a write: a page that does it cannot be a file (or a cached answer). None
    when the app does not use Flask-Login."""
    if "flask_login" not in sys.modules:
        return []
    from flask_login import user_logged_in, user_logged_out  # type: ignore[import-untyped]

    def logged_in(sender: Any, **extra: Any) -> None:
        note_request_data("flask_login.login_user()", write=True)

    def logged_out(sender: Any, **extra: Any) -> None:
        note_request_data("flask_login.logout_user()", write=True)

    return [(user_logged_in, logged_in), (user_logged_out, logged_out)]


def record_requests(app: Flask, *, on_response: Callable[[Any], None] | None = None) -> None:
    """Make ``app`` record, from now on, what each of its requests that carries a
    :class:`Recorder` in its environ (under ``RECORDER_KEY``) reads while its page is made, as
    a build does (see :func:`recording_requests`). The route cache puts one there when it
    renders a cached route, so as never to store a page that depends on its visitor.

    Only those requests get the recording request class, session and hooks: every other
    request pays one lookup in its environ, so a server's other pages cost what they cost
    without it.

    :param on_response: called with the response of each recorded request, once its page is
        made (before the app's ``after_request`` hooks).
    """
    recording_class = recording_request_class(app.request_class)
    request_context = app.request_context

    def recording_request_context(environ: dict[str, Any]) -> RequestContext:
        if RECORDER_KEY not in environ:
            return request_context(environ)
        # As Flask makes the request, of the recording class.
        recorded = recording_class(environ)
        recorded.json_module = app.json
        context = _RecordingRequestContext(app, environ, recorded)
        context.on_response = on_response
        return context

    app.request_context = recording_request_context  # type: ignore[method-assign]
    for signal, receiver in _login_signals():
        signal.connect(receiver, app, weak=False)


class _RecordingRequestContext(RequestContext):
    """The request context of a request that carries a :class:`Recorder`: once pushed (its
    session opened and its URL matched, as Flask's ``request_started`` sees it), its session
    notes its reads and recording starts; it stops once the page is made."""

    on_response: Callable[[Any], None] | None = None

    def push(self) -> None:
        super().push()
        environ = self.request.environ
        recorder: Recorder | None = environ.get(RECORDER_KEY)
        # Pushed again to stream a body, or copied to another thread: recorded once.
        if recorder is None or environ.get(_RECORDING_STARTED):
            return
        environ[_RECORDING_STARTED] = True
        state = vars(self)
        # The context's own reference (Flask 3.1's _session, 3.0's session): the session
        # proxy would mark the session accessed.
        _recording_session(state.get("_session", state.get("session")))
        after_this_request(self._stop)
        start_recording(recorder, self.app)

    def _stop(self, response: Any) -> Any:
        # The first of the after-request functions: they and the app's hooks go unrecorded.
        recorder: Recorder | None = self.request.environ.get(RECORDER_KEY)
        if recorder is not None:
            stop_recording(recorder)
        if self.on_response is not None:
            self.on_response(response)
        return response


# Set in a recorded request's environ once its recording has started.
_RECORDING_STARTED = "flask_ondemand.recording_started"
