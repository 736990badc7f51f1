"""The benchmark site: N pages of one template extending a base, with a few url_for calls each.

Both builders get the same app: Frozen-Flask through ``Freezer(app).freeze()``, flask_ondemand
through ``flask ondemand build``. The page URLs come from a Frozen-Flask URL generator, which
both use. ``BENCH_PAGES`` sets N (default 10,000); ``BENCH_ONDEMAND=0`` leaves OnDemand out and
uses ``flask_frozen.Freezer``, for the Frozen-Flask baseline. ``/live/`` is an on-demand page,
for the serving benchmarks, which also serve this app as it is, rendering per request;
``/cached/`` is the same page on demand with ``cache``, for the route cache's.
"""

from __future__ import annotations

import os
from pathlib import Path

import flask_frozen
from flask import Flask, render_template

from flask_ondemand import Freezer, OnDemand, cache, prerender

PAGES = int(os.environ.get("BENCH_PAGES", "10000"))
HERE = Path(__file__).parent


def create_app() -> Flask:
    app = Flask(
        __name__,
        template_folder=str(HERE / "site_templates"),
        static_folder=str(HERE / "site_static"),
    )
    app.config.from_prefixed_env()
    if os.environ.get("BENCH_ONDEMAND", "1") == "1":
        OnDemand(app)
        freezer = Freezer(app)
    else:  # the baseline: Frozen-Flask itself, on the same app
        freezer = flask_frozen.Freezer(app)
    app.extensions["bench.freezer"] = freezer

    @app.route("/")
    def index() -> str:
        return render_template("index.html", pages=range(min(PAGES, 50)))

    @app.route("/page/<int:number>/")
    def page(number: int) -> str:
        return render_template("page.html", number=number, last=PAGES - 1)

    @app.route("/live/")
    @prerender(False)
    def live() -> str:
        return render_template("page.html", number=0, last=PAGES - 1)

    @app.route("/cached/")
    @prerender(False)
    @cache(max_age=3600)
    def cached() -> str:
        return render_template("page.html", number=0, last=PAGES - 1)

    @freezer.register_generator
    def page_urls():  # type: ignore[no-untyped-def]
        for number in range(PAGES):
            yield "page", {"number": number}

    return app
