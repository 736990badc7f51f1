"""flask_ondemand: prerender some routes of a Flask app into files, render the rest on demand.

::

    from flask_ondemand import OnDemand, prerender

    ondemand = OnDemand(app)

    @app.route("/about/")
    def about(): ...               # prerendered: ONDEMAND_OUTPUT is "static" by default

    @prerender(False)
    @app.route("/account/")
    def account(): ...             # rendered per request

Then ``flask ondemand build`` and ``gunicorn --chdir dist server:app``.
"""

from __future__ import annotations

from .caching import cache, revalidate
from .cookies import Cookie, cookies
from .errors import (
    AdapterWarning,
    BuildError,
    ConfigError,
    ContentTypeWarning,
    HeadersSentError,
    IslandError,
    IslandWarning,
    ManifestError,
    NoPathsWarning,
    NoViewFunctionWarning,
    OnDemandError,
    OnDemandWarning,
    PageError,
    PagesFailed,
    RequestDataWarning,
    UnsafeHeaderError,
)
from .extension import OnDemand
from .freezer import Freezer
from .islands import defer, island
from .marks import prerender
from .page import redirect, response, safe_redirect, stream

__all__ = [
    "AdapterWarning",
    "BuildError",
    "ConfigError",
    "ContentTypeWarning",
    "Cookie",
    "Freezer",
    "HeadersSentError",
    "IslandError",
    "IslandWarning",
    "ManifestError",
    "NoPathsWarning",
    "NoViewFunctionWarning",
    "OnDemand",
    "OnDemandError",
    "OnDemandWarning",
    "PageError",
    "PagesFailed",
    "RequestDataWarning",
    "UnsafeHeaderError",
    "cache",
    "cookies",
    "defer",
    "island",
    "prerender",
    "redirect",
    "response",
    "revalidate",
    "safe_redirect",
    "stream",
]
