"""The nginx adapter: its config, and what only nginx in front of gunicorn can show.

The shared HTTP tests of tests/test_server.py also run through nginx (the "nginx" stack).
These tests start and stop their own servers, so they use a build of their own, with ports
of their own.
"""

from __future__ import annotations

import gzip
import socket
import zlib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from .conftest import Build
from .servers import (
    Server,
    build_with_adapter,
    fetch,
    flask,
    free_port,
    granian,
    gunicorn,
    nginx,
    post_form,
    stream_with_release,
)
from .test_caching import build_cache_site, serving


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Build:
    nginx_port, upstream_port = free_port(), free_port()
    ports = {
        "FLASK_ONDEMAND_NGINX_LISTEN": f'"127.0.0.1:{nginx_port}"',
        "FLASK_ONDEMAND_NGINX_UPSTREAM": f'"127.0.0.1:{upstream_port}"',
    }
    out, _ = build_with_adapter(tmp_path_factory.mktemp("nginx"), "nginx", env=ports)
    return Build(out.parent, out, out.parent / "calls.log", nginx_port, upstream_port)


def test_config_is_linked_from_the_build_folder(build: Build) -> None:
    conf = build.out / "nginx.conf"
    assert conf.is_symlink()
    text = conf.read_text()
    assert f"root {build.out}/current;" in text
    assert 'try_files "/client$uri" "/base-client$uri" @app;' in text
    assert f"listen 127.0.0.1:{build.nginx_port};" in text
    assert f"server 127.0.0.1:{build.upstream_port};" in text
    assert "location = /old/ {\n" in text
    assert "            return 301 /about/;\n" in text
    assert 'default_type "text/html; charset=utf-8";' in text  # /hello has no extension
    assert "proxy_buffering on;" in text


def test_static_pages_are_served_with_gunicorn_stopped(build: Build, tmp_path: Path) -> None:
    with nginx(build.out, prefix=tmp_path / "nginx", port=build.nginx_port) as server:
        for path, body in [
            ("/about/", b"About, version 1"),
            ("/data.json", b'{"products":["Cup","Kettle","Teapot"]}\n'),
            ("/hello", b"<h1>Hello</h1>"),
            ("/docs", b"Docs"),  # its file is docs/index.html: /docs/popup needs the folder
        ]:
            reply = fetch(server.url, path)
            assert (reply.status, reply.body) == (200, body), path
        assert fetch(server.url, "/old/").status == 301
        assert fetch(server.url, "/terms/").headers["X-Robots-Tag"] == "noindex"
        assert fetch(server.url, "/account/").status == 502  # nothing to proxy to


@contextmanager
def front(
    build: Build, prefix: Path, env: dict[str, str] | None = None, options: tuple[str, ...] = ()
) -> Iterator[Server]:
    """nginx in front of gunicorn (2 sync workers), as the nginx adapter's deploy line says."""
    with (
        gunicorn(
            build.out,
            cwd=build.project,
            env={**build.env, **(env or {})},
            port=build.upstream_port,
            options=options,
        ),
        nginx(build.out, prefix=prefix, port=build.nginx_port) as server,
    ):
        yield server


def test_streamed_pages_pass_through_unbuffered(build: Build, tmp_path: Path) -> None:
    """As in tests/test_page.py, the client releases the slow call only once it holds the
    head; "released by the client" proves nginx passed the head on before the page ended,
    though it buffers every other answer: stream() says X-Accel-Buffering: no."""
    with front(build, tmp_path / "nginx"):
        received = stream_with_release(build.nginx_port, "/lab/stream", tmp_path / "release")
    assert b"slow data (released by the client)" in received
    assert b"X-Accel-Buffering" not in received.split(b"\r\n\r\n")[0]  # nginx keeps it


def test_streamed_pages_stream_gzipped_too(build: Build, tmp_path: Path) -> None:
    """A browser accepts gzip, and nginx compresses on-demand text: the streamed head must
    still arrive, compressed, before the slow call ends."""
    release = tmp_path / "release"
    with (
        front(build, tmp_path / "nginx"),
        socket.create_connection(("127.0.0.1", build.nginx_port), timeout=30) as connection,
    ):
        request = f"GET /lab/stream?release={release} HTTP/1.1\r\nHost: t\r\n"
        connection.sendall(f"{request}Accept-Encoding: gzip\r\nConnection: close\r\n\r\n".encode())
        received = b""
        while b"\r\n\r\n" not in received:
            received += connection.recv(65536)
        head, body = received.split(b"\r\n\r\n", 1)
        assert b"Content-Encoding: gzip" in head
        unpacked, inflate = b"", zlib.decompressobj(16 + zlib.MAX_WBITS)
        while b"</head>" not in unpacked:
            unpacked += inflate.decompress(_dechunk_some(connection, body))
            body = b""
        release.touch()
        while chunk := connection.recv(65536):
            body += chunk
    page = unpacked + inflate.decompress(_dechunk(body))
    assert b"slow data (released by the client)" in page


def _dechunk_some(connection: socket.socket, pending: bytes) -> bytes:
    """Read from a chunked body until at least one whole chunk is in; return its data."""
    data = pending
    while True:
        size_line, _, rest = data.partition(b"\r\n")
        if _ and len(rest) >= int(size_line, 16) + 2:
            return _dechunk(data)
        chunk = connection.recv(65536)
        assert chunk, "the connection closed before the first chunk"
        data += chunk


def _dechunk(data: bytes) -> bytes:
    """The data of the whole chunks in ``data`` (chunked transfer coding)."""
    out = b""
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        if not _ or len(rest) < int(size_line, 16) + 2:
            break
        size = int(size_line, 16)
        out, data = out + rest[:size], rest[size + 2 :]
    return out


def test_on_demand_text_is_gzipped(build: Build, tmp_path: Path) -> None:
    with front(build, tmp_path / "nginx") as server:
        packed = fetch(server.url, "/lab/big", headers={"Accept-Encoding": "gzip"})
        plain = fetch(server.url, "/lab/big")
    assert packed.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(packed.body) == plain.body
    assert len(plain.body) == 29 * 290_000


@pytest.mark.parametrize("facing", ["nginx", "granian"])
def test_slow_clients_never_hold_the_workers(build: Build, tmp_path: Path, facing: str) -> None:
    """Fifty clients that send half a request, and two that ask for an 8 MB answer and never
    read it, against 2 sync workers: nginx holds them all, and every page still answers.
    (Unbuffered, the two readers alone pinned both workers until gunicorn's timeout.) Granian
    alone, with 2 workers, holds them too: its Rust side reads and writes the sockets."""
    workers_wait = ("--timeout", "120")  # gunicorn would otherwise free a pinned worker at 30 s
    if facing == "nginx":
        serving = front(build, tmp_path / "nginx", options=workers_wait)
    else:
        serving = granian(build.out, env=build.env)
    with serving as server, ExitStack() as stack:
        port = int(server.url.rsplit(":", 1)[1])
        for _ in range(50):
            slow = stack.enter_context(socket.create_connection(("127.0.0.1", port)))
            slow.sendall(b"GET /account/ HTTP/1.1\r\nHost: t\r\nX-Slow: ")
        for _ in range(2):
            reader = stack.enter_context(socket.socket())
            reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            reader.connect(("127.0.0.1", port))
            reader.sendall(b"GET /lab/big HTTP/1.1\r\nHost: t\r\n\r\n")
        for path in ("/about/", "/data.json", "/account/", "/lab/visits", "/posts/nope/"):
            assert fetch(server.url, path).status in (200, 404), path
        added = post_form(server.url, "/cart/add", {"item": "cup"})
        assert added.status == 303
        assert fetch(server.url, "/lab/big").status == 200


def test_request_bodies_up_to_the_documented_size(build: Build, tmp_path: Path) -> None:
    with front(build, tmp_path / "nginx") as server:
        taken = fetch(server.url, "/lab/upload", method="POST", body=b"x" * 2_000_000)
        assert (taken.status, taken.body) == (200, b"received 2000000 bytes")
        refused = fetch(server.url, "/lab/upload", method="POST", body=b"x" * 11_000_000)
        assert refused.status == 413


def test_a_redirect_never_names_the_upstream(build: Build, tmp_path: Path) -> None:
    """An HTTP/1.0 request carries no Host: Werkzeug's redirect to the slash URL then had
    gunicorn's own address in it."""
    with front(build, tmp_path / "nginx"):
        answer = _raw(build.nginx_port, b"GET /account HTTP/1.0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 308 "), answer[:100]
    assert b"\r\nLocation: /account/\r\n" in answer
    assert str(build.upstream_port).encode() not in answer


def test_after_partial_builds_files_come_from_both_folders(tmp_path: Path) -> None:
    """A partial build's pages are in its own folder, the others in its base's; the pages it
    dropped still have files in the base, which nginx must not serve, by any of their URLs."""
    nginx_port, upstream_port = free_port(), free_port()
    ports = {
        "FLASK_ONDEMAND_NGINX_LISTEN": f'"127.0.0.1:{nginx_port}"',
        "FLASK_ONDEMAND_NGINX_UPSTREAM": f'"127.0.0.1:{upstream_port}"',
    }
    out, _ = build_with_adapter(tmp_path, "nginx", env=ports)
    now = {**ports, "SITE_GONE": "hello,guide", "SITE_VERSION": "2"}
    now["FLASK_FREEZER_IGNORE_404_NOT_FOUND"] = "true"
    for page in ("/hello", "/guide/", "/about/"):
        flask(out.parent, "ondemand", "build", "--adapter", "nginx", "--only", page, env=now)
    assert (out / "current/base-client/guide/index.html.gz").is_file()
    with (
        gunicorn(out, cwd=out.parent, port=upstream_port),
        nginx(out, prefix=tmp_path / "nginx", port=nginx_port) as server,
    ):
        assert fetch(server.url, "/about/").body == b"About, version 2"
        assert fetch(server.url, "/posts/first/").body == b"First post"  # from the base
        for path in ("/hello", "/guide/", "/guide/index.html", "/guide/index.html.gz"):
            dropped = fetch(server.url, path)
            assert dropped.status == 404, path
            assert b"nginx" not in dropped.body  # the app's 404, as gunicorn alone answers


GUIDE_SHORT = b"<h1>Guide</h1><p>Read this guide slowly and carefully.</p>"


def test_a_page_rerendered_without_its_gzip_copy_hides_the_bases(tmp_path: Path) -> None:
    """/guide/ re-rendered too short to compress: the base it lies on still has the long
    version with its .gz copy, which nginx must never send, whatever the client accepts."""
    nginx_port, upstream_port = free_port(), free_port()
    ports = {
        "FLASK_ONDEMAND_NGINX_LISTEN": f'"127.0.0.1:{nginx_port}"',
        "FLASK_ONDEMAND_NGINX_UPSTREAM": f'"127.0.0.1:{upstream_port}"',
    }
    out, _ = build_with_adapter(tmp_path, "nginx", env=ports)
    short = {**ports, "SITE_GUIDE": "short"}
    flask(out.parent, "ondemand", "build", "--adapter", "nginx", "--only", "/guide/", env=short)
    assert (out / "current/base-client/guide/index.html.gz").is_file()  # the base's copy
    built = Build(out.parent, out, out.parent / "calls.log", nginx_port, upstream_port)
    with front(built, tmp_path / "nginx") as server:
        for accepted in ("gzip", "identity"):
            page = fetch(server.url, "/guide/", headers={"Accept-Encoding": accepted})
            body = page.body
            if page.headers["Content-Encoding"] == "gzip":  # nginx may compress it itself
                body = gzip.decompress(body)
            assert (page.status, body) == (200, GUIDE_SHORT), accepted
        copy = fetch(server.url, "/guide/index.html.gz", headers={"Accept-Encoding": "gzip"})
        assert (copy.status, copy.body) == (404, b"Custom 404 page")


def _raw(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return answer


def test_a_server_name_turns_other_hosts_away(tmp_path: Path) -> None:
    nginx_port, upstream_port = free_port(), free_port()
    env = {
        "FLASK_ONDEMAND_NGINX_LISTEN": f'"127.0.0.1:{nginx_port}"',
        "FLASK_ONDEMAND_NGINX_UPSTREAM": f'"127.0.0.1:{upstream_port}"',
        "FLASK_ONDEMAND_NGINX_SERVER_NAME": '"site.test www.site.test"',
    }
    out, _ = build_with_adapter(tmp_path, "nginx", env=env)
    build = Build(out.parent, out, out.parent / "calls.log", nginx_port, upstream_port)
    with front(build, tmp_path / "nginx") as server:
        for host in ("site.test", "www.site.test"):
            assert fetch(server.url, "/account/", headers={"Host": host}).status == 200
        for host in ("evil.test", f"127.0.0.1:{nginx_port}"):
            assert fetch(server.url, "/account/", headers={"Host": host}).status == 421
            assert fetch(server.url, "/about/", headers={"Host": host}).status == 421
        assert _raw(nginx_port, b"GET /about/ HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.1 421 ")


@pytest.mark.parametrize("trusted", [True, False])
def test_x_forwarded_proto_decides_secure_cookies(
    build: Build, tmp_path: Path, trusted: bool
) -> None:
    """With ONDEMAND_PROXY_FIX = 1, the scheme the proxy saw decides whether cookies are
    Secure; what a client claims in its own X-Forwarded-Proto never does: nginx replaces it.
    (gunicorn trusts the header itself from 127.0.0.1, its --forwarded-allow-ips; that is
    turned off here, so that only the app's own setting decides. Granian never reads it.)"""
    env = {"FLASK_ONDEMAND_PROXY_FIX": "1"} if trusted else {}
    trust_nothing = ("--forwarded-allow-ips", "")
    with front(build, tmp_path / "nginx", env=env, options=trust_nothing) as server:
        claimed = fetch(server.url, "/lab/visits", headers={"X-Forwarded-Proto": "https"})
        assert "Secure" not in claimed.headers["Set-Cookie"]  # nginx saw plain HTTP
        for behind_a_proxy in (
            gunicorn(build.out, cwd=build.project, env=env, options=trust_nothing),
            granian(build.out, env=env),
        ):
            with behind_a_proxy as direct:
                reply = fetch(direct.url, "/lab/visits", headers={"X-Forwarded-Proto": "https"})
            assert ("; Secure" in reply.headers["Set-Cookie"]) is trusted, direct.process.args


def test_the_pages_of_cached_routes_go_to_gunicorn(tmp_path: Path) -> None:
    """nginx hands a cached route's page to gunicorn, which answers it from the route cache
    (its built file first) and refreshes it."""
    nginx_port, upstream_port = free_port(), free_port()
    ports = {
        "FLASK_ONDEMAND_NGINX_LISTEN": f'"127.0.0.1:{nginx_port}"',
        "FLASK_ONDEMAND_NGINX_UPSTREAM": f'"127.0.0.1:{upstream_port}"',
    }
    project, run, env = build_cache_site(tmp_path, "--adapter", "nginx", env=ports)
    conf = (project / "dist/nginx.conf").read_text()
    assert "location = /about/ { error_page 418 = @app; return 418; }" in conf
    with (
        serving(project, run, env, port=upstream_port) as site,
        nginx(project / "dist", prefix=tmp_path / "nginx", port=nginx_port) as front,
    ):
        first = fetch(front.url, "/about/")
        assert (first.status, first.text) == (200, "About v1")
        assert (first.headers["Cache-Status"] or "").startswith("flask-ondemand; hit;")
        site.set_data("v2")
        site.move_clock(61)
        stale = fetch(front.url, "/about/")
        assert (stale.text, stale.headers["Cache-Status"]) == (
            "About v1",
            f"flask-ondemand; hit; ttl={60 - int(stale.headers['Age'])}; fwd=stale;"
            " detail=refreshing",
        )
        site.wait_for(lambda: fetch(front.url, "/about/").text == "About v2", "the refresh")
        prices = [fetch(front.url, "/prices/") for _ in range(2)]
        assert [r.headers["Cache-Status"][:20] for r in prices] == [
            "flask-ondemand; fwd=",
            "flask-ondemand; hit;",
        ]
