"""Netlify: a publish folder with ``_redirects`` and ``_headers``.

Netlify runs no Python, so the on-demand half runs elsewhere, as the wsgi build (gunicorn), at
``ONDEMAND_NETLIFY_ORIGIN``; ``_redirects`` proxies to it. Netlify reads ``_redirects`` top to
bottom and the first matching rule wins; ``:name`` matches one path segment, ``*`` the rest of
the path (only at the end), handed on as ``:splat``; a rule forced with ``!`` applies even where
a file exists. So the file holds, in order: the prerendered redirects (forced, since each has
its refresh page as a file); a folder page's file by its own name (``/about/index.html``),
which is no URL of the site, sent to the origin (or, without one, redirected to its page);
the rules of routes that take live cookies, proxied and forced with a ``Cookie=`` condition
naming the cookies of ``ONDEMAND_LIVE_COOKIES`` (any of them matches): a visitor with one gets
the origin's answer, which is the live page (private), and the others Netlify's file; each
page of a ``prerender(live_query=True)`` route, proxied and forced with a query condition
(``page=:value``) for each parameter the page looked up while it was built (Netlify matches a
query by its parameters' names only, and passes the whole query on): a query with none of
them gets Netlify's file, which is what the origin would render for it; a page whose queries
Netlify cannot tell apart is proxied whole (warned), and the origin sends its file for the
bare URL; a page whose file its URL does not name (``/x`` at ``x/index.html``, beside
``/x/popup``), rewritten
to it, forced (Netlify matches ``/x/`` by the same rule: there the page answers too); each
page of a cached route and each on-demand rule, proxied and forced (``200!``): the origin sends
cached routes' answers with ``Netlify-CDN-Cache-Control`` (``durable``), which Netlify's CDN
keeps them by; and a last rule, not forced, that hands every URL without a file to the origin,
for the app's 404 page. ``_headers`` gives files the
type and headers they were rendered with (see :func:`.cdn.headers_file`); Netlify applies it to
its own files only, never to what it proxies. The build's ``.gz`` copies are left out: Netlify
compresses by itself.

The publish folder is ``DIR/current/netlify``: the CLI does not walk a symlinked root, so
``DIR`` has no link to it.

Options: ``ONDEMAND_NETLIFY_ORIGIN``, required when the site has on-demand routes, cached ones,
live cookies or pages of ``live_query`` routes.
"""

from __future__ import annotations

import re
import warnings

from ..errors import AdapterWarning, BuildError
from ..layout import CURRENT
from ..routes import FILE_METHODS
from . import Deployment, Site, Variable, rule_parts
from .cdn import (
    INDEX,
    LivePages,
    copy_files,
    file_name_urls,
    headers_file,
    host_path,
    live_pages,
    live_query_pages,
    matched_keys,
    redirect_lines,
    renamed_pages,
)

PUBLISH = "netlify"


class NetlifyAdapter:
    name = "netlify"
    #: What the origin sends cached routes' answers with: Netlify's CDN keeps them by it, in
    #: its durable cache (shared by every edge node) rather than each node's own.
    cdn_cache_headers = (("Netlify-CDN-Cache-Control", "durable"),)

    def write(self, site: Site) -> Deployment:
        manifest = site.manifest
        origin = (site.option(self.name, "origin") or "").rstrip("/")
        live = live_pages(site)
        queried = {live.endpoint for live in live_query_pages(site)}
        to_origin = [
            *manifest.on_demand,
            *(
                e
                for e in manifest.prerendered
                if e.cache or (live and e.live_cookies) or e.endpoint in queried
            ),
        ]
        if to_origin and not origin.startswith(("https://", "http://")):
            routes = ", ".join(entry.rule for entry in to_origin[:3])
            raise BuildError(
                "the netlify adapter needs ONDEMAND_NETLIFY_ORIGIN, the URL where the wsgi build"
                f" of this site runs: Netlify runs no Python, so on-demand routes, and cached"
                f" ones, those that take live cookies or the queries of live_query ones"
                f" ({routes}, ...), are proxied there."
            )
        if any(c.isspace() or c == "#" for c in origin):
            raise BuildError(f"ONDEMAND_NETLIFY_ORIGIN {origin!r} has a space or a '#'")
        publish = site.build_dir / PUBLISH
        copy_files(site, publish)
        (publish / "_redirects").write_text(redirects_file(site, origin, live), encoding="utf-8")
        (publish / "_headers").write_text(headers_file(site, detach=False)[0], encoding="utf-8")
        for entry in manifest.prerendered:
            posted = sorted(set(entry.methods) - FILE_METHODS)
            if posted:
                warnings.warn(
                    f"netlify: {entry.rule} is a file that also takes {', '.join(posted)}, but"
                    " Netlify routes by path, not method, so those requests get the file. Send"
                    " them to an on-demand URL instead.",
                    AdapterWarning,
                    stacklevel=2,
                )
        # No link from DIR: netlify-cli does not walk a symlinked publish folder, and one
        # there would be deployed empty. The path through `current` ends in the real folder.
        return Deployment(
            (),
            f"netlify deploy --prod --dir {site.shown(site.out_dir)}/{CURRENT}/{PUBLISH}"
            + (f", with the wsgi build running at {origin}" if origin else ""),
        )


def redirects_file(site: Site, origin: str, live: LivePages | None = None) -> str:
    manifest = site.manifest
    lines = ["# Written by flask_ondemand. The first matching rule wins.", ""]
    lines.append("# Prerendered redirects, forced: each also has a refresh page as a file")
    lines += redirect_lines(site, force=True)
    lines += ["", *file_name_lines(site, origin)]
    if origin and live is not None:
        lines += ["", *live_cookie_lines(live, origin)]
    if origin and (queries := live_query_lines(site, origin)):
        lines += ["", *queries]
    if renamed := renamed_pages(site):
        # After the live cookies' rules: a signed-in visitor's /x is the origin's.
        lines += ["", "# Pages whose file their URL does not name (/x at x/index.html)"]
        lines += [
            f"{host_path(url)}  {host_path(file)}  200!" for url, file in sorted(renamed.items())
        ]
    if origin and manifest.cached:
        lines += ["", "# Pages of cached routes, proxied: the wsgi build refreshes them"]
        lines += [
            f"{host_path(url)}  {origin}{host_path(url)}  200!" for url in sorted(manifest.cached)
        ]
    if origin:
        lines += ["", "# On-demand routes, proxied to the wsgi build"]
        for entry in manifest.on_demand:
            source, target = netlify_pattern(entry.rule)
            lines.append(f"{source}  {origin}{target}  200!")
        lines += [
            "",
            "# Anything without a file: the app answers (its 404 page)",
            f"/*  {origin}/:splat  200",
        ]
    return "\n".join(lines) + "\n"


def live_cookie_lines(live: LivePages, origin: str) -> list[str]:
    """Rules that proxy a request with a live cookie for a page of a route that takes them:
    the origin renders it. Wider rules (a splat) reach it with other pages too, whose file it
    sends, as the wsgi build does."""
    for name in live.cookies:
        if not _COOKIE_NAME.fullmatch(name):
            raise BuildError(
                f"netlify: the live cookie {name!r} cannot be named in a Cookie= condition of"
                " _redirects (letters, digits, '_', '-' and '.' only)"
            )
    condition = "Cookie=" + ",".join(live.cookies)
    lines = ["# A visitor with a live cookie: the origin renders the page (private)"]
    for source, target in dict.fromkeys(netlify_pattern(rule) for rule, _ in live.patterns):
        lines.append(f"{source}  {origin}{target}  200!  {condition}")
    return lines


_COOKIE_NAME = re.compile(r"[A-Za-z0-9_.-]+")


def live_query_lines(site: Site, origin: str) -> list[str]:
    """Rules that proxy a request of a ``live_query`` page whose query has a parameter the
    page looked up: the origin renders it. One rule a parameter, as each rule's parameters
    must all be there; every request of a page whose queries Netlify cannot tell apart."""
    lines = []
    for live in live_query_pages(site):
        keys = matched_keys(live, "netlify", "origin")
        conditions = [""] if keys is None else [f"  {key}=:value" for key in keys]
        lines += [
            f"{host_path(url)}{condition}  {origin}{host_path(url)}  200!"
            for url in live.urls
            for condition in conditions
        ]
    if not lines:
        return []
    return ["# A query of a live_query page: the origin renders it", *lines]


def file_name_lines(site: Site, origin: str) -> list[str]:
    """Rules for a folder page's file by its own name, ``/about/index.html``: Netlify would
    serve it without the page's headers, so the app answers it (with 404, as the wsgi build
    does), or without an app, it redirects to its page. One rule per folder depth, as a
    ``:name`` matches one segment."""
    names = file_name_urls(site)
    if not names:
        return []
    lines = ["# A page's file by its own name is no URL of the site"]
    for depth in sorted({name.count("/") for name in names}):
        folders = "".join(f"/:p{level}" for level in range(1, depth))
        if origin:
            lines.append(f"{folders}/{INDEX}  {origin}{folders}/{INDEX}  200!")
        else:
            lines.append(f"{folders}/{INDEX}  {folders}/  301!")
    return lines


def netlify_pattern(rule: str) -> tuple[str, str]:
    """A Werkzeug rule as a Netlify ``from`` path, and the matching ``to`` path.

    A variable that is a whole segment becomes a ``:placeholder``. A ``path`` variable, or one
    that shares its segment with fixed text, ends the pattern with ``*``, which Netlify allows
    only at the end: that rule then also catches longer URLs, which the app answers with 404.
    """
    source = target = ""
    for part in rule_parts(rule):
        if isinstance(part, Variable):
            whole_segment = source.endswith("/")
            if part.takes_slashes or not whole_segment:
                return _splat_from(source)
            source += f":{part.name}"
            target += f":{part.name}"
        elif source and not source.endswith("/") and not part.startswith("/"):
            return _splat_from(source)  # fixed text right after a variable
        else:
            source += host_path(part)
            target += host_path(part)
    return source, target


def _splat_from(source: str) -> tuple[str, str]:
    """End the pattern with ``*`` from the start of the segment ``source`` ends in."""
    cut = source.rsplit("/", 1)[0] + "/"
    return cut + "*", cut + ":splat"
