"""Server islands: ``island``, ``defer`` and their script; ``prerender(live_query=True)``;
``ONDEMAND_SITE_URL``; and an app made as apps with a login are made (Flask-Login, Flask-WTF
with CSRF, Flask-Talisman) prerendering its public pages with no warning, in strict mode."""

from __future__ import annotations

import re
import shutil
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask, get_flashed_messages, render_template_string, request, session
from flask.testing import FlaskClient

from flask_ondemand import Freezer, IslandError, IslandWarning, defer, island, islands, prerender
from flask_ondemand.islands import SIGNATURE_PARAMETER
from flask_ondemand.routes import Mode, classify

from .conftest import BuiltSite
from .servers import (
    APPS,
    Server,
    fetch,
    flask,
    gunicorn,
    headless_chromium,
    island_sources,
    post_form,
    snapshot,
)

# --- The API, in one process


@pytest.fixture
def islands_app(app: Flask) -> Flask:
    @app.route("/_menu")
    @island
    def menu() -> str:
        return f"<b>{session.get('user', 'nobody')}</b>"

    @app.route("/_badge")
    @island
    def badge() -> str:
        return f"{request.args['a']}|{request.args.get('b', '')}"

    @app.route("/page/")
    @prerender(False)
    def page() -> str:
        return render_template_string(
            '{{ defer("menu") }}{% call defer("badge", a=1) %}<i>soon</i>{% endcall %}'
        )

    return app


def sources(client: FlaskClient, path: str = "/page/") -> dict[str, str]:
    return island_sources(client.get(path).text)


def test_an_island_is_rendered_on_demand(islands_app: Flask) -> None:
    modes = {route.endpoint: route.mode for route in classify(islands_app)}
    assert modes["menu"] is modes["badge"] is Mode.ON_DEMAND


def test_defer_writes_the_script_once_and_a_placeholder_per_island(islands_app: Flask) -> None:
    html = islands_app.test_client().get("/page/").text
    script = '<script src="/_ondemand/islands.js" data-islands="/_ondemand/islands" defer></script>'
    assert html.count(script) == 1
    assert html.startswith(script)
    menu, badge = re.findall(r"<ondemand-island[^>]*>.*?</ondemand-island>", html)
    signature = r"_island=[\w-]+"
    menu_placeholder = rf'<ondemand-island data-src="/_menu\?{signature}"></ondemand-island>'
    assert re.fullmatch(menu_placeholder, menu)
    badge_source = rf"/_badge\?a=1&amp;{signature}"
    assert re.fullmatch(
        rf'<ondemand-island data-src="{badge_source}"><i>soon</i></ondemand-island>', badge
    )


def test_the_script_is_served(islands_app: Flask) -> None:
    script = islands_app.test_client().get("/_ondemand/islands.js")
    assert script.status_code == 200
    assert script.mimetype == "text/javascript"
    assert b"ondemand-island[data-src]" in script.data
    assert islands_app.test_client().get("/_ondemand/other.js").status_code == 404


def test_an_island_answers_with_the_signature_its_page_wrote(islands_app: Flask) -> None:
    client = islands_app.test_client()
    found = sources(client)
    menu = client.get(found["/_menu"])
    assert (menu.status_code, menu.text) == (200, "<b>nobody</b>")
    assert menu.headers["Cache-Control"] == "private, no-store"
    with client.session_transaction() as visitor:
        visitor["user"] = "ada"
    assert client.get(found["/_menu"]).text == "<b>ada</b>"
    assert client.get(found["/_badge"]).text == "1|"


@pytest.mark.parametrize(
    ("tamper", "status"),
    [
        (lambda url: url.split("?")[0], 400),  # no signature at all
        (lambda url: url.replace("a=1", "a=2"), 403),  # a value the page did not pass
        (lambda url: url.replace("a=1", "a=1&b=2"), 403),  # a value it did not pass at all
        (lambda url: url[:-3] + "abc", 403),  # a forged signature
        (lambda url: url.replace("_island=", "_island=x"), 403),
    ],
)
def test_a_missing_or_tampered_signature_is_refused(
    islands_app: Flask, tamper: Callable[[str], str], status: int
) -> None:
    client = islands_app.test_client()
    reply = client.get(tamper(sources(client)["/_badge"]))
    assert reply.status_code == status
    assert b"Traceback" not in reply.data


def test_serving_keeps_the_island_hooks_of_an_app_with_islands(islands_app: Flask) -> None:
    islands.serve(islands_app)  # as a build's server does, once the app is loaded
    client = islands_app.test_client()
    source = sources(client)["/_badge"]
    assert client.get(source.split("?")[0]).status_code == 400
    assert client.get(source.replace("a=1", "a=2")).status_code == 403
    reply = client.get(source)
    assert (reply.text, reply.headers["Cache-Control"]) == ("1|", "private, no-store")


def test_serving_drops_the_island_hooks_of_an_app_without_islands(app: Flask) -> None:
    hooks = [*app.before_request_funcs[None], *app.after_request_funcs[None]]
    assert islands._check_signature in hooks  # the app in the making may gain islands

    @app.route("/page/")
    @prerender(False)
    def page() -> str:
        return "page"

    islands.serve(app)
    hooks = [*app.before_request_funcs.get(None, []), *app.after_request_funcs.get(None, [])]
    assert islands._check_signature not in hooks
    assert islands._private_by_default not in hooks
    reply = app.test_client().get("/page/")
    assert (reply.text, reply.headers.get("Cache-Control")) == ("page", None)


def test_values_cannot_be_regrouped_under_one_signature(islands_app: Flask) -> None:
    """What is signed cannot be read two ways: a="1&b=2" is not a=1 and b=2."""
    with islands_app.test_request_context():
        source = island_sources(str(defer("badge", a="1&b=2")))["/_badge"]
    signature = source.split(f"{SIGNATURE_PARAMETER}=")[1]
    client = islands_app.test_client()
    assert client.get(source).text == "1&b=2|"
    assert client.get(f"/_badge?a=1&b=2&{SIGNATURE_PARAMETER}={signature}").status_code == 403


def test_keys_can_be_rotated(islands_app: Flask) -> None:
    """A page prerendered with the old key still loads its islands after a rotation."""
    client = islands_app.test_client()
    old = sources(client)["/_menu"]
    islands_app.config.update(SECRET_KEY="new-secret", SECRET_KEY_FALLBACKS=["test-secret"])
    assert client.get(old).status_code == 200
    islands_app.config["SECRET_KEY_FALLBACKS"] = []
    assert client.get(old).status_code == 403


def test_a_pages_islands_are_asked_for_in_one_request(islands_app: Flask) -> None:
    client = islands_app.test_client()
    found = sources(client)
    with client.session_transaction() as visitor:
        visitor["user"] = "ada"
    tampered = found["/_badge"].replace("a=1", "a=2")
    asked = [found["/_menu"], found["/_badge"], tampered, "/page/", "https://evil.example/_menu"]
    answer = client.get("/_ondemand/islands", query_string=[("i", source) for source in asked])
    assert answer.status_code == 200
    assert answer.headers["Cache-Control"] == "private, no-store"
    assert answer.json == {
        "islands": [
            {"status": 200, "html": "<b>ada</b>"},
            {"status": 200, "html": "1|"},
            {"status": 403, "html": ""},
            {"status": 404, "html": ""},  # no island
            {"status": 400, "html": ""},  # another site's
        ]
    }
    assert client.get("/_ondemand/islands").status_code == 400
    too_many = [("i", found["/_menu"])] * 101
    assert client.get("/_ondemand/islands", query_string=too_many).status_code == 400
    # Their number, as the script sends it: an answer never lands in the wrong placeholder.
    counted = [("i", found["/_menu"]), ("i", found["/_badge"]), ("n", "2")]
    assert client.get("/_ondemand/islands", query_string=counted).status_code == 200
    lost = client.get("/_ondemand/islands", query_string=[("i", found["/_badge"]), ("n", "2")])
    assert lost.status_code == 400
    assert b"asked for 2 islands, but 1 i= values arrived" in lost.data


def test_islands_asked_for_together_share_one_session(app: Flask) -> None:
    """One island reads a flashed message, the next makes a CSRF-like token: one answer, one
    session cookie with both. Asked for one by one, the last answer's cookie won."""

    @app.route("/_messages")
    @island
    def messages() -> str:
        return ",".join(get_flashed_messages())

    @app.route("/_form")
    @island
    def form() -> str:
        session.setdefault("token", "t0ken")
        return f"<input value={session['token']}> after {session.get('_flashes')}"

    client = app.test_client()
    with client.session_transaction() as visitor:
        visitor["_flashes"] = [("message", "Welcome")]
    with app.test_request_context():
        found = island_sources(str(defer("messages")) + str(defer("form")))
    answer = client.get(
        "/_ondemand/islands", query_string=[("i", found["/_messages"]), ("i", found["/_form"])]
    )
    assert [island["html"] for island in answer.json["islands"]] == [
        "Welcome",
        "<input value=t0ken> after None",
    ]
    assert len(answer.headers.getlist("Set-Cookie")) == 1
    with client.session_transaction() as visitor:
        assert dict(visitor) == {"token": "t0ken"}


def test_inline_islands_render_in_place_for_tests(islands_app: Flask, tmp_path: Path) -> None:
    islands_app.config["ONDEMAND_INLINE_ISLANDS"] = True
    client = islands_app.test_client()
    with client.session_transaction() as visitor:
        visitor["user"] = "ada"
    assert client.get("/page/").text == "<b>ada</b>1|"
    # A build ignores it: a prerendered page's islands are its visitors'.
    islands_app.view_functions["page"] = prerender(True)(islands_app.view_functions["page"])
    islands_app.config["FREEZER_DESTINATION"] = str(tmp_path)
    Freezer(islands_app).freeze()
    built = (tmp_path / "page/index.html").read_text()
    assert '<ondemand-island data-src="/_menu?_island=' in built


def test_an_islands_own_cache_control_is_kept(app: Flask) -> None:
    @app.route("/_shared")
    @island
    def shared() -> tuple[str, dict[str, str]]:
        return "the same for everyone", {"Cache-Control": "public, max-age=60"}

    with app.test_request_context():
        source = island_sources(str(defer("shared")))["/_shared"]
    assert app.test_client().get(source).headers["Cache-Control"] == "public, max-age=60"


@pytest.mark.parametrize(
    ("endpoint", "why"),
    [("page", "its view is not marked @island"), ("nope", "there is no such endpoint")],
)
def test_defer_of_what_is_no_island_is_an_error(
    islands_app: Flask, endpoint: str, why: str
) -> None:
    with islands_app.test_request_context(), pytest.raises(IslandError) as raised:
        defer(endpoint)
    assert str(raised.value) == f"defer({endpoint!r}): {why}"


def test_an_island_must_accept_get(app: Flask, tmp_path: Path) -> None:
    @app.route("/_form", methods=["POST"])
    @island
    def form() -> str:
        return ""

    app.config["FREEZER_DESTINATION"] = str(tmp_path)
    with pytest.raises(Exception, match=r"/_form \(form\) is an island but accepts no GET"):
        Freezer(app).freeze()


def test_island_refuses_a_view_marked_prerendered() -> None:
    def view() -> str:
        return ""

    with pytest.raises(TypeError, match="is marked prerender\\(True\\): an island is rendered"):
        island(prerender(view))


def test_a_prerendered_page_with_islands_builds_without_a_warning(
    islands_app: Flask, tmp_path: Path, recwarn: pytest.WarningsRecorder
) -> None:
    @islands_app.route("/public/")
    def public() -> str:
        return render_template_string('<nav>{{ defer("menu") }}</nav>')

    islands_app.config["FREEZER_DESTINATION"] = str(tmp_path)
    Freezer(islands_app).freeze()
    page = (tmp_path / "public/index.html").read_text()
    assert '<ondemand-island data-src="/_menu?_island=' in page
    assert (tmp_path / "_ondemand/islands.js").is_file()  # found through the page's defer()
    assert not recwarn.list


@pytest.mark.parametrize(
    ("template", "warned"),
    [
        ('<html><head><title>t</title>{{ defer("menu") }}</head><body></body></html>', True),
        ('<head>{{ defer("menu") }}<link rel=stylesheet href=/s.css>', True),
        ('<html><head><title>t</title></head><body>{{ defer("menu") }}</body></html>', False),
        ('<nav>{{ defer("menu") }}</nav>', False),  # no head: the body starts at once
    ],
)
def test_an_island_in_head_is_warned_about(
    islands_app: Flask, tmp_path: Path, template: str, warned: bool
) -> None:
    islands_app.add_url_rule("/head/", "head", lambda: render_template_string(template))
    islands_app.config["FREEZER_DESTINATION"] = str(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Freezer(islands_app).freeze()
    messages = [str(w.message) for w in caught if issubclass(w.category, IslandWarning)]
    expected = [
        "/head/ (endpoint head) has an island in <head>: a browser ends the head at its"
        " element, and what follows moves into the body. Put defer() in the body."
    ]
    assert messages == (expected if warned else [])


def test_routes_say_what_a_mark_says(islands_app: Flask) -> None:
    @islands_app.route("/list/")
    @prerender(live_query=True)
    def listing() -> str:
        return ""

    @islands_app.route("/users/<name>/")
    @prerender(fallback="live")
    def user(name: str) -> str:
        return name

    reasons = {route.endpoint: route.reason for route in classify(islands_app)}
    assert reasons["menu"] == "island"
    assert reasons["listing"] == "route mark; URLs with a query on demand"
    assert reasons["user"] == "route mark; URLs not built on demand"


def test_a_page_without_islands_has_no_script(app: Flask, tmp_path: Path) -> None:
    app.add_url_rule("/", "index", lambda: "plain")
    app.config["FREEZER_DESTINATION"] = str(tmp_path)
    Freezer(app).freeze()
    assert not (tmp_path / "_ondemand").exists()


# --- Through the servers: gunicorn, waitress, nginx, and after partial builds


def test_the_placeholders_are_in_the_prerendered_file(stack: BuiltSite) -> None:
    page = fetch(stack.server.url, "/isles/")
    assert page.status == 200
    assert "ETag" in page.headers  # the file
    assert set(island_sources(page.text)) == {
        "/isles/_user",
        "/isles/_badge",
        "/isles/_broken",
        "/isles/_cached",
    }
    assert "<span>no badge yet</span></ondemand-island>" in page.text
    script = fetch(stack.server.url, "/_ondemand/islands.js")
    assert script.status == 200
    assert script.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert "ETag" in script.headers


def test_an_island_answers_each_visitor_their_own(stack: BuiltSite) -> None:
    found = island_sources(fetch(stack.server.url, "/isles/").text)
    anonymous = fetch(stack.server.url, found["/isles/_user"])
    assert (anonymous.status, anonymous.body) == (200, b"<a href=/login>Sign in</a>")
    assert anonymous.headers["Cache-Control"] == "private, no-store"
    login = post_form(stack.server.url, "/login", {"user": "alice"})
    cookie = login.headers["Set-Cookie"].split(";")[0]
    signed_in = fetch(stack.server.url, found["/isles/_user"], headers={"Cookie": cookie})
    assert signed_in.body == b"<span>Signed in as alice</span>"
    badge = fetch(stack.server.url, found["/isles/_badge"])
    assert badge.body == b"<i>badge of size s</i>"
    own = fetch(stack.server.url, found["/isles/_cached"])
    assert own.headers["Cache-Control"] == "private, max-age=60"


def test_an_island_without_its_signature_is_a_4xx(stack: BuiltSite) -> None:
    found = island_sources(fetch(stack.server.url, "/isles/").text)
    badge = found["/isles/_badge"]
    assert fetch(stack.server.url, "/isles/_badge?size=s").status == 400
    assert fetch(stack.server.url, badge.replace("size=s", "size=l")).status == 403
    assert fetch(stack.server.url, badge[:-2] + "xx").status == 403


def test_live_query_the_bare_url_is_a_file_and_a_query_runs(stack: BuiltSite) -> None:
    bare = fetch(stack.server.url, "/isles/listing/")
    assert (bare.status, bare.body) == (200, b"Listing page 1")
    assert "ETag" in bare.headers
    second = fetch(stack.server.url, "/isles/listing/?page=2")
    assert (second.status, second.body) == (200, b"Listing page 2")
    assert "ETag" not in second.headers  # rendered now
    assert stack.calls().count("isles.listing GET") >= 1


# --- Through the flask CLI


def test_defer_of_a_view_that_is_no_island_fails_the_build(project: Path) -> None:
    flask(project, "ondemand", "build")
    before = snapshot(project / "dist")
    result = flask(project, "ondemand", "build", env={"SITE_BREAK": "defer"}, check=False)
    assert result.returncode == 1
    assert (
        "Error: build failed: /deferred/: IslandError: defer('about'): its view is not marked"
        " @island" in result.stderr
    )
    assert snapshot(project / "dist") == before


def test_every_failing_page_is_reported(project: Path) -> None:
    flask(project, "ondemand", "build")
    before = snapshot(project / "dist")
    result = flask(project, "ondemand", "build", env={"SITE_BREAK": "many"}, check=False)
    assert result.returncode == 1
    assert "Error: build failed: 25 pages failed:\n" in result.stderr
    listed = re.findall(r"^  /many/(\d+)/: ZeroDivisionError", result.stderr, re.M)
    assert len(listed) == 20
    assert "\n  ... and 5 more" in result.stderr
    assert snapshot(project / "dist") == before


# --- A real browser: Debian's Chromium


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    with headless_chromium() as browser:
        yield browser


def test_a_broken_island_keeps_its_fallback_and_the_others_load(
    chromium: object, site: BuiltSite
) -> None:
    page = chromium.new_page()  # type: ignore[attr-defined]
    with page.expect_response(lambda reply: "/_ondemand/islands?" in reply.url) as asked:
        page.goto(site.server.url + "/isles/")
    statuses = [island["status"] for island in asked.value.json()["islands"]]
    assert statuses == [200, 200, 500, 200]  # user, badge, broken, cached: in page order
    page.wait_for_selector("i")  # the badge island's fragment
    assert page.inner_text("nav") == "Sign in"
    assert page.inner_text("b") == "the fallback of a broken island"
    assert page.locator("ondemand-island").count() == 1  # only the broken one is left
    page.close()


# --- An app made as apps with a login are made


MEMBERS = APPS / "members"


@pytest.fixture(scope="module")
def members(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = tmp_path_factory.mktemp("members") / "project"
    shutil.copytree(MEMBERS, project, ignore=shutil.ignore_patterns("__pycache__"))
    return project


def test_a_login_app_prerenders_with_no_warning_in_strict_mode(members: Path) -> None:
    """Flask-Login (its context processor and after_request hook read the session on every
    request), Flask-WTF with CSRF on, Flask-Talisman forcing HTTPS, a favicon whose type Flask
    and servers name differently, absolute URLs: with the per-user parts in islands, no
    warning, and ONDEMAND_STRICT is on."""
    result = flask(members, "ondemand", "build", app="app:create_app()")
    assert "Warning" not in result.stderr, result.stderr
    assert "Built dist" in result.stdout
    index = (members / "dist/client/index.html").read_text()
    assert '<a href="https://members.example/">' in index  # ONDEMAND_SITE_URL
    assert set(island_sources(index)) == {"/_menu", "/_messages"}
    post = (members / "dist/client/posts/1/index.html").read_text()
    assert set(island_sources(post)) == {"/_menu", "/_messages", "/posts/1/_comments"}


def test_a_real_read_is_still_caught_with_its_template_and_line(members: Path) -> None:
    # Strict: every page that shows the menu fails, each named with where it read the user.
    result = flask(
        members,
        "ondemand",
        "build",
        "--out",
        "strict",
        app="app:create_app()",
        env={"MEMBERS_MENU": "inline"},
        check=False,
    )
    assert result.returncode == 1
    assert "3 pages failed" in result.stderr
    assert (
        "  /: read request-specific data while prerendering: current_user"
        " (templates/base.html, line 11) (ONDEMAND_STRICT). Move what depends on the visitor"
        " into an island" in result.stderr
    )


def test_a_real_read_warns_without_strict_mode(members: Path) -> None:
    env = {"MEMBERS_MENU": "inline", "FLASK_ONDEMAND_STRICT": "false"}
    result = flask(members, "ondemand", "build", "--out", "lax", app="app:create_app()", env=env)
    warnings = [line for line in result.stderr.splitlines() if line.startswith("Warning")]
    assert warnings == [
        "Warning: / (endpoint index) is prerendered but read current_user (templates/base.html,"
        " line 11): the file holds what the build's request gave, for every visitor. Move what"
        " depends on the visitor into an island ({{ defer(...) }} and @island), or mark the"
        " route @prerender(False).",
        "Warning: /posts/1/ (rule /posts/<int:number>/, endpoint post) is prerendered but read"
        " current_user (templates/base.html, line 11): the file holds what the build's request"
        " gave, for every visitor. Move what depends on the visitor into an island"
        " ({{ defer(...) }} and @island), or mark the route @prerender(False).",
    ]


@pytest.fixture(scope="module")
def members_site(members: Path) -> Iterator[Server]:
    flask(members, "ondemand", "build", app="app:create_app()")
    with gunicorn(members / "dist", cwd=members) as server:
        yield server


HTTPS = {"X-Forwarded-Proto": "https"}  # as a proxy in front says; Talisman forces HTTPS


def test_the_login_apps_islands_follow_the_member(members_site: Server) -> None:
    page = fetch(members_site.url, "/posts/1/", headers=HTTPS)
    assert page.headers["Strict-Transport-Security"].startswith("max-age=")  # kept from build
    found = island_sources(page.text)
    menu = fetch(members_site.url, found["/_menu"], headers=HTTPS)
    assert (menu.status, menu.text) == (200, '<a href="/login">Log in</a>')
    # Log in through the on-demand form, with its CSRF token.
    form = fetch(members_site.url, "/login", headers=HTTPS)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form.text)
    assert token is not None
    cookie = form.headers["Set-Cookie"].split(";")[0]
    # Flask-WTF checks over HTTPS that a POST comes from the site's own pages.
    referer = members_site.url.replace("http://", "https://") + "/login"
    headers = {**HTTPS, "Cookie": cookie, "Referer": referer}
    fields = {"csrf_token": token.group(1), "name": "ada", "password": "lovelace"}
    login = post_form(members_site.url, "/login", fields, headers=headers)
    assert (login.status, login.headers["Location"]) == (303, "/")
    headers["Cookie"] = login.headers["Set-Cookie"].split(";")[0]
    member = fetch(members_site.url, found["/_menu"], headers=headers)
    assert "ada <form" in member.text
    messages = fetch(members_site.url, found["/_messages"], headers=headers)
    assert messages.text == '<p class="message">Welcome back, ada.</p>'
    comments = fetch(members_site.url, found["/posts/1/_comments"], headers=headers)
    assert 'action="/posts/1/comments"' in comments.text
    assert 'name="csrf_token"' in comments.text
    # Without its token, a form's POST is refused by Flask-WTF: CSRF is on.
    refused = post_form(members_site.url, "/posts/1/comments", {"text": "hi"}, headers=headers)
    assert refused.status == 400


def test_a_build_renders_its_pages_without_the_islands_hooks(app: Flask, tmp_path: Path) -> None:
    """No island is prerendered: a build drops the hooks that look at every request for one,
    and puts them back where they were."""
    seen: list[list[str]] = []

    @app.before_request
    def mine() -> None:
        pass

    @app.route("/")
    def index() -> str:
        hooks = [*app.before_request_funcs[None], *app.after_request_funcs[None]]
        seen.append([hook.__name__ for hook in hooks])
        return "home"

    @app.route("/menu")
    @island
    def menu() -> str:
        return "menu"

    before = list(app.before_request_funcs[None]), list(app.after_request_funcs[None])
    app.config["FREEZER_DESTINATION"] = str(tmp_path)
    Freezer(app).freeze()
    assert len(seen) == 1
    assert "mine" in seen[0]
    assert "_check_signature" not in seen[0]
    assert "_private_by_default" not in seen[0]
    assert (list(app.before_request_funcs[None]), list(app.after_request_funcs[None])) == before
    assert "_check_signature" in [hook.__name__ for hook in before[0]]
