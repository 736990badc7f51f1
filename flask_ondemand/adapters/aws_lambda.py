"""AWS Lambda: a folder ready to zip, with the slim app wrapped by apig-wsgi.

Writes ``DIR/aws-lambda/``:

- ``function/``: zip it and upload it as the function's code. Its handler is
  ``handler.handler``: the slim app wrapped by apig-wsgi, which takes API Gateway REST (v1) and
  HTTP API (v2) events, and Application Load Balancer events.
- ``static/``: the client files, for S3 behind CloudFront.
- ``routes.json``: what to route where: the path patterns to send to the function (in API
  Gateway's ``{name}``/``{name+}`` form), the redirects, and each file's type and headers.

Needs apig-wsgi: ``pip install flask-ondemand[aws]``.
"""

from __future__ import annotations

import importlib
from typing import Any

from ..errors import BuildError
from . import Deployment, Site, Variable, rule_parts, write_json
from .bundle import linux, write_bundle

FOLDER = "aws-lambda"

_HANDLER = '''\
"""The on-demand half of a flask_ondemand build, as an AWS Lambda function."""

from apig_wsgi import make_lambda_handler

from flask_ondemand.adapters.aws_lambda import joining_repeated_headers
from flask_ondemand.loader import load_slim_app

app = load_slim_app(__file__)
handler = make_lambda_handler(joining_repeated_headers(app), binary_support=True)
'''


class AwsLambdaAdapter:
    name = "aws-lambda"

    def write(self, site: Site) -> Deployment:
        try:
            importlib.import_module("apig_wsgi")
        except ImportError:
            raise BuildError(
                "the aws-lambda adapter needs apig-wsgi: pip install flask-ondemand[aws]"
            ) from None
        folder = site.build_dir / FOLDER
        write_bundle(
            site, folder / "function", target=linux("3.12", "x86_64"), extra_modules=["apig_wsgi"]
        )
        (folder / "function" / "handler.py").write_text(_HANDLER, encoding="utf-8")
        site.copy_client(folder / "static")
        write_json(folder / "routes.json", routes(site))
        shown = f"{site.shown(site.out_dir)}/{FOLDER}"
        return Deployment(
            (FOLDER,),
            f"(cd {shown}/function && zip -qr ../function.zip .), upload function.zip with"
            f" handler handler.handler, sync {shown}/static to S3, and route the paths in"
            f" {shown}/routes.json to the function",
        )


def joining_repeated_headers(app: Any) -> Any:
    """Wrap a WSGI app so that a header sent twice is sent once, its values joined by commas.

    HTTP reads the two forms alike (Set-Cookie aside, which stays as it is), but apig-wsgi
    keeps only the last value of a repeated header in an HTTP API (v2) answer.
    """

    def joined(environ: dict[str, Any], start_response: Any) -> Any:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            merged: dict[str, tuple[str, str]] = {}
            kept: list[tuple[str, str]] = []
            for name, value in headers:
                key = name.lower()
                if key == "set-cookie":
                    kept.append((name, value))
                elif key in merged:
                    merged[key] = (merged[key][0], f"{merged[key][1]}, {value}")
                else:
                    merged[key] = (name, value)
            return start_response(status, [*merged.values(), *kept], exc_info)

        return app(environ, start)

    return joined


def routes(site: Site) -> dict[str, object]:
    manifest = site.manifest
    return {
        "function": sorted({gateway_path(entry.rule) for entry in manifest.on_demand}),
        "redirects": {
            url: {"status": r.status, "location": r.location}
            for url, r in manifest.redirects.items()
        },
        "content_types": {"/" + file: t for file, t in manifest.content_types.items()},
        "headers": {
            "/" + file: pairs
            for file in manifest.files.values()
            if (pairs := manifest.headers_for(file))
        },
    }


def gateway_path(rule: str) -> str:
    """A Werkzeug rule as an API Gateway path: ``{name}``, or ``{name+}`` for a path."""
    path = ""
    for part in rule_parts(rule):
        if isinstance(part, Variable):
            path += f"{{{part.name}+}}" if part.takes_slashes else f"{{{part.name}}}"
        else:
            path += part
    return path
