from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import flask_frozen
import pytest
from flask import Flask, Response, current_app, g, redirect, url_for

from flask_ondemand import (
    BuildError,
    ContentTypeWarning,
    Freezer,
    NoPathsWarning,
    PageError,
    prerender,
)
from flask_ondemand.render import BuiltPage


def files(folder: Path) -> dict[str, bytes]:
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def freeze(app: Flask, destination: Path) -> Freezer:
    app.config["FREEZER_DESTINATION"] = str(destination)
    freezer = Freezer(app)
    freezer.freeze()
    return freezer


def test_freezes_only_the_prerendered_subset(app: Flask, tmp_path: Path) -> None:
    @app.route("/")
    def index() -> str:
        return (
            f'<a href="{url_for("about")}"></a><a href="{url_for("account")}"></a>'
            f'<form action="{url_for("add")}" method="post"></form>'
        )

    @app.route("/about/")
    def about() -> str:
        return "about"

    @app.route("/account/")
    @prerender(False)
    def account() -> str:
        raise AssertionError("an on-demand view must not run at build time")

    @app.route("/cart/add", methods=["POST"])
    def add() -> str:
        raise AssertionError("a POST-only view must not run at build time")

    freeze(app, tmp_path)
    assert set(files(tmp_path)) == {"index.html", "about/index.html"}


def test_paths_give_the_values_of_a_parameterised_route(app: Flask, tmp_path: Path) -> None:
    def paths() -> list[dict[str, str]]:
        # Runs in an app context, as Astro's getStaticPaths runs with the site loaded.
        return [{"slug": slug} for slug in current_app.config["SLUGS"]]

    app.config["SLUGS"] = ["a", "b"]

    @app.route("/posts/<slug>/")
    @prerender(paths=paths)
    def post(slug: str) -> str:
        return f"post {slug}"

    freeze(app, tmp_path)
    assert files(tmp_path) == {"posts/a/index.html": b"post a", "posts/b/index.html": b"post b"}


def test_paths_with_a_wrong_key_name_the_route_and_its_paths(app: Flask, tmp_path: Path) -> None:
    def post_paths() -> list[dict[str, str]]:
        return [{"name": "a"}]  # the rule's variable is slug

    @app.route("/posts/<slug>/")
    @prerender(paths=post_paths)
    def post(slug: str) -> str:
        return f"post {slug}"

    @app.route("/tags/<tag>/")
    @prerender(paths=lambda: [{"tag": "x"}, {"tags": "y"}])
    def tag(tag: str) -> str:
        return tag

    with pytest.raises(BuildError) as raised:
        freeze(app, tmp_path)
    assert str(raised.value) == (
        "paths=test_paths_with_a_wrong_key_name_the_route_and_its_paths.<locals>.post_paths of"
        " /posts/<slug>/ (post) yielded {'name': 'a'}, which url_for cannot build: Could not"
        " build url for endpoint 'post' with values ['name']. Did you forget to specify values"
        " ['slug']?"
    )
    app.view_functions["post"] = prerender(paths=lambda: [{"slug": "a"}])(post)
    with pytest.raises(
        BuildError,
        match=r"^paths=.*<lambda> \(test_freezer.py, line \d+\) of /tags/<tag>/ \(tag\)"
        r" yielded {'tags': 'y'}",
    ):
        freeze(app, tmp_path)


def test_register_generator_and_url_for_discovery_still_work(app: Flask, tmp_path: Path) -> None:
    app.config["FREEZER_DESTINATION"] = str(tmp_path)
    freezer = Freezer(app)

    @app.route("/")
    def index() -> str:
        return url_for("product", number=3)

    @app.route("/products/<int:number>/")
    def product(number: int) -> str:
        return f"product {number}"

    @freezer.register_generator
    def product_urls():  # type: ignore[no-untyped-def]
        yield "product", {"number": 1}

    freezer.freeze()
    assert set(files(tmp_path)) == {"index.html", "products/1/index.html", "products/3/index.html"}


def test_defaults_and_any_converters_need_no_generator(app: Flask, tmp_path: Path) -> None:
    @app.route("/pages/", defaults={"number": 1})
    @app.route("/pages/<int:number>/")
    def pages(number: int) -> str:
        return f"page {number}"

    @app.route("/<any(en, fr):lang>/docs/")
    def docs(lang: str) -> str:
        return f"docs {lang}"

    freeze(app, tmp_path)
    assert files(tmp_path) == {
        "pages/index.html": b"page 1",
        "en/docs/index.html": b"docs en",
        "fr/docs/index.html": b"docs fr",
    }


@pytest.mark.parametrize("jobs", [1, 2])
def test_each_page_gets_its_own_g_and_teardown(app: Flask, tmp_path: Path, jobs: int) -> None:
    """Though URLs are generated (in a request context Frozen-Flask holds open) while pages
    render, in this process or in forked ones."""
    teardowns: list[str] = []

    @app.before_request
    def fresh_g() -> None:
        assert "page" not in g, "flask.g leaked from another page"

    @app.teardown_appcontext
    def count(error: BaseException | None) -> None:
        teardowns.append(g.get("page", "?"))

    def view(name: str) -> Callable[[], str]:
        def render() -> str:
            g.page = name
            return name

        return render

    for name in ("one", "two", "three"):
        app.add_url_rule(f"/{name}/", name, view(name))
    app.config["FREEZER_DESTINATION"] = str(tmp_path)
    freezer = Freezer(app)
    for _ in freezer.freeze_yield(jobs=jobs):
        pass
    assert sorted(freezer.pages) == ["/one/", "/three/", "/two/"]
    if jobs == 1:  # the workers' teardowns happen in the workers
        # One teardown per page; the other ("?") ends the context URLs are generated in.
        assert sorted(name for name in teardowns if name != "?") == ["one", "three", "two"]


def test_urls_are_generated_as_pages_render(app: Flask, tmp_path: Path) -> None:
    """A generator of many URLs is not read to its end before the first page renders: a
    build holds the URLs it is rendering, not every URL of the site."""
    generated: list[int] = []
    when_rendered: list[int] = []

    def numbers() -> Iterator[dict[str, int]]:
        for number in range(500):
            generated.append(number)
            yield {"number": number}

    @app.route("/n/<int:number>/")
    @prerender(paths=numbers)
    def numbered(number: int) -> str:
        when_rendered.append(len(generated))
        return str(number)

    freezer = freeze(app, tmp_path)
    assert len(freezer.pages) == 500
    assert when_rendered[0] < 10
    assert when_rendered == sorted(when_rendered)


def test_prerender_true_with_no_urls_fails_naming_the_route(app: Flask, tmp_path: Path) -> None:
    @app.route("/things/<name>/")
    @prerender(True)
    def thing(name: str) -> str:
        return name

    with pytest.raises(BuildError, match=r"/things/<name>/ \(thing\): marked prerender\(True\)"):
        freeze(app, tmp_path)


def test_prerender_true_without_get_fails_naming_the_route(app: Flask, tmp_path: Path) -> None:
    app.add_url_rule("/submit", "submit", prerender(True)(lambda: ""), methods=["POST"])
    with pytest.raises(
        BuildError, match=r"/submit \(submit\) is marked prerender\(True\) but accepts no GET"
    ):
        freeze(app, tmp_path)


def test_unmarked_route_without_urls_warns(app: Flask, tmp_path: Path) -> None:
    app.add_url_rule("/users/<name>/", "user", lambda name: name)
    with pytest.warns(NoPathsWarning, match=r"/users/<name>/ \(user\) is prerendered but no URL"):
        freeze(app, tmp_path)
    assert issubclass(NoPathsWarning, flask_frozen.MissingURLGeneratorWarning)


def test_rule_without_view_function_does_not_crash(app: Flask, tmp_path: Path) -> None:
    app.add_url_rule("/", endpoint="index")
    app.add_url_rule("/about/", "about", lambda: "about")
    app.config["FREEZER_DESTINATION"] = str(tmp_path)
    with pytest.raises(KeyError):  # what plain Frozen-Flask 1.0.2 does with this app
        flask_frozen.Freezer(app).freeze()
    assert Freezer(app).freeze() == {"/about/"}


@pytest.mark.filterwarnings("ignore::flask_frozen.MimetypeMismatchWarning")
def test_without_ondemand_output_matches_frozen_flask(
    make_app: Callable[..., Flask], tmp_path: Path
) -> None:
    def make() -> Flask:
        app = make_app(ondemand=False)
        app.add_url_rule("/", "index", lambda: url_for("item", number=2))
        app.add_url_rule("/items/<int:number>/", "item", lambda number: f"item {number}")
        app.add_url_rule("/login", "login", lambda: "login", methods=["GET", "POST"])
        return app

    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    freeze(make(), ours)
    frozen_app = make()
    frozen_app.config["FREEZER_DESTINATION"] = str(theirs)
    flask_frozen.Freezer(frozen_app).freeze()
    assert files(ours) == files(theirs)
    assert "login" in files(ours)  # Frozen-Flask freezes every GET rule; OnDemand would not


def test_a_page_that_raises_names_the_url_and_cause(app: Flask, tmp_path: Path) -> None:
    app.add_url_rule("/broken/", "broken", lambda: str(1 / 0))
    with pytest.raises(PageError, match=r"^/broken/: ZeroDivisionError: division by zero$"):
        freeze(app, tmp_path)


def test_a_non_2xx_page_names_the_url_and_status(app: Flask, tmp_path: Path) -> None:
    app.add_url_rule("/teapot/", "teapot", lambda: ("short and stout", 418))
    with pytest.raises(PageError, match=r"^/teapot/: answered 418 I'M A TEAPOT; only 2xx"):
        freeze(app, tmp_path)


def test_content_types_the_name_cannot_tell_are_recorded(app: Flask, tmp_path: Path) -> None:
    app.add_url_rule("/hello", "hello", lambda: "<h1>hi</h1>")
    app.add_url_rule("/data.json", "data", lambda: {"a": 1})
    freezer = freeze(app, tmp_path)
    hello = BuiltPage("hello", "text/html; charset=utf-8", endpoint="hello")
    assert freezer.pages["/hello"] == hello
    assert freezer.pages["/data.json"] == BuiltPage("data.json", None, endpoint="data")


def test_a_type_that_disagrees_with_the_extension_warns(app: Flask, tmp_path: Path) -> None:
    app.add_url_rule("/data.json", "data", lambda: "not json")
    with pytest.warns(
        ContentTypeWarning,
        match="'data.json' says application/json, but the view answered text/html",
    ):
        freezer = freeze(app, tmp_path)
    assert freezer.pages["/data.json"].content_type == "text/html; charset=utf-8"
    assert issubclass(ContentTypeWarning, flask_frozen.MimetypeMismatchWarning)


def test_a_file_outside_the_destination_is_refused(app: Flask, tmp_path: Path) -> None:
    @app.route("/docs/<path:page>")
    @prerender(paths=lambda: [{"page": "../../../escaped.html"}])
    def docs(page: str) -> str:
        return page

    with pytest.raises(PageError, match="would be outside the build folder"):
        freeze(app, tmp_path / "out")
    assert not list(tmp_path.rglob("escaped.html"))


def test_a_charset_other_than_utf8_is_recorded(app: Flask, tmp_path: Path) -> None:
    @app.route("/latin/")
    def latin() -> Response:
        return Response("café".encode("latin-1"), content_type="text/html; charset=iso-8859-1")

    freezer = freeze(app, tmp_path)
    assert freezer.pages["/latin/"].content_type == "text/html; charset=iso-8859-1"


def test_a_redirect_becomes_a_record_and_a_refresh_page(app: Flask, tmp_path: Path) -> None:
    app.add_url_rule("/about/", "about", lambda: "about")
    app.add_url_rule("/old/", "old", lambda: redirect("/about/", 301))
    freezer = freeze(app, tmp_path)
    assert freezer.pages["/old/"].redirect == (301, "/about/")
    page = (tmp_path / "old/index.html").read_text()
    assert '<meta http-equiv="refresh" content="0; url=/about/">' in page
    assert '<link rel="canonical" href="/about/">' in page


@pytest.mark.parametrize(
    ("policy", "expectation"),
    [
        ("error", pytest.raises(PageError, match="FREEZER_REDIRECT_POLICY")),
        ("ignore", pytest.warns(flask_frozen.RedirectWarning)),
    ],
)
def test_redirect_policy_keeps_its_frozen_flask_meaning(
    make_app: Callable[..., Flask], tmp_path: Path, policy: str, expectation: object
) -> None:
    app = make_app(FREEZER_REDIRECT_POLICY=policy)
    app.add_url_rule("/old/", "old", lambda: redirect("/new/"))
    with expectation:  # type: ignore[attr-defined]
        freeze(app, tmp_path)
    assert not (tmp_path / "old").exists()


def test_skip_existing_keeps_the_file(make_app: Callable[..., Flask], tmp_path: Path) -> None:
    app = make_app(FREEZER_SKIP_EXISTING=True)
    app.add_url_rule("/about/", "about", lambda: "new")
    (tmp_path / "about").mkdir()
    (tmp_path / "about/index.html").write_text("old")
    freezer = freeze(app, tmp_path)
    assert (tmp_path / "about/index.html").read_text() == "old"
    assert freezer.pages["/about/"].kept


@pytest.mark.parametrize(
    ("url", "kept", "problem"),
    [
        ("/p/a/", {"/p/a": "p/a"}, "its file 'p/a/index.html' needs a folder where /p/a has"),
        ("/p/a", {"/p/a/": "p/a/index.html"}, "its file 'p/a' is the folder of /p/a/'s file"),
        ("/p/a.gz", {"/p/a": "p/a"}, "its file 'p/a.gz' is also that of /p/a"),
    ],
)
def test_a_partial_build_refuses_a_file_that_clashes_with_a_kept_one(
    app: Flask, tmp_path: Path, url: str, kept: dict[str, str], problem: str
) -> None:
    """A kept page's file lies in the whole build under the partial one: a new file where it
    needs a folder, or a folder around it, would leave the two builds at odds."""
    packed = {"Content-Type": "application/octet-stream"}
    app.add_url_rule("/p/<path:name>", "page", lambda name: (name, packed if ".gz" in name else {}))
    freezer = Freezer(app)
    with freezer.destination(tmp_path), pytest.raises(PageError) as error:
        list(freezer.freeze_urls([url], others=kept))
    assert problem in str(error.value)
    assert "one of the two URLs has to change" in str(error.value)


def failing_when_called() -> list[dict[str, str]]:
    raise RuntimeError("database down")


def failing_while_yielding() -> Iterator[dict[str, str]]:
    yield {"slug": "first"}
    raise RuntimeError("database down")


@pytest.mark.parametrize("paths", [failing_when_called, failing_while_yielding])
def test_a_failing_paths_names_its_route(
    app: Flask, tmp_path: Path, paths: Callable[[], Iterable[dict[str, str]]]
) -> None:
    @app.route("/posts/<slug>/")
    @prerender(paths=paths)
    def post(slug: str) -> str:
        return slug

    failed = r"paths\(\) of /posts/<slug>/ \(post\) failed: RuntimeError: database down"
    with pytest.raises(BuildError, match=failed):
        freeze(app, tmp_path)
