"""The Flask extension: it records settings on the app; the build and the server read them."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, current_app

from . import caching, islands, page
from .errors import ConfigError
from .routes import Route, classify

EXTENSION_KEY = "ondemand"

#: Every setting, with its default. docs/configuration.rst documents each one.
DEFAULTS: dict[str, object] = {
    # "static": every GET route is prerendered unless marked; "server": the reverse.
    "ONDEMAND_OUTPUT": "static",
    # Where `flask ondemand build` writes, relative to the current directory.
    "ONDEMAND_OUT_DIR": "dist",
    # The adapter that writes the host's layout: wsgi (gunicorn and the like), nginx, vercel,
    # netlify, cloudflare, aws-lambda, or one installed through an entry point.
    "ONDEMAND_ADAPTER": "wsgi",
    # How DIR/server.py imports the app, as for `flask --app`. None: as the build's CLI did.
    "ONDEMAND_APP_IMPORT": None,
    # Other hosts that safe_redirect may send visitors to (a redirect to one's own host is safe).
    "ONDEMAND_REDIRECT_HOSTS": [],
    # True: a prerendered page that reads request-specific data fails the build, not just warns.
    "ONDEMAND_STRICT": False,
    # Cache-Control max-age of prerendered files: 0, because pages change at every deploy and
    # their ETags make revalidation cheap.
    "ONDEMAND_MAX_AGE": 0,
    # The site's public address, "https://example.com", as Astro's `site`: prerendered pages
    # render as requests to it, so absolute URLs they build name it. None: the build's own.
    "ONDEMAND_SITE_URL": None,
    # Cookies that make a request for a prerendered page render on demand instead: a signed-in
    # visitor's own page. [] keeps files for everyone (islands need no more).
    "ONDEMAND_LIVE_COOKIES": [],
    # True: defer() renders an island in place at once, for an app's own tests, which check
    # what a page shows without running its script. Builds ignore it.
    "ONDEMAND_INLINE_ISLANDS": False,
    # How many proxies in front of the app set X-Forwarded-Proto/-For (Werkzeug's ProxyFix).
    # None: the host's default, 0 for a WSGI server of your own, 1 on hosts that always have one.
    "ONDEMAND_PROXY_FIX": None,
    # Where the route cache keeps answers (see caching.py): None for a folder beside the build
    # (DIR/cache), which the workers of one machine share; a folder; or redis://... for many.
    "ONDEMAND_CACHE_URL": None,
    # Seconds one render of a cached URL may take before another may start; also how long a
    # failed background refresh waits before the next try, so that it never runs in a loop.
    "ONDEMAND_CACHE_LOCK_TIMEOUT": 30,
    # The bearer token of POST /_ondemand/revalidate, for a CMS's webhook. None: no such URL.
    "ONDEMAND_REVALIDATE_TOKEN": None,
}


class OnDemand:
    """Hybrid rendering for a Flask app: each route is prerendered at build time or rendered on
    demand per request.

    ``ondemand = OnDemand(app)``, or ``ondemand = OnDemand()`` then ``ondemand.init_app(app)`` in
    an app factory. One instance may serve several apps; it keeps no reference to any of them.
    """

    def __init__(self, app: Flask | None = None) -> None:
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Register the extension on ``app`` and set the default of every ``ONDEMAND_*`` key."""
        if EXTENSION_KEY in app.extensions:
            raise RuntimeError(
                "An 'OnDemand' instance has already been registered on this Flask app."
                " Import and use that instance instead."
            )
        app.extensions[EXTENSION_KEY] = self
        for key, value in DEFAULTS.items():
            app.config.setdefault(key, value)
        page.install(app)
        islands.install(app)
        caching.install(app)

    def routes(self) -> list[Route]:
        """Classify the current app's URL rules (see :func:`flask_ondemand.routes.classify`).

        Reads ``ONDEMAND_OUTPUT``.
        """
        return classify(get_app())


def site_url(app: Flask) -> str | None:
    """Return ``ONDEMAND_SITE_URL``, checked: a scheme and a host, with no path.

    Reads ``ONDEMAND_SITE_URL``.
    """
    url = app.config.get("ONDEMAND_SITE_URL")
    if url is None:
        return None
    parts = urlsplit(url) if isinstance(url, str) else None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.netloc
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        raise ConfigError(
            f"ONDEMAND_SITE_URL must be a scheme and a host, as 'https://example.com', not"
            f" {url!r} (a path prefix is FREEZER_BASE_URL's)"
        )
    return f"{parts.scheme}://{parts.netloc}"


def has_ondemand(app: Flask) -> bool:
    return EXTENSION_KEY in app.extensions


def get_app() -> Flask:
    """Return the current app, checking that OnDemand is registered on it."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    require_ondemand(app)
    return app


def require_ondemand(app: Flask) -> None:
    """Raise :class:`~flask_ondemand.ConfigError` unless ``OnDemand`` is registered on ``app``."""
    if not has_ondemand(app):
        raise ConfigError(
            f"flask_ondemand is not set up on the app {app.name!r}."
            " Call OnDemand(app), or ondemand.init_app(app) in your app factory."
        )
