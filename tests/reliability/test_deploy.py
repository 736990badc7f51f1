"""Deploys under load: a server keeps answering while the same folder is rebuilt.

Clients fetch pages over and over from gunicorn (and from Granian, whose workers call the app
from many threads at once) while the test site is rebuilt into the folder
six times: five builds change the content (two of them partial builds, on top of a whole one,
and a whole build after them), one fails halfway. Every answer must be complete,
from one build, never a 404 or an error; the server must move to each new build without a
restart; and the failed build must change nothing. Load may miss a short window, so the swap
itself is also checked deterministically, by a reader hooked between every two steps of a build.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from pathlib import Path

import pytest

from ..servers import fetch as fetch_once
from ..servers import flask, snapshot, wsgi_server

PATHS = [
    "/about/",
    "/",
    "/posts/first/",
    "/static/site.css",
    "/guide/",
    "/data.json",
    "/hello",
    "/account/",
]


class Client(threading.Thread):
    """Fetches PATHS in a loop and checks every answer; notes the versions /about/ showed."""

    def __init__(self, url: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.url, self.stop = url, stop
        self.versions: list[int] = []
        self.problems: list[str] = []
        self.requests = 0

    def run(self) -> None:
        while not self.stop.is_set():
            for path in PATHS:
                try:
                    reply = fetch_once(self.url, path)
                except OSError as error:
                    self.problems.append(f"{path}: {error!r}")
                    continue
                self.requests += 1
                length = reply.headers.get("Content-Length")
                if reply.status != 200:
                    self.problems.append(f"{path}: {reply.status}")
                elif length is not None and int(length) != len(reply.body):
                    self.problems.append(f"{path}: {len(reply.body)} bytes of {length}")
                elif path == "/about/":
                    match = re.fullmatch(rb"About, version (\d+)", reply.body)
                    if match is None:
                        self.problems.append(f"/about/: {reply.body[:80]!r}")
                    else:
                        self.versions.append(int(match.group(1)))


@pytest.mark.parametrize("kind", ["gunicorn", "granian"])
def test_rebuilds_under_load(project: Path, kind: str) -> None:
    out = project / "dist"
    flask(project, "ondemand", "build", env={"SITE_VERSION": "1"})
    with wsgi_server(kind, out, cwd=project) as server:
        stop = threading.Event()
        clients = [Client(server.url, stop) for _ in range(4)]
        for client in clients:
            client.start()
        try:
            for version, breakage, only in [
                ("2", "", ()),
                ("99", "raise", ()),
                ("3", "", ()),
                ("4", "", ("--only", "/about/")),
                ("5", "", ("--only", "/about/")),
                ("6", "", ()),
            ]:
                before = snapshot(out)
                result = flask(
                    project,
                    "ondemand",
                    "build",
                    *only,
                    env={"SITE_VERSION": version, "SITE_BREAK": breakage},
                    check=not breakage,
                )
                if breakage:
                    assert result.returncode == 1
                    assert snapshot(out) == before  # the failed build changed nothing
                    continue
                # Every client sees the new build soon, without a restart of the server.
                seen_from = [len(client.versions) for client in clients]
                deadline = time.monotonic() + 30
                while not all(
                    int(version) in c.versions[n:] for c, n in zip(clients, seen_from, strict=True)
                ):
                    assert time.monotonic() < deadline, (
                        f"the server did not move to version {version}"
                    )
                    time.sleep(0.05)
        finally:
            stop.set()
            for client in clients:
                client.join(30)
    for client in clients:
        assert client.problems == []
        assert 99 not in client.versions
        assert client.versions == sorted(client.versions)  # never back to an older build
    assert sum(client.requests for client in clients) > 100


WATCH_SWAP = Path(__file__).parent.parent / "watch_swap"


def test_a_reader_finds_a_build_at_every_step_of_a_build(project: Path, tmp_path: Path) -> None:
    """The swap is one rename, deterministically: a reader hooked in before every change a
    build makes to the folder (tests/watch_swap) finds the old build whole through ``current``
    each time, up to the rename onto ``current`` itself; after it, the new one."""
    out = project / "dist"
    flask(project, "ondemand", "build", env={"SITE_VERSION": "1"})
    old = (out / "current").resolve().name
    log = tmp_path / "reads.log"
    python_path = [str(WATCH_SWAP), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {"PYTHONPATH": os.pathsep.join(python_path), "SITE_VERSION": "2"}
    env |= {"WATCH_SWAP_DIR": str(out), "WATCH_SWAP_LOG": str(log)}
    flask(project, "ondemand", "build", env=env)
    reads = [line.split("\t") for line in log.read_text().splitlines()]
    assert [read for read in reads if read[2] != old] == []
    swaps = [read for read in reads if read[0] == "os.rename" and read[1] == str(out / "current")]
    assert len(swaps) == 1  # the reader ran at the swap itself
    assert (out / "current/manifest.json").is_file()
    assert (out / "current").resolve().name != old
    assert (out / "client/about/index.html").read_text() == "About, version 2"


@pytest.mark.parametrize("kind", ["gunicorn", "granian"])
def test_code_changes_take_a_hup(project: Path, kind: str) -> None:
    """The README's recipe: a build swaps content in by itself; new code needs a HUP, which
    makes gunicorn and Granian alike start new workers."""
    out = project / "dist"
    flask(project, "ondemand", "build")
    # One worker: each imports the app as it boots, so a second one still booting when lab.py
    # changes would load the new code before any HUP.
    with wsgi_server(kind, out, cwd=project, workers=1) as server:
        assert fetch_once(server.url, "/lab/status").body == b"No such product"
        lab = project / "lab.py"
        lab.write_text(lab.read_text().replace('"No such product"', '"Sold out"'))
        flask(project, "ondemand", "build")
        assert fetch_once(server.url, "/lab/status").body == b"No such product"  # old code
        os.kill(server.process.pid, signal.SIGHUP)
        deadline = time.monotonic() + 30
        while fetch_once(server.url, "/lab/status").body != b"Sold out":
            assert time.monotonic() < deadline, "the new code never came in"
            time.sleep(0.1)
