"""Property tests (hypothesis): the cookie helper, the URL -> file mapping, manifest loading."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, request, url_for
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from flask_ondemand import (
    Freezer,
    ManifestError,
    OnDemand,
    PageError,
    PagesFailed,
    cookies,
    prerender,
)
from flask_ondemand.layout import stays_inside
from flask_ondemand.manifest import REDIRECT_STATUSES, Manifest, Redirect, RuleEntry

from ..test_manifest import format_2

# CI tries the same examples on every run, so its verdict is about the change it checks and
# a red run can be run again; runs elsewhere search new cases, and each they find becomes an
# @example here.
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

# Any text a Python str can carry to and from UTF-8 (lone surrogates cannot).
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200)


def cookie_app() -> Flask:
    app = Flask(__name__)
    app.config["SECRET_KEY"] = "fuzz"
    OnDemand(app)

    @app.post("/set")
    def set_cookie() -> str:
        data = request.get_json()
        cookies.set("c", data["value"], signed=data["signed"])
        return "ok"

    @app.get("/get")
    def get_cookie() -> dict[str, object]:
        cookie = cookies.get("c", signed=request.args.get("signed") == "1")
        return {"value": cookie.value if cookie else None}

    return app


COOKIE_APP = cookie_app()


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(value=TEXT, signed=st.booleans())
def test_cookie_set_then_get_round_trips_any_value(value: str, signed: bool) -> None:
    client = COOKIE_APP.test_client()
    client.post("/set", json={"value": value, "signed": signed})
    answer = client.get(f"/get?signed={int(signed)}").get_json()
    assert answer == {"value": value}


# File names from any text, and from the characters that make paths interesting.
FILE_NAMES = st.text(max_size=60) | st.text(alphabet=st.sampled_from("a./\\\0"), max_size=12)


@settings(max_examples=500)
@given(FILE_NAMES)
@example("about/index.html")
@example("a/../b")
@example("../a")
@example("a/../..")
@example("/etc/passwd")
def test_stays_inside_exactly_when_the_file_is_inside(file: str) -> None:
    """True for a relative name whose file is below the folder, and for no other."""
    root = os.path.realpath(tempfile.gettempdir())
    target = os.path.normpath(os.path.join(root, file))
    inside = not os.path.isabs(file) and "\0" not in file and target.startswith(root + os.sep)
    assert stays_inside(file) == inside


SEGMENT = st.text(alphabet=st.sampled_from("ab.%/\\é_-~"), min_size=1, max_size=8)
# Page names no build has a reason to refuse: no dots, slashes or escapes.
PLAIN_SEGMENT = st.text(alphabet=st.sampled_from("abAB01é_-~"), min_size=1, max_size=8)


# Why a build refuses a prerendered URL; any other PageError (a crash, say) is a bug.
REFUSALS = (
    "would be outside the build folder",
    "one of the two URLs has to change",
    "one of the URLs has to change",
    "is in the way of another page's folder",
    "a page and a folder want the same name",
    "has an empty, '.' or '..' part",
    "answered 404 NOT FOUND",  # the route does not match the URL made for it ("//" is "/")
)


def freeze_pages(segments: list[str], folder: Path) -> Freezer:
    """Freeze an app whose one route prerenders a page for each of ``segments`` into
    ``folder``/out, and return its freezer; raises PageError if the build refuses a URL."""
    app = Flask(__name__)
    OnDemand(app)

    @app.route("/<path:page>")
    @prerender(paths=lambda: [{"page": segment} for segment in segments])
    def page(page: str) -> str:
        return page

    app.config["FREEZER_DESTINATION"] = str(folder / "out")
    freezer = Freezer(app)
    freezer.freeze()
    return freezer


def assert_distinct_files_inside(freezer: Freezer, destination: Path, pages: int) -> None:
    files = [page.file for page in freezer.pages.values()]
    assert len(files) == pages
    assert len(set(files)) == len(files)
    for file in files:
        assert (destination / file).is_file()
        assert (destination / file).resolve().is_relative_to(destination.resolve())


@pytest.mark.filterwarnings("ignore::flask_ondemand.OnDemandWarning")  # odd names, odd types
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(SEGMENT, min_size=1, max_size=6, unique=True))
@example(["a//b", "a/b"])  # two URLs, one file: refused
@example(["a/./b", "a/b"])
@example(["a/", "a/index.html"])
@example(["\\/."])  # the file of a folder: refused
@example(["\\", "/\\"])  # one URL: url_for merges the slashes, "/%5C" for both
def test_urls_map_to_distinct_files_inside_the_build(segments: list[str]) -> None:
    """Every prerendered URL gets its own file inside the destination, or the build fails
    (a file would be outside, two URLs would share one, or the app cannot answer the URL);
    either way, nothing is ever written outside the destination."""
    with tempfile.TemporaryDirectory() as folder:
        destination = Path(folder) / "out"
        refused: list[str] = []
        try:
            freezer = freeze_pages(segments, Path(folder))
        except PageError as error:
            refused = [error.cause]
        except PagesFailed as failed:  # each failing page is reported
            refused = [error.cause for error in failed.errors]
        if not refused:
            with freezer.app.test_request_context():  # two values may make one URL
                urls = {url_for("page", page=segment) for segment in segments}
            assert_distinct_files_inside(freezer, destination, len(urls))
        for cause in refused:
            assert any(reason in cause for reason in REFUSALS), cause
        written = {p for p in Path(folder).rglob("*") if p.is_file()}
        assert all(p.is_relative_to(destination) for p in written)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(PLAIN_SEGMENT, min_size=1, max_size=6, unique=True))
def test_plain_urls_are_all_built_into_distinct_files(segments: list[str]) -> None:
    """The refusals above are for odd names only: plain page names are always built."""
    with tempfile.TemporaryDirectory() as folder:
        freezer = freeze_pages(segments, Path(folder))
        assert_distinct_files_inside(freezer, Path(folder) / "out", len(segments))


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=6)
    ),
    max_leaves=30,
)
KEYS = st.sampled_from(
    ["format", "app", "files", "content_types", "headers", "redirects", "prerendered", "on_demand"]
)


NAME = st.text(alphabet=st.sampled_from("abcé-_"), min_size=1, max_size=6)
URL = st.builds(
    lambda parts, end: "/" + "/".join(parts) + end,
    st.lists(NAME, max_size=3),
    st.sampled_from(["", "/"]),
)
FILE = st.lists(NAME, min_size=1, max_size=3).map("/".join)
HEADER = st.tuples(
    st.text(alphabet=st.sampled_from("ABCxyz-"), min_size=1, max_size=10).map("X-{}".format),
    st.text(alphabet=st.sampled_from("abc123=;,/"), min_size=1, max_size=20),
)
RULE = st.builds(
    RuleEntry, URL, NAME, st.lists(st.sampled_from(["GET", "POST", "PUT"]), unique=True)
)


@st.composite
def well_formed(draw: st.DrawFn) -> Manifest:
    """A manifest as a build makes it: each page its own file, and a file's type and
    headers, a URL's redirect and flags, only for a page's."""
    by_file = draw(st.dictionaries(FILE, URL, max_size=5))  # each page its own file
    files = {url: file for file, url in by_file.items()}
    some_files = st.sampled_from(sorted(files.values()) or ["-"])
    some_urls = st.sampled_from(sorted(files) or ["-"])
    few = 3 if files else 0
    return Manifest(
        app_import=draw(st.none() | NAME),
        project_root=draw(st.sampled_from([".", "..", "../.."])),
        files=files,
        content_types=draw(
            st.dictionaries(some_files, st.sampled_from(["text/html; charset=utf-8"]), max_size=few)
        ),
        headers=draw(
            st.dictionaries(some_files, st.lists(HEADER, min_size=1, max_size=3), max_size=few)
        ),
        redirects=draw(
            st.dictionaries(
                some_urls,
                st.builds(Redirect, st.sampled_from(REDIRECT_STATUSES), URL),
                max_size=few,
            )
        ),
        live_query=draw(st.sets(some_urls, max_size=few)),
        cached=draw(st.sets(some_urls, max_size=few)),
        prerendered=draw(st.lists(RULE, max_size=3)),
        on_demand=draw(st.lists(RULE, max_size=3)),
    )


WELL_FORMED = well_formed()


def assert_read_right(manifest: Manifest, path: Path) -> None:
    """What a manifest that was read holds is what the server and adapters expect, and it
    is written back as it was read."""
    strings = [manifest.project_root, *manifest.files, *manifest.files.values()]
    strings += [*manifest.content_types, *manifest.content_types.values(), *manifest.headers]
    own = [pair for pairs in manifest.headers.values() for pair in pairs]
    strings += [name for name, _ in own]
    strings += [*manifest.redirects, *(r.location for r in manifest.redirects.values())]
    for entry in [*manifest.prerendered, *manifest.on_demand]:
        strings += [entry.rule, entry.endpoint, *entry.methods]
    assert all(isinstance(text, str) for text in strings)
    assert manifest.app_import is None or isinstance(manifest.app_import, str)
    assert all(value is None or isinstance(value, str) for _, value in own)  # None: not the site's
    assert all(len(pair) == 2 for pairs in manifest.headers.values() for pair in pairs)
    assert all(r.status in REDIRECT_STATUSES for r in manifest.redirects.values())
    # What a server would open is inside the client folder, and everything is some page's.
    files = set(manifest.files.values())
    assert all(stays_inside(file) for file in files)
    assert files.issuperset(manifest.content_types)
    assert files.issuperset(manifest.headers)
    pages = set(manifest.files)
    assert pages.issuperset(manifest.redirects)
    assert pages.issuperset(manifest.live_query)
    assert pages.issuperset(manifest.cached)
    again = path.with_name("again.json")
    manifest.write(again)
    assert Manifest.read(again) == manifest


@settings(max_examples=200)
@given(WELL_FORMED)
def test_a_well_formed_manifest_is_read_as_it_was_written(manifest: Manifest) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "manifest.json"
        manifest.write(path)
        assert Manifest.read(path) == manifest


def read_or_refuse(path: Path) -> None:
    """Read a manifest: refused with an error naming the file, or read right."""
    try:
        manifest = Manifest.read(path)
    except ManifestError as error:
        message = str(error)
    else:
        assert_read_right(manifest, path)
        return
    assert str(path) in message


@settings(max_examples=300)
@given(WELL_FORMED, st.data())
def test_a_manifest_with_a_field_changed_is_read_right_or_refused(
    manifest: Manifest, data: st.DataObject
) -> None:
    """A manifest one of whose fields, at any depth, holds any JSON instead: in a format 3
    manifest's JSON (its table of pages written as it was), or in a format 2 manifest."""
    old = data.draw(st.booleans())
    document = format_2(manifest) if old else json.loads(manifest.to_json())
    holder: Any = document
    key: Any = data.draw(st.sampled_from(sorted(holder)))
    while isinstance(holder[key], (dict, list)) and holder[key] and data.draw(st.booleans()):
        holder = holder[key]
        keys = sorted(holder) if isinstance(holder, dict) else range(len(holder))
        key = data.draw(st.sampled_from(keys))
    holder[key] = data.draw(JSON)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "manifest.json"
        if not old:
            manifest.write(path)
        path.write_text(json.dumps(document))
        read_or_refuse(path)


@settings(max_examples=300)
@given(st.one_of(JSON, st.dictionaries(KEYS, JSON)))
def test_any_manifest_is_read_or_refused_clearly(data: object) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "manifest.json"
        path.write_text(json.dumps(data))
        read_or_refuse(path)


@settings(max_examples=100)
@given(st.binary(max_size=200))
def test_a_corrupt_manifest_file_is_refused_clearly(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "manifest.json"
        path.write_bytes(data)
        read_or_refuse(path)
