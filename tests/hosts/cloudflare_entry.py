"""Runs the cloudflare adapter's ``src/entry.py`` under CPython, against the real
``workers/wsgi.py`` of workers-runtime-sdk (the package pywrangler vendors into a Python
Worker), with a shim only where that code meets JavaScript: the ``js`` and ``pyodide`` modules
and the runtime's two private helpers.

Why a shim: a Python Worker runs in Pyodide inside workerd, which downloads its Pyodide bundle
at run time; that cannot be had here. The shim's ``Response``, ``Headers`` and
``ReadableStream`` record what ``workers.wsgi`` makes of the app's answer, and its request
hands the body over through a reader as a JS stream does.

Usage: python cloudflare_entry.py SRC_DIR WORKERS_SITE_PACKAGES < requests (JSON lines:
method, url, headers, body); prints one JSON line per answer: status, statusText, headers,
body; or "asset", the status of the assets' answer, when the Worker handed the request to them
(200 when the project's public/ has a file for the path, as Cloudflare finds one, else 404).
"""

from __future__ import annotations

import asyncio
import json
import sys
import types
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit


class _AnyType(type):
    def __getattr__(cls, name: str) -> _Any:
        return _Any()


class _Any(metaclass=_AnyType):
    """A JS value nothing here looks into; a class too, for the code that subclasses one."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __getattr__(self, name: str) -> _Any:
        return _Any()

    def __call__(self, *args: Any, **kwargs: Any) -> _Any:
        return _Any()


class Headers:
    def __init__(self) -> None:
        self.pairs: list[tuple[str, str]] = []

    @classmethod
    def new(cls, *args: Any) -> Headers:
        return cls()

    def append(self, name: str, value: str) -> None:
        self.pairs.append((name, value))


class ReadableStream:
    def __init__(self, pull: Any, cancel: Any) -> None:
        self.pull, self.cancel = pull, cancel

    @classmethod
    def new(cls, pull: Any = None, cancel: Any = None) -> ReadableStream:
        return cls(pull, cancel)

    async def read_all(self) -> bytes:
        """Pull chunks as a client reading the response would."""
        chunks: list[bytes] = []
        state = {"done": False}

        class Controller:
            def enqueue(self, chunk: bytes) -> None:
                chunks.append(bytes(chunk))

            def close(self) -> None:
                state["done"] = True

            def error(self, message: str) -> None:
                raise AssertionError(f"the stream failed: {message}")

        while not state["done"]:
            await self.pull(Controller())
        return b"".join(chunks)


class Response:
    def __init__(self, body: Any, options: dict[str, Any]) -> None:
        self.body, self.options = body, options

    @classmethod
    def new(cls, body: Any, **options: Any) -> Response:
        return cls(body, options)


class _Proxy:
    def __init__(self, function: Any) -> None:
        self.function = function

    def __call__(self, *args: Any) -> Any:
        return self.function(*args)

    def destroy(self) -> None:
        pass


def _module(name: str, **attributes: Any) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attributes)
    module.__getattr__ = lambda attribute: _AnyType(attribute, (_Any,), {})  # type: ignore[method-assign]
    sys.modules[name] = module
    return module


def install_shim() -> None:
    js_exception = type("JsException", (Exception,), {})
    _module("js", Headers=Headers, Response=Response, ReadableStream=ReadableStream)
    pyodide = _module("pyodide", __version__="0.28.0")
    pyodide.ffi = _module(  # type: ignore[attr-defined]
        "pyodide.ffi",
        JsException=js_exception,
        JsProxy=type("JsProxy", (), {}),
        JsBuffer=type("JsBuffer", (), {}),
        create_proxy=_Proxy,
        create_once_callable=lambda function: function,
        destroy_proxies=lambda proxies: None,
        to_js=lambda value, **kwargs: value,
        run_sync=lambda value: value,  # the shim's reader answers at once
        jsnull=None,
    )
    pyodide.http = _module("pyodide.http", pyfetch=_Any())  # type: ignore[attr-defined]
    _module("_cloudflare_compat_flags")
    _module("_pyodide_entrypoint_helper")


class _Chunk:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def to_bytes(self) -> bytes:
        return self.data


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.parts = [data]

    def read(self) -> types.SimpleNamespace:
        if self.parts:
            return types.SimpleNamespace(done=False, value=_Chunk(self.parts.pop()))
        return types.SimpleNamespace(done=True, value=None)

    def releaseLock(self) -> None:
        pass


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def getReader(self) -> _Reader:
        return _Reader(self.data)


class Request:
    """A JS Request as the runtime hands it to ``fetch``."""

    def __init__(self, method: str, url: str, headers: list[list[str]], body: str) -> None:
        self.method, self.url = method, url
        self.headers = [(name, value) for name, value in headers]
        self.body = _Body(body.encode()) if body else None


class Asset:
    def __init__(self, status: int) -> None:
        self.status = status


class Assets:
    def __init__(self, public: Path) -> None:
        self.public = public

    async def fetch(self, request: Request) -> Asset:
        path = unquote(urlsplit(request.url).path).lstrip("/")
        names = [path + "index.html"] if path.endswith("/") or not path else [path]
        found = any((self.public / name).is_file() for name in names)
        return Asset(200 if found else 404)


async def answer(entry: Any, request: Request, public: Path) -> dict[str, Any]:
    env = types.SimpleNamespace(ASSETS=Assets(public))
    worker = entry.Default(_Any(), env)
    response = await worker.fetch(request)
    if isinstance(response, Asset):
        return {"asset": response.status}
    body = response.body
    data = await body.read_all() if isinstance(body, ReadableStream) else b""
    return {
        "status": response.options["status"],
        "statusText": response.options.get("statusText", ""),
        "headers": response.options["headers"].pairs,
        "body": data.decode("utf-8", "replace"),
    }


def main() -> None:
    source, workers_site = sys.argv[1], sys.argv[2]
    install_shim()
    sys.path.insert(0, source)
    sys.path.append(workers_site)  # workers from there; the app's packages from this Python
    import entry

    for line in sys.stdin:
        request = json.loads(line)
        reply = asyncio.run(
            answer(
                entry,
                Request(
                    request["method"],
                    request["url"],
                    request.get("headers", []),
                    request.get("body", ""),
                ),
                Path(source).parent / "public",
            )
        )
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
