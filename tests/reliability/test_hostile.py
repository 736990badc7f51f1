"""Hostile input, aimed at the production server (gunicorn and Granian serving the test site;
for path traversal, also waitress and nginx) over HTTP.

Each request must get a 4xx, or a safe 2xx/3xx: never a 5xx, a traceback, or a file from
outside the build's client folder.
"""

from __future__ import annotations

import shutil
import socket
import threading
from email.message import Message

import pytest

from ..conftest import BuiltSite
from ..servers import Reply, fetch

# What must never come back: the build folder's own files, and Python's tracebacks.
SECRETS = (b"load_build", b'"format"', b"Traceback", b"testsite:create_app")


def assert_safe(reply: Reply | None) -> None:
    """An answer (not a dropped connection) with a status below 500, that gives nothing away."""
    assert reply is not None, "the server closed the connection without an answer"
    assert 100 <= reply.status < 500, (reply.status, reply.body[:200])
    for secret in SECRETS:
        assert secret not in reply.body


# The WSGI servers that face clients directly, for requests that reach the app: Granian hands
# them over its own way (repeated headers joined with commas, cookies with semicolons).
FRONT_SERVERS = pytest.mark.parametrize("stack", ["gunicorn", "granian"], indirect=True)


def raw(site: BuiltSite, request: bytes) -> Reply | None:
    """Send bytes as they are, for what http.client refuses to send. The answer's body is all
    that came back, its head included; None if the server closed without a status line."""
    host, port = site.server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(request)
        connection.shutdown(socket.SHUT_WR)  # nothing more comes: the server must answer now
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    if not answer.startswith(b"HTTP/1."):
        assert answer == b"", answer[:200]  # nothing, or an HTTP answer: never anything else
        return None
    _, status, reason = answer.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
    return Reply(int(status), reason, Message(), answer)


TRAVERSALS = [
    "/../server.py",
    "/..%2fserver.py",
    "/%2e%2e/server.py",
    "/%2E%2E%2Fmanifest.json",
    "/static/../../server.py",
    "/static/%2e%2e/%2e%2e/server.py",
    "/static/..%2f..%2fserver.py",
    "/static/..\\..\\server.py",
    "/static/%5c..%5c..%5cserver.py",
    "/%252e%252e/%252e%252e/server.py",
    "/static/site.css%00",
    "/static/%00../../server.py",
    "/..;/server.py",
    "/.%2e/manifest.json",
    "/static//../../server.py",
    "/current/manifest.json",
    "/.builds/",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_path_traversal(stack: BuiltSite, path: str) -> None:
    """Through gunicorn, waitress, and nginx in front of gunicorn."""
    reply = fetch(stack.server.url, path)
    assert 400 <= reply.status < 500
    assert_safe(reply)


# The wsgi server's stacks: nginx serves what the folder holds (try_files), which a build
# makes exactly the listed files, so a file put there by hand is served through nginx.
@pytest.mark.parametrize(
    "stack", ["gunicorn", "waitress", "granian", "gunicorn, partial build"], indirect=True
)
def test_files_the_manifest_does_not_list_are_never_served(stack: BuiltSite) -> None:
    """Only the URLs the manifest lists reach a file: not a file put in the live build's
    client folder (or a partial build's base) by hand."""
    live = (stack.out / "current").resolve()
    folders = [live / "client"]
    if (live / "base-client").is_dir():
        folders.append((live / "base-client").resolve())
    planted = [folder / name for folder in folders for name in ("unlisted.txt", "unlisted/")]
    try:
        for path in planted:
            if path.name == "unlisted":
                path.mkdir()
                path = path / "index.html"
            path.write_text("not listed in the manifest")
        for url in ("/unlisted.txt", "/unlisted/", "/unlisted/index.html"):
            reply = fetch(stack.server.url, url)
            assert (reply.status, reply.body) == (404, b"Custom 404 page"), url
    finally:
        for path in planted:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Big": "x" * 20_000},  # over gunicorn's limit for one header
        {f"X-Many-{n}": "1" for n in range(150)},  # over its limit for the number of headers
        {"Cookie": "a=" + "b" * 20_000},
        {"Host": "evil.example\twith-tab"},
        {"Content-Length": "-1"},
        {"Accept-Encoding": "gzip;q=" + "9" * 5000},
    ],
)
@FRONT_SERVERS
def test_oversized_and_malformed_headers(stack: BuiltSite, headers: dict[str, str]) -> None:
    for path in ("/about/", "/account/"):
        assert_safe(fetch(stack.server.url, path, headers=headers))


# gunicorn only: Granian (hyper) answers what it cannot parse with a 400, but drops the answer
# to a request still in hand when the client shuts its side (as raw does), so these would
# measure that rather than the app.
@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /about/ HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n",
        b"GET /about/ HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n",  # obsolete line folding
        b"GET " + b"/a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",  # a request line too long
        b"GET /\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n",  # not UTF-8
        b"GET /about/\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"BREW /about/ HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /about/ HTTP/9.9\r\nHost: x\r\n\r\n",
    ],
)
def test_malformed_requests(site: BuiltSite, request_bytes: bytes) -> None:
    assert_safe(raw(site, request_bytes))


def test_a_tls_hello_on_the_plain_port(site: BuiltSite) -> None:
    """Not HTTP at all: the server may close without a word, or answer a 4xx."""
    answer = raw(site, b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03")
    if answer is not None:
        assert_safe(answer)
    assert fetch(site.server.url, "/about/").status == 200  # and it still serves


@pytest.mark.parametrize(
    "path", ["/%ff%fe/", "/about/%C0%AF", "/posts/%ff/", "/lab/cookies/read?name=%ff"]
)
@FRONT_SERVERS
def test_urls_that_are_not_utf8(stack: BuiltSite, path: str) -> None:
    assert_safe(fetch(stack.server.url, path))


@pytest.mark.parametrize(
    "cookie",
    [
        "visits=1; visits=2",
        "=; ;=;",
        "visits=\x01\x02",
        "user=not.a.signature",
        'user="a.b.c"',
        "a" * 4000,
        "a" * 4000 + "=1",
        "visits",
        "=====",
        '"; \\"; ;;; =;',
        "visits=%ZZ%00",
        "visits=inf",  # numbers a cookie's number() reads as NaN
        "visits=1e400",
    ],
)
@FRONT_SERVERS
def test_garbage_duplicated_and_tampered_cookies(stack: BuiltSite, cookie: str) -> None:
    for path in ("/lab/visits", "/lab/cookies/read?name=user&signed=1", "/account/", "/about/"):
        assert_safe(fetch(stack.server.url, path, headers={"Cookie": cookie}))


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/lab/cookies/set", "application/x-www-form-urlencoded"),
        ("/login", "application/x-www-form-urlencoded"),
        ("/contact/", "multipart/form-data; boundary=xyz"),
        ("/lab/api", "application/json"),
    ],
)
@FRONT_SERVERS
def test_huge_bodies_to_on_demand_routes(stack: BuiltSite, path: str, content_type: str) -> None:
    """20 MB bodies. A server may answer before it has read them all (a 413, or a view that
    reads no body) and close: the answer is read while the body is still being sent."""
    size = 20_000_000
    method = "PUT" if path == "/lab/api" else "POST"
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {size}\r\nConnection: close\r\n\r\n"
    ).encode()
    host, port = stack.server.url.removeprefix("http://").split(":")
    answer = bytearray()
    with socket.create_connection((host, int(port)), timeout=30) as connection:

        def read() -> None:
            try:
                while chunk := connection.recv(65536):
                    answer.extend(chunk)
            except OSError:  # reset: the server closed with the body unread
                pass

        reader = threading.Thread(target=read)
        reader.start()
        body = memoryview(b"name=" + b"x" * (size - 5))
        try:
            connection.sendall(head)
            for start in range(0, size, 65536):
                connection.sendall(body[start : start + 65536])
        except OSError:  # the server answered and closed: the rest is not wanted
            pass
        reader.join(30)
    assert answer.startswith(b"HTTP/1.1 "), bytes(answer[:100])
    status = int(answer.split(b" ", 2)[1])
    assert status < 500, bytes(answer[:300])
    for secret in SECRETS:
        assert secret not in answer
