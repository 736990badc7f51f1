"""A stand-in for what AWS puts in front of the aws-lambda adapter's function: CloudFront
serving static/ (as from S3) with the redirects, types and headers of routes.json (and sending
a GET with a live cookie for a live page, or with a query string for a page of a live_query
route, to the function, as the template's viewer request function does, which
tests/test_adapters_aws_lambda.py runs under Node), and API Gateway (REST v1, HTTP API v2), a
Function URL or an Application Load Balancer (with or without multi-value headers) turning
every other request into the event the function gets. Each answer says
``X-Stand-In-Served: file`` or ``function`` (AWS sends no such header), so that a test can
tell a file from the function's answer of the same page.

Why a stand-in: CloudFront, S3 and API Gateway run only on AWS (SAM local and localstack need
Docker, which is not here). The events are built in the shapes AWS documents; the function is
the real one, run by awslambdaric (see lambda_runtime_api.py).
"""

from __future__ import annotations

import base64
import json
import mimetypes
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from .common import body_of, path_of, reason, request_headers

KINDS = ("v1", "v2", "url", "alb", "alb-multi")
Answer = tuple[int, list[tuple[str, str]], bytes]


def make_event(
    kind: str, method: str, path: str, query: str, headers: list[tuple[str, str]], body: bytes
) -> dict[str, Any]:
    encoded = base64.b64encode(body).decode() if body else ""
    single = {name: value for name, value in headers}
    multi: dict[str, list[str]] = {}
    for name, value in headers:
        multi.setdefault(name, []).append(value)
    parsed = parse_qs(query, keep_blank_values=True)
    # An ALB passes the query's names and values as they came, still percent-encoded: "If
    # the query parameters are URL-encoded, the load balancer does not decode them" (AWS's
    # "Lambda functions as targets" guide). API Gateway decodes them.
    as_sent: dict[str, list[str]] = {}
    for pair in filter(None, query.split("&")):
        name, _, value = pair.partition("=")
        as_sent.setdefault(name, []).append(value)
    if kind in ("v2", "url"):
        domain = (
            "abc.lambda-url.us-east-1.on.aws"
            if kind == "url"
            else "id.execute-api.us-east-1.amazonaws.com"
        )
        cookies = [c.strip() for n, v in headers if n.lower() == "cookie" for c in v.split(";")]
        return {
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": path,
            "rawQueryString": query,
            **({"cookies": cookies} if cookies else {}),
            "headers": {name.lower(): value for name, value in headers if name.lower() != "cookie"},
            **(
                {"queryStringParameters": {k: ",".join(v) for k, v in parsed.items()}}
                if parsed
                else {}
            ),
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "abc",
                "domainName": domain,
                "domainPrefix": domain.split(".")[0],
                "requestId": "id",
                "routeKey": "$default",
                "stage": "$default",
                "time": "12/Mar/2020:19:03:58 +0000",
                "timeEpoch": 1583348638390,
                "http": {
                    "method": method,
                    "path": path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": "192.0.2.1",
                    "userAgent": single.get("User-Agent", ""),
                },
            },
            "body": encoded,
            "isBase64Encoded": bool(body),
        }
    if kind == "alb":  # without multi-value headers: one value a name, the last
        return {
            "requestContext": {"elb": {"targetGroupArn": _TARGET_GROUP}},
            "httpMethod": method,
            "path": path,
            "queryStringParameters": {k: v[-1] for k, v in as_sent.items()},
            "headers": {name.lower(): value for name, value in headers},
            "body": encoded,
            "isBase64Encoded": bool(body),
        }
    event: dict[str, Any] = {
        "httpMethod": method,
        "path": path,
        "queryStringParameters": {k: v[-1] for k, v in parsed.items()} or None,
        "multiValueQueryStringParameters": parsed or None,
        "headers": single,
        "multiValueHeaders": multi,
        "body": encoded,
        "isBase64Encoded": bool(body),
    }
    if kind == "alb-multi":
        event["requestContext"] = {"elb": {"targetGroupArn": _TARGET_GROUP}}
        event["queryStringParameters"] = {k: v[-1] for k, v in as_sent.items()} or None
        event["multiValueQueryStringParameters"] = as_sent or None
        return event
    event.update(
        {
            "version": "1.0",
            "resource": "/{proxy+}",
            "pathParameters": {"proxy": path.lstrip("/")},
            "stageVariables": None,
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "api-id",
                "httpMethod": method,
                "path": "/prod" + path,
                "protocol": "HTTP/1.1",
                "requestId": "id",
                "resourcePath": "/{proxy+}",
                "stage": "prod",
                "identity": {"sourceIp": "192.0.2.1", "userAgent": single.get("User-Agent", "")},
            },
        }
    )
    return event


_TARGET_GROUP = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/lambda/0123"


def answer_of(result: dict[str, Any]) -> Answer:
    headers: list[tuple[str, str]] = []
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers += [(name, value) for value in values]
    headers += list((result.get("headers") or {}).items())
    headers += [("Set-Cookie", cookie) for cookie in result.get("cookies", [])]
    body = result.get("body") or ""
    data = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
    return result["statusCode"], headers, data


def front(
    output: Path, kind: str, invoke: Callable[[dict[str, Any]], dict[str, Any]]
) -> Callable[..., Iterable[bytes]]:
    """The WSGI app of CloudFront and the gateway of ``kind`` in front of ``invoke``."""
    routes = json.loads((output / "routes.json").read_text())
    static = output / "static"
    renamed = set(routes["rewrites"].values())
    live_cookies = set(routes["live"]["cookies"])
    live_pages = [re.compile(pattern) for pattern in routes["live"]["pages"]]
    live_query = set(routes["live_query"])

    def is_live(environ: dict[str, Any], path: str) -> bool:
        if path in live_query and environ.get("QUERY_STRING"):
            return True
        header = environ.get("HTTP_COOKIE", "")
        names = {pair.split("=")[0].strip() for pair in header.split(";")}
        return bool(live_cookies & names) and any(page.match(path) for page in live_pages)

    def static_answer(path: str) -> Answer | None:
        if path in routes["redirects"]:
            redirect = routes["redirects"][path]
            return redirect["status"], [("Location", redirect["location"])], b""
        if path in routes["rewrites"]:  # the viewer-request function's rules
            name = routes["rewrites"][path]
        elif path.endswith("/index.html") or path + "index.html" in renamed:
            return None
        else:
            name = path + "index.html" if path.endswith("/") else path
        file = static / name.lstrip("/")
        if not file.is_file():
            return None
        kind_of = routes["content_types"].get(name) or mimetypes.guess_type(file.name)[0]
        headers = [("Content-Type", kind_of or "application/octet-stream")]
        headers += [(n, v) for n, v in routes["headers"].get(name, [])]
        return 200, headers, file.read_bytes()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = path_of(environ)
        found = None
        served = "file"
        if environ["REQUEST_METHOD"] in ("GET", "HEAD") and not is_live(environ, path):
            found = static_answer(path)
        if found is None:
            served = "function"
            event = make_event(
                kind,
                environ["REQUEST_METHOD"],
                path,
                environ.get("QUERY_STRING", ""),
                request_headers(environ),
                body_of(environ),
            )
            found = answer_of(invoke(event))
        status, headers, body = found
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        headers += [("Content-Length", str(len(body))), ("X-Stand-In-Served", served)]
        start_response(f"{status} {reason(status)}", headers)
        return [body]

    return app
