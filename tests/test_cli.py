"""`flask ondemand routes` and `flask ondemand preview`, run as real commands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .servers import fetch, flask, serve

NOT_SET_UP = (
    "Error: flask_ondemand is not set up on the app 'forgetful'. Call OnDemand(app), or"
    " ondemand.init_app(app) in your app factory."
)
# An app factory that forgets OnDemand when FORGET is set: a build made before, then served.
FORGETFUL_APP = """\
import os

from flask import Flask

from flask_ondemand import OnDemand, cookies, prerender


def create_app():
    app = Flask("forgetful")
    if not os.environ.get("FORGET"):
        OnDemand(app)
    app.add_url_rule("/", "index", lambda: "home")
    app.add_url_rule("/live/", "live", prerender(False)(lambda: str(cookies.has("a"))))
    return app
"""


def test_routes_table_shows_mode_and_reason(project: Path) -> None:
    lines = flask(project, "ondemand", "routes").stdout.splitlines()
    assert lines[0].split() == ["Rule", "Endpoint", "Methods", "Mode", "Why"]
    rows = {line.split()[0]: " ".join(line.split()[1:]) for line in lines[2:]}
    assert rows["/about/"] == "about GET prerendered ONDEMAND_OUTPUT = 'static'"
    assert rows["/account/"] == "account GET on demand route mark"
    assert rows["/cart/"] == "cart.show GET on demand blueprint 'cart' mark"
    assert rows["/cart/add"] == "cart.add POST on demand no GET"
    assert rows["/login"] == "login GET, POST on demand also accepts POST"
    assert rows["/contact/"] == "contact GET, POST prerendered route mark; POST on demand"
    assert rows["/ghost/"] == "ghost GET not served no view function"
    assert rows["/static/<path:filename>"] == "static GET prerendered static folder"


def test_routes_table_flags_a_mark_that_fails_the_build(project: Path) -> None:
    output = flask(project, "ondemand", "routes", env={"SITE_BREAK": "nopost"}).stdout
    assert "no GET; BUILD FAILS: marked prerender(True) but accepts no GET" in output


def test_the_apps_own_commands_still_work(project: Path) -> None:
    assert flask(project, "count-products").stdout == "3 products\n"


def test_preview_serves_the_build_through_server_py(project: Path) -> None:
    flask(project, "ondemand", "build")
    command = [
        str(Path(sys.executable).parent / "flask"),
        "--app",
        "testsite:create_app()",
        "ondemand",
        "preview",
        "--port",
        "0",
    ]
    with serve(command, cwd=project, ready=r"Running on http://127\.0\.0\.1:(\d+)") as server:
        page = fetch(server.url, "/hello")
        assert (page.status, page.headers["Content-Type"], page.body) == (
            200,
            "text/html; charset=utf-8",
            b"<h1>Hello</h1>",
        )
        assert fetch(server.url, "/account/").text == "Account of nobody; see /about/"
        assert fetch(server.url, "/about").status == 308
        assert "Previewing dist through dist/server.py" in server.log


def test_preview_without_a_build_says_what_to_do(project: Path) -> None:
    result = flask(project, "ondemand", "preview", check=False)
    assert result.returncode == 1
    assert "dist/server.py does not exist. Run `flask ondemand build` first." in result.stderr


@pytest.fixture
def forgetful(tmp_path: Path) -> Path:
    (tmp_path / "forgetful.py").write_text(FORGETFUL_APP)
    return tmp_path


@pytest.mark.parametrize("command", ["routes", "build", "preview"])
def test_an_app_without_ondemand_is_a_one_line_error(forgetful: Path, command: str) -> None:
    result = flask(
        forgetful,
        "ondemand",
        command,
        app="forgetful:create_app()",
        env={"FORGET": "1"},
        check=False,
    )
    assert (result.returncode, result.stderr.splitlines()) == (1, [NOT_SET_UP])


def test_a_build_whose_app_lost_ondemand_is_refused_at_start_up(forgetful: Path) -> None:
    """Not served from the old files with a 500 for each on-demand page: no server starts."""
    flask(forgetful, "ondemand", "build", app="forgetful:create_app()")
    bin = Path(sys.executable).parent
    for command in (
        [bin / "flask", "--app", "forgetful:create_app()", "ondemand", "preview", "--port", "0"],
        [bin / "gunicorn", "--chdir", "dist", "server:app", "--bind", "127.0.0.1:0"],
    ):
        try:
            started = subprocess.run(
                command,
                cwd=forgetful,
                env={**os.environ, "FORGET": "1"},
                capture_output=True,
                text=True,
                timeout=60,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"{command[0].name} served the build")
        assert started.returncode != 0
        if command[0].name == "flask":
            assert started.stderr.splitlines() == [NOT_SET_UP]
        else:
            assert f"ConfigError: {NOT_SET_UP.removeprefix('Error: ')}" in started.stderr
