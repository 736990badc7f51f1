"""The example site, built and served as the README's quick start does."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

from flask_ondemand.manifest import Manifest

from .servers import (
    APPS,
    Browser,
    Server,
    fetch,
    flask,
    gunicorn,
    headless_chromium,
    island_sources,
    post_form,
    stream_with_release,
    unchunked,
)

ROOT = Path(__file__).parent.parent


# Where each adapter puts the files a host serves, its routing files, and what they must say
# (whitespace aside) of the example's moved page, of an on-demand route, and of the home
# page's queries (prerender(live_query=True), reading page).
HOST_OUTPUTS = {
    "nginx": (
        "client",
        ["nginx.conf"],
        [
            'try_files "/client$uri" "/base-client$uri" @app;',
            "location = /about-us/ {",
            "return 301 /about/; }",
            "location @app { proxy_pass",
        ],
    ),
    # Hosts whose CLI uploads a folder deploy it from DIR/current: they follow no symlink.
    "vercel": (
        "current/.vercel/output/static",
        ["current/.vercel/output/config.json"],
        [
            '{ "src": "^/about\\\\-us/?$", "status": 301, "headers": { "Location": "/about/" } }',
            '{ "src": "^/api/random$", "dest": "/ondemand" }',
            '{ "src": "^/?$", "methods": [ "GET", "HEAD" ], "has": [ { "type": "query", "key":'
            ' "page" } ], "dest": "/ondemand" }',
        ],
    ),
    "netlify": (
        "current/netlify",
        ["current/netlify/_redirects"],
        [
            "/about-us/ /about/ 301!",
            "/api/random https://origin.example/api/random 200!",
            "/ page=:value https://origin.example/ 200!",
        ],
    ),
    "cloudflare": (
        "current/cloudflare/public",
        [
            "current/cloudflare/public/_redirects",
            "current/cloudflare/wrangler.toml",
            "current/cloudflare/src/entry.py",
        ],
        [
            "/about-us/ /about/ 301",
            'run_worker_first = ["/", "/_ondemand/islands",',
            '"/api/random",',
            "LIVE_QUERY = frozenset(['/'])",
        ],
    ),
    "aws-lambda": (
        "current/aws-lambda/static",
        ["current/aws-lambda/routes.json", "current/aws-lambda/template.yaml"],
        [
            '"redirects": { "/about-us/": { "status": 301, "location": "/about/" } }',
            '"/api/random",',
            '"PathPattern": "/api/random",',
            '"live_query": [ "/" ]',
            # The files' cache keys on the query: "/?page=2" never gets the file of "/".
            '"CookiesConfig": { "CookieBehavior": "none" }, "QueryStringsConfig": {'
            ' "QueryStringBehavior": "all" }',
        ],
    ),
}


@pytest.mark.parametrize("adapter", sorted(HOST_OUTPUTS))
def test_builds_for_every_host(tmp_path: Path, adapter: str) -> None:
    """Each host gets every prerendered file of the example, byte for byte, and routes that
    send the moved page and the on-demand pages where they belong."""
    out = tmp_path / "dist"
    env = {"FLASK_ONDEMAND_NETLIFY_ORIGIN": '"https://origin.example"'}
    build = ("ondemand", "build", "--out", str(out), "--adapter", adapter)
    flask(ROOT, *build, app="example_app", env=env)
    files, routing, routes = HOST_OUTPUTS[adapter]
    built = Manifest.read(out / "manifest.json").files.values()
    assert len(built) == 11
    for file in built:
        assert (out / files / file).read_bytes() == (out / "client" / file).read_bytes(), file
    said = " ".join(" ".join((out / name).read_text().split()) for name in routing)
    for route in routes:
        assert route in said


def test_a_post_edited_then_rebuilt_alone(tmp_path: Path) -> None:
    """The partial rebuild the README describes: edit one post, rebuild just the posts, and
    the running server serves the new text, with the other pages as they were."""
    shutil.copytree(ROOT / "example_app", tmp_path / "example_app")
    whole = flask(tmp_path, "ondemand", "build", app="example_app")
    assert re.search(r"^Built dist in [\d.]+ s: 11 files \(11 rendered now\)", whole.stdout, re.M)
    with gunicorn(tmp_path / "dist", cwd=tmp_path) as server:
        posts = tmp_path / "example_app/posts.py"
        posts.write_text(posts.read_text().replace("in a slim app.", "in the slim app, now."))
        partial = flask(tmp_path, "ondemand", "build", "--only", "blog.post", app="example_app")
        assert "(3 rendered now)" in partial.stdout
        assert "in the slim app, now." in fetch(server.url, "/blog/on-demand-pages/").text
        assert "Hybrid rendering with Flask" in fetch(server.url, "/").text  # from the base
        assert fetch(server.url, "/about-us/").status == 301
    assert (tmp_path / "dist/current/base-client/index.html").is_file()


@pytest.fixture(scope="module")
def example_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("example") / "dist"
    flask(ROOT, "ondemand", "build", "--out", str(out), app="example_app")
    return out


@pytest.fixture(scope="module")
def example(example_build: Path) -> Iterator[Server]:
    with gunicorn(example_build, cwd=ROOT) as server:
        yield server


def test_prerendered_pages(example: Server) -> None:
    home = fetch(example.url, "/")
    assert home.status == 200
    assert "ETag" in home.headers
    assert "Hybrid rendering with Flask" in home.text
    post = fetch(example.url, "/blog/on-demand-pages/")
    assert post.status == 200
    assert "Pages on demand" in post.text
    assert fetch(example.url, "/about/").status == 200


def test_json_feed_is_a_file(example: Server) -> None:
    feed = fetch(example.url, "/feed.json")
    assert feed.headers["Content-Type"] == "application/json"
    first = json.loads(feed.body)["items"][0]
    assert first == {"url": "/blog/hybrid-rendering/", "title": "Hybrid rendering with Flask"}


def test_random_number_is_on_demand(example: Server) -> None:
    numbers = {json.loads(fetch(example.url, "/api/random").body)["number"] for _ in range(3)}
    assert len(numbers) == 3


def test_a_request_for_another_host_is_refused(example: Server) -> None:
    """The example trusts only its own hosts (Flask 3.1's TRUSTED_HOSTS; Flask 3.0 has no such
    setting): on-demand pages build no URL from a host a client chose."""
    reply = fetch(example.url, "/account/", headers={"Host": "evil.example"})
    trusted_hosts = tuple(int(part) for part in version("flask").split(".")[:2]) >= (3, 1)
    assert reply.status == (400 if trusted_hosts else 200)
    assert b"//evil.example" not in reply.body  # no URL built from it
    assert "evil.example" not in reply.headers.get("Location", "")
    assert fetch(example.url, "/account/", headers={"Host": "localhost"}).status == 200


def test_moved_page_redirects(example: Server) -> None:
    reply = fetch(example.url, "/about-us/")
    assert (reply.status, reply.headers["Location"]) == (301, "/about/")


def test_account_uses_the_session(example: Server) -> None:
    assert "You are not signed in" in fetch(example.url, "/account/").text
    login = post_form(example.url, "/account/login", {"name": "Grace"})
    assert login.status == 303
    cookie = login.headers["Set-Cookie"].split(";")[0]
    assert (
        "Signed in as <strong>Grace</strong>"
        in fetch(example.url, "/account/", headers={"Cookie": cookie}).text
    )


@pytest.mark.parametrize(
    ("next_url", "location"),
    [
        ("/blog/hybrid-rendering/", "/blog/hybrid-rendering/"),
        ("https://evil.example/", "/account/"),
        ("", "/account/"),
    ],
)
def test_login_follows_next_only_on_site(example: Server, next_url: str, location: str) -> None:
    reply = post_form(example.url, "/account/login", {"name": "Ada", "next": next_url})
    assert (reply.status, reply.headers["Location"]) == (303, location)


def test_the_home_page_is_a_file_and_its_other_pages_run(example: Server) -> None:
    """prerender(live_query=True): "/" is a file, "/?page=2" is rendered on demand."""
    first = fetch(example.url, "/")
    assert "ETag" in first.headers
    assert "Page 1 of 2" in first.text
    assert '<a href="/?page=2">Older</a>' in first.text
    second = fetch(example.url, "/?page=2")
    assert (second.status, "ETag" in second.headers) == (200, False)
    assert "Page 2 of 2" in second.text
    assert "Pages on demand" in second.text  # the third post
    assert "Hybrid rendering with Flask" not in second.text


def test_every_page_has_the_visitors_menu_and_messages(example: Server) -> None:
    """The user menu and the flashed messages are islands: a prerendered page is the same
    for everyone, and its islands are each visitor's own."""
    about = fetch(example.url, "/about/")
    assert "ETag" in about.headers
    islands = island_sources(about.text)
    assert set(islands) == {"/account/_menu", "/account/_messages"}
    anonymous = fetch(example.url, islands["/account/_menu"])
    assert anonymous.text.strip() == '<span class="menu"><a href="/account/">Sign in</a></span>'
    assert anonymous.headers["Cache-Control"] == "private, no-store"
    login = post_form(example.url, "/account/login", {"name": "Grace"})
    cookie = {"Cookie": login.headers["Set-Cookie"].split(";")[0]}
    menu = fetch(example.url, islands["/account/_menu"], headers=cookie)
    assert "Signed in as <strong>Grace</strong>" in menu.text
    messages = fetch(example.url, islands["/account/_messages"], headers=cookie)
    assert messages.text.strip() == '<p class="message" role="status">Welcome, Grace.</p>'
    assert fetch(example.url, islands["/account/_menu"].split("?")[0]).status == 400


def test_contact_form_is_an_island_with_a_csrf_token(example: Server) -> None:
    page = fetch(example.url, "/contact/")
    assert (page.status, "ETag" in page.headers) == (200, True)
    assert "csrf_token" not in page.text  # no one's token is in the file
    form = fetch(example.url, island_sources(page.text)["/contact/_form"])
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form.text)
    assert token is not None
    cookie = {"Cookie": form.headers["Set-Cookie"].split(";")[0]}
    sent = post_form(
        example.url, "/contact/", {"csrf_token": token.group(1), "name": "Ada"}, headers=cookie
    )
    assert (sent.status, sent.headers["Location"]) == (303, "/contact/")
    cookie = {"Cookie": sent.headers["Set-Cookie"].split(";")[0]}
    messages = fetch(example.url, island_sources(page.text)["/account/_messages"], headers=cookie)
    assert "Thank you, Ada. We will write back." in messages.text
    fields = {"csrf_token": token.group(1), "name": ""}
    unnamed = post_form(example.url, "/contact/", fields, headers=cookie)
    assert unnamed.status == 400
    assert "This field is required." in unnamed.text
    forged = post_form(example.url, "/contact/", {"name": "Eve"}, headers=cookie)
    assert forged.status == 400
    assert "The CSRF token is missing." in forged.text


def test_unknown_post_is_the_site_404(example: Server) -> None:
    reply = fetch(example.url, "/blog/no-such-post/")
    assert reply.status == 404
    assert "There is no page here" in reply.text


def test_visit_counter_uses_a_cookie_and_sets_a_header(example: Server) -> None:
    browser = Browser(example.url)
    pages = [browser.get("/visits/") for _ in range(3)]
    assert ["Counter = 0" in p.text for p in pages] == [True, False, False]
    assert "Counter = 2" in pages[2].text
    assert pages[0].headers["Cache-Control"] == "no-store"
    assert browser.cookie("visits") == "2"


def test_search_miss_is_a_404_with_status_text(example: Server) -> None:
    miss = fetch(example.url, "/search/?q=astronomy")
    assert (miss.status, miss.reason) == (404, "No Posts Found")
    assert "No post matches" in miss.text
    hit = fetch(example.url, "/search/?q=hybrid")
    assert (hit.status, hit.reason) == (200, "OK")
    assert "/blog/hybrid-rendering/" in hit.text


def test_live_page_is_streamed(example_build: Path, tmp_path: Path) -> None:
    """The slow comments are held until the client has the page's head (tests/apps/
    held_comments.py): "released by the client" in the page proves the head came first."""
    held = ("--config", str(APPS / "held_comments.py"))
    with gunicorn(example_build, cwd=ROOT, options=held) as server:
        port = int(server.url.rsplit(":", 1)[1])
        received = stream_with_release(port, "/live/", tmp_path / "release")
    head, _, body = received.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head
    assert b"Set-Cookie: seen_live=yes;" in head  # set before the first chunk
    page = unchunked(body)
    assert b"<title>Live</title>" in page
    assert b"<li>Pages on demand</li>" in page  # the post list came with the head
    assert b"<li>released by the client</li>" in page


def test_live_page_ends_with_its_comments(example: Server) -> None:
    reply = fetch(example.url, "/live/")
    assert reply.status == 200
    assert "<li>Great post!</li><li>Streaming works.</li>" in reply.text


# --- In a real browser: Debian's Chromium, under the example's Content-Security-Policy


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with headless_chromium() as browser:
        yield browser


def expect(locator: Any) -> Any:
    """Playwright's ``expect``, which waits for what it asserts."""
    from playwright.sync_api import expect

    return expect(locator)


def test_a_browser_shows_each_visitor_their_own_islands(example: Server, chromium: Any) -> None:
    """A prerendered page loads its islands' fragments, the visitor's own, through the one
    script file, under `Content-Security-Policy: default-src 'self'` with no console error."""
    page = chromium.new_context().new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    first = page.goto(example.url + "/about/")
    assert first.headers["content-security-policy"] == "default-src 'self'"
    assert "etag" in first.headers  # the file
    page.wait_for_selector(".menu")
    assert page.inner_text(".menu") == "Sign in"
    page.goto(example.url + "/account/")
    page.fill("main input[name=name]", "Grace")
    page.click("main button")
    page.wait_for_selector(".message")
    assert page.inner_text(".message") == "Welcome, Grace."
    page.goto(example.url + "/about/")
    page.wait_for_selector(".menu strong")
    assert page.inner_text(".menu") == "Signed in as Grace · Account"
    assert page.locator(".message").count() == 0  # a message is shown once
    # The contact form is an island with the visitor's CSRF token; sending it works.
    page.goto(example.url + "/contact/")
    page.fill("main input[name=name]", "Ann")
    page.click("main button")
    page.wait_for_selector(".message")
    assert page.inner_text(".message") == "Thank you, Ann. We will write back."
    assert page.url == example.url + "/contact/"
    assert console == []
    page.close()


def test_without_javascript_the_fallbacks_show(example: Server, chromium: Any) -> None:
    page = chromium.new_context(java_script_enabled=False).new_page()
    page.goto(example.url + "/contact/")
    assert page.locator("nav ondemand-island a").inner_text() == "Account"
    assert "The form needs JavaScript" in page.inner_text("main")
    assert page.locator("main form").count() == 0
    page.close()


def test_an_island_that_answers_500_keeps_its_fallback(tmp_path: Path, chromium: Any) -> None:
    """A deploy that lost the menu's template: the island answers 500, the page is whole."""
    shutil.copytree(ROOT / "example_app", tmp_path / "example_app")
    flask(tmp_path, "ondemand", "build", app="example_app")
    (tmp_path / "example_app/templates/_menu.html").unlink()
    with gunicorn(tmp_path / "dist", cwd=tmp_path) as server:
        page = chromium.new_context().new_page()
        with page.expect_response(lambda reply: "/_ondemand/islands?" in reply.url) as asked:
            page.goto(server.url + "/about/")
        menu, messages = asked.value.json()["islands"]
        assert (menu["status"], messages["status"]) == (500, 200)
        # The script runs in the page's world, where the CSP forbids eval: ask a locator.
        expect(page.locator("ondemand-island")).to_have_count(1)  # the messages were loaded
        assert page.locator("nav ondemand-island a").inner_text() == "Account"
        page.close()


def test_the_prices_page_is_cached_and_a_signed_in_visitor_refreshes_it(example: Server) -> None:
    """/prices/ is cached (every render shows new prices); its button is an island, shown to
    signed-in visitors only, and revalidates the page for everyone."""
    first, second = fetch(example.url, "/prices/"), fetch(example.url, "/prices/")
    assert first.status == 200
    assert second.text == first.text
    assert (second.headers["Cache-Status"] or "").startswith("flask-ondemand; hit;")
    assert "s-maxage=60, stale-while-revalidate=600" in (second.headers["Cache-Control"] or "")
    controls = island_sources(first.text)["/prices/_refresh"]
    assert "Sign in</a> to refresh" in fetch(example.url, controls).text
    assert fetch(example.url, "/prices/refresh", method="POST").status == 403
    login = post_form(example.url, "/account/login", {"name": "Grace"})
    cookie = {"Cookie": login.headers["Set-Cookie"].split(";")[0]}
    button = fetch(example.url, controls, headers=cookie)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', button.text)
    assert token is not None
    cookie = {"Cookie": button.headers["Set-Cookie"].split(";")[0]}  # the token is in it now
    refreshed = post_form(example.url, "/prices/refresh", {"csrf_token": token.group(1)}, cookie)
    assert (refreshed.status, refreshed.headers["Location"]) == (303, "/prices/")
    again = fetch(example.url, "/prices/")
    assert again.headers["Cache-Status"] == "flask-ondemand; fwd=uri-miss; stored"
    assert again.text != first.text  # rendered anew: other prices, another time
