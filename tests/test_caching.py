"""The route cache (flask_ondemand/caching.py) through gunicorn with 2 sync workers, over HTTP:
hits, stale answers refreshed in the background, one render for many requests, revalidation
by path, tag, command and webhook, a deploy, failures, and every "never a leak" rule.

The test site is tests/apps/cachesite.py, built with the real ``flask`` CLI; its store is the
build folder's (``DIR/cache``). Time is the cache's clock, the file ``ONDEMAND_CACHE_CLOCK``
names, which tests move: no test sleeps for an entry to age. Renders are counted in the site's
call log, one line per view run.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask

from flask_ondemand import OnDemand, cache, revalidate
from flask_ondemand.adapters import Site
from flask_ondemand.caching import EXTENSION_KEY, cache_mark_of
from flask_ondemand.loader import load_slim_app
from flask_ondemand.manifest import Manifest
from flask_ondemand.stores import CLOCK_VARIABLE, Entry
from flask_ondemand.stores.folder import FolderStore

from .servers import APPS, Reply, Server, fetch, flask, gunicorn, make_project

CACHE_APP = "cachesite:create_app()"
TOKEN = "webhook-secret"
_names = itertools.count()


@dataclass
class CacheSite:
    """The cache test site built in ``project`` and served by ``server``; its call log, data
    file and clock are in ``folder``."""

    project: Path
    folder: Path
    env: dict[str, str]
    server: Server

    @property
    def out(self) -> Path:
        return self.project / "dist"

    @property
    def url(self) -> str:
        return self.server.url

    def get(self, path: str, **headers: str) -> Reply:
        return fetch(self.url, path, headers={k.replace("_", "-"): v for k, v in headers.items()})

    def renders(self, path: str) -> int:
        """How many times a view rendered ``path`` (its path and query)."""
        log = self.folder / "calls.log"
        return log.read_text().splitlines().count(path) if log.exists() else 0

    def set_data(self, text: str) -> None:
        (self.folder / "data.txt").write_text(text)

    def move_clock(self, seconds: float) -> None:
        clock = self.folder / "clock"
        moved = self.folder / "clock.new"  # renamed over it: the servers never read half
        moved.write_text(repr(float(clock.read_text()) + seconds))
        moved.replace(clock)

    def wait_for(self, condition: Callable[[], bool], what: str) -> None:
        """Wait for what a server does in the background (not a timing check)."""
        deadline = time.monotonic() + 30
        while not condition():
            assert time.monotonic() < deadline, f"waited 30 s for {what}"
            time.sleep(0.02)

    def started(self, path: str) -> set[str]:
        """The pids of the workers that started a request of ``path`` (answered or not)."""
        log = self.folder / "starts.log"
        lines = log.read_text().splitlines() if log.exists() else []
        return {line.split(" ", 1)[0] for line in lines if line.split(" ", 1)[1:] == [path]}

    def workers(self, path: str) -> list[str]:
        """The pids of the workers that answered ``path``, in order (gunicorn's access log)."""
        log = self.folder / "access.log"
        lines = log.read_text().splitlines() if log.exists() else []
        return [line.split()[0] for line in lines if line.split()[1:3] == ["GET", path]]


def build_cache_site(
    folder: Path, *options: str, env: dict[str, str] | None = None
) -> tuple[Path, Path, dict[str, str]]:
    """Build the test site in ``folder/project`` (with more ``options`` of the build command,
    and its ``env``); return it, the run folder and the server's environment."""
    project = make_project(folder / "project")
    flask(project, "ondemand", "build", *options, app=CACHE_APP, env=env)
    run = folder / "run"
    run.mkdir()
    (run / "data.txt").write_text("v1")
    (run / "clock").write_text(repr(time.time()))
    env = {
        "SITE_CALL_LOG": str(run / "calls.log"),
        "CACHE_SITE_DATA": str(run / "data.txt"),
        "CACHE_SITE_FAIL": str(run / "fail"),
        CLOCK_VARIABLE: str(run / "clock"),
        "FLASK_ONDEMAND_REVALIDATE_TOKEN": TOKEN,
        "REQUEST_STARTS": str(run / "starts.log"),
    }
    return project, run, env


def cache_site_for_adapters(folder: Path) -> Site:
    """The test site built (wsgi), as an adapter sees a build: to check what an adapter makes
    of cached routes without its host's bundle."""
    project, _, _ = build_cache_site(folder)
    out = project / "dist"
    manifest = Manifest.read(out / "manifest.json")
    app = Flask("cachesite")
    return Site(out, (out / "current").resolve(), manifest, app.config, project, app)


@contextmanager
def serving(project: Path, run: Path, env: dict[str, str], *, port: int = 0) -> Iterator[CacheSite]:
    """Serve the built site with gunicorn, 2 sync workers, logging each answer's worker."""
    log = ["--access-logfile", str(run / "access.log"), "--access-logformat", "%(p)s %(r)s"]
    log += ["--config", str(APPS / "request_starts.py")]
    with gunicorn(project / "dist", cwd=project, env=env, options=log, port=port) as server:
        yield CacheSite(project, run, env, server)


@contextmanager
def cache_site(folder: Path) -> Iterator[CacheSite]:
    with serving(*build_cache_site(folder)) as site:
        yield site


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CacheSite]:
    with cache_site(tmp_path_factory.mktemp("cache")) as served:
        yield served


class Held:
    """A request that keeps one worker busy until released."""

    def __init__(self, site: CacheSite) -> None:
        self.site = site
        self.release_file = site.folder / f"release-{next(_names)}"
        self.path = f"/hold/?until={self.release_file}"
        self.thread = threading.Thread(target=fetch, args=(site.url, self.path))

    def __enter__(self) -> Held:
        self.thread.start()
        self.site.wait_for(lambda: self.site.renders(self.path) == 1, "a worker to hold")
        return self

    def release(self) -> None:
        self.release_file.touch()
        self.thread.join(30)

    def __exit__(self, *exc: object) -> None:
        self.release()


def from_each_worker(site: CacheSite, path: str) -> list[Reply]:
    """GET ``path`` from one worker, then from the other: each time the other one is held."""
    with Held(site) as first:
        one = site.get(path)
        with Held(site):
            first.release()
            two = site.get(path)
    site.wait_for(lambda: len(site.workers(path)) >= 2, "the access log")
    return [one, two]


def status_of(reply: Reply) -> str:
    return reply.headers["Cache-Status"] or ""


def directives(reply: Reply) -> list[str]:
    return [part.strip() for part in (reply.headers["Cache-Control"] or "").split(",")]


def session_cookie(site: CacheSite, path: str) -> str:
    """The cookie a visitor gets from ``path`` (signing in), as a Cookie header."""
    return str(site.get(path).headers["Set-Cookie"]).split(";")[0]


# The mark


def test_cache_marks_a_view_and_checks_its_arguments() -> None:
    @cache(max_age=60, swr=600, tags=["prices"])
    def prices() -> str:
        return ""

    mark = cache_mark_of(prices)
    assert mark is not None
    assert (mark.max_age, mark.swr, mark.tags) == (60, 600, ("prices",))
    with pytest.raises(ValueError, match="max_age"):
        cache(max_age=-1)
    with pytest.raises(ValueError, match="swr"):
        cache(max_age=1, swr=True)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="list of tags"):
        cache(max_age=1, tags="prices")
    with pytest.raises(ValueError, match="non-empty"):
        cache(max_age=1, tags=[""])


def test_revalidate_purges_the_store_of_the_apps_config(tmp_path: Path) -> None:
    """Outside a server (a worker, a shell), revalidate opens ONDEMAND_CACHE_URL's store."""
    app = Flask("outside")
    app.config["ONDEMAND_CACHE_URL"] = str(tmp_path / "store")
    OnDemand(app)
    store = FolderStore(tmp_path / "store")
    for key, path, tags in [
        ("/prices/", "/prices/", ("prices",)),
        ("/prices/?page=2", "/prices/", ("prices",)),
        ("/caf\xc3\xa9/", "/caf\xc3\xa9/", ()),  # /café/ as a WSGI server hands it over
        ("/news/", "/news/", ("news",)),
    ]:
        entry = Entry(200, "OK", (), b"x", 0.0, "e", "v", tags, path)
        assert store.put(key, entry, keep_for=60, epoch=store.epoch())
    with app.app_context():
        assert revalidate(path="/prices/") == 2  # with any query string
        assert revalidate(path="/caf%C3%A9/") == 1  # as url_for writes it
        assert revalidate(tag="news") == 1
        assert revalidate(tag="news") == 0
        with pytest.raises(ValueError, match="URL path"):
            revalidate(path="/prices/?page=2")
        with pytest.raises(TypeError):
            revalidate()


# Hits, stale answers, foreground renders


def test_a_hit_is_served_by_either_worker_without_the_view(site: CacheSite) -> None:
    path = "/prices/?t=hit"
    miss = site.get(path)
    assert (miss.status, miss.text) == (200, "Prices v1")
    assert status_of(miss) == "flask-ondemand; fwd=uri-miss; stored"
    assert miss.headers["Age"] == "0"
    site.set_data("v2")  # a render now would show it
    try:
        hits = from_each_worker(site, path)
    finally:
        site.set_data("v1")
    assert len(set(site.workers(path)[-2:])) == 2  # both workers answered
    for hit in hits:
        assert (hit.status, hit.text) == (200, "Prices v1")
        assert re.fullmatch(r"flask-ondemand; hit; ttl=\d+", status_of(hit))
        assert directives(hit) == [
            "public",
            "max-age=0",
            "s-maxage=60",
            "stale-while-revalidate=600",
        ]
        assert int(hit.headers["Age"]) >= 0
        # Flask-Login opened the session (Flask then sends Vary: Cookie), the page did not.
        assert hit.headers["Vary"] is None
        assert hit.headers["Set-Cookie"] is None
    assert site.renders(path) == 1


def test_stale_is_served_while_one_background_render_refreshes_it(site: CacheSite) -> None:
    path = "/prices/?t=stale"
    assert site.get(path).text == "Prices v1"
    site.set_data("v2")
    site.move_clock(61)  # past max_age, within swr
    stale = site.get(path)
    assert (stale.status, stale.text) == (200, "Prices v1")
    assert re.fullmatch(
        r"flask-ondemand; hit; ttl=-\d+; fwd=stale; detail=refreshing", status_of(stale)
    )
    assert int(stale.headers["Age"]) >= 61
    site.wait_for(lambda: site.get(path).text == "Prices v2", "the refreshed answer")
    fresh = site.get(path)
    assert status_of(fresh).startswith("flask-ondemand; hit; ttl=")
    assert int(fresh.headers["Age"]) < 60
    assert site.renders(path) == 2
    site.set_data("v3")
    site.move_clock(61 + 600)  # past swr too: the next request renders in the foreground
    late = site.get(path)
    assert (late.text, status_of(late)) == ("Prices v3", "flask-ondemand; fwd=stale; stored")
    assert site.renders(path) == 3
    site.set_data("v1")


def test_twenty_requests_of_a_stale_url_start_one_refresh(site: CacheSite) -> None:
    """Each gets the stale answer at once, in both workers, while the one refresh is held."""
    release = site.folder / "release-stale"
    path = f"/held/?until={release}"
    release.touch()
    assert site.get(path).text == "Held v1"
    release.unlink()
    site.move_clock(61)  # past max_age, within swr
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda _: site.get(path), range(20)))
    assert [(a.status, a.text) for a in answers] == [(200, "Held v1")] * 20
    assert sum(status_of(a).endswith("; detail=refreshing") for a in answers) == 1
    site.wait_for(lambda: site.renders(path) == 2, "the refresh")
    release.touch()
    site.wait_for(lambda: "stale" not in status_of(site.get(path)), "the refreshed answer")
    assert site.renders(path) == 2


@pytest.mark.parametrize(("version", "started"), [("current", False), ("older", True)])
def test_a_refresh_is_not_started_again_once_another_stored_a_newer_answer(
    tmp_path: Path, version: str, started: bool
) -> None:
    """Between reading a stale answer and taking the URL's lock, another worker may have
    refreshed it: then there is nothing to do. An answer of the route's previous code (a
    deploy changed it) is a miss, however new: the refresh starts."""
    app = Flask("refreshes")
    OnDemand(app)

    @app.route("/about/")
    @cache(max_age=60, swr=86400)
    def about() -> str:
        return "about"

    layer = app.extensions[EXTENSION_KEY]
    store = FolderStore(tmp_path / "store")
    layer.start(store, ())
    route = layer.routes.by_endpoint["about"]
    stale = Entry(200, "OK", (), b"built", 1000.0, "about", route.version)
    stored_version = route.version if version == "current" else "older"
    newer = Entry(200, "OK", (), b"refreshed", 2000.0, "about", stored_version)
    assert store.put("/about/", newer, keep_for=86460, epoch=store.epoch())
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/about/", "SERVER_NAME": "localhost"}
    environ.update({"SERVER_PORT": "80", "wsgi.url_scheme": "http"})
    assert layer._refresh_later(store, "/about/", route, environ, stale) is started
    if not started:
        assert not store.locked("/about/")  # nor a lock left behind


def test_one_render_for_twenty_requests_of_a_cold_url(site: CacheSite) -> None:
    """Twenty at once: the first takes the URL's lock and renders (held until the test says);
    the other worker's requests find the lock taken and wait for that render's answer. The
    render is held until both workers are handling the URL."""
    release = site.folder / "release-twenty"
    path = f"/held/?until={release}"
    with ThreadPoolExecutor(20) as pool:
        replies = [pool.submit(site.get, path) for _ in range(20)]
        site.wait_for(lambda: site.renders(path) == 1, "the first render")
        site.wait_for(lambda: len(site.started(path)) == 2, "the other worker")
        release.touch()
        answers = [reply.result() for reply in replies]
    assert [(a.status, a.text) for a in answers] == [(200, "Held v1")] * 20
    assert site.renders(path) == 1
    assert sum(status_of(a).endswith("; stored") for a in answers) == 1


def test_head_and_if_none_match(site: CacheSite) -> None:
    path = "/stock/head/"
    head = fetch(site.url, path, method="HEAD")
    assert (head.status, head.body) == (200, b"")
    assert head.headers["Content-Length"] == str(len("Stock of head v1"))
    assert status_of(head).endswith("; stored")  # rendered as a GET and stored
    got = site.get(path)
    assert (got.text, status_of(got)[:20]) == ("Stock of head v1", "flask-ondemand; hit;")
    etag = got.headers["ETag"]
    assert etag
    unchanged = site.get(path, If_None_Match=etag)
    assert (unchanged.status, unchanged.body) == (304, b"")
    assert unchanged.headers["ETag"] == etag
    assert "s-maxage=60" in directives(unchanged)
    assert fetch(site.url, path, method="HEAD").body == b""
    assert site.renders(path) == 1


@pytest.mark.parametrize("code", [200, 301, 308, 404, 410])
def test_the_statuses_that_are_stored(site: CacheSite, code: int) -> None:
    path = f"/status/{code}/"
    first, second = site.get(path), site.get(path)
    assert first.status == second.status == code
    assert status_of(second).startswith("flask-ondemand; hit;")
    assert site.renders(path) == 1


# Revalidation


def test_revalidate_a_path_with_the_command(site: CacheSite) -> None:
    paths = ["/stock/cli/", "/stock/cli/?size=2"]
    for path in paths:
        site.get(path)
    site.set_data("v2")
    try:
        result = flask(site.project, "ondemand", "revalidate", "/stock/cli/", app=CACHE_APP)
        assert result.stdout.strip() == "Purged 2 cached pages."
        for path in paths:  # purged for either worker: the next request of each renders
            replies = from_each_worker(site, path)
            assert [reply.text for reply in replies] == ["Stock of cli v2"] * 2
            assert site.renders(path) == 2
    finally:
        site.set_data("v1")
    unknown = flask(site.project, "ondemand", "revalidate", app=CACHE_APP, check=False)
    assert unknown.returncode == 2
    assert "give the PATHS or --tag TAG" in unknown.stderr


def test_revalidate_a_tag_from_a_view(site: CacheSite) -> None:
    site.get("/stock/tagged/")
    site.get("/prices/?t=tagged")
    site.set_data("v2")
    try:
        purged = fetch(site.url, "/purge/stock", method="POST")
        assert purged.status == 200
        assert json.loads(purged.body)["purged"] >= 1
        assert [r.text for r in from_each_worker(site, "/stock/tagged/")] == [
            "Stock of tagged v2"
        ] * 2
        assert site.get("/prices/?t=tagged").text == "Prices v1"  # another tag: kept
    finally:
        site.set_data("v1")


def test_the_webhook_needs_the_token(site: CacheSite, tmp_path: Path) -> None:
    site.get("/stock/hook/")
    body = json.dumps({"paths": ["/stock/hook/"], "tags": []})
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        refused = fetch(
            site.url, "/_ondemand/revalidate", method="POST", body=body, headers=headers
        )
        assert refused.status == 401
        assert refused.headers["WWW-Authenticate"] == 'Bearer realm="revalidate"'
    assert status_of(site.get("/stock/hook/")).startswith("flask-ondemand; hit;")
    good = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    bad = fetch(site.url, "/_ondemand/revalidate", method="POST", body="[1]", headers=good)
    assert bad.status == 400
    done = fetch(site.url, "/_ondemand/revalidate", method="POST", body=body, headers=good)
    assert done.status == 200
    assert json.loads(done.body) == {"purged": 1, "paths": ["/stock/hook/"], "tags": []}
    assert done.headers["Cache-Control"] == "no-store"
    assert status_of(site.get("/stock/hook/")).endswith("; stored")  # rendered again
    # Without the token set, the URL is no endpoint at all: the app answers it.
    env = {**site.env, "FLASK_ONDEMAND_REVALIDATE_TOKEN": ""}
    with serving(site.project, site.folder, env) as other:
        absent = fetch(other.url, "/_ondemand/revalidate", method="POST", body=body, headers=good)
        assert absent.status in (404, 405)
        assert absent.headers["WWW-Authenticate"] is None


# Never a leak


def _leaks(site: CacheSite) -> dict[str, tuple[str, dict[str, str], str, str]]:
    """Pages whose render reads who asks: path -> (the first visitor's headers, what only
    they may see, the reason the cache names)."""
    return {
        "session": (
            "/greeting/",
            {"Cookie": session_cookie(site, "/sign-in/ann")},
            "Hello ann",
            "read session",
        ),
        "cookie": ("/theme/", {"Cookie": "theme=dark"}, "Theme dark", "read request.cookies"),
        "authorization": (
            "/api/me",
            {"Authorization": "Bearer ann-secret"},
            "ann-secret",
            "read request.headers['Authorization']",
        ),
        "current_user": (
            "/whoami/",
            {"Cookie": session_cookie(site, "/log-in/7")},
            "User 7",
            "read current_user",
        ),
    }


@pytest.mark.parametrize("case", ["session", "cookie", "authorization", "current_user"])
def test_a_page_that_reads_who_asks_is_never_stored(site: CacheSite, case: str) -> None:
    page, headers, secret, reason = _leaks(site)[case]
    path = f"{page}?leak={case}"
    first = fetch(site.url, path, headers=headers)
    assert (first.status, secret in first.text) == (200, True)
    assert directives(first)[0] == "private"
    assert "s-maxage" not in first.headers["Cache-Control"]
    assert status_of(first).startswith('flask-ondemand; fwd=uri-miss; detail="')
    assert reason in status_of(first)
    second = site.get(path)
    assert second.status == 200
    assert secret not in second.text
    assert site.renders(path) == 2


@pytest.mark.parametrize(
    ("path", "cookie"),
    [
        ("/welcome/", "seen=1"),  # with cookies.set
        ("/raw-cookie/", "raw=1"),  # on the view's own Response
        ("/remember/", "session="),  # the session, written
    ],
)
def test_a_page_that_sets_a_cookie_is_never_stored(site: CacheSite, path: str, cookie: str) -> None:
    for _ in range(2):
        page = site.get(path)
        assert page.headers["Set-Cookie"].startswith(cookie)
        assert directives(page) == ["private"]
        assert "set-cookie" in status_of(page)
    assert site.renders(path) == 2


@pytest.mark.parametrize(
    ("path", "reason", "policy"),
    [
        ("/status/302/", "status 302", ["private"]),
        ("/status/500/", "status 500", ["private"]),
        ("/own-private/", "private", ["private", "max-age=60"]),
        ("/own-no-store/", "no-store", ["private", "no-store"]),
        ("/languages/", "vary Accept-Language", ["private"]),
        ("/streamed/", "streamed", ["private"]),
    ],
)
def test_answers_that_are_never_stored(
    site: CacheSite, path: str, reason: str, policy: list[str]
) -> None:
    for _ in range(2):
        reply = site.get(path)
        assert directives(reply) == policy
        assert status_of(reply) == f'flask-ondemand; fwd=uri-miss; detail="{reason}"'
    assert site.renders(path) == 2


def test_varying_on_the_encoding_alone_is_stored(site: CacheSite) -> None:
    site.get("/compressed/")
    again = site.get("/compressed/")
    assert status_of(again).startswith("flask-ondemand; hit;")
    assert again.headers["Vary"] == "Accept-Encoding"
    assert site.renders("/compressed/") == 1


def test_only_get_and_head_are_stored(site: CacheSite) -> None:
    for _ in range(2):
        posted = fetch(site.url, "/form/", method="POST")
        assert posted.text == "Form POST v1"
        assert posted.headers["Cache-Status"] is None
    assert site.renders("/form/") == 2
    assert status_of(site.get("/form/")).endswith("; stored")  # the POSTs stored nothing
    assert site.renders("/form/") == 3


def test_any_answer_that_sets_a_cookie_is_private(site: CacheSite) -> None:
    plain = site.get("/plain-cookie/")
    assert plain.headers["Set-Cookie"].startswith("flavour=plain")
    assert directives(plain) == ["private"]
    own = site.get("/own-cookie-policy/")  # the view's own Cache-Control is left as it is
    assert own.headers.get_all("Cache-Control") == ["no-cache"]


# A prerendered page, deploys, failures


def test_a_prerendered_page_is_its_first_answer_then_refreshed(tmp_path: Path) -> None:
    with cache_site(tmp_path) as isr:
        first = isr.get("/about/")
        assert (first.status, first.text) == (200, "About v1")
        assert status_of(first).startswith("flask-ondemand; hit; ttl=")
        assert isr.renders("/about/") == 0  # the built file answered
        isr.set_data("v2")
        isr.move_clock(61)
        stale = isr.get("/about/")
        assert stale.text == "About v1"
        assert status_of(stale).endswith("; fwd=stale; detail=refreshing")
        isr.wait_for(lambda: isr.get("/about/").text == "About v2", "the refreshed page")
        assert isr.renders("/about/") == 1
        assert (isr.out / "client/about/index.html").read_text() == "About v1"


def test_a_url_not_built_is_rendered_once_then_cached(site: CacheSite) -> None:
    """prerender(fallback="live") with cache: a URL the build did not make is rendered on
    demand, and stored like any cached route's answer."""
    built = site.get("/about/ada/")
    assert (built.status, built.text) == (200, "Member ada v1")
    new = site.get("/about/grace/")
    assert (new.status, new.text) == (200, "Member grace v1")
    assert status_of(new) == "flask-ondemand; fwd=uri-miss; stored"
    site.set_data("v2")  # a render now would show it
    try:
        again = site.get("/about/grace/")
    finally:
        site.set_data("v1")
    assert (again.text, site.renders("/about/grace/")) == ("Member grace v1", 1)
    assert re.fullmatch(r"flask-ondemand; hit; ttl=\d+", status_of(again))


def test_a_deploy_purges_the_routes_whose_code_changed(tmp_path: Path) -> None:
    project, run, env = build_cache_site(tmp_path)
    with serving(project, run, env) as site:
        for path in ("/prices/?t=deploy", "/stock/a/"):
            site.get(path)
    source = project / "cachesite.py"
    source.write_text(source.read_text().replace('f"Prices {data()}"', 'f"Prices: {data()}"'))
    flask(project, "ondemand", "build", app=CACHE_APP)
    with serving(project, run, env) as site:
        kept = site.get("/stock/a/")
        assert status_of(kept).startswith("flask-ondemand; hit;")  # its code did not change
        changed = site.get("/prices/?t=deploy")
        assert (changed.text, status_of(changed)) == (
            "Prices: v1",
            "flask-ondemand; fwd=uri-miss; stored",
        )
        assert (site.renders("/stock/a/"), site.renders("/prices/?t=deploy")) == (1, 2)


def test_a_corrupt_entry_is_a_miss(site: CacheSite) -> None:
    path = "/stock/corrupt/"
    site.get(path)
    name = hashlib.sha256(path.encode()).hexdigest()
    entry = site.out / "cache/entries" / name[:2] / name
    entry.write_bytes(entry.read_bytes()[:30])
    again = site.get(path)
    assert (again.status, status_of(again)) == (200, "flask-ondemand; fwd=uri-miss; stored")
    assert status_of(site.get(path)).startswith("flask-ondemand; hit;")
    assert site.renders(path) == 2


def test_a_broken_store_means_live_pages(tmp_path: Path) -> None:
    with cache_site(tmp_path) as site:
        shutil.rmtree(site.out / "cache", ignore_errors=True)
        (site.out / "cache").write_text("not a folder")  # every store call fails
        for _ in range(6):
            reply = site.get("/prices/?t=broken")
            assert (reply.status, reply.text) == (200, "Prices v1")
            assert status_of(reply) == "flask-ondemand; fwd=bypass; detail=store-down"
            assert "s-maxage=60" in directives(reply)  # a CDN in front may still keep it
        assert site.renders("/prices/?t=broken") == 6
        warnings = site.server.log.count("the route cache's store")
        assert 1 <= warnings <= 2  # once a minute, in each worker that met it

        def warned(times: int) -> Callable[[], bool]:
            def check() -> bool:
                assert site.get("/prices/?t=broken").text == "Prices v1"
                return site.server.log.count("the route cache's store") >= times

            return check

        site.wait_for(warned(2), "the other worker's warning")  # each worker has warned now
        assert site.server.log.count("the route cache's store") == 2
        site.move_clock(61)  # a minute later, the store (tried again a second after it
        # failed, by the machine's clock) fails again, and is warned of again
        site.wait_for(warned(3), "the warning of a minute later")


def test_a_failing_refresh_serves_stale_and_is_not_retried_at_once(site: CacheSite) -> None:
    path = "/prices/?t=failing"
    site.get(path)
    site.move_clock(61)
    fail = site.folder / "fail"
    fail.touch()
    try:
        stale = site.get(path)
        assert (stale.status, stale.text) == (200, "Prices v1")
        assert status_of(stale).endswith("; detail=refreshing")
        failed = f"refreshing {path} gave an answer that is not stored (status 500"
        site.wait_for(lambda: failed in site.server.log, "the refresh")
        replies = [site.get(path) for _ in range(10)]
        assert {(r.status, r.text) for r in replies} == {(200, "Prices v1")}
        assert not any("refreshing" in status_of(r) for r in replies)  # no render started
        assert site.renders(path) == 2
    finally:
        fail.unlink()
    site.move_clock(31)  # ONDEMAND_CACHE_LOCK_TIMEOUT later: tried again
    assert status_of(site.get(path)).endswith("; detail=refreshing")
    site.wait_for(lambda: site.renders(path) == 3, "the second try")


def test_a_hosts_function_keeps_no_store_and_tells_the_cdn(tmp_path: Path) -> None:
    """The slim app of a host's function (load_slim_app) keeps no store unless
    ONDEMAND_CACHE_URL names one: each request renders, and the headers let the host's CDN
    keep the answer (or never share it)."""
    project, _, _ = build_cache_site(tmp_path)
    client = load_slim_app(project / "dist/index.py").test_client()
    for _ in range(2):
        page = client.get("/prices/")
        assert page.text == "Prices v1"
        assert page.headers["Cache-Status"] == "flask-ondemand; fwd=bypass; detail=no-store"
        assert page.headers["Cache-Control"] == (
            "public, max-age=0, s-maxage=60, stale-while-revalidate=600"
        )
    private = client.get("/theme/", headers={"Cookie": "theme=dark"})
    assert private.headers["Cache-Control"] == "private"
    assert not (project / "dist/cache").exists()
