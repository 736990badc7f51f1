"""Loading a build for serving: what ``DIR/server.py`` runs at start-up."""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable
from os import PathLike
from pathlib import Path
from typing import Any

from flask import Flask
from flask.cli import NoAppException, locate_app, prepare_import
from werkzeug.middleware.proxy_fix import ProxyFix
from whitenoise.string_utils import decode_path_info

from . import caching, islands
from .errors import ConfigError, ManifestError
from .extension import require_ondemand
from .layout import CACHE, CLIENT, CURRENT, base_of
from .manifest import MANIFEST_NAME, Manifest
from .server import SiteServer, _private
from .slim import allowed_methods, live_renderer, make_slim, settle


def load_build(entry: str | PathLike[str]) -> LiveSite:
    """Return the WSGI app that serves the build folder holding ``entry`` (``DIR/server.py``).

    It imports the user's app as the build recorded and makes it slim, once. It serves the live
    build, and moves to a new one as soon as a build swaps it in (see :class:`LiveSite`).

    Reads ``ONDEMAND_MAX_AGE``, ``ONDEMAND_PROXY_FIX`` and the route cache's settings
    (``ONDEMAND_CACHE_*``): its default store is the folder ``DIR/cache``.
    """
    out = Path(entry).absolute().parent
    try:
        # Read the link once: the build it names is the one loaded, even if another build is
        # swapped in while the app imports (the first request then moves to that one).
        target = os.readlink(out / CURRENT)
    except OSError:
        raise ManifestError(
            f"{out} holds no build. Run `flask ondemand build --out {out}`."
        ) from None
    build_dir = (out / target).resolve()
    manifest = Manifest.read(build_dir / MANIFEST_NAME)
    app = import_app(manifest.app_import, out / manifest.project_root)
    require_ondemand(app)  # at start-up, not as a 500 from the first page that needs it
    make_slim(app, manifest.prerendered)  # the SiteServer redirects folder URLs itself
    islands.serve(app)
    settle(app)
    trust_proxies(app)
    # The route cache's folder is beside the builds: it outlives them, as the server does.
    caching.serve(app, default_folder=out / CACHE, cdn_headers=manifest.cdn_cache_headers)
    return LiveSite(out, app, target, manifest)


class LiveSite:
    """Serves the live build of a build folder, and follows its ``current`` link.

    Each request first reads the link (one ``readlink``, about a microsecond): when a build
    has swapped a new one in, the files, types, headers and redirects of the new build are
    loaded once and served from then on. A response already being sent goes on from the build
    it started with. The slim app stays the one imported at start-up: code changes need a new
    server process (a HUP to gunicorn or Granian). A new build whose manifest cannot be read is
    logged and ignored: the previous one goes on being served.
    """

    def __init__(self, out: Path, app: Flask, target: str, manifest: Manifest) -> None:
        self.app = app
        # A str: a Path would be made one again for every request's readlink.
        self._link = os.fspath(out / CURRENT)
        self._prerendered = manifest.prerendered_routes()
        self._target = target
        self._site = self._serve((out / target).resolve(), manifest)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        try:
            target = os.readlink(self._link)
        except OSError:  # the link is being replaced, or gone: keep what we serve
            target = self._target
        if target != self._target:
            self._switch(target)
        return self._site(environ, start_response)

    def _switch(self, target: str) -> None:
        build_dir = (Path(self._link).parent / target).resolve()
        try:
            manifest = Manifest.read(build_dir / MANIFEST_NAME)
        except ManifestError as error:
            self.app.logger.error("not serving the new build %s: %s", build_dir, error)
            self._target = target  # do not try it again for every request
            return
        if manifest.prerendered_routes() != self._prerendered:
            self.app.logger.warning(
                "the build at %s prerenders other routes than this server's app knows:"
                " reload the server (gunicorn or Granian: kill -HUP) to load the new code",
                build_dir,
            )
        self._site, self._target = self._serve(build_dir, manifest), target

    def _serve(self, build_dir: Path, manifest: Manifest) -> SiteServer:
        app = self.app
        return SiteServer(
            build_dir / CLIENT,
            app,
            manifest.files,
            content_types=manifest.content_types,
            headers_for=manifest.headers_for,
            redirects=manifest.redirects,
            methods_for=functools.partial(allowed_methods, app),
            max_age=int(app.config.get("ONDEMAND_MAX_AGE", 0)),
            base_dir=base_of(build_dir),
            live_query=manifest.live_query,
            renders_live=live_renderer(app, manifest.prerendered),
            cached=manifest.cached,
        )


def load_slim_app(entry: str | PathLike[str], *, proxies: int = 0) -> Flask:
    """Return the slim app of the function bundle holding ``entry``, for hosts whose own CDN
    serves the files: the bundle's ``manifest.json`` sits beside ``entry``, with the app's code.

    :param proxies: how many proxies the host always puts in front of the function, trusted
        unless ``ONDEMAND_PROXY_FIX`` says otherwise.

    Reads ``ONDEMAND_PROXY_FIX`` and the route cache's settings (``ONDEMAND_CACHE_*``): it
    keeps no store unless ``ONDEMAND_CACHE_URL`` names one, as the host's CDN caches.
    """
    folder = Path(entry).absolute().parent
    manifest = Manifest.read(folder / MANIFEST_NAME)
    app = import_app(manifest.app_import, folder / manifest.project_root)
    require_ondemand(app)
    make_slim(app, manifest.prerendered, file_urls=manifest.files)
    islands.serve(app)
    settle(app)
    renders_live = live_renderer(app, manifest.prerendered)
    if renders_live is not None:
        app.wsgi_app = _LivePagesPrivate(  # type: ignore[method-assign]
            app.wsgi_app, renders_live, frozenset(manifest.files)
        )
    trust_proxies(app, default=proxies)
    caching.serve(app, default_folder=None, cdn_headers=manifest.cdn_cache_headers)
    return app


class _LivePagesPrivate:
    """Make the function's answer for a page its host sent it for a live cookie personal, as
    :class:`SiteServer` does: ``Cache-Control: private`` and ``Vary: Cookie``, so that no
    shared cache, the host's CDN among them, gives it to anyone else."""

    def __init__(
        self, app: Any, renders_live: Callable[[dict[str, Any]], bool], files: frozenset[str]
    ) -> None:
        self.app, self.renders_live, self.files = app, renders_live, files

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if (
            environ.get("REQUEST_METHOD") in ("GET", "HEAD")
            and decode_path_info(environ.get("PATH_INFO", "")) in self.files
            and self.renders_live(environ)
        ):
            start_response = _private(start_response)
        return self.app(environ, start_response)


def trust_proxies(app: Flask, *, default: int = 0) -> None:
    """Apply Werkzeug's ``ProxyFix`` to ``app`` for the number of proxies in front of it, so
    that ``X-Forwarded-Proto`` and ``X-Forwarded-For`` from them tell Flask the scheme (and so
    whether cookies are Secure) and the client's address. Such headers from anyone else are
    ignored, which is why the count must not exceed the proxies that set them.

    Reads ``ONDEMAND_PROXY_FIX``: a count, or None for ``default`` (the host's).
    """
    count = app.config.get("ONDEMAND_PROXY_FIX")
    count = default if count is None else count
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ConfigError(f"ONDEMAND_PROXY_FIX must be a count of proxies, not {count!r}")
    if count:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count)  # type: ignore[method-assign]


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
