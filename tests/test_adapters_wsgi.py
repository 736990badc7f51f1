"""The wsgi adapter, the default: gunicorn and waitress serve DIR/server.py."""

from __future__ import annotations

from pathlib import Path

from .conftest import BuiltSite
from .servers import assert_site_answers, flask


def test_it_is_the_default_and_says_how_to_deploy(project: Path) -> None:
    result = flask(project, "ondemand", "build")
    assert result.stdout.splitlines()[-1] == "Deploy:  gunicorn --chdir dist server:app"


def test_the_shared_answers(stack: BuiltSite) -> None:
    assert_site_answers(stack.server.url)
