"""nginx in front of the wsgi build: nginx serves the files, gunicorn the rest.

Writes ``DIR/nginx.conf``, a complete configuration: nginx serves the files of ``DIR/current``
(through the link, so a new build's files are live at once; a partial build's own first, then
its base's, less those it does not serve, which need a reload to be hidden), answers
prerendered redirects itself, gives each file the type and headers it was rendered with, and
passes everything else, unbuffered so streamed pages stream, to gunicorn running
``DIR/server.py``. gunicorn also gets what a file cannot answer (a POST to a page), so the
answers are the wsgi build's.

Options: ``ONDEMAND_NGINX_LISTEN`` ("127.0.0.1:8080"), ``ONDEMAND_NGINX_UPSTREAM`` (gunicorn's
address, "127.0.0.1:8000"), ``ONDEMAND_NGINX_SERVER_NAME`` ("_").
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from whitenoise.media_types import default_types

from ..errors import BuildError
from ..layout import BASE_CLIENT, CLIENT, CURRENT
from . import Deployment, Site

_PLAIN = re.compile(r"[A-Za-z0-9_./:=,+-]+")


class NginxAdapter:
    name = "nginx"

    def write(self, site: Site) -> Deployment:
        listen = site.option(self.name, "listen", "127.0.0.1:8080")
        upstream = site.option(self.name, "upstream", "127.0.0.1:8000")
        server_name = site.option(self.name, "server_name", "_")
        max_age = int(site.config.get("ONDEMAND_MAX_AGE", 0))
        out = site.out_dir
        conf = "\n".join(
            [
                "# Written by `flask ondemand build --adapter nginx`. Run it with:",
                f"#   mkdir -p {out}/.nginx && nginx -p {out}/.nginx -c {out}/nginx.conf",
                f"# and the rest with:  gunicorn --chdir {out} server:app --bind {upstream}",
                "# After each build, `nginx -s reload` (same -p and -c) picks up its locations.",
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
                "",
                f"    upstream flask_ondemand {{ server {_word(upstream)}; }}",
                "",
                "    server {",
                f"        listen {_word(listen)};",
                f"        server_name {_word(server_name)};",
                f"        root {_quote(str(out / CURRENT))};",
                "        # A method nginx refuses before it picks a location (TRACE) goes to",
                "        # gunicorn too, whose 405 says which methods the URL takes.",
                "        error_page 405 = @app;",
                "",
                *_indent(_redirect_locations(site), 8),
                *_indent(_not_served_locations(site), 8),
                *_indent(_file_locations(site, max_age), 8),
                "        location / {",
                f"            try_files {_in_build('$uri')} @app;",
                *_indent(_file_answers(max_age), 12),
                "        }",
                "        location ~ /$ {",
                f"            try_files {_in_build('${uri}index.html')} @app;",
                *_indent(_file_answers(max_age), 12),
                "        }",
                "        location @app {",
                "            proxy_pass http://flask_ondemand;",
                "            proxy_http_version 1.1;",
                "            proxy_set_header Host $http_host;",
                "            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
                "            proxy_set_header X-Forwarded-Proto $scheme;",
                "            # Streamed pages go out as the app sends them.",
                "            proxy_buffering off;",
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
            f" gunicorn --chdir {shown} server:app --bind {upstream}",
        )


_TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def _file_answers(max_age: int) -> list[str]:
    """What every file location says: the Cache-Control of the wsgi build, and hand the
    methods a file cannot answer (nginx says 405) to gunicorn, which knows the app's routes."""
    return [f'add_header Cache-Control "max-age={max_age}, public";', "error_page 405 = @app;"]


def _redirect_locations(site: Site) -> Iterable[str]:
    for url, redirect in sorted(site.manifest.redirects.items()):
        target = _value(url, redirect.location)
        yield f"location = {_quote(url)} {{ return {redirect.status} {target}; }}"


def _in_build(path: str) -> str:
    """Where nginx looks for a file, from the build's folder: in its own client files, then
    in a partial build's base (as the ``location /`` does)."""
    return " ".join(_quote(f"/{folder}{path}") for folder in (CLIENT, BASE_CLIENT))


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


def _file_locations(site: Site, max_age: int) -> Iterable[str]:
    """An exact location for each file with a type its name does not tell, or headers."""
    manifest = site.manifest
    for url, file in sorted(manifest.files.items()):
        content_type = manifest.content_types.get(file)
        headers = manifest.headers.get(file, [])
        if url in manifest.redirects or (content_type is None and not headers):
            continue
        path = "/" + file
        _value(url, path)  # refuses what nginx would read as a variable
        lines = [f"location = {_quote(url)} {{", f"    try_files {_in_build(path)} @app;"]
        if content_type is not None:
            # An empty types map makes nginx use default_type; the charset is in it already.
            lines += [
                "    types { }",
                f"    default_type {_value(url, content_type)};",
                "    charset off;",
            ]
        names = {name.lower() for name, _ in headers}
        if "cache-control" not in names:
            lines.append(f'    add_header Cache-Control "max-age={max_age}, public";')
        lines += [
            f"    add_header {_word(name)} {_value(url, value)} always;" for name, value in headers
        ]
        lines += ["    error_page 405 = @app;", "}"]
        yield from lines


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
