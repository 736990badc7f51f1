"""`flask ondemand routes` and `flask ondemand preview`, run as real commands."""

from __future__ import annotations

import sys
from pathlib import Path

from .servers import fetch, flask, serve


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
