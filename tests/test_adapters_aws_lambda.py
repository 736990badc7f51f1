"""The aws-lambda adapter: the handler called with API Gateway v1, v2 and ALB events must
answer as the slim app does through WSGI; and the shared answers hold through a stand-in for
CloudFront, S3 and API Gateway (tests/hosts/lambda_gateway.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from flask_ondemand.adapters.aws_lambda import gateway_path

from .servers import HOSTS, Server, assert_site_answers, build_with_adapter, host

REQUESTS = [
    {"method": "GET", "path": "/lab/visits", "headers": [["Cookie", "visits=4"]]},
    {
        "method": "GET",
        "path": "/lab/cookies/read?name=c&json=1",
        "headers": [["Cookie", "c=[1,2]"]],
    },
    {"method": "GET", "path": "/lab/returns/dict"},
    {"method": "GET", "path": "/lab/status"},
    {"method": "GET", "path": "/lab/headers"},
    {"method": "PUT", "path": "/lab/api"},
    {"method": "GET", "path": "/lab/go?to=/about/&status=307"},
    {"method": "GET", "path": "/posts/nope/"},
    {"method": "GET", "path": "/about"},
    {
        "method": "POST",
        "path": "/lab/cookies/set",
        "headers": [["Content-Type", "application/x-www-form-urlencoded"]],
        "body": "name=note&value=caf%C3%A9",
    },
    {
        "method": "POST",
        "path": "/contact/",
        "headers": [["Content-Type", "application/x-www-form-urlencoded"]],
        "body": "name=Ann",
    },
]


@pytest.fixture(scope="module")
def output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out, _ = build_with_adapter(tmp_path_factory.mktemp("lambda"), "aws-lambda")
    return out / "aws-lambda"


def test_layout(output: Path) -> None:
    assert (output / "function/handler.py").is_file()
    assert (output / "function/apig_wsgi").exists()
    assert (output / "static/about/index.html").read_text() == "About, version 1"
    routes = json.loads((output / "routes.json").read_text())
    assert "/lab/returns/{kind}" in routes["function"]
    assert "/about/" not in routes["function"]
    assert routes["redirects"]["/old/"] == {"status": 301, "location": "/about/"}
    assert routes["content_types"]["/hello"] == "text/html; charset=utf-8"


@pytest.mark.parametrize("event_format", ["v1", "v2", "alb"])
def test_handler_answers_equal_direct_wsgi_answers(output: Path, event_format: str) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-S",
            str(HOSTS / "lambda_gateway.py"),
            str(output),
            event_format,
            "--compare",
        ],
        input="".join(json.dumps(request) + "\n" for request in REQUESTS),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=HOSTS,
        check=True,
    )
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(answers) == len(REQUESTS)
    for answer in answers:
        assert answer["handler"] == answer["direct"], answer["request"]
    statuses = [answer["direct"][0] for answer in answers]
    assert statuses == [200, 200, 200, 404, 200, 200, 307, 404, 308, 200, 200]


@pytest.fixture(scope="module", params=["v1", "v2", "alb"])
def gateway(request: pytest.FixtureRequest, output: Path) -> Iterator[Server]:
    with host("lambda_gateway.py", str(output), request.param) as server:
        yield server


def test_the_shared_answers(gateway: Server) -> None:
    assert_site_answers(gateway.url)


def test_gateway_paths() -> None:
    assert gateway_path("/blog/<slug>/") == "/blog/{slug}/"
    assert gateway_path("/docs/<path:rest>") == "/docs/{rest+}"
