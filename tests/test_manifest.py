from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from flask_ondemand import ManifestError
from flask_ondemand.manifest import Caching, Manifest, Redirect, RuleEntry


def sample() -> Manifest:
    return Manifest(
        app_import="example_app:create_app()",
        project_root="..",
        files={"/": "index.html", "/hello": "hello"},
        content_types={"hello": "text/html; charset=utf-8"},
        site_headers=[("Content-Security-Policy", "default-src 'self'")],
        headers={"hello": [("X-Robots-Tag", "noindex"), ("Link", "</a>"), ("Link", "</b>")]},
        redirects={"/old/": Redirect(301, "/new/")},
        prerendered=[RuleEntry("/", "index", ["GET"])],
        on_demand=[RuleEntry("/login", "login", ["GET", "POST"])],
    )


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    sample().write(path)
    assert Manifest.read(path) == sample()
    assert json.loads(path.read_text())["format"] == 2


def test_a_format_1_manifest_loads_without_site_headers(tmp_path: Path) -> None:
    data = json.loads(sample().to_json())
    data["format"] = 1
    del data["site_headers"]
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(data))
    loaded = Manifest.read(path)
    assert loaded.site_headers == []
    assert loaded.headers == sample().headers


CSP = ("Content-Security-Policy", "default-src 'self'")
FRAMES = ("X-Frame-Options", "DENY")


def test_headers_most_files_have_are_stored_once() -> None:
    manifest = sample()
    manifest.files["/third/"] = "third/index.html"
    manifest.set_headers(
        {
            "index.html": [CSP, FRAMES],
            "hello": [("X-Robots-Tag", "noindex"), FRAMES, CSP],
            "third/index.html": [FRAMES, CSP],
        }
    )
    assert manifest.site_headers == [CSP, FRAMES]  # by name, whichever order pages had them
    assert manifest.headers == {"hello": [("X-Robots-Tag", "noindex")]}
    assert manifest.headers_for("hello") == [CSP, FRAMES, ("X-Robots-Tag", "noindex")]
    assert manifest.headers_for("index.html") == [CSP, FRAMES]
    assert manifest.to_json().count("Content-Security-Policy") == 1


def test_a_page_replaces_or_drops_a_site_header_by_name() -> None:
    manifest = sample()
    manifest.files.update({"/a/": "a/index.html", "/b/": "b/index.html", "/c/": "c/index.html"})
    strict = ("content-security-policy", "default-src 'none'")
    links = [("Link", "</a>"), ("Link", "</b>")]
    manifest.set_headers(
        {
            "index.html": [CSP, *links],
            "a/index.html": [CSP, *links],
            "c/index.html": [*links, CSP],
            "b/index.html": [strict, links[0]],  # its own CSP, and one Link of the two
            "hello": [*links],  # no CSP at all
        }
    )
    assert manifest.site_headers == [CSP, *links]
    assert manifest.headers == {
        "b/index.html": [strict, links[0]],
        "hello": [("Content-Security-Policy", None)],
    }
    assert manifest.headers_for("b/index.html") == [strict, links[0]]
    assert manifest.headers_for("hello") == links
    assert manifest.headers_for("a/index.html") == [CSP, *links]


def test_a_header_half_the_files_lack_is_not_shared() -> None:
    manifest = sample()
    manifest.set_headers({"index.html": [CSP]})  # "hello" has none
    assert manifest.site_headers == []
    assert manifest.headers == {"index.html": [CSP]}
    assert manifest.headers_for("hello") == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "unreadable manifest"),
        ("[]", "not a flask_ondemand manifest"),
        ('{"format": 99}', "format 99; this flask_ondemand reads formats 1 and 2"),
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


@pytest.mark.parametrize("file", ["../../server.py", "/etc/passwd", "a/../../b", "..", ""])
@pytest.mark.parametrize("where", ["files", "content_types", "headers"])
def test_a_file_outside_the_client_folder_is_refused(tmp_path: Path, where: str, file: str) -> None:
    data = json.loads(sample().to_json())
    if where == "files":
        data["files"]["/x"] = file
    else:
        data[where][file] = data[where].pop("hello")
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ManifestError, match=f"the file {re.escape(repr(file))} is outside"):
        Manifest.read(path)


def test_the_route_caches_fields_round_trip(tmp_path: Path) -> None:
    """Cached routes' marks, the pages the route cache refreshes, and the CDN's header; a
    manifest of before them reads as one without."""
    manifest = sample()
    manifest.prerendered.append(RuleEntry("/prices/", "prices", ["GET"], cache=Caching(60, 600)))
    manifest.cached = {"/prices/"}
    manifest.cdn_cache_headers = [("Netlify-CDN-Cache-Control", "durable")]
    path = tmp_path / "manifest.json"
    manifest.write(path)
    data = json.loads(path.read_text())
    assert data["prerendered"][-1]["cache"] == {"max_age": 60, "swr": 600}
    assert "cache" not in data["prerendered"][0]
    loaded = Manifest.read(path)
    assert loaded == manifest
    assert loaded.prerendered[-1].routable  # the slim app refreshes it
    del data["cached"], data["cdn_cache_headers"], data["prerendered"][-1]["cache"]
    path.write_text(json.dumps(data))
    older = Manifest.read(path)
    assert (older.cached, older.cdn_cache_headers) == (set(), [])
    assert not older.prerendered[-1].routable
    data["prerendered"][-1]["cache"] = {"max_age": -1}
    path.write_text(json.dumps(data))
    with pytest.raises(ManifestError, match="seconds"):
        Manifest.read(path)
