"""App factories for in-process tests, and a built test site served by a real gunicorn."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask

from flask_ondemand import OnDemand

from .servers import Server, flask, free_port, granian, gunicorn, make_project, nginx, waitress


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--load",
        action="store_true",
        help="also run the 60-second load test (tests/reliability/test_load.py), as CI does",
    )


@pytest.fixture
def make_app() -> Callable[..., Flask]:
    """Make a Flask app with OnDemand; config keys are given as keyword arguments."""

    def factory(*, ondemand: bool = True, **config: object) -> Flask:
        app = Flask("testapp")
        app.config.update({"SECRET_KEY": "test-secret", **config})
        if ondemand:
            OnDemand(app)
        return app

    return factory


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project folder holding a copy of tests/apps/testsite.py and its files."""
    return make_project(tmp_path / "project")


@dataclass
class BuiltSite:
    project: Path
    out: Path
    call_log: Path
    server: Server

    def calls(self) -> list[str]:
        return self.call_log.read_text().splitlines() if self.call_log.exists() else []


@dataclass
class Build:
    """The test site built once, with the nginx adapter (which includes the wsgi output)."""

    project: Path
    out: Path
    call_log: Path
    nginx_port: int
    upstream_port: int

    @property
    def env(self) -> dict[str, str]:
        return {"SITE_CALL_LOG": str(self.call_log)}

    def with_server(self, server: Server) -> BuiltSite:
        return BuiltSite(self.project, self.out, self.call_log, server)


def _build_site(folder: Path, *partial: str) -> Build:
    """Build the test site with the nginx adapter; then again with ``--only`` each of
    ``partial``, so that its pages come from a partial build and the whole one it lies on."""
    project = make_project(folder / "project")
    nginx_port, upstream_port = free_port(), free_port()
    ports = {
        "FLASK_ONDEMAND_NGINX_LISTEN": f"127.0.0.1:{nginx_port}",
        "FLASK_ONDEMAND_NGINX_UPSTREAM": f"127.0.0.1:{upstream_port}",
    }
    flask(project, "ondemand", "build", "--adapter", "nginx", env=ports)
    for pattern in partial:
        flask(project, "ondemand", "build", "--adapter", "nginx", "--only", pattern, env=ports)
    return Build(project, project / "dist", project / "serve-calls.log", nginx_port, upstream_port)


@pytest.fixture(scope="session")
def build(tmp_path_factory: pytest.TempPathFactory) -> Build:
    return _build_site(tmp_path_factory.mktemp("site"))


@pytest.fixture(scope="session")
def partial_build(tmp_path_factory: pytest.TempPathFactory) -> Build:
    """The test site built whole, then partly again: a page, a text page with a gzip copy, a
    page with its own type, and a static file come from the partial build."""
    return _build_site(
        tmp_path_factory.mktemp("partial"), "/about/", "/guide/", "/hello", "/static/*"
    )


@pytest.fixture(scope="session")
def site(build: Build) -> Iterator[BuiltSite]:
    """The test site served by gunicorn, as the README says."""
    with gunicorn(build.out, cwd=build.project, env=build.env) as server:
        yield build.with_server(server)


@pytest.fixture(
    scope="session",
    params=[
        *("gunicorn", "waitress", "granian", "nginx"),
        *("gunicorn, partial build", "nginx, partial build"),
    ],
)
def stack(
    request: pytest.FixtureRequest, build: Build, site: BuiltSite, partial_build: Build
) -> Iterator[BuiltSite]:
    """The test site behind each server the wsgi and nginx adapters are for (the WSGI servers
    gunicorn, waitress and Granian); and after partial builds, whose files come from two
    folders."""
    kind, _, partial = request.param.partition(", ")
    if partial:
        build = partial_build
    if request.param == "gunicorn":
        yield site
    elif kind == "gunicorn":
        with gunicorn(build.out, cwd=build.project, env=build.env) as server:
            yield build.with_server(server)
    elif kind == "waitress":
        with waitress(build.out, env=build.env) as server:
            yield build.with_server(server)
    elif kind == "granian":
        with granian(build.out, env=build.env) as server:
            yield build.with_server(server)
    else:
        prefix = build.project / "nginx-prefix"
        with (
            gunicorn(build.out, cwd=build.project, env=build.env, port=build.upstream_port),
            nginx(build.out, prefix=prefix, port=build.nginx_port) as server,
        ):
            yield build.with_server(server)
