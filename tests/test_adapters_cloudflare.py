"""The cloudflare adapter: wrangler.toml and _routes.json checked, and the Worker's entry
imported and answering through a test double of the ``workers`` module
(tests/hosts/workers_double/), behind a stand-in for Cloudflare's static assets."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomllib
from flask import Flask

from flask_ondemand.adapters import Site
from flask_ondemand.adapters.cloudflare import ROUTES_LIMIT, routes_json, wildcard_pattern
from flask_ondemand.manifest import Manifest, RuleEntry

from .servers import Server, assert_site_answers, build_with_adapter, fetch, host


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out, result = build_with_adapter(tmp_path_factory.mktemp("cloudflare"), "cloudflare")
    assert "Deploy:  cd dist/cloudflare && npx wrangler deploy" in result.stdout
    return out / "cloudflare"


@pytest.fixture(scope="module")
def worker(project: Path) -> Iterator[Server]:
    with host("cloudflare_worker.py", str(project)) as server:
        yield server


def test_wrangler_config(project: Path) -> None:
    config = tomllib.loads((project / "wrangler.toml").read_text())
    assert config["name"] == "testsite"
    assert config["compatibility_flags"] == ["python_workers"]
    assert (project / config["main"]).is_file()
    assert config["assets"] == {"directory": "public", "binding": "ASSETS"}
    assert (project / "public/about/index.html").is_file()
    assert (project / "public/.assetsignore").read_text().split() == [
        "_routes.json",
        ".assetsignore",
    ]


def test_routes_json(project: Path) -> None:
    routes = json.loads((project / "public/_routes.json").read_text())
    assert routes["version"] == 1
    assert "/lab/returns/*" in routes["include"]
    assert "/account/" in routes["include"]
    assert routes["exclude"] == ["/static/*", "/widgets-static/*"]
    assert len(routes["include"]) + len(routes["exclude"]) <= ROUTES_LIMIT


def test_routes_json_collapses_to_stay_within_the_limit(tmp_path: Path) -> None:
    def site(rules: list[str]) -> Site:
        manifest = Manifest(
            None, ".", on_demand=[RuleEntry(rule, f"e{i}", ["GET"]) for i, rule in enumerate(rules)]
        )
        manifest.prerendered = [
            RuleEntry("/static/<path:filename>", "static", ["GET"]),
            # A page whose view is named "static" is no static folder: the Worker still runs.
            RuleEntry("/<slug>", "pages.static", ["GET"]),
        ]
        app = Flask(__name__, static_folder=tmp_path)  # serves /static/<path:filename>
        return Site(tmp_path, tmp_path, manifest, {}, tmp_path, app)

    few = routes_json(site([f"/shop/item-{n}" for n in range(10)]))
    assert len(few["include"]) == 10
    many = routes_json(
        site([f"/shop/item-{n}" for n in range(80)] + [f"/u/{n}/x" for n in range(80)] + ["/login"])
    )
    assert many["include"] == ["/login", "/shop/*", "/u/*"]
    assert many["exclude"] == ["/static/*"]
    flat = routes_json(site([f"/s{n}/x" for n in range(150)]))
    assert flat["include"] == ["/*"]


def test_wildcard_patterns() -> None:
    assert wildcard_pattern("/blog/<slug>/") == "/blog/*"
    assert wildcard_pattern("/login") == "/login"


def test_the_shared_answers(worker: Server) -> None:
    assert_site_answers(worker.url)


def test_redirects_and_headers_files(project: Path, worker: Server) -> None:
    assert "/old/  /about/  301" in (project / "public/_redirects").read_text()
    assert fetch(worker.url, "/hello").headers["Content-Type"] == "text/html; charset=utf-8"
    assert fetch(worker.url, "/terms/").headers["X-Robots-Tag"] == "noindex"


def test_worker_gets_what_no_asset_answers(worker: Server) -> None:
    assert fetch(worker.url, "/lab/status").status == 404
    assert fetch(worker.url, "/about").headers["Location"] == "/about/"
