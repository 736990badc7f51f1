"""The netlify adapter: its publish folder served by Netlify's own CLI (``netlify dev``,
offline) in front of the wsgi build on gunicorn, and its files checked against Netlify's rules
where ``netlify dev`` is known to differ from Netlify."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from flask_ondemand.adapters.cdn import host_location, host_path
from flask_ondemand.adapters.netlify import NetlifyAdapter, netlify_pattern, redirects_file
from flask_ondemand.errors import AdapterWarning, BuildError

from .host_tools import netlify_dev
from .live_cookies import (
    assert_live_cookies,
    assert_live_query,
    build_microblog,
    unmatched_queries_site,
)
from .servers import (
    Server,
    assert_page_headers,
    assert_site_answers,
    build_with_adapter,
    fetch,
    free_port,
    gunicorn,
    stream_with_release,
)
from .test_caching import build_cache_site, serving


@dataclass
class Published:
    folder: Path
    origin: Server
    build_output: str


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Published]:
    port = free_port()
    env = {"FLASK_ONDEMAND_NETLIFY_ORIGIN": f'"http://127.0.0.1:{port}"'}
    out, result = build_with_adapter(tmp_path_factory.mktemp("netlify"), "netlify", env=env)
    folder = out / "current/netlify"
    deploy = "Deploy:  netlify deploy --prod --dir dist/current/netlify, with the wsgi build"
    assert deploy in result.stdout
    with gunicorn(out, cwd=out.parent, port=port) as origin:
        yield Published(folder, origin, result.stdout + result.stderr)


@pytest.fixture(scope="module")
def netlify(published: Published) -> Iterator[Server]:
    with netlify_dev(published.folder, cwd=published.folder.parents[3] / "netlify-site") as server:
        yield server


def rules(published: Published) -> list[list[str]]:
    lines = (published.folder / "_redirects").read_text().splitlines()
    return [line.split() for line in lines if line.strip() and not line.startswith("#")]


def test_the_publish_folder_is_a_real_folder(published: Published) -> None:
    """netlify-cli does not walk a symlinked root: the printed path must end in a folder,
    and DIR has no link that would deploy nothing."""
    assert not published.folder.is_symlink()
    assert published.folder.is_dir()
    assert not (published.folder.parents[1] / "netlify").exists()
    assert (published.folder / "about/index.html").read_text() == "About, version 1"
    # Netlify compresses by itself: a .gz copy would be a file of its own, without headers.
    assert (published.folder / "manual/index.html").is_file()
    assert not list(published.folder.rglob("*.gz"))


def test_redirects_file_follows_netlifys_rules(published: Published) -> None:
    listed = rules(published)
    origin = published.origin.url
    # A query condition, key=:value, stands between a rule's from and its to.
    assert all(len(rule) == 3 or "=:" in rule[1] for rule in listed)
    # First match wins: redirects, then the forced proxies, then the catch-all, last.
    assert listed[0] == ["/moved/", "/about/", "308!"]  # forced: a refresh page is there
    assert listed[1] == ["/old/", "/about/", "301!"]
    assert ["/index.html", f"{origin}/index.html", "200!"] in listed
    assert ["/:p1/index.html", f"{origin}/:p1/index.html", "200!"] in listed
    assert ["/account/", f"{origin}/account/", "200!"] in listed
    assert ["/lab/returns/:kind", f"{origin}/lab/returns/:kind", "200!"] in listed
    listing = ["/isles/listing/", "page=:value", f"{origin}/isles/listing/", "200!"]
    assert listed.index(listing) < listed.index(["/docs", "/docs/index.html", "200!"])
    assert listed[-1] == ["/*", f"{origin}/:splat", "200"]
    statuses = [rule[2] for rule in listed]
    assert statuses.index("200!") > statuses.index("301!")
    # A splat only ever ends a path.
    assert all("*" not in rule[0][:-1] for rule in listed)


def test_a_page_whose_file_is_in_its_folder(published: Published, netlify: Server) -> None:
    """/docs, whose file is docs/index.html (/docs/popup needs the folder): a forced rewrite
    to it, whether Netlify would find it or not (netlify dev does), and the file's own name is
    no URL. Netlify matches /docs/ by the same rule (it ignores a final slash), so there the
    page answers too; the wsgi build answers 404."""
    assert ["/docs", "/docs/index.html", "200!"] in rules(published)
    for path, body in [("/docs", b"Docs"), ("/docs/popup", b"Docs popup")]:
        assert fetch(netlify.url, path).body == body, path
    assert fetch(netlify.url, "/docs/index.html").body == b"Custom 404 page"


def test_headers_file(published: Published) -> None:
    """netlify dev applies no rule to a folder URL (netlify/cli #1277: it matches the file's
    path, /secure/index.html) and lets its own type win (#6096), so what Netlify does with
    those is checked here, in the file. Every matching rule applies, and a header two rules
    set gets both values: a header a page has its own value of is never in the /* rule."""
    rules = header_rules(published.folder / "_headers")
    assert "Content-Security-Policy" not in rules["/*"]  # /secure/ has its own
    assert "  X-Frame-Options: SAMEORIGIN\n" in rules["/*"]
    assert rules["/secure/"] == (
        "  Content-Security-Policy: default-src 'none'\n  Referrer-Policy: no-referrer\n"
    )
    assert rules["/about/"] == "  Content-Security-Policy: default-src 'self'\n"
    assert rules["/hello"].startswith("  Content-Type: text/html; charset=utf-8\n")
    terms = rules["/terms/"]
    assert "  X-Robots-Tag: noindex\n  Cache-Control: public, max-age=600" in terms
    assert "/moved/" not in rules  # its forced redirect answers, not its refresh page


def header_rules(path: Path) -> dict[str, str]:
    """A _headers file as each path's indented lines."""
    rules: dict[str, str] = {}
    path_line = ""
    for line in path.read_text().splitlines():
        if line.startswith("/"):
            path_line = line
            rules[line] = ""
        elif line.startswith(" "):
            rules[path_line] += line + "\n"
    return rules


def test_a_form_posting_to_its_own_file_is_warned_about(published: Published) -> None:
    assert "Warning: netlify: /contact/ is a file that also takes POST" in published.build_output


def test_the_shared_answers(netlify: Server) -> None:
    assert_site_answers(netlify.url, form_posts_to_its_page=False)


def test_page_headers_and_file_names(netlify: Server) -> None:
    assert_page_headers(netlify.url, folder_urls=False)
    # The /* rule reaches folder pages in netlify dev too.
    assert fetch(netlify.url, "/secure/").headers.get_all("X-Frame-Options") == ["SAMEORIGIN"]


def test_proxied_answers_keep_the_apps_headers_alone(netlify: Server) -> None:
    """Netlify applies _headers to its own files only: an on-demand page has the app's
    headers, once."""
    reply = fetch(netlify.url, "/account/")
    assert reply.headers.get_all("Content-Security-Policy") == ["default-src 'self'"]
    assert reply.headers.get_all("X-Frame-Options") == ["SAMEORIGIN"]


def test_streamed_pages_stream_through_the_proxy(netlify: Server, tmp_path: Path) -> None:
    port = int(netlify.url.rsplit(":", 1)[1])
    received = stream_with_release(port, "/lab/stream", tmp_path / "release")
    assert b"slow data (released by the client)" in received


def test_page_urls_and_locations_cannot_add_fields_or_rules() -> None:
    assert host_path("/a b/\tc#d\n/") == "/a%20b/%09c%23d%0A/"
    assert host_path("/café/") == "/caf%C3%A9/"
    assert host_path("/100%/") == "/100%25/"
    with pytest.raises(BuildError, match=r"^/a/\*: a URL with '\*' or ':'"):
        host_path("/a/*")
    assert host_location("/x/", "/to go/\n/ 200!") == "/to%20go/%0A/%20200!"
    assert host_location("/x/y", "other#part") == "/x/other#part"  # relative, made absolute
    assert host_location("/x/", "https://docs.example.com/a b") == "https://docs.example.com/a%20b"


@pytest.mark.parametrize(
    ("rule", "source", "target"),
    [
        ("/about/", "/about/", "/about/"),
        ("/blog/<slug>/", "/blog/:slug/", "/blog/:slug/"),
        ("/u/<int:id>/posts/<slug>", "/u/:id/posts/:slug", "/u/:id/posts/:slug"),
        ("/docs/<path:rest>", "/docs/*", "/docs/:splat"),
        ("/files/<path:rest>/raw", "/files/*", "/files/:splat"),
        ("/p/item-<int:n>", "/p/*", "/p/:splat"),
        ("/p/<int:n>.json", "/p/*", "/p/:splat"),
        ("/a b/<x>", "/a%20b/:x", "/a%20b/:x"),
    ],
)
def test_werkzeug_rules_as_netlify_paths(rule: str, source: str, target: str) -> None:
    assert netlify_pattern(rule) == (source, target)


def test_cached_routes_are_proxied_and_kept_by_netlifys_cdn(tmp_path: Path) -> None:
    """The page of a cached route is proxied to the origin (which refreshes it), and cached
    answers come with Netlify-CDN-Cache-Control, durable, which Netlify's CDN keeps them by."""
    port = free_port()
    origin = {"FLASK_ONDEMAND_NETLIFY_ORIGIN": f'"http://127.0.0.1:{port}"'}
    project, run, env = build_cache_site(tmp_path, "--adapter", "netlify", env=origin)
    publish = project / "dist/current/netlify"
    lines = (publish / "_redirects").read_text().splitlines()
    assert f"/about/  http://127.0.0.1:{port}/about/  200!" in lines
    with (
        serving(project, run, env, port=port) as site,
        netlify_dev(publish, cwd=tmp_path / "netlify-site") as netlify,
    ):
        about = fetch(netlify.url, "/about/")
        assert about.text == "About v1"
        assert (about.headers["Cache-Status"] or "").startswith("flask-ondemand; hit;")
        fetch(netlify.url, "/prices/")
        kept = fetch(site.url, "/prices/")
        assert kept.headers["Netlify-CDN-Cache-Control"] == (
            "public, durable, s-maxage=60, stale-while-revalidate=600"
        )
        assert (kept.headers["Cache-Status"] or "").startswith("flask-ondemand; hit;")


@pytest.fixture(scope="module")
def microblog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Server]]:
    """tests/apps/microblog (ONDEMAND_LIVE_COOKIES) published for Netlify: netlify dev in
    front of its wsgi build on gunicorn."""
    folder = tmp_path_factory.mktemp("netlify-microblog")
    port = free_port()
    env = {"FLASK_ONDEMAND_NETLIFY_ORIGIN": f'"http://127.0.0.1:{port}"'}
    out, result = build_microblog(folder, "netlify", env=env)
    assert "Warning" not in result.stderr, result.stderr
    publish = out / "current/netlify"
    with (
        gunicorn(out, cwd=out.parent, port=port),
        netlify_dev(publish, cwd=folder / "netlify-site") as server,
    ):
        yield publish, server


def test_live_cookie_rules_name_the_cookies(microblog: tuple[Path, Server]) -> None:
    publish, _ = microblog
    lines = (publish / "_redirects").read_text().splitlines()
    origin = next(line.split()[1] for line in lines if line.startswith("/*"))[: -len("/:splat")]
    cookie = "Cookie=session,remember_token"
    live = [line.split() for line in lines if line.endswith(cookie)]
    assert live == [
        ["/", f"{origin}/", "200!", cookie],
        ["/user/:name/", f"{origin}/user/:name/", "200!", cookie],
    ]
    assert not any("/about/" in line for line in lines)  # live_cookies=False: its file


def test_netlify_dev_applies_the_cookie_condition(microblog: tuple[Path, Server]) -> None:
    """netlify dev's own redirect engine (netlify-redirector) proxies a signed-in visitor's
    request to the origin, and serves everyone else Netlify's file."""
    publish, server = microblog
    # netlify dev applies no _headers rule to a folder URL (see test_headers_file): the files'
    # Vary: Cookie is checked in the file.
    assert_live_cookies(server.url, files_vary=False)
    rules = header_rules(publish / "_headers")
    assert rules["/user/ada/"] == rules["/"] == "  Vary: Cookie\n"
    anonymous = fetch(server.url, "/user/ada/")
    assert anonymous.headers["Server"] != "gunicorn"  # Netlify's own file, not the origin's


def test_live_query_rules_name_the_parameters(microblog: tuple[Path, Server]) -> None:
    """Netlify matches a query by its parameters' names: "/" is proxied with page=:value,
    the parameter its page looked up while it was built."""
    publish, _ = microblog
    lines = (publish / "_redirects").read_text().splitlines()
    origin = next(line.split()[1] for line in lines if line.startswith("/*"))[: -len("/:splat")]
    assert [line.split() for line in lines if "=:" in line] == [
        ["/", "page=:value", f"{origin}/", "200!"]
    ]


def test_netlify_dev_sends_a_query_to_the_origin(microblog: tuple[Path, Server]) -> None:
    """netlify dev's own redirect engine proxies "/?page=2" to the origin, with its whole
    query, and serves "/" from Netlify's file."""
    _, server = microblog
    assert_live_query(
        server.url,
        from_files=lambda page: page.headers["Server"] != "gunicorn",
        by_name=True,
        files_vary=False,
    )


def test_queries_netlify_cannot_tell_apart_are_proxied_whole_warned(tmp_path: Path) -> None:
    """A page that read its query whole, or a parameter whose name clients encode: every
    request of it is proxied (the origin sends the file for the bare URL), and the build
    says so, naming the route and the cause."""
    origin = "https://origin.example"
    with pytest.warns(AdapterWarning) as warned:
        lines = redirects_file(unmatched_queries_site(tmp_path), origin).splitlines()
    # Only the adapter's: pytest.warns records any warning, a stray ResourceWarning too.
    messages = [str(w.message) for w in warned if issubclass(w.category, AdapterWarning)]
    assert messages[0].startswith("netlify: / (index) read its query string whole")
    assert "every request of its pages goes to the origin, its files unused." in messages[0]
    assert messages[1].startswith("netlify: /tags/ (tags) reads the query parameter 'filter[tag]'")
    assert f"/  {origin}/  200!" in lines
    assert f"/tags/  {origin}/tags/  200!" in lines
    assert f"/plain/  page=:value  {origin}/plain/  200!" in lines


def test_live_query_pages_need_the_origin(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match=r"needs ONDEMAND_NETLIFY_ORIGIN.* \(/, /tags/, /plain/"):
        NetlifyAdapter().write(unmatched_queries_site(tmp_path))


def test_live_cookies_need_the_origin(tmp_path: Path) -> None:
    _, result = build_microblog(tmp_path, "netlify", check=False)
    assert result.returncode != 0
    assert "the netlify adapter needs ONDEMAND_NETLIFY_ORIGIN" in result.stderr
