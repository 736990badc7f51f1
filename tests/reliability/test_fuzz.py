"""Property tests (hypothesis): the cookie helper, the URL -> file mapping, manifest loading."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest
from flask import Flask, request
from hypothesis import HealthCheck, given, settings
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
from flask_ondemand.manifest import Manifest

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


@settings(max_examples=300)
@given(st.text(max_size=60))
def test_stays_inside_means_inside(file: str) -> None:
    root = os.path.realpath(tempfile.gettempdir())
    if stays_inside(file):
        target = os.path.normpath(os.path.join(root, file))
        assert target.startswith(root + os.sep)


SEGMENT = st.text(alphabet=st.sampled_from("ab.%/\\é_-~"), min_size=1, max_size=8)


@pytest.mark.filterwarnings("ignore::flask_ondemand.OnDemandWarning")  # odd names, odd types
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(SEGMENT, min_size=1, max_size=6, unique=True))
def test_urls_map_to_distinct_files_inside_the_build(segments: list[str]) -> None:
    """Every prerendered URL gets its own file inside the destination, or the build fails
    (a file would be outside, two URLs would share one, or the app cannot answer the URL);
    either way, nothing is ever written outside the destination."""
    app = Flask(__name__)
    OnDemand(app)

    @app.route("/<path:page>")
    @prerender(paths=lambda: [{"page": segment} for segment in segments])
    def page(page: str) -> str:
        return page

    with tempfile.TemporaryDirectory() as folder:
        destination = Path(folder) / "out"
        app.config["FREEZER_DESTINATION"] = str(destination)
        freezer = Freezer(app)
        try:
            freezer.freeze()
        except (PageError, PagesFailed):
            pass
        else:
            files = [page.file for page in freezer.pages.values()]
            assert len(set(files)) == len(files)
            for file in files:
                assert (destination / file).resolve().is_relative_to(destination.resolve())
        written = {p for p in Path(folder).rglob("*") if p.is_file()}
        assert all(p.is_relative_to(destination) for p in written)


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


@settings(max_examples=300)
@given(st.one_of(JSON, st.dictionaries(KEYS, JSON)))
def test_any_manifest_is_read_or_refused_clearly(data: object) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "manifest.json"
        path.write_text(json.dumps(data))
        try:
            manifest = Manifest.read(path)
        except ManifestError as error:
            message = str(error)
        else:
            assert isinstance(manifest, Manifest)
            return
        assert str(path) in message


@settings(max_examples=100)
@given(st.binary(max_size=200))
def test_a_corrupt_manifest_file_is_refused_clearly(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "manifest.json"
        path.write_bytes(data)
        try:
            Manifest.read(path)
        except ManifestError as error:
            message = str(error)
        else:
            return  # bytes that happen to be a manifest
        assert str(path) in message
