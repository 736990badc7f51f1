"""Vercel: the Build Output API, version 3.

Writes ``.vercel/output/`` in the build's own folder: ``static/`` (the client files, without
the build's ``.gz`` copies: Vercel compresses by itself), one Python function
``functions/ondemand.func/``, and ``config.json``. Deploy with ``vercel deploy --prebuilt`` from
``DIR/current``: the CLI reads ``.vercel`` with ``lstat`` and would upload nothing through a
symlink, so ``DIR`` has no link to it. The project's link (``.vercel/project.json``, which
``vercel link`` or the first deploy writes there) is carried over to each new build.

The function has the shape ``vercel build`` gives a Python function today: Vercel's launcher
``vc__handler__python.py`` (handler ``vc__handler__python.vc_handler``) starts the
``vercel-runtime`` package, which serves ``app`` from ``index.py``, the slim app, as a WSGI app;
the packages go in ``_vendor/``, installed for the function's Python on x86_64 Linux (see
bundle.py); responses stream. Vercel's edge is a proxy in front of it, so its
``X-Forwarded-For`` and ``-Proto`` are trusted (``ONDEMAND_PROXY_FIX`` overrides).

``config.json``'s routes send, in order: prerendered redirects with their status; a request
with a cookie of ``ONDEMAND_LIVE_COOKIES`` for a page of a route that takes them, to the
function (a route per cookie, each with a ``has`` cookie condition, before the files' headers,
which are not the live page's); a GET or HEAD of a ``prerender(live_query=True)`` page whose
query has a parameter the page looked up while it was built, to the function (a route per
parameter, each with a ``has`` query condition: a route's ``src`` never sees the query, and a
condition names its parameter; any other query gets the file, which is what the app would
render for it), or every GET of it, if the page read its query whole (warned); headers of
the files (the site's and a page's own, for each
page URL); a page whose file its URL does not name (``/x`` at ``x/index.html``) to that file,
whether or not Vercel would find it, and that folder's URL to the function; a page's file by
its own name (``/about/index.html``) and methods other than GET to the function (so a form
posting to its own page reaches it); the pages of cached routes to the function, whose answers
Vercel's CDN keeps by their ``s-maxage`` and ``stale-while-revalidate``; then
``{"handle": "filesystem"}``; then the on-demand rules, and everything else (the app's 404
page) to the function.

Options: ``ONDEMAND_VERCEL_RUNTIME`` (default "python3.12"; one of those Vercel lists),
``ONDEMAND_BUNDLE_INCLUDE`` (extra project files the function needs, see bundle.py).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import BuildError
from ..layout import CURRENT
from ..manifest import Header
from ..routes import FILE_METHODS
from . import Deployment, Site, write_json
from .bundle import linux, write_bundle
from .cdn import (
    INDEX,
    copy_files,
    file_name_urls,
    live_pages,
    live_query_pages,
    matched_keys,
    page_files,
    renamed_pages,
    rule_regex,
)

FUNCTION = "ondemand"
#: The Python runtimes Vercel lists (vercel 58's build-utils: SUPPORTED_AL2023_RUNTIMES).
RUNTIMES = ("python3.12", "python3.13", "python3.14")
#: Vercel's Python launcher, which `vercel build` vendors into every Python function.
LAUNCHER_PACKAGE = "vercel-runtime==0.24.1"
VENDOR = "_vendor"
LAUNCHER = "vc__handler__python"
ENTRY = "index"
#: A route's ``src`` Vercel accepts; longer alternations are split.
_SRC_LIMIT = 4000

_ENTRY = '''\
"""The on-demand half of a flask_ondemand build, as a Vercel function: Vercel's launcher
(vc__handler__python.py) serves ``app``, a WSGI app."""

from flask_ondemand.loader import load_slim_app

# Vercel's edge is the one proxy in front of the function.
app = load_slim_app(__file__, proxies=1)
'''

# As `vercel build` (@vercel/python 6) writes it: the launcher finds the entry through these
# variables, and the vendored packages come before any others.
_LAUNCHER = f'''\
import importlib
import os
import os.path
import site
import sys
import time

# Cold start baseline, read back by vercel_runtime.vc_init
_vc_boot_start_ms = int(time.monotonic() * 1000)

_here = os.path.dirname(__file__)

os.environ.update({{
  "__VC_PY_BOOT_START_MS": str(_vc_boot_start_ms),
  "__VC_HANDLER_MODULE_NAME": "{ENTRY}",
  "__VC_HANDLER_ENTRYPOINT": "{ENTRY}.py",
  "__VC_HANDLER_ENTRYPOINT_ABS": os.path.join(_here, "{ENTRY}.py"),
  "__VC_HANDLER_VENDOR_DIR": "{VENDOR}",
  "__VC_HANDLER_VARIABLE_NAME": "app"
}})

_vendor = os.path.normpath(os.path.join(_here, "{VENDOR}"))

if os.path.isdir(_vendor):
    # Process .pth files like a real site-packages dir
    site.addsitedir(_vendor)
    while _vendor in sys.path:
        sys.path.remove(_vendor)
    # Put vendored deps ahead of site-packages but after the script dir
    idx = 1 if (sys.path and sys.path[0] in ("", _here)) else 0
    sys.path.insert(idx, _vendor)
    importlib.invalidate_caches()

from vercel_runtime.vc_init import vc_handler  # noqa: E402,F401
'''


class VercelAdapter:
    name = "vercel"

    def write(self, site: Site) -> Deployment:
        runtime = site.option(self.name, "runtime") or RUNTIMES[0]
        if runtime not in RUNTIMES:
            raise BuildError(
                f"ONDEMAND_VERCEL_RUNTIME {runtime!r} is not a Python runtime Vercel lists:"
                f" {', '.join(RUNTIMES)}"
            )
        dot_vercel = site.build_dir / ".vercel"
        output = dot_vercel / "output"
        copy_files(site, output / "static")
        function = output / "functions" / f"{FUNCTION}.func"
        write_bundle(
            site,
            function,
            target=linux(runtime.removeprefix("python"), "x86_64"),
            packages=function / VENDOR,
            extra_requirements=[LAUNCHER_PACKAGE],
        )
        (function / f"{ENTRY}.py").write_text(_ENTRY, encoding="utf-8")
        (function / f"{LAUNCHER}.py").write_text(_LAUNCHER, encoding="utf-8")
        write_json(
            function / ".vc-config.json",
            {
                "handler": f"{LAUNCHER}.vc_handler",
                "runtime": runtime,
                "architecture": "x86_64",
                "environment": {"PYTHONPATH": VENDOR, "PYTHONDONTWRITEBYTECODE": "1"},
                "supportsResponseStreaming": True,
            },
        )
        write_json(output / "config.json", config(site))
        _keep_project_link(site, dot_vercel)
        return Deployment(
            (), f"cd {site.shown(site.out_dir)}/{CURRENT} && vercel deploy --prebuilt"
        )


def _keep_project_link(site: Site, dot_vercel: Path) -> None:
    """Copy what ``vercel link`` or ``vercel pull`` wrote in the live build's ``.vercel``
    (the project's id, its settings), so that the next deploy goes to the same project."""
    previous = site.out_dir / CURRENT / ".vercel"
    if previous.is_dir():
        for entry in previous.iterdir():
            if entry.name != "output":
                copy = shutil.copytree if entry.is_dir() else shutil.copy2
                copy(entry, dot_vercel / entry.name)


def config(site: Site) -> dict[str, Any]:
    """The ``config.json`` of the build: routes and overrides, as described above."""
    manifest = site.manifest
    destination = f"/{FUNCTION}"
    routes: list[dict[str, Any]] = []
    for url, redirect in sorted(manifest.redirects.items()):
        routes.append(
            {
                "src": _exact([url]),
                "status": redirect.status,
                "headers": {"Location": redirect.location},
            }
        )
    routes += _live_routes(site, destination)
    routes += _live_query_routes(site, destination)
    # Files with the same headers share a route: Vercel allows 2048 routes.
    by_headers: dict[tuple[Header, ...], list[str]] = {}
    for url, file in page_files(site):
        if headers := manifest.headers_for(file):
            by_headers.setdefault(tuple(headers), []).append(url)
    for pairs, urls in sorted(by_headers.items(), key=lambda item: item[1][0]):
        for group in _groups(urls):
            routes.append({"src": _exact(group), "headers": _joined(pairs), "continue": True})
    renamed = renamed_pages(site)
    for url, file in sorted(renamed.items()):
        # /x, whose file is x/index.html: a rewrite to it. Its folder's URL is none.
        routes.append({"src": _exact([url]), "methods": ["GET", "HEAD"], "dest": file})
        folder = file.removesuffix(INDEX)
        routes.append({"src": f"^{re.escape(folder)}$", "dest": destination})
    if file_name_urls(site):
        # Served by Vercel as a file of its own, it would lack its page's headers.
        pages = [url for url, _ in page_files(site) if url.endswith("/" + INDEX)]
        routes.append({"src": _file_names(pages), "dest": destination})
    for entry in [*manifest.prerendered, *manifest.on_demand]:
        other = sorted(set(entry.methods) - FILE_METHODS)
        if other:
            routes.append({"src": rule_pattern(entry.rule), "methods": other, "dest": destination})
    # Pages of cached routes: the function answers them, and Vercel's CDN keeps its answers
    # as their Cache-Control says (s-maxage, stale-while-revalidate).
    for group in _groups(sorted(manifest.cached)):
        routes.append({"src": _exact(group), "dest": destination})
    routes.append({"handle": "filesystem"})
    for entry in manifest.on_demand:
        if "GET" in entry.methods:
            routes.append({"src": rule_pattern(entry.rule), "dest": destination})
    routes.append({"src": "^/.*$", "dest": destination})
    overrides = {
        file: {"contentType": content_type} for file, content_type in manifest.content_types.items()
    }
    return {"version": 3, "routes": routes, "overrides": overrides}


def rule_pattern(rule: str) -> str:
    """A Werkzeug rule as the regular expression of a Vercel route."""
    return rule_regex(rule)


def _live_routes(site: Site, destination: str) -> list[dict[str, Any]]:
    """A visitor with a live cookie gets a live page from the function: a route for each
    cookie and route, since the conditions of one ``has`` must all hold."""
    live = live_pages(site)
    if live is None:
        return []
    routes = []
    for rule, pattern in live.patterns:
        if len(pattern) > _SRC_LIMIT:
            raise BuildError(
                f"vercel: the pages of {rule} that take live cookies need a route of"
                f" {len(pattern)} characters, over Vercel's {_SRC_LIMIT}: too many other pages"
                " match its rule"
            )
        for name in live.cookies:
            has = [{"type": "cookie", "key": name}]
            routes.append(
                {"src": pattern, "methods": ["GET", "HEAD"], "has": has, "dest": destination}
            )
    return routes


def _live_query_routes(site: Site, destination: str) -> list[dict[str, Any]]:
    """A GET of a ``live_query`` page with a query string goes to the function: a route for
    each parameter its pages look up, since a route's ``src`` is matched against the path
    alone; all its GETs, if Vercel cannot tell its queries apart."""
    routes = []
    for live in live_query_pages(site):
        keys = matched_keys(live, "vercel", "function")
        conditions = [None] if keys is None else [{"type": "query", "key": k} for k in keys]
        for group in _groups(list(live.urls)):
            for condition in conditions:
                route: dict[str, Any] = {"src": _exact(group), "methods": ["GET", "HEAD"]}
                if condition is not None:
                    route["has"] = [condition]
                routes.append({**route, "dest": destination})
    return routes


def _exact(urls: list[str]) -> str:
    """A route matching these URLs, a folder's without its slash too (Vercel serves its
    index.html there as well)."""
    patterns = [
        re.escape(url.removesuffix("/")) + ("/?" if url.endswith("/") else "") for url in urls
    ]
    return f"^(?:{'|'.join(patterns)})$" if len(patterns) > 1 else f"^{patterns[0]}$"


def _groups(urls: list[str]) -> Iterable[list[str]]:
    group: list[str] = []
    size = 0
    for url in urls:
        if group and size + len(url) * 2 > _SRC_LIMIT:
            yield group
            group, size = [], 0
        group.append(url)
        size += len(url) * 2 + 4
    if group:
        yield group


def _file_names(pages: list[str]) -> str:
    """A route for folder pages' files by their own names, ``/about/index.html``, but the
    pages whose URL ends so."""
    but = f"(?!(?:{'|'.join(map(re.escape, pages))})$)" if pages else ""
    return rf"^{but}/(?:.*/)?{re.escape(INDEX)}$"


def _joined(pairs: tuple[Header, ...]) -> dict[str, str]:
    """Headers as Vercel's route object holds them: one value a name, repeated values joined
    with commas, as HTTP reads them."""
    joined: dict[str, str] = {}
    for name, value in pairs:
        joined[name] = f"{joined[name]}, {value}" if name in joined else value
    return joined
