"""The docs' tutorial and the README's minimal app build and serve as the pages say; the
configuration page lists every key."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

from flask_ondemand.extension import DEFAULTS

from .servers import Browser, fetch, flask, gunicorn, serve

TUTORIAL = Path(__file__).parent.parent / "docs/tutorial"
README = Path(__file__).parent.parent / "README.md"
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


def readme_blocks(language: str) -> list[str]:
    """The README's fenced code blocks of ``language`` ("" for those that name none)."""
    blocks: list[tuple[str, list[str]]] = []
    inside = False
    for line in README.read_text().splitlines():
        fence = line.strip().startswith("```")
        if fence and not inside:
            blocks.append((line.strip()[3:], []))
        elif not fence and inside:
            blocks[-1][1].append(line)
        inside ^= fence
    return ["\n".join(lines) + "\n" for name, lines in blocks if name == language]


def test_the_readmes_minimal_app_builds_and_serves(tmp_path: Path) -> None:
    (tmp_path / "myapp.py").write_text(readme_blocks("python")[0])
    commands = [line.split("  #")[0].strip() for line in readme_blocks("")[0].splitlines()]
    assert commands == [
        f"flask --app '{APP}' ondemand build",
        f"flask --app '{APP}' ondemand preview",
        "gunicorn --chdir dist server:app",
    ]
    built = flask(tmp_path, "ondemand", "build", app=APP)
    assert "Deploy:  gunicorn --chdir dist server:app" in built.stdout
    assert built.stderr == ""  # no warning
    assert (tmp_path / "dist/client/index.html").read_text() == "<h1>Home</h1>"
    preview = [str(Path(sys.executable).parent / "flask"), "--app", APP, "ondemand", "preview"]
    with (
        serve([*preview, "--port", "0"], cwd=tmp_path, ready=r"Running on \S+:(\d+)") as local,
        gunicorn(tmp_path / "dist", cwd=tmp_path) as server,
    ):
        for url in (local.url, server.url):
            home = fetch(url, "/")
            assert (home.text, "ETag" in home.headers) == ("<h1>Home</h1>", True)  # the file
            now = fetch(url, "/now/")
            assert (now.status, now.text.startswith("<p>It is ")) == (200, True)


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


def test_the_readme_is_read_in_five_minutes() -> None:
    """At most 200 lines, and a table of contents that links every section."""
    text = README.read_text()
    assert len(text.splitlines()) <= 200
    contents = text[text.index("**Contents:**") : text.index("\n## ")]
    for heading in re.findall(r"^## (.+)$", text, flags=re.MULTILINE):
        assert f"(#{heading.lower().replace(' ', '-')})" in contents, heading
