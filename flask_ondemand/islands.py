"""Server islands: per-visitor fragments inside pages that are otherwise the same for everyone.

Astro's ``server:defer``, for Flask::

    @account.route("/_menu")
    @island                                  # on demand, GET only; answers an HTML fragment
    def menu():
        return render_template("account/_menu.html")

    {{ defer("account.menu") }}              {# in any template: empty until it loads #}

``defer()`` writes a placeholder element whose source is the island's URL, signed with the
app's ``SECRET_KEY``, and, once a page, a ``<script src>`` for the small script (a static file,
so a ``script-src 'self'`` policy lets it run) that fetches each placeholder's fragment with
the visitor's cookies and puts it in the placeholder's place. Before that, on an error, or
without JavaScript, the placeholder shows its fallback: the body of ``{% call defer(...) %}``.

The island checks the signature before its view runs, so a client cannot ask it for values
the page did not pass. The values are visible in the page: signed, not encrypted.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

from flask import Blueprint, Flask, abort, current_app, request, send_from_directory, url_for
from itsdangerous import Signer
from markupsafe import Markup
from werkzeug.wrappers import Response

from .errors import IslandError
from .marks import mark_of, prerender

View = TypeVar("View", bound=Callable[..., Any])

#: The query parameter an island's URL carries its signature in.
SIGNATURE_PARAMETER = "_island"
#: The blueprint of the islands' script, and the script's name.
BLUEPRINT = "flask_ondemand"
SCRIPT = "islands.js"
_SCRIPT_FOLDER = Path(__file__).parent / "static"
#: The element ``defer()`` writes; the script looks for it.
ELEMENT = "ondemand-island"

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
@prerender(fallback="live")
def script(name: str) -> Response:
    """The islands' script (one file)."""
    if name != SCRIPT:
        abort(404)
    return send_from_directory(_SCRIPT_FOLDER, SCRIPT, mimetype="text/javascript")


def defer(endpoint: str, caller: Callable[[], str] | None = None, **values: Any) -> Markup:
    """Write the placeholder of the island at ``endpoint`` with these URL ``values``.

    ``{{ defer("account.menu") }}`` is empty until the fragment loads; in ``{% call
    defer("cart.badge", size="s") %}...{% endcall %}`` the block is the fallback, shown until
    then, on an error, and without JavaScript.

    Reads ``SECRET_KEY``.

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
    placeholder = Markup('<{0} data-src="{1}">{2}</{0}>').format(ELEMENT, signed, Markup(fallback))
    if request.environ.get(_SCRIPT_SENT):
        return placeholder
    request.environ[_SCRIPT_SENT] = True
    script = url_for(f"{BLUEPRINT}.script", name=SCRIPT)
    return Markup('<script src="{0}" defer></script>').format(script) + placeholder


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
    view = current_app.view_functions.get(request.endpoint or "")
    if view is None or not is_island(view):
        return None
    signature = request.args.get(SIGNATURE_PARAMETER)
    if not signature:
        abort(400, f"{request.path} is a server island: it is loaded by its page's defer().")
    path = request.script_root + request.path
    canonical = _canonical(path, request.args.items(multi=True))
    if not _signer(current_app).verify_signature(canonical, signature):
        abort(403, f"{request.path}: the island's signature does not match its URL.")
    return None


def _private_by_default(response: Response) -> Response:
    """An island is someone's own fragment: no cache may keep it, unless the view says so."""
    view = current_app.view_functions.get(request.endpoint or "")
    if view is not None and is_island(view) and "Cache-Control" not in response.headers:
        response.headers["Cache-Control"] = "private, no-store"
    return response
