"""gunicorn settings (``--config``) for the route cache's tests: each worker writes the pid and
the path of every request it starts into the file ``REQUEST_STARTS`` names (gunicorn's
``pre_request`` hook), before the app sees it. A test then knows that two workers are both
handling a URL at once, with no clock."""

from __future__ import annotations

import os
from typing import Any


def pre_request(worker: Any, request: Any) -> None:
    log = os.environ.get("REQUEST_STARTS")
    if log:
        query = f"?{request.query}" if request.query else ""
        with open(log, "a") as file:
            file.write(f"{worker.pid} {request.path}{query}\n")
