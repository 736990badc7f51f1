"""A page's file and its precompressed siblings, written into a client folder."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from flask_ondemand.pagefiles import COMPRESS_MIN_SIZE, NameClash, PageFiles

LONG = b"<p>Long enough to be worth compressing.</p>" * 40


def opened(root: Path) -> PageFiles:
    files = PageFiles(root)
    files.open()
    return files


def test_an_empty_folder_is_written_into_without_checks(tmp_path: Path) -> None:
    files = opened(tmp_path / "client")
    assert files.fresh
    path = str(tmp_path / "client/long/index.html")
    files.write("/long/", path, LONG)
    assert files.write_compressed("/long/", path, LONG, "text/html; charset=utf-8") == (".gz",)
    assert gzip.decompress(Path(path + ".gz").read_bytes()) == LONG
    short = str(tmp_path / "client/short")
    below = b"x" * (COMPRESS_MIN_SIZE - 1)
    assert files.write_compressed("/short", short, below, "text/plain") == ()
    assert files.write_compressed("/logo.png", short, LONG, "image/png") == ()
    assert not Path(short + ".gz").exists()


def test_an_old_file_is_unlinked_never_written_through(tmp_path: Path) -> None:
    """It may be a hard link into the live build, which must not change under a server."""
    (tmp_path / "client/a").mkdir(parents=True)
    old = tmp_path / "client/a/index.html"
    old.write_bytes(b"old")
    os.link(old, tmp_path / "live")
    os.utime(old, (1, 1))
    files = opened(tmp_path / "client")
    assert not files.fresh
    files.write("/a/", str(old), b"old")  # the same bytes: the file, and its mtime, stay
    assert old.stat().st_mtime == 1
    files.write("/a/", str(old), b"new")
    assert (old.read_bytes(), (tmp_path / "live").read_bytes()) == (b"new", b"old")


def test_what_the_previous_build_left_in_the_way_is_removed(tmp_path: Path) -> None:
    (tmp_path / "client/x/index.html").parent.mkdir(parents=True)
    (tmp_path / "client/x/index.html").write_bytes(b"/x/ before")
    (tmp_path / "client/y").write_bytes(b"/y before")
    (tmp_path / "client/z.gz").write_bytes(b"stale")
    files = opened(tmp_path / "client")
    files.write("/x", str(tmp_path / "client/x"), b"/x now")  # a folder where the file goes
    files.write("/y/", str(tmp_path / "client/y/index.html"), b"/y/ now")  # a file in the way
    assert files.write_compressed("/z", str(tmp_path / "client/z"), b"short", "text/plain") == ()
    assert (tmp_path / "client/x").read_bytes() == b"/x now"
    assert (tmp_path / "client/y/index.html").read_bytes() == b"/y/ now"
    assert not (tmp_path / "client/z.gz").exists()  # a sibling from before, stale now


def test_a_page_and_a_folder_that_want_one_name_clash(tmp_path: Path) -> None:
    files = opened(tmp_path / "client")
    files.write("/x", str(tmp_path / "client/x"), b"/x")
    with pytest.raises(NameClash, match=r"/x/popup: cannot write 'popup': a page and a folder"):
        files.write("/x/popup", str(tmp_path / "client/x/popup"), b"/x/popup")
