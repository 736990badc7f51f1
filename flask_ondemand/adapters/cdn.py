"""What the adapters for hosts with a CDN of their own share.

Such a host serves the client files itself, by their path, and compresses them itself: so it
gets the files without the build's ``.gz``/``.br`` copies (which it would serve as files of
their own), and a page's file must not answer under its own name (``/secure/index.html``),
where the host would send it without the page's headers. Netlify and Cloudflare read the same
``_headers`` and ``_redirects`` formats, written here; a page URL or a Location in them is
percent-encoded as a client sends it, so that no page can add a field or a rule.

Such a host also routes a visitor with a cookie of ``ONDEMAND_LIVE_COOKIES`` by rules of its
own (see :func:`live_pages`), since its function has no files to fall back on, and the pages of
``prerender(live_query=True)`` routes with a query string (see :func:`live_query_pages`).
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urljoin

from werkzeug.exceptions import HTTPException

from ..errors import AdapterWarning, BuildError
from ..layout import with_siblings
from ..manifest import Header
from ..routes import live_cookies
from . import Site, Variable, rule_parts

#: What a page URL keeps as it is in a host's file: the characters a client sends unencoded
#: in a path, but ``:`` and ``*``, which the formats read as patterns (refused, see below).
_URL_SAFE = "/-._~!$&'()+,;=@"
#: A Location is a URL already: its ``%`` escapes, query and fragment stay as they are. Its
#: ``#`` is safe: both formats read a comment only where a line or a field starts with one.
_LOCATION_SAFE = ":/?#[]@!$&'()*+,;=%-._~"
#: The name of a folder page's file, which must not answer as a URL of its own.
INDEX = "index.html"


def copy_files(site: Site, target: Path) -> None:
    """Put the client files in ``target`` without the precompressed copies the build wrote
    beside them, unless a copy is a page of its own."""
    site.copy_client(target)
    served = {os.path.normpath(file) for file in site.manifest.files.values()}
    for file in served:
        for sibling in with_siblings(file)[1:]:
            if sibling not in served:
                (target / sibling).unlink(missing_ok=True)


def host_path(url: str) -> str:
    """A page URL as a path in ``_headers`` or ``_redirects``: percent-encoded as a client
    sends it, so that a space, tab, ``#`` or newline cannot end the field or the line.

    :raises BuildError: for a ``*`` or ``:``, which the formats read as a splat or a
        placeholder: encoded, the rule would no longer match what clients send.
    """
    if "*" in url or ":" in url:
        raise BuildError(
            f"{url}: a URL with '*' or ':' cannot be written in _headers or _redirects,"
            " which read them as patterns. Change the URL."
        )
    return quote(url, safe=_URL_SAFE)


def host_location(url: str, location: str) -> str:
    """The Location ``url`` redirects to, as the target of a ``_redirects`` rule: made
    absolute-path if it was relative (a rule's target must start with ``/`` or a scheme),
    and percent-encoded where it has a space, a control or a non-ASCII character."""
    # Encoded first: urljoin would drop a tab or newline silently.
    return urljoin(quote(url, safe=_URL_SAFE), quote(location, safe=_LOCATION_SAFE))


def page_files(site: Site) -> Iterator[tuple[str, str]]:
    """Each URL a file answers at and its file, in URL order, less the prerendered redirects
    (whose rule answers before their refresh page)."""
    manifest = site.manifest
    for url, file in sorted(manifest.files.items()):
        if url not in manifest.redirects:
            yield url, file


def file_name_urls(site: Site) -> list[str]:
    """The URLs at which a host would serve a folder page's file by its own name
    (``/about/index.html``), less those that are pages."""
    urls = {url for url, _ in page_files(site)}
    return sorted(
        name
        for file in site.manifest.files.values()
        if (name := "/" + os.path.normpath(file)).endswith("/" + INDEX) and name not in urls
    )


def renamed_pages(site: Site) -> dict[str, str]:
    """The pages whose file their URL does not name, each with the path of its file: ``/x``,
    whose file is ``x/index.html`` because ``/x/popup`` needs the folder. A host that finds
    files by path needs a rewrite for each; the folder's own URL (``/x/``) and the file's name
    stay no URL of the site."""
    return {
        url: "/" + file
        for url, file in page_files(site)
        if file != url.lstrip("/") + (INDEX if url.endswith("/") else "")
    }


def redirect_lines(site: Site, *, force: bool) -> list[str]:
    """The prerendered redirects as ``_redirects`` lines."""
    mark = "!" if force else ""
    return [
        f"{host_path(url)}  {host_location(url, redirect.location)}  {redirect.status}{mark}"
        for url, redirect in sorted(site.manifest.redirects.items())
    ]


def headers_file(site: Site, *, detach: bool) -> tuple[str, int]:
    """The ``_headers`` file, and the number of rules in it.

    Every matching rule applies, and a header two rules set is sent with both values. So the
    site-wide headers go in one ``/*`` rule and a page's own value of a header must not meet
    the site's there: with ``detach`` (Cloudflare), a page's rule drops the site's value with
    ``! Name`` first; without it (Netlify has no such line), a header some page sets its own
    value of is written in each page's rule instead of the ``/*`` one. Each file's type goes
    in its rule when its name does not tell it.
    """
    manifest = site.manifest
    own_names = {name.lower() for pairs in manifest.headers.values() for name, _ in pairs}
    shared = [pair for pair in manifest.site_headers if detach or pair[0].lower() not in own_names]
    shared_names = {name.lower() for name, _ in shared}
    lines = ["# Written by flask_ondemand: the type and headers each file was rendered with."]
    rules = 0
    if shared:
        lines += ["/*", *_header_lines(shared)]
        rules += 1
    for url, file in page_files(site):
        rule: list[str] = []
        if file in manifest.content_types:
            rule.append(f"  Content-Type: {manifest.content_types[file]}")
        if detach:
            own = manifest.headers.get(file, [])
            names = list(dict.fromkeys(name for name, _ in own))
            rule += [f"  ! {name}" for name in names if name.lower() in shared_names]
            rule += _header_lines((name, value) for name, value in own if value is not None)
        else:
            rule += _header_lines(
                pair for pair in manifest.headers_for(file) if pair[0].lower() not in shared_names
            )
        if rule:
            lines += [host_path(url), *rule]
            rules += 1
    return "\n".join(lines) + "\n", rules


def _header_lines(pairs: Iterator[Header] | list[Header]) -> list[str]:
    return [f"  {name}: {value}" for name, value in pairs]


def rule_regex(rule: str) -> str:
    """A Werkzeug rule as an anchored regular expression of its URLs, which Python, JavaScript
    and Vercel's PCRE read alike: a variable matches one segment, a ``path`` one more."""
    pattern = ""
    for part in rule_parts(rule):
        if isinstance(part, Variable):
            pattern += "(.+)" if part.takes_slashes else "([^/]+)"
        else:
            pattern += re.escape(part)
    return f"^{pattern}$"


@dataclass(frozen=True)
class LivePages:
    """Which requests a host sends to its function for a visitor with a live cookie: a GET of
    a page of a route that takes live cookies (``prerender(live_cookies=False)`` and static
    folders aside), as the wsgi build's server decides. A host whose function has no files
    must send it those pages only, so each route's pattern leaves out the files it would also
    match: another route's pages, and prerendered redirects (answered before the cookie is
    looked at, as nginx does)."""

    #: The cookie names, any of which makes a request live.
    cookies: tuple[str, ...]
    #: (rule, regular expression of its pages) for each route that takes live cookies; a
    #: folder's URL without its slash matches too (the app redirects it).
    patterns: tuple[tuple[str, str], ...]
    #: The URLs of the pages rendered live, for tests and messages.
    urls: frozenset[str]


def live_pages(site: Site) -> LivePages | None:
    """The live pages of the build, or None when no request is rendered live.

    Reads ``ONDEMAND_LIVE_COOKIES``.
    """
    manifest = site.manifest
    rules = {(e.rule, e.endpoint) for e in manifest.prerendered if e.live_cookies}
    names = live_cookies(site.app)
    if not rules or not names:
        return None
    adapter = site.app.url_map.bind("localhost")
    rule_of: dict[str, tuple[str, str]] = {}
    for url in manifest.files:
        try:
            matched, _ = adapter.match(url, method="GET", return_rule=True)
        except HTTPException:  # a redirect too: no page of a rule
            continue
        rule_of[url] = (matched.rule, str(matched.endpoint))
    live = {url for url, key in rule_of.items() if key in rules and url not in manifest.redirects}
    patterns = []
    for rule, _ in sorted(rules):
        regex = rule_regex(rule)
        if rule.endswith("/") and rule != "/":
            regex = regex[:-2] + "/?$"
        others = sorted(u for u in manifest.files if re.match(regex, u) and u not in live)
        if others:
            but = "|".join(_slash_optional(re.escape(url)) for url in others)
            regex = f"^(?!(?:{but})$){regex[1:]}"
        patterns.append((rule, regex))
    return LivePages(tuple(names), tuple(patterns), frozenset(live))


def _slash_optional(escaped: str) -> str:
    """A folder URL's pattern that matches it without its slash too."""
    return escaped[:-1] + "/?" if escaped.endswith("/") and escaped != "/" else escaped


@dataclass(frozen=True)
class LiveQuery:
    """The pages of a ``prerender(live_query=True)`` route: a bare URL is its file, the same
    URL with a query string the app's (as the wsgi build's server decides)."""

    rule: str
    endpoint: str
    #: Its pages' URLs, less prerendered redirects (answered whatever the query).
    urls: tuple[str, ...]
    #: The query parameters its pages looked up while they were built: a query without any
    #: of them gets the same page from the app as the file (the app reads none of it), so a
    #: host that matches a query by its parameters' names sends only those to the app. None:
    #: a page read its query whole, or the build did not say.
    keys: tuple[str, ...] | None

    def describe(self) -> str:
        return f"{self.rule} ({self.endpoint})"


def live_query_pages(site: Site) -> list[LiveQuery]:
    """The build's ``live_query`` routes that have pages, in rule order."""
    manifest = site.manifest
    entries = {e.endpoint: e for e in manifest.prerendered if e.live_query}
    if not entries:
        return []
    adapter = site.app.url_map.bind("localhost")
    urls: dict[str, list[str]] = {}
    for url in sorted(manifest.live_query):
        if url in manifest.redirects:
            continue
        try:
            endpoint, _ = adapter.match(url, method="GET")
        except HTTPException:
            continue
        if endpoint in entries:
            urls.setdefault(str(endpoint), []).append(url)
    return [
        LiveQuery(entry.rule, entry.endpoint, tuple(urls[entry.endpoint]), entry.query_keys)
        for entry in sorted(entries.values(), key=lambda entry: entry.rule)
        if entry.endpoint in urls
    ]


#: A query parameter's name as every client sends it: nothing in it is percent-encoded.
_PLAIN_KEY = re.compile(r"[A-Za-z0-9._~-]+")


def matched_keys(live: LiveQuery, host: str, target: str) -> tuple[str, ...] | None:
    """The query parameters a host that matches a query by its parameters' names (Vercel's
    ``has``, Netlify's ``key=:value``) sends to the app, ``target``; or None, warned, when
    it cannot tell the queries apart: it then sends it every request of the pages.

    Such a host matches a name as the client wrote it, so a name a client may
    percent-encode (a space, ``[]``) cannot be matched.
    """
    if live.keys is None:
        cause = (
            "read its query string whole while it was built (iterated request.args, or read"
            " request.url or request.query_string)"
        )
        remedy = "look the parameters up by name (request.args.get('page'))"
    else:
        unmatched = [key for key in live.keys if not _PLAIN_KEY.fullmatch(key)]
        if not unmatched:
            return live.keys
        cause = f"reads the query parameter {unmatched[0]!r}, whose name clients may encode"
        remedy = "name it with letters, digits, '-', '_', '.' and '~' only"
    warnings.warn(
        f"{host}: {live.describe()} {cause}, and {host.capitalize()} tells queries apart by their"
        f" parameters' names only: every request of its pages goes to the {target}, its"
        f" files unused. To keep them, {remedy}.",
        AdapterWarning,
        stacklevel=3,
    )
    return None
