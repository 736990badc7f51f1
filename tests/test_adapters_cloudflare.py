"""The cloudflare adapter: its assets, _redirects, _headers and run_worker_first served by
Cloudflare's own ``wrangler dev`` (workerd), in front of a JavaScript Worker that stands in for
the Python one (tests/hosts/cloudflare_forward.js: Python Workers cannot run here) and hands
the rest to the wsgi build on gunicorn; the project files checked against what wrangler and
pywrangler read."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest
import tomllib

from flask_ondemand.adapters.cloudflare import (
    COMPATIBILITY_DATE,
    _warn_about_cached_routes,
    wildcard_pattern,
)
from flask_ondemand.errors import AdapterWarning

from .host_tools import python312, wrangler_dev
from .live_cookies import assert_live_cookies, assert_live_query, build_microblog
from .servers import (
    HOSTS,
    Server,
    assert_page_headers,
    assert_site_answers,
    build_with_adapter,
    fetch,
    free_port,
    gunicorn,
)
from .test_caching import cache_site_for_adapters


@dataclass
class Project:
    folder: Path
    out: Path


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    out, result = build_with_adapter(tmp_path_factory.mktemp("cloudflare"), "cloudflare")
    assert "Deploy:  cd dist/current/cloudflare && uv run pywrangler deploy" in result.stdout
    return Project(out / "current/cloudflare", out)


@pytest.fixture(scope="module")
def worker(project: Project) -> Iterator[Server]:
    with wrangler_in_front(project) as server:
        yield server


@contextmanager
def wrangler_in_front(project: Project) -> Iterator[Server]:
    """wrangler dev with the generated wrangler.toml, but for its main (the JavaScript
    stand-in, given entry.py's data) and what only a Python main needs (its flag, the data
    files' rules), with the wsgi build on gunicorn as its app. Its compatibility_date stays:
    wrangler dev refuses to start on a date newer than its workerd supports (2026-05-03 for
    wrangler 4.86)."""
    text = (project.folder / "wrangler.toml").read_text()
    text = re.sub(r"\[\[rules\]\]\n(?:.+\n)+\n", "", text)
    text = text.replace('compatibility_flags = ["python_workers"]\n', "")
    text = text.replace('main = "src/entry.py"', f'main = "{HOSTS / "cloudflare_forward.js"}"')
    text = text.replace('directory = "public"', f'directory = "{project.folder / "public"}"')
    site = project.out.parent / "wrangler-site"
    site.mkdir()
    (site / "wrangler.toml").write_text(text)
    entry = (project.folder / "src/entry.py").read_text()
    port = free_port()
    variables = {"ORIGIN": f"http://127.0.0.1:{port}"}
    for name, form in [
        ("ASSET_URLS", r"frozenset\((.*)\)"),
        ("LIVE_COOKIES", r"frozenset\((.*)\)"),
        ("LIVE_PAGES", r"\[re\.compile\(pattern\) for pattern in (.*)\]"),
        ("LIVE_QUERY", r"frozenset\((.*)\)"),
    ]:
        found = re.search(rf"^{name} = {form}$", entry, re.MULTILINE)
        assert found is not None, name
        variables[name] = json.dumps(ast.literal_eval(found.group(1)))
    with (
        gunicorn(project.out, cwd=project.out.parent, port=port),
        wrangler_dev(site / "wrangler.toml", cwd=site, variables=variables) as server,
    ):
        yield server


def test_wrangler_config(project: Project) -> None:
    config = tomllib.loads((project.folder / "wrangler.toml").read_text())
    assert config["name"] == "testsite"
    assert config["compatibility_flags"] == ["python_workers"]
    assert config["compatibility_date"] == COMPATIBILITY_DATE
    assert (project.folder / config["main"]).is_file()
    assets = config["assets"]
    assert (assets["directory"], assets["binding"]) == ("public", "ASSETS")
    # On-demand URLs, and the form posting to its own page, reach the Worker first.
    assert {"/account/", "/lab/returns/*", "/contact/", "/login"} <= set(assets["run_worker_first"])
    assert "/about/" not in assets["run_worker_first"]
    # wrangler uploads *.py only, unless rules name the rest: the manifest, the templates.
    globs = config["rules"][0]["globs"]
    assert config["rules"][0]["type"] == "Data"
    assert {"**/*.json", "**/*.html"} <= set(globs)
    assert (project.folder / "src/manifest.json").is_file()
    assert not project.folder.is_symlink()
    assert not (project.out / "cloudflare").exists()  # no link from DIR
    for dead in ("_routes.json", ".assetsignore"):
        assert not (project.folder / "public" / dead).exists()
    assert not list((project.folder / "public").rglob("*.gz"))


def test_pyproject_for_pywrangler(project: Project) -> None:
    pyproject = tomllib.loads((project.folder / "pyproject.toml").read_text())
    dependencies = pyproject["project"]["dependencies"]
    assert any(re.fullmatch(r"Flask==[\d.]+", d) for d in dependencies)
    assert "MarkupSafe" in dependencies  # compiled: Pyodide's own build
    assert not any(d.lower().startswith("flask-ondemand") for d in dependencies)  # in src/
    assert (project.folder / "src/flask_ondemand/loader.py").is_file()
    assert pyproject["dependency-groups"]["dev"] == ["workers-py"]
    entry = (project.folder / "src/entry.py").read_text()
    assert "from workers.wsgi import build_environ, fetch" in entry
    assert "load_slim_app(__file__, proxies=1)" in entry


def test_headers_file_detaches_the_sites_value(project: Project) -> None:
    text = (project.folder / "public/_headers").read_text()
    assert "/*\n  Content-Security-Policy: default-src 'self'\n" in text
    assert (
        "/secure/\n  ! Content-Security-Policy\n  Content-Security-Policy: default-src 'none'\n"
        in text
    )


def test_the_shared_answers(worker: Server) -> None:
    assert_site_answers(worker.url)


def test_page_headers(worker: Server) -> None:
    assert_page_headers(worker.url)
    assert fetch(worker.url, "/hello").headers["Content-Type"] == "text/html; charset=utf-8"
    assert fetch(worker.url, "/terms/").headers["X-Robots-Tag"] == "noindex"


def test_the_worker_gets_what_no_asset_answers(worker: Server) -> None:
    assert fetch(worker.url, "/lab/status").status == 404
    assert fetch(worker.url, "/about").headers["Location"] == "/about/"
    contact = fetch(worker.url, "/contact/")  # run_worker_first, then back to the asset
    assert (contact.status, contact.body) == (200, b"Contact form")
    assert contact.headers.get("Server") != "gunicorn"


def test_the_worker_renders_a_live_query_pages_query(project: Project, worker: Server) -> None:
    """/isles/listing/ (prerender(live_query=True)): run_worker_first sends it to the Worker,
    which hands it back to the assets without a query string and to the app with one."""
    first = tomllib.loads((project.folder / "wrangler.toml").read_text())["assets"]
    assert any(fnmatchcase("/isles/listing/", pattern) for pattern in first["run_worker_first"])
    bare = fetch(worker.url, "/isles/listing/")
    assert (bare.status, bare.body) == (200, b"Listing page 1")
    assert bare.headers["Server"] != "gunicorn"  # the asset
    for path in ("/isles/listing/?page=2", "/isles/listing/?x=1&page=2"):
        second = fetch(worker.url, path)
        assert (second.status, second.body, second.headers["Server"]) == (
            200,
            b"Listing page 2",
            "gunicorn",
        ), path


def test_a_page_whose_file_is_in_its_folder(project: Project, worker: Server) -> None:
    """/docs, whose file is docs/index.html (/docs/popup needs the folder): Cloudflare's assets
    would redirect it to /docs/, so _redirects rewrites it there; /docs/ and the file's own
    name go to the app, which answers 404, as the wsgi build does."""
    for path, body in [("/docs", b"Docs"), ("/docs/popup", b"Docs popup")]:
        page = fetch(worker.url, path)
        assert (page.status, page.body) == (200, body), path
    for path in ("/docs/", "/docs/index.html"):
        missing = fetch(worker.url, path)
        assert (missing.status, missing.body) == (404, b"Custom 404 page"), path
    redirects = (project.folder / "public/_redirects").read_text().splitlines()
    assert "/docs  /docs/  200" in redirects


def test_entry_runs_on_workers_wsgi(project: Project) -> None:
    """entry.py, as the Python Worker runs it: workers-runtime-sdk's own workers/wsgi.py turns
    each request into the app's WSGI call and its answer into a streamed JS Response (only
    the JS side is a shim: tests/hosts/cloudflare_entry.py)."""
    form = "name=Ann"
    requests = [
        {"method": "GET", "url": "https://site.example/lab/visits", "headers": []},
        {
            "method": "POST",
            "url": "https://site.example/contact/",
            "headers": [
                ["Content-Type", "application/x-www-form-urlencoded"],
                ["Content-Length", str(len(form))],
            ],
            "body": form,
        },
        {"method": "GET", "url": "https://site.example/contact/"},
        {"method": "GET", "url": "https://site.example/lab/stream"},
        {"method": "GET", "url": "https://site.example/posts/nope/"},
        {"method": "GET", "url": "https://site.example/isles/listing/?page=2"},
        {"method": "HEAD", "url": "https://site.example/isles/listing/?page=2"},
        {"method": "GET", "url": "https://site.example/isles/listing/"},
        {"method": "GET", "url": "https://site.example/isles/listing/?"},
    ]
    answers = run_entry(project, requests)
    visits, posted, page, streamed, missing, *listing = answers
    assert (visits["status"], visits["body"]) == (200, "Visits: 0")
    # Cloudflare's edge speaks HTTPS, and the Worker trusts it: the cookie is Secure.
    assert ["Set-Cookie", "visits=0; Secure; HttpOnly; Path=/; SameSite=Lax"] in visits["headers"]
    assert (posted["status"], posted["body"]) == (200, "Thanks, Ann")
    assert page == {"asset": 200}  # GET of the form's page goes back to the assets
    assert streamed["status"] == 200
    assert "slow data" in streamed["body"]
    assert ["X-Stream", "before the first chunk"] in streamed["headers"]
    assert (missing["status"], missing["statusText"], missing["body"]) == (
        404,
        "NOT FOUND",
        "Custom 404 page",
    )
    # A live_query page: the app renders its query; the asset answers the bare URL.
    second, head, bare, empty = listing
    assert (second["status"], second["body"]) == (200, "Listing page 2")
    assert (head["status"], head["body"]) == (200, "")
    assert bare == empty == {"asset": 200}


def run_entry(project: Project, requests: list[dict[str, object]]) -> list[dict[str, Any]]:
    """The Worker's answers to ``requests``, its entry.py run by tests/hosts/cloudflare_entry.py
    on workers-runtime-sdk (from the host tools' Python 3.12)."""
    workers = python312().parents[1] / "lib/python3.12/site-packages"
    result = subprocess.run(
        [
            sys.executable,
            str(HOSTS / "cloudflare_entry.py"),
            str(project.folder / "src"),
            str(workers),
        ],
        input="".join(json.dumps(request) + "\n" for request in requests),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=project.folder,
    )
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_wildcard_patterns() -> None:
    assert wildcard_pattern("/blog/<slug>/") == "/blog/*"
    assert wildcard_pattern("/login") == "/login"


def test_cached_routes_are_warned_about(tmp_path: Path) -> None:
    """A Python Worker reaches no store, and Cloudflare keeps no Worker answer: the build
    says so rather than let cache() look as if it worked there."""
    with pytest.warns(AdapterWarning, match=r"cloudflare: the cached routes \(/about/, "):
        _warn_about_cached_routes(cache_site_for_adapters(tmp_path))


@pytest.fixture(scope="module")
def microblog(tmp_path_factory: pytest.TempPathFactory) -> Project:
    out, result = build_microblog(tmp_path_factory.mktemp("cloudflare-microblog"), "cloudflare")
    assert "Warning" not in result.stderr, result.stderr
    folder = out / "current/cloudflare"
    # The Worker's app reads users.txt beside its code, as the project's does.
    (folder / "src/users.txt").write_text((out.parent / "users.txt").read_text())
    return Project(folder, out)


def test_live_cookie_routes_run_the_worker_first(microblog: Project) -> None:
    config = tomllib.loads((microblog.folder / "wrangler.toml").read_text())
    first = config["assets"]["run_worker_first"]
    assert {"/", "/user/*"} <= set(first)
    assert "/about/" not in first  # prerender(live_cookies=False): the asset, always


@pytest.fixture(scope="module")
def microblog_worker(microblog: Project) -> Iterator[Server]:
    with wrangler_in_front(microblog) as server:
        yield server


def test_wrangler_dev_sends_signed_in_visitors_to_the_app(microblog_worker: Server) -> None:
    """Through wrangler dev (its assets, run_worker_first) and the stand-in Worker deciding as
    entry.py does: the files for anonymous visitors, the app for signed-in ones."""
    assert_live_cookies(microblog_worker.url)
    for headers in ({}, {"Cookie": "theme=dark"}):
        anonymous = fetch(microblog_worker.url, "/user/ada/", headers=headers)
        assert anonymous.headers["Server"] != "gunicorn"  # the asset


def test_wrangler_dev_sends_a_query_to_the_app(microblog_worker: Server) -> None:
    """Through wrangler dev and the stand-in Worker deciding as entry.py does: "/" is the
    asset, any query of it the app's page (the Worker sees the query itself)."""
    assert_live_query(
        microblog_worker.url,
        from_files=lambda page: page.headers["Server"] != "gunicorn",
        by_name=False,
    )


def test_the_python_worker_decides_by_cookie(microblog: Project) -> None:
    """entry.py under workers-runtime-sdk: a live page's GET goes to the assets without a live
    cookie and to the app (private) with one; a URL without an asset goes on to the app."""
    base = "https://blog.example"
    form = "name=ada"
    [login] = run_entry(
        microblog,
        [
            {
                "method": "POST",
                "url": f"{base}/auth/login",
                "headers": [
                    ["Content-Type", "application/x-www-form-urlencoded"],
                    ["Content-Length", str(len(form))],
                ],
                "body": form,
            }
        ],
    )
    assert login["status"] == 303
    session = next(v.split(";")[0] for n, v in login["headers"] if n.lower() == "set-cookie")
    assert session.startswith("session=")
    requests: list[dict[str, object]] = [
        {"method": "GET", "url": f"{base}/user/ada/", "headers": []},
        {"method": "GET", "url": f"{base}/user/ada/", "headers": [["Cookie", "theme=dark"]]},
        {"method": "GET", "url": f"{base}/user/ada/", "headers": [["Cookie", session]]},
        {"method": "HEAD", "url": f"{base}/", "headers": [["Cookie", f"a=1; {session}"]]},
        {"method": "GET", "url": f"{base}/user/newbie/", "headers": []},
        {"method": "GET", "url": f"{base}/?page=2", "headers": []},  # live_query
        {"method": "GET", "url": f"{base}/", "headers": []},
    ]
    anonymous, unlisted, ada, home, newbie, second, first = run_entry(microblog, requests)
    assert (second["status"], "<h1>Page 2</h1>" in second["body"]) == (200, True)
    assert first == {"asset": 200}
    assert anonymous == unlisted == {"asset": 200}
    assert ada["status"] == 200
    assert "Edit your profile" in ada["body"]
    assert ["Cache-Control", "private"] in ada["headers"]
    assert home["status"] == 200
    assert ["Cache-Control", "private"] in home["headers"]
    assert (newbie["status"], "User newbie" in newbie["body"]) == (200, True)
