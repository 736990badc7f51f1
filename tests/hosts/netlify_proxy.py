"""A stand-in for Netlify, for a publish folder with _redirects and _headers.

Rules apply in file order, the first match wins. ``:name`` matches one path segment, ``*`` the
rest of the path (only at the end; ``:splat`` hands it on). A rule that is not forced (no
``!``) does not apply where a file exists. A 3xx rule redirects; a 200 rule to an absolute URL
proxies the request there (method, headers, body and query string). Files are served with
Netlify's pretty URLs: ``/x/`` from ``x/index.html``, and ``/x`` redirected to ``/x/`` when
that is a folder. _headers adds headers to the files whose path it names.

Usage: python netlify_proxy.py PUBLISH_DIR
"""

from __future__ import annotations

import mimetypes
import re
import sys
from http.client import HTTPConnection
from pathlib import Path
from urllib.parse import urlsplit

from common import HOP_BY_HOP, body_of, parse_headers_file, path_of, reason, request_headers, serve

publish = Path(sys.argv[1])


def parse_rules() -> list[tuple[re.Pattern[str], str, int, bool]]:
    rules = []
    for line in (publish / "_redirects").read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        source, target, status = line.split()
        forced = status.endswith("!")
        pattern = re.escape(source).replace(r"\*", "(?P<splat>.*)")
        pattern = re.sub(r":([A-Za-z_]\w*)", r"(?P<\1>[^/]+)", pattern)
        rules.append((re.compile(f"^{pattern}$"), target, int(status.rstrip("!")), forced))
    return rules


RULES, HEADERS = parse_rules(), parse_headers_file(publish / "_headers")


def file_for(path: str) -> Path | None:
    relative = path.lstrip("/")
    file = publish / (relative + "index.html" if path.endswith("/") else relative)
    if file.is_file() and file.name not in ("_redirects", "_headers"):
        return file
    return None


def is_folder(path: str) -> bool:
    return not path.endswith("/") and (publish / path.lstrip("/") / "index.html").is_file()


def proxy(environ, start_response, target: str):  # type: ignore[no-untyped-def]
    url = urlsplit(target)
    query = environ.get("QUERY_STRING")
    connection = HTTPConnection(url.hostname, url.port, timeout=30)
    headers = {k: v for k, v in request_headers(environ) if k.lower() not in HOP_BY_HOP}
    connection.request(
        environ["REQUEST_METHOD"],
        url.path + (f"?{query}" if query else ""),
        body=body_of(environ),
        headers=headers,
    )
    answer = connection.getresponse()
    body = answer.read()
    kept = [
        (k, v) for k, v in answer.getheaders() if k.lower() not in HOP_BY_HOP | {"content-length"}
    ]
    start_response(f"{answer.status} {answer.reason}", [*kept, ("Content-Length", str(len(body)))])
    return [body]


def site(environ, start_response):  # type: ignore[no-untyped-def]
    path = path_of(environ)
    for pattern, target, status, forced in RULES:
        match = pattern.match(path)
        if not match or (not forced and (file_for(path) or is_folder(path))):
            continue
        for name, value in match.groupdict().items():
            target = target.replace(f":{name}", value)
        if 300 <= status < 400:
            start_response(
                f"{status} {reason(status)}", [("Location", target), ("Content-Length", "0")]
            )
            return [b""]
        return proxy(environ, start_response, target)
    file = file_for(path)
    if file is None and is_folder(path):
        start_response("301 Moved Permanently", [("Location", path + "/"), ("Content-Length", "0")])
        return [b""]
    if file is None or environ["REQUEST_METHOD"] not in ("GET", "HEAD"):
        start_response("404 Not Found", [("Content-Length", "0")])
        return [b""]
    body = file.read_bytes()
    headers = [("Content-Type", mimetypes.guess_type(file.name)[0] or "application/octet-stream")]
    for name, value in HEADERS.get(path, []):
        headers = [(k, v) for k, v in headers if k.lower() != name.lower()] + [(name, value)]
    start_response("200 OK", [*headers, ("Content-Length", str(len(body)))])
    return [body if environ["REQUEST_METHOD"] == "GET" else b""]


serve(site)
