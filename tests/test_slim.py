from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from flask import Blueprint, Flask, g, render_template, render_template_string, url_for
from jinja2 import DictLoader
from werkzeug.routing import BaseConverter, BuildError, Map, MapAdapter, Rule

from flask_ondemand import Freezer, prerender
from flask_ondemand import slim as slim_module
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


# settle: url_for keeps the URLs it builds


def url_site(app: Flask) -> Flask:
    """An app whose URLs depend on all a URL can: its values and their types, the request's
    host, scheme, script root and method, and the blueprint of the request's page."""
    app.add_url_rule("/p/<name>/", "page", lambda name: name)
    app.add_url_rule("/n/<int:number>/", "number", lambda number: str(number))
    app.add_url_rule("/id/<uuid:key>/", "key", lambda key: str(key))
    form = lambda: "form"  # noqa: E731
    app.add_url_rule("/form/", "form", form, methods=["GET"])
    app.add_url_rule("/form/sent/", "form", form, methods=["POST"])
    for name in ("a", "b"):
        part = Blueprint(name, __name__, url_prefix=f"/{name}")
        part.add_url_rule("/", "index", lambda: "index", methods=["GET", "POST"])
        app.register_blueprint(part)
    return app


URL_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("page", {"name": "x"}),
    ("page", {"name": 1}),
    ("page", {"name": 1.0}),
    ("page", {"name": True}),
    ("page", {"name": 0.0}),
    ("page", {"name": -0.0}),  # equal to 0.0 as a key: floats are built every time
    ("page", {"name": "x", "q": "y z", "n": 2}),
    ("page", {"name": "x", "n": 2, "q": "y z"}),
    ("page", {"name": "x", "_anchor": "top of page"}),
    ("page", {"name": "x", "_external": True}),
    ("page", {"name": "x", "_scheme": "https", "_external": True}),
    ("number", {"number": 7}),
    ("key", {"key": uuid.UUID(int=1)}),
    ("form", {}),
    ("form", {"_method": "POST"}),
    (".index", {}),
]
# (path, base URL, method): each differs from another in one of what a URL is made of.
URL_REQUESTS = [
    ("/a/", "http://one.example/", "GET"),
    ("/a/", "http://two.example/", "GET"),
    ("/a/", "https://two.example/", "GET"),
    ("/a/", "https://two.example/root/", "GET"),
    ("/b/", "https://two.example/root/", "GET"),
    ("/b/", "https://two.example/root/", "POST"),
]


def urls_built(app: Flask, path: str, base_url: str, method: str) -> list[str]:
    with app.test_request_context(path, base_url=base_url, method=method):
        return [url_for(endpoint, **values) for endpoint, values in URL_CALLS]


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The endpoints Werkzeug builds a URL for, from now on."""
    built: list[str] = []
    build = MapAdapter.build

    def counted(self: MapAdapter, endpoint: str, *args: Any, **kwargs: Any) -> str:
        built.append(endpoint)
        return build(self, endpoint, *args, **kwargs)

    monkeypatch.setattr(MapAdapter, "build", counted)
    return built


def test_a_settled_app_builds_every_url_as_flask_does(
    make_app: Callable[..., Flask], builds: list[str]
) -> None:
    plain, settled = url_site(make_app()), url_site(make_app())
    settle(settled)
    for request in URL_REQUESTS:
        assert urls_built(settled, *request) == urls_built(plain, *request)
    first_round = len(builds)
    for request in URL_REQUESTS:  # the settled app's URLs now from what it kept
        assert urls_built(settled, *request) == urls_built(plain, *request)
    floats = sum(type(value) is float for _, values in URL_CALLS for value in values.values())
    plain_builds = len(URL_CALLS) * len(URL_REQUESTS)
    assert len(builds) - first_round == plain_builds + floats * len(URL_REQUESTS)


def test_urls_built_from_another_subdomain_are_its_own(make_app: Callable[..., Flask]) -> None:
    app = url_site(make_app(SERVER_NAME="site.example"))
    app.subdomain_matching = True
    settle(app)
    urls = []
    for base_url in ("http://site.example/", "http://shop.site.example/") * 2:
        with app.test_request_context("/", base_url=base_url):
            urls.append(url_for("page", name="x"))
    assert urls == ["/p/x/", "http://site.example/p/x/"] * 2


@pytest.mark.parametrize("env_first", [True, False], ids=["env-made-before", "env-made-after"])
def test_templates_use_the_urls_kept(
    make_app: Callable[..., Flask], builds: list[str], env_first: bool
) -> None:
    app = url_site(make_app())
    if env_first:
        assert app.jinja_env  # made, with Flask's url_for, before the app settles
    settle(app)
    for _ in range(2):
        with app.test_request_context("/"):
            assert render_template_string("{{ url_for('page', name='x') }}") == "/p/x/"
    assert builds == ["page"]


def test_the_endpoint_may_be_named(app: Flask) -> None:
    settle(url_site(app))
    with app.test_request_context("/"):
        assert app.url_for(endpoint="page", name="x") == "/p/x/"
        assert render_template_string("{{ url_for(endpoint='page', name='y') }}") == "/p/y/"


def test_long_urls_are_not_kept(app: Flask, builds: list[str]) -> None:
    settle(url_site(app))
    with app.test_request_context("/"):
        for _ in range(2):
            assert url_for("page", name="x" * 600) == f"/p/{'x' * 600}/"
    assert builds == ["page", "page"]


def test_urls_built_in_another_apps_request_are_its_own(make_app: Callable[..., Flask]) -> None:
    settled, other = url_site(make_app()), make_app()
    other.add_url_rule("/other/<name>/", "page", lambda name: name)
    settle(settled)
    with other.test_request_context("/"):  # Flask builds with the request's URL map
        assert settled.url_for("page", name="x") == "/other/x/"
    with settled.test_request_context("/"):
        assert url_for("page", name="x") == "/p/x/"


def test_a_build_that_fails_fails_every_time(app: Flask) -> None:
    settle(url_site(app))
    for _ in range(2):
        with app.test_request_context("/"), pytest.raises(BuildError):
            url_for("page")


def test_urls_outside_a_request_are_flasks_own(make_app: Callable[..., Flask]) -> None:
    app = url_site(make_app(SERVER_NAME="site.example"))
    settle(app)
    with app.app_context():
        assert url_for("page", name="x") == "http://site.example/p/x/"


def test_the_urls_kept_are_bounded(
    app: Flask, builds: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(slim_module, "_URLS_KEPT", 2)
    settle(url_site(app))
    with app.test_request_context("/"):
        for name in ("a", "b", "c", "a"):  # c finds two kept: they go, and a is built again
            assert url_for("page", name=name) == f"/p/{name}/"
    assert builds == ["page"] * 4


class Name:
    """A value whose URL part is its str, which changes."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text


def test_urls_of_what_may_change_are_built_every_time(
    make_app: Callable[..., Flask], builds: list[str]
) -> None:
    app = url_site(make_app())
    settle(app)
    name = Name("one")
    with app.test_request_context("/"):
        assert url_for("page", name=name) == "/p/one/"
        name.text = "two"
        assert url_for("page", name=name) == "/p/two/"
    assert builds == ["page", "page"]


def test_an_app_whose_urls_may_read_the_request_builds_them_every_time(
    make_app: Callable[..., Flask],
) -> None:
    with_defaults = url_site(make_app())
    with_defaults.add_url_rule("/<lang>/home/", "home", lambda lang: lang)

    @with_defaults.url_defaults
    def language(endpoint: str, values: dict[str, Any]) -> None:
        if endpoint == "home":
            values.setdefault("lang", g.lang)

    with_handler = url_site(make_app())

    @with_handler.url_build_error_handlers.append
    def fallback(error: Exception, endpoint: str, values: dict[str, Any]) -> str:
        return f"/missing/{g.lang}/"

    turns: list[str] = []

    class Counted(BaseConverter):
        def to_url(self, value: Any) -> str:
            turns.append(value)
            return f"{value}-{len(turns)}"

    with_converter = make_app()
    with_converter.url_map.converters["counted"] = Counted
    with_converter.add_url_rule("/c/<counted:name>/", "home", lambda name: name)
    urls = []
    for app, values in ((with_defaults, {}), (with_handler, {}), (with_converter, {"name": "x"})):
        settle(app)
        for lang in ("en", "fr"):
            with app.test_request_context("/"):
                g.lang = lang
                urls.append(url_for("home", **values))
    assert urls == ["/en/home/", "/fr/home/", "/missing/en/", "/missing/fr/", "/c/x-1/", "/c/x-2/"]


class OwnUrls(Flask):
    def url_for(self, endpoint: str, /, **values: Any) -> str:  # type: ignore[override]
        return "/own/"


class OwnDefaults(Flask):
    def inject_url_defaults(self, endpoint: str, values: dict[str, Any]) -> None:
        values.setdefault("q", g.lang)


class OwnBuildErrors(Flask):
    def handle_url_build_error(self, error: BuildError, endpoint: str, values: Any) -> str:
        return f"/missing/{g.lang}/"


class OwnMap(Map):
    """A URL map of the app's own: it may build URLs its own way."""


class OwnMapApp(Flask):
    url_map_class = OwnMap


class OwnRules(Flask):
    url_rule_class = type("OwnRule", (Rule,), {})


@pytest.mark.parametrize("own", [OwnUrls, OwnDefaults, OwnBuildErrors, OwnMapApp, OwnRules])
def test_an_app_class_that_builds_urls_its_own_way_keeps_flasks_url_for(own: type[Flask]) -> None:
    app = own(__name__)
    settle(app)
    assert "url_for" not in vars(app)


class CountedLoader(DictLoader):
    def __init__(self, mapping: dict[str, str]) -> None:
        super().__init__(mapping)
        self.loaded: list[str] = []

    def get_source(self, environment: Any, template: str) -> Any:
        self.loaded.append(template)
        return super().get_source(environment, template)


@pytest.mark.parametrize("own_size", [False, True], ids=["jinja-default", "apps-own-size"])
def test_a_settled_app_keeps_every_template_it_loaded(app: Flask, own_size: bool) -> None:
    if own_size:
        app.jinja_options = {**app.jinja_options, "cache_size": 400}
    names = [f"t{number}.html" for number in range(401)]  # one more than Jinja keeps
    loader = CountedLoader({name: name for name in names})
    app.jinja_loader = loader  # type: ignore[assignment]
    settle(app)
    with app.test_request_context("/"):
        for name in [*names, names[0]]:
            assert render_template(name) == name
    # Jinja's cache let the first go for the 401st: loaded again; the settled app's did not.
    assert loader.loaded == ([*names, names[0]] if own_size else names)
