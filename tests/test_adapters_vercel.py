"""The vercel adapter: the Build Output API v3 layout, checked against the documented format,
and the shared answers through a stand-in router (tests/hosts/vercel_router.py)."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from flask_ondemand.adapters.vercel import rule_pattern, vercel_handler

from .servers import Server, assert_site_answers, build_with_adapter, host


@pytest.fixture(scope="module")
def output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out, result = build_with_adapter(tmp_path_factory.mktemp("vercel"), "vercel")
    assert "Deploy:  cd dist && vercel deploy --prebuilt" in result.stdout
    return out / ".vercel/output"


@pytest.fixture(scope="module")
def router(output: Path) -> Iterator[Server]:
    with host("vercel_router.py", str(output)) as server:
        yield server


def test_layout(output: Path) -> None:
    assert (output / "static/about/index.html").read_text() == "About, version 1"
    function = output / "functions/ondemand.func"
    config = json.loads((function / ".vc-config.json").read_text())
    assert re.fullmatch(r"python3\.\d+", config["runtime"])
    module, _, attribute = config["handler"].rpartition(".")
    assert (function / f"{module}.py").is_file()
    assert attribute == "handler"
    assert (function / "manifest.json").is_file()
    assert (function / "flask").is_dir()  # the function brings its packages


def test_config_follows_the_documented_format(output: Path) -> None:
    config = json.loads((output / "config.json").read_text())
    assert config["version"] == 3
    routes = config["routes"]
    for route in routes:
        assert set(route) <= {"src", "dest", "headers", "methods", "continue", "status", "handle"}
        assert ("handle" in route) != ("src" in route)
        if "src" in route:
            re.compile(route["src"])
    handles = [i for i, route in enumerate(routes) if "handle" in route]
    assert [routes[i]["handle"] for i in handles] == ["filesystem"]
    before, after = routes[: handles[0]], routes[handles[0] + 1 :]
    assert before[0] == {"src": "^/moved/$", "status": 308, "headers": {"Location": "/about/"}}
    assert {"src": "^/contact/$", "methods": ["POST"], "dest": "/ondemand"} in before
    assert {"src": "^/account/$", "dest": "/ondemand"} in after
    assert after[-1] == {"src": "^/.*$", "dest": "/ondemand"}
    assert config["overrides"]["hello"] == {"contentType": "text/html; charset=utf-8"}


def test_the_shared_answers(router: Server) -> None:
    assert_site_answers(router.url)


def test_extensionless_files_and_page_headers(router: Server) -> None:
    from .servers import fetch

    assert fetch(router.url, "/hello").headers["Content-Type"] == "text/html; charset=utf-8"
    assert fetch(router.url, "/terms/").headers["X-Robots-Tag"] == "noindex"


def test_rule_patterns() -> None:
    assert rule_pattern("/blog/<slug>/") == "^/blog/([^/]+)/$"
    assert rule_pattern("/docs/<path:rest>") == "^/docs/(.+)$"
    assert re.fullmatch(rule_pattern("/a.b/<int:n>"), "/a.b/12")
    assert not re.fullmatch(rule_pattern("/a.b/<int:n>"), "/aXb/12")


def test_handler_follows_the_vercel_python_event_contract() -> None:
    app = Flask(__name__)

    @app.post("/echo")
    def echo() -> tuple[str, int, dict[str, str]]:
        from flask import request

        return f"{request.args['q']}:{request.get_data(as_text=True)}", 201, {"X-Seen": "1"}

    payload = {
        "method": "POST",
        "path": "/echo?q=hi",
        "headers": {"content-type": "text/plain"},
        "body": base64.b64encode(b"body").decode(),
        "encoding": "base64",
    }
    answer = vercel_handler(app)({"body": json.dumps(payload)}, None)
    assert answer["statusCode"] == 201
    assert answer["headers"]["X-Seen"] == ["1"]
    assert base64.b64decode(answer["body"]) == b"hi:body"
