"""The wsgi adapter, the default: gunicorn and waitress serve DIR/server.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import BuiltSite
from .servers import assert_site_answers, flask


def test_it_is_the_default_and_says_how_to_deploy(project: Path) -> None:
    result = flask(project, "ondemand", "build")
    assert result.stdout.splitlines()[-1] == "Deploy:  gunicorn --chdir dist server:app"


def test_the_shared_answers(stack: BuiltSite) -> None:
    assert_site_answers(stack.server.url)


@pytest.mark.parametrize("adapter", ["wsgi", "nginx"])
def test_the_deploy_line_says_how_to_get_gunicorn_when_it_is_missing(
    project: Path, tmp_path: Path, adapter: str
) -> None:
    # A plain `pip install flask-ondemand` has no gunicorn: the build's Python cannot find it.
    (tmp_path / "hidden").mkdir()
    (tmp_path / "hidden/sitecustomize.py").write_text(
        "import sys\n\nsys.modules['gunicorn'] = None  # as if not installed\n"
    )
    hint = "(gunicorn is not installed here: pip install gunicorn, or install flask-ondemand"
    missing = {"PYTHONPATH": str(tmp_path / "hidden")}
    without = flask(project, "ondemand", "build", "--adapter", adapter, env=missing).stdout
    deploy = without.splitlines()[-1]
    assert deploy.startswith("Deploy:  ")
    assert "gunicorn --chdir dist server:app" in deploy
    assert f"{hint} with its [gunicorn] extra)" in deploy
    installed = flask(project, "ondemand", "build", "--adapter", adapter).stdout
    assert hint not in installed
