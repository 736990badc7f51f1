"""What the adapters for hosts with a CDN of their own share.

Such a host serves the client files itself, by their path, and compresses them itself: so it
gets the files without the build's ``.gz``/``.br`` copies (which it would serve as files of
their own), and a page's file must not answer under its own name (``/secure/index.html``),
where the host would send it without the page's headers. Netlify and Cloudflare read the same
``_headers`` and ``_redirects`` formats, written here; a page URL or a Location in them is
percent-encoded as a client sends it, so that no page can add a field or a rule.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urljoin

from ..errors import BuildError
from ..layout import with_siblings
from ..manifest import Header
from . import Site

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
