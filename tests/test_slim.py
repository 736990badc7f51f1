from __future__ import annotations

from flask import Flask, url_for

from flask_ondemand import prerender
from flask_ondemand.manifest import RuleEntry
from flask_ondemand.slim import allowed_methods, make_slim


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
