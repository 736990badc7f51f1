from __future__ import annotations

import pytest
from flask import Blueprint, Flask
from flask.views import View

from flask_ondemand import prerender
from flask_ondemand.marks import Mark, mark_of


def view() -> str:
    return "page"


def test_bare_decorator_marks_prerendered() -> None:
    assert prerender(view) is view
    assert mark_of(view) == Mark(True)


@pytest.mark.parametrize("enabled", [True, False])
def test_called_decorator_records_the_choice(enabled: bool) -> None:
    def page() -> str:
        return "page"

    assert prerender(enabled)(page) is page
    assert mark_of(page) == Mark(enabled)


def test_paths_are_kept_on_the_mark() -> None:
    def paths() -> list[dict[str, str]]:
        return [{"slug": "a"}]

    @prerender(paths=paths)
    def post(slug: str) -> str:
        return slug

    mark = mark_of(post)
    assert mark == Mark(True, paths)


def test_blueprint_mark_returns_the_blueprint() -> None:
    blueprint = Blueprint("shop", __name__)
    assert prerender(False)(blueprint) is blueprint
    assert mark_of(blueprint) == Mark(False)


def test_paths_on_a_blueprint_is_refused() -> None:
    with pytest.raises(TypeError, match="mark a view, not the blueprint 'shop'"):
        prerender(paths=list)(Blueprint("shop", __name__))


def test_paths_with_false_is_refused() -> None:
    with pytest.raises(TypeError, match="paths only applies to prerendered routes"):
        prerender(False, paths=list)


def test_a_non_callable_is_refused() -> None:
    with pytest.raises(TypeError, match="view function or a Blueprint"):
        prerender(True)(42)  # type: ignore[type-var]


def test_an_object_without_attributes_is_refused() -> None:
    with pytest.raises(TypeError, match="takes no attributes"):
        prerender(len)


def test_mark_above_or_below_route_lands_on_the_registered_view() -> None:
    app = Flask(__name__)

    @prerender(False)
    @app.route("/above")
    def above() -> str:
        return ""

    @app.route("/below")
    @prerender(False)
    def below() -> str:
        return ""

    assert mark_of(app.view_functions["above"]) == Mark(False)
    assert mark_of(app.view_functions["below"]) == Mark(False)


def test_class_based_view_marked_on_its_class() -> None:
    @prerender(False)
    class Dashboard(View):
        def dispatch_request(self) -> str:
            return "dashboard"

    assert mark_of(Dashboard.as_view("dashboard")) == Mark(False)


def test_unmarked_view_has_no_mark() -> None:
    def plain() -> str:
        return ""

    assert mark_of(plain) is None
