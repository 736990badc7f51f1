"""A stand-in for the Lambda service's Runtime API, which AWS's runtime interface client
(awslambdaric, the real one, as in Lambda's Python images) polls for events.

Why a stand-in: inside Lambda, AWS runs this API; its emulator (aws-lambda-rie) ships as a
binary from GitHub or in Docker images, neither of which can be had here. It follows the
documented API: ``GET /2018-06-01/runtime/invocation/next`` answers one event, with
``Content-Type`` (without it awslambdaric crashes) and the ``Lambda-Runtime-*`` headers; the
client posts the result to ``.../invocation/<id>/response``, or ``.../error``.
"""

from __future__ import annotations

import json
import queue
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PREFIX = "/2018-06-01/runtime"


class RuntimeApi:
    """The API on 127.0.0.1; :meth:`invoke` hands one event to the client and waits."""

    def __init__(self) -> None:
        self._events: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self._results: dict[str, queue.Queue[tuple[str, Any]]] = {}
        self.init_errors: list[Any] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                if self.path != f"{PREFIX}/invocation/next":
                    self.send_error(404)
                    return
                request_id, body = api._events.get()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Lambda-Runtime-Aws-Request-Id", request_id)
                self.send_header("Lambda-Runtime-Deadline-Ms", "99999999999999")
                self.send_header(
                    "Lambda-Runtime-Invoked-Function-Arn",
                    "arn:aws:lambda:us-east-1:123456789012:function:ondemand",
                )
                self.send_header(
                    "Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000"
                )
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                parts = self.path.removeprefix(PREFIX).strip("/").split("/")
                if parts == ["init", "error"]:
                    api.init_errors.append(json.loads(body or b"null"))
                elif len(parts) == 3 and parts[0] == "invocation":
                    api._results[parts[1]].put((parts[2], json.loads(body or b"null")))
                else:
                    self.send_error(404)
                    return
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def invoke(self, event: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
        """Send ``event`` to the function and return its result; an error is raised."""
        request_id = str(uuid.uuid4())
        self._results[request_id] = queue.Queue()
        self._events.put((request_id, json.dumps(event).encode()))
        try:
            kind, result = self._results[request_id].get(timeout=timeout)
        except queue.Empty:
            errors = self.init_errors
            raise AssertionError(f"no answer to {event!r}; init errors: {errors}") from None
        finally:
            del self._results[request_id]
        if kind != "response":
            raise AssertionError(f"the function failed: {result}")
        answer: dict[str, Any] = result
        return answer

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
