"""Server islands: per-visitor fragments inside pages that are otherwise the same for everyone.

Astro's ``server:defer``, for Flask::

    @account.route("/_menu")
    @island                                  # on demand, GET only; answers an HTML fragment
    def menu():
        return render_template("account/_menu.html")

    {{ defer("account.menu") }}              {# in any template: empty until it loads #}

``defer()`` writes a placeholder element whose source is the island's URL, signed with the
app's ``SECRET_KEY``, and, once a page, a ``<script src>`` for the small script (a static file,
so a ``script-src 'self'`` policy lets it run) that fetches the page's fragments with the
visitor's cookies and puts each in its placeholder's place. Before that, on an error, or
without JavaScript, a placeholder shows its fallback: the body of ``{% call defer(...) %}``.

The script asks for all of a page's islands in one request (``/_ondemand/islands``), which
renders each in turn as a request of its own sharing the visitor's one session: so what one
island writes to a cookie session (a flashed message read, a CSRF token made) is seen by the
next, and only one answer sets the cookie. Islands asked for one by one each answered with a
session cookie of their own, and the last to arrive won.

An island checks its signature before its view runs, so a client cannot ask it for values the
page did not pass. The values are visible in the page: signed, not encrypted.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    jsonify,
    request,
    send_from_directory,
    url_for,
)
from flask.globals import _cv_request
from itsdangerous import Signer
from markupsafe import Markup
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from .errors import IslandError
from .marks import mark_of, prerender
from .page import PAGE_KEY, SENT_KEY, page_state
from .safety import RECORDER_KEY

View = TypeVar("View", bound=Callable[..., Any])

#: The query parameter an island's URL carries its signature in.
SIGNATURE_PARAMETER = "_island"
#: The blueprint of the islands' script, and the script's name.
BLUEPRINT = "flask_ondemand"
SCRIPT = "islands.js"
_SCRIPT_FOLDER = Path(__file__).parent / "static"
#: The element ``defer()`` writes; the script looks for it.
ELEMENT = "ondemand-island"
#: How many islands one request for a page's islands may ask for.
BATCH_LIMIT = 100

_ATTRIBUTE = "_ondemand_island"
_SALT = "flask_ondemand.island"
# Set in a request's environ once its page has the script tag.
_SCRIPT_SENT = "flask_ondemand.island_script"


def island(view: View) -> View:
    """Mark a view as a server island: rendered on demand, for GET, answering an HTML fragment
    that pages embed with ``{{ defer(endpoint) }}``.

    It implies ``prerender(False)``. It is an ordinary Flask view, with the request, cookies,
    session, ``current_user`` and ``flash``; its answer is ``Cache-Control: private,
    no-store`` unless it sets its own. A request without the signature ``defer()`` wrote is a
    400, and one with a wrong signature a 403, before the view runs.
    """
    mark = mark_of(view)
    if mark is not None and mark.prerender:
        raise TypeError(f"{view!r} is marked prerender(True): an island is rendered on demand")
    prerender(False)(view)
    setattr(view, _ATTRIBUTE, True)
    return view


def is_island(view: object) -> bool:
    """Whether a view function (or its class, for a class-based view) is an island."""
    view_class = getattr(view, "view_class", None)
    return bool(getattr(view, _ATTRIBUTE, False) or getattr(view_class, _ATTRIBUTE, False))


def install(app: Flask) -> None:
    """Give ``app`` the ``defer`` template global, the islands' checks and headers, and the
    route of their script."""
    app.jinja_env.globals["defer"] = defer
    app.before_request(_check_signature)
    app.after_request(_private_by_default)
    app.register_blueprint(_scripts)


_scripts = Blueprint(BLUEPRINT, __name__)


# Prerendered, and found by the build only through a page's defer(): a build whose pages have
# no island has no script file. An on-demand page's defer() gets it from the slim app.
@_scripts.route("/_ondemand/<name>")
@prerender(fallback="live", live_cookies=False)  # the same file for everyone
def script(name: str) -> Response:
    """The islands' script (one file)."""
    if name != SCRIPT:
        abort(404)
    return send_from_directory(_SCRIPT_FOLDER, SCRIPT, mimetype="text/javascript")


@_scripts.route("/_ondemand/islands")
@prerender(False)
def batch() -> Response:
    """A page's islands, asked for by their signed URLs (``?i=URL&i=URL``, with ``n=`` their
    number, checked), each rendered as a
    request of its own sharing this one's session: ``{"islands": [{"status": 200, "html":
    "..."}, ...]}``, in the order asked for."""
    sources = request.args.getlist("i")
    if not sources or len(sources) > BATCH_LIMIT:
        abort(400, f"ask for 1 to {BATCH_LIMIT} islands, as ?i=URL&i=URL")
    asked = request.args.get("n", type=int)
    if asked is not None and asked != len(sources):
        # Answers go to placeholders by their order: one missing would put each after it in
        # the wrong place. (An ALB without multi-value headers keeps a name's last value.)
        abort(400, f"asked for {asked} islands, but {len(sources)} i= values arrived")
    answers = [render_island(source) for source in sources]
    islands = [{"status": status, "html": html} for status, html in answers]
    answer = jsonify(islands=islands)
    answer.headers["Cache-Control"] = "private, no-store"
    return answer


def render_island(source: str) -> tuple[int, str]:
    """Render the island at ``source`` (a signed URL a page's ``defer()`` wrote) in the current
    request, as a request of its own (its path, its query, its view's arguments) that shares
    the current one's session, ``g`` and cookies. Return its status and, for a 2xx, its HTML.

    Its signature is checked as the island's own URL checks it. Its own ``before_request`` and
    ``after_request`` hooks do not run: the current request's did. Cookies it sets with
    ``flask_ondemand.cookies`` go with the current request's answer.
    """
    app = current_app
    context = _cv_request.get()
    parts = urlsplit(source)
    if parts.scheme or parts.netloc or not parts.path.startswith(request.script_root + "/"):
        return 400, ""
    environ = {key: value for key, value in request.environ.items() if key not in _PER_REQUEST_KEYS}
    environ["PATH_INFO"] = (
        unquote(parts.path[len(request.script_root) :]).encode().decode("latin-1")
    )
    environ["QUERY_STRING"] = parts.query
    environ["REQUEST_METHOD"] = "GET"
    island_request = app.request_class(environ)
    adapter = app.create_url_adapter(island_request)
    if adapter is None:  # a Host not in TRUSTED_HOSTS
        return 400, ""
    try:
        rule, view_args = adapter.match(return_rule=True)
    except HTTPException as error:
        return error.code or 400, ""
    view = app.view_functions.get(rule.endpoint)
    if view is None or not is_island(view):
        return 404, ""
    island_request.url_rule, island_request.view_args = rule, dict(view_args)
    page_request, context.request = context.request, island_request
    try:
        _check_signature()
        made = app.make_response(app.ensure_sync(view)(**view_args))
    except HTTPException as error:
        return error.code or 500, ""
    except Exception:  # the island's own failure: logged, and its fallback stays
        app.log_exception(sys.exc_info())
        return 500, ""
    finally:
        context.request = page_request
        _carry_cookies(environ)
    if not 200 <= made.status_code < 300:
        return made.status_code, ""
    return made.status_code, made.get_data(as_text=True)


# What an island's own request must not take from the page's: they are made per request.
_PER_REQUEST_KEYS = frozenset({"werkzeug.request", PAGE_KEY, SENT_KEY, _SCRIPT_SENT})


def _carry_cookies(island_environ: dict[str, Any]) -> None:
    """Send the cookies an island set with ``flask_ondemand.cookies`` with the page's answer."""
    island_state = island_environ.get(PAGE_KEY)
    if island_state is not None and island_state.outgoing:
        page_state().outgoing.update(island_state.outgoing)


def defer(endpoint: str, caller: Callable[[], str] | None = None, **values: Any) -> Markup:
    """Write the placeholder of the island at ``endpoint`` with these URL ``values``.

    ``{{ defer("account.menu") }}`` is empty until the fragment loads; in ``{% call
    defer("cart.badge", size="s") %}...{% endcall %}`` the block is the fallback, shown until
    then, on an error, and without JavaScript.

    With ``ONDEMAND_INLINE_ISLANDS`` (for an app's own tests, which check what a page shows
    without running its script), the island is rendered in place at once.

    Reads ``SECRET_KEY`` and ``ONDEMAND_INLINE_ISLANDS``.

    :raises IslandError: if ``endpoint`` is not an island (a prerendered page with it then
        fails the build, naming the page and the endpoint).
    """
    app = current_app
    view = app.view_functions.get(endpoint)
    if view is None or not is_island(view):
        why = "there is no such endpoint" if view is None else "its view is not marked @island"
        raise IslandError(f"defer({endpoint!r}): {why}")
    url = url_for(endpoint, **values)
    signed = f"{url}{'&' if '?' in url else '?'}{SIGNATURE_PARAMETER}={_sign(app, url)}"
    fallback = caller() if caller is not None else ""
    if app.config.get("ONDEMAND_INLINE_ISLANDS") and RECORDER_KEY not in request.environ:
        # Not in a build: a prerendered page's islands are the visitor's, never the build's.
        status, html = render_island(signed)
        return Markup(html if 200 <= status < 300 else fallback)
    placeholder = Markup('<{0} data-src="{1}">{2}</{0}>').format(ELEMENT, signed, Markup(fallback))
    if request.environ.get(_SCRIPT_SENT):
        return placeholder
    request.environ[_SCRIPT_SENT] = True
    script = url_for(f"{BLUEPRINT}.script", name=SCRIPT)
    islands = url_for(f"{BLUEPRINT}.batch")
    tag = Markup('<script src="{0}" data-islands="{1}" defer></script>').format(script, islands)
    return tag + placeholder


def _signer(app: Flask) -> Signer:
    if not app.secret_key:
        raise RuntimeError("Server islands need the app's SECRET_KEY to be set.")
    # itsdangerous signs with the last key and accepts any, as Flask's session does.
    keys = [*(app.config.get("SECRET_KEY_FALLBACKS") or []), app.secret_key]
    return Signer(keys, salt=_SALT)


def _sign(app: Flask, url: str) -> str:
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    return _signer(app).get_signature(_canonical(unquote(parts.path), pairs)).decode("ascii")


def _canonical(path: str, pairs: Iterable[tuple[str, str]]) -> str:
    """What is signed of an island's URL: its path unquoted and its query's pairs decoded, in
    order, less the signature, as JSON, so that no two sets of values read the same (as
    ``a=1&b=2`` and ``a="1&b=2"`` would). A page and its island agree on it, however the
    browser spells the URL."""
    values = sorted(pair for pair in pairs if pair[0] != SIGNATURE_PARAMETER)
    return json.dumps([path, values], ensure_ascii=False, separators=(",", ":"))


def _check_signature() -> None:
    """Refuse a request to an island without the signature its page's ``defer()`` wrote."""
    # The request context itself, not the request and current_app proxies: this runs for
    # every request of an app with islands.
    context = _cv_request.get()
    if not _is_island_request(context):
        return None
    signature = request.args.get(SIGNATURE_PARAMETER)
    if not signature:
        abort(400, f"{request.path} is a server island: it is loaded by its page's defer().")
    path = request.script_root + request.path
    canonical = _canonical(path, request.args.items(multi=True))
    if not _signer(current_app).verify_signature(canonical, signature):
        abort(403, f"{request.path}: the island's signature does not match its URL.")
    return None


def _is_island_request(context: Any) -> bool:
    """Whether the request of a request context is routed to an island."""
    rule = context.request.url_rule
    view = context.app.view_functions.get(rule.endpoint) if rule is not None else None
    return view is not None and is_island(view)


def _private_by_default(response: Response) -> Response:
    """An island is someone's own fragment: no cache may keep it, unless the view says so."""
    if _is_island_request(_cv_request.get()) and "Cache-Control" not in response.headers:
        response.headers["Cache-Control"] = "private, no-store"
    return response


@contextmanager
def without_hooks(app: Flask) -> Iterator[None]:
    """``app`` without the islands' hooks inside the block: a build, which renders no island
    (an island is on demand), need not have them look at every page."""
    before, after = app.before_request_funcs.get(None), app.after_request_funcs.get(None)
    saved = list(before or ()), list(after or ())
    if before:
        before[:] = [hook for hook in before if hook is not _check_signature]
    if after:
        after[:] = [hook for hook in after if hook is not _private_by_default]
    try:
        yield
    finally:  # as they were: Flask refuses a hook added once the app has served a request
        if before is not None:
            before[:] = saved[0]
        if after is not None:
            after[:] = saved[1]


def serve(app: Flask) -> None:
    """Drop the islands' hooks from ``app``, about to serve requests, if none of its views is
    an island: they would look at every request for nothing. A served app's views are all
    registered by then; an app in the making may gain islands, and keeps them."""
    if any(is_island(view) for view in app.view_functions.values()):
        return
    before, after = app.before_request_funcs.get(None, []), app.after_request_funcs.get(None, [])
    if _check_signature in before:
        before.remove(_check_signature)
    if _private_by_default in after:
        after.remove(_private_by_default)
