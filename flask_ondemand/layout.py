"""The build folder's layout: its folder names, a page's file and its precompressed siblings,
and copying a build's files into one folder.

The build writes this layout, the server and the loader read it, and adapters copy from it; so
it imports nothing of theirs, and an adapter can read a finished build without the machinery
that makes one. A build folder ``DIR`` looks like this::

    DIR/server.py                     WSGI entry point: gunicorn --chdir DIR server:app
    DIR/current -> .builds/<id>       the live build
    DIR/client -> current/client      its prerendered files (after --only, those re-rendered)
    DIR/manifest.json -> current/manifest.json
    DIR/.builds/<id>/                 the live build, and the one before it
    DIR/.builds/<id>/base-client -> ../<base-id>/client     (a partial build only)
    DIR/cache/                        the route cache's folder store, which builds leave alone
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from whitenoise.media_types import MediaTypes

#: Where a build folder keeps its builds, the link to the live one, and a build's files.
BUILDS = ".builds"
CURRENT = "current"
CLIENT = "client"
#: The route cache's default store, beside the builds: entries outlive a build (see caching.py).
CACHE = "cache"
#: In a partial build: the link to the client folder of the whole build it lies on, which
#: holds the files its own client folder lacks.
BASE_CLIENT = "base-client"

#: The precompressed siblings a page's file may have, whichever encoders are installed.
SIBLING_SUFFIXES = (".gz", ".br")

_MEDIA_TYPES = MediaTypes()


def with_siblings(file: str, suffixes: Iterable[str] = SIBLING_SUFFIXES) -> list[str]:
    """A file's name and those of its siblings, as the file system sees them ("a//b" is
    "a/b")."""
    normal = os.path.normpath(file)
    return [normal, *(normal + suffix for suffix in suffixes)]


def stays_inside(file: str) -> bool:
    """Whether a relative file name stays inside the folder it is relative to.

    A lexical check is enough: nothing in a build's client folder is a symlink.
    """
    normal = os.path.normpath(file)
    outside = normal in (".", "..") or normal.startswith("../") or os.path.isabs(file)
    return bool(file) and not outside and "\0" not in file


def type_from_name(name: str) -> str:
    """Return the media type a server infers from a file name (WhiteNoise's table, which the
    nginx adapter writes into its config too)."""
    media_type: str = _MEDIA_TYPES.get_type(name)
    return media_type


_TEXT_TYPES = (
    "text/",
    "application/json",
    "application/javascript",
    "application/xml",
    "image/svg+xml",
)


def is_text_type(content_type: str) -> bool:
    """Whether a file of this type is text, which is worth compressing."""
    mimetype = content_type.split(";", 1)[0].strip().lower()
    return mimetype.startswith(_TEXT_TYPES) or mimetype.endswith(("+xml", "+json"))


def base_of(build_dir: Path | None) -> Path | None:
    """Return the real path of the client folder a partial build lies on, or None for a whole
    build."""
    if build_dir is None:
        return None
    link = build_dir / BASE_CLIENT
    return link.resolve() if link.is_symlink() else None


def live_build(out: Path) -> Path | None:
    """Return the folder of the build ``out`` serves now, or None if it has none."""
    current = out / CURRENT
    return current.resolve() if current.is_dir() else None


def copy_client_files(build_dir: Path, files: Iterable[str], target: Path) -> None:
    """Put all of a build's client files in one folder, ``target``, as hard links: its
    ``client/``, and for a partial build those of ``files`` (the manifest's) it takes from
    its base.
    """
    if (build_dir / CLIENT).is_dir():
        copy_linked(build_dir / CLIENT, target)
    else:  # deleted by hand: its pages are rendered again
        target.mkdir(parents=True, exist_ok=True)
    base = base_of(build_dir)
    if base is not None:
        link_from_base(base, files, target)


def link_from_base(base: Path, files: Iterable[str], target: Path) -> None:
    """Link each of ``files`` that ``target`` lacks from ``base``, with its precompressed
    siblings. A file ``target`` has keeps its own siblings, if any: they were written with it.
    """
    for file in files:
        if (target / file).exists():
            continue
        for name in with_siblings(file):
            if (base / name).is_file():
                (target / name).parent.mkdir(parents=True, exist_ok=True)
                link_or_copy(base / name, target / name)


def copy_linked(source: Path, target: Path) -> None:
    """Copy a folder as hard links: they cost no space and keep mtimes (and so ETags).

    Used to seed a build with the previous build's files, and by adapters whose host wants
    the client files in a folder of its own. Files are never written through a link.
    """
    shutil.copytree(source, target, copy_function=link_or_copy)


def link_or_copy(source: str | Path, target: str | Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # a file system without hard links
        shutil.copy2(source, target)
