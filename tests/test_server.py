"""The production server over HTTP on 127.0.0.1: the same answers from gunicorn, from waitress,
and from nginx in front of gunicorn (the nginx adapter)."""

from __future__ import annotations

import gzip
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import Client, EnvironBuilder

from flask_ondemand.server import SiteServer

from .conftest import Build, BuiltSite
from .servers import (
    APPS,
    Reply,
    Server,
    allowed,
    fetch,
    flask,
    free_port,
    gunicorn,
    nginx,
    post_form,
)


def test_the_partial_build_is_served_from_two_folders(partial_build: Build) -> None:
    """The "partial build" stacks below serve pages from both folders of a partial build."""
    current = partial_build.out / "current"
    own = {str(p.relative_to(current / "client")) for p in (current / "client").rglob("*")}
    assert {"about/index.html", "guide/index.html.gz", "hello", "static/site.css"} <= own
    assert "posts/first/index.html" not in own
    assert (current / "base-client/posts/first/index.html").is_file()


@pytest.mark.parametrize(
    ("path", "content_type", "body"),
    [
        ("/about/", "text/html; charset=utf-8", b"About, version 1"),
        ("/hello", "text/html; charset=utf-8", b"<h1>Hello</h1>"),  # no extension: recorded type
        ("/feed", "application/atom+xml; charset=utf-8", b"<feed/>"),
        ("/data.json", "application/json", b'{"products":["Cup","Kettle","Teapot"]}\n'),
        ("/robots.txt", "text/plain; charset=utf-8", b"User-agent: *\n"),
        ("/static/site.css", "text/css; charset=utf-8", b"body { color: black; }\n"),
        (
            "/widgets-static/widget.js",
            "text/javascript; charset=utf-8",
            b'console.log("widget");\n',
        ),
        ("/posts/first/", "text/html; charset=utf-8", b"First post"),
        ("/products/3/", "text/html; charset=utf-8", b"Product Cup"),
        ("/pages/", "text/html; charset=utf-8", b"Page 1"),
    ],
)
def test_prerendered_files_with_their_types(
    stack: BuiltSite, path: str, content_type: str, body: bytes
) -> None:
    reply = fetch(stack.server.url, path)
    assert (reply.status, reply.headers["Content-Type"], reply.body) == (200, content_type, body)
    # What the app's after_request hooks added when the page was built, once: the view and the
    # hooks do not run now (test_prerendered_views_never_run_in_production).
    assert reply.headers.get_all("X-Hook") == ["ran"]
    assert reply.headers.get_all("X-Stamp") == ["extension"]


def test_headers_a_prerendered_page_set_are_served_with_it(stack: BuiltSite) -> None:
    reply = fetch(stack.server.url, "/terms/")
    assert (reply.status, reply.body) == (200, b"Terms")
    assert reply.headers["X-Robots-Tag"] == "noindex"
    assert reply.headers.get_all("Cache-Control") == ["public, max-age=600"]
    assert reply.headers["Content-Type"] == "text/html; charset=utf-8"


CSP = "default-src 'self'"


@pytest.mark.parametrize(
    "path", ["/", "/about/", "/hello", "/data.json", "/static/site.css", "/old/"]
)
def test_headers_from_an_after_request_hook_reach_every_file(stack: BuiltSite, path: str) -> None:
    """The test site's hook adds Content-Security-Policy and X-Frame-Options to every response,
    as Flask-Talisman does: the files, their redirects and the static files keep them, once."""
    reply = fetch(stack.server.url, path)
    assert reply.headers.get_all("Content-Security-Policy") == [CSP]
    assert reply.headers.get_all("X-Frame-Options") == ["SAMEORIGIN"]


def test_headers_of_a_views_own_response_and_of_a_tuple(stack: BuiltSite) -> None:
    secure = fetch(stack.server.url, "/secure/")
    assert (secure.status, secure.body) == (200, b"Secure page")
    assert secure.headers.get_all("Content-Security-Policy") == ["default-src 'none'"]
    assert secure.headers["Referrer-Policy"] == "no-referrer"
    assert secure.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert fetch(stack.server.url, "/tuple-headers/").headers["X-From-Tuple"] == "yes"


def vary(reply: Reply) -> set[str]:
    """The fields a reply varies on, however many Vary lines name them."""
    return {
        name.strip() for line in reply.headers.get_all("Vary") or [] for name in line.split(",")
    }


def test_a_pages_vary_is_merged_with_accept_encoding(stack: BuiltSite) -> None:
    packed = fetch(stack.server.url, "/manual/", headers={"Accept-Encoding": "gzip"})
    assert packed.headers["Content-Encoding"] == "gzip"
    assert vary(packed) == {"Accept-Encoding", "Accept-Language"}
    plain = fetch(stack.server.url, "/manual/")
    assert "Accept-Language" in vary(plain)


def test_a_page_and_a_page_in_its_folder(stack: BuiltSite) -> None:
    """/docs and /docs/popup: /docs's file is docs/index.html, and /docs answers from it."""
    for path, body in [("/docs", b"Docs"), ("/docs/popup", b"Docs popup")]:
        page = fetch(stack.server.url, path)
        assert (page.status, page.body, "ETag" in page.headers) == (200, body, True), path


@pytest.mark.parametrize(
    "path",
    [
        "/docs/index.html",
        "/secure/index.html",
        "/about/index.html",
        "/index.html",
        "/manual/index.html.gz",
        "/guide/index.html.gz",
        "/static/site.css.gz",
    ],
)
def test_a_pages_file_is_not_served_under_its_file_name(stack: BuiltSite, path: str) -> None:
    """Only a page's URL reaches its file, with its headers: its file name is no URL."""
    for headers in ({}, {"Accept-Encoding": "gzip"}):
        reply = fetch(stack.server.url, path, headers=headers)
        assert (reply.status, reply.body) == (404, b"Custom 404 page"), path


def test_etag_last_modified_and_304(stack: BuiltSite) -> None:
    first = fetch(stack.server.url, "/about/")
    assert first.headers["Cache-Control"] == "max-age=0, public"
    assert first.headers["Last-Modified"]
    etag = first.headers["ETag"]
    again = fetch(stack.server.url, "/about/", headers={"If-None-Match": etag})
    assert (again.status, again.body) == (304, b"")
    since = fetch(
        stack.server.url, "/about/", headers={"If-Modified-Since": first.headers["Last-Modified"]}
    )
    assert since.status == 304


def test_precompressed_files_are_served_when_accepted(stack: BuiltSite) -> None:
    plain = fetch(stack.server.url, "/guide/")
    packed = fetch(stack.server.url, "/guide/", headers={"Accept-Encoding": "gzip"})
    assert packed.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(packed.body) == plain.body
    assert len(packed.body) < len(plain.body) / 4
    assert "Content-Encoding" not in plain.headers
    assert "Accept-Encoding" in packed.headers["Vary"]


def test_head_and_range(stack: BuiltSite) -> None:
    head = fetch(stack.server.url, "/about/", method="HEAD")
    assert (head.status, head.body, head.headers["Content-Length"]) == (200, b"", "16")
    part = fetch(stack.server.url, "/about/", headers={"Range": "bytes=0-4"})
    assert (part.status, part.body) == (206, b"About")


def test_folder_without_slash_redirects_as_flask_does(stack: BuiltSite) -> None:
    reply = fetch(stack.server.url, "/about?ref=nav")
    assert (reply.status, reply.headers["Location"]) == (308, "about/?ref=nav")
    nested = fetch(stack.server.url, "/posts/first")
    assert (nested.status, nested.headers["Location"]) == (308, "first/")


def test_prerendered_redirect_answers_with_its_status(stack: BuiltSite) -> None:
    reply = fetch(stack.server.url, "/old/")
    assert (reply.status, reply.headers["Location"]) == (301, "/about/")


@pytest.mark.parametrize(
    "path", ["/posts/third/", "/products/9/", "/pages/2/", "/ghost/", "/nothing-here"]
)
def test_urls_that_were_not_prerendered_are_404_from_the_app(stack: BuiltSite, path: str) -> None:
    reply = fetch(stack.server.url, path)
    assert (reply.status, reply.body) == (404, b"Custom 404 page")


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "TRACE", "PROPFIND"])
def test_methods_a_page_cannot_answer_are_405_with_allow(stack: BuiltSite, method: str) -> None:
    reply = fetch(stack.server.url, "/about/", method=method, body=b"x")
    assert (reply.status, allowed(reply)) == (405, ["GET", "HEAD", "OPTIONS"])
    options = fetch(stack.server.url, "/about/", method="OPTIONS")
    assert (options.status, allowed(options)) == (200, ["GET", "HEAD", "OPTIONS"])


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_a_prerendered_forms_url_allows_its_post_too(stack: BuiltSite, method: str) -> None:
    """The file answers GET and HEAD, the app POST: the 405 and OPTIONS name them all."""
    reply = fetch(stack.server.url, "/contact/", method=method, body=b"x")
    assert (reply.status, allowed(reply)) == (405, ["GET", "HEAD", "OPTIONS", "POST"])
    options = fetch(stack.server.url, "/contact/", method="OPTIONS")
    assert (options.status, allowed(options)) == (200, ["GET", "HEAD", "OPTIONS", "POST"])


def test_a_prerendered_form_still_takes_its_post(stack: BuiltSite) -> None:
    page = fetch(stack.server.url, "/contact/")
    assert (page.status, page.body) == (200, b"Contact form")
    assert "ETag" in page.headers  # the GET came from the file
    reply = post_form(stack.server.url, "/contact/", {"name": "Ada"})
    assert (reply.status, reply.body) == (200, b"Thanks, Ada")
    assert reply.headers["X-Hook"] == "ran"  # the POST ran through the app's hooks


def test_session_round_trip_on_demand(stack: BuiltSite) -> None:
    login = post_form(stack.server.url, "/login", {"user": "alice"})
    assert (login.status, login.headers["Location"]) == (303, "/account/")
    cookie = login.headers["Set-Cookie"].split(";")[0]
    account = fetch(stack.server.url, "/account/", headers={"Cookie": cookie})
    # url_for still builds the URL of a prerendered page inside the slim app.
    assert account.text == "Account of alice; see /about/"
    assert "ETag" not in account.headers
    added = post_form(stack.server.url, "/cart/add", {"item": "cup"}, headers={"Cookie": cookie})
    cart_cookie = added.headers["Set-Cookie"].split(";")[0]
    cart = fetch(stack.server.url, "/cart/", headers={"Cookie": cart_cookie})
    assert cart.text == "Cart: ['cup']"


def test_an_on_demand_page_gets_the_urls_of_its_own_host(stack: BuiltSite) -> None:
    # The served app keeps the URLs url_for builds, by everything a URL is made of.
    for _ in range(2):
        for host in ("one.example", "two.example"):
            reply = fetch(stack.server.url, "/links/", headers={"Host": host})
            assert reply.text == f"http://{host}/about/ /products/7/"


def test_on_demand_responses_pass_through_hooks_and_extensions(stack: BuiltSite) -> None:
    reply = fetch(stack.server.url, "/account/")
    assert reply.status == 200
    assert reply.headers["X-Hook"] == "ran"  # set by a blueprint's before_app_request
    assert reply.headers["X-Stamp"] == "extension"  # an extension's after_request
    not_found = fetch(stack.server.url, "/posts/nope/")
    assert (not_found.headers["X-Hook"], not_found.headers["X-Stamp"]) == ("ran", "extension")


def test_a_get_only_on_demand_rule_answers_405_to_post(stack: BuiltSite) -> None:
    reply = fetch(stack.server.url, "/cart/", method="POST", body=b"")
    assert (reply.status, allowed(reply)) == (405, ["GET", "HEAD", "OPTIONS"])


def test_prerendered_views_never_run_in_production(stack: BuiltSite) -> None:
    for path in (
        "/",
        "/about/",
        "/hello",
        "/contact/",
        "/posts/first/",
        "/data.json",
        "/posts/nope/",
    ):
        fetch(stack.server.url, path)
    fetch(stack.server.url, "/account/")
    endpoints = {line.split()[0] for line in stack.calls()}
    prerendered = {
        "index",
        "about",
        "hello",
        "post",
        "data",
        "product",
        "pages",
        "language",
        "feed",
        "robots",
        "old",
    }
    assert "account" in endpoints
    assert not endpoints & prerendered
    # The contact form reaches the app only for its POST, and its OPTIONS (which Flask answers
    # without the view); never for a GET or HEAD.
    contact = {line for line in stack.calls() if line.startswith("contact ")}
    assert contact <= {"contact POST", "contact OPTIONS"}


# --- An app as it is, with a user menu read from current_user: ONDEMAND_LIVE_COOKIES


@pytest.fixture(scope="module", params=["gunicorn", "nginx"])
def microblog(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """tests/apps/microblog built with the nginx adapter, served by gunicorn alone or by nginx
    in front of it; a user who registers after the build is added once it runs."""
    project = tmp_path_factory.mktemp("microblog") / "project"
    shutil.copytree(APPS / "microblog", project, ignore=shutil.ignore_patterns("__pycache__"))
    nginx_port, upstream_port = free_port(), free_port()
    env = {
        "FLASK_ONDEMAND_NGINX_LISTEN": f'"127.0.0.1:{nginx_port}"',
        "FLASK_ONDEMAND_NGINX_UPSTREAM": f'"127.0.0.1:{upstream_port}"',
    }
    build = ("ondemand", "build", "--adapter", "nginx")
    result = flask(project, *build, app="app:create_app()", env=env)
    assert "Warning" not in result.stderr, result.stderr
    (project / "users.txt").write_text("ada\ngrace\nnewbie\n")  # registered after the build
    out = project / "dist"
    with gunicorn(out, cwd=project, port=upstream_port) as server:
        if request.param == "gunicorn":
            yield server
        else:
            with nginx(out, prefix=project / "nginx-prefix", port=nginx_port) as front:
                yield front


def signed_in(url: str, name: str, *, remember: bool = False) -> dict[str, str]:
    fields = {"name": name, **({"remember": "1"} if remember else {})}
    login = post_form(url, "/auth/login", fields)
    assert login.status == 303
    cookies = [header.split(";")[0] for header in login.headers.get_all("Set-Cookie")]
    return {"Cookie": "; ".join(cookies)}


def test_anonymous_visitors_get_the_files(microblog: Server) -> None:
    for path, text in [("/", "Page 1"), ("/user/ada/", "User ada"), ("/about/", "About")]:
        page = fetch(microblog.url, path)
        assert (page.status, text in page.text, "ETag" in page.headers) == (200, True, True)
        assert "Login" in page.text or path == "/about/"
    assert vary(fetch(microblog.url, "/")) == {"Cookie"}  # no shared cache gives it to ada


def test_signed_in_visitors_get_their_own_pages(microblog: Server) -> None:
    ada = signed_in(microblog.url, "ada")
    home = fetch(microblog.url, "/", headers=ada)
    assert (home.status, "ETag" in home.headers) == (200, False)  # rendered now
    assert "Profile of ada" in home.text
    assert home.headers["Cache-Control"] == "private"
    assert "Cookie" in vary(home)
    profile = fetch(microblog.url, "/user/ada/", headers=ada)
    assert "Edit your profile" in profile.text
    other = fetch(microblog.url, "/user/grace/", headers=ada)
    assert "Profile of ada" in other.text
    assert "Edit your profile" not in other.text
    # A route marked live_cookies=False: the file, for everyone; a URL of its that a live
    # route's rule would match too (/user/<name>/) as well.
    about = fetch(microblog.url, "/about/", headers=ada)
    assert "ETag" in about.headers
    staff = fetch(microblog.url, "/user/staff/", headers=ada)
    assert (staff.status, staff.text, "ETag" in staff.headers) == (200, "Our staff", True)
    # A page of a query of "/" (prerender(live_query=True)) is theirs too, as on every host.
    second = fetch(microblog.url, "/?page=2", headers=ada)
    assert ("Page 2" in second.text, "Profile of ada" in second.text) == (True, True)
    assert second.headers["Cache-Control"] == "private"


def test_the_remember_cookie_alone_is_live_too(microblog: Server) -> None:
    remembered = signed_in(microblog.url, "grace", remember=True)
    cookie = next(c for c in remembered["Cookie"].split("; ") if c.startswith("remember_token="))
    home = fetch(microblog.url, "/", headers={"Cookie": cookie})
    assert "Profile of grace" in home.text


def test_a_cookie_not_listed_gets_the_file(microblog: Server) -> None:
    page = fetch(microblog.url, "/", headers={"Cookie": "theme=dark; sessionx=1"})
    assert "ETag" in page.headers


def test_a_url_not_built_renders_live_with_fallback_live(microblog: Server) -> None:
    newbie = fetch(microblog.url, "/user/newbie/")
    assert (newbie.status, "ETag" in newbie.headers) == (200, False)
    assert "User newbie" in newbie.text
    assert fetch(microblog.url, "/user/nobody/").status == 404
    assert fetch(microblog.url, "/?page=2").text.count("Post number") == 2


# SiteServer in one process


def test_paths_are_known_by_their_wsgi_path_and_found_by_their_url(tmp_path: Path) -> None:
    """A path is looked up as the WSGI server hands it over (UTF-8 bytes as Latin-1), and
    found in the build by its URL once; another spelling of a URL is nothing of the build's."""
    (tmp_path / "café").mkdir()
    (tmp_path / "café/index.html").write_text("<p>café</p>")

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"the app"]

    server = SiteServer(tmp_path, app, {"/café/": "café/index.html"})
    client = Client(server)
    for _ in range(2):  # found, then known
        reply = client.get("/café/")
        assert (reply.status_code, reply.text) == (200, "<p>café</p>")
    assert client.get("/café").headers["Location"] == "caf%C3%A9/"
    assert client.get("/live/").text == "the app"
    environ = EnvironBuilder().get_environ()
    environ["PATH_INFO"] = "/caf\xe9/"  # é in Latin-1, not UTF-8: no URL of the build
    assert b"".join(server(environ, lambda status, headers: None)) == b"the app"
