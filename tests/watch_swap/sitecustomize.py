"""A reader of a build folder, hooked between every two steps of a build that a test runs with
this folder on PYTHONPATH (Python imports ``sitecustomize`` at start-up).

Python raises an audit event before each call that changes the file system: rename (and
replace), remove, rmdir, mkdir, symlink, link, rmtree. Before each one, this hook does what a
server does at any moment: it follows ``DIR/current`` to the live build's manifest, and
``DIR/client`` to its files. Every state the folder passes through lies between two such
calls, so the log shows what a reader would find in each, with no timing involved.

``$WATCH_SWAP_DIR`` is DIR, and ``$WATCH_SWAP_LOG`` the log: a line per call, tab-separated,
of the event, the path it changes, and the name of the build ``current`` leads to (or
MISSING if a reader would find no build).
"""

from __future__ import annotations

import os
import sys
from typing import Any

_CHANGES = frozenset(
    {"os.rename", "os.remove", "os.rmdir", "os.mkdir", "os.symlink", "os.link", "shutil.rmtree"}
)
# The events whose second argument is the path they change (rename's and symlink's target).
_TARGET_SECOND = frozenset({"os.rename", "os.symlink", "os.link"})


def _live_build(folder: str) -> str:
    current = os.path.join(folder, "current")
    manifest = os.path.join(current, "manifest.json")
    if os.path.isfile(manifest) and os.path.isdir(os.path.join(folder, "client")):
        return os.path.basename(os.path.realpath(current))
    return "MISSING"


def _install(folder: str, log: str) -> None:
    def read_before(event: str, args: tuple[Any, ...]) -> None:
        if event not in _CHANGES:
            return
        path = args[1] if event in _TARGET_SECOND else args[0]
        path = os.fsdecode(path) if isinstance(path, (str, bytes, os.PathLike)) else str(path)
        with open(log, "a", encoding="utf-8") as lines:  # "open" is no change: not hooked
            lines.write(f"{event}\t{path}\t{_live_build(folder)}\n")

    sys.addaudithook(read_before)


if os.environ.get("WATCH_SWAP_DIR") and os.environ.get("WATCH_SWAP_LOG"):
    _install(os.environ["WATCH_SWAP_DIR"], os.environ["WATCH_SWAP_LOG"])
