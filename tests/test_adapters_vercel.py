"""The vercel adapter: the Build Output API v3 layout, compared with what ``vercel build``
writes for a Python function; the function run by Vercel's own launcher (``vercel-runtime``,
vendored in it) on Python 3.12, in the IPC mode Vercel starts it in; and config.json's routes
applied by a stand-in router (tests/hosts/vercel_router.py), Vercel's router running only
there."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from flask_ondemand.adapters.vercel import config, rule_pattern
from flask_ondemand.errors import AdapterWarning

from .host_tools import npm_tool, python312, python312_base
from .live_cookies import (
    assert_live_cookies,
    assert_live_query,
    build_microblog,
    signed_in,
    unmatched_queries_site,
)
from .servers import (
    HOSTS,
    Server,
    assert_page_headers,
    assert_site_answers,
    build_with_adapter,
    fetch,
    serve,
    stream_with_release,
)
from .test_caching import cache_site_for_adapters


@pytest.fixture(scope="module")
def output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out, result = build_with_adapter(tmp_path_factory.mktemp("vercel"), "vercel")
    assert "Deploy:  cd dist/current && vercel deploy --prebuilt" in result.stdout
    return out / "current/.vercel/output"


@contextmanager
def launched(function: Path, ipc: Path) -> Iterator[Server]:
    """Start the function as Vercel does: the handler module of .vc-config.json imported on
    its Python, with its environment, and VERCEL_IPC_PATH naming a socket on which the
    launcher reports the port it serves HTTP on."""
    vc_config = json.loads((function / ".vc-config.json").read_text())
    module = vc_config["handler"].rpartition(".")[0]
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(ipc))
    listener.listen(1)
    listener.settimeout(60)
    env = {"PATH": os.environ["PATH"], "VERCEL_IPC_PATH": str(ipc), **vc_config["environment"]}
    process = subprocess.Popen(
        [str(python312_base()), "-c", f"import {module}"],
        cwd=function,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        try:
            connection, _ = listener.accept()
        except TimeoutError:
            process.kill()
            log = process.communicate()[0]
            raise AssertionError(f"the launcher did not connect:\n{log}") from None
        messages = _messages(connection)
        started = next(m for m in messages if m["type"] == "server-started")
        yield Server(f"http://127.0.0.1:{started['payload']['httpPort']}", process)  # type: ignore[arg-type]
    finally:
        process.terminate()
        process.wait(15)
        listener.close()
        if process.stdout is not None:
            process.stdout.close()


def _messages(connection: socket.socket) -> Iterator[dict[str, object]]:
    """The launcher's NUL-separated JSON messages; after the first, read on in a thread, so
    that its writes never block."""
    buffer = b""
    first: list[dict[str, object]] = []
    while not first:
        chunk = connection.recv(65536)
        assert chunk, "the launcher closed its IPC socket"
        buffer += chunk
        *whole, buffer = buffer.split(b"\0")
        first += [json.loads(message) for message in whole]

    def drain() -> None:
        while connection.recv(65536):
            pass

    threading.Thread(target=drain, daemon=True).start()
    return iter(first)


@pytest.fixture(scope="module")
def function(output: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    ipc = tmp_path_factory.mktemp("ipc") / "ipc.sock"
    with launched(output / "functions/ondemand.func", ipc) as server:
        yield server


@pytest.fixture(scope="module")
def router(output: Path, function: Server) -> Iterator[Server]:
    command = [str(python312()), str(HOSTS / "vercel_router.py"), str(output), function.url]
    with serve(command, cwd=HOSTS, ready=r"Serving on http://127\.0\.0\.1:(\d+)") as server:
        yield server


def test_layout(output: Path) -> None:
    """Nothing on the way to .vercel/output is a link the CLI would not follow."""
    assert not any(path.is_symlink() for path in output.rglob("*"))
    assert not output.parent.is_symlink()
    assert not (output.parents[2] / ".vercel").exists()  # no link from DIR
    assert (output / "static/about/index.html").read_text() == "About, version 1"
    assert not list((output / "static").rglob("*.gz"))  # Vercel compresses by itself
    function = output / "functions/ondemand.func"
    assert (function / "manifest.json").is_file()
    assert "load_slim_app(__file__, proxies=1)" in (function / "index.py").read_text()


def test_packages_are_installed_for_the_functions_python(output: Path) -> None:
    vendor = output / "functions/ondemand.func/_vendor"
    assert list(vendor.glob("flask-*.dist-info"))  # with their metadata
    assert list(vendor.glob("vercel_runtime-*.dist-info"))
    speedups = [p.name for p in vendor.glob("markupsafe/_speedups*.so")]
    assert speedups == ["_speedups.cpython-312-x86_64-linux-gnu.so"]


def test_the_function_is_built_for_the_runtime_chosen(tmp_path: Path) -> None:
    env = {"FLASK_ONDEMAND_VERCEL_RUNTIME": "python3.13"}
    out, _ = build_with_adapter(tmp_path, "vercel", env=env)
    function = out / "current/.vercel/output/functions/ondemand.func"
    assert json.loads((function / ".vc-config.json").read_text())["runtime"] == "python3.13"
    speedups = [p.name for p in function.glob("_vendor/markupsafe/_speedups*.so")]
    assert speedups == ["_speedups.cpython-313-x86_64-linux-gnu.so"]


def test_function_matches_what_vercel_build_writes(
    output: Path, tmp_path: Path, vercel_build: dict[str, object]
) -> None:
    ours = json.loads((output / "functions/ondemand.func/.vc-config.json").read_text())
    theirs = {key: value for key, value in vercel_build.items() if key != "filePathMap"}
    assert ours == theirs
    launcher = (output / "functions/ondemand.func/vc__handler__python.py").read_text()
    assert "from vercel_runtime.vc_init import vc_handler" in launcher


@pytest.fixture(scope="module")
def vercel_build(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """What ``vercel build`` (offline, with a hand-written project link) writes in the
    .vc-config.json of a small Flask function."""
    project = tmp_path_factory.mktemp("vercel-build")
    (project / "api").mkdir()
    (project / "api/index.py").write_text("from flask import Flask\n\napp = Flask(__name__)\n")
    (project / "requirements.txt").write_text("flask\n")
    (project / ".vercel").mkdir()
    link = {"projectId": "prj_test", "orgId": "team_test", "settings": {"framework": None}}
    (project / ".vercel/project.json").write_text(json.dumps(link))
    bin_path = f"{python312().parent}:{python312_base().parent}:{os.environ['PATH']}"
    result = subprocess.run(
        [str(npm_tool("vercel")), "build", "--yes"],
        cwd=project,
        env={**os.environ, "PATH": bin_path, "VERCEL_TELEMETRY_DISABLED": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    built = project / ".vercel/output/functions/api/index.func/.vc-config.json"
    config: dict[str, object] = json.loads(built.read_text())
    return config


def test_config_follows_the_documented_format(output: Path) -> None:
    config = json.loads((output / "config.json").read_text())
    assert config["version"] == 3
    routes = config["routes"]
    for route in routes:
        keys = {"src", "dest", "headers", "methods", "continue", "status", "handle", "has"}
        assert set(route) <= keys
        assert ("handle" in route) != ("src" in route)
        if "src" in route:
            re.compile(route["src"])
    handles = [i for i, route in enumerate(routes) if "handle" in route]
    assert [routes[i]["handle"] for i in handles] == ["filesystem"]
    before, after = routes[: handles[0]], routes[handles[0] + 1 :]
    assert before[0] == {"src": "^/moved/?$", "status": 308, "headers": {"Location": "/about/"}}
    assert {"src": "^/contact/$", "methods": ["POST"], "dest": "/ondemand"} in before
    assert {"src": r"^/(?:.*/)?index\.html$", "dest": "/ondemand"} in before
    secure = next(r for r in before if r.get("src") == "^/secure/?$")
    assert secure["headers"]["Content-Security-Policy"] == "default-src 'none'"
    assert {"src": "^/account/$", "dest": "/ondemand"} in after
    assert after[-1] == {"src": "^/.*$", "dest": "/ondemand"}
    assert config["overrides"]["hello"] == {"contentType": "text/html; charset=utf-8"}


def test_the_shared_answers(router: Server) -> None:
    assert_site_answers(router.url)


def test_page_headers(router: Server) -> None:
    assert_page_headers(router.url)
    assert fetch(router.url, "/hello").headers["Content-Type"] == "text/html; charset=utf-8"
    assert fetch(router.url, "/terms/").headers["X-Robots-Tag"] == "noindex"


def test_the_function_trusts_vercels_proxy(function: Server) -> None:
    """Vercel's edge speaks HTTPS: its X-Forwarded-Proto makes cookies Secure."""
    reply = fetch(function.url, "/lab/visits", headers={"X-Forwarded-Proto": "https"})
    assert reply.headers["Set-Cookie"] == "visits=0; Secure; HttpOnly; Path=/; SameSite=Lax"


def test_a_page_whose_file_is_in_its_folder(output: Path, router: Server) -> None:
    """/docs, whose file is docs/index.html (/docs/popup needs the folder): a rewrite to its
    file; the folder's URL and the file's name are no URL of the site."""
    routes = json.loads((output / "config.json").read_text())["routes"]
    filesystem = routes.index({"handle": "filesystem"})
    rewrite = {"src": "^/docs$", "methods": ["GET", "HEAD"], "dest": "/docs/index.html"}
    assert routes.index(rewrite) < filesystem
    for path, body in [("/docs", b"Docs"), ("/docs/popup", b"Docs popup")]:
        page = fetch(router.url, path)
        assert (page.status, page.body, page.headers["X-Stand-In-Served"]) == (200, body, "file")
    for path in ("/docs/", "/docs/index.html"):
        assert fetch(router.url, path).body == b"Custom 404 page", path


def test_the_launcher_streams(function: Server, tmp_path: Path) -> None:
    port = int(function.url.rsplit(":", 1)[1])
    received = stream_with_release(port, "/lab/stream", tmp_path / "release")
    assert b"slow data (released by the client)" in received


def test_rule_patterns() -> None:
    assert rule_pattern("/blog/<slug>/") == "^/blog/([^/]+)/$"
    assert rule_pattern("/docs/<path:rest>") == "^/docs/(.+)$"
    assert re.fullmatch(rule_pattern("/a.b/<int:n>"), "/a.b/12")
    assert not re.fullmatch(rule_pattern("/a.b/<int:n>"), "/aXb/12")


def test_the_pages_of_cached_routes_go_to_the_function(tmp_path: Path) -> None:
    """Before Vercel's files: the function answers them, and Vercel's CDN keeps its answers
    by their Cache-Control."""
    routes = config(cache_site_for_adapters(tmp_path))["routes"]
    filesystem = routes.index({"handle": "filesystem"})
    about = next(i for i, r in enumerate(routes) if re.fullmatch(r.get("src", "$^"), "/about/"))
    assert (about < filesystem, routes[about]["dest"]) == (True, "/ondemand")
    assert {"src": "^/prices/$", "dest": "/ondemand"} in routes[filesystem:]


@pytest.fixture(scope="module")
def microblog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Server]]:
    """tests/apps/microblog (ONDEMAND_LIVE_COOKIES) as a Vercel output: its function run by
    Vercel's launcher, behind the stand-in router."""
    folder = tmp_path_factory.mktemp("vercel-microblog")
    out, result = build_microblog(folder, "vercel")
    assert "Warning" not in result.stderr, result.stderr
    output = out / "current/.vercel/output"
    # The function reads users.txt from the project, as the app does: a user added after the
    # build is in the bundle's copy too.
    function = output / "functions/ondemand.func"
    (function / "users.txt").write_text((out.parent / "users.txt").read_text())
    with launched(function, folder / "ipc.sock") as server:
        command = [str(python312()), str(HOSTS / "vercel_router.py"), str(output), server.url]
        with serve(command, cwd=HOSTS, ready=r"Serving on http://127\.0\.0\.1:(\d+)") as router:
            yield output, router


def test_live_cookie_routes_have_cookie_conditions(microblog: tuple[Path, Server]) -> None:
    output, _ = microblog
    routes = json.loads((output / "config.json").read_text())["routes"]
    live = [route for route in routes if route.get("has", [{}])[0].get("type") == "cookie"]
    assert live == [
        {
            "src": src,
            "methods": ["GET", "HEAD"],
            "has": [{"type": "cookie", "key": name}],
            "dest": "/ondemand",
        }
        # /user/staff/ is a page of a route of its own, which takes no live cookies
        for src in ("^/$", "^(?!(?:/user/staff/?)$)/user/([^/]+)/?$")
        for name in ("session", "remember_token")
    ]
    # Before the files' headers, which are no live page's, and before the files.
    first_headers = next(i for i, route in enumerate(routes) if route.get("continue"))
    assert routes.index(live[-1]) < first_headers


def test_the_router_applies_the_cookie_conditions(microblog: tuple[Path, Server]) -> None:
    _, router = microblog
    assert_live_cookies(router.url)
    for headers in ({}, {"Cookie": "theme=dark"}):
        assert (
            fetch(router.url, "/user/ada/", headers=headers).headers["X-Stand-In-Served"] == "file"
        )
    ada = signed_in(router.url, "ada")
    assert fetch(router.url, "/about/", headers=ada).headers["X-Stand-In-Served"] == "file"


def test_live_query_routes_have_query_conditions(microblog: tuple[Path, Server]) -> None:
    """A route's src never sees the query: a GET of "/" whose query has the parameter its
    page looked up (page) goes to the function by a has condition, before the files."""
    output, _ = microblog
    routes = json.loads((output / "config.json").read_text())["routes"]
    by_query = [route for route in routes if route.get("has", [{}])[0].get("type") == "query"]
    assert by_query == [
        {
            "src": "^/?$",
            "methods": ["GET", "HEAD"],
            "has": [{"type": "query", "key": "page"}],
            "dest": "/ondemand",
        }
    ]
    first_headers = next(i for i, route in enumerate(routes) if route.get("continue"))
    assert routes.index(by_query[0]) < first_headers


def test_the_router_sends_a_query_to_the_function(microblog: tuple[Path, Server]) -> None:
    """Through the stand-in router, by the has query conditions as Vercel's docs say: "/"
    is the file, "/?page=2" the function's page 2."""
    _, router = microblog
    assert_live_query(
        router.url,
        from_files=lambda page: page.headers["X-Stand-In-Served"] == "file",
        by_name=True,
    )


def test_queries_vercel_cannot_tell_apart_go_to_the_function_warned(tmp_path: Path) -> None:
    """A page that read its query whole, or a parameter whose name clients encode: every GET
    of it goes to the function, and the build says so, naming the route and the cause."""
    with pytest.warns(AdapterWarning) as warned:
        routes = config(unmatched_queries_site(tmp_path))["routes"]
    # Only the adapter's: pytest.warns records any warning, a stray ResourceWarning too.
    messages = [str(w.message) for w in warned if issubclass(w.category, AdapterWarning)]
    assert messages[0].startswith(
        "vercel: / (index) read its query string whole while it was built (iterated"
        " request.args, or read request.url or request.query_string), and Vercel tells"
        " queries apart by their parameters' names only: every request of its pages goes to"
        " the function, its files unused."
    )
    assert messages[1].startswith(
        "vercel: /tags/ (tags) reads the query parameter 'filter[tag]', whose name clients"
        " may encode"
    )
    to_function = {"methods": ["GET", "HEAD"], "dest": "/ondemand"}
    assert {"src": "^/?$", **to_function} in routes
    assert {"src": "^/tags/?$", **to_function} in routes
    page = [{"type": "query", "key": "page"}]
    assert {
        "src": "^/plain/?$",
        "methods": ["GET", "HEAD"],
        "has": page,
        "dest": "/ondemand",
    } in routes


def test_vercel_build_accepts_the_routes(microblog: tuple[Path, Server], tmp_path: Path) -> None:
    """The routes, cookie and query conditions and all, pass the route schema and checks of
    Vercel's own CLI: ``vercel build`` of a project whose vercel.json holds them."""
    output, _ = microblog
    routes = json.loads((output / "config.json").read_text())["routes"]
    built = vercel_build_routes(tmp_path, routes)
    assert [route for route in built if "has" in route] == [r for r in routes if "has" in r]


def vercel_build_routes(project: Path, routes: list[dict[str, object]]) -> list[dict[str, object]]:
    (project / "public").mkdir()
    (project / "public/index.html").write_text("index")
    (project / "vercel.json").write_text(
        json.dumps({"routes": routes, "outputDirectory": "public"})
    )
    (project / ".vercel").mkdir()
    link = {"projectId": "prj_test", "orgId": "team_test", "settings": {"framework": None}}
    (project / ".vercel/project.json").write_text(json.dumps(link))
    result = subprocess.run(
        [str(npm_tool("vercel")), "build", "--yes"],
        cwd=project,
        env={**os.environ, "VERCEL_TELEMETRY_DISABLED": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    built: list[dict[str, object]] = json.loads(
        (project / ".vercel/output/config.json").read_text()
    )["routes"]
    return built
