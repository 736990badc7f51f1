"""`flask ondemand build`, run through the real flask CLI in a project folder."""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
from pathlib import Path

import pytest

from flask_ondemand.manifest import Manifest

from .servers import fetch, flask, gunicorn, snapshot


def build(project: Path, *args: str, env: dict[str, str] | None = None, check: bool = True):  # type: ignore[no-untyped-def]
    return flask(project, "ondemand", "build", *args, env=env, check=check)


def test_layout_and_file_names(project: Path) -> None:
    result = build(project)
    out = project / "dist"
    assert "Deploy:  gunicorn --chdir dist server:app" in result.stdout
    assert (out / "server.py").is_file()
    assert os.readlink(out / "client") == "current/client"
    assert os.readlink(out / "manifest.json") == "current/manifest.json"
    assert os.readlink(out / "current").startswith(".builds/")
    client = out / "client"
    # Frozen-Flask's names: /about/ -> about/index.html, /data.json -> data.json, /hello -> hello.
    for name in ("index.html", "about/index.html", "data.json", "hello", "robots.txt", "feed"):
        assert (client / name).is_file(), name
    assert (client / "about/index.html").read_text() == "About, version 1"
    # Static files of the app and of a blueprint that ships its own.
    assert (client / "static/site.css").read_text() == "body { color: black; }\n"
    assert (client / "widgets-static/widget.js").is_file()
    # Values from paths=, from a Freezer generator, from url_for, from defaults and any().
    for name in (
        "posts/first",
        "posts/second",
        "products/1",
        "products/2",
        "products/3",
        "pages",
        "lang/en",
        "lang/fr",
    ):
        assert (client / name / "index.html").is_file(), name
    # Nothing on demand, nothing without a view.
    for name in ("account", "login", "cart", "ghost", "pages/2"):
        assert not (client / name).exists(), name


def test_manifest_describes_the_build(project: Path) -> None:
    build(project)
    manifest = json.loads((project / "dist/manifest.json").read_text())
    assert manifest["app"] == {"import": "testsite:create_app()", "project_root": ".."}
    pages = Manifest.read(project / "dist/manifest.json")  # the JSON, and its table of pages
    assert manifest["pages"] == len(pages.files)
    assert pages.files["/about/"] == "about/index.html"
    assert pages.files["/static/site.css"] == "static/site.css"
    assert pages.content_types == {
        "hello": "text/html; charset=utf-8",
        "shape": "text/html; charset=utf-8",
        "feed": "application/atom+xml; charset=utf-8",
        "docs/popup": "text/html; charset=utf-8",
    }
    # Every header a page's response carried, from the view, its Response, a tuple or a hook;
    # those most pages share once: here the after_request hooks' (Talisman's, say).
    assert manifest["site_headers"] == [
        ["Content-Security-Policy", "default-src 'self'"],
        ["X-Frame-Options", "SAMEORIGIN"],
        ["X-Hook", "ran"],
        ["X-Stamp", "extension"],
    ]
    assert pages.headers == {
        "terms/index.html": [("X-Robots-Tag", "noindex"), ("Cache-Control", "public, max-age=600")],
        "secure/index.html": [
            ("Content-Security-Policy", "default-src 'none'"),
            ("Referrer-Policy", "no-referrer"),
        ],
        "tuple-headers/index.html": [("X-From-Tuple", "yes")],
        "manual/index.html": [("Vary", "Accept-Language")],
        # Flask's static files: no-cache (SEND_FILE_MAX_AGE_DEFAULT); their Content-Disposition,
        # which names the file their URL ends in, says nothing and is left out.
        "static/site.css": [("Cache-Control", "no-cache")],
        "widgets-static/widget.js": [("Cache-Control", "no-cache")],
        "_ondemand/islands.js": [("Cache-Control", "no-cache")],  # a page has islands
    }
    assert pages.redirects == {
        "/old/": (301, "/about/"),  # flask.redirect
        "/moved/": (308, "/about/"),  # flask_ondemand.redirect
    }
    on_demand = {entry["endpoint"]: entry["methods"] for entry in manifest["on_demand"]}
    assert {
        key: on_demand[key]
        for key in on_demand
        if not key.startswith(("lab.", "isles.", "flask_ondemand."))
    } == {
        "account": ["GET"],
        "links": ["GET"],
        "login": ["GET", "POST"],
        "cart.show": ["GET"],
        "cart.add": ["POST"],
    }
    assert on_demand["lab.api"] == ["DELETE", "GET", "PUT"]
    prerendered = {entry["endpoint"] for entry in manifest["prerendered"]}
    assert {"index", "contact", "post", "static", "widgets.static"} <= prerendered
    # The parameters a live_query page looked up: a query without them gets its file.
    listing = next(e for e in manifest["prerendered"] if e["endpoint"] == "isles.listing")
    assert (listing["live_query"], listing["query_keys"]) == (True, ["page"])
    assert "ghost" not in prerendered | set(on_demand)


def test_progress_and_warnings_are_shown(project: Path) -> None:
    result = build(project)
    assert "Rendering" in result.stdout
    assert "Warning: /ghost/ (ghost) has no view function" in result.stderr


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        ("raise", "Error: build failed: /broken/: ZeroDivisionError: division by zero"),
        (
            "status",
            "Error: build failed: /teapot/: answered 418 I'M A TEAPOT; only 2xx pages can be files",
        ),
        (
            "nopost",
            "Error: build failed: /submit (submit) is marked prerender(True) but accepts no GET",
        ),
        (
            "nopaths",
            "Error: build failed: /things/<name>/ (thing): marked prerender(True),"
            " but no URL was generated",
        ),
        ("sysexit", "Error: build failed: /bye/: SystemExit: 3"),
        ("exit", "Error: build failed: a process rendering pages died"),
        # A generator's own OSError is its error, not one of writing the build folder.
        ("refused", "Error: build failed: ConnectionRefusedError: database down"),
    ],
)
def test_a_failed_build_leaves_the_previous_one_byte_for_byte(
    project: Path, breakage: str, message: str
) -> None:
    build(project)
    before = snapshot(project / "dist")
    result = build(
        project, "--jobs", "2", env={"SITE_BREAK": breakage, "SITE_VERSION": "2"}, check=False
    )
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert "cannot write the build" not in result.stderr
    assert snapshot(project / "dist") == before


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_views_own_warning_is_shown(project: Path, jobs: str) -> None:
    result = build(project, "--jobs", jobs, env={"SITE_BREAK": "warn"})
    assert "a view's own warning" in result.stderr


def test_a_page_can_change_between_file_and_folder(project: Path) -> None:
    client = project / "dist/client"
    build(project)
    assert (client / "shape").read_text() == "a file page"
    build(project, env={"SITE_SHAPE": "folder"})
    assert (client / "shape/index.html").read_text() == "a folder page"
    build(project)
    assert (client / "shape").read_text() == "a file page"
    with gunicorn(project / "dist", cwd=project) as server:
        assert fetch(server.url, "/shape").body == b"a file page"
        assert fetch(server.url, "/shape/").status == 404


def test_verbose_shows_the_pages_own_traceback(project: Path) -> None:
    hinted = build(project, env={"SITE_BREAK": "raise"}, check=False)
    assert "(run with --verbose for the traceback)" in hinted.stderr
    result = build(project, "--verbose", env={"SITE_BREAK": "raise"}, check=False)
    assert result.returncode == 1
    assert "The traceback of /broken/:\nTraceback (most recent call last)" in result.stderr
    assert "1 / 0" in result.stderr
    assert "flask_ondemand/build.py" not in result.stderr  # not the build's, which reports it
    assert result.stderr.count("Traceback (most recent call last)") == 1


def test_a_refusal_has_no_traceback_to_show(project: Path) -> None:
    """A page the build refuses (it sets a cookie) raised nothing of its own."""
    result = build(project, env={"SITE_BREAK": "setcookie"}, check=False)
    assert result.returncode == 1
    assert "--verbose" not in result.stderr
    verbose = build(project, "--verbose", env={"SITE_BREAK": "setcookie"}, check=False)
    assert "Traceback" not in verbose.stderr


def test_a_failed_first_build_leaves_nothing(project: Path) -> None:
    result = build(project, env={"SITE_BREAK": "raise"}, check=False)
    assert result.returncode == 1
    assert not (project / "dist").exists()


def test_refuses_a_folder_that_is_not_a_build(project: Path) -> None:
    (project / "public").mkdir()
    (project / "public/keep.txt").write_text("mine")
    result = build(project, "--out", "public", check=False)
    assert result.returncode == 1
    assert "public exists and is not a flask_ondemand build folder" in result.stderr
    assert (project / "public/keep.txt").read_text() == "mine"


def test_out_defaults_to_the_config_key(project: Path) -> None:
    result = flask(
        project,
        "ondemand",
        "build",
        app="testsite:create_app()",
        env={"FLASK_ONDEMAND_OUT_DIR": "public"},
    )
    assert (project / "public/client/index.html").is_file()
    assert "Deploy:  gunicorn --chdir public server:app" in result.stdout


def test_a_rebuild_swaps_and_keeps_one_previous_build(project: Path) -> None:
    out = project / "dist"
    builds = []
    for version in ("1", "2", "3"):
        build(project, env={"SITE_VERSION": version})
        builds.append(os.readlink(out / "current"))
    assert (out / "client/about/index.html").read_text() == "About, version 3"
    assert len(set(builds)) == 3
    kept = sorted(path.name for path in (out / ".builds").iterdir() if path.is_dir())
    assert kept == sorted(Path(link).name for link in builds[1:])


def test_unchanged_files_keep_their_mtime_across_builds(project: Path) -> None:
    client = project / "dist/client"
    build(project, env={"SITE_VERSION": "1"})
    index_before = (client / "index.html").stat()
    build(project, env={"SITE_VERSION": "2"})
    index_after = (client / "index.html").stat()
    # Same bytes: the file is carried over (same inode, same mtime, so the same ETag).
    assert (index_after.st_ino, index_after.st_mtime_ns) == (
        index_before.st_ino,
        index_before.st_mtime_ns,
    )
    assert (client / "about/index.html").read_text() == "About, version 2"


@pytest.mark.parametrize(
    "setting",
    [
        {"FLASK_FREEZER_IGNORE_404_NOT_FOUND": "true"},
        {"FLASK_FREEZER_REMOVE_EXTRA_FILES": "false", "FLASK_FREEZER_IGNORE_404_NOT_FOUND": "true"},
    ],
)
def test_a_page_that_is_gone_does_not_outlive_its_build(
    project: Path, setting: dict[str, str]
) -> None:
    build(project)
    assert (project / "dist/client/hello").is_file()
    result = build(project, env={"SITE_GONE": "hello", **setting})
    assert "Ignored '404 NOT FOUND' on URL /hello" in result.stderr
    assert not (project / "dist/client/hello").exists()
    manifest = Manifest.read(project / "dist/manifest.json")
    assert "/hello" not in manifest.files
    assert "hello" not in manifest.content_types


def test_an_out_folder_behind_a_symlink(project: Path, tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (project / "deploy").symlink_to(tmp_path / "real")
    for version in ("1", "2"):
        build(project, "--out", "deploy/site", env={"SITE_VERSION": version})
    site = tmp_path / "real/site"
    kept = [path for path in (site / ".builds").iterdir() if path.is_dir()]
    assert len(kept) == 2  # the live build and the one before it
    manifest = json.loads((site / "manifest.json").read_text())
    assert (site / manifest["app"]["project_root"]).resolve() == project.resolve()
    with gunicorn(project / "deploy/site", cwd=project) as server:
        assert fetch(server.url, "/about/").body == b"About, version 2"
        assert fetch(server.url, "/account/").status == 200


def test_a_failed_swap_leaves_no_half_build(project: Path) -> None:
    out = project / "dist"
    build(project)
    live = (out / "current").resolve()
    (out / "current").unlink()
    shutil.copytree(live, out / "current")  # a folder where the link should be: rename fails
    before = snapshot(out)
    result = build(project, check=False)
    assert result.returncode == 1
    assert snapshot(out) == before


def test_parallel_and_serial_builds_write_the_same_files(project: Path) -> None:
    def client_files(out: str) -> dict[str, bytes | str]:
        return snapshot(project / out / "current/client")

    build(project, "--jobs", "1", "--out", "serial")
    build(project, "--jobs", "3", "--out", "parallel")
    assert client_files("serial") == client_files("parallel")
    serial = json.loads((project / "serial/manifest.json").read_text())
    parallel = json.loads((project / "parallel/manifest.json").read_text())
    serial["app"]["project_root"] = parallel["app"]["project_root"] = ""
    assert serial == parallel
    assert "guide/index.html.gz" in client_files("serial")  # text over 1 KiB, precompressed


def files_in(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_only_rerenders_the_pages_it_picks(project: Path) -> None:
    out = project / "dist"
    build(project, env={"SITE_VERSION": "1"})
    whole = (out / "current").resolve()
    result = build(project, "--only", "/about/", env={"SITE_VERSION": "2"})
    assert "(1 rendered now)" in result.stdout
    # The build holds only the page it rendered, and lies on the whole build for the others.
    assert files_in(out / "client") == ["about/index.html"]
    assert (out / "client/about/index.html").read_text() == "About, version 2"
    assert (out / "current/base-client").resolve() == whole / "client"
    manifest = Manifest.read(project / "dist/manifest.json")
    assert manifest.content_types["hello"] == "text/html; charset=utf-8"
    assert manifest.redirects["/old/"] == (301, "/about/")
    listing = next(e for e in manifest.prerendered if e.endpoint == "isles.listing")
    assert listing.query_keys == ("page",)  # what the base knew of a page not rendered now
    by_endpoint = build(project, "--only", "post", "--jobs", "1")
    assert "(2 rendered now)" in by_endpoint.stdout  # /posts/first/ and /posts/second/
    with gunicorn(project / "dist", cwd=project) as server:
        assert fetch(server.url, "/about/").body == b"About, version 2"
        assert fetch(server.url, "/hello").headers["Content-Type"] == "text/html; charset=utf-8"


def test_a_partial_build_sends_each_file_with_the_headers_a_whole_build_would(
    project: Path,
) -> None:
    """A partial build copies the previous table of pages and adds the pages it rendered,
    each with its own headers beside the site's as they were: every file is sent as a whole
    build would send it."""
    build(project)
    build(project, "--only", "/secure/")  # its own Content-Security-Policy and Referrer-Policy
    build(project, "--only", "/terms/", "--jobs", "1")
    build(project, "--out", "whole")
    partial = Manifest.read(project / "dist/manifest.json")
    whole = Manifest.read(project / "whole/manifest.json")
    assert dict(partial.files) == dict(whole.files)
    assert dict(partial.content_types) == dict(whole.content_types)
    assert dict(partial.redirects) == dict(whole.redirects)
    for file in whole.files.values():
        assert sorted(partial.headers_for(file)) == sorted(whole.headers_for(file)), file
    assert ("Referrer-Policy", "no-referrer") in partial.headers_for("secure/index.html")
    with gunicorn(project / "dist", cwd=project) as server:
        secure = fetch(server.url, "/secure/")
        assert secure.headers["Referrer-Policy"] == "no-referrer"
        assert secure.headers["Content-Security-Policy"] == "default-src 'none'"  # its own
        terms = fetch(server.url, "/terms/")
        assert terms.headers["X-Robots-Tag"] == "noindex"
        assert terms.headers["X-Frame-Options"] == "SAMEORIGIN"  # the site's, from a hook


def builds_in(out: Path) -> list[Path]:
    return sorted(path for path in (out / ".builds").iterdir() if path.is_dir())


def test_partial_builds_lie_on_the_last_whole_build(project: Path) -> None:
    out = project / "dist"
    build(project, env={"SITE_VERSION": "1"})
    whole = (out / "current").resolve()
    build(project, "--only", "/about/", env={"SITE_VERSION": "2"})
    first = (out / "current").resolve()
    build(project, "--only", "/hello", env={"SITE_VERSION": "2"})
    # Each holds what changed since the whole build, which it links to as its base.
    assert files_in(out / "client") == ["about/index.html", "hello"]
    assert (out / "current/base-client").resolve() == whole / "client"
    # Kept: the live build, the one before it, and the base they lie on.
    assert builds_in(out) == sorted([whole, first, (out / "current").resolve()])
    # A whole build starts again from every file: unchanged ones keep their inode (and ETag).
    index = (whole / "client/index.html").stat().st_ino
    build(project, env={"SITE_VERSION": "2"})
    assert not (out / "current/base-client").exists()
    assert (out / "client/index.html").stat().st_ino == index
    assert (out / "client/about/index.html").read_text() == "About, version 2"
    assert len(files_in(out / "client")) > 20
    build(project, env={"SITE_VERSION": "2"})
    assert len(builds_in(out)) == 2


def test_only_refuses_when_the_base_is_gone(project: Path) -> None:
    out = project / "dist"
    build(project)
    build(project, "--only", "/about/")
    shutil.rmtree((out / "current/base-client").resolve())  # removed by hand
    before = snapshot(out)
    result = build(project, "--only", "/about/", check=False)
    assert result.returncode == 1
    assert "the whole build the live one lies on, is gone: build whole" in result.stderr
    assert snapshot(out) == before
    build(project)
    assert (out / "client/index.html").is_file()


@pytest.mark.parametrize(
    ("previous", "pattern", "message"),
    [
        (False, "/about/", "--only needs a previous build in"),
        (True, "/nothing/*", "--only '/nothing/*' picks none of the previous build's pages"),
        (True, "no_such_endpoint", "--only 'no_such_endpoint' picks none"),
        (True, "/account/", "picks none of the previous build's pages (an on-demand URL"),
        (True, "/about", "--only '/about' is not a page of the previous build; '/about/' is"),
    ],
)
def test_only_errors_leave_the_folder_as_it_was(
    project: Path, previous: bool, pattern: str, message: str
) -> None:
    if previous:
        build(project)
    before = snapshot(project / "dist") if previous else None
    result = build(project, "--only", pattern, check=False)
    assert result.returncode == 1
    assert message in result.stderr
    assert "--verbose" not in result.stderr  # a mistake in the command: no traceback to see
    assert (snapshot(project / "dist") if previous else (project / "dist").exists()) == (
        before or False
    )


@pytest.mark.parametrize("args", [(), ("--only", "/guide/")])
def test_a_page_that_shrank_loses_its_compressed_copy(project: Path, args: tuple[str]) -> None:
    guide = project / "dist/client/guide/index.html"
    build(project)
    assert guide.with_name("index.html.gz").is_file()
    build(project, *args, env={"SITE_GUIDE": "short"})
    assert not guide.with_name("index.html.gz").exists()
    with gunicorn(project / "dist", cwd=project) as server:
        reply = fetch(server.url, "/guide/", headers={"Accept-Encoding": "gzip"})
        assert "Content-Encoding" not in reply.headers
        assert reply.body == guide.read_bytes()


def test_only_refuses_when_the_routes_changed(project: Path) -> None:
    build(project)
    before = snapshot(project / "dist")
    result = build(project, "--only", "/about/", env={"SITE_BREAK": "readcookie"}, check=False)
    assert result.returncode == 1
    assert "the prerendered routes changed since (/greeting/ (greeting)): build whole" in (
        result.stderr
    )
    assert snapshot(project / "dist") == before


def test_only_drops_a_page_that_is_gone(project: Path) -> None:
    build(project)
    env = {"SITE_GONE": "hello", "FLASK_FREEZER_IGNORE_404_NOT_FOUND": "true"}
    build(project, "--only", "/hello", env=env)
    assert not (project / "dist/client/hello").exists()
    manifest = Manifest.read(project / "dist/manifest.json")
    assert "/hello" not in manifest.files
    assert "hello" not in manifest.content_types
    assert manifest.files["/about/"] == "about/index.html"
    # Picked by name, it is a new page to the build, and it is still gone: nothing to remove.
    result = build(project, "--only", "/hello", env=env)
    assert "(0 rendered now)" in result.stdout
    assert not (project / "dist/client/hello").exists()
    # Its file is still in the whole build the partial ones lie on, but it is not served.
    assert (project / "dist/current/base-client/hello").is_file()
    with gunicorn(project / "dist", cwd=project) as server:
        assert fetch(server.url, "/hello").status == 404


def test_a_stale_temporary_build_is_swept(project: Path) -> None:
    build(project)
    stale = project / "dist/.builds/20000101-000000-dead00.tmp"
    stale.mkdir()
    (stale / "half-written.html").write_text("...")
    build(project)
    assert not stale.exists()


def test_a_second_build_at_once_is_refused(project: Path) -> None:
    build(project)
    before = snapshot(project / "dist")
    with open(project / "dist/.builds/.lock") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        result = build(project, check=False)
    assert result.returncode == 1
    assert "another build into" in result.stderr
    assert snapshot(project / "dist") == before


def test_an_app_without_ondemand_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "plain.py").write_text("from flask import Flask\napp = Flask(__name__)\n")
    result = flask(tmp_path, "ondemand", "build", app="plain", check=False)
    assert result.returncode != 0
    assert "flask_ondemand is not set up on the app 'plain'" in result.stderr


def test_partial_builds_where_files_cannot_be_hard_linked(project: Path, tmp_path: Path) -> None:
    """On a file system without hard links, files are copied instead."""
    (tmp_path / "nolink").mkdir()
    (tmp_path / "nolink/sitecustomize.py").write_text(
        "import errno, os\n\n\n"
        "def no_link(*args, **kwargs):\n"
        "    raise OSError(errno.EPERM, 'no hard links here')\n\n\n"
        "os.link = no_link\n"
    )
    nolink = {"PYTHONPATH": str(tmp_path / "nolink")}
    out = project / "dist"
    build(project, env=nolink)
    build(project, "--only", "/about/", env={**nolink, "SITE_VERSION": "2"})
    build(project, "--only", "/guide/", env={**nolink, "SITE_VERSION": "2"})
    assert files_in(out / "client") == [
        "about/index.html",
        "guide/index.html",
        "guide/index.html.gz",
    ]
    build(project, env={**nolink, "SITE_VERSION": "2"})  # starts from the files of both
    assert (out / "client/about/index.html").read_text() == "About, version 2"
    assert (out / "client/index.html").is_file()


def test_files_kept_by_freezer_skip_existing_are_sent_as_before(project: Path) -> None:
    """A whole build with FREEZER_SKIP_EXISTING keeps the files the previous one wrote, each
    with the type, redirect and headers the previous build gave it; the site's headers are
    counted over them too."""
    build(project)
    before = Manifest.read(project / "dist/manifest.json")
    # The few pages rendered now answer with another X-Hook: the site's stays the kept files'.
    env = {"FLASK_FREEZER_SKIP_EXISTING": "true", "SITE_VERSION": "2", "SITE_HOOK": "new"}
    result = build(project, env=env)
    files, rendered = map(int, re.findall(r"(\d+) files \((\d+) rendered now\)", result.stdout)[0])
    assert rendered < files / 2  # most are kept
    after = Manifest.read(project / "dist/manifest.json")
    assert (project / "dist/client/about/index.html").read_text() == "About, version 1"
    assert after.site_headers == before.site_headers != []
    # As in Frozen-Flask, a page kept is not asked for its links: the pages found only
    # through them (and islands.js, through defer()) are not in this build.
    assert dict(after.files).items() <= dict(before.files).items()
    rendered_now = []
    for file in after.files.values():
        if ("X-Hook", "new") in after.headers_for(file):
            rendered_now.append(file)
            continue
        assert after.headers_for(file) == before.headers_for(file), file
        assert after.content_types.get(file) == before.content_types.get(file), file
    assert len(rendered_now) == rendered
    assert dict(after.redirects) == dict(before.redirects) != {}
