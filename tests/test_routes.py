from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Blueprint, Flask

from flask_ondemand import ConfigError, OnDemand, prerender
from flask_ondemand.routes import Mode, Route, classify


def by_rule(app: Flask) -> dict[str, Route]:
    return {route.rule.rule: route for route in classify(app)}


def page() -> str:
    return "page"


def test_static_output_prerenders_unmarked_get_routes(app: Flask) -> None:
    app.add_url_rule("/about/", view_func=page)
    route = by_rule(app)["/about/"]
    assert (route.mode, route.reason) == (Mode.PRERENDERED, "ONDEMAND_OUTPUT = 'static'")


def test_server_output_renders_unmarked_routes_on_demand(make_app: Callable[..., Flask]) -> None:
    app = make_app(ONDEMAND_OUTPUT="server")
    app.add_url_rule("/about/", view_func=page)

    @app.route("/privacy/")
    @prerender(True)
    def privacy() -> str:
        return ""

    routes = by_rule(app)
    assert routes["/about/"].mode is Mode.ON_DEMAND
    assert routes["/privacy/"].mode is Mode.PRERENDERED
    assert routes["/privacy/"].reason == "route mark"


def test_unknown_output_is_a_config_error(make_app: Callable[..., Flask]) -> None:
    with pytest.raises(
        ConfigError, match="ONDEMAND_OUTPUT must be 'static' or 'server', not 'hybrid'"
    ):
        classify(make_app(ONDEMAND_OUTPUT="hybrid"))


def test_route_mark_beats_blueprint_mark_which_beats_output(app: Flask) -> None:
    shop = prerender(False)(Blueprint("shop", __name__, url_prefix="/shop"))

    @shop.route("/")
    def listing() -> str:
        return ""

    @shop.route("/terms/")
    @prerender
    def terms() -> str:
        return ""

    app.register_blueprint(shop)
    routes = by_rule(app)
    assert (routes["/shop/"].mode, routes["/shop/"].reason) == (
        Mode.ON_DEMAND,
        "blueprint 'shop' mark",
    )
    assert (routes["/shop/terms/"].mode, routes["/shop/terms/"].reason) == (
        Mode.PRERENDERED,
        "route mark",
    )


def test_innermost_blueprint_mark_wins() -> None:
    app = Flask(__name__)
    OnDemand(app)
    docs = prerender(True)(Blueprint("docs", __name__, url_prefix="/docs"))
    api = prerender(False)(Blueprint("api", __name__, url_prefix="/api"))
    guide = Blueprint("guide", __name__, url_prefix="/guide")
    api.add_url_rule("/", "index", page)
    guide.add_url_rule("/", "index", page)
    docs.register_blueprint(api)
    docs.register_blueprint(guide)
    app.register_blueprint(docs)
    routes = by_rule(app)
    assert (routes["/docs/api/"].mode, routes["/docs/api/"].reason) == (
        Mode.ON_DEMAND,
        "blueprint 'docs.api' mark",
    )
    # guide has no mark of its own, so its parent's counts.
    assert (routes["/docs/guide/"].mode, routes["/docs/guide/"].reason) == (
        Mode.PRERENDERED,
        "blueprint 'docs' mark",
    )


@pytest.mark.parametrize("init_first", [True, False])
def test_marks_work_whenever_ondemand_is_initialised(init_first: bool) -> None:
    app = Flask(__name__)
    ondemand = OnDemand()
    if init_first:
        ondemand.init_app(app)
    blog = prerender(False)(Blueprint("blog", __name__))
    blog.add_url_rule("/blog/", "index", page)
    app.register_blueprint(blog)
    if not init_first:
        ondemand.init_app(app)
    assert by_rule(app)["/blog/"].mode is Mode.ON_DEMAND


def test_marking_a_registered_view_after_the_fact(app: Flask) -> None:
    hello = Blueprint("hello", __name__)

    @hello.route("/hello/")
    def hello_view() -> str:
        return ""

    app.register_blueprint(prerender(False)(hello))
    assert by_rule(app)["/hello/"].mode is Mode.ON_DEMAND
    prerender(True)(app.view_functions["hello.hello_view"])
    assert by_rule(app)["/hello/"].mode is Mode.PRERENDERED


def test_rule_without_get_is_on_demand(app: Flask) -> None:
    app.add_url_rule("/cart/add", "add", page, methods=["POST"])
    route = by_rule(app)["/cart/add"]
    assert (route.mode, route.reason, route.problem) == (Mode.ON_DEMAND, "no GET", None)


def test_prerender_true_without_get_is_a_problem(app: Flask) -> None:
    app.add_url_rule("/submit", "submit", prerender(True)(lambda: ""), methods=["POST", "PUT"])
    route = by_rule(app)["/submit"]
    assert route.mode is Mode.ON_DEMAND
    assert (
        route.problem == "marked prerender(True) but accepts no GET (methods: OPTIONS, POST, PUT)"
    )


def test_form_posting_to_itself_is_on_demand_unless_marked(app: Flask) -> None:
    app.add_url_rule("/login", "login", page, methods=["GET", "POST"])
    app.add_url_rule("/contact", "contact", prerender(lambda: ""), methods=["GET", "POST"])
    routes = by_rule(app)
    assert (routes["/login"].mode, routes["/login"].reason) == (Mode.ON_DEMAND, "also accepts POST")
    assert routes["/contact"].mode is Mode.PRERENDERED
    assert routes["/contact"].reason == "route mark; POST on demand"
    assert routes["/contact"].methods == ["GET", "POST"]


def test_blueprint_mark_does_not_prerender_a_form(app: Flask) -> None:
    forms = prerender(True)(Blueprint("forms", __name__))
    forms.add_url_rule("/form", "form", page, methods=["GET", "POST"])
    app.register_blueprint(forms)
    assert by_rule(app)["/form"].mode is Mode.ON_DEMAND


def test_rule_without_view_function_is_not_served(app: Flask) -> None:
    app.add_url_rule("/", endpoint="index")
    route = by_rule(app)["/"]
    assert (route.mode, route.reason) == (Mode.NOT_SERVED, "no view function")


def test_static_folders_are_prerendered() -> None:
    app = Flask(__name__, static_folder=".", static_url_path="/static")
    OnDemand(app)
    widgets = Blueprint("widgets", __name__, static_folder=".", static_url_path="/w")
    app.register_blueprint(widgets)
    routes = by_rule(app)
    assert (routes["/static/<path:filename>"].mode, routes["/static/<path:filename>"].reason) == (
        Mode.PRERENDERED,
        "static folder",
    )
    assert (routes["/w/<path:filename>"].mode, routes["/w/<path:filename>"].reason) == (
        Mode.PRERENDERED,
        "static folder",
    )


def test_methods_hide_the_automatic_ones(app: Flask) -> None:
    app.add_url_rule("/", "index", page)
    assert by_rule(app)["/"].methods == ["GET"]
