"""nginx in front of the wsgi build: nginx serves the files, gunicorn the rest.

Writes ``DIR/nginx.conf``, a complete configuration: nginx serves the files of ``DIR/current``
(through the link, so a new build's files are live at once; a partial build's own first, then
its base's, less those it does not serve, which need a reload to be hidden) by their pages'
URLs only, answers prerendered redirects itself, gives each file the type and headers it was
rendered with, and passes everything else to gunicorn running ``DIR/server.py`` (the pages of
cached routes too, which gunicorn answers from the route cache and refreshes): buffered, so
that a slow client holds nginx rather than a worker, but for streamed pages. gunicorn also gets
what a file cannot answer (a POST to a page), so the answers are the wsgi build's.

Options: ``ONDEMAND_NGINX_LISTEN`` ("127.0.0.1:8080"), ``ONDEMAND_NGINX_UPSTREAM`` (gunicorn's
address, "127.0.0.1:8000"), ``ONDEMAND_NGINX_SERVER_NAME`` ("_": any host; names make every
other host a 421), ``ONDEMAND_NGINX_CLIENT_MAX_BODY_SIZE`` ("10m").
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from whitenoise.media_types import default_types

from ..errors import BuildError
from ..layout import BASE_CLIENT, CLIENT, CURRENT, is_text_type
from ..routes import is_static_view, live_cookies
from . import Deployment, Site, rule_parts
from .wsgi import gunicorn_missing

_PLAIN = re.compile(r"[A-Za-z0-9_./:=,+-]+")


class NginxAdapter:
    name = "nginx"

    def write(self, site: Site) -> Deployment:
        listen = _word(site.option(self.name, "listen", "127.0.0.1:8080"))
        upstream = _word(site.option(self.name, "upstream", "127.0.0.1:8000"))
        server_name = " ".join(map(_word, str(site.option(self.name, "server_name", "_")).split()))
        # nginx's own default is 1m; forms with files need more, and nginx takes the whole body
        # before gunicorn sees it. Flask's MAX_CONTENT_LENGTH still applies behind it.
        body_size = _word(site.option(self.name, "client_max_body_size", "10m"))
        max_age = int(site.config.get("ONDEMAND_MAX_AGE", 0))
        out = site.out_dir
        files = _FileHeaders(site, max_age)
        live = _LiveCookies(site)
        conf = "\n".join(
            [
                "# Written by `flask ondemand build --adapter nginx`. Run it with:",
                f"#   mkdir -p {out}/.nginx && nginx -p {out}/.nginx -c {out}/nginx.conf",
                f"# and the rest with:  gunicorn --chdir {out} server:app --bind {upstream}",
                "# (the address in `upstream` below: nginx sends gunicorn's share there).",
                "# Stop it with `nginx -s quit` and reload it after each build with",
                "# `nginx -s reload`, both with the same -p and -c, to pick up the new locations.",
                "",
                "worker_processes auto;",
                "pid nginx.pid;",
                "error_log error.log;",
                "events { worker_connections 1024; }",
                "",
                "http {",
                "    access_log access.log;",
                *(f"    {kind}_temp_path {kind};" for kind in _TEMP_PATHS),
                "    # sendfile stays off, nginx's default: for pages of a few KiB it is slower.",
                "    # The build's precompressed .gz files, for clients that accept gzip.",
                "    gzip_static on;",
                "    gzip_vary on;",
                "    absolute_redirect off;",
                "    # Keep open files and what they are for a second: most requests then skip the",
                "    # file system. A new build's files are live within that second.",
                "    open_file_cache max=100000 inactive=60s;",
                "    open_file_cache_valid 1s;",
                "    open_file_cache_errors on;",
                *_types_block(),
                "    default_type application/octet-stream;",
                "    charset utf-8;",
                f"    charset_types {' '.join(sorted(_text_types()))};",
                f"    client_max_body_size {body_size};",
                "",
                "    upstream flask_ondemand {",
                f"        server {upstream};",
                "        # Connections kept open to gunicorn, for workers that keep them (gthread)",
                "        keepalive 16;",
                "    }",
                "",
                *_unknown_hosts(listen, server_name),
                "    server {",
                f"        listen {listen};",
                f"        server_name {server_name};",
                f"        root {_quote(str(out / CURRENT))};",
                "        # A method nginx refuses before it picks a location (TRACE) goes to",
                "        # gunicorn too, whose 405 says which methods the URL takes.",
                "        error_page 405 = @app;",
                "",
                *_indent(_redirect_locations(site, files), 8),
                *_indent(_cached_locations(site), 8),
                *_indent(_not_served_locations(site), 8),
                *_indent(_file_locations(site, files, live), 8),
                "        # A page's file by its own name (about/index.html, a .gz copy) is no URL",
                "        # of the site: the app answers it, as the wsgi server does.",
                f"        location ~ {_FILE_NAMES} {{ error_page 404 = @app; return 404; }}",
                *_indent(live.static_locations(files), 8),
                "        location / {",
                *_indent(live.checks(), 12),
                f"            try_files {_in_build('$uri')} @app;",
                *_indent(files.headers(), 12),
                f"            {_OTHER_METHODS_TO_APP}",
                "        }",
                "        location ~ /$ {",
                *_indent(live.checks(), 12),
                f"            try_files {_in_build('${uri}index.html')} @app;",
                *_indent(files.headers(), 12),
                f"            {_OTHER_METHODS_TO_APP}",
                "        }",
                "        location @app {",
                "            proxy_pass http://flask_ondemand;",
                "            proxy_http_version 1.1;",
                '            proxy_set_header Connection "";',
                "            proxy_set_header Host $host;",
                "            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
                "            proxy_set_header X-Forwarded-Proto $scheme;",
                "            # A redirect never names gunicorn's own address, nor the host nginx",
                "            # made up for a request without one (HTTP/1.0): a redirect to this",
                "            # site is relative, which stays right behind any proxy. (Werkzeug",
                "            # 3.1 drops the made-up host, 3.0 keeps it.)",
                f"            proxy_redirect http://{upstream}/ /;",
                "            proxy_redirect http://$host/ /;",
                "            proxy_redirect https://$host/ /;",
                "            proxy_redirect http:/// /;",
                "            proxy_redirect https:/// /;",
                "            # Answers are buffered, so a slow client holds nginx, not a gunicorn",
                "            # worker; stream() sends X-Accel-Buffering: no, so streamed pages",
                "            # still go out as the app sends them.",
                "            proxy_buffering on;",
                "            gzip on;",
                "            gzip_proxied any;",
                "            gzip_min_length 1024;",
                f"            gzip_types {' '.join(sorted(_compressed_types()))};",
                "        }",
                "    }",
                "}",
                "",
            ]
        )
        (site.build_dir / "nginx.conf").write_text(conf, encoding="utf-8")
        shown = site.shown(out)
        return Deployment(
            ("nginx.conf",),
            f"mkdir -p {shown}/.nginx && nginx -p {shown}/.nginx -c {out}/nginx.conf, with"
            f" gunicorn --chdir {shown} server:app --bind {upstream}{gunicorn_missing()}"
            " (set ONDEMAND_PROXY_FIX = 1 in the app's config: nginx is a proxy in front of it)",
        )


# The names of page files that are no URL: a folder page's index.html, precompressed copies.
_FILE_NAMES = r'"(?:/index\.html|\.gz|\.br)$"'
# A method a file cannot answer (nginx says 405) goes to gunicorn, which knows the app's routes.
_OTHER_METHODS_TO_APP = "error_page 405 = @app;"


def _unknown_hosts(listen: str, server_name: str) -> list[str]:
    """With a server name set, a request for any other host (or none, as in HTTP/1.0) gets
    421 Misdirected Request from a default server, never the site."""
    if server_name == "_":
        return []
    return [
        "    server {",
        f"        listen {listen} default_server;",
        "        server_name _;",
        "        return 421;",
        "    }",
        "",
    ]


# What a location says to hand a request to gunicorn from inside an `if`: `return 418`.
_TO_APP_ON_418 = "error_page 418 = @app;"


class _LiveCookies:
    """A request with a cookie of ``ONDEMAND_LIVE_COOKIES`` goes to gunicorn, whose server
    renders the page if its route takes live cookies and sends the file otherwise; static
    files never go, so they are served from locations of their own."""

    def __init__(self, site: Site) -> None:
        prerendered = site.manifest.prerendered
        taken = any(entry.live_cookies for entry in prerendered)
        self._names = live_cookies(site.app) if taken else []
        self._static = sorted(
            {
                _fixed_start(entry.rule)
                for entry in prerendered
                if is_static_view(site.app, entry.endpoint)
            }
        )

    def checks(self, url: str | None = None) -> list[str]:
        """The lines of a location serving pages (``url``, or any), which send a request with
        a live cookie to gunicorn."""
        if not self._names or (url is not None and url.startswith(tuple(self._static))):
            return []
        return [
            _TO_APP_ON_418,
            *(
                f"if ($http_cookie ~ {_cookie_pattern(name)}) {{ return 418; }}"
                for name in self._names
            ),
        ]

    def static_locations(self, files: _FileHeaders) -> list[str]:
        """Locations for the static folders' URLs, without the live cookie checks."""
        if not self._names:
            return []
        lines = []
        for start in self._static:
            lines += [
                f"location ~ {_quote('^' + re.escape(start))} {{",
                f"    try_files {_in_build('$uri')} @app;",
                *_indent([*files.headers(), _OTHER_METHODS_TO_APP], 4),
                "}",
            ]
        return lines


def _named_by(url: str) -> str:
    """The file a URL names, as nginx looks for it: ``x`` for ``/x``, ``x/index.html`` for
    ``/x/``. A page whose file is another (``/x`` at ``x/index.html``, because ``/x/popup``
    needs the folder) needs a location of its own."""
    return url.lstrip("/") + ("index.html" if url.endswith("/") else "")


def _fixed_start(rule: str) -> str:
    """The fixed start of a Werkzeug rule: "/static/" of "/static/<path:filename>"."""
    first = next(iter(rule_parts(rule)), "")
    return first if isinstance(first, str) else "/"


def _cookie_pattern(name: str) -> str:
    """A regular expression, quoted for nginx, that finds a cookie by name in a Cookie
    header. A name is an HTTP token: its characters but letters, digits, "_" and "-" are put
    in brackets, so none is read as a regular expression's."""
    if "$" in name or '"' in name:
        raise BuildError(f'the nginx adapter cannot match the cookie {name!r} (it has $ or ")')
    escaped = "".join(c if c.isalnum() or c in "_-" else f"[{c}]" for c in name)
    return _quote(f"(^|;) *{escaped}=")


class _FileHeaders:
    """The headers nginx sends with files: the site's and a page's own, and the default
    Cache-Control unless they set one. ``add_header ... always``, so they go with any status
    (a 304 too); nginx drops a level's ``add_header`` lines where a location has its own, so
    every location that sends a file says them all."""

    def __init__(self, site: Site, max_age: int) -> None:
        self._site_headers = site.manifest.site_headers
        self._manifest = site.manifest
        self._default = ("Cache-Control", f"max-age={max_age}, public")

    def headers(self, file: str | None = None, url: str = "") -> list[str]:
        """The ``add_header`` lines of a location sending ``file`` (any file, if None), which
        is the page at ``url``."""
        pairs = self._site_headers if file is None else self._manifest.headers_for(file)
        if all(name.lower() != "cache-control" for name, _ in pairs):
            pairs = [self._default, *pairs]
        return [f"add_header {_word(name)} {_value(url, value)} always;" for name, value in pairs]


_TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def _redirect_locations(site: Site, files: _FileHeaders) -> Iterable[str]:
    for url, redirect in sorted(site.manifest.redirects.items()):
        yield f"location = {_quote(url)} {{"
        yield from _indent(files.headers(site.manifest.files.get(url), url), 4)
        yield f"    return {redirect.status} {_value(url, redirect.location)};"
        yield "}"


def _in_build(path: str) -> str:
    """Where nginx looks for a file, from the build's folder: in its own client files, then
    in a partial build's base (as the ``location /`` does)."""
    return " ".join(_quote(f"/{folder}{path}") for folder in (CLIENT, BASE_CLIENT))


def _cached_locations(site: Site) -> Iterable[str]:
    """Hand to gunicorn the pages of cached routes: their file is only the first answer of the
    route cache, which gunicorn serves, and refreshes."""
    for url in sorted(site.manifest.cached):
        yield f"location = {_quote(url)} {{ error_page 418 = @app; return 418; }}"


def _not_served_locations(site: Site) -> Iterable[str]:
    """Hand to gunicorn the URLs of the files a partial build's base has but the build does
    not serve (a page it dropped), which nginx would otherwise find there."""
    urls = set()
    for name in site.base_files_not_served():
        urls.add("/" + name)
        if name == "index.html" or name.endswith("/index.html"):
            urls.add("/" + name.removesuffix("index.html"))
    for url in sorted(urls):
        yield f"location = {_quote(url)} {{ error_page 404 = @app; return 404; }}"


def _file_locations(site: Site, files: _FileHeaders, live: _LiveCookies) -> Iterable[str]:
    """An exact location for each file with a type its name does not tell, headers of its
    own, a URL that looks like a page file's own name (``/archive.gz``), a page whose URL with
    a query string goes to gunicorn (``prerender(live_query=True)``), or a file its URL does
    not name."""
    manifest = site.manifest
    looks_like_a_file_name = re.compile(_FILE_NAMES.strip('"'))
    for url, file in sorted(manifest.files.items()):
        content_type = manifest.content_types.get(file)
        if (
            url in manifest.redirects
            or url in manifest.cached
            or (
                content_type is None
                and file not in manifest.headers
                and url not in manifest.live_query
                and not looks_like_a_file_name.search(url)
                and file == _named_by(url)
            )
        ):
            continue
        path = "/" + file
        _value(url, path)  # refuses what nginx would read as a variable
        lines = [f"location = {_quote(url)} {{", *_indent(live.checks(url), 4)]
        if url in manifest.live_query:
            # `return` is one of the few things safe inside an `if` in a location.
            lines += [f"    {_TO_APP_ON_418}", "    if ($args) { return 418; }"]
        lines = list(dict.fromkeys(lines))  # one error_page 418 line, if both asked for it
        lines.append(f"    try_files {_in_build(path)} @app;")
        if content_type is not None:
            # An empty types map makes nginx use default_type; the charset is in it already.
            lines += [
                "    types { }",
                f"    default_type {_value(url, content_type)};",
                "    charset off;",
            ]
        lines += _indent([*files.headers(file, url), _OTHER_METHODS_TO_APP], 4)
        yield from [*lines, "}"]


def _types_block() -> list[str]:
    """File types as the wsgi server (WhiteNoise) gives them, so both servers agree."""
    by_type: dict[str, list[str]] = {}
    for suffix, media_type in default_types().items():
        if suffix.startswith("."):
            by_type.setdefault(media_type, []).append(suffix[1:])
    lines = ["    types {"]
    lines += [
        f"        {media_type} {' '.join(sorted(exts))};"
        for media_type, exts in sorted(by_type.items())
    ]
    return [*lines, "    }"]


def _text_types() -> set[str]:
    """The types nginx adds ``charset=utf-8`` to, as WhiteNoise does: text/html is implied."""
    return {
        media_type
        for media_type in default_types().values()
        if media_type.startswith("text/") and media_type != "text/html"
    }


def _compressed_types() -> set[str]:
    """The types nginx compresses in gunicorn's answers: those the build precompresses, less
    text/html, which nginx always compresses."""
    types = {media_type for media_type in default_types().values() if is_text_type(media_type)}
    return types - {"text/html"}


def _indent(lines: Iterable[str], spaces: int) -> list[str]:
    return [" " * spaces + line for line in lines]


def _quote(text: str) -> str:
    """A string for nginx's config, quoted when it has to be."""
    if _PLAIN.fullmatch(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _value(url: str, text: str) -> str:
    """A string nginx expands variables in: a "$" would be read as one."""
    if "$" in text or "\n" in text or "\r" in text:
        raise BuildError(f"{url}: the nginx adapter cannot write {text!r} (it has $ or a newline)")
    return _quote(text)


def _word(text: str) -> str:
    if not _PLAIN.fullmatch(str(text)):
        raise BuildError(f"the nginx adapter cannot write {text!r} in its config")
    return str(text)
