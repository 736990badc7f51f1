"""The freeze's record of the pages it wrote, on disk rather than in memory."""

from __future__ import annotations

import pytest

from flask_ondemand.builtpages import BuiltPages, NameTaken
from flask_ondemand.render import BuiltPage

ABOUT = BuiltPage(
    "about/index.html",
    "text/html; charset=utf-8",
    headers=(("X-Frame-Options", "DENY"), ("Link", "</a>"), ("Link", "</b>")),
    compressed=(".gz",),
    live_query=True,
    endpoint="about",
)
OLD = BuiltPage("old/index.html", redirect=(301, "/about/"))
KEPT = BuiltPage("hello", kept=True)


@pytest.fixture
def pages() -> BuiltPages:
    record = BuiltPages()
    for url, page in [("/old/", OLD), ("/about/", ABOUT), ("/hello", KEPT)]:
        record.add(url, page)
    return record


def test_pages_read_back_as_they_were_added_in_url_order(pages: BuiltPages) -> None:
    assert pages["/about/"] == ABOUT
    assert pages["/old/"] == OLD
    assert list(pages) == ["/about/", "/hello", "/old/"]
    assert dict(pages.items()) == {"/about/": ABOUT, "/hello": KEPT, "/old/": OLD}
    assert list(pages.values()) == [ABOUT, KEPT, OLD]
    assert (len(pages), "/hello" in pages, "/nope" in pages) == (3, True, False)
    with pytest.raises(KeyError):
        pages["/nope"]


def test_an_empty_record_opens_nothing() -> None:
    pages = BuiltPages()
    assert (len(pages), list(pages), "/" in pages, pages.owner_of("x")) == (0, [], False, None)
    assert list(pages.folders()) == []
    assert not pages.has_inside("x")


def test_a_file_or_sibling_of_another_page_is_refused_naming_it(pages: BuiltPages) -> None:
    for url, page, name in [
        ("/about", BuiltPage("about/index.html"), "about/index.html"),
        ("/gz", BuiltPage("about/index.html.gz"), "about/index.html.gz"),  # a sibling
        ("/other/", BuiltPage("other/index.html", compressed=(".gz",)), None),
    ]:
        if name is None:
            pages.add(url, page)
            continue
        with pytest.raises(NameTaken, match=f"its file '{name}' is also that of /about/"):
            pages.add(url, page)
        assert url not in pages
        assert pages.owner_of(name) == "/about/"
    names = pages.names()
    assert "other/index.html.gz" in names
    assert "other/index.html.br" not in names


def test_a_page_rendered_again_replaces_its_file_and_names(pages: BuiltPages) -> None:
    moved = BuiltPage("hello/index.html")
    pages.replace("/hello", moved)
    assert pages["/hello"] == moved
    assert (pages.owner_of("hello"), pages.owner_of("hello/index.html")) == (None, "/hello")


def test_pages_whose_file_is_another_pages_folder(pages: BuiltPages) -> None:
    pages.add("/hello/popup", BuiltPage("hello/popup"))
    pages.add("/hello-world", BuiltPage("hello-world"))  # sorts between, and is no folder's
    assert list(pages.folders()) == [("/hello", "hello")]
    assert pages.has_inside("hello")
    assert not pages.has_inside("hello-world")
    assert pages.has_inside("about")  # about/index.html


def test_the_pages_rendered_now_apart_from_those_kept(pages: BuiltPages) -> None:
    assert pages.count_rendered() == 2
    assert list(pages.items_where(kept=True)) == [("/hello", KEPT)]
    assert list(pages.items_where(kept=False)) == [("/about/", ABOUT), ("/old/", OLD)]
    assert BuiltPages().count_rendered() == 0


def test_what_a_manifest_needs_of_the_pages_rendered_now(pages: BuiltPages) -> None:
    assert list(pages.rendered_rows()) == [
        ("/about/", "about/index.html", ABOUT.content_type, None, ABOUT.headers, True, "about"),
        ("/old/", "old/index.html", None, (301, "/about/"), (), False, None),
    ]


def test_the_sets_of_headers_pages_rendered_now_have_are_counted(pages: BuiltPages) -> None:
    pages.add("/about/more", BuiltPage("about/more", headers=ABOUT.headers))
    pages.add("/kept-too", BuiltPage("kept-too", headers=ABOUT.headers, kept=True))
    assert sorted(pages.header_sets()) == [((), 1), (ABOUT.headers, 2)]  # the kept one aside
    assert list(BuiltPages().header_sets()) == []
