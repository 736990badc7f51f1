"""The render engine: pages rendered in this process or in workers, and the files they leave."""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask, abort, redirect, url_for

from flask_ondemand import BuildError, Freezer, PageError

from .test_freezer import files, freeze

LONG_TEXT = "<p>Long enough to be worth compressing.</p>" * 40


def test_external_urls_use_server_name_and_scheme(
    make_app: Callable[..., Flask], tmp_path: Path
) -> None:
    app = make_app(SERVER_NAME="example.org", PREFERRED_URL_SCHEME="https")
    app.add_url_rule("/", "index", lambda: url_for("about", _external=True))
    app.add_url_rule("/about/", "about", lambda: "about")
    freeze(app, tmp_path)
    assert (tmp_path / "index.html").read_text() == "https://example.org/about/"
    assert (tmp_path / "about/index.html").read_text() == "about"  # found through that link


def test_a_redirect_to_the_own_host_is_kept_relative(app: Flask, tmp_path: Path) -> None:
    # The build's host (localhost) is no real one: a Location naming it would send visitors
    # nowhere, as Flask's own redirects (a missing slash) would.
    app.add_url_rule("/old/", "old", lambda: redirect(url_for("new", _external=True), 301))
    app.add_url_rule("/away/", "away", lambda: redirect("https://example.org/x", 302))
    app.add_url_rule("/new/", "new", lambda: "new")
    freezer = freeze(app, tmp_path)
    assert freezer.pages["/old/"].redirect == (301, "/new/")
    assert freezer.pages["/away/"].redirect == (302, "https://example.org/x")


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_view_calling_sys_exit_fails_its_page(app: Flask, tmp_path: Path, jobs: int) -> None:
    app.add_url_rule("/bye/", "bye", lambda: sys.exit(3))
    app.config["FREEZER_DESTINATION"] = str(tmp_path)
    with pytest.raises(PageError, match=r"/bye/: SystemExit: 3"):
        list(Freezer(app).freeze_yield(jobs=jobs))


def test_a_worker_that_dies_fails_the_build(app: Flask, tmp_path: Path) -> None:
    app.add_url_rule("/", "index", lambda: "home")
    app.add_url_rule("/bye/", "bye", lambda: os._exit(3))
    app.config["FREEZER_DESTINATION"] = str(tmp_path)
    with pytest.raises(BuildError, match="a process rendering pages died"):
        list(Freezer(app).freeze_yield(jobs=2))


def test_two_slow_pages_render_at_once_with_two_jobs(app: Flask, tmp_path: Path) -> None:
    """A small build of slow pages (a database query each) uses every worker: each of these
    pages waits until the other has started, which it can only do in another process."""
    signals = tmp_path / "signals"
    signals.mkdir()

    def meet(name: str, other: str) -> str:
        (signals / name).touch()
        give_up = time.monotonic() + 30  # a failsafe: rendered one after the other, they fail
        while not (signals / other).exists():
            if time.monotonic() > give_up:
                return f"{name} rendered alone"
            time.sleep(0.01)
        return f"{name} met {other}"

    app.add_url_rule("/a/", "a", lambda: meet("a", "b"))
    app.add_url_rule("/b/", "b", lambda: meet("b", "a"))
    app.config["FREEZER_DESTINATION"] = str(tmp_path / "out")
    list(Freezer(app).freeze_yield(jobs=2))
    assert files(tmp_path / "out") == {"a/index.html": b"a met b", "b/index.html": b"b met a"}


def test_text_pages_get_compressed_siblings(app: Flask, tmp_path: Path) -> None:
    app.add_url_rule("/long/", "long", lambda: LONG_TEXT)
    app.add_url_rule("/short/", "short", lambda: "short")
    app.add_url_rule("/logo.png", "logo", lambda: (LONG_TEXT, {"Content-Type": "image/png"}))
    freezer = freeze(app, tmp_path)
    assert set(files(tmp_path)) == {
        "long/index.html",
        "long/index.html.gz",
        "short/index.html",
        "logo.png",
    }
    assert freezer.pages["/long/"].compressed == (".gz",)


def test_a_page_that_shrank_loses_its_stale_sibling(
    make_app: Callable[..., Flask], tmp_path: Path
) -> None:
    (tmp_path / "long").mkdir()
    (tmp_path / "long/index.html").write_text(LONG_TEXT)
    (tmp_path / "long/index.html.gz").write_bytes(b"from before")
    app = make_app()
    app.add_url_rule("/long/", "long", lambda: "short now")
    freeze(app, tmp_path)
    assert files(tmp_path) == {"long/index.html": b"short now"}


def test_a_kept_page_keeps_its_siblings(make_app: Callable[..., Flask], tmp_path: Path) -> None:
    (tmp_path / "long").mkdir()
    (tmp_path / "long/index.html").write_text(LONG_TEXT)
    (tmp_path / "long/index.html.gz").write_bytes(b"from before")
    app = make_app(FREEZER_SKIP_EXISTING=True)
    app.add_url_rule("/long/", "long", lambda: "never rendered")
    freezer = freeze(app, tmp_path)
    assert freezer.pages["/long/"].compressed == (".gz",)
    assert (tmp_path / "long/index.html.gz").read_bytes() == b"from before"


@pytest.mark.parametrize(
    ("before", "rule"),
    [
        ("shape/index.html", "/shape"),  # a folder page became a file page
        ("shape", "/shape/"),  # and the other way round
    ],
)
def test_a_page_replaces_what_the_previous_build_left_in_its_way(
    make_app: Callable[..., Flask], tmp_path: Path, before: str, rule: str
) -> None:
    (tmp_path / before).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / before).write_text("old shape")
    app = make_app()
    app.add_url_rule(rule, "shape", lambda: "new shape")
    freezer = freeze(app, tmp_path)
    assert (tmp_path / freezer.pages[rule].file).read_text() == "new shape"


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_page_whose_name_is_another_pages_folder_gets_an_index_file(
    app: Flask, tmp_path: Path, jobs: int
) -> None:
    """/x and /x/popup both prerender: /x's file is x/index.html (in either order, whichever
    process rendered which), and the manifest says so."""
    app.add_url_rule("/x", "x", lambda: "page x")
    app.add_url_rule("/x/popup", "popup", lambda: "the popup")
    app.add_url_rule("/x/popup/more", "more", lambda: "more")
    app.config["FREEZER_DESTINATION"] = str(tmp_path)
    freezer = Freezer(app)
    list(freezer.freeze_yield(jobs=jobs))
    files = {url: page.file for url, page in freezer.pages.items()}
    assert files == {
        "/x": "x/index.html",
        "/x/popup": "x/popup/index.html",
        "/x/popup/more": "x/popup/more",
    }
    assert (tmp_path / "x/index.html").read_text() == "page x"
    assert (tmp_path / "x/popup/index.html").read_text() == "the popup"


@pytest.mark.parametrize("jobs", [1, 2])
@pytest.mark.filterwarnings("ignore::flask_frozen.FrozenFlaskWarning")
def test_a_page_that_writes_no_file_leaves_no_folder(
    make_app: Callable[..., Flask], tmp_path: Path, jobs: int
) -> None:
    """With workers, the build's process makes the pages' folders before they render: those
    of pages that write no file after all (an ignored 404 or redirect) are removed again,
    but not a folder another page's file is in."""
    app = make_app(FREEZER_IGNORE_404_NOT_FOUND=True, FREEZER_REDIRECT_POLICY="ignore")
    app.add_url_rule("/", "index", lambda: "home")
    app.add_url_rule("/gone/deep/", "gone", lambda: abort(404))
    app.add_url_rule("/moved/", "moved", lambda: redirect("/"))
    app.add_url_rule("/shared/gone/", "shared_gone", lambda: abort(404))
    app.add_url_rule("/shared/page/", "shared_page", lambda: "still here")
    app.config["FREEZER_DESTINATION"] = str(tmp_path)
    list(Freezer(app).freeze_yield(jobs=jobs))
    assert files(tmp_path) == {"index.html": b"home", "shared/page/index.html": b"still here"}
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "index.html",
        "shared",
        "shared/page",
        "shared/page/index.html",
    ]


@pytest.mark.parametrize("jobs", [1, 2])
@pytest.mark.parametrize("order", [["/x/popup", "/x"], ["/x", "/x/popup"]])
def test_the_links_of_a_page_whose_name_clashed_are_followed(
    app: Flask, tmp_path: Path, jobs: int, order: list[str]
) -> None:
    """/x and /x/popup: whichever comes second finds its name taken and is written again once
    the names are settled; the pages each links to are built all the same."""
    app.add_url_rule("/x", "x", lambda: f'<a href="{url_for("y", n=1)}">y</a>')
    app.add_url_rule("/x/popup", "popup", lambda: f'<a href="{url_for("y", n=2)}">y</a>')
    app.add_url_rule("/y/<int:n>", "y", lambda n: f"y{n}")
    app.config["FREEZER_DESTINATION"] = str(tmp_path)
    freezer = Freezer(app, with_no_argument_rules=False)
    freezer.register_generator(lambda: iter(order))
    list(freezer.freeze_yield(jobs=jobs))
    assert sorted(freezer.pages) == ["/x", "/x/popup", "/y/1", "/y/2"]
    assert files(tmp_path)["y/1"] == b"y1"
    assert files(tmp_path)["y/2"] == b"y2"


@pytest.mark.parametrize("jobs", [1, 2])
@pytest.mark.parametrize("order", [["/x/gone", "/x"], ["/x", "/x/gone"]])
@pytest.mark.filterwarnings("ignore::flask_frozen.FrozenFlaskWarning")
def test_a_page_that_writes_no_file_takes_no_name_from_another(
    make_app: Callable[..., Flask], tmp_path: Path, jobs: int, order: list[str]
) -> None:
    """/x/gone answers 404 (ignored): the folder made ahead for it is no page's, so /x keeps
    the file x, and the page /x links to is built too. (A clash would render /x again, once
    the links were followed.)"""
    app = make_app(FREEZER_IGNORE_404_NOT_FOUND=True)
    app.add_url_rule("/x", "x", lambda: f'<a href="{url_for("y", n=1)}">y</a>')
    app.add_url_rule("/x/<name>", "item", lambda name: abort(404))
    app.add_url_rule("/y/<int:n>", "y", lambda n: "y")
    app.config["FREEZER_DESTINATION"] = str(tmp_path)
    freezer = Freezer(app, with_no_argument_rules=False)
    freezer.register_generator(lambda: iter(order))
    list(freezer.freeze_yield(jobs=jobs))
    assert files(tmp_path) == {"x": b'<a href="/y/1">y</a>', "y/1": b"y"}
    assert (sorted(freezer.pages), sorted(freezer.skipped)) == (["/x", "/y/1"], ["/x/gone"])


def test_a_clash_that_an_index_file_cannot_settle_names_both_pages(
    app: Flask, tmp_path: Path
) -> None:
    app.add_url_rule("/x", "x", lambda: "page x")
    app.add_url_rule("/x/", "folder", lambda: "folder x")
    app.add_url_rule("/x/popup", "popup", lambda: "the popup")
    with pytest.raises(PageError) as raised:
        freeze(app, tmp_path)
    assert str(raised.value) == (
        "/x: its file 'x' is the folder of another page's file, and 'x/index.html' is also"
        " that of /x/: one of the URLs has to change"
    )


def test_a_page_and_a_sibling_of_another_cannot_share_a_name(app: Flask, tmp_path: Path) -> None:
    app.add_url_rule("/notes", "notes", lambda: LONG_TEXT)
    app.add_url_rule(
        "/notes.gz", "packed", lambda: (b"\x1f\x8b", {"Content-Type": "application/octet-stream"})
    )
    with pytest.raises(PageError, match=r"its file 'notes.gz' is also that of /notes"):
        freeze(app, tmp_path)


def test_urls_that_name_one_file_two_ways_collide(app: Flask, tmp_path: Path) -> None:
    app.add_url_rule("/p/<path:name>", "page", lambda name: name)
    freezer = Freezer(app)

    @freezer.register_generator
    def page():  # type: ignore[no-untyped-def]
        yield "/p/\u00e9"
        yield "/p/e\u0301"  # the same name, decomposed: one file on macOS's file systems

    app.config["FREEZER_DESTINATION"] = str(tmp_path)
    with pytest.raises(
        PageError, match="/p/e\u0301: its file 'p/\u00e9' is also that of /p/\u00e9"
    ):
        freezer.freeze()


@pytest.mark.parametrize("url", ["/p/./a", "/p/a/../b", "/p//a"])
def test_a_url_no_browser_asks_for_is_refused_naming_it(
    app: Flask, tmp_path: Path, url: str
) -> None:
    """A browser resolves "." and ".." parts of a URL before it asks, and a file system reads
    them, and "//", as other names: such a page could never be fetched at its URL."""
    app.add_url_rule("/p/<path:name>", "page", lambda name: name, merge_slashes=False)
    freezer = Freezer(app)
    freezer.register_generator(lambda: [url])
    app.config["FREEZER_DESTINATION"] = str(tmp_path)
    with pytest.raises(PageError, match=re.escape(f"{url}: its file '{url[1:]}' has an empty")):
        freezer.freeze()
    assert not (tmp_path / "p").exists()
