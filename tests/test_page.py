"""`response`, `redirect` and `stream`, read off the wire from gunicorn (streams from Granian
too), and their API edges."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from flask import Flask

from flask_ondemand import HeadersSentError, UnsafeHeaderError, cookies, redirect, response

from .conftest import BuiltSite
from .servers import fetch, stream_with_release


def test_status_and_status_text_on_the_status_line(site: BuiltSite) -> None:
    reply = fetch(site.server.url, "/lab/status")
    assert (reply.status, reply.reason, reply.body) == (
        404,
        "Product not found",
        b"No such product",
    )


def test_headers_set_by_the_page(site: BuiltSite) -> None:
    reply = fetch(site.server.url, "/lab/headers")
    assert reply.headers["Cache-Control"] == "public, max-age=3600"
    assert reply.headers.get_all("X-Page") == ["one", "two"]


def test_a_views_own_response_keeps_its_status_and_headers(site: BuiltSite) -> None:
    reply = fetch(site.server.url, "/lab/own-response")
    assert (reply.status, reply.body, reply.headers["X-Own"]) == (201, b"its own", "yes")
    assert "X-Page" not in reply.headers
    assert reply.headers["Set-Cookie"].startswith("own=still-set;")  # cookies still attach


def test_a_tuples_own_status_and_headers_win(site: BuiltSite) -> None:
    reply = fetch(site.server.url, "/lab/tuple")
    assert reply.status == 202
    assert (reply.headers["X-A"], reply.headers["X-B"]) == ("tuple", "page")


# CR LF, LF, CR, NUL, tab, DEL, U+0085 (NEL), U+2028, U+2029, and text outside Latin-1 (€).
HOSTILE_HEADER_TEXT = [
    "a%0d%0aX-Evil:%201",
    "a%0d%0aSet-Cookie:%20x=1",
    "a%0aX-Evil:1",
    "a%0dX-Evil:1",
    "a%00b",
    "a%09b",
    "a%7fb",
    "a%C2%85X-Evil:1",
    "a%E2%80%A8X-Evil:1",
    "a%E2%80%A9X-Evil:1",
    "%E2%82%AC",
]


@pytest.mark.parametrize("value", HOSTILE_HEADER_TEXT)
@pytest.mark.parametrize("where", ["echo-header", "echo-status"])
def test_hostile_header_text_is_refused_with_a_400(site: BuiltSite, where: str, value: str) -> None:
    """A header value or status text copied from the request: a 400 that names the cause,
    never a 500 from the server, and nothing of it on the wire."""
    reply = fetch(site.server.url, f"/lab/{where}?value={value}")
    assert (reply.status, reply.reason) == (400, "BAD REQUEST")
    assert "X-Evil" not in reply.headers
    assert "Set-Cookie" not in reply.headers
    assert "X-Echo" not in reply.headers
    assert "a control character, a line separator or a character outside Latin-1" in reply.text


def test_latin1_header_text_is_sent(site: BuiltSite) -> None:
    reply = fetch(site.server.url, "/lab/echo-header?value=caf%C3%A9%20au%20lait")
    assert reply.status == 200
    assert reply.headers["X-Echo"].encode("latin-1") == "café au lait".encode("latin-1")


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirect_helper_on_demand(site: BuiltSite, status: int) -> None:
    reply = fetch(site.server.url, f"/lab/go?to=/about/&status={status}")
    assert (reply.status, reply.headers["Location"]) == (status, "/about/")


# And NUL, which breaks no line but is as unsafe in a header.
@pytest.mark.parametrize("breaks", ["%0d%0a", "%0a", "%00", "%C2%85", "%E2%80%A8", "%E2%80%A9"])
def test_redirect_target_that_breaks_a_line_is_a_400(site: BuiltSite, breaks: str) -> None:
    reply = fetch(site.server.url, f"/lab/go?to=/x{breaks}Set-Cookie:%20a=1")
    assert reply.status == 400
    assert "Set-Cookie" not in reply.headers
    assert "Location" not in reply.headers


def test_a_redirect_to_an_international_url_is_sent_encoded(site: BuiltSite) -> None:
    reply = fetch(site.server.url, "/lab/go?to=/caf%C3%A9/%E2%82%AC/")
    assert (reply.status, reply.headers["Location"]) == (302, "/caf%C3%A9/%E2%82%AC/")


@pytest.mark.parametrize(
    ("target", "location"),
    [
        ("/account/", "/account/"),
        ("/lab/visits?x=1", "/lab/visits?x=1"),
        ("https://evil.example/", "/fallback/"),
        ("//evil.example/", "/fallback/"),
        ("//evil.example", "/fallback/"),
        ("/\\evil.example/", "/fallback/"),
        ("javascript:alert(1)", "/fallback/"),
        ("https://docs.example.com/guide", "https://docs.example.com/guide"),
        ("https://docs.example.com:8443/guide", "/fallback/"),  # listed host, not that port
        ("https://DOCS.example.com/guide", "https://docs.example.com/guide"),
        ("//[", "/fallback/"),  # not even a URL
        (" /account/", "/fallback/"),
        ("", "/fallback/"),
    ],
)
def test_safe_redirect_stays_on_site(site: BuiltSite, target: str, location: str) -> None:
    reply = fetch(site.server.url, f"/lab/safe?to={quote(target, safe='')}")
    # Werkzeug 3.1 writes a host in lower case, 3.0 as it was given: the same host.
    sent = urlsplit(reply.headers["Location"])
    assert (reply.status, sent._replace(netloc=sent.netloc.lower()).geturl()) == (302, location)


@pytest.mark.parametrize(
    ("scheme", "target_scheme", "followed"),
    [("http", "http", True), ("http", "https", True), ("https", "http", False)],
)
def test_safe_redirect_follows_the_own_host_but_not_down_to_http(
    site: BuiltSite, scheme: str, target_scheme: str, followed: bool
) -> None:
    host = site.server.url.removeprefix("http://")
    target = f"{target_scheme}://{host}/about/"
    # gunicorn trusts X-Forwarded-Proto from 127.0.0.1, as from a proxy in front of it.
    reply = fetch(
        site.server.url,
        f"/lab/safe?to={quote(target, safe='')}",
        headers={"X-Forwarded-Proto": scheme},
    )
    assert reply.headers["Location"] == (target if followed else "/fallback/")


def test_prerendered_redirect_helper_is_served_with_its_status(site: BuiltSite) -> None:
    reply = fetch(site.server.url, "/moved/")
    assert (reply.status, reply.headers["Location"]) == (308, "/about/")
    page = (site.out / "client/moved/index.html").read_text()
    assert '<meta http-equiv="refresh" content="0; url=/about/">' in page
    assert '<link rel="canonical" href="/about/">' in page


# Streaming under gunicorn and under Granian, whose WSGI side hands each chunk to its Rust side
# as the app yields it.
STREAMING_SERVERS = pytest.mark.parametrize("stack", ["gunicorn", "granian"], indirect=True)


@STREAMING_SERVERS
def test_streamed_head_arrives_before_the_slow_call_ends(stack: BuiltSite, tmp_path: Path) -> None:
    """The slow call takes 1 s unless the client releases it by making a file. The client does
    so only once it holds the head, so "released by the client" in the page proves that the
    head was sent before the slow call ended, with no clock in the test."""
    port = int(stack.server.url.rsplit(":", 1)[1])
    received = stream_with_release(port, "/lab/stream", tmp_path / "release")
    head, _, body = received.partition(b"\r\n\r\n")
    head = head.lower()  # Granian (hyper) writes header names in lower case
    assert b"transfer-encoding: chunked" in head
    assert b"x-stream: before the first chunk" in head  # headers set before the first chunk
    assert b"set-cookie: streamed=yes;" in head  # and cookies
    assert b"slow data (released by the client)" in body


@STREAMING_SERVERS
def test_changes_after_the_first_chunk_raise_headers_sent(stack: BuiltSite) -> None:
    reply = fetch(stack.server.url, "/lab/stream-late")
    assert reply.headers["X-Early"] == "set before the first yield"
    assert "Set-Cookie" not in reply.headers
    assert reply.text == (
        "<p>head</p>"
        "<p>refused: cookies.set('late'): the headers of /lab/stream-late were already sent."
        " Headers and cookies can only be set at page level, before streaming starts.</p>"
        "<p>refused: response.status: the headers of /lab/stream-late were already sent."
        " Headers and cookies can only be set at page level, before streaming starts.</p>"
    )


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_on_demand_endpoint_takes_every_declared_method(site: BuiltSite, method: str) -> None:
    reply = fetch(site.server.url, "/lab/api", method=method)
    assert (reply.status, reply.body) == (200, f'{{"method":"{method}"}}\n'.encode())


def test_on_demand_endpoint_answers_head(site: BuiltSite) -> None:
    reply = fetch(site.server.url, "/lab/api", method="HEAD")
    assert (reply.status, reply.body, reply.headers["Content-Type"]) == (
        200,
        b"",
        "application/json",
    )


# In-process: the API's edges.


@pytest.mark.parametrize("status", [200, 299, 304, 305, 306, 309, 400, "301", True])
def test_redirect_refuses_a_status_that_is_not_a_redirect(app: Flask, status: object) -> None:
    with (
        app.test_request_context(),
        pytest.raises(
            ValueError, match="redirect status must be one of 300, 301, 302, 303, 307, 308"
        ),
    ):
        redirect("/", status)  # type: ignore[arg-type]


def test_redirect_refuses_crlf_in_the_location(app: Flask) -> None:
    with (
        app.test_request_context(),
        pytest.raises(UnsafeHeaderError, match="the redirect location"),
    ):
        redirect("/a\r\nSet-Cookie: x=1")


@pytest.mark.parametrize("status", [99, 600, "404", 404.0, None])
def test_response_status_must_be_an_http_status(app: Flask, status: object) -> None:
    with app.test_request_context(), pytest.raises(ValueError, match="from 100 to 599"):
        response.status = status  # type: ignore[assignment]


@pytest.mark.parametrize("text", ["Not\r\nFound", "Nöt føünd ✓"])
def test_status_text_must_be_safe_latin1(app: Flask, text: str) -> None:
    with app.test_request_context(), pytest.raises(ValueError, match="status_text"):
        response.status_text = text


def test_header_names_and_values_are_checked(app: Flask) -> None:
    with app.test_request_context():
        with pytest.raises(UnsafeHeaderError, match="the value of header 'X-A'"):
            response.headers["X-A"] = "1\n2"
        with pytest.raises(UnsafeHeaderError, match="a header name"):
            response.headers.add("X-\r\nB", "1")
        assert isinstance(UnsafeHeaderError("x"), ValueError)


def test_response_changes_after_sending_raise(app: Flask) -> None:
    @app.route("/")
    def index() -> str:
        return "index"

    @app.teardown_request
    def too_late(error: BaseException | None) -> None:
        for change in (
            lambda: setattr(response, "status", 201),
            lambda: setattr(response, "status_text", "Late"),
            lambda: response.headers.set("X-Late", "1"),
            lambda: response.headers.clear(),
            lambda: cookies.set("late", "1"),
            lambda: cookies.delete("late"),
        ):
            with pytest.raises(HeadersSentError, match="can only be set at page level"):
                change()

    assert app.test_client().get("/").status_code == 200


def test_status_text_alone_keeps_the_status(app: Flask) -> None:
    @app.route("/")
    def index() -> tuple[str, int]:
        response.status_text = "Fine Indeed"
        return "x", 200

    @app.route("/body")
    def body() -> str:
        response.status_text = "Fine Indeed"
        return "x"

    client = app.test_client()
    assert client.get("/").status == "200 OK"  # the tuple's status wins, with its own text
    assert client.get("/body").status == "200 Fine Indeed"


def test_page_states_apply_from_the_first_page_that_has_one(app: Flask) -> None:
    @app.route("/plain")
    def plain() -> str:
        return "plain"

    @app.route("/status")
    def status() -> str:
        response.status = 201
        response.headers["X-Page"] = "1"
        return "made"

    client = app.test_client()
    assert client.get("/plain").status_code == 200
    # No page used a helper yet: the app makes its responses as Flask alone does.
    assert "make_response" not in vars(app)
    made = client.get("/status")  # the first page state: applied to its own response
    assert (made.status_code, made.headers["X-Page"]) == (201, "1")
    assert "make_response" in vars(app)
    plain_again = client.get("/plain")
    assert (plain_again.status_code, plain_again.headers.get("X-Page")) == (200, None)
