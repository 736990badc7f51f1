"""The example site, built and served as the README's quick start does."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from .servers import Server, fetch, flask, gunicorn, post_form

ROOT = Path(__file__).parent.parent


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    out = tmp_path_factory.mktemp("example") / "dist"
    flask(ROOT, "ondemand", "build", "--out", str(out), app="example_app")
    with gunicorn(out, cwd=ROOT) as server:
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


def test_contact_form_is_a_file_and_its_post_runs(example: Server) -> None:
    form = fetch(example.url, "/contact/")
    assert form.status == 200
    assert "ETag" in form.headers
    assert "Thank you, Ada" in post_form(example.url, "/contact/", {"name": "Ada"}).text
    missing = post_form(example.url, "/contact/", {"name": ""})
    assert missing.status == 400
    assert "Please give your name" in missing.text


def test_unknown_post_is_the_site_404(example: Server) -> None:
    reply = fetch(example.url, "/blog/no-such-post/")
    assert reply.status == 404
    assert "There is no page here" in reply.text
