from __future__ import annotations

import json
from pathlib import Path

import pytest

from flask_ondemand import ManifestError
from flask_ondemand.manifest import Manifest, Redirect, RuleEntry


def sample() -> Manifest:
    return Manifest(
        app_import="example_app:create_app()",
        project_root="..",
        files={"/": "index.html", "/hello": "hello"},
        content_types={"hello": "text/html; charset=utf-8"},
        headers={"hello": [("X-Robots-Tag", "noindex"), ("Link", "</a>"), ("Link", "</b>")]},
        redirects={"/old/": Redirect(301, "/new/")},
        prerendered=[RuleEntry("/", "index", ["GET"])],
        on_demand=[RuleEntry("/login", "login", ["GET", "POST"])],
    )


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    sample().write(path)
    assert Manifest.read(path) == sample()
    assert json.loads(path.read_text())["format"] == 1


def test_missing_manifest_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"no manifest\. Run `flask ondemand build`"):
        Manifest.read(tmp_path / "manifest.json")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "unreadable manifest"),
        ("[]", "not a flask_ondemand manifest"),
        ('{"format": 99}', "format 99; this flask_ondemand reads format 1"),
        ('{"format": 1, "app": {}}', "not a flask_ondemand manifest \\(no 'import'\\)"),
    ],
)
def test_a_broken_manifest_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "manifest.json"
    path.write_text(text)
    with pytest.raises(ManifestError, match=message) as raised:
        Manifest.read(path)
    assert str(path) in str(raised.value)


def test_wrong_types_are_refused(tmp_path: Path) -> None:
    data = json.loads(sample().to_json())
    data["files"]["/"] = 42
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ManifestError, match="expected a string, got 42"):
        Manifest.read(path)


@pytest.mark.parametrize("status", [200, 304, 306])
def test_redirect_status_must_be_a_redirect(tmp_path: Path, status: int) -> None:
    data = json.loads(sample().to_json())
    data["redirects"]["/old/"]["status"] = status
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ManifestError, match=f"redirect status {status} for /old/"):
        Manifest.read(path)
