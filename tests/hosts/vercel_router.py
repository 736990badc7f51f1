"""A stand-in for Vercel's router, for .vercel/output/ (Build Output API v3).

It follows config.json's routes in order: a route whose ``src`` matches (and whose ``methods``
include the request's) redirects when it has a ``status`` and a Location, adds its headers and
goes on when it has ``continue``, or sends the request to its ``dest`` function. At
``{"handle": "filesystem"}`` it serves a file from static/ if one matches (``/x/`` from
``x/index.html``, and ``/x`` too, as Vercel does), with the type from ``overrides``. The
function is imported from its folder, by the module of its ``.vc-config.json`` handler, and
its ``app`` (the WSGI app) is called.

Usage: python -S vercel_router.py OUTPUT_DIR
"""

from __future__ import annotations

import importlib
import json
import mimetypes
import re
import sys
from pathlib import Path

from common import path_of, reason, serve

output = Path(sys.argv[1])
config = json.loads((output / "config.json").read_text())
assert config["version"] == 3
functions = {}
for folder in (output / "functions").glob("*.func"):
    vc_config = json.loads((folder / ".vc-config.json").read_text())
    module_name = vc_config["handler"].rpartition(".")[0]
    sys.path.insert(0, str(folder))
    functions["/" + folder.name[: -len(".func")]] = importlib.import_module(module_name).app
static = output / "static"
overrides = config.get("overrides", {})


def static_file(path: str) -> tuple[Path, str] | None:
    relative = path.lstrip("/")
    for candidate in (relative, relative.rstrip("/") + "/index.html" if relative else "index.html"):
        file = static / candidate
        if candidate and file.is_file() and file.resolve().is_relative_to(static.resolve()):
            return file, candidate
    return None


def router(environ, start_response):  # type: ignore[no-untyped-def]
    method, path = environ["REQUEST_METHOD"], path_of(environ)
    added: list[tuple[str, str]] = []
    for route in config["routes"]:
        if route.get("handle") == "filesystem":
            found = static_file(path) if method in ("GET", "HEAD") else None
            if found:
                file, name = found
                content_type = (
                    overrides.get(name, {}).get("contentType")
                    or mimetypes.guess_type(name)[0]
                    or "application/octet-stream"
                )
                body = file.read_bytes()
                start_response(
                    "200 OK",
                    [("Content-Type", content_type), ("Content-Length", str(len(body))), *added],
                )
                return [body if method == "GET" else b""]
            continue
        if "handle" in route or not re.search(route["src"], path):
            continue
        if "methods" in route and method not in route["methods"]:
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
        app = functions[route["dest"]]

        def start_with_added(status, response_headers, exc_info=None, added=added):  # type: ignore[no-untyped-def]
            return start_response(status, [*response_headers, *added], exc_info)

        return app(environ, start_with_added)
    start_response("404 Not Found", [("Content-Length", "0")])
    return [b""]


serve(router)
