"""The docs' tutorial: its first app and its last one build and serve as the page says."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from flask_ondemand.extension import DEFAULTS

from .servers import Browser, fetch, flask, gunicorn

TUTORIAL = Path(__file__).parent.parent / "docs/tutorial"
APP = "myapp:create_app()"


def project_with(tmp_path: Path, source: str) -> Path:
    shutil.copy(TUTORIAL / source, tmp_path / "myapp.py")
    return tmp_path


def test_the_first_app_builds_into_files(tmp_path: Path) -> None:
    project = project_with(tmp_path, "first.py")
    built = flask(project, "ondemand", "build", app=APP).stdout
    assert "Built dist in" in built
    assert (project / "dist/client/index.html").read_text() == "<h1>Home</h1>"
    assert (project / "dist/client/about/index.html").read_text() == "<h1>About</h1>"


def console(command: str) -> list[str]:
    """The output the tutorial shows for ``command``: the lines after it in its console block."""
    text = (TUTORIAL.parent / "tutorial.rst").read_text()
    block = re.search(rf"^   \$ {re.escape(command)}\n((?:   .+\n)*)", text, re.M)
    assert block is not None, command
    return [line[3:] for line in block[1].splitlines()]


def test_the_second_app_shows_what_the_tutorial_says(tmp_path: Path) -> None:
    project = project_with(tmp_path, "second.py")
    command = f"flask --app '{APP}' ondemand"
    routes = flask(project, "ondemand", "routes", app=APP).stdout.splitlines()
    assert console(f"{command} routes") == routes
    built = flask(project, "ondemand", "build", app=APP).stdout.splitlines()
    built = [re.sub(r" in \d+\.\d+ s:", " in 0.05 s:", line) for line in built]
    assert console(f"{command} build") == [line for line in built if line != "Rendering"]


def test_the_finished_app_is_served_with_its_island(tmp_path: Path) -> None:
    project = project_with(tmp_path, "myapp.py")
    routes = flask(project, "ondemand", "routes", app=APP).stdout
    assert re.search(r"^/now/ +pages\.now +GET +on demand +route mark$", routes, re.M)
    flask(project, "ondemand", "build", app=APP)
    assert sorted(p.name for p in (project / "dist/client/posts").iterdir()) == ["hello", "hybrid"]
    with gunicorn(project / "dist", cwd=project) as server:
        assert "It is " in fetch(server.url, "/now/").text
        assert fetch(server.url, "/posts/hybrid/").text == "<h1>Hybrid rendering</h1>"
        home = fetch(server.url, "/").text
        assert "<p>Welcome!</p>" in home  # the island's fallback, until the script loads it
        source = re.search(r'data-src="([^"]+)"', home)
        assert source is not None
        browser = Browser(server.url)
        island = source[1].replace("&amp;", "&")
        assert browser.get(island).text == "<p>Visit number 1.</p>"
        assert browser.get(island).text == "<p>Visit number 2.</p>"


def test_the_configuration_page_lists_every_key() -> None:
    page = (TUTORIAL.parent / "configuration.rst").read_text()
    keys = set(DEFAULTS)
    adapters = Path(__file__).parent.parent / "flask_ondemand/adapters"
    for module in adapters.glob("*.py"):
        source = module.read_text()
        name = re.search(r'^    name = "([\w-]+)"$', source, re.M)
        for option in re.findall(r'site\.option\(self\.name, "(\w+)"', source):
            assert name is not None, module
            keys.add(f"ONDEMAND_{name[1].upper().replace('-', '_')}_{option.upper()}")
    assert "ONDEMAND_NGINX_UPSTREAM" in keys
    assert [key for key in sorted(keys) if f"``{key}``" not in page] == []
