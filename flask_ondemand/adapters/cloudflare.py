"""Cloudflare: a Python Worker with static assets, as pywrangler deploys it.

Writes ``cloudflare/`` in the build's own folder, a Wrangler project (deploy it from
``DIR/current/cloudflare`` with ``uv run pywrangler deploy``):

- ``pyproject.toml``: the packages the app imports, which pywrangler installs for Pyodide
  (pinned where they are pure Python; a compiled one takes the version Pyodide has), and
  ``workers-py`` (pywrangler) for development.
- ``wrangler.toml``: the ``python_workers`` flag, a ``compatibility_date`` current wrangler
  releases accept, ``[[rules]]`` that upload the bundle's data files (the manifest, templates)
  beside its ``*.py``, and ``[assets]``: Cloudflare serves an asset when one matches and runs
  the Worker otherwise; ``run_worker_first`` sends it the on-demand rules' URLs first, the URLs
  of pages that also take other methods (a form posting to its page), whose GET the Worker
  hands back to the assets, those of routes that take live cookies: the Worker renders such
  a page for a request with a cookie of ``ONDEMAND_LIVE_COOKIES`` (private, as the wsgi build
  does), and hands any other back to the assets (to the app if no asset answers, a URL the
  build did not produce); and the pages of ``prerender(live_query=True)`` routes, which the
  Worker renders for a GET with a query string and hands back to the assets without (an
  asset is matched by its path alone, and so is ``run_worker_first``).
- ``public/``: the client files without the build's ``.gz`` copies (Cloudflare compresses),
  with ``_redirects`` (the prerendered redirects, and a 200 rewrite of a page whose file its
  URL does not name, ``/x`` at ``x/index.html``, to the folder's URL, whose own requests, as
  the file's name's, run_worker_first sends to the app for its 404) and ``_headers`` (the
  site's headers in one ``/*`` rule, a page's own with ``! Name`` lines that drop the site's
  value first).
- ``src/entry.py``: serves the slim app through ``workers.wsgi`` (from workers-runtime-sdk,
  which pywrangler vendors), with the app's code and the manifest beside it.

Options: ``ONDEMAND_CLOUDFLARE_NAME`` (the Worker's name; default: the app's),
``ONDEMAND_CLOUDFLARE_COMPATIBILITY_DATE`` (default "2026-05-01").
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import warnings

from ..errors import AdapterWarning, BuildError
from ..layout import CURRENT
from ..routes import FILE_METHODS
from . import Deployment, Site, Variable, rule_parts
from .bundle import write_bundle
from .cdn import (
    INDEX,
    copy_files,
    headers_file,
    host_path,
    live_pages,
    live_query_pages,
    redirect_lines,
    renamed_pages,
    rule_regex,
)

FOLDER = "cloudflare"
#: The newest date wrangler 4.86 (the newest on Node 20) accepts is 2026-05-03.
COMPATIBILITY_DATE = "2026-05-01"
#: What Cloudflare reads of ``_headers`` and ``_redirects``.
HEADER_RULES_LIMIT = 100
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
#: What pywrangler needs in development; workers-runtime-sdk comes with it.
DEV_REQUIREMENTS = ("workers-py",)

_ENTRY = '''\
"""The on-demand half of a flask_ondemand build, as a Cloudflare Python Worker."""

import re
from urllib.parse import unquote, urlsplit

from werkzeug.http import parse_cookie
from workers import WorkerEntrypoint
from workers.wsgi import build_environ, fetch

from flask_ondemand.loader import load_slim_app

# Cloudflare's edge is the one proxy in front of the Worker.
app = load_slim_app(__file__, proxies=1)
# Pages that also take other methods: run_worker_first sends all their requests here, and
# their GET and HEAD go back to the assets.
ASSET_URLS = frozenset(%(asset_urls)s)
# Pages of routes that take live cookies: run_worker_first sends their requests here too. One
# with a cookie of ONDEMAND_LIVE_COOKIES is rendered; any other gets the asset, if one answers.
LIVE_COOKIES = frozenset(%(live_cookies)s)
LIVE_PAGES = [re.compile(pattern) for pattern in %(live_patterns)s]
# Pages of prerender(live_query=True) routes: run_worker_first sends their requests here. The
# app renders one with a query string; the asset answers without.
LIVE_QUERY = frozenset(%(live_query)s)


def has_live_cookie(request):
    header = build_environ(request, {}, b"").get("HTTP_COOKIE", "")
    return bool(LIVE_COOKIES & parse_cookie(header).keys())


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        if request.method in ("GET", "HEAD"):
            url = urlsplit(request.url)
            page = unquote(url.path)
            if page in LIVE_QUERY and url.query:
                return await fetch(app, request, self.env)
            if url.path in ASSET_URLS:
                return await self.env.ASSETS.fetch(request)
            live_page = any(pattern.match(page) for pattern in LIVE_PAGES)
            if live_page and has_live_cookie(request):
                return await fetch(app, request, self.env)
            if live_page or page in LIVE_QUERY:
                asset = await self.env.ASSETS.fetch(request)
                if asset.status != 404:
                    return asset
        return await fetch(app, request, self.env)
'''


class CloudflareAdapter:
    name = "cloudflare"

    def write(self, site: Site) -> Deployment:
        _warn_about_cached_routes(site)
        folder = site.build_dir / FOLDER
        requirements = write_bundle(site, folder / "src", target=None)
        live = live_pages(site)
        entry = _ENTRY % {
            "asset_urls": sorted(asset_urls(site)),
            "live_cookies": list(live.cookies) if live else [],
            "live_patterns": [pattern for _, pattern in live.patterns] if live else [],
            "live_query": sorted(live_query_urls(site)),
        }
        (folder / "src" / "entry.py").write_text(entry, encoding="utf-8")
        copy_files(site, folder / "public")
        for url, redirect in site.manifest.redirects.items():
            if redirect.status not in REDIRECT_STATUSES:
                raise BuildError(
                    f"cloudflare: {url} redirects with {redirect.status}, which Cloudflare's"
                    f" _redirects cannot say ({', '.join(map(str, REDIRECT_STATUSES))})"
                )
        redirects = "\n".join(
            [
                "# Written by flask_ondemand.",
                *redirect_lines(site, force=False),
                *rewrite_lines(site),
            ]
        )
        (folder / "public" / "_redirects").write_text(redirects + "\n", encoding="utf-8")
        headers, rules = headers_file(site, detach=True)
        if rules > HEADER_RULES_LIMIT:
            raise BuildError(
                f"cloudflare: _headers needs {rules} rules, and Cloudflare reads the first"
                f" {HEADER_RULES_LIMIT}: fewer pages with headers or types of their own"
            )
        (folder / "public" / "_headers").write_text(headers, encoding="utf-8")
        name = site.option(self.name, "name") or re.sub(
            r"[^a-z0-9-]+", "-", site.app.name.lower()
        ).strip("-")
        date = site.option(self.name, "compatibility_date", COMPATIBILITY_DATE)
        (folder / "wrangler.toml").write_text(wrangler_toml(site, name, date), encoding="utf-8")
        (folder / "pyproject.toml").write_text(pyproject_toml(name, requirements), encoding="utf-8")
        return Deployment(
            (),
            f"cd {site.shown(site.out_dir)}/{CURRENT}/{FOLDER} && uv run pywrangler deploy",
        )


def rewrite_lines(site: Site) -> list[str]:
    """A page whose file its URL does not name (``/x`` at ``x/index.html``) rewritten to its
    folder's URL, where Cloudflare serves that file: asked for ``/x``, Cloudflare's assets
    would redirect to ``/x/`` (a 200 rule to the file's own name would be redirected too)."""
    return [
        f"{host_path(url)}  {host_path(file.removesuffix(INDEX))}  200"
        for url, file in sorted(renamed_pages(site).items())
        if file.endswith("/" + INDEX)
    ]


def _warn_about_cached_routes(site: Site) -> None:
    """A Python Worker reaches no store of the route cache (redis-py needs sockets Pyodide
    lacks), and Cloudflare does not cache what a Worker answers: say what that means."""
    manifest = site.manifest
    cached = [e.rule for e in [*manifest.prerendered, *manifest.on_demand] if e.cache]
    if cached:
        warnings.warn(
            f"cloudflare: the cached routes ({', '.join(cached[:3])}) are not cached there: a"
            " Python Worker reaches no store, and Cloudflare keeps no Worker answer. The Worker"
            " renders an on-demand one at every request, and a prerendered one is its file until"
            " the next deploy.",
            AdapterWarning,
            stacklevel=3,
        )


def asset_urls(site: Site) -> set[str]:
    """The URLs of files whose rule also takes methods a file cannot answer."""
    manifest = site.manifest
    rules = {e.rule for e in manifest.prerendered if set(e.methods) - FILE_METHODS}
    patterns = [re.compile(rule_regex(rule)) for rule in sorted(rules)]
    return {url for url in manifest.files if any(p.match(url) for p in patterns)}


def live_query_urls(site: Site) -> set[str]:
    """The pages of ``live_query`` routes, whose queries the Worker sends to the app."""
    return {url for live in live_query_pages(site) for url in live.urls}


def run_worker_first(site: Site) -> list[str]:
    """The URL patterns the Worker answers before the assets: each on-demand rule, and each
    rule that takes live cookies, from its first variable on as ``*``, the pages that also
    take other methods, and those of ``live_query`` routes."""
    patterns = {wildcard_pattern(entry.rule) for entry in site.manifest.on_demand}
    if live_pages(site) is not None:
        patterns |= {wildcard_pattern(e.rule) for e in site.manifest.prerendered if e.live_cookies}
    patterns |= {host_path(url) for url in asset_urls(site) | live_query_urls(site)}
    # A renamed page's folder URL and file name are no URL of the site: the app says 404.
    for file in renamed_pages(site).values():
        patterns |= {host_path(file), host_path(file.removesuffix(INDEX))}
    return _minimal(patterns)


def wrangler_toml(site: Site, name: str, date: str) -> str:
    lines = [
        "# Written by flask_ondemand. Deploy with: uv run pywrangler deploy",
        f"name = {json.dumps(name)}",
        'main = "src/entry.py"',
        f"compatibility_date = {json.dumps(date)}",
        'compatibility_flags = ["python_workers"]',
        "",
        "# wrangler uploads *.py by itself; the manifest and the templates go with them.",
        "[[rules]]",
        'type = "Data"',
        f"globs = {json.dumps(sorted(_data_globs(site)))}",
        "fallthrough = true",
        "",
        "[assets]",
        'directory = "public"',
        'binding = "ASSETS"',
        f"run_worker_first = {json.dumps(run_worker_first(site))}",
        "",
    ]
    return "\n".join(lines)


def _data_globs(site: Site) -> set[str]:
    """A glob for each kind of file of the bundle that is not Python code."""
    source = site.build_dir / FOLDER / "src"
    suffixes = {
        path.suffix
        for path in source.rglob("*")
        if path.is_file() and path.suffix not in (".py", ".pyc") and path.suffix
    }
    return {f"**/*{suffix}" for suffix in suffixes}


def pyproject_toml(name: str, requirements: list[str]) -> str:
    dependencies = [_for_pyodide(requirement) for requirement in requirements]
    lines = [
        "# Written by flask_ondemand: what pywrangler installs for the Worker.",
        "[project]",
        f"name = {json.dumps(name)}",
        'version = "0.0.0"',
        'requires-python = ">=3.12"',
        "dependencies = [",
        *(f"    {json.dumps(dependency)}," for dependency in dependencies),
        "]",
        "",
        "[dependency-groups]",
        f"dev = {json.dumps(list(DEV_REQUIREMENTS))}",
        "",
    ]
    return "\n".join(lines)


def _for_pyodide(requirement: str) -> str:
    """A pure-Python package keeps the build's version; a compiled one takes Pyodide's own
    build, whatever its version."""
    name, _, version = requirement.partition("==")
    try:
        files = importlib.metadata.distribution(name).files or []
    except importlib.metadata.PackageNotFoundError:
        return requirement
    compiled = any(file.suffix in (".so", ".pyd") for file in files)
    return name if compiled or not version else requirement


def wildcard_pattern(rule: str) -> str:
    """A Werkzeug rule as a Cloudflare pattern: from its first variable on, ``*``."""
    fixed = ""
    for part in rule_parts(rule):
        if isinstance(part, Variable):
            return host_path(fixed) + "*"
        fixed += part
    return host_path(fixed)


def _minimal(patterns: set[str]) -> list[str]:
    """Drop the patterns another ``…*`` pattern already covers."""
    wildcards = [p[:-1] for p in patterns if p.endswith("*")]
    return sorted(
        p for p in patterns if not any(p != w + "*" and p.startswith(w) for w in wildcards)
    )
