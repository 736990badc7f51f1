"""What the host stand-ins share: a WSGI server on 127.0.0.1 that prints its address, and
reading a WSGI request. Standard library only: a stand-in may run on another Python than the
tests' (the host tools' 3.12).
"""

from __future__ import annotations

import sys
from wsgiref.simple_server import WSGIRequestHandler, make_server

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "proxy-authenticate",
    "proxy-authorization",
}


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def serve(app) -> None:  # type: ignore[no-untyped-def]
    server = make_server("127.0.0.1", 0, app, handler_class=_QuietHandler)
    print(f"Serving on http://127.0.0.1:{server.server_port}", flush=True)
    server.serve_forever()


def path_of(environ: dict) -> str:  # type: ignore[type-arg]
    """PATH_INFO as text: WSGI hands it over as Latin-1 decoded bytes."""
    return environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8", "replace")


def body_of(environ: dict) -> bytes:  # type: ignore[type-arg]
    length = int(environ.get("CONTENT_LENGTH") or 0)
    return environ["wsgi.input"].read(length) if length else b""


def request_headers(environ: dict) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    headers = [
        (key[5:].replace("_", "-").title(), value)
        for key, value in environ.items()
        if key.startswith("HTTP_")
    ]
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers.append((key.replace("_", "-").title(), environ[key]))
    return headers


def parse_headers_file(path) -> dict[str, list[tuple[str, str]]]:  # type: ignore[no-untyped-def]
    """A ``_headers`` file (Netlify's format, which Cloudflare reads too): a path on a line of
    its own, then its headers indented below it."""
    headers: dict[str, list[tuple[str, str]]] = {}
    current = ""
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith((" ", "\t")):
            name, _, value = line.strip().partition(":")
            headers[current].append((name.strip(), value.strip()))
        else:
            current = line.strip()
            headers[current] = []
    return headers


def reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


if __name__ == "__main__":
    sys.exit("import me")
