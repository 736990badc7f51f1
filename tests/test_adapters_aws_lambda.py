"""The aws-lambda adapter: the function run by AWS's runtime interface client (awslambdaric,
as Lambda's Python images run it) on Python 3.12, fed API Gateway v1 and v2, Function URL and
ALB events (with and without multi-value headers) through a stand-in for the Runtime API; the
SAM template validated by cfn-lint; the CloudFront Function run by Node."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

from flask_ondemand.adapters.aws_lambda import cloudfront_pattern, gateway_path, template

from .host_tools import python312
from .hosts.lambda_front import KINDS, front
from .hosts.lambda_runtime_api import RuntimeApi
from .live_cookies import assert_live_cookies, assert_live_query, build_microblog
from .servers import (
    assert_page_headers,
    assert_site_answers,
    build_with_adapter,
    fetch,
    flask,
    gunicorn,
    make_project,
    post_form,
    require,
)
from .test_caching import cache_site_for_adapters


@pytest.fixture(scope="module")
def output(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out, result = build_with_adapter(tmp_path_factory.mktemp("lambda"), "aws-lambda")
    assert "Deploy:  cd dist/current/aws-lambda && sam deploy --guided" in result.stdout
    return out / "current/aws-lambda"


@pytest.fixture(scope="module")
def runtime(output: Path) -> Iterator[RuntimeApi]:
    with lambda_runtime(output / "function") as api:
        yield api


@contextmanager
def lambda_runtime(function: Path) -> Iterator[RuntimeApi]:
    """The function, started as Lambda starts it: awslambdaric with the handler of the
    template, its folder first on the path, polling the Runtime API."""
    api = RuntimeApi()
    env = {
        "PATH": os.environ["PATH"],
        "AWS_LAMBDA_RUNTIME_API": api.address,
        "LAMBDA_TASK_ROOT": str(function),
        "PYTHONPATH": str(function),
        "AWS_LAMBDA_FUNCTION_NAME": "ondemand",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
    }
    command = [str(python312()), "-m", "awslambdaric", "handler.handler"]
    process = subprocess.Popen(
        command, cwd=function, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        yield api
    finally:
        process.terminate()
        process.wait(15)
        api.close()


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module", params=KINDS)
def gateway(request: pytest.FixtureRequest, output: Path, runtime: RuntimeApi) -> Iterator[str]:
    with fronted(output, request.param, runtime) as url:
        yield url


@pytest.fixture
def kind(gateway: str, request: pytest.FixtureRequest) -> str:
    """The gateway's kind (one of KINDS)."""
    return str(request.node.callspec.params["gateway"])


@contextmanager
def fronted(output: Path, kind: str, runtime: RuntimeApi) -> Iterator[str]:
    """CloudFront's and the gateway's stand-in in front of the function, over HTTP."""
    server = make_server("127.0.0.1", 0, front(output, kind, runtime.invoke), handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_shared_answers(gateway: str, kind: str) -> None:
    # An ALB without multi-value headers keeps one value a query name (see the docs).
    assert_site_answers(gateway, repeated_query_values=kind != "alb")
    assert_page_headers(gateway)


_FORM = "application/x-www-form-urlencoded"
REQUESTS = [
    ("GET", "/lab/visits", {"Cookie": "visits=4"}, b""),
    ("GET", "/lab/cookies/read?name=c&json=1", {"Cookie": "c=[1,2]"}, b""),
    ("GET", "/lab/returns/dict", {}, b""),
    ("GET", "/lab/status", {}, b""),
    ("GET", "/lab/headers", {}, b""),
    ("PUT", "/lab/api", {}, b""),
    ("GET", "/lab/go?to=/about/&status=307", {}, b""),
    ("GET", "/posts/nope/", {}, b""),
    ("POST", "/lab/cookies/set", {"Content-Type": _FORM}, b"name=note&value=caf%C3%A9"),
    ("POST", "/contact/", {"Content-Type": _FORM}, b"name=Ann"),
]
# What a server adds of its own, and the stand-in front's own header.
_SERVERS_OWN = {"date", "server", "connection", "content-length", "transfer-encoding"}
_SERVERS_OWN |= {"x-stand-in-served"}


def test_answers_equal_the_wsgi_builds(output: Path, gateway: str) -> None:
    """Through each kind of event, the function answers as the wsgi build of the same site
    does (the headers a server adds aside; a repeated header's values joined)."""
    out = output.parents[1]
    with gunicorn(out, cwd=out.parent) as direct:
        for request in REQUESTS:
            method, path, headers, body = request
            ours = fetch(gateway, path, method=method, headers=headers, body=body)
            theirs = fetch(direct.url, path, method=method, headers=headers, body=body)
            assert (ours.status, ours.body) == (theirs.status, theirs.body), path
            assert _headers(ours.headers.items()) == _headers(theirs.headers.items()), path


def _headers(pairs: list[tuple[str, str]]) -> dict[str, str]:
    joined: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower()
        if key not in _SERVERS_OWN:
            joined[key] = f"{joined[key]}, {value}" if key in joined else value
    return joined


def test_https_from_the_gateway_makes_cookies_secure(output: Path, runtime: RuntimeApi) -> None:
    from .hosts.lambda_front import answer_of, make_event

    event = make_event("v2", "GET", "/lab/visits", "", [("X-Forwarded-Proto", "https")], b"")
    _, headers, _ = answer_of(runtime.invoke(event))
    assert ("Set-Cookie", "visits=0; Secure; HttpOnly; Path=/; SameSite=Lax") in headers


def test_packages_are_installed_for_the_functions_python(output: Path) -> None:
    function = output / "function"
    assert list(function.glob("flask-*.dist-info"))
    assert list(function.glob("apig_wsgi-*.dist-info"))
    speedups = [p.name for p in function.glob("markupsafe/_speedups*.so")]
    assert speedups == ["_speedups.cpython-312-x86_64-linux-gnu.so"]
    assert "load_slim_app(__file__, proxies=1)" in (function / "handler.py").read_text()
    assert not list((output / "static").rglob("*.gz"))


def test_the_function_is_built_for_the_runtime_and_architecture_chosen(tmp_path: Path) -> None:
    env = {
        "FLASK_ONDEMAND_AWS_LAMBDA_RUNTIME": "python3.13",
        "FLASK_ONDEMAND_AWS_LAMBDA_ARCHITECTURE": "arm64",
    }
    out, _ = build_with_adapter(tmp_path, "aws-lambda", env=env)
    speedups = [p.name for p in out.glob("current/aws-lambda/function/markupsafe/_speedups*.so")]
    assert speedups == ["_speedups.cpython-313-aarch64-linux-gnu.so"]
    template = json.loads((out / "current/aws-lambda/template.yaml").read_text())
    function = template["Resources"]["Function"]["Properties"]
    assert (function["Runtime"], function["Architectures"]) == ("python3.13", ["arm64"])


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("RUNTIME", "python2.7", "ONDEMAND_AWS_LAMBDA_RUNTIME 'python2.7' is not one Lambda lists"),
        ("ARCHITECTURE", "sparc", "ONDEMAND_AWS_LAMBDA_ARCHITECTURE 'sparc': x86_64 or arm64"),
    ],
)
def test_a_runtime_or_architecture_lambda_has_not_is_refused(
    tmp_path: Path, key: str, value: str, message: str
) -> None:
    project = make_project(tmp_path / "project")
    env = {f"FLASK_ONDEMAND_AWS_LAMBDA_{key}": value}
    result = flask(project, "ondemand", "build", "--adapter", "aws-lambda", env=env, check=False)
    assert result.returncode != 0
    assert f"Error: build failed: {message}" in result.stderr
    assert not (project / "dist").exists()


def test_the_template_passes_cfn_lint(output: Path) -> None:
    template = json.loads((output / "template.yaml").read_text())
    resources = template["Resources"]
    function = resources["Function"]["Properties"]
    assert (function["Handler"], function["Runtime"]) == ("handler.handler", "python3.12")
    assert (output / function["CodeUri"] / "handler.py").is_file()
    config = resources["Distribution"]["Properties"]["DistributionConfig"]
    patterns = [behavior["PathPattern"] for behavior in config["CacheBehaviors"]]
    # Within CloudFront's quota of behaviors, collapsed as needed, but covering each route.
    assert len(patterns) <= 25
    for path in ("/account/", "/lab/returns/dict", "/contact/", "/cart/add", "/isles/_user"):
        assert any(fnmatchcase(path, pattern) for pattern in patterns), path
    assert_cfn_lint_passes(output / "template.yaml")


def assert_cfn_lint_passes(template: Path) -> None:
    """AWS's own linter of CloudFormation templates finds nothing in ``template``."""
    result = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), str(template)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def run_viewer_function(output: Path, folder: Path, calls: list[Any]) -> list[Any]:
    """The template's CloudFront Function run by Node on ``calls`` (events); what it returned
    for each, and for a viewer request, the origin it selected (``"origin"``), if any. The
    ``cloudfront`` module it imports for that is a stand-in that records the selection."""
    template = json.loads((output / "template.yaml").read_text())
    code = template["Resources"]["ViewerFunction"]["Properties"]["FunctionCode"]
    # The runtime's module, as a variable: Node runs the code as a script.
    stand_in = (
        "var selected = null;\nvar cf = {selectRequestOriginById: (id) => { selected = id; }};\n"
    )
    script = folder / "run.js"
    script.write_text(
        stand_in
        + code.removeprefix("import cf from 'cloudfront';\n")
        + """
const calls = JSON.parse(require('fs').readFileSync(0, 'utf8'));
console.log(JSON.stringify(calls.map((event) => {
  selected = null;
  const result = handler(event);
  return selected === null ? result : {...result, origin: selected};
})));
"""
    )
    result = subprocess.run(
        [require("node"), str(script)],
        input=json.dumps(calls),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    answers: list[Any] = json.loads(result.stdout)
    return answers


def viewer_request(
    uri: str,
    cookies: dict[str, str] | None = None,
    method: str = "GET",
    query: dict[str, str] | None = None,
) -> Any:
    cookie_values = {name: {"value": value} for name, value in (cookies or {}).items()}
    query_values = {name: {"value": value} for name, value in (query or {}).items()}
    request = {"method": method, "uri": uri, "cookies": cookie_values, "querystring": query_values}
    return {"context": {"eventType": "viewer-request"}, "request": request}


def test_the_cloudfront_function(output: Path, tmp_path: Path) -> None:
    """The function of the bucket's behavior, run by Node on the events CloudFront documents:
    folder URLs, page files by their own names, redirects and headers."""
    request = viewer_request

    def response(uri: str) -> dict[str, object]:
        return {
            "context": {"eventType": "viewer-response"},
            "request": {"uri": uri},
            "response": {"statusCode": 200, "headers": {"etag": {"value": "x"}}},
        }

    calls = [
        request("/about/"),
        request("/secure/index.html"),
        request("/old/"),
        request("/hello"),
        response("/secure/index.html"),
        response("/hello"),
        request("/docs"),
        request("/docs/"),
        request("/docs/index.html"),
        request("/docs/popup"),
    ]
    answers = run_viewer_function(output, tmp_path, calls)
    about, by_name, old, hello, secure, hello_headers, *docs = answers
    # /docs's file is docs/index.html (/docs/popup needs the folder): its folder URL and the
    # file's name are no URL, and get paths the bucket lacks.
    docs_page, docs_folder, docs_file, popup = (answer["uri"] for answer in docs)
    assert (docs_page, popup) == ("/docs/index.html", "/docs/popup")
    for missing in (docs_folder, docs_file):
        assert missing not in ("/docs/index.html", "/docs/")
    assert about["uri"] == "/about/index.html"
    assert not by_name["uri"].endswith("/index.html")  # a path the bucket lacks
    assert old == {"statusCode": 301, "headers": {"location": {"value": "/about/"}}}
    assert hello["uri"] == "/hello"
    headers = secure["headers"]
    assert headers["content-security-policy"] == {"value": "default-src 'none'"}
    assert headers["x-frame-options"] == {"value": "SAMEORIGIN"}
    assert headers["referrer-policy"] == {"value": "no-referrer"}
    assert headers["etag"] == {"value": "x"}
    assert hello_headers["headers"]["content-type"] == {"value": "text/html; charset=utf-8"}
    assert hello_headers["headers"]["content-security-policy"] == {"value": "default-src 'self'"}


def test_a_page_whose_file_is_in_its_folder(gateway: str) -> None:
    """Through the front, as the viewer function routes them (run under Node above)."""
    for path, body in [("/docs", b"Docs"), ("/docs/popup", b"Docs popup")]:
        assert fetch(gateway, path).body == body, path
    for path in ("/docs/", "/docs/index.html"):
        missing = fetch(gateway, path)
        assert (missing.status, missing.body) == (404, b"Custom 404 page"), path


def test_a_form_posts_to_its_page(gateway: str) -> None:
    thanks = post_form(gateway, "/contact/", {"name": "Ann"})
    assert (thanks.status, thanks.body) == (200, b"Thanks, Ann")


def test_gateway_and_cloudfront_paths() -> None:
    assert gateway_path("/blog/<slug>/") == "/blog/{slug}/"
    assert gateway_path("/docs/<path:rest>") == "/docs/{rest+}"
    assert cloudfront_pattern("/blog/<slug>/") == "/blog/*"
    assert cloudfront_pattern("/login") == "/login"


def test_cloudfront_keeps_cached_routes_by_their_cache_control(tmp_path: Path) -> None:
    """The function's behaviors (cached prerendered pages among them) use a cache policy that
    keeps an answer as long as its Cache-Control lets a shared cache, never by Host."""
    stack = template(cache_site_for_adapters(tmp_path), "python3.12", "x86_64")
    resources = stack["Resources"]
    policy = resources["FunctionCache"]["Properties"]["CachePolicyConfig"]
    assert (policy["MinTTL"], policy["DefaultTTL"]) == (0, 0)
    keys = policy["ParametersInCacheKeyAndForwardedToOrigin"]
    assert keys["HeadersConfig"] == {"HeaderBehavior": "none"}
    assert keys["QueryStringsConfig"] == {"QueryStringBehavior": "all"}
    behaviors = resources["Distribution"]["Properties"]["DistributionConfig"]["CacheBehaviors"]
    for path in ("/about/", "/prices/", "/stock/tea/"):
        behavior = next(b for b in behaviors if fnmatchcase(path, b["PathPattern"]))
        assert behavior["CachePolicyId"] == {"Ref": "FunctionCache"}, path
    (tmp_path / "template.yaml").write_text(json.dumps(stack))
    assert_cfn_lint_passes(tmp_path / "template.yaml")


@pytest.fixture(scope="module")
def microblog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out, result = build_microblog(tmp_path_factory.mktemp("lambda-microblog"), "aws-lambda")
    assert "Warning" not in result.stderr, result.stderr
    output = out / "current/aws-lambda"
    # The function reads users.txt beside its code, as the project's app does.
    (output / "function/users.txt").write_text((out.parent / "users.txt").read_text())
    return output


def test_live_cookies_key_the_files_cache(microblog: Path) -> None:
    """The files' cache keys on the live cookies, so that CloudFront, which looks in its cache
    before the viewer request function's origin is used, never gives a signed-in visitor the
    file, and keeps no live page (minimum TTL 0: a private answer is not kept). cfn-lint
    passes the template."""
    stack = json.loads((microblog / "template.yaml").read_text())
    resources = stack["Resources"]
    config = resources["Distribution"]["Properties"]["DistributionConfig"]
    default = config["DefaultCacheBehavior"]
    assert default["CachePolicyId"] == {"Ref": "FilesCache"}
    policy = resources["FilesCache"]["Properties"]["CachePolicyConfig"]
    assert policy["MinTTL"] == 0
    keys = policy["ParametersInCacheKeyAndForwardedToOrigin"]
    assert keys["CookiesConfig"] == {
        "CookieBehavior": "whitelist",
        "Cookies": ["session", "remember_token"],
    }
    code = resources["ViewerFunction"]["Properties"]["FunctionCode"]
    assert code.startswith("import cf from 'cloudfront';\n")
    assert len(code.encode()) <= 10_240
    result = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), str(microblog / "template.yaml")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_cloudfront_function_selects_the_function_by_cookie(
    microblog: Path, tmp_path: Path
) -> None:
    signed_in = {"session": "x", "theme": "dark"}
    calls = [
        viewer_request("/user/ada/"),
        viewer_request("/user/ada/", {"theme": "dark"}),
        viewer_request("/user/ada/", signed_in),
        viewer_request("/user/ada/", {"remember_token": "t"}, method="HEAD"),
        viewer_request("/", signed_in),
        viewer_request("/about/", signed_in),  # prerender(live_cookies=False)
        viewer_request("/user/ada/index.html", signed_in),
        {
            "context": {"eventType": "viewer-response"},
            "request": {"uri": "/user/ada/"},
            "response": {
                "statusCode": 200,
                "headers": {
                    "cache-control": {"value": "private"},
                    "vary": {"value": "Accept-Encoding, Cookie"},
                },
            },
        },
    ]
    answers = run_viewer_function(microblog, tmp_path, calls)
    anonymous, unlisted, ada, head, home, about, by_name, live_answer = answers
    for file in (anonymous, unlisted):
        assert file == {
            "method": "GET",
            "uri": "/user/ada/index.html",
            "cookies": file["cookies"],
            "querystring": {},
        }
    assert (ada["origin"], ada["uri"]) == ("function", "/user/ada/")
    assert (head["origin"], home["origin"]) == ("function", "function")
    assert "origin" not in about
    assert about["uri"] == "/about/index.html"
    assert "origin" not in by_name  # a file's own name: no page, no live page
    assert live_answer["headers"] == calls[-1]["response"]["headers"]  # left as it was


def test_signed_in_visitors_get_the_function_through_the_front(microblog: Path) -> None:
    """The microblog's function under awslambdaric, behind the stand-in for CloudFront (routing
    by cookie, and by query string, as the viewer function does) and an HTTP API: files for
    anonymous visitors, the live page (private) for signed-in ones; "/" the file, and any
    query of it the function's page."""
    with lambda_runtime(microblog / "function") as api, fronted(microblog, "v2", api) as url:
        assert_live_cookies(url)
        assert_live_query(
            url, from_files=lambda page: page.headers["X-Stand-In-Served"] == "file", by_name=False
        )


def test_the_cloudfront_function_sends_a_query_to_the_function(
    microblog: Path, tmp_path: Path
) -> None:
    """Run by Node: a GET or HEAD of "/" (prerender(live_query=True)) with a query string
    selects the function's origin, and its answer keeps its own headers; without one, or for
    a page of another route, the file."""
    page = {"page": "2"}
    calls = [
        viewer_request("/", query=page),
        viewer_request("/", method="HEAD", query={"utm_source": "feed"}),
        viewer_request("/"),
        viewer_request("/about/", query=page),
        viewer_request("/user/ada/", query=page),
        {
            "context": {"eventType": "viewer-response"},
            "request": {"method": "GET", "uri": "/", "querystring": {"page": {"value": "2"}}},
            "response": {"statusCode": 200, "headers": {"vary": {"value": "Accept-Encoding"}}},
        },
    ]
    second, head, bare, about, user, answer = run_viewer_function(microblog, tmp_path, calls)
    assert (second["origin"], second["uri"], second["querystring"]) == (
        "function",
        "/",
        {"page": {"value": "2"}},
    )
    assert head["origin"] == "function"
    assert "origin" not in bare
    assert bare["uri"] == "/index.html"
    for file in (about, user):
        assert "origin" not in file
        assert file["uri"].endswith("/index.html")
    assert answer["headers"] == calls[-1]["response"]["headers"]  # the function's own


def test_a_live_query_page_keys_the_files_cache_on_the_query(output: Path, microblog: Path) -> None:
    """CloudFront looks in its cache before the viewer request function's origin is used: the
    files' cache keys on the query string where a page's queries go to the function (and
    passes it on to it), else "/?page=2" would get the file kept for "/"."""
    for built, cookies in [
        (output, {"CookieBehavior": "none"}),
        (microblog, {"CookieBehavior": "whitelist", "Cookies": ["session", "remember_token"]}),
    ]:
        resources = json.loads((built / "template.yaml").read_text())["Resources"]
        config = resources["Distribution"]["Properties"]["DistributionConfig"]
        assert config["DefaultCacheBehavior"]["CachePolicyId"] == {"Ref": "FilesCache"}
        policy = resources["FilesCache"]["Properties"]["CachePolicyConfig"]
        keys = policy["ParametersInCacheKeyAndForwardedToOrigin"]
        assert keys["QueryStringsConfig"] == {"QueryStringBehavior": "all"}
        assert keys["CookiesConfig"] == cookies
    routes = json.loads((output / "routes.json").read_text())
    assert routes["live_query"] == ["/isles/listing/"]
