from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from flask_ondemand import ManifestError
from flask_ondemand.manifest import Caching, Manifest, Redirect, RuleEntry
from flask_ondemand.pagetable import PAGES_NAME, PageRow, PageTable, write_pages


def sample() -> Manifest:
    return Manifest(
        app_import="example_app:create_app()",
        project_root="..",
        files={"/": "index.html", "/hello": "hello", "/old/": "old/index.html"},
        content_types={"hello": "text/html; charset=utf-8"},
        site_headers=[("Content-Security-Policy", "default-src 'self'")],
        headers={"hello": [("X-Robots-Tag", "noindex"), ("Link", "</a>"), ("Link", "</b>")]},
        redirects={"/old/": Redirect(301, "/new/")},
        prerendered=[RuleEntry("/", "index", ["GET"])],
        on_demand=[RuleEntry("/login", "login", ["GET", "POST"])],
    )


def format_2(manifest: Manifest) -> dict[str, Any]:
    """The manifest as versions before the table of pages wrote it: every page in the JSON."""
    data = json.loads(manifest.to_json())
    del data["pages"]
    data["format"] = 2
    data["files"] = dict(manifest.files)
    data["content_types"] = dict(manifest.content_types)
    data["headers"] = {file: [list(p) for p in pairs] for file, pairs in manifest.headers.items()}
    data["redirects"] = {url: r._asdict() for url, r in manifest.redirects.items()}
    data["live_query"] = sorted(manifest.live_query)
    data["cached"] = sorted(manifest.cached)
    return data


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data))
    return path


def test_round_trip(tmp_path: Path) -> None:
    """The JSON holds what every request needs; the pages are in the table beside it."""
    path = tmp_path / "manifest.json"
    sample().write(path)
    assert Manifest.read(path) == sample()
    data = json.loads(path.read_text())
    assert (data["format"], data["pages"]) == (3, 3)
    assert "files" not in data
    assert "redirects" not in data
    assert (tmp_path / PAGES_NAME).is_file()


def test_a_manifest_is_read_through_its_link_beside_its_own_table(tmp_path: Path) -> None:
    """DIR/manifest.json is a link into the live build: the table is the one beside the JSON
    it links to, not a table beside the link."""
    (tmp_path / "build").mkdir()
    sample().write(tmp_path / "build" / "manifest.json")
    (tmp_path / "manifest.json").symlink_to("build/manifest.json")
    assert Manifest.read(tmp_path / "manifest.json").files["/hello"] == "hello"


def test_format_2_and_format_1_manifests_still_load(tmp_path: Path) -> None:
    path = write_json(tmp_path / "manifest.json", format_2(sample()))
    assert Manifest.read(path) == sample()
    data = format_2(sample())
    data["format"] = 1
    del data["site_headers"]
    loaded = Manifest.read(write_json(path, data))
    assert loaded.site_headers == []
    assert loaded.headers == sample().headers


def test_a_format_2_file_with_an_empty_list_of_headers_has_none_of_its_own(
    tmp_path: Path,
) -> None:
    """As format 3 writes it: without an entry, so the manifest is written back as read."""
    data = format_2(sample())
    data["headers"]["index.html"] = []
    loaded = Manifest.read(write_json(tmp_path / "manifest.json", data))
    assert "index.html" not in loaded.headers
    loaded.write(tmp_path / "again.json")
    assert Manifest.read(tmp_path / "again.json") == loaded == sample()


def test_pages_are_written_on_a_previous_table_less_those_replaced(tmp_path: Path) -> None:
    """A partial build's table: the previous one as it is, less the pages it rendered or
    found gone, plus those it rendered."""
    sample().write(tmp_path / "manifest.json")
    previous = Manifest.read(tmp_path / "manifest.json").table()
    assert previous is not None
    (tmp_path / "new").mkdir()
    path = tmp_path / "new" / PAGES_NAME
    rendered = [PageRow("/hello", "hello", headers=(("X-New", "1"),))]
    assert write_pages(path, rendered, on=previous, without=["/hello", "/old/"]) == 2
    table = PageTable(path)
    assert dict(table.files()) == {"/": "index.html", "/hello": "hello"}
    assert dict(table.headers()) == {"hello": [("X-New", "1")]}
    assert dict(table.redirects()) == {}
    assert dict(previous.files()) == sample().files  # the previous table as it was
    clash = [PageRow("/new", "index.html")]  # the file of a page kept
    with pytest.raises(ValueError, match=r"/new: its file 'index.html' cannot be"):
        write_pages(path, clash, on=previous)


CSP = ("Content-Security-Policy", "default-src 'self'")


CSP = ("Content-Security-Policy", "default-src 'self'")
FRAMES = ("X-Frame-Options", "DENY")


def test_headers_most_files_have_are_stored_once() -> None:
    manifest = sample()
    manifest.files = {"/": "index.html", "/hello": "hello", "/third/": "third/index.html"}
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
    manifest.files = {"/": "index.html", "/hello": "hello"}
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
    manifest.files = {"/": "index.html", "/hello": "hello"}
    manifest.set_headers({"index.html": [CSP]})  # "hello" has none
    assert manifest.site_headers == []
    assert manifest.headers == {"index.html": [CSP]}
    assert manifest.headers_for("hello") == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "unreadable manifest"),
        ("[]", "not a flask_ondemand manifest"),
        ('{"format": 99}', "format 99; this flask_ondemand reads formats 1, 2 and 3. Rebuild"),
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
    data = format_2(sample())
    data["files"]["/"] = 42
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ManifestError, match="expected a string, got 42"):
        Manifest.read(path)


@pytest.mark.parametrize("status", [200, 304, 306])
def test_redirect_status_must_be_a_redirect(tmp_path: Path, status: int) -> None:
    data = format_2(sample())
    data["redirects"]["/old/"]["status"] = status
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ManifestError, match=f"redirect status {status} for /old/"):
        Manifest.read(path)


@pytest.mark.parametrize("file", ["../../server.py", "/etc/passwd", "a/../../b", "..", ""])
@pytest.mark.parametrize("where", ["files", "content_types", "headers"])
def test_a_file_outside_the_client_folder_is_refused(tmp_path: Path, where: str, file: str) -> None:
    data = format_2(sample())
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
    manifest.files = {**manifest.files, "/prices/": "prices/index.html"}
    manifest.cached = {"/prices/"}
    manifest.cdn_cache_headers = [("Netlify-CDN-Cache-Control", "durable")]
    path = tmp_path / "manifest.json"
    manifest.write(path)
    data = json.loads(path.read_text())
    assert data["prerendered"][-1]["cache"] == {"max_age": 60, "swr": 600}
    assert "cache" not in data["prerendered"][0]
    loaded = Manifest.read(path)
    assert loaded == manifest
    assert loaded.cached == {"/prices/"}
    assert loaded.prerendered[-1].routable  # the slim app refreshes it
    data = format_2(manifest)
    del data["cached"], data["cdn_cache_headers"], data["prerendered"][-1]["cache"]
    path.write_text(json.dumps(data))
    older = Manifest.read(path)
    assert (older.cached, older.cdn_cache_headers) == (set(), [])
    assert not older.prerendered[-1].routable
    data["prerendered"][-1]["cache"] = {"max_age": -1}
    path.write_text(json.dumps(data))
    with pytest.raises(ManifestError, match="seconds"):
        Manifest.read(path)


def test_the_query_keys_of_live_query_rules_round_trip(tmp_path: Path) -> None:
    """The parameters a live_query rule's pages looked up, none at all ([]), or unknown (a
    page read its query whole, or a manifest of before them): not written."""
    manifest = sample()
    manifest.prerendered = [
        RuleEntry("/", "index", ["GET"], live_query=True, query_keys=("page", "sort")),
        RuleEntry("/list/", "listing", ["GET"], live_query=True, query_keys=()),
        RuleEntry("/all/", "every", ["GET"], live_query=True),
    ]
    path = tmp_path / "manifest.json"
    manifest.write(path)
    written = json.loads(path.read_text())["prerendered"]
    assert [entry.get("query_keys") for entry in written] == [["page", "sort"], [], None]
    assert Manifest.read(path) == manifest
    written[0]["query_keys"] = [1]
    data = {**json.loads(path.read_text()), "prerendered": written}
    path.write_text(json.dumps(data))
    with pytest.raises(ManifestError, match="expected a string, got 1"):
        Manifest.read(path)


# The table of pages: refused when it is not one a build wrote, a page at a time when a hand
# changed a row anyway (a server then answers that URL with a 500, the others as ever).


def test_a_missing_or_foreign_table_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    sample().write(path)
    table = tmp_path / PAGES_NAME
    table.unlink()
    with pytest.raises(ManifestError, match=f"{re.escape(str(path))}: .*no {PAGES_NAME} beside"):
        Manifest.read(path)
    table.write_bytes(b"not a database at all, but long enough to look like one" * 20)
    with pytest.raises(ManifestError, match=f"{PAGES_NAME} is unreadable"):
        Manifest.read(path)
    table.unlink()
    with sqlite3.connect(table) as connection:
        connection.execute("CREATE TABLE pages (url TEXT PRIMARY KEY, file TEXT)")
    with pytest.raises(ManifestError, match="is not a table of pages this version wrote"):
        Manifest.read(path)


@pytest.mark.parametrize("file", ["../../server.py", "/etc/passwd", "a/../../b", "..", ".", ""])
def test_the_table_refuses_a_file_outside_the_client_folder(tmp_path: Path, file: str) -> None:
    manifest = sample()
    manifest.files = {**manifest.files, "/x": file}
    with pytest.raises(ManifestError, match=r"/x: its file .* cannot be"):
        manifest.write(tmp_path / "manifest.json")


def test_the_table_refuses_what_belongs_to_no_page(tmp_path: Path) -> None:
    manifest = sample()
    manifest.redirects = {**manifest.redirects, "/gone/": Redirect(301, "/")}
    with pytest.raises(ManifestError, match="'/gone/' belongs to no page"):
        manifest.write(tmp_path / "manifest.json")
    manifest = sample()
    manifest.files = {**manifest.files, "/again": "hello"}
    with pytest.raises(ManifestError, match="/hello and /again have one file, 'hello'"):
        manifest.write(tmp_path / "manifest.json")


@pytest.mark.parametrize(
    ("url", "column", "value", "read", "message"),
    [
        ("/hello", "file", "../x", lambda m: m.files["/hello"], "'/hello': the file '../x' is"),
        ("/hello", "file", b"x", lambda m: m.files["/hello"], "'/hello': expected a string, got b"),
        ("/old/", "redirect_status", 200, lambda m: m.redirects["/old/"], "redirect status 200"),
        ("/hello", "headers", '{"a": 1}', lambda m: m.headers["hello"], "'hello': headers"),
    ],
)
def test_a_row_changed_by_hand_is_refused_when_read(
    tmp_path: Path, url: str, column: str, value: object, read: Any, message: str
) -> None:
    path = tmp_path / "manifest.json"
    sample().write(path)
    with sqlite3.connect(tmp_path / PAGES_NAME) as connection:
        connection.execute("PRAGMA ignore_check_constraints = ON")
        connection.execute(f"UPDATE pages SET {column} = ? WHERE url = ?", (value, url))
    manifest = Manifest.read(path)
    with pytest.raises(ManifestError, match=f"{PAGES_NAME}: .*{re.escape(message)}"):
        read(manifest)
    assert manifest.files["/"] == "index.html"  # the other pages read as ever


def test_a_format_2_manifest_whose_pages_do_not_add_up_is_refused(tmp_path: Path) -> None:
    data = format_2(sample())
    data["content_types"]["nobody.txt"] = "text/plain"
    path = write_json(tmp_path / "manifest.json", data)
    with pytest.raises(ManifestError, match=r"'nobody\.txt' belongs to no page"):
        Manifest.read(path)
