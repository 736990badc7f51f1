"""Vercel: the Build Output API, version 3.

Writes ``DIR/.vercel/output/``: ``static/`` (the client files), one Python function
``functions/ondemand.func/`` holding the slim app and its code, and ``config.json`` whose routes
send, in order: prerendered redirects with their status; headers prerendered pages set; methods
other than GET to the function (so a form posting to its own page reaches it); then
``{"handle": "filesystem"}``; then the on-demand rules, and everything else (the app's 404 page)
to the function. Deploy from ``DIR`` with ``vercel deploy --prebuilt``.

The function's ``index.handler`` follows the event contract of Vercel's open-source Python
runtime (a JSON payload of method, path, headers and body); ``index.app`` is the WSGI app.

Options: ``ONDEMAND_VERCEL_RUNTIME`` (default: this Python's, as "python3.12"),
``ONDEMAND_BUNDLE_INCLUDE`` (extra project files the function needs, see bundle.py).
"""

from __future__ import annotations

import base64
import json
import re
import sys
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.test import EnvironBuilder, run_wsgi_app

from ..routes import FILE_METHODS
from . import Deployment, Site, Variable, rule_parts, write_json
from .bundle import write_bundle

FUNCTION = "ondemand"

_ENTRY = '''\
"""The on-demand half of a flask_ondemand build, as a Vercel function."""

from flask_ondemand.adapters.vercel import vercel_handler
from flask_ondemand.loader import load_slim_app

app = load_slim_app(__file__)
handler = vercel_handler(app)
'''


class VercelAdapter:
    name = "vercel"

    def write(self, site: Site) -> Deployment:
        output = site.build_dir / ".vercel" / "output"
        site.copy_client(output / "static")
        function = output / "functions" / f"{FUNCTION}.func"
        write_bundle(site, function)
        (function / "index.py").write_text(_ENTRY, encoding="utf-8")
        runtime = site.option(self.name, "runtime") or f"python3.{sys.version_info.minor}"
        write_json(function / ".vc-config.json", {"runtime": runtime, "handler": "index.handler"})
        write_json(output / "config.json", config(site))
        return Deployment(
            (".vercel",), f"cd {site.shown(site.out_dir)} && vercel deploy --prebuilt"
        )


def config(site: Site) -> dict[str, Any]:
    """The ``config.json`` of the build: routes and overrides, as described above."""
    manifest = site.manifest
    destination = f"/{FUNCTION}"
    routes: list[dict[str, Any]] = []
    for url, redirect in sorted(manifest.redirects.items()):
        routes.append(
            {
                "src": _exact(url),
                "status": redirect.status,
                "headers": {"Location": redirect.location},
            }
        )
    url_of = {file: url for url, file in manifest.files.items()}
    for file in sorted(url_of):
        if pairs := manifest.headers_for(file):
            headers = {name: value for name, value in pairs}
            routes.append({"src": _exact(url_of[file]), "headers": headers, "continue": True})
    for entry in [*manifest.prerendered, *manifest.on_demand]:
        other = sorted(set(entry.methods) - FILE_METHODS)
        if other:
            routes.append({"src": rule_pattern(entry.rule), "methods": other, "dest": destination})
    routes.append({"handle": "filesystem"})
    for entry in manifest.on_demand:
        if "GET" in entry.methods:
            routes.append({"src": rule_pattern(entry.rule), "dest": destination})
    routes.append({"src": "^/.*$", "dest": destination})
    overrides = {
        file: {"contentType": content_type} for file, content_type in manifest.content_types.items()
    }
    return {"version": 3, "routes": routes, "overrides": overrides}


def rule_pattern(rule: str) -> str:
    """A Werkzeug rule as the regular expression of a Vercel route."""
    pattern = ""
    for part in rule_parts(rule):
        if isinstance(part, Variable):
            pattern += "(.+)" if part.takes_slashes else "([^/]+)"
        else:
            pattern += re.escape(part)
    return f"^{pattern}$"


def _exact(url: str) -> str:
    return f"^{re.escape(url)}$"


def vercel_handler(
    app: Callable[..., Iterable[bytes]],
) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """Wrap a WSGI app in the handler Vercel's Python runtime calls.

    The event's ``body`` is a JSON payload with ``method``, ``path`` (with its query),
    ``headers``, and ``body`` (base64 when ``encoding`` is "base64"); the answer has
    ``statusCode``, ``headers`` (a list of values per name) and a base64 ``body``.
    """

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        payload = json.loads(event["body"])
        body = payload.get("body") or ""
        data = base64.b64decode(body) if payload.get("encoding") == "base64" else body.encode()
        path, _, query = payload["path"].partition("?")
        environ = EnvironBuilder(
            path=path,
            query_string=query,
            method=payload["method"],
            headers=payload.get("headers") or {},
            data=data,
        ).get_environ()
        chunks, status, headers = run_wsgi_app(app, environ, buffered=True)
        grouped: dict[str, list[str]] = {}
        for name, value in headers.items():
            grouped.setdefault(name, []).append(value)
        return {
            "statusCode": int(status.split()[0]),
            "headers": grouped,
            "body": base64.b64encode(b"".join(chunks)).decode(),
            "encoding": "base64",
        }

    return handler
