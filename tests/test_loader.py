"""How DIR/server.py finds and imports the app, served through gunicorn."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from flask_ondemand import ManifestError
from flask_ondemand.loader import load_build

from .servers import APPS, fetch, flask, gunicorn

GUNICORN = Path(sys.executable).parent / "gunicorn"


def test_module_level_app_found_without_app_option(tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(APPS / "module_app", project)
    flask(project, "ondemand", "build", app=None)
    manifest = json.loads((project / "dist/manifest.json").read_text())
    assert manifest["app"]["import"] is None
    with gunicorn(project / "dist", cwd=project) as server:
        assert fetch(server.url, "/").body == b"Module app index"
        assert fetch(server.url, "/me").body == b"Visits: 0"


def test_build_folder_can_move_with_its_project(project: Path, tmp_path: Path) -> None:
    flask(project, "ondemand", "build")
    moved = tmp_path / "elsewhere"
    shutil.move(project, moved)
    with gunicorn(moved / "dist", cwd=tmp_path) as server:
        assert fetch(server.url, "/account/").status == 200
        assert fetch(server.url, "/about/").body == b"About, version 1"


def test_app_import_config_overrides_the_cli(project: Path) -> None:
    flask(project, "ondemand", "build", env={"FLASK_ONDEMAND_APP_IMPORT": "testsite:create_app()"})
    manifest = json.loads((project / "dist/manifest.json").read_text())
    assert manifest["app"]["import"] == "testsite:create_app()"


def test_a_folder_without_build_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "server.py").write_text("")
    with pytest.raises(ManifestError, match=r"holds no build\. Run `flask ondemand build"):
        load_build(tmp_path / "server.py")


def test_a_corrupt_manifest_stops_gunicorn_with_a_clear_message(project: Path) -> None:
    flask(project, "ondemand", "build")
    manifest = project / "dist/manifest.json"
    manifest.resolve().write_text("{broken")
    result = subprocess.run(
        [str(GUNICORN), "--chdir", "dist", "server:app", "--bind", "127.0.0.1:0"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "unreadable manifest" in result.stderr
    assert str(manifest.resolve()) in result.stderr
