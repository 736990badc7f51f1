"""A stand-in for AWS in front of the aws-lambda adapter's output: CloudFront serving
static/ (as from S3) with the redirects, types and headers of routes.json, and API Gateway
(REST v1, HTTP API v2) or an Application Load Balancer in front of the function for the rest.

Each request for the function becomes the event of the chosen format, in the shapes AWS
documents; ``handler.handler`` is called with it, and its answer becomes the HTTP response.
With --compare, it instead reads requests as JSON lines on stdin and prints, for each, the
handler's answer and the answer of the slim app called directly through WSGI.

Usage: python -S lambda_gateway.py AWS_LAMBDA_DIR v1|v2|alb [--compare]
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from urllib.parse import parse_qs

from common import body_of, path_of, reason, request_headers, serve

output = Path(sys.argv[1])
function, static = output / "function", output / "static"
routes = json.loads((output / "routes.json").read_text())
event_format = sys.argv[2]
sys.path.insert(0, str(function))
from handler import handler  # noqa: E402  (from the bundle, after the path is set)


def make_event(
    method: str, path: str, query: str, headers: list[tuple[str, str]], body: bytes
) -> dict:  # type: ignore[type-arg]
    encoded = base64.b64encode(body).decode() if body else ""
    single = {name: value for name, value in headers}
    multi: dict[str, list[str]] = {}
    for name, value in headers:
        multi.setdefault(name, []).append(value)
    parsed = parse_qs(query, keep_blank_values=True)
    if event_format == "v2":
        return {
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": path,
            "rawQueryString": query,
            "cookies": [
                c.strip() for name, v in headers if name.lower() == "cookie" for c in v.split(";")
            ],
            "headers": {name.lower(): value for name, value in headers if name.lower() != "cookie"},
            "queryStringParameters": {k: ",".join(v) for k, v in parsed.items()} or None,
            "requestContext": {
                "accountId": "123456789012",
                "apiId": "api-id",
                "domainName": "id.execute-api.us-east-1.amazonaws.com",
                "domainPrefix": "id",
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
    event = {
        "httpMethod": method,
        "path": path,
        "queryStringParameters": {k: v[-1] for k, v in parsed.items()} or None,
        "multiValueQueryStringParameters": parsed or None,
        "headers": single,
        "multiValueHeaders": multi,
        "body": encoded,
        "isBase64Encoded": bool(body),
    }
    if event_format == "alb":
        event["requestContext"] = {
            "elb": {
                "targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:"
                "targetgroup/lambda/0123456789abcdef"
            }
        }
    else:
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
                    "identity": {
                        "sourceIp": "192.0.2.1",
                        "userAgent": single.get("User-Agent", ""),
                    },
                },
            }
        )
    return event


def answer_of(result: dict) -> tuple[int, list[tuple[str, str]], bytes]:  # type: ignore[type-arg]
    headers: list[tuple[str, str]] = []
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers += [(name, value) for value in values]
    headers += list((result.get("headers") or {}).items())
    headers += [("Set-Cookie", cookie) for cookie in result.get("cookies", [])]
    body = result.get("body") or ""
    data = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
    return result["statusCode"], headers, data


def static_answer(path: str) -> tuple[int, list[tuple[str, str]], bytes] | None:
    if path in routes["redirects"]:
        redirect = routes["redirects"][path]
        return redirect["status"], [("Location", redirect["location"])], b""
    name = path + "index.html" if path.endswith("/") else path
    file = static / name.lstrip("/")
    if not file.is_file():
        return None
    import mimetypes

    kind = (
        routes["content_types"].get(name)
        or mimetypes.guess_type(file.name)[0]
        or "application/octet-stream"
    )
    return (
        200,
        [("Content-Type", kind), *map(tuple, routes["headers"].get(name, []))],
        file.read_bytes(),
    )


def gateway(environ, start_response):  # type: ignore[no-untyped-def]
    if environ["REQUEST_METHOD"] in ("GET", "HEAD"):
        found = static_answer(path_of(environ))
        if found is not None:  # CloudFront, from S3; what S3 lacks goes on to the function
            status, headers, body = found
            start_response(
                f"{status} {reason(status)}", [*headers, ("Content-Length", str(len(body)))]
            )
            return [body]
    event = make_event(
        environ["REQUEST_METHOD"],
        path_of(environ),
        environ.get("QUERY_STRING", ""),
        request_headers(environ),
        body_of(environ),
    )
    status, headers, body = answer_of(handler(event, None))
    headers = [(k, v) for k, v in headers if k.lower() != "content-length"] + [
        ("Content-Length", str(len(body)))
    ]
    start_response(f"{status} {reason(status)}", headers)
    return [body]


def compare() -> None:
    from werkzeug.test import Client

    from flask_ondemand.loader import load_slim_app

    # Without a cookie jar of its own, the client sends the Cookie header it is given.
    direct = Client(load_slim_app(function / "handler.py"), use_cookies=False)
    for line in sys.stdin:
        request = json.loads(line)
        body = request.get("body", "").encode()
        headers = [tuple(pair) for pair in request.get("headers", [])]
        path, _, query = request["path"].partition("?")
        status, via_handler, data = answer_of(
            handler(make_event(request["method"], path, query, headers, body), None)
        )
        reply = direct.open(request["path"], method=request["method"], headers=headers, data=body)
        print(
            json.dumps(
                {
                    "request": request,
                    "handler": [status, normalized(via_handler), data.decode("latin-1")],
                    "direct": [
                        reply.status_code,
                        normalized(reply.headers.items()),
                        reply.get_data().decode("latin-1"),
                    ],
                }
            ),
            flush=True,
        )


def normalized(headers) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """Headers as HTTP reads them: names in lower case, a repeated header's values joined by
    commas (Set-Cookie aside), Content-Length left out."""
    joined: dict[str, list[str]] = {}
    cookies = []
    for name, value in headers:
        key = name.lower()
        if key == "set-cookie":
            cookies.append(value)
        elif key != "content-length":
            joined.setdefault(key, []).append(value)
    return sorted(
        [(key, ", ".join(values)) for key, values in joined.items()]
        + [("set-cookie", c) for c in cookies]
    )


if "--compare" in sys.argv:
    compare()
else:
    serve(gateway)
