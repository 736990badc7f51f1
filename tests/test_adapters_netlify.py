"""The netlify adapter: _redirects and _headers checked against Netlify's rules, and the shared
answers through a stand-in that applies them in front of gunicorn (tests/hosts/netlify_proxy.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from flask_ondemand.adapters.netlify import netlify_pattern

from .servers import (
    Server,
    assert_site_answers,
    build_with_adapter,
    fetch,
    free_port,
    gunicorn,
    host,
)


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
    with gunicorn(out, cwd=out.parent, port=port) as origin:
        yield Published(out / "netlify", origin, result.stdout + result.stderr)


@pytest.fixture(scope="module")
def netlify(published: Published) -> Iterator[Server]:
    with host("netlify_proxy.py", str(published.folder)) as server:
        yield server


def rules(published: Published) -> list[list[str]]:
    lines = (published.folder / "_redirects").read_text().splitlines()
    return [line.split() for line in lines if line.strip() and not line.startswith("#")]


def test_redirects_file_follows_netlifys_rules(published: Published) -> None:
    listed = rules(published)
    origin = published.origin.url
    assert all(len(rule) == 3 for rule in listed)
    # First match wins: redirects, then the forced proxies, then the catch-all, last.
    assert listed[0] == ["/moved/", "/about/", "308!"]  # forced: a refresh page is there
    assert listed[1] == ["/old/", "/about/", "301!"]
    assert ["/account/", f"{origin}/account/", "200!"] in listed
    assert ["/lab/returns/:kind", f"{origin}/lab/returns/:kind", "200!"] in listed
    assert listed[-1] == ["/*", f"{origin}/:splat", "200"]
    statuses = [rule[2] for rule in listed]
    assert statuses.index("200!") > statuses.index("301!")
    # A splat only ever ends a path.
    assert all("*" not in rule[0][:-1] for rule in listed)


def test_headers_file(published: Published) -> None:
    text = (published.folder / "_headers").read_text()
    assert "/hello\n  Content-Type: text/html; charset=utf-8\n" in text
    terms = text.split("/terms/\n", 1)[1].split("\n/", 1)[0]
    assert "  X-Robots-Tag: noindex\n  Cache-Control: public, max-age=600" in terms
    assert "  Content-Security-Policy: default-src 'self'\n" in terms  # the hooks' headers


def test_a_form_posting_to_its_own_file_is_warned_about(published: Published) -> None:
    assert "Warning: netlify: /contact/ is a file that also takes POST" in published.build_output


def test_the_shared_answers(netlify: Server) -> None:
    assert_site_answers(netlify.url, form_posts_to_its_page=False)


def test_pretty_urls_and_types(netlify: Server) -> None:
    assert fetch(netlify.url, "/hello").headers["Content-Type"] == "text/html; charset=utf-8"
    folder = fetch(netlify.url, "/about")
    assert (folder.status, folder.headers["Location"]) == (301, "/about/")


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
    ],
)
def test_werkzeug_rules_as_netlify_paths(rule: str, source: str, target: str) -> None:
    assert netlify_pattern(rule) == (source, target)
