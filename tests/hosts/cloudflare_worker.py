"""A stand-in for Cloudflare serving a Python Worker with static assets.

It reads wrangler.toml; applies the assets folder's ``_redirects`` (static redirects, before
assets); serves a matching file from the assets folder (``/x/`` from ``x/index.html``; ``/x``
redirected to ``/x/`` when that is a folder, as Cloudflare's default html_handling does) with
the headers ``_headers`` gives it; and otherwise imports the Worker's ``main`` module with the
test double of ``workers`` (workers_double/) and calls ``Default(...).fetch(request)``.

Usage: python -S cloudflare_worker.py PROJECT_DIR
"""

from __future__ import annotations

import asyncio
import importlib
import mimetypes
import sys
from pathlib import Path

import tomllib
from common import body_of, parse_headers_file, path_of, reason, request_headers, serve

project = Path(sys.argv[1])
config = tomllib.loads((project / "wrangler.toml").read_text())
assert "python_workers" in config["compatibility_flags"]
assets = project / config["assets"]["directory"]
main = project / config["main"]
sys.path.insert(0, str(Path(__file__).parent / "workers_double"))
sys.path.insert(0, str(main.parent))
entry = importlib.import_module(main.stem)
from workers import Request  # noqa: E402  (the double, after the path is set)

ignored = set((assets / ".assetsignore").read_text().split()) | {"_redirects", "_headers"}
redirects = {}
for line in (assets / "_redirects").read_text().splitlines():
    if line.strip() and not line.startswith("#"):
        source, target, status = line.split()
        redirects[source] = (target, int(status))
headers_for = parse_headers_file(assets / "_headers")


def asset(path: str) -> Path | None:
    relative = path.lstrip("/")
    file = assets / (relative + "index.html" if path.endswith("/") else relative)
    return file if file.is_file() and file.name not in ignored else None


def worker(environ, start_response):  # type: ignore[no-untyped-def]
    path, method = path_of(environ), environ["REQUEST_METHOD"]
    if path in redirects:
        target, status = redirects[path]
        start_response(
            f"{status} {reason(status)}", [("Location", target), ("Content-Length", "0")]
        )
        return [b""]
    if method in ("GET", "HEAD"):
        file = asset(path)
        if file is not None:
            body = file.read_bytes()
            headers = [
                ("Content-Type", mimetypes.guess_type(file.name)[0] or "application/octet-stream")
            ]
            for name, value in headers_for.get(path, []):
                headers = [(k, v) for k, v in headers if k.lower() != name.lower()] + [
                    (name, value)
                ]
            start_response("200 OK", [*headers, ("Content-Length", str(len(body)))])
            return [body if method == "GET" else b""]
        if not path.endswith("/") and asset(path + "/"):
            start_response(
                "307 Temporary Redirect", [("Location", path + "/"), ("Content-Length", "0")]
            )
            return [b""]
    query = environ.get("QUERY_STRING")
    url = f"https://worker.example{path}" + (f"?{query}" if query else "")
    request = Request(url, method, request_headers(environ), body_of(environ))
    response = asyncio.run(entry.Default(None, {"ASSETS": None}).fetch(request))
    headers = [(k, v) for k, v in response.headers if k.lower() != "content-length"]
    start_response(
        f"{response.status} {reason(response.status)}",
        [*headers, ("Content-Length", str(len(response.body)))],
    )
    return [response.body]


serve(worker)
