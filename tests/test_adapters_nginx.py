"""The nginx adapter: its config, and what only nginx in front of gunicorn can show.

The shared HTTP tests of tests/test_server.py also run through nginx (the "nginx" stack).
These tests start and stop their own servers, so they use a build of their own, with ports
of their own.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import Build
from .servers import (
    build_with_adapter,
    fetch,
    flask,
    free_port,
    gunicorn,
    nginx,
    stream_with_release,
)


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
            ("/data.json", None),
            ("/hello", b"<h1>Hello</h1>"),
        ]:
            reply = fetch(server.url, path)
            assert reply.status == 200, path
            assert body is None or reply.body == body
        assert fetch(server.url, "/old/").status == 301
        assert fetch(server.url, "/terms/").headers["X-Robots-Tag"] == "noindex"
        assert fetch(server.url, "/account/").status == 502  # nothing to proxy to


def test_streamed_pages_pass_through_unbuffered(build: Build, tmp_path: Path) -> None:
    """As in tests/test_page.py, the client releases the slow call only once it holds the
    head; "released by the client" proves nginx passed the head on before the page ended."""
    with (
        gunicorn(build.out, cwd=build.project, env=build.env, port=build.upstream_port),
        nginx(build.out, prefix=tmp_path / "nginx", port=build.nginx_port),
    ):
        received = stream_with_release(build.nginx_port, "/lab/stream", tmp_path / "release")
    assert b"slow data (released by the client)" in received


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


def test_a_page_rerendered_without_its_gzip_copy_hides_the_bases(tmp_path: Path) -> None:
    out, _ = build_with_adapter(tmp_path, "nginx")
    short = {"SITE_GUIDE": "short"}
    flask(out.parent, "ondemand", "build", "--adapter", "nginx", "--only", "/guide/", env=short)
    conf = (out / "nginx.conf").read_text()
    assert "location = /guide/index.html.gz { error_page 404 = @app; return 404; }" in conf
    assert "location = /guide/index.html {" not in conf  # served, from the build's own folder
