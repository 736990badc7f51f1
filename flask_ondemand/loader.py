"""Loading a build for serving: what ``DIR/server.py`` runs at start-up."""

from __future__ import annotations

import functools
import re
from os import PathLike
from pathlib import Path

from flask import Flask
from flask.cli import NoAppException, locate_app, prepare_import

from .errors import ManifestError
from .manifest import MANIFEST_NAME, Manifest
from .server import SiteServer
from .slim import allowed_methods, make_slim

#: The layout of a build folder DIR: its builds live in DIR/.builds, and DIR/current links to
#: the live one (flask_ondemand/build.py writes it).
BUILDS = ".builds"
CURRENT = "current"


def load_build(entry: str | PathLike[str]) -> SiteServer:
    """Return the WSGI app that serves the build folder holding ``entry`` (``DIR/server.py``).

    Everything is read once, here: the manifest, the map of files, and the user's app, which is
    imported as the build recorded and made slim.

    Reads ``ONDEMAND_MAX_AGE``.
    """
    out = Path(entry).absolute().parent
    build_dir = live_build(out)
    if build_dir is None:
        raise ManifestError(f"{out} holds no build. Run `flask ondemand build --out {out}`.")
    manifest = Manifest.read(build_dir / MANIFEST_NAME)
    app = import_app(manifest.app_import, out / manifest.project_root)
    make_slim(app, manifest.prerendered)  # the SiteServer redirects folder URLs itself
    return SiteServer(
        build_dir / "client",
        app,
        manifest.files,
        content_types=manifest.content_types,
        headers=manifest.headers,
        redirects={url: (r.status, r.location) for url, r in manifest.redirects.items()},
        methods_for=functools.partial(allowed_methods, app),
        max_age=int(app.config.get("ONDEMAND_MAX_AGE", 0)),
    )


def load_slim_app(entry: str | PathLike[str]) -> Flask:
    """Return the slim app of the function bundle holding ``entry``, for hosts whose own CDN
    serves the files: the bundle's ``manifest.json`` sits beside ``entry``, with the app's code.
    """
    folder = Path(entry).absolute().parent
    manifest = Manifest.read(folder / MANIFEST_NAME)
    app = import_app(manifest.app_import, folder / manifest.project_root)
    return make_slim(app, manifest.prerendered, file_urls=manifest.files)


def import_app(import_path: str | None, project_root: Path) -> Flask:
    """Import the app as ``flask --app import_path`` would from ``project_root``.

    None means Flask's own discovery: an app in ``wsgi.py`` or ``app.py``.
    """
    if import_path is None:
        for candidate in ("wsgi.py", "app.py"):
            if (project_root / candidate).is_file():
                return locate_app(prepare_import(str(project_root / candidate)), None)
        raise NoAppException(
            f"No wsgi.py or app.py in {project_root.resolve()}, and the build recorded no"
            " --app. Set ONDEMAND_APP_IMPORT, or build with `flask --app ...`."
        )
    # Split as Flask does: "module:factory()", but not at the colon of "C:\\path".
    path, *name = re.split(r":(?![\\/])", import_path, maxsplit=1)
    return locate_app(prepare_import(str(project_root / path)), name[0] if name else None)


def live_build(out: Path) -> Path | None:
    """Return the folder of the build ``out`` serves now, or None if it has none."""
    current = out / CURRENT
    return current.resolve() if current.is_dir() else None
