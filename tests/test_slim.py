from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask, url_for

from flask_ondemand import Freezer, prerender
from flask_ondemand.manifest import RuleEntry
from flask_ondemand.slim import allowed_methods, make_slim, settle


def make_site(app: Flask) -> Flask:
    calls: list[str] = []
    app.config["CALLS"] = calls

    def view(name: str):  # type: ignore[no-untyped-def]
        def run(**values: object) -> str:
            calls.append(name)
            return name

        return run

    app.add_url_rule("/about/", "about", view("about"))
    app.add_url_rule("/posts/<slug>/", "post", view("post"))
    app.add_url_rule("/account/", "account", prerender(False)(view("account")))
    app.add_url_rule("/contact/", "contact", prerender(view("contact")), methods=["GET", "POST"])
    app.add_url_rule("/ghost/", endpoint="ghost")
    return make_slim(
        app,
        [
            RuleEntry("/about/", "about", ["GET"]),
            RuleEntry("/posts/<slug>/", "post", ["GET"]),
            RuleEntry("/contact/", "contact", ["GET", "POST"]),
            RuleEntry("/static/<path:filename>", "static", ["GET"]),
        ],
    )


def test_prerendered_rules_no_longer_route_but_still_build(app: Flask) -> None:
    slim = make_site(app)
    client = slim.test_client()
    assert client.get("/about/").status_code == 404
    assert client.get("/posts/a/").status_code == 404
    with slim.test_request_context():
        assert url_for("about") == "/about/"
        assert url_for("post", slug="a") == "/posts/a/"
        assert url_for("static", filename="x.css") == "/static/x.css"
    assert slim.config["CALLS"] == []


def test_on_demand_rules_route_as_before(app: Flask) -> None:
    client = make_site(app).test_client()
    reply = client.get("/account/")
    assert (reply.status_code, reply.text) == (200, "account")
    options = client.options("/account/")
    assert options.status_code == 200
    assert "GET" in options.headers["Allow"]


def test_a_prerendered_form_keeps_its_other_methods(app: Flask) -> None:
    slim = make_site(app)
    client = slim.test_client()
    assert client.get("/contact/").status_code == 404  # its GET is the file
    assert client.post("/contact/").text == "contact"
    assert slim.config["CALLS"] == ["contact"]


def test_folder_urls_without_their_slash_redirect(app: Flask) -> None:
    app.add_url_rule("/about/", "about", lambda: "about")
    app.add_url_rule("/account", "account", prerender(False)(lambda: "account"))
    slim = make_slim(app, [RuleEntry("/about/", "about", ["GET"])], file_urls=["/", "/about/"])
    client = slim.test_client()
    reply = client.get("/about?x=1")
    assert (reply.status_code, reply.headers["Location"]) == (308, "about/?x=1")
    assert client.get("/account").text == "account"
    assert client.get("/nothing").status_code == 404


def test_a_rule_without_view_is_404_not_500(app: Flask) -> None:
    client = make_site(app).test_client()
    assert client.get("/ghost/").status_code == 404


def test_allowed_methods_reports_what_the_slim_app_routes(app: Flask) -> None:
    slim = make_site(app)

    def environ(path: str) -> dict[str, object]:
        return {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": path,
            "SERVER_NAME": "localhost",
            "SERVER_PORT": "80",
            "wsgi.url_scheme": "http",
        }

    assert set(allowed_methods(slim, environ("/contact/"))) >= {"POST"}
    assert list(allowed_methods(slim, environ("/about/"))) == []


# settle: what a served app works out once


def test_settle_knows_the_plain_views_and_hooks_and_asks_flask_of_the_rest(app: Flask) -> None:
    @app.route("/page/")
    def page() -> str:
        return "page"

    @app.route("/later/")
    async def later() -> str:
        return "later"

    @app.before_request
    def hook() -> None:
        return None

    def unknown() -> None:
        return None

    settle(app)
    assert "ensure_sync" in vars(app)
    assert app.ensure_sync(page) is page
    assert app.ensure_sync(hook) is hook
    assert app.ensure_sync(unknown) is unknown  # not registered: asked of Flask, plain
    # A coroutine function goes to Flask's own: run through asgiref, or refused without it.
    try:
        expected: object = Flask.ensure_sync(app, later)
    except RuntimeError as refused:
        with pytest.raises(RuntimeError, match=re.escape(str(refused))):
            app.ensure_sync(later)
    else:
        assert type(app.ensure_sync(later)) is type(expected)
    assert app.test_client().get("/page/").text == "page"


def test_settle_keeps_an_apps_own_ensure_sync() -> None:
    class OwnSync(Flask):
        def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
            return func

    own = OwnSync(__name__)
    settle(own)
    assert "ensure_sync" not in vars(own)


def test_settle_drops_frozen_flasks_url_for_logger_and_keeps_the_apps_own(app: Flask) -> None:
    freezer = Freezer(app)
    values_seen: list[str] = []

    @app.url_defaults
    def own(endpoint: str, values: dict[str, Any]) -> None:
        values_seen.append(endpoint)

    @app.route("/page/")
    @prerender(False)
    def page() -> str:
        return url_for("page")

    settle(app)
    assert app.url_default_functions[None] == [own]
    with freezer.url_for_logger:  # as a freeze logs: nothing is, in a served app
        assert app.test_client().get("/page/").text == "/page/"
    assert list(freezer.url_for_logger.iter_calls()) == []
    assert values_seen == ["page"]
