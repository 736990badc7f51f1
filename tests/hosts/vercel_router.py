"""A stand-in for Vercel's router, for .vercel/output/ (Build Output API v3).

Why a stand-in: Vercel's router runs only on Vercel (`vercel dev` needs an account), so the
routes of config.json are applied here as the Build Output API documents them. The function
behind it is the real one: Vercel's own launcher (vercel-runtime) serving it over HTTP, at the
URL given.

It follows config.json's routes in order: a route whose ``src`` matches (and whose ``methods``
include the request's) redirects when it has a ``status`` and a Location, adds its headers and
goes on when it has ``continue``, or sends the request to its ``dest``: a function, or else a
file of static/ (a rewrite). A route's ``src`` is matched against the path alone, never the
query string (as Vercel's docs, and ``vercel dev``'s own router, match it). A route with
``has`` matches only if each of its conditions holds; of those, only ``cookie`` and ``query``
ones (the cookie, or the query parameter, is present, and equals ``value`` if the condition
has one) are known here, and any other stops the router. At ``{"handle": "filesystem"}`` it
serves a file from static/ if one matches (``/x/`` from ``x/index.html``, and ``/x`` and
``/x/index.html`` too, as Vercel does), with the type from ``overrides``. A request for a
function is passed on to FUNCTION_URL, and its answer back. Each answer says
``X-Stand-In-Served: file`` or ``function`` (Vercel sends no such header), so that a test can
tell a file from the function's answer of the same page.

Usage: python vercel_router.py OUTPUT_DIR FUNCTION_URL
"""

from __future__ import annotations

import json
import mimetypes
import re
import sys
from http.client import HTTPConnection
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from common import HOP_BY_HOP, body_of, path_of, reason, request_headers, serve

output = Path(sys.argv[1])
config = json.loads((output / "config.json").read_text())
assert config["version"] == 3
function = urlsplit(sys.argv[2])
static = output / "static"
overrides = config.get("overrides", {})


def static_file(path: str) -> tuple[Path, str] | None:
    relative = path.lstrip("/")
    for candidate in (relative, relative.rstrip("/") + "/index.html" if relative else "index.html"):
        file = static / candidate
        if candidate and file.is_file() and file.resolve().is_relative_to(static.resolve()):
            return file, candidate
    return None


def holds(condition: dict[str, str], environ: dict[str, str]) -> bool:
    kind = condition["type"]
    assert kind in ("cookie", "query"), f"this stand-in knows no has {condition}"
    if kind == "query":
        pairs = parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    else:
        cookies = environ.get("HTTP_COOKIE", "").split(";")
        pairs = [tuple(pair.strip().split("=", 1)) for pair in cookies if "=" in pair]
    found: dict[str, str] = {}
    for name, value in pairs:
        found.setdefault(name, value)
    if condition["key"] not in found:
        return False
    return "value" not in condition or found[condition["key"]] == condition["value"]


def router(environ, start_response):  # type: ignore[no-untyped-def]
    method, path = environ["REQUEST_METHOD"], path_of(environ)
    added: list[tuple[str, str]] = []
    for route in config["routes"]:
        if route.get("handle") == "filesystem":
            if method in ("GET", "HEAD") and static_file(path):
                return serve_file(environ, start_response, path, added)
            continue
        if "handle" in route or not re.search(route["src"], path):
            continue
        if "methods" in route and method not in route["methods"]:
            continue
        if not all(holds(condition, environ) for condition in route.get("has", [])):
            continue
        headers = list(route.get("headers", {}).items())
        if "status" in route:
            start_response(
                f"{route['status']} {reason(route['status'])}", [*headers, ("Content-Length", "0")]
            )
            return [b""]
        if route.get("continue"):
            added += headers
            continue
        if not (output / "functions" / (route["dest"].lstrip("/") + ".func")).is_dir():
            return serve_file(environ, start_response, route["dest"], added)
        return call_function(environ, start_response, added)
    start_response("404 Not Found", [("Content-Length", "0")])
    return [b""]


def serve_file(environ, start_response, path, added):  # type: ignore[no-untyped-def]
    found = static_file(path)
    if found is None:
        start_response("404 Not Found", [("Content-Length", "0")])
        return [b""]
    file, name = found
    content_type = (
        overrides.get(name, {}).get("contentType")
        or mimetypes.guess_type(name)[0]
        or "application/octet-stream"
    )
    body = file.read_bytes()
    start_response(
        "200 OK",
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("X-Stand-In-Served", "file"),
            *added,
        ],
    )
    return [body if environ["REQUEST_METHOD"] == "GET" else b""]


def call_function(environ, start_response, added):  # type: ignore[no-untyped-def]
    connection = HTTPConnection(function.hostname, function.port, timeout=60)
    target = environ.get("PATH_INFO", "/")
    if environ.get("QUERY_STRING"):
        target += "?" + environ["QUERY_STRING"]
    headers = dict(request_headers(environ))
    headers["X-Forwarded-Proto"] = "https"  # Vercel's edge speaks HTTPS only
    headers["X-Forwarded-For"] = environ.get("REMOTE_ADDR", "127.0.0.1")
    connection.request(environ["REQUEST_METHOD"], target, body=body_of(environ), headers=headers)
    answer = connection.getresponse()
    body = answer.read()
    kept = [(k, v) for k, v in answer.getheaders() if k.lower() not in HOP_BY_HOP]
    kept = [(k, v) for k, v in kept if k.lower() != "content-length"]
    start_response(
        f"{answer.status} {answer.reason}",
        [*kept, *added, ("Content-Length", str(len(body))), ("X-Stand-In-Served", "function")],
    )
    return [body]


serve(router)
