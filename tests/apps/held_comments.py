"""gunicorn settings (``--config``) for tests/test_example_app.py: the example's slow comments
wait for the client, not for a second, so a test can show that /live/ streams with no clock.

Once a worker has loaded the app, ``example_app.slow_comments`` (which /live/ looks up at each
request) returns only when the file named by the request's ``release`` query parameter exists:
the client makes it once it holds the page's head. After 10 s it gives up and says so.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from flask import request


def post_worker_init(worker: Any) -> None:
    def held_comments() -> list[str]:
        release = request.args.get("release", "")
        deadline = time.monotonic() + 10
        while not os.path.exists(release):
            if time.monotonic() > deadline:
                return ["never released: the head did not reach the client first"]
            time.sleep(0.01)
        return ["released by the client"]

    sys.modules["example_app"].slow_comments = held_comments
