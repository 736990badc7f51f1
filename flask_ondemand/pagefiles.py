"""Writing prerendered pages' files, and their precompressed siblings, into a client folder.

A build writes into a folder that starts empty, or (a whole build after another) as a copy of
the live build whose files are hard links: so an old file is unlinked, never written through,
and what the previous build left in the way of a page (a folder where a file now goes, or the
reverse) is removed first. A folder that started empty needs none of those checks, which saves
a ``stat`` a file on the hot path of every build.
"""

from __future__ import annotations

import gzip
import os
import shutil
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import BinaryIO

from .errors import PageError
from .layout import SIBLING_SUFFIXES, is_text_type

try:  # the "brotli" extra
    import brotli
except ImportError:  # pragma: no cover - depends on what is installed
    brotli = None

#: Text files smaller than this are not worth precompressing: they fit in one packet anyway.
COMPRESS_MIN_SIZE = 1024

# Each precompressed sibling's suffix and encoder; brotli's only with the extra installed.
_ENCODERS: list[tuple[str, Callable[[bytes], bytes]]] = [
    (".gz", lambda data: gzip.compress(data, compresslevel=9, mtime=0)),
    *([(".br", brotli.compress)] if brotli is not None else []),
]


class NameClash(PageError):
    """A page's file and another page's folder want one name (``/x`` and ``/x/popup``)."""


class PageFiles:
    """The pages' files under ``root``, written one at a time in this process.

    Call :meth:`open` first: it makes ``root`` and notes whether it is empty.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        #: ``root`` as a string, which the names of its files start with.
        self.root_path = str(root)
        #: Whether ``root`` was empty when opened: then no file needs checking before writing.
        self.fresh = False

    def open(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        with os.scandir(self.root) as entries:
            self.fresh = next(entries, None) is None

    def write(self, url: str, path: str, content: bytes) -> None:
        """Write ``content`` at ``path``, the file (or a sibling) of ``url``'s page, unless the
        file there has those bytes already: its mtime, and so its ETag, stays.

        :raises NameClash: when a page's file and another's folder want the name.
        """
        try:
            if not self.fresh:
                if os.path.isfile(path):
                    with open(path, "rb") as old:
                        if old.read() == content:
                            return
                    os.unlink(path)
                else:
                    self._clear_the_way(path)
            try:
                new = _open_new(path)
            except IsADirectoryError:
                # An empty folder is no page's: made ahead for a URL that wrote nothing (an
                # ignored 404), or for one whose file is not written yet, which then clashes.
                if not _removed_if_empty(path):
                    raise
                new = _open_new(path)
            with new:
                new.write(content)
        except (FileExistsError, NotADirectoryError, IsADirectoryError) as error:
            name = os.path.basename(path)
            raise NameClash(
                url, f"cannot write {name!r}: a page and a folder want the same name ({error})"
            ) from None

    def write_compressed(
        self, url: str, path: str, content: bytes, content_type: str
    ) -> tuple[str, ...]:
        """Write gzip (and brotli, if installed) siblings of a text file worth compressing, for
        servers to send when the client accepts them; remove the previous build's others.
        Return the suffixes written."""
        written = []
        if len(content) >= COMPRESS_MIN_SIZE and is_text_type(content_type):
            for suffix, encode in _ENCODERS:
                packed = encode(content)
                if len(packed) < len(content) * 0.95:  # not worth it otherwise
                    self.write(url, path + suffix, packed)
                    written.append(suffix)
        if not self.fresh:
            for suffix in SIBLING_SUFFIXES:
                if suffix not in written and os.path.isfile(path + suffix):
                    os.unlink(path + suffix)  # the previous build's, stale now
        return tuple(written)

    def make_folder_ahead(self, folder: str) -> None:
        """Make ``folder`` (a name inside ``root``) for a page's file before the page is
        rendered. Whatever stops it is left for :meth:`write` to find and report."""
        path = f"{self.root_path}/{folder}"
        try:
            os.mkdir(path)  # one system call for most: their folder is in a folder made before
        except FileNotFoundError:
            with suppress(OSError):
                os.makedirs(path, exist_ok=True)
        except OSError:
            return  # there already, or a file is in the way (the page's write says so)

    def remove_empty_folders(self, folder: str) -> None:
        """Remove ``folder`` (a name inside ``root``), and those it is in, while they are
        empty: made ahead for a page that wrote no file after all."""
        with suppress(OSError):  # not empty (or not there): done
            while folder:
                os.rmdir(f"{self.root_path}/{folder}")
                folder = folder.rpartition("/")[0]

    def _clear_the_way(self, path: str) -> None:
        """Remove what the previous build left where this page now goes: a folder of the same
        name (``/x/`` became ``/x``), or a file where a folder is needed (``/x`` became
        ``/x/``). What this build itself wrote there cannot be in the way, unless two of its
        URLs want one name, which the build detects after rendering."""
        if os.path.isdir(path):
            shutil.rmtree(path)
        folder = os.path.dirname(path)
        while folder and len(folder) > len(self.root_path):
            if os.path.isfile(folder):
                os.unlink(folder)
                break
            folder = os.path.dirname(folder)


def _open_new(path: str) -> BinaryIO:
    """Open the file at ``path`` for writing, making its folder if there is none: for the
    first file of a folder, unless it was made ahead (see :meth:`PageFiles.make_folder_ahead`)."""
    try:
        return open(path, "wb")
    except FileNotFoundError:
        _make_folder(os.path.dirname(path))
        return open(path, "wb")


def _removed_if_empty(folder: str) -> bool:
    try:
        os.rmdir(folder)
    except OSError:  # not empty: another page's file is in it
        return False
    return True


def _make_folder(folder: str) -> None:
    """Make ``folder`` and what it is in. Most pages' folders are new, in a folder that
    exists: one ``mkdir``, where ``os.makedirs`` would first look at the parent."""
    try:
        os.mkdir(folder)
    except FileNotFoundError:
        os.makedirs(folder, exist_ok=True)
    except FileExistsError:
        if not os.path.isdir(folder):
            raise
