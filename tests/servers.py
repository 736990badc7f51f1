"""Real processes for the tests: the ``flask`` CLI, gunicorn, Granian, and an HTTP client.

Nothing here is mocked: a build runs as ``flask ondemand build`` in a project folder, a build is
served by gunicorn (or waitress, or Granian) on 127.0.0.1, and pages are fetched over a socket.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from email.message import Message
from http.client import HTTPConnection
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any, NoReturn
from urllib.error import HTTPError
from urllib.parse import urlencode
from urllib.request import HTTPCookieProcessor, HTTPRedirectHandler, Request, build_opener

import pytest

APPS = Path(__file__).parent / "apps"
HOSTS = Path(__file__).parent / "hosts"
SITE_APP = "testsite:create_app()"
_BIN = Path(sys.executable).parent


def make_project(folder: Path) -> Path:
    """Copy the test site into ``folder``, as a user's project would be laid out."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in (
        *("testsite.py", "lab.py", "isles.py", "cachesite.py"),
        *("templates", "static", "widgets"),
    ):
        source = APPS / name
        if source.is_dir():
            shutil.copytree(source, folder / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, folder / name)
    return folder


def flask(
    project: Path,
    *args: str,
    app: str | None = SITE_APP,
    env: dict[str, str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run the real ``flask`` command in ``project``."""
    command = [str(_BIN / "flask"), *(["--app", app] if app else []), *args]
    result = subprocess.run(
        command,
        cwd=project,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(command)} exited with {result.returncode}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
    return result


@dataclass
class Server:
    """A running server: its base URL, and what it has logged so far."""

    url: str
    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    @property
    def log(self) -> str:
        return "".join(self.lines)


@contextmanager
def serve(
    command: list[str], *, cwd: Path, env: dict[str, str] | None = None, ready: str
) -> Iterator[Server]:
    """Run a server command until the block ends. ``ready`` is a regex of the log line that
    gives its address, with the port as group 1."""
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    server = Server("", process)
    found = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            server.lines.append(line)
            match = re.search(ready, line)
            if match and not found.is_set():
                server.url = f"http://127.0.0.1:{match.group(1)}"
                found.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 60
        while not found.wait(0.05):
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{' '.join(command)} did not start:\n{server.log}")
        yield server
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        _close_output(process, reader)


def build_with_adapter(
    folder: Path, adapter: str, *, env: dict[str, str] | None = None
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """Make a project of the test site in ``folder`` and build it with ``adapter``; return the
    build folder and the command's result."""
    project = make_project(folder / "project")
    result = flask(project, "ondemand", "build", "--adapter", adapter, env=env)
    return project / "dist", result


def stream_with_release(port: int, path: str, release: Path) -> bytes:
    """GET a streamed test page whose slow call ends early once ``release`` exists, and make
    that file only once the page's head has arrived. Return all that was received.

    If the page arrives with "released by the client", its head was sent before its slow call
    ended: streaming is shown without a clock."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        request = f"GET {path}?release={release} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n"
        connection.sendall(request.encode())
        received = b""
        while b"</head>" not in received:
            chunk = connection.recv(65536)
            assert chunk, f"the connection closed before the head arrived: {received!r}"
            received += chunk
        release.touch()
        while not received.endswith(b"0\r\n\r\n"):
            chunk = connection.recv(65536)
            if not chunk:
                break
            received += chunk
    return received


def unchunked(body: bytes) -> bytes:
    """The content of a body sent with ``Transfer-Encoding: chunked``."""
    content = b""
    while True:
        size, _, body = body.partition(b"\r\n")
        length = int(size.split(b";")[0], 16)
        if length == 0:
            return content
        content += body[:length]
        body = body[length + 2 :]


def free_port() -> int:
    """A port nothing listens on now, for servers that must be told theirs in advance."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def require(program: str) -> str:
    """The path of a program the tests need (see :func:`unavailable` when it is missing)."""
    path = shutil.which(program, path=f"{os.environ.get('PATH', '')}:/usr/sbin")
    if path is None:
        unavailable(f"{program} is not installed (apt-get install {program}); CI runs these tests")
    return path


def unavailable(message: str) -> NoReturn:
    """Skip a test on a developer's machine that lacks what it needs, but fail it in CI, which
    sets CI=1 and has everything."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@contextmanager
def gunicorn(
    out_dir: Path,
    *,
    cwd: Path,
    env: dict[str, str] | None = None,
    workers: int = 2,
    port: int = 0,
    options: Sequence[str] = (),
) -> Iterator[Server]:
    """Serve a build as the README says: ``gunicorn --chdir DIR server:app``, with more of
    gunicorn's ``options`` if given."""
    command = [str(_BIN / "gunicorn"), "--chdir", str(out_dir), "server:app"]
    command += ["--bind", f"127.0.0.1:{port}", "--workers", str(workers), *options]
    ready = r"Listening at: http://127\.0\.0\.1:(\d+)"
    with serve(command, cwd=cwd, env=env, ready=ready) as server:
        yield server


@contextmanager
def granian(
    out_dir: Path,
    *,
    env: dict[str, str] | None = None,
    workers: int = 2,
    options: Sequence[str] = (),
) -> Iterator[Server]:
    """Serve a build with Granian's WSGI interface as the docs say, from inside the build
    folder: ``cd DIR && granian --interface wsgi server:app``.

    Granian has no ``--chdir``: its ``--working-dir`` only adds a folder to ``sys.path``, and it
    imports ``server`` from the current folder first, so it runs in DIR, as waitress does. It
    prints ``Listening at`` with the port it was given (``:0`` for a free one), before its
    workers have imported the app; each logs ``Started worker-N`` once it has."""
    port = free_port()
    command = [str(_BIN / "granian"), "--interface", "wsgi", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--workers", str(workers), *options, "server:app"]
    with serve(
        command, cwd=out_dir, env=env, ready=r"Listening at: http://127\.0\.0\.1:(\d+)"
    ) as server:
        deadline = time.monotonic() + 60
        while server.log.count("Started worker-") < workers:
            if server.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"{' '.join(command)}: its workers did not start:\n{server.log}"
                )
            time.sleep(0.05)
        yield server


def wsgi_server(
    kind: str, out_dir: Path, *, cwd: Path, env: dict[str, str] | None = None, workers: int = 2
) -> AbstractContextManager[Server]:
    """gunicorn or Granian serving a build, by name: for the tests that run under both."""
    if kind == "granian":
        return granian(out_dir, env=env, workers=workers)
    assert kind == "gunicorn", kind
    return gunicorn(out_dir, cwd=cwd, env=env, workers=workers)


@contextmanager
def host(script: str, *args: str, isolated: bool = True) -> Iterator[Server]:
    """Run a host stand-in from tests/hosts. ``isolated`` runs it without site-packages
    (``python -S``), so a function bundle has to bring every package it needs."""
    command = [sys.executable, *(["-S"] if isolated else []), str(HOSTS / script), *args]
    with serve(command, cwd=HOSTS, ready=r"Serving on http://127\.0\.0\.1:(\d+)") as server:
        yield server


@contextmanager
def waitress(out_dir: Path, *, env: dict[str, str] | None = None) -> Iterator[Server]:
    """Serve a build with waitress, another WSGI server, from inside the build folder."""
    command = [str(_BIN / "waitress-serve"), "--listen=127.0.0.1:0", "server:app"]
    ready = r"Serving on http://127\.0\.0\.1:(\d+)"
    with serve(command, cwd=out_dir, env=env, ready=ready) as server:
        yield server


@contextmanager
def nginx(out_dir: Path, *, prefix: Path, port: int) -> Iterator[Server]:
    """Run the nginx adapter's config with Debian's nginx, in the foreground."""
    binary = require("nginx")
    prefix.mkdir(parents=True, exist_ok=True)
    # As root (in CI), nginx's workers would run as nobody, who cannot read pytest's
    # private temporary folders; a deployment runs nginx as its own user.
    user = " user root;" if os.geteuid() == 0 else ""
    command = [binary, "-p", str(prefix), "-c", str(out_dir / "nginx.conf")]
    command += ["-g", f"daemon off;{user}"]
    with _listening(command, port, f"http://127.0.0.1:{port}", log=prefix / "error.log") as server:
        yield server


@contextmanager
def redis_server(folder: Path, *, port: int = 0) -> Iterator[Server]:
    """Run Debian's redis-server on a loopback port (a free one by default), keeping nothing
    on disk; its URL is ``redis://127.0.0.1:PORT/0``."""
    binary = require("redis-server")
    port = port or free_port()
    folder.mkdir(parents=True, exist_ok=True)
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    command += ["--appendonly", "no", "--dir", str(folder)]
    with _listening(command, port, f"redis://127.0.0.1:{port}/0") as server:
        yield server


@contextmanager
def _listening(
    command: list[str], port: int, url: str, *, log: Path | None = None
) -> Iterator[Server]:
    """Run ``command`` until the block ends, once it accepts connections on ``port``; if it
    does not within 30 s, fail with what it printed (and its ``log`` file)."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while not _accepts(port):
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()  # so that what it printed can be read to the end
                printed = process.communicate()[0]
                logged = log.read_text() if log is not None and log.exists() else ""
                raise AssertionError(f"{Path(command[0]).name} did not start: {printed}{logged}")
            time.sleep(0.02)
        yield Server(url, process)
    finally:
        process.terminate()
        process.wait(15)
        _close_output(process)


def _close_output(process: subprocess.Popen[str], reader: threading.Thread | None = None) -> None:
    """Close the pipe of a server that has exited, once ``reader`` has read it to its end: left
    to the garbage collector, it warns (ResourceWarning) inside whichever test runs then."""
    if reader is not None:
        reader.join(15)
    if process.stdout is not None:
        process.stdout.close()


def _accepts(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Reply:
    status: int
    reason: str
    headers: Message
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def allowed(reply: Reply) -> list[str]:
    """The methods a reply's Allow header names, sorted: Flask lists them in no fixed order."""
    return sorted(method.strip() for method in (reply.headers["Allow"] or "").split(","))


def fetch(
    url: str,
    path: str = "/",
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: bytes | str | None = None,
) -> Reply:
    """Send one request with the path exactly as given, and follow no redirect."""
    host, port = url.removeprefix("http://").split(":")
    connection = HTTPConnection(host, int(port), timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return Reply(response.status, response.reason, response.msg, response.read())
    finally:
        connection.close()


def post_form(
    url: str, path: str, fields: dict[str, str], headers: dict[str, str] | None = None
) -> Reply:
    return fetch(
        url,
        path,
        method="POST",
        body=urlencode(fields),
        headers={"Content-Type": "application/x-www-form-urlencoded", **(headers or {})},
    )


class Browser:
    """An HTTP client with a real cookie jar (``http.cookiejar``). It follows no redirects."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.jar = CookieJar()
        self._opener = build_opener(HTTPCookieProcessor(self.jar), _NoRedirects())

    def cookie(self, name: str) -> str | None:
        return next((c.value for c in self.jar if c.name == name), None)

    def get(self, path: str, headers: dict[str, str] | None = None) -> Reply:
        return self._open(Request(self.url + path, headers=headers or {}))

    def post(self, path: str, fields: dict[str, str]) -> Reply:
        return self._open(Request(self.url + path, data=urlencode(fields).encode(), method="POST"))

    def _open(self, request: Request) -> Reply:
        try:
            with self._opener.open(request, timeout=30) as reply:
                return Reply(reply.status, reply.reason, reply.headers, reply.read())
        except HTTPError as error:
            return Reply(error.code, error.reason, error.headers, error.read())


class _NoRedirects(HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def snapshot(folder: Path) -> dict[str, bytes | str]:
    """Every file, link and folder under ``folder`` with its content, target, or "folder", to
    compare builds: a folder left behind, even an empty one, is a difference."""
    state: dict[str, bytes | str] = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        if path.is_symlink():
            state[key] = "-> " + os.readlink(path)
        elif path.is_dir():
            state[key] = "folder"
        else:
            state[key] = path.read_bytes()
    return state


def assert_site_answers(
    url: str, *, form_posts_to_its_page: bool = True, repeated_query_values: bool = True
) -> None:
    """The answers every deployment of the test site must give, whatever the host.

    A prerendered page, a static JSON endpoint, an on-demand page with a cookie, a 404, a
    prerendered redirect, a server island loaded by its signed URL (and refused without it),
    and with another in one request (refused where ``repeated_query_values`` are not kept: an
    ALB without multi-value headers), and POSTs: to an on-demand URL, and (where the host can
    route by method) to a prerendered form's own page.
    """
    page = fetch(url, "/about/")
    assert (page.status, page.body) == (200, b"About, version 1")
    data = fetch(url, "/data.json")
    assert data.status == 200
    assert data.headers["Content-Type"].startswith("application/json")
    assert data.body.strip() == b'{"products":["Cup","Kettle","Teapot"]}'
    first = fetch(url, "/lab/visits")
    assert (first.status, first.body) == (200, b"Visits: 0")
    cookie = first.headers["Set-Cookie"].split(";")[0]
    assert cookie == "visits=0"
    again = fetch(url, "/lab/visits", headers={"Cookie": cookie})
    assert again.body == b"Visits: 1"
    missing = fetch(url, "/posts/nope/")
    assert (missing.status, missing.body) == (404, b"Custom 404 page")
    moved = fetch(url, "/old/")
    assert (moved.status, moved.headers["Location"]) == (301, "/about/")
    badge = island_sources(fetch(url, "/isles/").text)["/isles/_badge"]
    island = fetch(url, badge)
    assert (island.status, island.body) == (200, b"<i>badge of size s</i>")
    assert island.headers["Cache-Control"] == "private, no-store"
    assert fetch(url, badge.replace("size=s", "size=l")).status == 403
    # All of a page's islands in one request, as the islands' script asks for them; where the
    # host keeps one value of a name, refused rather than answered out of order.
    query = urlencode([("i", badge), ("i", badge.replace("size=s", "size=l")), ("n", 2)])
    batch = fetch(url, f"/_ondemand/islands?{query}")
    if not repeated_query_values:
        assert batch.status == 400, batch.body[:200]
    else:
        assert batch.status == 200, batch.body[:200]
        islands = [{"status": 200, "html": "<i>badge of size s</i>"}, {"status": 403, "html": ""}]
        assert json.loads(batch.body) == {"islands": islands}
        assert batch.headers["Cache-Control"] == "private, no-store"
    added = post_form(url, "/cart/add", {"item": "cup"})
    assert (added.status, added.headers["Location"]) == (303, "/cart/")
    cart = fetch(url, "/cart/", headers={"Cookie": added.headers["Set-Cookie"].split(";")[0]})
    assert cart.body == b"Cart: ['cup']"
    if form_posts_to_its_page:
        thanks = post_form(url, "/contact/", {"name": "Ann"})
        assert (thanks.status, thanks.body) == (200, b"Thanks, Ann")


def assert_page_headers(url: str, *, folder_urls: bool = True) -> None:
    """The headers a prerendered page's response carried arrive with its file, whatever the
    host: the site's, which an after_request hook added (Content-Security-Policy and
    X-Frame-Options, as Flask-Talisman does), once; and a page's own, which replace the site's
    of the same name. A page's file by its own name (``/secure/index.html``) or a compressed
    copy of it never answers without them: it is a 404, or a redirect to the page.

    :param folder_urls: whether the host applies headers to folder URLs (``/secure/``);
        ``netlify dev`` does not, though Netlify does.
    """
    data = fetch(url, "/data.json")
    assert data.headers.get_all("Content-Security-Policy") == ["default-src 'self'"]
    assert data.headers.get_all("X-Frame-Options") == ["SAMEORIGIN"]
    if folder_urls:
        about = fetch(url, "/about/")
        assert about.headers.get_all("Content-Security-Policy") == ["default-src 'self'"]
        secure = fetch(url, "/secure/")
        assert (secure.status, secure.body) == (200, b"Secure page")
        assert secure.headers.get_all("Content-Security-Policy") == ["default-src 'none'"]
        assert secure.headers.get_all("Referrer-Policy") == ["no-referrer"]
        assert secure.headers.get_all("X-Frame-Options") == ["SAMEORIGIN"]
        assert fetch(url, "/tuple-headers/").headers.get_all("X-From-Tuple") == ["yes"]
    for path, page in [
        ("/secure/index.html", "/secure/"),
        ("/manual/index.html", "/manual/"),
        ("/manual/index.html.gz", "/manual/"),
        ("/index.html", "/"),
    ]:
        reply = fetch(url, path)
        if reply.status in (301, 302, 307, 308):
            assert reply.headers["Location"] == page, path
        else:
            assert (reply.status, reply.body) == (404, b"Custom 404 page"), path


# Chromium as the environment notes say it runs here: no sandbox (root), and none of the
# background connections this machine's closed network refuses.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextmanager
def headless_chromium() -> Iterator[Any]:
    """Debian's Chromium (``apt-get install chromium``), driven by Playwright: a real browser
    for the pages that run JavaScript. Yields Playwright's ``Browser``."""
    binary = require("chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=binary, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


def island_sources(html: str) -> dict[str, str]:
    """The signed URL of each island placeholder in a page, by its path."""
    sources = re.findall(r'<ondemand-island data-src="([^"]+)"', html)
    return {source.split("?")[0]: source.replace("&amp;", "&") for source in sources}
