"""A test double of Cloudflare's ``workers`` module for Python Workers, following its
documented interface: ``WorkerEntrypoint`` (a class whose instances have ``env`` and ``ctx``
and whose ``async fetch(request)`` answers), ``Response``, and ``wsgi.fetch(app, request, env,
ctx=None)``, which runs a WSGI app for a request and returns a ``Response``.
"""

from __future__ import annotations

import io
import sys
import types
from urllib.parse import urlsplit


class WorkerEntrypoint:
    def __init__(self, ctx: object = None, env: object = None) -> None:
        self.ctx = ctx
        self.env = env


class Response:
    def __init__(
        self, body: bytes = b"", status: int = 200, headers: list[tuple[str, str]] | None = None
    ) -> None:
        self.body = body
        self.status = status
        self.headers = headers or []


class Request:
    """What the runtime hands ``fetch``: a URL, a method, headers and a body."""

    def __init__(
        self,
        url: str,
        method: str = "GET",
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
    ) -> None:
        self.url = url
        self.method = method
        self.headers = headers or []
        self._body = body

    async def bytes(self) -> bytes:
        return self._body


async def _fetch(app, request: Request, env: object, ctx: object = None) -> Response:  # type: ignore[no-untyped-def]
    url = urlsplit(request.url)
    body = await request.bytes()
    environ = {
        "REQUEST_METHOD": request.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": url.path.encode().decode("latin-1"),
        "QUERY_STRING": url.query,
        "SERVER_NAME": url.hostname or "localhost",
        "SERVER_PORT": str(url.port or 443),
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": url.scheme,
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "CONTENT_LENGTH": str(len(body)),
        "workers.env": env,
    }
    for name, value in request.headers:
        key = name.upper().replace("-", "_")
        if key == "CONTENT_TYPE":
            environ["CONTENT_TYPE"] = value
        elif key != "CONTENT_LENGTH":
            environ[f"HTTP_{key}"] = value
    answer: dict[str, object] = {}

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: object = None
    ) -> None:
        answer.update(status=int(status.split()[0]), headers=headers)

    chunks = app(environ, start_response)
    data = b"".join(chunks)
    getattr(chunks, "close", lambda: None)()
    return Response(data, answer["status"], answer["headers"])  # type: ignore[arg-type]


wsgi = types.SimpleNamespace(fetch=_fetch)
