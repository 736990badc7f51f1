"""AWS Lambda: an AWS SAM project with the function, its HTTP API, a bucket for the files and
a CloudFront distribution in front of both.

Writes ``aws-lambda/`` in the build's own folder (deploy it from ``DIR/current/aws-lambda``):

- ``function/``: the function's code. Its handler is ``handler.handler``: the slim app wrapped
  by apig-wsgi, which takes API Gateway REST (v1) and HTTP API (v2) events, Function URL
  events, and Application Load Balancer events; the packages are installed for the function's
  Python and CPU (see bundle.py).
- ``static/``: the client files, without the build's ``.gz`` copies (CloudFront compresses),
  to upload to the bucket.
- ``template.yaml``: the SAM template (JSON, which YAML reads). CloudFront sends the on-demand
  rules' paths, and the cached prerendered ones, to the HTTP API (every method; an answer is
  kept only as long as its Cache-Control lets a shared cache, which only cached routes' do),
  and the rest to the bucket; what
  the bucket lacks (a 403 or 404 from S3) goes on to the function, which answers with the app's
  404 page. A CloudFront Function (viewer request) maps a folder URL to its ``index.html`` and
  keeps a page's file from answering under its own name; another (viewer response) gives each
  file the headers and type it was rendered with. With ``ONDEMAND_LIVE_COOKIES``, the viewer
  request function sends a GET with one of those cookies for a page of a route that takes them
  to the function instead (``cf.selectRequestOriginById``), which renders it (private), and the
  files' cache policy keys on those cookies, so that CloudFront's cache, looked up before any
  origin is chosen, never answers such a request with the file (nor anyone with a live page,
  which is private and so never kept: the policy's minimum TTL is 0). A GET of a page of a
  ``prerender(live_query=True)`` route with a query string goes to the function the same
  way, and the files' cache policy then keys on the query string (and passes it on): else
  CloudFront would answer ``/?page=2`` with the file it keeps for ``/``.
- ``routes.json``: the same routing as data: the function's paths (in API Gateway's
  ``{name}``/``{name+}`` form), the redirects, each file's type and headers, the live
  cookies and the patterns of the pages they make live, and the pages whose queries the
  function renders.

Behind an ALB, turn on the target group's multi-value headers
(``lambda.multi_value_headers.enabled``), or only the last ``Set-Cookie`` of an answer
arrives; behind a REST API (v1), set ``binaryMediaTypes`` to ``*/*`` so that binary answers
pass. The HTTP API of the template needs neither.

Options: ``ONDEMAND_AWS_LAMBDA_RUNTIME`` ("python3.12"), ``ONDEMAND_AWS_LAMBDA_ARCHITECTURE``
("x86_64" or "arm64"). Needs apig-wsgi (flask_ondemand's ``aws`` extra).
"""

from __future__ import annotations

import importlib
import json
from typing import Any

from ..errors import BuildError
from ..layout import CURRENT
from ..routes import FILE_METHODS
from . import Deployment, Site, Variable, rule_parts, write_json
from .bundle import linux, write_bundle
from .cdn import (
    INDEX,
    LivePages,
    copy_files,
    live_pages,
    live_query_pages,
    page_files,
    renamed_pages,
)

FOLDER = "aws-lambda"
#: The Python runtimes Lambda lists with a deprecation date still ahead.
RUNTIMES = ("python3.12", "python3.13", "python3.14", "python3.11", "python3.10")
ARCHITECTURES = {"x86_64": "x86_64", "arm64": "aarch64"}
#: CloudFront's quota of cache behaviors a distribution.
BEHAVIORS_LIMIT = 25
#: CloudFront Functions' size limit.
FUNCTION_LIMIT = 10_240
#: CloudFront's quota of cookies a cache policy names.
CACHE_POLICY_COOKIES_LIMIT = 10
#: The template's origin of the function, as the viewer request function selects it.
FUNCTION_ORIGIN = "function"
# AWS's managed CloudFront policies, by their fixed ids.
_CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"
_ALL_VIEWER_EXCEPT_HOST = "b689b0a8-53d0-40ab-baf2-68738e2966ac"

_HANDLER = '''\
"""The on-demand half of a flask_ondemand build, as an AWS Lambda function."""

from apig_wsgi import make_lambda_handler

from flask_ondemand.adapters.aws_lambda import joining_repeated_headers
from flask_ondemand.loader import load_slim_app

# API Gateway (or a load balancer, or the function URL) is the proxy in front of it.
app = load_slim_app(__file__, proxies=1)
handler = make_lambda_handler(joining_repeated_headers(app), binary_support=True)
'''


class AwsLambdaAdapter:
    name = "aws-lambda"

    def write(self, site: Site) -> Deployment:
        try:
            importlib.import_module("apig_wsgi")
        except ImportError:
            raise BuildError(
                "the aws-lambda adapter needs apig-wsgi: pip install apig-wsgi"
                " (flask_ondemand's 'aws' extra)"
            ) from None
        runtime = site.option(self.name, "runtime") or RUNTIMES[0]
        architecture = site.option(self.name, "architecture") or "x86_64"
        if runtime not in RUNTIMES:
            raise BuildError(
                f"ONDEMAND_AWS_LAMBDA_RUNTIME {runtime!r} is not one Lambda lists:"
                f" {', '.join(RUNTIMES)}"
            )
        if architecture not in ARCHITECTURES:
            raise BuildError(f"ONDEMAND_AWS_LAMBDA_ARCHITECTURE {architecture!r}: x86_64 or arm64")
        folder = site.build_dir / FOLDER
        target = linux(runtime.removeprefix("python"), ARCHITECTURES[architecture])
        write_bundle(site, folder / "function", target=target, extra_modules=["apig_wsgi"])
        (folder / "function" / "handler.py").write_text(_HANDLER, encoding="utf-8")
        copy_files(site, folder / "static")
        write_json(folder / "routes.json", routes(site))
        write_json(folder / "template.yaml", template(site, runtime, architecture))
        shown = f"{site.shown(site.out_dir)}/{CURRENT}/{FOLDER}"
        return Deployment(
            (),
            f"cd {shown} && sam deploy --guided, then aws s3 sync static/"
            " s3://<the stack's StaticBucket output> --delete",
        )


def joining_repeated_headers(app: Any) -> Any:
    """Wrap a WSGI app so that a header sent twice is sent once, its values joined by commas.

    HTTP reads the two forms alike (Set-Cookie aside, which stays as it is), but apig-wsgi
    keeps only the last value of a repeated header in an HTTP API (v2) answer.
    """

    def joined(environ: dict[str, Any], start_response: Any) -> Any:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            merged: dict[str, tuple[str, str]] = {}
            kept: list[tuple[str, str]] = []
            for name, value in headers:
                key = name.lower()
                if key == "set-cookie":
                    kept.append((name, value))
                elif key in merged:
                    merged[key] = (merged[key][0], f"{merged[key][1]}, {value}")
                else:
                    merged[key] = (name, value)
            return start_response(status, [*merged.values(), *kept], exc_info)

        return app(environ, start)

    return joined


def routes(site: Site) -> dict[str, object]:
    manifest = site.manifest
    live = live_pages(site)
    return {
        "function": sorted({gateway_path(entry.rule) for entry in manifest.on_demand}),
        "redirects": {
            url: {"status": r.status, "location": r.location}
            for url, r in manifest.redirects.items()
        },
        "content_types": {"/" + file: t for file, t in manifest.content_types.items()},
        "headers": {
            "/" + file: pairs
            for file in manifest.files.values()
            if (pairs := manifest.headers_for(file))
        },
        "rewrites": renamed_pages(site),
        "live": {
            "cookies": list(live.cookies) if live else [],
            "pages": [pattern for _, pattern in live.patterns] if live else [],
        },
        "live_query": sorted(live_query_urls(site)),
    }


def live_query_urls(site: Site) -> set[str]:
    """The pages of ``live_query`` routes, whose queries the function renders."""
    return {url for live in live_query_pages(site) for url in live.urls}


def gateway_path(rule: str) -> str:
    """A Werkzeug rule as an API Gateway path: ``{name}``, or ``{name+}`` for a path."""
    path = ""
    for part in rule_parts(rule):
        if isinstance(part, Variable):
            path += f"{{{part.name}+}}" if part.takes_slashes else f"{{{part.name}}}"
        else:
            path += part
    return path


def cloudfront_pattern(rule: str) -> str:
    """A Werkzeug rule as a CloudFront path pattern: from its first variable on, ``*``."""
    fixed = ""
    for part in rule_parts(rule):
        if isinstance(part, Variable):
            return fixed + "*"
        fixed += part
    return fixed


def function_patterns(site: Site) -> list[str]:
    """The path patterns CloudFront sends to the function: the on-demand rules, and the
    prerendered ones that take methods a file cannot answer (a form posting to its page) or
    are cached (the function refreshes them).
    Within CloudFront's quota of behaviors: cut to their first segment, if need be."""
    manifest = site.manifest
    rules = [entry.rule for entry in manifest.on_demand]
    rules += [e.rule for e in manifest.prerendered if set(e.methods) - FILE_METHODS or e.cache]
    patterns = _minimal({cloudfront_pattern(rule) for rule in rules})
    if len(patterns) > BEHAVIORS_LIMIT:
        patterns = _minimal({_first_segment(pattern) for pattern in patterns})
    if len(patterns) > BEHAVIORS_LIMIT:
        raise BuildError(
            f"aws-lambda: the on-demand routes need {len(patterns)} CloudFront behaviors, over"
            f" the quota of {BEHAVIORS_LIMIT}: group them under fewer first path segments"
        )
    return patterns


def _first_segment(pattern: str) -> str:
    segments = pattern.split("/")
    return pattern if len(segments) <= 2 else f"/{segments[1]}/*"


def _minimal(patterns: set[str]) -> list[str]:
    """Drop the patterns another ``…*`` pattern already covers."""
    wildcards = [p[:-1] for p in patterns if p.endswith("*")]
    return sorted(
        p for p in patterns if not any(p != w + "*" and p.startswith(w) for w in wildcards)
    )


def viewer_function(site: Site) -> str:
    """The CloudFront Function (cloudfront-js-2.0) of the bucket's behavior.

    On a viewer request, a prerendered redirect answers with its status; a GET of a live page
    (see :func:`.cdn.live_pages`) with a live cookie, or of a ``live_query`` page with a query
    string (see :func:`.cdn.live_query_pages`), goes to the function's origin; a folder
    URL gets its ``index.html``, a page whose file its URL does not name (``/x`` at
    ``x/index.html``) gets its file, and a page's file asked for by its own name, or such a
    page's folder URL, gets a path the bucket lacks, so the app answers it (404). On a viewer
    response, a file gets the site's headers and those it was rendered with (``null``: none
    of that name), and the type its name does not tell; the function's answer (a live
    page's, private, or a query's) is left as it sent it.
    """
    manifest = site.manifest
    live = live_pages(site)
    own: dict[str, list[tuple[str, str | None]]] = {}
    for _, file in page_files(site):
        pairs = list(manifest.headers.get(file, []))
        if file in manifest.content_types:
            pairs.append(("Content-Type", manifest.content_types[file]))
        if pairs:
            own["/" + file] = pairs
    pages = sorted(url for url, _ in page_files(site) if url.endswith("/" + INDEX))
    queried = live_query_urls(site)
    code = (_SELECTS_ORIGIN if live or queried else "") + _FUNCTION % {
        "live_cookies": json.dumps(list(live.cookies) if live else []),
        "live_pages": json.dumps([pattern for _, pattern in live.patterns] if live else []),
        "live_query": json.dumps(dict.fromkeys(sorted(queried), True)),
        "function": json.dumps(FUNCTION_ORIGIN),
        "site": json.dumps([[name.lower(), value] for name, value in manifest.site_headers]),
        "own": json.dumps({f: [[n.lower(), v] for n, v in p] for f, p in sorted(own.items())}),
        "pages": json.dumps(dict.fromkeys(pages, True)),
        "rewrites": json.dumps(renamed_pages(site)),
        "redirects": json.dumps(
            {url: [r.status, r.location] for url, r in sorted(manifest.redirects.items())}
        ),
    }
    if len(code.encode()) > FUNCTION_LIMIT:
        raise BuildError(
            f"aws-lambda: the files' headers and routes need a CloudFront Function of"
            f" {len(code)} bytes, over CloudFront's {FUNCTION_LIMIT}: fewer pages with headers"
            " of their own, redirects or pages of live_query routes"
        )
    return code


# The module of the helper that picks an origin; the runtime wants it on the first line.
_SELECTS_ORIGIN = "import cf from 'cloudfront';\n"

_FUNCTION = """\
var SITE = %(site)s;
var OWN = %(own)s;
var PAGES = %(pages)s;
var REDIRECTS = %(redirects)s;
var REWRITES = %(rewrites)s;
var RENAMED = {};
Object.keys(REWRITES).forEach(function (url) { RENAMED[REWRITES[url]] = true; });
var LIVE_COOKIES = %(live_cookies)s;
var LIVE_PAGES = %(live_pages)s.map(function (pattern) { return new RegExp(pattern); });
var LIVE_QUERY = %(live_query)s;

function toFunction(request) {
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    return false;
  }
  if (LIVE_QUERY[request.uri] && Object.keys(request.querystring || {}).length > 0) {
    return true;
  }
  var cookies = request.cookies || {};
  var named = LIVE_COOKIES.some(function (name) { return cookies[name] !== undefined; });
  return named && LIVE_PAGES.some(function (page) { return page.test(request.uri); });
}

function handler(event) {
  var request = event.request;
  if (event.context.eventType === 'viewer-request') {
    var redirect = REDIRECTS[request.uri];
    if (redirect) {
      return {statusCode: redirect[0], headers: {location: {value: redirect[1]}}};
    }
    if (toFunction(request)) {
      cf.selectRequestOriginById(%(function)s);
      return request;
    }
    var uri = request.uri;
    if (REWRITES[uri]) {
      request.uri = REWRITES[uri];
    } else if (/\\/index\\.html$/.test(uri) && !PAGES[uri]) {
      request.uri += '/-';
    } else if (uri.slice(-1) === '/') {
      request.uri = RENAMED[uri + 'index.html'] ? uri + '-' : uri + 'index.html';
    }
    return request;
  }
  var response = event.response;
  var control = response.headers['cache-control'];
  var personal = control && /(^|,)\\s*private/i.test(control.value);
  if (response.statusCode >= 400 || personal || toFunction(request)) {
    return response;  // the function's answer, with its own headers
  }
  var headers = response.headers;
  var own = OWN[request.uri] || [];
  var mine = {};
  for (var i = 0; i < own.length; i++) {
    mine[own[i][0]] = true;
  }
  for (var j = 0; j < SITE.length; j++) {
    if (!mine[SITE[j][0]]) {
      headers[SITE[j][0]] = {value: SITE[j][1]};
    }
  }
  for (var k = 0; k < own.length; k++) {
    if (own[k][1] === null) {
      delete headers[own[k][0]];
    } else {
      headers[own[k][0]] = {value: own[k][1]};
    }
  }
  return response;
}
"""


def _files_cache(live: LivePages | None, queried: bool) -> dict[str, Any]:
    """The cache policy of the files' behavior with live cookies or ``live_query`` pages:
    CachingOptimized's, but for the live cookies, and the query string if pages' queries are
    rendered, in the key, so that a request the viewer request function sends to the
    function never gets the file from the cache, which CloudFront looks in before any
    origin; they reach the function that way too. Its minimum TTL is 0, so that a live page,
    private, is never kept."""
    cookies = list(live.cookies) if live is not None else []
    if len(cookies) > CACHE_POLICY_COOKIES_LIMIT:
        raise BuildError(
            f"aws-lambda: ONDEMAND_LIVE_COOKIES names {len(cookies)} cookies, over the"
            f" {CACHE_POLICY_COOKIES_LIMIT} a CloudFront cache policy can key on"
        )
    cookies_config: dict[str, Any] = {"CookieBehavior": "none"}
    if cookies:
        cookies_config = {"CookieBehavior": "whitelist", "Cookies": cookies}
    return {
        "Type": "AWS::CloudFront::CachePolicy",
        "Properties": {
            "CachePolicyConfig": {
                "Name": {"Fn::Sub": "${AWS::StackName}-files"},
                "MinTTL": 0,
                "DefaultTTL": 86400,
                "MaxTTL": 31536000,
                "ParametersInCacheKeyAndForwardedToOrigin": {
                    "EnableAcceptEncodingGzip": True,
                    "EnableAcceptEncodingBrotli": True,
                    "HeadersConfig": {"HeaderBehavior": "none"},
                    "CookiesConfig": cookies_config,
                    "QueryStringsConfig": {"QueryStringBehavior": "all" if queried else "none"},
                },
            }
        },
    }


def template(site: Site, runtime: str, architecture: str) -> dict[str, Any]:
    """The SAM template described above."""
    api_origin = {
        "Id": FUNCTION_ORIGIN,
        "DomainName": {"Fn::Sub": "${HttpApi}.execute-api.${AWS::Region}.amazonaws.com"},
        "CustomOriginConfig": {"OriginProtocolPolicy": "https-only"},
    }
    bucket_origin = {
        "Id": "files",
        "DomainName": {"Fn::GetAtt": ["StaticBucket", "RegionalDomainName"]},
        "OriginAccessControlId": {"Ref": "FilesAccess"},
        "S3OriginConfig": {"OriginAccessIdentity": ""},
    }
    to_function = [
        {
            "PathPattern": pattern,
            "TargetOriginId": FUNCTION_ORIGIN,
            "ViewerProtocolPolicy": "redirect-to-https",
            "AllowedMethods": ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"],
            "CachePolicyId": {"Ref": "FunctionCache"},
            "OriginRequestPolicyId": _ALL_VIEWER_EXCEPT_HOST,
        }
        for pattern in function_patterns(site)
    ]
    viewer_function_arn = {"Fn::GetAtt": ["ViewerFunction", "FunctionMetadata.FunctionARN"]}
    live = live_pages(site)
    queried = bool(live_query_urls(site))
    resources: dict[str, Any] = {}
    if live is not None or queried:
        resources["FilesCache"] = _files_cache(live, queried)
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Transform": "AWS::Serverless-2016-10-31",
        "Description": "A flask_ondemand build: files in S3 behind CloudFront, the rest in Lambda",
        "Resources": {
            "Function": {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    "CodeUri": "function/",
                    "Handler": "handler.handler",
                    "Runtime": runtime,
                    "Architectures": [architecture],
                    "MemorySize": 512,
                    "Timeout": 30,
                    "Events": {
                        "Api": {
                            "Type": "HttpApi",
                            "Properties": {"ApiId": {"Ref": "HttpApi"}},
                        }
                    },
                },
            },
            "HttpApi": {"Type": "AWS::Serverless::HttpApi"},
            **resources,
            # The function's answers are kept as long as their Cache-Control says a shared
            # cache may (a cached route's s-maxage and stale-while-revalidate), and the others
            # not at all: Flask sends none unless asked. By query string and cookie, never
            # by Host, which API Gateway must get as its own.
            "FunctionCache": {
                "Type": "AWS::CloudFront::CachePolicy",
                "Properties": {
                    "CachePolicyConfig": {
                        "Name": {"Fn::Sub": "${AWS::StackName}-function"},
                        "MinTTL": 0,
                        "DefaultTTL": 0,
                        "MaxTTL": 31536000,
                        "ParametersInCacheKeyAndForwardedToOrigin": {
                            "EnableAcceptEncodingGzip": True,
                            "EnableAcceptEncodingBrotli": True,
                            "HeadersConfig": {"HeaderBehavior": "none"},
                            "CookiesConfig": {"CookieBehavior": "all"},
                            "QueryStringsConfig": {"QueryStringBehavior": "all"},
                        },
                    }
                },
            },
            "StaticBucket": {
                "Type": "AWS::S3::Bucket",
                "Properties": {
                    "PublicAccessBlockConfiguration": {
                        "BlockPublicAcls": True,
                        "BlockPublicPolicy": True,
                        "IgnorePublicAcls": True,
                        "RestrictPublicBuckets": True,
                    }
                },
            },
            "StaticBucketPolicy": {
                "Type": "AWS::S3::BucketPolicy",
                "Properties": {
                    "Bucket": {"Ref": "StaticBucket"},
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "cloudfront.amazonaws.com"},
                                "Action": "s3:GetObject",
                                "Resource": {"Fn::Sub": "${StaticBucket.Arn}/*"},
                                "Condition": {
                                    "StringEquals": {
                                        "AWS:SourceArn": {
                                            "Fn::Sub": "arn:aws:cloudfront::${AWS::AccountId}:"
                                            "distribution/${Distribution}"
                                        }
                                    }
                                },
                            }
                        ],
                    },
                },
            },
            "FilesAccess": {
                "Type": "AWS::CloudFront::OriginAccessControl",
                "Properties": {
                    "OriginAccessControlConfig": {
                        "Name": {"Fn::Sub": "${AWS::StackName}-files"},
                        "OriginAccessControlOriginType": "s3",
                        "SigningBehavior": "always",
                        "SigningProtocol": "sigv4",
                    }
                },
            },
            "ViewerFunction": {
                "Type": "AWS::CloudFront::Function",
                "Properties": {
                    "Name": {"Fn::Sub": "${AWS::StackName}-files"},
                    "AutoPublish": True,
                    "FunctionCode": viewer_function(site),
                    "FunctionConfig": {
                        "Comment": "folder URLs, page files by name, headers",
                        "Runtime": "cloudfront-js-2.0",
                    },
                },
            },
            "Distribution": {
                "Type": "AWS::CloudFront::Distribution",
                "Properties": {
                    "DistributionConfig": {
                        "Enabled": True,
                        "HttpVersion": "http2and3",
                        "Origins": [bucket_origin, api_origin],
                        "OriginGroups": {
                            "Quantity": 1,
                            "Items": [
                                {
                                    "Id": "files-then-function",
                                    "FailoverCriteria": {
                                        "StatusCodes": {"Quantity": 2, "Items": [403, 404]}
                                    },
                                    "Members": {
                                        "Quantity": 2,
                                        "Items": [
                                            {"OriginId": "files"},
                                            {"OriginId": FUNCTION_ORIGIN},
                                        ],
                                    },
                                }
                            ],
                        },
                        "DefaultCacheBehavior": {
                            "TargetOriginId": "files-then-function",
                            "ViewerProtocolPolicy": "redirect-to-https",
                            "AllowedMethods": ["GET", "HEAD", "OPTIONS"],
                            "CachePolicyId": (
                                {"Ref": "FilesCache"}
                                if "FilesCache" in resources
                                else _CACHING_OPTIMIZED
                            ),
                            "Compress": True,
                            "FunctionAssociations": [
                                {"EventType": "viewer-request", "FunctionARN": viewer_function_arn},
                                {
                                    "EventType": "viewer-response",
                                    "FunctionARN": viewer_function_arn,
                                },
                            ],
                        },
                        "CacheBehaviors": to_function,
                    }
                },
            },
        },
        "Outputs": {
            "Url": {"Value": {"Fn::Sub": "https://${Distribution.DomainName}"}},
            "StaticBucket": {"Value": {"Ref": "StaticBucket"}},
        },
    }
