"""App factories for in-process tests, and a built test site served by a real gunicorn."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask

from flask_ondemand import OnDemand

from .servers import Server, flask, gunicorn, make_project


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


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuiltSite]:
    """The test site, built once with `flask ondemand build` and served by gunicorn."""
    project = make_project(tmp_path_factory.mktemp("site") / "project")
    flask(project, "ondemand", "build")
    call_log = project / "serve-calls.log"
    out = project / "dist"
    with gunicorn(out, cwd=project, env={"SITE_CALL_LOG": str(call_log)}) as server:
        yield BuiltSite(project, out, call_log, server)
