"""The route cache's hit path in one process, against a prerendered page's: microseconds per
request through a build's WSGI app (DIR/server.py's), with no server or socket around it.

Usage: python hit_path.py DIR CACHED_URL FILE_URL   (prints JSON: cached_us, file_us)
"""

import json
import sys
import time
from pathlib import Path

from werkzeug.test import EnvironBuilder

from flask_ondemand.loader import load_build

out, cached, page = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
app = load_build(out / "server.py")


def per_request(url: str, rounds: int = 3, count: int = 3000) -> float:
    """The fastest of ``rounds`` runs of ``count`` requests, in microseconds per request."""
    environ = EnvironBuilder(path=url).get_environ()

    def start_response(status: str, headers: list, exc_info: object = None) -> None:
        assert status.startswith("200"), status

    def once() -> None:
        body = app(dict(environ), start_response)
        for _ in body:
            pass
        getattr(body, "close", lambda: None)()

    once()  # stores the cached page, and finds the file
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(count):
            once()
        best = min(best, time.perf_counter() - start)
    return best / count * 1e6


print(json.dumps({"cached_us": per_request(cached), "file_us": per_request(page)}))
